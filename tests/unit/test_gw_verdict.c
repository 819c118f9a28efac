/* Unit tests: the gateway's verdict mapping (gateway/verdict.c) and the statuses the verify
 * and extract layers return when an allocation (malloc, or OpenSSL's, which goes through
 * malloc) fails. A server-side failure must never look like the request's fault (401/400),
 * and must never let a request through: every allocation of a verify or an extract is failed
 * in turn (the allocation-failure loop of curl's test suite). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gw.h"
#include "hq_event.h"
#include "hq_sig.h"

/* ---- allocation failure injection: glibc lets a program replace malloc; libc, json-c and
 * OpenSSL then allocate through these (exported: the build hides symbols by default). */
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t m);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);

static long fail_at = -1; /* the allocation (0-based, counted from arm()) that fails */
static long alloc_count;
static int failed;

static int should_fail(void)
{
    if (fail_at < 0)
        return 0;
    if (alloc_count++ == fail_at) {
        failed = 1;
        return 1;
    }
    return 0;
}

__attribute__((visibility("default"))) void *malloc(size_t n)
{
    return should_fail() ? NULL : __libc_malloc(n);
}

__attribute__((visibility("default"))) void *calloc(size_t n, size_t m)
{
    return should_fail() ? NULL : __libc_calloc(n, m);
}

__attribute__((visibility("default"))) void *realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __libc_realloc(p, n);
}

__attribute__((visibility("default"))) void free(void *p)
{
    __libc_free(p);
}

/* strdup and strndup too: glibc's would reach malloc above anyway, but a sanitizer's
 * interceptors allocate from the sanitizer's heap, whose blocks free() above cannot take. */
__attribute__((visibility("default"))) char *strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = malloc(len + 1);

    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

__attribute__((visibility("default"))) char *strdup(const char *s)
{
    return strndup(s, strlen(s));
}

static void arm(long n)
{
    alloc_count = 0;
    failed = 0;
    fail_at = n;
}

static void disarm(void)
{
    fail_at = -1;
}

/* ---- helpers */

static void init_src(struct hq_source_cfg *src, struct hq_secret *sec, enum hq_scheme s,
                     const char *secret)
{
    memset(src, 0, sizeof(*src));
    snprintf(src->name, sizeof(src->name), "t");
    src->scheme = s;
    src->tolerance_s = -1;
    sec->data = (unsigned char *)secret; /* read only by the verifier */
    sec->len = strlen(secret);
    src->secrets = sec;
    src->n_secrets = 1;
}

static void test_mapping(void **state)
{
    static const struct {
        enum gw_stage stage;
        int rc;
        const char *reason;
        int status;
        const char *want_reason;
        int retry_after;
    } rows[] = {
        {GW_STAGE_BODY, HQ_ETOOBIG, NULL, 413, NULL, 0},
        {GW_STAGE_BODY, HQ_ETIMEDOUT, NULL, 408, "body_timeout", 0},
        {GW_STAGE_BODY, HQ_EIO, NULL, 400, "incomplete_body", 0},
        {GW_STAGE_BODY, HQ_ENOMEM, NULL, 503, "internal", GW_RETRY_AFTER_INTERNAL_S},
        {GW_STAGE_VERIFY, HQ_EAUTH, "bad_signature", 401, "bad_signature", 0},
        {GW_STAGE_VERIFY, HQ_ESTALE, "stale_timestamp", 401, "stale_timestamp", 0},
        {GW_STAGE_VERIFY, HQ_ENOMEM, "internal", 503, "internal", GW_RETRY_AFTER_INTERNAL_S},
        {GW_STAGE_VERIFY, HQ_EINVAL, "malformed_signature", 503, "internal",
         GW_RETRY_AFTER_INTERNAL_S},
        {GW_STAGE_EXTRACT, HQ_EINVAL, "missing_id", 400, "missing_id", 0},
        {GW_STAGE_EXTRACT, HQ_EINVAL, NULL, 400, "bad_event", 0},
        {GW_STAGE_EXTRACT, HQ_ENOMEM, NULL, 503, "internal", GW_RETRY_AFTER_INTERNAL_S},
    };
    size_t i;

    (void)state;
    assert_int_equal(gw_verdict(GW_STAGE_VERIFY, HQ_OK, NULL).status, 0);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct gw_verdict v = gw_verdict(rows[i].stage, rows[i].rc, rows[i].reason);
        assert_int_equal(v.status, rows[i].status);
        assert_int_equal(v.retry_after, rows[i].retry_after);
        if (rows[i].want_reason)
            assert_string_equal(v.reason, rows[i].want_reason);
        else
            assert_null(v.reason);
    }
}

/* A valid github request under every single allocation failure: HQ_OK or HQ_ENOMEM (503),
 * never HQ_EAUTH (a 401 the provider would not retry). */
static void test_verify_alloc_failure_is_503(void **state)
{
    const char *body = "{\"zen\":\"hi\"}";
    struct hq_source_cfg src;
    struct hq_secret sec;
    struct hq_header h[2];
    struct hq_request_view req = {0};
    struct hq_verify_result vr;
    char hex[65], sig[80];
    long n;
    int rc, ooms = 0;

    (void)state;
    init_src(&src, &sec, HQ_SCHEME_GITHUB, "gh-secret");
    hq_sig_hmac_sha256_hex(&sec, (const unsigned char *)body, strlen(body), hex);
    snprintf(sig, sizeof(sig), "sha256=%s", hex);
    h[0] = (struct hq_header){"X-Hub-Signature-256", sig};
    h[1] = (struct hq_header){"X-GitHub-Event", "push"};
    req.headers = h;
    req.n_headers = 2;
    req.body = (const unsigned char *)body;
    req.body_len = strlen(body);
    assert_int_equal(hq_sig_verify(&src, &req, 1700000000, &vr), HQ_OK);
    for (n = 0; n < 10000; n++) {
        arm(n);
        rc = hq_sig_verify(&src, &req, 1700000000, &vr);
        disarm();
        if (!failed) {
            assert_int_equal(rc, HQ_OK);
            break;
        }
        if (rc != HQ_OK) {
            assert_int_equal(rc, HQ_ENOMEM);
            assert_string_equal(vr.reason, "internal");
            assert_false(vr.has_replay_key);
            assert_int_equal(gw_verdict(GW_STAGE_VERIFY, rc, vr.reason).status, 503);
            ooms++;
        }
    }
    assert_true(n < 10000);
    assert_true(ooms > 0); /* the loop did reach OpenSSL's allocations */
}

/* A wrong token of the secret's length under every allocation failure: never accepted (two
 * zeroed digests must not compare equal), and the failure is a 503, not a 401. */
static void test_token_alloc_failure_never_accepts(void **state)
{
    struct hq_source_cfg src;
    struct hq_secret sec;
    struct hq_header h = {"Authorization", "Bearer XXXXXXXXXXXXXX"}; /* 14 bytes, wrong */
    struct hq_request_view req = {0};
    struct hq_verify_result vr;
    long n;
    int rc, ooms = 0;

    (void)state;
    init_src(&src, &sec, HQ_SCHEME_TOKEN, "bearer-token-1");
    req.headers = &h;
    req.n_headers = 1;
    req.body = (const unsigned char *)"{}";
    req.body_len = 2;
    assert_int_equal(hq_sig_verify(&src, &req, 1700000000, &vr), HQ_EAUTH);
    for (n = 0; n < 10000; n++) {
        arm(n);
        rc = hq_sig_verify(&src, &req, 1700000000, &vr);
        disarm();
        assert_int_not_equal(rc, HQ_OK);
        if (!failed) {
            assert_int_equal(rc, HQ_EAUTH);
            break;
        }
        if (rc == HQ_ENOMEM)
            ooms++;
        else
            assert_int_equal(rc, HQ_EAUTH); /* an allocation the verdict did not need */
    }
    assert_true(n < 10000);
    assert_true(ooms > 0);
}

/* A github event (type and id from headers) under every allocation failure: HQ_OK or
 * HQ_ENOMEM (503), never HQ_EINVAL (a 400 for a valid request). A JSON-typed source cannot be
 * run through this loop: json-c 0.16 itself crashes when an allocation inside
 * json_object_object_add_ex fails (strlen of the NULL key copy). */
static void test_extract_alloc_failure_is_503(void **state)
{
    const char *body = "{\"zen\":\"hi\"}";
    struct hq_source_cfg src;
    struct hq_secret sec;
    struct hq_header h[2] = {{"X-GitHub-Event", "push"},
                             {"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"}};
    struct hq_request_view req = {0};
    struct hq_event_meta meta;
    const char *reason;
    long n;
    int rc, ooms = 0;

    (void)state;
    init_src(&src, &sec, HQ_SCHEME_GITHUB, "gh-secret");
    req.headers = h;
    req.n_headers = 2;
    req.body = (const unsigned char *)body;
    req.body_len = strlen(body);
    req.content_type = "application/json";
    for (n = 0; n < 10000; n++) {
        arm(n);
        rc = hq_event_extract(&src, &req, &sec, &meta, &reason);
        disarm();
        if (rc == HQ_OK)
            hq_event_meta_free(&meta);
        if (!failed) {
            assert_int_equal(rc, HQ_OK);
            break;
        }
        if (rc != HQ_OK) {
            assert_int_equal(rc, HQ_ENOMEM);
            assert_int_equal(gw_verdict(GW_STAGE_EXTRACT, rc, reason).status, 503);
            ooms++;
        }
    }
    assert_true(n < 10000);
    assert_true(ooms > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mapping),
        cmocka_unit_test(test_verify_alloc_failure_is_503),
        cmocka_unit_test(test_token_alloc_failure_never_accepts),
        cmocka_unit_test(test_extract_alloc_failure_is_503),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
