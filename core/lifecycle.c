/* lifecycle: lifecycle records (hq_lifecycle.h) and their best-effort emitter.
 *
 * hq_lc_emit() encodes the record and appends it to a bounded ring under a mutex held only
 * for the append: it never waits for the broker. One background thread takes records off the
 * ring and hands them to an hq_pub pool of one connection without waiting for each confirm
 * (hq_pub_publish_async: the pool pipelines a window of LC_WINDOW publishes), so records flow
 * at the broker's pace instead of one confirm round trip each. While the broker is
 * unreachable or the pool's queue is full, a record taken goes back to the head of the ring
 * and the sender waits; when the ring fills, further records are dropped and counted. A
 * record whose connection is lost before its confirm is dropped (best effort). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "hq__archive.h"
#include "hq_lifecycle.h"
#include "hq_log.h"
#include "hq_pub.h"
#include "hq_time.h"

#define LC_ERROR_MAX 1024
#define LC_DOWN_WAIT_MS 100
#define LC_WINDOW 512
#define LC_SENDERS 1

const char *hq_lc_verdict_name(enum hq_lc_verdict v)
{
    switch (v) {
    case HQ_LC_PROCESSED: return "processed";
    case HQ_LC_RETRY_SCHEDULED: return "retry_scheduled";
    case HQ_LC_DEAD_LETTERED: return "dead_lettered";
    case HQ_LC_REDRIVEN: return "redriven";
    case HQ_LC_REPLAYED: return "replayed";
    case HQ_LC_DEDUPED: return "deduped";
    default: return NULL;
    }
}

/* The length of s cut to max bytes without splitting a UTF-8 sequence. */
static size_t cut_utf8(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static int kv(struct hq_buf *b, const char *key, const char *v, size_t n)
{
    int rc = hq_buf_append(b, key, strlen(key));

    if (rc != HQ_OK)
        return rc;
    if (!v)
        return hq_buf_append(b, "null", 4);
    return hq__json_str(b, v, n);
}

int hq_lc_encode(const struct hq_lc_record *r, struct hq_msg *out)
{
    struct hq_buf body = HQ_BUF_INIT(64 * 1024);
    const char *verdict;
    char id[37];
    int rc = HQ_EINVAL;

    if (!out)
        return HQ_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!r || !r->consumer || !r->consumer[0] || !r->source || !r->id ||
        !(verdict = hq_lc_verdict_name(r->verdict)))
        return HQ_EINVAL;
    if ((rc = hq_buf_append(&body, "{", 1)) != HQ_OK ||
        (rc = kv(&body, "\"source\":", r->source, strlen(r->source))) != HQ_OK ||
        (rc = kv(&body, ",\"id\":", r->id, strlen(r->id))) != HQ_OK ||
        (rc = kv(&body, ",\"consumer\":", r->consumer, strlen(r->consumer))) != HQ_OK ||
        (rc = hq_buf_appendf(&body, ",\"attempt\":%u,\"verdict\":\"%s\"", r->attempt, verdict)) !=
            HQ_OK ||
        (rc = kv(&body, ",\"tier\":", r->tier, r->tier ? strlen(r->tier) : 0)) != HQ_OK ||
        (rc = kv(&body, ",\"error\":", r->error,
                 r->error ? cut_utf8(r->error, LC_ERROR_MAX) : 0)) != HQ_OK ||
        (rc = hq_buf_appendf(&body, ",\"at\":%lld}", (long long)r->at_ms)) != HQ_OK)
        goto out;

    rc = HQ_ENOMEM;
    hq_uuid7(id);
    out->routing_key = malloc(strlen(r->consumer) + strlen(verdict) + 2);
    out->message_id = strdup(id);
    out->content_type = strdup("application/json");
    if (!out->routing_key || !out->message_id || !out->content_type)
        goto out;
    snprintf(out->routing_key, strlen(r->consumer) + strlen(verdict) + 2, "%s.%s", r->consumer,
             verdict);
    out->timestamp_s = r->at_ms / 1000;
    if ((rc = hq_msg_add_str(out, "hookmq-source", r->source)) != HQ_OK ||
        (rc = hq_msg_add_str(out, "hookmq-event-id", r->id)) != HQ_OK ||
        (rc = hq_msg_add_str(out, "hookmq-consumer", r->consumer)) != HQ_OK ||
        (rc = hq_msg_add_str(out, "hookmq-verdict", verdict)) != HQ_OK)
        goto out;
    out->body = body.data;
    out->body_len = body.len;
    body.data = NULL;
    rc = HQ_OK;
out:
    hq_buf_free(&body);
    if (rc != HQ_OK)
        hq_msg_free(out);
    return rc;
}

/* ================================================================== parse */

void hq_lc_parsed_free(struct hq_lc_parsed *p)
{
    if (!p)
        return;
    free(p->source);
    free(p->id);
    free(p->consumer);
    free(p->verdict);
    free(p->tier);
    free(p->error);
    memset(p, 0, sizeof(*p));
}

static int member_str(json_object *o, const char *key, char **out)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return HQ_OK; /* absent or null */
    *out = strndup(json_object_get_string(v), (size_t)json_object_get_string_len(v));
    return *out ? HQ_OK : HQ_ENOMEM;
}

int hq_lc_parse(const unsigned char *body, size_t n, struct hq_lc_parsed *out)
{
    json_object *o, *v;
    int rc = HQ_EINVAL;

    if (!out)
        return HQ_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!body || n < 2 || n > (1u << 20))
        return HQ_EINVAL;
    o = hq__json_parse((const char *)body, n, 8);
    if (!o || !json_object_is_type(o, json_type_object))
        goto out;
    if ((rc = member_str(o, "source", &out->source)) != HQ_OK ||
        (rc = member_str(o, "id", &out->id)) != HQ_OK ||
        (rc = member_str(o, "consumer", &out->consumer)) != HQ_OK ||
        (rc = member_str(o, "verdict", &out->verdict)) != HQ_OK ||
        (rc = member_str(o, "tier", &out->tier)) != HQ_OK ||
        (rc = member_str(o, "error", &out->error)) != HQ_OK)
        goto out;
    rc = HQ_EINVAL;
    if (!out->verdict)
        goto out;
    if (json_object_object_get_ex(o, "attempt", &v) && json_object_is_type(v, json_type_int)) {
        int64_t a = json_object_get_int64(v);
        out->attempt = a < 0 ? 0 : a > UINT32_MAX ? UINT32_MAX : (uint32_t)a;
    }
    if (json_object_object_get_ex(o, "at", &v) && json_object_is_type(v, json_type_int))
        out->at_ms = json_object_get_int64(v);
    rc = HQ_OK;
out:
    if (o)
        json_object_put(o);
    if (rc != HQ_OK)
        hq_lc_parsed_free(out);
    return rc;
}

/* ================================================================== emitter */

struct hq_lc_emitter {
    struct hq_pub *pub;
    pthread_t threads[LC_SENDERS];
    int n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct hq_msg *ring; /* capacity slots */
    size_t cap, head, len;
    bool stopping;
    int64_t drain_deadline; /* hq_mono_ms; valid once stopping */
    int64_t down_until;     /* hq_mono_ms: the broker was unreachable, wait until then */
    uint64_t dropped, published, unconfirmed;
};

static void cv_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

/* A sender: takes the oldest record, publishes it with a confirm, settles it. */
static void *lc_main(void *arg)
{
    struct hq_lc_emitter *e = arg;
    struct hq_msg m;
    int rc;

    pthread_mutex_lock(&e->mu);
    for (;;) {
        int64_t now = hq_mono_ms();

        if (e->stopping && (e->len == 0 || now >= e->drain_deadline))
            break;
        if (e->len == 0) {
            cv_wait_ms(&e->cv, &e->mu, 1000);
            continue;
        }
        if (e->down_until > now) {
            int64_t wait = e->down_until - now;

            if (e->stopping && e->drain_deadline - now < wait)
                wait = e->drain_deadline - now;
            cv_wait_ms(&e->cv, &e->mu, wait > 0 ? wait : 1);
            continue;
        }
        m = e->ring[e->head];
        memset(&e->ring[e->head], 0, sizeof(e->ring[e->head]));
        e->head = (e->head + 1) % e->cap;
        e->len--;
        pthread_mutex_unlock(&e->mu);
        rc = hq_pub_publish_async(e->pub, HQ_LIFECYCLE_EXCHANGE, &m);
        pthread_mutex_lock(&e->mu);
        if (rc == HQ_EDOWN || rc == HQ_EBLOCKED || rc == HQ_EFULL) {
            /* not sent: back to the head while there is room, and wait a little */
            if (e->len < e->cap) {
                e->head = (e->head + e->cap - 1) % e->cap;
                e->ring[e->head] = m;
                e->len++;
            } else {
                e->dropped++;
                hq_msg_free(&m);
            }
            /* a full queue drains in a moment; a broker away takes longer */
            e->down_until = hq_mono_ms() + (rc == HQ_EFULL ? 1 : LC_DOWN_WAIT_MS);
            continue;
        }
        if (rc == HQ_OK)
            e->published++;
        else
            e->dropped++;
        hq_msg_free(&m);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

int hq_lc_start(const struct hq_broker_cfg *broker, const char *conn_name, size_t capacity,
                struct hq_lc_emitter **out)
{
    struct hq_lc_emitter *e;
    pthread_condattr_t ca;
    int rc, i;

    if (!out)
        return HQ_EINVAL;
    *out = NULL;
    if (!broker || capacity == 0 || capacity > (1u << 24))
        return HQ_EINVAL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return HQ_ENOMEM;
    e->ring = calloc(capacity, sizeof(*e->ring));
    if (!e->ring) {
        free(e);
        return HQ_ENOMEM;
    }
    e->cap = capacity;
    pthread_mutex_init(&e->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cv, &ca);
    pthread_condattr_destroy(&ca);
    rc = hq_pub_start(broker, 1, LC_WINDOW, conn_name ? conn_name : "hookmq lifecycle", &e->pub);
    if (rc != HQ_OK)
        goto fail;
    for (i = 0; i < LC_SENDERS; i++) {
        if (pthread_create(&e->threads[i], NULL, lc_main, e) != 0)
            break;
        e->n_threads++;
    }
    if (e->n_threads == 0) {
        hq_pub_stop(e->pub, 0);
        rc = HQ_ENOMEM;
        goto fail;
    }
    *out = e;
    return HQ_OK;
fail:
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e->ring);
    free(e);
    return rc;
}

void hq_lc_emit(struct hq_lc_emitter *e, const struct hq_lc_record *r)
{
    struct hq_msg m;

    if (!e || !r)
        return;
    if (hq_lc_encode(r, &m) != HQ_OK) {
        pthread_mutex_lock(&e->mu);
        e->dropped++;
        pthread_mutex_unlock(&e->mu);
        return;
    }
    pthread_mutex_lock(&e->mu);
    if (e->stopping || e->len == e->cap) {
        e->dropped++;
        pthread_mutex_unlock(&e->mu);
        hq_msg_free(&m);
        return;
    }
    e->ring[(e->head + e->len) % e->cap] = m;
    e->len++;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

uint64_t hq_lc_dropped(struct hq_lc_emitter *e)
{
    uint64_t n;

    if (!e)
        return 0;
    pthread_mutex_lock(&e->mu);
    n = e->dropped;
    pthread_mutex_unlock(&e->mu);
    return n;
}

void hq_lc_get_stats(struct hq_lc_emitter *e, struct hq_lc_stats *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof(*st));
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    st->queued = e->len;
    st->published = e->published;
    st->dropped = e->dropped;
    st->unconfirmed = e->unconfirmed;
    pthread_mutex_unlock(&e->mu);
}

void hq_lc_stop(struct hq_lc_emitter *e, int drain_ms)
{
    int i;

    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    e->drain_deadline = hq_mono_ms() + (drain_ms > 0 ? drain_ms : 0);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    for (i = 0; i < e->n_threads; i++)
        pthread_join(e->threads[i], NULL);
    /* what is left is dropped */
    while (e->len) {
        hq_msg_free(&e->ring[e->head]);
        e->head = (e->head + 1) % e->cap;
        e->len--;
        e->dropped++;
    }
    {
        /* the pool publishes what it was handed, within what is left of the drain time */
        int64_t left = e->drain_deadline - hq_mono_ms();
        hq_pub_stop(e->pub, left > 500 ? (int)left : 500);
    }
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e->ring);
    free(e);
}
