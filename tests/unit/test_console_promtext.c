/* test_console_promtext: the console's reader of the gateway's /metrics (console/promtext.c),
 * which the sources page feeds with text it does not trust.
 *
 * - Real gateway lines parse: metric, labels (escapes included), integer value; comments,
 *   blank lines, CRLF, timestamps and unwanted metrics are passed over.
 * - Hostile input is skipped and counted, never trusted: over-long lines and label values,
 *   unterminated or badly escaped labels, too many labels, NUL bytes, negative, NaN, infinite
 *   or huge values, trailing junk, a missing value; and random bytes never crash it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "promtext.h"

static const char *const want[] = {"hookmq_gateway_requests_total",
                                   "hookmq_gateway_verification_failures_total", NULL};

struct got {
    size_t n;
    char source[8][CS_PROM_LABEL_MAX + 1];
    char second[8][CS_PROM_LABEL_MAX + 1];
    uint64_t value[8];
};

static int collect(void *arg, const struct cs_prom_sample *s)
{
    struct got *g = arg;
    const char *src = cs_prom_label(s, "source");
    const char *second = cs_prom_label(s, "status");

    if (!second)
        second = cs_prom_label(s, "reason");
    if (g->n < 8) {
        snprintf(g->source[g->n], sizeof(g->source[0]), "%s", src ? src : "(none)");
        snprintf(g->second[g->n], sizeof(g->second[0]), "%s", second ? second : "(none)");
        g->value[g->n] = s->value;
    }
    g->n++;
    return 0;
}

static size_t parse(const char *text, struct got *g)
{
    size_t bad = 99;

    memset(g, 0, sizeof(*g));
    assert_int_equal(cs_prom_parse(text, strlen(text), want, collect, g, &bad), 0);
    return bad;
}

static void test_gateway_lines(void **state)
{
    struct got g;
    const char *text =
        "# HELP hookmq_gateway_requests_total Webhook requests answered, by source and HTTP status\n"
        "# TYPE hookmq_gateway_requests_total counter\n"
        "hookmq_gateway_requests_total{source=\"gh\",status=\"202\"} 17\n"
        "hookmq_gateway_requests_total{source=\"gh\",status=\"401\"} 2 1735689600000\r\n"
        "\n"
        "hookmq_gateway_in_flight 3\n"
        "hookmq_gateway_confirm_latency_seconds_bucket{le=\"0.005\"} 9\n"
        "hookmq_gateway_verification_failures_total{source=\"gh\",reason=\"bad_signature\"} 2\n"
        "hookmq_gateway_requests_total{source=\"a\\\"b\\\\c\\nd\",status=\"200\",} 1e3\n";

    (void)state;
    assert_int_equal(parse(text, &g), 0);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.source[0], "gh");
    assert_string_equal(g.second[0], "202");
    assert_int_equal(g.value[0], 17);
    assert_string_equal(g.second[1], "401");
    assert_int_equal(g.value[1], 2);
    assert_string_equal(g.second[2], "bad_signature");
    assert_string_equal(g.source[3], "a\"b\\c\nd");
    assert_int_equal(g.value[3], 1000);
}

static void test_hostile_lines_are_skipped(void **state)
{
    static const char *const bad_lines[] = {
        "hookmq_gateway_requests_total{source=\"gh\",status=\"202\"} -1\n",
        "hookmq_gateway_requests_total{source=\"gh\",status=\"202\"} NaN\n",
        "hookmq_gateway_requests_total{source=\"gh\",status=\"202\"} +Inf\n",
        "hookmq_gateway_requests_total{source=\"gh\",status=\"202\"} 1e300\n",
        "hookmq_gateway_requests_total{source=\"gh\",status=\"202\"}\n",
        "hookmq_gateway_requests_total{source=\"gh\",status=\"202\"} 1 2 3\n",
        "hookmq_gateway_requests_total{source=\"gh\",status=\"202\"} 12abc\n",
        "hookmq_gateway_requests_total{source=\"gh\",status=\"202\" 1\n",
        "hookmq_gateway_requests_total{source=\"gh} 1\n",
        "hookmq_gateway_requests_total{source=\"g\\x\"} 1\n",
        "hookmq_gateway_requests_total{source=gh} 1\n",
        "hookmq_gateway_requests_total{=\"gh\"} 1\n",
        "hookmq_gateway_requests_total{source=\"gh\"}1\n",
        ("hookmq_gateway_requests_total{a=\"1\",b=\"1\",c=\"1\",d=\"1\",e=\"1\",f=\"1\",g=\"1\","
         "h=\"1\",i=\"1\"} 1\n"), /* nine labels: one too many */
    };
    struct got g;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
        assert_int_equal(parse(bad_lines[i], &g), 1);
        assert_int_equal(g.n, 0);
    }
}

static void test_bounds(void **state)
{
    size_t big = CS_PROM_LINE_MAX + 100, bad, i;
    char *text = malloc(big + 200);
    struct got g;

    (void)state;
    assert_non_null(text);
    /* a label value longer than CS_PROM_LABEL_MAX */
    i = (size_t)sprintf(text, "hookmq_gateway_requests_total{source=\"");
    memset(text + i, 'x', CS_PROM_LABEL_MAX + 1);
    i += CS_PROM_LABEL_MAX + 1;
    i += (size_t)sprintf(text + i, "\",status=\"202\"} 1\n");
    text[i] = '\0';
    assert_int_equal(parse(text, &g), 1);
    assert_int_equal(g.n, 0);
    /* a line longer than CS_PROM_LINE_MAX, then a good line that still counts */
    i = (size_t)sprintf(text, "hookmq_gateway_requests_total{source=\"gh\"} 1");
    memset(text + i, ' ', big);
    i += big;
    i += (size_t)sprintf(text + i, "\nhookmq_gateway_requests_total{source=\"ok\"} 5\n");
    text[i] = '\0';
    assert_int_equal(parse(text, &g), 1);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.source[0], "ok");
    /* a NUL byte inside a line */
    memcpy(text, "hookmq_gateway_requests_total{source=\"g\0h\"} 1\n", 46);
    memset(&g, 0, sizeof(g));
    assert_int_equal(cs_prom_parse(text, 46, want, collect, &g, &bad), 0);
    assert_int_equal(bad, 1);
    assert_int_equal(g.n, 0);
    /* no final newline, and an empty input */
    assert_int_equal(parse("hookmq_gateway_requests_total 4", &g), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.value[0], 4);
    assert_int_equal(parse("", &g), 0);
    assert_int_equal(g.n, 0);
    free(text);
}

static void test_random_bytes(void **state)
{
    unsigned char buf[2048];
    unsigned seed = 12345;
    size_t bad, k, i;
    struct got g;

    (void)state;
    for (k = 0; k < 2000; k++) {
        for (i = 0; i < sizeof(buf); i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (unsigned char)(seed >> 16);
            if (i % 7 == 0) /* keep wanted names and structure frequent */
                buf[i] = (unsigned char)"{}\"=, \n\\"[(seed >> 8) % 8];
        }
        memcpy(buf, want[k % 2], strlen(want[k % 2]));
        memset(&g, 0, sizeof(g));
        (void)cs_prom_parse((const char *)buf, sizeof(buf), want, collect, &g, &bad);
        assert_true(bad <= sizeof(buf));
    }
}

static int stop_at_first(void *arg, const struct cs_prom_sample *s)
{
    (void)s;
    (*(int *)arg)++;
    return 7;
}

static void test_callback_stops(void **state)
{
    const char *text = "hookmq_gateway_requests_total 1\nhookmq_gateway_requests_total 2\n";
    int calls = 0;

    (void)state;
    assert_int_equal(cs_prom_parse(text, strlen(text), want, stop_at_first, &calls, NULL), 7);
    assert_int_equal(calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gateway_lines),
        cmocka_unit_test(test_hostile_lines_are_skipped),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_callback_stops),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
