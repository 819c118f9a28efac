/* archive_amqp: the two broker operations of hookmq-archive that hq_consume.h does not offer
 * (kept in core/ so that only core includes rabbitmq-c): the group-commit ack (basic.ack with
 * multiple=1) and the optional firehose tracer's server-named queue.
 *
 * Both work on channel 1 of the connection, the channel core/consume.c consumes on. */
#include <stdio.h>
#include <string.h>

#include "hq__amqp.h"
#include "hq__amqp_inc.h"
#include "hq_archive.h"
#include "hq_log.h"

#define CH 1
#define TRACE_EXCHANGE "amq.rabbitmq.trace"
#define TRACE_MAX_LENGTH 100000

int hq_archive_ack_upto(struct hq_amqp *c, uint64_t tag)
{
    amqp_connection_state_t st;

    if (!c || tag == 0)
        return HQ_EINVAL;
    if (hq__amqp_dead(c))
        return HQ_EDOWN;
    st = hq__amqp_state(c);
    if (!st)
        return HQ_EDOWN;
    /* a closed channel shows on the next hq_amqp_next (connection error 504 at worst) */
    return amqp_basic_ack(st, CH, tag, 1) == AMQP_STATUS_OK ? HQ_OK : HQ_EDOWN;
}

/* Map an RPC reply; a channel-level refusal closes channel 1: the caller must reconnect. */
static int reply(amqp_rpc_reply_t r, const char *what)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return HQ_OK;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *cl = r.reply.decoded;

            hq_error("firehose tracer: broker refused", "what=%s code=%d text=\"%.*s\"", what,
                     cl->reply_code, (int)(cl->reply_text.len > 200 ? 200 : cl->reply_text.len),
                     (const char *)cl->reply_text.bytes);
            return cl->reply_code == AMQP_NOT_FOUND ? HQ_ENOTFOUND : HQ_EBROKER;
        }
        return HQ_EDOWN;
    default:
        return HQ_EDOWN;
    }
}

int hq_archive_trace_queue(struct hq_amqp *c, const char *binding_key, char *qname,
                           size_t qnamesz)
{
    amqp_connection_state_t st;
    amqp_queue_declare_ok_t *ok;
    amqp_table_entry_t e[2];
    amqp_table_t args;
    int rc;

    if (!c || !qname || qnamesz == 0)
        return HQ_EINVAL;
    qname[0] = '\0';
    if (hq__amqp_dead(c) || !(st = hq__amqp_state(c)))
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
    ok = amqp_queue_declare(st, CH, amqp_empty_bytes, 0, 0, 1, 1, args);
    rc = reply(amqp_get_rpc_reply(st), "queue.declare");
    if (rc != HQ_OK)
        return rc;
    if (!ok || ok->queue.len == 0 || ok->queue.len >= qnamesz)
        return HQ_EBROKER;
    memcpy(qname, ok->queue.bytes, ok->queue.len);
    qname[ok->queue.len] = '\0';
    (void)amqp_queue_bind(st, CH, amqp_cstring_bytes(qname), amqp_cstring_bytes(TRACE_EXCHANGE),
                          amqp_cstring_bytes(binding_key ? binding_key : "#"), amqp_empty_table);
    return reply(amqp_get_rpc_reply(st), "queue.bind");
}
