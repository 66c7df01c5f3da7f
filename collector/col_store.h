/* col_store: where every InfluxDB line goes. Lines are collected in memory, committed to the durable
 * spool at least once a second (so kill -9 loses at most the last second), and posted by the writer
 * thread, which removes them from the spool only when InfluxDB acknowledged them. */
#ifndef COL_STORE_H
#define COL_STORE_H
#include "col_config.h"
#include "fg_clock.h"

#include <stddef.h>
#include <stdint.h>

struct col_store_stats {
    uint64_t added;        /* lines handed to the store */
    uint64_t written;      /* acknowledged by InfluxDB */
    uint64_t dropped;      /* lost: evicted by the spool cap, or refused because memory was full */
    uint64_t rejected;     /* refused by InfluxDB as invalid (never retried) */
    uint64_t spool_points; /* waiting in the spool */
    uint64_t spool_bytes;
    uint64_t write_errors; /* failed write attempts */
    uint64_t requests, bytes_raw, bytes_sent;
    int64_t request_max_ms;  /* the longest write attempt so far */
    bool recovered_corrupt;  /* the spool found at start was corrupt and was set aside */
};

struct col_store;
/* Opens the spool under cfg->spool_dir and starts the spool and writer threads. clk decides how often
 * the pending lines are committed (every simulated second, at most every real second). Returns NULL with err. */
struct col_store *col_store_new(const struct fg_influx_cfg *cfg, const struct fg_clock *clk, char *err, size_t errlen);
/* Queues one complete line (ending in '\n'). Thread-safe. Returns 0, or -ENOBUFS when the in-memory queue is
 * full because the spool cannot keep up (counted in dropped). */
int col_store_add(struct col_store *s, const char *line, size_t len);
void col_store_stats(struct col_store *s, struct col_store_stats *out);
/* Commits what is pending, lets the writer drain for up to drain_ms and stops both threads; the stats
 * stay readable. NULL ok; a second call does nothing. */
void col_store_stop(struct col_store *s, unsigned drain_ms);
/* Stops (without draining) if still running, and closes the spool. NULL ok. */
void col_store_free(struct col_store *s);

#endif
