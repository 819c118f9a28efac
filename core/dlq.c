/* dlq: DLQ messages, their failure description, DLQ copies and redriven copies (hq_dlq.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_dlq.h"
#include "hq_lifecycle.h"
#include "hq_steps.h"
#include "hq_time.h"
#include "hq_utf8.h"
#include "hq_topology.h"

#define REDRIVE_MAX 1000000000LL /* a hookmq-redriven beyond this is not a count we made */

/* A long header, or a decimal string one; def when absent or malformed. */
static int64_t hdr_long(const struct hq_msg *m, const char *key, int64_t def)
{
    const struct hq_hdr *h = hq_msg_header(m, key);
    char *end;
    long long v;

    if (!h)
        return def;
    if (h->type == HQ_HDR_LONG)
        return h->num;
    if (!h->str || !h->str[0])
        return def;
    errno = 0;
    v = strtoll(h->str, &end, 10);
    if (errno || *end != '\0')
        return def;
    return (int64_t)v;
}

void hq_dlq_info(const struct hq_delivery *d, struct hq_dlq_info *out)
{
    const struct hq_msg *m;
    const char *s;

    memset(out, 0, sizeof(*out));
    out->id = out->type = out->source = out->consumer = "";
    if (!d)
        return;
    m = &d->msg;
    out->id = m->message_id ? m->message_id : "";
    if ((s = hq_msg_str(m, "hookmq-event-type")) != NULL)
        out->type = s;
    if ((s = hq_msg_str(m, "hookmq-source")) != NULL)
        out->source = s;
    if ((s = hq_msg_str(m, "hookmq-consumer")) != NULL)
        out->consumer = s;
    out->redriven = hdr_long(m, "hookmq-redriven", 0);
    if (out->redriven < 0 || out->redriven > REDRIVE_MAX)
        out->redriven = 0;
    if (d->n_xdeath > 0)
        snprintf(out->reason, sizeof(out->reason), "%s", d->xdeath[0].reason);

    if (out->consumer[0] || d->n_xdeath == 0) {
        /* a copy made by the worker (or something without any failure record) */
        out->attempts = hdr_long(m, "hookmq-attempts", hdr_long(m, "hookmq-attempt", 0));
        out->failed_at_ms = hdr_long(m, "hookmq-failed-at", 0);
        if ((s = hq_msg_str(m, "hookmq-last-error")) != NULL) {
            size_t n = hq_utf8_cut(s, HQ_DLQ_LAST_ERROR_MAX);
            memcpy(out->last_error, s, n);
            out->last_error[n] = '\0';
        }
        if (out->failed_at_ms <= 0 && d->n_xdeath > 0 && d->xdeath[0].time_s > 0)
            out->failed_at_ms = d->xdeath[0].time_s * 1000;
        return;
    }
    out->by_broker = true;
    if (d->xdeath[0].time_s > 0 && d->xdeath[0].time_s < INT64_MAX / 1000)
        out->failed_at_ms = d->xdeath[0].time_s * 1000;
    if (strcmp(d->xdeath[0].reason, "delivery_limit") == 0) {
        out->attempts = (int64_t)HQ_TOPOLOGY_DELIVERY_LIMIT + 1;
        snprintf(out->last_error, sizeof(out->last_error),
                 "delivery_limit (handler crashed or timed out %" PRId64 " times)", out->attempts);
    } else {
        out->attempts = hdr_long(m, "hookmq-attempt", 1);
        snprintf(out->last_error, sizeof(out->last_error), "%s in %s (%" PRId64 " times)",
                 d->xdeath[0].reason[0] ? d->xdeath[0].reason : "dead-lettered",
                 d->xdeath[0].queue[0] ? d->xdeath[0].queue : "?", d->xdeath[0].count);
    }
}

static int name_fmt(char *out, size_t outsz, const char *consumer, const char *suffix)
{
    int n;

    if (!consumer || !out || outsz == 0)
        return HQ_EINVAL;
    n = snprintf(out, outsz, "hookmq.%s%s", consumer, suffix);
    return n < 0 || (size_t)n >= outsz ? HQ_ETOOBIG : HQ_OK;
}

int hq_dlq_queue(const char *consumer, char *out, size_t outsz)
{
    return name_fmt(out, outsz, consumer, ".dlq");
}

int hq_dlq_work_queue(const char *consumer, char *out, size_t outsz)
{
    return name_fmt(out, outsz, consumer, "");
}

static bool dlq_header(const char *k)
{
    return strcmp(k, "hookmq-consumer") == 0 || strcmp(k, "hookmq-attempts") == 0 ||
           strcmp(k, "hookmq-last-error") == 0 || strcmp(k, "hookmq-failed-at") == 0;
}

/* d's message without broker-owned headers, the DLQ headers, and (drop_attempt) the
 * hookmq-attempt / hookmq-redriven headers. */
static int clean_copy(const struct hq_delivery *d, bool drop_attempt, struct hq_msg *out)
{
    size_t i, k = 0;
    int rc;

    rc = hq_msg_copy(&d->msg, out);
    if (rc != HQ_OK)
        return rc;
    for (i = 0; i < out->n_headers; i++) {
        struct hq_hdr *h = &out->headers[i];

        if (!h->key || hq_header_broker_owned(h->key) || dlq_header(h->key) ||
            (drop_attempt && (strcmp(h->key, "hookmq-attempt") == 0 ||
                              strcmp(h->key, "hookmq-redriven") == 0))) {
            free(h->key);
            free(h->str);
            continue;
        }
        out->headers[k++] = *h;
    }
    out->n_headers = k;
    if (k == 0) {
        free(out->headers);
        out->headers = NULL;
    }
    return HQ_OK;
}

int hq_dlq_redrive_copy(const struct hq_delivery *d, struct hq_msg *out)
{
    int64_t redriven;
    int rc;

    if (!d || !out)
        return HQ_EINVAL;
    redriven = hdr_long(&d->msg, "hookmq-redriven", 0);
    if (redriven < 0 || redriven >= REDRIVE_MAX)
        redriven = 0;
    rc = clean_copy(d, true, out);
    if (rc != HQ_OK)
        return rc;
    if ((rc = hq_msg_add_long(out, "hookmq-attempt", 1)) != HQ_OK ||
        (rc = hq_msg_add_long(out, "hookmq-redriven", redriven + 1)) != HQ_OK)
        hq_msg_free(out);
    return rc;
}

int hq_dlq_dead_copy(const struct hq_delivery *d, const char *consumer, int64_t attempts,
                     const char *last_error, int64_t failed_at_ms, struct hq_msg *out)
{
    char err[HQ_DLQ_LAST_ERROR_MAX + 1];
    size_t n;
    int rc;

    if (!d || !consumer || !out)
        return HQ_EINVAL;
    if (!last_error)
        last_error = "";
    n = hq_utf8_cut(last_error, HQ_DLQ_LAST_ERROR_MAX);
    memcpy(err, last_error, n);
    err[n] = '\0';
    rc = clean_copy(d, false, out);
    if (rc != HQ_OK)
        return rc;
    if ((rc = hq_msg_add_str(out, "hookmq-consumer", consumer)) != HQ_OK ||
        (rc = hq_msg_add_long(out, "hookmq-attempts", attempts)) != HQ_OK ||
        (rc = hq_msg_add_str(out, "hookmq-last-error", err)) != HQ_OK ||
        (rc = hq_msg_add_long(out, "hookmq-failed-at", failed_at_ms)) != HQ_OK)
        hq_msg_free(out);
    return rc;
}

int hq_dlq_redrive_one(struct hq_amqp *c, const char *consumer, const struct hq_delivery *d,
                       int timeout_ms)
{
    return hq_dlq_redrive_one_ex(c, consumer, d, timeout_ms, false);
}

int hq_dlq_redrive_one_ex(struct hq_amqp *c, const char *consumer, const struct hq_delivery *d,
                          int timeout_ms, bool reset_steps)
{
    struct hq_msg copy;
    char work[HQ_NAME_MAX + 16];
    int rc;

    memset(&copy, 0, sizeof(copy));
    if (!c || !consumer || !d)
        return HQ_EINVAL;
    rc = hq_dlq_work_queue(consumer, work, sizeof(work));
    if (rc != HQ_OK)
        return rc;
    rc = hq_dlq_redrive_copy(d, &copy);
    if (rc != HQ_OK)
        return rc;
    if (reset_steps)
        hq_msg_remove(&copy, HQ_STEPS_HEADER);
    rc = hq_amqp_publish_confirmed(c, "", work, &copy, timeout_ms);
    hq_msg_free(&copy);
    if (rc != HQ_OK)
        return rc;
    return hq_amqp_ack(c, d->tag);
}

void hq_dlq_emit_redriven(struct hq_lc_emitter *lc, const char *consumer,
                          const struct hq_delivery *d, int64_t at_ms)
{
    struct hq_dlq_info in;
    struct hq_lc_record r;

    if (!lc || !d)
        return;
    hq_dlq_info(d, &in);
    hq_dlq_action_record(&in, consumer, HQ_LC_REDRIVEN, NULL, NULL, at_ms, &r);
    hq_lc_emit(lc, &r);
}

#define RETURN_CHUNK 16
#define RETURN_WAIT_MS 3000

/* Wait until queue holds at least want ready messages. */
static int wait_ready(struct hq_amqp *c, const char *queue, uint32_t want, int timeout_ms)
{
    int64_t deadline = hq_mono_ms() + timeout_ms;
    uint32_t n = 0;
    int rc;

    for (;;) {
        rc = hq_amqp_queue_exists(c, queue, &n, NULL);
        if (rc != HQ_OK || n >= want)
            return rc;
        if (hq_mono_ms() >= deadline)
            return HQ_ETIMEDOUT;
        rc = hq_amqp_service(c, 2);
        if (rc != HQ_OK)
            return rc;
    }
}

int hq_dlq_return(struct hq_amqp *c, const char *queue, const uint64_t *tags, size_t n,
                  bool *ordered)
{
    uint32_t base = 0;
    bool wait = n > 1;
    size_t i;
    int rc = HQ_OK;

    if (ordered)
        *ordered = true;
    if (!c || !queue || (n && !tags))
        return HQ_EINVAL;
    if (wait && hq_amqp_queue_exists(c, queue, &base, NULL) != HQ_OK)
        wait = false;
    for (i = 0; i < n && rc == HQ_OK; i++) {
        rc = hq_amqp_nack(c, tags[i], true);
        if (rc == HQ_OK && wait && ((i + 1) % RETURN_CHUNK == 0 || i + 1 == n)) {
            int w = wait_ready(c, queue, base + (uint32_t)(i + 1), RETURN_WAIT_MS);
            if (w != HQ_OK) {
                wait = false;
                if (ordered)
                    *ordered = false;
            }
        }
    }
    return rc;
}
