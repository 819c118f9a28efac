/* dedupe.c: the optional dedupe ledger of a consumer (`dedupe = { window; path; }`).
 *
 * A file of "<source> <id> <ms>" lines (append-only while running) plus an in-memory hash
 * of the same. The worker records an event only after its handler answered ACK and before
 * it acks the delivery (write + fsync, then basic.ack): a crash between the two makes the
 * redelivery an already-processed id, acked without calling the handler; a crash before the
 * record calls the handler again (at-least-once). Entries older than `window` are ignored;
 * while the worker runs they are swept from memory every window/16 (100 ms .. 60 s) as records
 * come in, and the hash table shrinks with them, so memory follows the ids of one window.
 * The file is compacted (rewritten with the live entries) at open, and whenever its expired
 * or superseded lines outnumber the live entries (and it holds more than COMPACT_MIN lines),
 * so it stays within about twice one window's ids.
 *
 * Several workers on one host may share a config: each claims its own file (path, or
 * path.N when another live worker holds path; see wk_claim_path) and reads the others' at
 * open, so a restarted worker knows what any worker of the host recorded until then. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hq_fs.h"
#include "hq_time.h"
#include "worker.h"

#define LINE_MAX_BYTES 2048
#define CLAIM_MAX 15
#define COMPACT_MIN 4096
#define SWEEP_MIN_MS 100
#define SWEEP_MAX_MS 60000
#define BUCKETS_MIN 1024

struct entry {
    struct entry *next;
    int64_t ms;
    uint64_t hash;
    char key[]; /* "<source> <id>" escaped */
};

struct wk_dedupe {
    pthread_mutex_t lock;
    int fd, lock_fd;
    char path[PATH_MAX];
    uint64_t window_ms;
    struct entry **buckets;
    size_t n_buckets, count;
    size_t file_lines; /* lines in the owned file (live, expired and superseded) */
    size_t compact_at; /* compact once file_lines reaches this (and dead lines dominate) */
    int64_t next_sweep_ms;
    int64_t (*now)(void); /* wall clock, ms (hq_now_ms; tests inject their own) */
};

static int64_t now_ms(const struct wk_dedupe *d)
{
    return d->now ? d->now() : hq_now_ms();
}

static int64_t sweep_every_ms(const struct wk_dedupe *d)
{
    uint64_t v = d->window_ms / 16;

    return v < SWEEP_MIN_MS ? SWEEP_MIN_MS : v > SWEEP_MAX_MS ? SWEEP_MAX_MS : (int64_t)v;
}

/* ---------------------------------------------------------------- keys, paths */

static size_t escape(const char *s, char *out, size_t o, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c <= 0x20 || c == 0x7f || c == '%') {
            if (o + 3 >= outsz) return (size_t)-1;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            if (o + 1 >= outsz) return (size_t)-1;
            out[o++] = (char)c;
        }
    }
    return o;
}

bool wk_ledger_key(const char *source, const char *id, char *out, size_t outsz)
{
    size_t o;

    if (!source || !*source || !id || !*id || outsz < 4) return false;
    o = escape(source, out, 0, outsz);
    if (o == (size_t)-1 || o + 2 >= outsz) return false;
    out[o++] = ' ';
    o = escape(id, out, o, outsz);
    if (o == (size_t)-1) return false;
    out[o] = '\0';
    return true;
}

/* mkdir -p of path's directory (hq_mkdirs: each directory created is made durable, so a
 * power loss cannot take the ledger's, or the crash ledger's, directory away after the worker
 * started using it). -1 with errno on failure. */
static int mkdir_parents(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n;

    if (!slash || slash == path) return 0;
    n = (size_t)(slash - path);
    if (n >= sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, path, n);
    dir[n] = '\0';
    return hq_mkdirs(dir) == HQ_OK ? 0 : -1;
}

int wk_claim_path(const char *path, char *chosen, size_t chosensz, int *lock_fd, char *err,
                  size_t errsz)
{
    char lockpath[PATH_MAX];
    int i, fd;

    *lock_fd = -1;
    if (!path || !*path || strlen(path) + 8 >= chosensz || strlen(path) + 8 >= sizeof(lockpath)) {
        snprintf(err, errsz, "%s: path too long", path ? path : "");
        return HQ_EINVAL;
    }
    if (mkdir_parents(path) != 0) {
        snprintf(err, errsz, "%s: cannot create its directory: %s", path, strerror(errno));
        return HQ_EIO;
    }
    for (i = 0; i <= CLAIM_MAX; i++) {
        if (i == 0)
            snprintf(chosen, chosensz, "%s", path);
        else
            snprintf(chosen, chosensz, "%s.%d", path, i);
        snprintf(lockpath, sizeof(lockpath), "%s.lock", chosen);
        fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(err, errsz, "%s: %s", lockpath, strerror(errno));
            return HQ_EIO;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            *lock_fd = fd;
            return HQ_OK;
        }
        close(fd);
        if (errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(err, errsz, "%s: flock: %s", lockpath, strerror(errno));
            return HQ_EIO;
        }
    }
    snprintf(err, errsz, "%s: %d workers on this host already hold it and its .N siblings", path,
             CLAIM_MAX + 1);
    return HQ_EFULL;
}

/* ---------------------------------------------------------------- hash */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static struct entry *find(struct wk_dedupe *d, const char *key, uint64_t h)
{
    struct entry *e;

    if (!d->n_buckets) return NULL;
    for (e = d->buckets[h & (d->n_buckets - 1)]; e; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0) return e;
    return NULL;
}

/* Rehash into n buckets (a power of two). */
static int rehash(struct wk_dedupe *d, size_t n)
{
    size_t i;
    struct entry **b = calloc(n, sizeof(*b)), *e, *next;

    if (!b) return HQ_ENOMEM;
    for (i = 0; i < d->n_buckets; i++) {
        for (e = d->buckets[i]; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(d->buckets);
    d->buckets = b;
    d->n_buckets = n;
    return HQ_OK;
}

static int grow(struct wk_dedupe *d)
{
    return rehash(d, d->n_buckets ? d->n_buckets * 2 : BUCKETS_MIN);
}

/* Insert or refresh key with time ms (the later time wins). */
static int put(struct wk_dedupe *d, const char *key, int64_t ms)
{
    uint64_t h = fnv1a(key);
    struct entry *e = find(d, key, h);
    size_t n;

    if (e) {
        if (ms > e->ms) e->ms = ms;
        return HQ_OK;
    }
    if (d->count >= d->n_buckets && grow(d) != HQ_OK) return HQ_ENOMEM;
    n = strlen(key);
    e = malloc(sizeof(*e) + n + 1);
    if (!e) return HQ_ENOMEM;
    memcpy(e->key, key, n + 1);
    e->ms = ms;
    e->hash = h;
    e->next = d->buckets[h & (d->n_buckets - 1)];
    d->buckets[h & (d->n_buckets - 1)] = e;
    d->count++;
    return HQ_OK;
}

/* Drop entries older than cutoff from memory; shrink the table when it is mostly empty (a
 * failed shrink keeps the larger table). */
static void expire(struct wk_dedupe *d, int64_t cutoff)
{
    size_t i, n;

    for (i = 0; i < d->n_buckets; i++) {
        struct entry **pp = &d->buckets[i], *e;

        while ((e = *pp) != NULL) {
            if (e->ms < cutoff) {
                *pp = e->next;
                free(e);
                d->count--;
            } else {
                pp = &e->next;
            }
        }
    }
    for (n = d->n_buckets; n > BUCKETS_MIN && d->count < n / 8; n /= 4)
        ;
    if (n < BUCKETS_MIN) n = BUCKETS_MIN;
    if (n < d->n_buckets) (void)rehash(d, n);
}

/* ---------------------------------------------------------------- file */

/* Parse "<source> <id> <ms>" into key ("<source> <id>") and *ms. */
static bool parse_line(char *line, char *key, size_t keysz, int64_t *ms)
{
    char *s1, *s2, *end;
    long long v;
    size_t n;

    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    s1 = strchr(line, ' ');
    if (!s1 || s1 == line) return false;
    s2 = strchr(s1 + 1, ' ');
    if (!s2 || s2 == s1 + 1 || strchr(s2 + 1, ' ')) return false;
    errno = 0;
    v = strtoll(s2 + 1, &end, 10);
    if (errno || end == s2 + 1 || *end || v < 0) return false;
    n = (size_t)(s2 - line);
    if (n >= keysz) return false;
    memcpy(key, line, n);
    key[n] = '\0';
    *ms = (int64_t)v;
    return true;
}

/* Load the lines of file younger than cutoff. A missing file is fine. */
static int load_file(struct wk_dedupe *d, const char *file, int64_t cutoff)
{
    FILE *f = fopen(file, "re");
    char line[LINE_MAX_BYTES], key[WK_KEY_MAX];
    int64_t ms;
    int rc = HQ_OK;

    if (!f) return errno == ENOENT ? HQ_OK : HQ_EIO;
    while (fgets(line, sizeof(line), f)) {
        if (!strchr(line, '\n') && !feof(f)) {
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ; /* an overlong line: skip it */
            continue;
        }
        if (!parse_line(line, key, sizeof(key), &ms) || ms < cutoff) continue;
        if ((rc = put(d, key, ms)) != HQ_OK) break;
    }
    fclose(f);
    return rc;
}

/* Rewrite the owned file with the live entries (tmp + fsync + rename) and reopen it for
 * appends. Called with the lock held (or before the ledger is shared). */
static int compact(struct wk_dedupe *d)
{
    char tmp[PATH_MAX + 8];
    char buf[8192];
    size_t i, used = 0;
    int fd, nfd, rc = HQ_OK;
    struct entry *e;

    expire(d, now_ms(d) - (int64_t)d->window_ms);
    snprintf(tmp, sizeof(tmp), "%s.tmp", d->path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return HQ_EIO;
    for (i = 0; i < d->n_buckets && rc == HQ_OK; i++) {
        for (e = d->buckets[i]; e && rc == HQ_OK; e = e->next) {
            int n = snprintf(buf + used, sizeof(buf) - used, "%s %lld\n", e->key, (long long)e->ms);
            if (n < 0 || (size_t)n >= sizeof(buf) - used) {
                rc = hq_write_all(fd, buf, used);
                used = 0;
                n = snprintf(buf, sizeof(buf), "%s %lld\n", e->key, (long long)e->ms);
                if (n < 0 || (size_t)n >= sizeof(buf)) continue;
            }
            used += (size_t)n;
        }
    }
    if (rc == HQ_OK && used) rc = hq_write_all(fd, buf, used);
    if (rc == HQ_OK && fsync(fd) != 0) rc = HQ_EIO;
    close(fd);
    if (rc == HQ_OK && rename(tmp, d->path) != 0) rc = HQ_EIO;
    if (rc != HQ_OK) {
        unlink(tmp);
        return rc;
    }
    if (hq_fsync_dir(d->path, false) != HQ_OK) {
        /* not fatal: the rename reaches the disk with the next fsync at worst */
    }
    nfd = open(d->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (nfd < 0) return HQ_EIO;
    if (d->fd >= 0) close(d->fd);
    d->fd = nfd;
    d->file_lines = d->count;
    d->compact_at = COMPACT_MIN;
    return HQ_OK;
}

int wk_dedupe_open(const char *path, uint64_t window_ms, struct wk_dedupe **out, char *err,
                   size_t errsz)
{
    struct wk_dedupe *d;
    char sib[PATH_MAX + 8];
    int64_t cutoff = hq_now_ms() - (int64_t)window_ms;
    int i, rc;

    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (!d) return HQ_ENOMEM;
    pthread_mutex_init(&d->lock, NULL);
    d->fd = -1;
    d->window_ms = window_ms;
    rc = wk_claim_path(path, d->path, sizeof(d->path), &d->lock_fd, err, errsz);
    if (rc != HQ_OK) goto fail;
    /* everything recorded on this host: path and its .N siblings */
    for (i = 0; i <= CLAIM_MAX; i++) {
        if (i == 0)
            snprintf(sib, sizeof(sib), "%s", path);
        else
            snprintf(sib, sizeof(sib), "%s.%d", path, i);
        rc = load_file(d, sib, cutoff);
        if (rc != HQ_OK) {
            snprintf(err, errsz, "%s: cannot read: %s", sib,
                     rc == HQ_EIO ? strerror(errno) : hq_strerror(rc));
            goto fail;
        }
    }
    rc = compact(d);
    if (rc != HQ_OK) {
        snprintf(err, errsz, "%s: cannot rewrite: %s", d->path, strerror(errno));
        goto fail;
    }
    *out = d;
    return HQ_OK;
fail:
    wk_dedupe_close(d);
    return rc;
}

bool wk_dedupe_seen(struct wk_dedupe *d, const char *source, const char *id)
{
    char key[WK_KEY_MAX];
    struct entry *e;
    bool seen = false;

    if (!d || !wk_ledger_key(source, id, key, sizeof(key))) return false;
    pthread_mutex_lock(&d->lock);
    e = find(d, key, fnv1a(key));
    if (e && e->ms >= now_ms(d) - (int64_t)d->window_ms) seen = true;
    pthread_mutex_unlock(&d->lock);
    return seen;
}

int wk_dedupe_record(struct wk_dedupe *d, const char *source, const char *id)
{
    char key[WK_KEY_MAX], line[WK_KEY_MAX + 32];
    int64_t now;
    int n, rc;

    if (!d) return HQ_EINVAL;
    now = now_ms(d);
    if (!wk_ledger_key(source, id, key, sizeof(key))) return HQ_EINVAL;
    n = snprintf(line, sizeof(line), "%s %lld\n", key, (long long)now);
    if (n < 0 || (size_t)n >= sizeof(line)) return HQ_ETOOBIG;
    pthread_mutex_lock(&d->lock);
    rc = hq_write_all(d->fd, line, (size_t)n);
    if (rc == HQ_OK && fdatasync(d->fd) != 0) rc = HQ_EIO;
    if (rc == HQ_OK) {
        d->file_lines++;
        rc = put(d, key, now);
    }
    if (now >= d->next_sweep_ms) {
        expire(d, now - (int64_t)d->window_ms);
        d->next_sweep_ms = now + sweep_every_ms(d);
    }
    /* expired and superseded lines outnumber the live ones: rewrite the file */
    if (d->file_lines >= d->compact_at && d->file_lines - d->count > d->count) {
        if (compact(d) != HQ_OK)
            d->compact_at = d->file_lines + COMPACT_MIN; /* keep appending; try again later */
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void wk_dedupe_set_clock(struct wk_dedupe *d, int64_t (*now)(void))
{
    if (!d) return;
    pthread_mutex_lock(&d->lock);
    d->now = now;
    d->next_sweep_ms = 0;
    pthread_mutex_unlock(&d->lock);
}

size_t wk_dedupe_file_lines(struct wk_dedupe *d)
{
    size_t n;

    if (!d) return 0;
    pthread_mutex_lock(&d->lock);
    n = d->file_lines;
    pthread_mutex_unlock(&d->lock);
    return n;
}

const char *wk_dedupe_path(const struct wk_dedupe *d)
{
    return d ? d->path : "";
}

size_t wk_dedupe_count(struct wk_dedupe *d)
{
    size_t n;

    if (!d) return 0;
    pthread_mutex_lock(&d->lock);
    n = d->count;
    pthread_mutex_unlock(&d->lock);
    return n;
}

void wk_dedupe_close(struct wk_dedupe *d)
{
    size_t i;
    struct entry *e, *next;

    if (!d) return;
    for (i = 0; i < d->n_buckets; i++) {
        for (e = d->buckets[i]; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(d->buckets);
    if (d->fd >= 0) close(d->fd);
    if (d->lock_fd >= 0) close(d->lock_fd);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
