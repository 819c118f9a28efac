/* sig_github: one header carrying an encoded MAC, no timestamp: GitHub (hex, with the legacy
 * SHA-1 header), Shopify (base64), Square (base64 over URL + body) and the generic hmac scheme
 * (docs/signatures.md). */
#include <string.h>

#include "hq__sig.h"

int hq__verify_github(const struct hq_source_cfg *src, const struct hq_request_view *req,
                      int64_t now, struct hq_verify_result *res)
{
    struct hq__part body = {req->body, req->body_len};
    const char *h;
    size_t hn;
    int rc;

    if ((rc = hq__sig_get_hdr(req, "X-Hub-Signature-256", &h, &hn, res)) != HQ_OK) return rc;
    if (h) {
        if (hn == 0) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING);
        return hq__sig_verify_single(src, HQ_ALG_SHA256, HQ_ENC_HEX, "sha256=", h, hn, &body, 1,
                                     now, res);
    }
    /* Legacy SHA-1 header, only when the SHA-256 one is absent. */
    if ((rc = hq__sig_need_hdr(req, "X-Hub-Signature", &h, &hn, res)) != HQ_OK) return rc;
    return hq__sig_verify_single(src, HQ_ALG_SHA1, HQ_ENC_HEX, "sha1=", h, hn, &body, 1, now, res);
}

int hq__verify_shopify(const struct hq_source_cfg *src, const struct hq_request_view *req,
                       int64_t now, struct hq_verify_result *res)
{
    struct hq__part body = {req->body, req->body_len};
    const char *h;
    size_t hn;
    int rc;

    if ((rc = hq__sig_get_hdr(req, "X-Shopify-Hmac-Sha256", &h, &hn, res)) != HQ_OK) return rc;
    if (!h && (rc = hq__sig_get_hdr(req, "shopify-hmac-sha256", &h, &hn, res)) != HQ_OK) return rc;
    if (!h || hn == 0) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING);
    return hq__sig_verify_single(src, HQ_ALG_SHA256, HQ_ENC_BASE64, "", h, hn, &body, 1, now, res);
}

int hq__verify_square(const struct hq_source_cfg *src, const struct hq_request_view *req,
                      int64_t now, struct hq_verify_result *res)
{
    const char *h, *url = src->url ? src->url : req->url;
    size_t hn;
    int rc;

    if ((rc = hq__sig_need_hdr(req, "x-square-hmacsha256-signature", &h, &hn, res)) != HQ_OK)
        return rc;
    if (!url || strnlen(url, HQ__SIG_URL_MAX + 1) > HQ__SIG_URL_MAX)
        return hq__sig_fail(res, HQ_EAUTH, HQ__R_BAD); /* the URL is part of the MAC */
    {
        struct hq__part parts[2] = {{url, strlen(url)}, {req->body, req->body_len}};
        return hq__sig_verify_single(src, HQ_ALG_SHA256, HQ_ENC_BASE64, "", h, hn, parts, 2, now,
                                     res);
    }
}

int hq__verify_hmac(const struct hq_source_cfg *src, const struct hq_request_view *req, int64_t now,
                    struct hq_verify_result *res)
{
    struct hq__part body = {req->body, req->body_len};
    const char *h;
    size_t hn;
    int rc;

    if (!src->header || !*src->header)
        return hq__sig_fail(res, HQ_EAUTH,
                            HQ__R_MISSING); /* misconfigured: config validation rejects it */
    if ((rc = hq__sig_need_hdr(req, src->header, &h, &hn, res)) != HQ_OK) return rc;
    return hq__sig_verify_single(src, src->algorithm, src->encoding, src->prefix ? src->prefix : "",
                                 h, hn, &body, 1, now, res);
}

int hq__sign_github(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    int rc = hq__sig_sign_body(in, o, HQ_ALG_SHA256, HQ_ENC_HEX, "sha256=", "X-Hub-Signature-256");

    if (rc == HQ_OK)
        rc = hq__sig_sign_body(in, o, HQ_ALG_SHA1, HQ_ENC_HEX, "sha1=", "X-Hub-Signature");
    if (in->event_id) hq__sig_out_str(o, "X-GitHub-Delivery", in->event_id);
    return rc;
}

int hq__sign_shopify(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    int rc = hq__sig_sign_body(in, o, HQ_ALG_SHA256, HQ_ENC_BASE64, "", "X-Shopify-Hmac-Sha256");

    if (in->event_id) hq__sig_out_str(o, "X-Shopify-Webhook-Id", in->event_id);
    return rc;
}

int hq__sign_square(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    const char *u = in->src->url ? in->src->url : in->url;
    char text[2 * HQ__SIG_MAC_MAX + 1];
    int rc;

    if (!u || strlen(u) > HQ__SIG_URL_MAX) return HQ_EINVAL;
    {
        struct hq__part p[2] = {{u, strlen(u)}, {in->body, in->body_len}};
        rc = hq__sig_sign_text(HQ_ALG_SHA256, HQ_ENC_BASE64, in->secret->data, in->secret->len, p,
                               2, "", text, sizeof(text));
    }
    if (rc == HQ_OK) hq__sig_out_str(o, "x-square-hmacsha256-signature", text);
    return rc;
}

int hq__sign_hmac(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    const struct hq_source_cfg *src = in->src;

    if (!src->header || !*src->header) return HQ_EINVAL;
    return hq__sig_sign_body(in, o, src->algorithm, src->encoding, src->prefix ? src->prefix : "",
                             src->header);
}
