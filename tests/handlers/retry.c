/* Test plugin "retry": answers RETRY with a message. Option retry_after_ms (default 0) is
 * passed back in err->retry_after_ms. */
#include "tp.h"

static int init(const struct hq_host_api *api, const struct hq_handler_opt *opts, size_t n,
                void **state)
{
    long long *after_ms = malloc(sizeof(*after_ms));

    if (!after_ms)
        return -1;
    *after_ms = tp_opt_num(opts, n, "retry_after_ms", 0);
    if (*after_ms < 0) {
        api->log(HQ_HLOG_ERROR, "retry: option retry_after_ms: expected a number");
        free(after_ms);
        return -1;
    }
    *state = after_ms;
    return 0;
}

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    const long long *after_ms = state;

    snprintf(err->message, sizeof(err->message), "retry plugin: try %s again later (attempt %u)",
             ev->id ? ev->id : "?", (unsigned)ev->attempt);
    err->retry_after_ms = *after_ms;
    return HQ_VERDICT_RETRY;
}

static void fini(void *state)
{
    free(state);
}

TP_HANDLER("retry", init, handle, fini)
