/* fg_notify: the systemd notify protocol (READY, WATCHDOG, STOPPING, RELOADING, STATUS) for both daemons.
 * libsystemd is loaded with dlopen only when NOTIFY_SOCKET is set, so a daemon started outside systemd
 * never maps it (the collector has a tight memory budget). Nothing here logs. */
#ifndef FG_NOTIFY_H
#define FG_NOTIFY_H

/* Every function below returns 1 when the message was sent, 0 when the process does not run under a
 * service manager (NOTIFY_SOCKET unset: a no-op), and a negative errno on failure: -ELIBACC when
 * libsystemd.so.0 cannot be loaded, otherwise what sd_notify returned. Callers usually ignore them.
 * Safe to call from any thread; the library is loaded once, on the first call. NOTIFY_SOCKET is
 * left in the environment (the watchdog needs it for every ping). */

/* READY=1, with STATUS=status when status is not NULL: the config is loaded and work has started. */
int fg_notify_ready(const char *status);

/* WATCHDOG=1: call from the loop whose progress it vouches for, every fg_notify_watchdog_interval_ms()/2. */
int fg_notify_watchdog(void);

/* STOPPING=1: the daemon received SIGTERM (or SIGINT) and shuts down. */
int fg_notify_stopping(void);

/* RELOADING=1 (with MONOTONIC_USEC): a reload (SIGHUP) starts; send fg_notify_ready() when it is done. */
int fg_notify_reloading(void);

/* STATUS=<formatted text>, shown by systemctl status. Text longer than 255 bytes is cut. */
int fg_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval the service manager asked for (WatchdogSec=, via WATCHDOG_USEC and, when set,
 * WATCHDOG_PID naming this process), in ms; 0 when there is no watchdog, no NOTIFY_SOCKET, or on any
 * error. Rounded down, at least 1 when a watchdog is set. */
long fg_notify_watchdog_interval_ms(void);

#endif
