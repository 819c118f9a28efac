/* hookmq-dlx: topology and dead-letter operations.
 *
 *   hookmq-dlx SUBCOMMAND [-c FILE] [ARGS]
 *   hookmq-dlx [apply | definitions | policies] --check [-c FILE]
 *
 * The topology subcommands (topology.c): apply, definitions (--users: users.c), policies,
 * status. The DLQ subcommands (dlq.c, reading and selecting in scan.c): list, show, redrive,
 * purge, edit. Each is a row of `commands` below: its options, its positionals and its help.
 * parse_args() is the one parser of the command line; core's hq_exit_code() maps a
 * status to an exit code (docs/dlq.md, docs/man/hookmq-dlx.1): 0 ok, 1 runtime failure, 2
 * usage or configuration error, 3 topology: a conflict, drift, or a missing queue. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlx.h"
#include "hq_config.h"
#include "hq_dlq.h"
#include "hq_log.h"
#include "hq_topology.h"

/* ---------------------------------------------------------------- options */

enum {
    O_CHECK = 1 << 0, O_POLICY_MANAGED = 1 << 1, O_USERS = 1 << 2, O_PASSWORD_FILE = 1 << 3,
    O_BROKER_VERSION = 1 << 4, O_JSON = 1 << 5, O_LIMIT = 1 << 6, O_ID = 1 << 7,
    O_TYPE = 1 << 8, O_ALL = 1 << 9, O_DRY_RUN = 1 << 10, O_RESET_STEPS = 1 << 11,
    O_YES = 1 << 12, O_BODY = 1 << 13, O_HEADER = 1 << 14,
};

/* Every option of every subcommand (besides -c, --help and --version): whether it takes a
 * value (--opt VALUE or --opt=VALUE), and the subcommands it goes with, for the error. */
static const struct option {
    const char *name;
    unsigned bit;
    bool value;
    const char *goes_with;
} options[] = {
    {"--check", O_CHECK, false, "alone or with apply, definitions or policies"},
    {"--policy-managed", O_POLICY_MANAGED, false, "with apply, definitions or status"},
    {"--users", O_USERS, false, "with definitions only"},
    {"--password-file", O_PASSWORD_FILE, true, "with definitions --users only"},
    {"--broker-version", O_BROKER_VERSION, true,
     "with definitions or policies (apply reads the version from the broker)"},
    {"--json", O_JSON, false, "with list or show"},
    {"--limit", O_LIMIT, true, "with list or redrive"},
    {"--id", O_ID, true, "with redrive"},
    {"--type", O_TYPE, true, "with redrive"},
    {"--all", O_ALL, false, "with redrive"},
    {"--dry-run", O_DRY_RUN, false, "with redrive"},
    {"--reset-steps", O_RESET_STEPS, false, "with redrive"},
    {"--yes", O_YES, false, "with purge"},
    {"--body", O_BODY, true, "with edit"},
    {"--header", O_HEADER, true, "with edit"},
};

/* ---------------------------------------------------------------- subcommands */

static const struct command {
    const char *name;
    int (*run)(const struct hq_config *cfg, const struct dlx_opts *o);
    unsigned opts;       /* the options it takes */
    int npos;            /* its positionals: 0, 1 (NAME) or 2 (NAME ID) */
    const char *summary; /* its lines in the main --help */
    const char *help;    /* its own --help; NULL: the main one */
} commands[] = {
    {"apply", dlx_apply, O_CHECK | O_POLICY_MANAGED, 0,
     "  apply [--policy-managed]        declare the exchanges, queues and bindings of the\n"
     "                                  config (never deletes; prints each object as\n"
     "                                  created or exists; exit 3 on a conflict)\n",
     NULL},
    {"definitions", dlx_definitions,
     O_CHECK | O_POLICY_MANAGED | O_USERS | O_PASSWORD_FILE | O_BROKER_VERSION, 0,
     "  definitions [--policy-managed]  print them as RabbitMQ definitions JSON (import\n"
     "                                  in the management UI: Overview > Import definitions)\n"
     "  definitions --users [--password-file F]\n"
     "                                  print instead one RabbitMQ user per program with the\n"
     "                                  narrowest permissions (docs/operations.md); F holds\n"
     "                                  user:password lines, users without one get none\n",
     NULL},
    {"policies", dlx_policies, O_CHECK | O_BROKER_VERSION, 0,
     "  policies                        print `rabbitmqctl set_policy` commands setting\n"
     "                                  DLX, TTL, delivery limit and overflow by policy\n"
     "  definitions and policies take [--broker-version X.Y]: the RabbitMQ version they\n"
     "  are for (default " HQ_TOPOLOGY_DEFAULT_BROKER "; apply asks the broker)\n",
     NULL},
    {"status", dlx_status, O_POLICY_MANAGED, 0,
     "  status [--policy-managed]       per consumer: queue depths, consumers, DLQ depth,\n"
     "                                  oldest DLQ message, drift from the config (exit 3)\n",
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
    {"list", dlx_list, O_JSON | O_LIMIT, 1,
     "  list NAME [--json] [--limit N]  the messages in hookmq.NAME.dlq (nothing consumed)\n",
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
    {"show", dlx_show, O_JSON, 2,
     "  show NAME ID [--json]           headers and body of the DLQ message with that id\n",
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
    {"redrive", dlx_redrive, O_ID | O_TYPE | O_ALL | O_LIMIT | O_DRY_RUN | O_RESET_STEPS, 1,
     "  redrive NAME (--id ID | --type GLOB | --all) [--limit N] [--dry-run] [--reset-steps]\n"
     "                                  move DLQ messages back to hookmq.NAME (attempt 1)\n",
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
    {"purge", dlx_purge, O_YES, 1,
     "  purge NAME --yes                delete every message in hookmq.NAME.dlq\n",
     "usage: " PROG " purge NAME --yes [-c FILE]\n"
     "\n"
     "Delete every (ready) message in hookmq.NAME.dlq. Refuses without --yes (exit 2).\n"
     "Consider `" PROG " list NAME --json > saved.jsonl` first.\n"},
    {"edit", dlx_edit, O_BODY | O_HEADER, 2,
     "  edit NAME ID [--body FILE] [--header K=V]...\n"
     "                                  edit and retry one DLQ message (docs/dlq.md)\n",
     "usage: " PROG " edit NAME ID [-c FILE] [--body FILE] [--header K=V]...\n"
     "\n"
     "Edit and retry: the first message of hookmq.NAME.dlq whose event id is ID goes back to\n"
     "hookmq.NAME as a redrive sends it, with its body replaced by the bytes of FILE (- for\n"
     "standard input) and/or each header K set to V, and with hookmq-edited-from (sha256: and\n"
     "the hex SHA-256 of the original body) and hookmq-edited-by (your OS user name). It leaves\n"
     "the DLQ only after the broker confirmed the edited copy; the original stays in the\n"
     "archive; a lifecycle record of kind \"edit\" names you and what changed. hookmq-* and x-*\n"
     "headers cannot be edited. The same as the console's edit (docs/console.md).\n"
     "\n"
     "Exit status: 0 edited, 1 no such message (or runtime failure; the event stays parked),\n"
     "2 usage or configuration error, 3 a queue does not exist (run apply).\n"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *command(const char *name)
{
    size_t i;

    for (i = 0; name && i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: " PROG " SUBCOMMAND [-c FILE] [OPTIONS]\n"
               "       " PROG " [apply | definitions | policies] --check [-c FILE]\n"
               "\n"
               "Subcommands:\n");
    for (i = 0; i < N_COMMANDS; i++)
        fputs(commands[i].summary, f);
    fprintf(f,
            "\n"
            "Options:\n"
            "  -c, --config FILE   config file (default: $HOOKMQ_CONFIG, then\n"
            "                      /etc/hookmq/hookmq.conf)\n"
            "  --check             validate the config and the topology derived from it, print\n"
            "                      one line and exit (0 ok, 2 error); connects to nothing\n"
            "  --policy-managed    leave x-message-ttl, x-dead-letter-*, x-delivery-limit and\n"
            "                      x-overflow to policies (see `policies`); x-queue-type stays\n"
            "  -h, --help          this help (SUBCOMMAND --help: that subcommand's)\n"
            "  --version           print the version\n"
            "\n"
            "Exit status: 0 ok, 1 runtime failure (e.g. broker unreachable), 2 usage or\n"
            "configuration error, 3 an existing exchange or queue differs from the config, or\n"
            "a queue is missing. See docs/topology.md and docs/dlq.md.\n");
}

/* The usage after a usage error: the subcommand's usage line, or the whole main usage. */
static void usage_error(const struct command *cmd)
{
    if (cmd && cmd->help)
        fprintf(stderr, "%.*s\n", (int)strcspn(cmd->help, "\n"), cmd->help);
    else
        usage(stderr);
}

/* ---------------------------------------------------------------- the parser */

static void opts_free(struct dlx_opts *o)
{
    size_t i;

    for (i = 0; i < o->n_headers; i++) {
        free(o->keys[i]);
        free(o->vals[i]);
    }
    o->n_headers = 0;
}

/* edit --header K=V into o->keys / o->vals. */
static int add_header(struct dlx_opts *o, const char *kv)
{
    const char *eq = strchr(kv, '=');

    if (!eq || eq == kv || o->n_headers == DLX_MAX_HEADERS) {
        fprintf(stderr, PROG ": edit: --header takes NAME=VALUE (at most %d)\n", DLX_MAX_HEADERS);
        return HQ_EINVAL;
    }
    o->keys[o->n_headers] = strndup(kv, (size_t)(eq - kv));
    o->vals[o->n_headers] = strdup(eq + 1);
    if (!o->keys[o->n_headers] || !o->vals[o->n_headers]) {
        free(o->keys[o->n_headers]);
        free(o->vals[o->n_headers]);
        return HQ_ENOMEM;
    }
    o->n_headers++;
    if (!hq_dlq_edit_header_allowed(o->keys[o->n_headers - 1])) {
        fprintf(stderr, PROG ": edit: header '%s' may not be edited (hookmq-* and x-* are not; "
                        "printable, no spaces)\n", o->keys[o->n_headers - 1]);
        return HQ_EINVAL;
    }
    return HQ_OK;
}

/* Set the option opt of o to v (NULL for a flag). HQ_OK, or HQ_EINVAL after saying why. */
static int set_option(struct dlx_opts *o, const struct option *opt, const char *v)
{
    char *end;

    switch (opt->bit) {
    case O_CHECK: o->check = true; break;
    case O_POLICY_MANAGED: o->policy_managed = true; break;
    case O_USERS: o->users = true; break;
    case O_PASSWORD_FILE: o->password_file = v; break;
    case O_BROKER_VERSION: o->broker_version = v; break;
    case O_JSON: o->json = true; break;
    case O_LIMIT:
        errno = 0;
        o->limit = strtol(v, &end, 10);
        if (errno || end == v || *end != '\0' || o->limit < 1 || o->limit > 1000000000L) {
            fprintf(stderr, PROG ": --limit takes a number from 1 to 1000000000, not '%s'\n", v);
            return HQ_EINVAL;
        }
        o->has_limit = true;
        break;
    case O_ID: o->id = v; break;
    case O_TYPE: o->type = v; break;
    case O_ALL: o->all = true; break;
    case O_DRY_RUN: o->dry_run = true; break;
    case O_RESET_STEPS: o->reset_steps = true; break;
    case O_YES: o->yes = true; break;
    case O_BODY: o->body_file = v; break;
    case O_HEADER: return add_header(o, v);
    }
    return HQ_OK;
}

/* The command line into o (o->cmd and the positionals; *seen the options given, as O_*
 * bits). HQ_OK; HQ_EINVAL after saying why; *help / *version set when asked for. */
static int parse_args(int argc, char **argv, struct dlx_opts *o, unsigned *seen,
                      const char **pos, int *npos, bool *help, bool *version)
{
    int i;

    *seen = 0;
    *npos = 0;
    *help = *version = false;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '='), *v = NULL;
        size_t n = eq && strncmp(a, "--", 2) == 0 ? (size_t)(eq - a) : strlen(a), k;
        const struct option *opt = NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *help = true;
            continue;
        }
        if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            *version = true;
            continue;
        }
        if (strcmp(a, "-c") == 0 || (strncmp(a, "--config", n) == 0 && n == 8)) {
            if (a[n] == '=') {
                o->config = a + n + 1;
            } else if (i + 1 < argc) {
                o->config = argv[++i];
            } else {
                fprintf(stderr, PROG ": %s needs a file name\n", a);
                return HQ_EINVAL;
            }
            continue;
        }
        if (a[0] != '-' || a[1] == '\0') { /* the subcommand, then its NAME and ID */
            if (!o->cmd) {
                o->cmd = a;
            } else if (*npos < 2) {
                pos[(*npos)++] = a;
            } else {
                fprintf(stderr, PROG ": unexpected argument %s\n", a);
                return HQ_EINVAL;
            }
            continue;
        }
        for (k = 0; k < sizeof(options) / sizeof(options[0]); k++)
            if (strncmp(options[k].name, a, n) == 0 && options[k].name[n] == '\0')
                opt = &options[k];
        if (!opt || (a[n] == '=' && !opt->value)) {
            fprintf(stderr, PROG ": unknown option %s\n", a);
            return HQ_EINVAL;
        }
        if (opt->value) {
            if (a[n] == '=') {
                v = a + n + 1;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                fprintf(stderr, PROG ": %s needs a value\n", a);
                return HQ_EINVAL;
            }
        }
        *seen |= opt->bit;
        if (set_option(o, opt, v) != HQ_OK)
            return HQ_EINVAL;
    }
    return HQ_OK;
}

/* Options and positionals that do not belong to cmd (NULL: --check alone) are errors, not
 * silently ignored; so are combinations a subcommand refuses. HQ_OK or HQ_EINVAL. */
static int check_args(const struct command *cmd, unsigned seen, const char **pos, int npos,
                      struct dlx_opts *o)
{
    unsigned allowed = cmd ? cmd->opts : O_CHECK;
    const char *c = cmd ? cmd->name : "--check";
    size_t k;
    int minor;

    for (k = 0; k < sizeof(options) / sizeof(options[0]); k++)
        if ((seen & options[k].bit) && !(allowed & options[k].bit)) {
            fprintf(stderr, PROG ": %s goes %s", options[k].name, options[k].goes_with);
            if (cmd && cmd->help)
                fprintf(stderr, " (see " PROG " %s --help)", c);
            fprintf(stderr, "\n");
            return HQ_EINVAL;
        }
    if (cmd && npos != cmd->npos) {
        if (cmd->npos == 0)
            fprintf(stderr, PROG ": unexpected argument %s\n", pos[0]);
        else
            fprintf(stderr, PROG ": %s: give the consumer NAME%s (see " PROG " %s --help)\n", c,
                    cmd->npos == 2 ? " and the event ID" : "", c);
        return HQ_EINVAL;
    }
    if (cmd && cmd->npos >= 1)
        o->name = pos[0];
    if (cmd && cmd->npos == 2)
        o->id = pos[1];
    if (o->users && o->policy_managed) {
        fprintf(stderr, PROG ": --users (and --password-file) go with definitions only, "
                        "without --policy-managed\n");
        return HQ_EINVAL;
    }
    if (o->password_file && !o->users) {
        fprintf(stderr, PROG ": --password-file goes with definitions --users\n");
        return HQ_EINVAL;
    }
    if (o->broker_version && o->users) {
        fprintf(stderr, PROG ": --broker-version goes with definitions or policies, not with "
                        "--users\n");
        return HQ_EINVAL;
    }
    if (hq_broker_version_parse(o->broker_version ? o->broker_version : HQ_TOPOLOGY_DEFAULT_BROKER,
                                &o->broker_major, &minor) != HQ_OK) {
        fprintf(stderr, PROG ": --broker-version: '%s' is not a RabbitMQ version (e.g. 3.10 or "
                        "4.0)\n", o->broker_version);
        return HQ_EINVAL;
    }
    if (cmd && cmd->run == dlx_redrive &&
        (o->id != NULL) + (o->type != NULL) + (o->all ? 1 : 0) != 1) {
        fprintf(stderr, PROG ": redrive needs exactly one of --id ID, --type GLOB, --all\n");
        return HQ_EINVAL;
    }
    if (cmd && cmd->run == dlx_edit && !o->body_file && o->n_headers == 0) {
        fprintf(stderr, PROG ": edit: nothing to change: give --body FILE and/or --header K=V\n");
        return HQ_EINVAL;
    }
    return HQ_OK;
}

int main(int argc, char **argv)
{
    struct hq_config *cfg = NULL;
    const struct command *cmd;
    struct dlx_opts o;
    const char *pos[2] = {NULL, NULL};
    unsigned seen;
    bool help, version;
    char err[1024];
    int rc, npos;

    memset(&o, 0, sizeof(o));
    rc = parse_args(argc, argv, &o, &seen, pos, &npos, &help, &version);
    cmd = command(o.cmd);
    if (rc != HQ_OK) {
        usage_error(cmd);
        goto out;
    }
    if (help) {
        if (cmd && cmd->help)
            fputs(cmd->help, stdout);
        else
            usage(stdout);
        goto out;
    }
    if (version) {
        printf(PROG " %s\n", HQ_VERSION);
        goto out;
    }
    if (!o.cmd && !o.check) {
        usage(stderr);
        rc = HQ_EINVAL;
        goto out;
    }
    if (o.cmd && !cmd) {
        fprintf(stderr, PROG ": unknown subcommand '%s'\n", o.cmd);
        usage(stderr);
        rc = HQ_EINVAL;
        goto out;
    }
    if ((rc = check_args(cmd, seen, pos, npos, &o)) != HQ_OK) {
        usage_error(cmd);
        goto out;
    }

    hq_log_setup(PROG, HQ_LOG_WARN, HQ_LOG_TEXT);
    rc = hq_config_load(hq_config_default_path(o.config), &cfg, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, "%s\n", err);
        rc = rc == HQ_ENOMEM ? rc : HQ_ECONFIG;
        goto out;
    }
    hq_log_setup(PROG, cfg->log_level < HQ_LOG_WARN ? cfg->log_level : HQ_LOG_WARN,
                 cfg->log_format);
    rc = o.check ? dlx_check(cfg, &o) : cmd->run(cfg, &o);
out:
    hq_config_free(cfg);
    opts_free(&o);
    return hq_exit_code(rc);
}
