/* col_poller: the collector's Modbus loop. One thread and one connection per bus; each device has
 * an absolute next-poll deadline, its own timeout, and its own exponential backoff, so a dead device
 * costs its bus only its backed-off attempts and never delays another bus. */
#include "col_poller.h"
#include "col_bus.h"
#include "col_coalesce.h"
#include "col_decode.h"
#include "col_sscache.h"
#include "col_sunspec.h"
#include "fg_log.h"
#include "fg_mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MAX_MS 300000   /* a failing device is retried at least every 5 minutes */
#define OFFLINE_AFTER 3         /* failed polls before a device is reported offline */
#define BUSY_RETRIES 3          /* exception 5/6 (acknowledge/busy) retries */
#define SUNSPEC_MAX_POINTS COL_SS_MAX_POINTS
#define WRITE_QUEUE_MAX 16
#define EXC(c) (-(COL_BUS_EXC_BASE + (c)))

/* A read plan: the coalesced requests for a selection of points, and room for their answers. */
struct plan {
    struct col_req *reqs;
    size_t nreqs;
    uint32_t *sel, *sel_req;  /* selected point indices and the request of each */
    size_t nsel;
    uint32_t *off;            /* offset of each request's registers in data */
    uint16_t *data;
    int *rc;                  /* result of each request in the last cycle */
};

enum fallback { FB_COALESCE, FB_NO_GAPS, FB_PER_POINT };

struct dev_rt {
    const struct col_device_cfg *cfg;
    size_t index;
    const struct col_point *pts;   /* the profile's, or a shared SunSpec table (shared_pts) */
    const struct col_point *shared_pts;
    size_t npts;
    bool ready;                /* points known and planned for this connection */
    uint8_t *disabled;         /* per point: unreadable (exception 2 alone); skipped */
    enum fallback fb;
    struct plan dyn, stat;
    struct col_field *static_vals;
    size_t nstatic;
    bool static_done;
    int64_t next_due, stagger;
    unsigned fails;
    int online;                /* -1 unknown, 0 offline, 1 online */
    struct fg_complain cpl;
};

/* The per-bus counters, summed into struct col_poller_stats (same names, same order). */
struct bus_counters {
    uint64_t polls, readings, failures, skipped, requests, modbus_errors, writes, write_errors;
};

struct write_req {
    size_t dev;
    uint32_t point;
    double value;
};

struct bus_rt {
    struct col_poller *p;
    const struct col_bus_cfg *cfg;
    struct col_bus *bus;
    struct dev_rt *devs;
    size_t ndevs;
    struct col_field *fields;  /* scratch for one reading */
    size_t fields_cap;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;      /* guards wq, stats */
    pthread_cond_t wake;
    struct write_req wq[WRITE_QUEUE_MAX];
    size_t nwq;
    struct bus_counters st;
    struct fg_complain conn_cpl;
    int64_t last_io_ns;        /* end of the last exchange, for frame_gap_ms */
};

struct col_poller {
    const struct col_config *cfg;
    const struct fg_clock *clk;
    struct col_sink sink;
    struct bus_rt *buses;
    size_t nbuses;
    volatile int stop;
    uint64_t late_hist[COL_LATE_BUCKETS];
    int64_t late_max_us;
};

/* ---- plans -------------------------------------------------------------------------------- */

static void plan_clear(struct plan *pl)
{
    free(pl->reqs);
    free(pl->sel);
    free(pl->sel_req);
    free(pl->off);
    free(pl->data);
    free(pl->rc);
    memset(pl, 0, sizeof *pl);
}

static int plan_coalesce(struct plan *pl, const struct dev_rt *d, unsigned gap)
{
    if (d->fb != FB_PER_POINT) {
        int n = col_coalesce(d->pts, pl->sel, pl->nsel, gap, pl->reqs, pl->nsel, pl->sel_req);
        if (n < 0)
            return n;
        pl->nreqs = (size_t)n;
        return 0;
    }
    /* one request per point: plan each point alone */
    for (size_t i = 0; i < pl->nsel; i++) {
        uint32_t one;
        int n = col_coalesce(d->pts, &pl->sel[i], 1, 0, &pl->reqs[i], 1, &one);
        if (n < 0)
            return n;
        pl->sel_req[i] = (uint32_t)i;
    }
    pl->nreqs = pl->nsel;
    return 0;
}

static int plan_build(struct plan *pl, const struct dev_rt *d, bool want_static)
{
    plan_clear(pl);
    pl->sel = fg_calloc(d->npts, sizeof *pl->sel);
    for (size_t i = 0; i < d->npts; i++)
        if (d->pts[i].static_value == want_static && !d->disabled[i])
            pl->sel[pl->nsel++] = (uint32_t)i;
    if (!pl->nsel)
        return 0;
    pl->reqs = fg_calloc(pl->nsel, sizeof *pl->reqs);
    pl->sel_req = fg_calloc(pl->nsel, sizeof *pl->sel_req);
    unsigned gap = d->fb == FB_COALESCE ? d->cfg->max_gap : 0;
    int rc = plan_coalesce(pl, d, gap);
    if (rc < 0)
        return rc;
    pl->off = fg_calloc(pl->nreqs, sizeof *pl->off);
    pl->rc = fg_calloc(pl->nreqs, sizeof *pl->rc);
    size_t total = 0;
    for (size_t r = 0; r < pl->nreqs; r++) {
        pl->off[r] = (uint32_t)total;
        total += pl->reqs[r].count;
    }
    pl->data = fg_calloc(total, sizeof *pl->data);
    return 0;
}

static int dev_replan(struct dev_rt *d)
{
    int rc = plan_build(&d->dyn, d, false);
    if (rc == 0)
        rc = plan_build(&d->stat, d, true);
    return rc;
}

/* ---- one request with the retry rules ---------------------------------------------------- */

static void stats_add(struct bus_rt *b, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&b->lock);
    *field += n;
    pthread_mutex_unlock(&b->lock);
}

static bool is_conn_error(int rc)
{
    return rc < 0 && rc != -ETIMEDOUT && rc != -EBADMSG && rc > -COL_BUS_EXC_BASE;
}

/* Serial lines need a pause between one answer and the next request (frame_gap_ms), or slow
 * slaves miss the request. */
static void frame_gap(struct bus_rt *b)
{
    if (!b->cfg->frame_gap_ms)
        return;
    int64_t until = b->last_io_ns + (int64_t)b->cfg->frame_gap_ms * 1000000LL, now = fg_mono_ns();
    if (until > now) {
        struct timespec ts = { (until - now) / 1000000000LL, (until - now) % 1000000000LL };
        nanosleep(&ts, NULL);
    }
}

/* Reads one request. Exception 5/6 (acknowledge/busy) are retried up to 3 times; a malformed answer
 * (garbage, wrong transaction id, bad CRC) once, after flushing the line. Every failed attempt counts. */
static int bus_read(struct bus_rt *b, const struct dev_rt *d, const struct col_req *q, uint16_t *out)
{
    int rc = 0, busy = 0, bad = 0;
    for (;;) {
        stats_add(b, &b->st.requests, 1);
        frame_gap(b);
        rc = col_bus_read(b->bus, d->cfg->unit, q->table, q->address, q->count, out);
        b->last_io_ns = fg_mono_ns();
        if (rc == 0)
            break;
        stats_add(b, &b->st.modbus_errors, 1);
        if (rc == -ETIMEDOUT || rc == -EBADMSG)
            col_bus_flush(b->bus);
        if ((rc == EXC(5) || rc == EXC(6)) && busy++ < BUSY_RETRIES)
            continue;
        if (rc == -EBADMSG && bad++ < 1)
            continue;
        break;
    }
    if (is_conn_error(rc))
        col_bus_close(b->bus);
    return rc;
}

/* ---- SunSpec discovery ------------------------------------------------------------------- */

static int sunspec_find_base(struct bus_rt *b, struct dev_rt *d, uint16_t *base)
{
    int rc = -ENOENT;
    for (size_t i = 0; i < COL_SS_NBASES; i++) {
        uint16_t r[2];
        struct col_req q = { COL_HOLDING, COL_SUNSPEC_BASES[i], 2 };
        rc = bus_read(b, d, &q, r);
        if (rc == 0 && col_sunspec_is_marker(r)) {
            *base = COL_SUNSPEC_BASES[i];
            return 0;
        }
        if (rc == -ETIMEDOUT || is_conn_error(rc))
            return rc;
        rc = -ENOENT;
    }
    return rc;
}

static int sunspec_walk(struct bus_rt *b, struct dev_rt *d, struct col_ss_map *m, char *err, size_t errlen)
{
    uint16_t base = 0, addr;
    int rc = sunspec_find_base(b, d, &base);
    if (rc == -ENOENT)
        snprintf(err, errlen, "no SunS marker at 40000, 0 or 50000");
    if (rc)
        return rc;
    col_sunspec_walk_init(m, base);
    addr = (uint16_t)(base + 2);
    for (int steps = 0; steps < COL_SS_MAX_MODELS + 1; steps++) {
        uint16_t hdr[2];
        size_t nhdr = 2;
        struct col_req q = { COL_HOLDING, addr, 2 };
        rc = bus_read(b, d, &q, hdr);
        if (rc == EXC(2)) { /* some devices end the chain with a lone 0xFFFF at the map's last register */
            q.count = 1;
            nhdr = 1;
            rc = bus_read(b, d, &q, hdr);
        }
        if (rc)
            return rc;
        rc = col_sunspec_walk_step(m, hdr, nhdr, &addr, err, errlen);
        if (rc <= 0)
            return rc;
    }
    snprintf(err, errlen, "SunSpec model chain too long");
    return -EBADMSG;
}

static int sunspec_discover(struct bus_rt *b, struct dev_rt *d)
{
    char err[256] = "";
    struct col_ss_map m;
    int rc = sunspec_walk(b, d, &m, err, sizeof err);
    if (rc) {
        if (err[0])
            fg_log(FG_LOG_WARN, "sunspec", d->cfg->id, "discovery failed: %s", err);
        return rc;
    }
    size_t n = 0;
    const struct col_point *pts = col_sscache_get(&m, &n, &rc);
    if (!pts)
        return rc;
    col_sscache_put(d->shared_pts);
    d->shared_pts = pts;
    d->pts = pts;
    d->npts = n;
    free(d->disabled);
    d->disabled = fg_calloc(d->npts ? d->npts : 1, 1);
    char models[160] = "";
    for (size_t i = 0, len = 0; i < m.n && len < sizeof models - 8; i++)
        len += (size_t)snprintf(models + len, sizeof models - len, "%s%u", i ? "," : "", m.models[i].id);
    fg_log(FG_LOG_INFO, "sunspec", d->cfg->id, "found SunS at %u, models %s, %zu points", m.base, models, n);
    return 0;
}

/* ---- decoding a cycle -------------------------------------------------------------------- */

/* An exception reply names the device, unit and address: the operator's map may be wrong. */
static void report_exception(const struct dev_rt *d, const struct col_req *q, int rc)
{
    char buf[96];
    if (rc > EXC(0))
        return;
    fg_log(FG_LOG_WARN, "modbus", d->cfg->id, "unit %d, %s address %u (+%u): %s", d->cfg->unit,
           q->table == COL_INPUT ? "input" : q->table == COL_HOLDING ? "holding" : "bit", q->address,
           q->count, col_bus_strerror(rc, buf, sizeof buf));
}

static size_t decode_plan(const struct dev_rt *d, const struct plan *pl, struct col_field *f, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < pl->nsel && n < cap; i++) {
        uint32_t r = pl->sel_req[i];
        if (pl->rc[r] != 0)
            continue;
        const struct col_point *pt = &d->pts[pl->sel[i]];
        if (col_decode(pt, pl->reqs[r].address, pl->data + pl->off[r], pl->reqs[r].count, &f[n].v) == COL_DECODE_OK)
            f[n++].name = pt->name;
    }
    return n;
}

/* Exception 2 on a coalesced read: read smaller from now on (remembered for the device). A point that
 * fails alone is skipped from then on (for SunSpec devices until the next rediscovery). Returns true
 * if the plan changed. */
static bool fallback_exc2(struct dev_rt *d, struct plan *pl, size_t r)
{
    size_t members = 0, last = 0;
    for (size_t i = 0; i < pl->nsel; i++)
        if (pl->sel_req[i] == r) {
            members++;
            last = pl->sel[i];
        }
    if (members > 1 && d->fb != FB_PER_POINT) {
        d->fb = d->fb == FB_COALESCE && d->cfg->max_gap > 0 ? FB_NO_GAPS : FB_PER_POINT;
        fg_log(FG_LOG_WARN, "modbus", d->cfg->id, "exception 2 on a coalesced read at %u; reading %s from now on",
               pl->reqs[r].address, d->fb == FB_NO_GAPS ? "without bridging gaps" : "one point at a time");
        return true;
    }
    if (members == 1) {
        d->disabled[last] = 1;
        fg_log(FG_LOG_WARN, "modbus", d->cfg->id, "point %s (unit %d, address %u) is not readable; skipped",
               d->pts[last].name, d->cfg->unit, d->pts[last].address);
        return true;
    }
    return false;
}

/* Runs the requests of a plan. Returns 0 if at least one request answered, else the last error;
 * a timeout or a broken connection ends the cycle at once (the rest would fail the same way). */
static int run_plan(struct bus_rt *b, struct dev_rt *d, struct plan *pl, bool *replan)
{
    int last = -ENODATA, answered = 0;
    for (size_t r = 0; r < pl->nreqs; r++) {
        int rc = bus_read(b, d, &pl->reqs[r], pl->data + pl->off[r]);
        pl->rc[r] = rc;
        if (rc == 0) {
            answered++;
            continue;
        }
        last = rc;
        if (rc == -ETIMEDOUT || rc == -EBADMSG || is_conn_error(rc)) {
            for (size_t k = r + 1; k < pl->nreqs; k++)
                pl->rc[k] = rc;
            break;
        }
        if (rc == EXC(2) && fallback_exc2(d, pl, r))
            *replan = true;
        report_exception(d, &pl->reqs[r], rc);
    }
    return answered || pl->nreqs == 0 ? 0 : last;
}

static void cache_static(struct dev_rt *d, struct bus_rt *b)
{
    size_t n = decode_plan(d, &d->stat, b->fields, b->fields_cap);
    free(d->static_vals);
    d->static_vals = fg_calloc(n ? n : 1, sizeof *d->static_vals);
    memcpy(d->static_vals, b->fields, n * sizeof *b->fields);
    d->nstatic = n;
    d->static_done = true;
}

static int ensure_ready(struct bus_rt *b, struct dev_rt *d)
{
    if (d->ready)
        return 0;
    if (d->cfg->sunspec) {
        int rc = sunspec_discover(b, d);
        if (rc)
            return rc;
        if (d->npts > b->fields_cap) {
            b->fields_cap = d->npts;
            b->fields = fg_realloc(b->fields, b->fields_cap * sizeof *b->fields);
        }
    }
    d->static_done = false;
    int rc = dev_replan(d);
    if (rc)
        return rc;
    d->ready = true;
    return 0;
}

/* One poll of one device. Returns the number of fields in b->fields, or a negative error. */
static int poll_device(struct bus_rt *b, struct dev_rt *d)
{
    bool replan = false;
    col_bus_set_timeout(b->bus, d->cfg->timeout_ms);
    int rc = ensure_ready(b, d);
    if (rc)
        return rc;
    if (!d->static_done && d->stat.nreqs) {
        rc = run_plan(b, d, &d->stat, &replan);
        if (rc)
            return rc;
        cache_static(d, b);
    }
    rc = run_plan(b, d, &d->dyn, &replan);
    size_t n = rc ? 0 : decode_plan(d, &d->dyn, b->fields, b->fields_cap);
    if (replan)
        dev_replan(d);
    if (rc)
        return rc;
    for (size_t i = 0; i < d->nstatic && n < b->fields_cap; i++)
        b->fields[n++] = d->static_vals[i];
    return (int)n;
}

/* ---- scheduling -------------------------------------------------------------------------- */

/* One histogram for all buses (atomic adds): per-bus copies would cost 1.6 KB a bus. */
static void record_lateness(struct bus_rt *b, int64_t late_us)
{
    size_t i = late_us < 0 ? 0 : (size_t)(late_us / COL_LATE_STEP_US);
    if (i >= COL_LATE_FINE)
        i = late_us < 100000 ? COL_LATE_FINE : COL_LATE_FINE + 1;
    __atomic_fetch_add(&b->p->late_hist[i], 1, __ATOMIC_RELAXED);
    int64_t max = __atomic_load_n(&b->p->late_max_us, __ATOMIC_RELAXED);
    while (late_us > max &&
           !__atomic_compare_exchange_n(&b->p->late_max_us, &max, late_us, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static void set_online(struct bus_rt *b, struct dev_rt *d, int online)
{
    if (d->online == online)
        return;
    d->online = online;
    if (b->p->sink.status)
        b->p->sink.status(b->p->sink.ud, d->index, online == 1);
}

static void bus_disconnected(struct bus_rt *b)
{
    for (size_t i = 0; i < b->ndevs; i++)
        if (b->devs[i].cfg->sunspec)
            b->devs[i].ready = false; /* the device may have changed: rediscover */
        else
            b->devs[i].static_done = false;
}

static int bus_ensure_connected(struct bus_rt *b, const struct dev_rt *d, int64_t now)
{
    if (col_bus_connected(b->bus))
        return 0;
    char err[256] = "";
    col_bus_set_timeout(b->bus, d->cfg->timeout_ms);
    int rc = col_bus_connect(b->bus, err, sizeof err);
    if (rc) {
        fg_complain(&b->conn_cpl, now, FG_LOG_WARN, "modbus", b->cfg->id, "cannot connect: %s", err);
        return rc;
    }
    fg_complain_release(&b->conn_cpl, "modbus", b->cfg->id, "connected");
    bus_disconnected(b);
    return 0;
}

static void poll_failed(struct bus_rt *b, struct dev_rt *d, int rc, int64_t now)
{
    char buf[96];
    d->fails++;
    stats_add(b, &b->st.failures, 1);
    fg_complain(&d->cpl, now, FG_LOG_WARN, "modbus", d->cfg->id, "poll failed (unit %d): %s",
                d->cfg->unit, col_bus_strerror(rc, buf, sizeof buf));
    if (d->fails >= OFFLINE_AFTER)
        set_online(b, d, 0);
    if (!col_bus_connected(b->bus))
        bus_disconnected(b);
}

static void poll_succeeded(struct bus_rt *b, struct dev_rt *d, int n, int64_t ts_ms)
{
    if (d->fails)
        fg_complain_release(&d->cpl, "modbus", d->cfg->id, "device answers again");
    d->fails = 0;
    stats_add(b, &b->st.readings, 1);
    set_online(b, d, 1);
    if (b->p->sink.reading)
        b->p->sink.reading(b->p->sink.ud, d->index, ts_ms, b->fields, (size_t)n);
}

/* The next deadline stays on the device's grid (due + k * poll_ms): no drift, and a backoff of
 * 2^(fails-1) periods, capped at 5 minutes. */
static int64_t next_deadline(const struct dev_rt *d, int64_t due)
{
    int64_t step = d->cfg->poll_ms;
    if (d->fails > 1) {
        unsigned shift = d->fails - 1 > 20 ? 20 : d->fails - 1;
        step = (int64_t)d->cfg->poll_ms << shift;
        if (step > BACKOFF_MAX_MS) /* the largest whole number of periods within 5 minutes */
            step = BACKOFF_MAX_MS > d->cfg->poll_ms ? BACKOFF_MAX_MS / d->cfg->poll_ms * d->cfg->poll_ms
                                                    : d->cfg->poll_ms;
    }
    return due + step;
}

static void run_device(struct bus_rt *b, struct dev_rt *d)
{
    const struct fg_clock *clk = b->p->clk;
    int64_t due = d->next_due, now = fg_clock_tick_ms(clk);
    record_lateness(b, (fg_mono_ns() - fg_clock_tick_to_mono_ns(clk, due)) / 1000);
    if (now - due >= (int64_t)d->cfg->poll_ms) { /* overran: skip the missed slots, do not queue them */
        int64_t missed = (now - due) / d->cfg->poll_ms;
        stats_add(b, &b->st.skipped, (uint64_t)missed);
        due += missed * d->cfg->poll_ms;
    }
    stats_add(b, &b->st.polls, 1);
    int64_t ts_ms = fg_clock_now_ms(clk);
    int rc = bus_ensure_connected(b, d, now);
    if (rc == 0)
        rc = poll_device(b, d);
    if (rc < 0)
        poll_failed(b, d, rc, now);
    else
        poll_succeeded(b, d, rc, ts_ms);
    d->next_due = next_deadline(d, due);
}

/* ---- writes ------------------------------------------------------------------------------ */

static int do_write(struct bus_rt *b, struct dev_rt *d, const struct col_point *pt, double value)
{
    col_bus_set_timeout(b->bus, d->cfg->timeout_ms);
    frame_gap(b);
    int rc;
    if (pt->table == COL_COIL) {
        rc = col_bus_write_coil(b->bus, d->cfg->unit, pt->address, value != 0);
    } else {
        uint16_t regs[4];
        int n = col_encode(pt, value, regs, 4);
        if (n < 0)
            return n;
        rc = col_bus_write_regs(b->bus, d->cfg->unit, pt->address, regs, (uint16_t)n);
    }
    b->last_io_ns = fg_mono_ns();
    return rc;
}

static void run_writes(struct bus_rt *b)
{
    for (;;) {
        pthread_mutex_lock(&b->lock);
        if (!b->nwq) {
            pthread_mutex_unlock(&b->lock);
            return;
        }
        struct write_req w = b->wq[0];
        memmove(b->wq, b->wq + 1, --b->nwq * sizeof *b->wq);
        pthread_mutex_unlock(&b->lock);
        struct dev_rt *d = &b->devs[w.dev];
        const struct col_point *pt = &d->pts[w.point];
        int rc = bus_ensure_connected(b, d, fg_clock_tick_ms(b->p->clk));
        if (rc == 0)
            rc = do_write(b, d, pt, w.value);
        char buf[96];
        stats_add(b, rc ? &b->st.write_errors : &b->st.writes, 1);
        if (rc)
            fg_log(FG_LOG_WARN, "modbus", d->cfg->id, "write %s = %g failed: %s", pt->name, w.value,
                   col_bus_strerror(rc, buf, sizeof buf));
        else
            fg_log(FG_LOG_INFO, "modbus", d->cfg->id, "wrote %s = %g", pt->name, w.value);
    }
}

/* ---- the bus thread ---------------------------------------------------------------------- */

static struct dev_rt *earliest(struct bus_rt *b)
{
    struct dev_rt *best = &b->devs[0];
    for (size_t i = 1; i < b->ndevs; i++)
        if (b->devs[i].next_due < best->next_due)
            best = &b->devs[i];
    return best;
}

/* Sleeps until tick, waking early for queued writes or stop. Returns true when the tick is reached. */
static bool wait_until(struct bus_rt *b, int64_t tick)
{
    int64_t ns = fg_clock_tick_to_mono_ns(b->p->clk, tick);
    struct timespec ts = { .tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL };
    pthread_mutex_lock(&b->lock);
    int rc = 0;
    while (!b->p->stop && !b->nwq && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&b->wake, &b->lock, &ts);
    bool reached = !b->p->stop && !b->nwq;
    pthread_mutex_unlock(&b->lock);
    return reached && fg_mono_ns() >= ns;
}

static void *bus_thread(void *arg)
{
    struct bus_rt *b = arg;
    int64_t start = fg_clock_tick_ms(b->p->clk);
    for (size_t i = 0; i < b->ndevs; i++)
        b->devs[i].next_due = start + b->devs[i].stagger;
    while (!b->p->stop) {
        run_writes(b);
        struct dev_rt *d = earliest(b);
        if (wait_until(b, d->next_due))
            run_device(b, d);
    }
    col_bus_close(b->bus);
    return NULL;
}

/* ---- setup ------------------------------------------------------------------------------- */

static void dev_init(struct dev_rt *d, const struct col_config *cfg, size_t index, size_t pos, size_t ndev)
{
    d->cfg = &cfg->devices[index];
    d->index = index;
    d->online = -1;
    /* spread the devices of a bus over the poll period instead of polling them in a burst */
    d->stagger = (int64_t)(d->cfg->poll_ms * pos / (ndev ? ndev : 1));
    if (!d->cfg->sunspec) {
        d->pts = d->cfg->points;
        d->npts = d->cfg->npoints;
        d->disabled = fg_calloc(d->npts ? d->npts : 1, 1);
    }
}

static int bus_init(struct col_poller *p, struct bus_rt *b, size_t bi, char *err, size_t errlen)
{
    const struct col_config *cfg = p->cfg;
    b->p = p;
    b->cfg = &cfg->buses[bi];
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->wake, &ca);
    pthread_condattr_destroy(&ca);
    struct col_bus_params bp = { .type = (enum col_bus_type)b->cfg->type, .host = b->cfg->host,
        .port = b->cfg->port, .device = b->cfg->device, .baud = b->cfg->baud, .parity = b->cfg->parity,
        .data_bits = b->cfg->data_bits, .stop_bits = b->cfg->stop_bits };
    b->bus = col_bus_new(&bp, err, errlen);
    if (!b->bus)
        return -EINVAL;
    for (size_t i = 0; i < cfg->ndevices; i++)
        if (cfg->devices[i].bus == bi)
            b->ndevs++;
    b->devs = fg_calloc(b->ndevs ? b->ndevs : 1, sizeof *b->devs);
    b->fields_cap = 1; /* grows to the largest device's point count (SunSpec: after discovery) */
    for (size_t i = 0, k = 0; i < cfg->ndevices; i++)
        if (cfg->devices[i].bus == bi) {
            dev_init(&b->devs[k], cfg, i, k, b->ndevs);
            if (cfg->devices[i].npoints > b->fields_cap)
                b->fields_cap = cfg->devices[i].npoints;
            k++;
        }
    b->fields = fg_malloc(b->fields_cap * sizeof *b->fields);
    return 0;
}

struct col_poller *col_poller_new(const struct col_config *cfg, const struct fg_clock *clk,
                                  const struct col_sink *sink, char *err, size_t errlen)
{
    struct col_poller *p = fg_calloc(1, sizeof *p);
    p->cfg = cfg;
    p->clk = clk;
    p->sink = *sink;
    p->buses = fg_calloc(cfg->nbuses ? cfg->nbuses : 1, sizeof *p->buses);
    p->nbuses = cfg->nbuses;
    for (size_t i = 0; i < cfg->nbuses; i++)
        if (bus_init(p, &p->buses[i], i, err, errlen)) {
            col_poller_free(p);
            return NULL;
        }
    return p;
}

int col_poller_start(struct col_poller *p)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* 100 buses must fit in a few MB. A bus thread's deepest path (poll, decode, JSON, line protocol,
     * mosquitto_publish, a log line) stays under 16 KiB, measured in bench_poll's smaps (4 resident pages
     * per stack); 128 KiB leaves room for the sanitizers' larger frames. */
    pthread_attr_setstacksize(&attr, 128 * 1024);
    for (size_t i = 0; i < p->nbuses; i++) {
        struct bus_rt *b = &p->buses[i];
        if (!b->ndevs)
            continue;
        int rc = pthread_create(&b->thread, &attr, bus_thread, b);
        if (rc) {
            pthread_attr_destroy(&attr);
            return -rc;
        }
        b->running = true;
    }
    pthread_attr_destroy(&attr);
    return 0;
}

void col_poller_stop(struct col_poller *p)
{
    p->stop = 1;
    for (size_t i = 0; i < p->nbuses; i++) {
        struct bus_rt *b = &p->buses[i];
        pthread_mutex_lock(&b->lock);
        pthread_cond_broadcast(&b->wake);
        pthread_mutex_unlock(&b->lock);
        if (b->running)
            pthread_join(b->thread, NULL);
        b->running = false;
    }
}

static void bus_free(struct bus_rt *b)
{
    for (size_t i = 0; i < b->ndevs; i++) {
        struct dev_rt *d = &b->devs[i];
        plan_clear(&d->dyn);
        plan_clear(&d->stat);
        free(d->disabled);
        free(d->static_vals);
        col_sscache_put(d->shared_pts);
    }
    free(b->devs);
    free(b->fields);
    col_bus_free(b->bus);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->wake);
}

void col_poller_free(struct col_poller *p)
{
    if (!p)
        return;
    col_poller_stop(p);
    for (size_t i = 0; i < p->nbuses; i++)
        if (p->buses[i].p)
            bus_free(&p->buses[i]);
    free(p->buses);
    free(p);
}

int col_poller_once(struct col_poller *p, char *err, size_t errlen)
{
    int failed = 0;
    size_t len = 0;
    if (errlen)
        err[0] = '\0';
    for (size_t i = 0; i < p->nbuses; i++) {
        struct bus_rt *b = &p->buses[i];
        for (size_t k = 0; k < b->ndevs; k++) {
            struct dev_rt *d = &b->devs[k];
            int64_t now = fg_clock_tick_ms(p->clk), ts = fg_clock_now_ms(p->clk);
            int rc = bus_ensure_connected(b, d, now);
            if (rc == 0)
                rc = poll_device(b, d);
            if (rc >= 0) {
                poll_succeeded(b, d, rc, ts);
                continue;
            }
            char buf[96];
            failed++;
            if (len < errlen)
                len += (size_t)snprintf(err + len, errlen - len, "%s%s: %s", len ? "\n" : "", d->cfg->id,
                                        col_bus_strerror(rc, buf, sizeof buf));
        }
        col_bus_close(b->bus);
    }
    return failed;
}

static int find_point(const struct dev_rt *d, const char *name, uint32_t *out)
{
    for (size_t i = 0; i < d->npts; i++)
        if (strcmp(d->pts[i].name, name) == 0) {
            *out = (uint32_t)i;
            return d->pts[i].writable ? 0 : -EPERM;
        }
    return -ENOENT;
}

int col_poller_write(struct col_poller *p, size_t dev, const char *point, double value)
{
    for (size_t i = 0; i < p->nbuses; i++) {
        struct bus_rt *b = &p->buses[i];
        for (size_t k = 0; k < b->ndevs; k++) {
            if (b->devs[k].index != dev)
                continue;
            uint32_t pi;
            /* SunSpec points change on rediscovery; only profile points are writable */
            int rc = b->devs[k].cfg->sunspec ? -EPERM : find_point(&b->devs[k], point, &pi);
            if (rc)
                return rc;
            pthread_mutex_lock(&b->lock);
            rc = b->nwq < WRITE_QUEUE_MAX ? 0 : -ENOBUFS;
            if (!rc) {
                b->wq[b->nwq++] = (struct write_req){ k, pi, value };
                pthread_cond_broadcast(&b->wake);
            }
            pthread_mutex_unlock(&b->lock);
            return rc;
        }
    }
    return -ENOENT;
}

void col_poller_stats(struct col_poller *p, struct col_poller_stats *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < p->nbuses; i++) {
        struct bus_rt *b = &p->buses[i];
        pthread_mutex_lock(&b->lock);
        out->polls += b->st.polls;
        out->readings += b->st.readings;
        out->failures += b->st.failures;
        out->skipped += b->st.skipped;
        out->requests += b->st.requests;
        out->modbus_errors += b->st.modbus_errors;
        out->writes += b->st.writes;
        out->write_errors += b->st.write_errors;
        pthread_mutex_unlock(&b->lock);
    }
    for (size_t k = 0; k < COL_LATE_BUCKETS; k++)
        out->late_hist[k] = __atomic_load_n(&p->late_hist[k], __ATOMIC_RELAXED);
    out->late_max_us = __atomic_load_n(&p->late_max_us, __ATOMIC_RELAXED);
}
