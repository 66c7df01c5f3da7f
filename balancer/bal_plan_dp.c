/* bal_plan_dp: the planner's dynamic programme for one interruptible job: in which slots it runs so
 * that its objective value is least, under min on / min off (in slots), starts per local day, and
 * merging with the runs of other jobs on the same machine (their slots are on, not the job's). */
#include "bal_plan_priv.h"

#include <errno.h>
#include <stdlib.h>

#include "fg_mem.h"

/* Slots x states above which the caller places a block instead: the table of predecessors costs 4
 * bytes a cell (16 MB here), and the time grows alike. Real jobs need a few hundred states. */
#define DP_MAX_CELLS 1000000u

/* A state after a slot: n slots used (0 when K is 0), phase ph, starts made today dd (0 without a
 * limit). Phases, run and pause lengths capped at NJ, R and G: [0, NJ) on for ph + 1 slots with no
 * slot of the job in this run (another job's run: its business; NJ is Rmin, or 0 when no other
 * job's run is near); [NJ, NJ + R) on, the job in the run (min on, Rmin slots, applies; R may be
 * larger, to tell whether the job's last run holds r_last); then off for ph - NJ - R + 1 slots. The
 * moves between phases do not depend on n or the day, so they are tables. */
struct dp {
    const struct bal_plan_dpin *in;
    int R, Rmin, G, NJ, NPH, D, NN;
    size_t nst;
    struct bal_plan_val *prev, *cur;
    int32_t *par;                  /* [(s - s0) * nst + state]: the state before slot s */
    int *seen, *rem;               /* per slot from s0: see bands() */
    int *off_to, *mine_to, *other_to; /* next phase, -1 where the rules forbid the move */
    bool *starts;                  /* a switch-on from this phase is a start */
};

static size_t st_index(const struct dp *d, int n, int ph, int dd)
{
    return ((size_t)n * (size_t)d->NPH + (size_t)ph) * (size_t)d->D + (size_t)dd;
}

static inline void relax(struct dp *d, size_t s, size_t to, const struct bal_plan_val *v, size_t from)
{
    struct bal_plan_val *c = &d->cur[to];
    if (c->cnt < 0 || bal_plan_better(v, c, d->in->asap)) {
        *c = *v;
        d->par[(s - d->in->s0) * d->nst + to] = (int32_t)from;
    }
}

static void tables(struct dp *d)
{
    int R = d->R, G = d->G, NJ = d->NJ;
    for (int ph = 0; ph < d->NPH; ph++) {
        bool on = ph < NJ + R, had = ph >= NJ;
        int r = on ? (had ? ph - NJ : ph) + 1 : 0, g = on ? 0 : ph - NJ - R + 1;
        d->starts[ph] = !on;
        /* off: a run of the job must have lasted min on */
        d->off_to[ph] = on ? (had && r < d->Rmin ? -1 : NJ + R) : NJ + R + (g + 1 < G ? g + 1 : G) - 1;
        if (!on) {
            bool ok = g >= d->in->gap_min;
            d->mine_to[ph] = ok ? NJ : -1;
            d->other_to[ph] = ok ? (NJ > 0 ? 0 : -1) : -1;
        } else {
            int nr = r < R ? r : R - 1;
            d->mine_to[ph] = NJ + nr;
            d->other_to[ph] = had ? NJ + nr : (NJ > 0 ? (r < NJ ? r : NJ - 1) : -1);
        }
    }
}

/* The moves from one live state of the previous row through slot s. */
static inline void moves(struct dp *d, size_t s, uint8_t k, size_t from, int n, int ph, int dd)
{
    const struct bal_plan_dpin *in = d->in;
    if (k == BAL_PLAN_FORBID || k == BAL_PLAN_CAND) {
        int to = d->off_to[ph];
        if (to >= 0)
            relax(d, s, st_index(d, n, to, dd), &d->prev[from], from);
    }
    if (k == BAL_PLAN_FORBID)
        return;
    bool mine = k != BAL_PLAN_OTHER;
    int c = mine ? (s == 0 ? in->cnt0 : 1) : 0, to = mine ? d->mine_to[ph] : d->other_to[ph];
    if (to < 0 || (in->K > 0 && n + c > in->K))
        return;
    if (c > 0 && n + c == in->K && to - d->NJ + 1 < in->r_last && s + 1 < in->nslots &&
        in->kind[s + 1] != BAL_PLAN_OTHER)
        return; /* the job ends here, in too short a run that no other job's run continues */
    struct bal_plan_val v = d->prev[from];
    if (d->starts[ph]) {
        if (in->max_starts > 0 && dd + 1 > in->max_starts)
            return;
        dd += in->max_starts > 0;
        v.starts++;
    }
    if (mine) {
        v.cost += in->cost[s];
        v.ecost += in->ecost[s];
        v.cnt += c;
        v.last = (int)s;
    }
    relax(d, s, st_index(d, in->K > 0 ? n + c : 0, to, dd), &v, from);
}

/* Clears the states of the next row that step may write and the row after reads: n in [lo, hi]. */
static void clear_band(struct dp *d, int lo, int hi)
{
    size_t from = st_index(d, lo, 0, 0), to = st_index(d, hi + 1, 0, 0);
    for (size_t i = from; i < to && i < d->nst; i++)
        d->cur[i].cnt = -1;
}

/* One slot: from every live state of the previous row (n in the band that can still reach K). */
static void step(struct dp *d, size_t s)
{
    const struct bal_plan_dpin *in = d->in;
    bool newday = s > 0 && in->day[s] != in->day[s - 1];
    uint8_t k = in->kind[s];
    size_t i = s - in->s0;
    int nlo = in->K > 0 && in->K - d->rem[i] > 0 ? in->K - d->rem[i] : 0, nhi = d->seen[i];
    int next_lo = in->K > 0 && in->K - d->rem[i + 1] > 0 ? in->K - d->rem[i + 1] : 0;
    if (in->K == 0)
        nlo = nhi = next_lo = 0;
    clear_band(d, next_lo, d->seen[i + 1] > nhi ? d->seen[i + 1] : nhi);
    for (int n = nlo; n <= nhi; n++)
        for (int ph = 0; ph < d->NPH; ph++)
            for (int dd0 = 0; dd0 < d->D; dd0++) {
                size_t st = st_index(d, n, ph, dd0);
                if (d->prev[st].cnt < 0)
                    continue;
                moves(d, s, k, st, n, ph, newday ? 0 : dd0);
            }
    struct bal_plan_val *t = d->prev;
    d->prev = d->cur;
    d->cur = t;
}

/* seen[i]: the job's slots before s0 + i (at most K); rem[i]: its slots from s0 + i on. */
static void bands(struct dp *d)
{
    const struct bal_plan_dpin *in = d->in;
    size_t n = in->s1 - in->s0;
    d->seen[0] = 0;
    for (size_t i = 0; i < n; i++) {
        int mine = in->kind[in->s0 + i] == BAL_PLAN_CAND || in->kind[in->s0 + i] == BAL_PLAN_FIXJ;
        d->seen[i + 1] = d->seen[i] + mine < d->NN - 1 ? d->seen[i] + mine : d->NN - 1;
    }
    d->rem[n] = 0;
    for (size_t i = n; i-- > 0;)
        d->rem[i] = d->rem[i + 1] + (in->kind[in->s0 + i] == BAL_PLAN_CAND || in->kind[in->s0 + i] == BAL_PLAN_FIXJ);
}

static void init(struct dp *d)
{
    const struct bal_plan_dpin *in = d->in;
    int dd = in->max_starts > 0 ? (in->d0 < in->max_starts ? in->d0 : in->max_starts) : 0;
    int g = in->off0 < 1 ? 1 : (in->off0 < d->G ? in->off0 : d->G);
    int r = in->on0 < 1 ? 1 : (in->on0 < d->NJ ? in->on0 : d->NJ);
    for (size_t i = 0; i < d->nst; i++)
        d->prev[i].cnt = d->cur[i].cnt = -1;
    struct bal_plan_val *v = &d->prev[st_index(d, 0, in->on0 > 0 ? (d->NJ > 0 ? r - 1 : d->NJ + d->R - 1) :
                                                 d->NJ + d->R + g - 1, dd)];
    v->cost = 0;
    v->ecost = 0;
    v->cnt = 0;
    v->starts = 0;
    v->last = -1;
}

/* The best final state (all K slots used; partial: at least one), or -1. */
static long pick(const struct dp *d)
{
    long best = -1;
    for (size_t st = 0; st < d->nst; st++) {
        const struct bal_plan_val *v = &d->prev[st];
        int n = (int)(st / ((size_t)d->D * (size_t)d->NPH));
        if (v->cnt < 0 || (d->in->K > 0 ? n != d->in->K : v->cnt == 0))
            continue;
        if (best < 0 || bal_plan_better(v, &d->prev[best], d->in->asap))
            best = (long)st;
    }
    return best;
}

static void backtrack(const struct dp *d, size_t st, double *lev)
{
    const struct bal_plan_dpin *in = d->in;
    for (size_t s = in->s1; s-- > in->s0;) {
        int ph = (int)(st / (size_t)d->D % (size_t)d->NPH);
        lev[s] = ph < d->NJ + d->R && in->kind[s] != BAL_PLAN_OTHER ? in->lvl[s] : 0;
        st = (size_t)d->par[(s - in->s0) * d->nst + st];
    }
}

int bal_plan_dp(const struct bal_plan_dpin *in, double *lev, struct bal_plan_val *v)
{
    struct dp d = { .in = in };
    d.Rmin = in->run_min > 1 ? in->run_min : 1;
    d.R = in->r_last > d.Rmin ? in->r_last : d.Rmin;
    d.G = in->gap_min > 1 ? in->gap_min : 1;
    d.NJ = in->on0 > 0 ? d.Rmin : 0;
    for (size_t s = in->s0; s < in->s1 && d.NJ == 0; s++)
        d.NJ = in->kind[s] == BAL_PLAN_OTHER ? d.Rmin : 0;
    d.NPH = d.NJ + d.R + d.G;
    d.D = in->max_starts > 0 ? in->max_starts + 1 : 1;
    d.NN = in->K > 0 ? in->K + 1 : 1;
    d.nst = (size_t)d.NN * (size_t)d.NPH * (size_t)d.D;
    size_t n = in->s1 - in->s0;
    if (in->s1 <= in->s0)
        return -ENOENT;
    if (d.nst > DP_MAX_CELLS / n)
        return -E2BIG;
    d.prev = fg_malloc(d.nst * sizeof *d.prev);
    d.cur = fg_malloc(d.nst * sizeof *d.cur);
    d.par = fg_malloc(n * d.nst * sizeof *d.par);
    d.seen = fg_malloc((n + 1) * sizeof *d.seen);
    d.rem = fg_malloc((n + 1) * sizeof *d.rem);
    d.off_to = fg_malloc(3 * (size_t)d.NPH * sizeof *d.off_to);
    d.mine_to = d.off_to + d.NPH;
    d.other_to = d.mine_to + d.NPH;
    d.starts = fg_malloc((size_t)d.NPH * sizeof *d.starts);
    tables(&d);
    bands(&d);
    init(&d);
    for (size_t s = in->s0; s < in->s1; s++)
        step(&d, s);
    long best = pick(&d);
    if (best >= 0) {
        *v = d.prev[best];
        backtrack(&d, (size_t)best, lev);
    }
    free(d.prev);
    free(d.cur);
    free(d.par);
    free(d.seen);
    free(d.rem);
    free(d.off_to);
    free(d.starts);
    return best >= 0 ? 0 : -ENOENT;
}
