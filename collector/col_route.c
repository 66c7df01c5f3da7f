/* col_route: the collector's routing of readings, statuses, ingested MQTT messages and writes.
 * Device indexes: 0..ndevices-1 are the Modbus devices, then the MQTT devices. */
#include "col_route.h"
#include "col_ingest.h"
#include "col_lines.h"
#include "col_publish.h"
#include "fg_log.h"
#include "fg_mem.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define JSON_SMALL 4096          /* bus threads have small stacks: larger readings go to the heap */
#define JSON_MAX 65536
#define SELFMON_EVERY_MS 10000

struct dev_state {
    bool has_power, online;
    double power_w;
    int64_t tick_ms;             /* clock tick of the last reading */
    int64_t power_tick_ms;       /* ... and of the last one with power_w (an OpenDTU message carries one value) */
};

struct col_route {
    const struct col_config *cfg;
    const struct fg_clock *clk;
    FILE *once;
    struct fg_mqtt *mqtt;
    struct col_store *store;
    struct col_poller *poller;
    char prefix[160];            /* "PREFIX/SITE/" */
    size_t ndev;                 /* Modbus + MQTT devices */
    pthread_mutex_t lock;        /* guards devs, bal, counters, complaints */
    struct dev_state *devs;
    struct col_balance_dev *bal;
    struct col_route_stats st;
    struct fg_complain *ingest_cpl;  /* one per MQTT device, and one more for everything else */
    int64_t next_selfmon;
};

/* ---- devices of both kinds ----------------------------------------------------------------- */

static const char *dev_id(const struct col_route *r, size_t i)
{
    return i < r->cfg->ndevices ? r->cfg->devices[i].id : r->cfg->mqtt_devices[i - r->cfg->ndevices].id;
}

static enum fg_role dev_role(const struct col_route *r, size_t i)
{
    return i < r->cfg->ndevices ? r->cfg->devices[i].role : r->cfg->mqtt_devices[i - r->cfg->ndevices].role;
}

/* A reading is fresh for 3 periods: poll_ms, or an MQTT device's expected interval. */
static int64_t dev_fresh_ms(const struct col_route *r, size_t i)
{
    return i < r->cfg->ndevices ? 3 * (int64_t)r->cfg->devices[i].poll_ms
                                : 3000 * (int64_t)r->cfg->mqtt_devices[i - r->cfg->ndevices].interval_s;
}

struct col_route *col_route_new(const struct col_config *cfg, const struct fg_clock *clk, FILE *once)
{
    struct col_route *r = fg_calloc(1, sizeof *r);
    r->cfg = cfg;
    r->clk = clk;
    r->once = once;
    r->ndev = cfg->ndevices + cfg->nmqtt_devices;
    r->devs = fg_calloc(r->ndev + 1, sizeof *r->devs);
    r->bal = fg_calloc(r->ndev + 1, sizeof *r->bal);
    r->ingest_cpl = fg_calloc(cfg->nmqtt_devices + 1, sizeof *r->ingest_cpl);
    snprintf(r->prefix, sizeof r->prefix, "%s/%s/", cfg->mqtt.prefix, cfg->site.id);
    pthread_mutex_init(&r->lock, NULL);
    r->next_selfmon = fg_clock_tick_ms(clk) + SELFMON_EVERY_MS;
    return r;
}

void col_route_attach(struct col_route *r, struct fg_mqtt *mqtt, struct col_store *store, struct col_poller *poller)
{
    r->mqtt = mqtt;
    r->store = store;
    r->poller = poller;
}

void col_route_free(struct col_route *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r->devs);
    free(r->bal);
    free(r->ingest_cpl);
    free(r);
}

/* ---- outputs ------------------------------------------------------------------------------- */

static void publish(struct col_route *r, const char *suffix, const char *payload, size_t len, bool retain)
{
    char topic[512];
    if (!r->mqtt)
        return;
    snprintf(topic, sizeof topic, "%s%s", r->prefix, suffix);
    fg_mqtt_publish(r->mqtt, topic, payload, len, 1, retain);
}

static void store_line(struct col_route *r, const char *line, int len)
{
    if (r->store && len > 0)
        col_store_add(r->store, line, (size_t)len);
}

static void publish_balance(struct col_route *r, int64_t ts_ms)
{
    struct col_balance b;
    int64_t now = fg_clock_tick_ms(r->clk);
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->ndev; i++) {
        const struct dev_state *s = &r->devs[i];
        bool fresh = s->online && s->has_power && now - s->power_tick_ms <= dev_fresh_ms(r, i);
        r->bal[i] = (struct col_balance_dev){ dev_role(r, i), fresh, s->has_power, s->power_w };
    }
    int rc = col_balance_compute(r->bal, r->ndev, &b);
    pthread_mutex_unlock(&r->lock);
    if (rc)
        return;
    char buf[512];
    int n = col_json_balance(buf, sizeof buf, ts_ms, &b);
    if (n > 0)
        publish(r, "balance", buf, (size_t)n, true);
    store_line(r, buf, col_lines_balance(buf, sizeof buf, r->cfg->site.id, ts_ms, &b));
}

static void remember(struct col_route *r, size_t dev, const struct col_field *f, size_t n)
{
    pthread_mutex_lock(&r->lock);
    struct dev_state *s = &r->devs[dev];
    s->tick_ms = fg_clock_tick_ms(r->clk);
    for (size_t i = 0; i < n; i++)
        if (f[i].v.kind == COL_VAL_NUMBER && strcmp(f[i].name, "power_w") == 0) {
            s->has_power = true;
            s->power_w = f[i].v.number;
            s->power_tick_ms = s->tick_ms;
        }
    s->online = true;
    pthread_mutex_unlock(&r->lock);
}

/* JSON for MQTT (or stdout under --once) and a line for InfluxDB, from one reading. */
static void emit_reading(struct col_route *r, size_t dev, int64_t ts_ms, const struct col_field *f, size_t n)
{
    char small[JSON_SMALL], sub[128], *buf = small;
    int len = col_json_reading(buf, sizeof small, ts_ms, f, n);
    if (len < 0) {
        buf = fg_malloc(JSON_MAX);
        len = col_json_reading(buf, JSON_MAX, ts_ms, f, n);
    }
    if (len < 0) {
        fg_log(FG_LOG_ERROR, "publish", dev_id(r, dev), "reading too large for one message (%zu fields)", n);
    } else if (r->once) {
        fprintf(r->once, "{\"device\":\"%s\",%s\n", dev_id(r, dev), buf + 1);
    } else {
        snprintf(sub, sizeof sub, "device/%s/state", dev_id(r, dev));
        publish(r, sub, buf, (size_t)len, true);
    }
    if (r->store) {
        size_t cap = buf == small ? sizeof small : JSON_MAX;
        store_line(r, buf, col_lines_device(buf, cap, r->cfg->site.id, dev_id(r, dev),
                                            fg_role_name(dev_role(r, dev)), ts_ms, f, n));
    }
    if (buf != small)
        free(buf);
}

void col_route_reading(void *ud, size_t dev, int64_t ts_ms, const struct col_field *f, size_t n)
{
    struct col_route *r = ud;
    emit_reading(r, dev, ts_ms, f, n);
    remember(r, dev, f, n);
    if (dev_role(r, dev) == FG_ROLE_GRID)
        publish_balance(r, ts_ms); /* the grid meter sets the balance's cadence */
}

void col_route_status(void *ud, size_t dev, bool online)
{
    struct col_route *r = ud;
    char sub[128];
    fg_log(online ? FG_LOG_INFO : FG_LOG_WARN, "device", dev_id(r, dev), "%s", online ? "online" : "offline");
    pthread_mutex_lock(&r->lock);
    r->devs[dev].online = online;
    pthread_mutex_unlock(&r->lock);
    snprintf(sub, sizeof sub, "device/%s/status", dev_id(r, dev));
    publish(r, sub, online ? "online" : "offline", online ? 6 : 7, true);
}

/* ---- MQTT input ---------------------------------------------------------------------------- */

static void rejected(struct col_route *r, size_t cpl, const char *what, const char *topic, const char *why)
{
    pthread_mutex_lock(&r->lock);
    r->st.ingest_rejected++;
    fg_complain(&r->ingest_cpl[cpl], fg_mono_ns() / 1000000, FG_LOG_WARN, "ingest", what,
                "rejected message on %s: %s", topic, why);
    pthread_mutex_unlock(&r->lock);
}

static void accepted(struct col_route *r)
{
    pthread_mutex_lock(&r->lock);
    r->st.ingest_ok++;
    pthread_mutex_unlock(&r->lock);
}

static int parse_set_value(const char *payload, size_t len, double *out)
{
    static const char *const on[] = { "true", "on", "ON" }, *const off[] = { "false", "off", "OFF" };
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -EINVAL;
    memcpy(buf, payload, len);
    buf[len] = '\0';
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(buf, on[i]) || !strcmp(buf, off[i])) {
            *out = !strcmp(buf, on[i]);
            return 0;
        }
    char *end;
    errno = 0;
    *out = strtod(buf, &end);
    return errno || end == buf || *end || !isfinite(*out) ? -EINVAL : 0;
}

static void on_write(struct col_route *r, const char *dev, const char *point, const void *payload, size_t len)
{
    size_t i = 0;
    double v;
    while (i < r->cfg->ndevices && strcmp(r->cfg->devices[i].id, dev))
        i++;
    int rc = i == r->cfg->ndevices ? -ENOENT : parse_set_value(payload, len, &v);
    if (rc == 0 && r->poller)
        rc = col_poller_write(r->poller, i, point, v);
    if (!rc)
        return;
    pthread_mutex_lock(&r->lock);
    r->st.bad_writes++;
    pthread_mutex_unlock(&r->lock);
    fg_log(FG_LOG_WARN, "mqtt", dev, "refused write to %s: %s", point,
           rc == -EPERM ? "point not writable" : rc == -ENOENT ? "no such device or point" :
           rc == -EINVAL ? "payload is not a number" : "write queue full");
}

static void emit_line(void *ud, const char *line, size_t len)
{
    store_line(ud, line, (int)len);
}

static void on_fabgrid(struct col_route *r, const char *topic, const char *sub, const void *payload, size_t len)
{
    char err[256] = "";
    if (len == 0) { /* a retained topic being cleared */
        pthread_mutex_lock(&r->lock);
        r->st.ingest_ignored++;
        pthread_mutex_unlock(&r->lock);
        return;
    }
    int rc = col_ingest_fabgrid(r->cfg->site.id, sub, payload, len, emit_line, r, err, sizeof err);
    if (rc < 0)
        rejected(r, r->cfg->nmqtt_devices, NULL, topic, err);
    else
        accepted(r);
}

static bool on_mqtt_device(struct col_route *r, const char *topic, const void *payload, size_t len)
{
    for (size_t k = 0; k < r->cfg->nmqtt_devices; k++) {
        const struct col_mqtt_device_cfg *d = &r->cfg->mqtt_devices[k];
        if (!col_ingest_matches(d, topic))
            continue;
        struct col_field f[COL_INGEST_FIELDS_MAX + 8];
        char err[256] = "";
        int n = len ? col_ingest_device(d, topic, payload, len, f, COL_INGEST_FIELDS_MAX + 8, err, sizeof err) : 0;
        if (n == 0 || n == -COL_INGEST_ETOPIC) {
            pthread_mutex_lock(&r->lock);
            r->st.ingest_ignored++;
            pthread_mutex_unlock(&r->lock);
            return true;
        }
        if (n < 0) {
            rejected(r, k, d->id, topic, err);
            return true;
        }
        size_t dev = r->cfg->ndevices + k;
        bool was_online;
        pthread_mutex_lock(&r->lock);
        was_online = r->devs[dev].online;
        pthread_mutex_unlock(&r->lock);
        accepted(r);
        col_route_reading(r, dev, fg_clock_now_ms(r->clk), f, (size_t)n);
        if (!was_online)
            col_route_status(r, dev, true);
        return true;
    }
    return false;
}

void col_route_message(void *ud, const char *topic, const void *payload, size_t len)
{
    struct col_route *r = ud;
    size_t plen = strlen(r->prefix);
    char dev[64], point[64];
    if (!strncmp(topic, r->prefix, plen)) {
        const char *sub = topic + plen;
        if (sscanf(sub, "device/%63[^/]/set/%63[^/]", dev, point) == 2) {
            on_write(r, dev, point, payload, len);
            return;
        }
        if (!strcmp(sub, "jobs/request")) { /* an operator's request for the balancer, not a job's state */
            pthread_mutex_lock(&r->lock);
            r->st.ingest_ignored++;
            pthread_mutex_unlock(&r->lock);
            return;
        }
        if (!strncmp(sub, "machine/", 8) || !strcmp(sub, "balancer/plan") || !strcmp(sub, "advice") ||
            !strncmp(sub, "jobs/", 5)) {
            on_fabgrid(r, topic, sub, payload, len);
            return;
        }
    }
    if (!on_mqtt_device(r, topic, payload, len))
        rejected(r, r->cfg->nmqtt_devices, NULL, topic, "no device or fabgrid topic matches");
}

void col_route_subscribe(struct col_route *r)
{
    static const char *const own[] = { "device/+/set/+", "machine/+/state", "balancer/plan", "advice",
                                       "jobs/+" };
    char topic[512];
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        snprintf(topic, sizeof topic, "%s%s", r->prefix, own[i]);
        fg_mqtt_subscribe(r->mqtt, topic, 1);
    }
    for (size_t k = 0; k < r->cfg->nmqtt_devices; k++)
        if (col_ingest_topic(&r->cfg->mqtt_devices[k], topic, sizeof topic) > 0)
            fg_mqtt_subscribe(r->mqtt, topic, 1);
}

/* ---- periodic ------------------------------------------------------------------------------ */

static void check_silent_devices(struct col_route *r, int64_t now)
{
    for (size_t i = r->cfg->ndevices; i < r->ndev; i++) {
        pthread_mutex_lock(&r->lock);
        bool silent = r->devs[i].online && now - r->devs[i].tick_ms > dev_fresh_ms(r, i);
        pthread_mutex_unlock(&r->lock);
        if (silent)
            col_route_status(r, i, false);
    }
}

static void selfmon(struct col_route *r)
{
    struct col_store_stats ss = { 0 };
    struct col_poller_stats ps = { 0 };
    if (r->store)
        col_store_stats(r->store, &ss);
    if (r->poller)
        col_poller_stats(r->poller, &ps);
    struct col_selfmon m = { ss.added, ss.written, ss.dropped, ss.rejected, ss.spool_points, ss.write_errors,
                             ps.modbus_errors };
    char line[512];
    store_line(r, line, col_lines_collector(line, sizeof line, r->cfg->site.id, fg_clock_now_ms(r->clk), &m));
}

void col_route_tick(struct col_route *r)
{
    int64_t now = fg_clock_tick_ms(r->clk);
    check_silent_devices(r, now);
    if (now >= r->next_selfmon) {
        r->next_selfmon += SELFMON_EVERY_MS * ((now - r->next_selfmon) / SELFMON_EVERY_MS + 1);
        selfmon(r);
    }
}

void col_route_stats(struct col_route *r, struct col_route_stats *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->st;
    pthread_mutex_unlock(&r->lock);
}

void col_route_log_stats(struct col_route *r)
{
    struct col_poller_stats p = { 0 };
    struct col_store_stats s = { 0 };
    struct fg_mqtt_stats m = { 0 };
    struct col_route_stats st;
    if (r->poller)
        col_poller_stats(r->poller, &p);
    if (r->store)
        col_store_stats(r->store, &s);
    if (r->mqtt)
        fg_mqtt_stats(r->mqtt, &m);
    col_route_stats(r, &st);
    fg_log(FG_LOG_INFO, "stats", NULL,
           "added=%llu written=%llu dropped=%llu rejected=%llu spool_points=%llu write_errors=%llu "
           "modbus_errors=%llu polls=%llu readings=%llu failures=%llu skipped=%llu requests=%llu "
           "mqtt_published=%llu mqtt_dropped=%llu ingest_ok=%llu ingest_rejected=%llu ingest_ignored=%llu "
           "bad_writes=%llu http_requests=%llu http_bytes_raw=%llu http_bytes_sent=%llu http_request_max_ms=%lld",
           (unsigned long long)s.added, (unsigned long long)s.written, (unsigned long long)s.dropped,
           (unsigned long long)s.rejected, (unsigned long long)s.spool_points,
           (unsigned long long)s.write_errors, (unsigned long long)p.modbus_errors,
           (unsigned long long)p.polls, (unsigned long long)p.readings, (unsigned long long)p.failures,
           (unsigned long long)p.skipped, (unsigned long long)p.requests, (unsigned long long)m.published,
           (unsigned long long)m.dropped, (unsigned long long)st.ingest_ok,
           (unsigned long long)st.ingest_rejected, (unsigned long long)st.ingest_ignored,
           (unsigned long long)st.bad_writes, (unsigned long long)s.requests, (unsigned long long)s.bytes_raw,
           (unsigned long long)s.bytes_sent, (long long)s.request_max_ms);
}
