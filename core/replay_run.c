/* replay_run: one replay run (hq_replay_run.h, docs/replay.md), shared by hookmq-replay and
 * hookmq-console.
 *
 * Reads the archive (hq_archive_scan) twice: a first pass counts what the filters, the
 * target's bindings and the checkpoint select (and, for a dry run, shows it), the second
 * publishes each selected event once per (source, id) on one broker connection with a window
 * of pipelined publisher confirms (prepared copies go out in corked bursts of up to BURST),
 * optionally paced by a token bucket. Every confirmed event is appended to the checkpoint at
 * once (fdatasync'd in batches), so a killed replay, run again with the same spec, sends only
 * what was not confirmed: at most the window that was in flight is sent twice. A broker
 * connection lost mid-replay ends the run for the same reason: running it again resumes. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hq_amqp.h"
#include "hq_archive.h"
#include "hq_config.h"
#include "hq_confirm.h"
#include "hq_consume.h"
#include "hq_lifecycle.h"
#include "hq_log.h"
#include "hq_replay.h"
#include "hq_replay_run.h"
#include "hq_time.h"
#include "hq_topology.h"

#define DEFAULT_NAME "hookmq-replay"
#define CONNECT_TIMEOUT_MS 10000
#define DRAIN_STALL_MS 30000    /* give up waiting for confirms after this long without any */
#define STOP_DRAIN_MS 10000     /* on a stop: wait this long for what is in flight */
#define BURST 32                /* prepared copies published back to back */
#define LC_EMITTERS 4           /* lifecycle publishers: each has one record in flight */
#define LC_CAPACITY 16384       /* lifecycle records queued per emitter (best effort) */
#define LC_DRAIN_MS 5000

/* flags in the key set */
#define F_PASS1 1u
#define F_PASS2 2u
#define F_CKPT 4u

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ================================================================ state */

/* One event of pass 2: first a prepared copy not yet published (SLOT_QUEUED, in
 * replay.staged: copies go out in bursts, flush_queued, which the broker takes in fewer, fuller
 * TCP segments), then published and awaiting its confirm (in the confirm window). */
enum slot_state { SLOT_QUEUED = 0, SLOT_PENDING, SLOT_RETURNED };

struct slot {
    struct hq_rkey key;
    char *source, *id, *message_id; /* owned */
    struct hq_msg msg;              /* SLOT_QUEUED: the copy to publish (owned) */
    enum slot_state state;
};

struct replay {
    const struct hq_replay_opts *o;
    const struct hq_config *cfg;   /* borrowed */
    struct hq_replay_hooks h;
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
    struct hq_replay_progress p; /* the counters (p.in_flight set when reported) */
    uint64_t dups2, skipped2;    /* pass 2's own */

    /* broker */
    struct hq_amqp *c;
    struct hq_confirm win;     /* tag -> struct slot * published, awaiting the confirm (owned) */
    struct slot *staged[BURST]; /* prepared copies not yet published, in order (owned) */
    size_t queued;              /* of them */
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
    int64_t last_confirm_mono;
};

static bool stopping(const struct replay *rp)
{
    return rp->h.stop && atomic_load(rp->h.stop) != 0;
}

static void say(const struct replay *rp, bool err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One line to the caller (hq_replay_hooks.on_message). */
static void say(const struct replay *rp, bool err, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    if (!rp->h.on_message)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    rp->h.on_message(rp->h.arg, err, line);
}

static void progress(struct replay *rp, bool final)
{
    if (!rp->h.on_progress)
        return;
    rp->p.in_flight = hq_confirm_outstanding(&rp->win);
    rp->h.on_progress(rp->h.arg, &rp->p, final);
}

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
                 rp->cfg->path ? rp->cfg->path : "the config");
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

/* ================================================================ confirms */

/* NULL-safe. */
static void slot_free(struct slot *s)
{
    if (!s)
        return;
    free(s->source);
    free(s->id);
    free(s->message_id);
    hq_msg_free(&s->msg);
    free(s);
}

static void set_fatal(struct replay *rp, int rc, const char *msg)
{
    if (rp->fatal)
        return;
    rp->fatal = rc ? rc : HQ_EBROKER;
    snprintf(rp->fatal_msg, sizeof(rp->fatal_msg), "%s", msg);
}

/* A published event settled by the broker (hq_confirm_fn): checkpoint and lifecycle record,
 * or a failure; then the slot is freed. */
static void finish(void *arg, void *entry, uint64_t tag, bool acked)
{
    struct replay *rp = arg;
    struct slot *s = entry;

    (void)tag;
    if (acked && s->state == SLOT_PENDING) {
        struct hq_lc_record lr;
        int rc;

        rp->p.confirmed++;
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
            lr.by = rp->h.by;
            hq_lc_emit(rp->lc[rp->lc_next++ % rp->n_lc], &lr);
        }
    } else {
        rp->p.failed++;
        hq_warn(s->state == SLOT_RETURNED ? "event returned unroutable by the broker"
                                          : "event nacked by the broker",
                "replay_id=%s source=%s event_id=%s", rp->id, s->source, s->id);
    }
    slot_free(s);
}

static void settle(struct replay *rp, uint64_t tag, bool multiple, bool acked)
{
    if (hq_confirm_empty(&rp->win))
        return;
    (void)hq_confirm_settle(&rp->win, tag, multiple, acked, finish, rp);
    rp->last_confirm_mono = hq_mono_ms();
}

static bool pending_with_id(const void *entry, const void *key)
{
    const struct slot *s = entry;

    return s->state == SLOT_PENDING && s->message_id && strcmp(s->message_id, key) == 0;
}

static void on_return(struct replay *rp, const struct hq_amqp_ev *ev)
{
    struct slot *s = hq_confirm_find(&rp->win, pending_with_id, ev->message_id, NULL);
    char msg[512];

    if (s)
        s->state = SLOT_RETURNED;
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
        if (!rp->p.blocked)
            hq_warn("broker blocked publishing (resource alarm): waiting", "reason=\"%s\"",
                    ev->text);
        rp->p.blocked = true;
        break;
    case HQ_AMQP_EV_UNBLOCKED:
        if (rp->p.blocked)
            hq_info("broker unblocked publishing", "replay_id=%s", rp->id);
        rp->p.blocked = false;
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

/* Prepare the copy of r after the staged ones (SLOT_QUEUED). The caller made room: in the
 * window (wait_turn) and among the staged (fewer than BURST). */
static int stage_one(struct replay *rp, const struct hq_arec *r, const struct hq_rkey *k)
{
    struct slot *s;
    int rc;

    if (rp->queued >= BURST)
        return HQ_EFULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return HQ_ENOMEM;
    rc = hq_arec_to_msg(r, &s->msg);
    if (rc == HQ_EINVAL) {
        rp->p.invalid++;
        hq_warn("archive record cannot be replayed (malformed properties or headers): skipped",
                "source=%s event_id=%s", r->source, r->id);
        rc = HQ_OK;
        goto fail;
    }
    if (rc != HQ_OK)
        goto fail;
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
    rp->staged[rp->queued++] = s;
    return HQ_OK;
fail:
    slot_free(s);
    return rc;
}

/* Publish the queued copies back to back, in order. What a failure leaves stays queued. */
static void flush_queued(struct replay *rp)
{
    size_t i;

    if (!rp->queued)
        return;
    hq_replay_cork(rp->c, true);
    for (i = 0; i < rp->queued && !rp->fatal; i++) {
        struct slot *s = rp->staged[i];
        uint64_t tag = 0;
        int rc;

        rc = hq_amqp_publish(rp->c, rp->exchange,
                             rp->o->target == HQ_REPLAY_TARGET_CONSUMER ? rp->queue
                                                                        : s->msg.routing_key,
                             &s->msg, true, &tag);
        if (rc == HQ_ETOOBIG || rc == HQ_EINVAL) {
            /* larger than the broker's frame limits allow, or an unsendable header */
            rp->p.invalid++;
            hq_warn("archived event cannot be published as it is: skipped",
                    "source=%s event_id=%s error=\"%s\"", s->source, s->id, hq_strerror(rc));
            slot_free(s);
            rp->staged[i] = NULL;
            continue;
        }
        if (rc == HQ_OK && (tag != hq_confirm_next_tag(&rp->win) ||
                            hq_confirm_add(&rp->win, s, NULL) != HQ_OK)) {
            /* not expected: the channel numbers publishes as the window does, and wait_turn
             * made room; acks could no longer be matched to events */
            set_fatal(rp, HQ_EBROKER, "publisher confirm tags out of step");
            break;
        }
        if (rc != HQ_OK) {
            char msg[512];

            snprintf(msg, sizeof(msg), "publish failed: %s", hq_strerror(rc));
            set_fatal(rp, rc == HQ_ENOMEM ? rc : HQ_EDOWN, msg);
            break;
        }
        hq_msg_free(&s->msg);
        s->state = SLOT_PENDING;
        rp->staged[i] = NULL;
        rp->p.published++;
    }
    rp->queued -= i;
    memmove(rp->staged, rp->staged + i, rp->queued * sizeof(*rp->staged));
    hq_replay_cork(rp->c, false);
}

/* Forget what was prepared but not published (stopping). */
static void discard_queued(struct replay *rp)
{
    while (rp->queued)
        slot_free(rp->staged[--rp->queued]);
}

/* Block until one more event may be published: a window slot, a token, not blocked.
 * HQ_OK, HQ_ESHUTDOWN (asked to stop) or the fatal status. */
static int wait_turn(struct replay *rp)
{
    for (;;) {
        int wait_ms = 100;

        if (stopping(rp))
            return HQ_ESHUTDOWN;
        if (rp->fatal)
            return rp->fatal;
        if (rp->queued < hq_confirm_room(&rp->win) && !rp->p.blocked) {
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
        if (rp->queued && !rp->p.blocked) {
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
    while (!hq_confirm_empty(&rp->win) && !rp->fatal) {
        int64_t now = hq_mono_ms();

        if (now - rp->last_confirm_mono > stall_ms || (max_ms > 0 && now - start > max_ms)) {
            char msg[256];

            snprintf(msg, sizeof(msg), "no confirm from the broker for %zu event(s) within %lld ms",
                     hq_confirm_outstanding(&rp->win),
                     (long long)(now - rp->last_confirm_mono));
            set_fatal(rp, HQ_ETIMEDOUT, msg);
            break;
        }
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

        snprintf(name, sizeof(name), "%s lifecycle #%zu", rp->h.conn_name, i + 1);
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
        if (rp->lc_stats.queued == 0 || hq_mono_ms() >= until || stopping(rp))
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

/* What both passes do first with an event: its key, its flags in the key set before this
 * pass flagged it, and whether the pass goes on with it. */
struct look {
    struct hq_rkey k;
    unsigned char old;
    bool take;
};

/* Stop when asked, take r's key, flag it with pass in the key set, count a duplicate or an
 * event the target's bindings do not match (l->take false). */
static int first_look(struct replay *rp, const struct hq_arec *r, unsigned char pass,
                      struct look *l)
{
    uint64_t *dups = pass == F_PASS1 ? &rp->p.dups : &rp->dups2;
    uint64_t *skipped = pass == F_PASS1 ? &rp->p.skipped_bindings : &rp->skipped2;
    int rc;

    memset(l, 0, sizeof(*l));
    if (stopping(rp))
        return HQ_ESHUTDOWN;
    if (rp->fatal)
        return rp->fatal;
    hq_replay_key(r->source, r->id, &l->k);
    if ((rc = hq_rset_add(rp->set, &l->k, pass, &l->old)) != HQ_OK)
        return rc;
    if (l->old & pass)
        ++*dups;
    else if (!bindings_match(rp, r->routing_key))
        ++*skipped;
    else
        l->take = true;
    return HQ_OK;
}

static int pass1(void *arg, const struct hq_arec *r)
{
    struct replay *rp = arg;
    struct look l;
    int rc = first_look(rp, r, F_PASS1, &l);

    if ((++rp->p.scanned & 1023) == 0)
        progress(rp, false); /* a long first pass shows too */
    if (rc != HQ_OK || !l.take)
        return rc;
    rp->p.total++;
    if (l.old & F_CKPT) {
        rp->p.earlier++;
        return 0;
    }
    if (rp->o->dry_run && rp->h.on_match)
        rp->h.on_match(rp->h.arg, r);
    return 0;
}

static int pass2(void *arg, const struct hq_arec *r)
{
    struct replay *rp = arg;
    struct look l;
    int rc = first_look(rp, r, F_PASS2, &l);

    if (rc != HQ_OK || !l.take)
        return rc;
    if (!(l.old & F_PASS1))
        rp->p.extra++; /* archived since the first pass */
    if (l.old & F_CKPT)
        return 0; /* confirmed by an earlier run */
    rc = wait_turn(rp);
    if (rc != HQ_OK)
        return rc;
    rc = stage_one(rp, r, &l.k);
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
    uint64_t done = rp->p.earlier + rp->p.confirmed;

    target_text(rp, tgt, sizeof(tgt));
    say(rp, false,
        "replay %s %s: %" PRIu64 " of %" PRIu64 " events replayed to %s (%" PRIu64
        " this run, %" PRIu64 " confirmed by earlier runs)",
        rp->id, rc == HQ_OK ? "complete" : rc == HQ_ESHUTDOWN ? "interrupted" : "FAILED", done,
        rp->p.total + rp->p.extra, tgt, rp->p.confirmed, rp->p.earlier);
    say(rp, false,
        "  %" PRIu64 " published, %" PRIu64 " confirmed, %" PRIu64 " failed (nacked/returned), %"
        PRIu64 " unsendable records skipped, %" PRIu64 " archive duplicates collapsed, %" PRIu64
        " not matching the bindings; %.1f s, %.0f/s",
        rp->p.published, rp->p.confirmed, rp->p.failed, rp->p.invalid, rp->p.dups,
        rp->p.skipped_bindings, secs, secs > 0 ? (double)rp->p.confirmed / secs : 0.0);
    if (rp->lc_used) {
        ls = rp->lc_stats;
        say(rp, false,
            "  lifecycle records: %" PRIu64 " published, %" PRIu64 " dropped, %" PRIu64
            " unconfirmed (best effort)",
            ls.published, ls.dropped, ls.unconfirmed);
    }
    if (rc != HQ_OK)
        say(rp, false, "  run the same command again to resume (already confirmed events are "
                       "not sent again)");
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
        say(rp, true, "checkpoint directory path too long");
        return HQ_EINVAL;
    }
    snprintf(rp->ckpath, sizeof(rp->ckpath), "%s/%s.ckpt", ckdir, rp->id);
    snprintf(rp->lockpath, sizeof(rp->lockpath), "%s/%s.lock", ckdir, rp->id);
    if (!o->dry_run) {
        rc = hq_rckpt_lock(rp->lockpath, &rp->lock_fd);
        if (rc == HQ_EBLOCKED) {
            say(rp, true, "replay %s is already running (lock %s held)", rp->id, rp->lockpath);
            return rc;
        }
        if (rc != HQ_OK) {
            say(rp, true,
                "cannot create the checkpoint lock %s (is the directory writable? see "
                "--checkpoint-dir)",
                rp->lockpath);
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
        say(rp, true, "checkpoint %s is damaged; use --restart to start over", rp->ckpath);
        return HQ_EIO;
    }
    if (rc != HQ_OK) {
        say(rp, true, "cannot read checkpoint %s: %s", rp->ckpath, hq_strerror(rc));
        return rc;
    }
    if (strcmp(rp->info.spec_sha, rp->spec_sha) != 0) {
        say(rp, true, "checkpoint %s belongs to another replay; use --restart to replace it",
            rp->ckpath);
        return HQ_EIO;
    }
    if (rp->info.done) {
        hq_time_format(rp->info.done_ms, when, sizeof(when));
        say(rp, false,
            "replay %s already completed at %s (%" PRIu64 " events); use --restart to replay "
            "again",
            rp->id, when, rp->info.done_events);
        *finished = true;
        return HQ_OK;
    }
    rp->resume = true;
    /* relative times were resolved when the replay began: keep that window */
    rp->filter.from_ms = rp->info.from_ms;
    rp->filter.to_ms = rp->info.to_ms;
    hq_time_format(rp->info.started_ms, when, sizeof(when));
    say(rp, true, "resuming replay %s (started %s): %" PRIu64 " events already confirmed%s",
        rp->id, when, rp->info.confirmed,
        rp->info.torn ? " (a torn last checkpoint line was ignored)" : "");
    return HQ_OK;
}

/* Connect, check that the target exists (HQ_ENOTFOUND: hookmq-replay exits 3), confirm mode. */
static int connect_target(struct replay *rp)
{
    const struct hq_replay_opts *o = rp->o;
    size_t start = 0;
    int rc;

    rc = hq_amqp_connect(&rp->cfg->broker, rp->h.conn_name, CONNECT_TIMEOUT_MS, &start, &rp->c);
    if (rc != HQ_OK) {
        say(rp, true, "cannot connect to the broker: %s", hq_strerror(rc));
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
            say(rp, true, "broker: %s", hq_strerror(rc));
            return rc;
        }
    }
    if (o->target == HQ_REPLAY_TARGET_CONSUMER)
        rc = hq_amqp_queue_exists(rp->c, rp->queue, NULL, NULL);
    else
        rc = hq_amqp_exchange_exists(rp->c, rp->exchange);
    if (rc == HQ_ENOTFOUND) {
        say(rp, true, "%s %s does not exist on the broker: run `hookmq-dlx apply -c %s`",
            o->target == HQ_REPLAY_TARGET_CONSUMER ? "queue" : "exchange",
            o->target == HQ_REPLAY_TARGET_CONSUMER ? rp->queue : rp->exchange,
            rp->cfg->path ? rp->cfg->path : "FILE");
        return rc;
    }
    if (rc == HQ_OK)
        rc = hq_amqp_confirm_select(rp->c);
    if (rc != HQ_OK)
        say(rp, true, "broker: %s", hq_strerror(rc));
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
        say(rp, true, "cannot write checkpoint %s: %s", rp->ckpath, hq_strerror(rc));
        return rc == HQ_ENOTFOUND ? HQ_EIO : rc;
    }
    rc = hq_confirm_init(&rp->win, (size_t)o->window);
    if (rc != HQ_OK)
        return rc;
    if (!o->no_lifecycle && !rp->lc_missing)
        lc_start(rp);
    rp->p.t0 = mono_s();
    rp->p.publishing = true;
    /* a burst of 50 ms worth of events (at least 1) */
    hq_tbucket_init(&rp->tb, o->rate, o->rate / 20.0, rp->p.t0);
    target_text(rp, tgt, sizeof(tgt));
    hq_info("replay starting", "replay_id=%s events=%" PRIu64 " already=%" PRIu64
            " target=\"%s\" rate=%g window=%d checkpoint=%s%s%s",
            rp->id, rp->p.total, rp->p.earlier, tgt, o->rate, o->window, rp->ckpath,
            rp->h.by ? " user=" : "", rp->h.by ? rp->h.by : "");

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
    if (rc == HQ_OK && rp->p.failed)
        rc = HQ_EBROKER;
    if (rc == HQ_ENOTFOUND && !rp->fatal)
        rc = HQ_EIO; /* the archive vanished under us: not a topology problem */
    t_end = mono_s();
    progress(rp, true);
    crc = hq_rckpt_flush(rp->ckpt, true, hq_mono_ms());
    if (crc == HQ_OK && rc == HQ_OK)
        crc = hq_rckpt_mark_done(rp->ckpt, rp->p.earlier + rp->p.confirmed, hq_now_ms());
    if (crc != HQ_OK && (rc == HQ_OK || rc == HQ_ESHUTDOWN)) {
        rc = crc;
        set_fatal(rp, crc, "cannot write the checkpoint");
    }
    lc_finish(rp);
    if (rp->fatal)
        say(rp, true, "%s", rp->fatal_msg);
    else if (rc != HQ_OK && rc != HQ_ESHUTDOWN)
        say(rp, true, "%s",
            rp->p.failed ? "some events were refused by the broker" : hq_strerror(rc));
    summary(rp, rc, t_end - rp->p.t0);
    return rc;
}

/* An event still in flight when the run ends (hq_confirm_drop_fn): a later run resends it. */
static void drop_slot(void *arg, void *entry, uint64_t tag)
{
    (void)arg;
    (void)tag;
    slot_free(entry);
}

static void replay_free(struct replay *rp)
{
    lc_abort(rp);
    if (rp->ckpt && hq_rckpt_close(rp->ckpt) != HQ_OK)
        hq_warn("checkpoint not synced at the end of the replay", "checkpoint=%s", rp->ckpath);
    rp->ckpt = NULL;
    if (rp->c) {
        hq_consume_detach(rp->c);
        hq_amqp_close(rp->c);
    }
    (void)hq_confirm_release(&rp->win, drop_slot, NULL);
    hq_confirm_free(&rp->win);
    discard_queued(rp);
    if (rp->lock_fd >= 0)
        close(rp->lock_fd);
    hq_rset_free(rp->set);
    free(rp->bindings);
    hq_topology_free(&rp->topo);
}

/* The run, after the replay was set up (rp->o, rp->cfg, rp->h). */
static int run(struct replay *rp)
{
    const struct hq_replay_opts *o = rp->o;
    struct hq_buf spec = HQ_BUF_INIT(64 * 1024);
    char err[1024], tgt[256];
    bool finished = false;
    int rc;

    rc = resolve_target(rp, err, sizeof(err));
    if (rc != HQ_OK) {
        say(rp, true, "%s", err);
        goto out;
    }
    if ((rc = hq_replay_spec(o, &spec)) != HQ_OK || (rc = hq_rset_new(&rp->set)) != HQ_OK) {
        say(rp, true, "%s", hq_strerror(rc));
        goto out;
    }
    hq_replay_id(spec.data, spec.len, rp->id, rp->spec_sha);
    memcpy(rp->p.id, rp->id, sizeof(rp->p.id));
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
        say(rp, true, "interrupted");
        goto out;
    }
    if (rc != HQ_OK) {
        say(rp, true, "cannot read the archive in %s: %s", rp->cfg->archive.dir,
            rc == HQ_ENOTFOUND ? "no such directory" : hq_strerror(rc));
        rc = rc == HQ_ENOTFOUND ? HQ_EIO : rc;
        goto out;
    }
    progress(rp, false);
    target_text(rp, tgt, sizeof(tgt));
    if (o->dry_run) {
        say(rp, false,
            "dry run: %" PRIu64 " events would be replayed to %s as %s (%" PRIu64
            " already confirmed by an earlier run, %" PRIu64 " archive duplicates collapsed, %"
            PRIu64 " not matching the bindings)",
            rp->p.total - rp->p.earlier, tgt, rp->id, rp->p.earlier, rp->p.dups,
            rp->p.skipped_bindings);
        goto out;
    }
    if (rp->p.total == 0 && !rp->resume) {
        say(rp, false,
            "nothing to replay: no archived event matches (%" PRIu64 " duplicates, %" PRIu64
            " not matching the bindings)",
            rp->p.dups, rp->p.skipped_bindings);
        goto out;
    }
    rc = connect_target(rp);
    if (rc == HQ_OK)
        rc = publish_all(rp);
out:
    hq_buf_free(&spec);
    return rc;
}

int hq_replay_run(const struct hq_replay_opts *o, const struct hq_config *cfg,
                  const struct hq_replay_hooks *hooks, struct hq_replay_progress *out)
{
    struct replay *rp;
    int rc;

    if (!o || !cfg)
        return HQ_EINVAL;
    rp = calloc(1, sizeof(*rp));
    if (!rp)
        return HQ_ENOMEM;
    rp->o = o;
    rp->cfg = cfg;
    rp->lock_fd = -1;
    if (hooks)
        rp->h = *hooks;
    if (!rp->h.conn_name)
        rp->h.conn_name = DEFAULT_NAME;
    rc = run(rp);
    if (out) {
        rp->p.in_flight = hq_confirm_outstanding(&rp->win);
        *out = rp->p;
    }
    replay_free(rp);
    free(rp);
    return rc;
}

int hq_replay_check_target(const struct hq_replay_opts *o, const struct hq_config *cfg,
                           char *target, size_t targetsz, char *err, size_t errsz)
{
    struct replay rp;
    int rc;

    if (!o || !cfg)
        return HQ_EINVAL;
    memset(&rp, 0, sizeof(rp));
    rp.o = o;
    rp.cfg = cfg;
    rp.lock_fd = -1;
    rc = resolve_target(&rp, err, errsz);
    if (rc == HQ_OK && target)
        target_text(&rp, target, targetsz);
    replay_free(&rp);
    return rc;
}

int hq_replay_id_of(const struct hq_replay_opts *o, char out[HQ_REPLAY_ID_LEN + 1])
{
    struct hq_buf spec = HQ_BUF_INIT(64 * 1024);
    int rc = hq_replay_spec(o, &spec);

    if (rc == HQ_OK)
        hq_replay_id(spec.data, spec.len, out, NULL);
    hq_buf_free(&spec);
    return rc;
}
