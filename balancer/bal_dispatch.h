/* bal_dispatch: the dispatcher, called every balancer interval: plan + live site balance + machine
 * states -> switch commands. It follows the plan and corrects for reality (surplus, import, stale
 * data, deadlines); two baseline strategies (surplus, immediate) share its constraints. Pure. */
#ifndef BAL_DISPATCH_H
#define BAL_DISPATCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bal_types.h"

/* PLAN: follow the planner's plan with corrections. SURPLUS: the evcc rule (on when surplus covers a
 * machine for surplus_delay_s, off when importing), no plan. IMMEDIATE: every job at its earliest. */
enum bal_strategy { BAL_STRAT_PLAN, BAL_STRAT_SURPLUS, BAL_STRAT_IMMEDIATE };

/* Why a command was given (the "reason" of the MQTT machine state). */
enum bal_reason {
    BAL_R_NONE,
    BAL_R_PLAN,     /* the plan's slot (IMMEDIATE: its trivial plan, the job's earliest start) */
    BAL_R_SURPLUS,  /* real surplus: an early start, or a modulating machine following it */
    BAL_R_DEADLINE, /* the deadline guard of a required job */
    BAL_R_STALE,    /* readings too old: optional loads off, modulating loads to their floor */
    BAL_R_DONE,     /* the job's energy is delivered (or the machine has no job) */
    BAL_R_IMPORT,   /* import appeared while running on surplus */
    BAL_R_MANUAL,   /* not given by bal_dispatch: manual machines get no commands */
    BAL_R_WINDOW    /* the machine's window closed, or an optional job passed its deadline */
};

/* "none", "plan", "surplus", "deadline", "stale-data", "done", "import", "manual", "window";
 * "unknown" for a value outside the enum. The string is static. */
const char *bal_reason_name(enum bal_reason r);

/* The import a surplus load tolerates lasts surplus_delay_s / BAL_IMPORT_DELAY_DIV seconds
 * (integer division; 300 s -> 60 s) before it stops: import costs money at once, whereas a start
 * waits long enough to ride out a passing cloud. */
#define BAL_IMPORT_DELAY_DIV 5

/* A job counts as done when done_wh >= energy_wh - BAL_DONE_EPS_WH (float sums of small steps). */
#define BAL_DONE_EPS_WH 0.01

struct bal_dcfg {
    enum bal_strategy strategy;
    double hysteresis_w;       /* import tolerated before a surplus load stops */
    double surplus_margin_w;   /* surplus kept in reserve before a surplus start */
    unsigned surplus_delay_s;  /* surplus must last this long before a surplus start */
    unsigned stale_after_s;    /* readings older than this are stale */
    int slot_min;              /* slot length when plan->slot_min is not set (<= 0) */
};

/* Per machine memory of the dispatcher between calls (zero-initialise). A timer is 0 while its
 * condition does not hold, else the unix ms since which it holds (so now_ms must be > 0). */
struct bal_dmem {
    int64_t surplus_since_ms;
    int64_t import_since_ms;
};

struct bal_live {
    int64_t now_ms;
    int64_t reading_ms;        /* time of the last balance reading */
    double grid_w;             /* > 0 import */
    double pv_w, load_w;
};

/* One switch command. For on and power commands job is the job served; for off commands the job that
 * was served (-1 none), so the caller sets mstate.job = on ? job : -1. */
struct bal_cmd {
    size_t machine;
    bool on;
    double power_w;            /* on: the power to run at (fixed loads: machine.power_w); off: 0 */
    int job;
    enum bal_reason reason;
};

/* Decides what every auto machine should do now. plan may be NULL (strategies SURPLUS and IMMEDIATE,
 * or no plan yet); it is read only under PLAN, for the slot containing live->now_ms, and must index
 * the same machines and jobs as the arguments. jobs/njobs: the current job occurrences (done_wh up
 * to date); ms: the machines' states (read only: the caller applies the commands and updates
 * on/power_w/since/starts_today/job); mem: per-machine dispatcher memory (nm entries, updated).
 * latest_start[j]: the deadline guard's latest start of job j (from bal_latest_start_ms; INT64_MAX if
 * none); latest_start may be NULL (no guard). Returns the number of commands written to out (at
 * most cap; further ones are dropped, so pass cap >= nm): one per machine whose state should change
 * (switch on, switch off, or change power). Nothing is allocated; no error case. At most
 * BAL_MAX_MACHINES machines are considered (the rest get no commands).
 *
 * Rules, in every strategy:
 *  - manual machines get no commands; a job whose energy is delivered stops its machine ("done");
 *  - min_on_s/min_off_s are never violated (the command waits), except that a non-interruptible
 *    job's block, once started, runs exactly until its energy is delivered: nothing stops it
 *    earlier (not stale data, import, plan or window) and its "done" stop is not delayed;
 *  - so that an interruptible machine never has to stay on past its job's energy: a discretionary
 *    start (surplus, plan) needs the job's rest to fill a run of min_on_s at the least power, and a
 *    modulating machine then draws at most rest / (time left of min on); an import stop that would
 *    leave a required job less than a run of min_on_s at power_w (what its guard restarts with) is
 *    not made, the job runs on to done;
 *  - max_starts_per_day is respected; a surplus start of an interruptible required job leaves one
 *    start in reserve for its deadline guard;
 *  - nothing starts outside the machine's windows (local time, DST-aware); a discretionary start
 *    (surplus, immediate) of a non-interruptible job needs its whole block to fit in the window
 *    (adjoining windows, e.g. 22:00-24:00 + 00:00-06:00, count as one); a running interruptible
 *    load stops when its window closes ("window");
 *  - deadline guard: a required job not done starts at now >= latest_start[j] whatever the sun does
 *    (INT64_MIN, "already impossible", holds at once: the job is finished as soon as allowed)
 *    ("deadline", at full power), also on stale data; a running one is not stopped for import or a
 *    closing window while now + min_off_s >= latest_start[j] (it could not restart in time), nor
 *    for import when its machine has no start left today;
 *  - stale readings (now - reading_ms > stale_after_s): optional loads (not required) stop
 *    ("stale-data"), modulating loads drop to their floor, nothing new starts except deadline-guarded
 *    jobs, surplus/import timers restart;
 *  - surplus: a start needs -grid_w (less what this call already started, higher priority first)
 *    >= power_w (modulating: min_power_w) + surplus_margin_w continuously for surplus_delay_s;
 *    a surplus load stops when it would import > hysteresis_w even at its least power for
 *    surplus_delay_s / BAL_IMPORT_DELAY_DIV (lowest priority first, each stop counted);
 *  - a modulating machine that is on runs at the surplus (-grid_w + its own power) rounded down to
 *    its levels, never below its floor: min_power_w (also under PLAN), power_w (deadline,
 *    IMMEDIATE).
 * PLAN: follows the slot's plan->power_w/job: a planned block starts at its slot ("plan"); a planned
 *    interruptible load starts at its slot ("plan", no delay) only while -grid_w >= surplus_margin_w
 *    (the forecast surplus it was planned on is there), and then imports while it still uses solar
 *    power: it stops ("import") when the site would import > hysteresis_w even without it, for
 *    surplus_delay_s / BAL_IMPORT_DELAY_DIV (its deadline guard catches up); a job not planned now
 *    that is interruptible or optional starts early on surplus, and any load the plan does not have
 *    on stops on import (a non-interruptible block excepted).
 * SURPLUS: plan ignored; any job starts on surplus, stops on import (blocks excepted).
 * IMMEDIATE: every job starts at its earliest time its window allows ("plan"), at full power, and
 *    runs until done. */
size_t bal_dispatch(const struct bal_dcfg *cfg, const struct bal_live *live, const struct bal_plan *plan,
                    const struct bal_machine *machines, size_t nm, const struct bal_mstate *ms, struct bal_dmem *mem,
                    const struct bal_job *jobs, size_t nj, const int64_t *latest_start, struct bal_cmd *out, size_t cap);

#endif
