/* sim_config: the site config as fabgrid-sim sees it, read with the shared fg_cfg checker so that
 * every mistake of the file is reported at once as "FILE: key.path: must be ..., got ...". */
#include "sim_config.h"

#include "fg_cfg.h"
#include "fg_mem.h"
#include "fg_site.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PATH_MAX_LEN 4096

/* Every device and bus id of the file, served or not, so that references can be checked. */
struct known {
    char id[SIM_ID_MAX];
    int index;   /* into the served buses/devices; -1: not served (not on a tcp bus) */
};

struct pctx {
    struct fg_cfg *fc;
    struct sim_config *cfg;
    struct known *bus, *dev;
    size_t nbus, ndev;
    bool has_latlon;
};

static const struct known *find_known(const struct known *k, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k[i].id, id) == 0)
            return &k[i];
    return NULL;
}

static int need_object(struct pctx *c, const cJSON *v, const char *path)
{
    if (cJSON_IsObject(v))
        return 0;
    fg_cfg_errorf(c->fc, v, path, "must be an object, got %s", fg_cfg_got_kind(v));
    return -1;
}

/* fg_cfg_int into an int (ranges here always fit). */
static int get_int(struct pctx *c, const cJSON *o, const char *path, const char *key, bool required,
                   long lo, long hi, int *out)
{
    long v;
    int rc = fg_cfg_int(c->fc, o, path, key, required, lo, hi, *out, &v);
    *out = (int)v;
    return rc < 0 ? -1 : 0;
}

static int get_num(struct pctx *c, const cJSON *o, const char *path, const char *key, double lo,
                   double hi, double *out)
{
    return fg_cfg_num(c->fc, o, path, key, false, lo, hi, *out, out) < 0 ? -1 : 0;
}

/* ---- buses ----
 * Checks are combined with | rather than || where each of them should report its own error. */

static int add_tcp_bus(struct pctx *c, const cJSON *o, const char *path, const char *id)
{
    const char *host;
    int port = 0;
    struct sim_config *cfg = c->cfg;
    if ((fg_cfg_str(c->fc, o, path, "host", true, 255, NULL, &host) < 0) |
        get_int(c, o, path, "port", true, 1, 65535, &port) || !host)
        return -1;
    for (size_t i = 0; i < cfg->nbuses; i++)
        if (cfg->buses[i].port == port && strcmp(cfg->buses[i].host, host) == 0) {
            fg_cfg_errorf(c->fc, cJSON_GetObjectItemCaseSensitive(o, "port"), path,
                          "port %d on %s is already used by bus %s", port, host, cfg->buses[i].id);
            return -1;
        }
    cfg->buses = fg_realloc(cfg->buses, (cfg->nbuses + 1) * sizeof *cfg->buses);
    struct sim_bus *b = &cfg->buses[cfg->nbuses++];
    fg_strlcpy(b->id, id, sizeof b->id);
    fg_strlcpy(b->host, host, sizeof b->host);
    b->port = port;
    return 0;
}

static int parse_bus(struct pctx *c, const cJSON *o, const char *path)
{
    char id[SIM_ID_MAX];
    const char *type;
    if (need_object(c, o, path) ||
        (fg_cfg_id(c->fc, o, path, "id", true, "buses", id, sizeof id) < 0) |
            (fg_cfg_str(c->fc, o, path, "type", true, 32, NULL, &type) < 0))
        return -1;
    struct known *k = &c->bus[c->nbus++];
    fg_strlcpy(k->id, id, sizeof k->id);
    k->index = -1; /* serial buses can't be simulated over TCP: skipped */
    if (strcmp(type, "tcp") != 0)
        return 0;
    k->index = (int)c->cfg->nbuses;
    if (add_tcp_bus(c, o, path, id) == 0)
        return 0;
    k->index = -1;
    return -1;
}

static int parse_buses(struct pctx *c, const cJSON *root)
{
    const cJSON *buses, *o;
    if (fg_cfg_container(c->fc, root, NULL, "buses", true, cJSON_Array, &buses) != 0)
        return -1;
    c->bus = fg_calloc((size_t)cJSON_GetArraySize(buses) + 1, sizeof *c->bus);
    int bad = 0;
    long i = 0;
    cJSON_ArrayForEach(o, buses) {
        char path[FG_CFG_PATH_MAX];
        bad += parse_bus(c, o, fg_cfg_path(path, sizeof path, "buses", i++, NULL)) < 0;
    }
    return bad ? -1 : 0;
}

/* ---- devices ---- */

/* Which simulated device a profile and role make. */
static int device_kind(struct pctx *c, const cJSON *o, const char *path, const char *profile,
                       int role, struct sim_device_params *d)
{
    static const enum sim_role roles[FG_ROLE_COUNT] = {
        [FG_ROLE_PV] = SIM_ROLE_PV, [FG_ROLE_GRID] = SIM_ROLE_GRID, [FG_ROLE_LOAD] = SIM_ROLE_LOAD,
        [FG_ROLE_BATTERY] = SIM_ROLE_NONE, [FG_ROLE_MACHINE] = SIM_ROLE_MACHINE,
    };
    char kp[FG_CFG_PATH_MAX];
    d->role = role >= 0 ? roles[role] : SIM_ROLE_NONE;
    bool meter_role = d->role == SIM_ROLE_GRID || d->role == SIM_ROLE_LOAD || d->role == SIM_ROLE_MACHINE;
    bool sunspec = strcmp(profile, "sunspec") == 0;
    if (strcmp(profile, "relay8") == 0) {
        d->kind = SIM_KIND_RELAY8;
        return 0;
    }
    if (!sunspec && strcmp(profile, "sdm630") != 0 && strcmp(profile, "sdm120") != 0) {
        fg_cfg_errorf(c->fc, cJSON_GetObjectItemCaseSensitive(o, "profile"), fg_cfg_path(kp, sizeof kp, path, -1, "profile"),
                      "fabgrid-sim can't simulate profile \"%.60s\" (it knows sunspec, sdm630, sdm120, relay8)", profile);
        return -1;
    }
    if (!meter_role && !(sunspec && d->role == SIM_ROLE_PV)) {
        fg_cfg_errorf(c->fc, o, fg_cfg_path(kp, sizeof kp, path, -1, "role"),
                      "profile %s needs role %sgrid, load or machine, got %s%s%s", profile,
                      sunspec ? "pv, " : "", role >= 0 ? "\"" : "", role >= 0 ? fg_role_name(role) : "none",
                      role >= 0 ? "\"" : "");
        return -1;
    }
    d->kind = d->role == SIM_ROLE_PV ? SIM_KIND_INVERTER
              : sunspec              ? SIM_KIND_SUNSPEC_METER
              : profile[3] == '6'    ? SIM_KIND_SDM630
                                     : SIM_KIND_SDM120;
    return 0;
}

static int check_unit_free(struct pctx *c, const cJSON *o, const char *path, size_t bus, int unit)
{
    const struct sim_config *cfg = c->cfg;
    char kp[FG_CFG_PATH_MAX];
    for (size_t i = 0; i < cfg->ndevices; i++)
        if (cfg->serve[i].bus == bus && cfg->devices[i].unit == unit) {
            fg_cfg_errorf(c->fc, cJSON_GetObjectItemCaseSensitive(o, "unit"), fg_cfg_path(kp, sizeof kp, path, -1, "unit"),
                          "unit %d is already used by device %s on bus %s", unit, cfg->devices[i].id,
                          cfg->buses[bus].id);
            return -1;
        }
    return 0;
}

static void add_served(struct pctx *c, const struct sim_device_params *d, size_t bus)
{
    struct sim_config *cfg = c->cfg;
    size_t n = cfg->ndevices++;
    cfg->devices = fg_realloc(cfg->devices, cfg->ndevices * sizeof *cfg->devices);
    cfg->serve = fg_realloc(cfg->serve, cfg->ndevices * sizeof *cfg->serve);
    cfg->devices[n] = *d;
    memset(&cfg->serve[n], 0, sizeof cfg->serve[n]);
    cfg->serve[n].bus = bus;
    cfg->serve[n].max_read = 125;
}

static int parse_device(struct pctx *c, const cJSON *o, const char *path)
{
    char id[SIM_ID_MAX], kp[FG_CFG_PATH_MAX];
    const char *bus, *profile;
    int unit = 0, role;
    if (need_object(c, o, path) || (fg_cfg_id(c->fc, o, path, "id", true, "devices", id, sizeof id) < 0) |
                                       (fg_cfg_str(c->fc, o, path, "bus", true, 32, NULL, &bus) < 0))
        return -1;
    const struct known *b = find_known(c->bus, c->nbus, bus);
    if (!b) {
        fg_cfg_errorf(c->fc, cJSON_GetObjectItemCaseSensitive(o, "bus"), fg_cfg_path(kp, sizeof kp, path, -1, "bus"),
                      "unknown bus \"%.60s\"", bus);
        return -1;
    }
    struct known *k = &c->dev[c->ndev++];
    fg_strlcpy(k->id, id, sizeof k->id);
    k->index = -1;
    if (b->index < 0)
        return 0; /* on a serial bus: not simulated */
    if (get_int(c, o, path, "unit", true, 1, 247, &unit) |
        (fg_cfg_str(c->fc, o, path, "profile", true, 64, NULL, &profile) < 0) |
        (fg_cfg_enum(c->fc, o, path, "role", false, fg_role_names(), -1, &role) < 0))
        return -1;
    struct sim_device_params d = { .unit = (uint8_t)unit, .model1_len = 66, .energy_start_wh = 1e6,
                                   .pv = { .scale = 1.0, .kwp = 5.0 } };
    fg_strlcpy(d.id, id, sizeof d.id);
    if (device_kind(c, o, path, profile, role, &d) || check_unit_free(c, o, path, (size_t)b->index, unit))
        return -1;
    k->index = (int)c->cfg->ndevices;
    add_served(c, &d, (size_t)b->index);
    return 0;
}

static int parse_devices(struct pctx *c, const cJSON *root)
{
    const cJSON *devs, *o;
    if (fg_cfg_container(c->fc, root, NULL, "devices", true, cJSON_Array, &devs) != 0)
        return -1;
    c->dev = fg_calloc((size_t)cJSON_GetArraySize(devs) + 1, sizeof *c->dev);
    int bad = 0;
    long i = 0;
    cJSON_ArrayForEach(o, devs) {
        char path[FG_CFG_PATH_MAX];
        bad += parse_device(c, o, fg_cfg_path(path, sizeof path, "devices", i++, NULL)) < 0;
    }
    return bad ? -1 : 0;
}

/* ---- the sim section ---- */

/* A CSV path beside the config file, else relative to the current directory. */
static void csv_path(struct pctx *c, const char *rel, char *full, size_t len)
{
    if (fg_cfg_resolve(c->fc, rel, full, len) < 0 || access(full, R_OK) != 0)
        fg_strlcpy(full, rel, len);
}

/* The site's load profile, read the balancer's way (bal_series: gaps stay gaps). */
static int load_profile(struct pctx *c, const cJSON *at, const char *rel)
{
    char full[PATH_MAX_LEN], e[512];
    csv_path(c, rel, full, sizeof full);
    struct bal_series *s = bal_series_load(full, e, sizeof e);
    if (!s) {
        fg_cfg_errorf(c->fc, at, "sim.load_csv", "%s", e);
        return -1;
    }
    double max = 0;
    for (size_t i = 0; i < s->n; i++)
        if (isfinite(s->value[i]) && s->value[i] > max)
            max = s->value[i];
    c->cfg->load = s;
    c->cfg->site.load = s;
    c->cfg->site.load_max_w = max;
    return 0;
}

/* Loads a PV CSV once however many devices use it. */
static int load_csv(struct pctx *c, const cJSON *at, const char *path, const char *rel,
                    const struct sim_series **out)
{
    char full[PATH_MAX_LEN], e[512];
    struct sim_config *cfg = c->cfg;
    csv_path(c, rel, full, sizeof full);
    for (size_t i = 0; i < cfg->nseries; i++)
        if (strcmp(cfg->series_paths[i], full) == 0) {
            *out = cfg->series[i];
            return 0;
        }
    struct sim_series *s = sim_series_load(full, e, sizeof e);
    if (!s) {
        fg_cfg_errorf(c->fc, at, path, "%s", e);
        return -1;
    }
    cfg->series = fg_realloc(cfg->series, (cfg->nseries + 1) * sizeof *cfg->series);
    cfg->series_paths = fg_realloc(cfg->series_paths, (cfg->nseries + 1) * sizeof *cfg->series_paths);
    cfg->series[cfg->nseries] = s;
    cfg->series_paths[cfg->nseries++] = fg_strdup(full);
    *out = s;
    return 0;
}

static const char *const fault_keys[] = {
    "delay_ms", "drop_every", "exception", "exception_every", "bad_tid_every", "garbage_every",
    "disconnect_after", "dead", NULL
};

static int parse_faults(struct pctx *c, const cJSON *o, const char *path, struct sim_faults *f)
{
    const long every_max = 1000000;
    char kp[FG_CFG_PATH_MAX];
    if (need_object(c, o, path))
        return -1;
    bool dead = false;
    int bad = fg_cfg_known_keys(c->fc, o, path, fault_keys) > 0;
    bad += get_int(c, o, path, "delay_ms", false, 0, 600000, &f->delay_ms) < 0;
    bad += get_int(c, o, path, "drop_every", false, 0, every_max, &f->drop_every) < 0;
    bad += get_int(c, o, path, "exception", false, 1, 11, &f->exception) < 0;
    bad += get_int(c, o, path, "exception_every", false, 0, every_max, &f->exception_every) < 0;
    bad += get_int(c, o, path, "bad_tid_every", false, 0, every_max, &f->bad_tid_every) < 0;
    bad += get_int(c, o, path, "garbage_every", false, 0, every_max, &f->garbage_every) < 0;
    bad += get_int(c, o, path, "disconnect_after", false, 0, every_max, &f->disconnect_after) < 0;
    bad += fg_cfg_bool(c->fc, o, path, "dead", false, false, &dead) < 0;
    f->dead = dead;
    if (f->exception_every && !f->exception) {
        fg_cfg_errorf(c->fc, cJSON_GetObjectItemCaseSensitive(o, "exception_every"),
                      fg_cfg_path(kp, sizeof kp, path, -1, "exception_every"),
                      "needs exception (the code to send, 1..11)");
        bad++;
    }
    if (f->exception && !cJSON_HasObjectItem(o, "exception_every"))
        f->exception_every = 1; /* an exception code alone means: always */
    return bad ? -1 : 0;
}

static int parse_holes(struct pctx *c, const cJSON *arr, const char *path, struct sim_serve *s)
{
    const cJSON *h;
    char kp[FG_CFG_PATH_MAX];
    if (!cJSON_IsArray(arr)) {
        fg_cfg_errorf(c->fc, arr, path, "must be an array of [addr, count] ranges, got %s", fg_cfg_got_kind(arr));
        return -1;
    }
    s->holes = fg_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *s->holes);
    cJSON_ArrayForEach(h, arr) {
        const cJSON *a = cJSON_GetArrayItem(h, 0), *n = cJSON_GetArrayItem(h, 1);
        long addr = cJSON_IsNumber(a) ? (long)a->valuedouble : -1;
        long count = cJSON_IsNumber(n) ? (long)n->valuedouble : -1;
        bool ok = cJSON_IsArray(h) && cJSON_GetArraySize(h) == 2 && addr >= 0 && count >= 1 &&
                  addr + count <= 65536 && a->valuedouble == (double)addr && n->valuedouble == (double)count;
        if (!ok) {
            fg_cfg_errorf(c->fc, h, fg_cfg_path(kp, sizeof kp, path, (long)s->nholes, NULL),
                          "must be [addr, count] with addr 0..65535, count >= 1 and addr + count <= 65536");
            return -1;
        }
        s->holes[s->nholes].addr = (uint16_t)addr;
        s->holes[s->nholes++].count = (uint32_t)count;
    }
    return 0;
}

static int parse_pv(struct pctx *c, const cJSON *o, const char *path, struct sim_device_params *d)
{
    static const char *const pv_keys[] = { "pv_csv", "pv_scale", "power_w", "pv_kwp", NULL };
    int bad = 0;
    if (d->kind != SIM_KIND_INVERTER) {
        for (size_t i = 0; pv_keys[i]; i++)
            bad += fg_cfg_only_for(c->fc, o, path, pv_keys[i], "devices with profile sunspec and role pv") < 0;
        return bad ? -1 : 0;
    }
    const char *csv;
    char kp[FG_CFG_PATH_MAX];
    int has_power = fg_cfg_num(c->fc, o, path, "power_w", false, 0, 1e7, 0, &d->pv.power_w);
    d->pv.has_power_w = has_power == 0;
    bad += has_power < 0;
    bad += get_num(c, o, path, "pv_scale", 0, 1e6, &d->pv.scale) < 0;
    bad += get_num(c, o, path, "pv_kwp", 0, 10000, &d->pv.kwp) < 0;
    bad += fg_cfg_str(c->fc, o, path, "pv_csv", false, PATH_MAX_LEN - 1, NULL, &csv) < 0;
    if (csv)
        bad += load_csv(c, cJSON_GetObjectItemCaseSensitive(o, "pv_csv"),
                        fg_cfg_path(kp, sizeof kp, path, -1, "pv_csv"), csv, &d->pv.csv) < 0;
    return bad ? -1 : 0;
}

static const char *const sim_dev_keys[] = {
    "pv_csv", "pv_scale", "power_w", "pv_kwp", "energy_start_wh", "model1_len", "faults",
    "max_read", "holes", NULL
};

static int parse_sim_device(struct pctx *c, const cJSON *o, const char *path)
{
    const struct known *k = find_known(c->dev, c->ndev, o->string);
    char kp[FG_CFG_PATH_MAX];
    if (!k) {
        fg_cfg_errorf(c->fc, o, path, "no device \"%.60s\" in devices", o->string);
        return -1;
    }
    if (k->index < 0 || need_object(c, o, path))
        return k->index < 0 ? 0 : -1; /* a device on a serial bus: not simulated */
    struct sim_device_params *d = &c->cfg->devices[k->index];
    struct sim_serve *s = &c->cfg->serve[k->index];
    const cJSON *faults = cJSON_GetObjectItemCaseSensitive(o, "faults");
    const cJSON *holes = cJSON_GetObjectItemCaseSensitive(o, "holes");
    int bad = fg_cfg_known_keys(c->fc, o, path, sim_dev_keys) > 0;
    bad += parse_pv(c, o, path, d) < 0;
    bad += get_num(c, o, path, "energy_start_wh", 0, 4e9, &d->energy_start_wh) < 0;
    if (d->kind == SIM_KIND_INVERTER || d->kind == SIM_KIND_SUNSPEC_METER)
        bad += get_int(c, o, path, "model1_len", false, 65, 66, &d->model1_len) < 0;
    else
        bad += fg_cfg_only_for(c->fc, o, path, "model1_len", "devices with profile sunspec") < 0;
    bad += get_int(c, o, path, "max_read", false, 1, 125, &s->max_read) < 0;
    if (faults)
        bad += parse_faults(c, faults, fg_cfg_path(kp, sizeof kp, path, -1, "faults"), &s->faults) < 0;
    if (holes)
        bad += parse_holes(c, holes, fg_cfg_path(kp, sizeof kp, path, -1, "holes"), s) < 0;
    return bad ? -1 : 0;
}

static const char *const sim_keys[] = { "base_load_w", "load_csv", "load_scale", "devices", NULL };

static int parse_sim(struct pctx *c, const cJSON *root)
{
    const cJSON *sim, *devs = NULL, *o;
    struct sim_site_params *site = &c->cfg->site;
    const char *csv = NULL;
    site->base_load_w = 500;
    site->load_scale = 1;
    if (fg_cfg_container(c->fc, root, NULL, "sim", false, cJSON_Object, &sim) != 0)
        return 0;
    int bad = fg_cfg_known_keys(c->fc, sim, "sim", sim_keys) > 0;
    bad += get_num(c, sim, "sim", "base_load_w", 0, 1e7, &site->base_load_w) < 0;
    bad += get_num(c, sim, "sim", "load_scale", 0, 1e6, &site->load_scale) < 0;
    bad += fg_cfg_str(c->fc, sim, "sim", "load_csv", false, PATH_MAX_LEN - 1, NULL, &csv) < 0;
    if (csv)
        bad += load_profile(c, cJSON_GetObjectItemCaseSensitive(sim, "load_csv"), csv) < 0;
    bad += fg_cfg_container(c->fc, sim, "sim", "devices", false, cJSON_Object, &devs) < 0;
    cJSON_ArrayForEach(o, devs) {
        char path[FG_CFG_PATH_MAX];
        bad += parse_sim_device(c, o, fg_cfg_path(path, sizeof path, "sim.devices", -1, o->string)) < 0;
    }
    return bad ? -1 : 0;
}

/* ---- machines ---- */

/* "coil_N" with N 0..7, or -1. */
static int coil_index(const char *point)
{
    char *end;
    if (strncmp(point, "coil_", 5) != 0 || point[5] < '0' || point[5] > '9')
        return -1;
    long n = strtol(point + 5, &end, 10);
    return *end || n >= SIM_RELAY_COILS ? -1 : (int)n;
}

static int parse_actuator(struct pctx *c, const cJSON *a, const char *path, struct sim_machine_params *m)
{
    const char *type, *dev, *point;
    char kp[FG_CFG_PATH_MAX];
    if (need_object(c, a, path) || fg_cfg_str(c->fc, a, path, "type", true, 32, NULL, &type) < 0)
        return -1;
    if (strcmp(type, "modbus") != 0)
        return 0; /* switched over MQTT: invisible to the Modbus simulator */
    if ((fg_cfg_str(c->fc, a, path, "device", true, 32, NULL, &dev) < 0) |
        (fg_cfg_str(c->fc, a, path, "point", true, 64, NULL, &point) < 0))
        return -1;
    const struct known *k = find_known(c->dev, c->ndev, dev);
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(a, "device");
    fg_cfg_path(kp, sizeof kp, path, -1, "device");
    if (!k) {
        fg_cfg_errorf(c->fc, at, kp, "no device \"%.60s\" in devices", dev);
        return -1;
    }
    if (k->index < 0)
        return 0; /* a relay on a serial bus: the sim never switches this machine */
    if (c->cfg->devices[k->index].kind != SIM_KIND_RELAY8) {
        fg_cfg_errorf(c->fc, at, kp, "\"%s\" must have profile relay8 for fabgrid-sim to switch it", dev);
        return -1;
    }
    m->coil = coil_index(point);
    if (m->coil < 0) {
        fg_cfg_errorf(c->fc, cJSON_GetObjectItemCaseSensitive(a, "point"), fg_cfg_path(kp, sizeof kp, path, -1, "point"),
                      "must be coil_0..coil_7 on a relay8, got \"%.60s\"", point);
        return -1;
    }
    m->relay_dev = k->index;
    return 0;
}

static int parse_machine(struct pctx *c, const cJSON *o, const char *path, struct sim_machine_params *m)
{
    const char *meter;
    const cJSON *act;
    char kp[FG_CFG_PATH_MAX];
    m->relay_dev = m->meter_dev = -1;
    if (need_object(c, o, path))
        return -1;
    int bad = fg_cfg_id(c->fc, o, path, "id", true, "machines", m->id, sizeof m->id) < 0;
    bad += fg_cfg_num(c->fc, o, path, "power_w", false, 0, 1e7, 0, &m->power_w) < 0;
    bad += fg_cfg_str(c->fc, o, path, "meter", false, 32, NULL, &meter) < 0;
    bad += fg_cfg_container(c->fc, o, path, "actuator", false, cJSON_Object, &act) < 0;
    if (act)
        bad += parse_actuator(c, act, fg_cfg_path(kp, sizeof kp, path, -1, "actuator"), m) < 0;
    const struct known *k = meter ? find_known(c->dev, c->ndev, meter) : NULL;
    if (k && k->index >= 0 && c->cfg->devices[k->index].role == SIM_ROLE_MACHINE)
        m->meter_dev = k->index;
    return bad ? -1 : 0;
}

static int parse_machines(struct pctx *c, const cJSON *root)
{
    const cJSON *ms, *o;
    struct sim_config *cfg = c->cfg;
    if (fg_cfg_container(c->fc, root, NULL, "machines", false, cJSON_Array, &ms) != 0)
        return 0;
    cfg->machines = fg_calloc((size_t)cJSON_GetArraySize(ms) + 1, sizeof *cfg->machines);
    int bad = 0;
    cJSON_ArrayForEach(o, ms) {
        char path[FG_CFG_PATH_MAX];
        fg_cfg_path(path, sizeof path, "machines", (long)cfg->nmachines, NULL);
        bad += parse_machine(c, o, path, &cfg->machines[cfg->nmachines++]) < 0;
    }
    return bad ? -1 : 0;
}

/* The clear-sky curve needs the site's position. */
static void check_clear_sky(struct pctx *c, const cJSON *root)
{
    const struct sim_config *cfg = c->cfg;
    for (size_t i = 0; i < cfg->ndevices && !c->has_latlon; i++) {
        const struct sim_device_params *d = &cfg->devices[i];
        if (d->kind != SIM_KIND_INVERTER || d->pv.csv || d->pv.has_power_w)
            continue;
        fg_cfg_errorf(c->fc, cJSON_GetObjectItemCaseSensitive(root, "site"), "site.latitude",
                      "missing (the clear-sky PV curve of device %s needs latitude and longitude, "
                      "or give it sim.devices.%s.power_w or pv_csv)", d->id, d->id);
        return;
    }
}

/* ---- the file ---- */

static void parse_root(struct pctx *c, const cJSON *root)
{
    struct fg_site_cfg site;
    if (fg_site_parse(c->fc, root, &site) == 0) {
        c->has_latlon = site.has_latlon;
        c->cfg->site.latitude_deg = site.latitude;
        c->cfg->site.longitude_deg = site.longitude;
        fg_strlcpy(c->cfg->site.timezone, site.timezone, sizeof c->cfg->site.timezone);
    }
    /* Each part runs even after errors in another, to report every mistake at once; a device
     * with an error counts as not served, so references to it raise no second error. */
    parse_buses(c, root);
    if (c->bus) /* without a buses array every device would name an unknown bus */
        parse_devices(c, root);
    parse_sim(c, root);
    parse_machines(c, root);
    check_clear_sky(c, root);
}

struct sim_config *sim_config_load(const char *path, char *err, size_t errlen)
{
    struct fg_cfg *fc = fg_cfg_new(path);
    struct sim_config *cfg = fg_calloc(1, sizeof *cfg);
    struct pctx c = { .fc = fc, .cfg = cfg };
    cfg->path = fg_strdup(path);
    cJSON *root = fg_cfg_parse_file(fc);
    if (root && !cJSON_IsObject(root))
        fg_cfg_errorf(fc, root, NULL, "the config must be a JSON object");
    else if (root)
        parse_root(&c, root);
    free(c.bus);
    free(c.dev);
    if (fg_cfg_nerrors(fc) > 0) {
        if (root)
            fg_cfg_sort(fc, root);
        fg_strlcpy(err, fg_cfg_errors(fc), errlen);
        sim_config_free(cfg);
        cfg = NULL;
    } else {
        cfg->site.devices = cfg->devices;
        cfg->site.ndevices = cfg->ndevices;
        cfg->site.machines = cfg->machines;
        cfg->site.nmachines = cfg->nmachines;
    }
    cJSON_Delete(root);
    fg_cfg_free(fc);
    return cfg;
}

void sim_config_free(struct sim_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ndevices; i++)
        free(c->serve[i].holes);
    for (size_t i = 0; i < c->nseries; i++) {
        sim_series_free(c->series[i]);
        free(c->series_paths[i]);
    }
    free(c->series);
    free(c->series_paths);
    bal_series_free(c->load);
    free(c->devices);
    free(c->serve);
    free(c->machines);
    free(c->buses);
    free(c->path);
    free(c);
}
