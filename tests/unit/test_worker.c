/* Unit tests of hookmq-worker's broker-free parts: the retry tier formula
 * (docs/interface.md), attempt parsing, clean copies, ledger keys, the dedupe ledger (window,
 * compaction, hostile lines, several workers on one host), the crash ledger, the rate limiter
 * and log-safe text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "hq_time.h"
#include "worker.h"
#define HQTEST_DIR_NAME "worker"
#define HQTEST_FSYNC_RECORDER
#include "hqtest.h"

#define S(x) (x * 1000ULL)

static void retry_delay_contract_example(void **st)
{
    const uint64_t d[] = {S(10), S(60)};

    (void)st;
    /* delays [10s, 1m]: attempt 1 -> 10s, 2 -> 1m, 3 -> 1m (the last tier repeats) */
    assert_int_equal(wk_retry_delay(d, 2, 1, 0), S(10));
    assert_int_equal(wk_retry_delay(d, 2, 2, 0), S(60));
    assert_int_equal(wk_retry_delay(d, 2, 3, 0), S(60));
    assert_int_equal(wk_retry_delay(d, 2, 1000, 0), S(60));
    assert_int_equal(wk_retry_delay(d, 2, 0, 0), S(10)); /* attempt 0 is treated as 1 */
    assert_int_equal(wk_retry_delay(NULL, 0, 1, 0), 0);
}

static void retry_delay_retry_after(void **st)
{
    const uint64_t d[] = {200, 500, 1000};
    const uint64_t unsorted[] = {1000, 200, 500};

    (void)st;
    assert_int_equal(wk_retry_delay(d, 3, 1, 400), 500); /* smallest tier >= 400 */
    assert_int_equal(wk_retry_delay(d, 3, 1, 500), 500);
    assert_int_equal(wk_retry_delay(d, 3, 1, 100), 200); /* the formula's tier is longer */
    assert_int_equal(wk_retry_delay(d, 3, 2, 300), 500);
    assert_int_equal(wk_retry_delay(d, 3, 1, 5000), 1000); /* none long enough: the largest */
    assert_int_equal(wk_retry_delay(d, 3, 1, -5), 200);
    assert_int_equal(wk_retry_delay(unsorted, 3, 2, 300), 500);
    assert_int_equal(wk_retry_delay(unsorted, 3, 2, 0), 200);
}

static void attempt_parsing(void **st)
{
    struct hq_msg m;

    (void)st;
    memset(&m, 0, sizeof(m));
    assert_int_equal(wk_msg_attempt(&m), 1);
    assert_int_equal(hq_msg_add_long(&m, "hookmq-attempt", 3), HQ_OK);
    assert_int_equal(wk_msg_attempt(&m), 3);
    assert_int_equal(hq_msg_add_long(&m, "hookmq-attempt", 0), HQ_OK);
    assert_int_equal(wk_msg_attempt(&m), 1);
    assert_int_equal(hq_msg_add_long(&m, "hookmq-attempt", -7), HQ_OK);
    assert_int_equal(wk_msg_attempt(&m), 1);
    assert_int_equal(hq_msg_add_long(&m, "hookmq-attempt", INT64_MAX), HQ_OK);
    assert_int_equal(wk_msg_attempt(&m), 1000000);
    assert_int_equal(hq_msg_add_str(&m, "hookmq-attempt", "4"), HQ_OK);
    assert_int_equal(wk_msg_attempt(&m), 4);
    assert_int_equal(hq_msg_add_str(&m, "hookmq-attempt", "4x"), HQ_OK);
    assert_int_equal(wk_msg_attempt(&m), 1);
    assert_int_equal(hq_msg_add_str(&m, "hookmq-attempt", ""), HQ_OK);
    assert_int_equal(wk_msg_attempt(&m), 1);
    assert_int_equal(hq_msg_add_str(&m, "hookmq-attempt", "99999999999999999999999"), HQ_OK);
    assert_int_equal(wk_msg_attempt(&m), 1);
    assert_int_equal(wk_msg_long(&m, "missing", 42), 42);
    assert_null(hq_msg_str(&m, "missing"));
    hq_msg_free(&m);
}

static void clean_copy(void **st)
{
    struct hq_msg m, c;

    (void)st;
    memset(&m, 0, sizeof(m));
    m.message_id = strdup("id-1");
    m.body = (unsigned char *)strdup("{\"a\":1}");
    m.body_len = 7;
    assert_int_equal(hq_msg_add_str(&m, "hookmq-source", "shop"), HQ_OK);
    assert_int_equal(hq_msg_add_long(&m, "x-delivery-count", 3), HQ_OK);
    assert_int_equal(hq_msg_add_str(&m, "x-first-death-queue", "q"), HQ_OK);
    assert_int_equal(hq_msg_add_str(&m, "hookmq-consumer", "c"), HQ_OK);
    assert_int_equal(hq_msg_add_long(&m, "hookmq-attempts", 5), HQ_OK);
    assert_int_equal(hq_msg_add_str(&m, "hookmq-last-error", "boom"), HQ_OK);
    assert_int_equal(hq_msg_add_long(&m, "hookmq-failed-at", 1), HQ_OK);
    assert_int_equal(hq_msg_add_long(&m, "hookmq-redriven", 2), HQ_OK);

    assert_int_equal(wk_msg_clean_copy(&m, false, &c), HQ_OK);
    assert_string_equal(c.message_id, "id-1");
    assert_int_equal(c.body_len, 7);
    assert_memory_equal(c.body, "{\"a\":1}", 7);
    assert_null(hq_msg_header(&c, "x-delivery-count"));
    assert_null(hq_msg_header(&c, "x-first-death-queue"));
    assert_non_null(hq_msg_header(&c, "hookmq-consumer"));
    assert_string_equal(hq_msg_str(&c, "hookmq-source"), "shop");
    assert_int_equal(c.n_headers, 6);
    hq_msg_free(&c);

    assert_int_equal(wk_msg_clean_copy(&m, true, &c), HQ_OK);
    assert_null(hq_msg_header(&c, "hookmq-consumer"));
    assert_null(hq_msg_header(&c, "hookmq-attempts"));
    assert_null(hq_msg_header(&c, "hookmq-last-error"));
    assert_null(hq_msg_header(&c, "hookmq-failed-at"));
    assert_int_equal(wk_msg_long(&c, "hookmq-redriven", 0), 2);
    assert_int_equal(c.n_headers, 2);
    hq_msg_free(&c);
    hq_msg_free(&m);
}

static void ledger_keys(void **st)
{
    char k[WK_KEY_MAX], big[2000];

    (void)st;
    assert_true(wk_ledger_key("shop", "evt_1", k, sizeof(k)));
    assert_string_equal(k, "shop evt_1");
    assert_true(wk_ledger_key("shop", "a b\n%c\x7f", k, sizeof(k)));
    assert_string_equal(k, "shop a%20b%0A%25c%7F");
    assert_false(wk_ledger_key("", "x", k, sizeof(k)));
    assert_false(wk_ledger_key("s", "", k, sizeof(k)));
    assert_false(wk_ledger_key(NULL, "x", k, sizeof(k)));
    assert_false(wk_ledger_key("s", "x", k, 3));
    memset(big, ' ', sizeof(big) - 1); /* escapes to 3x: does not fit */
    big[sizeof(big) - 1] = '\0';
    assert_false(wk_ledger_key("s", big, k, sizeof(k)));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static size_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    int c;

    if (!f) return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void dedupe_ledger(void **st)
{
    char path[400], err[512], text[4096];
    struct wk_dedupe *d = NULL, *d2 = NULL;
    long long now = (long long)hq_now_ms();

    (void)st;
    snprintf(path, sizeof(path), "%s/sub/dir/ledger", hqtest_dir); /* parents are created */
    assert_int_equal(wk_dedupe_open(path, 3600 * 1000, &d, err, sizeof(err)), HQ_OK);
    assert_string_equal(wk_dedupe_path(d), path);
    assert_false(wk_dedupe_seen(d, "shop", "x"));
    assert_int_equal(wk_dedupe_record(d, "shop", "x"), HQ_OK);
    assert_int_equal(wk_dedupe_record(d, "shop", "with space"), HQ_OK);
    assert_true(wk_dedupe_seen(d, "shop", "x"));
    assert_true(wk_dedupe_seen(d, "shop", "with space"));
    assert_false(wk_dedupe_seen(d, "other", "x")); /* keyed on (source, id) */
    assert_false(wk_dedupe_seen(d, "shop", "y"));
    assert_int_equal(wk_dedupe_record(d, "", "x"), HQ_EINVAL);
    assert_int_equal(count_lines(path), 2);

    /* a second worker on this host while the first holds the file: path.1, and it reads path */
    assert_int_equal(wk_dedupe_open(path, 3600 * 1000, &d2, err, sizeof(err)), HQ_OK);
    assert_true(strstr(wk_dedupe_path(d2), "ledger.1") != NULL);
    assert_true(wk_dedupe_seen(d2, "shop", "x"));
    assert_int_equal(wk_dedupe_record(d2, "crm", "z"), HQ_OK);
    wk_dedupe_close(d2);
    wk_dedupe_close(d);

    /* restart: both files are read; expired and hostile lines are dropped by compaction */
    snprintf(text, sizeof(text),
             "shop old %lld\n" /* older than the window */
             "shop fresh %lld\n"
             "garbage\n"
             "shop too many fields 1\n"
             "shop neg -5\n"
             "shop nonnum 12ab\n"
             " x 1\n"
             "shop partial %lld", /* no newline: last line still fine */
             now - 7200 * 1000, now - 1000, now);
    {
        FILE *f = fopen(path, "a");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
    }
    assert_int_equal(wk_dedupe_open(path, 3600 * 1000, &d, err, sizeof(err)), HQ_OK);
    assert_string_equal(wk_dedupe_path(d), path);
    assert_true(wk_dedupe_seen(d, "shop", "x"));
    assert_true(wk_dedupe_seen(d, "crm", "z")); /* from ledger.1 */
    assert_true(wk_dedupe_seen(d, "shop", "fresh"));
    assert_true(wk_dedupe_seen(d, "shop", "partial"));
    assert_false(wk_dedupe_seen(d, "shop", "old"));
    assert_false(wk_dedupe_seen(d, "shop", "too"));
    assert_int_equal(wk_dedupe_count(d), 5); /* x, with space, z, fresh, partial */
    assert_int_equal(count_lines(path), 5);  /* rewritten: live entries only */
    wk_dedupe_close(d);

    /* an unwritable place is an error with a message */
    assert_int_not_equal(wk_dedupe_open("/proc/hq-no/ledger", 1000, &d, err, sizeof(err)), HQ_OK);
    assert_null(d);
    assert_true(strlen(err) > 0);
}

static void dedupe_window(void **st)
{
    char path[400], err[512], text[256];
    struct wk_dedupe *d = NULL;

    (void)st;
    snprintf(path, sizeof(path), "%s/win", hqtest_dir);
    snprintf(text, sizeof(text), "s a %lld\n", (long long)hq_now_ms() - 1500);
    write_file(path, text);
    assert_int_equal(wk_dedupe_open(path, 1000, &d, err, sizeof(err)), HQ_OK);
    assert_false(wk_dedupe_seen(d, "s", "a"));
    assert_int_equal(count_lines(path), 0);
    assert_int_equal(wk_dedupe_record(d, "s", "b"), HQ_OK);
    assert_true(wk_dedupe_seen(d, "s", "b"));
    wk_dedupe_close(d);
}

/* The injected wall clock of dedupe_expires_while_running. */
static int64_t fake_now_ms;

static int64_t fake_clock(void)
{
    return fake_now_ms;
}

/* Every record is a new id (the case where `appended > count` never held): while the worker
 * runs, ids older than the window leave memory and the file is compacted, so both stay
 * within about one window's ids. */
static void dedupe_expires_while_running(void **st)
{
    enum { PER_ROUND = 1000, ROUNDS = 12, STEP_MS = 5000, WINDOW_MS = 10000 };
    char path[400], err[512], id[64];
    struct wk_dedupe *d = NULL;
    size_t max_lines = 0;
    int r, i;

    (void)st;
    /* tmpfs when there is one: 12,000 fdatasyncs */
    if (access("/dev/shm", W_OK) == 0)
        snprintf(path, sizeof(path), "/dev/shm/hq-dedupe-exp-%d/ledger", (int)getpid());
    else
        snprintf(path, sizeof(path), "%s/exp/ledger", hqtest_dir);
    assert_int_equal(wk_dedupe_open(path, WINDOW_MS, &d, err, sizeof(err)), HQ_OK);
    fake_now_ms = hq_now_ms();
    wk_dedupe_set_clock(d, fake_clock);
    for (r = 0; r < ROUNDS; r++) {
        for (i = 0; i < PER_ROUND; i++) {
            snprintf(id, sizeof(id), "r%d-%d", r, i);
            assert_int_equal(wk_dedupe_record(d, "s", id), HQ_OK);
            fake_now_ms += 1;
        }
        /* live: this round and the one before (the window spans two rounds); the sweep runs
         * every window/16, so a round may linger that long */
        assert_true(wk_dedupe_count(d) <= 3 * PER_ROUND);
        if (wk_dedupe_file_lines(d) > max_lines) max_lines = wk_dedupe_file_lines(d);
        assert_int_equal(wk_dedupe_file_lines(d), count_lines(path));
        if (r + 1 < ROUNDS) fake_now_ms += STEP_MS;
    }
    /* the file: compacted once its dead lines outnumber the live ones (and past 4096) */
    assert_true(max_lines <= 4096 + 2 * 3 * PER_ROUND);
    assert_true(max_lines < ROUNDS * PER_ROUND);
    assert_true(wk_dedupe_seen(d, "s", "r11-5"));
    assert_true(wk_dedupe_seen(d, "s", "r10-999"));
    assert_false(wk_dedupe_seen(d, "s", "r0-5"));
    assert_false(wk_dedupe_seen(d, "s", "r9-0"));
    /* the compacted file still holds every live id: a restart at this time knows them */
    wk_dedupe_close(d);
    d = NULL;
    {
        FILE *f = fopen(path, "r");
        char line[256];
        int live = 0, old = 0;

        assert_non_null(f);
        while (fgets(line, sizeof(line), f)) {
            if (strncmp(line, "s r11-", 6) == 0 || strncmp(line, "s r10-", 6) == 0) live++;
            if (strncmp(line, "s r0-", 5) == 0) old++;
        }
        fclose(f);
        assert_int_equal(live, 2 * PER_ROUND);
        assert_int_equal(old, 0);
    }
    unlink(path);
    {
        char lock[420];
        snprintf(lock, sizeof(lock), "%s.lock", path);
        unlink(lock);
        *strrchr(path, '/') = '\0';
        rmdir(path);
    }
}

/* The directories the ledger's mkdir -p creates are durable: the parent of each is fsync'd. */
static void dedupe_fsyncs_new_directories(void **st)
{
    char base[PATH_MAX], path[PATH_MAX + 32], dir[PATH_MAX + 32], err[512];
    struct wk_dedupe *d = NULL;

    (void)st;
    assert_non_null(realpath(hqtest_dir, base));
    snprintf(path, sizeof(path), "%s/new1/new2/ledger", base);
    hqtest_n_fsynced = 0;
    assert_int_equal(wk_dedupe_open(path, 1000, &d, err, sizeof(err)), HQ_OK);
    wk_dedupe_close(d);
    assert_true(hqtest_was_fsynced(base));                    /* holds new1 */
    snprintf(dir, sizeof(dir), "%s/new1", base);
    assert_true(hqtest_was_fsynced(dir));                     /* holds new2 */
    snprintf(dir, sizeof(dir), "%s/new1/new2", base);
    assert_true(hqtest_was_fsynced(dir));                     /* holds the ledger */
}

static void crash_ledger(void **st)
{
    char path[400], err[512], slots[420];
    struct wk_inflight *f = NULL;
    int i;

    (void)st;
    snprintf(path, sizeof(path), "%s/crash.inflight", hqtest_dir);
    snprintf(slots, sizeof(slots), "%s.slots", path);
    for (i = 1; i <= 3; i++) {
        /* a run that dies with "s poison" in slot 1 (close without end = the process died) */
        assert_int_equal(wk_inflight_open(path, 2, &f, err, sizeof(err)), HQ_OK);
        assert_int_equal(wk_inflight_crashes(f, "s poison"), i - 1);
        wk_inflight_begin(f, 0, "s fine");
        wk_inflight_end(f, 0, "s fine");
        wk_inflight_begin(f, 1, "s poison");
        wk_inflight_close(f);
    }
    assert_int_equal(wk_inflight_open(path, 4, &f, err, sizeof(err)), HQ_OK);
    assert_int_equal(wk_inflight_crashes(f, "s poison"), 3);
    assert_int_equal(wk_inflight_crashes(f, "s fine"), 0);
    wk_inflight_begin(f, 9, "s out of range"); /* ignored */
    /* settled at last: its count is forgotten */
    wk_inflight_begin(f, 3, "s poison");
    wk_inflight_end(f, 3, "s poison");
    assert_int_equal(wk_inflight_crashes(f, "s poison"), 0);
    wk_inflight_close(f);
    assert_int_equal(wk_inflight_open(path, 1, &f, err, sizeof(err)), HQ_OK);
    assert_int_equal(wk_inflight_crashes(f, "s poison"), 0);
    wk_inflight_close(f);

    /* hostile files: garbage counts and a truncated slots file are ignored */
    write_file(path, "x s a\n-1 s b\n2 s c\n5\n");
    write_file(slots, "HQIF\x05\x00\x00\x00short");
    assert_int_equal(wk_inflight_open(path, 1, &f, err, sizeof(err)), HQ_OK);
    assert_int_equal(wk_inflight_crashes(f, "s a"), 0);
    assert_int_equal(wk_inflight_crashes(f, "s b"), 0);
    assert_int_equal(wk_inflight_crashes(f, "s c"), 2);
    wk_inflight_close(f);
}

/* The crash ledger keeps protecting at 10,000 keys: expired counts (last crash over 7 days
 * ago) are dropped, and when every key is live the oldest is evicted for the newest crash. */
static void crash_ledger_bounded(void **st)
{
    char path[400], err[512], key[64];
    struct wk_inflight *f = NULL;
    int64_t now = hq_now_ms(), week = 7 * 24 * 3600 * 1000LL;
    FILE *out;
    int i;

    (void)st;
    snprintf(path, sizeof(path), "%s/bounded.inflight", hqtest_dir);
    /* 10,000 keys, all expired, then one crash of a new event */
    out = fopen(path, "w");
    assert_non_null(out);
    for (i = 0; i < 10000; i++)
        fprintf(out, "4 s old%d %lld\n", i, (long long)(now - week - 60000));
    fclose(out);
    assert_int_equal(wk_inflight_open(path, 1, &f, err, sizeof(err)), HQ_OK);
    assert_int_equal(wk_inflight_crashes(f, "s old1"), 0);
    wk_inflight_begin(f, 0, "s new");
    wk_inflight_close(f); /* died with "s new" running */
    assert_int_equal(wk_inflight_open(path, 1, &f, err, sizeof(err)), HQ_OK);
    assert_int_equal(wk_inflight_crashes(f, "s new"), 1);
    wk_inflight_close(f);
    assert_int_equal(count_lines(path), 1); /* the expired keys left the file */

    /* 10,000 live keys (the oldest crashed 6 days ago): the new crash still counts, the
     * oldest key makes room */
    out = fopen(path, "w");
    assert_non_null(out);
    for (i = 0; i < 10000; i++) {
        int64_t ago = i == 77 ? week - 86400000LL : 1000;
        fprintf(out, "2 s live%d %lld\n", i, (long long)(now - ago));
    }
    fclose(out);
    assert_int_equal(wk_inflight_open(path, 1, &f, err, sizeof(err)), HQ_OK);
    wk_inflight_begin(f, 0, "s newest");
    wk_inflight_close(f);
    assert_int_equal(wk_inflight_open(path, 1, &f, err, sizeof(err)), HQ_OK);
    assert_int_equal(wk_inflight_crashes(f, "s newest"), 1);
    assert_int_equal(wk_inflight_crashes(f, "s live77"), 0);
    for (i = 0; i < 10000; i += 999) {
        if (i == 77) continue;
        snprintf(key, sizeof(key), "s live%d", i);
        assert_int_equal(wk_inflight_crashes(f, key), 2);
    }
    /* a count written by an older version (no time) is kept, as crashed now */
    wk_inflight_close(f);
    write_file(path, "3 s legacy\n");
    assert_int_equal(wk_inflight_open(path, 1, &f, err, sizeof(err)), HQ_OK);
    assert_int_equal(wk_inflight_crashes(f, "s legacy"), 3);
    wk_inflight_close(f);
    unlink(path);
}

static void rate_limit(void **st)
{
    struct wk_rate r;
    uint64_t gen, gen2;
    int64_t w1, w2, w3;

    (void)st;
    wk_rate_init(&r, 0);
    assert_int_equal(wk_rate_reserve(&r, &gen), 0);
    assert_int_equal(wk_rate_reserve(&r, &gen), 0);
    wk_rate_set(&r, 10); /* one every 100 ms, burst 1 */
    assert_int_equal(wk_rate_gen(&r), gen + 1);
    w1 = wk_rate_reserve(&r, &gen2);
    w2 = wk_rate_reserve(&r, &gen2);
    w3 = wk_rate_reserve(&r, &gen2);
    assert_int_equal(gen2, gen + 1);
    assert_int_equal(w1, 0);
    assert_in_range(w2, 95, 101);
    assert_in_range(w3, 195, 201);
    wk_rate_set(&r, 100); /* burst 10: the next 10 go at once */
    for (int i = 0; i < 10; i++)
        assert_int_equal(wk_rate_reserve(&r, NULL), 0);
    assert_in_range(wk_rate_reserve(&r, NULL), 1, 11);
    wk_rate_destroy(&r);
}

static void log_safe(void **st)
{
    char out[16];

    (void)st;
    wk_log_safe(out, sizeof(out), "a b\"c\\d\ne", false);
    assert_string_equal(out, "a_b_c_d_e");
    wk_log_safe(out, sizeof(out), "a b\"c", true);
    assert_string_equal(out, "a b_c");
    wk_log_safe(out, sizeof(out), "0123456789abcdefghij", false);
    assert_string_equal(out, "0123456789abcde");
    wk_log_safe(out, sizeof(out), NULL, false);
    assert_string_equal(out, "");
}

static void redrive_interval(void **st)
{
    (void)st;
    assert_int_equal(wk_redrive_interval_ms(1000), 1000);
    assert_int_equal(wk_redrive_interval_ms(S(60)), S(15));
    assert_int_equal(wk_redrive_interval_ms(S(3600)), S(60));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(retry_delay_contract_example),
        cmocka_unit_test(retry_delay_retry_after),
        cmocka_unit_test(attempt_parsing),
        cmocka_unit_test(clean_copy),
        cmocka_unit_test(ledger_keys),
        cmocka_unit_test(dedupe_ledger),
        cmocka_unit_test(dedupe_window),
        cmocka_unit_test(dedupe_expires_while_running),
        cmocka_unit_test(dedupe_fsyncs_new_directories),
        cmocka_unit_test(crash_ledger),
        cmocka_unit_test(crash_ledger_bounded),
        cmocka_unit_test(rate_limit),
        cmocka_unit_test(log_safe),
        cmocka_unit_test(redrive_interval),
    };
    return cmocka_run_group_tests(tests, hqtest_dir_setup, hqtest_dir_teardown);
}
