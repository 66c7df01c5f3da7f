/* bal_jobreq: validation of job requests that operators and machines send over MQTT
 * (PREFIX/SITE/jobs/request): a new one-off job, or the cancellation of one. Hostile input is
 * expected (size, shape, absurd numbers). Pure. */
#ifndef BAL_JOBREQ_H
#define BAL_JOBREQ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bal_model.h"
#include "bal_types.h"

#define BAL_JOBREQ_MAX_BYTES 4096
/* job.cfg of a requested job: it has no entry in the config's jobs. */
#define BAL_JOBREQ_NO_CFG ((size_t)-1)
/* A deadline further ahead than this is refused. */
#define BAL_JOBREQ_AHEAD_MAX_MS (366LL * 24 * 3600 * 1000)

struct bal_jobreq {
    bool cancel;               /* {"cancel":"JOB"}: id is the job to cancel, job is unused (zeroed) */
    char id[BAL_ID_MAX];       /* the request's id: "" when it carried none (the caller names the job)
                                * or none that is an id */
    struct bal_job job;        /* the job to plan (not for a cancel) */
};

/* Parses and checks one request against config c at now_ms (unix ms). A request is
 *   {"id":"laser-42"?, "machine":"laser", "duration_min":120 | "energy_wh":N,
 *    "earliest":"2016-07-15T08:00:00+02:00"?, "deadline":"2016-07-15T18:00:00+02:00",
 *    "required":true?, "surplus_only":false?}
 * or {"cancel":"JOB"}; "?" marks optional keys, JSON null counts as absent. Ids match
 * [a-z0-9][a-z0-9_-]{0,31}; times are ISO 8601 with an offset or Z.
 * Returns 0 with out filled: job.id = id, job.cfg = BAL_JOBREQ_NO_CFG, job.machine the machine's
 * index, energy_wh the given energy or duration_min x the machine's power_w / 60 (modulating: its
 * maximum), earliest_ms as given (default now_ms), required default true (false with surplus_only,
 * as in the config), done_wh 0, not running. Otherwise -EINVAL with a one-line reason (no newline,
 * truncated to rlen; reason may be NULL), e.g.
 *   payload of 5000 bytes exceeds 4096        not JSON at byte 12
 *   must be a JSON object, got an array       mchine: unknown key (did you mean "machine"?)
 *   machine: no machine "saw"                 duration_min: must be an integer 1..10080, got 0
 *   energy_wh: not with duration_min (give one of them)   duration_min: missing (required, or energy_wh)
 *   deadline: must be in the future (now 2016-07-15T10:00:00Z), got "2016-07-15T09:00:00Z"
 *   deadline: must be after earliest (2016-07-15T12:00:00Z), got "2016-07-15T11:00:00Z"
 *   deadline: must be at most 366 days ahead, got "2018-01-01T00:00:00Z"
 *   needs 120 min at 3000 W, only 90 min between earliest and deadline  ("now" when earliest
 *                                   is absent or past)
 *   cancel: must match [a-z0-9][a-z0-9_-]{0,31}, got "Job 1"     machine: not with cancel
 * The first problem in document order is reported. out->id is set whenever the request carried a
 * valid id ("id", or "cancel"), also when it is rejected, so that the caller can answer on jobs/ID;
 * otherwise "". Never reads past len; payload need not be NUL-terminated. */
int bal_jobreq_parse(const struct bal_config *c, const void *payload, size_t len, int64_t now_ms,
                     struct bal_jobreq *out, char *reason, size_t rlen);

#endif
