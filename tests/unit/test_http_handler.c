/* Unit tests: the built-in http handler (worker/handler_http.c) against a CivetWeb server
 * started inside the test on 127.0.0.1: verdict per status code, Retry-After in seconds and as
 * an HTTP-date, the raw body byte for byte, forwarded and refused headers, timeouts,
 * connection refused, no redirects, keep-alive reuse, and option errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <civetweb.h>

#include "hq_time.h"
#include "plugin.h"
#include "hqtest_handler.h"

#define REC_MAX_HEADERS 64
#define REC_BODY_MAX (4 * 1024 * 1024)

/* What the server saw in the last request. */
static struct {
    pthread_mutex_t mu;
    int count;
    char method[16];
    char uri[128];
    int n_headers;
    char name[REC_MAX_HEADERS][128];
    char value[REC_MAX_HEADERS][1024];
    unsigned char *body;
    size_t body_len;
    long long content_length;
    int remote_port;
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct mg_context *server;
static int port;

static const struct hq_host_api api = HQTEST_HOST_API("c1");

static void http_date(time_t t, char *out, size_t outsz)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, outsz, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void respond(struct mg_connection *conn, int status, const char *hname, const char *hval,
                    const char *body)
{
    char len[32];

    snprintf(len, sizeof(len), "%zu", strlen(body));
    mg_response_header_start(conn, status);
    mg_response_header_add(conn, "Content-Type", "text/plain", -1);
    mg_response_header_add(conn, "Content-Length", len, -1);
    if (hname)
        mg_response_header_add(conn, hname, hval, -1);
    mg_response_header_send(conn);
    mg_write(conn, body, strlen(body));
}

static int on_request(struct mg_connection *conn, void *cbdata)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *u = ri->local_uri;
    unsigned char *body = malloc(REC_BODY_MAX);
    size_t got = 0;
    int i, r;
    char date[64];

    (void)cbdata;
    while (body && got < REC_BODY_MAX && (r = mg_read(conn, body + got, REC_BODY_MAX - got)) > 0)
        got += (size_t)r;
    pthread_mutex_lock(&rec.mu);
    rec.count++;
    snprintf(rec.method, sizeof(rec.method), "%s", ri->request_method);
    snprintf(rec.uri, sizeof(rec.uri), "%s", u);
    rec.n_headers = ri->num_headers < REC_MAX_HEADERS ? ri->num_headers : REC_MAX_HEADERS;
    for (i = 0; i < rec.n_headers; i++) {
        snprintf(rec.name[i], sizeof(rec.name[i]), "%s", ri->http_headers[i].name);
        snprintf(rec.value[i], sizeof(rec.value[i]), "%s", ri->http_headers[i].value);
    }
    free(rec.body);
    rec.body = body;
    rec.body_len = got;
    rec.content_length = ri->content_length;
    rec.remote_port = ri->remote_port;
    pthread_mutex_unlock(&rec.mu);

    if (strcmp(u, "/ok") == 0) {
        respond(conn, 200, NULL, NULL, "ok");
        return 200;
    } else if (strcmp(u, "/created") == 0) {
        respond(conn, 201, NULL, NULL, "");
        return 201;
    } else if (strcmp(u, "/nocontent") == 0) {
        mg_response_header_start(conn, 204);
        mg_response_header_send(conn);
        return 204;
    } else if (strcmp(u, "/bad") == 0) {
        respond(conn, 400, NULL, NULL, "bad request: field x");
        return 400;
    } else if (strcmp(u, "/notfound") == 0) {
        respond(conn, 404, NULL, NULL, "");
        return 404;
    } else if (strcmp(u, "/unauthorized") == 0) {
        respond(conn, 401, NULL, NULL, "no token");
        return 401;
    } else if (strcmp(u, "/forbidden") == 0) {
        respond(conn, 403, NULL, NULL, "forbidden");
        return 403;
    } else if (strcmp(u, "/gone") == 0) {
        respond(conn, 410, NULL, NULL, "gone");
        return 410;
    } else if (strcmp(u, "/timeout") == 0) {
        respond(conn, 408, NULL, NULL, "");
        return 408;
    } else if (strcmp(u, "/ratelimit") == 0) {
        respond(conn, 429, "Retry-After", "7", "slow down");
        return 429;
    } else if (strcmp(u, "/error") == 0) {
        respond(conn, 500, NULL, NULL, "boom\r\nline2\x01");
        return 500;
    } else if (strcmp(u, "/unavailable") == 0) {
        http_date(time(NULL) + 120, date, sizeof(date));
        respond(conn, 503, "Retry-After", date, "");
        return 503;
    } else if (strcmp(u, "/unavailable-past") == 0) {
        http_date(time(NULL) - 3600, date, sizeof(date));
        respond(conn, 503, "Retry-After", date, "");
        return 503;
    } else if (strcmp(u, "/unavailable-junk") == 0) {
        respond(conn, 503, "Retry-After", "soon", "");
        return 503;
    } else if (strcmp(u, "/huge-retry") == 0) {
        respond(conn, 502, "Retry-After", "99999999999999999999", "");
        return 502;
    } else if (strcmp(u, "/slow") == 0) {
        usleep(1500 * 1000);
        respond(conn, 200, NULL, NULL, "late");
        return 200;
    } else if (strcmp(u, "/moved") == 0) {
        respond(conn, 301, "Location", "/ok", "moved");
        return 301;
    }
    respond(conn, 418, NULL, NULL, "teapot");
    return 418;
}

/* Value of the recorded header name (case-insensitive), or NULL; *count gets the number of
 * headers with that name. Call with rec.mu held or after the request completed. */
static const char *rec_header(const char *name, int *count)
{
    const char *v = NULL;
    int i, c = 0;

    for (i = 0; i < rec.n_headers; i++) {
        if (strcasecmp(rec.name[i], name) == 0) {
            if (!v)
                v = rec.value[i];
            c++;
        }
    }
    if (count)
        *count = c;
    return v;
}

static int setup_server(void **state)
{
    const char *options[] = {"listening_ports", "127.0.0.1:0", "num_threads", "8",
                             "enable_keep_alive", "yes", "keep_alive_timeout_ms", "10000",
                             NULL};
    struct mg_callbacks cb;
    struct mg_server_port ports[4];

    (void)state;
    /* a proxy from the environment must not take the loopback requests elsewhere */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    mg_init_library(0);
    memset(&cb, 0, sizeof(cb));
    server = mg_start(&cb, NULL, options);
    if (!server)
        return -1;
    mg_set_request_handler(server, "/", on_request, NULL);
    if (mg_get_server_ports(server, 4, ports) < 1 || ports[0].port <= 0)
        return -1;
    port = ports[0].port;
    return 0;
}

static int teardown_server(void **state)
{
    (void)state;
    mg_stop(server);
    mg_exit_library();
    free(rec.body);
    return 0;
}

static struct hq_event make_event(const void *body, size_t len)
{
    return HQTEST_EVENT(.id = "evt-1", .source = "gh", .type = "pull_request",
                        .routing_key = "gh.pull_request",
                        .content_type = "application/json; charset=utf-8", .consumer = "c1",
                        .body = body, .body_len = len, .attempt = 3,
                        .received_at_ms = 1700000000123);
}

static void url_for(char *out, size_t outsz, const char *path)
{
    snprintf(out, outsz, "http://127.0.0.1:%d%s", port, path);
}

/* A handler state for url (timeout 10s unless given). */
static void *open_state(const char *path, const char *timeout)
{
    struct hq_handler_opt o[2];
    char url[256];
    void *st = NULL;
    size_t n = 0;

    url_for(url, sizeof(url), path);
    o[n++] = (struct hq_handler_opt){.key = "url", .value = url};
    if (timeout)
        o[n++] = (struct hq_handler_opt){.key = "timeout", .value = timeout};
    if (hq_builtin_http.init(&api, o, n, &st) != 0)
        fail_msg("init failed: %s", hqtest_log_buf);
    return st;
}

static enum hq_verdict post(const char *path, struct hq_error *err)
{
    struct hq_event ev = make_event("{\"a\":1}", 7);
    void *st = open_state(path, NULL);
    enum hq_verdict v;

    memset(err, 0x7f, sizeof(*err));
    v = hq_builtin_http.handle(st, &ev, err);
    hq_builtin_http.fini(st);
    return v;
}

static void test_verdicts(void **state)
{
    struct hq_error err;
    int before;

    (void)state;
    assert_int_equal(post("/ok", &err), HQ_VERDICT_ACK);
    assert_int_equal(post("/created", &err), HQ_VERDICT_ACK);
    assert_int_equal(post("/nocontent", &err), HQ_VERDICT_ACK);

    assert_int_equal(post("/bad", &err), HQ_VERDICT_REJECT);
    assert_string_equal(err.message, "HTTP 400: bad request: field x");
    assert_int_equal(err.retry_after_ms, 0);
    /* 401, 403 and 404 mean RETRY by default (retry_statuses): a receiver misconfigured for a
     * while must not park every event */
    assert_int_equal(post("/notfound", &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "HTTP 404");
    assert_int_equal(post("/unauthorized", &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "HTTP 401: no token");
    assert_int_equal(post("/forbidden", &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "HTTP 403: forbidden");
    assert_int_equal(post("/gone", &err), HQ_VERDICT_REJECT);
    assert_int_equal(post("/teapot", &err), HQ_VERDICT_REJECT);
    assert_string_equal(err.message, "HTTP 418: teapot");

    assert_int_equal(post("/timeout", &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "HTTP 408");
    assert_int_equal(err.retry_after_ms, 0);
    assert_int_equal(post("/ratelimit", &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "HTTP 429: slow down");
    assert_int_equal(err.retry_after_ms, 7000);
    assert_int_equal(post("/error", &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "HTTP 500: boom  line2"); /* control bytes masked */
    assert_int_equal(err.retry_after_ms, 0);
    assert_int_equal(post("/unavailable", &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "HTTP 503");
    assert_true(err.retry_after_ms > 110000);
    assert_true(err.retry_after_ms <= 121000);
    assert_int_equal(post("/unavailable-past", &err), HQ_VERDICT_RETRY);
    assert_int_equal(err.retry_after_ms, 0);
    assert_int_equal(post("/unavailable-junk", &err), HQ_VERDICT_RETRY);
    assert_int_equal(err.retry_after_ms, 0);
    assert_int_equal(post("/huge-retry", &err), HQ_VERDICT_RETRY);
    assert_int_equal(err.retry_after_ms, 7LL * 24 * 3600 * 1000); /* capped */

    /* redirects are not followed */
    pthread_mutex_lock(&rec.mu);
    before = rec.count;
    pthread_mutex_unlock(&rec.mu);
    assert_int_equal(post("/moved", &err), HQ_VERDICT_REJECT);
    assert_string_equal(err.message, "HTTP 301: moved");
    pthread_mutex_lock(&rec.mu);
    assert_int_equal(rec.count, before + 1);
    assert_string_equal(rec.uri, "/moved");
    pthread_mutex_unlock(&rec.mu);
}

/* post() with retry_statuses = values[0..n). */
static enum hq_verdict post_retry_statuses(const char *path, const char *const *values,
                                           size_t n, struct hq_error *err)
{
    struct hq_event ev = make_event("{\"a\":1}", 7);
    struct hq_handler_opt o[2];
    char url[256];
    void *st = NULL;
    enum hq_verdict v;

    url_for(url, sizeof(url), path);
    o[0] = (struct hq_handler_opt){.key = "url", .value = url};
    o[1] = (struct hq_handler_opt){.key = "retry_statuses", .values = values, .n_values = n};
    if (hq_builtin_http.init(&api, o, 2, &st) != 0)
        fail_msg("init failed: %s", hqtest_log_buf);
    memset(err, 0x7f, sizeof(*err));
    v = hq_builtin_http.handle(st, &ev, err);
    hq_builtin_http.fini(st);
    return v;
}

static void test_retry_statuses(void **state)
{
    const char *none[] = {NULL}, *only404[] = {"404"}, *more[] = {"400", "410", "418", "301"};
    struct hq_error err;

    (void)state;
    /* [] : 401/403/404 are REJECTs again */
    assert_int_equal(post_retry_statuses("/unauthorized", none, 0, &err), HQ_VERDICT_REJECT);
    assert_int_equal(post_retry_statuses("/forbidden", none, 0, &err), HQ_VERDICT_REJECT);
    assert_int_equal(post_retry_statuses("/notfound", none, 0, &err), HQ_VERDICT_REJECT);
    /* 408, 429 and 5xx retry whatever the list says */
    assert_int_equal(post_retry_statuses("/timeout", none, 0, &err), HQ_VERDICT_RETRY);
    assert_int_equal(post_retry_statuses("/ratelimit", none, 0, &err), HQ_VERDICT_RETRY);
    assert_int_equal(post_retry_statuses("/error", none, 0, &err), HQ_VERDICT_RETRY);
    /* the list replaces the default */
    assert_int_equal(post_retry_statuses("/notfound", only404, 1, &err), HQ_VERDICT_RETRY);
    assert_int_equal(post_retry_statuses("/unauthorized", only404, 1, &err), HQ_VERDICT_REJECT);
    assert_string_equal(err.message, "HTTP 401: no token");
    assert_int_equal(post_retry_statuses("/bad", more, 4, &err), HQ_VERDICT_RETRY);
    assert_int_equal(post_retry_statuses("/gone", more, 4, &err), HQ_VERDICT_RETRY);
    assert_int_equal(post_retry_statuses("/teapot", more, 4, &err), HQ_VERDICT_RETRY);
    assert_int_equal(post_retry_statuses("/moved", more, 4, &err), HQ_VERDICT_RETRY);
    assert_int_equal(post_retry_statuses("/forbidden", more, 4, &err), HQ_VERDICT_REJECT);
    assert_int_equal(post_retry_statuses("/ok", more, 4, &err), HQ_VERDICT_ACK);
}

static void test_body_and_headers(void **state)
{
    static const struct hq_kv headers[] = {
        {"hookmq-source", "gh"},
        {"hookmq-attempt", "3"},
        {"http-x-github-event", "pull_request"},
        {"http-x-hub-signature-256", "sha256=0123abcd"},
        {"http-x-evil", "a\r\nInjected: 1"},
        {"http-x-evil-lf", "a\nInjected2: 1"},
        {"http-x-empty", ""},
        {"http-content-length", "5"},
        {"http-host", "evil.example"},
        {"http-transfer-encoding", "chunked"},
        {"http-hookmq-event-id", "spoofed"},
        {"http-bad name", "x"},
        {"http-", "x"},
    };
    unsigned char body[256 + 64];
    struct hq_event ev;
    struct hq_error err;
    void *st = open_state("/ok", NULL);
    const char *v;
    char len[32];
    int i, n;

    (void)state;
    for (i = 0; i < (int)sizeof(body); i++)
        body[i] = (unsigned char)(i < 256 ? i : 'z' - (i % 26)); /* NUL and CR/LF included */
    ev = make_event(body, sizeof(body));
    ev.headers = headers;
    ev.n_headers = sizeof(headers) / sizeof(headers[0]);
    assert_int_equal(hq_builtin_http.handle(st, &ev, &err), HQ_VERDICT_ACK);
    hq_builtin_http.fini(st);

    pthread_mutex_lock(&rec.mu);
    assert_string_equal(rec.method, "POST");
    assert_string_equal(rec.uri, "/ok");
    assert_int_equal(rec.body_len, sizeof(body));
    assert_memory_equal(rec.body, body, sizeof(body));
    snprintf(len, sizeof(len), "%zu", sizeof(body));
    assert_string_equal(rec_header("Content-Length", &n), len);
    assert_int_equal(n, 1);
    assert_string_equal(rec_header("Content-Type", &n), "application/json; charset=utf-8");
    assert_int_equal(n, 1);
    v = rec_header("Host", &n);
    assert_non_null(v);
    assert_int_equal(n, 1);
    assert_non_null(strstr(v, "127.0.0.1")); /* not the event's http-host */
    assert_null(rec_header("Transfer-Encoding", NULL));
    assert_null(rec_header("Expect", NULL));
    assert_string_equal(rec_header("X-GitHub-Event", NULL), "pull_request");
    assert_string_equal(rec_header("X-Hub-Signature-256", NULL), "sha256=0123abcd");
    v = rec_header("X-Empty", &n);
    assert_non_null(v);
    assert_string_equal(v, "");
    assert_null(rec_header("X-Evil", NULL));
    assert_null(rec_header("X-Evil-Lf", NULL));
    assert_null(rec_header("Injected", NULL));
    assert_null(rec_header("Injected2", NULL));
    assert_null(rec_header("Bad name", NULL));
    assert_string_equal(rec_header("Hookmq-Event-Id", &n), "evt-1");
    assert_int_equal(n, 1); /* not the spoofed copy */
    assert_string_equal(rec_header("Hookmq-Source", &n), "gh");
    assert_int_equal(n, 1);
    assert_string_equal(rec_header("Hookmq-Event-Type", NULL), "pull_request");
    assert_string_equal(rec_header("Hookmq-Routing-Key", NULL), "gh.pull_request");
    assert_string_equal(rec_header("Hookmq-Attempt", &n), "3");
    assert_int_equal(n, 1);
    assert_string_equal(rec_header("Hookmq-Consumer", NULL), "c1");
    assert_string_equal(rec_header("Hookmq-Received-At", NULL), "1700000000123");
    assert_non_null(strstr(rec_header("User-Agent", NULL), "hookmq/"));
    pthread_mutex_unlock(&rec.mu);
}

/* A large body goes out whole and unchanged (no 100-continue wait either). */
static void test_large_body(void **state)
{
    const size_t len = 1536 * 1024 + 7;
    unsigned char *body = malloc(len);
    struct hq_event ev;
    struct hq_error err;
    void *st = open_state("/created", "5s");
    int64_t t0;
    size_t i;

    (void)state;
    assert_non_null(body);
    for (i = 0; i < len; i++)
        body[i] = (unsigned char)(i * 131u + (i >> 9));
    ev = make_event(body, len);
    t0 = hq_mono_ms();
    assert_int_equal(hq_builtin_http.handle(st, &ev, &err), HQ_VERDICT_ACK);
    assert_true(hq_mono_ms() - t0 < 5000);
    hq_builtin_http.fini(st);
    pthread_mutex_lock(&rec.mu);
    assert_int_equal(rec.body_len, len);
    assert_memory_equal(rec.body, body, len);
    /* curl would ask for 100-continue (and wait up to 1 s) on a body this large */
    assert_null(rec_header("Expect", NULL));
    pthread_mutex_unlock(&rec.mu);
    free(body);
}

static void test_empty_body_and_no_content_type(void **state)
{
    struct hq_event ev = make_event("", 0);
    struct hq_error err;
    void *st = open_state("/ok", NULL);

    (void)state;
    ev.content_type = NULL;
    ev.body = NULL;
    assert_int_equal(hq_builtin_http.handle(st, &ev, &err), HQ_VERDICT_ACK);
    pthread_mutex_lock(&rec.mu);
    assert_int_equal(rec.body_len, 0);
    assert_string_equal(rec_header("Content-Length", NULL), "0");
    assert_null(rec_header("Content-Type", NULL)); /* not x-www-form-urlencoded */
    pthread_mutex_unlock(&rec.mu);
    /* a content type holding CR/LF is not sent either */
    ev.content_type = "text/plain\r\nX-Injected: 1";
    assert_int_equal(hq_builtin_http.handle(st, &ev, &err), HQ_VERDICT_ACK);
    pthread_mutex_lock(&rec.mu);
    assert_null(rec_header("Content-Type", NULL));
    assert_null(rec_header("X-Injected", NULL));
    pthread_mutex_unlock(&rec.mu);
    hq_builtin_http.fini(st);
}

static void test_static_headers_and_no_forwarding(void **state)
{
    static const struct hq_kv headers[] = {{"http-x-github-event", "push"},
                                           {"http-x-other", "kept"}};
    const char *static_h[] = {"Authorization: Bearer t0k3n", "X-GitHub-Event: configured"};
    struct hq_handler_opt o[3];
    struct hq_event ev = make_event("{}", 2);
    struct hq_error err;
    char url[256];
    void *st = NULL;
    int n;

    (void)state;
    ev.headers = headers;
    ev.n_headers = 2;
    url_for(url, sizeof(url), "/ok");
    o[0] = (struct hq_handler_opt){.key = "url", .value = url};
    o[1] = (struct hq_handler_opt){.key = "headers", .values = static_h, .n_values = 2};
    assert_int_equal(hq_builtin_http.init(&api, o, 2, &st), 0);
    assert_int_equal(hq_builtin_http.handle(st, &ev, &err), HQ_VERDICT_ACK);
    hq_builtin_http.fini(st);
    pthread_mutex_lock(&rec.mu);
    assert_string_equal(rec_header("Authorization", NULL), "Bearer t0k3n");
    assert_string_equal(rec_header("X-GitHub-Event", &n), "configured");
    assert_int_equal(n, 1);
    assert_string_equal(rec_header("X-Other", NULL), "kept");
    pthread_mutex_unlock(&rec.mu);

    o[1] = (struct hq_handler_opt){.key = "forward_headers", .value = "false"};
    assert_int_equal(hq_builtin_http.init(&api, o, 2, &st), 0);
    assert_int_equal(hq_builtin_http.handle(st, &ev, &err), HQ_VERDICT_ACK);
    hq_builtin_http.fini(st);
    pthread_mutex_lock(&rec.mu);
    assert_null(rec_header("X-GitHub-Event", NULL));
    assert_null(rec_header("X-Other", NULL));
    assert_string_equal(rec_header("Hookmq-Event-Id", NULL), "evt-1");
    pthread_mutex_unlock(&rec.mu);
}

static void test_timeout(void **state)
{
    struct hq_event ev = make_event("{}", 2);
    struct hq_error err;
    void *st = open_state("/slow", "300ms");
    int64_t t0, el;

    (void)state;
    t0 = hq_mono_ms();
    assert_int_equal(hq_builtin_http.handle(st, &ev, &err), HQ_VERDICT_RETRY);
    el = hq_mono_ms() - t0;
    assert_true(el >= 250);
    assert_true(el < 1400);
    assert_non_null(strstr(err.message, ": timed out after 300ms"));
    assert_int_equal(err.retry_after_ms, 0);
    /* the same handle works afterwards (a new connection) */
    hq_builtin_http.fini(st);
}

static void test_connection_refused(void **state)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    struct hq_handler_opt o;
    struct hq_event ev = make_event("{}", 2);
    struct hq_error err;
    char url[128];
    void *st = NULL;
    int fd, closed_port;

    (void)state;
    /* a port that was just free: bind, learn it, close */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    closed_port = ntohs(sa.sin_port);
    close(fd);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", closed_port);
    o = (struct hq_handler_opt){.key = "url", .value = url};
    assert_int_equal(hq_builtin_http.init(&api, &o, 1, &st), 0);
    assert_int_equal(hq_builtin_http.handle(st, &ev, &err), HQ_VERDICT_RETRY);
    assert_true(strncmp(err.message, "POST http://127.0.0.1:", 22) == 0);
    assert_non_null(strstr(err.message, "onnect"));
    assert_int_equal(err.retry_after_ms, 0);
    hq_builtin_http.fini(st);
}

static int last_port(void)
{
    int p;

    pthread_mutex_lock(&rec.mu);
    p = rec.remote_port;
    pthread_mutex_unlock(&rec.mu);
    return p;
}

/* One state keeps its connection: consecutive requests arrive from the same client port. */
static void test_keepalive_reuse(void **state)
{
    struct hq_event ev = make_event("{}", 2);
    struct hq_error err;
    void *st = open_state("/ok", NULL), *st2 = open_state("/ok", NULL);
    int p1, p2, p3, p4;

    (void)state;
    assert_int_equal(hq_builtin_http.handle(st, &ev, &err), HQ_VERDICT_ACK);
    p1 = last_port();
    assert_int_equal(hq_builtin_http.handle(st, &ev, &err), HQ_VERDICT_ACK);
    p2 = last_port();
    assert_int_equal(hq_builtin_http.handle(st, &ev, &err), HQ_VERDICT_ACK);
    p3 = last_port();
    assert_int_equal(p1, p2);
    assert_int_equal(p2, p3);
    /* another state (another handler thread) has its own connection */
    assert_int_equal(hq_builtin_http.handle(st2, &ev, &err), HQ_VERDICT_ACK);
    p4 = last_port();
    assert_int_not_equal(p4, p1);
    hq_builtin_http.fini(st);
    hq_builtin_http.fini(st2);
}

static void expect_init_fails(const struct hq_handler_opt *o, size_t n, const char *want)
{
    void *st = NULL;

    hqtest_log_buf[0] = '\0';
    assert_int_not_equal(hq_builtin_http.init(&api, o, n, &st), 0);
    if (!strstr(hqtest_log_buf, want))
        fail_msg("log \"%s\" lacks \"%s\"", hqtest_log_buf, want);
}

static void test_option_errors(void **state)
{
    const char *nocolon[] = {"X-Token abc"}, *crlf[] = {"X-A: b\r\nX-B: c"},
               *badname[] = {"X A: b"}, *bad200[] = {"200"}, *bad503[] = {"503"},
               *badtext[] = {"40x"};
    struct hq_handler_opt o[2];

    (void)state;
    expect_init_fails(NULL, 0, "http: option url is required");
    o[0] = (struct hq_handler_opt){.key = "url", .value = "ftp://127.0.0.1/"};
    expect_init_fails(o, 1, "http: option url: expected an http:// or https:// URL");
    o[0] = (struct hq_handler_opt){.key = "url", .value = "file:///etc/passwd"};
    expect_init_fails(o, 1, "http: option url");
    o[0] = (struct hq_handler_opt){.key = "url", .value = "http://x/\r\n"};
    expect_init_fails(o, 1, "http: option url");
    o[0] = (struct hq_handler_opt){.key = "url", .value = "http://127.0.0.1/"};
    o[1] = (struct hq_handler_opt){.key = "timeout", .value = "ten seconds"};
    expect_init_fails(o, 2, "http: option timeout");
    o[1] = (struct hq_handler_opt){.key = "headers", .values = nocolon, .n_values = 1};
    expect_init_fails(o, 2, "http: option headers: element 1");
    o[1] = (struct hq_handler_opt){.key = "headers", .values = crlf, .n_values = 1};
    expect_init_fails(o, 2, "http: option headers: element 1");
    o[1] = (struct hq_handler_opt){.key = "headers", .values = badname, .n_values = 1};
    expect_init_fails(o, 2, "http: option headers: element 1");
    o[1] = (struct hq_handler_opt){.key = "headers", .value = "X-A: b"};
    expect_init_fails(o, 2, "http: option headers: expected an array");
    o[1] = (struct hq_handler_opt){.key = "forward_headers", .value = "yes"};
    expect_init_fails(o, 2, "http: option forward_headers");
    o[1] = (struct hq_handler_opt){.key = "verify", .value = "false"};
    expect_init_fails(o, 2, "http: unknown option verify");
    o[1] = (struct hq_handler_opt){.key = "retry_statuses", .value = "404"};
    expect_init_fails(o, 2, "http: option retry_statuses: expected an array");
    o[1] = (struct hq_handler_opt){.key = "retry_statuses", .values = bad200, .n_values = 1};
    expect_init_fails(o, 2, "http: option retry_statuses: 200 is not an HTTP status 300..499");
    o[1] = (struct hq_handler_opt){.key = "retry_statuses", .values = bad503, .n_values = 1};
    expect_init_fails(o, 2, "http: option retry_statuses: 503 is not");
    o[1] = (struct hq_handler_opt){.key = "retry_statuses", .values = badtext, .n_values = 1};
    expect_init_fails(o, 2, "http: option retry_statuses: 40x is not");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_retry_statuses),
        cmocka_unit_test(test_body_and_headers),
        cmocka_unit_test(test_large_body),
        cmocka_unit_test(test_empty_body_and_no_content_type),
        cmocka_unit_test(test_static_headers_and_no_forwarding),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_keepalive_reuse),
        cmocka_unit_test(test_option_errors),
    };
    return cmocka_run_group_tests(tests, setup_server, teardown_server);
}
