/* col_wpolicy: the InfluxDB writer's response rules and back-off, kept pure so that every status,
 * body and Retry-After form is tested without a server. The writer thread (col_writer.c) applies them. */
#include "col_wpolicy.h"

#include "fg_mem.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longer Retry-After deltas than this are nonsense; they are capped anyway, this only bounds the maths. */
#define RETRY_AFTER_MAX_S 1000000000LL

/* ---- Retry-After ---------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (the usual era arithmetic; no libc time zone
 * state is touched, so this stays pure and thread-safe). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int month_index(const char *mon)
{
    static const char *const names[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    for (int i = 0; i < 12; i++)
        if (strcmp(mon, names[i]) == 0)
            return i + 1;
    return 0;
}

/* The three date forms HTTP/1.1 (RFC 9110 section 5.6.7) says a recipient must accept. */
static int parse_http_date(const char *s, int64_t *unix_ms)
{
    char wday[16], mon[4], tz[4];
    int d, y, hh, mm, ss, end = 0;
    bool ok = false;
    if (sscanf(s, "%15[A-Za-z], %2d %3s %4d %2d:%2d:%2d %3s%n", wday, &d, mon, &y, &hh, &mm, &ss, tz, &end) == 8)
        ok = true; /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
    else if (sscanf(s, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d %3s%n", wday, &d, mon, &y, &hh, &mm, &ss, tz, &end) == 8) {
        ok = true; /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT (two-digit years: 1970-2069) */
        y += y < 70 ? 2000 : 1900;
    } else if (sscanf(s, "%15[A-Za-z] %3s %2d %2d:%2d:%2d %4d%n", wday, mon, &d, &hh, &mm, &ss, &y, &end) == 7) {
        ok = true; /* asctime: Sun Nov  6 08:49:37 1994 */
        strcpy(tz, "GMT");
    }
    int m = ok ? month_index(mon) : 0;
    if (!ok || m == 0 || strcmp(tz, "GMT") != 0 || d < 1 || d > 31 || y < 1970 || hh > 23 || mm > 59 || ss > 60 ||
        hh < 0 || mm < 0 || ss < 0)
        return -EINVAL;
    while (isspace((unsigned char)s[end]))
        end++;
    if (s[end] != '\0')
        return -EINVAL;
    int64_t t = days_from_civil(y, (unsigned)m, (unsigned)d) * 86400 + hh * 3600 + mm * 60 + ss;
    *unix_ms = t * 1000;
    return 0;
}

static int64_t cap_wait(int64_t ms)
{
    if (ms < 0)
        return 0;
    return ms > COL_WPOLICY_RETRY_AFTER_CAP_MS ? COL_WPOLICY_RETRY_AFTER_CAP_MS : ms;
}

int64_t col_wpolicy_retry_after_ms(const char *value, int64_t now_unix_ms)
{
    if (!value)
        return -1;
    while (isspace((unsigned char)*value))
        value++;
    if (isdigit((unsigned char)*value)) {
        char *end;
        errno = 0;
        long long s = strtoll(value, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        if (*end != '\0')
            return -1;
        if (errno == ERANGE || s > RETRY_AFTER_MAX_S)
            s = RETRY_AFTER_MAX_S;
        return cap_wait((int64_t)s * 1000);
    }
    int64_t at_ms;
    if (parse_http_date(value, &at_ms) < 0)
        return -1;
    return cap_wait(at_ms - now_unix_ms);
}

int64_t col_wpolicy_backoff_ms(unsigned failures, int64_t retry_after_ms)
{
    if (retry_after_ms >= 0) {
        if (retry_after_ms < COL_WPOLICY_BACKOFF_FIRST_MS)
            return COL_WPOLICY_BACKOFF_FIRST_MS;
        return retry_after_ms > COL_WPOLICY_RETRY_AFTER_CAP_MS ? COL_WPOLICY_RETRY_AFTER_CAP_MS : retry_after_ms;
    }
    if (failures == 0)
        return 0;
    /* 1 s << 6 = 64 s already passes the cap; stop shifting before it could overflow */
    if (failures > 6)
        return COL_WPOLICY_BACKOFF_CAP_MS;
    int64_t ms = (int64_t)COL_WPOLICY_BACKOFF_FIRST_MS << (failures - 1);
    return ms > COL_WPOLICY_BACKOFF_CAP_MS ? COL_WPOLICY_BACKOFF_CAP_MS : ms;
}

/* ---- partial writes ------------------------------------------------------------------------- */

/* A server's error text: the JSON "error" (InfluxDB 1.x) or "message" (2.x, Cloud) decoded, so quoted
 * lines come out unescaped; any other body as it is. Returns an fg_malloc'ed string (caller frees) or NULL. */
static char *error_text(const char *body)
{
    if (!body || !*body)
        return NULL;
    cJSON *j = cJSON_Parse(body);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (!cJSON_IsString(e))
        e = cJSON_GetObjectItemCaseSensitive(j, "message");
    const char *src = cJSON_IsString(e) ? e->valuestring : body;
    char *t = fg_strdup(src);
    cJSON_Delete(j);
    return t;
}

static uint64_t count_substr(const char *s, const char *needle)
{
    uint64_t n = 0;
    size_t len = strlen(needle);
    for (const char *p = strstr(s, needle); p; p = strstr(p + len, needle))
        n++;
    return n;
}

/* Sums every "KEY<digits>" in s (InfluxDB 1.x ends a partial write with " dropped=N"). */
static uint64_t sum_after(const char *s, const char *key, bool *found)
{
    uint64_t sum = 0;
    size_t len = strlen(key);
    for (const char *p = strstr(s, key); p; p = strstr(p + len, key)) {
        if (!isdigit((unsigned char)p[len]))
            continue;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p + len, &end, 10);
        if (errno == ERANGE)
            continue;
        *found = true;
        sum += v;
    }
    return sum;
}

/* InfluxDB Cloud's "partial write error (5 accepted): 1 out of 6 points rejected". */
static uint64_t out_of_rejected(const char *s, bool *found)
{
    const char *p = strstr(s, " points rejected");
    if (!p)
        return 0;
    const char *of = NULL;
    for (const char *q = strstr(s, " out of "); q && q < p; q = strstr(q + 1, " out of "))
        of = q;
    if (!of)
        return 0;
    const char *start = of;
    while (start > s && isdigit((unsigned char)start[-1]))
        start--;
    if (start == of)
        return 0;
    *found = true;
    return strtoull(start, NULL, 10);
}

/* The number of refused lines a 400/422 body reports: one per "unable to parse" (a line that is not
 * line protocol) plus the "dropped=N" of points the engine refused (type conflicts, retention), or
 * Cloud's "N out of M points rejected". When the body says nothing countable (or counts 0, which a
 * refusal cannot mean) the whole batch counts as rejected: InfluxDB 1.6 answers a type conflict between
 * two lines of the same batch with a bare {"error":"field type conflict"} and stores none of the batch
 * (measured), and for any other uncountable refusal overcounting is the honest side.
 * InfluxDB 1.x reports only the type conflict when a body has both kinds, so parse errors can be
 * undercounted then; nothing in the response tells them apart. */
static uint64_t count_rejected(const char *msg, size_t nlines)
{
    if (!msg)
        return nlines;
    bool found = false;
    uint64_t n = count_substr(msg, "unable to parse '");
    found = n > 0;
    n += sum_after(msg, "dropped=", &found);
    n += out_of_rejected(msg, &found);
    if (!found || n == 0 || n > nlines)
        return nlines;
    return n;
}

/* Copies src[0..n) into dst (size dstlen) with control characters made visible as '?', so that a bad
 * line cannot forge log lines. */
static void copy_printable(char *dst, size_t dstlen, const char *src, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < dstlen; i++)
        dst[k++] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? '?' : src[i];
    dst[k] = '\0';
}

/* "unable to parse 'LINE': reason" -> LINE; the last "': " of that message line ends it, since LINE
 * itself may contain "': " inside a string field. Otherwise the first line of the message. */
static void first_bad_line(const char *msg, char *dst, size_t dstlen)
{
    dst[0] = '\0';
    if (!msg)
        return;
    static const char key[] = "unable to parse '";
    const char *p = strstr(msg, key);
    if (!p) {
        copy_printable(dst, dstlen, msg, strcspn(msg, "\n"));
        return;
    }
    p += sizeof key - 1;
    const char *eol = p + strcspn(p, "\n"), *end = NULL;
    for (const char *q = strstr(p, "': "); q && q < eol; q = strstr(q + 1, "': "))
        end = q;
    copy_printable(dst, dstlen, p, end ? (size_t)(end - p) : (size_t)(eol - p));
}

/* ---- the table ------------------------------------------------------------------------------ */

static enum col_wact act_of(long status, size_t nlines)
{
    if (status >= 200 && status < 300)
        return COL_W_ACK;
    if (status == 400 || status == 422)
        return COL_W_ACK_REJECTED;
    if (status == 413)
        return nlines > 1 ? COL_W_SPLIT : COL_W_ACK_REJECTED;
    /* 408 timeout and 429 too many requests are the client errors that pass by themselves */
    if (status == 408 || status == 429)
        return COL_W_RETRY;
    /* 401/403/404 and the rest of 4xx (405, 411, 415...) need a person to fix the URL, database or
     * credentials; the data stays in the spool meanwhile */
    if (status >= 400 && status < 500)
        return COL_W_AUTH;
    /* 0 (transport), 5xx, and 1xx/3xx which a write endpoint never answers unless a proxy is in the way */
    return COL_W_RETRY;
}

void col_wpolicy_classify(long status, const char *retry_after, const char *body, size_t nlines, int64_t now_unix_ms,
                          struct col_wdecision *out)
{
    memset(out, 0, sizeof *out);
    out->act = act_of(status, nlines);
    out->retry_after_ms = -1;
    if (out->act == COL_W_RETRY || out->act == COL_W_AUTH)
        out->retry_after_ms = col_wpolicy_retry_after_ms(retry_after, now_unix_ms);
    if (out->act != COL_W_ACK_REJECTED)
        return;
    char *msg = error_text(body);
    if (status == 413)
        out->rejected = nlines; /* one line alone is still too large: nothing else will ever take it */
    else
        out->rejected = count_rejected(msg ? msg : body, nlines);
    first_bad_line(msg ? msg : body, out->first_bad, sizeof out->first_bad);
    free(msg);
}
