/* fg_clock: real or simulated time. The simulated clock is anchored to CLOCK_MONOTONIC, so
 * it advances smoothly at SPEED whatever the system clock does. */
#include "fg_clock.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t fg_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void fg_clock_init_real(struct fg_clock *c)
{
    c->simulated = false;
    c->speed = 1.0;
    c->start_mono_ns = fg_mono_ns();
    c->start_ms = realtime_ms();
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil idea). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int parse_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return -EINVAL;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int parse_offset(const char *p, int *off_min)
{
    int hh, mm;
    if (*p == 'Z' || *p == 'z') {
        *off_min = 0;
        return p[1] ? -EINVAL : 0;
    }
    if (*p != '+' && *p != '-')
        return -EINVAL;
    int sign = *p++ == '-' ? -1 : 1;
    if (parse_digits(&p, 2, &hh))
        return -EINVAL;
    if (*p == ':')
        p++;
    if (parse_digits(&p, 2, &mm) || *p || hh > 23 || mm > 59)
        return -EINVAL;
    *off_min = sign * (hh * 60 + mm);
    return 0;
}

int fg_parse_iso8601_ms(const char *s, int64_t *out_ms)
{
    int y, mo, d, h, mi, sec = 0, frac_ms = 0, off;
    const char *p = s;
    if (parse_digits(&p, 4, &y) || *p++ != '-' || parse_digits(&p, 2, &mo) || *p++ != '-' ||
        parse_digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
        return -EINVAL;
    p++;
    if (parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &mi))
        return -EINVAL;
    if (*p == ':') {
        p++;
        if (parse_digits(&p, 2, &sec))
            return -EINVAL;
        if (*p == '.') {
            int scale = 100;
            for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
                frac_ms += (*p - '0') * scale;
        }
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || parse_offset(p, &off))
        return -EINVAL;
    int64_t days = days_from_civil(y, mo, d);
    *out_ms = ((days * 86400 + h * 3600 + mi * 60 + sec) - (int64_t)off * 60) * 1000 + frac_ms;
    return 0;
}

int fg_clock_parse(struct fg_clock *c, const char *arg, char *err, size_t errlen)
{
    const char *at = strrchr(arg, '@');
    if (!at) {
        snprintf(err, errlen, "--clock %s: expected START@SPEED, e.g. 2016-07-15T06:00:00-07:00@60", arg);
        return -EINVAL;
    }
    char start[64];
    size_t n = (size_t)(at - arg);
    if (n >= sizeof start)
        n = sizeof start - 1;
    memcpy(start, arg, n);
    start[n] = '\0';
    int64_t ms;
    if (fg_parse_iso8601_ms(start, &ms)) {
        snprintf(err, errlen, "--clock %s: START must be an ISO 8601 time with offset, e.g. 2016-07-15T06:00:00-07:00", arg);
        return -EINVAL;
    }
    char *end;
    errno = 0;
    double speed = strtod(at + 1, &end);
    if (errno || end == at + 1 || *end || !(speed > 0) || speed > 100000) {
        snprintf(err, errlen, "--clock %s: SPEED must be a number > 0 and <= 100000", arg);
        return -EINVAL;
    }
    c->simulated = true;
    c->speed = speed;
    c->start_ms = ms;
    c->start_mono_ns = fg_mono_ns();
    return 0;
}

int64_t fg_clock_now_ms(const struct fg_clock *c)
{
    if (!c->simulated)
        return realtime_ms();
    double el_ms = (double)(fg_mono_ns() - c->start_mono_ns) / 1e6;
    return c->start_ms + (int64_t)floor(el_ms * c->speed);
}

int64_t fg_clock_tick_ms(const struct fg_clock *c)
{
    if (c->simulated)
        return fg_clock_now_ms(c);
    return fg_mono_ns() / 1000000;
}

int64_t fg_clock_tick_to_mono_ns(const struct fg_clock *c, int64_t tick_ms)
{
    if (!c->simulated)
        return tick_ms * 1000000LL;
    /* ceil, so that waking at this instant yields a tick >= tick_ms */
    double real_ns = ceil((double)(tick_ms - c->start_ms) * 1e6 / c->speed);
    return c->start_mono_ns + (int64_t)real_ns;
}

double fg_clock_real_ms(const struct fg_clock *c, int64_t tick_span_ms)
{
    return tick_span_ms > 0 ? (double)tick_span_ms / c->speed : 0.0;
}

int fg_clock_sleep_until(const struct fg_clock *c, int64_t tick_ms, const volatile int *stop)
{
    const int64_t slice_ns = 100000000LL;
    int64_t target = fg_clock_tick_to_mono_ns(c, tick_ms);
    for (;;) {
        if (stop && *stop)
            return 1;
        int64_t now = fg_mono_ns();
        if (now >= target)
            return 0;
        int64_t wake = target - now > slice_ns ? now + slice_ns : target;
        struct timespec ts = { .tv_sec = wake / 1000000000LL, .tv_nsec = wake % 1000000000LL };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            if (stop && *stop)
                return 1;
    }
}
