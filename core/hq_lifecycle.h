/* hq_lifecycle: the small record each outcome of an event produces (worker verdicts,
 * redrives, replays), published to the `hookmq.lifecycle` topic exchange with routing key
 * `<consumer>.<verdict>` and archived next to the events, so `hookmq-archive history ID` can
 * show an event's timeline. Emitting is best effort: it never blocks or fails event
 * processing; records that cannot be queued are dropped and counted. */
#ifndef HQ_LIFECYCLE_H
#define HQ_LIFECYCLE_H

#include <stdint.h>
#include "hq_config.h"
#include "hq_event.h"
#include "hq_status.h"

#define HQ_LIFECYCLE_EXCHANGE "hookmq.lifecycle"

enum hq_lc_verdict {
    HQ_LC_PROCESSED = 0,   /* "processed" */
    HQ_LC_RETRY_SCHEDULED, /* "retry_scheduled" (tier set) */
    HQ_LC_DEAD_LETTERED,   /* "dead_lettered" */
    HQ_LC_REDRIVEN,        /* "redriven" */
    HQ_LC_REPLAYED,        /* "replayed" */
    HQ_LC_DEDUPED,         /* "deduped": acked without calling the handler */
    HQ_LC_STEP,            /* "step": a durable step completed in the attempt (step, size) */
    HQ_LC_EDITED,          /* "edit": a parked event edited and sent back (by, error = the
                              diff summary) */
};

const char *hq_lc_verdict_name(enum hq_lc_verdict v);

/* Borrowed strings; error is cut to 1 KiB. */
struct hq_lc_record {
    const char *source;
    const char *id;
    const char *consumer;
    uint32_t attempt;
    enum hq_lc_verdict verdict;
    const char *tier;  /* retry_scheduled: e.g. "10s"; else NULL */
    const char *error; /* last error text or NULL */
    int64_t at_ms;     /* when it happened */
    const char *step;  /* step: the step's name (never its content); else NULL */
    int64_t size;      /* step: the bytes of its result */
    /* who did it, for actions of a person (the console's user, or the OS user of hookmq-dlx);
     * NULL for the programs' own outcomes. Encoded as "by" when set. */
    const char *by;
};

/* The message for r: JSON body {"source","id","consumer","attempt","verdict","tier","error",
 * "at"} ("by" before "at" when r->by is set; a step record adds "step" and "size"),
 * content_type application/json, routing key <consumer>.<verdict>, headers
 * hookmq-source, hookmq-event-id, hookmq-consumer, hookmq-verdict. */
HQ_MUST_CHECK int hq_lc_encode(const struct hq_lc_record *r, struct hq_msg *out);

/* One message for n >= 2 records encoded by hq_lc_encode with the same routing key
 * (the emitter batches records queued back to back). Body: their JSON bodies, one per line
 * ('\n' between them, none at the end); content_type application/x-ndjson; routing key and
 * timestamp of the first; headers hookmq-consumer, hookmq-verdict and hookmq-records (n); a
 * new message_id. No hookmq-source / hookmq-event-id: the records name their own. recs are
 * borrowed. HQ_EINVAL for n < 2, differing routing keys or a body with a newline. */
HQ_MUST_CHECK int hq_lc_batch(const struct hq_msg *recs, size_t n, struct hq_msg *out);

/* Parse a lifecycle body (as hq_lc_encode writes it; strict JSON). Missing
 * members stay NULL / 0; HQ_EINVAL when it is not a JSON object with a "verdict" string.
 * Strings owned; free with hq_lc_parsed_free(). */
struct hq_lc_parsed {
    char *source, *id, *consumer, *verdict, *tier, *error;
    char *by; /* addition: "by", NULL when absent */
    uint32_t attempt;
    int64_t at_ms;
    char *step;   /* step records: the step's name */
    int64_t size; /* step records: its size in bytes */
};
HQ_MUST_CHECK int hq_lc_parse(const unsigned char *body, size_t n, struct hq_lc_parsed *out);
void hq_lc_parsed_free(struct hq_lc_parsed *p); /* NULL-safe; leaves *p zeroed */

struct hq_lc_emitter;

/* A background publisher (its own broker connection) with a bounded queue of capacity
 * records. Caller stops it with hq_lc_stop(). */
HQ_MUST_CHECK int hq_lc_start(const struct hq_broker_cfg *broker, const char *conn_name,
                              size_t capacity, struct hq_lc_emitter **out);
/* Queue r; never blocks. NULL-safe (no emitter: nothing happens). */
void hq_lc_emit(struct hq_lc_emitter *e, const struct hq_lc_record *r);
uint64_t hq_lc_dropped(struct hq_lc_emitter *e);

/* The emitter's counters. dropped: ring full, encoding failed, refused by the
 * broker (nack / unroutable) or left at stop; unconfirmed: published without a confirm
 * within the deadline (it may still have arrived). Thread-safe; NULL-safe (zeros). */
struct hq_lc_stats {
    uint64_t queued, published, dropped, unconfirmed;
};
void hq_lc_get_stats(struct hq_lc_emitter *e, struct hq_lc_stats *st);
/* Publish what is queued (up to drain_ms), then stop. NULL-safe. */
void hq_lc_stop(struct hq_lc_emitter *e, int drain_ms);

#endif
