/* consume: the consuming side of one broker connection (see hq_consume.h).
 *
 * Built on the raw rabbitmq-c connection of core/amqp.c (hq__amqp_state) and its channel 1.
 * One function reads the wire for everybody, step(): amqp_consume_message() with the time
 * left; a basic.deliver becomes a struct hq_delivery at the tail of the connection's FIFO; any
 * other frame (AMQP_STATUS_UNEXPECTED_STATE: the library put it back) is read with
 * amqp_simple_wait_frame() and handled in on_frame(): basic.ack / basic.nack settle the
 * publish hq_amqp_publish_confirmed waits for, basic.return marks it unroutable, basic.cancel
 * means the queue went away (consumer_cancel_notify is advertised by amqp.c's login), and a
 * channel.close / connection.close makes every later call answer HQ_EDOWN.
 * hq_amqp_next, hq_amqp_service and hq_amqp_publish_confirmed are loops over step() with
 * different stop conditions, so a delivery that arrives while we wait for a confirm is kept in
 * order, never lost.
 *
 * Per-connection state lives in a registry keyed by the struct hq_amqp pointer (amqp.c's
 * struct is private to it); hq_consume_detach() frees it. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "hq__amqp_inc.h"
#include "hq__amqp.h"
#include "hq_consume.h"
#include "hq_log.h"
#include "hq_time.h"

#define CH 1                           /* the channel amqp.c opens and publishes on */
#define KEY_MAX 128u                   /* struct hq_hdr key */
#define VAL_MAX (1024u * 1024u)        /* one string header (as hq_msg_add_str) */
#define HDR_MAX 1024u                  /* headers per message (as hq_msg_add_str) */
#define ID_MAX 255u                    /* AMQP short strings */
#define READ_READY_MAX 4096           /* frames read ahead before a buffered delivery */

struct dnode {
    struct dnode *next;
    struct hq_delivery d;
};

struct cstate {
    struct cstate *next;
    struct hq_amqp *c;
    amqp_connection_state_t st; /* to notice a recycled hq_amqp pointer */
    bool down;                  /* channel or connection closed / failed */
    bool confirm;               /* confirm.select done by us */
    bool cancelled;             /* basic.cancel received, not yet reported */
    char ctag[256];             /* our consumer tag */
    struct dnode *head, *tail;  /* buffered deliveries */
    size_t n;
    /* the publish hq_amqp_publish_confirmed waits for */
    uint64_t want;              /* its delivery tag, 0 when not waiting */
    char want_id[ID_MAX + 1];   /* its message_id (basic.return carries no tag) */
    int settled;                /* 0 pending, 1 acked, -1 nacked */
    bool returned;
    char err[512];
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cstate *reg;

/* ---------------------------------------------------------------- registry */

static void fifo_clear(struct cstate *s)
{
    struct dnode *n = s->head, *next;

    for (; n; n = next) {
        next = n->next;
        hq_delivery_free(&n->d);
        free(n);
    }
    s->head = s->tail = NULL;
    s->n = 0;
}

/* The state of c, created on first use; NULL on ENOMEM. */
static struct cstate *cs_get(struct hq_amqp *c)
{
    amqp_connection_state_t st = hq__amqp_state(c);
    struct cstate *s;

    pthread_mutex_lock(&reg_mu);
    for (s = reg; s; s = s->next)
        if (s->c == c)
            break;
    if (s && s->st != st) {
        /* the pointer was recycled by a new connection without hq_consume_detach */
        struct cstate *keep = s->next;
        fifo_clear(s);
        memset(s, 0, sizeof(*s));
        s->next = keep;
        s->c = c;
        s->st = st;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (s) {
            s->c = c;
            s->st = st;
            s->next = reg;
            reg = s;
        }
    }
    pthread_mutex_unlock(&reg_mu);
    return s;
}

void hq_consume_detach(struct hq_amqp *c)
{
    struct cstate **pp, *s = NULL;

    if (!c)
        return;
    pthread_mutex_lock(&reg_mu);
    for (pp = &reg; *pp; pp = &(*pp)->next) {
        if ((*pp)->c == c) {
            s = *pp;
            *pp = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&reg_mu);
    if (s) {
        fifo_clear(s);
        free(s);
    }
}

const char *hq_consume_error(struct hq_amqp *c)
{
    struct cstate *s;
    const char *e = "";

    if (!c)
        return "";
    pthread_mutex_lock(&reg_mu);
    for (s = reg; s; s = s->next)
        if (s->c == c) {
            e = s->err;
            break;
        }
    pthread_mutex_unlock(&reg_mu);
    return e;
}

static void set_err(struct cstate *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(struct cstate *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
}

static int blen(amqp_bytes_t b, size_t cap)
{
    return (int)(b.len < cap ? b.len : cap);
}

/* Usable? HQ_OK, or HQ_EDOWN when the broker closed the channel/connection or amqp.c saw the
 * connection fail. */
static int cs_check(struct hq_amqp *c, struct cstate *s)
{
    if (!s)
        return HQ_ENOMEM;
    if (s->down || hq__amqp_dead(c) || !s->st)
        return HQ_EDOWN;
    if (hq__amqp_reply_code(c) != 0) {
        /* amqp.c saw its channel closed (e.g. hq_amqp_queue_exists on a missing queue) and
         * moved to another one: channel 1 is gone, and with it our consumer and confirm mode.
         * Better a clean reconnect than a connection error on the next method. */
        set_err(s, "channel %d was closed by the broker (%s); reconnect", CH, hq_amqp_error(c));
        s->down = true;
        return HQ_EDOWN;
    }
    return HQ_OK;
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

static void mark_down(struct cstate *s)
{
    s->down = true;
}

/* A library status: the connection is in an unknown state from now on. */
static int lib_fail(struct cstate *s, int status, const char *what)
{
    set_err(s, "%s: %s", what, amqp_error_string2(status));
    mark_down(s);
    return status == AMQP_STATUS_NO_MEMORY ? HQ_ENOMEM : HQ_EDOWN;
}

/* channel.close / connection.close received (method decoded m): answer close-ok. */
static void on_close(struct cstate *s, amqp_channel_t ch, amqp_method_t *m)
{
    if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *cl = m->decoded;
        amqp_channel_close_ok_t ok = {0};

        set_err(s, "channel closed by the broker: %d %.*s", cl->reply_code,
                blen(cl->reply_text, 400), (const char *)cl->reply_text.bytes);
        (void)amqp_send_method(s->st, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else {
        amqp_connection_close_t *cl = m->decoded;
        amqp_connection_close_ok_t ok = {0};

        set_err(s, "connection closed by the broker: %d %.*s", cl->reply_code,
                blen(cl->reply_text, 400), (const char *)cl->reply_text.bytes);
        (void)amqp_send_method(s->st, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
    hq_warn("broker closed the consuming channel", "error=\"%s\"", s->err);
    mark_down(s);
}

static void push(struct cstate *s, struct dnode *n)
{
    n->next = NULL;
    if (s->tail)
        s->tail->next = n;
    else
        s->head = n;
    s->tail = n;
    s->n++;
}

/* Take a delivery's content off the wire (method already read) into the FIFO. */
static int on_deliver(struct cstate *s, amqp_channel_t ch, const amqp_basic_deliver_t *dm)
{
    amqp_message_t msg;
    amqp_rpc_reply_t r;
    struct dnode *n;
    uint64_t tag = dm->delivery_tag;
    bool redelivered = dm->redelivered != 0;
    amqp_bytes_t ex = amqp_bytes_malloc_dup(dm->exchange);
    amqp_bytes_t rk = amqp_bytes_malloc_dup(dm->routing_key);
    int rc;

    if ((dm->exchange.len && !ex.bytes) || (dm->routing_key.len && !rk.bytes)) {
        rc = lib_fail(s, AMQP_STATUS_NO_MEMORY, "basic.deliver");
        goto out;
    }
    r = amqp_read_message(s->st, ch, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        rc = r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                 ? lib_fail(s, r.library_error, "read delivery")
                 : (on_close(s, ch, &r.reply), HQ_EDOWN);
        goto out;
    }
    n = calloc(1, sizeof(*n));
    rc = n ? delivery_fill(&n->d, tag, redelivered, ex, rk, &msg) : HQ_ENOMEM;
    amqp_destroy_message(&msg);
    if (rc != HQ_OK) {
        free(n);
        /* the message stays unacked on this connection: only a reconnect brings it back */
        set_err(s, "out of memory decoding a delivery");
        mark_down(s);
        goto out;
    }
    push(s, n);
out:
    amqp_bytes_free(ex);
    amqp_bytes_free(rk);
    return rc;
}

/* A frame that is not a delivery (put back by amqp_consume_message). */
static int on_frame(struct cstate *s, amqp_frame_t *f)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return HQ_OK; /* stray content */
    switch (f->payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD:
        return on_deliver(s, f->channel, f->payload.method.decoded);
    case AMQP_BASIC_ACK_METHOD:
    case AMQP_BASIC_NACK_METHOD: {
        bool ack = f->payload.method.id == AMQP_BASIC_ACK_METHOD;
        uint64_t tag;
        bool multiple;

        if (ack) {
            amqp_basic_ack_t *a = f->payload.method.decoded;
            tag = a->delivery_tag;
            multiple = a->multiple != 0;
        } else {
            amqp_basic_nack_t *a = f->payload.method.decoded;
            tag = a->delivery_tag;
            multiple = a->multiple != 0;
        }
        if (s->want && (tag == s->want || (multiple && tag >= s->want)))
            s->settled = ack ? 1 : -1;
        return HQ_OK;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        amqp_basic_return_t *rt = f->payload.method.decoded;
        amqp_message_t msg;
        amqp_rpc_reply_t r;
        char text[200], mid[ID_MAX + 1] = "";
        int code = rt->reply_code;

        bytes_to(text, sizeof(text), rt->reply_text);
        r = amqp_read_message(s->st, f->channel, &msg, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
                return lib_fail(s, r.library_error, "read returned message");
            on_close(s, f->channel, &r.reply);
            return HQ_EDOWN;
        }
        if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
            bytes_to(mid, sizeof(mid), msg.properties.message_id);
        amqp_destroy_message(&msg);
        if (s->want && strcmp(mid, s->want_id) == 0) {
            s->returned = true;
            set_err(s, "publish returned: %d %s", code, text);
        }
        return HQ_OK;
    }
    case AMQP_BASIC_CANCEL_METHOD: {
        amqp_basic_cancel_t *cm = f->payload.method.decoded;

        s->cancelled = true;
        set_err(s, "consumer %.*s cancelled by the broker (queue deleted?)",
                blen(cm->consumer_tag, 200), (const char *)cm->consumer_tag.bytes);
        if (!cm->nowait) {
            amqp_basic_cancel_ok_t ok;
            ok.consumer_tag = cm->consumer_tag;
            if (amqp_send_method(s->st, f->channel, AMQP_BASIC_CANCEL_OK_METHOD, &ok) !=
                AMQP_STATUS_OK) {
                mark_down(s);
                return HQ_EDOWN;
            }
        }
        s->ctag[0] = '\0';
        return HQ_OK;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        on_close(s, f->channel, &f->payload.method);
        return HQ_EDOWN;
    case AMQP_CONNECTION_BLOCKED_METHOD:
        hq_warn("broker blocked the connection (resource alarm)", "%s", "");
        return HQ_OK;
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        hq_info("broker unblocked the connection", "%s", "");
        return HQ_OK;
    default:
        return HQ_OK;
    }
}

static struct timeval tv_ms(int64_t ms)
{
    struct timeval tv;

    if (ms < 0)
        ms = 0;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    return tv;
}

/* Read at most one frame (a delivery: its content too) before deadline (hq_mono_ms).
 * HQ_OK when something was handled, HQ_ETIMEDOUT when nothing came, HQ_EDOWN / HQ_ENOMEM. */
static int step(struct cstate *s, int64_t deadline)
{
    amqp_envelope_t env;
    amqp_rpc_reply_t r;
    struct timeval tv = tv_ms(deadline - hq_mono_ms());
    amqp_frame_t f;
    int st, rc;

    /* Everything returned before was copied out: the library may reuse its buffers. */
    amqp_maybe_release_buffers(s->st);
    r = amqp_consume_message(s->st, &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        struct dnode *n = calloc(1, sizeof(*n));

        rc = n ? delivery_fill(&n->d, env.delivery_tag, env.redelivered != 0, env.exchange,
                               env.routing_key, &env.message)
               : HQ_ENOMEM;
        amqp_destroy_envelope(&env);
        if (rc != HQ_OK) {
            free(n);
            set_err(s, "out of memory decoding a delivery");
            mark_down(s);
            return rc;
        }
        push(s, n);
        return HQ_OK;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        if (r.library_error == AMQP_STATUS_TIMEOUT)
            return HQ_ETIMEDOUT;
        if (r.library_error != AMQP_STATUS_UNEXPECTED_STATE)
            return lib_fail(s, r.library_error, "consume");
        st = amqp_simple_wait_frame(s->st, &f);
        if (st != AMQP_STATUS_OK)
            return lib_fail(s, st, "wait frame");
        return on_frame(s, &f);
    }
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD || r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        on_close(s, CH, &r.reply);
        return HQ_EDOWN;
    }
    set_err(s, "consume: unexpected reply from the library");
    mark_down(s);
    return HQ_EDOWN;
}

/* The result of a synchronous method on channel 1 (basic.qos, basic.consume, basic.get,
 * queue.purge, confirm.select). A channel-level refusal closes the channel: we answer
 * close-ok and reopen channel 1 (amqp.c still believes it open, and now it is again), then
 * return HQ_ENOTFOUND (404) or HQ_EBROKER. */
static int rpc_result(struct cstate *s, amqp_rpc_reply_t r, const char *what)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return HQ_OK;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return lib_fail(s, r.library_error ? r.library_error : AMQP_STATUS_UNEXPECTED_STATE, what);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *cl = r.reply.decoded;
            amqp_channel_close_ok_t ok = {0};
            int code = cl->reply_code;
            amqp_rpc_reply_t r2;

            set_err(s, "%s: %d %.*s", what, code, blen(cl->reply_text, 400),
                    (const char *)cl->reply_text.bytes);
            if (amqp_send_method(s->st, CH, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) != AMQP_STATUS_OK) {
                mark_down(s);
                return HQ_EDOWN;
            }
            /* a new channel: no consumer, no confirm mode */
            s->confirm = false;
            s->ctag[0] = '\0';
            (void)amqp_channel_open(s->st, CH);
            r2 = amqp_get_rpc_reply(s->st);
            if (r2.reply_type != AMQP_RESPONSE_NORMAL) {
                char saved[sizeof(s->err)];
                memcpy(saved, s->err, sizeof(saved));
                mark_down(s);
                memcpy(s->err, saved, sizeof(saved));
                return HQ_EDOWN;
            }
            return code == AMQP_NOT_FOUND ? HQ_ENOTFOUND : HQ_EBROKER;
        }
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            on_close(s, 0, &r.reply);
            return HQ_EDOWN;
        }
        set_err(s, "%s: unexpected method 0x%08x", what, (unsigned)r.reply.id);
        mark_down(s);
        return HQ_EDOWN;
    default:
        set_err(s, "%s: no reply from the broker", what);
        mark_down(s);
        return HQ_EDOWN;
    }
}

/* ---------------------------------------------------------------- API */

int hq_amqp_qos(struct hq_amqp *c, uint16_t prefetch)
{
    struct cstate *s;
    int rc;

    if (!c)
        return HQ_EINVAL;
    s = cs_get(c);
    if ((rc = cs_check(c, s)) != HQ_OK)
        return rc;
    (void)amqp_basic_qos(s->st, CH, 0, prefetch, 0);
    rc = rpc_result(s, amqp_get_rpc_reply(s->st), "basic.qos");
    return rc == HQ_ENOTFOUND ? HQ_EBROKER : rc;
}

int hq_amqp_consume(struct hq_amqp *c, const char *queue)
{
    amqp_basic_consume_ok_t *ok;
    struct cstate *s;
    int rc;

    if (!c || !queue)
        return HQ_EINVAL;
    s = cs_get(c);
    if ((rc = cs_check(c, s)) != HQ_OK)
        return rc;
    ok = amqp_basic_consume(s->st, CH, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                            amqp_empty_table);
    rc = rpc_result(s, amqp_get_rpc_reply(s->st), "basic.consume");
    if (rc == HQ_OK && ok)
        bytes_to(s->ctag, sizeof(s->ctag), ok->consumer_tag);
    if (rc == HQ_OK)
        s->cancelled = false;
    return rc;
}

static void pop(struct cstate *s, struct hq_delivery *d)
{
    struct dnode *n = s->head;

    s->head = n->next;
    if (!s->head)
        s->tail = NULL;
    s->n--;
    *d = n->d;
    free(n);
}

/* Read the frames that have already arrived, without waiting (at most READ_READY_MAX: the
 * prefetch window bounds the deliveries, this bounds the rest). */
static void read_ready(struct cstate *s)
{
    int i;

    for (i = 0; i < READ_READY_MAX; i++)
        if (step(s, hq_mono_ms()) != HQ_OK)
            break;
}

/* The connection is gone: free the deliveries read on it. Their tags died with its channel,
 * so they cannot be acked; handling them would only duplicate the redelivered copies. */
static void drop_buffered(struct cstate *s)
{
    size_t n = s->n;

    if (!n)
        return;
    fifo_clear(s);
    hq_warn("broker connection lost; dropping the deliveries buffered on it (the broker "
            "redelivers them)",
            "dropped=%zu", n);
}

int hq_amqp_next(struct hq_amqp *c, int timeout_ms, struct hq_delivery *d,
                 enum hq_next_result *what)
{
    struct cstate *s;
    int64_t deadline;
    int rc;

    if (!c || !d || !what)
        return HQ_EINVAL;
    *what = HQ_NEXT_TIMEOUT;
    s = cs_get(c);
    if (!s)
        return HQ_ENOMEM;
    deadline = hq_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (s->head) {
            /* Its tag is only good on a live channel: first read what has already arrived
             * (a close behind it), and drop the deliveries of a dead connection rather than
             * have them handled for nothing (the broker redelivers them). */
            if (cs_check(c, s) == HQ_OK)
                read_ready(s);
            if ((rc = cs_check(c, s)) != HQ_OK) {
                drop_buffered(s);
                return rc;
            }
            pop(s, d);
            *what = HQ_NEXT_DELIVERY;
            return HQ_OK;
        }
        if (s->cancelled) {
            s->cancelled = false;
            *what = HQ_NEXT_CANCELLED;
            return HQ_OK;
        }
        if ((rc = cs_check(c, s)) != HQ_OK)
            return rc;
        rc = step(s, deadline);
        if (rc == HQ_ETIMEDOUT) {
            *what = HQ_NEXT_TIMEOUT;
            return HQ_OK;
        }
        if (rc != HQ_OK && !s->head && !s->cancelled)
            return rc;
        /* a failure with deliveries buffered: the loop drops them and returns it */
    }
}

int hq_amqp_service(struct hq_amqp *c, int timeout_ms)
{
    struct cstate *s;
    int64_t deadline;
    int rc, n = 0;

    if (!c)
        return HQ_EINVAL;
    s = cs_get(c);
    if ((rc = cs_check(c, s)) != HQ_OK)
        return rc;
    deadline = hq_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    /* until the deadline, and at least what has already arrived (a zero timeout must not
     * read one frame per call: a close waits behind a full prefetch window) */
    do {
        rc = step(s, deadline);
    } while (rc == HQ_OK && (++n < READ_READY_MAX || hq_mono_ms() < deadline));
    if (rc == HQ_ETIMEDOUT)
        return HQ_OK;
    if (rc != HQ_OK && cs_check(c, s) != HQ_OK)
        drop_buffered(s); /* the caller may reconnect without another hq_amqp_next */
    return rc;
}

static int ack(struct hq_amqp *c, uint64_t tag, bool multiple)
{
    struct cstate *s;
    int rc, st;

    if (!c)
        return HQ_EINVAL;
    s = cs_get(c);
    if ((rc = cs_check(c, s)) != HQ_OK)
        return rc;
    st = amqp_basic_ack(s->st, CH, tag, multiple ? 1 : 0);
    return st == AMQP_STATUS_OK ? HQ_OK : lib_fail(s, st, "basic.ack");
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
    struct cstate *s;
    int rc, st;

    if (!c)
        return HQ_EINVAL;
    s = cs_get(c);
    if ((rc = cs_check(c, s)) != HQ_OK)
        return rc;
    st = amqp_basic_nack(s->st, CH, tag, 0, requeue ? 1 : 0);
    return st == AMQP_STATUS_OK ? HQ_OK : lib_fail(s, st, "basic.nack");
}

int hq_amqp_get(struct hq_amqp *c, const char *queue, bool no_ack, struct hq_delivery *d)
{
    amqp_rpc_reply_t r;
    amqp_message_t msg;
    struct cstate *s;
    int rc;

    if (!c || !queue || !d)
        return HQ_EINVAL;
    memset(d, 0, sizeof(*d));
    d->delivery_count = -1;
    s = cs_get(c);
    if ((rc = cs_check(c, s)) != HQ_OK)
        return rc;
    amqp_maybe_release_buffers(s->st);
    r = amqp_basic_get(s->st, CH, amqp_cstring_bytes(queue), no_ack ? 1 : 0);
    rc = rpc_result(s, r, "basic.get");
    if (rc != HQ_OK)
        return rc;
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
        return HQ_ENOTFOUND;
    if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) {
        set_err(s, "basic.get: unexpected reply 0x%08x", (unsigned)r.reply.id);
        mark_down(s);
        return HQ_EDOWN;
    }
    {
        amqp_basic_get_ok_t *g = r.reply.decoded;
        uint64_t tag = g->delivery_tag;
        bool redelivered = g->redelivered != 0;
        amqp_bytes_t ex = amqp_bytes_malloc_dup(g->exchange);
        amqp_bytes_t rk = amqp_bytes_malloc_dup(g->routing_key);

        if ((g->exchange.len && !ex.bytes) || (g->routing_key.len && !rk.bytes)) {
            rc = lib_fail(s, AMQP_STATUS_NO_MEMORY, "basic.get");
        } else {
            r = amqp_read_message(s->st, CH, &msg, 0);
            rc = rpc_result(s, r, "basic.get content");
            if (rc == HQ_OK) {
                rc = delivery_fill(d, tag, redelivered, ex, rk, &msg);
                amqp_destroy_message(&msg);
                if (rc != HQ_OK)
                    mark_down(s); /* an unacked message we cannot hand out */
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
    struct cstate *s;
    int rc;

    if (!c || !queue)
        return HQ_EINVAL;
    if (purged)
        *purged = 0;
    s = cs_get(c);
    if ((rc = cs_check(c, s)) != HQ_OK)
        return rc;
    ok = amqp_queue_purge(s->st, CH, amqp_cstring_bytes(queue));
    rc = rpc_result(s, amqp_get_rpc_reply(s->st), "queue.purge");
    if (rc == HQ_OK && ok && purged)
        *purged = ok->message_count;
    return rc;
}

int hq_amqp_publish_confirmed(struct hq_amqp *c, const char *exchange, const char *routing_key,
                              const struct hq_msg *m, int timeout_ms)
{
    struct cstate *s;
    uint64_t tag = 0;
    int64_t deadline;
    int rc;

    if (!c || !exchange || !routing_key || !m)
        return HQ_EINVAL;
    s = cs_get(c);
    if ((rc = cs_check(c, s)) != HQ_OK)
        return rc;
    deadline = hq_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    if (!s->confirm) {
        /* amqp.c's confirm.select on its (= our) channel; it numbers the publishes */
        rc = hq_amqp_confirm_select(c);
        if (rc != HQ_OK) {
            set_err(s, "confirm.select: %s", hq_amqp_error(c));
            if (rc != HQ_ENOMEM)
                mark_down(s);
            return rc == HQ_ENOMEM ? rc : HQ_EDOWN;
        }
        s->confirm = true;
    }
    rc = hq_amqp_publish(c, exchange, routing_key, m, true, &tag);
    if (rc != HQ_OK) {
        set_err(s, "basic.publish: %s", hq_amqp_error(c));
        if (rc == HQ_EDOWN)
            mark_down(s);
        return rc;
    }
    if (tag == 0) {
        /* amqp.c is not in confirm mode on this channel any more (it reopened it) */
        set_err(s, "basic.publish: the channel lost confirm mode");
        mark_down(s);
        return HQ_EDOWN;
    }
    s->want = tag;
    s->settled = 0;
    s->returned = false;
    bytes_to(s->want_id, sizeof(s->want_id),
             amqp_cstring_bytes(m->message_id ? m->message_id : ""));
    rc = HQ_ETIMEDOUT;
    while (s->settled == 0) {
        int r = step(s, deadline);

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
        set_err(s, "publish to '%s' nacked by the broker (queue full?)", routing_key);
        rc = HQ_EBROKER;
    } else if (rc == HQ_ETIMEDOUT)
        set_err(s, "no publisher confirm within %d ms", timeout_ms);
    s->want = 0;
    s->settled = 0;
    s->returned = false;
    return rc;
}
