/* hq_signals: how every long-running hookmq program takes its signals. */
#ifndef HQ_SIGNALS_H
#define HQ_SIGNALS_H

#include <signal.h>

/* Block SIGTERM, SIGINT and SIGHUP in the calling thread, so that the threads it starts
 * afterwards inherit the mask and only the thread calling sigwait(set) sees them; ignore
 * SIGPIPE (peers hang up). Call it before starting any thread. *set receives the three. */
void hq_signals_block(sigset_t *set);

#endif
