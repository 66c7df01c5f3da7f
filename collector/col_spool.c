/* col_spool: the spool as one SQLite table `lines` (id INTEGER PRIMARY KEY AUTOINCREMENT, line
 * BLOB). WAL with synchronous=FULL fsyncs every commit, so a committed append survives kill -9 and
 * power cuts; one transaction per append keeps that fsync cheap per line. AUTOINCREMENT never
 * reuses an id, so a stale ack (of a batch evicted meanwhile) cannot delete newer lines. */
#include "col_spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fg_dl.h"
#include "fg_mem.h"

/* SQLite is loaded at run time (fg_dl) by col_spool_open, so that a collector without an InfluxDB
 * output never maps it. The table is filled once, under fg_dl's lock, and only read afterwards. */
#define SQ_FUNCS(X)                                                                                 \
    X(bind_blob) X(bind_int64) X(busy_timeout) X(clear_bindings) X(close_v2) X(column_blob)         \
    X(column_bytes) X(column_int64) X(column_text) X(errmsg) X(errstr) X(exec) X(finalize)          \
    X(get_autocommit) X(open_v2) X(prepare_v2) X(prepare_v3) X(reset) X(step)
#define SQ_MEMBER(f) __typeof__(sqlite3_##f) *f;
#define SQ_SYM(f) FG_DL_SYM(struct sqlite_api, f, "sqlite3_" #f),
static struct sqlite_api { SQ_FUNCS(SQ_MEMBER) } sq;
static const struct fg_dl_sym sq_syms[] = { SQ_FUNCS(SQ_SYM) };
static struct fg_dl_lib sqlite_lib = FG_DL_LIB("libsqlite3.so.0", "libsqlite3-0", sq_syms, &sq);

/* Prepared once at open and reused; each is reset after use so it holds no read lock. */
enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INSERT,
    ST_WALK,
    ST_DEL_UPTO,
    ST_PEEK,
    ST_RANGE_SUM,
    ST_DEL_RANGE,
    ST_DEL_UPTO_EXCEPT,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT] = "INSERT INTO lines(line) VALUES(?1)",
    /* length() of a BLOB comes from the record header: the walk does not read the lines */
    [ST_WALK] = "SELECT id, length(line) FROM lines ORDER BY id",
    [ST_DEL_UPTO] = "DELETE FROM lines WHERE id <= ?1",
    [ST_PEEK] = "SELECT id, line FROM lines ORDER BY id LIMIT ?1",
    [ST_RANGE_SUM] = "SELECT count(*), coalesce(sum(length(line)), 0) FROM lines "
                     "WHERE id BETWEEN ?1 AND ?2",
    [ST_DEL_RANGE] = "DELETE FROM lines WHERE id BETWEEN ?1 AND ?2",
    [ST_DEL_UPTO_EXCEPT] = "DELETE FROM lines WHERE id <= ?1 AND id NOT BETWEEN ?2 AND ?3",
};

struct col_spool {
    pthread_mutex_t mu; /* guards everything below: one connection, used by one thread at a time */
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    uint64_t max_bytes;
    struct col_spool_stats stats;
    /* The lines of the last peek are on their way to InfluxDB: the cap evicts other lines first, for
     * as long as a request may take, so that a line is never both evicted (counted dropped) and
     * stored by a request that then succeeds. */
    int64_t inflight_first, inflight_last, inflight_until_ms;
};

#define INFLIGHT_MS 15000 /* a write request ends within 10 s (connect 5 s, whole request 10 s) */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What one eviction removed; `all` means the walk ran out, so the table now holds only new rows. */
struct evicted {
    uint64_t rows, bytes;
    bool all;
};

__attribute__((format(printf, 3, 4))) static void setf(char *err, size_t errlen, const char *fmt,
                                                       ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 1, 2))) static char *pathf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = fg_malloc((size_t)(n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static int errno_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
        return -EACCES;
    case SQLITE_TOOBIG:
        return -E2BIG;
    default:
        return -EIO;
    }
}

static bool is_corrupt(int rc)
{
    return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

/* Creates dir and its missing parents with mode 0700 (the spool holds site data). */
static int mkdir_p(const char *dir, char *err, size_t errlen)
{
    char *p = fg_strdup(dir);
    int rc = 0;
    for (char *q = p + 1; rc == 0; q++) {
        bool end = *q == '\0';
        if (*q != '/' && !end)
            continue;
        *q = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            rc = -errno;
            setf(err, errlen, "spool dir %s: cannot create %s: %s", dir, p, strerror(errno));
        }
        if (end)
            break;
        *q = '/';
    }
    free(p);
    struct stat sb;
    if (rc == 0 && (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))) {
        setf(err, errlen, "spool dir %s: not a directory", dir);
        rc = -ENOTDIR;
    }
    return rc;
}

/* Makes a created or renamed file name durable, not only its contents. Best effort. */
static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Runs one statement to completion; the first column of the first row, if any, goes to out. */
static int exec_sql(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
    sqlite3_stmt *q;
    int rc = sq.prepare_v2(db, sql, -1, &q, NULL);
    if (rc != SQLITE_OK)
        return rc;
    if (out)
        out[0] = '\0';
    bool first = true;
    while ((rc = sq.step(q)) == SQLITE_ROW) {
        const unsigned char *t = sq.column_text(q, 0);
        if (first && out && t)
            fg_strlcpy(out, (const char *)t, outlen);
        first = false;
    }
    sq.finalize(q);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Exclusive locking first: the WAL index then lives in heap memory (no -shm file), and the lock is
 * held until close, so a second collector on the same spool fails at open instead of sharing it. */
static int configure(sqlite3 *db, char *err, size_t errlen)
{
    char mode[16];
    int rc = exec_sql(db, "PRAGMA locking_mode=EXCLUSIVE", NULL, 0);
    if (rc == SQLITE_OK)
        rc = exec_sql(db, "PRAGMA journal_mode=WAL", mode, sizeof mode);
    if (rc == SQLITE_OK && strcmp(mode, "wal") != 0) {
        setf(err, errlen, "cannot switch to WAL mode (got %s)", mode);
        return SQLITE_ERROR;
    }
    if (rc == SQLITE_OK)
        rc = exec_sql(db, "PRAGMA synchronous=FULL", NULL, 0);
    /* 256 KiB of page cache instead of 2 MiB: appends touch the right edge of the table, peek and ack
     * the left edge, so a few dozen pages are the whole working set */
    if (rc == SQLITE_OK)
        rc = exec_sql(db, "PRAGMA cache_size=-256", NULL, 0);
    if (rc == SQLITE_OK)
        rc = exec_sql(db, "PRAGMA quick_check(1)", mode, sizeof mode);
    if (rc == SQLITE_OK && strcmp(mode, "ok") != 0)
        return SQLITE_CORRUPT;
    if (rc == SQLITE_OK)
        rc = exec_sql(db, "CREATE TABLE IF NOT EXISTS lines("
                          "id INTEGER PRIMARY KEY AUTOINCREMENT, line BLOB NOT NULL)", NULL, 0);
    if (rc == SQLITE_OK) /* takes the exclusive lock now rather than at the first append */
        rc = sq.exec(db, "BEGIN IMMEDIATE; COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK && !err[0])
        setf(err, errlen, "%s", (rc & 0xff) == SQLITE_BUSY ? "locked by another process"
                                                            : sq.errmsg(db));
    return rc;
}

/* The one query that initialises the in-memory counters. */
static int load_counts(struct col_spool *s)
{
    sqlite3_stmt *q;
    int rc = sq.prepare_v2(s->db, "SELECT count(*), coalesce(sum(length(line)), 0) FROM lines",
                                -1, &q, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sq.step(q);
    if (rc == SQLITE_ROW) {
        s->stats.points = (uint64_t)sq.column_int64(q, 0);
        s->stats.bytes = (uint64_t)sq.column_int64(q, 1);
        s->stats.found_at_open = s->stats.points;
        rc = SQLITE_OK;
    }
    sq.finalize(q);
    return rc;
}

static int prepare_all(struct col_spool *s)
{
    for (int i = 0; i < ST_COUNT; i++) {
        int rc = sq.prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                                    NULL);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

static void close_db(struct col_spool *s)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sq.finalize(s->st[i]);
        s->st[i] = NULL;
    }
    sq.close_v2(s->db);
    s->db = NULL;
}

/* Opens and checks path. Returns an SQLite code; on failure s->db is closed and err says why
 * (a corrupt file is reported by the code alone: the caller sets it aside). */
static int open_db(struct col_spool *s, const char *path, char *err, size_t errlen)
{
    err[0] = '\0';
    int rc = sq.open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                               SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sq.busy_timeout(s->db, 0);
        rc = configure(s->db, err, errlen);
    }
    if (rc == SQLITE_OK)
        rc = load_counts(s);
    if (rc == SQLITE_OK)
        rc = prepare_all(s);
    if (rc != SQLITE_OK) {
        if (!err[0])
            setf(err, errlen, "%s", s->db ? sq.errmsg(s->db) : sq.errstr(rc));
        close_db(s);
    }
    return rc;
}

/* Renames path (and its WAL) to path.corrupt-<unix time>[.k], the first name not taken. */
static int set_aside(const char *path, char *err, size_t errlen)
{
    long now_s = (long)time(NULL);
    char *dst = NULL;
    for (int k = 0; k < 1000; k++) {
        free(dst);
        dst = k ? pathf("%s.corrupt-%ld.%d", path, now_s, k) : pathf("%s.corrupt-%ld", path, now_s);
        if (access(dst, F_OK) < 0 && errno == ENOENT)
            break;
    }
    int rc = 0;
    if (rename(path, dst) < 0) {
        rc = -errno;
        setf(err, errlen, "%s is corrupt and cannot be renamed to %s: %s", path, dst,
             strerror(errno));
    } else {
        char *wal = pathf("%s-wal", path), *wal_dst = pathf("%s-wal", dst);
        char *shm = pathf("%s-shm", path);
        (void)rename(wal, wal_dst); /* no WAL is normal after a clean close */
        (void)unlink(shm);
        free(wal);
        free(wal_dst);
        free(shm);
    }
    free(dst);
    return rc;
}

/* Resets q so that it holds no lock, and turns a finished step into SQLITE_OK. */
static int done(sqlite3_stmt *q, int rc)
{
    sq.reset(q);
    sq.clear_bindings(q);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int run(struct col_spool *s, enum stmt_id id)
{
    sqlite3_stmt *q = s->st[id];
    return done(q, sq.step(q));
}

/* Evicts the oldest rows outside the in-flight range, if they add up to excess bytes. Returns SQLITE_OK
 * with ev->rows == 0 when they do not (the caller then evicts in plain id order). */
static int evict_sparing_inflight(struct col_spool *s, uint64_t excess, struct evicted *ev)
{
    sqlite3_stmt *q = s->st[ST_WALK];
    int64_t last_id = 0, a = s->inflight_first, b = s->inflight_last;
    uint64_t rows = 0, bytes = 0;
    int rc;
    *ev = (struct evicted){ 0, 0, false };
    while (bytes < excess && (rc = sq.step(q)) == SQLITE_ROW) {
        int64_t id = sq.column_int64(q, 0);
        if (id >= a && id <= b)
            continue;
        last_id = id;
        bytes += (uint64_t)sq.column_int64(q, 1);
        rows++;
    }
    rc = done(q, bytes < excess ? rc : SQLITE_DONE);
    if (rc != SQLITE_OK || bytes < excess || rows == 0)
        return rc;
    sqlite3_stmt *d = s->st[ST_DEL_UPTO_EXCEPT];
    sq.bind_int64(d, 1, last_id);
    sq.bind_int64(d, 2, a);
    sq.bind_int64(d, 3, b);
    *ev = (struct evicted){ rows, bytes, false };
    return done(d, sq.step(d));
}

/* Deletes the oldest rows, in id order, until their text adds up to at least excess bytes.
 * Runs inside the caller's transaction. */
static int evict(struct col_spool *s, uint64_t excess, struct evicted *ev)
{
    if (s->inflight_last && mono_ms() < s->inflight_until_ms && excess != UINT64_MAX) {
        int rc = evict_sparing_inflight(s, excess, ev);
        if (rc != SQLITE_OK || ev->rows)
            return rc;
    }
    sqlite3_stmt *q = s->st[ST_WALK];
    int64_t last_id = 0;
    int rc = SQLITE_DONE;
    *ev = (struct evicted){ 0, 0, false };
    while (ev->bytes < excess && (rc = sq.step(q)) == SQLITE_ROW) {
        last_id = sq.column_int64(q, 0);
        ev->bytes += (uint64_t)sq.column_int64(q, 1);
        ev->rows++;
    }
    ev->all = ev->bytes < excess; /* the walk ran out: the table is emptied */
    rc = done(q, ev->all ? rc : SQLITE_DONE);
    if (rc != SQLITE_OK || ev->rows == 0)
        return rc;
    sqlite3_stmt *d = s->st[ST_DEL_UPTO];
    sq.bind_int64(d, 1, last_id);
    return done(d, sq.step(d));
}

/* Which lines of a batch the cap keeps. A line longer than the cap can never be stored: it is
 * dropped alone and evicts nothing. The others keep arrival order: the newest that fit are kept,
 * and if any had to go, every stored (older) line goes too, so the spool always holds the newest
 * lines. Lines i >= *first no longer than max_bytes are kept: *kept of them, *kept_bytes bytes. */
static void plan_batch(const size_t *lens, size_t n, uint64_t max_bytes, size_t *first,
                       size_t *kept, uint64_t *kept_bytes)
{
    uint64_t sum = 0;
    size_t i = n, k = 0;
    for (; i > 0; i--) {
        if (lens[i - 1] > max_bytes)
            continue;
        if (sum + lens[i - 1] > max_bytes)
            break;
        sum += lens[i - 1];
        k++;
    }
    *first = i;
    *kept = k;
    *kept_bytes = sum;
}

static int check_lines(const char *const *lines, const size_t *lens, size_t n, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = lens[i];
        if (len == 0 || len > INT_MAX || lines[i][len - 1] != '\n' ||
            memchr(lines[i], '\n', len - 1)) {
            setf(err, errlen, "spool append: line %zu (%zu bytes) is not one line ending in '\\n'",
                 i, len);
            return -EINVAL;
        }
    }
    return 0;
}

/* Rolls back whatever the failed step left open; returns the errno-style code of rc. */
static int fail(struct col_spool *s, int rc, const char *what, char *err, size_t errlen)
{
    setf(err, errlen, "spool %s: %s", what, sq.errmsg(s->db));
    if (!sq.get_autocommit(s->db))
        run(s, ST_ROLLBACK);
    return errno_of(rc);
}

/* Applies a committed change to the counters: evicted old rows, then kept new ones. */
static void count_change(struct col_spool *s, const struct evicted *ev, uint64_t new_rows,
                         uint64_t new_bytes)
{
    struct col_spool_stats *st = &s->stats;
    st->points = (ev->all ? 0 : st->points - ev->rows) + new_rows;
    st->bytes = (ev->all ? 0 : st->bytes - ev->bytes) + new_bytes;
    st->dropped += ev->rows;
}

static int append_locked(struct col_spool *s, const char *const *lines, const size_t *lens,
                         size_t n, char *err, size_t errlen)
{
    size_t first, kept;
    uint64_t kept_bytes;
    plan_batch(lens, n, s->max_bytes, &first, &kept, &kept_bytes);
    uint64_t total = s->stats.bytes + kept_bytes;
    /* first > 0: a line of this batch was dropped for space, so all older ones go (UINT64_MAX) */
    uint64_t excess = first > 0 ? UINT64_MAX : total > s->max_bytes ? total - s->max_bytes : 0;
    struct evicted ev = { 0, 0, false };
    int rc = run(s, ST_BEGIN);
    if (rc != SQLITE_OK)
        return fail(s, rc, "begin", err, errlen);
    if (excess > 0 && (rc = evict(s, excess, &ev)) != SQLITE_OK)
        return fail(s, rc, "evict", err, errlen);
    for (size_t i = first; i < n; i++) {
        if (lens[i] > s->max_bytes)
            continue;
        sqlite3_stmt *q = s->st[ST_INSERT];
        sq.bind_blob(q, 1, lines[i], (int)lens[i], SQLITE_STATIC);
        if ((rc = done(q, sq.step(q))) != SQLITE_OK)
            return fail(s, rc, "insert", err, errlen);
    }
    if ((rc = run(s, ST_COMMIT)) != SQLITE_OK)
        return fail(s, rc, "commit", err, errlen);
    count_change(s, &ev, kept, kept_bytes);
    s->stats.dropped += n - kept;
    s->stats.appended += n;
    return 0;
}

int col_spool_append(struct col_spool *s, const char *const *lines, const size_t *lens, size_t n,
                     char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    int rc = check_lines(lines, lens, n, err, errlen);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&s->mu);
    rc = append_locked(s, lines, lens, n, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* A lowered cap applies at once, so that bytes <= max_bytes holds from open on. */
static int enforce_cap(struct col_spool *s, char *err, size_t errlen)
{
    if (s->stats.bytes <= s->max_bytes)
        return 0;
    struct evicted ev;
    int rc = run(s, ST_BEGIN);
    if (rc == SQLITE_OK && (rc = evict(s, s->stats.bytes - s->max_bytes, &ev)) == SQLITE_OK)
        rc = run(s, ST_COMMIT);
    if (rc != SQLITE_OK)
        return fail(s, rc, "evict at open", err, errlen);
    count_change(s, &ev, 0, 0);
    return 0;
}

struct col_spool *col_spool_open(const char *dir, uint64_t max_bytes, char *err, size_t errlen)
{
    char msg[512];
    if (!dir || !dir[0] || max_bytes == 0) {
        setf(err, errlen, "spool: need a directory and a cap of at least 1 byte");
        return NULL;
    }
    if (fg_dl_load(&sqlite_lib, msg, sizeof msg) < 0) {
        setf(err, errlen, "spool: %s", msg);
        return NULL;
    }
    if (mkdir_p(dir, err, errlen) < 0)
        return NULL;
    char *path = pathf("%s/spool.db", dir);
    struct col_spool *s = fg_calloc(1, sizeof *s);
    s->max_bytes = max_bytes;
    int rc = open_db(s, path, msg, sizeof msg);
    if (is_corrupt(rc) && set_aside(path, msg, sizeof msg) == 0) {
        s->stats = (struct col_spool_stats){ .recovered_corrupt = 1 };
        rc = open_db(s, path, msg, sizeof msg);
    }
    if (rc == SQLITE_OK && enforce_cap(s, msg, sizeof msg) < 0)
        rc = SQLITE_ERROR;
    if (rc != SQLITE_OK) {
        setf(err, errlen, "spool %s: %s", path, msg);
        close_db(s);
        free(s);
        free(path);
        return NULL;
    }
    fsync_dir(dir);
    free(path);
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

void col_spool_close(struct col_spool *s)
{
    if (!s)
        return;
    close_db(s);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Growth of the caller-owned batch arrays; cap counts lines (ids has cap, off cap + 1). */
static void batch_reserve(struct col_spool_batch *b, size_t *cap, size_t *body_cap, size_t len)
{
    if (b->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        b->ids = fg_realloc(b->ids, *cap * sizeof *b->ids);
        b->off = fg_realloc(b->off, (*cap + 1) * sizeof *b->off);
    }
    size_t used = b->n ? b->off[b->n] : 0;
    if (used + len > *body_cap) {
        while (used + len > *body_cap)
            *body_cap = *body_cap ? *body_cap * 2 : 4096;
        b->body = fg_realloc(b->body, *body_cap);
    }
}

static int peek_locked(struct col_spool *s, size_t max_lines, size_t max_bytes,
                       struct col_spool_batch *b)
{
    sqlite3_stmt *q = s->st[ST_PEEK];
    size_t cap = 0, body_cap = 0, used = 0;
    int rc;
    sq.bind_int64(q, 1, (sqlite3_int64)max_lines);
    while ((rc = sq.step(q)) == SQLITE_ROW) {
        const void *line = sq.column_blob(q, 1);
        size_t len = (size_t)sq.column_bytes(q, 1);
        if (b->n > 0 && used + len > max_bytes)
            break;
        batch_reserve(b, &cap, &body_cap, len);
        if (b->n == 0)
            b->off[0] = 0;
        b->ids[b->n] = sq.column_int64(q, 0);
        if (len)
            memcpy(b->body + used, line, len);
        used += len;
        b->off[++b->n] = used;
    }
    rc = done(q, rc);
    if (rc == SQLITE_OK && b->n) {
        s->inflight_first = b->ids[0];
        s->inflight_last = b->ids[b->n - 1];
        s->inflight_until_ms = mono_ms() + INFLIGHT_MS;
    }
    return rc == SQLITE_OK ? (int)b->n : errno_of(rc);
}

int col_spool_peek(struct col_spool *s, size_t max_lines, size_t max_bytes,
                   struct col_spool_batch *b)
{
    col_spool_batch_clear(b);
    if (max_lines == 0)
        return -EINVAL;
    if (max_lines > INT_MAX) /* the return value counts the lines */
        max_lines = INT_MAX;
    pthread_mutex_lock(&s->mu);
    int rc = peek_locked(s, max_lines, max_bytes, b);
    pthread_mutex_unlock(&s->mu);
    if (rc < 0)
        col_spool_batch_clear(b);
    return rc;
}

void col_spool_batch_clear(struct col_spool_batch *b)
{
    if (!b)
        return;
    free(b->ids);
    free(b->off);
    free(b->body);
    *b = (struct col_spool_batch){ 0, NULL, NULL, NULL };
}

static int ack_locked(struct col_spool *s, int64_t first_id, int64_t last_id)
{
    sqlite3_stmt *q = s->st[ST_RANGE_SUM];
    sq.bind_int64(q, 1, first_id);
    sq.bind_int64(q, 2, last_id);
    int rc = sq.step(q);
    uint64_t rows = rc == SQLITE_ROW ? (uint64_t)sq.column_int64(q, 0) : 0;
    uint64_t bytes = rc == SQLITE_ROW ? (uint64_t)sq.column_int64(q, 1) : 0;
    if ((rc = done(q, rc)) != SQLITE_OK)
        return errno_of(rc);
    if (first_id <= s->inflight_last && last_id >= s->inflight_first)
        s->inflight_last = 0; /* answered: nothing in flight any more */
    if (rows == 0)
        return 0;
    /* the mutex keeps the table as counted: the DELETE removes exactly these rows */
    q = s->st[ST_DEL_RANGE];
    sq.bind_int64(q, 1, first_id);
    sq.bind_int64(q, 2, last_id);
    if ((rc = done(q, sq.step(q))) != SQLITE_OK)
        return errno_of(rc);
    s->stats.points -= rows;
    s->stats.bytes -= bytes;
    s->stats.acked += rows;
    return rows > INT_MAX ? INT_MAX : (int)rows;
}

int col_spool_ack(struct col_spool *s, int64_t first_id, int64_t last_id)
{
    if (first_id > last_id)
        return -EINVAL;
    pthread_mutex_lock(&s->mu);
    int rc = ack_locked(s, first_id, last_id);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void col_spool_release(struct col_spool *s)
{
    pthread_mutex_lock(&s->mu);
    s->inflight_last = 0;
    pthread_mutex_unlock(&s->mu);
}

void col_spool_stats(struct col_spool *s, struct col_spool_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}
