/* dlq: hookmq-dlx list | show | redrive | purge | status (see dlq.h and docs/dlq.md).
 *
 * Reading a DLQ never consumes or reorders it: every message is fetched with basic.get
 * without an ack and then returned with one basic.nack (requeue) each, oldest first (see
 * hq_dlq_scan: closing the connection would return them too, but a quorum queue re-enqueues
 * a closed channel's messages in no particular order). Redrive acks only the messages it
 * moved, each after the broker confirmed the copy in the work queue; the others go back the
 * same way.
 *
 * exit_for() is the one mapping from a status to an exit code here. */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlq.h"
#include "hq_amqp.h"
#include "hq_buf.h"
#include "hq_codec.h"
#include "hq_config.h"
#include "hq_consume.h"
#include "hq_dlq.h"
#include "hq_json.h"
#include "hq_lifecycle.h"
#include "hq_log.h"
#include "hq_status.h"
#include "hq_time.h"
#include "hq_topology.h"
#include "hq_utf8.h"

#define PROG "hookmq-dlx"
#define SCAN_CAP 100000u        /* messages read by one list / show / redrive */
#define CONNECT_TIMEOUT_MS 10000
#define CONFIRM_TIMEOUT_MS 10000
#define ERR_COL_MAX 100         /* last error column of the table */

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_TOPOLOGY = 3 };

/* HQ_ENOTFOUND here always means a missing queue (topology); usage errors are HQ_EINVAL. */
static int exit_for(int status)
{
    switch (status) {
    case HQ_OK: return EXIT_OK;
    case HQ_EINVAL:
    case HQ_ECONFIG: return EXIT_USAGE;
    case HQ_ENOTFOUND:
    case HQ_ECONFLICT: return EXIT_TOPOLOGY;
    default: return EXIT_RUNTIME;
    }
}

/* ---------------------------------------------------------------- usage */

void hq_dlx_dlq_usage(FILE *f)
{
    fprintf(f,
            "  status [--policy-managed]       per consumer: queue depths, consumers, DLQ depth,\n"
            "                                  oldest DLQ message, drift from the config (exit 3)\n"
            "  list NAME [--json] [--limit N]  the messages in hookmq.NAME.dlq (nothing consumed)\n"
            "  show NAME ID [--json]           headers and body of the DLQ message with that id\n"
            "  redrive NAME (--id ID | --type GLOB | --all) [--limit N] [--dry-run] [--reset-steps]\n"
            "                                  move DLQ messages back to hookmq.NAME (attempt 1)\n"
            "  purge NAME --yes                delete every message in hookmq.NAME.dlq\n");
}

static const char *const cmd_help[][2] = {
    {"status",
     "usage: " PROG " status [-c FILE] [--policy-managed]\n"
     "\n"
     "For every consumer of the config: the depth (ready messages) and attached consumers of\n"
     "its work queue hookmq.NAME, the depth of each retry queue hookmq.NAME.retry.<delay>, the\n"
     "depth of its DLQ hookmq.NAME.dlq and the age of the oldest DLQ message (peeked and\n"
     "returned, never consumed); then the shared exchanges and queues. Each queue and exchange\n"
     "is checked against the config: missing, or drift (declared with other arguments, found by\n"
     "declaring it again with the expected ones: the broker's refusal is shown).\n"
     "\n"
     "  --policy-managed   the topology was applied with --policy-managed: do not expect\n"
     "                     the x-arguments that policies set\n"
     "\n"
     "Exit status: 0 everything present and as configured, 1 broker unreachable, 2 usage or\n"
     "configuration error, 3 a queue or exchange is missing or differs from the config.\n"},
    {"list",
     "usage: " PROG " list NAME [-c FILE] [--json] [--limit N]\n"
     "\n"
     "Every message in hookmq.NAME.dlq, oldest first: event id, type, source, attempts, last\n"
     "error, failed-at (RFC 3339 UTC) and how many times it was redriven. Messages the broker\n"
     "dead-lettered itself (a handler that crashed on every delivery) show the x-death reason.\n"
     "Nothing is consumed or reordered: messages are read without an ack and returned.\n"
     "\n"
     "  --json      one JSON object per message and line instead of a table\n"
     "  --limit N   read at most N messages (default and maximum 100000)\n"
     "\n"
     "NAME is a consumer name from the config. Exit status: 0 ok, 1 runtime failure, 2 usage\n"
     "or configuration error (unknown consumer), 3 the DLQ does not exist (run apply).\n"},
    {"show",
     "usage: " PROG " show NAME ID [-c FILE] [--json]\n"
     "\n"
     "The properties, every header (sorted; x-death decoded) and the body of the first message\n"
     "in hookmq.NAME.dlq whose message id is ID. The body is printed as text when it is valid\n"
     "UTF-8, else in base64. Nothing is consumed or reordered.\n"
     "\n"
     "  --json   one JSON object (\"body\" for UTF-8, else \"body_b64\")\n"
     "\n"
     "Exit status: 0 shown, 1 no such message (or runtime failure), 2 usage or configuration\n"
     "error, 3 the DLQ does not exist.\n"},
    {"redrive",
     "usage: " PROG " redrive NAME (--id ID | --type GLOB | --all) [--limit N] [--dry-run]\n"
     "       [--reset-steps]\n"
     "\n"
     "Move messages of hookmq.NAME.dlq back to the work queue hookmq.NAME: each is republished\n"
     "with hookmq-attempt = 1 and hookmq-redriven + 1, without the failure headers\n"
     "(hookmq-consumer, -attempts, -last-error, -failed-at) and without the broker's (x-death,\n"
     "x-delivery-count, ...), and acked in the DLQ only after the broker confirmed the copy.\n"
     "Messages that do not match stay in the DLQ, in order. At most the messages present at\n"
     "the start are looked at, so events that fail again are not redriven twice in one run.\n"
     "\n"
     "  --id ID       messages whose event id (message_id) is ID\n"
     "  --type GLOB   messages whose hookmq-event-type matches GLOB (fnmatch: * ? [...])\n"
     "  --all         every message\n"
     "  --limit N     redrive at most N messages\n"
     "  --dry-run     only print what would be redriven\n"
     "  --reset-steps drop the event's saved durable steps (hookmq-steps), so every step runs\n"
     "                again; by default they are kept (docs/consumers.md, \"Durable steps\")\n"
     "\n"
     "Exit status: 0 ok (also when nothing matched), 1 runtime failure (the message being\n"
     "redriven stays in the DLQ), 2 usage or configuration error, 3 a queue does not exist.\n"},
    {"purge",
     "usage: " PROG " purge NAME --yes [-c FILE]\n"
     "\n"
     "Delete every (ready) message in hookmq.NAME.dlq. Refuses without --yes (exit 2).\n"
     "Consider `" PROG " list NAME --json > saved.jsonl` first.\n"},
};

static const char *help_for(const char *cmd)
{
    size_t i;

    for (i = 0; i < sizeof(cmd_help) / sizeof(cmd_help[0]); i++)
        if (strcmp(cmd_help[i][0], cmd) == 0)
            return cmd_help[i][1];
    return NULL;
}

/* ---------------------------------------------------------------- arguments */

struct dopts {
    const char *cmd;
    const char *config;
    const char *pos[4]; /* positionals after the subcommand */
    int npos;
    const char *id;
    const char *type;
    bool all, dry_run, yes, json, help, policy_managed, has_limit, reset_steps;
    long limit;
};

static int need_value(int argc, char **argv, int *i, const char **out)
{
    const char *a = argv[*i];
    const char *eq = strchr(a, '=');

    if (strncmp(a, "--", 2) == 0 && eq) {
        *out = eq + 1;
        return HQ_OK;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, PROG ": %s needs a value\n", a);
        return HQ_EINVAL;
    }
    *out = argv[++*i];
    return HQ_OK;
}

static bool opt_is(const char *a, const char *name)
{
    size_t n = strlen(name);

    return strncmp(a, name, n) == 0 && (a[n] == '\0' || a[n] == '=');
}

static int parse(int argc, char **argv, struct dopts *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = true;
        } else if (strcmp(a, "-c") == 0 || opt_is(a, "--config")) {
            if (need_value(argc, argv, &i, &o->config) != HQ_OK)
                return HQ_EINVAL;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--all") == 0) {
            o->all = true;
        } else if (strcmp(a, "--dry-run") == 0) {
            o->dry_run = true;
        } else if (strcmp(a, "--reset-steps") == 0) {
            o->reset_steps = true;
        } else if (strcmp(a, "--yes") == 0) {
            o->yes = true;
        } else if (strcmp(a, "--policy-managed") == 0) {
            o->policy_managed = true;
        } else if (opt_is(a, "--id")) {
            if (need_value(argc, argv, &i, &o->id) != HQ_OK)
                return HQ_EINVAL;
        } else if (opt_is(a, "--type")) {
            if (need_value(argc, argv, &i, &o->type) != HQ_OK)
                return HQ_EINVAL;
        } else if (opt_is(a, "--limit")) {
            char *end;

            if (need_value(argc, argv, &i, &v) != HQ_OK)
                return HQ_EINVAL;
            errno = 0;
            o->limit = strtol(v, &end, 10);
            if (errno || end == v || *end != '\0' || o->limit < 1 || o->limit > 1000000000L) {
                fprintf(stderr, PROG ": --limit takes a number from 1 to 1000000000, not '%s'\n",
                        v);
                return HQ_EINVAL;
            }
            o->has_limit = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, PROG ": unknown option %s\n", a);
            return HQ_EINVAL;
        } else if (!o->cmd) {
            o->cmd = a;
        } else if (o->npos < 4) {
            o->pos[o->npos++] = a;
        } else {
            fprintf(stderr, PROG ": unexpected argument %s\n", a);
            return HQ_EINVAL;
        }
    }
    return HQ_OK;
}

/* Options that do not belong to cmd are errors, not silently ignored. */
static int check_opts(const struct dopts *o)
{
    const char *c = o->cmd;
    bool red = strcmp(c, "redrive") == 0;
    int want = strcmp(c, "status") == 0 ? 0 : strcmp(c, "show") == 0 ? 2 : 1;
    const char *bad = NULL;

    if ((o->id || o->type || o->all || o->dry_run || o->reset_steps) && !red)
        bad = o->id ? "--id" : o->type ? "--type" : o->all ? "--all" : o->dry_run ? "--dry-run"
                                                                                  : "--reset-steps";
    else if (o->has_limit && !red && strcmp(c, "list") != 0)
        bad = "--limit";
    else if (o->yes && strcmp(c, "purge") != 0)
        bad = "--yes";
    else if (o->json && strcmp(c, "list") != 0 && strcmp(c, "show") != 0)
        bad = "--json";
    else if (o->policy_managed && strcmp(c, "status") != 0)
        bad = "--policy-managed";
    if (bad) {
        fprintf(stderr, PROG ": %s does not go with %s (see " PROG " %s --help)\n", bad, c, c);
        return HQ_EINVAL;
    }
    if (o->npos != want) {
        fprintf(stderr, PROG ": %s takes %s (see " PROG " %s --help)\n", c,
                want == 0 ? "no NAME" : want == 1 ? "a consumer NAME" : "a consumer NAME and an ID",
                c);
        return HQ_EINVAL;
    }
    if (red && (o->id != NULL) + (o->type != NULL) + (o->all ? 1 : 0) != 1) {
        fprintf(stderr, PROG ": redrive needs exactly one of --id ID, --type GLOB, --all\n");
        return HQ_EINVAL;
    }
    return HQ_OK;
}

/* ---------------------------------------------------------------- helpers */

static int load_config(const struct dopts *o, struct hq_config **cfg)
{
    char err[1024];
    int rc;

    rc = hq_config_load(hq_config_default_path(o->config), cfg, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, "%s\n", err);
        return rc == HQ_ENOMEM ? rc : HQ_ECONFIG;
    }
    hq_log_setup(PROG, (*cfg)->log_level < HQ_LOG_WARN ? (*cfg)->log_level : HQ_LOG_WARN,
                 (*cfg)->log_format);
    return HQ_OK;
}

/* The consumer called name, or NULL after printing the configured ones. */
static const struct hq_consumer_cfg *find_consumer(const struct hq_config *cfg, const char *name)
{
    const struct hq_consumer_cfg *cc = hq_config_consumer(cfg, name);
    size_t i;

    if (cc)
        return cc;
    fprintf(stderr, PROG ": unknown consumer '%s' (configured in %s: ", name,
            cfg->path ? cfg->path : "the config");
    if (cfg->n_consumers == 0)
        fprintf(stderr, "none");
    for (i = 0; i < cfg->n_consumers; i++)
        fprintf(stderr, "%s%s", i ? ", " : "", cfg->consumers[i].name);
    fprintf(stderr, ")\nNAME is a consumer name, not a queue name.\n");
    return NULL;
}

static int connect_broker(const struct hq_config *cfg, const char *what, struct hq_amqp **c)
{
    char err[512], name[64];
    size_t start = 0;
    int rc;

    snprintf(name, sizeof(name), PROG " %s", what);
    rc = hq_amqp_connect_quiet(&cfg->broker, name, CONNECT_TIMEOUT_MS, &start, c, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": cannot connect to the broker: %s\n", err[0] ? err : hq_strerror(rc));
        return rc == HQ_EINVAL ? HQ_ECONFIG : rc == HQ_ENOTFOUND ? HQ_EDOWN : rc;
    }
    return HQ_OK;
}

/* Close c: every message read without an ack goes back to its queue. */
static void disconnect(struct hq_amqp *c)
{
    if (!c)
        return;
    hq_consume_detach(c);
    hq_amqp_close(c);
}

/* queue exists? HQ_OK (with its ready messages), or HQ_ENOTFOUND after saying so. After
 * HQ_ENOTFOUND the connection must not be used for get/consume any more (hq_consume.h). */
static int need_queue(struct hq_amqp *c, const char *queue, uint32_t *messages)
{
    int rc = hq_amqp_queue_exists(c, queue, messages, NULL);

    if (rc == HQ_ENOTFOUND)
        fprintf(stderr, PROG ": queue '%s' does not exist (run `" PROG " apply`)\n", queue);
    else if (rc != HQ_OK)
        fprintf(stderr, PROG ": cannot check queue '%s': %s\n", queue, hq_amqp_error(c));
    return rc;
}

/* Copy s for a terminal: control bytes become '?', at most max code points (then "..."). */
static char *term_str(const char *s, size_t max)
{
    size_t n = strlen(s), i, o = 0, cps = 0;
    char *out = malloc(n + 4);

    if (!out)
        return NULL;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if ((ch & 0xC0) != 0x80) {
            if (max && cps == max) {
                memcpy(out + o, "...", 3);
                o += 3;
                break;
            }
            cps++;
        }
        out[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    out[o] = '\0';
    return out;
}

static size_t cp_len(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static void fmt_time(int64_t ms, char *out, size_t outsz)
{
    if (ms <= 0)
        snprintf(out, outsz, "-");
    else
        hq_time_format(ms, out, outsz);
}

/* "3d4h", "2h13m", "5m2s", "45s", "0s". */
static void fmt_age(int64_t ms, char *out, size_t outsz)
{
    int64_t s = ms > 0 ? ms / 1000 : 0;

    if (s >= 86400)
        snprintf(out, outsz, "%" PRId64 "d%" PRId64 "h", s / 86400, (s % 86400) / 3600);
    else if (s >= 3600)
        snprintf(out, outsz, "%" PRId64 "h%" PRId64 "m", s / 3600, (s % 3600) / 60);
    else if (s >= 60)
        snprintf(out, outsz, "%" PRId64 "m%" PRId64 "s", s / 60, s % 60);
    else
        snprintf(out, outsz, "%" PRId64 "s", s);
}

static int json_kv_str(struct hq_buf *b, bool first, const char *k, const char *v)
{
    int rc;

    if ((rc = hq_buf_appendf(b, "%s\"", first ? "" : ",")) != HQ_OK ||
        (rc = hq_buf_append_json_str(b, k, strlen(k))) != HQ_OK ||
        (rc = hq_buf_append(b, "\":", 2)) != HQ_OK)
        return rc;
    if (!v)
        return hq_buf_append(b, "null", 4);
    if ((rc = hq_buf_append(b, "\"", 1)) != HQ_OK ||
        (rc = hq_buf_append_json_str(b, v, strlen(v))) != HQ_OK)
        return rc;
    return hq_buf_append(b, "\"", 1);
}

static int json_kv_long(struct hq_buf *b, bool first, const char *k, int64_t v)
{
    int rc;

    if ((rc = hq_buf_appendf(b, "%s\"", first ? "" : ",")) != HQ_OK ||
        (rc = hq_buf_append_json_str(b, k, strlen(k))) != HQ_OK)
        return rc;
    return hq_buf_appendf(b, "\":%" PRId64, v);
}

static int write_buf(const struct hq_buf *b)
{
    if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len)
        return HQ_EIO;
    return HQ_OK;
}

/* ---------------------------------------------------------------- list */

enum { COL_ID, COL_TYPE, COL_SOURCE, COL_ATT, COL_FAILED, COL_REDRIVEN, COL_ERR, NCOL };

struct list_ctx {
    bool json;
    size_t shown, limit;
    char *(*rows)[NCOL];
    size_t n, alloc;
    struct hq_buf line;
};

static int list_json(struct list_ctx *lc, const struct hq_delivery *d, const struct hq_dlq_info *in)
{
    struct hq_buf *b = &lc->line;
    char failed[48];
    int rc;

    hq_buf_reset(b);
    fmt_time(in->failed_at_ms, failed, sizeof(failed));
    if ((rc = hq_buf_append(b, "{", 1)) != HQ_OK ||
        (rc = json_kv_str(b, true, "id", in->id)) != HQ_OK ||
        (rc = json_kv_str(b, false, "type", in->type)) != HQ_OK ||
        (rc = json_kv_str(b, false, "source", in->source)) != HQ_OK ||
        (rc = json_kv_long(b, false, "attempts", in->attempts)) != HQ_OK ||
        (rc = json_kv_str(b, false, "last_error", in->last_error)) != HQ_OK ||
        (rc = json_kv_str(b, false, "failed_at", in->failed_at_ms > 0 ? failed : NULL)) != HQ_OK ||
        (rc = json_kv_long(b, false, "failed_at_ms", in->failed_at_ms)) != HQ_OK ||
        (rc = json_kv_long(b, false, "redriven", in->redriven)) != HQ_OK ||
        (rc = json_kv_str(b, false, "consumer", in->consumer[0] ? in->consumer : NULL)) != HQ_OK ||
        (rc = json_kv_str(b, false, "dead_lettered_by", in->by_broker ? "broker" : "worker")) !=
            HQ_OK ||
        (rc = json_kv_str(b, false, "reason", in->reason[0] ? in->reason : NULL)) != HQ_OK ||
        (rc = json_kv_long(b, false, "body_bytes", (int64_t)d->msg.body_len)) != HQ_OK ||
        (rc = hq_buf_append(b, "}\n", 2)) != HQ_OK)
        return rc;
    return write_buf(b);
}

static int list_visit(void *ud, struct hq_amqp *c, const struct hq_delivery *d, bool *stop,
                      bool *settled)
{
    struct list_ctx *lc = ud;
    struct hq_dlq_info in;
    char buf[3][48];
    char *(*row)[NCOL];
    size_t k;

    (void)c;
    (void)settled;
    if (lc->shown >= lc->limit) {
        *stop = true; /* --limit: the rest is read (and returned) but not shown */
        return HQ_OK;
    }
    lc->shown++;
    hq_dlq_info(d, &in);
    if (lc->json)
        return list_json(lc, d, &in);
    if (lc->n == lc->alloc) {
        size_t na = lc->alloc ? lc->alloc * 2 : 256;
        void *p = realloc(lc->rows, na * sizeof(*lc->rows));
        if (!p)
            return HQ_ENOMEM;
        lc->rows = p;
        lc->alloc = na;
    }
    row = &lc->rows[lc->n];
    snprintf(buf[0], sizeof(buf[0]), "%" PRId64, in.attempts);
    fmt_time(in.failed_at_ms, buf[1], sizeof(buf[1]));
    snprintf(buf[2], sizeof(buf[2]), "%" PRId64, in.redriven);
    (*row)[COL_ID] = term_str(in.id[0] ? in.id : "-", 64);
    (*row)[COL_TYPE] = term_str(in.type[0] ? in.type : "-", 40);
    (*row)[COL_SOURCE] = term_str(in.source[0] ? in.source : "-", 24);
    (*row)[COL_ATT] = term_str(buf[0], 0);
    (*row)[COL_FAILED] = term_str(buf[1], 0);
    (*row)[COL_REDRIVEN] = term_str(buf[2], 0);
    (*row)[COL_ERR] = term_str(in.last_error[0] ? in.last_error : "-", ERR_COL_MAX);
    lc->n++;
    for (k = 0; k < NCOL; k++)
        if (!(*row)[k])
            return HQ_ENOMEM;
    return HQ_OK;
}

static void list_table(const struct list_ctx *lc)
{
    static const char *const head[NCOL] = {"ID",        "TYPE",     "SOURCE",    "ATTEMPTS",
                                           "FAILED-AT", "REDRIVEN", "LAST-ERROR"};
    size_t w[NCOL], i, k;

    for (k = 0; k < NCOL; k++)
        w[k] = strlen(head[k]);
    for (i = 0; i < lc->n; i++)
        for (k = 0; k < NCOL; k++) {
            size_t l = cp_len(lc->rows[i][k]);
            if (l > w[k])
                w[k] = l;
        }
    for (k = 0; k < NCOL; k++)
        printf("%-*s%s", k + 1 < NCOL ? (int)w[k] : 0, head[k], k + 1 < NCOL ? "  " : "\n");
    for (i = 0; i < lc->n; i++)
        for (k = 0; k < NCOL; k++) {
            const char *s = lc->rows[i][k];
            /* pad by code points, not bytes */
            size_t pad = k + 1 < NCOL ? w[k] - cp_len(s) : 0;
            printf("%s%*s%s", s, (int)pad, "", k + 1 < NCOL ? "  " : "\n");
        }
}

static void list_free(struct list_ctx *lc)
{
    size_t i, k;

    for (i = 0; i < lc->n; i++)
        for (k = 0; k < NCOL; k++)
            free(lc->rows[i][k]);
    free(lc->rows);
    hq_buf_free(&lc->line);
}

static int cmd_list(const struct hq_config *cfg, const struct dopts *o)
{
    const struct hq_consumer_cfg *cc = find_consumer(cfg, o->pos[0]);
    struct list_ctx lc;
    struct hq_amqp *c = NULL;
    char dlq[HQ_NAME_MAX + 32];
    size_t seen = 0;
    uint32_t depth = 0;
    bool more = false;
    int rc;

    memset(&lc, 0, sizeof(lc));
    lc.json = o->json;
    lc.limit = o->has_limit ? (size_t)o->limit : SIZE_MAX;
    lc.line = (struct hq_buf)HQ_BUF_INIT(1u << 20);
    if (!cc)
        return HQ_EINVAL;
    if ((rc = hq_dlq_queue(cc->name, dlq, sizeof(dlq))) != HQ_OK)
        return rc;
    if ((rc = connect_broker(cfg, "list", &c)) != HQ_OK)
        return rc;
    if ((rc = need_queue(c, dlq, &depth)) != HQ_OK)
        goto out;
    rc = hq_dlq_scan(c, dlq, SCAN_CAP, list_visit, &lc, &seen, &more);
    /* return everything to the queue before printing the table */
    disconnect(c);
    c = NULL;
    if (rc != HQ_OK)
        goto out;
    if (!o->json) {
        if (lc.n)
            list_table(&lc);
        if (lc.shown < seen)
            printf("%zu of %zu%s messages in %s shown\n", lc.shown, seen, more ? "+" : "", dlq);
        else
            printf("%zu message%s in %s\n", seen, seen == 1 ? "" : "s", dlq);
    } else if (lc.shown < seen) {
        fprintf(stderr, PROG ": note: %zu of %zu%s messages shown (--limit)\n", lc.shown, seen,
                more ? "+" : "");
    }
    if (more)
        fprintf(stderr,
                PROG ": note: %s holds more than %u messages; only the first %u were read (and "
                "the order of the rest may change)\n",
                dlq, SCAN_CAP, SCAN_CAP);
out:
    if (fflush(stdout) != 0 && rc == HQ_OK)
        rc = HQ_EIO;
    disconnect(c);
    list_free(&lc);
    return rc;
}

/* ---------------------------------------------------------------- show */

struct show_ctx {
    const char *id;
    bool json;
    bool found;
    int rc;
    const char *queue;
};

static int hdr_cmp(const void *a, const void *b)
{
    const struct hq_hdr *const *x = a, *const *y = b;

    return strcmp((*x)->key, (*y)->key);
}

static bool time_key(const char *k)
{
    size_t n = strlen(k);

    return n > 3 && strcmp(k + n - 3, "-at") == 0;
}

static int xdeath_json(struct hq_buf *b, const struct hq_delivery *d)
{
    size_t i;
    int rc = hq_buf_append(b, "[", 1);

    for (i = 0; rc == HQ_OK && i < d->n_xdeath; i++) {
        const struct hq_xdeath *x = &d->xdeath[i];
        if ((rc = hq_buf_append(b, i ? ",{" : "{", i ? 2 : 1)) != HQ_OK ||
            (rc = json_kv_str(b, true, "queue", x->queue)) != HQ_OK ||
            (rc = json_kv_str(b, false, "reason", x->reason)) != HQ_OK ||
            (rc = json_kv_long(b, false, "count", x->count)) != HQ_OK ||
            (rc = json_kv_long(b, false, "time", x->time_s)) != HQ_OK)
            return rc;
        rc = hq_buf_append(b, "}", 1);
    }
    return rc == HQ_OK ? hq_buf_append(b, "]", 1) : rc;
}

static int show_json(const struct show_ctx *sc, const struct hq_delivery *d,
                     const struct hq_hdr **hs, size_t n)
{
    struct hq_buf b = HQ_BUF_INIT(256u << 20);
    const struct hq_msg *m = &d->msg;
    bool text = hq_utf8_valid(m->body, m->body_len); /* NUL is fine: escaped as \u0000 */
    size_t i;
    int rc;

    if ((rc = hq_buf_append(&b, "{", 1)) != HQ_OK ||
        (rc = json_kv_str(&b, true, "queue", sc->queue)) != HQ_OK ||
        (rc = json_kv_str(&b, false, "id", m->message_id)) != HQ_OK ||
        (rc = json_kv_str(&b, false, "exchange", d->exchange)) != HQ_OK ||
        (rc = json_kv_str(&b, false, "routing_key", d->routing_key)) != HQ_OK ||
        (rc = hq_buf_appendf(&b, ",\"redelivered\":%s,\"properties\":{",
                             d->redelivered ? "true" : "false")) != HQ_OK ||
        (rc = json_kv_str(&b, true, "content_type", m->content_type)) != HQ_OK ||
        (rc = json_kv_str(&b, false, "message_id", m->message_id)) != HQ_OK ||
        (rc = json_kv_long(&b, false, "timestamp", m->timestamp_s)) != HQ_OK ||
        (rc = json_kv_long(&b, false, "delivery_mode", d->delivery_mode)) != HQ_OK ||
        (rc = hq_buf_append(&b, "},\"headers\":{", 13)) != HQ_OK)
        goto out;
    for (i = 0; i < n; i++) {
        const struct hq_hdr *h = hs[i];

        if (!h) { /* x-death */
            if ((rc = hq_buf_append(&b, i ? ",\"x-death\":" : "\"x-death\":", i ? 11 : 10)) != HQ_OK ||
                (rc = xdeath_json(&b, d)) != HQ_OK)
                goto out;
            continue;
        }
        rc = h->type == HQ_HDR_LONG ? json_kv_long(&b, i == 0, h->key, h->num)
                                    : json_kv_str(&b, i == 0, h->key, h->str ? h->str : "");
        if (rc != HQ_OK)
            goto out;
    }
    if ((rc = hq_buf_append(&b, "}", 1)) != HQ_OK)
        goto out;
    if (text) {
        if ((rc = hq_buf_append(&b, ",\"body\":\"", 9)) != HQ_OK ||
            (rc = hq_buf_append_json_str(&b, (const char *)(m->body ? m->body : (unsigned char *)""),
                                         m->body_len)) != HQ_OK ||
            (rc = hq_buf_append(&b, "\"}\n", 3)) != HQ_OK)
            goto out;
    } else {
        char *enc = malloc(4 * ((m->body_len + 2) / 3) + 1);

        if (!enc) {
            rc = HQ_ENOMEM;
            goto out;
        }
        (void)hq_b64_encode(m->body, m->body_len, enc);
        if ((rc = hq_buf_append(&b, ",\"body_b64\":\"", 13)) == HQ_OK &&
            (rc = hq_buf_append(&b, enc, strlen(enc))) == HQ_OK)
            rc = hq_buf_append(&b, "\"}\n", 3);
        free(enc);
        if (rc != HQ_OK)
            goto out;
    }
    rc = write_buf(&b);
out:
    hq_buf_free(&b);
    return rc;
}

static int show_text(const struct show_ctx *sc, const struct hq_delivery *d,
                     const struct hq_hdr **hs, size_t n)
{
    const struct hq_msg *m = &d->msg;
    struct hq_dlq_info in;
    char t[48];
    size_t i;
    char *s;

    hq_dlq_info(d, &in);
    s = term_str(m->message_id ? m->message_id : "", 0);
    printf("queue:          %s\nid:             %s\n", sc->queue, s ? s : "");
    free(s);
    s = term_str(d->routing_key ? d->routing_key : "", 0);
    printf("routing key:    %s (exchange \"%s\")\n", s ? s : "", d->exchange ? d->exchange : "");
    free(s);
    s = term_str(m->content_type ? m->content_type : "-", 0);
    printf("content type:   %s\n", s ? s : "");
    free(s);
    fmt_time(m->timestamp_s > 0 && m->timestamp_s < INT64_MAX / 1000 ? m->timestamp_s * 1000 : 0,
             t, sizeof(t));
    printf("timestamp:      %s\ndelivery mode:  %u%s\n", t, (unsigned)d->delivery_mode,
           d->delivery_mode == 2 ? " (persistent)" : "");
    fmt_time(in.failed_at_ms, t, sizeof(t));
    s = term_str(in.last_error, 0);
    printf("failure:        attempts %" PRId64 ", failed at %s, by the %s: %s\n", in.attempts, t,
           in.by_broker ? "broker" : "worker", s && s[0] ? s : "-");
    free(s);
    printf("headers:\n");
    for (i = 0; i < n; i++) {
        const struct hq_hdr *h = hs[i];

        if (!h) {
            size_t k;
            printf("  x-death =\n");
            for (k = 0; k < d->n_xdeath; k++) {
                const struct hq_xdeath *x = &d->xdeath[k];
                fmt_time(x->time_s > 0 && x->time_s < INT64_MAX / 1000 ? x->time_s * 1000 : 0, t,
                         sizeof(t));
                printf("    - queue %s, reason %s, count %" PRId64 ", time %s\n", x->queue,
                       x->reason, x->count, t);
            }
            continue;
        }
        s = term_str(h->key, 0);
        if (h->type == HQ_HDR_LONG) {
            if (time_key(h->key) && h->num > 0 && h->num < INT64_MAX / 2) {
                fmt_time(h->num, t, sizeof(t));
                printf("  %s = %" PRId64 " (%s)\n", s ? s : "", h->num, t);
            } else {
                printf("  %s = %" PRId64 "\n", s ? s : "", h->num);
            }
        } else {
            char *v = term_str(h->str ? h->str : "", 0);
            printf("  %s = \"%s\"\n", s ? s : "", v ? v : "");
            free(v);
        }
        free(s);
    }
    if (hq_utf8_valid(m->body, m->body_len)) {
        printf("body (%zu bytes, UTF-8):\n", m->body_len);
        if (m->body_len && fwrite(m->body, 1, m->body_len, stdout) != m->body_len)
            return HQ_EIO;
        if (m->body_len && m->body[m->body_len - 1] != '\n')
            printf("\n");
    } else {
        char *enc = malloc(4 * ((m->body_len + 2) / 3) + 1);

        if (!enc)
            return HQ_ENOMEM;
        (void)hq_b64_encode(m->body, m->body_len, enc);
        printf("body (%zu bytes, not UTF-8, base64):\n%s\n", m->body_len, enc);
        free(enc);
    }
    return HQ_OK;
}

static int show_visit(void *ud, struct hq_amqp *c, const struct hq_delivery *d, bool *stop,
                      bool *settled)
{
    struct show_ctx *sc = ud;
    const struct hq_hdr **hs;
    size_t n = 0, i;
    int rc;

    (void)c;
    (void)settled;
    if (!d->msg.message_id || strcmp(d->msg.message_id, sc->id) != 0)
        return HQ_OK;
    *stop = true;
    sc->found = true;
    hs = calloc(d->msg.n_headers + 1, sizeof(*hs));
    if (!hs)
        return HQ_ENOMEM;
    for (i = 0; i < d->msg.n_headers; i++)
        hs[n++] = &d->msg.headers[i];
    qsort(hs, n, sizeof(*hs), hdr_cmp);
    if (d->n_xdeath) {
        /* x-death in its sorted place (NULL marks it) */
        size_t at = 0;
        while (at < n && strcmp(hs[at]->key, "x-death") < 0)
            at++;
        memmove(&hs[at + 1], &hs[at], (n - at) * sizeof(*hs));
        hs[at] = NULL;
        n++;
    }
    rc = sc->json ? show_json(sc, d, hs, n) : show_text(sc, d, hs, n);
    free(hs);
    return rc;
}

static int cmd_show(const struct hq_config *cfg, const struct dopts *o)
{
    const struct hq_consumer_cfg *cc = find_consumer(cfg, o->pos[0]);
    struct show_ctx sc;
    struct hq_amqp *c = NULL;
    char dlq[HQ_NAME_MAX + 32];
    size_t seen = 0;
    bool more = false;
    uint32_t depth;
    int rc;

    if (!cc)
        return HQ_EINVAL;
    memset(&sc, 0, sizeof(sc));
    sc.id = o->pos[1];
    sc.json = o->json;
    sc.queue = dlq;
    if ((rc = hq_dlq_queue(cc->name, dlq, sizeof(dlq))) != HQ_OK)
        return rc;
    if ((rc = connect_broker(cfg, "show", &c)) != HQ_OK)
        return rc;
    if ((rc = need_queue(c, dlq, &depth)) != HQ_OK)
        goto out;
    rc = hq_dlq_scan(c, dlq, SCAN_CAP, show_visit, &sc, &seen, &more);
    if (rc == HQ_OK && !sc.found) {
        char *s = term_str(sc.id, 0);
        fprintf(stderr, PROG ": no message with id '%s' in %s (%zu messages searched%s)\n",
                s ? s : "", dlq, seen, more ? ", more not searched" : "");
        free(s);
        rc = HQ_EBROKER; /* exit 1 */
    }
out:
    if (fflush(stdout) != 0 && rc == HQ_OK)
        rc = HQ_EIO;
    disconnect(c);
    return rc;
}

/* ---------------------------------------------------------------- redrive */

struct redrive_ctx {
    const struct dopts *o;
    struct hq_lc_emitter *lc; /* "redriven" lifecycle records */
    const char *consumer, *work;
    size_t matched, moved, limit;
    int err; /* the failure that stopped the run */
};

static bool redrive_match(const struct dopts *o, const struct hq_delivery *d)
{
    const struct hq_hdr *h;

    if (o->all)
        return true;
    if (o->id)
        return d->msg.message_id && strcmp(d->msg.message_id, o->id) == 0;
    h = hq_msg_header(&d->msg, "hookmq-event-type");
    return h && h->type == HQ_HDR_STR && h->str && fnmatch(o->type, h->str, 0) == 0;
}

static int redrive_visit(void *ud, struct hq_amqp *c, const struct hq_delivery *d, bool *stop,
                         bool *settled)
{
    struct redrive_ctx *rc_ = ud;
    struct hq_dlq_info in;
    char *id, *type;
    int rc;

    if (rc_->matched >= rc_->limit) {
        *stop = true; /* the rest stays where it is */
        return HQ_OK;
    }
    if (!redrive_match(rc_->o, d))
        return HQ_OK;
    rc_->matched++;
    hq_dlq_info(d, &in);
    id = term_str(in.id, 0);
    type = term_str(in.type[0] ? in.type : "-", 0);
    if (rc_->o->dry_run) {
        printf("would redrive %s (%s, attempts %" PRId64 ", redriven %" PRId64 ")\n",
               id ? id : "", type ? type : "", in.attempts, in.redriven);
        rc = HQ_OK;
    } else {
        int64_t at = hq_now_ms();

        rc = hq_dlq_redrive_one_ex(c, rc_->consumer, d, CONFIRM_TIMEOUT_MS, rc_->o->reset_steps);
        if (rc == HQ_OK) {
            *settled = true;
            rc_->moved++;
            hq_dlq_emit_redriven(rc_->lc, rc_->consumer, d, at);
            printf("redriven %s (%s) -> %s\n", id ? id : "", type ? type : "", rc_->work);
        } else {
            fprintf(stderr, PROG ": redriving %s failed (%s): %s; it stays in the DLQ\n",
                    id ? id : "", hq_strerror(rc), hq_consume_error(c));
            rc_->err = rc;
        }
    }
    free(id);
    free(type);
    return rc;
}

static int cmd_redrive(const struct hq_config *cfg, const struct dopts *o)
{
    const struct hq_consumer_cfg *cc = find_consumer(cfg, o->pos[0]);
    struct redrive_ctx rx;
    struct hq_amqp *c = NULL;
    char dlq[HQ_NAME_MAX + 32], work[HQ_NAME_MAX + 32];
    uint32_t depth = 0, wdepth = 0;
    size_t seen = 0;
    int rc;

    if (!cc)
        return HQ_EINVAL;
    if ((rc = hq_dlq_queue(cc->name, dlq, sizeof(dlq))) != HQ_OK ||
        (rc = hq_dlq_work_queue(cc->name, work, sizeof(work))) != HQ_OK)
        return rc;
    memset(&rx, 0, sizeof(rx));
    rx.o = o;
    rx.consumer = cc->name;
    rx.work = work;
    rx.limit = o->has_limit ? (size_t)o->limit : SIZE_MAX;
    if ((rc = connect_broker(cfg, "redrive", &c)) != HQ_OK)
        return rc;
    if ((rc = need_queue(c, dlq, &depth)) != HQ_OK || (rc = need_queue(c, work, &wdepth)) != HQ_OK)
        goto out;
    if (!o->dry_run && hq_lc_start(&cfg->broker, "hookmq-dlx redrive (lifecycle)", 4096,
                                   &rx.lc) != HQ_OK)
        rx.lc = NULL; /* lifecycle records are best effort */
    /* only what is there now: events that fail again meanwhile wait for the next run */
    rc = hq_dlq_scan(c, dlq, depth < SCAN_CAP ? depth : SCAN_CAP, redrive_visit, &rx, &seen,
                     NULL);
    if (rc != HQ_OK)
        goto out;
    if (o->dry_run)
        printf("dry run: would redrive %zu of %zu (nothing changed in %s)\n", rx.matched,
               (size_t)depth, dlq);
    else
        printf("redriven %zu of %zu (%zu left in %s)\n", rx.moved, (size_t)depth,
               (size_t)depth - rx.moved, dlq);
out:
    if (rc != HQ_OK && rx.moved)
        printf("redriven %zu before the failure\n", rx.moved);
    if (fflush(stdout) != 0 && rc == HQ_OK)
        rc = HQ_EIO;
    disconnect(c);
    hq_lc_stop(rx.lc, 3000);
    if (rc == HQ_EBROKER && rx.err == HQ_EBROKER)
        fprintf(stderr, PROG ": the broker refused the copy (work queue %s full or gone?)\n", work);
    return rc == HQ_ENOTFOUND && rx.err ? HQ_EBROKER : rc;
}

/* ---------------------------------------------------------------- purge */

static int cmd_purge(const struct hq_config *cfg, const struct dopts *o)
{
    const struct hq_consumer_cfg *cc = find_consumer(cfg, o->pos[0]);
    struct hq_amqp *c = NULL;
    char dlq[HQ_NAME_MAX + 32];
    uint32_t depth = 0, purged = 0;
    int rc;

    if (!cc)
        return HQ_EINVAL;
    if ((rc = hq_dlq_queue(cc->name, dlq, sizeof(dlq))) != HQ_OK)
        return rc;
    if (!o->yes) {
        fprintf(stderr,
                PROG ": purge deletes every message in %s for good; add --yes to do it\n"
                "(save them first with `" PROG " list %s --json`)\n",
                dlq, cc->name);
        return HQ_EINVAL;
    }
    if ((rc = connect_broker(cfg, "purge", &c)) != HQ_OK)
        return rc;
    if ((rc = need_queue(c, dlq, &depth)) != HQ_OK)
        goto out;
    rc = hq_amqp_purge(c, dlq, &purged);
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": purge of %s failed: %s\n", dlq, hq_consume_error(c));
        rc = rc == HQ_ENOTFOUND ? HQ_ENOTFOUND : HQ_EBROKER;
        goto out;
    }
    printf("purged %u message%s from %s\n", purged, purged == 1 ? "" : "s", dlq);
out:
    disconnect(c);
    return rc;
}

/* ---------------------------------------------------------------- status */

struct status_ctx {
    struct hq_amqp *decl;  /* passive/active declares (amqp.c reopens its channel) */
    struct hq_amqp *peek;  /* basic.get of the oldest DLQ message (returned on close) */
    int64_t now_ms;
    int missing, drifted, peek_failed;
    struct hq_buf problems; /* one line per missing / drifted object */
};

static int problem(struct status_ctx *sx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int problem(struct status_ctx *sx, const char *fmt, ...)
{
    char line[1200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    return hq_buf_appendf(&sx->problems, "  %s\n", line);
}

/* Check object o: exists (messages/consumers for queues), and declared as configured.
 * *state gets "ok", "MISSING", "DRIFT" or "LIMIT?" (a queue declared before the upgrade to
 * RabbitMQ 4, see below). HQ_EDOWN stops the run. */
static int check_obj(struct status_ctx *sx, const struct hq_obj *o, uint32_t *messages,
                     uint32_t *consumers, const char **state)
{
    bool q = o->kind == HQ_OBJ_QUEUE;
    enum hq_obj_check st;
    char why[1024];
    int rc = hq_topology_check(sx->decl, o, messages, consumers, &st, why, sizeof(why));

    *state = "ok";
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": checking %s failed: %s\n", o->name, why);
        return rc;
    }
    switch (st) {
    case HQ_CHECK_OK: return HQ_OK;
    case HQ_CHECK_MISSING:
        *state = "MISSING";
        sx->missing++;
        return problem(sx, "%s %s is missing (run `" PROG " apply`)", q ? "queue" : "exchange",
                       o->name);
    case HQ_CHECK_LIMIT:
        *state = "LIMIT?";
        return problem(sx, "queue %s keeps RabbitMQ 4's delivery limit of 20 unless a policy "
                           "sets delivery-limit -1 (`" PROG " policies --broker-version 4.0`; "
                           "docs/deploy.md, \"Upgrading to RabbitMQ 4\")", o->name);
    case HQ_CHECK_DRIFT:
        *state = "DRIFT";
        sx->drifted++;
        return problem(sx, "%s %s differs from the config: %s", q ? "queue" : "exchange", o->name,
                       why);
    }
    return HQ_OK;
}

struct oldest_ctx {
    int64_t min_ms;  /* earliest failure time seen, 0 = none */
    size_t unknown;  /* messages without a failure time */
};

static int oldest_visit(void *ud, struct hq_amqp *c, const struct hq_delivery *d, bool *stop,
                        bool *settled)
{
    struct oldest_ctx *oc = ud;
    struct hq_dlq_info in;

    (void)c;
    (void)stop;
    (void)settled;
    hq_dlq_info(d, &in);
    if (in.failed_at_ms <= 0)
        oc->unknown++;
    else if (oc->min_ms == 0 || in.failed_at_ms < oc->min_ms)
        oc->min_ms = in.failed_at_ms;
    return HQ_OK;
}

/* The age of the oldest message of dlq (depth ready messages): every message is read on
 * sx->peek and put back in order (a quorum queue cannot be peeked at its head alone without
 * reordering it once messages have been returned to it before). */
static void oldest(struct status_ctx *sx, const char *dlq, uint32_t depth, char *out,
                   size_t outsz)
{
    struct oldest_ctx oc = {0, 0};
    char age[32], t[48];
    size_t seen = 0;
    int rc;

    out[0] = '\0';
    if (!sx->peek)
        return;
    if (depth > SCAN_CAP) {
        snprintf(out, outsz, "oldest: not computed (over %u messages)", SCAN_CAP);
        return;
    }
    rc = hq_dlq_scan(sx->peek, dlq, SCAN_CAP, oldest_visit, &oc, &seen, NULL);
    if (rc != HQ_OK) {
        sx->peek_failed++;
        snprintf(out, outsz, "oldest: ? (%s)", hq_consume_error(sx->peek));
        disconnect(sx->peek);
        sx->peek = NULL;
        return;
    }
    if (oc.min_ms > 0) {
        fmt_age(sx->now_ms - oc.min_ms, age, sizeof(age));
        fmt_time(oc.min_ms, t, sizeof(t));
        snprintf(out, outsz, "oldest %s (failed %s)", age, t);
    } else if (seen) {
        snprintf(out, outsz, "oldest: failure time unknown");
    }
}

static void status_row(const char *name, const char *kind, uint32_t messages, uint32_t consumers,
                       bool counts, const char *state, const char *extra)
{
    if (counts)
        printf("  %-44s %-9s %9u %9u  %s%s%s\n", name, kind, messages, consumers, state,
               extra && extra[0] ? "  " : "", extra ? extra : "");
    else
        printf("  %-44s %-9s %9s %9s  %s\n", name, kind, "-", "-", state);
}

static int cmd_status(const struct hq_config *cfg, const struct dopts *o)
{
    struct status_ctx sx;
    struct hq_topology t = {NULL, 0};
    size_t i, k;
    int rc;

    memset(&sx, 0, sizeof(sx));
    sx.problems = (struct hq_buf)HQ_BUF_INIT(1u << 20);
    sx.now_ms = hq_now_ms();
    if ((rc = hq_topology_build(cfg, &t)) != HQ_OK) {
        fprintf(stderr, PROG ": cannot derive the topology from %s: %s\n",
                cfg->path ? cfg->path : "the config", hq_strerror(rc));
        goto out;
    }
    if (o->policy_managed)
        hq_topology_strip_policy_args(&t);
    if ((rc = connect_broker(cfg, "status", &sx.decl)) != HQ_OK)
        goto out;
    {
        int major, minor;

        /* the arguments apply declared on this broker (x-delivery-limit = -1 on 4.x) */
        if (hq_amqp_server_version(sx.decl, &major, &minor) == HQ_OK)
            hq_topology_target(&t, major);
    }
    if (connect_broker(cfg, "status peek", &sx.peek) != HQ_OK)
        sx.peek = NULL; /* depths and drift still work */

    printf("  %-44s %-9s %9s %9s  %s\n", "QUEUE / EXCHANGE", "KIND", "MESSAGES", "CONSUMERS",
           "STATE");
    for (k = 0; k < cfg->n_consumers; k++) {
        const char *name = cfg->consumers[k].name;

        printf("consumer %s\n", name);
        for (i = 0; i < t.n; i++) {
            const struct hq_obj *ob = &t.objs[i];
            uint32_t messages = 0, consumers = 0;
            const char *state, *kind;
            char extra[600] = "";

            if (ob->kind != HQ_OBJ_QUEUE || !ob->owner || strcmp(ob->owner, name) != 0)
                continue;
            if ((rc = check_obj(&sx, ob, &messages, &consumers, &state)) != HQ_OK)
                goto out;
            kind = hq_topology_queue_kind(name, ob->name);
            if (strcmp(kind, "dlq") == 0 && strcmp(state, "MISSING") != 0 && messages > 0)
                oldest(&sx, ob->name, messages, extra, sizeof(extra));
            status_row(ob->name, kind, messages, consumers, strcmp(state, "MISSING") != 0, state,
                       extra);
        }
    }
    printf("shared\n");
    for (i = 0; i < t.n; i++) {
        const struct hq_obj *ob = &t.objs[i];
        uint32_t messages = 0, consumers = 0;
        const char *state;
        bool mine = false;

        if (ob->kind == HQ_OBJ_BINDING)
            continue;
        for (k = 0; k < cfg->n_consumers && ob->kind == HQ_OBJ_QUEUE; k++)
            if (ob->owner && strcmp(ob->owner, cfg->consumers[k].name) == 0)
                mine = true;
        if (mine)
            continue;
        if ((rc = check_obj(&sx, ob, &messages, &consumers, &state)) != HQ_OK)
            goto out;
        status_row(ob->name, ob->kind == HQ_OBJ_QUEUE ? "queue" : ob->type ? ob->type : "exchange",
                   messages, consumers, ob->kind == HQ_OBJ_QUEUE && strcmp(state, "MISSING") != 0,
                   state, NULL);
    }
    if (sx.problems.len)
        printf("problems:\n%s", (const char *)sx.problems.data);
    if (sx.missing || sx.drifted) {
        printf("status: %d missing, %d differing from the config (`" PROG
               " apply` creates what is missing and explains each difference)\n",
               sx.missing, sx.drifted);
        rc = HQ_ECONFLICT;
    } else {
        printf("status: every queue and exchange present and as configured "
               "(bindings are not checked: `" PROG " apply` re-declares them)\n");
        rc = HQ_OK;
    }
out:
    if (fflush(stdout) != 0 && rc == HQ_OK)
        rc = HQ_EIO;
    disconnect(sx.peek);
    disconnect(sx.decl);
    hq_topology_free(&t);
    hq_buf_free(&sx.problems);
    return rc;
}

/* ---------------------------------------------------------------- dispatch */

static const char *subcommand(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (a[0] == '-' && a[1] != '\0')
            continue;
        return a;
    }
    return NULL;
}

bool hq_dlx_dlq_dispatch(int argc, char **argv, int *exit_code)
{
    static const char *const mine[] = {"list", "show", "redrive", "purge", "status", NULL};
    const char *sub = subcommand(argc, argv);
    struct hq_config *cfg = NULL;
    struct dopts o;
    size_t i;
    int rc;

    if (!sub)
        return false;
    for (i = 0; mine[i] && strcmp(mine[i], sub) != 0; i++)
        ;
    if (!mine[i])
        return false;
    rc = parse(argc, argv, &o);
    if (rc == HQ_OK && o.help) {
        fputs(help_for(o.cmd), stdout);
        *exit_code = EXIT_OK;
        return true;
    }
    if (rc != HQ_OK || (rc = check_opts(&o)) != HQ_OK) {
        const char *h = help_for(sub);
        fprintf(stderr, "%.*s\n", (int)strcspn(h, "\n"), h); /* the usage line */
        *exit_code = EXIT_USAGE;
        return true;
    }
    hq_log_setup(PROG, HQ_LOG_WARN, HQ_LOG_TEXT);
    rc = load_config(&o, &cfg);
    if (rc == HQ_OK) {
        if (strcmp(o.cmd, "list") == 0)
            rc = cmd_list(cfg, &o);
        else if (strcmp(o.cmd, "show") == 0)
            rc = cmd_show(cfg, &o);
        else if (strcmp(o.cmd, "redrive") == 0)
            rc = cmd_redrive(cfg, &o);
        else if (strcmp(o.cmd, "purge") == 0)
            rc = cmd_purge(cfg, &o);
        else
            rc = cmd_status(cfg, &o);
    }
    hq_config_free(cfg);
    *exit_code = exit_for(rc);
    return true;
}
