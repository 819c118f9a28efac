/* Unit tests: core/log.c. Hostile values (spaces, '=', quotes, newlines, control bytes,
 * invalid UTF-8) can neither forge a field nor a line in text logs, and JSON lines stay valid
 * JSON that gives back the exact value; the printf conversions the programs use still
 * format as printf does. stderr is captured in a temporary file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "hq_log.h"

static char out[65536];

/* Run fn with stderr going to a temporary file; the captured text goes to out. */
static void capture(void (*fn)(void))
{
    char path[] = "/tmp/hq-test-log-XXXXXX";
    int fd = mkstemp(path), saved;
    ssize_t n;

    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    fn();
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    n = read(fd, out, sizeof(out) - 1);
    assert_true(n >= 0);
    out[n] = '\0';
    close(fd);
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

#define HOSTILE_ID "evt 1 status=202 client=10.0.0.1\nFAKE info hookmq-gateway: x=\"y\""
#define HOSTILE_ERR "boom\" injected=\"1\\"

static void log_hostile(void)
{
    hq_info("request", "source=%s event_id=%s status=%d error=\"%s\" empty=%s", "gh", HOSTILE_ID,
            401, HOSTILE_ERR, "");
}

static void log_bytes(void)
{
    hq_info("bytes", "id=%s ok=%s", "a\x01\x7f\xff\xfe\tz", "caf\xc3\xa9");
}

static void log_numbers(void)
{
    hq_info("numbers", "a=%d b=%lld c=%zu d=%u e=%.2f f=%.*s g=%llu h=%5d%% i=%x", -7,
            (long long)-9000000000LL, (size_t)42, 7u, 3.14159, 3, "abcdef",
            (unsigned long long)18446744073709551615ULL, 12, 255u);
}

static void log_raw(void)
{
    /* a %s outside a value position is the caller's own field syntax */
    hq_info("raw", "latency_ms=%d%s", 5, " result=ok");
}

static void test_text_hostile(void **state)
{
    (void)state;
    hq_log_setup("hookmq-test", HQ_LOG_INFO, HQ_LOG_TEXT);
    capture(log_hostile);
    assert_int_equal(count_char(out, '\n'), 1); /* one line: the newline is escaped */
    assert_non_null(strstr(out, " source=gh event_id=\"evt 1 status=202 client=10.0.0.1\\nFAKE "
                                "info hookmq-gateway: x=\\\"y\\\"\" status=401 "));
    assert_non_null(strstr(out, " error=\"boom\\\" injected=\\\"1\\\\\" empty=\"\"\n"));
}

static void test_text_bytes(void **state)
{
    (void)state;
    hq_log_setup("hookmq-test", HQ_LOG_INFO, HQ_LOG_TEXT);
    capture(log_bytes);
    assert_non_null(strstr(out, " id=\"a\\x01\\x7f\\xff\\xfe\\tz\" ok=caf\xc3\xa9\n"));
}

static void test_text_numbers_and_raw(void **state)
{
    (void)state;
    hq_log_setup("hookmq-test", HQ_LOG_INFO, HQ_LOG_TEXT);
    capture(log_numbers);
    assert_non_null(strstr(out, " numbers a=-7 b=-9000000000 c=42 d=7 e=3.14 f=abc "
                                "g=18446744073709551615 h=   12% i=ff\n"));
    capture(log_raw);
    assert_non_null(strstr(out, " raw latency_ms=5 result=ok\n"));
}

static struct json_object *parse_line(void)
{
    struct json_object *o;

    assert_int_equal(count_char(out, '\n'), 1);
    o = json_tokener_parse(out);
    assert_non_null(o);
    assert_true(json_object_is_type(o, json_type_object));
    return o;
}

static const char *member(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, k, &v))
        return NULL;
    return json_object_get_string(v);
}

static void test_json_hostile(void **state)
{
    struct json_object *o;

    (void)state;
    hq_log_setup("hookmq-test", HQ_LOG_INFO, HQ_LOG_JSON);
    capture(log_hostile);
    o = parse_line();
    assert_string_equal(member(o, "msg"), "request");
    assert_string_equal(member(o, "source"), "gh");
    assert_string_equal(member(o, "event_id"), HOSTILE_ID);
    assert_string_equal(member(o, "status"), "401");
    assert_string_equal(member(o, "error"), HOSTILE_ERR);
    assert_string_equal(member(o, "empty"), "");
    assert_null(member(o, "client"));
    assert_null(member(o, "injected"));
    assert_null(member(o, "extra"));
    json_object_put(o);

    capture(log_bytes);
    o = parse_line(); /* invalid UTF-8 never reaches the JSON text */
    assert_string_equal(member(o, "id"), "a\\x01\\x7f\\xff\\xfe\tz");
    assert_string_equal(member(o, "ok"), "caf\xc3\xa9");
    json_object_put(o);
    hq_log_setup("hookmq-test", HQ_LOG_INFO, HQ_LOG_TEXT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_hostile),
        cmocka_unit_test(test_text_bytes),
        cmocka_unit_test(test_text_numbers_and_raw),
        cmocka_unit_test(test_json_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
