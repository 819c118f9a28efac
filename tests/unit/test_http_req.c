/* test_http_req: header lookup, media types and form decoding (hq_http_req.h), with hostile
 * input: truncated and invalid escapes, NUL bytes, output that does not fit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hq_http_req.h"

static void test_header(void **state)
{
    const struct hq_header h[] = {
        {"content-TYPE", "a/b"}, {NULL, "x"}, {"X-Sig", NULL}, {"x-sig", "1"}, {"X-SIG", "2"},
    };
    struct hq_request_view req = {h, 5, NULL, 0, NULL, NULL};
    bool dup = false;

    (void)state;
    assert_string_equal(hq_req_header(&req, "X-Sig", &dup), "1"); /* NULL value skipped */
    assert_true(dup);
    assert_string_equal(hq_req_header(&req, "Content-Type", &dup), "a/b");
    assert_false(dup);
    assert_null(hq_req_header(&req, "X-Si", NULL));
    assert_null(hq_req_header(&req, "X-Sig2", NULL));
    assert_null(hq_req_header(NULL, "X-Sig", &dup));
    assert_false(dup);
    assert_string_equal(hq_req_content_type(&req), "a/b");
    req.content_type = "c/d";
    assert_string_equal(hq_req_content_type(&req), "c/d");
}

static void test_media_type(void **state)
{
    const char *form = "application/x-www-form-urlencoded";

    (void)state;
    assert_true(hq_media_type_is("application/x-www-form-urlencoded", form));
    assert_true(hq_media_type_is(" Application/X-WWW-Form-Urlencoded ; charset=utf-8", form));
    assert_true(hq_media_type_is("application/json;x=y", "application/json"));
    assert_false(hq_media_type_is("application/jsonx", "application/json"));
    assert_false(hq_media_type_is("application/jso", "application/json"));
    assert_false(hq_media_type_is("", "application/json"));
    assert_false(hq_media_type_is(NULL, "application/json"));
    assert_false(hq_media_type_is("application/x-www-form-urlencoded-evil", form));
}

static void check(const char *in, const char *want, size_t want_n)
{
    unsigned char out[64];
    size_t n = 99;

    assert_true(hq_form_decode((const unsigned char *)in, strlen(in), out, sizeof(out), &n));
    assert_int_equal(n, want_n);
    assert_memory_equal(out, want, want_n);
}

static void test_form_decode(void **state)
{
    unsigned char out[4];
    size_t n = 0;

    (void)state;
    check("a+b%20c", "a b c", 5);
    check("%41%4a%4A", "AJJ", 3);
    check("%00x", "\0x", 2);          /* a NUL byte is data */
    check("100%", "100%", 4);         /* truncated escapes stay literal */
    check("%4", "%4", 2);
    check("%zz%g1", "%zz%g1", 6);     /* so do invalid ones */
    check("%%41", "%A", 2);
    check("", "", 0);
    assert_false(hq_form_decode((const unsigned char *)"abcde", 5, out, 4, &n));
    assert_false(hq_form_decode((const unsigned char *)"%41%42%43%44%45", 15, out, 4, &n));
    assert_true(hq_form_decode((const unsigned char *)"%41%42%43%44", 12, out, 4, &n));
    assert_int_equal(n, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_media_type),
        cmocka_unit_test(test_form_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
