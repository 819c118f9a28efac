/* archive_amqp: the two broker operations of hookmq-archive that hq_consume.h does not offer
 * (kept in core/ so that only core includes rabbitmq-c): the group-commit ack (basic.ack with
 * multiple=1) and the optional firehose tracer's server-named queue.
 *
 * Both work on channel 1 of the connection, the channel core/consume.c consumes on; replies go
 * through amqp.c's one translator (hq__amqp_private.h). */
#include <stdio.h>
#include <string.h>

#include "hq__amqp_private.h"
#include "hq_archive.h"
#include "hq_log.h"

#define TRACE_EXCHANGE "amq.rabbitmq.trace"
#define TRACE_MAX_LENGTH 100000

int hq_archive_ack_upto(struct hq_amqp *c, uint64_t tag)
{
    if (!c || tag == 0)
        return HQ_EINVAL;
    if (c->dead || !c->st)
        return HQ_EDOWN;
    /* a closed channel shows on the next hq_amqp_next (connection error 504 at worst) */
    return amqp_basic_ack(c->st, c->ch, tag, 1) == AMQP_STATUS_OK ? HQ_OK : HQ_EDOWN;
}

/* Map an RPC reply (amqp.c's translator); a channel-level refusal: the caller reconnects. */
static int reply(struct hq_amqp *c, amqp_rpc_reply_t r, const char *what)
{
    int rc = hq__amqp_reply(c, r, what, true);

    if (rc == HQ_OK)
        return HQ_OK;
    if (c->dead || c->cs.down)
        return HQ_EDOWN;
    hq_error("firehose tracer: broker refused", "what=%s error=\"%s\"", what, c->err);
    return rc == HQ_ENOTFOUND ? HQ_ENOTFOUND : HQ_EBROKER;
}

int hq_archive_trace_queue(struct hq_amqp *c, const char *binding_key, char *qname,
                           size_t qnamesz)
{
    amqp_queue_declare_ok_t *ok;
    amqp_table_entry_t e[2];
    amqp_table_t args;
    int rc;

    if (!c || !qname || qnamesz == 0)
        return HQ_EINVAL;
    qname[0] = '\0';
    if (c->dead || !c->st)
        return HQ_EDOWN;
    e[0].key = amqp_cstring_bytes("x-max-length");
    e[0].value.kind = AMQP_FIELD_KIND_I64;
    e[0].value.value.i64 = TRACE_MAX_LENGTH;
    e[1].key = amqp_cstring_bytes("x-overflow");
    e[1].value.kind = AMQP_FIELD_KIND_UTF8;
    e[1].value.value.bytes = amqp_cstring_bytes("drop-head");
    args.num_entries = 2;
    args.entries = e;
    /* server-named, not durable, exclusive, auto-delete: it dies with the connection */
    ok = amqp_queue_declare(c->st, c->ch, amqp_empty_bytes, 0, 0, 1, 1, args);
    rc = reply(c, amqp_get_rpc_reply(c->st), "queue.declare");
    if (rc != HQ_OK)
        return rc;
    if (!ok || ok->queue.len == 0 || ok->queue.len >= qnamesz)
        return HQ_EBROKER;
    memcpy(qname, ok->queue.bytes, ok->queue.len);
    qname[ok->queue.len] = '\0';
    (void)amqp_queue_bind(c->st, c->ch, amqp_cstring_bytes(qname),
                          amqp_cstring_bytes(TRACE_EXCHANGE),
                          amqp_cstring_bytes(binding_key ? binding_key : "#"), amqp_empty_table);
    return reply(c, amqp_get_rpc_reply(c->st), "queue.bind");
}
