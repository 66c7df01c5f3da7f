/* fabgrid-sim: serves the Modbus devices of a site config as Modbus TCP servers, for the demo,
 * the tests, the benchmarks and for commissioning configs without hardware. A thin shell:
 * config → model → server, then wait for SIGINT/SIGTERM. */
#include "fg_clock.h"
#include "fg_log.h"
#include "fg_signal.h"
#include "sim_config.h"
#include "sim_model.h"
#include "sim_server.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fputs("usage: fabgrid-sim -c FILE [--listen ADDR] [--clock START@SPEED] [-v]\n"
          "  -c, --config FILE      site config (JSON); its tcp buses and their devices are served\n"
          "      --listen ADDR      listen on ADDR (with each bus's port) instead of the bus hosts\n"
          "      --clock START@SPEED  simulated time, e.g. 2016-07-15T06:00:00-07:00@60\n"
          "  -v, --verbose          log connections, injected faults and coil changes\n",
          f);
}

struct options {
    const char *config, *listen, *clock;
    int verbose;
};

/* Returns 0, or the exit code (2 for usage errors, 0 after --help). */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' }, { "listen", required_argument, NULL, 'L' },
        { "clock", required_argument, NULL, 'K' },  { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 }
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': o->config = optarg; break;
        case 'L': o->listen = optarg; break;
        case 'K': o->clock = optarg; break;
        case 'v': o->verbose++; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || !o->config || (o->listen && !*o->listen)) {
        fprintf(stderr, "fabgrid-sim: %s\n", optind < argc ? "unexpected argument"
                                             : o->config ? "--listen needs an address"
                                                         : "-c FILE is required");
        usage(stderr);
        return 2;
    }
    return 0;
}


static int run(const struct options *o, const struct fg_clock *clock)
{
    char err[16384];
    struct sim_config *cfg = sim_config_load(o->config, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err); /* one "FILE: key.path: problem" line per mistake */
        return 1;
    }
    if (stop_requested) {
        sim_config_free(cfg);
        return 0;
    }
    /* local time is the site's: a load profile follows the site's working hours (no thread runs yet) */
    setenv("TZ", cfg->site.timezone[0] ? cfg->site.timezone : "UTC", 1);
    tzset();
    struct sim_model *model = sim_model_new(&cfg->site, fg_clock_now_ms(clock));
    struct sim_server *srv = sim_server_new(cfg, model, clock, o->listen, err, sizeof err);
    if (!srv) {
        fg_log(FG_LOG_ERROR, "modbus", NULL, "%s", err);
        sim_model_free(model);
        sim_config_free(cfg);
        return 1;
    }
    for (size_t i = 0; i < sim_server_nports(srv); i++) {
        const char *host;
        int port;
        size_t n;
        sim_server_port(srv, i, &host, &port, &n);
        fprintf(stderr, "fabgrid-sim: listening on %s:%d (%zu devices)\n", host, port, n);
    }
    const struct timespec tick = { 0, 100000000L };
    while (!stop_requested)
        nanosleep(&tick, NULL);
    fg_log(FG_LOG_INFO, NULL, NULL, "stopping");
    sim_server_free(srv);
    sim_model_free(model);
    sim_config_free(cfg);
    return 0;
}

int main(int argc, char **argv)
{
    fg_signals_install(on_signal, false, false); /* first: a stop request during a slow CSV load must not be lost */
    struct options o = { 0 };
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    struct fg_clock clock;
    char err[256];
    if (o.clock && fg_clock_parse(&clock, o.clock, err, sizeof err)) {
        fprintf(stderr, "fabgrid-sim: %s\n", err);
        return 2;
    }
    if (!o.clock)
        fg_clock_init_real(&clock);
    fg_log_init("fabgrid-sim", o.verbose ? FG_LOG_DEBUG : FG_LOG_INFO);
    return run(&o, &clock);
}
