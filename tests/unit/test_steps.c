/* test_steps: the text form of the hookmq-steps field table (core/steps.c), the table header
 * of struct hq_msg (hq_msg_add_table, hq_msg_remove, copies), and replays dropping the
 * steps (hq_replay_prepare_msg). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hq_event.h"
#include "hq_replay.h"
#include "hq_steps.h"

static void test_names(void **state)
{
    (void)state;
    assert_true(hq_step_name_ok("load-user", 9));
    assert_true(hq_step_name_ok("a.B_9-z", 7));
    assert_false(hq_step_name_ok("", 0));
    assert_false(hq_step_name_ok("a b", 3));
    assert_false(hq_step_name_ok("a/b", 3));
    assert_false(hq_step_name_ok("a:b", 3));
    assert_false(hq_step_name_ok("a,b", 3));
    assert_false(hq_step_name_ok("..\xc3\xa9", 4));
    assert_false(hq_step_name_ok(".", 1));
    assert_false(hq_step_name_ok("..", 2));
    assert_false(hq_step_name_ok(".hidden", 7));
    assert_true(hq_step_name_ok("v1.2", 4));
    {
        char n[HQ_STEP_NAME_MAX + 2];

        memset(n, 'x', sizeof(n));
        assert_true(hq_step_name_ok(n, HQ_STEP_NAME_MAX));
        assert_false(hq_step_name_ok(n, HQ_STEP_NAME_MAX + 1));
    }
}

static void test_roundtrip(void **state)
{
    static const unsigned char bin[] = {0, 1, 2, 0xff, ',', ':', '='};
    struct hq_buf b = HQ_BUF_INIT(1 << 20);
    struct hq_steps st;

    (void)state;
    assert_int_equal(hq_steps_append(&b, "load-user", 9, (const unsigned char *)"{\"a\":1}", 7),
                     HQ_OK);
    assert_int_equal(hq_steps_append(&b, "empty", 5, NULL, 0), HQ_OK);
    assert_int_equal(hq_steps_append(&b, "bin", 3, bin, sizeof(bin)), HQ_OK);
    assert_string_equal((const char *)b.data, "load-user:eyJhIjoxfQ==,empty:,bin:AAEC/yw6PQ==");
    assert_int_equal(hq_steps_append(&b, "bad name", 8, bin, 1), HQ_EINVAL);
    assert_int_equal(hq_steps_parse((const char *)b.data, &st), HQ_OK);
    assert_int_equal(st.n, 3);
    assert_string_equal(st.v[0].name, "load-user");
    assert_int_equal(st.v[0].name_len, 9);
    assert_int_equal(st.v[0].len, 7);
    assert_memory_equal(st.v[0].val, "{\"a\":1}", 7);
    assert_string_equal(st.v[1].name, "empty");
    assert_int_equal(st.v[1].len, 0);
    assert_string_equal(st.v[2].name, "bin");
    assert_int_equal(st.v[2].len, sizeof(bin));
    assert_memory_equal(st.v[2].val, bin, sizeof(bin));
    hq_steps_free(&st);
    hq_steps_free(&st); /* idempotent */
    hq_buf_free(&b);

    assert_int_equal(hq_steps_parse(NULL, &st), HQ_OK);
    assert_int_equal(st.n, 0);
    assert_int_equal(hq_steps_parse("", &st), HQ_OK);
    assert_int_equal(st.n, 0);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "noval",        "a:b:c",   ":YQ==",  "a:YQ",     "a:YQ==,",  ",a:YQ==",
        "a:YQ==,a:Yg==", "a b:YQ==", "a:Y*==", "a:YQ==,,b:", "a:YQ===",
    };
    struct hq_steps st;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(hq_steps_parse(bad[i], &st), HQ_EINVAL);
        assert_null(st.v);
        assert_int_equal(st.n, 0);
    }
}

static void test_msg_table(void **state)
{
    struct hq_msg m, c;
    const struct hq_hdr *h;

    (void)state;
    memset(&m, 0, sizeof(m));
    assert_int_equal(hq_msg_add_str(&m, "hookmq-source", "s"), HQ_OK);
    assert_int_equal(hq_msg_add_table(&m, HQ_STEPS_HEADER, "a:YQ=="), HQ_OK);
    assert_int_equal(hq_msg_add_long(&m, "hookmq-attempt", 2), HQ_OK);
    h = hq_msg_header(&m, HQ_STEPS_HEADER);
    assert_non_null(h);
    assert_int_equal(h->type, HQ_HDR_TABLE);
    assert_string_equal(h->str, "a:YQ==");
    assert_null(hq_msg_str(&m, HQ_STEPS_HEADER)); /* not a string header */
    /* replacing keeps one header */
    assert_int_equal(hq_msg_add_table(&m, HQ_STEPS_HEADER, "a:YQ==,b:Yg=="), HQ_OK);
    assert_int_equal(m.n_headers, 3);
    assert_int_equal(hq_msg_copy(&m, &c), HQ_OK);
    h = hq_msg_header(&c, HQ_STEPS_HEADER);
    assert_int_equal(h->type, HQ_HDR_TABLE);
    assert_string_equal(h->str, "a:YQ==,b:Yg==");
    hq_msg_remove(&c, HQ_STEPS_HEADER);
    assert_null(hq_msg_header(&c, HQ_STEPS_HEADER));
    assert_int_equal(c.n_headers, 2);
    assert_string_equal(c.headers[1].key, "hookmq-attempt");
    hq_msg_remove(&c, "absent");
    assert_int_equal(c.n_headers, 2);
    hq_msg_free(&c);
    hq_msg_free(&m);
}

static void test_replay_starts_fresh(void **state)
{
    struct hq_msg m;

    (void)state;
    memset(&m, 0, sizeof(m));
    assert_int_equal(hq_msg_add_str(&m, "hookmq-source", "s"), HQ_OK);
    assert_int_equal(hq_msg_add_table(&m, HQ_STEPS_HEADER, "a:YQ=="), HQ_OK);
    assert_int_equal(hq_replay_prepare_msg(&m, "rpl-1", 5, true), HQ_OK);
    assert_null(hq_msg_header(&m, HQ_STEPS_HEADER));
    assert_non_null(hq_msg_header(&m, "hookmq-source"));
    hq_msg_free(&m);
}

static void test_json(void **state)
{
    static const unsigned char bin[] = {0, 0xff, '"'};
    struct hq_buf b = HQ_BUF_INIT(1 << 20);
    struct hq_steps st;
    static const char *const bad[] = {
        "",          "[]",          "{\"a\":1}",      "{\"a b\":\"YQ==\"}", "{\"a\":\"YQ\"}",
        "{\"a\":\"Y*==\"}", "{\"a\":{}}", "{\".x\":\"\"}", "{} x",          "{\"a\":\"YQ==\"",
    };
    size_t i;

    (void)state;
    assert_int_equal(hq_buf_append(&b, "{", 1), HQ_OK);
    assert_int_equal(hq_steps_json_add(&b, "load-user", 9, (const unsigned char *)"u1", 2), HQ_OK);
    assert_int_equal(hq_steps_json_add(&b, "bin", 3, bin, sizeof(bin)), HQ_OK);
    assert_int_equal(hq_steps_json_add(&b, "bad/name", 8, bin, 1), HQ_EINVAL);
    assert_int_equal(hq_buf_append(&b, "}", 1), HQ_OK);
    assert_string_equal((const char *)b.data, "{\"load-user\":\"dTE=\",\"bin\":\"AP8i\"}");
    assert_int_equal(hq_steps_parse_json((const char *)b.data, b.len, &st), HQ_OK);
    assert_int_equal(st.n, 2);
    assert_string_equal(st.v[0].name, "load-user");
    assert_memory_equal(st.v[0].val, "u1", 2);
    assert_string_equal(st.v[1].name, "bin");
    assert_int_equal(st.v[1].len, sizeof(bin));
    assert_memory_equal(st.v[1].val, bin, sizeof(bin));
    hq_steps_free(&st);
    hq_buf_free(&b);
    assert_int_equal(hq_steps_parse_json("{}", 2, &st), HQ_OK);
    assert_int_equal(st.n, 0);
    assert_int_equal(hq_steps_parse_json(" { \"e\" : \"\" } ", 14, &st), HQ_OK);
    assert_int_equal(st.n, 1);
    assert_int_equal(st.v[0].len, 0);
    hq_steps_free(&st);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(hq_steps_parse_json(bad[i], strlen(bad[i]), &st), HQ_EINVAL);
        assert_null(st.v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),       cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_malformed),   cmocka_unit_test(test_msg_table),
        cmocka_unit_test(test_replay_starts_fresh), cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
