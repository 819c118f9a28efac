/* http: hookmq-console's CivetWeb server: routing, log-in and log-out, sessions, the CSRF and
 * role checks every request goes through, the pages and the security headers (console.h).
 *
 * Order of the checks for /api/ and the pages: session (API: 401; pages: 303 to /login), then
 * for a POST the X-CSRF-Token of the session (403), then for an action the role (viewer: 403)
 * and read_only (403). Everything that changes state is a POST. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "hq_civetweb.h"
#include "hq_json.h"
#include "hq_log.h"
#include "hq_passwd.h"
#include "hq_time.h"

#define COOKIE "hq_session"
#define LOGIN_BODY_MAX 4096
#define MAX_SESSIONS 1024

static struct mg_context *ctx;
static const struct hq_config *cfg;

/* Content-Security-Policy: nothing inline, nothing from elsewhere, never framed. */
#define SECURITY_HEADERS                                                                           \
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "          \
    "img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "                   \
    "form-action 'self'; frame-ancestors 'none'\r\n"                                              \
    "X-Frame-Options: DENY\r\n"                                                                    \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "Referrer-Policy: no-referrer\r\n"                                                             \
    "Cross-Origin-Opener-Policy: same-origin\r\n"                                                  \
    "Cache-Control: no-store\r\n"

void cs_send(struct mg_connection *conn, int status, const char *ctype, const void *body,
             size_t n, const char *extra)
{
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\n"
              "Content-Type: %s\r\n"
              "Content-Length: %zu\r\n" SECURITY_HEADERS "%s"
              "\r\n",
              status, mg_get_response_code_text(conn, status), ctype, n, extra ? extra : "");
    if (n)
        mg_write(conn, body, n);
}

void cs_send_error(struct mg_connection *conn, int status, const char *msg)
{
    struct hq_buf b = HQ_BUF_INIT(4096);

    if (hq_buf_append(&b, "{\"error\":\"", 10) != HQ_OK ||
        hq_buf_append_json_str(&b, msg, strlen(msg)) != HQ_OK || hq_buf_append(&b, "\"}\n", 3) != HQ_OK)
        cs_send(conn, status, "application/json", "{\"error\":\"?\"}\n", 14, NULL);
    else
        cs_send(conn, status, "application/json", b.data, b.len, NULL);
    hq_buf_free(&b);
}

void cs_send_json(struct mg_connection *conn, const struct hq_buf *b)
{
    cs_send(conn, 200, "application/json", b->data, b->len, NULL);
}

static void send_asset(struct mg_connection *conn, int status, const char *name)
{
    const struct cs_asset *a = cs_asset(name);

    if (!a) {
        cs_send_error(conn, 404, "not found");
        return;
    }
    cs_send(conn, status, a->ctype, a->data, a->len, NULL);
}

static void redirect(struct mg_connection *conn, const char *to, const char *cookie)
{
    char extra[512];

    snprintf(extra, sizeof(extra), "Location: %s\r\n%s", to, cookie ? cookie : "");
    cs_send(conn, 303, "text/plain", "", 0, extra);
}

/* The log-in page; for a failed attempt with the message shown in it (status 401 or 429). */
static void send_login_extra(struct mg_connection *conn, int status, const char *msg,
                             const char *extra)
{
    const struct cs_asset *a = cs_asset("login.html");
    static const char mark[] = "<!--ERROR-->";
    struct hq_buf b = HQ_BUF_INIT(64 * 1024);
    const char *at;

    if (!a || !msg) {
        send_asset(conn, status, "login.html");
        return;
    }
    at = strstr((const char *)a->data, mark);
    if (!at || hq_buf_append(&b, a->data, (size_t)(at - (const char *)a->data)) != HQ_OK ||
        hq_buf_appendf(&b, "<p class=\"error\" role=\"alert\">%s</p>", msg) != HQ_OK ||
        hq_buf_append(&b, at + strlen(mark), strlen(at + strlen(mark))) != HQ_OK)
        cs_send_error(conn, 500, "out of memory");
    else
        cs_send(conn, status, "text/html; charset=utf-8", b.data, b.len, extra);
    hq_buf_free(&b);
}

static void send_login(struct mg_connection *conn, int status, const char *msg)
{
    send_login_extra(conn, status, msg, NULL);
}

/* ------------------------------------------------------------------ sessions */

static bool get_session(struct mg_connection *conn, struct cs_session *s)
{
    const char *cookies = mg_get_header(conn, "Cookie");
    char tok[CS_TOKEN_HEX + 8];

    if (!cookies || mg_get_cookie(cookies, COOKIE, tok, sizeof(tok)) != CS_TOKEN_HEX)
        return false;
    return cs_session_get(tok, s);
}

static bool csrf_ok(struct mg_connection *conn, const struct cs_session *s)
{
    const char *h = mg_get_header(conn, "X-CSRF-Token");

    return h && strlen(h) == CS_TOKEN_HEX && hq_ct_equal(h, s->csrf, CS_TOKEN_HEX);
}

static const char *role_name(enum hq_console_role r)
{
    return r == HQ_ROLE_OPERATOR ? "operator" : "viewer";
}

/* Read a request body of at most max bytes into b. HQ_ETOOBIG, HQ_EIO. */
int cs_read_body(struct mg_connection *conn, size_t max, struct hq_buf *b)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    char chunk[4096];

    if (ri->content_length > (long long)max)
        return HQ_ETOOBIG;
    for (;;) {
        int n = mg_read(conn, chunk, sizeof(chunk));

        if (n < 0)
            return HQ_EIO;
        if (n == 0)
            return HQ_OK;
        if (b->len + (size_t)n > max)
            return HQ_ETOOBIG;
        if (hq_buf_append(b, chunk, (size_t)n) != HQ_OK)
            return HQ_ETOOBIG;
    }
}

/* A fixed, valid hash: unknown users cost one KDF run too, so timing does not tell names. */
static const char dummy_hash[] = "$pbkdf2-sha256$i=600000$AAECAwQFBgcICQoLDA0ODw$"
                                 "V/LC8HOXSNUWQZsGKohGZjI8WD6krhZVBKgfe1PGKgk";

static void do_login(struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct hq_buf body = HQ_BUF_INIT(LOGIN_BODY_MAX);
    char user[HQ_NAME_MAX + 2] = "", pw[HQ_PASSWD_MAX + 2] = "", cookie[256], ttl[24];
    const struct hq_console_user *u = NULL;
    struct cs_session s;
    int retry = 0, ulen, plen;
    size_t i;

    if (cs_read_body(conn, LOGIN_BODY_MAX, &body) != HQ_OK) {
        cs_send_error(conn, 413, "log-in form larger than 4 KiB");
        goto out;
    }
    ulen = mg_get_var((const char *)body.data, body.len, "user", user, sizeof(user));
    plen = mg_get_var((const char *)body.data, body.len, "password", pw, sizeof(pw));
    if (ulen < 0 || plen < 0) {
        send_login(conn, 400, ulen == -2 || plen == -2 ? "User name or password too long."
                                                       : "Enter a user name and a password.");
        goto out;
    }
    if (!cs_login_allowed(ri->remote_addr, user, &retry)) {
        char extra[64];

        hq_warn("log-in refused: too many failed attempts", "user=%s client=%s retry_after_s=%d",
                user, ri->remote_addr, retry);
        snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", retry);
        send_login_extra(conn, 429, "Too many failed log-in attempts: try again in a minute.",
                         extra);
        goto out;
    }
    for (i = 0; i < cfg->console.n_users; i++)
        if (strcmp(cfg->console.users[i].name, user) == 0)
            u = &cfg->console.users[i];
    if (hq_passwd_verify(pw, (size_t)plen, u ? u->password_hash : dummy_hash) != HQ_OK || !u) {
        cs_login_failed(ri->remote_addr, user);
        hq_warn("log-in failed", "user=%s client=%s", user, ri->remote_addr);
        send_login(conn, 401, "Wrong user name or password.");
        goto out;
    }
    cs_login_succeeded(ri->remote_addr, user);
    if (cs_session_new(u->name, u->role, cfg->console.session_ttl_ms, &s) != HQ_OK) {
        cs_send_error(conn, 500, "cannot create a session");
        goto out;
    }
    hq_duration_format(cfg->console.session_ttl_ms, ttl, sizeof(ttl));
    snprintf(cookie, sizeof(cookie),
             "Set-Cookie: " COOKIE "=%s; Path=/; Max-Age=%llu; HttpOnly; SameSite=Strict%s\r\n",
             s.token, (unsigned long long)(cfg->console.session_ttl_ms / 1000),
             cfg->console.secure_cookie ? "; Secure" : "");
    hq_info("log-in", "user=%s role=%s client=%s session_ttl=%s", u->name, role_name(u->role),
            ri->remote_addr, ttl);
    redirect(conn, "/", cookie);
out:
    memset(pw, 0, sizeof(pw));
    if (body.data)
        memset(body.data, 0, body.len);
    hq_buf_free(&body);
}

/* ------------------------------------------------------------------ routes */

static void api_session(struct mg_connection *conn, const struct cs_session *s)
{
    struct hq_buf b = HQ_BUF_INIT(4096);
    char exp[40];

    hq_time_format(s->expires_ms, exp, sizeof(exp));
    if (hq_buf_appendf(&b,
                       "{\"user\":\"%s\",\"role\":\"%s\",\"csrf\":\"%s\",\"read_only\":%s,"
                       "\"expires_at\":\"%s\"}\n",
                       s->user, role_name(s->role), s->csrf,
                       cfg->console.read_only ? "true" : "false", exp) != HQ_OK)
        cs_send_error(conn, 500, "out of memory");
    else
        cs_send_json(conn, &b);
    hq_buf_free(&b);
}

/* Is path an action (a POST that moves events)? */
static bool is_action(const char *path)
{
    size_t n = strlen(path);

    if (strncmp(path, "/api/dlq/", 9) == 0)
        return (n > 17 && strcmp(path + n - 8, "/redrive") == 0) ||
               (n > 14 && strcmp(path + n - 5, "/edit") == 0);
    if (strcmp(path, "/api/replays") == 0)
        return true;
    return strncmp(path, "/api/replays/", 13) == 0 && n > 18 && strcmp(path + n - 5, "/stop") == 0;
}

/* The actions' permission checks: HQ_OK, or an answer was sent. */
static int check_action(struct mg_connection *conn, const struct cs_session *s, const char *path)
{
    if (s->role != HQ_ROLE_OPERATOR) {
        hq_warn("action refused: role viewer", "user=%s path=%s", s->user, path);
        cs_send_error(conn, 403, "your role (viewer) may not do this: operators only");
        return HQ_EAUTH;
    }
    if (cfg->console.read_only) {
        hq_warn("action refused: read_only", "user=%s path=%s", s->user, path);
        cs_send_error(conn, 403, "the console is read-only (console.read_only = true)");
        return HQ_EAUTH;
    }
    return HQ_OK;
}

static void api(struct mg_connection *conn, const struct mg_request_info *ri, const char *path,
                bool post, const struct cs_session *s)
{
    if (post) {
        if (!is_action(path)) {
            cs_send_error(conn, strcmp(path, "/api/session") == 0 ||
                                        strncmp(path, "/api/events", 11) == 0 ||
                                        strcmp(path, "/api/sources") == 0
                                    ? 405
                                    : 404,
                          "no such action");
            return;
        }
        if (check_action(conn, s, path) != HQ_OK)
            return;
        if (strncmp(path, "/api/dlq/", 9) == 0 && strlen(path) > 17 &&
            strcmp(path + strlen(path) - 8, "/redrive") == 0) {
            char consumer[HQ_NAME_MAX + 1];
            size_t n = strlen(path) - 8 - 9;

            if (n == 0 || n > HQ_NAME_MAX || memchr(path + 9, '/', n)) {
                cs_send_error(conn, 404, "no such consumer in the config");
                return;
            }
            memcpy(consumer, path + 9, n);
            consumer[n] = '\0';
            cs_api_redrive(conn, cfg, consumer, s->user);
            return;
        }
        if (strncmp(path, "/api/dlq/", 9) == 0 && strlen(path) > 14 &&
            strcmp(path + strlen(path) - 5, "/edit") == 0) {
            char consumer[HQ_NAME_MAX + 1], id[512];
            const char *slash = strchr(path + 9, '/');
            size_t cn = slash ? (size_t)(slash - (path + 9)) : 0;
            size_t in = slash ? strlen(slash + 1) - 5 : 0;

            if (cn == 0 || cn > HQ_NAME_MAX || in == 0 || in >= sizeof(id)) {
                cs_send_error(conn, 404, "expected /api/dlq/<consumer>/<id>/edit");
                return;
            }
            memcpy(consumer, path + 9, cn);
            consumer[cn] = '\0';
            memcpy(id, slash + 1, in);
            id[in] = '\0';
            cs_api_edit(conn, cfg, consumer, id, s->user);
            return;
        }
        if (strcmp(path, "/api/replays") == 0)
            cs_api_replay_start(conn, cfg, s->user);
        else
            cs_api_replay_stop(conn, path + 13, s->user); /* "/api/replays/<n>/stop" */
        return;
    }
    if (is_action(path) && strcmp(path, "/api/replays") != 0) { /* GET lists the replays */
        cs_send_error(conn, 405, "actions take POST");
        return;
    }
    if (strcmp(path, "/api/session") == 0)
        api_session(conn, s);
    else if (strcmp(path, "/api/events") == 0)
        cs_api_events(conn, cfg, ri->query_string);
    else if (strncmp(path, "/api/events/", 12) == 0 && path[12])
        cs_api_event(conn, cfg, path + 12, ri->query_string);
    else if (strcmp(path, "/api/sources") == 0)
        cs_api_sources(conn, cfg, ri->query_string);
    else if (strcmp(path, "/api/consumers") == 0)
        cs_api_consumers(conn, cfg);
    else if (strcmp(path, "/api/replays") == 0 || strncmp(path, "/api/replays/", 13) == 0)
        cs_api_replays_get(conn, path + 12);
    else if (strncmp(path, "/api/dlq/", 9) == 0 && path[9] && !strchr(path + 9, '/'))
        cs_api_dlq(conn, cfg, path + 9, ri->query_string);
    else
        cs_send_error(conn, 404, "not found");
}

static int on_request(struct mg_connection *conn, void *cbdata)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *path = ri->local_uri ? ri->local_uri : "/";
    bool get = strcmp(ri->request_method, "GET") == 0, post = strcmp(ri->request_method, "POST") == 0;
    struct cs_session s;

    (void)cbdata;
    if (!get && !post) {
        cs_send(conn, 405, "text/plain", "method not allowed\n", 19, "Allow: GET, POST\r\n");
        return 1;
    }
    if (strcmp(path, "/healthz") == 0 && get) {
        cs_send(conn, 200, "text/plain", "ok\n", 3, NULL);
        return 1;
    }
    if (strncmp(path, "/static/", 8) == 0 && get) {
        send_asset(conn, 200, path);
        return 1;
    }
    if (strcmp(path, "/login") == 0) {
        if (post)
            do_login(conn);
        else
            send_login(conn, 200, NULL);
        return 1;
    }
    if (!get_session(conn, &s)) {
        if (strncmp(path, "/api/", 5) == 0 || post)
            cs_send_error(conn, 401, "log in first (POST /login)");
        else
            redirect(conn, "/login", NULL);
        return 1;
    }
    if (post && !csrf_ok(conn, &s)) {
        hq_warn("request refused: missing or wrong X-CSRF-Token", "user=%s path=%s", s.user,
                path);
        cs_send_error(conn, 403, "missing or wrong X-CSRF-Token (GET /api/session gives it)");
        return 1;
    }
    if (strcmp(path, "/logout") == 0 && post) {
        cs_session_end(s.token);
        hq_info("log-out", "user=%s", s.user);
        cs_send(conn, 204, "text/plain", "", 0,
                "Set-Cookie: " COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict\r\n");
        return 1;
    }
    if (strncmp(path, "/api/", 5) == 0) {
        api(conn, ri, path, post, &s);
        return 1;
    }
    if (get && strcmp(path, "/") == 0) {
        send_asset(conn, 200, "index.html");
        return 1;
    }
    if (get && strncmp(path, "/events/", 8) == 0 && path[8]) {
        send_asset(conn, 200, "event.html");
        return 1;
    }
    if (get && strcmp(path, "/sources") == 0) {
        send_asset(conn, 200, "sources.html");
        return 1;
    }
    if (get && strcmp(path, "/consumers") == 0) {
        send_asset(conn, 200, "consumers.html");
        return 1;
    }
    if (get && strcmp(path, "/replay") == 0) {
        send_asset(conn, 200, "replay.html");
        return 1;
    }
    if (get && strncmp(path, "/dlq/", 5) == 0 && path[5] && !strchr(path + 5, '/')) {
        send_asset(conn, 200, "dlq.html");
        return 1;
    }
    cs_send_error(conn, 404, "not found");
    return 1;
}

int cs_http_start(const struct hq_config *c, char *err, size_t errsz)
{
    char nthreads[16];
    const char *opts[] = {"listening_ports", c->console.listen, "num_threads", nthreads,
                          "request_timeout_ms", "30000", "enable_keep_alive", "yes",
                          "keep_alive_timeout_ms", "5000", "max_request_size", "32768", NULL};
    struct mg_callbacks cb;
    int rc;

    cfg = c;
    if ((rc = cs_sessions_init(MAX_SESSIONS)) != HQ_OK) {
        snprintf(err, errsz, "out of memory");
        return rc;
    }
    snprintf(nthreads, sizeof(nthreads), "%d", c->console.threads);
    memset(&cb, 0, sizeof(cb));
    mg_init_library(0);
    ctx = hq_mg_start(&cb, NULL, opts, err, errsz);
    if (!ctx) {
        mg_exit_library();
        cs_sessions_free();
        return HQ_EIO;
    }
    mg_set_request_handler(ctx, "/", on_request, NULL);
    return HQ_OK;
}

void cs_http_stop(void)
{
    if (!ctx)
        return;
    mg_stop(ctx);
    ctx = NULL;
    mg_exit_library();
    cs_sessions_free();
}
