/* sig_token: schemes that present a shared secret instead of a MAC: GitLab's X-Gitlab-Token,
 * the generic token header and HTTP Basic (docs/signatures.md). Compared as SHA-256 digests. */
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "hq__sig.h"
#include "hq_codec.h"

static int match_token(const struct hq_source_cfg *src, const struct hq_request_view *req,
                       const void *cred, size_t cn, struct hq_verify_result *res)
{
    unsigned char bodyhash[32], idx[4];
    size_t i;

    for (i = 0; i < src->n_secrets; i++) {
        const struct hq_secret *sec = &src->secrets[i];
        if (!hq__sig_secret_usable(sec)) continue;
        if (hq__sig_token_eq(cred, cn, sec->data, sec->len, res)) {
            struct hq__part f[2] = {{idx, 4}, {bodyhash, 32}};
            res->secret_index = (int)i;
            idx[0] = (unsigned char)(i >> 24);
            idx[1] = (unsigned char)(i >> 16);
            idx[2] = (unsigned char)(i >> 8);
            idx[3] = (unsigned char)i;
            hq__sig_sha256(req->body, req->body_len, bodyhash, res);
            hq__sig_replay_key(res, src->scheme, f, 2);
            return HQ_OK;
        }
    }
    return hq__sig_fail(res, HQ_EAUTH, HQ__R_BAD);
}

int hq__verify_gitlab(const struct hq_source_cfg *src, const struct hq_request_view *req,
                      int64_t now, struct hq_verify_result *res)
{
    const char *h;
    size_t hn;
    int rc;

    if ((rc = hq__sig_need_hdr(req, "X-Gitlab-Token", &h, &hn, res)) != HQ_OK) return rc;
    return match_token(src, req, h, hn, res);
}

/* Token header name and prefix in force for src (see hq_source_cfg). */
static void token_shape(const struct hq_source_cfg *src, const char **header, const char **prefix,
                        bool *prefix_nocase)
{
    *header = src->header && *src->header ? src->header : "Authorization";
    *prefix_nocase = false;
    if (src->prefix) {
        *prefix = src->prefix;
    } else if (strcasecmp(*header, "Authorization") == 0) {
        *prefix = "Bearer ";
        *prefix_nocase = true; /* RFC 7235: the auth-scheme is case-insensitive */
    } else {
        *prefix = "";
    }
}

int hq__verify_token(const struct hq_source_cfg *src, const struct hq_request_view *req,
                     int64_t now, struct hq_verify_result *res)
{
    const char *name, *prefix, *h;
    bool nocase;
    size_t hn, pl;
    int rc;

    token_shape(src, &name, &prefix, &nocase);
    pl = strlen(prefix);
    if ((rc = hq__sig_need_hdr(req, name, &h, &hn, res)) != HQ_OK) return rc;
    if (hn < pl || (nocase ? strncasecmp(h, prefix, pl) : strncmp(h, prefix, pl)) != 0)
        return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
    if (hn == pl) return hq__sig_fail(res, HQ_EAUTH, HQ__R_MISSING);
    return match_token(src, req, h + pl, hn - pl, res);
}

int hq__verify_basic(const struct hq_source_cfg *src, const struct hq_request_view *req,
                     int64_t now, struct hq_verify_result *res)
{
    unsigned char cred[HQ__SIG_HDR_MAX];
    const char *h;
    size_t hn, cn = 0;
    int rc;

    if ((rc = hq__sig_need_hdr(req, "Authorization", &h, &hn, res)) != HQ_OK) return rc;
    if (hn <= 6 || strncasecmp(h, "Basic ", 6) != 0)
        return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
    if (hq_b64_decode(h + 6, hn - 6, 0, cred, sizeof(cred), &cn) != HQ_OK || cn == 0 ||
        !memchr(cred, ':', cn))
        return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
    rc = match_token(src, req, cred, cn, res);
    OPENSSL_cleanse(cred, cn);
    return rc;
}

int hq__sign_gitlab(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    hq__sig_out_line(o, "X-Gitlab-Token", (const char *)in->secret->data, in->secret->len);
    if (in->event_id) hq__sig_out_str(o, "X-Gitlab-Event-UUID", in->event_id);
    return HQ_OK;
}

int hq__sign_token(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    const struct hq_secret *sec = in->secret;
    const char *name, *prefix;
    char text[HQ__SIG_HDR_MAX + 160];
    bool nocase;
    size_t pl;

    token_shape(in->src, &name, &prefix, &nocase);
    pl = strlen(prefix);
    if (pl + sec->len >= sizeof(text)) return HQ_ETOOBIG;
    memcpy(text, prefix, pl);
    memcpy(text + pl, sec->data, sec->len);
    hq__sig_out_line(o, name, text, pl + sec->len);
    OPENSSL_cleanse(text, pl + sec->len);
    return HQ_OK;
}

int hq__sign_basic(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    const struct hq_secret *sec = in->secret;
    char text[HQ__SIG_HDR_MAX + 160];

    if (4 * ((sec->len + 2) / 3) + 7 > sizeof(text)) return HQ_ETOOBIG;
    memcpy(text, "Basic ", 6);
    hq_b64_encode(sec->data, sec->len, text + 6);
    hq__sig_out_str(o, "Authorization", text);
    OPENSSL_cleanse(text, sizeof(text));
    return HQ_OK;
}
