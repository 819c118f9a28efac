/* hq_consume: the consuming side of one broker connection (struct hq_amqp, one thread):
 * basic.qos / consume / get / ack / nack, deliveries decoded into struct hq_msg, and
 * publishing with a confirm on the same connection (retry, DLQ and redrive copies) while
 * deliveries keep arriving (they are buffered, never lost or reordered).
 *
 * Heartbeats are serviced inside every call here; a caller that runs long work must keep
 * calling hq_amqp_service() (or do the work in another thread and call it meanwhile).
 *
 * Channel: everything here runs on the connection's channel 1, the one hq_amqp_connect opens
 * and hq_amqp_publish uses. A refusal of ours (basic.consume / basic.get / queue.purge on a
 * missing queue: HQ_ENOTFOUND) reopens channel 1 and the connection stays usable. But once
 * amqp.c itself saw its channel closed (hq_amqp_queue_exists / hq_amqp_exchange_exists
 * answering HQ_ENOTFOUND, a failed declare) it has moved to another channel, and every call
 * here answers HQ_EDOWN: check existence on a separate connection, or reconnect after such a
 * check. To wait for a deleted queue to come back, retry hq_amqp_consume (HQ_ENOTFOUND).
 *
 * The consuming state (the FIFO of buffered deliveries, the consumer tag, the publish waited
 * for) is part of the connection object itself (core/hq__amqp_private.h); hq_amqp_close(c)
 * frees it (buffered deliveries are dropped: unacked, the broker redelivers them once the
 * connection is gone). Like the connection, it belongs to one thread.
 *
 * Every function returns HQ_EDOWN once the channel or the connection has been closed by the
 * broker or failed: close and reconnect. */
#ifndef HQ_CONSUME_H
#define HQ_CONSUME_H

#include <stdbool.h>
#include <stdint.h>
#include "hq_amqp.h"
#include "hq_event.h"

/* One x-death entry (newest first in the header; looked up by key, not position). */
struct hq_xdeath {
    char queue[256];
    char reason[32];   /* rejected | expired | maxlen | delivery_limit */
    int64_t count;
    int64_t time_s;
};

struct hq_delivery {
    uint64_t tag;          /* delivery tag for ack/nack */
    bool redelivered;
    char *exchange;        /* owned */
    char *routing_key;     /* owned */
    /* properties and headers: string headers as HQ_HDR_STR, integer/boolean/timestamp
     * headers as HQ_HDR_LONG, the hookmq-steps table as HQ_HDR_TABLE (hq_steps.h); other AMQP
     * field types (arrays, tables, floats, decimals) are not carried, except x-death which is
     * decoded below. Owned. */
    struct hq_msg msg;
    uint8_t delivery_mode;
    struct hq_xdeath xdeath[4]; /* x-death entries, up to 4 */
    size_t n_xdeath;
    int64_t delivery_count;     /* x-delivery-count (quorum queues), -1 when absent */
};

void hq_delivery_free(struct hq_delivery *d); /* NULL-safe; leaves *d zeroed */

HQ_MUST_CHECK int hq_amqp_qos(struct hq_amqp *c, uint16_t prefetch);
/* Start consuming queue (manual acks). HQ_ENOTFOUND when the queue does not exist. */
HQ_MUST_CHECK int hq_amqp_consume(struct hq_amqp *c, const char *queue);

enum hq_next_result {
    HQ_NEXT_DELIVERY = 0, /* *d filled: caller frees with hq_delivery_free */
    HQ_NEXT_TIMEOUT,      /* nothing within timeout_ms (heartbeats were serviced) */
    HQ_NEXT_CANCELLED,    /* the broker cancelled the consumer (queue deleted) */
};

/* Wait up to timeout_ms for the next delivery (buffered ones first). Returns HQ_OK with
 * *what set, or HQ_EDOWN when the connection or channel is gone (reconnect). Before a buffered
 * delivery is handed out, the frames that already arrived are read (without waiting); when
 * the connection turns out to be gone, the buffered deliveries are dropped (logged with their
 * count): their tags cannot be acked any more, and the broker redelivers them. */
HQ_MUST_CHECK int hq_amqp_next(struct hq_amqp *c, int timeout_ms, struct hq_delivery *d,
                               enum hq_next_result *what);
/* Read frames for up to timeout_ms without returning deliveries (they are buffered): keeps
 * heartbeats flowing while a handler runs. HQ_EDOWN when the connection is gone. */
HQ_MUST_CHECK int hq_amqp_service(struct hq_amqp *c, int timeout_ms);

HQ_MUST_CHECK int hq_amqp_ack(struct hq_amqp *c, uint64_t tag);
/* basic.ack with multiple=1: every unacked delivery on the channel up to tag. */
HQ_MUST_CHECK int hq_amqp_ack_upto(struct hq_amqp *c, uint64_t tag);
/* basic.nack; requeue=false dead-letters through the queue's DLX (if any). */
HQ_MUST_CHECK int hq_amqp_nack(struct hq_amqp *c, uint64_t tag, bool requeue);

/* basic.get. HQ_OK with *d filled, HQ_ENOTFOUND when the queue is empty or missing (see
 * hq_amqp_queue_exists to tell them apart). no_ack=false leaves the message unacked: ack it,
 * nack it, or close the connection to return it to the queue in its place. */
HQ_MUST_CHECK int hq_amqp_get(struct hq_amqp *c, const char *queue, bool no_ack,
                              struct hq_delivery *d);
HQ_MUST_CHECK int hq_amqp_purge(struct hq_amqp *c, const char *queue, uint32_t *purged);

/* Publish m (persistent, mandatory) with a publisher confirm and wait for it up to
 * timeout_ms, buffering any deliveries that arrive meanwhile. Turns confirm mode on for the
 * channel on first use. HQ_OK confirmed; HQ_EBROKER nacked or returned unroutable;
 * HQ_ETIMEDOUT; HQ_EDOWN. */
HQ_MUST_CHECK int hq_amqp_publish_confirmed(struct hq_amqp *c, const char *exchange,
                                            const char *routing_key, const struct hq_msg *m,
                                            int timeout_ms);

/* Headers the broker owns, never copied by redrive or replay (x-death, x-first-death-*,
 * x-last-death-*, x-delivery-count, x-stream-offset). */
bool hq_header_broker_owned(const char *key);

/* Drop the deliveries buffered on c now (hq_amqp_close(c) does it too; nothing else needs
 * releasing). NULL-safe; a no-op for a connection never used here. */
void hq_consume_detach(struct hq_amqp *c);

/* The text of the last broker or library error seen on c ("" if none), e.g. "channel closed
 * by the broker: 404 NOT_FOUND - no queue 'q'": hq_amqp_error(c), the connection has one.
 * Valid until the next call. */
const char *hq_consume_error(struct hq_amqp *c);

/* Internal, exposed for unit tests: decode an AMQP header table (rabbitmq-c's amqp_table_t)
 * into d->msg headers, d->xdeath / d->n_xdeath and d->delivery_count, as described at struct
 * hq_delivery. Entries that cannot be carried (other field types, keys outside 1..128 bytes,
 * values over 1 MiB, beyond 1024 headers, unsigned values over INT64_MAX) are skipped; string
 * values are cut at an embedded NUL. HQ_OK or HQ_ENOMEM. */
struct amqp_table_t_;
HQ_MUST_CHECK int hq__consume_decode_table(const struct amqp_table_t_ *t, struct hq_delivery *d);

#endif
