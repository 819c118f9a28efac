/* hq__amqp: internals of core/amqp.c shared with core/pub.c and core/topology.c.
 *
 * Not a public interface (the hq__ prefix): these helpers exist so that only amqp.c includes
 * rabbitmq-c headers. Same threading rule as hq_amqp.h: one connection, one thread. */
#ifndef HQ__AMQP_H
#define HQ__AMQP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq_amqp.h"
#include "hq_topology.h"

/* hq_amqp_connect, with the reason for the last failed node written to err (may be NULL).
 * Nothing is logged. Returns HQ_OK, HQ_EINVAL (a URI does not parse; no node was tried),
 * HQ_EAUTH (login refused), HQ_ETIMEDOUT or HQ_EDOWN (unreachable), HQ_ENOMEM. timeout_ms is
 * the budget of each node tried (TCP/TLS connect, login and channel open). */
HQ_MUST_CHECK int hq__amqp_connect(const struct hq_broker_cfg *b, const char *conn_name,
                                   int timeout_ms, size_t *start, struct hq_amqp **out, char *err,
                                   size_t errsz);

/* Text of the last error on c (library or broker reply, e.g. "queue.declare: 406
 * PRECONDITION_FAILED - inequivalent arg ..."); "" if none. Valid until the next call on c. */
const char *hq__amqp_error(const struct hq_amqp *c);
/* The broker's reply code of the last channel or connection close (0 if none). */
int hq__amqp_reply_code(const struct hq_amqp *c);
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

/* Declarations for topology. passive: only check existence (HQ_ENOTFOUND if absent; the
 * channel is reopened). Otherwise declare durable with args; HQ_ECONFLICT (406: the object
 * exists with other properties; hq__amqp_error() has the broker's text) with the channel
 * reopened. HQ_EDOWN when the connection is lost. args/n may be NULL/0. */
HQ_MUST_CHECK int hq__amqp_exchange_declare(struct hq_amqp *c, const char *name,
                                            const char *type, bool passive,
                                            const struct hq_targ *args, size_t n);
HQ_MUST_CHECK int hq__amqp_queue_declare(struct hq_amqp *c, const char *name, bool passive,
                                         const struct hq_targ *args, size_t n,
                                         uint32_t *messages, uint32_t *consumers);
HQ_MUST_CHECK int hq__amqp_queue_bind(struct hq_amqp *c, const char *queue, const char *exchange,
                                      const char *routing_key);

/* The (decoded) virtual host of an AMQP URI into out ("/" when the URI has none).
 * HQ_EINVAL if the URI does not parse, HQ_ETOOBIG if out is too small. */
HQ_MUST_CHECK int hq__amqp_uri_vhost(const char *uri, char *out, size_t outsz);

#endif
