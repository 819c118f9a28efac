/* hq__amqp_private: the one definition of a broker connection, struct hq_amqp, kept the way
 * rabbitmq-c keeps its own connection state in amqp_private.h: one private struct, seen only
 * by the files that implement its methods.
 *
 * - core/amqp.c opens and closes it, is the only reader of its frames (hq__amqp_wait for
 *   publishers, hq__amqp_consume_frame for consumers), dispatches every frame that is not the
 *   reply to a method of ours (hq__amqp_dispatch), and translates every amqp_rpc_reply_t
 *   (hq__amqp_reply);
 * - core/consume.c keeps the consuming state of channel 1 in it (struct hq__consume);
 * - core/archive_amqp.c adds the archive's two methods.
 * Those three files are the only code of the programs that includes rabbitmq-c headers (the
 * benchmarks and the unit test of the header decoder do too, through hq__amqp_inc.h). The rest
 * of core/ uses hq__amqp.h; programs use hq_amqp.h and hq_consume.h.
 *
 * NOT thread-safe: a connection and everything it returns belong to one thread. */
#ifndef HQ__AMQP_PRIVATE_H
#define HQ__AMQP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq__amqp_inc.h"
#include "hq__amqp.h"
#include "hq_consume.h"

#define HQ__AMQP_ID_MAX 255u /* AMQP short strings */

/* A delivery read off the wire and not yet handed out (FIFO of struct hq__consume). */
struct hq__dnode {
    struct hq__dnode *next;
    struct hq_delivery d;
};

/* The consuming side of channel 1 (core/consume.c). */
struct hq__consume {
    bool down;                 /* channel 1 or the connection closed / failed: reconnect */
    bool cancelled;            /* basic.cancel received, not yet reported */
    char ctag[256];            /* our consumer tag */
    struct hq__dnode *head, *tail; /* buffered deliveries, in arrival order */
    size_t n;
    /* the publish hq_amqp_publish_confirmed waits for */
    uint64_t want;             /* its delivery tag, 0 when not waiting */
    char want_id[HQ__AMQP_ID_MAX + 1]; /* its message_id (basic.return carries no tag) */
    int settled;               /* 0 pending, 1 acked, -1 nacked */
    bool returned;
};

struct hq_amqp {
    amqp_connection_state_t st;
    amqp_channel_t ch;        /* always 1 (reopened under the same number) */
    bool ch_open;
    bool dead;
    bool confirm;             /* confirm.select done on the current channel */
    uint64_t next_tag;        /* next publish's delivery tag in confirm mode */
    int rpc_timeout_ms;
    int reply_code;           /* last close code of the channel (by a method of amqp.c, or
                               * unsolicited) or of the connection */
    amqp_table_entry_t *hdrs; /* scratch for publish headers */
    size_t hdrs_cap;
    char peer[320];
    char err[512];            /* the last error, whoever saw it (hq_amqp_error) */
    struct hq__consume cs;
};

void hq__amqp_set_err(struct hq_amqp *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The one translation of amqp_rpc_reply_t (the result of a synchronous method on channel 1).
 * Records the text in c->err ("what: ..."), answers a broker-initiated close with close-ok,
 * marks the channel closed or the connection dead. A channel-level refusal returns
 * HQ_ENOTFOUND (404), HQ_EAUTH (403, 530), HQ_ECONFLICT (406) or HQ_EBROKER; what follows
 * depends on reopen:
 * - false (amqp.c's methods): c->reply_code keeps the code, the next method of amqp.c reopens
 *   the channel, and the consuming side is over (hq_consume.h, Channel);
 * - true (consume.c's methods): channel 1 is reopened at once (no consumer, no confirm mode
 *   any more) and stays usable; HQ_EDOWN (c->cs.down) if it cannot be.
 * Library failures (HQ_ENOMEM, HQ_ETIMEDOUT, HQ_EINVAL, HQ_EDOWN), a connection.close
 * (HQ_EAUTH or HQ_EDOWN) or anything unexpected (HQ_EDOWN) leave the connection dead. */
HQ_MUST_CHECK int hq__amqp_reply(struct hq_amqp *c, amqp_rpc_reply_t r, const char *what,
                                 bool reopen);
/* A library status (AMQP_STATUS_*) as an hq status, the connection marked dead unless OK. */
HQ_MUST_CHECK int hq__amqp_lib(struct hq_amqp *c, int status, const char *what);

/* The one dispatcher of a frame that is not the reply to a method of ours (read by either
 * reader below): basic.ack / basic.nack (settling c->cs.want too), basic.return (its message
 * read; marks c->cs.want returned when the ids match), channel.close / connection.close
 * (close-ok answered, c->cs.down), connection.blocked / unblocked, and for the consuming side
 * basic.deliver (content read into the FIFO of c->cs) and basic.cancel. *ev says what it was
 * (HQ_AMQP_EV_NONE for a delivery, a cancel or anything ignored). HQ_OK, or HQ_EDOWN /
 * HQ_ENOMEM when the connection is gone (ev->type HQ_AMQP_EV_CLOSED, ev->text the reason). */
HQ_MUST_CHECK int hq__amqp_dispatch(struct hq_amqp *c, amqp_frame_t *f, struct hq_amqp_ev *ev);

/* The consuming reader: at most one frame before deadline (hq_mono_ms), dispatched. A
 * basic.deliver is decoded by rabbitmq-c's amqp_consume_message into the FIFO. HQ_OK when
 * something was handled (*ev says what), HQ_ETIMEDOUT when nothing came, HQ_EDOWN /
 * HQ_ENOMEM when the connection is gone. */
HQ_MUST_CHECK int hq__amqp_consume_frame(struct hq_amqp *c, int64_t deadline,
                                         struct hq_amqp_ev *ev);

/* consume.c's half of the dispatcher: a delivery (method read, its content next on the wire)
 * into the FIFO, and the decoding of a delivery's fields and message. */
HQ_MUST_CHECK int hq__consume_on_deliver(struct hq_amqp *c, amqp_channel_t ch,
                                         const amqp_basic_deliver_t *dm);
HQ_MUST_CHECK int hq__consume_push(struct hq_amqp *c, uint64_t tag, bool redelivered,
                                   amqp_bytes_t exchange, amqp_bytes_t routing_key,
                                   const amqp_message_t *m);
/* Free the FIFO of c (hq_amqp_close, hq_consume_detach). */
void hq__consume_clear(struct hq_amqp *c);

#endif
