/* col_writer: the collector's InfluxDB writer thread. It takes the oldest lines from the spool, posts
 * them gzipped with libcurl to InfluxDB v1 (/write) or v2 (/api/v2/write), one request in flight and in
 * order, and removes them from the spool only when the server stored (or refused for good) them.
 * The response rules and back-off are col_wpolicy's; this file is the thin shell around them. */
#ifndef COL_WRITER_H
#define COL_WRITER_H
#include "col_spool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The spool as the writer sees it (col_spool_peek / col_spool_batch_clear / col_spool_ack with ud the
 * struct col_spool), so that tests can feed the writer from memory. Called only from the writer thread. */
struct col_wsource {
    int (*peek)(void *ud, size_t max_lines, size_t max_bytes, struct col_spool_batch *b); /* n, 0 empty, <0 */
    void (*clear)(struct col_spool_batch *b);
    int (*ack)(void *ud, int64_t first_id, int64_t last_id); /* >= 0, or <0 on error */
    void (*release)(void *ud); /* optional: the last peeked lines are no longer in flight (attempt failed) */
    void *ud;
};

/* The real spool as a source (s must outlive the writer). */
struct col_wsource col_writer_spool_source(struct col_spool *s);

struct col_writer_opts {
    const char *url;           /* "http://127.0.0.1:8086" (a trailing '/' is ignored) */
    int api;                   /* 1: /write?db=&rp=  2: /api/v2/write?org=&bucket= */
    const char *database, *rp; /* v1; rp NULL or "" leaves it out (the database's default) */
    const char *org, *bucket;  /* v2 */
    const char *username, *password; /* v1 basic auth when username is set */
    const char *token;         /* v2 "Authorization: Token ..." when set */
    unsigned batch_max;        /* lines per request; 0 = 5000 */
    unsigned flush_ms;         /* a partial batch is sent this long after the previous send; 0 = 5000 */
    bool gzip;                 /* Content-Encoding: gzip (col_writer_opts_default sets it) */
    unsigned connect_timeout_ms; /* 0 = 5000 */
    unsigned timeout_ms;       /* the whole request; 0 = 10000 */
    size_t batch_bytes_max;    /* line bytes per request at most; 0 = 16 MiB (the store keeps it under half
                                  the spool cap, so the cap can always evict lines that are not in flight) */
};

/* Zeroes o and sets the defaults (gzip on); the numeric zeroes mean the defaults above. */
void col_writer_opts_default(struct col_writer_opts *o);

struct col_writer;

/* Checks o (url http:// or https://, api 1 with a database or 2 with org and bucket, no CR/LF in the
 * token) and prepares one libcurl handle that every request reuses (keep-alive). Copies every string of
 * o and src; src->ud must outlive the writer. Loads libcurl (and zlib when gzip is on) at the first call:
 * a process that never makes a writer never maps them. Calls curl_global_init, so call it from the main
 * thread before other threads use libcurl. Returns the writer, or NULL with a message in err (naming the
 * library and its Debian package when one is missing). */
struct col_writer *col_writer_new(const struct col_writer_opts *o, const struct col_wsource *src, char *err,
                                  size_t errlen);

/* Starts the thread. It sends what the spool already holds at once, then a batch whenever batch_max
 * lines are waiting or flush_ms after the previous send (real monotonic time, never the simulated
 * clock). Returns 0, -EALREADY if started, or the pthread_create error (negative). */
int col_writer_start(struct col_writer *w);

/* Tells the writer that nlines lines were spooled; wakes the thread when a batch is full. Thread-safe
 * and cheap (a mutex and a counter). col_writer_kick counts one line. */
void col_writer_kick_n(struct col_writer *w, size_t nlines);
void col_writer_kick(struct col_writer *w);

/* Sends what is spooled for up to drain_ms (no more waiting for flush_ms; a back-off that ends after
 * the deadline ends the drain), then stops the thread and joins it. A request still in flight at the
 * deadline is aborted (within about 1 s, libcurl's progress interval); its lines stay in the spool.
 * No-op if not started or already stopped. */
void col_writer_stop(struct col_writer *w, unsigned drain_ms);

/* Stops (without draining) if needed and frees. NULL is a no-op. */
void col_writer_free(struct col_writer *w);

struct col_writer_stats {
    uint64_t written;       /* lines the server stored */
    uint64_t rejected;      /* lines the server refused for good (400/422 partial writes, 413 of one line) */
    uint64_t write_errors;  /* attempts that kept the data (transport, 401/403/404, 429, 5xx) */
    uint64_t requests;      /* HTTP attempts */
    uint64_t bytes_raw;     /* line protocol bytes in those requests */
    uint64_t bytes_sent;    /* body bytes on the wire (gzipped when gzip is on) */
    long last_status;       /* HTTP status of the last attempt, 0 transport failure, -1 none yet */
    int64_t backoff_until_ms; /* CLOCK_MONOTONIC ms (fg_mono_ns() / 1e6) of the next attempt, 0 when not backing off */
    int64_t request_max_ms;   /* the longest HTTP attempt so far (bounded by the 10 s request timeout) */
};
/* A consistent copy of the counters. Thread-safe. */
void col_writer_stats(struct col_writer *w, struct col_writer_stats *out);

/* Gzips in[0..len) (level 6) into *out, growing it with fg_realloc (*cap is its size; *out may start
 * NULL). Loads zlib at the first call. Returns the compressed length, -ENOENT if zlib cannot be loaded, or
 * -EIO if zlib fails. Used by the writer and bench_gzip. */
long col_writer_gzip(const char *in, size_t len, unsigned char **out, size_t *cap);

#endif
