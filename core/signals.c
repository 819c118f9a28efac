/* signals: hq_signals_block (hq_signals.h). */
#include <pthread.h>

#include "hq_signals.h"

void hq_signals_block(sigset_t *set)
{
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}
