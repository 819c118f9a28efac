/* hookmq-dlx's own interface: the parsed command line (main.c parses it once for every
 * subcommand), the subcommands, and the helpers they share.
 *
 *   main.c      the one argv parser, the per-subcommand help, the one exit-code mapping
 *   topology.c  the topology subcommands: apply, definitions, policies, status
 *   users.c     the users and permissions document of `definitions --users`
 *   scan.c      reading and selecting parked messages: a consumer's DLQ opened on a connection,
 *               the redrive selection, the oldest message, and the terminal formatting
 *   dlq.c       the DLQ subcommands: list, show, redrive, purge, edit
 *
 * Every subcommand returns a status (hq_status.h); main.c's exit_code() maps it (docs/dlq.md,
 * docs/man/hookmq-dlx.1): HQ_OK 0; HQ_EINVAL and HQ_ECONFIG 2 (usage or configuration);
 * HQ_ENOTFOUND (a queue does not exist: always that, never anything else) and HQ_ECONFLICT
 * (topology conflict or drift) 3; every other status 1. */
#ifndef HQ_DLX_H
#define HQ_DLX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hq_amqp.h"
#include "hq_config.h"
#include "hq_consume.h"
#include "hq_dlq.h"
#include "hq_status.h"

#define PROG "hookmq-dlx"
#define DLX_SCAN_CAP 100000u    /* messages read by one list / show / redrive / status */
#define DLX_MAX_HEADERS 64      /* edit --header K=V, at most */

/* The command line, as main.c's parse_args leaves it. Strings borrowed from argv, except the
 * edit headers (freed by main.c). */
struct dlx_opts {
    const char *cmd;            /* the subcommand; NULL for --check alone */
    const char *config;         /* -c FILE */
    const char *name;           /* the consumer NAME of the DLQ subcommands */
    const char *id;             /* show NAME ID, edit NAME ID, redrive --id ID */
    const char *type;           /* redrive --type GLOB */
    const char *password_file;  /* definitions --users --password-file F */
    const char *broker_version; /* definitions / policies --broker-version X.Y */
    const char *body_file;      /* edit --body FILE ("-" standard input) */
    char *keys[DLX_MAX_HEADERS], *vals[DLX_MAX_HEADERS]; /* edit --header K=V */
    size_t n_headers;
    long limit;                 /* --limit N (has_limit) */
    bool has_limit, check, policy_managed, users, json, all, dry_run, yes, reset_steps;
    int broker_major;           /* of --broker-version (or the default) */
};

/* topology.c */
int dlx_apply(const struct hq_config *cfg, const struct dlx_opts *o);
int dlx_definitions(const struct hq_config *cfg, const struct dlx_opts *o); /* and --users */
int dlx_policies(const struct hq_config *cfg, const struct dlx_opts *o);
int dlx_status(const struct hq_config *cfg, const struct dlx_opts *o);
int dlx_check(const struct hq_config *cfg, const struct dlx_opts *o); /* --check */

/* dlq.c */
int dlx_list(const struct hq_config *cfg, const struct dlx_opts *o);
int dlx_show(const struct hq_config *cfg, const struct dlx_opts *o);
int dlx_redrive(const struct hq_config *cfg, const struct dlx_opts *o);
int dlx_purge(const struct hq_config *cfg, const struct dlx_opts *o);
int dlx_edit(const struct hq_config *cfg, const struct dlx_opts *o);

/* scan.c: a consumer's DLQ. */
struct dlx_dlq {
    const struct hq_consumer_cfg *cc;   /* the consumer */
    char dlq[HQ_NAME_MAX + 32];         /* hookmq.NAME.dlq */
    char work[HQ_NAME_MAX + 32];        /* hookmq.NAME */
    struct hq_amqp *c;                  /* after dlx_dlq_open: a connection on which they exist */
    uint32_t depth;                     /* after dlx_dlq_open: the DLQ's ready messages */
};
/* q for the consumer called name: HQ_OK, or HQ_EINVAL after printing the configured
 * consumers (NAME is a consumer name, not a queue name). q can be closed either way. */
int dlx_dlq_name(const struct hq_config *cfg, const char *name, struct dlx_dlq *q);
/* Connect ("hookmq-dlx what") and check that the DLQ (and with work the work queue) exist:
 * HQ_OK; HQ_ENOTFOUND (a queue does not exist), HQ_ECONFIG (a broker URI does not parse) or
 * a runtime status, each after saying why. Close q whatever it returns. */
int dlx_dlq_open(const struct hq_config *cfg, const char *what, bool work, struct dlx_dlq *q);
/* Disconnect q: every message read without an ack goes back to its queue. */
void dlx_dlq_close(struct dlx_dlq *q);
/* Read the DLQ of the consumer called name (at most DLX_SCAN_CAP messages) with fn and put
 * every message back in order (hq_dlq_scan): dlx_dlq_name, dlx_dlq_open, the scan, then
 * dlx_dlq_close, so q is closed on return (its names stay). HQ_OK or the first failure. */
int dlx_dlq_read(const struct hq_config *cfg, const char *name, const char *what,
                 hq_dlq_visit_fn fn, void *ud, struct dlx_dlq *q, size_t *seen, bool *more);
/* A connection named "hookmq-dlx what": HQ_OK, or after saying why HQ_ECONFIG (a broker URI
 * does not parse) or a runtime status (never HQ_ENOTFOUND). */
int dlx_connect(const struct hq_config *cfg, const char *what, struct hq_amqp **c);
/* Close c (NULL-safe): every message read without an ack goes back to its queue. */
void dlx_disconnect(struct hq_amqp *c);

/* scan.c: selecting. Does DLQ message d match redrive's --id, --type or --all? */
bool dlx_selected(const struct dlx_opts *o, const struct hq_delivery *d);
/* The earliest failure time of the messages of dlq (read on c and put back in order; at most
 * DLX_SCAN_CAP): HQ_OK with *min_ms (0 = no message had one) and *seen, or the scan's error. */
int dlx_oldest(struct hq_amqp *c, const char *dlq, int64_t *min_ms, size_t *seen);

/* scan.c: formatting for a terminal. A copy of s (malloc'd; NULL without memory) with control
 * bytes as '?' and at most max code points (0: no limit), then "...". */
char *dlx_term_str(const char *s, size_t max);
size_t dlx_cp_len(const char *s); /* code points of UTF-8 s */
void dlx_fmt_time(int64_t ms, char *out, size_t outsz); /* RFC 3339 UTC, "-" for <= 0 */
void dlx_fmt_age(int64_t ms, char *out, size_t outsz);  /* "3d4h", "2h13m", "5m2s", "45s" */

#endif
