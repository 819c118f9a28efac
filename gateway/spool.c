/* spool.c: the gateway's local journal for events the broker could not confirm in time.
 *
 * Layout: spool_dir/seg-<16 hex seq>.hqs, append-only segments. Format 2 (this version):
 *   segment header [magic "HQSG" u32le][version u32le = 2][key: 16 random bytes]
 *   records        [magic "HQSP" u32le][len u32le][crc u32le][hq_msg_encode payload]
 * where crc = crc32c(key || len || payload). The key is drawn per segment and never leaves
 * the machine, so a request body that carries a well-formed record can never verify: recovery
 * may resynchronise on the next "HQSP" after a torn or corrupt record without letting a body
 * steer it. Format 1 segments (no header, crc over the payload alone, written by older
 * releases) are still read, but everything after their first bad record is treated as torn.
 *
 * An append is answered only after fdatasync (group commit: one fsync covers every append
 * written before it started). A failed fdatasync fails every append not yet synced, closes
 * the segment (Linux reports a writeback error once per open file) and truncates it back to
 * its last synced size; the next append opens a new segment. The drainer rotates the active
 * segment, republishes every record of each closed segment with publisher confirms, and
 * unlinks the segment only when all of its records are confirmed or set aside (a crash in
 * between republishes: duplicates, never loss). Segments are drained oldest first. Records
 * that cannot be decoded go to spool_dir/quarantine.hqs (same format) for an operator. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw.h"
#include "hq_codec.h"
#include "hq_fs.h"
#include "hq_hash.h"
#include "hq_log.h"
#include "hq_time.h"

#define SPOOL_MAGIC 0x50535148u /* "HQSP" little-endian: a record */
#define SEG_MAGIC 0x47535148u   /* "HQSG" little-endian: a format 2 segment header */
#define SEG_VERSION 2u
#define KEY_LEN 16
#define SEG_HDR (8 + KEY_LEN)
#define REC_HDR 12
#define SEG_ROTATE_BYTES (64u << 20)
#define DRAIN_THREADS 16
#define QUARANTINE_NAME "quarantine.hqs"
#define SPOOL_MAX_REFUSALS 10      /* nacks of one record before it is set aside */
#define SPOOL_REFUSAL_PAUSE_MS 1000 /* between passes over refused records */

/* Test hooks (gw.h): the system calls whose failures the spool must survive. */
struct gw__spool_io gw__spool_io = {write, fdatasync, ftruncate};

/* One append waiting for its fsync: lives on the appender's stack. */
struct spool_waiter {
    uint64_t gen;
    int rc;
    bool done;
    struct spool_waiter *next;
};

struct gw_spool {
    char *dir;
    int dirfd;
    uint64_t max_bytes;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    int fd;               /* active segment, -1 after a failed fsync closed it */
    uint64_t seq;         /* active segment's sequence number */
    unsigned char key[KEY_LEN]; /* active segment's checksum key */
    uint64_t seg_size;    /* size of the active segment (from fstat after each write) */
    uint64_t synced_size; /* size of the active segment known durable */
    uint64_t wgen;        /* appends written */
    struct spool_waiter *wait_head, *wait_tail; /* appends not yet synced, in gen order */
    bool syncing;
    uint64_t events, bytes; /* across all segments, including the active one */

    pthread_mutex_t qlock; /* the quarantine segment */
    uint64_t quarantined;  /* records in it */

    /* drainer */
    pthread_t drainer;
    bool drainer_started, stop;
    struct hq_pub *pub;
    char *exchange;
    int confirm_timeout_ms;
    struct hq_metric *drained, *m_quarantined, *m_quarantine_records;
    struct seg_state *states; /* drainer thread only */
};

/* A record's checksum: format 2 covers key || len || payload, format 1 the payload alone. */
static uint32_t rec_crc(const unsigned char *key, const unsigned char *lenp,
                        const unsigned char *payload, size_t n)
{
    uint32_t c = 0;

    if (key) {
        c = hq_crc32c(c, key, KEY_LEN);
        c = hq_crc32c(c, lenp, 4);
    }
    return hq_crc32c(c, payload, n);
}

static void seg_path(const struct gw_spool *s, uint64_t seq, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/seg-%016llx.hqs", s->dir, (unsigned long long)seq);
}

static int parse_seg_name(const char *name, uint64_t *seq)
{
    char *end;
    unsigned long long v;

    if (strncmp(name, "seg-", 4) != 0 || strlen(name) != 4 + 16 + 4 ||
        strcmp(name + 20, ".hqs") != 0)
        return -1;
    errno = 0;
    v = strtoull(name + 4, &end, 16);
    if (errno || end != name + 20)
        return -1;
    *seq = v;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorted sequence numbers of the segments in dir. Caller frees *out. */
static int list_segments_in(const char *dir, uint64_t **out, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    uint64_t *v = NULL, seq;
    size_t cnt = 0, cap = 0;

    *out = NULL;
    *n = 0;
    if (!d)
        return HQ_EIO;
    while ((e = readdir(d)) != NULL) {
        if (parse_seg_name(e->d_name, &seq) != 0)
            continue;
        if (cnt == cap) {
            uint64_t *nv;
            cap = cap ? cap * 2 : 16;
            nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                free(v);
                closedir(d);
                return HQ_ENOMEM;
            }
            v = nv;
        }
        v[cnt++] = seq;
    }
    closedir(d);
    if (cnt)
        qsort(v, cnt, sizeof(*v), cmp_u64);
    *out = v;
    *n = cnt;
    return HQ_OK;
}

static int list_segments(const struct gw_spool *s, uint64_t **out, size_t *n)
{
    return list_segments_in(s->dir, out, n);
}

/* A segment or the quarantine, whole (a segment is at most SEG_ROTATE_BYTES plus one record,
 * the quarantine at most max_bytes: no cap of its own here). */
static int read_file(const char *path, unsigned char **data, size_t *len)
{
    char *p;
    int rc = hq_read_file(path, SIZE_MAX, &p, len);

    *data = (unsigned char *)p;
    return rc;
}

/* Where the records of a segment image start, and its key (NULL for format 1). Returns
 * HQ_OK, or HQ_EINVAL for a segment of an unknown format (a newer release wrote it). A
 * format 2 header cut short by a crash holds no record: *start = n. */
static int seg_header(const unsigned char *p, size_t n, size_t *start, const unsigned char **key)
{
    *key = NULL;
    *start = 0;
    if (n >= 4 && hq_get_le32(p) == SPOOL_MAGIC)
        return HQ_OK; /* format 1 */
    if (n == 0)
        return HQ_OK;
    if (n < 4 || hq_get_le32(p) != SEG_MAGIC)
        return n < 4 ? (*start = n, HQ_OK) : HQ_EINVAL;
    if (n < SEG_HDR) {
        *start = n;
        return HQ_OK;
    }
    if (hq_get_le32(p + 4) != SEG_VERSION)
        return HQ_EINVAL;
    *key = p + 8;
    *start = SEG_HDR;
    return HQ_OK;
}

/* Walk the records of a segment image. For each valid record calls fn (if not NULL) with its
 * payload and offset. Torn or corrupt records are counted in *bad: in format 2 the walk
 * resynchronises on the next magic (a record embedded in a payload cannot verify without the
 * segment's key); in format 1 everything after the first bad record counts as torn. Returns
 * the number of valid records, or (size_t)-1 for a segment of an unknown format. */
static size_t walk_records(const unsigned char *p, size_t n, const char *name,
                           void (*fn)(void *, const unsigned char *, size_t, size_t), void *arg,
                           size_t *bad, bool report)
{
    const unsigned char *key;
    size_t off, good = 0;

    *bad = 0;
    if (seg_header(p, n, &off, &key) != HQ_OK) {
        if (report)
            hq_error("spool: segment of an unknown format", "segment=%s", name);
        return (size_t)-1;
    }
    while (off + REC_HDR <= n) {
        uint32_t len = hq_get_le32(p + off + 4);
        if (hq_get_le32(p + off) == SPOOL_MAGIC && len <= n - off - REC_HDR &&
            rec_crc(key, p + off + 4, p + off + REC_HDR, len) == hq_get_le32(p + off + 8)) {
            if (fn)
                fn(arg, p + off + REC_HDR, len, off);
            good++;
            off += REC_HDR + len;
            continue;
        }
        (*bad)++;
        if (!key) {
            off = n; /* format 1: the rest is torn */
            break;
        }
        /* resync: next magic after this offset */
        for (off++; off + 4 <= n; off++)
            if (hq_get_le32(p + off) == SPOOL_MAGIC)
                break;
    }
    if (off < n && n - off < REC_HDR)
        (*bad)++;
    if (*bad && report)
        hq_warn("spool: skipped torn or corrupt records", "segment=%s records=%zu", name, *bad);
    return good;
}

/* Writes go through the test hook (gw__spool_io.write). */
static int write_all(int fd, const void *p, size_t n)
{
    return hq_write_all_with(gw__spool_io.write, fd, p, n);
}

static int fill_random(unsigned char *p, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return HQ_EIO;
        got += (size_t)r;
    }
    return HQ_OK;
}

/* Create a format 2 segment at path (O_EXCL) with a fresh key, header synced. Returns the fd
 * (O_APPEND) or -1 with errno set. */
static int create_segment(int dirfd, const char *path, unsigned char key[KEY_LEN])
{
    unsigned char hdr[SEG_HDR];
    int fd, e;

    if (fill_random(key, KEY_LEN) != HQ_OK)
        return -1;
    hq_put_le32(hdr, SEG_MAGIC);
    hq_put_le32(hdr + 4, SEG_VERSION);
    memcpy(hdr + 8, key, KEY_LEN);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (write_all(fd, hdr, sizeof(hdr)) != HQ_OK || gw__spool_io.fdatasync(fd) != 0 ||
        fsync(dirfd) != 0) {
        e = errno;
        close(fd);
        unlink(path);
        errno = e ? e : EIO;
        return -1;
    }
    return fd;
}

static int file_size(int fd, uint64_t *size)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        return HQ_EIO;
    *size = (uint64_t)st.st_size;
    return HQ_OK;
}

static int open_segment(struct gw_spool *s, uint64_t seq)
{
    char path[4096];
    int fd = -1, tries;

    /* a segment put back by --spool-retry-quarantine may already hold the next number */
    for (tries = 0; tries < 16 && fd < 0; tries++, seq++) {
        seg_path(s, seq, path, sizeof(path));
        fd = create_segment(s->dirfd, path, s->key);
        if (fd < 0 && errno != EEXIST)
            return HQ_EIO;
    }
    if (fd < 0)
        return HQ_EIO;
    s->fd = fd;
    s->seq = seq - 1;
    s->seg_size = s->synced_size = SEG_HDR;
    s->bytes += SEG_HDR;
    return HQ_OK;
}

/* Complete the waiting appends up to gen (all of them if gen is UINT64_MAX) with rc. Returns
 * how many. Caller holds s->lock. */
static size_t complete_waiters(struct gw_spool *s, uint64_t gen, int rc)
{
    size_t n = 0;

    while (s->wait_head && s->wait_head->gen <= gen) {
        struct spool_waiter *w = s->wait_head;
        s->wait_head = w->next;
        w->rc = rc;
        w->done = true;
        n++;
    }
    if (!s->wait_head)
        s->wait_tail = NULL;
    pthread_cond_broadcast(&s->cond);
    return n;
}

/* A failed fdatasync: nothing written after the last good sync may be trusted, and the open
 * file will not report the error again. Fail every unsynced append, cut the segment back to
 * its synced size and close it. Caller holds s->lock and no sync is running. */
static void sync_failed(struct gw_spool *s, int err)
{
    uint64_t before = s->seg_size, after = s->seg_size;
    size_t n;
    char path[4096];

    seg_path(s, s->seq, path, sizeof(path));
    hq_error("spool: fsync failed; the segment is closed", "segment=%s error=\"%s\"", path,
             strerror(err));
    n = complete_waiters(s, UINT64_MAX, HQ_EIO);
    if (file_size(s->fd, &before) != HQ_OK)
        before = s->seg_size;
    if (gw__spool_io.ftruncate(s->fd, (off_t)s->synced_size) != 0)
        hq_error("spool: cannot truncate after a failed fsync", "segment=%s error=\"%s\"", path,
                 strerror(errno));
    else if (fsync(s->fd) != 0)
        hq_warn("spool: fsync after truncation failed", "segment=%s", path);
    if (file_size(s->fd, &after) != HQ_OK)
        after = before;
    if (after <= s->synced_size)
        s->events -= n;
    else
        hq_error("spool: records answered with an error stay in the segment and will be "
                 "published (a provider retry then duplicates them)",
                 "segment=%s records=%zu", path, n);
    s->bytes -= before > after ? before - after : 0;
    close(s->fd);
    s->fd = -1;
}

/* One fsync round for everything written so far. Caller holds s->lock, no sync running and
 * s->fd open; with unlock, the lock is released during fdatasync (group commit). */
static void sync_round(struct gw_spool *s, bool unlock)
{
    uint64_t target = s->wgen, size = s->seg_size;
    int fd = s->fd, r, e = 0;

    s->syncing = true;
    if (unlock)
        pthread_mutex_unlock(&s->lock);
    r = gw__spool_io.fdatasync(fd);
    if (r != 0)
        e = errno;
    if (unlock)
        pthread_mutex_lock(&s->lock);
    s->syncing = false;
    if (r == 0) {
        s->synced_size = size;
        complete_waiters(s, target, HQ_OK);
    } else {
        sync_failed(s, e);
    }
}

/* Count the records and bytes of every segment on disk into s. */
static void count_segments(struct gw_spool *s, const uint64_t *segs, size_t nseg)
{
    size_t i;

    for (i = 0; i < nseg; i++) {
        char path[4096];
        unsigned char *data;
        size_t len, bad, good;

        seg_path(s, segs[i], path, sizeof(path));
        if (read_file(path, &data, &len) != HQ_OK)
            continue;
        good = walk_records(data, len, path, NULL, NULL, &bad, true);
        if (good != (size_t)-1)
            s->events += good;
        s->bytes += len;
        free(data);
    }
}

static void quarantine_path(const char *dir, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s", dir, QUARANTINE_NAME);
}

int gw_spool_open(const char *dir, uint64_t max_bytes, struct gw_spool **out, char *err,
                  size_t errsz)
{
    struct gw_spool *s = calloc(1, sizeof(*s));
    uint64_t *segs = NULL;
    size_t nseg = 0;
    int rc = HQ_ENOMEM;

    if (!s)
        goto out;
    s->fd = s->dirfd = -1;
    s->dir = strdup(dir);
    if (!s->dir)
        goto out;
    s->max_bytes = max_bytes;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "spool_dir %s: %s", dir, strerror(errno));
        rc = HQ_EIO;
        goto out;
    }
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        snprintf(err, errsz, "spool_dir %s: %s", dir, strerror(errno));
        rc = HQ_EIO;
        goto out;
    }
    /* one process per spool (released by the kernel when the process dies) */
    if (flock(s->dirfd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errsz, "spool_dir %s: in use by another process (%s)", dir,
                 strerror(errno));
        rc = HQ_ECONFLICT;
        goto out;
    }
    rc = list_segments(s, &segs, &nseg);
    if (rc != HQ_OK) {
        snprintf(err, errsz, "spool_dir %s: cannot list", dir);
        goto out;
    }
    count_segments(s, segs, nseg);
    {
        char qpath[4096];
        unsigned char *data;
        size_t len, bad, good;

        quarantine_path(dir, qpath, sizeof(qpath));
        if (read_file(qpath, &data, &len) == HQ_OK) {
            good = walk_records(data, len, qpath, NULL, NULL, &bad, false);
            s->quarantined = good == (size_t)-1 ? 0 : good;
            free(data);
            if (s->quarantined)
                hq_warn("spool: records set aside in quarantine",
                        "records=%" PRIu64 " file=%s", s->quarantined, qpath);
        }
    }
    rc = open_segment(s, nseg ? segs[nseg - 1] + 1 : 1);
    if (rc != HQ_OK) {
        snprintf(err, errsz, "spool_dir %s: cannot create a segment: %s", dir, strerror(errno));
        goto out;
    }
    if (s->events)
        hq_info("spool: found spooled events", "events=%llu bytes=%llu dir=%s",
                (unsigned long long)s->events, (unsigned long long)s->bytes, dir);
    *out = s;
    s = NULL;
out:
    free(segs);
    if (s)
        gw_spool_close(s);
    return rc;
}

/* Rotate the active segment; caller holds s->lock. Makes everything written durable first. */
static int rotate_locked(struct gw_spool *s)
{
    int rc;

    while (s->syncing)
        pthread_cond_wait(&s->cond, &s->lock);
    if (s->fd >= 0 && s->wait_head)
        sync_round(s, false);
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    rc = open_segment(s, s->seq + 1);
    if (rc != HQ_OK)
        hq_error("spool: cannot open a new segment", "dir=%s error=\"%s\"", s->dir,
                 strerror(errno));
    return rc;
}

int gw_spool_append(struct gw_spool *s, const struct hq_msg *m)
{
    struct hq_buf rec = HQ_BUF_INIT((size_t)1 << 30);
    unsigned char hdr[REC_HDR] = {0};
    struct spool_waiter w = {0};
    uint64_t off, end;
    int rc;

    rc = hq_buf_append(&rec, hdr, sizeof(hdr)); /* placeholder, filled below */
    if (rc == HQ_OK)
        rc = hq_msg_encode(m, &rec);
    if (rc != HQ_OK)
        goto out;
    hq_put_le32(rec.data, SPOOL_MAGIC);
    hq_put_le32(rec.data + 4, (uint32_t)(rec.len - REC_HDR));

    pthread_mutex_lock(&s->lock);
    if (s->fd < 0 && open_segment(s, s->seq + 1) != HQ_OK) {
        rc = HQ_EIO;
        goto unlock;
    }
    if (s->bytes + rec.len > s->max_bytes) {
        rc = HQ_EFULL;
        goto unlock;
    }
    if (s->seg_size >= SEG_ROTATE_BYTES && rotate_locked(s) != HQ_OK) {
        rc = HQ_EIO;
        goto unlock;
    }
    hq_put_le32(rec.data + 8, rec_crc(s->key, rec.data + 4, rec.data + REC_HDR, rec.len - REC_HDR));
    /* offsets come from the file itself, never from counters a failed call left behind */
    if (file_size(s->fd, &off) != HQ_OK) {
        rc = HQ_EIO;
        goto unlock;
    }
    rc = write_all(s->fd, rec.data, rec.len);
    if (rc != HQ_OK) {
        /* a partial write (disk full) should not leave a torn record behind; if it does, its
         * checksum fails and recovery skips it */
        if (gw__spool_io.ftruncate(s->fd, (off_t)off) != 0)
            hq_error("spool: cannot truncate after a failed write", "dir=%s", s->dir);
    }
    if (file_size(s->fd, &end) != HQ_OK)
        end = off + (rc == HQ_OK ? rec.len : 0);
    s->bytes += end - s->seg_size;
    s->seg_size = end;
    if (rc != HQ_OK)
        goto unlock;
    s->events++;
    w.gen = ++s->wgen;
    if (s->wait_tail)
        s->wait_tail->next = &w;
    else
        s->wait_head = &w;
    s->wait_tail = &w;
    while (!w.done) {
        if (!s->syncing)
            sync_round(s, true);
        else
            pthread_cond_wait(&s->cond, &s->lock);
    }
    rc = w.rc;
    pthread_cond_broadcast(&s->cond); /* wake the drainer */
unlock:
    pthread_mutex_unlock(&s->lock);
out:
    hq_buf_free(&rec);
    return rc;
}

bool gw_spool_writable(struct gw_spool *s)
{
    bool ok;

    if (!s)
        return false;
    pthread_mutex_lock(&s->lock);
    ok = s->bytes < s->max_bytes;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void gw_spool_counts(struct gw_spool *s, uint64_t *events, uint64_t *bytes)
{
    pthread_mutex_lock(&s->lock);
    *events = s->events;
    *bytes = s->bytes;
    pthread_mutex_unlock(&s->lock);
}

uint64_t gw_spool_quarantined(struct gw_spool *s)
{
    uint64_t n;

    pthread_mutex_lock(&s->qlock);
    n = s->quarantined;
    pthread_mutex_unlock(&s->qlock);
    return n;
}

/* ---- quarantine ---- */

/* Append one record payload to spool_dir/quarantine.hqs, fsync'd. Returns HQ_OK or HQ_EIO. */
static int quarantine_append(struct gw_spool *s, const unsigned char *payload, size_t n)
{
    char path[4096];
    unsigned char key[KEY_LEN], hdr[SEG_HDR], rh[REC_HDR];
    const unsigned char *k;
    size_t start;
    int fd = -1, rc = HQ_EIO;

    quarantine_path(s->dir, path, sizeof(path));
    pthread_mutex_lock(&s->qlock);
    fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = create_segment(s->dirfd, path, key);
    } else if (fd >= 0) {
        ssize_t r = pread(fd, hdr, sizeof(hdr), 0);
        if (r != (ssize_t)sizeof(hdr) || seg_header(hdr, sizeof(hdr), &start, &k) != HQ_OK ||
            !k) {
            hq_error("spool: quarantine file has no valid header; move it away", "file=%s",
                     path);
            goto out;
        }
        memcpy(key, k, KEY_LEN);
    }
    if (fd < 0)
        goto out;
    hq_put_le32(rh, SPOOL_MAGIC);
    hq_put_le32(rh + 4, (uint32_t)n);
    hq_put_le32(rh + 8, rec_crc(key, rh + 4, payload, n));
    if (write_all(fd, rh, sizeof(rh)) != HQ_OK || write_all(fd, payload, n) != HQ_OK ||
        gw__spool_io.fdatasync(fd) != 0)
        goto out;
    s->quarantined++;
    hq_metric_set(s->m_quarantine_records, (int64_t)s->quarantined);
    rc = HQ_OK;
out:
    if (fd >= 0)
        close(fd);
    pthread_mutex_unlock(&s->qlock);
    if (rc == HQ_OK && s->m_quarantined)
        hq_metric_inc(s->m_quarantined);
    return rc;
}

/* ---- listing (operators, tests) ---- */

struct list_ctx {
    FILE *out;
    const char *file;
    size_t n;
};

/* A field of a listing line: "-" for none, control bytes (tab, newline...) as '?'. */
static void put_field(FILE *out, const char *v)
{
    if (!v || !*v) {
        fputc('-', out);
        return;
    }
    for (; *v; v++)
        fputc((unsigned char)*v < 0x20 || *v == 0x7f ? '?' : *v, out);
}

static void list_one(void *arg, const unsigned char *p, size_t n, size_t off)
{
    struct list_ctx *lc = arg;
    struct hq_msg m = {0};

    if (hq_msg_decode(p, n, &m) == HQ_OK) {
        fprintf(lc->out, "%s\t%zu\t", lc->file, off);
        put_field(lc->out, m.message_id);
        fputc('\t', lc->out);
        put_field(lc->out, m.routing_key);
        fputc('\t', lc->out);
        put_field(lc->out, hq_msg_str(&m, "hookmq-source"));
        fprintf(lc->out, "\t%zu\n", n);
        hq_msg_free(&m);
    } else {
        fprintf(lc->out, "%s\t%zu\t-\t-\tundecodable\t%zu\n", lc->file, off, n);
    }
    lc->n++;
}

static int list_file(const char *dir, const char *name, FILE *out, size_t *count)
{
    char path[4096];
    unsigned char *data;
    size_t len, bad;
    struct list_ctx lc = {out, name, 0};
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    rc = read_file(path, &data, &len);
    if (rc != HQ_OK)
        return rc;
    if (walk_records(data, len, path, list_one, &lc, &bad, false) == (size_t)-1)
        fprintf(out, "%s\t-\t-\t-\tunknown-format\t%zu\n", name, len);
    else if (bad)
        fprintf(out, "%s\t-\t-\t-\ttorn-or-corrupt:%zu\t-\n", name, bad);
    free(data);
    *count += lc.n;
    return HQ_OK;
}

int gw_spool_list(const char *dir, bool quarantine, FILE *out, size_t *count)
{
    uint64_t *segs = NULL;
    size_t nseg = 0, i;
    int rc;

    *count = 0;
    if (quarantine) {
        rc = list_file(dir, QUARANTINE_NAME, out, count);
        return rc == HQ_ENOTFOUND ? HQ_OK : rc;
    }
    rc = list_segments_in(dir, &segs, &nseg);
    for (i = 0; rc == HQ_OK && i < nseg; i++) {
        char name[64];
        snprintf(name, sizeof(name), "seg-%016llx.hqs", (unsigned long long)segs[i]);
        rc = list_file(dir, name, out, count);
        if (rc == HQ_ENOTFOUND) /* drained meanwhile */
            rc = HQ_OK;
    }
    free(segs);
    return rc;
}

int gw_spool_retry_quarantine(const char *dir, size_t *count, char *err, size_t errsz)
{
    char qpath[4096], spath[4096];
    uint64_t *segs = NULL;
    size_t nseg = 0, len, bad, good;
    unsigned char *data = NULL;
    int dirfd, rc = HQ_EIO;

    *count = 0;
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        snprintf(err, errsz, "spool_dir %s: %s", dir, strerror(errno));
        return HQ_EIO;
    }
    if (flock(dirfd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errsz, "spool_dir %s: a gateway is running on it; stop it first", dir);
        rc = HQ_ECONFLICT;
        goto out;
    }
    quarantine_path(dir, qpath, sizeof(qpath));
    rc = read_file(qpath, &data, &len);
    if (rc == HQ_ENOTFOUND) {
        rc = HQ_OK; /* nothing set aside */
        goto out;
    }
    if (rc != HQ_OK) {
        snprintf(err, errsz, "%s: cannot read", qpath);
        goto out;
    }
    good = walk_records(data, len, qpath, NULL, NULL, &bad, true);
    if (good == (size_t)-1) {
        snprintf(err, errsz, "%s: unknown format", qpath);
        rc = HQ_EINVAL;
        goto out;
    }
    rc = list_segments_in(dir, &segs, &nseg);
    if (rc != HQ_OK) {
        snprintf(err, errsz, "spool_dir %s: cannot list", dir);
        goto out;
    }
    /* the quarantine has the segment format: it becomes the newest segment */
    snprintf(spath, sizeof(spath), "%s/seg-%016llx.hqs", dir,
             (unsigned long long)(nseg ? segs[nseg - 1] + 1 : 1));
    if (rename(qpath, spath) != 0 || fsync(dirfd) != 0) {
        snprintf(err, errsz, "%s: cannot move to %s: %s", qpath, spath, strerror(errno));
        rc = HQ_EIO;
        goto out;
    }
    *count = good;
    rc = HQ_OK;
out:
    free(data);
    free(segs);
    close(dirfd);
    return rc;
}

/* ---- drainer ---- */

/* What the drainer knows about a closed segment across passes: which records are settled
 * (confirmed or quarantined) and how often the broker refused each one. Kept in memory only: a
 * restart republishes the segment's records (duplicates, never loss). */
struct seg_state {
    uint64_t seq;
    size_t n;
    unsigned char *settled;
    unsigned char *refusals;
    struct seg_state *next;
};

struct drain_pass {
    struct gw_spool *s;
    struct seg_state *st;
    const unsigned char **rec;
    size_t *rec_len;
    size_t n;
    pthread_mutex_t lock;
    size_t next;
    bool failed;  /* the broker is unusable: stop this pass */
    bool refused; /* some record was refused and is kept for a later pass */
    size_t settled;
};

static void collect(void *arg, const unsigned char *p, size_t n, size_t off)
{
    struct drain_pass *dp = arg;

    (void)off;
    dp->rec[dp->n] = p;
    dp->rec_len[dp->n] = n;
    dp->n++;
}

/* The state of segment seq with n records (created, or reset if n changed). NULL on ENOMEM.
 * Only the drainer thread calls this. */
static struct seg_state *seg_state_get(struct gw_spool *s, uint64_t seq, size_t n)
{
    struct seg_state *st;

    for (st = s->states; st; st = st->next)
        if (st->seq == seq)
            break;
    if (st && st->n != n) {
        free(st->settled);
        free(st->refusals);
        st->settled = st->refusals = NULL;
    }
    if (!st) {
        st = calloc(1, sizeof(*st));
        if (!st)
            return NULL;
        st->seq = seq;
        st->next = s->states;
        s->states = st;
    }
    if (!st->settled) {
        st->n = n;
        st->settled = calloc(n ? n : 1, 1);
        st->refusals = calloc(n ? n : 1, 1);
        if (!st->settled || !st->refusals) {
            free(st->settled);
            free(st->refusals);
            st->settled = st->refusals = NULL;
            return NULL;
        }
    }
    return st;
}

static void seg_state_drop(struct gw_spool *s, uint64_t seq)
{
    struct seg_state **pp, *st;

    for (pp = &s->states; (st = *pp) != NULL; pp = &st->next) {
        if (st->seq == seq) {
            *pp = st->next;
            free(st->settled);
            free(st->refusals);
            free(st);
            return;
        }
    }
}

/* Set record i aside; true when it is safely in the quarantine. */
static bool set_aside(struct drain_pass *dp, size_t i, const char *id, const char *why)
{
    struct gw_spool *s = dp->s;

    if (quarantine_append(s, dp->rec[i], dp->rec_len[i]) == HQ_OK) {
        hq_error("spool: record moved to quarantine", "event_id=%s reason=\"%s\" segment=%016llx",
                 id, why, (unsigned long long)dp->st->seq);
        return true;
    }
    hq_error("spool: cannot write the quarantine; the record stays", "event_id=%s dir=%s", id,
             s->dir);
    return false;
}

static void *drain_worker(void *arg)
{
    struct drain_pass *dp = arg;
    struct gw_spool *s = dp->s;

    for (;;) {
        struct hq_msg m = {0};
        size_t i;
        int rc;
        bool settled = false, refused = false, failed = false;

        pthread_mutex_lock(&dp->lock);
        while (dp->next < dp->n && dp->st->settled[dp->next])
            dp->next++;
        if (dp->failed || dp->next >= dp->n) {
            pthread_mutex_unlock(&dp->lock);
            break;
        }
        i = dp->next++;
        pthread_mutex_unlock(&dp->lock);

        rc = hq_msg_decode(dp->rec[i], dp->rec_len[i], &m);
        if (rc != HQ_OK) {
            /* checksum-valid but undecodable (an incompatible release wrote it): set it aside
             * for an operator, never count it as delivered */
            settled = set_aside(dp, i, "-", "undecodable");
            failed = !settled;
            goto account;
        }
        rc = hq_pub_publish(s->pub, s->exchange, &m,
                            hq_mono_ms() + (int64_t)s->confirm_timeout_ms * 5);
        if (rc == HQ_OK) {
            settled = true;
            hq_metric_inc(s->drained);
        } else if (rc == HQ_ETOOBIG) {
            /* the message itself: no number of retries will make the broker take it */
            settled = set_aside(dp, i, m.message_id, "larger than the broker takes");
            failed = !settled;
        } else if (rc == HQ_EBROKER) {
            /* nacked (e.g. reject-publish on a full queue) or its channel closed over a
             * message: try again on a later pass, and set it aside after SPOOL_MAX_REFUSALS
             * refusals (a missing exchange or refused access is HQ_ENOTFOUND / HQ_EAUTH: the
             * pass stops and the records wait, whatever the time) */
            unsigned char n = dp->st->refusals[i];
            if (n < 255)
                dp->st->refusals[i] = ++n;
            hq_warn("spool: the broker refused a record", "event_id=%s refusals=%u",
                    m.message_id, (unsigned)n);
            if (n >= SPOOL_MAX_REFUSALS) {
                settled = set_aside(dp, i, m.message_id, "refused by the broker");
                failed = !settled;
            } else {
                refused = true;
            }
        } else {
            failed = true;
            hq_debug("spool: republish failed", "event_id=%s error=\"%s\"", m.message_id,
                     hq_strerror(rc));
        }
        hq_msg_free(&m);
account:
        pthread_mutex_lock(&dp->lock);
        if (settled) {
            dp->st->settled[i] = 1;
            dp->settled++;
        }
        dp->refused |= refused;
        dp->failed |= failed;
        pthread_mutex_unlock(&dp->lock);
    }
    return NULL;
}

/* Republish the records of one closed segment that are not settled yet; unlink it when every
 * record is confirmed or quarantined. HQ_EBROKER: only refusals kept it (later segments may go
 * on); HQ_EDOWN: the broker is unusable. */
int gw__spool_drain_segment(struct gw_spool *s, uint64_t seq)
{
    char path[4096];
    unsigned char *data = NULL;
    size_t len = 0, bad, good, i;
    struct drain_pass dp = {0};
    pthread_t th[DRAIN_THREADS];
    size_t nth = 0;
    int rc;

    seg_path(s, seq, path, sizeof(path));
    rc = read_file(path, &data, &len);
    if (rc != HQ_OK)
        return rc;
    good = walk_records(data, len, path, NULL, NULL, &bad, false);
    if (good == (size_t)-1) {
        /* written by a newer release: keep it for the operator, out of the drainer's way */
        char aside[4200];
        snprintf(aside, sizeof(aside), "%s.unknown-format", path);
        if (rename(path, aside) == 0 && fsync(s->dirfd) == 0) {
            hq_error("spool: segment of an unknown format set aside", "file=%s", aside);
            pthread_mutex_lock(&s->lock);
            s->bytes -= len;
            pthread_mutex_unlock(&s->lock);
            rc = HQ_OK;
        } else {
            rc = HQ_EIO;
        }
        goto out;
    }
    dp.s = s;
    dp.rec = calloc(good ? good : 1, sizeof(*dp.rec));
    dp.rec_len = calloc(good ? good : 1, sizeof(*dp.rec_len));
    if (!dp.rec || !dp.rec_len) {
        rc = HQ_ENOMEM;
        goto out;
    }
    walk_records(data, len, path, collect, &dp, &bad, true);
    dp.st = seg_state_get(s, seq, dp.n);
    if (!dp.st) {
        rc = HQ_ENOMEM;
        goto out;
    }
    for (i = 0; i < dp.n; i++)
        dp.settled += dp.st->settled[i];
    pthread_mutex_init(&dp.lock, NULL);
    for (i = 0; i < DRAIN_THREADS && i < dp.n; i++)
        if (pthread_create(&th[nth], NULL, drain_worker, &dp) == 0)
            nth++;
    if (nth == 0 && dp.n)
        drain_worker(&dp);
    for (i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&dp.lock);
    if (dp.settled != dp.n) {
        rc = dp.failed ? HQ_EDOWN : HQ_EBROKER;
        goto out;
    }
    if (unlink(path) != 0 || fsync(s->dirfd) != 0) {
        rc = HQ_EIO;
        goto out;
    }
    seg_state_drop(s, seq);
    pthread_mutex_lock(&s->lock);
    s->events -= dp.n;
    s->bytes -= len;
    pthread_mutex_unlock(&s->lock);
    hq_info("spool: segment drained", "segment=%s events=%zu", path, dp.n);
    rc = HQ_OK;
out:
    free(dp.rec);
    free(dp.rec_len);
    free(data);
    return rc;
}

static void *drainer_main(void *arg)
{
    struct gw_spool *s = arg;

    for (;;) {
        struct hq_pub_stats st;
        uint64_t *segs = NULL, active;
        size_t nseg = 0, i;
        bool work, refused = false, rotate_failed = false;
        struct timespec ts;

        pthread_mutex_lock(&s->lock);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!s->stop && s->events == 0)
            pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        if (s->stop) {
            pthread_mutex_unlock(&s->lock);
            break;
        }
        work = s->events > 0;
        pthread_mutex_unlock(&s->lock);
        if (!work)
            continue;
        hq_pub_get_stats(s->pub, &st);
        if (!st.connected) {
            usleep(200 * 1000);
            continue;
        }
        pthread_mutex_lock(&s->lock);
        if ((s->fd < 0 || s->seg_size > SEG_HDR) && rotate_locked(s) != HQ_OK) {
            /* No new segment (a full disk cannot take even its header). rotate_locked made
             * the old one durable and closed it first: it is complete, drain it with the
             * rest, or the events in it wait until the disk has room again. */
            rotate_failed = true;
            if (s->fd >= 0) {
                pthread_mutex_unlock(&s->lock);
                usleep(1000 * 1000);
                continue;
            }
        }
        active = s->fd >= 0 ? s->seq : s->seq + 1; /* the segment appends go to, if any */
        pthread_mutex_unlock(&s->lock);

        if (list_segments(s, &segs, &nseg) != HQ_OK) {
            usleep(1000 * 1000);
            continue;
        }
        for (i = 0; i < nseg && !s->stop; i++) {
            int rc;

            if (segs[i] >= active)
                break;
            rc = gw__spool_drain_segment(s, segs[i]);
            if (rc == HQ_EBROKER) { /* refusals only: the next segments need not wait */
                refused = true;
                continue;
            }
            if (rc != HQ_OK) {
                usleep(500 * 1000);
                break;
            }
        }
        if (refused)
            usleep(SPOOL_REFUSAL_PAUSE_MS * 1000);
        if (rotate_failed)
            usleep(1000 * 1000); /* the error is logged once a second at most */
        free(segs);
    }
    return NULL;
}

int gw_spool_start_drainer(struct gw_spool *s, struct hq_pub *pub, const char *exchange,
                           int confirm_timeout_ms, struct hq_metric *drained,
                           struct hq_metric *quarantined, struct hq_metric *quarantine_records)
{
    s->pub = pub;
    s->exchange = strdup(exchange);
    s->confirm_timeout_ms = confirm_timeout_ms;
    s->drained = drained;
    s->m_quarantined = quarantined;
    s->m_quarantine_records = quarantine_records;
    hq_metric_set(quarantine_records, (int64_t)gw_spool_quarantined(s));
    if (!s->exchange)
        return HQ_ENOMEM;
    if (pthread_create(&s->drainer, NULL, drainer_main, s) != 0)
        return HQ_ENOMEM;
    s->drainer_started = true;
    return HQ_OK;
}

void gw_spool_close(struct gw_spool *s)
{
    if (!s)
        return;
    if (s->drainer_started) {
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->drainer, NULL);
    }
    if (s->fd >= 0) {
        if (s->wait_head && gw__spool_io.fdatasync(s->fd) != 0)
            hq_error("spool: final fsync failed", "dir=%s", s->dir);
        close(s->fd);
        /* remove an empty active segment */
        if (s->seg_size <= SEG_HDR) {
            char path[4096];
            seg_path(s, s->seq, path, sizeof(path));
            unlink(path);
        }
    }
    while (s->states)
        seg_state_drop(s, s->states->seq);
    if (s->dirfd >= 0)
        close(s->dirfd);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->qlock);
    pthread_cond_destroy(&s->cond);
    free(s->exchange);
    free(s->dir);
    free(s);
}
