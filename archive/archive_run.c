/* archive_run: `hookmq-archive run`, the firehose logger.
 *
 * Threads:
 *   main        start-up checks, signals (sigwait): SIGHUP reloads the log level,
 *               SIGTERM/SIGINT stop
 *   consumer    owns the broker connection and the segment writer: consumes hookmq.archive
 *               (and the tracer's queue with --firehose-trace), encodes each delivery as an
 *               archive record into the batch, and commits the batch when it holds batch_max
 *               records or its first record is batch_ms old: write, fdatasync, THEN one
 *               basic.ack with multiple=1 up to the last delivery tag. A crash (kill -9) at any
 *               point loses nothing acked: what is not acked is redelivered (and duplicates are
 *               collapsed by (source, id) when read).
 *   compressor  compresses closed segments and writes their index (hq_archive_compress), in
 *               the background; at start-up and every hour it also finishes segments left
 *               uncompressed by a crash and applies keep_days retention
 *   metrics     CivetWeb threads serving /metrics on archive.metrics_listen
 *
 * Segment ownership: the writer's current segment is guarded by seg_lock; the compressor never
 * touches the current segment, nor any segment of the current hour. Whatever the clock does,
 * a flock on each .jsonl decides: the writer holds one on the segment it appends to, and
 * hq_archive_compress holds one from before it reads a .jsonl until it has deleted it, so the
 * writer never appends to a segment being compressed (it opens HH.1.jsonl instead). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "hq_metrics_http.h"
#include "hq_amqp.h"
#include "hq_consume.h"
#include "hq_log.h"
#include "hq_signals.h"
#include "hq_time.h"

#define ARCHIVE_QUEUE "hookmq.archive"
#define CONNECT_TIMEOUT_MS 5000
#define IDLE_WAIT_MS 200
#define BATCH_BYTES_MAX (16u << 20)      /* commit early past this many bytes */
#define PEND_CAP ((size_t)1 << 30)       /* one batch never exceeds this */
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 10000
#define MAINTENANCE_MS (3600 * 1000LL)   /* retention + leftover compression */

struct ar {
    const struct hq_config *cfg;
    const char *config_path;
    const struct ar_args *args;
    pthread_t main_thread;

    struct hq_awriter *w;
    pthread_mutex_t seg_lock; /* w's current segment vs the compressor */

    /* compressor queue */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    char **queue;
    size_t qn, qcap;
    bool comp_stop;
    volatile int comp_cancel;

    atomic_bool stopping;
    atomic_int connected;
    atomic_int fatal; /* a write/fsync failed: exit 1 */
    atomic_int disk_full; /* the last write found no space: paused, batch left unacked */

    struct hq_metrics *metrics;
    struct {
        struct hq_metric *rec_event, *rec_lifecycle, *rec_trace, *batches, *fsync, *closed,
            *bytes, *connected, *torn, *compressed, *compress_errors, *deleted, *disk_full,
            *disk_full_total, *batch_records;
    } m;
};

/* ------------------------------------------------------------------ small helpers */

static void sleep_ms(int64_t ms)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Sleep up to ms, in steps, returning early once stopping. */
static void nap(struct ar *ar, int64_t ms)
{
    int64_t end = hq_mono_ms() + ms;

    while (!atomic_load(&ar->stopping)) {
        int64_t left = end - hq_mono_ms();

        if (left <= 0)
            break;
        sleep_ms(left < 100 ? left : 100);
    }
}

static int64_t backoff_ms(int failures)
{
    int64_t b = BACKOFF_MIN_MS << (failures < 6 ? failures : 6);

    if (b > BACKOFF_MAX_MS)
        b = BACKOFF_MAX_MS;
    return b / 2 + rand() % (b / 2 + 1); /* jitter */
}

static void fatal(struct ar *ar)
{
    atomic_store(&ar->fatal, 1);
    atomic_store(&ar->stopping, true);
    pthread_kill(ar->main_thread, SIGTERM); /* wakes sigwait */
}

/* ------------------------------------------------------------------ compressor */

static void enqueue(struct ar *ar, const char *base)
{
    size_t i;

    pthread_mutex_lock(&ar->qmu);
    for (i = 0; i < ar->qn; i++)
        if (strcmp(ar->queue[i], base) == 0)
            goto out;
    if (ar->qn == ar->qcap) {
        size_t nc = ar->qcap ? ar->qcap * 2 : 16;
        char **nq = realloc(ar->queue, nc * sizeof(*nq));

        if (!nq)
            goto out; /* found again by the hourly maintenance */
        ar->queue = nq;
        ar->qcap = nc;
    }
    if ((ar->queue[ar->qn] = strdup(base)) != NULL)
        ar->qn++;
    pthread_cond_signal(&ar->qcv);
out:
    pthread_mutex_unlock(&ar->qmu);
}

static void enqueue_cb(void *arg, const char *base)
{
    enqueue(arg, base);
}

static void maintenance(struct ar *ar)
{
    unsigned deleted = 0;
    int rc;

    rc = hq_archive_retention(ar->cfg->archive.dir, ar->cfg->archive.keep_days, hq_now_ms(),
                              &deleted);
    if (rc != HQ_OK)
        hq_error("retention failed", "dir=%s error=\"%s\"", ar->cfg->archive.dir, hq_strerror(rc));
    hq_metric_add(ar->m.deleted, deleted);
    pthread_mutex_lock(&ar->seg_lock);
    rc = hq_archive_pending(ar->cfg->archive.dir, hq_now_ms(), hq_awriter_current(ar->w),
                            enqueue_cb, ar);
    pthread_mutex_unlock(&ar->seg_lock);
    if (rc != HQ_OK)
        hq_error("cannot list the archive", "dir=%s error=\"%s\"", ar->cfg->archive.dir,
                 hq_strerror(rc));
}

static void compress_one(struct ar *ar, const char *base)
{
    struct hq_acompress_stats st;
    char err[512] = "";
    const char *cur;
    bool busy;
    int rc;
    int64_t t0;

    pthread_mutex_lock(&ar->seg_lock);
    cur = hq_awriter_current(ar->w);
    busy = cur && strcmp(cur, base) == 0;
    pthread_mutex_unlock(&ar->seg_lock);
    if (busy)
        return; /* still open: the writer queues it again when it closes it */
    t0 = hq_mono_ms();
    rc = hq_archive_compress(base, &ar->comp_cancel, &st, err, sizeof(err));
    if (rc == HQ_OK) {
        if (st.bytes_in) {
            hq_info("segment compressed",
                    "segment=%s records=%llu invalid=%llu frames=%llu bytes_in=%llu "
                    "bytes_out=%llu ms=%lld",
                    base, (unsigned long long)st.records, (unsigned long long)st.invalid,
                    (unsigned long long)st.frames, (unsigned long long)st.bytes_in,
                    (unsigned long long)st.bytes_out, (long long)(hq_mono_ms() - t0));
            if (st.invalid)
                hq_warn("closed segment had torn or invalid lines (skipped when read)",
                        "segment=%s lines=%llu", base, (unsigned long long)st.invalid);
        }
        hq_metric_add(ar->m.torn, (int64_t)st.invalid);
        hq_metric_inc(ar->m.compressed);
    } else if (rc == HQ_ECONFLICT) {
        /* the writer took it again (the clock stepped back into its hour) */
        hq_info("segment in use by the writer again: compressed once it closes it", "segment=%s",
                base);
    } else if (rc == HQ_ESHUTDOWN) {
        hq_info("compression interrupted by shutdown: resumed at the next start", "segment=%s",
                base);
    } else if (rc != HQ_ENOTFOUND) {
        hq_metric_inc(ar->m.compress_errors);
        hq_error("segment compression failed (the .jsonl is kept; retried hourly)",
                 "segment=%s error=\"%s\"", base, err);
    }
}

static void *compressor_main(void *arg)
{
    struct ar *ar = arg;
    int64_t next = 0;

    for (;;) {
        char *base = NULL;

        if (hq_mono_ms() >= next) {
            maintenance(ar);
            next = hq_mono_ms() + MAINTENANCE_MS;
        }
        pthread_mutex_lock(&ar->qmu);
        while (!ar->comp_stop && ar->qn == 0 && hq_mono_ms() < next) {
            struct timespec ts;
            int64_t left = next - hq_mono_ms();

            if (left > 1000)
                left = 1000;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += (time_t)(left / 1000);
            ts.tv_nsec += (long)(left % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&ar->qcv, &ar->qmu, &ts);
        }
        if (ar->comp_stop) {
            pthread_mutex_unlock(&ar->qmu);
            break;
        }
        if (ar->qn) {
            base = ar->queue[0];
            memmove(ar->queue, ar->queue + 1, (ar->qn - 1) * sizeof(*ar->queue));
            ar->qn--;
        }
        pthread_mutex_unlock(&ar->qmu);
        if (base) {
            compress_one(ar, base);
            free(base);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ consumer */

struct batch {
    struct hq_buf buf;
    size_t n, n_event, n_lifecycle, n_trace;
    uint64_t last_tag;
    int64_t started; /* hq_mono_ms of the first record */
};

static void batch_reset(struct ar *ar, struct batch *b)
{
    hq_buf_reset(&b->buf);
    b->n = b->n_event = b->n_lifecycle = b->n_trace = 0;
    b->last_tag = 0;
    hq_metric_set(ar->m.batch_records, 0);
}

static void segment_closed(struct ar *ar, const char *closed)
{
    if (!closed[0])
        return;
    hq_info("segment closed", "segment=%s", closed);
    hq_metric_inc(ar->m.closed);
    enqueue(ar, closed);
}

/* Write + fsync, then ack. HQ_OK; HQ_EFULL (no space: nothing written, nothing acked; the
 * caller drops the connection so the batch is redelivered, and pauses); HQ_EIO (fatal: nothing
 * acked); HQ_EDOWN (written, not acked: the broker redelivers, duplicates are collapsed when
 * read). */
static int commit(struct ar *ar, struct hq_amqp *c, struct batch *b)
{
    char closed[4096];
    double fs = 0;
    int rc;

    if (!b->n)
        return HQ_OK;
    pthread_mutex_lock(&ar->seg_lock);
    rc = hq_awriter_append(ar->w, hq_now_ms(), b->buf.data, b->buf.len, closed, sizeof(closed),
                           &fs);
    pthread_mutex_unlock(&ar->seg_lock);
    segment_closed(ar, closed);
    if (rc == HQ_EFULL) {
        if (!atomic_exchange(&ar->disk_full, 1))
            hq_error("archive disk full: pausing; the batch stays unacked in hookmq.archive and "
                     "is written once space returns",
                     "dir=%s records=%zu", ar->cfg->archive.dir, b->n);
        hq_metric_inc(ar->m.disk_full_total);
        return HQ_EFULL;
    }
    if (rc != HQ_OK) {
        hq_error("cannot write the archive: stopping without acking the batch (it will be "
                 "redelivered)",
                 "dir=%s records=%zu error=\"%s\"", ar->cfg->archive.dir, b->n, hq_strerror(rc));
        fatal(ar);
        return HQ_EIO;
    }
    if (atomic_exchange(&ar->disk_full, 0))
        hq_info("archive disk has space again: resuming", "dir=%s", ar->cfg->archive.dir);
    hq_metric_observe(ar->m.fsync, fs);
    hq_metric_inc(ar->m.batches);
    hq_metric_add(ar->m.bytes, (int64_t)b->buf.len);
    hq_metric_add(ar->m.rec_event, (int64_t)b->n_event);
    hq_metric_add(ar->m.rec_lifecycle, (int64_t)b->n_lifecycle);
    hq_metric_add(ar->m.rec_trace, (int64_t)b->n_trace);
    rc = hq_archive_ack_upto(c, b->last_tag);
    hq_debug("batch committed", "records=%zu bytes=%zu fsync_ms=%.2f last_tag=%llu ack=%s", b->n,
             b->buf.len, fs * 1000, (unsigned long long)b->last_tag, hq_strerror(rc));
    batch_reset(ar, b);
    return rc == HQ_OK ? HQ_OK : HQ_EDOWN;
}

static void tick(struct ar *ar)
{
    char closed[4096];

    pthread_mutex_lock(&ar->seg_lock);
    (void)hq_awriter_tick(ar->w, hq_now_ms(), closed, sizeof(closed));
    pthread_mutex_unlock(&ar->seg_lock);
    segment_closed(ar, closed);
}

/* Connect, qos, consume. HQ_OK with *out; HQ_ENOTFOUND (queue missing); others. */
static int open_consumer(struct ar *ar, size_t *start, struct hq_amqp **out)
{
    const struct hq_archive_cfg *acfg = &ar->cfg->archive;
    struct hq_amqp *c = NULL;
    int prefetch = acfg->batch_max * 2, rc;

    *out = NULL;
    if (prefetch > 65535)
        prefetch = 65535;
    if (prefetch < acfg->batch_max)
        prefetch = acfg->batch_max; /* never below a batch, or batches wait for batch_ms */
    rc = hq_amqp_connect(&ar->cfg->broker, "hookmq-archive", CONNECT_TIMEOUT_MS, start, &c);
    if (rc != HQ_OK)
        return rc;
    rc = hq_amqp_qos(c, (uint16_t)(prefetch > 65535 ? 65535 : prefetch));
    if (rc == HQ_OK && ar->args->firehose) {
        char q[256];

        rc = hq_archive_trace_queue(c, ar->args->firehose_key, q, sizeof(q));
        if (rc == HQ_OK)
            rc = hq_amqp_consume(c, q);
        if (rc == HQ_OK)
            hq_info("firehose tracer queue bound (tracing must be on: rabbitmqctl trace_on)",
                    "queue=%s binding=%s", q, ar->args->firehose_key);
        else
            hq_error("firehose tracer queue failed", "error=\"%s\"", hq_strerror(rc));
    }
    if (rc == HQ_OK)
        rc = hq_amqp_consume(c, ARCHIVE_QUEUE);
    if (rc != HQ_OK) {
        hq_error("cannot consume", "queue=%s error=\"%s\" detail=\"%s\"", ARCHIVE_QUEUE,
                 hq_strerror(rc), hq_consume_error(c));
        hq_consume_detach(c);
        hq_amqp_close(c);
        return rc;
    }
    *out = c;
    return HQ_OK;
}

static void *consumer_main(void *arg)
{
    struct ar *ar = arg;
    const struct hq_archive_cfg *acfg = &ar->cfg->archive;
    struct batch b;
    size_t start = 0;
    int failures = 0, full = 0;

    memset(&b, 0, sizeof(b));
    b.buf.cap = PEND_CAP;
    while (!atomic_load(&ar->stopping)) {
        struct hq_amqp *c = NULL;
        int rc = open_consumer(ar, &start, &c);

        if (rc != HQ_OK) {
            failures++;
            tick(ar);
            if (rc == HQ_EDOWN || rc == HQ_ETIMEDOUT)
                hq_warn("broker unreachable, retrying", "error=\"%s\" attempt=%d",
                        hq_strerror(rc), failures);
            start = (start + 1) % ar->cfg->broker.n_uris;
            nap(ar, backoff_ms(failures));
            continue;
        }
        failures = 0;
        atomic_store(&ar->connected, 1);
        hq_info("consuming", "queue=%s peer=%s batch_max=%d batch_ms=%d", ARCHIVE_QUEUE,
                hq_amqp_peer(c), acfg->batch_max, acfg->batch_ms);
        for (;;) {
            struct hq_delivery d;
            enum hq_next_result what;
            int64_t now = hq_mono_ms(), timeout;

            if (atomic_load(&ar->stopping)) {
                rc = commit(ar, c, &b); /* SIGTERM: finish the batch */
                break;
            }
            timeout = b.n ? b.started + acfg->batch_ms - now : IDLE_WAIT_MS;
            if (timeout < 0)
                timeout = 0;
            if (timeout > IDLE_WAIT_MS)
                timeout = IDLE_WAIT_MS;
            rc = hq_amqp_next(c, (int)timeout, &d, &what);
            if (rc != HQ_OK) {
                rc = HQ_EDOWN;
                hq_warn("broker connection lost; the uncommitted batch will be redelivered",
                        "records=%zu error=\"%s\" detail=\"%s\"", b.n, hq_strerror(rc),
                        hq_consume_error(c));
                batch_reset(ar, &b);
                break;
            }
            if (what == HQ_NEXT_DELIVERY) {
                enum hq_arec_kind kind;
                size_t nrec = 0;

                rc = hq_arec_encode(&d, hq_now_ms(), &b.buf, &nrec);
                if (rc != HQ_OK && b.n) {
                    /* no room or memory: commit what we have, then try again */
                    if ((rc = commit(ar, c, &b)) == HQ_EIO || rc == HQ_EFULL) {
                        hq_delivery_free(&d);
                        break;
                    }
                    rc = hq_arec_encode(&d, hq_now_ms(), &b.buf, &nrec);
                }
                if (rc != HQ_OK) {
                    hq_error("cannot encode a delivery: stopping (it stays unacked)",
                             "error=\"%s\" bytes=%zu", hq_strerror(rc), d.msg.body_len);
                    hq_delivery_free(&d);
                    fatal(ar);
                    break;
                }
                kind = d.exchange && strcmp(d.exchange, "hookmq.lifecycle") == 0
                           ? HQ_AREC_LIFECYCLE
                           : d.exchange && strcmp(d.exchange, "amq.rabbitmq.trace") == 0
                                 ? HQ_AREC_TRACE
                                 : HQ_AREC_EVENT;
                if (kind == HQ_AREC_LIFECYCLE)
                    b.n_lifecycle += nrec; /* a batch of lifecycle records: one per line */
                else if (kind == HQ_AREC_TRACE)
                    b.n_trace++;
                else
                    b.n_event++;
                if (b.n++ == 0)
                    b.started = now;
                hq_metric_set(ar->m.batch_records, (int64_t)b.n);
                b.last_tag = d.tag;
                hq_delivery_free(&d);
                if ((int)b.n >= acfg->batch_max || b.buf.len >= BATCH_BYTES_MAX) {
                    if ((rc = commit(ar, c, &b)) != HQ_OK)
                        break;
                }
            } else if (what == HQ_NEXT_TIMEOUT) {
                if (b.n && hq_mono_ms() >= b.started + acfg->batch_ms) {
                    if ((rc = commit(ar, c, &b)) != HQ_OK)
                        break;
                } else if (!b.n) {
                    tick(ar);
                }
            } else {
                hq_error("the broker cancelled the consumer (queue deleted?); reconnecting",
                         "queue=%s", ARCHIVE_QUEUE);
                (void)commit(ar, c, &b);
                break;
            }
        }
        atomic_store(&ar->connected, 0);
        batch_reset(ar, &b);
        hq_consume_detach(c);
        hq_amqp_close(c); /* what was not acked goes back to hookmq.archive */
        full = rc == HQ_EFULL ? full + 1 : 0;
        if (!atomic_load(&ar->stopping))
            nap(ar, backoff_ms(full)); /* disk full: 0.2 s doubling to 10 s between tries */
    }
    hq_buf_free(&b.buf);
    return NULL;
}

/* ------------------------------------------------------------------ start-up, signals */

/* Connect (retrying while the broker is away) and check hookmq.archive exists (on a separate
 * connection: a failed passive declare moves amqp.c to another channel).
 * HQ_OK; HQ_ENOTFOUND after printing the hint; HQ_ESHUTDOWN; others. */
static int startup_check(struct ar *ar, const sigset_t *set)
{
    struct hq_amqp *c = NULL;
    size_t start = 0;
    int rc, failures = 0;
    uint32_t msgs = 0;

    for (;;) {
        struct timespec ts;
        int64_t ms;

        rc = hq_amqp_connect(&ar->cfg->broker, "hookmq-archive (startup check)",
                             CONNECT_TIMEOUT_MS, &start, &c);
        if (rc == HQ_OK)
            break;
        if (rc != HQ_EDOWN && rc != HQ_ETIMEDOUT) {
            fprintf(stderr, AR_PROG ": cannot connect to the broker: %s\n", hq_strerror(rc));
            return rc == HQ_EINVAL ? HQ_ECONFIG : rc;
        }
        failures++;
        hq_warn("broker unreachable at start-up, retrying", "attempt=%d", failures);
        ms = backoff_ms(failures);
        ts.tv_sec = (time_t)(ms / 1000);
        ts.tv_nsec = (long)(ms % 1000) * 1000000L;
        for (;;) {
            int sig = sigtimedwait(set, NULL, &ts);
            if (sig == SIGTERM || sig == SIGINT)
                return HQ_ESHUTDOWN;
            if (sig < 0)
                break;
        }
        start = (start + 1) % ar->cfg->broker.n_uris;
    }
    rc = hq_amqp_queue_exists(c, ARCHIVE_QUEUE, &msgs, NULL);
    if (rc == HQ_ENOTFOUND)
        fprintf(stderr,
                AR_PROG ": queue %s is missing on the broker; create the topology with: "
                        "hookmq-dlx apply -c %s\n",
                ARCHIVE_QUEUE, ar->config_path);
    else if (rc != HQ_OK)
        fprintf(stderr, AR_PROG ": broker check failed: %s\n", hq_strerror(rc));
    else
        hq_info("archive queue found", "queue=%s messages=%u", ARCHIVE_QUEUE, msgs);
    hq_amqp_close(c);
    return rc;
}

static int metrics_init(struct ar *ar)
{
    static const double fsync_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,   0.25,   0.5,   1,    2.5};
    struct hq_metrics *m = ar->metrics = hq_metrics_new();
    const char *rh = "archive records written and fsync'd, by kind";

    if (!m)
        return HQ_ENOMEM;
    ar->m.rec_event = hq_counter(m, "hookmq_archive_records_total", rh, "kind=\"event\"");
    ar->m.rec_lifecycle = hq_counter(m, "hookmq_archive_records_total", rh, "kind=\"lifecycle\"");
    ar->m.rec_trace = hq_counter(m, "hookmq_archive_records_total", rh, "kind=\"trace\"");
    ar->m.batches = hq_counter(m, "hookmq_archive_batches_total",
                               "group commits (write + fsync + one multiple ack)", "");
    ar->m.fsync = hq_histogram(m, "hookmq_archive_fsync_seconds", "fdatasync time per batch", "",
                               fsync_bounds, sizeof(fsync_bounds) / sizeof(fsync_bounds[0]));
    ar->m.closed = hq_counter(m, "hookmq_archive_segments_closed_total",
                              "hourly segments closed (then compressed)", "");
    ar->m.bytes = hq_counter(m, "hookmq_archive_bytes_written_total",
                             "bytes appended to segments (uncompressed)", "");
    ar->m.connected = hq_gauge(m, "hookmq_archive_connected",
                               "1 while consuming from the broker", "");
    ar->m.torn = hq_counter(m, "hookmq_archive_torn_lines_total",
                            "torn or invalid lines found in segments when compressing them", "");
    ar->m.compressed = hq_counter(m, "hookmq_archive_segments_compressed_total",
                                  "segments compressed and indexed", "");
    ar->m.compress_errors = hq_counter(m, "hookmq_archive_compress_errors_total",
                                       "failed compressions (the .jsonl is kept, retried hourly)",
                                       "");
    ar->m.deleted = hq_counter(m, "hookmq_archive_segments_deleted_total",
                               "segments deleted by keep_days retention", "");
    ar->m.disk_full = hq_gauge(m, "hookmq_archive_disk_full",
                               "1 while writes fail for lack of space (consuming paused)", "");
    ar->m.disk_full_total = hq_counter(m, "hookmq_archive_disk_full_total",
                                       "batches not written for lack of space (left unacked, "
                                       "redelivered)",
                                       "");
    ar->m.batch_records = hq_gauge(m, "hookmq_archive_batch_records",
                                   "records received in the open batch, not yet committed", "");
    if (!ar->m.rec_event || !ar->m.rec_lifecycle || !ar->m.rec_trace || !ar->m.batches ||
        !ar->m.fsync || !ar->m.closed || !ar->m.bytes || !ar->m.connected || !ar->m.torn ||
        !ar->m.compressed || !ar->m.compress_errors || !ar->m.deleted || !ar->m.disk_full ||
        !ar->m.disk_full_total || !ar->m.batch_records)
        return HQ_ENOMEM;
    return HQ_OK;
}

static void before_render(void *arg)
{
    struct ar *ar = arg;

    hq_metric_set(ar->m.connected, atomic_load(&ar->connected));
    hq_metric_set(ar->m.disk_full, atomic_load(&ar->disk_full));
}

static void reload(struct ar *ar)
{
    struct hq_config *cfg = NULL;
    char err[512];

    if (hq_config_load(ar->config_path, &cfg, err, sizeof(err)) != HQ_OK) {
        hq_error("reload failed, keeping the running config", "error=\"%s\"", err);
        return;
    }
    hq_log_set_level(cfg->log_level);
    if (strcmp(cfg->archive.dir, ar->cfg->archive.dir) != 0 ||
        cfg->archive.batch_max != ar->cfg->archive.batch_max ||
        cfg->archive.batch_ms != ar->cfg->archive.batch_ms ||
        cfg->archive.keep_days != ar->cfg->archive.keep_days)
        hq_warn("reload: archive settings other than the log level change only on restart",
                "config=%s", ar->config_path);
    hq_info("config reloaded", "config=%s", ar->config_path);
    hq_config_free(cfg);
}

int ar_run(struct hq_config *cfg, const char *config_path, const struct ar_args *a)
{
    static struct ar ar;
    pthread_t comp, cons;
    bool comp_started = false, cons_started = false;
    sigset_t set;
    char err[1024];
    int rc, status = HQ_EXIT_RUNTIME;

    memset(&ar, 0, sizeof(ar));
    ar.cfg = cfg;
    ar.config_path = config_path;
    ar.args = a;
    ar.main_thread = pthread_self();
    pthread_mutex_init(&ar.seg_lock, NULL);
    pthread_mutex_init(&ar.qmu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&ar.qcv, &ca);
        pthread_condattr_destroy(&ca);
    }
    hq_signals_block(&set);
    srand((unsigned)(hq_mono_ms() ^ ((int64_t)getpid() << 16)));

    rc = hq_awriter_open(cfg->archive.dir, &ar.w, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, AR_PROG ": archive.dir: %s\n", err);
        goto out;
    }
    if (metrics_init(&ar) != HQ_OK) {
        fprintf(stderr, AR_PROG ": out of memory\n");
        goto out;
    }
    rc = startup_check(&ar, &set);
    if (rc != HQ_OK) {
        status = hq_exit_code_run(rc); /* stopped by a signal while retrying: 0 */
        goto out;
    }
    rc = hq_metrics_http_start(cfg->archive.metrics_listen, ar.metrics, before_render, &ar, err,
                       sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, AR_PROG ": metrics: %s\n", err);
        goto out;
    }
    if (pthread_create(&comp, NULL, compressor_main, &ar) != 0 ||
        !(comp_started = true) || pthread_create(&cons, NULL, consumer_main, &ar) != 0) {
        fprintf(stderr, AR_PROG ": cannot start threads\n");
        atomic_store(&ar.stopping, true);
        goto stop;
    }
    cons_started = true;
    hq_info("started",
            "dir=%s keep_days=%d batch_max=%d batch_ms=%d metrics=%s firehose_trace=%s "
            "version=%s",
            cfg->archive.dir, cfg->archive.keep_days, cfg->archive.batch_max,
            cfg->archive.batch_ms, cfg->archive.metrics_listen ? cfg->archive.metrics_listen : "off",
            a->firehose ? a->firehose_key : "off", HQ_VERSION);
    for (;;) {
        int sig = 0;

        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload(&ar);
            continue;
        }
        if (!atomic_load(&ar.fatal))
            hq_info("stopping: finishing the batch", "signal=%d", sig);
        break;
    }
    atomic_store(&ar.stopping, true);
stop:
    if (cons_started)
        pthread_join(cons, NULL);
    if (comp_started) {
        pthread_mutex_lock(&ar.qmu);
        ar.comp_stop = true;
        ar.comp_cancel = 1;
        pthread_cond_broadcast(&ar.qcv);
        pthread_mutex_unlock(&ar.qmu);
        pthread_join(comp, NULL);
    }
    hq_metrics_http_stop();
    status = atomic_load(&ar.fatal) || !cons_started ? HQ_EXIT_RUNTIME : HQ_EXIT_OK;
out:
    hq_awriter_close(ar.w);
    while (ar.qn)
        free(ar.queue[--ar.qn]);
    free(ar.queue);
    hq_metrics_free(ar.metrics);
    if (status == HQ_EXIT_OK)
        hq_info("stopped", "dir=%s", cfg->archive.dir);
    return status;
}
