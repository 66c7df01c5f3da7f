/* col_rtu: the pure Modbus RTU frame codec (CRC-16/MODBUS, request frames, response validation).
 * No I/O: the rtu-over-tcp bus backend and the unit tests feed it bytes. Frames are
 * unit, function code, PDU data, CRC (low byte first), as in the Modbus serial line spec. */
#ifndef COL_RTU_H
#define COL_RTU_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "col_bus.h" /* COL_BUS_EXC_BASE */

/* Largest RTU frame (ADU): 1 unit + 253 PDU + 2 CRC. Frame buffers passed in are this big. */
#define COL_RTU_MAX_ADU 256

/* Modbus function codes this codec speaks. */
enum {
    COL_RTU_FC_READ_COILS = 0x01,
    COL_RTU_FC_READ_DISCRETE = 0x02,
    COL_RTU_FC_READ_HOLDING = 0x03,
    COL_RTU_FC_READ_INPUT = 0x04,
    COL_RTU_FC_WRITE_COIL = 0x05,
    COL_RTU_FC_WRITE_REG = 0x06,
    COL_RTU_FC_WRITE_REGS = 0x10
};

/* Protocol limits on the quantity of one request (Modbus application protocol spec). */
#define COL_RTU_MAX_READ_BITS 2000
#define COL_RTU_MAX_READ_REGS 125
#define COL_RTU_MAX_WRITE_REGS 123

/* CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF) of n bytes. The frame carries the
 * result low byte first. */
uint16_t col_rtu_crc(const uint8_t *p, size_t n);

/* Builds a read request (fc 1..4) for count bits/registers at addr into frame
 * (COL_RTU_MAX_ADU bytes). Returns the frame length (8), or 0 for an unknown fc, a unit
 * outside 0..255, a count outside 1..2000 (bits) / 1..125 (registers), or a range past 0xFFFF. */
size_t col_rtu_build_read(uint8_t *frame, int unit, uint8_t fc, uint16_t addr, uint16_t count);

/* Builds fc 05 (coil on = FF00, off = 0000). Returns 8, or 0 for a unit outside 0..255. */
size_t col_rtu_build_write_coil(uint8_t *frame, int unit, uint16_t addr, bool on);

/* Builds fc 06 (one holding register). Returns 8, or 0 for a unit outside 0..255. */
size_t col_rtu_build_write_reg(uint8_t *frame, int unit, uint16_t addr, uint16_t value);

/* Builds fc 16 for n registers from vals (not kept). Returns 9 + 2n, or 0 for a unit
 * outside 0..255, n outside 1..123, or a range past 0xFFFF. */
size_t col_rtu_build_write_regs(uint8_t *frame, int unit, uint16_t addr, const uint16_t *vals,
                                uint16_t n);

/* Length of the normal (non-exception) response to a request with this fc and quantity
 * (count = bits or registers; ignored for fc 5, 6). Returns 0 for an unknown fc or a count
 * outside the protocol limits. An exception response is always 5 bytes. */
size_t col_rtu_expected_len(uint8_t fc, uint16_t count);

/* Validates the first n received bytes of a response to a request (unit, fc, count) and
 * decodes it into out, which the caller owns:
 *   fc 1, 2: count values 0/1;  fc 3, 4: count registers;
 *   fc 5, 6, 16: out[0] = echoed address, out[1] = echoed value (5, 6) or quantity (16),
 *   for the caller to compare with its request; out may be NULL for these.
 * Returns 0; -EAGAIN when the bytes so far are a valid prefix and more are needed;
 * -(COL_BUS_EXC_BASE + code) for a well-formed exception reply; -EBADMSG for a wrong unit,
 * wrong fc, wrong byte count, wrong fc 16 quantity, bad CRC, or more bytes than the frame
 * has; -EINVAL for an fc/count that col_rtu_expected_len rejects. */
int col_rtu_parse(const uint8_t *frame, size_t n, int unit, uint8_t fc, uint16_t count,
                  uint16_t *out);

#endif
