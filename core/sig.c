/* sig: webhook signature verification and signing (hq_sig.h): the dispatcher over the scheme
 * table (core/scheme.c) and the helpers every provider file (core/sig_<name>.c) shares.
 *
 * Rules applied to every scheme (docs/signatures.md has the user-facing summary):
 * - The MAC is computed over the raw body bytes; nothing is parsed before that except the
 *   signature headers themselves (mailgun carries its signature inside the JSON body, and
 *   twilio form posts sign the decoded parameters, so those two parse the body by design).
 * - Signature values are compared in the string form the provider sends (lower-case hex,
 *   padded base64), with CRYPTO_memcmp after a length check; standard-webhooks compares the
 *   decoded bytes (strict, canonical base64). Secret tokens (gitlab, token, basic) are compared
 *   as SHA-256 digests, so neither the content nor the length of a secret leaks by timing.
 * - Every header parsed is capped (HQ__SIG_HDR_MAX) and so is the number of list entries
 *   (HQ__SIG_ENTRIES_MAX); a header that appears twice fails with "duplicate_header".
 * - Timestamps: decimal digits, canonical (no sign, no leading zero), at most TS_DIGITS_MAX
 *   digits. The MAC is checked first, then the timestamp; boundaries are inclusive.
 * - Empty secrets never match anything.
 *
 * Replay key: SHA-256 over the scheme name and the *matched* signature material, each field
 * length-prefixed: for MAC schemes the MAC that matched (canonical bytes, whatever encoding or
 * extra list entries the header carried) and the signed timestamp; for mailgun the timestamp,
 * token and signature; for gitlab/token/basic the index of the matching secret and SHA-256 of
 * the body (the token itself is the same on every request). Using the matched MAC rather
 * than the raw header means that adding junk entries to a multi-signature header or
 * re-encoding it does not produce a new key for the same signed content.
 *
 * Thread-safe: the only shared state is the HMAC and SHA-256 handles fetched once from OpenSSL;
 * each thread keeps its own HMAC contexts (one per algorithm, reused with each key). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "hq__sig.h"
#include "hq_codec.h"

#define TS_DIGITS_MAX 15 /* Unix seconds, up to year ~31.7 million */

/* ------------------------------------------------------------------------------------------ */
/* Crypto helpers */

/* Fetched once, never freed (reachable until exit): the HMAC algorithm, and SHA-256 (with
 * EVP_sha256() every EVP_DigestInit_ex() fetches it again from the provider store). */
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_impl;
static EVP_MD *sha256_impl;
/* Per thread, an HMAC context per algorithm with its digest set, reused with each new key:
 * naming the digest at every EVP_MAC_init() fetched it again, and a new context allocated
 * five objects. Freed when the thread exits. */
#define MAC_ALGS 3
struct mac_cache {
    EVP_MAC_CTX *ctx[MAC_ALGS];
};
static pthread_key_t mac_cache_key;
static bool mac_cache_ok;

static void mac_cache_free(void *p)
{
    struct mac_cache *c = p;
    size_t i;

    for (i = 0; c && i < MAC_ALGS; i++)
        EVP_MAC_CTX_free(c->ctx[i]);
    free(c);
}

static void hmac_fetch(void)
{
    hmac_impl = EVP_MAC_fetch(NULL, "HMAC", NULL);
    sha256_impl = EVP_MD_fetch(NULL, "SHA256", NULL);
    mac_cache_ok = pthread_key_create(&mac_cache_key, mac_cache_free) == 0;
}

size_t hq__sig_alg_len(enum hq_hmac_alg alg)
{
    switch (alg) {
    case HQ_ALG_SHA1:
        return 20;
    case HQ_ALG_SHA512:
        return 64;
    case HQ_ALG_SHA256:
    default:
        return 32;
    }
}

static const char *alg_digest(enum hq_hmac_alg alg)
{
    switch (alg) {
    case HQ_ALG_SHA1:
        return "SHA1";
    case HQ_ALG_SHA512:
        return "SHA512";
    case HQ_ALG_SHA256:
    default:
        return "SHA256";
    }
}

/* HMAC-<alg>(key, parts...) into out (hq__sig_alg_len(alg) bytes). HQ_OK or HQ_EINVAL/HQ_ENOMEM. */
static size_t alg_index(enum hq_hmac_alg alg)
{
    switch (alg) {
    case HQ_ALG_SHA1:
        return 0;
    case HQ_ALG_SHA512:
        return 2;
    case HQ_ALG_SHA256:
    default:
        return 1;
    }
}

/* The calling thread's HMAC context for alg (digest set), made on first use; NULL on ENOMEM. */
static EVP_MAC_CTX *thread_mac(enum hq_hmac_alg alg, struct mac_cache **cache)
{
    struct mac_cache *c;
    size_t i = alg_index(alg);

    *cache = NULL;
    if (!mac_cache_ok) return NULL;
    c = pthread_getspecific(mac_cache_key);
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c) return NULL;
        if (pthread_setspecific(mac_cache_key, c) != 0) {
            free(c);
            return NULL;
        }
    }
    *cache = c;
    if (!c->ctx[i]) {
        OSSL_PARAM params[2];
        EVP_MAC_CTX *x = EVP_MAC_CTX_new(hmac_impl);

        params[0] =
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)alg_digest(alg), 0);
        params[1] = OSSL_PARAM_construct_end();
        if (!x || !EVP_MAC_CTX_set_params(x, params)) {
            EVP_MAC_CTX_free(x);
            return NULL;
        }
        c->ctx[i] = x;
    }
    return c->ctx[i];
}

int hq__sig_hmac(enum hq_hmac_alg alg, const unsigned char *key, size_t keylen,
                 const struct hq__part *parts, size_t nparts, unsigned char out[HQ__SIG_MAC_MAX])
{
    static const unsigned char empty[1] = {0};
    struct mac_cache *cache;
    EVP_MAC_CTX *ctx;
    size_t outl = 0, i;
    int rc = HQ_EINVAL;

    pthread_once(&hmac_once, hmac_fetch);
    if (!hmac_impl) return HQ_ENOMEM;
    ctx = thread_mac(alg, &cache);
    if (!ctx) return HQ_ENOMEM;
    if (!EVP_MAC_init(ctx, keylen ? key : empty, keylen, NULL)) goto out;
    for (i = 0; i < nparts; i++)
        if (parts[i].n && !EVP_MAC_update(ctx, parts[i].p, parts[i].n)) goto out;
    if (!EVP_MAC_final(ctx, out, &outl, HQ__SIG_MAC_MAX) || outl != hq__sig_alg_len(alg)) goto out;
    rc = HQ_OK;
out:
    if (rc != HQ_OK) { /* a context OpenSSL failed in is not reused */
        EVP_MAC_CTX_free(ctx);
        cache->ctx[alg_index(alg)] = NULL;
    }
    return rc;
}

/* A server-side failure (allocation, OpenSSL) while verifying: remembered in res, and
 * hq_sig_verify returns it instead of any verdict. */
void hq__sig_set_fault(struct hq_verify_result *res, int rc)
{
    if (res && res->fault == HQ_OK) res->fault = rc;
}

/* SHA-256 of the concatenated parts into out. On failure out is zeroed and the fault is set
 * in res (may be NULL). */
static void sha256_parts(const struct hq__part *parts, size_t nparts, unsigned char out[32],
                         struct hq_verify_result *res)
{
    EVP_MD_CTX *ctx;
    unsigned int outl = 0;
    size_t i;
    int ok;

    pthread_once(&hmac_once, hmac_fetch);
    ctx = EVP_MD_CTX_new();
    ok = ctx && EVP_DigestInit_ex(ctx, sha256_impl ? sha256_impl : EVP_sha256(), NULL);

    for (i = 0; ok && i < nparts; i++)
        if (parts[i].n) ok = EVP_DigestUpdate(ctx, parts[i].p, parts[i].n);
    if (!ok || !EVP_DigestFinal_ex(ctx, out, &outl) || outl != 32) {
        memset(out, 0, 32);
        hq__sig_set_fault(res, HQ_ENOMEM);
    }
    EVP_MD_CTX_free(ctx);
}

void hq__sig_sha256(const void *p, size_t n, unsigned char out[32], struct hq_verify_result *res)
{
    struct hq__part pt = {p, n};
    sha256_parts(&pt, 1, out, res);
}

/* Constant-time equality of two byte strings of possibly different lengths (the length
 * itself is not secret here: it is the provider's format). */
bool hq__sig_ct_eq(const void *a, size_t an, const void *b, size_t bn)
{
    return an == bn && CRYPTO_memcmp(a, b, an) == 0;
}

/* Equality of a presented token and a secret without leaking either's length or content:
 * compare SHA-256 digests. */
bool hq__sig_token_eq(const void *a, size_t an, const void *b, size_t bn,
                      struct hq_verify_result *res)
{
    unsigned char da[32], db[32];
    int before = res->fault;

    hq__sig_sha256(a, an, da, res);
    hq__sig_sha256(b, bn, db, res);
    if (res->fault != before) return false; /* two zeroed digests must never compare equal */
    return CRYPTO_memcmp(da, db, 32) == 0 && an == bn;
}

bool hq__sig_secret_usable(const struct hq_secret *s)
{
    return s && s->data && s->len > 0;
}

static bool any_secret(const struct hq_source_cfg *src)
{
    size_t i;

    for (i = 0; i < src->n_secrets; i++)
        if (hq__sig_secret_usable(&src->secrets[i])) return true;
    return false;
}

/* Replay key = SHA-256(len|scheme, len|field...), lengths as 8-byte big-endian. */
void hq__sig_replay_key(struct hq_verify_result *res, enum hq_scheme s,
                        const struct hq__part *fields, size_t nfields)
{
    struct hq__part parts[2 + 2 * 6];
    unsigned char lens[1 + 6][8];
    const char *name = hq_scheme_name(s);
    size_t i, j, n = 0;

    for (i = 0; i <= nfields && i < 7; i++) {
        uint64_t l = i == 0 ? strlen(name) : fields[i - 1].n;
        for (j = 0; j < 8; j++)
            lens[i][j] = (unsigned char)(l >> (56 - 8 * j));
        parts[n].p = lens[i];
        parts[n++].n = 8;
        parts[n].p = i == 0 ? (const void *)name : fields[i - 1].p;
        parts[n++].n = (size_t)l;
    }
    sha256_parts(parts, n, res->replay_key, res);
    res->has_replay_key = true;
}

/* ------------------------------------------------------------------------------------------ */
/* Request helpers */

int hq__sig_fail(struct hq_verify_result *res, int rc, const char *reason)
{
    res->reason = reason;
    return rc;
}

/* Looks up a header the verifier relies on. HQ_OK with *out = value or NULL when absent;
 * HQ_EAUTH with the reason set when it is duplicated or longer than HQ__SIG_HDR_MAX. */
int hq__sig_get_hdr(const struct hq_request_view *req, const char *name, const char **out,
                    size_t *len, struct hq_verify_result *res)
{
    bool dup = false;
    const char *v = hq_req_header(req, name, &dup);

    *out = NULL;
    if (len) *len = 0;
    if (dup) return hq__sig_fail(res, HQ_EAUTH, HQ__R_DUP);
    if (!v) return HQ_OK;
    size_t n = strnlen(v, HQ__SIG_HDR_MAX + 1);
    if (n > HQ__SIG_HDR_MAX) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
    *out = v;
    if (len) *len = n;
    return HQ_OK;
}

int hq__sig_need_hdr(const struct hq_request_view *req, const char *name, const char **out,
                     size_t *len, struct hq_verify_result *res)
{
    int rc = hq__sig_get_hdr(req, name, out, len, res);

    if (rc == HQ_OK && (!*out || *len == 0)) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING);
    return rc;
}

/* Canonical non-negative decimal: 1..TS_DIGITS_MAX digits, no leading zero. */
bool hq__sig_parse_ts(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    size_t i;

    if (n == 0 || n > TS_DIGITS_MAX || (n > 1 && s[0] == '0')) return false;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int hq__sig_get_ts(const struct hq_request_view *req, const char *name, const char **ts,
                   size_t *tsn, int64_t *tsv, struct hq_verify_result *res)
{
    int rc = hq__sig_get_hdr(req, name, ts, tsn, res);

    if (rc != HQ_OK) return rc;
    if (!*ts || *tsn == 0) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING_TS);
    if (!hq__sig_parse_ts(*ts, *tsn, tsv)) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
    res->timestamp = *tsv;
    return HQ_OK;
}

int hq_sig_default_tolerance(enum hq_scheme s, bool *both_directions)
{
    const struct hq_scheme_ops *ops = hq_scheme_ops(s);

    if (both_directions) *both_directions = ops && ops->both_directions;
    return ops ? ops->tolerance_s : 0;
}

/* Schemes without a timestamp always report 0, whatever tolerance_s says (the gateway then
 * uses its 24 h replay window). */
int hq_sig_tolerance(const struct hq_source_cfg *src)
{
    int def;

    if (!src) return 0;
    def = hq_sig_default_tolerance(src->scheme, NULL);
    if (def == 0) return 0;
    return src->tolerance_s >= 0 ? src->tolerance_s : def;
}

/* HQ_OK when ts is within the tolerance of now (inclusive), else HQ_ESTALE. */
int hq__sig_check_time(const struct hq_source_cfg *src, int64_t ts, int64_t now,
                       struct hq_verify_result *res)
{
    bool both = false;
    int tol = hq_sig_tolerance(src);
    int64_t d;

    hq_sig_default_tolerance(src->scheme, &both);
    if (tol <= 0) return HQ_OK;
    if (now >= ts) {
        if (__builtin_sub_overflow(now, ts, &d) || d > tol)
            return hq__sig_fail(res, HQ_ESTALE, HQ__R_STALE);
    } else if (both) {
        if (__builtin_sub_overflow(ts, now, &d) || d > tol)
            return hq__sig_fail(res, HQ_ESTALE, HQ__R_STALE);
    }
    return HQ_OK;
}

/* "k=v<sep>k=v..." with optional spaces/tabs around items. Every non-empty item must have
 * '='; empty items (",,") are malformed too. */
int hq__sig_split_kv(const char *s, size_t n, char sep, struct hq__kv *items, size_t *count)
{
    size_t i = 0, c = 0;

    while (i <= n) {
        size_t start = i, end;
        const char *eq;
        while (i < n && s[i] != sep)
            i++;
        end = i;
        while (start < end && (s[start] == ' ' || s[start] == '\t'))
            start++;
        while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
            end--;
        if (end == start || c == HQ__SIG_ENTRIES_MAX) return HQ_EINVAL;
        eq = memchr(s + start, '=', end - start);
        if (!eq) return HQ_EINVAL;
        items[c].k = s + start;
        items[c].kn = (size_t)(eq - (s + start));
        items[c].v = eq + 1;
        items[c].vn = (size_t)(s + end - (eq + 1));
        if (items[c].kn == 0) return HQ_EINVAL;
        c++;
        i++; /* past the separator (or past the end) */
    }
    *count = c;
    return HQ_OK;
}

bool hq__sig_kv_is(const struct hq__kv *e, const char *key)
{
    size_t kl = strlen(key);
    return e->kn == kl && memcmp(e->k, key, kl) == 0;
}

const char *hq__sig_content_type(const struct hq_request_view *req)
{
    if (req->content_type) return req->content_type;
    return hq_req_header(req, "Content-Type", NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Shared shapes */

/* Tries every usable secret: computes HMAC(secret, parts), encodes it (hex or base64) with
 * prefix, and compares with each candidate string. On a match sets res->secret_index and
 * copies the raw MAC into mac_out. Returns true on a match. */
bool hq__sig_match_encoded(const struct hq_source_cfg *src, enum hq_hmac_alg alg,
                           enum hq_encoding enc, const struct hq__part *parts, size_t nparts,
                           const struct hq__kv *cands, size_t ncands, struct hq_verify_result *res,
                           unsigned char mac_out[HQ__SIG_MAC_MAX])
{
    unsigned char mac[HQ__SIG_MAC_MAX];
    char text[2 * HQ__SIG_MAC_MAX + 1];
    size_t i, j, ml = hq__sig_alg_len(alg), tl;

    for (i = 0; i < src->n_secrets; i++) {
        const struct hq_secret *sec = &src->secrets[i];
        if (!hq__sig_secret_usable(sec)) continue;
        if (hq__sig_hmac(alg, sec->data, sec->len, parts, nparts, mac) != HQ_OK) {
            hq__sig_set_fault(res, HQ_ENOMEM);
            continue;
        }
        if (enc == HQ_ENC_HEX) {
            hq_hex_encode(mac, ml, text);
            tl = 2 * ml;
        } else {
            tl = hq_b64_encode(mac, ml, text);
        }
        for (j = 0; j < ncands; j++) {
            if (hq__sig_ct_eq(cands[j].v, cands[j].vn, text, tl)) {
                res->secret_index = (int)i;
                memcpy(mac_out, mac, ml);
                OPENSSL_cleanse(mac, sizeof(mac));
                return true;
            }
        }
    }
    OPENSSL_cleanse(mac, sizeof(mac));
    return false;
}

/* After a MAC match: the replay key from (mac, ts text) and the timestamp check. */
int hq__sig_finish_mac(const struct hq_source_cfg *src, const unsigned char *mac, size_t ml,
                       const char *ts, size_t tsn, int64_t ts_val, int64_t now,
                       struct hq_verify_result *res)
{
    struct hq__part f[2] = {{mac, ml}, {ts ? ts : "", ts ? tsn : 0}};

    hq__sig_replay_key(res, src->scheme, f, 2);
    if (ts) return hq__sig_check_time(src, ts_val, now, res);
    return HQ_OK;
}

/* One header "<prefix><encoded MAC>" over parts, no timestamp (github, shopify, square,
 * hmac): value v of length vn. */
int hq__sig_verify_single(const struct hq_source_cfg *src, enum hq_hmac_alg alg,
                          enum hq_encoding enc, const char *prefix, const char *v, size_t vn,
                          const struct hq__part *parts, size_t nparts, int64_t now,
                          struct hq_verify_result *res)
{
    size_t pl = strlen(prefix), ml = hq__sig_alg_len(alg);
    size_t want = enc == HQ_ENC_HEX ? 2 * ml : 4 * ((ml + 2) / 3);
    unsigned char mac[HQ__SIG_MAC_MAX];
    struct hq__kv cand;

    if (vn < pl || memcmp(v, prefix, pl) != 0 || vn - pl != want)
        return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
    cand.k = NULL;
    cand.kn = 0;
    cand.v = v + pl;
    cand.vn = vn - pl;
    if (!hq__sig_match_encoded(src, alg, enc, parts, nparts, &cand, 1, res, mac))
        return hq__sig_fail(res, HQ_EAUTH, HQ__R_BAD);
    return hq__sig_finish_mac(src, mac, ml, NULL, 0, 0, now, res);
}

/* ------------------------------------------------------------------------------------------ */
/* ------------------------------------------------------------------------------------------ */
/* Entry points: the scheme's row of the table (core/scheme.c) does the work */

static int verify_scheme(const struct hq_source_cfg *src, const struct hq_request_view *req,
                         int64_t now_s, struct hq_verify_result *res)
{
    const struct hq_scheme_ops *ops;
    struct hq_request_view r;

    memset(res, 0, sizeof(*res));
    res->timestamp = -1;
    res->secret_index = -1;
    if (!src || !req || !(ops = hq_scheme_ops(src->scheme)) || (req->n_headers && !req->headers) ||
        (req->body_len && !req->body))
        return hq__sig_fail(res, HQ_EINVAL, HQ__R_MALFORMED);
    r = *req;
    if (!r.body) r.body = (const unsigned char *)"";
    if (!ops->verify) /* none */
        return HQ_OK;
    if (!any_secret(src)) return hq__sig_fail(res, HQ_EAUTH, HQ__R_NO_SECRET);
    return ops->verify(src, &r, now_s, res);
}

int hq_sig_verify(const struct hq_source_cfg *src, const struct hq_request_view *req, int64_t now_s,
                  struct hq_verify_result *res)
{
    int rc;

    if (!res) return HQ_EINVAL;
    rc = verify_scheme(src, req, now_s, res);
    if (rc == HQ_ENOMEM || res->fault != HQ_OK) {
        /* a server-side failure decides, whatever the scheme concluded (a MAC that could not
         * be computed is no evidence against the request, a zeroed replay key no key) */
        rc = res->fault != HQ_OK ? res->fault : rc;
        res->reason = "internal";
        res->secret_index = -1;
        res->has_replay_key = false;
        memset(res->replay_key, 0, sizeof(res->replay_key));
    }
    return rc;
}

void hq_sig_hmac_sha256_hex(const struct hq_secret *secret, const unsigned char *msg, size_t n,
                            char out[65])
{
    unsigned char mac[HQ__SIG_MAC_MAX];
    struct hq__part p = {msg, msg ? n : 0};

    out[0] = '\0';
    if (!secret || (!secret->data && secret->len)) return;
    if (hq__sig_hmac(HQ_ALG_SHA256, secret->data, secret->len, &p, 1, mac) != HQ_OK) return;
    hq_hex_encode(mac, 32, out);
    OPENSSL_cleanse(mac, sizeof(mac));
}

/* ------------------------------------------------------------------------------------------ */
/* Signing */

/* Appends "name: value" (a '\n' before it unless first). Values with CR, LF or NUL (vn bytes
 * given) are refused with HQ_EINVAL: they would inject headers. */
void hq__sig_out_line(struct hq_sig_out *o, const char *name, const char *v, size_t vn)
{
    size_t nl = strlen(name), need;

    if (o->rc != HQ_OK) return;
    if (memchr(v, '\r', vn) || memchr(v, '\n', vn) || memchr(v, '\0', vn) ||
        strpbrk(name, "\r\n:")) {
        o->rc = HQ_EINVAL;
        return;
    }
    need = (o->pos ? 1 : 0) + nl + 2 + vn + 1;
    if (o->pos + need > o->sz) {
        o->rc = HQ_ETOOBIG;
        return;
    }
    if (o->pos) o->out[o->pos++] = '\n';
    memcpy(o->out + o->pos, name, nl);
    o->pos += nl;
    o->out[o->pos++] = ':';
    o->out[o->pos++] = ' ';
    memcpy(o->out + o->pos, v, vn);
    o->pos += vn;
    o->out[o->pos] = '\0';
}

void hq__sig_out_str(struct hq_sig_out *o, const char *name, const char *v)
{
    hq__sig_out_line(o, name, v, strlen(v));
}

/* encode(HMAC(secret 0 or key, parts)) into text (with prefix); returns HQ_OK. */
int hq__sig_sign_text(enum hq_hmac_alg alg, enum hq_encoding enc, const unsigned char *key,
                      size_t keylen, const struct hq__part *parts, size_t nparts,
                      const char *prefix, char *text, size_t textsz)
{
    unsigned char mac[HQ__SIG_MAC_MAX];
    char enc_buf[2 * HQ__SIG_MAC_MAX + 1];
    size_t ml = hq__sig_alg_len(alg);
    int rc, n;

    if ((rc = hq__sig_hmac(alg, key, keylen, parts, nparts, mac)) != HQ_OK) return rc;
    if (enc == HQ_ENC_HEX)
        hq_hex_encode(mac, ml, enc_buf);
    else
        hq_b64_encode(mac, ml, enc_buf);
    OPENSSL_cleanse(mac, sizeof(mac));
    n = snprintf(text, textsz, "%s%s", prefix, enc_buf);
    return n < 0 || (size_t)n >= textsz ? HQ_ETOOBIG : HQ_OK;
}

int hq__sig_sign_body(const struct hq_sign_req *in, struct hq_sig_out *o, enum hq_hmac_alg alg,
                      enum hq_encoding enc, const char *prefix, const char *header)
{
    struct hq__part bp = {in->body, in->body_len};
    char text[HQ__SIG_HDR_MAX + 160];
    int rc = hq__sig_sign_text(alg, enc, in->secret->data, in->secret->len, &bp, 1, prefix, text,
                               sizeof(text));

    if (rc == HQ_OK) hq__sig_out_str(o, header, text);
    return rc;
}

int hq_sig_sign(const struct hq_source_cfg *src, const unsigned char *body, size_t body_len,
                const char *url, const char *content_type, const char *event_id, int64_t now_s,
                char *out, size_t outsz)
{
    struct hq_sig_out o = {out, outsz, 0, HQ_OK};
    const struct hq_scheme_ops *ops;
    struct hq_sign_req in;
    char ts[32];
    int rc, k;

    if (!src || !out || outsz == 0 || !(ops = hq_scheme_ops(src->scheme)) || (!body && body_len))
        return HQ_EINVAL;
    out[0] = '\0';
    if (!ops->sign) /* none */
        return HQ_OK;
    if (src->n_secrets == 0 || !hq__sig_secret_usable(&src->secrets[0])) return HQ_EINVAL;
    if (now_s < 0) return HQ_EINVAL;
    k = snprintf(ts, sizeof(ts), "%" PRId64, now_s);
    if (k <= 0 || (size_t)k >= sizeof(ts)) return HQ_EINVAL;
    in = (struct hq_sign_req){src,
                              &src->secrets[0],
                              body ? body : (const unsigned char *)"",
                              body ? body_len : 0,
                              url,
                              content_type,
                              event_id,
                              now_s,
                              ts};
    rc = ops->sign(&in, &o);
    if (rc == HQ_OK) rc = o.rc;
    if (rc != HQ_OK) out[0] = '\0';
    return rc;
}
