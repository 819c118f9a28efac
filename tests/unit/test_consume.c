/* Unit tests for core/consume.c (AMQP header table decoding, broker-owned header names) and
 * core/dlq.c (DLQ message description, DLQ and redriven copies). No broker needed: tables
 * are built by hand the way rabbitmq-c decodes them off the wire, hostile ones included. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hq__amqp_inc.h"
#include "hq_consume.h"
#include "hq_dlq.h"
#include "hq_lifecycle.h"
#include "hq_topology.h"

/* ---------------------------------------------------------------- table builders */

static amqp_bytes_t B(const char *s)
{
    amqp_bytes_t b;

    b.len = strlen(s);
    b.bytes = (void *)s;
    return b;
}

static amqp_table_entry_t E(const char *key, amqp_field_value_t v)
{
    amqp_table_entry_t e;

    e.key = B(key);
    e.value = v;
    return e;
}

static amqp_field_value_t V_str(const char *s)
{
    amqp_field_value_t v;

    memset(&v, 0, sizeof(v));
    v.kind = AMQP_FIELD_KIND_UTF8;
    v.value.bytes = B(s);
    return v;
}

static amqp_field_value_t V_kind(uint8_t kind)
{
    amqp_field_value_t v;

    memset(&v, 0, sizeof(v));
    v.kind = kind;
    return v;
}

static amqp_table_t T(amqp_table_entry_t *e, int n)
{
    amqp_table_t t;

    t.num_entries = n;
    t.entries = e;
    return t;
}

static const struct hq_hdr *hdr(const struct hq_delivery *d, const char *k)
{
    return hq_msg_header(&d->msg, k);
}

static void assert_long(const struct hq_delivery *d, const char *k, int64_t want)
{
    const struct hq_hdr *h = hdr(d, k);

    assert_non_null(h);
    assert_int_equal(h->type, HQ_HDR_LONG);
    assert_true(h->num == want);
}

static void assert_str(const struct hq_delivery *d, const char *k, const char *want)
{
    const struct hq_hdr *h = hdr(d, k);

    assert_non_null(h);
    assert_int_equal(h->type, HQ_HDR_STR);
    assert_string_equal(h->str, want);
}

/* ---------------------------------------------------------------- decoding */

static void test_decode_ints(void **state)
{
    amqp_table_entry_t e[12];
    amqp_table_t t;
    struct hq_delivery d;
    amqp_field_value_t v;
    int n = 0;

    (void)state;
    v = V_kind(AMQP_FIELD_KIND_I8); v.value.i8 = -5; e[n++] = E("i8", v);
    v = V_kind(AMQP_FIELD_KIND_U8); v.value.u8 = 250; e[n++] = E("u8", v);
    v = V_kind(AMQP_FIELD_KIND_I16); v.value.i16 = -30000; e[n++] = E("i16", v);
    v = V_kind(AMQP_FIELD_KIND_U16); v.value.u16 = 65000; e[n++] = E("u16", v);
    v = V_kind(AMQP_FIELD_KIND_I32); v.value.i32 = -2000000000; e[n++] = E("i32", v);
    v = V_kind(AMQP_FIELD_KIND_U32); v.value.u32 = 4000000000u; e[n++] = E("u32", v);
    v = V_kind(AMQP_FIELD_KIND_I64); v.value.i64 = INT64_MIN; e[n++] = E("i64", v);
    v = V_kind(AMQP_FIELD_KIND_U64); v.value.u64 = 1234567890123ull; e[n++] = E("u64", v);
    v = V_kind(AMQP_FIELD_KIND_U64); v.value.u64 = (uint64_t)INT64_MAX + 1u; e[n++] = E("u64big", v);
    v = V_kind(AMQP_FIELD_KIND_BOOLEAN); v.value.boolean = 1; e[n++] = E("yes", v);
    v = V_kind(AMQP_FIELD_KIND_BOOLEAN); v.value.boolean = 0; e[n++] = E("no", v);
    v = V_kind(AMQP_FIELD_KIND_TIMESTAMP); v.value.u64 = 1795935035u; e[n++] = E("ts", v);
    t = T(e, n);
    memset(&d, 0, sizeof(d));
    assert_int_equal(hq__consume_decode_table(&t, &d), HQ_OK);
    assert_long(&d, "i8", -5);
    assert_long(&d, "u8", 250);
    assert_long(&d, "i16", -30000);
    assert_long(&d, "u16", 65000);
    assert_long(&d, "i32", -2000000000);
    assert_long(&d, "u32", 4000000000LL);
    assert_long(&d, "i64", INT64_MIN);
    assert_long(&d, "u64", 1234567890123LL);
    assert_null(hdr(&d, "u64big")); /* does not fit a long: not carried */
    assert_long(&d, "yes", 1);
    assert_long(&d, "no", 0);
    assert_long(&d, "ts", 1795935035);
    assert_int_equal(d.msg.n_headers, 11);
    assert_true(d.delivery_count == -1);
    assert_int_equal(d.n_xdeath, 0);
    hq_delivery_free(&d);
}

static void test_decode_strings_and_others(void **state)
{
    static const char nul_val[] = {'a', 'b', '\0', 'c'};
    static const char nul_key[] = {'k', '\0', 'x'};
    amqp_table_entry_t e[12], inner[1];
    amqp_field_value_t arr_items[1];
    amqp_table_t t;
    struct hq_delivery d;
    amqp_field_value_t v;
    char long_key[130];
    int n = 0;

    (void)state;
    memset(long_key, 'k', sizeof(long_key));
    long_key[129] = '\0';
    e[n++] = E("s", V_str("hello wörld"));
    e[n++] = E("empty", V_str(""));
    v = V_kind(AMQP_FIELD_KIND_BYTES); v.value.bytes = B("raw"); e[n++] = E("x", v);
    v = V_kind(AMQP_FIELD_KIND_UTF8); v.value.bytes.bytes = (void *)nul_val;
    v.value.bytes.len = sizeof(nul_val); e[n++] = E("nul", v);
    v = V_kind(AMQP_FIELD_KIND_F64); v.value.f64 = 1.5; e[n++] = E("f64", v);
    v = V_kind(AMQP_FIELD_KIND_F32); v.value.f32 = 1.5f; e[n++] = E("f32", v);
    v = V_kind(AMQP_FIELD_KIND_DECIMAL); e[n++] = E("dec", v);
    v = V_kind(AMQP_FIELD_KIND_VOID); e[n++] = E("void", v);
    inner[0] = E("a", V_str("b"));
    v = V_kind(AMQP_FIELD_KIND_TABLE); v.value.table = T(inner, 1); e[n++] = E("tbl", v);
    arr_items[0] = V_str("z");
    v = V_kind(AMQP_FIELD_KIND_ARRAY); v.value.array.num_entries = 1;
    v.value.array.entries = arr_items; e[n++] = E("arr", v);
    e[n++] = E(long_key, V_str("too long a key"));
    e[n] = E("", V_str("empty key"));
    e[n].key.bytes = (void *)nul_key;
    e[n++].key.len = sizeof(nul_key);
    t = T(e, n);
    memset(&d, 0, sizeof(d));
    assert_int_equal(hq__consume_decode_table(&t, &d), HQ_OK);
    assert_str(&d, "s", "hello wörld");
    assert_str(&d, "empty", "");
    assert_str(&d, "x", "raw");
    assert_str(&d, "nul", "ab"); /* cut at the NUL */
    assert_null(hdr(&d, "f64"));
    assert_null(hdr(&d, "f32"));
    assert_null(hdr(&d, "dec"));
    assert_null(hdr(&d, "void"));
    assert_null(hdr(&d, "tbl"));
    assert_null(hdr(&d, "arr"));
    assert_null(hdr(&d, long_key));
    assert_null(hdr(&d, "k"));
    assert_int_equal(d.msg.n_headers, 4);
    hq_delivery_free(&d);
    /* exactly 128 bytes is a valid key */
    long_key[128] = '\0';
    e[0] = E(long_key, V_str("ok"));
    t = T(e, 1);
    memset(&d, 0, sizeof(d));
    assert_int_equal(hq__consume_decode_table(&t, &d), HQ_OK);
    assert_str(&d, long_key, "ok");
    hq_delivery_free(&d);
}

static void test_decode_empty_and_hostile(void **state)
{
    struct hq_delivery d;
    amqp_table_t t;
    amqp_table_entry_t *e;
    char *big;
    char (*keys)[16];
    int i;

    (void)state;
    memset(&d, 0, sizeof(d));
    assert_int_equal(hq__consume_decode_table(NULL, &d), HQ_OK);
    assert_true(d.delivery_count == -1);
    assert_int_equal(d.msg.n_headers, 0);
    t = T(NULL, 5); /* a count without entries */
    assert_int_equal(hq__consume_decode_table(&t, &d), HQ_OK);
    t = T(NULL, -3);
    assert_int_equal(hq__consume_decode_table(&t, &d), HQ_OK);
    assert_int_equal(hq__consume_decode_table(&t, NULL), HQ_EINVAL);
    hq_delivery_free(&d);

    /* 1500 headers: the first 1024 kept; a value over 1 MiB dropped; duplicates: last wins */
    e = calloc(1503, sizeof(*e));
    keys = calloc(1500, sizeof(*keys));
    big = malloc((1u << 20) + 2);
    assert_non_null(e);
    assert_non_null(keys);
    assert_non_null(big);
    memset(big, 'b', (1u << 20) + 1);
    big[(1u << 20) + 1] = '\0';
    e[0] = E("big", V_str(big));
    e[1] = E("dup", V_str("first"));
    e[2] = E("dup", V_str("second"));
    for (i = 0; i < 1500; i++) {
        snprintf(keys[i], sizeof(keys[i]), "h%d", i);
        e[3 + i] = E(keys[i], V_str("v"));
    }
    t = T(e, 1503);
    memset(&d, 0, sizeof(d));
    assert_int_equal(hq__consume_decode_table(&t, &d), HQ_OK);
    assert_null(hdr(&d, "big"));
    assert_str(&d, "dup", "second");
    assert_int_equal(d.msg.n_headers, 1024);
    assert_non_null(hdr(&d, "h1022"));
    assert_null(hdr(&d, "h1023"));
    hq_delivery_free(&d);
    /* exactly 1 MiB is carried */
    big[1u << 20] = '\0';
    e[0] = E("big", V_str(big));
    t = T(e, 1);
    memset(&d, 0, sizeof(d));
    assert_int_equal(hq__consume_decode_table(&t, &d), HQ_OK);
    assert_non_null(hdr(&d, "big"));
    assert_int_equal(strlen(hdr(&d, "big")->str), 1u << 20);
    hq_delivery_free(&d);
    free(big);
    free(keys);
    free(e);
}

/* An x-death entry as RabbitMQ writes it. */
static amqp_field_value_t xdeath_entry(amqp_table_entry_t *f, const char *queue, const char *reason,
                                       int64_t count, uint64_t time_s)
{
    amqp_field_value_t v, cnt, tm, rk;

    cnt = V_kind(AMQP_FIELD_KIND_I64);
    cnt.value.i64 = count;
    tm = V_kind(AMQP_FIELD_KIND_TIMESTAMP);
    tm.value.u64 = time_s;
    rk = V_kind(AMQP_FIELD_KIND_ARRAY); /* routing-keys: an array, ignored */
    f[0] = E("count", cnt);
    f[1] = E("exchange", V_str(""));
    f[2] = E("queue", V_str(queue));
    f[3] = E("reason", V_str(reason));
    f[4] = E("routing-keys", rk);
    f[5] = E("time", tm);
    v = V_kind(AMQP_FIELD_KIND_TABLE);
    v.value.table = T(f, 6);
    return v;
}

static void test_decode_xdeath(void **state)
{
    amqp_table_entry_t f[6][6], e[6], odd[3];
    amqp_field_value_t items[7], v;
    amqp_table_t t;
    struct hq_delivery d;
    char longq[300];

    (void)state;
    memset(longq, 'q', sizeof(longq));
    longq[299] = '\0';
    items[0] = V_str("not a table"); /* skipped */
    items[1] = xdeath_entry(f[0], "hookmq.billing", "delivery_limit", 1, 1795935035u);
    items[2] = xdeath_entry(f[1], "hookmq.billing.retry.10s", "expired", 7, 1795930000u);
    /* wrong types: count as a string, time as a float, queue as a long */
    odd[0] = E("count", V_str("3"));
    v = V_kind(AMQP_FIELD_KIND_F64);
    odd[1] = E("time", v);
    v = V_kind(AMQP_FIELD_KIND_I64);
    v.value.i64 = 9;
    odd[2] = E("queue", v);
    items[3] = V_kind(AMQP_FIELD_KIND_TABLE);
    items[3].value.table = T(odd, 3);
    items[4] = xdeath_entry(f[2], longq, "a-reason-much-longer-than-thirty-two-bytes", 2, 5);
    items[5] = xdeath_entry(f[3], "fifth", "rejected", 1, 6); /* beyond 4 entries */
    items[6] = xdeath_entry(f[4], "sixth", "rejected", 1, 7);
    v = V_kind(AMQP_FIELD_KIND_ARRAY);
    v.value.array.num_entries = 7;
    v.value.array.entries = items;
    e[0] = E("x-death", v);
    e[1] = E("x-first-death-queue", V_str("hookmq.billing"));
    e[2] = E("x-first-death-reason", V_str("delivery_limit"));
    v = V_kind(AMQP_FIELD_KIND_I32); /* any width */
    v.value.i32 = 3;
    e[3] = E("x-delivery-count", v);
    e[4] = E("hookmq-source", V_str("stripe"));
    t = T(e, 5);
    memset(&d, 0, sizeof(d));
    assert_int_equal(hq__consume_decode_table(&t, &d), HQ_OK);
    assert_int_equal(d.n_xdeath, 4);
    assert_string_equal(d.xdeath[0].queue, "hookmq.billing");
    assert_string_equal(d.xdeath[0].reason, "delivery_limit");
    assert_true(d.xdeath[0].count == 1);
    assert_true(d.xdeath[0].time_s == 1795935035);
    assert_string_equal(d.xdeath[1].queue, "hookmq.billing.retry.10s");
    assert_string_equal(d.xdeath[1].reason, "expired");
    assert_true(d.xdeath[1].count == 7);
    assert_string_equal(d.xdeath[2].queue, ""); /* wrong types ignored, entry kept */
    assert_true(d.xdeath[2].count == 0);
    assert_true(d.xdeath[2].time_s == 0);
    assert_int_equal(strlen(d.xdeath[3].queue), sizeof(d.xdeath[3].queue) - 1); /* capped */
    assert_int_equal(strlen(d.xdeath[3].reason), sizeof(d.xdeath[3].reason) - 1);
    assert_null(hdr(&d, "x-death")); /* decoded, not carried */
    assert_str(&d, "x-first-death-queue", "hookmq.billing");
    assert_long(&d, "x-delivery-count", 3);
    assert_true(d.delivery_count == 3);
    assert_str(&d, "hookmq-source", "stripe");
    hq_delivery_free(&d);
    assert_null(d.msg.headers);
    assert_int_equal(d.n_xdeath, 0);

    /* x-death of the wrong type is ignored */
    e[0] = E("x-death", V_str("garbage"));
    t = T(e, 1);
    memset(&d, 0, sizeof(d));
    assert_int_equal(hq__consume_decode_table(&t, &d), HQ_OK);
    assert_int_equal(d.n_xdeath, 0);
    assert_int_equal(d.msg.n_headers, 0);
    hq_delivery_free(&d);
    hq_delivery_free(NULL);
}

static void test_broker_owned(void **state)
{
    static const char *const yes[] = {"x-death", "x-first-death-queue", "x-first-death-reason",
                                      "x-first-death-exchange", "x-last-death-queue",
                                      "x-last-death-reason", "x-last-death-exchange",
                                      "x-delivery-count", "x-stream-offset", NULL};
    static const char *const no[] = {"X-Death", "x-deat", "x-death-", "x-first-death",
                                     "x-delivery-count2", "x-stream-offset-x", "hookmq-attempt",
                                     "hookmq-consumer", "x-received-from", "", " x-death", NULL};
    size_t i;

    (void)state;
    for (i = 0; yes[i]; i++)
        assert_true(hq_header_broker_owned(yes[i]));
    for (i = 0; no[i]; i++) {
        if (hq_header_broker_owned(no[i]))
            fail_msg("'%s' is not broker-owned", no[i]);
    }
    assert_false(hq_header_broker_owned(NULL));
}

/* ---------------------------------------------------------------- dlq.c */

/* A delivery as the worker's DLQ copy would look, plus broker-owned headers. */
static void dlq_delivery(struct hq_delivery *d, bool worker_copy)
{
    memset(d, 0, sizeof(*d));
    d->delivery_count = -1;
    d->msg.message_id = strdup("evt_1");
    d->msg.content_type = strdup("application/json");
    d->msg.routing_key = strdup("hookmq.billing.dlq");
    d->msg.timestamp_s = 1795935000;
    d->msg.body = (unsigned char *)strdup("{\"a\":1}");
    d->msg.body_len = 7;
    assert_int_equal(hq_msg_add_str(&d->msg, "hookmq-source", "stripe"), HQ_OK);
    assert_int_equal(hq_msg_add_str(&d->msg, "hookmq-event-type", "invoice.paid"), HQ_OK);
    assert_int_equal(hq_msg_add_long(&d->msg, "hookmq-received-at", 1795935000123LL), HQ_OK);
    assert_int_equal(hq_msg_add_str(&d->msg, "http-stripe-signature", "t=1,v1=x"), HQ_OK);
    assert_int_equal(hq_msg_add_long(&d->msg, "hookmq-attempt", 4), HQ_OK);
    assert_int_equal(hq_msg_add_long(&d->msg, "x-delivery-count", 2), HQ_OK);
    assert_int_equal(hq_msg_add_str(&d->msg, "x-first-death-queue", "hookmq.billing"), HQ_OK);
    assert_int_equal(hq_msg_add_str(&d->msg, "x-last-death-reason", "rejected"), HQ_OK);
    if (worker_copy) {
        assert_int_equal(hq_msg_add_str(&d->msg, "hookmq-consumer", "billing"), HQ_OK);
        assert_int_equal(hq_msg_add_long(&d->msg, "hookmq-attempts", 4), HQ_OK);
        assert_int_equal(hq_msg_add_str(&d->msg, "hookmq-last-error", "exit 1: boom"), HQ_OK);
        assert_int_equal(hq_msg_add_long(&d->msg, "hookmq-failed-at", 1795935999000LL), HQ_OK);
        assert_int_equal(hq_msg_add_str(&d->msg, "hookmq-redriven", "2"), HQ_OK);
    }
}

static void test_dlq_info_worker_copy(void **state)
{
    struct hq_delivery d;
    struct hq_dlq_info in;

    (void)state;
    dlq_delivery(&d, true);
    hq_dlq_info(&d, &in);
    assert_string_equal(in.id, "evt_1");
    assert_string_equal(in.type, "invoice.paid");
    assert_string_equal(in.source, "stripe");
    assert_string_equal(in.consumer, "billing");
    assert_true(in.attempts == 4);
    assert_true(in.failed_at_ms == 1795935999000LL);
    assert_true(in.redriven == 2); /* a decimal string is accepted */
    assert_false(in.by_broker);
    assert_string_equal(in.last_error, "exit 1: boom");
    hq_delivery_free(&d);
    hq_dlq_info(NULL, &in);
    assert_string_equal(in.id, "");
    assert_true(in.attempts == 0);
}

static void test_dlq_info_broker(void **state)
{
    struct hq_delivery d;
    struct hq_dlq_info in;
    char want[128];

    (void)state;
    dlq_delivery(&d, false);
    d.n_xdeath = 2;
    snprintf(d.xdeath[0].queue, sizeof(d.xdeath[0].queue), "hookmq.billing");
    snprintf(d.xdeath[0].reason, sizeof(d.xdeath[0].reason), "delivery_limit");
    d.xdeath[0].count = 1;
    d.xdeath[0].time_s = 1795935035;
    snprintf(d.xdeath[1].queue, sizeof(d.xdeath[1].queue), "hookmq.billing.retry.1m");
    snprintf(d.xdeath[1].reason, sizeof(d.xdeath[1].reason), "expired");
    hq_dlq_info(&d, &in);
    assert_true(in.by_broker);
    assert_string_equal(in.consumer, "");
    assert_string_equal(in.reason, "delivery_limit");
    assert_true(in.attempts == HQ_TOPOLOGY_DELIVERY_LIMIT + 1);
    snprintf(want, sizeof(want), "delivery_limit (handler crashed or timed out %d times)",
             HQ_TOPOLOGY_DELIVERY_LIMIT + 1);
    assert_string_equal(in.last_error, want);
    assert_true(in.failed_at_ms == 1795935035000LL);

    snprintf(d.xdeath[0].reason, sizeof(d.xdeath[0].reason), "rejected");
    d.xdeath[0].count = 3;
    hq_dlq_info(&d, &in);
    assert_true(in.attempts == 4); /* hookmq-attempt of the message */
    assert_string_equal(in.last_error, "rejected in hookmq.billing (3 times)");
    hq_delivery_free(&d);
}

static void test_dlq_info_long_error(void **state)
{
    struct hq_delivery d;
    struct hq_dlq_info in;
    char err[1100];

    (void)state;
    dlq_delivery(&d, true);
    /* 1023 ASCII bytes then a 2-byte UTF-8 sequence straddling the cap */
    memset(err, 'e', 1023);
    err[1023] = (char)0xC3;
    err[1024] = (char)0xA9;
    memset(err + 1025, 'f', 10);
    err[1035] = '\0';
    assert_int_equal(hq_msg_add_str(&d.msg, "hookmq-last-error", err), HQ_OK);
    hq_dlq_info(&d, &in);
    assert_int_equal(strlen(in.last_error), 1023);
    hq_delivery_free(&d);
}

static void test_redrive_copy(void **state)
{
    struct hq_delivery d;
    struct hq_msg m;
    size_t i;

    (void)state;
    dlq_delivery(&d, true);
    assert_int_equal(hq_dlq_redrive_copy(&d, &m), HQ_OK);
    assert_string_equal(m.message_id, "evt_1");
    assert_string_equal(m.content_type, "application/json");
    assert_true(m.timestamp_s == 1795935000);
    assert_int_equal(m.body_len, 7);
    assert_memory_equal(m.body, "{\"a\":1}", 7);
    assert_non_null(hq_msg_header(&m, "hookmq-source"));
    assert_non_null(hq_msg_header(&m, "http-stripe-signature"));
    assert_non_null(hq_msg_header(&m, "hookmq-received-at"));
    assert_true(hq_msg_header(&m, "hookmq-attempt")->num == 1);
    assert_int_equal(hq_msg_header(&m, "hookmq-redriven")->type, HQ_HDR_LONG);
    assert_true(hq_msg_header(&m, "hookmq-redriven")->num == 3);
    assert_null(hq_msg_header(&m, "hookmq-consumer"));
    assert_null(hq_msg_header(&m, "hookmq-attempts"));
    assert_null(hq_msg_header(&m, "hookmq-last-error"));
    assert_null(hq_msg_header(&m, "hookmq-failed-at"));
    for (i = 0; i < m.n_headers; i++)
        assert_false(hq_header_broker_owned(m.headers[i].key));
    assert_int_equal(m.n_headers, 6);
    hq_msg_free(&m);
    hq_delivery_free(&d);

    /* never redriven, no headers at all */
    memset(&d, 0, sizeof(d));
    assert_int_equal(hq_dlq_redrive_copy(&d, &m), HQ_OK);
    assert_int_equal(m.n_headers, 2);
    assert_true(hq_msg_header(&m, "hookmq-redriven")->num == 1);
    assert_true(hq_msg_header(&m, "hookmq-attempt")->num == 1);
    hq_msg_free(&m);
    assert_int_equal(hq_dlq_redrive_copy(NULL, &m), HQ_EINVAL);
}

/* edit and retry: the redriven copy with a new body and headers, marked with the original's
 * digest and the editor; hookmq-* and x-* headers are not editable */
static void test_edit_copy(void **state)
{
    static const char *keys[] = {"http-x-note", "content-kind"};
    static const char *vals[] = {"fixed", "v2"};
    static const char *bad[] = {"hookmq-source", "x-death", "", "a b"};
    struct hq_delivery d;
    struct hq_msg m;
    char summary[300];
    size_t i;

    (void)state;
    dlq_delivery(&d, true);
    assert_int_equal(hq_dlq_edit_copy(&d, (const unsigned char *)"{\"a\":2}", 7, keys, vals, 2,
                                      "ops", &m, summary, sizeof(summary)),
                     HQ_OK);
    assert_memory_equal(m.body, "{\"a\":2}", 7);
    assert_string_equal(m.message_id, "evt_1");
    assert_string_equal(hq_msg_str(&m, "hookmq-edited-from"), "sha256:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862");
    assert_string_equal(hq_msg_str(&m, "hookmq-edited-by"), "ops");
    assert_string_equal(hq_msg_str(&m, "http-x-note"), "fixed");
    assert_true(hq_msg_header(&m, "hookmq-redriven")->num == 3);
    assert_null(hq_msg_header(&m, "hookmq-last-error"));
    assert_string_equal(summary, "edited by ops from sha256:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862: body 7 -> 7 bytes, header "
                                 "http-x-note, header content-kind");
    hq_msg_free(&m);
    /* headers only: the body stays; setting a header twice keeps one */
    assert_int_equal(hq_dlq_edit_copy(&d, NULL, 0, keys, vals, 1, "ops", &m, NULL, 0), HQ_OK);
    assert_memory_equal(m.body, "{\"a\":1}", 7);
    for (i = 0; i < m.n_headers; i++)
        if (strcmp(m.headers[i].key, "http-x-note") == 0)
            assert_string_equal(m.headers[i].str, "fixed");
    hq_msg_free(&m);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(hq_dlq_edit_header_allowed(bad[i]));
        assert_int_equal(hq_dlq_edit_copy(&d, NULL, 0, &bad[i], vals, 1, "ops", &m, NULL, 0),
                         HQ_EINVAL);
    }
    assert_int_equal(hq_dlq_edit_copy(&d, NULL, 0, NULL, NULL, 0, "", &m, NULL, 0), HQ_EINVAL);
    hq_delivery_free(&d);
}

/* the lifecycle record of a person's action on a parked event (the console's redrive and the
 * edit of the console and hookmq-dlx): who, what and when, encoded with "by" */
static void test_action_record(void **state)
{
    struct hq_delivery d;
    struct hq_dlq_info in;
    struct hq_lc_record r;
    struct hq_msg m;
    char body[1024];

    (void)state;
    dlq_delivery(&d, true);
    hq_dlq_info(&d, &in);
    hq_dlq_action_record(&in, "billing", HQ_LC_EDITED, "ops", "edited by ops from sha256:ab: "
                         "header k", 1795936000000LL, &r);
    assert_string_equal(r.id, "evt_1");
    assert_string_equal(r.source, in.source);
    assert_string_equal(r.consumer, "billing");
    assert_int_equal(r.attempt, 1);
    assert_int_equal(r.verdict, HQ_LC_EDITED);
    assert_string_equal(r.by, "ops");
    assert_true(r.at_ms == 1795936000000LL);
    assert_null(r.tier);
    assert_null(r.step);
    assert_int_equal(hq_lc_encode(&r, &m), HQ_OK);
    assert_string_equal(m.routing_key, "billing.edit");
    assert_true(m.body_len < sizeof(body));
    memcpy(body, m.body, m.body_len);
    body[m.body_len] = '\0';
    assert_non_null(strstr(body, "\"verdict\":\"edit\""));
    assert_non_null(strstr(body, "\"by\":\"ops\""));
    assert_non_null(strstr(body, "\"error\":\"edited by ops from sha256:ab: header k\""));
    hq_msg_free(&m);
    /* the worker's and hookmq-dlx's redrive: nobody named, no error */
    hq_dlq_action_record(&in, "billing", HQ_LC_REDRIVEN, NULL, NULL, 5, &r);
    assert_null(r.by);
    assert_null(r.error);
    assert_int_equal(hq_lc_encode(&r, &m), HQ_OK);
    assert_string_equal(m.routing_key, "billing.redriven");
    memcpy(body, m.body, m.body_len);
    body[m.body_len] = '\0';
    assert_null(strstr(body, "\"by\""));
    hq_msg_free(&m);
    hq_delivery_free(&d);
}

/* hq_dlq_edit refuses what it cannot name before it touches the connection */
static void test_edit_arguments(void **state)
{
    struct hq_dlq_edit e;
    struct hq_dlq_edit_outcome out;
    char longname[200];

    (void)state;
    memset(&e, 0, sizeof(e));
    e.consumer = "billing";
    assert_int_equal(hq_dlq_edit(NULL, 10, &e, &out), HQ_EINVAL); /* no id */
    assert_false(out.found);
    assert_false(out.done);
    assert_int_equal(hq_dlq_edit(NULL, 10, NULL, &out), HQ_EINVAL);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    e.consumer = longname;
    e.id = "evt_1";
    assert_int_equal(hq_dlq_edit(NULL, 10, &e, &out), HQ_ETOOBIG);
    assert_false(out.found);
}

static void test_dead_copy(void **state)
{
    struct hq_delivery d;
    struct hq_msg m;
    char err[2000];

    (void)state;
    dlq_delivery(&d, false);
    memset(err, 'x', sizeof(err) - 1);
    err[sizeof(err) - 1] = '\0';
    assert_int_equal(hq_dlq_dead_copy(&d, "billing", 6, err, 1795936000000LL, &m), HQ_OK);
    assert_string_equal(hq_msg_header(&m, "hookmq-consumer")->str, "billing");
    assert_true(hq_msg_header(&m, "hookmq-attempts")->num == 6);
    assert_int_equal(strlen(hq_msg_header(&m, "hookmq-last-error")->str), HQ_DLQ_LAST_ERROR_MAX);
    assert_true(hq_msg_header(&m, "hookmq-failed-at")->num == 1795936000000LL);
    assert_true(hq_msg_header(&m, "hookmq-attempt")->num == 4); /* unchanged */
    assert_null(hq_msg_header(&m, "x-delivery-count"));
    assert_null(hq_msg_header(&m, "x-first-death-queue"));
    hq_msg_free(&m);
    assert_int_equal(hq_dlq_dead_copy(&d, "billing", 1, NULL, 0, &m), HQ_OK);
    assert_string_equal(hq_msg_header(&m, "hookmq-last-error")->str, "");
    hq_msg_free(&m);
    hq_delivery_free(&d);
}

static void test_queue_names(void **state)
{
    char out[80], small[12];

    (void)state;
    assert_int_equal(hq_dlq_queue("billing", out, sizeof(out)), HQ_OK);
    assert_string_equal(out, "hookmq.billing.dlq");
    assert_int_equal(hq_dlq_work_queue("billing", out, sizeof(out)), HQ_OK);
    assert_string_equal(out, "hookmq.billing");
    assert_int_equal(hq_dlq_queue("billing", small, sizeof(small)), HQ_ETOOBIG);
    assert_int_equal(hq_dlq_queue(NULL, out, sizeof(out)), HQ_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_ints),
        cmocka_unit_test(test_decode_strings_and_others),
        cmocka_unit_test(test_decode_empty_and_hostile),
        cmocka_unit_test(test_decode_xdeath),
        cmocka_unit_test(test_broker_owned),
        cmocka_unit_test(test_dlq_info_worker_copy),
        cmocka_unit_test(test_dlq_info_broker),
        cmocka_unit_test(test_dlq_info_long_error),
        cmocka_unit_test(test_redrive_copy),
        cmocka_unit_test(test_edit_copy),
        cmocka_unit_test(test_action_record),
        cmocka_unit_test(test_edit_arguments),
        cmocka_unit_test(test_dead_copy),
        cmocka_unit_test(test_queue_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
