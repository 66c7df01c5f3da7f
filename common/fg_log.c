/* fg_log: stderr logging for the daemons (library modules return errors and never log). */
#include "fg_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "fabgrid";
static enum fg_log_level log_level = FG_LOG_INFO;
static int log_with_time = 1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

void fg_log_init(const char *prog, enum fg_log_level level)
{
    log_prog = prog;
    log_level = level;
    /* journald stamps lines itself */
    log_with_time = getenv("JOURNAL_STREAM") == NULL;
}

void fg_log_set_level(enum fg_log_level level)
{
    log_level = level;
}

bool fg_log_enabled(enum fg_log_level level)
{
    return level <= log_level;
}

/* The line is formatted into one buffer and written with one write(2): atomic between threads, and
 * no stdio on the unbuffered stderr (glibc's vfprintf would take an 8 KB buffer on each bus thread's stack). */
static void log_v(enum fg_log_level level, const char *subsys, const char *dev, const char *fmt, va_list ap)
{
    char msg[1024], stamp[40] = "", line[1200];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (log_with_time) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(stamp + n, sizeof stamp - n, ".%03ldZ ", ts.tv_nsec / 1000000);
    }
    int len = snprintf(line, sizeof line, "%s%s %s %s%s%s%s: %s\n", stamp, log_prog, level_names[level],
                       subsys ? subsys : "main", dev ? "[" : "", dev ? dev : "", dev ? "]" : "", msg);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof line) {
        len = (int)sizeof line - 1;
        line[len - 1] = '\n';
    }
    pthread_mutex_lock(&log_lock);
    for (ssize_t off = 0, w; off < len; off += w)
        if ((w = write(STDERR_FILENO, line + off, (size_t)(len - off))) <= 0)
            break;
    pthread_mutex_unlock(&log_lock);
}

void fg_log(enum fg_log_level level, const char *subsys, const char *dev, const char *fmt, ...)
{
    if (!fg_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(level, subsys, dev, fmt, ap);
    va_end(ap);
}

void fg_complain(struct fg_complain *c, int64_t now_ms, enum fg_log_level level, const char *subsys,
                 const char *dev, const char *fmt, ...)
{
    if (c->active && now_ms < c->next_ms) {
        c->suppressed++;
        return;
    }
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->suppressed)
        fg_log(level, subsys, dev, "%s (repeated %llu times)", msg, (unsigned long long)c->suppressed);
    else
        fg_log(level, subsys, dev, "%s", msg);
    c->interval_ms = !c->active ? 60000 : (c->interval_ms < 1800000 ? c->interval_ms * 2 : 3600000);
    c->active = true;
    c->next_ms = now_ms + c->interval_ms;
    c->suppressed = 0;
}

bool fg_complain_release(struct fg_complain *c, const char *subsys, const char *dev, const char *fmt, ...)
{
    if (!c->active)
        return false;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fg_log(FG_LOG_INFO, subsys, dev, "%s", msg);
    c->active = false;
    c->suppressed = 0;
    return true;
}
