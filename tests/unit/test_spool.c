/* Unit tests: the gateway's spool journal (gateway/spool.c) and replay cache
 * (gateway/replay.c): durability across reopen, torn and corrupt records, the size cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "gw.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/hq-spool-test-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void make_msg(struct hq_msg *m, int i)
{
    char id[32], body[64];

    memset(m, 0, sizeof(*m));
    snprintf(id, sizeof(id), "evt-%d", i);
    snprintf(body, sizeof(body), "{\"i\":%d}", i);
    m->routing_key = strdup("src.type");
    m->message_id = strdup(id);
    m->content_type = strdup("application/json");
    m->timestamp_s = 1700000000 + i;
    m->body = (unsigned char *)strdup(body);
    m->body_len = strlen(body);
    assert_int_equal(hq_msg_add_str(m, "hookmq-source", "src"), HQ_OK);
    assert_int_equal(hq_msg_add_long(m, "hookmq-received-at", 1700000000000LL + i), HQ_OK);
}

/* The path of the only non-empty segment in dir. */
static void segment_path(char *out, size_t outsz)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    out[0] = '\0';
    while ((e = readdir(d)) != NULL) {
        char p[600];
        FILE *f;
        long n;
        if (strncmp(e->d_name, "seg-", 4) != 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        f = fopen(p, "rb");
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fclose(f);
        if (n > 0)
            snprintf(out, outsz, "%s", p);
    }
    closedir(d);
}

static struct gw_spool *open_spool(uint64_t max)
{
    struct gw_spool *s = NULL;
    char err[256];

    assert_int_equal(gw_spool_open(dir, max, &s, err, sizeof(err)), HQ_OK);
    return s;
}

static void test_append_survives_reopen(void **state)
{
    struct gw_spool *s = open_spool(1 << 20);
    uint64_t ev, bytes;
    int i;

    (void)state;
    for (i = 0; i < 3; i++) {
        struct hq_msg m;
        make_msg(&m, i);
        assert_int_equal(gw_spool_append(s, &m), HQ_OK);
        hq_msg_free(&m);
    }
    gw_spool_counts(s, &ev, &bytes);
    assert_int_equal(ev, 3);
    assert_true(bytes > 0);
    assert_true(gw_spool_writable(s));
    gw_spool_close(s);

    s = open_spool(1 << 20);
    gw_spool_counts(s, &ev, &bytes);
    assert_int_equal(ev, 3);
    gw_spool_close(s);
}

static void test_torn_tail_is_skipped(void **state)
{
    struct gw_spool *s = open_spool(1 << 20);
    char path[600];
    uint64_t ev, bytes;
    struct hq_msg m;
    int fd;

    (void)state;
    make_msg(&m, 1);
    assert_int_equal(gw_spool_append(s, &m), HQ_OK);
    assert_int_equal(gw_spool_append(s, &m), HQ_OK);
    hq_msg_free(&m);
    gw_spool_close(s);
    segment_path(path, sizeof(path));
    assert_true(path[0] != '\0');
    /* a crash in the middle of a write: magic and a length, half a payload */
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "HQSP\x40\x00\x00\x00\x01\x02\x03\x04partial", 19), 19);
    close(fd);

    s = open_spool(1 << 20);
    gw_spool_counts(s, &ev, &bytes);
    assert_int_equal(ev, 2);
    gw_spool_close(s);
}

static void test_corrupt_record_is_skipped(void **state)
{
    struct gw_spool *s = open_spool(1 << 20);
    char path[600];
    uint64_t ev, bytes;
    struct hq_msg m;
    unsigned char c;
    int fd, i;

    (void)state;
    for (i = 0; i < 3; i++) {
        make_msg(&m, i);
        assert_int_equal(gw_spool_append(s, &m), HQ_OK);
        hq_msg_free(&m);
    }
    gw_spool_close(s);
    segment_path(path, sizeof(path));
    /* flip a byte inside the first record's payload: its CRC no longer matches */
    fd = open(path, O_RDWR);
    assert_int_equal(pread(fd, &c, 1, 20), 1);
    c ^= 0xff;
    assert_int_equal(pwrite(fd, &c, 1, 20), 1);
    close(fd);
    s = open_spool(1 << 20);
    gw_spool_counts(s, &ev, &bytes);
    assert_int_equal(ev, 2);
    gw_spool_close(s);
}

static void test_full_spool_refuses(void **state)
{
    struct gw_spool *s = open_spool(200);
    struct hq_msg m;
    int i, rc = HQ_OK;

    (void)state;
    make_msg(&m, 7);
    for (i = 0; i < 10 && rc == HQ_OK; i++)
        rc = gw_spool_append(s, &m);
    assert_int_equal(rc, HQ_EFULL);
    assert_true(i > 1);
    hq_msg_free(&m);
    gw_spool_close(s);
}

static void test_open_fails_on_unusable_dir(void **state)
{
    struct gw_spool *s = NULL;
    char err[256] = "";

    (void)state;
    assert_int_not_equal(gw_spool_open("/proc/hq-no-such/spool", 1 << 20, &s, err, sizeof(err)),
                         HQ_OK);
    assert_null(s);
    assert_non_null(strstr(err, "spool_dir"));
}

static void test_replay_cache(void **state)
{
    struct gw_replay *r = gw_replay_new(2);
    unsigned char k1[HQ_REPLAY_KEY_LEN] = {1}, k2[HQ_REPLAY_KEY_LEN] = {2},
                  k3[HQ_REPLAY_KEY_LEN] = {3};
    char id[64];

    (void)state;
    assert_false(gw_replay_lookup(r, "gh", k1, 1000, id, sizeof(id)));
    gw_replay_insert(r, "gh", k1, "id-1", 5000);
    assert_true(gw_replay_lookup(r, "gh", k1, 1000, id, sizeof(id)));
    assert_string_equal(id, "id-1");
    /* same key, other source: no hit */
    assert_false(gw_replay_lookup(r, "stripe", k1, 1000, id, sizeof(id)));
    /* expired */
    assert_false(gw_replay_lookup(r, "gh", k1, 5001, id, sizeof(id)));
    /* eviction of the oldest when full */
    gw_replay_insert(r, "gh", k2, "id-2", 9000);
    gw_replay_insert(r, "gh", k3, "id-3", 9000);
    assert_false(gw_replay_lookup(r, "gh", k1, 1000, id, sizeof(id)));
    assert_true(gw_replay_lookup(r, "gh", k2, 1000, id, sizeof(id)));
    assert_true(gw_replay_lookup(r, "gh", k3, 1000, id, sizeof(id)));
    assert_string_equal(id, "id-3");
    gw_replay_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_spool_refuses, setup, teardown),
        cmocka_unit_test(test_open_fails_on_unusable_dir),
        cmocka_unit_test(test_replay_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
