/* bal_act: commands and feedback of the actuator types (Modbus through the collector, Shelly Gen2 RPC,
 * Tasmota, plain MQTT templates) and the tracker that confirms a command by the device's own report.
 * Feedback comes from devices and brokers we do not control: every input is bounded and checked. */
#include "bal_act.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define POWER_MAX_W 1e9
#define SHELLY_SET_ON "{\"id\":1,\"src\":\"fabgrid\",\"method\":\"Switch.Set\",\"params\":{\"id\":0,\"on\":true}}"
#define SHELLY_SET_OFF "{\"id\":1,\"src\":\"fabgrid\",\"method\":\"Switch.Set\",\"params\":{\"id\":0,\"on\":false}}"
#define POWER_TOKEN "{power_w}"

static int put(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* snprintf that tells truncation: returns the length or -ENOSPC. */
static int put(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (!buf || len == 0)
        return -ENOSPC;
    va_start(ap, fmt);
    n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

/* power_w as whole watts; -EINVAL if it is not a usable power. */
static int whole_watts(double power_w, long long *out)
{
    if (!isfinite(power_w) || power_w < 0 || power_w > POWER_MAX_W)
        return -EINVAL;
    *out = llround(power_w);
    return 0;
}

/* Copies tmpl into buf with every "{power_w}" replaced by the power in whole W. */
static int expand_template(const char *tmpl, double power_w, char *buf, size_t len)
{
    char num[32];
    long long w;
    size_t o = 0;
    if (strstr(tmpl, POWER_TOKEN)) {
        if (whole_watts(power_w, &w) < 0)
            return -EINVAL;
        snprintf(num, sizeof num, "%lld", w);
    }
    while (*tmpl) {
        const char *piece = tmpl;
        size_t n = 1;
        if (strncmp(tmpl, POWER_TOKEN, strlen(POWER_TOKEN)) == 0) {
            piece = num;
            n = strlen(num);
        }
        if (o + n >= len)
            return -ENOSPC;
        memcpy(buf + o, piece, n);
        o += n;
        tmpl += piece == num ? strlen(POWER_TOKEN) : 1;
    }
    if (len == 0)
        return -ENOSPC;
    buf[o] = '\0';
    return 0;
}

static int modbus_payload(const struct bal_actuator *a, bool on, double power_w, char *payload, size_t plen)
{
    long long w;
    if (!on || !a->power_setpoint)
        return put(payload, plen, "%s", on ? "1" : "0") < 0 ? -ENOSPC : 0;
    if (whole_watts(power_w, &w) < 0 || w <= 0)
        return -EINVAL; /* a setpoint of 0 W would switch the machine off */
    return put(payload, plen, "%lld", w) < 0 ? -ENOSPC : 0;
}

int bal_act_command(const struct bal_actuator *a, const char *prefix, const char *site, bool on, double power_w,
                    char *topic, size_t tlen, char *payload, size_t plen)
{
    int rc;
    if (!a)
        return -EINVAL;
    switch (a->type) {
    case BAL_ACT_MODBUS:
        rc = modbus_payload(a, on, power_w, payload, plen);
        if (rc < 0)
            return rc;
        return put(topic, tlen, "%s/%s/device/%s/set/%s", prefix, site, a->device, a->point) < 0 ? -ENOSPC : 0;
    case BAL_ACT_SHELLY:
        if (put(payload, plen, "%s", on ? SHELLY_SET_ON : SHELLY_SET_OFF) < 0)
            return -ENOSPC;
        return put(topic, tlen, "%s/rpc", a->topic) < 0 ? -ENOSPC : 0;
    case BAL_ACT_TASMOTA:
        if (put(payload, plen, "%s", on ? "ON" : "OFF") < 0)
            return -ENOSPC;
        return put(topic, tlen, "cmnd/%s/POWER", a->topic) < 0 ? -ENOSPC : 0;
    case BAL_ACT_MQTT:
        rc = expand_template(on ? a->payload_on : a->payload_off, power_w, payload, plen);
        if (rc < 0)
            return rc;
        return put(topic, tlen, "%s", a->topic) < 0 ? -ENOSPC : 0;
    case BAL_ACT_NONE:
    default:
        return -EINVAL;
    }
}

int bal_act_feedback_topic(const struct bal_actuator *a, const char *meter, const char *prefix, const char *site,
                           char *buf, size_t len)
{
    int n = 0;
    if (meter && *meter)
        n = put(buf, len, "%s/%s/device/%s/state", prefix, site, meter);
    else if (a && a->type == BAL_ACT_SHELLY)
        n = put(buf, len, "%s/status/switch:0", a->topic);
    else if (a && a->type == BAL_ACT_TASMOTA)
        n = put(buf, len, "stat/%s/POWER", a->topic);
    else if (a && a->type == BAL_ACT_MODBUS)
        n = put(buf, len, "%s/%s/device/%s/state", prefix, site, a->device);
    else if (put(buf, len, "%s", "") < 0)
        return -ENOSPC;
    return n;
}

/* ---- feedback ---- */

/* A JSON document of exactly len bytes (blanks around it allowed), or NULL. */
static cJSON *parse_json(const char *p, size_t len)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(p, len, &end, false);
    if (!root)
        return NULL;
    for (size_t i = (size_t)(end - p); i < len; i++)
        if (!isspace((unsigned char)p[i])) {
            cJSON_Delete(root);
            return NULL;
        }
    return root;
}

/* The value of key in a JSON object payload: 1 with *v set (root to be freed by the caller), 0 if the
 * key is absent, -EINVAL if the payload is no JSON object. */
static int object_member(const char *p, size_t len, const char *key, cJSON **root, const cJSON **v)
{
    *root = parse_json(p, len);
    if (!cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return -EINVAL;
    }
    *v = cJSON_GetObjectItemCaseSensitive(*root, key);
    return *v && !cJSON_IsNull(*v) ? 1 : 0;
}

static bool finite_number(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble);
}

static int fb_meter(const char *p, size_t len, double on_above_w, bool *on, double *power_w)
{
    cJSON *root;
    const cJSON *v;
    int rc = object_member(p, len, "power_w", &root, &v);
    if (rc == 1 && !finite_number(v))
        rc = -EINVAL;
    if (rc == 1) {
        *power_w = v->valuedouble;
        *on = v->valuedouble > on_above_w;
    }
    cJSON_Delete(root);
    return rc;
}

static int fb_shelly(const char *p, size_t len, bool *on, double *power_w)
{
    cJSON *root;
    const cJSON *v;
    int rc = object_member(p, len, "output", &root, &v);
    if (rc == 1 && !cJSON_IsBool(v))
        rc = -EINVAL;
    if (rc == 1) {
        const cJSON *ap = cJSON_GetObjectItemCaseSensitive(root, "apower");
        *on = cJSON_IsTrue(v);
        if (finite_number(ap))
            *power_w = ap->valuedouble;
        else if (ap && !cJSON_IsNull(ap))
            rc = -EINVAL;
    }
    cJSON_Delete(root);
    return rc;
}

/* "ON"/"OFF" in any case; 1 with *on, -EINVAL otherwise. */
static int onoff_word(const char *s, size_t n, bool *on)
{
    if (n == 2 && strncasecmp(s, "on", 2) == 0)
        *on = true;
    else if (n == 3 && strncasecmp(s, "off", 3) == 0)
        *on = false;
    else
        return -EINVAL;
    return 1;
}

static int fb_tasmota(const char *p, size_t len, bool *on)
{
    cJSON *root;
    const cJSON *v;
    int rc;
    while (len && isspace((unsigned char)*p))
        p++, len--;
    while (len && isspace((unsigned char)p[len - 1]))
        len--;
    if (len == 0 || *p != '{')
        return len == 0 ? 0 : onoff_word(p, len, on);
    rc = object_member(p, len, "POWER", &root, &v);
    if (rc == 1)
        rc = cJSON_IsString(v) ? onoff_word(v->valuestring, strlen(v->valuestring), on) : -EINVAL;
    cJSON_Delete(root);
    return rc;
}

static int fb_modbus(const struct bal_actuator *a, const char *p, size_t len, bool *on, double *power_w)
{
    cJSON *root;
    const cJSON *v;
    int rc = object_member(p, len, a->point, &root, &v);
    if (rc == 1 && cJSON_IsBool(v)) {
        *on = cJSON_IsTrue(v);
    } else if (rc == 1 && finite_number(v)) {
        *on = v->valuedouble != 0;
        if (a->power_setpoint)
            *power_w = v->valuedouble;
    } else if (rc == 1) {
        rc = -EINVAL;
    }
    cJSON_Delete(root);
    return rc;
}

int bal_act_parse_feedback(const struct bal_actuator *a, const char *meter, double on_above_w, const void *payload,
                           size_t len, bool *on, double *power_w)
{
    bool on_v = false;
    double p_v = NAN;
    int rc = 0;
    *on = false;
    *power_w = NAN;
    if (len > BAL_ACT_FEEDBACK_MAX)
        return -EINVAL;
    if (len == 0 || !payload)
        return 0;
    if (meter && *meter)
        rc = fb_meter(payload, len, on_above_w, &on_v, &p_v);
    else if (a && a->type == BAL_ACT_SHELLY)
        rc = fb_shelly(payload, len, &on_v, &p_v);
    else if (a && a->type == BAL_ACT_TASMOTA)
        rc = fb_tasmota(payload, len, &on_v);
    else if (a && a->type == BAL_ACT_MODBUS)
        rc = fb_modbus(a, payload, len, &on_v, &p_v);
    if (rc == 1) {
        *on = on_v;
        *power_w = p_v;
    }
    return rc;
}

/* ---- confirmation ---- */

void bal_confirm_sent(struct bal_confirm *c, bool on, int64_t now_ms)
{
    if (!c->pending || c->want_on != on)
        c->tries = 0;
    c->tries++;
    c->pending = true;
    c->want_on = on;
    c->sent_ms = now_ms;
    c->confirmed = false;
    c->ok_due = c->dev_known && c->dev_on == on;
}

bool bal_confirm_feedback(struct bal_confirm *c, bool on)
{
    bool changed = !c->dev_known || c->dev_on != on;
    c->dev_known = true;
    c->dev_on = on;
    if (c->pending || c->faulted) {
        c->ok_due = on == c->want_on; /* the latest report counts */
        return false;
    }
    return c->confirmed && on != c->want_on && changed;
}

enum bal_confirm_ev bal_confirm_tick(struct bal_confirm *c, int64_t now_ms, unsigned timeout_s, unsigned retries)
{
    if (c->ok_due) {
        c->ok_due = false;
        c->pending = false;
        c->faulted = false;
        c->confirmed = true;
        return BAL_CONF_OK;
    }
    if (!c->pending)
        return BAL_CONF_IDLE;
    if (now_ms - c->sent_ms < (int64_t)timeout_s * 1000)
        return BAL_CONF_WAIT;
    if (c->tries <= retries)
        return BAL_CONF_RETRY;
    c->pending = false;
    c->faulted = true;
    return BAL_CONF_FAULT;
}
