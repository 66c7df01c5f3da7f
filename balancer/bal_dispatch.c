/* bal_dispatch: the dispatcher's decisions (rules in bal_dispatch.h). Each call runs three passes so
 * that machines compete for one surplus in a fixed order: stops of running machines (lowest priority
 * first), starts that do not depend on surplus, then surplus starts and power changes (highest first). */
#include "bal_dispatch.h"

#include <math.h>
#include <time.h>

enum dstate {
    D_SKIP,    /* manual: untouched */
    D_IDLE,    /* off, nothing decided yet */
    D_KEPT,    /* on and stays on (its power may still change) */
    D_STOPPED, /* switched off by this call */
    D_STARTED  /* switched on by this call */
};

struct mdec {
    enum dstate st;
    int job;                  /* the job served while on */
    enum bal_reason why;      /* why it stays on: the reason of a power change at its floor */
    double floor_w;           /* least power while kept on */
    int64_t surplus_since_ms; /* the surplus timer, set aside until pass 3 looks at it */
};

/* Everything one call works on. grid_w is projected: the reading plus what this call switched, so a
 * later decision in the call sees the load of an earlier one. */
struct ctx {
    const struct bal_dcfg *cfg;
    const struct bal_plan *plan;
    const struct bal_machine *mc;
    const struct bal_mstate *ms;
    struct bal_dmem *mem;
    const struct bal_job *jobs;
    size_t nj;
    const int64_t *latest_start;
    int64_t now_ms;
    bool stale;
    double grid_w;
    struct mdec dec[BAL_MAX_MACHINES];
    struct bal_cmd *out;
    size_t cap, n;
};

const char *bal_reason_name(enum bal_reason r)
{
    static const char *const names[] = {
        [BAL_R_NONE] = "none",         [BAL_R_PLAN] = "plan",     [BAL_R_SURPLUS] = "surplus",
        [BAL_R_DEADLINE] = "deadline", [BAL_R_STALE] = "stale-data", [BAL_R_DONE] = "done",
        [BAL_R_IMPORT] = "import",     [BAL_R_MANUAL] = "manual", [BAL_R_WINDOW] = "window",
    };
    if ((unsigned)r >= sizeof names / sizeof names[0])
        return "unknown";
    return names[r];
}

/* ---- machines and jobs ---- */

static bool job_done(const struct bal_job *j)
{
    return j->done_wh >= j->energy_wh - BAL_DONE_EPS_WH;
}

/* Optional jobs run on surplus only and are the first to go when data is missing. */
static bool job_optional(const struct bal_job *j)
{
    return !j->required || j->surplus_only;
}

static bool modulating(const struct bal_machine *m)
{
    return m->min_power_w > 0 && m->min_power_w < m->power_w;
}

static double least_w(const struct bal_machine *m)
{
    return modulating(m) ? m->min_power_w : m->power_w;
}

/* The machine's power level for a wish: fixed loads have one; modulating ones the highest level
 * not above the wish (so following surplus never imports), within [min_power_w, power_w]. */
static double level_w(const struct bal_machine *m, double want_w)
{
    if (!modulating(m) || want_w >= m->power_w)
        return m->power_w;
    if (want_w <= m->min_power_w)
        return m->min_power_w;
    if (m->step_w <= 0)
        return want_w;
    double steps = floor((want_w - m->min_power_w) / m->step_w + 1e-9);
    double w = m->min_power_w + steps * m->step_w;
    return w > m->power_w ? m->power_w : w;
}

/* ms of remaining block at full power: how long a non-interruptible job still needs. */
static int64_t block_ms(const struct bal_machine *m, const struct bal_job *j)
{
    double rem_wh = j->energy_wh - j->done_wh;
    if (rem_wh <= 0 || m->power_w <= 0)
        return 0;
    return (int64_t)ceil(rem_wh / m->power_w * 3600000.0);
}

/* ---- min on/off, starts ---- */

/* ms since the machine's last switch; "unknown, long ago" is forever, a clock that went back is 0. */
static int64_t since_switch_ms(const struct ctx *c, size_t m)
{
    int64_t since_ms = c->ms[m].since_ms;
    if (since_ms == INT64_MIN)
        return INT64_MAX;
    return c->now_ms > since_ms ? c->now_ms - since_ms : 0;
}

static bool may_stop(const struct ctx *c, size_t m)
{
    return since_switch_ms(c, m) >= (int64_t)c->mc[m].min_on_s * 1000;
}

/* reserve: keep one start of the day for the deadline guard. */
static bool may_start(const struct ctx *c, size_t m, bool reserve)
{
    const struct bal_machine *mc = &c->mc[m];
    if (since_switch_ms(c, m) < (int64_t)mc->min_off_s * 1000)
        return false;
    if (mc->max_starts_per_day == 0)
        return true;
    return c->ms[m].starts_today + (reserve ? 1u : 0u) < mc->max_starts_per_day;
}

static double rest_wh(const struct bal_job *j)
{
    return j->energy_wh - j->done_wh;
}

/* Wh that machine m draws in a run of min_on_s at power_w. */
static double min_on_wh(const struct bal_machine *m, double power_w)
{
    return power_w * m->min_on_s / 3600.0;
}

/* A discretionary start (surplus, plan) of an interruptible job needs the energy of a run of min on
 * at the machine's least power: a shorter rest would be delivered before min on is over, and the
 * machine would have to stay on past "done". */
static bool rest_fills_run(const struct ctx *c, size_t m, int j)
{
    const struct bal_machine *mc = &c->mc[m];
    return !mc->interruptible || rest_wh(&c->jobs[j]) >= min_on_wh(mc, least_w(mc)) - BAL_DONE_EPS_WH;
}

/* An import stop of a required job must leave a rest that its deadline guard, which restarts at full
 * power, can deliver in a run of min on; else the job runs on to done. Optional jobs need no restart. */
static bool rest_restartable(const struct ctx *c, size_t m, int j)
{
    const struct bal_job *jb = &c->jobs[j];
    return job_optional(jb) || rest_wh(jb) >= min_on_wh(&c->mc[m], c->mc[m].power_w) - BAL_DONE_EPS_WH;
}

/* The most a modulating machine may draw for job j so that the job's rest lasts until min on is over
 * (from now; a start counts all of min on); INFINITY once it is. rest_fills_run at the start keeps
 * it at or above min_power_w: drawing no more than it, the rest per remaining second only grows. */
static double run_cap_w(const struct ctx *c, size_t m, int j)
{
    int64_t left_ms = (int64_t)c->mc[m].min_on_s * 1000 - (c->ms[m].on ? since_switch_ms(c, m) : 0);
    if (left_ms <= 0 || j < 0)
        return INFINITY;
    return rest_wh(&c->jobs[j]) * 3600000.0 / (double)left_ms;
}

/* The level for a wish of job j, within run_cap_w. */
static double capped_level_w(const struct ctx *c, size_t m, int j, double want_w)
{
    return level_w(&c->mc[m], fmin(want_w, run_cap_w(c, m, j)));
}

/* ---- windows (local time: the process has set TZ) ---- */

/* Unix ms of `minute` after local midnight on the local day of `day`; 1440 is the next midnight.
 * mktime, not minute arithmetic, so that 23- and 25-hour days come out right. */
static int64_t local_ms(const struct tm *day, unsigned minute)
{
    struct tm t = *day;
    t.tm_hour = (int)(minute / 60);
    t.tm_min = (int)(minute % 60);
    t.tm_sec = 0;
    t.tm_isdst = -1;
    return (int64_t)mktime(&t) * 1000;
}

/* Finds a window of m open at t_ms; *end_ms: when it closes. */
static bool window_at(const struct bal_machine *m, int64_t t_ms, int64_t *end_ms)
{
    time_t t = (time_t)(t_ms >= 0 ? t_ms / 1000 : -((999 - t_ms) / 1000));
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return false;
    unsigned wday = (unsigned)(tm.tm_wday + 6) % 7; /* bit 0 = Monday */
    unsigned minute = (unsigned)(tm.tm_hour * 60 + tm.tm_min);
    size_t nw = m->nwindows < BAL_MAX_WINDOWS ? m->nwindows : BAL_MAX_WINDOWS;
    for (size_t i = 0; i < nw; i++) {
        const struct bal_window *w = &m->windows[i];
        if (!(w->days_mask >> wday & 1u) || minute < w->from_min || minute >= w->to_min)
            continue;
        *end_ms = local_ms(&tm, w->to_min);
        /* in the repeated hour of a 25-hour day mktime may pick the other 02:xx */
        if (*end_ms <= t_ms)
            *end_ms = t_ms + (int64_t)(w->to_min - minute) * 60000;
        return true;
    }
    return false;
}

/* Whether m may run now, and until when (INT64_MAX without windows). Adjoining windows (22:00-24:00
 * then 00:00-06:00) are one stretch, since configs write a night window that way. */
static bool window_open(const struct bal_machine *m, int64_t now_ms, int64_t *end_ms)
{
    *end_ms = INT64_MAX;
    if (m->nwindows == 0)
        return true;
    if (!window_at(m, now_ms, end_ms))
        return false;
    for (int i = 0; i < 7 * BAL_MAX_WINDOWS; i++) {
        int64_t next_ms;
        if (!window_at(m, *end_ms, &next_ms) || next_ms <= *end_ms)
            break;
        *end_ms = next_ms;
    }
    return true;
}

/* A discretionary start of a non-interruptible job needs its whole block inside the window. */
static bool block_fits(const struct ctx *c, size_t m, int j, int64_t end_ms)
{
    if (c->mc[m].interruptible || end_ms == INT64_MAX)
        return true;
    return c->now_ms + block_ms(&c->mc[m], &c->jobs[j]) <= end_ms;
}

/* ---- which job ---- */

static bool job_of(const struct ctx *c, int j, size_t m)
{
    return j >= 0 && (size_t)j < c->nj && c->jobs[j].machine == m;
}

static int64_t latest_ms(const struct ctx *c, int j)
{
    return c->latest_start ? c->latest_start[j] : INT64_MAX;
}

/* The job m may start now: the one due first among those not done, past their earliest and before
 * their deadline (a late required job is still to be finished). flexible: only jobs that may run
 * early in PLAN, i.e. of an interruptible machine, or optional. -1: none. */
static int pick_job(const struct ctx *c, size_t m, bool flexible)
{
    int best = -1;
    for (size_t j = 0; j < c->nj; j++) {
        const struct bal_job *jb = &c->jobs[j];
        if (jb->machine != m || job_done(jb) || c->now_ms < jb->earliest_ms)
            continue;
        if (c->now_ms >= jb->deadline_ms && job_optional(jb))
            continue;
        if (flexible && !c->mc[m].interruptible && !job_optional(jb))
            continue;
        if (best < 0 || jb->deadline_ms < c->jobs[best].deadline_ms)
            best = (int)j;
    }
    return best;
}

/* The deadline guard of job j holds lead_ms from now. */
static bool guarded(const struct ctx *c, int j, int64_t lead_ms)
{
    const struct bal_job *jb = &c->jobs[j];
    int64_t ls_ms = latest_ms(c, j);
    if (job_optional(jb) || job_done(jb) || ls_ms == INT64_MAX || c->now_ms < jb->earliest_ms)
        return false;
    return c->now_ms + lead_ms >= ls_ms; /* INT64_MIN (already too late) holds: finish asap */
}

/* The guarded job of m that had to start first, -1 none. */
static int guard_job(const struct ctx *c, size_t m)
{
    int best = -1;
    for (size_t j = 0; j < c->nj; j++)
        if (c->jobs[j].machine == m && guarded(c, (int)j, 0) &&
            (best < 0 || latest_ms(c, (int)j) < latest_ms(c, best)))
            best = (int)j;
    return best;
}

/* The plan's power for m now (0: off, no plan, or not PLAN); *job: the planned job if it is m's,
 * else -1. */
static double planned_w(const struct ctx *c, size_t m, int *job)
{
    const struct bal_plan *p = c->plan;
    *job = -1;
    if (c->cfg->strategy != BAL_STRAT_PLAN || !p || !p->power_w || m >= p->nmachines)
        return 0;
    int slot_min = p->slot_min > 0 ? p->slot_min : c->cfg->slot_min;
    if (slot_min <= 0 || c->now_ms < p->start_ms)
        return 0;
    uint64_t s = (uint64_t)((c->now_ms - p->start_ms) / ((int64_t)slot_min * 60000));
    if (s >= p->nslots)
        return 0;
    size_t k = m * p->nslots + (size_t)s;
    if (p->job && job_of(c, p->job[k], m))
        *job = p->job[k];
    return p->power_w[k] > 0 ? p->power_w[k] : 0;
}

/* ---- timers and commands ---- */

/* True once cond has held continuously for delay_ms; *since_ms is 0 while it does not hold. */
static bool held_for(int64_t *since_ms, bool cond, int64_t now_ms, int64_t delay_ms)
{
    if (!cond) {
        *since_ms = 0;
        return false;
    }
    if (*since_ms == 0 || *since_ms > now_ms)
        *since_ms = now_ms;
    return now_ms - *since_ms >= delay_ms;
}

static void emit(struct ctx *c, size_t m, bool on, double power_w, int job, enum bal_reason why)
{
    if (c->n < c->cap)
        c->out[c->n++] = (struct bal_cmd){
            .machine = m, .on = on, .power_w = on ? power_w : 0, .job = job, .reason = why};
}

static void stop(struct ctx *c, size_t m, int job, enum bal_reason why)
{
    emit(c, m, false, 0, job, why);
    c->grid_w -= c->ms[m].power_w;
    c->dec[m].st = D_STOPPED;
}

static void start(struct ctx *c, size_t m, double power_w, int job, enum bal_reason why)
{
    emit(c, m, true, power_w, job, why);
    c->grid_w += power_w;
    c->dec[m].st = D_STARTED;
}

static void keep(struct ctx *c, size_t m, int job, enum bal_reason why, double floor_w)
{
    struct mdec *d = &c->dec[m];
    d->st = D_KEPT;
    d->job = job;
    d->why = why;
    d->floor_w = floor_w;
}

/* A stop that min_on_s may delay; meanwhile the machine stays on at its least power. */
static void stop_soft(struct ctx *c, size_t m, int job, enum bal_reason why)
{
    if (may_stop(c, m))
        stop(c, m, job, why);
    else
        keep(c, m, job, BAL_R_SURPLUS, least_w(&c->mc[m]));
}

/* ---- pass 1: running machines ---- */

/* A required job whose machine has no start left today could not be restarted by its guard. */
static bool no_restart(const struct ctx *c, size_t m, int j)
{
    unsigned max = c->mc[m].max_starts_per_day;
    return !job_optional(&c->jobs[j]) && max > 0 && c->ms[m].starts_today >= max;
}

/* A running interruptible job past the hard rules: per strategy, the plan, or import. A load the plan
 * has on may import while it still uses solar power: it stops once the site would import more than
 * hysteresis_w even without it (the forecast that put it here was wrong; its deadline guard will
 * catch it up). Any other load stops once it would import even at its least power. */
static void decide_running(struct ctx *c, size_t m, int j, int64_t import_since_ms)
{
    const struct bal_machine *mc = &c->mc[m];
    int pj;
    double pw = planned_w(c, m, &pj);
    enum bal_reason why = pw > 0 ? BAL_R_PLAN : BAL_R_SURPLUS;
    double floor_w = least_w(mc);
    if (c->cfg->strategy == BAL_STRAT_IMMEDIATE) {
        keep(c, m, j, BAL_R_PLAN, mc->power_w);
        return;
    }
    if (c->stale || no_restart(c, m, j)) { /* no reading to judge import by; or no way back */
        keep(c, m, j, why, floor_w);
        return;
    }
    double tol_w = c->cfg->hysteresis_w + (pw > 0 ? least_w(mc) : 0);
    bool importing = c->grid_w - c->ms[m].power_w + least_w(mc) > tol_w && rest_restartable(c, m, j);
    int64_t delay_ms = (int64_t)(c->cfg->surplus_delay_s / BAL_IMPORT_DELAY_DIV) * 1000;
    struct bal_dmem *mem = &c->mem[m];
    mem->import_since_ms = import_since_ms;
    if (held_for(&mem->import_since_ms, importing, c->now_ms, delay_ms) && may_stop(c, m)) {
        mem->import_since_ms = 0;
        stop(c, m, j, BAL_R_IMPORT);
        return;
    }
    keep(c, m, j, why, floor_w);
}

static void decide_on(struct ctx *c, size_t m, int64_t import_since_ms)
{
    const struct bal_machine *mc = &c->mc[m];
    int j = job_of(c, c->ms[m].job, m) ? c->ms[m].job : pick_job(c, m, false);
    if (j < 0 || job_done(&c->jobs[j])) {
        if (j >= 0 && !mc->interruptible) /* a block ends exactly when delivered */
            stop(c, m, j, BAL_R_DONE);
        else
            stop_soft(c, m, j, BAL_R_DONE);
        return;
    }
    const struct bal_job *jb = &c->jobs[j];
    int64_t end_ms;
    if (!mc->interruptible) /* a started block is never stopped */
        keep(c, m, j, BAL_R_PLAN, mc->power_w);
    else if (guarded(c, j, (int64_t)mc->min_off_s * 1000)) /* could not restart in time */
        keep(c, m, j, BAL_R_DEADLINE, mc->power_w);
    else if (!window_open(mc, c->now_ms, &end_ms))
        stop_soft(c, m, j, BAL_R_WINDOW);
    else if (job_optional(jb) && c->now_ms >= jb->deadline_ms)
        stop_soft(c, m, j, BAL_R_WINDOW);
    else if (c->stale && job_optional(jb))
        stop_soft(c, m, j, BAL_R_STALE);
    else
        decide_running(c, m, j, import_since_ms);
}

/* Timers are cleared here and put back only on the path that evaluates them, so a condition that
 * was not looked at in a call starts afresh. */
static void pass_running(struct ctx *c, size_t m)
{
    struct bal_dmem *mem = &c->mem[m];
    int64_t import_since_ms = mem->import_since_ms;
    c->dec[m].st = D_SKIP;
    c->dec[m].job = -1;
    c->dec[m].surplus_since_ms = mem->surplus_since_ms;
    mem->import_since_ms = 0;
    mem->surplus_since_ms = 0;
    if (c->mc[m].manual)
        return;
    if (c->ms[m].on)
        decide_on(c, m, import_since_ms);
    else
        c->dec[m].st = D_IDLE;
}

/* ---- pass 2: starts that do not depend on surplus ---- */

static void start_planned(struct ctx *c, size_t m)
{
    int j;
    double pw = planned_w(c, m, &j);
    if (pw <= 0)
        return;
    if (j < 0)
        j = pick_job(c, m, false);
    else if (job_done(&c->jobs[j]) || c->now_ms < c->jobs[j].earliest_ms)
        return; /* delivered early: the slot's energy is no longer needed */
    if (j >= 0 && !rest_fills_run(c, m, j))
        return;
    if (j >= 0 && c->mc[m].interruptible && -c->grid_w < c->cfg->surplus_margin_w)
        return; /* planned on a forecast surplus that is not there */
    if (j >= 0 && may_start(c, m, false))
        start(c, m, capped_level_w(c, m, j, pw), j, BAL_R_PLAN);
}

static void start_immediate(struct ctx *c, size_t m, int64_t end_ms)
{
    int j = pick_job(c, m, false);
    if (j >= 0 && block_fits(c, m, j, end_ms) && may_start(c, m, false))
        start(c, m, c->mc[m].power_w, j, BAL_R_PLAN);
}

static void pass_mandatory(struct ctx *c, size_t m)
{
    const struct bal_machine *mc = &c->mc[m];
    int64_t end_ms;
    if (c->dec[m].st != D_IDLE || !window_open(mc, c->now_ms, &end_ms))
        return;
    int j = guard_job(c, m);
    if (j >= 0) {
        if (may_start(c, m, false))
            start(c, m, mc->power_w, j, BAL_R_DEADLINE);
        return;
    }
    if (c->stale)
        return;
    if (c->cfg->strategy == BAL_STRAT_PLAN)
        start_planned(c, m);
    else if (c->cfg->strategy == BAL_STRAT_IMMEDIATE)
        start_immediate(c, m, end_ms);
}

/* ---- pass 3: surplus ---- */

/* A modulating machine that stays on runs at the surplus, never below its floor. */
static void follow_surplus(struct ctx *c, size_t m)
{
    const struct bal_machine *mc = &c->mc[m];
    const struct mdec *d = &c->dec[m];
    double own_w = c->ms[m].power_w, want_w = d->floor_w;
    enum bal_reason why = d->why;
    if (!modulating(mc))
        return;
    if (why != BAL_R_DEADLINE) /* deadlines first: a guarded run is at full power */
        want_w = capped_level_w(c, m, d->job, want_w);
    if (c->stale) {
        why = want_w < own_w ? BAL_R_STALE : why; /* up to a deadline's full power is not for stale data */
    } else {
        double sur_w = capped_level_w(c, m, d->job, own_w - c->grid_w);
        if (sur_w > want_w) {
            want_w = sur_w;
            why = BAL_R_SURPLUS;
        }
    }
    if (fabs(want_w - own_w) < 0.5)
        return;
    emit(c, m, true, want_w, d->job, why);
    c->grid_w += want_w - own_w;
}

static void start_on_surplus(struct ctx *c, size_t m)
{
    const struct bal_machine *mc = &c->mc[m];
    struct bal_dmem *mem = &c->mem[m];
    int64_t end_ms = INT64_MAX;
    int j = -1;
    if (!c->stale && c->cfg->strategy != BAL_STRAT_IMMEDIATE && window_open(mc, c->now_ms, &end_ms))
        j = pick_job(c, m, c->cfg->strategy == BAL_STRAT_PLAN);
    double sur_w = -c->grid_w;
    bool covers = j >= 0 && block_fits(c, m, j, end_ms) && rest_fills_run(c, m, j) &&
                  sur_w >= least_w(mc) + c->cfg->surplus_margin_w;
    mem->surplus_since_ms = c->dec[m].surplus_since_ms;
    if (!held_for(&mem->surplus_since_ms, covers, c->now_ms, (int64_t)c->cfg->surplus_delay_s * 1000))
        return;
    /* an interruptible required job may be stopped by import later and need its guard's start */
    if (!may_start(c, m, mc->interruptible && !job_optional(&c->jobs[j])))
        return;
    mem->surplus_since_ms = 0;
    start(c, m, capped_level_w(c, m, j, sur_w), j, BAL_R_SURPLUS);
}

static void pass_surplus(struct ctx *c, size_t m)
{
    if (c->dec[m].st == D_KEPT)
        follow_surplus(c, m);
    else if (c->dec[m].st == D_IDLE)
        start_on_surplus(c, m);
}

/* ---- the call ---- */

/* order: machine indices by priority, highest first, ties by index (insertion sort: n <= 64). */
static void sort_by_priority(const struct bal_machine *mc, size_t n, size_t *order)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = i;
        while (k > 0 && mc[order[k - 1]].priority < mc[i].priority) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
}

size_t bal_dispatch(const struct bal_dcfg *cfg, const struct bal_live *live, const struct bal_plan *plan,
                    const struct bal_machine *machines, size_t nm, const struct bal_mstate *ms, struct bal_dmem *mem,
                    const struct bal_job *jobs, size_t nj, const int64_t *latest_start, struct bal_cmd *out, size_t cap)
{
    struct ctx c = {
        .cfg = cfg, .plan = plan, .mc = machines, .ms = ms, .mem = mem, .jobs = jobs, .nj = nj,
        .latest_start = latest_start, .now_ms = live->now_ms, .grid_w = live->grid_w,
        .out = out, .cap = cap,
    };
    c.stale = live->now_ms - live->reading_ms > (int64_t)cfg->stale_after_s * 1000;
    size_t n = nm < BAL_MAX_MACHINES ? nm : BAL_MAX_MACHINES;
    size_t order[BAL_MAX_MACHINES];
    sort_by_priority(machines, n, order);
    for (size_t k = n; k-- > 0;)
        pass_running(&c, order[k]);
    for (size_t k = 0; k < n; k++)
        pass_mandatory(&c, order[k]);
    for (size_t k = 0; k < n; k++)
        pass_surplus(&c, order[k]);
    return c.n;
}
