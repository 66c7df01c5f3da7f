/* col_config: loads the collector's part of a site config. Top-level sections are handled in
 * the order they appear (so that "first at" in duplicate-id messages means first in the file);
 * cross-references (a device's bus) are looked up in the document itself, so order never matters
 * for them. Errors are sorted into document order before they are returned. */
#include "col_config.h"

#include "col_bus.h"
#include "col_profile.h"
#include "fg_mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FG_PROFILE_DIR
#define FG_PROFILE_DIR "/usr/local/share/fabgrid/profiles"
#endif

#define ID_NS "id" /* buses, devices and mqtt_devices share one id namespace */

struct profile_cache {
    char *file;
    struct col_point *points; /* NULL when the profile failed (its errors were reported once) */
    size_t npoints;
    int max_gap;
};

struct loader {
    struct fg_cfg *c;
    struct col_config *cfg;
    const cJSON *root;
    struct profile_cache *cache;
    size_t ncache;
    bool *unit_ok;            /* per device: bus and unit valid, for the duplicate-unit check */
};

/* ---- buses ---- */

static const char *const bus_keys[] = { "id", "type", "host", "port", "device", "baud", "parity",
                                        "data_bits", "stop_bits", "frame_gap_ms", NULL };
static const char *const bus_type_names[] = { "tcp", "rtu", "rtu-over-tcp", NULL };
_Static_assert(COL_BUS_TCP == 0 && COL_BUS_RTU == 1 && COL_BUS_RTU_OVER_TCP == 2,
               "bus_type_names follows enum col_bus_type");
static const char *const parity_names[] = { "N", "E", "O", NULL };
static const long bauds[] = { 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200 };
static const long data_bits_allowed[] = { 7, 8 };
static const long stop_bits_allowed[] = { 1, 2 };

static int bus_net(struct fg_cfg *c, const cJSON *b, const char *path, struct col_bus_cfg *out)
{
    static const char *const serial_only[] = { "device", "baud", "parity", "data_bits", "stop_bits", NULL };
    long port;
    int bad = 0;
    bad += fg_cfg_strbuf(c, b, path, "host", true, NULL, out->host, sizeof out->host) < 0;
    bad += fg_cfg_int(c, b, path, "port", false, 1, 65535, 502, &port) < 0;
    out->port = (int)port;
    for (size_t i = 0; serial_only[i]; i++)
        bad += fg_cfg_only_for(c, b, path, serial_only[i], "type rtu") < 0;
    return bad ? -1 : 0;
}

static int bus_serial(struct fg_cfg *c, const cJSON *b, const char *path, struct col_bus_cfg *out)
{
    long baud, data_bits, stop_bits;
    int parity, bad = 0;
    bad += fg_cfg_strbuf(c, b, path, "device", true, NULL, out->device, sizeof out->device) < 0;
    bad += fg_cfg_int_oneof(c, b, path, "baud", false, bauds, sizeof bauds / sizeof bauds[0], 9600, &baud) < 0;
    bad += fg_cfg_enum(c, b, path, "parity", false, parity_names, 0, &parity) < 0;
    bad += fg_cfg_int_oneof(c, b, path, "data_bits", false, data_bits_allowed, 2, 8, &data_bits) < 0;
    bad += fg_cfg_int_oneof(c, b, path, "stop_bits", false, stop_bits_allowed, 2, 1, &stop_bits) < 0;
    bad += fg_cfg_only_for(c, b, path, "host", "types tcp and rtu-over-tcp") < 0;
    bad += fg_cfg_only_for(c, b, path, "port", "types tcp and rtu-over-tcp") < 0;
    out->baud = (int)baud;
    out->parity = parity_names[parity][0];
    out->data_bits = (int)data_bits;
    out->stop_bits = (int)stop_bits;
    return bad ? -1 : 0;
}

static int parse_bus(struct fg_cfg *c, const cJSON *b, const char *path, struct col_bus_cfg *out)
{
    long gap_ms;
    int type, bad = 0;
    *out = (struct col_bus_cfg){ .type = COL_BUS_TCP, .port = 502, .baud = 9600, .parity = 'N',
                                 .data_bits = 8, .stop_bits = 1 };
    if (!cJSON_IsObject(b)) {
        fg_cfg_errorf(c, b, path, "must be an object, got %s", fg_cfg_got_kind(b));
        return -1;
    }
    bad += fg_cfg_known_keys(c, b, path, bus_keys) > 0;
    bad += fg_cfg_id(c, b, path, "id", true, ID_NS, out->id, sizeof out->id) < 0;
    if (fg_cfg_enum(c, b, path, "type", true, bus_type_names, COL_BUS_TCP, &type) < 0)
        return -1; /* which other keys belong here depends on the type */
    out->type = type;
    bad += (type == COL_BUS_RTU ? bus_serial(c, b, path, out) : bus_net(c, b, path, out)) < 0;
    /* a serial line needs a quiet gap between frames; a TCP server does not */
    bad += fg_cfg_int(c, b, path, "frame_gap_ms", false, 0, 1000, type == COL_BUS_TCP ? 0 : 5, &gap_ms) < 0;
    out->frame_gap_ms = (unsigned)gap_ms;
    return bad ? -1 : 0;
}

static int sec_buses(struct loader *L, const cJSON *arr)
{
    const cJSON *b;
    size_t i = 0;
    int bad = 0;
    L->cfg->buses = fg_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *L->cfg->buses);
    cJSON_ArrayForEach(b, arr) {
        char path[FG_CFG_PATH_MAX];
        bad += parse_bus(L->c, b, fg_cfg_path(path, sizeof path, "buses", (long)i, NULL), &L->cfg->buses[i]) < 0;
        i++;
    }
    L->cfg->nbuses = i;
    return bad ? -1 : 0;
}

/* ---- devices ---- */

static const char *const device_keys[] = { "id", "bus", "unit", "profile", "role", "poll_ms", "timeout_ms",
                                           "max_gap", NULL };

/* Index of the bus named id in the document's "buses" (also when buses come later in the file),
 * or -1; *tcp tells whether it is a plain TCP bus (units 0..255 are valid there). */
static long find_bus(const cJSON *root, const char *id, bool *tcp)
{
    const cJSON *buses = cJSON_GetObjectItemCaseSensitive(root, "buses"), *b;
    long i = 0;
    if (!cJSON_IsArray(buses))
        return -1;
    cJSON_ArrayForEach(b, buses) {
        const cJSON *bid = cJSON_GetObjectItemCaseSensitive(b, "id");
        if (cJSON_IsString(bid) && strcmp(bid->valuestring, id) == 0) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "type");
            *tcp = cJSON_IsString(t) && strcmp(t->valuestring, "tcp") == 0;
            return i;
        }
        i++;
    }
    return -1;
}

static int device_bus_unit(struct loader *L, const cJSON *d, const char *path, struct col_device_cfg *out)
{
    char kp[FG_CFG_PATH_MAX];
    const char *name;
    bool tcp = false;
    long bus = -1, unit;
    int rc = fg_cfg_str(L->c, d, path, "bus", true, FG_CFG_ID_MAX, NULL, &name);
    if (rc == 0) {
        bus = find_bus(L->root, name, &tcp);
        if (bus < 0)
            fg_cfg_errorf(L->c, cJSON_GetObjectItemCaseSensitive(d, "bus"),
                          fg_cfg_path(kp, sizeof kp, path, -1, "bus"), "no bus with id \"%s\"", name);
    }
    out->bus = bus < 0 ? (size_t)-1 : (size_t)bus;
    rc = fg_cfg_int(L->c, d, path, "unit", true, tcp ? 0 : 1, tcp ? 255 : 247, 1, &unit);
    out->unit = (int)unit;
    return bus >= 0 && rc == 0 ? 0 : -1;
}

/* Units are unique per bus: two devices answering the same address would mix their readings.
 * Called only after device_bus_unit found the bus, so d's "bus" is a string. */
static int device_unit_unique(struct loader *L, const cJSON *d, const char *path, size_t i)
{
    const struct col_device_cfg *devs = L->cfg->devices;
    char kp[FG_CFG_PATH_MAX];
    for (size_t j = 0; j < i; j++)
        if (L->unit_ok[j] && devs[j].bus == devs[i].bus && devs[j].unit == devs[i].unit) {
            fg_cfg_errorf(L->c, cJSON_GetObjectItemCaseSensitive(d, "unit"),
                          fg_cfg_path(kp, sizeof kp, path, -1, "unit"),
                          "duplicate unit %d on bus \"%s\" (first at devices[%zu].unit)", devs[i].unit,
                          cJSON_GetObjectItemCaseSensitive(d, "bus")->valuestring, j);
            return -1;
        }
    L->unit_ok[i] = true;
    return 0;
}

/* A profile is loaded once per file, whatever the number of devices using it. */
static struct profile_cache *profile_get(struct loader *L, const char *file, const cJSON *at)
{
    struct profile_cache *pc;
    struct fg_cfg *tmp;
    for (size_t i = 0; i < L->ncache; i++)
        if (strcmp(L->cache[i].file, file) == 0)
            return &L->cache[i];
    L->cache = fg_realloc(L->cache, (L->ncache + 1) * sizeof *L->cache);
    pc = &L->cache[L->ncache++];
    pc->file = fg_strdup(file);
    tmp = fg_cfg_new(fg_cfg_file(L->c));
    if (col_profile_load(file, &pc->points, &pc->npoints, &pc->max_gap, tmp) < 0)
        pc->points = NULL;
    fg_cfg_merge(L->c, tmp, at); /* the profile's own errors, placed at the device's "profile" */
    fg_cfg_free(tmp);
    return pc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The profile's file: NAME under the profile directory, or a .json path next to the config. */
static int profile_file(struct loader *L, const cJSON *v, const char *kp, char *file, size_t len)
{
    const char *s = v->valuestring;
    char got[64];
    if (ends_with(s, ".json"))
        return fg_cfg_check_file(L->c, v, kp, s, file, len);
    if (!fg_cfg_is_id(s)) {
        fg_cfg_errorf(L->c, v, kp, "must be \"sunspec\", a profile name or a path ending in .json, got %s",
                      fg_cfg_got_value(v, got, sizeof got));
        return -1;
    }
    snprintf(file, len, "%s/%s.json", L->cfg->profile_dir, s);
    if (access(file, F_OK) != 0) {
        fg_cfg_errorf(L->c, v, kp, "no profile \"%s\" (looked in %s)", s, L->cfg->profile_dir);
        return -1;
    }
    return 0;
}

static int device_profile(struct loader *L, const cJSON *d, const char *path, struct col_device_cfg *out)
{
    char kp[FG_CFG_PATH_MAX], file[FG_CFG_PATH_MAX * 2];
    const struct profile_cache *pc;
    const cJSON *v;
    if (fg_cfg_strbuf(L->c, d, path, "profile", true, NULL, out->profile, sizeof out->profile) != 0)
        return -1;
    if (strcmp(out->profile, "sunspec") == 0) {
        out->sunspec = true;
        return 0;
    }
    v = cJSON_GetObjectItemCaseSensitive(d, "profile");
    if (profile_file(L, v, fg_cfg_path(kp, sizeof kp, path, -1, "profile"), file, sizeof file) < 0)
        return -1;
    pc = profile_get(L, file, v);
    if (!pc->points)
        return -1;
    out->points = fg_malloc(pc->npoints * sizeof *pc->points);
    memcpy(out->points, pc->points, pc->npoints * sizeof *pc->points);
    out->npoints = pc->npoints;
    if (pc->max_gap >= 0)
        out->max_gap = (unsigned)pc->max_gap;
    return 0;
}

static int device_timing(struct fg_cfg *c, const cJSON *d, const char *path, struct col_device_cfg *out)
{
    long poll_ms, timeout_ms, max_gap;
    int bad = 0;
    bad += fg_cfg_int(c, d, path, "poll_ms", false, 100, 3600000, 1000, &poll_ms) < 0;
    bad += fg_cfg_int(c, d, path, "timeout_ms", false, 10, 60000, 1000, &timeout_ms) < 0;
    /* default: what the profile says, else 16 */
    bad += fg_cfg_int(c, d, path, "max_gap", false, 0, 125, out->max_gap, &max_gap) < 0;
    out->poll_ms = (unsigned)poll_ms;
    out->timeout_ms = (unsigned)timeout_ms;
    out->max_gap = (unsigned)max_gap;
    return bad ? -1 : 0;
}

static int parse_device(struct loader *L, const cJSON *d, const char *path, size_t i)
{
    struct col_device_cfg *out = &L->cfg->devices[i];
    int role, bad = 0;
    out->bus = (size_t)-1;
    out->max_gap = 16;
    if (!cJSON_IsObject(d)) {
        fg_cfg_errorf(L->c, d, path, "must be an object, got %s", fg_cfg_got_kind(d));
        return -1;
    }
    bad += fg_cfg_known_keys(L->c, d, path, device_keys) > 0;
    bad += fg_cfg_id(L->c, d, path, "id", true, ID_NS, out->id, sizeof out->id) < 0;
    if (device_bus_unit(L, d, path, out) == 0)
        bad += device_unit_unique(L, d, path, i) < 0;
    else
        bad++;
    bad += device_profile(L, d, path, out) < 0;
    bad += fg_cfg_enum(L->c, d, path, "role", true, fg_role_names(), FG_ROLE_LOAD, &role) < 0;
    out->role = (enum fg_role)role;
    bad += device_timing(L->c, d, path, out) < 0;
    return bad ? -1 : 0;
}

static int sec_devices(struct loader *L, const cJSON *arr)
{
    const cJSON *d;
    size_t i = 0, n = (size_t)cJSON_GetArraySize(arr);
    int bad = 0;
    L->cfg->devices = fg_calloc(n + 1, sizeof *L->cfg->devices);
    L->unit_ok = fg_calloc(n + 1, sizeof *L->unit_ok);
    cJSON_ArrayForEach(d, arr) {
        char path[FG_CFG_PATH_MAX];
        bad += parse_device(L, d, fg_cfg_path(path, sizeof path, "devices", (long)i, NULL), i) < 0;
        L->cfg->ndevices = ++i;
    }
    return bad ? -1 : 0;
}

/* ---- devices that report over MQTT ---- */

static const char *const mqtt_device_keys[] = { "id", "preset", "topic", "role", "interval_s", "serial",
                                                "fields", NULL };
static const char *const preset_names[] = { "shelly-gen2", "tasmota", "opendtu", "generic", NULL };
static const char *const field_keys[] = { "field", "pointer", "scale", NULL };

static int field_names(struct fg_cfg *c, const cJSON *f, const char *path, struct col_mqtt_field *fs, size_t i)
{
    char kp[FG_CFG_PATH_MAX], got[64];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, "field");
    int bad = 0;
    if (fg_cfg_strbuf(c, f, path, "field", true, NULL, fs[i].field, sizeof fs[i].field) == 0) {
        fg_cfg_path(kp, sizeof kp, path, -1, "field");
        if (!col_profile_name_ok(fs[i].field)) {
            fg_cfg_errorf(c, v, kp, "must match " COL_PROFILE_NAME_PATTERN ", got %s", fg_cfg_got_value(v, got, sizeof got));
            bad++;
        }
        for (size_t j = 0; j < i && !bad; j++)
            if (strcmp(fs[j].field, fs[i].field) == 0) {
                fg_cfg_errorf(c, v, kp, "duplicate field \"%s\" (first at fields[%zu].field)", fs[i].field, j);
                bad++;
            }
    } else {
        bad++;
    }
    return bad ? -1 : 0;
}

static int parse_field(struct fg_cfg *c, const cJSON *f, const char *path, struct col_mqtt_field *fs, size_t i)
{
    char kp[FG_CFG_PATH_MAX], got[64];
    int bad = 0;
    fs[i].scale = 1;
    if (!cJSON_IsObject(f)) {
        fg_cfg_errorf(c, f, path, "must be an object, got %s", fg_cfg_got_kind(f));
        return -1;
    }
    bad += fg_cfg_known_keys(c, f, path, field_keys) > 0;
    bad += field_names(c, f, path, fs, i) < 0;
    /* "" is the whole payload (devices that publish a bare number) */
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(f, "pointer");
    int rc = cJSON_IsString(pv) && !pv->valuestring[0]
                 ? (fs[i].pointer[0] = '\0', 0)
                 : fg_cfg_strbuf(c, f, path, "pointer", true, NULL, fs[i].pointer, sizeof fs[i].pointer);
    if (rc < 0) {
        bad++;
    } else if (fs[i].pointer[0] && fs[i].pointer[0] != '/') {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, "pointer");
        fg_cfg_errorf(c, v, fg_cfg_path(kp, sizeof kp, path, -1, "pointer"),
                      "must be a JSON pointer: \"\" or starting with \"/\", got %s",
                      fg_cfg_got_value(v, got, sizeof got));
        bad++;
    }
    bad += fg_cfg_num(c, f, path, "scale", false, -1e9, 1e9, 1, &fs[i].scale) < 0;
    if (fs[i].scale == 0) {
        fg_cfg_errorf(c, cJSON_GetObjectItemCaseSensitive(f, "scale"), fg_cfg_path(kp, sizeof kp, path, -1, "scale"),
                      "must not be 0");
        bad++;
    }
    return bad ? -1 : 0;
}

static int mqtt_device_fields(struct fg_cfg *c, const cJSON *d, const char *path, struct col_mqtt_device_cfg *out)
{
    char kp[FG_CFG_PATH_MAX];
    const cJSON *arr, *f;
    int n, bad = 0;
    if (fg_cfg_container(c, d, path, "fields", true, cJSON_Array, &arr) != 0)
        return -1;
    n = cJSON_GetArraySize(arr);
    if (n < 1 || n > COL_MQTT_FIELDS_MAX) {
        fg_cfg_errorf(c, arr, fg_cfg_path(kp, sizeof kp, path, -1, "fields"), "must have 1..%d entries, got %d",
                      COL_MQTT_FIELDS_MAX, n);
        return -1;
    }
    fg_cfg_path(kp, sizeof kp, path, -1, "fields");
    cJSON_ArrayForEach(f, arr) {
        char fp[FG_CFG_PATH_MAX];
        bad += parse_field(c, f, fg_cfg_path(fp, sizeof fp, kp, (long)out->nfields, NULL), out->fields,
                           out->nfields) < 0;
        out->nfields++;
    }
    return bad ? -1 : 0;
}

/* The topic is subscribed as the device's own base: wildcards would merge devices. */
static int mqtt_device_topic(struct fg_cfg *c, const cJSON *d, const char *path, struct col_mqtt_device_cfg *out)
{
    char kp[FG_CFG_PATH_MAX], got[64];
    if (fg_cfg_strbuf(c, d, path, "topic", true, NULL, out->topic, sizeof out->topic) != 0)
        return -1;
    if (!strpbrk(out->topic, "+#"))
        return 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, "topic");
    fg_cfg_errorf(c, v, fg_cfg_path(kp, sizeof kp, path, -1, "topic"), "must not contain '+' or '#', got %s",
                  fg_cfg_got_value(v, got, sizeof got));
    return -1;
}

static int parse_mqtt_device(struct fg_cfg *c, const cJSON *d, const char *path, struct col_mqtt_device_cfg *out)
{
    long interval_s;
    int preset, role, bad = 0;
    if (!cJSON_IsObject(d)) {
        fg_cfg_errorf(c, d, path, "must be an object, got %s", fg_cfg_got_kind(d));
        return -1;
    }
    bad += fg_cfg_known_keys(c, d, path, mqtt_device_keys) > 0;
    bad += fg_cfg_id(c, d, path, "id", true, ID_NS, out->id, sizeof out->id) < 0;
    bad += mqtt_device_topic(c, d, path, out) < 0;
    bad += fg_cfg_enum(c, d, path, "role", false, fg_role_names(), FG_ROLE_LOAD, &role) < 0;
    bad += fg_cfg_int(c, d, path, "interval_s", false, 1, 86400, 30, &interval_s) < 0;
    out->role = (enum fg_role)role;
    out->interval_s = (unsigned)interval_s;
    if (fg_cfg_enum(c, d, path, "preset", true, preset_names, COL_PRESET_GENERIC, &preset) < 0)
        return -1; /* serial and fields depend on the preset */
    out->preset = preset;
    if (preset == COL_PRESET_OPENDTU)
        bad += fg_cfg_strbuf(c, d, path, "serial", true, NULL, out->serial, sizeof out->serial) < 0;
    else
        bad += fg_cfg_only_for(c, d, path, "serial", "preset opendtu") < 0;
    if (preset == COL_PRESET_GENERIC)
        bad += mqtt_device_fields(c, d, path, out) < 0;
    else
        bad += fg_cfg_only_for(c, d, path, "fields", "preset generic") < 0;
    return bad ? -1 : 0;
}

static int sec_mqtt_devices(struct loader *L, const cJSON *arr)
{
    const cJSON *d;
    size_t i = 0;
    int bad = 0;
    L->cfg->mqtt_devices = fg_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *L->cfg->mqtt_devices);
    cJSON_ArrayForEach(d, arr) {
        char path[FG_CFG_PATH_MAX];
        bad += parse_mqtt_device(L->c, d, fg_cfg_path(path, sizeof path, "mqtt_devices", (long)i, NULL),
                                 &L->cfg->mqtt_devices[i]) < 0;
        L->cfg->nmqtt_devices = ++i;
    }
    return bad ? -1 : 0;
}

/* ---- influx ---- */

static const char *const influx_keys[] = { "url", "api", "database", "rp", "username", "password_file", "org",
                                           "bucket", "token_file", "spool_dir", "spool_max_mb", "flush_s",
                                           "batch_max", NULL };
static const char *const influx_apis[] = { "v1", "v2", NULL };

static int influx_url(struct fg_cfg *c, const cJSON *v1, struct fg_influx_cfg *out)
{
    char got[64];
    const char *u = out->url;
    if (fg_cfg_strbuf(c, v1, "influx", "url", true, NULL, out->url, sizeof out->url) != 0)
        return -1;
    if ((strncmp(u, "http://", 7) == 0 && u[7]) || (strncmp(u, "https://", 8) == 0 && u[8]))
        return 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(v1, "url");
    fg_cfg_errorf(c, v, "influx.url", "must start with http:// or https://, got %s", fg_cfg_got_value(v, got, sizeof got));
    return -1;
}

/* A secret file key; required or not, read into *out. */
static int influx_secret(struct fg_cfg *c, const cJSON *o, const char *key, bool required, char **out)
{
    char kp[FG_CFG_PATH_MAX];
    const char *file;
    int rc = fg_cfg_str(c, o, "influx", key, required, 255, NULL, &file);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    return fg_cfg_read_secret(c, cJSON_GetObjectItemCaseSensitive(o, key), fg_cfg_path(kp, sizeof kp, "influx", -1, key),
                              file, out);
}

static int influx_v1(struct fg_cfg *c, const cJSON *o, struct fg_influx_cfg *out)
{
    int bad = 0;
    bad += fg_cfg_strbuf(c, o, "influx", "database", true, NULL, out->database, sizeof out->database) < 0;
    bad += fg_cfg_strbuf(c, o, "influx", "rp", false, NULL, out->rp, sizeof out->rp) < 0;
    bad += fg_cfg_strbuf(c, o, "influx", "username", false, NULL, out->username, sizeof out->username) < 0;
    if (!out->username[0] && cJSON_GetObjectItemCaseSensitive(o, "password_file")) {
        fg_cfg_errorf(c, cJSON_GetObjectItemCaseSensitive(o, "password_file"), "influx.password_file",
                      "requires \"username\"");
        bad++;
    } else {
        bad += influx_secret(c, o, "password_file", false, &out->password) < 0;
    }
    bad += fg_cfg_only_for(c, o, "influx", "org", "api v2") < 0;
    bad += fg_cfg_only_for(c, o, "influx", "bucket", "api v2") < 0;
    bad += fg_cfg_only_for(c, o, "influx", "token_file", "api v2") < 0;
    return bad ? -1 : 0;
}

static int influx_v2(struct fg_cfg *c, const cJSON *o, struct fg_influx_cfg *out)
{
    static const char *const v1_only[] = { "database", "rp", "username", "password_file", NULL };
    int bad = 0;
    bad += fg_cfg_strbuf(c, o, "influx", "org", true, NULL, out->org, sizeof out->org) < 0;
    bad += fg_cfg_strbuf(c, o, "influx", "bucket", true, NULL, out->bucket, sizeof out->bucket) < 0;
    bad += influx_secret(c, o, "token_file", true, &out->token) < 0;
    for (size_t i = 0; v1_only[i]; i++)
        bad += fg_cfg_only_for(c, o, "influx", v1_only[i], "api v1") < 0;
    return bad ? -1 : 0;
}

static int influx_spool(struct fg_cfg *c, const cJSON *o, struct fg_influx_cfg *out)
{
    char dir[256];
    long flush_s, batch_max;
    double spool_max_mb;
    int bad = 0;
    bad += fg_cfg_strbuf(c, o, "influx", "spool_dir", false, "/var/lib/fabgrid/spool", dir, sizeof dir) < 0;
    if (fg_cfg_resolve(c, dir, out->spool_dir, sizeof out->spool_dir) < 0) {
        fg_cfg_errorf(c, cJSON_GetObjectItemCaseSensitive(o, "spool_dir"), "influx.spool_dir", "path too long");
        bad++;
    }
    /* fractions are allowed (a few hundred KB for tests and tiny boxes) */
    bad += fg_cfg_num(c, o, "influx", "spool_max_mb", false, 0.01, 1000000, 256, &spool_max_mb) < 0;
    bad += fg_cfg_int(c, o, "influx", "flush_s", false, 1, 3600, 5, &flush_s) < 0;
    bad += fg_cfg_int(c, o, "influx", "batch_max", false, 1, 100000, 5000, &batch_max) < 0;
    out->spool_max_mb = spool_max_mb;
    out->flush_s = (unsigned)flush_s;
    out->batch_max = (unsigned)batch_max;
    return bad ? -1 : 0;
}

static int sec_influx(struct loader *L, const cJSON *o)
{
    struct fg_influx_cfg *out = &L->cfg->influx;
    int api, bad = 0;
    out->enabled = true;
    bad += fg_cfg_known_keys(L->c, o, "influx", influx_keys) > 0;
    bad += influx_url(L->c, o, out) < 0;
    bad += influx_spool(L->c, o, out) < 0;
    if (fg_cfg_enum(L->c, o, "influx", "api", false, influx_apis, 0, &api) < 0)
        return -1;
    out->api = api + 1;
    bad += (api == 0 ? influx_v1(L->c, o, out) : influx_v2(L->c, o, out)) < 0;
    return bad ? -1 : 0;
}

/* ---- top level ---- */

static int sec_site(struct loader *L, const cJSON *v)
{
    (void)v;
    return fg_site_parse(L->c, L->root, &L->cfg->site);
}

static int sec_mqtt(struct loader *L, const cJSON *v)
{
    (void)v;
    return fg_mqtt_parse(L->c, L->root, &L->cfg->mqtt);
}

/* profile_dir was already used to find profiles (see pick_profile_dir); this only checks it. */
static int sec_profile_dir(struct loader *L, const cJSON *v)
{
    const char *s;
    (void)v;
    return fg_cfg_str(L->c, L->root, NULL, "profile_dir", false, 200, NULL, &s) < 0 ? -1 : 0;
}

/* Sections other programs validate: only their shape is checked here. */
static int sec_other(struct loader *L, const cJSON *v)
{
    (void)L;
    (void)v;
    return 0;
}

struct section {
    const char *key;
    int type;                 /* cJSON_Array, cJSON_Object, or 0: the handler checks */
    int (*parse)(struct loader *L, const cJSON *v);
};

static const struct section sections[] = {
    { "site", 0, sec_site },           { "mqtt", 0, sec_mqtt },
    { "influx", cJSON_Object, sec_influx }, { "buses", cJSON_Array, sec_buses },
    { "devices", cJSON_Array, sec_devices }, { "mqtt_devices", cJSON_Array, sec_mqtt_devices },
    { "machines", cJSON_Array, sec_other }, { "jobs", cJSON_Array, sec_other },
    { "balancer", cJSON_Object, sec_other }, { "sim", cJSON_Object, sec_other },
    { "profile_dir", 0, sec_profile_dir },
};
#define NSECTIONS (sizeof sections / sizeof sections[0])

static const char *const top_keys[] = { "site", "mqtt", "influx", "buses", "devices", "mqtt_devices",
                                        "machines", "jobs", "balancer", "sim", "profile_dir", NULL };

static void run_section(struct loader *L, const cJSON *item)
{
    for (size_t i = 0; i < NSECTIONS; i++) {
        const cJSON *v = item;
        if (strcmp(sections[i].key, item->string) != 0)
            continue;
        if (sections[i].type && fg_cfg_container(L->c, L->root, NULL, item->string, false, sections[i].type, &v) != 0)
            return; /* wrong shape (recorded) or null (absent) */
        sections[i].parse(L, v);
        return;
    }
}

static void pick_profile_dir(struct loader *L, const char *arg)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(L->root, "profile_dir");
    const char *env = getenv("FABGRID_PROFILE_DIR");
    char *dir = L->cfg->profile_dir;
    size_t len = sizeof L->cfg->profile_dir;
    if (arg)
        fg_strlcpy(dir, arg, len);
    else if (cJSON_IsString(v) && v->valuestring[0])
        fg_cfg_resolve(L->c, v->valuestring, dir, len);
    else if (env && env[0])
        fg_strlcpy(dir, env, len);
    else
        fg_strlcpy(dir, FG_PROFILE_DIR, len);
}

static void load_root(struct loader *L, const char *profile_dir)
{
    bool seen_site = false, seen_mqtt = false;
    pick_profile_dir(L, profile_dir);
    for (const cJSON *it = L->root->child; it; it = it->next) {
        if (fg_cfg_check_key(L->c, L->root, it, NULL, top_keys) < 0)
            continue;
        seen_site |= strcmp(it->string, "site") == 0;
        seen_mqtt |= strcmp(it->string, "mqtt") == 0;
        run_section(L, it);
    }
    if (!seen_site)
        fg_site_parse(L->c, L->root, &L->cfg->site); /* records "site: missing (required)" */
    if (!seen_mqtt)
        fg_mqtt_parse(L->c, L->root, &L->cfg->mqtt); /* the defaults */
}

static void loader_done(struct loader *L)
{
    for (size_t i = 0; i < L->ncache; i++) {
        free(L->cache[i].file);
        free(L->cache[i].points);
    }
    free(L->cache);
    free(L->unit_ok);
}

struct col_config *col_config_load(const char *path, const char *profile_dir, char *err, size_t errlen)
{
    struct loader L = { .c = fg_cfg_new(path) };
    cJSON *root = fg_cfg_parse_file(L.c);
    L.cfg = fg_calloc(1, sizeof *L.cfg);
    L.cfg->file = fg_strdup(path);
    L.root = root;
    if (root && !cJSON_IsObject(root))
        fg_cfg_errorf(L.c, root, NULL, "must be a JSON object, got %s", fg_cfg_got_kind(root));
    else if (root)
        load_root(&L, profile_dir);
    fg_cfg_sort(L.c, root);
    loader_done(&L);
    cJSON_Delete(root);
    if (fg_cfg_nerrors(L.c) > 0) {
        if (err && errlen)
            fg_strlcpy(err, fg_cfg_errors(L.c), errlen);
        col_config_free(L.cfg);
        L.cfg = NULL;
    }
    fg_cfg_free(L.c);
    return L.cfg;
}

static void free_secret(char **s)
{
    if (*s) {
        explicit_bzero(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

void col_config_free(struct col_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ndevices; i++)
        free(c->devices[i].points);
    fg_mqtt_cfg_clear(&c->mqtt);
    free_secret(&c->influx.password);
    free_secret(&c->influx.token);
    free(c->devices);
    free(c->buses);
    free(c->mqtt_devices);
    free(c->file);
    free(c);
}
