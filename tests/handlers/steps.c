/* Test plugin "steps": saves `count` durable steps (default 3) of `size` bytes each (default
 * 1024) that the event does not carry yet, then answers RETRY (bench/worker_bench.sh: the
 * retry path with steps). */
#include "tp.h"

struct steps_state {
    const struct hq_host_api *api;
    long long count, size;
    unsigned char *buf;
};

static int init(const struct hq_host_api *api, const struct hq_handler_opt *opts, size_t n,
                void **state)
{
    struct steps_state *s = calloc(1, sizeof(*s));

    if (!s)
        return -1;
    s->api = api;
    s->count = tp_opt_num(opts, n, "count", 3);
    s->size = tp_opt_num(opts, n, "size", 1024);
    if (!HQ_HOST_HAS_STEPS(api) || s->count < 0 || s->count > 100 || s->size < 0 ||
        s->size > 65536 || !(s->buf = malloc((size_t)s->size + 1))) {
        api->log(HQ_HLOG_ERROR, "steps: a host with steps, count 0..100, size 0..65536");
        free(s);
        return -1;
    }
    memset(s->buf, 'x', (size_t)s->size + 1);
    *state = s;
    return 0;
}

static enum hq_verdict handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    struct steps_state *s = state;
    char name[32];
    long long i;
    int rc;

    for (i = 0; i < s->count; i++) {
        snprintf(name, sizeof(name), "step-%lld", i);
        if (s->api->step_get(ev, name, NULL, NULL))
            continue;
        if ((rc = s->api->step_put(ev, name, s->buf, (size_t)s->size)) != HQ_STEP_OK) {
            snprintf(err->message, sizeof(err->message), "steps plugin: step_put %d", rc);
            return HQ_VERDICT_RETRY;
        }
    }
    snprintf(err->message, sizeof(err->message), "steps plugin: try %s again later",
             ev->id ? ev->id : "?");
    return HQ_VERDICT_RETRY;
}

static void fini(void *state)
{
    struct steps_state *s = state;

    if (s)
        free(s->buf);
    free(s);
}

TP_HANDLER("steps", init, handle, fini)
