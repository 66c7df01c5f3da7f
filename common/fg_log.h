/* fg_log: the daemons' logging: one line per event on stderr with level, subsystem and device,
 * and "complaints" that report a lasting failure once, then rarely, then its recovery once
 * (the habit of collectd's utils_complain). */
#ifndef FG_LOG_H
#define FG_LOG_H
#include <stdbool.h>
#include <stdint.h>

enum fg_log_level { FG_LOG_ERROR, FG_LOG_WARN, FG_LOG_INFO, FG_LOG_DEBUG };

/* prog: name printed in each line; level: the most verbose level shown. Thread-safe after init. */
void fg_log_init(const char *prog, enum fg_log_level level);
void fg_log_set_level(enum fg_log_level level);
bool fg_log_enabled(enum fg_log_level level);
/* subsys: "modbus", "mqtt", ...; dev: a device/bus id or NULL. */
void fg_log(enum fg_log_level level, const char *subsys, const char *dev, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A lasting condition (device unreachable, broker away). Zero-initialise. */
struct fg_complain {
    bool active;
    int64_t next_ms;      /* when a repeat may be logged again */
    int64_t interval_ms;  /* grows 1 min, 2, 4 ... up to 1 h */
    uint64_t suppressed;  /* repeats not logged since the last line */
};
/* Logs the first occurrence at once, then at most once per (growing) interval with the count of
 * repeats suppressed in between. now_ms: any monotonic ms. */
void fg_complain(struct fg_complain *c, int64_t now_ms, enum fg_log_level level, const char *subsys,
                 const char *dev, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* If the condition was active, logs the recovery once (INFO) and resets. Returns true if it was active. */
bool fg_complain_release(struct fg_complain *c, const char *subsys, const char *dev, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
