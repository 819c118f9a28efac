/* confirm: the window of a publisher-confirm channel, delivery tag -> entry (hq_confirm.h). */
#include <stdlib.h>
#include <string.h>

#include "hq_confirm.h"

static void **place(const struct hq_confirm *w, uint64_t tag)
{
    return &w->ring[tag % (uint64_t)w->cap];
}

/* Take the entry of tag out of its place (NULL when there is none). */
static void *take(struct hq_confirm *w, uint64_t tag)
{
    void **p = place(w, tag);
    void *entry = *p;

    if (entry) {
        *p = NULL;
        w->outstanding--;
    }
    return entry;
}

int hq_confirm_init(struct hq_confirm *w, size_t cap)
{
    if (!w)
        return HQ_EINVAL;
    memset(w, 0, sizeof(*w));
    if (cap < 1 || cap > HQ_CONFIRM_MAX)
        return HQ_EINVAL;
    w->ring = calloc(cap, sizeof(*w->ring));
    if (!w->ring)
        return HQ_ENOMEM;
    w->cap = cap;
    w->lo = w->next = 1;
    return HQ_OK;
}

void hq_confirm_free(struct hq_confirm *w)
{
    if (!w)
        return;
    free(w->ring);
    memset(w, 0, sizeof(*w));
}

int hq_confirm_reset(struct hq_confirm *w)
{
    if (!w || w->outstanding)
        return HQ_EINVAL;
    w->lo = w->next = 1;
    return HQ_OK;
}

int hq_confirm_add(struct hq_confirm *w, void *entry, uint64_t *tag)
{
    if (!w || !entry)
        return HQ_EINVAL;
    if (hq_confirm_full(w))
        return HQ_EFULL;
    *place(w, w->next) = entry;
    w->outstanding++;
    if (tag)
        *tag = w->next;
    w->next++;
    return HQ_OK;
}

size_t hq_confirm_settle(struct hq_confirm *w, uint64_t tag, bool multiple, bool ack,
                         hq_confirm_fn fn, void *arg)
{
    uint64_t t;
    size_t n = 0;

    if (!w || tag < w->lo || tag >= w->next)
        return 0; /* never issued, or settled with everything below lo */
    for (t = multiple ? w->lo : tag; t <= tag; t++) {
        void *entry = take(w, t);

        if (!entry)
            continue; /* settled out of order before */
        n++;
        if (fn)
            fn(arg, entry, t, ack);
    }
    while (w->lo < w->next && !*place(w, w->lo))
        w->lo++;
    return n;
}

void *hq_confirm_find(const struct hq_confirm *w, hq_confirm_match_fn match, const void *key,
                      uint64_t *tag)
{
    uint64_t t;

    if (!w || !match)
        return NULL;
    for (t = w->lo; t < w->next; t++) {
        void *entry = *place(w, t);

        if (entry && match(entry, key)) {
            if (tag)
                *tag = t;
            return entry;
        }
    }
    return NULL;
}

size_t hq_confirm_release(struct hq_confirm *w, hq_confirm_drop_fn fn, void *arg)
{
    uint64_t t;
    size_t n = 0;

    if (!w)
        return 0;
    for (t = w->next; t > w->lo; t--) {
        void *entry = take(w, t - 1);

        if (!entry)
            continue;
        n++;
        if (fn)
            fn(arg, entry, t - 1);
    }
    w->lo = w->next;
    return n;
}

uint64_t hq_confirm_next_tag(const struct hq_confirm *w)
{
    return w->next;
}

size_t hq_confirm_outstanding(const struct hq_confirm *w)
{
    return w->outstanding;
}

size_t hq_confirm_room(const struct hq_confirm *w)
{
    uint64_t span = w->next - w->lo;

    return span >= w->cap ? 0 : w->cap - (size_t)span;
}

bool hq_confirm_full(const struct hq_confirm *w)
{
    return hq_confirm_room(w) == 0;
}

bool hq_confirm_empty(const struct hq_confirm *w)
{
    return w->outstanding == 0;
}
