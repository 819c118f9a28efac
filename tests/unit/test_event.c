/* test_event: event envelope, extraction per scheme and selector, hostile JSON, routing keys,
 * UUIDv7, the spool encoding and the kept-header allowlist (core/event.c). Sample bodies are
 * in tests/data/events/. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_event.h"
#include "hq_time.h"

/* ---------------------------------------------------------------------------------------- */

static unsigned char *load(const char *name, size_t *len)
{
    char path[1024];
    FILE *f;
    long n;
    unsigned char *buf;

    snprintf(path, sizeof(path), "%s/events/%s", HQ_TEST_DATA, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static struct hq_source_cfg mksrc(enum hq_scheme s, const char *name)
{
    struct hq_source_cfg src;

    memset(&src, 0, sizeof(src));
    snprintf(src.name, sizeof(src.name), "%s", name);
    src.scheme = s;
    src.tolerance_s = -1;
    return src;
}

static struct hq_request_view mkreq(const struct hq_header *h, size_t nh, const void *body,
                                    size_t len, const char *ct)
{
    struct hq_request_view r;

    memset(&r, 0, sizeof(r));
    r.headers = h;
    r.n_headers = nh;
    r.body = body;
    r.body_len = len;
    r.content_type = ct;
    return r;
}

static bool is_uuid7(const char *s)
{
    size_t i;

    if (strlen(s) != 36) return false;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return s[14] == '7' && strchr("89ab", s[19]) != NULL;
}

/* Extract and check type and id (id NULL: a generated UUIDv7 is expected). */
static void expect_ok(const struct hq_source_cfg *src, const struct hq_request_view *req,
                      const char *type, const char *id)
{
    struct hq_event_meta meta;
    const char *reason = "unset";
    int rc = hq_event_extract(src, req, NULL, &meta, &reason);

    if (rc != HQ_OK) fail_msg("extract failed: rc=%d reason=%s", rc, reason ? reason : "(null)");
    assert_null(reason);
    assert_false(meta.handshake);
    assert_string_equal(meta.type, type);
    if (id) {
        assert_string_equal(meta.id, id);
        assert_false(meta.id_generated);
    } else {
        assert_true(meta.id_generated);
        assert_true(is_uuid7(meta.id));
    }
    hq_event_meta_free(&meta);
    assert_null(meta.type);
}

static void expect_fail(const struct hq_source_cfg *src, const struct hq_request_view *req,
                        const char *reason_want)
{
    struct hq_event_meta meta;
    const char *reason = NULL;
    int rc = hq_event_extract(src, req, NULL, &meta, &reason);

    if (rc == HQ_OK)
        fail_msg("extract succeeded (type=%s id=%s), wanted %s", meta.type, meta.id, reason_want);
    assert_int_equal(rc, HQ_EINVAL);
    assert_non_null(reason);
    assert_string_equal(reason, reason_want);
    assert_null(meta.type);
    assert_null(meta.id);
    assert_null(meta.handshake_body);
}

/* Body text helpers */
#define REQ_JSON(s) mkreq(NULL, 0, (s), strlen(s), "application/json")

/* ---------------------------------------------------------------------------------------- */
/* Default extraction per scheme                                                              */

static void test_stripe(void **state)
{
    size_t n;
    unsigned char *body = load("stripe_invoice_paid.json", &n);
    struct hq_source_cfg src = mksrc(HQ_SCHEME_STRIPE, "stripe");
    struct hq_request_view req = mkreq(NULL, 0, body, n, "application/json; charset=utf-8");
    (void)state;

    expect_ok(&src, &req, "invoice.paid", "evt_1NG8Du2eZvKYlo2CUI79vXWy");
    {
        struct hq_request_view r2 = REQ_JSON("{\"type\":\"charge.failed\"}");
        expect_fail(&src, &r2, "missing_id");
    }
    {
        struct hq_request_view r3 = REQ_JSON("{\"id\":\"evt_1\"}");
        expect_fail(&src, &r3, "missing_type");
    }
    {
        struct hq_request_view r4 = REQ_JSON("type=invoice.paid&id=evt_1");
        expect_fail(&src, &r4, "bad_json");
    }
    free(body);
}

static void test_github(void **state)
{
    size_t n;
    unsigned char *body = load("github_push.json", &n);
    struct hq_source_cfg src = mksrc(HQ_SCHEME_GITHUB, "github");
    struct hq_header h[] = {
        {"User-Agent", "GitHub-Hookshot/044aadd"},
        {"x-github-event", "push"},
        {"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
        {"X-Hub-Signature-256", "sha256=abc"},
    };
    struct hq_request_view req = mkreq(h, 4, body, n, "application/json");
    (void)state;

    expect_ok(&src, &req, "push", "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    req.n_headers = 2; /* no delivery */
    expect_fail(&src, &req, "missing_id");
    req.headers = h + 2;
    req.n_headers = 2; /* no event */
    expect_fail(&src, &req, "missing_type");
    /* the body is not looked at: a non-JSON body is fine */
    req = mkreq(h, 4, "not json", 8, "text/plain");
    expect_ok(&src, &req, "push", "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    free(body);
}

static void test_standard(void **state)
{
    size_t n;
    unsigned char *body = load("standard_invoice.json", &n);
    struct hq_source_cfg src = mksrc(HQ_SCHEME_STANDARD, "partner");
    struct hq_header wh[] = {{"webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"},
                             {"webhook-timestamp", "1614265330"}};
    struct hq_header sv[] = {{"Svix-Id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"},
                             {"svix-timestamp", "1614265330"}};
    struct hq_header none[] = {{"webhook-timestamp", "1614265330"}};
    struct hq_request_view req = mkreq(wh, 2, body, n, "application/json");
    (void)state;

    expect_ok(&src, &req, "invoice.paid", "msg_p5jXN8AQM9LWM0D4loKWxJek");
    req.headers = sv;
    expect_ok(&src, &req, "invoice.paid", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W");
    req.headers = none;
    req.n_headers = 1;
    expect_fail(&src, &req, "missing_id");
    free(body);
}

static void test_shopify(void **state)
{
    size_t n;
    unsigned char *body = load("shopify_products_create.json", &n);
    struct hq_source_cfg src = mksrc(HQ_SCHEME_SHOPIFY, "shop");
    struct hq_header h[] = {{"X-Shopify-Topic", "products/create"},
                            {"X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"},
                            {"X-Shopify-Shop-Domain", "example.myshopify.com"}};
    struct hq_header u[] = {{"shopify-topic", "orders/paid"},
                            {"shopify-webhook-id", "e3c6a2a8-1b1e-4d8c-9f1d-6a1d0c3b2a11"}};
    struct hq_request_view req = mkreq(h, 3, body, n, "application/json");
    (void)state;

    expect_ok(&src, &req, "products/create", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
    req.headers = u;
    req.n_headers = 2;
    expect_ok(&src, &req, "orders/paid", "e3c6a2a8-1b1e-4d8c-9f1d-6a1d0c3b2a11");
    req.n_headers = 1;
    expect_fail(&src, &req, "missing_id");
    free(body);
}

static void test_slack(void **state)
{
    size_t n;
    unsigned char *body = load("slack_event_callback.json", &n);
    struct hq_source_cfg src = mksrc(HQ_SCHEME_SLACK, "slack");
    struct hq_request_view req = mkreq(NULL, 0, body, n, "application/json");
    (void)state;

    expect_ok(&src, &req, "app_mention", "Ev123ABC456");
    free(body);

    /* no inner event: the outer type; no event_id: generated */
    req = REQ_JSON("{\"token\":\"x\",\"team_id\":\"T1\",\"minute_rate_limited\":1518467820,"
                   "\"api_app_id\":\"A1\",\"type\":\"app_rate_limited\"}");
    expect_ok(&src, &req, "app_rate_limited", NULL);
    /* an inner event whose type is not a string falls back to the outer type */
    req = REQ_JSON("{\"type\":\"event_callback\",\"event\":{\"type\":{}},\"event_id\":\"Ev9\"}");
    expect_ok(&src, &req, "event_callback", "Ev9");

    /* slash command: form post, type = command */
    body = load("slack_command.form", &n);
    req = mkreq(NULL, 0, body, n, "application/x-www-form-urlencoded");
    expect_ok(&src, &req, "/weather", NULL);
    /* media type matched case-insensitively, parameters ignored */
    req.content_type = "Application/X-WWW-Form-Urlencoded ; charset=UTF-8";
    expect_ok(&src, &req, "/weather", NULL);
    free(body);

    /* interactivity: form with a JSON payload field */
    body = load("slack_block_actions.form", &n);
    req = mkreq(NULL, 0, body, n, "application/x-www-form-urlencoded");
    expect_ok(&src, &req, "block_actions", NULL);
    free(body);

    req = mkreq(NULL, 0, "text=hello&user_id=U1", 21, "application/x-www-form-urlencoded");
    expect_fail(&src, &req, "missing_type");
    req = mkreq(NULL, 0, "payload=%7Bnot+json", 19, "application/x-www-form-urlencoded");
    expect_fail(&src, &req, "missing_type");
    req = REQ_JSON("{\"token\":\"x\"}");
    expect_fail(&src, &req, "missing_type");
    req = REQ_JSON("command=/weather");
    expect_fail(&src, &req, "bad_json");
}

static void test_gitlab(void **state)
{
    size_t n;
    unsigned char *body = load("gitlab_push.json", &n);
    struct hq_source_cfg src = mksrc(HQ_SCHEME_GITLAB, "gitlab");
    struct hq_header h[] = {{"X-Gitlab-Event", "Push Hook"},
                            {"X-Gitlab-Token", "secret-token"},
                            {"X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e"}};
    struct hq_request_view req = mkreq(h, 3, body, n, "application/json");
    (void)state;

    expect_ok(&src, &req, "Push Hook", "13792a34-cac6-4fda-95a8-c58e00a3954e");
    req.n_headers = 2;
    expect_fail(&src, &req, "missing_id");
    free(body);
}

static void test_paddle_square_mailgun(void **state)
{
    size_t n;
    unsigned char *body;
    struct hq_source_cfg src;
    struct hq_request_view req;
    (void)state;

    body = load("paddle_transaction_completed.json", &n);
    src = mksrc(HQ_SCHEME_PADDLE, "paddle");
    req = mkreq(NULL, 0, body, n, "application/json");
    expect_ok(&src, &req, "transaction.completed", "evt_01hv8wptq8987qeep44cyrewp9");
    free(body);

    body = load("square_payment_created.json", &n);
    src = mksrc(HQ_SCHEME_SQUARE, "square");
    req = mkreq(NULL, 0, body, n, "application/json");
    expect_ok(&src, &req, "payment.created", "13b867cf-db3d-4b1c-90b6-2f32a9d78124");
    free(body);

    body = load("mailgun_delivered.json", &n);
    src = mksrc(HQ_SCHEME_MAILGUN, "mail");
    req = mkreq(NULL, 0, body, n, "application/json");
    expect_ok(&src, &req, "delivered", "DACSsAdVSeGpLid7TN03WA");
    free(body);
    req = REQ_JSON("{\"event-data\":{\"event\":\"failed\"}}");
    expect_fail(&src, &req, "missing_id");

    src = mksrc(HQ_SCHEME_PADDLE, "paddle");
    req = REQ_JSON("{\"event_type\":\"transaction.paid\"}");
    expect_fail(&src, &req, "missing_id");
    src = mksrc(HQ_SCHEME_SQUARE, "square");
    req = REQ_JSON("{\"event_id\":\"e1\"}");
    expect_fail(&src, &req, "missing_type");
}

static void test_zoom(void **state)
{
    size_t n;
    unsigned char *body = load("zoom_meeting_started.json", &n);
    struct hq_source_cfg src = mksrc(HQ_SCHEME_ZOOM, "zoom");
    struct hq_request_view req = mkreq(NULL, 0, body, n, "application/json");
    (void)state;

    expect_ok(&src, &req, "meeting.started", NULL);
    free(body);
    req = REQ_JSON("{\"payload\":{}}");
    expect_fail(&src, &req, "missing_type");
    req = REQ_JSON("{\"event\":\"meeting.started\"");
    expect_fail(&src, &req, "bad_json");
}

static void test_generic_schemes(void **state)
{
    size_t n;
    unsigned char *body = load("twilio_sms.form", &n);
    enum hq_scheme s[] = {HQ_SCHEME_TWILIO, HQ_SCHEME_HMAC, HQ_SCHEME_TOKEN, HQ_SCHEME_BASIC,
                          HQ_SCHEME_NONE};
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        struct hq_source_cfg src = mksrc(s[i], "generic");
        struct hq_request_view req = mkreq(NULL, 0, body, n, "application/x-www-form-urlencoded");
        expect_ok(&src, &req, "event", NULL);
        /* empty and binary bodies too */
        req = mkreq(NULL, 0, NULL, 0, NULL);
        expect_ok(&src, &req, "event", NULL);
        req = mkreq(NULL, 0, "\x00\xff\xfe", 3, "application/octet-stream");
        expect_ok(&src, &req, "event", NULL);
    }
    /* a form selector on twilio's body, and a required id once a selector is set */
    {
        struct hq_source_cfg src = mksrc(HQ_SCHEME_TWILIO, "calls");
        struct hq_request_view req = mkreq(NULL, 0, body, n, "application/x-www-form-urlencoded");
        src.event_type = "form:SmsStatus";
        src.event_id = "form:MessageSid";
        expect_ok(&src, &req, "received", "SM1234567890abcdef1234567890abcdef");
        src.event_id = "form:CallSid";
        expect_fail(&src, &req, "missing_id");
        src.event_id = "form:From";
        expect_ok(&src, &req, "received", "+14155552671");
        src.event_id = "form:Body";
        expect_ok(&src, &req, "received", "Hello world!");
    }
    free(body);
}

/* ---------------------------------------------------------------------------------------- */
/* Selectors                                                                                 */

static const char sel_doc[] =
    "{\"a/b\":{\"m~n\":\"x\"},\"arr\":[{\"id\":\"first\"},{\"id\":\"second\"}],"
    "\"num\":42,\"dbl\":1.50,\"neg\":-7,\"exp\":1E5,\"obj\":{},\"nul\":null,\"bool\":true,"
    "\"empty\":\"\",\"ctl\":\"a\\u0001b\",\"nulchar\":\"a\\u0000b\",\"del\":\"a\\u007fb\","
    "\"big\":123456789012345678901234567890,\"u64max\":18446744073709551615,"
    "\"u64\":18446744073709551614,\"i64min\":-9223372036854775808,"
    "\"\":\"emptykey\",\" \":\"space\",\"~\":\"tilde\",\"0\":\"zero-key\","
    "\"uni\":\"caf\\u00e9 \xe2\x82\xac\",\"esc\":\"q\\\"b\\\\s\\/\","
    "\"deep\":[[[\"d\"]]]}";

struct sel_case {
    const char *sel;
    const char *want; /* NULL: missing */
};

static void test_json_selectors(void **state)
{
    static const struct sel_case cases[] = {
        {"json:/a~1b/m~0n", "x"},
        {"json:/arr/0/id", "first"},
        {"json:/arr/1/id", "second"},
        {"json:/arr/01/id", NULL},
        {"json:/arr/2/id", NULL},
        {"json:/arr/-", NULL},
        {"json:/arr/-1", NULL},
        {"json:/arr/+1", NULL},
        {"json:/arr/id", NULL},
        {"json:/arr/99999999999999999999", NULL},
        {"json:/num", "42"},
        {"json:/dbl", "1.50"},
        {"json:/neg", "-7"},
        {"json:/exp", "1E5"},
        {"json:/u64", "18446744073709551614"},
        {"json:/big", NULL},
        {"json:/u64max", NULL},
        {"json:/i64min", NULL},
        {"json:/obj", NULL},
        {"json:/nul", NULL},
        {"json:/bool", NULL},
        {"json:/arr", NULL},
        {"json:/empty", NULL},
        {"json:/ctl", NULL},
        {"json:/nulchar", NULL},
        {"json:/del", NULL},
        {"json:/", "emptykey"},
        {"json:/ ", "space"},
        {"json:/~0", "tilde"},
        {"json:/0", "zero-key"},
        {"json:/uni", "caf\xc3\xa9 \xe2\x82\xac"},
        {"json:/esc", "q\"b\\s/"},
        {"json:/deep/0/0/0", "d"},
        {"json:/deep/0/0/0/0", NULL},
        {"json:/num/0", NULL},
        {"json:/a~2b", NULL},
        {"json:/a~", NULL},
        {"json:/a~1b/m~0n/", NULL},
        {"json:", NULL},    /* the whole document: an object */
        {"json:num", NULL}, /* not a pointer */
        {"json:/missing", NULL},
        {"xpath:/a", NULL},
        {"JSON:/num", NULL},
        {"", NULL},
        {"const:", NULL},
        {"const:fixed.type", "fixed.type"},
        {"const:tab\there", NULL},
    };
    struct hq_source_cfg src = mksrc(HQ_SCHEME_NONE, "sel");
    struct hq_request_view req = REQ_JSON(sel_doc);
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        src.event_type = (char *)cases[i].sel;
        print_message("selector %s\n", cases[i].sel);
        if (cases[i].want)
            expect_ok(&src, &req, cases[i].want, NULL);
        else
            expect_fail(&src, &req, "missing_type");
        /* the same selector as an id */
        src.event_type = "const:t";
        src.event_id = (char *)cases[i].sel;
        if (cases[i].want)
            expect_ok(&src, &req, "t", cases[i].want);
        else
            expect_fail(&src, &req, "missing_id");
        src.event_id = NULL;
    }

    /* top-level scalars through the empty pointer */
    src.event_type = "json:";
    req = REQ_JSON("42");
    expect_ok(&src, &req, "42", NULL);
    req = REQ_JSON(" \"top\" ");
    expect_ok(&src, &req, "top", NULL);
    req = REQ_JSON("-0.5e-3");
    expect_ok(&src, &req, "-0.5e-3", NULL);

    /* explicit selectors override the scheme defaults */
    src = mksrc(HQ_SCHEME_STRIPE, "stripe");
    src.event_type = "json:/data/object/object";
    src.event_id = "json:/data/object/id";
    {
        size_t n;
        unsigned char *body = load("stripe_invoice_paid.json", &n);
        req = mkreq(NULL, 0, body, n, "application/json");
        expect_ok(&src, &req, "invoice", "in_1NG8Dr2eZvKYlo2CpKhqDZFk");
        free(body);
    }
}

static void test_length_caps(void **state)
{
    struct hq_source_cfg src = mksrc(HQ_SCHEME_NONE, "caps");
    char body[1200], v255[256], v256[257];
    struct hq_request_view req;
    (void)state;

    memset(v255, 'a', 255);
    v255[255] = '\0';
    memset(v256, 'b', 256);
    v256[256] = '\0';
    snprintf(body, sizeof(body), "{\"t255\":\"%s\",\"t256\":\"%s\"}", v255, v256);
    req = REQ_JSON(body);
    src.event_type = "json:/t255";
    src.event_id = "json:/t255";
    expect_ok(&src, &req, v255, v255);
    src.event_type = "json:/t256";
    expect_fail(&src, &req, "missing_type");
    src.event_type = "json:/t255";
    src.event_id = "json:/t256";
    expect_fail(&src, &req, "missing_id");

    /* form value exactly at and over the cap */
    snprintf(body, sizeof(body), "a=%s&b=%s", v255, v256);
    req = mkreq(NULL, 0, body, strlen(body), "application/x-www-form-urlencoded");
    src.event_type = "form:a";
    src.event_id = NULL;
    expect_ok(&src, &req, v255, NULL);
    src.event_type = "form:b";
    expect_fail(&src, &req, "missing_type");
}

static void test_header_selector(void **state)
{
    struct hq_source_cfg src = mksrc(HQ_SCHEME_HMAC, "orders");
    struct hq_header h[] = {
        {"X-Event-Name", "  order.created\t"},
        {"x-event-name", "second-copy"},
        {"X-Delivery", "d-1"},
        {"X-Ctl", "a\x01z"},
        {"X-Empty", "   "},
        {"X-Latin1", "caf\xe9"},
        {"X-Utf8", "caf\xc3\xa9"},
        {"X-Bad2", "a\xc3("},
    };
    struct hq_request_view req = mkreq(h, 8, "{}", 2, "application/json");
    (void)state;

    src.event_type = "header:x-EVENT-name";
    src.event_id = "header:X-Delivery";
    expect_ok(&src, &req, "order.created", "d-1"); /* trimmed; the first copy counts */
    src.event_id = "header:X-Missing";
    expect_fail(&src, &req, "missing_id");
    src.event_id = "header:X-Ctl";
    expect_fail(&src, &req, "missing_id");
    src.event_id = "header:X-Empty";
    expect_fail(&src, &req, "missing_id");
    src.event_id = "header:X-Latin1"; /* not UTF-8 */
    expect_fail(&src, &req, "missing_id");
    src.event_id = "header:X-Bad2"; /* lead byte without its continuation */
    expect_fail(&src, &req, "missing_id");
    src.event_id = "header:X-Utf8";
    expect_ok(&src, &req, "order.created", "caf\xc3\xa9");
    src.event_id = "header:";
    expect_fail(&src, &req, "missing_id");
}

static void test_form_selector(void **state)
{
    static const char body[] = "a=1&b=%2Fx+y&b=second&f%6Fo=bar&pct=100%25&bad=%zz%4&"
                               "nul=a%00b&empty=&noeq&plus=%2B1&utf=%C3%A9&lat=%E9&&last=end";
    struct hq_source_cfg src = mksrc(HQ_SCHEME_NONE, "form");
    struct hq_request_view req = mkreq(NULL, 0, body, strlen(body), "text/plain");
    static const struct sel_case cases[] = {
        {"form:a", "1"},          {"form:b", "/x y"},    {"form:foo", "bar"},
        {"form:pct", "100%"},     {"form:bad", "%zz%4"}, {"form:nul", NULL},
        {"form:empty", NULL},     {"form:noeq", NULL},   {"form:plus", "+1"},
        {"form:utf", "\xc3\xa9"}, {"form:lat", NULL},    {"form:last", "end"},
        {"form:missing", NULL},   {"form:", NULL},       {"form:f%6Fo", NULL},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        src.event_type = (char *)cases[i].sel;
        print_message("selector %s\n", cases[i].sel);
        if (cases[i].want)
            expect_ok(&src, &req, cases[i].want, NULL);
        else
            expect_fail(&src, &req, "missing_type");
    }
    req = mkreq(NULL, 0, NULL, 0, NULL);
    src.event_type = "form:a";
    expect_fail(&src, &req, "missing_type");
}

/* ---------------------------------------------------------------------------------------- */
/* Hostile JSON: the stripe scheme needs json:/type and json:/id                             */

static void expect_json_body(const char *body, size_t n, const char *type, const char *id,
                             const char *reason)
{
    struct hq_source_cfg src = mksrc(HQ_SCHEME_STRIPE, "stripe");
    struct hq_request_view req = mkreq(NULL, 0, body, n, "application/json");

    print_message("body %.60s\n", body);
    if (reason)
        expect_fail(&src, &req, reason);
    else
        expect_ok(&src, &req, type, id);
}

#define BAD(s) expect_json_body((s), sizeof(s) - 1, NULL, NULL, "bad_json")
#define GOOD(s, t, i) expect_json_body((s), sizeof(s) - 1, (t), (i), NULL)

static char *nested(int depth)
{
    /* {"type":"t","id":"i","d":[[...]]} with depth arrays inside the object */
    size_t n = 40 + 2 * (size_t)depth;
    char *s = malloc(n);
    size_t o = 0;
    int i;

    assert_non_null(s);
    o += (size_t)snprintf(s, n, "{\"type\":\"t\",\"id\":\"i\",\"d\":");
    for (i = 0; i < depth; i++)
        s[o++] = '[';
    for (i = 0; i < depth; i++)
        s[o++] = ']';
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

static void test_hostile_json(void **state)
{
    char *s;
    (void)state;

    GOOD("{\"type\":\"t\",\"id\":\"i\"}", "t", "i");
    GOOD(" \r\n\t{\"type\":\"t\",\"id\":\"i\"} \r\n\t", "t", "i");
    /* trailing garbage, a second document, a NUL byte */
    BAD("{\"type\":\"t\",\"id\":\"i\"} x");
    BAD("{\"type\":\"t\",\"id\":\"i\"}{}");
    BAD("{\"type\":\"t\",\"id\":\"i\"}\0");
    BAD("{\"type\":\"t\",\"id\":\"i\"}\0garbage");
    BAD("{\"type\":\"t\",\0\"id\":\"i\"}");
    /* not JSON, though json-c's lax modes accept some of them */
    BAD("{'type':'t','id':'i'}");
    BAD("{\"type\":\"t\",\"id\":NaN}");
    BAD("{\"type\":\"t\",\"id\":Infinity}");
    BAD("{\"type\":\"t\",\"id\":-Infinity}");
    BAD("{\"type\":\"t\",\"id\":1.}");
    BAD("{\"type\":\"t\",\"id\":.5}");
    BAD("{\"type\":\"t\",\"id\":+1}");
    BAD("{\"type\":\"t\",\"id\":01}");
    BAD("{\"type\":\"t\",\"id\":0x10}");
    BAD("{\"type\":\"t\",\"id\":1e}");
    BAD("{\"type\":\"t\",\"id\":\"tab\there\"}");
    BAD("{\"type\":\"t\",\"id\":\"i\",}");
    BAD("{\"type\":\"t\",\"id\":[1,2,]}");
    BAD("/*c*/{\"type\":\"t\",\"id\":\"i\"}");
    BAD("{\"type\":\"t\",\"id\":\"i\"}//c");
    BAD("{type:\"t\",\"id\":\"i\"}");
    BAD("{\"type\":\"t\" \"id\":\"i\"}");
    BAD("{\"type\":\"t\",\"id\":\"\\x41\"}");
    BAD("{\"type\":\"t\",\"id\":\"\\u12\"}");
    BAD("{\"type\":\"t\",\"id\":tru}");
    BAD("{\"type\":\"t\",\"id\":\"i\"");
    BAD("{\"type\":\"t\",\"id\":\"i");
    BAD("{\"type\":\"t\",\"id\":\"i\"]");
    BAD("[\"type\"}");
    BAD("");
    BAD("   ");
    BAD("\xef\xbb\xbf{\"type\":\"t\",\"id\":\"i\"}"); /* BOM */
    /* invalid UTF-8 inside strings: bare continuation, overlong, surrogate, > U+10FFFF, cut */
    BAD("{\"type\":\"t\",\"id\":\"\x80\"}");
    BAD("{\"type\":\"t\",\"id\":\"\xc0\xaf\"}");
    BAD("{\"type\":\"t\",\"id\":\"\xe0\x80\xaf\"}");
    BAD("{\"type\":\"t\",\"id\":\"\xed\xa0\x80\"}");
    BAD("{\"type\":\"t\",\"id\":\"\xf4\x90\x80\x80\"}");
    BAD("{\"type\":\"t\",\"id\":\"\xe2\x82\"}");
    BAD("{\"type\":\"t\",\"id\":\"\xff\"}");
    GOOD("{\"type\":\"t\",\"id\":\"\xf0\x9f\x98\x80\"}", "t", "\xf0\x9f\x98\x80");
    /* duplicated keys: the last one wins (like json-c, Python, JavaScript) */
    GOOD("{\"type\":\"first\",\"id\":\"i\",\"type\":\"last\"}", "last", "i");
    /* an escaped lone surrogate is valid JSON syntax; json-c makes it U+FFFD */
    GOOD("{\"type\":\"t\",\"id\":\"\\ud800\"}", "t", "\xef\xbf\xbd");
    /* huge numbers: clamped by json-c, so refused as ids; ordinary ones kept as text */
    {
        static const char huge[] = "{\"type\":\"t\",\"id\":123456789012345678901234567890}";
        expect_json_body(huge, strlen(huge), NULL, NULL, "missing_id");
    }
    GOOD("{\"type\":\"t\",\"id\":1e400}", "t", "1e400");
    GOOD("{\"type\":\"t\",\"id\":9007199254740993}", "t", "9007199254740993");

    /* nesting: up to 32 levels, deeper is refused; 1000 levels never recurse */
    s = nested(31); /* 31 arrays + the object = 32 */
    expect_json_body(s, strlen(s), "t", "i", NULL);
    free(s);
    s = nested(32);
    expect_json_body(s, strlen(s), NULL, NULL, "bad_json");
    free(s);
    s = nested(1000);
    expect_json_body(s, strlen(s), NULL, NULL, "bad_json");
    free(s);
    {
        char deep[2001];
        memset(deep, '[', 2000);
        deep[2000] = '\0';
        expect_json_body(deep, 2000, NULL, NULL, "bad_json");
        memset(deep, '{', 2000);
        expect_json_body(deep, 2000, NULL, NULL, "bad_json");
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Handshakes                                                                                */

static void test_slack_handshake(void **state)
{
    size_t n;
    unsigned char *body = load("slack_url_verification.json", &n);
    struct hq_source_cfg src = mksrc(HQ_SCHEME_SLACK, "slack");
    struct hq_request_view req = mkreq(NULL, 0, body, n, "application/json");
    struct hq_event_meta meta;
    const char *reason = "unset";
    (void)state;

    assert_int_equal(hq_event_extract(&src, &req, NULL, &meta, &reason), HQ_OK);
    assert_null(reason);
    assert_true(meta.handshake);
    assert_string_equal(meta.handshake_body,
                        "{\"challenge\":\"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P\"}");
    assert_string_equal(meta.handshake_content_type, "application/json");
    assert_string_equal(meta.type, "url_verification");
    assert_true(meta.id_generated);
    assert_true(is_uuid7(meta.id));
    hq_event_meta_free(&meta);
    free(body);

    /* characters that need escaping come back escaped */
    req = REQ_JSON("{\"type\":\"url_verification\",\"challenge\":\"a\\\"b\\\\c</\"}");
    assert_int_equal(hq_event_extract(&src, &req, NULL, &meta, &reason), HQ_OK);
    assert_string_equal(meta.handshake_body, "{\"challenge\":\"a\\\"b\\\\c</\"}");
    hq_event_meta_free(&meta);

    /* even with an explicit type selector the handshake is recognized */
    src.event_type = "header:X-Nope";
    req = REQ_JSON("{\"type\":\"url_verification\",\"challenge\":\"c1\"}");
    assert_int_equal(hq_event_extract(&src, &req, NULL, &meta, &reason), HQ_OK);
    assert_true(meta.handshake);
    assert_string_equal(meta.handshake_body, "{\"challenge\":\"c1\"}");
    hq_event_meta_free(&meta);
    src.event_type = NULL;

    req = REQ_JSON("{\"type\":\"url_verification\"}");
    expect_fail(&src, &req, "bad_handshake");
    req = REQ_JSON("{\"type\":\"url_verification\",\"challenge\":42}");
    expect_fail(&src, &req, "bad_handshake");
    req = REQ_JSON("{\"type\":\"url_verification\",\"challenge\":\"\"}");
    expect_fail(&src, &req, "bad_handshake");
    /* a form post is never a handshake */
    req = mkreq(NULL, 0, "type=url_verification&challenge=x", 33,
                "application/x-www-form-urlencoded");
    expect_fail(&src, &req, "missing_type");
    /* an event_callback is not one */
    req = REQ_JSON("{\"type\":\"url_verification_x\",\"challenge\":\"c\"}");
    expect_ok(&src, &req, "url_verification_x", NULL);
}

static void test_zoom_handshake(void **state)
{
    size_t n;
    unsigned char *body = load("zoom_url_validation.json", &n);
    struct hq_source_cfg src = mksrc(HQ_SCHEME_ZOOM, "zoom");
    struct hq_request_view req = mkreq(NULL, 0, body, n, "application/json");
    struct hq_event_meta meta;
    const char *reason = "unset";
    unsigned char other[] = "other-secret";
    unsigned char key[] = "zoom-secret-token";
    struct hq_secret secrets[2] = {{other, sizeof(other) - 1}, {key, sizeof(key) - 1}};
    /* python3: hmac.new(b"zoom-secret-token", b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256)
     * .hexdigest(); the same with openssl dgst -sha256 -hmac zoom-secret-token */
    static const char want[] =
        "{\"plainToken\":\"qgg8vlvZRS6UYooatFL8Aw\",\"encryptedToken\":"
        "\"d9e0d764a78494688ba3f2d5c0ed4ca311394b4834d959759213424d2df961e3\"}";
    (void)state;

    src.secrets = secrets;
    src.n_secrets = 2;
    assert_int_equal(hq_event_extract(&src, &req, &secrets[1], &meta, &reason), HQ_OK);
    assert_null(reason);
    assert_true(meta.handshake);
    assert_string_equal(meta.handshake_body, want);
    assert_string_equal(meta.handshake_content_type, "application/json");
    assert_string_equal(meta.type, "endpoint.url_validation");
    assert_true(meta.id_generated);
    hq_event_meta_free(&meta);

    /* without the verified secret, the first configured secret is used */
    src.secrets = &secrets[1];
    src.n_secrets = 1;
    assert_int_equal(hq_event_extract(&src, &req, NULL, &meta, &reason), HQ_OK);
    assert_string_equal(meta.handshake_body, want);
    hq_event_meta_free(&meta);
    src.n_secrets = 0;
    src.secrets = NULL;
    expect_fail(&src, &req, "no_secret");
    free(body);

    src.secrets = secrets;
    src.n_secrets = 2;
    req = REQ_JSON("{\"event\":\"endpoint.url_validation\",\"payload\":{}}");
    expect_fail(&src, &req, "bad_handshake");
    req = REQ_JSON("{\"event\":\"endpoint.url_validation\",\"payload\":{\"plainToken\":7}}");
    expect_fail(&src, &req, "bad_handshake");
    req = REQ_JSON("{\"event\":\"endpoint.url_validation\"}");
    expect_fail(&src, &req, "bad_handshake");
}

/* ---------------------------------------------------------------------------------------- */
/* Routing keys                                                                              */

static void test_routing_key(void **state)
{
    static const struct {
        const char *src, *type, *want;
    } cases[] = {
        {"github", "push", "github.push"},
        {"shop", "products/create", "shop.products.create"},
        {"gitlab", "Push Hook", "gitlab.push_hook"},
        {"stripe", "invoice.payment_failed", "stripe.invoice.payment_failed"},
        {"s", "MiXeD.Case-1_x", "s.mixed.case-1_x"},
        {"s", "a*b#c", "s.a_b_c"},
        {"s", "caf\xc3\xa9", "s.caf__"},
        {"s", "\x01\x7f\xff", "s.___"},
        {"s", "/weather", "s..weather"},
        {"s", "a b\tc", "s.a_b_c"},
        {"s", "x:y@z+1,2;3", "s.x_y_z_1_2_3"},
        {"s", "", "s._"},
    };
    char longtype[301], *rk, src64[65], src253[254], src254[255];
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rk = hq_routing_key(cases[i].src, cases[i].type);
        assert_non_null(rk);
        assert_string_equal(rk, cases[i].want);
        free(rk);
    }
    memset(longtype, 'A', 300);
    longtype[300] = '\0';
    rk = hq_routing_key("s", longtype);
    assert_non_null(rk);
    assert_int_equal(strlen(rk), 2 + 200);
    assert_int_equal(rk[2], 'a');
    assert_int_equal(rk[201], 'a');
    free(rk);
    /* the key must fit an AMQP short string */
    memset(src64, 'n', 64);
    src64[64] = '\0';
    rk = hq_routing_key(src64, longtype);
    assert_non_null(rk);
    assert_int_equal(strlen(rk), 255);
    free(rk);
    memset(src253, 'n', 253);
    src253[253] = '\0';
    rk = hq_routing_key(src253, "push");
    assert_non_null(rk);
    assert_int_equal(strlen(rk), 255);
    assert_int_equal(rk[254], 'p');
    free(rk);
    memset(src254, 'n', 254);
    src254[254] = '\0';
    assert_null(hq_routing_key(src254, "push"));
    assert_null(hq_routing_key(NULL, "push"));
    assert_null(hq_routing_key("s", NULL));
}

/* ---------------------------------------------------------------------------------------- */
/* UUIDv7                                                                                    */

static uint64_t uuid_ms(const char *u)
{
    char hex[13];

    memcpy(hex, u, 8);
    memcpy(hex + 8, u + 9, 4);
    hex[12] = '\0';
    return strtoull(hex, NULL, 16);
}

static void test_uuid7_format(void **state)
{
    char u[37], prev[37];
    int64_t before = hq_now_ms(), after;
    int i, seen_variant[4] = {0};
    (void)state;

    hq_uuid7(u);
    after = hq_now_ms();
    assert_true(is_uuid7(u));
    assert_true(uuid_ms(u) >= (uint64_t)before);
    assert_true(uuid_ms(u) <= (uint64_t)after + 1);
    /* monotonic (text order == byte order) and unique over a burst */
    memcpy(prev, u, 37);
    for (i = 0; i < 20000; i++) {
        hq_uuid7(u);
        assert_true(is_uuid7(u));
        if (strcmp(u, prev) <= 0) fail_msg("not monotonic: %s after %s", u, prev);
        seen_variant[strchr("89ab", u[19]) - "89ab"]++;
        memcpy(prev, u, 37);
    }
    /* the two low variant-nibble bits are random */
    for (i = 0; i < 4; i++)
        assert_true(seen_variant[i] > 0);
}

#define UUID_THREADS 4
#define UUID_PER_THREAD 5000

static char uuid_all[UUID_THREADS * UUID_PER_THREAD][37];

static void *uuid_worker(void *arg)
{
    char(*mine)[37] = arg;
    int i;

    for (i = 0; i < UUID_PER_THREAD; i++) {
        hq_uuid7(mine[i]);
        if (i > 0 && strcmp(mine[i], mine[i - 1]) <= 0) return (void *)1;
    }
    return NULL;
}

static int cmp_uuid(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_uuid7_threads(void **state)
{
    pthread_t t[UUID_THREADS];
    int i;
    (void)state;

    for (i = 0; i < UUID_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, uuid_worker, uuid_all[i * UUID_PER_THREAD]),
                         0);
    for (i = 0; i < UUID_THREADS; i++) {
        void *r = NULL;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_null(r);
    }
    qsort(uuid_all, UUID_THREADS * UUID_PER_THREAD, 37, cmp_uuid);
    for (i = 1; i < UUID_THREADS * UUID_PER_THREAD; i++)
        assert_true(strcmp(uuid_all[i - 1], uuid_all[i]) < 0);
}

/* ---------------------------------------------------------------------------------------- */
/* hq_msg and its encoding                                                                   */

static void test_msg_headers(void **state)
{
    struct hq_msg m, c;
    const struct hq_hdr *h;
    char key129[130];
    int i;
    (void)state;

    memset(&m, 0, sizeof(m));
    assert_int_equal(hq_msg_add_str(&m, "hookmq-source", "github"), HQ_OK);
    assert_int_equal(hq_msg_add_long(&m, "hookmq-received-at", 1700000000123), HQ_OK);
    assert_int_equal(hq_msg_add_str(&m, "hookmq-source", "gh2"), HQ_OK); /* replaces */
    assert_int_equal(m.n_headers, 2);
    h = hq_msg_header(&m, "hookmq-source");
    assert_non_null(h);
    assert_int_equal(h->type, HQ_HDR_STR);
    assert_string_equal(h->str, "gh2");
    h = hq_msg_header(&m, "hookmq-received-at");
    assert_non_null(h);
    assert_int_equal(h->type, HQ_HDR_LONG);
    assert_true(h->num == 1700000000123);
    assert_null(hq_msg_header(&m, "HOOKMQ-SOURCE")); /* AMQP keys are case-sensitive */
    assert_null(hq_msg_header(&m, "nope"));
    /* a type change through replacement */
    assert_int_equal(hq_msg_add_long(&m, "hookmq-source", -5), HQ_OK);
    h = hq_msg_header(&m, "hookmq-source");
    assert_int_equal(h->type, HQ_HDR_LONG);
    assert_null(h->str);
    assert_int_equal(hq_msg_add_str(&m, "hookmq-source", "github"), HQ_OK);

    memset(key129, 'k', 129);
    key129[129] = '\0';
    assert_int_equal(hq_msg_add_str(&m, key129, "v"), HQ_EINVAL);
    assert_int_equal(hq_msg_add_long(&m, key129, 1), HQ_EINVAL);
    key129[128] = '\0';
    assert_int_equal(hq_msg_add_str(&m, key129, "v"), HQ_OK);
    assert_int_equal(hq_msg_add_str(&m, "", "v"), HQ_EINVAL);
    assert_int_equal(hq_msg_add_str(&m, NULL, "v"), HQ_EINVAL);
    assert_int_equal(hq_msg_add_str(&m, "k", NULL), HQ_EINVAL);

    m.routing_key = strdup("github.push");
    m.message_id = strdup("id-1");
    m.body = malloc(3);
    memcpy(m.body, "a\0b", 3);
    m.body_len = 3;
    assert_int_equal(hq_msg_copy(&m, &c), HQ_OK);
    assert_string_equal(c.routing_key, "github.push");
    assert_ptr_not_equal(c.routing_key, m.routing_key);
    assert_null(c.content_type);
    assert_int_equal(c.n_headers, m.n_headers);
    assert_ptr_not_equal(c.headers, m.headers);
    assert_string_equal(hq_msg_header(&c, "hookmq-source")->str, "github");
    assert_ptr_not_equal(hq_msg_header(&c, "hookmq-source")->str,
                         hq_msg_header(&m, "hookmq-source")->str);
    assert_int_equal(c.body_len, 3);
    assert_memory_equal(c.body, "a\0b", 3);
    hq_msg_free(&m);
    assert_null(m.headers);
    assert_int_equal(m.n_headers, 0);
    assert_null(m.routing_key);
    /* the copy outlives the original */
    assert_string_equal(hq_msg_header(&c, "hookmq-received-at")->key, "hookmq-received-at");
    hq_msg_free(&c);
    hq_msg_free(NULL);

    /* at most 1024 headers */
    memset(&m, 0, sizeof(m));
    for (i = 0; i < 1024; i++) {
        char k[16];
        snprintf(k, sizeof(k), "h%d", i);
        assert_int_equal(hq_msg_add_long(&m, k, i), HQ_OK);
    }
    assert_int_equal(hq_msg_add_str(&m, "one-more", "x"), HQ_ETOOBIG);
    assert_int_equal(hq_msg_add_long(&m, "one-more", 1), HQ_ETOOBIG);
    assert_int_equal(hq_msg_add_long(&m, "h7", 70), HQ_OK); /* replacing is fine */
    assert_true(hq_msg_header(&m, "h7")->num == 70);
    hq_msg_free(&m);
}

static void sample_msg(struct hq_msg *m)
{
    char big[5000];

    memset(m, 0, sizeof(*m));
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    m->routing_key = strdup("github.push");
    m->message_id = strdup("72d3162e-cc78-11e3-81ab-4c9367dc0958");
    m->content_type = strdup("application/json");
    m->timestamp_s = 1700000000;
    assert_int_equal(hq_msg_add_str(m, "hookmq-source", "github"), HQ_OK);
    assert_int_equal(hq_msg_add_long(m, "hookmq-received-at", 1700000000123), HQ_OK);
    assert_int_equal(hq_msg_add_long(m, "neg", INT64_MIN), HQ_OK);
    assert_int_equal(hq_msg_add_str(m, "empty", ""), HQ_OK);
    assert_int_equal(hq_msg_add_str(m, "big", big), HQ_OK);
    assert_int_equal(hq_msg_add_str(m, "utf", "caf\xc3\xa9 \xff"), HQ_OK);
    m->body = malloc(7);
    memcpy(m->body, "{\0\xff}\n\r ", 7);
    m->body_len = 7;
}

static void assert_msg_equal(const struct hq_msg *a, const struct hq_msg *b)
{
    size_t i;

#define OPTEQ(f)                                                                                   \
    do {                                                                                           \
        if (a->f || b->f) {                                                                        \
            assert_non_null(a->f);                                                                 \
            assert_non_null(b->f);                                                                 \
            assert_string_equal(a->f, b->f);                                                       \
        }                                                                                          \
    } while (0)
    OPTEQ(routing_key);
    OPTEQ(message_id);
    OPTEQ(content_type);
    assert_true(a->timestamp_s == b->timestamp_s);
    assert_int_equal(a->n_headers, b->n_headers);
    for (i = 0; i < a->n_headers; i++) {
        assert_string_equal(a->headers[i].key, b->headers[i].key);
        assert_int_equal(a->headers[i].type, b->headers[i].type);
        if (a->headers[i].type == HQ_HDR_STR)
            assert_string_equal(a->headers[i].str, b->headers[i].str);
        else
            assert_true(a->headers[i].num == b->headers[i].num);
    }
    assert_int_equal(a->body_len, b->body_len);
    if (a->body_len) assert_memory_equal(a->body, b->body, a->body_len);
}

static void assert_zeroed(const struct hq_msg *m)
{
    struct hq_msg z;

    memset(&z, 0, sizeof(z));
    assert_memory_equal(m, &z, sizeof(z));
}

static void test_msg_roundtrip(void **state)
{
    struct hq_msg m, d;
    struct hq_buf b = HQ_BUF_INIT(1 << 20);
    size_t i, rec;
    (void)state;

    sample_msg(&m);
    assert_int_equal(hq_buf_append(&b, "prefix", 6), HQ_OK);
    assert_int_equal(hq_msg_encode(&m, &b), HQ_OK);
    rec = b.len - 6;
    assert_memory_equal(b.data + 6, "HQEV\x01", 5);
    assert_int_equal(b.data[6 + 5] | b.data[6 + 6] << 8 | b.data[6 + 7] << 16, rec);
    assert_int_equal(hq_msg_decode(b.data + 6, rec, &d), HQ_OK);
    assert_msg_equal(&m, &d);
    hq_msg_free(&d);

    /* every proper prefix fails, and so does a trailing byte */
    for (i = 0; i < rec; i++) {
        memset(&d, 0x5a, sizeof(d));
        assert_int_equal(hq_msg_decode(b.data + 6, i, &d), HQ_EINVAL);
        assert_zeroed(&d);
    }
    assert_int_equal(hq_buf_append(&b, "\0", 1), HQ_OK);
    assert_int_equal(hq_msg_decode(b.data + 6, rec + 1, &d), HQ_EINVAL);
    assert_zeroed(&d);
    b.len--;
    /* every single-byte corruption is caught */
    for (i = 0; i < rec; i++) {
        unsigned char *p = b.data + 6 + i, save = *p;
        int bit;
        for (bit = 0; bit < 8; bit += 3) {
            *p = (unsigned char)(save ^ (1u << bit));
            memset(&d, 0x5a, sizeof(d));
            assert_int_equal(hq_msg_decode(b.data + 6, rec, &d), HQ_EINVAL);
            assert_zeroed(&d);
        }
        *p = save;
    }
    assert_int_equal(hq_msg_decode(b.data + 6, rec, &d), HQ_OK);
    hq_msg_free(&d);
    hq_msg_free(&m);

    /* NULL strings, no headers, empty body */
    memset(&m, 0, sizeof(m));
    m.timestamp_s = -1;
    hq_buf_reset(&b);
    assert_int_equal(hq_msg_encode(&m, &b), HQ_OK);
    assert_int_equal(hq_msg_decode(b.data, b.len, &d), HQ_OK);
    assert_null(d.routing_key);
    assert_null(d.message_id);
    assert_null(d.content_type);
    assert_null(d.body);
    assert_int_equal(d.body_len, 0);
    assert_true(d.timestamp_s == -1);
    hq_msg_free(&d);
    /* empty strings stay empty, not NULL */
    m.routing_key = strdup("");
    hq_buf_reset(&b);
    assert_int_equal(hq_msg_encode(&m, &b), HQ_OK);
    assert_int_equal(hq_msg_decode(b.data, b.len, &d), HQ_OK);
    assert_non_null(d.routing_key);
    assert_string_equal(d.routing_key, "");
    hq_msg_free(&d);
    hq_msg_free(&m);
    hq_buf_free(&b);
    assert_int_equal(hq_msg_decode(NULL, 0, &d), HQ_EINVAL);
}

static void test_msg_encode_caps(void **state)
{
    struct hq_msg m;
    struct hq_buf b = HQ_BUF_INIT(1 << 20), small = HQ_BUF_INIT(64);
    char s256[257];
    (void)state;

    memset(s256, 'r', 256);
    s256[256] = '\0';
    sample_msg(&m);
    assert_int_equal(hq_buf_append(&b, "keep", 4), HQ_OK);
    free(m.routing_key);
    m.routing_key = strdup(s256);
    assert_int_equal(hq_msg_encode(&m, &b), HQ_EINVAL);
    assert_int_equal(b.len, 4); /* restored */
    assert_string_equal((char *)b.data, "keep");
    s256[255] = '\0';
    free(m.routing_key);
    m.routing_key = strdup(s256);
    assert_int_equal(hq_msg_encode(&m, &b), HQ_OK);
    /* a header that breaks the format's caps */
    free(m.headers[0].str);
    m.headers[0].str = NULL;
    b.len = 4;
    assert_int_equal(hq_msg_encode(&m, &b), HQ_EINVAL);
    assert_int_equal(b.len, 4);
    m.headers[0].str = strdup("x");
    m.headers[0].type = (enum hq_hdr_type)7;
    assert_int_equal(hq_msg_encode(&m, &b), HQ_EINVAL);
    m.headers[0].type = HQ_HDR_STR;
    /* out's own cap */
    assert_int_equal(hq_msg_encode(&m, &small), HQ_ETOOBIG);
    assert_int_equal(small.len, 0);
    hq_msg_free(&m);
    hq_buf_free(&b);
    hq_buf_free(&small);
}

/* Hand-made records with a correct CRC, to reach the field checks behind it. */
static uint32_t test_crc32(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    size_t i;
    int k;

    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

static size_t put32(unsigned char *p, size_t o, uint32_t v)
{
    p[o] = (unsigned char)v;
    p[o + 1] = (unsigned char)(v >> 8);
    p[o + 2] = (unsigned char)(v >> 16);
    p[o + 3] = (unsigned char)(v >> 24);
    return o + 4;
}

/* body is the part after the 17-byte fixed head; returns the record length. */
static size_t make_record(unsigned char *rec, const unsigned char *fields, size_t flen)
{
    size_t n = 17 + flen + 4;

    memcpy(rec, "HQEV\x01", 5);
    put32(rec, 5, (uint32_t)n);
    memset(rec + 9, 0, 8);
    memcpy(rec + 17, fields, flen);
    put32(rec, 17 + flen, test_crc32(rec, 17 + flen));
    return n;
}

static void test_msg_decode_hostile(void **state)
{
    unsigned char f[600], rec[700];
    struct hq_msg d;
    size_t o, n;
    (void)state;

    assert_int_equal(test_crc32((const unsigned char *)"123456789", 9), 0xCBF43926u);

    /* minimal valid record: three NULL strings, no headers, empty body */
    o = put32(f, 0, 0xFFFFFFFFu);
    o = put32(f, o, 0xFFFFFFFFu);
    o = put32(f, o, 0xFFFFFFFFu);
    o = put32(f, o, 0);
    o = put32(f, o, 0);
    n = make_record(rec, f, o);
    assert_int_equal(hq_msg_decode(rec, n, &d), HQ_OK);
    hq_msg_free(&d);

    /* a string longer than 255 */
    o = put32(f, 0, 256);
    memset(f + o, 'a', 256);
    o += 256;
    o = put32(f, o, 0xFFFFFFFFu);
    o = put32(f, o, 0xFFFFFFFFu);
    o = put32(f, o, 0);
    o = put32(f, o, 0);
    n = make_record(rec, f, o);
    assert_int_equal(hq_msg_decode(rec, n, &d), HQ_EINVAL);
    assert_zeroed(&d);

    /* a NUL inside a string */
    o = put32(f, 0, 3);
    memcpy(f + o, "a\0b", 3);
    o += 3;
    o = put32(f, o, 0xFFFFFFFFu);
    o = put32(f, o, 0xFFFFFFFFu);
    o = put32(f, o, 0);
    o = put32(f, o, 0);
    n = make_record(rec, f, o);
    assert_int_equal(hq_msg_decode(rec, n, &d), HQ_EINVAL);

    /* a string length that runs past the end */
    o = put32(f, 0, 200);
    o = put32(f, o, 0);
    n = make_record(rec, f, o);
    assert_int_equal(hq_msg_decode(rec, n, &d), HQ_EINVAL);

    /* header count over the cap, and one the input cannot hold */
    o = put32(f, 0, 0xFFFFFFFFu);
    o = put32(f, o, 0xFFFFFFFFu);
    o = put32(f, o, 0xFFFFFFFFu);
    o = put32(f, o, 1025);
    o = put32(f, o, 0);
    n = make_record(rec, f, o);
    assert_int_equal(hq_msg_decode(rec, n, &d), HQ_EINVAL);
    put32(f, 12, 1000);
    n = make_record(rec, f, o);
    assert_int_equal(hq_msg_decode(rec, n, &d), HQ_EINVAL);

    /* header key of length 0, of 129, an unknown type, a value length past the end */
    {
        static const unsigned char bad_hdrs[][12] = {
            {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
            {129, 'k', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
            {1, 'k', 2, 0, 0, 0, 0, 0, 0, 0, 0, 0},
            {1, 'k', 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0},
            {1, '\0', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        };
        size_t k;
        for (k = 0; k < sizeof(bad_hdrs) / sizeof(bad_hdrs[0]); k++) {
            o = put32(f, 0, 0xFFFFFFFFu);
            o = put32(f, o, 0xFFFFFFFFu);
            o = put32(f, o, 0xFFFFFFFFu);
            o = put32(f, o, 1);
            memcpy(f + o, bad_hdrs[k], 12);
            o += 12;
            o = put32(f, o, 0);
            n = make_record(rec, f, o);
            assert_int_equal(hq_msg_decode(rec, n, &d), HQ_EINVAL);
            assert_zeroed(&d);
        }
        /* and the good one: key "k", long 0 */
        o = put32(f, 0, 0xFFFFFFFFu);
        o = put32(f, o, 0xFFFFFFFFu);
        o = put32(f, o, 0xFFFFFFFFu);
        o = put32(f, o, 1);
        memcpy(f + o, "\x01k\x01\0\0\0\0\0\0\0\0", 11);
        o += 11;
        o = put32(f, o, 0);
        n = make_record(rec, f, o);
        assert_int_equal(hq_msg_decode(rec, n, &d), HQ_OK);
        assert_int_equal(d.n_headers, 1);
        assert_int_equal(d.headers[0].type, HQ_HDR_LONG);
        hq_msg_free(&d);
    }

    /* body length larger than what is left, and smaller (trailing bytes) */
    o = put32(f, 0, 0xFFFFFFFFu);
    o = put32(f, o, 0xFFFFFFFFu);
    o = put32(f, o, 0xFFFFFFFFu);
    o = put32(f, o, 0);
    o = put32(f, o, 5);
    memcpy(f + o, "abcd", 4);
    n = make_record(rec, f, o + 4);
    assert_int_equal(hq_msg_decode(rec, n, &d), HQ_EINVAL);
    put32(f, o - 4, 3);
    n = make_record(rec, f, o + 4);
    assert_int_equal(hq_msg_decode(rec, n, &d), HQ_EINVAL);
    put32(f, o - 4, 4);
    n = make_record(rec, f, o + 4);
    assert_int_equal(hq_msg_decode(rec, n, &d), HQ_OK);
    assert_int_equal(d.body_len, 4);
    hq_msg_free(&d);

    /* wrong version, wrong magic, wrong length field (CRC fixed each time) */
    rec[4] = 2;
    put32(rec, n - 4, test_crc32(rec, n - 4));
    assert_int_equal(hq_msg_decode(rec, n, &d), HQ_EINVAL);
    rec[4] = 1;
    rec[0] = 'X';
    put32(rec, n - 4, test_crc32(rec, n - 4));
    assert_int_equal(hq_msg_decode(rec, n, &d), HQ_EINVAL);
    rec[0] = 'H';
    put32(rec, 5, (uint32_t)n + 1);
    put32(rec, n - 4, test_crc32(rec, n - 4));
    assert_int_equal(hq_msg_decode(rec, n, &d), HQ_EINVAL);
}

/* ---------------------------------------------------------------------------------------- */
/* Kept headers and the built message                                                       */

static void test_keep_header(void **state)
{
    struct hq_source_cfg src;
    enum hq_scheme s;
    (void)state;

    for (s = 0; s < HQ_SCHEME__COUNT; s++) {
        src = mksrc(s, "x");
        src.header = "Authorization";
        src.event_type = "header:Cookie";
        src.event_id = "header:X-Gitlab-Token";
        assert_false(hq_event_keep_header(&src, "Authorization"));
        assert_false(hq_event_keep_header(&src, "authorization"));
        assert_false(hq_event_keep_header(&src, "Proxy-Authorization"));
        assert_false(hq_event_keep_header(&src, "Cookie"));
        assert_false(hq_event_keep_header(&src, "COOKIE"));
        assert_false(hq_event_keep_header(&src, "Set-Cookie"));
        assert_false(hq_event_keep_header(&src, "X-Gitlab-Token"));
        assert_false(hq_event_keep_header(&src, "x-gitlab-token"));
        assert_false(hq_event_keep_header(&src, "Content-Length"));
        assert_false(hq_event_keep_header(&src, "Host"));
        assert_false(hq_event_keep_header(&src, "X-Forwarded-For"));
        assert_false(hq_event_keep_header(&src, "User-Agent"));
        assert_false(hq_event_keep_header(&src, ""));
        assert_false(hq_event_keep_header(&src, NULL));
    }
    assert_false(hq_event_keep_header(NULL, "X-GitHub-Event"));

    src = mksrc(HQ_SCHEME_GITHUB, "gh");
    assert_true(hq_event_keep_header(&src, "X-GitHub-Event"));
    assert_true(hq_event_keep_header(&src, "x-github-event"));
    assert_true(hq_event_keep_header(&src, "X-GitHub-Delivery"));
    assert_true(hq_event_keep_header(&src, "X-GitHub-Hook-ID"));
    assert_true(hq_event_keep_header(&src, "X-GitHub-Hook-Installation-Target-ID"));
    assert_true(hq_event_keep_header(&src, "X-GitHub-Hook-Installation-Target-Type"));
    assert_true(hq_event_keep_header(&src, "X-Hub-Signature-256"));
    assert_true(hq_event_keep_header(&src, "X-Hub-Signature"));
    assert_false(hq_event_keep_header(&src, "X-GitHub-Event2"));
    assert_false(hq_event_keep_header(&src, "X-GitHub-Even"));
    assert_false(hq_event_keep_header(&src, "Stripe-Signature"));

    src = mksrc(HQ_SCHEME_STRIPE, "st");
    assert_true(hq_event_keep_header(&src, "stripe-signature"));
    assert_false(hq_event_keep_header(&src, "X-GitHub-Event"));

    src = mksrc(HQ_SCHEME_STANDARD, "sw");
    assert_true(hq_event_keep_header(&src, "Webhook-Id"));
    assert_true(hq_event_keep_header(&src, "webhook-timestamp"));
    assert_true(hq_event_keep_header(&src, "webhook-signature"));
    assert_true(hq_event_keep_header(&src, "svix-id"));
    assert_true(hq_event_keep_header(&src, "svix-timestamp"));
    assert_true(hq_event_keep_header(&src, "svix-signature"));

    src = mksrc(HQ_SCHEME_SHOPIFY, "sh");
    assert_true(hq_event_keep_header(&src, "X-Shopify-Topic"));
    assert_true(hq_event_keep_header(&src, "X-Shopify-Hmac-Sha256"));
    assert_true(hq_event_keep_header(&src, "X-Shopify-Shop-Domain"));
    assert_true(hq_event_keep_header(&src, "X-Shopify-Webhook-Id"));
    assert_true(hq_event_keep_header(&src, "X-Shopify-API-Version"));
    assert_true(hq_event_keep_header(&src, "X-Shopify-Triggered-At"));
    assert_true(hq_event_keep_header(&src, "X-Shopify-Event-Id"));
    assert_true(hq_event_keep_header(&src, "shopify-topic"));
    assert_false(hq_event_keep_header(&src, "X-Shopify-Access-Token"));

    src = mksrc(HQ_SCHEME_SLACK, "sl");
    assert_true(hq_event_keep_header(&src, "X-Slack-Request-Timestamp"));
    assert_true(hq_event_keep_header(&src, "X-Slack-Signature"));
    assert_true(hq_event_keep_header(&src, "X-Slack-Retry-Num"));
    assert_true(hq_event_keep_header(&src, "X-Slack-Retry-Reason"));

    src = mksrc(HQ_SCHEME_GITLAB, "gl");
    assert_true(hq_event_keep_header(&src, "X-Gitlab-Event"));
    assert_true(hq_event_keep_header(&src, "X-Gitlab-Event-UUID"));
    assert_true(hq_event_keep_header(&src, "X-Gitlab-Instance"));
    assert_true(hq_event_keep_header(&src, "X-Gitlab-Webhook-UUID"));
    assert_true(hq_event_keep_header(&src, "Idempotency-Key"));
    assert_false(hq_event_keep_header(&src, "X-Gitlab-Token"));

    src = mksrc(HQ_SCHEME_TWILIO, "tw");
    assert_true(hq_event_keep_header(&src, "X-Twilio-Signature"));
    assert_true(hq_event_keep_header(&src, "I-Twilio-Idempotency-Token"));
    src = mksrc(HQ_SCHEME_PADDLE, "pd");
    assert_true(hq_event_keep_header(&src, "Paddle-Signature"));
    src = mksrc(HQ_SCHEME_SQUARE, "sq");
    assert_true(hq_event_keep_header(&src, "X-Square-HmacSha256-Signature"));
    assert_true(hq_event_keep_header(&src, "Square-Environment"));
    src = mksrc(HQ_SCHEME_ZOOM, "zm");
    assert_true(hq_event_keep_header(&src, "x-zm-request-timestamp"));
    assert_true(hq_event_keep_header(&src, "x-zm-signature"));
    assert_true(hq_event_keep_header(&src, "x-zm-trackingid"));
    src = mksrc(HQ_SCHEME_MAILGUN, "mg");
    assert_false(hq_event_keep_header(&src, "X-Mailgun-Signature"));

    /* hmac: the configured signature header; selectors' headers */
    src = mksrc(HQ_SCHEME_HMAC, "orders");
    src.header = "X-Signature";
    src.event_type = "header:X-Event";
    src.event_id = "header:x-request-id";
    assert_true(hq_event_keep_header(&src, "x-signature"));
    assert_true(hq_event_keep_header(&src, "X-Event"));
    assert_true(hq_event_keep_header(&src, "X-Request-Id"));
    assert_false(hq_event_keep_header(&src, "X-Other"));
    src.event_type = "json:/X-Other";
    assert_false(hq_event_keep_header(&src, "X-Other"));

    /* token: its header is the secret, even when a selector names it */
    src = mksrc(HQ_SCHEME_TOKEN, "tok");
    src.header = "X-Hook-Token";
    src.event_id = "header:X-Hook-Token";
    assert_false(hq_event_keep_header(&src, "X-Hook-Token"));
    assert_false(hq_event_keep_header(&src, "x-hook-token"));
    src = mksrc(HQ_SCHEME_BASIC, "b");
    assert_false(hq_event_keep_header(&src, "Authorization"));
    src = mksrc(HQ_SCHEME_NONE, "n");
    assert_false(hq_event_keep_header(&src, "X-Signature"));
}

static void test_build(void **state)
{
    size_t n;
    unsigned char *body = load("github_push.json", &n);
    struct hq_source_cfg src = mksrc(HQ_SCHEME_GITHUB, "github");
    char *longval = malloc(10001);
    struct hq_header h[] = {
        {"Host", "hooks.example.com"},
        {"Authorization", "Bearer secret"},
        {"Cookie", "session=1"},
        {"X-GitHub-Event", "push"},
        {"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
        {"x-hub-signature-256",
         "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
        {"X-GitHub-Event", "second-copy"},
        {"X-GitHub-Hook-ID", NULL},
        {"X-GitHub-Hook-Installation-Target-Type", ""},
        {"X-Hub-Signature", ""},
    };
    struct hq_request_view req = mkreq(h, 10, body, n, "application/json");
    struct hq_event_meta meta;
    struct hq_msg m;
    const struct hq_hdr *hd;
    const char *reason;
    size_t i;
    (void)state;

    assert_int_equal(hq_event_extract(&src, &req, NULL, &meta, &reason), HQ_OK);
    assert_int_equal(hq_event_build(&src, &req, &meta, 1700000000123, &m), HQ_OK);
    assert_string_equal(m.routing_key, "github.push");
    assert_string_equal(m.message_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_string_equal(m.content_type, "application/json");
    assert_true(m.timestamp_s == 1700000000);
    assert_int_equal(m.body_len, n);
    assert_memory_equal(m.body, body, n);
    assert_ptr_not_equal(m.body, body);
    assert_string_equal(hq_msg_header(&m, "hookmq-source")->str, "github");
    assert_string_equal(hq_msg_header(&m, "hookmq-event-type")->str, "push");
    hd = hq_msg_header(&m, "hookmq-received-at");
    assert_non_null(hd);
    assert_int_equal(hd->type, HQ_HDR_LONG);
    assert_true(hd->num == 1700000000123);
    assert_string_equal(hq_msg_header(&m, "hookmq-scheme")->str, "github");
    assert_string_equal(hq_msg_header(&m, "http-x-github-event")->str, "push"); /* first copy */
    assert_string_equal(hq_msg_header(&m, "http-x-github-delivery")->str,
                        "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_non_null(hq_msg_header(&m, "http-x-hub-signature-256"));
    assert_string_equal(hq_msg_header(&m, "http-x-github-hook-installation-target-type")->str, "");
    assert_null(hq_msg_header(&m, "http-x-github-hook-id"));
    for (i = 0; i < m.n_headers; i++) {
        assert_true(strcmp(m.headers[i].key, "http-authorization") != 0);
        assert_true(strcmp(m.headers[i].key, "http-cookie") != 0);
        assert_true(strcmp(m.headers[i].key, "http-host") != 0);
    }
    assert_int_equal(m.n_headers, 4 + 5);
    /* it survives the spool encoding */
    {
        struct hq_buf b = HQ_BUF_INIT(1 << 20);
        struct hq_msg d;
        assert_int_equal(hq_msg_encode(&m, &b), HQ_OK);
        assert_int_equal(hq_msg_decode(b.data, b.len, &d), HQ_OK);
        assert_msg_equal(&m, &d);
        hq_msg_free(&d);
        hq_buf_free(&b);
    }
    hq_msg_free(&m);

    /* long values are cut at 8 KiB; a missing content type stays NULL; negative ms floor */
    memset(longval, 's', 10000);
    longval[10000] = '\0';
    h[5].value = longval;
    req.content_type = NULL;
    assert_int_equal(hq_event_build(&src, &req, &meta, -1, &m), HQ_OK);
    assert_int_equal(strlen(hq_msg_header(&m, "http-x-hub-signature-256")->str), 8192);
    assert_null(m.content_type);
    assert_true(m.timestamp_s == -1);
    hq_msg_free(&m);
    /* the content type may come from the headers */
    {
        struct hq_header h2[] = {{"content-type", "application/x-www-form-urlencoded"}};
        struct hq_request_view r2 = mkreq(h2, 1, NULL, 0, NULL);
        assert_int_equal(hq_event_build(&src, &r2, &meta, 0, &m), HQ_OK);
        assert_string_equal(m.content_type, "application/x-www-form-urlencoded");
        assert_null(m.body);
        assert_int_equal(m.body_len, 0);
        hq_msg_free(&m);
    }
    hq_event_meta_free(&meta);

    /* a generated id, and a shopify topic normalized in the key but raw in the header */
    {
        struct hq_source_cfg s2 = mksrc(HQ_SCHEME_SHOPIFY, "shop");
        struct hq_header h3[] = {{"X-Shopify-Topic", "Products/Create"},
                                 {"X-Shopify-Webhook-Id", "w-1"},
                                 {"X-Shopify-Access-Token", "shpat_secret"}};
        struct hq_request_view r3 = mkreq(h3, 3, "{}", 2, "application/json");
        assert_int_equal(hq_event_extract(&s2, &r3, NULL, &meta, &reason), HQ_OK);
        assert_int_equal(hq_event_build(&s2, &r3, &meta, 5000, &m), HQ_OK);
        assert_string_equal(m.routing_key, "shop.products.create");
        assert_string_equal(hq_msg_header(&m, "hookmq-event-type")->str, "Products/Create");
        assert_string_equal(hq_msg_header(&m, "hookmq-scheme")->str, "shopify");
        assert_string_equal(hq_msg_header(&m, "http-x-shopify-topic")->str, "Products/Create");
        assert_null(hq_msg_header(&m, "http-x-shopify-access-token"));
        hq_msg_free(&m);
        hq_event_meta_free(&meta);
    }
    assert_int_equal(hq_event_build(&src, &req, NULL, 0, &m), HQ_EINVAL);
    assert_zeroed(&m);
    free(longval);
    free(body);
}

static void test_bad_args(void **state)
{
    struct hq_source_cfg src = mksrc(HQ_SCHEME_NONE, "n");
    struct hq_request_view req = mkreq(NULL, 0, NULL, 0, NULL);
    struct hq_event_meta meta;
    const char *reason;
    (void)state;

    assert_int_equal(hq_event_extract(NULL, &req, NULL, &meta, &reason), HQ_EINVAL);
    assert_int_equal(hq_event_extract(&src, NULL, NULL, &meta, &reason), HQ_EINVAL);
    assert_int_equal(hq_event_extract(&src, &req, NULL, NULL, &reason), HQ_EINVAL);
    /* reason may be NULL */
    assert_int_equal(hq_event_extract(&src, &req, NULL, &meta, NULL), HQ_OK);
    hq_event_meta_free(&meta);
    hq_event_meta_free(&meta);
    hq_event_meta_free(NULL);
    /* a body pointer of NULL with a length is refused, not read */
    req.body_len = 5;
    src.event_type = "json:/type";
    expect_fail(&src, &req, "bad_json");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stripe),
        cmocka_unit_test(test_github),
        cmocka_unit_test(test_standard),
        cmocka_unit_test(test_shopify),
        cmocka_unit_test(test_slack),
        cmocka_unit_test(test_gitlab),
        cmocka_unit_test(test_paddle_square_mailgun),
        cmocka_unit_test(test_zoom),
        cmocka_unit_test(test_generic_schemes),
        cmocka_unit_test(test_json_selectors),
        cmocka_unit_test(test_length_caps),
        cmocka_unit_test(test_header_selector),
        cmocka_unit_test(test_form_selector),
        cmocka_unit_test(test_hostile_json),
        cmocka_unit_test(test_slack_handshake),
        cmocka_unit_test(test_zoom_handshake),
        cmocka_unit_test(test_routing_key),
        cmocka_unit_test(test_uuid7_format),
        cmocka_unit_test(test_uuid7_threads),
        cmocka_unit_test(test_msg_headers),
        cmocka_unit_test(test_msg_roundtrip),
        cmocka_unit_test(test_msg_encode_caps),
        cmocka_unit_test(test_msg_decode_hostile),
        cmocka_unit_test(test_keep_header),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_bad_args),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
