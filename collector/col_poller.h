/* col_poller: one thread per bus that polls its devices on absolute deadlines, isolates failures
 * (timeouts, exceptions, broken connections) with per-device exponential backoff, discovers SunSpec
 * devices, plans coalesced reads, decodes, and hands readings to a sink. Also executes writes. */
#ifndef COL_POLLER_H
#define COL_POLLER_H
#include "col_config.h"
#include "col_point.h"
#include "fg_clock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct col_field {
    const char *name;
    struct col_value v;
};

/* Called on bus threads (concurrently for different buses). The arrays are valid only during the call. */
struct col_sink {
    void (*reading)(void *ud, size_t dev, int64_t ts_ms, const struct col_field *f, size_t n);
    void (*status)(void *ud, size_t dev, bool online);
    void *ud;
};

#define COL_LATE_STEP_US 50
#define COL_LATE_FINE 200
#define COL_LATE_BUCKETS (COL_LATE_FINE + 2)

struct col_poller_stats {
    uint64_t polls;          /* device poll cycles started */
    uint64_t readings;       /* cycles that produced a reading */
    uint64_t failures;       /* cycles that produced nothing */
    uint64_t skipped;        /* cycles skipped because a poll overran its slot */
    uint64_t requests;       /* Modbus requests sent */
    uint64_t modbus_errors;  /* failed requests of any kind */
    uint64_t writes, write_errors;
    /* poll start lateness against the schedule: bucket i < COL_LATE_FINE counts [i*50us, (i+1)*50us);
       bucket COL_LATE_FINE counts 10..100 ms, the last one >= 100 ms */
    uint64_t late_hist[COL_LATE_BUCKETS];
    int64_t late_max_us;
};

struct col_poller;
/* Prepares one runner per bus of cfg (cfg must outlive the poller). Returns NULL with err. */
struct col_poller *col_poller_new(const struct col_config *cfg, const struct fg_clock *clk,
                                  const struct col_sink *sink, char *err, size_t errlen);
/* Starts the bus threads. Returns 0 or negative errno. */
int col_poller_start(struct col_poller *p);
/* Asks the threads to stop and joins them. */
void col_poller_stop(struct col_poller *p);
void col_poller_free(struct col_poller *p);
/* Polls every device once, sequentially, on the calling thread (for --once); the sink gets each reading.
 * Returns the number of devices that failed, and writes their errors (one line each) into err. */
int col_poller_once(struct col_poller *p, char *err, size_t errlen);
/* Queues a write of value to the named point of device dev (executed by its bus thread between polls).
 * Returns 0, -ENOENT (no such point), -EPERM (point not writable), -ENOBUFS (queue full). */
int col_poller_write(struct col_poller *p, size_t dev, const char *point, double value);
void col_poller_stats(struct col_poller *p, struct col_poller_stats *out);

#endif
