/* hq_archive: the firehose archive on disk (docs/archive.md) — writing segments,
 * reading them back (plain or compressed), per-segment indexes, and the filters shared by
 * `hookmq-archive query|history|stats` and `hookmq-replay`.
 *
 * Layout under archive.dir:
 *   YYYY/MM/DD/HH.jsonl        the open segment of that hour (by the logger's clock), one
 *                              archive record per line, append-only, fsync'd per batch
 *   YYYY/MM/DD/HH.jsonl.zst    a closed segment, compressed (independent zstd frames)
 *   YYYY/MM/DD/HH.idx          its index: received_at range of the records inside, counts per
 *                              source and type, and event-id hashes -> frame, so an id is
 *                              found without scanning every record (the hash is of the id
 *                              alone, so a lookup without a source uses it too; the source is
 *                              checked on the record)
 * A torn last line (crash mid-write) is detected, skipped and reported when read.
 * An hour whose segment was already closed when the logger writes to it again (the clock
 * stepped back) gets HH.1.jsonl, HH.2.jsonl, ... (same extensions), and so does one whose
 * compression has begun (the compressor holds a flock on the .jsonl it reads until it has
 * deleted it; the writer holds one on the segment it appends to); archive.dir/.lock is held
 * by the one logger writing there. Formats: docs/archive.md and core/hq__archive.h (index). */
#ifndef HQ_ARCHIVE_H
#define HQ_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq_status.h"
#include "hq_buf.h"
#include "hq_event.h"
#include "hq_utf8.h" /* hq_utf8_valid, which used to be declared here */
#include "hq_lifecycle.h"

struct hq_delivery; /* hq_consume.h */
struct hq_amqp;     /* hq_amqp.h */

/* Record kinds. "trace" records come only from the optional firehose tracer
 * (`hookmq-archive run --firehose-trace`), an extension of the "event" | "lifecycle" kinds
 * of docs/archive.md. */
enum hq_arec_kind { HQ_AREC_EVENT = 0, HQ_AREC_LIFECYCLE = 1, HQ_AREC_TRACE = 2 };

/* One decoded archive record. Strings owned; free with hq_arec_free(). */
struct hq_arec {
    bool lifecycle;          /* kind "lifecycle" (else "event") */
    int64_t received_at;     /* ms */
    char *source, *type, *id, *routing_key;
    char *properties_json;   /* the "properties" object as JSON text */
    char *headers_json;      /* the "headers" object as JSON text */
    unsigned char *body;     /* exact bytes (from "body" or "body_b64") */
    size_t body_len;
    char *line;              /* the raw JSON line as stored (without '\n') */
    /* additions (after the original members) */
    enum hq_arec_kind kind;  /* event / lifecycle / trace; lifecycle == (kind == LIFECYCLE) */
    size_t line_len;
};
void hq_arec_free(struct hq_arec *r); /* NULL-safe; leaves *r zeroed */
/* Parse one stored line (strict JSON). HQ_EINVAL when it is not a valid record. */
HQ_MUST_CHECK int hq_arec_parse(const char *line, size_t n, struct hq_arec *out);

/* Filters of query/history/replay. Unset fields match everything. Borrowed strings. */
struct hq_afilter {
    int64_t from_ms, to_ms;  /* [from, to) on received_at; INT64_MIN/INT64_MAX when unset */
    const char *source;      /* exact */
    const char *type_glob;   /* fnmatch on the event type (hookmq-event-type) */
    const char *id;          /* exact event id */
    const char *grep;        /* body substring */
    bool events_only;        /* skip lifecycle records */
    /* addition: kinds to return, a mask of 1u << enum hq_arec_kind; 0 (what
     * hq_afilter_init sets) = events and lifecycle records (events only with events_only).
     * Trace records are returned only when asked for here. */
    unsigned kinds;
};
void hq_afilter_init(struct hq_afilter *f);
bool hq_afilter_match(const struct hq_afilter *f, const struct hq_arec *r);

/* Iterate every record matching f across the archive in dir, segment by segment in time
 * order, reading only segments whose index (or, for the open segment, its name's hour and a
 * slack for late events) overlaps [from, to), and using the id index when f->id is set.
 * fn returns 0 to go on, non-zero to stop (its value is returned). Torn or invalid lines are
 * skipped and counted in *skipped (may be NULL) and reported once per segment at warn level. */
typedef int (*hq_arec_fn)(void *arg, const struct hq_arec *r);
HQ_MUST_CHECK int hq_archive_scan(const char *dir, const struct hq_afilter *f, hq_arec_fn fn,
                                  void *arg, uint64_t *skipped);


/* ============================================================== additions (archive owner) */

/* Scan counters, for --verbose and the benchmarks. */
struct hq_ascan_stats {
    uint64_t segments_total;  /* segments found under dir */
    uint64_t indexes_read;    /* .idx files read (header or whole) */
    uint64_t segments_opened; /* segments whose data (.jsonl or .jsonl.zst) was read */
    uint64_t frames_read;     /* zstd frames decompressed */
    uint64_t records_read;    /* lines looked at */
    uint64_t records_parsed;  /* lines parsed as JSON */
    uint64_t skipped;         /* torn or invalid lines */
};

/* hq_archive_scan with counters (st may be NULL; it is zeroed first). Same contract. */
HQ_MUST_CHECK int hq_archive_scan_ex(const char *dir, const struct hq_afilter *f, hq_arec_fn fn,
                                     void *arg, struct hq_ascan_stats *st);

/* ---- records */

/* Append one archive record line (with its '\n') for message m to out:
 * kind: as given; received_at: the `hookmq-received-at` header, else the message timestamp,
 * else now_ms (lifecycle: the body's "at", else the same fallbacks); source/id/type: for events
 * `hookmq-source`, message_id, `hookmq-event-type` (falling back to the routing key's parts);
 * for lifecycle records `hookmq-source`, `hookmq-event-id`, `hookmq-verdict` (falling back to
 * the body's "source", "id", "verdict"). properties: message_id, content_type, timestamp,
 * delivery_mode (when non-zero). headers: every header; integers as JSON numbers, strings as
 * JSON strings when valid UTF-8, else {"b64":"..."} (so replay gets the exact bytes). The
 * top-level source/type/id/routing_key are for display and filtering: invalid UTF-8 in them
 * becomes U+FFFD. Body: "body" when valid UTF-8, else "body_b64". m is borrowed.
 * HQ_OK, HQ_ENOMEM, HQ_ETOOBIG (out's cap). */
HQ_MUST_CHECK int hq_arec_encode_msg(enum hq_arec_kind kind, const struct hq_msg *m,
                                     uint8_t delivery_mode, int64_t now_ms, struct hq_buf *out);
/* The same for a delivery from hookmq.archive: the kind follows the exchange it was published
 * to (hookmq.lifecycle: lifecycle; amq.rabbitmq.trace: trace; anything else: event). A batch
 * of lifecycle records (hq_lc_batch: header hookmq-records, one record per line) gives one
 * archive record per line, message_id "<batch message_id>.<n>" (n from 1), all or none.
 * *nrec (may be NULL) gets the number of records appended. */
HQ_MUST_CHECK int hq_arec_encode(const struct hq_delivery *d, int64_t now_ms, struct hq_buf *out,
                                 size_t *nrec);

/* Rebuild the message a record was made from (for replay): routing key, message_id,
 * content_type, timestamp and headers from "properties" / "headers" (exact bytes, also for
 * {"b64"} values), body. Caller frees out with hq_msg_free(). HQ_EINVAL when the record's
 * properties or headers are malformed. */
HQ_MUST_CHECK int hq_arec_to_msg(const struct hq_arec *r, struct hq_msg *out);

/* A set of (source, id) pairs (two 64-bit hashes each) to collapse duplicates from
 * redelivery, as query, history and replay do. Not thread-safe. */
struct hq_aseen;
struct hq_aseen *hq_aseen_new(void); /* NULL on ENOMEM; free with hq_aseen_free() */
/* 1 when the pair is new (now added), 0 when it was seen before, HQ_ENOMEM. */
int hq_aseen_add(struct hq_aseen *s, const char *source, const char *id);
size_t hq_aseen_count(const struct hq_aseen *s);
void hq_aseen_free(struct hq_aseen *s); /* NULL-safe */

/* ---- segments: writer, compression, retention (used by hookmq-archive run) */

#define HQ_ARCHIVE_FRAME_BYTES (1u << 20) /* uncompressed lines per zstd frame (about) */
#define HQ_ARCHIVE_SKEW_MS (5 * 60 * 1000LL)      /* clock skew allowed between hosts */
#define HQ_ARCHIVE_LATE_MS (24 * 3600 * 1000LL)   /* open segments: how late events may be */

/* The base path (without extension) of segment seq of the hour containing t_ms (UTC):
 * dir/YYYY/MM/DD/HH, or dir/YYYY/MM/DD/HH.seq when seq > 0 (a later segment of an hour whose
 * earlier one was already closed, e.g. after a clock step back). HQ_ETOOBIG if out is short. */
HQ_MUST_CHECK int hq_archive_segment_base(const char *dir, int64_t t_ms, unsigned seq, char *out,
                                          size_t outsz);

struct hq_awriter;

/* Open a writer on dir (created if missing, with parents) and lock dir/.lock (flock): one
 * logger per directory. HQ_EIO with err filled when dir cannot be used or is locked by another
 * process. Caller frees with hq_awriter_close(). Not thread-safe (one logger thread). */
HQ_MUST_CHECK int hq_awriter_open(const char *dir, struct hq_awriter **out, char *err,
                                  size_t errsz);
/* Append n bytes (whole record lines) to the segment of the hour of now_ms and fdatasync
 * them before returning HQ_OK: only then may the deliveries be acked. A segment of an earlier
 * hour still open is closed first and its base path copied to closed (closed[0] = '\0' when
 * none): the caller compresses it. Reopening an existing segment whose last line is torn
 * terminates that line first (it stays, and is reported and skipped when read). On a failed
 * write the file is truncated back to its last synced size: HQ_EFULL when the disk is full
 * (ENOSPC, EDQUOT; the caller may retry the same batch later), HQ_EIO otherwise. On a failed
 * fsync the writer is unusable (HQ_EIO: exit without acking). *fsync_s (may be NULL) gets the fsync time. */
HQ_MUST_CHECK int hq_awriter_append(struct hq_awriter *w, int64_t now_ms, const void *data,
                                    size_t n, char *closed, size_t closedsz, double *fsync_s);
/* Close the open segment if now_ms is in a later hour (idle logger at a rollover); its base
 * path goes to closed as above. Returns true when a segment was closed. */
bool hq_awriter_tick(struct hq_awriter *w, int64_t now_ms, char *closed, size_t closedsz);
/* The base path of the open segment, or NULL. Borrowed until the next call. */
const char *hq_awriter_current(const struct hq_awriter *w);
/* fsync and close the open segment (left uncompressed: the next start, or the next hour,
 * compresses it), release the lock, free. NULL-safe. */
void hq_awriter_close(struct hq_awriter *w);

struct hq_acompress_stats {
    uint64_t records, invalid, frames, bytes_in, bytes_out;
};

/* Compress the closed segment base.jsonl into base.jsonl.zst (independent zstd frames of
 * about HQ_ARCHIVE_FRAME_BYTES of whole lines) and write its index base.idx: both to temporary
 * names, fsync'd, renamed (.idx first, .jsonl.zst last: its presence marks a complete
 * segment), directory fsync'd, then base.jsonl is deleted. Idempotent: when base.jsonl.zst
 * already exists only the leftover base.jsonl is deleted. The source is claimed first with
 * an exclusive flock on base.jsonl, held until it is deleted: HQ_ECONFLICT (nothing done) when
 * the writer holds it (it appends to that segment again: compress it once it is closed), and
 * a writer never appends to a claimed segment. cancel (may be NULL) is polled
 * between frames: when it becomes non-zero the temporary files are removed and
 * HQ_ESHUTDOWN returned. err gets a message on failure. */
HQ_MUST_CHECK int hq_archive_compress(const char *base, const volatile int *cancel,
                                      struct hq_acompress_stats *st, char *err, size_t errsz);

/* Segments under dir that are closed but not compressed: every base.jsonl not of the hour of
 * now_ms (nor the writer's current segment), and leftovers of an interrupted compression
 * (temporary files are deleted here). Calls fn(arg, base) for each, oldest first. */
HQ_MUST_CHECK int hq_archive_pending(const char *dir, int64_t now_ms, const char *current,
                                     void (*fn)(void *arg, const char *base), void *arg);

/* Delete whole segments (.jsonl.zst, .idx, .jsonl) whose hour ended more than keep_days
 * before now_ms, then empty day/month/year directories. keep_days <= 0 keeps everything.
 * *deleted (may be NULL) gets the number of segments deleted. */
HQ_MUST_CHECK int hq_archive_retention(const char *dir, int keep_days, int64_t now_ms,
                                       unsigned *deleted);

/* ---- stats (hookmq-archive stats) */

struct hq_astat {
    int64_t hour_ms;    /* hour of received_at */
    char *source;       /* owned */
    uint64_t events;    /* event records, duplicates (same source and id) collapsed per segment */
    uint64_t lifecycle; /* lifecycle records */
};

/* Counts per hour and source of the records received in [from_ms, to_ms): from the index of
 * closed segments that lie wholly inside the window, else by reading records. *rows sorted
 * by hour then source; caller frees with hq_astat_free(). st may be NULL. */
HQ_MUST_CHECK int hq_archive_stats(const char *dir, int64_t from_ms, int64_t to_ms,
                                   struct hq_astat **rows, size_t *n, struct hq_ascan_stats *st);
void hq_astat_free(struct hq_astat *rows, size_t n);

/* ---- broker side of the logger (core/archive_amqp.c: rabbitmq-c stays in core/) */

/* basic.ack with multiple=1: every delivery up to and including tag on c's channel 1. */
HQ_MUST_CHECK int hq_archive_ack_upto(struct hq_amqp *c, uint64_t tag);
/* Firehose tracer source: declare a server-named, exclusive, auto-delete classic queue
 * (x-max-length 100000, drop-head) bound to amq.rabbitmq.trace with binding_key, name into
 * qname. Call before consuming anything on c. HQ_ENOTFOUND when amq.rabbitmq.trace is missing
 * (HQ_EBROKER for other refusals). */
HQ_MUST_CHECK int hq_archive_trace_queue(struct hq_amqp *c, const char *binding_key, char *qname,
                                         size_t qnamesz);

/* ---- history (hookmq-archive history, the console's event detail; core/archive_history.c) */

/* One entry of an event's history: its event record (one per source, copies counted) or one
 * of its lifecycle records (identical redelivered records once). Strings owned. */
struct hq_ahist_entry {
    enum hq_arec_kind kind;
    int64_t at;                /* received_at; lifecycle: the record's "at" when set */
    char *source, *type, *routing_key;
    char *line;                /* the stored record line (parse it with hq_arec_parse) */
    size_t body_len;
    unsigned copies;           /* events: copies in the archive (redeliveries) */
    size_t seq;                /* order read: the last tie-break of the sort */
    struct hq_lc_parsed lc;    /* lifecycle records: the parsed body (zeroed otherwise) */
};

struct hq_ahistory {
    struct hq_ahist_entry *v; /* owned; sorted by source, then time (received first; redriven
                                 and replayed before the outcomes in the same ms) */
    size_t n;
};

/* Every event and lifecycle record of event id (from source, or any source when NULL) in the
 * archive in dir, sorted. *out is overwritten; the caller frees it with hq_ahistory_free()
 * (also after an error). n == 0 when nothing was found. st may be NULL. */
HQ_MUST_CHECK int hq_archive_history(const char *dir, const char *id, const char *source,
                                     struct hq_ahistory *out, struct hq_ascan_stats *st);
void hq_ahistory_free(struct hq_ahistory *h); /* NULL-safe; leaves *h empty */

/* Append headers_json (an archive record's "headers" object) to out as a JSON object with the
 * value of every header for which redact(arg, name) is true replaced by "[redacted]" (for
 * display: signature headers). HQ_EINVAL when headers_json is not a JSON object, HQ_ENOMEM,
 * HQ_ETOOBIG (out's cap). */
HQ_MUST_CHECK int hq_arec_headers_redacted(const char *headers_json,
                                           bool (*redact)(void *arg, const char *name), void *arg,
                                           struct hq_buf *out);

#endif