/* col_profile: device profiles, JSON register maps (config/profiles/NAME.json) turned into
 * arrays of struct col_point, validated with the same error format as the site config.
 *
 * Format (every key documented in docs/config.md):
 *   { "name": "sdm630",                      required, [a-z0-9][a-z0-9_-]{0,31}
 *     "source": "vendor manual and version", optional string (where the addresses come from)
 *     "notes": "..." or ["...", ...],        optional
 *     "max_gap": 16,                         optional 0..125: registers a coalesced read may skip
 *     "points": [ {                          required, 1..1000 points
 *        "name": "power_w",                  required, [a-z][a-z0-9_]{0,46}, unique in the profile
 *        "table": "input",                   required: holding | input | coil | discrete
 *        "address": 52,                      required 0..65535 (0-based protocol address)
 *        "type": "f32",                      u16 s16 u32 s32 u64 s64 f32 f64 string bits; required
 *                                            for holding/input, "bits" (the default) for coil/discrete
 *        "order": "ABCD",                    ABCD | CDAB | BADC | DCBA, default ABCD (holding/input)
 *        "count": 8,                         string only, required: registers 1..31
 *        "bit": 3,                           bits on holding/input only: 0..15, default whole register
 *        "scale": 1000, "offset": 0,         value = raw * scale + offset; scale != 0, default 1 / 0
 *        "min": 0, "max": 500,               optional plausibility limits of the value (not string)
 *        "sentinel": [65535, "0x8000"],      up to 4 raw values meaning "not implemented" (integers
 *                                            or "0x" hex strings; negative ones for signed types)
 *        "nan_sentinel": true,               f32/f64 only: NaN means "not implemented", default true
 *        "writable": false } ] }             holding/coil only, not string; default false
 */
#ifndef COL_PROFILE_H
#define COL_PROFILE_H
#include <stdbool.h>
#include <stddef.h>

#include "col_point.h"
#include "fg_cfg.h"

#define COL_PROFILE_MAX_POINTS 1000

/* Loads and validates the profile in file. On success returns 0 with *out (owned by the
 * caller, free()) holding *n points, and *max_gap (if not NULL) the profile's max_gap or -1
 * when it sets none. On failure returns -EINVAL with *out = NULL, *n = 0, after appending every
 * error to errs as "FILE: points[3].type: ..." (FILE being the profile file). */
int col_profile_load(const char *file, struct col_point **out, size_t *n, int *max_gap, struct fg_cfg *errs);

/* A point or field name: [a-z][a-z0-9_]{0,46} (it becomes an MQTT/InfluxDB field name). */
#define COL_PROFILE_NAME_PATTERN "[a-z][a-z0-9_]{0,46}"
bool col_profile_name_ok(const char *s);

/* The same for a document already parsed; errors go to pc, whose file names the profile. */
int col_profile_parse(struct fg_cfg *pc, const cJSON *root, struct col_point **out, size_t *n, int *max_gap);

#endif
