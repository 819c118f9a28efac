/* lifecycle: lifecycle records (hq_lifecycle.h) and their best-effort emitter.
 *
 * hq_lc_emit() copies the record's strings (one allocation) and appends it to a bounded ring
 * under a mutex held only for the append: it never waits for the broker, and the JSON
 * encoding is left to the sender. One background thread takes records off the
 * ring and hands them to an hq_pub pool of one connection without waiting for each confirm
 * (hq_pub_publish_async: the pool pipelines a window of LC_WINDOW publishes), so records flow
 * at the broker's pace instead of one confirm round trip each. While the broker is
 * unreachable or the pool's queue is full, a record taken goes back to the head of the ring
 * and the sender waits; when the ring fills, further records are dropped and counted. A
 * record whose connection is lost before its confirm is dropped (best effort).
 *
 * Records waiting in the ring with the same routing key (<consumer>.<verdict>: under load,
 * mostly "processed"; the sender lingers LC_LINGER_MS for them) leave as one message of up to
 * LC_BATCH records, one JSON object per line (hq_lc_batch), also when records of other keys
 * wait between them; the records of one key keep their order. Every record costs the broker a
 * quorum-queue write in hookmq.archive; batched, a busy worker's lifecycle stream costs it a
 * few percent of its events' instead of doubling its load. The archive logger splits batches
 * back into one record each. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "hq__archive.h"
#include "hq_buf.h"
#include "hq_json.h"
#include "hq_lifecycle.h"
#include "hq_log.h"
#include "hq_pub.h"
#include "hq_time.h"
#include "hq_utf8.h"

#define LC_ERROR_MAX 1024
#define LC_DOWN_WAIT_MS 100
#define LC_WINDOW 512
#define LC_SENDERS 1
/* Batches of 256 rather than 64 took a no-op worker from 0.81-0.82 to 0.85-0.90 of the raw
 * consume loop (bench/worker_bench.sh, docs/performance.md): each lifecycle message costs the
 * broker a quorum-queue write whatever its size. */
#define LC_BATCH 256                /* records per message at most */
#define LC_BATCH_BYTES (128 * 1024) /* body bytes per message at most (one record may exceed) */
#define LC_LINGER_MS 5              /* a record waits this long for others to share its message */
/* How far behind the head a batch gathers its routing key's records: a handler that saves
 * durable steps queues "step", "step", "step", "retry_scheduled" for every event, and taking
 * only the run at the head sent two messages per event (bench/worker_bench.sh). */
#define LC_SCAN (4 * LC_BATCH)

const char *hq_lc_verdict_name(enum hq_lc_verdict v)
{
    switch (v) {
    case HQ_LC_PROCESSED: return "processed";
    case HQ_LC_RETRY_SCHEDULED: return "retry_scheduled";
    case HQ_LC_DEAD_LETTERED: return "dead_lettered";
    case HQ_LC_REDRIVEN: return "redriven";
    case HQ_LC_REPLAYED: return "replayed";
    case HQ_LC_DEDUPED: return "deduped";
    case HQ_LC_STEP: return "step";
    case HQ_LC_EDITED: return "edit";
    default: return NULL;
    }
}

static int kv(struct hq_buf *b, const char *key, const char *v, size_t n)
{
    int rc = hq_buf_append(b, key, strlen(key));

    if (rc != HQ_OK)
        return rc;
    if (!v)
        return hq_buf_append(b, "null", 4);
    return hq_json_str(b, v, n);
}

/* Append r's JSON object to body (no newline). r is valid (checked by the caller). */
static int lc_body(const struct hq_lc_record *r, const char *verdict, struct hq_buf *body)
{
    int rc;

    if ((rc = hq_buf_append(body, "{", 1)) != HQ_OK ||
        (rc = kv(body, "\"source\":", r->source, strlen(r->source))) != HQ_OK ||
        (rc = kv(body, ",\"id\":", r->id, strlen(r->id))) != HQ_OK ||
        (rc = kv(body, ",\"consumer\":", r->consumer, strlen(r->consumer))) != HQ_OK ||
        (rc = hq_buf_appendf(body, ",\"attempt\":%u,\"verdict\":\"%s\"", r->attempt, verdict)) !=
            HQ_OK ||
        (rc = kv(body, ",\"tier\":", r->tier, r->tier ? strlen(r->tier) : 0)) != HQ_OK ||
        (rc = kv(body, ",\"error\":", r->error,
                 r->error ? hq_utf8_cut(r->error, LC_ERROR_MAX) : 0)) != HQ_OK ||
        (r->by && (rc = kv(body, ",\"by\":", r->by, strlen(r->by))) != HQ_OK) ||
        (rc = hq_buf_appendf(body, ",\"at\":%lld", (long long)r->at_ms)) != HQ_OK)
        return rc;
    if (r->verdict == HQ_LC_STEP &&
        ((rc = kv(body, ",\"step\":", r->step ? r->step : "", r->step ? strlen(r->step) : 0)) !=
             HQ_OK ||
         (rc = hq_buf_appendf(body, ",\"size\":%lld", (long long)r->size)) != HQ_OK))
        return rc;
    return hq_buf_append(body, "}", 1);
}

static bool lc_valid(const struct hq_lc_record *r)
{
    return r && r->consumer && r->consumer[0] && r->source && r->id &&
           hq_lc_verdict_name(r->verdict);
}

/* The message of n >= 2 records of one consumer and verdict whose bodies are in body, one per
 * line: body is taken over (reset) on success. */
static int batch_msg(const char *consumer, const char *verdict, size_t n, int64_t ts_s,
                     struct hq_buf *body, struct hq_msg *out)
{
    char id[37];
    size_t rklen = strlen(consumer) + strlen(verdict) + 2;
    int rc = HQ_ENOMEM;

    memset(out, 0, sizeof(*out));
    hq_uuid7(id);
    out->routing_key = malloc(rklen);
    out->message_id = strdup(id);
    out->content_type = strdup("application/x-ndjson");
    if (!out->routing_key || !out->message_id || !out->content_type)
        goto out;
    snprintf(out->routing_key, rklen, "%s.%s", consumer, verdict);
    out->timestamp_s = ts_s;
    if ((rc = hq_msg_add_str(out, "hookmq-consumer", consumer)) != HQ_OK ||
        (rc = hq_msg_add_str(out, "hookmq-verdict", verdict)) != HQ_OK ||
        (rc = hq_msg_add_long(out, "hookmq-records", (int64_t)n)) != HQ_OK)
        goto out;
    out->body = body->data;
    out->body_len = body->len;
    body->data = NULL;
    body->len = body->alloc = 0;
    rc = HQ_OK;
out:
    if (rc != HQ_OK)
        hq_msg_free(out);
    return rc;
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
    if (!lc_valid(r))
        return HQ_EINVAL;
    verdict = hq_lc_verdict_name(r->verdict);
    if ((rc = lc_body(r, verdict, &body)) != HQ_OK)
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

int hq_lc_batch(const struct hq_msg *recs, size_t n, struct hq_msg *out)
{
    struct hq_buf body = HQ_BUF_INIT(64 * 1024 * 1024);
    const char *consumer, *verdict;
    size_t i;
    int rc = HQ_EINVAL;

    if (!out)
        return HQ_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!recs || n < 2 || !recs[0].routing_key)
        return HQ_EINVAL;
    consumer = hq_msg_str(&recs[0], "hookmq-consumer");
    verdict = hq_msg_str(&recs[0], "hookmq-verdict");
    if (!consumer || !verdict)
        return HQ_EINVAL;
    for (i = 0; i < n; i++) {
        if (!recs[i].routing_key || strcmp(recs[i].routing_key, recs[0].routing_key) != 0 ||
            !recs[i].body_len || memchr(recs[i].body, '\n', recs[i].body_len)) {
            rc = HQ_EINVAL;
            goto out;
        }
        if ((i && (rc = hq_buf_append(&body, "\n", 1)) != HQ_OK) ||
            (rc = hq_buf_append(&body, recs[i].body, recs[i].body_len)) != HQ_OK)
            goto out;
    }
    rc = batch_msg(consumer, verdict, n, recs[0].timestamp_s, &body, out);
out:
    hq_buf_free(&body);
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
    free(p->step);
    free(p->by);
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
    o = hq_json_parse((const char *)body, n, 8);
    if (!o || !json_object_is_type(o, json_type_object))
        goto out;
    if ((rc = member_str(o, "source", &out->source)) != HQ_OK ||
        (rc = member_str(o, "id", &out->id)) != HQ_OK ||
        (rc = member_str(o, "consumer", &out->consumer)) != HQ_OK ||
        (rc = member_str(o, "verdict", &out->verdict)) != HQ_OK ||
        (rc = member_str(o, "tier", &out->tier)) != HQ_OK ||
        (rc = member_str(o, "error", &out->error)) != HQ_OK ||
        (rc = member_str(o, "step", &out->step)) != HQ_OK ||
        (rc = member_str(o, "by", &out->by)) != HQ_OK)
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
    if (json_object_object_get_ex(o, "size", &v) && json_object_is_type(v, json_type_int))
        out->size = json_object_get_int64(v);
    rc = HQ_OK;
out:
    if (o)
        json_object_put(o);
    if (rc != HQ_OK)
        hq_lc_parsed_free(out);
    return rc;
}

/* ================================================================== emitter */

/* A record waiting in the ring: copies of its strings in one allocation. The JSON encoding,
 * batching and the message are left to the sender thread, off the caller's hot path. */
struct lc_item {
    char *mem; /* owns the strings below; NULL in an empty slot */
    const char *source, *id, *consumer, *tier, *error, *step, *by;
    uint32_t attempt;
    enum hq_lc_verdict verdict;
    int64_t at_ms;
    int64_t step_size;
    size_t size; /* about what its JSON takes */
};

static void item_free(struct lc_item *it)
{
    free(it->mem);
    memset(it, 0, sizeof(*it));
}

static int item_new(const struct hq_lc_record *r, struct lc_item *it)
{
    const char *src[7] = {r->source, r->id, r->consumer, r->tier, r->error, r->step, r->by};
    size_t len[7], total = 0, i;
    const char **dst[7] = {&it->source, &it->id, &it->consumer, &it->tier, &it->error,
                           &it->step, &it->by};
    char *p;

    memset(it, 0, sizeof(*it));
    for (i = 0; i < 7; i++) {
        len[i] = src[i] ? (i == 4 ? hq_utf8_cut(src[i], LC_ERROR_MAX) : strlen(src[i])) : 0;
        total += len[i] + 1;
    }
    if (!(it->mem = malloc(total)))
        return HQ_ENOMEM;
    for (p = it->mem, i = 0; i < 7; i++) {
        if (!src[i])
            continue;
        memcpy(p, src[i], len[i]);
        p[len[i]] = '\0';
        *dst[i] = p;
        p += len[i] + 1;
    }
    it->attempt = r->attempt;
    it->verdict = r->verdict;
    it->at_ms = r->at_ms;
    it->step_size = r->size;
    it->size = total + 120;
    return HQ_OK;
}

static void item_record(const struct lc_item *it, struct hq_lc_record *r)
{
    memset(r, 0, sizeof(*r));
    r->source = it->source;
    r->id = it->id;
    r->consumer = it->consumer;
    r->tier = it->tier;
    r->error = it->error;
    r->by = it->by;
    r->attempt = it->attempt;
    r->verdict = it->verdict;
    r->at_ms = it->at_ms;
    r->step = it->step;
    r->size = it->step_size;
}

/* The message of v[0..n): alone as hq_lc_encode makes it, several as one batch. */
static int items_msg(const struct lc_item *v, size_t n, struct hq_msg *out)
{
    struct hq_buf body = HQ_BUF_INIT(64 * 1024 * 1024);
    struct hq_lc_record r;
    const char *verdict = hq_lc_verdict_name(v[0].verdict);
    size_t i;
    int rc = HQ_OK;

    if (n == 1) {
        item_record(&v[0], &r);
        return hq_lc_encode(&r, out);
    }
    for (i = 0; i < n && rc == HQ_OK; i++) {
        item_record(&v[i], &r);
        if (i)
            rc = hq_buf_append(&body, "\n", 1);
        if (rc == HQ_OK)
            rc = lc_body(&r, verdict, &body);
    }
    if (rc == HQ_OK)
        rc = batch_msg(v[0].consumer, verdict, n, v[0].at_ms / 1000, &body, out);
    hq_buf_free(&body);
    return rc;
}

struct hq_lc_emitter {
    struct hq_pub *pub;
    pthread_t threads[LC_SENDERS];
    int n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct lc_item *ring; /* capacity slots */
    size_t cap, head, len;
    bool stopping;
    int64_t drain_deadline; /* hq_mono_ms; valid once stopping */
    int64_t down_until;     /* hq_mono_ms: the broker was unreachable, wait until then */
    uint64_t dropped, published, unconfirmed;
    size_t sending;    /* records a sender took off the ring and has not settled yet */
    int64_t oldest_ms; /* hq_mono_ms when the oldest record in the ring was queued */
};

/* The next message's records: the head record's routing key, LC_BATCH_BYTES of body at most. */
struct lc_pick {
    bool started;
    enum hq_lc_verdict verdict;
    const char *consumer;
    size_t bytes;
};

static enum hq_ring_pick lc_pick(const void *x, void *arg)
{
    const struct lc_item *m = x;
    struct lc_pick *p = arg;

    if (!p->started) {
        p->started = true;
        p->verdict = m->verdict;
        p->consumer = m->consumer; /* owned by m->mem, which moves with the item */
        p->bytes = m->size;
        return HQ_RING_TAKE;
    }
    if (m->verdict != p->verdict || strcmp(m->consumer, p->consumer) != 0)
        return HQ_RING_SKIP;
    if (p->bytes + m->size > LC_BATCH_BYTES)
        return HQ_RING_STOP;
    p->bytes += m->size;
    return HQ_RING_TAKE;
}

/* Take the head record and the records queued behind it with the same routing key (up to
 * LC_BATCH records and LC_BATCH_BYTES) off the ring into v; records of other keys in between
 * stay, in their order (e->mu held). Returns how many. */
static size_t take(struct hq_lc_emitter *e, struct lc_item *v)
{
    struct lc_pick p = {0};

    return hq_ring_take_if(e->ring, sizeof(*e->ring), e->cap, &e->head, &e->len, v, LC_BATCH,
                           LC_SCAN, lc_pick, &p);
}

/* Put v[0..n) back at the head of the ring, in order, as far as there is room (e->mu held);
 * the rest is dropped and counted. */
static void give_back(struct hq_lc_emitter *e, struct lc_item *v, size_t n)
{
    while (n--) {
        if (e->len < e->cap) {
            e->head = (e->head + e->cap - 1) % e->cap;
            e->ring[e->head] = v[n];
            e->len++;
        } else {
            e->dropped++;
            item_free(&v[n]);
        }
    }
}

/* A sender: takes the oldest records (a batch of the same routing key), hands them to the
 * pool as one message, and counts them. */
static void *lc_main(void *arg)
{
    struct hq_lc_emitter *e = arg;
    struct lc_item v[LC_BATCH];
    struct hq_msg batch;
    size_t n, i;
    int rc;

    pthread_mutex_lock(&e->mu);
    for (;;) {
        int64_t now = hq_mono_ms();

        if (e->stopping && (e->len == 0 || now >= e->drain_deadline))
            break;
        if (e->len == 0) {
            hq_cond_wait_until(&e->cv, &e->mu, now + 1000);
            continue;
        }
        if (e->down_until > now) {
            int64_t wait = e->down_until - now;

            if (e->stopping && e->drain_deadline - now < wait)
                wait = e->drain_deadline - now;
            hq_cond_wait_until(&e->cv, &e->mu, now + (wait > 0 ? wait : 1));
            continue;
        }
        if (!e->stopping && e->len < LC_BATCH && now < e->oldest_ms + LC_LINGER_MS) {
            /* let a few more records join this one's message */
            hq_cond_wait_until(&e->cv, &e->mu, e->oldest_ms + LC_LINGER_MS);
            continue;
        }
        n = take(e, v);
        e->oldest_ms = now - LC_LINGER_MS; /* what is left has waited long enough: no linger */
        e->sending += n;
        pthread_mutex_unlock(&e->mu);
        if ((rc = items_msg(v, n, &batch)) == HQ_OK) {
            rc = hq_pub_publish_async(e->pub, HQ_LIFECYCLE_EXCHANGE, &batch);
            hq_msg_free(&batch);
        } else {
            rc = HQ_EINVAL; /* cannot be encoded (memory): dropped below */
        }
        pthread_mutex_lock(&e->mu);
        e->sending -= n;
        if (rc == HQ_EDOWN || rc == HQ_EBLOCKED || rc == HQ_EFULL) {
            /* not sent: back to the head while there is room, and wait a little */
            give_back(e, v, n);
            /* a full queue drains in a moment; a broker away takes longer */
            e->down_until = hq_mono_ms() + (rc == HQ_EFULL ? 1 : LC_DOWN_WAIT_MS);
            continue;
        }
        if (rc == HQ_OK)
            e->published += n;
        else
            e->dropped += n;
        for (i = 0; i < n; i++)
            item_free(&v[i]);
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
    struct lc_item m;

    if (!e || !r)
        return;
    if (!lc_valid(r) || item_new(r, &m) != HQ_OK) {
        pthread_mutex_lock(&e->mu);
        e->dropped++;
        pthread_mutex_unlock(&e->mu);
        return;
    }
    pthread_mutex_lock(&e->mu);
    if (e->stopping || e->len + e->sending >= e->cap) { /* records in a sender's hands count */
        e->dropped++;
        pthread_mutex_unlock(&e->mu);
        item_free(&m);
        return;
    }
    e->ring[(e->head + e->len) % e->cap] = m;
    if (e->len++ == 0)
        e->oldest_ms = hq_mono_ms();
    /* the sender lingers on the first record and wakes on its own; a full batch goes now */
    if (e->len == 1 || e->len == LC_BATCH)
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
    st->queued = e->len + e->sending;
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
        item_free(&e->ring[e->head]);
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
