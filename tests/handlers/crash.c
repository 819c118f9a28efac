/* Test plugin "crash": abort()s the worker when the body contains "poison", else ACK. */
#include "tp.h"

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    static const char poison[] = "poison";
    size_t i;

    (void)state;
    (void)err;
    for (i = 0; ev->body && i + sizeof(poison) - 1 <= ev->body_len; i++)
        if (memcmp(ev->body + i, poison, sizeof(poison) - 1) == 0)
            abort();
    return HQ_VERDICT_ACK;
}

TP_HANDLER("crash", tp_init_none, handle, tp_fini_none)
