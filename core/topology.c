/* topology: the broker objects hookmq needs (docs/topology.md), built
 * from the config, declared by `hookmq-dlx apply`, exported as definitions JSON and as
 * `rabbitmqctl set_policy` commands.
 *
 * Every string in a struct hq_topology (object fields and x-argument values) is owned by it
 * and released by hq_topology_free(); x-argument keys are static. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq__amqp.h"
#include "hq_json.h"
#include "hq_log.h"
#include "hq_time.h"
#include "hq_topology.h"

#define UNROUTED "hookmq.unrouted"
#define LIFECYCLE "hookmq.lifecycle"
#define ARCHIVE "hookmq.archive"
#define PREFIX "hookmq."

struct builder {
    struct hq_topology *t;
    size_t cap;
    int rc;
};

static char *xstrdup(struct builder *b, const char *s)
{
    char *d;

    if (b->rc != HQ_OK)
        return NULL;
    d = strdup(s ? s : "");
    if (!d)
        b->rc = HQ_ENOMEM;
    return d;
}

static char *xprintf(struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *xprintf(struct builder *b, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    if (b->rc != HQ_OK)
        return NULL;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        b->rc = HQ_ETOOBIG;
        return NULL;
    }
    return xstrdup(b, buf);
}

static struct hq_obj *add_obj(struct builder *b, enum hq_obj_kind kind, const char *owner)
{
    struct hq_obj *o;

    if (b->rc != HQ_OK)
        return NULL;
    if (b->t->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 32;
        struct hq_obj *p = realloc(b->t->objs, ncap * sizeof(*p));
        if (!p) {
            b->rc = HQ_ENOMEM;
            return NULL;
        }
        b->t->objs = p;
        b->cap = ncap;
    }
    o = &b->t->objs[b->t->n++];
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    o->owner = xstrdup(b, owner);
    return o;
}

/* The one place that appends an x-argument to o: the next free slot, with key and is_int set
 * and no value yet (the caller sets str or num); NULL when o has no room left. */
static struct hq_targ *targ_next(struct hq_obj *o, const char *key, bool is_int)
{
    struct hq_targ *a;

    if (o->n_args >= sizeof(o->args) / sizeof(o->args[0]))
        return NULL;
    a = &o->args[o->n_args++];
    a->key = key;
    a->is_int = is_int;
    a->str = NULL;
    a->num = 0;
    return a;
}

/* targ_next while building: NULL when o is NULL or b already failed; o full sets b->rc. */
static struct hq_targ *arg_add(struct builder *b, struct hq_obj *o, const char *key, bool is_int)
{
    struct hq_targ *a;

    if (!o || b->rc != HQ_OK)
        return NULL;
    a = targ_next(o, key, is_int);
    if (!a)
        b->rc = HQ_ETOOBIG;
    return a;
}

static void arg_str(struct builder *b, struct hq_obj *o, const char *key, const char *val)
{
    struct hq_targ *a = arg_add(b, o, key, false);

    if (a)
        a->str = xstrdup(b, val);
}

static void arg_int(struct builder *b, struct hq_obj *o, const char *key, int64_t v)
{
    struct hq_targ *a = arg_add(b, o, key, true);

    if (a)
        a->num = v;
}

/* Like arg_str, taking ownership of val (NULL: allocation failed, b->rc is set). */
static void arg_own(struct builder *b, struct hq_obj *o, const char *key, char *val)
{
    struct hq_targ *a = val ? arg_add(b, o, key, false) : NULL;

    if (a)
        a->str = val;
    else
        free(val);
}

static void add_exchange(struct builder *b, const char *name, const char *type, const char *owner,
                         const char *alternate)
{
    struct hq_obj *o = add_obj(b, HQ_OBJ_EXCHANGE, owner);

    if (!o)
        return;
    o->name = xstrdup(b, name);
    o->type = xstrdup(b, type);
    if (alternate)
        arg_str(b, o, "alternate-exchange", alternate);
}

static struct hq_obj *add_queue(struct builder *b, const struct hq_config *cfg, char *name,
                                const char *owner)
{
    struct hq_obj *o = add_obj(b, HQ_OBJ_QUEUE, owner);

    if (!o) {
        free(name);
        return NULL;
    }
    o->name = name;
    if (cfg->broker.queue_type == HQ_QUEUE_QUORUM)
        arg_str(b, o, "x-queue-type", "quorum");
    return o;
}

static void add_binding(struct builder *b, const char *source, const char *queue, const char *key,
                        const char *owner)
{
    struct hq_obj *o = add_obj(b, HQ_OBJ_BINDING, owner);

    if (!o)
        return;
    o->name = xstrdup(b, queue);
    o->source = xstrdup(b, source);
    o->routing_key = xstrdup(b, key);
}

bool hq_topology_delay_first(const struct hq_consumer_cfg *c, size_t i)
{
    size_t k;

    for (k = 0; k < i; k++)
        if (c->delays_ms[k] == c->delays_ms[i])
            return false;
    return true;
}

static bool first_binding(const struct hq_consumer_cfg *c, size_t i)
{
    size_t k;

    for (k = 0; k < i; k++)
        if (strcmp(c->bindings[k], c->bindings[i]) == 0)
            return false;
    return true;
}

int hq_topology_build(const struct hq_config *cfg, struct hq_topology *out)
{
    struct builder b;
    struct hq_obj *o;
    const char *ex;
    bool quorum;
    size_t i, k;

    if (!cfg || !out)
        return HQ_EINVAL;
    memset(out, 0, sizeof(*out));
    ex = cfg->broker.exchange;
    if (!ex || !ex[0] || strcmp(ex, UNROUTED) == 0 || strcmp(ex, LIFECYCLE) == 0 ||
        strcmp(ex, "amq.default") == 0)
        return HQ_EINVAL;
    quorum = cfg->broker.queue_type == HQ_QUEUE_QUORUM;
    b.t = out;
    b.cap = 0;
    b.rc = HQ_OK;

    /* exchanges */
    add_exchange(&b, ex, "topic", "gateway", UNROUTED);
    add_exchange(&b, UNROUTED, "fanout", "gateway", NULL);
    add_exchange(&b, LIFECYCLE, "topic", "archive", NULL);

    /* queues */
    o = add_queue(&b, cfg, xstrdup(&b, UNROUTED), "gateway");
    if (o)
        o->unlimited = true;
    o = add_queue(&b, cfg, xstrdup(&b, ARCHIVE), "archive");
    if (o)
        o->unlimited = true;
    for (i = 0; i < cfg->n_consumers && b.rc == HQ_OK; i++) {
        const struct hq_consumer_cfg *c = &cfg->consumers[i];

        if (!c->name[0]) {
            b.rc = HQ_EINVAL;
            break;
        }
        /* work queue: rejected / over the delivery limit -> the DLQ, via the default exchange */
        o = add_queue(&b, cfg, xprintf(&b, PREFIX "%s", c->name), c->name);
        arg_str(&b, o, "x-dead-letter-exchange", "");
        arg_own(&b, o, "x-dead-letter-routing-key", xprintf(&b, PREFIX "%s.dlq", c->name));
        if (quorum) {
            arg_str(&b, o, "x-dead-letter-strategy", "at-least-once");
            arg_str(&b, o, "x-overflow", "reject-publish");
            arg_int(&b, o, "x-delivery-limit", HQ_TOPOLOGY_DELIVERY_LIMIT);
        }
        /* retry tiers: expire after the delay, then back to the work queue (never through the
         * events exchange: that would copy the message to every other bound queue) */
        for (k = 0; k < c->n_delays && b.rc == HQ_OK; k++) {
            char d[32];

            if (!hq_topology_delay_first(c, k))
                continue;
            if (c->delays_ms[k] > (uint64_t)INT32_MAX) {
                b.rc = HQ_EINVAL; /* x-message-ttl is at most 2^32-1 ms; keep it signed */
                break;
            }
            hq_duration_format(c->delays_ms[k], d, sizeof(d));
            o = add_queue(&b, cfg, xprintf(&b, PREFIX "%s.retry.%s", c->name, d), c->name);
            arg_int(&b, o, "x-message-ttl", (int64_t)c->delays_ms[k]);
            arg_str(&b, o, "x-dead-letter-exchange", "");
            arg_own(&b, o, "x-dead-letter-routing-key", xprintf(&b, PREFIX "%s", c->name));
            if (quorum) {
                arg_str(&b, o, "x-dead-letter-strategy", "at-least-once");
                arg_str(&b, o, "x-overflow", "reject-publish");
            }
        }
        o = add_queue(&b, cfg, xprintf(&b, PREFIX "%s.dlq", c->name), c->name);
        if (o)
            o->unlimited = true;
    }

    /* bindings */
    add_binding(&b, UNROUTED, UNROUTED, "", "gateway");
    add_binding(&b, ex, ARCHIVE, "#", "archive");
    add_binding(&b, LIFECYCLE, ARCHIVE, "#", "archive");
    for (i = 0; i < cfg->n_consumers && b.rc == HQ_OK; i++) {
        const struct hq_consumer_cfg *c = &cfg->consumers[i];
        char q[HQ_NAME_MAX + 16];

        snprintf(q, sizeof(q), PREFIX "%s", c->name);
        for (k = 0; k < c->n_bindings; k++)
            if (c->bindings[k] && first_binding(c, k))
                add_binding(&b, ex, q, c->bindings[k], c->name);
    }

    if (b.rc != HQ_OK) {
        hq_topology_free(out);
        return b.rc;
    }
    return HQ_OK;
}

/* Add to o (a copy or t's own) what a broker of this major version needs. */
static void obj_target(struct hq_obj *o, int broker_major)
{
    const struct hq_targ *qt = hq_obj_arg(o, "x-queue-type");
    struct hq_targ *a;

    if (o->kind != HQ_OBJ_QUEUE || !o->unlimited || broker_major < 4 || !qt || qt->is_int ||
        !qt->str || strcmp(qt->str, "quorum") != 0 || hq_obj_arg(o, "x-delivery-limit"))
        return;
    a = targ_next(o, "x-delivery-limit", true);
    if (a)
        a->num = HQ_TOPOLOGY_NO_DELIVERY_LIMIT;
}

void hq_topology_target(struct hq_topology *t, int broker_major)
{
    size_t i;

    for (i = 0; t && i < t->n; i++)
        obj_target(&t->objs[i], broker_major);
}

void hq_topology_free(struct hq_topology *t)
{
    size_t i, k;

    if (!t)
        return;
    for (i = 0; i < t->n; i++) {
        struct hq_obj *o = &t->objs[i];
        for (k = 0; k < o->n_args; k++)
            if (!o->args[k].is_int)
                free((void *)o->args[k].str);
        free(o->name);
        free(o->type);
        free(o->source);
        free(o->routing_key);
        free(o->owner);
    }
    free(t->objs);
    t->objs = NULL;
    t->n = 0;
}

const struct hq_targ *hq_obj_arg(const struct hq_obj *o, const char *key)
{
    size_t k;

    if (!o || !key)
        return NULL;
    for (k = 0; k < o->n_args; k++)
        if (strcmp(o->args[k].key, key) == 0)
            return &o->args[k];
    return NULL;
}

/* ---------------------------------------------------------------- policies */

/* x-arguments that a policy can set instead (policy key = without "x-"). */
static const char *const policy_args[] = {
    "x-message-ttl",  "x-dead-letter-exchange", "x-dead-letter-routing-key",
    "x-delivery-limit", "x-dead-letter-strategy", "x-overflow",
};

static bool is_policy_arg(const char *key)
{
    size_t i;

    for (i = 0; i < sizeof(policy_args) / sizeof(policy_args[0]); i++)
        if (strcmp(policy_args[i], key) == 0)
            return true;
    return false;
}

void hq_topology_strip_policy_args(struct hq_topology *t)
{
    size_t i, k, w;

    if (!t)
        return;
    for (i = 0; i < t->n; i++) {
        struct hq_obj *o = &t->objs[i];
        if (o->kind != HQ_OBJ_QUEUE)
            continue;
        for (k = 0, w = 0; k < o->n_args; k++) {
            if (is_policy_arg(o->args[k].key)) {
                if (!o->args[k].is_int)
                    free((void *)o->args[k].str);
                continue;
            }
            o->args[w++] = o->args[k];
        }
        o->n_args = w;
        o->unlimited = false; /* the delivery limit too is the policy's (hq_topology_policies) */
    }
}

/* Append s single-quoted for a POSIX shell. */
static int shell_quote(struct hq_buf *out, const char *s)
{
    int rc = hq_buf_append(out, "'", 1);

    for (; *s && rc == HQ_OK; s++) {
        if (*s == '\'')
            rc = hq_buf_append(out, "'\\''", 4);
        else
            rc = hq_buf_append(out, s, 1);
    }
    if (rc == HQ_OK)
        rc = hq_buf_append(out, "'", 1);
    return rc;
}

static int json_str(struct hq_buf *out, const char *s)
{
    int rc = hq_buf_append(out, "\"", 1);

    if (rc == HQ_OK)
        rc = hq_buf_append_json_str(out, s, strlen(s));
    if (rc == HQ_OK)
        rc = hq_buf_append(out, "\"", 1);
    return rc;
}

void hq_topology_vhost(const struct hq_config *cfg, char *vhost, size_t n)
{
    if (cfg->broker.n_uris == 0 || hq__amqp_uri_vhost(cfg->broker.uris[0], vhost, n) != HQ_OK)
        snprintf(vhost, n, "/");
}

const char *hq_topology_queue_kind(const char *consumer, const char *queue)
{
    size_t n = strlen("hookmq.") + strlen(consumer);

    if (strlen(queue) <= n)
        return "work";
    if (strcmp(queue + n, ".dlq") == 0)
        return "dlq";
    return "retry";
}

int hq_topology_policies(const struct hq_config *cfg, const struct hq_topology *t,
                         struct hq_buf *out)
{
    char vhost[256];
    size_t i, k;
    int rc = HQ_OK;

    if (!cfg || !t || !out)
        return HQ_EINVAL;
    hq_topology_vhost(cfg, vhost, sizeof(vhost));
    rc = hq_buf_appendf(out,
                        "# RabbitMQ policies equivalent to the x-arguments hookmq declares.\n"
                        "# Use them with `hookmq-dlx apply --policy-managed`, which declares the\n"
                        "# queues without these arguments. Only one policy applies to a queue\n"
                        "# (the highest priority): merge these into any policy of yours that\n"
                        "# matches the same queues.\n");
    for (i = 0; i < t->n && rc == HQ_OK; i++) {
        const struct hq_obj *o = &t->objs[i];
        struct hq_buf def = HQ_BUF_INIT(4096), pat = HQ_BUF_INIT(1024);
        const char *p;
        bool any = false;

        if (o->kind != HQ_OBJ_QUEUE)
            continue;
        rc = hq_buf_append(&def, "{", 1);
        for (k = 0; k < o->n_args && rc == HQ_OK; k++) {
            const struct hq_targ *a = &o->args[k];
            if (!is_policy_arg(a->key))
                continue;
            rc = hq_buf_appendf(&def, "%s\"%s\":", any ? "," : "", a->key + 2);
            if (rc == HQ_OK)
                rc = a->is_int ? hq_buf_appendf(&def, "%lld", (long long)a->num)
                               : json_str(&def, a->str);
            any = true;
        }
        if (rc == HQ_OK)
            rc = hq_buf_append(&def, "}", 1);
        /* exact-match pattern: ^name$ with every non-alphanumeric character escaped */
        if (rc == HQ_OK)
            rc = hq_buf_append(&pat, "^", 1);
        for (p = o->name; *p && rc == HQ_OK; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '_')
                rc = hq_buf_append(&pat, p, 1);
            else
                rc = hq_buf_appendf(&pat, "\\%c", *p);
        }
        if (rc == HQ_OK)
            rc = hq_buf_append(&pat, "$", 1);
        if (rc == HQ_OK && any) {
            rc = hq_buf_appendf(out, "rabbitmqctl set_policy --vhost ");
            if (rc == HQ_OK)
                rc = shell_quote(out, vhost);
            if (rc == HQ_OK)
                rc = hq_buf_appendf(out, " --apply-to queues --priority %d ",
                                    HQ_TOPOLOGY_POLICY_PRIORITY);
            if (rc == HQ_OK)
                rc = shell_quote(out, o->name);
            if (rc == HQ_OK)
                rc = hq_buf_append(out, " ", 1);
            if (rc == HQ_OK)
                rc = shell_quote(out, (const char *)pat.data);
            if (rc == HQ_OK)
                rc = hq_buf_append(out, " ", 1);
            if (rc == HQ_OK)
                rc = shell_quote(out, (const char *)def.data);
            if (rc == HQ_OK)
                rc = hq_buf_append(out, "\n", 1);
        }
        hq_buf_free(&def);
        hq_buf_free(&pat);
    }
    return rc;
}

/* ---------------------------------------------------------------- definitions JSON */

static int json_args(struct hq_buf *out, const struct hq_obj *o)
{
    size_t k;
    int rc = hq_buf_append(out, "{", 1);

    for (k = 0; k < o->n_args && rc == HQ_OK; k++) {
        if (k)
            rc = hq_buf_append(out, ",", 1);
        if (rc == HQ_OK)
            rc = json_str(out, o->args[k].key);
        if (rc == HQ_OK)
            rc = hq_buf_append(out, ":", 1);
        if (rc == HQ_OK)
            rc = o->args[k].is_int ? hq_buf_appendf(out, "%lld", (long long)o->args[k].num)
                                   : json_str(out, o->args[k].str);
    }
    if (rc == HQ_OK)
        rc = hq_buf_append(out, "}", 1);
    return rc;
}

int hq_topology_definitions(const struct hq_config *cfg, const struct hq_topology *t,
                            struct hq_buf *out)
{
    static const char *const sections[] = {"exchanges", "queues", "bindings"};
    static const enum hq_obj_kind kinds[] = {HQ_OBJ_EXCHANGE, HQ_OBJ_QUEUE, HQ_OBJ_BINDING};
    char vhost[256];
    size_t s, i;
    int rc;

    if (!cfg || !t || !out)
        return HQ_EINVAL;
    hq_topology_vhost(cfg, vhost, sizeof(vhost));
    rc = hq_buf_append(out, "{\n", 2);
    for (s = 0; s < 3 && rc == HQ_OK; s++) {
        bool first = true;

        rc = hq_buf_appendf(out, "  \"%s\": [", sections[s]);
        for (i = 0; i < t->n && rc == HQ_OK; i++) {
            const struct hq_obj *o = &t->objs[i];
            if (o->kind != kinds[s])
                continue;
            rc = hq_buf_append(out, first ? "\n    {" : ",\n    {", first ? 6 : 7);
            first = false;
            if (o->kind == HQ_OBJ_BINDING) {
                if (rc == HQ_OK)
                    rc = hq_buf_append(out, "\"source\": ", 10);
                if (rc == HQ_OK)
                    rc = json_str(out, o->source);
                if (rc == HQ_OK)
                    rc = hq_buf_append(out, ", \"vhost\": ", 11);
                if (rc == HQ_OK)
                    rc = json_str(out, vhost);
                if (rc == HQ_OK)
                    rc = hq_buf_append(out, ", \"destination\": ", 17);
                if (rc == HQ_OK)
                    rc = json_str(out, o->name);
                if (rc == HQ_OK)
                    rc = hq_buf_appendf(out, ", \"destination_type\": \"queue\", \"routing_key\": ");
                if (rc == HQ_OK)
                    rc = json_str(out, o->routing_key);
                if (rc == HQ_OK)
                    rc = hq_buf_appendf(out, ", \"arguments\": {}}");
                continue;
            }
            if (rc == HQ_OK)
                rc = hq_buf_append(out, "\"name\": ", 8);
            if (rc == HQ_OK)
                rc = json_str(out, o->name);
            if (rc == HQ_OK)
                rc = hq_buf_append(out, ", \"vhost\": ", 11);
            if (rc == HQ_OK)
                rc = json_str(out, vhost);
            if (rc == HQ_OK && o->kind == HQ_OBJ_EXCHANGE) {
                rc = hq_buf_append(out, ", \"type\": ", 10);
                if (rc == HQ_OK)
                    rc = json_str(out, o->type);
                if (rc == HQ_OK)
                    rc = hq_buf_appendf(out, ", \"durable\": true, \"auto_delete\": false, "
                                             "\"internal\": false, \"arguments\": ");
            } else if (rc == HQ_OK) {
                rc = hq_buf_appendf(out, ", \"durable\": true, \"auto_delete\": false, "
                                         "\"arguments\": ");
            }
            if (rc == HQ_OK)
                rc = json_args(out, o);
            if (rc == HQ_OK)
                rc = hq_buf_append(out, "}", 1);
        }
        if (rc == HQ_OK)
            rc = hq_buf_appendf(out, "%s]%s\n", first ? "" : "\n  ", s < 2 ? "," : "");
    }
    if (rc == HQ_OK)
        rc = hq_buf_append(out, "}\n", 2);
    return rc;
}

/* ---------------------------------------------------------------- apply */

static const char *kind_name(enum hq_obj_kind k)
{
    return k == HQ_OBJ_EXCHANGE ? "exchange" : k == HQ_OBJ_QUEUE ? "queue" : "binding";
}

static void msg_append(char *msg, size_t msgsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void msg_append(char *msg, size_t msgsz, const char *fmt, ...)
{
    size_t len;
    va_list ap;

    if (!msg || msgsz == 0)
        return;
    len = strnlen(msg, msgsz);
    if (len + 1 >= msgsz)
        return;
    va_start(ap, fmt);
    vsnprintf(msg + len, msgsz - len, fmt, ap);
    va_end(ap);
}

/* One "inequivalent arg" reply of RabbitMQ, e.g. "PRECONDITION_FAILED - inequivalent arg
 * 'x-queue-type' for queue 'q' in vhost '/': received the value 'quorum' of type 'longstr' but
 * current is none". */
struct inequiv {
    char arg[128];
    char received[200], current[200]; /* as the broker wrote them */
    bool cur_none;                    /* current is none */
    bool cur_parsed;                  /* cur_str / cur_num / cur_is_int hold the current value */
    bool cur_is_int;
    char cur_str[200];
    int64_t cur_num;
};

static void copy_span(char *dst, size_t dstsz, const char *p, size_t n)
{
    if (n >= dstsz)
        n = dstsz - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
}

static bool parse_inequiv(const char *text, struct inequiv *iq)
{
    static const char *const int_types[] = {"long",          "signedint",      "short",
                                            "byte",          "unsignedbyte",   "unsignedshort",
                                            "unsignedint",   NULL};
    const char *p, *q, *r, *cur;

    memset(iq, 0, sizeof(*iq));
    p = strstr(text, "inequivalent arg '");
    if (!p)
        return false;
    p += strlen("inequivalent arg '");
    q = strchr(p, '\'');
    if (!q)
        return false;
    copy_span(iq->arg, sizeof(iq->arg), p, (size_t)(q - p));
    r = strstr(q, "received ");
    cur = strstr(q, " but current is ");
    if (!r || !cur || cur < r)
        return true;
    copy_span(iq->received, sizeof(iq->received), r + 9, (size_t)(cur - (r + 9)));
    cur += strlen(" but current is ");
    copy_span(iq->current, sizeof(iq->current), cur, strlen(cur));
    if (strcmp(iq->current, "none") == 0) {
        iq->cur_none = true;
        iq->cur_parsed = true;
    } else if (strncmp(iq->current, "the value '", 11) == 0) {
        /* the value 'V' of type 'T' (V may itself contain quotes: take the last marker) */
        const char *v = iq->current + 11, *m = NULL, *t;
        const char *scan = v;
        char type[32];
        size_t k;

        while ((t = strstr(scan, "' of type '")) != NULL) {
            m = t;
            scan = t + 1;
        }
        if (!m)
            return true;
        t = m + strlen("' of type '");
        q = strchr(t, '\'');
        if (!q)
            return true;
        copy_span(type, sizeof(type), t, (size_t)(q - t));
        copy_span(iq->cur_str, sizeof(iq->cur_str), v, (size_t)(m - v));
        if (strcmp(type, "longstr") == 0) {
            iq->cur_parsed = true;
        } else {
            for (k = 0; int_types[k]; k++) {
                if (strcmp(type, int_types[k]) == 0) {
                    char *end;
                    long long n = strtoll(iq->cur_str, &end, 10);
                    if (*end == '\0' && end != iq->cur_str) {
                        iq->cur_num = n;
                        iq->cur_is_int = true;
                        iq->cur_parsed = true;
                    }
                    break;
                }
            }
        }
    }
    return true;
}

static void describe_value(const struct hq_targ *a, char *out, size_t outsz)
{
    if (!a)
        snprintf(out, outsz, "none (not set)");
    else if (a->is_int)
        snprintf(out, outsz, "%lld", (long long)a->num);
    else
        snprintf(out, outsz, "'%s'", a->str ? a->str : "");
}

static const struct hq_targ *targ_find(const struct hq_targ *args, size_t n, const char *key)
{
    size_t k;

    for (k = 0; k < n; k++)
        if (strcmp(args[k].key, key) == 0)
            return &args[k];
    return NULL;
}

/* Describe the 406 that declaring o got (broker_text) with every differing argument and what
 * to do about it, appended to msg.
 *
 * RabbitMQ names only the first differing argument. For a queue we find the others by
 * declaring it again with the values the broker reported as current, one argument at a time,
 * until the declaration is accepted: a declaration equivalent to an existing queue changes
 * nothing. (The queue existed a moment ago; were it deleted meanwhile, a probe could recreate
 * it with its old arguments - never lose anything.) */
static void conflict_message(struct hq_amqp *c, const struct hq_obj *o, const char *broker_text,
                             char *msg, size_t msgsz)
{
    struct hq_targ args[8];
    char vals[10][200], text[600], wanted[220], cur[220]; /* one value per probe */
    size_t n = o->n_args, k, nv = 0;
    struct inequiv iq;
    int iter;

    memcpy(args, o->args, sizeof(args));
    snprintf(text, sizeof(text), "%s", broker_text);
    if (msg && msgsz && msg[0])
        msg_append(msg, msgsz, "\n");
    msg_append(msg, msgsz, "%s '%s' exists with different properties:", kind_name(o->kind),
               o->name);
    for (iter = 0; iter < 10; iter++) {
        const struct hq_targ *a;
        int rc;

        if (!parse_inequiv(text, &iq) || !iq.received[0]) {
            msg_append(msg, msgsz, "\n  broker: %s", text);
            break;
        }
        a = targ_find(args, n, iq.arg);
        if (a)
            describe_value(a, wanted, sizeof(wanted));
        else if (strcmp(iq.arg, "type") == 0 && o->type)
            snprintf(wanted, sizeof(wanted), "'%s'", o->type);
        else if (strcmp(iq.arg, "durable") == 0)
            snprintf(wanted, sizeof(wanted), "true");
        else
            describe_value(NULL, wanted, sizeof(wanted));
        if (iq.cur_none)
            snprintf(cur, sizeof(cur), "none (not set%s)",
                     strcmp(iq.arg, "x-queue-type") == 0 ? ": a classic queue" : "");
        else if (strcmp(iq.arg, "x-queue-type") == 0 && strstr(iq.current, "classic"))
            snprintf(cur, sizeof(cur), "%s (a classic queue)", iq.current); /* 4.x says so */
        else
            snprintf(cur, sizeof(cur), "%s", iq.current);
        msg_append(msg, msgsz, "\n  %s: hookmq declares %s, the existing %s has %s", iq.arg,
                   wanted, kind_name(o->kind), cur);
        if (iter == 0)
            msg_append(msg, msgsz, " (broker: received %s but current is %s)", iq.received,
                       iq.current);
        if (o->kind != HQ_OBJ_QUEUE || !iq.cur_parsed || strncmp(iq.arg, "x-", 2) != 0)
            break; /* exchanges, durability, exotic types: report what we know */
        /* declare again with the current value of this argument */
        for (k = 0; k < n && strcmp(args[k].key, iq.arg) != 0; k++)
            ;
        if (iq.cur_none) {
            if (k < n) {
                memmove(&args[k], &args[k + 1], (n - k - 1) * sizeof(args[0]));
                n--;
            }
        } else {
            if (k == n) {
                if (n >= 8)
                    break;
                n++;
                /* the key must outlive args: point into the static list when we can */
                args[k].key = NULL;
                {
                    static const char *const known[] = {
                        "x-queue-type",        "x-message-ttl",       "x-dead-letter-exchange",
                        "x-dead-letter-routing-key", "x-dead-letter-strategy", "x-overflow",
                        "x-delivery-limit",    "x-max-length",        "x-max-length-bytes",
                        "x-expires",           "x-max-priority",      "x-queue-mode",
                        "x-single-active-consumer", "x-quorum-initial-group-size",
                        "x-max-in-memory-length", "x-max-in-memory-bytes", "x-queue-master-locator",
                        "x-queue-version", NULL};
                    size_t m;
                    for (m = 0; known[m]; m++)
                        if (strcmp(known[m], iq.arg) == 0)
                            args[k].key = known[m];
                }
                if (!args[k].key)
                    break;
            }
            if (nv >= sizeof(vals) / sizeof(vals[0]))
                break;
            args[k].is_int = iq.cur_is_int;
            args[k].num = iq.cur_num;
            snprintf(vals[nv], sizeof(vals[nv]), "%s", iq.cur_str);
            args[k].str = vals[nv++];
        }
        rc = hq_amqp_queue_declare(c, o->name, false, args, n, NULL, NULL);
        if (rc != HQ_ECONFLICT)
            break; /* accepted (every difference found) or the connection failed */
        snprintf(text, sizeof(text), "%s", hq_amqp_error(c));
    }
}

static void conflict_advice(bool queues, bool exchanges, char *msg, size_t msgsz)
{
    if (queues)
        msg_append(msg, msgsz,
                   "\nTo fix a queue: delete it in the management UI after draining it "
                   "(`hookmq-dlx apply` then recreates it), or set broker.queue_type to match the "
                   "existing queues, or manage the argument by policy (`hookmq-dlx policies`, "
                   "then `hookmq-dlx apply --policy-managed`).");
    if (exchanges)
        msg_append(msg, msgsz,
                   "\nTo fix an exchange: delete it in the management UI (its bindings go with "
                   "it; `hookmq-dlx apply` recreates hookmq's), or set broker.exchange to an "
                   "unused name.");
}

int hq_topology_apply_ex(const struct hq_config *cfg, const struct hq_topology *t,
                         void (*report)(void *ud, const struct hq_obj *o, enum hq_obj_state st),
                         void *ud, int *created, char *msg, size_t msgsz)
{
    struct hq_amqp *c = NULL;
    bool *fresh = NULL; /* objects created by this run */
    char err[512];
    size_t i, start = 0;
    int rc, n_created = 0, n_conflicts = 0, major = 3, minor = 0;
    bool q_conflict = false, x_conflict = false, limit_conflict = false;

    if (msg && msgsz)
        msg[0] = '\0';
    if (created)
        *created = 0;
    if (!cfg || !t)
        return HQ_EINVAL;
    fresh = calloc(t->n ? t->n : 1, sizeof(*fresh));
    if (!fresh)
        return HQ_ENOMEM;
    rc = hq_amqp_connect_quiet(&cfg->broker, "hookmq-dlx apply", 10000, &start, &c, err,
                               sizeof(err));
    if (rc != HQ_OK) {
        msg_append(msg, msgsz, "cannot connect to the broker: %s", err);
        goto out;
    }
    if (hq_amqp_server_version(c, &major, &minor) != HQ_OK) {
        hq_warn("the broker announced no RabbitMQ version: declaring the queues as for 3.x",
                "peer=%s", hq_amqp_peer(c));
        major = 3;
    }
    for (i = 0; i < t->n; i++) {
        struct hq_obj target = t->objs[i];
        const struct hq_obj *o = &target;
        enum hq_obj_state st;
        bool existed = true;

        obj_target(&target, major);

        if (o->kind == HQ_OBJ_EXCHANGE || o->kind == HQ_OBJ_QUEUE) {
            rc = o->kind == HQ_OBJ_EXCHANGE
                     ? hq_amqp_exchange_declare(c, o->name, o->type, true, NULL, 0)
                     : hq_amqp_queue_declare(c, o->name, true, NULL, 0, NULL, NULL);
            if (rc == HQ_ENOTFOUND)
                existed = false;
            else if (rc != HQ_OK)
                goto fail;
            /* Declare actively even when it exists: the broker answers 406 when the existing
             * object differs (type, durability or an x-argument). */
            rc = o->kind == HQ_OBJ_EXCHANGE
                     ? hq_amqp_exchange_declare(c, o->name, o->type, false, o->args, o->n_args)
                     : hq_amqp_queue_declare(c, o->name, false, o->args, o->n_args, NULL, NULL);
            if (rc == HQ_ECONFLICT && existed && target.n_args != t->objs[i].n_args) {
                /* Declared before the broker was upgraded to 4.x, without the argument that
                 * disables the delivery limit. It cannot be added (that would mean deleting
                 * the queue): accept the queue as it is when it matches otherwise, and say
                 * that it needs the policy. */
                const struct hq_obj *orig = &t->objs[i];

                if (hq_amqp_queue_declare(c, o->name, false, orig->args, orig->n_args, NULL,
                                           NULL) == HQ_OK) {
                    if (report)
                        report(ud, o, HQ_OBJ_LIMITED);
                    continue;
                }
                /* it differs in more than that: describe it as a conflict */
                rc = hq_amqp_queue_declare(c, o->name, false, o->args, o->n_args, NULL, NULL);
            }
            if (rc == HQ_ECONFLICT) {
                conflict_message(c, o, hq_amqp_error(c), msg, msgsz);
                n_conflicts++;
                if (o->kind == HQ_OBJ_QUEUE)
                    q_conflict = true;
                else
                    x_conflict = true;
                if (o->unlimited && hq_obj_arg(o, "x-delivery-limit"))
                    limit_conflict = true;
                if (report)
                    report(ud, o, HQ_OBJ_CONFLICT);
                continue;
            }
            if (rc != HQ_OK)
                goto fail;
            fresh[i] = !existed;
            st = existed ? HQ_OBJ_EXISTS : HQ_OBJ_CREATED;
        } else {
            /* AMQP cannot tell whether a binding existed: it is new when its queue or its
             * exchange was created by this run, otherwise it is (re)bound idempotently. */
            size_t k;
            bool new_end = false;

            rc = hq_amqp_queue_bind(c, o->name, o->source, o->routing_key);
            if (rc != HQ_OK)
                goto fail;
            for (k = 0; k < t->n; k++)
                if (fresh[k] && t->objs[k].kind != HQ_OBJ_BINDING &&
                    (strcmp(t->objs[k].name, o->name) == 0 ||
                     strcmp(t->objs[k].name, o->source) == 0))
                    new_end = true;
            st = new_end ? HQ_OBJ_CREATED : HQ_OBJ_BOUND;
        }
        if (st == HQ_OBJ_CREATED)
            n_created++;
        if (report)
            report(ud, o, st);
        continue;
    fail:
        msg_append(msg, msgsz, "%s%s '%s': %s", msg && msg[0] ? "\n" : "", kind_name(o->kind),
                   o->name, hq_amqp_error(c));
        if (rc == HQ_ECONFLICT || rc == HQ_ENOTFOUND)
            rc = HQ_EBROKER; /* e.g. binding to an exchange someone deleted meanwhile */
        goto out;
    }
    rc = n_conflicts ? HQ_ECONFLICT : HQ_OK;
    if (limit_conflict)
        msg_append(msg, msgsz,
                   "\nRabbitMQ %d.%d drops a message from a quorum queue after 20 returns "
                   "unless its delivery limit is disabled, and every `hookmq-dlx list`, `show` "
                   "or `status` returns the messages it reads: queues declared before the "
                   "upgrade to 4.x need the policies of `hookmq-dlx policies --broker-version "
                   "%d.%d` (delivery-limit -1), then `hookmq-dlx apply --policy-managed` "
                   "(docs/deploy.md, \"Upgrading to RabbitMQ 4\").",
                   major, minor, major, minor);
    conflict_advice(q_conflict, x_conflict, msg, msgsz);
out:
    if (created)
        *created = n_created;
    hq_amqp_close(c);
    free(fresh);
    return rc;
}

int hq_topology_apply(const struct hq_config *cfg, const struct hq_topology *t, int *created,
                      char *msg, size_t msgsz)
{
    return hq_topology_apply_ex(cfg, t, NULL, NULL, created, msg, msgsz);
}

int hq_topology_check(struct hq_amqp *c, const struct hq_obj *o, uint32_t *messages,
                      uint32_t *consumers, enum hq_obj_check *state, char *why, size_t whysz)
{
    bool q = o->kind == HQ_OBJ_QUEUE;
    int rc;

    *state = HQ_CHECK_OK;
    if (why && whysz)
        why[0] = '\0';
    rc = q ? hq_amqp_queue_declare(c, o->name, true, NULL, 0, messages, consumers)
           : hq_amqp_exchange_declare(c, o->name, o->type, true, NULL, 0);
    if (rc == HQ_ENOTFOUND) {
        *state = HQ_CHECK_MISSING;
        return HQ_OK;
    }
    if (rc != HQ_OK)
        goto down;
    /* An active declare with the expected arguments changes nothing when they match and is
     * refused (406, channel closed and reopened by amqp.c) when they differ. */
    rc = q ? hq_amqp_queue_declare(c, o->name, false, o->args, o->n_args, NULL, NULL)
           : hq_amqp_exchange_declare(c, o->name, o->type, false, o->args, o->n_args);
    if (rc == HQ_ECONFLICT && q && o->unlimited && o->n_args > 0 &&
        strcmp(o->args[o->n_args - 1].key, "x-delivery-limit") == 0 &&
        hq_amqp_queue_declare(c, o->name, false, o->args, o->n_args - 1, NULL, NULL) == HQ_OK) {
        /* declared before the broker ran 4.x (hq_topology_target added the last argument):
         * as configured otherwise; only a policy can disable its delivery limit now */
        *state = HQ_CHECK_LIMIT;
        return HQ_OK;
    }
    if (rc == HQ_ECONFLICT) {
        *state = HQ_CHECK_DRIFT;
        if (why && whysz)
            snprintf(why, whysz, "%s", hq_amqp_error(c));
        return HQ_OK;
    }
    if (rc == HQ_OK)
        return HQ_OK;
down:
    if (why && whysz)
        snprintf(why, whysz, "%s", hq_amqp_error(c));
    return rc == HQ_ENOTFOUND || rc == HQ_ECONFLICT ? HQ_EBROKER : rc;
}
