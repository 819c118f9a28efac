/* fuzz_event_extract: hq_event_extract (and hq_event_build + the spool encoding of what it
 * accepts) on hostile bodies and header values, under every scheme's defaults and under
 * explicit json / header / form / const selectors.
 *
 * Input: the first line (up to '\n', at most 512 bytes) is a header value given to every
 * header the schemes look at; the rest is the body. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static bool good_value(const char *s)
{
    size_t n, i;

    if (!s) return false;
    n = strlen(s);
    if (n == 0 || n > 255) return false;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return false;
    }
    return true;
}

static void check_msg(const struct hq_msg *m, const struct hq_event_meta *meta)
{
    struct hq_buf b = HQ_BUF_INIT(8u << 20);
    struct hq_msg d;
    size_t i, n;

    check(m->routing_key != NULL, "routing key");
    n = strlen(m->routing_key);
    check(n <= 255, "routing key length");
    for (i = 0; i < n; i++) {
        char c = m->routing_key[i];
        check((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-',
              "routing key alphabet");
    }
    check(strcmp(m->message_id, meta->id) == 0, "message id");
    check(hq_msg_encode(m, &b) == HQ_OK, "encode");
    check(hq_msg_decode(b.data, b.len, &d) == HQ_OK, "decode");
    check(d.n_headers == m->n_headers && d.body_len == m->body_len, "round trip");
    check(d.body_len == 0 || memcmp(d.body, m->body, d.body_len) == 0, "round trip body");
    for (i = 0; i < d.n_headers; i++) {
        check(strcmp(d.headers[i].key, m->headers[i].key) == 0, "round trip key");
        check(d.headers[i].type == m->headers[i].type, "round trip type");
        check(d.headers[i].type != HQ_HDR_STR || strcmp(d.headers[i].str, m->headers[i].str) == 0,
              "round trip value");
    }
    check(hq_msg_header(&d, "http-authorization") == NULL, "authorization kept");
    check(hq_msg_header(&d, "http-cookie") == NULL, "cookie kept");
    check(hq_msg_header(&d, "http-x-gitlab-token") == NULL, "gitlab token kept");
    hq_msg_free(&d);
    hq_buf_free(&b);
}

struct cfg {
    enum hq_scheme scheme;
    const char *type_sel, *id_sel, *ct;
};

static const struct cfg cfgs[] = {
    {HQ_SCHEME_STRIPE, NULL, NULL, "application/json"},
    {HQ_SCHEME_GITHUB, NULL, NULL, "application/json"},
    {HQ_SCHEME_STANDARD, NULL, NULL, "application/json"},
    {HQ_SCHEME_SHOPIFY, NULL, NULL, "application/json"},
    {HQ_SCHEME_SLACK, NULL, NULL, "application/json"},
    {HQ_SCHEME_SLACK, NULL, NULL, "application/x-www-form-urlencoded"},
    {HQ_SCHEME_GITLAB, NULL, NULL, "application/json"},
    {HQ_SCHEME_TWILIO, NULL, NULL, "application/x-www-form-urlencoded"},
    {HQ_SCHEME_PADDLE, NULL, NULL, "application/json"},
    {HQ_SCHEME_SQUARE, NULL, NULL, "application/json"},
    {HQ_SCHEME_ZOOM, NULL, NULL, "application/json"},
    {HQ_SCHEME_MAILGUN, NULL, NULL, "application/json"},
    {HQ_SCHEME_NONE, NULL, NULL, NULL},
    {HQ_SCHEME_HMAC, "json:/a/0/b~1c", "json:/id", "application/json"},
    {HQ_SCHEME_HMAC, "json:", "json:/~0/1", "application/json"},
    {HQ_SCHEME_TOKEN, "header:X-Fuzz", "header:X-Fuzz", NULL},
    {HQ_SCHEME_BASIC, "form:f", "form:id", "application/x-www-form-urlencoded"},
    {HQ_SCHEME_TWILIO, "const:call.status", "form:CallSid", NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 512 ? size : 512);
    size_t hlen = nl ? (size_t)(nl - data) : 0;
    const uint8_t *body = nl ? nl + 1 : data;
    size_t blen = nl ? size - hlen - 1 : size;
    char *hval = malloc(hlen + 1);
    unsigned char key[] = "fuzz-secret";
    struct hq_secret secret = {key, sizeof(key) - 1};
    size_t i;

    if (!hval) return 0;
    /* header values are C strings: cut at a NUL like a real server would */
    memcpy(hval, data, hlen);
    hval[hlen] = '\0';
    {
        struct hq_header h[] = {
            {"X-Fuzz", hval},
            {"X-GitHub-Event", hval},
            {"X-GitHub-Delivery", hval},
            {"webhook-id", hval},
            {"svix-id", hval},
            {"X-Shopify-Topic", hval},
            {"X-Shopify-Webhook-Id", hval},
            {"X-Gitlab-Event", hval},
            {"X-Gitlab-Event-UUID", hval},
            {"Authorization", hval},
            {"Cookie", hval},
            {"X-Gitlab-Token", hval},
            {"X-Hub-Signature-256", hval},
        };
        for (i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++) {
            struct hq_source_cfg src;
            struct hq_request_view req;
            struct hq_event_meta meta;
            const char *reason = NULL;
            int rc;

            memset(&src, 0, sizeof(src));
            snprintf(src.name, sizeof(src.name), "fuzz");
            src.scheme = cfgs[i].scheme;
            src.event_type = (char *)cfgs[i].type_sel;
            src.event_id = (char *)cfgs[i].id_sel;
            src.secrets = &secret;
            src.n_secrets = 1;
            src.header = "X-Fuzz";
            memset(&req, 0, sizeof(req));
            req.headers = h;
            req.n_headers = sizeof(h) / sizeof(h[0]);
            req.body = body;
            req.body_len = blen;
            req.content_type = cfgs[i].ct;

            rc = hq_event_extract(&src, &req, &secret, &meta, &reason);
            if (rc == HQ_OK) {
                struct hq_msg m;
                check(reason == NULL, "reason on success");
                check(good_value(meta.type) && good_value(meta.id), "type/id");
                if (meta.handshake) {
                    check(meta.handshake_body && meta.handshake_content_type, "handshake body");
                } else {
                    check(hq_event_build(&src, &req, &meta, 1700000000000, &m) == HQ_OK, "build");
                    check_msg(&m, &meta);
                    hq_msg_free(&m);
                }
            } else {
                check(rc == HQ_EINVAL || rc == HQ_ENOMEM, "status");
                check(rc != HQ_EINVAL || reason != NULL, "reason on failure");
                check(meta.type == NULL && meta.id == NULL, "meta zeroed");
            }
            hq_event_meta_free(&meta);
        }
    }
    free(hval);
    return 0;
}
