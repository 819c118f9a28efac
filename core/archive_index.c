/* archive_index: compression of closed archive segments into independent zstd frames, their
 * index (format in hq__archive.h), start-up recovery and keep_days retention.
 *
 * Crash safety of hq_archive_compress: the .jsonl stays until the .jsonl.zst and .idx are
 * complete and durable. Both are written under temporary names, fsync'd and renamed (.idx
 * first, .jsonl.zst last), the directory is fsync'd, and only then is the .jsonl deleted. A
 * crash at any point leaves either the .jsonl (compressed again on the next start; temporary
 * files are removed) or a complete .jsonl.zst (a leftover .jsonl is then just deleted). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <zstd.h>

#include "hq__archive.h"
#include "hq_codec.h"
#include "hq_json.h"
#include "hq_log.h"

#define ZSTD_LEVEL 3
#define READ_CHUNK (4u << 20)

/* ================================================================== counts map */

struct cmap {
    struct hq__acount *v;
    size_t n, cap;
    size_t *slots; /* index + 1; 0 empty */
    size_t nslots;
};

static uint64_t count_hash(int64_t hour, enum hq_arec_kind kind, const char *source,
                           const char *type)
{
    uint64_t h = hq_murmur64a((uint64_t)hour ^ ((uint64_t)kind << 56), source, strlen(source));

    return hq_murmur64a(h, type, strlen(type));
}

static uint64_t cmap_entry_hash(const void *arg, size_t i)
{
    const struct hq__acount *c = &((const struct cmap *)arg)->v[i];

    return count_hash(c->hour_ms, c->kind, c->source, c->type);
}

/* The entry for the key, created with zero counts. NULL on ENOMEM. */
static struct hq__acount *cmap_get(struct cmap *m, int64_t hour, enum hq_arec_kind kind,
                                   const char *source, const char *type)
{
    size_t j;

    if (hq__aslots_reserve(&m->slots, &m->nslots, m->n, cmap_entry_hash, m) != HQ_OK)
        return NULL;
    for (j = (size_t)count_hash(hour, kind, source, type) & (m->nslots - 1); m->slots[j];
         j = (j + 1) & (m->nslots - 1)) {
        struct hq__acount *c = &m->v[m->slots[j] - 1];

        if (c->hour_ms == hour && c->kind == kind && strcmp(c->source, source) == 0 &&
            strcmp(c->type, type) == 0)
            return c;
    }
    {
        struct hq__acount *c, *nv = hq_array_grow(m->v, &m->cap, m->n, sizeof(*nv), 64);

        if (!nv)
            return NULL;
        m->v = nv;
        c = &m->v[m->n];

        memset(c, 0, sizeof(*c));
        c->hour_ms = hour;
        c->kind = kind;
        c->source = strdup(source);
        c->type = strdup(type);
        if (!c->source || !c->type) {
            free(c->source);
            free(c->type);
            return NULL;
        }
        m->slots[j] = ++m->n;
        return c;
    }
}

static void cmap_free(struct cmap *m)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        free(m->v[i].source);
        free(m->v[i].type);
    }
    free(m->v);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static int count_cmp(const void *a, const void *b)
{
    const struct hq__acount *x = a, *y = b;
    int c;

    if (x->hour_ms != y->hour_ms)
        return x->hour_ms < y->hour_ms ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if ((c = strcmp(x->source, y->source)) != 0)
        return c;
    return strcmp(x->type, y->type);
}

/* ================================================================== building */

struct idpair {
    uint64_t hash;
    uint32_t frame;
};

static int idpair_cmp(const void *a, const void *b)
{
    const struct idpair *x = a, *y = b;

    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->frame < y->frame ? -1 : x->frame > y->frame;
}

struct builder {
    struct hq__aidx x;
    struct cmap counts;
    struct hq__hset seen;
    struct idpair *ids;
    size_t n_ids, cap_ids;
    size_t cap_frames;
    struct hq__aframe cur; /* the frame being filled */
    int rc;
};

static int add_id(struct builder *b, const char *id, uint32_t frame)
{
    struct idpair *n = hq_array_grow(b->ids, &b->cap_ids, b->n_ids, sizeof(*n), 4096);

    if (!n)
        return HQ_ENOMEM;
    b->ids = n;
    b->ids[b->n_ids].hash = hq_murmur64a(0, id, strlen(id));
    b->ids[b->n_ids].frame = frame;
    b->n_ids++;
    return HQ_OK;
}

/* Account one line of the frame being built. */
static int index_line(void *arg, const char *line, size_t len)
{
    struct builder *b = arg;
    struct hq_arec r;
    struct hq__acount *c;
    bool added = true;
    int rc;

    if (len == 0)
        return 0;
    rc = hq_arec_parse(line, len, &r);
    if (rc == HQ_ENOMEM) {
        b->rc = rc;
        return 1;
    }
    if (rc != HQ_OK) {
        b->cur.invalid++;
        b->x.invalid++;
        return 0;
    }
    b->x.records++;
    b->cur.records++;
    if (r.kind == HQ_AREC_EVENT)
        b->x.events++;
    else if (r.kind == HQ_AREC_LIFECYCLE)
        b->x.lifecycle++;
    else
        b->x.trace++;
    if (!b->x.has_range || r.received_at < b->x.min_at)
        b->x.min_at = r.received_at;
    if (!b->x.has_range || r.received_at > b->x.max_at)
        b->x.max_at = r.received_at;
    b->x.has_range = true;
    if (b->cur.records == 1 || r.received_at < b->cur.min_at)
        b->cur.min_at = r.received_at;
    if (b->cur.records == 1 || r.received_at > b->cur.max_at)
        b->cur.max_at = r.received_at;
    if (r.id[0]) {
        rc = add_id(b, r.id, b->x.n_frames);
        if (rc == HQ_OK && r.kind == HQ_AREC_EVENT)
            rc = hq__hset_add(&b->seen, r.source, r.id, &added);
        if (rc != HQ_OK) {
            b->rc = rc;
            hq_arec_free(&r);
            return 1;
        }
    }
    c = cmap_get(&b->counts, hq_hour_start(r.received_at), r.kind, r.source, r.type);
    if (!c) {
        b->rc = HQ_ENOMEM;
        hq_arec_free(&r);
        return 1;
    }
    c->n++;
    if (!added)
        c->dup++;
    hq_arec_free(&r);
    return 0;
}

/* Compress and write the frame in fb, account it. */
static int flush_frame(struct builder *b, ZSTD_CCtx *cctx, struct hq_buf *fb, struct hq_buf *cb,
                       int zfd, uint64_t *offset)
{
    struct hq__aframe *nf;
    size_t bound, csize;
    int rc;

    if (fb->len == 0)
        return HQ_OK;
    bound = ZSTD_compressBound(fb->len);
    if (cb->alloc < bound) {
        unsigned char *n = realloc(cb->data, bound);

        if (!n)
            return HQ_ENOMEM;
        cb->data = n;
        cb->alloc = bound;
    }
    csize = ZSTD_compress2(cctx, cb->data, bound, fb->data, fb->len);
    if (ZSTD_isError(csize)) {
        hq_error("zstd compression failed", "error=\"%s\"", ZSTD_getErrorName(csize));
        return HQ_EIO;
    }
    if ((rc = hq_write_all(zfd, cb->data, csize)) != HQ_OK)
        return rc;
    nf = hq_array_grow(b->x.frames, &b->cap_frames, b->x.n_frames, sizeof(*nf), 64);
    if (!nf)
        return HQ_ENOMEM;
    b->x.frames = nf;
    b->cur.offset = *offset;
    b->cur.csize = csize;
    b->cur.usize = fb->len;
    if (!b->cur.records)
        b->cur.min_at = b->cur.max_at = 0;
    b->x.frames[b->x.n_frames++] = b->cur;
    *offset += csize;
    memset(&b->cur, 0, sizeof(b->cur));
    hq_buf_reset(fb);
    return HQ_OK;
}

/* The index file for b (header line + binary + checksum) into out. */
static int index_bytes(struct builder *b, struct hq_buf *out)
{
    unsigned char fixed[HQ__AIDX_FIXED_BYTES], rec[HQ__AIDX_FRAME_BYTES], sum[8];
    size_t i, n_unique = 0;
    int rc;

    /* ids: sorted, unique (hash, frame) */
    if (b->n_ids)
        qsort(b->ids, b->n_ids, sizeof(*b->ids), idpair_cmp);
    for (i = 0; i < b->n_ids; i++)
        if (n_unique == 0 || idpair_cmp(&b->ids[i], &b->ids[n_unique - 1]) != 0)
            b->ids[n_unique++] = b->ids[i];
    b->n_ids = n_unique;
    if (b->counts.n)
        qsort(b->counts.v, b->counts.n, sizeof(*b->counts.v), count_cmp);

    rc = hq_buf_appendf(out,
                        "{\"v\":%u,\"records\":%llu,\"events\":%llu,\"lifecycle\":%llu,"
                        "\"trace\":%llu,\"invalid\":%llu",
                        HQ__AIDX_VERSION, (unsigned long long)b->x.records,
                        (unsigned long long)b->x.events, (unsigned long long)b->x.lifecycle,
                        (unsigned long long)b->x.trace, (unsigned long long)b->x.invalid);
    if (rc == HQ_OK && b->x.has_range)
        rc = hq_buf_appendf(out, ",\"min_received_at\":%lld,\"max_received_at\":%lld",
                            (long long)b->x.min_at, (long long)b->x.max_at);
    if (rc == HQ_OK)
        rc = hq_buf_appendf(out, ",\"frames\":%u,\"ids\":%zu,\"counts\":[", b->x.n_frames,
                            b->n_ids);
    for (i = 0; rc == HQ_OK && i < b->counts.n; i++) {
        const struct hq__acount *c = &b->counts.v[i];
        static const char *const kinds[] = {"event", "lifecycle", "trace"};

        rc = hq_buf_appendf(out, "%s{\"hour\":%lld,\"kind\":\"%s\",\"source\":", i ? "," : "",
                            (long long)c->hour_ms, kinds[c->kind]);
        if (rc == HQ_OK)
            rc = hq_json_str(out, c->source, strlen(c->source));
        if (rc == HQ_OK)
            rc = hq_buf_append(out, ",\"type\":", 8);
        if (rc == HQ_OK)
            rc = hq_json_str(out, c->type, strlen(c->type));
        if (rc == HQ_OK)
            rc = hq_buf_appendf(out, ",\"n\":%llu,\"dup\":%llu}", (unsigned long long)c->n,
                                (unsigned long long)c->dup);
    }
    if (rc == HQ_OK)
        rc = hq_buf_append(out, "]}\n", 3);
    if (rc == HQ_OK && out->len > HQ__AIDX_HEADER_MAX)
        rc = HQ_ETOOBIG;

    memcpy(fixed, HQ__AIDX_MAGIC, 4);
    hq_put_le32(fixed + 4, HQ__AIDX_VERSION);
    hq_put_le32(fixed + 8, b->x.n_frames);
    hq_put_le32(fixed + 12, 0);
    hq_put_le64(fixed + 16, b->n_ids);
    if (rc == HQ_OK)
        rc = hq_buf_append(out, fixed, sizeof(fixed));
    for (i = 0; rc == HQ_OK && i < b->x.n_frames; i++) {
        const struct hq__aframe *f = &b->x.frames[i];

        hq_put_le64(rec, f->offset);
        hq_put_le64(rec + 8, f->csize);
        hq_put_le64(rec + 16, f->usize);
        hq_put_le64(rec + 24, (uint64_t)f->min_at);
        hq_put_le64(rec + 32, (uint64_t)f->max_at);
        hq_put_le32(rec + 40, f->records);
        hq_put_le32(rec + 44, f->invalid);
        rc = hq_buf_append(out, rec, HQ__AIDX_FRAME_BYTES);
    }
    for (i = 0; rc == HQ_OK && i < b->n_ids; i++) {
        hq_put_le64(rec, b->ids[i].hash);
        hq_put_le32(rec + 8, b->ids[i].frame);
        hq_put_le32(rec + 12, 0);
        rc = hq_buf_append(out, rec, HQ__AIDX_ID_BYTES);
    }
    if (rc == HQ_OK) {
        hq_put_le64(sum, hq_fnv1a64(HQ_FNV1A64_INIT, out->data, out->len));
        rc = hq_buf_append(out, sum, 8);
    }
    return rc;
}

void (*hq__acompress_hook)(void *arg, const char *base);
void *hq__acompress_hook_arg;

int hq_archive_compress(const char *base, const volatile int *cancel,
                        struct hq_acompress_stats *st, char *err, size_t errsz)
{
    char jsonl[PATH_MAX], zst[PATH_MAX], idx[PATH_MAX], ztmp[PATH_MAX], itmp[PATH_MAX];
    struct builder b;
    struct hq_buf fb = HQ_BUF_INIT((size_t)HQ__AREC_LINE_MAX + HQ_ARCHIVE_FRAME_BYTES);
    struct hq_buf cb = HQ_BUF_INIT((size_t)1 << 40);
    struct hq_buf ib = HQ_BUF_INIT((size_t)1 << 40);
    struct hq_buf carry = HQ_BUF_INIT((size_t)HQ__AREC_LINE_MAX);
    ZSTD_CCtx *cctx = NULL;
    char *chunk = NULL;
    uint64_t offset = 0, bytes_in = 0;
    int in = -1, zfd = -1, ifd = -1, rc = HQ_EIO;
    bool tmp_made = false;

    if (st)
        memset(st, 0, sizeof(*st));
    memset(&b, 0, sizeof(b));
    if (snprintf(jsonl, sizeof(jsonl), "%s.jsonl", base) >= (int)sizeof(jsonl) ||
        snprintf(zst, sizeof(zst), "%s.jsonl.zst", base) >= (int)sizeof(zst) ||
        snprintf(idx, sizeof(idx), "%s.idx", base) >= (int)sizeof(idx) ||
        snprintf(ztmp, sizeof(ztmp), "%s.jsonl.zst.tmp", base) >= (int)sizeof(ztmp) ||
        snprintf(itmp, sizeof(itmp), "%s.idx.tmp", base) >= (int)sizeof(itmp)) {
        snprintf(err, errsz, "path too long: %s", base);
        return HQ_ETOOBIG;
    }
    /* Claim the source: the writer holds a flock on the segment it appends to, and takes one
     * before it appends to any .jsonl. Holding it from before the read until after the
     * delete, the compressor never deletes records the writer appended (the clock stepped
     * back into this hour): the writer finds the flock taken and opens the next name. */
    in = open(jsonl, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        int e = errno;

        if (e == ENOENT && hq_path_exists(zst))
            return HQ_OK; /* finished before */
        snprintf(err, errsz, "cannot open %s: %s", jsonl, strerror(e));
        return e == ENOENT ? HQ_ENOTFOUND : HQ_EIO;
    }
    if (flock(in, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;

        close(in);
        snprintf(err, errsz, "%s is open in the logger: %s", jsonl,
                 e == EWOULDBLOCK ? "compressed once it is closed" : strerror(e));
        return e == EWOULDBLOCK ? HQ_ECONFLICT : HQ_EIO;
    }
    {
        struct stat held, named;

        if (fstat(in, &held) != 0 || stat(jsonl, &named) != 0 || held.st_ino != named.st_ino ||
            held.st_dev != named.st_dev) {
            /* compressed (and deleted) by another call between the open and the flock */
            close(in);
            return hq_path_exists(zst) ? HQ_OK : HQ_ENOTFOUND;
        }
    }
    if (hq_path_exists(zst)) {
        /* finished before: only the source may be left over */
        if (unlink(jsonl) == 0 && hq_fsync_dir(jsonl, false) != HQ_OK)
            hq_warn("cannot fsync the segment directory", "segment=%s", base);
        close(in);
        return HQ_OK;
    }
    zfd = open(ztmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    ifd = open(itmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    tmp_made = true;
    if (zfd < 0 || ifd < 0) {
        snprintf(err, errsz, "cannot create %s: %s", zfd < 0 ? ztmp : itmp, strerror(errno));
        goto out;
    }
    cctx = ZSTD_createCCtx();
    chunk = malloc(READ_CHUNK);
    if (!cctx || !chunk) {
        rc = HQ_ENOMEM;
        goto out;
    }
    (void)ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL);
    (void)ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    (void)ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);

    for (;;) {
        ssize_t r = hq_read_some(in, chunk, READ_CHUNK);
        const char *p = chunk, *end, *nl;

        if (r < 0) {
            snprintf(err, errsz, "read %s: %s", jsonl, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        bytes_in += (uint64_t)r;
        end = chunk + r;
        while (p < end) {
            size_t len;

            nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) {
                rc = hq_buf_append(&carry, p, (size_t)(end - p));
                if (rc != HQ_OK) {
                    snprintf(err, errsz, "%s: a line longer than %u bytes", jsonl,
                             HQ__AREC_LINE_MAX);
                    goto out;
                }
                break;
            }
            len = (size_t)(nl - p) + 1;
            if (carry.len) {
                if ((rc = hq_buf_append(&carry, p, len)) != HQ_OK) {
                    snprintf(err, errsz, "%s: a line longer than %u bytes", jsonl,
                             HQ__AREC_LINE_MAX);
                    goto out;
                }
            }
            {
                const char *line = carry.len ? (const char *)carry.data : p;
                size_t llen = carry.len ? carry.len : len;

                if (fb.len && fb.len + llen > HQ_ARCHIVE_FRAME_BYTES) {
                    if (cancel && *cancel) {
                        rc = HQ_ESHUTDOWN;
                        goto out;
                    }
                    if ((rc = flush_frame(&b, cctx, &fb, &cb, zfd, &offset)) != HQ_OK) {
                        snprintf(err, errsz, "write %s: %s", ztmp, strerror(errno));
                        goto out;
                    }
                }
                if ((rc = hq_buf_append(&fb, line, llen)) != HQ_OK)
                    goto out;
                index_line(&b, line, llen - 1);
                if (b.rc != HQ_OK) {
                    rc = b.rc;
                    goto out;
                }
            }
            hq_buf_reset(&carry);
            p = nl + 1;
        }
    }
    if (carry.len) {
        /* a torn last line: kept as is (no newline), counted invalid */
        if ((rc = hq_buf_append(&fb, carry.data, carry.len)) != HQ_OK)
            goto out;
        b.cur.invalid++;
        b.x.invalid++;
    }
    if ((rc = flush_frame(&b, cctx, &fb, &cb, zfd, &offset)) != HQ_OK) {
        snprintf(err, errsz, "write %s: %s", ztmp, strerror(errno));
        goto out;
    }
    rc = index_bytes(&b, &ib);
    if (rc != HQ_OK) {
        snprintf(err, errsz, "index of %s: %s", jsonl, hq_strerror(rc));
        goto out;
    }
    rc = HQ_EIO;
    if (hq_write_all(ifd, ib.data, ib.len) != HQ_OK) {
        snprintf(err, errsz, "write %s: %s", itmp, strerror(errno));
        goto out;
    }
    if (fsync(zfd) != 0 || fsync(ifd) != 0) {
        snprintf(err, errsz, "fsync %s: %s", ztmp, strerror(errno));
        goto out;
    }
    close(zfd);
    close(ifd);
    zfd = ifd = -1;
    if (hq__acompress_hook)
        hq__acompress_hook(hq__acompress_hook_arg, base);
    if (rename(itmp, idx) != 0 || rename(ztmp, zst) != 0) {
        snprintf(err, errsz, "rename to %s: %s", zst, strerror(errno));
        goto out;
    }
    tmp_made = false;
    if (hq_fsync_dir(zst, false) != HQ_OK) {
        snprintf(err, errsz, "fsync the directory of %s: %s", zst, strerror(errno));
        goto out;
    }
    if (unlink(jsonl) != 0 || hq_fsync_dir(jsonl, false) != HQ_OK) {
        snprintf(err, errsz, "delete %s: %s", jsonl, strerror(errno));
        goto out;
    }
    if (st) {
        st->records = b.x.records;
        st->invalid = b.x.invalid;
        st->frames = b.x.n_frames;
        st->bytes_in = bytes_in;
        st->bytes_out = offset;
    }
    rc = HQ_OK;
out:
    if (in >= 0)
        close(in);
    if (zfd >= 0)
        close(zfd);
    if (ifd >= 0)
        close(ifd);
    if (rc != HQ_OK && tmp_made) {
        unlink(ztmp);
        unlink(itmp);
    }
    ZSTD_freeCCtx(cctx);
    free(chunk);
    free(b.ids);
    free(b.x.frames);
    cmap_free(&b.counts);
    hq__hset_free(&b.seen);
    hq_buf_free(&fb);
    hq_buf_free(&cb);
    hq_buf_free(&ib);
    hq_buf_free(&carry);
    return rc;
}

/* ================================================================== reading the index */

void hq__aidx_free(struct hq__aidx *x)
{
    size_t i;

    if (!x)
        return;
    free(x->frames);
    free(x->ids);
    for (i = 0; i < x->n_counts; i++) {
        free(x->counts[i].source);
        free(x->counts[i].type);
    }
    free(x->counts);
    memset(x, 0, sizeof(*x));
}

static bool get_u64(json_object *o, const char *key, uint64_t *out)
{
    json_object *v;
    int64_t n;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return false;
    errno = 0;
    n = json_object_get_int64(v);
    if (errno == ERANGE || n < 0)
        return false;
    *out = (uint64_t)n;
    return true;
}

static bool get_i64(json_object *o, const char *key, int64_t *out)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return false;
    errno = 0;
    *out = json_object_get_int64(v);
    return errno != ERANGE;
}

static int parse_counts(json_object *o, struct hq__aidx *x)
{
    json_object *arr;
    size_t i, n;

    if (!json_object_object_get_ex(o, "counts", &arr) || !json_object_is_type(arr, json_type_array))
        return HQ_EINVAL;
    n = json_object_array_length(arr);
    if (n == 0)
        return HQ_OK;
    x->counts = calloc(n, sizeof(*x->counts));
    if (!x->counts)
        return HQ_ENOMEM;
    for (i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i), *v;
        struct hq__acount *c = &x->counts[x->n_counts];
        const char *k;

        if (!e || !json_object_is_type(e, json_type_object) ||
            !get_i64(e, "hour", &c->hour_ms) || !get_u64(e, "n", &c->n) ||
            !get_u64(e, "dup", &c->dup) || c->dup > c->n ||
            !json_object_object_get_ex(e, "kind", &v) || !json_object_is_type(v, json_type_string))
            return HQ_EINVAL;
        k = json_object_get_string(v);
        if (strcmp(k, "event") == 0)
            c->kind = HQ_AREC_EVENT;
        else if (strcmp(k, "lifecycle") == 0)
            c->kind = HQ_AREC_LIFECYCLE;
        else if (strcmp(k, "trace") == 0)
            c->kind = HQ_AREC_TRACE;
        else
            return HQ_EINVAL;
        if (!json_object_object_get_ex(e, "source", &v) || !json_object_is_type(v, json_type_string))
            return HQ_EINVAL;
        c->source = strdup(json_object_get_string(v));
        if (!json_object_object_get_ex(e, "type", &v) || !json_object_is_type(v, json_type_string)) {
            free(c->source);
            c->source = NULL;
            return HQ_EINVAL;
        }
        c->type = strdup(json_object_get_string(v));
        if (!c->source || !c->type) {
            free(c->source);
            free(c->type);
            c->source = c->type = NULL;
            return HQ_ENOMEM;
        }
        x->n_counts++;
    }
    return HQ_OK;
}

static int parse_header(const char *p, size_t n, bool with_counts, struct hq__aidx *x)
{
    json_object *o = hq_json_parse(p, n, 8);
    uint64_t v = 0, frames = 0;
    bool has_min, has_max;
    int rc = HQ_EINVAL;

    if (!o || !json_object_is_type(o, json_type_object))
        goto out;
    if (!get_u64(o, "v", &v) || v != HQ__AIDX_VERSION || !get_u64(o, "records", &x->records) ||
        !get_u64(o, "events", &x->events) || !get_u64(o, "lifecycle", &x->lifecycle) ||
        !get_u64(o, "trace", &x->trace) || !get_u64(o, "invalid", &x->invalid) ||
        !get_u64(o, "frames", &frames) || frames > UINT32_MAX || !get_u64(o, "ids", &x->n_ids))
        goto out;
    x->n_frames = (uint32_t)frames;
    has_min = get_i64(o, "min_received_at", &x->min_at);
    has_max = get_i64(o, "max_received_at", &x->max_at);
    if (has_min != has_max || (has_min && x->min_at > x->max_at) || (!has_min && x->records))
        goto out;
    x->has_range = has_min;
    rc = with_counts ? parse_counts(o, x) : HQ_OK;
out:
    if (o)
        json_object_put(o);
    return rc;
}

int hq__aidx_parse(const char *p, size_t n, bool header_only, bool with_counts, uint64_t zst_size,
                   struct hq__aidx *x)
{
    const unsigned char *bin;
    const char *nl;
    size_t hlen, blen, i;
    uint64_t off = 0;
    int rc;

    memset(x, 0, sizeof(*x));
    if (!p)
        return HQ_EINVAL;
    nl = memchr(p, '\n', n < HQ__AIDX_HEADER_MAX ? n : HQ__AIDX_HEADER_MAX);
    if (!nl)
        return HQ_EINVAL;
    hlen = (size_t)(nl - p);
    rc = parse_header(p, hlen, with_counts, x);
    if (rc != HQ_OK)
        goto fail;
    if (header_only)
        return HQ_OK;
    rc = HQ_EINVAL;
    bin = (const unsigned char *)nl + 1;
    blen = n - hlen - 1;
    if (x->n_ids > (SIZE_MAX - HQ__AIDX_FIXED_BYTES - 8) / HQ__AIDX_ID_BYTES / 2 ||
        blen != HQ__AIDX_FIXED_BYTES + (size_t)x->n_frames * HQ__AIDX_FRAME_BYTES +
                    (size_t)x->n_ids * HQ__AIDX_ID_BYTES + 8)
        goto fail;
    if (memcmp(bin, HQ__AIDX_MAGIC, 4) != 0 || hq_get_le32(bin + 4) != HQ__AIDX_VERSION ||
        hq_get_le32(bin + 8) != x->n_frames || hq_get_le64(bin + 16) != x->n_ids)
        goto fail;
    if (hq_get_le64((const unsigned char *)p + n - 8) != hq_fnv1a64(HQ_FNV1A64_INIT, p, n - 8))
        goto fail;
    bin += HQ__AIDX_FIXED_BYTES;
    if (x->n_frames) {
        x->frames = calloc(x->n_frames, sizeof(*x->frames));
        if (!x->frames) {
            rc = HQ_ENOMEM;
            goto fail;
        }
    }
    for (i = 0; i < x->n_frames; i++, bin += HQ__AIDX_FRAME_BYTES) {
        struct hq__aframe *f = &x->frames[i];

        f->offset = hq_get_le64(bin);
        f->csize = hq_get_le64(bin + 8);
        f->usize = hq_get_le64(bin + 16);
        f->min_at = (int64_t)hq_get_le64(bin + 24);
        f->max_at = (int64_t)hq_get_le64(bin + 32);
        f->records = hq_get_le32(bin + 40);
        f->invalid = hq_get_le32(bin + 44);
        if (f->offset != off || f->csize == 0 || f->csize > ((uint64_t)1 << 40) ||
            f->usize > (uint64_t)HQ__AREC_LINE_MAX + HQ_ARCHIVE_FRAME_BYTES ||
            (f->records && f->min_at > f->max_at))
            goto fail;
        off += f->csize;
    }
    if (zst_size && off != zst_size)
        goto fail;
    if (x->n_ids) {
        const unsigned char *prev = NULL;

        for (i = 0; i < x->n_ids; i++) {
            const unsigned char *e = bin + i * HQ__AIDX_ID_BYTES;

            if (hq_get_le32(e + 8) >= x->n_frames)
                goto fail;
            if (prev && (hq_get_le64(prev) > hq_get_le64(e) ||
                         (hq_get_le64(prev) == hq_get_le64(e) && hq_get_le32(prev + 8) >= hq_get_le32(e + 8))))
                goto fail;
            prev = e;
        }
        x->ids = malloc((size_t)x->n_ids * HQ__AIDX_ID_BYTES);
        if (!x->ids) {
            rc = HQ_ENOMEM;
            goto fail;
        }
        memcpy(x->ids, bin, (size_t)x->n_ids * HQ__AIDX_ID_BYTES);
    }
    return HQ_OK;
fail:
    hq__aidx_free(x);
    return rc;
}

int hq__aidx_load(const char *path, bool header_only, bool with_counts, uint64_t zst_size,
                  struct hq__aidx *out)
{
    char *buf = NULL;
    size_t n = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if (header_only) {
        /* only the first line */
        size_t cap = 64 * 1024;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
            return errno == ENOENT ? HQ_ENOTFOUND : HQ_EIO;
        for (;;) {
            char *nb = realloc(buf, cap + 1);
            ssize_t r;

            if (!nb) {
                rc = HQ_ENOMEM;
                break;
            }
            buf = nb;
            r = pread(fd, buf + n, cap - n, (off_t)n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                rc = HQ_EINVAL;
                break;
            }
            if (memchr(buf + n, '\n', (size_t)r)) {
                n += (size_t)r;
                rc = HQ_OK;
                break;
            }
            n += (size_t)r;
            if (n == cap) {
                if (cap >= HQ__AIDX_HEADER_MAX) {
                    rc = HQ_EINVAL;
                    break;
                }
                cap *= 2;
            }
        }
        close(fd);
        if (rc == HQ_OK)
            rc = hq__aidx_parse(buf, n, true, with_counts, 0, out);
        free(buf);
        return rc;
    }
    rc = hq_read_file(path, (size_t)1 << 34, &buf, &n);
    if (rc != HQ_OK)
        return rc;
    rc = hq__aidx_parse(buf, n, false, with_counts, zst_size, out);
    free(buf);
    return rc;
}

size_t hq__aidx_lookup(const struct hq__aidx *x, const char *id, uint32_t *out, size_t outcap)
{
    uint64_t h = hq_murmur64a(0, id, strlen(id));
    size_t lo = 0, hi, n = 0, i;

    if (!x->ids || x->n_ids == 0)
        return 0;
    hi = (size_t)x->n_ids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (hq_get_le64(x->ids + mid * HQ__AIDX_ID_BYTES) < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (i = lo; i < x->n_ids && n < outcap; i++) {
        const unsigned char *e = x->ids + i * HQ__AIDX_ID_BYTES;

        if (hq_get_le64(e) != h)
            break;
        out[n++] = hq_get_le32(e + 8); /* sorted by frame within a hash */
    }
    return n;
}

/* ================================================================== recovery, retention */

/* hq__aseg_list for the logger's upkeep, to which a missing dir is an archive with no segment
 * yet: HQ_OK with *n 0. */
static int list_or_none(const char *dir, struct hq__aseg **segs, size_t *n)
{
    int rc = hq__aseg_list(dir, segs, n);

    return rc == HQ_ENOTFOUND ? HQ_OK : rc;
}

int hq_archive_pending(const char *dir, int64_t now_ms, const char *current,
                       void (*fn)(void *arg, const char *base), void *arg)
{
    struct hq__aseg *segs = NULL;
    size_t n = 0, i;
    int64_t hour = hq_hour_start(now_ms);
    int rc;

    if ((rc = list_or_none(dir, &segs, &n)) != HQ_OK)
        return rc;
    for (i = 0; i < n; i++) {
        const struct hq__aseg *s = &segs[i];

        if (s->tmp) {
            char p[PATH_MAX];

            snprintf(p, sizeof(p), "%s.jsonl.zst.tmp", s->base);
            unlink(p);
            snprintf(p, sizeof(p), "%s.idx.tmp", s->base);
            unlink(p);
        }
        if (!s->jsonl)
            continue;
        if (current && strcmp(current, s->base) == 0)
            continue;
        if (!s->zst && s->hour_ms >= hour)
            continue; /* this hour's segment: the logger appends to it */
        fn(arg, s->base);
    }
    hq__aseg_free(segs, n);
    return HQ_OK;
}

/* Remove the empty directories below dir, levels deep, whose names at each level have the
 * lengths widths[0], widths[1], ... (the archive's YYYY/MM/DD tree). rmdir only succeeds on an
 * empty directory, so anything with a segment in it stays. */
static void rmdir_empty_below(const char *dir, const size_t *widths, size_t levels)
{
    DIR *d;
    struct dirent *e;
    char p[PATH_MAX];

    if (!levels)
        return;
    d = opendir(dir);
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != widths[0] || e->d_name[0] == '.')
            continue;
        if (snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= (int)sizeof(p))
            continue;
        rmdir_empty_below(p, widths + 1, levels - 1);
        (void)rmdir(p);
    }
    closedir(d);
}

static void rmdir_empty(const char *dir)
{
    static const size_t widths[] = {4, 2, 2};

    rmdir_empty_below(dir, widths, sizeof(widths) / sizeof(widths[0]));
}

int hq_archive_retention(const char *dir, int keep_days, int64_t now_ms, unsigned *deleted)
{
    struct hq__aseg *segs = NULL;
    size_t n = 0, i;
    int64_t cutoff;
    unsigned count = 0;
    int rc;

    if (deleted)
        *deleted = 0;
    if (keep_days <= 0)
        return HQ_OK;
    cutoff = now_ms - (int64_t)keep_days * 24 * HQ_HOUR_MS;
    if ((rc = list_or_none(dir, &segs, &n)) != HQ_OK)
        return rc;
    for (i = 0; i < n; i++) {
        const struct hq__aseg *s = &segs[i];
        static const char *const ext[] = {".jsonl.zst", ".idx", ".jsonl", ".jsonl.zst.tmp",
                                          ".idx.tmp"};
        size_t k;

        if (s->hour_ms + HQ_HOUR_MS > cutoff)
            continue;
        for (k = 0; k < sizeof(ext) / sizeof(ext[0]); k++) {
            char p[PATH_MAX];

            snprintf(p, sizeof(p), "%s%s", s->base, ext[k]);
            if (unlink(p) != 0 && errno != ENOENT)
                hq_warn("retention: cannot delete", "file=%s error=\"%s\"", p, strerror(errno));
        }
        hq_info("retention: segment deleted", "segment=%s keep_days=%d", s->base, keep_days);
        count++;
    }
    hq__aseg_free(segs, n);
    if (count) {
        rmdir_empty(dir);
        if (hq_fsync_dir(dir, true) != HQ_OK)
            hq_warn("retention: cannot fsync the archive directory", "dir=%s", dir);
    }
    if (deleted)
        *deleted = count;
    return HQ_OK;
}
