/* Unit tests: core/time.c (durations with units, RFC 3339 and relative times). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "hq_time.h"

static void test_duration_parse_ok(void **state)
{
    static const struct {
        const char *s;
        uint64_t ms;
    } v[] = {
        {"0ms", 0},
        {"200ms", 200},
        {"1ms", 1},
        {"10s", 10000},
        {"90s", 90000},
        {"5m", 300000},
        {"1h", 3600000},
        {"7d", 604800000},
        {"1d", 86400000},
        {"007s", 7000},
        {"18446744073709551615ms", UINT64_MAX},
        {"213503982334d", 213503982334ULL * 86400000ULL},
    };
    size_t i;
    uint64_t ms;

    (void)state;
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        ms = 12345;
        if (hq_duration_parse(v[i].s, &ms) != HQ_OK)
            fail_msg("refused \"%s\"", v[i].s);
        if (ms != v[i].ms)
            fail_msg("\"%s\" -> %llu, want %llu", v[i].s, (unsigned long long)ms,
                     (unsigned long long)v[i].ms);
    }
}

static void test_duration_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "s",
        "ms",
        "10",          /* no unit */
        "10 s",
        " 10s",
        "10s ",
        "-10s",
        "+10s",
        "1.5s",
        "10S",
        "10sec",
        "10mss",
        "1w",
        "10us",
        "1h30m",       /* one unit only */
        "0x10s",
        "18446744073709551616ms",  /* 2^64 */
        "18446744073709552s",      /* overflows when scaled */
        "213503982335d",
        "99999999999999999999999999999999d",
        "10s\n",
        ("1\xff" "s"),
    };
    size_t i;
    uint64_t ms = 777;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (hq_duration_parse(bad[i], &ms) != HQ_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_int_equal(ms, 777); /* untouched on error */
    assert_int_equal(hq_duration_parse(NULL, &ms), HQ_EINVAL);
}

static void test_duration_format(void **state)
{
    static const struct {
        uint64_t ms;
        const char *s;
    } v[] = {
        {0, "0ms"},        {1, "1ms"},       {200, "200ms"},      {1000, "1s"},
        {1500, "1500ms"},  {60000, "1m"},    {90000, "90s"},      {3600000, "1h"},
        {5400000, "90m"},  {86400000, "1d"}, {604800000, "7d"},   {90061001, "90061001ms"},
        {172800000, "2d"}, {UINT64_MAX, "18446744073709551615ms"},
    };
    size_t i;
    char out[32];

    (void)state;
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        hq_duration_format(v[i].ms, out, sizeof(out));
        assert_string_equal(out, v[i].s);
    }
    /* round trip */
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint64_t back = 0;
        hq_duration_format(v[i].ms, out, sizeof(out));
        assert_int_equal(hq_duration_parse(out, &back), HQ_OK);
        assert_true(back == v[i].ms);
    }
    /* truncates, never overflows */
    hq_duration_format(604800000, out, 2);
    assert_string_equal(out, "7");
}

static void test_time_parse_rfc3339(void **state)
{
    static const struct {
        const char *s;
        int64_t ms;
    } v[] = {
        {"2026-11-29T10:00:00Z", 1795946400000LL},
        {"2026-11-29t10:00:00z", 1795946400000LL},
        {"2026-11-29 10:00:00Z", 1795946400000LL},
        {"2024-02-29T00:00:00Z", 1709164800000LL},   /* leap day */
        {"2000-02-29T12:34:56.789Z", 951827696789LL}, /* 400-year leap day */
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.500Z", -500},
        {"2026-11-29T10:00:00.123+02:00", 1795939200123LL},
        {"2026-11-29T10:00:00-05:30", 1795966200000LL},
        {"2026-11-29T10:00:00+00:00", 1795946400000LL},
        {"2026-11-29T10:00:00-00:00", 1795946400000LL},
        {"9999-12-31T23:59:59.999Z", 253402300799999LL},
        {"0001-01-01T00:00:00Z", -62135596800000LL},
        {"2100-03-01T00:00:00Z", 4107542400000LL},
        {"2026-11-29T10:00:00.1Z", 1795946400100LL},
        {"2026-11-29T10:00:00.123456789Z", 1795946400123LL}, /* truncated, not rounded */
        {"2016-12-31T23:59:60Z", 1483228800000LL},          /* leap second = next second */
    };
    size_t i;
    int64_t ms;

    (void)state;
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        ms = 42;
        if (hq_time_parse(v[i].s, 0, &ms) != HQ_OK)
            fail_msg("refused \"%s\"", v[i].s);
        if (ms != v[i].ms)
            fail_msg("\"%s\" -> %lld, want %lld", v[i].s, (long long)ms, (long long)v[i].ms);
    }
}

static void test_time_parse_relative(void **state)
{
    const int64_t now = 1795946400000LL;
    int64_t ms;

    (void)state;
    assert_int_equal(hq_time_parse("-2h", now, &ms), HQ_OK);
    assert_true(ms == now - 7200000LL);
    assert_int_equal(hq_time_parse("-15m", now, &ms), HQ_OK);
    assert_true(ms == now - 900000LL);
    assert_int_equal(hq_time_parse("-7d", now, &ms), HQ_OK);
    assert_true(ms == now - 604800000LL);
    assert_int_equal(hq_time_parse("-200ms", now, &ms), HQ_OK);
    assert_true(ms == now - 200);
    assert_int_equal(hq_time_parse("-0s", now, &ms), HQ_OK);
    assert_true(ms == now);
    assert_int_equal(hq_time_parse("now", now, &ms), HQ_OK);
    assert_true(ms == now);
    /* absurd relative values are refused rather than wrapped */
    assert_int_equal(hq_time_parse("-18446744073709551615ms", now, &ms), HQ_EINVAL);
    assert_int_equal(hq_time_parse("-999999999999d", now, &ms), HQ_EINVAL);
}

static void test_time_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "-",
        "+2h",
        "2h",
        "-2",
        "-2 h",
        "NOW",
        "now ",
        "yesterday",
        "2026-11-29",
        "2026-11-29T10:00Z",
        "2026-11-29T10:00:00",        /* no offset */
        "2026-11-29T10:00:00+0200",
        "2026-11-29T10:00:00+02",
        "2026-11-29T10:00:00+24:00",
        "2026-11-29T10:00:00+02:60",
        "2026-11-29T10:00:00.Z",
        "2026-11-29T10:00:00.-1Z",
        "2026-11-29T10:00:00ZZ",
        "2026-11-29T10:00:00Z ",
        "2026-11-29T24:00:00Z",
        "2026-11-29T10:60:00Z",
        "2026-11-29T10:00:61Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2023-02-29T00:00:00Z",       /* not a leap year */
        "1900-02-29T00:00:00Z",       /* century, not a leap year */
        "2026-02-30T00:00:00Z",
        "26-11-29T10:00:00Z",
        "+2026-11-29T10:00:00Z",
        "20261129T100000Z",
        "2026-11-29X10:00:00Z",
        "2026-1a-29T10:00:00Z",
        "2026-11-29T1:00:00Z",
        "2026-11-29T10:00:00\n",
        "2026-11-29T10:00:00\xc2\xa0Z",
    };
    size_t i;
    int64_t ms = 99;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (hq_time_parse(bad[i], 1795946400000LL, &ms) != HQ_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_int_equal(ms, 99);
    assert_int_equal(hq_time_parse(NULL, 0, &ms), HQ_EINVAL);
}

static void test_time_parse_truncated_prefixes(void **state)
{
    /* every proper prefix of a valid timestamp is refused, and nothing reads past the end */
    const char *full = "2026-11-29T10:00:00.123+02:00";
    char buf[64];
    size_t n;
    int64_t ms;

    (void)state;
    for (n = 0; n < strlen(full); n++) {
        memcpy(buf, full, n);
        buf[n] = '\0';
        if (hq_time_parse(buf, 0, &ms) == HQ_OK)
            fail_msg("accepted prefix \"%s\"", buf);
    }
    assert_int_equal(hq_time_parse(full, 0, &ms), HQ_OK);
}

static void test_time_format(void **state)
{
    char out[40];
    int64_t back;

    (void)state;
    hq_time_format(1795946400123LL, out, sizeof(out));
    assert_string_equal(out, "2026-11-29T10:00:00.123Z");
    hq_time_format(0, out, sizeof(out));
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    hq_time_format(-500, out, sizeof(out));
    assert_string_equal(out, "1969-12-31T23:59:59.500Z");
    hq_time_format(-1, out, sizeof(out));
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    hq_time_format(951827696789LL, out, sizeof(out));
    assert_string_equal(out, "2000-02-29T12:34:56.789Z");
    assert_int_equal(hq_time_parse(out, 0, &back), HQ_OK);
    assert_true(back == 951827696789LL);
}

static void test_clocks(void **state)
{
    int64_t a, b;

    (void)state;
    a = hq_now_ms();
    assert_true(a > 1700000000000LL); /* after 2023 */
    a = hq_mono_ms();
    b = hq_mono_ms();
    assert_true(b >= a);
}

/* hq_cond_wait_until: the deadline is on hq_mono_ms()'s clock (a CLOCK_MONOTONIC condition
 * variable); nobody signals here, so each wait ends at its deadline (or at once when it has
 * passed, or is negative), and a spurious wake-up is answered by waiting again. */
static void test_cond_wait_until(void **state)
{
    pthread_condattr_t ca;
    pthread_cond_t cv;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    int64_t start, deadline;

    (void)state;
    assert_int_equal(pthread_condattr_init(&ca), 0);
    assert_int_equal(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC), 0);
    assert_int_equal(pthread_cond_init(&cv, &ca), 0);
    pthread_mutex_lock(&mu);
    start = hq_mono_ms();
    hq_cond_wait_until(&cv, &mu, start - 1000);
    hq_cond_wait_until(&cv, &mu, -5);
    hq_cond_wait_until(&cv, &mu, 0);
    assert_true(hq_mono_ms() - start < 1000); /* passed deadlines return at once */
    deadline = hq_mono_ms() + 30;
    while (hq_mono_ms() < deadline)
        hq_cond_wait_until(&cv, &mu, deadline);
    assert_true(hq_mono_ms() >= deadline);
    assert_true(hq_mono_ms() - start < 10000); /* an absolute deadline, not 30 s */
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
    pthread_condattr_destroy(&ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_parse_ok),
        cmocka_unit_test(test_duration_parse_bad),
        cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_time_parse_rfc3339),
        cmocka_unit_test(test_time_parse_relative),
        cmocka_unit_test(test_time_parse_bad),
        cmocka_unit_test(test_time_parse_truncated_prefixes),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_cond_wait_until),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
