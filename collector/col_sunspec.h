/* col_sunspec: the pure half of SunSpec support. It walks the model chain from the headers the
 * poller reads (SunS marker, then ID/L pairs) and turns the models it knows into col_point arrays
 * for the decoder. No I/O, no clock, no logging: the poller reads, this module decides. */
#ifndef COL_SUNSPEC_H
#define COL_SUNSPEC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "col_point.h"

#define COL_SS_MAX_MODELS 32
/* Upper bound of col_sunspec_points() for any map: no supported model yields more than 30 points
 * (model 160 with 6 usable modules), so a buffer of this size never gets -ENOSPC. */
#define COL_SS_MAX_POINTS (COL_SS_MAX_MODELS * 30)

/* Where the SunS marker may sit, in the order to try them (0-based protocol addresses: 40000 is
 * the manuals' "40001"). */
#define COL_SS_NBASES 3
static const uint16_t COL_SUNSPEC_BASES[COL_SS_NBASES] = {40000, 0, 50000};

struct col_ss_model {
    uint16_t id;
    uint16_t address; /* address of the model's ID register */
    uint16_t length;  /* L as reported by the device (registers after the L register) */
};

struct col_ss_map {
    uint16_t base; /* address of the SunS marker */
    struct col_ss_model models[COL_SS_MAX_MODELS];
    size_t n;
};

/* True if regs[0..1] hold "SunS" (0x5375 0x6e53). False for NULL. */
bool col_sunspec_is_marker(const uint16_t regs[2]);

/* Starts a walk at base (where SunS was found): empties the map. The first model header is at
 * base + 2; the caller sets *next_addr to that before the first col_sunspec_walk_step(). */
void col_sunspec_walk_init(struct col_ss_map *m, uint16_t base);

/* Feeds the header registers read at *next_addr: hdr[0] = model id, hdr[1] = L; nhdr = 2, or 1 when
 * the device only answered one register at the end of the chain.
 * Returns 1: model appended to m, *next_addr now points at the next header (address + 2 + L, the
 *            length the device reports, so a model 1 with L=65 is followed correctly);
 *         0: end marker (id 0xFFFF; L is ignored, and may be absent);
 *   -EBADMSG: implausible chain, with a message in err: model id 0, no L register for a model,
 *            a model running past register 65535, more than COL_SS_MAX_MODELS models, or *next_addr
 *            not where the previous step left it (a loop, or a caller feeding a wrong address);
 *   -EINVAL: m, hdr or next_addr NULL, or nhdr 0.
 * On error m and *next_addr are unchanged. err may be NULL (errlen is then ignored). */
int col_sunspec_walk_step(struct col_ss_map *m, const uint16_t *hdr, size_t nhdr,
                          uint16_t *next_addr, char *err, size_t errlen);

/* Whether a model id is decoded by col_sunspec_points: 1, 101-103, 111-113, 120, 124, 160,
 * 201-204, 211-214. */
bool col_sunspec_supported(uint16_t id);

/* Writes the points of every supported model in m into out[0..cap), in chain order; unsupported
 * models are skipped. Every point: table COL_HOLDING, absolute address, order COL_ABCD, bit -1,
 * sf_address (the model's scale-factor register) or -1, SunSpec "not implemented" sentinels
 * (int16 0x8000, uint16/enum16 0xFFFF, uint32/bitfield32 0xFFFFFFFF, acc32 0 via
 * zero_is_sentinel, float NaN via nan_is_sentinel), plausibility limits; static_value for models
 * 1 and 120. Points that lie past the model's reported L, or whose value and scale factor are
 * more than 124 registers apart (one request cannot cover both), are left out; for model 160 a
 * whole MPPT module is left out then (with the standard layout: module 7 and later).
 * Names are unique: when a model would repeat a name an earlier model produced (e.g. a meter 203
 * behind an inverter 103 in the same chain, or a second model 1), all that model's names get the
 * prefix "m<k>_", k being its 1-based position in the chain ("m5_power_w").
 * Returns the number of points, -ENOSPC if cap is too small (out then holds a partial result),
 * -EINVAL if m is NULL or out is NULL with cap > 0. out is owned by the caller. */
int col_sunspec_points(const struct col_ss_map *m, struct col_point *out, size_t cap);

#endif
