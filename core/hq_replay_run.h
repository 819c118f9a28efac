/* hq_replay_run: one replay run (docs/replay.md), in-process, used by `hookmq-replay` and by
 * `hookmq-console` (docs/console.md, "Replay"): scan the archive window, filter, rewrite,
 * publish with a window of pipelined publisher confirms, pace with a token bucket, write the
 * checkpoint and the "replayed" lifecycle records, report progress. The broker-free parts
 * (spec, id, key set, checkpoint file, rewrite, token bucket) are hq_replay.h.
 *
 * A run belongs to the thread that calls hq_replay_run(); several runs may go on at once in
 * one process (each has its own connection, checkpoint and lock). */
#ifndef HQ_REPLAY_RUN_H
#define HQ_REPLAY_RUN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hq_archive.h"
#include "hq_config.h"
#include "hq_replay.h"

/* Where a run stands. Counters only grow; the caller gets a copy in on_progress. */
struct hq_replay_progress {
    char id[HQ_REPLAY_ID_LEN + 1]; /* the replay id ("" until known) */
    bool publishing;      /* pass 2 (publishing) has begun */
    double t0;            /* monotonic seconds when publishing began */
    uint64_t scanned;     /* pass 1: archived event records read in the window */
    uint64_t total;       /* selected: distinct (source, id), matching the target's bindings */
    uint64_t earlier;     /* of those, confirmed by an earlier run (the checkpoint) */
    uint64_t dups;        /* archive duplicates collapsed */
    uint64_t skipped_bindings; /* not matching the target consumer's bindings */
    uint64_t extra;       /* archived since pass 1 (pass 2 found them too) */
    uint64_t published, confirmed;
    uint64_t failed;      /* nacked or returned by the broker */
    uint64_t invalid;     /* unsendable archive records skipped */
    size_t in_flight;     /* published, awaiting their confirm */
    bool blocked;         /* the broker blocks publishing (resource alarm) */
};

/* How the caller takes part in a run. Every member may be NULL / 0. */
struct hq_replay_hooks {
    void *arg;               /* passed to the callbacks */
    const char *conn_name;   /* broker connection name (default "hookmq-replay") */
    const char *by;          /* the person asking (the console's user): "by" in the lifecycle
                              * records and the log; NULL for the command line */
    const atomic_int *stop;  /* becomes non-zero: stop, settle what is in flight (up to 10 s),
                              * keep the checkpoint (the run resumes); status HQ_ESHUTDOWN */
    /* --dry-run: each event that would be replayed, in archive order (pass 1). */
    void (*on_match)(void *arg, const struct hq_arec *r);
    /* Called often (per event, and at least every 100 ms while waiting on the broker), and
     * once with final = true when publishing ends. Keep it cheap. */
    void (*on_progress)(void *arg, const struct hq_replay_progress *p, bool final);
    /* One line for people, without a newline. err = false: what hookmq-replay prints on its
     * standard output (the dry-run count, "already completed", the summary); err = true: why
     * it failed, and notices such as a resumed run (hookmq-replay's standard error). */
    void (*on_message)(void *arg, bool err, const char *line);
};

/* Run the replay o describes (o->config is not read: cfg is the loaded config, borrowed)
 * to the end, a stop or a failure. *out (may be NULL) gets the final progress. Returns the
 * status: HQ_OK (also: already completed, nothing to replay, a dry run), HQ_ESHUTDOWN
 * (stopped; resumable), HQ_EINVAL (the target cannot be resolved: unknown consumer, no
 * bindings), HQ_ENOTFOUND (the target queue or exchange is missing on the broker, or it
 * vanished mid-run), HQ_EBLOCKED (this replay is already running: its lock is held), else a
 * runtime failure (broker, I/O, events refused). The reason was given to on_message. */
int hq_replay_run(const struct hq_replay_opts *o, const struct hq_config *cfg,
                  const struct hq_replay_hooks *hooks, struct hq_replay_progress *out);

/* Check that o's target can be resolved against cfg, as a run would first (the consumer
 * exists and has bindings to the events exchange, unless ignore_bindings). HQ_OK with a
 * description of the target in target (e.g. "consumer billing (queue hookmq.billing)"), or
 * HQ_EINVAL / HQ_ENOMEM with the reason in err. Reads no archive, connects to nothing. */
HQ_MUST_CHECK int hq_replay_check_target(const struct hq_replay_opts *o,
                                         const struct hq_config *cfg, char *target,
                                         size_t targetsz, char *err, size_t errsz);

/* The replay id o maps to (as hq_replay_spec + hq_replay_id). HQ_OK or HQ_ENOMEM/HQ_EINVAL. */
HQ_MUST_CHECK int hq_replay_id_of(const struct hq_replay_opts *o, char out[HQ_REPLAY_ID_LEN + 1]);

#endif
