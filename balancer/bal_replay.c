/* bal_replay: the replay engine. The recorded PV and the paired load are first laid out minute by
 * minute on a timeline (so the oracle, the forecasts and the books all read the same numbers), then a
 * simulated clock walks it: plan at slot boundaries, dispatch and book every minute. */
#include "bal_replay.h"
#include "bal_forecast.h"
#include "bal_plan.h"
#include "fg_clock.h"
#include "fg_file.h"
#include "fg_mem.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STEP_MS BAL_REPLAY_STEP_MS
#define DAY_MS 86400000LL
#define PV_WARMUP_DAYS 3  /* the PV ratio looks back 3 days (bal_pvfc's default) */

/* known PV, known load, PV outside the file's span, known external PV forecast */
enum { FL_PV = 1, FL_LOAD = 2, FL_EDGE = 4, FL_FC = 8 };

/* Minute values of [t0_ms, t0_ms + nmin minutes): PV, base load and the external PV forecast (scaled)
 * at each minute's middle; prices in force at each minute's start. fc_w and the prices are NULL
 * without a forecast file or prices. */
struct timeline {
    int64_t t0_ms;
    size_t nmin;
    double *pv_w, *load_w, *fc_w;
    double *price_imp, *price_exp; /* per kWh */
    unsigned char *flags;
};

struct eng {
    const struct bal_config *cfg;
    const struct bal_replay_opts *o;
    const struct bal_series *pv, *load;
    struct bal_replay_result *r;
    struct timeline tl;
    int64_t start_ms, end_ms, slot_ms, horizon_ms;
    size_t nslots, nm;
    struct bal_machine *mach;  /* the config's machines, manual ones replayed as auto */
    struct bal_dcfg dcfg;
    struct bal_array arr;
    bool observe_pv;           /* the PV forecast needs observations */
    struct bal_pvfc *pvfc;
    struct bal_loadprof *lp;
    struct bal_job *all;       /* every occurrence, parallel to r->jobs */
    struct bal_job *sub;       /* the occurrences handed to planner and dispatcher this slot */
    size_t *sub_g, nsub;
    int64_t *latest;
    struct bal_mstate *ms;
    struct bal_dmem *dm;
    long *mjob;                /* the r->jobs index each machine serves, -1 */
    long *run;                 /* each machine's open run in r->runs, -1 */
    struct bal_cmd *cmds;
    struct bal_plan plan;
    bool have_plan;
    double *fc_pv, *fc_load;
    double *slot_pi, *slot_pe;  /* prices per planner slot: means over its minutes (NULL without prices) */
    int64_t reading_ms;
    double reading_grid_w, reading_pv_w, reading_load_w;
    bool in_gap;
    size_t gap_day, day;
    size_t runs_cap, plans_cap;
};

/* ---- local calendar ---------------------------------------------------------------------------- */


/* Local midnight of a civil date; from noon, because some zones skip midnight itself. */
static int64_t civil_midnight(int32_t day)
{
    int y, m, d;
    bal_series_civil_date(day, &y, &m, &d);
    struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12, .tm_isdst = -1 };
    return bal_local_midnight((int64_t)mktime(&tm) * 1000);
}

/* ---- which days ------------------------------------------------------------------------------- */

/* A day is replayed when the PV file spans at least half of it. */
static bool day_covered(const struct bal_series *pv, int32_t day)
{
    int64_t s = civil_midnight(day), e = civil_midnight(day + 1);
    int64_t a = s > pv->t_ms[0] ? s : pv->t_ms[0], b = e < pv->t_ms[pv->n - 1] ? e : pv->t_ms[pv->n - 1];
    return 2 * (b - a) >= e - s;
}

static int choose_days(struct eng *e, char *err, size_t errlen)
{
    int32_t d0 = bal_series_local_day(e->pv->t_ms[0], NULL), d1 = bal_series_local_day(e->pv->t_ms[e->pv->n - 1], NULL);
    int32_t first = e->o->has_from ? e->o->from_day : d0;
    if (!e->o->has_from && !day_covered(e->pv, first))
        first++;
    if (first < d0 || first > d1 || !day_covered(e->pv, first)) {
        char a[16], b[16], c[16];
        bal_series_date_str(d0, b, sizeof b);
        bal_series_date_str(d1, c, sizeof c);
        if (e->o->has_from)
            snprintf(err, errlen, "no PV data on %s (the PV file covers %s .. %s)", bal_series_date_str(first, a, sizeof a),
                     b, c);
        else
            snprintf(err, errlen, "the PV file covers no half day (%s .. %s)", b, c);
        return -EINVAL;
    }
    size_t n = 0;
    while (first + (int32_t)n <= d1 && day_covered(e->pv, first + (int32_t)n) && (!e->o->ndays || n < e->o->ndays))
        n++;
    e->r->days = fg_calloc(n, sizeof *e->r->days);
    e->r->ndays = n;
    for (size_t k = 0; k < n; k++) {
        struct bal_replay_day *d = &e->r->days[k];
        d->date = first + (int32_t)k;
        d->load_date = bal_series_pair_day(e->load, d->date);
        d->start_ms = civil_midnight(d->date);
        d->end_ms = civil_midnight(d->date + 1);
        d->nmin = (size_t)((d->end_ms - d->start_ms) / STEP_MS);
    }
    e->start_ms = e->r->days[0].start_ms;
    e->end_ms = e->r->days[n - 1].end_ms;
    return 0;
}

/* ---- the timeline ----------------------------------------------------------------------------- */

static void timeline_load(const struct eng *e, struct bal_series_paired *ld, int64_t t_ms, size_t i)
{
    double w;
    if (bal_series_paired_at(ld, t_ms, &w)) {
        e->tl.load_w[i] = w * e->o->load_scale;
        e->tl.flags[i] |= FL_LOAD;
    }
}

static void timeline_pv(const struct eng *e, int64_t t_ms, size_t i)
{
    double v;
    if (bal_series_at(e->pv, t_ms, &v)) {
        e->tl.pv_w[i] = v > 0 ? v * e->o->pv_scale : 0; /* an inverter's night tare is no production */
        e->tl.flags[i] |= FL_PV;
    } else if (t_ms < e->pv->t_ms[0] || t_ms > e->pv->t_ms[e->pv->n - 1]) {
        e->tl.flags[i] |= FL_EDGE;
    }
}

static void timeline_fc(const struct eng *e, int64_t t_ms, size_t i)
{
    double v;
    if (bal_series_at(e->o->forecast, t_ms, &v)) {
        e->tl.fc_w[i] = v > 0 ? v * e->o->pv_scale : 0; /* scaled like the PV it forecasts */
        e->tl.flags[i] |= FL_FC;
    }
}

static void build_timeline(struct eng *e)
{
    struct timeline *tl = &e->tl;
    tl->t0_ms = civil_midnight(e->r->days[0].date - BAL_REPLAY_WARMUP_DAYS);
    tl->nmin = (size_t)((e->end_ms + e->horizon_ms + DAY_MS - tl->t0_ms) / STEP_MS);
    tl->pv_w = fg_calloc(tl->nmin, sizeof *tl->pv_w);
    tl->load_w = fg_calloc(tl->nmin, sizeof *tl->load_w);
    tl->flags = fg_calloc(tl->nmin, 1);
    if (e->o->forecast)
        tl->fc_w = fg_calloc(tl->nmin, sizeof *tl->fc_w);
    if (e->o->prices) {
        tl->price_imp = fg_calloc(tl->nmin, sizeof *tl->price_imp);
        tl->price_exp = fg_calloc(tl->nmin, sizeof *tl->price_exp);
    }
    struct bal_series_paired *ld = fg_calloc(1, sizeof *ld);
    ld->s = e->load;
    for (size_t i = 0; i < tl->nmin; i++) {
        int64_t t = tl->t0_ms + (int64_t)i * STEP_MS, mid = t + STEP_MS / 2;
        timeline_pv(e, mid, i);
        timeline_load(e, ld, mid, i);
        if (tl->fc_w)
            timeline_fc(e, mid, i);
        if (tl->price_imp)
            bal_replay_prices_at(e->o->prices, t, &tl->price_imp[i], &tl->price_exp[i]);
    }
    free(ld);
}

/* Mean over one slot of the timeline's values v where the minute has flag bit (unknown minutes count
 * 0); *known (may be NULL) gets the number of known minutes. */
static double slot_mean_of(const struct eng *e, int64_t s_ms, unsigned char bit, const double *v, size_t *known)
{
    double sum = 0;
    size_t n = (size_t)(e->slot_ms / STEP_MS), nk = 0;
    for (size_t k = 0; k < n; k++) {
        int64_t t = s_ms + (int64_t)k * STEP_MS;
        if (t < e->tl.t0_ms)
            continue;
        size_t i = (size_t)((t - e->tl.t0_ms) / STEP_MS);
        if (i >= e->tl.nmin || !(e->tl.flags[i] & bit))
            continue;
        sum += v[i];
        nk++;
    }
    if (known)
        *known = nk;
    return sum / (double)n;
}

/* Mean over one slot of PV (pv true) or base load; unknown minutes count 0. */
static double slot_mean(const struct eng *e, int64_t s_ms, bool pv)
{
    return pv ? slot_mean_of(e, s_ms, FL_PV, e->tl.pv_w, NULL) : slot_mean_of(e, s_ms, FL_LOAD, e->tl.load_w, NULL);
}

/* ---- set-up ------------------------------------------------------------------------------------ */

static int expand_jobs(struct eng *e)
{
    size_t cap = (e->r->ndays + 2) * (e->cfg->njobs + 1) + 8, n;
    struct bal_job *all = NULL;
    for (;;) {
        all = fg_realloc(all, cap * sizeof *all);
        n = bal_jobs_expand(e->cfg, e->start_ms, e->end_ms, all, cap);
        if (n < cap)
            break;
        cap *= 2;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (all[i].earliest_ms >= e->start_ms && all[i].deadline_ms <= e->end_ms)
            all[k++] = all[i];
    e->all = all;
    e->r->njobs = k;
    e->r->jobs = fg_calloc(k ? k : 1, sizeof *e->r->jobs);
    for (size_t i = 0; i < k; i++) {
        struct bal_replay_job *j = &e->r->jobs[i];
        fg_strlcpy(j->id, all[i].id, sizeof j->id);
        j->machine = all[i].machine;
        j->earliest_ms = all[i].earliest_ms;
        j->deadline_ms = all[i].deadline_ms;
        j->energy_wh = all[i].energy_wh;
        j->required = all[i].required;
        j->surplus_only = all[i].surplus_only;
    }
    size_t nsub_max = k ? k : 1;
    e->sub = fg_calloc(nsub_max, sizeof *e->sub);
    e->sub_g = fg_calloc(nsub_max, sizeof *e->sub_g);
    e->latest = fg_calloc(nsub_max, sizeof *e->latest);
    return 0;
}

static int setup_machines(struct eng *e, char *err, size_t errlen)
{
    const struct bal_config *c = e->cfg;
    if (c->nmachines > BAL_MAX_MACHINES) {
        snprintf(err, errlen, "%zu machines: the replay handles at most %d", c->nmachines, BAL_MAX_MACHINES);
        return -EINVAL;
    }
    e->nm = c->nmachines;
    size_t nm = e->nm ? e->nm : 1;
    e->mach = fg_calloc(nm, sizeof *e->mach);
    if (c->nmachines)
        memcpy(e->mach, c->machines, c->nmachines * sizeof *e->mach);
    for (size_t m = 0; m < e->nm; m++)
        e->mach[m].manual = false; /* the person follows the advice at once */
    e->ms = fg_calloc(nm, sizeof *e->ms);
    e->dm = fg_calloc(nm, sizeof *e->dm);
    e->mjob = fg_calloc(nm, sizeof *e->mjob);
    e->run = fg_calloc(nm, sizeof *e->run);
    e->cmds = fg_calloc(nm, sizeof *e->cmds);
    for (size_t m = 0; m < e->nm; m++) {
        e->ms[m] = (struct bal_mstate){ .since_ms = INT64_MIN, .job = -1 };
        e->mjob[m] = -1;
        e->run[m] = -1;
    }
    return 0;
}

static const char *forecast_kind(const struct eng *e)
{
    if (e->o->strategy != BAL_STRAT_PLAN)
        return NULL;
    if (e->o->oracle)
        return "oracle";
    if (e->o->forecast)
        return "file";
    return e->arr.kwp > 0 ? "clear-sky" : "persistence";
}

static int setup(struct eng *e, char *err, size_t errlen)
{
    const struct bal_settings *s = &e->cfg->set;
    if (s->slot_min < 5 || s->slot_min > 60 || 60 % s->slot_min || s->horizon_h < 1 || s->horizon_h > 72) {
        snprintf(err, errlen, "balancer.slot_min %u / horizon_h %u out of range", s->slot_min, s->horizon_h);
        return -EINVAL;
    }
    e->slot_ms = (int64_t)s->slot_min * 60000;
    e->nslots = s->horizon_h * 60u / s->slot_min;
    if (e->nslots > BAL_MAX_SLOTS)
        e->nslots = BAL_MAX_SLOTS;
    e->horizon_ms = (int64_t)e->nslots * e->slot_ms;
    e->dcfg = (struct bal_dcfg){ .strategy = e->o->strategy, .hysteresis_w = s->hysteresis_w,
        .surplus_margin_w = s->surplus_margin_w, .surplus_delay_s = s->surplus_delay_s,
        .stale_after_s = s->stale_after_s, .slot_min = (int)s->slot_min };
    const struct fg_site_cfg *site = &e->cfg->site;
    e->arr = (struct bal_array){ site->latitude, site->longitude, site->pv_kwp, site->tilt_deg, site->azimuth_deg };
    e->observe_pv = e->o->strategy == BAL_STRAT_PLAN && !e->o->oracle && e->arr.kwp > 0;
    e->pvfc = fg_malloc(sizeof *e->pvfc);
    bal_pvfc_init(e->pvfc, PV_WARMUP_DAYS);
    e->lp = fg_malloc(sizeof *e->lp);
    bal_loadprof_init(e->lp);
    e->fc_pv = fg_calloc(e->nslots, sizeof *e->fc_pv);
    e->fc_load = fg_calloc(e->nslots, sizeof *e->fc_load);
    if (e->o->prices) {
        e->slot_pi = fg_calloc(e->nslots, sizeof *e->slot_pi);
        e->slot_pe = fg_calloc(e->nslots, sizeof *e->slot_pe);
    }
    e->r->forecast = forecast_kind(e);
    e->r->priced = e->o->prices != NULL;
    if (choose_days(e, err, errlen) || setup_machines(e, err, errlen))
        return -EINVAL;
    build_timeline(e);
    return expand_jobs(e);
}

static void teardown(struct eng *e)
{
    if (e->have_plan)
        bal_plan_free(&e->plan);
    free(e->tl.pv_w);
    free(e->tl.load_w);
    free(e->tl.fc_w);
    free(e->tl.price_imp);
    free(e->tl.price_exp);
    free(e->tl.flags);
    free(e->mach);
    free(e->pvfc);
    free(e->lp);
    free(e->all);
    free(e->sub);
    free(e->sub_g);
    free(e->latest);
    free(e->ms);
    free(e->dm);
    free(e->mjob);
    free(e->run);
    free(e->cmds);
    free(e->fc_pv);
    free(e->fc_load);
    free(e->slot_pi);
    free(e->slot_pe);
}

/* ---- forecasts and plans ---------------------------------------------------------------------- */

static size_t tl_index(const struct eng *e, int64_t t_ms)
{
    return (size_t)((t_ms - e->tl.t0_ms) / STEP_MS);
}

/* Feeds the forecasts the minutes before the first day: what a running site would have seen. */
static void warm_up(struct eng *e)
{
    for (int64_t t = e->tl.t0_ms; t < e->start_ms; t += STEP_MS) {
        size_t i = tl_index(e, t);
        if (e->tl.flags[i] & FL_LOAD)
            bal_loadprof_observe(e->lp, t, e->tl.load_w[i], STEP_MS / 1000);
        if (e->observe_pv && (e->tl.flags[i] & FL_PV) && t >= e->start_ms - PV_WARMUP_DAYS * DAY_MS)
            bal_pvfc_observe(e->pvfc, &e->arr, t, e->tl.pv_w[i], STEP_MS / 1000);
    }
}

/* Without an array to model, PV is forecast as the same slot on the latest past day (persistence). */
static void persistence_pv(struct eng *e, int64_t s0)
{
    for (size_t k = 0; k < e->nslots; k++) {
        int64_t sk = s0 + (int64_t)k * e->slot_ms;
        int64_t back = DAY_MS * (1 + (sk - s0) / DAY_MS);
        e->fc_pv[k] = slot_mean(e, sk - back, true);
    }
}

/* The forecast file's slot means replace the built-in PV forecast in the slots it covers fully; the
 * others keep the built-in one and are counted. */
static void forecast_file(struct eng *e, int64_t s0)
{
    size_t n = (size_t)(e->slot_ms / STEP_MS);
    for (size_t k = 0; k < e->nslots; k++) {
        size_t known;
        double w = slot_mean_of(e, s0 + (int64_t)k * e->slot_ms, FL_FC, e->tl.fc_w, &known);
        if (known == n)
            e->fc_pv[k] = w;
        else
            e->r->forecast_fallback_slots++;
    }
}

static void forecast(struct eng *e, int64_t s0)
{
    int slot_min = (int)e->cfg->set.slot_min;
    if (e->o->oracle) {
        for (size_t k = 0; k < e->nslots; k++) {
            e->fc_pv[k] = slot_mean(e, s0 + (int64_t)k * e->slot_ms, true);
            e->fc_load[k] = slot_mean(e, s0 + (int64_t)k * e->slot_ms, false);
        }
        return;
    }
    if (e->arr.kwp > 0)
        bal_forecast_pv(&e->arr, e->pvfc, s0, slot_min, e->nslots, e->fc_pv);
    else
        persistence_pv(e, s0);
    if (e->o->forecast)
        forecast_file(e, s0);
    bal_forecast_load(e->lp, s0, slot_min, e->nslots, e->fc_load);
}

/* Each slot's prices: the time-weighted mean of the minutes' (a tariff may change inside a slot). */
static void slot_prices(struct eng *e, int64_t s0)
{
    size_t n = (size_t)(e->slot_ms / STEP_MS), i0 = tl_index(e, s0);
    for (size_t k = 0; k < e->nslots; k++) {
        double pi = 0, pe = 0;
        for (size_t j = i0 + k * n; j < i0 + (k + 1) * n; j++) {
            pi += e->tl.price_imp[j];
            pe += e->tl.price_exp[j];
        }
        e->slot_pi[k] = pi / (double)n;
        e->slot_pe[k] = pe / (double)n;
    }
}

static long serving_machine(const struct eng *e, size_t g)
{
    for (size_t m = 0; m < e->nm; m++)
        if (e->ms[m].on && e->mjob[m] == (long)g)
            return (long)m;
    return -1;
}

/* Brings the jobs handed out up to date: delivered energy, and whether a machine runs them now. */
static void sync_subset(struct eng *e)
{
    for (size_t j = 0; j < e->nsub; j++) {
        size_t g = e->sub_g[j];
        long m = serving_machine(e, g);
        e->sub[j].done_wh = e->r->jobs[g].done_wh;
        e->sub[j].running = m >= 0;
        e->sub[j].started_ms = m >= 0 ? e->ms[m].since_ms : 0;
    }
}

/* The occurrences that matter now: not delivered, within the horizon, deadline ahead (or running). */
static void build_subset(struct eng *e, int64_t t)
{
    e->nsub = 0;
    for (size_t g = 0; g < e->r->njobs; g++) {
        const struct bal_job *a = &e->all[g];
        if (e->r->jobs[g].done_ms || a->earliest_ms >= t + e->horizon_ms)
            continue;
        if (a->deadline_ms <= t && serving_machine(e, g) < 0)
            continue;
        e->sub[e->nsub] = *a;
        e->sub_g[e->nsub++] = g;
    }
    for (size_t m = 0; m < e->nm; m++) {
        e->ms[m].job = -1;
        for (size_t j = 0; j < e->nsub && e->mjob[m] >= 0; j++)
            if (e->sub_g[j] == (size_t)e->mjob[m])
                e->ms[m].job = (int)j;
        if (e->ms[m].job < 0)
            e->mjob[m] = -1;
    }
    sync_subset(e);
}

static void note_infeasible(struct eng *e)
{
    for (size_t j = 0; j < e->plan.njobs && j < e->nsub; j++) {
        struct bal_replay_job *rj = &e->r->jobs[e->sub_g[j]];
        if (e->plan.jobs[j].status != BAL_JOB_INFEASIBLE || rj->infeasible)
            continue;
        rj->infeasible = true;
        fg_strlcpy(rj->reason, e->plan.jobs[j].reason, sizeof rj->reason);
    }
}

static int plan_now(struct eng *e, const struct bal_problem *p, char *err, size_t errlen)
{
    struct bal_plan np;
    memset(&np, 0, sizeof np);
    int64_t a = e->o->mono_ns ? e->o->mono_ns(e->o->mono_ctx) : 0;
    int rc = bal_plan_make(p, &np, err, errlen);
    int64_t b = e->o->mono_ns ? e->o->mono_ns(e->o->mono_ctx) : 0;
    if (rc)
        return rc;
    if (e->r->nplans == e->plans_cap) {
        e->plans_cap = e->plans_cap ? 2 * e->plans_cap : 1024;
        e->r->plan_ms = fg_realloc(e->r->plan_ms, e->plans_cap * sizeof *e->r->plan_ms);
    }
    e->r->plan_ms[e->r->nplans++] = (double)(b - a) / 1e6;
    if (e->have_plan)
        bal_plan_free(&e->plan);
    e->plan = np;
    e->have_plan = true;
    note_infeasible(e);
    return 0;
}

static int replan(struct eng *e, int64_t t, char *err, size_t errlen)
{
    build_subset(e, t);
    int64_t s0 = t - t % e->slot_ms;
    struct bal_problem p = { .start_ms = s0, .now_ms = t, .slot_min = (int)e->cfg->set.slot_min,
        .nslots = e->nslots, .pv_w = e->fc_pv, .load_w = e->fc_load, .grid_limit_w = e->cfg->site.grid_limit_w,
        .machines = e->mach, .nmachines = e->nm, .mstate = e->ms, .jobs = e->sub, .njobs = e->nsub };
    if (e->o->strategy == BAL_STRAT_PLAN) {
        if (e->o->prices) {
            slot_prices(e, s0);
            p.price_import = e->slot_pi;
            p.price_export = e->slot_pe;
        }
        forecast(e, s0);
        int rc = plan_now(e, &p, err, errlen);
        if (rc)
            return rc;
    }
    for (size_t j = 0; j < e->nsub; j++)
        e->latest[j] = bal_latest_start_ms(&p, j);
    return 0;
}

/* ---- switching --------------------------------------------------------------------------------- */

static void open_run(struct eng *e, size_t m, int64_t t)
{
    struct bal_replay_result *r = e->r;
    if (r->nruns == e->runs_cap) {
        e->runs_cap = e->runs_cap ? 2 * e->runs_cap : 256;
        r->runs = fg_realloc(r->runs, e->runs_cap * sizeof *r->runs);
    }
    r->runs[r->nruns] = (struct bal_replay_run){ .machine = m, .on_ms = t, .off_ms = t, .job = e->mjob[m] };
    e->run[m] = (long)r->nruns++;
}

static void apply_cmd(struct eng *e, const struct bal_cmd *c, int64_t t)
{
    size_t m = c->machine;
    struct bal_mstate *s = &e->ms[m];
    bool was_on = s->on;
    s->job = c->on ? c->job : -1;
    e->mjob[m] = c->on && c->job >= 0 && (size_t)c->job < e->nsub ? (long)e->sub_g[c->job] : -1;
    if (c->on) {
        s->power_w = c->power_w;
        if (!was_on) {
            s->on = true;
            s->since_ms = t;
            s->starts_today++;
            e->r->days[e->day].e.starts++;
            e->r->total.starts++;
            open_run(e, m, t);
        }
    } else if (was_on) {
        s->on = false;
        s->since_ms = t;
        s->power_w = 0;
        e->r->runs[e->run[m]].off_ms = t;
        e->run[m] = -1;
    }
}

static void dispatch(struct eng *e, int64_t t, bool fresh, double pv_w, double base_w, double mach_w)
{
    if (fresh) {
        e->reading_ms = t;
        e->reading_grid_w = base_w + mach_w - pv_w;
        e->reading_pv_w = pv_w;
        e->reading_load_w = base_w + mach_w;
    }
    struct bal_live live = { .now_ms = t, .reading_ms = e->reading_ms, .grid_w = e->reading_grid_w,
                             .pv_w = e->reading_pv_w, .load_w = e->reading_load_w };
    sync_subset(e);
    const struct bal_plan *plan = e->o->strategy == BAL_STRAT_PLAN && e->have_plan ? &e->plan : NULL;
    size_t n = bal_dispatch(&e->dcfg, &live, plan, e->mach, e->nm, e->ms, e->dm, e->sub, e->nsub, e->latest,
                            e->cmds, e->nm);
    for (size_t k = 0; k < n; k++)
        if (e->cmds[k].machine < e->nm)
            apply_cmd(e, &e->cmds[k], t);
}

/* ---- the books ---------------------------------------------------------------------------------- */

/* What machine m draws during a step: once its job's energy is delivered nothing (the program ends by
 * itself, the dispatcher switches it off at the next step), and in the step that delivers it only the
 * rest; so a job's energy is counted once, not rounded up to whole minutes. */
static double step_wh(const struct eng *e, size_t m)
{
    if (!e->ms[m].on)
        return 0;
    double wh = e->ms[m].power_w * STEP_MS / 3600000.0;
    if (e->mjob[m] < 0)
        return wh;
    const struct bal_replay_job *j = &e->r->jobs[e->mjob[m]];
    double rest = j->done_ms ? 0 : j->energy_wh - j->done_wh;
    return wh < rest ? wh : rest > 0 ? rest : 0;
}

/* The machines' mean power over the step. */
static double machines_w(const struct eng *e)
{
    double wh = 0;
    for (size_t m = 0; m < e->nm; m++)
        wh += step_wh(e, m);
    return wh * 3600000.0 / STEP_MS;
}

static void credit_jobs(struct eng *e, int64_t t)
{
    for (size_t m = 0; m < e->nm; m++) {
        double wh = step_wh(e, m);
        if (!e->ms[m].on)
            continue;
        e->r->runs[e->run[m]].energy_wh += wh;
        if (e->mjob[m] < 0)
            continue;
        struct bal_replay_job *j = &e->r->jobs[e->mjob[m]];
        if (j->done_ms)
            continue;
        j->done_wh += wh;
        if (j->done_wh >= j->energy_wh - BAL_DONE_EPS_WH) {
            j->done_ms = t + STEP_MS;
            j->on_time = j->done_ms <= j->deadline_ms;
        }
    }
}

/* pi, pe: the minute's prices per kWh (0 without prices). */
static void book_energy(struct bal_replay_energy *b, double pv_w, double base_w, double mach_w, double pi, double pe)
{
    const double h = STEP_MS / 3600000.0;
    double net_w = base_w + mach_w - pv_w;
    double imp_w = net_w > 0 ? net_w : 0, exp_w = net_w < 0 ? -net_w : 0;
    b->cost += (imp_w * pi - exp_w * pe) * h / 1000;
    b->pv_wh += pv_w * h;
    b->base_wh += base_w * h;
    b->machine_wh += mach_w * h;
    b->load_wh += (base_w + mach_w) * h;
    b->import_wh += imp_w * h;
    b->export_wh += exp_w * h;
    b->pv_used_wh += (pv_w - exp_w) * h;
    if (imp_w > b->peak_import_w)
        b->peak_import_w = imp_w;
}

/* A gap is a run of minutes with PV or load unknown inside the files; it counts once in the total
 * and once in each day it touches. */
static void book_gap(struct eng *e, unsigned char fl)
{
    struct bal_replay_energy *d = &e->r->days[e->day].e, *tot = &e->r->total;
    bool edge = !(fl & FL_PV) && (fl & FL_EDGE) && (fl & FL_LOAD);
    bool gap = !edge && (fl & (FL_PV | FL_LOAD)) != (FL_PV | FL_LOAD);
    if (edge) {
        d->edge_min++;
        tot->edge_min++;
    }
    if (gap) {
        if (!e->in_gap)
            tot->gaps++;
        if (!e->in_gap || e->gap_day != e->day)
            d->gaps++;
        d->gap_min++;
        tot->gap_min++;
        e->gap_day = e->day;
    }
    e->in_gap = gap;
}

static void trace(struct eng *e, int64_t t, unsigned char fl, double pv_w, double base_w, double grid_w)
{
    struct bal_replay_day *d = &e->r->days[e->day];
    if (!d->pv_w)
        return;
    size_t k = (size_t)((t - d->start_ms) / STEP_MS);
    d->pv_w[k] = (fl & FL_PV) ? (float)pv_w : NAN;
    d->base_w[k] = (fl & FL_LOAD) ? (float)base_w : NAN;
    d->grid_w[k] = (fl & (FL_PV | FL_LOAD)) == (FL_PV | FL_LOAD) ? (float)grid_w : NAN;
}

static void step(struct eng *e, int64_t t)
{
    size_t i = tl_index(e, t);
    unsigned char fl = e->tl.flags[i];
    double pv_w = (fl & FL_PV) ? e->tl.pv_w[i] : 0, base_w = (fl & FL_LOAD) ? e->tl.load_w[i] : 0;
    dispatch(e, t, (fl & (FL_PV | FL_LOAD)) == (FL_PV | FL_LOAD), pv_w, base_w, machines_w(e));
    double mach_w = machines_w(e);
    double pi = e->tl.price_imp ? e->tl.price_imp[i] : 0, pe = e->tl.price_exp ? e->tl.price_exp[i] : 0;
    book_energy(&e->r->days[e->day].e, pv_w, base_w, mach_w, pi, pe);
    book_energy(&e->r->total, pv_w, base_w, mach_w, pi, pe);
    book_gap(e, fl);
    credit_jobs(e, t);
    trace(e, t, fl, pv_w, base_w, base_w + mach_w - pv_w);
    if (fl & FL_LOAD)
        bal_loadprof_observe(e->lp, t, base_w, STEP_MS / 1000);
    if (e->observe_pv && (fl & FL_PV))
        bal_pvfc_observe(e->pvfc, &e->arr, t, pv_w, STEP_MS / 1000);
}

/* ---- the end ----------------------------------------------------------------------------------- */

/* A wrong clock (a logger that keeps daylight saving time but labels standard time) moves a day's
 * production against the sun. The check compares the centroid in time of the measured PV with that
 * of the array's clear-sky PV. Clouds on one half of a day move it too, so only sunny days are
 * checked (measured / clear-sky energy at least 60 % of the replay's 90th percentile of that ratio,
 * which needs no exact array size), and the median over many days says more than one day. Days with
 * unknown PV are not checked; nor is any day without the site's latitude/longitude. */
static double pv_shift_day(const struct eng *e, struct bal_replay_day *d)
{
    struct bal_array a = e->arr;
    if (a.kwp <= 0)
        a.kwp = 1; /* only the shape matters */
    double sm = 0, stm = 0, sc = 0, stc = 0;
    for (size_t k = 0; k < d->nmin; k += 5) {
        int64_t t = d->start_ms + (int64_t)k * STEP_MS;
        size_t i = tl_index(e, t);
        if (!(e->tl.flags[i] & FL_PV))
            return -1;
        double cs = bal_clearsky_w(&a, t + STEP_MS / 2);
        sm += e->tl.pv_w[i];
        stm += e->tl.pv_w[i] * (double)k;
        sc += cs;
        stc += cs * (double)k;
    }
    if (sm <= 0 || sc <= 0)
        return -1;
    d->pv_shift_min = stm / sm - stc / sc;
    return sm / sc;
}

static int cmp_double(const void *a, const void *b);

static void pv_shift(struct eng *e)
{
    struct bal_replay_result *r = e->r;
    if (!e->cfg->site.has_latlon || !r->ndays)
        return;
    double *q = fg_calloc(r->ndays, sizeof *q), *sorted = fg_calloc(r->ndays, sizeof *sorted), unused;
    size_t nq = 0;
    for (size_t k = 0; k < r->ndays; k++)
        if ((q[k] = pv_shift_day(e, &r->days[k])) > 0)
            sorted[nq++] = q[k];
    qsort(sorted, nq, sizeof *sorted, cmp_double);
    double q90 = nq ? sorted[(nq * 9) / 10 < nq ? (nq * 9) / 10 : nq - 1] : 0;
    for (size_t k = 0; k < r->ndays; k++) {
        if (q[k] <= 0 || q[k] < 0.6 * q90)
            continue;
        r->days[k].has_shift = true;
        sorted[r->shift_days++] = r->days[k].pv_shift_min;
        r->shift_days_off += fabs(r->days[k].pv_shift_min) >= BAL_REPLAY_SHIFT_MIN;
    }
    bal_replay_p50_max(sorted, r->shift_days, &r->shift_median_min, &unused);
    free(q);
    free(sorted);
}

static void tally_jobs(struct bal_replay_result *r)
{
    size_t k = 0;
    for (size_t g = 0; g < r->njobs; g++) {
        const struct bal_replay_job *j = &r->jobs[g];
        while (k > 0 && j->deadline_ms <= r->days[k].start_ms)
            k--;
        while (k + 1 < r->ndays && j->deadline_ms > r->days[k].end_ms)
            k++;
        struct bal_replay_energy *d = &r->days[k].e;
        unsigned miss = j->required && !j->on_time;
        d->jobs_total++;
        d->jobs_on_time += j->on_time;
        d->deadline_misses += miss;
        r->total.jobs_total++;
        r->total.jobs_on_time += j->on_time;
        r->total.deadline_misses += miss;
        r->jobs_infeasible += j->infeasible;
    }
}

static void finish(struct eng *e)
{
    struct bal_replay_result *r = e->r;
    for (size_t m = 0; m < e->nm; m++) {
        if (e->run[m] < 0)
            continue;
        r->runs[e->run[m]].off_ms = e->end_ms;
        r->runs[e->run[m]].cut = true;
    }
    tally_jobs(r);
    r->min_on_off_violations = bal_replay_check_min_on_off(e->cfg->machines, e->nm, r->runs, r->nruns);
    bal_replay_p50_max(r->plan_ms, r->nplans, &r->plan_ms_p50, &r->plan_ms_max);
    r->clock_faults = e->pv->clock_faults + e->load->clock_faults;
    pv_shift(e);
}

static void alloc_traces(struct bal_replay_result *r, unsigned ndays)
{
    for (size_t k = 0; k < r->ndays && k < ndays; k++) {
        struct bal_replay_day *d = &r->days[k];
        d->pv_w = fg_calloc(d->nmin, sizeof *d->pv_w);
        d->base_w = fg_calloc(d->nmin, sizeof *d->base_w);
        d->grid_w = fg_calloc(d->nmin, sizeof *d->grid_w);
    }
}

static int run_steps(struct eng *e, char *err, size_t errlen)
{
    warm_up(e);
    for (int64_t t = e->start_ms; t < e->end_ms; t += STEP_MS) {
        if (t >= e->r->days[e->day].end_ms) {
            e->day++;
            for (size_t m = 0; m < e->nm; m++)
                e->ms[m].starts_today = 0;
        }
        if (t == e->start_ms || t % e->slot_ms == 0) {
            int rc = replan(e, t, err, errlen);
            if (rc)
                return rc;
        }
        step(e, t);
    }
    finish(e);
    return 0;
}

int bal_replay_run(const struct bal_config *cfg, const struct bal_series *pv, const struct bal_series *load,
                   const struct bal_replay_opts *o, struct bal_replay_result **out, char *err, size_t errlen)
{
    *out = NULL;
    struct bal_replay_opts opts = *o;
    if (!(opts.pv_scale > 0))
        opts.pv_scale = 1;
    if (!(opts.load_scale > 0))
        opts.load_scale = 1;
    if (!pv->n || !load->n || (o->forecast && !o->forecast->n)) {
        snprintf(err, errlen, "empty %s series", !pv->n ? "PV" : !load->n ? "load" : "forecast");
        return -EINVAL;
    }
    if (o->forecast && (o->oracle || o->strategy != BAL_STRAT_PLAN)) {
        snprintf(err, errlen, "a forecast file is for the plan strategy without the oracle");
        return -EINVAL;
    }
    struct eng e = { .cfg = cfg, .o = &opts, .pv = pv, .load = load };
    e.r = fg_calloc(1, sizeof *e.r);
    int rc = setup(&e, err, errlen);
    if (!rc) {
        alloc_traces(e.r, opts.trace_days);
        rc = run_steps(&e, err, errlen);
    }
    teardown(&e);
    if (rc) {
        bal_replay_result_free(e.r);
        return rc < 0 ? rc : -EINVAL;
    }
    *out = e.r;
    return 0;
}

void bal_replay_result_free(struct bal_replay_result *r)
{
    if (!r)
        return;
    for (size_t k = 0; k < r->ndays; k++) {
        free(r->days[k].pv_w);
        free(r->days[k].base_w);
        free(r->days[k].grid_w);
    }
    free(r->days);
    free(r->runs);
    free(r->jobs);
    free(r->plan_ms);
    free(r);
}

unsigned bal_replay_check_min_on_off(const struct bal_machine *machines, size_t nm, const struct bal_replay_run *runs,
                                     size_t nruns)
{
    unsigned bad = 0;
    for (size_t m = 0; m < nm; m++) {
        const struct bal_replay_run *prev = NULL;
        for (size_t k = 0; k < nruns; k++) {
            const struct bal_replay_run *u = &runs[k];
            if (u->machine != m)
                continue;
            if (!u->cut && u->off_ms - u->on_ms < (int64_t)machines[m].min_on_s * 1000)
                bad++;
            if (prev && u->on_ms - prev->off_ms < (int64_t)machines[m].min_off_s * 1000)
                bad++;
            prev = u;
        }
    }
    return bad;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bal_replay_p50_max(const double *v, size_t n, double *p50, double *max)
{
    *p50 = *max = 0;
    if (!n)
        return;
    double *s = fg_malloc(n * sizeof *s);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    *p50 = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    *max = s[n - 1];
    free(s);
}

/* ---- prices ------------------------------------------------------------------------------------- */

#define PRICE_FIELD_MAX 64

struct price_reader {
    struct bal_replay_prices *p;
    size_t cap;
    const char *name;
    bool seen_first;
};

/* Field k (0-based) of line [b, e) without blanks and double quotes into out; false when missing. */
static bool price_field(const char *b, const char *e, int k, char *out)
{
    for (; k > 0; k--) {
        const char *c = memchr(b, ',', (size_t)(e - b));
        if (!c)
            return false;
        b = c + 1;
    }
    const char *c = memchr(b, ',', (size_t)(e - b));
    const char *fe = c ? c : e;
    while (b < fe && (*b == ' ' || *b == '\t'))
        b++;
    while (fe > b && (fe[-1] == ' ' || fe[-1] == '\t' || fe[-1] == '\r'))
        fe--;
    if (fe - b >= 2 && *b == '"' && fe[-1] == '"') {
        b++;
        fe--;
    }
    size_t n = (size_t)(fe - b) < PRICE_FIELD_MAX - 1 ? (size_t)(fe - b) : PRICE_FIELD_MAX - 1;
    memcpy(out, b, n);
    out[n] = '\0';
    return true;
}

static int price_value(const char *f, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(f, &end);
    if (!f[0] || end == f || *end || errno == ERANGE || !isfinite(v) || fabs(v) > BAL_REPLAY_PRICE_MAX)
        return -1;
    *out = v;
    return 0;
}

static void price_add(struct price_reader *r, int64_t t_ms, double pi, double pe)
{
    struct bal_replay_prices *p = r->p;
    if (p->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        p->t_ms = fg_realloc(p->t_ms, r->cap * sizeof *p->t_ms);
        p->import_per_kwh = fg_realloc(p->import_per_kwh, r->cap * sizeof *p->import_per_kwh);
        p->export_per_kwh = fg_realloc(p->export_per_kwh, r->cap * sizeof *p->export_per_kwh);
    }
    p->t_ms[p->n] = t_ms;
    p->import_per_kwh[p->n] = pi;
    p->export_per_kwh[p->n++] = pe;
}

/* One non-blank line: the header (a first line whose first field is no time) or a row. */
static int price_line(struct price_reader *r, const char *b, const char *e, size_t lineno, char *err, size_t errlen)
{
    char f[3][PRICE_FIELD_MAX];
    bool first = !r->seen_first;
    r->seen_first = true;
    bool has3 = price_field(b, e, 0, f[0]) && price_field(b, e, 1, f[1]) && price_field(b, e, 2, f[2]);
    int64_t t_ms;
    bool timed = fg_parse_iso8601_ms(f[0], &t_ms) == 0;
    if (first && !timed && has3)
        return 0;
    double pi, pe;
    const char *why = !has3 ? "expected TIME,IMPORT_PER_KWH,EXPORT_PER_KWH"
                    : !timed ? "time must be ISO 8601 with an offset, e.g. 2016-07-04 00:00:00-06:00"
                    : price_value(f[1], &pi) ? "import price must be a number of -1000..1000 per kWh"
                    : price_value(f[2], &pe) ? "export price must be a number of -1000..1000 per kWh"
                    : r->p->n && t_ms <= r->p->t_ms[r->p->n - 1] ? "time not after the row before"
                    : NULL;
    if (why) {
        snprintf(err, errlen, "%s:%zu: %s", r->name, lineno, why);
        return -1;
    }
    price_add(r, t_ms, pi, pe);
    return 0;
}

struct bal_replay_prices *bal_replay_prices_parse(const char *text, size_t len, const char *name, char *err,
                                                  size_t errlen)
{
    struct price_reader r = { .p = fg_calloc(1, sizeof *r.p), .name = name };
    const char *p = text, *end = text + len;
    for (size_t lineno = 1; p < end; lineno++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end, *q = p;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < e && price_line(&r, p, e, lineno, err, errlen)) {
            bal_replay_prices_free(r.p);
            return NULL;
        }
        p = nl ? nl + 1 : end;
    }
    if (!r.p->n) {
        snprintf(err, errlen, "%s: no price rows", name);
        bal_replay_prices_free(r.p);
        return NULL;
    }
    return r.p;
}

struct bal_replay_prices *bal_replay_prices_load(const char *path, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    int rc = fg_file_read(path, SIZE_MAX - 1, &buf, &len);
    if (rc) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
        return NULL;
    }
    struct bal_replay_prices *p = bal_replay_prices_parse(buf, len, path, err, errlen);
    free(buf);
    return p;
}

void bal_replay_prices_free(struct bal_replay_prices *p)
{
    if (!p)
        return;
    free(p->t_ms);
    free(p->import_per_kwh);
    free(p->export_per_kwh);
    free(p);
}

void bal_replay_prices_at(const struct bal_replay_prices *p, int64_t t_ms, double *import_per_kwh,
                          double *export_per_kwh)
{
    size_t lo = 0, hi = p->n; /* the last row with t_ms[row] <= t_ms, or row 0 */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->t_ms[mid] <= t_ms)
            lo = mid;
        else
            hi = mid;
    }
    *import_per_kwh = p->import_per_kwh[lo];
    *export_per_kwh = p->export_per_kwh[lo];
}
