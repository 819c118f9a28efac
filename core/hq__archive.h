/* hq__archive: internals shared by core/archive.c (records, writer), core/archive_index.c
 * (compression, index, retention) and core/archive_read.c (scan, stats). Not an interface.
 *
 * Index file (base.idx), written once by hq_archive_compress and never changed:
 *   1. one JSON line (the header, <= HQ__AIDX_HEADER_MAX bytes, '\n'-terminated):
 *      {"v":1,"records":N,"events":E,"lifecycle":L,"trace":T,"invalid":I,
 *       "min_received_at":ms,"max_received_at":ms,"frames":F,"ids":K,
 *       "counts":[{"hour":ms,"kind":"event","source":"github","type":"push","n":10,"dup":0},..]}
 *      min/max are over the valid records (absent when there are none); counts are per hour of
 *      received_at, kind, source and type; dup = event records whose (source, id) appeared
 *      earlier in the same segment.
 *   2. binary, little-endian: "HQAI", u32 version (1), u32 frames, u32 0, u64 ids;
 *      frames x {u64 offset, u64 csize, u64 usize, i64 min_at, i64 max_at, u32 records,
 *                u32 invalid} (offsets into base.jsonl.zst, contiguous from 0);
 *      ids x {u64 hash of the event id (hq_murmur64a seed 0), u32 frame, u32 0}, sorted by
 *      (hash, frame), no duplicates;
 *      u64 FNV-1a 64 of every byte before it (header line included). */
#ifndef HQ__ARCHIVE_H
#define HQ__ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq_archive.h"
#include "hq_buf.h"
#include "hq_fs.h"
#include "hq_hash.h"
#include "hq_time.h"

#define HQ__AIDX_MAGIC "HQAI"
#define HQ__AIDX_VERSION 1u
#define HQ__AIDX_HEADER_MAX (64u << 20)
#define HQ__AIDX_FRAME_BYTES 48u
#define HQ__AIDX_ID_BYTES 16u
#define HQ__AIDX_FIXED_BYTES 24u /* magic .. n_ids */
#define HQ__AREC_LINE_MAX (512u << 20) /* longest record line read back */

/* Hashes (hq_murmur64a, hq_fnv1a64): core/hq_hash.h. Hours and UTC calendar hours
 * (hq_hour_start, hq_utc_hour, HQ_HOUR_MS): core/hq_time.h. Lines of a buffer (hq_lines):
 * core/hq_buf.h. Reading a file, fsyncing a directory and mkdir -p: core/hq_fs.h. */

/* ---- a set of (source, id) keys (archive.c) */

/* A set of 128-bit keys (two hq_murmur64a of "source\0id"), open addressing. */
struct hq__hset {
    uint64_t *slots; /* 2 words per slot; (0, 0) = empty */
    size_t cap;      /* slots, power of two */
    size_t n;
};
/* Insert; *added says whether it was new. HQ_OK / HQ_ENOMEM. */
HQ_MUST_CHECK int hq__hset_add(struct hq__hset *s, const char *source, const char *id,
                               bool *added);
void hq__hset_free(struct hq__hset *s);

/* An open-addressing index over the n entries of an array (the index's counts, the stats'
 * rows): slots[j] holds an entry's position + 1, 0 when empty; nslots is a power of two. Make
 * room for one more entry: once it would be over half full, the slots are rebuilt, twice as
 * many (256 at first), with hash(arg, i) giving entry i's hash. HQ_OK / HQ_ENOMEM (the index
 * unchanged). */
HQ_MUST_CHECK int hq__aslots_reserve(size_t **slots, size_t *nslots, size_t n,
                                     uint64_t (*hash)(const void *arg, size_t i), const void *arg);

/* ---- the index (archive_index.c) */

struct hq__aframe {
    uint64_t offset, csize, usize;
    int64_t min_at, max_at;
    uint32_t records, invalid;
};

struct hq__acount {
    int64_t hour_ms;
    enum hq_arec_kind kind;
    char *source, *type; /* owned */
    uint64_t n, dup;
};

struct hq__aidx {
    uint64_t records, events, lifecycle, trace, invalid;
    bool has_range;
    int64_t min_at, max_at;
    uint32_t n_frames;
    uint64_t n_ids;
    struct hq__aframe *frames; /* NULL when only the header was loaded */
    unsigned char *ids;        /* n_ids x 16 bytes as in the file (copied); NULL likewise */
    struct hq__acount *counts; /* NULL unless loaded with counts */
    size_t n_counts;
};

/* Load path. header_only: only the JSON line (range and totals); with_counts: parse the
 * counts too. A full load verifies sizes, sortedness, frame bounds (against zst_size when
 * non-zero) and the checksum. HQ_EINVAL when malformed, HQ_ENOTFOUND when absent. */
HQ_MUST_CHECK int hq__aidx_load(const char *path, bool header_only, bool with_counts,
                                uint64_t zst_size, struct hq__aidx *out);
/* The same over an in-memory file (fuzzing, tests). */
HQ_MUST_CHECK int hq__aidx_parse(const char *p, size_t n, bool header_only, bool with_counts,
                                 uint64_t zst_size, struct hq__aidx *out);
void hq__aidx_free(struct hq__aidx *x);
/* Frames that may hold id: a sorted, de-duplicated list of frame numbers into out (capacity
 * outcap); returns how many (capped). */
size_t hq__aidx_lookup(const struct hq__aidx *x, const char *id, uint32_t *out, size_t outcap);

/* ---- segments (archive_read.c) */

struct hq__aseg {
    int64_t hour_ms;
    unsigned seq;
    char *base;      /* owned: dir/YYYY/MM/DD/HH[.seq] */
    bool jsonl, zst, idx;
    bool tmp;        /* .jsonl.zst.tmp or .idx.tmp left by an interrupted compression */
};

/* Every segment under dir, sorted by (hour, seq). Caller frees with hq__aseg_free. A missing
 * dir is HQ_ENOTFOUND. */
HQ_MUST_CHECK int hq__aseg_list(const char *dir, struct hq__aseg **out, size_t *n);
void hq__aseg_free(struct hq__aseg *s, size_t n);

/* ---- test hooks: NULL in the programs; unit tests set them to act at a precise moment */

/* Called by a scan (archive_read.c) after the listing, just before the data of a listed
 * segment is opened, with its base path. */
extern void (*hq__ascan_hook)(void *arg, const char *base);
extern void *hq__ascan_hook_arg;
/* Called by hq_archive_compress (archive_index.c) once it has read the .jsonl and written the
 * temporary .jsonl.zst and .idx, before they are renamed into place and the .jsonl deleted,
 * while it holds the source's flock. */
extern void (*hq__acompress_hook)(void *arg, const char *base);
extern void *hq__acompress_hook_arg;

#endif
