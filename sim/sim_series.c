/* sim_series: CSV time series with linear interpolation and a calendar wrap-around, so that a
 * few months of measured PV or a year of load can drive a simulation at any date. */
#include "sim_series.h"

#include "fg_clock.h"
#include "fg_file.h"
#include "fg_mem.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS 86400000LL
#define MAX_FILE_BYTES (64L * 1024 * 1024)

struct sim_series {
    size_t n, cap;
    int64_t *t_ms;      /* strictly increasing */
    double *value;
    double max, min;
    int64_t offset_ms;  /* UTC offset of the first row: the file's idea of local time */
    int64_t day0;       /* local day number (days since 1970-01-01) of the first row */
    int first_year;     /* tm_year of that day */
    int64_t span_days;  /* whole days from day0 to the last row, at least 1 */
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    return a - floor_div(a, b) * b;
}

/* The UTC offset in minutes of an ISO time that fg_parse_iso8601_ms accepted: the time part
 * (after the 10-character date) holds no sign other than the offset's. */
static int iso_offset_min(const char *ts)
{
    const char *p = ts + 10;
    while (*p && *p != '+' && *p != '-' && *p != 'Z' && *p != 'z')
        p++;
    if (*p != '+' && *p != '-')
        return 0;
    int sign = *p == '-' ? -1 : 1;
    int hh = (p[1] - '0') * 10 + (p[2] - '0');
    const char *m = p[3] == ':' ? p + 4 : p + 3;
    int mm = (m[0] >= '0' && m[0] <= '9') ? (m[0] - '0') * 10 + (m[1] - '0') : 0;
    return sign * (hh * 60 + mm);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '"')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '"'))
        s[--n] = '\0';
    return s;
}

static void push_row(struct sim_series *s, int64_t t_ms, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->t_ms = fg_realloc(s->t_ms, s->cap * sizeof *s->t_ms);
        s->value = fg_realloc(s->value, s->cap * sizeof *s->value);
    }
    s->t_ms[s->n] = t_ms;
    s->value[s->n] = v;
    if (s->n == 0 || v > s->max)
        s->max = v;
    if (s->n == 0 || v < s->min)
        s->min = v;
    s->n++;
}

/* Parses one data row in place. Returns 0 (row added or a gap skipped) or -EINVAL with err. */
static int parse_row(struct sim_series *s, char *line, const char *name, size_t lineno,
                     char *err, size_t errlen)
{
    char *comma = strchr(line, ',');
    if (!comma) {
        snprintf(err, errlen, "%s:%zu: expected \"time,value\"", name, lineno);
        return -EINVAL;
    }
    *comma = '\0';
    char *val = comma + 1, *next = strchr(val, ',');
    if (next)
        *next = '\0';
    char *ts = trim(line);
    val = trim(val);
    int64_t t_ms;
    if (fg_parse_iso8601_ms(ts, &t_ms)) {
        snprintf(err, errlen, "%s:%zu: bad time \"%.40s\" (need ISO 8601 with offset)", name, lineno, ts);
        return -EINVAL;
    }
    if (!*val)
        return 0; /* a gap: interpolation bridges it */
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !isfinite(v)) {
        snprintf(err, errlen, "%s:%zu: bad value \"%.40s\"", name, lineno, val);
        return -EINVAL;
    }
    if (s->n && t_ms <= s->t_ms[s->n - 1]) {
        snprintf(err, errlen, "%s:%zu: time %s is not after the previous row", name, lineno, ts);
        return -EINVAL;
    }
    if (s->n == 0)
        s->offset_ms = (int64_t)iso_offset_min(ts) * 60000;
    push_row(s, t_ms, v);
    return 0;
}

static void finish(struct sim_series *s)
{
    s->day0 = floor_div(s->t_ms[0] + s->offset_ms, DAY_MS);
    time_t secs = (time_t)(s->day0 * 86400);
    struct tm tm;
    gmtime_r(&secs, &tm);
    s->first_year = tm.tm_year;
    s->span_days = floor_div(s->t_ms[s->n - 1] + s->offset_ms - s->day0 * DAY_MS, DAY_MS);
    if (s->span_days < 1)
        s->span_days = 1;
}

struct sim_series *sim_series_parse(const char *text, size_t len, const char *name, char *err,
                                    size_t errlen)
{
    struct sim_series *s = fg_calloc(1, sizeof *s);
    char *buf = fg_strndup(text, len);
    size_t lineno = 0;
    int rc = 0;
    for (char *line = buf, *nl; line && !rc; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = '\0';
        lineno++;
        if (lineno == 1 || !*trim(line))
            continue; /* the header, or a blank line */
        rc = parse_row(s, line, name, lineno, err, errlen);
    }
    free(buf);
    if (!rc && s->n == 0) {
        snprintf(err, errlen, "%s: no data rows", name);
        rc = -EINVAL;
    }
    if (rc) {
        sim_series_free(s);
        return NULL;
    }
    finish(s);
    return s;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    char *buf;
    int rc = fg_file_read(path, (size_t)MAX_FILE_BYTES, &buf, len);
    if (rc == -EFBIG)
        snprintf(err, errlen, "%s: larger than 64 MiB", path);
    else if (rc)
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    return rc ? NULL : buf;
}

struct sim_series *sim_series_load(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (!text)
        return NULL;
    struct sim_series *s = sim_series_parse(text, len, path, err, errlen);
    free(text);
    return s;
}

void sim_series_free(struct sim_series *s)
{
    if (!s)
        return;
    free(s->t_ms);
    free(s->value);
    free(s);
}

/* Same local time of day, on the file's day with the same calendar-day offset from its first
 * day as t has from the same month and day in the file's first year (so 15 July maps onto
 * 15 July whatever the year, and leap years don't shift the days). */
static int64_t map_into_range(const struct sim_series *s, int64_t t_ms)
{
    int64_t local_ms = t_ms + s->offset_ms;
    int64_t day = floor_div(local_ms, DAY_MS);
    int64_t tod_ms = local_ms - day * DAY_MS;
    time_t secs = (time_t)(day * 86400);
    struct tm tm, same = { 0 };
    gmtime_r(&secs, &tm);
    same.tm_year = s->first_year;
    same.tm_mon = tm.tm_mon;
    same.tm_mday = tm.tm_mday;
    int64_t same_day = (int64_t)timegm(&same) / 86400;
    int64_t k = floor_mod(same_day - s->day0, s->span_days);
    return (s->day0 + k) * DAY_MS + tod_ms - s->offset_ms;
}

double sim_series_at(const struct sim_series *s, int64_t t_ms)
{
    size_t n = s->n;
    if (t_ms < s->t_ms[0] || t_ms > s->t_ms[n - 1])
        t_ms = map_into_range(s, t_ms);
    if (t_ms <= s->t_ms[0])
        return s->value[0];
    if (t_ms >= s->t_ms[n - 1])
        return s->value[n - 1];
    size_t lo = 0, hi = n - 1; /* invariant: t_ms[lo] < t_ms <= t_ms[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->t_ms[mid] < t_ms)
            lo = mid;
        else
            hi = mid;
    }
    if (t_ms == s->t_ms[hi])
        return s->value[hi];
    double f = (double)(t_ms - s->t_ms[lo]) / (double)(s->t_ms[hi] - s->t_ms[lo]);
    return s->value[lo] + f * (s->value[hi] - s->value[lo]);
}

size_t sim_series_count(const struct sim_series *s)
{
    return s->n;
}

double sim_series_max(const struct sim_series *s)
{
    return s->max;
}

double sim_series_min(const struct sim_series *s)
{
    return s->min;
}
