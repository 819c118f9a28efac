/* hookmq-dlx: topology and dead-letter operations.
 *
 *   hookmq-dlx SUBCOMMAND [-c FILE] [ARGS]
 *   hookmq-dlx [apply | definitions | policies] --check [-c FILE]
 *
 * apply        declare every exchange, queue and binding hookmq needs (never deletes)
 * definitions  print the same topology as RabbitMQ definitions JSON
 * policies     print `rabbitmqctl set_policy` commands for the DLX/TTL/limit arguments
 * definitions --users  print a RabbitMQ user per program with its permissions (users.c)
 * --check      load the config and derive the topology from it, print one line and exit;
 *              connects to nothing (alone, or with apply, definitions or policies)
 *
 * Exit codes (docs/interface.md): 0 ok, 1 runtime failure, 2 usage or configuration error,
 * 3 topology conflict. exit_code() is the only mapping from a status to an exit code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_amqp.h"
#include "hq_buf.h"
#include "hq_config.h"
#include "hq_log.h"
#include "hq_status.h"
#include "hq_topology.h"
#include "dlq.h"
#include "edit.h"
#include "users.h"

#define PROG "hookmq-dlx"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_CONFLICT = 3 };

static int exit_code(int status)
{
    switch (status) {
    case HQ_OK: return EXIT_OK;
    case HQ_ECONFIG:
    case HQ_EINVAL: return EXIT_USAGE;
    case HQ_ECONFLICT: return EXIT_CONFLICT;
    default: return EXIT_RUNTIME;
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " SUBCOMMAND [-c FILE] [OPTIONS]\n"
            "       " PROG " [apply | definitions | policies] --check [-c FILE]\n"
            "\n"
            "Subcommands:\n"
            "  apply [--policy-managed]        declare the exchanges, queues and bindings of the\n"
            "                                  config (never deletes; prints each object as\n"
            "                                  created or exists; exit 3 on a conflict)\n"
            "  definitions [--policy-managed]  print them as RabbitMQ definitions JSON (import\n"
            "                                  in the management UI: Overview > Import definitions)\n"
            "  definitions --users [--password-file F]\n"
            "                                  print instead one RabbitMQ user per program with the\n"
            "                                  narrowest permissions (docs/operations.md); F holds\n"
            "                                  user:password lines, users without one get none\n"
            "  policies                        print `rabbitmqctl set_policy` commands setting\n"
            "                                  DLX, TTL, delivery limit and overflow by policy\n"
            "  definitions and policies take [--broker-version X.Y]: the RabbitMQ version they\n"
            "  are for (default " HQ_TOPOLOGY_DEFAULT_BROKER "; apply asks the broker)\n");
    hq_dlx_dlq_usage(f); /* status, list, show, redrive, purge: dlq.c */
    hq_dlx_edit_usage(f); /* edit: edit.c */
    fprintf(f,
            "\n"
            "Options:\n"
            "  -c, --config FILE   config file (default: $HOOKMQ_CONFIG, then\n"
            "                      /etc/hookmq/hookmq.conf)\n"
            "  --check             validate the config and the topology derived from it, print\n"
            "                      one line and exit (0 ok, 2 error); connects to nothing\n"
            "  --policy-managed    leave x-message-ttl, x-dead-letter-*, x-delivery-limit and\n"
            "                      x-overflow to policies (see `policies`); x-queue-type stays\n"
            "  -h, --help          this help\n"
            "  --version           print the version\n"
            "\n"
            "Exit status: 0 ok, 1 runtime failure (e.g. broker unreachable), 2 usage or\n"
            "configuration error, 3 an existing exchange or queue differs from the config.\n"
            "See docs/topology.md.\n");
}

struct opts {
    const char *cmd;
    const char *config;
    bool policy_managed;
    bool users;                /* definitions --users */
    const char *password_file; /* definitions --users --password-file F */
    bool check;                /* --check: validate and exit */
    const char *broker_version; /* definitions / policies --broker-version X.Y */
};

/* True when argv asks for --check: the DLQ subcommands (dlq.c) are then not dispatched, so
 * that `hookmq-dlx list NAME --check` is refused here as a usage error. */
static bool wants_check(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "--check") == 0)
            return true;
    return false;
}

/* HQ_OK, or HQ_EINVAL after printing why. *help / *version set when asked for. */
static int parse_args(int argc, char **argv, struct opts *o, bool *help, bool *version)
{
    int i;

    memset(o, 0, sizeof(*o));
    *help = *version = false;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            *help = true;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            *version = true;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, PROG ": %s needs a file name\n", a);
                return HQ_EINVAL;
            }
            o->config = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            o->config = a + 9;
        } else if (strcmp(a, "--policy-managed") == 0) {
            o->policy_managed = true;
        } else if (strcmp(a, "--check") == 0) {
            o->check = true;
        } else if (strcmp(a, "--broker-version") == 0 ||
                   strncmp(a, "--broker-version=", 17) == 0) {
            if (a[16] == '=') {
                o->broker_version = a + 17;
            } else if (i + 1 < argc) {
                o->broker_version = argv[++i];
            } else {
                fprintf(stderr, PROG ": %s needs a version (e.g. 3.10 or 4.0)\n", a);
                return HQ_EINVAL;
            }
        } else if (strcmp(a, "--users") == 0) {
            o->users = true;
        } else if (strcmp(a, "--password-file") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, PROG ": %s needs a file name\n", a);
                return HQ_EINVAL;
            }
            o->password_file = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, PROG ": unknown option %s\n", a);
            return HQ_EINVAL;
        } else if (!o->cmd) {
            o->cmd = a;
        } else {
            fprintf(stderr, PROG ": unexpected argument %s\n", a);
            return HQ_EINVAL;
        }
    }
    return HQ_OK;
}

static const char *state_name(enum hq_obj_state st)
{
    switch (st) {
    case HQ_OBJ_CREATED: return "created";
    case HQ_OBJ_EXISTS: return "exists";
    case HQ_OBJ_BOUND: return "bound";
    case HQ_OBJ_CONFLICT: return "CONFLICT";
    case HQ_OBJ_LIMITED: return "exists, DELIVERY LIMIT (needs a policy)";
    }
    return "?";
}

struct apply_counts {
    int n[5];
    struct hq_topology limited; /* HQ_OBJ_LIMITED queues (shallow copies, not to be freed) */
    struct hq_obj lim[64];
};

static void report(void *ud, const struct hq_obj *o, enum hq_obj_state st)
{
    struct apply_counts *counts = ud;

    if ((unsigned)st < 5)
        counts->n[st]++;
    if (st == HQ_OBJ_LIMITED && counts->limited.n < sizeof(counts->lim) / sizeof(counts->lim[0]))
        counts->lim[counts->limited.n++] = *o;
    switch (o->kind) {
    case HQ_OBJ_EXCHANGE:
        printf("exchange %-40s %-8s %s\n", o->name, o->type, state_name(st));
        break;
    case HQ_OBJ_QUEUE:
        printf("queue    %-40s %-8s %s\n", o->name, "", state_name(st));
        break;
    case HQ_OBJ_BINDING:
        printf("binding  %s -> %s (%s) %s\n", o->source, o->name,
               o->routing_key && o->routing_key[0] ? o->routing_key : "\"\"", state_name(st));
        break;
    }
    fflush(stdout);
}

static int cmd_apply(const struct hq_config *cfg, const struct hq_topology *t)
{
    struct apply_counts counts;
    static char msg[65536];
    int created = 0, rc;

    memset(&counts, 0, sizeof(counts));
    counts.limited.objs = counts.lim;
    rc = hq_topology_apply_ex(cfg, t, report, &counts, &created, msg, sizeof(msg));
    if (rc == HQ_OK || rc == HQ_ECONFLICT)
        printf("apply: %d created, %d existed, %d bindings ensured, %d conflicts\n", created,
               counts.n[HQ_OBJ_EXISTS] + counts.n[HQ_OBJ_LIMITED], counts.n[HQ_OBJ_BOUND],
               counts.n[HQ_OBJ_CONFLICT]);
    if (counts.n[HQ_OBJ_LIMITED]) {
        struct hq_buf pol = HQ_BUF_INIT(1u << 20);

        fprintf(stderr,
                PROG ": WARNING: %d queue%s declared before the broker ran RabbitMQ 4 keep its "
                "default delivery limit of 20: each read of `list`, `show`, `status` or the "
                "automatic redrive counts as a delivery, and the 21st drops the message. "
                "Disable the limit with %s (docs/deploy.md, \"Upgrading to RabbitMQ 4\"):\n",
                counts.n[HQ_OBJ_LIMITED], counts.n[HQ_OBJ_LIMITED] == 1 ? "" : "s",
                counts.n[HQ_OBJ_LIMITED] == 1 ? "this policy" : "these policies");
        if (hq_topology_policies(cfg, &counts.limited, &pol) == HQ_OK)
            fwrite(pol.data, 1, pol.len, stderr);
        hq_buf_free(&pol);
    }
    if (rc == HQ_ECONFLICT)
        fprintf(stderr, PROG ": topology conflict (nothing was deleted or changed):\n%s\n", msg);
    else if (rc != HQ_OK)
        fprintf(stderr, PROG ": apply failed: %s%s%s\n", hq_strerror(rc), msg[0] ? ": " : "", msg);
    return rc;
}

static int cmd_print(const struct hq_config *cfg, const struct hq_topology *t, bool definitions)
{
    struct hq_buf out = HQ_BUF_INIT(64u << 20);
    int rc = definitions ? hq_topology_definitions(cfg, t, &out) : hq_topology_policies(cfg, t, &out);

    if (rc == HQ_OK && out.len && fwrite(out.data, 1, out.len, stdout) != out.len)
        rc = HQ_EIO;
    if (rc != HQ_OK)
        fprintf(stderr, PROG ": %s\n", hq_strerror(rc));
    hq_buf_free(&out);
    return rc;
}

/* definitions --users: the users and permissions document (users.c) */
static int cmd_users(const struct hq_config *cfg, const char *password_file)
{
    struct hq_buf out = HQ_BUF_INIT(16u << 20);
    size_t nopw = 0;
    int rc = hq_dlx_users(cfg, password_file, &out, &nopw);

    if (rc == HQ_OK && fwrite(out.data, 1, out.len, stdout) != out.len)
        rc = HQ_EIO;
    if (rc == HQ_OK && nopw > 0)
        fprintf(stderr,
                PROG ": %zu user%s without a password: after the import, set each with\n"
                "  rabbitmqctl change_password USER PASSWORD\n"
                "(importing a user without a password clears the password of an existing one)\n",
                nopw, nopw == 1 ? "" : "s");
    else if (rc != HQ_OK && rc != HQ_ECONFIG)
        fprintf(stderr, PROG ": %s\n", hq_strerror(rc));
    hq_buf_free(&out);
    return rc;
}

int main(int argc, char **argv)
{
    struct hq_config *cfg = NULL;
    struct hq_topology topo = {NULL, 0};
    struct opts o;
    bool help, version;
    char err[1024];
    int rc, major, minor;

    if (!wants_check(argc, argv) && hq_dlx_dlq_dispatch(argc, argv, &rc))
        return rc; /* status, list, show, redrive, purge (dlq.c) */
    if (!wants_check(argc, argv) && hq_dlx_edit_dispatch(argc, argv, &rc))
        return rc; /* edit (edit.c) */
    rc = parse_args(argc, argv, &o, &help, &version);
    if (rc != HQ_OK) {
        usage(stderr);
        return exit_code(rc);
    }
    if (help) {
        usage(stdout);
        return EXIT_OK;
    }
    if (version) {
        printf(PROG " %s\n", HQ_VERSION);
        return EXIT_OK;
    }
    if (o.check && o.cmd && strcmp(o.cmd, "apply") != 0 &&
        strcmp(o.cmd, "definitions") != 0 && strcmp(o.cmd, "policies") != 0) {
        fprintf(stderr, PROG ": --check goes alone or with apply, definitions or policies\n");
        return exit_code(HQ_EINVAL);
    }
    if (!o.cmd && !o.check) {
        usage(stderr);
        return exit_code(HQ_EINVAL);
    }
    if (o.cmd && strcmp(o.cmd, "apply") != 0 && strcmp(o.cmd, "definitions") != 0 &&
        strcmp(o.cmd, "policies") != 0) {
        fprintf(stderr, PROG ": unknown subcommand '%s'\n", o.cmd);
        usage(stderr);
        return exit_code(HQ_EINVAL);
    }
    if (o.policy_managed && (!o.cmd || strcmp(o.cmd, "policies") == 0)) {
        fprintf(stderr, PROG ": --policy-managed goes with apply or definitions\n");
        return exit_code(HQ_EINVAL);
    }
    if ((o.users || o.password_file) &&
        (!o.cmd || strcmp(o.cmd, "definitions") != 0 || o.policy_managed || !o.users)) {
        fprintf(stderr, PROG ": --users (and --password-file) go with definitions only\n");
        return exit_code(HQ_EINVAL);
    }

    if (o.broker_version &&
        (!o.cmd || (strcmp(o.cmd, "definitions") != 0 && strcmp(o.cmd, "policies") != 0) ||
         o.users)) {
        fprintf(stderr, PROG ": --broker-version goes with definitions or policies (apply "
                        "reads the version from the broker)\n");
        return exit_code(HQ_EINVAL);
    }
    if (hq_broker_version_parse(o.broker_version ? o.broker_version : HQ_TOPOLOGY_DEFAULT_BROKER,
                                &major, &minor) != HQ_OK) {
        fprintf(stderr, PROG ": --broker-version: '%s' is not a RabbitMQ version (e.g. 3.10 or "
                        "4.0)\n", o.broker_version);
        return exit_code(HQ_EINVAL);
    }

    hq_log_setup(PROG, HQ_LOG_WARN, HQ_LOG_TEXT);
    rc = hq_config_load(hq_config_default_path(o.config), &cfg, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, "%s\n", err);
        return exit_code(rc == HQ_ENOMEM ? rc : HQ_ECONFIG);
    }
    hq_log_setup(PROG, cfg->log_level < HQ_LOG_WARN ? cfg->log_level : HQ_LOG_WARN,
                 cfg->log_format);
    if (o.users && !o.check) {
        rc = cmd_users(cfg, o.password_file);
        goto out;
    }
    rc = hq_topology_build(cfg, &topo);
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": %s: cannot derive the topology: %s\n", cfg->path ? cfg->path : "",
                hq_strerror(rc));
        goto out;
    }
    if (o.check) {
        printf("%s: ok (%zu consumers, %zu topology objects)\n",
               hq_config_default_path(o.config), cfg->n_consumers, topo.n);
        goto out;
    }
    if (strcmp(o.cmd, "apply") != 0)
        hq_topology_target(&topo, major); /* apply does it for the broker it reaches */
    if (strcmp(o.cmd, "policies") == 0) {
        rc = cmd_print(cfg, &topo, false);
        goto out;
    }
    if (o.policy_managed)
        hq_topology_strip_policy_args(&topo);
    if (strcmp(o.cmd, "apply") == 0)
        rc = cmd_apply(cfg, &topo);
    else
        rc = cmd_print(cfg, &topo, true);
out:
    hq_topology_free(&topo);
    hq_config_free(cfg);
    return exit_code(rc);
}
