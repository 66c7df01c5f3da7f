/* Unit tests of fg_clock: ISO 8601 parsing and the simulated clock's arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "fg_clock.h"

static void test_iso8601(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(fg_parse_iso8601_ms("2016-07-15T06:00:00-07:00", &ms), 0);
    assert_int_equal(ms, 1468587600000LL);
    assert_int_equal(fg_parse_iso8601_ms("2016-07-15 13:00:00Z", &ms), 0);
    assert_int_equal(ms, 1468587600000LL);
    assert_int_equal(fg_parse_iso8601_ms("2018-01-01 00:15:00+01:00", &ms), 0);
    assert_int_equal(ms, 1514762100000LL);
    assert_int_equal(fg_parse_iso8601_ms("2024-02-29T23:59:59.250+0000", &ms), 0);
    assert_int_equal(ms, 1709251199250LL);
    assert_int_equal(fg_parse_iso8601_ms("1970-01-01T00:00Z", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(fg_parse_iso8601_ms("2016-07-15T06:00:00", &ms), -EINVAL); /* no offset */
    assert_int_equal(fg_parse_iso8601_ms("2016-13-15T06:00:00Z", &ms), -EINVAL);
    assert_int_equal(fg_parse_iso8601_ms("2016-07-15T06:00:00+25:00", &ms), -EINVAL);
    assert_int_equal(fg_parse_iso8601_ms("x", &ms), -EINVAL);
}

static void test_clock_parse(void **state)
{
    (void)state;
    struct fg_clock c;
    char err[200];
    assert_int_equal(fg_clock_parse(&c, "2016-07-15T06:00:00-07:00@60", err, sizeof err), 0);
    assert_true(c.simulated);
    assert_true(c.speed == 60.0);
    assert_int_equal(c.start_ms, 1468587600000LL);
    /* a tick 60 s of simulated time later is 1 s of real time later */
    assert_int_equal(fg_clock_tick_to_mono_ns(&c, c.start_ms + 60000) - c.start_mono_ns, 1000000000LL);
    assert_true(fg_clock_real_ms(&c, 6000) == 100.0);
    int64_t now = fg_clock_now_ms(&c);
    assert_true(now >= c.start_ms && now < c.start_ms + 60000);
    assert_int_equal(fg_clock_parse(&c, "2016-07-15T06:00:00-07:00", err, sizeof err), -EINVAL);
    assert_string_equal(err, "--clock 2016-07-15T06:00:00-07:00: expected START@SPEED, e.g. 2016-07-15T06:00:00-07:00@60");
    assert_int_equal(fg_clock_parse(&c, "2016-07-15T06:00:00-07:00@0", err, sizeof err), -EINVAL);
    assert_string_equal(err, "--clock 2016-07-15T06:00:00-07:00@0: SPEED must be a number > 0 and <= 100000");
    assert_int_equal(fg_clock_parse(&c, "yesterday@2", err, sizeof err), -EINVAL);
}

static void test_real_clock(void **state)
{
    (void)state;
    struct fg_clock c;
    fg_clock_init_real(&c);
    assert_false(c.simulated);
    int64_t t = fg_clock_tick_ms(&c);
    assert_int_equal(fg_clock_tick_to_mono_ns(&c, t), t * 1000000LL);
    assert_int_equal(fg_clock_sleep_until(&c, t + 20, NULL), 0);
    assert_true(fg_clock_tick_ms(&c) >= t + 20);
    volatile int stop = 1;
    assert_int_equal(fg_clock_sleep_until(&c, t + 100000, &stop), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_clock_parse),
        cmocka_unit_test(test_real_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
