/* Test plugin "slow": sleeps option ms (default 1000) in handle(), then ACK (for heartbeat
 * and prefetch tests). */
#include <time.h>

#include "tp.h"

struct st {
    long long ms;
};

static int init(const struct hq_host_api *api, const struct hq_handler_opt *opts, size_t n,
                void **state)
{
    struct st *s = calloc(1, sizeof(*s));

    if (!s)
        return -1;
    s->ms = tp_opt_num(opts, n, "ms", 1000);
    if (s->ms < 0) {
        api->log(HQ_HLOG_ERROR, "slow: option ms: expected a number");
        free(s);
        return -1;
    }
    *state = s;
    return 0;
}

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    const struct st *s = state;
    struct timespec ts = {(time_t)(s->ms / 1000), (long)(s->ms % 1000) * 1000000L};

    (void)ev;
    (void)err;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return HQ_VERDICT_ACK;
}

static void fini(void *state)
{
    free(state);
}

TP_HANDLER("slow", init, handle, fini)
