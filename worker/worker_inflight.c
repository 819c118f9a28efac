/* worker_inflight.c: the crash ledger, hookmq-worker's own bound on poison events.
 *
 * Classic queues have no delivery limit at all. Quorum work queues have x-delivery-limit, but
 * the broker counts every return: when a poison event kills the worker, the events prefetched
 * behind it are returned too and their counts go up with the poison's, so the broker's limit
 * alone would park innocent events with it. The ledger counts only the event whose handler
 * was running; the broker's limit stays as the backstop (workers on several hosts keep
 * separate ledgers).
 *
 * Two files:
 *   <path>        text, "<count> <key> <ms>" per line (ms: the last crash, since the epoch;
 *                 lines of older versions without it count as crashed now): crashes of
 *                 earlier runs (rewritten at start-up and when a counted event is finally
 *                 settled)
 *   <path>.slots  one fixed-size record per slot, mapped MAP_SHARED: the key of the event
 *                 whose handler the slot is running, or empty. begin/end are plain memory
 *                 writes (no system call per event); the pages of a process that dies stay in
 *                 the page cache and reach the file.
 * At start-up every non-empty record of the last run is one crash of its key. A redelivered
 * event whose count reached WK_CRASH_LIMIT goes to the DLQ without calling the handler
 * ("handler crashed N times"). After a power loss the last counts may be lost, which only
 * delays parking.
 *
 * Bounded: a count whose last crash is older than CRASH_TTL_MS is dropped (its event was
 * settled or parked long ago, or lives on another host), and at MAX_CRASHED keys the oldest
 * is evicted, so the newest crash is always counted.
 *
 * The path is "<dedupe.path>.inflight" when the consumer has a dedupe ledger, else
 * "$TMPDIR/hookmq-<consumer>.inflight"; it is claimed like the dedupe ledger (one per live
 * worker process on a host, wk_claim_path). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hq_log.h"
#include "hq_time.h"
#include "worker.h"

#define MAX_CRASHED 10000
#define CRASH_TTL_MS (7 * 24 * 3600 * 1000LL)
#define SLOTS_MAGIC 0x48514946u /* "HQIF" */

struct record {
    _Atomic uint32_t len; /* 0 = idle; written after key */
    char key[WK_KEY_MAX];
};

struct slots_file {
    uint32_t magic;
    uint32_t n;
    struct record rec[];
};

struct crashed {
    char *key;
    int count;
    int64_t last_ms; /* wall clock of the last crash */
};

struct wk_inflight {
    pthread_mutex_t lock; /* guards crashed[] and the counts file */
    int lock_fd;
    char path[PATH_MAX];
    struct crashed *crashed;
    size_t n_crashed, cap_crashed;
    struct slots_file *map;
    size_t map_len;
    int n_slots;
};

static struct crashed *find_crashed(struct wk_inflight *f, const char *key)
{
    size_t i;

    for (i = 0; i < f->n_crashed; i++)
        if (strcmp(f->crashed[i].key, key) == 0) return &f->crashed[i];
    return NULL;
}

static void drop_crashed(struct wk_inflight *f, size_t i)
{
    free(f->crashed[i].key);
    f->crashed[i] = f->crashed[--f->n_crashed];
}

/* Make room for one more key: drop settled and expired counts; when all MAX_CRASHED are live,
 * evict the one whose last crash is the oldest (with a warning). */
static void make_room(struct wk_inflight *f, int64_t now)
{
    size_t i, oldest = 0;

    for (i = f->n_crashed; i-- > 0;)
        if (f->crashed[i].count <= 0 || f->crashed[i].last_ms < now - CRASH_TTL_MS)
            drop_crashed(f, i);
    if (f->n_crashed < MAX_CRASHED) return;
    for (i = 1; i < f->n_crashed; i++)
        if (f->crashed[i].last_ms < f->crashed[oldest].last_ms) oldest = i;
    hq_warn("crash ledger full; forgetting the oldest count", "path=%s keys=%d", f->path,
            MAX_CRASHED);
    drop_crashed(f, oldest);
}

static void add_crash(struct wk_inflight *f, const char *key, int n, int64_t ms)
{
    struct crashed *c = find_crashed(f, key);
    int64_t now = hq_now_ms();

    if (ms < now - CRASH_TTL_MS) return; /* expired */
    if (c) {
        c->count += n;
        if (ms > c->last_ms) c->last_ms = ms;
        return;
    }
    if (f->n_crashed >= MAX_CRASHED) make_room(f, now);
    if (f->n_crashed == f->cap_crashed) {
        size_t cap = f->cap_crashed ? f->cap_crashed * 2 : 16;
        struct crashed *p = realloc(f->crashed, cap * sizeof(*p));
        if (!p) return;
        f->crashed = p;
        f->cap_crashed = cap;
    }
    f->crashed[f->n_crashed].key = strdup(key);
    if (!f->crashed[f->n_crashed].key) return;
    f->crashed[f->n_crashed].last_ms = ms;
    f->crashed[f->n_crashed++].count = n;
}

/* Rewrite <path> from crashed[] (tmp + rename). Lock held or not yet shared. */
static int write_counts(struct wk_inflight *f)
{
    char tmp[PATH_MAX + 8];
    FILE *out;
    size_t i;
    int rc = HQ_OK;

    snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
    out = fopen(tmp, "we");
    if (!out) return HQ_EIO;
    for (i = 0; i < f->n_crashed; i++)
        if (f->crashed[i].count > 0 &&
            fprintf(out, "%d %s %lld\n", f->crashed[i].count, f->crashed[i].key,
                    (long long)f->crashed[i].last_ms) < 0)
            rc = HQ_EIO;
    if (fclose(out) != 0) rc = HQ_EIO;
    if (rc == HQ_OK && rename(tmp, f->path) != 0) rc = HQ_EIO;
    if (rc != HQ_OK) unlink(tmp);
    return rc;
}

static void read_counts(struct wk_inflight *f)
{
    FILE *in = fopen(f->path, "re");
    char line[WK_KEY_MAX + 32], *key, *last;
    int64_t ms, now = hq_now_ms();

    if (!in) return;
    while (fgets(line, sizeof(line), in)) {
        size_t n = strlen(line);
        char *sp, *end;
        long v;

        if (n == 0 || line[n - 1] != '\n') {
            int c;
            if (!feof(in))
                while ((c = fgetc(in)) != EOF && c != '\n')
                    ;
            continue;
        }
        line[n - 1] = '\0';
        sp = strchr(line, ' ');
        if (!sp || !sp[1]) continue;
        *sp = '\0';
        errno = 0;
        v = strtol(line, &end, 10);
        if (errno || *end || v <= 0 || v > 1000000) continue;
        /* "<source> <id> <ms>"; "<source> <id>" (older versions): crashed now */
        ms = now;
        key = sp + 1;
        sp = strchr(key, ' ');
        last = strrchr(key, ' ');
        if (sp && last != sp) {
            long long t;
            errno = 0;
            t = strtoll(last + 1, &end, 10);
            if (errno || *end || end == last + 1 || t < 0) continue;
            *last = '\0';
            ms = (int64_t)t;
        }
        add_crash(f, key, (int)v, ms);
    }
    fclose(in);
}

/* Count the records a dead run left in <path>.slots (whatever its slot count was). */
static void read_slots(struct wk_inflight *f, const char *slots_path)
{
    int fd = open(slots_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    struct slots_file hdr;
    struct record r;
    uint32_t i;

    if (fd < 0) return;
    if (fstat(fd, &st) == 0 && read(fd, &hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr) &&
        hdr.magic == SLOTS_MAGIC &&
        (uint64_t)st.st_size >= sizeof(hdr) + (uint64_t)hdr.n * sizeof(struct record)) {
        for (i = 0; i < hdr.n; i++) {
            uint32_t len;
            if (read(fd, &r, sizeof(r)) != (ssize_t)sizeof(r)) break;
            len = atomic_load(&r.len);
            if (len == 0 || len >= sizeof(r.key) || memchr(r.key, '\0', len)) continue;
            r.key[len] = '\0';
            add_crash(f, r.key, 1, hq_now_ms());
        }
    }
    close(fd);
}

int wk_inflight_open(const char *path, int n_slots, struct wk_inflight **out, char *err,
                     size_t errsz)
{
    struct wk_inflight *f;
    char slots_path[PATH_MAX + 8];
    int fd = -1, rc;
    void *p;

    *out = NULL;
    if (n_slots < 1) return HQ_EINVAL;
    f = calloc(1, sizeof(*f));
    if (!f) return HQ_ENOMEM;
    pthread_mutex_init(&f->lock, NULL);
    f->n_slots = n_slots;
    rc = wk_claim_path(path, f->path, sizeof(f->path), &f->lock_fd, err, errsz);
    if (rc != HQ_OK) goto fail;
    snprintf(slots_path, sizeof(slots_path), "%s.slots", f->path);
    read_counts(f);
    read_slots(f, slots_path);
    rc = write_counts(f);
    if (rc != HQ_OK) {
        snprintf(err, errsz, "%s: cannot write: %s", f->path, strerror(errno));
        goto fail;
    }
    /* a fresh, zeroed slots file of the right size */
    f->map_len = sizeof(struct slots_file) + (size_t)n_slots * sizeof(struct record);
    fd = open(slots_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)f->map_len) != 0) {
        snprintf(err, errsz, "%s: %s", slots_path, strerror(errno));
        rc = HQ_EIO;
        goto fail;
    }
    p = mmap(NULL, f->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errsz, "%s: mmap: %s", slots_path, strerror(errno));
        rc = HQ_EIO;
        goto fail;
    }
    close(fd);
    fd = -1;
    f->map = p;
    f->map->magic = SLOTS_MAGIC;
    f->map->n = (uint32_t)n_slots;
    *out = f;
    return HQ_OK;
fail:
    if (fd >= 0) close(fd);
    wk_inflight_close(f);
    return rc;
}

int wk_inflight_crashes(struct wk_inflight *f, const char *key)
{
    struct crashed *c;
    int n = 0;

    if (!f || !key) return 0;
    pthread_mutex_lock(&f->lock);
    c = find_crashed(f, key);
    if (c) n = c->count;
    pthread_mutex_unlock(&f->lock);
    return n;
}

void wk_inflight_begin(struct wk_inflight *f, int slot, const char *key)
{
    struct record *r;
    size_t n;

    if (!f || !key || slot < 0 || slot >= f->n_slots) return;
    r = &f->map->rec[slot];
    n = strlen(key);
    if (n >= sizeof(r->key)) n = sizeof(r->key) - 1;
    memcpy(r->key, key, n);
    r->key[n] = '\0';
    atomic_store(&r->len, (uint32_t)n); /* after the key (seq_cst) */
}

void wk_inflight_end(struct wk_inflight *f, int slot, const char *key)
{
    struct crashed *c;

    if (!f || slot < 0 || slot >= f->n_slots) return;
    atomic_store(&f->map->rec[slot].len, 0);
    if (!key) return;
    /* a counted event finally settled: forget its crashes (rare, so a rewrite is fine) */
    pthread_mutex_lock(&f->lock);
    c = find_crashed(f, key);
    if (c) {
        drop_crashed(f, (size_t)(c - f->crashed));
        if (write_counts(f) != HQ_OK)
            hq_warn("crash ledger write failed", "path=%s error=\"%s\"", f->path, strerror(errno));
    }
    pthread_mutex_unlock(&f->lock);
}

const char *wk_inflight_path(const struct wk_inflight *f)
{
    return f ? f->path : "";
}

void wk_inflight_close(struct wk_inflight *f)
{
    size_t i;

    if (!f) return;
    if (f->map) munmap(f->map, f->map_len);
    for (i = 0; i < f->n_crashed; i++)
        free(f->crashed[i].key);
    free(f->crashed);
    if (f->lock_fd >= 0) close(f->lock_fd);
    pthread_mutex_destroy(&f->lock);
    free(f);
}
