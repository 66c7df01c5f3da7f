/* Unit tests of bal_plan: exact plans for small hand-solved instances (PV peak, windows, competing
 * machines, modulating levels, grid limit, prices, running jobs, min on/off, starts, DST days),
 * infeasible reasons, brute-force optimality of single jobs, and invariants on 300 generated
 * instances that are feasible by construction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bal_plan.h"
#include "fg_clock.h"

#define MIN_MS 60000LL
#define MAXS 600
#define MAXM 8
#define MAXJ 32

/* One problem with its own storage. */
struct inst {
    struct bal_problem p;
    double pv[MAXS], load[MAXS], pri[MAXS], pex[MAXS];
    struct bal_machine m[MAXM];
    struct bal_mstate ms[MAXM];
    struct bal_job j[MAXJ];
};

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static int64_t iso(const char *s)
{
    int64_t ms = 0;
    assert_int_equal(fg_parse_iso8601_ms(s, &ms), 0);
    return ms;
}

/* nslots slots of slot_min from start (now = start), no PV, no load, no machines. */
static void inst_init(struct inst *in, int64_t start_ms, int slot_min, size_t nslots)
{
    memset(in, 0, sizeof *in);
    in->p.start_ms = start_ms;
    in->p.now_ms = start_ms;
    in->p.slot_min = slot_min;
    in->p.nslots = nslots;
    in->p.pv_w = in->pv;
    in->p.load_w = in->load;
    in->p.machines = in->m;
    in->p.mstate = in->ms;
    in->p.jobs = in->j;
}

static size_t add_machine(struct inst *in, const char *id, double power_w, bool interruptible)
{
    size_t k = in->p.nmachines++;
    struct bal_machine *m = &in->m[k];
    snprintf(m->id, sizeof m->id, "%s", id);
    m->power_w = power_w;
    m->interruptible = interruptible;
    in->ms[k].since_ms = INT64_MIN;
    in->ms[k].job = -1;
    return k;
}

/* A required job on machine m of energy_wh between slots from..to of the horizon. */
static size_t add_job(struct inst *in, size_t m, double energy_wh, size_t from, size_t to)
{
    size_t k = in->p.njobs++;
    struct bal_job *j = &in->j[k];
    int64_t slot_ms = in->p.slot_min * MIN_MS;
    snprintf(j->id, sizeof j->id, "job%zu", k);
    j->machine = m;
    j->cfg = k;
    j->earliest_ms = in->p.start_ms + (int64_t)from * slot_ms;
    j->deadline_ms = in->p.start_ms + (int64_t)to * slot_ms;
    j->energy_wh = energy_wh;
    j->required = true;
    return k;
}

static void make(const struct inst *in, struct bal_plan *pl)
{
    char err[200] = "";
    int r = bal_plan_make(&in->p, pl, err, sizeof err);
    if (r != 0)
        fail_msg("bal_plan_make: %d %s", r, err);
}

/* Machine m's planned power in slots 0..n-1 equals want. */
static void expect_power(const struct bal_plan *pl, size_t m, const double *want, size_t n)
{
    for (size_t s = 0; s < n; s++)
        if (fabs(pl->power_w[m * pl->nslots + s] - want[s]) > 1e-9)
            fail_msg("machine %zu slot %zu: power %g, want %g", m, s, pl->power_w[m * pl->nslots + s], want[s]);
}

static void expect_reason(const struct bal_plan *pl, size_t j, enum bal_job_status st, const char *reason)
{
    if (pl->jobs[j].status != st || strcmp(pl->jobs[j].reason, reason) != 0)
        fail_msg("job %zu: status %d \"%s\", want %d \"%s\"", j, pl->jobs[j].status, pl->jobs[j].reason, st, reason);
}

static int64_t utc_day(void)
{
    return iso("2016-07-15T00:00:00Z");
}

/* ---- small hand-solved instances ---- */

/* 1 machine, 8 slots, PV peak in slots 3-5: a 3-slot block goes to 3-5. */
static void test_block_to_pv_peak(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 8);
    in.pv[3] = in.pv[4] = in.pv[5] = 1000;
    in.load[0] = 200;
    add_machine(&in, "kiln", 1000, false);
    add_job(&in, 0, 750, 0, 8);
    make(&in, &pl);
    const double want[8] = { 0, 0, 0, 1000, 1000, 1000, 0, 0 };
    expect_power(&pl, 0, want, 8);
    assert_int_equal(pl.job[3], 0);
    assert_int_equal(pl.job[2], -1);
    expect_reason(&pl, 0, BAL_JOB_PLANNED, "");
    assert_int_equal(pl.jobs[0].first_ms, utc_day() + 45 * MIN_MS);
    assert_int_equal(pl.jobs[0].end_ms, utc_day() + 90 * MIN_MS);
    assert_true(fabs(pl.import_wh - 50) < 1e-9); /* the base load of slot 0: 200 W x 15 min */
    assert_true(fabs(pl.export_wh) < 1e-9);
    assert_int_equal(pl.starts, 1);
    assert_true(fabs(pl.cost - 50) < 1e-9);
    bal_plan_free(&pl);
    assert_null(pl.power_w);
    bal_plan_free(NULL);
}

/* A job whose window only allows slots 6-7 (01:30-02:00) needs 45 min: infeasible, by reason. */
static void test_window_too_short(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 8);
    add_machine(&in, "saw", 1000, false);
    add_machine(&in, "sander", 1000, true);
    for (size_t m = 0; m < 2; m++) {
        in.m[m].nwindows = 1;
        in.m[m].windows[0] = (struct bal_window){ 0x7F, 90, 120 };
        add_job(&in, m, 750, 0, 8);
    }
    add_job(&in, 0, 500, 0, 8); /* 30 min fit */
    make(&in, &pl);
    expect_reason(&pl, 0, BAL_JOB_INFEASIBLE, "window too short: needs 45 min in its windows before the deadline");
    expect_reason(&pl, 1, BAL_JOB_INFEASIBLE, "window too short: needs 45 min in its windows before the deadline");
    expect_reason(&pl, 2, BAL_JOB_PLANNED, "");
    const double want[8] = { 0, 0, 0, 0, 0, 0, 1000, 1000 };
    expect_power(&pl, 0, want, 8);
    assert_int_equal(pl.jobs[0].first_ms, 0);
    assert_int_equal(pl.jobs[0].end_ms, 0);
    bal_plan_free(&pl);
}

static void test_deadline_reasons(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 8);
    in.p.now_ms = utc_day() + 5 * MIN_MS;
    add_machine(&in, "kiln", 1000, false);
    add_job(&in, 0, 1000, 0, 4);             /* 60 min needed, 55 min left */
    add_job(&in, 0, 250, 0, 8);
    in.j[1].deadline_ms = in.p.now_ms;       /* passed */
    add_job(&in, 0, 500, 0, 2);              /* 30 min needed, 25 left */
    add_job(&in, 0, 2000, 0, 8);
    in.j[3].done_wh = 2000;                  /* done */
    add_job(&in, 0, 250, 0, 8);
    in.j[4].earliest_ms = utc_day() + 3 * 3600000LL; /* after the horizon (2 h) */
    add_job(&in, 0, 250, 0, 8);
    in.j[5].deadline_ms = utc_day() + 5 * 3600000LL; /* beyond it, but fits */
    make(&in, &pl);
    expect_reason(&pl, 0, BAL_JOB_INFEASIBLE, "deadline too close: needs 60 min, 55 left");
    expect_reason(&pl, 1, BAL_JOB_INFEASIBLE, "deadline passed");
    expect_reason(&pl, 2, BAL_JOB_INFEASIBLE, "deadline too close: needs 30 min, 25 left");
    expect_reason(&pl, 3, BAL_JOB_DONE, "");
    expect_reason(&pl, 4, BAL_JOB_UNPLANNED, "starts after the horizon");
    expect_reason(&pl, 5, BAL_JOB_PLANNED, "");
    /* slot 0 is 10 min long from now: 250 Wh at 1 kW need slot 0 and 5 min of slot 1 */
    assert_int_equal(pl.job[0], 5);
    assert_int_equal(pl.job[1], 5);
    assert_int_equal(pl.job[2], -1);
    assert_true(fabs(pl.import_wh - 250) < 1e-9);
    assert_int_equal(pl.starts, 1);
    bal_plan_free(&pl);
}

/* Two machines want one surplus block: the earlier deadline gets it, ties go to higher priority.
 * The other one imports all its 750 Wh wherever it runs, so the tie-break puts it under the same PV
 * (there it would use PV above the forecast), unless a little PV elsewhere makes a real difference. */
static void test_competing_machines(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 8);
    in.pv[3] = in.pv[4] = in.pv[5] = 1000;
    add_machine(&in, "low", 1000, false);
    add_machine(&in, "high", 1000, false);
    in.m[1].priority = 5;
    add_job(&in, 0, 750, 0, 8);
    add_job(&in, 1, 750, 0, 8);
    make(&in, &pl);
    const double peak[8] = { 0, 0, 0, 1000, 1000, 1000, 0, 0 }, early[8] = { 1000, 1000, 1000, 0, 0, 0, 0, 0 };
    expect_power(&pl, 1, peak, 8);
    expect_power(&pl, 0, peak, 8); /* a tie in forecast import (750 Wh): under the PV, not earliest */
    assert_true(fabs(pl.import_wh - 750) < 1e-9);
    bal_plan_free(&pl);

    in.pv[0] = in.pv[1] = in.pv[2] = 100; /* early slots now save 75 Wh: the loser goes there */
    make(&in, &pl);
    expect_power(&pl, 1, peak, 8);
    expect_power(&pl, 0, early, 8);
    assert_true(fabs(pl.import_wh - 675) < 1e-9);
    bal_plan_free(&pl);

    in.j[0].deadline_ms -= 15 * MIN_MS; /* now "low" is due first and wins the peak */
    make(&in, &pl);
    expect_power(&pl, 0, peak, 8);
    expect_power(&pl, 1, early, 8);
    bal_plan_free(&pl);

    in.pv[0] = in.pv[1] = in.pv[2] = 0;
    in.j[0].required = in.j[1].required = false; /* surplus-only: the higher priority gets it */
    in.j[0].surplus_only = in.j[1].surplus_only = true;
    make(&in, &pl);
    expect_power(&pl, 1, peak, 8);
    expect_reason(&pl, 0, BAL_JOB_UNPLANNED, "no surplus before the deadline");
    expect_reason(&pl, 1, BAL_JOB_PLANNED, "");
    assert_true(fabs(pl.import_wh) < 1e-9);
    bal_plan_free(&pl);
}

/* No slot has surplus (3 kW of load over at most 2 kW of PV), so a 1 kW job imports 500 Wh wherever
 * it runs. The tie goes to the slots under more forecast PV (5-6, 2 kW) rather than the earliest
 * (0-1) or the ones under less (1-2, 500 W), for a block, an interruptible job and a modulating
 * one. A real difference in forecast import (surplus in 0-1) still wins over more PV. With the same
 * PV in 0-1 and 5-6 the earlier slots win, but a modulating job runs at half power under both: less
 * power over more PV is likelier to be covered, and that comes before fewer starts. */
static void test_ties_go_to_pv(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    const double under_pv[8] = { 0, 0, 0, 0, 0, 1000, 1000, 0 }, first[8] = { 1000, 1000, 0, 0, 0, 0, 0, 0 };
    const double halves[8] = { 500, 500, 0, 0, 0, 500, 500, 0 };
    for (int kind = 0; kind < 3; kind++) {
        inst_init(&in, utc_day(), 15, 8);
        for (size_t s = 0; s < 8; s++)
            in.load[s] = 3000;
        in.pv[1] = in.pv[2] = 500;
        in.pv[5] = in.pv[6] = 2000;
        add_machine(&in, "m", 1000, kind > 0);
        if (kind == 2) {
            in.m[0].min_power_w = 500; /* modulating, 500..1000 W */
            in.m[0].min_on_s = 1800;
        }
        add_job(&in, 0, 500, 0, 8);
        make(&in, &pl);
        expect_power(&pl, 0, under_pv, 8);
        assert_true(fabs(pl.import_wh - (8 * 3000 - 2 * 500 - 2 * 2000) * 0.25 - 500) < 1e-9);
        assert_int_equal(pl.starts, 1);
        bal_plan_free(&pl);

        in.load[0] = in.load[1] = 0; /* slots 0-1: 1 kW of surplus, under less PV than 5-6 */
        in.pv[0] = in.pv[1] = 1000;
        make(&in, &pl);
        expect_power(&pl, 0, first, 8);
        assert_true(fabs(pl.import_wh - (6 * 3000 - 500 - 2 * 2000) * 0.25) < 1e-9); /* slots 2-7 */
        bal_plan_free(&pl);

        in.load[0] = in.load[1] = 3000; /* the same PV in 0-1 and 5-6: the earlier ... */
        in.pv[0] = in.pv[1] = 2000;
        make(&in, &pl);
        expect_power(&pl, 0, kind < 2 ? first : halves, 8);
        assert_int_equal(pl.starts, kind < 2 ? 1 : 2);
        bal_plan_free(&pl);
    }
}

/* A modulating EV charger (1-3 kW, 500 W steps) follows the surplus at its levels. */
static void test_modulating_fills_surplus(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 8);
    const double pv[8] = { 0, 2200, 2700, 3400, 800, 0, 0, 0 };
    memcpy(in.pv, pv, sizeof pv);
    add_machine(&in, "ev", 3000, true);
    in.m[0].min_power_w = 1000;
    in.m[0].step_w = 500;
    add_job(&in, 0, 1875, 0, 8);
    make(&in, &pl);
    const double want[8] = { 0, 2000, 2500, 3000, 0, 0, 0, 0 };
    expect_power(&pl, 0, want, 8);
    assert_true(fabs(pl.import_wh) < 1e-9);
    assert_true(fabs(pl.export_wh - (200 + 200 + 400 + 800) * 0.25) < 1e-9);
    bal_plan_free(&pl);

    /* 450 Wh more: slot 4 runs at 1 kW until done (200 Wh, all of them surplus), slots 1 and 2 one
     * step up (300 W import each); the least import is 150 Wh */
    in.j[0].energy_wh = 2325;
    make(&in, &pl);
    const double more[8] = { 0, 2500, 3000, 3000, 1000, 0, 0, 0 };
    expect_power(&pl, 0, more, 8);
    assert_true(fabs(pl.import_wh - 150) < 1e-9);
    bal_plan_free(&pl);

    in.j[0].energy_wh = 3000; /* surplus-only: what the surplus covers, in part */
    in.j[0].required = false;
    in.j[0].surplus_only = true;
    make(&in, &pl);
    expect_power(&pl, 0, want, 8);
    expect_reason(&pl, 0, BAL_JOB_PLANNED, "partial: surplus covers 1875 of 3000 Wh");
    bal_plan_free(&pl);
}

/* grid_limit_w: base load 1500 W in slots 0-3 leaves no room for 1 kW under 2 kW. */
static void test_grid_limit(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 8);
    in.p.grid_limit_w = 2000;
    for (size_t s = 0; s < 4; s++)
        in.load[s] = 1500;
    add_machine(&in, "kiln", 1000, false);
    add_job(&in, 0, 500, 0, 8);
    make(&in, &pl);
    const double want[8] = { 0, 0, 0, 0, 1000, 1000, 0, 0 };
    expect_power(&pl, 0, want, 8);
    bal_plan_free(&pl);

    in.j[0].deadline_ms = utc_day() + 75 * MIN_MS; /* only 4-4 left: no 30 min block */
    make(&in, &pl);
    expect_reason(&pl, 0, BAL_JOB_INFEASIBLE, "grid limit: no block of 30 min fits under 2000 W");
    bal_plan_free(&pl);
}

/* With prices the cheapest slots win, not the earliest. */
static void test_prices(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    inst_init(&in, utc_day(), 60, 6);
    const double pri[6] = { 0.30, 0.30, 0.10, 0.12, 0.10, 0.30 };
    memcpy(in.pri, pri, sizeof pri);
    in.p.price_import = in.pri;
    in.p.price_export = in.pex;
    add_machine(&in, "kiln", 1000, false);
    add_machine(&in, "pump", 1000, true);
    add_job(&in, 0, 2000, 0, 6);
    add_job(&in, 1, 2000, 0, 6);
    make(&in, &pl);
    const double kiln[6] = { 0, 0, 1000, 1000, 0, 0 }, pump[6] = { 0, 0, 1000, 0, 1000, 0 };
    expect_power(&pl, 0, kiln, 6);
    expect_power(&pl, 1, pump, 6);
    assert_true(fabs(pl.cost - (0.10 + 0.12 + 0.10 + 0.10)) < 1e-9); /* 1 kWh a slot */
    assert_true(fabs(pl.import_wh - 4000) < 1e-9);
    assert_int_equal(pl.starts, 3);
    bal_plan_free(&pl);
}

/* A running kiln keeps its block from now; a running interruptible job keeps its min on. */
static void test_running_jobs(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 8);
    in.pv[5] = in.pv[6] = in.pv[7] = 2000;
    add_machine(&in, "kiln", 1000, false);
    add_machine(&in, "comp", 1000, true);
    in.m[0].nwindows = 1; /* a window that would forbid it now: running blocks ignore it */
    in.m[0].windows[0] = (struct bal_window){ 0x7F, 60, 120 };
    in.m[1].min_on_s = 1800;
    for (size_t m = 0; m < 2; m++) {
        in.ms[m].on = true;
        in.ms[m].since_ms = utc_day() - 5 * MIN_MS;
        in.ms[m].job = (int)m;
        add_job(&in, m, 1000, 0, 8);
        in.j[m].done_wh = 500;
        in.j[m].running = true;
        in.j[m].earliest_ms = utc_day() - 60 * MIN_MS;
    }
    in.j[1].energy_wh = 1500; /* 1000 Wh to go: 2 slots of min on (till 00:25), 2 in the sun */
    make(&in, &pl);
    const double kiln[8] = { 1000, 1000, 0, 0, 0, 0, 0, 0 }, comp[8] = { 1000, 1000, 0, 0, 0, 1000, 1000, 0 };
    expect_power(&pl, 0, kiln, 8);
    expect_power(&pl, 1, comp, 8);
    expect_reason(&pl, 0, BAL_JOB_PLANNED, "running");
    assert_int_equal(pl.starts, 1);
    bal_plan_free(&pl);
}

/* A job's last slot runs only for what the job still needs, and the machine stops then: its last run
 * must hold min on in real time. A running compressor (on for 30 min) with 6 min to go finishes now,
 * not alone in the sunny slot 4 (6 min on there, under its 15 min of min on). With 21 min to go,
 * sun in slots 2 and 6 and some in 3: not 2 then 6 (6 min alone) but 2-3. */
static void test_last_run_holds_min_on(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 8);
    in.pv[4] = in.pv[5] = 2000;
    add_machine(&in, "comp", 1000, true);
    in.m[0].min_on_s = 900;
    in.ms[0].on = true;
    in.ms[0].since_ms = utc_day() - 30 * MIN_MS;
    in.ms[0].job = 0;
    add_job(&in, 0, 1000, 0, 8);
    in.j[0].done_wh = 900;
    in.j[0].running = true;
    in.j[0].earliest_ms = utc_day() - 60 * MIN_MS;
    make(&in, &pl);
    const double now[8] = { 1000, 0, 0, 0, 0, 0, 0, 0 }, run2[8] = { 0, 0, 1000, 1000, 0, 0, 0, 0 };
    expect_power(&pl, 0, now, 8);
    assert_true(fabs(pl.import_wh - 100) < 1e-9);
    bal_plan_free(&pl);

    in.pv[4] = in.pv[5] = 0;
    in.pv[2] = in.pv[6] = 2000;
    in.pv[3] = 500;
    in.j[0].done_wh = 650; /* 350 Wh: 2 slots, the second for 6 min */
    make(&in, &pl);
    expect_power(&pl, 0, run2, 8);
    assert_true(fabs(pl.import_wh) < 1e-9);
    bal_plan_free(&pl);
}

/* Min on, min off (also after a recent stop) and the starts of the day. */
static void test_min_on_off_starts(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 8);
    for (size_t s = 0; s < 8; s += 2)
        in.pv[s] = 1000;
    add_machine(&in, "comp", 1000, true);
    add_job(&in, 0, 500, 0, 8);
    make(&in, &pl);
    const double free_[8] = { 1000, 0, 1000, 0, 0, 0, 0, 0 };
    expect_power(&pl, 0, free_, 8);
    bal_plan_free(&pl);

    in.m[0].min_on_s = 1800; /* runs of 2 slots: one of them without sun */
    make(&in, &pl);
    const double on2[8] = { 1000, 1000, 0, 0, 0, 0, 0, 0 };
    expect_power(&pl, 0, on2, 8);
    assert_true(fabs(pl.import_wh - 250) < 1e-9);
    bal_plan_free(&pl);

    in.m[0].min_on_s = 0;
    in.m[0].min_off_s = 1800; /* pauses of 2 slots: 0 and 4 */
    make(&in, &pl);
    const double off2[8] = { 1000, 0, 0, 0, 1000, 0, 0, 0 };
    expect_power(&pl, 0, off2, 8);
    bal_plan_free(&pl);

    in.ms[0].since_ms = utc_day() - 5 * MIN_MS; /* stopped 5 min ago: off until 00:25 -> slot 2 */
    make(&in, &pl);
    const double late[8] = { 0, 0, 1000, 0, 0, 0, 1000, 0 };
    expect_power(&pl, 0, late, 8);
    bal_plan_free(&pl);

    in.m[0].max_starts_per_day = 1; /* one start left: one run of two slots */
    in.ms[0].starts_today = 0;
    make(&in, &pl);
    const double one[8] = { 0, 0, 1000, 1000, 0, 0, 0, 0 };
    expect_power(&pl, 0, one, 8);
    bal_plan_free(&pl);

    in.ms[0].starts_today = 1;
    make(&in, &pl);
    expect_reason(&pl, 0, BAL_JOB_INFEASIBLE, "max starts reached");
    bal_plan_free(&pl);
}

/* Two jobs on a machine allowed one start a day run back to back. */
static void test_jobs_share_a_run(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 8);
    in.pv[1] = in.pv[6] = 1000;
    add_machine(&in, "saw", 1000, false);
    in.m[0].max_starts_per_day = 1;
    add_job(&in, 0, 500, 0, 8);
    add_job(&in, 0, 500, 0, 8);
    make(&in, &pl);
    assert_int_equal(pl.jobs[0].status, BAL_JOB_PLANNED);
    assert_int_equal(pl.jobs[1].status, BAL_JOB_PLANNED);
    assert_int_equal(pl.starts, 1);
    int on = 0;
    for (size_t s = 0; s < 8; s++)
        on += pl.power_w[s] > 0;
    assert_int_equal(on, 4);
    assert_true(fabs(pl.import_wh - 750) < 1e-9);
    bal_plan_free(&pl);
}

static void test_latest_start(void **state)
{
    (void)state;
    struct inst in;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 8);
    add_machine(&in, "saw", 1000, false);
    add_machine(&in, "comp", 1000, true);
    in.m[0].nwindows = 1;
    in.m[0].windows[0] = (struct bal_window){ 0x7F, 30, 90 }; /* slots 2-5 */
    in.m[1].nwindows = 2;
    in.m[1].windows[0] = (struct bal_window){ 0x7F, 15, 45 }; /* slots 1-2 */
    in.m[1].windows[1] = (struct bal_window){ 0x7F, 75, 105 }; /* slots 5-6 */
    add_job(&in, 0, 500, 0, 8);
    add_job(&in, 1, 750, 0, 8);
    add_job(&in, 0, 1250, 0, 8);
    add_job(&in, 1, 250, 0, 8);
    in.j[3].deadline_ms = utc_day() + 12 * 60 * MIN_MS; /* past the horizon: the slot grid goes on */
    assert_int_equal(bal_latest_start_ms(&in.p, 0), utc_day() + 60 * MIN_MS);
    assert_int_equal(bal_latest_start_ms(&in.p, 1), utc_day() + 30 * MIN_MS);
    assert_int_equal(bal_latest_start_ms(&in.p, 2), INT64_MIN);
    assert_int_equal(bal_latest_start_ms(&in.p, 3), utc_day() + 90 * MIN_MS);
    assert_int_equal(bal_latest_start_ms(&in.p, 9), INT64_MIN);
    in.p.now_ms = utc_day() + 35 * MIN_MS; /* impossible once past it */
    in.p.start_ms = utc_day() + 30 * MIN_MS;
    assert_int_equal(bal_latest_start_ms(&in.p, 1), INT64_MIN);
}

static void test_errors(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    char err[200];
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 0);
    assert_int_equal(bal_plan_make(&in.p, &pl, err, sizeof err), -EINVAL);
    assert_string_equal(err, "nslots must be 1..1024, got 0");
    assert_null(pl.power_w);
    in.p.nslots = 8;
    in.p.slot_min = 4;
    assert_int_equal(bal_plan_make(&in.p, &pl, err, sizeof err), -EINVAL);
    assert_string_equal(err, "slot_min must be 5..60, got 4");
    in.p.slot_min = 15;
    add_machine(&in, "saw", 1000, false);
    add_job(&in, 0, 500, 0, 8);
    in.j[0].machine = 3;
    assert_int_equal(bal_plan_make(&in.p, &pl, err, sizeof err), -EINVAL);
    assert_string_equal(err, "jobs[0] (job0): machine 3 does not exist (1 machines)");
    in.j[0].machine = 0;
    in.p.now_ms = utc_day() + 15 * MIN_MS;
    assert_int_equal(bal_plan_make(&in.p, &pl, NULL, 0), -EINVAL);
}

/* Earliest deadline first puts A in the sun, and then B's 6-slot block no longer fits: the planner
 * falls back to earliest placement, which fits both. */
static void test_rescue_when_greedy_fails(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 8);
    in.pv[2] = in.pv[3] = 1000;
    add_machine(&in, "kiln", 1000, false);
    add_job(&in, 0, 500, 0, 6);
    add_job(&in, 0, 1500, 0, 8);
    make(&in, &pl);
    const double want[8] = { 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000 };
    expect_power(&pl, 0, want, 8);
    assert_int_equal(pl.job[0], 0);
    assert_int_equal(pl.job[1], 0);
    assert_int_equal(pl.job[2], 1);
    assert_int_equal(pl.job[7], 1);
    expect_reason(&pl, 0, BAL_JOB_PLANNED, "");
    expect_reason(&pl, 1, BAL_JOB_PLANNED, "");
    assert_int_equal(pl.starts, 1);
    bal_plan_free(&pl);
}

/* Optional jobs: one that may use the grid is planned like a required one but never rejected; a
 * surplus-only interruptible one takes what the surplus gives in runs of min on; a job due after
 * the horizon that does not fit in it waits. */
static void test_optional_jobs(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 8);
    const double pv[8] = { 0, 1000, 1000, 0, 1000, 1000, 1000, 0 };
    memcpy(in.pv, pv, sizeof pv);
    add_machine(&in, "pump", 1000, true);
    add_machine(&in, "comp", 1000, true);
    add_machine(&in, "saw", 1000, false);
    in.m[1].min_on_s = 1800; /* runs of 2 slots */
    add_job(&in, 0, 750, 0, 8);
    in.j[0].required = false;
    add_job(&in, 1, 1250, 0, 8); /* 5 slots wanted, surplus for 2 + 3 */
    in.j[1].required = false;
    in.j[1].surplus_only = true;
    add_job(&in, 2, 3000, 0, 8); /* 12 slots: not in this horizon */
    in.j[2].deadline_ms = utc_day() + 6 * 3600000LL;
    add_job(&in, 0, 3000, 0, 8); /* optional, cannot fit: unplanned with the reason */
    in.j[3].required = false;
    make(&in, &pl);
    expect_reason(&pl, 0, BAL_JOB_PLANNED, "");
    expect_reason(&pl, 2, BAL_JOB_UNPLANNED, "deadline beyond the horizon");
    expect_reason(&pl, 3, BAL_JOB_UNPLANNED, "deadline too close: needs 180 min, 120 left");
    /* the pump (placed first) takes 3 of the 5 sunny slots in one run (fewer starts before earlier
     * completion), the compressor gets the other 2 */
    const double pump[8] = { 0, 0, 0, 0, 1000, 1000, 1000, 0 }, comp[8] = { 0, 1000, 1000, 0, 0, 0, 0, 0 };
    expect_power(&pl, 0, pump, 8);
    expect_power(&pl, 1, comp, 8);
    expect_reason(&pl, 1, BAL_JOB_PLANNED, "partial: surplus covers 500 of 1250 Wh");
    assert_true(fabs(pl.import_wh) < 1e-9);
    bal_plan_free(&pl);
}

/* bal_plan_score on a plan made by hand: a job's last slot counts what it still needs, a slot
 * without a job its full power; the machine was on before slot 0. */
static void test_score_by_hand(void **state)
{
    (void)state;
    struct inst in;
    set_tz("UTC");
    inst_init(&in, utc_day(), 15, 4);
    for (size_t s = 0; s < 4; s++)
        in.load[s] = 100;
    in.pv[3] = 500;
    in.pv[2] = 300;
    add_machine(&in, "kiln", 1000, false);
    in.ms[0].on = true;
    add_job(&in, 0, 375, 0, 4);
    double power[4] = { 1000, 1000, 0, 1000 };
    int job[4] = { 0, 0, -1, -1 };
    struct bal_plan pl = { .start_ms = in.p.start_ms, .slot_min = 15, .nslots = 4, .nmachines = 1, .njobs = 1,
                           .power_w = power, .job = job };
    double imp = -1, exp = -1;
    unsigned starts = 9;
    bal_plan_score(&in.p, &pl, &imp, &exp, &starts);
    /* slot 0: 1100 W, slot 1: 100 + 500 (125 Wh left), slot 2: -200, slot 3: 600 W */
    assert_true(fabs(imp - (1100 + 600 + 600) * 0.25) < 1e-9);
    assert_true(fabs(exp - 200 * 0.25) < 1e-9);
    assert_int_equal(starts, 1);
    in.p.now_ms += 5 * MIN_MS; /* slot 0 has 10 min left */
    bal_plan_score(&in.p, &pl, &imp, NULL, NULL);
    assert_true(fabs(imp - (1100 * 10 / 60.0 + (100 + 375 * 4 - 1000 * 10 / 15.0) * 0.25 + 600 * 0.25)) < 1e-9);
}

/* ---- DST days: a window 08:00-20:00 local ---- */

static void dst_day(const char *tz, const char *midnight, const char *from, const char *to, const char *noon,
                    size_t nslots)
{
    struct inst in;
    struct bal_plan pl;
    set_tz(tz);
    inst_init(&in, iso(midnight), 5, nslots);
    for (int k = 0; k < 2; k++) {
        add_machine(&in, k ? "comp" : "saw", 1200, k == 1);
        in.m[k].nwindows = 1;
        in.m[k].windows[0] = (struct bal_window){ 0x7F, 8 * 60, 20 * 60 };
        add_job(&in, (size_t)k, 12 * 1200, 0, nslots); /* exactly 12 h */
    }
    make(&in, &pl);
    for (size_t j = 0; j < 2; j++) {
        expect_reason(&pl, j, BAL_JOB_PLANNED, "");
        assert_int_equal(pl.jobs[j].first_ms, iso(from));
        assert_int_equal(pl.jobs[j].end_ms, iso(to));
    }
    bal_plan_free(&pl);
    in.j[0].energy_wh = in.j[1].energy_wh = 12 * 1200 + 100; /* 725 min do not fit */
    make(&in, &pl);
    expect_reason(&pl, 0, BAL_JOB_INFEASIBLE, "window too short: needs 725 min in its windows before the deadline");
    expect_reason(&pl, 1, BAL_JOB_INFEASIBLE, "window too short: needs 725 min in its windows before the deadline");
    bal_plan_free(&pl);
    /* 2 h in a PV peak at local noon-14:00 */
    size_t peak = (size_t)((iso(noon) - iso(midnight)) / (5 * MIN_MS));
    for (size_t s = peak; s < peak + 24; s++)
        in.pv[s] = 3000;
    in.j[0].energy_wh = in.j[1].energy_wh = 2 * 1200;
    make(&in, &pl);
    for (size_t j = 0; j < 2; j++) {
        assert_int_equal(pl.jobs[j].first_ms, iso(noon));
        assert_int_equal(pl.jobs[j].end_ms, iso(noon) + 120 * MIN_MS);
    }
    assert_true(fabs(pl.import_wh) < 1e-9);
    bal_plan_free(&pl);
}

static void test_dst_days(void **state)
{
    (void)state;
    dst_day("Europe/Berlin", "2016-03-27T00:00:00+01:00", "2016-03-27T08:00:00+02:00", "2016-03-27T20:00:00+02:00",
            "2016-03-27T12:00:00+02:00", 23 * 12);
    dst_day("Europe/Berlin", "2016-10-30T00:00:00+02:00", "2016-10-30T08:00:00+01:00", "2016-10-30T20:00:00+01:00",
            "2016-10-30T12:00:00+01:00", 25 * 12);
    dst_day("America/Denver", "2016-03-13T00:00:00-07:00", "2016-03-13T08:00:00-06:00", "2016-03-13T20:00:00-06:00",
            "2016-03-13T12:00:00-06:00", 23 * 12);
    dst_day("America/Denver", "2016-11-06T00:00:00-06:00", "2016-11-06T08:00:00-07:00", "2016-11-06T20:00:00-07:00",
            "2016-11-06T12:00:00-07:00", 25 * 12);
}

/* Starts per day follow local days: two 23 h and 25 h days each allow one start. */
static void test_starts_per_local_day(void **state)
{
    (void)state;
    struct inst in;
    struct bal_plan pl;
    set_tz("Europe/Berlin");
    inst_init(&in, iso("2016-03-26T20:00:00+01:00"), 60, 30);
    add_machine(&in, "kiln", 1000, false);
    in.m[0].max_starts_per_day = 1;
    in.ms[0].starts_today = 1;                     /* 26 March is used up */
    add_job(&in, 0, 2000, 0, 30);
    add_job(&in, 0, 2000, 0, 30);
    in.pv[4] = in.pv[5] = 1000;                    /* 01:00 and 03:00 CEST on the 27th */
    in.pv[20] = in.pv[21] = 1000;
    make(&in, &pl);
    assert_int_equal(pl.jobs[0].status, BAL_JOB_PLANNED);
    assert_int_equal(pl.jobs[1].status, BAL_JOB_PLANNED);
    assert_int_equal(pl.starts, 1);                /* back to back on the 27th, from its midnight */
    assert_int_equal(pl.jobs[0].first_ms, iso("2016-03-27T00:00:00+01:00"));
    assert_int_equal(pl.jobs[1].first_ms, iso("2016-03-27T03:00:00+02:00"));
    bal_plan_free(&pl);
}

/* ---- brute force: a single job's plan is the cheapest that keeps the rules ---- */

static uint32_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static int rnd_in(int lo, int hi)
{
    return lo + (int)(rnd() % (uint32_t)(hi - lo + 1));
}

/* Whether the on-set mask over S slots keeps min on R / min off G (in slots): runs that end before
 * the horizon last min(R, k) slots at least (a job shorter than min on runs in one piece). */
static bool mask_ok(uint32_t mask, int S, int R, int G, int k, bool block)
{
    int runs = 0, last_end = -1000, r_eff = R < k ? R : k;
    for (int a = 0; a < S;) {
        if (!(mask >> a & 1)) {
            a++;
            continue;
        }
        int b = a;
        while (b < S && (mask >> b & 1))
            b++;
        if ((b < S && b - a < r_eff) || a - last_end - 1 < G)
            return false;
        runs++;
        last_end = b - 1;
        a = b;
    }
    return !(block && runs > 1);
}

static double mask_import(const struct inst *in, uint32_t mask, double power_w)
{
    double imp = 0;
    for (size_t s = 0; s < in->p.nslots; s++) {
        double y = in->load[s] - in->pv[s] + ((mask >> s & 1) ? power_w : 0);
        imp += y > 0 ? y * in->p.slot_min / 60.0 : 0;
    }
    return imp;
}

static void test_brute_force_single_job(void **state)
{
    (void)state;
    set_tz("UTC");
    rng_state = 12345;
    for (int it = 0; it < 200; it++) {
        struct inst in;
        struct bal_plan pl;
        int S = rnd_in(4, 12), k = rnd_in(1, S / 2), R = rnd_in(0, 3), G = rnd_in(0, 2);
        bool block = it % 3 == 0;
        inst_init(&in, utc_day(), 15, (size_t)S);
        for (int s = 0; s < S; s++) {
            in.pv[s] = rnd_in(0, 4) * 500;
            in.load[s] = rnd_in(0, 2) * 300;
        }
        add_machine(&in, "m", 1000, !block);
        in.m[0].min_on_s = (unsigned)R * 900;
        in.m[0].min_off_s = (unsigned)G * 900;
        add_job(&in, 0, k * 250.0, 0, (size_t)S);
        make(&in, &pl);
        double best = INFINITY;
        for (uint32_t mask = 0; mask < (1u << S); mask++)
            if (__builtin_popcount(mask) == k && mask_ok(mask, S, R, G, k, block))
                best = fmin(best, mask_import(&in, mask, 1000));
        if (isinf(best)) {
            assert_int_equal(pl.jobs[0].status, BAL_JOB_INFEASIBLE);
        } else if (fabs(pl.import_wh - best) > 1e-6) {
            fail_msg("instance %d (S %d k %d R %d G %d block %d): import %g, best %g", it, S, k, R, G, block,
                     pl.import_wh, best);
        }
        bal_plan_free(&pl);
    }
}

/* ---- generated instances, feasible by construction ---- */

/* Each machine gets a hidden schedule first: its jobs as blocks in its windows, in order, min off
 * apart, with earliest times and deadlines around them that rise together (nested windows, in which
 * placing each job as early as it can in deadline order always succeeds). So every required job of
 * a feasible instance has a plan. Every fifth instance instead gets a grid limit that binds. */

struct gen {
    bool feasible;
    uint8_t allowed[MAXM][MAXS];   /* windows by the test's own reading of local time */
};

/* Whether every minute of [t, t + slot_min) is in one of m's windows (read per minute). */
static bool tst_allowed(const struct bal_machine *m, int64_t t_ms, int slot_min)
{
    if (m->nwindows == 0)
        return true;
    for (int k = 0; k < slot_min; k++) {
        time_t t = (time_t)((t_ms + k * MIN_MS) / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        int wd = (tm.tm_wday + 6) % 7, minute = tm.tm_hour * 60 + tm.tm_min;
        bool ok = false;
        for (size_t w = 0; w < m->nwindows && !ok; w++)
            ok = (m->windows[w].days_mask >> wd & 1) && minute >= m->windows[w].from_min &&
                 minute < m->windows[w].to_min;
        if (!ok)
            return false;
    }
    return true;
}

static int64_t slot_start(const struct inst *in, size_t s)
{
    return in->p.start_ms + (int64_t)s * in->p.slot_min * MIN_MS;
}

static double slot_hours(const struct inst *in, size_t s)
{
    int64_t from = s == 0 && in->p.now_ms > in->p.start_ms ? in->p.now_ms : slot_start(in, s);
    return (double)(slot_start(in, s + 1) - from) / 3600000.0;
}

static void gen_site(struct inst *in, int it)
{
    static const char *tzs[] = { "UTC", "Europe/Berlin", "America/Denver" };
    static const char *days[] = { "2016-03-26T00:00:00Z", "2016-03-12T00:00:00Z", "2016-10-29T00:00:00Z",
                                  "2016-11-05T00:00:00Z", "2016-07-15T00:00:00Z" };
    static const int slots[] = { 5, 10, 15, 30, 60 };
    set_tz(tzs[it % 3]);
    int slot_min = slots[rnd_in(0, 4)], hours = rnd_in(6, 48);
    size_t S = (size_t)(hours * 60 / slot_min);
    inst_init(in, iso(days[rnd_in(0, 4)]) + rnd_in(0, 47) * 3600000LL, slot_min, S > 576 ? 576 : S);
    if (it % 3 == 0)
        in->p.now_ms += rnd_in(0, slot_min - 1) * MIN_MS;
    double peak_w = rnd_in(0, 16) * 500, load_w = rnd_in(2, 15) * 100;
    for (size_t s = 0; s < in->p.nslots; s++) {
        time_t t = (time_t)(slot_start(in, s) / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        double h = tm.tm_hour + tm.tm_min / 60.0;
        in->pv[s] = h > 6 && h < 20 ? round(peak_w * sin(M_PI * (h - 6) / 14)) : 0;
        load_w = fmin(3000, fmax(100, load_w + rnd_in(-2, 2) * 50));
        in->load[s] = load_w;
    }
}

static void gen_machine(struct inst *in, struct gen *g, size_t k)
{
    static const unsigned on_s[] = { 0, 300, 900, 1800, 3600 }, off_s[] = { 0, 300, 900, 1800 };
    struct bal_machine *m = &in->m[add_machine(in, "m", rnd_in(5, 60) * 100, rnd() % 2)];
    snprintf(m->id, sizeof m->id, "m%zu", k);
    if (rnd() % 4 == 0) {
        static const double steps[] = { 0, 100, 500 };
        m->min_power_w = round(m->power_w * 0.3 / 100) * 100;
        m->step_w = steps[rnd_in(0, 2)];
        if (m->step_w > m->power_w - m->min_power_w)
            m->step_w = 0;
    }
    m->min_on_s = on_s[rnd_in(0, 4)];
    m->min_off_s = off_s[rnd_in(0, 3)];
    m->max_starts_per_day = rnd() % 2 ? 0 : 40;
    m->priority = rnd_in(-2, 2);
    if (rnd() % 5 < 2) {
        m->nwindows = 1;
        m->windows[0] = (struct bal_window){ 0x7F, (uint16_t)(rnd_in(5, 9) * 60), (uint16_t)(rnd_in(17, 22) * 60) };
    }
    for (size_t s = 0; s < in->p.nslots; s++)
        g->allowed[k][s] = tst_allowed(m, slot_start(in, s), in->p.slot_min);
}

/* A running job on machine k from slot 0 for kslots slots; returns its last slot. */
static long gen_running(struct inst *in, struct gen *g, size_t k, int *dl_slot)
{
    struct bal_machine *m = &in->m[k];
    int kslots = rnd_in(1, 6);
    if ((size_t)kslots * 4 > in->p.nslots)
        kslots = 1;
    if (m->interruptible) {
        m->nwindows = 0; /* it runs now: its windows allow it */
        memset(g->allowed[k], 1, sizeof g->allowed[k]);
    }
    double cap_wh = m->power_w * (slot_hours(in, 0) + (kslots - 1) * in->p.slot_min / 60.0);
    size_t j = add_job(in, k, cap_wh * (0.6 + 0.4 * rnd_in(0, 10) / 10.0), 0, 0);
    in->j[j].done_wh = rnd_in(0, 3) * 100;
    in->j[j].energy_wh += in->j[j].done_wh;
    in->j[j].running = true;
    in->j[j].earliest_ms = in->p.start_ms - 3600000;
    *dl_slot = kslots + rnd_in(0, (int)in->p.nslots / 4);
    if (*dl_slot > (int)in->p.nslots)
        *dl_slot = (int)in->p.nslots;
    in->j[j].deadline_ms = slot_start(in, (size_t)*dl_slot);
    in->ms[k].on = true;
    in->ms[k].since_ms = in->p.now_ms - rnd_in(1, 120) * MIN_MS;
    in->ms[k].job = (int)j;
    return kslots - 1;
}

/* The first slot from a where k slots of machine m's windows are free, or -1. */
static long fit_from(const struct inst *in, const struct gen *g, size_t m, size_t a, size_t k)
{
    for (; a + k <= in->p.nslots; a++) {
        size_t n = 0;
        while (n < k && g->allowed[m][a + n])
            n++;
        if (n == k)
            return (long)a;
    }
    return -1;
}

static void gen_chain_job(struct inst *in, size_t m, long a, size_t k, int *e_slot, int *d_slot)
{
    const struct bal_machine *mm = &in->m[m];
    *e_slot = *e_slot + rnd_in(0, (int)a - *e_slot);
    int d = (int)(a + (long)k) + rnd_in(0, (int)in->p.nslots / 4);
    *d_slot = d > *d_slot ? d : *d_slot;
    if (*d_slot > (int)in->p.nslots)
        *d_slot = (int)in->p.nslots;
    double need = (k - rnd_in(0, 8) / 10.0) * mm->power_w * in->p.slot_min / 60.0;
    size_t j = add_job(in, m, need, (size_t)*e_slot, (size_t)*d_slot);
    if (rnd() % 4 == 0) {
        in->j[j].done_wh = round(need * 0.3);
        in->j[j].energy_wh += in->j[j].done_wh;
    }
    int kind = rnd_in(0, 9);
    if (kind == 8)
        in->j[j].required = false;
    if (kind == 9) {
        in->j[j].required = false;
        in->j[j].surplus_only = true;
    }
}

static void gen_chain(struct inst *in, struct gen *g, size_t m)
{
    const struct bal_machine *mm = &in->m[m];
    int64_t slot_ms = in->p.slot_min * MIN_MS;
    long G = (long)((mm->min_off_s * 1000LL + slot_ms - 1) / slot_ms), prev_end = -1000, cursor = 1;
    int e_slot = 1, d_slot = 0;
    int r = rnd_in(0, 9);
    if (r >= 6 && r < 8) {
        in->ms[m].since_ms = in->p.now_ms - rnd_in(1, 60) * MIN_MS;
        while (slot_start(in, (size_t)cursor) < in->ms[m].since_ms + mm->min_off_s * 1000LL)
            cursor++;
    } else if (r >= 8) {
        prev_end = gen_running(in, g, m, &d_slot);
        cursor = prev_end + 1;
    }
    for (int i = rnd_in(1, 3); i > 0; i--) {
        size_t k = (size_t)rnd_in(1, (int)fmax(1, fmin(in->p.nslots / 6.0, 360.0 / in->p.slot_min)));
        long from = cursor + (prev_end > -1000 && cursor - prev_end - 1 < G ? G - (cursor - prev_end - 1) : 0);
        long a = fit_from(in, g, m, (size_t)(from + rnd_in(0, (int)in->p.nslots / 8)), k);
        if (a < 0)
            break;
        gen_chain_job(in, m, a, k, &e_slot, &d_slot);
        cursor = a + (long)k;
        prev_end = cursor - 1;
    }
}

static void gen_grid_limit(struct inst *in, struct gen *g, int it)
{
    double top = 0;
    g->feasible = it % 5 != 4;
    for (size_t s = 0; s < in->p.nslots; s++) {
        double fixed_w = 0;
        for (size_t m = 0; m < in->p.nmachines; m++)
            fixed_w += in->ms[m].on && !in->m[m].interruptible ? in->m[m].power_w : 0;
        top = fmax(top, in->load[s] - in->pv[s] + fixed_w);
    }
    if (g->feasible)
        in->p.grid_limit_w = rnd() % 2 ? 0 : top + 60000 * 8;
    else
        in->p.grid_limit_w = top + rnd_in(0, 30) * 100;
}

static void gen_instance(struct inst *in, struct gen *g, int it)
{
    memset(g, 0, sizeof *g);
    gen_site(in, it);
    size_t nm = (size_t)rnd_in(1, 5);
    for (size_t m = 0; m < nm; m++)
        gen_machine(in, g, m);
    for (size_t m = 0; m < nm; m++)
        gen_chain(in, g, m);
    gen_grid_limit(in, g, it);
}

/* ---- the invariants ---- */

struct run {
    size_t a, b;
};

/* Whether a run shorter than min on is the whole of every job in it, each shorter than min on. */
static bool short_run_ok(const struct inst *in, const struct bal_plan *pl, size_t m, struct run r, long R)
{
    size_t S = in->p.nslots;
    for (size_t s = r.a; s < r.b; s++) {
        int j = pl->job[m * S + s];
        long n = 0;
        for (size_t t = 0; t < S; t++)
            if (pl->job[m * S + t] == j) {
                if (t < r.a || t >= r.b)
                    return false;
                n++;
            }
        if (n >= R)
            return false;
    }
    return true;
}

static void check_runs(const struct inst *in, const struct bal_plan *pl, size_t m, const int *day)
{
    size_t S = in->p.nslots;
    const struct bal_machine *mm = &in->m[m];
    int64_t slot_ms = in->p.slot_min * MIN_MS;
    long R = (long)((mm->min_on_s * 1000LL + slot_ms - 1) / slot_ms), G = (long)((mm->min_off_s * 1000LL + slot_ms - 1) / slot_ms);
    long last_end = in->ms[m].on ? -1 : -1000;
    int starts[MAXS] = { 0 };
    starts[0] = (int)in->ms[m].starts_today;
    for (size_t a = 0; a < S;) {
        if (pl->power_w[m * S + a] <= 0) {
            a++;
            continue;
        }
        struct run r = { a, a };
        while (r.b < S && pl->power_w[m * S + r.b] > 0)
            r.b++;
        if (!(a == 0 && in->ms[m].on)) {
            starts[day[a]]++;
            if (r.b < S && (long)(r.b - r.a) < R && !short_run_ok(in, pl, m, r, R))
                fail_msg("machine %zu: run %zu..%zu shorter than min on %ld", m, r.a, r.b, R);
            if (last_end > -1000 && (long)a - last_end - 1 < G)
                fail_msg("machine %zu: pause before %zu shorter than min off %ld", m, a, G);
            if (!in->ms[m].on && in->ms[m].since_ms != INT64_MIN)
                assert_true((a == 0 ? in->p.now_ms : slot_start(in, a)) >= in->ms[m].since_ms + mm->min_off_s * 1000LL);
        }
        last_end = (long)r.b - 1;
        a = r.b;
    }
    for (size_t d = 0; d < S && mm->max_starts_per_day; d++)
        assert_true(starts[d] <= (int)mm->max_starts_per_day);
}

static void check_levels(const struct inst *in, const struct bal_plan *pl, size_t m)
{
    const struct bal_machine *mm = &in->m[m];
    bool mod = mm->min_power_w > 0 && mm->min_power_w < mm->power_w;
    for (size_t s = 0; s < in->p.nslots; s++) {
        double p = pl->power_w[m * in->p.nslots + s];
        int j = pl->job[m * in->p.nslots + s];
        assert_true((p > 0) == (j >= 0));
        if (j < 0)
            continue;
        assert_int_equal(in->j[j].machine, m);
        if (!mod) {
            assert_true(p == mm->power_w);
        } else {
            assert_true(p >= mm->min_power_w - 1e-9 && p <= mm->power_w + 1e-9);
            double k = mm->step_w > 0 ? (p - mm->min_power_w) / mm->step_w : 0;
            assert_true(fabs(k - round(k)) < 1e-6 || p == mm->power_w); /* its levels, or its maximum */
        }
    }
}

/* Slots, energy, windows, contiguity and status of job j. */
static void check_job(const struct inst *in, const struct gen *g, const struct bal_plan *pl, size_t j)
{
    const struct bal_job *jb = &in->j[j];
    const struct bal_machine *mm = &in->m[jb->machine];
    size_t S = in->p.nslots, m = jb->machine, n = 0, first = S, last = 0;
    double need = jb->energy_wh - jb->done_wh, e = 0, e_last = 0;
    bool fixed = jb->running && !mm->interruptible;
    for (size_t s = 0; s < S; s++) {
        if (pl->job[m * S + s] != (int)j)
            continue;
        n++;
        first = s < first ? s : first;
        last = s;
        e_last = pl->power_w[m * S + s] * slot_hours(in, s);
        e += e_last;
        if (fixed)
            continue;
        assert_true(jb->running || (s == 0 ? in->p.now_ms : slot_start(in, s)) >= jb->earliest_ms);
        assert_true(slot_start(in, s + 1) <= jb->deadline_ms);
        assert_true(g->allowed[m][s]);
        if (jb->surplus_only && !jb->required) {
            double others = 0;
            for (size_t o = 0; o < in->p.nmachines; o++)
                others += o == m ? 0 : pl->power_w[o * S + s];
            assert_true(in->pv[s] - in->load[s] - others >= pl->power_w[m * S + s] - 1e-6);
        }
    }
    if (n == 0) {
        assert_true(pl->jobs[j].status != BAL_JOB_PLANNED);
        assert_int_equal(pl->jobs[j].first_ms, 0);
        if (g->feasible && jb->required && need > 1e-6)
            fail_msg("job %zu (%s): %d \"%s\" in a feasible instance", j, jb->id, pl->jobs[j].status, pl->jobs[j].reason);
        return;
    }
    assert_int_equal(pl->jobs[j].status, BAL_JOB_PLANNED);
    assert_int_equal(pl->jobs[j].first_ms, slot_start(in, first));
    assert_int_equal(pl->jobs[j].end_ms, slot_start(in, last + 1));
    if (!(jb->surplus_only && !jb->required))
        assert_true(e >= need - 1e-6);
    assert_true(e - e_last < need - 1e-9); /* no slot beyond the energy */
    if (!mm->interruptible || fixed)
        assert_int_equal(last - first + 1, n);
    if (fixed)
        assert_int_equal(first, 0);
}

static const char *const reasons[] = { "deadline passed", "deadline too close: ", "window too short: ",
                                       "grid limit: ", "max starts reached", "machine busy: " };

static void check_reason(const struct bal_plan *pl, size_t j)
{
    if (pl->jobs[j].status != BAL_JOB_INFEASIBLE)
        return;
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
        if (!strncmp(pl->jobs[j].reason, reasons[i], strlen(reasons[i])))
            return;
    fail_msg("job %zu: unexpected reason \"%s\"", j, pl->jobs[j].reason);
}

/* Import by the test's own reading of the energy rule, and the grid limit. */
static void check_grid(const struct inst *in, const struct bal_plan *pl)
{
    size_t S = in->p.nslots;
    double rem[MAXJ], imp = 0;
    for (size_t j = 0; j < in->p.njobs; j++)
        rem[j] = in->j[j].energy_wh - in->j[j].done_wh;
    for (size_t s = 0; s < S; s++) {
        double h = slot_hours(in, s), y = in->load[s] - in->pv[s], inst_w = y;
        for (size_t m = 0; m < in->p.nmachines; m++) {
            int j = pl->job[m * S + s];
            if (j < 0)
                continue;
            double e = fmin(pl->power_w[m * S + s] * h, rem[j]);
            rem[j] -= e;
            y += e / h;
            inst_w += pl->power_w[m * S + s];
        }
        imp += y > 0 ? y * h : 0;
        if (in->p.grid_limit_w > 0)
            assert_true(inst_w <= in->p.grid_limit_w + 1e-6);
    }
    assert_true(fabs(imp - pl->import_wh) < 1e-6 * (1 + imp));
}

static void check_plan(const struct inst *in, const struct gen *g, const struct bal_plan *pl)
{
    int day[MAXS];
    struct tm prev = { 0 };
    for (size_t s = 0; s < in->p.nslots; s++) {
        time_t t = (time_t)(slot_start(in, s) / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        day[s] = s == 0 ? 0 : day[s - 1] + (tm.tm_mday != prev.tm_mday);
        prev = tm;
    }
    for (size_t m = 0; m < in->p.nmachines; m++) {
        check_levels(in, pl, m);
        check_runs(in, pl, m, day);
    }
    for (size_t j = 0; j < in->p.njobs; j++) {
        check_job(in, g, pl, j);
        check_reason(pl, j);
    }
    check_grid(in, pl);
}

static void test_generated_invariants(void **state)
{
    (void)state;
    static struct inst in;
    static struct gen g;
    int feasible = 0, planned = 0, infeasible = 0;
    rng_state = 20160327;
    for (int it = 0; it < 300; it++) {
        struct bal_plan pl, again;
        gen_instance(&in, &g, it);
        make(&in, &pl);
        check_plan(&in, &g, &pl);
        if (it % 10 == 0) { /* the same problem gives the same plan */
            make(&in, &again);
            assert_memory_equal(pl.power_w, again.power_w, in.p.nmachines * in.p.nslots * sizeof(double));
            bal_plan_free(&again);
        }
        feasible += g.feasible;
        for (size_t j = 0; j < in.p.njobs; j++) {
            planned += pl.jobs[j].status == BAL_JOB_PLANNED;
            infeasible += pl.jobs[j].status == BAL_JOB_INFEASIBLE;
        }
        bal_plan_free(&pl);
    }
    assert_int_equal(feasible, 240);
    print_message("generated: %d planned, %d infeasible jobs\n", planned, infeasible);
    assert_true(planned > 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_to_pv_peak),
        cmocka_unit_test(test_window_too_short),
        cmocka_unit_test(test_deadline_reasons),
        cmocka_unit_test(test_competing_machines),
        cmocka_unit_test(test_ties_go_to_pv),
        cmocka_unit_test(test_modulating_fills_surplus),
        cmocka_unit_test(test_grid_limit),
        cmocka_unit_test(test_prices),
        cmocka_unit_test(test_running_jobs),
        cmocka_unit_test(test_last_run_holds_min_on),
        cmocka_unit_test(test_min_on_off_starts),
        cmocka_unit_test(test_jobs_share_a_run),
        cmocka_unit_test(test_latest_start),
        cmocka_unit_test(test_rescue_when_greedy_fails),
        cmocka_unit_test(test_optional_jobs),
        cmocka_unit_test(test_score_by_hand),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_dst_days),
        cmocka_unit_test(test_starts_per_local_day),
        cmocka_unit_test(test_brute_force_single_job),
        cmocka_unit_test(test_generated_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
