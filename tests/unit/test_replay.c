/* Unit tests for core/replay.c: AMQP topic matching (RabbitMQ's own routing table plus a
 * differential test against a direct transcription of its word-matching rules), command-line
 * parsing and normalization, replay ids, the key set, the checkpoint file (torn lines,
 * resume, done, locking), the replayed copy's headers and the token bucket. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#include "hq_replay.h"
#include "replay_args.h"
#define HQTEST_DIR_NAME "replay"
#define HQTEST_FSYNC_RECORDER
#include "hqtest.h"

/* ================================================================ topic matching */

/* rabbitmq-server's topic exchange test (bindings t1..t26 and the queues each routing key
 * reaches), as a table of (pattern, key, expected). */
static const char *const rmq_bindings[] = {
    "a.b.c", "a.*.c", "a.#.b", "a.b.b.c", "#",     "#.#",   "#.b",   "*.*",   "a.*",
    "*.b.c", "a.#",   "a.#.#", "b.b.c",   "a.b.b", "a.b",   "b.c",   "",      "*.*.*",
    "vodka.martini",  "a.b.c", "*.#",     "#.*.#", "*.#.#", "#.#.#", "*",     "#.b.#",
};

struct rmq_case {
    const char *key;
    int expect[27]; /* 1-based binding numbers, 0-terminated */
};

static const struct rmq_case rmq_cases[] = {
    {"a.b.c", {1, 2, 5, 6, 10, 11, 12, 18, 20, 21, 22, 23, 24, 26, 0}},
    {"a.b", {3, 5, 6, 7, 8, 9, 11, 12, 15, 21, 22, 23, 24, 26, 0}},
    {"a.b.b", {3, 5, 6, 7, 11, 12, 14, 18, 21, 22, 23, 24, 26, 0}},
    {"", {5, 6, 17, 24, 0}},
    {"b.c.c", {5, 6, 18, 21, 22, 23, 24, 26, 0}},
    {"a.a.a.a.a", {5, 6, 11, 12, 21, 22, 23, 24, 0}},
    {"vodka.gin", {5, 6, 8, 21, 22, 23, 24, 0}},
    {"vodka.martini", {5, 6, 8, 19, 21, 22, 23, 24, 0}},
    {"b.b.c", {5, 6, 10, 13, 18, 21, 22, 23, 24, 26, 0}},
    {"nothing.here.at.all", {5, 6, 21, 22, 23, 24, 0}},
    {"oneword", {5, 6, 21, 22, 23, 24, 25, 0}},
};

static void test_topic_rabbitmq_table(void **state)
{
    size_t c, b;

    (void)state;
    for (c = 0; c < sizeof(rmq_cases) / sizeof(rmq_cases[0]); c++) {
        for (b = 0; b < sizeof(rmq_bindings) / sizeof(rmq_bindings[0]); b++) {
            bool want = false, got;
            const int *e;

            for (e = rmq_cases[c].expect; *e; e++)
                if ((size_t)*e == b + 1)
                    want = true;
            got = hq_topic_match(rmq_bindings[b], rmq_cases[c].key);
            if (got != want)
                fail_msg("pattern '%s' key '%s': got %d, RabbitMQ routes %d", rmq_bindings[b],
                         rmq_cases[c].key, got, want);
        }
    }
}

/* Edge cases: empty words, literal '*'/'#' inside words, NULL. */
static void test_topic_edges(void **state)
{
    static const struct {
        const char *pattern, *key;
        bool want;
    } t[] = {
        {"a..b", "a..b", true},     {"a.*.b", "a..b", true},   {"a.#.b", "a..b", true},
        {"a.b", "a..b", false},     {"*", "", false},          {"*", ".", false},
        {"*.*", ".", true},         {"#", ".", true},          {"#", "..", true},
        {"a.", "a.", true},         {"a.*", "a.", true},       {"a", "a.", false},
        {".a", ".a", true},         {"*.a", ".a", true},       {"a.#", "a", true},
        {"#.a", "a", true},         {"#.a.#", "a", true},      {"#.#.a.#.#", "x.a.y", true},
        {"a*", "ab", false},        {"a*", "a*", true},        {"#a", "a", false},
        {"#a", "#a", true},         {"", "", true},            {"", "a", false},
        {"a", "", false},           {"#", "", true},           {"#.#", "", true},
        {"*.#", "", false},         {"stripe.invoice.#", "stripe.invoice.paid", true},
        {"stripe.invoice.#", "stripe.invoice", true},          {"stripe.invoice.#", "stripe.invoices", false},
        {"stripe.*", "stripe.invoice.paid", false},            {"github.push", "github.push", true},
        {"#.push", "github.push", true},                       {"*.push", "gitlab.tag_push", false},
        {"a.#.c.#.e", "a.b.c.d.e", true},                      {"a.#.c.#.e", "a.c.e", true},
        {"a.#.c.#.e", "a.b.d.e", false},                       {"#.*.*.#", "a", false},
        {"#.*.*.#", "a.b", true},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (hq_topic_match(t[i].pattern, t[i].key) != t[i].want)
            fail_msg("pattern '%s' key '%s': want %d", t[i].pattern, t[i].key, t[i].want);
    assert_false(hq_topic_match(NULL, "a"));
    assert_false(hq_topic_match("a", NULL));
}

/* Reference: RabbitMQ's rules transcribed directly (split on '.', "" = no words), recursive. */
#define MAXW 8
static int split(const char *s, const char *w[MAXW], size_t wl[MAXW])
{
    int n = 0;
    const char *p = s;

    if (!*s)
        return 0;
    for (;;) {
        const char *d = strchr(p, '.');

        w[n] = p;
        wl[n] = d ? (size_t)(d - p) : strlen(p);
        n++;
        if (!d)
            return n;
        p = d + 1;
    }
}

static bool ref_match(const char **pw, const size_t *pl, int np, const char **kw,
                      const size_t *kl, int nk)
{
    int i;

    if (np == 0)
        return nk == 0;
    if (pl[0] == 1 && pw[0][0] == '#') {
        for (i = 0; i <= nk; i++)
            if (ref_match(pw + 1, pl + 1, np - 1, kw + i, kl + i, nk - i))
                return true;
        return false;
    }
    if (nk == 0)
        return false;
    if ((pl[0] == 1 && pw[0][0] == '*') || (pl[0] == kl[0] && memcmp(pw[0], kw[0], pl[0]) == 0))
        return ref_match(pw + 1, pl + 1, np - 1, kw + 1, kl + 1, nk - 1);
    return false;
}

static void test_topic_differential(void **state)
{
    static const char *const pwords[] = {"a", "b", "", "*", "#", "ab"};
    static const char *const kwords[] = {"a", "b", "", "ab"};
    uint32_t seed = 12345;
    int iter, mismatches = 0;

    (void)state;
    for (iter = 0; iter < 200000; iter++) {
        char pat[64] = "", key[64] = "";
        const char *pw[MAXW], *kw[MAXW];
        size_t pl[MAXW], kl[MAXW];
        int np, nk, i, n;

        seed = seed * 1103515245u + 12345u;
        np = (int)((seed >> 16) % 7);
        for (i = 0; i < np; i++) {
            seed = seed * 1103515245u + 12345u;
            snprintf(pat + strlen(pat), sizeof(pat) - strlen(pat), "%s%s", i ? "." : "",
                     pwords[(seed >> 16) % 6]);
        }
        seed = seed * 1103515245u + 12345u;
        nk = (int)((seed >> 16) % 7);
        for (i = 0; i < nk; i++) {
            seed = seed * 1103515245u + 12345u;
            snprintf(key + strlen(key), sizeof(key) - strlen(key), "%s%s", i ? "." : "",
                     kwords[(seed >> 16) % 4]);
        }
        n = split(pat, pw, pl);
        i = split(key, kw, kl);
        if (ref_match(pw, pl, n, kw, kl, i) != hq_topic_match(pat, key)) {
            if (mismatches++ < 10)
                print_error("mismatch: pattern '%s' key '%s'\n", pat, key);
        }
    }
    assert_int_equal(mismatches, 0);
}

/* Hostile sizes: long keys, many '#': must finish quickly and answer right. */
static void test_topic_hostile(void **state)
{
    size_t n = 200000, i;
    char *key = malloc(n + 1), *pat = malloc(n + 1);

    (void)state;
    assert_non_null(key);
    assert_non_null(pat);
    for (i = 0; i < n; i++) {
        key[i] = (i % 2) ? '.' : 'a';
        pat[i] = (i % 2) ? '.' : '#';
    }
    key[n] = pat[n] = '\0';
    assert_true(hq_topic_match(pat, key));
    assert_true(hq_topic_match("#", key));
    pat[n - 2] = 'b'; /* "#.#....#.b." vs "a.a....a." : last words differ */
    assert_false(hq_topic_match(pat, key));
    assert_false(hq_topic_match("#.b", key));
    free(key);
    free(pat);
}

/* ================================================================ command line */

#define NOW 1800000000000LL /* 2027-01-15T08:00:00Z */

static int parse(struct hq_replay_opts *o, char *err, size_t errsz, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    char *a;

    argv[argc++] = (char *)"hookmq-replay";
    va_start(ap, errsz);
    while ((a = va_arg(ap, char *)) != NULL && argc < 63)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return hq_replay_parse_args(argc, argv, NOW, o, err, errsz);
}

static void test_args_ok(void **state)
{
    struct hq_replay_opts o;
    char err[512];

    (void)state;
    assert_int_equal(parse(&o, err, sizeof(err), "-c", "/x.conf", "--from",
                           "2026-11-29T10:00:00Z", "--to", "2026-11-29T10:20:00Z", "--source",
                           "stripe", "--type", "invoice.*", "--grep", "cus_1", "--to-consumer",
                           "billing", "--rate", "200", "--dry-run", NULL),
                     0);
    assert_string_equal(o.config, "/x.conf");
    assert_int_equal(o.from_ms, 1795946400000LL);
    assert_int_equal(o.to_ms, 1795946400000LL + 20 * 60 * 1000);
    assert_false(o.from_relative);
    assert_string_equal(o.source, "stripe");
    assert_string_equal(o.type_glob, "invoice.*");
    assert_string_equal(o.grep, "cus_1");
    assert_null(o.id);
    assert_int_equal(o.target, HQ_REPLAY_TARGET_CONSUMER);
    assert_string_equal(o.consumer, "billing");
    assert_true(o.rate == 200.0);
    assert_true(o.dry_run);
    assert_false(o.ignore_bindings);
    assert_int_equal(o.window, HQ_REPLAY_WINDOW_DEFAULT);

    /* --opt=value, relative times, --to-exchange, --id only */
    assert_int_equal(parse(&o, err, sizeof(err), "--from=-2h", "--to=now", "--to-exchange",
                           "--window=16", "--rate=0.5", NULL),
                     0);
    assert_true(o.from_relative);
    assert_true(o.to_relative);
    assert_int_equal(o.from_ms, NOW - 2 * 3600 * 1000LL);
    assert_int_equal(o.to_ms, NOW);
    assert_int_equal(o.target, HQ_REPLAY_TARGET_EXCHANGE);
    assert_int_equal(o.window, 16);
    assert_true(o.rate == 0.5);
    assert_int_equal(parse(&o, err, sizeof(err), "--id", "evt_1", "--to-consumer", "b",
                           "--ignore-bindings", "--restart", "-q", "--no-lifecycle", NULL),
                     0);
    assert_string_equal(o.id, "evt_1");
    assert_int_equal(o.from_ms, INT64_MIN);
    assert_int_equal(o.to_ms, INT64_MAX);
    assert_true(o.ignore_bindings && o.restart && o.quiet && o.no_lifecycle);
    /* --to alone is allowed with --id */
    assert_int_equal(parse(&o, err, sizeof(err), "--id", "x", "--to", "-1h", "--to-exchange",
                           NULL),
                     0);
    /* help / version win */
    assert_int_equal(parse(&o, err, sizeof(err), "--bogus", NULL), HQ_EINVAL);
    assert_int_equal(parse(&o, err, sizeof(err), "--help", NULL), 0);
    assert_true(o.help);
    assert_int_equal(parse(&o, err, sizeof(err), "-V", NULL), 0);
    assert_true(o.version);
}

static void test_args_errors(void **state)
{
    struct hq_replay_opts o;
    char err[512];

    (void)state;
#define BAD(substr, ...)                                                                           \
    do {                                                                                           \
        err[0] = '\0';                                                                             \
        assert_int_equal(parse(&o, err, sizeof(err), __VA_ARGS__, NULL), HQ_EINVAL);               \
        if (!strstr(err, substr))                                                                  \
            fail_msg("error '%s' does not mention '%s'", err, substr);                             \
    } while (0)
    BAD("unbounded", "--to-consumer", "b");
    BAD("unbounded", "--to", "-1h", "--to-exchange");
    BAD("unbounded", "--source", "stripe", "--to-exchange");
    BAD("target is required", "--from", "-1h");
    BAD("not both", "--from", "-1h", "--to-consumer", "b", "--to-exchange");
    BAD("--ignore-bindings", "--from", "-1h", "--to-exchange", "--ignore-bindings");
    BAD("more than once", "--from", "-1h", "--from", "-2h", "--to-exchange");
    BAD("more than once", "--from", "-1h", "--to-consumer", "a", "--to-consumer", "b");
    BAD("unknown option", "--from", "-1h", "--to-exchange", "--to-c", "b");
    BAD("unknown option", "--fro", "-1h", "--to-exchange");
    BAD("unexpected argument", "--from", "-1h", "--to-exchange", "extra");
    BAD("needs a value", "--to-exchange", "--from");
    BAD("empty value", "--from", "", "--to-exchange");
    BAD("empty value", "--from", "-1h", "--grep=", "--to-exchange");
    BAD("not a time", "--from", "yesterday", "--to-exchange");
    BAD("not a time", "--from", "2026-13-01T00:00:00Z", "--to-exchange");
    BAD("before --to", "--from", "-1h", "--to", "-2h", "--to-exchange");
    BAD("before --to", "--from", "-1h", "--to", "-1h", "--to-exchange");
    BAD("not a source name", "--from", "-1h", "--source", "Stripe", "--to-exchange");
    BAD("not a consumer name", "--from", "-1h", "--to-consumer", "../etc");
    BAD("not a consumer name", "--from", "-1h", "--to-consumer",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    BAD("--rate", "--from", "-1h", "--to-exchange", "--rate", "0");
    BAD("--rate", "--from", "-1h", "--to-exchange", "--rate", "-5");
    BAD("--rate", "--from", "-1h", "--to-exchange", "--rate", "1e3");
    BAD("--rate", "--from", "-1h", "--to-exchange", "--rate", "nan");
    BAD("--rate", "--from", "-1h", "--to-exchange", "--rate", "2000000");
    BAD("--window", "--from", "-1h", "--to-exchange", "--window", "0");
    BAD("--window", "--from", "-1h", "--to-exchange", "--window", "99999");
    BAD("--window", "--from", "-1h", "--to-exchange", "--window", "12x");
#undef BAD
    {
        /* a value over the cap */
        char *big = malloc(HQ_REPLAY_ARG_MAX + 2);

        assert_non_null(big);
        memset(big, 'x', HQ_REPLAY_ARG_MAX + 1);
        big[HQ_REPLAY_ARG_MAX + 1] = '\0';
        assert_int_equal(parse(&o, err, sizeof(err), "--from", "-1h", "--grep", big,
                               "--to-exchange", NULL),
                         HQ_EINVAL);
        free(big);
    }
    /* err may be NULL */
    assert_int_equal(parse(&o, NULL, 0, "--to-exchange", NULL), HQ_EINVAL);
}

static void id_of(char out[HQ_REPLAY_ID_LEN + 1], int64_t now, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    char *a, err[256];
    struct hq_replay_opts o;
    struct hq_buf b = HQ_BUF_INIT(1 << 16);

    argv[argc++] = (char *)"hookmq-replay";
    va_start(ap, now);
    while ((a = va_arg(ap, char *)) != NULL && argc < 31)
        argv[argc++] = a;
    va_end(ap);
    assert_int_equal(hq_replay_parse_args(argc, argv, now, &o, err, sizeof(err)), 0);
    assert_int_equal(hq_replay_spec(&o, &b), 0);
    hq_replay_id(b.data, b.len, out, NULL);
    hq_buf_free(&b);
}

static void test_replay_id(void **state)
{
    char a[HQ_REPLAY_ID_LEN + 1], b[HQ_REPLAY_ID_LEN + 1];

    (void)state;
    id_of(a, NOW, "--from", "2026-11-29T10:00:00Z", "--to-consumer", "billing", NULL);
    assert_int_equal(strlen(a), HQ_REPLAY_ID_LEN);
    assert_memory_equal(a, "rpl-", 4);
    /* the same instant written differently, options in another order, rate / dry-run / -c /
     * window not part of it */
    id_of(b, NOW + 5000, "--rate", "7", "-c", "/other.conf", "--to-consumer", "billing",
          "--from", "2026-11-29T11:00:00+01:00", "--dry-run", "--window", "8", NULL);
    assert_string_equal(a, b);
    /* relative times: the text, not the instant */
    id_of(a, NOW, "--from", "-2h", "--to-exchange", NULL);
    id_of(b, NOW + 3600000, "--from", "-2h", "--to-exchange", NULL);
    assert_string_equal(a, b);
    id_of(b, NOW, "--from", "-120m", "--to-exchange", NULL);
    assert_string_not_equal(a, b);
    /* every selecting option changes it */
    id_of(a, NOW, "--from", "-2h", "--to-consumer", "billing", NULL);
    id_of(b, NOW, "--from", "-2h", "--to-consumer", "billing2", NULL);
    assert_string_not_equal(a, b);
    id_of(b, NOW, "--from", "-2h", "--to-consumer", "billing", "--ignore-bindings", NULL);
    assert_string_not_equal(a, b);
    id_of(b, NOW, "--from", "-2h", "--to-consumer", "billing", "--source", "s", NULL);
    assert_string_not_equal(a, b);
    id_of(b, NOW, "--from", "-2h", "--to-consumer", "billing", "--type", "s", NULL);
    assert_string_not_equal(a, b);
    id_of(b, NOW, "--from", "-2h", "--to-consumer", "billing", "--grep", "s", NULL);
    assert_string_not_equal(a, b);
    id_of(b, NOW, "--from", "-2h", "--to-consumer", "billing", "--id", "s", NULL);
    assert_string_not_equal(a, b);
    id_of(b, NOW, "--from", "-2h", "--to-consumer", "billing", "--to", "now", NULL);
    assert_string_not_equal(a, b);
    /* length-prefixed: values cannot bleed into each other */
    id_of(a, NOW, "--from", "-2h", "--to-exchange", "--type", "a\nsource=1:b", NULL);
    id_of(b, NOW, "--from", "-2h", "--to-exchange", "--type", "a", "--source", "b", NULL);
    assert_string_not_equal(a, b);
}

/* ================================================================ keys and the set */


/* The console's request (hq_replay_req_parse): the same replay id as the equivalent command
 * line, so a replay begun in one resumes in the other. */
static int req(struct hq_replay_req *r, const char *json, char *err, size_t errsz)
{
    return hq_replay_req_parse(json, strlen(json), NOW, r, err, errsz);
}

static void test_console_request(void **state)
{
    struct hq_replay_req r;
    struct hq_buf b = HQ_BUF_INIT(1 << 16);
    char a[HQ_REPLAY_ID_LEN + 1], c[HQ_REPLAY_ID_LEN + 1], err[512];

    (void)state;
    assert_int_equal(req(&r, "{\"consumer\":\"billing\",\"from\":\"2026-11-29T10:00:00Z\","
                             "\"to\":\"-2h\",\"source\":\"stripe\",\"type\":\"invoice.*\","
                             "\"grep\":\"cus_1\",\"rate\":50,\"dry_run\":true}",
                         err, sizeof(err)),
                     0);
    assert_int_equal(r.o.target, HQ_REPLAY_TARGET_CONSUMER);
    assert_string_equal(r.o.consumer, "billing");
    assert_int_equal(r.o.from_ms, 1795946400000LL);
    assert_true(r.o.to_relative);
    assert_int_equal(r.o.to_ms, NOW - 2 * 3600 * 1000LL);
    assert_true(r.o.dry_run);
    assert_true(r.o.rate == 50.0);
    assert_int_equal(r.o.window, HQ_REPLAY_WINDOW_DEFAULT);
    assert_int_equal(hq_replay_spec(&r.o, &b), 0);
    hq_replay_id(b.data, b.len, a, NULL);
    hq_replay_req_free(&r);
    assert_null(r.consumer);
    id_of(c, NOW, "--to-consumer", "billing", "--type", "invoice.*", "--source", "stripe",
          "--grep", "cus_1", "--from", "2026-11-29T11:00:00+01:00", "--to", "-2h", NULL);
    assert_string_equal(a, c);
    hq_buf_free(&b);

    /* one event by id; rate 0 and null are unlimited */
    assert_int_equal(req(&r, "{\"consumer\":\"billing\",\"id\":\"evt_1\",\"rate\":null,"
                             "\"ignore_bindings\":true,\"restart\":false}", err, sizeof(err)), 0);
    assert_string_equal(r.o.id, "evt_1");
    assert_true(r.o.ignore_bindings && !r.o.restart && r.o.rate == 0);
    hq_replay_req_free(&r);

    /* refused, each with its reason */
    static const struct {
        const char *json, *why;
    } bad[] = {
        {"", "JSON object"},
        {"[1]", "JSON object"},
        {"{\"from\":\"-1h\"}", "consumer"},
        {"{\"consumer\":\"Bad Name\",\"from\":\"-1h\"}", "consumer"},
        {"{\"consumer\":\"b\"}", "unbounded"},
        {"{\"consumer\":\"b\",\"from\":\"yesterday\"}", "not a time"},
        {"{\"consumer\":\"b\",\"from\":\"-1h\",\"to\":\"-2h\"}", "before"},
        {"{\"consumer\":\"b\",\"from\":\"-1h\",\"source\":\"<x>\"}", "source"},
        {"{\"consumer\":\"b\",\"from\":\"-1h\",\"rate\":-1}", "rate"},
        {"{\"consumer\":\"b\",\"from\":\"-1h\",\"rate\":\"5\"}", "rate"},
        {"{\"consumer\":\"b\",\"from\":\"-1h\",\"dry_run\":1}", "true or false"},
        {"{\"consumer\":\"b\",\"from\":\"-1h\",\"grep\":\"\"}", "1 to 4096"},
        {"{\"consumer\":\"b\",\"from\":\"-1h\",\"to_exchange\":true}", "unknown member"},
        {"{\"consumer\":\"b\",\"from\":\"-1h\"} x", "JSON object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(req(&r, bad[i].json, err, sizeof(err)), HQ_EINVAL);
        if (!strstr(err, bad[i].why))
            fail_msg("%s: '%s' does not say '%s'", bad[i].json, err, bad[i].why);
        assert_null(r.consumer);
    }
}

static void test_keys_and_set(void **state)
{
    struct hq_rset *s = NULL;
    struct hq_rkey k1, k2, k3;
    unsigned char old = 0xff;
    uint32_t i;

    (void)state;
    hq_replay_key("stripe", "evt_1", &k1);
    hq_replay_key("stripe", "evt_1", &k2);
    assert_memory_equal(k1.b, k2.b, sizeof(k1.b));
    hq_replay_key("stripe", "evt_2", &k2);
    assert_memory_not_equal(k1.b, k2.b, sizeof(k1.b));
    /* (source, id) boundaries are unambiguous */
    hq_replay_key("ab", "c", &k2);
    hq_replay_key("a", "bc", &k3);
    assert_memory_not_equal(k2.b, k3.b, sizeof(k2.b));

    assert_int_equal(hq_rset_new(&s), 0);
    assert_int_equal(hq_rset_get(s, &k1), 0);
    assert_int_equal(hq_rset_add(s, &k1, 1, &old), 0);
    assert_int_equal(old, 0);
    assert_int_equal(hq_rset_add(s, &k1, 4, &old), 0);
    assert_int_equal(old, 1);
    assert_int_equal(hq_rset_get(s, &k1), 5);
    assert_int_equal(hq_rset_add(s, &k1, 0, NULL), HQ_EINVAL);
    /* growth: 100k distinct keys keep their flags */
    for (i = 0; i < 100000; i++) {
        char id[32];
        struct hq_rkey k;

        snprintf(id, sizeof(id), "id-%u", i);
        hq_replay_key("src", id, &k);
        assert_int_equal(hq_rset_add(s, &k, (unsigned char)(1 + (i % 3)), NULL), 0);
    }
    assert_int_equal(hq_rset_count(s), 100001);
    for (i = 0; i < 100000; i += 997) {
        char id[32];
        struct hq_rkey k;

        snprintf(id, sizeof(id), "id-%u", i);
        hq_replay_key("src", id, &k);
        assert_int_equal(hq_rset_get(s, &k), 1 + (i % 3));
    }
    assert_int_equal(hq_rset_get(s, &k1), 5);
    hq_replay_key("src", "id-100000", &k2);
    assert_int_equal(hq_rset_get(s, &k2), 0);
    hq_rset_free(s);
    hq_rset_free(NULL);
}

/* ================================================================ checkpoint */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void append_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "a");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_checkpoint(void **state)
{
    char path[512], lock[512];
    struct hq_rckpt_info info, got;
    struct hq_rckpt *c = NULL;
    struct hq_rset *s = NULL;
    struct hq_rkey k[5];
    int i, fd1 = -1, fd2 = -1;

    (void)state;
    snprintf(path, sizeof(path), "%s/sub/dir/rpl-0123456789abcdef.ckpt", hqtest_dir);
    assert_int_equal(hq_rckpt_load(path, &got, NULL, 0), HQ_ENOTFOUND);
    memset(&info, 0, sizeof(info));
    memcpy(info.id, "rpl-0123456789abcdef", HQ_REPLAY_ID_LEN + 1);
    memset(info.spec_sha, 'a', 64);
    info.from_ms = -5;
    info.to_ms = INT64_MAX;
    info.started_ms = 1234;
    for (i = 0; i < 5; i++) {
        char id[8];

        snprintf(id, sizeof(id), "e%d", i);
        hq_replay_key("s", id, &k[i]);
    }
    assert_int_equal(hq_rckpt_create(path, &info, "from=\"x\"\nnewline", &c), 0);
    assert_int_equal(hq_rckpt_add(c, &k[0]), 0);
    assert_int_equal(hq_rckpt_add(c, &k[2]), 0);
    assert_int_equal(hq_rckpt_flush(c, false, 0), 0);
    /* written (not necessarily synced) before close: a killed process loses nothing */
    assert_int_equal(hq_rset_new(&s), 0);
    assert_int_equal(hq_rckpt_load(path, &got, s, 4), 0);
    assert_int_equal(got.confirmed, 2);
    assert_int_equal(got.torn, 0);
    assert_string_equal(got.id, info.id);
    assert_memory_equal(got.spec_sha, info.spec_sha, 64);
    assert_int_equal(got.from_ms, -5);
    assert_int_equal(got.to_ms, INT64_MAX);
    assert_int_equal(got.started_ms, 1234);
    assert_false(got.done);
    assert_int_equal(hq_rset_get(s, &k[0]), 4);
    assert_int_equal(hq_rset_get(s, &k[1]), 0);
    assert_int_equal(hq_rset_get(s, &k[2]), 4);
    assert_int_equal(hq_rckpt_close(c), 0);
    hq_rset_free(s);

    /* a torn last line (crash mid-write) is ignored, and the next append starts a new line */
    append_file(path, "c 0123456789abcdef01");
    assert_int_equal(hq_rckpt_load(path, &got, NULL, 0), 0);
    assert_int_equal(got.confirmed, 2);
    assert_int_equal(got.torn, 1);
    assert_int_equal(hq_rckpt_open(path, &c), 0);
    assert_int_equal(hq_rckpt_add(c, &k[4]), 0);
    assert_int_equal(hq_rckpt_mark_done(c, 3, 99), 0);
    assert_int_equal(hq_rckpt_close(c), 0);
    assert_int_equal(hq_rset_new(&s), 0);
    assert_int_equal(hq_rckpt_load(path, &got, s, 1), 0);
    assert_int_equal(got.confirmed, 3);
    assert_int_equal(got.torn, 1);
    assert_true(got.done);
    assert_int_equal(got.done_events, 3);
    assert_int_equal(got.done_ms, 99);
    assert_int_equal(hq_rset_get(s, &k[4]), 1);
    hq_rset_free(s);

    /* garbage lines are skipped, bad hex too; a non-checkpoint or a header-less file is
     * refused */
    append_file(path, "c zz23456789abcdef0123456789abcdef\nwhat is this\n");
    assert_int_equal(hq_rckpt_load(path, &got, NULL, 0), 0);
    assert_int_equal(got.torn, 3);
    write_file(path, "hello\n");
    assert_int_equal(hq_rckpt_load(path, &got, NULL, 0), HQ_EINVAL);
    write_file(path, "hookmq-replay checkpoint 1\nid rpl-0123456789abcdef\n");
    assert_int_equal(hq_rckpt_load(path, &got, NULL, 0), HQ_EINVAL);
    write_file(path, "");
    assert_int_equal(hq_rckpt_load(path, &got, NULL, 0), HQ_EINVAL);

    /* create replaces (restart) */
    assert_int_equal(hq_rckpt_create(path, &info, NULL, &c), 0);
    assert_int_equal(hq_rckpt_close(c), 0);
    assert_int_equal(hq_rckpt_load(path, &got, NULL, 0), 0);
    assert_int_equal(got.confirmed, 0);
    assert_false(got.done);

    /* one run per replay */
    snprintf(lock, sizeof(lock), "%s/locks/x.lock", hqtest_dir);
    assert_int_equal(hq_rckpt_lock(lock, &fd1), 0);
    assert_int_equal(hq_rckpt_lock(lock, &fd2), HQ_EBLOCKED);
    assert_int_equal(fd2, -1);
    close(fd1);
    assert_int_equal(hq_rckpt_lock(lock, &fd2), 0);
    close(fd2);
}

/* The directories the checkpoint's mkdir -p creates are durable: the directory that holds each
 * of them is fsync'd, and so is the one that holds the checkpoint (issue 11 item 19). */
static void test_checkpoint_fsyncs_new_directories(void **state)
{
    char base[PATH_MAX], path[PATH_MAX + 64], dir[PATH_MAX + 64];
    struct hq_rckpt_info info;
    struct hq_rckpt *c = NULL;
    int fd = -1;

    (void)state;
    assert_non_null(realpath(hqtest_dir, base));
    snprintf(path, sizeof(path), "%s/new1/new2/rpl-0123456789abcdef.ckpt", base);
    memset(&info, 0, sizeof(info));
    memcpy(info.id, "rpl-0123456789abcdef", HQ_REPLAY_ID_LEN + 1);
    memset(info.spec_sha, 'a', 64);
    hqtest_n_fsynced = 0;
    assert_int_equal(hq_rckpt_create(path, &info, NULL, &c), HQ_OK);
    assert_int_equal(hq_rckpt_close(c), HQ_OK);
    assert_true(hqtest_was_fsynced(base)); /* holds new1 */
    snprintf(dir, sizeof(dir), "%s/new1", base);
    assert_true(hqtest_was_fsynced(dir)); /* holds new2 */
    snprintf(dir, sizeof(dir), "%s/new1/new2", base);
    assert_true(hqtest_was_fsynced(dir)); /* holds the checkpoint */

    /* the lock file's directories too */
    hqtest_n_fsynced = 0;
    snprintf(path, sizeof(path), "%s/lock1/lock2/x.lock", base);
    assert_int_equal(hq_rckpt_lock(path, &fd), HQ_OK);
    close(fd);
    assert_true(hqtest_was_fsynced(base)); /* holds lock1 */
    snprintf(dir, sizeof(dir), "%s/lock1", base);
    assert_true(hqtest_was_fsynced(dir)); /* holds lock2 */

    /* a path component that is a file: a clear error, nothing created */
    snprintf(path, sizeof(path), "%s/new1/new2/rpl-0123456789abcdef.ckpt/x.ckpt", base);
    assert_int_equal(hq_rckpt_create(path, &info, NULL, &c), HQ_EIO);
    assert_null(c);
}

/* Many keys: the buffer spills to the file by itself; every key comes back. */
static void test_checkpoint_many(void **state)
{
    char path[512];
    struct hq_rckpt_info info, got;
    struct hq_rckpt *c = NULL;
    struct hq_rset *s = NULL;
    uint32_t i;

    (void)state;
    snprintf(path, sizeof(path), "%s/many.ckpt", hqtest_dir);
    memset(&info, 0, sizeof(info));
    memcpy(info.id, "rpl-0000000000000000", HQ_REPLAY_ID_LEN + 1);
    memset(info.spec_sha, 'b', 64);
    assert_int_equal(hq_rckpt_create(path, &info, NULL, &c), 0);
    for (i = 0; i < 50000; i++) {
        char id[16];
        struct hq_rkey k;

        snprintf(id, sizeof(id), "%u", i);
        hq_replay_key("s", id, &k);
        assert_int_equal(hq_rckpt_add(c, &k), 0);
        if (i % 1000 == 0)
            assert_int_equal(hq_rckpt_flush(c, false, (int64_t)i), 0);
    }
    assert_int_equal(hq_rckpt_close(c), 0);
    assert_int_equal(hq_rset_new(&s), 0);
    assert_int_equal(hq_rckpt_load(path, &got, s, 2), 0);
    assert_int_equal(got.confirmed, 50000);
    assert_int_equal(hq_rset_count(s), 50000);
    hq_rset_free(s);
}

/* ================================================================ the copy */

static void test_prepare_msg(void **state)
{
    struct hq_msg m;
    const struct hq_hdr *h;

    (void)state;
    memset(&m, 0, sizeof(m));
    assert_int_equal(hq_msg_add_str(&m, "hookmq-source", "stripe"), 0);
    assert_int_equal(hq_msg_add_long(&m, "x-delivery-count", 3), 0);
    assert_int_equal(hq_msg_add_str(&m, "x-first-death-queue", "q"), 0);
    assert_int_equal(hq_msg_add_str(&m, "x-last-death-reason", "rejected"), 0);
    assert_int_equal(hq_msg_add_str(&m, "x-death", "?"), 0);
    assert_int_equal(hq_msg_add_str(&m, "x-stream-offset", "1"), 0);
    assert_int_equal(hq_msg_add_long(&m, "hookmq-attempt", 4), 0);
    assert_int_equal(hq_msg_add_str(&m, "hookmq-replay-id", "rpl-old"), 0);
    assert_int_equal(hq_msg_add_long(&m, "hookmq-replayed-at", 1), 0);
    assert_int_equal(hq_msg_add_str(&m, "x-custom", "kept"), 0);
    assert_int_equal(hq_msg_add_long(&m, "hookmq-received-at", 1700000000000LL), 0);
    m.message_id = strdup("evt_1");
    m.content_type = strdup("application/json");
    m.timestamp_s = 1700000000;

    assert_int_equal(hq_replay_prepare_msg(&m, "rpl-new", 1800000000123LL, true), 0);
    assert_int_equal(m.n_headers, 6);
    /* order kept, then the new ones */
    assert_string_equal(m.headers[0].key, "hookmq-source");
    assert_string_equal(m.headers[1].key, "x-custom");
    assert_string_equal(m.headers[2].key, "hookmq-received-at");
    assert_null(hq_msg_header(&m, "x-death"));
    assert_null(hq_msg_header(&m, "x-delivery-count"));
    assert_null(hq_msg_header(&m, "x-first-death-queue"));
    assert_null(hq_msg_header(&m, "x-last-death-reason"));
    assert_null(hq_msg_header(&m, "x-stream-offset"));
    h = hq_msg_header(&m, "hookmq-attempt");
    assert_non_null(h);
    assert_int_equal(h->type, HQ_HDR_LONG);
    assert_int_equal(h->num, 1);
    h = hq_msg_header(&m, "hookmq-replay-id");
    assert_non_null(h);
    assert_int_equal(h->type, HQ_HDR_STR);
    assert_string_equal(h->str, "rpl-new");
    h = hq_msg_header(&m, "hookmq-replayed-at");
    assert_non_null(h);
    assert_int_equal(h->type, HQ_HDR_LONG);
    assert_int_equal(h->num, 1800000000123LL);
    assert_string_equal(m.message_id, "evt_1");
    assert_string_equal(m.content_type, "application/json");
    assert_int_equal(m.timestamp_s, 1700000000);

    /* to the exchange: hookmq-attempt untouched */
    assert_int_equal(hq_msg_add_long(&m, "hookmq-attempt", 7), 0); /* now twice: 1 and 7 */
    assert_int_equal(hq_replay_prepare_msg(&m, "rpl-2", 5, false), 0);
    h = hq_msg_header(&m, "hookmq-replay-id");
    assert_string_equal(h->str, "rpl-2");
    {
        size_t i, n = 0;

        for (i = 0; i < m.n_headers; i++)
            n += strcmp(m.headers[i].key, "hookmq-replay-id") == 0;
        assert_int_equal(n, 1);
    }
    hq_msg_free(&m);
}

/* ================================================================ rate */

static void test_tbucket(void **state)
{
    struct hq_tbucket b;
    double t = 100.0, w;
    int taken = 0, i;

    (void)state;
    hq_tbucket_init(&b, 200, 10, t);
    assert_true(hq_tbucket_take(&b, t) == 0); /* the first at once */
    w = hq_tbucket_take(&b, t);
    assert_true(w > 0.004 && w <= 0.0051);
    /* over 1 s of simulated time, about 200 */
    for (i = 0; i < 1000; i++) {
        t += 0.001;
        while (hq_tbucket_take(&b, t) == 0)
            taken++;
    }
    assert_in_range(taken, 199, 201);
    /* idle for a minute: at most the burst at once */
    t += 60;
    taken = 0;
    while (hq_tbucket_take(&b, t) == 0)
        taken++;
    assert_int_equal(taken, 10);
    /* unlimited */
    hq_tbucket_init(&b, 0, 0, t);
    for (i = 0; i < 1000; i++)
        assert_true(hq_tbucket_take(&b, t) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_rabbitmq_table),
        cmocka_unit_test(test_topic_edges),
        cmocka_unit_test(test_topic_differential),
        cmocka_unit_test(test_topic_hostile),
        cmocka_unit_test(test_args_ok),
        cmocka_unit_test(test_args_errors),
        cmocka_unit_test(test_replay_id),
        cmocka_unit_test(test_console_request),
        cmocka_unit_test(test_keys_and_set),
        cmocka_unit_test_setup_teardown(test_checkpoint, hqtest_dir_setup, hqtest_dir_teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_many, hqtest_dir_setup,
                                        hqtest_dir_teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_fsyncs_new_directories, hqtest_dir_setup,
                                        hqtest_dir_teardown),
        cmocka_unit_test(test_prepare_msg),
        cmocka_unit_test(test_tbucket),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
