/* sig_linear: Linear (linear.app). `Linear-Signature: <hex>` is lower-case hex of
 * HMAC-SHA256(signing secret, raw body); the signed body carries `webhookTimestamp`, Unix
 * milliseconds, checked within the tolerance (60 s, both directions, as in Linear's SDK) once
 * the MAC has matched. docs/signatures.md, "linear". */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "hq__sig.h"
#include "hq_json.h"

#define LINEAR_HEADER "Linear-Signature"
#define JSON_DEPTH_MAX 32

/* The body's top-level webhookTimestamp (ms) as decimal text in buf. HQ_OK, HQ_ENOTFOUND (no
 * such member), HQ_EINVAL (not a JSON object, or not a non-negative integer), HQ_ENOMEM. */
static int linear_ts(const unsigned char *body, size_t n, char *buf, size_t bufsz, int64_t *ms)
{
    struct json_object *root = NULL, *v;
    int rc, k;

    if ((rc = hq_json_parse_untrusted(body, n, JSON_DEPTH_MAX, (void **)&root)) != HQ_OK)
        return rc;
    rc = HQ_EINVAL;
    if (!json_object_is_type(root, json_type_object))
        goto out;
    if (!json_object_object_get_ex(root, "webhookTimestamp", &v) ||
        json_object_is_type(v, json_type_null)) {
        rc = HQ_ENOTFOUND;
        goto out;
    }
    if (!json_object_is_type(v, json_type_int) || (*ms = json_object_get_int64(v)) < 0 ||
        *ms == INT64_MAX)
        goto out;
    k = snprintf(buf, bufsz, "%" PRId64, *ms);
    rc = k > 0 && (size_t)k < bufsz ? HQ_OK : HQ_EINVAL;
out:
    json_object_put(root);
    return rc;
}

int hq__verify_linear(const struct hq_source_cfg *src, const struct hq_request_view *req,
                      int64_t now, struct hq_verify_result *res)
{
    struct hq__part body = {req->body, req->body_len};
    unsigned char mac[HQ__SIG_MAC_MAX];
    char ts[24];
    struct hq__kv cand = {0};
    const char *h;
    size_t hn;
    int64_t ms = 0;
    int rc;

    if ((rc = hq__sig_need_hdr(req, LINEAR_HEADER, &h, &hn, res)) != HQ_OK) return rc;
    if (hn != 64) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
    cand.v = h;
    cand.vn = hn;
    if (!hq__sig_match_encoded(src, HQ_ALG_SHA256, HQ_ENC_HEX, &body, 1, &cand, 1, res, mac))
        return hq__sig_fail(res, HQ_EAUTH, HQ__R_BAD);
    /* the MAC matched: the body is Linear's, and its timestamp can be read */
    rc = linear_ts(req->body, req->body_len, ts, sizeof(ts), &ms);
    if (rc == HQ_ENOMEM) return hq__sig_fail(res, HQ_ENOMEM, HQ__R_MALFORMED);
    if (rc != HQ_OK) {
        res->secret_index = -1;
        return hq__sig_fail(res, HQ_EAUTH, rc == HQ_ENOTFOUND ? HQ__R_MISSING_TS : HQ__R_MALFORMED);
    }
    res->timestamp = ms / 1000;
    return hq__sig_finish_mac(src, mac, 32, ts, strlen(ts), ms / 1000, now, res);
}

/* The body must already carry webhookTimestamp (hookmq-send's samples: {{timestamp_ms}}). */
int hq__sign_linear(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    int rc = hq__sig_sign_body(in, o, HQ_ALG_SHA256, HQ_ENC_HEX, "", LINEAR_HEADER);

    if (in->event_id) hq__sig_out_str(o, "Linear-Delivery", in->event_id);
    return rc;
}
