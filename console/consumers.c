/* consumers: GET /api/consumers, each consumer's queues (work, retry tiers, DLQ) with their
 * depth, consumer count and state against the config, as `hookmq-dlx status` checks them
 * (hq_topology_check). One broker connection per request, closed before the answer. */
#include <stdio.h>
#include <string.h>

#include "console.h"
#include "hq_amqp.h"
#include "hq_log.h"
#include "hq_topology.h"

#define CONNECT_TIMEOUT_MS 5000

static const char *check_name(enum hq_obj_check st)
{
    switch (st) {
    case HQ_CHECK_OK: return "ok";
    case HQ_CHECK_MISSING: return "missing";
    case HQ_CHECK_DRIFT: return "drift";
    case HQ_CHECK_LIMIT: return "delivery_limit";
    }
    return "?";
}

/* "work", "retry" or "dlq" for queue name of consumer */
static const char *queue_kind(const char *consumer, const char *name)
{
    size_t n = strlen("hookmq.") + strlen(consumer);

    if (strlen(name) <= n)
        return "work";
    if (strcmp(name + n, ".dlq") == 0)
        return "dlq";
    return "retry";
}

void cs_api_consumers(struct mg_connection *conn, const struct hq_config *cfg)
{
    struct hq_topology t = {NULL, 0};
    struct hq_amqp *c = NULL;
    struct hq_buf out = HQ_BUF_INIT(16u << 20);
    size_t start = 0, i, k;
    int rc, major, minor, missing = 0, drifted = 0;
    bool first_c = true;

    if ((rc = hq_topology_build(cfg, &t)) != HQ_OK) {
        cs_send_error(conn, 500, "cannot derive the topology from the config");
        goto out;
    }
    rc = hq_amqp_connect(&cfg->broker, "hookmq-console", CONNECT_TIMEOUT_MS, &start, &c);
    if (rc != HQ_OK) {
        hq_warn("broker unreachable", "error=\"%s\"", hq_strerror(rc));
        cs_send_error(conn, 503, "the broker is unreachable");
        goto out;
    }
    if (hq_amqp_server_version(c, &major, &minor) == HQ_OK)
        hq_topology_target(&t, major);
    rc = hq_buf_append(&out, "{\"consumers\":[", 14);
    for (k = 0; k < cfg->n_consumers && rc == HQ_OK; k++) {
        const char *name = cfg->consumers[k].name;
        bool first_q = true;

        rc = hq_buf_appendf(&out, "%s{\"name\":\"%s\",\"queues\":[", first_c ? "" : ",", name);
        first_c = false;
        for (i = 0; i < t.n && rc == HQ_OK; i++) {
            const struct hq_obj *o = &t.objs[i];
            uint32_t messages = 0, consumers = 0;
            enum hq_obj_check st;
            char why[512];

            if (o->kind != HQ_OBJ_QUEUE || !o->owner || strcmp(o->owner, name) != 0)
                continue;
            rc = hq_topology_check(c, o, &messages, &consumers, &st, why, sizeof(why));
            if (rc != HQ_OK) {
                hq_warn("checking a queue failed", "queue=%s error=\"%s\"", o->name, why);
                break;
            }
            missing += st == HQ_CHECK_MISSING;
            drifted += st == HQ_CHECK_DRIFT;
            rc = hq_buf_appendf(&out, "%s{\"name\":\"%s\",\"kind\":\"%s\",\"state\":\"%s\"",
                                first_q ? "" : ",", o->name, queue_kind(name, o->name),
                                check_name(st));
            first_q = false;
            if (rc == HQ_OK && st != HQ_CHECK_MISSING)
                rc = hq_buf_appendf(&out, ",\"messages\":%u,\"consumers\":%u", messages,
                                    consumers);
            if (rc == HQ_OK && st == HQ_CHECK_DRIFT) {
                rc = hq_buf_append(&out, ",\"drift\":\"", 10);
                if (rc == HQ_OK)
                    rc = hq_buf_append_json_str(&out, why, strlen(why));
                if (rc == HQ_OK)
                    rc = hq_buf_append(&out, "\"", 1);
            }
            if (rc == HQ_OK)
                rc = hq_buf_append(&out, "}", 1);
        }
        if (rc == HQ_OK)
            rc = hq_buf_append(&out, "]}", 2);
    }
    if (rc == HQ_OK)
        rc = hq_buf_appendf(&out, "],\"missing\":%d,\"drifted\":%d}\n", missing, drifted);
    if (rc == HQ_EDOWN || rc == HQ_EBROKER)
        cs_send_error(conn, 503, "the broker stopped answering");
    else if (rc != HQ_OK)
        cs_send_error(conn, 500, "answer too large");
    else
        cs_send_json(conn, &out);
out:
    hq_amqp_close(c);
    hq_topology_free(&t);
    hq_buf_free(&out);
}
