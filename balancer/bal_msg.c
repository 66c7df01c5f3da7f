/* bal_msg: JSON in and out of the balancer (formats in bal_msg.h). cJSON does the text; the numbers
 * that are unix ms stay exact because they are below 2^53. */
#include "bal_msg.h"
#include "fg_mem.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *parse_obj(const void *payload, size_t len, size_t max, char *err, size_t errlen)
{
    if (len > max) {
        snprintf(err, errlen, "payload of %zu bytes exceeds %zu", len, max);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(payload, len, &end, false);
    if (!root) {
        snprintf(err, errlen, "payload is not JSON at byte %ld", end ? (long)(end - (const char *)payload) : 0L);
        return NULL;
    }
    return root;
}

static double num_or_nan(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : NAN;
}

int bal_msg_parse_balance(const void *payload, size_t len, int64_t *ts_ms, double *pv_w, double *grid_w,
                          double *load_w, char *err, size_t errlen)
{
    cJSON *root = parse_obj(payload, len, BAL_MSG_MAX_BYTES, err, errlen);
    if (!root)
        return -EINVAL;
    double ts = num_or_nan(root, "ts");
    *grid_w = num_or_nan(root, "grid_w");
    *pv_w = num_or_nan(root, "pv_w");
    *load_w = num_or_nan(root, "load_w");
    cJSON_Delete(root);
    if (!isfinite(ts) || ts <= 0 || ts > 9e15) {
        snprintf(err, errlen, "ts: expected unix ms");
        return -EINVAL;
    }
    if (!isfinite(*grid_w)) {
        snprintf(err, errlen, "grid_w: expected a number");
        return -EINVAL;
    }
    *ts_ms = (int64_t)ts;
    return 0;
}

static int forecast_point(const cJSON *p, int64_t *ts, double *w)
{
    if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != 2)
        return -1;
    const cJSON *a = cJSON_GetArrayItem(p, 0), *b = cJSON_GetArrayItem(p, 1);
    if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !isfinite(a->valuedouble) || !isfinite(b->valuedouble) ||
        a->valuedouble <= 0 || a->valuedouble > 9e15)
        return -1;
    *ts = (int64_t)a->valuedouble;
    *w = b->valuedouble;
    return 0;
}

long bal_msg_parse_forecast(const void *payload, size_t len, int64_t **ts, double **w, char *err, size_t errlen)
{
    cJSON *root = parse_obj(payload, len, BAL_MSG_FORECAST_MAX_BYTES, err, errlen);
    if (!root)
        return -EINVAL;
    int n = cJSON_IsArray(root) ? cJSON_GetArraySize(root) : -1;
    if (n < 0 || n > BAL_MSG_FORECAST_MAX_POINTS) {
        snprintf(err, errlen, n < 0 ? "expected an array of [ts_ms, watts]" : "more than %d points",
                 BAL_MSG_FORECAST_MAX_POINTS);
        cJSON_Delete(root);
        return -EINVAL;
    }
    *ts = fg_calloc(n ? (size_t)n : 1, sizeof **ts);
    *w = fg_calloc(n ? (size_t)n : 1, sizeof **w);
    long i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, root) {
        if (forecast_point(p, &(*ts)[i], &(*w)[i]) < 0) {
            snprintf(err, errlen, "[%ld]: expected [ts_ms, watts]", i);
            free(*ts);
            free(*w);
            *ts = NULL;
            *w = NULL;
            cJSON_Delete(root);
            return -EINVAL;
        }
        i++;
    }
    cJSON_Delete(root);
    return i;
}

int64_t bal_msg_ts(const void *payload, size_t len)
{
    if (len > BAL_MSG_MAX_BYTES)
        return 0;
    cJSON *root = cJSON_ParseWithLength(payload, len);
    double ts = root ? num_or_nan(root, "ts") : NAN;
    cJSON_Delete(root);
    return isfinite(ts) && ts > 0 && ts < 9e15 ? (int64_t)ts : 0;
}

bool bal_msg_online(const void *payload, size_t len)
{
    return len == 6 && memcmp(payload, "online", 6) == 0;
}

/* ---- output -------------------------------------------------------------------------------------- */

static char *print_free(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) { /* cJSON fails only when memory does: abort the way fg_mem does */
        fputs("fabgrid: out of memory\n", stderr);
        abort();
    }
    return s;
}

static void add_ms_or_null(cJSON *o, const char *key, int64_t ms)
{
    if (ms > 0)
        cJSON_AddNumberToObject(o, key, (double)ms);
    else
        cJSON_AddNullToObject(o, key);
}

/* Watts rounded to 0.1 W: a forecast is no more precise, and the plan message stays short. */
static double w1(double w)
{
    return round(w * 10) / 10;
}

static cJSON *plan_slot(const struct bal_ctl *c, const struct bal_plan *p, size_t s, const double *pv,
                        const double *load)
{
    cJSON *o = cJSON_CreateObject(), *ms = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "start", (double)(p->start_ms + (int64_t)s * p->slot_min * 60000));
    cJSON_AddNumberToObject(o, "pv_w", w1(pv[s]));
    cJSON_AddNumberToObject(o, "load_w", w1(load[s]));
    for (size_t m = 0; m < p->nmachines; m++) {
        double w = p->power_w[m * p->nslots + s];
        if (w > 0)
            cJSON_AddNumberToObject(ms, bal_ctl_machine(c, m)->id, w1(w));
    }
    cJSON_AddItemToObject(o, "machines", ms);
    return o;
}

char *bal_msg_plan(const struct bal_ctl *c, int64_t now_ms, enum bal_replan_why trigger, bool stale)
{
    const double *pv, *load;
    const struct bal_plan *p = bal_ctl_plan(c, &pv, &load, NULL);
    if (!p)
        return NULL;
    cJSON *o = cJSON_CreateObject(), *slots = cJSON_CreateArray();
    cJSON_AddNumberToObject(o, "ts", (double)now_ms);
    cJSON_AddNumberToObject(o, "slot_min", p->slot_min);
    cJSON_AddStringToObject(o, "trigger", bal_replan_name(trigger));
    cJSON_AddStringToObject(o, "status", stale ? "stale-data" : "ok");
    cJSON_AddNumberToObject(o, "import_wh", round(p->import_wh));
    cJSON_AddNumberToObject(o, "export_wh", round(p->export_wh));
    int64_t slot_ms = (int64_t)p->slot_min * 60000;
    for (size_t s = 0; s < p->nslots; s++)
        if (p->start_ms + (int64_t)(s + 1) * slot_ms > now_ms)
            cJSON_AddItemToArray(slots, plan_slot(c, p, s, pv, load));
    cJSON_AddItemToObject(o, "slots", slots);
    return print_free(o);
}

char *bal_msg_machine(const struct bal_ctl *c, size_t m, int64_t now_ms, const char *reason_override)
{
    const struct bal_cmach *cm = bal_ctl_mach_state(c, m);
    const struct bal_machine *mc = bal_ctl_machine(c, m);
    long j = bal_ctl_machine_job(c, m);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "ts", (double)now_ms);
    cJSON_AddBoolToObject(o, "on", cm->ms.on);
    cJSON_AddNumberToObject(o, "power_w", cm->ms.on ? cm->ms.power_w : 0);
    if (j >= 0 && cm->ms.on)
        cJSON_AddStringToObject(o, "job", bal_ctl_job(c, (size_t)j)->j.id);
    else
        cJSON_AddNullToObject(o, "job");
    const char *reason = reason_override ? reason_override
                       : mc->manual        ? "manual"
                                           : bal_reason_name(cm->reason);
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddStringToObject(o, "start", mc->manual ? "manual" : "auto");
    cJSON_AddBoolToObject(o, "faulted", cm->faulted);
    return print_free(o);
}

char *bal_msg_job(const struct bal_ctl *c, const struct bal_cjob *j, int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "ts", (double)now_ms);
    cJSON_AddStringToObject(o, "job", j->j.id);
    cJSON_AddStringToObject(o, "machine", bal_ctl_machine(c, j->j.machine)->id);
    cJSON_AddStringToObject(o, "state", bal_jstate_name(j->state));
    cJSON_AddNumberToObject(o, "earliest", (double)j->j.earliest_ms);
    cJSON_AddNumberToObject(o, "deadline", (double)j->j.deadline_ms);
    cJSON_AddNumberToObject(o, "energy_wh", round(j->j.energy_wh * 10) / 10);
    cJSON_AddNumberToObject(o, "done_wh", round(j->j.done_wh * 10) / 10);
    add_ms_or_null(o, "planned_start", j->planned_first_ms);
    add_ms_or_null(o, "planned_end", j->planned_end_ms);
    add_ms_or_null(o, "finished", j->state == BAL_JS_DONE || j->state == BAL_JS_MISSED ? j->done_ms : 0);
    cJSON_AddBoolToObject(o, "required", j->j.required);
    if (j->reason[0])
        cJSON_AddStringToObject(o, "reason", j->reason);
    return print_free(o);
}

char *bal_msg_rejected(const char *reason, int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "ts", (double)now_ms);
    cJSON_AddStringToObject(o, "state", "rejected");
    cJSON_AddStringToObject(o, "reason", reason);
    return print_free(o);
}

char *bal_msg_advice(const struct bal_ctl *c, size_t m, int64_t now_ms)
{
    static const char *const levels[] = { "red", "yellow", "green" };
    double sur;
    int64_t next;
    int level = bal_ctl_advice(c, m, now_ms, &sur, &next);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "ts", (double)now_ms);
    cJSON_AddStringToObject(o, "machine", bal_ctl_machine(c, m)->id);
    cJSON_AddStringToObject(o, "level", levels[level]);
    if (isfinite(sur))
        cJSON_AddNumberToObject(o, "surplus_w", round(sur));
    else
        cJSON_AddNullToObject(o, "surplus_w");
    add_ms_or_null(o, "next_green", next);
    return print_free(o);
}
