/* hq__sig: the helpers every provider file (core/sig_<name>.c) shares with the dispatcher
 * (core/sig.c): HMAC, constant-time comparison, header and timestamp parsing, replay keys and
 * the output of the signing side. Internal to core. Rules: core/sig.c's header comment. */
#ifndef HQ__SIG_H
#define HQ__SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hq__scheme.h"
#include "hq_sig.h"

#define HQ__SIG_HDR_MAX 8192   /* longest header value we parse */
#define HQ__SIG_ENTRIES_MAX 32 /* list entries in a multi-signature header */
#define HQ__SIG_MAC_MAX 64     /* SHA-512 */
#define HQ__SIG_URL_MAX 8192   /* twilio / square URL */

/* hq_verify_result.reason values (docs/signatures.md) */
#define HQ__R_MISSING "missing_signature"
#define HQ__R_MALFORMED "malformed_signature"
#define HQ__R_DUP "duplicate_header"
#define HQ__R_BAD "bad_signature"
#define HQ__R_MISSING_TS "missing_timestamp"
#define HQ__R_STALE "stale_timestamp"
#define HQ__R_BODY_HASH "body_hash_mismatch"
#define HQ__R_NO_SECRET "no_secret"

/* A borrowed byte range: the pieces a MAC or digest is computed over. */
struct hq__part {
    const void *p;
    size_t n;
};

/* One "key=value" item of a list header (borrowed from the header). */
struct hq__kv {
    const char *k, *v;
    size_t kn, vn;
};

/* The output of a sign function: "Name: value" lines separated by '\n'. */
struct hq_sig_out {
    char *out;
    size_t sz, pos;
    int rc; /* the first failure; later appends do nothing */
};

/* MAC length of alg in bytes. */
size_t hq__sig_alg_len(enum hq_hmac_alg alg);
/* HMAC-<alg>(key, parts...) into out (hq__sig_alg_len(alg) bytes). HQ_OK, HQ_EINVAL, HQ_ENOMEM. */
int hq__sig_hmac(enum hq_hmac_alg alg, const unsigned char *key, size_t keylen,
                 const struct hq__part *parts, size_t nparts, unsigned char out[HQ__SIG_MAC_MAX]);
/* Remember a server-side failure (allocation, OpenSSL) in res: it decides the verdict. */
void hq__sig_set_fault(struct hq_verify_result *res, int rc);
/* SHA-256 of p into out; on failure out is zeroed and the fault set in res (may be NULL). */
void hq__sig_sha256(const void *p, size_t n, unsigned char out[32], struct hq_verify_result *res);
/* Constant-time equality (the lengths are the provider's format, not secret). */
bool hq__sig_ct_eq(const void *a, size_t an, const void *b, size_t bn);
/* Equality of a presented token and a secret, compared as SHA-256 digests. */
bool hq__sig_token_eq(const void *a, size_t an, const void *b, size_t bn,
                      struct hq_verify_result *res);
bool hq__sig_secret_usable(const struct hq_secret *s);
/* res->replay_key = SHA-256(len|scheme name, len|field...). */
void hq__sig_replay_key(struct hq_verify_result *res, enum hq_scheme s,
                        const struct hq__part *fields, size_t nfields);
/* res->reason = reason; returns rc. */
int hq__sig_fail(struct hq_verify_result *res, int rc, const char *reason);
/* A header the verifier relies on: HQ_OK with *out = value or NULL when absent; HQ_EAUTH
 * (duplicate_header, or malformed_signature beyond HQ__SIG_HDR_MAX). */
int hq__sig_get_hdr(const struct hq_request_view *req, const char *name, const char **out,
                    size_t *len, struct hq_verify_result *res);
/* The same for a header the scheme requires: absent or empty is HQ_EAUTH missing_signature. */
int hq__sig_need_hdr(const struct hq_request_view *req, const char *name, const char **out,
                     size_t *len, struct hq_verify_result *res);
/* Canonical decimal Unix seconds (no sign, no leading zero, at most 15 digits). */
bool hq__sig_parse_ts(const char *s, size_t n, int64_t *out);
/* The timestamp header name: *ts (*tsn bytes) and its value *tsv, also res->timestamp. HQ_OK,
 * or HQ_EAUTH: duplicate_header, missing_timestamp (absent or empty), malformed_signature. */
int hq__sig_get_ts(const struct hq_request_view *req, const char *name, const char **ts,
                   size_t *tsn, int64_t *tsv, struct hq_verify_result *res);
/* HQ_OK when ts is within the source's tolerance of now (inclusive), else HQ_ESTALE. */
int hq__sig_check_time(const struct hq_source_cfg *src, int64_t ts, int64_t now,
                       struct hq_verify_result *res);
/* "k=v<sep>k=v...": at most HQ__SIG_ENTRIES_MAX items. HQ_OK or HQ_EINVAL. */
int hq__sig_split_kv(const char *s, size_t n, char sep, struct hq__kv *items, size_t *count);
bool hq__sig_kv_is(const struct hq__kv *e, const char *key);
/* req->content_type, else its Content-Type header (may be NULL). */
const char *hq__sig_content_type(const struct hq_request_view *req);
/* Tries every usable secret: encode(HMAC(secret, parts)) against each candidate value. On a
 * match sets res->secret_index, copies the MAC to mac_out and returns true. */
bool hq__sig_match_encoded(const struct hq_source_cfg *src, enum hq_hmac_alg alg,
                           enum hq_encoding enc, const struct hq__part *parts, size_t nparts,
                           const struct hq__kv *cands, size_t ncands, struct hq_verify_result *res,
                           unsigned char mac_out[HQ__SIG_MAC_MAX]);
/* After a MAC match: the replay key from (mac, ts text) and, with a timestamp, the time check. */
int hq__sig_finish_mac(const struct hq_source_cfg *src, const unsigned char *mac, size_t ml,
                       const char *ts, size_t tsn, int64_t ts_val, int64_t now,
                       struct hq_verify_result *res);
/* One header value v = "<prefix><encoded MAC over parts>", no timestamp. */
int hq__sig_verify_single(const struct hq_source_cfg *src, enum hq_hmac_alg alg,
                          enum hq_encoding enc, const char *prefix, const char *v, size_t vn,
                          const struct hq__part *parts, size_t nparts, int64_t now,
                          struct hq_verify_result *res);

/* Signing side: append "name: value" (vn bytes; CR, LF, NUL refused with HQ_EINVAL). */
void hq__sig_out_line(struct hq_sig_out *o, const char *name, const char *v, size_t vn);
void hq__sig_out_str(struct hq_sig_out *o, const char *name, const char *v);
/* prefix + encode(HMAC-<alg>(key, parts)) into text. HQ_OK, HQ_ETOOBIG, HQ_ENOMEM. */
int hq__sig_sign_text(enum hq_hmac_alg alg, enum hq_encoding enc, const unsigned char *key,
                      size_t keylen, const struct hq__part *parts, size_t nparts,
                      const char *prefix, char *text, size_t textsz);
/* header: prefix + encode(HMAC-<alg>(secret, body)) into o. HQ_OK, HQ_ETOOBIG, HQ_ENOMEM. */
int hq__sig_sign_body(const struct hq_sign_req *in, struct hq_sig_out *o, enum hq_hmac_alg alg,
                      enum hq_encoding enc, const char *prefix, const char *header);

#endif
