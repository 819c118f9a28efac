/* hq_pub: a pool of publisher threads, each owning one broker connection with publisher
 * confirms and a window of outstanding publishes. Any thread may call hq_pub_publish();
 * it never blocks past its deadline, whatever the broker does (rabbitmq-c's publish may block
 * forever: only publisher threads ever call it).
 *
 * Connections reconnect by themselves with jittered backoff across broker->uris; messages
 * unconfirmed when a connection dies are republished unless their caller has given up. */
#ifndef HQ_PUB_H
#define HQ_PUB_H

#include <stdbool.h>
#include <stdint.h>
#include "hq_status.h"
#include "hq_config.h"
#include "hq_event.h"

struct hq_pub;

struct hq_pub_stats {
    bool connected;       /* at least one publisher connection is up and not blocked */
    bool blocked;         /* every up connection is blocked by an alarm */
    int connections_up;
    uint64_t published, confirmed, nacked, returned, reconnects;
    uint64_t batches;        /* publish rounds: jobs taken off the queue and sent back to back */
    uint64_t confirm_frames; /* basic.ack/nack frames that settled at least one publish */
};

/* Where one publish spent its time, in microseconds of hq_mono_us() (hq_time.h): queued by
 * the caller, taken off the queue by a publisher thread, written to the socket (with the rest
 * of its batch of `batch` jobs), settled by the broker's ack (read by the publisher), and the
 * caller running again. Filled by hq_pub_publish_timed() when it returns HQ_OK. */
struct hq_pub_timing {
    int64_t queued_us, taken_us, sent_us, settled_us, woken_us;
    int batch;
};

/* Start n publisher threads (n >= 1), window = max unconfirmed publishes per connection.
 * broker is copied. Returns at once; connections come up in the background.
 * Caller stops and frees with hq_pub_stop(). */
HQ_MUST_CHECK int hq_pub_start(const struct hq_broker_cfg *broker, int n, int window,
                               const char *conn_name, struct hq_pub **out);

/* Publish m (copied) to exchange with its routing key, persistent, and wait for the broker's
 * confirm until deadline_mono_ms (hq_mono_ms clock).
 * HQ_OK: confirmed (durable). HQ_EDOWN: no connection (returned at once). HQ_EBLOCKED: the
 * broker has blocked publishing (returned at once). HQ_EBROKER: nacked or returned, or its
 * channel was closed by the broker. HQ_ENOTFOUND, HQ_EAUTH: the channel was closed because
 * the exchange does not exist, or access to it was refused (nothing wrong with the message).
 * HQ_ETIMEDOUT: no confirm in time (the message may still be published later: duplicates are
 * possible, loss is not). HQ_ESHUTDOWN: stopping. HQ_ETOOBIG: the message itself can never be
 * taken: its body is larger than the broker's max_message_size (learnt from the channel close
 * the first such message causes; the other messages of that channel are republished, and
 * later messages that large fail at once until the process restarts). */
HQ_MUST_CHECK int hq_pub_publish(struct hq_pub *p, const char *exchange, const struct hq_msg *m,
                                 int64_t deadline_mono_ms);

/* hq_pub_publish(), and on HQ_OK where the time went (tm may be NULL). */
HQ_MUST_CHECK int hq_pub_publish_timed(struct hq_pub *p, const char *exchange,
                                       const struct hq_msg *m, int64_t deadline_mono_ms,
                                       struct hq_pub_timing *tm);

/* Queue m (copied) and return without waiting for its confirm: for best-effort messages
 * (lifecycle records). HQ_OK queued; HQ_EDOWN, HQ_EBLOCKED, HQ_EFULL, HQ_ESHUTDOWN at once.
 * A queued message is published with the others; if its connection is lost before the
 * confirm it is dropped, not republished. Nacks and returns show in the stats only. */
HQ_MUST_CHECK int hq_pub_publish_async(struct hq_pub *p, const char *exchange,
                                       const struct hq_msg *m);

/* Publish every message of the pool with the mandatory flag: one that no queue takes comes back
 * (basic.return) and its call fails with HQ_EBROKER instead of being confirmed and dropped. For
 * publishes to a queue by name through the default exchange (the worker's retry and DLQ
 * copies). Call it before the first publish. */
void hq_pub_set_mandatory(struct hq_pub *p);
void hq_pub_get_stats(struct hq_pub *p, struct hq_pub_stats *st);

/* Stop: waits (up to drain_ms) for outstanding confirms, closes connections, joins threads,
 * frees. Pending publish calls return HQ_ESHUTDOWN. NULL-safe. */
void hq_pub_stop(struct hq_pub *p, int drain_ms);

#endif
