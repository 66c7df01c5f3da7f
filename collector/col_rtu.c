/* col_rtu: pure Modbus RTU frame codec. Builds request frames and validates responses
 * byte by byte, so that a reader can ask "complete yet?" after every recv() without
 * knowing the framing rules itself. */
#include "col_rtu.h"

#include <errno.h>

#define EXC_FRAME_LEN 5 /* unit, fc | 0x80, code, CRC lo, CRC hi */

uint16_t col_rtu_crc(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)(v & 0xFF);
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* Appends the CRC (low byte first) to the len bytes of frame; returns the new length. */
static size_t seal(uint8_t *frame, size_t len)
{
    uint16_t crc = col_rtu_crc(frame, len);
    frame[len] = (uint8_t)(crc & 0xFF);
    frame[len + 1] = (uint8_t)(crc >> 8);
    return len + 2;
}

static bool crc_ok(const uint8_t *frame, size_t len)
{
    uint16_t crc = col_rtu_crc(frame, len - 2);
    return frame[len - 2] == (crc & 0xFF) && frame[len - 1] == (crc >> 8);
}

static bool is_bit_read(uint8_t fc)
{
    return fc == COL_RTU_FC_READ_COILS || fc == COL_RTU_FC_READ_DISCRETE;
}

static bool is_reg_read(uint8_t fc)
{
    return fc == COL_RTU_FC_READ_HOLDING || fc == COL_RTU_FC_READ_INPUT;
}

/* A request of count items from addr must not run past the last address 0xFFFF. */
static bool range_ok(uint16_t addr, uint16_t count)
{
    return (uint32_t)addr + count <= 0x10000u;
}

/* Writes unit, fc and two big-endian words, then the CRC: the shape of fc 1..6 requests. */
static size_t build_simple(uint8_t *frame, int unit, uint8_t fc, uint16_t w1, uint16_t w2)
{
    if (unit < 0 || unit > 255)
        return 0;
    frame[0] = (uint8_t)unit;
    frame[1] = fc;
    put_u16(frame + 2, w1);
    put_u16(frame + 4, w2);
    return seal(frame, 6);
}

size_t col_rtu_build_read(uint8_t *frame, int unit, uint8_t fc, uint16_t addr, uint16_t count)
{
    if (col_rtu_expected_len(fc, count) == 0 || !(is_bit_read(fc) || is_reg_read(fc)))
        return 0;
    if (!range_ok(addr, count))
        return 0;
    return build_simple(frame, unit, fc, addr, count);
}

size_t col_rtu_build_write_coil(uint8_t *frame, int unit, uint16_t addr, bool on)
{
    return build_simple(frame, unit, COL_RTU_FC_WRITE_COIL, addr, on ? 0xFF00 : 0x0000);
}

size_t col_rtu_build_write_reg(uint8_t *frame, int unit, uint16_t addr, uint16_t value)
{
    return build_simple(frame, unit, COL_RTU_FC_WRITE_REG, addr, value);
}

size_t col_rtu_build_write_regs(uint8_t *frame, int unit, uint16_t addr, const uint16_t *vals,
                                uint16_t n)
{
    if (unit < 0 || unit > 255 || n < 1 || n > COL_RTU_MAX_WRITE_REGS || !range_ok(addr, n))
        return 0;
    frame[0] = (uint8_t)unit;
    frame[1] = COL_RTU_FC_WRITE_REGS;
    put_u16(frame + 2, addr);
    put_u16(frame + 4, n);
    frame[6] = (uint8_t)(2 * n);
    for (uint16_t i = 0; i < n; i++)
        put_u16(frame + 7 + 2 * i, vals[i]);
    return seal(frame, 7 + 2 * (size_t)n);
}

size_t col_rtu_expected_len(uint8_t fc, uint16_t count)
{
    if (is_bit_read(fc)) {
        if (count < 1 || count > COL_RTU_MAX_READ_BITS)
            return 0;
        return 3 + (count + 7u) / 8u + 2;
    }
    if (is_reg_read(fc)) {
        if (count < 1 || count > COL_RTU_MAX_READ_REGS)
            return 0;
        return 3 + 2u * count + 2;
    }
    if (fc == COL_RTU_FC_WRITE_COIL || fc == COL_RTU_FC_WRITE_REG)
        return 8;
    if (fc == COL_RTU_FC_WRITE_REGS)
        return (count >= 1 && count <= COL_RTU_MAX_WRITE_REGS) ? 8 : 0;
    return 0;
}

/* An exception reply: unit, fc | 0x80, code, CRC. Called once frame[1] says so. */
static int parse_exception(const uint8_t *frame, size_t n)
{
    if (n < EXC_FRAME_LEN)
        return -EAGAIN;
    if (n > EXC_FRAME_LEN || !crc_ok(frame, EXC_FRAME_LEN))
        return -EBADMSG;
    return -(COL_BUS_EXC_BASE + frame[2]);
}

/* Decodes the data of a complete, CRC-checked normal response. */
static int decode(const uint8_t *frame, uint8_t fc, uint16_t count, uint16_t *out)
{
    const uint8_t *data = frame + 3;
    if (is_bit_read(fc)) {
        for (uint16_t i = 0; i < count; i++)
            out[i] = (uint16_t)((data[i / 8] >> (i % 8)) & 1);
        return 0;
    }
    if (is_reg_read(fc)) {
        for (uint16_t i = 0; i < count; i++)
            out[i] = get_u16(data + 2 * i);
        return 0;
    }
    /* writes echo the address and the value (5, 6) or the quantity (16) */
    if (fc == COL_RTU_FC_WRITE_REGS && get_u16(frame + 4) != count)
        return -EBADMSG;
    if (out) {
        out[0] = get_u16(frame + 2);
        out[1] = get_u16(frame + 4);
    }
    return 0;
}

int col_rtu_parse(const uint8_t *frame, size_t n, int unit, uint8_t fc, uint16_t count,
                  uint16_t *out)
{
    size_t want = col_rtu_expected_len(fc, count);
    if (want == 0)
        return -EINVAL;
    if (n < 1)
        return -EAGAIN;
    if (frame[0] != (uint8_t)unit)
        return -EBADMSG;
    if (n < 2)
        return -EAGAIN;
    if (frame[1] == (fc | 0x80))
        return parse_exception(frame, n);
    if (frame[1] != fc)
        return -EBADMSG;
    /* reads carry a byte count that must match the quantity asked for */
    if ((is_bit_read(fc) || is_reg_read(fc)) && n >= 3 && frame[2] != want - 5)
        return -EBADMSG;
    if (n < want)
        return -EAGAIN;
    if (n > want || !crc_ok(frame, want))
        return -EBADMSG;
    return decode(frame, fc, count, out);
}
