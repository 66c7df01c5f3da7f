/* Unit tests of bal_jobreq: accepted requests with every field, every rejection reason word for word
 * (and which id the caller may answer on), size and byte limits, and random-byte fuzzing.
 * Run from the repository root (it loads tests/fixtures/balancer/valid.json: kiln 6000 W, laser
 * 3000 W, compressor 2500 W, ev 4140..11040 W). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bal_jobreq.h"
#include "fg_cfg.h"

#define NOW 1468569600000LL /* 2016-07-15T08:00:00Z = 10:00 CEST */
#define MIN 60000LL
#define H (60 * MIN)

static struct bal_config *cfg;

static int setup(void **state)
{
    char err[1024];
    (void)state;
    cfg = bal_config_load("tests/fixtures/balancer/valid.json", err, sizeof err);
    return cfg ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bal_config_free(cfg);
    return 0;
}

static int parse(const char *text, struct bal_jobreq *r, char *reason, size_t rlen)
{
    return bal_jobreq_parse(cfg, text, strlen(text), NOW, r, reason, rlen);
}

/* ---- accepted ---- */

static void test_accept_duration(void **state)
{
    struct bal_jobreq r;
    char reason[256] = "x";
    (void)state;
    assert_int_equal(parse("{\"id\":\"laser-42\",\"machine\":\"laser\",\"duration_min\":120,"
                           "\"deadline\":\"2016-07-15T18:00:00+02:00\"}", &r, reason, sizeof reason), 0);
    assert_string_equal(reason, "");
    assert_false(r.cancel);
    assert_string_equal(r.id, "laser-42");
    assert_string_equal(r.job.id, "laser-42");
    assert_true(r.job.cfg == BAL_JOBREQ_NO_CFG);
    assert_int_equal(r.job.machine, 1);
    assert_int_equal(r.job.earliest_ms, NOW); /* no earliest: now */
    assert_int_equal(r.job.deadline_ms, NOW + 8 * H);
    assert_true(r.job.energy_wh == 6000); /* 120 min at 3000 W */
    assert_true(r.job.done_wh == 0);
    assert_true(r.job.required);
    assert_false(r.job.surplus_only);
    assert_false(r.job.running);
    assert_int_equal(r.job.started_ms, 0);
}

static void test_accept_energy(void **state)
{
    struct bal_jobreq r;
    char reason[256];
    (void)state;
    /* 20000 Wh at 11040 W need 109 min; earliest in the past is kept as given */
    assert_int_equal(parse("{\"machine\":\"ev\",\"energy_wh\":20000,\"earliest\":\"2016-07-15T07:00:00Z\","
                           "\"deadline\":\"2016-07-15T09:49:00Z\",\"surplus_only\":true,\"id\":null}",
                           &r, reason, sizeof reason), 0);
    assert_string_equal(r.id, "");
    assert_string_equal(r.job.id, "");
    assert_int_equal(r.job.machine, 3);
    assert_int_equal(r.job.earliest_ms, NOW - H);
    assert_int_equal(r.job.deadline_ms, NOW + 109 * MIN);
    assert_true(r.job.energy_wh == 20000);
    assert_false(r.job.required); /* surplus_only makes it optional, as in the config */
    assert_true(r.job.surplus_only);
    /* required false alone; a duration that exactly fits; blanks around the object */
    assert_int_equal(parse(" {\"machine\":\"kiln\",\"duration_min\":60,\"required\":false,\"surplus_only\":false,"
                           "\"earliest\":\"2016-07-15T11:00:00+02:00\",\"deadline\":\"2016-07-15T12:00:00+02:00\"}\n",
                           &r, reason, sizeof reason), 0);
    assert_false(r.job.required);
    assert_int_equal(r.job.earliest_ms, NOW + H);
    assert_true(r.job.energy_wh == 6000);
}

static void test_accept_cancel(void **state)
{
    struct bal_jobreq r;
    char reason[256];
    (void)state;
    assert_int_equal(parse("{\"cancel\":\"laser-42\"}", &r, reason, sizeof reason), 0);
    assert_true(r.cancel);
    assert_string_equal(r.id, "laser-42");
    assert_string_equal(reason, "");
}

/* ---- rejected ---- */

struct reject_case {
    const char *payload, *reason, *id;
};

#define DL ",\"deadline\":\"2016-07-15T18:00:00+02:00\""
#define ISO_MSG "must be a date and time with offset such as \"2026-12-01T18:00:00+01:00\", got "

static const struct reject_case rejects[] = {
    { "", "not JSON at byte 0", "" },
    { "   ", "not JSON at byte 2", "" },
    { "{\"machine\":\"laser\"", "not JSON at byte 17", "" },
    { "{} x", "not JSON at byte 3", "" },
    { "{\"machine\":'laser'}", "not JSON at byte 11", "" },
    { "[1]", "must be a JSON object, got an array", "" },
    { "\"laser\"", "must be a JSON object, got a string", "" },
    { "null", "must be a JSON object, got null", "" },
    { "{\"id\":\"j1\",\"mchine\":\"laser\",\"duration_min\":10" DL "}",
      "mchine: unknown key (did you mean \"machine\"?)", "j1" },
    { "{\"id\":\"j1\",\"machine\":\"laser\",\"machine\":\"kiln\",\"duration_min\":10" DL "}",
      "machine: duplicate key", "j1" },
    { "{\"id\":\"j1\",\"duration_min\":10" DL "}", "machine: missing (required)", "j1" },
    { "{\"machine\":5,\"duration_min\":10" DL "}", "machine: must be a string of 1..32 bytes, got a number", "" },
    { "{\"id\":\"j2\",\"machine\":\"saw\",\"duration_min\":10" DL "}", "machine: no machine \"saw\"", "j2" },
    { "{\"machine\":\"laser\",\"duration_min\":0" DL "}", "duration_min: must be an integer 1..10080, got 0", "" },
    { "{\"machine\":\"laser\",\"duration_min\":10081" DL "}", "duration_min: must be an integer 1..10080, got 10081",
      "" },
    { "{\"machine\":\"laser\",\"duration_min\":-5" DL "}", "duration_min: must be an integer 1..10080, got -5", "" },
    { "{\"machine\":\"laser\",\"duration_min\":1.5" DL "}", "duration_min: must be an integer 1..10080, got 1.5", "" },
    { "{\"machine\":\"laser\",\"duration_min\":1e999" DL "}", "duration_min: must be an integer 1..10080, got inf",
      "" },
    { "{\"machine\":\"laser\",\"duration_min\":\"120\"" DL "}",
      "duration_min: must be an integer 1..10080, got a string", "" },
    { "{\"machine\":\"ev\",\"energy_wh\":0" DL "}", "energy_wh: must be a number 1..10000000, got 0", "" },
    { "{\"machine\":\"ev\",\"energy_wh\":1e8" DL "}", "energy_wh: must be a number 1..10000000, got 100000000", "" },
    { "{\"machine\":\"ev\",\"energy_wh\":-1e999" DL "}", "energy_wh: must be a number 1..10000000, got -inf", "" },
    { "{\"machine\":\"ev\",\"energy_wh\":[1]" DL "}", "energy_wh: must be a number 1..10000000, got an array", "" },
    { "{\"machine\":\"ev\",\"duration_min\":10,\"energy_wh\":1000" DL "}",
      "energy_wh: not with duration_min (give one of them)", "" },
    { "{\"machine\":\"ev\"" DL "}", "duration_min: missing (required, or energy_wh)", "" },
    { "{\"machine\":\"ev\",\"duration_min\":10}", "deadline: missing (required)", "" },
    { "{\"machine\":\"ev\",\"duration_min\":10,\"deadline\":\"18:00\"}", "deadline: " ISO_MSG "\"18:00\"", "" },
    { "{\"machine\":\"ev\",\"duration_min\":10,\"deadline\":\"2016-07-15T18:00:00\"}",
      "deadline: " ISO_MSG "\"2016-07-15T18:00:00\"", "" },
    { "{\"machine\":\"ev\",\"duration_min\":10,\"deadline\":1468598400000}",
      "deadline: must be a string of 1..64 bytes, got a number", "" },
    { "{\"machine\":\"ev\",\"duration_min\":10,\"earliest\":\"soon\"" DL "}", "earliest: " ISO_MSG "\"soon\"", "" },
    { "{\"id\":\"late\",\"machine\":\"ev\",\"duration_min\":10,\"deadline\":\"2016-07-15T09:00:00+02:00\"}",
      "deadline: must be in the future (now 2016-07-15T08:00:00Z), got \"2016-07-15T09:00:00+02:00\"", "late" },
    { "{\"machine\":\"ev\",\"duration_min\":10,\"deadline\":\"2016-07-15T08:00:00Z\"}",
      "deadline: must be in the future (now 2016-07-15T08:00:00Z), got \"2016-07-15T08:00:00Z\"", "" },
    { "{\"machine\":\"ev\",\"duration_min\":10,\"earliest\":\"2016-07-15T12:00:00Z\","
      "\"deadline\":\"2016-07-15T11:00:00Z\"}",
      "deadline: must be after earliest (2016-07-15T12:00:00Z), got \"2016-07-15T11:00:00Z\"", "" },
    { "{\"machine\":\"ev\",\"duration_min\":10,\"deadline\":\"2017-07-16T08:00:01Z\"}",
      "deadline: must be at most 366 days ahead, got \"2017-07-16T08:00:01Z\"", "" },
    { "{\"id\":\"long\",\"machine\":\"laser\",\"duration_min\":120,\"deadline\":\"2016-07-15T09:30:00Z\"}",
      "needs 120 min at 3000 W, only 90 min between now and deadline", "long" },
    { "{\"machine\":\"laser\",\"duration_min\":120,\"earliest\":\"2016-07-15T07:00:00Z\","
      "\"deadline\":\"2016-07-15T09:59:59Z\"}",
      "needs 120 min at 3000 W, only 119 min between now and deadline", "" },
    { "{\"machine\":\"ev\",\"energy_wh\":20000,\"earliest\":\"2016-07-15T10:00:00Z\","
      "\"deadline\":\"2016-07-15T11:40:00Z\"}",
      "needs 109 min at 11040 W, only 100 min between earliest and deadline", "" },
    { "{\"machine\":\"ev\",\"duration_min\":10,\"required\":true,\"surplus_only\":true" DL "}",
      "required: must be false (or absent) with surplus_only: true, got true", "" },
    { "{\"machine\":\"ev\",\"duration_min\":10,\"required\":\"yes\"" DL "}",
      "required: must be true or false, got a string", "" },
    { "{\"id\":\"Laser 42\",\"machine\":\"laser\",\"duration_min\":10" DL "}",
      "id: must match [a-z0-9][a-z0-9_-]{0,31}, got \"Laser 42\"", "" },
    { "{\"id\":\"abcdefghijabcdefghijabcdefghijabc\",\"machine\":\"laser\",\"duration_min\":10" DL "}",
      "id: must match [a-z0-9][a-z0-9_-]{0,31}, got \"abcdefghijabcdefghijabcdefghijabc\"", "" },
    { "{\"id\":7,\"machine\":\"laser\",\"duration_min\":10" DL "}",
      "id: must match [a-z0-9][a-z0-9_-]{0,31}, got a number", "" },
    { "{\"id\":\"j4\",\"\\nmachine\":\"laser\"}", "keys must be printable, got one with byte 0x0a", "j4" },
    { "{\"machine\":\"a\\nb\",\"duration_min\":10" DL "}", "machine: no machine \"a\\u000ab\"", "" },
    { "{\"cancel\":\"Job 1\"}", "cancel: must match [a-z0-9][a-z0-9_-]{0,31}, got \"Job 1\"", "" },
    { "{\"cancel\":5}", "cancel: must match [a-z0-9][a-z0-9_-]{0,31}, got a number", "" },
    { "{\"cancel\":\"\"}", "cancel: must match [a-z0-9][a-z0-9_-]{0,31}, got \"\"", "" },
    { "{\"cancel\":\"j1\",\"machine\":\"laser\"}", "machine: not with cancel", "j1" },
    { "{\"id\":\"j3\",\"cancel\":\"j1\"}", "id: not with cancel", "j1" },
};

static void test_reject_reasons(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rejects / sizeof rejects[0]; i++) {
        struct bal_jobreq r;
        char reason[256] = "";
        int rc = parse(rejects[i].payload, &r, reason, sizeof reason);
        if (rc != -EINVAL || strcmp(reason, rejects[i].reason) != 0 || strcmp(r.id, rejects[i].id) != 0)
            print_error("case %zu: %s\n  rc %d reason \"%s\" id \"%s\"\n", i, rejects[i].payload, rc, reason, r.id);
        assert_int_equal(rc, -EINVAL);
        assert_string_equal(reason, rejects[i].reason);
        assert_string_equal(r.id, rejects[i].id);
        assert_string_equal(r.job.id, ""); /* a rejected job is zeroed */
        assert_int_equal(r.job.deadline_ms, 0);
    }
    assert_int_equal(sizeof rejects / sizeof rejects[0], 49);
}

static void test_reject_bytes(void **state)
{
    static char big[BAL_JOBREQ_MAX_BYTES + 2];
    const char *req = "{\"machine\":\"laser\",\"duration_min\":120" DL "}";
    struct bal_jobreq r;
    char reason[256], small[12];
    (void)state;
    /* exactly 4096 bytes (the request padded with blanks) is read; 4097 is refused before parsing */
    memset(big, ' ', sizeof big);
    memcpy(big, req, strlen(req));
    assert_int_equal(bal_jobreq_parse(cfg, big, BAL_JOBREQ_MAX_BYTES, NOW, &r, reason, sizeof reason), 0);
    big[BAL_JOBREQ_MAX_BYTES] = '}';
    assert_int_equal(bal_jobreq_parse(cfg, big, BAL_JOBREQ_MAX_BYTES + 1, NOW, &r, reason, sizeof reason), -EINVAL);
    assert_string_equal(reason, "payload of 4097 bytes exceeds 4096");
    assert_int_equal(bal_jobreq_parse(cfg, NULL, 1048576, NOW, &r, reason, sizeof reason), -EINVAL);
    assert_string_equal(reason, "payload of 1048576 bytes exceeds 4096");
    /* only len bytes count: a NUL inside is not an end */
    assert_int_equal(bal_jobreq_parse(cfg, "{\"cancel\":\"j1\"}\0", 16, NOW, &r, reason, sizeof reason), -EINVAL);
    assert_string_equal(reason, "not JSON at byte 15");
    assert_int_equal(bal_jobreq_parse(cfg, "{\"cancel\":\"j1\"}xyz", 15, NOW, &r, reason, sizeof reason), 0);
    /* deep nesting is refused without exhausting the stack */
    memset(big, '[', 3000);
    assert_int_equal(bal_jobreq_parse(cfg, big, 3000, NOW, &r, reason, sizeof reason), -EINVAL);
    assert_string_equal(reason, "not JSON at byte 1000");
    /* the reason is truncated to its buffer; NULL reason is fine */
    assert_int_equal(parse("[1]", &r, small, sizeof small), -EINVAL);
    assert_string_equal(small, "must be a J");
    assert_int_equal(parse("[1]", &r, NULL, 0), -EINVAL);
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

/* Random bytes and valid requests with random bytes changed: always 0 or -EINVAL, a one-line reason
 * exactly when rejected, an id that is an id or "". */
static void test_fuzz(void **state)
{
    static const char *const seeds[] = {
        "{\"id\":\"laser-42\",\"machine\":\"laser\",\"duration_min\":120" DL "}",
        "{\"machine\":\"ev\",\"energy_wh\":20000,\"earliest\":\"2016-07-15T07:00:00Z\","
        "\"deadline\":\"2016-07-15T18:00:00Z\",\"surplus_only\":true}",
        "{\"cancel\":\"laser-42\"}",
    };
    unsigned char buf[512];
    unsigned ok = 0, rejected = 0;
    (void)state;
    for (int i = 0; i < 30000; i++) {
        struct bal_jobreq r;
        char reason[256];
        size_t n;
        if (i % 3 == 0) {
            n = next_rand() % sizeof buf;
            for (size_t k = 0; k < n; k++)
                buf[k] = (unsigned char)next_rand();
        } else {
            const char *s = seeds[next_rand() % 3];
            n = strlen(s);
            memcpy(buf, s, n);
            for (unsigned k = 0, m = 1 + next_rand() % 3; k < m; k++)
                buf[next_rand() % n] = (unsigned char)next_rand();
        }
        int rc = bal_jobreq_parse(cfg, buf, n, NOW, &r, reason, sizeof reason);
        assert_true(rc == 0 || rc == -EINVAL);
        if (rc == 0 ? reason[0] != '\0' : reason[0] == '\0')
            print_error("case %d: rc %d reason \"%s\" payload %.*s\n", i, rc, reason, (int)n, (const char *)buf);
        assert_true(rc == 0 ? reason[0] == '\0' : reason[0] != '\0');
        assert_null(strchr(reason, '\n'));
        assert_true(r.id[0] == '\0' || fg_cfg_is_id(r.id));
        if (rc == 0 && !r.cancel)
            assert_true(r.job.machine < cfg->nmachines && r.job.deadline_ms > NOW && r.job.energy_wh >= 1);
        rc == 0 ? ok++ : rejected++;
    }
    assert_int_equal(ok + rejected, 30000);
    assert_true(ok > 0 && rejected > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_duration),
        cmocka_unit_test(test_accept_energy),
        cmocka_unit_test(test_accept_cancel),
        cmocka_unit_test(test_reject_reasons),
        cmocka_unit_test(test_reject_bytes),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
