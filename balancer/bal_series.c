/* bal_series: reads measured CSV series for the replay. A row is kept only if its clock moves forward,
 * so a logger that repeats an hour (DST fall-back, clock reset) cannot double energy; an empty value is
 * kept as a gap, so nothing is interpolated across it. */
#include "bal_series.h"
#include "fg_clock.h"
#include "fg_file.h"
#include "fg_mem.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIELD_MAX 64

/* A row as read, before the clock checks. */
struct raw_row {
    int64_t t_ms;
    double value;
    int32_t label_day;
    int16_t label_min;
};

/* ---- civil dates ----------------------------------------------------------------------------- */

int32_t bal_series_civil_day(int y, int m, int d)
{
    /* the era arithmetic of proleptic Gregorian calendars: March-based years make leap days last */
    int yy = y - (m <= 2);
    int era = (yy >= 0 ? yy : yy - 399) / 400;
    int yoe = yy - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + doe - 719468);
}

void bal_series_civil_date(int32_t day, int *y, int *m, int *d)
{
    int z = day + 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

int bal_series_civil_weekday(int32_t day)
{
    return (int)(((day % 7) + 7 + 3) % 7); /* 1970-01-01 was a Thursday */
}

char *bal_series_date_str(int32_t day, char *buf, size_t len)
{
    int y, m, d;
    bal_series_civil_date(day, &y, &m, &d);
    snprintf(buf, len, "%04d-%02d-%02d", y, m, d);
    return buf;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* ---- one row --------------------------------------------------------------------------------- */

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

/* A time without an offset is local time: mktime decides the offset (tm_isdst -1). */
static int local_time_ms(int y, int mo, int d, int h, int mi, int sec, int64_t *t_ms)
{
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi,
                     .tm_sec = sec, .tm_isdst = -1 };
    time_t t = mktime(&tm);
    if (t == (time_t)-1 && !(tm.tm_year == 69 && tm.tm_mon == 11 && tm.tm_mday == 31))
        return -1;
    *t_ms = (int64_t)t * 1000;
    return 0;
}

static int parse_time(const char *s, int64_t *t_ms, int32_t *label_day, int16_t *label_min)
{
    const char *p = s;
    int y, mo, d, h, mi, sec = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d) ||
        (*p != ' ' && *p != 'T' && *p != 't'))
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
        return -1;
    if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59)
        return -1;
    if (*p == ':') {
        p++;
        if (digits(&p, 2, &sec) || sec > 60)
            return -1;
        if (*p == '.')
            for (p++; *p >= '0' && *p <= '9'; p++)
                ;
    }
    *label_day = bal_series_civil_day(y, mo, d);
    *label_min = (int16_t)(h * 60 + mi);
    if (*p == '\0')
        return local_time_ms(y, mo, d, h, mi, sec, t_ms);
    return fg_parse_iso8601_ms(s, t_ms) ? -1 : 0;
}

/* Copies field [b, e) without surrounding blanks and double quotes into out (truncated). */
static void field_copy(const char *b, const char *e, char *out, size_t outlen)
{
    while (b < e && (*b == ' ' || *b == '\t'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    if (e - b >= 2 && *b == '"' && e[-1] == '"') {
        b++;
        e--;
    }
    size_t n = (size_t)(e - b) < outlen - 1 ? (size_t)(e - b) : outlen - 1;
    memcpy(out, b, n);
    out[n] = '\0';
}

/* Splits line [b, e) into its first two fields; returns the number of fields found (1 or 2). */
static int split2(const char *b, const char *e, char *f1, char *f2)
{
    const char *c1 = memchr(b, ',', (size_t)(e - b));
    if (!c1) {
        field_copy(b, e, f1, FIELD_MAX);
        f2[0] = '\0';
        return 1;
    }
    const char *c2 = memchr(c1 + 1, ',', (size_t)(e - c1 - 1));
    field_copy(b, c1, f1, FIELD_MAX);
    field_copy(c1 + 1, c2 ? c2 : e, f2, FIELD_MAX);
    return 2;
}

/* Returns 0 for a number, 1 for an empty (or NaN) value, -1 for an unreadable one. */
static int parse_value(const char *f, double *out)
{
    *out = NAN;
    if (!f[0])
        return 1;
    char *end;
    errno = 0;
    double v = strtod(f, &end);
    if (end == f || *end || errno == ERANGE)
        return -1;
    if (!isfinite(v))
        return 1;
    *out = v;
    return 0;
}

/* ---- the file -------------------------------------------------------------------------------- */

struct reader {
    const char *name;
    struct raw_row *rows;
    size_t n, cap;
    size_t nrows, bad, empty;
    bool seen_first;
    char column[64];
};

static void reader_add(struct reader *r, const struct raw_row *row)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->rows = fg_realloc(r->rows, r->cap * sizeof *r->rows);
    }
    r->rows[r->n++] = *row;
}

/* One non-blank line. Returns 0, or -1 with err for a first line that is neither header nor row. */
static int reader_line(struct reader *r, const char *b, const char *e, size_t lineno, char *err, size_t errlen)
{
    char f1[FIELD_MAX], f2[FIELD_MAX];
    int nf = split2(b, e, f1, f2);
    struct raw_row row;
    bool first = !r->seen_first;
    r->seen_first = true;
    if (parse_time(f1, &row.t_ms, &row.label_day, &row.label_min)) {
        if (first) {
            if (nf < 2) {
                snprintf(err, errlen, "%s:%zu: expected a header or a row TIME,VALUE", r->name, lineno);
                return -1;
            }
            fg_strlcpy(r->column, f2, sizeof r->column);
            return 0;
        }
        r->nrows++;
        r->bad++;
        return 0;
    }
    r->nrows++;
    int vrc = parse_value(f2, &row.value);
    if (vrc < 0 || nf < 2)
        r->bad++;
    if (vrc != 0)
        r->empty++;
    reader_add(r, &row);
    return 0;
}

static int reader_text(struct reader *r, const char *text, size_t len, char *err, size_t errlen)
{
    const char *p = text, *end = text + len;
    size_t lineno = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        lineno++;
        const char *q = p;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < e && reader_line(r, p, e, lineno, err, errlen))
            return -1;
        p = nl ? nl + 1 : end;
    }
    return 0;
}

/* Marks a lone row out of line with its two neighbours (which agree with each other): a single
 * wild timestamp must not swallow the rows after it. */
static bool lone_outlier(const struct raw_row *rows, size_t n, size_t i)
{
    if (i == 0 || i + 1 >= n)
        return false;
    int64_t a = rows[i - 1].t_ms, t = rows[i].t_ms, b = rows[i + 1].t_ms;
    return a < b && (t <= a || t > b); /* t == b: the first of two equal rows stays */
}

static void keep_rows(struct bal_series *s, const struct raw_row *rows, size_t n)
{
    s->t_ms = fg_malloc((n ? n : 1) * sizeof *s->t_ms);
    s->value = fg_malloc((n ? n : 1) * sizeof *s->value);
    s->label_day = fg_malloc((n ? n : 1) * sizeof *s->label_day);
    s->label_min = fg_malloc((n ? n : 1) * sizeof *s->label_min);
    for (size_t i = 0; i < n; i++) {
        if (lone_outlier(rows, n, i) || (s->n && rows[i].t_ms <= s->t_ms[s->n - 1])) {
            s->clock_faults++;
            if (!isfinite(rows[i].value))
                s->empty--; /* a dropped row is a clock fault, not a gap */
            continue;
        }
        s->t_ms[s->n] = rows[i].t_ms;
        s->value[s->n] = rows[i].value;
        s->label_day[s->n] = rows[i].label_day;
        s->label_min[s->n] = rows[i].label_min;
        s->n++;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The usual spacing: the most frequent difference (the smaller one on a tie). */
static void find_step(struct bal_series *s)
{
    if (s->n < 2)
        return;
    size_t nd = s->n - 1;
    int64_t *d = fg_malloc(nd * sizeof *d);
    for (size_t i = 0; i < nd; i++)
        d[i] = s->t_ms[i + 1] - s->t_ms[i];
    qsort(d, nd, sizeof *d, cmp_i64);
    int64_t best = d[0];
    size_t best_n = 0;
    for (size_t i = 0; i < nd;) {
        size_t j = i;
        while (j < nd && d[j] == d[i])
            j++;
        if (j - i > best_n) {
            best = d[i];
            best_n = j - i;
        }
        i = j;
    }
    free(d);
    s->step_s = best / 1000 > 0 ? (int)(best / 1000) : 1;
    int64_t step_ms = (int64_t)s->step_s * 1000;
    for (size_t i = 0; i + 1 < s->n; i++) {
        int64_t diff = s->t_ms[i + 1] - s->t_ms[i];
        if (2 * diff > 3 * step_ms)
            s->missing += (size_t)((diff + step_ms / 2) / step_ms - 1);
    }
}

static void index_days(struct bal_series *s)
{
    s->days = fg_malloc((s->n ? s->n : 1) * sizeof *s->days);
    for (size_t i = 0; i < s->n; i++) {
        struct bal_series_day *dd = s->ndays ? &s->days[s->ndays - 1] : NULL;
        if (!dd || dd->day != s->label_day[i]) {
            dd = &s->days[s->ndays++];
            *dd = (struct bal_series_day){ .day = s->label_day[i], .first = i };
        }
        dd->count++;
        dd->known += isfinite(s->value[i]) ? 1 : 0;
    }
}

struct bal_series *bal_series_parse(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    struct reader r = { .name = name };
    if (reader_text(&r, text, len, err, errlen)) {
        free(r.rows);
        return NULL;
    }
    if (r.n == 0) {
        snprintf(err, errlen, "%s: no rows with a readable time", name);
        free(r.rows);
        return NULL;
    }
    struct bal_series *s = fg_calloc(1, sizeof *s);
    s->rows = r.nrows;
    s->bad = r.bad;
    s->empty = r.empty;
    fg_strlcpy(s->column, r.column, sizeof s->column);
    keep_rows(s, r.rows, r.n);
    free(r.rows);
    find_step(s);
    index_days(s);
    return s;
}

struct bal_series *bal_series_load(const char *path, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    int rc = fg_file_read(path, SIZE_MAX - 1, &buf, &len);
    if (rc) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
        return NULL;
    }
    struct bal_series *s = bal_series_parse(buf, len, path, err, errlen);
    free(buf);
    return s;
}

void bal_series_free(struct bal_series *s)
{
    if (!s)
        return;
    free(s->t_ms);
    free(s->value);
    free(s->label_day);
    free(s->label_min);
    free(s->days);
    free(s);
}

/* ---- reading values -------------------------------------------------------------------------- */

/* The last sample at or before t_ms, or -1. */
static long sample_before(const struct bal_series *s, int64_t t_ms)
{
    if (!s->n || t_ms < s->t_ms[0])
        return -1;
    size_t lo = 0, hi = s->n; /* invariant: t[lo] <= t_ms, and t[hi] > t_ms (hi == n: none) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->t_ms[mid] <= t_ms)
            lo = mid;
        else
            hi = mid;
    }
    return (long)lo;
}

bool bal_series_at(const struct bal_series *s, int64_t t_ms, double *value)
{
    *value = 0;
    long i = sample_before(s, t_ms);
    if (i < 0)
        return false;
    double a = s->value[i];
    if (s->t_ms[i] == t_ms) {
        if (!isfinite(a))
            return false;
        *value = a;
        return true;
    }
    if ((size_t)i + 1 >= s->n)
        return false;
    double b = s->value[i + 1];
    int64_t span = s->t_ms[i + 1] - s->t_ms[i];
    if (!isfinite(a) || !isfinite(b) || 2 * span > 3 * (int64_t)s->step_s * 1000)
        return false;
    *value = a + (b - a) * (double)(t_ms - s->t_ms[i]) / (double)span;
    return true;
}

static const struct bal_series_day *find_day(const struct bal_series *s, int32_t day)
{
    for (size_t k = 0; k < s->ndays; k++)
        if (s->days[k].day == day)
            return &s->days[k];
    return NULL;
}

struct wall_pt {
    int min;
    double v;
    size_t idx;
};

/* The day's samples by wall minute; a repeated (fall-back) hour is read once, and the next date's
 * 00:00 closes the day. Returns the number of points in pts (room for count + 1). */
static size_t wall_points(const struct bal_series *s, const struct bal_series_day *dd, struct wall_pt *pts)
{
    size_t np = 0;
    for (size_t i = dd->first; i < dd->first + dd->count; i++) {
        if (np && s->label_min[i] <= pts[np - 1].min)
            continue;
        pts[np++] = (struct wall_pt){ s->label_min[i], s->value[i], i };
    }
    size_t nx = dd->first + dd->count;
    if (nx < s->n && s->label_day[nx] == dd->day + 1 && s->label_min[nx] == 0)
        pts[np++] = (struct wall_pt){ BAL_SERIES_DAY_MIN, s->value[nx], nx };
    return np;
}

static bool wall_adjacent(const struct bal_series *s, const struct wall_pt *p, const struct wall_pt *q)
{
    int64_t step_ms = (int64_t)s->step_s * 1000;
    return 2 * (int64_t)(q->min - p->min) * 60000 <= 3 * step_ms || 2 * (s->t_ms[q->idx] - s->t_ms[p->idx]) <= 3 * step_ms;
}

size_t bal_series_wall_day(const struct bal_series *s, int32_t label_day, double *out_w, bool *known)
{
    for (int m = 0; m < BAL_SERIES_DAY_MIN; m++) {
        out_w[m] = 0;
        known[m] = false;
    }
    const struct bal_series_day *dd = find_day(s, label_day);
    if (!dd)
        return 0;
    struct wall_pt *pts = fg_malloc((dd->count + 1) * sizeof *pts);
    size_t np = wall_points(s, dd, pts), nknown = 0, k = 0;
    for (int m = 0; m < BAL_SERIES_DAY_MIN && np >= 2; m++) {
        double x = m + 0.5;
        while (k + 2 < np && pts[k + 1].min <= x)
            k++;
        const struct wall_pt *p = &pts[k], *q = &pts[k + 1];
        if (x < p->min || x >= q->min || !isfinite(p->v) || !isfinite(q->v) || !wall_adjacent(s, p, q))
            continue;
        out_w[m] = p->v + (q->v - p->v) * (x - p->min) / (double)(q->min - p->min);
        known[m] = true;
        nknown++;
    }
    free(pts);
    return nknown;
}

static int day_of_year(int32_t day)
{
    int y, m, d;
    bal_series_civil_date(day, &y, &m, &d);
    return day - bal_series_civil_day(y, 1, 1);
}

int32_t bal_series_pair_day(const struct bal_series *s, int32_t day)
{
    int wd = bal_series_civil_weekday(day), doy = day_of_year(day);
    int32_t best = INT32_MIN;
    int best_dist = 0;
    int64_t best_abs = 0;
    for (size_t k = 0; k < s->ndays; k++) {
        const struct bal_series_day *dd = &s->days[k];
        if ((int64_t)dd->known * s->step_s < 20 * 3600 || bal_series_civil_weekday(dd->day) != wd)
            continue;
        int dist = abs(day_of_year(dd->day) - doy);
        if (365 - dist < dist)
            dist = 365 - dist < 0 ? 0 : 365 - dist;
        int64_t ad = llabs((long long)dd->day - day);
        if (best == INT32_MIN || dist < best_dist || (dist == best_dist && ad < best_abs)) {
            best = dd->day;
            best_dist = dist;
            best_abs = ad;
        }
    }
    return best;
}

int32_t bal_series_local_day(int64_t t_ms, int *minute)
{
    time_t t = (time_t)(t_ms >= 0 ? t_ms / 1000 : -((-t_ms + 999) / 1000));
    struct tm tm;
    localtime_r(&t, &tm);
    if (minute)
        *minute = tm.tm_hour * 60 + tm.tm_min;
    return bal_series_civil_day(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

bool bal_series_paired_at(struct bal_series_paired *p, int64_t t_ms, double *value)
{
    int minute;
    int32_t day = bal_series_local_day(t_ms, &minute);
    if (!p->valid || day != p->day) {
        int32_t paired = bal_series_pair_day(p->s, day);
        p->day = day;
        p->valid = true;
        if (paired == INT32_MIN || !bal_series_wall_day(p->s, paired, p->w, p->known))
            memset(p->known, 0, sizeof p->known);
    }
    *value = p->known[minute] ? p->w[minute] : 0;
    return p->known[minute];
}
