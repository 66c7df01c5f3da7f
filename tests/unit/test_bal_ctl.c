/* Unit tests of the live controller (bal_ctl) and its messages (bal_msg): nothing switched before two
 * readings, energy credited and jobs finished or missed with exact reasons, stale data and an offline
 * collector stopping optional loads, requests the planner cannot fit rejected, cancelling, the
 * shutdown rules, restoring after a restart, a clock jump that must not cut min on, min on/off under
 * an oscillating PV, reconfiguration, advice levels, and the exact JSON of each message. */
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
#include <unistd.h>

#include "bal_ctl.h"
#include "bal_model.h"
#include "bal_msg.h"

#define T0 1780272000000LL /* 2026-06-01T00:00:00Z, a Monday */
#define S 1000LL
#define MIN (60 * S)

static char cfg_path[64];

/* Loads a site config of one or more machines/jobs (UTC site, no PV array). */
static struct bal_config *load(const char *machines, const char *jobs, const char *balancer)
{
    char text[8192], err[4096] = "";
    snprintf(text, sizeof text,
             "{\"site\":{\"id\":\"t\",\"timezone\":\"UTC\"},\"machines\":[%s],\"jobs\":[%s],"
             "\"balancer\":{\"state_file\":\"st.json\"%s%s}}",
             machines, jobs, balancer ? "," : "", balancer ? balancer : "");
    FILE *f = fopen(cfg_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    struct bal_config *c = bal_config_load(cfg_path, err, sizeof err);
    if (!c)
        fprintf(stderr, "config: %s\n", err);
    assert_non_null(c);
    return c;
}

static int setup(void **state)
{
    (void)state;
    snprintf(cfg_path, sizeof cfg_path, "/tmp/test_bal_ctl.%d.json", (int)getpid());
    bal_tz_apply("UTC");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(cfg_path);
    return 0;
}

static int step(struct bal_ctl *c, int64_t t, struct bal_cmd *out)
{
    char err[200];
    int n = bal_ctl_step(c, t, out, BAL_MAX_MACHINES, NULL, err, sizeof err);
    assert_true(n >= 0);
    return n;
}

/* A controller for cfg at t_ms (asserted to exist). */
static struct bal_ctl *ctl_at(const struct bal_config *cfg, int64_t t_ms)
{
    char err[200] = "";
    struct bal_ctl *c = bal_ctl_new(cfg, t_ms, err, sizeof err);
    if (!c)
        fail_msg("bal_ctl_new: %s", err);
    return c;
}

/* The two fresh readings (T0 + 1 s and + 2 s) that allow switching. */
static void two_readings(struct bal_ctl *c, double pv_w, double grid_w, double load_w)
{
    bal_ctl_balance(c, T0 + 1 * S, pv_w, grid_w, load_w);
    bal_ctl_balance(c, T0 + 2 * S, pv_w, grid_w, load_w);
}

static const struct bal_cjob *job(const struct bal_ctl *c, const char *id)
{
    for (size_t j = 0; j < bal_ctl_njobs(c); j++)
        if (strcmp(bal_ctl_job(c, j)->j.id, id) == 0)
            return bal_ctl_job(c, j);
    fail_msg("no job %s", id);
    return NULL;
}

#define KILN "{\"id\":\"kiln\",\"power_w\":1000,\"min_on_s\":600,\"min_off_s\":300}"
#define ONE_HOUR_JOB "{\"id\":\"fire\",\"machine\":\"kiln\",\"duration_min\":60,\"earliest\":\"2026-06-01T00:00:00Z\"," \
                     "\"deadline\":\"2026-06-01T01:00:00Z\"}"

/* A required job whose latest start is now: the deadline guard starts it, but only after the second
 * fresh reading; it then finishes 20 s late and is reported missed with that reason. */
static void test_two_readings_then_deadline(void **state)
{
    (void)state;
    struct bal_config *cfg = load(KILN, ONE_HOUR_JOB, NULL);
    struct bal_ctl *c = ctl_at(cfg, T0);
    struct bal_cmd cmd[BAL_MAX_MACHINES];
    assert_int_equal(step(c, T0, cmd), 0);
    bal_ctl_balance(c, T0 + 1 * S, 0, 500, 500);
    assert_int_equal(step(c, T0 + 10 * S, cmd), 0);
    bal_ctl_balance(c, T0 + 11 * S, 0, 500, 500);
    assert_int_equal(step(c, T0 + 20 * S, cmd), 1);
    assert_true(cmd[0].on);
    assert_int_equal(cmd[0].reason, BAL_R_DEADLINE);
    assert_true(cmd[0].power_w == 1000);
    assert_int_equal(job(c, "fire")->state, BAL_JS_RUNNING);
    int64_t t = T0 + 20 * S;
    for (int k = 1; k <= 60; k++) {
        bal_ctl_balance(c, t + k * MIN - S, 0, 1500, 1500);
        int n = step(c, t + k * MIN, cmd);
        assert_int_equal(n, k == 60 ? 1 : 0);
    }
    assert_false(cmd[0].on);
    assert_int_equal(cmd[0].reason, BAL_R_DONE);
    const struct bal_cjob *j = job(c, "fire");
    assert_int_equal(j->state, BAL_JS_MISSED);
    assert_string_equal(j->reason, "finished 1 min after the deadline");
    assert_true(fabs(j->j.done_wh - 1000) < 1e-9);
    assert_int_equal(j->done_ms, T0 + 20 * S + 60 * MIN);
    bal_ctl_free(c);
    bal_config_free(cfg);
}

/* Steps 7 minutes apart: the job is complete 60 min after its start, between two steps; it is done at
 * that instant, not at the step that notices it. */
static void test_done_instant(void **state)
{
    (void)state;
    struct bal_config *cfg = load(KILN, "{\"id\":\"fire\",\"machine\":\"kiln\",\"duration_min\":60,"
                                        "\"earliest\":\"2026-06-01T00:00:00Z\",\"deadline\":\"2026-06-01T03:00:00Z\"}",
                                  "\"interval_s\":420");
    struct bal_ctl *c = ctl_at(cfg, T0);
    struct bal_cmd cmd[BAL_MAX_MACHINES];
    int64_t start = 0;
    for (int64_t t = T0 + 7 * MIN; t <= T0 + 180 * MIN; t += 7 * MIN) {
        bal_ctl_balance(c, t - 2 * S, 0, 500, 500);
        bal_ctl_balance(c, t - S, 0, 500, 500);
        if (step(c, t, cmd) == 1 && cmd[0].on)
            start = t;
    }
    assert_true(start > 0);
    const struct bal_cjob *j = job(c, "fire");
    assert_int_equal(j->state, BAL_JS_DONE);
    assert_int_equal(j->done_ms, start + 60 * MIN);
    bal_ctl_free(c);
    bal_config_free(cfg);
}

#define COMP "{\"id\":\"comp\",\"power_w\":1000,\"interruptible\":true}"
#define TOPUP "{\"id\":\"topup\",\"machine\":\"comp\",\"duration_min\":60,\"earliest\":\"2026-06-01T00:00:00Z\"," \
              "\"deadline\":\"2026-06-01T08:00:00Z\",\"required\":false,\"surplus_only\":true}"
#define FAST "\"surplus_delay_s\":0,\"surplus_margin_w\":0,\"stale_after_s\":30"

/* An optional load runs on surplus and stops once readings are older than stale_after_s; then also
 * while the collector says it is offline although readings keep coming. */
static void test_stale_stops_optional(void **state)
{
    (void)state;
    struct bal_config *cfg = load(COMP, TOPUP, FAST);
    struct bal_ctl *c = ctl_at(cfg, T0);
    struct bal_cmd cmd[BAL_MAX_MACHINES];
    two_readings(c, 3000, -2000, 1000);
    assert_int_equal(step(c, T0 + 3 * S, cmd), 1);
    assert_true(cmd[0].on);
    assert_int_equal(cmd[0].reason, BAL_R_SURPLUS);
    assert_false(bal_ctl_stale(c, T0 + 32 * S));
    assert_int_equal(step(c, T0 + 32 * S, cmd), 0);
    assert_true(bal_ctl_stale(c, T0 + 32 * S + 1));
    assert_int_equal(step(c, T0 + 33 * S, cmd), 1);
    assert_false(cmd[0].on);
    assert_int_equal(cmd[0].reason, BAL_R_STALE);
    /* fresh again: it restarts on surplus (min_off 0); the collector going offline stops it at once */
    bal_ctl_balance(c, T0 + 40 * S, 3000, -2000, 1000);
    assert_int_equal(step(c, T0 + 41 * S, cmd), 1);
    assert_true(cmd[0].on);
    bal_ctl_collector(c, false);
    bal_ctl_balance(c, T0 + 50 * S, 3000, -1000, 2000);
    assert_int_equal(step(c, T0 + 51 * S, cmd), 1);
    assert_false(cmd[0].on);
    assert_int_equal(cmd[0].reason, BAL_R_STALE);
    bal_ctl_free(c);
    bal_config_free(cfg);
}

/* A requested job that cannot fit before its deadline is rejected with the planner's reason; a
 * second one with the same id is refused; a queued one can be cancelled, a running block cannot. */
static void test_request_reject_and_cancel(void **state)
{
    (void)state;
    struct bal_config *cfg = load(KILN, "", FAST);
    char err[200], reason[200];
    struct bal_ctl *c = bal_ctl_new(cfg, T0, err, sizeof err);
    struct bal_cmd cmd[BAL_MAX_MACHINES];
    struct bal_job j = { .id = "late", .machine = 0, .earliest_ms = T0, .deadline_ms = T0 + 30 * MIN,
                         .energy_wh = 1000, .required = true };
    assert_int_equal(bal_ctl_add_job(c, &j, reason, sizeof reason), 0);
    assert_int_equal(bal_ctl_add_job(c, &j, reason, sizeof reason), -EEXIST);
    assert_string_equal(reason, "a job with id \"late\" exists");
    step(c, T0, cmd);
    assert_int_equal(job(c, "late")->state, BAL_JS_REJECTED);
    assert_string_equal(job(c, "late")->reason, "deadline too close: needs 60 min, 30 left");
    struct bal_job k = { .id = "fine", .machine = 0, .earliest_ms = T0, .deadline_ms = T0 + 300 * MIN,
                         .energy_wh = 1000, .required = true };
    assert_int_equal(bal_ctl_add_job(c, &k, reason, sizeof reason), 0);
    step(c, T0 + 10 * S, cmd);
    assert_int_equal(job(c, "fine")->state, BAL_JS_PLANNED);
    assert_int_equal(bal_ctl_cancel(c, "fine", reason, sizeof reason), 0);
    assert_int_equal(job(c, "fine")->state, BAL_JS_REJECTED);
    assert_string_equal(job(c, "fine")->reason, "cancelled");
    assert_int_equal(bal_ctl_cancel(c, "nope", reason, sizeof reason), -ENOENT);
    assert_string_equal(reason, "no job \"nope\"");
    bal_ctl_free(c);
    bal_config_free(cfg);
}

/* SIGTERM: an optional load goes off, a running block stays on, "on" and "keep" rules hold. */
static void test_shutdown_rules(void **state)
{
    (void)state;
    struct bal_config *cfg = load(KILN "," COMP ",{\"id\":\"fan\",\"power_w\":100,\"shutdown\":\"on\"},"
                                       "{\"id\":\"lamp\",\"power_w\":100,\"shutdown\":\"keep\"}",
                                  ONE_HOUR_JOB "," TOPUP, FAST);
    struct bal_ctl *c = ctl_at(cfg, T0);
    struct bal_cmd cmd[BAL_MAX_MACHINES];
    two_readings(c, 5000, -4000, 1000);
    assert_int_equal(step(c, T0 + 3 * S, cmd), 2); /* kiln by its deadline guard, comp on surplus */
    size_t n = bal_ctl_shutdown(c, T0 + 4 * S, cmd, BAL_MAX_MACHINES);
    assert_int_equal(n, 2);
    assert_int_equal(cmd[0].machine, 1); /* comp off */
    assert_false(cmd[0].on);
    assert_int_equal(cmd[1].machine, 2); /* fan on */
    assert_true(cmd[1].on);
    assert_true(cmd[1].power_w == 100);
    assert_true(bal_ctl_mach_state(c, 0)->ms.on); /* the kiln's block goes on */
    bal_ctl_free(c);
    bal_config_free(cfg);
}

/* After a restart the kiln restored on with its job is neither switched off nor started again, and
 * the energy of the time the daemon was down is credited. */
static void test_restore_running_block(void **state)
{
    (void)state;
    struct bal_config *cfg = load(KILN, ONE_HOUR_JOB, NULL);
    struct bal_ctl *c = ctl_at(cfg, T0 + 30 * MIN);
    struct bal_cmd cmd[BAL_MAX_MACHINES];
    struct bal_job j = { .id = "fire", .machine = 0, .earliest_ms = T0, .deadline_ms = T0 + 60 * MIN,
                         .energy_wh = 1000, .done_wh = 400, .required = true };
    assert_int_equal(bal_ctl_restore_job(c, &j, false, BAL_JS_RUNNING, 0), 0);
    bal_ctl_restore_machine(c, 0, true, 1000, T0, 1, bal_ctl_mach_state(c, 0)->starts_day, "fire");
    bal_ctl_resume(c, T0 + 24 * MIN); /* saved 6 min before the restart */
    bal_ctl_balance(c, T0 + 30 * MIN + 1 * S, 0, 1500, 1500);
    bal_ctl_balance(c, T0 + 30 * MIN + 2 * S, 0, 1500, 1500);
    assert_int_equal(step(c, T0 + 30 * MIN + 3 * S, cmd), 0);
    const struct bal_cjob *r = job(c, "fire");
    assert_int_equal(r->state, BAL_JS_RUNNING);
    assert_true(fabs(r->j.done_wh - (400 + 1000.0 * (6 * 60 + 3) / 3600)) < 1e-6);
    assert_int_equal(bal_ctl_mach_state(c, 0)->ms.starts_today, 1);
    bal_ctl_free(c);
    bal_config_free(cfg);
}

/* The wall clock jumps an hour ahead just after a surplus start; import follows. The start time moves
 * with the jump, so min on (600 s) still counts from the real start: the stop comes 600 s after it,
 * not at once (without the shift the start would look an hour old). */
static void test_clock_jump_keeps_min_on(void **state)
{
    (void)state;
    struct bal_config *cfg = load("{\"id\":\"comp\",\"power_w\":1000,\"interruptible\":true,\"min_on_s\":600}", TOPUP,
                                  FAST ",\"hysteresis_w\":0");
    struct bal_ctl *c = ctl_at(cfg, T0);
    struct bal_cmd cmd[BAL_MAX_MACHINES];
    two_readings(c, 3000, -2000, 1000);
    assert_int_equal(step(c, T0 + 3 * S, cmd), 1);
    bal_ctl_clock_jump(c, 60 * MIN);
    assert_int_equal(bal_ctl_mach_state(c, 0)->ms.since_ms, T0 + 3 * S + 60 * MIN);
    int64_t jump = 60 * MIN, off_at = 0;
    for (int64_t t = T0 + 13 * S; t <= T0 + 1800 * S && !off_at; t += 10 * S) {
        bal_ctl_balance(c, jump + t - S, 0, 2000, 1000);
        if (step(c, jump + t, cmd) == 1 && !cmd[0].on)
            off_at = t;
    }
    assert_int_equal(off_at, T0 + 603 * S);
    bal_ctl_free(c);
    bal_config_free(cfg);
}

/* PV that swings between surplus and import every minute for four hours: every run lasts at least
 * min_on and every pause at least min_off. */
static void test_oscillation_respects_min_on_off(void **state)
{
    (void)state;
    struct bal_config *cfg = load("{\"id\":\"comp\",\"power_w\":1000,\"interruptible\":true,\"min_on_s\":900,"
                                  "\"min_off_s\":600}",
                                  "{\"id\":\"topup\",\"machine\":\"comp\",\"duration_min\":480,\"earliest\":\"00:00\","
                                  "\"deadline\":\"23:00\",\"days\":\"daily\",\"required\":false,\"surplus_only\":true}",
                                  FAST ",\"hysteresis_w\":0");
    struct bal_ctl *c = ctl_at(cfg, T0);
    struct bal_cmd cmd[BAL_MAX_MACHINES];
    int64_t last = 0;
    bool on = false;
    unsigned switches = 0;
    for (int64_t t = T0 + 10 * S; t < T0 + 240 * MIN; t += 10 * S) {
        bool sunny = ((t - T0) / MIN) % 2 == 0;
        bal_ctl_balance(c, t - S, sunny ? 3000 : 0, sunny ? -2000 + (on ? 1000 : 0) : 1000 + (on ? 1000 : 0), 1000);
        if (step(c, t, cmd) != 1)
            continue;
        assert_true(cmd[0].on != on);
        if (last)
            assert_true(t - last >= (on ? 900 : 600) * S);
        on = cmd[0].on;
        last = t;
        switches++;
    }
    assert_int_equal(switches, 19);
    bal_ctl_free(c);
    bal_config_free(cfg);
}

/* A reload that drops a job rejects its queued occurrence; the machine keeps its state by id. */
static void test_reconfigure(void **state)
{
    (void)state;
    struct bal_config *cfg = load(COMP "," KILN, ONE_HOUR_JOB, NULL);
    struct bal_ctl *c = ctl_at(cfg, T0);
    struct bal_cmd cmd[BAL_MAX_MACHINES];
    step(c, T0, cmd);
    assert_int_equal(job(c, "fire")->state, BAL_JS_PLANNED);
    bal_ctl_observed(c, 0, true, T0 + S);
    char err[200];
    struct bal_config *cfg2 = load(KILN "," COMP, "", NULL);
    assert_int_equal(bal_ctl_reconfigure(c, cfg2, T0 + 2 * S, err, sizeof err), 0);
    bal_config_free(cfg);
    assert_int_equal(job(c, "fire")->state, BAL_JS_REJECTED);
    assert_string_equal(job(c, "fire")->reason, "removed from the config");
    assert_int_equal(bal_ctl_machine_index(c, "comp"), 1);
    assert_true(bal_ctl_mach_state(c, 1)->ms.on);
    assert_false(bal_ctl_mach_state(c, 0)->ms.on);
    bal_ctl_free(c);
    bal_config_free(cfg2);
}

/* Advice of a manual machine of 2000 W by the real surplus. */
static void test_advice(void **state)
{
    (void)state;
    struct bal_config *cfg = load("{\"id\":\"laser\",\"power_w\":2000,\"start\":\"manual\"}", "", NULL);
    struct bal_ctl *c = ctl_at(cfg, T0);
    double sur;
    int64_t next;
    assert_int_equal(bal_ctl_advice(c, 0, T0, &sur, &next), 0);
    assert_true(isnan(sur));
    bal_ctl_balance(c, T0 + S, 4000, -3000, 1000);
    assert_int_equal(bal_ctl_advice(c, 0, T0 + 2 * S, &sur, &next), 2);
    assert_true(sur == 3000);
    bal_ctl_balance(c, T0 + 3 * S, 2000, -1000, 1000);
    assert_int_equal(bal_ctl_advice(c, 0, T0 + 4 * S, &sur, &next), 1);
    bal_ctl_balance(c, T0 + 5 * S, 0, 500, 500);
    assert_int_equal(bal_ctl_advice(c, 0, T0 + 6 * S, &sur, &next), 0);
    char *m = bal_msg_advice(c, 0, T0 + 6 * S);
    assert_string_equal(m, "{\"ts\":1780272006000,\"machine\":\"laser\",\"level\":\"red\",\"surplus_w\":-500,"
                           "\"next_green\":null}");
    free(m);
    bal_ctl_free(c);
    bal_config_free(cfg);
}

/* The exact messages of a machine and a job, and the parsers' refusals. */
static void test_messages(void **state)
{
    (void)state;
    struct bal_config *cfg = load(KILN, ONE_HOUR_JOB, NULL);
    struct bal_ctl *c = ctl_at(cfg, T0);
    struct bal_cmd cmd[BAL_MAX_MACHINES];
    two_readings(c, 0, 500, 500);
    step(c, T0 + 3 * S, cmd);
    char *m = bal_msg_machine(c, 0, T0 + 3 * S, NULL);
    assert_string_equal(m, "{\"ts\":1780272003000,\"on\":true,\"power_w\":1000,\"job\":\"fire\",\"reason\":\"deadline\","
                           "\"start\":\"auto\",\"faulted\":false}");
    free(m);
    m = bal_msg_job(c, job(c, "fire"), T0 + 3 * S);
    assert_string_equal(m, "{\"ts\":1780272003000,\"job\":\"fire\",\"machine\":\"kiln\",\"state\":\"running\","
                           "\"earliest\":1780272000000,\"deadline\":1780275600000,\"energy_wh\":1000,\"done_wh\":0,"
                           "\"planned_start\":null,\"planned_end\":null,\"finished\":null,\"required\":true}");
    free(m);
    int64_t ts;
    double pv, grid, load_w;
    char err[200];
    assert_int_equal(bal_msg_parse_balance("{\"ts\":5,\"grid_w\":-10.5,\"pv_w\":20}", 34, &ts, &pv, &grid, &load_w, err,
                                           sizeof err), 0);
    assert_true(ts == 5 && grid == -10.5 && pv == 20 && isnan(load_w));
    assert_int_equal(bal_msg_parse_balance("{\"ts\":5,\"grid_w\":null}", 22, &ts, &pv, &grid, &load_w, err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "grid_w: expected a number");
    assert_int_equal(bal_msg_parse_balance("{\"ts\":", 6, &ts, &pv, &grid, &load_w, err, sizeof err), -EINVAL);
    assert_string_equal(err, "payload is not JSON at byte 5");
    int64_t *fts;
    double *fw;
    const char *fc = "[[1000,5],[2000,-1]]";
    assert_int_equal(bal_msg_parse_forecast(fc, strlen(fc), &fts, &fw, err, sizeof err), 2);
    assert_true(fts[1] == 2000 && fw[1] == -1);
    free(fts);
    free(fw);
    fc = "[[1000,5],[2000]]";
    assert_int_equal(bal_msg_parse_forecast(fc, strlen(fc), &fts, &fw, err, sizeof err), -EINVAL);
    assert_string_equal(err, "[1]: expected [ts_ms, watts]");
    bal_ctl_free(c);
    bal_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_readings_then_deadline),
        cmocka_unit_test(test_done_instant),
        cmocka_unit_test(test_stale_stops_optional),
        cmocka_unit_test(test_request_reject_and_cancel),
        cmocka_unit_test(test_shutdown_rules),
        cmocka_unit_test(test_restore_running_block),
        cmocka_unit_test(test_clock_jump_keeps_min_on),
        cmocka_unit_test(test_oscillation_respects_min_on_off),
        cmocka_unit_test(test_reconfigure),
        cmocka_unit_test(test_advice),
        cmocka_unit_test(test_messages),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
