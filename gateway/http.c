/* http.c: the gateway's HTTP side (CivetWeb): POST /webhooks/<source>, /healthz, /readyz,
 * and /metrics on metrics_listen. The request handler runs the checks of docs/interface.md in order
 * and maps each outcome to an HTTP answer in gw_respond(). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"
#include "hq_buf.h"
#include "hq_civetweb.h"
#include "hq_json.h"
#include "hq_log.h"
#include "hq_metrics_http.h"
#include "hq_net.h"
#include "hq_time.h"

static struct mg_context *http_ctx;
static struct gw *http_gw; /* for the connection callbacks; set before the context starts */

#define REPLAY_WINDOW_NO_TS_MS (24LL * 3600 * 1000)

static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1,    2.5,   5};
static const double stage_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                      0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1};
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64};

/* The stages of an accepted request (hookmq_gateway_request_stage_seconds{stage=...}). */
enum { ST_PREPARE, ST_HANDOFF, ST_SEND, ST_CONFIRM, ST_WAKE, ST_N };
static const char *const stage_names[ST_N] = {"prepare", "handoff", "send", "confirm", "wake"};

static void observe_us(struct hq_metric *m, int64_t us)
{
    hq_metric_observe(m, us > 0 ? (double)us / 1e6 : 0.0);
}

/* One answer. body may be NULL (an empty JSON object is sent). */
struct answer {
    int status;
    const char *reason;      /* short code for 4xx/503 bodies and logs */
    const char *body;        /* full JSON body, overrides the generated one */
    const char *content_type;
    int retry_after;         /* seconds, 0 = no header */
    bool close;              /* the body was not read: close the connection */
};

static const char *status_error(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 411: return "length_required";
    case 408: return "request_timeout";
    case 413: return "payload_too_large";
    case 431: return "request_header_fields_too_large";
    case 503: return "unavailable";
    default: return "error";
    }
}

static void gw_respond(struct mg_connection *conn, const struct answer *a, const char *id)
{
    struct hq_buf body = HQ_BUF_INIT(65536);
    int rc = HQ_OK;

    if (a->body) {
        rc = hq_buf_append(&body, a->body, strlen(a->body));
    } else if (id) {
        rc = hq_buf_append(&body, "{\"id\":\"", 7);
        if (rc == HQ_OK)
            rc = hq_buf_append_json_str(&body, id, strlen(id));
        if (rc == HQ_OK)
            rc = hq_buf_append(&body, "\"}", 2);
    } else if (a->status >= 400) {
        rc = hq_buf_appendf(&body, "{\"error\":\"%s\"", status_error(a->status));
        if (rc == HQ_OK && a->reason)
            rc = hq_buf_appendf(&body, ",\"reason\":\"%s\"", a->reason);
        if (rc == HQ_OK)
            rc = hq_buf_append(&body, "}", 1);
    } else {
        rc = hq_buf_append(&body, "{}", 2);
    }
    if (rc != HQ_OK)
        hq_buf_reset(&body);
    {
        /* Status line, headers and body in one write (one segment). Written here rather than
         * with mg_response_header_*(), whose Date header calls the non-reentrant gmtime()
         * (a data race between HTTP threads, found by TSan). */
        char head[512], extra[128] = "";
        struct hq_buf out = HQ_BUF_INIT(70000);
        int n, en = 0;

        if (a->retry_after > 0)
            en += snprintf(extra + en, sizeof(extra) - (size_t)en, "Retry-After: %d\r\n",
                           a->retry_after);
        if (a->status == 405)
            en += snprintf(extra + en, sizeof(extra) - (size_t)en, "Allow: POST\r\n");
        if (a->close) {
            /* the header alone does not stop CivetWeb from keeping the connection and
             * parsing the unread body as the next request */
            mg_disable_connection_keep_alive(conn);
            snprintf(extra + en, sizeof(extra) - (size_t)en, "Connection: close\r\n");
        }
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
                     a->status, mg_get_response_code_text(conn, a->status),
                     a->content_type ? a->content_type : "application/json", body.len, extra);
        if (n > 0 && (size_t)n < sizeof(head) && hq_buf_append(&out, head, (size_t)n) == HQ_OK &&
            hq_buf_append(&out, body.data ? body.data : (unsigned char *)"", body.len) == HQ_OK)
            mg_write(conn, out.data, out.len);
        hq_buf_free(&out);
    }
    hq_buf_free(&body);
}

/* Per-thread cache of request counters: series pointers are stable, and the registry's
 * lookup takes a process-wide mutex that hundreds of HTTP threads would contend on. */
#define REQ_CACHE 8
static _Thread_local struct {
    char source[HQ_NAME_MAX + 1];
    int status;
    struct hq_metric *m;
} req_cache[REQ_CACHE];
static _Thread_local unsigned req_cache_next;

static void count_request(struct gw *g, const char *source, int status)
{
    char labels[160], esc[80];
    struct hq_metric *m;
    unsigned i;

    for (i = 0; i < REQ_CACHE; i++) {
        if (req_cache[i].m && req_cache[i].status == status &&
            strcmp(req_cache[i].source, source) == 0) {
            hq_metric_inc(req_cache[i].m);
            return;
        }
    }
    hq_metrics_escape(source, esc, sizeof(esc));
    snprintf(labels, sizeof(labels), "source=\"%s\",status=\"%d\"", esc, status);
    m = hq_counter(g->metrics, "hookmq_gateway_requests_total",
                   "Webhook requests answered, by source and HTTP status", labels);
    hq_metric_inc(m);
    if (m && strlen(source) <= HQ_NAME_MAX) {
        i = req_cache_next++ % REQ_CACHE;
        snprintf(req_cache[i].source, sizeof(req_cache[i].source), "%s", source);
        req_cache[i].status = status;
        req_cache[i].m = m;
    }
}

static void count_verify_failure(struct gw *g, const char *source, const char *reason)
{
    char labels[200];

    snprintf(labels, sizeof(labels), "source=\"%s\",reason=\"%s\"", source, reason);
    hq_metric_inc(hq_counter(g->metrics, "hookmq_gateway_verification_failures_total",
                             "Requests that failed authentication, by source and reason",
                             labels));
}

static bool valid_source_name(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return n >= 1 && n <= HQ_NAME_MAX;
}

static bool is_chunked(const struct mg_connection *conn)
{
    const char *te = mg_get_header(conn, "Transfer-Encoding");

    return te && strcasestr(te, "chunked") != NULL;
}

/* The body deadline. CivetWeb's request_timeout_ms bounds each wait for data, not the whole
 * body, and mg_read() keeps reading until its buffer is full: a client dribbling one byte at a
 * time would hold an HTTP thread for as long as it likes. The body watchdog (bodywatch.c)
 * sends BODY_SIGNAL to the reading thread at the deadline (then every GW_BODY_KICK_MS, in case
 * one lands outside a poll); the no-op handler is installed without SA_RESTART, so the blocked
 * poll()/recv() fails with EINTR and mg_read() returns what it has. Each HTTP thread's slot is
 * made when CivetWeb starts the thread (init_thread) and is its thread pointer. */
#define BODY_SIGNAL (SIGRTMIN + 3)
#define BODY_WATCH_IDLE_MS 1000

static void body_alarm(int sig)
{
    (void)sig;
}

/* Read the whole body into b (capped at b->cap). HQ_ETOOBIG past the cap, HQ_EIO when the
 * client went away or a read timed out, HQ_ETIMEDOUT past deadline_ms (monotonic). */
static int read_body(struct mg_connection *conn, long long content_length, struct hq_buf *b,
                     int64_t deadline_ms)
{
    struct gw_body_slot *slot = mg_get_thread_pointer(conn);
    char chunk[16384];
    int rc = HQ_OK;

    gw_body_slot_arm(slot, deadline_ms);

    if (content_length > 0 && !b->data) {
        /* allocate once, the body's size (the caller checked it against b->cap): hq_buf would
         * start at 256 bytes and double, a reallocation per request */
        b->data = malloc((size_t)content_length + 1);
        if (!b->data) {
            rc = HQ_ENOMEM;
            goto out;
        }
        b->data[0] = '\0';
        b->alloc = (size_t)content_length + 1;
    }
    for (;;) {
        int n = mg_read(conn, chunk, sizeof(chunk));
        if (n > 0) {
            rc = hq_buf_append(b, chunk, (size_t)n);
            if (rc != HQ_OK)
                goto out;
        }
        if (n == 0)
            break;
        if (hq_mono_ms() >= deadline_ms) {
            rc = HQ_ETIMEDOUT;
            goto out;
        }
        if (n < 0) {
            rc = HQ_EIO;
            goto out;
        }
    }
    if (content_length >= 0 && (long long)b->len != content_length)
        /* mg_read() ends a stalled body like a closed one: the deadline tells them apart */
        rc = hq_mono_ms() >= deadline_ms ? HQ_ETIMEDOUT : HQ_EIO;
out:
    gw_body_slot_disarm(slot);
    return rc;
}

/* Every line of header name, joined in order with ", " (RFC 7230 3.2.2), into b: a proxy
 * appends its own X-Forwarded-For line after the client's, and mg_get_header() returns only
 * the first. Returns b's text (NUL-terminated), NULL when the header is absent or on
 * allocation failure (*rc says which: HQ_OK, HQ_ENOMEM). b is bounded by CivetWeb's request
 * size. */
static const char *joined_header(const struct mg_request_info *ri, const char *name,
                                 struct hq_buf *b, int *rc)
{
    bool any = false;
    int i;

    *rc = HQ_OK;
    for (i = 0; i < ri->num_headers && i < MG_MAX_HEADERS; i++) {
        const char *v = ri->http_headers[i].value;
        if (!ri->http_headers[i].name || strcasecmp(ri->http_headers[i].name, name) != 0)
            continue;
        if (!v)
            v = "";
        if (any && *rc == HQ_OK)
            *rc = hq_buf_append(b, ", ", 2);
        if (*rc == HQ_OK)
            *rc = hq_buf_append(b, v, strlen(v));
        any = true;
    }
    if (*rc == HQ_OK && any)
        *rc = hq_buf_append(b, "", 1); /* the NUL */
    if (*rc != HQ_OK || !any)
        return NULL;
    return (const char *)b->data;
}

/* The URL the provider signed (twilio, square): the source's `url` is what the verifier
 * signs; the request's query is taken from here (twilio's bodySHA256). X-Forwarded-Proto and
 * X-Forwarded-Host (every line, joined) are believed only from trusted proxies. */
static int request_url(const struct mg_connection *conn, const struct mg_request_info *ri,
                       const struct hq_config *cfg, const char *source, char *out,
                       size_t outsz)
{
    bool trusted = hq_cidr_list_match(&cfg->gateway.trusted_proxies, ri->remote_addr);
    struct hq_buf pb = HQ_BUF_INIT(32768), hb = HQ_BUF_INIT(32768);
    const char *proto = NULL, *host = NULL;
    int rc = HQ_OK;

    if (trusted) {
        proto = joined_header(ri, "X-Forwarded-Proto", &pb, &rc);
        if (rc == HQ_OK)
            host = joined_header(ri, "X-Forwarded-Host", &hb, &rc);
    }
    if (rc == HQ_OK) {
        if (!host)
            host = mg_get_header(conn, "Host");
        snprintf(out, outsz, "%s://%s/webhooks/%s%s%s", proto ? proto : "http",
                 host ? host : "localhost", source, ri->query_string ? "?" : "",
                 ri->query_string ? ri->query_string : "");
    }
    hq_buf_free(&pb);
    hq_buf_free(&hb);
    return rc;
}

static int handle_webhook(struct mg_connection *conn, struct gw *g,
                          const struct mg_request_info *ri, const char *source_name)
{
    struct gw_snap *snap = gw_snap_get(g);
    const struct hq_config *cfg = snap->cfg;
    const struct hq_source_cfg *src = NULL;
    struct hq_buf body = HQ_BUF_INIT(cfg->gateway.max_body_bytes);
    struct hq_header hdrs[64];
    struct hq_request_view req = {0};
    struct hq_verify_result vr;
    struct hq_event_meta meta = {0};
    struct hq_msg msg = {0};
    struct answer a = {500, "internal", NULL, NULL, 0, false};
    char client[64] = "", url[2048], id[256] = "";
    unsigned char rkey[HQ_REPLAY_KEY_LEN];
    uint64_t ticket = 0;
    const char *reason = NULL, *log_source = "_unknown";
    int64_t t0 = hq_mono_ms(), now_ms = hq_now_ms(), t0_us = hq_mono_us();
    bool admitted = false;
    int i, rc;

    /* 1. method */
    if (strcmp(ri->request_method, "POST") != 0) {
        a = (struct answer){405, NULL, NULL, NULL, 0, true};
        goto out;
    }
    /* 2. source */
    if (valid_source_name(source_name))
        src = hq_config_source(cfg, source_name);
    if (!src) {
        a = (struct answer){404, NULL, NULL, NULL, 0, true};
        goto out;
    }
    log_source = src->name;
    /* CivetWeb keeps the first MG_MAX_HEADERS (64) header lines and drops the rest without
     * saying so; 64 parsed lines may mean more were sent. Never judge (allow_from, signature)
     * a request on a truncated header set. */
    if (ri->num_headers >= MG_MAX_HEADERS) {
        a = (struct answer){431, "too_many_headers", NULL, NULL, 0, true};
        goto out;
    }
    /* 3. allow_from */
    {
        struct hq_buf xb = HQ_BUF_INIT(32768);
        const char *xff = joined_header(ri, "X-Forwarded-For", &xb, &rc);

        if (rc != HQ_OK) {
            hq_buf_free(&xb);
            a = (struct answer){503, "internal", NULL, NULL, GW_RETRY_AFTER_INTERNAL_S, true};
            goto out;
        }
        rc = hq_client_addr(ri->remote_addr, xff, &cfg->gateway.trusted_proxies, client,
                            sizeof(client));
        hq_buf_free(&xb);
        if (rc != HQ_OK) {
            snprintf(client, sizeof(client), "%s", ri->remote_addr);
            if (src->allow_from.n > 0) {
                a = (struct answer){403, "bad_forwarded_for", NULL, NULL, 0, true};
                goto out;
            }
        }
        if (src->allow_from.n > 0 && !hq_cidr_list_match(&src->allow_from, client)) {
            a = (struct answer){403, NULL, NULL, NULL, 0, true};
            goto out;
        }
    }
    /* 4. length known */
    if (ri->content_length < 0 && !is_chunked(conn)) {
        a = (struct answer){411, NULL, NULL, NULL, 0, true};
        goto out;
    }
    /* 5. body within the cap */
    if (ri->content_length > (long long)cfg->gateway.max_body_bytes) {
        a = (struct answer){413, NULL, NULL, NULL, 0, true};
        goto out;
    }
    rc = read_body(conn, ri->content_length, &body, t0 + g->boot->gateway.request_timeout_ms);
    if (rc != HQ_OK) {
        struct gw_verdict v = gw_verdict(GW_STAGE_BODY, rc, NULL);
        a = (struct answer){v.status, v.reason, NULL, NULL, v.retry_after, true};
        goto out;
    }
    /* 6. admission */
    if (atomic_fetch_add(&g->in_flight, 1) >= cfg->gateway.max_in_flight) {
        atomic_fetch_sub(&g->in_flight, 1);
        a = (struct answer){503, "overloaded", NULL, NULL, 1, false};
        goto out;
    }
    admitted = true;
    /* 7. authentication over the raw bytes */
    for (i = 0; i < ri->num_headers && i < 64; i++) {
        hdrs[i].name = ri->http_headers[i].name;
        hdrs[i].value = ri->http_headers[i].value;
    }
    req.headers = hdrs;
    req.n_headers = (size_t)i;
    req.body = body.data ? body.data : (const unsigned char *)"";
    req.body_len = body.len;
    req.content_type = mg_get_header(conn, "Content-Type");
    if (src->scheme == HQ_SCHEME_TWILIO || src->scheme == HQ_SCHEME_SQUARE) {
        /* with `url` set, the verifier still takes the request's query (twilio's bodySHA256) */
        if (request_url(conn, ri, cfg, src->name, url, sizeof(url)) != HQ_OK) {
            a = (struct answer){503, "internal", NULL, NULL, GW_RETRY_AFTER_INTERNAL_S, false};
            goto out;
        }
        req.url = url;
    }
    rc = hq_sig_verify(src, &req, now_ms / 1000, &vr);
    if (rc != HQ_OK) {
        struct gw_verdict v = gw_verdict(GW_STAGE_VERIFY, rc, vr.reason);
        if (v.status == 401)
            count_verify_failure(g, src->name, v.reason);
        else
            hq_error("verification failed on our side", "source=%s error=\"%s\"", src->name,
                     hq_strerror(rc));
        a = (struct answer){v.status, v.reason, NULL, NULL, v.retry_after, false};
        goto out;
    }
    /* 9./10. handshake, event type and id */
    rc = hq_event_extract(src, &req, vr.secret_index >= 0 ? &src->secrets[vr.secret_index] : NULL,
                          &meta, &reason);
    if (rc != HQ_OK) {
        struct gw_verdict v = gw_verdict(GW_STAGE_EXTRACT, rc, reason);
        a = (struct answer){v.status, v.reason, NULL, NULL, v.retry_after, false};
        goto out;
    }
    if (meta.handshake) {
        a = (struct answer){200, "handshake", meta.handshake_body, meta.handshake_content_type,
                            0, false};
        goto out;
    }
    snprintf(id, sizeof(id), "%s", meta.id);
    /* 8. exact replay of an accepted request; a provider's delivery id is part of the key */
    if (vr.has_replay_key) {
        /* Twilio has no event id but marks each delivery (and keeps the mark on its retries) */
        const char *delivery = !meta.id_generated ? meta.id
                               : src->scheme == HQ_SCHEME_TWILIO
                                   ? mg_get_header(conn, "I-Twilio-Idempotency-Token")
                                   : NULL;
        enum gw_replay_state rs;

        memcpy(rkey, vr.replay_key, sizeof(rkey));
        if (delivery && gw_replay_key_with_id(vr.replay_key, delivery, rkey) != HQ_OK) {
            a = (struct answer){503, "internal", NULL, NULL, GW_RETRY_AFTER_INTERNAL_S, false};
            goto out;
        }
        rs = gw_replay_begin(g->replay, src->name, rkey, id,
                             (size_t)src->replay_cache_bytes, now_ms,
                             t0 + cfg->gateway.confirm_timeout_ms + 1000, id, sizeof(id), &ticket);
        if (rs != GW_REPLAY_NEW) {
            if (rs == GW_REPLAY_HIT) {
                hq_metric_inc(g->m_replay_hits);
                a = (struct answer){202, "replay", NULL, NULL, 0, false};
            } else { /* the first copy still unconfirmed: its outcome will answer a retry */
                a = (struct answer){503, "replay_in_flight", NULL, NULL, 1, false};
            }
            goto out;
        }
    }
    /* 11. durable: broker confirm, else the spool */
    rc = hq_event_build(src, &req, &meta, now_ms, &msg);
    if (rc != HQ_OK) {
        a = (struct answer){503, "internal", NULL, NULL, GW_RETRY_AFTER_INTERNAL_S, false};
        goto out;
    }
    {
        int64_t p0 = hq_mono_ms();
        struct hq_pub_timing tm = {0};

        rc = hq_pub_publish_timed(g->pub, g->boot->broker.exchange, &msg,
                                  p0 + cfg->gateway.confirm_timeout_ms, &tm);
        if (rc == HQ_OK) {
            hq_metric_observe(g->m_confirm_latency, (double)(hq_mono_ms() - p0) / 1000.0);
            observe_us(g->m_stage[ST_PREPARE], tm.queued_us - t0_us);
            observe_us(g->m_stage[ST_HANDOFF], tm.taken_us - tm.queued_us);
            observe_us(g->m_stage[ST_SEND], tm.sent_us - tm.taken_us);
            observe_us(g->m_stage[ST_CONFIRM], tm.settled_us - tm.sent_us);
            observe_us(g->m_stage[ST_WAKE], tm.woken_us - tm.settled_us);
            hq_metric_observe(g->m_pub_batch, tm.batch);
        }
    }
    if (rc != HQ_OK) {
        int prc = rc;
        if (g->spool && prc != HQ_ETOOBIG) { /* a message the broker never takes: 503 */
            rc = gw_spool_append(g->spool, &msg);
            if (rc == HQ_OK) {
                hq_metric_inc(g->m_spooled);
                hq_debug("spooled", "event_id=%s source=%s broker=\"%s\"", id, src->name,
                         hq_strerror(prc));
            } else {
                hq_warn("spool append failed", "event_id=%s source=%s error=\"%s\"", id,
                        src->name, hq_strerror(rc));
            }
        }
        if (rc != HQ_OK) {
            a = (struct answer){503, "not_durable", NULL, NULL, 5, false};
            goto out;
        }
    }
    gw_replay_commit(g->replay, src->name, rkey, ticket,
                     gw_replay_expiry(vr.timestamp, now_ms, hq_sig_tolerance(src),
                                      REPLAY_WINDOW_NO_TS_MS));
    ticket = 0;
    a = (struct answer){202, NULL, NULL, NULL, 0, false};
out:
    if (ticket) /* not accepted: a retry of this request must go through */
        gw_replay_abort(g->replay, src->name, rkey, ticket);
    if (a.status == 200 && a.body)
        gw_respond(conn, &a, NULL);
    else
        gw_respond(conn, &a, a.status == 202 ? id : NULL);
    if (admitted)
        atomic_fetch_sub(&g->in_flight, 1);
    count_request(g, log_source, a.status);
    if (a.reason)
        hq_info("request", "source=%s event_id=%s status=%d latency_ms=%lld client=%s reason=%s",
                log_source, id[0] ? id : "-", a.status, (long long)(hq_mono_ms() - t0),
                client[0] ? client : ri->remote_addr, a.reason);
    else
        hq_info("request", "source=%s event_id=%s status=%d latency_ms=%lld client=%s",
                log_source, id[0] ? id : "-", a.status, (long long)(hq_mono_ms() - t0),
                client[0] ? client : ri->remote_addr);
    hq_msg_free(&msg);
    hq_event_meta_free(&meta);
    hq_buf_free(&body);
    gw_snap_put(snap);
    return a.status;
}

static bool ready(struct gw *g)
{
    struct hq_pub_stats st;

    if (atomic_load(&g->stopping))
        return false; /* draining: let the load balancer take this instance out */
    hq_pub_get_stats(g->pub, &st);
    return (st.connected && !st.blocked) || gw_spool_writable(g->spool);
}

static int on_request(struct mg_connection *conn, void *cbdata)
{
    struct gw *g = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *uri = ri->local_uri ? ri->local_uri : "";

    if (strncmp(uri, "/webhooks/", 10) == 0) {
        int status;

        atomic_fetch_add(&g->active, 1);
        if (atomic_load(&g->stopping)) {
            struct answer a = {503, "shutting_down", NULL, NULL, 5, true};
            gw_respond(conn, &a, NULL);
            status = 503;
        } else {
            status = handle_webhook(conn, g, ri, uri + 10);
        }
        atomic_fetch_sub(&g->active, 1);
        return status;
    }
    if (strcmp(uri, "/healthz") == 0) {
        struct answer a = {200, NULL, "{\"status\":\"ok\"}", NULL, 0, false};
        gw_respond(conn, &a, NULL);
        return 200;
    }
    if (strcmp(uri, "/readyz") == 0) {
        bool ok = ready(g);
        struct answer a = {ok ? 200 : 503, NULL,
                           ok ? "{\"status\":\"ready\"}" : "{\"status\":\"not_ready\"}", NULL,
                           ok ? 0 : 5, false};
        gw_respond(conn, &a, NULL);
        return a.status;
    }
    {
        struct answer a = {404, NULL, NULL, NULL, 0, false};
        gw_respond(conn, &a, NULL);
    }
    return 404;
}

/* Before each /metrics render: gauges read from the live state. */
static void refresh_gauges(void *arg)
{
    struct gw *g = arg;
    struct hq_pub_stats st;
    uint64_t ev = 0, bytes = 0;

    hq_pub_get_stats(g->pub, &st);
    hq_metric_set(g->m_broker_up, st.connected ? 1 : 0);
    hq_metric_set(g->m_broker_blocked, st.blocked ? 1 : 0);
    hq_metric_set(g->m_in_flight, atomic_load(&g->in_flight));
    hq_metric_set(g->m_http_busy, atomic_load(&g->http_busy));
    if (g->spool)
        gw_spool_counts(g->spool, &ev, &bytes);
    hq_metric_set(g->m_spool_events, (int64_t)ev);
    hq_metric_set(g->m_spool_bytes, (int64_t)bytes);
    /* the pool's running totals (one pool for the process's life: they never go back) */
    hq_metric_set(g->m_pub_batches, (int64_t)st.batches);
    hq_metric_set(g->m_pub_frames, (int64_t)st.confirm_frames);
}

/* CivetWeb serves each connection on one thread for as long as it stays open, idle
 * keep-alive time included. Count the threads that hold one; when every thread does, new
 * connections wait in the accept queue: count it and warn (at most every 10 s). */
#define EXHAUSTED_LOG_EVERY_MS 10000

static int on_conn_init(const struct mg_connection *conn, void **conn_data)
{
    struct gw *g = http_gw;
    int busy;

    (void)conn;
    *conn_data = NULL;
    if (!g)
        return 0;
    busy = atomic_fetch_add(&g->http_busy, 1) + 1;
    if (busy >= g->boot->gateway.threads) {
        long long now = (long long)hq_mono_ms(), last = atomic_load(&g->exhausted_logged_ms);

        hq_metric_inc(g->m_http_exhausted);
        if ((last == 0 || now - last >= EXHAUSTED_LOG_EVERY_MS) &&
            atomic_compare_exchange_strong(&g->exhausted_logged_ms, &last, now))
            hq_warn("every HTTP thread holds a connection; new connections wait",
                    "threads=%d keep_alive_timeout_ms=%d", g->boot->gateway.threads,
                    g->boot->gateway.keep_alive_timeout_ms);
    }
    return 0;
}

static void on_conn_close(const struct mg_connection *conn)
{
    (void)conn;
    if (http_gw)
        atomic_fetch_sub(&http_gw->http_busy, 1);
}

/* CivetWeb starts each HTTP thread: its body deadline slot (freed when the thread exits). */
static void *on_thread_init(const struct mg_context *ctx, int thread_type)
{
    (void)ctx;
    return thread_type == 1 ? gw_body_slot_new() : NULL;
}

static void on_thread_exit(const struct mg_context *ctx, int thread_type, void *thread_pointer)
{
    (void)ctx;
    if (thread_type == 1)
        gw_body_slot_free(thread_pointer);
}

/* Every request but OPTIONS is answered here, before CivetWeb looks for a request handler:
 * that path takes the context's lock (shared by every HTTP thread) three times per request,
 * and its authorization check looks for .htpasswd files (two stat() calls per request).
 * OPTIONS goes the usual way to on_request(), so CivetWeb still answers CORS preflights as
 * before (docs/performance.md, "Where the gateway's CPU goes"). */
static int on_begin_request(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);

    if (!ri || !ri->request_method || strcmp(ri->request_method, "OPTIONS") == 0)
        return 0;
    return on_request(conn, ri->user_data);
}

static void register_metrics(struct gw *g)
{
    g->m_in_flight = hq_gauge(g->metrics, "hookmq_gateway_in_flight",
                              "Webhook requests admitted and not yet answered", "");
    g->m_confirm_latency =
        hq_histogram(g->metrics, "hookmq_gateway_confirm_latency_seconds",
                     "Time from publish to the broker's confirm", "", latency_bounds,
                     sizeof(latency_bounds) / sizeof(latency_bounds[0]));
    g->m_broker_up = hq_gauge(g->metrics, "hookmq_gateway_broker_connected",
                              "1 when a publisher connection to the broker is up", "");
    g->m_broker_blocked = hq_gauge(g->metrics, "hookmq_gateway_broker_blocked",
                                   "1 when the broker blocks publishing (resource alarm)", "");
    g->m_spooled = hq_counter(g->metrics, "hookmq_gateway_spooled_total",
                              "Events written to the spool because the broker did not confirm",
                              "");
    g->m_drained = hq_counter(g->metrics, "hookmq_gateway_spool_drained_total",
                              "Spooled events republished and confirmed", "");
    g->m_spool_events = hq_gauge(g->metrics, "hookmq_gateway_spool_events",
                                 "Events waiting in the spool", "");
    g->m_spool_bytes = hq_gauge(g->metrics, "hookmq_gateway_spool_bytes",
                                "Bytes of spool segments on disk", "");
    g->m_replay_hits = hq_counter(g->metrics, "hookmq_gateway_replay_cache_hits_total",
                                  "Exact replays answered from the replay cache", "");
    g->m_http_busy = hq_gauge(g->metrics, "hookmq_gateway_http_threads_busy",
                              "HTTP threads holding a connection (idle keep-alive included)", "");
    g->m_http_threads = hq_gauge(g->metrics, "hookmq_gateway_http_threads",
                                 "HTTP threads (gateway.threads)", "");
    hq_metric_set(g->m_http_threads, g->boot->gateway.threads);
    for (int i = 0; i < ST_N; i++) {
        char labels[32];

        snprintf(labels, sizeof(labels), "stage=\"%s\"", stage_names[i]);
        g->m_stage[i] = hq_histogram(
            g->metrics, "hookmq_gateway_request_stage_seconds",
            "Time of each stage of a request confirmed by the broker: prepare (headers parsed "
            "to handed to a publisher), handoff (queued to taken by a publisher thread), send "
            "(taken to written with its batch), confirm (written to the broker's ack read), "
            "wake (ack read to the HTTP thread running again)",
            labels, stage_bounds, sizeof(stage_bounds) / sizeof(stage_bounds[0]));
    }
    g->m_pub_batch = hq_histogram(g->metrics, "hookmq_gateway_publish_batch_size",
                                  "Publishes written back to back with each confirmed request's "
                                  "(observed per request)",
                                  "", batch_bounds, sizeof(batch_bounds) / sizeof(batch_bounds[0]));
    g->m_pub_batches = hq_counter(g->metrics, "hookmq_gateway_publish_batches_total",
                                  "Publish rounds: jobs taken off the queue and written back to "
                                  "back by a publisher thread", "");
    g->m_pub_frames = hq_counter(g->metrics, "hookmq_gateway_confirm_frames_total",
                                 "Broker ack/nack frames that settled at least one publish", "");
    g->m_http_exhausted =
        hq_counter(g->metrics, "hookmq_gateway_http_threads_exhausted_total",
                   "Connections taken while every HTTP thread held one (later ones waited)", "");
}

static int start_ctx(struct mg_context **ctx, const char *listen, int threads, int timeout_ms,
                     int keep_alive_ms, mg_request_handler handler, void *data, char *err,
                     size_t errsz)
{
    char nthreads[16], tmo[16], kat[16];
    const char *opts[] = {"listening_ports",
                          listen,
                          "num_threads",
                          nthreads,
                          "request_timeout_ms",
                          tmo,
                          "enable_keep_alive",
                          keep_alive_ms > 0 ? "yes" : "no",
                          "keep_alive_timeout_ms",
                          kat,
                          "max_request_size",
                          "32768",
                          "listen_backlog",
                          "1024",
                          "tcp_nodelay",
                          "1",
                          NULL};
    struct mg_callbacks cb;

    snprintf(nthreads, sizeof(nthreads), "%d", threads);
    snprintf(tmo, sizeof(tmo), "%d", timeout_ms);
    snprintf(kat, sizeof(kat), "%d", keep_alive_ms > 0 ? keep_alive_ms : 1);
    memset(&cb, 0, sizeof(cb));
    cb.init_connection = on_conn_init;
    cb.connection_close = on_conn_close;
    cb.init_thread = on_thread_init;
    cb.exit_thread = on_thread_exit;
    cb.begin_request = on_begin_request;
    *ctx = hq_mg_start(&cb, data, opts, err, errsz);
    if (!*ctx) return HQ_EIO;
    mg_set_request_handler(*ctx, "/", handler, data);
    return HQ_OK;
}

int gw_http_start(struct gw *g, char *err, size_t errsz)
{
    const struct hq_gateway_cfg *gc = &g->boot->gateway;
    int rc;

    register_metrics(g);
    {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = body_alarm;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; /* no SA_RESTART: interrupt the blocked read */
        sigaction(BODY_SIGNAL, &sa, NULL);
    }
    rc = gw_body_watch_start(BODY_SIGNAL, gc->request_timeout_ms < BODY_WATCH_IDLE_MS
                                              ? gc->request_timeout_ms
                                              : BODY_WATCH_IDLE_MS);
    if (rc != HQ_OK) {
        snprintf(err, errsz, "cannot start the body watchdog thread");
        return rc;
    }
    mg_init_library(0);
    http_gw = g;
    rc = start_ctx(&http_ctx, gc->listen, gc->threads, gc->request_timeout_ms,
                   gc->keep_alive_timeout_ms, on_request, g, err, errsz);
    if (rc != HQ_OK) {
        gw_body_watch_stop();
        return rc;
    }
    rc = hq_metrics_http_start(gc->metrics_listen, g->metrics, refresh_gauges, g, err, errsz);
    if (rc != HQ_OK) {
        mg_stop(http_ctx);
        http_ctx = NULL;
        gw_body_watch_stop();
        return rc;
    }
    return HQ_OK;
}

void gw_http_stop(struct gw *g)
{
    if (http_ctx)
        mg_stop(http_ctx);
    http_ctx = NULL;
    gw_body_watch_stop();
    hq_metrics_http_stop();
    mg_exit_library();
}
