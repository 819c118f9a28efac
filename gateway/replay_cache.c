/* replay_cache.c: the gateway's cache of accepted signatures, so an exact replay of an accepted
 * request is answered 202 with the original id and not published again (docs/signatures.md,
 * "Replay cache").
 *
 * One chained hash table (grown as needed) over entries keyed by (source, key). Each source
 * has its own FIFO and its own byte budget, so one source's traffic never evicts another
 * source's entries. An entry is created "in flight" by gw_replay_begin (before the publish),
 * so a concurrent copy of the same request is told so instead of being published too;
 * gw_replay_commit records the outcome, gw_replay_abort removes the mark after a failure. */
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "hq_codec.h"
#include "hq_time.h"

struct src_state;

/* Small on purpose (about 100 bytes with a typical id). The id is kept at its own length. */
struct entry {
    struct entry *hnext;          /* hash chain */
    struct entry *fnext, *fprev;  /* the source's FIFO, oldest at head */
    struct src_state *src;
    unsigned char key[HQ_REPLAY_KEY_LEN];
    uint64_t ticket;              /* != 0 while in flight */
    int64_t expires_ms;
    char id[];
};

struct src_state {
    struct src_state *next;
    struct entry *head, *tail;
    size_t bytes;
    char name[];
};

struct gw_replay {
    pthread_mutex_t lock;
    pthread_cond_t done; /* broadcast on every commit and abort */
    struct entry **table;
    size_t nbuckets, n;
    uint64_t next_ticket;
    struct src_state *sources;
};

#define MIN_BUCKETS 1024

size_t gw_replay_entry_bytes(const char *id)
{
    /* the allocation plus a typical allocator overhead, so the budget tracks real memory */
    return sizeof(struct entry) + strnlen(id, 255) + 1 + 16;
}

int64_t gw_replay_expiry(int64_t signed_ts_s, int64_t now_ms, int tolerance_s, int64_t no_ts_ms)
{
    int64_t base = now_ms;

    if (signed_ts_s < 0 || tolerance_s <= 0)
        return now_ms + no_ts_ms;
    /* accepted until signed t + tolerance; a t in the future is accepted that much longer */
    if (signed_ts_s > INT64_MAX / 1000 - 86400)
        return INT64_MAX;
    if (signed_ts_s * 1000 > base)
        base = signed_ts_s * 1000;
    return base + (int64_t)tolerance_s * 1000;
}

struct gw_replay *gw_replay_new(void)
{
    struct gw_replay *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->nbuckets = MIN_BUCKETS;
    r->table = calloc(r->nbuckets, sizeof(*r->table));
    if (!r->table) {
        free(r);
        return NULL;
    }
    r->next_ticket = 1;
    pthread_mutex_init(&r->lock, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&r->done, &ca);
        pthread_condattr_destroy(&ca);
    }
    return r;
}

void gw_replay_free(struct gw_replay *r)
{
    struct src_state *s, *sn;
    struct entry *e, *n;

    if (!r)
        return;
    for (s = r->sources; s; s = sn) {
        sn = s->next;
        for (e = s->head; e; e = n) {
            n = e->fnext;
            free(e);
        }
        free(s);
    }
    free(r->table);
    pthread_cond_destroy(&r->done);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static struct src_state *source_state(struct gw_replay *r, const char *name)
{
    struct src_state *s;
    size_t len = strlen(name);

    for (s = r->sources; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    s = calloc(1, sizeof(*s) + len + 1);
    if (!s)
        return NULL;
    memcpy(s->name, name, len + 1);
    s->next = r->sources;
    r->sources = s;
    return s;
}

static size_t bucket_of(size_t nbuckets, const struct src_state *s, const unsigned char *key)
{
    uint64_t h;

    /* the key is a SHA-256: its first bytes are already uniform */
    memcpy(&h, key, sizeof(h));
    return (size_t)((h ^ (uint64_t)(uintptr_t)s) & (nbuckets - 1));
}

static struct entry **find(struct gw_replay *r, const struct src_state *s,
                           const unsigned char *key)
{
    struct entry **pp = &r->table[bucket_of(r->nbuckets, s, key)];

    for (; *pp; pp = &(*pp)->hnext)
        if ((*pp)->src == s && memcmp((*pp)->key, key, HQ_REPLAY_KEY_LEN) == 0)
            return pp;
    return pp;
}

static void grow(struct gw_replay *r)
{
    size_t nb = r->nbuckets * 2, i;
    struct entry **t = calloc(nb, sizeof(*t)), *e, *n;

    if (!t)
        return; /* longer chains, still correct */
    for (i = 0; i < r->nbuckets; i++)
        for (e = r->table[i]; e; e = n) {
            size_t b = bucket_of(nb, e->src, e->key);
            n = e->hnext;
            e->hnext = t[b];
            t[b] = e;
        }
    free(r->table);
    r->table = t;
    r->nbuckets = nb;
}

static void remove_entry(struct gw_replay *r, struct entry *e)
{
    struct entry **pp = find(r, e->src, e->key);
    struct src_state *s = e->src;

    if (*pp == e)
        *pp = e->hnext;
    if (e->fprev)
        e->fprev->fnext = e->fnext;
    else
        s->head = e->fnext;
    if (e->fnext)
        e->fnext->fprev = e->fprev;
    else
        s->tail = e->fprev;
    s->bytes -= gw_replay_entry_bytes(e->id);
    r->n--;
    free(e);
}

/* Add e at the tail of its source's FIFO, evicting that source's oldest entries (expired or
 * not) until it fits in max_bytes. Only this source's entries are ever evicted. */
static void add_entry(struct gw_replay *r, struct entry *e, size_t max_bytes)
{
    struct src_state *s = e->src;
    size_t sz = gw_replay_entry_bytes(e->id);
    struct entry **pp;

    while (s->head && s->bytes + sz > max_bytes)
        remove_entry(r, s->head);
    if (r->n >= r->nbuckets)
        grow(r);
    pp = &r->table[bucket_of(r->nbuckets, s, e->key)];
    e->hnext = *pp;
    *pp = e;
    e->fnext = NULL;
    e->fprev = s->tail;
    if (s->tail)
        s->tail->fnext = e;
    else
        s->head = e;
    s->tail = e;
    s->bytes += sz;
    r->n++;
}

static struct entry *new_entry(struct src_state *s, const unsigned char *key, const char *id)
{
    size_t idlen = strnlen(id, 255);
    struct entry *e = malloc(sizeof(*e) + idlen + 1);

    if (!e)
        return NULL;
    memset(e, 0, sizeof(*e));
    e->src = s;
    memcpy(e->key, key, HQ_REPLAY_KEY_LEN);
    memcpy(e->id, id, idlen);
    e->id[idlen] = '\0';
    return e;
}

enum gw_replay_state gw_replay_begin(struct gw_replay *r, const char *source,
                                     const unsigned char *key, const char *id, size_t max_bytes,
                                     int64_t now_ms, int64_t wait_until_mono_ms, char *orig_id,
                                     size_t idsz, uint64_t *ticket)
{
    enum gw_replay_state st = GW_REPLAY_NEW;
    struct src_state *s;
    struct entry *e;

    *ticket = 0;
    pthread_mutex_lock(&r->lock);
    s = source_state(r, source);
    if (!s)
        goto out; /* out of memory: no protection for this one, never a refusal */
    for (;;) {
        struct timespec ts;

        e = *find(r, s, key);
        if (!e || !e->ticket)
            break;
        /* the same request is being published: wait for its outcome */
        if (hq_mono_ms() >= wait_until_mono_ms) {
            snprintf(orig_id, idsz, "%s", e->id);
            st = GW_REPLAY_IN_FLIGHT;
            goto out;
        }
        ts.tv_sec = (time_t)(wait_until_mono_ms / 1000);
        ts.tv_nsec = (long)(wait_until_mono_ms % 1000) * 1000000L;
        pthread_cond_timedwait(&r->done, &r->lock, &ts);
    }
    if (e && e->expires_ms >= now_ms) {
        snprintf(orig_id, idsz, "%s", e->id);
        st = GW_REPLAY_HIT;
        goto out;
    }
    if (e)
        remove_entry(r, e); /* expired */
    e = new_entry(s, key, id);
    if (!e)
        goto out;
    e->ticket = r->next_ticket++;
    e->expires_ms = INT64_MAX;
    *ticket = e->ticket;
    add_entry(r, e, max_bytes);
out:
    pthread_mutex_unlock(&r->lock);
    return st;
}

/* The pending entry of ticket (source, key), or NULL when it was evicted meanwhile. Under
 * r->lock. */
static struct entry *pending(struct gw_replay *r, const char *source, const unsigned char *key,
                             uint64_t ticket)
{
    struct src_state *s = source_state(r, source);
    struct entry *e = s ? *find(r, s, key) : NULL;

    return e && e->ticket == ticket ? e : NULL;
}

void gw_replay_commit(struct gw_replay *r, const char *source, const unsigned char *key,
                      uint64_t ticket, int64_t expires_ms)
{
    struct entry *e;

    if (!ticket)
        return;
    pthread_mutex_lock(&r->lock);
    e = pending(r, source, key, ticket);
    if (e) {
        e->ticket = 0;
        e->expires_ms = expires_ms;
    }
    /* otherwise evicted meanwhile (budget too small for the traffic): nothing to record */
    pthread_cond_broadcast(&r->done);
    pthread_mutex_unlock(&r->lock);
}

void gw_replay_abort(struct gw_replay *r, const char *source, const unsigned char *key,
                     uint64_t ticket)
{
    struct entry *e;

    if (!ticket)
        return;
    pthread_mutex_lock(&r->lock);
    e = pending(r, source, key, ticket);
    if (e)
        remove_entry(r, e);
    pthread_cond_broadcast(&r->done);
    pthread_mutex_unlock(&r->lock);
}

size_t gw_replay_source_bytes(struct gw_replay *r, const char *source)
{
    struct src_state *s;
    size_t b = 0;

    pthread_mutex_lock(&r->lock);
    for (s = r->sources; s; s = s->next)
        if (strcmp(s->name, source) == 0)
            b = s->bytes;
    pthread_mutex_unlock(&r->lock);
    return b;
}

int gw_replay_key_with_id(const unsigned char *mac_key, const char *id, unsigned char *out)
{
    static const unsigned char sep = 0;
    const void *p[3] = {mac_key, &sep, id};
    size_t len[3] = {HQ_REPLAY_KEY_LEN, 1, strlen(id)};

    return hq_sha256(p, len, 3, out); /* HQ_REPLAY_KEY_LEN is 32, a SHA-256 */
}
