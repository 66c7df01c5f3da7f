/* fg_notify: sd_notify and sd_watchdog_enabled from libsystemd.so.0, resolved at run time with dlopen
 * on first use and only under a service manager. The prototypes are those of sd-daemon.h (stable ABI
 * since libsystemd0 exists); declaring them here keeps libsystemd-dev out of the build. */
#include "fg_notify.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef int (*notify_fn)(int unset_environment, const char *state);
typedef int (*watchdog_fn)(int unset_environment, uint64_t *usec);

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static notify_fn sd_notify_p;
static watchdog_fn sd_watchdog_enabled_p;

/* The handle is never closed: the daemon keeps notifying until it exits. */
static void load(void)
{
    void *h = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    /* ISO C has no void * to function pointer conversion; a union gives the POSIX one without warnings */
    union { void *p; notify_fn f; } n = { dlsym(h, "sd_notify") };
    union { void *p; watchdog_fn f; } w = { dlsym(h, "sd_watchdog_enabled") };
    if (!n.p || !w.p) {
        dlclose(h);
        return;
    }
    sd_notify_p = n.f;
    sd_watchdog_enabled_p = w.f;
}

/* 0: not under a service manager; 1: loaded; -ELIBACC: libsystemd is missing. */
static int ensure_loaded(void)
{
    const char *s = getenv("NOTIFY_SOCKET");
    if (!s || !*s)
        return 0;
    pthread_once(&load_once, load);
    return sd_notify_p ? 1 : -ELIBACC;
}

static int send_state(const char *state)
{
    int rc = ensure_loaded();
    if (rc <= 0)
        return rc;
    rc = sd_notify_p(0, state);
    return rc < 0 ? rc : (rc > 0 ? 1 : 0);
}

int fg_notify_ready(const char *status)
{
    if (!status)
        return send_state("READY=1");
    char buf[300];
    snprintf(buf, sizeof buf, "READY=1\nSTATUS=%.255s", status);
    return send_state(buf);
}

int fg_notify_watchdog(void)
{
    return send_state("WATCHDOG=1");
}

int fg_notify_stopping(void)
{
    return send_state("STOPPING=1");
}

int fg_notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char buf[80];
    /* MONOTONIC_USEC lets systemd >= 253 tell this reload from an earlier one (Type=notify-reload) */
    snprintf(buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
    return send_state(buf);
}

int fg_notify_status(const char *fmt, ...)
{
    char text[256], buf[264];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    snprintf(buf, sizeof buf, "STATUS=%s", text);
    return send_state(buf);
}

long fg_notify_watchdog_interval_ms(void)
{
    if (ensure_loaded() <= 0)
        return 0;
    uint64_t usec = 0;
    if (sd_watchdog_enabled_p(0, &usec) <= 0 || usec == 0)
        return 0;
    uint64_t ms = usec / 1000;
    return ms == 0 ? 1 : (ms > (uint64_t)LONG_MAX ? LONG_MAX : (long)ms);
}
