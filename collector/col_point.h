/* col_point: the description of one Modbus data point (from a profile or a SunSpec model)
 * and of one decoded value. Shared by decoding, coalescing, SunSpec, profiles and the poller. */
#ifndef COL_POINT_H
#define COL_POINT_H
#include <stdbool.h>
#include <stdint.h>

enum col_table { COL_HOLDING, COL_INPUT, COL_COIL, COL_DISCRETE, COL_TABLE_COUNT };

enum col_type {
    COL_U16, COL_S16, COL_U32, COL_S32, COL_U64, COL_S64,
    COL_F32, COL_F64, COL_STRING, COL_BITS
};

/* Word/byte order of multi-register values, named by where the bytes of the big-endian value
 * A B C D (A most significant) appear on the wire: ABCD = big-endian words, big-endian bytes;
 * CDAB = word-swapped; BADC = byte-swapped in each word; DCBA = little-endian. For 64-bit types
 * the same rule extends to 4 words (ABCDEFGH, GHEFCDAB, BADCFEHG, HGFEDCBA). */
enum col_order { COL_ABCD, COL_CDAB, COL_BADC, COL_DCBA };

#define COL_NAME_MAX 48
#define COL_MAX_SENTINELS 4
#define COL_STRING_MAX 64 /* bytes of a decoded string value incl. terminator */

struct col_point {
    char name[COL_NAME_MAX];   /* field name with unit, e.g. "power_w" */
    enum col_table table;
    uint16_t address;          /* 0-based protocol address */
    uint16_t count;            /* registers (or bits for coil/discrete) the raw value occupies */
    enum col_type type;
    enum col_order order;
    int8_t bit;                /* COL_BITS: bit index 0..15 in the register; -1: whole register */
    double scale;              /* value = raw * scale * 10^sf + offset (scale defaults to 1) */
    double offset;
    bool has_min, has_max;     /* plausibility limits on the final value */
    double min, max;
    uint8_t nsentinel;         /* raw values (as unsigned of the type's width) meaning "not implemented" */
    uint64_t sentinel[COL_MAX_SENTINELS];
    bool nan_is_sentinel;      /* float NaN means "not implemented" (SunSpec; default true) */
    int32_t sf_address;        /* -1: none; else address of an int16 scale-factor register (SunSpec),
                                  which must be read in the same request as the value */
    bool zero_is_sentinel;     /* SunSpec accumulators: 0 means "not implemented" */
    bool writable;             /* may be written through device/DEV/set/POINT */
    bool static_value;         /* read once after (re)connect, not every poll (e.g. SunSpec model 1) */
};

enum col_value_kind { COL_VAL_NUMBER, COL_VAL_STRING };

struct col_value {
    enum col_value_kind kind;
    double number;
    char str[COL_STRING_MAX];
};

/* Result codes of decoding one point (0 = value produced). */
enum {
    COL_DECODE_OK = 0,
    COL_DECODE_NOTIMPL = 1,     /* sentinel: the device says it has no such value */
    COL_DECODE_IMPLAUSIBLE = 2, /* outside min/max, or NaN/Inf after scaling */
    COL_DECODE_BADSF = 3,       /* scale factor missing, a sentinel, or outside -10..10 */
    COL_DECODE_RANGE = 4        /* the registers given do not cover the point */
};

#endif
