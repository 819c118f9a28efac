/* hq_dlq: messages in a consumer's dead-letter queue hookmq.NAME.dlq (docs/interface.md:
 * Retries, The event message). What a DLQ message says about its failure (written by the worker as
 * hookmq-consumer / -attempts / -last-error / -failed-at, or by the broker as x-death), the
 * DLQ copy the worker publishes, and the redriven copy that goes back to the work queue.
 * Shared by hookmq-dlx (list/show/redrive/edit/status), the console (its DLQ view, redrive
 * and edit: the same hq_dlq_scan, hq_dlq_select and hq_dlq_edit) and the worker (DLQ copies,
 * automatic redrive). Thread-safe (no shared state); a connection still belongs to one
 * thread. */
#ifndef HQ_DLQ_H
#define HQ_DLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq_amqp.h"
#include "hq_consume.h"
#include "hq_event.h"
#include "hq_lifecycle.h"

#define HQ_DLQ_LAST_ERROR_MAX 1024 /* hookmq-last-error is cut to this many bytes */

/* What list/show/status and the automatic redrive need to know about one DLQ message. */
struct hq_dlq_info {
    const char *id;       /* message_id, "" if none; borrowed from the delivery */
    const char *type;     /* hookmq-event-type, "" if none; borrowed */
    const char *source;   /* hookmq-source, "" if none; borrowed */
    const char *consumer; /* hookmq-consumer, "" when the broker dead-lettered it; borrowed */
    int64_t attempts;     /* hookmq-attempts; for broker-dead-lettered messages see below */
    int64_t failed_at_ms; /* hookmq-failed-at, else the newest x-death time; 0 = unknown */
    int64_t redriven;     /* hookmq-redriven, 0 if absent */
    bool by_broker;       /* dead-lettered by the broker (x-death, no hookmq-consumer) */
    char reason[32];      /* x-death reason of the newest entry ("" if none) */
    char last_error[HQ_DLQ_LAST_ERROR_MAX + 1]; /* hookmq-last-error, or a description of the
                                                   x-death entry */
};

/* Describe d (a message of a DLQ). Broker-dead-lettered messages: attempts is
 * HQ_TOPOLOGY_DELIVERY_LIMIT + 1 for reason delivery_limit (the broker dead-letters after that
 * many deliveries; the work queue's count is not kept in the message) with last_error
 * "delivery_limit (handler crashed or timed out N times)", else the message's hookmq-attempt
 * (1 if absent) with "REASON in QUEUE (N times)". The x-delivery-count of a DLQ message
 * counts deliveries from the DLQ itself (e.g. list peeks) and is not used. */
void hq_dlq_info(const struct hq_delivery *d, struct hq_dlq_info *out);

/* "hookmq.NAME.dlq" / "hookmq.NAME" into out. HQ_ETOOBIG if outsz is too small. */
HQ_MUST_CHECK int hq_dlq_queue(const char *consumer, char *out, size_t outsz);
HQ_MUST_CHECK int hq_dlq_work_queue(const char *consumer, char *out, size_t outsz);

/* The redriven copy of a DLQ message (goes to exchange "" with routing key hookmq.NAME): body,
 * message_id, content_type, timestamp and routing_key field as in d; every header except the
 * broker-owned ones (hq_header_broker_owned) and hookmq-consumer, hookmq-attempts,
 * hookmq-last-error, hookmq-failed-at; hookmq-attempt = 1; hookmq-redriven = previous + 1.
 * *out is overwritten; the caller frees it with hq_msg_free(). */
HQ_MUST_CHECK int hq_dlq_redrive_copy(const struct hq_delivery *d, struct hq_msg *out);

/* The DLQ copy of a failed delivery (goes to exchange "" with routing key hookmq.NAME.dlq):
 * like hq_dlq_redrive_copy without the broker-owned headers, with hookmq-attempt unchanged,
 * and hookmq-consumer = consumer, hookmq-attempts = attempts, hookmq-last-error = last_error
 * (cut to HQ_DLQ_LAST_ERROR_MAX bytes at a UTF-8 boundary; "" if NULL), hookmq-failed-at =
 * failed_at_ms. The caller frees *out with hq_msg_free(). */
HQ_MUST_CHECK int hq_dlq_dead_copy(const struct hq_delivery *d, const char *consumer,
                                   int64_t attempts, const char *last_error, int64_t failed_at_ms,
                                   struct hq_msg *out);

/* Put messages read from queue on c with basic.get (no_ack = false) back in their places,
 * in order: tags[0..n) in the order they were read. Closing the connection returns unacked
 * messages too, but a quorum queue (RabbitMQ 3.10) re-enqueues a closed channel's messages,
 * and any batch of more than 32 returns, in hash order. Returned messages join the queue's
 * returns list, served before the messages never delivered, in the order returned; so this
 * sends one basic.nack (requeue) per message, oldest first, in chunks of 16, and after each
 * chunk waits (up to 3 s) until the queue's ready count shows it was applied. Classic queues
 * put requeued messages back at their old position in any case.
 * For the order to survive, read the queue to its end (or to its depth at the start) before
 * returning: messages left unread that had been returned before (by an earlier list) sit in
 * the returns list and would stay ahead of the ones returned now.
 * *ordered (may be NULL) is set false when the count did not move in time (a consumer is
 * taking messages): the rest was returned without waiting. HQ_OK, or the status of the
 * failed basic.nack (the connection's close returns the rest). Uses c's channel like
 * hq_consume.h; calls hq_amqp_queue_exists(queue). */
HQ_MUST_CHECK int hq_dlq_return(struct hq_amqp *c, const char *queue, const uint64_t *tags,
                                size_t n, bool *ordered);

/* Redrive one DLQ message received on c (basic.get or a consumer on hookmq.NAME.dlq, not
 * auto-acked): publish hq_dlq_redrive_copy(d) to "" / hookmq.NAME with a confirm (up to
 * timeout_ms), then ack d->tag. Nothing is acked unless the copy was confirmed: HQ_EBROKER
 * (nacked or unroutable: the work queue is missing), HQ_ETIMEDOUT, HQ_EDOWN leave d unacked. */
HQ_MUST_CHECK int hq_dlq_redrive_one(struct hq_amqp *c, const char *consumer,
                                     const struct hq_delivery *d, int timeout_ms);
/* hq_dlq_redrive_one, and with reset_steps set the copy goes without the event's saved durable
 * steps (the hookmq-steps header), so every step runs again (`hookmq-dlx redrive
 * --reset-steps`). */
HQ_MUST_CHECK int hq_dlq_redrive_one_ex(struct hq_amqp *c, const char *consumer,
                                        const struct hq_delivery *d, int timeout_ms,
                                        bool reset_steps);

struct hq_lc_emitter;
/* Queue the "redriven" lifecycle record of d (a DLQ message just redriven for consumer) on
 * lc, stamped at_ms: the time taken before the copy was published, so the record never sorts
 * after the outcome of the delivery it caused. Best effort, never blocks. NULL-safe. */
void hq_dlq_emit_redriven(struct hq_lc_emitter *lc, const char *consumer,
                          const struct hq_delivery *d, int64_t at_ms);

/* Called by hq_dlq_scan for each message read (unacked); set *stop to end the scan early and
 * *settled when the callback acked or rejected the message itself. d is freed after the
 * call. A non-zero return stops the scan and is returned. */
typedef int (*hq_dlq_visit_fn)(void *ud, struct hq_amqp *c, const struct hq_delivery *d,
                               bool *stop, bool *settled);

/* Read up to max messages of queue on c without acking them, calling fn for each until it
 * sets *stop (the rest is read too, without fn: only a queue read to the end can be put back
 * in order), then put every message fn did not settle back in its place (hq_dlq_return).
 * *seen counts the messages read; *more (may be NULL) is set when the queue held more than
 * max. HQ_OK, or the first error (reading, fn, returning; logged). core/dlq_scan.c */
HQ_MUST_CHECK int hq_dlq_scan(struct hq_amqp *c, const char *queue, size_t max,
                              hq_dlq_visit_fn fn, void *ud, size_t *seen, bool *more);

/* The parked events a person picked (the console's redrive): exact ids, or a filter whose set
 * fields must all match (source exact, type an fnmatch glob on hookmq-event-type, id exact;
 * an empty filter matches every message). Strings owned; free with hq_dlq_select_free().
 * core/dlq_select.c */
struct hq_dlq_select {
    char **ids;
    size_t n_ids;
    bool by_filter;
    char *source, *type_glob, *id;
};
/* Parse {"ids": ["..."]} (1..1000 ids) or {"filter": {"source", "type", "id"}} (strict JSON,
 * values 1..256 bytes). HQ_OK; HQ_EINVAL with err set (one line); HQ_ENOMEM. */
HQ_MUST_CHECK int hq_dlq_select_parse(const char *json, size_t n, struct hq_dlq_select *out,
                                      char *err, size_t errsz);
bool hq_dlq_select_match(const struct hq_dlq_select *s, const struct hq_dlq_info *in);
void hq_dlq_select_free(struct hq_dlq_select *s); /* NULL-safe */

/* "Edit and retry" (docs/dlq.md): the copy of DLQ message d that goes back to the work queue,
 * as hq_dlq_redrive_copy makes it, with body[0..body_len) as its body when body is not NULL,
 * the string headers keys[i] = vals[i] set (replacing any of that name), and
 * hookmq-edited-from = "sha256:<hex of the SHA-256 of d's body>" and hookmq-edited-by = user.
 * Header names must pass hq_dlq_edit_header_allowed. summary (may be NULL) gets a one-line
 * description for the lifecycle record ("edited by U from sha256:...: body 10 -> 12 bytes,
 * header K"). *out is overwritten; the caller frees it with hq_msg_free(). HQ_EINVAL for a
 * refused header or an empty user. core/dlq_edit.c */
HQ_MUST_CHECK int hq_dlq_edit_copy(const struct hq_delivery *d, const unsigned char *body,
                                   size_t body_len, const char *const *keys,
                                   const char *const *vals, size_t n_headers, const char *user,
                                   struct hq_msg *out, char *summary, size_t summarysz);
/* May an edit set header key? Not the hookmq-* headers (hookmq's own), not x-* (the
 * broker's), and only printable ASCII without spaces, 1..128 bytes. */
bool hq_dlq_edit_header_allowed(const char *key);

/* One "edit and retry" (hq_dlq_edit): the first message of consumer's DLQ with event id id
 * goes back to its work queue as hq_dlq_edit_copy makes it. */
struct hq_dlq_edit {
    const char *consumer;         /* hookmq.NAME.dlq is read, hookmq.NAME gets the copy */
    const char *id;               /* the event id (message_id) */
    const unsigned char *body;    /* the new body, or NULL to keep it */
    size_t body_len;
    const char *const *keys, *const *vals; /* headers to set (hq_dlq_edit_header_allowed) */
    size_t n_headers;
    const char *user;             /* who edits: hookmq-edited-by and the record's "by" */
    struct hq_lc_emitter *lc;     /* the "edit" lifecycle record goes here; may be NULL */
    int timeout_ms;               /* for the broker's confirm of the copy */
};
struct hq_dlq_edit_outcome {
    bool found;        /* a message with the id was parked */
    bool done;         /* its edited copy was confirmed and the original acked */
    int err;           /* found && !done: HQ_EINVAL the edit was refused (hq_dlq_edit_copy),
                          HQ_ENOMEM, or the status of the publish or the ack */
    char source[HQ_NAME_MAX + 1]; /* the event's hookmq-source (for the caller's log line) */
    char error[256];   /* the broker's text when the publish or the ack failed */
    char summary[600]; /* hq_dlq_edit_copy's summary, also the lifecycle record's "error" */
};
/* Read consumer's DLQ on c (at most max messages, hq_dlq_scan: every other message and a
 * failed one are put back in order) and edit and retry the first message with event id e->id:
 * publish the copy to "" / hookmq.NAME with a confirm (up to e->timeout_ms), then ack the
 * original; only then queue the lifecycle record (HQ_LC_EDITED, "by" = e->user, "error" = the
 * summary, stamped before the copy was sent) on e->lc. *out says what happened. Returns the
 * scan's status: HQ_OK also when nothing matched (found false) or the edit was refused (err
 * HQ_EINVAL); the publish's or ack's status when the broker did not take the copy (the event
 * stays parked); HQ_EINVAL for missing arguments. The queues are assumed to exist. */
HQ_MUST_CHECK int hq_dlq_edit(struct hq_amqp *c, size_t max, const struct hq_dlq_edit *e,
                              struct hq_dlq_edit_outcome *out);

/* The lifecycle record of a person's action on parked event in (HQ_LC_REDRIVEN by the
 * console, HQ_LC_EDITED): source and id of in (borrowed), consumer, attempt 1, verdict, by,
 * error (may be NULL) and at_ms; the rest zero. */
void hq_dlq_action_record(const struct hq_dlq_info *in, const char *consumer,
                          enum hq_lc_verdict verdict, const char *by, const char *error,
                          int64_t at_ms, struct hq_lc_record *r);

/* An edit request of the console: {"body": "text"} or {"body_b64": "..."}, and/or
 * {"headers": {"name": "value", ...}} (at most 64, names as hq_dlq_edit_header_allowed,
 * values up to 4096 bytes). Owned; free with hq_dlq_edit_req_free(). core/dlq_select.c */
struct hq_dlq_edit_req {
    bool has_body;
    unsigned char *body;
    size_t body_len;
    char **keys, **vals;
    size_t n;
};
HQ_MUST_CHECK int hq_dlq_edit_req_parse(const char *json, size_t n, struct hq_dlq_edit_req *out,
                                        char *err, size_t errsz);
void hq_dlq_edit_req_free(struct hq_dlq_edit_req *r); /* NULL-safe */

#endif