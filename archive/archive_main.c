/* hookmq-archive: the firehose logger and archive queries (docs/archive.md).
 *
 *   hookmq-archive [run] [-c FILE] [--firehose-trace[=KEY]]
 *   hookmq-archive [run] [-c FILE] --check
 *   hookmq-archive [run] [-c FILE] --print-broker
 *   hookmq-archive query [-c FILE] [--from T] [--to T] [--source S] [--type GLOB] [--id ID]
 *                        [--grep TEXT] [--kind event|lifecycle|trace|all] [--format json|table]
 *                        [--limit N] [--dir DIR] [--verbose]
 *   hookmq-archive history ID [-c FILE] [--source S] [--format text|json] [--dir DIR]
 *   hookmq-archive stats [-c FILE] [--from T] [--to T] [--format table|json] [--dir DIR]
 *
 * Options may come before or after the subcommand. --check (with or without run) validates the
 * config, prints one line naming archive.dir and exits; it connects to nothing. --print-broker
 * prints "HOST PORT" of each broker.uris entry as the programs parse it (for scripts/dev).
 *
 * Exit codes (docs/interface.md): 0 ok, 1 runtime failure, 2 usage or configuration error,
 * 3 topology missing (hookmq.archive: run `hookmq-dlx apply`). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "hq_amqp.h"
#include "hq_log.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " AR_PROG " [run] [-c FILE] [--firehose-trace[=KEY]]\n"
            "       " AR_PROG " [run] [-c FILE] --check\n"
            "       " AR_PROG " [run] [-c FILE] --print-broker\n"
            "       " AR_PROG " query [-c FILE] [--from T] [--to T] [--source S] [--type GLOB]\n"
            "                      [--id ID] [--grep TEXT] [--kind event|lifecycle|trace|all]\n"
            "                      [--format json|table] [--limit N] [--dir DIR] [--verbose]\n"
            "       " AR_PROG " history ID [-c FILE] [--source S] [--format text|json] [--dir DIR]\n"
            "       " AR_PROG " stats [-c FILE] [--from T] [--to T] [--format table|json] [--dir DIR]\n"
            "\n"
            "run (the default): consume the hookmq.archive queue into hourly segments under\n"
            "archive.dir; a batch is acked only after it is written and fsync'd (group commit of\n"
            "archive.batch_max records or archive.batch_ms). Closed hours are compressed (zstd)\n"
            "and indexed; segments older than archive.keep_days are deleted.\n"
            "  --firehose-trace[=KEY]  also archive RabbitMQ's firehose tracer (amq.rabbitmq.trace,\n"
            "                          binding KEY, default publish.#) as kind \"trace\" records;\n"
            "                          tracing must be on (rabbitmqctl trace_on); see docs/archive.md\n"
            "  --check                 validate the config, print one line (with archive.dir)\n"
            "                          and exit (0 ok, 2 error); connects to nothing\n"
            "  --print-broker          print \"HOST PORT\" of each broker.uris entry (in order, no\n"
            "                          credentials) as the programs read them, and exit\n"
            "\n"
            "query: print the archived records that match, as JSON lines (the stored records) or\n"
            "a table (time, source, type, id, size); duplicates (same source and id) collapsed.\n"
            "  --from T, --to T        received_at window [from, to): RFC 3339\n"
            "                          (2026-11-29T10:00:00Z) or relative to now (-2h, -15m, -7d)\n"
            "  --source S              exact source name\n"
            "  --type GLOB             glob on the event type (hookmq-event-type), e.g. 'invoice.*'\n"
            "  --id ID                 exact event id (uses the segment indexes)\n"
            "  --grep TEXT             body substring\n"
            "  --kind K                event (default), lifecycle, trace or all\n"
            "  --limit N               stop after N records\n"
            "  --verbose               print how many segments and frames were read (stderr)\n"
            "history ID: the event's record(s) and its lifecycle timeline (received, each attempt\n"
            "per consumer, retries with their tier, dead-lettering, redrives, replays).\n"
            "stats: events and lifecycle records per hour and source.\n"
            "\n"
            "  -c, --config FILE       config file (default: $HOOKMQ_CONFIG, then\n"
            "                          /etc/hookmq/hookmq.conf)\n"
            "      --dir DIR           read this archive directory instead of archive.dir (a copy\n"
            "                          shipped elsewhere); no config is needed then\n"
            "  -h, --help              this help\n"
            "  -V, --version           print the version\n"
            "\n"
            "Signals (run): SIGTERM/SIGINT finish the batch (write, fsync, ack) and exit 0;\n"
            "SIGHUP reloads the log level.\n"
            "Exit codes: 0 ok, 1 runtime failure (also: history found nothing), 2 usage or\n"
            "config error, 3 hookmq.archive missing on the broker (run hookmq-dlx apply).\n");
}

static bool opt_val(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);
    const char *s = argv[*i];

    if (strcmp(s, name) == 0) {
        if (*i + 1 >= argc)
            return false;
        *out = argv[++*i];
        return true;
    }
    if (strncmp(s, name, n) == 0 && s[n] == '=') {
        *out = s + n + 1;
        return true;
    }
    return false;
}

/* HQ_OK; HQ_EINVAL after printing why; *done for --help / --version; *check for --check
 * (which goes with run only). */
static int parse_args(int argc, char **argv, struct ar_args *a, bool *done, bool *check,
                      bool *print_broker)
{
    bool have_cmd = false;
    const char *fmt = NULL, *limit = NULL;
    int i;

    memset(a, 0, sizeof(*a));
    *done = false;
    *check = false;
    *print_broker = false;
    for (i = 1; i < argc; i++) {
        const char *s = argv[i], *v = NULL;

        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            usage(stdout);
            *done = true;
            return HQ_OK;
        } else if (strcmp(s, "-V") == 0 || strcmp(s, "--version") == 0) {
            printf(AR_PROG " %s\n", HQ_VERSION);
            *done = true;
            return HQ_OK;
        } else if (opt_val(argc, argv, &i, "-c", &v) || opt_val(argc, argv, &i, "--config", &v)) {
            a->config = v;
        } else if (opt_val(argc, argv, &i, "--dir", &v)) {
            a->dir = v;
        } else if (opt_val(argc, argv, &i, "--from", &v)) {
            a->from = v;
        } else if (opt_val(argc, argv, &i, "--to", &v)) {
            a->to = v;
        } else if (opt_val(argc, argv, &i, "--source", &v)) {
            a->source = v;
        } else if (opt_val(argc, argv, &i, "--type", &v)) {
            a->type = v;
        } else if (opt_val(argc, argv, &i, "--id", &v)) {
            a->id = v;
        } else if (opt_val(argc, argv, &i, "--grep", &v)) {
            a->grep = v;
        } else if (opt_val(argc, argv, &i, "--kind", &v)) {
            a->kind = v;
        } else if (opt_val(argc, argv, &i, "--format", &v)) {
            fmt = v;
        } else if (opt_val(argc, argv, &i, "--limit", &v)) {
            limit = v;
        } else if (strcmp(s, "--verbose") == 0 || strcmp(s, "-v") == 0) {
            a->verbose = true;
        } else if (strcmp(s, "--check") == 0) {
            *check = true;
        } else if (strcmp(s, "--print-broker") == 0) {
            *print_broker = true;
        } else if (strcmp(s, "--firehose-trace") == 0) {
            a->firehose = true;
        } else if (strncmp(s, "--firehose-trace=", 17) == 0) {
            a->firehose = true;
            a->firehose_key = s + 17;
        } else if (s[0] == '-' && s[1] != '\0') {
            fprintf(stderr, AR_PROG ": unknown or incomplete option '%s'\n", s);
            usage(stderr);
            return HQ_EINVAL;
        } else if (!have_cmd) {
            have_cmd = true;
            if (strcmp(s, "run") == 0)
                a->cmd = AR_RUN;
            else if (strcmp(s, "query") == 0)
                a->cmd = AR_QUERY;
            else if (strcmp(s, "history") == 0)
                a->cmd = AR_HISTORY;
            else if (strcmp(s, "stats") == 0)
                a->cmd = AR_STATS;
            else {
                fprintf(stderr, AR_PROG ": unknown subcommand '%s'\n", s);
                usage(stderr);
                return HQ_EINVAL;
            }
        } else if (a->cmd == AR_HISTORY && !a->id) {
            a->id = s;
        } else {
            fprintf(stderr, AR_PROG ": unexpected argument '%s'\n", s);
            return HQ_EINVAL;
        }
    }
    if (fmt) {
        if (strcmp(fmt, "json") == 0)
            a->format = AR_FMT_JSON;
        else if (strcmp(fmt, "table") == 0 || strcmp(fmt, "text") == 0)
            a->format = AR_FMT_TABLE;
        else {
            fprintf(stderr, AR_PROG ": --format: expected json or table, got '%s'\n", fmt);
            return HQ_EINVAL;
        }
    }
    if (limit) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(limit, &end, 10);
        if (errno || *end || end == limit || limit[0] == '-') {
            fprintf(stderr, AR_PROG ": --limit: expected a count, got '%s'\n", limit);
            return HQ_EINVAL;
        }
        a->limit = v;
    }
    if (a->kind && strcmp(a->kind, "event") != 0 && strcmp(a->kind, "lifecycle") != 0 &&
        strcmp(a->kind, "trace") != 0 && strcmp(a->kind, "all") != 0) {
        fprintf(stderr, AR_PROG ": --kind: expected event, lifecycle, trace or all, got '%s'\n",
                a->kind);
        return HQ_EINVAL;
    }
    if (a->cmd == AR_HISTORY && (!a->id || !*a->id)) {
        fprintf(stderr, AR_PROG ": history: the event ID is required\n");
        return HQ_EINVAL;
    }
    if (a->cmd != AR_RUN && (*check || *print_broker)) {
        fprintf(stderr, AR_PROG ": %s goes with run (or no subcommand)\n",
                *check ? "--check" : "--print-broker");
        return HQ_EINVAL;
    }
    if (*check && *print_broker) {
        fprintf(stderr, AR_PROG ": --check and --print-broker: one at a time\n");
        return HQ_EINVAL;
    }
    if (a->cmd != AR_RUN && a->firehose) {
        fprintf(stderr, AR_PROG ": --firehose-trace belongs to run\n");
        return HQ_EINVAL;
    }
    if (a->cmd == AR_RUN && (a->from || a->to || a->source || a->type || a->id || a->grep ||
                             a->kind || fmt || limit || a->dir)) {
        fprintf(stderr, AR_PROG ": query options given to run (did you mean '" AR_PROG
                               " query'?)\n");
        return HQ_EINVAL;
    }
    if (a->firehose && (!a->firehose_key || !*a->firehose_key))
        a->firehose_key = "publish.#";
    return HQ_OK;
}

int main(int argc, char **argv)
{
    struct ar_args a;
    struct hq_config *cfg = NULL;
    const char *path;
    char err[1024];
    bool done, check, print_broker;
    int rc, status;

    if (parse_args(argc, argv, &a, &done, &check, &print_broker) != HQ_OK)
        return HQ_EXIT_USAGE;
    if (done)
        return HQ_EXIT_OK;
    path = hq_config_default_path(a.config);
    if (a.cmd != AR_RUN && a.dir && !a.config) {
        /* reading a copy of an archive: no config needed */
        hq_log_setup(AR_PROG, HQ_LOG_WARN, HQ_LOG_TEXT);
    } else {
        rc = hq_config_load(path, &cfg, err, sizeof(err));
        if (rc != HQ_OK) {
            fprintf(stderr, "%s\n", err);
            return hq_exit_code(HQ_ECONFIG);
        }
        if (print_broker) {
            size_t i;

            for (i = 0; i < cfg->broker.n_uris; i++) {
                char host[256];
                int port;

                /* the loader checked every URI: a failure here is unexpected */
                if (hq_amqp_uri_hostport(cfg->broker.uris[i], host, sizeof(host), &port) !=
                    HQ_OK) {
                    fprintf(stderr, AR_PROG ": broker.uris[%zu] does not parse\n", i);
                    hq_config_free(cfg);
                    return HQ_EXIT_USAGE;
                }
                printf("%s %d\n", host, port);
            }
            hq_config_free(cfg);
            return HQ_EXIT_OK;
        }
        if (check) {
            /* archive.dir is always set: the loader defaults it and refuses an empty one */
            printf("%s: ok (archive.dir %s, keep_days %d)\n", path, cfg->archive.dir,
                   cfg->archive.keep_days);
            hq_config_free(cfg);
            return HQ_EXIT_OK;
        }
        /* queries: warnings (torn lines) always reach stderr, info logs are the logger's */
        hq_log_setup(AR_PROG,
                     a.cmd == AR_RUN || cfg->log_level == HQ_LOG_DEBUG ? cfg->log_level
                                                                      : HQ_LOG_WARN,
                     cfg->log_format);
    }
    switch (a.cmd) {
    case AR_RUN: status = ar_run(cfg, path, &a); break;
    case AR_QUERY: status = ar_query(a.dir ? a.dir : cfg->archive.dir, &a); break;
    case AR_HISTORY: status = ar_history(a.dir ? a.dir : cfg->archive.dir, &a); break;
    default: status = ar_stats(a.dir ? a.dir : cfg->archive.dir, &a); break;
    }
    hq_config_free(cfg);
    return status;
}
