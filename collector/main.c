/* fabgrid-collector: the thin daemon around the poller. Reads the config, connects to MQTT, starts one
 * thread per Modbus bus, and publishes each reading as device/DEV/state plus the site balance. */
#include "col_config.h"
#include "col_poller.h"
#include "col_publish.h"
#include "fg_clock.h"
#include "fg_log.h"
#include "fg_mem.h"
#include "fg_mqtt.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define JSON_MAX 65536

struct dev_state {
    bool has_power, online;
    double power_w;
    int64_t tick_ms;          /* schedule time of the last reading */
};

struct app {
    struct col_config *cfg;
    struct fg_clock clk;
    struct fg_mqtt *mqtt;
    struct col_poller *poller;
    char prefix[160];         /* "PREFIX/SITE/" */
    pthread_mutex_t lock;     /* guards devs */
    struct dev_state *devs;
    struct col_balance_dev *bal; /* scratch for the balance, under lock */
    uint64_t bad_writes;
    const char *stats_file;
};

static volatile sig_atomic_t got_stop, got_usr1;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        got_usr1 = 1;
    else
        got_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: fabgrid-collector -c FILE [--check] [--once] [-v] [--clock START@SPEED]\n"
               "                         [--profiles DIR] [--stats FILE]\n"
               "  -c, --config FILE   site config (JSON)\n"
               "  --check             validate the config and every referenced profile, then exit\n"
               "  --once              poll every device once, print one JSON object per device, exit\n"
               "  -v                  debug log output\n"
               "  --clock START@SPEED simulated time, e.g. 2016-07-15T06:00:00-07:00@60\n"
               "  --profiles DIR      where NAME.json device profiles are found\n"
               "  --stats FILE        write poller statistics as JSON to FILE at exit\n");
}

/* ---- publishing (called on bus threads) ---------------------------------------------------- */

static void publish(struct app *a, const char *suffix, const char *payload, int len, bool retain)
{
    char topic[512];
    snprintf(topic, sizeof topic, "%s%s", a->prefix, suffix);
    fg_mqtt_publish(a->mqtt, topic, payload, (size_t)len, 1, retain);
}

static bool is_fresh(const struct app *a, size_t i, int64_t now)
{
    const struct dev_state *s = &a->devs[i];
    return s->online && s->has_power && now - s->tick_ms <= 3 * (int64_t)a->cfg->devices[i].poll_ms;
}

static void publish_balance(struct app *a, int64_t ts_ms)
{
    struct col_balance b;
    int64_t now = fg_clock_tick_ms(&a->clk);
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->cfg->ndevices; i++)
        a->bal[i] = (struct col_balance_dev){ a->cfg->devices[i].role, is_fresh(a, i, now),
                                              a->devs[i].has_power, a->devs[i].power_w };
    int rc = col_balance_compute(a->bal, a->cfg->ndevices, &b);
    pthread_mutex_unlock(&a->lock);
    if (rc)
        return;
    char json[512];
    int n = col_json_balance(json, sizeof json, ts_ms, &b);
    if (n > 0)
        publish(a, "balance", json, n, true);
}

static void on_reading(void *ud, size_t dev, int64_t ts_ms, const struct col_field *f, size_t n)
{
    struct app *a = ud;
    const struct col_device_cfg *d = &a->cfg->devices[dev];
    /* bus threads have small stacks (100 of them must fit in a few MB): most readings fit in 4 KB on
     * the stack, a larger one goes to the heap */
    char small[4096], sub[128], *json = small;
    int len = col_json_reading(json, sizeof small, ts_ms, f, n);
    if (len < 0) {
        json = fg_malloc(JSON_MAX);
        len = col_json_reading(json, JSON_MAX, ts_ms, f, n);
    }
    if (len < 0) {
        fg_log(FG_LOG_ERROR, "publish", d->id, "reading too large for one message (%zu fields)", n);
        free(json);
        return;
    }
    if (a->mqtt) {
        snprintf(sub, sizeof sub, "device/%s/state", d->id);
        publish(a, sub, json, len, true);
    } else {
        printf("{\"device\":\"%s\",%s\n", d->id, json + 1); /* --once */
    }
    pthread_mutex_lock(&a->lock);
    struct dev_state *s = &a->devs[dev];
    s->has_power = false;
    for (size_t i = 0; i < n; i++)
        if (f[i].v.kind == COL_VAL_NUMBER && strcmp(f[i].name, "power_w") == 0) {
            s->has_power = true;
            s->power_w = f[i].v.number;
        }
    s->tick_ms = fg_clock_tick_ms(&a->clk);
    s->online = true;
    pthread_mutex_unlock(&a->lock);
    if (json != small)
        free(json);
    if (a->mqtt && d->role == FG_ROLE_GRID)
        publish_balance(a, ts_ms); /* the grid meter sets the balance's cadence */
}

static void on_status(void *ud, size_t dev, bool online)
{
    struct app *a = ud;
    const struct col_device_cfg *d = &a->cfg->devices[dev];
    fg_log(online ? FG_LOG_INFO : FG_LOG_WARN, "device", d->id, "%s", online ? "online" : "offline");
    pthread_mutex_lock(&a->lock);
    a->devs[dev].online = online;
    pthread_mutex_unlock(&a->lock);
    if (!a->mqtt)
        return;
    char sub[128];
    snprintf(sub, sizeof sub, "device/%s/status", d->id);
    publish(a, sub, online ? "online" : "offline", online ? 6 : 7, true);
}

/* ---- writes requested over MQTT (network thread) ------------------------------------------ */

static int parse_set_value(const char *payload, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -EINVAL;
    memcpy(buf, payload, len);
    buf[len] = '\0';
    if (!strcmp(buf, "true") || !strcmp(buf, "on") || !strcmp(buf, "ON")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(buf, "false") || !strcmp(buf, "off") || !strcmp(buf, "OFF")) {
        *out = 0;
        return 0;
    }
    char *end;
    errno = 0;
    *out = strtod(buf, &end);
    return errno || end == buf || *end || !isfinite(*out) ? -EINVAL : 0;
}

static void on_message(void *ud, const char *topic, const void *payload, size_t len)
{
    struct app *a = ud;
    size_t plen = strlen(a->prefix);
    char dev[64], point[64];
    double v;
    if (strncmp(topic, a->prefix, plen) || sscanf(topic + plen, "device/%63[^/]/set/%63[^/]", dev, point) != 2)
        return;
    size_t i = 0;
    while (i < a->cfg->ndevices && strcmp(a->cfg->devices[i].id, dev))
        i++;
    int rc = i == a->cfg->ndevices ? -ENOENT : parse_set_value(payload, len, &v);
    if (rc == 0)
        rc = col_poller_write(a->poller, i, point, v);
    if (rc) {
        __atomic_add_fetch(&a->bad_writes, 1, __ATOMIC_RELAXED);
        fg_log(FG_LOG_WARN, "mqtt", dev, "refused write to %s: %s", point,
               rc == -EPERM ? "point not writable" : rc == -ENOENT ? "no such device or point" :
               rc == -EINVAL ? "payload is not a number" : "write queue full");
    }
}

/* ---- modes ---------------------------------------------------------------------------------- */

static void log_stats(struct app *a)
{
    struct col_poller_stats st;
    struct fg_mqtt_stats ms = { 0 };
    col_poller_stats(a->poller, &st);
    if (a->mqtt)
        fg_mqtt_stats(a->mqtt, &ms);
    fg_log(FG_LOG_INFO, "stats", NULL,
           "polls=%llu readings=%llu failures=%llu skipped=%llu requests=%llu modbus_errors=%llu "
           "writes=%llu write_errors=%llu mqtt_published=%llu mqtt_dropped=%llu mqtt_pending=%u",
           (unsigned long long)st.polls, (unsigned long long)st.readings, (unsigned long long)st.failures,
           (unsigned long long)st.skipped, (unsigned long long)st.requests,
           (unsigned long long)st.modbus_errors, (unsigned long long)st.writes,
           (unsigned long long)st.write_errors, (unsigned long long)ms.published,
           (unsigned long long)ms.dropped, ms.pending);
}

static void write_stats_file(struct app *a)
{
    struct col_poller_stats st;
    col_poller_stats(a->poller, &st);
    FILE *f = fopen(a->stats_file, "w");
    if (!f) {
        fg_log(FG_LOG_ERROR, "stats", NULL, "cannot write %s: %s", a->stats_file, strerror(errno));
        return;
    }
    fprintf(f, "{\"polls\":%llu,\"readings\":%llu,\"failures\":%llu,\"skipped\":%llu,\"requests\":%llu,"
               "\"modbus_errors\":%llu,\"late_max_us\":%lld,\"late_step_us\":%d,\"late_hist\":[",
            (unsigned long long)st.polls, (unsigned long long)st.readings, (unsigned long long)st.failures,
            (unsigned long long)st.skipped, (unsigned long long)st.requests,
            (unsigned long long)st.modbus_errors, (long long)st.late_max_us, COL_LATE_STEP_US);
    for (int i = 0; i < COL_LATE_BUCKETS; i++)
        fprintf(f, "%s%llu", i ? "," : "", (unsigned long long)st.late_hist[i]);
    fprintf(f, "]}\n");
    fclose(f);
}

static int start_mqtt(struct app *a)
{
    char topic[256], err[256];
    snprintf(topic, sizeof topic, "%scollector/status", a->prefix);
    const struct fg_mqtt_cfg *m = &a->cfg->mqtt;
    struct fg_mqtt_opts o = { .host = m->host, .port = m->port, .client_id = m->client_id[0] ? m->client_id : NULL,
        .username = m->username[0] ? m->username : NULL, .password = m->password,
        .ca_file = m->ca_file[0] ? m->ca_file : NULL, .cert_file = m->cert_file[0] ? m->cert_file : NULL,
        .key_file = m->key_file[0] ? m->key_file : NULL, .keepalive_s = m->keepalive_s,
        .queue_max = (unsigned)m->queue_max, .status_topic = topic, .reconnect_min_s = 1, .reconnect_max_s = 30 };
    a->mqtt = fg_mqtt_new(&o, on_message, a, err, sizeof err);
    if (!a->mqtt || fg_mqtt_start(a->mqtt, err, sizeof err)) {
        fg_log(FG_LOG_ERROR, "mqtt", NULL, "%s", err);
        return -1;
    }
    snprintf(topic, sizeof topic, "%sdevice/+/set/+", a->prefix);
    fg_mqtt_subscribe(a->mqtt, topic, 1);
    fg_log(FG_LOG_INFO, "mqtt", NULL, "connecting to %s:%d as %s", m->host, m->port,
           m->username[0] ? m->username : "(anonymous)");
    return 0;
}

static int run_daemon(struct app *a)
{
    if (start_mqtt(a))
        return 1;
    int rc = col_poller_start(a->poller);
    if (rc) {
        fg_log(FG_LOG_ERROR, "main", NULL, "cannot start bus threads: %s", strerror(-rc));
        return 1;
    }
    fg_log(FG_LOG_INFO, "main", NULL, "polling %zu devices on %zu buses", a->cfg->ndevices, a->cfg->nbuses);
    while (!got_stop) {
        struct timespec ts = { 0, 100000000L }; /* signal handlers only set flags: look at them often */
        nanosleep(&ts, NULL);
        if (got_usr1) {
            got_usr1 = 0;
            log_stats(a);
        }
    }
    fg_log(FG_LOG_INFO, "main", NULL, "stopping");
    col_poller_stop(a->poller);
    log_stats(a);
    if (a->stats_file)
        write_stats_file(a);
    fg_mqtt_stop(a->mqtt, 2000);
    return 0;
}

static void print_check(const struct col_config *c)
{
    size_t pts = 0, ss = 0;
    for (size_t i = 0; i < c->ndevices; i++) {
        pts += c->devices[i].npoints;
        ss += c->devices[i].sunspec;
    }
    printf("%s: ok (%zu buses, %zu devices, %zu mqtt devices, %zu profile points, %zu SunSpec devices "
           "discovered at run time)\n", c->file, c->nbuses, c->ndevices, c->nmqtt_devices, pts, ss);
}

struct opts {
    const char *config, *clock, *profiles, *stats;
    bool check, once;
    int verbose;
};

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'C' },
        { "once", no_argument, NULL, 'O' }, { "clock", required_argument, NULL, 'K' },
        { "profiles", required_argument, NULL, 'P' }, { "stats", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
    int ch;
    while ((ch = getopt_long(argc, argv, "c:vh", lo, NULL)) != -1) {
        switch (ch) {
        case 'c': o->config = optarg; break;
        case 'C': o->check = true; break;
        case 'O': o->once = true; break;
        case 'K': o->clock = optarg; break;
        case 'P': o->profiles = optarg; break;
        case 'S': o->stats = optarg; break;
        case 'v': o->verbose++; break;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (optind != argc || !o->config) {
        fprintf(stderr, "fabgrid-collector: %s\n", optind != argc ? "unexpected argument" : "-c FILE is required");
        return -1;
    }
    return 0;
}

static int setup(struct app *a, const struct opts *o)
{
    char err[8192];
    if (o->clock) {
        if (fg_clock_parse(&a->clk, o->clock, err, sizeof err)) {
            fprintf(stderr, "fabgrid-collector: %s\n", err);
            return 2;
        }
    } else {
        fg_clock_init_real(&a->clk);
    }
    a->cfg = col_config_load(o->config, o->profiles, err, sizeof err);
    if (!a->cfg) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    snprintf(a->prefix, sizeof a->prefix, "%s/%s/", a->cfg->mqtt.prefix, a->cfg->site.id);
    size_t n = a->cfg->ndevices ? a->cfg->ndevices : 1;
    a->devs = fg_calloc(n, sizeof *a->devs);
    a->bal = fg_calloc(n, sizeof *a->bal);
    pthread_mutex_init(&a->lock, NULL);
    return 0;
}

static int make_poller(struct app *a)
{
    char err[512];
    struct col_sink sink = { on_reading, on_status, a };
    a->poller = col_poller_new(a->cfg, &a->clk, &sink, err, sizeof err);
    if (!a->poller) {
        fg_log(FG_LOG_ERROR, "main", NULL, "%s", err);
        return 1;
    }
    return 0;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int run_once(struct app *a)
{
    char err[4096];
    int failed = col_poller_once(a->poller, err, sizeof err);
    fflush(stdout);
    if (failed)
        fprintf(stderr, "%s\n", err);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct opts o = { 0 };
    struct app a = { 0 };
    /* one malloc arena: glibc would otherwise give each of up to 100 bus threads its own heap */
    mallopt(M_ARENA_MAX, 1);
    if (parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    fg_log_init("fabgrid-collector", o.verbose ? FG_LOG_DEBUG : FG_LOG_INFO);
    a.stats_file = o.stats;
    int rc = setup(&a, &o);
    if (rc)
        return rc;
    if (o.check) {
        print_check(a.cfg);
    } else {
        install_signals();
        fg_mqtt_lib_init();
        rc = make_poller(&a);
        if (!rc)
            rc = o.once ? run_once(&a) : run_daemon(&a);
        col_poller_free(a.poller);
        fg_mqtt_free(a.mqtt);
        fg_mqtt_lib_cleanup();
    }
    col_config_free(a.cfg);
    free(a.devs);
    free(a.bal);
    return rc;
}
