/* spool.c: the gateway's local journal for events the broker could not confirm in time.
 *
 * Layout: spool_dir/seg-<16 hex seq>.hqs, append-only segments of records
 *   [magic "HQSP" u32le][len u32le][crc32c u32le][hq_msg_encode payload]
 * An append is answered only after fdatasync (group commit: one fsync covers every append
 * written before it started). A torn or corrupt record (crash mid-write: never answered 2xx)
 * is skipped and reported when read. The drainer rotates the active segment, republishes
 * every record of each closed segment with publisher confirms, and unlinks the segment only
 * when all of its records are confirmed (a crash in between republishes: duplicates, never
 * loss). Segments are drained oldest first. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw.h"
#include "hq_log.h"
#include "hq_time.h"

#define SPOOL_MAGIC 0x50535148u /* "HQSP" little-endian */
#define REC_HDR 12
#define SEG_ROTATE_BYTES (64u << 20)
#define DRAIN_THREADS 16

struct gw_spool {
    char *dir;
    int dirfd;
    uint64_t max_bytes;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    int fd;               /* active segment */
    uint64_t seq;         /* active segment's sequence number */
    uint64_t seg_size;    /* bytes written to the active segment */
    uint64_t synced_size; /* bytes of the active segment known durable */
    uint64_t wgen, sgen;  /* appends written / appends fsync'd */
    uint64_t fail_from, fail_to; /* appends whose fsync failed (removed again) */
    bool syncing;
    uint64_t events, bytes; /* across all segments, including the active one */

    /* drainer */
    pthread_t drainer;
    bool drainer_started, stop;
    struct hq_pub *pub;
    char *exchange;
    int confirm_timeout_ms;
    struct hq_metric *drained;
};

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    uint32_t i, j, c;

    for (i = 0; i < 256; i++) {
        c = i;
        for (j = 0; j < 8; j++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32c(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;

    pthread_once(&crc_once, crc_init);
    while (n--)
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
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

/* Sorted sequence numbers of the segments on disk. Caller frees *out. */
static int list_segments(const struct gw_spool *s, uint64_t **out, size_t *n)
{
    DIR *d = opendir(s->dir);
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

static int read_file(const char *path, unsigned char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    unsigned char *p = NULL;
    size_t off = 0;
    int rc = HQ_EIO;

    *data = NULL;
    *len = 0;
    if (fd < 0)
        return HQ_EIO;
    if (fstat(fd, &st) != 0)
        goto out;
    p = malloc((size_t)st.st_size + 1);
    if (!p) {
        rc = HQ_ENOMEM;
        goto out;
    }
    while (off < (size_t)st.st_size) {
        ssize_t r = read(fd, p + off, (size_t)st.st_size - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    *data = p;
    *len = off;
    p = NULL;
    rc = HQ_OK;
out:
    free(p);
    close(fd);
    return rc;
}

/* Walk the records of a segment image. For each valid record calls fn (if not NULL) with its
 * payload. Corrupt or torn records are skipped (resynchronising on the next magic) and
 * counted in *bad. Returns the number of valid records. */
static size_t walk_records(const unsigned char *p, size_t n, const char *name,
                           void (*fn)(void *, const unsigned char *, size_t), void *arg,
                           size_t *bad, bool report)
{
    size_t off = 0, good = 0;

    *bad = 0;
    while (off + REC_HDR <= n) {
        uint32_t len = get32(p + off + 4);
        if (get32(p + off) == SPOOL_MAGIC && len <= n - off - REC_HDR &&
            crc32c(p + off + REC_HDR, len) == get32(p + off + 8)) {
            if (fn)
                fn(arg, p + off + REC_HDR, len);
            good++;
            off += REC_HDR + len;
            continue;
        }
        (*bad)++;
        /* resync: next magic after this offset */
        for (off++; off + 4 <= n; off++)
            if (get32(p + off) == SPOOL_MAGIC)
                break;
    }
    if (off < n && n - off < REC_HDR)
        (*bad)++;
    if (*bad && report)
        hq_warn("spool: skipped torn or corrupt records", "segment=%s records=%zu", name, *bad);
    return good;
}

static int open_segment(struct gw_spool *s, uint64_t seq)
{
    char path[4096];
    int fd;

    seg_path(s, seq, path, sizeof(path));
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return HQ_EIO;
    if (fsync(s->dirfd) != 0) {
        close(fd);
        return HQ_EIO;
    }
    s->fd = fd;
    s->seq = seq;
    s->seg_size = s->synced_size = 0;
    return HQ_OK;
}

int gw_spool_open(const char *dir, uint64_t max_bytes, struct gw_spool **out, char *err,
                  size_t errsz)
{
    struct gw_spool *s = calloc(1, sizeof(*s));
    uint64_t *segs = NULL;
    size_t nseg = 0, i;
    int rc = HQ_ENOMEM;

    if (!s)
        goto out;
    s->fd = s->dirfd = -1;
    s->dir = strdup(dir);
    if (!s->dir)
        goto out;
    s->max_bytes = max_bytes;
    pthread_mutex_init(&s->lock, NULL);
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
    rc = list_segments(s, &segs, &nseg);
    if (rc != HQ_OK) {
        snprintf(err, errsz, "spool_dir %s: cannot list", dir);
        goto out;
    }
    for (i = 0; i < nseg; i++) {
        char path[4096];
        unsigned char *data;
        size_t len, bad;

        seg_path(s, segs[i], path, sizeof(path));
        if (read_file(path, &data, &len) != HQ_OK)
            continue;
        s->events += walk_records(data, len, path, NULL, NULL, &bad, true);
        s->bytes += len;
        free(data);
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

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return HQ_EIO;
        p += w;
        n -= (size_t)w;
    }
    return HQ_OK;
}

/* Rotate the active segment; caller holds s->lock. Makes everything written durable first. */
static int rotate_locked(struct gw_spool *s)
{
    int rc;

    while (s->syncing)
        pthread_cond_wait(&s->cond, &s->lock);
    if (s->sgen < s->wgen) {
        if (fdatasync(s->fd) != 0)
            return HQ_EIO;
        s->sgen = s->wgen;
        pthread_cond_broadcast(&s->cond);
    }
    close(s->fd);
    s->fd = -1;
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
    uint64_t my;
    int rc;

    rc = hq_buf_append(&rec, hdr, sizeof(hdr)); /* placeholder, filled below */
    if (rc == HQ_OK)
        rc = hq_msg_encode(m, &rec);
    if (rc != HQ_OK)
        goto out;
    put32(rec.data, SPOOL_MAGIC);
    put32(rec.data + 4, (uint32_t)(rec.len - REC_HDR));
    put32(rec.data + 8, crc32c(rec.data + REC_HDR, rec.len - REC_HDR));

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
    rc = write_all(s->fd, rec.data, rec.len);
    if (rc != HQ_OK) {
        /* a partial write (disk full) must not leave a torn record behind good ones */
        if (ftruncate(s->fd, (off_t)s->seg_size) != 0)
            hq_error("spool: cannot truncate after a failed write", "dir=%s", s->dir);
        goto unlock;
    }
    s->seg_size += rec.len;
    s->bytes += rec.len;
    s->events++;
    my = ++s->wgen;
    while (s->sgen < my) {
        if (!s->syncing) {
            uint64_t target = s->wgen, size = s->seg_size;
            int fd = s->fd, r;

            s->syncing = true;
            pthread_mutex_unlock(&s->lock);
            r = fdatasync(fd);
            pthread_mutex_lock(&s->lock);
            s->syncing = false;
            if (r == 0) {
                s->synced_size = size;
            } else {
                /* nothing after the last good sync may be trusted: drop it all */
                hq_error("spool: fsync failed", "dir=%s error=\"%s\"", s->dir, strerror(errno));
                s->fail_from = s->sgen + 1;
                s->fail_to = s->wgen;
                s->events -= s->wgen - s->sgen;
                s->bytes -= s->seg_size - s->synced_size;
                if (ftruncate(s->fd, (off_t)s->synced_size) != 0)
                    hq_error("spool: cannot truncate after a failed fsync", "dir=%s", s->dir);
                s->seg_size = s->synced_size;
                target = s->wgen;
            }
            s->sgen = target;
            pthread_cond_broadcast(&s->cond);
        } else {
            pthread_cond_wait(&s->cond, &s->lock);
        }
    }
    rc = (my >= s->fail_from && my <= s->fail_to) ? HQ_EIO : HQ_OK;
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
    ok = s->fd >= 0 && s->bytes < s->max_bytes;
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

/* ---- drainer ---- */

struct drain_pass {
    struct gw_spool *s;
    const unsigned char **rec;
    size_t *rec_len;
    size_t n;
    pthread_mutex_t lock;
    size_t next;
    bool failed;
    size_t confirmed;
};

static void collect(void *arg, const unsigned char *p, size_t n)
{
    struct drain_pass *dp = arg;

    dp->rec[dp->n] = p;
    dp->rec_len[dp->n] = n;
    dp->n++;
}

static void *drain_worker(void *arg)
{
    struct drain_pass *dp = arg;
    struct gw_spool *s = dp->s;

    for (;;) {
        struct hq_msg m = {0};
        size_t i;
        int rc;

        pthread_mutex_lock(&dp->lock);
        if (dp->failed || dp->next >= dp->n) {
            pthread_mutex_unlock(&dp->lock);
            break;
        }
        i = dp->next++;
        pthread_mutex_unlock(&dp->lock);

        rc = hq_msg_decode(dp->rec[i], dp->rec_len[i], &m);
        if (rc != HQ_OK) {
            /* CRC-valid but undecodable: written by an incompatible version; keep going */
            hq_error("spool: undecodable record skipped", "index=%zu", i);
            pthread_mutex_lock(&dp->lock);
            dp->confirmed++;
            pthread_mutex_unlock(&dp->lock);
            continue;
        }
        rc = hq_pub_publish(s->pub, s->exchange, &m,
                            hq_mono_ms() + (int64_t)s->confirm_timeout_ms * 5);
        pthread_mutex_lock(&dp->lock);
        if (rc == HQ_OK)
            dp->confirmed++;
        else
            dp->failed = true;
        pthread_mutex_unlock(&dp->lock);
        if (rc == HQ_OK)
            hq_metric_inc(s->drained);
        else
            hq_debug("spool: republish failed", "event_id=%s error=\"%s\"", m.message_id,
                     hq_strerror(rc));
        hq_msg_free(&m);
    }
    return NULL;
}

/* Republish one closed segment; unlink it when every record is confirmed. */
static int drain_segment(struct gw_spool *s, uint64_t seq)
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
    dp.s = s;
    dp.rec = calloc(good ? good : 1, sizeof(*dp.rec));
    dp.rec_len = calloc(good ? good : 1, sizeof(*dp.rec_len));
    if (!dp.rec || !dp.rec_len) {
        rc = HQ_ENOMEM;
        goto out;
    }
    walk_records(data, len, path, collect, &dp, &bad, true);
    pthread_mutex_init(&dp.lock, NULL);
    for (i = 0; i < DRAIN_THREADS && i < dp.n; i++)
        if (pthread_create(&th[nth], NULL, drain_worker, &dp) == 0)
            nth++;
    if (nth == 0 && dp.n)
        drain_worker(&dp);
    for (i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&dp.lock);
    if (dp.failed || dp.confirmed != dp.n) {
        rc = HQ_EDOWN;
        goto out;
    }
    if (unlink(path) != 0 || fsync(s->dirfd) != 0) {
        rc = HQ_EIO;
        goto out;
    }
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
        bool work;
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
        if (s->seg_size > 0 && rotate_locked(s) != HQ_OK) {
            pthread_mutex_unlock(&s->lock);
            usleep(1000 * 1000);
            continue;
        }
        active = s->seq;
        pthread_mutex_unlock(&s->lock);

        if (list_segments(s, &segs, &nseg) != HQ_OK) {
            usleep(1000 * 1000);
            continue;
        }
        for (i = 0; i < nseg && !s->stop; i++) {
            if (segs[i] >= active)
                break;
            if (drain_segment(s, segs[i]) != HQ_OK) {
                usleep(500 * 1000);
                break;
            }
        }
        free(segs);
    }
    return NULL;
}

int gw_spool_start_drainer(struct gw_spool *s, struct hq_pub *pub, const char *exchange,
                           int confirm_timeout_ms, struct hq_metric *drained)
{
    s->pub = pub;
    s->exchange = strdup(exchange);
    s->confirm_timeout_ms = confirm_timeout_ms;
    s->drained = drained;
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
        if (s->sgen < s->wgen && fdatasync(s->fd) != 0)
            hq_error("spool: final fsync failed", "dir=%s", s->dir);
        close(s->fd);
        /* remove an empty active segment */
        if (s->seg_size == 0) {
            char path[4096];
            seg_path(s, s->seq, path, sizeof(path));
            unlink(path);
        }
    }
    if (s->dirfd >= 0)
        close(s->dirfd);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s->exchange);
    free(s->dir);
    free(s);
}
