/* Unit tests for core/topology.c: the objects derived from a config (docs/topology.md),
 * their arguments, retry tier names, definitions JSON and policies. No broker needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "hq_config.h"
#include "hq__amqp.h"
#include "hq_amqp.h"
#include "hq_topology.h"

/* ---- a hand-built config ---------------------------------------------------------------- */

struct fixture {
    struct hq_config cfg;
    struct hq_consumer_cfg cons[2];
    char *uris[1];
    char *b1[3], *b2[1];
    uint64_t d1[5], d2[1];
};

static void make_config(struct fixture *f, enum hq_queue_type qt, const char *uri)
{
    memset(f, 0, sizeof(*f));
    f->uris[0] = (char *)uri;
    f->cfg.broker.uris = f->uris;
    f->cfg.broker.n_uris = 1;
    f->cfg.broker.exchange = (char *)"hookmq.events";
    f->cfg.broker.queue_type = qt;
    f->cfg.broker.heartbeat_s = 10;

    snprintf(f->cons[0].name, sizeof(f->cons[0].name), "billing");
    f->b1[0] = (char *)"stripe.invoice.#";
    f->b1[1] = (char *)"stripe.charge.*";
    f->b1[2] = (char *)"stripe.invoice.#"; /* duplicate: bound once */
    f->cons[0].bindings = f->b1;
    f->cons[0].n_bindings = 3;
    f->d1[0] = 10000;   /* 10s */
    f->d1[1] = 60000;   /* "60s" -> 1m */
    f->d1[2] = 60000;   /* "1m": same delay, one queue */
    f->d1[3] = 600000;  /* 10m */
    f->d1[4] = 90000;   /* 90s stays 90s */
    f->cons[0].delays_ms = f->d1;
    f->cons[0].n_delays = 5;
    f->cons[0].max_attempts = 6;

    snprintf(f->cons[1].name, sizeof(f->cons[1].name), "crm_sync-2");
    f->b2[0] = (char *)"github.#";
    f->cons[1].bindings = f->b2;
    f->cons[1].n_bindings = 1;
    f->d2[0] = 200; /* 200ms */
    f->cons[1].delays_ms = f->d2;
    f->cons[1].n_delays = 1;
    f->cons[1].max_attempts = 3;

    f->cfg.consumers = f->cons;
    f->cfg.n_consumers = 2;
}

static const struct hq_obj *find(const struct hq_topology *t, enum hq_obj_kind k, const char *name)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        if (t->objs[i].kind == k && strcmp(t->objs[i].name, name) == 0)
            return &t->objs[i];
    return NULL;
}

static size_t count_kind(const struct hq_topology *t, enum hq_obj_kind k)
{
    size_t i, n = 0;

    for (i = 0; i < t->n; i++)
        n += t->objs[i].kind == k;
    return n;
}

static const struct hq_obj *find_binding(const struct hq_topology *t, const char *source,
                                         const char *queue, const char *key)
{
    size_t i;

    for (i = 0; i < t->n; i++) {
        const struct hq_obj *o = &t->objs[i];
        if (o->kind == HQ_OBJ_BINDING && strcmp(o->source, source) == 0 &&
            strcmp(o->name, queue) == 0 && strcmp(o->routing_key, key) == 0)
            return o;
    }
    return NULL;
}

static void assert_str_arg(const struct hq_obj *o, const char *key, const char *val)
{
    const struct hq_targ *a = hq_obj_arg(o, key);

    assert_non_null(a);
    assert_false(a->is_int);
    assert_string_equal(a->str, val);
}

static void assert_int_arg(const struct hq_obj *o, const char *key, int64_t val)
{
    const struct hq_targ *a = hq_obj_arg(o, key);

    assert_non_null(a);
    assert_true(a->is_int);
    assert_int_equal(a->num, val);
}

/* ---- build ------------------------------------------------------------------------------- */

static void test_quorum_objects(void **state)
{
    struct fixture f;
    struct hq_topology t;
    const struct hq_obj *o;
    size_t i;
    int seen_queue = 0, seen_binding = 0;

    (void)state;
    make_config(&f, HQ_QUEUE_QUORUM, "amqp://guest:guest@127.0.0.1:5672/%2f");
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_OK);

    /* exchanges first, then queues, then bindings */
    for (i = 0; i < t.n; i++) {
        if (t.objs[i].kind == HQ_OBJ_QUEUE)
            seen_queue = 1;
        if (t.objs[i].kind == HQ_OBJ_BINDING)
            seen_binding = 1;
        if (t.objs[i].kind == HQ_OBJ_EXCHANGE)
            assert_false(seen_queue || seen_binding);
        if (t.objs[i].kind == HQ_OBJ_QUEUE)
            assert_false(seen_binding);
    }
    assert_int_equal(count_kind(&t, HQ_OBJ_EXCHANGE), 3);
    /* unrouted, archive; billing: work + 4 tiers (10s 1m 10m 90s) + dlq; crm: work + 1 + dlq */
    assert_int_equal(count_kind(&t, HQ_OBJ_QUEUE), 2 + 6 + 3);
    /* unrouted, archive x2, billing x2 (duplicate dropped), crm x1 */
    assert_int_equal(count_kind(&t, HQ_OBJ_BINDING), 6);

    o = find(&t, HQ_OBJ_EXCHANGE, "hookmq.events");
    assert_non_null(o);
    assert_string_equal(o->type, "topic");
    assert_int_equal(o->n_args, 1);
    assert_str_arg(o, "alternate-exchange", "hookmq.unrouted");
    o = find(&t, HQ_OBJ_EXCHANGE, "hookmq.unrouted");
    assert_non_null(o);
    assert_string_equal(o->type, "fanout");
    assert_int_equal(o->n_args, 0);
    o = find(&t, HQ_OBJ_EXCHANGE, "hookmq.lifecycle");
    assert_non_null(o);
    assert_string_equal(o->type, "topic");

    /* every queue is quorum */
    for (i = 0; i < t.n; i++)
        if (t.objs[i].kind == HQ_OBJ_QUEUE)
            assert_str_arg(&t.objs[i], "x-queue-type", "quorum");

    o = find(&t, HQ_OBJ_QUEUE, "hookmq.billing");
    assert_non_null(o);
    assert_string_equal(o->owner, "billing");
    assert_int_equal(o->n_args, 6);
    assert_str_arg(o, "x-dead-letter-exchange", "");
    assert_str_arg(o, "x-dead-letter-routing-key", "hookmq.billing.dlq");
    assert_str_arg(o, "x-dead-letter-strategy", "at-least-once");
    assert_str_arg(o, "x-overflow", "reject-publish");
    assert_int_arg(o, "x-delivery-limit", HQ_TOPOLOGY_DELIVERY_LIMIT);
    assert_null(hq_obj_arg(o, "x-message-ttl"));

    /* retry tiers: normalized names, one per distinct delay, TTL = delay, back to the work
     * queue through the default exchange */
    o = find(&t, HQ_OBJ_QUEUE, "hookmq.billing.retry.10s");
    assert_non_null(o);
    assert_int_arg(o, "x-message-ttl", 10000);
    assert_str_arg(o, "x-dead-letter-exchange", "");
    assert_str_arg(o, "x-dead-letter-routing-key", "hookmq.billing");
    assert_str_arg(o, "x-dead-letter-strategy", "at-least-once");
    assert_str_arg(o, "x-overflow", "reject-publish");
    assert_null(hq_obj_arg(o, "x-delivery-limit"));
    o = find(&t, HQ_OBJ_QUEUE, "hookmq.billing.retry.1m");
    assert_non_null(o);
    assert_int_arg(o, "x-message-ttl", 60000);
    assert_null(find(&t, HQ_OBJ_QUEUE, "hookmq.billing.retry.60s"));
    assert_non_null(find(&t, HQ_OBJ_QUEUE, "hookmq.billing.retry.10m"));
    o = find(&t, HQ_OBJ_QUEUE, "hookmq.billing.retry.90s");
    assert_non_null(o);
    assert_int_arg(o, "x-message-ttl", 90000);
    o = find(&t, HQ_OBJ_QUEUE, "hookmq.crm_sync-2.retry.200ms");
    assert_non_null(o);
    assert_int_arg(o, "x-message-ttl", 200);
    assert_str_arg(o, "x-dead-letter-routing-key", "hookmq.crm_sync-2");

    o = find(&t, HQ_OBJ_QUEUE, "hookmq.billing.dlq");
    assert_non_null(o);
    assert_int_equal(o->n_args, 1); /* only x-queue-type */
    o = find(&t, HQ_OBJ_QUEUE, "hookmq.unrouted");
    assert_non_null(o);
    assert_int_equal(o->n_args, 1);
    o = find(&t, HQ_OBJ_QUEUE, "hookmq.archive");
    assert_non_null(o);
    assert_string_equal(o->owner, "archive");

    assert_non_null(find_binding(&t, "hookmq.unrouted", "hookmq.unrouted", ""));
    assert_non_null(find_binding(&t, "hookmq.events", "hookmq.archive", "#"));
    assert_non_null(find_binding(&t, "hookmq.lifecycle", "hookmq.archive", "#"));
    assert_non_null(find_binding(&t, "hookmq.events", "hookmq.billing", "stripe.invoice.#"));
    assert_non_null(find_binding(&t, "hookmq.events", "hookmq.billing", "stripe.charge.*"));
    assert_non_null(find_binding(&t, "hookmq.events", "hookmq.crm_sync-2", "github.#"));
    /* retry and dead-letter queues are reached through the default exchange only */
    assert_null(find_binding(&t, "hookmq.events", "hookmq.billing.dlq", "#"));
    for (i = 0; i < t.n; i++)
        if (t.objs[i].kind == HQ_OBJ_BINDING)
            assert_null(strstr(t.objs[i].name, ".retry."));

    hq_topology_free(&t);
    assert_null(t.objs);
    assert_int_equal(t.n, 0);
    hq_topology_free(&t); /* again: harmless */
    hq_topology_free(NULL);
}

static void test_classic_objects(void **state)
{
    struct fixture f;
    struct hq_topology t;
    const struct hq_obj *o;
    size_t i;

    (void)state;
    make_config(&f, HQ_QUEUE_CLASSIC, "amqp://guest:guest@127.0.0.1:5672/%2f");
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_OK);
    for (i = 0; i < t.n; i++) {
        if (t.objs[i].kind != HQ_OBJ_QUEUE)
            continue;
        assert_null(hq_obj_arg(&t.objs[i], "x-queue-type"));
        assert_null(hq_obj_arg(&t.objs[i], "x-dead-letter-strategy"));
        assert_null(hq_obj_arg(&t.objs[i], "x-overflow"));
        assert_null(hq_obj_arg(&t.objs[i], "x-delivery-limit"));
    }
    o = find(&t, HQ_OBJ_QUEUE, "hookmq.billing");
    assert_non_null(o);
    assert_int_equal(o->n_args, 2);
    assert_str_arg(o, "x-dead-letter-exchange", "");
    assert_str_arg(o, "x-dead-letter-routing-key", "hookmq.billing.dlq");
    o = find(&t, HQ_OBJ_QUEUE, "hookmq.billing.retry.10m");
    assert_non_null(o);
    assert_int_equal(o->n_args, 3);
    assert_int_arg(o, "x-message-ttl", 600000);
    assert_str_arg(o, "x-dead-letter-routing-key", "hookmq.billing");
    o = find(&t, HQ_OBJ_QUEUE, "hookmq.billing.dlq");
    assert_int_equal(o->n_args, 0);
    o = find(&t, HQ_OBJ_QUEUE, "hookmq.archive");
    assert_int_equal(o->n_args, 0);
    /* exchanges don't depend on the queue type */
    assert_str_arg(find(&t, HQ_OBJ_EXCHANGE, "hookmq.events"), "alternate-exchange",
                   "hookmq.unrouted");
    hq_topology_free(&t);
}

static void test_no_consumers(void **state)
{
    struct fixture f;
    struct hq_topology t;

    (void)state;
    make_config(&f, HQ_QUEUE_QUORUM, "amqp://localhost");
    f.cfg.n_consumers = 0;
    f.cfg.consumers = NULL;
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_OK);
    assert_int_equal(t.n, 3 + 2 + 3);
    hq_topology_free(&t);
}

static void test_custom_exchange(void **state)
{
    struct fixture f;
    struct hq_topology t;

    (void)state;
    make_config(&f, HQ_QUEUE_QUORUM, "amqp://localhost");
    f.cfg.broker.exchange = (char *)"acme.webhooks";
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_OK);
    assert_null(find(&t, HQ_OBJ_EXCHANGE, "hookmq.events"));
    assert_non_null(find(&t, HQ_OBJ_EXCHANGE, "acme.webhooks"));
    assert_non_null(find_binding(&t, "acme.webhooks", "hookmq.archive", "#"));
    assert_non_null(find_binding(&t, "acme.webhooks", "hookmq.billing", "stripe.invoice.#"));
    hq_topology_free(&t);
}

static void test_bad_input(void **state)
{
    struct fixture f;
    struct hq_topology t;
    uint64_t huge = (uint64_t)INT32_MAX + 1;

    (void)state;
    make_config(&f, HQ_QUEUE_QUORUM, "amqp://localhost");
    assert_int_equal(hq_topology_build(NULL, &t), HQ_EINVAL);
    assert_int_equal(hq_topology_build(&f.cfg, NULL), HQ_EINVAL);

    /* the events exchange may not be one of hookmq's own */
    f.cfg.broker.exchange = (char *)"hookmq.unrouted";
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_EINVAL);
    f.cfg.broker.exchange = (char *)"hookmq.lifecycle";
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_EINVAL);
    f.cfg.broker.exchange = (char *)"";
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_EINVAL);
    f.cfg.broker.exchange = NULL;
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_EINVAL);

    /* a delay beyond what x-message-ttl holds */
    make_config(&f, HQ_QUEUE_QUORUM, "amqp://localhost");
    f.cons[1].delays_ms = &huge;
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_EINVAL);
    assert_null(t.objs); /* nothing leaks on failure */

    /* an unnamed consumer */
    make_config(&f, HQ_QUEUE_QUORUM, "amqp://localhost");
    f.cons[0].name[0] = '\0';
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_EINVAL);
    assert_null(t.objs);
}

/* ---- definitions JSON ------------------------------------------------------------------- */

static json_object *member(json_object *o, const char *k)
{
    json_object *v = NULL;

    assert_true(json_object_object_get_ex(o, k, &v));
    return v;
}

static json_object *find_json(json_object *arr, const char *key, const char *val)
{
    size_t i;

    for (i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i), *v;
        if (json_object_object_get_ex(e, key, &v) && strcmp(json_object_get_string(v), val) == 0)
            return e;
    }
    return NULL;
}

static json_object *parse_definitions(const struct hq_config *cfg, const struct hq_topology *t)
{
    struct hq_buf out = HQ_BUF_INIT(1 << 20);
    json_tokener *tok = json_tokener_new();
    json_object *root;

    assert_int_equal(hq_topology_definitions(cfg, t, &out), HQ_OK);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, (const char *)out.data, (int)out.len);
    assert_int_equal(json_tokener_get_error(tok), json_tokener_success);
    assert_int_equal((size_t)json_tokener_get_parse_end(tok), out.len);
    json_tokener_free(tok);
    hq_buf_free(&out);
    assert_non_null(root);
    return root;
}

static void test_definitions(void **state)
{
    struct fixture f;
    struct hq_topology t;
    json_object *root, *ex, *qs, *bs, *e, *args, *v;
    size_t i, n_bind_billing = 0;

    (void)state;
    make_config(&f, HQ_QUEUE_QUORUM, "amqp://guest:guest@127.0.0.1:5672/%2f");
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_OK);
    root = parse_definitions(&f.cfg, &t);
    ex = member(root, "exchanges");
    qs = member(root, "queues");
    bs = member(root, "bindings");
    assert_int_equal(json_object_array_length(ex), 3);
    assert_int_equal(json_object_array_length(qs), 11);
    assert_int_equal(json_object_array_length(bs), 6);

    e = find_json(ex, "name", "hookmq.events");
    assert_non_null(e);
    assert_string_equal(json_object_get_string(member(e, "vhost")), "/");
    assert_string_equal(json_object_get_string(member(e, "type")), "topic");
    assert_true(json_object_get_boolean(member(e, "durable")));
    assert_false(json_object_get_boolean(member(e, "auto_delete")));
    args = member(e, "arguments");
    assert_string_equal(json_object_get_string(member(args, "alternate-exchange")),
                        "hookmq.unrouted");

    e = find_json(qs, "name", "hookmq.billing");
    assert_non_null(e);
    assert_true(json_object_get_boolean(member(e, "durable")));
    args = member(e, "arguments");
    assert_string_equal(json_object_get_string(member(args, "x-queue-type")), "quorum");
    v = member(args, "x-delivery-limit");
    assert_true(json_object_is_type(v, json_type_int));
    assert_int_equal(json_object_get_int64(v), HQ_TOPOLOGY_DELIVERY_LIMIT);
    assert_string_equal(json_object_get_string(member(args, "x-dead-letter-exchange")), "");

    e = find_json(qs, "name", "hookmq.billing.retry.1m");
    assert_non_null(e);
    v = member(member(e, "arguments"), "x-message-ttl");
    assert_true(json_object_is_type(v, json_type_int));
    assert_int_equal(json_object_get_int64(v), 60000);

    for (i = 0; i < json_object_array_length(bs); i++) {
        json_object *b = json_object_array_get_idx(bs, i);
        assert_string_equal(json_object_get_string(member(b, "destination_type")), "queue");
        assert_string_equal(json_object_get_string(member(b, "vhost")), "/");
        if (strcmp(json_object_get_string(member(b, "destination")), "hookmq.billing") == 0) {
            assert_string_equal(json_object_get_string(member(b, "source")), "hookmq.events");
            n_bind_billing++;
        }
    }
    assert_int_equal(n_bind_billing, 2);
    e = find_json(bs, "source", "hookmq.unrouted");
    assert_non_null(e);
    assert_string_equal(json_object_get_string(member(e, "routing_key")), "");

    json_object_put(root);
    hq_topology_free(&t);
}

/* Odd names and vhosts must come out as valid JSON carrying the exact strings. */
static void test_definitions_escaping(void **state)
{
    struct fixture f;
    struct hq_topology t;
    json_object *root, *e;

    (void)state;
    make_config(&f, HQ_QUEUE_CLASSIC, "amqp://u:p@host:5672/prod%22%5c");
    f.cfg.broker.exchange = (char *)"ev\"il\\x\n";
    f.b2[0] = (char *)"a.\"b\".#";
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_OK);
    root = parse_definitions(&f.cfg, &t);
    e = find_json(member(root, "exchanges"), "name", "ev\"il\\x\n");
    assert_non_null(e);
    assert_string_equal(json_object_get_string(member(e, "vhost")), "prod\"\\");
    e = find_json(member(root, "bindings"), "routing_key", "a.\"b\".#");
    assert_non_null(e);
    assert_string_equal(json_object_get_string(member(e, "source")), "ev\"il\\x\n");
    json_object_put(root);
    hq_topology_free(&t);
}

static void test_definitions_cap(void **state)
{
    struct fixture f;
    struct hq_topology t;
    struct hq_buf out = HQ_BUF_INIT(100); /* far too small */

    (void)state;
    make_config(&f, HQ_QUEUE_QUORUM, "amqp://localhost");
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_OK);
    assert_int_equal(hq_topology_definitions(&f.cfg, &t, &out), HQ_ETOOBIG);
    hq_buf_free(&out);
    hq_topology_free(&t);
}

/* ---- policies ------------------------------------------------------------------------------ */

static void test_policies(void **state)
{
    struct fixture f;
    struct hq_topology t;
    struct hq_buf out = HQ_BUF_INIT(1 << 20);
    const char *s;

    (void)state;
    make_config(&f, HQ_QUEUE_QUORUM, "amqp://guest:guest@127.0.0.1:5672/%2f");
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_OK);
    assert_int_equal(hq_topology_policies(&f.cfg, &t, &out), HQ_OK);
    s = (const char *)out.data;
    assert_non_null(strstr(
        s, "rabbitmqctl set_policy --vhost '/' --apply-to queues --priority 10 'hookmq.billing' "
           "'^hookmq\\.billing$' '{\"dead-letter-exchange\":\"\",\"dead-letter-routing-key\":"
           "\"hookmq.billing.dlq\",\"dead-letter-strategy\":\"at-least-once\",\"overflow\":"
           "\"reject-publish\",\"delivery-limit\":20}'\n"));
    assert_non_null(strstr(s, "'hookmq.billing.retry.1m' '^hookmq\\.billing\\.retry\\.1m$' "
                              "'{\"message-ttl\":60000,\"dead-letter-exchange\":\"\","
                              "\"dead-letter-routing-key\":\"hookmq.billing\","));
    assert_non_null(strstr(s, "'^hookmq\\.crm_sync\\-2$'"));
    /* queues without such arguments get no policy; x-queue-type is never a policy key */
    assert_null(strstr(s, "'hookmq.billing.dlq'"));
    assert_null(strstr(s, "'hookmq.archive'"));
    assert_null(strstr(s, "queue-type"));
    hq_buf_free(&out);

    /* --policy-managed: the same queues without those arguments */
    hq_topology_strip_policy_args(&t);
    assert_int_equal(find(&t, HQ_OBJ_QUEUE, "hookmq.billing")->n_args, 1);
    assert_str_arg(find(&t, HQ_OBJ_QUEUE, "hookmq.billing"), "x-queue-type", "quorum");
    assert_int_equal(find(&t, HQ_OBJ_QUEUE, "hookmq.billing.retry.10s")->n_args, 1);
    /* the exchange's alternate-exchange stays */
    assert_str_arg(find(&t, HQ_OBJ_EXCHANGE, "hookmq.events"), "alternate-exchange",
                   "hookmq.unrouted");
    hq_topology_free(&t);
}

static void test_policies_vhost_quoting(void **state)
{
    struct fixture f;
    struct hq_topology t;
    struct hq_buf out = HQ_BUF_INIT(1 << 20);

    (void)state;
    make_config(&f, HQ_QUEUE_CLASSIC, "amqp://u:p@h/it%27s");
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_OK);
    assert_int_equal(hq_topology_policies(&f.cfg, &t, &out), HQ_OK);
    assert_non_null(strstr((const char *)out.data, "--vhost 'it'\\''s' "));
    hq_buf_free(&out);
    hq_topology_free(&t);
}

/* ---- broker versions ------------------------------------------------------------------ */

/* RabbitMQ 4 drops a quorum queue's message after 20 returns unless its delivery limit is
 * disabled; 3.x has no default limit and reads -1 as "drop at the first return". */
static void test_target_delivery_limit(void **state)
{
    static const char *const unlimited[] = {"hookmq.unrouted", "hookmq.archive",
                                            "hookmq.billing.dlq", "hookmq.crm_sync-2.dlq"};
    struct fixture f;
    struct hq_topology t;
    struct hq_buf out = HQ_BUF_INIT(1 << 20);
    size_t i;

    (void)state;
    make_config(&f, HQ_QUEUE_QUORUM, "amqp://guest:guest@127.0.0.1:5672/%2f");
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_OK);
    hq_topology_target(&t, 3); /* 3.x: nothing added anywhere */
    for (i = 0; i < sizeof(unlimited) / sizeof(unlimited[0]); i++) {
        assert_true(find(&t, HQ_OBJ_QUEUE, unlimited[i])->unlimited);
        assert_null(hq_obj_arg(find(&t, HQ_OBJ_QUEUE, unlimited[i]), "x-delivery-limit"));
    }
    hq_topology_target(&t, 4);
    for (i = 0; i < sizeof(unlimited) / sizeof(unlimited[0]); i++)
        assert_int_arg(find(&t, HQ_OBJ_QUEUE, unlimited[i]), "x-delivery-limit", -1);
    hq_topology_target(&t, 4); /* idempotent */
    assert_int_equal(find(&t, HQ_OBJ_QUEUE, "hookmq.archive")->n_args, 2);
    /* work queues keep their limit (returns beyond it go to the DLQ); tiers get none */
    assert_int_arg(find(&t, HQ_OBJ_QUEUE, "hookmq.billing"), "x-delivery-limit",
                   HQ_TOPOLOGY_DELIVERY_LIMIT);
    assert_null(hq_obj_arg(find(&t, HQ_OBJ_QUEUE, "hookmq.billing.retry.10s"),
                           "x-delivery-limit"));
    /* the 4.x policies disable the limit on the DLQs, the archive and unrouted */
    assert_int_equal(hq_topology_policies(&f.cfg, &t, &out), HQ_OK);
    assert_non_null(strstr((const char *)out.data, "'hookmq.billing.dlq' "
                                                   "'^hookmq\\.billing\\.dlq$' "
                                                   "'{\"delivery-limit\":-1}'\n"));
    assert_non_null(strstr((const char *)out.data, "'{\"delivery-limit\":-1}'"));
    hq_buf_free(&out);
    /* --policy-managed: the policy disables it, apply must not declare it */
    hq_topology_strip_policy_args(&t);
    hq_topology_target(&t, 4);
    assert_null(hq_obj_arg(find(&t, HQ_OBJ_QUEUE, "hookmq.billing.dlq"), "x-delivery-limit"));
    hq_topology_free(&t);

    /* classic queues have no delivery limit on any version */
    make_config(&f, HQ_QUEUE_CLASSIC, "amqp://guest:guest@127.0.0.1:5672/%2f");
    assert_int_equal(hq_topology_build(&f.cfg, &t), HQ_OK);
    hq_topology_target(&t, 4);
    assert_null(hq_obj_arg(find(&t, HQ_OBJ_QUEUE, "hookmq.billing.dlq"), "x-delivery-limit"));
    hq_topology_free(&t);
}

static void test_broker_version_parse(void **state)
{
    static const struct {
        const char *s;
        int rc, major, minor;
    } cases[] = {
        {"3.10", HQ_OK, 3, 10},          {"3.10.8", HQ_OK, 3, 10}, {"4.0.5", HQ_OK, 4, 0},
        {"4", HQ_OK, 4, 0},              {"3.13.7", HQ_OK, 3, 13}, {"4.1.0-rc.1", HQ_OK, 4, 1},
        {"4.2.1+1.g123", HQ_OK, 4, 2},   {"", HQ_EINVAL, 0, 0},    {"v4.0", HQ_EINVAL, 0, 0},
        {"4.x", HQ_EINVAL, 0, 0},        {"-4.0", HQ_EINVAL, 0, 0}, {"4.0 ", HQ_EINVAL, 0, 0},
        {"99999999999999.0", HQ_EINVAL, 0, 0}, {"4..0", HQ_EINVAL, 0, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int major = -1, minor = -1;

        assert_int_equal(hq_broker_version_parse(cases[i].s, &major, &minor), cases[i].rc);
        if (cases[i].rc == HQ_OK) {
            assert_int_equal(major, cases[i].major);
            assert_int_equal(minor, cases[i].minor);
        }
    }
    {
        int major, minor;

        assert_int_equal(hq_broker_version_parse(NULL, &major, &minor), HQ_EINVAL);
    }
}

/* host, port and vhost of a broker URI, parsed as connecting parses it */
static void test_uri_parts(void **state)
{
    char host[16], vhost[8];
    int port = 0;

    (void)state;
    assert_int_equal(hq_amqp_uri_hostport("amqp://u:p@h.example:5999/v", host, sizeof(host),
                                          &port), HQ_OK);
    assert_string_equal(host, "h.example");
    assert_int_equal(port, 5999);
    assert_int_equal(hq_amqp_uri_hostport("amqps://h", host, sizeof(host), &port), HQ_OK);
    assert_int_equal(port, 5671);
    assert_int_equal(hq_amqp_uri_hostport("amqp://h/", host, sizeof(host), &port), HQ_OK);
    assert_int_equal(port, 5672);
    assert_int_equal(hq_amqp_uri_hostport("http://h/", host, sizeof(host), &port), HQ_EINVAL);
    assert_int_equal(hq_amqp_uri_hostport("amqp://a-host-name-too-long/", host, sizeof(host),
                                          &port), HQ_ETOOBIG);
    assert_int_equal(hq_amqp_uri_hostport(NULL, host, sizeof(host), &port), HQ_EINVAL);
    assert_int_equal(hq__amqp_uri_vhost("amqp://h/%2fv", vhost, sizeof(vhost)), HQ_OK);
    assert_string_equal(vhost, "/v");
    assert_int_equal(hq__amqp_uri_vhost("amqp://h/vhost-too-long", vhost, sizeof(vhost)),
                     HQ_ETOOBIG);
}

static void test_queue_kind(void **state)
{
    (void)state;
    assert_string_equal(hq_topology_queue_kind("billing", "hookmq.billing"), "work");
    assert_string_equal(hq_topology_queue_kind("billing", "hookmq.billing.dlq"), "dlq");
    assert_string_equal(hq_topology_queue_kind("billing", "hookmq.billing.retry.10s"), "retry");
    assert_string_equal(hq_topology_queue_kind("b", "hookmq.b"), "work");
}

/* One retry queue per distinct delay: a repeated delay is not the first of its value. */
static void test_delay_first(void **state)
{
    uint64_t delays[] = {10000, 60000, 10000, 60000, 3600000};
    struct hq_consumer_cfg c;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.delays_ms = delays;
    c.n_delays = sizeof(delays) / sizeof(delays[0]);
    assert_true(hq_topology_delay_first(&c, 0));
    assert_true(hq_topology_delay_first(&c, 1));
    assert_false(hq_topology_delay_first(&c, 2));
    assert_false(hq_topology_delay_first(&c, 3));
    assert_true(hq_topology_delay_first(&c, 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_parts),
        cmocka_unit_test(test_queue_kind),
        cmocka_unit_test(test_delay_first),
        cmocka_unit_test(test_target_delivery_limit),
        cmocka_unit_test(test_broker_version_parse),
        cmocka_unit_test(test_quorum_objects),
        cmocka_unit_test(test_classic_objects),
        cmocka_unit_test(test_no_consumers),
        cmocka_unit_test(test_custom_exchange),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_definitions),
        cmocka_unit_test(test_definitions_escaping),
        cmocka_unit_test(test_definitions_cap),
        cmocka_unit_test(test_policies),
        cmocka_unit_test(test_policies_vhost_quoting),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
