/* hq_event: the event envelope (what the gateway publishes and consumers receive) and
 * routing keys (core/event.c), its binary encoding used by the spool (core/event_codec.c),
 * UUIDv7 (core/uuid7.c), and event type/id extraction (core/event_extract.c). */
#ifndef HQ_EVENT_H
#define HQ_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq_status.h"
#include "hq_buf.h"
#include "hq_config.h"
#include "hq_sig.h"

/* HQ_HDR_TABLE: an AMQP field table of name -> bytes (hookmq-steps), held in str as its text
 * form (hq_steps.h), so it is copied and freed like a string; only the wire codec differs. */
enum hq_hdr_type { HQ_HDR_STR = 0, HQ_HDR_LONG, HQ_HDR_TABLE };

struct hq_hdr {
    char *key; /* owned, <= 128 bytes */
    enum hq_hdr_type type;
    char *str;  /* owned, HQ_HDR_STR / HQ_HDR_TABLE; may contain any bytes except NUL */
    int64_t num; /* HQ_HDR_LONG */
};

/* A message as published to the events exchange. Every pointer is owned by the struct and
 * released by hq_msg_free(). */
struct hq_msg {
    char *routing_key;
    char *message_id;
    char *content_type; /* may be NULL */
    int64_t timestamp_s;
    struct hq_hdr *headers;
    size_t n_headers;
    unsigned char *body;
    size_t body_len;
};

HQ_MUST_CHECK int hq_msg_add_str(struct hq_msg *m, const char *key, const char *val);
/* The same as hq_msg_add_str for val[0..n) (cut at a NUL inside); val may be NULL when n is 0. */
HQ_MUST_CHECK int hq_msg_add_strn(struct hq_msg *m, const char *key, const char *val, size_t n);
HQ_MUST_CHECK int hq_msg_add_long(struct hq_msg *m, const char *key, int64_t v);
/* Adds (or replaces) table header key from its text form (hq_steps.h; not checked here). */
HQ_MUST_CHECK int hq_msg_add_table(struct hq_msg *m, const char *key, const char *text);
/* Removes header key if present (the others keep their order). */
void hq_msg_remove(struct hq_msg *m, const char *key);
const struct hq_hdr *hq_msg_header(const struct hq_msg *m, const char *key);
/* The value of string header key, or NULL (absent, or a number). Borrowed. */
const char *hq_msg_str(const struct hq_msg *m, const char *key);
HQ_MUST_CHECK int hq_msg_copy(const struct hq_msg *src, struct hq_msg *dst);
void hq_msg_free(struct hq_msg *m); /* NULL-safe; leaves *m zeroed */

/* Self-delimiting binary encoding (versioned) for the spool journal. decode validates every
 * length against n and fails with HQ_EINVAL on malformed input (never reads past n). */
HQ_MUST_CHECK int hq_msg_encode(const struct hq_msg *m, struct hq_buf *out);
HQ_MUST_CHECK int hq_msg_decode(const unsigned char *p, size_t n, struct hq_msg *out);

/* Routing key "<source>.<normalized type>": lower-case, '/' -> '.', ' ' -> '_', anything
 * outside [a-z0-9_.-] -> '_'. Caps the type at 200 bytes. Returns a malloc'd string or NULL. */
char *hq_routing_key(const char *source, const char *type);

/* UUIDv7 (RFC 9562) text form into out[37]. Thread-safe, monotonic within a process. */
void hq_uuid7(char out[37]);

/* Result of hq_event_extract. Strings owned; free with hq_event_meta_free(). */
struct hq_event_meta {
    char *type;   /* never NULL on HQ_OK */
    char *id;     /* never NULL on HQ_OK (generated UUIDv7 when the scheme has no id) */
    bool id_generated;
    /* Handshakes (set when the request is one; the gateway answers 200 with handshake_body
     * and publishes nothing): Slack url_verification, Zoom endpoint.url_validation. */
    bool handshake;
    char *handshake_body;         /* JSON text to answer with */
    char *handshake_content_type; /* "application/json" or "text/plain" */
};

/* Extract type and id for src from req per the scheme defaults (docs/message-format.md) and
 * the source's selectors
 * ("json:/json/pointer", "header:Name", "const:text", "form:field"). The body is parsed as
 * JSON (depth <= 32, strict) only when a json selector needs it. verified_secret is the
 * secret that authenticated the request (for the Zoom handshake), may be NULL.
 * HQ_EINVAL with *reason ("missing_type", "missing_id", "bad_json") when a required value is
 * absent (-> HTTP 400). */
HQ_MUST_CHECK int hq_event_extract(const struct hq_source_cfg *src, const struct hq_request_view *req,
                                   const struct hq_secret *verified_secret,
                                   struct hq_event_meta *meta, const char **reason);
void hq_event_meta_free(struct hq_event_meta *meta);

/* Does header name get copied for scheme s as "http-<lower name>"? (event, delivery, topic,
 * id, timestamp and signature headers; never Authorization, tokens or cookies.) For the hmac
 * scheme the source's configured header is kept too. */
bool hq_event_keep_header(const struct hq_source_cfg *src, const char *name);

/* Build the complete message for an accepted request (docs/message-format.md): body,
 * content_type, message_id, timestamp, routing key and hookmq-* / http-* headers. */
HQ_MUST_CHECK int hq_event_build(const struct hq_source_cfg *src, const struct hq_request_view *req,
                                 const struct hq_event_meta *meta, int64_t received_ms,
                                 struct hq_msg *out);

#endif
