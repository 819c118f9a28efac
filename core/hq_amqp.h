/* hq_amqp: one RabbitMQ connection (rabbitmq-c 0.11) owned by one thread.
 *
 * Programs see only this header (and hq_consume.h): rabbitmq-c stays inside core/ (core/amqp.c,
 * core/consume.c, core/archive_amqp.c; the connection object is hq__amqp_private.h). Connects
 * by walking broker->uris (with TLS for amqps:// per broker->tls), logs in advertising
 * consumer_cancel_notify and connection.blocked, bounds every RPC with a timeout, and opens
 * channel 1.
 * NOT thread-safe: a struct hq_amqp and everything it returns belong to one thread. */
#ifndef HQ_AMQP_H
#define HQ_AMQP_H

#include <stdbool.h>
#include <stdint.h>
#include "hq_status.h"
#include "hq_config.h"
#include "hq_event.h"

struct hq_amqp;

/* Connect to the first reachable node of b->uris starting at index *start (updated to the
 * node used, so a reconnect can move on). conn_name shows in the management UI.
 * timeout_ms bounds connect + login + channel open. Caller frees with hq_amqp_close().
 * A failure is logged (warning) with the reason of the last node tried. */
HQ_MUST_CHECK int hq_amqp_connect(const struct hq_broker_cfg *b, const char *conn_name,
                                  int timeout_ms, size_t *start, struct hq_amqp **out);
/* hq_amqp_connect that logs nothing: the reason for the last failed node goes to err (may be
 * NULL). Returns HQ_OK, HQ_EINVAL (a URI does not parse; no node was tried), HQ_EAUTH (login
 * refused), HQ_ETIMEDOUT or HQ_EDOWN (unreachable), HQ_ENOMEM, HQ_ECONFIG (TLS files).
 * timeout_ms is the budget of each node tried (TCP/TLS connect, login and channel open). */
HQ_MUST_CHECK int hq_amqp_connect_quiet(const struct hq_broker_cfg *b, const char *conn_name,
                                        int timeout_ms, size_t *start, struct hq_amqp **out,
                                        char *err, size_t errsz);
/* Graceful close (bounded), then free. NULL-safe. */
void hq_amqp_close(struct hq_amqp *c);
/* The URI of the connected node without password, for logs. */
const char *hq_amqp_peer(const struct hq_amqp *c);
/* Host and port of a broker URI, parsed as hq_amqp_connect parses it (default port 5672,
 * amqps 5671); no credentials. HQ_EINVAL when it does not parse, HQ_ETOOBIG when host is
 * short. */
HQ_MUST_CHECK int hq_amqp_uri_hostport(const char *uri, char *host, size_t hostsz, int *port);

/* The RabbitMQ version the connected node announced (server property "version", e.g.
 * "4.0.5" -> 4, 0). HQ_ENOTFOUND when it announced none (not RabbitMQ), HQ_EINVAL when it
 * cannot be read. */
HQ_MUST_CHECK int hq_amqp_server_version(const struct hq_amqp *c, int *major, int *minor);
/* Parse a RabbitMQ version ("3.10", "4.0.5", "4", "4.1.0-rc.1") into major and minor.
 * HQ_EINVAL for anything else. */
HQ_MUST_CHECK int hq_broker_version_parse(const char *s, int *major, int *minor);

/* Text of the last error on c (library or broker reply, e.g. "queue.declare: 406
 * PRECONDITION_FAILED - inequivalent arg ..."), whichever call (this header or hq_consume.h)
 * saw it; "" if none. Valid until the next call on c. */
const char *hq_amqp_error(const struct hq_amqp *c);

/* Declarations (topology, hookmq-dlx). passive: only check existence (HQ_ENOTFOUND if absent;
 * the channel is reopened). Otherwise declare durable with args; HQ_ECONFLICT (406: the object
 * exists with other properties; hq_amqp_error() has the broker's text) with the channel
 * reopened. HQ_EDOWN when the connection is lost. args/n may be NULL/0 (n <= 8).
 * A refused declare closes channel 1: consuming on c is over (hq_consume.h, Channel). */
struct hq_targ;
HQ_MUST_CHECK int hq_amqp_exchange_declare(struct hq_amqp *c, const char *name,
                                           const char *type, bool passive,
                                           const struct hq_targ *args, size_t n);
HQ_MUST_CHECK int hq_amqp_queue_declare(struct hq_amqp *c, const char *name, bool passive,
                                        const struct hq_targ *args, size_t n,
                                        uint32_t *messages, uint32_t *consumers);
HQ_MUST_CHECK int hq_amqp_queue_bind(struct hq_amqp *c, const char *queue, const char *exchange,
                                     const char *routing_key);

/* Passive checks: HQ_OK, HQ_ENOTFOUND (the channel is reopened), or HQ_EDOWN. */
HQ_MUST_CHECK int hq_amqp_exchange_exists(struct hq_amqp *c, const char *name);
HQ_MUST_CHECK int hq_amqp_queue_exists(struct hq_amqp *c, const char *name, uint32_t *messages,
                                       uint32_t *consumers);

/* Publisher confirms. After hq_amqp_confirm_select, every publish gets a delivery tag
 * (1, 2, ...) returned in *tag. */
HQ_MUST_CHECK int hq_amqp_confirm_select(struct hq_amqp *c);
HQ_MUST_CHECK int hq_amqp_publish(struct hq_amqp *c, const char *exchange, const char *routing_key,
                                  const struct hq_msg *m, bool mandatory, uint64_t *tag);

enum hq_amqp_ev_type {
    HQ_AMQP_EV_NONE = 0,   /* timeout, nothing arrived */
    HQ_AMQP_EV_ACK,        /* tag, multiple */
    HQ_AMQP_EV_NACK,       /* tag, multiple */
    HQ_AMQP_EV_RETURN,     /* returned message (message_id set), reply code */
    HQ_AMQP_EV_BLOCKED,    /* connection.blocked */
    HQ_AMQP_EV_UNBLOCKED,
    HQ_AMQP_EV_CLOSED,     /* channel or connection closed by the broker: reconnect */
};

struct hq_amqp_ev {
    enum hq_amqp_ev_type type;
    uint64_t tag;
    bool multiple;
    int reply_code;
    char message_id[256];
    char text[256]; /* reply text for CLOSED / RETURN */
};

/* Wait up to timeout_ms for the next confirm-side event (services heartbeats). */
HQ_MUST_CHECK int hq_amqp_poll(struct hq_amqp *c, int timeout_ms, struct hq_amqp_ev *ev);

#endif
