/* Test plugin "retry": answers RETRY with a message. Option retry_after_ms (default 0) is
 * passed back in err->retry_after_ms. */
#include "tp.h"

static int init(const struct hq_host_api *api, const struct hq_handler_opt *opts, size_t n,
                void **state)
{
    return tp_init_num(api, opts, n, state, "retry", "retry_after_ms", 0);
}

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    const long long *after_ms = state;

    snprintf(err->message, sizeof(err->message), "retry plugin: try %s again later (attempt %u)",
             ev->id ? ev->id : "?", (unsigned)ev->attempt);
    err->retry_after_ms = *after_ms;
    return HQ_VERDICT_RETRY;
}

TP_HANDLER("retry", init, handle, tp_fini_free)
