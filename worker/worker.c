/* worker.c: the slots of hookmq-worker. A slot is a thread that owns one broker connection
 * and one handler state; the keeper thread services a slot's connection while its handler
 * runs long (see worker.h).
 *
 * For each delivery the slot checks the crash ledger, the dedupe ledger and the rate limit,
 * calls the handler (releasing the connection to the keeper meanwhile), then settles
 * (docs/interface.md, docs/consumers.md):
 *   ACK     record in the dedupe ledger (fsync), basic.ack
 *   RETRY   attempt n < max_attempts: copy with hookmq-attempt = n + 1 to exchange "" /
 *           hookmq.NAME.retry.<delay>, wait for the confirm, basic.ack; else the DLQ
 *   REJECT  copy with hookmq-consumer/-attempts/-last-error/-failed-at to exchange "" /
 *           hookmq.NAME.dlq, wait for the confirm, basic.ack
 * Nothing is acked before its replacement is confirmed; a crash in between duplicates. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hq_amqp.h"
#include "hq_consume.h"
#include "hq_dlq.h"
#include "hq_log.h"
#include "hq_time.h"
#include "worker.h"

#define SERVICE_SLICE_MS 200 /* rate-limit waits service the connection this often */
#define KEEPER_TICK_MS 100   /* the keeper looks at the slots this often ... */
#define KEEPER_AFTER_MS 100  /* ... and services a connection once its handler ran this long */
#define NEXT_WAIT_MS 250     /* hq_amqp_next timeout (how fast stopping is noticed) */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define REQUEUE_PAUSE_MS 1000 /* after a copy the broker refused */
#define ACK_BATCH 128         /* ACKs sent as one basic.ack multiple=1 at most this many */
#define ACK_LINGER_MS 2       /* with ACKs pending, wait this long for a delivery before sending */

static const double duration_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,     2.5,  5,     10,   30,  60};

/* The worker the host API logs for (handlers get no context pointer in log()). */
static struct wk *api_worker;

/* ---------------------------------------------------------------- small helpers */

struct wk_snap *wk_snap_get(struct wk *w)
{
    struct wk_snap *s;

    pthread_mutex_lock(&w->snap_lock);
    s = w->snap;
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&w->snap_lock);
    return s;
}

void wk_snap_put(struct wk_snap *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        hq_config_free(s->cfg);
        free(s);
    }
}

bool wk_sleep(struct wk *w, int64_t ms)
{
    int64_t end = hq_mono_ms() + ms;

    while (!atomic_load(&w->stopping)) {
        int64_t left = end - hq_mono_ms();
        struct timespec ts;

        if (left <= 0) return false;
        if (left > 100) left = 100;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)left * 1000000L;
        nanosleep(&ts, NULL);
    }
    return true;
}

static int64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Exponential backoff with jitter: 100 ms, 200 ms, ... 30 s, each +-25 %. */
static int64_t backoff_ms(int failures)
{
    int64_t b = BACKOFF_MIN_MS;
    int i;

    for (i = 1; i < failures && b < BACKOFF_MAX_MS; i++)
        b *= 2;
    if (b > BACKOFF_MAX_MS) b = BACKOFF_MAX_MS;
    return b * 3 / 4 + (int64_t)((uint64_t)rand() % (uint64_t)(b / 2 + 1));
}

/* ---------------------------------------------------------------- host API */

static void host_log(enum hq_handler_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void host_log(enum hq_handler_log_level level, const char *fmt, ...)
{
    char msg[2048] = "handler: ";
    enum hq_log_level l;
    va_list ap;
    size_t i;

    switch (level) {
    case HQ_HLOG_ERROR:
        l = HQ_LOG_ERROR;
        break;
    case HQ_HLOG_WARN:
        l = HQ_LOG_WARN;
        break;
    case HQ_HLOG_INFO:
        l = HQ_LOG_INFO;
        break;
    default:
        l = HQ_LOG_DEBUG;
        break;
    }
    if (!hq_log_enabled(l)) return;
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(msg + 9, sizeof(msg) - 9, fmt, ap); /* after "handler: " */
        va_end(ap);
    }
    /* one line per call, whatever the plugin wrote */
    for (i = 0; msg[i]; i++)
        if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f) msg[i] = ' ';
    hq_log(l, msg, "consumer=%s", api_worker ? api_worker->con->name : "-");
}

void wk_host_api_init(struct wk *w)
{
    api_worker = w;
    memset(&w->api, 0, sizeof(w->api));
    w->api.struct_size = sizeof(w->api);
    w->api.host_version = HQ_VERSION;
    w->api.consumer = w->con->name;
    w->api.log = host_log;
    w->api.step_get = wk_step_get;
    w->api.step_put = wk_step_put;
    w->api.step_count = wk_step_count;
    w->api.step_name = wk_step_name;
}

/* ---------------------------------------------------------------- metrics */

static struct hq_metric *counter2(struct wk *w, const char *name, const char *help, const char *k,
                                  const char *v)
{
    char labels[512], esc[128];

    hq_metrics_escape(v, esc, sizeof(esc));
    snprintf(labels, sizeof(labels), "%s,%s=\"%s\"", w->label, k, esc);
    return hq_counter(w->metrics, name, help, labels);
}

int wk_metrics_init(struct wk *w)
{
    struct wk_metrics *m = &w->m;
    static const char *verdict_help = "Handler verdicts";
    static const char *dl_help = "Events copied to the DLQ, by reason";
    size_t i;

    m->deliveries = hq_counter(w->metrics, "hookmq_worker_deliveries_total",
                               "Deliveries received from the work queue", w->label);
    m->redeliveries = hq_counter(w->metrics, "hookmq_worker_redeliveries_total",
                                 "Deliveries flagged redelivered by the broker", w->label);
    m->dedupe_hits =
        hq_counter(w->metrics, "hookmq_worker_dedupe_hits_total",
                   "Deliveries acked without calling the handler (already processed)", w->label);
    m->redriven =
        hq_counter(w->metrics, "hookmq_worker_redriven_total",
                   "DLQ messages moved back to the work queue by automatic redrive", w->label);
    m->redrive_scans =
        hq_counter(w->metrics, "hookmq_worker_redrive_scans_total",
                   "Automatic redrive passes that read the DLQ to its depth", w->label);
    m->connected = hq_gauge(w->metrics, "hookmq_worker_connected",
                            "Handler slots connected to the broker and consuming", w->label);
    m->in_flight =
        hq_gauge(w->metrics, "hookmq_worker_in_flight", "Handlers running now", w->label);
    m->duration = hq_histogram(w->metrics, "hookmq_worker_handler_duration_seconds",
                               "Time spent in the handler per delivery", w->label, duration_bounds,
                               sizeof(duration_bounds) / sizeof(duration_bounds[0]));
    m->verdict_ack = counter2(w, "hookmq_worker_verdicts_total", verdict_help, "verdict", "ack");
    m->verdict_retry =
        counter2(w, "hookmq_worker_verdicts_total", verdict_help, "verdict", "retry");
    m->verdict_reject =
        counter2(w, "hookmq_worker_verdicts_total", verdict_help, "verdict", "reject");
    m->dl_rejected =
        counter2(w, "hookmq_worker_dead_lettered_total", dl_help, "reason", "rejected");
    m->dl_max_attempts =
        counter2(w, "hookmq_worker_dead_lettered_total", dl_help, "reason", "max_attempts");
    m->dl_crashed = counter2(w, "hookmq_worker_dead_lettered_total", dl_help, "reason", "crashed");
    m->dl_too_large =
        counter2(w, "hookmq_worker_dead_lettered_total", dl_help, "reason", "too_large");
    m->copies_held = hq_counter(w->metrics, "hookmq_worker_copies_held_total",
                                "Retry and DLQ copies held while the broker blocked publishing "
                                "(a resource alarm)",
                                w->label);
    m->lc_published = counter2(w, "hookmq_worker_lifecycle_records_total",
                               "Lifecycle records handed to the broker / dropped (best effort)",
                               "state", "published");
    m->lc_dropped = counter2(w, "hookmq_worker_lifecycle_records_total",
                             "Lifecycle records handed to the broker / dropped (best effort)",
                             "state", "dropped");
    m->retry_tier = calloc(w->con->n_delays, sizeof(*m->retry_tier));
    if (!m->retry_tier) return HQ_ENOMEM;
    for (i = 0; i < w->con->n_delays; i++) {
        char tier[32];

        hq_duration_format(w->con->delays_ms[i], tier, sizeof(tier));
        m->retry_tier[i] = counter2(w, "hookmq_worker_retries_total",
                                    "Events republished to a retry tier, by tier", "tier", tier);
        if (!m->retry_tier[i]) return HQ_ENOMEM;
    }
    if (!m->deliveries || !m->redeliveries || !m->dedupe_hits || !m->redriven || !m->connected ||
        !m->in_flight || !m->duration || !m->verdict_ack || !m->verdict_retry ||
        !m->verdict_reject || !m->dl_rejected || !m->dl_max_attempts || !m->dl_crashed ||
        !m->dl_too_large || !m->copies_held || !m->lc_published || !m->lc_dropped)
        return HQ_ENOMEM;
    return HQ_OK;
}

static struct hq_metric *tier_metric(struct wk *w, uint64_t delay)
{
    size_t i;

    for (i = 0; i < w->con->n_delays; i++)
        if (w->con->delays_ms[i] == delay) return w->m.retry_tier[i];
    return NULL;
}

/* ---------------------------------------------------------------- handler states */

static bool same_options(const struct hq_consumer_cfg *a, const struct hq_consumer_cfg *b)
{
    size_t i, k;

    if (a->n_options != b->n_options) return false;
    for (i = 0; i < a->n_options; i++) {
        const struct hq_opt *x = &a->options[i], *y = &b->options[i];

        if (strcmp(x->key, y->key) != 0 || !x->value != !y->value ||
            (x->value && strcmp(x->value, y->value) != 0) || x->n_values != y->n_values)
            return false;
        for (k = 0; k < x->n_values; k++)
            if (strcmp(x->values[k], y->values[k]) != 0) return false;
    }
    return true;
}

static int init_state(struct wk *w, const struct hq_consumer_cfg *con, void **state)
{
    *state = NULL;
    return w->plugin.h->init(&w->api, hq_plugin_opts(con), con->n_options, state);
}

int wk_init_states(struct wk *w, char *err, size_t errsz)
{
    int i;

    for (i = 0; i < w->n_slots; i++) {
        struct wk_slot *s = &w->slots[i];

        s->state_snap = wk_snap_get(w);
        if (init_state(w, s->state_snap->con, &s->state) != 0) {
            snprintf(err, errsz, "handler %s: init failed (see the messages above)",
                     w->plugin.name);
            wk_snap_put(s->state_snap);
            s->state_snap = NULL;
            while (--i >= 0) {
                w->plugin.h->fini(w->slots[i].state);
                w->slots[i].state = NULL;
                wk_snap_put(w->slots[i].state_snap);
                w->slots[i].state_snap = NULL;
            }
            return HQ_ECONFIG;
        }
    }
    return HQ_OK;
}

/* Between deliveries, in the slot thread: after a reload with other handler options,
 * make a new state (then finalise the old one). A failed init keeps the old state. */
static void maybe_reinit(struct wk_slot *s)
{
    struct wk *w = s->w;
    uint64_t gen = atomic_load(&w->gen);
    struct wk_snap *snap;
    void *state = NULL;

    if (gen == s->state_snap->gen || gen == s->tried_gen) return;
    s->tried_gen = gen;
    snap = wk_snap_get(w);
    if (same_options(snap->con, s->state_snap->con)) {
        wk_snap_put(s->state_snap);
        s->state_snap = snap;
        return;
    }
    if (init_state(w, snap->con, &state) != 0) {
        hq_error("handler re-init with the reloaded options failed; keeping the previous "
                 "options",
                 "consumer=%s slot=%d", w->con->name, s->idx);
        wk_snap_put(snap);
        return;
    }
    w->plugin.h->fini(s->state);
    wk_snap_put(s->state_snap);
    s->state = state;
    s->state_snap = snap;
    hq_info("handler re-initialised with the reloaded options", "consumer=%s slot=%d", w->con->name,
            s->idx);
}

/* ---------------------------------------------------------------- events */

struct evbuf {
    struct hq_event ev;
};

/* Decimal of v into out (24 bytes), without printf. */
static void i64_str(int64_t v, char out[24])
{
    char tmp[24];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0, k = 0;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[k++] = '-';
    while (n)
        out[k++] = tmp[--n];
    out[k] = '\0';
}

static void slot_free_view(struct wk_slot *s)
{
    free(s->ev_kv);
    free(s->ev_num);
    wk_steps_free(&s->steps);
    s->ev_kv = NULL;
    s->ev_num = NULL;
    s->ev_cap = 0;
}

/* The event's original routing key into s->ev_rk (docs/message-format.md, "Routing key").
 * A delivery straight from the events exchange carries it. Retry tiers, redrives and
 * `hookmq-replay --to-consumer` deliver through exchange "" with routing key hookmq.NAME, so
 * there it is rebuilt from hookmq-source and hookmq-event-type the way the gateway built it;
 * without those headers the delivery's key is all there is. */
static int original_rk(struct wk_slot *s, const struct hq_delivery *d, const char *source,
                       const char *type, const char **out)
{
    const char *ex = s->w->cfg->broker.exchange;
    char *built;

    *out = d->routing_key ? d->routing_key : (d->msg.routing_key ? d->msg.routing_key : "");
    if ((d->exchange && ex && strcmp(d->exchange, ex) == 0) || !*source || !type)
        return HQ_OK;
    built = hq_routing_key(source, type);
    if (!built)
        return strlen(source) > 253 ? HQ_OK : HQ_ENOMEM; /* no key fits such a source */
    snprintf(s->ev_rk, sizeof(s->ev_rk), "%s", built);
    free(built);
    *out = s->ev_rk;
    return HQ_OK;
}

/* The handler's view of d (source: its hookmq-source, or ""). Every pointer borrows from d or
 * from the slot's arrays, which are reused by the next event. */
static int evbuf_build(struct wk_slot *s, const struct hq_delivery *d, uint32_t attempt,
                       const char *source, struct evbuf *b)
{
    struct wk *w = s->w;
    const struct hq_msg *m = &d->msg;
    size_t i;
    int64_t rx;

    memset(b, 0, sizeof(*b));
    if (m->n_headers > s->ev_cap) {
        size_t cap = m->n_headers < 16 ? 16 : m->n_headers;
        struct hq_kv *kv = realloc(s->ev_kv, cap * sizeof(*kv));

        if (!kv)
            return HQ_ENOMEM;
        s->ev_kv = kv;
        {
            char(*num)[24] = realloc(s->ev_num, cap * sizeof(*num));

            if (!num)
                return HQ_ENOMEM;
            s->ev_num = num;
        }
        s->ev_cap = cap;
    }
    for (i = 0; i < m->n_headers; i++) {
        const struct hq_hdr *h = &m->headers[i];

        s->ev_kv[i].key = h->key ? h->key : "";
        if (h->type == HQ_HDR_LONG) {
            i64_str(h->num, s->ev_num[i]);
            s->ev_kv[i].value = s->ev_num[i];
        } else {
            s->ev_kv[i].value = h->str ? h->str : "";
        }
    }
    rx = wk_msg_long(m, "hookmq-received-at", -1);
    if (rx < 0) rx = m->timestamp_s > 0 ? m->timestamp_s * 1000 : 0;
    b->ev.struct_size = sizeof(b->ev);
    b->ev.id = m->message_id ? m->message_id : "";
    b->ev.source = source;
    b->ev.type = hq_msg_str(m, "hookmq-event-type");
    if (original_rk(s, d, source, b->ev.type, &b->ev.routing_key) != HQ_OK)
        return HQ_ENOMEM;
    if (!b->ev.type) b->ev.type = "";
    b->ev.content_type = m->content_type;
    b->ev.consumer = w->con->name;
    b->ev.headers = m->n_headers ? s->ev_kv : NULL;
    b->ev.n_headers = m->n_headers;
    b->ev.body = m->body;
    b->ev.body_len = m->body_len;
    b->ev.attempt = attempt;
    b->ev.received_at_ms = rx;
    return HQ_OK;
}

/* ---------------------------------------------------------------- the connection side */

struct outcome {
    const char *verdict; /* ack | retry | reject | duplicate | crashed | unreadable */
    const char *result;  /* acked | retried | dead_lettered | requeued | unsettled */
    bool parked;         /* dead_lettered as it is: its copy could not be published */
    const char *key;     /* the ledger key, or NULL (borrowed) */
    char extra[1200];    /* " tier=10s" or " error=\"...\"" */
    char tier[32];       /* retried: the tier's delay name */
    const char *error;   /* the handler's error text (borrowed until the outcome is reported) */
    const struct wk_steps *steps; /* the steps the attempt saved (lifecycle records), or NULL */
    const char *steps_text;       /* the copy's hookmq-steps when the attempt saved any */
};

/* Call the handler, letting the keeper service c meanwhile (conn_mu is released around
 * handle()). Returns false when the keeper abandoned the slot (SIGTERM's stop timeout ran out):
 * the connection is closed and nothing may be touched any more. *conn_ok turns false when
 * the connection failed while the handler ran. */
static bool run_handler(struct wk_slot *s, const struct hq_event *ev, enum hq_verdict *verdict,
                        struct hq_error *err, bool *conn_ok)
{
    struct wk *w = s->w;

    maybe_reinit(s);
    memset(err, 0, sizeof(*err));
    atomic_store(&s->conn_lost, false);
    atomic_store(&s->handler_since_ms, hq_mono_ms());
    atomic_store(&s->in_handler, true);
    pthread_mutex_unlock(&s->conn_mu);
    wk_steps_enter(&s->steps, ev);
    *verdict = w->plugin.h->handle(s->state, ev, err);
    wk_steps_leave(&s->steps);
    pthread_mutex_lock(&s->conn_mu);
    atomic_store(&s->in_handler, false);
    err->message[sizeof(err->message) - 1] = '\0';
    if (atomic_load(&s->abandoned)) return false;
    if (atomic_load(&s->conn_lost)) *conn_ok = false;
    return true;
}

/* After the broker refused a copy: put the event back and pause (servicing c). */
static int requeue_pause(struct wk *w, struct hq_amqp *c, const struct hq_delivery *d)
{
    int rc = hq_amqp_nack(c, d->tag, true);
    int64_t end = hq_mono_ms() + REQUEUE_PAUSE_MS;

    while (rc == HQ_OK && !atomic_load(&w->stopping) && hq_mono_ms() < end)
        rc = hq_amqp_service(c, 100);
    return rc == HQ_OK ? HQ_OK : HQ_EDOWN;
}

/* A copy that can never be published (its properties do not fit a frame, once the retry or
 * DLQ headers are added): requeueing would bring it back forever. Park the original as it
 * is: basic.nack without requeue, and the work queue dead-letters it to the DLQ (x-death
 * reason "rejected"); the log line and the metric say why. */
static int park_as_is(struct wk *w, struct hq_amqp *c, const struct hq_delivery *d, int rc,
                      const char *what, struct outcome *o)
{
    hq_error("the copy cannot be published; parking the event in the DLQ as it is",
             "consumer=%s what=%s status=%s reason=too_large", w->con->name, what,
             hq_strerror(rc));
    if (hq_amqp_nack(c, d->tag, false) != HQ_OK) {
        o->result = "unsettled";
        return HQ_EDOWN;
    }
    o->result = "dead_lettered";
    o->parked = true;
    hq_metric_inc(w->m.dl_too_large);
    return HQ_OK;
}

/* Publish a retry or DLQ copy (its routing key set to rk, the queue) on the copy connection
 * and wait for its confirm. While the broker blocks publishing (a resource alarm) or the copy
 * connection is coming back, the event is held unacked and c is serviced (heartbeats; other
 * deliveries are buffered): the handler does not run again, and the copy goes out when the
 * alarm clears. Gives up when the worker stops, or after WK_CONFIRM_TIMEOUT_MS without a copy
 * connection. *c_ok turns false when c itself failed meanwhile. */
static int publish_copy(struct wk *w, struct hq_amqp *c, const char *rk, struct hq_msg *copy,
                        bool *c_ok)
{
    int64_t down_since = 0;
    bool held = false;
    char *key = strdup(rk);
    int rc;

    if (!key) return HQ_ENOMEM;
    free(copy->routing_key);
    copy->routing_key = key;
    for (;;) {
        rc = hq_pub_publish(w->copies, "", copy, hq_mono_ms() + WK_CONFIRM_TIMEOUT_MS);
        if (rc != HQ_EBLOCKED && rc != HQ_EDOWN) break;
        if (rc == HQ_EBLOCKED) {
            down_since = 0;
            if (!held) {
                held = true;
                hq_metric_inc(w->m.copies_held);
                hq_warn("the broker blocks publishing (resource alarm); holding the event until "
                        "its copy can be published",
                        "consumer=%s queue=%s", w->con->name, rk);
            }
        } else if (!down_since) {
            down_since = hq_mono_ms();
        } else if (hq_mono_ms() - down_since >= WK_CONFIRM_TIMEOUT_MS) {
            break;
        }
        if (atomic_load(&w->stopping)) break;
        if (hq_amqp_service(c, 200) != HQ_OK) {
            *c_ok = false;
            break;
        }
    }
    if (held && rc == HQ_OK)
        hq_info("the broker takes publishes again; copy published", "consumer=%s queue=%s",
                w->con->name, rk);
    return rc;
}

/* A publish status as what the caller does next: HQ_OK (settled), HQ_EDOWN (reconnect c). */
static int after_copy(struct wk *w, struct hq_amqp *c, const struct hq_delivery *d, int rc,
                      bool c_ok, const char *what, const char *rk, struct outcome *o)
{
    if (!c_ok) {
        o->result = "unsettled";
        return HQ_EDOWN;
    }
    if (rc == HQ_OK) {
        rc = hq_amqp_ack(c, d->tag);
        return rc == HQ_OK ? HQ_OK : HQ_EDOWN;
    }
    if (rc == HQ_ETOOBIG) return park_as_is(w, c, d, rc, what, o);
    o->result = "requeued";
    if (rc == HQ_EDOWN || rc == HQ_ETIMEDOUT || rc == HQ_EBLOCKED || rc == HQ_ESHUTDOWN) {
        /* not confirmed (a late confirm may still come: then the event runs twice, never
         * zero times) */
        hq_warn("copy not confirmed; the event goes back to the work queue",
                "consumer=%s what=%s queue=%s status=%s", w->con->name, what, rk, hq_strerror(rc));
        if (hq_amqp_nack(c, d->tag, true) != HQ_OK) {
            o->result = "unsettled";
            return HQ_EDOWN;
        }
        return HQ_OK;
    }
    hq_error("the broker refused the copy; the event goes back to the work queue",
             "consumer=%s what=%s queue=%s status=%s hint=\"run hookmq-dlx apply\"", w->con->name,
             what, rk, hq_strerror(rc));
    return requeue_pause(w, c, d);
}

static int dead_letter(struct wk *w, struct hq_amqp *c, const struct hq_delivery *d,
                       uint32_t attempt, const char *error, struct hq_metric *reason,
                       struct outcome *o)
{
    struct hq_msg copy;
    bool c_ok = true;
    int rc;

    memset(&copy, 0, sizeof(copy));
    rc = hq_dlq_dead_copy(d, w->con->name, (int64_t)attempt,
                          error && *error ? error : "(no message)", hq_now_ms(), &copy);
    if (rc == HQ_OK && o->steps_text)
        rc = hq_msg_add_table(&copy, HQ_STEPS_HEADER, o->steps_text);
    if (rc == HQ_OK)
        rc = publish_copy(w, c, w->dlq, &copy, &c_ok);
    if (rc == HQ_ENOMEM || rc == HQ_EINVAL)
        rc = HQ_EBROKER; /* could not even build it (memory): back to the queue */
    hq_msg_free(&copy);
    o->result = "dead_lettered";
    rc = after_copy(w, c, d, rc, c_ok, "dlq", w->dlq, o);
    if (rc == HQ_OK && !o->parked && strcmp(o->result, "dead_lettered") == 0)
        hq_metric_inc(reason);
    return rc;
}

static int retry(struct wk *w, struct hq_amqp *c, const struct hq_delivery *d, uint32_t attempt,
                 const struct hq_error *err, struct outcome *o)
{
    struct hq_msg copy;
    char tier[32], rk[HQ_NAME_MAX + 64];
    bool c_ok = true;
    uint64_t delay;
    int rc;

    delay = wk_retry_delay(w->con->delays_ms, w->con->n_delays, attempt, err->retry_after_ms);
    hq_duration_format(delay, tier, sizeof(tier));
    snprintf(rk, sizeof(rk), "hookmq.%s.retry.%s", w->con->name, tier);
    rc = wk_msg_clean_copy(&d->msg, false, &copy);
    if (rc == HQ_OK) rc = hq_msg_add_long(&copy, "hookmq-attempt", (int64_t)attempt + 1);
    if (rc == HQ_OK && o->steps_text)
        rc = hq_msg_add_table(&copy, HQ_STEPS_HEADER, o->steps_text);
    if (rc == HQ_OK)
        rc = publish_copy(w, c, rk, &copy, &c_ok);
    if (rc == HQ_ENOMEM || rc == HQ_EINVAL)
        rc = HQ_EBROKER; /* could not even build it (memory): back to the queue */
    hq_msg_free(&copy);
    o->result = "retried";
    snprintf(o->extra, sizeof(o->extra), " tier=%s", tier);
    snprintf(o->tier, sizeof(o->tier), "%s", tier);
    rc = after_copy(w, c, d, rc, c_ok, "retry", rk, o);
    if (o->parked) snprintf(o->extra, sizeof(o->extra), " dlq=too_large");
    if (rc == HQ_OK && strcmp(o->result, "retried") == 0) hq_metric_inc(tier_metric(w, delay));
    return rc;
}

/* The lifecycle record of a settled outcome (best effort, never blocks). */
static void emit_lifecycle(struct wk *w, const struct hq_delivery *d, uint32_t attempt,
                           const struct outcome *o)
{
    struct hq_lc_record r;

    if (!w->lc || !d->msg.message_id)
        return;
    memset(&r, 0, sizeof(r));
    if (strcmp(o->result, "acked") == 0)
        r.verdict = strcmp(o->verdict, "duplicate") == 0 ? HQ_LC_DEDUPED : HQ_LC_PROCESSED;
    else if (strcmp(o->result, "retried") == 0)
        r.verdict = HQ_LC_RETRY_SCHEDULED;
    else if (strcmp(o->result, "dead_lettered") == 0)
        r.verdict = HQ_LC_DEAD_LETTERED;
    else
        return; /* requeued / unsettled: the event comes back, nothing happened to it yet */
    r.source = hq_msg_str(&d->msg, "hookmq-source");
    r.id = d->msg.message_id;
    r.consumer = w->con->name;
    r.attempt = attempt;
    r.tier = r.verdict == HQ_LC_RETRY_SCHEDULED ? o->tier : NULL;
    r.error = r.verdict == HQ_LC_PROCESSED || r.verdict == HQ_LC_DEDUPED ? NULL : o->error;
    r.at_ms = hq_now_ms();
    if (o->steps && o->steps->n_new && r.verdict != HQ_LC_DEDUPED) {
        /* the steps this attempt completed, before its verdict (name and size only) */
        struct hq_lc_record sr = r;
        size_t i;

        sr.verdict = HQ_LC_STEP;
        sr.tier = NULL;
        sr.error = NULL;
        for (i = 0; i < o->steps->n_new; i++) {
            sr.step = o->steps->nv[i].name;
            sr.size = (int64_t)o->steps->nv[i].len;
            hq_lc_emit(w->lc, &sr);
        }
    }
    hq_lc_emit(w->lc, &r);
}

static void log_outcome(struct wk *w, const struct hq_delivery *d, uint32_t attempt,
                        int64_t latency_ms, const struct outcome *o)
{
    char id[300], src[80];
    const char *source;
    enum hq_log_level level = strcmp(o->verdict, "ack") == 0 || strcmp(o->verdict, "duplicate") == 0
                                  ? HQ_LOG_INFO
                                  : HQ_LOG_WARN;

    emit_lifecycle(w, d, attempt, o);
    if (!hq_log_enabled(level))
        return; /* nothing to format */
    wk_log_safe(id, sizeof(id), d->msg.message_id ? d->msg.message_id : "-", false);
    source = hq_msg_str(&d->msg, "hookmq-source");
    wk_log_safe(src, sizeof(src), source ? source : "-", false);
    hq_log(level, "event",
           "consumer=%s event_id=%s source=%s attempt=%u verdict=%s result=%s "
           "latency_ms=%lld%s",
           w->con->name, id[0] ? id : "-", src[0] ? src : "-", attempt, o->verdict, o->result,
           (long long)latency_ms, o->extra);
}

static void set_error(struct outcome *o, const char *msg)
{
    char safe[1100];

    o->error = msg;
    wk_log_safe(safe, sizeof(safe), msg, true);
    snprintf(o->extra + strlen(o->extra), sizeof(o->extra) - strlen(o->extra), " error=\"%s\"",
             safe);
}

/* Wait for the rate limit (servicing c). HQ_ESHUTDOWN when stopping, HQ_EDOWN. */
static int rate_wait(struct wk *w, struct hq_amqp *c)
{
    uint64_t gen;
    int64_t wait = wk_rate_reserve(&w->rate, &gen), end;

    while (wait > 0) {
        end = hq_mono_ms() + wait;
        while (hq_mono_ms() < end) {
            int64_t left = end - hq_mono_ms();
            if (atomic_load(&w->stopping)) return HQ_ESHUTDOWN;
            if (hq_amqp_service(c, (int)(left < SERVICE_SLICE_MS ? left : SERVICE_SLICE_MS)) !=
                HQ_OK)
                return HQ_EDOWN;
            if (wk_rate_gen(&w->rate) != gen) break; /* the rate changed (SIGHUP): reserve again */
        }
        if (wk_rate_gen(&w->rate) == gen) break;
        wait = wk_rate_reserve(&w->rate, &gen);
    }
    return HQ_OK;
}

/* Handle one delivery. HQ_OK: settled (or deliberately left for redelivery); HQ_EDOWN:
 * reconnect; HQ_ESHUTDOWN: stopping (unsettled; the slot may be abandoned). */
/* Send the slot's pending ACKs (one basic.ack multiple=1). Every delivery up to ack_tag was
 * ACKed by its handler or settled on its own already: the slot handles its channel's
 * deliveries one at a time, in tag order, and flushes before any other settlement. */
static int ack_flush(struct wk_slot *s, struct hq_amqp *c)
{
    int rc;

    if (s->ack_n == 0)
        return HQ_OK;
    rc = hq_amqp_ack_upto(c, s->ack_tag);
    s->ack_n = 0;
    return rc == HQ_OK ? HQ_OK : HQ_EDOWN;
}

/* Acknowledge d: deferred into the slot's batch. */
static int ack_later(struct wk_slot *s, struct hq_amqp *c, const struct hq_delivery *d)
{
    /* at most half the prefetch window unacked, so the broker keeps delivering meanwhile */
    unsigned most = s->w->slot_prefetch > 1 ? (unsigned)s->w->slot_prefetch / 2 : 1;

    s->ack_tag = d->tag;
    if (most > ACK_BATCH)
        most = ACK_BATCH;
    if (++s->ack_n >= most)
        return ack_flush(s, c);
    return HQ_OK;
}

static int process(struct wk_slot *s, struct hq_amqp *c, struct hq_delivery *d)
{
    struct wk *w = s->w;
    const struct hq_msg *m = &d->msg;
    uint32_t attempt = wk_msg_attempt(m);
    const char *id = m->message_id ? m->message_id : "";
    const char *source = hq_msg_str(m, "hookmq-source");
    char key[WK_KEY_MAX];
    bool has_key, conn_ok = true;
    struct outcome o;
    struct evbuf eb;
    struct hq_error err;
    enum hq_verdict verdict = HQ_VERDICT_RETRY;
    struct wk_snap *snap;
    struct hq_buf steps_text = HQ_BUF_INIT(16u * 1024 * 1024);
    int64_t t0, latency_us;
    int max_attempts, rc;

    if (!source)
        source = "";
    has_key = wk_ledger_key(source, id, key, sizeof(key));
    memset(&o, 0, sizeof(o));
    o.key = has_key ? key : NULL;
    hq_metric_inc(w->m.deliveries);
    if (d->redelivered) hq_metric_inc(w->m.redeliveries);

    /* a redelivered event whose handler keeps taking the worker down */
    if (w->inflight && has_key && d->redelivered) {
        int crashes = wk_inflight_crashes(w->inflight, key);
        if (crashes >= WK_CRASH_LIMIT) {
            char msg[128];
            if (ack_flush(s, c) != HQ_OK)
                return HQ_EDOWN;
            snprintf(msg, sizeof(msg), "handler crashed %d times", crashes);
            o.verdict = "crashed";
            rc = dead_letter(w, c, d, attempt, msg, w->m.dl_crashed, &o);
            if (rc == HQ_OK && strcmp(o.result, "dead_lettered") == 0)
                wk_inflight_end(w->inflight, s->idx, key);
            set_error(&o, msg);
            log_outcome(w, d, attempt, 0, &o);
            return rc;
        }
    }
    /* already processed (dedupe ledger) */
    if (w->dedupe && has_key && wk_dedupe_seen(w->dedupe, source, id)) {
        rc = ack_later(s, c, d);
        hq_metric_inc(w->m.dedupe_hits);
        o.verdict = "duplicate";
        o.result = rc == HQ_OK ? "acked" : "unsettled";
        log_outcome(w, d, attempt, 0, &o);
        return rc == HQ_OK ? HQ_OK : HQ_EDOWN;
    }
    rc = rate_wait(w, c);
    if (rc != HQ_OK) return rc;
    t0 = mono_us();
    if (evbuf_build(s, d, attempt, source, &eb) != HQ_OK) {
        /* out of memory: the event is fine, the worker is not; put it back and pause */
        o.verdict = "unreadable";
        if (ack_flush(s, c) != HQ_OK) return HQ_EDOWN;
        rc = requeue_pause(w, c, d);
        o.result = rc == HQ_OK ? "requeued" : "unsettled";
        set_error(&o, "worker out of memory building the event");
        log_outcome(w, d, attempt, 0, &o);
        return rc;
    }

    if (w->inflight && has_key) wk_inflight_begin(w->inflight, s->idx, key);
    wk_steps_begin(&s->steps, m, (size_t)s->state_snap->con->steps_max_bytes, w->con->name);
    o.steps = &s->steps;
    hq_metric_set(w->m.in_flight, atomic_fetch_add(&w->in_flight, 1) + 1);
    if (!run_handler(s, &eb.ev, &verdict, &err, &conn_ok)) {
        /* the keeper abandoned the slot and closed c; only a late handler gets here */
        return HQ_ESHUTDOWN;
    }
    hq_metric_set(w->m.in_flight, atomic_fetch_sub(&w->in_flight, 1) - 1);
    latency_us = mono_us() - t0;
    hq_metric_observe(w->m.duration, (double)latency_us / 1e6);

    switch (verdict) {
    case HQ_VERDICT_ACK:
        o.verdict = "ack";
        hq_metric_inc(w->m.verdict_ack);
        break;
    case HQ_VERDICT_RETRY:
        o.verdict = "retry";
        hq_metric_inc(w->m.verdict_retry);
        break;
    case HQ_VERDICT_REJECT:
        o.verdict = "reject";
        hq_metric_inc(w->m.verdict_reject);
        break;
    default:
        o.verdict = "reject";
        snprintf(err.message, sizeof(err.message), "handler returned unknown verdict %d",
                 (int)verdict);
        verdict = HQ_VERDICT_REJECT;
        hq_metric_inc(w->m.verdict_reject);
        break;
    }

    if (verdict == HQ_VERDICT_ACK && w->dedupe && has_key) {
        /* before the ack: a crash in between makes the redelivery a known duplicate */
        rc = wk_dedupe_record(w->dedupe, source, id);
        if (rc != HQ_OK)
            hq_warn("dedupe ledger write failed", "consumer=%s path=%s status=%s", w->con->name,
                    wk_dedupe_path(w->dedupe), hq_strerror(rc));
    }
    if (!conn_ok) {
        o.result = "unsettled";
        rc = HQ_EDOWN;
        goto out;
    }

    snap = wk_snap_get(w);
    max_attempts = snap->con->max_attempts;
    wk_snap_put(snap);
    if (verdict != HQ_VERDICT_ACK && s->steps.n_new) {
        bool changed = false;

        /* saved steps go with the copy; without memory they are lost (they run again) */
        if (wk_steps_text(&s->steps, &steps_text, &changed) == HQ_OK && changed)
            o.steps_text = (const char *)steps_text.data;
        else if (changed || s->steps.n_new)
            hq_warn("steps of this attempt could not be saved", "consumer=%s", w->con->name);
    }

    switch (verdict) {
    case HQ_VERDICT_ACK:
        rc = ack_later(s, c, d);
        o.result = rc == HQ_OK ? "acked" : "unsettled";
        if (rc != HQ_OK) rc = HQ_EDOWN;
        break;
    case HQ_VERDICT_RETRY:
        if (ack_flush(s, c) != HQ_OK) {
            o.result = "unsettled";
            rc = HQ_EDOWN;
            break;
        }
        if ((int64_t)attempt < (int64_t)max_attempts) {
            rc = retry(w, c, d, attempt, &err, &o);
            break;
        }
        {
            char msg[sizeof(err.message) + 64];
            snprintf(msg, sizeof(msg), "%s", err.message[0] ? err.message : "retry");
            rc = dead_letter(w, c, d, attempt, msg, w->m.dl_max_attempts, &o);
            if (strcmp(o.result, "dead_lettered") == 0)
                snprintf(o.extra, sizeof(o.extra), " dlq=%s",
                         o.parked ? "too_large" : "max_attempts");
        }
        break;
    default:
        if (ack_flush(s, c) != HQ_OK) {
            o.result = "unsettled";
            rc = HQ_EDOWN;
            break;
        }
        rc = dead_letter(w, c, d, attempt, err.message[0] ? err.message : "rejected",
                         w->m.dl_rejected, &o);
        if (strcmp(o.result, "dead_lettered") == 0)
            snprintf(o.extra, sizeof(o.extra), " dlq=%s", o.parked ? "too_large" : "rejected");
        break;
    }
out:
    if (w->inflight && has_key) wk_inflight_end(w->inflight, s->idx, key);
    if (verdict != HQ_VERDICT_ACK && err.message[0]) set_error(&o, err.message);
    log_outcome(w, d, attempt, latency_us / 1000, &o);
    wk_steps_end(&s->steps);
    hq_buf_free(&steps_text);
    return rc;
}

/* Poll every second until the work queue exists again, servicing c meanwhile. The passive
 * declares run on a probe connection of their own: a 404 on c would close its channel. Then
 * basic.qos and basic.consume again on c. HQ_OK consuming; HQ_ESHUTDOWN; HQ_EDOWN. */
static int resubscribe(struct wk_slot *s, struct hq_amqp *c)
{
    struct wk *w = s->w;
    struct hq_amqp *probe = NULL;
    size_t start = 0;
    char name[HQ_NAME_MAX + 64];
    int rc = HQ_OK;

    snprintf(name, sizeof(name), "hookmq-worker %s #%d (queue probe)", w->con->name, s->idx);
    for (;;) {
        if (atomic_load(&w->stopping)) {
            rc = HQ_ESHUTDOWN;
            break;
        }
        if (hq_amqp_service(c, 1000) != HQ_OK) {
            rc = HQ_EDOWN;
            break;
        }
        if (!probe &&
            hq_amqp_connect(&w->cfg->broker, name, WK_CONNECT_TIMEOUT_MS, &start, &probe) != HQ_OK)
            continue;
        rc = hq_amqp_queue_exists(probe, w->work_queue, NULL, NULL);
        if (rc == HQ_ENOTFOUND) continue;
        if (rc != HQ_OK) {
            hq_amqp_close(probe);
            probe = NULL;
            continue;
        }
        rc = hq_amqp_qos(c, (uint16_t)w->slot_prefetch);
        if (rc == HQ_OK) rc = hq_amqp_consume(c, w->work_queue);
        if (rc != HQ_ENOTFOUND) break; /* consuming, or the connection is gone */
    }
    hq_amqp_close(probe);
    return rc == HQ_OK || rc == HQ_ESHUTDOWN ? rc : HQ_EDOWN;
}

static int subscribe(struct wk_slot *s, struct hq_amqp *c)
{
    struct wk *w = s->w;
    int rc;

    rc = hq_amqp_qos(c, (uint16_t)w->slot_prefetch);
    if (rc == HQ_OK) rc = hq_amqp_consume(c, w->work_queue);
    if (rc != HQ_ENOTFOUND) return rc;
    hq_warn("work queue does not exist; waiting for it (hookmq-dlx apply creates it)",
            "consumer=%s slot=%d queue=%s", w->con->name, s->idx, w->work_queue);
    return resubscribe(s, c);
}

/* One connection's life: qos, consume, deliveries until the connection is lost or the worker
 * stops. */
static void session(struct wk_slot *s, struct hq_amqp *c)
{
    struct wk *w = s->w;
    bool consuming = false, conn_ok = true;
    int rc;

    rc = subscribe(s, c);
    if (rc != HQ_OK) {
        if (rc != HQ_ESHUTDOWN)
            hq_warn("cannot start consuming", "consumer=%s slot=%d queue=%s status=%s",
                    w->con->name, s->idx, w->work_queue, hq_strerror(rc));
        return;
    }
    consuming = true;
    hq_metric_set(w->m.connected, atomic_fetch_add(&w->connected, 1) + 1);
    hq_info("consuming", "consumer=%s slot=%d queue=%s peer=%s prefetch=%d", w->con->name, s->idx,
            w->work_queue, hq_amqp_peer(c), w->slot_prefetch);

    while (!atomic_load(&w->stopping)) {
        struct hq_delivery d;
        enum hq_next_result what = HQ_NEXT_TIMEOUT;

        memset(&d, 0, sizeof(d));
        /* with ACKs pending, wait a moment for the next delivery; none: send them. A worker
         * that is faster than the broker's deliveries would otherwise ack every few events,
         * and each basic.ack costs the broker more than it costs us. */
        rc = hq_amqp_next(c, s->ack_n ? ACK_LINGER_MS : NEXT_WAIT_MS, &d, &what);
        if (rc == HQ_OK && what == HQ_NEXT_TIMEOUT && s->ack_n)
            rc = ack_flush(s, c);
        if (rc != HQ_OK) {
            char why[300];

            wk_log_safe(why, sizeof(why), hq_consume_error(c), true);
            hq_warn("broker connection lost; reconnecting",
                    "consumer=%s slot=%d peer=%s status=%s error=\"%s\"", w->con->name, s->idx,
                    hq_amqp_peer(c), hq_strerror(rc), why);
            conn_ok = false;
            break;
        }
        if (what == HQ_NEXT_TIMEOUT) continue;
        if (what == HQ_NEXT_CANCELLED) {
            if (ack_flush(s, c) != HQ_OK) {
                conn_ok = false;
                break;
            }
            hq_warn("consumer cancelled by the broker (work queue deleted?); re-subscribing "
                    "once it exists again",
                    "consumer=%s slot=%d queue=%s", w->con->name, s->idx, w->work_queue);
            consuming = false;
            hq_metric_set(w->m.connected, atomic_fetch_sub(&w->connected, 1) - 1);
            rc = resubscribe(s, c);
            if (rc != HQ_OK) {
                if (rc != HQ_ESHUTDOWN) {
                    hq_warn("cannot re-subscribe; reconnecting", "consumer=%s slot=%d status=%s",
                            w->con->name, s->idx, hq_strerror(rc));
                    conn_ok = false;
                }
                break;
            }
            consuming = true;
            hq_metric_set(w->m.connected, atomic_fetch_add(&w->connected, 1) + 1);
            hq_info("re-subscribed", "consumer=%s slot=%d queue=%s", w->con->name, s->idx,
                    w->work_queue);
            continue;
        }
        rc = process(s, c, &d);
        hq_delivery_free(&d);
        if (atomic_load(&s->abandoned)) return; /* c was closed by the keeper */
        if (rc == HQ_EDOWN) {
            conn_ok = false;
            break;
        }
    }
    /* Every way out with a usable connection sends the pending ACKs, HQ_ESHUTDOWN included
     * (SIGTERM during a rate-limit wait): closing the connection would requeue them. */
    if (conn_ok && !atomic_load(&s->abandoned) && ack_flush(s, c) != HQ_OK)
        hq_warn("could not send the last acknowledgements; the broker redelivers them",
                "consumer=%s slot=%d", w->con->name, s->idx);
    s->ack_n = 0; /* a new connection starts with nothing pending */
    if (consuming) hq_metric_set(w->m.connected, atomic_fetch_sub(&w->connected, 1) - 1);
}

static void *slot_main(void *arg)
{
    struct wk_slot *s = arg;
    struct wk *w = s->w;
    const struct hq_broker_cfg *b = &w->cfg->broker;
    size_t start = (size_t)s->idx % b->n_uris;
    char name[HQ_NAME_MAX + 64];
    int failures = 0;

    snprintf(name, sizeof(name), "hookmq-worker %s #%d", w->con->name, s->idx);
    pthread_mutex_lock(&s->conn_mu);
    while (!atomic_load(&w->stopping)) {
        struct hq_amqp *c = NULL;
        int64_t t0;
        int rc = hq_amqp_connect(b, name, WK_CONNECT_TIMEOUT_MS, &start, &c);

        if (rc != HQ_OK) {
            failures++;
            wk_sleep(w, backoff_ms(failures));
            continue;
        }
        s->c = c;
        t0 = hq_mono_ms();
        session(s, c);
        if (atomic_load(&s->abandoned)) break; /* the keeper closed c */
        s->c = NULL;
        hq_consume_detach(c);
        hq_amqp_close(c); /* unacked deliveries go back to the queue */
        if (atomic_load(&w->stopping)) break;
        /* a connection that lived a while starts the backoff over */
        failures = hq_mono_ms() - t0 > 30000 ? 1 : failures + 1;
        start = (start + 1) % b->n_uris;
        wk_sleep(w, backoff_ms(failures));
    }
    pthread_mutex_unlock(&s->conn_mu);
    slot_free_view(s); /* no handler runs on this slot any more */
    atomic_store(&s->done, true);
    return NULL;
}

/* ---------------------------------------------------------------- the keeper */

/* Every KEEPER_TICK_MS: service the connection of each slot whose handler has run for
 * KEEPER_AFTER_MS (heartbeats; deliveries that arrive are buffered); once SIGTERM's stop
 * timeout has passed, abandon slots whose handler still runs and close their connections, so
 * their deliveries go back to the queue. */
static void *keeper_main(void *arg)
{
    struct wk *w = arg;
    int i;

    while (!atomic_load(&w->keeper_stop)) {
        struct timespec ts = {0, KEEPER_TICK_MS * 1000000L};
        int64_t now, dl;

        nanosleep(&ts, NULL);
        now = hq_mono_ms();
        dl = atomic_load(&w->stop_deadline_ms);
        for (i = 0; i < w->n_slots; i++) {
            struct wk_slot *s = &w->slots[i];

            if (!atomic_load(&s->in_handler) || atomic_load(&s->abandoned) ||
                now - atomic_load(&s->handler_since_ms) < KEEPER_AFTER_MS)
                continue;
            if (pthread_mutex_trylock(&s->conn_mu) != 0) continue;
            if (atomic_load(&s->in_handler) && s->c) {
                if (atomic_load(&w->stopping) && dl && now >= dl) {
                    hq_error("handler still running after the stop timeout; leaving its event "
                             "unacked for redelivery",
                             "consumer=%s slot=%d running_ms=%lld", w->con->name, s->idx,
                             (long long)(now - atomic_load(&s->handler_since_ms)));
                    atomic_store(&s->abandoned, true);
                    /* the events this slot ACKed before the hung one are done: send their
                     * ACKs before closing (the slot thread is inside handle(), and conn_mu
                     * is ours) */
                    if (s->ack_n && hq_amqp_ack_upto(s->c, s->ack_tag) != HQ_OK)
                        hq_warn("could not send the last acknowledgements; the broker "
                                "redelivers them",
                                "consumer=%s slot=%d", w->con->name, s->idx);
                    s->ack_n = 0;
                    hq_consume_detach(s->c);
                    hq_amqp_close(s->c);
                    s->c = NULL;
                } else if (!atomic_load(&s->conn_lost) && hq_amqp_service(s->c, 0) != HQ_OK) {
                    atomic_store(&s->conn_lost, true);
                    hq_warn("broker connection lost while the handler runs; the event will be "
                            "redelivered",
                            "consumer=%s slot=%d", w->con->name, s->idx);
                }
            }
            pthread_mutex_unlock(&s->conn_mu);
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- start / stop */

int wk_start_slots(struct wk *w)
{
    int i;

    for (i = 0; i < w->n_slots; i++) {
        struct wk_slot *s = &w->slots[i];

        s->w = w;
        s->idx = i;
        pthread_mutex_init(&s->conn_mu, NULL);
    }
    if (pthread_create(&w->keeper_thread, NULL, keeper_main, w) != 0) return HQ_ENOMEM;
    w->keeper_started = true;
    for (i = 0; i < w->n_slots; i++) {
        struct wk_slot *s = &w->slots[i];

        if (pthread_create(&s->thread, NULL, slot_main, s) != 0) return HQ_ENOMEM;
        s->started = true;
    }
    return HQ_OK;
}

bool wk_join_slots(struct wk *w)
{
    bool all = true, waiting = true;
    int i;

    /* slots finish their handler and settle; the keeper abandons the ones still in a handler
     * at the stop deadline */
    while (waiting) {
        struct timespec ts = {0, 20 * 1000000L};

        waiting = false;
        for (i = 0; i < w->n_slots; i++) {
            struct wk_slot *s = &w->slots[i];
            if (s->started && !atomic_load(&s->done) && !atomic_load(&s->abandoned)) waiting = true;
        }
        if (waiting) nanosleep(&ts, NULL);
    }
    for (i = 0; i < w->n_slots; i++) {
        struct wk_slot *s = &w->slots[i];

        if (!s->started) continue;
        if (atomic_load(&s->abandoned)) all = false;
        if (!atomic_load(&s->done)) continue; /* its handler never returned: leave it alone */
        pthread_join(s->thread, NULL);
        s->started = false;
    }
    if (w->keeper_started) {
        atomic_store(&w->keeper_stop, true);
        pthread_join(w->keeper_thread, NULL);
        w->keeper_started = false;
    }
    return all;
}
