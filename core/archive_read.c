/* archive_read: reading the archive back (hq_archive_scan, hq_archive_stats).
 *
 * Segments are visited in (hour, seq) order. Which ones are read:
 * - a closed segment (.jsonl.zst) with a valid index: only when its received_at range
 *   overlaps the filter's window, and then only the frames whose own range overlaps (or that
 *   hold invalid lines, so they are reported); with an id filter, only the frames the id index
 *   names. Without a usable index the whole file is decompressed as a stream.
 * - an open segment (.jsonl, not yet compressed): by its name's hour, which bounds its records
 *   from above (received_at <= end of the hour + HQ_ARCHIVE_SKEW_MS), and from below by
 *   HQ_ARCHIVE_LATE_MS (events drained late from a gateway spool); an event later than that
 *   is found by window queries once its segment is closed and indexed.
 * Cheap pre-filters on the raw line (received_at, a plain id) avoid parsing lines that cannot
 * match; any line that is parsed and is not a valid record is skipped and counted, and each
 * segment with such lines is reported once at warn level. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "hq__archive.h"
#include "hq_log.h"

#define READ_CHUNK (4u << 20)
#define MAX_CANDIDATES 4096

/* ================================================================== listing */

static bool all_digits(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

/* "HH[.seq]<ext>" -> hour, seq, which extension. */
static bool parse_name(const char *name, int *hour, unsigned *seq, int *ext)
{
    static const char *const exts[] = {".jsonl", ".jsonl.zst", ".idx", ".jsonl.zst.tmp",
                                       ".idx.tmp"};
    const char *p = name + 2;
    size_t k;

    if (!all_digits(name, 2))
        return false;
    *hour = (name[0] - '0') * 10 + (name[1] - '0');
    *seq = 0;
    if (p[0] == '.' && p[1] >= '1' && p[1] <= '9') {
        unsigned long v = 0;

        p++;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (unsigned long)(*p - '0');
            if (v > 1000000)
                return false;
            p++;
        }
        *seq = (unsigned)v;
    }
    for (k = 0; k < sizeof(exts) / sizeof(exts[0]); k++) {
        if (strcmp(p, exts[k]) == 0) {
            *ext = (int)k;
            return true;
        }
    }
    return false;
}

struct seglist {
    struct hq__aseg *v;
    size_t n, cap;
    int rc;
};

static void seg_add(struct seglist *l, int64_t hour_ms, unsigned seq, const char *dirpath, int hh,
                    int ext)
{
    struct hq__aseg *s, *nv;
    char base[PATH_MAX];

    if (l->rc != HQ_OK)
        return;
    if ((seq ? snprintf(base, sizeof(base), "%s/%02d.%u", dirpath, hh, seq)
             : snprintf(base, sizeof(base), "%s/%02d", dirpath, hh)) >= (int)sizeof(base))
        return; /* cannot be named: not ours */
    nv = hq_array_grow(l->v, &l->cap, l->n, sizeof(*nv), 256);
    if (!nv) {
        l->rc = HQ_ENOMEM;
        return;
    }
    l->v = nv;
    s = &l->v[l->n];
    memset(s, 0, sizeof(*s));
    s->hour_ms = hour_ms;
    s->seq = seq;
    s->base = strdup(base);
    if (!s->base) {
        l->rc = HQ_ENOMEM;
        return;
    }
    s->jsonl = ext == 0;
    s->zst = ext == 1;
    s->idx = ext == 2;
    s->tmp = ext >= 3;
    l->n++;
}

static int seg_cmp(const void *a, const void *b)
{
    const struct hq__aseg *x = a, *y = b;

    if (x->hour_ms != y->hour_ms)
        return x->hour_ms < y->hour_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int num_dirs(const char *path, size_t width, int **out, size_t *n)
{
    DIR *d = opendir(path);
    struct dirent *e;
    size_t cap = 0;

    *out = NULL;
    *n = 0;
    if (!d)
        return errno == ENOENT ? HQ_ENOTFOUND : HQ_EIO;
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != width || !all_digits(e->d_name, width))
            continue;
        if (*n == cap) {
            int *nv;
            cap = cap ? cap * 2 : 32;
            nv = realloc(*out, cap * sizeof(int));
            if (!nv) {
                closedir(d);
                free(*out);
                *out = NULL;
                return HQ_ENOMEM;
            }
            *out = nv;
        }
        (*out)[(*n)++] = (int)strtol(e->d_name, NULL, 10);
    }
    closedir(d);
    return HQ_OK;
}

int hq__aseg_list(const char *dir, struct hq__aseg **out, size_t *n)
{
    struct seglist l = {NULL, 0, 0, HQ_OK};
    int *years = NULL, *months = NULL, *days = NULL;
    size_t ny = 0, nm = 0, nd = 0, a, b, c, i, w;
    char py[PATH_MAX], pm[PATH_MAX], pd[PATH_MAX];
    int rc;

    *out = NULL;
    *n = 0;
    rc = num_dirs(dir, 4, &years, &ny);
    if (rc != HQ_OK)
        return rc;
    for (a = 0; a < ny && l.rc == HQ_OK; a++) {
        if (snprintf(py, sizeof(py), "%s/%04d", dir, years[a]) >= (int)sizeof(py) ||
            num_dirs(py, 2, &months, &nm) != HQ_OK)
            continue;
        for (b = 0; b < nm && l.rc == HQ_OK; b++) {
            if (snprintf(pm, sizeof(pm), "%s/%02d", py, months[b]) >= (int)sizeof(pm) ||
                num_dirs(pm, 2, &days, &nd) != HQ_OK)
                continue;
            for (c = 0; c < nd && l.rc == HQ_OK; c++) {
                DIR *d;
                struct dirent *e;

                if (snprintf(pd, sizeof(pd), "%s/%02d", pm, days[c]) >= (int)sizeof(pd))
                    continue;
                d = opendir(pd);
                if (!d)
                    continue;
                while ((e = readdir(d)) != NULL && l.rc == HQ_OK) {
                    int hh, ext;
                    unsigned seq;
                    int64_t hour_ms;

                    if (!parse_name(e->d_name, &hh, &seq, &ext))
                        continue;
                    if (!hq_utc_hour(years[a], months[b], days[c], hh, &hour_ms))
                        continue;
                    seg_add(&l, hour_ms, seq, pd, hh, ext);
                }
                closedir(d);
            }
            free(days);
            days = NULL;
        }
        free(months);
        months = NULL;
    }
    free(years);
    if (l.rc != HQ_OK) {
        hq__aseg_free(l.v, l.n);
        return l.rc;
    }
    /* merge the files of one segment */
    if (l.n)
        qsort(l.v, l.n, sizeof(*l.v), seg_cmp);
    for (i = 0, w = 0; i < l.n; i++) {
        if (w && l.v[w - 1].hour_ms == l.v[i].hour_ms && l.v[w - 1].seq == l.v[i].seq) {
            l.v[w - 1].jsonl |= l.v[i].jsonl;
            l.v[w - 1].zst |= l.v[i].zst;
            l.v[w - 1].idx |= l.v[i].idx;
            l.v[w - 1].tmp |= l.v[i].tmp;
            free(l.v[i].base);
            continue;
        }
        l.v[w++] = l.v[i];
    }
    *out = l.v;
    *n = w;
    return HQ_OK;
}

void hq__aseg_free(struct hq__aseg *s, size_t n)
{
    size_t i;

    if (!s)
        return;
    for (i = 0; i < n; i++)
        free(s[i].base);
    free(s);
}

/* ================================================================== line processing */

struct reader {
    const struct hq_afilter *f;
    hq_arec_fn fn;
    void *arg;
    struct hq_ascan_stats *st;
    /* pre-filters on the raw line */
    char *id_frag;     /* "\"id\":\"<id>\"" when the id needs no escaping, else NULL */
    size_t id_frag_len;
    /* per segment */
    const char *seg;
    uint64_t invalid;
    bool torn;
    int stop; /* non-zero: fn asked to stop (its value) or an error */
    struct hq_buf carry;
};

/* received_at as the writer puts it near the start of the line; false when not found. */
static bool quick_received_at(const char *line, size_t len, int64_t *out)
{
    static const char key[] = "\"received_at\":";
    const char *p, *end = line + (len < 64 ? len : 64);
    int64_t v = 0;
    bool neg = false;
    int digits = 0;

    p = memmem(line, (size_t)(end - line), key, sizeof(key) - 1);
    if (!p)
        return false;
    p += sizeof(key) - 1;
    if (p < end && *p == '-') {
        neg = true;
        p++;
    }
    while (p < end && *p >= '0' && *p <= '9' && digits < 18) {
        v = v * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (!digits || p >= end || (*p != ',' && *p != '}'))
        return false;
    *out = neg ? -v : v;
    return true;
}

/* The kinds f asks for (hq_afilter_match's mask). */
static unsigned kinds_wanted(const struct hq_afilter *f)
{
    unsigned mask = f->kinds ? f->kinds : (1u << HQ_AREC_EVENT) | (1u << HQ_AREC_LIFECYCLE);

    return f->events_only ? mask & (1u << HQ_AREC_EVENT) : mask;
}

/* The kind as the writer puts it first on the line ({"kind":"event",...}); -1 when it is not
 * found there (then the full parse decides). */
static int quick_kind(const char *line, size_t len)
{
    static const struct {
        const char *text;
        size_t n;
        int kind;
    } k[] = {{"{\"kind\":\"event\",", 16, HQ_AREC_EVENT},
             {"{\"kind\":\"lifecycle\",", 20, HQ_AREC_LIFECYCLE},
             {"{\"kind\":\"trace\",", 16, HQ_AREC_TRACE}};
    size_t i;

    for (i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        if (len >= k[i].n && memcmp(line, k[i].text, k[i].n) == 0)
            return k[i].kind;
    return -1;
}

static int on_line(void *arg, const char *line, size_t len)
{
    struct reader *rd = arg;
    struct hq_arec r;
    int64_t at;
    int rc;

    if (len == 0)
        return 0;
    rd->st->records_read++;
    if (line[len - 1] != '}') {
        rd->st->skipped++;
        rd->invalid++;
        return 0;
    }
    if (quick_received_at(line, len, &at) && (at < rd->f->from_ms || at >= rd->f->to_ms))
        return 0;
    if (rd->f->kinds && (at = quick_kind(line, len)) >= 0 &&
        !(kinds_wanted(rd->f) & (1u << at)))
        return 0; /* a kind not asked for (e.g. the events when only lifecycle is) */
    if (rd->id_frag && !memmem(line, len, rd->id_frag, rd->id_frag_len))
        return 0;
    rd->st->records_parsed++;
    rc = hq_arec_parse(line, len, &r);
    if (rc == HQ_ENOMEM) {
        rd->stop = HQ_ENOMEM;
        return 1;
    }
    if (rc != HQ_OK) {
        rd->st->skipped++;
        rd->invalid++;
        return 0;
    }
    if (hq_afilter_match(rd->f, &r)) {
        rc = rd->fn(rd->arg, &r);
        if (rc) {
            rd->stop = rc;
            hq_arec_free(&r);
            return 1;
        }
    }
    hq_arec_free(&r);
    return 0;
}

/* Feed bytes that may split lines anywhere. */
static int feed(struct reader *rd, const char *p, size_t n)
{
    const char *rest = p, *nl;
    size_t rest_len = n;

    if (rd->carry.len) {
        nl = memchr(p, '\n', n);
        if (!nl) {
            if (hq_buf_append(&rd->carry, p, n) != HQ_OK) {
                rd->stop = HQ_ETOOBIG;
                return 1;
            }
            return 0;
        }
        if (hq_buf_append(&rd->carry, p, (size_t)(nl - p)) != HQ_OK) {
            rd->stop = HQ_ETOOBIG;
            return 1;
        }
        if (on_line(rd, (const char *)rd->carry.data, rd->carry.len))
            return 1;
        hq_buf_reset(&rd->carry);
        n -= (size_t)(nl - p) + 1;
        p = nl + 1;
    }
    if (hq_lines(p, n, on_line, rd, &rest, &rest_len))
        return 1;
    if (rest_len && hq_buf_append(&rd->carry, rest, rest_len) != HQ_OK) {
        rd->stop = HQ_ETOOBIG;
        return 1;
    }
    return 0;
}

/* End of a segment's data: an unterminated rest is a torn line. */
static int feed_end(struct reader *rd)
{
    if (rd->carry.len) {
        rd->torn = true;
        rd->st->records_read++;
        rd->st->skipped++;
        rd->invalid++;
        hq_buf_reset(&rd->carry);
    }
    return rd->stop;
}

static void seg_report(struct reader *rd)
{
    if (rd->invalid)
        hq_warn(rd->torn ? "skipped a torn last line (a crash mid-write, or a batch being "
                           "written right now) and any other invalid lines"
                         : "skipped invalid lines",
                "segment=%s lines=%llu torn_last_line=%s", rd->seg,
                (unsigned long long)rd->invalid, rd->torn ? "yes" : "no");
    rd->invalid = 0;
    rd->torn = false;
}

/* ================================================================== one segment */

static int read_plain(struct reader *rd, const char *path)
{
    char *buf = malloc(READ_CHUNK);
    int fd, rc = HQ_OK;

    if (!buf)
        return HQ_ENOMEM;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        free(buf);
        return errno == ENOENT ? HQ_ENOTFOUND : HQ_EIO;
    }
    rd->st->segments_opened++;
    for (;;) {
        ssize_t r = hq_read_some(fd, buf, READ_CHUNK);

        if (r < 0) {
            rc = HQ_EIO;
            break;
        }
        if (r == 0)
            break;
        if (feed(rd, buf, (size_t)r))
            break;
    }
    close(fd);
    free(buf);
    if (rc == HQ_OK && !rd->stop)
        feed_end(rd);
    hq_buf_reset(&rd->carry);
    return rc;
}

/* Decompress the whole file as a stream (no usable index). */
static int read_zst_stream(struct reader *rd, const char *path)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    size_t inb = ZSTD_DStreamInSize(), outb = READ_CHUNK, ret = 0;
    char *ibuf = malloc(inb), *obuf = malloc(outb);
    int fd = -1, rc = HQ_OK;

    if (!dctx || !ibuf || !obuf) {
        rc = HQ_ENOMEM;
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? HQ_ENOTFOUND : HQ_EIO;
        goto out;
    }
    rd->st->segments_opened++;
    for (;;) {
        ssize_t r = hq_read_some(fd, ibuf, inb);
        ZSTD_inBuffer in;

        if (r < 0) {
            rc = HQ_EIO;
            break;
        }
        if (r == 0)
            break;
        in.src = ibuf;
        in.size = (size_t)r;
        in.pos = 0;
        while (in.pos < in.size) {
            ZSTD_outBuffer o = {obuf, outb, 0};

            ret = ZSTD_decompressStream(dctx, &o, &in);
            if (ZSTD_isError(ret)) {
                hq_warn("corrupt compressed segment", "segment=%s error=\"%s\"", path,
                        ZSTD_getErrorName(ret));
                rc = HQ_EINVAL;
                goto out;
            }
            if (ret == 0)
                rd->st->frames_read++;
            if (o.pos && feed(rd, obuf, o.pos))
                goto out;
        }
    }
    if (ret != 0)
        hq_warn("compressed segment ends inside a frame", "segment=%s", path);
    feed_end(rd);
out:
    hq_buf_reset(&rd->carry);
    if (fd >= 0)
        close(fd);
    ZSTD_freeDCtx(dctx);
    free(ibuf);
    free(obuf);
    return rc;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static bool overlaps(int64_t min_at, int64_t max_at, int64_t from, int64_t to)
{
    return min_at < to && max_at >= from;
}

/* A closed segment with its (fully loaded) index: the frames that can match. */
static int read_zst_frames(struct reader *rd, const char *path, const struct hq__aidx *x,
                           const uint32_t *cand, size_t n_cand)
{
    ZSTD_DCtx *dctx = NULL;
    char *cbuf = NULL, *ubuf = NULL;
    size_t ccap = 0, ucap = 0, k = 0;
    uint32_t i;
    int fd = -1, rc = HQ_OK;
    bool opened = false;

    for (i = 0; i < x->n_frames && !rd->stop; i++) {
        const struct hq__aframe *fr = &x->frames[i];
        size_t got;

        if (rd->f->id) {
            while (k < n_cand && cand[k] < i)
                k++;
            if (k >= n_cand || cand[k] != i)
                continue;
        }
        if (!fr->invalid &&
            (!fr->records || !overlaps(fr->min_at, fr->max_at, rd->f->from_ms, rd->f->to_ms)))
            continue;
        if (!opened) {
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                rc = errno == ENOENT ? HQ_ENOTFOUND : HQ_EIO;
                break;
            }
            dctx = ZSTD_createDCtx();
            if (!dctx) {
                rc = HQ_ENOMEM;
                break;
            }
            rd->st->segments_opened++;
            opened = true;
        }
        if (fr->csize > ccap) {
            char *n = realloc(cbuf, (size_t)fr->csize);
            if (!n) {
                rc = HQ_ENOMEM;
                break;
            }
            cbuf = n;
            ccap = (size_t)fr->csize;
        }
        if (fr->usize + 1 > ucap) {
            char *n = realloc(ubuf, (size_t)fr->usize + 1);
            if (!n) {
                rc = HQ_ENOMEM;
                break;
            }
            ubuf = n;
            ucap = (size_t)fr->usize + 1;
        }
        {
            size_t off = 0;

            while (off < fr->csize) {
                ssize_t r = pread(fd, cbuf + off, (size_t)fr->csize - off, (off_t)(fr->offset + off));
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0)
                    break;
                off += (size_t)r;
            }
            if (off != fr->csize) {
                rc = HQ_EIO;
                break;
            }
        }
        got = ZSTD_decompressDCtx(dctx, ubuf, (size_t)fr->usize, cbuf, (size_t)fr->csize);
        if (ZSTD_isError(got) || got != fr->usize) {
            hq_warn("corrupt frame in a compressed segment", "segment=%s frame=%u error=\"%s\"",
                    path, i, ZSTD_isError(got) ? ZSTD_getErrorName(got) : "size mismatch");
            rd->st->skipped += fr->records + fr->invalid;
            rd->invalid += fr->records + fr->invalid;
            continue;
        }
        rd->st->frames_read++;
        /* a frame holds whole lines; only the last one may end with a torn line */
        if (!feed(rd, ubuf, got))
            feed_end(rd);
        hq_buf_reset(&rd->carry);
    }
    if (fd >= 0)
        close(fd);
    ZSTD_freeDCtx(dctx);
    free(cbuf);
    free(ubuf);
    return rc;
}

void (*hq__ascan_hook)(void *arg, const char *base);
void *hq__ascan_hook_arg;

/* A closed segment: base.jsonl.zst, through its index when it has a usable one. HQ_ENOTFOUND
 * when the .jsonl.zst is not there (any more). */
static int scan_zst(struct reader *rd, const char *base, bool has_idx)
{
    const struct hq_afilter *f = rd->f;
    char path[PATH_MAX + 16], ipath[PATH_MAX + 16];
    struct hq__aidx x;
    struct stat st;
    uint32_t *cand = NULL;
    size_t n_cand = 0;
    int rc;

    snprintf(path, sizeof(path), "%s.jsonl.zst", base);
    snprintf(ipath, sizeof(ipath), "%s.idx", base);
    if (stat(path, &st) != 0)
        return errno == ENOENT ? HQ_ENOTFOUND : HQ_EIO;
    if (has_idx && hq__aidx_load(ipath, true, false, 0, &x) == HQ_OK) {
        bool skip;

        rd->st->indexes_read++;
        unsigned want = kinds_wanted(f);

        skip = (!x.has_range || !overlaps(x.min_at, x.max_at, f->from_ms, f->to_ms) ||
                /* none of the kinds asked for (the header counts them) */
                ((want & (1u << HQ_AREC_EVENT) ? x.events : 0) +
                     (want & (1u << HQ_AREC_LIFECYCLE) ? x.lifecycle : 0) +
                     (want & (1u << HQ_AREC_TRACE) ? x.trace : 0) ==
                 0)) &&
               x.invalid == 0;
        hq__aidx_free(&x);
        if (skip)
            return HQ_OK;
        if (hq__aidx_load(ipath, false, false, (uint64_t)st.st_size, &x) == HQ_OK) {
            if (f->id) {
                cand = malloc(MAX_CANDIDATES * sizeof(*cand));
                if (!cand) {
                    hq__aidx_free(&x);
                    return HQ_ENOMEM;
                }
                n_cand = hq__aidx_lookup(&x, f->id, cand, MAX_CANDIDATES);
                qsort(cand, n_cand, sizeof(*cand), u32_cmp);
            }
            if (!f->id || n_cand < MAX_CANDIDATES)
                rc = read_zst_frames(rd, path, &x, cand, n_cand);
            else
                rc = read_zst_stream(rd, path);
            free(cand);
            hq__aidx_free(&x);
            return rc;
        }
    }
    rd->st->indexes_read += has_idx;
    hq_warn("archive segment without a usable index: reading all of it", "segment=%s", path);
    return read_zst_stream(rd, path);
}

/* One listed segment. The listing is a snapshot: the compressor may have replaced the .jsonl
 * by its .jsonl.zst since (then that is read), and retention may have deleted the segment
 * (then the scan fails: its records would be missing from the result, so it must not look
 * complete). */
static int scan_segment(struct reader *rd, const struct hq__aseg *s)
{
    const struct hq_afilter *f = rd->f;
    char path[PATH_MAX + 16];
    int rc;

    if (s->hour_ms + HQ_HOUR_MS + HQ_ARCHIVE_SKEW_MS <= f->from_ms)
        return HQ_OK; /* nothing in it can be that recent */
    if (!s->zst && !s->jsonl)
        return HQ_OK; /* an index or temporary files alone: no data */
    if (!s->zst && f->to_ms <= s->hour_ms - HQ_ARCHIVE_LATE_MS)
        return HQ_OK;
    rd->seg = s->base;
    if (hq__ascan_hook)
        hq__ascan_hook(hq__ascan_hook_arg, s->base);
    rc = HQ_ENOTFOUND;
    if (!s->zst) {
        snprintf(path, sizeof(path), "%s.jsonl", s->base);
        rc = read_plain(rd, path);
        if (rc == HQ_ENOTFOUND)
            hq_debug("archive segment compressed during the scan: reading the .jsonl.zst",
                     "segment=%s", s->base);
    }
    if (rc == HQ_ENOTFOUND)
        rc = scan_zst(rd, s->base, s->idx || !s->zst);
    seg_report(rd);
    if (rc == HQ_ENOTFOUND) {
        hq_error("archive segment vanished during the scan (deleted by retention?): the result "
                 "would miss its records",
                 "segment=%s", s->base);
        return HQ_EIO;
    }
    return rc;
}

/* ================================================================== scan */

static bool plain_id(const char *id)
{
    const unsigned char *p;

    for (p = (const unsigned char *)id; *p; p++)
        if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '/')
            return false;
    return true;
}

static int reader_init(struct reader *rd, const struct hq_afilter *f, hq_arec_fn fn, void *arg,
                       struct hq_ascan_stats *st)
{
    struct hq_buf carry = HQ_BUF_INIT((size_t)HQ__AREC_LINE_MAX);

    memset(rd, 0, sizeof(*rd));
    rd->f = f;
    rd->fn = fn;
    rd->arg = arg;
    rd->st = st;
    rd->carry = carry;
    if (f->id && plain_id(f->id)) {
        size_t n = strlen(f->id) + 8;

        rd->id_frag = malloc(n + 1);
        if (!rd->id_frag)
            return HQ_ENOMEM;
        rd->id_frag_len = (size_t)snprintf(rd->id_frag, n + 1, "\"id\":\"%s\"", f->id);
    }
    return HQ_OK;
}

static void reader_free(struct reader *rd)
{
    free(rd->id_frag);
    hq_buf_free(&rd->carry);
}

int hq_archive_scan_ex(const char *dir, const struct hq_afilter *f, hq_arec_fn fn, void *arg,
                       struct hq_ascan_stats *st)
{
    struct hq_ascan_stats local;
    struct hq__aseg *segs = NULL;
    struct reader rd;
    size_t n = 0, i;
    int rc;

    if (!st)
        st = &local;
    memset(st, 0, sizeof(*st));
    if (!dir || !f || !fn)
        return HQ_EINVAL;
    if (f->from_ms >= f->to_ms)
        return HQ_OK;
    rc = hq__aseg_list(dir, &segs, &n);
    if (rc != HQ_OK)
        return rc;
    st->segments_total = n;
    rc = reader_init(&rd, f, fn, arg, st);
    for (i = 0; rc == HQ_OK && i < n && !rd.stop; i++)
        rc = scan_segment(&rd, &segs[i]);
    if (rc == HQ_OK && rd.stop)
        rc = rd.stop;
    reader_free(&rd);
    hq__aseg_free(segs, n);
    hq_debug("archive scan", "dir=%s segments=%llu indexes_read=%llu segments_opened=%llu "
                             "frames_read=%llu records_read=%llu records_parsed=%llu skipped=%llu",
             dir, (unsigned long long)st->segments_total, (unsigned long long)st->indexes_read,
             (unsigned long long)st->segments_opened, (unsigned long long)st->frames_read,
             (unsigned long long)st->records_read, (unsigned long long)st->records_parsed,
             (unsigned long long)st->skipped);
    return rc;
}

int hq_archive_scan(const char *dir, const struct hq_afilter *f, hq_arec_fn fn, void *arg,
                    uint64_t *skipped)
{
    struct hq_ascan_stats st;
    int rc = hq_archive_scan_ex(dir, f, fn, arg, &st);

    if (skipped)
        *skipped = st.skipped;
    return rc;
}

/* ================================================================== stats */

struct srow {
    int64_t hour;
    char *source;
    uint64_t events, lifecycle;
};

struct smap {
    struct srow *v;
    size_t n, cap;
    size_t *slots;
    size_t nslots;
    int rc;
};

static uint64_t srow_hash(int64_t hour, const char *source)
{
    return hq_murmur64a((uint64_t)hour, source, strlen(source));
}

static uint64_t smap_entry_hash(const void *arg, size_t i)
{
    const struct srow *r = &((const struct smap *)arg)->v[i];

    return srow_hash(r->hour, r->source);
}

static struct srow *smap_get(struct smap *m, int64_t hour, const char *source)
{
    struct srow *nv;
    size_t j;

    if (hq__aslots_reserve(&m->slots, &m->nslots, m->n, smap_entry_hash, m) != HQ_OK)
        return NULL;
    for (j = (size_t)srow_hash(hour, source) & (m->nslots - 1); m->slots[j];
         j = (j + 1) & (m->nslots - 1)) {
        struct srow *r = &m->v[m->slots[j] - 1];
        if (r->hour == hour && strcmp(r->source, source) == 0)
            return r;
    }
    nv = hq_array_grow(m->v, &m->cap, m->n, sizeof(*nv), 64);
    if (!nv)
        return NULL;
    m->v = nv;
    m->v[m->n].hour = hour;
    m->v[m->n].source = strdup(source);
    m->v[m->n].events = m->v[m->n].lifecycle = 0;
    if (!m->v[m->n].source)
        return NULL;
    m->slots[j] = ++m->n;
    return &m->v[m->n - 1];
}

struct stats_scan {
    struct smap *m;
    struct hq__hset seen; /* per segment */
};

static int stats_rec(void *arg, const struct hq_arec *r)
{
    struct stats_scan *ss = arg;
    struct srow *row;
    bool added = true;

    if (r->kind == HQ_AREC_EVENT && r->id[0] &&
        hq__hset_add(&ss->seen, r->source, r->id, &added) != HQ_OK)
        return HQ_ENOMEM;
    row = smap_get(ss->m, hq_hour_start(r->received_at), r->source);
    if (!row)
        return HQ_ENOMEM;
    if (r->kind == HQ_AREC_EVENT) {
        if (added)
            row->events++;
    } else {
        row->lifecycle++;
    }
    return 0;
}

static int srow_cmp(const void *a, const void *b)
{
    const struct hq_astat *x = a, *y = b;

    if (x->hour_ms != y->hour_ms)
        return x->hour_ms < y->hour_ms ? -1 : 1;
    return strcmp(x->source, y->source);
}

void hq_astat_free(struct hq_astat *rows, size_t n)
{
    size_t i;

    if (!rows)
        return;
    for (i = 0; i < n; i++)
        free(rows[i].source);
    free(rows);
}

int hq_archive_stats(const char *dir, int64_t from_ms, int64_t to_ms, struct hq_astat **rows,
                     size_t *n_rows, struct hq_ascan_stats *st)
{
    struct hq_ascan_stats local;
    struct hq__aseg *segs = NULL;
    struct smap m;
    struct hq_afilter f;
    struct reader rd;
    struct stats_scan ss;
    size_t n = 0, i;
    int rc;

    *rows = NULL;
    *n_rows = 0;
    if (!st)
        st = &local;
    memset(st, 0, sizeof(*st));
    memset(&m, 0, sizeof(m));
    memset(&ss, 0, sizeof(ss));
    ss.m = &m;
    hq_afilter_init(&f);
    f.from_ms = from_ms;
    f.to_ms = to_ms;
    f.kinds = (1u << HQ_AREC_EVENT) | (1u << HQ_AREC_LIFECYCLE);
    rc = hq__aseg_list(dir, &segs, &n);
    if (rc != HQ_OK)
        return rc;
    st->segments_total = n;
    rc = reader_init(&rd, &f, stats_rec, &ss, st);
    for (i = 0; rc == HQ_OK && i < n; i++) {
        const struct hq__aseg *s = &segs[i];

        if (s->zst && s->idx) {
            char ipath[PATH_MAX + 8];
            struct hq__aidx x;

            snprintf(ipath, sizeof(ipath), "%s.idx", s->base);
            if (hq__aidx_load(ipath, true, true, 0, &x) == HQ_OK) {
                size_t k;

                st->indexes_read++;
                if (!x.has_range || x.max_at < from_ms || x.min_at >= to_ms) {
                    hq__aidx_free(&x);
                    continue; /* nothing in the window */
                }
                if (x.min_at >= from_ms && x.max_at < to_ms) {
                    /* wholly inside: the index has the counts */
                    for (k = 0; k < x.n_counts; k++) {
                        const struct hq__acount *c = &x.counts[k];
                        struct srow *row;

                        if (c->kind == HQ_AREC_TRACE)
                            continue;
                        row = smap_get(&m, c->hour_ms, c->source);
                        if (!row) {
                            rc = HQ_ENOMEM;
                            break;
                        }
                        if (c->kind == HQ_AREC_EVENT)
                            row->events += c->n - c->dup;
                        else
                            row->lifecycle += c->n;
                    }
                    hq__aidx_free(&x);
                    continue;
                }
                hq__aidx_free(&x);
            }
        }
        rc = scan_segment(&rd, s);
        if (rc == HQ_OK && rd.stop)
            rc = rd.stop;
        hq__hset_free(&ss.seen);
    }
    reader_free(&rd);
    hq__aseg_free(segs, n);
    hq__hset_free(&ss.seen);
    if (rc == HQ_OK && m.n) {
        struct hq_astat *out = calloc(m.n, sizeof(*out));

        if (!out) {
            rc = HQ_ENOMEM;
        } else {
            for (i = 0; i < m.n; i++) {
                out[i].hour_ms = m.v[i].hour;
                out[i].source = m.v[i].source;
                out[i].events = m.v[i].events;
                out[i].lifecycle = m.v[i].lifecycle;
                m.v[i].source = NULL;
            }
            qsort(out, m.n, sizeof(*out), srow_cmp);
            *rows = out;
            *n_rows = m.n;
        }
    }
    for (i = 0; i < m.n; i++)
        free(m.v[i].source);
    free(m.v);
    free(m.slots);
    return rc;
}
