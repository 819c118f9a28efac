/* ratelimit.c: the consumer's max_per_second, one token bucket shared by every slot of the
 * worker process (several processes each get their own: the limit is per process).
 *
 * Written in the GCRA form: tat is the theoretical arrival time of the next event; an event
 * may start at tat - tolerance, where tolerance = (burst - 1) / rate and burst =
 * max(1, rate / 10). A reservation moves tat on by 1 / rate, so waiting callers are spaced
 * evenly instead of waking together. */
#include "hq_time.h"
#include "worker.h"

static double burst_of(double rate)
{
    double b = rate / 10.0;

    return b < 1.0 ? 1.0 : b;
}

void wk_rate_init(struct wk_rate *r, double rate)
{
    pthread_mutex_init(&r->lock, NULL);
    r->rate = rate > 0 ? rate : 0;
    r->tat_ms = 0;
    r->gen = 1;
}

void wk_rate_set(struct wk_rate *r, double rate)
{
    pthread_mutex_lock(&r->lock);
    if (rate != r->rate) {
        r->rate = rate > 0 ? rate : 0;
        r->tat_ms = 0; /* forget reservations made under the old rate */
        r->gen++;
    }
    pthread_mutex_unlock(&r->lock);
}

void wk_rate_destroy(struct wk_rate *r)
{
    pthread_mutex_destroy(&r->lock);
}

uint64_t wk_rate_gen(struct wk_rate *r)
{
    uint64_t g;

    pthread_mutex_lock(&r->lock);
    g = r->gen;
    pthread_mutex_unlock(&r->lock);
    return g;
}

int64_t wk_rate_reserve(struct wk_rate *r, uint64_t *gen)
{
    double now = (double)hq_mono_ms(), interval, tolerance, start;
    int64_t wait = 0;

    pthread_mutex_lock(&r->lock);
    if (gen) *gen = r->gen;
    if (r->rate > 0) {
        interval = 1000.0 / r->rate;
        tolerance = (burst_of(r->rate) - 1.0) * interval;
        if (r->tat_ms < now) r->tat_ms = now;
        start = r->tat_ms - tolerance;
        if (start > now) wait = (int64_t)(start - now) + 1; /* round up */
        r->tat_ms += interval;
    }
    pthread_mutex_unlock(&r->lock);
    return wait;
}
