/* bal_plan_priv: what the planner's files (bal_plan.c: setup and search; bal_plan_place.c: placing one
 * job; bal_plan_dp.c: the run-aware dynamic programme) share. Not an API: nothing outside bal_plan*
 * includes it. */
#ifndef BAL_PLAN_PRIV_H
#define BAL_PLAN_PRIV_H
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bal_plan.h"

#define BAL_PLAN_EPS_WH 1e-6   /* energies closer than this are equal */
#define BAL_PLAN_EPS_W 1e-6
/* The tie-break's model of the forecast's error (bal_plan.c, top): half widths of a uniform error,
 * as fractions of the forecast PV and base load. */
#define BAL_PLAN_PV_ERR 0.75
#define BAL_PLAN_LOAD_ERR 0.36

/* How bal_plan_place chooses: by the objective, or earliest completion first (the feasibility
 * rescue); the NO_ flags drop one constraint to find out why a job does not fit. */
enum {
    BAL_PLAN_ASAP = 1,
    BAL_PLAN_NO_GRID = 2,
    BAL_PLAN_NO_STARTS = 4
};

/* What a slot is to the job being placed. */
enum { BAL_PLAN_FORBID, BAL_PLAN_CAND, BAL_PLAN_OTHER, BAL_PLAN_FIXJ };

/* Per machine, derived once from bal_machine and bal_mstate. */
struct bal_plan_mach {
    double lmin_w, lmax_w, step_w; /* power levels; a fixed load has lmin_w == lmax_w */
    bool modulating;
    int run_min, gap_min;          /* min_on_s and min_off_s in slots (rounded up) */
    size_t first_ok;               /* first slot it may be on in (min_off after a recent stop) */
    bool prev_on;                  /* on before slot 0 */
    unsigned max_starts, starts0;  /* per local day; starts0: already made today */
};

/* Per job. */
struct bal_plan_jobx {
    double need_wh;                /* energy still to deliver */
    size_t lo, hi;                 /* slots it may use: [lo, hi) */
    size_t nfix;                   /* running interruptible job: slots 0..nfix-1 kept on (min_on) */
    bool fixed;                    /* running non-interruptible job: a block from slot 0, never moved */
    bool beyond;                   /* deadline after the horizon */
    bool placed;
};

/* A placement's value: compared as (cost, ecost, starts, last) or, in ASAP mode, (last, starts); cnt
 * (slots used) first, more is better, when a job may be placed in part. ecost is the objective's
 * expectation under the forecast's error (bal_plan_h): it only breaks ties of cost. */
struct bal_plan_val {
    double cost, ecost;
    int16_t cnt, starts, last;    /* small: the programme keeps one per state (BAL_MAX_SLOTS fits) */
};

struct bal_plan_ctx {
    const struct bal_problem *p;
    struct bal_plan *pl;           /* the plan being built: power_w/job are the current placements */
    size_t S;
    int64_t slot_ms;
    double slot_h;
    double *dur_h;                 /* per slot: hours of it in the horizon (slot 0 from now_ms) */
    double *base_w;                /* load - pv */
    double *pinst_w;               /* sum of planned machine powers (what the grid limit sees) */
    double *pmean_w;               /* sum of planned energies / dur_h (what the objective sees) */
    double *pi, *pe;               /* objective weight of imported / exported Wh */
    double *err_w;                 /* half width of the error of load - pv (bal_plan_h) */
    int *day;                      /* local day of the slot start, 0 = today */
    int ndays;
    uint8_t *allowed;              /* [m * S + s]: bal_machine_allowed */
    struct bal_plan_mach *mach;
    struct bal_plan_jobx *jx;
    /* scratch of S entries each, for one placement at a time */
    uint8_t *kind;
    double *lvl, *cost, *ecost, *lev, *lev2, *lev3, *pre, *pre_ecost;
    double *nt, *ncpw, *necpw;     /* the modulating greedy's next level, its cost (expected: necpw)
                                    * per Wh */
    int *on_prev, *on_next;
    int *starts_day;               /* ndays */
};

/* The run-aware dynamic programme over slots for one job whose slots have given levels: min on/off
 * in slots, starts per day, merging with other jobs' runs (OTHER slots are on and not the job's). */
struct bal_plan_dpin {
    const uint8_t *kind;
    const double *lvl;             /* the job's power in each CAND/FIXJ slot */
    const double *cost;            /* objective increase of the job running in that slot */
    const double *ecost;           /* and its increase of the expected objective (bal_plan_h) */
    const int *day;
    size_t s0, s1;                 /* the slots it covers; outside them nothing is the job's, and
                                    * after s1 nothing depends on it (the caller's promise) */
    size_t nslots;                 /* of kind, day (the horizon) */
    int K;                         /* slots to use, or 0: as many as possible (partial) */
    int r_last;                    /* the job's last run (K > 0) lasts at least this many slots,
                                    * unless another job's run goes on from it or it ends the horizon */
    int cnt0;                      /* what slot 0 counts towards K (0 when it is too short a part) */
    int run_min, gap_min;
    int max_starts;                /* 0: no limit */
    int on0;                       /* the machine is on just before s0, for this many slots (a
                                    * run of other jobs), or 0 */
    int off0;                      /* else off for this many slots (>= 1) */
    int d0;                        /* starts made on the day of slot s0 - 1 (before slot 0: today) */
    bool asap;
};

/* Fills lev[s0..s1) (the job's power per slot, 0 off; the rest untouched) with the best schedule
 * and *v with its value (starts counted from s0 on). Returns 0, -ENOENT when no schedule exists,
 * -E2BIG when the programme would be too big (the caller falls back to a block). */
int bal_plan_dp(const struct bal_plan_dpin *in, double *lev, struct bal_plan_val *v);

/* True when a is better than b (see struct bal_plan_val). Inline: the programme calls it for every
 * state of every slot. */
static inline bool bal_plan_better(const struct bal_plan_val *a, const struct bal_plan_val *b, bool asap)
{
    if (a->cnt != b->cnt)
        return a->cnt > b->cnt;
    if (!asap) {
        double d = a->cost - b->cost;
        if (fabs(d) > 1e-9 * (1 + fabs(a->cost) + fabs(b->cost)))
            return d < 0;
        d = a->ecost - b->ecost;
        if (fabs(d) > 1e-9 * (1 + fabs(a->ecost) + fabs(b->ecost)))
            return d < 0;
        if (a->starts != b->starts)
            return a->starts < b->starts;
        return a->last < b->last;
    }
    if (a->last != b->last)
        return a->last < b->last;
    return a->starts < b->starts;
}

/* Objective weight of slot s with net site power y_w (load + machines - pv, mean over the slot). */
double bal_plan_g(const struct bal_plan_ctx *c, size_t s, double y_w);
/* Its expectation when y_w is uncertain: y_w plus an error uniform in [-err_w, err_w] of the slot. */
double bal_plan_h(const struct bal_plan_ctx *c, size_t s, double y_w);

/* Places job j with the given BAL_PLAN_ flags into the current plan. Returns 0 when placed (partially
 * for a surplus-only job), -ENOENT when it does not fit. */
int bal_plan_place(struct bal_plan_ctx *c, size_t j, int flags);
/* Takes job j out of the plan; its levels per slot are saved in save (S entries) if not NULL. */
void bal_plan_unplace(struct bal_plan_ctx *c, size_t j, double *save);
/* Puts job j into the plan at levels lev (S entries, 0 = off). */
void bal_plan_apply(struct bal_plan_ctx *c, size_t j, const double *lev);
/* Whether every run of machine m in the current plan holds min on, as placing keeps it: a shorter
 * run holds only jobs that lie wholly in it, each shorter than min on (a run through slot 0 of a
 * machine already on, or reaching the horizon's end, is exempt). Taking a job out of the plan may
 * leave another job's run short, when the two ran as one. */
bool bal_plan_machine_ok(const struct bal_plan_ctx *c, size_t m);
/* Starts of machine m in the current plan. */
int bal_plan_mstarts(const struct bal_plan_ctx *c, size_t m);
/* Last slot of job j in the current plan, -1 if none. */
int bal_plan_last(const struct bal_plan_ctx *c, size_t j);

#endif
