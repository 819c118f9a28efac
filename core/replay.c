/* replay: the broker-free logic of hookmq-replay (hq_replay.h): topic matching, command
 * line, replay id, event keys, key set, checkpoint file, message rewrite, token bucket. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hq__amqp.h"
#include "hq__archive.h"
#include "hq_fs.h"
#include "hq_amqp.h"
#include "hq_codec.h"
#include "hq_consume.h"
#include "hq_json.h"
#include "hq_replay.h"
#include "hq_time.h"

/* ================================================================ topic matching */

/* Words are addressed by the byte offset where they start; len + 1 is "past the last word".
 * "" has no words; otherwise every '.' separates two (possibly empty) words. */
static size_t word_first(size_t len)
{
    return len == 0 ? 1 : 0;
}

static size_t word_len(const char *s, size_t len, size_t o)
{
    const char *d = memchr(s + o, '.', len - o);

    return d ? (size_t)(d - (s + o)) : len - o;
}

static size_t word_next(const char *s, size_t len, size_t o)
{
    size_t n = word_len(s, len, o);

    return o + n < len ? o + n + 1 : len + 1;
}

static bool word_is(const char *s, size_t len, size_t o, char c)
{
    return word_len(s, len, o) == 1 && s[o] == c;
}

bool hq_topic_match(const char *pattern, const char *routing_key)
{
    size_t plen, klen, p, k, star_p = 0, star_k = 0;
    bool have_star = false;

    if (!pattern || !routing_key)
        return false;
    plen = strlen(pattern);
    klen = strlen(routing_key);
    p = word_first(plen);
    k = word_first(klen);
    /* Glob matching over words ('#' = any run of words, '*' = one word), backtracking only
     * to the last '#' seen: correct for this pattern language and linear in practice. */
    while (k <= klen) {
        if (p <= plen && !word_is(pattern, plen, p, '#')) {
            size_t pw = word_len(pattern, plen, p), kw = word_len(routing_key, klen, k);

            if ((pw == 1 && pattern[p] == '*') ||
                (pw == kw && memcmp(pattern + p, routing_key + k, pw) == 0)) {
                p = word_next(pattern, plen, p);
                k = word_next(routing_key, klen, k);
                continue;
            }
        } else if (p <= plen) { /* '#' */
            have_star = true;
            star_p = word_next(pattern, plen, p);
            star_k = k;
            p = star_p;
            continue;
        }
        if (!have_star)
            return false;
        /* let the last '#' swallow one more word and retry from there */
        star_k = word_next(routing_key, klen, star_k);
        k = star_k;
        p = star_p;
    }
    while (p <= plen && word_is(pattern, plen, p, '#'))
        p = word_next(pattern, plen, p);
    return p > plen;
}

/* ================================================================ what to replay */

void hq_replay_opts_init(struct hq_replay_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->from_ms = INT64_MIN;
    o->to_ms = INT64_MAX;
    o->window = HQ_REPLAY_WINDOW_DEFAULT;
}

int hq_replay_set_time(struct hq_replay_opts *o, bool to, const char *text, int64_t now_ms)
{
    int64_t ms;
    bool rel;

    if (!o || !text || hq_time_parse(text, now_ms, &ms) != HQ_OK)
        return HQ_EINVAL;
    rel = text[0] == '-' || strcmp(text, "now") == 0;
    if (to) {
        o->to_text = text;
        o->to_ms = ms;
        o->to_relative = rel;
    } else {
        o->from_text = text;
        o->from_ms = ms;
        o->from_relative = rel;
    }
    return HQ_OK;
}

static int spec_str(struct hq_buf *b, const char *key, const char *v)
{
    int rc;

    if (!v)
        return hq_buf_appendf(b, "%s=-\n", key);
    if ((rc = hq_buf_appendf(b, "%s=%zu:", key, strlen(v))) != HQ_OK ||
        (rc = hq_buf_append(b, v, strlen(v))) != HQ_OK)
        return rc;
    return hq_buf_append(b, "\n", 1);
}

static int spec_time(struct hq_buf *b, const char *key, const char *text, bool rel, int64_t ms)
{
    if (!text)
        return hq_buf_appendf(b, "%s=-\n", key);
    if (rel)
        return hq_buf_appendf(b, "%s=rel:%zu:%s\n", key, strlen(text), text);
    return hq_buf_appendf(b, "%s=ms:%lld\n", key, (long long)ms);
}

int hq_replay_spec(const struct hq_replay_opts *o, struct hq_buf *out)
{
    int rc;

    if (!o || !out)
        return HQ_EINVAL;
    if ((rc = hq_buf_appendf(out, "hookmq-replay spec 1\n")) != HQ_OK ||
        (rc = spec_time(out, "from", o->from_text, o->from_relative, o->from_ms)) != HQ_OK ||
        (rc = spec_time(out, "to", o->to_text, o->to_relative, o->to_ms)) != HQ_OK ||
        (rc = spec_str(out, "source", o->source)) != HQ_OK ||
        (rc = spec_str(out, "type", o->type_glob)) != HQ_OK ||
        (rc = spec_str(out, "id", o->id)) != HQ_OK ||
        (rc = spec_str(out, "grep", o->grep)) != HQ_OK)
        return rc;
    if (o->target == HQ_REPLAY_TARGET_CONSUMER)
        rc = spec_str(out, "target=consumer", o->consumer);
    else if (o->target == HQ_REPLAY_TARGET_EXCHANGE)
        rc = hq_buf_appendf(out, "target=exchange\n");
    else
        rc = HQ_EINVAL;
    if (rc != HQ_OK)
        return rc;
    return hq_buf_appendf(out, "ignore_bindings=%d\n", o->ignore_bindings ? 1 : 0);
}

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256; /* fetched once, never freed (reachable until exit) */

static void md_init(void)
{
    md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void sha256(const void *p1, size_t n1, const void *p2, size_t n2, unsigned char out[32])
{
    EVP_MD_CTX *ctx;
    unsigned int outl = 0;
    int ok;

    pthread_once(&md_once, md_init);
    ctx = EVP_MD_CTX_new();
    ok = ctx && md_sha256 && EVP_DigestInit_ex(ctx, md_sha256, NULL) &&
         (!n1 || EVP_DigestUpdate(ctx, p1, n1)) && (!n2 || EVP_DigestUpdate(ctx, p2, n2)) &&
         EVP_DigestFinal_ex(ctx, out, &outl) && outl == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        /* OpenSSL without SHA-256 cannot happen on a supported system; fail loudly rather
         * than silently collapse keys. */
        fprintf(stderr, "hookmq: SHA-256 unavailable\n");
        abort();
    }
}

void hq_replay_id(const unsigned char *spec, size_t n, char out[HQ_REPLAY_ID_LEN + 1],
                  char *full65)
{
    unsigned char d[32];

    sha256(spec, n, NULL, 0, d);
    memcpy(out, "rpl-", 4);
    hq_hex_encode(d, 8, out + 4);
    if (full65)
        hq_hex_encode(d, 32, full65);
}

/* ================================================================ event keys */

void hq_replay_key(const char *source, const char *id, struct hq_rkey *out)
{
    unsigned char d[32];

    source = source ? source : "";
    id = id ? id : "";
    /* source names never contain NUL: "source\0id" is unambiguous */
    sha256(source, strlen(source) + 1, id, strlen(id), d);
    memcpy(out->b, d, sizeof(out->b));
}

struct hq_rset {
    struct hq_rkey *keys;
    unsigned char *flags; /* 0 = empty slot */
    size_t cap;           /* power of two */
    size_t n;
};

int hq_rset_new(struct hq_rset **out)
{
    struct hq_rset *s;

    if (!out)
        return HQ_EINVAL;
    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return HQ_ENOMEM;
    s->cap = 1024;
    s->keys = calloc(s->cap, sizeof(*s->keys));
    s->flags = calloc(s->cap, 1);
    if (!s->keys || !s->flags) {
        hq_rset_free(s);
        return HQ_ENOMEM;
    }
    *out = s;
    return HQ_OK;
}

void hq_rset_free(struct hq_rset *s)
{
    if (!s)
        return;
    free(s->keys);
    free(s->flags);
    free(s);
}

static size_t slot_of(const struct hq_rkey *k, size_t cap)
{
    uint64_t h;

    memcpy(&h, k->b, sizeof(h)); /* already uniformly distributed (SHA-256) */
    return (size_t)(h & (cap - 1));
}

static size_t find_slot(const struct hq_rkey *keys, const unsigned char *flags, size_t cap,
                        const struct hq_rkey *k)
{
    size_t i = slot_of(k, cap);

    while (flags[i] && memcmp(keys[i].b, k->b, sizeof(k->b)) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

static int grow(struct hq_rset *s)
{
    size_t nc = s->cap * 2, i;
    struct hq_rkey *nk;
    unsigned char *nf;

    if (nc < s->cap || nc > SIZE_MAX / sizeof(*nk))
        return HQ_ENOMEM;
    nk = calloc(nc, sizeof(*nk));
    nf = calloc(nc, 1);
    if (!nk || !nf) {
        free(nk);
        free(nf);
        return HQ_ENOMEM;
    }
    for (i = 0; i < s->cap; i++) {
        if (s->flags[i]) {
            size_t j = find_slot(nk, nf, nc, &s->keys[i]);

            nk[j] = s->keys[i];
            nf[j] = s->flags[i];
        }
    }
    free(s->keys);
    free(s->flags);
    s->keys = nk;
    s->flags = nf;
    s->cap = nc;
    return HQ_OK;
}

int hq_rset_add(struct hq_rset *s, const struct hq_rkey *k, unsigned char add, unsigned char *old)
{
    size_t i;

    if (!s || !k || !add)
        return HQ_EINVAL;
    if ((s->n + 1) * 2 > s->cap) {
        int rc = grow(s);

        if (rc != HQ_OK)
            return rc;
    }
    i = find_slot(s->keys, s->flags, s->cap, k);
    if (old)
        *old = s->flags[i];
    if (!s->flags[i]) {
        s->keys[i] = *k;
        s->n++;
    }
    s->flags[i] |= add;
    return HQ_OK;
}

unsigned char hq_rset_get(const struct hq_rset *s, const struct hq_rkey *k)
{
    if (!s || !k)
        return 0;
    return s->flags[find_slot(s->keys, s->flags, s->cap, k)];
}

size_t hq_rset_count(const struct hq_rset *s)
{
    return s ? s->n : 0;
}

/* ================================================================ checkpoint */

#define CKPT_MAGIC "hookmq-replay checkpoint 1"
#define CKPT_HEADER_MAX (64 * 1024)

struct hq_rckpt {
    int fd;
    struct hq_buf pending;
    uint64_t unsynced;
    int64_t last_sync_ms;
    bool io_failed;
};

static int unhex(const char *s, size_t n, unsigned char *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        int v[2], j;

        for (j = 0; j < 2; j++) {
            char c = s[2 * i + (size_t)j];

            if (c >= '0' && c <= '9')
                v[j] = c - '0';
            else if (c >= 'a' && c <= 'f')
                v[j] = c - 'a' + 10;
            else
                return HQ_EINVAL;
        }
        out[i] = (unsigned char)(v[0] << 4 | v[1]);
    }
    return HQ_OK;
}

static bool parse_i64(const char *s, size_t n, int64_t *out)
{
    char tmp[32], *end = NULL;
    long long v;

    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (!(tmp[0] == '-' || (tmp[0] >= '0' && tmp[0] <= '9')))
        return false;
    errno = 0;
    v = strtoll(tmp, &end, 10);
    if (errno || !end || *end)
        return false;
    *out = (int64_t)v;
    return true;
}

/* "a b" (two integers separated by one space) */
static bool parse_pair(const char *s, size_t n, int64_t *a, int64_t *b)
{
    const char *sp = memchr(s, ' ', n);

    return sp && parse_i64(s, (size_t)(sp - s), a) &&
           parse_i64(sp + 1, n - (size_t)(sp - s) - 1, b);
}

static bool starts(const char *line, size_t n, const char *pfx)
{
    size_t k = strlen(pfx);

    return n >= k && memcmp(line, pfx, k) == 0;
}

/* One complete line (without '\n'). Header lines are required before any "c" line. */
static int ckpt_line(const char *line, size_t n, struct hq_rckpt_info *info, unsigned *have,
                     struct hq_rset *set, unsigned char flag)
{
    int64_t a, b;

    if (*have == 0) {
        if (n == strlen(CKPT_MAGIC) && memcmp(line, CKPT_MAGIC, n) == 0) {
            *have |= 1;
            return HQ_OK;
        }
        return HQ_EINVAL;
    }
    if (n == 2 + 32 && line[0] == 'c' && line[1] == ' ') {
        struct hq_rkey k;

        if (unhex(line + 2, 16, k.b) != HQ_OK) {
            info->torn++;
            return HQ_OK;
        }
        info->confirmed++;
        return set ? hq_rset_add(set, &k, flag, NULL) : HQ_OK;
    }
    if (starts(line, n, "id ") && n - 3 == HQ_REPLAY_ID_LEN) {
        memcpy(info->id, line + 3, HQ_REPLAY_ID_LEN);
        info->id[HQ_REPLAY_ID_LEN] = '\0';
        *have |= 2;
    } else if (starts(line, n, "spec ") && n - 5 == 64) {
        memcpy(info->spec_sha, line + 5, 64);
        info->spec_sha[64] = '\0';
        *have |= 4;
    } else if (starts(line, n, "window ") && parse_pair(line + 7, n - 7, &a, &b)) {
        info->from_ms = a;
        info->to_ms = b;
        *have |= 8;
    } else if (starts(line, n, "started ") && parse_i64(line + 8, n - 8, &a)) {
        info->started_ms = a;
    } else if (starts(line, n, "about ")) {
        /* for people only */
    } else if (starts(line, n, "done ") && parse_pair(line + 5, n - 5, &a, &b) && a >= 0) {
        info->done = true;
        info->done_events = (uint64_t)a;
        info->done_ms = b;
    } else {
        info->torn++;
    }
    return HQ_OK;
}

int hq_rckpt_load(const char *path, struct hq_rckpt_info *info, struct hq_rset *set,
                  unsigned char flag)
{
    /* on the heap: the console loads checkpoints on CivetWeb's threads, whose stacks are
     * small (an ASan build overflowed one with this buffer on the stack) */
    enum { READ_SIZE = 64 * 1024 };
    char *buf;
    struct hq_buf line = HQ_BUF_INIT(CKPT_HEADER_MAX);
    unsigned have = 0;
    int fd, rc = HQ_OK;
    bool overlong = false;

    if (!path || !info)
        return HQ_EINVAL;
    memset(info, 0, sizeof(*info));
    if (!(buf = malloc(READ_SIZE)))
        return HQ_ENOMEM;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;

        free(buf);
        return e == ENOENT ? HQ_ENOTFOUND : HQ_EIO;
    }
    for (;;) {
        ssize_t r = read(fd, buf, READ_SIZE);
        const char *p = buf, *end;

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = HQ_EIO;
            goto out;
        }
        if (r == 0)
            break;
        end = buf + r;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t k = nl ? (size_t)(nl - p) : (size_t)(end - p);

            if (!overlong && hq_buf_append(&line, p, k) != HQ_OK) {
                overlong = true; /* a line this long is not ours: ignore it */
                hq_buf_reset(&line);
            }
            if (!nl)
                break;
            if (overlong) {
                info->torn++;
                overlong = false;
            } else {
                rc = ckpt_line((const char *)line.data, line.len, info, &have, set, flag);
                if (rc != HQ_OK)
                    goto out;
            }
            hq_buf_reset(&line);
            p = nl + 1;
        }
    }
    if (line.len || overlong) /* torn last line (no '\n'): not a record */
        info->torn++;
    if (have != 15)
        rc = HQ_EINVAL;
out:
    hq_buf_free(&line);
    close(fd);
    free(buf);
    return rc;
}

static int ckpt_new(int fd, struct hq_rckpt **out)
{
    struct hq_rckpt *c = calloc(1, sizeof(*c));
    struct hq_buf b = HQ_BUF_INIT(1u << 20);

    if (!c)
        return HQ_ENOMEM;
    c->fd = fd;
    c->pending = b;
    c->last_sync_ms = hq_mono_ms();
    *out = c;
    return HQ_OK;
}

/* mkdir -p of the directory path is in (nothing when path has no directory part). */
static int mkdir_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n;

    if (!slash || slash == path)
        return HQ_OK;
    n = (size_t)(slash - path);
    if (n >= sizeof(dir))
        return HQ_EINVAL;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return hq_mkdirs(dir);
}

int hq_rckpt_create(const char *path, const struct hq_rckpt_info *info, const char *about,
                    struct hq_rckpt **out)
{
    struct hq_buf b = HQ_BUF_INIT(CKPT_HEADER_MAX);
    char tmp[PATH_MAX];
    int fd = -1, rc;

    if (!path || !info || !out)
        return HQ_EINVAL;
    *out = NULL;
    if ((rc = mkdir_parent(path)) != HQ_OK)
        return rc;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return HQ_EINVAL;
    rc = hq_buf_appendf(&b, CKPT_MAGIC "\nid %s\nspec %s\nwindow %lld %lld\nstarted %lld\n",
                        info->id, info->spec_sha, (long long)info->from_ms,
                        (long long)info->to_ms, (long long)info->started_ms);
    if (rc == HQ_OK && about) {
        size_t n = strlen(about);

        if (n > 2048)
            n = 2048;
        if ((rc = hq_buf_append(&b, "about \"", 7)) == HQ_OK &&
            (rc = hq_buf_append_json_str(&b, about, n)) == HQ_OK)
            rc = hq_buf_append(&b, "\"\n", 2);
    }
    if (rc != HQ_OK)
        goto out;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        rc = HQ_EIO;
        goto out;
    }
    if ((rc = hq_write_all(fd, b.data, b.len)) != HQ_OK)
        goto out;
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        rc = HQ_EIO;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = HQ_EIO;
        goto out;
    }
    if ((rc = hq_fsync_dir(path, false)) != HQ_OK)
        goto out;
    rc = hq_rckpt_open(path, out);
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    hq_buf_free(&b);
    return rc;
}

int hq_rckpt_open(const char *path, struct hq_rckpt **out)
{
    struct stat st;
    int fd, rc;

    if (!path || !out)
        return HQ_EINVAL;
    *out = NULL;
    fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? HQ_ENOTFOUND : HQ_EIO;
    if (fstat(fd, &st) != 0)
        goto fail;
    if (st.st_size > 0) {
        char last;

        if (pread(fd, &last, 1, st.st_size - 1) != 1)
            goto fail;
        if (last != '\n' && hq_write_all(fd, "\n", 1) != HQ_OK) /* end a torn line */
            goto fail;
    }
    rc = ckpt_new(fd, out);
    if (rc != HQ_OK)
        close(fd);
    return rc;
fail:
    close(fd);
    return HQ_EIO;
}

int hq_rckpt_add(struct hq_rckpt *c, const struct hq_rkey *k)
{
    char line[2 + 32 + 2];
    int rc;

    if (!c || !k)
        return HQ_EINVAL;
    line[0] = 'c';
    line[1] = ' ';
    hq_hex_encode(k->b, 16, line + 2);
    line[34] = '\n';
    rc = hq_buf_append(&c->pending, line, 35);
    if (rc == HQ_ETOOBIG) { /* write out and retry */
        rc = hq_rckpt_flush(c, false, hq_mono_ms());
        if (rc == HQ_OK)
            rc = hq_buf_append(&c->pending, line, 35);
    }
    if (rc == HQ_OK)
        c->unsynced++;
    return rc;
}

int hq_rckpt_flush(struct hq_rckpt *c, bool sync, int64_t now_ms)
{
    if (!c)
        return HQ_EINVAL;
    if (c->io_failed)
        return HQ_EIO;
    if (c->pending.len) {
        if (hq_write_all(c->fd, c->pending.data, c->pending.len) != HQ_OK) {
            c->io_failed = true;
            return HQ_EIO;
        }
        hq_buf_reset(&c->pending);
    }
    if (sync || c->unsynced >= HQ_RCKPT_SYNC_EVERY ||
        (c->unsynced && now_ms - c->last_sync_ms >= HQ_RCKPT_SYNC_MS)) {
        if (fdatasync(c->fd) != 0) {
            c->io_failed = true;
            return HQ_EIO;
        }
        c->unsynced = 0;
        c->last_sync_ms = now_ms;
    }
    return HQ_OK;
}

int hq_rckpt_mark_done(struct hq_rckpt *c, uint64_t events, int64_t at_ms)
{
    char line[96];
    int rc, n;

    if (!c)
        return HQ_EINVAL;
    rc = hq_rckpt_flush(c, false, hq_mono_ms());
    if (rc != HQ_OK)
        return rc;
    n = snprintf(line, sizeof(line), "done %llu %lld\n", (unsigned long long)events,
                 (long long)at_ms);
    if (hq_write_all(c->fd, line, (size_t)n) != HQ_OK || fsync(c->fd) != 0) {
        c->io_failed = true;
        return HQ_EIO;
    }
    c->unsynced = 0;
    return HQ_OK;
}

int hq_rckpt_close(struct hq_rckpt *c)
{
    int rc;

    if (!c)
        return HQ_OK;
    rc = hq_rckpt_flush(c, true, hq_mono_ms());
    if (close(c->fd) != 0 && rc == HQ_OK)
        rc = HQ_EIO;
    hq_buf_free(&c->pending);
    free(c);
    return rc;
}

int hq_rckpt_lock(const char *path, int *fd)
{
    int f, rc;

    if (!path || !fd)
        return HQ_EINVAL;
    *fd = -1;
    if ((rc = mkdir_parent(path)) != HQ_OK)
        return rc == HQ_EINVAL ? rc : HQ_EIO;
    f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (f < 0)
        return HQ_EIO;
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;

        close(f);
        return e == EWOULDBLOCK ? HQ_EBLOCKED : HQ_EIO;
    }
    *fd = f;
    return HQ_OK;
}

/* ================================================================ the copy */

static void drop_headers(struct hq_msg *m, bool reset_attempt)
{
    size_t i, j = 0;

    for (i = 0; i < m->n_headers; i++) {
        struct hq_hdr *h = &m->headers[i];
        bool drop = !h->key || hq_header_broker_owned(h->key) ||
                    strcmp(h->key, "hookmq-replay-id") == 0 ||
                    strcmp(h->key, "hookmq-replayed-at") == 0 ||
                    strcmp(h->key, "hookmq-steps") == 0 || /* a replay starts fresh */
                    (reset_attempt && strcmp(h->key, "hookmq-attempt") == 0);

        if (drop) {
            free(h->key);
            free(h->str);
            continue;
        }
        if (j != i)
            m->headers[j] = *h;
        j++;
    }
    m->n_headers = j;
}

int hq_replay_prepare_msg(struct hq_msg *m, const char *replay_id, int64_t now_ms,
                          bool reset_attempt)
{
    int rc;

    if (!m || !replay_id)
        return HQ_EINVAL;
    drop_headers(m, reset_attempt);
    if (reset_attempt && (rc = hq_msg_add_long(m, "hookmq-attempt", 1)) != HQ_OK)
        return rc;
    if ((rc = hq_msg_add_str(m, "hookmq-replay-id", replay_id)) != HQ_OK)
        return rc;
    return hq_msg_add_long(m, "hookmq-replayed-at", now_ms);
}

/* ================================================================ rate */

void hq_tbucket_init(struct hq_tbucket *b, double rate, double burst, double now_s)
{
    b->rate = rate;
    b->burst = burst >= 1 ? burst : 1;
    b->tokens = 1; /* the first event goes at once; the rest are paced */
    b->last_s = now_s;
}

double hq_tbucket_take(struct hq_tbucket *b, double now_s)
{
    if (b->rate <= 0)
        return 0;
    if (now_s > b->last_s) {
        b->tokens += (now_s - b->last_s) * b->rate;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last_s = now_s;
    }
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return 0;
    }
    return (1 - b->tokens) / b->rate;
}

/* ================================================================ bursts */

void hq_replay_cork(struct hq_amqp *c, bool on)
{
    int fd = hq__amqp_fd(c), v = on ? 1 : 0;

    if (fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &v, sizeof(v));
}
