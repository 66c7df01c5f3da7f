/* Unit tests of col_decode: every type in every word/byte order against hand-computed register
 * words, sentinels, SunSpec scale factors, limits, strings, bits, coils and col_encode. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <string.h>

#include "col_decode.h"

#define BASE 100

static struct col_point point(enum col_type t, enum col_order o)
{
    struct col_point p;
    memset(&p, 0, sizeof p);
    strcpy(p.name, "x");
    p.table = COL_HOLDING;
    p.address = BASE;
    p.count = (uint16_t)col_type_regs(t);
    p.type = t;
    p.order = o;
    p.bit = -1;
    p.scale = 1.0;
    p.sf_address = -1;
    return p;
}

/* Decodes p from regs (placed at BASE) and returns the code; *v gets the number on success. */
static int dec(const struct col_point *p, const uint16_t *regs, size_t n, double *v)
{
    struct col_value out = {.kind = COL_VAL_STRING, .number = -999.0, .str = "unchanged"};
    int rc = col_decode(p, BASE, regs, n, &out);
    if (rc == COL_DECODE_OK) {
        assert_int_equal(out.kind, COL_VAL_NUMBER);
        assert_string_equal(out.str, "");
    } else {
        assert_true(out.number == -999.0); /* untouched on failure */
        assert_string_equal(out.str, "unchanged");
    }
    *v = out.number;
    return rc;
}

static double dec_ok(const struct col_point *p, const uint16_t *regs, size_t n)
{
    double v;
    assert_int_equal(dec(p, regs, n, &v), COL_DECODE_OK);
    return v;
}

struct num_case {
    enum col_type type;
    enum col_order order;
    uint16_t w[4];
    double want;
};

static const struct num_case num_cases[] = {
    {COL_U16, COL_ABCD, {0x1234}, 4660.0},
    {COL_U16, COL_CDAB, {0x1234}, 4660.0},
    {COL_U16, COL_BADC, {0x3412}, 4660.0},
    {COL_U16, COL_DCBA, {0x3412}, 4660.0},
    {COL_U16, COL_ABCD, {0xFFFE}, 65534.0},
    {COL_S16, COL_ABCD, {0xCFC7}, -12345.0},
    {COL_S16, COL_CDAB, {0xCFC7}, -12345.0},
    {COL_S16, COL_BADC, {0xC7CF}, -12345.0},
    {COL_S16, COL_DCBA, {0xC7CF}, -12345.0},
    {COL_S16, COL_ABCD, {0x8001}, -32767.0},
    {COL_S16, COL_ABCD, {0x7FFF}, 32767.0},
    {COL_U32, COL_ABCD, {0x1234, 0x5678}, 305419896.0},
    {COL_U32, COL_CDAB, {0x5678, 0x1234}, 305419896.0},
    {COL_U32, COL_BADC, {0x3412, 0x7856}, 305419896.0},
    {COL_U32, COL_DCBA, {0x7856, 0x3412}, 305419896.0},
    {COL_S32, COL_ABCD, {0xF8A4, 0x32EB}, -123456789.0},
    {COL_S32, COL_CDAB, {0x32EB, 0xF8A4}, -123456789.0},
    {COL_S32, COL_BADC, {0xA4F8, 0xEB32}, -123456789.0},
    {COL_S32, COL_DCBA, {0xEB32, 0xA4F8}, -123456789.0},
    {COL_U64, COL_ABCD, {0x0102, 0x0304, 0x0506, 0x0708}, (double)UINT64_C(0x0102030405060708)},
    {COL_U64, COL_CDAB, {0x0708, 0x0506, 0x0304, 0x0102}, (double)UINT64_C(0x0102030405060708)},
    {COL_U64, COL_BADC, {0x0201, 0x0403, 0x0605, 0x0807}, (double)UINT64_C(0x0102030405060708)},
    {COL_U64, COL_DCBA, {0x0807, 0x0605, 0x0403, 0x0201}, (double)UINT64_C(0x0102030405060708)},
    {COL_U64, COL_ABCD, {0x0000, 0x0000, 0x0001, 0x0000}, 65536.0},
    {COL_S64, COL_ABCD, {0xEEDD, 0xEF0B, 0x8216, 0x7EEB}, (double)INT64_C(-1234567890123456789)},
    {COL_S64, COL_CDAB, {0x7EEB, 0x8216, 0xEF0B, 0xEEDD}, (double)INT64_C(-1234567890123456789)},
    {COL_S64, COL_BADC, {0xDDEE, 0x0BEF, 0x1682, 0xEB7E}, (double)INT64_C(-1234567890123456789)},
    {COL_S64, COL_DCBA, {0xEB7E, 0x1682, 0x0BEF, 0xDDEE}, (double)INT64_C(-1234567890123456789)},
    {COL_S64, COL_ABCD, {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE}, -2.0},
    {COL_S64, COL_DCBA, {0xFEFF, 0xFFFF, 0xFFFF, 0xFFFF}, -2.0},
    {COL_F32, COL_ABCD, {0x4366, 0x8000}, 230.5},
    {COL_F32, COL_CDAB, {0x8000, 0x4366}, 230.5},
    {COL_F32, COL_BADC, {0x6643, 0x0080}, 230.5},
    {COL_F32, COL_DCBA, {0x0080, 0x6643}, 230.5},
    {COL_F32, COL_ABCD, {0xBE20, 0x0000}, -0.15625},
    {COL_F64, COL_ABCD, {0xC093, 0x4A40, 0x0000, 0x0000}, -1234.5625},
    {COL_F64, COL_CDAB, {0x0000, 0x0000, 0x4A40, 0xC093}, -1234.5625},
    {COL_F64, COL_BADC, {0x93C0, 0x404A, 0x0000, 0x0000}, -1234.5625},
    {COL_F64, COL_DCBA, {0x0000, 0x0000, 0x404A, 0x93C0}, -1234.5625},
};

static void test_type_regs(void **state)
{
    (void)state;
    assert_int_equal(col_type_regs(COL_U16), 1);
    assert_int_equal(col_type_regs(COL_S16), 1);
    assert_int_equal(col_type_regs(COL_BITS), 1);
    assert_int_equal(col_type_regs(COL_U32), 2);
    assert_int_equal(col_type_regs(COL_S32), 2);
    assert_int_equal(col_type_regs(COL_F32), 2);
    assert_int_equal(col_type_regs(COL_U64), 4);
    assert_int_equal(col_type_regs(COL_S64), 4);
    assert_int_equal(col_type_regs(COL_F64), 4);
    assert_int_equal(col_type_regs(COL_STRING), 0);
    struct col_point p = point(COL_U32, COL_ABCD);
    p.count = 0;
    assert_int_equal(col_point_span(&p), 2);
    p.count = 5;
    assert_int_equal(col_point_span(&p), 5);
    p.table = COL_COIL;
    p.count = 0;
    assert_int_equal(col_point_span(&p), 1);
}

static void test_numbers_all_orders(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof num_cases / sizeof num_cases[0]; i++) {
        const struct num_case *c = &num_cases[i];
        struct col_point p = point(c->type, c->order);
        double v = dec_ok(&p, c->w, col_type_regs(c->type));
        if (v != c->want)
            fail_msg("case %zu: got %.17g want %.17g", i, v, c->want);
    }
}

static void test_block_offset(void **state)
{
    (void)state;
    /* Block 98..103; a u32 at 101..102 in CDAB order. */
    const uint16_t regs[] = {0xAAAA, 0xBBBB, 0xCCCC, 0x5678, 0x1234, 0xDDDD};
    struct col_point p = point(COL_U32, COL_CDAB);
    p.address = 101;
    struct col_value out;
    assert_int_equal(col_decode(&p, 98, regs, 6, &out), COL_DECODE_OK);
    assert_true(out.number == 305419896.0);
}

static void test_range(void **state)
{
    (void)state;
    const uint16_t regs[8] = {0x1234, 0x5678, 0, 0, 0, 0, 0, 0};
    struct col_point p = point(COL_U32, COL_ABCD);
    double v;
    assert_int_equal(dec(&p, regs, 1, &v), COL_DECODE_RANGE);
    assert_int_equal(dec(&p, regs, 0, &v), COL_DECODE_RANGE);
    assert_int_equal(col_decode(&p, BASE + 1, regs, 8, &(struct col_value){0}), COL_DECODE_RANGE);
    assert_int_equal(col_decode(&p, BASE - 7, regs, 8, &(struct col_value){0}), COL_DECODE_RANGE);
    assert_int_equal(col_decode(&p, BASE - 6, regs, 8, &(struct col_value){0}), COL_DECODE_OK);
    p.count = 3; /* a profile may declare more registers than the type needs */
    assert_int_equal(dec(&p, regs, 2, &v), COL_DECODE_RANGE);
    assert_true(dec_ok(&p, regs, 3) == 305419896.0);
    struct col_point s = point(COL_STRING, COL_ABCD);
    s.count = 8;
    assert_int_equal(dec(&s, regs, 7, &v), COL_DECODE_RANGE);
    struct col_point b = point(COL_BITS, COL_ABCD);
    b.bit = 16;
    assert_int_equal(dec(&b, regs, 1, &v), COL_DECODE_RANGE);
    b.bit = -2;
    assert_int_equal(dec(&b, regs, 1, &v), COL_DECODE_RANGE);
}

static void test_sentinels_16(void **state)
{
    (void)state;
    double v;
    struct col_point p = point(COL_U16, COL_ABCD);
    p.nsentinel = 1;
    p.sentinel[0] = 0xFFFF;
    assert_int_equal(dec(&p, (uint16_t[]){0xFFFF}, 1, &v), COL_DECODE_NOTIMPL);
    assert_true(dec_ok(&p, (uint16_t[]){0xFFFE}, 1) == 65534.0);
    p.nsentinel = 0; /* a stale entry beyond nsentinel is not a sentinel */
    assert_true(dec_ok(&p, (uint16_t[]){0xFFFF}, 1) == 65535.0);

    struct col_point s = point(COL_S16, COL_ABCD);
    s.nsentinel = 1;
    s.sentinel[0] = 0x8000; /* compared as unsigned, not as -32768 */
    assert_int_equal(dec(&s, (uint16_t[]){0x8000}, 1, &v), COL_DECODE_NOTIMPL);
    assert_true(dec_ok(&s, (uint16_t[]){0x8001}, 1) == -32767.0);
    s.order = COL_BADC; /* compared after the byte order is applied */
    assert_int_equal(dec(&s, (uint16_t[]){0x0080}, 1, &v), COL_DECODE_NOTIMPL);
    assert_true(dec_ok(&s, (uint16_t[]){0x8000}, 1) == 128.0);
}

static void test_sentinels_32_64(void **state)
{
    (void)state;
    double v;
    struct col_point p = point(COL_U32, COL_ABCD);
    p.nsentinel = 2;
    p.sentinel[0] = 0x12345678;
    p.sentinel[1] = 0xFFFFFFFF;
    assert_int_equal(dec(&p, (uint16_t[]){0xFFFF, 0xFFFF}, 2, &v), COL_DECODE_NOTIMPL);
    assert_int_equal(dec(&p, (uint16_t[]){0x1234, 0x5678}, 2, &v), COL_DECODE_NOTIMPL);
    assert_true(dec_ok(&p, (uint16_t[]){0xFFFF, 0xFFFE}, 2) == 4294967294.0);

    struct col_point s = point(COL_S32, COL_CDAB);
    s.nsentinel = 1;
    s.sentinel[0] = 0x80000000;
    assert_int_equal(dec(&s, (uint16_t[]){0x0000, 0x8000}, 2, &v), COL_DECODE_NOTIMPL);
    assert_true(dec_ok(&s, (uint16_t[]){0x8000, 0x0000}, 2) == 32768.0);

    struct col_point u = point(COL_U64, COL_ABCD);
    u.nsentinel = 1;
    u.sentinel[0] = UINT64_MAX;
    assert_int_equal(dec(&u, (uint16_t[]){0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}, 4, &v),
                     COL_DECODE_NOTIMPL);
    struct col_point q = point(COL_S64, COL_DCBA);
    q.nsentinel = 1;
    q.sentinel[0] = UINT64_C(0x8000000000000000);
    assert_int_equal(dec(&q, (uint16_t[]){0x0000, 0x0000, 0x0000, 0x0080}, 4, &v),
                     COL_DECODE_NOTIMPL);
    assert_true(dec_ok(&q, (uint16_t[]){0x0080, 0x0000, 0x0000, 0x0000}, 4) == 32768.0);
}

static void test_float_specials(void **state)
{
    (void)state;
    double v;
    struct col_point f = point(COL_F32, COL_ABCD);
    f.nan_is_sentinel = true;
    assert_int_equal(dec(&f, (uint16_t[]){0x7FC0, 0x0000}, 2, &v), COL_DECODE_NOTIMPL);
    assert_int_equal(dec(&f, (uint16_t[]){0x7F80, 0x0000}, 2, &v), COL_DECODE_IMPLAUSIBLE);
    assert_int_equal(dec(&f, (uint16_t[]){0xFF80, 0x0000}, 2, &v), COL_DECODE_IMPLAUSIBLE);
    f.nan_is_sentinel = false;
    assert_int_equal(dec(&f, (uint16_t[]){0x7FC0, 0x0000}, 2, &v), COL_DECODE_IMPLAUSIBLE);
    f.nsentinel = 1; /* an explicit raw sentinel wins over the NaN rule */
    f.sentinel[0] = 0x7FC00000;
    assert_int_equal(dec(&f, (uint16_t[]){0x7FC0, 0x0000}, 2, &v), COL_DECODE_NOTIMPL);

    struct col_point d = point(COL_F64, COL_CDAB);
    d.nan_is_sentinel = true;
    assert_int_equal(dec(&d, (uint16_t[]){0x0000, 0x0000, 0x0000, 0x7FF8}, 4, &v),
                     COL_DECODE_NOTIMPL);
    d.nan_is_sentinel = false;
    assert_int_equal(dec(&d, (uint16_t[]){0x0000, 0x0000, 0x0000, 0x7FF8}, 4, &v),
                     COL_DECODE_IMPLAUSIBLE);
    assert_int_equal(dec(&d, (uint16_t[]){0x0000, 0x0000, 0x0000, 0x7FF0}, 4, &v),
                     COL_DECODE_IMPLAUSIBLE);
    /* finite raw, but scaling overflows to Inf */
    d.scale = 1e306; /* -1234.5625 * 1e306 > DBL_MAX */
    assert_int_equal(dec(&d, (uint16_t[]){0x0000, 0x0000, 0x4A40, 0xC093}, 4, &v),
                     COL_DECODE_IMPLAUSIBLE);
}

static void test_zero_is_sentinel(void **state)
{
    (void)state;
    double v;
    struct col_point p = point(COL_U32, COL_ABCD);
    p.zero_is_sentinel = true;
    assert_int_equal(dec(&p, (uint16_t[]){0x0000, 0x0000}, 2, &v), COL_DECODE_NOTIMPL);
    assert_true(dec_ok(&p, (uint16_t[]){0x0000, 0x0001}, 2) == 1.0);
    p.zero_is_sentinel = false;
    assert_true(dec_ok(&p, (uint16_t[]){0x0000, 0x0000}, 2) == 0.0);
}

/* SunSpec: value at 100, sf at 101. */
static void test_sunspec_sf(void **state)
{
    (void)state;
    double v;
    struct col_point p = point(COL_U16, COL_ABCD);
    p.sf_address = 101;
    assert_true(dec_ok(&p, (uint16_t[]){1234, 0xFFFE}, 2) == 12.34);
    assert_true(dec_ok(&p, (uint16_t[]){1234, 0xFFFF}, 2) == 123.4);
    assert_true(dec_ok(&p, (uint16_t[]){1234, 0x0000}, 2) == 1234.0);
    assert_true(dec_ok(&p, (uint16_t[]){1234, 0x0003}, 2) == 1234000.0);
    assert_true(dec_ok(&p, (uint16_t[]){1234, 0x000A}, 2) == 12340000000000.0);
    assert_true(dec_ok(&p, (uint16_t[]){1234, 0xFFF6}, 2) == 1.234e-7);
    assert_int_equal(dec(&p, (uint16_t[]){1234, 0x8000}, 2, &v), COL_DECODE_BADSF);
    assert_int_equal(dec(&p, (uint16_t[]){1234, 0x000B}, 2, &v), COL_DECODE_BADSF);
    assert_int_equal(dec(&p, (uint16_t[]){1234, 0xFFF5}, 2, &v), COL_DECODE_BADSF);
    assert_int_equal(dec(&p, (uint16_t[]){1234}, 1, &v), COL_DECODE_BADSF); /* sf past the block */
    p.sf_address = 99; /* sf before the block */
    assert_int_equal(dec(&p, (uint16_t[]){1234, 0}, 2, &v), COL_DECODE_BADSF);

    /* signed value, sf before the value, value in the middle of the block */
    struct col_point s = point(COL_S16, COL_ABCD);
    s.address = 102;
    s.sf_address = 100;
    assert_true(dec_ok(&s, (uint16_t[]){0xFFFF, 0x7777, 0xFFF6}, 3) == -1.0);

    /* a not-implemented value reports NOTIMPL even when its sf is not implemented either */
    p.sf_address = 101;
    p.nsentinel = 1;
    p.sentinel[0] = 0xFFFF;
    assert_int_equal(dec(&p, (uint16_t[]){0xFFFF, 0x8000}, 2, &v), COL_DECODE_NOTIMPL);
}

static void test_scale_offset_limits(void **state)
{
    (void)state;
    double v;
    struct col_point p = point(COL_U16, COL_ABCD);
    p.scale = 0.1;
    p.offset = -40.0;
    assert_true(dec_ok(&p, (uint16_t[]){1000}, 1) == 60.0);
    assert_true(dec_ok(&p, (uint16_t[]){605}, 1) == 20.5);
    p.offset = 0.0;
    p.has_max = true;
    p.max = 250.0;
    assert_true(dec_ok(&p, (uint16_t[]){2300}, 1) == 230.0);
    assert_true(dec_ok(&p, (uint16_t[]){2500}, 1) == 250.0);
    assert_int_equal(dec(&p, (uint16_t[]){2510}, 1, &v), COL_DECODE_IMPLAUSIBLE);
    p.has_min = true;
    p.min = 1.0;
    assert_true(dec_ok(&p, (uint16_t[]){10}, 1) == 1.0);
    assert_int_equal(dec(&p, (uint16_t[]){9}, 1, &v), COL_DECODE_IMPLAUSIBLE);

    struct col_point s = point(COL_S32, COL_ABCD); /* scale and sf together */
    s.scale = 0.5;
    s.offset = 1.0;
    s.sf_address = 102;
    assert_true(dec_ok(&s, (uint16_t[]){0xFFFF, 0xFFFA, 0x0001}, 3) == -29.0);
}

static void check_string(const struct col_point *p, const uint16_t *regs, size_t n,
                          const char *want)
{
    struct col_value out;
    assert_int_equal(col_decode(p, BASE, regs, n, &out), COL_DECODE_OK);
    assert_int_equal(out.kind, COL_VAL_STRING);
    assert_string_equal(out.str, want);
}

static void test_strings(void **state)
{
    (void)state;
    double v;
    struct col_point p = point(COL_STRING, COL_ABCD);
    p.count = 4;
    const uint16_t abcd[] = {0x4142, 0x4344, 0x4546, 0x4748};
    check_string(&p, abcd, 4, "ABCDEFGH");
    p.order = COL_CDAB; /* strings keep register order */
    check_string(&p, abcd, 4, "ABCDEFGH");
    p.order = COL_BADC;
    check_string(&p, (uint16_t[]){0x4241, 0x4443, 0x4645, 0x4847}, 4, "ABCDEFGH");
    p.order = COL_DCBA;
    check_string(&p, (uint16_t[]){0x4241, 0x0043, 0x4645, 0x4847}, 4, "ABC");
    p.order = COL_ABCD;
    check_string(&p, (uint16_t[]){0x4142, 0x4300, 0x4445, 0x4647}, 4, "ABC");
    check_string(&p, (uint16_t[]){0x4120, 0x4220, 0x2020, 0x2020}, 4, "A B");
    check_string(&p, (uint16_t[]){0x4101, 0x7F42, 0xC343, 0x2000}, 4, "A??B?C");
    assert_int_equal(dec(&p, (uint16_t[]){0, 0, 0, 0}, 4, &v), COL_DECODE_NOTIMPL);
    assert_int_equal(dec(&p, (uint16_t[]){0x2020, 0x2020, 0x2000, 0x4142}, 4, &v),
                     COL_DECODE_NOTIMPL);
    assert_int_equal(dec(&p, (uint16_t[]){0x0041, 0x4243, 0x4445, 0x4647}, 4, &v),
                     COL_DECODE_NOTIMPL);
}

static void test_string_truncation(void **state)
{
    (void)state;
    uint16_t regs[40];
    for (size_t i = 0; i < 40; i++)
        regs[i] = 0x4142;
    char want[COL_STRING_MAX];
    for (size_t i = 0; i < COL_STRING_MAX - 1; i++)
        want[i] = (i % 2) ? 'B' : 'A';
    want[COL_STRING_MAX - 1] = '\0';
    struct col_point p = point(COL_STRING, COL_ABCD);
    p.count = 40;
    check_string(&p, regs, 40, want);
    assert_int_equal(strlen(want), 63);
    /* truncation happens before trailing spaces are stripped: 'A' + 62 spaces + 'Z' -> "A" */
    regs[0] = 0x4120;
    for (size_t i = 1; i < 31; i++)
        regs[i] = 0x2020;
    regs[31] = 0x205A;
    p.count = 32;
    check_string(&p, regs, 32, "A");
}

static void test_bits(void **state)
{
    (void)state;
    struct col_point p = point(COL_BITS, COL_ABCD);
    p.scale = 0.1; /* not applied to flags */
    p.offset = 7.0;
    const uint16_t r[] = {0x8001};
    p.bit = 0;
    assert_true(dec_ok(&p, r, 1) == 1.0);
    p.bit = 1;
    assert_true(dec_ok(&p, r, 1) == 0.0);
    p.bit = 15;
    assert_true(dec_ok(&p, r, 1) == 1.0);
    p.bit = -1;
    assert_true(dec_ok(&p, r, 1) == 32769.0);
    const uint16_t w[] = {0x0180};
    p.bit = 7;
    assert_true(dec_ok(&p, w, 1) == 1.0);
    p.bit = 8;
    assert_true(dec_ok(&p, w, 1) == 1.0);
    p.bit = 0;
    assert_true(dec_ok(&p, w, 1) == 0.0);
    p.order = COL_BADC; /* wire 0x0180 is register 0x8001 */
    assert_true(dec_ok(&p, w, 1) == 1.0);
    p.bit = 7;
    assert_true(dec_ok(&p, w, 1) == 0.0);
    p.bit = 15;
    assert_true(dec_ok(&p, w, 1) == 1.0);
}

static void test_coils(void **state)
{
    (void)state;
    double v;
    const uint16_t bits[] = {0, 1, 0, 1}; /* coils 8..11 */
    struct col_point p = point(COL_BITS, COL_ABCD);
    p.table = COL_COIL;
    p.count = 1;
    p.scale = 5.0;
    p.offset = 3.0;
    p.zero_is_sentinel = true;
    p.address = 10;
    struct col_value out;
    assert_int_equal(col_decode(&p, 8, bits, 4, &out), COL_DECODE_OK);
    assert_true(out.number == 0.0);
    p.address = 11;
    assert_int_equal(col_decode(&p, 8, bits, 4, &out), COL_DECODE_OK);
    assert_true(out.number == 1.0);
    p.address = 12;
    assert_int_equal(col_decode(&p, 8, bits, 4, &out), COL_DECODE_RANGE);
    struct col_point d = point(COL_U32, COL_DCBA); /* any type reads one bit */
    d.table = COL_DISCRETE;
    d.count = 1;
    d.address = 9;
    assert_int_equal(col_decode(&d, 8, bits, 4, &out), COL_DECODE_OK);
    assert_true(out.number == 1.0);
    d.address = BASE;
    assert_int_equal(dec(&d, (uint16_t[]){0}, 1, &v), COL_DECODE_OK);
    assert_true(v == 0.0);
}

/* Encodes value for p, checks the words, then decodes them back to value. */
static void roundtrip(struct col_point p, double value, const uint16_t *want, int n)
{
    uint16_t regs[4] = {0xEEEE, 0xEEEE, 0xEEEE, 0xEEEE};
    assert_int_equal(col_encode(&p, value, regs, 4), n);
    for (int i = 0; i < n; i++)
        if (regs[i] != want[i])
            fail_msg("type %d order %d word %d: 0x%04X want 0x%04X", p.type, p.order, i, regs[i],
                     want[i]);
    if (n < 4)
        assert_int_equal(regs[n], 0xEEEE);
    p.count = (uint16_t)n;
    assert_true(dec_ok(&p, regs, (size_t)n) == value);
}

static struct col_point scaled(enum col_type t, enum col_order o, double scale, double offset)
{
    struct col_point p = point(t, o);
    p.scale = scale;
    p.offset = offset;
    p.writable = true;
    return p;
}

static void test_encode_roundtrip(void **state)
{
    (void)state;
    roundtrip(scaled(COL_U16, COL_ABCD, 1, 0), 4660.0, (uint16_t[]){0x1234}, 1);
    roundtrip(scaled(COL_U16, COL_CDAB, 1, 0), 4660.0, (uint16_t[]){0x1234}, 1);
    roundtrip(scaled(COL_U16, COL_BADC, 1, 0), 4660.0, (uint16_t[]){0x3412}, 1);
    roundtrip(scaled(COL_U16, COL_DCBA, 1, 0), 4660.0, (uint16_t[]){0x3412}, 1);
    roundtrip(scaled(COL_S16, COL_ABCD, 0.1, 0), -1234.0, (uint16_t[]){0xCFCC}, 1);
    roundtrip(scaled(COL_S16, COL_CDAB, 0.1, 0), -1234.0, (uint16_t[]){0xCFCC}, 1);
    roundtrip(scaled(COL_S16, COL_BADC, 0.1, 0), -1234.0, (uint16_t[]){0xCCCF}, 1);
    roundtrip(scaled(COL_S16, COL_DCBA, 0.1, 0), -1234.0, (uint16_t[]){0xCCCF}, 1);
    roundtrip(scaled(COL_S16, COL_ABCD, 0.1, -40), 20.5, (uint16_t[]){0x025D}, 1);
    roundtrip(scaled(COL_U32, COL_ABCD, 1, 0), 305419896.0, (uint16_t[]){0x1234, 0x5678}, 2);
    roundtrip(scaled(COL_U32, COL_CDAB, 1, 0), 305419896.0, (uint16_t[]){0x5678, 0x1234}, 2);
    roundtrip(scaled(COL_U32, COL_BADC, 1, 0), 305419896.0, (uint16_t[]){0x3412, 0x7856}, 2);
    roundtrip(scaled(COL_U32, COL_DCBA, 1, 0), 305419896.0, (uint16_t[]){0x7856, 0x3412}, 2);
    roundtrip(scaled(COL_S32, COL_ABCD, 1, 0), -123456789.0, (uint16_t[]){0xF8A4, 0x32EB}, 2);
    roundtrip(scaled(COL_S32, COL_CDAB, 1, 0), -123456789.0, (uint16_t[]){0x32EB, 0xF8A4}, 2);
    roundtrip(scaled(COL_S32, COL_BADC, 1, 0), -123456789.0, (uint16_t[]){0xA4F8, 0xEB32}, 2);
    roundtrip(scaled(COL_S32, COL_DCBA, 1, 0), -123456789.0, (uint16_t[]){0xEB32, 0xA4F8}, 2);
    roundtrip(scaled(COL_F32, COL_ABCD, 1, 0), 230.5, (uint16_t[]){0x4366, 0x8000}, 2);
    roundtrip(scaled(COL_F32, COL_CDAB, 1, 0), 230.5, (uint16_t[]){0x8000, 0x4366}, 2);
    roundtrip(scaled(COL_F32, COL_BADC, 1, 0), 230.5, (uint16_t[]){0x6643, 0x0080}, 2);
    roundtrip(scaled(COL_F32, COL_DCBA, 1, 0), 230.5, (uint16_t[]){0x0080, 0x6643}, 2);
    roundtrip(scaled(COL_F64, COL_DCBA, 1, 0), -1234.5625,
              (uint16_t[]){0x0000, 0x0000, 0x404A, 0x93C0}, 4);
    roundtrip(scaled(COL_S64, COL_CDAB, 1, 0), -2.0, (uint16_t[]){0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF},
              4);
    roundtrip(scaled(COL_U64, COL_BADC, 1, 0), 65536.0,
              (uint16_t[]){0x0000, 0x0000, 0x0100, 0x0000}, 4);
}

static void test_encode_rounding(void **state)
{
    (void)state;
    uint16_t r[2];
    struct col_point u = scaled(COL_U16, COL_ABCD, 0.1, 0);
    assert_int_equal(col_encode(&u, 12.34, r, 2), 1); /* 123.4 -> 123 */
    assert_int_equal(r[0], 123);
    struct col_point s = scaled(COL_S16, COL_ABCD, 1, 0);
    assert_int_equal(col_encode(&s, 2.5, r, 2), 1); /* half away from zero */
    assert_int_equal(r[0], 3);
    assert_int_equal(col_encode(&s, -2.5, r, 2), 1);
    assert_int_equal(r[0], 0xFFFD);
    assert_int_equal(col_encode(&s, -32768.4, r, 2), 1);
    assert_int_equal(r[0], 0x8000);
}

static void test_encode_errors(void **state)
{
    (void)state;
    uint16_t r[4];
    struct col_point u16 = scaled(COL_U16, COL_ABCD, 1, 0);
    assert_int_equal(col_encode(&u16, 65536.0, r, 4), -ERANGE);
    assert_int_equal(col_encode(&u16, 65535.5, r, 4), -ERANGE);
    assert_int_equal(col_encode(&u16, -1.0, r, 4), -ERANGE);
    assert_int_equal(col_encode(&u16, NAN, r, 4), -ERANGE);
    assert_int_equal(col_encode(&u16, INFINITY, r, 4), -ERANGE);
    struct col_point s16 = scaled(COL_S16, COL_ABCD, 1, 0);
    assert_int_equal(col_encode(&s16, 32768.0, r, 4), -ERANGE);
    assert_int_equal(col_encode(&s16, -32769.0, r, 4), -ERANGE);
    struct col_point s16s = scaled(COL_S16, COL_ABCD, 0.1, 0);
    assert_int_equal(col_encode(&s16s, 3276.8, r, 4), -ERANGE); /* raw 32768 */
    struct col_point u32 = scaled(COL_U32, COL_ABCD, 1, 0);
    assert_int_equal(col_encode(&u32, 4294967296.0, r, 4), -ERANGE);
    assert_int_equal(col_encode(&u32, 4294967295.0, r, 4), 2);
    struct col_point s32 = scaled(COL_S32, COL_ABCD, 1, 0);
    assert_int_equal(col_encode(&s32, 2147483648.0, r, 4), -ERANGE);
    assert_int_equal(col_encode(&s32, -2147483649.0, r, 4), -ERANGE);
    struct col_point f32 = scaled(COL_F32, COL_ABCD, 1, 0);
    assert_int_equal(col_encode(&f32, 1e39, r, 4), -ERANGE);

    assert_int_equal(col_encode(&u32, 1.0, r, 1), -EINVAL); /* nregs too small */
    struct col_point str = scaled(COL_STRING, COL_ABCD, 1, 0);
    str.count = 2;
    assert_int_equal(col_encode(&str, 1.0, r, 4), -EINVAL);
    struct col_point bits = scaled(COL_BITS, COL_ABCD, 1, 0);
    assert_int_equal(col_encode(&bits, 1.0, r, 4), -EINVAL);
    struct col_point sf = scaled(COL_U16, COL_ABCD, 1, 0);
    sf.sf_address = 101;
    assert_int_equal(col_encode(&sf, 1.0, r, 4), -EINVAL);
    struct col_point in = scaled(COL_U16, COL_ABCD, 1, 0);
    in.table = COL_INPUT;
    assert_int_equal(col_encode(&in, 1.0, r, 4), -EINVAL);
    struct col_point zero = scaled(COL_U16, COL_ABCD, 0, 0);
    assert_int_equal(col_encode(&zero, 1.0, r, 4), -EINVAL);
}

static void test_encode_coil(void **state)
{
    (void)state;
    uint16_t r[1] = {7};
    struct col_point c = scaled(COL_BITS, COL_ABCD, 1, 0);
    c.table = COL_COIL;
    assert_int_equal(col_encode(&c, 1.0, r, 1), 1);
    assert_int_equal(r[0], 1);
    assert_int_equal(col_encode(&c, 0.0, r, 1), 1);
    assert_int_equal(r[0], 0);
    assert_int_equal(col_encode(&c, 0.5, r, 1), -ERANGE);
    assert_int_equal(col_encode(&c, 1.0, r, 0), -EINVAL);
    c.table = COL_DISCRETE;
    assert_int_equal(col_encode(&c, 1.0, r, 1), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_regs),
        cmocka_unit_test(test_numbers_all_orders),
        cmocka_unit_test(test_block_offset),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_sentinels_16),
        cmocka_unit_test(test_sentinels_32_64),
        cmocka_unit_test(test_float_specials),
        cmocka_unit_test(test_zero_is_sentinel),
        cmocka_unit_test(test_sunspec_sf),
        cmocka_unit_test(test_scale_offset_limits),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_string_truncation),
        cmocka_unit_test(test_bits),
        cmocka_unit_test(test_coils),
        cmocka_unit_test(test_encode_roundtrip),
        cmocka_unit_test(test_encode_rounding),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_encode_coil),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
