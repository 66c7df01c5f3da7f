/* col_lines: the collector's points in the InfluxDB schema of CONTRACT.md section 6, as line
 * protocol (ms timestamps). Pure: the caller owns the buffers and sends the lines. */
#ifndef COL_LINES_H
#define COL_LINES_H
#include "col_poller.h"   /* struct col_field */
#include "col_publish.h"  /* struct col_balance */

#include <stddef.h>
#include <stdint.h>

/* All three write one '\n'-terminated line into buf (len bytes incl. the terminating NUL) and
 * return fg_lp_encode's result: the length, 0 when there is nothing to write, or -ENOSPC when
 * buf is too small (buf is then ""). site, device and role are tag values: NULL or "" leaves the
 * tag out. */

/* device,device=D,role=R,site=S <numeric fields as floats> <ts_ms>. String fields are not
 * written (they stay in the MQTT state); a reading with no numeric field gives 0. f may be NULL
 * when n is 0. */
int col_lines_device(char *buf, size_t len, const char *site, const char *device, const char *role,
                     int64_t ts_ms, const struct col_field *f, size_t n);

/* balance,site=S pv_w=..,grid_w=..,load_w=..,surplus_w=..[,battery_w=..]: only the values b
 * knows, chosen as col_json_balance chooses them (0 when none is known). */
int col_lines_balance(char *buf, size_t len, const char *site, int64_t ts_ms, const struct col_balance *b);

/* The collector's self-monitoring counters. */
struct col_selfmon {
    uint64_t added;          /* lines handed to the writer */
    uint64_t written;        /* lines InfluxDB acknowledged */
    uint64_t dropped;        /* lines dropped from a full spool */
    uint64_t rejected;       /* lines InfluxDB refused (partial writes) */
    uint64_t spool_points;   /* lines waiting in the spool now */
    uint64_t write_errors;   /* write requests that failed */
    uint64_t modbus_errors;  /* failed Modbus requests */
};

/* collector,site=S added=Ni,written=Ni,dropped=Ni,rejected=Ni,spool_points=Ni,write_errors=Ni,
 * modbus_errors=Ni: integers, because they are counters (a value above INT64_MAX is written as
 * INT64_MAX). */
int col_lines_collector(char *buf, size_t len, const char *site, int64_t ts_ms, const struct col_selfmon *m);

#endif
