/* console.h: internals of hookmq-console (docs/console.md), shared by main.c (command line),
 * http.c (server, routing, log-in and the permission checks), session.c (sessions and the
 * log-in rate limit), events.c (the events API), assets (the embedded pages). Not an installed
 * interface. */
#ifndef HQ_CONSOLE_H
#define HQ_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hq_buf.h"
#include "hq_config.h"

#define CS_PROG "hookmq-console"

struct mg_connection;

/* ---- http.c */

/* Start serving cfg->console.listen (cfg borrowed until cs_http_stop). HQ_OK, or HQ_EIO with
 * err filled. */
int cs_http_start(const struct hq_config *cfg, char *err, size_t errsz);
void cs_http_stop(void);

/* Send a complete answer with the console's security headers (CSP, X-Frame-Options, nosniff,
 * no-store). extra: more header lines, each ending in "\r\n", or NULL. */
void cs_send(struct mg_connection *conn, int status, const char *ctype, const void *body,
             size_t n, const char *extra);
/* Read a request body of at most max bytes into b: HQ_OK, HQ_ETOOBIG, HQ_EIO. */
int cs_read_body(struct mg_connection *conn, size_t max, struct hq_buf *b);
/* {"error": msg} with status. */
void cs_send_error(struct mg_connection *conn, int status, const char *msg);
/* b as application/json with status 200. */
void cs_send_json(struct mg_connection *conn, const struct hq_buf *b);

/* ---- session.c: sessions (in memory; a restart logs everyone out) */

#define CS_TOKEN_HEX 64 /* tokens: 32 random bytes as hex */

struct cs_session {
    char token[CS_TOKEN_HEX + 1];
    char csrf[CS_TOKEN_HEX + 1];
    char user[HQ_NAME_MAX + 1];
    enum hq_console_role role;
    int64_t expires_ms; /* wall clock */
};

/* HQ_OK or HQ_ENOMEM. Call once before the server starts. */
int cs_sessions_init(size_t max);
void cs_sessions_free(void);
/* A new session for user, valid ttl_ms; *out gets a copy. When the table is full the oldest
 * session ends. HQ_OK, HQ_EIO (no randomness). */
int cs_session_new(const char *user, enum hq_console_role role, uint64_t ttl_ms,
                   struct cs_session *out);
/* Copy the live session whose token is token (constant-time compare) into *out: true, or
 * false when there is none (expired ones are removed). */
bool cs_session_get(const char *token, struct cs_session *out);
void cs_session_end(const char *token);

/* Log-in rate limit: at most CS_LOGIN_FAILURES_USER failed attempts for one user name and
 * CS_LOGIN_FAILURES_ADDR from one client address in CS_LOGIN_WINDOW_MS; then every attempt
 * of that name or from that address is refused (429, the password is not checked) until the
 * oldest of those failures is CS_LOGIN_WINDOW_MS old. A successful log-in clears its name's
 * failures (not its address's). */
#define CS_LOGIN_FAILURES_USER 5
#define CS_LOGIN_FAILURES_ADDR 20
#define CS_LOGIN_WINDOW_MS 60000
/* true when an attempt is allowed; else *retry_s gets the seconds to wait. */
bool cs_login_allowed(const char *client, const char *user, int *retry_s);
void cs_login_failed(const char *client, const char *user);
void cs_login_succeeded(const char *client, const char *user);

/* ---- events.c: the events API (GET /api/events, GET /api/events/<id>) */

void cs_api_events(struct mg_connection *conn, const struct hq_config *cfg, const char *query);
void cs_api_event(struct mg_connection *conn, const struct hq_config *cfg, const char *id,
                  const char *query);

/* ---- sources.c: GET /api/sources[?from=&to=] (the gateway's metrics, else the archive) */

void cs_api_sources(struct mg_connection *conn, const struct hq_config *cfg, const char *query);

/* ---- consumers.c: GET /api/consumers */

void cs_api_consumers(struct mg_connection *conn, const struct hq_config *cfg);
/* POST /api/dlq/<consumer>/redrive ({"ids": [...]} or {"filter": {...}}) for user (the
 * permission checks are done): each match goes back to the work queue, logged and recorded
 * (lifecycle "redriven" with "by" = user). */
void cs_api_redrive(struct mg_connection *conn, const struct hq_config *cfg, const char *consumer,
                    const char *user);
/* POST /api/dlq/<consumer>/<id>/edit ({"body" | "body_b64", "headers"}) for user: the parked
 * event goes back to the work queue edited (hq_dlq_edit_copy), logged and recorded
 * (lifecycle "edit" with "by" = user and the diff summary). */
void cs_api_edit(struct mg_connection *conn, const struct hq_config *cfg, const char *consumer,
                 const char *id, const char *user);
/* GET /api/dlq/<consumer>[?limit=N]: the parked events, read and put back in order. */
void cs_api_dlq(struct mg_connection *conn, const struct hq_config *cfg, const char *consumer,
                const char *query);

/* ---- replays.c: the replays (docs/console.md, "Replay"); the permission checks are done */

/* POST /api/replays for user: a dry run answers the count and a sample; a real run starts in
 * a thread of its own (202; 409 when one runs for that consumer, 429 past the cap). */
void cs_api_replay_start(struct mg_connection *conn, const struct hq_config *cfg,
                         const char *user);
/* GET /api/replays (rest "") or /api/replays/<n> (rest "/<n>"). */
void cs_api_replays_get(struct mg_connection *conn, const char *rest);
/* POST /api/replays/<n>/stop (n_stop "<n>/stop") for user. */
void cs_api_replay_stop(struct mg_connection *conn, const char *n_stop, const char *user);
/* At exit: ask every replay to stop and wait (bounded) for them to settle. */
void cs_replays_shutdown(void);

/* ---- assets.c (generated from console/www/ at build time) */

struct cs_asset {
    const char *path;  /* "/static/app.js", or a page name "index.html" */
    const char *ctype;
    const unsigned char *data;
    size_t len;
};
/* The asset named name, or NULL. */
const struct cs_asset *cs_asset(const char *name);

#endif
