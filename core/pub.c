/* pub: a pool of publisher threads with pipelined publisher confirms (see hq_pub.h).
 *
 * Design
 * - Callers (HTTP workers) never touch rabbitmq-c. hq_pub_publish() copies the message into
 *   one allocation (a job), appends it to a bounded FIFO shared by all publisher threads and
 *   waits on the job's condition variable until the job is settled or its deadline passes.
 *   It answers at once with HQ_EDOWN / HQ_EBLOCKED / HQ_EFULL when no connection is usable.
 * - Each publisher thread owns one connection in confirm mode. It takes up to BATCH jobs off
 *   the FIFO while its window of unconfirmed publishes (hq_confirm.h: delivery tag -> job)
 *   has room, publishes them back to back, then reads confirms (basic.ack/nack, multiple=1
 *   settles every tag <= delivery tag), and loops. Idle, it still wakes every IDLE_TICK_MS
 *   to service heartbeats (rabbitmq-c only does that inside library calls).
 *   A publisher with room in its window waits in poll(2) on its socket and on an eventfd that
 *   callers write when they queue a job, so neither a new job nor an ack waits for a timer.
 * - A caller that gives up marks its job abandoned: still queued, it is unlinked and freed by
 *   the caller; already published, the publisher frees it when it is settled. When a
 *   connection is lost, its unconfirmed jobs that are not abandoned go back to the head of the
 *   FIFO (any connection republishes them: duplicates are possible, loss is not); abandoned
 *   ones are dropped (the caller has spooled them).
 * - A thread stuck inside rabbitmq-c (amqp_basic_publish blocks forever on a blocked or
 *   half-open connection: resource alarm, bug #780) only holds its own window. A watchdog
 *   thread looks at each socket's unsent bytes (SIOCOUTQ); when they stay non-zero and
 *   unchanged for STUCK_MS it shuts the socket down, which makes the library call fail, and
 *   the thread reconnects. TCP_USER_TIMEOUT, keepalive and SO_SNDTIMEO (core/amqp.c) and
 *   heartbeats catch the same cases from the kernel's and the protocol's side.
 * - Reconnects use jittered exponential backoff (100 ms .. 5 s) across broker->uris.
 *
 * Locking: one mutex (p->mu) guards the FIFO, every job's state, the slots' shared fields and
 * the counters. rabbitmq-c calls are made without it. */
#include <errno.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hq__amqp.h"
#include "hq_confirm.h"
#include "hq_log.h"
#include "hq_pub.h"
#include "hq_time.h"

#define PUB_MAX_THREADS 64
#define PUB_MAX_WINDOW 65535
#define PUB_BATCH 64
#define PUB_CONNECT_TIMEOUT_MS 3000 /* per node */
#define PUB_IDLE_TICK_MS 200
#define PUB_WAIT_MS 50 /* unconfirmed publishes: wait for acks (and for jobs, via the eventfd) */
#define PUB_STUCK_MS 5000
#define PUB_BACKOFF_MIN_MS 100
#define PUB_BACKOFF_MAX_MS 5000
#define PUB_FLAP_MS 1000 /* a connection that lived less than this keeps the backoff growing */
#define PUB_STOP_GRACE_MS 1500

enum job_state { JOB_QUEUED = 0, JOB_INFLIGHT, JOB_DONE };

struct pub_job {
    struct pub_job *prev, *next; /* FIFO links while JOB_QUEUED */
    pthread_cond_t cv;           /* signalled when JOB_DONE */
    enum job_state state;
    bool abandoned;              /* the caller left: whoever settles the job frees it */
    bool returned;               /* basic.return seen: the ack that follows means failure */
    int result;
    struct hq_pub_timing tm; /* monotonic microseconds of each step (hq_pub_publish_timed) */
    char *exchange;
    struct hq_msg msg; /* all pointers into this allocation */
};

struct pub_slot {
    struct hq_pub *p;
    int idx;
    pthread_t thr;
    bool thr_started;
    /* under p->mu */
    bool up, blocked, exited;
    int fd;            /* socket while up (for the watchdog), else -1 */
    int wd_outq;       /* watchdog: last unsent byte count and since when */
    int64_t wd_since;
    /* owned by the thread; settled and released with p->mu held (the jobs' state) */
    struct hq_confirm win; /* delivery tag -> struct pub_job * published and unsettled */
    unsigned seed;
};

struct hq_pub {
    struct hq_broker_cfg broker; /* deep copy */
    char *conn_name;
    int n, window;
    size_t qmax;

    pthread_mutex_t mu;
    pthread_condattr_t cattr; /* CLOCK_MONOTONIC, for every condition variable here */
    int efd;                  /* eventfd: wakes publishers sleeping in poll for jobs */
    int sleepers;             /* publishers polling efd (they have room for jobs) */
    bool efd_signalled;       /* efd written since a sleeper last came back: no need again */
    pthread_cond_t quit_cv;   /* quit (interrupts backoff sleeps and the watchdog) */
    pthread_cond_t idle_cv;   /* a caller left or a thread exited (for stop) */

    struct pub_job *qhead, *qtail;
    size_t qlen;
    size_t inflight; /* jobs in the slots' windows */
    int up, blocked; /* connections up / up and blocked */
    int callers;     /* threads inside hq_pub_publish */
    bool stopping, quit;
    uint64_t published, confirmed, nacked, returned, reconnects;
    uint64_t batches, confirm_frames; /* publish rounds; ack/nack frames that settled >= 1 */
    atomic_size_t max_body; /* the broker's max_message_size, learnt from a close; 0 unknown */
    atomic_bool mandatory;  /* publish with the mandatory flag (hq_pub_set_mandatory) */

    struct pub_slot *slots;
    pthread_t wd;
    bool wd_started;
};

/* ---------------------------------------------------------------- helpers */

static char *dup_or_null(const char *s, bool *fail)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *fail = true;
    return d;
}

static void broker_free(struct hq_broker_cfg *b)
{
    size_t i;

    for (i = 0; i < b->n_uris; i++)
        free(b->uris[i]);
    free(b->uris);
    free(b->exchange);
    free(b->tls.ca_file);
    free(b->tls.cert_file);
    free(b->tls.key_file);
    memset(b, 0, sizeof(*b));
}

static int broker_copy(struct hq_broker_cfg *dst, const struct hq_broker_cfg *src)
{
    bool fail = false;
    size_t i;

    memset(dst, 0, sizeof(*dst));
    if (!src->uris || src->n_uris == 0)
        return HQ_EINVAL;
    dst->uris = calloc(src->n_uris, sizeof(char *));
    if (!dst->uris)
        return HQ_ENOMEM;
    dst->n_uris = src->n_uris;
    for (i = 0; i < src->n_uris; i++)
        dst->uris[i] = dup_or_null(src->uris[i] ? src->uris[i] : "", &fail);
    dst->exchange = dup_or_null(src->exchange, &fail);
    dst->queue_type = src->queue_type;
    dst->heartbeat_s = src->heartbeat_s;
    dst->tls.enabled = src->tls.enabled;
    dst->tls.verify_peer = src->tls.verify_peer;
    dst->tls.ca_file = dup_or_null(src->tls.ca_file, &fail);
    dst->tls.cert_file = dup_or_null(src->tls.cert_file, &fail);
    dst->tls.key_file = dup_or_null(src->tls.key_file, &fail);
    if (fail) {
        broker_free(dst);
        return HQ_ENOMEM;
    }
    return HQ_OK;
}

/* Wake publishers waiting for jobs (p->mu held). */
static void wake_publishers(struct hq_pub *p, bool always)
{
    uint64_t one = 1;

    if (((p->sleepers > 0 && !p->efd_signalled) || always) && p->efd >= 0) {
        (void)!write(p->efd, &one, sizeof(one));
        p->efd_signalled = true;
    }
}

/* ---------------------------------------------------------------- jobs */

static int size_add(size_t *total, size_t n)
{
    if (n > SIZE_MAX - *total)
        return HQ_ETOOBIG;
    *total += n;
    return HQ_OK;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static char *bump_str(char **cur, const char *s)
{
    char *d;
    size_t n;

    if (!s)
        return NULL;
    n = strlen(s) + 1;
    d = *cur;
    memcpy(d, s, n);
    *cur += n;
    return d;
}

/* Copy exchange and m into one allocation. Caller frees with job_free(). */
static int job_new(struct hq_pub *p, const char *exchange, const struct hq_msg *m,
                   struct pub_job **out)
{
    size_t total = sizeof(struct pub_job), i;
    struct pub_job *j;
    char *cur;

    if (m->n_headers && !m->headers)
        return HQ_EINVAL;
    if (m->body_len && !m->body)
        return HQ_EINVAL;
    if (m->n_headers > SIZE_MAX / sizeof(struct hq_hdr) ||
        size_add(&total, m->n_headers * sizeof(struct hq_hdr)) != HQ_OK ||
        size_add(&total, slen(exchange)) != HQ_OK ||
        size_add(&total, slen(m->routing_key)) != HQ_OK ||
        size_add(&total, slen(m->message_id)) != HQ_OK ||
        size_add(&total, slen(m->content_type)) != HQ_OK || size_add(&total, m->body_len) != HQ_OK)
        return HQ_ETOOBIG;
    for (i = 0; i < m->n_headers; i++) {
        if (size_add(&total, slen(m->headers[i].key)) != HQ_OK ||
            size_add(&total, slen(m->headers[i].str)) != HQ_OK)
            return HQ_ETOOBIG;
    }
    j = malloc(total);
    if (!j)
        return HQ_ENOMEM;
    memset(j, 0, sizeof(*j));
    if (pthread_cond_init(&j->cv, &p->cattr) != 0) {
        free(j);
        return HQ_ENOMEM;
    }
    /* struct hq_hdr needs no stricter alignment than struct pub_job */
    cur = (char *)(j + 1);
    j->msg.n_headers = m->n_headers;
    if (m->n_headers) {
        j->msg.headers = (struct hq_hdr *)(void *)cur;
        cur += m->n_headers * sizeof(struct hq_hdr);
    }
    for (i = 0; i < m->n_headers; i++) {
        j->msg.headers[i].type = m->headers[i].type;
        j->msg.headers[i].num = m->headers[i].num;
        j->msg.headers[i].key = bump_str(&cur, m->headers[i].key);
        j->msg.headers[i].str = bump_str(&cur, m->headers[i].str);
    }
    j->exchange = bump_str(&cur, exchange);
    j->msg.routing_key = bump_str(&cur, m->routing_key);
    j->msg.message_id = bump_str(&cur, m->message_id);
    j->msg.content_type = bump_str(&cur, m->content_type);
    j->msg.timestamp_s = m->timestamp_s;
    j->msg.body_len = m->body_len;
    if (m->body_len) {
        j->msg.body = (unsigned char *)cur;
        memcpy(cur, m->body, m->body_len);
    }
    *out = j;
    return HQ_OK;
}

static void job_free(struct pub_job *j)
{
    if (!j)
        return;
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* FIFO (p->mu held) */
static void q_push_back(struct hq_pub *p, struct pub_job *j)
{
    j->next = NULL;
    j->prev = p->qtail;
    if (p->qtail)
        p->qtail->next = j;
    else
        p->qhead = j;
    p->qtail = j;
    p->qlen++;
    j->state = JOB_QUEUED;
}

static void q_push_front(struct hq_pub *p, struct pub_job *j)
{
    j->prev = NULL;
    j->next = p->qhead;
    if (p->qhead)
        p->qhead->prev = j;
    else
        p->qtail = j;
    p->qhead = j;
    p->qlen++;
    j->state = JOB_QUEUED;
}

static void q_remove(struct hq_pub *p, struct pub_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        p->qhead = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        p->qtail = j->prev;
    j->prev = j->next = NULL;
    p->qlen--;
}

/* Settle j with rc (p->mu held): wake its caller, or free it if the caller has left. */
static void job_finish(struct pub_job *j, int rc)
{
    if (j->abandoned) {
        job_free(j);
        return;
    }
    j->state = JOB_DONE;
    j->result = rc;
    pthread_cond_signal(&j->cv);
}

/* ---------------------------------------------------------------- publisher thread */

struct settle_ctx {
    struct hq_pub *p;
    int64_t now_us;
};

/* One job settled by an ack or nack (hq_confirm_fn; p->mu held). */
static void job_settled(void *arg, void *entry, uint64_t tag, bool ack)
{
    struct settle_ctx *x = arg;
    struct hq_pub *p = x->p;
    struct pub_job *j = entry;

    (void)tag;
    j->tm.settled_us = x->now_us;
    p->inflight--;
    if (ack && !j->returned) {
        p->confirmed++;
        job_finish(j, HQ_OK);
    } else {
        if (!ack)
            p->nacked++;
        job_finish(j, HQ_EBROKER);
    }
}

/* Settle tags (p->mu held). */
static void settle(struct pub_slot *s, uint64_t tag, bool multiple, bool ack)
{
    struct settle_ctx x = {s->p, hq_mono_us()};

    if (hq_confirm_settle(&s->win, tag, multiple, ack, job_settled, &x) > 0)
        s->p->confirm_frames++;
}

static bool unreturned_with_id(const void *entry, const void *key)
{
    const struct pub_job *j = entry;

    return !j->returned && j->msg.message_id && strcmp(j->msg.message_id, key) == 0;
}

/* basic.return arrives before the ack of the same message and carries no delivery tag:
 * find the message by its id (p->mu held). */
static void mark_returned(struct pub_slot *s, const char *message_id)
{
    struct pub_job *j = hq_confirm_find(&s->win, unreturned_with_id, message_id, NULL);

    s->p->returned++;
    if (j)
        j->returned = true;
}

struct release_ctx {
    struct hq_pub *p;
    bool requeue, too_big, any;
    int rc;
};

/* One unsettled job of a lost connection (hq_confirm_drop_fn; p->mu held). */
static void job_released(void *arg, void *entry, uint64_t tag)
{
    struct release_ctx *x = arg;
    struct hq_pub *p = x->p;
    struct pub_job *j = entry;

    (void)tag;
    p->inflight--;
    if (j->abandoned) {
        job_free(j);
    } else if (x->too_big && atomic_load(&p->max_body) &&
               j->msg.body_len > atomic_load(&p->max_body)) {
        job_finish(j, HQ_ETOOBIG);
    } else if (x->requeue) {
        q_push_front(p, j);
        x->any = true;
    } else {
        job_finish(j, x->rc);
    }
}

/* The connection is gone: requeue (at the head, in order) or fail every unsettled job of s;
 * abandoned ones are dropped. With p->max_body set and too_big, a job whose body exceeds it
 * fails with HQ_ETOOBIG (it caused the close) and the others are requeued. p->mu held. */
static void release_window(struct pub_slot *s, bool requeue, int rc, bool too_big)
{
    struct release_ctx x = {s->p, requeue, too_big, false, rc};

    (void)hq_confirm_release(&s->win, job_released, &x); /* highest tag first */
    if (x.any)
        wake_publishers(s->p, false);
}

/* Give back jobs taken off the FIFO but not published (p->mu held). */
static void give_back(struct hq_pub *p, struct pub_job **batch, size_t from, size_t nb)
{
    size_t i;

    for (i = nb; i > from; i--) {
        struct pub_job *j = batch[i - 1];
        if (j->abandoned)
            job_free(j);
        else
            q_push_front(p, j);
    }
    wake_publishers(p, false);
}

/* Read and handle what the broker sent, waiting up to wait_ms for the first frame (or until
 * wake_fd, if >= 0, says a job was queued). Returns HQ_OK, or a status when the connection
 * (or its channel) is gone; *chan_fail is set when the broker closed the channel over
 * something we sent (e.g. 404: no such exchange). */
static int drain(struct pub_slot *s, struct hq_amqp *c, int wait_ms, int wake_fd,
                 bool *chan_fail)
{
    struct hq_pub *p = s->p;
    struct hq_amqp_ev ev;
    int k, rc;

    for (k = 0; k < 4096; k++) {
        bool woken = false;

        rc = hq__amqp_wait(c, k == 0 ? wait_ms : 0, k == 0 ? wake_fd : -1, &woken, &ev);
        if (woken) {
            uint64_t v;
            (void)!read(wake_fd, &v, sizeof(v)); /* non-blocking; another thread may have */
        }
        if (rc != HQ_OK) {
            hq_warn("publisher connection lost", "conn=%d error=\"%s\"", s->idx, ev.text);
            return rc;
        }
        switch (ev.type) {
        case HQ_AMQP_EV_NONE:
            return HQ_OK;
        case HQ_AMQP_EV_ACK:
        case HQ_AMQP_EV_NACK:
            pthread_mutex_lock(&p->mu);
            settle(s, ev.tag, ev.multiple, ev.type == HQ_AMQP_EV_ACK);
            pthread_mutex_unlock(&p->mu);
            if (ev.type == HQ_AMQP_EV_NACK)
                hq_debug("broker nacked publishes", "conn=%d tag=%llu multiple=%d", s->idx,
                         (unsigned long long)ev.tag, (int)ev.multiple);
            break;
        case HQ_AMQP_EV_RETURN:
            hq_warn("broker returned a message", "conn=%d message_id=\"%s\" code=%d text=\"%s\"",
                    s->idx, ev.message_id, ev.reply_code, ev.text);
            pthread_mutex_lock(&p->mu);
            mark_returned(s, ev.message_id);
            pthread_mutex_unlock(&p->mu);
            break;
        case HQ_AMQP_EV_BLOCKED:
            hq_warn("broker blocked publishing (resource alarm)", "conn=%d reason=\"%s\"", s->idx,
                    ev.text);
            pthread_mutex_lock(&p->mu);
            if (!s->blocked) {
                s->blocked = true;
                p->blocked++;
            }
            pthread_mutex_unlock(&p->mu);
            break;
        case HQ_AMQP_EV_UNBLOCKED:
            hq_info("broker unblocked publishing", "conn=%d", s->idx);
            pthread_mutex_lock(&p->mu);
            if (s->blocked) {
                s->blocked = false;
                p->blocked--;
            }
            pthread_mutex_unlock(&p->mu);
            break;
        case HQ_AMQP_EV_CLOSED:
            hq_warn("broker closed the publisher channel", "conn=%d code=%d text=\"%s\"", s->idx,
                    ev.reply_code, ev.text);
            if (!hq__amqp_dead(c))
                *chan_fail = true; /* channel-level: caused by a publish, don't republish */
            {
                /* RabbitMQ: "... message size N is larger than configured max size M" */
                const char *t = strstr(ev.text, "larger than configured max size ");
                unsigned long long max;
                char *end;

                if (t && ev.reply_code == 406) {
                    errno = 0;
                    max = strtoull(t + 32, &end, 10);
                    if (!errno && end != t + 32 && max > 0 && max <= SIZE_MAX) {
                        atomic_store(&p->max_body, (size_t)max);
                        return HQ_ETOOBIG; /* only the oversized jobs fail */
                    }
                }
            }
            /* no such exchange, no permission: nothing is wrong with the messages */
            if (ev.reply_code == 404)
                return HQ_ENOTFOUND;
            if (ev.reply_code == 403 || ev.reply_code == 530)
                return HQ_EAUTH;
            return HQ_EBROKER;
        }
    }
    return HQ_OK;
}

/* Publish and confirm on c until the connection fails or the pool quits. */
static int session(struct pub_slot *s, struct hq_amqp *c, bool *chan_fail)
{
    struct hq_pub *p = s->p;
    struct pub_job *batch[PUB_BATCH];
    size_t nb, i;
    int rc, wait_ms;

    for (;;) {
        bool idle, wait_for_jobs;

        nb = 0;
        pthread_mutex_lock(&p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return HQ_ESHUTDOWN;
        }
        if (!s->blocked && p->qhead) {
            int64_t now_us = hq_mono_us();

            size_t room = hq_confirm_room(&s->win);

            while (nb < PUB_BATCH && p->qhead && nb < room) {
                struct pub_job *j = p->qhead;
                q_remove(p, j);
                j->state = JOB_INFLIGHT;
                j->tm.taken_us = now_us;
                j->tm.batch = 0;
                batch[nb++] = j;
            }
            if (nb > 0)
                p->batches++;
            for (i = 0; i < nb; i++)
                batch[i]->tm.batch = (int)nb;
        }
        idle = nb == 0 && hq_confirm_empty(&s->win);
        /* Nothing taken but room in the window: be woken when a job is queued. Registered
         * under the lock that showed the FIFO empty, so no wake-up can be missed. */
        wait_for_jobs = nb == 0 && !s->blocked && !hq_confirm_full(&s->win);
        if (wait_for_jobs)
            p->sleepers++;
        pthread_mutex_unlock(&p->mu);

        /* The window (ring, tags) is this thread's own; only the shared counters need the
         * lock, once per batch. */
        rc = HQ_OK;
        for (i = 0; i < nb && rc == HQ_OK; i++) {
            struct pub_job *j = batch[i];
            uint64_t tag = 0;

            if (atomic_load(&p->max_body) && j->msg.body_len > atomic_load(&p->max_body))
                rc = HQ_ETOOBIG;
            else
                rc = hq_amqp_publish(c, j->exchange, j->msg.routing_key, &j->msg,
                                     atomic_load(&p->mandatory), &tag);
            if (rc == HQ_EINVAL || rc == HQ_ETOOBIG) {
                /* refused before anything was sent (hq_pub_publish checks the same): fail
                 * this job only; the batch goes on */
                pthread_mutex_lock(&p->mu);
                job_finish(j, rc);
                pthread_mutex_unlock(&p->mu);
                batch[i] = NULL;
                rc = HQ_OK;
                continue;
            }
            if (rc == HQ_OK && tag != hq_confirm_next_tag(&s->win)) {
                hq_error("publisher confirm tags out of step", "conn=%d tag=%llu expected=%llu",
                         s->idx, (unsigned long long)tag,
                         (unsigned long long)hq_confirm_next_tag(&s->win));
                rc = HQ_EBROKER;
            }
            if (rc == HQ_OK)
                rc = hq_confirm_add(&s->win, j, NULL); /* room was counted when j was taken */
            if (rc != HQ_OK)
                break;
        }
        if (nb > 0) {
            size_t k, sent = 0;
            int64_t now_us = hq_mono_us();

            for (k = 0; k < i; k++)
                sent += batch[k] != NULL;
            pthread_mutex_lock(&p->mu);
            for (k = 0; k < i; k++)
                if (batch[k] && batch[k]->state == JOB_INFLIGHT && !batch[k]->abandoned)
                    batch[k]->tm.sent_us = now_us;
            p->inflight += sent;
            p->published += sent;
            if (rc != HQ_OK)
                give_back(p, batch, i, nb);
            pthread_mutex_unlock(&p->mu);
        }
        if (rc != HQ_OK) {
            hq_warn("publish failed", "conn=%d status=%s error=\"%s\"", s->idx, hq_strerror(rc),
                    hq_amqp_error(c));
            return rc; /* wait_for_jobs is false: nb > 0 */
        }

        /* Published something: collect what has arrived and go on. Otherwise wait for acks,
         * jobs (if there is room) or, idle, the heartbeat tick. */
        wait_ms = nb > 0 ? 0 : idle ? PUB_IDLE_TICK_MS : PUB_WAIT_MS;
        rc = drain(s, c, wait_ms, wait_for_jobs ? p->efd : -1, chan_fail);
        if (wait_for_jobs) {
            pthread_mutex_lock(&p->mu);
            p->sleepers--;
            /* every sleeper saw the write; this one takes what is queued at the top of the
             * loop, unless it has no room: then wake another */
            p->efd_signalled = false;
            if (p->qhead && (s->blocked || hq_confirm_full(&s->win)))
                wake_publishers(p, false);
            pthread_mutex_unlock(&p->mu);
        }
        if (rc != HQ_OK)
            return rc;
    }
}

static int backoff_ms(struct pub_slot *s, int attempt)
{
    int64_t base = PUB_BACKOFF_MIN_MS;
    int k;

    for (k = 0; k < attempt && base < PUB_BACKOFF_MAX_MS; k++)
        base *= 2;
    if (base > PUB_BACKOFF_MAX_MS)
        base = PUB_BACKOFF_MAX_MS;
    /* "equal jitter": half fixed, half random, so threads don't reconnect in lockstep */
    return (int)(base / 2 + (int64_t)(rand_r(&s->seed) % (int)(base / 2 + 1)));
}

/* Sleep ms unless the pool quits. Returns true when quitting. */
static bool sleep_or_quit(struct hq_pub *p, int ms)
{
    int64_t until = hq_mono_ms() + ms;
    bool quit;

    pthread_mutex_lock(&p->mu);
    while (!p->quit && hq_mono_ms() < until)
        hq_cond_wait_until(&p->quit_cv, &p->mu, until);
    quit = p->quit;
    pthread_mutex_unlock(&p->mu);
    return quit;
}

static void *pub_thread(void *arg)
{
    struct pub_slot *s = arg;
    struct hq_pub *p = s->p;
    size_t start = (size_t)s->idx % p->broker.n_uris;
    char name[192], err[512];
    int attempt = 0, rc;
    bool ever_up = false, was_down_logged = false;

    snprintf(name, sizeof(name), "%s pub-%d", p->conn_name, s->idx + 1);
    for (;;) {
        struct hq_amqp *c = NULL;
        bool chan_fail = false;
        int64_t up_at;

        pthread_mutex_lock(&p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        pthread_mutex_unlock(&p->mu);

        rc = hq_amqp_connect_quiet(&p->broker, name, PUB_CONNECT_TIMEOUT_MS, &start, &c, err,
                              sizeof(err));
        if (rc == HQ_OK) {
            rc = hq_amqp_confirm_select(c);
            if (rc != HQ_OK)
                snprintf(err, sizeof(err), "%s", hq_amqp_error(c));
        }
        if (rc != HQ_OK) {
            hq_amqp_close(c);
            if (!was_down_logged)
                hq_warn("publisher cannot connect", "conn=%d status=%s error=\"%s\"", s->idx,
                        hq_strerror(rc), err);
            else
                hq_debug("publisher cannot connect", "conn=%d status=%s error=\"%s\"", s->idx,
                         hq_strerror(rc), err);
            was_down_logged = true;
            if (sleep_or_quit(p, backoff_ms(s, attempt)))
                break;
            attempt++;
            continue;
        }
        hq_info("publisher connected", "conn=%d peer=%s", s->idx, hq_amqp_peer(c));
        was_down_logged = false;
        up_at = hq_mono_ms();

        pthread_mutex_lock(&p->mu);
        s->up = true;
        s->blocked = false;
        s->fd = hq__amqp_fd(c);
        s->wd_outq = 0;
        s->wd_since = up_at;
        (void)hq_confirm_reset(&s->win); /* released when the last connection ended */
        p->up++;
        if (ever_up)
            p->reconnects++;
        ever_up = true;
        pthread_mutex_unlock(&p->mu);

        rc = session(s, c, &chan_fail);

        pthread_mutex_lock(&p->mu);
        s->up = false;
        p->up--;
        if (s->blocked) {
            s->blocked = false;
            p->blocked--;
        }
        s->fd = -1;
        if (rc == HQ_ESHUTDOWN)
            release_window(s, false, HQ_ESHUTDOWN, false);
        else if (chan_fail && rc == HQ_ETOOBIG)
            release_window(s, true, HQ_OK, true);
        else if (chan_fail)
            release_window(s, false, rc == HQ_ENOTFOUND || rc == HQ_EAUTH ? rc : HQ_EBROKER,
                           false);
        else
            release_window(s, true, HQ_OK, false);
        pthread_mutex_unlock(&p->mu);
        hq_amqp_close(c);
        if (rc == HQ_ESHUTDOWN)
            break;

        if (hq_mono_ms() - up_at >= PUB_FLAP_MS)
            attempt = 0;
        start = (start + 1) % p->broker.n_uris; /* try the next node first */
        if (sleep_or_quit(p, backoff_ms(s, attempt)))
            break;
        attempt++;
    }
    pthread_mutex_lock(&p->mu);
    s->exited = true;
    pthread_cond_broadcast(&p->idle_cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Shut down sockets whose unsent bytes have not moved for PUB_STUCK_MS (see the top). */
static void *watchdog_thread(void *arg)
{
    struct hq_pub *p = arg;
    int i;

    pthread_mutex_lock(&p->mu);
    while (!p->quit) {
        int64_t now;

        hq_cond_wait_until(&p->quit_cv, &p->mu, hq_mono_ms() + 250);
        if (p->quit)
            break;
        now = hq_mono_ms();
        for (i = 0; i < p->n; i++) {
            struct pub_slot *s = &p->slots[i];
            int outq = 0;

            if (!s->up || s->fd < 0)
                continue;
            if (ioctl(s->fd, SIOCOUTQ, &outq) != 0)
                outq = 0;
            if (outq > 0 && outq == s->wd_outq) {
                if (now - s->wd_since >= PUB_STUCK_MS) {
                    hq_warn("publisher connection stuck, resetting it",
                            "conn=%d unsent_bytes=%d stuck_ms=%lld", s->idx, outq,
                            (long long)(now - s->wd_since));
                    (void)shutdown(s->fd, SHUT_RDWR);
                    s->fd = -1;
                }
            } else {
                s->wd_outq = outq;
                s->wd_since = now;
            }
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---------------------------------------------------------------- API */

static void pool_free(struct hq_pub *p)
{
    int i;

    if (!p)
        return;
    if (p->slots) {
        for (i = 0; i < p->n; i++)
            hq_confirm_free(&p->slots[i].win);
        free(p->slots);
    }
    if (p->efd >= 0)
        close(p->efd);
    pthread_cond_destroy(&p->quit_cv);
    pthread_cond_destroy(&p->idle_cv);
    pthread_condattr_destroy(&p->cattr);
    pthread_mutex_destroy(&p->mu);
    broker_free(&p->broker);
    free(p->conn_name);
    free(p);
}

int hq_pub_start(const struct hq_broker_cfg *broker, int n, int window, const char *conn_name,
                 struct hq_pub **out)
{
    struct hq_pub *p;
    int i, rc;

    if (!broker || !out || n < 1 || n > PUB_MAX_THREADS || window < 1 || window > PUB_MAX_WINDOW)
        return HQ_EINVAL;
    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return HQ_ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&p->cattr);
    pthread_condattr_setclock(&p->cattr, CLOCK_MONOTONIC);
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_cond_init(&p->quit_cv, &p->cattr);
    pthread_cond_init(&p->idle_cv, &p->cattr);
    p->n = n;
    p->window = window;
    p->qmax = (size_t)4 * (size_t)window * (size_t)n;
    if (p->qmax < 64)
        p->qmax = 64;
    rc = p->efd >= 0 ? broker_copy(&p->broker, broker) : HQ_EIO;
    if (rc != HQ_OK) {
        pool_free(p);
        return rc;
    }
    p->conn_name = strdup(conn_name ? conn_name : "hookmq");
    p->slots = calloc((size_t)n, sizeof(*p->slots));
    if (!p->conn_name || !p->slots) {
        pool_free(p);
        return HQ_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        struct pub_slot *s = &p->slots[i];
        s->p = p;
        s->idx = i;
        s->fd = -1;
        s->seed = (unsigned)(hq_now_ms() ^ ((int64_t)i * 2654435761LL)) ^ (unsigned)(uintptr_t)s;
        rc = hq_confirm_init(&s->win, (size_t)window);
        if (rc != HQ_OK) {
            pool_free(p);
            return rc;
        }
    }
    for (i = 0; i < n; i++) {
        if (pthread_create(&p->slots[i].thr, NULL, pub_thread, &p->slots[i]) != 0) {
            hq_error("cannot start publisher thread", "errno=%d", errno);
            hq_pub_stop(p, 0);
            return HQ_ENOMEM;
        }
        p->slots[i].thr_started = true;
    }
    if (pthread_create(&p->wd, NULL, watchdog_thread, p) != 0) {
        hq_pub_stop(p, 0);
        return HQ_ENOMEM;
    }
    p->wd_started = true;
    *out = p;
    return HQ_OK;
}

/* May a new job be queued now? HQ_OK, or why not (p->mu held). */
static int admit_locked(const struct hq_pub *p)
{
    if (p->stopping)
        return HQ_ESHUTDOWN;
    if (p->up == 0)
        return HQ_EDOWN;
    if (p->blocked == p->up)
        return HQ_EBLOCKED;
    if (p->qlen >= p->qmax)
        return HQ_EFULL;
    return HQ_OK;
}

int hq_pub_publish(struct hq_pub *p, const char *exchange, const struct hq_msg *m,
                   int64_t deadline_mono_ms)
{
    return hq_pub_publish_timed(p, exchange, m, deadline_mono_ms, NULL);
}

int hq_pub_publish_timed(struct hq_pub *p, const char *exchange, const struct hq_msg *m,
                         int64_t deadline_mono_ms, struct hq_pub_timing *tm)
{
    struct pub_job *j = NULL;
    int rc;

    if (!p || !exchange || !m)
        return HQ_EINVAL;
    rc = hq__amqp_msg_check(exchange, m); /* a message no connection could carry */
    if (rc != HQ_OK)
        return rc;
    /* Copied before the checks, so that the pool's lock is taken once: every HTTP thread and
     * the publishers contend for it (the copy is wasted only when the job is refused). */
    rc = job_new(p, exchange, m, &j);
    if (rc != HQ_OK)
        return rc;

    pthread_mutex_lock(&p->mu);
    rc = admit_locked(p);
    if (rc == HQ_OK && atomic_load(&p->max_body) && m->body_len > atomic_load(&p->max_body))
        rc = HQ_ETOOBIG; /* the broker refused a body this large before */
    if (rc == HQ_OK && hq_mono_ms() >= deadline_mono_ms)
        rc = HQ_ETIMEDOUT;
    if (rc != HQ_OK) {
        pthread_mutex_unlock(&p->mu);
        job_free(j);
        return rc;
    }
    p->callers++;
    j->tm.queued_us = hq_mono_us();
    q_push_back(p, j);
    wake_publishers(p, false);
    while (j->state != JOB_DONE && hq_mono_ms() < deadline_mono_ms)
        hq_cond_wait_until(&j->cv, &p->mu, deadline_mono_ms);
    if (j->state == JOB_DONE) {
        rc = j->result;
        if (tm) {
            *tm = j->tm;
            tm->woken_us = hq_mono_us();
        }
    } else {
        rc = HQ_ETIMEDOUT;
        if (j->state == JOB_QUEUED) {
            q_remove(p, j); /* never published: nobody else holds it */
        } else {
            j->abandoned = true; /* published: the publisher frees it when settled */
            j = NULL;
        }
    }
    p->callers--;
    if (p->stopping)
        pthread_cond_broadcast(&p->idle_cv);
    pthread_mutex_unlock(&p->mu);
    job_free(j);
    return rc;
}

int hq_pub_publish_async(struct hq_pub *p, const char *exchange, const struct hq_msg *m)
{
    struct pub_job *j = NULL;
    int rc;

    if (!p || !exchange || !m)
        return HQ_EINVAL;
    rc = hq__amqp_msg_check(exchange, m);
    if (rc != HQ_OK)
        return rc;
    rc = job_new(p, exchange, m, &j);
    if (rc != HQ_OK)
        return rc;
    j->abandoned = true; /* nobody waits: whoever settles or drops it frees it */
    pthread_mutex_lock(&p->mu);
    rc = admit_locked(p);
    if (rc == HQ_OK) {
        q_push_back(p, j);
        wake_publishers(p, false);
        j = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    job_free(j);
    return rc;
}

void hq_pub_set_mandatory(struct hq_pub *p)
{
    if (p)
        atomic_store(&p->mandatory, true);
}

void hq_pub_get_stats(struct hq_pub *p, struct hq_pub_stats *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof(*st));
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    st->connections_up = p->up;
    st->connected = p->up - p->blocked > 0;
    st->blocked = p->up > 0 && p->blocked == p->up;
    st->published = p->published;
    st->confirmed = p->confirmed;
    st->nacked = p->nacked;
    st->returned = p->returned;
    st->reconnects = p->reconnects;
    st->batches = p->batches;
    st->confirm_frames = p->confirm_frames;
    pthread_mutex_unlock(&p->mu);
}

void hq_pub_stop(struct hq_pub *p, int drain_ms)
{
    int64_t until;
    int i;

    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    /* drain: let queued and unconfirmed publishes finish while a connection is up */
    until = hq_mono_ms() + (drain_ms > 0 ? drain_ms : 0);
    while ((p->qlen > 0 || p->inflight > 0) && p->up > 0 && hq_mono_ms() < until) {
        pthread_mutex_unlock(&p->mu);
        {
            struct timespec ts = {0, 5 * 1000000L};
            nanosleep(&ts, NULL);
        }
        pthread_mutex_lock(&p->mu);
    }
    p->quit = true;
    wake_publishers(p, true);
    pthread_cond_broadcast(&p->quit_cv);
    /* threads notice quit within a poll interval; one stuck in the library needs its socket
     * shut down */
    until = hq_mono_ms() + PUB_STOP_GRACE_MS;
    for (;;) {
        bool all = true;
        for (i = 0; i < p->n; i++)
            if (p->slots[i].thr_started && !p->slots[i].exited)
                all = false;
        if (all || hq_mono_ms() >= until)
            break;
        hq_cond_wait_until(&p->idle_cv, &p->mu, until);
    }
    for (i = 0; i < p->n; i++) {
        struct pub_slot *s = &p->slots[i];
        if (s->thr_started && !s->exited && s->fd >= 0) {
            hq_warn("publisher thread stuck at stop, resetting its connection", "conn=%d", s->idx);
            (void)shutdown(s->fd, SHUT_RDWR);
            s->fd = -1;
        }
    }
    pthread_mutex_unlock(&p->mu);

    for (i = 0; i < p->n; i++)
        if (p->slots[i].thr_started)
            pthread_join(p->slots[i].thr, NULL);
    if (p->wd_started)
        pthread_join(p->wd, NULL);

    pthread_mutex_lock(&p->mu);
    while (p->qhead) {
        struct pub_job *j = p->qhead;
        q_remove(p, j);
        job_finish(j, HQ_ESHUTDOWN);
    }
    while (p->callers > 0)
        pthread_cond_wait(&p->idle_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pool_free(p);
}
