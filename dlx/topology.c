/* topology: the topology subcommands of hookmq-dlx (docs/topology.md, docs/dlq.md): apply
 * declares every exchange, queue and binding hookmq needs (never deletes), definitions and
 * policies print them (definitions --users: users.c), status checks them against the broker
 * with each consumer's queue depths and the age of its oldest parked message, and --check
 * derives them from the config without connecting. The command line is main.c's. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlx.h"
#include "hq_buf.h"
#include "hq_log.h"
#include "hq_time.h"
#include "hq_topology.h"
#include "users.h"

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

static int apply(const struct hq_config *cfg, const struct hq_topology *t)
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
    return rc == HQ_ENOTFOUND ? HQ_EBROKER : rc; /* HQ_ENOTFOUND is a missing queue (exit 3) */
}

static int print_doc(const struct hq_config *cfg, const struct hq_topology *t, bool definitions)
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
static int print_users(const struct hq_config *cfg, const char *password_file)
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

/* The topology of cfg into t: HQ_OK, or the status after saying why. */
static int build(const struct hq_config *cfg, struct hq_topology *t)
{
    int rc = hq_topology_build(cfg, t);

    if (rc != HQ_OK)
        fprintf(stderr, PROG ": cannot derive the topology from %s: %s\n",
                cfg->path ? cfg->path : "the config", hq_strerror(rc));
    return rc;
}

int dlx_check(const struct hq_config *cfg, const struct dlx_opts *o)
{
    struct hq_topology t = {NULL, 0};
    int rc = build(cfg, &t);

    if (rc == HQ_OK)
        printf("%s: ok (%zu consumers, %zu topology objects)\n",
               hq_config_default_path(o->config), cfg->n_consumers, t.n);
    hq_topology_free(&t);
    return rc;
}

int dlx_apply(const struct hq_config *cfg, const struct dlx_opts *o)
{
    struct hq_topology t = {NULL, 0};
    int rc = build(cfg, &t);

    if (rc == HQ_OK) {
        /* apply targets the broker it reaches (hq_topology_apply_ex) */
        if (o->policy_managed)
            hq_topology_strip_policy_args(&t);
        rc = apply(cfg, &t);
    }
    hq_topology_free(&t);
    return rc;
}

int dlx_definitions(const struct hq_config *cfg, const struct dlx_opts *o)
{
    struct hq_topology t = {NULL, 0};
    int rc;

    if (o->users)
        return print_users(cfg, o->password_file);
    if ((rc = build(cfg, &t)) == HQ_OK) {
        hq_topology_target(&t, o->broker_major);
        if (o->policy_managed)
            hq_topology_strip_policy_args(&t);
        rc = print_doc(cfg, &t, true);
    }
    hq_topology_free(&t);
    return rc;
}

int dlx_policies(const struct hq_config *cfg, const struct dlx_opts *o)
{
    struct hq_topology t = {NULL, 0};
    int rc;

    if ((rc = build(cfg, &t)) == HQ_OK) {
        hq_topology_target(&t, o->broker_major);
        rc = print_doc(cfg, &t, false);
    }
    hq_topology_free(&t);
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

/* The age of the oldest message of dlq (depth ready messages): every message is read on
 * sx->peek and put back in order (a quorum queue cannot be peeked at its head alone without
 * reordering it once messages have been returned to it before). */
static void oldest(struct status_ctx *sx, const char *dlq, uint32_t depth, char *out,
                   size_t outsz)
{
    char age[32], t[48];
    int64_t min_ms = 0;
    size_t seen = 0;

    out[0] = '\0';
    if (!sx->peek)
        return;
    if (depth > DLX_SCAN_CAP) {
        snprintf(out, outsz, "oldest: not computed (over %u messages)", DLX_SCAN_CAP);
        return;
    }
    if (dlx_oldest(sx->peek, dlq, &min_ms, &seen) != HQ_OK) {
        sx->peek_failed++;
        snprintf(out, outsz, "oldest: ? (%s)", hq_consume_error(sx->peek));
        dlx_disconnect(sx->peek);
        sx->peek = NULL;
        return;
    }
    if (min_ms > 0) {
        dlx_fmt_age(sx->now_ms - min_ms, age, sizeof(age));
        dlx_fmt_time(min_ms, t, sizeof(t));
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

int dlx_status(const struct hq_config *cfg, const struct dlx_opts *o)
{
    struct status_ctx sx;
    struct hq_topology t = {NULL, 0};
    size_t i, k;
    int rc;

    memset(&sx, 0, sizeof(sx));
    sx.problems = (struct hq_buf)HQ_BUF_INIT(1u << 20);
    sx.now_ms = hq_now_ms();
    if ((rc = build(cfg, &t)) != HQ_OK)
        goto out;
    if (o->policy_managed)
        hq_topology_strip_policy_args(&t);
    if ((rc = dlx_connect(cfg, "status", &sx.decl)) != HQ_OK)
        goto out;
    {
        int major, minor;

        /* the arguments apply declared on this broker (x-delivery-limit = -1 on 4.x) */
        if (hq_amqp_server_version(sx.decl, &major, &minor) == HQ_OK)
            hq_topology_target(&t, major);
    }
    if (dlx_connect(cfg, "status peek", &sx.peek) != HQ_OK)
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
    dlx_disconnect(sx.peek);
    dlx_disconnect(sx.decl);
    hq_topology_free(&t);
    hq_buf_free(&sx.problems);
    return rc;
}
