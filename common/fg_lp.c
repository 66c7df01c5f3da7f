/* fg_lp: InfluxDB line protocol encoder. The escaping follows the line protocol reference and what
 * InfluxDB 1.6's parser reads back, measured against a real server (tests/integration/test_lp_influx.py):
 * a name comes back exactly as given unless the protocol cannot carry it (see name_next). Pure. */
#include "fg_lp.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where a name goes decides which bytes are escaped and which backslashes survive. */
enum lp_ctx { CTX_MEASUREMENT, CTX_TAG, CTX_FIELD_KEY };

/* Per byte and context two bits: ESC = write it as "\c"; UNESC = InfluxDB 1.x reads "\c" as c when
 * parsing that element (so a literal backslash in front of c cannot be written). '\n' and '\r' are
 * written as spaces, so they carry the bits of ' '. */
#define ESC(ctx) (1u << (2 * (ctx)))
#define UNESC(ctx) (2u << (2 * (ctx)))
#define ALL3(b) (b(CTX_MEASUREMENT) | b(CTX_TAG) | b(CTX_FIELD_KEY))
#define SPACE_BITS (ALL3(ESC) | ALL3(UNESC))
static const unsigned char byte_class[256] = {
    [','] = ALL3(ESC) | ALL3(UNESC),
    [' '] = SPACE_BITS,
    ['\n'] = SPACE_BITS,
    ['\r'] = SPACE_BITS,
    ['='] = ESC(CTX_TAG) | ESC(CTX_FIELD_KEY) | ALL3(UNESC),
    ['"'] = UNESC(CTX_MEASUREMENT) | UNESC(CTX_FIELD_KEY),
};

/* ---- output cursor: counts everything, stores what fits, so overflow is checked once at the end */

struct lp_out {
    char *buf;
    size_t cap;
    size_t n;
};

static void out_byte(struct lp_out *o, char c)
{
    if (o->n < o->cap)
        o->buf[o->n] = c;
    o->n++;
}

static void out_mem(struct lp_out *o, const char *s, size_t n)
{
    if (o->n < o->cap)
        memcpy(o->buf + o->n, s, n <= o->cap - o->n ? n : o->cap - o->n);
    o->n += n;
}

/* ---- names: measurement, tag keys and values, field keys */

/* Walks a name as it will be written. The parser takes the byte after a backslash as escaped and
 * has no escape for a backslash itself, so a run of backslashes at the end of a name would escape
 * the separator after it ("t=a\ f=1" does not parse), and one before an escaped byte cannot be
 * written either: InfluxDB 1.6 rejects it in field keys, cannot query it in measurements, and its
 * line splitter, which counts backslashes in pairs, then misreads quotes and swallows the following
 * lines of the batch. Such runs are dropped; every other backslash is written and read back as is. */
struct name_it {
    const unsigned char *s;
    unsigned esc, unesc;   /* the context's bits in byte_class */
    size_t keep;           /* backslashes still to write from the current run */
    int pending;           /* escaped byte to write after its backslash, or -1 */
};

static void name_init(struct name_it *it, const char *s, enum lp_ctx ctx)
{
    it->s = (const unsigned char *)(s ? s : "");
    it->esc = ESC(ctx);
    it->unesc = UNESC(ctx);
    it->keep = 0;
    it->pending = -1;
}

/* The next byte of the written name, or -1 at its end. */
static int name_next(struct name_it *it)
{
    if (it->pending >= 0) {
        int c = it->pending;
        it->pending = -1;
        return c;
    }
    if (it->keep > 0) {
        it->keep--;
        return '\\';
    }
    while (*it->s == '\\') {
        size_t run = strspn((const char *)it->s, "\\");
        unsigned char after = it->s[run];
        it->s += run;
        if (after != '\0' && !(byte_class[after] & it->unesc)) {
            it->keep = run - 1;
            return '\\';
        }
    }
    if (*it->s == '\0')
        return -1;
    unsigned char c = *it->s++;
    if (c == '\n' || c == '\r')
        c = ' ';
    if (byte_class[c] & it->esc) {
        it->pending = c;
        return '\\';
    }
    return c;
}

static bool name_empty(const char *s, enum lp_ctx ctx)
{
    struct name_it it;
    name_init(&it, s, ctx);
    return name_next(&it) < 0;
}

/* Byte order of the written forms: what InfluxDB compares when it checks that tags are sorted. */
static int name_cmp(const char *a, const char *b, enum lp_ctx ctx)
{
    struct name_it ia, ib;
    name_init(&ia, a, ctx);
    name_init(&ib, b, ctx);
    for (;;) {
        int ca = name_next(&ia), cb = name_next(&ib);
        if (ca != cb || ca < 0)
            return ca - cb;
    }
}

static void out_name(struct lp_out *o, const char *s, enum lp_ctx ctx)
{
    const unsigned char *p = (const unsigned char *)s;
    /* fast path for the common plain name; the iterator takes over at the first special byte */
    while (*p && *p != '\\' && !byte_class[*p])
        p++;
    out_mem(o, s, (size_t)(p - (const unsigned char *)s));
    struct name_it it;
    name_init(&it, (const char *)p, ctx);
    for (int c; (c = name_next(&it)) >= 0;)
        out_byte(o, (char)c);
}

/* ---- values */

/* Decimal digits of v, written backwards from end; returns the first digit. */
static char *u64_digits(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static void out_i64(struct lp_out *o, int64_t v)
{
    char tmp[24], *end = tmp + sizeof tmp;
    /* negate in unsigned arithmetic so that INT64_MIN has a magnitude */
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *p = u64_digits(end, mag);
    if (v < 0)
        *--p = '-';
    out_mem(o, p, (size_t)(end - p));
}

/* Writes v if it is a decimal with at most 6 decimals and 15 significant digits, as %.15g would
 * (plain notation is what %g uses from 1e-4 up to 1e15). M / 10^k with both exact is correctly
 * rounded, like strtod of the printed digits, so the check proves that the text reads back as v.
 * Returns false, having written nothing, for any other value. */
static bool out_short_decimal(struct lp_out *o, double v)
{
    static const double p10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6 };
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e15))
        return false;
    for (int k = 0; k < 7; k++) {
        double t = a * p10[k];
        if (t >= 1e15)
            return false;
        if (t != floor(t) || (double)(int64_t)t / p10[k] != a)
            continue;
        char tmp[24], *end = tmp + sizeof tmp;
        char *p = u64_digits(end, (uint64_t)t);
        while (end - p <= k)   /* 5 at k=2 is 0.05: pad to "005" for a leading zero */
            *--p = '0';
        char *int_end = end - k;
        if (v < 0)
            out_byte(o, '-');
        out_mem(o, p, (size_t)(int_end - p));
        while (end > int_end && end[-1] == '0')
            end--;
        if (end > int_end) {
            out_byte(o, '.');
            out_mem(o, int_end, (size_t)(end - int_end));
        }
        return true;
    }
    return false;
}

/* The shortest of %.15g, %.16g and %.17g that strtod reads back as the same double (%.17g
 * always does). Whole numbers and short decimals, which is most of what meters report, take a
 * path without printf and strtod that gives the same text. */
static void out_float(struct lp_out *o, double v)
{
    if (v == 0) {
        out_mem(o, signbit(v) ? "-0" : "0", signbit(v) ? 2 : 1);   /* keeps the sign, as %g does */
        return;
    }
    if (out_short_decimal(o, v))
        return;
    char tmp[32];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    /* a locale with a decimal comma would break the line; the protocol wants '.' */
    for (char *c = strchr(tmp, ','); c; c = strchr(c, ','))
        *c = '.';
    out_mem(o, tmp, (size_t)n);
}

static void out_string(struct lp_out *o, const char *s)
{
    out_byte(o, '"');
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (c == '"' || c == '\\')
            out_byte(o, '\\');
        else if (c == '\n' || c == '\r')
            c = ' ';
        out_byte(o, c);
    }
    out_byte(o, '"');
}

static bool field_usable(const struct fg_lp_field *f)
{
    if (name_empty(f->key, CTX_FIELD_KEY))
        return false;
    switch (f->type) {
    case FG_LP_FLOAT:
        return isfinite(f->f);
    case FG_LP_STRING:
        return f->s != NULL;
    case FG_LP_INT:
    case FG_LP_BOOL:
        return true;
    }
    return false;
}

static void out_field(struct lp_out *o, const struct fg_lp_field *f)
{
    out_name(o, f->key, CTX_FIELD_KEY);
    out_byte(o, '=');
    switch (f->type) {
    case FG_LP_FLOAT:
        out_float(o, f->f);
        break;
    case FG_LP_INT:
        out_i64(o, f->i);
        out_byte(o, 'i');
        break;
    case FG_LP_STRING:
        out_string(o, f->s);
        break;
    case FG_LP_BOOL:
        if (f->b)
            out_mem(o, "true", 4);
        else
            out_mem(o, "false", 5);
        break;
    }
}

/* ---- the line */

static bool tag_usable(const struct fg_lp_tag *t)
{
    return !name_empty(t->key, CTX_TAG) && !name_empty(t->value, CTX_TAG);
}

/* Writes the usable tags in the byte order of their written keys by repeated selection of the
 * smallest key above the last one written: no scratch memory, O(ntags^2) comparisons, which is
 * nothing for the handful of tags a point has. A key given twice is written once (InfluxDB
 * rejects duplicate tags), with the first usable value. */
static void out_tags(struct lp_out *o, const struct fg_lp_tag *tags, size_t ntags)
{
    const struct fg_lp_tag *last = NULL;
    for (;;) {
        const struct fg_lp_tag *best = NULL;
        for (size_t i = 0; i < ntags; i++) {
            const struct fg_lp_tag *t = &tags[i];
            if (!tag_usable(t) || (last && name_cmp(t->key, last->key, CTX_TAG) <= 0))
                continue;
            if (!best || name_cmp(t->key, best->key, CTX_TAG) < 0)
                best = t;
        }
        if (!best)
            return;
        out_byte(o, ',');
        out_name(o, best->key, CTX_TAG);
        out_byte(o, '=');
        out_name(o, best->value, CTX_TAG);
        last = best;
    }
}

/* A measurement that the parser would not take as one: nothing left to write, or a '#' first
 * (after tabs, which InfluxDB skips), which makes the whole line a comment that it ignores. */
static bool measurement_usable(const char *m)
{
    if (name_empty(m, CTX_MEASUREMENT))
        return false;
    return m[strspn(m, "\t")] != '#';
}

int fg_lp_encode(char *buf, size_t len, const char *measurement, const struct fg_lp_tag *tags, size_t ntags,
                 const struct fg_lp_field *fields, size_t nfields, int64_t ts_ms)
{
    size_t first = 0;
    while (first < nfields && !field_usable(&fields[first]))
        first++;
    if (len > 0)
        buf[0] = '\0';
    if (first == nfields || !measurement_usable(measurement))
        return 0;

    /* the result is an int: a line longer than INT_MAX does not fit whatever the buffer */
    struct lp_out o = { buf, len < (size_t)INT_MAX ? len : (size_t)INT_MAX, 0 };
    out_name(&o, measurement, CTX_MEASUREMENT);
    out_tags(&o, tags, ntags);
    out_byte(&o, ' ');
    out_field(&o, &fields[first]);
    for (size_t i = first + 1; i < nfields; i++) {
        if (field_usable(&fields[i])) {
            out_byte(&o, ',');
            out_field(&o, &fields[i]);
        }
    }
    out_byte(&o, ' ');
    out_i64(&o, ts_ms);
    out_byte(&o, '\n');
    if (o.n >= o.cap) {
        if (len > 0)
            buf[0] = '\0';   /* never leave a partial line that looks like a line */
        return -ENOSPC;
    }
    buf[o.n] = '\0';
    return (int)o.n;
}
