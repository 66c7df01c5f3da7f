/* bal_jobreq: turns a jobs/request message into a job for the planner, or into the one-line reason
 * it is rejected with. Key and type checks reuse the config reader (fg_cfg), so that a request is
 * judged with the same words as the config's jobs. */
#include "bal_jobreq.h"

#include "fg_cfg.h"
#include "fg_clock.h"
#include "fg_mem.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NAME "request" /* fg_cfg's file name; stripped from the reason */
#define MS_PER_MIN 60000LL

static const char *const request_keys[] = { "id", "machine", "duration_min", "energy_wh", "earliest", "deadline",
                                            "required", "surplus_only", "cancel", NULL };

struct req {
    struct fg_cfg *c;
    const struct bal_config *cfg;
    const cJSON *root;
    int64_t now_ms;
    struct bal_jobreq *out;
    bool has_earliest;         /* the request gave earliest (else it is now) */
};

static void set_reason(char *reason, size_t rlen, const char *text)
{
    if (reason && rlen)
        snprintf(reason, rlen, "%s", text);
}

/* unix ms as "2016-07-15T10:00:00Z" (whole seconds, UTC). */
static const char *utc_iso(int64_t t_ms, char *buf, size_t len)
{
    struct tm tm;
    time_t t = (time_t)(t_ms / 1000 - (t_ms % 1000 < 0));
    if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, len, "%lld ms", (long long)t_ms);
    return buf;
}

/* The first message of c without the "request: " in front, as the reason. */
static int reject(struct fg_cfg *c, char *reason, size_t rlen)
{
    const char *all = fg_cfg_errors(c), *msg = all;
    size_t n;
    if (strncmp(msg, NAME ": ", strlen(NAME) + 2) == 0)
        msg += strlen(NAME) + 2;
    n = strcspn(msg, "\n");
    if (reason && rlen) {
        snprintf(reason, rlen, "%.*s", (int)n, msg);
        for (char *p = reason; *p; p++) /* a guard: the reason stays one printable line */
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    }
    return -EINVAL;
}

/* ---- the parts of a job request ---- */

static int req_machine(struct req *R)
{
    const char *id;
    if (fg_cfg_str(R->c, R->root, NULL, "machine", true, FG_CFG_ID_MAX, NULL, &id) != 0)
        return -1;
    for (size_t i = 0; i < R->cfg->nmachines; i++)
        if (strcmp(R->cfg->machines[i].id, id) == 0) {
            R->out->job.machine = i;
            return 0;
        }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(R->root, "machine");
    char got[64];
    fg_cfg_errorf(R->c, v, "machine", "no machine %s", fg_cfg_got_value(v, got, sizeof got));
    return -1;
}

/* Exactly one of duration_min and energy_wh; *duration_min is 0 for an energy. */
static int req_amount(struct req *R, long *duration_min)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(R->root, "duration_min");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(R->root, "energy_wh");
    bool has_d = d && !cJSON_IsNull(d), has_e = e && !cJSON_IsNull(e);
    *duration_min = 0;
    if (has_d && has_e) {
        fg_cfg_errorf(R->c, e, "energy_wh", "not with duration_min (give one of them)");
        return -1;
    }
    if (has_e)
        return fg_cfg_num(R->c, R->root, NULL, "energy_wh", true, 1, 1e7, 0, &R->out->job.energy_wh) < 0 ? -1 : 0;
    if (!has_d) {
        fg_cfg_errorf(R->c, fg_cfg_last_leaf(R->root), "duration_min", "missing (required, or energy_wh)");
        return -1;
    }
    return fg_cfg_int(R->c, R->root, NULL, "duration_min", true, 1, 10080, 0, duration_min) < 0 ? -1 : 0;
}

/* An ISO 8601 time at key: 0 with *out_ms, 1 if absent and optional, -1 after recording an error. */
static int req_time(struct req *R, const char *key, bool required, int64_t *out_ms)
{
    char got[64];
    const char *s;
    int rc = fg_cfg_str(R->c, R->root, NULL, key, required, 64, NULL, &s);
    if (rc != 0)
        return rc;
    if (fg_parse_iso8601_ms(s, out_ms) == 0)
        return 0;
    fg_cfg_errorf(R->c, cJSON_GetObjectItemCaseSensitive(R->root, key), key,
                  "must be a date and time with offset such as \"2026-12-01T18:00:00+01:00\", got %s",
                  fg_cfg_got_value(cJSON_GetObjectItemCaseSensitive(R->root, key), got, sizeof got));
    return -1;
}

static int req_flags(struct req *R)
{
    struct bal_job *j = &R->out->job;
    if (fg_cfg_bool(R->c, R->root, NULL, "surplus_only", false, false, &j->surplus_only) < 0)
        return -1;
    if (fg_cfg_bool(R->c, R->root, NULL, "required", false, !j->surplus_only, &j->required) < 0)
        return -1;
    if (!(j->surplus_only && j->required))
        return 0;
    fg_cfg_errorf(R->c, cJSON_GetObjectItemCaseSensitive(R->root, "required"), "required",
                  "must be false (or absent) with surplus_only: true, got true");
    return -1;
}

/* The deadline against now, the earliest time and the horizon a request may reach. */
static int req_window(struct req *R)
{
    char now[40], e[40], got[64];
    const struct bal_job *j = &R->out->job;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(R->root, "deadline");
    fg_cfg_got_value(d, got, sizeof got);
    if (j->deadline_ms <= R->now_ms)
        fg_cfg_errorf(R->c, d, "deadline", "must be in the future (now %s), got %s",
                      utc_iso(R->now_ms, now, sizeof now), got);
    else if (R->has_earliest && j->deadline_ms <= j->earliest_ms)
        fg_cfg_errorf(R->c, d, "deadline", "must be after earliest (%s), got %s",
                      utc_iso(j->earliest_ms, e, sizeof e), got);
    else if (j->deadline_ms - R->now_ms > BAL_JOBREQ_AHEAD_MAX_MS)
        fg_cfg_errorf(R->c, d, "deadline", "must be at most %lld days ahead, got %s",
                      BAL_JOBREQ_AHEAD_MAX_MS / (24 * 3600 * 1000LL), got);
    else
        return 0;
    return -1;
}

/* The work must fit between max(earliest, now) and the deadline at the machine's (maximum) power. */
static int req_fits(struct req *R, long duration_min)
{
    struct bal_job *j = &R->out->job;
    double power_w = R->cfg->machines[j->machine].power_w;
    bool past = !R->has_earliest || j->earliest_ms < R->now_ms;
    int64_t span_ms = j->deadline_ms - (past ? R->now_ms : j->earliest_ms);
    double need_min = duration_min ? (double)duration_min : ceil(j->energy_wh * 60 / power_w);
    if (duration_min)
        j->energy_wh = (double)duration_min * power_w / 60;
    if (need_min * MS_PER_MIN <= (double)span_ms)
        return 0;
    fg_cfg_errorf(R->c, NULL, NULL, "needs %.0f min at %.15g W, only %lld min between %s and deadline", need_min,
                  power_w, (long long)(span_ms / MS_PER_MIN), past ? "now" : "earliest");
    return -1;
}

static int parse_job(struct req *R)
{
    struct bal_job *j = &R->out->job;
    long duration_min = 0;
    int bad = 0, e, d;
    bad += fg_cfg_known_keys(R->c, R->root, NULL, request_keys) > 0;
    bad += fg_cfg_id(R->c, R->root, NULL, "id", false, NULL, R->out->id, sizeof R->out->id) < 0;
    bad += req_machine(R) < 0;
    bad += req_amount(R, &duration_min) < 0;
    e = req_time(R, "earliest", false, &j->earliest_ms);
    d = req_time(R, "deadline", true, &j->deadline_ms);
    bad += e < 0 || d < 0;
    bad += req_flags(R) < 0;
    R->has_earliest = e == 0;
    if (e == 1)
        j->earliest_ms = R->now_ms;
    if (bad || req_window(R) < 0 || req_fits(R, duration_min) < 0)
        return -1;
    fg_strlcpy(j->id, R->out->id, sizeof j->id);
    j->cfg = BAL_JOBREQ_NO_CFG;
    return 0;
}

/* {"cancel":"JOB"} and nothing else. */
static int parse_cancel(struct req *R)
{
    int bad = 0;
    R->out->cancel = true;
    for (const cJSON *it = R->root->child; it; it = it->next)
        if (strcmp(it->string, "cancel") != 0) {
            fg_cfg_errorf(R->c, it, it->string, "not with cancel");
            bad++;
        }
    bad += fg_cfg_id(R->c, R->root, NULL, "cancel", true, NULL, R->out->id, sizeof R->out->id) < 0;
    return bad ? -1 : 0;
}

/* cJSON on exactly len bytes (blanks after the value allowed); *bad_at is where it failed. */
static cJSON *parse_json(const char *p, size_t len, size_t *bad_at)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(p, len, &end, false);
    size_t i = end ? (size_t)(end - p) : 0;
    if (!root) {
        *bad_at = i > len ? len : i;
        return NULL;
    }
    while (i < len && isspace((unsigned char)p[i]))
        i++;
    if (i < len) {
        *bad_at = i;
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* Keys end up unquoted in the reason: one with a control character (JSON allows "\n" escaped)
 * would break the reason's single line. */
static int printable_keys(struct req *R)
{
    for (const cJSON *it = R->root->child; it; it = it->next)
        for (const char *k = it->string; *k; k++)
            if ((unsigned char)*k < 0x20 || *k == 0x7f) {
                fg_cfg_errorf(R->c, it, NULL, "keys must be printable, got one with byte 0x%02x", (unsigned char)*k);
                return -1;
            }
    return 0;
}

static int parse_root(struct req *R)
{
    const cJSON *cancel = cJSON_GetObjectItemCaseSensitive(R->root, "cancel");
    const cJSON *id = cancel && !cJSON_IsNull(cancel) ? cancel : cJSON_GetObjectItemCaseSensitive(R->root, "id");
    if (!cJSON_IsObject(R->root)) {
        fg_cfg_errorf(R->c, R->root, NULL, "must be a JSON object, got %s", fg_cfg_got_kind(R->root));
        return -1;
    }
    if (cJSON_IsString(id) && fg_cfg_is_id(id->valuestring)) /* to answer on, whatever else is wrong */
        fg_strlcpy(R->out->id, id->valuestring, sizeof R->out->id);
    if (printable_keys(R) < 0)
        return -1;
    return cancel && !cJSON_IsNull(cancel) ? parse_cancel(R) : parse_job(R);
}

int bal_jobreq_parse(const struct bal_config *c, const void *payload, size_t len, int64_t now_ms,
                     struct bal_jobreq *out, char *reason, size_t rlen)
{
    char msg[64];
    size_t bad_at = 0;
    struct req R = { .cfg = c, .now_ms = now_ms, .out = out };
    int rc;
    memset(out, 0, sizeof *out);
    set_reason(reason, rlen, "");
    if (len > BAL_JOBREQ_MAX_BYTES) {
        snprintf(msg, sizeof msg, "payload of %zu bytes exceeds %d", len, BAL_JOBREQ_MAX_BYTES);
        set_reason(reason, rlen, msg);
        return -EINVAL;
    }
    cJSON *root = parse_json(payload ? payload : "", payload ? len : 0, &bad_at);
    if (!root) {
        snprintf(msg, sizeof msg, "not JSON at byte %zu", bad_at);
        set_reason(reason, rlen, msg);
        return -EINVAL;
    }
    R.c = fg_cfg_new(NAME);
    R.root = root;
    rc = parse_root(&R);
    if (rc < 0 || fg_cfg_nerrors(R.c) > 0) {
        fg_cfg_sort(R.c, root);
        rc = reject(R.c, reason, rlen);
        memset(&out->job, 0, sizeof out->job);
    }
    fg_cfg_free(R.c);
    cJSON_Delete(root);
    return rc;
}
