/* fabgrid-collector: the thin daemon. Reads the config, opens the spool and the writer (col_store), connects
 * to MQTT, starts one thread per Modbus bus (col_poller), and lets col_route carry every reading. */
#include "col_config.h"
#include "col_poller.h"
#include "col_route.h"
#include "col_store.h"
#include "fg_clock.h"
#include "fg_log.h"
#include "fg_mem.h"
#include "fg_mqtt.h"
#include "fg_notify.h"
#include "fg_signal.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct app {
    struct col_config *cfg;
    struct fg_clock clk;
    struct fg_mqtt *mqtt;
    struct col_poller *poller;
    struct col_route *route;
    struct col_store *store;
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
               "  --stats FILE        write poller statistics as JSON to FILE at exit\n"
               "SIGUSR1 logs every counter; SIGTERM/SIGINT stop cleanly.\n");
}

/* ---- modes ---------------------------------------------------------------------------------- */

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
    snprintf(topic, sizeof topic, "%s/%s/collector/status", a->cfg->mqtt.prefix, a->cfg->site.id);
    const struct fg_mqtt_cfg *m = &a->cfg->mqtt;
    struct fg_mqtt_opts o = { .host = m->host, .port = m->port, .client_id = m->client_id[0] ? m->client_id : NULL,
        .username = m->username[0] ? m->username : NULL, .password = m->password,
        .ca_file = m->ca_file[0] ? m->ca_file : NULL, .cert_file = m->cert_file[0] ? m->cert_file : NULL,
        .key_file = m->key_file[0] ? m->key_file : NULL, .keepalive_s = m->keepalive_s,
        .queue_max = (unsigned)m->queue_max, .status_topic = topic, .reconnect_min_s = 1, .reconnect_max_s = 30 };
    a->mqtt = fg_mqtt_new(&o, col_route_message, a->route, err, sizeof err);
    if (!a->mqtt) {
        fg_log(FG_LOG_ERROR, "mqtt", NULL, "%s", err);
        return -1;
    }
    col_route_attach(a->route, a->mqtt, a->store, a->poller);
    col_route_subscribe(a->route);
    if (fg_mqtt_start(a->mqtt, err, sizeof err)) {
        fg_log(FG_LOG_ERROR, "mqtt", NULL, "%s", err);
        return -1;
    }
    fg_log(FG_LOG_INFO, "mqtt", NULL, "connecting to %s:%d as %s", m->host, m->port,
           m->username[0] ? m->username : "(anonymous)");
    return 0;
}

static int start_store(struct app *a)
{
    char err[512];
    if (!a->cfg->influx.enabled)
        return 0;
    a->store = col_store_new(&a->cfg->influx, &a->clk, err, sizeof err);
    if (!a->store) {
        fg_log(FG_LOG_ERROR, "influx", NULL, "%s", err);
        return -1;
    }
    struct col_store_stats st;
    col_store_stats(a->store, &st);
    if (st.recovered_corrupt)
        fg_log(FG_LOG_ERROR, "spool", NULL, "the spool in %s was corrupt: set aside as spool.db.corrupt-*, "
               "starting empty", a->cfg->influx.spool_dir);
    fg_log(FG_LOG_INFO, "influx", NULL, "writing to %s (%s); %llu points waiting in the spool %s", a->cfg->influx.url,
           a->cfg->influx.api == 2 ? "v2" : "v1", (unsigned long long)st.spool_points, a->cfg->influx.spool_dir);
    return 0;
}

/* A broker that refuses us (wrong password, ACL) is logged when it starts and when it stops. */
static int log_refusal(struct fg_mqtt *m, int last)
{
    struct fg_mqtt_stats st;
    fg_mqtt_stats(m, &st);
    if (st.last_refusal != last) {
        if (st.last_refusal)
            fg_log(FG_LOG_ERROR, "mqtt", NULL, "the broker refused the connection: %s",
                   fg_mqtt_refusal_str(st.last_refusal));
        else
            fg_log(FG_LOG_INFO, "mqtt", NULL, "connected");
    }
    return st.last_refusal;
}

/* The systemd watchdog is pinged from the main loop itself (real monotonic time, whatever --clock says),
 * so a loop that hangs stops the pings and systemd restarts the daemon. Returns the next deadline. */
static int64_t watchdog_ping(long every_ms, int64_t next_ms)
{
    if (every_ms <= 0)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (now_ms < next_ms)
        return next_ms;
    fg_notify_watchdog();
    return now_ms + every_ms;
}

static int run_daemon(struct app *a)
{
    if (start_store(a) || start_mqtt(a))
        return 1;
    int rc = col_poller_start(a->poller);
    if (rc) {
        fg_log(FG_LOG_ERROR, "main", NULL, "cannot start bus threads: %s", strerror(-rc));
        return 1;
    }
    fg_log(FG_LOG_INFO, "main", NULL, "polling %zu devices on %zu buses, %zu MQTT devices", a->cfg->ndevices,
           a->cfg->nbuses, a->cfg->nmqtt_devices);
    char status[128];
    snprintf(status, sizeof status, "polling %zu devices on %zu buses, %zu MQTT devices", a->cfg->ndevices,
             a->cfg->nbuses, a->cfg->nmqtt_devices);
    fg_notify_ready(status);
    long wd_ms = fg_notify_watchdog_interval_ms() / 2;
    int64_t wd_next = 0;
    int refusal = 0;
    while (!got_stop) {
        struct timespec ts = { 0, 100000000L }; /* signal handlers only set flags: look at them often */
        nanosleep(&ts, NULL);
        wd_next = watchdog_ping(wd_ms, wd_next);
        col_route_tick(a->route);
        refusal = log_refusal(a->mqtt, refusal);
        if (got_usr1) {
            got_usr1 = 0;
            col_route_log_stats(a->route);
        }
    }
    fg_log(FG_LOG_INFO, "main", NULL, "stopping");
    fg_notify_stopping();
    col_poller_stop(a->poller);
    fg_mqtt_stop(a->mqtt, 2000);
    col_store_stop(a->store, 5000); /* commit, and give InfluxDB a few seconds to take the rest */
    col_route_log_stats(a->route);
    if (a->stats_file)
        write_stats_file(a);
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
    a->route = col_route_new(a->cfg, &a->clk, o->once ? stdout : NULL);
    return 0;
}

static int make_poller(struct app *a)
{
    char err[512];
    struct col_sink sink = { col_route_reading, col_route_status, a->route };
    a->poller = col_poller_new(a->cfg, &a->clk, &sink, err, sizeof err);
    if (!a->poller) {
        fg_log(FG_LOG_ERROR, "main", NULL, "%s", err);
        return 1;
    }
    return 0;
}


static int run_once(struct app *a)
{
    signal(SIGINT, SIG_DFL); /* nothing to shut down cleanly: Ctrl-C ends --once at once */
    signal(SIGTERM, SIG_DFL);
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
    /* blocks of 64 KiB and more (a backlog's InfluxDB batch, zlib's state) go back to the system when
     * freed; glibc's default threshold rises after the first such free and keeps them in the heap */
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    /* first of all: a SIGUSR1 (stats) that arrives while the config loads must not kill the process */
    fg_signals_install(on_signal, true, false);
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
        fg_mqtt_lib_init();
        rc = make_poller(&a);
        col_route_attach(a.route, NULL, NULL, a.poller);
        if (!rc)
            rc = o.once ? run_once(&a) : run_daemon(&a);
        col_poller_free(a.poller);
        fg_mqtt_free(a.mqtt);
        fg_mqtt_lib_cleanup();
    }
    col_store_free(a.store);
    col_route_free(a.route);
    col_config_free(a.cfg);
    return rc;
}
