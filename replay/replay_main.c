/* hookmq-replay: replay archived events (docs/replay.md).
 *
 *   hookmq-replay [-c FILE] FILTERS TARGET [--rate N] [--dry-run] [--restart]
 *   hookmq-replay [-c FILE] [FILTERS TARGET ...] --check
 *
 * --check validates the config and exits; with filters and a target it also validates them
 * as a run would (the target consumer and its bindings), stopping before the archive, the
 * checkpoint and the broker: it reads no archive and connects to nothing.
 *
 * Reads the archive (hq_archive_scan) twice: a first pass counts what the filters, the
 * target's bindings and the checkpoint select (and, with --dry-run, prints it), the second
 * publishes each selected event once per (source, id) on one broker connection with a window
 * of pipelined publisher confirms (prepared copies go out in corked bursts of up to BURST),
 * optionally paced by a token bucket. Every confirmed event
 * is appended to the checkpoint at once (fdatasync'd in batches), so a killed replay, run
 * again with the same command, sends only what was not confirmed: at most the window that was
 * in flight is sent twice. A broker connection lost mid-replay ends the run (exit 1) for the
 * same reason: re-running resumes.
 *
 * Exit codes (docs/interface.md): 0 ok (also: already completed, nothing to replay, interrupted by
 * SIGTERM/SIGINT after settling what was in flight), 1 runtime failure (broker, I/O, events
 * nacked or returned), 2 usage or configuration error, 3 the target queue or exchange is
 * missing (run `hookmq-dlx apply`). exit_code() is the one mapping. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hq_amqp.h"
#include "hq_archive.h"
#include "hq_config.h"
#include "hq_consume.h"
#include "hq_lifecycle.h"
#include "hq_log.h"
#include "hq_replay.h"
#include "hq_time.h"
#include "hq_topology.h"

#define PROG "hookmq-replay"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_TOPOLOGY = 3 };

#define CONNECT_TIMEOUT_MS 10000
#define DRAIN_STALL_MS 30000    /* give up waiting for confirms after this long without any */
#define STOP_DRAIN_MS 10000     /* on SIGTERM: wait this long for what is in flight */
#define BURST 32                /* prepared copies published back to back */
#define LC_EMITTERS 4           /* lifecycle publishers: each has one record in flight */
#define LC_CAPACITY 16384       /* lifecycle records queued per emitter (best effort) */
#define LC_DRAIN_MS 5000

/* flags in the key set */
#define F_PASS1 1u
#define F_PASS2 2u
#define F_CKPT 4u

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t hup_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

static void on_hup(int sig)
{
    (void)sig;
    hup_signal = 1;
}

static int exit_code(int status)
{
    switch (status) {
    case HQ_OK:
    case HQ_ESHUTDOWN:
        return EXIT_OK;
    case HQ_ECONFIG:
    case HQ_EINVAL:
        return EXIT_USAGE;
    case HQ_ENOTFOUND:
    case HQ_ECONFLICT:
        return EXIT_TOPOLOGY;
    default:
        return EXIT_RUNTIME;
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [-c FILE] FILTERS TARGET [--rate N] [--dry-run] [--restart]\n"
            "       " PROG " [-c FILE] [FILTERS TARGET ...] --check\n"
            "\n"
            "Republishes archived events (with publisher confirms), keeping their message id,\n"
            "content type, timestamp, body and headers, adding hookmq-replay-id and\n"
            "hookmq-replayed-at. Each (source, id) is replayed once. An interrupted replay\n"
            "resumes from its checkpoint when the same command is run again. See docs/replay.md.\n"
            "\n"
            "Filters (as `hookmq-archive query`; --from or --id is required):\n"
            "      --from TIME         received at or after TIME (RFC 3339, or -2h, -15m, -7d)\n"
            "      --to TIME           received before TIME\n"
            "      --source NAME       from this source\n"
            "      --type GLOB         event type (hookmq-event-type) matching GLOB\n"
            "      --id ID             this event id\n"
            "      --grep TEXT         body containing TEXT\n"
            "Target (exactly one):\n"
            "      --to-consumer NAME  the consumer's work queue only (exchange \"\", routing key\n"
            "                          hookmq.NAME), only events its bindings match, with\n"
            "                          hookmq-attempt = 1\n"
            "      --ignore-bindings   with --to-consumer: every selected event\n"
            "      --to-exchange       through the events exchange: every bound consumer AND the\n"
            "                          archive get the events again\n"
            "Options:\n"
            "  -c, --config FILE       config file (default: $HOOKMQ_CONFIG, then\n"
            "                          /etc/hookmq/hookmq.conf)\n"
            "      --rate N            at most N events per second (default: unlimited)\n"
            "      --dry-run           print what would be replayed and the count; publish nothing\n"
            "      --restart           ignore an existing checkpoint and replay everything again\n"
            "      --window N          publishes awaiting a confirm (default %d, max %d)\n"
            "      --checkpoint-dir D  where checkpoints live (default: archive.dir/.replay)\n"
            "      --no-lifecycle      do not emit \"replayed\" lifecycle records\n"
            "  -q, --quiet             no progress line on stderr\n"
            "      --check             validate the config and exit (0 ok, 2 error); with\n"
            "                          filters and a target, validate them too (the target\n"
            "                          consumer and its bindings). Reads no archive, connects\n"
            "                          to nothing.\n"
            "  -h, --help              this help\n"
            "  -V, --version           print the version\n"
            "\n"
            "Exit codes: 0 ok (also: already completed; interrupted by SIGTERM/SIGINT, resumable),\n"
            "1 runtime failure (re-run to resume), 2 usage/config error, 3 target queue or\n"
            "exchange missing (run hookmq-dlx apply).\n",
            HQ_REPLAY_WINDOW_DEFAULT, HQ_REPLAY_WINDOW_MAX);
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ================================================================ state */

/* The ring of window slots: [head, head + len) are published and await their confirm (tags
 * consecutive), the next `queued` slots hold prepared copies not yet published: they go out
 * in bursts (flush_queued), which the broker takes in fewer, fuller TCP segments. */
enum slot_state { SLOT_PENDING = 0, SLOT_RETURNED, SLOT_DONE, SLOT_QUEUED };

struct slot {
    uint64_t tag;
    struct hq_rkey key;
    char *source, *id, *message_id; /* owned */
    struct hq_msg msg;              /* SLOT_QUEUED: the copy to publish (owned) */
    enum slot_state state;
};

struct replay {
    const struct hq_replay_opts *o;
    const char *config_path;
    struct hq_config *cfg;
    char id[HQ_REPLAY_ID_LEN + 1];
    char spec_sha[65];
    struct hq_afilter filter;

    /* target */
    const char *exchange;     /* "" or broker.exchange */
    char queue[HQ_NAME_MAX + 16];
    const char **bindings;    /* borrowed from topo */
    size_t n_bindings;
    struct hq_topology topo;
    const char *lc_consumer;  /* lifecycle "consumer": the target consumer or "events" */

    struct hq_rset *set;
    /* pass 1 */
    uint64_t total, dups, skipped_bindings, earlier;
    /* pass 2 */
    uint64_t dups2, skipped2, extra, invalid;
    uint64_t published, confirmed, failed;

    /* broker */
    struct hq_amqp *c;
    bool blocked;
    struct slot *ring;
    size_t ring_cap, head, len, queued;
    int fatal;
    char fatal_msg[512];

    char ckpath[PATH_MAX + 64], lockpath[PATH_MAX + 64];
    int lock_fd;
    struct hq_rckpt_info info; /* the checkpoint's header (loaded, or written) */
    bool resume;
    struct hq_rckpt *ckpt;
    struct hq_lc_emitter *lc[LC_EMITTERS]; /* best-effort "replayed" records, round robin */
    size_t n_lc, lc_next;
    struct hq_lc_stats lc_stats; /* summed; final once they are stopped */
    bool lc_used, lc_missing;
    struct hq_tbucket tb;

    /* progress */
    bool tty;
    double t0, last_progress, last_progress_confirmed_t;
    uint64_t last_progress_confirmed;
    int64_t last_confirm_mono;
};

/* ================================================================ filters and targets */

static bool bindings_match(const struct replay *rp, const char *rk)
{
    size_t i;

    if (rp->o->target != HQ_REPLAY_TARGET_CONSUMER || rp->o->ignore_bindings)
        return true;
    for (i = 0; i < rp->n_bindings; i++)
        if (hq_topic_match(rp->bindings[i], rk ? rk : ""))
            return true;
    return false;
}

/* The work queue and its bindings to the events exchange, from the topology the config
 * describes (what `hookmq-dlx apply` declares). */
static int resolve_target(struct replay *rp, char *err, size_t errsz)
{
    const struct hq_replay_opts *o = rp->o;
    size_t i;
    int rc;

    if (o->target == HQ_REPLAY_TARGET_EXCHANGE) {
        rp->exchange = rp->cfg->broker.exchange;
        rp->lc_consumer = "events";
        return HQ_OK;
    }
    if (!hq_config_consumer(rp->cfg, o->consumer)) {
        snprintf(err, errsz, "--to-consumer: no consumer named '%s' in %s", o->consumer,
                 rp->cfg->path ? rp->cfg->path : rp->config_path);
        return HQ_EINVAL;
    }
    rp->exchange = "";
    rp->lc_consumer = o->consumer;
    snprintf(rp->queue, sizeof(rp->queue), "hookmq.%s", o->consumer);
    rc = hq_topology_build(rp->cfg, &rp->topo);
    if (rc != HQ_OK) {
        snprintf(err, errsz, "cannot derive the topology: %s", hq_strerror(rc));
        return rc;
    }
    rp->bindings = calloc(rp->topo.n ? rp->topo.n : 1, sizeof(*rp->bindings));
    if (!rp->bindings)
        return HQ_ENOMEM;
    for (i = 0; i < rp->topo.n; i++) {
        const struct hq_obj *ob = &rp->topo.objs[i];

        if (ob->kind == HQ_OBJ_BINDING && ob->name && strcmp(ob->name, rp->queue) == 0 &&
            ob->source && strcmp(ob->source, rp->cfg->broker.exchange) == 0 && ob->routing_key)
            rp->bindings[rp->n_bindings++] = ob->routing_key;
    }
    if (rp->n_bindings == 0 && !o->ignore_bindings) {
        snprintf(err, errsz, "consumer '%s' has no bindings to %s: nothing could match "
                             "(use --ignore-bindings)", o->consumer, rp->cfg->broker.exchange);
        return HQ_EINVAL;
    }
    return HQ_OK;
}

static void print_sanitized(FILE *f, const char *s)
{
    const unsigned char *p;

    for (p = (const unsigned char *)(s ? s : ""); *p; p++)
        fputc(*p <= 0x20 || *p == 0x7f ? '?' : *p, f);
}

/* ================================================================ progress */

static void progress(struct replay *rp, bool final)
{
    double now = mono_s(), dt, rate;
    uint64_t done, total;

    if (rp->o->quiet || rp->o->dry_run)
        return;
    if (!final && now - rp->last_progress < 1.0)
        return;
    dt = now - rp->last_progress_confirmed_t;
    rate = final ? (now - rp->t0 > 0 ? (double)rp->confirmed / (now - rp->t0) : 0)
                 : (dt > 0 ? (double)(rp->confirmed - rp->last_progress_confirmed) / dt : 0);
    rp->last_progress = now;
    rp->last_progress_confirmed_t = now;
    rp->last_progress_confirmed = rp->confirmed;
    done = rp->earlier + rp->confirmed;
    total = rp->total + rp->extra;
    fprintf(stderr, "%s%s: %" PRIu64 "/%" PRIu64 " replayed (%.1f%%), %.0f/s%s, in flight %zu%s%s",
            rp->tty ? "\r\033[K" : "", rp->id, done, total,
            total ? 100.0 * (double)done / (double)total : 100.0, rate,
            final ? " average" : "", rp->len, rp->blocked ? ", broker blocked publishing" : "",
            rp->tty && !final ? "" : "\n");
    fflush(stderr);
}

/* ================================================================ confirms */

static void slot_free(struct slot *s)
{
    free(s->source);
    free(s->id);
    free(s->message_id);
    hq_msg_free(&s->msg);
    memset(s, 0, sizeof(*s));
}

static void set_fatal(struct replay *rp, int rc, const char *msg)
{
    if (rp->fatal)
        return;
    rp->fatal = rc ? rc : HQ_EBROKER;
    snprintf(rp->fatal_msg, sizeof(rp->fatal_msg), "%s", msg);
}

static void finish(struct replay *rp, struct slot *s, bool acked)
{
    if (s->state == SLOT_DONE)
        return;
    if (acked && s->state == SLOT_PENDING) {
        struct hq_lc_record lr;
        int rc;

        rp->confirmed++;
        rc = hq_rckpt_add(rp->ckpt, &s->key);
        if (rc != HQ_OK)
            set_fatal(rp, rc, "cannot write the checkpoint");
        if (rp->n_lc) {
            memset(&lr, 0, sizeof(lr));
            lr.source = s->source;
            lr.id = s->id;
            lr.consumer = rp->lc_consumer;
            lr.attempt = 1;
            lr.verdict = HQ_LC_REPLAYED;
            lr.at_ms = hq_now_ms();
            hq_lc_emit(rp->lc[rp->lc_next++ % rp->n_lc], &lr);
        }
    } else {
        rp->failed++;
        hq_warn(s->state == SLOT_RETURNED ? "event returned unroutable by the broker"
                                          : "event nacked by the broker",
                "replay_id=%s source=%s event_id=%s", rp->id, s->source, s->id);
    }
    s->state = SLOT_DONE;
}

static void pop_done(struct replay *rp)
{
    while (rp->len && rp->ring[rp->head].state == SLOT_DONE) {
        slot_free(&rp->ring[rp->head]);
        rp->head = (rp->head + 1) % rp->ring_cap;
        rp->len--;
    }
}

static void settle(struct replay *rp, uint64_t tag, bool multiple, bool acked)
{
    size_t i;

    if (rp->len == 0)
        return;
    if (multiple) {
        for (i = 0; i < rp->len; i++) {
            struct slot *s = &rp->ring[(rp->head + i) % rp->ring_cap];

            if (s->tag > tag)
                break;
            finish(rp, s, acked);
        }
    } else {
        uint64_t first = rp->ring[rp->head].tag;

        if (tag >= first && tag - first < rp->len)
            finish(rp, &rp->ring[(rp->head + (size_t)(tag - first)) % rp->ring_cap], acked);
    }
    rp->last_confirm_mono = hq_mono_ms();
    pop_done(rp);
}

static void on_return(struct replay *rp, const struct hq_amqp_ev *ev)
{
    size_t i;
    char msg[512];

    for (i = 0; i < rp->len; i++) {
        struct slot *s = &rp->ring[(rp->head + i) % rp->ring_cap];

        if (s->state == SLOT_PENDING && s->message_id && strcmp(s->message_id, ev->message_id) == 0) {
            s->state = SLOT_RETURNED;
            break;
        }
    }
    if (rp->o->target == HQ_REPLAY_TARGET_CONSUMER) {
        /* nothing routes to the work queue any more: it was deleted */
        snprintf(msg, sizeof(msg), "the broker returned an event as unroutable (%d %s): queue %s "
                                   "is gone? run `hookmq-dlx apply`, then this command again",
                 ev->reply_code, ev->text, rp->queue);
        set_fatal(rp, HQ_ENOTFOUND, msg);
    }
}

/* Handle one broker event. */
static void on_event(struct replay *rp, const struct hq_amqp_ev *ev)
{
    char msg[512];

    switch (ev->type) {
    case HQ_AMQP_EV_ACK: settle(rp, ev->tag, ev->multiple, true); break;
    case HQ_AMQP_EV_NACK: settle(rp, ev->tag, ev->multiple, false); break;
    case HQ_AMQP_EV_RETURN: on_return(rp, ev); break;
    case HQ_AMQP_EV_BLOCKED:
        if (!rp->blocked)
            hq_warn("broker blocked publishing (resource alarm): waiting", "reason=\"%s\"",
                    ev->text);
        rp->blocked = true;
        break;
    case HQ_AMQP_EV_UNBLOCKED:
        if (rp->blocked)
            hq_info("broker unblocked publishing", "replay_id=%s", rp->id);
        rp->blocked = false;
        break;
    case HQ_AMQP_EV_CLOSED:
        snprintf(msg, sizeof(msg), "broker connection lost: %s", ev->text);
        set_fatal(rp, HQ_EDOWN, msg);
        break;
    default: break;
    }
}

/* Wait up to timeout_ms for broker events, then take whatever else is already there. */
static void pump(struct replay *rp, int timeout_ms)
{
    struct hq_amqp_ev ev;
    int rc, k;

    for (k = 0; k < 100000 && !rp->fatal; k++) {
        rc = hq_amqp_poll(rp->c, k == 0 ? timeout_ms : 0, &ev);
        if (rc != HQ_OK) {
            char msg[512];

            snprintf(msg, sizeof(msg), "broker connection lost: %s",
                     ev.text[0] ? ev.text : hq_strerror(rc));
            set_fatal(rp, HQ_EDOWN, msg);
            break;
        }
        if (ev.type == HQ_AMQP_EV_NONE)
            break;
        on_event(rp, &ev);
    }
    rc = hq_rckpt_flush(rp->ckpt, false, hq_mono_ms());
    if (rc != HQ_OK)
        set_fatal(rp, rc, "cannot write the checkpoint");
}

static void check_hup(struct replay *rp)
{
    struct hq_config *nc = NULL;
    char err[512];

    if (!hup_signal)
        return;
    hup_signal = 0;
    if (hq_config_load(rp->config_path, &nc, err, sizeof(err)) != HQ_OK) {
        hq_warn("SIGHUP: config not reloaded", "error=\"%s\"", err);
        return;
    }
    hq_log_set_level(nc->log_level);
    hq_info("SIGHUP: log level reloaded (the rest of a replay is fixed at its start)",
            "replay_id=%s", rp->id);
    hq_config_free(nc);
}

/* Prepare the copy of r in the next free slot (SLOT_QUEUED). The caller made room. */
static int stage_one(struct replay *rp, const struct hq_arec *r, const struct hq_rkey *k)
{
    struct slot *s = &rp->ring[(rp->head + rp->len + rp->queued) % rp->ring_cap];
    int rc;

    memset(s, 0, sizeof(*s));
    rc = hq_arec_to_msg(r, &s->msg);
    if (rc == HQ_EINVAL) {
        rp->invalid++;
        hq_warn("archive record cannot be replayed (malformed properties or headers): skipped",
                "source=%s event_id=%s", r->source, r->id);
        return HQ_OK;
    }
    if (rc != HQ_OK)
        return rc;
    if (!s->msg.message_id || !s->msg.message_id[0]) {
        free(s->msg.message_id);
        if (!(s->msg.message_id = strdup(r->id ? r->id : ""))) {
            rc = HQ_ENOMEM;
            goto fail;
        }
    }
    rc = hq_replay_prepare_msg(&s->msg, rp->id, hq_now_ms(),
                               rp->o->target == HQ_REPLAY_TARGET_CONSUMER);
    if (rc != HQ_OK)
        goto fail;
    s->key = *k;
    if (!(s->source = strdup(r->source ? r->source : "")) || !(s->id = strdup(r->id ? r->id : "")) ||
        !(s->message_id = strdup(s->msg.message_id))) {
        rc = HQ_ENOMEM;
        goto fail;
    }
    s->state = SLOT_QUEUED;
    rp->queued++;
    return HQ_OK;
fail:
    slot_free(s);
    return rc;
}

/* Drop the queued slot at ring offset off (from head), closing the gap. */
static void unqueue_at(struct replay *rp, size_t off)
{
    size_t i, end = rp->len + rp->queued;

    slot_free(&rp->ring[(rp->head + off) % rp->ring_cap]);
    for (i = off; i + 1 < end; i++)
        rp->ring[(rp->head + i) % rp->ring_cap] = rp->ring[(rp->head + i + 1) % rp->ring_cap];
    memset(&rp->ring[(rp->head + end - 1) % rp->ring_cap], 0, sizeof(struct slot));
    rp->queued--;
}

/* Publish the queued copies back to back, in order. */
static void flush_queued(struct replay *rp)
{
    if (!rp->queued)
        return;
    hq_replay_cork(rp->c, true);
    while (rp->queued && !rp->fatal) {
        struct slot *s = &rp->ring[(rp->head + rp->len) % rp->ring_cap];
        uint64_t tag = 0;
        int rc;

        rc = hq_amqp_publish(rp->c, rp->exchange,
                             rp->o->target == HQ_REPLAY_TARGET_CONSUMER ? rp->queue
                                                                        : s->msg.routing_key,
                             &s->msg, true, &tag);
        if (rc == HQ_ETOOBIG || rc == HQ_EINVAL) {
            /* larger than the broker's frame limits allow, or an unsendable header */
            rp->invalid++;
            hq_warn("archived event cannot be published as it is: skipped",
                    "source=%s event_id=%s error=\"%s\"", s->source, s->id, hq_strerror(rc));
            unqueue_at(rp, rp->len);
            continue;
        }
        if (rc != HQ_OK) {
            char msg[512];

            snprintf(msg, sizeof(msg), "publish failed: %s", hq_strerror(rc));
            set_fatal(rp, rc == HQ_ENOMEM ? rc : HQ_EDOWN, msg);
            break;
        }
        hq_msg_free(&s->msg);
        s->tag = tag;
        s->state = SLOT_PENDING;
        rp->len++;
        rp->queued--;
        rp->published++;
    }
    hq_replay_cork(rp->c, false);
}

/* Forget what was prepared but not published (stopping). */
static void discard_queued(struct replay *rp)
{
    while (rp->queued)
        unqueue_at(rp, rp->len);
}

/* Block until one more event may be published: a window slot, a token, not blocked.
 * HQ_OK, HQ_ESHUTDOWN (signal) or the fatal status. */
static int wait_turn(struct replay *rp)
{
    for (;;) {
        int wait_ms = 100;

        if (stop_signal)
            return HQ_ESHUTDOWN;
        if (rp->fatal)
            return rp->fatal;
        check_hup(rp);
        if (rp->len + rp->queued < rp->ring_cap && !rp->blocked) {
            double w = hq_tbucket_take(&rp->tb, mono_s());

            if (w <= 0)
                return HQ_OK;
            wait_ms = (int)ceil(w * 1000.0);
            if (wait_ms < 1)
                wait_ms = 1;
            if (wait_ms > 100)
                wait_ms = 100;
        }
        /* about to wait: what is prepared goes out first */
        if (rp->queued && !rp->blocked) {
            flush_queued(rp);
            continue;
        }
        pump(rp, wait_ms);
        progress(rp, false);
    }
}

/* Wait for everything in flight, up to stall_ms without a confirm (or a total of max_ms when
 * max_ms > 0). */
static void drain(struct replay *rp, int64_t stall_ms, int64_t max_ms)
{
    int64_t start = hq_mono_ms();

    rp->last_confirm_mono = start;
    while (rp->len && !rp->fatal) {
        int64_t now = hq_mono_ms();

        if (now - rp->last_confirm_mono > stall_ms || (max_ms > 0 && now - start > max_ms)) {
            char msg[256];

            snprintf(msg, sizeof(msg), "no confirm from the broker for %zu event(s) within %lld ms",
                     rp->len, (long long)(now - rp->last_confirm_mono));
            set_fatal(rp, HQ_ETIMEDOUT, msg);
            break;
        }
        check_hup(rp);
        pump(rp, 100);
        progress(rp, false);
    }
}

/* ================================================================ lifecycle records */

/* Best effort: an emitter keeps one record in flight, so a few of them in parallel keep up
 * with a fast replay; what they cannot publish is dropped and counted. */
static void lc_start(struct replay *rp)
{
    size_t i;

    for (i = 0; i < LC_EMITTERS; i++) {
        char name[64];
        int rc;

        snprintf(name, sizeof(name), PROG " lifecycle #%zu", i + 1);
        rc = hq_lc_start(&rp->cfg->broker, name, LC_CAPACITY, &rp->lc[rp->n_lc]);
        if (rc != HQ_OK) {
            hq_warn("lifecycle emitter not started", "error=\"%s\"", hq_strerror(rc));
            break;
        }
        rp->n_lc++;
    }
}

static void lc_sum(struct replay *rp)
{
    size_t i;

    memset(&rp->lc_stats, 0, sizeof(rp->lc_stats));
    for (i = 0; i < rp->n_lc; i++) {
        struct hq_lc_stats st;

        hq_lc_get_stats(rp->lc[i], &st);
        rp->lc_stats.queued += st.queued;
        rp->lc_stats.published += st.published;
        rp->lc_stats.dropped += st.dropped;
        rp->lc_stats.unconfirmed += st.unconfirmed;
    }
}

/* Let the emitters publish what is queued (up to LC_DRAIN_MS), then stop them. */
static void lc_finish(struct replay *rp)
{
    int64_t until = hq_mono_ms() + LC_DRAIN_MS;
    size_t i;

    if (!rp->n_lc)
        return;
    for (;;) {
        lc_sum(rp);
        if (rp->lc_stats.queued == 0 || hq_mono_ms() >= until || stop_signal)
            break;
        usleep(20 * 1000);
    }
    rp->lc_stats.dropped += rp->lc_stats.queued; /* what is left is dropped by the stop */
    for (i = 0; i < rp->n_lc; i++)
        hq_lc_stop(rp->lc[i], 200);
    rp->n_lc = 0;
    rp->lc_used = true;
}

static void lc_abort(struct replay *rp)
{
    size_t i;

    for (i = 0; i < rp->n_lc; i++)
        hq_lc_stop(rp->lc[i], 0);
    rp->n_lc = 0;
}

/* ================================================================ the two passes */

static int pass1(void *arg, const struct hq_arec *r)
{
    struct replay *rp = arg;
    struct hq_rkey k;
    unsigned char old = 0;
    int rc;

    if (stop_signal)
        return HQ_ESHUTDOWN;
    hq_replay_key(r->source, r->id, &k);
    if ((rc = hq_rset_add(rp->set, &k, F_PASS1, &old)) != HQ_OK)
        return rc;
    if (old & F_PASS1) {
        rp->dups++;
        return 0;
    }
    if (!bindings_match(rp, r->routing_key)) {
        rp->skipped_bindings++;
        return 0;
    }
    rp->total++;
    if (old & F_CKPT) {
        rp->earlier++;
        return 0;
    }
    if (rp->o->dry_run) {
        char t[40];

        hq_time_format(r->received_at, t, sizeof(t));
        printf("%s ", t);
        print_sanitized(stdout, r->source);
        putchar(' ');
        print_sanitized(stdout, r->id);
        putchar(' ');
        print_sanitized(stdout, r->type);
        putchar(' ');
        print_sanitized(stdout, r->routing_key);
        printf(" %zu\n", r->body_len);
    }
    return 0;
}

static int pass2(void *arg, const struct hq_arec *r)
{
    struct replay *rp = arg;
    struct hq_rkey k;
    unsigned char old = 0;
    int rc;

    if (stop_signal)
        return HQ_ESHUTDOWN;
    if (rp->fatal)
        return rp->fatal;
    hq_replay_key(r->source, r->id, &k);
    if ((rc = hq_rset_add(rp->set, &k, F_PASS2, &old)) != HQ_OK)
        return rc;
    if (old & F_PASS2) {
        rp->dups2++;
        return 0;
    }
    if (!bindings_match(rp, r->routing_key)) {
        rp->skipped2++;
        return 0;
    }
    if (!(old & F_PASS1))
        rp->extra++; /* archived since the first pass */
    if (old & F_CKPT)
        return 0; /* confirmed by an earlier run */
    rc = wait_turn(rp);
    if (rc != HQ_OK)
        return rc;
    rc = stage_one(rp, r, &k);
    if (rc != HQ_OK)
        return rc;
    if (rp->queued >= BURST) {
        flush_queued(rp);
        pump(rp, 0); /* take the confirms that are there, without waiting */
    }
    progress(rp, false);
    return rp->fatal ? rp->fatal : 0;
}

/* ================================================================ main */

static void describe(const struct hq_replay_opts *o, char *out, size_t outsz)
{
    snprintf(out, outsz, "from=%s to=%s source=%s type=%s id=%s grep=%s target=%s%s%s",
             o->from_text ? o->from_text : "-", o->to_text ? o->to_text : "-",
             o->source ? o->source : "-", o->type_glob ? o->type_glob : "-", o->id ? o->id : "-",
             o->grep ? o->grep : "-",
             o->target == HQ_REPLAY_TARGET_CONSUMER ? "consumer:" : "exchange",
             o->target == HQ_REPLAY_TARGET_CONSUMER ? o->consumer : "",
             o->ignore_bindings ? " ignore-bindings" : "");
}

static void target_text(const struct replay *rp, char *out, size_t outsz)
{
    if (rp->o->target == HQ_REPLAY_TARGET_CONSUMER)
        snprintf(out, outsz, "consumer %s (queue %s%s)", rp->o->consumer, rp->queue,
                 rp->o->ignore_bindings ? ", bindings ignored" : "");
    else
        snprintf(out, outsz, "exchange %s (every bound consumer and the archive)", rp->exchange);
}

/* Print why the run stopped / what it did. */
static void summary(const struct replay *rp, int rc, double secs)
{
    char tgt[256];
    struct hq_lc_stats ls;
    uint64_t done = rp->earlier + rp->confirmed;

    target_text(rp, tgt, sizeof(tgt));
    printf("replay %s %s: %" PRIu64 " of %" PRIu64 " events replayed to %s (%" PRIu64
           " this run, %" PRIu64 " confirmed by earlier runs)\n",
           rp->id,
           rc == HQ_OK ? "complete" : rc == HQ_ESHUTDOWN ? "interrupted" : "FAILED", done,
           rp->total + rp->extra, tgt, rp->confirmed, rp->earlier);
    printf("  %" PRIu64 " published, %" PRIu64 " confirmed, %" PRIu64
           " failed (nacked/returned), %" PRIu64 " unsendable records skipped, %" PRIu64
           " archive duplicates collapsed, %" PRIu64 " not matching the bindings; %.1f s, %.0f/s\n",
           rp->published, rp->confirmed, rp->failed, rp->invalid, rp->dups,
           rp->skipped_bindings, secs, secs > 0 ? (double)rp->confirmed / secs : 0.0);
    if (rp->lc_used) {
        ls = rp->lc_stats;
        printf("  lifecycle records: %" PRIu64 " published, %" PRIu64 " dropped, %" PRIu64
               " unconfirmed (best effort)\n",
               ls.published, ls.dropped, ls.unconfirmed);
    }
    if (rc != HQ_OK)
        printf("  run the same command again to resume (already confirmed events are not sent "
               "again)\n");
    fflush(stdout);
}

/* Find the checkpoint of this replay and lock it (not for --dry-run). *finished is set when
 * there is nothing left to do (it already completed). */
static int checkpoint_prepare(struct replay *rp, bool *finished)
{
    const struct hq_replay_opts *o = rp->o;
    char ckdir[PATH_MAX], when[40];
    int n, rc;

    *finished = false;
    n = o->checkpoint_dir ? snprintf(ckdir, sizeof(ckdir), "%s", o->checkpoint_dir)
                          : snprintf(ckdir, sizeof(ckdir), "%s/.replay", rp->cfg->archive.dir);
    if (n < 0 || (size_t)n >= sizeof(ckdir)) {
        fprintf(stderr, PROG ": checkpoint directory path too long\n");
        return HQ_EINVAL;
    }
    snprintf(rp->ckpath, sizeof(rp->ckpath), "%s/%s.ckpt", ckdir, rp->id);
    snprintf(rp->lockpath, sizeof(rp->lockpath), "%s/%s.lock", ckdir, rp->id);
    if (!o->dry_run) {
        rc = hq_rckpt_lock(rp->lockpath, &rp->lock_fd);
        if (rc == HQ_EBLOCKED) {
            fprintf(stderr, PROG ": replay %s is already running (lock %s held)\n", rp->id,
                    rp->lockpath);
            return rc;
        }
        if (rc != HQ_OK) {
            fprintf(stderr, PROG ": cannot create the checkpoint lock %s (is the directory "
                            "writable? see --checkpoint-dir)\n", rp->lockpath);
            return rc;
        }
    }
    memset(&rp->info, 0, sizeof(rp->info));
    if (o->restart)
        return HQ_OK;
    rc = hq_rckpt_load(rp->ckpath, &rp->info, rp->set, F_CKPT);
    if (rc == HQ_ENOTFOUND) {
        memset(&rp->info, 0, sizeof(rp->info));
        return HQ_OK;
    }
    if (rc == HQ_EINVAL) {
        fprintf(stderr, PROG ": checkpoint %s is damaged; use --restart to start over\n",
                rp->ckpath);
        return HQ_EIO;
    }
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": cannot read checkpoint %s: %s\n", rp->ckpath, hq_strerror(rc));
        return rc;
    }
    if (strcmp(rp->info.spec_sha, rp->spec_sha) != 0) {
        fprintf(stderr, PROG ": checkpoint %s belongs to another replay; use --restart to "
                        "replace it\n", rp->ckpath);
        return HQ_EIO;
    }
    if (rp->info.done) {
        hq_time_format(rp->info.done_ms, when, sizeof(when));
        printf("replay %s already completed at %s (%" PRIu64 " events); use --restart to "
               "replay again\n", rp->id, when, rp->info.done_events);
        *finished = true;
        return HQ_OK;
    }
    rp->resume = true;
    /* relative times were resolved when the replay began: keep that window */
    rp->filter.from_ms = rp->info.from_ms;
    rp->filter.to_ms = rp->info.to_ms;
    hq_time_format(rp->info.started_ms, when, sizeof(when));
    fprintf(stderr, PROG ": resuming replay %s (started %s): %" PRIu64
                    " events already confirmed%s\n",
            rp->id, when, rp->info.confirmed,
            rp->info.torn ? " (a torn last checkpoint line was ignored)" : "");
    return HQ_OK;
}

/* Connect, check that the target exists (HQ_ENOTFOUND: exit 3), confirm mode. */
static int connect_target(struct replay *rp)
{
    const struct hq_replay_opts *o = rp->o;
    size_t start = 0;
    int rc;

    rc = hq_amqp_connect(&rp->cfg->broker, PROG, CONNECT_TIMEOUT_MS, &start, &rp->c);
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": cannot connect to the broker: %s\n", hq_strerror(rc));
        return rc;
    }
    if (!o->no_lifecycle) {
        /* (a missing exchange reopens the channel: still usable for what follows) */
        rc = hq_amqp_exchange_exists(rp->c, HQ_LIFECYCLE_EXCHANGE);
        if (rc == HQ_ENOTFOUND) {
            hq_warn("no lifecycle records: the exchange is missing (run hookmq-dlx apply)",
                    "exchange=%s", HQ_LIFECYCLE_EXCHANGE);
            rp->lc_missing = true;
        } else if (rc != HQ_OK) {
            fprintf(stderr, PROG ": broker: %s\n", hq_strerror(rc));
            return rc;
        }
    }
    if (o->target == HQ_REPLAY_TARGET_CONSUMER)
        rc = hq_amqp_queue_exists(rp->c, rp->queue, NULL, NULL);
    else
        rc = hq_amqp_exchange_exists(rp->c, rp->exchange);
    if (rc == HQ_ENOTFOUND) {
        fprintf(stderr, PROG ": %s %s does not exist on the broker: run `hookmq-dlx apply -c %s`\n",
                o->target == HQ_REPLAY_TARGET_CONSUMER ? "queue" : "exchange",
                o->target == HQ_REPLAY_TARGET_CONSUMER ? rp->queue : rp->exchange,
                rp->config_path);
        return rc;
    }
    if (rc == HQ_OK)
        rc = hq_amqp_confirm_select(rp->c);
    if (rc != HQ_OK)
        fprintf(stderr, PROG ": broker: %s\n", hq_strerror(rc));
    return rc;
}

/* Pass 2 with everything around it: the checkpoint file, lifecycle emitters, draining, the
 * done mark and the summary. */
static int publish_all(struct replay *rp)
{
    const struct hq_replay_opts *o = rp->o;
    char about[2048], tgt[256];
    double t_end;
    int rc, crc;

    if (rp->resume) {
        rc = hq_rckpt_open(rp->ckpath, &rp->ckpt);
    } else {
        memcpy(rp->info.id, rp->id, sizeof(rp->info.id));
        memcpy(rp->info.spec_sha, rp->spec_sha, sizeof(rp->info.spec_sha));
        rp->info.from_ms = rp->filter.from_ms;
        rp->info.to_ms = rp->filter.to_ms;
        rp->info.started_ms = hq_now_ms();
        describe(o, about, sizeof(about));
        rc = hq_rckpt_create(rp->ckpath, &rp->info, about, &rp->ckpt);
    }
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": cannot write checkpoint %s: %s\n", rp->ckpath, hq_strerror(rc));
        return rc == HQ_ENOTFOUND ? HQ_EIO : rc;
    }
    rp->ring_cap = (size_t)o->window;
    rp->ring = calloc(rp->ring_cap, sizeof(*rp->ring));
    if (!rp->ring)
        return HQ_ENOMEM;
    if (!o->no_lifecycle && !rp->lc_missing)
        lc_start(rp);
    rp->t0 = rp->last_progress = rp->last_progress_confirmed_t = mono_s();
    /* a burst of 50 ms worth of events (at least 1) */
    hq_tbucket_init(&rp->tb, o->rate, o->rate / 20.0, rp->t0);
    target_text(rp, tgt, sizeof(tgt));
    hq_info("replay starting", "replay_id=%s events=%" PRIu64 " already=%" PRIu64
            " target=\"%s\" rate=%g window=%d checkpoint=%s",
            rp->id, rp->total, rp->earlier, tgt, o->rate, o->window, rp->ckpath);

    rc = hq_archive_scan(rp->cfg->archive.dir, &rp->filter, pass2, rp, NULL);
    if (rc == HQ_OK)
        flush_queued(rp);
    else
        discard_queued(rp);
    if (rc == HQ_OK && rp->fatal)
        rc = rp->fatal;
    if (rc == HQ_OK || rc == HQ_ESHUTDOWN)
        drain(rp, DRAIN_STALL_MS, rc == HQ_ESHUTDOWN ? STOP_DRAIN_MS : 0);
    if (rp->fatal && (rc == HQ_OK || rc == HQ_ESHUTDOWN))
        rc = rp->fatal;
    if (rc == HQ_OK && rp->failed)
        rc = HQ_EBROKER;
    if (rc == HQ_ENOTFOUND && !rp->fatal)
        rc = HQ_EIO; /* the archive vanished under us: not a topology problem */
    t_end = mono_s();
    progress(rp, true);
    crc = hq_rckpt_flush(rp->ckpt, true, hq_mono_ms());
    if (crc == HQ_OK && rc == HQ_OK)
        crc = hq_rckpt_mark_done(rp->ckpt, rp->earlier + rp->confirmed, hq_now_ms());
    if (crc != HQ_OK && (rc == HQ_OK || rc == HQ_ESHUTDOWN)) {
        rc = crc;
        set_fatal(rp, crc, "cannot write the checkpoint");
    }
    lc_finish(rp);
    if (rp->fatal)
        fprintf(stderr, PROG ": %s\n", rp->fatal_msg);
    else if (rc != HQ_OK && rc != HQ_ESHUTDOWN)
        fprintf(stderr, PROG ": %s\n",
                rp->failed ? "some events were refused by the broker" : hq_strerror(rc));
    summary(rp, rc, t_end - rp->t0);
    return rc;
}

static void replay_free(struct replay *rp)
{
    size_t i;

    lc_abort(rp);
    if (rp->ckpt && hq_rckpt_close(rp->ckpt) != HQ_OK)
        hq_warn("checkpoint not synced at exit", "checkpoint=%s", rp->ckpath);
    rp->ckpt = NULL;
    if (rp->c) {
        hq_consume_detach(rp->c);
        hq_amqp_close(rp->c);
    }
    if (rp->ring) {
        for (i = 0; i < rp->ring_cap; i++)
            slot_free(&rp->ring[i]);
        free(rp->ring);
    }
    if (rp->lock_fd >= 0)
        close(rp->lock_fd);
    hq_rset_free(rp->set);
    free(rp->bindings);
    hq_topology_free(&rp->topo);
    hq_config_free(rp->cfg);
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sa.sa_flags = (int)(SA_RESTART | SA_RESETHAND); /* a second SIGINT/SIGTERM ends it at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Everything after the command line: the replay's status (mapped by exit_code). */
static int run(struct replay *rp)
{
    const struct hq_replay_opts *o = rp->o;
    struct hq_buf spec = HQ_BUF_INIT(64 * 1024);
    char err[1024], tgt[256];
    bool finished = false;
    int rc;

    if (hq_config_load(rp->config_path, &rp->cfg, err, sizeof(err)) != HQ_OK) {
        fprintf(stderr, "%s\n", err);
        return HQ_ECONFIG;
    }
    hq_log_setup(PROG, rp->cfg->log_level, rp->cfg->log_format);
    rp->tty = isatty(STDERR_FILENO) == 1;
    install_signals();
    rc = resolve_target(rp, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    if ((rc = hq_replay_spec(o, &spec)) != HQ_OK || (rc = hq_rset_new(&rp->set)) != HQ_OK) {
        fprintf(stderr, PROG ": %s\n", hq_strerror(rc));
        goto out;
    }
    hq_replay_id(spec.data, spec.len, rp->id, rp->spec_sha);
    hq_afilter_init(&rp->filter);
    rp->filter.from_ms = o->from_ms;
    rp->filter.to_ms = o->to_ms;
    rp->filter.source = o->source;
    rp->filter.type_glob = o->type_glob;
    rp->filter.id = o->id;
    rp->filter.grep = o->grep;
    rp->filter.events_only = true;
    rp->filter.kinds = 1u << HQ_AREC_EVENT;

    rc = checkpoint_prepare(rp, &finished);
    if (rc != HQ_OK || finished)
        goto out;

    /* pass 1: count (and list, for --dry-run) */
    rc = hq_archive_scan(rp->cfg->archive.dir, &rp->filter, pass1, rp, NULL);
    if (rc == HQ_ESHUTDOWN) {
        fprintf(stderr, PROG ": interrupted\n");
        goto out;
    }
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": cannot read the archive in %s: %s\n", rp->cfg->archive.dir,
                rc == HQ_ENOTFOUND ? "no such directory" : hq_strerror(rc));
        rc = rc == HQ_ENOTFOUND ? HQ_EIO : rc;
        goto out;
    }
    target_text(rp, tgt, sizeof(tgt));
    if (o->dry_run) {
        printf("dry run: %" PRIu64 " events would be replayed to %s as %s (%" PRIu64
               " already confirmed by an earlier run, %" PRIu64 " archive duplicates collapsed, %"
               PRIu64 " not matching the bindings)\n",
               rp->total - rp->earlier, tgt, rp->id, rp->earlier, rp->dups, rp->skipped_bindings);
        goto out;
    }
    if (rp->total == 0 && !rp->resume) {
        printf("nothing to replay: no archived event matches (%" PRIu64 " duplicates, %" PRIu64
               " not matching the bindings)\n", rp->dups, rp->skipped_bindings);
        goto out;
    }
    rc = connect_target(rp);
    if (rc == HQ_OK)
        rc = publish_all(rp);
out:
    hq_buf_free(&spec);
    return rc;
}

/* --check (docs/interface.md: every program has one): argv holds "--check". With nothing else than
 * -c FILE (or --help / --version) the config alone is validated; with more, the rest must be a
 * valid replay command line and its target is resolved against the config as run() would,
 * stopping there. Returns the exit code. */
static int check_main(int argc, char **argv)
{
    struct hq_replay_opts o;
    struct replay rp;
    struct hq_config *cfg = NULL;
    const char *config = NULL, *path;
    char **args;
    char err[1024], tgt[256];
    bool config_only = true;
    int i, n = 0, rc;

    args = calloc((size_t)argc + 1, sizeof(*args));
    if (!args) {
        fprintf(stderr, PROG ": out of memory\n");
        return EXIT_RUNTIME;
    }
    for (i = 0; i < argc; i++)
        if (i == 0 || strcmp(argv[i], "--check") != 0)
            args[n++] = argv[i];
    for (i = 1; i < n && config_only; i++) {
        if ((strcmp(args[i], "-c") == 0 || strcmp(args[i], "--config") == 0) && i + 1 < n)
            config = args[++i];
        else if (strncmp(args[i], "--config=", 9) == 0 && args[i][9])
            config = args[i] + 9;
        else
            config_only = false; /* --help, --version and the rest: hq_replay_parse_args */
    }
    memset(&rp, 0, sizeof(rp));
    rp.lock_fd = -1;
    if (config_only) {
        path = hq_config_default_path(config);
        if (hq_config_load(path, &cfg, err, sizeof(err)) != HQ_OK) {
            fprintf(stderr, "%s\n", err);
            rc = HQ_ECONFIG;
            goto out;
        }
        printf("%s: ok (%zu consumers, archive.dir %s)\n", path, cfg->n_consumers,
               cfg->archive.dir);
        rc = HQ_OK;
        goto out;
    }
    rc = hq_replay_parse_args(n, args, hq_now_ms(), &o, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": %s\n", err);
        fprintf(stderr, "usage: " PROG " [-c FILE] [FILTERS TARGET ...] --check "
                        "(--help for more)\n");
        goto out;
    }
    if (o.help || o.version) {
        if (o.help)
            usage(stdout);
        else
            printf(PROG " %s\n", HQ_VERSION);
        rc = HQ_OK;
        goto out;
    }
    rp.o = &o;
    rp.config_path = hq_config_default_path(o.config);
    if (hq_config_load(rp.config_path, &rp.cfg, err, sizeof(err)) != HQ_OK) {
        fprintf(stderr, "%s\n", err);
        rc = HQ_ECONFIG;
        goto out;
    }
    rc = resolve_target(&rp, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    target_text(&rp, tgt, sizeof(tgt));
    printf("%s: ok (replay to %s)\n", rp.config_path, tgt);
out:
    replay_free(&rp);
    hq_config_free(cfg);
    free(args);
    return exit_code(rc);
}

int main(int argc, char **argv)
{
    struct hq_replay_opts o;
    struct replay rp;
    char err[1024];
    int i, rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "--check") == 0)
            return check_main(argc, argv);
    rc = hq_replay_parse_args(argc, argv, hq_now_ms(), &o, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": %s\n", err);
        fprintf(stderr, "usage: " PROG " [-c FILE] FILTERS TARGET [--rate N] [--dry-run] "
                        "(--help for more)\n");
        return exit_code(rc);
    }
    if (o.help) {
        usage(stdout);
        return EXIT_OK;
    }
    if (o.version) {
        printf(PROG " %s\n", HQ_VERSION);
        return EXIT_OK;
    }
    memset(&rp, 0, sizeof(rp));
    rp.lock_fd = -1;
    rp.o = &o;
    rp.config_path = hq_config_default_path(o.config);
    rc = run(&rp);
    replay_free(&rp);
    return exit_code(rc);
}
