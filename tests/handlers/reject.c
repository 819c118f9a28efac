/* Test plugin "reject": answers REJECT with a message. */
#include "tp.h"

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    (void)state;
    snprintf(err->message, sizeof(err->message), "reject plugin: %s is unacceptable",
             ev->id ? ev->id : "?");
    return HQ_VERDICT_REJECT;
}

TP_HANDLER("reject", tp_init_none, handle, tp_fini_none)
