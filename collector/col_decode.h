/* col_decode: turns the raw registers of one Modbus read into the value of a point, and a value
 * back into raw registers for a write. Pure: no I/O, no clock, no logging; every outcome is a
 * return code, so the poller decides what to publish, omit or log. */
#ifndef COL_DECODE_H
#define COL_DECODE_H
#include <stddef.h>
#include <stdint.h>

#include "col_point.h"

/* Word and byte order (p->order), for a value of n registers. Let W0..Wn-1 be the value's
 * big-endian 16-bit words, W0 most significant, each written as its bytes hi:lo.
 *   ABCD  wire registers W0 W1 .. Wn-1, each hi:lo             (big-endian, Modbus default)
 *   CDAB  wire registers Wn-1 .. W1 W0, each hi:lo             (register order reversed)
 *   BADC  wire registers W0 W1 .. Wn-1, each lo:hi             (bytes swapped in each register)
 *   DCBA  wire registers Wn-1 .. W1 W0, each lo:hi             (fully little-endian)
 * So for 32-bit 0x12345678: ABCD {0x1234,0x5678}, CDAB {0x5678,0x1234}, BADC {0x3412,0x7856},
 * DCBA {0x7856,0x3412}; for 64-bit 0x0102030405060708: CDAB {0x0708,0x0506,0x0304,0x0102},
 * DCBA {0x0807,0x0605,0x0403,0x0201}. For 16-bit types (and COL_BITS) ABCD/CDAB are big-endian and
 * BADC/DCBA swap the two bytes. Strings keep register order and take the high byte first
 * (ABCD/CDAB) or the low byte first (BADC/DCBA). A SunSpec scale-factor register is always read
 * big-endian, as SunSpec defines it. */

/* Number of registers a type occupies: u16/s16/bits 1, u32/s32/f32 2, u64/s64/f64 4;
 * string: 0 (its length is p->count). Unknown types: 0. */
unsigned col_type_regs(enum col_type t);

/* Registers (bits, for the coil/discrete tables) point p occupies from p->address, sf register not
 * included: max(p->count, col_type_regs(p->type), 1) for register tables, max(p->count, 1) for bit
 * tables. Decoding and read coalescing both use it, so a planned read always covers what the
 * decoder needs. */
unsigned col_point_span(const struct col_point *p);

/* Decodes point p from a block of registers that one request returned, starting at address `base`.
 * regs[i] holds the register at base+i; for the coil/discrete tables regs[i] is 0 or 1 (one bit per
 * element). p, out must not be NULL; regs may be NULL only when nregs is 0.
 * Checks, in this order:
 *   COL_DECODE_RANGE     [p->address, +col_point_span(p)) not inside [base, base+nregs), or a
 *                        COL_BITS bit index outside -1..15, or an unknown type;
 *   COL_DECODE_NOTIMPL   raw value (unsigned, of the type's width; for COL_BITS the whole register)
 *                        equals a sentinel, or is 0 with zero_is_sentinel, or a float NaN with
 *                        nan_is_sentinel, or a string is empty after cleaning;
 *   COL_DECODE_IMPLAUSIBLE  float NaN without nan_is_sentinel, or float +-Inf;
 *   COL_DECODE_BADSF     sf_address >= 0 and that register is outside the block, is 0x8000, or is
 *                        outside -10..10;
 *   COL_DECODE_IMPLAUSIBLE  the final value is not finite, or is outside min/max.
 * Numbers: value = raw * scale * 10^sf + offset. COL_BITS gives the bit (0.0/1.0) or, with bit -1,
 * the whole register as unsigned; scale, sf and offset are not applied (flags are not quantities).
 * Coil/discrete tables: any type reads one bit as 0.0/1.0; sentinels, sf, scale, offset and limits
 * are not applied there.
 * Returns COL_DECODE_OK and fills *out (numbers: kind COL_VAL_NUMBER, str ""; strings: kind
 * COL_VAL_STRING, number 0). On any other code *out is left unchanged. */
int col_decode(const struct col_point *p, uint16_t base, const uint16_t *regs, size_t nregs,
               struct col_value *out);

/* Inverse for writes: raw = (value - offset) / scale, rounded to nearest (half away from zero) for
 * integer types, written into regs[0..) in p->order. Coil points encode 0.0 -> 0 and 1.0 -> 1 in
 * regs[0], whatever their type.
 * Returns the number of registers written (the type's width; 1 for a coil), or
 *   -ERANGE  value not finite, or the raw value does not fit the type (coil: value not 0 or 1);
 *   -EINVAL  string or bits type on a register table, nregs too small, scale 0 or not finite,
 *            a SunSpec sf point (sf_address >= 0), or a read-only table (input, discrete).
 * Sentinels and min/max are not checked: the caller decides what may be written. */
int col_encode(const struct col_point *p, double value, uint16_t *regs, size_t nregs);

#endif
