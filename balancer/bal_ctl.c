/* bal_ctl: the live controller (rules in bal_ctl.h). The jobs handed to planner and dispatcher are a
 * subset fixed at each plan (the dispatcher needs the plan's job indices), with their progress synced
 * before every dispatch, as in the replay. */
#include "bal_ctl.h"
#include "bal_forecast.h"
#include "bal_plan.h"
#include "bal_series.h"
#include "fg_mem.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_MS 60000LL
#define MARGIN_WINDOW_MS (5 * MIN_MS) /* readings averaged before the margin check */
#define MARGIN_REPLAN_MS (5 * MIN_MS) /* a margin re-plan at most this often */
#define OBS_MAX_S 600                 /* a reading stands for at most this long in the forecasts */

struct bal_ctl {
    const struct bal_config *cfg;
    size_t nm;
    struct bal_machine *mach;
    struct bal_cmach *cm;
    struct bal_dmem *dm;
    struct bal_cjob *jobs;
    size_t nj, jcap;
    struct bal_dcfg dcfg;
    struct bal_array arr;
    struct bal_pvfc pvfc;
    struct bal_loadprof lp;
    int64_t slot_ms, horizon_ms;
    size_t nslots;
    double *fc_pv, *fc_load;
    struct bal_plan plan;
    bool have_plan;
    int64_t plan_made_ms, plan_slot_ms, margin_plan_ms;
    bool replan_jobs, replan_cfg;
    struct bal_job *sub;       /* the jobs of the current plan, sub_g[k] their index in jobs */
    size_t *sub_g, nsub;
    int64_t *latest;
    struct bal_mstate *ms_sub; /* the machines' states with job indices into sub */
    struct bal_cmd *cmds;
    /* readings */
    int64_t reading_ms;
    double pv_w, grid_w, load_w;
    unsigned fresh;
    bool collector_online;
    int64_t win_start_ms;      /* the margin check's averaging window */
    double win_pv_ws, win_base_ws, win_s;
    /* external PV forecast */
    int64_t *xf_ts;
    double *xf_w;
    size_t nxf;
    int64_t last_step_ms;
};

const char *bal_jstate_name(enum bal_jstate s)
{
    static const char *const n[] = { "queued", "planned", "running", "done", "missed", "rejected" };
    return (unsigned)s < sizeof n / sizeof n[0] ? n[s] : "?";
}

const char *bal_replan_name(enum bal_replan_why w)
{
    static const char *const n[] = { "none", "start", "slot", "jobs", "margin", "config" };
    return (unsigned)w < sizeof n / sizeof n[0] ? n[w] : "?";
}

/* ---- set-up -------------------------------------------------------------------------------------- */

static int check_cfg(const struct bal_config *cfg, char *err, size_t errlen)
{
    const struct bal_settings *s = &cfg->set;
    if (cfg->nmachines > BAL_MAX_MACHINES) {
        snprintf(err, errlen, "%zu machines: the balancer handles at most %d", cfg->nmachines, BAL_MAX_MACHINES);
        return -EINVAL;
    }
    if (s->slot_min < 5 || s->slot_min > 60 || 60 % s->slot_min || s->horizon_h < 1 || s->horizon_h > 72) {
        snprintf(err, errlen, "balancer.slot_min %u / horizon_h %u out of range", s->slot_min, s->horizon_h);
        return -EINVAL;
    }
    return 0;
}

/* Everything that follows from the config alone. */
static void apply_cfg(struct bal_ctl *c, const struct bal_config *cfg)
{
    const struct bal_settings *s = &cfg->set;
    const struct fg_site_cfg *site = &cfg->site;
    c->cfg = cfg;
    c->slot_ms = (int64_t)s->slot_min * MIN_MS;
    c->nslots = s->horizon_h * 60u / s->slot_min;
    if (c->nslots > BAL_MAX_SLOTS)
        c->nslots = BAL_MAX_SLOTS;
    c->horizon_ms = (int64_t)c->nslots * c->slot_ms;
    c->dcfg = (struct bal_dcfg){ .strategy = BAL_STRAT_PLAN, .hysteresis_w = s->hysteresis_w,
        .surplus_margin_w = s->surplus_margin_w, .surplus_delay_s = s->surplus_delay_s,
        .stale_after_s = s->stale_after_s, .slot_min = (int)s->slot_min };
    c->arr = (struct bal_array){ site->latitude, site->longitude, site->has_latlon ? site->pv_kwp : 0,
                                 site->tilt_deg, site->azimuth_deg };
    free(c->fc_pv);
    free(c->fc_load);
    c->fc_pv = fg_calloc(c->nslots, sizeof *c->fc_pv);
    c->fc_load = fg_calloc(c->nslots, sizeof *c->fc_load);
}

static void new_machine(struct bal_cmach *m)
{
    *m = (struct bal_cmach){ .ms = { .since_ms = INT64_MIN, .job = -1 }, .job = -1 };
}

static void alloc_machines(struct bal_ctl *c, size_t nm)
{
    size_t n = nm ? nm : 1;
    c->nm = nm;
    c->mach = fg_calloc(n, sizeof *c->mach);
    c->cm = fg_calloc(n, sizeof *c->cm);
    c->dm = fg_calloc(n, sizeof *c->dm);
    c->ms_sub = fg_calloc(n, sizeof *c->ms_sub);
    c->cmds = fg_calloc(n, sizeof *c->cmds);
}

static void free_plan(struct bal_ctl *c)
{
    if (c->have_plan)
        bal_plan_free(&c->plan);
    c->have_plan = false;
    c->nsub = 0;
}

struct bal_ctl *bal_ctl_new(const struct bal_config *cfg, int64_t now_ms, char *err, size_t errlen)
{
    if (check_cfg(cfg, err, errlen))
        return NULL;
    struct bal_ctl *c = fg_calloc(1, sizeof *c);
    apply_cfg(c, cfg);
    alloc_machines(c, cfg->nmachines);
    for (size_t m = 0; m < c->nm; m++) {
        c->mach[m] = cfg->machines[m];
        new_machine(&c->cm[m]);
        c->cm[m].starts_day = bal_series_local_day(now_ms, NULL);
    }
    bal_pvfc_init(&c->pvfc, 3);
    bal_loadprof_init(&c->lp);
    c->collector_online = true;
    c->reading_ms = INT64_MIN;
    c->last_step_ms = now_ms;
    return c;
}

static void free_machines(struct bal_ctl *c)
{
    free(c->mach);
    free(c->cm);
    free(c->dm);
    free(c->ms_sub);
    free(c->cmds);
}

void bal_ctl_free(struct bal_ctl *c)
{
    if (!c)
        return;
    free_plan(c);
    free_machines(c);
    free(c->jobs);
    free(c->sub);
    free(c->sub_g);
    free(c->latest);
    free(c->fc_pv);
    free(c->fc_load);
    free(c->xf_ts);
    free(c->xf_w);
    free(c);
}

/* ---- jobs ---------------------------------------------------------------------------------------- */

static long find_job(const struct bal_ctl *c, const char *id)
{
    for (size_t j = 0; j < c->nj; j++)
        if (strcmp(c->jobs[j].j.id, id) == 0)
            return (long)j;
    return -1;
}

static struct bal_cjob *push_job(struct bal_ctl *c, const struct bal_job *j, bool requested)
{
    if (c->nj == c->jcap) {
        c->jcap = c->jcap ? 2 * c->jcap : 32;
        c->jobs = fg_realloc(c->jobs, c->jcap * sizeof *c->jobs);
    }
    struct bal_cjob *cj = &c->jobs[c->nj++];
    *cj = (struct bal_cjob){ .j = *j, .state = BAL_JS_QUEUED, .requested = requested, .dirty = true };
    cj->j.running = false;
    return cj;
}

static void set_state(struct bal_cjob *j, enum bal_jstate s, const char *reason)
{
    if (j->state != s || (reason && strcmp(j->reason, reason) != 0))
        j->dirty = true;
    j->state = s;
    if (reason)
        fg_strlcpy(j->reason, reason, sizeof j->reason);
}

static bool finished(const struct bal_cjob *j)
{
    return j->state == BAL_JS_DONE || j->state == BAL_JS_MISSED || j->state == BAL_JS_REJECTED;
}

static long serving(const struct bal_ctl *c, size_t g)
{
    for (size_t m = 0; m < c->nm; m++)
        if (c->cm[m].ms.on && c->cm[m].job == (long)g)
            return (long)m;
    return -1;
}

/* The configured jobs' occurrences from now to the end of the horizon (*n of them; the caller frees). */
static struct bal_job *occurrences(const struct bal_ctl *c, int64_t now_ms, size_t *n)
{
    size_t cap = c->cfg->njobs * (size_t)(c->horizon_ms / 86400000 + 3) + 8;
    struct bal_job *occ = fg_calloc(cap, sizeof *occ);
    *n = bal_jobs_expand(c->cfg, now_ms, now_ms + c->horizon_ms, occ, cap);
    return occ;
}

/* Adds the configured occurrences around now that are not known yet. */
static void expand(struct bal_ctl *c, int64_t now_ms)
{
    size_t n;
    struct bal_job *occ = occurrences(c, now_ms, &n);
    for (size_t i = 0; i < n && c->nj < BAL_CTL_MAX_JOBS; i++)
        if (find_job(c, occ[i].id) < 0)
            push_job(c, &occ[i], false);
    free(occ);
}

/* Forgets finished jobs long past their deadline (they are never expanded again: expansion starts
 * at now). Indices shift, so machines' job indices are remapped. */
static void prune(struct bal_ctl *c, int64_t now_ms)
{
    size_t k = 0;
    long *map = fg_calloc(c->nj ? c->nj : 1, sizeof *map);
    for (size_t j = 0; j < c->nj; j++) {
        const struct bal_cjob *cj = &c->jobs[j];
        bool old = finished(cj) && !cj->dirty && cj->j.deadline_ms + BAL_CTL_KEEP_MS < now_ms && serving(c, j) < 0;
        map[j] = old ? -1 : (long)k;
        if (!old)
            c->jobs[k++] = *cj;
    }
    for (size_t m = 0; m < c->nm; m++)
        if (c->cm[m].job >= 0)
            c->cm[m].job = map[c->cm[m].job];
    c->nj = k;
    free(map);
    free_plan(c); /* the plan's subset refers to the old indices */
}

int bal_ctl_add_job(struct bal_ctl *c, const struct bal_job *j, char *reason, size_t rlen)
{
    if (find_job(c, j->id) >= 0) {
        snprintf(reason, rlen, "a job with id \"%s\" exists", j->id);
        return -EEXIST;
    }
    if (c->nj >= BAL_CTL_MAX_JOBS) {
        snprintf(reason, rlen, "too many jobs (%d known)", BAL_CTL_MAX_JOBS);
        return -ENOSPC;
    }
    push_job(c, j, true);
    c->replan_jobs = true;
    return 0;
}

int bal_ctl_cancel(struct bal_ctl *c, const char *id, char *reason, size_t rlen)
{
    long g = find_job(c, id);
    if (g < 0 || finished(&c->jobs[g])) {
        snprintf(reason, rlen, g < 0 ? "no job \"%s\"" : "job \"%s\" is finished", id);
        return -ENOENT;
    }
    long m = serving(c, (size_t)g);
    if (m >= 0 && !c->mach[m].interruptible) {
        snprintf(reason, rlen, "job \"%s\" runs on %s, which must not be interrupted", id, c->mach[m].id);
        return -EBUSY;
    }
    set_state(&c->jobs[g], BAL_JS_REJECTED, "cancelled");
    c->jobs[g].done_ms = c->last_step_ms;
    c->replan_jobs = true;
    return 0;
}

/* ---- readings ------------------------------------------------------------------------------------ */

static double machines_w(const struct bal_ctl *c)
{
    double w = 0;
    for (size_t m = 0; m < c->nm; m++)
        if (c->cm[m].ms.on)
            w += c->cm[m].ms.power_w;
    return w;
}

static void observe(struct bal_ctl *c, int64_t ts_ms)
{
    int64_t span = c->reading_ms == INT64_MIN ? 0 : ts_ms - c->reading_ms;
    int step_s = (int)(span / 1000 < OBS_MAX_S ? span / 1000 : OBS_MAX_S);
    if (step_s < 1)
        return;
    double base_w = c->load_w - machines_w(c);
    bal_pvfc_observe(&c->pvfc, &c->arr, c->reading_ms, c->pv_w, step_s);
    bal_loadprof_observe(&c->lp, c->reading_ms, base_w < 0 ? 0 : base_w, step_s);
    if (c->reading_ms < c->win_start_ms)
        return;
    c->win_pv_ws += c->pv_w * step_s;
    c->win_base_ws += (base_w < 0 ? 0 : base_w) * step_s;
    c->win_s += step_s;
}

void bal_ctl_balance(struct bal_ctl *c, int64_t ts_ms, double pv_w, double grid_w, double load_w)
{
    if (c->reading_ms != INT64_MIN && ts_ms <= c->reading_ms)
        return;
    if (!isfinite(grid_w))
        return;
    observe(c, ts_ms);
    c->reading_ms = ts_ms;
    c->pv_w = isfinite(pv_w) ? pv_w : 0;
    c->grid_w = grid_w;
    c->load_w = isfinite(load_w) ? load_w : c->pv_w + grid_w;
    if (c->collector_online)
        c->fresh++;
}

void bal_ctl_collector(struct bal_ctl *c, bool online)
{
    c->collector_online = online;
}

bool bal_ctl_stale(const struct bal_ctl *c, int64_t now_ms)
{
    return !c->collector_online || c->reading_ms == INT64_MIN ||
           now_ms - c->reading_ms > (int64_t)c->cfg->set.stale_after_s * 1000;
}

struct fc_point {
    int64_t ts_ms;
    double w;
};

static int cmp_fc_point(const void *a, const void *b)
{
    const struct fc_point *x = a, *y = b;
    return (x->ts_ms > y->ts_ms) - (x->ts_ms < y->ts_ms);
}

void bal_ctl_forecast(struct bal_ctl *c, const int64_t *ts_ms, const double *w, size_t n)
{
    struct fc_point *pts = fg_calloc(n ? n : 1, sizeof *pts);
    for (size_t i = 0; i < n; i++)
        pts[i] = (struct fc_point){ ts_ms[i], w[i] > 0 && isfinite(w[i]) ? w[i] : 0 };
    qsort(pts, n, sizeof *pts, cmp_fc_point);
    c->xf_ts = fg_realloc(c->xf_ts, (n ? n : 1) * sizeof *c->xf_ts);
    c->xf_w = fg_realloc(c->xf_w, (n ? n : 1) * sizeof *c->xf_w);
    for (size_t i = 0; i < n; i++) {
        c->xf_ts[i] = pts[i].ts_ms;
        c->xf_w[i] = pts[i].w;
    }
    c->nxf = n;
    free(pts);
    c->replan_jobs = true; /* a new forecast is worth a new plan */
}

/* ---- machines ------------------------------------------------------------------------------------ */

long bal_ctl_machine_index(const struct bal_ctl *c, const char *id)
{
    for (size_t m = 0; m < c->nm; m++)
        if (strcmp(c->mach[m].id, id) == 0)
            return (long)m;
    return -1;
}

void bal_ctl_observed(struct bal_ctl *c, size_t m, bool on, int64_t now_ms)
{
    if (m >= c->nm || c->cm[m].known)
        return;
    struct bal_cmach *cm = &c->cm[m];
    cm->known = true;
    if (cm->ms.on != on) {
        cm->ms.on = on;
        cm->ms.power_w = on ? c->mach[m].power_w : 0;
        cm->ms.since_ms = now_ms;
        cm->dirty = true;
    }
}

void bal_ctl_fault(struct bal_ctl *c, size_t m, int64_t now_ms)
{
    if (m >= c->nm)
        return;
    struct bal_cmach *cm = &c->cm[m];
    cm->faulted = true;
    cm->fault_ms = now_ms;
    cm->dirty = true;
    if (cm->ms.on) {
        cm->ms.on = false;
        cm->ms.power_w = 0;
        cm->job = -1;
    }
}

void bal_ctl_confirmed(struct bal_ctl *c, size_t m)
{
    if (m < c->nm && c->cm[m].faulted) {
        c->cm[m].faulted = false;
        c->cm[m].dirty = true;
    }
    if (m < c->nm)
        c->cm[m].known = true;
}

void bal_ctl_clock_jump(struct bal_ctl *c, int64_t delta_ms)
{
    for (size_t m = 0; m < c->nm; m++) {
        struct bal_cmach *cm = &c->cm[m];
        if (cm->ms.since_ms != INT64_MIN)
            cm->ms.since_ms += delta_ms;
        if (cm->fault_ms)
            cm->fault_ms += delta_ms;
        if (c->dm[m].surplus_since_ms)
            c->dm[m].surplus_since_ms += delta_ms;
        if (c->dm[m].import_since_ms)
            c->dm[m].import_since_ms += delta_ms;
    }
    c->last_step_ms += delta_ms;
    if (c->reading_ms != INT64_MIN)
        c->reading_ms += delta_ms;
}

/* ---- forecasts and plans ------------------------------------------------------------------------- */

/* The external forecast at t (linear between its points); t must lie within them. */
static double xf_at(const struct bal_ctl *c, int64_t t)
{
    size_t i = 1;
    while (i < c->nxf - 1 && c->xf_ts[i] < t)
        i++;
    int64_t t0 = c->xf_ts[i - 1], t1 = c->xf_ts[i];
    if (t1 == t0)
        return c->xf_w[i];
    return c->xf_w[i - 1] + (c->xf_w[i] - c->xf_w[i - 1]) * (double)(t - t0) / (double)(t1 - t0);
}

/* The external forecast's mean over a slot (minute midpoints), when the slot lies within its span. */
static bool xf_slot(const struct bal_ctl *c, int64_t s_ms, double *w)
{
    if (c->nxf < 2 || s_ms < c->xf_ts[0] || s_ms + c->slot_ms > c->xf_ts[c->nxf - 1])
        return false;
    double sum = 0;
    int64_t n = c->slot_ms / MIN_MS;
    for (int64_t k = 0; k < n; k++)
        sum += xf_at(c, s_ms + k * MIN_MS + MIN_MS / 2);
    *w = sum / (double)n;
    return true;
}

/* What the last minutes measured corrects the next NOWCAST_SLOTS slots, fading out: PV by the ratio of
 * measured to forecast (a cloud deck tends to stay a while), base load by the difference. Without it
 * a plan made because reality left the forecast would be made on the same wrong forecast again. */
#define NOWCAST_SLOTS 4
static void nowcast(struct bal_ctl *c)
{
    if (c->win_s < 180)
        return;
    double pv = c->win_pv_ws / c->win_s, base = c->win_base_ws / c->win_s;
    double ratio = c->fc_pv[0] > 100 ? pv / c->fc_pv[0] : 1;
    ratio = ratio < 0 ? 0 : ratio > 2 ? 2 : ratio;
    double dbase = base - c->fc_load[0];
    for (size_t k = 0; k < NOWCAST_SLOTS && k < c->nslots; k++) {
        double a = (double)(NOWCAST_SLOTS - k) / NOWCAST_SLOTS;
        c->fc_pv[k] *= 1 + (ratio - 1) * a;
        c->fc_load[k] += dbase * a;
        if (c->fc_load[k] < 0)
            c->fc_load[k] = 0;
    }
}

static void forecast(struct bal_ctl *c, int64_t s0)
{
    int slot_min = (int)c->cfg->set.slot_min;
    bal_forecast_pv(&c->arr, &c->pvfc, s0, slot_min, c->nslots, c->fc_pv);
    for (size_t k = 0; k < c->nslots; k++)
        xf_slot(c, s0 + (int64_t)k * c->slot_ms, &c->fc_pv[k]);
    bal_forecast_load(&c->lp, s0, slot_min, c->nslots, c->fc_load);
    nowcast(c);
}

/* The jobs that matter now: not finished, within the horizon, deadline ahead (or being served). */
static void build_subset(struct bal_ctl *c, int64_t now_ms)
{
    size_t cap = c->jcap ? c->jcap : 1;
    c->sub = fg_realloc(c->sub, cap * sizeof *c->sub);
    c->sub_g = fg_realloc(c->sub_g, cap * sizeof *c->sub_g);
    c->latest = fg_realloc(c->latest, cap * sizeof *c->latest);
    c->nsub = 0;
    for (size_t g = 0; g < c->nj; g++) {
        const struct bal_cjob *cj = &c->jobs[g];
        bool served = serving(c, g) >= 0;
        if ((finished(cj) && !served) || cj->j.earliest_ms >= now_ms + c->horizon_ms)
            continue;
        if (cj->j.deadline_ms <= now_ms && !served)
            continue;
        c->sub[c->nsub] = cj->j;
        c->sub_g[c->nsub++] = g;
    }
}

static long sub_index(const struct bal_ctl *c, long g)
{
    for (size_t k = 0; g >= 0 && k < c->nsub; k++)
        if (c->sub_g[k] == (size_t)g)
            return (long)k;
    return -1;
}

/* Brings the subset and the machines' view of it up to date before a plan or a dispatch. */
static void sync_subset(struct bal_ctl *c)
{
    for (size_t k = 0; k < c->nsub; k++) {
        size_t g = c->sub_g[k];
        long m = serving(c, g);
        c->sub[k].done_wh = c->jobs[g].j.done_wh;
        c->sub[k].running = m >= 0;
        c->sub[k].started_ms = m >= 0 ? c->cm[m].ms.since_ms : 0;
    }
    for (size_t m = 0; m < c->nm; m++) {
        c->ms_sub[m] = c->cm[m].ms;
        c->ms_sub[m].job = c->cm[m].ms.on ? (int)sub_index(c, c->cm[m].job) : -1;
    }
}

static void set_planned(struct bal_cjob *cj, const struct bal_job_plan *jp)
{
    if (cj->planned_first_ms != jp->first_ms || cj->planned_end_ms != jp->end_ms)
        cj->dirty = true;
    cj->planned_first_ms = jp->first_ms;
    cj->planned_end_ms = jp->end_ms;
}

/* What the new plan says of each job: planned, or why not. A new request the plan cannot fit is
 * rejected with the planner's reason; a configured job keeps waiting with it (its deadline guard may
 * still run it, late). */
static void note_plan(struct bal_ctl *c, int64_t now_ms)
{
    for (size_t k = 0; k < c->nsub && k < c->plan.njobs; k++) {
        struct bal_cjob *cj = &c->jobs[c->sub_g[k]];
        const struct bal_job_plan *jp = &c->plan.jobs[k];
        bool idle = cj->state == BAL_JS_QUEUED || cj->state == BAL_JS_PLANNED;
        set_planned(cj, jp);
        if (!idle)
            continue;
        if (jp->status == BAL_JOB_PLANNED) {
            set_state(cj, BAL_JS_PLANNED, jp->reason);
        } else if (jp->status == BAL_JOB_INFEASIBLE && cj->requested && cj->state == BAL_JS_QUEUED &&
                   cj->j.done_wh <= 0 && serving(c, c->sub_g[k]) < 0) {
            set_state(cj, BAL_JS_REJECTED, jp->reason);
            cj->done_ms = now_ms;
        } else if (jp->status != BAL_JOB_DONE) {
            set_state(cj, BAL_JS_QUEUED, jp->reason);
        }
    }
}

static int replan(struct bal_ctl *c, int64_t now_ms, char *err, size_t errlen)
{
    prune(c, now_ms);
    expand(c, now_ms);
    build_subset(c, now_ms);
    sync_subset(c);
    int64_t s0 = now_ms - now_ms % c->slot_ms;
    forecast(c, s0);
    struct bal_problem p = { .start_ms = s0, .now_ms = now_ms, .slot_min = (int)c->cfg->set.slot_min,
        .nslots = c->nslots, .pv_w = c->fc_pv, .load_w = c->fc_load, .grid_limit_w = c->cfg->site.grid_limit_w,
        .machines = c->mach, .nmachines = c->nm, .mstate = c->ms_sub, .jobs = c->sub, .njobs = c->nsub };
    c->plan_slot_ms = s0;
    c->plan_made_ms = now_ms;
    c->replan_jobs = c->replan_cfg = false;
    c->win_start_ms = now_ms;
    c->win_pv_ws = c->win_base_ws = c->win_s = 0;
    /* the guard acts at steps, interval_s apart: the last step at or before the latest start is one
     * interval earlier at worst */
    int64_t step_ms = (int64_t)c->cfg->set.interval_s * 1000;
    for (size_t k = 0; k < c->nsub; k++) {
        int64_t ls = bal_latest_start_ms(&p, k);
        c->latest[k] = ls == INT64_MIN || ls == INT64_MAX ? ls : ls - step_ms;
    }
    int rc = bal_plan_make(&p, &c->plan, err, errlen);
    c->have_plan = rc == 0;
    if (rc == 0)
        note_plan(c, now_ms);
    return rc;
}

/* Whether measured PV or base load over the last minutes left the plan's forecast by the margin. */
static bool off_forecast(struct bal_ctl *c, int64_t now_ms)
{
    if (!c->have_plan || c->win_s < 180 || now_ms - c->plan_made_ms < MARGIN_REPLAN_MS)
        return false;
    size_t k = (size_t)((now_ms - c->plan.start_ms) / c->slot_ms);
    double margin = c->cfg->set.replan_margin_w;
    bool off = k < c->nslots && (fabs(c->win_pv_ws / c->win_s - c->fc_pv[k]) > margin ||
                                 fabs(c->win_base_ws / c->win_s - c->fc_load[k]) > margin);
    if (now_ms - c->win_start_ms >= MARGIN_WINDOW_MS) {
        c->win_start_ms = now_ms;
        c->win_pv_ws = c->win_base_ws = c->win_s = 0;
    }
    return off;
}

static enum bal_replan_why replan_due(struct bal_ctl *c, int64_t now_ms)
{
    if (!c->plan_made_ms)
        return BAL_RP_START;
    if (c->replan_cfg)
        return BAL_RP_CONFIG;
    if (c->replan_jobs)
        return BAL_RP_JOBS;
    if (now_ms - now_ms % c->slot_ms != c->plan_slot_ms)
        return BAL_RP_SLOT;
    return off_forecast(c, now_ms) ? BAL_RP_MARGIN : BAL_RP_NONE;
}

/* ---- the step ------------------------------------------------------------------------------------ */

static void new_day(struct bal_ctl *c, int64_t now_ms)
{
    int32_t d = bal_series_local_day(now_ms, NULL);
    for (size_t m = 0; m < c->nm; m++)
        if (c->cm[m].starts_day != d) {
            c->cm[m].starts_day = d;
            c->cm[m].ms.starts_today = 0;
        }
}

/* Energy delivered since the last step by the machines that serve jobs (after a restart: since the
 * state was saved, the relays held meanwhile). */
static void credit(struct bal_ctl *c, int64_t now_ms)
{
    int64_t dt = now_ms - c->last_step_ms;
    if (dt <= 0)
        return;
    for (size_t m = 0; m < c->nm; m++) {
        const struct bal_cmach *cm = &c->cm[m];
        if (!cm->ms.on || cm->job < 0)
            continue;
        struct bal_cjob *cj = &c->jobs[cm->job];
        double rest = cj->j.energy_wh - cj->j.done_wh, wh = cm->ms.power_w * (double)dt / 3600000.0;
        int pct = (int)(100 * cj->j.done_wh / cj->j.energy_wh);
        if (wh >= rest && rest > -BAL_DONE_EPS_WH && !cj->done_ms) /* the instant it was complete, not the step */
            cj->done_ms = c->last_step_ms + (int64_t)((rest > 0 ? rest : 0) / cm->ms.power_w * 3600000.0);
        cj->j.done_wh += wh < rest ? wh : rest > 0 ? rest : 0;
        if ((int)(100 * cj->j.done_wh / cj->j.energy_wh) != pct)
            cj->dirty = true; /* progress is published by the percent, not every step */
    }
}

static void finish_job(struct bal_cjob *cj, int64_t now_ms)
{
    char why[120];
    cj->done_ms = now_ms;
    if (now_ms <= cj->j.deadline_ms) {
        set_state(cj, BAL_JS_DONE, "");
        return;
    }
    snprintf(why, sizeof why, "finished %lld min after the deadline",
             (long long)((now_ms - cj->j.deadline_ms + MIN_MS - 1) / MIN_MS));
    set_state(cj, BAL_JS_MISSED, why);
}

/* Done jobs, and jobs whose deadline passed without them. */
static void sweep(struct bal_ctl *c, int64_t now_ms)
{
    for (size_t g = 0; g < c->nj; g++) {
        struct bal_cjob *cj = &c->jobs[g];
        if (finished(cj))
            continue;
        if (cj->j.done_wh >= cj->j.energy_wh - BAL_DONE_EPS_WH) {
            finish_job(cj, cj->done_ms && cj->done_ms <= now_ms ? cj->done_ms : now_ms);
        } else if (cj->j.deadline_ms <= now_ms && serving(c, g) < 0) {
            char why[120];
            snprintf(why, sizeof why, "%s: %.0f of %.0f Wh delivered by the deadline",
                     cj->j.required ? "deadline passed" : "no surplus", cj->j.done_wh, cj->j.energy_wh);
            cj->done_ms = now_ms;
            set_state(cj, BAL_JS_MISSED, why);
        }
    }
}

static void apply_cmd(struct bal_ctl *c, const struct bal_cmd *k, int64_t now_ms)
{
    struct bal_cmach *cm = &c->cm[k->machine];
    bool was_on = cm->ms.on;
    cm->reason = k->reason;
    cm->dirty = true;
    if (k->on) {
        cm->job = k->job >= 0 && (size_t)k->job < c->nsub ? (long)c->sub_g[k->job] : -1;
        cm->ms.power_w = k->power_w;
        if (!was_on) {
            cm->ms.on = true;
            cm->ms.since_ms = now_ms;
            cm->ms.starts_today++;
        }
    } else {
        cm->ms.on = false;
        cm->ms.power_w = 0;
        cm->ms.since_ms = now_ms;
        cm->job = -1;
    }
}

/* A command the daemon may not give yet: anything before the first readings, an "on" to a machine
 * whose last command failed a short while ago. */
static bool held(const struct bal_ctl *c, const struct bal_cmd *k, int64_t now_ms)
{
    const struct bal_cmach *cm = &c->cm[k->machine];
    if (c->fresh < BAL_CTL_READINGS_BEFORE_START)
        return true;
    return k->on && !cm->ms.on && cm->faulted && now_ms - cm->fault_ms < BAL_CTL_FAULT_RETRY_MS;
}

static size_t dispatch(struct bal_ctl *c, int64_t now_ms, struct bal_cmd *out, size_t cap)
{
    sync_subset(c);
    int64_t stale_ms = (int64_t)c->cfg->set.stale_after_s * 1000;
    struct bal_live live = { .now_ms = now_ms, .reading_ms = c->reading_ms, .grid_w = c->grid_w,
                             .pv_w = c->pv_w, .load_w = c->load_w };
    if (bal_ctl_stale(c, now_ms))
        live.reading_ms = now_ms - stale_ms - 1000;
    size_t n = bal_dispatch(&c->dcfg, &live, c->have_plan ? &c->plan : NULL, c->mach, c->nm, c->ms_sub, c->dm,
                            c->sub, c->nsub, c->latest, c->cmds, c->nm);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (c->cmds[i].machine >= c->nm || held(c, &c->cmds[i], now_ms))
            continue;
        apply_cmd(c, &c->cmds[i], now_ms);
        if (k < cap)
            out[k++] = c->cmds[i];
    }
    return k;
}

/* Running jobs say so; a paused interruptible one is planned again. */
static void track_running(struct bal_ctl *c)
{
    for (size_t g = 0; g < c->nj; g++) {
        struct bal_cjob *cj = &c->jobs[g];
        bool served = serving(c, g) >= 0;
        if (served && (cj->state == BAL_JS_QUEUED || cj->state == BAL_JS_PLANNED))
            set_state(cj, BAL_JS_RUNNING, "");
        else if (!served && cj->state == BAL_JS_RUNNING)
            set_state(cj, BAL_JS_PLANNED, "paused");
    }
}

int bal_ctl_step(struct bal_ctl *c, int64_t now_ms, struct bal_cmd *out, size_t cap, enum bal_replan_why *why,
                 char *err, size_t errlen)
{
    new_day(c, now_ms);
    credit(c, now_ms);
    sweep(c, now_ms);
    enum bal_replan_why w = replan_due(c, now_ms);
    int rc = w ? replan(c, now_ms, err, errlen) : 0;
    size_t n = dispatch(c, now_ms, out, cap);
    track_running(c);
    sweep(c, now_ms);
    c->last_step_ms = now_ms;
    if (why)
        *why = w;
    return rc ? rc : (int)n;
}

/* The command shutdown gives machine m, if any. */
static bool shutdown_cmd(const struct bal_ctl *c, size_t m, struct bal_cmd *k)
{
    const struct bal_cmach *cm = &c->cm[m];
    enum bal_shutdown rule = c->cfg->shutdown ? c->cfg->shutdown[m] : BAL_SHUT_AUTO;
    *k = (struct bal_cmd){ .machine = m, .on = rule == BAL_SHUT_ON, .job = -1, .reason = BAL_R_NONE };
    if (c->mach[m].manual || rule == BAL_SHUT_KEEP || cm->ms.on == (rule == BAL_SHUT_ON))
        return false;
    if (rule == BAL_SHUT_ON) {
        k->power_w = c->mach[m].power_w;
        return true;
    }
    const struct bal_cjob *cj = cm->job >= 0 ? &c->jobs[cm->job] : NULL;
    /* a started block finishes: a kiln cut mid-firing spoils its load */
    return !(rule == BAL_SHUT_AUTO && cj && !c->mach[m].interruptible && !finished(cj));
}

size_t bal_ctl_shutdown(struct bal_ctl *c, int64_t now_ms, struct bal_cmd *out, size_t cap)
{
    size_t n = 0;
    for (size_t m = 0; m < c->nm && n < cap; m++)
        if (shutdown_cmd(c, m, &out[n])) {
            struct bal_cmd k = out[n];
            k.job = -1; /* apply_cmd reads job as a plan index: none here */
            apply_cmd(c, &k, now_ms);
            n++;
        }
    return n;
}

/* ---- advice -------------------------------------------------------------------------------------- */

/* The first slot from now whose forecast surplus, less the other machines' planned power, covers w. */
static int64_t next_green(const struct bal_ctl *c, size_t m, double w, int64_t now_ms)
{
    if (!c->have_plan)
        return 0;
    const struct bal_plan *p = &c->plan;
    for (size_t s = 0; s < p->nslots; s++) {
        int64_t t = p->start_ms + (int64_t)s * c->slot_ms;
        if (t + c->slot_ms <= now_ms)
            continue;
        double others = 0;
        for (size_t o = 0; o < p->nmachines; o++)
            if (o != m)
                others += p->power_w[o * p->nslots + s];
        if (c->fc_pv[s] - c->fc_load[s] - others >= w)
            return t > now_ms ? t : now_ms;
    }
    return 0;
}

int bal_ctl_advice(const struct bal_ctl *c, size_t m, int64_t now_ms, double *surplus_w, int64_t *next_green_ms)
{
    const struct bal_machine *mc = &c->mach[m];
    double need = mc->min_power_w > 0 && mc->min_power_w < mc->power_w ? mc->min_power_w : mc->power_w;
    double sur = bal_ctl_stale(c, now_ms) ? NAN : -c->grid_w;
    if (c->cm[m].ms.on && isfinite(sur))
        sur += c->cm[m].ms.power_w; /* a machine already running counts its own draw as covered */
    *surplus_w = sur;
    *next_green_ms = next_green(c, m, need, now_ms);
    if (!isfinite(sur) || sur <= 0)
        return 0;
    return sur >= need ? 2 : 1;
}

/* ---- read access and events ---------------------------------------------------------------------- */

size_t bal_ctl_nmachines(const struct bal_ctl *c)
{
    return c->nm;
}

const struct bal_machine *bal_ctl_machine(const struct bal_ctl *c, size_t m)
{
    return &c->mach[m];
}

const struct bal_cmach *bal_ctl_mach_state(const struct bal_ctl *c, size_t m)
{
    return &c->cm[m];
}

size_t bal_ctl_njobs(const struct bal_ctl *c)
{
    return c->nj;
}

const struct bal_cjob *bal_ctl_job(const struct bal_ctl *c, size_t j)
{
    return &c->jobs[j];
}

bool bal_ctl_dirty(const struct bal_ctl *c)
{
    for (size_t m = 0; m < c->nm; m++)
        if (c->cm[m].dirty)
            return true;
    for (size_t j = 0; j < c->nj; j++)
        if (c->jobs[j].dirty)
            return true;
    return false;
}

int64_t bal_ctl_last_step(const struct bal_ctl *c)
{
    return c->last_step_ms;
}

long bal_ctl_machine_job(const struct bal_ctl *c, size_t m)
{
    return c->cm[m].job;
}

const struct bal_plan *bal_ctl_plan(const struct bal_ctl *c, const double **pv_w, const double **load_w,
                                    int64_t *made_ms)
{
    if (pv_w)
        *pv_w = c->fc_pv;
    if (load_w)
        *load_w = c->fc_load;
    if (made_ms)
        *made_ms = c->plan_made_ms;
    return c->have_plan ? &c->plan : NULL;
}

void bal_ctl_take_job_events(struct bal_ctl *c, void (*fn)(void *ud, const struct bal_cjob *j), void *ud)
{
    for (size_t j = 0; j < c->nj; j++)
        if (c->jobs[j].dirty) {
            c->jobs[j].dirty = false;
            fn(ud, &c->jobs[j]);
        }
}

void bal_ctl_take_machine_events(struct bal_ctl *c, void (*fn)(void *ud, size_t m), void *ud)
{
    for (size_t m = 0; m < c->nm; m++)
        if (c->cm[m].dirty) {
            c->cm[m].dirty = false;
            fn(ud, m);
        }
}

/* ---- restart ------------------------------------------------------------------------------------- */

void bal_ctl_restore_machine(struct bal_ctl *c, size_t m, bool on, double power_w, int64_t since_ms,
                             unsigned starts_today, int32_t starts_day, const char *job_id)
{
    if (m >= c->nm)
        return;
    struct bal_cmach *cm = &c->cm[m];
    cm->ms.on = on;
    cm->ms.power_w = on ? power_w : 0;
    cm->ms.since_ms = since_ms;
    cm->starts_day = starts_day;
    cm->ms.starts_today = starts_today;
    cm->job = on && job_id && *job_id ? find_job(c, job_id) : -1;
    cm->known = false; /* the device's first report may still correct it */
    cm->reason = on ? BAL_R_PLAN : BAL_R_NONE;
    cm->dirty = true;
}

void bal_ctl_resume(struct bal_ctl *c, int64_t saved_ms)
{
    if (saved_ms > 0 && saved_ms < c->last_step_ms)
        c->last_step_ms = saved_ms;
}

int bal_ctl_restore_job(struct bal_ctl *c, const struct bal_job *j, bool requested, enum bal_jstate state,
                        int64_t done_ms)
{
    long g = find_job(c, j->id);
    if (g < 0) {
        if (!requested && j->deadline_ms <= c->last_step_ms && !done_ms)
            return -ENOENT; /* a configured occurrence that is over: nothing to carry on */
        if (c->nj >= BAL_CTL_MAX_JOBS)
            return -ENOSPC;
        push_job(c, j, requested);
        g = (long)c->nj - 1;
    }
    struct bal_cjob *cj = &c->jobs[g];
    cj->j.done_wh = j->done_wh;
    cj->state = state == BAL_JS_RUNNING ? BAL_JS_PLANNED : state; /* running again once a machine serves it */
    cj->done_ms = done_ms;
    cj->dirty = true;
    c->replan_jobs = true;
    return 0;
}

/* ---- reconfiguration ----------------------------------------------------------------------------- */

/* Carries machine states over by id into freshly allocated arrays for cfg. */
static void remap_machines(struct bal_ctl *c, const struct bal_config *cfg, long *mmap)
{
    struct bal_ctl old = *c;
    alloc_machines(c, cfg->nmachines);
    for (size_t m = 0; m < c->nm; m++) {
        c->mach[m] = cfg->machines[m];
        long o = -1;
        for (size_t k = 0; k < old.nm && o < 0; k++)
            if (strcmp(old.mach[k].id, cfg->machines[m].id) == 0)
                o = (long)k;
        if (o >= 0) {
            c->cm[m] = old.cm[o];
            c->dm[m] = old.dm[o];
            mmap[o] = (long)m;
        } else {
            new_machine(&c->cm[m]);
            c->cm[m].starts_day = old.nm ? old.cm[0].starts_day : bal_series_local_day(c->last_step_ms, NULL);
        }
    }
    free_machines(&old);
}

/* A configured occurrence not started yet takes its job's new definition, or is rejected when its
 * job is gone; started ones keep their progress (a block in progress finishes as it began). */
static void refresh_job(struct bal_cjob *cj, const struct bal_job *occ, size_t nocc, bool started)
{
    for (size_t i = 0; i < nocc; i++)
        if (strcmp(occ[i].id, cj->j.id) == 0) {
            if (!started) {
                cj->j = occ[i];
                cj->dirty = true;
            }
            return;
        }
    if (!started)
        set_state(cj, BAL_JS_REJECTED, "removed from the config");
}

static void remap_jobs(struct bal_ctl *c, const long *mmap, int64_t now_ms)
{
    size_t nocc;
    struct bal_job *occ = occurrences(c, now_ms, &nocc);
    for (size_t g = 0; g < c->nj; g++) {
        struct bal_cjob *cj = &c->jobs[g];
        long m = mmap[cj->j.machine];
        if (m < 0) {
            if (!finished(cj))
                set_state(cj, BAL_JS_REJECTED, "its machine was removed from the config");
            cj->j.machine = 0;
            continue;
        }
        cj->j.machine = (size_t)m;
        if (!cj->requested && !finished(cj))
            refresh_job(cj, occ, nocc, cj->j.done_wh > 0 || cj->state == BAL_JS_RUNNING);
    }
    free(occ);
}

int bal_ctl_reconfigure(struct bal_ctl *c, const struct bal_config *cfg, int64_t now_ms, char *err, size_t errlen)
{
    if (check_cfg(cfg, err, errlen))
        return -EINVAL;
    long *mmap = fg_calloc(c->nm ? c->nm : 1, sizeof *mmap);
    for (size_t m = 0; m < c->nm; m++)
        mmap[m] = -1;
    free_plan(c);
    remap_machines(c, cfg, mmap);
    apply_cfg(c, cfg);
    remap_jobs(c, mmap, now_ms);
    free(mmap);
    c->replan_cfg = true;
    return 0;
}
