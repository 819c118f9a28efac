/* fuzz_sig_headers: the signature header parsers (and mailgun's JSON, twilio's form and URL
 * handling) of hq_sig_verify, plus a sign -> verify property.
 *
 * Input: [config byte] [header section] '\0' [body]. The config byte picks one of the source
 * configs below. The header section is split on '\n' into at most MAX_LINES lines; the first
 * byte of a line picks which of the config's header names the rest of the line is the value
 * of (so names can repeat: duplicated headers). The pseudo-names "@url" and "@ct" set the
 * request URL and content type. Without a '\0' the whole input is the header section. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_sig.h"

#define MAX_LINES 16
#define NOW 1735689600

struct fcfg {
    enum hq_scheme scheme;
    const char *secret, *secret2;
    const char *header, *prefix, *url;
    enum hq_hmac_alg alg;
    enum hq_encoding enc;
    int tolerance_s;
    const char *names[8];
};

static const struct fcfg cfgs[] = {
    {HQ_SCHEME_STRIPE, "whsec_test_secret", "old", NULL, NULL, NULL, 0, 0, -1,
     {"Stripe-Signature", NULL}},
    {HQ_SCHEME_GITHUB, "mysecret", NULL, NULL, NULL, NULL, 0, 0, -1,
     {"X-Hub-Signature-256", "X-Hub-Signature", NULL}},
    {HQ_SCHEME_STANDARD, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "bm90IGEga2V5", NULL, NULL,
     NULL, 0, 0, -1,
     {"webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "svix-timestamp",
      "svix-signature", NULL}},
    {HQ_SCHEME_SHOPIFY, "test_secret_key", NULL, NULL, NULL, NULL, 0, 0, -1,
     {"X-Shopify-Hmac-Sha256", "shopify-hmac-sha256", NULL}},
    {HQ_SCHEME_SLACK, "8f742231b10e8888abcd99yyyzzz85a5", NULL, NULL, NULL, NULL, 0, 0, -1,
     {"X-Slack-Signature", "X-Slack-Request-Timestamp", NULL}},
    {HQ_SCHEME_GITLAB, "token-1", "token-2", NULL, NULL, NULL, 0, 0, -1,
     {"X-Gitlab-Token", NULL}},
    {HQ_SCHEME_TWILIO, "12345", NULL, NULL, NULL, NULL, 0, 0, -1,
     {"X-Twilio-Signature", "@url", "@ct", NULL}},
    {HQ_SCHEME_TWILIO, "12345", NULL, NULL, NULL, "https://mycompany.com/myapp.php", 0, 0, -1,
     {"X-Twilio-Signature", "@url", "@ct", "Content-Type", NULL}},
    {HQ_SCHEME_PADDLE, "pdl_ntfset_x", NULL, NULL, NULL, NULL, 0, 0, 0,
     {"Paddle-Signature", NULL}},
    {HQ_SCHEME_SQUARE, "sq-key", NULL, NULL, NULL, NULL, 0, 0, -1,
     {"x-square-hmacsha256-signature", "@url", NULL}},
    {HQ_SCHEME_ZOOM, "zoom-secret", NULL, NULL, NULL, NULL, 0, 0, -1,
     {"x-zm-signature", "x-zm-request-timestamp", NULL}},
    {HQ_SCHEME_MAILGUN, "key-1", "key-2", NULL, NULL, NULL, 0, 0, 0, {"Content-Type", NULL}},
    {HQ_SCHEME_HMAC, "k", NULL, "X-Signature", "sha1=", NULL, HQ_ALG_SHA1, HQ_ENC_HEX, -1,
     {"X-Signature", NULL}},
    {HQ_SCHEME_HMAC, "k", NULL, "X-Sig", NULL, NULL, HQ_ALG_SHA512, HQ_ENC_BASE64, -1,
     {"X-Sig", NULL}},
    {HQ_SCHEME_TOKEN, "t0k", NULL, NULL, NULL, NULL, 0, 0, -1, {"Authorization", NULL}},
    {HQ_SCHEME_TOKEN, "t0k", NULL, "X-Token", "T ", NULL, 0, 0, -1, {"X-Token", NULL}},
    {HQ_SCHEME_BASIC, "user:pass", NULL, NULL, NULL, NULL, 0, 0, -1, {"Authorization", NULL}},
    {HQ_SCHEME_NONE, NULL, NULL, NULL, NULL, NULL, 0, 0, -1, {"X-Anything", NULL}},
};

#define N_CFGS (sizeof(cfgs) / sizeof(cfgs[0]))

static void make_src(const struct fcfg *f, struct hq_source_cfg *src, struct hq_secret sec[2])
{
    memset(src, 0, sizeof(*src));
    memcpy(src->name, "fuzz", 5);
    src->scheme = f->scheme;
    src->tolerance_s = f->tolerance_s;
    src->header = (char *)f->header;
    src->prefix = (char *)f->prefix;
    src->url = (char *)f->url;
    src->algorithm = f->alg;
    src->encoding = f->enc;
    src->secrets = sec;
    if (f->secret) {
        sec[0].data = (unsigned char *)f->secret;
        sec[0].len = strlen(f->secret);
        src->n_secrets = 1;
    }
    if (f->secret2) {
        sec[1].data = (unsigned char *)f->secret2;
        sec[1].len = strlen(f->secret2);
        src->n_secrets = 2;
    }
}

/* sign -> verify must succeed whenever signing does (mailgun and caller-supplied bodySHA256
 * URLs excepted: there the caller provides the signed material). */
static void sign_verify(const struct hq_source_cfg *src, const unsigned char *body, size_t n,
                        const char *url, const char *ct)
{
    char out[4096];
    struct hq_header h[8];
    struct hq_request_view req;
    struct hq_verify_result res;
    size_t nh = 0;
    char *p = out;

    if (src->scheme == HQ_SCHEME_MAILGUN || (url && strstr(url, "bodySHA256")))
        return;
    if (hq_sig_sign(src, body, n, url, ct, "evt-1", NOW, out, sizeof(out)) != HQ_OK)
        return;
    while (*p && nh < 8) {
        char *nl = strchr(p, '\n'), *colon;
        if (nl)
            *nl = '\0';
        colon = strstr(p, ": ");
        if (!colon)
            abort(); /* hq_sig_sign wrote a line that is not "Name: value" */
        *colon = '\0';
        h[nh].name = p;
        h[nh].value = colon + 2;
        nh++;
        if (!nl)
            break;
        p = nl + 1;
    }
    memset(&req, 0, sizeof(req));
    req.headers = h;
    req.n_headers = nh;
    req.body = body;
    req.body_len = n;
    req.url = url;
    req.content_type = ct;
    if (hq_sig_verify(src, &req, NOW, &res) != HQ_OK) {
        fprintf(stderr, "sign/verify mismatch: scheme %d reason %s\n", (int)src->scheme,
                res.reason ? res.reason : "-");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fcfg *f;
    struct hq_source_cfg src;
    struct hq_secret sec[2];
    struct hq_header hdrs[MAX_LINES];
    struct hq_request_view req;
    struct hq_verify_result res;
    const uint8_t *nul, *body;
    size_t hlen, blen, nnames = 0, nh = 0;
    char *hsec, *line;
    const char *url = NULL, *ct = NULL;
    const char *reason;
    int rc, rc2, k;
    static const int64_t times[2] = {INT64_MAX, INT64_MIN};

    if (size < 1)
        return 0;
    f = &cfgs[data[0] % N_CFGS];
    data++;
    size--;
    nul = memchr(data, '\0', size);
    hlen = nul ? (size_t)(nul - data) : size;
    body = nul ? nul + 1 : data + size;
    blen = nul ? size - hlen - 1 : 0;
    while (f->names[nnames])
        nnames++;

    hsec = malloc(hlen + 1);
    if (!hsec)
        return 0;
    memcpy(hsec, data, hlen);
    hsec[hlen] = '\0';
    line = hsec;
    while (line && nh < MAX_LINES) {
        char *nl = strchr(line, '\n');
        const char *name;
        if (nl)
            *nl = '\0';
        if (*line) {
            name = f->names[(unsigned char)line[0] % nnames];
            if (strcmp(name, "@url") == 0)
                url = line + 1;
            else if (strcmp(name, "@ct") == 0)
                ct = line + 1;
            else {
                hdrs[nh].name = name;
                hdrs[nh].value = line + 1;
                nh++;
            }
        }
        line = nl ? nl + 1 : NULL;
    }

    make_src(f, &src, sec);
    memset(&req, 0, sizeof(req));
    req.headers = hdrs;
    req.n_headers = nh;
    req.body = blen ? body : NULL;
    req.body_len = blen;
    req.url = url;
    req.content_type = ct;
    rc = hq_sig_verify(&src, &req, NOW, &res);
#ifdef FUZZ_SIG_DEBUG
    fprintf(stderr, "scheme=%d rc=%d reason=%s\n", (int)src.scheme, rc,
            res.reason ? res.reason : "-");
#endif
    /* result invariants */
    if (rc == HQ_OK) {
        if (res.reason || (src.scheme != HQ_SCHEME_NONE && !res.has_replay_key))
            abort();
    } else if (!res.reason || (rc == HQ_ESTALE) != (strcmp(res.reason, "stale_timestamp") == 0)) {
        abort();
    }
    /* The same input at far-away times: only the timestamp check may change the answer, so
     * an HQ_EAUTH failure must stay the same failure. */
    reason = res.reason;
    for (k = 0; k < 2; k++) {
        rc2 = hq_sig_verify(&src, &req, times[k], &res);
        if (rc == HQ_EAUTH && (rc2 != HQ_EAUTH || res.reason != reason))
            abort();
    }

    sign_verify(&src, blen ? body : NULL, blen, url, ct);
    free(hsec);
    return 0;
}
