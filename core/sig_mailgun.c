/* sig_mailgun: Mailgun, whose signature object sits inside the JSON body:
 * hex(HMAC-SHA256(key, timestamp + token)) (docs/signatures.md). */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "hq__sig.h"
#include "hq_json.h"

#define JSON_DEPTH_MAX 32 /* mailgun body */
#define MAILGUN_TOKEN_MAX 512

/* Mailgun: {"signature": {"timestamp": "...", "token": "...", "signature": "<hex>"}, ...}.
 * The body is parsed strictly (hq_json_parse_untrusted, depth JSON_DEPTH_MAX). */
int hq__verify_mailgun(const struct hq_source_cfg *src, const struct hq_request_view *req,
                       int64_t now, struct hq_verify_result *res)
{
    struct json_object *root = NULL, *sig, *jts, *jtok, *jsig;
    const char *ts, *token, *sv;
    char tsbuf[32];
    size_t tsn, tokn, svn;
    int64_t tsv = 0;
    unsigned char mac[HQ__SIG_MAC_MAX];
    struct hq__kv cand;
    int rc;

    if (req->body_len == 0 || req->body_len > INT_MAX) {
        rc = hq__sig_fail(res, HQ_EAUTH, req->body_len == 0 ? HQ__R_MISSING : HQ__R_MALFORMED);
        goto out;
    }
    rc = hq_json_parse_untrusted(req->body, req->body_len, JSON_DEPTH_MAX, (void **)&root);
    if (rc != HQ_OK) {
        rc = hq__sig_fail(res, rc == HQ_ENOMEM ? HQ_ENOMEM : HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    if (!json_object_is_type(root, json_type_object)) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    if (!json_object_object_get_ex(root, "signature", &sig)) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING);
        goto out;
    }
    if (!json_object_is_type(sig, json_type_object)) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    if (!json_object_object_get_ex(sig, "timestamp", &jts) ||
        json_object_is_type(jts, json_type_null)) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING_TS);
        goto out;
    }
    if (json_object_is_type(jts, json_type_string)) {
        ts = json_object_get_string(jts);
        tsn = (size_t)json_object_get_string_len(jts);
    } else if (json_object_is_type(jts, json_type_int)) {
        int64_t iv = json_object_get_int64(jts);
        int k;
        if (iv < 0) {
            rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
            goto out;
        }
        k = snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, iv);
        ts = tsbuf;
        tsn = k > 0 ? (size_t)k : 0;
    } else {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    if (!hq__sig_parse_ts(ts, tsn, &tsv)) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    res->timestamp = tsv;
    if (!json_object_object_get_ex(sig, "signature", &jsig) ||
        !json_object_is_type(jsig, json_type_string) || json_object_get_string_len(jsig) == 0) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING);
        goto out;
    }
    if (!json_object_object_get_ex(sig, "token", &jtok) ||
        !json_object_is_type(jtok, json_type_string)) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    token = json_object_get_string(jtok);
    tokn = (size_t)json_object_get_string_len(jtok);
    sv = json_object_get_string(jsig);
    svn = (size_t)json_object_get_string_len(jsig);
    if (tokn == 0 || tokn > MAILGUN_TOKEN_MAX || svn != 64) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        goto out;
    }
    cand.k = NULL;
    cand.kn = 0;
    cand.v = sv;
    cand.vn = svn;
    {
        struct hq__part parts[2] = {{ts, tsn}, {token, tokn}};
        if (!hq__sig_match_encoded(src, HQ_ALG_SHA256, HQ_ENC_HEX, parts, 2, &cand, 1, res, mac)) {
            rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_BAD);
            goto out;
        }
    }
    {
        struct hq__part f[3] = {{ts, tsn}, {token, tokn}, {sv, svn}};
        hq__sig_replay_key(res, src->scheme, f, 3);
    }
    rc = hq__sig_check_time(src, tsv, now, res);
out:
    json_object_put(root);
    return rc;
}

/* The signature lives in the body, which a signer cannot rewrite: the caller builds it with
 * hq_sig_hmac_sha256_hex(secret, timestamp + token). Succeeds (no headers) only when the body
 * already verifies with secret 0 at now_s. */
int hq__sign_mailgun(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    struct hq_request_view r = {NULL, 0, in->body, in->body_len, in->content_type, in->url};
    struct hq_source_cfg one = *in->src;
    struct hq_verify_result vr;

    one.n_secrets = 1;
    return hq_sig_verify(&one, &r, in->now_s, &vr) == HQ_OK ? HQ_OK : HQ_EINVAL;
}
