/* consume: the consuming side of one broker connection (see hq_consume.h).
 *
 * Its state (the FIFO of buffered deliveries, the consumer tag, the publish waited for) is
 * part of the connection, struct hq_amqp (hq__amqp_private.h), on channel 1. core/amqp.c
 * reads the wire for everybody: step() is one hq__amqp_consume_frame(), which decodes a
 * basic.deliver into the connection's FIFO (hq__consume_push) and hands every other frame to
 * the one dispatcher, hq__amqp_dispatch(): basic.ack / basic.nack settle the publish
 * hq_amqp_publish_confirmed waits for, basic.return marks it unroutable, basic.cancel means the
 * queue went away (consumer_cancel_notify is advertised by amqp.c's login), and a
 * channel.close / connection.close makes every later call answer HQ_EDOWN.
 * hq_amqp_next, hq_amqp_service and hq_amqp_publish_confirmed are loops over step() with
 * different stop conditions, so a delivery that arrives while we wait for a confirm is kept in
 * order, never lost. Replies of our methods go through amqp.c's one translator,
 * hq__amqp_reply(), which reopens channel 1 after a refusal of ours. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq__amqp_private.h"
#include "hq_consume.h"
#include "hq_log.h"
#include "hq_steps.h"
#include "hq_time.h"

#define KEY_MAX 128u                   /* struct hq_hdr key */
#define VAL_MAX (1024u * 1024u)        /* one string header (as hq_msg_add_str) */
#define HDR_MAX 1024u                  /* headers per message (as hq_msg_add_str) */
#define ID_MAX HQ__AMQP_ID_MAX         /* AMQP short strings */
#define READ_READY_MAX 4096           /* frames read ahead before a buffered delivery */

/* ---------------------------------------------------------------- state */

void hq__consume_clear(struct hq_amqp *c)
{
    struct hq__dnode *n = c->cs.head, *next;

    for (; n; n = next) {
        next = n->next;
        hq_delivery_free(&n->d);
        free(n);
    }
    c->cs.head = c->cs.tail = NULL;
    c->cs.n = 0;
}

void hq_consume_detach(struct hq_amqp *c)
{
    if (c)
        hq__consume_clear(c);
}

const char *hq_consume_error(struct hq_amqp *c)
{
    return hq_amqp_error(c);
}

#define set_err hq__amqp_set_err

/* Usable? HQ_OK, or HQ_EDOWN when the broker closed the channel/connection or the connection
 * failed. */
static int cs_check(struct hq_amqp *c)
{
    if (c->cs.down || c->dead || !c->st)
        return HQ_EDOWN;
    if (c->reply_code != 0) {
        /* amqp.c saw its channel closed (e.g. hq_amqp_queue_exists on a missing queue) and
         * moved to another one: channel 1 is gone, and with it our consumer and confirm mode.
         * Better a clean reconnect than a connection error on the next method. */
        char why[sizeof(c->err)];

        memcpy(why, c->err, sizeof(why));
        set_err(c, "channel %d was closed by the broker (%.400s); reconnect", (int)c->ch, why);
        c->cs.down = true;
        return HQ_EDOWN;
    }
    return HQ_OK;
}

/* Our statuses after a failure: HQ_ENOMEM, HQ_EDOWN once the channel or the connection is
 * gone, else HQ_ENOTFOUND (404) or HQ_EBROKER. */
static int cs_status(struct hq_amqp *c, int rc)
{
    if (rc == HQ_OK || rc == HQ_ENOMEM)
        return rc;
    if (c->dead || c->cs.down) {
        c->cs.down = true;
        return HQ_EDOWN;
    }
    return rc == HQ_ENOTFOUND ? rc : HQ_EBROKER;
}

/* The result of a synchronous method on channel 1 (basic.qos, basic.consume, basic.get,
 * queue.purge). A channel-level refusal closes the channel: amqp.c answers close-ok and reopens
 * channel 1 (no consumer, no confirm mode), then we return HQ_ENOTFOUND (404) or HQ_EBROKER. */
static int rpc_result(struct hq_amqp *c, amqp_rpc_reply_t r, const char *what)
{
    int rc = hq__amqp_reply(c, r, what, true);

    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
        hq_warn("broker closed the consuming channel", "error=\"%s\"", c->err);
    return cs_status(c, rc);
}

/* ---------------------------------------------------------------- decoding */

bool hq_header_broker_owned(const char *key)
{
    if (!key)
        return false;
    return strcmp(key, "x-death") == 0 || strncmp(key, "x-first-death-", 14) == 0 ||
           strncmp(key, "x-last-death-", 13) == 0 || strcmp(key, "x-delivery-count") == 0 ||
           strcmp(key, "x-stream-offset") == 0;
}

/* Integer-like field values (every integer width, boolean, timestamp) as int64. */
static bool field_int(const amqp_field_value_t *v, int64_t *out)
{
    switch (v->kind) {
    case AMQP_FIELD_KIND_BOOLEAN: *out = v->value.boolean ? 1 : 0; return true;
    case AMQP_FIELD_KIND_I8: *out = v->value.i8; return true;
    case AMQP_FIELD_KIND_U8: *out = v->value.u8; return true;
    case AMQP_FIELD_KIND_I16: *out = v->value.i16; return true;
    case AMQP_FIELD_KIND_U16: *out = v->value.u16; return true;
    case AMQP_FIELD_KIND_I32: *out = v->value.i32; return true;
    case AMQP_FIELD_KIND_U32: *out = v->value.u32; return true;
    case AMQP_FIELD_KIND_I64: *out = v->value.i64; return true;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP:
        if (v->value.u64 > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v->value.u64;
        return true;
    default: return false;
    }
}

static bool field_is_str(const amqp_field_value_t *v)
{
    return v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES;
}

/* b up to the first NUL and at most cap bytes into out[outsz]. */
static void bytes_to(char *out, size_t outsz, amqp_bytes_t b)
{
    size_t n = b.len;
    const char *nul;

    if (!b.bytes)
        n = 0;
    if (n >= outsz)
        n = outsz - 1;
    if (n && (nul = memchr(b.bytes, '\0', n)) != NULL)
        n = (size_t)(nul - (const char *)b.bytes);
    if (n)
        memcpy(out, b.bytes, n);
    out[n] = '\0';
}

/* A malloc'd C string of b cut at the first NUL; NULL on ENOMEM. */
static char *bytes_dup(amqp_bytes_t b)
{
    size_t n = b.bytes ? b.len : 0;
    const char *nul;
    char *s;

    if (n && (nul = memchr(b.bytes, '\0', n)) != NULL)
        n = (size_t)(nul - (const char *)b.bytes);
    s = malloc(n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, b.bytes, n);
    s[n] = '\0';
    return s;
}

static void decode_xdeath(const amqp_array_t *a, struct hq_delivery *d)
{
    int i, k;

    for (i = 0; i < a->num_entries && d->n_xdeath < sizeof(d->xdeath) / sizeof(d->xdeath[0]);
         i++) {
        const amqp_field_value_t *e = &a->entries[i];
        struct hq_xdeath *x;

        if (e->kind != AMQP_FIELD_KIND_TABLE)
            continue;
        x = &d->xdeath[d->n_xdeath];
        memset(x, 0, sizeof(*x));
        for (k = 0; k < e->value.table.num_entries; k++) {
            const amqp_table_entry_t *te = &e->value.table.entries[k];
            char key[16];
            int64_t v;

            bytes_to(key, sizeof(key), te->key);
            if (te->key.len >= sizeof(key))
                continue;
            if (strcmp(key, "queue") == 0 && field_is_str(&te->value))
                bytes_to(x->queue, sizeof(x->queue), te->value.value.bytes);
            else if (strcmp(key, "reason") == 0 && field_is_str(&te->value))
                bytes_to(x->reason, sizeof(x->reason), te->value.value.bytes);
            else if (strcmp(key, "count") == 0 && field_int(&te->value, &v))
                x->count = v;
            else if (strcmp(key, "time") == 0 && field_int(&te->value, &v))
                x->time_s = v;
        }
        d->n_xdeath++;
    }
}

/* The hookmq-steps field table (step name -> bytes, hq_steps.h) as an HQ_HDR_TABLE header
 * called key. A malformed one (other value types, bad names) is skipped, like every other
 * table header. */
static int decode_steps(const amqp_table_t *t, const char *key, struct hq_msg *m)
{
    struct hq_buf text = HQ_BUF_INIT(VAL_MAX);
    int i, rc = HQ_OK;

    for (i = 0; i < t->num_entries; i++) {
        const amqp_table_entry_t *te = &t->entries[i];

        if (!field_is_str(&te->value) || !hq_step_name_ok(te->key.bytes, te->key.len))
            goto out;
    }
    for (i = 0; i < t->num_entries && rc == HQ_OK; i++) {
        const amqp_table_entry_t *te = &t->entries[i];

        rc = hq_steps_append(&text, te->key.bytes, te->key.len, te->value.value.bytes.bytes,
                             te->value.value.bytes.len);
    }
    if (rc == HQ_OK)
        rc = hq_msg_add_table(m, key, text.data ? (const char *)text.data : "");
    if (rc != HQ_ENOMEM)
        rc = HQ_OK; /* too big or malformed: skipped */
out:
    hq_buf_free(&text);
    return rc;
}

int hq__consume_decode_table(const struct amqp_table_t_ *t, struct hq_delivery *d)
{
    int i;

    if (!d)
        return HQ_EINVAL;
    d->delivery_count = -1;
    if (!t || t->num_entries <= 0 || !t->entries)
        return HQ_OK;
    for (i = 0; i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        char key[KEY_MAX + 1];
        int64_t v;
        int rc = HQ_OK;

        if (!e->key.bytes || e->key.len == 0 || e->key.len > KEY_MAX ||
            memchr(e->key.bytes, '\0', e->key.len))
            continue;
        memcpy(key, e->key.bytes, e->key.len);
        key[e->key.len] = '\0';
        if (strcmp(key, "x-death") == 0) {
            if (e->value.kind == AMQP_FIELD_KIND_ARRAY)
                decode_xdeath(&e->value.value.array, d);
            continue;
        }
        if (field_int(&e->value, &v)) {
            if (strcmp(key, "x-delivery-count") == 0)
                d->delivery_count = v;
            if (d->msg.n_headers < HDR_MAX || hq_msg_header(&d->msg, key))
                rc = hq_msg_add_long(&d->msg, key, v);
        } else if (e->value.kind == AMQP_FIELD_KIND_TABLE && strcmp(key, HQ_STEPS_HEADER) == 0) {
            if (d->msg.n_headers >= HDR_MAX && !hq_msg_header(&d->msg, key))
                continue;
            rc = decode_steps(&e->value.value.table, key, &d->msg);
        } else if (field_is_str(&e->value)) {
            if (e->value.value.bytes.len > VAL_MAX)
                continue;
            if (d->msg.n_headers >= HDR_MAX && !hq_msg_header(&d->msg, key))
                continue;
            /* copied once, cut at a NUL inside (as bytes_dup) */
            rc = hq_msg_add_strn(&d->msg, key, e->value.value.bytes.bytes,
                                 e->value.value.bytes.bytes ? e->value.value.bytes.len : 0);
        }
        if (rc == HQ_ENOMEM)
            return rc;
    }
    return HQ_OK;
}

void hq_delivery_free(struct hq_delivery *d)
{
    if (!d)
        return;
    free(d->exchange);
    free(d->routing_key);
    hq_msg_free(&d->msg);
    memset(d, 0, sizeof(*d));
}

/* Fill d from a delivery's (or get-ok's) fields and its message. */
static int delivery_fill(struct hq_delivery *d, uint64_t tag, bool redelivered,
                         amqp_bytes_t exchange, amqp_bytes_t routing_key, const amqp_message_t *m)
{
    const amqp_basic_properties_t *p = &m->properties;
    int rc = HQ_ENOMEM;

    memset(d, 0, sizeof(*d));
    d->delivery_count = -1;
    d->tag = tag;
    d->redelivered = redelivered;
    d->exchange = bytes_dup(exchange);
    d->routing_key = bytes_dup(routing_key);
    d->msg.routing_key = bytes_dup(routing_key);
    if (!d->exchange || !d->routing_key || !d->msg.routing_key)
        goto out;
    if ((p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) &&
        !(d->msg.content_type = bytes_dup(p->content_type)))
        goto out;
    if ((p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && !(d->msg.message_id = bytes_dup(p->message_id)))
        goto out;
    if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
        d->msg.timestamp_s = p->timestamp > (uint64_t)INT64_MAX ? 0 : (int64_t)p->timestamp;
    if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
        d->delivery_mode = p->delivery_mode;
    if (p->_flags & AMQP_BASIC_HEADERS_FLAG) {
        rc = hq__consume_decode_table(&p->headers, d);
        if (rc != HQ_OK)
            goto out;
    }
    if (m->body.len) {
        d->msg.body = malloc(m->body.len);
        if (!d->msg.body)
            goto out;
        memcpy(d->msg.body, m->body.bytes, m->body.len);
        d->msg.body_len = m->body.len;
    }
    rc = HQ_OK;
out:
    if (rc != HQ_OK)
        hq_delivery_free(d);
    return rc;
}

/* ---------------------------------------------------------------- the wire */

int hq__consume_push(struct hq_amqp *c, uint64_t tag, bool redelivered, amqp_bytes_t exchange,
                     amqp_bytes_t routing_key, const amqp_message_t *m)
{
    struct hq__dnode *n = calloc(1, sizeof(*n));
    int rc = n ? delivery_fill(&n->d, tag, redelivered, exchange, routing_key, m) : HQ_ENOMEM;

    if (rc != HQ_OK) {
        free(n);
        /* the message stays unacked on this connection: only a reconnect brings it back */
        set_err(c, "out of memory decoding a delivery");
        c->cs.down = true;
        return rc;
    }
    if (c->cs.tail)
        c->cs.tail->next = n;
    else
        c->cs.head = n;
    c->cs.tail = n;
    c->cs.n++;
    return HQ_OK;
}

/* A delivery's content off the wire (method already read, by the dispatcher) into the FIFO. */
int hq__consume_on_deliver(struct hq_amqp *c, amqp_channel_t ch, const amqp_basic_deliver_t *dm)
{
    amqp_message_t msg;
    amqp_rpc_reply_t r;
    uint64_t tag = dm->delivery_tag;
    bool redelivered = dm->redelivered != 0;
    amqp_bytes_t ex = amqp_bytes_malloc_dup(dm->exchange);
    amqp_bytes_t rk = amqp_bytes_malloc_dup(dm->routing_key);
    int rc;

    if ((dm->exchange.len && !ex.bytes) || (dm->routing_key.len && !rk.bytes)) {
        rc = hq__amqp_lib(c, AMQP_STATUS_NO_MEMORY, "basic.deliver");
        c->cs.down = true;
        goto out;
    }
    r = amqp_read_message(c->st, ch, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        rc = hq__amqp_reply(c, r, "read delivery", false);
        if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION)
            hq_warn("broker closed the consuming channel", "error=\"%s\"", c->err);
        c->cs.down = true;
        rc = rc == HQ_ENOMEM ? rc : HQ_EDOWN;
        goto out;
    }
    rc = hq__consume_push(c, tag, redelivered, ex, rk, &msg);
    amqp_destroy_message(&msg);
out:
    amqp_bytes_free(ex);
    amqp_bytes_free(rk);
    return rc;
}

/* Read at most one frame (a delivery: its content too) before deadline (hq_mono_ms).
 * HQ_OK when something was handled, HQ_ETIMEDOUT when nothing came, HQ_EDOWN / HQ_ENOMEM. */
static int step(struct hq_amqp *c, int64_t deadline)
{
    struct hq_amqp_ev ev;
    int rc = hq__amqp_consume_frame(c, deadline, &ev);

    if (rc == HQ_ETIMEDOUT)
        return rc;
    switch (ev.type) {
    case HQ_AMQP_EV_CLOSED:
        c->cs.down = true;
        if (rc == HQ_OK) {
            hq_warn("broker closed the consuming channel", "error=\"%s\"", c->err);
            rc = HQ_EDOWN;
        }
        break;
    case HQ_AMQP_EV_BLOCKED:
        hq_warn("broker blocked the connection (resource alarm)", "%s", "");
        break;
    case HQ_AMQP_EV_UNBLOCKED:
        hq_info("broker unblocked the connection", "%s", "");
        break;
    default:
        break;
    }
    if (rc != HQ_OK) {
        c->cs.down = true;
        return rc == HQ_ENOMEM ? rc : HQ_EDOWN;
    }
    return HQ_OK;
}

/* ---------------------------------------------------------------- API */

int hq_amqp_qos(struct hq_amqp *c, uint16_t prefetch)
{
    int rc;

    if (!c)
        return HQ_EINVAL;
    if ((rc = cs_check(c)) != HQ_OK)
        return rc;
    (void)amqp_basic_qos(c->st, c->ch, 0, prefetch, 0);
    rc = rpc_result(c, amqp_get_rpc_reply(c->st), "basic.qos");
    return rc == HQ_ENOTFOUND ? HQ_EBROKER : rc;
}

int hq_amqp_consume(struct hq_amqp *c, const char *queue)
{
    amqp_basic_consume_ok_t *ok;
    int rc;

    if (!c || !queue)
        return HQ_EINVAL;
    if ((rc = cs_check(c)) != HQ_OK)
        return rc;
    ok = amqp_basic_consume(c->st, c->ch, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                            amqp_empty_table);
    rc = rpc_result(c, amqp_get_rpc_reply(c->st), "basic.consume");
    if (rc == HQ_OK && ok)
        bytes_to(c->cs.ctag, sizeof(c->cs.ctag), ok->consumer_tag);
    if (rc == HQ_OK)
        c->cs.cancelled = false;
    return rc;
}

static void pop(struct hq_amqp *c, struct hq_delivery *d)
{
    struct hq__dnode *n = c->cs.head;

    c->cs.head = n->next;
    if (!c->cs.head)
        c->cs.tail = NULL;
    c->cs.n--;
    *d = n->d;
    free(n);
}

/* Read the frames that have already arrived, without waiting (at most READ_READY_MAX: the
 * prefetch window bounds the deliveries, this bounds the rest). */
static void read_ready(struct hq_amqp *c)
{
    int i;

    for (i = 0; i < READ_READY_MAX; i++)
        if (step(c, hq_mono_ms()) != HQ_OK)
            break;
}

/* The connection is gone: free the deliveries read on it. Their tags died with its channel,
 * so they cannot be acked; handling them would only duplicate the redelivered copies. */
static void drop_buffered(struct hq_amqp *c)
{
    size_t n = c->cs.n;

    if (!n)
        return;
    hq__consume_clear(c);
    hq_warn("broker connection lost; dropping the deliveries buffered on it (the broker "
            "redelivers them)",
            "dropped=%zu", n);
}

int hq_amqp_next(struct hq_amqp *c, int timeout_ms, struct hq_delivery *d,
                 enum hq_next_result *what)
{
    int64_t deadline;
    int rc;

    if (!c || !d || !what)
        return HQ_EINVAL;
    *what = HQ_NEXT_TIMEOUT;
    deadline = hq_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (c->cs.head) {
            /* Its tag is only good on a live channel: first read what has already arrived
             * (a close behind it), and drop the deliveries of a dead connection rather than
             * have them handled for nothing (the broker redelivers them). */
            if (cs_check(c) == HQ_OK)
                read_ready(c);
            if ((rc = cs_check(c)) != HQ_OK) {
                drop_buffered(c);
                return rc;
            }
            pop(c, d);
            *what = HQ_NEXT_DELIVERY;
            return HQ_OK;
        }
        if (c->cs.cancelled) {
            c->cs.cancelled = false;
            *what = HQ_NEXT_CANCELLED;
            return HQ_OK;
        }
        if ((rc = cs_check(c)) != HQ_OK)
            return rc;
        rc = step(c, deadline);
        if (rc == HQ_ETIMEDOUT) {
            *what = HQ_NEXT_TIMEOUT;
            return HQ_OK;
        }
        if (rc != HQ_OK && !c->cs.head && !c->cs.cancelled)
            return rc;
        /* a failure with deliveries buffered: the loop drops them and returns it */
    }
}

int hq_amqp_service(struct hq_amqp *c, int timeout_ms)
{
    int64_t deadline;
    int rc, n = 0;

    if (!c)
        return HQ_EINVAL;
    if ((rc = cs_check(c)) != HQ_OK)
        return rc;
    deadline = hq_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    /* until the deadline, and at least what has already arrived (a zero timeout must not
     * read one frame per call: a close waits behind a full prefetch window) */
    do {
        rc = step(c, deadline);
    } while (rc == HQ_OK && (++n < READ_READY_MAX || hq_mono_ms() < deadline));
    if (rc == HQ_ETIMEDOUT)
        return HQ_OK;
    if (rc != HQ_OK && cs_check(c) != HQ_OK)
        drop_buffered(c); /* the caller may reconnect without another hq_amqp_next */
    return rc;
}

/* basic.ack / basic.nack: no reply; a failure is the library's (the connection is dead). */
static int settle(struct hq_amqp *c, int st, const char *what)
{
    if (st == AMQP_STATUS_OK)
        return HQ_OK;
    c->cs.down = true;
    return cs_status(c, hq__amqp_lib(c, st, what));
}

static int ack(struct hq_amqp *c, uint64_t tag, bool multiple)
{
    int rc;

    if (!c)
        return HQ_EINVAL;
    if ((rc = cs_check(c)) != HQ_OK)
        return rc;
    return settle(c, amqp_basic_ack(c->st, c->ch, tag, multiple ? 1 : 0), "basic.ack");
}

int hq_amqp_ack(struct hq_amqp *c, uint64_t tag)
{
    return ack(c, tag, false);
}

int hq_amqp_ack_upto(struct hq_amqp *c, uint64_t tag)
{
    return ack(c, tag, true);
}

int hq_amqp_nack(struct hq_amqp *c, uint64_t tag, bool requeue)
{
    int rc;

    if (!c)
        return HQ_EINVAL;
    if ((rc = cs_check(c)) != HQ_OK)
        return rc;
    return settle(c, amqp_basic_nack(c->st, c->ch, tag, 0, requeue ? 1 : 0), "basic.nack");
}

int hq_amqp_get(struct hq_amqp *c, const char *queue, bool no_ack, struct hq_delivery *d)
{
    amqp_rpc_reply_t r;
    amqp_message_t msg;
    int rc;

    if (!c || !queue || !d)
        return HQ_EINVAL;
    memset(d, 0, sizeof(*d));
    d->delivery_count = -1;
    if ((rc = cs_check(c)) != HQ_OK)
        return rc;
    amqp_maybe_release_buffers(c->st);
    r = amqp_basic_get(c->st, c->ch, amqp_cstring_bytes(queue), no_ack ? 1 : 0);
    rc = rpc_result(c, r, "basic.get");
    if (rc != HQ_OK)
        return rc;
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
        return HQ_ENOTFOUND;
    if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) {
        set_err(c, "basic.get: unexpected reply 0x%08x", (unsigned)r.reply.id);
        c->cs.down = true;
        return HQ_EDOWN;
    }
    {
        amqp_basic_get_ok_t *g = r.reply.decoded;
        uint64_t tag = g->delivery_tag;
        bool redelivered = g->redelivered != 0;
        amqp_bytes_t ex = amqp_bytes_malloc_dup(g->exchange);
        amqp_bytes_t rk = amqp_bytes_malloc_dup(g->routing_key);

        if ((g->exchange.len && !ex.bytes) || (g->routing_key.len && !rk.bytes)) {
            rc = cs_status(c, hq__amqp_lib(c, AMQP_STATUS_NO_MEMORY, "basic.get"));
            c->cs.down = true;
        } else {
            r = amqp_read_message(c->st, c->ch, &msg, 0);
            rc = rpc_result(c, r, "basic.get content");
            if (rc == HQ_OK) {
                rc = delivery_fill(d, tag, redelivered, ex, rk, &msg);
                amqp_destroy_message(&msg);
                if (rc != HQ_OK)
                    c->cs.down = true; /* an unacked message we cannot hand out */
            } else if (rc != HQ_EDOWN) {
                rc = HQ_EDOWN;
            }
        }
        amqp_bytes_free(ex);
        amqp_bytes_free(rk);
    }
    return rc;
}

int hq_amqp_purge(struct hq_amqp *c, const char *queue, uint32_t *purged)
{
    amqp_queue_purge_ok_t *ok;
    int rc;

    if (!c || !queue)
        return HQ_EINVAL;
    if (purged)
        *purged = 0;
    if ((rc = cs_check(c)) != HQ_OK)
        return rc;
    ok = amqp_queue_purge(c->st, c->ch, amqp_cstring_bytes(queue));
    rc = rpc_result(c, amqp_get_rpc_reply(c->st), "queue.purge");
    if (rc == HQ_OK && ok && purged)
        *purged = ok->message_count;
    return rc;
}

/* Prefix the last error with what (unless it already says so). */
static void err_prefix(struct hq_amqp *c, const char *what)
{
    char was[sizeof(c->err)];

    if (strncmp(c->err, what, strlen(what)) == 0)
        return;
    memcpy(was, c->err, sizeof(was));
    set_err(c, "%s: %.400s", what, was);
}

int hq_amqp_publish_confirmed(struct hq_amqp *c, const char *exchange, const char *routing_key,
                              const struct hq_msg *m, int timeout_ms)
{
    struct hq__consume *s;
    uint64_t tag = 0;
    int64_t deadline;
    int rc;

    if (!c || !exchange || !routing_key || !m)
        return HQ_EINVAL;
    if ((rc = cs_check(c)) != HQ_OK)
        return rc;
    s = &c->cs;
    deadline = hq_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    if (!c->confirm) {
        /* confirm mode on channel 1; hq_amqp_publish numbers the publishes */
        rc = hq_amqp_confirm_select(c);
        if (rc != HQ_OK) {
            err_prefix(c, "confirm.select");
            if (rc != HQ_ENOMEM)
                s->down = true;
            return rc == HQ_ENOMEM ? rc : HQ_EDOWN;
        }
    }
    rc = hq_amqp_publish(c, exchange, routing_key, m, true, &tag);
    if (rc != HQ_OK) {
        if (rc == HQ_EINVAL || rc == HQ_ETOOBIG)
            set_err(c, "basic.publish: %s", hq_strerror(rc)); /* refused before the wire */
        else
            err_prefix(c, "basic.publish");
        if (rc == HQ_EDOWN)
            s->down = true;
        return rc;
    }
    if (tag == 0) {
        /* not in confirm mode on this channel any more (it was reopened) */
        set_err(c, "basic.publish: the channel lost confirm mode");
        s->down = true;
        return HQ_EDOWN;
    }
    s->want = tag;
    s->settled = 0;
    s->returned = false;
    bytes_to(s->want_id, sizeof(s->want_id),
             amqp_cstring_bytes(m->message_id ? m->message_id : ""));
    rc = HQ_ETIMEDOUT;
    while (s->settled == 0) {
        int r = step(c, deadline);

        if (r == HQ_ETIMEDOUT)
            break;
        if (r != HQ_OK) {
            rc = r;
            break;
        }
    }
    if (s->settled > 0)
        rc = s->returned ? HQ_EBROKER : HQ_OK;
    else if (s->settled < 0) {
        set_err(c, "publish to '%s' nacked by the broker (queue full?)", routing_key);
        rc = HQ_EBROKER;
    } else if (rc == HQ_ETIMEDOUT)
        set_err(c, "no publisher confirm within %d ms", timeout_ms);
    s->want = 0;
    s->settled = 0;
    s->returned = false;
    return rc;
}
