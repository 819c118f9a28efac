/* dlq_scan: read a DLQ without taking anything out of it (hq_dlq.h, hq_dlq_scan): every
 * message is read with basic.get (unacked), shown to a callback, and put back in its place
 * (hq_dlq_return) unless the callback settled it. For readers that are not hookmq-dlx, e.g.
 * the console's dead-letter page. */
#include <stdlib.h>
#include <string.h>

#include "hq_dlq.h"
#include "hq_log.h"

struct held {
    uint64_t *tags;
    size_t n, alloc;
};

static int held_add(struct held *h, uint64_t tag)
{
    if (h->n == h->alloc) {
        size_t na = h->alloc ? h->alloc * 2 : 1024;
        uint64_t *p = realloc(h->tags, na * sizeof(*p));

        if (!p)
            return HQ_ENOMEM;
        h->tags = p;
        h->alloc = na;
    }
    h->tags[h->n++] = tag;
    return HQ_OK;
}

int hq_dlq_scan(struct hq_amqp *c, const char *queue, size_t max, hq_dlq_visit_fn fn, void *ud,
                size_t *seen, bool *more)
{
    struct hq_delivery d;
    struct held h = {NULL, 0, 0};
    bool stop = false, ordered = true;
    int rc = HQ_OK, r2;

    *seen = 0;
    if (more)
        *more = false;
    for (;;) {
        bool settled = false;

        if (*seen >= max) {
            if (more) { /* is there more? one peek, returned with the rest */
                rc = hq_amqp_get(c, queue, false, &d);
                if (rc == HQ_OK) {
                    *more = true;
                    rc = held_add(&h, d.tag);
                    hq_delivery_free(&d);
                } else if (rc == HQ_ENOTFOUND) {
                    rc = HQ_OK;
                }
            }
            break;
        }
        rc = hq_amqp_get(c, queue, false, &d);
        if (rc == HQ_ENOTFOUND) {
            rc = HQ_OK;
            break;
        }
        if (rc != HQ_OK) {
            hq_warn("reading a DLQ failed", "queue=%s error=\"%s\"", queue, hq_consume_error(c));
            break;
        }
        (*seen)++;
        if (!stop)
            rc = fn(ud, c, &d, &stop, &settled);
        if (!settled) {
            r2 = held_add(&h, d.tag);
            if (rc == HQ_OK)
                rc = r2;
        }
        hq_delivery_free(&d);
        if (rc != HQ_OK)
            break;
    }
    r2 = hq_dlq_return(c, queue, h.tags, h.n, &ordered);
    if (r2 != HQ_OK)
        hq_warn("returning DLQ messages failed: the broker returns them when the connection "
                "closes, possibly in another order", "queue=%s error=\"%s\"", queue,
                hq_consume_error(c));
    else if (!ordered)
        hq_warn("the DLQ did not take the returned messages back in time (a consumer?); their "
                "order may change", "queue=%s", queue);
    free(h.tags);
    return rc != HQ_OK ? rc : r2;
}
