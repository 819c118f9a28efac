/* sig_slack: Slack and Zoom, "v0=<hex>" over "v0:" + ts + ":" + body with the timestamp in
 * its own header (docs/signatures.md). */
#include <string.h>

#include "hq__sig.h"

/* Slack and Zoom: "v0=<hex>" over "v0:" + ts + ":" + body, timestamp in its own header. */
static int v_v0(const struct hq_source_cfg *src, const struct hq_request_view *req, int64_t now,
                struct hq_verify_result *res, const char *sig_name, const char *ts_name)
{
    const char *h, *ts;
    size_t hn, tsn;
    int64_t tsv = 0;
    unsigned char mac[HQ__SIG_MAC_MAX];
    struct hq__kv cand;
    int rc;

    if ((rc = hq__sig_need_hdr(req, sig_name, &h, &hn, res)) != HQ_OK) return rc;
    if ((rc = hq__sig_get_ts(req, ts_name, &ts, &tsn, &tsv, res)) != HQ_OK) return rc;
    if (hn != 3 + 64 || memcmp(h, "v0=", 3) != 0)
        return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
    cand.k = NULL;
    cand.kn = 0;
    cand.v = h + 3;
    cand.vn = 64;
    {
        struct hq__part parts[4] = {{"v0:", 3}, {ts, tsn}, {":", 1}, {req->body, req->body_len}};
        if (!hq__sig_match_encoded(src, HQ_ALG_SHA256, HQ_ENC_HEX, parts, 4, &cand, 1, res, mac))
            return hq__sig_fail(res, HQ_EAUTH, HQ__R_BAD);
    }
    return hq__sig_finish_mac(src, mac, 32, ts, tsn, tsv, now, res);
}

int hq__verify_slack(const struct hq_source_cfg *src, const struct hq_request_view *req,
                     int64_t now, struct hq_verify_result *res)
{
    return v_v0(src, req, now, res, "X-Slack-Signature", "X-Slack-Request-Timestamp");
}

int hq__verify_zoom(const struct hq_source_cfg *src, const struct hq_request_view *req, int64_t now,
                    struct hq_verify_result *res)
{
    return v_v0(src, req, now, res, "x-zm-signature", "x-zm-request-timestamp");
}

static int sign_v0(const struct hq_sign_req *in, struct hq_sig_out *o, const char *sig_name,
                   const char *ts_name)
{
    struct hq__part p[4] = {
        {"v0:", 3}, {in->ts, strlen(in->ts)}, {":", 1}, {in->body, in->body_len}};
    char text[2 * HQ__SIG_MAC_MAX + 8];
    int rc = hq__sig_sign_text(HQ_ALG_SHA256, HQ_ENC_HEX, in->secret->data, in->secret->len, p, 4,
                               "v0=", text, sizeof(text));

    if (rc == HQ_OK) {
        hq__sig_out_str(o, ts_name, in->ts);
        hq__sig_out_str(o, sig_name, text);
    }
    return rc;
}

int hq__sign_slack(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    return sign_v0(in, o, "X-Slack-Signature", "X-Slack-Request-Timestamp");
}

int hq__sign_zoom(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    return sign_v0(in, o, "x-zm-signature", "x-zm-request-timestamp");
}
