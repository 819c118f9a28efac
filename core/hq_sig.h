/* hq_sig: webhook signature verification for every scheme of docs/signatures.md.
 *
 * Works on the raw body bytes only; never parses JSON except where the scheme puts the
 * signature in the body (mailgun, twilio's bodySHA256 is in the URL) or its signed timestamp
 * (linear's webhookTimestamp, read once the MAC has matched). All MAC comparisons are
 * constant-time (CRYPTO_memcmp). Thread-safe: no global state. Each scheme's verify and sign
 * functions are reached through its row of the scheme table (hq_scheme.h). */
#ifndef HQ_SIG_H
#define HQ_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq_status.h"
#include "hq_config.h"
#include "hq_http_req.h"

#define HQ_REPLAY_KEY_LEN 32

struct hq_verify_result {
    /* On failure: a short static reason code for the 401 body and metrics:
     * "missing_signature", "malformed_signature", "duplicate_header", "bad_signature",
     * "missing_timestamp", "stale_timestamp", "body_hash_mismatch", "no_secret". NULL on OK. */
    const char *reason;
    int64_t timestamp;   /* the signed timestamp in seconds, -1 when the scheme has none */
    int secret_index;    /* which configured secret matched, -1 if none */
    bool has_replay_key; /* false for scheme none */
    /* SHA-256 over the scheme's signature material (signature header value(s) and timestamp,
     * plus the body hash for token schemes, or mailgun's timestamp+token+signature): equal keys
     * mean an exact replay. */
    unsigned char replay_key[HQ_REPLAY_KEY_LEN];
    /* Internal: the first server-side failure (HQ_ENOMEM) seen while verifying, else HQ_OK. */
    int fault;
};

/* Default tolerance of a scheme in seconds (0 = no timestamp), and whether a future
 * timestamp is checked too (both directions). */
int hq_sig_default_tolerance(enum hq_scheme s, bool *both_directions);
/* The tolerance actually in force for src (its tolerance_s, or the scheme default). */
int hq_sig_tolerance(const struct hq_source_cfg *src);

/* Verify req for src at time now_s (Unix seconds). HQ_OK, or HQ_EAUTH / HQ_ESTALE with
 * res->reason set (the request's fault: 401). HQ_ENOMEM (reason "internal") when an
 * allocation or an OpenSSL call failed while verifying: a server-side failure that says
 * nothing about the request (503), whatever the scheme had concluded. res is always filled. */
HQ_MUST_CHECK int hq_sig_verify(const struct hq_source_cfg *src, const struct hq_request_view *req,
                                int64_t now_s, struct hq_verify_result *res);

/* hex(HMAC-SHA256(secret, msg)) into out (65 bytes): Zoom's encryptedToken. */
void hq_sig_hmac_sha256_hex(const struct hq_secret *secret, const unsigned char *msg, size_t n,
                            char out[65]);

/* Signing side, used by hookmq-send and tests: add the headers (and for mailgun the body must
 * already contain the signature object) that make req verify for src with secret 0 at now_s.
 * Writes "Name: value" lines separated by '\n' into out. HQ_ETOOBIG when outsz is short. */
HQ_MUST_CHECK int hq_sig_sign(const struct hq_source_cfg *src, const unsigned char *body,
                              size_t body_len, const char *url, const char *content_type,
                              const char *event_id, int64_t now_s, char *out, size_t outsz);

#endif
