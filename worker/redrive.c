/* redrive.c: automatic redrive (`redrive = { after; max_times; }` in a consumer), run by the
 * consumer's worker process in a thread of its own with its own broker connection.
 *
 * Every wk_redrive_interval_ms(after) the thread looks at hookmq.NAME.dlq: it takes each
 * ready message with basic.get (unacked), and one whose failure time (hookmq-failed-at, or
 * the newest x-death time for events the broker dead-lettered) is older than `after` and
 * whose hookmq-redriven is below max_times is republished to exchange "" with routing key
 * hookmq.NAME -- hookmq-attempt = 1, hookmq-redriven + 1, without hookmq-consumer,
 * -attempts, -last-error, -failed-at and the broker-owned headers -- and acked once the
 * broker confirmed the copy. The pass reads the DLQ to its depth at the start (at most
 * REDRIVE_PASS_MAX messages); the messages it leaves are held unacked and given back with
 * hq_dlq_return(), oldest first, so a quorum DLQ keeps its order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_amqp.h"
#include "hq_consume.h"
#include "hq_dlq.h"
#include "hq_log.h"
#include "hq_time.h"
#include "worker.h"

#define REDRIVE_PASS_MAX 100000

int64_t wk_redrive_interval_ms(uint64_t after_ms)
{
    int64_t i = (int64_t)(after_ms / 4);

    if (i < 1000) i = 1000;
    if (i > 60000) i = 60000;
    return i;
}

/* One pass over the DLQ. *c is (re)opened as needed and closed when messages were left. */
static void drop(struct hq_amqp **c)
{
    hq_consume_detach(*c);
    hq_amqp_close(*c);
    *c = NULL;
}

static void pass(struct wk *w, struct hq_amqp **c, uint64_t after_ms, int max_times)
{
    uint32_t ready = 0, i;
    size_t start = 0;
    int64_t now, at;
    int moved = 0, rc;
    size_t held = 0;
    uint64_t *kept = NULL; /* delivery tags left in the DLQ, in the order read */
    bool down = false;
    char name[HQ_NAME_MAX + 64];

    if (!*c) {
        snprintf(name, sizeof(name), "hookmq-worker %s redrive", w->con->name);
        if (hq_amqp_connect(&w->cfg->broker, name, WK_CONNECT_TIMEOUT_MS, &start, c) != HQ_OK)
            return;
    }
    rc = hq_amqp_queue_exists(*c, w->dlq, &ready, NULL);
    if (rc != HQ_OK) {
        if (rc == HQ_ENOTFOUND)
            hq_warn("redrive: DLQ does not exist (hookmq-dlx apply creates it)",
                    "consumer=%s queue=%s", w->con->name, w->dlq);
        drop(c); /* after a 404 the connection moved to another channel: start afresh */
        return;
    }
    if (ready > REDRIVE_PASS_MAX) ready = REDRIVE_PASS_MAX;
    if (ready == 0)
        return;
    kept = malloc(ready * sizeof(*kept));
    if (!kept)
        return;
    now = hq_now_ms();
    for (i = 0; i < ready && !atomic_load(&w->stopping); i++) {
        struct hq_delivery d;
        struct hq_dlq_info info;

        memset(&d, 0, sizeof(d));
        rc = hq_amqp_get(*c, w->dlq, false, &d);
        if (rc == HQ_ENOTFOUND) break;
        if (rc != HQ_OK) {
            down = true;
            break;
        }
        hq_dlq_info(&d, &info);
        if (info.failed_at_ms <= 0 || now - info.failed_at_ms < (int64_t)after_ms ||
            info.redriven >= max_times) {
            kept[held++] = d.tag;
            hq_delivery_free(&d);
            continue;
        }
        at = hq_now_ms();
        rc = hq_dlq_redrive_one(*c, w->con->name, &d, WK_CONFIRM_TIMEOUT_MS);
        if (rc == HQ_OK) {
            char id[300];

            moved++;
            hq_metric_inc(w->m.redriven);
            hq_dlq_emit_redriven(w->lc, w->con->name, &d, at);
            wk_log_safe(id, sizeof(id), info.id[0] ? info.id : "-", false);
            hq_info("redriven", "consumer=%s event_id=%s redriven=%lld", w->con->name, id,
                    (long long)info.redriven + 1);
        } else {
            kept[held++] = d.tag;
            if (rc == HQ_EBROKER)
                hq_warn("redrive: the broker refused the copy (work queue missing?); left in "
                        "the DLQ",
                        "consumer=%s queue=%s", w->con->name, w->work_queue);
            else
                down = true;
        }
        hq_delivery_free(&d);
        if (down) break;
    }
    if (!down && i == ready)
        hq_metric_inc(w->m.redrive_scans); /* read every message that was ready */
    if (moved)
        hq_info("redrive pass", "consumer=%s moved=%d left=%zu", w->con->name, moved, held);
    if (held && !down) {
        bool ordered = true;

        if (hq_dlq_return(*c, w->dlq, kept, held, &ordered) != HQ_OK || !ordered)
            hq_warn("redrive: the DLQ may have been reordered while returning messages",
                    "consumer=%s queue=%s", w->con->name, w->dlq);
    }
    if (held || down || atomic_load(&w->stopping))
        drop(c); /* anything still unacked returns to the DLQ */
    free(kept);
}

static void *redrive_main(void *arg)
{
    struct wk *w = arg;
    struct hq_amqp *c = NULL;

    while (!atomic_load(&w->stopping)) {
        struct wk_snap *snap = wk_snap_get(w);
        bool enabled = snap->con->redrive;
        uint64_t after = snap->con->redrive_after_ms;
        int max_times = snap->con->redrive_max_times;

        wk_snap_put(snap);
        if (enabled)
            pass(w, &c, after, max_times);
        else if (c)
            drop(&c);
        wk_sleep(w, wk_redrive_interval_ms(after));
    }
    if (c) drop(&c);
    return NULL;
}

int wk_redrive_start(struct wk *w)
{
    if (pthread_create(&w->redrive_thread, NULL, redrive_main, w) != 0) return HQ_ENOMEM;
    w->redrive_started = true;
    hq_info("automatic redrive on", "consumer=%s after_ms=%llu max_times=%d interval_ms=%lld",
            w->con->name, (unsigned long long)w->con->redrive_after_ms, w->con->redrive_max_times,
            (long long)wk_redrive_interval_ms(w->con->redrive_after_ms));
    return HQ_OK;
}

void wk_redrive_join(struct wk *w)
{
    if (w->redrive_started) pthread_join(w->redrive_thread, NULL);
    w->redrive_started = false;
}
