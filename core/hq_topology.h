/* hq_topology: the broker objects hookmq needs (CONTRACT.md, Topology), derived from the
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
};

struct hq_topology {
    struct hq_obj *objs;   /* exchanges first, then queues, then bindings */
    size_t n;
};

/* Build the full topology for cfg. Caller frees with hq_topology_free(). */
HQ_MUST_CHECK int hq_topology_build(const struct hq_config *cfg, struct hq_topology *out);
void hq_topology_free(struct hq_topology *t);

/* Declare everything in t over a connection to cfg's broker. Existing objects are checked
 * passively first; a differing one makes the call return HQ_ECONFLICT with a message naming
 * the object, the argument, both values and what to do written to msg. Never deletes.
 * *created counts objects that did not exist before. */
HQ_MUST_CHECK int hq_topology_apply(const struct hq_config *cfg, const struct hq_topology *t,
                                    int *created, char *msg, size_t msgsz);

/* RabbitMQ definitions JSON (importable in the management UI) for t. */
HQ_MUST_CHECK int hq_topology_definitions(const struct hq_config *cfg, const struct hq_topology *t,
                                          struct hq_buf *out);

#endif
