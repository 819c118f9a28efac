/* Test plugin "ack": acknowledges every event. */
#include "tp.h"

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    (void)state;
    (void)ev;
    (void)err;
    return HQ_VERDICT_ACK;
}

TP_HANDLER("ack", tp_init_none, handle, tp_fini_none)
