/* Unit tests of col_wpolicy: the decision for every status class with real InfluxDB bodies (1.6 as
 * measured, 2.x and Cloud as documented), every Retry-After form, and the back-off sequence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "col_wpolicy.h"

/* Sun, 06 Nov 1994 08:49:37 GMT */
#define DATE_MS 784111777000LL

/* Measured from Debian's InfluxDB 1.6: two lines that are not line protocol, the good ones stored. */
static const char v1_parse_body[] =
    "{\"error\":\"partial write: unable to parse 'bad line here': invalid field format\\n"
    "unable to parse 'also bad': invalid field format dropped=0\"}\n";
/* Measured from Debian's InfluxDB 1.6: a field type conflict. */
static const char v1_conflict_body[] =
    "{\"error\":\"partial write: field type conflict: input field \\\"f\\\" on measurement \\\"m\\\" is type "
    "integer, already exists as type float dropped=1\"}\n";
/* InfluxDB 2.x (OSS) 422: points outside the bucket's retention. */
static const char v2_retention_body[] =
    "{\"code\":\"unprocessable entity\",\"message\":\"failure writing points to database: partial write: "
    "points beyond retention policy dropped=1\"}";
/* InfluxDB 2.x API reference example of a partial write refused by a bucket schema. */
static const char v2_schema_body[] =
    "{\"code\":\"invalid\",\"message\":\"partial write error (2 written): unable to parse "
    "'air_sensor,service=S1,sensor=L1 temperature=\\\"90.5\\\",humidity=70.0 1632850122': schema: field type "
    "for field \\\"temperature\\\" not permitted by schema; got String but expected Float\"}";
/* InfluxDB Cloud's summary form. */
static const char cloud_body[] =
    "{\"code\":\"invalid\",\"message\":\"partial write error (5 accepted): 1 out of 6 points rejected (check "
    "rejected_points in your _monitoring bucket for further information)\"}";

static struct col_wdecision classify(long status, const char *retry_after, const char *body, size_t nlines)
{
    struct col_wdecision d;
    memset(&d, 0x5a, sizeof d); /* every field must be written */
    col_wpolicy_classify(status, retry_after, body, nlines, DATE_MS - 30000, &d);
    return d;
}

static void test_success(void **state)
{
    (void)state;
    long codes[] = { 204, 200 };
    for (size_t i = 0; i < 2; i++) {
        struct col_wdecision d = classify(codes[i], NULL, "", 10);
        assert_int_equal(d.act, COL_W_ACK);
        assert_int_equal(d.rejected, 0);
        assert_int_equal(d.retry_after_ms, -1);
        assert_string_equal(d.first_bad, "");
    }
}

static void test_v1_partial_parse(void **state)
{
    (void)state;
    struct col_wdecision d = classify(400, NULL, v1_parse_body, 5);
    assert_int_equal(d.act, COL_W_ACK_REJECTED);
    assert_int_equal(d.rejected, 2);
    assert_int_equal(d.retry_after_ms, -1);
    assert_string_equal(d.first_bad, "bad line here");
}

static void test_v1_type_conflict(void **state)
{
    (void)state;
    struct col_wdecision d = classify(400, NULL, v1_conflict_body, 5);
    assert_int_equal(d.act, COL_W_ACK_REJECTED);
    assert_int_equal(d.rejected, 1);
    assert_string_equal(d.first_bad, "partial write: field type conflict: input field \"f\" on measurement \"m\" is "
                                     "type integer, already exists as type float dropped=1");
}

static void test_v2_422(void **state)
{
    (void)state;
    struct col_wdecision d = classify(422, NULL, v2_schema_body, 3);
    assert_int_equal(d.act, COL_W_ACK_REJECTED);
    assert_int_equal(d.rejected, 1);
    assert_string_equal(d.first_bad, "air_sensor,service=S1,sensor=L1 temperature=\"90.5\",humidity=70.0 1632850122");
    d = classify(422, NULL, v2_retention_body, 3);
    assert_int_equal(d.act, COL_W_ACK_REJECTED);
    assert_int_equal(d.rejected, 1);
    assert_string_equal(d.first_bad,
                        "failure writing points to database: partial write: points beyond retention policy dropped=1");
}

static void test_cloud_out_of(void **state)
{
    (void)state;
    struct col_wdecision d = classify(400, NULL, cloud_body, 6);
    assert_int_equal(d.act, COL_W_ACK_REJECTED);
    assert_int_equal(d.rejected, 1);
}

/* Nothing countable: the whole batch is counted; a count above the batch is clamped to it. */
static void test_uncountable_body(void **state)
{
    (void)state;
    /* measured from InfluxDB 1.6: a conflict between two lines of one batch; nothing of it is stored */
    struct col_wdecision d = classify(400, NULL, "{\"error\":\"field type conflict\"}\n", 5000);
    assert_int_equal(d.act, COL_W_ACK_REJECTED);
    assert_int_equal(d.rejected, 5000);
    assert_string_equal(d.first_bad, "field type conflict");
    d = classify(400, NULL, "{\"error\":\"database is required\"}", 7);
    assert_int_equal(d.rejected, 7);
    assert_string_equal(d.first_bad, "database is required");
    d = classify(422, NULL, NULL, 4);
    assert_int_equal(d.act, COL_W_ACK_REJECTED);
    assert_int_equal(d.rejected, 4);
    assert_string_equal(d.first_bad, "");
    d = classify(400, NULL, "{\"error\":\"partial write: dropped=0\"}", 3);
    assert_int_equal(d.rejected, 3);
    d = classify(400, NULL, v1_parse_body, 1);
    assert_int_equal(d.rejected, 1);
}

/* A body that is not JSON is read as it is; control characters of a bad line are masked. */
static void test_plain_body(void **state)
{
    (void)state;
    struct col_wdecision d = classify(400, NULL, "unable to parse 'a\tb c': x\nunable to parse 'd': y", 9);
    assert_int_equal(d.rejected, 2);
    assert_string_equal(d.first_bad, "a?b c");
    d = classify(400, NULL, "unable to parse 'm s=\"it': no\"': bad", 9);
    assert_string_equal(d.first_bad, "m s=\"it': no\"");
}

static void test_413(void **state)
{
    (void)state;
    struct col_wdecision d = classify(413, NULL, "{\"error\":\"Request Entity Too Large\"}", 4);
    assert_int_equal(d.act, COL_W_SPLIT);
    assert_int_equal(d.rejected, 0);
    d = classify(413, NULL, "", 1);
    assert_int_equal(d.act, COL_W_ACK_REJECTED);
    assert_int_equal(d.rejected, 1);
}

static void test_auth(void **state)
{
    (void)state;
    long codes[] = { 401, 403, 404, 405 };
    for (size_t i = 0; i < 4; i++) {
        struct col_wdecision d = classify(codes[i], NULL, "{\"error\":\"authorization failed\"}", 10);
        assert_int_equal(d.act, COL_W_AUTH);
        assert_int_equal(d.rejected, 0);
        assert_int_equal(d.retry_after_ms, -1);
    }
    assert_int_equal(classify(404, "5", "", 1).retry_after_ms, 5000);
}

static void test_retry(void **state)
{
    (void)state;
    long codes[] = { 0, 301, 408, 429, 500, 502, 503, 504 };
    for (size_t i = 0; i < 8; i++) {
        struct col_wdecision d = classify(codes[i], NULL, "", 10);
        assert_int_equal(d.act, COL_W_RETRY);
        assert_int_equal(d.rejected, 0);
        assert_int_equal(d.retry_after_ms, -1);
    }
    assert_int_equal(classify(429, "7", "", 10).retry_after_ms, 7000);
    assert_int_equal(classify(503, "100000", "", 10).retry_after_ms, 600000);
    assert_int_equal(classify(429, "Sun, 06 Nov 1994 08:49:37 GMT", "", 10).retry_after_ms, 30000);
    assert_int_equal(classify(429, "soon", "", 10).retry_after_ms, -1);
}

static void test_retry_after_forms(void **state)
{
    (void)state;
    int64_t now = DATE_MS - 30000;
    assert_int_equal(col_wpolicy_retry_after_ms("0", now), 0);
    assert_int_equal(col_wpolicy_retry_after_ms(" 7 ", now), 7000);
    assert_int_equal(col_wpolicy_retry_after_ms("600", now), 600000);
    assert_int_equal(col_wpolicy_retry_after_ms("601", now), 600000);
    assert_int_equal(col_wpolicy_retry_after_ms("99999999999999999999999", now), 600000);
    assert_int_equal(col_wpolicy_retry_after_ms("Sunday, 06-Nov-94 08:49:37 GMT", now), 30000);
    assert_int_equal(col_wpolicy_retry_after_ms("Sun Nov  6 08:49:37 1994", now), 30000);
    /* a date in the past means now; one far ahead is capped */
    assert_int_equal(col_wpolicy_retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", DATE_MS + 5000), 0);
    assert_int_equal(col_wpolicy_retry_after_ms("Tue, 07 Nov 1995 08:49:37 GMT", now), 600000);
    assert_int_equal(col_wpolicy_retry_after_ms("Thu, 01 Jan 1970 00:00:10 GMT", 0), 10000);
    assert_int_equal(col_wpolicy_retry_after_ms("Sat, 29 Feb 2020 12:00:00 GMT", 1582977600000LL - 1500), 1500);
    const char *bad[] = { NULL, "", "-5", "7s", "1.5", "Sun, 06 Foo 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49:37 CET", "Sun, 06 Nov 1994 25:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49:37 GMT x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(col_wpolicy_retry_after_ms(bad[i], now), -1);
}

static void test_backoff(void **state)
{
    (void)state;
    static const int64_t want[] = { 0, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000 };
    for (unsigned f = 0; f < sizeof want / sizeof want[0]; f++)
        assert_int_equal(col_wpolicy_backoff_ms(f, -1), want[f]);
    assert_int_equal(col_wpolicy_backoff_ms(1000, -1), 60000);
    assert_int_equal(col_wpolicy_backoff_ms(UINT_MAX, -1), 60000);
    /* the server's Retry-After wins over the sequence, within 1 s .. 600 s */
    assert_int_equal(col_wpolicy_backoff_ms(1, 7000), 7000);
    assert_int_equal(col_wpolicy_backoff_ms(9, 7000), 7000);
    assert_int_equal(col_wpolicy_backoff_ms(1, 120000), 120000);
    assert_int_equal(col_wpolicy_backoff_ms(1, 100000000), 600000);
    assert_int_equal(col_wpolicy_backoff_ms(3, 0), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success),       cmocka_unit_test(test_v1_partial_parse),
        cmocka_unit_test(test_v1_type_conflict), cmocka_unit_test(test_v2_422),
        cmocka_unit_test(test_cloud_out_of),  cmocka_unit_test(test_uncountable_body),
        cmocka_unit_test(test_plain_body),    cmocka_unit_test(test_413),
        cmocka_unit_test(test_auth),          cmocka_unit_test(test_retry),
        cmocka_unit_test(test_retry_after_forms), cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
