/* consumers: GET /api/consumers, each consumer's queues (work, retry tiers, DLQ) with their
 * depth, consumer count and state against the config, as `hookmq-dlx status` checks them
 * (hq_topology_check). One broker connection per request, closed before the answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "hq__civetweb.h"
#include "hq_amqp.h"
#include "hq_dlq.h"
#include "hq_log.h"
#include "hq_time.h"
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

/* ------------------------------------------------------------------ GET /api/dlq/<consumer> */

#define DLQ_LIMIT_DEFAULT 100
#define DLQ_LIMIT_MAX 1000
#define DLQ_SCAN_CAP 100000u /* messages read by one request (as hookmq-dlx list) */

struct dlq_ctx {
    struct hq_buf *out;
    size_t n, limit;
    bool more;
};

static int json_kv(struct hq_buf *b, const char *key, const char *v)
{
    int rc = hq_buf_appendf(b, ",\"%s\":\"", key);

    if (rc == HQ_OK)
        rc = hq_buf_append_json_str(b, v ? v : "", v ? strlen(v) : 0);
    if (rc == HQ_OK)
        rc = hq_buf_append(b, "\"", 1);
    return rc;
}

static int dlq_visit(void *ud, struct hq_amqp *c, const struct hq_delivery *d, bool *stop,
                     bool *settled)
{
    struct dlq_ctx *x = ud;
    struct hq_dlq_info in;
    char t[40] = "";
    int rc;

    (void)c;
    (void)settled;
    if (x->n == x->limit) { /* shown enough; the rest is read and put back in order */
        x->more = true;
        *stop = true;
        return HQ_OK;
    }
    hq_dlq_info(d, &in);
    if (in.failed_at_ms > 0)
        hq_time_format(in.failed_at_ms, t, sizeof(t));
    rc = hq_buf_appendf(x->out, "%s{\"id\":\"", x->n ? "," : "");
    if (rc == HQ_OK)
        rc = hq_buf_append_json_str(x->out, in.id, strlen(in.id));
    if (rc == HQ_OK)
        rc = hq_buf_append(x->out, "\"", 1);
    if (rc == HQ_OK)
        rc = json_kv(x->out, "source", in.source);
    if (rc == HQ_OK)
        rc = json_kv(x->out, "type", in.type);
    if (rc == HQ_OK)
        rc = hq_buf_appendf(x->out, ",\"attempts\":%lld,\"redriven\":%lld,\"by_broker\":%s,"
                                    "\"size\":%zu",
                            (long long)in.attempts, (long long)in.redriven,
                            in.by_broker ? "true" : "false", d->msg.body_len);
    if (rc == HQ_OK)
        rc = t[0] ? json_kv(x->out, "failed_at", t) : hq_buf_appendf(x->out, ",\"failed_at\":null");
    if (rc == HQ_OK && in.reason[0])
        rc = json_kv(x->out, "reason", in.reason);
    if (rc == HQ_OK)
        rc = json_kv(x->out, "last_error", in.last_error);
    if (rc == HQ_OK)
        rc = hq_buf_append(x->out, "}", 1);
    x->n++;
    return rc;
}

void cs_api_dlq(struct mg_connection *conn, const struct hq_config *cfg, const char *consumer,
                const char *query)
{
    const struct hq_consumer_cfg *cc = hq_config_consumer(cfg, consumer);
    struct hq_amqp *c = NULL;
    struct hq_buf out = HQ_BUF_INIT(64u << 20);
    struct dlq_ctx x = {&out, 0, DLQ_LIMIT_DEFAULT, false};
    char queue[HQ_NAME_MAX + 32], lim[16] = "";
    size_t start = 0, seen = 0, limit = DLQ_LIMIT_DEFAULT;
    uint32_t depth = 0;
    bool more = false;
    int rc;

    if (!cc) {
        cs_send_error(conn, 404, "no such consumer in the config");
        return;
    }
    if (query && mg_get_var(query, strlen(query), "limit", lim, sizeof(lim)) >= 0 && lim[0]) {
        char *end;
        unsigned long v = strtoul(lim, &end, 10);

        if (lim[0] < '0' || lim[0] > '9' || *end || v < 1 || v > DLQ_LIMIT_MAX) {
            cs_send_error(conn, 400, "limit: a number from 1 to 1000");
            return;
        }
        limit = v;
    }
    x.limit = limit;
    if (hq_dlq_queue(cc->name, queue, sizeof(queue)) != HQ_OK) {
        cs_send_error(conn, 500, "queue name too long");
        return;
    }
    rc = hq_amqp_connect(&cfg->broker, "hookmq-console dlq", CONNECT_TIMEOUT_MS, &start, &c);
    if (rc != HQ_OK) {
        cs_send_error(conn, 503, "the broker is unreachable");
        goto out;
    }
    rc = hq_amqp_queue_exists(c, queue, &depth, NULL);
    if (rc == HQ_ENOTFOUND) {
        cs_send_error(conn, 404, "the DLQ does not exist (run hookmq-dlx apply)");
        goto out;
    }
    if (rc == HQ_OK)
        rc = hq_buf_appendf(&out, "{\"consumer\":\"%s\",\"queue\":\"%s\",\"depth\":%u,"
                                  "\"messages\":[",
                            cc->name, queue, depth);
    /* read to the end (up to the cap), showing limit: only a queue read to its end keeps its
     * order when the messages are put back (hq_dlq_return) */
    if (rc == HQ_OK)
        rc = hq_dlq_scan(c, queue, DLQ_SCAN_CAP, dlq_visit, &x, &seen, &more);
    if (rc == HQ_OK)
        rc = hq_buf_appendf(&out, "],\"more\":%s}\n", more || x.more ? "true" : "false");
    if (rc == HQ_OK)
        cs_send_json(conn, &out);
    else if (rc == HQ_EDOWN || rc == HQ_EBROKER || rc == HQ_ETIMEDOUT)
        cs_send_error(conn, 503, "the broker stopped answering");
    else
        cs_send_error(conn, 500, rc == HQ_ETOOBIG ? "answer too large" : "reading the DLQ failed");
out:
    hq_amqp_close(c);
    hq_buf_free(&out);
}
