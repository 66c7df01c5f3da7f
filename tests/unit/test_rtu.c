/* test_rtu: unit tests of the pure RTU codec (col_rtu). Frames and CRCs are the worked
 * examples of the Modbus spec and common vendor manuals (unit 0x11), checked by hand. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "col_rtu.h"

static void assert_frame(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
}

static void test_crc_known_frames(void **state)
{
    (void)state;
    static const uint8_t f1[] = { 0x01, 0x03, 0x00, 0x00, 0x00, 0x0A };
    static const uint8_t f2[] = { 0x02, 0x07 };
    static const uint8_t f3[] = { 0x11, 0x03, 0x00, 0x6B, 0x00, 0x03 };
    /* the wire carries the low byte first: C5 CD, 41 12, 76 87 */
    assert_int_equal(col_rtu_crc(f1, sizeof f1), 0xCDC5);
    assert_int_equal(col_rtu_crc(f2, sizeof f2), 0x1241);
    assert_int_equal(col_rtu_crc(f3, sizeof f3), 0x8776);
    assert_int_equal(col_rtu_crc(f1, 0), 0xFFFF);
}

static void test_crc_of_whole_frame_is_zero(void **state)
{
    (void)state;
    /* a frame followed by its own CRC checks to 0: the property receivers rely on */
    static const uint8_t f[] = { 0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD };
    assert_int_equal(col_rtu_crc(f, sizeof f), 0x0000);
}

static void test_build_reads(void **state)
{
    (void)state;
    uint8_t fr[COL_RTU_MAX_ADU];
    static const uint8_t fc1[] = { 0x11, 0x01, 0x00, 0x13, 0x00, 0x25, 0x0E, 0x84 };
    static const uint8_t fc2[] = { 0x11, 0x02, 0x00, 0xC4, 0x00, 0x16, 0xBA, 0xA9 };
    static const uint8_t fc3[] = { 0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87 };
    static const uint8_t fc4[] = { 0x11, 0x04, 0x00, 0x08, 0x00, 0x01, 0xB2, 0x98 };
    static const uint8_t fc3b[] = { 0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD };
    assert_frame(fr, col_rtu_build_read(fr, 0x11, 1, 0x0013, 37), fc1, sizeof fc1);
    assert_frame(fr, col_rtu_build_read(fr, 0x11, 2, 0x00C4, 22), fc2, sizeof fc2);
    assert_frame(fr, col_rtu_build_read(fr, 0x11, 3, 0x006B, 3), fc3, sizeof fc3);
    assert_frame(fr, col_rtu_build_read(fr, 0x11, 4, 0x0008, 1), fc4, sizeof fc4);
    assert_frame(fr, col_rtu_build_read(fr, 1, 3, 0, 10), fc3b, sizeof fc3b);
}

static void test_build_writes(void **state)
{
    (void)state;
    uint8_t fr[COL_RTU_MAX_ADU];
    static const uint8_t on[] = { 0x11, 0x05, 0x00, 0xAC, 0xFF, 0x00, 0x4E, 0x8B };
    static const uint8_t off[] = { 0x11, 0x05, 0x00, 0xAC, 0x00, 0x00, 0x0F, 0x7B };
    static const uint8_t fc6[] = { 0x11, 0x06, 0x00, 0x01, 0x00, 0x03, 0x9A, 0x9B };
    static const uint8_t fc16[] = { 0x11, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04,
                                    0x00, 0x0A, 0x01, 0x02, 0xC6, 0xF0 };
    static const uint16_t vals[] = { 0x000A, 0x0102 };
    assert_frame(fr, col_rtu_build_write_coil(fr, 0x11, 0x00AC, true), on, sizeof on);
    assert_frame(fr, col_rtu_build_write_coil(fr, 0x11, 0x00AC, false), off, sizeof off);
    assert_frame(fr, col_rtu_build_write_reg(fr, 0x11, 0x0001, 0x0003), fc6, sizeof fc6);
    assert_frame(fr, col_rtu_build_write_regs(fr, 0x11, 0x0001, vals, 2), fc16, sizeof fc16);
}

static void test_build_rejects_bad_requests(void **state)
{
    (void)state;
    uint8_t fr[COL_RTU_MAX_ADU];
    uint16_t vals[COL_RTU_MAX_WRITE_REGS + 1] = { 0 };
    assert_int_equal(col_rtu_build_read(fr, 1, 7, 0, 1), 0);        /* not a read fc */
    assert_int_equal(col_rtu_build_read(fr, 1, 5, 0, 1), 0);        /* a write fc */
    assert_int_equal(col_rtu_build_read(fr, 1, 3, 0, 0), 0);
    assert_int_equal(col_rtu_build_read(fr, 1, 3, 0, 126), 0);
    assert_int_equal(col_rtu_build_read(fr, 1, 3, 0, 125), 8);
    assert_int_equal(col_rtu_build_read(fr, 1, 1, 0, 2001), 0);
    assert_int_equal(col_rtu_build_read(fr, 1, 1, 0, 2000), 8);
    assert_int_equal(col_rtu_build_read(fr, 1, 3, 0xFFFF, 2), 0);   /* past the last address */
    assert_int_equal(col_rtu_build_read(fr, 1, 3, 0xFFFF, 1), 8);
    assert_int_equal(col_rtu_build_read(fr, 256, 3, 0, 1), 0);
    assert_int_equal(col_rtu_build_read(fr, -1, 3, 0, 1), 0);
    assert_int_equal(col_rtu_build_write_reg(fr, 256, 0, 0), 0);
    assert_int_equal(col_rtu_build_write_coil(fr, -1, 0, true), 0);
    assert_int_equal(col_rtu_build_write_regs(fr, 1, 0, vals, 0), 0);
    assert_int_equal(col_rtu_build_write_regs(fr, 1, 0, vals, 124), 0);
    assert_int_equal(col_rtu_build_write_regs(fr, 1, 0, vals, 123), 9 + 246);
    assert_int_equal(col_rtu_build_write_regs(fr, 1, 0xFFFE, vals, 3), 0);
}

static void test_expected_len(void **state)
{
    (void)state;
    assert_int_equal(col_rtu_expected_len(3, 3), 11);   /* 3 + 6 data + 2 */
    assert_int_equal(col_rtu_expected_len(4, 125), 255);
    assert_int_equal(col_rtu_expected_len(1, 37), 10);  /* 37 bits = 5 bytes */
    assert_int_equal(col_rtu_expected_len(2, 8), 6);
    assert_int_equal(col_rtu_expected_len(2, 9), 7);
    assert_int_equal(col_rtu_expected_len(1, 2000), 255);
    assert_int_equal(col_rtu_expected_len(5, 0), 8);
    assert_int_equal(col_rtu_expected_len(6, 0), 8);
    assert_int_equal(col_rtu_expected_len(16, 2), 8);
    assert_int_equal(col_rtu_expected_len(16, 0), 0);
    assert_int_equal(col_rtu_expected_len(3, 0), 0);
    assert_int_equal(col_rtu_expected_len(3, 126), 0);
    assert_int_equal(col_rtu_expected_len(1, 2001), 0);
    assert_int_equal(col_rtu_expected_len(8, 1), 0);
}

static const uint8_t rsp_fc3[] = { 0x11, 0x03, 0x06, 0xAE, 0x41, 0x56, 0x52, 0x43, 0x40, 0x49, 0xAD };

static void test_parse_registers(void **state)
{
    (void)state;
    uint16_t out[3] = { 0 };
    assert_int_equal(col_rtu_parse(rsp_fc3, sizeof rsp_fc3, 0x11, 3, 3, out), 0);
    assert_int_equal(out[0], 0xAE41);
    assert_int_equal(out[1], 0x5652);
    assert_int_equal(out[2], 0x4340);
}

static void test_parse_bits(void **state)
{
    (void)state;
    /* 37 coils from 0x13: CD 6B B2 0E 1B, least significant bit first */
    static const uint8_t rsp[] = { 0x11, 0x01, 0x05, 0xCD, 0x6B, 0xB2, 0x0E, 0x1B, 0x45, 0xE6 };
    static const uint16_t want[37] = {
        1, 0, 1, 1, 0, 0, 1, 1,  1, 1, 0, 1, 0, 1, 1, 0,  0, 1, 0, 0, 1, 1, 0, 1,
        0, 1, 1, 1, 0, 0, 0, 0,  1, 1, 0, 1, 1,
    };
    uint16_t out[37];
    memset(out, 0xEE, sizeof out);
    assert_int_equal(col_rtu_parse(rsp, sizeof rsp, 0x11, 1, 37, out), 0);
    assert_memory_equal(out, want, sizeof want);
    /* the same bytes as a discrete-input answer are refused: the fc differs */
    assert_int_equal(col_rtu_parse(rsp, sizeof rsp, 0x11, 2, 37, out), -EBADMSG);
}

static void test_parse_exception(void **state)
{
    (void)state;
    static const uint8_t exc[] = { 0x11, 0x83, 0x02, 0xC1, 0x34 };
    static const uint8_t bad_crc[] = { 0x11, 0x83, 0x02, 0xC1, 0x35 };
    uint16_t out[3];
    assert_int_equal(col_rtu_parse(exc, sizeof exc, 0x11, 3, 3, out), -(COL_BUS_EXC_BASE + 2));
    assert_int_equal(col_rtu_parse(exc, 4, 0x11, 3, 3, out), -EAGAIN);
    assert_int_equal(col_rtu_parse(exc, 2, 0x11, 3, 3, out), -EAGAIN);
    assert_int_equal(col_rtu_parse(bad_crc, sizeof bad_crc, 0x11, 3, 3, out), -EBADMSG);
    /* an exception for another fc (0x84 = read input) is not the answer to fc 3 */
    assert_int_equal(col_rtu_parse(exc, sizeof exc, 0x11, 4, 3, out), -EBADMSG);
}

static void test_parse_bad_crc(void **state)
{
    (void)state;
    uint8_t rsp[sizeof rsp_fc3];
    uint16_t out[3];
    memcpy(rsp, rsp_fc3, sizeof rsp);
    rsp[sizeof rsp - 1] ^= 0x01;
    assert_int_equal(col_rtu_parse(rsp, sizeof rsp, 0x11, 3, 3, out), -EBADMSG);
    memcpy(rsp, rsp_fc3, sizeof rsp);
    rsp[4] ^= 0x80; /* a flipped data bit */
    assert_int_equal(col_rtu_parse(rsp, sizeof rsp, 0x11, 3, 3, out), -EBADMSG);
}

static void test_parse_wrong_unit_fc_count(void **state)
{
    (void)state;
    uint16_t out[4];
    assert_int_equal(col_rtu_parse(rsp_fc3, sizeof rsp_fc3, 0x12, 3, 3, out), -EBADMSG);
    assert_int_equal(col_rtu_parse(rsp_fc3, 1, 0x12, 3, 3, out), -EBADMSG); /* seen at once */
    assert_int_equal(col_rtu_parse(rsp_fc3, sizeof rsp_fc3, 0x11, 4, 3, out), -EBADMSG);
    assert_int_equal(col_rtu_parse(rsp_fc3, 2, 0x11, 4, 3, out), -EBADMSG);
    /* 4 registers asked for, 6 bytes announced */
    assert_int_equal(col_rtu_parse(rsp_fc3, sizeof rsp_fc3, 0x11, 3, 4, out), -EBADMSG);
    assert_int_equal(col_rtu_parse(rsp_fc3, 3, 0x11, 3, 4, out), -EBADMSG);
    assert_int_equal(col_rtu_parse(rsp_fc3, sizeof rsp_fc3, 0x11, 3, 2, out), -EBADMSG);
}

static void test_parse_truncated_and_too_long(void **state)
{
    (void)state;
    uint16_t out[3];
    for (size_t n = 0; n < sizeof rsp_fc3; n++)
        assert_int_equal(col_rtu_parse(rsp_fc3, n, 0x11, 3, 3, out), -EAGAIN);
    uint8_t longer[sizeof rsp_fc3 + 1];
    memcpy(longer, rsp_fc3, sizeof rsp_fc3);
    longer[sizeof rsp_fc3] = 0x00;
    assert_int_equal(col_rtu_parse(longer, sizeof longer, 0x11, 3, 3, out), -EBADMSG);
}

static void test_parse_write_echoes(void **state)
{
    (void)state;
    static const uint8_t fc16[] = { 0x11, 0x10, 0x00, 0x01, 0x00, 0x02, 0x12, 0x98 };
    static const uint8_t fc6[] = { 0x11, 0x06, 0x00, 0x01, 0x00, 0x03, 0x9A, 0x9B };
    static const uint8_t fc5[] = { 0x11, 0x05, 0x00, 0xAC, 0xFF, 0x00, 0x4E, 0x8B };
    uint16_t echo[2] = { 0 };
    assert_int_equal(col_rtu_parse(fc16, sizeof fc16, 0x11, 16, 2, echo), 0);
    assert_int_equal(echo[0], 0x0001);
    assert_int_equal(echo[1], 0x0002);
    assert_int_equal(col_rtu_parse(fc16, sizeof fc16, 0x11, 16, 3, echo), -EBADMSG);
    assert_int_equal(col_rtu_parse(fc6, sizeof fc6, 0x11, 6, 1, echo), 0);
    assert_int_equal(echo[0], 0x0001);
    assert_int_equal(echo[1], 0x0003);
    assert_int_equal(col_rtu_parse(fc5, sizeof fc5, 0x11, 5, 1, echo), 0);
    assert_int_equal(echo[0], 0x00AC);
    assert_int_equal(echo[1], 0xFF00);
    assert_int_equal(col_rtu_parse(fc5, sizeof fc5, 0x11, 5, 1, NULL), 0);
    assert_int_equal(col_rtu_parse(fc5, 7, 0x11, 5, 1, echo), -EAGAIN);
}

static void test_parse_rejects_unknown_fc(void **state)
{
    (void)state;
    uint16_t out[1];
    assert_int_equal(col_rtu_parse(rsp_fc3, sizeof rsp_fc3, 0x11, 8, 1, out), -EINVAL);
    assert_int_equal(col_rtu_parse(rsp_fc3, sizeof rsp_fc3, 0x11, 3, 0, out), -EINVAL);
}

static void test_build_then_parse_roundtrip(void **state)
{
    (void)state;
    /* a server's answer built by hand for the request 01 03 00 00 00 01: value 0x0001 */
    static const uint8_t rsp[] = { 0x01, 0x03, 0x02, 0x00, 0x01, 0x79, 0x84 };
    uint16_t out[1] = { 0 };
    assert_int_equal(col_rtu_parse(rsp, sizeof rsp, 1, 3, 1, out), 0);
    assert_int_equal(out[0], 1);
    assert_int_equal(col_rtu_crc(rsp, sizeof rsp), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_known_frames),
        cmocka_unit_test(test_crc_of_whole_frame_is_zero),
        cmocka_unit_test(test_build_reads),
        cmocka_unit_test(test_build_writes),
        cmocka_unit_test(test_build_rejects_bad_requests),
        cmocka_unit_test(test_expected_len),
        cmocka_unit_test(test_parse_registers),
        cmocka_unit_test(test_parse_bits),
        cmocka_unit_test(test_parse_exception),
        cmocka_unit_test(test_parse_bad_crc),
        cmocka_unit_test(test_parse_wrong_unit_fc_count),
        cmocka_unit_test(test_parse_truncated_and_too_long),
        cmocka_unit_test(test_parse_write_echoes),
        cmocka_unit_test(test_parse_rejects_unknown_fc),
        cmocka_unit_test(test_build_then_parse_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
