/* Unit tests: core/buf.c (capped buffers, JSON string escaping, taking from a ring). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hq_buf.h"
#include "hq_json.h"

static void test_append_within_cap(void **state)
{
    struct hq_buf b = HQ_BUF_INIT(8);

    (void)state;
    assert_int_equal(hq_buf_append(&b, "abcd", 4), HQ_OK);
    assert_int_equal(hq_buf_append(&b, "efgh", 4), HQ_OK);
    assert_int_equal(b.len, 8);
    assert_string_equal((char *)b.data, "abcdefgh");
    /* one byte past the cap fails and leaves the buffer intact */
    assert_int_equal(hq_buf_append(&b, "i", 1), HQ_ETOOBIG);
    assert_int_equal(b.len, 8);
    assert_string_equal((char *)b.data, "abcdefgh");
    hq_buf_free(&b);
    assert_null(b.data);
    hq_buf_free(&b); /* NULL-safe twice */
}

static void test_append_huge_length_does_not_overflow(void **state)
{
    struct hq_buf b = HQ_BUF_INIT(16);

    (void)state;
    assert_int_equal(hq_buf_append(&b, "x", 1), HQ_OK);
    assert_int_equal(hq_buf_append(&b, "y", SIZE_MAX), HQ_ETOOBIG);
    assert_int_equal(hq_buf_append(&b, "y", SIZE_MAX - 1), HQ_ETOOBIG);
    hq_buf_free(&b);
}

static void test_appendf(void **state)
{
    struct hq_buf b = HQ_BUF_INIT(32);

    (void)state;
    assert_int_equal(hq_buf_appendf(&b, "%s=%d", "n", 42), HQ_OK);
    assert_string_equal((char *)b.data, "n=42");
    assert_int_equal(hq_buf_appendf(&b, "%040d", 1), HQ_ETOOBIG);
    assert_string_equal((char *)b.data, "n=42");
    hq_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal((char *)b.data, "");
    hq_buf_free(&b);
}

static void test_json_escape(void **state)
{
    struct hq_buf b = HQ_BUF_INIT(256);
    const char in[] = "a\"b\\c\n\r\t\x01\x7f/\xc3\xa9";

    (void)state;
    assert_int_equal(hq_buf_append_json_str(&b, in, sizeof(in) - 1), HQ_OK);
    assert_string_equal((char *)b.data, "a\\\"b\\\\c\\n\\r\\t\\u0001\\u007f/\xc3\xa9");
    hq_buf_reset(&b);
    /* embedded NUL is escaped, not a terminator */
    assert_int_equal(hq_buf_append_json_str(&b, "x\0y", 3), HQ_OK);
    assert_string_equal((char *)b.data, "x\\u0000y");
    hq_buf_reset(&b);
    /* output is valid JSON whatever comes in: invalid bytes become U+FFFD, a truncated
     * sequence too, and U+2028/U+2029 (line breaks to JavaScript) are escaped */
    assert_int_equal(hq_buf_append_json_str(&b, "a\xff\xc3" "b\xe2\x80\xa8\xe2\x80\xa9\xe2\x80", 12), HQ_OK);
    assert_string_equal((char *)b.data,
                        "a\xef\xbf\xbd\xef\xbf\xbd" "b\\u2028\\u2029\xef\xbf\xbd\xef\xbf\xbd");
    hq_buf_reset(&b);
    assert_int_equal(hq_json_str(&b, NULL, 0), HQ_OK);
    assert_string_equal((char *)b.data, "\"\"");
    hq_buf_free(&b);
}

static void test_json_escape_respects_cap(void **state)
{
    struct hq_buf b = HQ_BUF_INIT(5);

    (void)state;
    assert_int_equal(hq_buf_append_json_str(&b, "\"\"\"", 3), HQ_ETOOBIG);
    hq_buf_free(&b);
}

/* hq_ring_take_if: ints in a ring; pick takes the values equal to the first one seen, stops at
 * a negative value. */
struct pick_arg {
    bool started;
    int key, calls;
};

static enum hq_ring_pick pick_same(const void *x, void *arg)
{
    struct pick_arg *a = arg;
    int v = *(const int *)x;

    a->calls++;
    if (v < 0)
        return HQ_RING_STOP;
    if (!a->started) {
        a->started = true;
        a->key = v;
        return HQ_RING_TAKE;
    }
    return v == a->key ? HQ_RING_TAKE : HQ_RING_SKIP;
}

/* The ring's elements in order, as a string of digits ('-' for a negative value). */
static void ring_str(const int *r, size_t cap, size_t head, size_t len, char *out)
{
    size_t i;

    for (i = 0; i < len; i++) {
        int v = r[(head + i) % cap];
        out[i] = v < 0 ? '-' : (char)('0' + v);
    }
    out[len] = '\0';
}

static void test_ring_take_if(void **state)
{
    /* 1 2 1 2 1 2 1, starting at index 5 of 8 (wraps) */
    int r[8] = {0}, out[8];
    const int in[7] = {1, 2, 1, 2, 1, 2, 1};
    size_t head = 5, len = 7, i, n;
    struct pick_arg a = {0};
    char s[16];

    (void)state;
    for (i = 0; i < len; i++)
        r[(head + i) % 8] = in[i];
    n = hq_ring_take_if(r, sizeof(int), 8, &head, &len, out, 8, 8, pick_same, &a);
    assert_int_equal(n, 4);
    for (i = 0; i < n; i++)
        assert_int_equal(out[i], 1);
    assert_int_equal(len, 3);
    assert_int_equal(head, (5 + 4) % 8);
    ring_str(r, 8, head, len, s);
    assert_string_equal(s, "222");
    /* the slots given up are zeroed */
    assert_int_equal(r[5], 0);
    assert_int_equal(r[0], 0);

    /* the rest: all of one key */
    memset(&a, 0, sizeof(a));
    n = hq_ring_take_if(r, sizeof(int), 8, &head, &len, out, 8, 8, pick_same, &a);
    assert_int_equal(n, 3);
    assert_int_equal(len, 0);
    /* empty: nothing asked, nothing taken */
    memset(&a, 0, sizeof(a));
    n = hq_ring_take_if(r, sizeof(int), 8, &head, &len, out, 8, 8, pick_same, &a);
    assert_int_equal(n, 0);
    assert_int_equal(a.calls, 0);
}

static void test_ring_take_if_limits(void **state)
{
    int r[8], out[8];
    const int in[8] = {3, 4, 3, 3, 4, 3, -1, 3};
    size_t head = 0, len = 8, n;
    struct pick_arg a = {0};
    char s[16];

    (void)state;
    memcpy(r, in, sizeof(r));
    /* max: two taken, the scan ends there; the 4 between them stays in its place */
    n = hq_ring_take_if(r, sizeof(int), 8, &head, &len, out, 2, 8, pick_same, &a);
    assert_int_equal(n, 2);
    ring_str(r, 8, head, len, s);
    assert_string_equal(s, "4343-3");
    /* scan: only the oldest 2 are looked at (4, 3): the 3 is another key */
    memset(&a, 0, sizeof(a));
    n = hq_ring_take_if(r, sizeof(int), 8, &head, &len, out, 8, 2, pick_same, &a);
    assert_int_equal(n, 1);
    assert_int_equal(a.calls, 2);
    ring_str(r, 8, head, len, s);
    assert_string_equal(s, "343-3");
    /* stop: the scan ends at the -1, the 3 behind it stays */
    memset(&a, 0, sizeof(a));
    n = hq_ring_take_if(r, sizeof(int), 8, &head, &len, out, 8, 8, pick_same, &a);
    assert_int_equal(n, 2);
    ring_str(r, 8, head, len, s);
    assert_string_equal(s, "4-3");
    /* a stop at the head takes nothing and changes nothing */
    memset(&a, 0, sizeof(a));
    n = hq_ring_take_if(r, sizeof(int), 8, &head, &len, out, 8, 8, pick_same, &a);
    assert_int_equal(n, 1); /* the 4 */
    memset(&a, 0, sizeof(a));
    n = hq_ring_take_if(r, sizeof(int), 8, &head, &len, out, 8, 8, pick_same, &a);
    assert_int_equal(n, 0);
    ring_str(r, 8, head, len, s);
    assert_string_equal(s, "-3");
    /* max 0 and scan 0 ask nothing */
    memset(&a, 0, sizeof(a));
    assert_int_equal(hq_ring_take_if(r, sizeof(int), 8, &head, &len, out, 0, 8, pick_same, &a), 0);
    assert_int_equal(hq_ring_take_if(r, sizeof(int), 8, &head, &len, out, 8, 0, pick_same, &a), 0);
    assert_int_equal(a.calls, 0);
    assert_int_equal(len, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_within_cap),
        cmocka_unit_test(test_append_huge_length_does_not_overflow),
        cmocka_unit_test(test_appendf),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_json_escape_respects_cap),
        cmocka_unit_test(test_ring_take_if),
        cmocka_unit_test(test_ring_take_if_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
