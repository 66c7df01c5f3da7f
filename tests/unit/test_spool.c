/* Unit tests of col_spool: order and exact contents, batch limits, acks of sub-ranges, the cap with
 * exact drop counts, reopening, the exclusive lock, two threads at once, kill -9 in the middle of
 * appends, and recovery from a corrupt file. Every test works in its own dir under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "col_spool.h"
#include "fg_mem.h"

#define BIG ((size_t)1 << 30)

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A fresh dir /tmp/fg_spool_XXXXXX; the spool goes into its subdir a/b (created by open). */
static int setup_dir(void **state)
{
    char *tmp = fg_strdup("/tmp/fg_spool_XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    *state = tmp;
    return 0;
}

static int teardown_dir(void **state)
{
    int rc = nftw(*state, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(*state);
    return rc;
}

static char *spool_dir(void **state)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/a/b", (const char *)*state);
    return path;
}

static struct col_spool *open_ok(const char *dir, uint64_t max_bytes)
{
    char err[512] = "";
    struct col_spool *s = col_spool_open(dir, max_bytes, err, sizeof err);
    if (!s)
        fail_msg("open %s: %s", dir, err);
    return s;
}

static void append_strs(struct col_spool *s, const char *const *lines, size_t n)
{
    size_t lens[64];
    char err[256] = "";
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(lines[i]);
    int rc = col_spool_append(s, lines, lens, n, err, sizeof err);
    if (rc != 0)
        fail_msg("append: %d %s", rc, err);
}

static struct col_spool_stats stats_of(struct col_spool *s)
{
    struct col_spool_stats st;
    col_spool_stats(s, &st);
    return st;
}

/* Line number i, exactly len bytes: "L0000042 xxxx...\n". */
static void fixed_line(char *buf, size_t i, size_t len)
{
    int n = snprintf(buf, len + 1, "L%07zu ", i);
    memset(buf + n, 'x', len - (size_t)n - 1);
    buf[len - 1] = '\n';
}

/* Appends lines first..first+count-1 of len bytes each, batch lines per transaction. */
static void append_fixed(struct col_spool *s, size_t first, size_t count, size_t len, size_t batch)
{
    char *buf = fg_malloc(count * len);
    const char **lines = fg_malloc(count * sizeof *lines);
    size_t *lens = fg_malloc(count * sizeof *lens);
    char err[256] = "";
    for (size_t i = 0; i < count; i++) {
        fixed_line(buf + i * len, first + i, len);
        lines[i] = buf + i * len;
        lens[i] = len;
    }
    for (size_t i = 0; i < count; i += batch) {
        size_t n = count - i < batch ? count - i : batch;
        int rc = col_spool_append(s, lines + i, lens + i, n, err, sizeof err);
        if (rc != 0)
            fail_msg("append: %d %s", rc, err);
    }
    free(buf);
    free(lines);
    free(lens);
}

/* The line number in a fixed_line. */
static size_t line_no(const struct col_spool_batch *b, size_t i)
{
    return (size_t)strtoul(b->body + b->off[i] + 1, NULL, 10);
}

static void test_order_and_contents(void **state)
{
    struct col_spool *s = open_ok(spool_dir(state), 1 << 20);
    struct col_spool_batch b = { 0 };
    const char *first[] = { "m f=1i 1\n", "mm,t=a f=2i 2\n", "m f=\"x y\" 3\n" };
    const char *second[] = { "n g=4 4\n", "n g=5 5\n" };
    assert_int_equal(col_spool_peek(s, 10, BIG, &b), 0);
    assert_int_equal(b.n, 0);
    assert_null(b.body);
    append_strs(s, first, 3);
    append_strs(s, second, 2);
    struct col_spool_stats st = stats_of(s);
    assert_int_equal(st.points, 5);
    assert_int_equal(st.bytes, 9 + 14 + 12 + 8 + 8);
    assert_int_equal(st.appended, 5);
    assert_int_equal(st.found_at_open, 0);
    assert_int_equal(col_spool_peek(s, 10, BIG, &b), 5);
    const int64_t want_ids[] = { 1, 2, 3, 4, 5 };
    const size_t want_off[] = { 0, 9, 23, 35, 43, 51 };
    assert_memory_equal(b.ids, want_ids, sizeof want_ids);
    assert_memory_equal(b.off, want_off, sizeof want_off);
    assert_memory_equal(b.body, "m f=1i 1\nmm,t=a f=2i 2\nm f=\"x y\" 3\nn g=4 4\nn g=5 5\n", 51);
    /* peek does not remove: the same lines again */
    assert_int_equal(col_spool_peek(s, 10, BIG, &b), 5);
    assert_int_equal(b.ids[0], 1);
    assert_int_equal(col_spool_ack(s, 1, 2), 2);
    assert_int_equal(col_spool_peek(s, 10, BIG, &b), 3);
    assert_int_equal(b.ids[0], 3);
    assert_memory_equal(b.body, "m f=\"x y\" 3\nn g=4 4\nn g=5 5\n", 28);
    assert_int_equal(col_spool_ack(s, 3, 5), 3);
    assert_int_equal(col_spool_ack(s, 1, 5), 0); /* already gone */
    assert_int_equal(col_spool_ack(s, 5, 4), -EINVAL);
    assert_int_equal(col_spool_peek(s, 10, BIG, &b), 0);
    assert_int_equal(b.n, 0);
    assert_null(b.ids);
    assert_int_equal(col_spool_peek(s, 0, BIG, &b), -EINVAL);
    st = stats_of(s);
    assert_int_equal(st.points, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.acked, 5);
    assert_int_equal(st.dropped, 0);
    col_spool_batch_clear(&b);
    col_spool_close(s);
    col_spool_close(NULL);
}

static void test_bad_lines(void **state)
{
    struct col_spool *s = open_ok(spool_dir(state), 1 << 20);
    char err[256] = "";
    const char *lines[] = { "ok 1\n", "no newline" };
    size_t lens[] = { 5, 10 };
    assert_int_equal(col_spool_append(s, lines, lens, 2, err, sizeof err), -EINVAL);
    assert_string_equal(err, "spool append: line 1 (10 bytes) is not one line ending in '\\n'");
    const char *two[] = { "a 1\nb 2\n" };
    size_t two_len[] = { 8 };
    assert_int_equal(col_spool_append(s, two, two_len, 1, err, sizeof err), -EINVAL);
    assert_string_equal(err, "spool append: line 0 (8 bytes) is not one line ending in '\\n'");
    size_t zero[] = { 0 };
    assert_int_equal(col_spool_append(s, lines, zero, 1, err, sizeof err), -EINVAL);
    assert_int_equal(col_spool_append(s, lines, lens, 0, err, sizeof err), 0);
    struct col_spool_stats st = stats_of(s);
    assert_int_equal(st.points, 0);
    assert_int_equal(st.appended, 0);
    col_spool_close(s);
}

/* 10 lines of 10 bytes: limits by lines, by bytes, and the first line larger than max_bytes. */
static void test_batch_limits(void **state)
{
    struct col_spool *s = open_ok(spool_dir(state), 1 << 20);
    struct col_spool_batch b = { 0 };
    append_fixed(s, 0, 10, 10, 10);
    assert_int_equal(col_spool_peek(s, 4, BIG, &b), 4);
    assert_int_equal(b.ids[3], 4);
    assert_int_equal(b.off[4], 40);
    assert_int_equal(col_spool_peek(s, 100, 35, &b), 3);
    assert_int_equal(b.off[3], 30);
    assert_int_equal(col_spool_peek(s, 100, 40, &b), 4); /* exactly at the limit */
    assert_int_equal(col_spool_peek(s, 3, 40, &b), 3);   /* lines bind first */
    assert_int_equal(col_spool_peek(s, 100, 5, &b), 1);  /* the first line alone is larger */
    assert_int_equal(b.off[1], 10);
    assert_memory_equal(b.body, "L0000000 \n", 10);
    assert_int_equal(col_spool_peek(s, 100, 0, &b), 1);
    assert_int_equal(col_spool_peek(s, 100, BIG, &b), 10);
    assert_int_equal(line_no(&b, 9), 9);
    col_spool_batch_clear(&b);
    col_spool_batch_clear(&b); /* twice is fine */
    col_spool_close(s);
}

/* The writer splits a batch in halves on HTTP 413 and acks each half as it is stored. */
static void test_ack_subranges(void **state)
{
    struct col_spool *s = open_ok(spool_dir(state), 1 << 20);
    struct col_spool_batch b = { 0 };
    append_fixed(s, 0, 8, 20, 8);
    assert_int_equal(col_spool_peek(s, 8, BIG, &b), 8);
    assert_int_equal(col_spool_ack(s, b.ids[0], b.ids[3]), 4);
    assert_int_equal(col_spool_ack(s, b.ids[6], b.ids[7]), 2); /* a later quarter first */
    assert_int_equal(col_spool_peek(s, 8, BIG, &b), 2);
    assert_int_equal(b.ids[0], 5);
    assert_int_equal(b.ids[1], 6);
    assert_int_equal(line_no(&b, 0), 4);
    assert_int_equal(line_no(&b, 1), 5);
    struct col_spool_stats st = stats_of(s);
    assert_int_equal(st.points, 2);
    assert_int_equal(st.bytes, 40);
    assert_int_equal(col_spool_ack(s, 1, 100), 2); /* over gaps: counts only what it deleted */
    st = stats_of(s);
    assert_int_equal(st.points, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.acked, 8);
    col_spool_batch_clear(&b);
    col_spool_close(s);
}

/* Expects the spool to hold exactly lines first..first+count-1 of the fixed_line numbering. */
static void expect_lines(struct col_spool *s, size_t first, size_t count)
{
    struct col_spool_batch b = { 0 };
    assert_int_equal(col_spool_peek(s, BIG, BIG, &b), (int)count);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(line_no(&b, i), first + i);
        if (i > 0)
            assert_true(b.ids[i] > b.ids[i - 1]);
    }
    col_spool_batch_clear(&b);
}

/* 1000 lines of 100 bytes into 20,000 bytes, 10 per append: the newest 200 stay. */
static void test_cap_small_batches(void **state)
{
    struct col_spool *s = open_ok(spool_dir(state), 20000);
    append_fixed(s, 0, 1000, 100, 10);
    struct col_spool_stats st = stats_of(s);
    assert_int_equal(st.points, 200);
    assert_int_equal(st.bytes, 20000);
    assert_int_equal(st.dropped, 800);
    assert_int_equal(st.appended, 1000);
    expect_lines(s, 800, 200);
    /* one more line evicts exactly one */
    append_fixed(s, 1000, 1, 100, 1);
    assert_int_equal(stats_of(s).dropped, 801);
    expect_lines(s, 801, 200);
    col_spool_close(s);
}

/* A single append larger than the cap keeps its newest lines and evicts every older line. */
static void test_cap_one_big_batch(void **state)
{
    struct col_spool *s = open_ok(spool_dir(state), 20000);
    append_fixed(s, 0, 50, 100, 50);
    append_fixed(s, 50, 1000, 100, 1000);
    struct col_spool_stats st = stats_of(s);
    assert_int_equal(st.points, 200);
    assert_int_equal(st.bytes, 20000);
    assert_int_equal(st.dropped, 50 + 800);
    expect_lines(s, 850, 200);
    /* a line longer than the whole cap is dropped alone */
    append_fixed(s, 5000, 1, 20001, 1);
    st = stats_of(s);
    assert_int_equal(st.points, 200);
    assert_int_equal(st.dropped, 851);
    assert_int_equal(st.appended, 1051);
    expect_lines(s, 850, 200);
    /* a line of exactly the cap replaces everything */
    append_fixed(s, 6000, 1, 20000, 1);
    st = stats_of(s);
    assert_int_equal(st.points, 1);
    assert_int_equal(st.bytes, 20000);
    assert_int_equal(st.dropped, 1051);
    expect_lines(s, 6000, 1);
    col_spool_close(s);
}

static void test_reopen(void **state)
{
    const char *dir = spool_dir(state);
    struct col_spool *s = open_ok(dir, 1000);
    append_fixed(s, 0, 12, 100, 4); /* 2 dropped */
    assert_int_equal(col_spool_ack(s, 3, 4), 2);
    col_spool_close(s);
    s = open_ok(dir, 1000);
    struct col_spool_stats st = stats_of(s);
    assert_int_equal(st.points, 8);
    assert_int_equal(st.bytes, 800);
    assert_int_equal(st.found_at_open, 8);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.appended, 0);
    assert_int_equal(st.acked, 0);
    assert_int_equal(st.recovered_corrupt, 0);
    expect_lines(s, 4, 8);
    assert_int_equal(col_spool_ack(s, 1, 12), 8);
    col_spool_close(s);
    /* ids are never reused, even when the spool was empty at a restart */
    s = open_ok(dir, 1000);
    append_fixed(s, 100, 1, 100, 1);
    struct col_spool_batch b = { 0 };
    assert_int_equal(col_spool_peek(s, 1, BIG, &b), 1);
    assert_int_equal(b.ids[0], 13);
    col_spool_batch_clear(&b);
    append_fixed(s, 101, 4, 100, 4);
    col_spool_close(s);
    /* a lower cap applies at open: the oldest go, counted */
    s = open_ok(dir, 250);
    st = stats_of(s);
    assert_int_equal(st.found_at_open, 5);
    assert_int_equal(st.points, 2);
    assert_int_equal(st.bytes, 200);
    assert_int_equal(st.dropped, 3);
    expect_lines(s, 103, 2);
    col_spool_close(s);
}

static void test_open_errors(void **state)
{
    char err[512] = "", file[300];
    const char *dir = spool_dir(state);
    assert_null(col_spool_open(dir, 0, err, sizeof err));
    assert_string_equal(err, "spool: need a directory and a cap of at least 1 byte");
    struct col_spool *s = open_ok(dir, 1000);
    assert_null(col_spool_open(dir, 1000, err, sizeof err)); /* a second collector */
    char want[400];
    snprintf(want, sizeof want, "spool %s/spool.db: locked by another process", dir);
    assert_string_equal(err, want);
    col_spool_close(s);
    snprintf(file, sizeof file, "%s/plain", (const char *)*state);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_null(col_spool_open(file, 1000, err, sizeof err));
    snprintf(want, sizeof want, "spool dir %s: not a directory", file);
    assert_string_equal(err, want);
    struct stat sb;
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
}

/* Two threads as the collector runs them: one appends, the other peeks and acks. */
struct feeder {
    struct col_spool *s;
};

static void *feed(void *arg)
{
    struct feeder *f = arg;
    for (size_t i = 0; i < 100; i++)
        append_fixed(f->s, i * 10, 10, 50, 10);
    return NULL;
}

static void test_threads(void **state)
{
    struct col_spool *s = open_ok(spool_dir(state), 1 << 20);
    struct feeder f = { s };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, feed, &f), 0);
    struct col_spool_batch b = { 0 };
    size_t next = 0;
    while (next < 1000) {
        int n = col_spool_peek(s, 37, BIG, &b);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(line_no(&b, (size_t)i), next++);
        if (n > 0)
            assert_int_equal(col_spool_ack(s, b.ids[0], b.ids[n - 1]), n);
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    struct col_spool_stats st = stats_of(s);
    assert_int_equal(st.points, 0);
    assert_int_equal(st.appended, 1000);
    assert_int_equal(st.acked, 1000);
    col_spool_batch_clear(&b);
    col_spool_close(s);
}

/* kill -9: a child appends batches and reports each committed one; the parent kills it at a
 * random moment and checks that every reported batch is there in full and no batch is partial. */
#define KILL_ROUNDS 5
#define MAX_BATCHES 100000

struct report {
    uint32_t batch, lines;
    int64_t last_id;
};

static uint32_t batch_lines(unsigned round, uint32_t batch)
{
    return 1 + (batch * 37u + round * 11u) % 64u;
}

/* Line i of a batch: "r<round> b<batch> i<i>/<k> " padded with 'p' to 40..1039 bytes, so that
 * batches span several pages and the WAL checkpoints now and then. */
static size_t kill_line(char *buf, unsigned round, uint32_t batch, uint32_t i)
{
    uint32_t k = batch_lines(round, batch);
    size_t len = 40 + (batch * 131u + i * 17u) % 1000u;
    int n = snprintf(buf, len, "r%u b%u i%u/%u ", round, batch, i, k);
    memset(buf + n, 'p', len - (size_t)n - 1);
    buf[len - 1] = '\n';
    return len;
}

static void child_appends(const char *dir, unsigned round, int fd)
{
    char err[256], *buf = malloc(64 * 1040);
    const char *lines[64];
    size_t lens[64];
    struct col_spool *s = col_spool_open(dir, BIG, err, sizeof err);
    if (!s || !buf)
        _exit(2);
    struct col_spool_stats st;
    col_spool_stats(s, &st);
    int64_t last_id = (int64_t)st.points; /* no acks in this dir: ids are 1..points */
    for (uint32_t b = 0; b < MAX_BATCHES; b++) {
        uint32_t k = batch_lines(round, b);
        for (uint32_t i = 0; i < k; i++) {
            lines[i] = buf + i * 1040;
            lens[i] = kill_line(buf + i * 1040, round, b, i);
        }
        if (col_spool_append(s, lines, lens, k, err, sizeof err) != 0)
            _exit(3);
        last_id += k;
        struct report r = { b, k, last_id };
        if (write(fd, &r, sizeof r) != (ssize_t)sizeof r)
            _exit(4);
    }
    _exit(0);
}

struct round_log {
    struct report *r;
    size_t n;     /* reported batches */
    size_t found; /* batches found after the kill: n or n + 1 */
};

/* Runs one child, kills it after delay_us, and collects its reports. */
static void kill_round(const char *dir, unsigned round, useconds_t delay_us, struct round_log *log)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child_appends(dir, round, p[1]);
    }
    close(p[1]);
    struct report r;
    log->r = fg_malloc(MAX_BATCHES * sizeof *log->r);
    log->n = 0;
    assert_int_equal(read(p[0], &r, sizeof r), sizeof r); /* committing has begun */
    log->r[log->n++] = r;
    usleep(delay_us);
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    while (read(p[0], &r, sizeof r) == sizeof r)
        log->r[log->n++] = r;
    close(p[0]);
}

/* Checks the whole spool against the logs of rounds 0..last; fills logs[last].found. */
static void verify_kill_rounds(struct col_spool *s, struct round_log *logs, unsigned last)
{
    struct col_spool_batch b = { 0 };
    char want[64];
    int n = col_spool_peek(s, BIG, BIG, &b);
    assert_true(n > 0);
    size_t i = 0;
    uint64_t bytes = 0;
    for (unsigned round = 0; round <= last; round++) {
        uint32_t batch = 0;
        size_t want_len = (size_t)snprintf(want, sizeof want, "r%u b", round);
        while (i < (size_t)n && strncmp(b.body + b.off[i], want, want_len) == 0) {
            uint32_t k = batch_lines(round, batch);
            for (uint32_t j = 0; j < k; j++, i++) {
                char line[1040];
                size_t len = kill_line(line, round, batch, j);
                assert_true(i < (size_t)n); /* a partial batch at the end */
                assert_int_equal(b.off[i + 1] - b.off[i], len);
                assert_memory_equal(b.body + b.off[i], line, len);
                bytes += len;
            }
            if (batch < logs[round].n)
                assert_int_equal(b.ids[i - 1], logs[round].r[batch].last_id);
            batch++;
        }
        if (round == last)
            logs[round].found = batch;
        assert_int_equal(batch, logs[round].found);
        assert_true(batch == logs[round].n || batch == logs[round].n + 1);
    }
    assert_int_equal(i, (size_t)n); /* nothing else */
    struct col_spool_stats st = stats_of(s);
    assert_int_equal(st.points, (uint64_t)n);
    assert_int_equal(st.bytes, bytes);
    col_spool_batch_clear(&b);
}

static void test_kill9(void **state)
{
    const char *dir = spool_dir(state);
    struct round_log logs[KILL_ROUNDS];
    uint32_t seed = 20240611u;
    for (unsigned round = 0; round < KILL_ROUNDS; round++) {
        seed = seed * 1103515245u + 12345u;
        kill_round(dir, round, (useconds_t)(1000 + (seed >> 8) % 60000), &logs[round]);
        struct col_spool *s = open_ok(dir, BIG);
        verify_kill_rounds(s, logs, round);
        col_spool_close(s);
    }
    for (unsigned round = 0; round < KILL_ROUNDS; round++)
        free(logs[round].r);
}

static size_t count_aside(const char *dir, off_t *size)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "spool.db.corrupt-", 17) == 0 && !strstr(e->d_name, "-wal")) {
            char path[600];
            struct stat sb;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            assert_int_equal(stat(path, &sb), 0);
            *size = sb.st_size;
            n++;
        }
    closedir(d);
    return n;
}

static void write_at(const char *path, off_t at, const char *data, size_t len, int flags)
{
    int fd = open(path, O_WRONLY | flags, 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, len, at), (ssize_t)len);
    close(fd);
}

/* Expects open to set the file aside and give an empty spool that works. */
static void expect_recovered(const char *dir, size_t aside, off_t aside_size)
{
    struct col_spool *s = open_ok(dir, 1 << 20);
    struct col_spool_stats st = stats_of(s);
    assert_int_equal(st.recovered_corrupt, 1);
    assert_int_equal(st.points, 0);
    assert_int_equal(st.bytes, 0);
    off_t size = -1;
    assert_int_equal(count_aside(dir, &size), aside);
    if (aside_size >= 0)
        assert_int_equal(size, aside_size);
    append_fixed(s, 0, 3, 30, 3);
    expect_lines(s, 0, 3);
    col_spool_close(s);
    s = open_ok(dir, 1 << 20);
    assert_int_equal(stats_of(s).recovered_corrupt, 0);
    assert_int_equal(stats_of(s).points, 3);
    col_spool_close(s);
}

static void test_corrupt(void **state)
{
    const char *dir = spool_dir(state);
    char db[300], junk[8192];
    snprintf(db, sizeof db, "%s/spool.db", dir);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    /* garbage instead of a database */
    col_spool_close(open_ok(dir, 1 << 20));
    write_at(db, 0, junk, sizeof junk, O_TRUNC);
    expect_recovered(dir, 1, (off_t)sizeof junk);
    /* a database whose table pages were overwritten: found by the check at open */
    struct col_spool *s = open_ok(dir, 1 << 22);
    append_fixed(s, 0, 2000, 500, 500);
    col_spool_close(s);
    write_at(db, 8 * 4096, junk, sizeof junk, 0);
    expect_recovered(dir, 2, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_and_contents, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_bad_lines, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_batch_limits, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_ack_subranges, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_cap_small_batches, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_cap_one_big_batch, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_reopen, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_open_errors, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_threads, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_kill9, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_corrupt, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
