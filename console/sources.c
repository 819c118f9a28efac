/* sources: GET /api/sources, per configured source the requests by HTTP status and the
 * signature-verification failures by reason (docs/console.md, "Sources").
 *
 * When gateway.metrics_listen is set, the counts come from the gateway's Prometheus metrics
 * (hookmq_gateway_requests_total and hookmq_gateway_verification_failures_total, counted since
 * the gateway started), read with one HTTP GET over loopback: a bounded answer (METRICS_MAX),
 * a bounded time (METRICS_TIMEOUT_MS), parsed by the strict reader of promtext.c. That input
 * is not trusted: only configured source names are shown, statuses must be 100..599, and at
 * most STATUS_MAX statuses and REASON_MAX reasons are kept per source (the rest go to
 * "other"). Otherwise, or when the gateway does not answer, the counts come from the archive:
 * the events archived per source in a window (`from`, `to`; default the last 24 hours),
 * read from the segment indexes (hq_archive_stats). The answer names its origin. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "console.h"
#include "hq_archive.h"
#include "hq_civetweb.h"
#include "hq_json.h"
#include "hq_log.h"
#include "hq_scheme.h"
#include "hq_time.h"
#include "promtext.h"

#define METRICS_MAX (4u << 20) /* bytes of the gateway's answer, headers included */
#define METRICS_TIMEOUT_MS 3000
#define STATUS_MAX 16
#define REASON_MAX 16
#define REASON_LEN 64
#define WINDOW_DEFAULT "-24h"

struct srow {
    const struct hq_source_cfg *src;
    struct {
        int code;
        uint64_t n;
    } st[STATUS_MAX + 1]; /* the last: other statuses */
    size_t nst;
    uint64_t st_other, total;
    struct {
        char reason[REASON_LEN + 1];
        uint64_t n;
    } re[REASON_MAX];
    size_t nre;
    uint64_t re_other, failures, events;
};

struct agg {
    struct srow *rows;
    size_t n;
};

static struct srow *row_of(struct agg *a, const char *source)
{
    size_t i;

    if (!source)
        return NULL;
    for (i = 0; i < a->n; i++)
        if (strcmp(a->rows[i].src->name, source) == 0)
            return &a->rows[i];
    return NULL;
}

static int add_status(struct srow *r, const char *status, uint64_t v)
{
    char *end;
    long code = status ? strtol(status, &end, 10) : 0;
    size_t i;

    r->total += v;
    if (!status || *end || end - status != 3 || code < 100 || code > 599) {
        r->st_other += v;
        return 0;
    }
    for (i = 0; i < r->nst; i++)
        if (r->st[i].code == code) {
            r->st[i].n += v;
            return 0;
        }
    if (r->nst == STATUS_MAX) {
        r->st_other += v;
        return 0;
    }
    r->st[r->nst].code = (int)code;
    r->st[r->nst++].n = v;
    return 0;
}

static bool reason_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (i == REASON_LEN || !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
                                 s[i] == '_' || s[i] == '-' || s[i] == '.'))
            return false;
    return i > 0;
}

static void add_reason(struct srow *r, const char *reason, uint64_t v)
{
    size_t i;

    r->failures += v;
    if (!reason || !reason_ok(reason)) {
        r->re_other += v;
        return;
    }
    for (i = 0; i < r->nre; i++)
        if (strcmp(r->re[i].reason, reason) == 0) {
            r->re[i].n += v;
            return;
        }
    if (r->nre == REASON_MAX) {
        r->re_other += v;
        return;
    }
    snprintf(r->re[r->nre].reason, sizeof(r->re[r->nre].reason), "%s", reason);
    r->re[r->nre++].n = v;
}

static const char M_REQUESTS[] = "hookmq_gateway_requests_total";
static const char M_FAILURES[] = "hookmq_gateway_verification_failures_total";

static int on_sample(void *arg, const struct cs_prom_sample *s)
{
    struct srow *r = row_of(arg, cs_prom_label(s, "source"));

    if (!r)
        return 0; /* not a configured source */
    if (strcmp(s->metric, M_REQUESTS) == 0)
        add_status(r, cs_prom_label(s, "status"), s->value);
    else
        add_reason(r, cs_prom_label(s, "reason"), s->value);
    return 0;
}

/* Feed the gateway's metrics text into a; *bad gets the lines skipped. */
static void from_metrics(struct agg *a, const char *text, size_t n, size_t *bad)
{
    static const char *const want[] = {M_REQUESTS, M_FAILURES, NULL};

    (void)cs_prom_parse(text, n, want, on_sample, a, bad);
}

/* GET /metrics from listen ("a.b.c.d:port"; 0.0.0.0 is read on 127.0.0.1): the body into
 * out. HQ_OK, or HQ_EIO / HQ_ETOOBIG / HQ_EINVAL with err filled. */
static int fetch_metrics(const char *listen, struct hq_buf *out, char *err, size_t errsz)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    struct sockaddr_in sa;
    struct timeval tv = {METRICS_TIMEOUT_MS / 1000, (METRICS_TIMEOUT_MS % 1000) * 1000};
    struct hq_buf raw = HQ_BUF_INIT(METRICS_MAX);
    int64_t deadline = hq_mono_ms() + METRICS_TIMEOUT_MS;
    char req[160], *body;
    long port;
    int fd = -1, rc = HQ_EIO, status = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    port = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (!colon || (size_t)(colon - listen) >= sizeof(host) || port < 1 || port > 65535) {
        snprintf(err, errsz, "gateway.metrics_listen '%s' is not host:port", listen);
        return HQ_EINVAL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    if (strcmp(host, "0.0.0.0") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errsz, "gateway.metrics_listen '%s' is not an IPv4 address", listen);
        return HQ_EINVAL;
    }
    sa.sin_port = htons((uint16_t)port);
    snprintf(req, sizeof(req), "GET /metrics HTTP/1.0\r\nHost: %s:%ld\r\nConnection: close\r\n\r\n",
             host, port);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        snprintf(err, errsz, "cannot reach the gateway's metrics on %s:%ld: %s", host, port,
                 strerror(errno));
        goto out;
    }
    for (;;) {
        char chunk[16384];
        ssize_t k = recv(fd, chunk, sizeof(chunk), 0);

        if (k == 0)
            break;
        if (k < 0 || hq_mono_ms() > deadline) {
            snprintf(err, errsz, "the gateway's metrics on %s:%ld did not answer in %d ms", host,
                     port, METRICS_TIMEOUT_MS);
            goto out;
        }
        if (hq_buf_append(&raw, chunk, (size_t)k) != HQ_OK) {
            snprintf(err, errsz, "the gateway's metrics are larger than %u bytes", METRICS_MAX);
            rc = HQ_ETOOBIG;
            goto out;
        }
    }
    if (raw.len < 12 || memcmp(raw.data, "HTTP/1.", 7) != 0 ||
        sscanf((const char *)raw.data + 8, " %3d", &status) != 1 || status != 200) {
        snprintf(err, errsz, "the gateway's metrics on %s:%ld answered %d, not 200", host, port,
                 status);
        goto out;
    }
    body = memmem(raw.data, raw.len, "\r\n\r\n", 4);
    if (!body) {
        snprintf(err, errsz, "the gateway's metrics answer has no end of headers");
        goto out;
    }
    body += 4;
    rc = hq_buf_append(out, body, raw.len - (size_t)(body - (char *)raw.data));
    if (rc != HQ_OK)
        snprintf(err, errsz, "the gateway's metrics are larger than %u bytes", METRICS_MAX);
out:
    if (fd >= 0)
        close(fd);
    hq_buf_free(&raw);
    return rc;
}

static int json_counts(struct hq_buf *b, const struct srow *r)
{
    size_t i;
    int rc = hq_buf_append(b, ",\"requests\":{", 13);

    for (i = 0; i < r->nst && rc == HQ_OK; i++)
        rc = hq_buf_appendf(b, "%s\"%d\":%llu", i ? "," : "", r->st[i].code,
                            (unsigned long long)r->st[i].n);
    if (rc == HQ_OK && r->st_other)
        rc = hq_buf_appendf(b, "%s\"other\":%llu", r->nst ? "," : "",
                            (unsigned long long)r->st_other);
    if (rc == HQ_OK)
        rc = hq_buf_appendf(b, "},\"total\":%llu,\"verification_failures\":{",
                            (unsigned long long)r->total);
    for (i = 0; i < r->nre && rc == HQ_OK; i++)
        rc = hq_buf_appendf(b, "%s\"%s\":%llu", i ? "," : "", r->re[i].reason,
                            (unsigned long long)r->re[i].n);
    if (rc == HQ_OK && r->re_other)
        rc = hq_buf_appendf(b, "%s\"other\":%llu", r->nre ? "," : "",
                            (unsigned long long)r->re_other);
    if (rc == HQ_OK)
        rc = hq_buf_appendf(b, "},\"failures\":%llu", (unsigned long long)r->failures);
    return rc;
}

static int window(struct mg_connection *conn, const char *query, int64_t *from, int64_t *to)
{
    char f[65] = "", t[65] = "";
    int64_t now = hq_now_ms();

    if (query && (mg_get_var(query, strlen(query), "from", f, sizeof(f)) == -2 ||
                  mg_get_var(query, strlen(query), "to", t, sizeof(t)) == -2)) {
        cs_send_error(conn, 400, "from/to: at most 64 bytes");
        return HQ_EINVAL;
    }
    if (hq_time_parse(f[0] ? f : WINDOW_DEFAULT, now, from) != HQ_OK ||
        (t[0] && hq_time_parse(t, now, to) != HQ_OK)) {
        cs_send_error(conn, 400, "from/to: expected RFC 3339 (2026-11-29T10:00:00Z) or a "
                                 "relative time (-2h, -15m, -7d)");
        return HQ_EINVAL;
    }
    if (!t[0])
        *to = now + 1;
    if (*from > *to) {
        cs_send_error(conn, 400, "from is after to");
        return HQ_EINVAL;
    }
    return HQ_OK;
}

void cs_api_sources(struct mg_connection *conn, const struct hq_config *cfg, const char *query)
{
    struct agg a = {NULL, 0};
    struct hq_buf text = HQ_BUF_INIT(METRICS_MAX), out = HQ_BUF_INIT(1u << 20);
    struct hq_astat *st = NULL;
    char err[256] = "", tf[40], tt[40];
    const char *origin = "archive";
    int64_t from = 0, to = 0;
    size_t i, nst = 0, bad = 0;
    int rc = HQ_OK;

    if (window(conn, query, &from, &to) != HQ_OK)
        return;
    a.rows = calloc(cfg->n_sources ? cfg->n_sources : 1, sizeof(*a.rows));
    if (!a.rows) {
        cs_send_error(conn, 500, "out of memory");
        return;
    }
    for (i = 0; i < cfg->n_sources; i++)
        a.rows[i].src = &cfg->sources[i];
    a.n = cfg->n_sources;
    if (cfg->gateway.metrics_listen) {
        rc = fetch_metrics(cfg->gateway.metrics_listen, &text, err, sizeof(err));
        if (rc == HQ_OK) {
            origin = "metrics";
            from_metrics(&a, (const char *)text.data, text.len, &bad);
            if (bad)
                hq_warn("the gateway's metrics held lines that do not parse: skipped",
                        "lines=%zu", bad);
        } else {
            hq_warn("cannot read the gateway's metrics: showing the archive's counts",
                    "error=\"%s\"", err);
        }
    }
    if (strcmp(origin, "archive") == 0) {
        rc = hq_archive_stats(cfg->archive.dir, from, to, &st, &nst, NULL);
        if (rc != HQ_OK) {
            hq_error("reading the archive failed", "dir=%s error=\"%s\"", cfg->archive.dir,
                     hq_strerror(rc));
            cs_send_error(conn, 500, "reading the archive failed (see the console's log)");
            goto out;
        }
        for (i = 0; i < nst; i++) {
            struct srow *r = row_of(&a, st[i].source);

            if (r)
                r->events += st[i].events;
        }
    }
    rc = hq_buf_appendf(&out, "{\"origin\":\"%s\"", origin);
    if (rc == HQ_OK && strcmp(origin, "metrics") == 0)
        rc = hq_buf_appendf(&out, ",\"skipped_lines\":%zu", bad);
    if (rc == HQ_OK && strcmp(origin, "archive") == 0) {
        hq_time_format(from, tf, sizeof(tf));
        hq_time_format(to, tt, sizeof(tt));
        rc = hq_buf_appendf(&out, ",\"from\":\"%s\",\"to\":\"%s\"", tf, tt);
    }
    if (rc == HQ_OK && err[0]) {
        rc = hq_buf_append(&out, ",\"metrics_error\":\"", 18);
        if (rc == HQ_OK)
            rc = hq_buf_append_json_str(&out, err, strlen(err));
        if (rc == HQ_OK)
            rc = hq_buf_append(&out, "\"", 1);
    }
    if (rc == HQ_OK)
        rc = hq_buf_append(&out, ",\"sources\":[", 12);
    for (i = 0; i < a.n && rc == HQ_OK; i++) {
        const struct srow *r = &a.rows[i];
        const char *scheme = hq_scheme_name(r->src->scheme);

        rc = hq_buf_appendf(&out, "%s{\"name\":\"%s\",\"scheme\":\"%s\"", i ? "," : "",
                            r->src->name, scheme ? scheme : "");
        if (rc == HQ_OK)
            rc = strcmp(origin, "metrics") == 0
                     ? json_counts(&out, r)
                     : hq_buf_appendf(&out, ",\"events\":%llu", (unsigned long long)r->events);
        if (rc == HQ_OK)
            rc = hq_buf_append(&out, "}", 1);
    }
    if (rc == HQ_OK)
        rc = hq_buf_append(&out, "]}\n", 3);
    if (rc != HQ_OK)
        cs_send_error(conn, 500, "answer too large");
    else
        cs_send_json(conn, &out);
out:
    hq_astat_free(st, nst);
    free(a.rows);
    hq_buf_free(&text);
    hq_buf_free(&out);
}
