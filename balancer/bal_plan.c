/* bal_plan: the planner (pure: problem -> plan; the clock is p->now_ms, local time comes from TZ).
 *
 * Method: greedy placement, then local search. Jobs already running on non-interruptible machines
 * are fixed blocks from now. Required jobs (then optional jobs that may use grid power) are placed
 * one at a time, earliest deadline first (higher priority first on a tie), each at its best place
 * given everything placed before (bal_plan_place.c): a non-interruptible job scans every start slot
 * for its block; an interruptible one is solved exactly by a dynamic programme over the slots of
 * its window, whose states carry the slots used so far, how long the machine has been on or off
 * (min on/off in slots, joined runs of other jobs included) and the day's starts (bal_plan_dp.c); a
 * modulating machine takes the best of power levels raised greedily where a Wh costs least and of
 * programme (or block) placements at full and at least power whose levels are then raised alike.
 * A job's cost is what it adds to the objective: grid import in Wh (with prices: import cost less
 * export revenue), ties broken as below.
 * If a required job does not fit, all required jobs are placed again earliest-completion-first
 * (which always succeeds on a machine whose jobs' windows rise together with their deadlines), and
 * that is kept if more fit. Local search then takes each job whose surroundings changed out and
 * puts it back at its best place, and takes pairs of competing jobs out and puts them back in
 * either order (bounded passes and pairs), keeping a change only when the objective improves and
 * the other jobs of the moved jobs' machines still hold min on (they may have shared a run); required
 * jobs still out get one more try. Surplus-only jobs come last, highest priority first,
 * on the surplus left over.
 *
 * Ties. When the forecast shows no surplus (a weekday whose forecast load exceeds its PV), every
 * placement has the same forecast import, and "earlier completion" alone would run each job at its
 * earliest time, away from the PV that a sunnier hour or a lighter load would bring. So equal costs
 * (equal up to rounding) are broken first by the cost's expectation under an error model of the
 * forecast (bal_plan_h): in each slot, load - pv is taken to lie uniformly within +-w of the
 * forecast, w = hypot(0.75 x pv, 0.36 x load) (BAL_PLAN_PV_ERR, BAL_PLAN_LOAD_ERR: uniform errors
 * with the spread of the replay's forecasts over the workshop benchmark's 104 days, plans made at
 * 07:00 for 07:00-19:00: sd 0.44 of actual / forecast PV where the forecast was over 1 kW, 0.21 of
 * actual / forecast load; a uniform error of half width a has sd a / sqrt(3); the two are taken as
 * independent, so their variances add). The mean of max(y, 0) is y above w, 0 below -w and
 * (y + w)^2 / 4w between, so a slot's expected import lies below its forecast import where it may
 * yet turn to surplus (much PV, a small margin), and machines piled into one slot use that chance
 * up: the tie-break spreads jobs over the hours with the most forecast PV. At night w < load and
 * ties stay ties. The expectation is only a second key, compared when the first is equal, so it
 * never trades away forecast import (or cost), and it only orders placements that keep every
 * constraint. Then fewer starts, then earlier completion. The programme, the block scan, the level
 * greedy and the local search all compare (cost, expected cost, starts, completion) in that order.
 *
 * Rules in slots: min on/off round up to whole slots; a job shorter than its machine's min on runs
 * in one piece instead; a run that reaches the end of the horizon is not held to min on; a running
 * non-interruptible job's block ignores windows and the grid limit (it cannot be stopped). The last
 * slot of a job runs only for what the job still needs, so the last run of an interruptible
 * fixed-power job must hold min on in real time, that slot counted by its time (a run going on from
 * before now, or into another job's run, is exempt; dropped when no schedule keeps it): else the
 * dispatcher would have to keep the machine on past the job's energy. */
#include "bal_plan.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bal_model.h"
#include "bal_plan_priv.h"
#include "fg_mem.h"

#define MS_PER_H 3600000.0
#define SEARCH_PASSES 4
#define PAIR_BUDGET 60     /* placements the pair moves may spend */

/* ---- checking the problem ---- */

__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int check_jobs(const struct bal_problem *p, char *err, size_t errlen)
{
    for (size_t j = 0; j < p->njobs; j++) {
        const struct bal_job *jb = &p->jobs[j];
        if (jb->machine >= p->nmachines)
            return bad(err, errlen, "jobs[%zu] (%s): machine %zu does not exist (%zu machines)", j, jb->id,
                       jb->machine, p->nmachines);
        if (!(p->machines[jb->machine].power_w > 0))
            return bad(err, errlen, "machines[%zu] (%s): power_w must be > 0 for its jobs", jb->machine,
                       p->machines[jb->machine].id);
        if (!(jb->energy_wh >= 0) || !(jb->done_wh >= 0))
            return bad(err, errlen, "jobs[%zu] (%s): energy_wh and done_wh must be >= 0", j, jb->id);
    }
    return 0;
}

static int check_problem(const struct bal_problem *p, char *err, size_t errlen)
{
    if (p->nslots == 0 || p->nslots > BAL_MAX_SLOTS)
        return bad(err, errlen, "nslots must be 1..%d, got %zu", BAL_MAX_SLOTS, p->nslots);
    if (p->slot_min < 5 || p->slot_min > 60)
        return bad(err, errlen, "slot_min must be 5..60, got %d", p->slot_min);
    if (!p->pv_w || !p->load_w)
        return bad(err, errlen, "pv_w and load_w are required");
    if (p->nmachines > BAL_MAX_MACHINES || (p->nmachines && !p->machines) || (p->njobs && !p->jobs))
        return bad(err, errlen, "machines (at most %d) and jobs must be given", BAL_MAX_MACHINES);
    if (p->now_ms >= p->start_ms + (int64_t)p->slot_min * 60000)
        return bad(err, errlen, "now_ms must lie in the first slot");
    return check_jobs(p, err, errlen);
}

/* ---- the context ---- */

/* Start of slot s, from now_ms for slot 0. */
static int64_t eff_start(const struct bal_problem *p, int64_t slot_ms, size_t s)
{
    int64_t t = p->start_ms + (int64_t)s * slot_ms;
    return s == 0 && p->now_ms > t ? p->now_ms : t;
}

static void setup_slots(struct bal_plan_ctx *c)
{
    const struct bal_problem *p = c->p;
    struct tm prev = { 0 };
    for (size_t s = 0; s < c->S; s++) {
        int64_t t = p->start_ms + (int64_t)s * c->slot_ms;
        c->dur_h[s] = (double)(t + c->slot_ms - eff_start(p, c->slot_ms, s)) / MS_PER_H;
        c->base_w[s] = p->load_w[s] - p->pv_w[s];
        c->pi[s] = p->price_import ? p->price_import[s] / 1000 : 1;
        c->pe[s] = p->price_import && p->price_export ? p->price_export[s] / 1000 : 0;
        c->err_w[s] = hypot(BAL_PLAN_PV_ERR * fmax(p->pv_w[s], 0), BAL_PLAN_LOAD_ERR * fmax(p->load_w[s], 0));
        time_t tt = (time_t)(t / 1000);
        struct tm tm;
        localtime_r(&tt, &tm);
        c->day[s] = s == 0 ? 0 : c->day[s - 1] + (tm.tm_yday != prev.tm_yday || tm.tm_year != prev.tm_year);
        prev = tm;
    }
    c->ndays = c->day[c->S - 1] + 1;
}

static bool same_windows(const struct bal_machine *a, const struct bal_machine *b)
{
    if (a->nwindows != b->nwindows || a->nwindows > BAL_MAX_WINDOWS)
        return false;
    for (size_t w = 0; w < a->nwindows; w++)
        if (a->windows[w].days_mask != b->windows[w].days_mask || a->windows[w].from_min != b->windows[w].from_min ||
            a->windows[w].to_min != b->windows[w].to_min)
            return false;
    return true;
}

/* Windows per machine, computed once per distinct set of windows (bal_machine_allowed is the rule;
 * it costs two localtime calls a slot). */
static void setup_allowed(struct bal_plan_ctx *c)
{
    const struct bal_problem *p = c->p;
    for (size_t m = 0; m < p->nmachines; m++) {
        const struct bal_machine *mm = &p->machines[m];
        size_t same = m;
        for (size_t o = 0; o < m && same == m; o++)
            if (same_windows(&p->machines[o], mm))
                same = o;
        for (size_t s = 0; s < c->S; s++)
            c->allowed[m * c->S + s] = same != m ? c->allowed[same * c->S + s] :
                bal_machine_allowed(mm, p->start_ms + (int64_t)s * c->slot_ms, p->slot_min);
    }
}

static int slots_ceil(unsigned sec, int64_t slot_ms)
{
    return (int)(((int64_t)sec * 1000 + slot_ms - 1) / slot_ms);
}

static void setup_machine(struct bal_plan_ctx *c, size_t m)
{
    const struct bal_machine *mm = &c->p->machines[m];
    const struct bal_mstate *ms = c->p->mstate ? &c->p->mstate[m] : NULL;
    struct bal_plan_mach *mc = &c->mach[m];
    mc->modulating = mm->min_power_w > 0 && mm->min_power_w < mm->power_w;
    mc->lmax_w = mm->power_w;
    mc->lmin_w = mc->modulating ? mm->min_power_w : mm->power_w;
    mc->step_w = mc->modulating && mm->step_w > 0 ? mm->step_w : 0;
    mc->run_min = slots_ceil(mm->min_on_s, c->slot_ms);
    mc->gap_min = slots_ceil(mm->min_off_s, c->slot_ms);
    mc->max_starts = mm->max_starts_per_day;
    mc->prev_on = ms && ms->on;
    mc->starts0 = ms ? ms->starts_today : 0;
    mc->first_ok = 0;
    if (ms && !ms->on && ms->since_ms != INT64_MIN && mm->min_off_s > 0) {
        int64_t ok_ms = ms->since_ms + (int64_t)mm->min_off_s * 1000;
        while (mc->first_ok < c->S && eff_start(c->p, c->slot_ms, mc->first_ok) < ok_ms)
            mc->first_ok++;
    }
}

/* Slots a running interruptible job keeps on because its machine's min on is not over yet. */
static size_t forced_slots(const struct bal_plan_ctx *c, size_t j)
{
    const struct bal_job *jb = &c->p->jobs[j];
    const struct bal_machine *mm = &c->p->machines[jb->machine];
    const struct bal_mstate *ms = c->p->mstate ? &c->p->mstate[jb->machine] : NULL;
    if (!jb->running || !ms || !ms->on || ms->since_ms == INT64_MIN || mm->min_on_s == 0)
        return 0;
    int64_t until_ms = ms->since_ms + (int64_t)mm->min_on_s * 1000;
    double e = 0;
    size_t n = 0;
    while (n < c->S && c->p->start_ms + (int64_t)n * c->slot_ms < until_ms &&
           c->allowed[jb->machine * c->S + n] && e < c->jx[j].need_wh - BAL_PLAN_EPS_WH)
        e += mm->power_w * c->dur_h[n++];
    return n;
}

static void setup_job(struct bal_plan_ctx *c, size_t j)
{
    const struct bal_problem *p = c->p;
    const struct bal_job *jb = &p->jobs[j];
    struct bal_plan_jobx *x = &c->jx[j];
    int64_t end_ms = p->start_ms + (int64_t)c->S * c->slot_ms;
    x->need_wh = jb->energy_wh - jb->done_wh;
    x->lo = 0;
    while (!jb->running && x->lo < c->S && eff_start(p, c->slot_ms, x->lo) < jb->earliest_ms)
        x->lo++;
    int64_t k = jb->deadline_ms <= p->start_ms ? 0 : (jb->deadline_ms - p->start_ms) / c->slot_ms;
    x->hi = k > (int64_t)c->S ? c->S : (size_t)k;
    x->beyond = jb->deadline_ms > end_ms;
    x->fixed = jb->running && !p->machines[jb->machine].interruptible && x->need_wh > BAL_PLAN_EPS_WH;
    x->nfix = p->machines[jb->machine].interruptible ? forced_slots(c, j) : 0;
}

static void ctx_free(struct bal_plan_ctx *c)
{
    double *d[] = { c->dur_h, c->base_w, c->pinst_w, c->pmean_w, c->pi, c->pe, c->err_w, c->lvl, c->cost,
                    c->ecost, c->lev, c->lev2, c->lev3, c->pre, c->pre_ecost, c->nt, c->ncpw, c->necpw };
    for (size_t i = 0; i < sizeof d / sizeof *d; i++)
        free(d[i]);
    free(c->day);
    free(c->allowed);
    free(c->mach);
    free(c->jx);
    free(c->kind);
    free(c->on_prev);
    free(c->on_next);
    free(c->starts_day);
}

static void ctx_init(struct bal_plan_ctx *c, const struct bal_problem *p, struct bal_plan *pl)
{
    size_t S = p->nslots;
    memset(c, 0, sizeof *c);
    c->p = p;
    c->pl = pl;
    c->S = S;
    c->slot_ms = (int64_t)p->slot_min * 60000;
    c->slot_h = p->slot_min / 60.0;
    double **d[] = { &c->dur_h, &c->base_w, &c->pinst_w, &c->pmean_w, &c->pi, &c->pe, &c->err_w, &c->lvl,
                     &c->cost, &c->ecost, &c->lev, &c->lev2, &c->lev3, &c->nt, &c->ncpw, &c->necpw };
    for (size_t i = 0; i < sizeof d / sizeof *d; i++)
        *d[i] = fg_calloc(S, sizeof(double));
    c->pre = fg_calloc(S + 1, sizeof(double));
    c->pre_ecost = fg_calloc(S + 1, sizeof(double));
    c->day = fg_calloc(S, sizeof *c->day);
    c->allowed = fg_calloc(p->nmachines * S + 1, 1);
    c->mach = fg_calloc(p->nmachines + 1, sizeof *c->mach);
    c->jx = fg_calloc(p->njobs + 1, sizeof *c->jx);
    c->kind = fg_calloc(S, 1);
    c->on_prev = fg_calloc(S, sizeof *c->on_prev);
    c->on_next = fg_calloc(S, sizeof *c->on_next);
    setup_slots(c);
    c->starts_day = fg_calloc((size_t)c->ndays, sizeof *c->starts_day);
    setup_allowed(c);
    for (size_t m = 0; m < p->nmachines; m++)
        setup_machine(c, m);
    for (size_t j = 0; j < p->njobs; j++)
        setup_job(c, j);
}

/* ---- the search ---- */

static double total_cost(const struct bal_plan_ctx *c)
{
    double t = 0;
    for (size_t s = 0; s < c->S; s++)
        t += bal_plan_g(c, s, c->base_w[s] + c->pmean_w[s]);
    return t;
}

static double total_ecost(const struct bal_plan_ctx *c)
{
    double t = 0;
    for (size_t s = 0; s < c->S; s++)
        t += bal_plan_h(c, s, c->base_w[s] + c->pmean_w[s]);
    return t;
}

/* A running non-interruptible job keeps running from now until its energy is in: slots 0.. at full
 * power, whatever the windows or the grid limit say. */
static void place_fixed(struct bal_plan_ctx *c, size_t j)
{
    const struct bal_machine *mm = &c->p->machines[c->p->jobs[j].machine];
    double e = 0;
    memset(c->lev, 0, c->S * sizeof *c->lev);
    for (size_t s = 0; s < c->S && e < c->jx[j].need_wh - BAL_PLAN_EPS_WH; s++) {
        c->lev[s] = mm->power_w;
        e += mm->power_w * c->dur_h[s];
    }
    bal_plan_apply(c, j, c->lev);
}

enum job_class { CL_SKIP, CL_REQUIRED, CL_OPTIONAL, CL_SURPLUS };

static enum job_class class_of(const struct bal_plan_ctx *c, size_t j)
{
    const struct bal_job *jb = &c->p->jobs[j];
    if (c->jx[j].need_wh <= BAL_PLAN_EPS_WH || c->jx[j].fixed)
        return CL_SKIP;
    if (jb->required)
        return CL_REQUIRED;
    return jb->surplus_only ? CL_SURPLUS : CL_OPTIONAL;
}

static const struct bal_plan_ctx *sort_ctx; /* qsort has no user pointer; the planner is single-threaded per call */

static int by_deadline(const void *a, const void *b)
{
    const struct bal_job *x = &sort_ctx->p->jobs[*(const size_t *)a], *y = &sort_ctx->p->jobs[*(const size_t *)b];
    int px = sort_ctx->p->machines[x->machine].priority, py = sort_ctx->p->machines[y->machine].priority;
    if (x->deadline_ms != y->deadline_ms)
        return x->deadline_ms < y->deadline_ms ? -1 : 1;
    if (px != py)
        return px > py ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static int by_priority(const void *a, const void *b)
{
    const struct bal_job *x = &sort_ctx->p->jobs[*(const size_t *)a], *y = &sort_ctx->p->jobs[*(const size_t *)b];
    int px = sort_ctx->p->machines[x->machine].priority, py = sort_ctx->p->machines[y->machine].priority;
    if (px != py)
        return px > py ? -1 : 1;
    return by_deadline(a, b);
}

/* The jobs of class cl into list, in the order they are placed; returns how many. */
static size_t list_of(const struct bal_plan_ctx *c, enum job_class cl, size_t *list)
{
    size_t n = 0;
    for (size_t j = 0; j < c->p->njobs; j++)
        if (class_of(c, j) == cl)
            list[n++] = j;
    sort_ctx = c;
    qsort(list, n, sizeof *list, cl == CL_SURPLUS ? by_priority : by_deadline);
    return n;
}

static size_t place_list(struct bal_plan_ctx *c, const size_t *list, size_t n, int flags)
{
    size_t placed = 0;
    for (size_t i = 0; i < n; i++)
        placed += bal_plan_place(c, list[i], flags) == 0;
    return placed;
}

/* When a required job did not fit: all of them again, earliest completion first, kept if more fit. */
static void rescue(struct bal_plan_ctx *c, const size_t *list, size_t n, size_t placed)
{
    double *save = fg_calloc(n * c->S + 1, sizeof *save);
    for (size_t i = 0; i < n; i++)
        if (c->jx[list[i]].placed)
            bal_plan_unplace(c, list[i], save + i * c->S);
    if (place_list(c, list, n, BAL_PLAN_ASAP) <= placed) {
        for (size_t i = 0; i < n; i++)
            if (c->jx[list[i]].placed)
                bal_plan_unplace(c, list[i], NULL);
        for (size_t i = 0; i < n; i++)
            for (size_t s = 0; s < c->S; s++)
                if (save[i * c->S + s] > 0) {
                    bal_plan_apply(c, list[i], save + i * c->S);
                    break;
                }
    }
    free(save);
}

/* The search's memory: which jobs may still gain from being moved (their windows saw a change). */
struct ls {
    const size_t *list;
    size_t n;
    bool *dirty;
    double *save;                  /* 2 x S */
    int budget;                    /* placements the pair moves may still spend */
};

/* The value of the plan as far as moving jobs a and b (b may be a) can change it: the objective,
 * the starts of their machines, their completions. */
static void plan_value(const struct bal_plan_ctx *c, size_t a, size_t b, struct bal_plan_val *v)
{
    size_t ma = c->p->jobs[a].machine, mb = c->p->jobs[b].machine;
    v->cost = total_cost(c);
    v->ecost = total_ecost(c);
    v->cnt = 0;
    v->starts = bal_plan_mstarts(c, ma) + (mb != ma ? bal_plan_mstarts(c, mb) : 0);
    v->last = bal_plan_last(c, a) + (b != a ? bal_plan_last(c, b) : 0);
}

/* Slots [*from, *to] that job j occupies, widened by them. */
static void widen(const struct bal_plan_ctx *c, size_t j, int *from, int *to)
{
    size_t m = c->p->jobs[j].machine;
    for (size_t s = 0; s < c->S; s++)
        if (c->pl->job[m * c->S + s] == (int)j) {
            *from = (int)s < *from ? (int)s : *from;
            *to = (int)s > *to ? (int)s : *to;
        }
}

/* After job j moved within slots [from, to]: jobs on its machine, or whose window meets those slots,
 * may find a better place now. */
static void mark_dirty(const struct bal_plan_ctx *c, struct ls *ls, size_t j, int from, int to)
{
    for (size_t i = 0; i < ls->n; i++) {
        const struct bal_plan_jobx *x = &c->jx[ls->list[i]];
        if (c->p->jobs[ls->list[i]].machine == c->p->jobs[j].machine ||
            ((int)x->lo <= to && (int)x->hi > from))
            ls->dirty[i] = true;
    }
}

/* Takes job j out and puts it back at its best place; keeps that when the plan got better and the
 * other jobs of its machine still hold min on (one may have shared a run with j). */
static bool reinsert(struct bal_plan_ctx *c, struct ls *ls, size_t j)
{
    struct bal_plan_val before, after;
    int from = (int)c->S, to = -1;
    widen(c, j, &from, &to);
    plan_value(c, j, j, &before);
    bal_plan_unplace(c, j, ls->save);
    if (bal_plan_place(c, j, 0) == 0) {
        plan_value(c, j, j, &after);
        if (bal_plan_better(&after, &before, false) && bal_plan_machine_ok(c, c->p->jobs[j].machine)) {
            widen(c, j, &from, &to);
            mark_dirty(c, ls, j, from, to);
            return true;
        }
        bal_plan_unplace(c, j, NULL);
    }
    bal_plan_apply(c, j, ls->save);
    return false;
}

/* Whether jobs a and b compete: each runs somewhere the other could (same machine or not). */
static bool overlap(const struct bal_plan_ctx *c, size_t a, size_t b)
{
    int fa = (int)c->S, la = -1, fb = (int)c->S, lb = -1;
    widen(c, a, &fa, &la);
    widen(c, b, &fb, &lb);
    return fa <= la && fb <= lb && fa < (int)c->jx[b].hi && la >= (int)c->jx[b].lo && fb < (int)c->jx[a].hi &&
           lb >= (int)c->jx[a].lo;
}

/* Jobs a and b that compete: both out, then placed again, first first (each may now take a place
 * the other held); kept as reinsert keeps a move. */
static bool swap_pair(struct bal_plan_ctx *c, struct ls *ls, size_t first, size_t second)
{
    struct bal_plan_val before, after;
    double *sa = ls->save, *sb = ls->save + c->S;
    int from = (int)c->S, to = -1;
    widen(c, first, &from, &to);
    widen(c, second, &from, &to);
    plan_value(c, first, second, &before);
    bal_plan_unplace(c, first, sa);
    bal_plan_unplace(c, second, sb);
    ls->budget -= 2;
    if (bal_plan_place(c, first, 0) == 0) {
        if (bal_plan_place(c, second, 0) == 0) {
            plan_value(c, first, second, &after);
            if (bal_plan_better(&after, &before, false) && bal_plan_machine_ok(c, c->p->jobs[first].machine) &&
                bal_plan_machine_ok(c, c->p->jobs[second].machine)) {
                widen(c, first, &from, &to);
                widen(c, second, &from, &to);
                mark_dirty(c, ls, first, from, to);
                mark_dirty(c, ls, second, from, to);
                return true;
            }
            bal_plan_unplace(c, second, NULL);
        }
        bal_plan_unplace(c, first, NULL);
    }
    bal_plan_apply(c, first, sa);
    bal_plan_apply(c, second, sb);
    return false;
}

static bool pair_pass(struct bal_plan_ctx *c, struct ls *ls)
{
    bool better = false;
    for (size_t i = 0; i < ls->n; i++)
        for (size_t k = i + 1; k < ls->n && ls->budget > 0; k++) {
            size_t a = ls->list[i], b = ls->list[k];
            if (c->jx[a].placed && c->jx[b].placed && overlap(c, a, b))
                better |= swap_pair(c, ls, b, a) || swap_pair(c, ls, a, b);
        }
    return better;
}

/* Local search: re-insert jobs whose surroundings changed until none gains, then pairs in the other
 * order; bounded by SEARCH_PASSES and the pair budget. */
static void improve(struct bal_plan_ctx *c, const size_t *list, size_t n)
{
    struct ls ls = { list, n, fg_calloc(n + 1, sizeof(bool)), fg_calloc(2 * c->S, sizeof(double)), PAIR_BUDGET };
    for (size_t i = 0; i < n; i++)
        ls.dirty[i] = true;
    for (int pass = 0; pass < SEARCH_PASSES; pass++) {
        bool better = false;
        for (size_t i = 0; i < n; i++) {
            if (!ls.dirty[i] || !c->jx[list[i]].placed)
                continue;
            ls.dirty[i] = false;
            better |= reinsert(c, &ls, list[i]);
        }
        if (!better && !pair_pass(c, &ls))
            break;
    }
    free(ls.dirty);
    free(ls.save);
}

static void search(struct bal_plan_ctx *c)
{
    size_t *list = fg_calloc(c->p->njobs + 1, sizeof *list), n;
    for (size_t j = 0; j < c->p->njobs; j++) {
        if (!c->jx[j].fixed)
            continue;
        if (c->pl->job[c->p->jobs[j].machine * c->S] < 0)
            place_fixed(c, j);
        else
            c->jx[j].fixed = false; /* two running jobs on one machine: the second is planned as usual */
    }
    n = list_of(c, CL_REQUIRED, list);
    size_t placed = place_list(c, list, n, 0);
    if (placed < n)
        rescue(c, list, n, placed);
    improve(c, list, n);
    for (size_t i = 0; i < n; i++) /* the search may have made room */
        if (!c->jx[list[i]].placed && bal_plan_place(c, list[i], 0) != 0)
            bal_plan_place(c, list[i], BAL_PLAN_ASAP);
    n = list_of(c, CL_OPTIONAL, list);
    place_list(c, list, n, 0);
    improve(c, list, n);
    n = list_of(c, CL_SURPLUS, list);
    place_list(c, list, n, 0);
    free(list);
}

/* ---- statuses and reasons ---- */

/* Minutes of slots in [lo, hi) that the machine's windows allow: all of them, or (contiguous) the
 * longest run of them. */
static double window_min(const struct bal_plan_ctx *c, size_t j, bool contiguous)
{
    const struct bal_plan_jobx *x = &c->jx[j];
    size_t m = c->p->jobs[j].machine;
    double sum = 0, run = 0, best = 0;
    for (size_t s = x->lo; s < x->hi; s++) {
        if (c->allowed[m * c->S + s]) {
            sum += c->dur_h[s] * 60;
            run += c->dur_h[s] * 60;
            best = run > best ? run : best;
        } else
            run = 0;
    }
    return contiguous ? best : sum;
}

/* Why job j does not fit; returns the status it gets. */
static enum bal_job_status diagnose(struct bal_plan_ctx *c, size_t j, char *why, size_t len)
{
    const struct bal_job *jb = &c->p->jobs[j];
    const struct bal_plan_jobx *x = &c->jx[j];
    int need_min = (int)ceil(x->need_wh / c->p->machines[jb->machine].power_w * 60 - 1e-9);
    double span_min = 0;
    for (size_t s = x->lo; s < x->hi; s++)
        span_min += c->dur_h[s] * 60;
    int left_min = (int)floor(span_min + 1e-9);
    if (jb->deadline_ms <= c->p->now_ms)
        return snprintf(why, len, "deadline passed"), BAL_JOB_INFEASIBLE;
    if (x->lo >= c->S)
        return snprintf(why, len, "starts after the horizon"), BAL_JOB_UNPLANNED;
    if (x->beyond)
        return snprintf(why, len, "deadline beyond the horizon"), BAL_JOB_UNPLANNED;
    if (need_min > left_min)
        return snprintf(why, len, "deadline too close: needs %d min, %d left", need_min, left_min),
               BAL_JOB_INFEASIBLE;
    if (window_min(c, j, !c->p->machines[jb->machine].interruptible) + 1e-9 < need_min)
        return snprintf(why, len, "window too short: needs %d min in its windows before the deadline", need_min),
               BAL_JOB_INFEASIBLE;
    if (c->mach[jb->machine].max_starts > 0 && bal_plan_place(c, j, BAL_PLAN_ASAP | BAL_PLAN_NO_STARTS) == 0) {
        bal_plan_unplace(c, j, NULL);
        return snprintf(why, len, "max starts reached"), BAL_JOB_INFEASIBLE;
    }
    if (c->p->grid_limit_w > 0 && bal_plan_place(c, j, BAL_PLAN_ASAP | BAL_PLAN_NO_GRID) == 0) {
        bal_plan_unplace(c, j, NULL);
        return snprintf(why, len, "grid limit: no block of %d min fits under %.0f W", need_min,
                        c->p->grid_limit_w), BAL_JOB_INFEASIBLE;
    }
    return snprintf(why, len, "machine busy: no free time of %d min before the deadline", need_min),
           BAL_JOB_INFEASIBLE;
}

static double planned_wh(const struct bal_plan_ctx *c, size_t j)
{
    size_t m = c->p->jobs[j].machine;
    double e = 0;
    for (size_t s = 0; s < c->S; s++)
        if (c->pl->job[m * c->S + s] == (int)j)
            e += c->pl->power_w[m * c->S + s] * c->dur_h[s];
    return e < c->jx[j].need_wh ? e : c->jx[j].need_wh;
}

static void span_of(const struct bal_plan_ctx *c, size_t j, struct bal_job_plan *jp)
{
    size_t m = c->p->jobs[j].machine;
    int first = -1, last = bal_plan_last(c, j);
    for (size_t s = 0; s < c->S && first < 0; s++)
        if (c->pl->job[m * c->S + s] == (int)j)
            first = (int)s;
    jp->first_ms = first < 0 ? 0 : c->p->start_ms + first * c->slot_ms;
    jp->end_ms = last < 0 ? 0 : c->p->start_ms + (last + 1) * c->slot_ms;
}

static void status_of(struct bal_plan_ctx *c, size_t j, struct bal_job_plan *jp)
{
    const struct bal_job *jb = &c->p->jobs[j];
    enum job_class cl = class_of(c, j);
    jp->reason[0] = 0;
    if (c->jx[j].need_wh <= BAL_PLAN_EPS_WH) {
        jp->status = BAL_JOB_DONE;
    } else if (c->jx[j].placed) {
        jp->status = BAL_JOB_PLANNED;
        double got = planned_wh(c, j);
        if (c->jx[j].fixed)
            snprintf(jp->reason, sizeof jp->reason, "running");
        else if (cl == CL_SURPLUS && got < c->jx[j].need_wh - BAL_PLAN_EPS_WH)
            snprintf(jp->reason, sizeof jp->reason, "partial: surplus covers %.0f of %.0f Wh", got, c->jx[j].need_wh);
    } else if (cl == CL_SURPLUS) {
        jp->status = BAL_JOB_UNPLANNED;
        snprintf(jp->reason, sizeof jp->reason, "%s",
                 jb->deadline_ms <= c->p->now_ms ? "deadline passed" : "no surplus before the deadline");
    } else {
        jp->status = diagnose(c, j, jp->reason, sizeof jp->reason);
        if (cl == CL_OPTIONAL)
            jp->status = BAL_JOB_UNPLANNED;
    }
    span_of(c, j, jp);
}

/* ---- API ---- */

int bal_plan_make(const struct bal_problem *p, struct bal_plan *out, char *err, size_t errlen)
{
    struct bal_plan_ctx c;
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (!p)
        return bad(err, errlen, "no problem given");
    int r = check_problem(p, err, errlen);
    if (r)
        return r;
    out->start_ms = p->start_ms;
    out->slot_min = p->slot_min;
    out->nslots = p->nslots;
    out->nmachines = p->nmachines;
    out->njobs = p->njobs;
    out->power_w = fg_calloc(p->nmachines * p->nslots + 1, sizeof *out->power_w);
    out->job = fg_malloc((p->nmachines * p->nslots + 1) * sizeof *out->job);
    for (size_t i = 0; i < p->nmachines * p->nslots; i++)
        out->job[i] = -1;
    out->jobs = fg_calloc(p->njobs + 1, sizeof *out->jobs);
    ctx_init(&c, p, out);
    search(&c);
    for (size_t j = 0; j < p->njobs; j++)
        status_of(&c, j, &out->jobs[j]);
    out->cost = total_cost(&c);
    ctx_free(&c);
    bal_plan_score(p, out, &out->import_wh, &out->export_wh, &out->starts);
    return 0;
}

void bal_plan_free(struct bal_plan *pl)
{
    if (!pl)
        return;
    free(pl->power_w);
    free(pl->job);
    free(pl->jobs);
    memset(pl, 0, sizeof *pl);
}

/* Mean power of machine m's plan per slot into mean_w (added), its starts returned. */
static unsigned score_machine(const struct bal_problem *p, const struct bal_plan *pl, size_t m, double *rem_wh,
                              double *mean_w)
{
    int64_t slot_ms = (int64_t)p->slot_min * 60000;
    bool prev = p->mstate && p->mstate[m].on;
    unsigned starts = 0;
    for (size_t s = 0; s < pl->nslots; s++) {
        double pw = pl->power_w[m * pl->nslots + s];
        int j = pl->job[m * pl->nslots + s];
        bool on = pw > 0;
        starts += on && !prev;
        prev = on;
        if (!on)
            continue;
        int64_t t = p->start_ms + (int64_t)s * slot_ms;
        double dur_h = (double)(t + slot_ms - eff_start(p, slot_ms, s)) / MS_PER_H, e = pw * dur_h;
        if (j >= 0 && (size_t)j < p->njobs) {
            e = fmin(e, rem_wh[j] > 0 ? rem_wh[j] : 0);
            rem_wh[j] -= e;
        }
        mean_w[s] += e / dur_h;
    }
    return starts;
}

void bal_plan_score(const struct bal_problem *p, const struct bal_plan *pl, double *import_wh, double *export_wh,
                    unsigned *starts)
{
    double imp = 0, exp = 0, *mean = fg_calloc(pl->nslots + 1, sizeof *mean);
    double *rem = fg_calloc(p->njobs + 1, sizeof *rem);
    unsigned n = 0;
    int64_t slot_ms = (int64_t)p->slot_min * 60000;
    for (size_t j = 0; j < p->njobs; j++)
        rem[j] = p->jobs[j].energy_wh - p->jobs[j].done_wh;
    for (size_t m = 0; m < pl->nmachines && m < p->nmachines; m++)
        n += score_machine(p, pl, m, rem, mean);
    for (size_t s = 0; s < pl->nslots && s < p->nslots; s++) {
        int64_t t = p->start_ms + (int64_t)s * slot_ms;
        double dur_h = (double)(t + slot_ms - eff_start(p, slot_ms, s)) / MS_PER_H;
        double y = p->load_w[s] - p->pv_w[s] + mean[s];
        imp += y > 0 ? y * dur_h : 0;
        exp += y < 0 ? -y * dur_h : 0;
    }
    free(mean);
    free(rem);
    if (import_wh)
        *import_wh = imp;
    if (export_wh)
        *export_wh = exp;
    if (starts)
        *starts = n;
}

int64_t bal_latest_start_ms(const struct bal_problem *p, size_t job)
{
    if (!p || job >= p->njobs || p->jobs[job].machine >= p->nmachines || p->slot_min < 5 || p->slot_min > 60)
        return INT64_MIN;
    const struct bal_job *jb = &p->jobs[job];
    const struct bal_machine *mm = &p->machines[jb->machine];
    int64_t slot_ms = (int64_t)p->slot_min * 60000;
    double need = jb->energy_wh - jb->done_wh, acc = 0;
    if (need <= BAL_PLAN_EPS_WH)
        return jb->deadline_ms;
    if (jb->deadline_ms <= p->now_ms || !(mm->power_w > 0))
        return INT64_MIN;
    for (int64_t s = (jb->deadline_ms - p->start_ms) / slot_ms - 1; s >= 0; s--) {
        int64_t t = p->start_ms + s * slot_ms, from = s == 0 && p->now_ms > t ? p->now_ms : t;
        if (from < jb->earliest_ms && !jb->running)
            break;
        if (!bal_machine_allowed(mm, t, p->slot_min)) {
            if (!mm->interruptible)
                acc = 0;
            continue;
        }
        acc += mm->power_w * (double)(t + slot_ms - from) / MS_PER_H;
        if (acc >= need - BAL_PLAN_EPS_WH)
            return t;
    }
    return INT64_MIN;
}
