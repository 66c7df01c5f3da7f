/* bal_daemon: the live balancer, a thin shell around bal_ctl: MQTT in (balance, device states and
 * feedback, collector status, job requests, an external forecast), MQTT out (plan, machine states,
 * jobs, advice, commands), confirmation of commands, the persisted state, reload on SIGHUP, the
 * systemd watchdog, and the shutdown rules on SIGTERM. */
#ifndef BAL_DAEMON_H
#define BAL_DAEMON_H
#include <signal.h>
#include <stddef.h>

#include "bal_model.h"
#include "fg_clock.h"

struct bal_daemon_opts {
    const char *config_path;           /* re-read on SIGHUP */
    struct bal_config *cfg;            /* loaded by the caller; owned by the daemon from here on */
    const struct fg_clock *clock;
    volatile sig_atomic_t *stop;       /* set by SIGTERM/SIGINT */
    volatile sig_atomic_t *reload;     /* set by SIGHUP; the daemon clears it */
};

/* Runs until *stop. Returns the process exit code: 0 after a clean stop, 1 when it could not start
 * (MQTT set-up failed: logged). Logs through fg_log. */
int bal_daemon_run(const struct bal_daemon_opts *o);

#endif
