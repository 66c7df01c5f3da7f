/* bal_plan_place: places one job into the planner's current plan, given every other placement: a
 * block scan (non-interruptible), the dynamic programme of bal_plan_dp (interruptible), power levels
 * for modulating machines, and surplus-following for surplus-only jobs. */
#include "bal_plan_priv.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* ---- shared small pieces ---- */

double bal_plan_g(const struct bal_plan_ctx *c, size_t s, double y_w)
{
    return c->dur_h[s] * (y_w > 0 ? y_w * c->pi[s] : y_w * c->pe[s]);
}

/* g = dur x (pe y + (pi - pe) max(y, 0)); of max(y + e, 0) with e uniform in [-w, w] the mean is y
 * above w, 0 below -w, and (y + w)^2 / 4w between. */
double bal_plan_h(const struct bal_plan_ctx *c, size_t s, double y_w)
{
    double w = c->err_w[s], pos = y_w >= w ? y_w : (y_w <= -w ? 0 : (y_w + w) * (y_w + w) / (4 * w));
    return c->dur_h[s] * (c->pe[s] * y_w + (c->pi[s] - c->pe[s]) * pos);
}

/* What running at y_w + add_w instead of y_w adds to the objective (*ecost: to its expectation). */
static double delta(const struct bal_plan_ctx *c, size_t s, double y_w, double add_w, double *ecost)
{
    *ecost = bal_plan_h(c, s, y_w + add_w) - bal_plan_h(c, s, y_w);
    return bal_plan_g(c, s, y_w + add_w) - bal_plan_g(c, s, y_w);
}

static size_t machine_of(const struct bal_plan_ctx *c, size_t j)
{
    return c->p->jobs[j].machine;
}

/* Levels: min, min + step, ... below max, and max (as the dispatcher rounds them); fixed loads have
 * one. The largest level not above x (max above it), 0 below the least. */
static double lv_down(const struct bal_plan_mach *mc, double x)
{
    if (x < mc->lmin_w - BAL_PLAN_EPS_W)
        return 0;
    if (x >= mc->lmax_w - BAL_PLAN_EPS_W)
        return mc->lmax_w;
    if (mc->step_w <= 0)
        return x > mc->lmin_w ? x : mc->lmin_w;
    return mc->lmin_w + floor((x - mc->lmin_w) / mc->step_w + 1e-9) * mc->step_w;
}

/* The smallest level not below x (the least below it, max above it). */
static double lv_up(const struct bal_plan_mach *mc, double x)
{
    if (x <= mc->lmin_w)
        return mc->lmin_w;
    if (x >= mc->lmax_w)
        return mc->lmax_w;
    if (mc->step_w <= 0)
        return x;
    double l = mc->lmin_w + ceil((x - mc->lmin_w) / mc->step_w - 1e-9) * mc->step_w;
    return l < mc->lmax_w ? l : mc->lmax_w;
}

/* Power the grid limit leaves for machine power in slot s (the others' planned power counted). */
static double headroom_w(const struct bal_plan_ctx *c, size_t s, int flags)
{
    double lim = c->p->grid_limit_w;
    if (lim <= 0 || (flags & BAL_PLAN_NO_GRID))
        return HUGE_VAL;
    return lim - c->base_w[s] - c->pinst_w[s];
}

static double surplus_w(const struct bal_plan_ctx *c, size_t s)
{
    return -(c->base_w[s] + c->pinst_w[s]);
}

/* ---- the plan itself ---- */

/* Adds (sign 1) or removes (-1) the power and energy of job j at levels lev to the slot sums. */
static void walk(struct bal_plan_ctx *c, size_t j, const double *lev, double sign)
{
    double rem = c->jx[j].need_wh;
    for (size_t s = 0; s < c->S; s++) {
        if (lev[s] <= 0)
            continue;
        double e = lev[s] * c->dur_h[s];
        if (e > rem)
            e = rem > 0 ? rem : 0;
        rem -= e;
        c->pmean_w[s] += sign * e / c->dur_h[s];
        c->pinst_w[s] += sign * lev[s];
    }
}

void bal_plan_apply(struct bal_plan_ctx *c, size_t j, const double *lev)
{
    size_t base = machine_of(c, j) * c->S;
    for (size_t s = 0; s < c->S; s++) {
        if (lev[s] > 0) {
            c->pl->power_w[base + s] = lev[s];
            c->pl->job[base + s] = (int)j;
        }
    }
    walk(c, j, lev, 1);
    c->jx[j].placed = true;
}

void bal_plan_unplace(struct bal_plan_ctx *c, size_t j, double *save)
{
    size_t base = machine_of(c, j) * c->S;
    double *lev = save ? save : c->lev3;
    for (size_t s = 0; s < c->S; s++)
        lev[s] = c->pl->job[base + s] == (int)j ? c->pl->power_w[base + s] : 0;
    walk(c, j, lev, -1);
    for (size_t s = 0; s < c->S; s++) {
        if (lev[s] > 0) {
            c->pl->power_w[base + s] = 0;
            c->pl->job[base + s] = -1;
        }
    }
    c->jx[j].placed = false;
}

int bal_plan_last(const struct bal_plan_ctx *c, size_t j)
{
    size_t base = machine_of(c, j) * c->S;
    for (size_t s = c->S; s-- > 0;)
        if (c->pl->job[base + s] == (int)j)
            return (int)s;
    return -1;
}

/* Whether machine m is on in slot s: planned for a job other than skip, or at lev (may be NULL). */
static bool on_at(const struct bal_plan_ctx *c, size_t m, size_t s, long skip, const double *lev)
{
    int o = c->pl->job[m * c->S + s];
    return (o >= 0 && o != skip) || (lev && lev[s] > 0);
}

/* Starts of machine m per day into c->starts_day (day 0 includes the starts already made), with the
 * plan's jobs but skip, plus lev; returns their sum over the horizon. */
static int count_starts(const struct bal_plan_ctx *c, size_t m, long skip, const double *lev)
{
    bool prev = c->mach[m].prev_on;
    int n = 0;
    memset(c->starts_day, 0, (size_t)c->ndays * sizeof *c->starts_day);
    c->starts_day[0] = (int)c->mach[m].starts0;
    for (size_t s = 0; s < c->S; s++) {
        bool on = on_at(c, m, s, skip, lev);
        if (on && !prev) {
            c->starts_day[c->day[s]]++;
            n++;
        }
        prev = on;
    }
    return n;
}

int bal_plan_mstarts(const struct bal_plan_ctx *c, size_t m)
{
    return count_starts(c, m, -1, NULL);
}

/* The value of job j (not in the plan) at levels lev. cnt is left 0: complete placements compare on
 * cost, starts, completion. */
static void eval(const struct bal_plan_ctx *c, size_t j, const double *lev, struct bal_plan_val *v)
{
    double rem = c->jx[j].need_wh;
    memset(v, 0, sizeof *v);
    v->last = -1;
    for (size_t s = 0; s < c->S; s++) {
        if (lev[s] <= 0)
            continue;
        double e = fmin(lev[s] * c->dur_h[s], rem > 0 ? rem : 0), y = c->base_w[s] + c->pmean_w[s], de;
        rem -= e;
        v->cost += delta(c, s, y, e / c->dur_h[s], &de);
        v->ecost += de;
        v->last = (int)s;
    }
    v->starts = count_starts(c, machine_of(c, j), (long)j, lev);
}

static double energy_wh(const struct bal_plan_ctx *c, const double *lev)
{
    double e = 0;
    for (size_t s = 0; s < c->S; s++)
        e += lev[s] > 0 ? lev[s] * c->dur_h[s] : 0;
    return e;
}

/* ---- what each slot is to the job ---- */

enum { LV_CONST, LV_SURPLUS };

static uint8_t slot_kind(const struct bal_plan_ctx *c, size_t j, size_t s, int flags, int mode, double *lv)
{
    size_t m = machine_of(c, j);
    const struct bal_plan_mach *mc = &c->mach[m];
    int o = c->pl->job[m * c->S + s];
    if (o >= 0 && (size_t)o != j)
        return BAL_PLAN_OTHER;
    double room = headroom_w(c, s, flags), sur = surplus_w(c, s);
    if (s < c->jx[j].nfix) {
        if (mode == LV_SURPLUS)
            *lv = fmax(mc->lmin_w, lv_down(mc, fmin(sur, room)));
        return BAL_PLAN_FIXJ;
    }
    if (s < c->jx[j].lo || s >= c->jx[j].hi || s < mc->first_ok || !c->allowed[m * c->S + s])
        return BAL_PLAN_FORBID;
    if (mode == LV_SURPLUS) {
        *lv = lv_down(mc, fmin(sur, room));
        return *lv > 0 ? BAL_PLAN_CAND : BAL_PLAN_FORBID;
    }
    if (*lv > room + BAL_PLAN_EPS_W)
        return BAL_PLAN_FORBID;
    if (c->p->jobs[j].surplus_only && !c->p->jobs[j].required && *lv > sur + BAL_PLAN_EPS_W)
        return BAL_PLAN_FORBID;
    return BAL_PLAN_CAND;
}

/* Fills c->kind, c->lvl, c->cost and c->ecost for job j at level level_w (LV_CONST) or at the
 * surplus. */
static void kinds(struct bal_plan_ctx *c, size_t j, int flags, int mode, double level_w)
{
    for (size_t s = 0; s < c->S; s++) {
        double lv = level_w;
        uint8_t k = slot_kind(c, j, s, flags, mode, &lv);
        c->kind[s] = k;
        c->lvl[s] = k == BAL_PLAN_OTHER || k == BAL_PLAN_FORBID ? 0 : lv;
        c->cost[s] = c->ecost[s] = 0;
        if (c->lvl[s] > 0 && !(flags & BAL_PLAN_ASAP))
            c->cost[s] = delta(c, s, c->base_w[s] + c->pmean_w[s], c->lvl[s], &c->ecost[s]);
    }
}

/* Slots job j needs at level_w; *cnt0 is what slot 0 counts (0 when its part of a slot adds a slot). */
static int needed_slots(const struct bal_plan_ctx *c, size_t j, double level_w, int *cnt0)
{
    double need = c->jx[j].need_wh, full = level_w * c->slot_h;
    int k1 = (int)ceil(need / full - 1e-9), k0 = (int)ceil((need - level_w * c->dur_h[0]) / full - 1e-9);
    if (k1 < 1)
        k1 = 1;
    if (k0 < 0)
        k0 = 0;
    *cnt0 = 1 + k0 == k1 ? 1 : 0;
    return k1;
}

/* ---- whether a placement keeps the machine's rules ---- */

/* Min on (a job shorter than it in one run), min off and starts per day for machine m with job j
 * at lev; contiguity when the machine is not interruptible. Runs through slot 0 of a machine already
 * on, and runs reaching the horizon's end, are not held to min on. */
static bool runs_ok(const struct bal_plan_ctx *c, size_t j, const double *lev)
{
    size_t m = machine_of(c, j), S = c->S;
    const struct bal_plan_mach *mc = &c->mach[m];
    int mine = 0, runs_mine = 0, R;
    for (size_t s = 0; s < S; s++)
        mine += lev[s] > 0;
    R = mc->run_min < mine ? mc->run_min : mine;
    long prev_end = mc->prev_on ? -1 : -2;
    bool prev_mine = false;
    for (size_t a = 0; a < S;) {
        if (!on_at(c, m, a, (long)j, lev)) {
            a++;
            continue;
        }
        size_t b = a;
        bool has = false;
        while (b < S && on_at(c, m, b, (long)j, lev))
            has |= lev[b++] > 0;
        runs_mine += has;
        if (has && !(a == 0 && mc->prev_on) && b != S && (int)(b - a) < R)
            return false;
        if ((has || prev_mine) && prev_end >= -1 && !(a == 0 && mc->prev_on) &&
            (long)a - prev_end - 1 < mc->gap_min)
            return false;
        prev_end = (long)b - 1;
        prev_mine = has;
        a = b;
    }
    if (!c->p->machines[m].interruptible && runs_mine > 1)
        return false;
    return true;
}

/* Whether the jobs in run [a, b) of machine m, shorter than min on R, lie wholly in it and are each
 * shorter than R (so they may run in one piece). */
static bool short_run_ok(const struct bal_plan_ctx *c, size_t m, size_t a, size_t b, int R)
{
    const int *job = c->pl->job + m * c->S;
    for (size_t s = a; s < b; s++) {
        int n = 0;
        for (size_t t = 0; t < c->S; t++) {
            if (job[t] != job[s])
                continue;
            if (t < a || t >= b)
                return false;
            n++;
        }
        if (n >= R)
            return false;
    }
    return true;
}

bool bal_plan_machine_ok(const struct bal_plan_ctx *c, size_t m)
{
    const int *job = c->pl->job + m * c->S;
    for (size_t a = 0; a < c->S;) {
        size_t b = a;
        while (b < c->S && job[b] >= 0)
            b++;
        if (b > a && b < c->S && !(a == 0 && c->mach[m].prev_on) && (int)(b - a) < c->mach[m].run_min &&
            !short_run_ok(c, m, a, b, c->mach[m].run_min))
            return false;
        a = b > a ? b : a + 1;
    }
    return true;
}

static bool starts_ok(struct bal_plan_ctx *c, size_t j, const double *lev)
{
    size_t m = machine_of(c, j);
    unsigned max = c->mach[m].max_starts;
    if (max == 0)
        return true;
    int with[BAL_MAX_SLOTS + 1];
    count_starts(c, m, (long)j, lev);
    memcpy(with, c->starts_day, (size_t)c->ndays * sizeof *with);
    count_starts(c, m, (long)j, NULL);
    for (int d = 0; d < c->ndays; d++)
        if (with[d] > (int)max && with[d] > c->starts_day[d])
            return false;
    return true;
}

static bool valid(struct bal_plan_ctx *c, size_t j, const double *lev, int flags)
{
    return runs_ok(c, j, lev) && ((flags & BAL_PLAN_NO_STARTS) || starts_ok(c, j, lev));
}

/* ---- non-interruptible: one block ---- */

/* Nearest slot at or before s (c->on_prev) and at or after s (c->on_next) where another job runs
 * machine m; -1 stands for the run before the horizon (machine on now), -2 / S for none. */
static void neighbours(struct bal_plan_ctx *c, size_t m)
{
    int last = c->mach[m].prev_on ? -1 : -2, next = (int)c->S;
    for (size_t s = 0; s < c->S; s++) {
        if (c->kind[s] == BAL_PLAN_OTHER)
            last = (int)s;
        c->on_prev[s] = last;
    }
    for (size_t s = c->S; s-- > 0;) {
        if (c->kind[s] == BAL_PLAN_OTHER)
            next = (int)s;
        c->on_next[s] = next;
    }
}

/* Whether block [a, b) keeps min off and starts per day against the other runs; *dstarts: the
 * starts it adds (1 alone, 0 when it extends a run, -1 when it also joins the next). */
static bool block_fits(const struct bal_plan_ctx *c, size_t m, size_t a, size_t b, int flags, int *dstarts)
{
    const struct bal_plan_mach *mc = &c->mach[m];
    int pl = a > 0 ? c->on_prev[a - 1] : (mc->prev_on ? -1 : -2);
    int qr = b < c->S ? c->on_next[b] : (int)c->S;
    bool merge_l = pl == (int)a - 1, merge_r = b < c->S && qr == (int)b;
    if (!merge_l && pl >= -1 && (int)a - pl - 1 < mc->gap_min)
        return false;
    if (!merge_r && qr < (int)c->S && qr - (int)b < mc->gap_min)
        return false;
    *dstarts = (merge_l ? 0 : 1) - (merge_r ? 1 : 0);
    if (!merge_l && mc->max_starts > 0 && !(flags & BAL_PLAN_NO_STARTS)) {
        int n = c->starts_day[c->day[a]] + 1 - (merge_r && c->day[b] == c->day[a] ? 1 : 0);
        if (n > (int)mc->max_starts)
            return false;
    }
    return true;
}

/* The end of the shortest block from a whose slots (CAND or FIXJ) hold the job's energy, or 0;
 * v->cost and v->ecost: its objective increase, the last slot counted for the energy it still has
 * to add. */
static size_t block_end(const struct bal_plan_ctx *c, size_t j, size_t a, struct bal_plan_val *v)
{
    double e = 0, need = c->jx[j].need_wh;
    size_t b = a;
    while (b < c->S && (c->kind[b] == BAL_PLAN_CAND || c->kind[b] == BAL_PLAN_FIXJ) &&
           e < need - BAL_PLAN_EPS_WH) {
        double eb = c->lvl[b] * c->dur_h[b], de = 0;
        if (e + eb > need) {
            double part = c->cost[b] == 0 && c->ecost[b] == 0 ? 0 :
                delta(c, b, c->base_w[b] + c->pmean_w[b], (need - e) / c->dur_h[b], &de);
            v->cost = c->pre[b] - c->pre[a] + part;
            v->ecost = c->pre_ecost[b] - c->pre_ecost[a] + de;
        } else {
            v->cost = c->pre[b + 1] - c->pre[a];
            v->ecost = c->pre_ecost[b + 1] - c->pre_ecost[a];
        }
        e += eb;
        b++;
    }
    return e >= need - BAL_PLAN_EPS_WH ? b : 0;
}

/* Best block for job j at the levels of c->lvl into lev. Returns 0 or -ENOENT. */
static int block(struct bal_plan_ctx *c, size_t j, int flags, double *lev, struct bal_plan_val *best)
{
    size_t m = machine_of(c, j), ba = 0, bb = 0;
    bool found = false;
    int base = count_starts(c, m, (long)j, NULL);
    neighbours(c, m);
    c->pre[0] = c->pre_ecost[0] = 0;
    for (size_t s = 0; s < c->S; s++) {
        c->pre[s + 1] = c->pre[s] + c->cost[s];
        c->pre_ecost[s + 1] = c->pre_ecost[s] + c->ecost[s];
    }
    for (size_t a = 0; a < c->S; a++) {
        size_t b;
        int ds;
        struct bal_plan_val v = { 0 };
        if ((c->jx[j].nfix > 0 && a > 0) || (c->kind[a] != BAL_PLAN_CAND && c->kind[a] != BAL_PLAN_FIXJ))
            continue;
        if ((b = block_end(c, j, a, &v)) == 0 || !block_fits(c, m, a, b, flags, &ds))
            continue;
        v.starts = base + ds;
        v.last = (int)b - 1;
        if (!found || bal_plan_better(&v, best, flags & BAL_PLAN_ASAP)) {
            *best = v;
            ba = a;
            bb = b;
            found = true;
        }
    }
    memset(lev, 0, c->S * sizeof *lev);
    for (size_t s = ba; found && s < bb; s++)
        lev[s] = c->lvl[s];
    return found ? 0 : -ENOENT;
}

/* ---- interruptible: the dynamic programme ---- */

/* The machine's state just before slot s0 (c->kind filled): on (for how long), or off (for how
 * long), and the starts of that day. A run from before the horizon counts as long enough. */
static void prefix_state(const struct bal_plan_ctx *c, size_t m, struct bal_plan_dpin *in)
{
    const struct bal_plan_mach *mc = &c->mach[m];
    const int LONG = 1 << 20;
    int on = mc->prev_on ? LONG : 0, off = on ? 0 : LONG, d = (int)mc->starts0;
    if (in->s0 == 0 && (c->kind[0] == BAL_PLAN_OTHER || c->kind[0] == BAL_PLAN_FIXJ))
        on = LONG;
    for (size_t s = 0; s < in->s0; s++) {
        bool now_on = c->kind[s] == BAL_PLAN_OTHER;
        if (s > 0 && c->day[s] != c->day[s - 1])
            d = 0;
        d += now_on && !on;
        off = now_on ? 0 : (on ? 1 : (off < LONG ? off + 1 : off));
        on = now_on ? (on < LONG ? on + 1 : on) : 0;
    }
    in->on0 = on;
    in->off0 = off;
    in->d0 = d;
}

/* The slots the programme must cover: from the job's first usable slot to its last, then on to the
 * next run of another job (min off) and that day's last start of another job (starts per day).
 * False when the job has no usable slot. */
static bool dp_window(const struct bal_plan_ctx *c, size_t m, struct bal_plan_dpin *in)
{
    size_t S = c->S, first = S, end = 0, s1;
    for (size_t s = 0; s < S; s++) {
        if (c->kind[s] == BAL_PLAN_CAND || c->kind[s] == BAL_PLAN_FIXJ) {
            first = first == S ? s : first;
            end = s + 1;
        }
    }
    if (first == S)
        return false;
    s1 = end + 1;
    for (size_t s = end; s < S; s++)
        if (c->kind[s] == BAL_PLAN_OTHER) {
            while (s < S && c->kind[s] == BAL_PLAN_OTHER)
                s++;
            s1 = s + 1 > s1 ? s + 1 : s1;  /* through the end of that run: min on of a joined run */
            break;
        }
    for (size_t s = end; in->max_starts > 0 && s < S && c->day[s] == c->day[end - 1]; s++)
        if (c->kind[s] == BAL_PLAN_OTHER)
            s1 = s + 1 > s1 ? s + 1 : s1;
    in->s0 = first;
    in->s1 = s1 < S ? s1 : S;
    prefix_state(c, m, in);
    return true;
}

/* The job's last slot at level_w runs only for what the K - 1 before it leave (all taken as whole
 * slots; a short slot 0 among them is not counted). The machine stops when the job is done, so the
 * last run holds min on only with 1 + ceil((min on - that time) / slot) slots: more than K when the
 * rest of the job is shorter than min on, which only a run going on from before now (a running
 * job), or one of another job, can hold. 0 when the last slot is whole or min on is 0. */
static int last_run_slots(const struct bal_plan_ctx *c, size_t j, double level_w, int K)
{
    double on_h = c->p->machines[machine_of(c, j)].min_on_s / 3600.0;
    double t_h = c->jx[j].need_wh / level_w - (K - 1) * c->slot_h;
    if (on_h <= 0 || t_h >= c->slot_h - 1e-9)
        return 0;
    return 1 + (int)ceil((on_h - t_h) / c->slot_h - 1e-9);
}

/* K 0: as many slots as possible (surplus-only); else the slots that level_w needs. The last run's
 * min on in real time (last_run_slots) is dropped when no schedule keeps it (a job shorter than
 * min on then runs in one piece); a modulating machine's levels are raised after the programme,
 * which moves its last slot's time, so it is not held to it. */
static int dp(struct bal_plan_ctx *c, size_t j, int flags, double level_w, bool partial, double *lev)
{
    size_t m = machine_of(c, j);
    const struct bal_plan_mach *mc = &c->mach[m];
    struct bal_plan_val v;
    int cnt0 = 1, K = needed_slots(c, j, level_w, &cnt0);
    struct bal_plan_dpin in = {
        .kind = c->kind, .lvl = c->lvl, .cost = c->cost, .ecost = c->ecost, .day = c->day, .nslots = c->S,
        .K = partial ? 0 : K, .r_last = partial || mc->modulating ? 0 : last_run_slots(c, j, level_w, K),
        .cnt0 = partial ? 1 : cnt0,
        .run_min = mc->run_min < K ? mc->run_min : K, .gap_min = mc->gap_min,
        .max_starts = (flags & BAL_PLAN_NO_STARTS) ? 0 : (int)mc->max_starts,
        .asap = (flags & BAL_PLAN_ASAP) != 0,
    };
    memset(lev, 0, c->S * sizeof *lev);
    if (!dp_window(c, m, &in))
        return -ENOENT;
    int r = bal_plan_dp(&in, lev, &v);
    if (r == -ENOENT && in.r_last > in.run_min) {
        in.r_last = 0;
        r = bal_plan_dp(&in, lev, &v);
    }
    if (r == -E2BIG && !partial)
        r = block(c, j, flags, lev, &v);
    return r;
}

static int place_fixed_level(struct bal_plan_ctx *c, size_t j, int flags, double *lev)
{
    size_t m = machine_of(c, j);
    struct bal_plan_val v;
    kinds(c, j, flags, LV_CONST, c->mach[m].lmax_w);
    if (c->p->machines[m].interruptible)
        return dp(c, j, flags, c->mach[m].lmax_w, false, lev);
    return block(c, j, flags, lev, &v);
}

/* ---- modulating machines: levels ---- */

/* The next level of slot s above cur worth a look: the surplus (rounded to a level), one step over
 * it, the most the grid limit allows. 0 if none. */
static double next_level(const struct bal_plan_ctx *c, const struct bal_plan_mach *mc, size_t s, double cur,
                         int flags)
{
    double cap = lv_down(mc, headroom_w(c, s, flags)), sur = surplus_w(c, s), t;
    if (cap <= 0)
        return 0;
    if (cur <= 0)
        t = fmax(mc->lmin_w, lv_down(mc, fmin(sur, cap)));
    else if (cur < sur - BAL_PLAN_EPS_W) {
        t = lv_down(mc, fmin(sur, cap));
        if (t <= cur + BAL_PLAN_EPS_W)
            t = mc->step_w > 0 ? lv_up(mc, cur + 1e-3) : cap;
    } else
        t = cap;
    t = fmin(t, cap);
    return t > cur + BAL_PLAN_EPS_W ? t : 0;
}

/* Slot s's next chunk for greedy into c->nt (the level, 0 if none), c->ncpw (objective per Wh) and
 * c->necpw (expected objective per Wh). */
static void chunk(struct bal_plan_ctx *c, const struct bal_plan_mach *mc, size_t s, const double *lev, int flags,
                  bool may_open)
{
    c->nt[s] = 0;
    if ((lev[s] <= 0 && !may_open) || (c->kind[s] != BAL_PLAN_CAND && c->kind[s] != BAL_PLAN_FIXJ))
        return;
    double t = next_level(c, mc, s, lev[s], flags), y = c->base_w[s] + c->pmean_w[s];
    if (t <= 0)
        return;
    c->nt[s] = t;
    c->ncpw[s] = c->necpw[s] = 0;
    if (!(flags & BAL_PLAN_ASAP)) {
        double wh = (t - lev[s]) * c->dur_h[s];
        c->ncpw[s] = delta(c, s, y + lev[s], t - lev[s], &c->necpw[s]) / wh;
        c->necpw[s] /= wh;
    }
}

/* Whether slot s's chunk (open: it switches the slot on) beats best's: cheaper per Wh, then cheaper
 * per Wh in expectation, then raising before opening; on a full tie the earlier slot stays. */
static bool chunk_better(const struct bal_plan_ctx *c, size_t s, long best, bool open, bool bopen)
{
    if (best < 0 || c->ncpw[s] < c->ncpw[best] - 1e-12)
        return true;
    if (c->ncpw[s] > c->ncpw[best] + 1e-12)
        return false;
    if (c->necpw[s] < c->necpw[best] - 1e-12)
        return true;
    if (c->necpw[s] > c->necpw[best] + 1e-12)
        return false;
    return bopen && !open;
}

/* Raises levels chunk by chunk, the best first (chunk_better), until the job's energy is in lev.
 * may_open: also switch on slots that are off. Only the chunk taken changes, so the others are
 * computed once. */
static int greedy(struct bal_plan_ctx *c, size_t j, int flags, double *lev, bool may_open)
{
    const struct bal_plan_mach *mc = &c->mach[machine_of(c, j)];
    double e = energy_wh(c, lev), need = c->jx[j].need_wh;
    size_t lo = c->S, hi = 0;
    for (size_t s = 0; s < c->S; s++) {
        chunk(c, mc, s, lev, flags, may_open);
        if (c->nt[s] > 0) {
            lo = s < lo ? s : lo;
            hi = s + 1;
        }
    }
    while (e < need - BAL_PLAN_EPS_WH) {
        long best = -1;
        bool bopen = true;
        for (size_t s = lo; s < hi; s++) {
            bool open = lev[s] <= 0;
            if (c->nt[s] <= 0)
                continue;
            if (chunk_better(c, s, best, open, bopen)) {
                best = (long)s;
                bopen = open;
            }
        }
        if (best < 0)
            return -ENOENT;
        e += (c->nt[best] - lev[best]) * c->dur_h[best];
        lev[best] = c->nt[best];
        chunk(c, mc, (size_t)best, lev, flags, may_open);
    }
    return 0;
}

/* Lowers one level (the slot whose top Wh cost most, then most in expectation, then the latest) or
 * drops one run-end slot to shed excess energy; returns the Wh shed, 0 when nothing could be. */
static double shed_one(struct bal_plan_ctx *c, size_t j, double *lev, double excess)
{
    const struct bal_plan_mach *mc = &c->mach[machine_of(c, j)];
    long best = -1;
    double bcpw = 0, becpw = 0, bnew = 0;
    for (size_t s = 0; s < c->S; s++) {
        if (lev[s] <= 0)
            continue;
        double nl = lv_up(mc, lev[s] - fmin(excess / c->dur_h[s], lev[s] - mc->lmin_w));
        bool end = s == 0 || s + 1 == c->S || lev[s - 1] <= 0 || lev[s + 1] <= 0;
        if (nl >= lev[s] - BAL_PLAN_EPS_W && end && s >= c->jx[j].nfix && lev[s] * c->dur_h[s] <= excess + BAL_PLAN_EPS_WH)
            nl = 0;
        if (nl >= lev[s] - BAL_PLAN_EPS_W)
            continue;
        double ecpw, wh = (lev[s] - nl) * c->dur_h[s];
        double cpw = delta(c, s, c->base_w[s] + c->pmean_w[s] + nl, lev[s] - nl, &ecpw) / wh;
        ecpw /= wh;
        if (best < 0 || cpw > bcpw + 1e-12 ||
            (cpw >= bcpw - 1e-12 && (ecpw > becpw + 1e-12 || (ecpw >= becpw - 1e-12 && (size_t)best < s)))) {
            best = (long)s;
            bcpw = cpw;
            becpw = ecpw;
            bnew = nl;
        }
    }
    if (best < 0)
        return 0;
    double shed = (lev[best] - bnew) * c->dur_h[best];
    lev[best] = bnew;
    return shed;
}

static void trim(struct bal_plan_ctx *c, size_t j, double *lev)
{
    double excess = energy_wh(c, lev) - c->jx[j].need_wh;
    for (int guard = 0; excess > BAL_PLAN_EPS_WH && guard < 4 * (int)c->S; guard++) {
        double shed = shed_one(c, j, lev, excess);
        if (shed <= 0)
            break;
        excess -= shed;
    }
}

/* Whether cand holds the job's energy, and its last slot in time still adds to it. */
static bool complete(const struct bal_plan_ctx *c, size_t j, const double *cand)
{
    double excess = energy_wh(c, cand) - c->jx[j].need_wh;
    size_t s = c->S;
    while (s > 0 && cand[s - 1] <= 0)
        s--;
    return s > 0 && excess >= -BAL_PLAN_EPS_WH && excess < cand[s - 1] * c->dur_h[s - 1] - BAL_PLAN_EPS_WH;
}

/* Keeps candidate cand in lev when it is valid, complete and better than what lev holds. */
static void consider(struct bal_plan_ctx *c, size_t j, int flags, const double *cand, double *lev,
                     struct bal_plan_val *best, bool *found)
{
    struct bal_plan_val v;
    if (!complete(c, j, cand) || !valid(c, j, cand, flags))
        return;
    eval(c, j, cand, &v);
    if (!*found || bal_plan_better(&v, best, flags & BAL_PLAN_ASAP)) {
        *best = v;
        memcpy(lev, cand, c->S * sizeof *lev);
        *found = true;
    }
}

/* A modulating machine: the best of levels raised greedily from nothing (interruptible), and of the
 * slots the programme (or block) picks at full and at least power, with levels then raised to the
 * job's energy where it costs least. */
static int place_mod(struct bal_plan_ctx *c, size_t j, int flags, double *lev)
{
    size_t m = machine_of(c, j);
    const struct bal_plan_mach *mc = &c->mach[m];
    bool inter = c->p->machines[m].interruptible, found = false;
    struct bal_plan_val best, v;
    double *cand = c->lev2, levels[2] = { mc->lmax_w, mc->lmin_w };
    if (inter) {
        kinds(c, j, flags, LV_CONST, mc->lmin_w);
        memset(cand, 0, c->S * sizeof *cand);
        for (size_t s = 0; s < c->jx[j].nfix; s++)
            cand[s] = fmax(mc->lmin_w, next_level(c, mc, s, 0, flags));
        if (greedy(c, j, flags, cand, true) == 0) {
            trim(c, j, cand);
            consider(c, j, flags, cand, lev, &best, &found);
        }
    }
    for (int i = 0; i < 2; i++) {
        kinds(c, j, flags, LV_CONST, levels[i]);
        if ((inter ? dp(c, j, flags, levels[i], false, cand) : block(c, j, flags, cand, &v)) != 0)
            continue;
        for (size_t s = 0; s < c->S; s++)
            cand[s] = cand[s] > 0 ? mc->lmin_w : 0;
        if (greedy(c, j, flags, cand, false) == 0) {
            trim(c, j, cand);
            consider(c, j, flags, cand, lev, &best, &found);
        }
    }
    return found ? 0 : -ENOENT;
}

/* ---- surplus-only jobs ---- */

/* Keeps the job's first slots, in time order, until its energy is reached (a modulating machine's
 * last one at the least level that completes it). */
static void cut_to_need(struct bal_plan_ctx *c, size_t j, double *lev)
{
    const struct bal_plan_mach *mc = &c->mach[machine_of(c, j)];
    double acc = 0, need = c->jx[j].need_wh;
    for (size_t s = 0; s < c->S; s++) {
        if (lev[s] <= 0)
            continue;
        if (acc >= need - BAL_PLAN_EPS_WH) {
            lev[s] = 0;
            continue;
        }
        if (mc->modulating && acc + lev[s] * c->dur_h[s] > need)
            lev[s] = fmin(lev[s], lv_up(mc, (need - acc) / c->dur_h[s]));
        acc += lev[s] * c->dur_h[s];
    }
}

/* Drops the job's last run; false when it had none. */
static bool drop_last_run(const struct bal_plan_ctx *c, double *lev)
{
    size_t s = c->S;
    while (s > 0 && lev[s - 1] <= 0)
        s--;
    if (s == 0)
        return false;
    while (s > 0 && lev[s - 1] > 0)
        lev[--s] = 0;
    return true;
}

static int place_surplus(struct bal_plan_ctx *c, size_t j, int flags, double *lev)
{
    size_t m = machine_of(c, j);
    const struct bal_plan_mach *mc = &c->mach[m];
    struct bal_plan_val v;
    kinds(c, j, flags, mc->modulating ? LV_SURPLUS : LV_CONST, mc->lmax_w);
    if (!c->p->machines[m].interruptible) {
        if (block(c, j, flags, lev, &v) != 0)
            return -ENOENT;
        cut_to_need(c, j, lev);
        return 0;
    }
    if (dp(c, j, flags, mc->lmax_w, true, lev) != 0)
        return -ENOENT;
    cut_to_need(c, j, lev);
    while (!valid(c, j, lev, flags))
        if (!drop_last_run(c, lev))
            return -ENOENT;
    return energy_wh(c, lev) > 0 ? 0 : -ENOENT;
}

int bal_plan_place(struct bal_plan_ctx *c, size_t j, int flags)
{
    const struct bal_job *jb = &c->p->jobs[j];
    double *lev = c->lev;
    int r;
    memset(lev, 0, c->S * sizeof *lev);
    if (jb->surplus_only && !jb->required)
        r = place_surplus(c, j, flags, lev);
    else if (c->mach[jb->machine].modulating)
        r = place_mod(c, j, flags, lev);
    else
        r = place_fixed_level(c, j, flags, lev);
    if (r == 0)
        bal_plan_apply(c, j, lev);
    return r;
}
