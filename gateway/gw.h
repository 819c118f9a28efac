/* gw.h: internals shared by the gateway's files (not an API). */
#ifndef HQ_GW_H
#define HQ_GW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/types.h>

#include "hq_config.h"
#include "hq_event.h"
#include "hq_metrics.h"
#include "hq_pub.h"
#include "hq_sig.h"

/* A refcounted config snapshot: SIGHUP installs a new one; requests hold the one they
 * started with until they finish. */
struct gw_snap {
    atomic_int refs;
    struct hq_config *cfg;
};

struct gw_spool;
struct gw_replay;

struct gw {
    pthread_mutex_t snap_lock;
    struct gw_snap *snap;          /* current; guarded by snap_lock */
    const struct hq_config *boot;  /* the config the process started with (listen, broker) */
    struct hq_pub *pub;
    struct gw_spool *spool;        /* NULL without spool_dir */
    struct gw_replay *replay;
    struct hq_metrics *metrics;
    atomic_int in_flight;  /* admitted requests (admission control) */
    atomic_int active;     /* webhook requests inside the handler, body reading included */
    atomic_bool stopping;  /* SIGTERM: new requests get 503, active ones finish */
    atomic_int http_busy;  /* HTTP threads holding a connection (CivetWeb: one per connection) */
    atomic_llong exhausted_logged_ms; /* monotonic ms of the last "every thread busy" warning */

    /* metric handles that need no labels */
    struct hq_metric *m_in_flight, *m_confirm_latency, *m_broker_up, *m_broker_blocked,
        *m_spooled, *m_replay_hits, *m_spool_events, *m_spool_bytes, *m_drained, *m_http_busy,
        *m_http_threads, *m_http_exhausted;
    /* where a request's time goes (docs/performance.md, "Where 128 connections wait") */
    struct hq_metric *m_stage[5], *m_pub_batch, *m_pub_batches, *m_pub_frames;
};

struct gw_snap *gw_snap_get(struct gw *g);
void gw_snap_put(struct gw_snap *s);

/* http.c */
int gw_http_start(struct gw *g, char *err, size_t errsz);
void gw_http_stop(struct gw *g);

/* bodywatch.c: the deadline of a request body, kept by one watchdog thread instead of a kernel
 * timer per request (see the file's head). The watchdog sends signo to a thread whose slot's
 * deadline has passed, then every GW_BODY_KICK_MS until the slot is disarmed; it wakes at least
 * every idle_ms, which must not exceed the shortest time between a request's start and its
 * deadline. */
#define GW_BODY_KICK_MS 200
struct gw_body_slot;
int gw_body_watch_start(int signo, int64_t idle_ms); /* HQ_OK, HQ_ENOMEM; again: no-op */
void gw_body_watch_stop(void);                       /* joins the watchdog; slots stay */
/* The calling thread's slot (registered until freed); NULL on ENOMEM. */
struct gw_body_slot *gw_body_slot_new(void);
void gw_body_slot_free(struct gw_body_slot *s); /* NULL-safe; by the thread that made it */
/* Set the deadline (hq_mono_ms clock) / clear it, taking a signal the watchdog may have left
 * pending. By the slot's own thread; NULL-safe (no deadline is kept then). */
void gw_body_slot_arm(struct gw_body_slot *s, int64_t deadline_ms);
void gw_body_slot_disarm(struct gw_body_slot *s);
/* The watchdog's decision for one slot at now: *kick when its deadline (0 = none) is set and
 * *next_kick has come, *next_kick then moved GW_BODY_KICK_MS on. Returns when the slot next
 * needs a look (INT64_MAX: never). */
int64_t gw__body_watch_due(int64_t now, int64_t deadline, int64_t *next_kick, bool *kick);

/* verdict.c: the HTTP answer for the status rc of a stage (HQ_OK -> status 0). The request's
 * fault is a 4xx: body HQ_ETOOBIG 413, HQ_ETIMEDOUT 408, HQ_EIO 400; verify HQ_EAUTH or
 * HQ_ESTALE 401 with the verifier's reason; extract HQ_EINVAL 400 with the extractor's
 * reason. Anything else (HQ_ENOMEM, an OpenSSL failure) is ours: 503 "internal" with
 * Retry-After. reason is borrowed (static strings). */
enum gw_stage { GW_STAGE_BODY, GW_STAGE_VERIFY, GW_STAGE_EXTRACT };
#define GW_RETRY_AFTER_INTERNAL_S 5
struct gw_verdict {
    int status;
    const char *reason;
    int retry_after; /* seconds, 0 = no Retry-After */
};
struct gw_verdict gw_verdict(enum gw_stage stage, int rc, const char *reason);

/* replay_cache.c: exact-duplicate cache, keyed by (source, replay key), each source in its own
 * byte budget (docs/signatures.md, "Replay cache"). */
enum gw_replay_state {
    GW_REPLAY_NEW,       /* not seen: marked in flight; commit or abort with the ticket */
    GW_REPLAY_HIT,       /* accepted before: orig_id is the original id */
    GW_REPLAY_IN_FLIGHT, /* the same request was still being published at the deadline */
};
struct gw_replay *gw_replay_new(void);
void gw_replay_free(struct gw_replay *r);
/* Look (source, key) up; while a copy is in flight, wait for its outcome until
 * wait_until_mono_ms (hq_mono_ms clock). On NEW the entry is created in flight (its source
 * kept within max_bytes by evicting that source's oldest entries) and *ticket is set (0 if
 * out of memory: the request then goes through unprotected). */
enum gw_replay_state gw_replay_begin(struct gw_replay *r, const char *source,
                                     const unsigned char *key, const char *id, size_t max_bytes,
                                     int64_t now_ms, int64_t wait_until_mono_ms, char *orig_id,
                                     size_t idsz, uint64_t *ticket);
/* The publish succeeded: keep the entry until expires_ms. A ticket of 0 does nothing. */
void gw_replay_commit(struct gw_replay *r, const char *source, const unsigned char *key,
                      uint64_t ticket, int64_t expires_ms);
/* The request was not accepted: remove the in-flight mark so a retry goes through. */
void gw_replay_abort(struct gw_replay *r, const char *source, const unsigned char *key,
                     uint64_t ticket);
/* Expiry of an accepted entry: max(signed t, now) + tolerance; now + no_ts_ms when the
 * scheme has no signed timestamp (signed_ts_s < 0) or the check is off (tolerance_s 0). */
int64_t gw_replay_expiry(int64_t signed_ts_s, int64_t now_ms, int tolerance_s, int64_t no_ts_ms);
/* The key of a request whose provider gave it a delivery id: SHA-256(MAC key, 0, id), so a
 * new delivery of an identical body is never taken for a replay. */
int gw_replay_key_with_id(const unsigned char *mac_key, const char *id, unsigned char *out);
size_t gw_replay_entry_bytes(const char *id);
size_t gw_replay_source_bytes(struct gw_replay *r, const char *source);

/* spool.c: fsync'd journal of events the broker did not confirm, and its drainer. */
int gw_spool_open(const char *dir, uint64_t max_bytes, struct gw_spool **out, char *err,
                  size_t errsz);
/* Append m durably (fsync'd before return). HQ_EFULL beyond max_bytes, HQ_EIO on write
 * failure (disk full...). Thread-safe (group commit). */
int gw_spool_append(struct gw_spool *s, const struct hq_msg *m);
bool gw_spool_writable(struct gw_spool *s);
void gw_spool_counts(struct gw_spool *s, uint64_t *events, uint64_t *bytes);
/* Start the drainer thread: republishes spooled events through pub to exchange (confirmed
 * before a segment is deleted). */
int gw_spool_start_drainer(struct gw_spool *s, struct hq_pub *pub, const char *exchange,
                           int confirm_timeout_ms, struct hq_metric *drained,
                           struct hq_metric *quarantined, struct hq_metric *quarantine_records);
/* Records set aside in spool_dir/quarantine.hqs (undecodable ones). */
uint64_t gw_spool_quarantined(struct gw_spool *s);
/* Print one line per record of the spool segments in dir (or of its quarantine):
 * file, offset, event id, routing key, source (or "undecodable"), bytes; tab-separated.
 * *count gets the number of records. Reads only: safe while a gateway runs. */
int gw_spool_list(const char *dir, bool quarantine, FILE *out, size_t *count);
/* Put every record of dir's quarantine back for the drainer (the quarantine file becomes the
 * newest segment). Refuses (HQ_ECONFLICT) while a gateway holds the spool. *count gets the
 * number of records moved; err is set on failure. */
int gw_spool_retry_quarantine(const char *dir, size_t *count, char *err, size_t errsz);
/* Test hooks: the calls whose failures the spool handles (default: the libc ones). */
struct gw__spool_io {
    ssize_t (*write)(int fd, const void *p, size_t n);
    int (*fdatasync)(int fd);
    int (*ftruncate)(int fd, off_t len);
};
extern struct gw__spool_io gw__spool_io;
/* The drainer's step for one closed segment (tests). */
int gw__spool_drain_segment(struct gw_spool *s, uint64_t seq);
void gw_spool_close(struct gw_spool *s); /* stops the drainer; NULL-safe */

#endif
