/* consumers: GET /api/consumers, each consumer's queues (work, retry tiers, DLQ) with their
 * depth, consumer count and state against the config, as `hookmq-dlx status` checks them
 * (hq_topology_check). One broker connection per request, closed before the answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "hq_amqp.h"
#include "hq_civetweb.h"
#include "hq_dlq.h"
#include "hq_json.h"
#include "hq_lifecycle.h"
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
                                first_q ? "" : ",", o->name,
                                hq_topology_queue_kind(name, o->name), check_name(st));
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

/* ------------------------------------------------------------------ POST .../redrive */

#define REDRIVE_BODY_MAX (256u * 1024)
#define CONFIRM_TIMEOUT_MS 5000

struct redrive_ctx {
    const struct hq_dlq_select *sel;
    const char *consumer, *user;
    struct hq_lc_emitter *lc;
    size_t matched, moved;
    int err;
};

/* consumer's DLQ and work queue names in queue and work (qsz bytes each), and in *c a
 * connection on which both exist. false when not, with the answer sent (500, 503 or 404);
 * *c may then be set, for the caller to close. */
static bool open_dlq(struct mg_connection *conn, const struct hq_config *cfg,
                     const char *consumer, const char *conn_name, char *queue, char *work,
                     size_t qsz, uint32_t *depth, struct hq_amqp **c)
{
    size_t start = 0;

    if (hq_dlq_queue(consumer, queue, qsz) != HQ_OK ||
        hq_dlq_work_queue(consumer, work, qsz) != HQ_OK) {
        cs_send_error(conn, 500, "queue name too long");
        return false;
    }
    if (hq_amqp_connect(&cfg->broker, conn_name, CONNECT_TIMEOUT_MS, &start, c) != HQ_OK) {
        cs_send_error(conn, 503, "the broker is unreachable");
        return false;
    }
    if (hq_amqp_queue_exists(*c, queue, depth, NULL) != HQ_OK ||
        hq_amqp_queue_exists(*c, work, NULL, NULL) != HQ_OK) {
        cs_send_error(conn, 404, "the DLQ or the work queue does not exist (run hookmq-dlx apply)");
        return false;
    }
    return true;
}

static int redrive_visit(void *ud, struct hq_amqp *c, const struct hq_delivery *d, bool *stop,
                         bool *settled)
{
    struct redrive_ctx *x = ud;
    struct hq_dlq_info in;
    struct hq_lc_record r;
    int64_t at;
    int rc;

    (void)stop;
    hq_dlq_info(d, &in);
    if (!hq_dlq_select_match(x->sel, &in))
        return HQ_OK;
    x->matched++;
    at = hq_now_ms();
    rc = hq_dlq_redrive_one(c, x->consumer, d, CONFIRM_TIMEOUT_MS);
    if (rc != HQ_OK) {
        hq_warn("redrive failed; the event stays in the DLQ", "user=%s consumer=%s event_id=%s "
                "error=\"%s\"", x->user, x->consumer, in.id, hq_strerror(rc));
        x->err = rc;
        return rc;
    }
    *settled = true;
    x->moved++;
    /* the audit trail: a log line and a lifecycle record naming the user */
    hq_info("redriven", "user=%s consumer=%s event_id=%s source=%s", x->user, x->consumer, in.id,
            in.source);
    hq_dlq_action_record(&in, x->consumer, HQ_LC_REDRIVEN, x->user, NULL, at, &r);
    hq_lc_emit(x->lc, &r);
    return HQ_OK;
}

void cs_api_redrive(struct mg_connection *conn, const struct hq_config *cfg, const char *consumer,
                    const char *user)
{
    const struct hq_consumer_cfg *cc = hq_config_consumer(cfg, consumer);
    struct hq_buf body = HQ_BUF_INIT(REDRIVE_BODY_MAX), out = HQ_BUF_INIT(4096);
    struct hq_dlq_select sel;
    struct redrive_ctx x;
    struct hq_amqp *c = NULL;
    char queue[HQ_NAME_MAX + 32], work[HQ_NAME_MAX + 32], err[160];
    uint32_t depth = 0;
    size_t seen = 0;
    int rc;

    memset(&sel, 0, sizeof(sel));
    memset(&x, 0, sizeof(x));
    if (!cc) {
        cs_send_error(conn, 404, "no such consumer in the config");
        goto out;
    }
    if (cs_read_body(conn, REDRIVE_BODY_MAX, &body) != HQ_OK) {
        cs_send_error(conn, 413, "request body larger than 256 KiB");
        goto out;
    }
    if (hq_dlq_select_parse((const char *)body.data, body.len, &sel, err, sizeof(err)) != HQ_OK) {
        cs_send_error(conn, 400, err);
        goto out;
    }
    if (!open_dlq(conn, cfg, cc->name, "hookmq-console redrive", queue, work, sizeof(queue), &depth,
                  &c))
        goto out;
    if (hq_lc_start(&cfg->broker, "hookmq-console redrive (lifecycle)", 4096, &x.lc) != HQ_OK)
        x.lc = NULL; /* lifecycle records are best effort; the log line stays */
    x.sel = &sel;
    x.consumer = cc->name;
    x.user = user;
    hq_info("redrive requested", "user=%s consumer=%s by=%s", user, cc->name,
            sel.by_filter ? "filter" : "ids");
    /* only what is there now: events that fail again meanwhile wait for the next request */
    rc = hq_dlq_scan(c, queue, depth < DLQ_SCAN_CAP ? depth : DLQ_SCAN_CAP, redrive_visit, &x,
                     &seen, NULL);
    hq_info("redrive done", "user=%s consumer=%s matched=%zu redriven=%zu", user, cc->name,
            x.matched, x.moved);
    if (hq_buf_appendf(&out, "{\"matched\":%zu,\"redriven\":%zu,\"left\":%zu%s}\n", x.matched,
                       x.moved, (size_t)depth - x.moved,
                       rc != HQ_OK ? ",\"error\":\"stopped by a broker error\"" : "") != HQ_OK)
        cs_send_error(conn, 500, "out of memory");
    else
        cs_send(conn, rc == HQ_OK ? 200 : 503, "application/json", out.data, out.len, NULL);
out:
    hq_amqp_close(c);
    hq_lc_stop(x.lc, 3000);
    hq_dlq_select_free(&sel);
    hq_buf_free(&body);
    hq_buf_free(&out);
}

/* ------------------------------------------------------------------ POST .../<id>/edit */

void cs_api_edit(struct mg_connection *conn, const struct hq_config *cfg, const char *consumer,
                 const char *id, const char *user)
{
    const struct hq_consumer_cfg *cc = hq_config_consumer(cfg, consumer);
    struct hq_buf body = HQ_BUF_INIT(REDRIVE_BODY_MAX * 16), out = HQ_BUF_INIT(4096);
    struct hq_dlq_edit_req req;
    struct hq_dlq_edit e;
    struct hq_dlq_edit_outcome x;
    struct hq_lc_emitter *lc = NULL;
    struct hq_amqp *c = NULL;
    char queue[HQ_NAME_MAX + 32], work[HQ_NAME_MAX + 32], err[200];
    uint32_t depth = 0;
    int rc;

    memset(&req, 0, sizeof(req));
    memset(&e, 0, sizeof(e));
    if (!cc) {
        cs_send_error(conn, 404, "no such consumer in the config");
        goto out;
    }
    if (cs_read_body(conn, body.cap, &body) != HQ_OK) {
        cs_send_error(conn, 413, "request body larger than 4 MiB");
        goto out;
    }
    if (hq_dlq_edit_req_parse((const char *)body.data, body.len, &req, err, sizeof(err)) !=
        HQ_OK) {
        cs_send_error(conn, 400, err);
        goto out;
    }
    if (!open_dlq(conn, cfg, cc->name, "hookmq-console edit", queue, work, sizeof(queue), &depth,
                  &c))
        goto out;
    if (hq_lc_start(&cfg->broker, "hookmq-console edit (lifecycle)", 64, &lc) != HQ_OK)
        lc = NULL;
    e.consumer = cc->name;
    e.id = id;
    e.body = req.has_body ? req.body : NULL;
    e.body_len = req.body_len;
    e.keys = (const char *const *)req.keys;
    e.vals = (const char *const *)req.vals;
    e.n_headers = req.n;
    e.user = user;
    e.lc = lc;
    e.timeout_ms = CONFIRM_TIMEOUT_MS;
    rc = hq_dlq_edit(c, depth < DLQ_SCAN_CAP ? depth : DLQ_SCAN_CAP, &e, &x);
    if (x.found && !x.done && x.err != HQ_EINVAL)
        hq_warn("edit failed; the event stays in the DLQ", "user=%s consumer=%s event_id=%s "
                "error=\"%s\"", user, cc->name, id, hq_strerror(x.err));
    if (x.done)
        hq_info("edited and sent back", "user=%s consumer=%s event_id=%s source=%s summary=\"%s\"",
                user, cc->name, id, x.source, x.summary);
    if (!x.found)
        cs_send_error(conn, 404, "no parked event with this id in the DLQ");
    else if (x.err == HQ_EINVAL)
        cs_send_error(conn, 400, "this edit is refused (headers hookmq-* and x-* are not editable)");
    else if (rc != HQ_OK || !x.done)
        cs_send_error(conn, 503, "the broker did not take the edited event; it stays parked");
    else if (hq_buf_append(&out, "{\"edited\":true,\"summary\":\"", 26) != HQ_OK ||
             hq_buf_append_json_str(&out, x.summary, strlen(x.summary)) != HQ_OK ||
             hq_buf_append(&out, "\"}\n", 3) != HQ_OK)
        cs_send_error(conn, 500, "out of memory");
    else
        cs_send_json(conn, &out);
out:
    hq_amqp_close(c);
    hq_lc_stop(lc, 3000);
    hq_dlq_edit_req_free(&req);
    hq_buf_free(&body);
    hq_buf_free(&out);
}
