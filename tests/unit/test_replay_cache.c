/* Unit tests for gateway/replay_cache.c, the gateway's replay cache: per-source byte budgets, the
 * in-flight mark taken before the publish (a concurrent copy waits for the first outcome; a
 * failed first attempt leaves nothing behind), keys that include the provider's delivery id,
 * and expiry at max(signed t, now) + tolerance. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "gw.h"
#include "hq_time.h"

#define MiB (1024 * 1024)
#define FAR (INT64_MAX / 2) /* a wait deadline that is never reached in these tests */

static void mkkey(unsigned char *k, unsigned n)
{
    memset(k, 0, HQ_REPLAY_KEY_LEN);
    memcpy(k, &n, sizeof(n));
    k[HQ_REPLAY_KEY_LEN - 1] = 0x5a;
}

/* begin + commit, as the gateway does for an accepted request */
static void accept_one(struct gw_replay *r, const char *src, const unsigned char *k,
                       const char *id, size_t budget, int64_t expires_ms)
{
    char got[64];
    uint64_t t;

    assert_int_equal(gw_replay_begin(r, src, k, id, budget, 1000, FAR, got, sizeof(got), &t),
                     GW_REPLAY_NEW);
    assert_true(t != 0);
    gw_replay_commit(r, src, k, t, expires_ms);
}

static enum gw_replay_state look(struct gw_replay *r, const char *src, const unsigned char *k,
                                 int64_t now_ms, char *id, size_t idsz)
{
    uint64_t t;
    enum gw_replay_state st = gw_replay_begin(r, src, k, "probe", 1 * MiB, now_ms, FAR, id,
                                              idsz, &t);

    if (st == GW_REPLAY_NEW)
        gw_replay_abort(r, src, k, t); /* leave nothing behind */
    return st;
}

static void test_hit_source_and_expiry(void **state)
{
    struct gw_replay *r = gw_replay_new();
    unsigned char k1[HQ_REPLAY_KEY_LEN];
    char id[64];

    (void)state;
    mkkey(k1, 1);
    assert_int_equal(look(r, "gh", k1, 1000, id, sizeof(id)), GW_REPLAY_NEW);
    accept_one(r, "gh", k1, "id-1", 1 * MiB, 5000);
    assert_int_equal(look(r, "gh", k1, 1000, id, sizeof(id)), GW_REPLAY_HIT);
    assert_string_equal(id, "id-1");
    /* same key, other source: no hit */
    assert_int_equal(look(r, "stripe", k1, 1000, id, sizeof(id)), GW_REPLAY_NEW);
    /* expiry is inclusive, then gone */
    assert_int_equal(look(r, "gh", k1, 5000, id, sizeof(id)), GW_REPLAY_HIT);
    assert_int_equal(look(r, "gh", k1, 5001, id, sizeof(id)), GW_REPLAY_NEW);
    gw_replay_free(r);
}

/* One source's traffic never evicts another source's entries (the old cache was one FIFO of
 * 100,000 entries shared by every source). */
static void test_sources_do_not_evict_each_other(void **state)
{
    struct gw_replay *r = gw_replay_new();
    unsigned char k[HQ_REPLAY_KEY_LEN], victim[HQ_REPLAY_KEY_LEN];
    char id[64];
    unsigned i;

    (void)state;
    mkkey(victim, 0xdeadbeef);
    accept_one(r, "billing", victim, "evt-billing", 1 * MiB, 1000000);
    for (i = 0; i < 200000; i++) { /* far more than the old shared capacity */
        mkkey(k, i);
        accept_one(r, "noisy", k, "0190a8f2-7d4c-7c3e-9b1a-3f5e6d7c8b9a", 1 * MiB, 1000000);
    }
    assert_int_equal(look(r, "billing", victim, 2000, id, sizeof(id)), GW_REPLAY_HIT);
    assert_string_equal(id, "evt-billing");
    assert_true(gw_replay_source_bytes(r, "noisy") <= 1 * MiB);
    gw_replay_free(r);
}

/* Each source is bounded in bytes: the oldest entries of that source go first. */
static void test_byte_budget(void **state)
{
    struct gw_replay *r = gw_replay_new();
    unsigned char k[HQ_REPLAY_KEY_LEN];
    size_t per = gw_replay_entry_bytes("id-xxxxx"), budget = 10 * per;
    char id[64];
    unsigned i;

    (void)state;
    assert_true(per >= sizeof("id-xxxxx"));
    for (i = 0; i < 25; i++) {
        char eid[16];
        snprintf(eid, sizeof(eid), "id-%05u", i);
        mkkey(k, i);
        accept_one(r, "s", k, eid, budget, 1000000);
        assert_true(gw_replay_source_bytes(r, "s") <= budget);
    }
    assert_int_equal(gw_replay_source_bytes(r, "s"), budget);
    mkkey(k, 14);
    assert_int_equal(look(r, "s", k, 2000, id, sizeof(id)), GW_REPLAY_NEW); /* evicted */
    mkkey(k, 15);
    assert_int_equal(look(r, "s", k, 2000, id, sizeof(id)), GW_REPLAY_HIT);
    assert_string_equal(id, "id-00015");
    mkkey(k, 24);
    assert_int_equal(look(r, "s", k, 2000, id, sizeof(id)), GW_REPLAY_HIT);
    gw_replay_free(r);
}

/* ------------------------------------------------------------------ in flight */

struct waiter {
    struct gw_replay *r;
    const unsigned char *key;
    enum gw_replay_state st;
    char id[64];
    uint64_t ticket;
    int64_t started_ms;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;

    w->st = gw_replay_begin(w->r, "gh", w->key, "id-second", 1 * MiB, 1000,
                            hq_mono_ms() + 30000, w->id, sizeof(w->id), &w->ticket);
    return NULL;
}

/* While the first copy is being published, the same request waits for the first outcome:
 * accepted -> a replay with the original id (published once). */
static void test_concurrent_copy_waits_for_commit(void **state)
{
    struct gw_replay *r = gw_replay_new();
    unsigned char k[HQ_REPLAY_KEY_LEN];
    struct waiter w = {0};
    pthread_t th;
    char id[64];
    uint64_t t;

    (void)state;
    mkkey(k, 7);
    assert_int_equal(gw_replay_begin(r, "gh", k, "id-first", 1 * MiB, 1000, FAR, id, sizeof(id),
                                     &t),
                     GW_REPLAY_NEW);
    /* a copy arriving now, with no time to wait, is told it is in flight, never NEW */
    assert_int_equal(gw_replay_begin(r, "gh", k, "id-x", 1 * MiB, 1000, hq_mono_ms(), id,
                                     sizeof(id), &w.ticket),
                     GW_REPLAY_IN_FLIGHT);
    assert_int_equal(w.ticket, 0);
    w.r = r;
    w.key = k;
    w.st = (enum gw_replay_state)-1;
    assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
    gw_replay_commit(r, "gh", k, t, 100000);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.st, GW_REPLAY_HIT);
    assert_string_equal(w.id, "id-first");
    assert_int_equal(w.ticket, 0);
    gw_replay_free(r);
}

/* The first publish failed: the mark is removed, the waiting copy (a retry) goes through. */
static void test_abort_lets_the_retry_through(void **state)
{
    struct gw_replay *r = gw_replay_new();
    unsigned char k[HQ_REPLAY_KEY_LEN];
    struct waiter w = {0};
    pthread_t th;
    char id[64];
    uint64_t t, t2;

    (void)state;
    mkkey(k, 8);
    assert_int_equal(gw_replay_begin(r, "gh", k, "id-first", 1 * MiB, 1000, FAR, id, sizeof(id),
                                     &t),
                     GW_REPLAY_NEW);
    w.r = r;
    w.key = k;
    assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
    gw_replay_abort(r, "gh", k, t);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.st, GW_REPLAY_NEW);
    assert_true(w.ticket != 0 && w.ticket != t);
    /* a late abort or commit with the old ticket does not touch the new attempt */
    gw_replay_abort(r, "gh", k, t);
    gw_replay_commit(r, "gh", k, t, 100000);
    assert_int_equal(gw_replay_begin(r, "gh", k, "id-3", 1 * MiB, 1000, hq_mono_ms(), id,
                                     sizeof(id), &t2),
                     GW_REPLAY_IN_FLIGHT);
    gw_replay_abort(r, "gh", k, w.ticket);
    assert_int_equal(look(r, "gh", k, 1000, id, sizeof(id)), GW_REPLAY_NEW);
    gw_replay_free(r);
}

/* ------------------------------------------------------------------ keys and expiry */

static void test_key_includes_delivery_id(void **state)
{
    unsigned char mac[HQ_REPLAY_KEY_LEN], a[HQ_REPLAY_KEY_LEN], b[HQ_REPLAY_KEY_LEN],
        c[HQ_REPLAY_KEY_LEN];
    struct gw_replay *r = gw_replay_new();
    char id[64];

    (void)state;
    mkkey(mac, 42);
    assert_int_equal(gw_replay_key_with_id(mac, "delivery-1", a), HQ_OK);
    assert_int_equal(gw_replay_key_with_id(mac, "delivery-1", b), HQ_OK);
    assert_memory_equal(a, b, HQ_REPLAY_KEY_LEN); /* a redelivery of the same id: a replay */
    assert_int_equal(gw_replay_key_with_id(mac, "delivery-2", c), HQ_OK);
    assert_memory_not_equal(a, c, HQ_REPLAY_KEY_LEN); /* a new delivery: never dropped */
    assert_memory_not_equal(a, mac, HQ_REPLAY_KEY_LEN);
    accept_one(r, "gh", a, "delivery-1", 1 * MiB, 100000);
    assert_int_equal(look(r, "gh", b, 2000, id, sizeof(id)), GW_REPLAY_HIT);
    assert_int_equal(look(r, "gh", c, 2000, id, sizeof(id)), GW_REPLAY_NEW);
    gw_replay_free(r);
}

static void test_expiry(void **state)
{
    const int64_t now = 1700000000000LL, day = 24LL * 3600 * 1000;

    (void)state;
    /* signed t in the past: accepted until t + tolerance, kept until now + tolerance */
    assert_int_equal(gw_replay_expiry(1700000000 - 100, now, 300, day), now + 300000);
    /* signed t in the future (clock skew): accepted until t + tolerance, kept as long */
    assert_int_equal(gw_replay_expiry(1700000000 + 200, now, 300, day), now + 500000);
    /* no signed timestamp, or the check off: the fixed window */
    assert_int_equal(gw_replay_expiry(-1, now, 300, day), now + day);
    assert_int_equal(gw_replay_expiry(1700000000, now, 0, day), now + day);
    /* absurd timestamps do not overflow */
    assert_true(gw_replay_expiry(INT64_MAX / 10, now, 300, day) > now);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_source_and_expiry),
        cmocka_unit_test(test_sources_do_not_evict_each_other),
        cmocka_unit_test(test_byte_budget),
        cmocka_unit_test(test_concurrent_copy_waits_for_commit),
        cmocka_unit_test(test_abort_lets_the_retry_through),
        cmocka_unit_test(test_key_includes_delivery_id),
        cmocka_unit_test(test_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
