/* fg_signal: sigaction for the daemons' stop/stats/reload signals. */
#include "fg_signal.h"

#include <signal.h>
#include <string.h>

void fg_signals_install(void (*handler)(int), bool usr1, bool hup)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (usr1)
        sigaction(SIGUSR1, &sa, NULL);
    if (hup)
        sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
