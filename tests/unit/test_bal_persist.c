/* Unit tests of bal_persist: the exact text of a small state, exact round trips (int64 ms at their
 * limits, doubles bit for bit, NaN as null), every kind of corrupt text, and the files: atomic save,
 * load of a missing, corrupt, truncated or oversized file, a torn .tmp beside it, quarantine. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bal_persist.h"

static char dir[64], path[128], tmp[160], bad[160];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/fg_test_bal_persist.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/state.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(bad, sizeof bad, "%s.bad", path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    unlink(tmp);
    unlink(bad);
    return rmdir(dir);
}

static void put_file(const char *p, const char *text, size_t n)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    fclose(f);
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* A state with every field set, limits included. */
static void sample(struct bal_pstate *s, struct bal_pjob *j, struct bal_pmachine *m)
{
    memset(j, 0, 3 * sizeof *j);
    memset(m, 0, 2 * sizeof *m);
    snprintf(j[0].id, sizeof j[0].id, "kiln-daily@2016-07-15");
    snprintf(j[0].machine, sizeof j[0].machine, "kiln");
    j[0].earliest_ms = 1468558800000;
    j[0].deadline_ms = 1468598400000;
    j[0].energy_wh = 36000;
    j[0].done_wh = 0.1 + 0.2; /* 0.30000000000000004: needs 17 digits */
    j[0].required = true;
    j[0].running = true;
    j[0].started_ms = 1468566000123;
    j[0].state = 3;
    snprintf(j[1].id, sizeof j[1].id, "%s", "laser-42-with-a-long-name-of-forty-seven-bytes");
    snprintf(j[1].machine, sizeof j[1].machine, "laser");
    j[1].earliest_ms = -9007199254740991LL; /* -(2^53 - 1) */
    j[1].deadline_ms = 9007199254740991LL;  /* 2^53 - 1 */
    j[1].energy_wh = NAN;
    j[1].done_wh = 1e-300;
    j[1].surplus_only = true;
    j[1].requested = true;
    j[1].started_ms = INT64_MIN;
    j[1].done_ms = INT64_MAX;
    j[1].state = -1;
    snprintf(j[2].id, sizeof j[2].id, "\"quoted\\\"");
    snprintf(j[2].machine, sizeof j[2].machine, "ev");
    j[2].energy_wh = 20000.5;
    snprintf(m[0].id, sizeof m[0].id, "kiln");
    m[0].on = true;
    m[0].power_w = 6000;
    m[0].since_ms = 1468566000123;
    m[0].starts_today = 1;
    m[0].starts_day = 17000;
    snprintf(m[0].job, sizeof m[0].job, "kiln-daily@2016-07-15");
    snprintf(m[1].id, sizeof m[1].id, "ev");
    m[1].faulted = true;
    m[1].power_w = NAN;
    m[1].since_ms = INT64_MIN;
    m[1].starts_today = 1000000;
    m[1].starts_day = INT32_MIN;
    *s = (struct bal_pstate){ 1468569600000, j, 3, m, 2 };
}

static void same_double(double a, double b)
{
    assert_true((isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0);
}

static void same_state(const struct bal_pstate *a, const struct bal_pstate *b)
{
    assert_int_equal(a->saved_ms, b->saved_ms);
    assert_int_equal(a->njobs, b->njobs);
    assert_int_equal(a->nmachines, b->nmachines);
    for (size_t i = 0; i < a->njobs; i++) {
        const struct bal_pjob *x = &a->jobs[i], *y = &b->jobs[i];
        assert_string_equal(x->id, y->id);
        assert_string_equal(x->machine, y->machine);
        assert_true(x->earliest_ms == y->earliest_ms && x->deadline_ms == y->deadline_ms);
        same_double(x->energy_wh, y->energy_wh);
        same_double(x->done_wh, y->done_wh);
        assert_true(x->required == y->required && x->surplus_only == y->surplus_only);
        assert_true(x->requested == y->requested && x->running == y->running);
        assert_true(x->started_ms == y->started_ms && x->done_ms == y->done_ms);
        assert_int_equal(x->state, y->state);
    }
    for (size_t i = 0; i < a->nmachines; i++) {
        const struct bal_pmachine *x = &a->machines[i], *y = &b->machines[i];
        assert_string_equal(x->id, y->id);
        assert_true(x->on == y->on && x->faulted == y->faulted);
        same_double(x->power_w, y->power_w);
        assert_true(x->since_ms == y->since_ms);
        assert_int_equal(x->starts_today, y->starts_today);
        assert_int_equal(x->starts_day, y->starts_day);
        assert_string_equal(x->job, y->job);
    }
}

/* ---- text ---- */

static void test_encode_exact(void **state)
{
    struct bal_pmachine m = { .id = "kiln", .on = true, .power_w = 6000, .since_ms = INT64_MIN, .starts_today = 2,
                              .starts_day = 17000, .job = "" };
    struct bal_pjob j = { .id = "laser-42", .machine = "laser", .earliest_ms = 1468569600000,
                          .deadline_ms = 1468598400000, .energy_wh = 6000, .done_wh = 1500.25, .required = true,
                          .requested = true, .started_ms = 0, .done_ms = 0, .state = 2 };
    struct bal_pstate s = { 1468569600123, &j, 1, &m, 1 }, empty = { 0 };
    char *text = bal_persist_encode(&s);
    (void)state;
    assert_string_equal(text,
        "{\"version\":1,\"saved_ms\":1468569600123,\"jobs\":[{\"id\":\"laser-42\",\"machine\":\"laser\","
        "\"earliest_ms\":1468569600000,\"deadline_ms\":1468598400000,\"energy_wh\":6000,\"done_wh\":1500.25,"
        "\"required\":true,\"surplus_only\":false,\"requested\":true,\"running\":false,\"started_ms\":0,"
        "\"done_ms\":0,\"state\":2}],\"machines\":[{\"id\":\"kiln\",\"on\":true,\"faulted\":false,"
        "\"power_w\":6000,\"since_ms\":-9223372036854775808,\"starts_today\":2,\"starts_day\":17000,"
        "\"job\":\"\"}]}\n");
    free(text);
    text = bal_persist_encode(&empty);
    assert_string_equal(text, "{\"version\":1,\"saved_ms\":0,\"jobs\":[],\"machines\":[]}\n");
    free(text);
}

static void test_round_trip(void **state)
{
    struct bal_pjob j[3];
    struct bal_pmachine m[2];
    struct bal_pstate s, d;
    char err[512] = "x", *text, *again;
    (void)state;
    sample(&s, j, m);
    text = bal_persist_encode(&s);
    assert_int_equal(bal_persist_decode(text, strlen(text), &d, err, sizeof err), 0);
    assert_string_equal(err, "");
    same_state(&s, &d);
    assert_true(d.machines[1].since_ms == INT64_MIN);
    assert_true(d.jobs[1].done_ms == INT64_MAX);
    assert_true(d.jobs[0].done_wh == 0.30000000000000004);
    again = bal_persist_encode(&d);
    assert_string_equal(again, text); /* a fixed point */
    free(again);
    free(text);
    bal_pstate_free(&d);
    assert_null(d.jobs);
    assert_int_equal(d.njobs + d.nmachines, 0);
    bal_pstate_free(NULL);
    /* empty arrays decode to NULL */
    assert_int_equal(bal_persist_decode("{\"version\":1,\"saved_ms\":5,\"jobs\":[],\"machines\":[]}", 50, &d, err,
                                        sizeof err), 0);
    assert_true(d.jobs == NULL && d.machines == NULL && d.saved_ms == 5);
}

struct corrupt_case {
    const char *text, *err;
};

#define J "{\"id\":\"a\",\"machine\":\"kiln\",\"earliest_ms\":0,\"deadline_ms\":1,\"energy_wh\":1,\"done_wh\":0," \
          "\"required\":true,\"surplus_only\":false,\"requested\":false,\"running\":false,\"started_ms\":0,"  \
          "\"done_ms\":0,\"state\":0"
#define M "{\"id\":\"kiln\",\"on\":false,\"faulted\":false,\"power_w\":null,\"since_ms\":0,\"starts_today\":0," \
          "\"starts_day\":0,\"job\":\"\""
#define HEAD "{\"version\":1,\"saved_ms\":0,"

static const struct corrupt_case corrupt[] = {
    { "", "state:1:1: syntax error: empty file" },
    { "{\"version\":1,", NULL },
    { "[]", "state: must be a JSON object, got an array" },
    { "{\"version\":2,\"saved_ms\":0,\"jobs\":[],\"machines\":[]}", "state: version: must be one of 1, got 2" },
    { "{\"saved_ms\":0,\"jobs\":[],\"machines\":[]}", "state: version: missing (required)" },
    { HEAD "\"jobs\":[],\"machines\":[],\"extra\":1}", "state: extra: unknown key" },
    { HEAD "\"jobs\":{},\"machines\":[]}", "state: jobs: must be an array, got an object" },
    { HEAD "\"jobs\":[1],\"machines\":[]}", "state: jobs[0]: must be an object, got a number" },
    { HEAD "\"jobs\":[" J "}],\"machines\":[" M "}]}", "" },
    { HEAD "\"jobs\":[" J ",\"x\":1}],\"machines\":[]}", "state: jobs[0].x: unknown key" },
    { HEAD "\"jobs\":[" J ",\"state\":1}],\"machines\":[]}", "state: jobs[0].state: duplicate key" },
    { "{\"version\":1,\"saved_ms\":9007199254740993,\"jobs\":[],\"machines\":[]}",
      "state: saved_ms: must be a whole number within +-(2^53 - 1), got 9.00719925474099e+15" },
    { "{\"version\":1,\"saved_ms\":9007199254740992,\"jobs\":[],\"machines\":[]}",
      "state: saved_ms: must be a whole number within +-(2^53 - 1), got 9.00719925474099e+15" },
    { "{\"version\":1,\"saved_ms\":1.5,\"jobs\":[],\"machines\":[]}",
      "state: saved_ms: must be a whole number within +-(2^53 - 1), got 1.5" },
    { "{\"version\":1,\"saved_ms\":\"0\",\"jobs\":[],\"machines\":[]}",
      "state: saved_ms: must be a whole number within +-(2^53 - 1), got \"0\"" },
    { "{\"version\":1,\"saved_ms\":1e999,\"jobs\":[],\"machines\":[]}",
      "state: saved_ms: must be a whole number within +-(2^53 - 1), got inf" },
    { HEAD "\"jobs\":[],\"machines\":[" M ",\"starts_today\":-1}]}", "state: machines[0].starts_today: duplicate key" },
    { HEAD "\"jobs\":[],\"machines\":[" M "}," M "}]}",
      "state: machines[1].id: duplicate id \"kiln\" (first at machines[0].id)" },
    { HEAD "\"jobs\":[],\"machines\":[{\"id\":\"Kiln\",\"on\":0,\"faulted\":false,\"power_w\":\"x\",\"since_ms\":0,"
      "\"starts_today\":-1,\"starts_day\":2147483648,\"job\":5}]}",
      "state: machines[0].id: must match [a-z0-9][a-z0-9_-]{0,31}, got \"Kiln\"\n"
      "state: machines[0].on: must be true or false, got a number\n"
      "state: machines[0].power_w: must be a number or null, got \"x\"\n"
      "state: machines[0].starts_today: must be an integer 0..1000000, got -1\n"
      "state: machines[0].starts_day: must be an integer -2147483648..2147483647, got 2147483648\n"
      "state: machines[0].job: must be a string of 0..47 bytes, got 5" },
    { HEAD "\"jobs\":[{\"id\":\"\",\"machine\":\"kiln\"}],\"machines\":[]}",
      "state: jobs[0].id: must be a string of 1..47 bytes, got \"\"\n"
      "state: jobs[0].earliest_ms: missing (required)\nstate: jobs[0].deadline_ms: missing (required)\n"
      "state: jobs[0].energy_wh: missing (required)\nstate: jobs[0].done_wh: missing (required)\n"
      "state: jobs[0].required: missing (required)\nstate: jobs[0].surplus_only: missing (required)\n"
      "state: jobs[0].requested: missing (required)\nstate: jobs[0].running: missing (required)\n"
      "state: jobs[0].started_ms: missing (required)\nstate: jobs[0].done_ms: missing (required)\n"
      "state: jobs[0].state: missing (required)" },
};

static void test_decode_corrupt(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof corrupt / sizeof corrupt[0]; i++) {
        struct bal_pstate s;
        char err[4096];
        int rc = bal_persist_decode(corrupt[i].text, strlen(corrupt[i].text), &s, err, sizeof err);
        if (corrupt[i].err && strcmp(err, corrupt[i].err) != 0)
            print_error("case %zu: %s\n", i, err);
        if (corrupt[i].err && !corrupt[i].err[0]) { /* the valid one among them */
            assert_int_equal(rc, 0);
            assert_int_equal(s.njobs + s.nmachines, 2);
            bal_pstate_free(&s);
            continue;
        }
        assert_int_equal(rc, -EINVAL);
        assert_true(s.jobs == NULL && s.machines == NULL && s.njobs == 0 && s.nmachines == 0);
        if (corrupt[i].err)
            assert_string_equal(err, corrupt[i].err);
        else
            assert_int_equal(strncmp(err, "state:1:", 8), 0); /* a syntax error with its position */
    }
}

/* Every prefix of a valid text (what a torn write would leave) is refused. */
static void test_decode_truncated(void **state)
{
    struct bal_pjob j[3];
    struct bal_pmachine m[2];
    struct bal_pstate s, d;
    char *text;
    size_t n, refused = 0;
    (void)state;
    sample(&s, j, m);
    text = bal_persist_encode(&s);
    n = strlen(text);
    for (size_t k = 0; k < n - 1; k++) /* n - 1: without the final newline it is complete */
        refused += bal_persist_decode(text, k, &d, NULL, 0) == -EINVAL;
    assert_int_equal(refused, n - 1);
    assert_int_equal(bal_persist_decode(text, n - 1, &d, NULL, 0), 0);
    bal_pstate_free(&d);
    free(text);
}

/* ---- files ---- */

static void test_save_load(void **state)
{
    struct bal_pjob j[3];
    struct bal_pmachine m[2];
    struct bal_pstate s, d;
    char err[512] = "x", *text, *file;
    size_t n;
    FILE *f;
    (void)state;
    sample(&s, j, m);
    assert_int_equal(bal_persist_save(path, &s, err, sizeof err), 0);
    assert_false(exists(tmp));
    assert_int_equal(bal_persist_load(path, &d, err, sizeof err), 0);
    assert_string_equal(err, "");
    same_state(&s, &d);
    bal_pstate_free(&d);
    /* the file holds exactly the encoding */
    text = bal_persist_encode(&s);
    f = fopen(path, "r");
    assert_non_null(f);
    file = calloc(1, 8192);
    n = fread(file, 1, 8191, f);
    fclose(f);
    assert_int_equal(n, strlen(text));
    assert_string_equal(file, text);
    free(file);
    free(text);
    /* a torn PATH.tmp left by a crash during the next save is never read, and the next save replaces it */
    put_file(tmp, "{\"version\":1,\"sav", 17);
    assert_int_equal(bal_persist_load(path, &d, err, sizeof err), 0);
    same_state(&s, &d);
    bal_pstate_free(&d);
    s.saved_ms += 10000;
    assert_int_equal(bal_persist_save(path, &s, err, sizeof err), 0);
    assert_false(exists(tmp));
    assert_int_equal(bal_persist_load(path, &d, err, sizeof err), 0);
    assert_int_equal(d.saved_ms, 1468569610000);
    bal_pstate_free(&d);
}

static void test_load_missing_corrupt(void **state)
{
    struct bal_pstate d;
    char err[1024], want[1024], nodir[200];
    static char big[BAL_PERSIST_MAX_BYTES + 1];
    (void)state;
    unlink(path);
    memset(&d, 0xAB, sizeof d); /* garbage in: empty out */
    assert_int_equal(bal_persist_load(path, &d, err, sizeof err), -ENOENT);
    assert_true(d.jobs == NULL && d.njobs == 0 && d.machines == NULL && d.nmachines == 0 && d.saved_ms == 0);
    snprintf(want, sizeof want, "%s: no state file", path);
    assert_string_equal(err, want);
    /* a corrupt file: the errors name it; the caller sets it aside */
    put_file(path, "{\"version\":1,\"saved_ms\":0,\"jobs\":[],\"machines\":[]}\n{", 52);
    assert_int_equal(bal_persist_load(path, &d, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s:2:1: syntax error: ", path);
    assert_int_equal(strncmp(err, want, strlen(want)), 0);
    put_file(path, "{\"version\":3}", 13);
    assert_int_equal(bal_persist_load(path, &d, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s: version: must be one of 1, got 3\n%s: saved_ms: missing (required)\n"
             "%s: jobs: missing (required)\n%s: machines: missing (required)", path, path, path, path);
    assert_string_equal(err, want);
    assert_true(d.jobs == NULL && d.nmachines == 0);
    assert_int_equal(bal_persist_quarantine(path, err, sizeof err), 0);
    assert_false(exists(path));
    assert_true(exists(bad));
    assert_int_equal(bal_persist_load(path, &d, err, sizeof err), -ENOENT);
    snprintf(want, sizeof want, "%s: rename to %s: No such file or directory", path, bad);
    assert_int_equal(bal_persist_quarantine(path, err, sizeof err), -ENOENT);
    assert_string_equal(err, want);
    /* an oversized file is corrupt without being parsed */
    memset(big, ' ', sizeof big);
    put_file(path, big, sizeof big);
    assert_int_equal(bal_persist_load(path, &d, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "%s: larger than 16777216 bytes", path);
    assert_string_equal(err, want);
    unlink(path);
    /* a directory that does not exist: nothing is written */
    snprintf(nodir, sizeof nodir, "%s/none/state.json", dir);
    struct bal_pstate empty = { 0 };
    assert_int_equal(bal_persist_save(nodir, &empty, err, sizeof err), -ENOENT);
    snprintf(want, sizeof want, "%s/none/state.json.tmp: open: No such file or directory", dir);
    assert_string_equal(err, want);
    /* a directory where the file should be */
    assert_int_equal(bal_persist_load(dir, &d, err, sizeof err), -EISDIR);
    snprintf(want, sizeof want, "%s: cannot read: Is a directory", dir);
    assert_string_equal(err, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_exact),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_decode_corrupt),
        cmocka_unit_test(test_decode_truncated),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_load_missing_corrupt),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
