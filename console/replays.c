/* replays: the console's replays (docs/console.md, "Replay"; console.h).
 *
 * POST /api/replays takes hq_replay_req_parse's JSON. A dry run is answered at once (the count
 * and the first SAMPLE_MAX events, nothing published). A real run is core's hq_replay_run, the
 * run of hookmq-replay (same replay id for the same spec, same checkpoint and lock, so a
 * stopped or failed replay started again resumes), in a thread of its own: at most one per
 * target consumer (409) and MAX_RUNNING at once (429). GET /api/replays[/<n>] shows them,
 * POST /api/replays/<n>/stop asks one to stop (it settles what is in flight, keeps the
 * checkpoint). The "replayed" lifecycle records name the user ("by"); every start and stop is
 * logged with the user.
 *
 * The table of replays is guarded by one mutex; a run's thread updates its progress under it. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console.h"
#include "hq_json.h"
#include "hq_log.h"
#include "hq_replay.h"
#include "hq_replay_run.h"
#include "hq_time.h"

#define MAX_RUNNING 4        /* replays running at once */
#define MAX_KEPT 64          /* replays remembered; the oldest finished one makes room */
#define SAMPLE_MAX 10        /* events a dry run shows */
#define MESSAGES_MAX 8       /* lines of the run kept for the page */
#define BODY_MAX (64 * 1024) /* a request (filters are at most 4096 bytes each) */
#define SHUTDOWN_WAIT_MS 20000

enum state { ST_RUNNING, ST_DONE, ST_STOPPED, ST_FAILED };

static const char *const state_names[] = {"running", "done", "stopped", "failed"};

struct job {
    unsigned n;
    struct hq_replay_req req; /* owned; req.o points into it */
    const struct hq_config *cfg;
    char user[HQ_NAME_MAX + 1], stopped_by[HQ_NAME_MAX + 1];
    atomic_int stop;
    enum state state;
    struct hq_replay_progress p;
    char messages[MESSAGES_MAX][256];
    size_t n_messages;
    char error[512];
    int64_t started_ms, ended_ms;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ended = PTHREAD_COND_INITIALIZER;
static struct job *jobs[MAX_KEPT];
static unsigned next_n = 1;
static size_t running;

/* ------------------------------------------------------------------ JSON */

/* ,"key":"v" (or null) */
static int kv_str(struct hq_buf *b, const char *key, const char *v)
{
    int rc = hq_buf_appendf(b, ",\"%s\":", key);

    if (rc != HQ_OK)
        return rc;
    return v ? hq_json_str(b, v, strlen(v)) : hq_buf_append(b, "null", 4);
}

static int kv_time(struct hq_buf *b, const char *key, int64_t ms)
{
    char t[40];

    if (!ms)
        return kv_str(b, key, NULL);
    hq_time_format(ms, t, sizeof(t));
    return kv_str(b, key, t);
}

/* The request's filters and target, as given. */
static int spec_json(struct hq_buf *b, const struct hq_replay_req *r)
{
    int rc;

    if ((rc = kv_str(b, "consumer", r->consumer)) != HQ_OK ||
        (rc = kv_str(b, "from", r->from)) != HQ_OK || (rc = kv_str(b, "to", r->to)) != HQ_OK ||
        (rc = kv_str(b, "source", r->source)) != HQ_OK ||
        (rc = kv_str(b, "type", r->type)) != HQ_OK || (rc = kv_str(b, "id", r->id)) != HQ_OK ||
        (rc = kv_str(b, "grep", r->grep)) != HQ_OK)
        return rc;
    return hq_buf_appendf(b, ",\"rate\":%g,\"ignore_bindings\":%s,\"restart\":%s", r->o.rate,
                          r->o.ignore_bindings ? "true" : "false",
                          r->o.restart ? "true" : "false");
}

/* The counters; matched = selected by the filters and the bindings (also those confirmed by
 * an earlier run), done = confirmed now or earlier. */
static int progress_json(struct hq_buf *b, const struct hq_replay_progress *p)
{
    return hq_buf_appendf(b,
                          ",\"scanned\":%" PRIu64 ",\"matched\":%" PRIu64 ",\"earlier\":%" PRIu64
                          ",\"published\":%" PRIu64 ",\"confirmed\":%" PRIu64
                          ",\"done\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"skipped\":%" PRIu64
                          ",\"duplicates\":%" PRIu64 ",\"not_matching_bindings\":%" PRIu64
                          ",\"in_flight\":%zu,\"blocked\":%s",
                          p->scanned, p->total + p->extra, p->earlier, p->published,
                          p->confirmed, p->earlier + p->confirmed, p->failed, p->invalid, p->dups,
                          p->skipped_bindings, p->in_flight, p->blocked ? "true" : "false");
}

/* One replay as JSON. Caller holds mu. */
static int job_json(struct hq_buf *b, const struct job *j)
{
    size_t i;
    int rc;

    if ((rc = hq_buf_appendf(b, "{\"n\":%u,\"replay_id\":", j->n)) != HQ_OK ||
        (rc = hq_json_str(b, j->p.id, strlen(j->p.id))) != HQ_OK ||
        (rc = hq_buf_appendf(b, ",\"state\":\"%s\"", state_names[j->state])) != HQ_OK ||
        (rc = kv_str(b, "user", j->user)) != HQ_OK || (rc = spec_json(b, &j->req)) != HQ_OK ||
        (rc = kv_time(b, "started_at", j->started_ms)) != HQ_OK ||
        (rc = kv_time(b, "ended_at", j->ended_ms)) != HQ_OK ||
        (rc = progress_json(b, &j->p)) != HQ_OK ||
        (rc = kv_str(b, "stopped_by", j->stopped_by[0] ? j->stopped_by : NULL)) != HQ_OK ||
        (rc = kv_str(b, "error", j->state == ST_FAILED ? j->error : NULL)) != HQ_OK ||
        (rc = hq_buf_append(b, ",\"messages\":[", 13)) != HQ_OK)
        return rc;
    for (i = 0; i < j->n_messages && rc == HQ_OK; i++) {
        if (i)
            rc = hq_buf_append(b, ",", 1);
        if (rc == HQ_OK)
            rc = hq_json_str(b, j->messages[i], strlen(j->messages[i]));
    }
    return rc == HQ_OK ? hq_buf_append(b, "]}", 2) : rc;
}

static void send_buf(struct mg_connection *conn, int status, struct hq_buf *b, int rc)
{
    if (rc != HQ_OK)
        cs_send_error(conn, 500, "out of memory");
    else
        cs_send(conn, status, "application/json", b->data, b->len, NULL);
    hq_buf_free(b);
}

/* ------------------------------------------------------------------ a run's thread */

static void job_progress(void *arg, const struct hq_replay_progress *p, bool final)
{
    struct job *j = arg;

    (void)final;
    pthread_mutex_lock(&mu);
    j->p = *p;
    pthread_mutex_unlock(&mu);
}

static void job_message(void *arg, bool err, const char *line)
{
    struct job *j = arg;

    pthread_mutex_lock(&mu);
    if (err)
        snprintf(j->error, sizeof(j->error), "%s", line);
    if (j->n_messages < MESSAGES_MAX)
        snprintf(j->messages[j->n_messages++], sizeof(j->messages[0]), "%s", line);
    pthread_mutex_unlock(&mu);
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    struct hq_replay_hooks h;
    struct hq_replay_progress p;
    enum state st;
    int rc;

    memset(&h, 0, sizeof(h));
    memset(&p, 0, sizeof(p));
    h.arg = j;
    h.conn_name = CS_PROG " replay";
    h.by = j->user;
    h.stop = &j->stop;
    h.on_progress = job_progress;
    h.on_message = job_message;
    rc = hq_replay_run(&j->req.o, j->cfg, &h, &p);
    st = rc == HQ_OK ? ST_DONE : rc == HQ_ESHUTDOWN ? ST_STOPPED : ST_FAILED;
    pthread_mutex_lock(&mu);
    j->p = p;
    j->state = st;
    j->ended_ms = hq_now_ms();
    if (st == ST_FAILED && !j->error[0])
        snprintf(j->error, sizeof(j->error), "%s", hq_strerror(rc));
    /* logged before the job is let go: once mu is released it may be forgotten (free_slot) */
    hq_info("replay ended", "n=%u replay_id=%s user=%s consumer=%s state=%s confirmed=%" PRIu64
            " earlier=%" PRIu64 " failed=%" PRIu64,
            j->n, p.id, j->user, j->req.consumer, state_names[st], p.confirmed, p.earlier,
            p.failed);
    running--;
    pthread_cond_broadcast(&ended);
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* ------------------------------------------------------------------ the API */

/* What a dry run collects: the first SAMPLE_MAX events as JSON, and why it failed. */
struct sample {
    struct hq_buf *b;
    size_t n;
    int rc;
    char error[512];
    char note[512]; /* what hookmq-replay would print: the count, or "already completed" */
};

static void sample_match(void *arg, const struct hq_arec *r)
{
    struct sample *s = arg;
    const char *open = s->n ? ",{\"id\":" : "{\"id\":";
    char t[40];

    if (s->n >= SAMPLE_MAX || s->rc != HQ_OK)
        return;
    hq_time_format(r->received_at, t, sizeof(t));
    if ((s->rc = hq_buf_append(s->b, open, strlen(open))) == HQ_OK &&
        (s->rc = hq_json_str(s->b, r->id ? r->id : "", r->id ? strlen(r->id) : 0)) == HQ_OK &&
        (s->rc = kv_str(s->b, "source", r->source)) == HQ_OK &&
        (s->rc = kv_str(s->b, "type", r->type)) == HQ_OK &&
        (s->rc = kv_str(s->b, "routing_key", r->routing_key)) == HQ_OK &&
        (s->rc = kv_str(s->b, "received_at", t)) == HQ_OK)
        s->rc = hq_buf_append(s->b, "}", 1);
    s->n++;
}

static void sample_message(void *arg, bool err, const char *line)
{
    struct sample *s = arg;

    if (err)
        snprintf(s->error, sizeof(s->error), "%s", line);
    else if (!s->note[0])
        snprintf(s->note, sizeof(s->note), "%s", line);
}

/* A dry run, in the request's thread: the count and a sample, nothing published. */
static void dry_run(struct mg_connection *conn, const struct hq_config *cfg,
                    struct hq_replay_req *req, const char *user)
{
    struct hq_buf b = HQ_BUF_INIT(1u << 20), smp = HQ_BUF_INIT(1u << 20);
    struct sample s = {&smp, 0, HQ_OK, "", ""};
    struct hq_replay_hooks h;
    struct hq_replay_progress p;
    int rc;

    memset(&h, 0, sizeof(h));
    memset(&p, 0, sizeof(p));
    h.arg = &s;
    h.by = user;
    h.on_match = sample_match;
    h.on_message = sample_message;
    rc = hq_replay_run(&req->o, cfg, &h, &p);
    if (rc != HQ_OK) {
        hq_warn("replay dry run failed", "user=%s consumer=%s error=\"%s\"", user, req->consumer,
                s.error[0] ? s.error : hq_strerror(rc));
        cs_send_error(conn, 500, s.error[0] ? s.error : hq_strerror(rc));
        goto out;
    }
    hq_info("replay dry run", "user=%s replay_id=%s consumer=%s count=%" PRIu64, user, p.id,
            req->consumer, p.total - p.earlier);
    rc = hq_buf_appendf(&b, "{\"dry_run\":true,\"replay_id\":\"%s\",\"count\":%" PRIu64, p.id,
                        p.total - p.earlier);
    if (rc == HQ_OK)
        rc = kv_str(&b, "message", s.note);
    if (rc == HQ_OK)
        rc = spec_json(&b, req);
    if (rc == HQ_OK)
        rc = progress_json(&b, &p);
    if (rc == HQ_OK)
        rc = hq_buf_append(&b, ",\"sample\":[", 11);
    if (rc == HQ_OK && s.rc == HQ_OK && smp.len)
        rc = hq_buf_append(&b, smp.data, smp.len);
    if (rc == HQ_OK)
        rc = s.rc != HQ_OK ? s.rc : hq_buf_append(&b, "]}\n", 3);
    send_buf(conn, 200, &b, rc);
out:
    hq_buf_free(&b);
    hq_buf_free(&smp);
}

/* Room for one more replay in the table (caller holds mu): a free slot, else the oldest
 * finished replay is forgotten. -1 when every slot is running (cannot happen: MAX_RUNNING <
 * MAX_KEPT). */
static int free_slot(void)
{
    int i, oldest = -1;

    for (i = 0; i < MAX_KEPT; i++) {
        if (!jobs[i])
            return i;
        if (jobs[i]->state != ST_RUNNING && (oldest < 0 || jobs[i]->n < jobs[oldest]->n))
            oldest = i;
    }
    if (oldest >= 0) {
        hq_replay_req_free(&jobs[oldest]->req);
        free(jobs[oldest]);
        jobs[oldest] = NULL;
    }
    return oldest;
}

void cs_api_replay_start(struct mg_connection *conn, const struct hq_config *cfg,
                         const char *user)
{
    struct hq_buf body = HQ_BUF_INIT(BODY_MAX), out = HQ_BUF_INIT(1u << 20);
    struct hq_replay_req req;
    struct job *j = NULL;
    char err[1024], target[256];
    pthread_attr_t attr;
    pthread_t th;
    size_t i;
    int rc, slot = -1;

    memset(&req, 0, sizeof(req));
    if (cs_read_body(conn, BODY_MAX, &body) != HQ_OK) {
        cs_send_error(conn, 413, "request larger than 64 KiB");
        goto out;
    }
    rc = hq_replay_req_parse((const char *)body.data, body.len, hq_now_ms(), &req, err,
                             sizeof(err));
    if (rc != HQ_OK) {
        cs_send_error(conn, rc == HQ_ENOMEM ? 500 : 400, rc == HQ_ENOMEM ? "out of memory" : err);
        goto out;
    }
    if (!hq_config_consumer(cfg, req.consumer)) {
        cs_send_error(conn, 404, "no such consumer in the config");
        goto out;
    }
    if (hq_replay_check_target(&req.o, cfg, target, sizeof(target), err, sizeof(err)) != HQ_OK) {
        cs_send_error(conn, 400, err);
        goto out;
    }
    if (req.o.dry_run) {
        dry_run(conn, cfg, &req, user);
        goto out;
    }
    if (!(j = calloc(1, sizeof(*j)))) {
        cs_send_error(conn, 500, "out of memory");
        goto out;
    }
    j->req = req;
    memset(&req, 0, sizeof(req)); /* the job owns it now */
    j->cfg = cfg;
    snprintf(j->user, sizeof(j->user), "%s", user);
    atomic_init(&j->stop, 0);
    j->state = ST_RUNNING;
    j->started_ms = hq_now_ms();
    if (hq_replay_id_of(&j->req.o, j->p.id) != HQ_OK) {
        cs_send_error(conn, 500, "out of memory");
        goto out;
    }

    pthread_mutex_lock(&mu);
    for (i = 0; i < MAX_KEPT; i++) {
        if (jobs[i] && jobs[i]->state == ST_RUNNING &&
            strcmp(jobs[i]->req.consumer, j->req.consumer) == 0) {
            unsigned other = jobs[i]->n;

            pthread_mutex_unlock(&mu);
            hq_warn("replay refused: one is running for this consumer", "user=%s consumer=%s "
                    "running=%u", user, j->req.consumer, other);
            snprintf(err, sizeof(err), "replay %u to %s is running: stop it or wait for it", other,
                     j->req.consumer);
            cs_send_error(conn, 409, err);
            goto out;
        }
    }
    if (running >= MAX_RUNNING || (slot = free_slot()) < 0) {
        pthread_mutex_unlock(&mu);
        cs_send_error(conn, 429, "too many replays running (at most 4): wait for one to end");
        goto out;
    }
    j->n = next_n++;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &attr, job_main, j);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_unlock(&mu);
        cs_send_error(conn, 503, "cannot start a thread for the replay");
        goto out;
    }
    jobs[slot] = j;
    running++;
    hq_info("replay started", "n=%u replay_id=%s user=%s target=\"%s\" from=%s to=%s source=%s "
            "type=%s id=%s rate=%g", j->n, j->p.id, user, target,
            j->req.from ? j->req.from : "-", j->req.to ? j->req.to : "-",
            j->req.source ? j->req.source : "-", j->req.type ? j->req.type : "-",
            j->req.id ? j->req.id : "-", j->req.o.rate);
    rc = job_json(&out, j);
    pthread_mutex_unlock(&mu);
    j = NULL;
    send_buf(conn, 202, &out, rc);
out:
    if (j) {
        hq_replay_req_free(&j->req);
        free(j);
    }
    hq_replay_req_free(&req);
    hq_buf_free(&body);
    hq_buf_free(&out);
}

/* The replay numbered by the decimal text s (s[0..n)); caller holds mu. */
static struct job *find(const char *s, size_t n)
{
    unsigned long v = 0;
    size_t i;

    if (n == 0 || n > 9)
        return NULL;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return NULL;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    for (i = 0; i < MAX_KEPT; i++)
        if (jobs[i] && jobs[i]->n == v)
            return jobs[i];
    return NULL;
}

void cs_api_replays_get(struct mg_connection *conn, const char *rest)
{
    struct hq_buf out = HQ_BUF_INIT(4u << 20);
    struct job *j;
    int rc = HQ_OK;
    bool first = true;
    unsigned n;

    pthread_mutex_lock(&mu);
    if (rest[0] == '/') {
        if (!(j = find(rest + 1, strlen(rest + 1)))) {
            pthread_mutex_unlock(&mu);
            cs_send_error(conn, 404, "no such replay");
            return;
        }
        rc = job_json(&out, j);
    } else {
        /* newest first */
        rc = hq_buf_append(&out, "{\"replays\":[", 12);
        for (n = next_n; n-- > 1 && rc == HQ_OK;) {
            char num[16];

            snprintf(num, sizeof(num), "%u", n);
            if (!(j = find(num, strlen(num))))
                continue;
            if (!first)
                rc = hq_buf_append(&out, ",", 1);
            first = false;
            if (rc == HQ_OK)
                rc = job_json(&out, j);
        }
        if (rc == HQ_OK)
            rc = hq_buf_append(&out, "]}", 2);
    }
    pthread_mutex_unlock(&mu);
    if (rc == HQ_OK)
        rc = hq_buf_append(&out, "\n", 1);
    send_buf(conn, 200, &out, rc);
}

void cs_api_replay_stop(struct mg_connection *conn, const char *n_stop, const char *user)
{
    struct hq_buf out = HQ_BUF_INIT(1u << 20);
    const char *slash = strchr(n_stop, '/');
    struct job *j;
    char err[128];
    int rc;

    pthread_mutex_lock(&mu);
    j = slash && strcmp(slash, "/stop") == 0 ? find(n_stop, (size_t)(slash - n_stop)) : NULL;
    if (!j) {
        pthread_mutex_unlock(&mu);
        cs_send_error(conn, 404, "no such replay");
        hq_buf_free(&out);
        return;
    }
    if (j->state != ST_RUNNING) {
        snprintf(err, sizeof(err), "replay %u is not running (%s)", j->n, state_names[j->state]);
        pthread_mutex_unlock(&mu);
        cs_send_error(conn, 409, err);
        hq_buf_free(&out);
        return;
    }
    if (!j->stopped_by[0])
        snprintf(j->stopped_by, sizeof(j->stopped_by), "%s", user);
    atomic_store(&j->stop, 1);
    hq_info("replay stop requested", "n=%u replay_id=%s user=%s consumer=%s", j->n, j->p.id,
            user, j->req.consumer);
    rc = job_json(&out, j);
    pthread_mutex_unlock(&mu);
    send_buf(conn, 202, &out, rc);
}

void cs_replays_shutdown(void)
{
    int64_t until = hq_mono_ms() + SHUTDOWN_WAIT_MS;
    size_t i;

    pthread_mutex_lock(&mu);
    for (i = 0; i < MAX_KEPT; i++)
        if (jobs[i] && jobs[i]->state == ST_RUNNING)
            atomic_store(&jobs[i]->stop, 1);
    while (running > 0 && hq_mono_ms() < until) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&ended, &mu, &ts);
    }
    if (running > 0) { /* still settling: leave them (and their memory) to the exit */
        hq_warn("replays still running at exit; they resume when started again", "running=%zu",
                running);
        pthread_mutex_unlock(&mu);
        return;
    }
    for (i = 0; i < MAX_KEPT; i++) {
        if (jobs[i]) {
            hq_replay_req_free(&jobs[i]->req);
            free(jobs[i]);
            jobs[i] = NULL;
        }
    }
    pthread_mutex_unlock(&mu);
}
