/* amqp: one RabbitMQ connection over rabbitmq-c 0.11 (see hq_amqp.h, hq__amqp.h, and
 * hq__amqp_private.h for the connection object itself).
 *
 * Facts this file relies on (docs/broker-notes.md): rabbitmq-c is not thread-safe, has no
 * reconnect and no confirm helper, services heartbeats only inside library calls, waits
 * forever in RPCs unless amqp_set_rpc_timeout is set, and loads no CA store for TLS. We log in
 * with amqp_login_with_properties advertising consumer_cancel_notify, connection.blocked and
 * authentication_failure_close, bound connect/login/RPCs with timeouts, and translate every
 * amqp_rpc_reply_t in exactly one function, hq__amqp_reply() (core/consume.c and
 * core/archive_amqp.c use it too). The frames that are not replies to our methods are read
 * here, by hq__amqp_wait() (publishers) or hq__amqp_consume_frame() (consumers), and handled
 * by one dispatcher, hq__amqp_dispatch(). */
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <openssl/ssl.h>

#include "hq__amqp_private.h"
#include "hq_amqp.h"
#include "hq_log.h"
#include "hq_steps.h"
#include "hq_time.h"
#include "hq_topology.h"

#ifndef HQ_VERSION
#define HQ_VERSION "0"
#endif

#define FRAME_MAX 131072
#define HQ_MAX_TABLE_HEADERS 4 /* HQ_HDR_TABLE headers in one message (hookmq-steps) */
#define CLOSE_TIMEOUT_MS 1000
#define SEND_TIMEOUT_MS 5000 /* SO_SNDTIMEO: bounds a blocking send(2) if ever used */

/* ---------------------------------------------------------------- errors */

#define set_err hq__amqp_set_err

void hq__amqp_set_err(struct hq_amqp *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

static int bytes_len(amqp_bytes_t b, size_t cap)
{
    return (int)(b.len < cap ? b.len : cap);
}

/* A library status (AMQP_STATUS_*, negative) as an hq status. Any library failure leaves the
 * connection in an unknown state, so it is marked dead. */
int hq__amqp_lib(struct hq_amqp *c, int status, const char *what)
{
    if (status == AMQP_STATUS_OK)
        return HQ_OK;
    set_err(c, "%s: %s", what, amqp_error_string2(status));
    c->dead = true;
    switch (status) {
    case AMQP_STATUS_NO_MEMORY: return HQ_ENOMEM;
    case AMQP_STATUS_TIMEOUT: return HQ_ETIMEDOUT;
    case AMQP_STATUS_INVALID_PARAMETER: return HQ_EINVAL;
    default: return HQ_EDOWN;
    }
}

/* A broker reply code (channel.close / connection.close) as an hq status. */
static int code_status(int code, bool connection_level)
{
    switch (code) {
    case AMQP_ACCESS_REFUSED:
    case AMQP_NOT_ALLOWED: return HQ_EAUTH;
    case AMQP_NOT_FOUND: return connection_level ? HQ_EDOWN : HQ_ENOTFOUND;
    case AMQP_PRECONDITION_FAILED: return connection_level ? HQ_EDOWN : HQ_ECONFLICT;
    default: return connection_level ? HQ_EDOWN : HQ_EBROKER;
    }
}

static int ensure_channel(struct hq_amqp *c);

/* The one translation of amqp_rpc_reply_t (hq__amqp_private.h). */
int hq__amqp_reply(struct hq_amqp *c, amqp_rpc_reply_t r, const char *what, bool reopen)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return HQ_OK;
    case AMQP_RESPONSE_NONE:
        set_err(c, "%s: no reply from the broker", what);
        c->dead = true;
        return HQ_EDOWN;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return hq__amqp_lib(c, r.library_error ? r.library_error : AMQP_STATUS_UNEXPECTED_STATE,
                            what);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            amqp_channel_close_ok_t ok = {0};

            if (!reopen)
                c->reply_code = m->reply_code;
            set_err(c, "%s: %d %.*s", what, m->reply_code, bytes_len(m->reply_text, 400),
                    (const char *)m->reply_text.bytes);
            if (amqp_send_method(c->st, c->ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) != AMQP_STATUS_OK)
                c->dead = true;
            c->ch_open = false;
            c->confirm = false;
            if (reopen) {
                /* a new channel 1 at once: no consumer, no confirm mode */
                char saved[sizeof(c->err)];
                int r2 = HQ_EDOWN;

                c->cs.ctag[0] = '\0';
                memcpy(saved, c->err, sizeof(saved));
                if (!c->dead)
                    r2 = ensure_channel(c);
                memcpy(c->err, saved, sizeof(saved));
                if (r2 != HQ_OK) {
                    c->cs.down = true;
                    return HQ_EDOWN;
                }
            }
            return code_status(m->reply_code, false);
        }
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            amqp_connection_close_ok_t ok = {0};

            c->reply_code = m->reply_code;
            set_err(c, "%s: connection closed by the broker: %d %.*s", what, m->reply_code,
                    bytes_len(m->reply_text, 400), (const char *)m->reply_text.bytes);
            (void)amqp_send_method(c->st, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
            c->dead = true;
            c->ch_open = false;
            return code_status(m->reply_code, true);
        }
        set_err(c, "%s: unexpected method 0x%08x from the broker", what, (unsigned)r.reply.id);
        c->dead = true;
        return HQ_EDOWN;
    }
    set_err(c, "%s: unknown reply type", what);
    c->dead = true;
    return HQ_EDOWN;
}

const char *hq_amqp_error(const struct hq_amqp *c)
{
    return c ? c->err : "";
}

int hq__amqp_fd(const struct hq_amqp *c)
{
    if (!c || c->dead)
        return -1;
    return amqp_get_sockfd(c->st);
}

bool hq__amqp_dead(const struct hq_amqp *c)
{
    return !c || c->dead;
}

const char *hq_amqp_peer(const struct hq_amqp *c)
{
    return c ? c->peer : "";
}

int hq_broker_version_parse(const char *s, int *major, int *minor)
{
    long v[2] = {0, 0};
    int k;

    if (!s || !major || !minor)
        return HQ_EINVAL;
    for (k = 0; k < 2; k++) {
        char *end;

        if (*s < '0' || *s > '9')
            return HQ_EINVAL;
        errno = 0;
        v[k] = strtol(s, &end, 10);
        if (errno || v[k] > 999)
            return HQ_EINVAL;
        s = end;
        if (*s != '.')
            break;
        s++;
    }
    /* "4", "4.0", "4.0.5", "3.13.7", "4.1.0-rc.1": what follows major.minor is not ours */
    if (k == 2 && *s && !(*s >= '0' && *s <= '9') && *s != '-' && *s != '+')
        return HQ_EINVAL;
    if (k < 2 && *s && *s != '-' && *s != '+')
        return HQ_EINVAL;
    *major = (int)v[0];
    *minor = (int)v[1];
    return HQ_OK;
}

int hq_amqp_server_version(const struct hq_amqp *c, int *major, int *minor)
{
    const amqp_table_t *props;
    int i;

    if (!c || !c->st || !major || !minor)
        return HQ_EINVAL;
    props = amqp_get_server_properties(c->st);
    for (i = 0; props && i < props->num_entries; i++) {
        const amqp_table_entry_t *e = &props->entries[i];
        char v[32];
        size_t n;

        if (e->key.len != 7 || memcmp(e->key.bytes, "version", 7) != 0 ||
            (e->value.kind != AMQP_FIELD_KIND_UTF8 && e->value.kind != AMQP_FIELD_KIND_BYTES))
            continue;
        n = e->value.value.bytes.len < sizeof(v) - 1 ? e->value.value.bytes.len : sizeof(v) - 1;
        memcpy(v, e->value.value.bytes.bytes, n);
        v[n] = '\0';
        return hq_broker_version_parse(v, major, minor);
    }
    return HQ_ENOTFOUND;
}

/* ---------------------------------------------------------------- connect */

static struct timeval ms_tv(int64_t ms)
{
    struct timeval tv;

    if (ms < 0)
        ms = 0;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
    return tv;
}

static void set_rpc_timeout(struct hq_amqp *c, int ms)
{
    struct timeval tv = ms_tv(ms);

    (void)amqp_set_rpc_timeout(c->st, &tv);
}

/* Percent-encode the characters of a vhost that cannot appear raw in a URI path. */
static void encode_vhost(const char *v, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *v && o + 4 < outsz; v++) {
        unsigned char ch = (unsigned char)*v;
        if (ch == '/' || ch == '%' || ch == '?' || ch == '#' || ch <= 0x20 || ch >= 0x7f) {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
}

static void tune_socket(int fd, int heartbeat_s)
{
    struct timeval snd = ms_tv(SEND_TIMEOUT_MS);
    int one = 1;
    unsigned user_timeout;

    if (fd < 0)
        return;
    /* rabbitmq-c drives the socket non-blocking with poll(2) and its own deadlines, which is
     * exactly where bug #780 waits forever; these options let the kernel give up instead:
     * TCP_USER_TIMEOUT fails the socket when sent data stays unacknowledged (half-open peer),
     * keepalive probes an idle peer, SO_SNDTIMEO bounds any blocking send. */
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
#ifdef TCP_KEEPIDLE
    {
        int idle = 30, intvl = 10, cnt = 3;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    }
#endif
#ifdef TCP_USER_TIMEOUT
    user_timeout = heartbeat_s > 0 ? (unsigned)heartbeat_s * 2000u + 5000u : 30000u;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
#else
    (void)user_timeout;
#endif
}

static amqp_table_entry_t str_entry(const char *k, const char *v)
{
    amqp_table_entry_t e;

    e.key = amqp_cstring_bytes(k);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(v);
    return e;
}

static amqp_table_entry_t bool_entry(const char *k, bool v)
{
    amqp_table_entry_t e;

    e.key = amqp_cstring_bytes(k);
    e.value.kind = AMQP_FIELD_KIND_BOOLEAN;
    e.value.value.boolean = v;
    return e;
}

static int tls_setup(struct hq_amqp *c, amqp_socket_t *sock, const struct hq_tls_cfg *tls)
{
    int s;

    if (tls->ca_file && tls->ca_file[0]) {
        s = amqp_ssl_socket_set_cacert(sock, tls->ca_file);
        if (s != AMQP_STATUS_OK) {
            set_err(c, "tls: cannot load ca_file %s: %s", tls->ca_file, amqp_error_string2(s));
            return HQ_ECONFIG;
        }
    } else if (tls->verify_peer) {
        /* rabbitmq-c loads no CA store by itself: use the system's. */
        SSL_CTX *ctx = amqp_ssl_socket_get_context(sock);
        if (ctx)
            (void)SSL_CTX_set_default_verify_paths(ctx);
    }
    if ((tls->cert_file && tls->cert_file[0]) || (tls->key_file && tls->key_file[0])) {
        if (!tls->cert_file || !tls->key_file) {
            set_err(c, "tls: cert_file and key_file go together");
            return HQ_ECONFIG;
        }
        s = amqp_ssl_socket_set_key(sock, tls->cert_file, tls->key_file);
        if (s != AMQP_STATUS_OK) {
            set_err(c, "tls: cannot load cert_file/key_file: %s", amqp_error_string2(s));
            return HQ_ECONFIG;
        }
    }
    amqp_ssl_socket_set_verify_peer(sock, tls->verify_peer ? 1 : 0);
    amqp_ssl_socket_set_verify_hostname(sock, tls->verify_peer ? 1 : 0);
    return HQ_OK;
}

/* Connect to one node. On failure returns a status with the reason in c->err; c->st is
 * destroyed by the caller (hq_amqp_close). */
static int connect_one(struct hq_amqp *c, const struct hq_broker_cfg *b, const char *uri,
                       const char *conn_name, int timeout_ms)
{
    struct amqp_connection_info ci;
    amqp_socket_t *sock;
    amqp_rpc_reply_t r;
    struct timeval tv;
    char *copy = NULL, vhost_enc[128];
    int64_t deadline = hq_mono_ms() + timeout_ms;
    int rc, s;
    amqp_table_entry_t caps[5], props[5];
    amqp_table_t caps_t, props_t;

    copy = strdup(uri);
    if (!copy)
        return HQ_ENOMEM;
    /* amqp_parse_url writes into its argument: parse a copy. */
    amqp_default_connection_info(&ci);
    if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
        set_err(c, "cannot parse broker URI (expected amqp[s]://user:pass@host:port/vhost)");
        rc = HQ_EINVAL;
        goto out;
    }
    encode_vhost(ci.vhost, vhost_enc, sizeof(vhost_enc));
    snprintf(c->peer, sizeof(c->peer), "%s://%s@%s:%d/%s", ci.ssl ? "amqps" : "amqp", ci.user,
             ci.host, ci.port, vhost_enc);

    c->st = amqp_new_connection();
    if (!c->st) {
        rc = HQ_ENOMEM;
        goto out;
    }
    if (ci.ssl) {
        sock = amqp_ssl_socket_new(c->st);
        if (!sock) {
            set_err(c, "%s: cannot create a TLS socket", c->peer);
            rc = HQ_ENOMEM;
            goto out;
        }
        rc = tls_setup(c, sock, &b->tls);
        if (rc != HQ_OK)
            goto out;
    } else {
        sock = amqp_tcp_socket_new(c->st);
        if (!sock) {
            rc = HQ_ENOMEM;
            goto out;
        }
    }
    tv = ms_tv(deadline - hq_mono_ms());
    errno = 0;
    s = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
    if (s != AMQP_STATUS_OK) {
        int e = errno;
        c->dead = true;
        /* errno is often the stale EINPROGRESS of the non-blocking connect: not worth showing */
        if (s == AMQP_STATUS_SOCKET_ERROR && e && e != EINPROGRESS && e != EAGAIN)
            set_err(c, "%s: %s (%s)", c->peer, amqp_error_string2(s), strerror(e));
        else
            set_err(c, "%s: %s", c->peer, amqp_error_string2(s));
        rc = s == AMQP_STATUS_TIMEOUT ? HQ_ETIMEDOUT : HQ_EDOWN;
        goto out;
    }
    tune_socket(amqp_get_sockfd(c->st), b->heartbeat_s);

    caps[0] = bool_entry("consumer_cancel_notify", true);
    caps[1] = bool_entry("connection.blocked", true);
    caps[2] = bool_entry("publisher_confirms", true);
    caps[3] = bool_entry("basic.nack", true);
    caps[4] = bool_entry("authentication_failure_close", true);
    caps_t.num_entries = 5;
    caps_t.entries = caps;
    props[0] = str_entry("product", "hookmq");
    props[1] = str_entry("version", HQ_VERSION);
    props[2] = str_entry("platform", "C (rabbitmq-c)");
    props[3] = str_entry("connection_name", conn_name ? conn_name : "hookmq");
    props[4].key = amqp_cstring_bytes("capabilities");
    props[4].value.kind = AMQP_FIELD_KIND_TABLE;
    props[4].value.value.table = caps_t;
    props_t.num_entries = 5;
    props_t.entries = props;

    tv = ms_tv(deadline - hq_mono_ms());
    (void)amqp_set_handshake_timeout(c->st, &tv);
    set_rpc_timeout(c, timeout_ms);
    c->rpc_timeout_ms = timeout_ms;
    r = amqp_login_with_properties(c->st, ci.vhost, 0, FRAME_MAX,
                                   b->heartbeat_s > 0 ? b->heartbeat_s : 0, &props_t,
                                   AMQP_SASL_METHOD_PLAIN, ci.user, ci.password);
    rc = hq__amqp_reply(c, r, "login", false);
    if (rc != HQ_OK) {
        char tmp[sizeof(c->err)];
        /* Without authentication_failure_close older brokers just drop the socket. */
        snprintf(tmp, sizeof(tmp), "%.200s: %.300s", c->peer, c->err);
        memcpy(c->err, tmp, sizeof(c->err));
        goto out;
    }
    c->ch = 1;
    (void)amqp_channel_open(c->st, c->ch);
    rc = hq__amqp_reply(c, amqp_get_rpc_reply(c->st), "channel.open", false);
    if (rc != HQ_OK)
        goto out;
    c->ch_open = true;
out:
    free(copy);
    return rc;
}

static void amqp_free(struct hq_amqp *c)
{
    if (!c)
        return;
    hq__consume_clear(c);
    if (c->st)
        (void)amqp_destroy_connection(c->st);
    free(c->hdrs);
    free(c);
}

int hq_amqp_connect_quiet(const struct hq_broker_cfg *b, const char *conn_name, int timeout_ms,
                     size_t *start, struct hq_amqp **out, char *err, size_t errsz)
{
    size_t i, first = start ? *start : 0;
    int rc = HQ_EDOWN;

    if (err && errsz)
        err[0] = '\0';
    if (!b || !out || b->n_uris == 0 || timeout_ms <= 0)
        return HQ_EINVAL;
    *out = NULL;
    for (i = 0; i < b->n_uris; i++) {
        size_t idx = (first + i) % b->n_uris;
        struct hq_amqp *c = calloc(1, sizeof(*c));

        if (!c)
            return HQ_ENOMEM;
        rc = connect_one(c, b, b->uris[idx], conn_name, timeout_ms);
        if (rc == HQ_OK) {
            if (start)
                *start = idx;
            *out = c;
            return HQ_OK;
        }
        if (err && errsz)
            snprintf(err, errsz, "%s", c->err);
        amqp_free(c);
        if (rc == HQ_EINVAL || rc == HQ_ENOMEM || rc == HQ_ECONFIG)
            break; /* a configuration problem: the next node won't do better */
    }
    return rc;
}

int hq_amqp_connect(const struct hq_broker_cfg *b, const char *conn_name, int timeout_ms,
                    size_t *start, struct hq_amqp **out)
{
    char err[512];
    int rc = hq_amqp_connect_quiet(b, conn_name, timeout_ms, start, out, err, sizeof(err));

    if (rc != HQ_OK)
        hq_warn("broker connect failed", "status=%s error=\"%s\"", hq_strerror(rc), err);
    return rc;
}

void hq_amqp_close(struct hq_amqp *c)
{
    if (!c)
        return;
    if (c->st && !c->dead) {
        /* bounded: a blocked or half-dead broker must not hold us */
        set_rpc_timeout(c, CLOSE_TIMEOUT_MS);
        if (hq__amqp_reply(c, amqp_connection_close(c->st, AMQP_REPLY_SUCCESS), "connection.close",
                           false) != HQ_OK)
            hq_debug("broker close was not clean", "peer=%s error=\"%s\"", c->peer, c->err);
    }
    amqp_free(c);
}

/* ---------------------------------------------------------------- channel, declares */

static int ensure_channel(struct hq_amqp *c)
{
    int rc;

    if (c->dead)
        return HQ_EDOWN;
    if (c->ch_open)
        return HQ_OK;
    /* The broker closed the channel and we answered close-ok: the number is free again, so
     * reuse it; everything (consume.c too) keeps working on channel 1. What lived on the old
     * channel (confirm mode, consumers) is gone. */
    (void)amqp_channel_open(c->st, c->ch);
    rc = hq__amqp_reply(c, amqp_get_rpc_reply(c->st), "channel.open", false);
    if (rc != HQ_OK)
        return rc == HQ_EDOWN ? rc : HQ_EBROKER;
    c->ch_open = true;
    return HQ_OK;
}

/* Build an AMQP table of x-arguments in entries (n <= 8). Strings are borrowed. */
static void args_table(const struct hq_targ *args, size_t n, amqp_table_entry_t *entries,
                       amqp_table_t *t)
{
    size_t i;

    for (i = 0; i < n; i++) {
        entries[i].key = amqp_cstring_bytes(args[i].key);
        if (args[i].is_int) {
            entries[i].value.kind = AMQP_FIELD_KIND_I64;
            entries[i].value.value.i64 = args[i].num;
        } else {
            entries[i].value.kind = AMQP_FIELD_KIND_UTF8;
            entries[i].value.value.bytes = amqp_cstring_bytes(args[i].str ? args[i].str : "");
        }
    }
    t->num_entries = (int)n;
    t->entries = n ? entries : NULL;
}

/* After a failed declare: the channel was closed by the broker; reopen it so the caller can
 * go on. Keeps rc unless the reopen itself fails. */
static int after_declare(struct hq_amqp *c, int rc)
{
    if (rc == HQ_OK || c->dead)
        return rc;
    if (!c->ch_open) {
        char saved[sizeof(c->err)];
        int r2;

        memcpy(saved, c->err, sizeof(saved));
        r2 = ensure_channel(c);
        memcpy(c->err, saved, sizeof(saved));
        if (r2 != HQ_OK)
            return HQ_EDOWN;
    }
    return rc;
}

/* What a declare does first: check the arguments, open channel 1 if need be, and build the
 * table of args into entries and *t (an empty one when passive). */
static int declare_begin(struct hq_amqp *c, const char *name, bool passive,
                         const struct hq_targ *args, size_t n, amqp_table_entry_t entries[8],
                         amqp_table_t *t)
{
    int rc;

    if (!c || !name || n > 8)
        return HQ_EINVAL;
    rc = ensure_channel(c);
    if (rc != HQ_OK)
        return rc;
    args_table(args, passive ? 0 : n, entries, t);
    return HQ_OK;
}

int hq_amqp_exchange_declare(struct hq_amqp *c, const char *name, const char *type, bool passive,
                              const struct hq_targ *args, size_t n)
{
    amqp_table_entry_t entries[8];
    amqp_table_t t;
    int rc;

    if ((rc = declare_begin(c, name, passive, args, n, entries, &t)) != HQ_OK)
        return rc;
    (void)amqp_exchange_declare(c->st, c->ch, amqp_cstring_bytes(name),
                                amqp_cstring_bytes(type ? type : "topic"), passive, 1, 0, 0, t);
    rc = hq__amqp_reply(c, amqp_get_rpc_reply(c->st), "exchange.declare", false);
    return after_declare(c, rc);
}

int hq_amqp_queue_declare(struct hq_amqp *c, const char *name, bool passive,
                           const struct hq_targ *args, size_t n, uint32_t *messages,
                           uint32_t *consumers)
{
    amqp_table_entry_t entries[8];
    amqp_table_t t;
    amqp_queue_declare_ok_t *ok;
    int rc;

    if ((rc = declare_begin(c, name, passive, args, n, entries, &t)) != HQ_OK)
        return rc;
    ok = amqp_queue_declare(c->st, c->ch, amqp_cstring_bytes(name), passive, 1, 0, 0, t);
    rc = hq__amqp_reply(c, amqp_get_rpc_reply(c->st), "queue.declare", false);
    if (rc == HQ_OK && ok) {
        if (messages)
            *messages = ok->message_count;
        if (consumers)
            *consumers = ok->consumer_count;
    }
    return after_declare(c, rc);
}

int hq_amqp_queue_bind(struct hq_amqp *c, const char *queue, const char *exchange,
                        const char *routing_key)
{
    int rc;

    if (!c || !queue || !exchange)
        return HQ_EINVAL;
    rc = ensure_channel(c);
    if (rc != HQ_OK)
        return rc;
    (void)amqp_queue_bind(c->st, c->ch, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                          amqp_cstring_bytes(routing_key ? routing_key : ""), amqp_empty_table);
    rc = hq__amqp_reply(c, amqp_get_rpc_reply(c->st), "queue.bind", false);
    return after_declare(c, rc);
}

int hq_amqp_exchange_exists(struct hq_amqp *c, const char *name)
{
    int rc = hq_amqp_exchange_declare(c, name, NULL, true, NULL, 0);

    return rc == HQ_OK || rc == HQ_ENOTFOUND ? rc : HQ_EDOWN;
}

int hq_amqp_queue_exists(struct hq_amqp *c, const char *name, uint32_t *messages,
                         uint32_t *consumers)
{
    int rc = hq_amqp_queue_declare(c, name, true, NULL, 0, messages, consumers);

    return rc == HQ_OK || rc == HQ_ENOTFOUND ? rc : HQ_EDOWN;
}

/* Parse uri the way connecting does (rabbitmq-c's parser) and copy its host and port and/or
 * its vhost (either output may be NULL). */
static int uri_parts(const char *uri, char *host, size_t hostsz, int *port, char *vhost,
                     size_t vhostsz)
{
    struct amqp_connection_info ci;
    char *copy;
    int rc = HQ_OK;

    if (!uri || (host && hostsz == 0) || (vhost && vhostsz == 0))
        return HQ_EINVAL;
    copy = strdup(uri);
    if (!copy)
        return HQ_ENOMEM;
    amqp_default_connection_info(&ci);
    if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK)
        rc = HQ_EINVAL;
    else if ((host && strlen(ci.host) >= hostsz) || (vhost && strlen(ci.vhost) >= vhostsz))
        rc = HQ_ETOOBIG;
    if (rc == HQ_OK && host) {
        memcpy(host, ci.host, strlen(ci.host) + 1);
        *port = ci.port;
    }
    if (rc == HQ_OK && vhost)
        memcpy(vhost, ci.vhost, strlen(ci.vhost) + 1);
    free(copy);
    return rc;
}

int hq_amqp_uri_hostport(const char *uri, char *host, size_t hostsz, int *port)
{
    if (!host || !port)
        return HQ_EINVAL;
    return uri_parts(uri, host, hostsz, port, NULL, 0);
}

int hq__amqp_uri_vhost(const char *uri, char *out, size_t outsz)
{
    if (!out)
        return HQ_EINVAL;
    return uri_parts(uri, NULL, 0, NULL, out, outsz);
}

/* ---------------------------------------------------------------- publish, confirms */

int hq_amqp_confirm_select(struct hq_amqp *c)
{
    int rc;

    if (!c)
        return HQ_EINVAL;
    rc = ensure_channel(c);
    if (rc != HQ_OK)
        return rc;
    (void)amqp_confirm_select(c->st, c->ch);
    rc = hq__amqp_reply(c, amqp_get_rpc_reply(c->st), "confirm.select", false);
    if (rc != HQ_OK)
        return rc == HQ_ENOTFOUND || rc == HQ_ECONFLICT ? HQ_EBROKER : rc;
    c->confirm = true;
    c->next_tag = 1;
    return HQ_OK;
}

static bool shortstr_ok(const char *s)
{
    return !s || strlen(s) <= 255;
}

/* rabbitmq-c sends the method frame before it encodes the content header: a header that
 * cannot be encoded (a short string over 255 bytes, properties larger than a frame) would leave
 * the connection in the middle of a message. Check first, never break the connection. */
static int msg_check(const char *exchange, const char *routing_key, const struct hq_msg *m,
                     size_t frame_max)
{
    size_t props = 128, i;

    if (!exchange || !m || !shortstr_ok(exchange) || !shortstr_ok(routing_key) ||
        !shortstr_ok(m->message_id) || !shortstr_ok(m->content_type))
        return HQ_EINVAL;
    if (m->n_headers && !m->headers)
        return HQ_EINVAL;
    props += (m->message_id ? strlen(m->message_id) : 0) +
             (m->content_type ? strlen(m->content_type) : 0);
    for (i = 0; i < m->n_headers; i++) {
        const struct hq_hdr *h = &m->headers[i];
        size_t k = h->key ? strlen(h->key) : 0;

        if (k == 0 || k > 255)
            return HQ_EINVAL;
        props += 1 + k + 1 + (h->type == HQ_HDR_LONG ? 8 : 4 + (h->str ? strlen(h->str) : 0));
        if (h->type == HQ_HDR_TABLE && h->str) {
            /* "n:B64,..." on the wire: per entry 1 + n + 1 + 4 + bytes (bytes < B64) */
            const char *p;

            for (p = h->str; *p; p++)
                props += *p == ',' ? 6 : 0;
            props += 6;
        }
        if (props > frame_max)
            return HQ_ETOOBIG;
    }
    return props + 8 <= frame_max ? HQ_OK : HQ_ETOOBIG;
}

int hq__amqp_msg_check(const char *exchange, const struct hq_msg *m)
{
    return msg_check(exchange, m ? m->routing_key : NULL, m, FRAME_MAX);
}

/* The field tables of m's HQ_HDR_TABLE headers (hq_steps.h), made for one publish. */
struct pub_tables {
    struct hq_steps *steps;
    amqp_table_entry_t **entries;
    size_t n;
};

static void pub_tables_free(struct pub_tables *t)
{
    size_t i;

    for (i = 0; i < t->n; i++) {
        hq_steps_free(&t->steps[i]);
        free(t->entries[i]);
    }
    free(t->steps);
    free(t->entries);
    memset(t, 0, sizeof(*t));
}

/* Header h (HQ_HDR_TABLE) as a field table of bytes values into v; t keeps the memory. */
static int pub_table(struct pub_tables *t, const struct hq_hdr *h, amqp_field_value_t *v)
{
    struct hq_steps *st;
    amqp_table_entry_t *e;
    size_t i;
    int rc;

    if (!t->steps) {
        t->steps = calloc(HQ_MAX_TABLE_HEADERS, sizeof(*t->steps));
        t->entries = calloc(HQ_MAX_TABLE_HEADERS, sizeof(*t->entries));
        if (!t->steps || !t->entries)
            return HQ_ENOMEM;
    }
    if (t->n == HQ_MAX_TABLE_HEADERS)
        return HQ_EINVAL;
    st = &t->steps[t->n];
    if ((rc = hq_steps_parse(h->str, st)) != HQ_OK)
        return rc;
    e = calloc(st->n ? st->n : 1, sizeof(*e));
    if (!e) {
        hq_steps_free(st);
        return HQ_ENOMEM;
    }
    t->entries[t->n++] = e;
    for (i = 0; i < st->n; i++) {
        e[i].key.bytes = (void *)(uintptr_t)st->v[i].name;
        e[i].key.len = st->v[i].name_len;
        e[i].value.kind = AMQP_FIELD_KIND_BYTES; /* 'x' */
        e[i].value.value.bytes.bytes = (void *)(uintptr_t)st->v[i].val;
        e[i].value.value.bytes.len = st->v[i].len;
    }
    v->kind = AMQP_FIELD_KIND_TABLE;
    v->value.table.num_entries = (int)st->n;
    v->value.table.entries = e;
    return HQ_OK;
}

int hq_amqp_publish(struct hq_amqp *c, const char *exchange, const char *routing_key,
                    const struct hq_msg *m, bool mandatory, uint64_t *tag)
{
    struct pub_tables tables = {0};
    amqp_basic_properties_t props;
    amqp_bytes_t body;
    size_t i;
    int s, fm;

    if (!c || !exchange || !m)
        return HQ_EINVAL;
    if (c->dead || !c->ch_open)
        return HQ_EDOWN; /* a closed channel loses confirm mode: the owner reconnects */
    fm = amqp_get_frame_max(c->st);
    s = msg_check(exchange, routing_key, m, fm > 0 ? (size_t)fm : FRAME_MAX);
    if (s != HQ_OK)
        return s;
    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.timestamp = (uint64_t)(m->timestamp_s > 0 ? m->timestamp_s : 0);
    if (m->content_type && m->content_type[0]) {
        props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        props.content_type = amqp_cstring_bytes(m->content_type);
    }
    if (m->message_id && m->message_id[0]) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(m->message_id);
    }
    if (m->n_headers) {
        if (m->n_headers > (size_t)INT32_MAX)
            return HQ_ETOOBIG;
        if (m->n_headers > c->hdrs_cap) {
            amqp_table_entry_t *p = realloc(c->hdrs, m->n_headers * sizeof(*p));
            if (!p)
                return HQ_ENOMEM;
            c->hdrs = p;
            c->hdrs_cap = m->n_headers;
        }
        for (i = 0; i < m->n_headers; i++) {
            const struct hq_hdr *h = &m->headers[i];
            c->hdrs[i].key = amqp_cstring_bytes(h->key ? h->key : "");
            if (h->type == HQ_HDR_LONG) {
                c->hdrs[i].value.kind = AMQP_FIELD_KIND_I64; /* 'l' */
                c->hdrs[i].value.value.i64 = h->num;
            } else if (h->type == HQ_HDR_TABLE) {
                if ((s = pub_table(&tables, h, &c->hdrs[i].value)) != HQ_OK) {
                    pub_tables_free(&tables);
                    return s;
                }
            } else {
                c->hdrs[i].value.kind = AMQP_FIELD_KIND_UTF8; /* 'S' longstr */
                c->hdrs[i].value.value.bytes = amqp_cstring_bytes(h->str ? h->str : "");
            }
        }
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers.num_entries = (int)m->n_headers;
        props.headers.entries = c->hdrs;
    }
    body.len = m->body_len;
    body.bytes = m->body;
    s = amqp_basic_publish(c->st, c->ch, amqp_cstring_bytes(exchange),
                           amqp_cstring_bytes(routing_key ? routing_key : ""), mandatory, 0, &props,
                           body);
    pub_tables_free(&tables);
    if (s != AMQP_STATUS_OK)
        return hq__amqp_lib(c, s, "basic.publish");
    if (tag)
        *tag = c->confirm ? c->next_tag : 0;
    if (c->confirm)
        c->next_tag++;
    return HQ_OK;
}

static void copy_text(char *dst, size_t dstsz, amqp_bytes_t b)
{
    size_t n = b.len < dstsz - 1 ? b.len : dstsz - 1;

    if (n)
        memcpy(dst, b.bytes, n);
    dst[n] = '\0';
}

int hq_amqp_poll(struct hq_amqp *c, int timeout_ms, struct hq_amqp_ev *ev)
{
    return hq__amqp_wait(c, timeout_ms, -1, NULL, ev);
}

/* The connection is gone (status rc, the reason in c->err): say so in *ev. */
static int ev_closed(struct hq_amqp *c, struct hq_amqp_ev *ev, int rc)
{
    ev->type = HQ_AMQP_EV_CLOSED;
    snprintf(ev->text, sizeof(ev->text), "%.255s", c->err);
    c->cs.down = true;
    return rc;
}

/* The broker closed the channel or the connection (what) with code and text: say so in *ev
 * and c. The caller answers the close and marks what is gone. */
static void ev_broker_close(struct hq_amqp *c, struct hq_amqp_ev *ev, const char *what, int code,
                            amqp_bytes_t text)
{
    ev->type = HQ_AMQP_EV_CLOSED;
    ev->reply_code = code;
    c->reply_code = code;
    copy_text(ev->text, sizeof(ev->text), text);
    set_err(c, "%s closed by the broker: %d %.*s", what, code, bytes_len(text, 400),
            (const char *)text.bytes);
    c->cs.down = true;
}

int hq__amqp_dispatch(struct hq_amqp *c, amqp_frame_t *f, struct hq_amqp_ev *ev)
{
    memset(ev, 0, sizeof(*ev));
    if (f->frame_type != AMQP_FRAME_METHOD)
        return HQ_OK; /* content of a stray delivery: ignore */

    switch (f->payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD:
        return hq__consume_on_deliver(c, f->channel, f->payload.method.decoded);
    case AMQP_BASIC_ACK_METHOD:
    case AMQP_BASIC_NACK_METHOD: {
        bool ack = f->payload.method.id == AMQP_BASIC_ACK_METHOD;

        if (ack) {
            amqp_basic_ack_t *a = f->payload.method.decoded;
            ev->tag = a->delivery_tag;
            ev->multiple = a->multiple != 0;
        } else {
            amqp_basic_nack_t *a = f->payload.method.decoded;
            ev->tag = a->delivery_tag;
            ev->multiple = a->multiple != 0;
        }
        ev->type = ack ? HQ_AMQP_EV_ACK : HQ_AMQP_EV_NACK;
        /* the publish hq_amqp_publish_confirmed waits for */
        if (c->cs.want && (ev->tag == c->cs.want || (ev->multiple && ev->tag >= c->cs.want)))
            c->cs.settled = ack ? 1 : -1;
        break;
    }
    case AMQP_BASIC_RETURN_METHOD: {
        amqp_basic_return_t *r = f->payload.method.decoded;
        amqp_message_t msg;
        int rc;

        ev->type = HQ_AMQP_EV_RETURN;
        ev->reply_code = r->reply_code;
        copy_text(ev->text, sizeof(ev->text), r->reply_text);
        /* header and body frames follow; the message id correlates (returns carry no tag) */
        rc = hq__amqp_reply(c, amqp_read_message(c->st, f->channel, &msg, 0),
                            "read returned message", false);
        if (rc != HQ_OK) {
            (void)ev_closed(c, ev, rc);
            return c->dead ? HQ_EDOWN : HQ_OK;
        }
        if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
            copy_text(ev->message_id, sizeof(ev->message_id), msg.properties.message_id);
        amqp_destroy_message(&msg);
        if (c->cs.want && strcmp(ev->message_id, c->cs.want_id) == 0) {
            c->cs.returned = true;
            set_err(c, "publish returned: %d %.199s", ev->reply_code, ev->text);
        }
        break;
    }
    case AMQP_BASIC_CANCEL_METHOD: {
        amqp_basic_cancel_t *cm = f->payload.method.decoded;

        /* consumer_cancel_notify: the queue we consume went away */
        c->cs.cancelled = true;
        set_err(c, "consumer %.*s cancelled by the broker (queue deleted?)",
                bytes_len(cm->consumer_tag, 200), (const char *)cm->consumer_tag.bytes);
        if (!cm->nowait) {
            amqp_basic_cancel_ok_t ok;
            int s;

            ok.consumer_tag = cm->consumer_tag;
            s = amqp_send_method(c->st, f->channel, AMQP_BASIC_CANCEL_OK_METHOD, &ok);
            if (s != AMQP_STATUS_OK)
                return ev_closed(c, ev, hq__amqp_lib(c, s, "basic.cancel-ok"));
        }
        c->cs.ctag[0] = '\0';
        break;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
        amqp_channel_close_t *m = f->payload.method.decoded;
        amqp_channel_close_ok_t ok = {0};

        ev_broker_close(c, ev, "channel", m->reply_code, m->reply_text);
        if (amqp_send_method(c->st, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) !=
            AMQP_STATUS_OK)
            c->dead = true;
        if (f->channel == c->ch) {
            c->ch_open = false;
            c->confirm = false;
        }
        break;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_connection_close_t *m = f->payload.method.decoded;
        amqp_connection_close_ok_t ok = {0};

        ev_broker_close(c, ev, "connection", m->reply_code, m->reply_text);
        (void)amqp_send_method(c->st, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        c->dead = true;
        c->ch_open = false;
        break;
    }
    case AMQP_CONNECTION_BLOCKED_METHOD: {
        amqp_connection_blocked_t *m = f->payload.method.decoded;
        ev->type = HQ_AMQP_EV_BLOCKED;
        copy_text(ev->text, sizeof(ev->text), m->reason);
        break;
    }
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        ev->type = HQ_AMQP_EV_UNBLOCKED;
        break;
    default:
        break; /* anything else: ignore */
    }
    return HQ_OK;
}

int hq__amqp_consume_frame(struct hq_amqp *c, int64_t deadline, struct hq_amqp_ev *ev)
{
    amqp_envelope_t env;
    amqp_rpc_reply_t r;
    struct timeval tv = ms_tv(deadline - hq_mono_ms());
    amqp_frame_t f;
    int s, rc;

    memset(ev, 0, sizeof(*ev));
    /* Everything returned before was copied out: the library may reuse its buffers. */
    amqp_maybe_release_buffers(c->st);
    r = amqp_consume_message(c->st, &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        rc = hq__consume_push(c, env.delivery_tag, env.redelivered != 0, env.exchange,
                              env.routing_key, &env.message);
        amqp_destroy_envelope(&env);
        return rc;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        if (r.library_error == AMQP_STATUS_TIMEOUT)
            return HQ_ETIMEDOUT;
        if (r.library_error != AMQP_STATUS_UNEXPECTED_STATE)
            return ev_closed(c, ev, hq__amqp_lib(c, r.library_error, "consume"));
        /* not a delivery: the library put the frame back */
        s = amqp_simple_wait_frame(c->st, &f);
        if (s != AMQP_STATUS_OK)
            return ev_closed(c, ev, hq__amqp_lib(c, s, "wait frame"));
        return hq__amqp_dispatch(c, &f, ev);
    }
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD || r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        memset(&f, 0, sizeof(f));
        f.frame_type = AMQP_FRAME_METHOD;
        f.channel = r.reply.id == AMQP_CHANNEL_CLOSE_METHOD ? c->ch : 0;
        f.payload.method = r.reply;
        return hq__amqp_dispatch(c, &f, ev);
    }
    set_err(c, "consume: unexpected reply from the library");
    c->dead = true;
    return ev_closed(c, ev, HQ_EDOWN);
}

int hq__amqp_wait(struct hq_amqp *c, int timeout_ms, int wake_fd, bool *woken,
                  struct hq_amqp_ev *ev)
{
    amqp_frame_t f;
    struct timeval tv;
    int s;

    if (!c || !ev)
        return HQ_EINVAL;
    memset(ev, 0, sizeof(*ev));
    if (c->dead) {
        ev->type = HQ_AMQP_EV_CLOSED;
        snprintf(ev->text, sizeof(ev->text), "%.255s", c->err);
        return HQ_EDOWN;
    }
    if (woken)
        *woken = false;
    /* Frames returned before were copied out into *ev: their memory can go. */
    amqp_maybe_release_buffers(c->st);
    /* Wait in our own poll(2): rabbitmq-c rounds the time left down to whole milliseconds and
     * then polls with 0, spinning through the last millisecond of every wait (all of a 1 ms
     * wait), and it cannot watch a second descriptor. Nothing is lost: frames already read are
     * checked first, and the library call below (with a zero timeout) still services
     * heartbeats. With TLS, OpenSSL keeps no unread record behind (rabbitmq-c reads into a
     * buffer larger than a record). */
    if (timeout_ms > 0 && !amqp_data_in_buffer(c->st) && !amqp_frames_enqueued(c->st)) {
        struct pollfd pfd[2];
        nfds_t n = 1;

        pfd[0].fd = amqp_get_sockfd(c->st);
        pfd[0].events = POLLIN;
        pfd[0].revents = 0;
        if (wake_fd >= 0) {
            pfd[1].fd = wake_fd;
            pfd[1].events = POLLIN;
            pfd[1].revents = 0;
            n = 2;
        }
        if (poll(pfd, n, timeout_ms) > 0 && n == 2 && (pfd[1].revents & POLLIN) && woken)
            *woken = true;
    }
    tv = ms_tv(0);
    /* Services heartbeats (sends ours when due, checks the broker's). */
    s = amqp_simple_wait_frame_noblock(c->st, &f, &tv);
    if (s == AMQP_STATUS_TIMEOUT)
        return HQ_OK;
    if (s != AMQP_STATUS_OK) {
        int rc = hq__amqp_lib(c, s, "wait frame");
        ev->type = HQ_AMQP_EV_CLOSED;
        snprintf(ev->text, sizeof(ev->text), "%.255s", c->err);
        return rc == HQ_ETIMEDOUT ? HQ_EDOWN : rc;
    }
    return hq__amqp_dispatch(c, &f, ev);
}
