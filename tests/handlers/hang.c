/* Test plugin "hang": sleeps option seconds (default 3600) in handle(), then ACK. */
#include <time.h>

#include "tp.h"

struct st {
    long long seconds;
};

static int init(const struct hq_host_api *api, const struct hq_handler_opt *opts, size_t n,
                void **state)
{
    struct st *s = calloc(1, sizeof(*s));

    if (!s)
        return -1;
    s->seconds = tp_opt_num(opts, n, "seconds", 3600);
    if (s->seconds < 0) {
        api->log(HQ_HLOG_ERROR, "hang: option seconds: expected a number");
        free(s);
        return -1;
    }
    *state = s;
    return 0;
}

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    const struct st *s = state;
    struct timespec ts = {(time_t)s->seconds, 0};

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

TP_HANDLER("hang", init, handle, fini)
