/* col_publish: the pure part of publishing: a reading as the contract's JSON state message, and the
 * site balance computed from the device roles (signs and the load identity of CONTRACT.md section 4). */
#ifndef COL_PUBLISH_H
#define COL_PUBLISH_H
#include "col_poller.h"
#include "fg_site.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* {"ts":<ms>,"name":value,...}: numbers with up to 15 significant digits, strings escaped.
 * Returns the length written (terminated), or -ENOSPC if buf is too small. */
int col_json_reading(char *buf, size_t len, int64_t ts_ms, const struct col_field *f, size_t n);

/* What the balance knows of one device: its role, whether its last reading is fresh, and its power. */
struct col_balance_dev {
    enum fg_role role;
    bool fresh;
    bool has_power;
    double power_w;
};

struct col_balance {
    bool has_grid, has_pv, has_battery;   /* each sum is known only if every device of the role is fresh */
    bool battery_site;                    /* the site has a battery device */
    double grid_w, pv_w, battery_w, load_w, surplus_w;
};

/* Sums the roles. Returns 0 when the grid power is known (the balance can be published), -ENODATA
 * otherwise. pv_w/battery_w are 0 (and known) when the site has no such device; load_w is known only
 * when grid, pv and battery all are. */
int col_balance_compute(const struct col_balance_dev *d, size_t n, struct col_balance *out);
/* {"ts":..,"pv_w":..,"grid_w":..,"load_w":..,"surplus_w":..} leaving out what is unknown.
 * Returns the length or -ENOSPC. */
int col_json_balance(char *buf, size_t len, int64_t ts_ms, const struct col_balance *b);

#endif
