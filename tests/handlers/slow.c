/* Test plugin "slow": sleeps option ms (default 1000) in handle(), then ACK (for heartbeat
 * and prefetch tests). */
#include "tp.h"

static int init(const struct hq_host_api *api, const struct hq_handler_opt *opts, size_t n,
                void **state)
{
    return tp_init_num(api, opts, n, state, "slow", "ms", 1000);
}

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    const long long *ms = state;

    (void)ev;
    (void)err;
    tp_sleep((struct timespec){(time_t)(*ms / 1000), (long)(*ms % 1000) * 1000000L});
    return HQ_VERDICT_ACK;
}

TP_HANDLER("slow", init, handle, tp_fini_free)
