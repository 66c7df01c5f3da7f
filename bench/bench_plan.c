/* bench_plan: how long the planner takes for a large workshop: 20 machines (kilns, lasers,
 * compressors, printer farms, EV chargers; some with 08:00-20:00 windows) over 48 h of 5-min slots,
 * two days of jobs each, under a 12 kWp PV forecast with clouds. Fixed seed, a bounded number of
 * runs; prints p50 and max (never pass/fail on time). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

#include "bal_plan.h"
#include "fg_clock.h"

#define NM 20
#define NS 576
#define SLOT_MIN 5
#define RUNS 60
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL

struct bench {
    struct bal_problem p;
    double pv[NS], load[NS];
    struct bal_machine m[NM];
    struct bal_mstate ms[NM];
    struct bal_job j[2 * NM];
};

static uint32_t rng = 4242;

static double rnd01(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return (rng & 0xFFFFFF) / (double)0x1000000;
}

/* A machine of kind k (0 kiln, 1 laser, 2 compressor, 3 printers, 4 EV charger) and its job of a day:
 * power, duration or energy, earliest and deadline in local hours. */
static void machine_of_kind(struct bench *b, size_t i, int k)
{
    static const char *names[] = { "kiln", "laser", "comp", "print", "ev" };
    struct bal_machine *m = &b->m[i];
    memset(m, 0, sizeof *m);
    snprintf(m->id, sizeof m->id, "%s%zu", names[k], i);
    static const double power_w[] = { 6000, 3000, 2500, 1500, 11000 };
    m->power_w = power_w[k];
    m->interruptible = k == 2 || k == 4;
    m->min_on_s = k == 2 || k == 4 ? 900 : 600;
    m->min_off_s = 300;
    m->min_power_w = k == 4 ? 4000 : 0;
    m->priority = (int)(rnd01() * 3);
    if (k == 1 || k == 2) {
        m->nwindows = 1;
        m->windows[0] = (struct bal_window){ 0x7F, 8 * 60, 20 * 60 };
    }
    b->ms[i] = (struct bal_mstate){ .since_ms = INT64_MIN, .job = -1 };
}

static void job_of_kind(struct bench *b, size_t i, int k, int day, int64_t midnight_ms)
{
    static const double hours[] = { 6, 2, 3, 8, 0 }, from_h[] = { 7, 7, 8, 7, 7 }, to_h[] = { 18, 17, 20, 19, 17 };
    struct bal_job *j = &b->j[b->p.njobs++];
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s@%d", b->m[i].id, day);
    j->machine = i;
    j->cfg = i;
    j->energy_wh = k == 4 ? 20000 * (0.5 + rnd01()) : hours[k] * b->m[i].power_w;
    j->earliest_ms = midnight_ms + (int64_t)((from_h[k] + rnd01()) * HOUR_MS);
    j->deadline_ms = midnight_ms + (int64_t)(to_h[k] * HOUR_MS);
    j->required = !(k == 2 && rnd01() < 0.5);
    j->surplus_only = !j->required;
}

static void forecast(struct bench *b)
{
    double cloud = 1, load_w = 4500;
    for (size_t s = 0; s < NS; s++) {
        time_t t = (time_t)((b->p.start_ms + (int64_t)s * SLOT_MIN * MIN_MS) / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        double h = tm.tm_hour + tm.tm_min / 60.0;
        cloud = fmin(1, fmax(0.2, cloud + (rnd01() - 0.5) * 0.2));
        b->pv[s] = h > 6 && h < 19 ? 12000 * 0.8 * sin(M_PI * (h - 6) / 13) * cloud : 0;
        load_w = fmin(9000, fmax(1500, load_w + (rnd01() - 0.5) * 600));
        b->load[s] = load_w;
    }
}

static void build(struct bench *b, int64_t midnight_ms)
{
    memset(&b->p, 0, sizeof b->p);
    b->p.start_ms = midnight_ms + 6 * HOUR_MS;
    b->p.now_ms = b->p.start_ms + (int64_t)(rnd01() * SLOT_MIN * MIN_MS);
    b->p.slot_min = SLOT_MIN;
    b->p.nslots = NS;
    b->p.pv_w = b->pv;
    b->p.load_w = b->load;
    b->p.grid_limit_w = 43000;
    b->p.machines = b->m;
    b->p.nmachines = NM;
    b->p.mstate = b->ms;
    b->p.jobs = b->j;
    for (size_t i = 0; i < NM; i++)
        machine_of_kind(b, i, (int)(i % 5));
    for (int day = 0; day < 2; day++)
        for (size_t i = 0; i < NM; i++)
            job_of_kind(b, i, (int)(i % 5), day, midnight_ms + day * 24 * HOUR_MS);
    forecast(b);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    static struct bench b;
    double ms[RUNS];
    int64_t midnight_ms = 0;
    char err[200];
    setenv("TZ", "America/Denver", 1);
    tzset();
    fg_parse_iso8601_ms("2016-07-11T00:00:00-06:00", &midnight_ms);
    unsigned planned = 0, required = 0, surplus = 0, surplus_only = 0;
    for (int r = 0; r < RUNS; r++) {
        struct bal_plan pl;
        build(&b, midnight_ms + (r % 5) * 24 * HOUR_MS);
        int64_t t0 = fg_mono_ns();
        if (bal_plan_make(&b.p, &pl, err, sizeof err) != 0) {
            fprintf(stderr, "bench_plan: %s\n", err);
            return 1;
        }
        ms[r] = (double)(fg_mono_ns() - t0) / 1e6;
        for (size_t j = 0; j < b.p.njobs; j++) {
            bool ok = pl.jobs[j].status == BAL_JOB_PLANNED;
            planned += b.j[j].required && ok;
            required += b.j[j].required;
            surplus += !b.j[j].required && ok;
            surplus_only += !b.j[j].required;
        }
        bal_plan_free(&pl);
    }
    qsort(ms, RUNS, sizeof *ms, cmp_double);
    printf("planner: %d machines x 48 h x %d-min slots (%d slots, %zu jobs): p50 %.1f ms, max %.1f ms over %d runs\n",
           NM, SLOT_MIN, NS, b.p.njobs, ms[RUNS / 2], ms[RUNS - 1], RUNS);
    printf("planner: required jobs planned %u of %u (a 43 kW grid limit under 96 kW of machines), surplus-only jobs"
           " given surplus %u of %u\n", planned, required, surplus, surplus_only);
    return 0;
}
