/* col_profile: reads a device profile (a JSON register map) into struct col_point records.
 * Everything a wrong profile could make the poller do (read past 0xFFFF, write a read-only
 * table, decode a string as a float) is refused here, at load time, with the profile's path. */
#include "col_profile.h"

#include "fg_mem.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



static const char *const profile_keys[] = { "name", "source", "notes", "max_gap", "points", NULL };
static const char *const point_keys[] = { "name", "table", "address", "type", "order", "count", "bit",
                                          "scale", "offset", "min", "max", "sentinel", "nan_sentinel",
                                          "writable", NULL };
/* In the order of enum col_table, col_type and col_order. */
static const char *const table_names[] = { "holding", "input", "coil", "discrete", NULL };
static const char *const type_names[] = { "u16", "s16", "u32", "s32", "u64", "s64",
                                          "f32", "f64", "string", "bits", NULL };
static const char *const order_names[] = { "ABCD", "CDAB", "BADC", "DCBA", NULL };

static bool is_register_table(enum col_table t)
{
    return t == COL_HOLDING || t == COL_INPUT;
}

static unsigned type_words(enum col_type t)
{
    switch (t) {
    case COL_U32: case COL_S32: case COL_F32: return 2;
    case COL_U64: case COL_S64: case COL_F64: return 4;
    default: return 1;
    }
}

static bool type_signed(enum col_type t)
{
    return t == COL_S16 || t == COL_S32 || t == COL_S64;
}

static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

bool col_profile_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n >= COL_NAME_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* name: the pattern, and unique among the points before this one. */
static int point_name(struct fg_cfg *c, const cJSON *p, const char *path, const struct col_point *pts,
                      size_t i, struct col_point *pt)
{
    char kp[FG_CFG_PATH_MAX], got[64];
    const char *s;
    int rc = fg_cfg_str(c, p, path, "name", true, 255, NULL, &s);
    const cJSON *v = member(p, "name");
    if (rc != 0)
        return -1;
    fg_cfg_path(kp, sizeof kp, path, -1, "name");
    if (!col_profile_name_ok(s)) {
        fg_cfg_errorf(c, v, kp, "must match " COL_PROFILE_NAME_PATTERN ", got %s", fg_cfg_got_value(v, got, sizeof got));
        return -1;
    }
    fg_strlcpy(pt->name, s, sizeof pt->name);
    for (size_t j = 0; j < i; j++)
        if (strcmp(pts[j].name, s) == 0) {
            fg_cfg_errorf(c, v, kp, "duplicate name \"%s\" (first at points[%zu].name)", s, j);
            return -1;
        }
    return 0;
}

/* Bit tables hold single bits: type bits, one bit per point, no byte order. */
static int point_bit_table(struct fg_cfg *c, const cJSON *p, const char *path, struct col_point *pt)
{
    char kp[FG_CFG_PATH_MAX], got[64];
    int type, bad = 0;
    if (fg_cfg_enum(c, p, path, "type", false, type_names, COL_BITS, &type) < 0)
        return -1;
    if (type != COL_BITS) {
        const cJSON *v = member(p, "type");
        fg_cfg_errorf(c, v, fg_cfg_path(kp, sizeof kp, path, -1, "type"), "must be \"bits\" for table %s, got %s",
                      table_names[pt->table], fg_cfg_got_value(v, got, sizeof got));
        return -1;
    }
    pt->type = COL_BITS;
    pt->count = 1;
    bad += fg_cfg_only_for(c, p, path, "order", "tables holding and input") < 0;
    bad += fg_cfg_only_for(c, p, path, "bit", "type bits on tables holding and input") < 0;
    bad += fg_cfg_only_for(c, p, path, "count", "type string") < 0;
    return bad ? -1 : 0;
}

static int point_register_table(struct fg_cfg *c, const cJSON *p, const char *path, struct col_point *pt)
{
    int type, order, bad = 0;
    long count = 0, bit;
    if (fg_cfg_enum(c, p, path, "type", true, type_names, COL_U16, &type) < 0)
        return -1;
    pt->type = (enum col_type)type;
    bad += fg_cfg_enum(c, p, path, "order", false, order_names, COL_ABCD, &order) < 0;
    pt->order = (enum col_order)order;
    if (pt->type == COL_STRING)
        bad += fg_cfg_int(c, p, path, "count", true, 1, (COL_STRING_MAX - 2) / 2, 1, &count) < 0;
    else
        bad += fg_cfg_only_for(c, p, path, "count", "type string") < 0;
    pt->count = (uint16_t)(pt->type == COL_STRING ? count : type_words(pt->type));
    if (pt->type == COL_BITS) {
        bad += fg_cfg_int(c, p, path, "bit", false, 0, 15, -1, &bit) < 0;
        pt->bit = (int8_t)bit;
    } else {
        bad += fg_cfg_only_for(c, p, path, "bit", "type bits") < 0;
    }
    return bad ? -1 : 0;
}

static int point_location(struct fg_cfg *c, const cJSON *p, const char *path, struct col_point *pt)
{
    char kp[FG_CFG_PATH_MAX];
    int table, bad;
    long address;
    if (fg_cfg_enum(c, p, path, "table", true, table_names, COL_HOLDING, &table) < 0)
        return -1;
    pt->table = (enum col_table)table;
    bad = fg_cfg_int(c, p, path, "address", true, 0, 65535, 0, &address) < 0;
    pt->address = (uint16_t)address;
    if (is_register_table(pt->table) ? point_register_table(c, p, path, pt) < 0 : point_bit_table(c, p, path, pt) < 0)
        return -1;
    if (!bad && address + pt->count - 1 > 65535) {
        fg_cfg_errorf(c, member(p, "address"), fg_cfg_path(kp, sizeof kp, path, -1, "address"),
                      "the point's %u registers run past address 65535", (unsigned)pt->count);
        bad = 1;
    }
    return bad ? -1 : 0;
}

static int point_scaling(struct fg_cfg *c, const cJSON *p, const char *path, struct col_point *pt)
{
    char kp[FG_CFG_PATH_MAX];
    int bad = 0, rmin, rmax;
    bad += fg_cfg_num(c, p, path, "scale", false, -1e9, 1e9, 1, &pt->scale) < 0;
    if (pt->scale == 0) {
        fg_cfg_errorf(c, member(p, "scale"), fg_cfg_path(kp, sizeof kp, path, -1, "scale"), "must not be 0");
        pt->scale = 1;
        bad++;
    }
    bad += fg_cfg_num(c, p, path, "offset", false, -1e12, 1e12, 0, &pt->offset) < 0;
    if (pt->type == COL_STRING) {
        bad += fg_cfg_only_for(c, p, path, "min", "numeric types") < 0;
        bad += fg_cfg_only_for(c, p, path, "max", "numeric types") < 0;
        return bad ? -1 : 0;
    }
    rmin = fg_cfg_num(c, p, path, "min", false, -1e18, 1e18, 0, &pt->min);
    rmax = fg_cfg_num(c, p, path, "max", false, -1e18, 1e18, 0, &pt->max);
    pt->has_min = rmin == 0;
    pt->has_max = rmax == 0;
    bad += rmin < 0 || rmax < 0;
    if (pt->has_min && pt->has_max && pt->min > pt->max) {
        fg_cfg_errorf(c, member(p, "max"), fg_cfg_path(kp, sizeof kp, path, -1, "max"), "must be >= min");
        bad++;
    }
    return bad ? -1 : 0;
}

/* One raw sentinel: an integer (negative only for signed types, two's complement of the width)
 * or a "0x" hex string, for values a double cannot hold exactly. */
static bool sentinel_value(const cJSON *v, unsigned bits, bool is_signed, uint64_t *out)
{
    uint64_t mask = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        char *end;
        if ((s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) || !s[2] || s[2] == '-' || s[2] == '+')
            return false;
        errno = 0;
        unsigned long long x = strtoull(s + 2, &end, 16);
        if (errno || *end || x > mask)
            return false;
        *out = x;
        return true;
    }
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || !(d >= -9007199254740992.0 && d <= 9007199254740992.0) ||
        d != (double)(int64_t)d)
        return false;
    int64_t x = (int64_t)d;
    if (x < 0 && (!is_signed || (bits < 64 && x < -(INT64_C(1) << (bits - 1)))))
        return false;
    if (x >= 0 && (uint64_t)x > mask)
        return false;
    *out = (uint64_t)x & mask;
    return true;
}

static int point_sentinels(struct fg_cfg *c, const cJSON *p, const char *path, struct col_point *pt)
{
    char kp[FG_CFG_PATH_MAX], ip[FG_CFG_PATH_MAX], got[64];
    const cJSON *arr, *v;
    unsigned bits = 16 * type_words(pt->type);
    int i = 0, bad = 0, rc;
    if (pt->type == COL_STRING || !is_register_table(pt->table))
        return fg_cfg_only_for(c, p, path, "sentinel", "numeric types on tables holding and input");
    rc = fg_cfg_container(c, p, path, "sentinel", false, cJSON_Array, &arr);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    fg_cfg_path(kp, sizeof kp, path, -1, "sentinel");
    if (cJSON_GetArraySize(arr) > COL_MAX_SENTINELS) {
        fg_cfg_errorf(c, arr, kp, "must have at most %d entries, got %d", COL_MAX_SENTINELS, cJSON_GetArraySize(arr));
        return -1;
    }
    cJSON_ArrayForEach(v, arr) {
        if (!sentinel_value(v, bits, type_signed(pt->type), &pt->sentinel[pt->nsentinel])) {
            fg_cfg_errorf(c, v, fg_cfg_path(ip, sizeof ip, kp, i, NULL),
                          "must be an integer or a \"0x\" hex string that fits %s, got %s",
                          type_names[pt->type], fg_cfg_got_value(v, got, sizeof got));
            bad++;
        } else {
            pt->nsentinel++;
        }
        i++;
    }
    return bad ? -1 : 0;
}

static int point_flags(struct fg_cfg *c, const cJSON *p, const char *path, struct col_point *pt)
{
    int bad = point_sentinels(c, p, path, pt) < 0;
    pt->nan_is_sentinel = true;
    if (pt->type == COL_F32 || pt->type == COL_F64)
        bad += fg_cfg_bool(c, p, path, "nan_sentinel", false, true, &pt->nan_is_sentinel) < 0;
    else
        bad += fg_cfg_only_for(c, p, path, "nan_sentinel", "types f32 and f64") < 0;
    if ((pt->table == COL_HOLDING || pt->table == COL_COIL) && pt->type != COL_STRING)
        bad += fg_cfg_bool(c, p, path, "writable", false, false, &pt->writable) < 0;
    else
        bad += fg_cfg_only_for(c, p, path, "writable", "numeric points on tables holding and coil") < 0;
    return bad ? -1 : 0;
}

static int parse_point(struct fg_cfg *c, const cJSON *p, const char *path, struct col_point *pts, size_t i)
{
    struct col_point *pt = &pts[i];
    int bad = 0;
    memset(pt, 0, sizeof *pt);
    pt->bit = -1;
    pt->scale = 1;
    pt->sf_address = -1;
    if (!cJSON_IsObject(p)) {
        fg_cfg_errorf(c, p, path, "must be an object, got %s", fg_cfg_got_kind(p));
        return -1;
    }
    bad += fg_cfg_known_keys(c, p, path, point_keys) > 0;
    bad += point_name(c, p, path, pts, i, pt) < 0;
    if (point_location(c, p, path, pt) < 0)
        return -1; /* the rest depends on table and type */
    bad += point_scaling(c, p, path, pt) < 0;
    bad += point_flags(c, p, path, pt) < 0;
    return bad ? -1 : 0;
}

/* notes: a string or a list of strings (long notes read better as lines). */
static int parse_notes(struct fg_cfg *c, const cJSON *root)
{
    char got[16];
    const cJSON *v = member(root, "notes"), *s;
    if (!v || cJSON_IsString(v))
        return 0;
    if (cJSON_IsArray(v)) {
        int i = 0;
        cJSON_ArrayForEach(s, v) {
            char ip[FG_CFG_PATH_MAX];
            if (!cJSON_IsString(s)) {
                fg_cfg_errorf(c, s, fg_cfg_path(ip, sizeof ip, "notes", i, NULL), "must be a string, got %s",
                              fg_cfg_got_kind(s));
                return -1;
            }
            i++;
        }
        return 0;
    }
    fg_cfg_errorf(c, v, "notes", "must be a string or a list of strings, got %s", fg_cfg_got_value(v, got, sizeof got));
    return -1;
}

static int parse_points(struct fg_cfg *c, const cJSON *root, struct col_point **out, size_t *n)
{
    const cJSON *arr, *p;
    struct col_point *pts;
    int count, bad = 0;
    size_t i = 0;
    if (fg_cfg_container(c, root, NULL, "points", true, cJSON_Array, &arr) != 0)
        return -1;
    count = cJSON_GetArraySize(arr);
    if (count < 1 || count > COL_PROFILE_MAX_POINTS) {
        fg_cfg_errorf(c, arr, "points", "must have 1..%d entries, got %d", COL_PROFILE_MAX_POINTS, count);
        return -1;
    }
    pts = fg_calloc((size_t)count, sizeof *pts);
    cJSON_ArrayForEach(p, arr) {
        char path[FG_CFG_PATH_MAX];
        bad += parse_point(c, p, fg_cfg_path(path, sizeof path, "points", (long)i, NULL), pts, i) < 0;
        i++;
    }
    if (bad) {
        free(pts);
        return -1;
    }
    *out = pts;
    *n = i;
    return 0;
}

int col_profile_parse(struct fg_cfg *pc, const cJSON *root, struct col_point **out, size_t *n, int *max_gap)
{
    char name[FG_CFG_ID_MAX + 1];
    const char *src;
    long gap;
    int bad = 0;
    *out = NULL;
    *n = 0;
    if (!cJSON_IsObject(root)) {
        fg_cfg_errorf(pc, root, NULL, "must be a JSON object, got %s", fg_cfg_got_kind(root));
        return -EINVAL;
    }
    bad += fg_cfg_known_keys(pc, root, NULL, profile_keys) > 0;
    bad += fg_cfg_id(pc, root, NULL, "name", true, NULL, name, sizeof name) < 0;
    bad += fg_cfg_str(pc, root, NULL, "source", false, 4096, NULL, &src) < 0;
    bad += parse_notes(pc, root) < 0;
    bad += fg_cfg_int(pc, root, NULL, "max_gap", false, 0, 125, -1, &gap) < 0;
    bad += parse_points(pc, root, out, n) < 0;
    if (max_gap)
        *max_gap = (int)gap;
    if (bad) {
        free(*out);
        *out = NULL;
        *n = 0;
        return -EINVAL;
    }
    return 0;
}

int col_profile_load(const char *file, struct col_point **out, size_t *n, int *max_gap, struct fg_cfg *errs)
{
    struct fg_cfg *pc = fg_cfg_new(file);
    cJSON *root = fg_cfg_parse_file(pc);
    int rc = -EINVAL;
    *out = NULL;
    *n = 0;
    if (max_gap)
        *max_gap = -1;
    if (root) {
        rc = col_profile_parse(pc, root, out, n, max_gap);
        fg_cfg_sort(pc, root);
    }
    fg_cfg_merge(errs, pc, NULL);
    cJSON_Delete(root);
    fg_cfg_free(pc);
    return rc;
}
