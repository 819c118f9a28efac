/* Unit tests: the gateway's spool journal (gateway/spool.c) and replay cache
 * (gateway/replay_cache.c): durability across reopen, torn and corrupt records, the size cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "gw.h"
#include "hq_time.h"
#define HQTEST_DIR_NAME "spool"
#include "hqtest.h"

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

/* The path of the only non-empty segment in hqtest_dir. */
static void segment_path(char *out, size_t outsz)
{
    DIR *d = opendir(hqtest_dir);
    struct dirent *e;

    out[0] = '\0';
    while ((e = readdir(d)) != NULL) {
        char p[600];
        FILE *f;
        long n;
        if (strncmp(e->d_name, "seg-", 4) != 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", hqtest_dir, e->d_name);
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

    assert_int_equal(gw_spool_open(hqtest_dir, max, &s, err, sizeof(err)), HQ_OK);
    return s;
}

/* The listing of the spool (or its quarantine) as a string; caller frees. */
static char *listing(bool quarantine, size_t *count)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    assert_int_equal(gw_spool_list(hqtest_dir, quarantine, f, count), HQ_OK);
    fclose(f);
    return text;
}

static uint32_t plain_crc32c(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    int k;

    while (n--) {
        c ^= *p++;
        for (k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* A well-formed record as the old format wrote it (crc32c over the payload), for the event
 * an attacker wants: routing key "attacker.chosen", id "evil-1". */
static void forged_record(struct hq_buf *out)
{
    struct hq_msg m;
    unsigned char hdr[12];
    struct hq_buf payload = HQ_BUF_INIT(1 << 20);

    make_msg(&m, 666);
    free(m.routing_key);
    free(m.message_id);
    m.routing_key = strdup("attacker.chosen");
    m.message_id = strdup("evil-1");
    assert_int_equal(hq_msg_encode(&m, &payload), HQ_OK);
    le32(hdr, 0x50535148u);
    le32(hdr + 4, (uint32_t)payload.len);
    le32(hdr + 8, plain_crc32c(payload.data, payload.len));
    assert_int_equal(hq_buf_append(out, hdr, sizeof(hdr)), HQ_OK);
    assert_int_equal(hq_buf_append(out, payload.data, payload.len), HQ_OK);
    hq_buf_free(&payload);
    hq_msg_free(&m);
}

/* The offset just after body's bytes in the file at path. */
static off_t body_end_in(const char *path, const struct hq_buf *body)
{
    FILE *f = fopen(path, "rb");
    unsigned char buf[8192];
    size_t n, i;

    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    for (i = 0; i + body->len <= n; i++)
        if (memcmp(buf + i, body->data, body->len) == 0)
            return (off_t)(i + body->len);
    fail_msg("body not found in %s", path);
    return 0;
}

/* A signed request body that carries a well-formed spool record, spooled; then its own
 * record is damaged (a torn write, or a flipped bit in its checksum) so that recovery has to
 * resynchronise inside it. Recovery must never yield the embedded event, and must keep the
 * valid record after it. */
static void test_record_in_body_cannot_steer_recovery(void **state)
{
    struct gw_spool *s = open_spool(1 << 20);
    struct hq_buf body = HQ_BUF_INIT(1 << 20);
    struct hq_msg a, b;
    char path[600], *text;
    unsigned char c;
    size_t count;
    uint64_t ev, bytes;
    int fd;

    (void)state;
    assert_int_equal(hq_buf_append(&body, "{\"note\":\"", 9), HQ_OK);
    forged_record(&body);
    assert_int_equal(hq_buf_append(&body, "\"}", 2), HQ_OK);
    make_msg(&a, 1);
    free(a.body);
    a.body = malloc(body.len);
    memcpy(a.body, body.data, body.len);
    a.body_len = body.len;
    make_msg(&b, 2);
    assert_int_equal(gw_spool_append(s, &a), HQ_OK);
    assert_int_equal(gw_spool_append(s, &b), HQ_OK);
    gw_spool_close(s);
    segment_path(path, sizeof(path));
    assert_true(path[0] != '\0');

    /* a bad checksum on the first record (its header: after the 24-byte segment header) */
    fd = open(path, O_RDWR);
    assert_int_equal(pread(fd, &c, 1, 24 + 8), 1);
    c ^= 0x01;
    assert_int_equal(pwrite(fd, &c, 1, 24 + 8), 1);
    close(fd);
    s = open_spool(1 << 20);
    gw_spool_counts(s, &ev, &bytes);
    assert_int_equal(ev, 1);
    gw_spool_close(s);
    text = listing(false, &count);
    assert_int_equal(count, 1);
    assert_null(strstr(text, "evil-1"));
    assert_null(strstr(text, "attacker.chosen"));
    assert_non_null(strstr(text, "evt-2"));
    free(text);

    /* a crash in the middle of writing the first record: the tail is cut after the embedded
     * record, so only the damaged record and what it carries are left */
    fd = open(path, O_RDWR);
    assert_int_equal(ftruncate(fd, body_end_in(path, &body) - 2), 0); /* before the '"}' */
    close(fd);
    s = open_spool(1 << 20);
    gw_spool_counts(s, &ev, &bytes);
    assert_int_equal(ev, 0);
    gw_spool_close(s);
    text = listing(false, &count);
    assert_int_equal(count, 0);
    assert_null(strstr(text, "evil-1"));
    free(text);

    hq_msg_free(&a);
    hq_msg_free(&b);
    hq_buf_free(&body);
}

/* Segments of format 1 (no header, crc over the payload), written by older releases, are
 * still read; after their first bad record the rest counts as torn, so an embedded record
 * cannot be reached there either. */
static void test_format1_segment_still_read(void **state)
{
    struct hq_buf seg = HQ_BUF_INIT(1 << 20), good = HQ_BUF_INIT(1 << 20);
    struct hq_msg m;
    char path[600], *text;
    size_t count;
    uint64_t ev, bytes;
    unsigned char hdr[12];
    FILE *f;
    struct gw_spool *s;

    (void)state;
    make_msg(&m, 5);
    assert_int_equal(hq_msg_encode(&m, &good), HQ_OK);
    le32(hdr, 0x50535148u);
    le32(hdr + 4, (uint32_t)good.len);
    le32(hdr + 8, plain_crc32c(good.data, good.len));
    assert_int_equal(hq_buf_append(&seg, hdr, 12), HQ_OK);
    assert_int_equal(hq_buf_append(&seg, good.data, good.len), HQ_OK);
    assert_int_equal(hq_buf_append(&seg, hdr, 12), HQ_OK);
    assert_int_equal(hq_buf_append(&seg, good.data, good.len), HQ_OK);
    /* a torn record (its length runs past the end) followed by a forged one */
    assert_int_equal(hq_buf_append(&seg, "HQSP\xff\x00\x00\x00\x01\x02\x03\x04", 12), HQ_OK);
    forged_record(&seg);
    snprintf(path, sizeof(path), "%s/seg-0000000000000001.hqs", hqtest_dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(seg.data, 1, seg.len, f), seg.len);
    fclose(f);

    s = open_spool(1 << 20);
    gw_spool_counts(s, &ev, &bytes);
    assert_int_equal(ev, 2);
    gw_spool_close(s);
    text = listing(false, &count);
    assert_int_equal(count, 2);
    assert_non_null(strstr(text, "evt-5"));
    assert_null(strstr(text, "evil-1"));
    free(text);
    hq_msg_free(&m);
    hq_buf_free(&seg);
    hq_buf_free(&good);
}

/* ---- injected I/O failures (gw__spool_io hooks) ---- */

static int fail_fsyncs;       /* fail this many next fdatasync calls with EIO */
static int fail_truncates;    /* fail this many next ftruncate calls with EIO */
static int short_writes;      /* the next write writes half, the one after fails ENOSPC */
static ino_t failed_ino;      /* inode of the last fdatasync that failed */
static int fsync_after_fail_on_failed_ino; /* fdatasync calls on that inode after it failed */
static struct gw_spool *hold_spool; /* if set: the failing fdatasync waits for 2 events */

static ino_t ino_of(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return st.st_ino;
}

static int hook_fdatasync(int fd)
{
    if (failed_ino && ino_of(fd) == failed_ino)
        fsync_after_fail_on_failed_ino++;
    if (fail_fsyncs > 0) {
        fail_fsyncs--;
        if (hold_spool) {
            /* wait until a second append is written behind this sync */
            uint64_t ev = 0, bytes;
            int64_t until = hq_mono_ms() + 10000;
            while (ev < 2 && hq_mono_ms() < until) {
                gw_spool_counts(hold_spool, &ev, &bytes);
                usleep(1000);
            }
        }
        failed_ino = ino_of(fd);
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static int hook_ftruncate(int fd, off_t len)
{
    if (fail_truncates > 0) {
        fail_truncates--;
        errno = EIO;
        return -1;
    }
    return ftruncate(fd, len);
}

static ssize_t hook_write(int fd, const void *p, size_t n)
{
    if (short_writes == 2) {
        short_writes = 1;
        return write(fd, p, n / 2);
    }
    if (short_writes == 1) {
        short_writes = 0;
        errno = ENOSPC;
        return -1;
    }
    return write(fd, p, n);
}

static int io_setup(void **state)
{
    fail_fsyncs = fail_truncates = short_writes = 0;
    failed_ino = 0;
    fsync_after_fail_on_failed_ino = 0;
    hold_spool = NULL;
    gw__spool_io.fdatasync = hook_fdatasync;
    gw__spool_io.ftruncate = hook_ftruncate;
    gw__spool_io.write = hook_write;
    return hqtest_dir_setup(state);
}

static int io_teardown(void **state)
{
    gw__spool_io.fdatasync = fdatasync;
    gw__spool_io.ftruncate = ftruncate;
    gw__spool_io.write = write;
    return hqtest_dir_teardown(state);
}

static int append_i(struct gw_spool *s, int i)
{
    struct hq_msg m;
    int rc;

    make_msg(&m, i);
    rc = gw_spool_append(s, &m);
    hq_msg_free(&m);
    return rc;
}

/* Live counts and a fresh reading of the directory agree; returns the listing. */
static char *reopen_and_list(struct gw_spool *s, uint64_t expect)
{
    uint64_t ev, bytes, ev2, bytes2;
    size_t count;

    gw_spool_counts(s, &ev, &bytes);
    gw_spool_close(s);
    s = open_spool(1 << 20);
    gw_spool_counts(s, &ev2, &bytes2);
    gw_spool_close(s);
    assert_int_equal(ev, expect);
    assert_int_equal(ev2, expect);
    return listing(false, &count);
}

/* A failed fdatasync: the append gets an error, its record is gone, and the segment is closed
 * (Linux reports a writeback error once per open file: a later fsync on the same file could
 * succeed over lost pages). The next append goes to a new file. */
static void test_fsync_failure_closes_segment(void **state)
{
    struct gw_spool *s = open_spool(1 << 20);
    char *text;

    (void)state;
    assert_int_equal(append_i(s, 1), HQ_OK);
    fail_fsyncs = 1;
    assert_int_equal(append_i(s, 2), HQ_EIO);
    assert_int_equal(append_i(s, 3), HQ_OK);
    assert_int_equal(fsync_after_fail_on_failed_ino, 0);
    text = reopen_and_list(s, 2);
    assert_non_null(strstr(text, "evt-1\t"));
    assert_null(strstr(text, "evt-2\t"));
    assert_non_null(strstr(text, "evt-3\t"));
    free(text);
}

static void *append_2(void *arg)
{
    return (void *)(intptr_t)append_i(arg, 2);
}

/* Two appends in flight over one failing fdatasync: the second was written before the failure
 * but never synced, so it must fail too. */
static void test_fsync_failure_fails_every_unsynced_append(void **state)
{
    struct gw_spool *s = open_spool(1 << 20);
    pthread_t th;
    void *r2;
    uint64_t ev = 0, bytes;
    int rc1;
    char *text;

    (void)state;
    fail_fsyncs = 1;
    hold_spool = s;
    assert_int_equal(pthread_create(&th, NULL, append_2, s), 0);
    /* let append 2 start the (failing) sync, then write append 1 behind it; or the reverse:
     * either way both are written before the sync returns */
    rc1 = append_i(s, 1);
    assert_int_equal(pthread_join(th, &r2), 0);
    assert_int_equal(rc1, HQ_EIO);
    assert_int_equal((int)(intptr_t)r2, HQ_EIO);
    gw_spool_counts(s, &ev, &bytes);
    assert_int_equal(ev, 0);
    assert_int_equal(append_i(s, 3), HQ_OK);
    text = reopen_and_list(s, 1);
    assert_null(strstr(text, "evt-1\t"));
    assert_null(strstr(text, "evt-2\t"));
    assert_non_null(strstr(text, "evt-3\t"));
    free(text);
}

/* A failed fsync whose truncation fails too: the records stay in the file. The counts must
 * say what the file holds (they are drained, as duplicates of a request answered 5xx). */
static void test_fsync_and_truncate_failure_counts_from_file(void **state)
{
    struct gw_spool *s = open_spool(1 << 20);
    char *text;

    (void)state;
    assert_int_equal(append_i(s, 1), HQ_OK);
    fail_fsyncs = 1;
    fail_truncates = 1;
    assert_int_equal(append_i(s, 2), HQ_EIO);
    assert_int_equal(append_i(s, 3), HQ_OK);
    text = reopen_and_list(s, 3);
    assert_non_null(strstr(text, "evt-1\t"));
    assert_non_null(strstr(text, "evt-3\t"));
    free(text);
}

/* A short write (disk full) whose truncation fails leaves a torn record; offsets must come
 * from the file, so a later failed fsync cuts back to the real synced size and keeps every
 * record that was answered OK. */
static void test_offsets_come_from_the_file(void **state)
{
    struct gw_spool *s = open_spool(1 << 20);
    char *text;

    (void)state;
    assert_int_equal(append_i(s, 1), HQ_OK);
    short_writes = 2;
    fail_truncates = 1;
    assert_int_equal(append_i(s, 2), HQ_EIO);
    assert_int_equal(append_i(s, 3), HQ_OK);
    fail_fsyncs = 1;
    assert_int_equal(append_i(s, 4), HQ_EIO);
    text = reopen_and_list(s, 2);
    assert_non_null(strstr(text, "evt-1\t"));
    assert_null(strstr(text, "evt-2\t"));
    assert_non_null(strstr(text, "evt-3\t"));
    assert_null(strstr(text, "evt-4\t"));
    free(text);
}

/* A record whose checksum verifies but whose payload does not decode (a release with another
 * encoding wrote it) is never counted as delivered: the drainer moves it to the quarantine,
 * where an operator can list it, and only then removes the segment. */
static void test_undecodable_record_is_quarantined(void **state)
{
    unsigned char hdr[24] = "HQSG\x02\x00\x00\x00", rec[12], payload[] = "\xff not a message";
    uint32_t c = 0xffffffffu;
    size_t n = sizeof(payload) - 1, count;
    char path[600], *text;
    struct gw_spool *s;
    uint64_t ev, bytes;
    FILE *f;
    int k;
    size_t i;

    (void)state;
    memset(hdr + 8, 0x5a, 16); /* the segment's key */
    le32(rec, 0x50535148u);
    le32(rec + 4, (uint32_t)n);
    for (i = 0; i < 16 + 4 + n; i++) {
        c ^= i < 16 ? hdr[8 + i] : i < 20 ? rec[4 + i - 16] : payload[i - 20];
        for (k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    le32(rec + 8, c ^ 0xffffffffu);
    snprintf(path, sizeof(path), "%s/seg-0000000000000001.hqs", hqtest_dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(hdr, 1, 24, f), 24);
    assert_int_equal(fwrite(rec, 1, 12, f), 12);
    assert_int_equal(fwrite(payload, 1, n, f), n);
    fclose(f);

    s = open_spool(1 << 20);
    gw_spool_counts(s, &ev, &bytes);
    assert_int_equal(ev, 1);
    assert_int_equal(gw_spool_quarantined(s), 0);
    assert_int_equal(gw__spool_drain_segment(s, 1), HQ_OK);
    gw_spool_counts(s, &ev, &bytes);
    assert_int_equal(ev, 0);
    assert_int_equal(gw_spool_quarantined(s), 1);
    assert_int_equal(access(path, F_OK), -1); /* the segment is gone... */
    gw_spool_close(s);
    text = listing(true, &count); /* ...and its record is in the quarantine */
    assert_int_equal(count, 1);
    assert_non_null(strstr(text, "quarantine.hqs"));
    assert_non_null(strstr(text, "undecodable"));
    free(text);
    s = open_spool(1 << 20); /* still there after a restart */
    assert_int_equal(gw_spool_quarantined(s), 1);
    gw_spool_close(s);
}

/* One process per spool directory: a second open is refused while the first holds it. */
static void test_second_open_is_refused(void **state)
{
    struct gw_spool *s = open_spool(1 << 20), *s2 = NULL;
    char err[256] = "";

    (void)state;
    assert_int_equal(gw_spool_open(hqtest_dir, 1 << 20, &s2, err, sizeof(err)), HQ_ECONFLICT);
    assert_null(s2);
    assert_non_null(strstr(err, "in use"));
    gw_spool_close(s);
    s = open_spool(1 << 20);
    gw_spool_close(s);
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
    /* flip a byte inside the first record's payload (after the 24-byte segment header and the
     * 12-byte record header): its CRC no longer matches */
    fd = open(path, O_RDWR);
    assert_int_equal(pread(fd, &c, 1, 44), 1);
    c ^= 0xff;
    assert_int_equal(pwrite(fd, &c, 1, 44), 1);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_survives_reopen,
                                        hqtest_dir_setup, hqtest_dir_teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_skipped,
                                        hqtest_dir_setup, hqtest_dir_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_is_skipped,
                                        hqtest_dir_setup, hqtest_dir_teardown),
        cmocka_unit_test_setup_teardown(test_full_spool_refuses,
                                        hqtest_dir_setup, hqtest_dir_teardown),
        cmocka_unit_test_setup_teardown(test_record_in_body_cannot_steer_recovery, hqtest_dir_setup,
                                        hqtest_dir_teardown),
        cmocka_unit_test_setup_teardown(test_format1_segment_still_read,
                                        hqtest_dir_setup, hqtest_dir_teardown),
        cmocka_unit_test_setup_teardown(test_fsync_failure_closes_segment, io_setup, io_teardown),
        cmocka_unit_test_setup_teardown(test_fsync_failure_fails_every_unsynced_append, io_setup,
                                        io_teardown),
        cmocka_unit_test_setup_teardown(test_fsync_and_truncate_failure_counts_from_file,
                                        io_setup, io_teardown),
        cmocka_unit_test_setup_teardown(test_offsets_come_from_the_file, io_setup, io_teardown),
        cmocka_unit_test_setup_teardown(test_undecodable_record_is_quarantined,
                                        hqtest_dir_setup, hqtest_dir_teardown),
        cmocka_unit_test_setup_teardown(test_second_open_is_refused,
                                        hqtest_dir_setup, hqtest_dir_teardown),
        cmocka_unit_test(test_open_fails_on_unusable_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
