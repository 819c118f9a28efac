/* Unit tests: core/confirm.c (the publisher-confirm window: delivery tag -> entry), with the
 * input a broker should never send as well as what it does: tags never issued, tags settled
 * already, `multiple` beyond the last tag, nacks, returns for unknown ids, a ring that wraps,
 * and the release of a lost channel in the order a requeue needs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "hq_confirm.h"

#define MAXLOG 4096

/* An entry: what the test publishes. */
struct item {
    uint64_t tag; /* the tag the window gave it */
    char id[16];  /* its message id */
};

/* What the callbacks saw, in order. */
struct seen {
    size_t n;
    struct item *entry[MAXLOG];
    uint64_t tag[MAXLOG];
    bool ack[MAXLOG];
};

static void on_settle(void *arg, void *entry, uint64_t tag, bool ack)
{
    struct seen *s = arg;

    assert_true(s->n < MAXLOG);
    s->entry[s->n] = entry;
    s->tag[s->n] = tag;
    s->ack[s->n] = ack;
    s->n++;
}

static void on_drop(void *arg, void *entry, uint64_t tag)
{
    on_settle(arg, entry, tag, false);
}

static bool id_is(const void *entry, const void *key)
{
    return strcmp(((const struct item *)entry)->id, key) == 0;
}

/* Add items[0..n) and check the tags they get: first, first + 1, ... */
static void add_n(struct hq_confirm *w, struct item *items, size_t n, uint64_t first)
{
    size_t i;

    for (i = 0; i < n; i++) {
        uint64_t tag = 0;

        assert_int_equal(hq_confirm_next_tag(w), first + i);
        assert_int_equal(hq_confirm_add(w, &items[i], &tag), HQ_OK);
        assert_int_equal(tag, first + i);
        items[i].tag = tag;
        snprintf(items[i].id, sizeof(items[i].id), "m%llu", (unsigned long long)tag);
    }
}

static void test_init_and_limits(void **state)
{
    struct hq_confirm w, zero;
    struct item it[3];
    uint64_t tag = 99;

    (void)state;
    assert_int_equal(hq_confirm_init(&w, 0), HQ_EINVAL);
    assert_int_equal(hq_confirm_init(&w, (size_t)HQ_CONFIRM_MAX + 1), HQ_EINVAL);
    assert_int_equal(hq_confirm_init(NULL, 4), HQ_EINVAL);
    assert_int_equal(hq_confirm_init(&w, 2), HQ_OK);
    assert_true(hq_confirm_empty(&w));
    assert_false(hq_confirm_full(&w));
    assert_int_equal(hq_confirm_room(&w), 2);
    assert_int_equal(hq_confirm_next_tag(&w), 1);
    assert_int_equal(hq_confirm_add(&w, NULL, &tag), HQ_EINVAL);
    assert_int_equal(tag, 99);
    add_n(&w, it, 2, 1);
    assert_true(hq_confirm_full(&w));
    assert_int_equal(hq_confirm_room(&w), 0);
    assert_int_equal(hq_confirm_add(&w, &it[2], &tag), HQ_EFULL);
    assert_int_equal(hq_confirm_next_tag(&w), 3); /* the refused add took no tag */
    assert_int_equal(hq_confirm_outstanding(&w), 2);
    assert_int_equal(hq_confirm_reset(&w), HQ_EINVAL); /* entries held: unchanged */
    assert_int_equal(hq_confirm_next_tag(&w), 3);
    assert_int_equal(hq_confirm_release(&w, NULL, NULL), 2);
    hq_confirm_free(&w);
    hq_confirm_free(&w); /* zeroed: again is fine */
    hq_confirm_free(NULL);

    /* a zeroed window: no places, nothing held, every call safe */
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(hq_confirm_add(&zero, &it[0], NULL), HQ_EFULL);
    assert_int_equal(hq_confirm_settle(&zero, 0, true, true, on_settle, NULL), 0);
    assert_int_equal(hq_confirm_settle(&zero, 1, true, true, on_settle, NULL), 0);
    assert_null(hq_confirm_find(&zero, id_is, "m1", NULL));
    assert_int_equal(hq_confirm_release(&zero, on_drop, NULL), 0);
    assert_true(hq_confirm_empty(&zero));
    hq_confirm_free(&zero);
}

static void test_settle_single_and_multiple(void **state)
{
    struct hq_confirm w;
    struct item it[8];
    static struct seen s;
    size_t i;

    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(hq_confirm_init(&w, 8), HQ_OK);
    add_n(&w, it, 8, 1);

    /* single ack of the lowest tag */
    assert_int_equal(hq_confirm_settle(&w, 1, false, true, on_settle, &s), 1);
    assert_int_equal(s.n, 1);
    assert_ptr_equal(s.entry[0], &it[0]);
    assert_int_equal(s.tag[0], 1);
    assert_true(s.ack[0]);
    assert_int_equal(hq_confirm_room(&w), 1);

    /* single acks out of order leave holes that still take their places */
    assert_int_equal(hq_confirm_settle(&w, 4, false, true, on_settle, &s), 1);
    assert_int_equal(hq_confirm_settle(&w, 6, false, false, on_settle, &s), 1); /* a nack */
    assert_false(s.ack[2]);
    assert_int_equal(hq_confirm_outstanding(&w), 5);
    assert_int_equal(hq_confirm_room(&w), 1); /* tags 2..8 are still spanned */

    /* multiple: 2, 3, 5 (4 was settled), lowest first, with the frame's ack flag */
    s.n = 0;
    assert_int_equal(hq_confirm_settle(&w, 5, true, true, on_settle, &s), 3);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.tag[0], 2);
    assert_int_equal(s.tag[1], 3);
    assert_int_equal(s.tag[2], 5);
    for (i = 0; i < 3; i++) {
        assert_true(s.ack[i]);
        assert_ptr_equal(s.entry[i], &it[s.tag[i] - 1]);
    }
    /* 6 was settled before: the lowest unsettled is 7 */
    assert_int_equal(hq_confirm_room(&w), 6);
    assert_int_equal(hq_confirm_outstanding(&w), 2);

    /* a multiple nack of the rest */
    s.n = 0;
    assert_int_equal(hq_confirm_settle(&w, 8, true, false, on_settle, &s), 2);
    assert_int_equal(s.tag[0], 7);
    assert_int_equal(s.tag[1], 8);
    assert_false(s.ack[0]);
    assert_false(s.ack[1]);
    assert_true(hq_confirm_empty(&w));
    assert_int_equal(hq_confirm_room(&w), 8);
    assert_int_equal(hq_confirm_next_tag(&w), 9);
    hq_confirm_free(&w);
}

static void test_hostile_tags(void **state)
{
    struct hq_confirm w;
    struct item it[4];
    static struct seen s;

    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(hq_confirm_init(&w, 4), HQ_OK);

    /* nothing issued yet: nothing to settle */
    assert_int_equal(hq_confirm_settle(&w, 1, false, true, on_settle, &s), 0);
    assert_int_equal(hq_confirm_settle(&w, 1, true, true, on_settle, &s), 0);
    add_n(&w, it, 3, 1);

    /* tags never issued: 0 (the broker's first is 1), next, far beyond, the largest */
    assert_int_equal(hq_confirm_settle(&w, 0, false, true, on_settle, &s), 0);
    assert_int_equal(hq_confirm_settle(&w, 0, true, true, on_settle, &s), 0);
    assert_int_equal(hq_confirm_settle(&w, 4, false, true, on_settle, &s), 0);
    assert_int_equal(hq_confirm_settle(&w, 1000, false, false, on_settle, &s), 0);
    assert_int_equal(hq_confirm_settle(&w, UINT64_MAX, false, true, on_settle, &s), 0);
    /* multiple beyond next: not taken as "everything" (it confirms nothing we sent) */
    assert_int_equal(hq_confirm_settle(&w, 4, true, true, on_settle, &s), 0);
    assert_int_equal(hq_confirm_settle(&w, UINT64_MAX, true, true, on_settle, &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(hq_confirm_outstanding(&w), 3);

    /* tags settled already: single, and multiple below the lowest unsettled */
    assert_int_equal(hq_confirm_settle(&w, 2, false, true, on_settle, &s), 1);
    assert_int_equal(hq_confirm_settle(&w, 2, false, true, on_settle, &s), 0);
    assert_int_equal(hq_confirm_settle(&w, 2, false, false, on_settle, &s), 0);
    assert_int_equal(hq_confirm_settle(&w, 1, true, true, on_settle, &s), 1);
    assert_int_equal(hq_confirm_settle(&w, 1, true, true, on_settle, &s), 0);
    assert_int_equal(hq_confirm_settle(&w, 2, true, true, on_settle, &s), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(hq_confirm_outstanding(&w), 1);
    assert_int_equal(hq_confirm_room(&w), 3); /* only tag 3 is spanned */

    /* callbacks may be NULL: the entries still leave */
    assert_int_equal(hq_confirm_settle(&w, 3, true, true, NULL, NULL), 1);
    assert_true(hq_confirm_empty(&w));
    assert_int_equal(hq_confirm_settle(&w, 3, true, true, on_settle, &s), 0);
    hq_confirm_free(&w);
}

static void test_find_for_returns(void **state)
{
    struct hq_confirm w;
    struct item it[5];
    uint64_t tag = 0;

    (void)state;
    assert_int_equal(hq_confirm_init(&w, 5), HQ_OK);
    add_n(&w, it, 5, 1);
    snprintf(it[3].id, sizeof(it[3].id), "%s", "m2"); /* tags 2 and 4 share an id */

    assert_ptr_equal(hq_confirm_find(&w, id_is, "m2", &tag), &it[1]);
    assert_int_equal(tag, 2);
    /* an unknown id, an empty one: nothing, *tag untouched */
    tag = 77;
    assert_null(hq_confirm_find(&w, id_is, "nope", &tag));
    assert_null(hq_confirm_find(&w, id_is, "", &tag));
    assert_int_equal(tag, 77);
    assert_null(hq_confirm_find(&w, NULL, "m1", &tag));
    /* found entries stay; once settled, the next one with the id is found */
    assert_int_equal(hq_confirm_outstanding(&w), 5);
    assert_int_equal(hq_confirm_settle(&w, 2, false, true, NULL, NULL), 1);
    assert_ptr_equal(hq_confirm_find(&w, id_is, "m2", &tag), &it[3]);
    assert_int_equal(tag, 4);
    assert_int_equal(hq_confirm_settle(&w, 5, true, true, NULL, NULL), 4);
    assert_null(hq_confirm_find(&w, id_is, "m2", NULL));
    assert_null(hq_confirm_find(&w, id_is, "m5", NULL));
    hq_confirm_free(&w);
}

/* The places of a small ring are reused many times over: compare with a model that keeps
 * every tag's state, through a deterministic mix of adds, single and multiple acks and nacks,
 * hostile tags and finds. */
static void test_wrap_around_model(void **state)
{
    enum { CAP = 5, TAGS = 3000 };
    static struct item items[TAGS + 1];
    static bool held[TAGS + 2];
    static struct seen s;
    struct hq_confirm w;
    uint64_t next = 1, lo = 1, x = 88172645463325252ULL;
    size_t out = 0, round;

    (void)state;
    assert_int_equal(hq_confirm_init(&w, CAP), HQ_OK);
    for (round = 0; next <= TAGS; round++) {
        uint64_t r, tag, t, want_n = 0;
        bool multiple, ack;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r = x;
        if (r % 3 != 0 && hq_confirm_room(&w) > 0) {
            uint64_t got = 0;

            assert_int_equal(hq_confirm_add(&w, &items[next], &got), HQ_OK);
            assert_int_equal(got, next);
            items[next].tag = next;
            snprintf(items[next].id, sizeof(items[next].id), "m%llu", (unsigned long long)next);
            held[next] = true;
            next++;
            out++;
        } else {
            if (r % 3 != 0)
                assert_int_equal(next - lo, CAP); /* no room: CAP tags are spanned */
            /* a tag from a little below lo to a little beyond next */
            tag = lo + (r >> 8) % (next - lo + 3);
            tag = tag >= 2 ? tag - 2 : 0;
            multiple = (r >> 4) & 1;
            ack = (r >> 5) & 1;
            s.n = 0;
            if (tag >= lo && tag < next)
                for (t = multiple ? lo : tag; t <= tag; t++)
                    want_n += held[t];
            assert_int_equal(hq_confirm_settle(&w, tag, multiple, ack, on_settle, &s), want_n);
            assert_int_equal(s.n, want_n);
            for (t = 0; t < s.n; t++) {
                assert_true(held[s.tag[t]]);
                assert_ptr_equal(s.entry[t], &items[s.tag[t]]);
                assert_int_equal(s.ack[t], ack);
                if (t > 0)
                    assert_true(s.tag[t] > s.tag[t - 1]);
                held[s.tag[t]] = false;
            }
            out -= s.n;
            while (lo < next && !held[lo])
                lo++;
        }
        assert_int_equal(hq_confirm_outstanding(&w), out);
        assert_int_equal(hq_confirm_room(&w), CAP - (next - lo));
        assert_int_equal(hq_confirm_empty(&w), out == 0);
        if (round % 7 == 0 && lo < next) {
            char id[16];
            uint64_t ft = 0;
            struct item *e;

            snprintf(id, sizeof(id), "m%llu", (unsigned long long)(next - 1));
            e = hq_confirm_find(&w, id_is, id, &ft);
            if (held[next - 1]) {
                assert_ptr_equal(e, &items[next - 1]);
                assert_int_equal(ft, next - 1);
            } else {
                assert_null(e);
            }
        }
    }
    assert_true(next > 100 * CAP); /* the ring went round many times */
    hq_confirm_release(&w, NULL, NULL);
    hq_confirm_free(&w);
}

/* A FIFO the released entries are pushed at the head of, as the publisher pool requeues. */
struct fifo {
    size_t n;
    struct item *v[16];
};

static void push_front(void *arg, void *entry, uint64_t tag)
{
    struct fifo *f = arg;

    (void)tag;
    assert_true(f->n < 16);
    memmove(f->v + 1, f->v, f->n * sizeof(f->v[0]));
    f->v[0] = entry;
    f->n++;
}

static void test_release_requeue_order(void **state)
{
    struct hq_confirm w;
    struct item it[6], more[2];
    static struct seen s;
    struct fifo f;
    uint64_t tag = 0;

    (void)state;
    memset(&s, 0, sizeof(s));
    memset(&f, 0, sizeof(f));
    assert_int_equal(hq_confirm_init(&w, 4), HQ_OK);
    /* wrap the ring first: tags 1..2 settled, 3..6 in flight (places 3, 0, 1, 2) */
    add_n(&w, it, 4, 1);
    assert_int_equal(hq_confirm_settle(&w, 2, true, true, NULL, NULL), 2);
    add_n(&w, it + 4, 2, 5);
    assert_int_equal(hq_confirm_settle(&w, 4, false, true, NULL, NULL), 1); /* a hole */

    /* highest tag first */
    assert_int_equal(hq_confirm_release(&w, on_drop, &s), 3);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.tag[0], 6);
    assert_int_equal(s.tag[1], 5);
    assert_int_equal(s.tag[2], 3);
    assert_true(hq_confirm_empty(&w));
    assert_int_equal(hq_confirm_room(&w), 4);
    /* nothing left to settle or find */
    assert_int_equal(hq_confirm_settle(&w, 6, true, true, on_settle, &s), 0);
    assert_null(hq_confirm_find(&w, id_is, "m5", NULL));
    assert_int_equal(hq_confirm_release(&w, on_drop, &s), 0);

    /* pushed at the head of a FIFO, one by one: back in publish order */
    add_n(&w, more, 2, 7); /* tags go on until a reset */
    assert_int_equal(hq_confirm_release(&w, push_front, &f), 2);
    assert_int_equal(f.n, 2);
    assert_ptr_equal(f.v[0], &more[0]);
    assert_ptr_equal(f.v[1], &more[1]);

    /* a new channel: tags start at 1 again */
    assert_int_equal(hq_confirm_reset(&w), HQ_OK);
    assert_int_equal(hq_confirm_next_tag(&w), 1);
    assert_int_equal(hq_confirm_add(&w, &it[0], &tag), HQ_OK);
    assert_int_equal(tag, 1);
    assert_int_equal(hq_confirm_settle(&w, 1, false, true, NULL, NULL), 1);
    hq_confirm_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_and_limits),
        cmocka_unit_test(test_settle_single_and_multiple),
        cmocka_unit_test(test_hostile_tags),
        cmocka_unit_test(test_find_for_returns),
        cmocka_unit_test(test_wrap_around_model),
        cmocka_unit_test(test_release_requeue_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
