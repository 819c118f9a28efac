/* bodywatch.c: the deadline of a request body (http.c's read_body) without a kernel timer per
 * request (gw.h).
 *
 * CivetWeb bounds each wait for data, not a whole body, so a client dribbling one byte at a time
 * could hold an HTTP thread for as long as it likes. At its deadline the reading thread gets a
 * signal (installed without SA_RESTART), which makes its blocked poll()/recv() fail with EINTR;
 * then again every GW_BODY_KICK_MS, in case one lands outside a poll.
 *
 * Every HTTP thread owns a slot (made when CivetWeb starts the thread). Reading a body sets the
 * slot's deadline and clears it after: a mutex nobody else holds, no system call. One watchdog
 * thread sleeps until the earliest deadline set, or idle_ms when none is (each deadline is its
 * request's start plus request_timeout_ms, and idle_ms is no longer than that, so a deadline set
 * while it sleeps is not missed), and signals every thread past its deadline. It signals under
 * the slot's lock and notes it there, so a thread clearing its deadline knows whether a signal
 * may still be pending and takes it (sigtimedwait) before it blocks anywhere else, where it
 * would cut a keep-alive wait or a confirm wait short. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "gw.h"
#include "hq_time.h"

struct gw_body_slot {
    struct gw_body_slot *next; /* registry links, under watch.mu */
    struct gw_body_slot *prev;
    pthread_t thr;
    pthread_mutex_t mu; /* guards the fields below */
    int64_t deadline;   /* hq_mono_ms; 0 = not reading a body */
    int64_t next_kick;  /* when the watchdog next signals it */
    bool kicked;        /* signalled since armed: a signal may be pending */
};

static struct {
    pthread_mutex_t mu; /* guards the registry, started, quit */
    pthread_cond_t cv;  /* CLOCK_MONOTONIC */
    struct gw_body_slot *slots;
    pthread_t thr;
    bool started, quit;
    int signo;
    int64_t idle_ms;
} watch = {.mu = PTHREAD_MUTEX_INITIALIZER};

int64_t gw__body_watch_due(int64_t now, int64_t deadline, int64_t *next_kick, bool *kick)
{
    *kick = false;
    if (deadline <= 0)
        return INT64_MAX;
    if (now >= *next_kick) {
        *kick = true;
        *next_kick = now + GW_BODY_KICK_MS;
    }
    return *next_kick;
}

static void *watch_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&watch.mu);
    while (!watch.quit) {
        int64_t now = hq_mono_ms(), next = now + watch.idle_ms;
        struct gw_body_slot *s;
        struct timespec ts;

        for (s = watch.slots; s; s = s->next) {
            bool kick;
            int64_t due;

            pthread_mutex_lock(&s->mu);
            due = gw__body_watch_due(now, s->deadline, &s->next_kick, &kick);
            if (kick && pthread_kill(s->thr, watch.signo) == 0)
                s->kicked = true;
            pthread_mutex_unlock(&s->mu);
            if (due < next)
                next = due;
        }
        ts.tv_sec = (time_t)(next / 1000);
        ts.tv_nsec = (long)(next % 1000) * 1000000L;
        (void)pthread_cond_timedwait(&watch.cv, &watch.mu, &ts);
    }
    pthread_mutex_unlock(&watch.mu);
    return NULL;
}

int gw_body_watch_start(int signo, int64_t idle_ms)
{
    pthread_condattr_t ca;
    int rc = HQ_OK;

    pthread_mutex_lock(&watch.mu);
    if (watch.started)
        goto out;
    watch.signo = signo;
    watch.idle_ms = idle_ms > 0 ? idle_ms : 1;
    watch.quit = false;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&watch.cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&watch.thr, NULL, watch_main, NULL) != 0) {
        pthread_cond_destroy(&watch.cv);
        rc = HQ_ENOMEM;
        goto out;
    }
    watch.started = true;
out:
    pthread_mutex_unlock(&watch.mu);
    return rc;
}

void gw_body_watch_stop(void)
{
    pthread_t thr;

    pthread_mutex_lock(&watch.mu);
    if (!watch.started) {
        pthread_mutex_unlock(&watch.mu);
        return;
    }
    watch.quit = true;
    thr = watch.thr;
    pthread_cond_signal(&watch.cv);
    pthread_mutex_unlock(&watch.mu);
    pthread_join(thr, NULL);
    pthread_mutex_lock(&watch.mu);
    watch.started = false;
    pthread_cond_destroy(&watch.cv);
    pthread_mutex_unlock(&watch.mu);
}

struct gw_body_slot *gw_body_slot_new(void)
{
    struct gw_body_slot *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->thr = pthread_self();
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_lock(&watch.mu);
    s->next = watch.slots;
    if (watch.slots)
        watch.slots->prev = s;
    watch.slots = s;
    pthread_mutex_unlock(&watch.mu);
    return s;
}

void gw_body_slot_free(struct gw_body_slot *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&watch.mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        watch.slots = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&watch.mu);
    gw_body_slot_disarm(s);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void gw_body_slot_arm(struct gw_body_slot *s, int64_t deadline_ms)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->deadline = deadline_ms > 0 ? deadline_ms : 1;
    s->next_kick = s->deadline;
    s->kicked = false;
    pthread_mutex_unlock(&s->mu);
}

void gw_body_slot_disarm(struct gw_body_slot *s)
{
    bool kicked;

    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->deadline = 0;
    kicked = s->kicked;
    s->kicked = false;
    pthread_mutex_unlock(&s->mu);
    if (kicked) {
        /* sent under the lock we just took: pending now, or already handled */
        struct timespec zero = {0, 0};
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, watch.signo);
        while (sigtimedwait(&set, NULL, &zero) > 0 || errno == EINTR)
            ;
    }
}
