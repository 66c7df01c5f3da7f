/* bal_persist: the daemon's state file. JSON so that an operator can read it; strict on reading (a
 * file that is not exactly what we write is corrupt and set aside, never half-trusted); written to a
 * temporary file, synced and renamed, so that a crash or power cut never leaves a torn state. */
#include "bal_persist.h"

#include "fg_cfg.h"
#include "fg_file.h"
#include "fg_mem.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXACT_MAX 9007199254740991.0 /* 2^53 - 1: every integer up to it is a double, and no other text
                                      * of an integer reads as one (9007199254740993 reads as 2^53) */
#define TWO_63 9223372036854775808.0
#define STR_MAX 47                   /* bytes of a job id */

/* ---- encoding ---- */

static void add_ms(cJSON *o, const char *key, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    cJSON_AddItemToObject(o, key, cJSON_CreateRaw(buf)); /* exact: not through a double */
}

/* The shortest of %.15g..%.17g that reads back bit for bit (cJSON's own printer settles for "close"). */
static void add_num(cJSON *o, const char *key, double v)
{
    char buf[40];
    if (!isfinite(v)) {
        cJSON_AddItemToObject(o, key, cJSON_CreateNull());
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    cJSON_AddItemToObject(o, key, cJSON_CreateRaw(buf));
}

static cJSON *job_json(const struct bal_pjob *j)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "machine", j->machine);
    add_ms(o, "earliest_ms", j->earliest_ms);
    add_ms(o, "deadline_ms", j->deadline_ms);
    add_num(o, "energy_wh", j->energy_wh);
    add_num(o, "done_wh", j->done_wh);
    cJSON_AddBoolToObject(o, "required", j->required);
    cJSON_AddBoolToObject(o, "surplus_only", j->surplus_only);
    cJSON_AddBoolToObject(o, "requested", j->requested);
    cJSON_AddBoolToObject(o, "running", j->running);
    add_ms(o, "started_ms", j->started_ms);
    add_ms(o, "done_ms", j->done_ms);
    add_ms(o, "state", j->state);
    return o;
}

static cJSON *machine_json(const struct bal_pmachine *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", m->id);
    cJSON_AddBoolToObject(o, "on", m->on);
    cJSON_AddBoolToObject(o, "faulted", m->faulted);
    add_num(o, "power_w", m->power_w);
    add_ms(o, "since_ms", m->since_ms);
    add_ms(o, "starts_today", m->starts_today);
    add_ms(o, "starts_day", m->starts_day);
    cJSON_AddStringToObject(o, "job", m->job);
    return o;
}

char *bal_persist_encode(const struct bal_pstate *s)
{
    cJSON *root = cJSON_CreateObject(), *jobs, *machines;
    char *text, *out;
    size_t n;
    add_ms(root, "version", BAL_PERSIST_VERSION);
    add_ms(root, "saved_ms", s->saved_ms);
    jobs = cJSON_AddArrayToObject(root, "jobs");
    for (size_t i = 0; i < s->njobs; i++)
        cJSON_AddItemToArray(jobs, job_json(&s->jobs[i]));
    machines = cJSON_AddArrayToObject(root, "machines");
    for (size_t i = 0; i < s->nmachines; i++)
        cJSON_AddItemToArray(machines, machine_json(&s->machines[i]));
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        fputs("fabgrid: out of memory encoding the balancer state\n", stderr);
        abort();
    }
    n = strlen(text);
    out = fg_malloc(n + 2);
    memcpy(out, text, n);
    memcpy(out + n, "\n", 2);
    cJSON_free(text);
    return out;
}

/* ---- decoding ---- */

/* obj[key] as it is (null included), or NULL after recording "missing (required)". */
static const cJSON *need(struct fg_cfg *c, const cJSON *o, const char *path, const char *key)
{
    char kp[FG_CFG_PATH_MAX];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        fg_cfg_errorf(c, fg_cfg_last_leaf(o), fg_cfg_path(kp, sizeof kp, path, -1, key), "missing (required)");
    return v;
}

static void bad_value(struct fg_cfg *c, const cJSON *v, const char *path, const char *key, const char *what)
{
    char kp[FG_CFG_PATH_MAX], got[64];
    const char *g = cJSON_IsNumber(v) || cJSON_IsString(v) ? fg_cfg_got_value(v, got, sizeof got) : fg_cfg_got_kind(v);
    fg_cfg_errorf(c, v, fg_cfg_path(kp, sizeof kp, path, -1, key), "must be %s, got %s", what, g);
}

/* An integer written by add_ms: whole, within ±(2^53 - 1), or exactly INT64_MIN / INT64_MAX (which a
 * double holds as ∓2^63). */
static int get_i64(struct fg_cfg *c, const cJSON *o, const char *path, const char *key, int64_t *out)
{
    const cJSON *v = need(c, o, path, key);
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    *out = 0;
    if (!v)
        return -1;
    if (d == -TWO_63)
        *out = INT64_MIN;
    else if (d == TWO_63)
        *out = INT64_MAX;
    else if (d >= -EXACT_MAX && d <= EXACT_MAX && d == floor(d))
        *out = (int64_t)d;
    else
        d = NAN;
    if (!isnan(d))
        return 0;
    bad_value(c, v, path, key, "a whole number within +-(2^53 - 1)");
    return -1;
}

static int get_int(struct fg_cfg *c, const cJSON *o, const char *path, const char *key, long lo, long hi, long *out)
{
    return fg_cfg_int(c, o, path, key, true, lo, hi, 0, out) < 0 ? -1 : 0;
}

/* A number, or null for NaN. */
static int get_num(struct fg_cfg *c, const cJSON *o, const char *path, const char *key, double *out)
{
    const cJSON *v = need(c, o, path, key);
    *out = NAN;
    if (!v || cJSON_IsNull(v))
        return v ? 0 : -1;
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
        *out = v->valuedouble;
        return 0;
    }
    bad_value(c, v, path, key, "a number or null");
    return -1;
}

static int get_bool(struct fg_cfg *c, const cJSON *o, const char *path, const char *key, bool *out)
{
    return fg_cfg_bool(c, o, path, key, true, false, out) < 0 ? -1 : 0;
}

/* A string of 0..STR_MAX bytes ("" allowed, unlike fg_cfg_str). */
static int get_str0(struct fg_cfg *c, const cJSON *o, const char *path, const char *key, char *dst, size_t len)
{
    const cJSON *v = need(c, o, path, key);
    dst[0] = '\0';
    if (!v)
        return -1;
    if (cJSON_IsString(v) && strlen(v->valuestring) < len) {
        fg_strlcpy(dst, v->valuestring, len);
        return 0;
    }
    bad_value(c, v, path, key, "a string of 0..47 bytes");
    return -1;
}

static const char *const job_keys[] = { "id", "machine", "earliest_ms", "deadline_ms", "energy_wh", "done_wh",
                                        "required", "surplus_only", "requested", "running", "started_ms",
                                        "done_ms", "state", NULL };
static const char *const machine_keys[] = { "id", "on", "faulted", "power_w", "since_ms", "starts_today",
                                            "starts_day", "job", NULL };
static const char *const root_keys[] = { "version", "saved_ms", "jobs", "machines", NULL };

static void decode_job(struct fg_cfg *c, const cJSON *o, const char *p, struct bal_pjob *j)
{
    long state;
    fg_cfg_known_keys(c, o, p, job_keys);
    fg_cfg_strbuf(c, o, p, "id", true, NULL, j->id, sizeof j->id);
    fg_cfg_id(c, o, p, "machine", true, NULL, j->machine, sizeof j->machine);
    get_i64(c, o, p, "earliest_ms", &j->earliest_ms);
    get_i64(c, o, p, "deadline_ms", &j->deadline_ms);
    get_num(c, o, p, "energy_wh", &j->energy_wh);
    get_num(c, o, p, "done_wh", &j->done_wh);
    get_bool(c, o, p, "required", &j->required);
    get_bool(c, o, p, "surplus_only", &j->surplus_only);
    get_bool(c, o, p, "requested", &j->requested);
    get_bool(c, o, p, "running", &j->running);
    get_i64(c, o, p, "started_ms", &j->started_ms);
    get_i64(c, o, p, "done_ms", &j->done_ms);
    get_int(c, o, p, "state", -1000000, 1000000, &state);
    j->state = (int)state;
}

static void decode_machine(struct fg_cfg *c, const cJSON *o, const char *p, struct bal_pmachine *m)
{
    long starts, day;
    fg_cfg_known_keys(c, o, p, machine_keys);
    fg_cfg_id(c, o, p, "id", true, "machine", m->id, sizeof m->id);
    get_bool(c, o, p, "on", &m->on);
    get_bool(c, o, p, "faulted", &m->faulted);
    get_num(c, o, p, "power_w", &m->power_w);
    get_i64(c, o, p, "since_ms", &m->since_ms);
    get_int(c, o, p, "starts_today", 0, 1000000, &starts);
    get_int(c, o, p, "starts_day", INT32_MIN, INT32_MAX, &day);
    get_str0(c, o, p, "job", m->job, sizeof m->job);
    m->starts_today = (unsigned)starts;
    m->starts_day = (int32_t)day;
}

/* The array at key: each element an object handed to one (elements of size bytes at *items). */
static size_t decode_array(struct fg_cfg *c, const cJSON *root, const char *key, size_t max, size_t size,
                           void **items, void (*one)(struct fg_cfg *, const cJSON *, const char *, void *))
{
    char p[FG_CFG_PATH_MAX];
    const cJSON *arr, *o;
    size_t n = 0;
    *items = NULL;
    if (fg_cfg_container(c, root, NULL, key, true, cJSON_Array, &arr) != 0)
        return 0;
    if ((size_t)cJSON_GetArraySize(arr) > max) {
        fg_cfg_errorf(c, arr, key, "must have at most %zu entries, got %d", max, cJSON_GetArraySize(arr));
        return 0;
    }
    if (arr->child)
        *items = fg_calloc((size_t)cJSON_GetArraySize(arr), size);
    cJSON_ArrayForEach(o, arr) {
        fg_cfg_path(p, sizeof p, key, (long)n, NULL);
        if (cJSON_IsObject(o))
            one(c, o, p, (char *)*items + n * size);
        else
            fg_cfg_errorf(c, o, p, "must be an object, got %s", fg_cfg_got_kind(o));
        n++;
    }
    return n;
}

static void one_job(struct fg_cfg *c, const cJSON *o, const char *p, void *item)
{
    decode_job(c, o, p, item);
}

static void one_machine(struct fg_cfg *c, const cJSON *o, const char *p, void *item)
{
    decode_machine(c, o, p, item);
}

static void decode_root(struct fg_cfg *c, const cJSON *root, struct bal_pstate *s)
{
    static const long versions[] = { BAL_PERSIST_VERSION };
    long version;
    void *items;
    fg_cfg_known_keys(c, root, NULL, root_keys);
    fg_cfg_int_oneof(c, root, NULL, "version", true, versions, 1, 0, &version);
    get_i64(c, root, NULL, "saved_ms", &s->saved_ms);
    s->njobs = decode_array(c, root, "jobs", BAL_PERSIST_MAX_JOBS, sizeof *s->jobs, &items, one_job);
    s->jobs = items;
    s->nmachines = decode_array(c, root, "machines", BAL_PERSIST_MAX_MACHINES, sizeof *s->machines, &items,
                                one_machine);
    s->machines = items;
}

/* Decodes text, naming it name in the messages. */
static int decode_named(const char *name, const char *text, size_t len, struct bal_pstate *s, char *err,
                        size_t errlen)
{
    struct fg_cfg *c = fg_cfg_new(name);
    cJSON *root = fg_cfg_parse_text(c, text, len);
    int rc = 0;
    memset(s, 0, sizeof *s);
    if (root && !cJSON_IsObject(root))
        fg_cfg_errorf(c, root, NULL, "must be a JSON object, got %s", fg_cfg_got_kind(root));
    else if (root)
        decode_root(c, root, s);
    fg_cfg_sort(c, root);
    if (err && errlen)
        fg_strlcpy(err, fg_cfg_errors(c), errlen);
    if (fg_cfg_nerrors(c) > 0) {
        bal_pstate_free(s);
        rc = -EINVAL;
    }
    cJSON_Delete(root);
    fg_cfg_free(c);
    return rc;
}

int bal_persist_decode(const char *text, size_t len, struct bal_pstate *s, char *err, size_t errlen)
{
    return decode_named("state", text, len, s, err, errlen);
}

void bal_pstate_free(struct bal_pstate *s)
{
    if (!s)
        return;
    free(s->jobs);
    free(s->machines);
    memset(s, 0, sizeof *s);
}

/* ---- files ---- */

static int fail(char *err, size_t errlen, int code, const char *file, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %s: %s", file, what, strerror(-code));
    return code;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The new file's bytes reach the disk before it gets the real name. */
static int write_tmp(const char *tmp, const char *text, char *err, size_t errlen)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), rc;
    if (fd < 0)
        return fail(err, errlen, -errno, tmp, "open");
    rc = write_all(fd, text, strlen(text));
    if (rc < 0) {
        close(fd);
        return fail(err, errlen, rc, tmp, "write");
    }
    if (fsync(fd) < 0) {
        rc = -errno;
        close(fd);
        return fail(err, errlen, rc, tmp, "fsync");
    }
    if (close(fd) < 0)
        return fail(err, errlen, -errno, tmp, "close");
    return 0;
}

/* The rename itself is durable only once the directory is synced. */
static int sync_dir(const char *path, char *err, size_t errlen)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int fd, rc = 0;
    if (!slash)
        fg_strlcpy(dir, ".", sizeof dir);
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, -errno, dir, "open");
    if (fsync(fd) < 0)
        rc = fail(err, errlen, -errno, dir, "fsync");
    close(fd);
    return rc;
}

int bal_persist_save(const char *path, const struct bal_pstate *s, char *err, size_t errlen)
{
    char tmp[4096];
    char *text;
    int rc;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return fail(err, errlen, -ENAMETOOLONG, path, "save");
    text = bal_persist_encode(s);
    rc = write_tmp(tmp, text, err, errlen);
    free(text);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = fail(err, errlen, -errno, tmp, "rename");
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    return sync_dir(path, err, errlen);
}

int bal_persist_load(const char *path, struct bal_pstate *s, char *err, size_t errlen)
{
    char *text = NULL;
    size_t n = 0;
    int rc = fg_file_read(path, BAL_PERSIST_MAX_BYTES, &text, &n);
    memset(s, 0, sizeof *s);
    if (rc == -ENOENT) {
        if (err && errlen)
            snprintf(err, errlen, "%s: no state file", path);
        return rc;
    }
    if (rc == -EFBIG) {
        if (err && errlen)
            snprintf(err, errlen, "%s: larger than %u bytes", path, BAL_PERSIST_MAX_BYTES);
        return -EINVAL;
    }
    if (rc < 0)
        return fail(err, errlen, rc, path, "cannot read");
    rc = decode_named(path, text, n, s, err, errlen);
    free(text);
    return rc;
}

int bal_persist_quarantine(const char *path, char *err, size_t errlen)
{
    char bad[4096], what[4200];
    if ((size_t)snprintf(bad, sizeof bad, "%s.bad", path) >= sizeof bad)
        return fail(err, errlen, -ENAMETOOLONG, path, "quarantine");
    if (rename(path, bad) == 0)
        return 0;
    snprintf(what, sizeof what, "rename to %s", bad);
    return fail(err, errlen, -errno, path, what);
}
