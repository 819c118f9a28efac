/* sig_twilio: Twilio, base64(HMAC-SHA1) over the URL it requested plus the sorted form
 * parameters, or the URL alone (with bodySHA256) for JSON bodies (docs/signatures.md). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hq__sig.h"
#include "hq_codec.h"

#define FORM_PARAMS_MAX 1024 /* twilio form parameters */

/* The URL Twilio signed. src->url, when configured, is the public base URL (what Twilio was
 * told to call; TLS proxies make the gateway's own view unreliable). Twilio signs the URL it
 * actually requested, query string included, and appends bodySHA256 to the query of JSON
 * requests, so when the incoming request has a query string, that query replaces src->url's
 * own query (if any) on src->url's scheme, host, port and path. Without src->url, req->url is
 * used as reconstructed by the gateway. HQ_OK, HQ_EINVAL (no URL) or HQ_ETOOBIG. */
static int twilio_url(const char *src_url, const char *req_url, char *out, size_t outsz)
{
    const char *q = req_url ? strchr(req_url, '?') : NULL;
    int n;

    if (src_url && *src_url) {
        size_t base = strcspn(src_url, "?#");
        if (q) {
            size_t ql = strcspn(q, "#");
            n = snprintf(out, outsz, "%.*s%.*s", (int)(base < INT_MAX ? base : 0), src_url,
                         (int)(ql < INT_MAX ? ql : 0), q);
        } else {
            n = snprintf(out, outsz, "%s", src_url);
        }
    } else if (req_url && *req_url) {
        n = snprintf(out, outsz, "%s", req_url);
    } else {
        return HQ_EINVAL;
    }
    if (n < 0) return HQ_EINVAL;
    if ((size_t)n >= outsz) return HQ_ETOOBIG;
    return HQ_OK;
}

/* Value of query parameter name in url (first occurrence, raw), or NULL. */
static const char *url_query_param(const char *url, const char *name, size_t *vlen)
{
    const char *q = strchr(url, '?');
    size_t nl = strlen(name);

    if (!q) return NULL;
    q++;
    while (*q && *q != '#') {
        size_t seg = strcspn(q, "&#");
        if (seg > nl && memcmp(q, name, nl) == 0 && q[nl] == '=') {
            *vlen = seg - nl - 1;
            return q + nl + 1;
        }
        q += seg;
        if (*q == '&') q++;
    }
    return NULL;
}

/* URL variants Twilio's SDKs accept: as given, with the default port added (no port given),
 * and with the port removed (a port given). Writes up to 2 alternatives into alt[]. */
static size_t twilio_url_variants(const char *url, char alt[2][HQ__SIG_URL_MAX + 8])
{
    size_t sl, host_start, auth_end, colon = 0, i, n = 0;
    const char *defport;

    if (strncasecmp(url, "https://", 8) == 0) {
        sl = 8;
        defport = "443";
    } else if (strncasecmp(url, "http://", 7) == 0) {
        sl = 7;
        defport = "80";
    } else {
        return 0;
    }
    auth_end = sl + strcspn(url + sl, "/?#");
    host_start = sl;
    for (i = sl; i < auth_end; i++)
        if (url[i] == '@') host_start = i + 1;
    for (i = host_start; i < auth_end; i++) {
        if (url[i] == ']')
            colon = 0; /* IPv6 literal: only a colon after ']' is a port */
        else if (url[i] == ':')
            colon = i;
    }
    if (colon) {
        int k = snprintf(alt[n], HQ__SIG_URL_MAX + 8, "%.*s%s", (int)colon, url, url + auth_end);
        if (k > 0 && (size_t)k < HQ__SIG_URL_MAX + 8) n++;
    } else {
        int k = snprintf(alt[n], HQ__SIG_URL_MAX + 8, "%.*s:%s%s", (int)auth_end, url, defport,
                         url + auth_end);
        if (k > 0 && (size_t)k < HQ__SIG_URL_MAX + 8) n++;
    }
    return n;
}

struct form_param {
    const unsigned char *k, *v;
    size_t kn, vn;
};

static int form_cmp(const void *a, const void *b)
{
    const struct form_param *x = a, *y = b;
    size_t m = x->kn < y->kn ? x->kn : y->kn;
    int c = m ? memcmp(x->k, y->k, m) : 0;

    if (c) return c;
    if (x->kn != y->kn) return x->kn < y->kn ? -1 : 1;
    m = x->vn < y->vn ? x->vn : y->vn;
    c = m ? memcmp(x->v, y->v, m) : 0;
    if (c) return c;
    return x->vn == y->vn ? 0 : (x->vn < y->vn ? -1 : 1);
}

/* The parameter string Twilio appends to the URL of a form POST: names sorted, values of a
 * name sorted and de-duplicated, each name+value concatenated. *out is malloc'd (caller
 * frees), possibly NULL with *outlen 0 for an empty body. HQ_EINVAL when there are more than
 * FORM_PARAMS_MAX parameters, HQ_ENOMEM. */
static int twilio_form_string(const unsigned char *body, size_t len, unsigned char **out,
                              size_t *outlen)
{
    struct form_param *p = NULL;
    unsigned char *dec = NULL, *s = NULL;
    size_t np = 0, i = 0, o = 0, d = 0;
    int rc = HQ_ENOMEM;

    *out = NULL;
    *outlen = 0;
    if (len == 0) return HQ_OK;
    dec = malloc(len);
    s = malloc(len);
    p = calloc(FORM_PARAMS_MAX, sizeof(*p));
    if (!dec || !s || !p) goto out;
    while (i < len) {
        const unsigned char *seg = body + i, *eq;
        size_t sn = 0;
        while (i + sn < len && body[i + sn] != '&')
            sn++;
        i += sn + 1;
        if (sn == 0) continue;
        if (np == FORM_PARAMS_MAX) {
            rc = HQ_EINVAL;
            goto out;
        }
        eq = memchr(seg, '=', sn);
        p[np].k = dec + d; /* decoding never grows: dec (len bytes) holds them all */
        if (!hq_form_decode(seg, eq ? (size_t)(eq - seg) : sn, dec + d, len - d, &p[np].kn)) {
            rc = HQ_EINVAL;
            goto out;
        }
        d += p[np].kn;
        p[np].v = dec + d;
        p[np].vn = 0;
        if (eq && !hq_form_decode(eq + 1, sn - (size_t)(eq - seg) - 1, dec + d, len - d,
                                  &p[np].vn)) {
            rc = HQ_EINVAL;
            goto out;
        }
        d += p[np].vn;
        np++;
    }
    if (np) qsort(p, np, sizeof(*p), form_cmp);
    for (i = 0; i < np; i++) {
        if (i > 0 && form_cmp(&p[i - 1], &p[i]) == 0)
            continue; /* repeated value of the same name */
        memcpy(s + o, p[i].k, p[i].kn);
        o += p[i].kn;
        if (p[i].vn) memcpy(s + o, p[i].v, p[i].vn);
        o += p[i].vn;
    }
    *out = s;
    *outlen = o;
    s = NULL;
    rc = HQ_OK;
out:
    free(p);
    free(dec);
    free(s);
    return rc;
}

static bool is_form(const char *ct)
{
    /* Twilio's own webhooks are form posts */
    return !ct || !*ct || hq_media_type_is(ct, "application/x-www-form-urlencoded");
}

/* What Twilio signs: the URL (in url), plus for form bodies the parameter string (*params,
 * malloc'd). *body_hash and *bhn point at the bodySHA256 query value when the URL has one (then
 * the URL is signed alone). HQ_EINVAL: no URL or too many form parameters; HQ_ETOOBIG: URL
 * too long; HQ_ENOTFOUND: a non-form body without bodySHA256 (cannot be validated). */
static int twilio_material(const char *src_url, const char *req_url, const unsigned char *body,
                           size_t len, const char *ct, char url[HQ__SIG_URL_MAX + 1],
                           unsigned char **params, size_t *pn, const char **body_hash, size_t *bhn)
{
    int rc;

    *params = NULL;
    *pn = 0;
    *body_hash = NULL;
    *bhn = 0;
    if ((rc = twilio_url(src_url, req_url, url, HQ__SIG_URL_MAX + 1)) != HQ_OK) return rc;
    *body_hash = url_query_param(url, "bodySHA256", bhn);
    if (*body_hash) return HQ_OK;
    if (is_form(ct)) return twilio_form_string(body, len, params, pn);
    return len == 0 ? HQ_OK : HQ_ENOTFOUND;
}

int hq__verify_twilio(const struct hq_source_cfg *src, const struct hq_request_view *req,
                      int64_t now, struct hq_verify_result *res)
{
    char url[HQ__SIG_URL_MAX + 1], alt[2][HQ__SIG_URL_MAX + 8];
    unsigned char *params = NULL, mac[HQ__SIG_MAC_MAX];
    const char *h, *bh = NULL;
    size_t hn, pn = 0, bhn = 0, nalt, u;
    struct hq__kv cand;
    bool matched = false;
    int rc;

    if ((rc = hq__sig_need_hdr(req, "X-Twilio-Signature", &h, &hn, res)) != HQ_OK) return rc;
    if (hn != 28) /* base64 of a 20-byte SHA-1 MAC */
        return hq__sig_fail(res, HQ_EAUTH, HQ__R_MALFORMED);
    rc = twilio_material(src->url, req->url, req->body, req->body_len, hq__sig_content_type(req),
                         url, &params, &pn, &bh, &bhn);
    if (rc == HQ_ENOMEM) {
        res->reason = HQ__R_BAD;
        goto out;
    }
    if (rc != HQ_OK) {
        /* no URL, an oversized one, too many form parameters: cannot match;
         * a JSON body without bodySHA256 cannot be validated */
        rc = hq__sig_fail(res, HQ_EAUTH, rc == HQ_ENOTFOUND ? HQ__R_BODY_HASH : HQ__R_BAD);
        goto out;
    }
    cand.k = NULL;
    cand.kn = 0;
    cand.v = h;
    cand.vn = hn;
    nalt = twilio_url_variants(url, alt);
    for (u = 0; u <= nalt && !matched; u++) {
        const char *uu = u == 0 ? url : alt[u - 1];
        struct hq__part parts[2] = {{uu, strlen(uu)}, {params, pn}};
        matched =
            hq__sig_match_encoded(src, HQ_ALG_SHA1, HQ_ENC_BASE64, parts, 2, &cand, 1, res, mac);
    }
    if (!matched) {
        rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_BAD);
        goto out;
    }
    if (bh) {
        unsigned char d[32];
        char hex[65];
        hq__sig_sha256(req->body, req->body_len, d, res);
        hq_hex_encode(d, 32, hex);
        if (!hq__sig_ct_eq(bh, bhn, hex, 64)) {
            res->secret_index = -1;
            rc = hq__sig_fail(res, HQ_EAUTH, HQ__R_BODY_HASH);
            goto out;
        }
    }
    rc = hq__sig_finish_mac(src, mac, 20, NULL, 0, 0, now, res);
out:
    free(params);
    return rc;
}

int hq__sign_twilio(const struct hq_sign_req *in, struct hq_sig_out *o)
{
    char u[HQ__SIG_URL_MAX + 1], text[2 * HQ__SIG_MAC_MAX + 1];
    unsigned char *params = NULL;
    const char *bh;
    size_t pn = 0, bhn = 0;
    int rc = twilio_material(in->src->url, in->url, in->body, in->body_len, in->content_type, u,
                             &params, &pn, &bh, &bhn);

    if (rc == HQ_OK) {
        struct hq__part p[2] = {{u, strlen(u)}, {params, pn}};
        rc = hq__sig_sign_text(HQ_ALG_SHA1, HQ_ENC_BASE64, in->secret->data, in->secret->len, p, 2,
                               "", text, sizeof(text));
    }
    free(params);
    if (rc == HQ_ENOTFOUND)
        rc = HQ_EINVAL; /* JSON body: the caller must put bodySHA256 in the URL */
    if (rc == HQ_OK) hq__sig_out_str(o, "X-Twilio-Signature", text);
    return rc;
}
