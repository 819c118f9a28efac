/* Test plugin "nofini": a full-size table with a NULL fini. */
#include "tp.h"

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    (void)state;
    (void)ev;
    (void)err;
    return HQ_VERDICT_ACK;
}

TP_HANDLER("nofini", tp_init_none, handle, NULL)
