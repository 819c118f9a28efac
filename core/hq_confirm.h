/* hq_confirm: the window of one publisher-confirm channel. It maps the delivery tags the
 * broker acknowledges (basic.ack / basic.nack, single or `multiple`) to the caller's entries in
 * flight, finds an entry a basic.return names (returns carry no tag), and hands back what is
 * unsettled when the channel is lost. The publisher pool (pub.c) and a replay run
 * (replay_run.c) each keep one per channel.
 *
 * Tags: after confirm.select the broker numbers a channel's publishes 1, 2, 3, ...; the window
 * numbers its entries the same way, so the caller checks that the tag its publish got is
 * hq_confirm_next_tag() before it adds the entry. Unsettled tags lie in [lo, next); an entry
 * settled out of order leaves a hole that still takes its place in the ring until every lower
 * tag is settled, so a window of cap places holds at most cap tags from the lowest unsettled
 * one.
 *
 * Entries are the caller's (non-NULL pointers): the window stores them, never frees or reads
 * them. Not thread-safe: one owner at a time (the caller's lock, or one thread). Nothing is
 * allocated after hq_confirm_init(): adding, settling, finding and releasing only index the
 * ring. */
#ifndef HQ_CONFIRM_H
#define HQ_CONFIRM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq_status.h"

#define HQ_CONFIRM_MAX (1u << 20) /* places in a window at the most */

/* Members are private: use the functions. A zeroed struct is a valid, empty window of no
 * places (hq_confirm_free and hq_confirm_release accept it). */
struct hq_confirm {
    void **ring;        /* owned; the entry of tag t at ring[t % cap], NULL when none */
    size_t cap;         /* places */
    size_t outstanding; /* entries not settled */
    uint64_t lo, next;  /* unsettled tags lie in [lo, next); ring[lo % cap] is set unless empty */
};

/* Called once per entry that a confirm settles, in tag order; ack false for a nack. The entry
 * has left the window already: fn may free it. fn must not call into the window. */
typedef void (*hq_confirm_fn)(void *arg, void *entry, uint64_t tag, bool ack);
/* Called once per entry hq_confirm_release() hands back (it has left the window). */
typedef void (*hq_confirm_drop_fn)(void *arg, void *entry, uint64_t tag);
/* True for the entry being looked for (key as passed to hq_confirm_find). */
typedef bool (*hq_confirm_match_fn)(const void *entry, const void *key);

/* An empty window of cap places (1..HQ_CONFIRM_MAX) whose first tag is 1. HQ_OK, HQ_EINVAL (cap
 * out of range), HQ_ENOMEM. Free with hq_confirm_free(). */
HQ_MUST_CHECK int hq_confirm_init(struct hq_confirm *w, size_t cap);
/* Free the ring, leaving w zeroed. Entries still held are not touched (release them first).
 * NULL-safe. */
void hq_confirm_free(struct hq_confirm *w);

/* A new channel in confirm mode: its first tag is 1 again. HQ_OK, or HQ_EINVAL when w still
 * holds entries (release them first; w is then unchanged). */
int hq_confirm_reset(struct hq_confirm *w);

/* Add entry (not NULL, borrowed until it is settled or released) under the next tag, which goes
 * to *tag (may be NULL). HQ_OK, HQ_EFULL (no place: see hq_confirm_room), HQ_EINVAL (no entry). */
HQ_MUST_CHECK int hq_confirm_add(struct hq_confirm *w, void *entry, uint64_t *tag);

/* Settle tag (multiple: every unsettled tag up to it as well) with the broker's ack or nack:
 * each entry leaves the window and fn(arg, entry, tag, ack) is called for it, lowest tag first.
 * A tag never issued (0, or from next_tag on) settles nothing, even with multiple; one already
 * settled settles nothing more. Returns the number of entries settled. */
size_t hq_confirm_settle(struct hq_confirm *w, uint64_t tag, bool multiple, bool ack,
                         hq_confirm_fn fn, void *arg);

/* The unsettled entry with the lowest tag for which match(entry, key) is true (its tag to *tag,
 * which may be NULL), or NULL. The entry stays in the window. */
void *hq_confirm_find(const struct hq_confirm *w, hq_confirm_match_fn match, const void *key,
                      uint64_t *tag);

/* The channel is lost: every unsettled entry leaves the window and fn(arg, entry, tag) is
 * called for it, highest tag first (a caller that pushes each at the head of a FIFO keeps them
 * in publish order). The window is then empty; tags go on from next_tag until
 * hq_confirm_reset(). fn may be NULL. Returns the number of entries released. */
size_t hq_confirm_release(struct hq_confirm *w, hq_confirm_drop_fn fn, void *arg);

/* The tag the next hq_confirm_add() assigns. */
uint64_t hq_confirm_next_tag(const struct hq_confirm *w);
/* Entries not settled. */
size_t hq_confirm_outstanding(const struct hq_confirm *w);
/* How many entries may be added now: cap minus the tags from the lowest unsettled one. */
size_t hq_confirm_room(const struct hq_confirm *w);
/* No room (hq_confirm_room() == 0). */
bool hq_confirm_full(const struct hq_confirm *w);
/* Nothing outstanding. */
bool hq_confirm_empty(const struct hq_confirm *w);

#endif
