/* hq_replay: the broker-free logic of a replay (docs/replay.md), kept here so the unit tests
 * can reach it: AMQP topic matching, what a replay was asked to do and its normalization, the
 * replay id, event keys and a key set, the checkpoint file, the message rewrite and a token
 * bucket. A whole run (scans, publishing with pipelined confirms, progress) is
 * hq_replay_run.h, used by hookmq-replay and hookmq-console; hookmq-replay's command line is
 * replay/replay_args.h.
 *
 * Nothing here is thread-safe unless said otherwise; each object belongs to one thread. */
#ifndef HQ_REPLAY_H
#define HQ_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq_status.h"
#include "hq_buf.h"
#include "hq_event.h"

/* ================================================================ topic matching */

/* Does routing_key match the binding pattern the way RabbitMQ's topic exchange decides it?
 * Both are split on '.' into words ("" is zero words, "a..b" has an empty middle word, "a."
 * ends with an empty word); a pattern word that is exactly "*" matches exactly one word
 * (which may be empty), exactly "#" matches zero or more words, anything else (also "a*",
 * "#a") matches only the same bytes. NULL never matches. Runs in O(words^2) without
 * recursion. */
bool hq_topic_match(const char *pattern, const char *routing_key);

/* ================================================================ what to replay */

enum hq_replay_target {
    HQ_REPLAY_TARGET_NONE = 0,
    HQ_REPLAY_TARGET_CONSUMER, /* --to-consumer NAME: exchange "", routing key hookmq.NAME */
    HQ_REPLAY_TARGET_EXCHANGE, /* --to-exchange: broker.exchange with the original routing key */
};

#define HQ_REPLAY_WINDOW_DEFAULT 256   /* publishes in flight (unconfirmed) */
#define HQ_REPLAY_WINDOW_MAX 4096
#define HQ_REPLAY_RATE_MAX 1000000.0   /* --rate upper bound (events per second) */
#define HQ_REPLAY_ARG_MAX 4096         /* longest accepted option value (bytes) */

/* What a replay was asked to do (hookmq-replay's command line, or the console's request).
 * Strings are borrowed (from argv, or the caller's copies). */
struct hq_replay_opts {
    const char *config;                /* -c / --config, NULL = default path */
    const char *from_text, *to_text;   /* --from / --to as given, NULL when unset */
    int64_t from_ms, to_ms;            /* resolved [from, to); INT64_MIN / INT64_MAX unset */
    bool from_relative, to_relative;   /* given relative to now ("-2h", "now") */
    const char *source;                /* --source (exact), NULL = any */
    const char *type_glob;             /* --type (fnmatch on hookmq-event-type) */
    const char *id;                    /* --id (exact event id) */
    const char *grep;                  /* --grep (body substring) */
    enum hq_replay_target target;
    const char *consumer;              /* --to-consumer NAME */
    bool ignore_bindings;              /* --ignore-bindings */
    double rate;                       /* --rate, events per second; 0 = unlimited */
    int window;                        /* --window, default HQ_REPLAY_WINDOW_DEFAULT */
    bool dry_run, restart, quiet, no_lifecycle;
    const char *checkpoint_dir;        /* --checkpoint-dir, NULL = archive.dir/.replay */
    bool help, version;                /* -h/--help, -V/--version: nothing else is checked */
};

/* Zero *o, then the defaults: no window (INT64_MIN, INT64_MAX), window HQ_REPLAY_WINDOW_DEFAULT. */
void hq_replay_opts_init(struct hq_replay_opts *o);

/* Set the window's start (to = false) or end (to = true) from text, RFC 3339 or relative to
 * now_ms (hq_time_parse); text is kept (borrowed) for the spec, relative ("-2h", "now") or
 * not. HQ_OK, or HQ_EINVAL when text is not a time. */
HQ_MUST_CHECK int hq_replay_set_time(struct hq_replay_opts *o, bool to, const char *text,
                                     int64_t now_ms);

/* A replay asked for in the console (docs/console.md, "Replay"): the JSON body of POST
 * /api/replays, {"consumer", "from", "to", "source", "type", "id", "grep", "rate",
 * "dry_run", "ignore_bindings", "restart"}. o targets the consumer (HQ_REPLAY_TARGET_CONSUMER)
 * and points into the strings, which are owned: free with hq_replay_req_free(). */
struct hq_replay_req {
    struct hq_replay_opts o;
    char *consumer, *from, *to, *source, *type, *id, *grep;
};

/* Parse a request (strict JSON; strings 1..HQ_REPLAY_ARG_MAX bytes) with the rules of
 * hookmq-replay's command line: consumer required (a name), from or id required (an unbounded
 * replay is refused), from before to, source a name, rate a number from 0 (unlimited) to
 * HQ_REPLAY_RATE_MAX, the booleans true or false, nothing else. HQ_OK; HQ_EINVAL with a
 * one-line reason in err; HQ_ENOMEM. core/replay_req.c */
HQ_MUST_CHECK int hq_replay_req_parse(const char *json, size_t n, int64_t now_ms,
                                      struct hq_replay_req *out, char *err, size_t errsz);
void hq_replay_req_free(struct hq_replay_req *r); /* NULL-safe; leaves *r zeroed */

/* The normalized description of a replay (what it selects and where it goes), from which
 * the replay id is derived: version, window (absolute times as ms; relative ones as their
 * text, so re-running the same command maps to the same replay), each filter
 * (length-prefixed), target and ignore_bindings. --rate, --window, --dry-run, --quiet and
 * the config path are not part of it. Appended to out. */
HQ_MUST_CHECK int hq_replay_spec(const struct hq_replay_opts *o, struct hq_buf *out);

#define HQ_REPLAY_ID_LEN 20 /* "rpl-" + 16 hex digits */

/* The replay id for a spec: "rpl-" + the first 8 bytes of SHA-256(spec) in hex, into
 * out[HQ_REPLAY_ID_LEN + 1]. The full digest (64 hex + NUL) goes to full65 when not NULL. */
void hq_replay_id(const unsigned char *spec, size_t n, char out[HQ_REPLAY_ID_LEN + 1],
                  char *full65);

/* ================================================================ event keys */

/* An event's identity (source, id) as the first 16 bytes of SHA-256(source NUL id). */
struct hq_rkey {
    unsigned char b[16];
};

void hq_replay_key(const char *source, const char *id, struct hq_rkey *out);

/* A growable open-addressing set of keys, each with a small flag byte (bits chosen by the
 * caller, never 0 for a stored key). */
struct hq_rset;

HQ_MUST_CHECK int hq_rset_new(struct hq_rset **out); /* caller frees with hq_rset_free() */
void hq_rset_free(struct hq_rset *s);                /* NULL-safe */
/* flags |= add for k (inserted when new; add must not be 0). *old (may be NULL) gets the
 * flags before. HQ_OK or HQ_ENOMEM. */
HQ_MUST_CHECK int hq_rset_add(struct hq_rset *s, const struct hq_rkey *k, unsigned char add,
                              unsigned char *old);
/* The flags of k, 0 when absent. */
unsigned char hq_rset_get(const struct hq_rset *s, const struct hq_rkey *k);
size_t hq_rset_count(const struct hq_rset *s);

/* ================================================================ checkpoint */

/* The checkpoint of one replay: a text file archive.dir/.replay/<replay-id>.ckpt
 *
 *   hookmq-replay checkpoint 1
 *   id rpl-0123456789abcdef
 *   spec <64 hex: SHA-256 of the normalized spec>
 *   window <from_ms> <to_ms>                 (the window as resolved when the replay began)
 *   started <ms>
 *   about <JSON string: the command's filters and target, for people>
 *   c <32 hex>                               one per confirmed event (any order), appended
 *   ...
 *   done <events> <ms>                       the replay completed
 *
 * The header is written to a temporary file, fsync'd and renamed; confirmed keys are appended
 * with write(2) as their confirms arrive (so a killed process loses none of them) and
 * fdatasync'd every HQ_RCKPT_SYNC_EVERY keys, every HQ_RCKPT_SYNC_MS and at the end. A torn
 * last line (crash mid-write) is ignored when loading. */
#define HQ_RCKPT_SYNC_EVERY 4096
#define HQ_RCKPT_SYNC_MS 1000

struct hq_rckpt_info {
    char id[HQ_REPLAY_ID_LEN + 1];
    char spec_sha[65];
    int64_t from_ms, to_ms;
    int64_t started_ms;
    bool done;
    uint64_t done_events;
    int64_t done_ms;
    uint64_t confirmed; /* "c" lines loaded */
    uint64_t torn;      /* lines ignored (torn or unknown) */
};

/* Read the checkpoint at path: header into *info, each confirmed key into set with flag
 * (set may be NULL to read the header only). HQ_ENOTFOUND when there is none, HQ_EINVAL
 * when the file is not a checkpoint (bad header), HQ_EIO, HQ_ENOMEM. */
HQ_MUST_CHECK int hq_rckpt_load(const char *path, struct hq_rckpt_info *info, struct hq_rset *set,
                                unsigned char flag);

struct hq_rckpt;

/* Write a new checkpoint (replacing any) with info's header (id, spec_sha, window, started)
 * and `about` (may be NULL), then open it for appending. dir is created when missing.
 * Caller closes with hq_rckpt_close(). */
HQ_MUST_CHECK int hq_rckpt_create(const char *path, const struct hq_rckpt_info *info,
                                  const char *about, struct hq_rckpt **out);
/* Open an existing checkpoint for appending (after hq_rckpt_load). A torn last line is
 * terminated first so the next record starts on its own line. */
HQ_MUST_CHECK int hq_rckpt_open(const char *path, struct hq_rckpt **out);
/* Buffer one confirmed key. */
HQ_MUST_CHECK int hq_rckpt_add(struct hq_rckpt *c, const struct hq_rkey *k);
/* write(2) what is buffered; fdatasync when sync, or when HQ_RCKPT_SYNC_EVERY keys or
 * HQ_RCKPT_SYNC_MS (mono clock now_ms) have passed since the last one. HQ_OK or HQ_EIO. */
HQ_MUST_CHECK int hq_rckpt_flush(struct hq_rckpt *c, bool sync, int64_t now_ms);
/* Append "done <events> <at_ms>" and fsync. */
HQ_MUST_CHECK int hq_rckpt_mark_done(struct hq_rckpt *c, uint64_t events, int64_t at_ms);
/* Flush, fdatasync, close, free. NULL-safe; returns HQ_EIO when the final sync failed. */
int hq_rckpt_close(struct hq_rckpt *c);

/* Take an exclusive, non-blocking lock on path (created if missing): one run per replay id.
 * HQ_OK with *fd (close it to release), HQ_EBLOCKED when another process holds it, HQ_EIO. */
HQ_MUST_CHECK int hq_rckpt_lock(const char *path, int *fd);

/* ================================================================ the copy */

/* Turn the message rebuilt from the archive into the replayed copy, in place: drop the
 * broker-owned headers (hq_header_broker_owned), any previous hookmq-replay-id /
 * hookmq-replayed-at and any durable steps (hookmq-steps: a replay starts fresh), add hookmq-replay-id = replay_id and hookmq-replayed-at = now_ms
 * (long), and when reset_attempt set hookmq-attempt = 1 (long; replacing any). Everything
 * else (message id, content type, timestamp, body, other headers and their order) stays.
 * HQ_OK or HQ_ENOMEM. */
HQ_MUST_CHECK int hq_replay_prepare_msg(struct hq_msg *m, const char *replay_id, int64_t now_ms,
                                        bool reset_attempt);

/* ================================================================ rate */

/* A token bucket: rate tokens per second, at most burst saved up. rate <= 0: unlimited. */
struct hq_tbucket {
    double rate, burst, tokens, last_s;
};

void hq_tbucket_init(struct hq_tbucket *b, double rate, double burst, double now_s);
/* Take one token: 0 when taken, else the seconds until one is available (nothing taken). */
double hq_tbucket_take(struct hq_tbucket *b, double now_s);

/* ================================================================ bursts */

struct hq_amqp;

/* TCP_CORK on c's socket: on before a burst of publishes, off after it, so the burst leaves
 * in full-sized segments (fewer packets for the broker to read) instead of one small segment
 * per frame. Best effort (ignored when the socket cannot do it). c: borrowed, its thread. */
void hq_replay_cork(struct hq_amqp *c, bool on);

#endif
