/* col_store: the in-memory queue in front of the spool, the spool thread that commits it, and the
 * writer thread that drains the spool into InfluxDB. */
#include "col_store.h"
#include "col_spool.h"
#include "col_writer.h"
#include "fg_log.h"
#include "fg_mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PENDING_MAX_BYTES (64u << 20) /* memory in front of a stalled disk, at most */
#define COMMIT_LINES 5000             /* commit early when this many lines wait */
#define SHRINK_ABOVE_BYTES (128u << 10) /* a committed buffer larger than this is freed, not kept */

/* Lines concatenated, with their offsets; swapped whole between producers and the spool thread. */
struct lines {
    char *buf;
    size_t len, cap;
    size_t *off;       /* start of each line; n entries */
    size_t n, ncap;
};

struct col_store {
    struct col_spool *spool;
    struct col_writer *writer;
    const struct fg_clock *clk;
    pthread_t thread;
    bool running, writer_stopped;
    pthread_mutex_t lock;  /* guards pending, stop, added, dropped_mem */
    pthread_cond_t wake;
    struct lines pending;
    bool stop;
    uint64_t added, dropped_mem;
    struct fg_complain full_cpl, mem_cpl, spool_cpl;
};

static void lines_push(struct lines *l, const char *line, size_t len)
{
    if (l->len + len > l->cap) {
        l->cap = (l->len + len) * 2 + 4096;
        l->buf = fg_realloc(l->buf, l->cap);
    }
    if (l->n == l->ncap) {
        l->ncap = l->ncap * 2 + 256;
        l->off = fg_realloc(l->off, l->ncap * sizeof *l->off);
    }
    l->off[l->n++] = l->len;
    memcpy(l->buf + l->len, line, len);
    l->len += len;
}

static void lines_free(struct lines *l)
{
    free(l->buf);
    free(l->off);
    memset(l, 0, sizeof *l);
}

int col_store_add(struct col_store *s, const char *line, size_t len)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    s->added++;
    if (s->pending.len + len > PENDING_MAX_BYTES) {
        s->dropped_mem++;
        rc = -ENOBUFS;
        fg_complain(&s->mem_cpl, fg_mono_ns() / 1000000, FG_LOG_ERROR, "spool", NULL,
                    "the disk does not keep up: %llu points dropped in memory", (unsigned long long)s->dropped_mem);
    } else {
        lines_push(&s->pending, line, len);
        if (s->pending.n == COMMIT_LINES)
            pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Appends a swapped-out batch to the spool in one transaction. */
static void commit(struct col_store *s, struct lines *l)
{
    if (!l->n)
        return;
    const char **ptr = fg_malloc(l->n * sizeof *ptr);
    size_t *lens = fg_malloc(l->n * sizeof *lens);
    for (size_t i = 0; i < l->n; i++) {
        ptr[i] = l->buf + l->off[i];
        lens[i] = (i + 1 < l->n ? l->off[i + 1] : l->len) - l->off[i];
    }
    char err[256];
    struct col_spool_stats before, after;
    col_spool_stats(s->spool, &before);
    int rc = col_spool_append(s->spool, ptr, lens, l->n, err, sizeof err);
    col_spool_stats(s->spool, &after);
    if (after.dropped > before.dropped)
        fg_complain(&s->full_cpl, fg_mono_ns() / 1000000, FG_LOG_WARN, "spool", NULL,
                    "spool full (spool_max_mb): dropped the %llu oldest points, %llu dropped in all",
                    (unsigned long long)(after.dropped - before.dropped), (unsigned long long)after.dropped);
    if (rc) {
        /* a failing disk: the lines are lost and counted, the daemon keeps polling */
        pthread_mutex_lock(&s->lock);
        s->dropped_mem += l->n;
        pthread_mutex_unlock(&s->lock);
        fg_complain(&s->spool_cpl, fg_mono_ns() / 1000000, FG_LOG_ERROR, "spool", NULL,
                    "cannot store %zu lines: %s", l->n, err);
    } else {
        fg_complain_release(&s->spool_cpl, "spool", NULL, "spool writable again");
        col_writer_kick_n(s->writer, l->n);
    }
    free(ptr);
    free(lens);
    l->n = l->len = 0;
    /* a burst (a slow disk, a start-up backlog) must not hold its buffer for the life of the process:
     * one second of 100 devices is about 20 KiB */
    if (l->cap > SHRINK_ABOVE_BYTES)
        lines_free(l);
}

/* Commit cadence: every simulated second under --clock, and at least every real second. */
static int64_t commit_interval_ns(const struct fg_clock *c)
{
    double ms = c->speed > 1.0 ? 1000.0 / c->speed : 1000.0;
    return (int64_t)(ms * 1e6);
}

static void *spool_thread(void *arg)
{
    struct col_store *s = arg;
    struct lines batch = { 0 };
    int64_t step = commit_interval_ns(s->clk), next = fg_mono_ns() + step;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        struct timespec ts = { next / 1000000000LL, next % 1000000000LL };
        while (!s->stop && s->pending.n < COMMIT_LINES &&
               pthread_cond_timedwait(&s->wake, &s->lock, &ts) != ETIMEDOUT)
            ;
        bool stop = s->stop;
        struct lines tmp = s->pending; /* swap: producers never wait for the disk */
        s->pending = batch;
        batch = tmp;
        pthread_mutex_unlock(&s->lock);
        commit(s, &batch);
        next = fg_mono_ns() + step;
        pthread_mutex_lock(&s->lock);
        if (stop && !s->pending.n)
            break;
    }
    pthread_mutex_unlock(&s->lock);
    lines_free(&batch);
    return NULL;
}

static struct col_writer *make_writer(const struct fg_influx_cfg *cfg, struct col_spool *sp, char *err, size_t errlen)
{
    struct col_wsource src = col_writer_spool_source(sp);
    struct col_writer_opts o = {
        .url = cfg->url, .api = cfg->api, .database = cfg->database, .rp = cfg->rp, .org = cfg->org,
        .bucket = cfg->bucket, .username = cfg->username[0] ? cfg->username : NULL, .password = cfg->password,
        .token = cfg->token, .batch_max = cfg->batch_max, .flush_ms = cfg->flush_s * 1000, .gzip = true,
        .connect_timeout_ms = 5000, .timeout_ms = 10000,
        .batch_bytes_max = (size_t)(cfg->spool_max_mb * 1024 * 1024 / 2) };
    return col_writer_new(&o, &src, err, errlen);
}

struct col_store *col_store_new(const struct fg_influx_cfg *cfg, const struct fg_clock *clk, char *err, size_t errlen)
{
    struct col_store *s = fg_calloc(1, sizeof *s);
    s->clk = clk;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    s->spool = col_spool_open(cfg->spool_dir, (uint64_t)(cfg->spool_max_mb * 1024 * 1024), err, errlen);
    if (!s->spool || !(s->writer = make_writer(cfg, s->spool, err, errlen)) || col_writer_start(s->writer)) {
        if (s->spool && s->writer)
            snprintf(err, errlen, "cannot start the writer thread");
        col_store_free(s);
        return NULL;
    }
    if (pthread_create(&s->thread, NULL, spool_thread, s)) {
        snprintf(err, errlen, "cannot start the spool thread");
        col_store_free(s);
        return NULL;
    }
    s->running = true;
    return s;
}

void col_store_stats(struct col_store *s, struct col_store_stats *out)
{
    struct col_spool_stats sp;
    struct col_writer_stats ws;
    col_spool_stats(s->spool, &sp);
    col_writer_stats(s->writer, &ws);
    pthread_mutex_lock(&s->lock);
    out->added = s->added;
    out->dropped = s->dropped_mem + sp.dropped;
    pthread_mutex_unlock(&s->lock);
    out->written = ws.written;
    out->rejected = ws.rejected;
    out->write_errors = ws.write_errors;
    out->requests = ws.requests;
    out->bytes_raw = ws.bytes_raw;
    out->bytes_sent = ws.bytes_sent;
    out->request_max_ms = ws.request_max_ms;
    out->spool_points = sp.points;
    out->spool_bytes = sp.bytes;
    out->recovered_corrupt = sp.recovered_corrupt != 0;
}

void col_store_stop(struct col_store *s, unsigned drain_ms)
{
    if (!s)
        return;
    if (s->running) {
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        s->running = false;
    }
    if (s->writer && !s->writer_stopped) {
        col_writer_stop(s->writer, drain_ms);
        s->writer_stopped = true;
    }
}

void col_store_free(struct col_store *s)
{
    if (!s)
        return;
    col_store_stop(s, 0);
    col_writer_free(s->writer);
    col_spool_close(s->spool);
    lines_free(&s->pending);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s);
}
