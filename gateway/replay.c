/* replay.c: the gateway's cache of accepted signatures, so an exact replay of an accepted
 * request is answered 202 with the original id and not published again.
 *
 * A chained hash table of at most max_entries; entries also sit on a FIFO list and the oldest
 * is evicted when full. Expired entries are ignored on lookup and reused on eviction. */
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "gw.h"

/* Small on purpose (about 100 bytes with a typical id): the cache holds up to max_entries of
 * them for hours. The source is kept as a 64-bit hash (FNV-1a), the id at its own length. */
struct entry {
    struct entry *hnext;          /* hash chain */
    struct entry *fnext, *fprev;  /* FIFO, oldest at head */
    unsigned char key[HQ_REPLAY_KEY_LEN];
    uint64_t source;
    int64_t expires_ms;
    char id[];
};

struct gw_replay {
    pthread_mutex_t lock;
    struct entry **table;
    size_t nbuckets, n, max;
    struct entry *head, *tail;
};

struct gw_replay *gw_replay_new(size_t max_entries)
{
    struct gw_replay *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->max = max_entries ? max_entries : 1;
    r->nbuckets = 1;
    while (r->nbuckets < r->max)
        r->nbuckets <<= 1;
    r->table = calloc(r->nbuckets, sizeof(*r->table));
    if (!r->table) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void gw_replay_free(struct gw_replay *r)
{
    struct entry *e, *n;

    if (!r)
        return;
    for (e = r->head; e; e = n) {
        n = e->fnext;
        free(e);
    }
    free(r->table);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static uint64_t source_hash(const char *source)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *source; source++)
        h = (h ^ (unsigned char)*source) * 1099511628211ULL;
    return h;
}

static size_t bucket(const struct gw_replay *r, uint64_t source, const unsigned char *key)
{
    uint64_t h;

    /* the key is a SHA-256: its first bytes are already uniform */
    memcpy(&h, key, sizeof(h));
    return (size_t)((h ^ source) & (r->nbuckets - 1));
}

static struct entry **find(struct gw_replay *r, uint64_t source, const unsigned char *key)
{
    struct entry **pp = &r->table[bucket(r, source, key)];

    for (; *pp; pp = &(*pp)->hnext)
        if ((*pp)->source == source && memcmp((*pp)->key, key, HQ_REPLAY_KEY_LEN) == 0)
            return pp;
    return pp;
}

static void unlink_entry(struct gw_replay *r, struct entry *e)
{
    struct entry **pp = find(r, e->source, e->key);

    if (*pp == e)
        *pp = e->hnext;
    if (e->fprev)
        e->fprev->fnext = e->fnext;
    else
        r->head = e->fnext;
    if (e->fnext)
        e->fnext->fprev = e->fprev;
    else
        r->tail = e->fprev;
    r->n--;
}

bool gw_replay_lookup(struct gw_replay *r, const char *source, const unsigned char *key,
                      int64_t now_ms, char *id, size_t idsz)
{
    struct entry *e;
    bool hit = false;

    pthread_mutex_lock(&r->lock);
    e = *find(r, source_hash(source), key);
    if (e && e->expires_ms >= now_ms) {
        snprintf(id, idsz, "%s", e->id);
        hit = true;
    }
    pthread_mutex_unlock(&r->lock);
    return hit;
}

void gw_replay_insert(struct gw_replay *r, const char *source, const unsigned char *key,
                      const char *id, int64_t expires_ms)
{
    uint64_t sh = source_hash(source);
    size_t idlen = strnlen(id, 255);
    struct entry **pp, *e;

    pthread_mutex_lock(&r->lock);
    pp = find(r, sh, key);
    if (*pp) {
        (*pp)->expires_ms = expires_ms;
        goto out;
    }
    if (r->n >= r->max) {
        e = r->head;
        unlink_entry(r, e);
        free(e);
        pp = find(r, sh, key); /* the chain may have changed */
    }
    e = malloc(sizeof(*e) + idlen + 1);
    if (!e)
        goto out;
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, HQ_REPLAY_KEY_LEN);
    e->source = sh;
    memcpy(e->id, id, idlen);
    e->id[idlen] = '\0';
    e->expires_ms = expires_ms;
    *pp = e;
    e->fprev = r->tail;
    if (r->tail)
        r->tail->fnext = e;
    else
        r->head = e;
    r->tail = e;
    r->n++;
out:
    pthread_mutex_unlock(&r->lock);
}
