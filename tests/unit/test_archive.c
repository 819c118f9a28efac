/* Unit tests of the archive (core/archive*.c) and lifecycle records (core/lifecycle.c):
 * UTF-8 validation, record encode/parse round trips of every byte value, exact headers for
 * replay, hostile lines, the segment writer with a torn line, compression + index + id lookup,
 * scans with time windows at their boundaries, late events, retention, stats, recovery. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* test paths are short; snprintf truncation cannot happen here (a GCC-only warning) */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include "hq__archive.h"
#include "hq_archive.h"
#include "hq_consume.h"
#include "hq_lifecycle.h"
#include "hq_log.h"
#include "hq_time.h"

#define H(h) ((int64_t)(h) * 3600000LL)
/* 2026-11-29T10:00:00Z */
#define T0 1795946400000LL

/* ------------------------------------------------------------------ helpers */

static void msg_init(struct hq_msg *m, const char *source, const char *type, const char *id,
                     int64_t received_at, const void *body, size_t n)
{
    char rk[256];

    memset(m, 0, sizeof(*m));
    snprintf(rk, sizeof(rk), "%s.%s", source, type);
    m->routing_key = strdup(rk);
    m->message_id = id ? strdup(id) : NULL;
    m->content_type = strdup("application/json");
    m->timestamp_s = received_at / 1000;
    assert_int_equal(hq_msg_add_str(m, "hookmq-source", source), HQ_OK);
    assert_int_equal(hq_msg_add_str(m, "hookmq-event-type", type), HQ_OK);
    assert_int_equal(hq_msg_add_long(m, "hookmq-received-at", received_at), HQ_OK);
    if (n) {
        m->body = malloc(n);
        memcpy(m->body, body, n);
    }
    m->body_len = n;
}

/* encode m as an event, parse it back, check the body bytes; returns the line for more checks
 * (caller frees). */
static char *round_trip(const void *body, size_t n, bool expect_plain)
{
    struct hq_msg m;
    struct hq_buf b = HQ_BUF_INIT(64u << 20);
    struct hq_arec r;
    char *line;

    msg_init(&m, "src", "t.x", "id-1", T0, body, n);
    assert_int_equal(hq_arec_encode_msg(HQ_AREC_EVENT, &m, 2, T0 + 5, &b), HQ_OK);
    assert_true(b.len > 0 && b.data[b.len - 1] == '\n');
    assert_null(memchr(b.data, '\n', b.len - 1)); /* one line */
    assert_int_equal(hq_arec_parse((const char *)b.data, b.len, &r), HQ_OK);
    assert_int_equal(r.body_len, n);
    if (n)
        assert_memory_equal(r.body, body, n);
    assert_int_equal(r.kind, HQ_AREC_EVENT);
    assert_false(r.lifecycle);
    assert_int_equal(r.received_at, T0);
    assert_string_equal(r.source, "src");
    assert_string_equal(r.type, "t.x");
    assert_string_equal(r.id, "id-1");
    assert_string_equal(r.routing_key, "src.t.x");
    if (expect_plain) {
        assert_non_null(strstr((const char *)b.data, "\"body\":\""));
        assert_null(strstr((const char *)b.data, "body_b64"));
    } else {
        assert_non_null(strstr((const char *)b.data, "\"body_b64\":\""));
    }
    line = strdup((const char *)b.data);
    hq_arec_free(&r);
    hq_msg_free(&m);
    hq_buf_free(&b);
    return line;
}

static char tmpdir_buf[PATH_MAX];

static const char *mktmp(void)
{
    snprintf(tmpdir_buf, sizeof(tmpdir_buf), "/tmp/hq-test-archive-XXXXXX");
    assert_non_null(mkdtemp(tmpdir_buf));
    return tmpdir_buf;
}

static void rm_rf(const char *path)
{
    char cmd[PATH_MAX + 32];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static bool file_exists(const char *base, const char *ext)
{
    char p[PATH_MAX + 16];
    struct stat st;

    snprintf(p, sizeof(p), "%s%s", base, ext);
    return stat(p, &st) == 0;
}

/* Write records for (source, id_i, at_i) into dir through the writer at writer time now. */
static void write_events(struct hq_awriter *w, int64_t now, const char *source, int from, int to,
                         int64_t at0, int64_t step, size_t body_len, char *closed, size_t closedsz)
{
    struct hq_buf b = HQ_BUF_INIT(256u << 20);
    char id[64], *body = malloc(body_len + 1);
    int i;

    for (i = from; i < to; i++) {
        struct hq_msg m;
        size_t k;

        snprintf(id, sizeof(id), "evt-%06d", i);
        for (k = 0; k < body_len; k++)
            body[k] = (char)('a' + (i + (int)k) % 26);
        if (body_len > 10)
            memcpy(body, id, strlen(id));
        msg_init(&m, source, "order/created", id, at0 + (int64_t)(i - from) * step, body,
                 body_len);
        assert_int_equal(hq_arec_encode_msg(HQ_AREC_EVENT, &m, 2, now, &b), HQ_OK);
        hq_msg_free(&m);
    }
    assert_int_equal(hq_awriter_append(w, now, b.data, b.len, closed, closedsz, NULL), HQ_OK);
    hq_buf_free(&b);
    free(body);
}

struct collect {
    size_t n;
    int64_t at[64];
    char ids[64][64];
    size_t lifecycle;
};

static int collect_fn(void *arg, const struct hq_arec *r)
{
    struct collect *c = arg;

    if (c->n < 64) {
        c->at[c->n] = r->received_at;
        snprintf(c->ids[c->n], sizeof(c->ids[0]), "%s", r->id);
    }
    if (r->lifecycle)
        c->lifecycle++;
    c->n++;
    return 0;
}

/* ------------------------------------------------------------------ UTF-8 */

static void test_utf8(void **state)
{
    static const struct {
        const char *s;
        size_t n;
        bool ok;
    } cases[] = {
        {"", 0, true},
        {"plain ascii / \" \\", 17, true},
        {"\0", 1, true},
        {"\xc3\xa9", 2, true},                 /* é */
        {"\xe2\x82\xac", 3, true},             /* € */
        {"\xf0\x9f\x98\x80", 4, true},         /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", 4, true},         /* U+10FFFF */
        {"\xe2\x80\xa8", 3, true},             /* U+2028 */
        {"\xef\xbf\xbd", 3, true},             /* U+FFFD */
        {"\xc0\x80", 2, false},                /* overlong NUL */
        {"\xc1\xbf", 2, false},                /* overlong */
        {"\xe0\x80\x80", 3, false},            /* overlong */
        {"\xe0\x9f\xbf", 3, false},            /* overlong */
        {"\xf0\x80\x80\x80", 4, false},        /* overlong */
        {"\xf0\x8f\xbf\xbf", 4, false},        /* overlong */
        {"\xed\xa0\x80", 3, false},            /* U+D800 */
        {"\xed\xbf\xbf", 3, false},            /* U+DFFF */
        {"\xf4\x90\x80\x80", 4, false},        /* U+110000 */
        {"\xf5\x80\x80\x80", 4, false},
        {"\xff", 1, false},
        {"\x80", 1, false},                    /* lone continuation */
        {"\xc3", 1, false},                    /* truncated */
        {"\xe2\x82", 2, false},                /* truncated */
        {"\xf0\x9f\x98", 3, false},            /* truncated */
        {"\xc3\x28", 2, false},                /* bad continuation */
        {"abcdefgh\xc3\xa9ijklmnop\xff", 19, false},
        {"abcdefghijklmnopqrstuvwxyz0123456789\xc3\xa9", 38, true},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (hq_utf8_valid((const unsigned char *)cases[i].s, cases[i].n) != cases[i].ok)
            fail_msg("case %zu: expected %d", i, cases[i].ok);
    }
}

/* ------------------------------------------------------------------ round trips */

static void test_round_trip_bytes(void **state)
{
    unsigned char all[256], ascii[128];
    char *line;
    int i;

    (void)state;
    for (i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (i = 0; i < 128; i++)
        ascii[i] = (unsigned char)i;
    /* every byte value: not UTF-8 -> body_b64, exact */
    free(round_trip(all, sizeof(all), false));
    /* every ASCII byte, NUL and controls included: valid UTF-8 -> body, exact */
    line = round_trip(ascii, sizeof(ascii), true);
    assert_non_null(strstr(line, "\\u0000")); /* NUL escaped */
    assert_non_null(strstr(line, "\\u001f"));
    assert_non_null(strstr(line, "\\\"")); /* quote escaped */
    assert_non_null(strstr(line, "\\\\")); /* backslash escaped */
    assert_non_null(strstr(line, "./0"));  /* '/' kept as is */
    free(line);
    /* each single byte alone */
    for (i = 0; i < 256; i++) {
        unsigned char c = (unsigned char)i;
        free(round_trip(&c, 1, i < 0x80));
    }
    /* U+2028 / U+2029 are escaped (JavaScript-safe) and come back exact */
    line = round_trip("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", 9, true);
    assert_non_null(strstr(line, "\\u2028"));
    assert_non_null(strstr(line, "\\u2029"));
    free(line);
    /* multi-byte text */
    free(round_trip("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 /path/", 20, true));
    /* invalid sequences -> body_b64, exact */
    free(round_trip("ok\xc0\x80", 4, false));
    free(round_trip("ok\xed\xa0\x80", 5, false));
    free(round_trip("ok\xf4\x90\x80\x80", 6, false));
    free(round_trip("ok\xe2\x82", 4, false));
    /* empty */
    free(round_trip("", 0, true));
    /* a large body with every byte pattern (b64 in chunks) */
    {
        size_t n = 100000, k;
        unsigned char *big = malloc(n);
        for (k = 0; k < n; k++)
            big[k] = (unsigned char)(k * 7 + 3);
        free(round_trip(big, n, false));
        for (k = 0; k < n; k++)
            big[k] = (unsigned char)(k % 128);
        free(round_trip(big, n, true));
        free(big);
    }
}

/* json-c writes '/' as "\/": such a line must still give back the exact bytes */
static void test_parse_escapes(void **state)
{
    const char *line =
        "{\"kind\":\"event\",\"received_at\":5,\"source\":\"s\",\"type\":\"t\",\"id\":\"a\\/b\","
        "\"routing_key\":\"s.t\",\"properties\":{},\"headers\":{},"
        "\"body\":\"x\\/y\\u0000z\\ud83d\\ude00\\n\"}";
    struct hq_arec r;

    (void)state;
    assert_int_equal(hq_arec_parse(line, strlen(line), &r), HQ_OK);
    assert_string_equal(r.id, "a/b");
    assert_int_equal(r.body_len, 10);
    assert_memory_equal(r.body, "x/y\0z\xf0\x9f\x98\x80\n", 10);
    assert_int_equal(r.line_len, strlen(line));
    hq_arec_free(&r);
}

static void test_headers_exact(void **state)
{
    struct hq_msg m, back;
    struct hq_buf b = HQ_BUF_INIT(1u << 20);
    struct hq_arec r;
    const struct hq_hdr *h;

    (void)state;
    msg_init(&m, "gh", "push", "d-1", T0, "{}", 2);
    assert_int_equal(hq_msg_add_str(&m, "http-x-latin1", "caf\xe9/\x01"), HQ_OK);
    assert_int_equal(hq_msg_add_str(&m, "http-x-utf8", "caf\xc3\xa9 \"q\""), HQ_OK);
    assert_int_equal(hq_msg_add_long(&m, "hookmq-attempt", -7), HQ_OK);
    assert_int_equal(hq_arec_encode_msg(HQ_AREC_EVENT, &m, 2, 0, &b), HQ_OK);
    assert_non_null(strstr((char *)b.data, "\"http-x-latin1\":{\"b64\":\""));
    assert_int_equal(hq_arec_parse((char *)b.data, b.len, &r), HQ_OK);
    assert_int_equal(hq_arec_to_msg(&r, &back), HQ_OK);
    assert_string_equal(back.routing_key, "gh.push");
    assert_string_equal(back.message_id, "d-1");
    assert_string_equal(back.content_type, "application/json");
    assert_int_equal(back.timestamp_s, T0 / 1000);
    assert_int_equal(back.n_headers, m.n_headers);
    h = hq_msg_header(&back, "http-x-latin1");
    assert_non_null(h);
    assert_string_equal(h->str, "caf\xe9/\x01");
    h = hq_msg_header(&back, "http-x-utf8");
    assert_string_equal(h->str, "caf\xc3\xa9 \"q\"");
    h = hq_msg_header(&back, "hookmq-attempt");
    assert_int_equal(h->type, HQ_HDR_LONG);
    assert_int_equal(h->num, -7);
    h = hq_msg_header(&back, "hookmq-received-at");
    assert_int_equal(h->num, T0);
    assert_int_equal(back.body_len, 2);
    assert_memory_equal(back.body, "{}", 2);
    hq_msg_free(&back);
    hq_arec_free(&r);
    hq_msg_free(&m);
    hq_buf_free(&b);
}

/* received_at falls back to the timestamp, then to the logger's clock */
static void test_received_at_fallbacks(void **state)
{
    struct hq_msg m;
    struct hq_buf b = HQ_BUF_INIT(1u << 20);
    struct hq_arec r;

    (void)state;
    memset(&m, 0, sizeof(m));
    m.routing_key = strdup("shop.orders.create");
    m.timestamp_s = 1000;
    assert_int_equal(hq_arec_encode_msg(HQ_AREC_EVENT, &m, 0, 77, &b), HQ_OK);
    assert_int_equal(hq_arec_parse((char *)b.data, b.len, &r), HQ_OK);
    assert_int_equal(r.received_at, 1000000);
    assert_string_equal(r.source, "shop"); /* from the routing key */
    assert_string_equal(r.type, "orders.create");
    assert_string_equal(r.id, "");
    hq_arec_free(&r);
    hq_buf_reset(&b);
    m.timestamp_s = 0;
    assert_int_equal(hq_arec_encode_msg(HQ_AREC_EVENT, &m, 0, 77, &b), HQ_OK);
    assert_int_equal(hq_arec_parse((char *)b.data, b.len, &r), HQ_OK);
    assert_int_equal(r.received_at, 77);
    hq_arec_free(&r);
    hq_msg_free(&m);
    hq_buf_free(&b);
}

static void test_hostile_lines(void **state)
{
    static const char *const bad[] = {
        "",
        "{",
        "[]",
        "null",
        "{\"kind\":\"event\"}",
        /* torn */
        "{\"kind\":\"event\",\"received_at\":5,\"source\":\"s\",\"type\":\"t\",\"id\":\"i\","
        "\"routing_key\":\"r\",\"properties\":{},\"headers\":{},\"body\":\"ab",
        /* both bodies */
        "{\"kind\":\"event\",\"received_at\":5,\"source\":\"s\",\"type\":\"t\",\"id\":\"i\","
        "\"routing_key\":\"r\",\"properties\":{},\"headers\":{},\"body\":\"a\",\"body_b64\":\"YQ==\"}",
        /* no body */
        "{\"kind\":\"event\",\"received_at\":5,\"source\":\"s\",\"type\":\"t\",\"id\":\"i\","
        "\"routing_key\":\"r\",\"properties\":{},\"headers\":{}}",
        /* bad kind */
        "{\"kind\":\"other\",\"received_at\":5,\"source\":\"s\",\"type\":\"t\",\"id\":\"i\","
        "\"routing_key\":\"r\",\"properties\":{},\"headers\":{},\"body\":\"\"}",
        /* received_at not an integer */
        "{\"kind\":\"event\",\"received_at\":\"5\",\"source\":\"s\",\"type\":\"t\",\"id\":\"i\","
        "\"routing_key\":\"r\",\"properties\":{},\"headers\":{},\"body\":\"\"}",
        "{\"kind\":\"event\",\"received_at\":5.5,\"source\":\"s\",\"type\":\"t\",\"id\":\"i\","
        "\"routing_key\":\"r\",\"properties\":{},\"headers\":{},\"body\":\"\"}",
        /* body with an overlong sequence (json-c would accept it) */
        "{\"kind\":\"event\",\"received_at\":5,\"source\":\"s\",\"type\":\"t\",\"id\":\"i\","
        "\"routing_key\":\"r\",\"properties\":{},\"headers\":{},\"body\":\"\xc0\x80\"}",
        /* bad base64 */
        "{\"kind\":\"event\",\"received_at\":5,\"source\":\"s\",\"type\":\"t\",\"id\":\"i\","
        "\"routing_key\":\"r\",\"properties\":{},\"headers\":{},\"body_b64\":\"Y*==\"}",
        /* NUL inside the id */
        "{\"kind\":\"event\",\"received_at\":5,\"source\":\"s\",\"type\":\"t\",\"id\":\"a\\u0000b\","
        "\"routing_key\":\"r\",\"properties\":{},\"headers\":{},\"body\":\"\"}",
        /* trailing garbage */
        "{\"kind\":\"event\",\"received_at\":5,\"source\":\"s\",\"type\":\"t\",\"id\":\"i\","
        "\"routing_key\":\"r\",\"properties\":{},\"headers\":{},\"body\":\"\"}x",
        /* headers not an object */
        "{\"kind\":\"event\",\"received_at\":5,\"source\":\"s\",\"type\":\"t\",\"id\":\"i\","
        "\"routing_key\":\"r\",\"properties\":{},\"headers\":[],\"body\":\"\"}",
        /* single quotes (json-c non-strict would take them) */
        "{'kind':'event'}",
        /* too deep */
        "{\"kind\":\"event\",\"received_at\":5,\"source\":\"s\",\"type\":\"t\",\"id\":\"i\","
        "\"routing_key\":\"r\",\"properties\":{\"a\":[[[[[[[[[[1]]]]]]]]]]},\"headers\":{},"
        "\"body\":\"\"}",
    };
    struct hq_arec r;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (hq_arec_parse(bad[i], strlen(bad[i]), &r) != HQ_EINVAL)
            fail_msg("line %zu parsed", i);
        assert_null(r.line);
    }
    assert_int_equal(hq_arec_parse(NULL, 0, &r), HQ_EINVAL);
}

static void test_lifecycle_records(void **state)
{
    struct hq_lc_record lc = {0};
    struct hq_msg m;
    struct hq_buf b = HQ_BUF_INIT(1u << 20);
    struct hq_arec r;
    char err[3000];
    const struct hq_hdr *h;

    (void)state;
    memset(err, 'e', sizeof(err) - 1);
    err[sizeof(err) - 1] = '\0';
    err[1023] = '\xc3'; /* a 2-byte sequence across the 1 KiB cut */
    err[1024] = '\xa9';
    lc.source = "stripe";
    lc.id = "evt_1/\"x\"";
    lc.consumer = "billing";
    lc.attempt = 2;
    lc.verdict = HQ_LC_RETRY_SCHEDULED;
    lc.tier = "10s";
    lc.error = err;
    lc.at_ms = T0 + 123;
    assert_int_equal(hq_lc_encode(&lc, &m), HQ_OK);
    assert_string_equal(m.routing_key, "billing.retry_scheduled");
    assert_string_equal(m.content_type, "application/json");
    assert_non_null(m.message_id);
    assert_int_equal(strlen(m.message_id), 36);
    h = hq_msg_header(&m, "hookmq-verdict");
    assert_string_equal(h->str, "retry_scheduled");
    h = hq_msg_header(&m, "hookmq-event-id");
    assert_string_equal(h->str, "evt_1/\"x\"");
    assert_true(hq_utf8_valid(m.body, m.body_len));
    assert_true(m.body_len < 1300); /* error cut to 1 KiB */
    assert_non_null(strstr((char *)m.body, "\"tier\":\"10s\""));
    assert_non_null(strstr((char *)m.body, "\"attempt\":2"));
    assert_non_null(strstr((char *)m.body, "\"at\":1795946400123"));
    /* archived as a lifecycle record */
    assert_int_equal(hq_arec_encode_msg(HQ_AREC_LIFECYCLE, &m, 2, 0, &b), HQ_OK);
    assert_int_equal(hq_arec_parse((char *)b.data, b.len, &r), HQ_OK);
    assert_true(r.lifecycle);
    assert_int_equal(r.kind, HQ_AREC_LIFECYCLE);
    assert_int_equal(r.received_at, T0 + 123);
    assert_string_equal(r.source, "stripe");
    assert_string_equal(r.id, "evt_1/\"x\"");
    assert_string_equal(r.type, "retry_scheduled");
    assert_int_equal(r.body_len, m.body_len);
    assert_memory_equal(r.body, m.body, m.body_len);
    hq_arec_free(&r);
    /* without headers (hand-published): taken from the body */
    while (m.n_headers) {
        m.n_headers--;
        free(m.headers[m.n_headers].key);
        free(m.headers[m.n_headers].str);
    }
    hq_buf_reset(&b);
    assert_int_equal(hq_arec_encode_msg(HQ_AREC_LIFECYCLE, &m, 2, 0, &b), HQ_OK);
    assert_int_equal(hq_arec_parse((char *)b.data, b.len, &r), HQ_OK);
    assert_string_equal(r.source, "stripe");
    assert_string_equal(r.id, "evt_1/\"x\"");
    assert_string_equal(r.type, "retry_scheduled");
    assert_int_equal(r.received_at, T0 + 123);
    hq_arec_free(&r);
    hq_msg_free(&m);
    hq_buf_free(&b);
    /* refused records */
    lc.consumer = NULL;
    assert_int_equal(hq_lc_encode(&lc, &m), HQ_EINVAL);
    lc.consumer = "c";
    lc.verdict = (enum hq_lc_verdict)99;
    assert_int_equal(hq_lc_encode(&lc, &m), HQ_EINVAL);
    assert_string_equal(hq_lc_verdict_name(HQ_LC_DEAD_LETTERED), "dead_lettered");
    assert_string_equal(hq_lc_verdict_name(HQ_LC_REDRIVEN), "redriven");
    assert_string_equal(hq_lc_verdict_name(HQ_LC_REPLAYED), "replayed");
    assert_string_equal(hq_lc_verdict_name(HQ_LC_PROCESSED), "processed");
    /* no emitter: nothing happens */
    hq_lc_emit(NULL, &lc);
    assert_int_equal(hq_lc_dropped(NULL), 0);
    hq_lc_stop(NULL, 0);
}

/* Records queued back to back with the same routing key leave as one message (hq_lc_batch);
 * the logger turns it back into one archive record per line (hq_arec_encode). */
/* "by" names the person behind an action (console, hookmq-dlx edit); absent otherwise */
static void test_lifecycle_by(void **state)
{
    struct hq_lc_record lc;
    struct hq_lc_parsed p;
    struct hq_msg m;

    (void)state;
    memset(&lc, 0, sizeof(lc));
    lc.source = "stripe";
    lc.id = "evt_1";
    lc.consumer = "billing";
    lc.attempt = 1;
    lc.verdict = HQ_LC_REDRIVEN;
    lc.at_ms = T0;
    lc.by = "ops \"admin\"";
    assert_int_equal(hq_lc_encode(&lc, &m), HQ_OK);
    assert_non_null(strstr((char *)m.body, ",\"by\":\"ops \\\"admin\\\"\",\"at\":"));
    assert_int_equal(hq_lc_parse(m.body, m.body_len, &p), HQ_OK);
    assert_string_equal(p.by, "ops \"admin\"");
    assert_string_equal(p.verdict, "redriven");
    hq_lc_parsed_free(&p);
    hq_msg_free(&m);
    lc.by = NULL;
    assert_int_equal(hq_lc_encode(&lc, &m), HQ_OK);
    assert_null(strstr((char *)m.body, "\"by\""));
    assert_int_equal(hq_lc_parse(m.body, m.body_len, &p), HQ_OK);
    assert_null(p.by);
    hq_lc_parsed_free(&p);
    hq_msg_free(&m);
}

static void test_lifecycle_batch(void **state)
{
    static const char *ids[3] = {"evt_a", "evt_b\nwith a newline", "evt_c"};
    struct hq_lc_record lc = {0};
    struct hq_msg recs[3], other, batch;
    struct hq_delivery d;
    struct hq_buf b = HQ_BUF_INIT(1u << 20);
    struct hq_arec r;
    const char *line;
    size_t i, nrec = 99;
    char want[64];

    (void)state;
    lc.source = "stripe";
    lc.consumer = "billing";
    lc.verdict = HQ_LC_PROCESSED;
    for (i = 0; i < 3; i++) {
        lc.id = ids[i];
        lc.attempt = (uint32_t)i + 1;
        lc.at_ms = T0 + (int64_t)i;
        assert_int_equal(hq_lc_encode(&lc, &recs[i]), HQ_OK);
    }
    assert_int_equal(hq_lc_batch(recs, 3, &batch), HQ_OK);
    assert_string_equal(batch.routing_key, "billing.processed");
    assert_string_equal(batch.content_type, "application/x-ndjson");
    assert_int_equal(strlen(batch.message_id), 36);
    assert_string_not_equal(batch.message_id, recs[0].message_id);
    assert_int_equal(hq_msg_header(&batch, "hookmq-records")->num, 3);
    assert_string_equal(hq_msg_header(&batch, "hookmq-consumer")->str, "billing");
    assert_string_equal(hq_msg_header(&batch, "hookmq-verdict")->str, "processed");
    assert_null(hq_msg_header(&batch, "hookmq-event-id")); /* each line names its own */
    assert_int_equal(batch.body_len, recs[0].body_len + recs[1].body_len + recs[2].body_len + 2);
    assert_memory_equal(batch.body, recs[0].body, recs[0].body_len);
    assert_int_equal(batch.body[recs[0].body_len], '\n');
    assert_int_not_equal(batch.body[batch.body_len - 1], '\n');

    /* refused: one record, or records of different routing keys */
    assert_int_equal(hq_lc_batch(recs, 1, &other), HQ_EINVAL);
    lc.verdict = HQ_LC_DEAD_LETTERED;
    assert_int_equal(hq_lc_encode(&lc, &other), HQ_OK);
    {
        struct hq_msg mixed[2] = {recs[0], other};
        struct hq_msg out;

        assert_int_equal(hq_lc_batch(mixed, 2, &out), HQ_EINVAL);
    }
    hq_msg_free(&other);

    /* the logger: one archive record per line, all from the delivery */
    memset(&d, 0, sizeof(d));
    d.exchange = strdup("hookmq.lifecycle");
    d.routing_key = strdup("billing.processed");
    d.msg = batch;
    d.delivery_mode = 2;
    assert_int_equal(hq_arec_encode(&d, 0, &b, &nrec), HQ_OK);
    assert_int_equal(nrec, 3);
    line = (const char *)b.data;
    for (i = 0; i < 3; i++) {
        const char *nl = strchr(line, '\n');

        assert_non_null(nl);
        assert_int_equal(hq_arec_parse(line, (size_t)(nl - line), &r), HQ_OK);
        assert_int_equal(r.kind, HQ_AREC_LIFECYCLE);
        assert_string_equal(r.source, "stripe");
        assert_string_equal(r.id, ids[i]);
        assert_string_equal(r.type, "processed");
        assert_int_equal(r.received_at, T0 + (int64_t)i);
        assert_int_equal(r.body_len, recs[i].body_len);
        assert_memory_equal(r.body, recs[i].body, recs[i].body_len);
        snprintf(want, sizeof(want), "\"message_id\":\"%s.%zu\"", batch.message_id, i + 1);
        assert_non_null(strstr(r.properties_json, want));
        assert_non_null(strstr(r.properties_json, "\"application/json\""));
        hq_arec_free(&r);
        line = nl + 1;
    }
    assert_int_equal(*line, '\0');

    /* hostile batches: empty lines are skipped, a line that is not a record is still archived
     * (its bytes kept, source/id empty); without the hookmq-records header it is one record */
    free(d.msg.body);
    d.msg.body = (unsigned char *)strdup("\n\nnot json\n{\"source\":\"s\",\"id\":\"i\",\"verdict\":\"processed\",\"at\":1}\n");
    d.msg.body_len = strlen((char *)d.msg.body);
    hq_buf_reset(&b);
    assert_int_equal(hq_arec_encode(&d, 5, &b, &nrec), HQ_OK);
    assert_int_equal(nrec, 2);
    line = strchr((const char *)b.data, '\n') + 1;
    assert_int_equal(hq_arec_parse(line, strlen(line) - 1, &r), HQ_OK);
    assert_string_equal(r.id, "i");
    hq_arec_free(&r);
    while (d.msg.n_headers) { /* drop the headers: hookmq-records too */
        d.msg.n_headers--;
        free(d.msg.headers[d.msg.n_headers].key);
        free(d.msg.headers[d.msg.n_headers].str);
    }
    hq_buf_reset(&b);
    assert_int_equal(hq_arec_encode(&d, 5, &b, &nrec), HQ_OK);
    assert_int_equal(nrec, 1);
    assert_int_equal(hq_arec_parse((const char *)b.data, b.len - 1, &r), HQ_OK);
    assert_int_equal(r.body_len, d.msg.body_len);
    hq_arec_free(&r);

    hq_delivery_free(&d);
    for (i = 0; i < 3; i++)
        hq_msg_free(&recs[i]);
    hq_buf_free(&b);
}

static void test_filter(void **state)
{
    struct hq_afilter f;
    struct hq_arec r;

    (void)state;
    memset(&r, 0, sizeof(r));
    r.received_at = 100;
    r.source = "stripe";
    r.type = "invoice.paid";
    r.id = "evt_1";
    r.body = (unsigned char *)"hello world";
    r.body_len = 11;
    hq_afilter_init(&f);
    assert_true(hq_afilter_match(&f, &r));
    f.from_ms = 100;
    f.to_ms = 101;
    assert_true(hq_afilter_match(&f, &r));
    f.from_ms = 101;
    assert_false(hq_afilter_match(&f, &r));
    f.from_ms = 0;
    f.to_ms = 100; /* exclusive */
    assert_false(hq_afilter_match(&f, &r));
    hq_afilter_init(&f);
    f.type_glob = "invoice.*";
    assert_true(hq_afilter_match(&f, &r));
    f.type_glob = "charge.*";
    assert_false(hq_afilter_match(&f, &r));
    hq_afilter_init(&f);
    f.grep = "o w";
    assert_true(hq_afilter_match(&f, &r));
    f.grep = "xyz";
    assert_false(hq_afilter_match(&f, &r));
    hq_afilter_init(&f);
    f.source = "stripe";
    f.id = "evt_1";
    assert_true(hq_afilter_match(&f, &r));
    f.id = "evt_2";
    assert_false(hq_afilter_match(&f, &r));
    hq_afilter_init(&f);
    r.lifecycle = true;
    r.kind = HQ_AREC_LIFECYCLE;
    assert_true(hq_afilter_match(&f, &r));
    f.events_only = true;
    assert_false(hq_afilter_match(&f, &r));
    hq_afilter_init(&f);
    r.lifecycle = false;
    r.kind = HQ_AREC_TRACE;
    assert_false(hq_afilter_match(&f, &r)); /* traces only when asked for */
    f.kinds = 1u << HQ_AREC_TRACE;
    assert_true(hq_afilter_match(&f, &r));
}

/* ------------------------------------------------------------------ segments */

static void test_segment_names(void **state)
{
    char b[256];

    (void)state;
    assert_int_equal(hq_archive_segment_base("/a", T0 + 59 * 60000, 0, b, sizeof(b)), HQ_OK);
    assert_string_equal(b, "/a/2026/11/29/10");
    assert_int_equal(hq_archive_segment_base("/a", T0 + H(14), 2, b, sizeof(b)), HQ_OK);
    assert_string_equal(b, "/a/2026/11/30/00.2");
    assert_int_equal(hq_archive_segment_base("/a", T0, 0, b, 8), HQ_ETOOBIG);
    assert_int_equal(hq_hour_start(T0 + 3599999), T0);
    assert_int_equal(hq_hour_start(-1), -3600000);
}

static void test_writer_torn_line(void **state)
{
    const char *dir = mktmp();
    struct hq_awriter *w, *w2;
    char err[256], closed[PATH_MAX], base[PATH_MAX], path[PATH_MAX + 16];
    struct hq_afilter f;
    struct collect c;
    uint64_t skipped = 0;
    int fd;

    (void)state;
    assert_int_equal(hq_awriter_open(dir, &w, err, sizeof(err)), HQ_OK);
    /* a second writer on the same dir is refused */
    assert_int_equal(hq_awriter_open(dir, &w2, err, sizeof(err)), HQ_EIO);
    assert_non_null(strstr(err, "locked"));
    write_events(w, T0 + 10, "s", 0, 3, T0, 1, 20, closed, sizeof(closed));
    assert_string_equal(closed, "");
    assert_int_equal(hq_archive_segment_base(dir, T0, 0, base, sizeof(base)), HQ_OK);
    assert_string_equal(hq_awriter_current(w), base);
    hq_awriter_close(w);
    /* crash mid-write: a torn record at the end */
    snprintf(path, sizeof(path), "%s.jsonl", base);
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"kind\":\"event\",\"recei", 22), 22);
    close(fd);
    /* the torn line is reported when read */
    hq_afilter_init(&f);
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan(dir, &f, collect_fn, &c, &skipped), HQ_OK);
    assert_int_equal(c.n, 3);
    assert_int_equal(skipped, 1);
    /* restart in the same hour: the next record is not glued to the torn one */
    assert_int_equal(hq_awriter_open(dir, &w, err, sizeof(err)), HQ_OK);
    write_events(w, T0 + 20, "s", 3, 5, T0 + 3, 1, 20, closed, sizeof(closed));
    /* an hour later: the segment is closed */
    assert_false(hq_awriter_tick(w, T0 + H(1) - 1, closed, sizeof(closed)));
    assert_true(hq_awriter_tick(w, T0 + H(1), closed, sizeof(closed)));
    assert_string_equal(closed, base);
    assert_null(hq_awriter_current(w));
    hq_awriter_close(w);
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan(dir, &f, collect_fn, &c, &skipped), HQ_OK);
    assert_int_equal(c.n, 5);
    assert_int_equal(skipped, 1);
    /* compressed, the torn line stays skipped and counted in the index */
    {
        struct hq_acompress_stats cs;
        assert_int_equal(hq_archive_compress(base, NULL, &cs, err, sizeof(err)), HQ_OK);
        assert_int_equal(cs.records, 5);
        assert_int_equal(cs.invalid, 1);
    }
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan(dir, &f, collect_fn, &c, &skipped), HQ_OK);
    assert_int_equal(c.n, 5);
    assert_int_equal(skipped, 1);
    assert_string_equal(c.ids[4], "evt-000004");
    rm_rf(dir);
}

static void test_compress_index_lookup(void **state)
{
    const char *dir = mktmp();
    struct hq_awriter *w;
    char err[256], closed[PATH_MAX], base[PATH_MAX], ipath[PATH_MAX + 8];
    struct hq_acompress_stats cs;
    struct hq__aidx x;
    struct hq_afilter f;
    struct hq_ascan_stats st;
    struct collect c;
    uint32_t frames[8];
    size_t n, i;
    const int N = 6000;

    (void)state;
    assert_int_equal(hq_awriter_open(dir, &w, err, sizeof(err)), HQ_OK);
    /* 6000 records of ~1.2 KiB: about 7 frames of 1 MiB */
    write_events(w, T0 + 1000, "shop", 0, N / 2, T0, 1000, 900, closed, sizeof(closed));
    write_events(w, T0 + 2000, "shop", N / 2, N, T0 + (int64_t)(N / 2) * 1000, 1000, 900, closed,
                 sizeof(closed));
    /* two duplicates (a redelivery) */
    write_events(w, T0 + 3000, "shop", 10, 12, T0 + 10000, 1000, 900, closed, sizeof(closed));
    assert_true(hq_awriter_tick(w, T0 + H(2), closed, sizeof(closed)));
    hq_awriter_close(w);
    assert_int_equal(hq_archive_segment_base(dir, T0, 0, base, sizeof(base)), HQ_OK);
    assert_string_equal(closed, base);
    assert_int_equal(hq_archive_compress(base, NULL, &cs, err, sizeof(err)), HQ_OK);
    assert_int_equal(cs.records, N + 2);
    assert_int_equal(cs.invalid, 0);
    assert_true(cs.frames >= 5);
    assert_true(cs.bytes_out < cs.bytes_in / 3);
    assert_false(file_exists(base, ".jsonl"));
    assert_true(file_exists(base, ".jsonl.zst"));
    assert_true(file_exists(base, ".idx"));
    assert_false(file_exists(base, ".idx.tmp"));
    /* again: nothing to do */
    {
        struct hq_acompress_stats again;
        assert_int_equal(hq_archive_compress(base, NULL, &again, err, sizeof(err)), HQ_OK);
        assert_int_equal(again.records, 0);
    }

    snprintf(ipath, sizeof(ipath), "%s.idx", base);
    assert_int_equal(hq__aidx_load(ipath, false, true, 0, &x), HQ_OK);
    assert_int_equal(x.records, N + 2);
    assert_int_equal(x.events, N + 2);
    assert_int_equal(x.lifecycle, 0);
    assert_true(x.has_range);
    assert_int_equal(x.min_at, T0);
    assert_int_equal(x.max_at, T0 + (int64_t)(N - 1) * 1000);
    assert_int_equal(x.n_frames, cs.frames);
    assert_int_equal(x.n_ids, N + 2); /* the duplicates are in the last frame */
    assert_int_equal(hq__aidx_lookup(&x, "evt-000010", frames, 8), 2);
    for (i = 1; i < x.n_frames; i++) {
        assert_int_equal(x.frames[i].offset, x.frames[i - 1].offset + x.frames[i - 1].csize);
        if (i + 1 < x.n_frames) /* (the last one holds the duplicates) */
            assert_true(x.frames[i].min_at >= x.frames[i - 1].max_at);
    }
    /* counts per hour: 3600 records in the first hour, the rest in the second */
    {
        uint64_t h0 = 0, h1 = 0, dup = 0;
        for (i = 0; i < x.n_counts; i++) {
            assert_string_equal(x.counts[i].source, "shop");
            assert_string_equal(x.counts[i].type, "order/created");
            if (x.counts[i].hour_ms == T0)
                h0 += x.counts[i].n;
            else if (x.counts[i].hour_ms == T0 + H(1))
                h1 += x.counts[i].n;
            dup += x.counts[i].dup;
        }
        assert_int_equal(h0, 3600 + 2);
        assert_int_equal(h1, N - 3600);
        assert_int_equal(dup, 2);
    }
    n = hq__aidx_lookup(&x, "evt-004321", frames, 8);
    assert_int_equal(n, 1);
    assert_true(x.frames[frames[0]].min_at <= T0 + 4321000 &&
                x.frames[frames[0]].max_at >= T0 + 4321000);
    assert_int_equal(hq__aidx_lookup(&x, "evt-999999", frames, 8), 0);
    hq__aidx_free(&x);

    /* id lookup reads one frame */
    hq_afilter_init(&f);
    f.id = "evt-004321";
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan_ex(dir, &f, collect_fn, &c, &st), HQ_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.at[0], T0 + 4321000);
    assert_int_equal(st.segments_opened, 1);
    assert_int_equal(st.frames_read, 1);
    assert_true(st.records_parsed <= 2);
    /* an unknown id opens nothing */
    f.id = "nope";
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan_ex(dir, &f, collect_fn, &c, &st), HQ_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(st.segments_opened, 0);
    /* the duplicates are both there (query collapses them) */
    f.id = "evt-000010";
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan_ex(dir, &f, collect_fn, &c, &st), HQ_OK);
    assert_int_equal(c.n, 2);
    /* all records, in order */
    hq_afilter_init(&f);
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan_ex(dir, &f, collect_fn, &c, &st), HQ_OK);
    assert_int_equal(c.n, N + 2);
    assert_int_equal(st.frames_read, cs.frames);
    assert_int_equal(st.skipped, 0);
    /* a corrupt index: still readable (whole file) */
    {
        int fd = open(ipath, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "X", 1, 5), 1);
        close(fd);
        f.id = "evt-004321";
        memset(&c, 0, sizeof(c));
        assert_int_equal(hq_archive_scan_ex(dir, &f, collect_fn, &c, &st), HQ_OK);
        assert_int_equal(c.n, 1);
    }
    rm_rf(dir);
}

/* Three closed hours and an open one; windows at their boundaries. */
static void test_scan_time_boundaries(void **state)
{
    const char *dir = mktmp();
    struct hq_awriter *w;
    char err[256], closed[PATH_MAX];
    struct hq_afilter f;
    struct hq_ascan_stats st;
    struct collect c;
    int h;

    (void)state;
    assert_int_equal(hq_awriter_open(dir, &w, err, sizeof(err)), HQ_OK);
    for (h = 0; h < 4; h++) {
        /* records at the very start, one ms in, and the last ms of the hour */
        char id[32];
        struct hq_msg m;
        struct hq_buf b = HQ_BUF_INIT(1u << 20);
        int64_t at[3] = {T0 + H(h), T0 + H(h) + 1, T0 + H(h + 1) - 1};
        int k;

        for (k = 0; k < 3; k++) {
            snprintf(id, sizeof(id), "h%d-%d", h, k);
            msg_init(&m, "s", "t", id, at[k], "x", 1);
            assert_int_equal(hq_arec_encode_msg(HQ_AREC_EVENT, &m, 2, 0, &b), HQ_OK);
            hq_msg_free(&m);
        }
        assert_int_equal(hq_awriter_append(w, T0 + H(h) + 10, b.data, b.len, closed,
                                           sizeof(closed), NULL),
                         HQ_OK);
        hq_buf_free(&b);
        if (closed[0])
            assert_int_equal(hq_archive_compress(closed, NULL, NULL, err, sizeof(err)), HQ_OK);
    }
    /* hour 3 stays open (.jsonl) */
    hq_awriter_close(w);

    hq_afilter_init(&f);
    f.from_ms = T0 + H(1);
    f.to_ms = T0 + H(2);
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan_ex(dir, &f, collect_fn, &c, &st), HQ_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.ids[0], "h1-0");
    assert_string_equal(c.ids[2], "h1-2");
    assert_int_equal(st.segments_total, 4);
    /* reads the overlapping closed segment, and the open one (late events) */
    assert_int_equal(st.segments_opened, 2);
    /* [start+1, end-1): drops the first and the last record */
    f.from_ms = T0 + H(1) + 1;
    f.to_ms = T0 + H(2) - 1;
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan_ex(dir, &f, collect_fn, &c, &st), HQ_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.ids[0], "h1-1");
    /* across the boundary of two closed hours: last ms of 0 and first ms of 1 */
    f.from_ms = T0 + H(1) - 1;
    f.to_ms = T0 + H(1) + 1;
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan_ex(dir, &f, collect_fn, &c, &st), HQ_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], "h0-2");
    assert_string_equal(c.ids[1], "h1-0");
    /* the open hour */
    f.from_ms = T0 + H(3);
    f.to_ms = INT64_MAX;
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan_ex(dir, &f, collect_fn, &c, &st), HQ_OK);
    assert_int_equal(c.n, 3);
    assert_int_equal(st.segments_opened, 1);
    /* an empty window */
    f.from_ms = T0 + H(10);
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan_ex(dir, &f, collect_fn, &c, &st), HQ_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(st.segments_opened, 0);
    f.from_ms = 5;
    f.to_ms = 5;
    assert_int_equal(hq_archive_scan_ex(dir, &f, collect_fn, &c, &st), HQ_OK);
    /* stats: 3 per hour; hour 1 from its index, the open hour by reading it */
    {
        struct hq_astat *rows;
        size_t n;
        assert_int_equal(hq_archive_stats(dir, T0 + H(1), T0 + H(4), &rows, &n, &st), HQ_OK);
        assert_int_equal(n, 3);
        assert_int_equal(rows[0].hour_ms, T0 + H(1));
        assert_string_equal(rows[0].source, "s");
        assert_int_equal(rows[0].events, 3);
        assert_int_equal(rows[2].hour_ms, T0 + H(3));
        assert_int_equal(rows[2].events, 3);
        hq_astat_free(rows, n);
    }
    /* only lifecycle records asked for, and there are none: the closed segments are skipped
     * on their index's counts, and the open one's event lines are not parsed */
    hq_afilter_init(&f);
    f.kinds = 1u << HQ_AREC_LIFECYCLE;
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan_ex(dir, &f, collect_fn, &c, &st), HQ_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(st.segments_opened, 1);
    assert_int_equal(st.records_parsed, 0);
    f.kinds = 1u << HQ_AREC_EVENT;
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan_ex(dir, &f, collect_fn, &c, &st), HQ_OK);
    assert_int_equal(c.n, 12);
    rm_rf(dir);
}

/* A late event (drained from a spool) in the open segment is found by its own time. */
static void test_late_event(void **state)
{
    const char *dir = mktmp();
    struct hq_awriter *w;
    char err[256], closed[PATH_MAX];
    struct hq_afilter f;
    struct collect c;
    struct hq_msg m;
    struct hq_buf b = HQ_BUF_INIT(1u << 20);

    (void)state;
    assert_int_equal(hq_awriter_open(dir, &w, err, sizeof(err)), HQ_OK);
    msg_init(&m, "s", "t", "late-1", T0 - H(5), "x", 1);
    assert_int_equal(hq_arec_encode_msg(HQ_AREC_EVENT, &m, 2, 0, &b), HQ_OK);
    assert_int_equal(hq_awriter_append(w, T0 + 5, b.data, b.len, closed, sizeof(closed), NULL),
                     HQ_OK);
    hq_awriter_close(w);
    hq_afilter_init(&f);
    f.from_ms = T0 - H(5);
    f.to_ms = T0 - H(4);
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan(dir, &f, collect_fn, &c, NULL), HQ_OK);
    assert_int_equal(c.n, 1);
    /* and once closed, through the index range */
    {
        char base[PATH_MAX];
        assert_int_equal(hq_archive_segment_base(dir, T0, 0, base, sizeof(base)), HQ_OK);
        assert_int_equal(hq_archive_compress(base, NULL, NULL, err, sizeof(err)), HQ_OK);
    }
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan(dir, &f, collect_fn, &c, NULL), HQ_OK);
    assert_int_equal(c.n, 1);
    hq_msg_free(&m);
    hq_buf_free(&b);
    rm_rf(dir);
}

static void test_retention(void **state)
{
    const char *dir = mktmp();
    struct hq_awriter *w;
    char err[256], closed[PATH_MAX], b_old[PATH_MAX], b_mid[PATH_MAX], b_new[PATH_MAX], p[PATH_MAX];
    int64_t now = T0 + H(72) + 5;
    unsigned deleted = 0;
    struct stat st;

    (void)state;
    assert_int_equal(hq_awriter_open(dir, &w, err, sizeof(err)), HQ_OK);
    write_events(w, T0 + 5, "s", 0, 2, T0, 1, 10, closed, sizeof(closed));          /* 3 days old */
    write_events(w, now - H(24) - 10, "s", 2, 4, now - H(24), 1, 10, closed, sizeof(closed));
    write_events(w, now, "s", 4, 6, now, 1, 10, closed, sizeof(closed));           /* now */
    hq_awriter_close(w);
    assert_int_equal(hq_archive_segment_base(dir, T0, 0, b_old, sizeof(b_old)), HQ_OK);
    assert_int_equal(hq_archive_segment_base(dir, now - H(24) - 10, 0, b_mid, sizeof(b_mid)), HQ_OK);
    assert_int_equal(hq_archive_segment_base(dir, now, 0, b_new, sizeof(b_new)), HQ_OK);
    assert_int_equal(hq_archive_compress(b_old, NULL, NULL, err, sizeof(err)), HQ_OK);
    assert_true(file_exists(b_old, ".jsonl.zst"));
    /* keep_days 0: keep everything */
    assert_int_equal(hq_archive_retention(dir, 0, now, &deleted), HQ_OK);
    assert_int_equal(deleted, 0);
    /* keep 1 day: the segments whose hour ended more than 24 h ago go (and the emptied day
     * directory); the current one stays */
    assert_int_equal(hq_archive_retention(dir, 1, now, &deleted), HQ_OK);
    assert_int_equal(deleted, 2);
    assert_false(file_exists(b_old, ".jsonl.zst"));
    assert_false(file_exists(b_old, ".idx"));
    snprintf(p, sizeof(p), "%s/2026/11/29", dir);
    assert_int_not_equal(stat(p, &st), 0);
    assert_false(file_exists(b_mid, ".jsonl"));
    assert_true(file_exists(b_new, ".jsonl"));
    rm_rf(dir);
}

static void pending_fn(void *arg, const char *base)
{
    char *out = arg;
    size_t n = strlen(out);

    snprintf(out + n, 4096 - n, "%s;", base);
}

static void test_recovery(void **state)
{
    const char *dir = mktmp();
    struct hq_awriter *w;
    char err[256], closed[PATH_MAX], b0[PATH_MAX], b1[PATH_MAX], b2[PATH_MAX], got[4096] = "";
    char want[4096], p[PATH_MAX + 32];
    int fd;

    (void)state;
    assert_int_equal(hq_awriter_open(dir, &w, err, sizeof(err)), HQ_OK);
    write_events(w, T0, "s", 0, 2, T0, 1, 10, closed, sizeof(closed));
    write_events(w, T0 + H(1), "s", 2, 4, T0 + H(1), 1, 10, closed, sizeof(closed));
    write_events(w, T0 + H(2), "s", 4, 6, T0 + H(2), 1, 10, closed, sizeof(closed));
    hq_awriter_close(w);
    assert_int_equal(hq_archive_segment_base(dir, T0, 0, b0, sizeof(b0)), HQ_OK);
    assert_int_equal(hq_archive_segment_base(dir, T0 + H(1), 0, b1, sizeof(b1)), HQ_OK);
    assert_int_equal(hq_archive_segment_base(dir, T0 + H(2), 0, b2, sizeof(b2)), HQ_OK);
    /* hour 0: a crash during compression left temporary files */
    snprintf(p, sizeof(p), "%s.jsonl.zst.tmp", b0);
    fd = open(p, O_WRONLY | O_CREAT, 0600);
    assert_int_equal(write(fd, "junk", 4), 4);
    close(fd);
    /* hour 1: a crash after the rename, before the delete: .jsonl and .jsonl.zst */
    assert_int_equal(hq_archive_compress(b1, NULL, NULL, err, sizeof(err)), HQ_OK);
    snprintf(p, sizeof(p), "cp '%s.jsonl.zst' /dev/null && printf 'x\\n' > '%s.jsonl'", b1, b1);
    assert_int_equal(system(p), 0);
    /* hour 2 is the current one: left for the logger to append to */
    assert_int_equal(hq_archive_pending(dir, T0 + H(2) + 1, NULL, pending_fn, got), HQ_OK);
    snprintf(want, sizeof(want), "%s;%s;", b0, b1);
    assert_string_equal(got, want);
    assert_false(file_exists(b0, ".jsonl.zst.tmp"));
    assert_int_equal(hq_archive_compress(b0, NULL, NULL, err, sizeof(err)), HQ_OK);
    assert_int_equal(hq_archive_compress(b1, NULL, NULL, err, sizeof(err)), HQ_OK);
    assert_false(file_exists(b1, ".jsonl"));
    got[0] = '\0';
    assert_int_equal(hq_archive_pending(dir, T0 + H(2) + 1, NULL, pending_fn, got), HQ_OK);
    assert_string_equal(got, "");
    /* a cancelled compression leaves no temporary files and the source intact */
    {
        volatile int cancel = 1;
        char big[PATH_MAX];
        assert_int_equal(hq_awriter_open(dir, &w, err, sizeof(err)), HQ_OK);
        write_events(w, T0 + H(5), "s", 0, 3000, T0 + H(5), 1, 900, closed, sizeof(closed));
        hq_awriter_close(w);
        assert_int_equal(hq_archive_segment_base(dir, T0 + H(5), 0, big, sizeof(big)), HQ_OK);
        assert_int_equal(hq_archive_compress(big, &cancel, NULL, err, sizeof(err)), HQ_ESHUTDOWN);
        assert_true(file_exists(big, ".jsonl"));
        assert_false(file_exists(big, ".jsonl.zst.tmp"));
        assert_false(file_exists(big, ".idx.tmp"));
        assert_false(file_exists(big, ".jsonl.zst"));
    }
    /* after a clock step back into a closed hour, a new segment HH.1 is opened */
    assert_int_equal(hq_awriter_open(dir, &w, err, sizeof(err)), HQ_OK);
    write_events(w, T0 + 7, "s", 100, 101, T0 + 7, 1, 10, closed, sizeof(closed));
    snprintf(p, sizeof(p), "%s.1", b0);
    assert_string_equal(hq_awriter_current(w), p);
    hq_awriter_close(w);
    {
        struct hq_afilter f;
        struct collect c;
        hq_afilter_init(&f);
        f.from_ms = T0;
        f.to_ms = T0 + H(1);
        memset(&c, 0, sizeof(c));
        assert_int_equal(hq_archive_scan(dir, &f, collect_fn, &c, NULL), HQ_OK);
        assert_int_equal(c.n, 3);
        assert_string_equal(c.ids[2], "evt-000100");
    }
    rm_rf(dir);
}

/* ------------------------------------------------------------------ a segment changes under a scan */

struct scan_race {
    char base[PATH_MAX];
    int action; /* 1: compress it, 2: delete every file of it */
    int fired;
};

static void scan_race_hook(void *arg, const char *base)
{
    struct scan_race *sr = arg;
    char err[256], p[PATH_MAX + 16];

    if (strcmp(base, sr->base) != 0)
        return;
    sr->fired++;
    if (sr->action == 1) {
        assert_int_equal(hq_archive_compress(base, NULL, NULL, err, sizeof(err)), HQ_OK);
    } else {
        snprintf(p, sizeof(p), "%s.jsonl", base);
        (void)unlink(p);
        snprintf(p, sizeof(p), "%s.jsonl.zst", base);
        (void)unlink(p);
        snprintf(p, sizeof(p), "%s.idx", base);
        (void)unlink(p);
    }
}

static void test_scan_segment_changes(void **state)
{
    const char *dir = mktmp();
    struct hq_awriter *w;
    char err[256], closed[PATH_MAX], b0[PATH_MAX], b1[PATH_MAX];
    struct scan_race sr;
    struct hq_afilter f;
    struct collect c;

    (void)state;
    assert_int_equal(hq_awriter_open(dir, &w, err, sizeof(err)), HQ_OK);
    write_events(w, T0 + 5, "s", 0, 3, T0 + 5, 1, 10, closed, sizeof(closed));
    write_events(w, T0 + H(1) + 5, "s", 3, 5, T0 + H(1) + 5, 1, 10, closed, sizeof(closed));
    hq_awriter_close(w);
    assert_int_equal(hq_archive_segment_base(dir, T0, 0, b0, sizeof(b0)), HQ_OK);
    assert_int_equal(hq_archive_segment_base(dir, T0 + H(1), 0, b1, sizeof(b1)), HQ_OK);
    hq_afilter_init(&f);
    f.from_ms = T0;
    f.to_ms = T0 + H(2);
    hq__ascan_hook = scan_race_hook;
    hq__ascan_hook_arg = &sr;

    /* listed as a .jsonl, compressed (and the .jsonl removed) before it is opened: its records
     * are read from the .jsonl.zst */
    memset(&sr, 0, sizeof(sr));
    snprintf(sr.base, sizeof(sr.base), "%s", b0);
    sr.action = 1;
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan(dir, &f, collect_fn, &c, NULL), HQ_OK);
    assert_int_equal(sr.fired, 1);
    assert_false(file_exists(b0, ".jsonl"));
    assert_true(file_exists(b0, ".jsonl.zst"));
    assert_int_equal(c.n, 5);
    assert_string_equal(c.ids[0], "evt-000000");
    assert_string_equal(c.ids[2], "evt-000002");

    /* a closed segment deleted (retention) between the listing and the read: the scan fails */
    memset(&sr, 0, sizeof(sr));
    snprintf(sr.base, sizeof(sr.base), "%s", b0);
    sr.action = 2;
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan(dir, &f, collect_fn, &c, NULL), HQ_EIO);
    assert_int_equal(sr.fired, 1);

    /* an open segment that vanished (neither .jsonl nor .jsonl.zst): the scan fails too */
    memset(&sr, 0, sizeof(sr));
    snprintf(sr.base, sizeof(sr.base), "%s", b1);
    sr.action = 2;
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan(dir, &f, collect_fn, &c, NULL), HQ_EIO);
    assert_int_equal(sr.fired, 1);

    hq__ascan_hook = NULL;
    hq__ascan_hook_arg = NULL;
    /* nothing left: an empty result, no error */
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan(dir, &f, collect_fn, &c, NULL), HQ_OK);
    assert_int_equal(c.n, 0);
    rm_rf(dir);
}

/* ------------------------------------------------------------------ clock step back vs compression */

struct step_back {
    struct hq_awriter *w;
    int64_t now;   /* the writer's clock after the step */
    int fired;
    char current[PATH_MAX];
};

/* The compressor has read hour 0's .jsonl; the clock steps back into hour 0 and the logger
 * appends a batch (acked once this returns HQ_OK). */
static void step_back_hook(void *arg, const char *base)
{
    struct step_back *sb = arg;
    char closed[PATH_MAX];

    (void)base;
    if (sb->fired++)
        return;
    write_events(sb->w, sb->now, "s", 100, 102, sb->now, 1, 10, closed, sizeof(closed));
    snprintf(sb->current, sizeof(sb->current), "%s", hq_awriter_current(sb->w));
}

static void test_clock_step_back_during_compression(void **state)
{
    const char *dir = mktmp();
    struct hq_awriter *w;
    char err[256], closed[PATH_MAX], b0[PATH_MAX], p[PATH_MAX + 16];
    struct step_back sb;
    struct hq_afilter f;
    struct collect c;
    size_t i;
    int got100 = 0, got101 = 0;

    (void)state;
    assert_int_equal(hq_awriter_open(dir, &w, err, sizeof(err)), HQ_OK);
    write_events(w, T0 + H(1) - 1000, "s", 0, 3, T0 + H(1) - 1000, 1, 10, closed, sizeof(closed));
    /* the hour ends: hour 0 is closed and handed to the compressor */
    write_events(w, T0 + H(1) + 1, "s", 3, 4, T0 + H(1) + 1, 1, 10, closed, sizeof(closed));
    assert_int_equal(hq_archive_segment_base(dir, T0, 0, b0, sizeof(b0)), HQ_OK);
    assert_string_equal(closed, b0);
    memset(&sb, 0, sizeof(sb));
    sb.w = w;
    sb.now = T0 + H(1) - 500; /* stepped back 0.5 s before the boundary */
    hq__acompress_hook = step_back_hook;
    hq__acompress_hook_arg = &sb;
    assert_int_equal(hq_archive_compress(b0, NULL, NULL, err, sizeof(err)), HQ_OK);
    hq__acompress_hook = NULL;
    hq__acompress_hook_arg = NULL;
    assert_int_equal(sb.fired, 1);
    /* the batch went to a new name, not to the segment being compressed */
    snprintf(p, sizeof(p), "%s.1", b0);
    assert_string_equal(sb.current, p);
    assert_false(file_exists(b0, ".jsonl"));

    /* the writer holds hour 0's new segment: compressing it now is refused, nothing deleted */
    assert_int_equal(hq_archive_compress(p, NULL, NULL, err, sizeof(err)), HQ_ECONFLICT);
    assert_true(file_exists(p, ".jsonl"));
    assert_false(file_exists(p, ".jsonl.zst"));
    hq_awriter_close(w);
    assert_int_equal(hq_archive_compress(p, NULL, NULL, err, sizeof(err)), HQ_OK);

    /* every acked record is there */
    hq_afilter_init(&f);
    f.from_ms = T0 - H(1);
    f.to_ms = T0 + H(3);
    memset(&c, 0, sizeof(c));
    assert_int_equal(hq_archive_scan(dir, &f, collect_fn, &c, NULL), HQ_OK);
    assert_int_equal(c.n, 6);
    for (i = 0; i < c.n; i++) {
        got100 += strcmp(c.ids[i], "evt-000100") == 0;
        got101 += strcmp(c.ids[i], "evt-000101") == 0;
    }
    assert_int_equal(got100, 1);
    assert_int_equal(got101, 1);
    rm_rf(dir);
}

static void test_index_hostile(void **state)
{
    /* a valid index, then every single-byte corruption of it must be refused or still be
     * consistent (never read out of bounds: ASan) */
    const char *dir = mktmp();
    struct hq_awriter *w;
    char err[256], closed[PATH_MAX], base[PATH_MAX], ipath[PATH_MAX + 8], *buf;
    size_t n, i;
    struct hq__aidx x;

    (void)state;
    assert_int_equal(hq_awriter_open(dir, &w, err, sizeof(err)), HQ_OK);
    write_events(w, T0, "s", 0, 20, T0, 1, 10, closed, sizeof(closed));
    hq_awriter_close(w);
    assert_int_equal(hq_archive_segment_base(dir, T0, 0, base, sizeof(base)), HQ_OK);
    assert_int_equal(hq_archive_compress(base, NULL, NULL, err, sizeof(err)), HQ_OK);
    snprintf(ipath, sizeof(ipath), "%s.idx", base);
    assert_int_equal(hq_read_file(ipath, 1u << 20, &buf, &n), HQ_OK);
    assert_int_equal(hq__aidx_parse(buf, n, false, true, 0, &x), HQ_OK);
    hq__aidx_free(&x);
    for (i = 0; i < n; i++) {
        buf[i] ^= 0x41;
        if (hq__aidx_parse(buf, n, false, true, 0, &x) == HQ_OK) {
            /* the checksum covers everything: only a change it cannot see may pass */
            fail_msg("corrupted byte %zu accepted", i);
        }
        buf[i] ^= 0x41;
    }
    for (i = 0; i < n; i++)
        assert_int_not_equal(hq__aidx_parse(buf, i, false, true, 0, &x), HQ_OK);
    free(buf);
    rm_rf(dir);
}

/* Broker down: emitting never blocks, the ring fills, the rest is dropped and counted, and
 * stop returns within its drain time. */
static void test_lifecycle_emitter_broker_down(void **state)
{
    struct hq_broker_cfg b;
    char *uris[] = {"amqp://guest:guest@127.0.0.1:1/%2f"};
    struct hq_lc_emitter *e = NULL;
    struct hq_lc_record r = {0};
    struct hq_lc_stats st;
    int64_t t0;
    int i;

    (void)state;
    memset(&b, 0, sizeof(b));
    b.uris = uris;
    b.n_uris = 1;
    b.exchange = "hookmq.events";
    b.heartbeat_s = 10;
    assert_int_equal(hq_lc_start(&b, "test", 8, &e), HQ_OK);
    r.source = "s";
    r.id = "i";
    r.consumer = "c";
    r.attempt = 1;
    r.verdict = HQ_LC_PROCESSED;
    r.at_ms = T0;
    t0 = hq_mono_ms();
    for (i = 0; i < 100; i++)
        hq_lc_emit(e, &r);
    assert_true(hq_mono_ms() - t0 < 1000);
    hq_lc_get_stats(e, &st);
    assert_int_equal(st.published, 0);
    assert_int_equal(st.queued + st.dropped, 100);
    assert_true(st.queued <= 8);
    assert_true(st.dropped >= 92);
    assert_int_equal(hq_lc_dropped(e), st.dropped);
    /* an invalid record is counted as dropped too */
    r.consumer = NULL;
    hq_lc_emit(e, &r);
    assert_int_equal(hq_lc_dropped(e), st.dropped + 1);
    t0 = hq_mono_ms();
    hq_lc_stop(e, 200);
    assert_true(hq_mono_ms() - t0 < 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_round_trip_bytes),
        cmocka_unit_test(test_parse_escapes),
        cmocka_unit_test(test_headers_exact),
        cmocka_unit_test(test_received_at_fallbacks),
        cmocka_unit_test(test_hostile_lines),
        cmocka_unit_test(test_lifecycle_records),
        cmocka_unit_test(test_lifecycle_batch),
        cmocka_unit_test(test_lifecycle_by),
        cmocka_unit_test(test_lifecycle_emitter_broker_down),
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_segment_names),
        cmocka_unit_test(test_writer_torn_line),
        cmocka_unit_test(test_compress_index_lookup),
        cmocka_unit_test(test_scan_time_boundaries),
        cmocka_unit_test(test_late_event),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_recovery),
        cmocka_unit_test(test_index_hostile),
        cmocka_unit_test(test_scan_segment_changes),
        cmocka_unit_test(test_clock_step_back_during_compression),
    };

    hq_log_setup("test_archive", HQ_LOG_ERROR, HQ_LOG_TEXT);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
