/* bal_model: loads machines, jobs and the "balancer" section of a site config with the contract's
 * error messages, converts between unix time and the site's local calendar (DST days have 23 and
 * 25 hours), and expands recurring jobs into dated occurrences for the planner. */
#include "bal_model.h"

#include "fg_cfg.h"
#include "fg_clock.h"
#include "fg_mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_MACHINE "machine"        /* machines and jobs each have their own id namespace */
#define NS_JOB "job"
#define DAYS_ALL 0x7F
#define MIN_PER_DAY 1440
#define MS_PER_MIN 60000LL

struct loader {
    struct fg_cfg *c;
    struct bal_config *cfg;
    const cJSON *root;
};

/* ---- small readers ---- */

/* obj[key] unless absent or null; a missing required key is recorded as fg_cfg does it. */
static const cJSON *member(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, bool required)
{
    const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    const char *unused;
    if (v && !cJSON_IsNull(v))
        return v;
    if (required)
        fg_cfg_str(c, obj, path, key, true, 1, NULL, &unused); /* records "missing (required)" */
    return NULL;
}

static bool present(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v);
}

static const char *got_of(const cJSON *v, char *buf, size_t len)
{
    return cJSON_IsString(v) || cJSON_IsNumber(v) || cJSON_IsBool(v) ? fg_cfg_got_value(v, buf, len)
                                                                       : fg_cfg_got_kind(v);
}

/* Records "path.key: message" at obj[key], or where a missing key is reported when it is absent. */
static void key_errorf(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void key_errorf(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, const char *fmt, ...)
{
    char kp[FG_CFG_PATH_MAX], msg[512];
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(obj, key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fg_cfg_errorf(c, at ? at : fg_cfg_last_leaf(obj), fg_cfg_path(kp, sizeof kp, path, -1, key), "%s", msg);
}

/* "HH:MM" (two digits each) to minutes, up to max_min (1439, or 1440 for an end of day). -1 if not. */
static int hhmm_minutes(const char *s, int max_min)
{
    int h, m;
    for (int i = 0; i < 5; i++)
        if (i == 2 ? s[i] != ':' : (s[i] < '0' || s[i] > '9'))
            return -1;
    if (s[5])
        return -1;
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h * 60 + m > max_min)
        return -1;
    return h * 60 + m;
}

/* A local time of day at obj[key]. Returns 0 with *out set, -1 after recording an error. */
static int cfg_hhmm(struct fg_cfg *c, const cJSON *obj, const char *path, const char *key, int max_min,
                    const char *hint, int *out)
{
    char kp[FG_CFG_PATH_MAX], got[64];
    const cJSON *v = member(c, obj, path, key, true);
    if (!v)
        return -1;
    *out = cJSON_IsString(v) ? hhmm_minutes(v->valuestring, max_min) : -1;
    if (*out >= 0)
        return 0;
    fg_cfg_errorf(c, v, fg_cfg_path(kp, sizeof kp, path, -1, key), "must be a local time \"HH:MM\" 00:00..%s%s, got %s",
                  max_min == MIN_PER_DAY ? "24:00" : "23:59", hint, got_of(v, got, sizeof got));
    return -1;
}

/* ---- days of the week ---- */

static const char *const day_names[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun", NULL };

static int day_index(const char *s, size_t n)
{
    for (int i = 0; day_names[i]; i++)
        if (n == 3 && strncmp(s, day_names[i], 3) == 0)
            return i;
    return -1;
}

/* "daily", "mon", or a range "mon-fri" (wrapping: "fri-mon") into a mask; 0 if none of these. */
static uint8_t days_word(const char *s)
{
    size_t n = strlen(s);
    int a, b;
    uint8_t mask = 0;
    if (strcmp(s, "daily") == 0)
        return DAYS_ALL;
    if (n == 3 && (a = day_index(s, 3)) >= 0)
        return (uint8_t)(1u << a);
    if (n != 7 || s[3] != '-' || (a = day_index(s, 3)) < 0 || (b = day_index(s + 4, 3)) < 0)
        return 0;
    for (int d = a;; d = (d + 1) % 7) {
        mask |= (uint8_t)(1u << d);
        if (d == b)
            return mask;
    }
}

static void days_error(struct fg_cfg *c, const cJSON *v, const char *path)
{
    char got[64];
    const char *g = cJSON_IsArray(v) && !v->child ? "an empty array" : got_of(v, got, sizeof got);
    fg_cfg_errorf(c, v, path, "must be \"daily\", a day \"mon\"..\"sun\", a range such as \"mon-fri\", "
                  "or an array of days and ranges, got %s", g);
}

/* obj.days into *mask. Returns 0 if valid, 1 if absent (*mask = def), -1 after recording errors. */
static int cfg_days(struct fg_cfg *c, const cJSON *obj, const char *path, uint8_t def, uint8_t *mask)
{
    char kp[FG_CFG_PATH_MAX], ep[FG_CFG_PATH_MAX];
    const cJSON *v = member(c, obj, path, "days", false), *e;
    long i = 0;
    int bad = 0;
    *mask = def;
    if (!v)
        return 1;
    fg_cfg_path(kp, sizeof kp, path, -1, "days");
    if (cJSON_IsString(v) && (*mask = days_word(v->valuestring)) != 0)
        return 0;
    if (!cJSON_IsArray(v) || !v->child) {
        days_error(c, v, kp);
        return -1;
    }
    *mask = 0;
    cJSON_ArrayForEach(e, v) {
        uint8_t m = cJSON_IsString(e) ? days_word(e->valuestring) : 0;
        if (!m) {
            days_error(c, e, fg_cfg_path(ep, sizeof ep, kp, i, NULL));
            bad++;
        }
        *mask |= m;
        i++;
    }
    return bad ? -1 : 0;
}

/* ---- machines: power ---- */

static int power_modulating(struct fg_cfg *c, const cJSON *o, const char *path, struct bal_machine *m)
{
    double min_w, max_w, step_w;
    int a = fg_cfg_num(c, o, path, "min_power_w", false, 1, 1e6, 0, &min_w);
    int b = fg_cfg_num(c, o, path, "max_power_w", false, 1, 1e6, 0, &max_w);
    int s = fg_cfg_num(c, o, path, "step_w", false, 0, 1e6, 0, &step_w);
    if (a < 0 || b < 0 || s < 0)
        return -1;
    if (a != b) {
        key_errorf(c, o, path, a ? "min_power_w" : "max_power_w", "missing (required with %s)",
                   a ? "max_power_w" : "min_power_w");
        return -1;
    }
    if (min_w >= max_w) {
        key_errorf(c, o, path, "min_power_w", "must be less than max_power_w (%.15g), got %.15g", max_w, min_w);
        return -1;
    }
    if (step_w > max_w - min_w) {
        key_errorf(c, o, path, "step_w", "must be at most max_power_w - min_power_w (%.15g), got %.15g",
                   max_w - min_w, step_w);
        return -1;
    }
    m->power_w = max_w;
    m->min_power_w = min_w;
    m->step_w = step_w;
    return 0;
}

/* A fixed load gives power_w; a modulating one min_power_w and max_power_w (and maybe step_w). */
static int machine_power(struct fg_cfg *c, const cJSON *o, const char *path, struct bal_machine *m)
{
    int bad = 0;
    if (present(o, "power_w")) {
        bad += fg_cfg_num(c, o, path, "power_w", true, 1, 1e6, 0, &m->power_w) < 0;
        bad += fg_cfg_only_for(c, o, path, "min_power_w", "machines without power_w") < 0;
        bad += fg_cfg_only_for(c, o, path, "max_power_w", "machines without power_w") < 0;
        bad += fg_cfg_only_for(c, o, path, "step_w", "machines with min_power_w and max_power_w") < 0;
        return bad ? -1 : 0;
    }
    if (!present(o, "min_power_w") && !present(o, "max_power_w")) {
        if (present(o, "step_w"))
            fg_cfg_only_for(c, o, path, "step_w", "machines with min_power_w and max_power_w");
        key_errorf(c, o, path, "power_w", "missing (required, or min_power_w and max_power_w)");
        return -1;
    }
    return power_modulating(c, o, path, m);
}

/* ---- machines: windows ---- */

static const char *const window_keys[] = { "days", "from", "to", NULL };

static int parse_window(struct fg_cfg *c, const cJSON *w, const char *path, struct bal_window *out)
{
    char got[64];
    int from = 0, to = 0, bad = 0;
    if (!cJSON_IsObject(w)) {
        fg_cfg_errorf(c, w, path, "must be an object, got %s", fg_cfg_got_kind(w));
        return -1;
    }
    bad += fg_cfg_known_keys(c, w, path, window_keys) > 0;
    bad += cfg_days(c, w, path, DAYS_ALL, &out->days_mask) < 0;
    int a = cfg_hhmm(c, w, path, "from", MIN_PER_DAY - 1, "", &from);
    int b = cfg_hhmm(c, w, path, "to", MIN_PER_DAY, "", &to);
    if (a == 0 && b == 0 && to <= from) {
        key_errorf(c, w, path, "to", "must be after from (%s), got %s",
                   cJSON_GetObjectItemCaseSensitive(w, "from")->valuestring,
                   got_of(cJSON_GetObjectItemCaseSensitive(w, "to"), got, sizeof got));
        bad++;
    }
    out->from_min = (uint16_t)from;
    out->to_min = (uint16_t)to;
    return bad || a || b ? -1 : 0;
}

static int machine_windows(struct fg_cfg *c, const cJSON *o, const char *path, struct bal_machine *m)
{
    char kp[FG_CFG_PATH_MAX], wp[FG_CFG_PATH_MAX];
    const cJSON *arr, *w;
    int n, bad = 0, rc = fg_cfg_container(c, o, path, "windows", false, cJSON_Array, &arr);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    n = cJSON_GetArraySize(arr);
    if (n > BAL_MAX_WINDOWS) {
        fg_cfg_errorf(c, arr, fg_cfg_path(kp, sizeof kp, path, -1, "windows"),
                      "must have at most %d windows, got %d", BAL_MAX_WINDOWS, n);
        return -1;
    }
    fg_cfg_path(kp, sizeof kp, path, -1, "windows");
    cJSON_ArrayForEach(w, arr) {
        struct bal_window *win = &m->windows[m->nwindows];
        bad += parse_window(c, w, fg_cfg_path(wp, sizeof wp, kp, (long)m->nwindows++, NULL), win) < 0;
    }
    return bad ? -1 : 0;
}

/* ---- machines: actuator, meter, shutdown ---- */

static const char *const actuator_keys[] = { "type", "device", "point", "preset", "topic", "payload_on",
                                             "payload_off", NULL };
static const char *const actuator_types[] = { "modbus", "mqtt", "shelly-gen2", "tasmota", NULL };
/* an "mqtt" actuator's presets; the last two equal the types "shelly-gen2" and "tasmota" */
static const char *const preset_names[] = { "generic", "shelly-gen2", "tasmota", NULL };
static const enum bal_act_type act_of_preset[] = { BAL_ACT_MQTT, BAL_ACT_SHELLY, BAL_ACT_TASMOTA };
enum { TYPE_MODBUS, TYPE_MQTT, TYPE_SHELLY, TYPE_TASMOTA };

/* The entry with that "id" in the document's section (an array of objects), or NULL. */
static const cJSON *doc_find_id(const cJSON *root, const char *section, const char *id)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, section), *e;
    if (!cJSON_IsArray(arr))
        return NULL;
    cJSON_ArrayForEach(e, arr) {
        const cJSON *eid = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (cJSON_IsString(eid) && strcmp(eid->valuestring, id) == 0)
            return e;
    }
    return NULL;
}

/* obj[key], if present, must be a device id found in one of the sections (NULL-terminated); it is
 * copied into dst ("" when absent or invalid) and *entry (may be NULL) receives the entry. */
static int device_ref(struct loader *L, const cJSON *o, const char *path, const char *key, bool required,
                      const char *const *sections, const char *where, char *dst, const cJSON **entry)
{
    char kp[FG_CFG_PATH_MAX], id[FG_CFG_ID_MAX + 1];
    const cJSON *e = NULL;
    int rc = fg_cfg_id(L->c, o, path, key, required, NULL, id, sizeof id);
    dst[0] = '\0';
    if (entry)
        *entry = NULL;
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    for (size_t i = 0; sections[i] && !e; i++)
        e = doc_find_id(L->root, sections[i], id);
    if (e) {
        fg_strlcpy(dst, id, BAL_ID_MAX);
        if (entry)
            *entry = e;
        return 0;
    }
    fg_cfg_errorf(L->c, cJSON_GetObjectItemCaseSensitive(o, key), fg_cfg_path(kp, sizeof kp, path, -1, key),
                  "no device with id \"%s\" in %s", id, where);
    return -1;
}

static int act_modbus(struct loader *L, const cJSON *a, const char *path, struct bal_actuator *act)
{
    static const char *const mqtt_only[] = { "preset", "topic", "payload_on", "payload_off", NULL };
    static const char *const modbus_sec[] = { "devices", NULL };
    int bad = 0;
    act->type = BAL_ACT_MODBUS;
    bad += device_ref(L, a, path, "device", true, modbus_sec, "devices", act->device, NULL) < 0;
    bad += fg_cfg_strbuf(L->c, a, path, "point", true, NULL, act->point, sizeof act->point) < 0;
    for (size_t i = 0; mqtt_only[i]; i++)
        bad += fg_cfg_only_for(L->c, a, path, mqtt_only[i], "types mqtt, shelly-gen2 and tasmota") < 0;
    return bad ? -1 : 0;
}

/* A topic we publish to may not hold wildcards (the broker would drop the message). */
static int topic_plain(struct fg_cfg *c, const cJSON *o, const char *path, const char *key, const char *topic)
{
    char got[64];
    if (!strpbrk(topic, "+#"))
        return 0;
    key_errorf(c, o, path, key, "must not contain '+' or '#', got %s",
               got_of(cJSON_GetObjectItemCaseSensitive(o, key), got, sizeof got));
    return -1;
}

/* The actuator's topic, or that of its mqtt_devices entry dev when "topic" is absent. */
static int act_topic(struct loader *L, const cJSON *a, const char *path, bool required, const cJSON *dev,
                     struct bal_actuator *act)
{
    const cJSON *t;
    int rc = fg_cfg_strbuf(L->c, a, path, "topic", required, NULL, act->topic, sizeof act->topic);
    if (rc <= 0)
        return rc < 0 ? -1 : topic_plain(L->c, a, path, "topic", act->topic);
    if (!dev)
        return 0; /* absent and not required: the device reference was refused already */
    t = cJSON_GetObjectItemCaseSensitive(dev, "topic");
    if (cJSON_IsString(t) && t->valuestring[0] && strlen(t->valuestring) < sizeof act->topic &&
        !strpbrk(t->valuestring, "+#")) {
        fg_strlcpy(act->topic, t->valuestring, sizeof act->topic);
        return 0;
    }
    key_errorf(L->c, a, path, "topic", "missing (required: mqtt_devices entry \"%s\" has no usable topic)",
               act->device);
    return -1;
}

/* A Shelly or Tasmota actuator's mqtt_devices entry must speak the same preset. */
static int act_device_preset(struct fg_cfg *c, const cJSON *a, const char *path, const cJSON *dev, int preset)
{
    char got[64];
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(dev, "preset");
    if (!preset || !cJSON_IsString(p) || strcmp(p->valuestring, preset_names[preset]) == 0)
        return 0;
    key_errorf(c, a, path, "device", "mqtt_devices entry \"%s\" has preset %s, not \"%s\"",
               cJSON_GetObjectItemCaseSensitive(dev, "id")->valuestring, got_of(p, got, sizeof got),
               preset_names[preset]);
    return -1;
}

static int act_payloads(struct fg_cfg *c, const cJSON *a, const char *path, int preset, struct bal_actuator *act)
{
    int bad = 0;
    if (preset) {
        bad += fg_cfg_only_for(c, a, path, "payload_on", "type mqtt with preset generic") < 0;
        bad += fg_cfg_only_for(c, a, path, "payload_off", "type mqtt with preset generic") < 0;
        return bad ? -1 : 0;
    }
    bad += fg_cfg_strbuf(c, a, path, "payload_on", false, "on", act->payload_on, sizeof act->payload_on) < 0;
    bad += fg_cfg_strbuf(c, a, path, "payload_off", false, "off", act->payload_off, sizeof act->payload_off) < 0;
    return bad ? -1 : 0;
}

static int act_mqtt(struct loader *L, const cJSON *a, const char *path, int type, struct bal_actuator *act)
{
    static const char *const mqtt_sec[] = { "mqtt_devices", NULL };
    const cJSON *dev = NULL;
    int preset = type == TYPE_SHELLY ? 1 : type == TYPE_TASMOTA ? 2 : 0, bad = 0;
    bad += fg_cfg_only_for(L->c, a, path, "point", "type modbus") < 0;
    if (type == TYPE_MQTT)
        bad += fg_cfg_enum(L->c, a, path, "preset", false, preset_names, 0, &preset) < 0;
    else
        bad += fg_cfg_only_for(L->c, a, path, "preset", "type mqtt") < 0;
    act->type = act_of_preset[preset];
    fg_strlcpy(act->preset, preset_names[preset], sizeof act->preset);
    bad += device_ref(L, a, path, "device", false, mqtt_sec, "mqtt_devices", act->device, &dev) < 0;
    if (dev)
        bad += act_device_preset(L->c, a, path, dev, preset) < 0;
    /* a generic MQTT actuator has nothing but its topic; a preset may take it from its mqtt_device */
    bad += act_topic(L, a, path, preset == 0 || !present(a, "device"), dev, act) < 0;
    bad += act_payloads(L->c, a, path, preset, act) < 0;
    return bad ? -1 : 0;
}

static int machine_actuator(struct loader *L, const cJSON *o, const char *path, const struct bal_machine *m,
                            struct bal_actuator *act)
{
    char ap[FG_CFG_PATH_MAX];
    const cJSON *a;
    int type, bad = 0;
    int rc = fg_cfg_container(L->c, o, path, "actuator", false, cJSON_Object, &a);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    fg_cfg_path(ap, sizeof ap, path, -1, "actuator");
    bad += fg_cfg_known_keys(L->c, a, ap, actuator_keys) > 0;
    if (fg_cfg_enum(L->c, a, ap, "type", true, actuator_types, 0, &type) < 0)
        return -1; /* which keys belong depends on the type */
    act->power_setpoint = m->min_power_w > 0;
    bad += (type == TYPE_MODBUS ? act_modbus(L, a, ap, act) : act_mqtt(L, a, ap, type, act)) < 0;
    return bad ? -1 : 0;
}

/* ---- machines ---- */

static const char *const machine_keys[] = { "id", "power_w", "min_power_w", "max_power_w", "step_w",
                                            "interruptible", "min_on_s", "min_off_s", "max_starts_per_day",
                                            "windows", "start", "priority", "actuator", "meter", "shutdown", NULL };
static const char *const start_names[] = { "auto", "manual", NULL };
static const char *const shutdown_names[] = { "auto", "off", "on", "keep", NULL };
_Static_assert(BAL_SHUT_AUTO == 0 && BAL_SHUT_OFF == 1 && BAL_SHUT_ON == 2 && BAL_SHUT_KEEP == 3,
               "shutdown_names follows enum bal_shutdown");

static int machine_limits(struct fg_cfg *c, const cJSON *o, const char *path, struct bal_machine *m)
{
    long min_on_s, min_off_s, starts, priority;
    int start, bad = 0;
    bad += fg_cfg_bool(c, o, path, "interruptible", false, false, &m->interruptible) < 0;
    bad += fg_cfg_int(c, o, path, "min_on_s", false, 0, 86400, 0, &min_on_s) < 0;
    bad += fg_cfg_int(c, o, path, "min_off_s", false, 0, 86400, 0, &min_off_s) < 0;
    bad += fg_cfg_int(c, o, path, "max_starts_per_day", false, 0, 1000, 0, &starts) < 0;
    bad += fg_cfg_enum(c, o, path, "start", false, start_names, 0, &start) < 0;
    bad += fg_cfg_int(c, o, path, "priority", false, -100, 100, 0, &priority) < 0;
    m->min_on_s = (unsigned)min_on_s;
    m->min_off_s = (unsigned)min_off_s;
    m->max_starts_per_day = (unsigned)starts;
    m->manual = start == 1;
    m->priority = (int)priority;
    return bad ? -1 : 0;
}

/* Machine i of the document into cfg->machines[i] and the parallel act, meter and shutdown. */
static int parse_machine(struct loader *L, const cJSON *o, const char *path, size_t i)
{
    static const char *const meter_sec[] = { "devices", "mqtt_devices", NULL };
    struct bal_config *cfg = L->cfg;
    struct bal_machine *m = &cfg->machines[i];
    int bad = 0, shutdown;
    if (!cJSON_IsObject(o)) {
        fg_cfg_errorf(L->c, o, path, "must be an object, got %s", fg_cfg_got_kind(o));
        return -1;
    }
    bad += fg_cfg_known_keys(L->c, o, path, machine_keys) > 0;
    bad += fg_cfg_id(L->c, o, path, "id", true, NS_MACHINE, m->id, sizeof m->id) < 0;
    bad += machine_power(L->c, o, path, m) < 0;
    bad += machine_limits(L->c, o, path, m) < 0;
    bad += machine_windows(L->c, o, path, m) < 0;
    bad += machine_actuator(L, o, path, m, &cfg->act[i]) < 0;
    bad += device_ref(L, o, path, "meter", false, meter_sec, "devices or mqtt_devices", cfg->meter[i], NULL) < 0;
    bad += fg_cfg_enum(L->c, o, path, "shutdown", false, shutdown_names, BAL_SHUT_AUTO, &shutdown) < 0;
    cfg->shutdown[i] = (enum bal_shutdown)shutdown;
    return bad ? -1 : 0;
}

static void sec_machines(struct loader *L)
{
    char path[FG_CFG_PATH_MAX];
    const cJSON *arr, *o;
    int n;
    if (fg_cfg_container(L->c, L->root, NULL, "machines", false, cJSON_Array, &arr) != 0)
        return;
    n = cJSON_GetArraySize(arr);
    if (n > BAL_MAX_MACHINES) {
        fg_cfg_errorf(L->c, arr, "machines", "must have at most %d machines, got %d", BAL_MAX_MACHINES, n);
        return;
    }
    L->cfg->machines = fg_calloc((size_t)n + 1, sizeof *L->cfg->machines);
    L->cfg->act = fg_calloc((size_t)n + 1, sizeof *L->cfg->act); /* zeroed: BAL_ACT_NONE */
    L->cfg->meter = fg_calloc((size_t)n + 1, sizeof *L->cfg->meter);
    L->cfg->shutdown = fg_calloc((size_t)n + 1, sizeof *L->cfg->shutdown);
    cJSON_ArrayForEach(o, arr) {
        size_t i = L->cfg->nmachines++;
        parse_machine(L, o, fg_cfg_path(path, sizeof path, "machines", (long)i, NULL), i);
    }
}

/* ---- jobs ---- */

static const char *const job_keys[] = { "id", "machine", "duration_min", "energy_wh", "days", "earliest",
                                        "deadline", "required", "surplus_only", NULL };

/* The machine a job names, as an index into the document's machines (the order they are parsed in). */
static int job_machine(struct loader *L, const cJSON *o, const char *path, struct bal_job_cfg *j)
{
    const char *id;
    if (fg_cfg_str(L->c, o, path, "machine", true, FG_CFG_ID_MAX, NULL, &id) != 0)
        return -1;
    for (size_t i = 0; i < L->cfg->nmachines; i++)
        if (strcmp(L->cfg->machines[i].id, id) == 0) {
            j->machine = i;
            return 0;
        }
    key_errorf(L->c, o, path, "machine", "no machine with id \"%s\"", id);
    return -1;
}

/* Exactly one of duration_min and energy_wh. */
static int job_amount(struct fg_cfg *c, const cJSON *o, const char *path, struct bal_job_cfg *j)
{
    long duration_min;
    bool has_d = present(o, "duration_min"), has_e = present(o, "energy_wh");
    if (has_d && has_e) {
        key_errorf(c, o, path, "energy_wh", "not with duration_min (give one of them)");
        return -1;
    }
    if (has_e)
        return fg_cfg_num(c, o, path, "energy_wh", true, 1, 1e7, 0, &j->energy_wh) < 0 ? -1 : 0;
    if (!has_d) {
        key_errorf(c, o, path, "duration_min", "missing (required, or energy_wh)");
        return -1;
    }
    if (fg_cfg_int(c, o, path, "duration_min", true, 1, 10080, 0, &duration_min) < 0)
        return -1;
    j->duration_min = (unsigned)duration_min;
    return 0;
}

static int job_iso(struct fg_cfg *c, const cJSON *o, const char *path, const char *key, int64_t *out_ms)
{
    char kp[FG_CFG_PATH_MAX], got[64];
    const cJSON *v = member(c, o, path, key, true);
    if (!v)
        return -1;
    if (cJSON_IsString(v) && fg_parse_iso8601_ms(v->valuestring, out_ms) == 0)
        return 0;
    fg_cfg_errorf(c, v, fg_cfg_path(kp, sizeof kp, path, -1, key), "must be a date and time with offset such as "
                  "\"2026-12-01T18:00:00+01:00\" (the job has no days), got %s", got_of(v, got, sizeof got));
    return -1;
}

/* earliest and deadline: local "HH:MM" for a recurring job, ISO 8601 for a one-off one. *span_min
 * receives the nominal time between them. */
static int job_times(struct fg_cfg *c, const cJSON *o, const char *path, struct bal_job_cfg *j, long *span_min)
{
    char got[64];
    int e = 0, d = 0, a, b;
    if (j->days_mask) {
        a = cfg_hhmm(c, o, path, "earliest", MIN_PER_DAY - 1, " (the job has days)", &e);
        b = cfg_hhmm(c, o, path, "deadline", MIN_PER_DAY, " (the job has days)", &d);
        j->earliest_min = (uint16_t)(a ? 0 : e);
        j->deadline_min = (uint16_t)(b ? 0 : d);
        *span_min = (long)d - e;
    } else {
        a = job_iso(c, o, path, "earliest", &j->once_earliest_ms);
        b = job_iso(c, o, path, "deadline", &j->once_deadline_ms);
        *span_min = (long)((j->once_deadline_ms - j->once_earliest_ms) / MS_PER_MIN);
    }
    if (a || b)
        return -1;
    if (j->days_mask ? d > e : j->once_deadline_ms > j->once_earliest_ms)
        return 0;
    key_errorf(c, o, path, "deadline", "must be after earliest (%s), got %s",
               cJSON_GetObjectItemCaseSensitive(o, "earliest")->valuestring,
               got_of(cJSON_GetObjectItemCaseSensitive(o, "deadline"), got, sizeof got));
    return -1;
}

/* A job that cannot be done between earliest and deadline even at full power is a config error. */
static int job_fits(struct loader *L, const cJSON *o, const char *path, const struct bal_job_cfg *j, long span_min)
{
    double power_w = L->cfg->machines[j->machine].power_w;
    if (j->duration_min && j->duration_min > span_min) {
        key_errorf(L->c, o, path, "duration_min", "must fit between earliest and deadline (%ld min), got %u",
                   span_min, j->duration_min);
        return -1;
    }
    if (j->energy_wh > 0 && power_w > 0 && j->energy_wh > power_w * (double)span_min / 60) {
        key_errorf(L->c, o, path, "energy_wh",
                   "must fit between earliest and deadline (%ld min at %.15g W = %.15g Wh), got %.15g", span_min,
                   power_w, power_w * (double)span_min / 60, j->energy_wh);
        return -1;
    }
    return 0;
}

/* required defaults to true, but to false for a surplus_only job; both true contradict. */
static int job_flags(struct fg_cfg *c, const cJSON *o, const char *path, struct bal_job_cfg *j)
{
    if (fg_cfg_bool(c, o, path, "surplus_only", false, false, &j->surplus_only) < 0)
        return -1;
    if (fg_cfg_bool(c, o, path, "required", false, !j->surplus_only, &j->required) < 0)
        return -1;
    if (!(j->surplus_only && j->required))
        return 0;
    key_errorf(c, o, path, "required", "must be false (or absent) with surplus_only: true, got true");
    j->required = false;
    return -1;
}

static int parse_job(struct loader *L, const cJSON *o, const char *path, struct bal_job_cfg *j)
{
    long span_min = 0;
    int bad = 0, machine_ok, amount_ok, times_ok;
    if (!cJSON_IsObject(o)) {
        fg_cfg_errorf(L->c, o, path, "must be an object, got %s", fg_cfg_got_kind(o));
        return -1;
    }
    bad += fg_cfg_known_keys(L->c, o, path, job_keys) > 0;
    bad += fg_cfg_id(L->c, o, path, "id", true, NS_JOB, j->id, sizeof j->id) < 0;
    machine_ok = job_machine(L, o, path, j) == 0;
    amount_ok = job_amount(L->c, o, path, j) == 0;
    if (cfg_days(L->c, o, path, 0, &j->days_mask) < 0) {
        j->days_mask = DAYS_ALL; /* days were meant: read the times as a recurring job's */
        bad++;
    }
    times_ok = job_times(L->c, o, path, j, &span_min) == 0;
    if (machine_ok && amount_ok && times_ok)
        bad += job_fits(L, o, path, j, span_min) < 0;
    bad += job_flags(L->c, o, path, j) < 0;
    return bad || !machine_ok || !amount_ok || !times_ok ? -1 : 0;
}

static void sec_jobs(struct loader *L)
{
    char path[FG_CFG_PATH_MAX];
    const cJSON *arr, *o;
    if (fg_cfg_container(L->c, L->root, NULL, "jobs", false, cJSON_Array, &arr) != 0)
        return;
    L->cfg->jobs = fg_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *L->cfg->jobs);
    cJSON_ArrayForEach(o, arr) {
        size_t i = L->cfg->njobs++;
        parse_job(L, o, fg_cfg_path(path, sizeof path, "jobs", (long)i, NULL), &L->cfg->jobs[i]);
    }
}

/* ---- balancer ---- */

static const char *const balancer_keys[] = { "interval_s", "slot_min", "horizon_h", "stale_after_s",
                                             "surplus_margin_w", "surplus_delay_s", "hysteresis_w",
                                             "state_file", "replan_margin_w", "confirm_timeout_s",
                                             "confirm_retries", "confirm_power_w", "forecast_topic", NULL };
static const long slot_mins[] = { 5, 6, 10, 12, 15, 20, 30, 60 }; /* 5..60 and dividing an hour */
#define STATE_FILE_DEFAULT "/var/lib/fabgrid/balancer-state.json"

static void settings_default(struct bal_settings *s)
{
    *s = (struct bal_settings){ .interval_s = 10, .slot_min = 15, .horizon_h = 36, .stale_after_s = 30,
                                .surplus_margin_w = 100, .surplus_delay_s = 300, .hysteresis_w = 200,
                                .replan_margin_w = 1000, .confirm_timeout_s = 15, .confirm_retries = 2,
                                .confirm_power_w = 50 };
    fg_strlcpy(s->state_file, STATE_FILE_DEFAULT, sizeof s->state_file);
    fg_strlcpy(s->forecast_topic, "forecast/pv", sizeof s->forecast_topic);
}

/* The daemon's keys: where its state lives, when it re-plans, how it confirms commands. */
static void balancer_daemon_keys(struct fg_cfg *c, const cJSON *b, struct bal_settings *s)
{
    char file[sizeof s->state_file];
    long timeout_s, retries;
    if (fg_cfg_strbuf(c, b, "balancer", "state_file", false, STATE_FILE_DEFAULT, file, sizeof file) == 0 &&
        fg_cfg_resolve(c, file, s->state_file, sizeof s->state_file) < 0)
        fg_cfg_errorf(c, cJSON_GetObjectItemCaseSensitive(b, "state_file"), "balancer.state_file",
                      "path too long (at most %zu bytes after joining the config's directory)",
                      sizeof s->state_file - 1);
    fg_cfg_num(c, b, "balancer", "replan_margin_w", false, 0, 1e6, 1000, &s->replan_margin_w);
    fg_cfg_int(c, b, "balancer", "confirm_timeout_s", false, 1, 600, 15, &timeout_s);
    fg_cfg_int(c, b, "balancer", "confirm_retries", false, 0, 10, 2, &retries);
    fg_cfg_num(c, b, "balancer", "confirm_power_w", false, 0, 1e5, 50, &s->confirm_power_w);
    if (fg_cfg_strbuf(c, b, "balancer", "forecast_topic", false, "forecast/pv", s->forecast_topic,
                      sizeof s->forecast_topic) == 0)
        topic_plain(c, b, "balancer", "forecast_topic", s->forecast_topic);
    s->confirm_timeout_s = (unsigned)timeout_s;
    s->confirm_retries = (unsigned)retries;
}

static void sec_balancer(struct loader *L)
{
    struct fg_cfg *c = L->c;
    struct bal_settings *s = &L->cfg->set;
    const cJSON *b;
    long interval_s, slot_min, horizon_h, stale_after_s, delay_s;
    settings_default(s);
    if (fg_cfg_container(c, L->root, NULL, "balancer", false, cJSON_Object, &b) != 0)
        return;
    fg_cfg_known_keys(c, b, "balancer", balancer_keys);
    fg_cfg_int(c, b, "balancer", "interval_s", false, 1, 3600, 10, &interval_s);
    fg_cfg_int_oneof(c, b, "balancer", "slot_min", false, slot_mins, sizeof slot_mins / sizeof slot_mins[0], 15,
                     &slot_min);
    fg_cfg_int(c, b, "balancer", "horizon_h", false, 1, 72, 36, &horizon_h);
    fg_cfg_int(c, b, "balancer", "stale_after_s", false, 5, 3600, 30, &stale_after_s);
    fg_cfg_num(c, b, "balancer", "surplus_margin_w", false, 0, 1e5, 100, &s->surplus_margin_w);
    fg_cfg_int(c, b, "balancer", "surplus_delay_s", false, 0, 3600, 300, &delay_s);
    fg_cfg_num(c, b, "balancer", "hysteresis_w", false, 0, 1e5, 200, &s->hysteresis_w);
    s->interval_s = (unsigned)interval_s;
    s->slot_min = (unsigned)slot_min;
    s->horizon_h = (unsigned)horizon_h;
    s->stale_after_s = (unsigned)stale_after_s;
    s->surplus_delay_s = (unsigned)delay_s;
    balancer_daemon_keys(c, b, s);
}

/* ---- loading ---- */

/* The collector's sections are known keys here, so that one file serves both daemons. */
static const char *const top_keys[] = { "site", "mqtt", "influx", "buses", "devices", "mqtt_devices",
                                        "machines", "jobs", "balancer", "sim", "profile_dir", NULL };

/* Machines come before jobs whatever the file's order (jobs refer to them); errors are sorted into
 * document order afterwards. */
static void load_root(struct loader *L)
{
    for (const cJSON *it = L->root->child; it; it = it->next)
        fg_cfg_check_key(L->c, L->root, it, NULL, top_keys);
    fg_site_parse(L->c, L->root, &L->cfg->site);
    fg_mqtt_parse(L->c, L->root, &L->cfg->mqtt);
    sec_machines(L);
    sec_jobs(L);
    sec_balancer(L);
}

struct bal_config *bal_config_load(const char *path, char *err, size_t errlen)
{
    struct loader L = { .c = fg_cfg_new(path) };
    cJSON *root = fg_cfg_parse_file(L.c);
    L.cfg = fg_calloc(1, sizeof *L.cfg);
    L.cfg->file = fg_strdup(path);
    L.root = root;
    if (root && !cJSON_IsObject(root))
        fg_cfg_errorf(L.c, root, NULL, "must be a JSON object, got %s", fg_cfg_got_kind(root));
    else if (root)
        load_root(&L);
    fg_cfg_sort(L.c, root);
    cJSON_Delete(root);
    if (err && errlen)
        fg_strlcpy(err, fg_cfg_errors(L.c), errlen);
    if (fg_cfg_nerrors(L.c) > 0) {
        bal_config_free(L.cfg);
        L.cfg = NULL;
    }
    fg_cfg_free(L.c);
    return L.cfg;
}

void bal_config_free(struct bal_config *c)
{
    if (!c)
        return;
    fg_mqtt_cfg_clear(&c->mqtt);
    free(c->machines);
    free(c->act);
    free(c->meter);
    free(c->shutdown);
    free(c->jobs);
    free(c->file);
    free(c);
}

/* ---- local calendar ---- */

void bal_tz_apply(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

/* The second containing t_ms (floor, also before 1970). */
static time_t to_time(int64_t t_ms)
{
    int64_t s = t_ms / 1000;
    return (time_t)(t_ms % 1000 < 0 ? s - 1 : s);
}

static void local_tm(int64_t t_ms, struct tm *tm)
{
    time_t t = to_time(t_ms);
    localtime_r(&t, tm);
}

static long offset_s_at(time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    return tm.tm_gmtoff;
}

int bal_weekday(int64_t t_ms)
{
    struct tm tm;
    local_tm(t_ms, &tm);
    return (tm.tm_wday + 6) % 7;
}

int bal_local_minute(int64_t t_ms)
{
    struct tm tm;
    local_tm(t_ms, &tm);
    return tm.tm_hour * 60 + tm.tm_min;
}

/* Local wall time wall (seconds, as if the zone were UTC) to unix time. Not mktime: glibc's mktime
 * resolves a repeated hour (fall back) depending on its previous calls. Offsets are sampled a day
 * before and after, so that both sides of a change are seen. A wall time that occurs twice gives
 * the earlier instant; one that does not occur (spring forward) is read in the offset before the
 * change, as mktime does with tm_isdst = -1 (02:30 CET = 03:30 CEST). */
static time_t wall_to_unix(time_t wall)
{
    long offs[3] = { offset_s_at(wall - 86400), offset_s_at(wall), offset_s_at(wall + 86400) };
    time_t best = 0;
    bool found = false;
    for (int i = 0; i < 3; i++) {
        time_t t = wall - offs[i];
        if (offset_s_at(t) == offs[i] && (!found || t < best)) {
            best = t;
            found = true;
        }
    }
    return found ? best : wall - offs[0];
}

int64_t bal_local_at(int64_t day_ms, int minute)
{
    struct tm tm;
    local_tm(day_ms, &tm);
    tm.tm_hour = minute / 60;
    tm.tm_min = minute % 60;
    tm.tm_sec = 0;
    return (int64_t)wall_to_unix(timegm(&tm)) * 1000; /* timegm normalises 24:00 to the next day */
}

/* A zone that skips midnight (America/Sao_Paulo until 2018) starts that day when the clocks jump,
 * which is what 00:00 read in the old offset gives. */
int64_t bal_local_midnight(int64_t t_ms)
{
    return bal_local_at(t_ms, 0);
}

/* ---- windows ---- */

/* Whether local minutes [from, to) of weekday wd lie in the union of m's windows. */
static bool covered(const struct bal_machine *m, int wd, int from, int to)
{
    int cur = from;
    while (cur < to) {
        int reach = cur;
        for (size_t i = 0; i < m->nwindows; i++) {
            const struct bal_window *w = &m->windows[i];
            if ((w->days_mask >> wd & 1) && w->from_min <= cur && cur < w->to_min && w->to_min > reach)
                reach = w->to_min;
        }
        if (reach == cur)
            return false;
        cur = reach;
    }
    return true;
}

/* A span of at most 60 minutes: contiguous local minutes unless the offset changes inside it. */
static bool span_allowed(const struct bal_machine *m, int64_t t_ms, int span_min)
{
    struct tm a, b;
    local_tm(t_ms, &a);
    local_tm(t_ms + (span_min - 1) * MS_PER_MIN, &b);
    if (a.tm_gmtoff == b.tm_gmtoff) {
        int wd = (a.tm_wday + 6) % 7, start = a.tm_hour * 60 + a.tm_min, end = start + span_min;
        if (end <= MIN_PER_DAY)
            return covered(m, wd, start, end);
        return covered(m, wd, start, MIN_PER_DAY) && covered(m, (wd + 1) % 7, 0, end - MIN_PER_DAY);
    }
    for (int k = 0; k < span_min; k++) { /* a DST change: check each minute's own local time */
        int64_t at = t_ms + k * MS_PER_MIN;
        if (!covered(m, bal_weekday(at), bal_local_minute(at), bal_local_minute(at) + 1))
            return false;
    }
    return true;
}

bool bal_machine_allowed(const struct bal_machine *m, int64_t t_ms, int slot_min)
{
    if (m->nwindows == 0)
        return true;
    for (int off = 0; off < slot_min; off += 60) {
        int span = slot_min - off < 60 ? slot_min - off : 60;
        if (!span_allowed(m, t_ms + off * MS_PER_MIN, span))
            return false;
    }
    return true;
}

/* ---- job occurrences ---- */

static double job_energy_wh(const struct bal_config *c, const struct bal_job_cfg *j)
{
    return j->duration_min ? j->duration_min * c->machines[j->machine].power_w / 60 : j->energy_wh;
}

static void occurrence(const struct bal_config *c, size_t j, int64_t e_ms, int64_t d_ms, const char *date,
                       struct bal_job *o)
{
    const struct bal_job_cfg *jc = &c->jobs[j];
    memset(o, 0, sizeof *o);
    if (date)
        snprintf(o->id, sizeof o->id, "%s@%s", jc->id, date);
    else
        fg_strlcpy(o->id, jc->id, sizeof o->id);
    o->cfg = j;
    o->machine = jc->machine;
    o->earliest_ms = e_ms;
    o->deadline_ms = d_ms;
    o->energy_wh = job_energy_wh(c, jc);
    o->required = jc->required;
    o->surplus_only = jc->surplus_only;
}

static int by_earliest(const void *pa, const void *pb)
{
    const struct bal_job *a = pa, *b = pb;
    if (a->earliest_ms != b->earliest_ms)
        return a->earliest_ms < b->earliest_ms ? -1 : 1;
    return (a->cfg > b->cfg) - (a->cfg < b->cfg);
}

/* The recurring jobs' occurrences on the local day starting at day_ms. */
static size_t expand_day(const struct bal_config *c, int64_t day_ms, int64_t from_ms, int64_t to_ms,
                         struct bal_job *out, size_t n, size_t cap)
{
    struct tm tm;
    char date[16];
    int wd = bal_weekday(day_ms);
    local_tm(day_ms, &tm);
    strftime(date, sizeof date, "%Y-%m-%d", &tm);
    for (size_t j = 0; j < c->njobs && n < cap; j++) {
        const struct bal_job_cfg *jc = &c->jobs[j];
        if (!(jc->days_mask >> wd & 1))
            continue;
        int64_t e_ms = bal_local_at(day_ms, jc->earliest_min), d_ms = bal_local_at(day_ms, jc->deadline_min);
        if (e_ms < to_ms && d_ms > from_ms)
            occurrence(c, j, e_ms, d_ms, date, &out[n++]);
    }
    return n;
}

size_t bal_jobs_expand(const struct bal_config *c, int64_t from_ms, int64_t to_ms, struct bal_job *out, size_t cap)
{
    size_t n = 0;
    for (size_t j = 0; j < c->njobs && n < cap; j++) {
        const struct bal_job_cfg *jc = &c->jobs[j];
        if (!jc->days_mask && jc->once_earliest_ms < to_ms && jc->once_deadline_ms > from_ms)
            occurrence(c, j, jc->once_earliest_ms, jc->once_deadline_ms, NULL, &out[n++]);
    }
    /* a day of 23..25 hours: 26 h after its midnight is always within the next day */
    for (int64_t day = bal_local_midnight(from_ms); day < to_ms && n < cap;
         day = bal_local_midnight(day + 26 * 60 * MS_PER_MIN))
        n = expand_day(c, day, from_ms, to_ms, out, n, cap);
    if (n > 1)
        qsort(out, n, sizeof *out, by_earliest);
    return n;
}
