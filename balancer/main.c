/* fabgrid-balancer: the command line. Without options it runs the live daemon (bal_daemon); --check
 * validates a site config; --replay runs the planner and dispatcher over recorded PV and load offline
 * and reports (bal_replay, bal_report). */
#include "bal_daemon.h"
#include "bal_dispatch.h"
#include "bal_model.h"
#include "bal_replay.h"
#include "bal_report.h"
#include "bal_series.h"
#include "fg_clock.h"
#include "fg_log.h"
#include "fg_mem.h"
#include "fg_mqtt.h"
#include "fg_signal.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "fabgrid-balancer"

struct opts {
    const char *config, *clock, *pv, *load, *report, *svg, *forecast, *prices;
    bool check, replay, oracle, has_from;
    int verbose;
    int32_t from_day;
    unsigned days;
    double pv_scale, load_scale;
    enum bal_strategy strategy;
    bool replay_only_set;      /* a replay option was given (it needs --replay) */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " -c FILE [--check] [-v] [--clock START@SPEED]\n"
               "       " PROG " -c FILE --replay --pv CSV --load CSV [--from DATE] [--days N]\n"
               "                        [--strategy plan|surplus|immediate] [--oracle] [--pv-scale X]\n"
               "                        [--load-scale X] [--forecast CSV] [--prices CSV]\n"
               "                        [--report FILE.json] [--svg FILE.svg]\n"
               "  -c, --config FILE   site config (JSON)\n"
               "  --check             validate the config and exit\n"
               "  -v                  debug log output\n"
               "  --clock START@SPEED simulated time for the daemon, e.g. 2016-07-15T06:00:00-07:00@60\n"
               "  --replay            replay recorded data offline through the planner and dispatcher\n"
               "  --pv CSV            measured PV power: TIME,W rows (ISO 8601 with offset)\n"
               "  --load CSV          measured base load: TIME,W rows; days are paired by weekday and\n"
               "                      nearest day of the year, by local time of day\n"
               "  --from DATE         first day to replay, YYYY-MM-DD in the site's time zone\n"
               "  --days N            number of days (default: all the PV file covers)\n"
               "  --strategy S        plan (default), surplus (switch on surplus) or immediate (at earliest)\n"
               "  --oracle            the planner sees the recorded future instead of the forecast\n"
               "  --pv-scale X        multiply PV values (e.g. 12/5.4 for a 12 kWp site), default 1\n"
               "  --load-scale X      multiply load values (e.g. 40 for 40 MWh/a from a 1 MWh/a profile)\n"
               "  --forecast CSV      external PV forecast, TIME,W rows like --pv (scaled by --pv-scale); it\n"
               "                      replaces the built-in forecast where it has values (plan, no --oracle)\n"
               "  --prices CSV        TIME,IMPORT_PER_KWH,EXPORT_PER_KWH rows (ISO 8601 with offset), each in\n"
               "                      force until the next: the plan is least cost, the report gives the cost\n"
               "  --report FILE       write the JSON report (- for stdout)\n"
               "  --svg FILE          draw the first %d days as SVG\n", BAL_REPORT_SVG_DAYS);
}

/* ---- arguments ---------------------------------------------------------------------------------- */

static int parse_scale(const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 1e6) {
        fprintf(stderr, PROG ": %s %s: must be a number > 0 and <= 1000000\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_days(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 100000) {
        fprintf(stderr, PROG ": --days %s: must be an integer 1..100000\n", s);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static int parse_date(const char *s, int32_t *out)
{
    int y, m, d, n = 0;
    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 || m < 1 || m > 12 || d < 1 ||
        d > 31 || y < 1900) {
        fprintf(stderr, PROG ": --from %s: must be a date YYYY-MM-DD\n", s);
        return -1;
    }
    int32_t day = bal_series_civil_day(y, m, d);
    int yy, mm, dd;
    bal_series_civil_date(day, &yy, &mm, &dd);
    if (yy != y || mm != m || dd != d) {
        fprintf(stderr, PROG ": --from %s: no such date\n", s);
        return -1;
    }
    *out = day;
    return 0;
}

enum { O_CHECK = 256, O_CLOCK, O_REPLAY, O_PV, O_LOAD, O_FROM, O_DAYS, O_STRATEGY, O_ORACLE, O_REPORT, O_SVG,
       O_PVSCALE, O_LOADSCALE, O_FORECAST, O_PRICES };

static int parse_opt(struct opts *o, int ch, const char *arg)
{
    if (ch >= O_PV)
        o->replay_only_set = true;
    switch (ch) {
    case 'c': o->config = arg; return 0;
    case 'v': o->verbose++; return 0;
    case O_CHECK: o->check = true; return 0;
    case O_CLOCK: o->clock = arg; return 0;
    case O_REPLAY: o->replay = true; return 0;
    case O_PV: o->pv = arg; return 0;
    case O_LOAD: o->load = arg; return 0;
    case O_FROM: o->has_from = true; return parse_date(arg, &o->from_day);
    case O_DAYS: return parse_days(arg, &o->days);
    case O_ORACLE: o->oracle = true; return 0;
    case O_REPORT: o->report = arg; return 0;
    case O_SVG: o->svg = arg; return 0;
    case O_FORECAST: o->forecast = arg; return 0;
    case O_PRICES: o->prices = arg; return 0;
    case O_PVSCALE: return parse_scale("--pv-scale", arg, &o->pv_scale);
    case O_LOADSCALE: return parse_scale("--load-scale", arg, &o->load_scale);
    case O_STRATEGY:
        if (bal_report_strategy_parse(arg, &o->strategy) == 0)
            return 0;
        fprintf(stderr, PROG ": --strategy %s: must be plan, surplus or immediate\n", arg);
        return -1;
    default: return -1;
    }
}

static const char *check_combination(const struct opts *o)
{
    if (!o->config)
        return "-c FILE is required";
    if (o->replay && o->check)
        return "--check and --replay exclude each other";
    if (o->replay_only_set && !o->replay)
        return "--pv, --load, --from, --days, --strategy, --oracle, --forecast, --prices, --report, --svg and the "
               "scales need --replay";
    if (o->replay && (!o->pv || !o->load))
        return "--replay needs --pv CSV and --load CSV";
    if (o->oracle && o->strategy != BAL_STRAT_PLAN)
        return "--oracle is for --strategy plan (the other strategies have no planner)";
    if (o->forecast && o->oracle)
        return "--forecast and --oracle exclude each other (the oracle sees the recorded future)";
    if (o->forecast && o->strategy != BAL_STRAT_PLAN)
        return "--forecast is for --strategy plan (the other strategies have no planner)";
    return NULL;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, O_CHECK },
        { "clock", required_argument, NULL, O_CLOCK }, { "replay", no_argument, NULL, O_REPLAY },
        { "pv", required_argument, NULL, O_PV }, { "load", required_argument, NULL, O_LOAD },
        { "from", required_argument, NULL, O_FROM }, { "days", required_argument, NULL, O_DAYS },
        { "strategy", required_argument, NULL, O_STRATEGY }, { "oracle", no_argument, NULL, O_ORACLE },
        { "report", required_argument, NULL, O_REPORT }, { "svg", required_argument, NULL, O_SVG },
        { "pv-scale", required_argument, NULL, O_PVSCALE }, { "load-scale", required_argument, NULL, O_LOADSCALE },
        { "forecast", required_argument, NULL, O_FORECAST }, { "prices", required_argument, NULL, O_PRICES },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
    int ch;
    while ((ch = getopt_long(argc, argv, "c:vh", lo, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            exit(0);
        }
        if (ch == '?' || parse_opt(o, ch, optarg))
            return -1;
    }
    const char *why = optind != argc ? "unexpected argument" : check_combination(o);
    if (why) {
        fprintf(stderr, PROG ": %s\n", why);
        return -1;
    }
    return 0;
}

/* ---- the replay --------------------------------------------------------------------------------- */

static int64_t mono_ns(void *ctx)
{
    (void)ctx;
    return fg_mono_ns(); /* the replay's only look at a real clock: how long the planner takes */
}

static struct bal_series *load_series(const char *what, const char *path)
{
    char err[512];
    struct bal_series *s = bal_series_load(path, err, sizeof err);
    if (!s) {
        fprintf(stderr, PROG ": %s\n", err);
        return NULL;
    }
    fg_log(FG_LOG_INFO, "replay", what, "%s: %zu rows every %d s, %zu empty, %zu missing, %zu bad, %zu clock faults",
           path, s->rows, s->step_s, s->empty, s->missing, s->bad, s->clock_faults);
    return s;
}

static int write_text(const char *path, const char *text)
{
    if (!strcmp(path, "-")) {
        fputs(text, stdout);
        return fflush(stdout) ? -1 : 0;
    }
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        fprintf(stderr, PROG ": cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_svg(const char *path, const struct bal_config *cfg, const struct bal_replay_result *r,
                     const struct bal_report_info *in)
{
    FILE *f = fopen(path, "w");
    int rc = f ? bal_report_svg(f, cfg, r, in) : -errno;
    if (f && fclose(f))
        rc = -EIO;
    if (rc)
        fprintf(stderr, PROG ": cannot write %s: %s\n", path, strerror(-rc));
    return rc ? -1 : 0;
}

static void log_days(const struct bal_replay_result *r)
{
    for (size_t k = 0; k < r->ndays && fg_log_enabled(FG_LOG_DEBUG); k++) {
        const struct bal_replay_day *d = &r->days[k];
        char a[16], b[16];
        fg_log(FG_LOG_DEBUG, "replay", NULL, "%s (load of %s): pv %.3f kWh, import %.3f kWh, export %.3f kWh, "
               "jobs %u/%u on time, starts %u, gaps %u (%u min)", bal_series_date_str(d->date, a, sizeof a),
               d->load_date == INT32_MIN ? "none" : bal_series_date_str(d->load_date, b, sizeof b), d->e.pv_wh / 1000,
               d->e.import_wh / 1000, d->e.export_wh / 1000, d->e.jobs_on_time, d->e.jobs_total, d->e.starts, d->e.gaps,
               d->e.gap_min);
    }
}

static int write_outputs(const struct opts *o, const struct bal_config *cfg, const struct bal_replay_result *r,
                         const struct bal_report_info *in)
{
    bool json_stdout = o->report && !strcmp(o->report, "-");
    bal_report_summary(json_stdout ? stderr : stdout, r, in);
    int rc = 0;
    if (o->report) {
        char *json = bal_report_json(cfg, r, in);
        rc |= write_text(o->report, json);
        free(json);
    }
    if (o->svg)
        rc |= write_svg(o->svg, cfg, r, in);
    return rc ? 1 : 0;
}

/* The replay's input files; NULL where not given. */
struct inputs {
    struct bal_series *pv, *load, *forecast;
    struct bal_replay_prices *prices;
};

static void inputs_free(struct inputs *in)
{
    bal_series_free(in->pv);
    bal_series_free(in->load);
    bal_series_free(in->forecast);
    bal_replay_prices_free(in->prices);
}

static struct bal_replay_prices *load_prices(const char *path)
{
    char err[512];
    struct bal_replay_prices *p = bal_replay_prices_load(path, err, sizeof err);
    if (!p) {
        fprintf(stderr, PROG ": %s\n", err);
        return NULL;
    }
    fg_log(FG_LOG_INFO, "replay", "prices", "%s: %zu rows", path, p->n);
    return p;
}

/* Returns 0, or -1 after saying which file could not be read. */
static int inputs_load(struct inputs *in, const struct opts *o)
{
    if (!(in->pv = load_series("pv", o->pv)) || !(in->load = load_series("load", o->load)))
        return -1;
    if (o->forecast && !(in->forecast = load_series("forecast", o->forecast)))
        return -1;
    if (o->prices && !(in->prices = load_prices(o->prices)))
        return -1;
    return 0;
}

static int replay_and_report(const struct opts *o, const struct bal_config *cfg, const struct inputs *fi)
{
    struct bal_replay_opts ro = { .strategy = o->strategy, .oracle = o->oracle, .forecast = fi->forecast,
        .prices = fi->prices, .has_from = o->has_from, .from_day = o->from_day, .ndays = o->days,
        .pv_scale = o->pv_scale, .load_scale = o->load_scale, .trace_days = o->svg ? BAL_REPORT_SVG_DAYS : 0,
        .mono_ns = mono_ns };
    struct bal_replay_result *r = NULL;
    char err[512];
    if (bal_replay_run(cfg, fi->pv, fi->load, &ro, &r, err, sizeof err)) {
        fprintf(stderr, PROG ": replay: %s\n", err);
        return 1;
    }
    if (o->days && r->ndays < o->days)
        fg_log(FG_LOG_WARN, "replay", NULL, "the PV file covers only %zu of the %u days asked for", r->ndays, o->days);
    struct bal_report_info in = { .pv_file = o->pv, .load_file = o->load, .pv = fi->pv, .load = fi->load,
        .forecast_file = o->forecast, .prices_file = o->prices, .forecast = fi->forecast, .prices = fi->prices,
        .pv_scale = o->pv_scale, .load_scale = o->load_scale, .strategy = o->strategy, .oracle = o->oracle };
    log_days(r);
    int rc = write_outputs(o, cfg, r, &in);
    bal_replay_result_free(r);
    return rc;
}

static int run_replay(const struct opts *o, const struct bal_config *cfg)
{
    bal_tz_apply(cfg->site.timezone);
    struct inputs fi = { 0 };
    int rc = inputs_load(&fi, o) ? 1 : replay_and_report(o, cfg, &fi);
    inputs_free(&fi);
    return rc;
}

static volatile sig_atomic_t got_stop, got_hup;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        got_hup = 1;
    else
        got_stop = 1;
}

/* The live daemon; cfg is handed over to it. */
static int run_daemon(const struct opts *o, struct bal_config *cfg)
{
    struct fg_clock clk;
    char err[300];
    if (o->clock)
        fg_clock_parse(&clk, o->clock, err, sizeof err); /* checked in main */
    else
        fg_clock_init_real(&clk);
    bal_tz_apply(cfg->site.timezone);
    fg_mqtt_lib_init();
    struct bal_daemon_opts d = { .config_path = o->config, .cfg = cfg, .clock = &clk, .stop = &got_stop,
                                 .reload = &got_hup };
    int rc = bal_daemon_run(&d);
    fg_mqtt_lib_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    /* first: a SIGTERM while the config loads must not kill the process without its shutdown rules */
    fg_signals_install(on_signal, false, true);
    struct opts o = { .pv_scale = 1, .load_scale = 1, .strategy = BAL_STRAT_PLAN };
    if (parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    fg_log_init(PROG, o.verbose ? FG_LOG_DEBUG : FG_LOG_INFO);
    char err[8192];
    if (o.clock) {
        struct fg_clock clk;
        if (fg_clock_parse(&clk, o.clock, err, sizeof err)) {
            fprintf(stderr, PROG ": %s\n", err);
            return 2;
        }
    }
    struct bal_config *cfg = bal_config_load(o.config, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (!o.check && !o.replay)
        return run_daemon(&o, cfg);
    int rc = 0;
    if (o.check)
        printf("%s: ok (%zu machines, %zu jobs; slot %u min, horizon %u h)\n", o.config, cfg->nmachines, cfg->njobs,
               cfg->set.slot_min, cfg->set.horizon_h);
    else
        rc = run_replay(&o, cfg);
    bal_config_free(cfg);
    return rc;
}
