/* col_lines: maps the collector's readings, site balance and self-monitoring counters onto the
 * contract's InfluxDB measurements (device, balance, collector); fg_lp does the encoding. */
#include "col_lines.h"

#include "fg_lp.h"
#include "fg_mem.h"

#include <stdlib.h>

/* Readings of up to this many fields are converted on the stack; a bigger one (no profile in
 * sight has one) costs an allocation. */
#define LINES_STACK_FIELDS 64

static struct fg_lp_field float_field(const char *key, double v)
{
    struct fg_lp_field f = { .key = key, .type = FG_LP_FLOAT, .f = v };
    return f;
}

int col_lines_device(char *buf, size_t len, const char *site, const char *device, const char *role,
                     int64_t ts_ms, const struct col_field *f, size_t n)
{
    const struct fg_lp_tag tags[] = { { "site", site }, { "device", device }, { "role", role } };
    struct fg_lp_field stack[LINES_STACK_FIELDS];
    struct fg_lp_field *lf = n <= LINES_STACK_FIELDS ? stack : fg_malloc(n * sizeof *lf);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (f[i].v.kind == COL_VAL_NUMBER)
            lf[k++] = float_field(f[i].name, f[i].v.number);
    /* NULL for no field: fg_lp_encode then reads nothing (and gcc sees no unset array read) */
    int rc = fg_lp_encode(buf, len, "device", tags, 3, k ? lf : NULL, k, ts_ms);
    if (lf != stack)
        free(lf);
    return rc;
}

int col_lines_balance(char *buf, size_t len, const char *site, int64_t ts_ms, const struct col_balance *b)
{
    const struct fg_lp_tag tag = { "site", site };
    struct fg_lp_field lf[5];
    size_t k = 0;
    if (b->has_pv)
        lf[k++] = float_field("pv_w", b->pv_w);
    if (b->has_grid)
        lf[k++] = float_field("grid_w", b->grid_w);
    if (b->has_grid && b->has_pv && b->has_battery)
        lf[k++] = float_field("load_w", b->load_w);
    if (b->has_grid)
        lf[k++] = float_field("surplus_w", b->surplus_w);
    if (b->battery_site && b->has_battery)
        lf[k++] = float_field("battery_w", b->battery_w);
    return fg_lp_encode(buf, len, "balance", &tag, 1, lf, k, ts_ms);
}

static struct fg_lp_field counter_field(const char *key, uint64_t v)
{
    struct fg_lp_field f = { .key = key, .type = FG_LP_INT, .i = v > INT64_MAX ? INT64_MAX : (int64_t)v };
    return f;
}

int col_lines_collector(char *buf, size_t len, const char *site, int64_t ts_ms, const struct col_selfmon *m)
{
    const struct fg_lp_tag tag = { "site", site };
    const struct fg_lp_field lf[] = {
        counter_field("added", m->added),
        counter_field("written", m->written),
        counter_field("dropped", m->dropped),
        counter_field("rejected", m->rejected),
        counter_field("spool_points", m->spool_points),
        counter_field("write_errors", m->write_errors),
        counter_field("modbus_errors", m->modbus_errors),
    };
    return fg_lp_encode(buf, len, "collector", &tag, 1, lf, sizeof lf / sizeof lf[0], ts_ms);
}
