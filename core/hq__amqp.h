/* hq__amqp: internals of core/amqp.c for the rest of core/ (pub.c, topology.c, replay.c),
 * without rabbitmq-c types.
 *
 * Not a public interface (the hq__ prefix): no program includes it. The connection object
 * itself is defined in hq__amqp_private.h, for the files that include rabbitmq-c. Same
 * threading rule as hq_amqp.h: one connection, one thread. */
#ifndef HQ__AMQP_H
#define HQ__AMQP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq_amqp.h"

/* The socket descriptor while connected, else -1. Only for shutdown(2) by a watchdog and
 * for socket options; never read or write it. */
int hq__amqp_fd(const struct hq_amqp *c);
/* True once the connection is unusable (socket error, connection.close, heartbeat). */
bool hq__amqp_dead(const struct hq_amqp *c);

/* Can m be published to exchange at all? HQ_EINVAL (a name, id, content type or header key
 * over 255 bytes, an empty header key) or HQ_ETOOBIG (properties and headers larger than a
 * frame); hq_amqp_publish refuses such a message the same way without touching the
 * connection. */
HQ_MUST_CHECK int hq__amqp_msg_check(const char *exchange, const struct hq_msg *m);

/* hq_amqp_poll that also returns (with HQ_AMQP_EV_NONE and *woken = true) as soon as
 * wake_fd (e.g. an eventfd; -1 for none) becomes readable. The caller drains wake_fd. */
HQ_MUST_CHECK int hq__amqp_wait(struct hq_amqp *c, int timeout_ms, int wake_fd, bool *woken,
                                struct hq_amqp_ev *ev);

/* The (decoded) virtual host of an AMQP URI into out ("/" when the URI has none).
 * HQ_EINVAL if the URI does not parse, HQ_ETOOBIG if out is too small. */
HQ_MUST_CHECK int hq__amqp_uri_vhost(const char *uri, char *out, size_t outsz);

#endif
