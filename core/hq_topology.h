/* hq_topology: the broker objects hookmq needs (docs/topology.md), derived from the
 * config, and the operations on them: apply (declare, never delete), check, definitions JSON,
 * policies. */
#ifndef HQ_TOPOLOGY_H
#define HQ_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq_status.h"
#include "hq_config.h"
#include "hq_buf.h"

enum hq_obj_kind { HQ_OBJ_EXCHANGE = 0, HQ_OBJ_QUEUE, HQ_OBJ_BINDING };

struct hq_targ {           /* one x-argument */
    const char *key;       /* "x-queue-type", "alternate-exchange", ... */
    bool is_int;
    const char *str;
    int64_t num;
};

struct hq_obj {
    enum hq_obj_kind kind;
    char *name;            /* exchange or queue name; for bindings the destination queue */
    char *type;            /* exchanges: "topic" | "fanout" */
    char *source;          /* bindings: source exchange */
    char *routing_key;     /* bindings */
    struct hq_targ args[8];
    size_t n_args;
    char *owner;           /* "gateway", "archive", or the consumer name */
    bool unlimited;        /* queues: read by get-and-requeue or by a logger, never dropped
                            * by a delivery limit (hookmq.unrouted, hookmq.archive, DLQs) */
};

struct hq_topology {
    struct hq_obj *objs;   /* exchanges first, then queues, then bindings */
    size_t n;
};

/* x-delivery-limit of quorum work queues: deliveries (handler crashes, lost connections)
 * after which the broker dead-letters a message to the DLQ by itself. Retries that the
 * worker decides go through the retry tiers and do not count. */
#define HQ_TOPOLOGY_DELIVERY_LIMIT 20
/* RabbitMQ 4 gives every quorum queue a delivery limit of 20 by default, and counts every
 * return (basic.nack or reject with requeue, a closed channel's unacked messages) as a
 * delivery: a DLQ read 20 times by `hookmq-dlx list` would drop its messages. The unlimited
 * queues of a topology for a 4.x broker therefore carry x-delivery-limit = -1 (no limit).
 * On 3.x that same argument is accepted and drops every returned message at once, and 3.x
 * has no default limit: they carry nothing there. */
#define HQ_TOPOLOGY_NO_DELIVERY_LIMIT (-1)
/* the broker version assumed by `definitions` and `policies` without --broker-version */
#define HQ_TOPOLOGY_DEFAULT_BROKER "3.10"

/* priority of the policies printed by hq_topology_policies */
#define HQ_TOPOLOGY_POLICY_PRIORITY 10

/* What apply found for one object. */
enum hq_obj_state {
    HQ_OBJ_CREATED = 0, /* did not exist before (bindings: their queue or exchange was new) */
    HQ_OBJ_EXISTS,      /* existed with the same properties */
    HQ_OBJ_BOUND,       /* binding declared again (AMQP cannot tell whether it existed) */
    HQ_OBJ_CONFLICT,    /* exists with different properties (see the message) */
    HQ_OBJ_LIMITED,     /* an unlimited queue declared before its broker became 4.x: as
                         * configured, but RabbitMQ 4's default delivery limit applies until a
                         * policy disables it (hq_topology_policies prints that policy) */
};

/* Build the full topology for cfg, valid on any broker version; hq_topology_target() adds
 * what one version needs. Caller frees with hq_topology_free(). */
HQ_MUST_CHECK int hq_topology_build(const struct hq_config *cfg, struct hq_topology *out);
/* Make t's arguments those for a RabbitMQ broker of this major version: on 4 and later,
 * x-delivery-limit = -1 on the unlimited quorum queues (see HQ_TOPOLOGY_NO_DELIVERY_LIMIT).
 * hq_topology_apply does this itself for the broker it connects to. */
void hq_topology_target(struct hq_topology *t, int broker_major);
void hq_topology_free(struct hq_topology *t);
/* The virtual host of cfg's first broker URI (decoded), "/" when it names none or does not
 * parse. */
void hq_topology_vhost(const struct hq_config *cfg, char *vhost, size_t n);
/* What queue (one of consumer's: hookmq.<consumer>[.retry.<delay>|.dlq]) is: "work",
 * "retry" or "dlq". */
const char *hq_topology_queue_kind(const char *consumer, const char *queue);
/* Is retry delay i (< c->n_delays) of consumer c the first of its value? Each distinct delay has
 * one retry queue, hookmq.<consumer>.retry.<delay>; a repeated delay uses the first one's. */
bool hq_topology_delay_first(const struct hq_consumer_cfg *c, size_t i);

/* Declare everything in t over a connection to cfg's broker, with the arguments for the
 * version that broker announces (hq_topology_target). Existing objects are checked
 * passively first; a differing one makes the call return HQ_ECONFLICT with a message naming
 * the object, the argument, both values and what to do written to msg. Never deletes.
 * *created counts objects that did not exist before. */
HQ_MUST_CHECK int hq_topology_apply(const struct hq_config *cfg, const struct hq_topology *t,
                                    int *created, char *msg, size_t msgsz);

/* hq_topology_apply, calling report(ud, obj, state) for each object as it is handled
 * (report may be NULL). Conflicts do not stop the run: every object is checked, every conflict
 * is described in msg (one per line), and the result is HQ_ECONFLICT. Other failures stop at
 * once: HQ_EDOWN/HQ_ETIMEDOUT/HQ_EAUTH (cannot connect, msg says why), HQ_EBROKER. */
HQ_MUST_CHECK int hq_topology_apply_ex(const struct hq_config *cfg, const struct hq_topology *t,
                                       void (*report)(void *ud, const struct hq_obj *o,
                                                      enum hq_obj_state st),
                                       void *ud, int *created, char *msg, size_t msgsz);

/* The x-argument key of o, or NULL. Borrowed from o. */
const struct hq_targ *hq_obj_arg(const struct hq_obj *o, const char *key);

/* Remove from every queue of t the x-arguments a policy can set instead (x-message-ttl,
 * x-dead-letter-*, x-delivery-limit, x-overflow); x-queue-type stays. For operators who
 * manage those by policy (`hookmq-dlx apply --policy-managed`). */
void hq_topology_strip_policy_args(struct hq_topology *t);

/* Append to out one `rabbitmqctl set_policy` command per queue of t that has such arguments
 * (exact-name pattern, apply-to queues), with a comment header. t must not be stripped. */
HQ_MUST_CHECK int hq_topology_policies(const struct hq_config *cfg, const struct hq_topology *t,
                                       struct hq_buf *out);

/* RabbitMQ definitions JSON (importable in the management UI) for t. */
HQ_MUST_CHECK int hq_topology_definitions(const struct hq_config *cfg, const struct hq_topology *t,
                                          struct hq_buf *out);

/* What a check of one object on the broker found (hq_topology_check). */
enum hq_obj_check {
    HQ_CHECK_OK = 0,  /* present and declared as configured */
    HQ_CHECK_MISSING, /* absent (hookmq-dlx apply creates it) */
    HQ_CHECK_DRIFT,   /* present with other properties (why has the broker's text) */
    HQ_CHECK_LIMIT,   /* an unlimited queue declared before the broker became 4.x: as
                       * configured, but keeps RabbitMQ 4's delivery limit unless a policy
                       * disables it */
};

struct hq_amqp;
/* Check o (an exchange or a queue of a topology targeted at c's broker) on c, as
 * `hookmq-dlx status` does: a passive declare (queues: *messages and *consumers, which may
 * be NULL), then an active one with the configured arguments, which changes nothing when
 * they match and is refused when they differ (c's channel is reopened). *state gets the
 * finding; HQ_OK, or HQ_EDOWN / HQ_EBROKER when the broker could not be asked (why, may be
 * NULL, gets the error text). c belongs to the calling thread. */
HQ_MUST_CHECK int hq_topology_check(struct hq_amqp *c, const struct hq_obj *o, uint32_t *messages,
                                    uint32_t *consumers, enum hq_obj_check *state, char *why,
                                    size_t whysz);

#endif