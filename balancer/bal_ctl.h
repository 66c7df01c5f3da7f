/* bal_ctl: the live balancer's controller, the pure core of the daemon. It keeps what the site looks
 * like (the latest balance, the machines' states, the jobs and their life), learns the forecasts from
 * the readings, plans at slot boundaries and when reality leaves the forecast, and dispatches. No I/O,
 * no clock: every call takes the time; the daemon (bal_daemon) turns MQTT into calls and the results
 * into messages. The same planner and dispatcher as the replay (bal_replay) run here. */
#ifndef BAL_CTL_H
#define BAL_CTL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bal_dispatch.h"
#include "bal_model.h"
#include "bal_types.h"

/* A job's life as published on jobs/JOB (codes are those of the InfluxDB job.state_code). */
enum bal_jstate { BAL_JS_QUEUED, BAL_JS_PLANNED, BAL_JS_RUNNING, BAL_JS_DONE, BAL_JS_MISSED, BAL_JS_REJECTED };

/* "queued", "planned", "running", "done", "missed", "rejected" ("?" out of range). Static. */
const char *bal_jstate_name(enum bal_jstate s);

/* A job the controller knows: a configured job's occurrence or a requested one. */
struct bal_cjob {
    struct bal_job j;          /* id, machine, times, energy_wh, done_wh, required, surplus_only */
    enum bal_jstate state;
    bool requested;            /* came over jobs/request (kept across reloads and restarts) */
    int64_t planned_first_ms, planned_end_ms; /* from the last plan; 0: none */
    int64_t done_ms;           /* when its energy was delivered (or it was missed); 0: not yet */
    char reason[120];          /* infeasible/unplanned/missed/rejected reason, "" none */
    bool dirty;                /* changed since bal_ctl_take_job_events last reported it */
};

/* A machine as the controller knows it. */
struct bal_cmach {
    struct bal_mstate ms;      /* on, power_w, since_ms, starts_today; ms.job is internal */
    long job;                  /* index into the jobs of the one being served, -1 none */
    int32_t starts_day;        /* local day (days since 1970) that starts_today counts */
    enum bal_reason reason;    /* why it is in its state (BAL_R_NONE: not switched by fabgrid yet) */
    bool known;                /* its real state is known (feedback or persisted state) */
    bool faulted;              /* the last command was not confirmed: never assumed on */
    int64_t fault_ms;          /* when; it is tried again BAL_CTL_FAULT_RETRY_MS later at the earliest */
    bool dirty;                /* changed since bal_ctl_take_machine_events */
};

/* Why a plan was made (for the log and the plan's "trigger"). */
enum bal_replan_why { BAL_RP_NONE, BAL_RP_START, BAL_RP_SLOT, BAL_RP_JOBS, BAL_RP_MARGIN, BAL_RP_CONFIG };
const char *bal_replan_name(enum bal_replan_why w);

/* How many fresh balance readings must arrive after start before anything is switched on. */
#define BAL_CTL_READINGS_BEFORE_START 2
/* Finished jobs (done, missed, rejected) are forgotten this long after their deadline. */
#define BAL_CTL_KEEP_MS (2 * 86400000LL)
/* A faulted machine is not commanded on again for this long. */
#define BAL_CTL_FAULT_RETRY_MS (5 * 60000LL)
/* At most this many jobs are known at once; requests beyond are rejected ("too many jobs"). */
#define BAL_CTL_MAX_JOBS 512

struct bal_ctl;

/* A controller for cfg (borrowed: it must outlive the controller or be replaced with
 * bal_ctl_reconfigure). now_ms: the wall time (unix ms). Machines start unknown and off; jobs are the
 * configured occurrences around now. Returns NULL with err for a config the planner cannot take
 * (more than BAL_MAX_MACHINES machines). */
struct bal_ctl *bal_ctl_new(const struct bal_config *cfg, int64_t now_ms, char *err, size_t errlen);
/* NULL is a no-op. */
void bal_ctl_free(struct bal_ctl *c);

/* Takes a new config (borrowed, as in bal_ctl_new): machines are matched by id (a removed machine is
 * forgotten, a new one starts unknown and off), configured occurrences are re-expanded (a running or
 * partly done one keeps its progress; one whose job was removed is dropped unless it is running a
 * non-interruptible block, which finishes), requested jobs stay if their machine still exists.
 * The next bal_ctl_step re-plans. Returns 0, or -EINVAL with err (as bal_ctl_new); the controller is
 * then unchanged. */
int bal_ctl_reconfigure(struct bal_ctl *c, const struct bal_config *cfg, int64_t now_ms, char *err, size_t errlen);

/* A site balance reading taken at ts_ms (the collector's timestamp). Readings older than the newest
 * one are ignored. Feeds the PV and base-load forecasts (base load = load - the machines' power). */
void bal_ctl_balance(struct bal_ctl *c, int64_t ts_ms, double pv_w, double grid_w, double load_w);
/* The collector's status: offline makes every reading stale until it is back online. */
void bal_ctl_collector(struct bal_ctl *c, bool online);
/* An external PV forecast: n points [ts_ms, watts] (any order; negative watts count 0). It replaces
 * the built-in forecast for slots whose span lies within the points' span; replaces an earlier one. */
void bal_ctl_forecast(struct bal_ctl *c, const int64_t *ts_ms, const double *w, size_t n);

/* What the machine's device says it is doing (actuator feedback or meter). Before the first command
 * this sets the state the controller starts from; afterwards the daemon's confirmation logic decides
 * (bal_ctl_confirmed / bal_ctl_fault). Returns the machine index or -1 for an unknown id. */
long bal_ctl_machine_index(const struct bal_ctl *c, const char *id);
void bal_ctl_observed(struct bal_ctl *c, size_t m, bool on, int64_t now_ms);
/* The last command to machine m was not confirmed: marked faulted and off (never assumed on; it may
 * be tried again when the dispatcher next wants it on). */
void bal_ctl_fault(struct bal_ctl *c, size_t m, int64_t now_ms);
/* The machine's device confirmed the commanded state: the fault flag clears. */
void bal_ctl_confirmed(struct bal_ctl *c, size_t m);

/* Adds a requested job (already validated by bal_jobreq). Returns 0, -EEXIST when a job with its id
 * is known, -ENOSPC over BAL_CTL_MAX_JOBS (reason written). The next step plans it; a required job
 * the plan finds infeasible is then rejected with the plan's reason. */
int bal_ctl_add_job(struct bal_ctl *c, const struct bal_job *j, char *reason, size_t rlen);
/* Cancels a queued or planned job (requested or configured occurrence): state "rejected" with reason
 * "cancelled"; a running one is stopped unless it is a non-interruptible block, which finishes
 * (-EBUSY). Returns 0, -ENOENT for an unknown id, -EBUSY. */
int bal_ctl_cancel(struct bal_ctl *c, const char *id, char *reason, size_t rlen);

/* One control step at wall time now_ms (call every interval_s; a step may re-plan first: at a new slot,
 * after jobs changed, after a reconfigure, when measured PV or base load left the forecast of the
 * slot by more than replan_margin_w). Credits energy to running jobs for the time since the last
 * step, updates job states, and dispatches. Writes the commands to send (at most cap) to out and
 * returns their count; the controller already counts them as done (on/off, since, starts), the
 * daemon confirms or reports them faulted. Nothing is switched on before BAL_CTL_READINGS_BEFORE_START
 * fresh readings arrived. *why (may be NULL) says whether and why it planned. Returns -errno with
 * err only when the planner rejects its problem (a bug); the step's dispatch then ran without a
 * new plan. */
int bal_ctl_step(struct bal_ctl *c, int64_t now_ms, struct bal_cmd *out, size_t cap, enum bal_replan_why *why,
                 char *err, size_t errlen);

/* The wall clock jumped by delta_ms (seen as a difference between wall and monotonic time): every
 * remembered instant used for intervals (since, timers, the last step) moves with it, so min on/off
 * times hold whatever the clock does. */
void bal_ctl_clock_jump(struct bal_ctl *c, int64_t delta_ms);

/* SIGTERM: the commands that leave every auto machine as its shutdown rule says (auto: optional loads
 * off, running non-interruptible blocks on, everything else off). Returns their count (<= cap). */
size_t bal_ctl_shutdown(struct bal_ctl *c, int64_t now_ms, struct bal_cmd *out, size_t cap);

/* Whether the readings are stale now (no fresh balance within stale_after_s, or the collector is
 * offline). */
bool bal_ctl_stale(const struct bal_ctl *c, int64_t now_ms);

/* Read access for the daemon's messages. Pointers stay valid until the next call that changes c. */
size_t bal_ctl_nmachines(const struct bal_ctl *c);
const struct bal_machine *bal_ctl_machine(const struct bal_ctl *c, size_t m);
const struct bal_cmach *bal_ctl_mach_state(const struct bal_ctl *c, size_t m);
size_t bal_ctl_njobs(const struct bal_ctl *c);
const struct bal_cjob *bal_ctl_job(const struct bal_ctl *c, size_t j);
/* The current plan (NULL before the first), the forecasts it was made with (nslots values each) and
 * when. */
const struct bal_plan *bal_ctl_plan(const struct bal_ctl *c, const double **pv_w, const double **load_w,
                                    int64_t *made_ms);
/* Calls fn for every job whose state changed since the last call and clears the marks; likewise for
 * machines. */
void bal_ctl_take_job_events(struct bal_ctl *c, void (*fn)(void *ud, const struct bal_cjob *j), void *ud);
void bal_ctl_take_machine_events(struct bal_ctl *c, void (*fn)(void *ud, size_t m), void *ud);
/* Whether a job or machine changed since its events were last taken (what a saved state must hold
 * before the change is announced or commanded). */
bool bal_ctl_dirty(const struct bal_ctl *c);
/* The time of the last step: the energy of running jobs is credited up to it (a saved state says so). */
int64_t bal_ctl_last_step(const struct bal_ctl *c);
/* Index of machine m's job in bal_ctl_job order, -1 none. */
long bal_ctl_machine_job(const struct bal_ctl *c, size_t m);

/* Advice for a manual machine m at now_ms: level 2 green (the real surplus covers its power), 1 yellow
 * (covers part of it), 0 red; *surplus_w the surplus now (NAN when stale); *next_green_ms the start of
 * the first plan slot from now on whose forecast surplus (PV - base load - the other planned machines)
 * covers it, 0 if none in the horizon. */
int bal_ctl_advice(const struct bal_ctl *c, size_t m, int64_t now_ms, double *surplus_w, int64_t *next_green_ms);

/* Restoring after a restart (bal_daemon reads the persisted file): a machine's state and a job's
 * progress. restore_machine: on/power/since/starts for the day starts_day, the job served (by id,
 * "" none). restore_job: a known job (by id) gets done_wh and its state; an unknown requested job is
 * added. Call before the first step. */
void bal_ctl_restore_machine(struct bal_ctl *c, size_t m, bool on, double power_w, int64_t since_ms,
                             unsigned starts_today, int32_t starts_day, const char *job_id);
/* The restored state was saved at saved_ms: the first step credits the machines restored on with the
 * energy of the time since (the relays held while the daemon was down). */
void bal_ctl_resume(struct bal_ctl *c, int64_t saved_ms);
int bal_ctl_restore_job(struct bal_ctl *c, const struct bal_job *j, bool requested, enum bal_jstate state,
                        int64_t done_ms);

#endif
