/* worker.h: internals of hookmq-worker (the consumer runtime), shared by worker_main.c,
 * worker.c, worker_msg.c, worker_steps.c, dedupe.c, worker_inflight.c, ratelimit.c and
 * redrive.c. Not an
 * installed interface (handlers see only hookmq/handler.h).
 *
 * Threads of one worker process:
 *   main          start-up checks, signals (sigwait), SIGHUP reload, shutdown
 *   slot i        (x concurrency) owns one broker connection and one handler state: consume,
 *                 call the handler, settle (retry / DLQ copy with a publisher confirm, then ack)
 *   keeper        services the connection of a slot whose handler has run for a while
 *                 (heartbeats), taking the slot's conn_mu, which the slot releases around
 *                 handle(); abandons hung slots once SIGTERM's stop timeout has passed
 *   redrive       optional (consumer's `redrive` group): own connection, DLQ -> work queue
 *   metrics       CivetWeb threads serving /metrics on the consumer's metrics_listen
 * A rabbitmq-c connection is used by one thread at a time, handed over under conn_mu. */
#ifndef HQ_WORKER_H
#define HQ_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hookmq/handler.h"
#include "hq_config.h"
#include "hq_event.h"
#include "hq_lifecycle.h"
#include "hq_metrics.h"
#include "hq_pub.h"
#include "hq_status.h"
#include "hq_steps.h"
#include "plugin.h"

/* A redelivered event whose handler took the worker down this many times goes to the DLQ
 * without calling the handler again (worker_inflight.c says why quorum queues need it too). */
#define WK_CRASH_LIMIT 5
/* hookmq-last-error is capped at 1 KiB (docs/interface.md). */
#define WK_LAST_ERROR_MAX 1024
/* Default time SIGTERM waits for running handlers (--stop-timeout overrides). */
#define WK_STOP_TIMEOUT_S 30
/* Publisher confirm wait for retry / DLQ / redrive copies. */
#define WK_CONFIRM_TIMEOUT_MS 10000
/* Broker connect budget per node. */
#define WK_CONNECT_TIMEOUT_MS 5000

/* ------------------------------------------------------------------ config snapshots */

/* One loaded config. SIGHUP loads a new one and swaps it in; readers take a reference. */
struct wk_snap {
    atomic_int refs;
    uint64_t gen;                      /* 1 for the boot config, +1 per successful reload */
    struct hq_config *cfg;             /* owned */
    const struct hq_consumer_cfg *con; /* this worker's consumer inside cfg */
};

/* ------------------------------------------------------------------ dedupe ledger (dedupe.c) */

#define WK_KEY_MAX 1100 /* "<source> <id>", each %-escaped */

/* The ledger key of an event: "<source> <id>" with bytes <= 0x20, 0x7f and '%' written as
 * %XX, so a key is one space-free token pair. false when source or id is empty or the key
 * would not fit. */
bool wk_ledger_key(const char *source, const char *id, char *out, size_t outsz);

/* Claim a ledger file for this process: lock "<path>.lock" (flock, non-blocking); when
 * another live worker holds it, try "<path>.1" ... "<path>.15". The parent directory is
 * created if missing. On success chosen holds the path claimed and *lock_fd the lock (keep it
 * open for the life of the ledger). err says why on failure. */
HQ_MUST_CHECK int wk_claim_path(const char *path, char *chosen, size_t chosensz, int *lock_fd,
                                char *err, size_t errsz);

struct wk_dedupe;

/* Open (create) the ledger at path: load every "<source> <id> <ms>" line younger than
 * window_ms (also from sibling files "<path>.N" written by other workers on this host),
 * rewrite the owned file without the expired lines, and keep it open for appends. When
 * another live worker holds path (flock), the first free "<path>.N" (N = 1..15) is used
 * instead. err gets a message on failure. Caller frees with wk_dedupe_close(). */
HQ_MUST_CHECK int wk_dedupe_open(const char *path, uint64_t window_ms, struct wk_dedupe **out,
                                 char *err, size_t errsz);
/* Has (source, id) been processed within the window? Thread-safe. */
bool wk_dedupe_seen(struct wk_dedupe *d, const char *source, const char *id);
/* Record (source, id) as processed: appended and fsync'd before this returns. Also sweeps
 * entries older than the window from memory (every window/16) and compacts the file when its
 * dead lines outnumber the live ones. Thread-safe. */
HQ_MUST_CHECK int wk_dedupe_record(struct wk_dedupe *d, const char *source, const char *id);
/* Tests: read the wall clock (ms since the epoch) from now instead of hq_now_ms (NULL: back
 * to hq_now_ms). The next record sweeps expired entries. */
void wk_dedupe_set_clock(struct wk_dedupe *d, int64_t (*now)(void));
/* Lines in the owned file now (live, expired and superseded). Thread-safe. */
size_t wk_dedupe_file_lines(struct wk_dedupe *d);
/* The file actually used (path or path.N). */
const char *wk_dedupe_path(const struct wk_dedupe *d);
size_t wk_dedupe_count(struct wk_dedupe *d);
void wk_dedupe_close(struct wk_dedupe *d); /* NULL-safe */

/* ------------------------------------------------------------------ crash ledger
 * (worker_inflight.c) */

struct wk_inflight;

/* Open (create) the crash ledger at path for n_slots slots: count the events whose handler
 * was running when an earlier run died, and start with every slot idle. Caller frees with
 * wk_inflight_close(). */
HQ_MUST_CHECK int wk_inflight_open(const char *path, int n_slots, struct wk_inflight **out,
                                   char *err, size_t errsz);
/* Crashes recorded for key by earlier runs. Thread-safe. */
int wk_inflight_crashes(struct wk_inflight *f, const char *key);
/* Slot slot starts / stopped running the handler for key (end: the delivery is settled;
 * key's crash count is reset). Each slot calls these for itself only; no system call unless
 * a counted key is reset. */
void wk_inflight_begin(struct wk_inflight *f, int slot, const char *key);
void wk_inflight_end(struct wk_inflight *f, int slot, const char *key);
const char *wk_inflight_path(const struct wk_inflight *f);
void wk_inflight_close(struct wk_inflight *f); /* NULL-safe */

/* ------------------------------------------------------------------ rate limit (ratelimit.c) */

/* A token bucket shared by the slots (GCRA form: one event every 1/rate seconds, a burst of
 * max(1, rate / 10)). rate <= 0 means unlimited. Thread-safe. */
struct wk_rate {
    pthread_mutex_t lock;
    double rate;
    double tat_ms; /* theoretical arrival time of the next event (monotonic ms) */
    uint64_t gen;  /* bumped by wk_rate_set */
};

void wk_rate_init(struct wk_rate *r, double rate);
void wk_rate_set(struct wk_rate *r, double rate);
void wk_rate_destroy(struct wk_rate *r);
/* Reserve the next slot: returns how many ms the caller must wait before starting (0 = at
 * once). *gen gets the rate generation the reservation belongs to. */
int64_t wk_rate_reserve(struct wk_rate *r, uint64_t *gen);
uint64_t wk_rate_gen(struct wk_rate *r);

/* ------------------------------------------------------------------ messages (worker_msg.c) */

/* hookmq-attempt of m: a long (or a decimal string), clamped to 1..1000000; absent = 1. */
uint32_t wk_msg_attempt(const struct hq_msg *m);
/* Integer header key (long, or decimal string), or def. */
int64_t wk_msg_long(const struct hq_msg *m, const char *key, int64_t def);

/* Retry tier for attempt n (1-based) that ended in RETRY with the handler's retry_after_ms:
 * delays[min(n, n_delays) - 1]; when retry_after_ms is larger, the smallest delay >= it (the
 * largest delay when none is). */
uint64_t wk_retry_delay(const uint64_t *delays, size_t n_delays, uint32_t n,
                        int64_t retry_after_ms);

/* Copy src into dst without the broker-owned headers (hq_header_broker_owned) and, when
 * drop_dlq is set, without hookmq-consumer, hookmq-attempts, hookmq-last-error and
 * hookmq-failed-at. dst is overwritten; caller frees with hq_msg_free(). */
HQ_MUST_CHECK int wk_msg_clean_copy(const struct hq_msg *src, bool drop_dlq, struct hq_msg *dst);

/* Copy a text for a log field value: '"', '\\' and control bytes (and spaces unless the
 * value will be quoted) become '_'; capped at outsz - 1 bytes. */
void wk_log_safe(char *out, size_t outsz, const char *s, bool quoted);

/* ------------------------------------------------------------------ durable steps
 * (worker_steps.c, docs/plugins.md "Durable steps") */

/* A step saved in the current attempt. */
struct wk_step_new {
    char name[HQ_STEP_NAME_MAX + 1];
    unsigned char *val; /* owned */
    size_t len;
};

/* The steps of the event a slot is handling: those carried in its hookmq-steps header
 * (parsed on first use) and those saved by this attempt. Slot thread only. */
struct wk_steps {
    const struct hq_event *ev;  /* the event of the running handle(); NULL outside */
    const char *carried_text;   /* the delivery's hookmq-steps (borrowed), or NULL */
    bool parsed;
    struct hq_steps carried;
    bool *overridden;           /* carried[i] replaced by a new step (owned) */
    struct wk_step_new *nv;     /* owned, reused from event to event */
    size_t n_new, cap_new;
    size_t bytes;               /* cost of the steps carried now (hq_step_cost) */
    size_t max_bytes;           /* steps.max_bytes */
    const char *consumer;
};

/* Start / end the steps of one event (end frees what the attempt saved). */
void wk_steps_begin(struct wk_steps *st, const struct hq_msg *m, size_t max_bytes,
                    const char *consumer);
void wk_steps_end(struct wk_steps *st);
void wk_steps_free(struct wk_steps *st); /* at slot exit */
/* The text form (hq_steps.h) of every step carried now, into out, when this attempt saved
 * any (returns true); false when the copy can keep the delivery's header as it is. */
HQ_MUST_CHECK int wk_steps_text(struct wk_steps *st, struct hq_buf *out, bool *changed);
/* The ABI 1.1 host calls (hookmq/handler.h); they find the slot's steps through a
 * thread-local set by wk_steps_enter around handle(). */
void wk_steps_enter(struct wk_steps *st, const struct hq_event *ev);
void wk_steps_leave(struct wk_steps *st);
int wk_step_get(const struct hq_event *ev, const char *name, const void **data, size_t *len);
int wk_step_put(const struct hq_event *ev, const char *name, const void *data, size_t len);
size_t wk_step_count(const struct hq_event *ev);
const char *wk_step_name(const struct hq_event *ev, size_t i);

/* ------------------------------------------------------------------ the worker */

struct wk;

/* One handler slot: a thread that owns one broker connection and one handler state, and
 * calls the handler itself. While handle() runs, the slot thread has released conn_mu and the
 * keeper thread may take it to service the connection (heartbeats); the slot thread takes it
 * back when handle() returns. The connection is thus used by one thread at a time. */
struct wk_slot {
    struct wk *w;
    int idx;
    pthread_t thread;
    bool started;
    atomic_bool done;      /* the slot thread has returned */
    atomic_bool abandoned; /* SIGTERM's stop timeout ran out with the handler still running */

    /* handler state, owned by the slot thread after start-up */
    void *state;
    struct wk_snap *state_snap; /* the config whose options the state was made from */
    uint64_t tried_gen;         /* last config generation a re-init was tried for */

    pthread_mutex_t conn_mu; /* held by the slot thread except while handle() runs */
    struct hq_amqp *c;       /* the current connection (NULL between connections) */
    atomic_bool in_handler;
    _Atomic int64_t handler_since_ms; /* monotonic */
    atomic_bool conn_lost;            /* the keeper saw the connection fail while handle() ran */

    /* ACKed deliveries not yet acknowledged to the broker: one basic.ack multiple=1 covers
     * them (sent at half the prefetch window, at most ACK_BATCH; before any other
     * settlement; and when no delivery came for ACK_LINGER_MS). Slot thread only, except
     * that the keeper sends them when it abandons the slot (holding conn_mu). */
    uint64_t ack_tag;
    unsigned ack_n;

    /* the handler's view of the current event: arrays reused from event to event */
    struct hq_kv *ev_kv;
    char (*ev_num)[24];
    size_t ev_cap;
    char ev_rk[256]; /* the event's original routing key (an AMQP short string) */

    struct wk_steps steps; /* durable steps of the current event */
};

struct wk_metrics {
    struct hq_metric *deliveries, *redeliveries, *dedupe_hits, *connected, *redriven, *in_flight,
        *duration, *redrive_scans;
    struct hq_metric *verdict_ack, *verdict_retry, *verdict_reject;
    struct hq_metric *dl_rejected, *dl_max_attempts, *dl_crashed, *dl_too_large;
    struct hq_metric *copies_held; /* copies that waited for a resource alarm to clear */
    struct hq_metric **retry_tier; /* one per delays_ms[i] (duplicates share) */
    struct hq_metric *lc_published, *lc_dropped; /* lifecycle records (set from the emitter) */
};

struct wk {
    const char *config_path;
    const struct hq_consumer_cfg *con; /* boot consumer config (fixed for the process) */
    const struct hq_config *cfg;       /* boot config */
    struct wk_snap *boot_snap;         /* keeps cfg/con alive */
    char work_queue[HQ_NAME_MAX + 16];
    char dlq[HQ_NAME_MAX + 16];
    char label[HQ_NAME_MAX * 2 + 16]; /* consumer="NAME" */

    struct hq_plugin plugin;
    struct hq_host_api api;

    pthread_mutex_t snap_lock;
    struct wk_snap *snap; /* current config (reloads swap it) */
    atomic_uint_fast64_t gen;

    atomic_bool stopping;
    _Atomic int64_t stop_deadline_ms; /* monotonic; 0 = none yet */
    int stop_timeout_ms;
    atomic_int connected;
    atomic_int in_flight;

    struct wk_dedupe *dedupe;     /* NULL when the consumer has no dedupe group */
    struct wk_inflight *inflight; /* the crash ledger */
    struct hq_lc_emitter *lc;     /* lifecycle records to hookmq.lifecycle (best effort) */
    struct wk_rate rate;

    struct hq_metrics *metrics;
    struct wk_metrics m;

    /* Retry and DLQ copies go out on a connection of their own: a resource alarm blocks a
     * connection that publishes, and the slots' consuming connections must go on consuming
     * and acking meanwhile. */
    struct hq_pub *copies;

    struct wk_slot *slots;
    int n_slots;
    int slot_prefetch;

    pthread_t keeper_thread;
    bool keeper_started;
    atomic_bool keeper_stop;

    pthread_t redrive_thread;
    bool redrive_started;
};

/* Take / drop a reference on the current config snapshot. */
struct wk_snap *wk_snap_get(struct wk *w);
void wk_snap_put(struct wk_snap *s);

/* worker.c: start the slot threads and the keeper (handler states were made by
 * wk_init_states). */
HQ_MUST_CHECK int wk_start_slots(struct wk *w);
/* worker.c: make one handler state per slot from the boot config. On failure err names the
 * failing plugin and every state made so far is finalised. */
HQ_MUST_CHECK int wk_init_states(struct wk *w, char *err, size_t errsz);
/* worker.c: after stopping was set: wait for the slots (bounded by stop_deadline_ms, after
 * which the keeper abandons slots whose handler still runs and closes their connections).
 * Returns true when every handler finished (false: some were abandoned). */
bool wk_join_slots(struct wk *w);
/* worker.c: register the metric series. */
HQ_MUST_CHECK int wk_metrics_init(struct wk *w);
/* worker.c: the host API given to handlers. */
void wk_host_api_init(struct wk *w);

/* redrive.c: the automatic redrive thread. */
HQ_MUST_CHECK int wk_redrive_start(struct wk *w);
void wk_redrive_join(struct wk *w);
/* redrive.c: the redrive check interval for `after`: after/4, clamped to 1 s .. 60 s. */
int64_t wk_redrive_interval_ms(uint64_t after_ms);


/* Sleep up to ms, returning early (true) once the worker is stopping. */
bool wk_sleep(struct wk *w, int64_t ms);

#endif
