/* col_writer: the InfluxDB writer thread: spool -> gzip -> libcurl POST -> col_wpolicy decision ->
 * ack, split or back off. One request in flight, oldest lines first; lines leave the spool only after
 * the server answered for them, so an outage of any length loses nothing here. */
#include "col_writer.h"

#include "col_wpolicy.h"
#include "fg_clock.h"
#include "fg_dl.h"
#include "fg_log.h"
#include "fg_mem.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#define SUBSYS "influx"

/* libcurl and zlib are loaded at run time (fg_dl) by col_writer_new and col_writer_gzip, so that a
 * collector without an InfluxDB output never maps them (libcurl pulls in some 25 more libraries).
 * The tables are filled once, under fg_dl's lock, and only read afterwards. */
#define CURL_FUNCS(X)                                                                               \
    X(easy_cleanup) X(easy_escape) X(easy_getinfo) X(easy_init) X(easy_perform) X(easy_setopt)      \
    X(easy_strerror) X(free) X(global_cleanup) X(global_init) X(slist_append) X(slist_free_all)
#define Z_FUNCS(X) X(deflateInit2_) X(deflateBound) X(deflate) X(deflateEnd)
#define CU_MEMBER(f) __typeof__(curl_##f) *f;
#define CU_SYM(f) FG_DL_SYM(struct curl_api, f, "curl_" #f),
#define Z_MEMBER(f) __typeof__(f) *f;
#define Z_SYM(f) FG_DL_SYM(struct zlib_api, f, #f),
static struct curl_api { CURL_FUNCS(CU_MEMBER) } cu;
static struct zlib_api { Z_FUNCS(Z_MEMBER) } zl;
static const struct fg_dl_sym cu_syms[] = { CURL_FUNCS(CU_SYM) };
static const struct fg_dl_sym z_syms[] = { Z_FUNCS(Z_SYM) };
static struct fg_dl_lib curl_lib = FG_DL_LIB("libcurl.so.4", "libcurl4", cu_syms, &cu);
static struct fg_dl_lib zlib_lib = FG_DL_LIB("libz.so.1", "zlib1g", z_syms, &zl);

/* The response body is only read for error messages; InfluxDB's are short. */
#define RESP_BODY_MAX 16384
/* Text per request at most (a batch of 5000 device lines is about 1 MB). */
#define BATCH_BYTES_MAX (16u << 20)
/* After a 413 the writer keeps the smaller batch size that worked, and tries a doubled one again
 * after this many good requests in a row (the limit may have been a proxy's, since raised). */
#define GROW_AFTER_OK 64

enum send_result { SENT_FULL, SENT_PARTIAL, SPOOL_EMPTY, SEND_FAILED };

struct response {
    char body[RESP_BODY_MAX + 1];
    size_t len;
    char retry_after[128];
};

struct col_writer {
    /* fixed after new */
    char *url;                   /* with path and query */
    char *username, *password;
    struct curl_slist *headers;
    unsigned batch_max, flush_ms;
    size_t batch_bytes_max;
    bool gzip;
    struct col_wsource src;
    CURL *curl;
    char curl_err[CURL_ERROR_SIZE];

    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* under lock */
    size_t waiting;              /* lines kicked since the last peek */
    size_t lines_cap;            /* lines per request now (batch_max, less after a 413) */
    bool stopping;
    int64_t drain_until_ms;
    int64_t backoff_until_ms;
    struct col_writer_stats stats;
    /* read by curl's progress callback: the monotonic ms at which a request in flight is abandoned */
    _Atomic int64_t abort_at_ms;

    /* writer thread only */
    unsigned failures, ok_in_row;
    int64_t next_send_ms;
    struct col_spool_batch batch;
    unsigned char *gz;
    size_t gz_cap;
    struct response resp;
    struct fg_complain c_down, c_auth, c_rejected, c_spool;
};

static int64_t mono_ms(void)
{
    return fg_mono_ns() / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- gzip ----------------------------------------------------------------------------------- */

long col_writer_gzip(const char *in, size_t len, unsigned char **out, size_t *cap)
{
    char why[256];
    if (fg_dl_load(&zlib_lib, why, sizeof why) < 0)
        return -ENOENT;
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip wrapper, which is what Content-Encoding: gzip means */
    if (zl.deflateInit2_(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, (int)sizeof z) != Z_OK)
        return -EIO;
    size_t bound = zl.deflateBound(&z, (uLong)len);
    if (!*out || *cap < bound) {
        *out = fg_realloc(*out, bound);
        *cap = bound;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = *out;
    z.avail_out = (uInt)*cap;
    int rc = zl.deflate(&z, Z_FINISH);
    long n = (long)z.total_out;
    zl.deflateEnd(&z);
    return rc == Z_STREAM_END ? n : -EIO;
}

/* ---- libcurl callbacks ---------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct response *r = ud;
    size_t n = size * nmemb, room = RESP_BODY_MAX - r->len;
    size_t take = n < room ? n : room;
    memcpy(r->body + r->len, data, take);
    r->len += take;
    r->body[r->len] = '\0';
    return n; /* the rest is discarded, not an error */
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct response *r = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        r->retry_after[0] = '\0'; /* a new response (after a 100 Continue): forget the previous one's */
    } else if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        size_t k = sizeof name - 1;
        while (k < n && (data[k] == ' ' || data[k] == '\t'))
            k++;
        size_t len = n - k;
        while (len > 0 && (data[k + len - 1] == '\r' || data[k + len - 1] == '\n' || data[k + len - 1] == ' '))
            len--;
        if (len >= sizeof r->retry_after)
            len = sizeof r->retry_after - 1;
        memcpy(r->retry_after, data + k, len);
        r->retry_after[len] = '\0';
    }
    return n;
}

/* Lets col_writer_stop end a request that hangs (a frozen database) instead of waiting for the timeout. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    struct col_writer *w = ud;
    return mono_ms() >= atomic_load(&w->abort_at_ms) ? 1 : 0;
}

/* ---- the spool as a source ------------------------------------------------------------------ */

static int spool_peek(void *ud, size_t max_lines, size_t max_bytes, struct col_spool_batch *b)
{
    return col_spool_peek(ud, max_lines, max_bytes, b);
}

static int spool_ack(void *ud, int64_t first_id, int64_t last_id)
{
    return col_spool_ack(ud, first_id, last_id);
}

static void spool_release(void *ud)
{
    col_spool_release(ud);
}

struct col_wsource col_writer_spool_source(struct col_spool *s)
{
    return (struct col_wsource){ spool_peek, col_spool_batch_clear, spool_ack, spool_release, s };
}

/* ---- construction --------------------------------------------------------------------------- */

void col_writer_opts_default(struct col_writer_opts *o)
{
    memset(o, 0, sizeof *o);
    o->api = 1;
    o->batch_max = 5000;
    o->flush_ms = 5000;
    o->gzip = true;
    o->connect_timeout_ms = 5000;
    o->timeout_ms = 10000;
}

static bool empty(const char *s)
{
    return !s || !*s;
}

static int check_opts(const struct col_writer_opts *o, const struct col_wsource *src, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!src || !src->peek || !src->clear || !src->ack)
        why = "the spool source is incomplete";
    else if (empty(o->url) || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0))
        why = "influx url must start with http:// or https://";
    else if (o->api != 1 && o->api != 2)
        why = "influx api must be v1 or v2";
    else if (o->api == 1 && empty(o->database))
        why = "influx api v1 needs a database";
    else if (o->api == 2 && (empty(o->org) || empty(o->bucket)))
        why = "influx api v2 needs an org and a bucket";
    else if (o->token && strpbrk(o->token, "\r\n"))
        why = "influx token contains a line break";
    if (why)
        snprintf(err, errlen, "%s", why);
    return why ? -EINVAL : 0;
}

/* Appends "&key=value" (or "?key=value" for the first) with value URL-escaped. */
static void add_param(CURL *c, char **url, const char *key, const char *value)
{
    char *esc = cu.easy_escape(c, value, 0);
    size_t len = strlen(*url) + strlen(key) + strlen(esc ? esc : "") + 3;
    char *u = fg_malloc(len);
    snprintf(u, len, "%s%c%s=%s", *url, strchr(*url, '?') ? '&' : '?', key, esc ? esc : "");
    cu.free(esc);
    free(*url);
    *url = u;
}

static char *build_url(CURL *c, const struct col_writer_opts *o)
{
    size_t base = strlen(o->url);
    while (base > 0 && o->url[base - 1] == '/')
        base--;
    const char *path = o->api == 1 ? "/write" : "/api/v2/write";
    char *url = fg_malloc(base + strlen(path) + 1);
    memcpy(url, o->url, base);
    strcpy(url + base, path);
    if (o->api == 1) {
        add_param(c, &url, "db", o->database);
        if (!empty(o->rp))
            add_param(c, &url, "rp", o->rp);
    } else {
        add_param(c, &url, "org", o->org);
        add_param(c, &url, "bucket", o->bucket);
    }
    add_param(c, &url, "precision", "ms");
    return url;
}

static struct curl_slist *build_headers(const struct col_writer_opts *o)
{
    struct curl_slist *h = cu.slist_append(NULL, "Content-Type: text/plain; charset=utf-8");
    /* libcurl would otherwise wait for "100 Continue" before sending a large body */
    h = cu.slist_append(h, "Expect:");
    if (o->gzip)
        h = cu.slist_append(h, "Content-Encoding: gzip");
    if (o->api == 2 && !empty(o->token)) {
        size_t len = strlen(o->token) + 32;
        char *line = fg_malloc(len);
        snprintf(line, len, "Authorization: Token %s", o->token);
        h = cu.slist_append(h, line);
        memset(line, 0, len); /* the token should not linger in freed memory */
        free(line);
    }
    return h;
}

static void setup_curl(struct col_writer *w, const struct col_writer_opts *o)
{
    CURL *c = w->curl;
    cu.easy_setopt(c, CURLOPT_URL, w->url);
    cu.easy_setopt(c, CURLOPT_POST, 1L);
    cu.easy_setopt(c, CURLOPT_HTTPHEADER, w->headers);
    cu.easy_setopt(c, CURLOPT_USERAGENT, "fabgrid-collector");
    cu.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(o->connect_timeout_ms ? o->connect_timeout_ms : 5000));
    cu.easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(o->timeout_ms ? o->timeout_ms : 10000));
    cu.easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* libcurl must not touch signals in a thread */
    cu.easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    cu.easy_setopt(c, CURLOPT_ERRORBUFFER, w->curl_err);
    cu.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    cu.easy_setopt(c, CURLOPT_WRITEDATA, &w->resp);
    cu.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    cu.easy_setopt(c, CURLOPT_HEADERDATA, &w->resp);
    cu.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    cu.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    cu.easy_setopt(c, CURLOPT_XFERINFODATA, w);
    if (o->api == 1 && !empty(o->username)) {
        cu.easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        cu.easy_setopt(c, CURLOPT_USERNAME, w->username);
        cu.easy_setopt(c, CURLOPT_PASSWORD, w->password ? w->password : "");
    }
}

struct col_writer *col_writer_new(const struct col_writer_opts *o, const struct col_wsource *src, char *err,
                                  size_t errlen)
{
    if (check_opts(o, src, err, errlen) < 0)
        return NULL;
    if (fg_dl_load(&curl_lib, err, errlen) < 0 || (o->gzip && fg_dl_load(&zlib_lib, err, errlen) < 0))
        return NULL;
    if (cu.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "libcurl initialisation failed");
        return NULL;
    }
    struct col_writer *w = fg_calloc(1, sizeof *w);
    w->curl = cu.easy_init();
    if (!w->curl) {
        snprintf(err, errlen, "libcurl: cannot create a handle");
        free(w);
        cu.global_cleanup();
        return NULL;
    }
    w->src = *src;
    w->batch_max = o->batch_max ? o->batch_max : 5000;
    w->flush_ms = o->flush_ms ? o->flush_ms : 5000;
    w->lines_cap = w->batch_max;
    w->batch_bytes_max = o->batch_bytes_max ? o->batch_bytes_max : BATCH_BYTES_MAX;
    w->gzip = o->gzip;
    w->url = build_url(w->curl, o);
    w->username = empty(o->username) ? NULL : fg_strdup(o->username);
    w->password = empty(o->password) ? NULL : fg_strdup(o->password);
    w->headers = build_headers(o);
    w->stats.last_status = -1;
    atomic_init(&w->abort_at_ms, INT64_MAX);
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* flush and back-off deadlines are monotonic */
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    setup_curl(w, o);
    return w;
}

/* ---- one request ---------------------------------------------------------------------------- */

/* Posts data[0..len) and returns the HTTP status, or 0 for a transport failure (w->curl_err says why). */
static long post(struct col_writer *w, const char *data, size_t len)
{
    const void *body = data;
    long sent = (long)len;
    if (w->gzip) {
        sent = col_writer_gzip(data, len, &w->gz, &w->gz_cap);
        if (sent < 0) {
            snprintf(w->curl_err, sizeof w->curl_err, "gzip failed");
            return 0;
        }
        body = w->gz;
    }
    w->resp.len = 0;
    w->resp.body[0] = '\0';
    w->resp.retry_after[0] = '\0';
    w->curl_err[0] = '\0';
    cu.easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)sent); /* binary: no strlen */
    cu.easy_setopt(w->curl, CURLOPT_POSTFIELDS, body);
    int64_t t0 = mono_ms();
    CURLcode cc = cu.easy_perform(w->curl);
    int64_t took = mono_ms() - t0;
    long status = 0;
    if (cc == CURLE_OK)
        cu.easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
    else if (!w->curl_err[0])
        snprintf(w->curl_err, sizeof w->curl_err, "%s", cu.easy_strerror(cc));
    pthread_mutex_lock(&w->lock);
    w->stats.requests++;
    w->stats.bytes_raw += len;
    w->stats.bytes_sent += (uint64_t)sent;
    w->stats.last_status = status;
    if (took > w->stats.request_max_ms)
        w->stats.request_max_ms = took;
    pthread_mutex_unlock(&w->lock);
    /* the compressed body is not kept between requests: a backlog's large batch would otherwise hold
     * its size for the life of the process */
    free(w->gz);
    w->gz = NULL;
    w->gz_cap = 0;
    return status;
}

static bool stop_abandoned(struct col_writer *w)
{
    return mono_ms() >= atomic_load(&w->abort_at_ms);
}

static void on_success(struct col_writer *w)
{
    w->failures = 0;
    pthread_mutex_lock(&w->lock);
    w->backoff_until_ms = 0;
    w->stats.backoff_until_ms = 0;
    if (++w->ok_in_row >= GROW_AFTER_OK && w->lines_cap < w->batch_max) {
        w->lines_cap = w->lines_cap * 2 < w->batch_max ? w->lines_cap * 2 : w->batch_max;
        w->ok_in_row = 0;
    }
    pthread_mutex_unlock(&w->lock);
    fg_complain_release(&w->c_down, SUBSYS, NULL, "writes to InfluxDB work again");
    fg_complain_release(&w->c_auth, SUBSYS, NULL, "InfluxDB accepts the writes again");
}

/* Holds the next attempt for wait_ms; count_error: the attempt reached (or tried to reach) the server. */
static void back_off(struct col_writer *w, int64_t now, int64_t wait_ms, bool count_error)
{
    pthread_mutex_lock(&w->lock);
    w->ok_in_row = 0;
    w->backoff_until_ms = now + wait_ms;
    w->stats.backoff_until_ms = w->backoff_until_ms;
    w->stats.write_errors += count_error;
    pthread_mutex_unlock(&w->lock);
}

/* The data stays in the spool; the next attempt waits per col_wpolicy_backoff_ms. */
static void on_failure(struct col_writer *w, long status, const struct col_wdecision *d, size_t nlines)
{
    int64_t now = mono_ms();
    int64_t wait_ms = col_wpolicy_backoff_ms(++w->failures, d->retry_after_ms);
    back_off(w, now, wait_ms, true);
    char what[CURL_ERROR_SIZE + 16];
    if (status)
        snprintf(what, sizeof what, "HTTP %ld%s%.120s", status, w->resp.len ? ": " : "", w->resp.body);
    else
        snprintf(what, sizeof what, "%s", w->curl_err);
    if (d->act == COL_W_AUTH)
        fg_complain(&w->c_auth, now, FG_LOG_ERROR, SUBSYS, NULL,
                    "InfluxDB refused the write (%s): check url, database/bucket and credentials; "
                    "keeping %zu lines in the spool, next attempt in %lld ms",
                    what, nlines, (long long)wait_ms);
    else
        fg_complain(&w->c_down, now, FG_LOG_WARN, SUBSYS, NULL,
                    "write failed (%s): keeping %zu lines in the spool, next attempt in %lld ms", what, nlines,
                    (long long)wait_ms);
}

/* Removes lines [lo, hi) of the batch from the spool and counts them. Returns 0 or -EIO. */
static int ack_range(struct col_writer *w, size_t lo, size_t hi, uint64_t rejected)
{
    const struct col_spool_batch *b = &w->batch;
    int rc = w->src.ack(w->src.ud, b->ids[lo], b->ids[hi - 1]);
    if (rc < 0) {
        /* the lines would be sent again: InfluxDB stores a repeated point once, so this costs only time */
        fg_complain(&w->c_spool, mono_ms(), FG_LOG_ERROR, SUBSYS, NULL, "spool: cannot remove %zu sent lines: %s",
                    hi - lo, strerror(-rc));
        return -EIO;
    }
    pthread_mutex_lock(&w->lock);
    w->stats.written += (hi - lo) - rejected;
    w->stats.rejected += rejected;
    pthread_mutex_unlock(&w->lock);
    return 0;
}

static void log_rejected(struct col_writer *w, long status, const struct col_wdecision *d, size_t lo, size_t hi)
{
    const struct col_spool_batch *b = &w->batch;
    char line[200];
    const char *first = d->first_bad;
    if (status == 413 || !*first) { /* a single line too large: show the line itself */
        size_t n = b->off[lo + 1] - b->off[lo];
        n -= n > 0 && b->body[b->off[lo] + n - 1] == '\n';
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line - 1 ? n : sizeof line - 1), b->body + b->off[lo]);
        first = line;
    }
    fg_complain(&w->c_rejected, mono_ms(), FG_LOG_WARN, SUBSYS, NULL,
                "InfluxDB refused %llu of %zu lines for good (HTTP %ld), first: %s", (unsigned long long)d->rejected,
                hi - lo, status, first);
}

/* Sends lines [lo, hi) of w->batch; on 413 the halves, in order. Returns 0 when every line of the range
 * was answered for (stored or refused for good), -1 when the rest must wait for a back-off. */
static int send_range(struct col_writer *w, size_t lo, size_t hi)
{
    const struct col_spool_batch *b = &w->batch;
    long status = post(w, b->body + b->off[lo], b->off[hi] - b->off[lo]);
    struct col_wdecision d;
    col_wpolicy_classify(status, w->resp.retry_after, w->resp.body, hi - lo, wall_ms(), &d);
    switch (d.act) {
    case COL_W_ACK:
    case COL_W_ACK_REJECTED:
        if (d.act == COL_W_ACK_REJECTED)
            log_rejected(w, status, &d, lo, hi);
        if (ack_range(w, lo, hi, d.rejected) < 0) {
            d.retry_after_ms = -1;
            on_failure(w, status, &d, hi - lo);
            return -1;
        }
        on_success(w);
        return 0;
    case COL_W_SPLIT: {
        size_t mid = lo + (hi - lo) / 2;
        pthread_mutex_lock(&w->lock);
        if (mid - lo < w->lines_cap)
            w->lines_cap = mid - lo;
        w->ok_in_row = 0;
        pthread_mutex_unlock(&w->lock);
        return send_range(w, lo, mid) < 0 ? -1 : send_range(w, mid, hi);
    }
    default:
        if (stop_abandoned(w))
            return -1; /* aborted by col_writer_stop: not the server's fault */
        on_failure(w, status, &d, hi - lo);
        return -1;
    }
}

/* Peeks the oldest lines and sends them. */
static enum send_result send_batch(struct col_writer *w)
{
    pthread_mutex_lock(&w->lock);
    w->waiting = 0;
    size_t cap = w->lines_cap;
    pthread_mutex_unlock(&w->lock);
    int n = w->src.peek(w->src.ud, cap, w->batch_bytes_max, &w->batch);
    if (n < 0) {
        int64_t now = mono_ms();
        fg_complain(&w->c_spool, now, FG_LOG_ERROR, SUBSYS, NULL, "spool: cannot read lines: %s", strerror(-n));
        back_off(w, now, col_wpolicy_backoff_ms(++w->failures, -1), false);
        return SEND_FAILED;
    }
    if (n == 0)
        return SPOOL_EMPTY;
    fg_complain_release(&w->c_spool, SUBSYS, NULL, "spool readable again");
    int rc = send_range(w, 0, (size_t)n);
    w->src.clear(&w->batch);
    if (rc < 0) {
        if (w->src.release)
            w->src.release(w->src.ud); /* the cap may evict these lines again, oldest first */
        return SEND_FAILED;
    }
    return (size_t)n >= cap ? SENT_FULL : SENT_PARTIAL;
}

/* ---- the thread ----------------------------------------------------------------------------- */

static void wait_until(struct col_writer *w, int64_t at_ms)
{
    int64_t ns = at_ms * 1000000; /* mono_ms is CLOCK_MONOTONIC, the condition variable's clock */
    struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000) };
    pthread_cond_timedwait(&w->cond, &w->lock, &ts);
}

/* Waits (under w->lock) until the next send is due. Returns false when the thread should end. */
static bool wait_turn(struct col_writer *w)
{
    for (;;) {
        int64_t now = mono_ms(), due;
        if (w->stopping) {
            /* draining: no flush interval, but a back-off still holds */
            if (now >= w->drain_until_ms || w->backoff_until_ms >= w->drain_until_ms)
                return false;
            due = w->backoff_until_ms;
        } else {
            due = w->waiting >= w->lines_cap ? now : w->next_send_ms;
            if (w->backoff_until_ms > due)
                due = w->backoff_until_ms;
        }
        if (now >= due)
            return true;
        wait_until(w, due);
    }
}

static void *writer_main(void *arg)
{
    struct col_writer *w = arg;
    w->next_send_ms = 0; /* what a previous run left is sent at once */
    for (;;) {
        pthread_mutex_lock(&w->lock);
        bool go = wait_turn(w);
        bool draining = w->stopping;
        pthread_mutex_unlock(&w->lock);
        if (!go)
            break;
        enum send_result r = send_batch(w);
        int64_t now = mono_ms();
        if (r == SPOOL_EMPTY && draining)
            break;
        pthread_mutex_lock(&w->lock);
        /* a full batch means more may be waiting: go on at once (an outage's backlog drains at full
         * speed); a failed one is retried when its back-off ends */
        w->next_send_ms = r == SENT_FULL || r == SEND_FAILED ? now : now + w->flush_ms;
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

int col_writer_start(struct col_writer *w)
{
    if (w->started)
        return -EALREADY;
    w->stopping = false; /* a writer may be started again after a stop */
    atomic_store(&w->abort_at_ms, INT64_MAX);
    /* the daemon's signals belong to the main thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -rc;
    w->started = true;
    return 0;
}

void col_writer_kick_n(struct col_writer *w, size_t nlines)
{
    pthread_mutex_lock(&w->lock);
    size_t before = w->waiting;
    w->waiting += nlines;
    if (before < w->lines_cap && w->waiting >= w->lines_cap)
        pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void col_writer_kick(struct col_writer *w)
{
    col_writer_kick_n(w, 1);
}

void col_writer_stop(struct col_writer *w, unsigned drain_ms)
{
    if (!w || !w->started)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    w->drain_until_ms = mono_ms() + drain_ms;
    atomic_store(&w->abort_at_ms, w->drain_until_ms);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    w->started = false;
}

void col_writer_free(struct col_writer *w)
{
    if (!w)
        return;
    col_writer_stop(w, 0);
    cu.easy_cleanup(w->curl);
    cu.slist_free_all(w->headers);
    cu.global_cleanup();
    w->src.clear(&w->batch);
    free(w->gz);
    free(w->url);
    free(w->username);
    if (w->password)
        memset(w->password, 0, strlen(w->password));
    free(w->password);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void col_writer_stats(struct col_writer *w, struct col_writer_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    pthread_mutex_unlock(&w->lock);
}
