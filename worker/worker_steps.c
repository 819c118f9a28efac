/* worker_steps.c: durable steps in hookmq-worker (docs/plugins.md, "Durable steps"). The
 * handler's step_get / step_put (ABI 1.1) read the steps carried in the delivery's
 * hookmq-steps header and save new ones in the slot; the slot writes them all into the
 * event's retry or DLQ copy. Nothing here runs for a handler that uses no steps except
 * wk_steps_begin / wk_steps_end, which only set a few fields. */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "hq_log.h"
#include "worker.h"

/* The steps of the handle() running on this thread (set around handle()). */
static _Thread_local struct wk_steps *tl_steps;

void wk_steps_begin(struct wk_steps *st, const struct hq_msg *m, size_t max_bytes,
                    const char *consumer)
{
    const struct hq_hdr *h = hq_msg_header(m, HQ_STEPS_HEADER);

    st->ev = NULL;
    st->carried_text = h && h->type == HQ_HDR_TABLE && h->str && h->str[0] ? h->str : NULL;
    st->parsed = false;
    st->n_new = 0;
    st->bytes = 0;
    st->max_bytes = max_bytes;
    st->consumer = consumer;
}

void wk_steps_end(struct wk_steps *st)
{
    size_t i;

    for (i = 0; i < st->n_new; i++) {
        free(st->nv[i].val);
        st->nv[i].val = NULL;
    }
    st->n_new = 0;
    if (st->parsed) {
        hq_steps_free(&st->carried);
        free(st->overridden);
        st->overridden = NULL;
        st->parsed = false;
    }
    st->carried_text = NULL;
    st->ev = NULL;
}

void wk_steps_free(struct wk_steps *st)
{
    wk_steps_end(st);
    free(st->nv);
    st->nv = NULL;
    st->cap_new = 0;
}

/* Parse the carried steps once. A malformed header is logged and counts as no steps. */
static int steps_parse(struct wk_steps *st)
{
    size_t i;
    int rc;

    if (st->parsed)
        return HQ_OK;
    memset(&st->carried, 0, sizeof(st->carried));
    if (st->carried_text) {
        rc = hq_steps_parse(st->carried_text, &st->carried);
        if (rc == HQ_ENOMEM)
            return rc;
        if (rc != HQ_OK)
            hq_warn("malformed hookmq-steps header ignored; the steps run again",
                    "consumer=%s", st->consumer);
    }
    if (st->carried.n && !(st->overridden = calloc(st->carried.n, sizeof(bool)))) {
        hq_steps_free(&st->carried);
        return HQ_ENOMEM;
    }
    for (i = 0; i < st->carried.n; i++)
        st->bytes += hq_step_cost(st->carried.v[i].name_len, st->carried.v[i].len);
    st->parsed = true;
    return HQ_OK;
}

void wk_steps_enter(struct wk_steps *st, const struct hq_event *ev)
{
    st->ev = ev;
    tl_steps = st;
}

void wk_steps_leave(struct wk_steps *st)
{
    st->ev = NULL;
    tl_steps = NULL;
}

/* The slot's steps for ev, parsed; NULL when ev is not the running event. */
static struct wk_steps *steps_of(const struct hq_event *ev)
{
    struct wk_steps *st = tl_steps;

    if (!st || !ev || st->ev != ev || steps_parse(st) != HQ_OK)
        return NULL;
    return st;
}

static struct wk_step_new *find_new(struct wk_steps *st, const char *name)
{
    size_t i;

    for (i = 0; i < st->n_new; i++)
        if (strcmp(st->nv[i].name, name) == 0)
            return &st->nv[i];
    return NULL;
}

static ssize_t find_carried(struct wk_steps *st, const char *name)
{
    size_t i;

    for (i = 0; i < st->carried.n; i++)
        if (!st->overridden[i] && strcmp(st->carried.v[i].name, name) == 0)
            return (ssize_t)i;
    return -1;
}

int wk_step_get(const struct hq_event *ev, const char *name, const void **data, size_t *len)
{
    struct wk_steps *st = steps_of(ev);
    struct wk_step_new *n;
    ssize_t k;

    if (data)
        *data = NULL;
    if (len)
        *len = 0;
    if (!st || !name || !hq_step_name_ok(name, strlen(name)))
        return 0;
    if ((n = find_new(st, name)) != NULL) {
        if (data)
            *data = n->val;
        if (len)
            *len = n->len;
        return 1;
    }
    if ((k = find_carried(st, name)) < 0)
        return 0;
    if (data)
        *data = st->carried.v[k].val;
    if (len)
        *len = st->carried.v[k].len;
    return 1;
}

int wk_step_put(const struct hq_event *ev, const char *name, const void *data, size_t len)
{
    struct wk_steps *st = steps_of(ev);
    struct wk_step_new *n;
    size_t nl, old = 0, total;
    ssize_t k = -1;
    unsigned char *copy;

    if (!st || !name || (len && !data))
        return HQ_STEP_EINVAL;
    nl = strlen(name);
    if (!hq_step_name_ok(name, nl))
        return HQ_STEP_EINVAL;
    n = find_new(st, name);
    if (n)
        old = hq_step_cost(nl, n->len);
    else if ((k = find_carried(st, name)) >= 0)
        old = hq_step_cost(nl, st->carried.v[k].len);
    total = st->bytes - old + hq_step_cost(nl, len);
    if (total > st->max_bytes) {
        hq_warn("step not saved: the event's steps would exceed steps.max_bytes",
                "consumer=%s step=%s size=%zu steps_bytes=%zu max_bytes=%zu", st->consumer, name,
                len, total, st->max_bytes);
        return HQ_STEP_ETOOBIG;
    }
    copy = malloc(len ? len : 1);
    if (!copy)
        return HQ_STEP_ENOMEM;
    if (len)
        memcpy(copy, data, len);
    if (!n) {
        if (st->n_new == st->cap_new) {
            size_t cap = st->cap_new ? st->cap_new * 2 : 8;
            struct wk_step_new *v = realloc(st->nv, cap * sizeof(*v));

            if (!v) {
                free(copy);
                return HQ_STEP_ENOMEM;
            }
            st->nv = v;
            st->cap_new = cap;
        }
        n = &st->nv[st->n_new++];
        memcpy(n->name, name, nl + 1);
        n->val = NULL;
        if (k >= 0)
            st->overridden[k] = true;
    }
    free(n->val);
    n->val = copy;
    n->len = len;
    st->bytes = total;
    return HQ_STEP_OK;
}

size_t wk_step_count(const struct hq_event *ev)
{
    struct wk_steps *st = steps_of(ev);
    size_t i, n = 0;

    if (!st)
        return 0;
    for (i = 0; i < st->carried.n; i++)
        n += !st->overridden[i];
    return n + st->n_new;
}

const char *wk_step_name(const struct hq_event *ev, size_t idx)
{
    struct wk_steps *st = steps_of(ev);
    size_t i;

    if (!st)
        return NULL;
    for (i = 0; i < st->carried.n; i++) {
        if (st->overridden[i])
            continue;
        if (idx-- == 0)
            return st->carried.v[i].name;
    }
    return idx < st->n_new ? st->nv[idx].name : NULL;
}

int wk_steps_text(struct wk_steps *st, struct hq_buf *out, bool *changed)
{
    size_t i;
    int rc;

    *changed = false;
    if (st->n_new == 0)
        return HQ_OK;
    if ((rc = steps_parse(st)) != HQ_OK)
        return rc;
    for (i = 0; i < st->carried.n; i++) {
        const struct hq_step *c = &st->carried.v[i];

        if (!st->overridden[i] &&
            (rc = hq_steps_append(out, c->name, c->name_len, c->val, c->len)) != HQ_OK)
            return rc;
    }
    for (i = 0; i < st->n_new; i++)
        if ((rc = hq_steps_append(out, st->nv[i].name, strlen(st->nv[i].name), st->nv[i].val,
                                  st->nv[i].len)) != HQ_OK)
            return rc;
    *changed = true;
    return HQ_OK;
}
