/* fg_signal: the daemons' signal set-up in one place. Handlers only set flags (volatile sig_atomic_t). */
#ifndef FG_SIGNAL_H
#define FG_SIGNAL_H
#include <stdbool.h>

/* Installs handler for SIGINT and SIGTERM (and SIGUSR1 / SIGHUP when asked), without SA_RESTART so that
 * blocking calls return EINTR, and ignores SIGPIPE (a closed socket is an error code, not a death). */
void fg_signals_install(void (*handler)(int), bool usr1, bool hup);

#endif
