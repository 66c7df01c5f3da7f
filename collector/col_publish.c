/* col_publish: JSON for device/DEV/state and balance, and the role arithmetic behind balance.
 * A value that is not known is left out of a message, never written as 0. */
#include "col_publish.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct jbuf {
    char *p;
    size_t len, pos;
    bool overflow;
};

static void jb_printf(struct jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void jb_printf(struct jbuf *j, const char *fmt, ...)
{
    if (j->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(j->p + j->pos, j->len - j->pos, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= j->len - j->pos)
        j->overflow = true;
    else
        j->pos += (size_t)n;
}

static void jb_string(struct jbuf *j, const char *s)
{
    jb_printf(j, "\"");
    for (; *s && !j->overflow; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            jb_printf(j, "\\%c", c);
        else if (c < 0x20)
            jb_printf(j, "\\u%04x", c);
        else
            jb_printf(j, "%c", c);
    }
    jb_printf(j, "\"");
}

static void jb_number(struct jbuf *j, const char *key, double v)
{
    if (!isfinite(v))
        return; /* JSON has no NaN; the decoder never produces one, but be safe */
    jb_printf(j, ",");
    jb_string(j, key);
    jb_printf(j, ":%.15g", v);
}

static int jb_finish(struct jbuf *j)
{
    jb_printf(j, "}");
    return j->overflow ? -ENOSPC : (int)j->pos;
}

int col_json_reading(char *buf, size_t len, int64_t ts_ms, const struct col_field *f, size_t n)
{
    struct jbuf j = { buf, len, 0, len == 0 };
    jb_printf(&j, "{\"ts\":%lld", (long long)ts_ms);
    for (size_t i = 0; i < n; i++) {
        if (f[i].v.kind == COL_VAL_NUMBER) {
            jb_number(&j, f[i].name, f[i].v.number);
            continue;
        }
        jb_printf(&j, ",");
        jb_string(&j, f[i].name);
        jb_printf(&j, ":");
        jb_string(&j, f[i].v.str);
    }
    return jb_finish(&j);
}

/* Adds one device to the sum of its role; a stale or powerless device makes the role unknown. */
static void add_role(bool *known, bool *seen, double *sum, const struct col_balance_dev *d)
{
    if (!*seen) {
        *seen = true;
        *known = true;
        *sum = 0;
    }
    if (d->fresh && d->has_power)
        *sum += d->power_w;
    else
        *known = false;
}

int col_balance_compute(const struct col_balance_dev *d, size_t n, struct col_balance *out)
{
    bool seen_grid = false, seen_pv = false, seen_bat = false;
    memset(out, 0, sizeof *out);
    out->has_pv = out->has_battery = true; /* a site without PV or battery has 0 W of it */
    for (size_t i = 0; i < n; i++) {
        if (d[i].role == FG_ROLE_GRID)
            add_role(&out->has_grid, &seen_grid, &out->grid_w, &d[i]);
        else if (d[i].role == FG_ROLE_PV)
            add_role(&out->has_pv, &seen_pv, &out->pv_w, &d[i]);
        else if (d[i].role == FG_ROLE_BATTERY)
            add_role(&out->has_battery, &seen_bat, &out->battery_w, &d[i]);
    }
    out->battery_site = seen_bat;
    if (!out->has_grid)
        return -ENODATA;
    out->surplus_w = -out->grid_w;
    out->load_w = out->pv_w + out->grid_w + out->battery_w;
    return 0;
}

int col_json_balance(char *buf, size_t len, int64_t ts_ms, const struct col_balance *b)
{
    struct jbuf j = { buf, len, 0, len == 0 };
    jb_printf(&j, "{\"ts\":%lld", (long long)ts_ms);
    if (b->has_pv)
        jb_number(&j, "pv_w", b->pv_w);
    if (b->has_grid)
        jb_number(&j, "grid_w", b->grid_w);
    if (b->battery_site && b->has_battery)
        jb_number(&j, "battery_w", b->battery_w);
    if (b->has_grid && b->has_pv && b->has_battery)
        jb_number(&j, "load_w", b->load_w);
    if (b->has_grid)
        jb_number(&j, "surplus_w", b->surplus_w);
    return jb_finish(&j);
}
