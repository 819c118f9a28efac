/* sig_stripe: Stripe and Paddle, one list header "<ts key>=<unix s><sep><mac key>=<hex>..."
 * with HMAC-SHA256 over ts + joiner + body (docs/signatures.md). */
#include <stdio.h>
#include <string.h>

#include "hq__sig.h"

/* Stripe and Paddle: one header "<ts key>=<unix s><sep><mac key>=<hex>[<sep>...]" with the MAC
 * over ts + joiner + body; any listed MAC may match (rotation); other keys (Stripe's v0, a
 * downgrade) are ignored. */
struct ts_list_fmt {
    const char *header;
    char sep;
    const char *ts_key, *mac_key, *joiner;
};

static const struct ts_list_fmt stripe_fmt = {"Stripe-Signature", ',', "t", "v1", "."};
static const struct ts_list_fmt paddle_fmt = {"Paddle-Signature", ';', "ts", "h1", ":"};

static int v_ts_list(const struct hq_source_cfg *src, const struct hq_request_view *req,
                     int64_t now, struct hq_verify_result *res, const struct ts_list_fmt *f)
{
    struct hq__kv items[HQ__SIG_ENTRIES_MAX], cands[HQ__SIG_ENTRIES_MAX];
    size_t n = 0, nc = 0, i, hn, tsn = 0;
    const char *h, *ts = NULL;
    int64_t tsv = 0;
    unsigned char mac[HQ__SIG_MAC_MAX];
    int rc;

    if ((rc = hq__sig_need_hdr(req, f->header, &h, &hn, res)) != HQ_OK) return rc;
    if (hq__sig_split_kv(h, hn, f->sep, items, &n) != HQ_OK)
        return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
    for (i = 0; i < n; i++) {
        if (hq__sig_kv_is(&items[i], f->ts_key)) {
            if (ts || !hq__sig_parse_ts(items[i].v, items[i].vn, &tsv))
                return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
            ts = items[i].v;
            tsn = items[i].vn;
        } else if (hq__sig_kv_is(&items[i], f->mac_key)) {
            cands[nc++] = items[i];
        }
    }
    if (!ts) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING_TS);
    res->timestamp = tsv;
    if (nc == 0) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING);
    {
        struct hq__part parts[3] = {
            {ts, tsn}, {f->joiner, strlen(f->joiner)}, {req->body, req->body_len}};
        if (!hq__sig_match_encoded(src, HQ_ALG_SHA256, HQ_ENC_HEX, parts, 3, cands, nc, res, mac))
            return hq__sig_fail(res, HQ_EAUTH, HQ__R_BAD);
    }
    return hq__sig_finish_mac(src, mac, 32, ts, tsn, tsv, now, res);
}

int hq__verify_stripe(const struct hq_source_cfg *src, const struct hq_request_view *req,
                      int64_t now, struct hq_verify_result *res)
{
    return v_ts_list(src, req, now, res, &stripe_fmt);
}

int hq__verify_paddle(const struct hq_source_cfg *src, const struct hq_request_view *req,
                      int64_t now, struct hq_verify_result *res)
{
    return v_ts_list(src, req, now, res, &paddle_fmt);
}

static int sign_ts_list(const struct hq_sign_req *in, struct hq_sig_out *o,
                        const struct ts_list_fmt *f)
{
    struct hq__part p[3] = {
        {in->ts, strlen(in->ts)}, {f->joiner, strlen(f->joiner)}, {in->body, in->body_len}};
    char v[2 * HQ__SIG_MAC_MAX + 1], text[2 * HQ__SIG_MAC_MAX + 64];
    int rc = hq__sig_sign_text(HQ_ALG_SHA256, HQ_ENC_HEX, in->secret->data, in->secret->len, p, 3,
                               "", v, sizeof(v));

    if (rc == HQ_OK) {
        snprintf(text, sizeof(text), "%s=%s%c%s=%s", f->ts_key, in->ts, f->sep, f->mac_key, v);
        hq__sig_out_str(o, f->header, text);
    }
    return rc;
}

int hq__sign_stripe(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    return sign_ts_list(in, o, &stripe_fmt);
}

int hq__sign_paddle(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    return sign_ts_list(in, o, &paddle_fmt);
}
