/* Tests of col_writer against tests/integration/fake_influx.py (a scripted HTTP server, started per
 * scenario on a free loopback port): the v1 and v2 requests byte for byte, batching and kicks, and each
 * response rule (400 partial, 413 split, 429 Retry-After, 503 back-off, 401, refused, a server that
 * never answers), fed from an in-memory spool whose acks are recorded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "col_writer.h"
#include "fg_clock.h"
#include "fg_log.h"

/* ---- an in-memory spool ----------------------------------------------------------------------- */

#define MAX_LINES 64
#define ID0 100 /* line i has id ID0 + i, so that an index passed as an id shows */

struct memsrc {
    pthread_mutex_t lock;
    const char *lines[MAX_LINES];
    size_t n, next;   /* lines held; the first one not acked */
    size_t nacks;
    int64_t ack_first[16], ack_last[16];
};

static void mem_clear(struct col_spool_batch *b)
{
    free(b->ids);
    free(b->off);
    free(b->body);
    memset(b, 0, sizeof *b);
}

static int mem_peek(void *ud, size_t max_lines, size_t max_bytes, struct col_spool_batch *b)
{
    struct memsrc *m = ud;
    (void)max_bytes;
    mem_clear(b);
    pthread_mutex_lock(&m->lock);
    size_t k = m->n - m->next < max_lines ? m->n - m->next : max_lines, len = 0;
    b->ids = calloc(k + 1, sizeof *b->ids);
    b->off = calloc(k + 1, sizeof *b->off);
    for (size_t i = 0; i < k; i++)
        len += strlen(m->lines[m->next + i]);
    b->body = malloc(len + 1);
    for (size_t i = 0; i < k; i++) {
        const char *l = m->lines[m->next + i];
        b->ids[i] = ID0 + (int64_t)(m->next + i);
        memcpy(b->body + b->off[i], l, strlen(l));
        b->off[i + 1] = b->off[i] + strlen(l);
    }
    b->n = k;
    pthread_mutex_unlock(&m->lock);
    return (int)k;
}

static int mem_ack(void *ud, int64_t first, int64_t last)
{
    struct memsrc *m = ud;
    pthread_mutex_lock(&m->lock);
    int rc = -EINVAL;
    if (first == ID0 + (int64_t)m->next && last >= first && last < ID0 + (int64_t)m->n && m->nacks < 16) {
        m->ack_first[m->nacks] = first;
        m->ack_last[m->nacks++] = last;
        m->next = (size_t)(last - ID0 + 1);
        rc = (int)(last - first + 1);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static void mem_init(struct memsrc *m, const char *const *lines, size_t n, struct col_wsource *src)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    for (size_t i = 0; i < n; i++)
        m->lines[m->n++] = lines[i];
    *src = (struct col_wsource){ mem_peek, mem_clear, mem_ack, NULL, m };
}

static void mem_add(struct memsrc *m, const char *line)
{
    pthread_mutex_lock(&m->lock);
    m->lines[m->n++] = line;
    pthread_mutex_unlock(&m->lock);
}

static size_t mem_next(struct memsrc *m)
{
    pthread_mutex_lock(&m->lock);
    size_t n = m->next;
    pthread_mutex_unlock(&m->lock);
    return n;
}

static int64_t now_ms(void)
{
    return fg_mono_ns() / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

/* ---- the fake server ---------------------------------------------------------------------------- */

struct fake {
    pid_t pid;
    char dir[64], log[96], url[64];
};

/* What a failed assertion leaves behind (cmocka jumps out of the test), cleaned up by teardown. */
static struct fake *g_fake;
static struct col_writer *g_writer;

static void fake_script_path(char *buf, size_t len)
{
    const char *env = getenv("FG_FAKE_INFLUX");
    if (env) {
        snprintf(buf, len, "%s", env);
        return;
    }
    const char *slash = strrchr(__FILE__, '/');
    int dirlen = slash ? (int)(slash - __FILE__) : 1;
    snprintf(buf, len, "%.*s/../integration/fake_influx.py", dirlen, slash ? __FILE__ : ".");
}

/* Starts fake_influx.py with the script and waits for its "ready PORT" line. */
static void fake_start(struct fake *f, const char *script)
{
    char tmpl[] = "/tmp/fabgrid-wtest-XXXXXX", path[128], prog[512];
    assert_non_null(mkdtemp(tmpl));
    snprintf(f->dir, sizeof f->dir, "%s", tmpl);
    snprintf(path, sizeof path, "%s/script.json", f->dir);
    snprintf(f->log, sizeof f->log, "%s/requests.jsonl", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(script, fp);
    fclose(fp);
    fake_script_path(prog, sizeof prog);
    if (access(prog, R_OK) != 0)
        fail_msg("cannot read %s: run from the repository root or set FG_FAKE_INFLUX", prog);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    f->pid = fork();
    assert_true(f->pid >= 0);
    g_fake = f;
    if (f->pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        execl("/usr/bin/python3", "python3", prog, "0", path, f->log, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char line[64] = "";
    size_t len = 0;
    int64_t end = now_ms() + 10000;
    while (!memchr(line, '\n', len) && len < sizeof line - 1 && now_ms() < end) {
        struct pollfd p = { .fd = pfd[0], .events = POLLIN };
        ssize_t got = poll(&p, 1, 100) == 1 ? read(pfd[0], line + len, sizeof line - 1 - len) : 0;
        if (got < 0 || (got == 0 && (p.revents & POLLHUP)))
            break;
        len += (size_t)got;
    }
    close(pfd[0]);
    int port = 0;
    assert_true(memchr(line, '\n', len) && sscanf(line, "ready %d", &port) == 1 && port > 0);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", port);
}

static void fake_stop(struct fake *f)
{
    g_fake = NULL;
    kill(f->pid, SIGTERM);
    waitpid(f->pid, NULL, 0);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
}

/* The requests the fake logged so far, as a cJSON array (caller deletes). */
static cJSON *fake_requests(const struct fake *f)
{
    cJSON *arr = cJSON_CreateArray();
    FILE *fp = fopen(f->log, "r");
    if (!fp)
        return arr;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, fp) > 0) {
        cJSON *r = cJSON_Parse(line);
        if (r)
            cJSON_AddItemToArray(arr, r);
    }
    free(line);
    fclose(fp);
    return arr;
}

static int fake_count(const struct fake *f)
{
    cJSON *a = fake_requests(f);
    int n = cJSON_GetArraySize(a);
    cJSON_Delete(a);
    return n;
}

static const char *req_str(const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
    return cJSON_IsString(v) ? v->valuestring : "<missing>";
}

static double req_num(const cJSON *r, const char *key)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, key));
}

static const char *req_header(const cJSON *r, const char *name)
{
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(r, "headers"))
        if (strcasecmp(h->string, name) == 0)
            return h->valuestring;
    return NULL;
}

/* Waits up to timeout_ms for the fake to have logged n requests. */
static bool wait_requests(const struct fake *f, int n, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (fake_count(f) < n && now_ms() < end)
        sleep_ms(10);
    return fake_count(f) >= n;
}

static struct col_writer_stats stats_of(struct col_writer *w)
{
    struct col_writer_stats s;
    col_writer_stats(w, &s);
    return s;
}

/* Waits up to timeout_ms for stats field `field` to reach at least n. */
#define WAIT_STAT(w, field, n, timeout_ms)                                              \
    do {                                                                                \
        int64_t end_ = now_ms() + (timeout_ms);                                         \
        while (stats_of(w).field < (n) && now_ms() < end_)                              \
            sleep_ms(5);                                                                \
    } while (0)

static struct col_writer *writer_for(const struct col_writer_opts *o, const struct col_wsource *src)
{
    char err[256] = "";
    struct col_writer *w = col_writer_new(o, src, err, sizeof err);
    if (!w)
        fail_msg("col_writer_new: %s", err);
    assert_int_equal(col_writer_start(w), 0);
    g_writer = w;
    return w;
}

static const char *const lines[] = {
    "device,site=hof3,device=inv1,role=pv power_w=3210.5,energy_wh=1002345,voltage_l1_v=230 1468587600000\n",
    "device,site=hof3,device=grid,role=grid power_w=-1200,energy_wh=5512 1468587600000\n",
    "balance,site=hof3 pv_w=3210.5,grid_w=-1200,load_w=2010.5,surplus_w=1200 1468587600000\n",
    "machine,machine=kiln,site=hof3 on=1i,power_w=6000 1468587601000\n",
    "collector,site=hof3 added=12i,written=10i 1468587602000\n",
    "device,site=hof3,device=inv1,role=pv power_w=3300 1468587603000\n",
};

/* lines[a..b) concatenated */
static const char *joined(size_t a, size_t b)
{
    static char buf[4096];
    buf[0] = '\0';
    for (size_t i = a; i < b; i++)
        strcat(buf, lines[i]);
    return buf;
}

static struct col_writer_opts v1_opts(const struct fake *f)
{
    struct col_writer_opts o;
    col_writer_opts_default(&o);
    o.url = f->url;
    o.database = "fabgrid";
    o.flush_ms = 100;
    return o;
}

/* ---- scenarios ---------------------------------------------------------------------------------- */

static void test_v1_request(void **state)
{
    (void)state;
    static struct fake f; /* static: teardown may reach it after a failed assertion */
    fake_start(&f, "{\"default\": {\"status\": 204}}");
    static struct memsrc m; /* static: the writer may still read it until teardown */
    struct col_wsource src;
    mem_init(&m, lines, 3, &src);
    struct col_writer_opts o = v1_opts(&f);
    char url[80];
    snprintf(url, sizeof url, "%s/", f.url); /* a trailing slash is ignored */
    o.url = url;
    o.database = "fab grid";
    o.rp = "one/week";
    o.username = "collector";
    o.password = "s3cret";
    struct col_writer *w = writer_for(&o, &src);
    WAIT_STAT(w, written, 3, 3000);
    cJSON *reqs = fake_requests(&f);
    assert_int_equal(cJSON_GetArraySize(reqs), 1);
    const cJSON *r = cJSON_GetArrayItem(reqs, 0);
    assert_string_equal(req_str(r, "method"), "POST");
    assert_string_equal(req_str(r, "path"), "/write?db=fab%20grid&rp=one%2Fweek&precision=ms");
    assert_string_equal(req_header(r, "Authorization"), "Basic Y29sbGVjdG9yOnMzY3JldA==");
    assert_string_equal(req_header(r, "Content-Encoding"), "gzip");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "gzip")));
    assert_string_equal(req_str(r, "body"), joined(0, 3));
    struct col_writer_stats s = stats_of(w);
    assert_int_equal(s.written, 3);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(s.write_errors, 0);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.bytes_raw, strlen(joined(0, 3)));
    assert_int_equal(s.bytes_sent, (uint64_t)req_num(r, "raw_len"));
    assert_true(s.bytes_sent < s.bytes_raw);
    assert_int_equal(s.last_status, 204);
    assert_int_equal(s.backoff_until_ms, 0);
    assert_int_equal(m.nacks, 1);
    assert_int_equal(m.ack_first[0], ID0);
    assert_int_equal(m.ack_last[0], ID0 + 2);
    col_writer_free(w);
    g_writer = NULL;
    cJSON_Delete(reqs);
    fake_stop(&f);
}

/* batch_max lines go at once, the rest of a backlog right after; then only a full batch (kicks) or the
 * drain at stop sends, never the (long) flush interval. Plain body without gzip, no auth. */
static void test_batching_kick_drain(void **state)
{
    (void)state;
    static struct fake f; /* static: teardown may reach it after a failed assertion */
    fake_start(&f, "{}");
    static struct memsrc m; /* static: the writer may still read it until teardown */
    struct col_wsource src;
    mem_init(&m, lines, 5, &src);
    struct col_writer_opts o = v1_opts(&f);
    o.batch_max = 3;
    o.flush_ms = 60000;
    o.gzip = false;
    struct col_writer *w = writer_for(&o, &src);
    assert_true(wait_requests(&f, 2, 3000));
    sleep_ms(300);
    mem_add(&m, lines[5]);
    mem_add(&m, lines[0]);
    col_writer_kick_n(w, 2);
    sleep_ms(300);
    assert_int_equal(fake_count(&f), 2);
    mem_add(&m, lines[1]);
    col_writer_kick(w);
    assert_true(wait_requests(&f, 3, 2000));
    mem_add(&m, lines[2]);
    int64_t t0 = now_ms();
    col_writer_stop(w, 3000);
    assert_true(now_ms() - t0 < 1500);
    cJSON *reqs = fake_requests(&f);
    assert_int_equal(cJSON_GetArraySize(reqs), 4);
    const cJSON *r = cJSON_GetArrayItem(reqs, 0);
    assert_string_equal(req_str(r, "path"), "/write?db=fabgrid&precision=ms");
    assert_null(req_header(r, "Authorization"));
    assert_null(req_header(r, "Content-Encoding"));
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(r, "gzip")));
    assert_string_equal(req_str(r, "body"), joined(0, 3));
    assert_int_equal((size_t)req_num(r, "raw_len"), strlen(joined(0, 3)));
    assert_string_equal(req_str(cJSON_GetArrayItem(reqs, 1), "body"), joined(3, 5));
    char want[1024];
    snprintf(want, sizeof want, "%s%s%s", lines[5], lines[0], lines[1]);
    assert_string_equal(req_str(cJSON_GetArrayItem(reqs, 2), "body"), want);
    assert_string_equal(req_str(cJSON_GetArrayItem(reqs, 3), "body"), lines[2]);
    assert_int_equal(mem_next(&m), 9);
    assert_int_equal(stats_of(w).written, 9);
    assert_int_equal(stats_of(w).bytes_sent, stats_of(w).bytes_raw);
    col_writer_free(w);
    g_writer = NULL;
    cJSON_Delete(reqs);
    fake_stop(&f);
}

static void test_v2_request(void **state)
{
    (void)state;
    static struct fake f; /* static: teardown may reach it after a failed assertion */
    fake_start(&f, "{\"default\": {\"status\": 204}}");
    static struct memsrc m; /* static: the writer may still read it until teardown */
    struct col_wsource src;
    mem_init(&m, lines, 2, &src);
    struct col_writer_opts o = v1_opts(&f);
    o.api = 2;
    o.database = NULL;
    o.org = "my org";
    o.bucket = "b1";
    o.token = "abc";
    o.username = "ignored";
    struct col_writer *w = writer_for(&o, &src);
    WAIT_STAT(w, written, 2, 3000);
    cJSON *reqs = fake_requests(&f);
    assert_int_equal(cJSON_GetArraySize(reqs), 1);
    const cJSON *r = cJSON_GetArrayItem(reqs, 0);
    assert_string_equal(req_str(r, "path"), "/api/v2/write?org=my%20org&bucket=b1&precision=ms");
    assert_string_equal(req_header(r, "Authorization"), "Token abc");
    assert_string_equal(req_str(r, "body"), joined(0, 2));
    assert_int_equal(mem_next(&m), 2);
    col_writer_free(w);
    g_writer = NULL;
    cJSON_Delete(reqs);
    fake_stop(&f);
}

/* The body measured from InfluxDB 1.6: acked, 2 rejected, never retried. */
static void test_400_partial(void **state)
{
    (void)state;
    static struct fake f; /* static: teardown may reach it after a failed assertion */
    fake_start(&f, "{\"responses\": [{\"status\": 400, \"body\": \"{\\\"error\\\":\\\"partial write: unable to parse "
                   "'bad line here': invalid field format\\\\nunable to parse 'also bad': invalid field format "
                   "dropped=0\\\"}\"}], \"default\": {\"status\": 204}}");
    static struct memsrc m; /* static: the writer may still read it until teardown */
    struct col_wsource src;
    mem_init(&m, lines, 5, &src);
    struct col_writer_opts o = v1_opts(&f);
    struct col_writer *w = writer_for(&o, &src);
    WAIT_STAT(w, rejected, 2, 3000);
    sleep_ms(1500);
    struct col_writer_stats s = stats_of(w);
    assert_int_equal(fake_count(&f), 1);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.rejected, 2);
    assert_int_equal(s.written, 3);
    assert_int_equal(s.write_errors, 0);
    assert_int_equal(s.last_status, 400);
    assert_int_equal(m.nacks, 1);
    assert_int_equal(m.ack_first[0], ID0);
    assert_int_equal(m.ack_last[0], ID0 + 4);
    col_writer_free(w);
    g_writer = NULL;
    fake_stop(&f);
}

/* 413: the halves, in order, each acked; then the batch size that worked is kept. */
static void test_413_split(void **state)
{
    (void)state;
    static struct fake f; /* static: teardown may reach it after a failed assertion */
    fake_start(&f, "{\"responses\": [{\"status\": 413, \"body\": \"{\\\"error\\\":\\\"Request Entity Too Large\\\"}\"}],"
                   " \"default\": {\"status\": 204}}");
    static struct memsrc m; /* static: the writer may still read it until teardown */
    struct col_wsource src;
    mem_init(&m, lines, 4, &src);
    struct col_writer_opts o = v1_opts(&f);
    struct col_writer *w = writer_for(&o, &src);
    WAIT_STAT(w, written, 4, 3000);
    cJSON *reqs = fake_requests(&f);
    assert_int_equal(cJSON_GetArraySize(reqs), 3);
    assert_string_equal(req_str(cJSON_GetArrayItem(reqs, 0), "body"), joined(0, 4));
    assert_string_equal(req_str(cJSON_GetArrayItem(reqs, 1), "body"), joined(0, 2));
    assert_string_equal(req_str(cJSON_GetArrayItem(reqs, 2), "body"), joined(2, 4));
    assert_int_equal(m.nacks, 2);
    assert_int_equal(m.ack_first[0], ID0);
    assert_int_equal(m.ack_last[0], ID0 + 1);
    assert_int_equal(m.ack_first[1], ID0 + 2);
    assert_int_equal(m.ack_last[1], ID0 + 3);
    assert_int_equal(stats_of(w).rejected, 0);
    assert_int_equal(stats_of(w).write_errors, 0);
    /* 3 new lines now go as 2 + 1 */
    mem_add(&m, lines[4]);
    mem_add(&m, lines[5]);
    mem_add(&m, lines[0]);
    assert_true(wait_requests(&f, 5, 3000));
    cJSON_Delete(reqs);
    reqs = fake_requests(&f);
    assert_string_equal(req_str(cJSON_GetArrayItem(reqs, 3), "body"), joined(4, 6));
    assert_string_equal(req_str(cJSON_GetArrayItem(reqs, 4), "body"), lines[0]);
    col_writer_free(w);
    g_writer = NULL;
    cJSON_Delete(reqs);
    fake_stop(&f);
}

/* A line that alone still gets 413 is rejected and counted, never retried. */
static void test_413_single_line(void **state)
{
    (void)state;
    static struct fake f; /* static: teardown may reach it after a failed assertion */
    fake_start(&f, "{\"default\": {\"status\": 413}}");
    static struct memsrc m; /* static: the writer may still read it until teardown */
    struct col_wsource src;
    mem_init(&m, lines, 2, &src);
    struct col_writer_opts o = v1_opts(&f);
    struct col_writer *w = writer_for(&o, &src);
    WAIT_STAT(w, rejected, 2, 3000);
    sleep_ms(1200);
    cJSON *reqs = fake_requests(&f);
    assert_int_equal(cJSON_GetArraySize(reqs), 3);
    assert_string_equal(req_str(cJSON_GetArrayItem(reqs, 1), "body"), lines[0]);
    assert_string_equal(req_str(cJSON_GetArrayItem(reqs, 2), "body"), lines[1]);
    struct col_writer_stats s = stats_of(w);
    assert_int_equal(s.rejected, 2);
    assert_int_equal(s.written, 0);
    assert_int_equal(s.write_errors, 0);
    assert_int_equal(mem_next(&m), 2);
    col_writer_free(w);
    g_writer = NULL;
    cJSON_Delete(reqs);
    fake_stop(&f);
}

static void test_429_retry_after(void **state)
{
    (void)state;
    static struct fake f; /* static: teardown may reach it after a failed assertion */
    fake_start(&f, "{\"responses\": [{\"status\": 429, \"headers\": {\"Retry-After\": \"1\"}}],"
                   " \"default\": {\"status\": 204}}");
    static struct memsrc m; /* static: the writer may still read it until teardown */
    struct col_wsource src;
    mem_init(&m, lines, 2, &src);
    struct col_writer_opts o = v1_opts(&f);
    struct col_writer *w = writer_for(&o, &src);
    WAIT_STAT(w, write_errors, 1, 3000);
    sleep_ms(300);
    struct col_writer_stats s = stats_of(w);
    assert_int_equal(s.last_status, 429);
    assert_true(s.backoff_until_ms > now_ms());
    assert_int_equal(fake_count(&f), 1);
    assert_int_equal(mem_next(&m), 0);
    assert_true(wait_requests(&f, 2, 3000));
    WAIT_STAT(w, written, 2, 2000);
    cJSON *reqs = fake_requests(&f);
    const cJSON *r0 = cJSON_GetArrayItem(reqs, 0), *r1 = cJSON_GetArrayItem(reqs, 1);
    double gap_s = req_num(r1, "t") - req_num(r0, "t");
    assert_true(gap_s >= 0.99 && gap_s < 1.8);
    assert_string_equal(req_str(r1, "body"), req_str(r0, "body"));
    assert_int_equal(mem_next(&m), 2);
    assert_int_equal(stats_of(w).backoff_until_ms, 0);
    col_writer_free(w);
    g_writer = NULL;
    cJSON_Delete(reqs);
    fake_stop(&f);
}

static void test_503_backoff(void **state)
{
    (void)state;
    static struct fake f; /* static: teardown may reach it after a failed assertion */
    fake_start(&f, "{\"responses\": [{\"status\": 503, \"body\": \"busy\"}, {\"status\": 503}],"
                   " \"default\": {\"status\": 204}}");
    static struct memsrc m; /* static: the writer may still read it until teardown */
    struct col_wsource src;
    mem_init(&m, lines, 3, &src);
    struct col_writer_opts o = v1_opts(&f);
    struct col_writer *w = writer_for(&o, &src);
    WAIT_STAT(w, written, 3, 6000);
    cJSON *reqs = fake_requests(&f);
    assert_int_equal(cJSON_GetArraySize(reqs), 3);
    double t[3];
    for (int i = 0; i < 3; i++) {
        const cJSON *r = cJSON_GetArrayItem(reqs, i);
        t[i] = req_num(r, "t");
        assert_string_equal(req_str(r, "body"), joined(0, 3));
    }
    assert_true(t[1] - t[0] >= 0.99 && t[1] - t[0] < 1.8); /* 1 s, then doubled */
    assert_true(t[2] - t[1] >= 1.99 && t[2] - t[1] < 2.8);
    struct col_writer_stats s = stats_of(w);
    assert_int_equal(s.write_errors, 2);
    assert_int_equal(s.requests, 3);
    assert_int_equal(s.last_status, 204);
    assert_int_equal(m.nacks, 1);
    col_writer_free(w);
    g_writer = NULL;
    cJSON_Delete(reqs);
    fake_stop(&f);
}

static void test_401_keeps(void **state)
{
    (void)state;
    static struct fake f; /* static: teardown may reach it after a failed assertion */
    fake_start(&f, "{\"default\": {\"status\": 401, \"body\": \"{\\\"error\\\":\\\"authorization failed\\\"}\"}}");
    static struct memsrc m; /* static: the writer may still read it until teardown */
    struct col_wsource src;
    mem_init(&m, lines, 2, &src);
    struct col_writer_opts o = v1_opts(&f);
    o.username = "collector";
    o.password = "wrong";
    struct col_writer *w = writer_for(&o, &src);
    WAIT_STAT(w, write_errors, 1, 3000);
    sleep_ms(300);
    struct col_writer_stats s = stats_of(w);
    assert_int_equal(s.last_status, 401);
    assert_int_equal(s.written + s.rejected, 0);
    assert_true(s.backoff_until_ms > now_ms() && s.backoff_until_ms <= now_ms() + 1000);
    assert_int_equal(fake_count(&f), 1);
    assert_true(wait_requests(&f, 2, 3000));
    assert_int_equal(mem_next(&m), 0);
    assert_int_equal(m.nacks, 0);
    col_writer_free(w);
    g_writer = NULL;
    fake_stop(&f);
}

static void test_refused(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd); /* nothing listens there now */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    static struct memsrc m; /* static: the writer may still read it until teardown */
    struct col_wsource src;
    mem_init(&m, lines, 1, &src);
    struct col_writer_opts o;
    col_writer_opts_default(&o);
    o.url = url;
    o.database = "fabgrid";
    struct col_writer *w = writer_for(&o, &src);
    WAIT_STAT(w, write_errors, 1, 3000);
    struct col_writer_stats s = stats_of(w);
    assert_int_equal(s.write_errors, 1);
    assert_int_equal(s.requests, 1);
    assert_int_equal(s.last_status, 0);
    assert_int_equal(mem_next(&m), 0);
    col_writer_free(w);
    g_writer = NULL;
}

/* A server that takes the request and never answers: the attempt ends by the 10 s timeout, the data
 * stays, and a stop during the next hanging attempt returns at once instead of after the timeout. */
static void test_never_answers(void **state)
{
    (void)state;
    static struct fake f; /* static: teardown may reach it after a failed assertion */
    fake_start(&f, "{\"default\": {\"status\": 204, \"delay_s\": 30}}");
    static struct memsrc m; /* static: the writer may still read it until teardown */
    struct col_wsource src;
    mem_init(&m, lines, 1, &src);
    struct col_writer_opts o = v1_opts(&f);
    int64_t t0 = now_ms();
    struct col_writer *w = writer_for(&o, &src);
    WAIT_STAT(w, write_errors, 1, 13000);
    int64_t took_ms = now_ms() - t0;
    assert_true(took_ms >= 9900 && took_ms <= 11000);
    assert_int_equal(stats_of(w).last_status, 0);
    assert_int_equal(mem_next(&m), 0);
    assert_true(wait_requests(&f, 2, 3000));
    t0 = now_ms();
    col_writer_stop(w, 0);
    assert_true(now_ms() - t0 < 2000);
    assert_int_equal(mem_next(&m), 0);
    assert_int_equal(stats_of(w).write_errors, 1); /* the attempt stopped by us is not the server's error */
    col_writer_free(w);
    g_writer = NULL;
    fake_stop(&f);
}

static void test_bad_opts(void **state)
{
    (void)state;
    static struct memsrc m; /* static: the writer may still read it until teardown */
    struct col_wsource src;
    mem_init(&m, lines, 0, &src);
    struct col_writer_opts o;
    char err[128];
    col_writer_opts_default(&o);
    o.url = "127.0.0.1:8086";
    o.database = "x";
    assert_null(col_writer_new(&o, &src, err, sizeof err));
    assert_string_equal(err, "influx url must start with http:// or https://");
    o.url = "http://h";
    o.api = 2;
    o.org = "o";
    assert_null(col_writer_new(&o, &src, err, sizeof err));
    assert_string_equal(err, "influx api v2 needs an org and a bucket");
    o.bucket = "b";
    o.token = "abc\r\nX-Evil: 1";
    assert_null(col_writer_new(&o, &src, err, sizeof err));
    assert_string_equal(err, "influx token contains a line break");
    o.api = 1;
    o.database = "";
    assert_null(col_writer_new(&o, &src, err, sizeof err));
    assert_string_equal(err, "influx api v1 needs a database");
    col_writer_free(NULL);
}

static int teardown(void **state)
{
    (void)state;
    col_writer_free(g_writer);
    g_writer = NULL;
    if (g_fake)
        fake_stop(g_fake);
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    fg_log_init("test_writer", FG_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_bad_opts, teardown),
        cmocka_unit_test_teardown(test_v1_request, teardown),
        cmocka_unit_test_teardown(test_batching_kick_drain, teardown),
        cmocka_unit_test_teardown(test_v2_request, teardown),
        cmocka_unit_test_teardown(test_400_partial, teardown),
        cmocka_unit_test_teardown(test_413_split, teardown),
        cmocka_unit_test_teardown(test_413_single_line, teardown),
        cmocka_unit_test_teardown(test_429_retry_after, teardown),
        cmocka_unit_test_teardown(test_503_backoff, teardown),
        cmocka_unit_test_teardown(test_401_keeps, teardown),
        cmocka_unit_test_teardown(test_refused, teardown),
        cmocka_unit_test_teardown(test_never_answers, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
