/* Test plugin "hang": sleeps option seconds (default 3600) in handle(), then ACK. */
#include "tp.h"

static int init(const struct hq_host_api *api, const struct hq_handler_opt *opts, size_t n,
                void **state)
{
    return tp_init_num(api, opts, n, state, "hang", "seconds", 3600);
}

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    const long long *seconds = state;

    (void)ev;
    (void)err;
    tp_sleep((struct timespec){(time_t)*seconds, 0});
    return HQ_VERDICT_ACK;
}

TP_HANDLER("hang", init, handle, tp_fini_free)
