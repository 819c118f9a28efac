/* test_scheme: the scheme table (core/scheme.c, hq_scheme.h).
 *
 * - Every enum hq_scheme value has a row with a name, and every scheme but none a verify and a
 *   sign function; names are unique and resolve back to their scheme.
 * - The names are pinned in enum order: they are the configuration's `scheme` values and the
 *   first field of every replay key, so a reordered enum or a renamed row fails here.
 * - hq_sig_sign() -> hq_sig_verify() round-trips for every scheme that signs, and the replay
 *   key of each round trip is pinned byte for byte (the keys the gateway's replay cache has
 *   always used: computed with the code before the scheme table and checked again here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hq_codec.h"
#include "hq_scheme.h"
#include "hq_sig.h"

#define NOW 1735689600
#define OUT_MAX 16384
#define HDRS_MAX 16

/* enum order; never change one (the replay keys depend on them) */
static const char *const pinned_names[] = {
    [HQ_SCHEME_STRIPE] = "stripe",     [HQ_SCHEME_GITHUB] = "github",
    [HQ_SCHEME_STANDARD] = "standard", [HQ_SCHEME_SHOPIFY] = "shopify",
    [HQ_SCHEME_SLACK] = "slack",       [HQ_SCHEME_GITLAB] = "gitlab",
    [HQ_SCHEME_TWILIO] = "twilio",     [HQ_SCHEME_PADDLE] = "paddle",
    [HQ_SCHEME_SQUARE] = "square",     [HQ_SCHEME_ZOOM] = "zoom",
    [HQ_SCHEME_MAILGUN] = "mailgun",   [HQ_SCHEME_HMAC] = "hmac",
    [HQ_SCHEME_TOKEN] = "token",       [HQ_SCHEME_BASIC] = "basic",
    [HQ_SCHEME_NONE] = "none",         [HQ_SCHEME_LINEAR] = "linear",
};

/* HQ_TEST_OLD_CORE: only the round trips, to link against a core without the table */
#ifndef HQ_TEST_OLD_CORE
static void test_every_scheme_has_a_row(void **state)
{
    int i, j;

    (void)state;
    assert_int_equal(sizeof(pinned_names) / sizeof(pinned_names[0]), HQ_SCHEME__COUNT);
    for (i = 0; i < HQ_SCHEME__COUNT; i++) {
        const struct hq_scheme_ops *ops = hq_scheme_ops((enum hq_scheme)i);
        enum hq_scheme back = HQ_SCHEME__COUNT;
        assert_non_null(ops);
        assert_non_null(ops->name);
        assert_true(ops->name[0] != '\0');
        assert_string_equal(ops->name, pinned_names[i]);
        assert_string_equal(hq_scheme_name((enum hq_scheme)i), ops->name);
        assert_int_equal(hq_scheme_from_name(ops->name, &back), HQ_OK);
        assert_int_equal(back, i);
        if (i == HQ_SCHEME_NONE) {
            assert_null(ops->verify);
            assert_null(ops->sign);
        } else {
            assert_non_null(ops->verify);
            assert_non_null(ops->sign);
        }
        assert_non_null(ops->event_type[0]);
        assert_non_null(ops->keep_headers);
        assert_true(ops->tolerance_s >= 0);
        assert_true(!ops->both_directions || ops->tolerance_s > 0);
        for (j = 0; j < i; j++)
            assert_string_not_equal(ops->name, hq_scheme_ops((enum hq_scheme)j)->name);
    }
    assert_null(hq_scheme_ops(HQ_SCHEME__COUNT));
    assert_null(hq_scheme_ops((enum hq_scheme) - 1));
}

static void test_tolerance_comes_from_the_table(void **state)
{
    int i;

    (void)state;
    for (i = 0; i < HQ_SCHEME__COUNT; i++) {
        const struct hq_scheme_ops *ops = hq_scheme_ops((enum hq_scheme)i);
        bool both = !ops->both_directions;
        assert_int_equal(hq_sig_default_tolerance((enum hq_scheme)i, &both), ops->tolerance_s);
        assert_int_equal(both, ops->both_directions);
    }
    assert_int_equal(hq_scheme_ops(HQ_SCHEME_STRIPE)->tolerance_s, 300);
    assert_int_equal(hq_scheme_ops(HQ_SCHEME_PADDLE)->tolerance_s, 5);
    assert_int_equal(hq_scheme_ops(HQ_SCHEME_GITHUB)->tolerance_s, 0);
}

#endif

/* ------------------------------------------------------------------------------------------ */
/* sign -> verify round trips, replay keys pinned */

struct rt_case {
    enum hq_scheme scheme;
    const char *secret, *header, *prefix, *url, *content_type, *body, *event_id;
};

static const struct rt_case cases[] = {
    {HQ_SCHEME_STRIPE, "whsec_test_secret", NULL, NULL, NULL, "application/json",
     "{\"id\":\"evt_1\",\"type\":\"invoice.paid\"}", NULL},
    {HQ_SCHEME_GITHUB, "It's a Secret to Everybody", NULL, NULL, NULL, "application/json",
     "Hello, World!", "d1"},
    {HQ_SCHEME_STANDARD, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", NULL, NULL, NULL,
     "application/json", "{\"type\":\"invoice.paid\"}", "msg_p5jXN8AQM9LWM0D4loKWxJek"},
    {HQ_SCHEME_SHOPIFY, "shop-secret", NULL, NULL, NULL, "application/json", "{\"id\":1}", "w1"},
    {HQ_SCHEME_SLACK, "slack-signing-secret", NULL, NULL, NULL, "application/json",
     "{\"type\":\"event_callback\"}", NULL},
    {HQ_SCHEME_GITLAB, "gitlab-token", NULL, NULL, NULL, "application/json",
     "{\"object_kind\":\"push\"}", "g1"},
    {HQ_SCHEME_TWILIO, "twilio-auth-token", NULL, NULL, "https://hooks.example.com/webhooks/t",
     "application/x-www-form-urlencoded", "Body=hi&From=%2B15550001111", NULL},
    {HQ_SCHEME_PADDLE, "pdl_ntfset_test", NULL, NULL, NULL, "application/json",
     "{\"event_id\":\"evt_1\"}", NULL},
    {HQ_SCHEME_SQUARE, "square-signature-key", NULL, NULL, "https://hooks.example.com/webhooks/s",
     "application/json", "{\"event_id\":\"e1\"}", NULL},
    {HQ_SCHEME_ZOOM, "zoom-secret-token", NULL, NULL, NULL, "application/json",
     "{\"event\":\"meeting.started\"}", NULL},
    {HQ_SCHEME_MAILGUN, "mailgun-signing-key", NULL, NULL, NULL, "application/json", NULL, NULL},
    {HQ_SCHEME_HMAC, "generic-key", "X-Signature", "sha256=", NULL, "application/json",
     "{\"event\":\"order.created\"}", NULL},
    {HQ_SCHEME_TOKEN, "bearer-token-1", NULL, NULL, NULL, "application/json", "{}", NULL},
    {HQ_SCHEME_BASIC, "user:pa55", NULL, NULL, NULL, "application/json", "{}", NULL},
    {HQ_SCHEME_LINEAR, "lin_wh_secret", NULL, NULL, NULL, "application/json",
     "{\"action\":\"create\",\"type\":\"Issue\",\"webhookTimestamp\":1735689600000}", "l1"},
};

static char *xstrdup(const char *s)
{
    char *p = s ? strdup(s) : NULL;

    if (s) assert_non_null(p);
    return p;
}

/* The mailgun body: its signature object is built with the secret (it signs in the body). */
static char *mailgun_body(const char *secret)
{
    struct hq_secret sec = {(unsigned char *)secret, strlen(secret)};
    static const char tt[] = "1735689600tok-0123456789abcdef";
    char mac[65], *out = malloc(512);

    assert_non_null(out);
    hq_sig_hmac_sha256_hex(&sec, (const unsigned char *)tt, strlen(tt), mac);
    snprintf(out, 512,
             "{\"signature\":{\"timestamp\":\"1735689600\",\"token\":\"tok-0123456789abcdef\","
             "\"signature\":\"%s\"},\"event-data\":{\"event\":\"delivered\",\"id\":\"m1\"}}",
             mac);
    return out;
}

/* Split hq_sig_sign's "Name: value" lines into hdrs (pointing into out, modified). */
static size_t split_lines(char *out, struct hq_header *hdrs)
{
    size_t n = 0;
    char *p = out;

    while (*p) {
        char *nl = strchr(p, '\n'), *colon;
        if (nl) *nl = '\0';
        colon = strstr(p, ": ");
        assert_non_null(colon);
        *colon = '\0';
        assert_true(n < HDRS_MAX);
        hdrs[n].name = p;
        hdrs[n].value = colon + 2;
        n++;
        if (!nl) break;
        p = nl + 1;
    }
    return n;
}

static void hexkey(const unsigned char *k, char out[2 * HQ_REPLAY_KEY_LEN + 1])
{
    hq_hex_encode(k, HQ_REPLAY_KEY_LEN, out);
}

/* The source of case c, signing with secret (free with free_src). */
static void make_src(const struct rt_case *c, const char *secret, struct hq_source_cfg *src,
                     struct hq_secret *sec)
{
    memset(src, 0, sizeof(*src));
    snprintf(src->name, sizeof(src->name), "t");
    src->scheme = c->scheme;
    src->tolerance_s = -1;
    src->algorithm = HQ_ALG_SHA256;
    src->encoding = HQ_ENC_HEX;
    sec->data = (unsigned char *)xstrdup(secret);
    sec->len = strlen(secret);
    src->secrets = sec;
    src->n_secrets = 1;
    src->header = xstrdup(c->header);
    src->prefix = xstrdup(c->prefix);
    src->url = xstrdup(c->url);
}

static void free_src(struct hq_source_cfg *src, struct hq_secret *sec)
{
    free(sec->data);
    free(src->header);
    free(src->prefix);
    free(src->url);
}

static void round_trip(const struct rt_case *c, char key_hex[2 * HQ_REPLAY_KEY_LEN + 1])
{
    struct hq_source_cfg src;
    struct hq_secret sec;
    struct hq_header hdrs[HDRS_MAX + 1];
    struct hq_request_view req;
    struct hq_verify_result res;
    char *out = malloc(OUT_MAX), *body = c->body ? xstrdup(c->body) : mailgun_body(c->secret);
    size_t n;

    assert_non_null(out);
    make_src(c, c->secret, &src, &sec);

    assert_int_equal(hq_sig_sign(&src, (const unsigned char *)body, strlen(body), c->url,
                                 c->content_type, c->event_id, NOW, out, OUT_MAX),
                     HQ_OK);
    n = split_lines(out, hdrs);
    hdrs[n].name = "Content-Type";
    hdrs[n].value = c->content_type;
    req = (struct hq_request_view){hdrs,         n + 1,           (const unsigned char *)body,
                                   strlen(body), c->content_type, c->url};
    assert_int_equal(hq_sig_verify(&src, &req, NOW, &res), HQ_OK);
    assert_null(res.reason);
    assert_int_equal(res.secret_index, 0);
    assert_true(res.has_replay_key);
    hexkey(res.replay_key, key_hex);
    /* one byte of the body changed: the signature no longer matches (mailgun's event-data is
     * not signed, so the signature object itself is changed there) */
    body[c->scheme == HQ_SCHEME_MAILGUN ? 30 : 0] ^= 1;
    if (c->scheme != HQ_SCHEME_GITLAB && c->scheme != HQ_SCHEME_TOKEN &&
        c->scheme != HQ_SCHEME_BASIC)
        assert_int_not_equal(hq_sig_verify(&src, &req, NOW, &res), HQ_OK);
    free(out);
    free(body);
    free_src(&src, &sec);
}

/* The replay keys of the round trips above, in cases[] order (hex SHA-256), as the code before
 * the scheme table computed them (HQ_TEST_PRINT_KEYS=1 prints them instead of checking). */
static const char *const pinned_keys[] = {
    "0d2d764acbc0c41ab7c480a621d18a14db7f2d5e8516f0a50e693ebebf96e7fd", /* stripe */
    "13308222cb70bb3676b2dad9720150aa2d24e51068d30a7f7393fb32fc0f0bbc", /* github */
    "f75ac66212a6aecba3e92e704f464fe3bf6b33cedfe681b21908169fceec6362", /* standard */
    "74f77426c84ec7e5cbc7017a22a23888fe55aff5fbd6ab8bb0b60d86428470ed", /* shopify */
    "9806df082ea63c2d372f2794dc8193ae628160c91cbc161692b9d66631f20763", /* slack */
    "fcb7f4bda5ff466761abbdd12752d004a2d4741988188f5256ebf749900083d9", /* gitlab */
    "81c4460ba657d7fd0ab7afc33aa6a6653dd05d565357fbdf558f8ae5e9ae07da", /* twilio */
    "9f1cdc0d0decfca33fa5e05101c94aea58b3cfb6738d8d4796a9472b5e8418be", /* paddle */
    "1f60584aa0d6098ad36cf11d1577e5b7b859167774ac1714dc23df953f0f603c", /* square */
    "1b478a586bc1646aafbc566cfe2c36b8d73885d0eec8d39b7c918607a572f8d6", /* zoom */
    "0e5221153a2a73cddff5df9823ddc30adefe6a9a811ca3715e16eaa4dfe26d8e", /* mailgun */
    "7ea5230076c35a10228f3a7e30871dcb30ac4d297e33b89c0e722510f85469ed", /* hmac */
    "c7ac9a45061a57dd49a1c60c88c5b91ba7251efd4dda49b5d832d7fcb5231caa", /* token */
    "c0d32d3136e7354909d5d123a1638edce4fb798853aa33f91c14905aceef7d8a", /* basic */
    /* computed with Python's hmac/hashlib from the rule in core/sig.c's header comment */
    "3ab7dd6d59c21563c7883fc4e6c3a6c971b70333cdc055b80620f781c00374b6", /* linear */
};

static void test_sign_verify_round_trip(void **state)
{
    bool covered[HQ_SCHEME__COUNT] = {false};
    size_t i;
    int s;

    (void)state;
    assert_int_equal(sizeof(pinned_keys) / sizeof(pinned_keys[0]),
                     sizeof(cases) / sizeof(cases[0]));
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char key[2 * HQ_REPLAY_KEY_LEN + 1];
        round_trip(&cases[i], key);
        if (getenv("HQ_TEST_PRINT_KEYS"))
            printf("    \"%s\", /* %s */\n", key, hq_scheme_name(cases[i].scheme));
        else
            assert_string_equal(key, pinned_keys[i]);
        covered[cases[i].scheme] = true;
    }
    /* every scheme that can sign has a case */
    for (s = 0; s < HQ_SCHEME__COUNT; s++)
        assert_true(covered[s] || s == HQ_SCHEME_NONE);
}

#ifndef HQ_TEST_OLD_CORE
/* Every header whose value depends on the secret (signed twice, with two secrets: the headers
 * that differ) is one the scheme's row lists in signature_headers (or the source's `header`),
 * so the console redacts it (console/events.c). */
static void test_signature_headers_listed(void **state)
{
    size_t i, j, k;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct rt_case *c = &cases[i];
        char *out[2], *body = c->body ? xstrdup(c->body) : mailgun_body(c->secret);
        struct hq_header hdrs[2][HDRS_MAX + 1];
        size_t n[2], differ = 0;

        if (c->scheme == HQ_SCHEME_MAILGUN) { /* it signs in the body: no header to list */
            assert_null(hq_scheme_ops(c->scheme)->signature_headers[0]);
            free(body);
            continue;
        }
        for (k = 0; k < 2; k++) {
            struct hq_source_cfg src;
            struct hq_secret sec;
            char secret[128], *flip;

            /* the other secret: one letter's case flipped after the last '_' (standard's
             * "whsec_" + base64 stays valid base64) */
            snprintf(secret, sizeof(secret), "%s", c->secret);
            flip = strrchr(secret, '_') ? strrchr(secret, '_') + 1 : secret;
            while (*flip && !((*flip >= 'a' && *flip <= 'z') || (*flip >= 'A' && *flip <= 'Z')))
                flip++;
            assert_true(*flip != '\0');
            if (k)
                *flip ^= 0x20;
            make_src(c, secret, &src, &sec);
            out[k] = malloc(OUT_MAX);
            assert_non_null(out[k]);
            assert_int_equal(hq_sig_sign(&src, (const unsigned char *)body, strlen(body), c->url,
                                         c->content_type, c->event_id, NOW, out[k], OUT_MAX),
                             HQ_OK);
            n[k] = split_lines(out[k], hdrs[k]);
            free_src(&src, &sec);
        }
        assert_int_equal(n[0], n[1]);
        for (j = 0; j < n[0]; j++) {
            assert_string_equal(hdrs[0][j].name, hdrs[1][j].name);
            if (strcmp(hdrs[0][j].value, hdrs[1][j].value) == 0)
                continue;
            differ++;
            if (!hq_scheme_signature_header(c->scheme, c->header, hdrs[0][j].name))
                fail_msg("%s signs with %s, which its row's signature_headers does not list",
                         hq_scheme_name(c->scheme), hdrs[0][j].name);
        }
        assert_true(differ > 0); /* each of these signs in a header */
        free(out[0]);
        free(out[1]);
        free(body);
    }
    /* case-insensitive; event headers are not signature headers; the configured header */
    assert_true(hq_scheme_signature_header(HQ_SCHEME_GITHUB, NULL, "x-hub-signature-256"));
    assert_false(hq_scheme_signature_header(HQ_SCHEME_GITHUB, NULL, "X-GitHub-Event"));
    assert_false(hq_scheme_signature_header(HQ_SCHEME_HMAC, NULL, "X-Signature"));
    assert_true(hq_scheme_signature_header(HQ_SCHEME_HMAC, "X-Signature", "x-signature"));
    assert_false(hq_scheme_signature_header(HQ_SCHEME__COUNT, "X-Signature", "X-Signature"));
    for (i = 0; i < HQ_SCHEME__COUNT; i++)
        assert_non_null(hq_scheme_ops((enum hq_scheme)i)->signature_headers);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
#ifndef HQ_TEST_OLD_CORE
        cmocka_unit_test(test_every_scheme_has_a_row),
        cmocka_unit_test(test_tolerance_comes_from_the_table),
#endif
        cmocka_unit_test(test_sign_verify_round_trip),
#ifndef HQ_TEST_OLD_CORE
        cmocka_unit_test(test_signature_headers_listed),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
