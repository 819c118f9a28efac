/* sig_standard: Standard Webhooks (and Svix): "v1,<base64>" entries over id.ts.body with the
 * base64-decoded secret (docs/signatures.md). */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "hq__sig.h"
#include "hq_codec.h"

#define KEY_MAX 1024 /* decoded standard-webhooks key */

/* The standard-webhooks key: secret without "whsec_", base64 (padding optional). */
static bool std_key(const struct hq_secret *sec, unsigned char *key, size_t *keylen)
{
    const char *s = (const char *)sec->data;
    size_t n = sec->len;

    if (!hq__sig_secret_usable(sec)) return false;
    if (n >= 6 && memcmp(s, "whsec_", 6) == 0) {
        s += 6;
        n -= 6;
    }
    return hq_b64_decode(s, n, 1, key, KEY_MAX, keylen) == HQ_OK && *keylen > 0;
}

int hq__verify_standard(const struct hq_source_cfg *src, const struct hq_request_view *req,
                        int64_t now, struct hq_verify_result *res)
{
    const char *sig, *id, *ts;
    size_t sn, idn, tsn, i, nc = 0, ne = 0;
    unsigned char cands[HQ__SIG_ENTRIES_MAX][HQ__SIG_MAC_MAX];
    size_t cand_len[HQ__SIG_ENTRIES_MAX];
    bool any_v1 = false, svix = false, usable = false;
    int64_t tsv = 0;
    int rc;

    if ((rc = hq__sig_get_hdr(req, "webhook-signature", &sig, &sn, res)) != HQ_OK) return rc;
    if (!sig) {
        if ((rc = hq__sig_get_hdr(req, "svix-signature", &sig, &sn, res)) != HQ_OK) return rc;
        svix = sig != NULL;
    }
    if (!sig || sn == 0) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING);
    if ((rc = hq__sig_get_hdr(req, svix ? "svix-id" : "webhook-id", &id, &idn, res)) != HQ_OK)
        return rc;
    if ((rc = hq__sig_get_ts(req, svix ? "svix-timestamp" : "webhook-timestamp", &ts, &tsn, &tsv,
                             res)) != HQ_OK)
        return rc;
    if (!id || idn == 0) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);

    /* "v1,<b64> v1,<b64> v1a,<...>": space-separated, split each on the first ','. */
    i = 0;
    while (i < sn) {
        size_t start, end;
        const char *comma;
        while (i < sn && sig[i] == ' ')
            i++;
        if (i == sn) break;
        start = i;
        while (i < sn && sig[i] != ' ')
            i++;
        end = i;
        if (ne++ == HQ__SIG_ENTRIES_MAX) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        comma = memchr(sig + start, ',', end - start);
        if (!comma) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
        if ((size_t)(comma - (sig + start)) == 2 && memcmp(sig + start, "v1", 2) == 0) {
            const char *b = comma + 1;
            size_t bn = (size_t)(sig + end - b), dl = 0;
            any_v1 = true;
            /* Undecodable or wrong-length values simply cannot match. */
            if (hq_b64_decode(b, bn, 0, cands[nc], HQ__SIG_MAC_MAX, &dl) == HQ_OK && dl == 32)
                cand_len[nc++] = dl;
        }
        /* other versions (v1a, v2, ...) are skipped; they still count towards the cap */
    }
    if (!any_v1) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING);
    {
        struct hq__part parts[5] = {
            {id, idn}, {".", 1}, {ts, tsn}, {".", 1}, {req->body, req->body_len}};
        unsigned char key[KEY_MAX], mac[HQ__SIG_MAC_MAX];
        size_t keylen = 0, j;

        for (i = 0; i < src->n_secrets; i++) {
            if (!std_key(&src->secrets[i], key, &keylen)) continue;
            usable = true;
            if (hq__sig_hmac(HQ_ALG_SHA256, key, keylen, parts, 5, mac) != HQ_OK) {
                hq__sig_set_fault(res, HQ_ENOMEM);
                continue;
            }
            for (j = 0; j < nc; j++) {
                if (hq__sig_ct_eq(cands[j], cand_len[j], mac, 32)) {
                    res->secret_index = (int)i;
                    OPENSSL_cleanse(key, sizeof(key));
                    return hq__sig_finish_mac(src, mac, 32, ts, tsn, tsv, now, res);
                }
            }
        }
        OPENSSL_cleanse(key, sizeof(key));
        OPENSSL_cleanse(mac, sizeof(mac));
    }
    if (!usable) return hq__sig_fail(res, HQ_EAUTH, HQ__R_NO_SECRET);
    return hq__sig_fail(res, HQ_EAUTH, HQ__R_BAD);
}

int hq__sign_standard(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    unsigned char key[KEY_MAX], rnd[16];
    size_t keylen = 0;
    char idbuf[40], text[2 * HQ__SIG_MAC_MAX + 8];
    const char *id = in->event_id;
    int rc;

    if (!std_key(in->secret, key, &keylen)) return HQ_EINVAL;
    if (!id) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            OPENSSL_cleanse(key, sizeof(key));
            return HQ_ENOMEM;
        }
        memcpy(idbuf, "msg_", 4);
        hq_hex_encode(rnd, sizeof(rnd), idbuf + 4);
        id = idbuf;
    }
    {
        struct hq__part p[5] = {{id, strlen(id)},
                                {".", 1},
                                {in->ts, strlen(in->ts)},
                                {".", 1},
                                {in->body, in->body_len}};
        rc = hq__sig_sign_text(HQ_ALG_SHA256, HQ_ENC_BASE64, key, keylen, p, 5, "v1,", text,
                               sizeof(text));
    }
    OPENSSL_cleanse(key, sizeof(key));
    if (rc == HQ_OK) {
        hq__sig_out_str(o, "webhook-id", id);
        hq__sig_out_str(o, "webhook-timestamp", in->ts);
        hq__sig_out_str(o, "webhook-signature", text);
    }
    return rc;
}
