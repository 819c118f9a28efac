/* hq_scheme: what hookmq knows about each signature scheme, in one table indexed by
 * enum hq_scheme (core/scheme.c). Adding a provider is one file (core/sig_<name>.c), one row of
 * that table and one enum value (docs/signatures.md, "Adding a provider").
 *
 * The table is read-only and lives for the whole process: every pointer it hands out is valid
 * until exit. Thread-safe. */
#ifndef HQ_SCHEME_H
#define HQ_SCHEME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq_config.h"

struct hq_request_view;
struct hq_verify_result;
struct hq_event_meta;
struct hq_sig_out; /* the headers a sign function produces (core/hq__sig.h) */
struct hq__ex_ctx; /* the event extractor's request context (core/event_extract.c) */

/* What a sign function gets: all borrowed for the duration of the call. */
struct hq_sign_req {
    const struct hq_source_cfg *src;
    const struct hq_secret *secret; /* the source's first secret, non-empty */
    const unsigned char *body;      /* never NULL */
    size_t body_len;
    const char *url;          /* the URL posted to (may be NULL) */
    const char *content_type; /* may be NULL */
    const char *event_id;     /* may be NULL */
    int64_t now_s;
    const char *ts; /* now_s in decimal */
};

/* Verify req for src (at least one usable secret) at now (Unix seconds): HQ_OK, HQ_EAUTH /
 * HQ_ESTALE with res->reason, HQ_ENOMEM. res is zeroed by the caller (timestamp and
 * secret_index -1). */
typedef int (*hq_scheme_verify_fn)(const struct hq_source_cfg *src,
                                   const struct hq_request_view *req, int64_t now,
                                   struct hq_verify_result *res);
/* Add the provider's signature headers to out (hq__sig_out_str). HQ_OK, HQ_EINVAL (cannot
 * sign this request), HQ_ETOOBIG, HQ_ENOMEM. */
typedef int (*hq_scheme_sign_fn)(const struct hq_sign_req *in, struct hq_sig_out *out);
/* A provider handshake the gateway answers itself (Slack's url_verification, Zoom's
 * endpoint.url_validation): HQ_OK with meta->handshake set, HQ_ENOTFOUND when the request is
 * not one, HQ_EINVAL with *reason when it claims to be one but is malformed, HQ_ENOMEM. */
typedef int (*hq_scheme_handshake_fn)(struct hq__ex_ctx *c, const struct hq_secret *secret,
                                      struct hq_event_meta *meta, const char **reason);

/* How the provider's own event-type header is written by hookmq-send. */
enum hq_type_style {
    HQ_TYPE_AS_IS = 0,  /* the sample name */
    HQ_TYPE_TOPIC,      /* orders-create -> orders/create (Shopify) */
    HQ_TYPE_HOOK_TITLE, /* merge_request -> "Merge Request Hook" (GitLab) */
};

struct hq_scheme_ops {
    /* The `scheme` value of the configuration, and the first field of every replay key:
     * never rename one (tests/unit/test_scheme.c pins them). */
    const char *name;
    /* Default tolerance of the signed timestamp in seconds; 0: the scheme signs no
     * timestamp (tolerance_s is then refused). both_directions: a future timestamp is
     * checked too. */
    int tolerance_s;
    bool both_directions;
    hq_scheme_verify_fn verify; /* NULL only for none (accepts everything) */
    hq_scheme_sign_fn sign;     /* NULL only for none (no headers) */
    /* Default event type and id selectors (docs/config.md), tried in order, NULL-ended. An
     * empty id list: the id is generated. id_required: a request without it is refused. */
    const char *event_type[3];
    const char *event_id[3];
    bool id_required;
    hq_scheme_handshake_fn handshake; /* NULL: none */
    bool url;                         /* the source's `url` is signed: required */
    const char *const *keep_headers;  /* provider headers copied to the message, NULL-ended */
    /* hookmq-send: the shape of a generated event id (prefix + id_hex random hex digits,
     * upper-case when id_upper; id_hex 0: a UUID), the provider's event-type header and the
     * other headers it sends ("Name: value" lines, {{placeholders}} filled in). */
    const char *id_prefix;
    int id_hex;
    bool id_upper;
    const char *type_header;
    enum hq_type_style type_style;
    const char *sample_headers;
    /* The headers the scheme signs with (a MAC, or the secret itself), NULL-ended; empty for
     * none and mailgun (it signs in the body) and for hmac, whose header is the source's
     * `header` (token's too, when set). Shown redacted wherever hookmq shows headers (the
     * console: hq_scheme_signature_header). */
    const char *const *signature_headers;
};

/* The row of s, or NULL when s is not a scheme. */
const struct hq_scheme_ops *hq_scheme_ops(enum hq_scheme s);

/* Does a source of scheme s whose configured `header` is configured (may be NULL) sign with
 * the header called name (ASCII case-insensitive)? Its row's signature_headers, or
 * configured. false when s is not a scheme. */
bool hq_scheme_signature_header(enum hq_scheme s, const char *configured, const char *name);

#endif
