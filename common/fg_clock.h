/* fg_clock: the one source of time for every daemon: the real clock, or a simulated one
 * (--clock START@SPEED) that starts at START and runs SPEED times faster than real time.
 * Timestamps come from fg_clock_now_ms; schedules use fg_clock_tick_ms, which never jumps. */
#ifndef FG_CLOCK_H
#define FG_CLOCK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fg_clock {
    bool simulated;
    double speed;          /* simulated ms per real ms (1 for the real clock) */
    int64_t start_ms;      /* simulated wall time at start_mono_ns (unix ms) */
    int64_t start_mono_ns; /* CLOCK_MONOTONIC at start */
};

/* The real clock. */
void fg_clock_init_real(struct fg_clock *c);
/* Parses "START@SPEED", START an ISO 8601 time with offset ("2016-07-15T06:00:00-07:00", "...Z"),
 * SPEED a number > 0 (up to 100000). Returns 0, or -EINVAL with a message in err. */
int fg_clock_parse(struct fg_clock *c, const char *arg, char *err, size_t errlen);
/* Wall time for timestamps, unix ms (simulated under --clock). */
int64_t fg_clock_now_ms(const struct fg_clock *c);
/* Monotonic schedule time in ms: under --clock it equals fg_clock_now_ms; on the real clock it is
 * CLOCK_MONOTONIC, so a step of the system clock never shifts a schedule. */
int64_t fg_clock_tick_ms(const struct fg_clock *c);
/* Real CLOCK_MONOTONIC ns of a tick (for clock_nanosleep(TIMER_ABSTIME) or timed waits). */
int64_t fg_clock_tick_to_mono_ns(const struct fg_clock *c, int64_t tick_ms);
/* Real monotonic duration in ms of a span of tick ms (span / speed, at least 0). */
double fg_clock_real_ms(const struct fg_clock *c, int64_t tick_span_ms);
/* Sleeps until tick_ms, or until *stop becomes non-zero (checked at least every 100 ms of real time).
 * stop may be NULL. Returns 0 when the tick was reached, 1 when stopped. */
int fg_clock_sleep_until(const struct fg_clock *c, int64_t tick_ms, const volatile int *stop);
/* Raw CLOCK_MONOTONIC in ns. */
int64_t fg_mono_ns(void);
/* Parses an ISO 8601 time with a numeric offset or Z ("2016-07-15T06:00:00-07:00", a space instead of T is accepted,
 * seconds optional, fractional seconds allowed) into unix ms. Returns 0 or -EINVAL. */
int fg_parse_iso8601_ms(const char *s, int64_t *out_ms);

#endif
