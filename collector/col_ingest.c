/* col_ingest: pure parsing of MQTT messages for the collector: readings of devices that report over MQTT
 * (presets and generic JSON pointers) and fabgrid's own balancer topics as line protocol. Hostile input
 * is expected: sizes and nesting are bounded before cJSON sees a byte, and nothing missing becomes 0. */
#include "col_ingest.h"

#include "fg_lp.h"
#include "fg_mem.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POINTER_TOKEN_MAX 128 /* a configured pointer has fewer than 128 bytes, so no token is longer */
#define EXCERPT_MAX 32        /* bytes of untrusted text quoted in an error message */
#define TS_MAX_MS 9007199254740992.0 /* 2^53: beyond it a JSON number no longer holds every ms */
#define SITE_MAX 64
#define TEXT_MAX 256  /* a reason (or a job id in a machine state) longer than this is left out */
#define JOB_ID_MAX 96 /* job ids are "kiln-daily@2026-12-01" or a request's name: tag values, not config ids */

/* ---- errors ---- */

static void vput(char *err, size_t errlen, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
static void vput(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
}

static int fail(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Writes the reason and returns -code, so that callers can `return fail(...)`. */
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vput(err, errlen, fmt, ap);
    va_end(ap);
    return -code;
}

/* Untrusted bytes for an error message: printable ASCII kept, the rest '?', long text cut with "...". */
static const char *excerpt(const char *s, size_t n, char *buf, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < len; i++)
        buf[o++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
    if (o + 4 >= len && o < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static const char *json_kind(const cJSON *v)
{
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsBool(v))
        return "a bool";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsArray(v))
        return "an array";
    return cJSON_IsObject(v) ? "an object" : "an unknown value";
}

/* ---- topics ---- */

/* MQTT filter matching: '+' is one level (possibly empty), a trailing '#' the rest including the parent
 * level, and a topic starting with '$' is not matched by a leading wildcard (MQTT 3.1.1 section 4.7.2). */
static bool filter_matches(const char *f, const char *t)
{
    if (t[0] == '$' && (f[0] == '+' || f[0] == '#'))
        return false;
    for (;;) {
        if (strcmp(f, "#") == 0)
            return true;
        size_t fl = strcspn(f, "/"), tl = strcspn(t, "/");
        if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0))
            return false;
        f += fl;
        t += tl;
        if (!*f || !*t)
            return !*f ? !*t : strcmp(f, "/#") == 0;
        f++;
        t++;
    }
}

int col_ingest_topic(const struct col_mqtt_device_cfg *d, char *buf, size_t len)
{
    int n;
    switch (d->preset) {
    case COL_PRESET_SHELLY_GEN2: n = snprintf(buf, len, "%s/status/switch:0", d->topic); break;
    case COL_PRESET_TASMOTA: n = snprintf(buf, len, "tele/%s/SENSOR", d->topic); break;
    case COL_PRESET_OPENDTU: n = snprintf(buf, len, "%s/%s/0/+", d->topic, d->serial); break;
    default: n = snprintf(buf, len, "%s", d->topic); break;
    }
    return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

bool col_ingest_matches(const struct col_mqtt_device_cfg *d, const char *topic)
{
    char filter[sizeof d->topic + sizeof d->serial + 32];
    return topic && col_ingest_topic(d, filter, sizeof filter) > 0 && filter_matches(filter, topic);
}

/* ---- JSON ---- */

/* Counts brackets outside strings, so that a 100-deep payload is refused before cJSON recurses into it. */
static bool too_deep(const char *p, size_t n)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        if (in_string) {
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                in_string = false;
        } else if (p[i] == '"') {
            in_string = true;
        } else if (p[i] == '{' || p[i] == '[') {
            if (++depth > COL_INGEST_MAX_DEPTH)
                return true;
        } else if ((p[i] == '}' || p[i] == ']') && depth > 0) {
            depth--;
        }
    }
    return false;
}

/* cJSON 1.7.15 detects trailing garbage only by finding a NUL within the given length, so it gets a
 * terminated copy and the length including the NUL; an embedded NUL would end the document early and is
 * refused first. The byte offset of a syntax error comes from return_parse_end (thread-safe, unlike
 * cJSON_GetErrorPtr). */
static int parse_json(const void *payload, size_t len, size_t max, cJSON **root, char *err, size_t errlen)
{
    const char *p = payload;
    if (len > max)
        return fail(err, errlen, COL_INGEST_ETOOBIG, "payload of %zu bytes exceeds %zu", len, max);
    if (len == 0)
        return fail(err, errlen, COL_INGEST_ENOTJSON, "payload is empty");
    if (too_deep(p, len))
        return fail(err, errlen, COL_INGEST_EDEPTH, "nesting deeper than %d", COL_INGEST_MAX_DEPTH);
    const char *nul = memchr(p, '\0', len);
    if (nul)
        return fail(err, errlen, COL_INGEST_ENOTJSON, "payload is not JSON at byte %zu", (size_t)(nul - p));
    char *copy = fg_malloc(len + 1);
    memcpy(copy, p, len);
    copy[len] = '\0';
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
    size_t at = end && end >= copy ? (size_t)(end - copy) : 0;
    free(copy);
    if (!*root)
        return fail(err, errlen, COL_INGEST_ENOTJSON, "payload is not JSON at byte %zu", at);
    return 0;
}

/* One RFC 6901 reference token, "~1" -> '/', "~0" -> '~'. Returns -1 for a bad escape or a long token. */
static int unescape_token(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '~') {
            if (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1'))
                return -1;
            c = s[++i] == '0' ? '~' : '/';
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* An array index token: "0" or digits without a leading zero ("-", past the end, never exists here). */
static const cJSON *array_step(const cJSON *arr, const char *tok)
{
    if (!tok[0] || (tok[0] == '0' && tok[1]))
        return NULL;
    for (const char *c = tok; *c; c++)
        if (!isdigit((unsigned char)*c))
            return NULL;
    errno = 0;
    char *end;
    long i = strtol(tok, &end, 10);
    if (errno || *end || i > INT_MAX)
        return NULL;
    return cJSON_GetArrayItem(arr, (int)i);
}

/* RFC 6901: "" is the whole document, each "/token" an object member or an array index.
 * NULL when the value is absent or the pointer is malformed. */
static const cJSON *json_pointer(const cJSON *root, const char *ptr)
{
    const cJSON *cur = root;
    if (*ptr && *ptr != '/')
        return NULL;
    while (cur && *ptr == '/') {
        char tok[POINTER_TOKEN_MAX];
        size_t n = strcspn(++ptr, "/");
        if (unescape_token(ptr, n, tok, sizeof tok) < 0)
            return NULL;
        ptr += n;
        if (cJSON_IsObject(cur))
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
        else
            cur = cJSON_IsArray(cur) ? array_step(cur, tok) : NULL;
    }
    return cur;
}

/* ---- device messages ---- */

/* Unit conversion by a decimal factor: rounded to 15 significant digits (the precision of a double), so
 * that 3.705 kWh becomes 3705 Wh and not 3705.0000000000005. */
static double scaled(double v, double scale)
{
    char buf[40];
    if (scale == 1.0)
        return v;
    double x = v * scale;
    if (!isfinite(x))
        return x;
    snprintf(buf, sizeof buf, "%.15g", x);
    return strtod(buf, NULL);
}

struct mapping {
    const char *name;    /* field with unit */
    const char *pointer; /* RFC 6901 into the payload */
    double scale;
    bool boolean;        /* a JSON bool written as 1/0 */
    const char *label;   /* how errors name it; NULL: "name (pointer)" */
};

/* Shelly Plus/Pro Gen2 Switch status (shelly-api-docs, Switch component): energy is in Wh already. */
static const struct mapping shelly_map[] = {
    { "power_w", "/apower", 1, false, "apower" },
    { "energy_wh", "/aenergy/total", 1, false, "aenergy.total" },
    { "voltage_v", "/voltage", 1, false, "voltage" },
    { "current_a", "/current", 1, false, "current" },
    { "frequency_hz", "/freq", 1, false, "freq" },
    { "temperature_c", "/temperature/tC", 1, false, "temperature.tC" },
    { "on", "/output", 1, true, "output" },
};

/* Tasmota tele/<topic>/SENSOR with an energy monitor: Total and Today are in kWh. */
static const struct mapping tasmota_map[] = {
    { "power_w", "/ENERGY/Power", 1, false, "ENERGY.Power" },
    { "energy_wh", "/ENERGY/Total", 1000, false, "ENERGY.Total" },
    { "voltage_v", "/ENERGY/Voltage", 1, false, "ENERGY.Voltage" },
    { "current_a", "/ENERGY/Current", 1, false, "ENERGY.Current" },
    { "power_factor", "/ENERGY/Factor", 1, false, "ENERGY.Factor" },
    { "energy_today_wh", "/ENERGY/Today", 1000, false, "ENERGY.Today" },
};

/* OpenDTU <topic>/<serial>/0/<leaf> (docs/MQTT_Topics.md, AC channel): yieldtotal kWh, yieldday Wh. */
static const struct mapping opendtu_map[] = {
    { "power_w", "power", 1, false, NULL },
    { "energy_wh", "yieldtotal", 1000, false, NULL },
    { "energy_today_wh", "yieldday", 1, false, NULL },
    { "voltage_v", "voltage", 1, false, NULL },
    { "current_a", "current", 1, false, NULL },
    { "frequency_hz", "frequency", 1, false, NULL },
    { "temperature_c", "temperature", 1, false, NULL },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct collect {
    struct col_field *out;
    size_t cap, n;
    char *err;
    size_t errlen;
    bool warned; /* err holds the first value left out for its type */
};

static void warn(struct collect *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct collect *c, const char *fmt, ...)
{
    va_list ap;
    if (c->warned)
        return;
    c->warned = true;
    va_start(ap, fmt);
    vput(c->err, c->errlen, fmt, ap);
    va_end(ap);
}

static void add_field(struct collect *c, const char *name, double v)
{
    if (c->n >= c->cap)
        return;
    struct col_field *f = &c->out[c->n++];
    f->name = name;
    f->v.kind = COL_VAL_NUMBER;
    f->v.number = v;
    f->v.str[0] = '\0';
}

static void take(struct collect *c, const cJSON *root, const struct mapping *m)
{
    char label[sizeof((struct col_mqtt_field *)0)->field + sizeof((struct col_mqtt_field *)0)->pointer + 4];
    const cJSON *v = json_pointer(root, m->pointer);
    if (!v)
        return; /* absent: nothing to say, nothing written */
    if (m->label)
        fg_strlcpy(label, m->label, sizeof label);
    else
        snprintf(label, sizeof label, "%s (%s)", m->name, m->pointer);
    if (m->boolean ? !cJSON_IsBool(v) : !cJSON_IsNumber(v)) {
        warn(c, "%s: expected %s, got %s", label, m->boolean ? "a bool" : "a number", json_kind(v));
        return;
    }
    double x = m->boolean ? (cJSON_IsTrue(v) ? 1.0 : 0.0) : scaled(v->valuedouble, m->scale);
    if (!isfinite(x)) {
        warn(c, "%s: expected a finite number", label);
        return;
    }
    add_field(c, m->name, x);
}

static int collect_done(struct collect *c)
{
    if (c->n > 0)
        return (int)c->n;
    if (c->warned)
        return -COL_INGEST_ETYPE;
    return fail(c->err, c->errlen, COL_INGEST_ENOFIELD, "no usable field in payload");
}

static int map_json(const struct col_mqtt_device_cfg *d, const cJSON *root, struct collect *c)
{
    const struct mapping *map = d->preset == COL_PRESET_SHELLY_GEN2 ? shelly_map : tasmota_map;
    size_t n = d->preset == COL_PRESET_SHELLY_GEN2 ? NELEM(shelly_map) : NELEM(tasmota_map);
    if (d->preset == COL_PRESET_GENERIC) {
        for (size_t i = 0; i < d->nfields && i < COL_MQTT_FIELDS_MAX; i++) {
            struct mapping m = { d->fields[i].field, d->fields[i].pointer, d->fields[i].scale, false, NULL };
            take(c, root, &m);
        }
        return collect_done(c);
    }
    if (!cJSON_IsObject(root))
        return fail(c->err, c->errlen, COL_INGEST_ETYPE, "payload: expected an object, got %s", json_kind(root));
    for (size_t i = 0; i < n; i++)
        take(c, root, &map[i]);
    return collect_done(c);
}

/* A plain-number payload: optional surrounding whitespace around -?digits[.digits][e[+-]digits], the JSON
 * number grammar, so "nan", "inf", "0x10" and "" are refused (strtod would take them). */
static int plain_number(const char *p, size_t n, double *out)
{
    char buf[64];
    while (n && isspace((unsigned char)*p))
        p++, n--;
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    const char *s = buf + (buf[0] == '-');
    if (!isdigit((unsigned char)*s))
        return -1;
    s += strspn(s, "0123456789");
    if (*s == '.' && isdigit((unsigned char)s[1]))
        s += 1 + strspn(s + 1, "0123456789");
    if ((*s == 'e' || *s == 'E')) {
        s += 1 + (s[1] == '+' || s[1] == '-');
        if (!isdigit((unsigned char)*s))
            return -1;
        s += strspn(s, "0123456789");
    }
    if (*s)
        return -1;
    *out = strtod(buf, NULL);
    return 0;
}

static const struct mapping *opendtu_leaf(const char *topic)
{
    const char *slash = strrchr(topic, '/');
    const char *leaf = slash ? slash + 1 : topic;
    for (size_t i = 0; i < NELEM(opendtu_map); i++)
        if (strcmp(leaf, opendtu_map[i].pointer) == 0)
            return &opendtu_map[i];
    return NULL;
}

static int map_opendtu(const struct mapping *m, const void *payload, size_t len, struct collect *c)
{
    char ex[EXCERPT_MAX];
    double v;
    if (plain_number(payload, len, &v) < 0)
        return fail(c->err, c->errlen, COL_INGEST_ETYPE, "%s: expected a number, got \"%s\"", m->pointer,
                    excerpt(payload, len, ex, sizeof ex));
    v = scaled(v, m->scale);
    if (!isfinite(v))
        return fail(c->err, c->errlen, COL_INGEST_ETYPE, "%s: expected a finite number", m->pointer);
    add_field(c, m->name, v);
    return collect_done(c);
}

int col_ingest_device(const struct col_mqtt_device_cfg *d, const char *topic, const void *payload, size_t len,
                      struct col_field *out, size_t cap, char *err, size_t errlen)
{
    struct collect c = { out, cap, 0, err, errlen, false };
    char ex[EXCERPT_MAX * 2];
    const struct mapping *leaf = NULL;
    cJSON *root = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (len > COL_INGEST_MAX_BYTES)
        return fail(err, errlen, COL_INGEST_ETOOBIG, "payload of %zu bytes exceeds %u", len, COL_INGEST_MAX_BYTES);
    if (!col_ingest_matches(d, topic))
        return fail(err, errlen, COL_INGEST_ETOPIC, "topic \"%s\" is not device %s's",
                    topic ? excerpt(topic, strlen(topic), ex, sizeof ex) : "", d->id);
    if (d->preset == COL_PRESET_OPENDTU && !(leaf = opendtu_leaf(topic)))
        return fail(err, errlen, COL_INGEST_ETOPIC, "opendtu leaf \"%s\" is not mapped",
                    excerpt(strrchr(topic, '/') + 1, strlen(strrchr(topic, '/') + 1), ex, sizeof ex));
    if (len == 0)
        return fail(err, errlen, COL_INGEST_ENOTJSON, "payload is empty");
    if (leaf)
        return map_opendtu(leaf, payload, len, &c);
    int rc = parse_json(payload, len, COL_INGEST_MAX_BYTES, &root, err, errlen);
    if (rc < 0)
        return rc;
    rc = map_json(d, root, &c);
    cJSON_Delete(root);
    return rc;
}

/* ---- fabgrid's own topics ---- */

struct fab {
    const char *site;
    col_ingest_emit emit;
    void *ud;
    char *err;
    size_t errlen;
    bool warned;    /* err holds the first value or slot left out */
    int lines;
    char line[2048]; /* ids <= 32 bytes, job <= JOB_ID_MAX, site <= SITE_MAX, strings <= TEXT_MAX escaped
                      * to at most twice their size: a line never comes near this */
};

static void fwarn(struct fab *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fwarn(struct fab *f, const char *fmt, ...)
{
    va_list ap;
    if (f->warned)
        return;
    f->warned = true;
    va_start(ap, fmt);
    vput(f->err, f->errlen, fmt, ap);
    va_end(ap);
}

/* The contract's id syntax [a-z0-9][a-z0-9_-]{0,31}, which every machine id in a config has. */
static bool valid_id(const char *s, size_t n)
{
    if (n == 0 || n > 32 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* A job id as the balancer names occurrences and requests: 1..JOB_ID_MAX printable ASCII bytes without
 * space, '"' or '\\' (a topic level has no '/', '+' or '#' anyway). */
static bool valid_job_id(const char *s, size_t n)
{
    if (n == 0 || n > JOB_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

/* An integral JSON number of ms in 0..2^53. Returns 0, or -1 when v is not one. */
static int ms_value(const cJSON *v, int64_t *ms)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= TS_MAX_MS) ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *ms = (int64_t)v->valuedouble;
    return 0;
}

static int need_ts(struct fab *f, const cJSON *root, int64_t *ts)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "ts");
    if (!v)
        return fail(f->err, f->errlen, COL_INGEST_ENOFIELD, "ts: missing");
    if (ms_value(v, ts) < 0)
        return fail(f->err, f->errlen, COL_INGEST_ETYPE, "ts: expected an integer ms timestamp, got %s",
                    json_kind(v));
    return 0;
}

/* A finite number member. Absent: false quietly; present with another type: false and a warning. */
static bool num_member(struct fab *f, const cJSON *obj, const char *key, const char *where, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return false;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        fwarn(f, "%s%s: expected a number, got %s", where, key, json_kind(v));
        return false;
    }
    *out = v->valuedouble;
    return true;
}

/* A string member of at most TEXT_MAX bytes (points into obj). Absent or null: NULL quietly; another type
 * or a longer string: NULL and a warning. */
static const char *str_member(struct fab *f, const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsString(v)) {
        fwarn(f, "%s: expected a string, got %s", key, json_kind(v));
        return NULL;
    }
    if (strlen(v->valuestring) > TEXT_MAX) {
        fwarn(f, "%s: longer than %d bytes", key, TEXT_MAX);
        return NULL;
    }
    return v->valuestring;
}

/* An integer ms member. Absent or null: false quietly; anything else that is not one: false and a warning. */
static bool ms_member(struct fab *f, const cJSON *obj, const char *key, int64_t *ms)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return false;
    if (ms_value(v, ms) == 0)
        return true;
    fwarn(f, "%s: expected an integer ms timestamp or null, got %s", key, json_kind(v));
    return false;
}

static struct fg_lp_field lp_str(const char *key, const char *s)
{
    struct fg_lp_field x = { .key = key, .type = FG_LP_STRING, .s = s };
    return x;
}

static struct fg_lp_field lp_float(const char *key, double v)
{
    struct fg_lp_field x = { .key = key, .type = FG_LP_FLOAT, .f = v };
    return x;
}

static struct fg_lp_field lp_int(const char *key, int64_t v)
{
    struct fg_lp_field x = { .key = key, .type = FG_LP_INT, .i = v };
    return x;
}

static void fab_write_tags(struct fab *f, const char *measurement, const struct fg_lp_tag *tags, size_t ntags,
                           const struct fg_lp_field *fl, size_t nf, int64_t ts_ms)
{
    int n = fg_lp_encode(f->line, sizeof f->line, measurement, tags, ntags, fl, nf, ts_ms);
    if (n <= 0)
        return; /* nothing valid left (fg_lp drops NaN), or impossible overflow of bounded ids and strings */
    f->emit(f->ud, f->line, (size_t)n);
    f->lines++;
}

static void fab_write(struct fab *f, const char *measurement, const char *machine, const struct fg_lp_field *fl,
                      size_t nf, int64_t ts_ms)
{
    struct fg_lp_tag tags[2] = { { "site", f->site }, { "machine", machine } };
    fab_write_tags(f, measurement, tags, machine ? 2 : 1, fl, nf, ts_ms);
}

/* Nothing usable: a type problem already in err makes it ETYPE, else ENOFIELD. */
static int fab_nothing(struct fab *f)
{
    if (f->warned)
        return -COL_INGEST_ETYPE;
    return fail(f->err, f->errlen, COL_INGEST_ENOFIELD, "no usable field in payload");
}

static int fab_machine(struct fab *f, const char *machine, const cJSON *root)
{
    struct fg_lp_field fl[4];
    const char *s;
    size_t nf = 0;
    int64_t ts;
    double power_w;
    int rc = need_ts(f, root, &ts);
    if (rc < 0)
        return rc;
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(root, "on");
    if (cJSON_IsBool(on))
        fl[nf++] = lp_int("on", cJSON_IsTrue(on) ? 1 : 0);
    else if (on)
        fwarn(f, "on: expected a bool, got %s", json_kind(on));
    if (num_member(f, root, "power_w", "", &power_w))
        fl[nf++] = lp_float("power_w", power_w);
    if ((s = str_member(f, root, "reason")))
        fl[nf++] = lp_str("reason", s);
    if ((s = str_member(f, root, "job")))
        fl[nf++] = lp_str("job", s);
    if (nf == 0)
        return fab_nothing(f);
    fab_write(f, "machine", machine, fl, nf, ts);
    return f->lines;
}

/* Advice level names by level_code. */
static const char *const advice_levels[] = { "red", "yellow", "green" };

static size_t advice_level(struct fab *f, const cJSON *root, struct fg_lp_field *fl)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "level");
    char ex[EXCERPT_MAX];
    for (size_t i = 0; cJSON_IsString(v) && i < NELEM(advice_levels); i++) {
        if (strcmp(v->valuestring, advice_levels[i]) == 0) {
            fl[0] = (struct fg_lp_field){ .key = "level", .type = FG_LP_STRING, .s = advice_levels[i] };
            fl[1] = lp_int("level_code", (int64_t)i);
            return 2;
        }
    }
    if (cJSON_IsString(v))
        fwarn(f, "level: expected green, yellow or red, got \"%s\"",
              excerpt(v->valuestring, strlen(v->valuestring), ex, sizeof ex));
    else if (v)
        fwarn(f, "level: expected a string, got %s", json_kind(v));
    return 0;
}

static int fab_advice(struct fab *f, const char *unused, const cJSON *root)
{
    struct fg_lp_field fl[4];
    int64_t ts, next_ms;
    double surplus_w;
    char ex[EXCERPT_MAX];
    (void)unused;
    int rc = need_ts(f, root, &ts);
    if (rc < 0)
        return rc;
    /* a machine tag that cannot be written must not turn machine advice into site advice */
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "machine");
    if (m && !(cJSON_IsString(m) && valid_id(m->valuestring, strlen(m->valuestring))))
        return fail(f->err, f->errlen, COL_INGEST_ETYPE, "machine: expected a machine id, got %s%s%s%s",
                    json_kind(m), cJSON_IsString(m) ? " \"" : "",
                    cJSON_IsString(m) ? excerpt(m->valuestring, strlen(m->valuestring), ex, sizeof ex) : "",
                    cJSON_IsString(m) ? "\"" : "");
    size_t nf = advice_level(f, root, fl);
    if (num_member(f, root, "surplus_w", "", &surplus_w))
        fl[nf++] = lp_float("surplus_w", surplus_w);
    const cJSON *ng = cJSON_GetObjectItemCaseSensitive(root, "next_green");
    if (ng && !cJSON_IsNull(ng) && ms_value(ng, &next_ms) == 0)
        fl[nf++] = lp_int("next_green_ms", next_ms);
    else if (ng && !cJSON_IsNull(ng))
        fwarn(f, "next_green: expected an integer ms timestamp or null, got %s", json_kind(ng));
    if (nf == 0)
        return fab_nothing(f);
    fab_write(f, "advice", m ? m->valuestring : NULL, fl, nf, ts);
    return f->lines;
}

/* ---- jobs ---- */

/* Job state names by state_code. */
static const char *const job_states[] = { "queued", "planned", "running", "done", "missed", "rejected" };

static size_t job_state(struct fab *f, const cJSON *root, struct fg_lp_field *fl)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "state");
    char ex[EXCERPT_MAX];
    for (size_t i = 0; cJSON_IsString(v) && i < NELEM(job_states); i++) {
        if (strcmp(v->valuestring, job_states[i]) == 0) {
            fl[0] = lp_str("state", job_states[i]);
            fl[1] = lp_int("state_code", (int64_t)i);
            return 2;
        }
    }
    if (cJSON_IsString(v))
        fwarn(f, "state: expected queued, planned, running, done, missed or rejected, got \"%s\"",
              excerpt(v->valuestring, strlen(v->valuestring), ex, sizeof ex));
    else if (v)
        fwarn(f, "state: expected a string, got %s", json_kind(v));
    return 0;
}

/* The job's number and time fields after its state; returns how many were added to fl. */
static size_t job_values(struct fab *f, const cJSON *root, struct fg_lp_field *fl)
{
    static const char *const times[][2] = { { "earliest", "earliest_ms" }, { "deadline", "deadline_ms" } };
    static const char *const plan[][2] = { { "planned_start", "planned_start_ms" }, { "planned_end", "planned_end_ms" } };
    size_t nf = 0;
    int64_t ms;
    double wh;
    for (size_t i = 0; i < NELEM(times); i++)
        if (ms_member(f, root, times[i][0], &ms))
            fl[nf++] = lp_int(times[i][1], ms);
    if (num_member(f, root, "energy_wh", "", &wh))
        fl[nf++] = lp_float("energy_wh", wh);
    if (num_member(f, root, "done_wh", "", &wh))
        fl[nf++] = lp_float("done_wh", wh);
    for (size_t i = 0; i < NELEM(plan); i++)
        if (ms_member(f, root, plan[i][0], &ms))
            fl[nf++] = lp_int(plan[i][1], ms);
    return nf;
}

/* jobs/JOB: the machine is a tag, so a message without a valid one is refused rather than written untagged. */
static int fab_job(struct fab *f, const char *job, const cJSON *root)
{
    struct fg_lp_field fl[9];
    int64_t ts;
    char ex[EXCERPT_MAX];
    const char *s;
    int rc = need_ts(f, root, &ts);
    if (rc < 0)
        return rc;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "machine");
    if (!m)
        return fail(f->err, f->errlen, COL_INGEST_ENOFIELD, "machine: missing");
    if (!cJSON_IsString(m) || !valid_id(m->valuestring, strlen(m->valuestring)))
        return fail(f->err, f->errlen, COL_INGEST_ETYPE, "machine: expected a machine id, got %s%s%s%s",
                    json_kind(m), cJSON_IsString(m) ? " \"" : "",
                    cJSON_IsString(m) ? excerpt(m->valuestring, strlen(m->valuestring), ex, sizeof ex) : "",
                    cJSON_IsString(m) ? "\"" : "");
    size_t nf = job_state(f, root, fl);
    nf += job_values(f, root, fl + nf);
    if ((s = str_member(f, root, "reason")))
        fl[nf++] = lp_str("reason", s);
    if (nf == 0)
        return fab_nothing(f);
    struct fg_lp_tag tags[3] = { { "site", f->site }, { "machine", m->valuestring }, { "job", job } };
    fab_write_tags(f, "job", tags, 3, fl, nf, ts);
    return f->lines;
}

/* ---- the plan ---- */

struct plan_slot {
    bool ok;            /* has a valid start: written */
    int64_t start_ms;
    bool has_pv, has_load;
    double pv_w, load_w;
    const cJSON *machines; /* NULL: absent, every machine of the plan is planned 0 W in this slot */
    bool machines_bad;     /* "machines" was not an object: this slot writes no plan line */
};

struct plan {
    const char *names[COL_INGEST_PLAN_MACHINES_MAX]; /* every machine of the plan, in order of appearance */
    size_t nnames;
    struct plan_slot *slots;
    size_t nslots;
};

/* Adds the slot's machine names to the plan's. Returns 0, or -ETOOBIG past the machine limit. */
static int plan_names(struct fab *f, struct plan *p, const cJSON *machines, size_t i)
{
    const cJSON *m;
    char ex[EXCERPT_MAX];
    cJSON_ArrayForEach(m, machines) {
        size_t k = 0;
        if (!valid_id(m->string, strlen(m->string))) {
            fwarn(f, "slots[%zu].machines: \"%s\" is not a machine id", i,
                  excerpt(m->string, strlen(m->string), ex, sizeof ex));
            continue;
        }
        while (k < p->nnames && strcmp(p->names[k], m->string) != 0)
            k++;
        if (k < p->nnames)
            continue;
        if (p->nnames == COL_INGEST_PLAN_MACHINES_MAX)
            return fail(f->err, f->errlen, COL_INGEST_ETOOBIG, "plan names more than %d machines",
                        COL_INGEST_PLAN_MACHINES_MAX);
        p->names[p->nnames++] = m->string;
    }
    return 0;
}

static int plan_check_slot(struct fab *f, struct plan *p, const cJSON *slot, size_t i)
{
    struct plan_slot *s = &p->slots[i];
    char where[48];
    snprintf(where, sizeof where, "slots[%zu].", i);
    if (!cJSON_IsObject(slot)) {
        fwarn(f, "slots[%zu]: expected an object, got %s", i, json_kind(slot));
        return 0;
    }
    const cJSON *start = cJSON_GetObjectItemCaseSensitive(slot, "start");
    if (ms_value(start, &s->start_ms) < 0) {
        fwarn(f, "%sstart: expected an integer ms timestamp, got %s", where, start ? json_kind(start) : "nothing");
        return 0;
    }
    s->ok = true;
    s->has_pv = num_member(f, slot, "pv_w", where, &s->pv_w);
    s->has_load = num_member(f, slot, "load_w", where, &s->load_w);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(slot, "machines");
    if (m && !cJSON_IsObject(m)) {
        fwarn(f, "%smachines: expected an object, got %s", where, json_kind(m));
        s->machines_bad = true;
        return 0;
    }
    s->machines = m;
    return m ? plan_names(f, p, m, i) : 0;
}

static void plan_emit_slot(struct fab *f, const struct plan *p, const struct plan_slot *s, size_t i)
{
    struct fg_lp_field fl[2];
    size_t nf = 0;
    char where[48];
    if (s->has_pv)
        fl[nf++] = lp_float("pv_w", s->pv_w);
    if (s->has_load)
        fl[nf++] = lp_float("load_w", s->load_w);
    if (nf)
        fab_write(f, "forecast", NULL, fl, nf, s->start_ms);
    if (s->machines_bad)
        return;
    snprintf(where, sizeof where, "slots[%zu].machines.", i);
    for (size_t k = 0; k < p->nnames; k++) {
        double w = 0; /* not named in this slot: a real planned 0 W */
        if (s->machines && cJSON_GetObjectItemCaseSensitive(s->machines, p->names[k]) &&
            !num_member(f, s->machines, p->names[k], where, &w))
            continue; /* named with a wrong type: left out, never 0 */
        fl[0] = lp_float("planned_w", w);
        fab_write(f, "plan", p->names[k], fl, 1, s->start_ms);
    }
}

static int fab_plan(struct fab *f, const char *unused, const cJSON *root)
{
    struct plan p = { .nnames = 0 };
    const cJSON *slots = cJSON_GetObjectItemCaseSensitive(root, "slots"), *slot;
    (void)unused;
    if (!slots)
        return fail(f->err, f->errlen, COL_INGEST_ENOFIELD, "slots: missing");
    if (!cJSON_IsArray(slots))
        return fail(f->err, f->errlen, COL_INGEST_ETYPE, "slots: expected an array, got %s", json_kind(slots));
    int n = cJSON_GetArraySize(slots);
    if (n > COL_INGEST_PLAN_SLOTS_MAX)
        return fail(f->err, f->errlen, COL_INGEST_ETOOBIG, "plan of %d slots exceeds %d", n,
                    COL_INGEST_PLAN_SLOTS_MAX);
    p.slots = fg_calloc((size_t)n + 1, sizeof *p.slots);
    int rc = 0;
    cJSON_ArrayForEach(slot, slots) {
        if ((rc = plan_check_slot(f, &p, slot, p.nslots++)) < 0)
            break;
    }
    for (size_t i = 0; rc == 0 && i < p.nslots; i++)
        if (p.slots[i].ok)
            plan_emit_slot(f, &p, &p.slots[i], i);
    free(p.slots);
    if (rc < 0)
        return rc;
    return f->lines == 0 && f->warned ? -COL_INGEST_ETYPE : f->lines;
}

/* ---- dispatch ---- */

static const struct fab_topic {
    const char *filter;
    int (*ingest)(struct fab *f, const char *machine, const cJSON *root);
} fab_topics[] = {
    { "machine/+/state", fab_machine },
    { "balancer/plan", fab_plan },
    { "advice", fab_advice },
    { "jobs/+", fab_job },
};

/* Copies the id level of a machine/M/state or jobs/JOB topic into id. Returns 0, or -ETOPIC when it is not
 * a valid id of its kind. */
static int topic_id(const struct fab_topic *t, const char *subtopic, char *id, size_t idlen, char *err, size_t errlen)
{
    char ex[EXCERPT_MAX * 2], idex[EXCERPT_MAX];
    bool job = t->ingest == fab_job;
    const char *p = subtopic + strlen(job ? "jobs/" : "machine/");
    size_t n = strcspn(p, "/");
    if (!(job ? valid_job_id(p, n) : valid_id(p, n)) || n >= idlen)
        return fail(err, errlen, COL_INGEST_ETOPIC, "%s id \"%s\" of topic \"%s\" is not an id", job ? "job" : "machine",
                    excerpt(p, n, idex, sizeof idex), excerpt(subtopic, strlen(subtopic), ex, sizeof ex));
    memcpy(id, p, n);
    id[n] = '\0';
    return 0;
}

int col_ingest_fabgrid(const char *site, const char *subtopic, const void *payload, size_t len, col_ingest_emit emit,
                       void *ud, char *err, size_t errlen)
{
    struct fab f = { .site = site, .emit = emit, .ud = ud, .err = err, .errlen = errlen };
    char id[JOB_ID_MAX + 1] = "", ex[EXCERPT_MAX * 2];
    const struct fab_topic *t = NULL;
    cJSON *root = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (len > COL_INGEST_FABGRID_MAX_BYTES)
        return fail(err, errlen, COL_INGEST_ETOOBIG, "payload of %zu bytes exceeds %u", len,
                    COL_INGEST_FABGRID_MAX_BYTES);
    for (size_t i = 0; i < NELEM(fab_topics) && !t; i++)
        if (filter_matches(fab_topics[i].filter, subtopic))
            t = &fab_topics[i];
    if (!t)
        return fail(err, errlen, COL_INGEST_ETOPIC, "unknown fabgrid topic \"%s\"",
                    excerpt(subtopic, strlen(subtopic), ex, sizeof ex));
    if ((t->ingest == fab_machine || t->ingest == fab_job) && topic_id(t, subtopic, id, sizeof id, err, errlen) < 0)
        return -COL_INGEST_ETOPIC;
    if (!site || strlen(site) > SITE_MAX)
        return fail(err, errlen, COL_INGEST_ETOPIC, "site id longer than %d", SITE_MAX);
    int rc = parse_json(payload, len, COL_INGEST_FABGRID_MAX_BYTES, &root, err, errlen);
    if (rc < 0)
        return rc;
    if (!cJSON_IsObject(root))
        rc = fail(err, errlen, COL_INGEST_ETYPE, "payload: expected an object, got %s", json_kind(root));
    else
        rc = t->ingest(&f, id, root);
    cJSON_Delete(root);
    return rc;
}
