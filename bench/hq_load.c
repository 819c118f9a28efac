/* hq_load: an HTTP/1.1 load generator for hookmq-gateway benchmarks (bench/README.md).
 *
 * Sends signed GitHub-style webhooks (X-Hub-Signature-256 over a unique ~1 KiB JSON body, a
 * unique X-GitHub-Delivery id per request) over C keep-alive connections driven by a few epoll
 * threads, either as fast as the server answers (closed loop: one request in flight per
 * connection) or open-loop at a fixed total rate, paced per connection. Latency is taken from
 * the moment a request was due (open loop: its scheduled time, so a slow server cannot hide
 * its queueing; closed loop: the first byte written) to the last byte of the response, and kept
 * in a log-linear histogram (< 1 % error). The ids answered 202 can be written to a file for
 * hq_drain, which checks that each of them reached the queue.
 *
 * Only OpenSSL (libcrypto) and pthreads are needed. Loopback targets only, unless
 * --allow-remote is given. Every run is bounded by --requests or --duration. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define MAX_THREADS 64
#define MAX_HEAD_BYTES (16 * 1024)  /* response header block cap */
#define MAX_RESP_BODY (1024 * 1024) /* response body cap */
#define MAX_BODY_BYTES (16 * 1024 * 1024)
#define ID_MAX 96
#define HIST_SUB 64 /* sub-buckets per power of two: < 1.6 % bucket width */
#define HIST_N (60 * HIST_SUB + 2 * HIST_SUB)
#define NS_PER_S 1000000000LL

/* ---- options ------------------------------------------------------------------------------ */

struct opts {
    char host[256];          /* as written in the URL, for the Host header */
    struct sockaddr_in addr; /* resolved IPv4 address and port */
    char path[1024];
    const char *secret;
    size_t secret_len;
    const char *event;
    const char *prefix;
    const char *ids_out;
    int conns;
    int threads;
    uint64_t requests; /* 0 = unlimited (duration bounds the run) */
    double duration_s; /* 0 = unlimited (requests bound the run) */
    double rate;       /* total requests/s, 0 = as fast as possible */
    size_t body_bytes;
    int timeout_ms;
    uint64_t max_errors; /* stop after this many connection errors */
    bool allow_remote;
    bool progress;
};

static struct opts O;

/* ---- shared state ---------------------------------------------------------------------------- */

static int64_t g_start_ns;         /* when the run started (CLOCK_MONOTONIC) */
static int64_t g_end_ns;           /* no request is started at or after this (INT64_MAX: none) */
static atomic_uint_fast64_t g_seq; /* next request number to claim */
static atomic_uint_fast64_t g_completed;   /* responses, for --progress */
static atomic_uint_fast64_t g_conn_errors; /* for --max-errors */
static atomic_int g_stop;                  /* SIGINT/SIGTERM or --max-errors: stop claiming */
static EVP_MAC *g_mac;                     /* HMAC implementation, fetched once */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* ---- latency histogram (microseconds, log-linear) ---------------------------------------- */

struct hist {
    uint64_t n[HIST_N];
    uint64_t count;
    uint64_t max_us;
};

static size_t hist_index(uint64_t v)
{
    int msb, shift;
    size_t idx;

    if (v < 2 * HIST_SUB) return (size_t)v;
    msb = 63 - __builtin_clzll(v);
    shift = msb - 6; /* log2(HIST_SUB) = 6: v >> shift is in [64, 128) */
    idx = (size_t)shift * HIST_SUB + (size_t)(v >> shift);
    return idx < HIST_N ? idx : HIST_N - 1;
}

/* Highest value that falls into bucket idx. */
static uint64_t hist_upper(size_t idx)
{
    size_t shift, m;

    if (idx < 2 * HIST_SUB) return idx;
    shift = idx / HIST_SUB - 1;
    m = idx - shift * HIST_SUB;
    return (((uint64_t)m + 1) << shift) - 1;
}

static void hist_add(struct hist *h, uint64_t us)
{
    h->n[hist_index(us)]++;
    h->count++;
    if (us > h->max_us) h->max_us = us;
}

static void hist_merge(struct hist *into, const struct hist *h)
{
    size_t i;

    for (i = 0; i < HIST_N; i++)
        into->n[i] += h->n[i];
    into->count += h->count;
    if (h->max_us > into->max_us) into->max_us = h->max_us;
}

/* Value at quantile q (0..1) in ms: the upper edge of the bucket holding it, capped at max. */
static double hist_quantile_ms(const struct hist *h, double q)
{
    uint64_t want, seen = 0, v;
    size_t i;

    if (h->count == 0) return 0.0;
    want = (uint64_t)(q * (double)h->count + 0.999999);
    if (want < 1) want = 1;
    for (i = 0; i < HIST_N; i++) {
        seen += h->n[i];
        if (seen >= want) {
            v = hist_upper(i);
            if (v > h->max_us) v = h->max_us;
            return (double)v / 1000.0;
        }
    }
    return (double)h->max_us / 1000.0;
}

/* ---- per-thread state ------------------------------------------------------------------------ */

enum cstate {
    C_CLOSED,     /* no socket; reconnect at backoff_until */
    C_CONNECTING, /* non-blocking connect in progress */
    C_IDLE,       /* connected, no request in flight (waiting for its due time) */
    C_WRITING,    /* request partly written */
    C_READING,    /* waiting for (the rest of) the response */
    C_DONE        /* nothing more to send */
};

struct worker;

struct conn {
    struct worker *w;
    int idx; /* global connection number, for pacing */
    int fd;
    enum cstate st;
    bool have_req;        /* req holds a request not yet answered */
    bool retried;         /* req was already resent once after a stale keep-alive close */
    unsigned served;      /* responses received on the current socket */
    unsigned failures;    /* consecutive connection failures, for backoff */
    uint64_t k;           /* requests claimed by this connection (pacing index) */
    int64_t due_ns;       /* open loop: when the next request is due */
    int64_t t0_ns;        /* latency start of the current request */
    int64_t deadline_ns;  /* of the current connect, or write + read of the request */
    int64_t req_deadline; /* the request is dropped (a timeout) when unanswered by then */
    int64_t backoff_until;
    char id[ID_MAX];
    size_t id_len;
    char *req;
    size_t req_len, req_off, req_cap;
    char *rbuf;
    size_t rlen, rcap;
    uint32_t ev; /* events registered with epoll */
};

struct stats {
    uint64_t sent, completed, ok, status[600], other_status;
    uint64_t connect_errors, io_errors, timeouts, protocol_errors, retried, reconnects;
    uint64_t id_mismatch;
    int64_t last_done_ns;
    struct hist h;
};

struct worker {
    pthread_t tid;
    int ep;
    struct conn *conns;
    int n;
    EVP_MAC_CTX *mac;
    struct stats s;
    char *ids; /* ids answered 202, '\n'-separated */
    size_t ids_len, ids_cap;
    bool oom;
};

/* ---- requests -------------------------------------------------------------------------------- */

static const char HEXD[] = "0123456789abcdef";

/* HMAC-SHA256(secret, body) as 64 lower-case hex digits into out[65]. */
static int sign_body(struct worker *w, const char *body, size_t len, char out[65])
{
    unsigned char mac[32];
    size_t mlen = 0, i;

    if (!EVP_MAC_init(w->mac, NULL, 0, NULL) ||
        !EVP_MAC_update(w->mac, (const unsigned char *)body, len) ||
        !EVP_MAC_final(w->mac, mac, &mlen, sizeof(mac)) || mlen != 32)
        return -1;
    for (i = 0; i < 32; i++) {
        out[2 * i] = HEXD[mac[i] >> 4];
        out[2 * i + 1] = HEXD[mac[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

/* Build request number seq into c->req. The body is
 *   {"id":"<id>","ref":"refs/heads/main","seq":<seq>,"pad":"xxx..."}
 * padded to O.body_bytes (or longer when the fixed part alone is longer). */
static int build_request(struct conn *c, uint64_t seq)
{
    char sig[65];
    char *body;
    size_t fixed, pad, blen, hlen, need;
    int n;

    n = snprintf(c->id, sizeof(c->id), "%s-%" PRIu64, O.prefix, seq);
    if (n < 0 || (size_t)n >= sizeof(c->id)) return -1;
    c->id_len = (size_t)n;
    /* body goes after a header block of at most 1 KiB + path + host: lay it out first */
    need = 2048 + strlen(O.path) + strlen(O.host) + O.body_bytes + c->id_len + 64;
    if (need > c->req_cap) {
        char *p = realloc(c->req, need);
        if (!p) return -1;
        c->req = p;
        c->req_cap = need;
    }
    body = c->req + 1536 + strlen(O.path) + strlen(O.host);
    n = snprintf(body, c->req_cap - (size_t)(body - c->req),
                 "{\"id\":\"%s\",\"ref\":\"refs/heads/main\",\"seq\":%" PRIu64 ",\"pad\":\"", c->id,
                 seq);
    if (n < 0) return -1;
    fixed = (size_t)n + 2; /* + closing "} */
    pad = O.body_bytes > fixed ? O.body_bytes - fixed : 0;
    memset(body + n, 'x', pad);
    memcpy(body + (size_t)n + pad, "\"}", 2);
    blen = (size_t)n + pad + 2;
    if (sign_body(c->w, body, blen, sig) != 0) return -1;
    n = snprintf(c->req, (size_t)(body - c->req),
                 "POST %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "User-Agent: hq_load/1\r\n"
                 "Content-Type: application/json\r\n"
                 "X-GitHub-Event: %s\r\n"
                 "X-GitHub-Delivery: %s\r\n"
                 "X-Hub-Signature-256: sha256=%s\r\n"
                 "Content-Length: %zu\r\n"
                 "\r\n",
                 O.path, O.host, O.event, c->id, sig, blen);
    if (n < 0 || (size_t)n >= (size_t)(body - c->req)) return -1;
    hlen = (size_t)n;
    memmove(c->req + hlen, body, blen);
    c->req_len = hlen + blen;
    c->req_off = 0;
    return 0;
}

/* ---- connections ----------------------------------------------------------------------------- */

static void set_events(struct conn *c, uint32_t ev)
{
    struct epoll_event e;

    if (c->fd < 0 || c->ev == ev) return;
    memset(&e, 0, sizeof(e));
    e.events = ev;
    e.data.ptr = c;
    if (epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &e) == 0) c->ev = ev;
}

static void close_conn(struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->ev = 0;
    c->rlen = 0;
    c->served = 0;
    c->st = C_CLOSED;
}

static void count_conn_error(struct conn *c)
{
    int64_t delay_ms;

    c->failures++;
    delay_ms = 10LL << (c->failures < 7 ? c->failures - 1 : 6); /* 10 ms .. 640 ms */
    c->backoff_until = now_ns() + delay_ms * 1000000LL;
    if (atomic_fetch_add(&g_conn_errors, 1) + 1 >= O.max_errors && O.max_errors > 0)
        atomic_store(&g_stop, 1);
}

/* A failure of the socket while a request is in flight: drop the request (counted), or resend
 * it once when a reused keep-alive connection was closed before any byte of the answer came
 * (the server's idle close racing our request; the gateway's replay cache makes a resend of the
 * same signed request safe). */
static void fail_conn(struct conn *c, uint64_t *counter)
{
    bool resend = c->have_req && !c->retried && c->served > 0 && c->rlen == 0 &&
                  (c->st == C_READING || c->st == C_WRITING);

    close_conn(c);
    if (resend) {
        c->retried = true;
        c->req_off = 0;
        c->w->s.retried++;
        c->backoff_until = 0;
        return;
    }
    (*counter)++;
    if (c->have_req) {
        c->have_req = false;
        c->retried = false;
    }
    count_conn_error(c);
}

static void start_connect(struct conn *c)
{
    struct epoll_event e;
    int fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->w->s.connect_errors++;
        count_conn_error(c);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->rlen = 0;
    c->served = 0;
    memset(&e, 0, sizeof(e));
    e.events = EPOLLOUT;
    e.data.ptr = c;
    if (epoll_ctl(c->w->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
        close(fd);
        c->fd = -1;
        c->w->s.connect_errors++;
        count_conn_error(c);
        return;
    }
    c->ev = EPOLLOUT;
    c->deadline_ns = now_ns() + (int64_t)O.timeout_ms * 1000000LL;
    if (connect(fd, (const struct sockaddr *)&O.addr, sizeof(O.addr)) == 0 ||
        errno == EINPROGRESS) {
        c->st = C_CONNECTING;
        return;
    }
    close_conn(c);
    c->w->s.connect_errors++;
    count_conn_error(c);
}

/* Write what is left of the request. */
static void do_write(struct conn *c)
{
    while (c->req_off < c->req_len) {
        ssize_t k = send(c->fd, c->req + c->req_off, c->req_len - c->req_off, MSG_NOSIGNAL);
        if (k > 0) {
            c->req_off += (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->st = C_WRITING;
            set_events(c, EPOLLOUT);
            return;
        }
        fail_conn(c, &c->w->s.io_errors);
        return;
    }
    c->st = C_READING;
    set_events(c, EPOLLIN);
}

/* May a new request be started? Claims its number into *seq. */
static bool claim(struct conn *c, int64_t now, uint64_t *seq)
{
    if (atomic_load(&g_stop) || now >= g_end_ns) return false;
    if (O.rate > 0 && c->due_ns >= g_end_ns) return false;
    *seq = atomic_fetch_add(&g_seq, 1);
    if (O.requests > 0 && *seq >= O.requests) return false;
    return true;
}

/* Connected and idle: start the next request if it is due. */
static void next_request(struct conn *c, int64_t now)
{
    uint64_t seq;

    if (c->have_req) { /* a resend after a reconnect */
        c->deadline_ns = c->req_deadline;
        do_write(c);
        return;
    }
    if (O.rate > 0 && now < c->due_ns) {
        c->st = C_IDLE;
        set_events(c, EPOLLIN); /* notice a server close while idle */
        return;
    }
    if (!claim(c, now, &seq)) {
        close_conn(c);
        c->st = C_DONE;
        return;
    }
    if (build_request(c, seq) != 0) {
        fprintf(stderr, "hq_load: cannot build a request (out of memory or HMAC failure)\n");
        atomic_store(&g_stop, 1);
        close_conn(c);
        c->st = C_DONE;
        return;
    }
    c->have_req = true;
    c->retried = false;
    c->t0_ns = O.rate > 0 ? c->due_ns : now;
    c->k++;
    if (O.rate > 0)
        c->due_ns =
            g_start_ns + (int64_t)(((double)c->idx + (double)c->k * O.conns) * 1e9 / O.rate);
    c->deadline_ns = now + (int64_t)O.timeout_ms * 1000000LL;
    c->req_deadline = c->deadline_ns;
    c->w->s.sent++;
    do_write(c);
}

/* Case-insensitive "name:" at the start of line [p, e): returns the trimmed value. */
static bool header_is(const char *p, const char *e, const char *name, const char **v, size_t *vlen)
{
    size_t n = strlen(name);

    if ((size_t)(e - p) <= n || strncasecmp(p, name, n) != 0 || p[n] != ':') return false;
    p += n + 1;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *v = p;
    *vlen = (size_t)(e - p);
    return true;
}

static bool token_in(const char *v, size_t vlen, const char *tok)
{
    size_t n = strlen(tok), i;

    for (i = 0; i + n <= vlen; i++)
        if (strncasecmp(v + i, tok, n) == 0) return true;
    return false;
}

/* Is the chunked body at b[0..len) complete? Returns its encoded length, 0 if more bytes are
 * needed, -1 if malformed. */
static long chunked_length(const char *b, size_t len)
{
    size_t pos = 0;

    for (;;) {
        uint64_t size = 0;
        int digits = 0;
        const char *nl;

        while (pos < len && digits < 16) {
            char ch = b[pos];
            int d = (ch >= '0' && ch <= '9')   ? ch - '0'
                    : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                    : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10
                                               : -1;
            if (d < 0) break;
            size = size * 16 + (uint64_t)d;
            digits++;
            pos++;
        }
        if (pos >= len) return 0;
        if (digits == 0 || size > MAX_RESP_BODY) return -1;
        nl = memchr(b + pos, '\n', len - pos); /* skip chunk extensions */
        if (!nl) return len - pos > 256 ? -1 : 0;
        pos = (size_t)(nl - b) + 1;
        if (size == 0) { /* trailers, then an empty line */
            for (;;) {
                nl = memchr(b + pos, '\n', len - pos);
                if (!nl) return len - pos > 4096 ? -1 : 0;
                if (nl == b + pos || (nl == b + pos + 1 && b[pos] == '\r'))
                    return (long)((size_t)(nl - b) + 1);
                pos = (size_t)(nl - b) + 1;
            }
        }
        if (len - pos < size + 2) return 0;
        pos += size;
        if (b[pos] == '\r') pos++;
        if (pos >= len) return 0;
        if (b[pos] != '\n') return -1;
        pos++;
    }
}

/* The 202 body is {"id":"<event id>"} (whitespace allowed): does it name the id we sent? */
static bool body_names_id(const char *b, size_t len, const char *id, size_t id_len)
{
    const char *p = memmem(b, len, "\"id\"", 4), *e = b + len, *q;

    if (!p) return false;
    p += 4;
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p == e || *p++ != ':') return false;
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p == e || *p++ != '"') return false;
    q = memchr(p, '"', (size_t)(e - p));
    return q && (size_t)(q - p) == id_len && memcmp(p, id, id_len) == 0;
}

static void record_id(struct worker *w, const char *id, size_t len)
{
    if (!O.ids_out || w->oom) return;
    if (w->ids_len + len + 1 > w->ids_cap) {
        size_t cap = w->ids_cap ? w->ids_cap * 2 : 1 << 20;
        char *p;
        while (cap < w->ids_len + len + 1)
            cap *= 2;
        p = realloc(w->ids, cap);
        if (!p) {
            w->oom = true;
            return;
        }
        w->ids = p;
        w->ids_cap = cap;
    }
    memcpy(w->ids + w->ids_len, id, len);
    w->ids[w->ids_len + len] = '\n';
    w->ids_len += len + 1;
}

/* Try to parse a complete response from c->rbuf. Returns 1 done (c updated, request settled),
 * 0 need more bytes, -1 protocol error. eof: the peer has closed (a body delimited by the
 * close is complete now). */
static int parse_response(struct conn *c, bool eof, int64_t now)
{
    struct stats *s = &c->w->s;
    const char *b = c->rbuf, *hend, *p, *e, *v;
    size_t hlen, vlen, blen = 0, total;
    bool have_cl = false, chunked = false, close_after = false, http10;
    uint64_t cl = 0;
    int status;

again:
    hend = c->rlen >= 4 ? memmem(b, c->rlen, "\r\n\r\n", 4) : NULL;
    if (!hend) return c->rlen > MAX_HEAD_BYTES ? -1 : 0;
    hlen = (size_t)(hend - b) + 4;
    if (hlen < 14 || memcmp(b, "HTTP/1.", 7) != 0 || (b[7] != '0' && b[7] != '1') || b[8] != ' ' ||
        b[9] < '1' || b[9] > '5' || b[10] < '0' || b[10] > '9' || b[11] < '0' || b[11] > '9' ||
        (b[12] != ' ' && b[12] != '\r'))
        return -1;
    status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    http10 = b[7] == '0';
    close_after = http10;
    if (status >= 100 && status < 200 && status != 101) { /* interim response: drop it */
        memmove(c->rbuf, c->rbuf + hlen, c->rlen - hlen);
        c->rlen -= hlen;
        goto again;
    }
    p = memchr(b, '\n', hlen) + 1;
    while (p < hend + 2) {
        e = memchr(p, '\n', (size_t)(hend + 4 - p));
        if (!e) break;
        {
            const char *le = (e > p && e[-1] == '\r') ? e - 1 : e;
            if (header_is(p, le, "content-length", &v, &vlen)) {
                uint64_t x = 0;
                size_t i;
                if (vlen == 0 || vlen > 12 || have_cl) return -1;
                for (i = 0; i < vlen; i++) {
                    if (v[i] < '0' || v[i] > '9') return -1;
                    x = x * 10 + (uint64_t)(v[i] - '0');
                }
                cl = x;
                have_cl = true;
            } else if (header_is(p, le, "transfer-encoding", &v, &vlen)) {
                chunked = token_in(v, vlen, "chunked");
            } else if (header_is(p, le, "connection", &v, &vlen)) {
                if (token_in(v, vlen, "close"))
                    close_after = true;
                else if (token_in(v, vlen, "keep-alive"))
                    close_after = false;
            }
        }
        p = e + 1;
    }
    if (chunked) {
        long n = chunked_length(b + hlen, c->rlen - hlen);
        if (n < 0) return -1;
        if (n == 0) return c->rlen - hlen > MAX_RESP_BODY + 65536 ? -1 : 0;
        blen = (size_t)n;
    } else if (have_cl) {
        if (cl > MAX_RESP_BODY) return -1;
        if (c->rlen - hlen < cl) return 0;
        blen = (size_t)cl;
    } else if (status == 204 || status == 304) {
        blen = 0;
    } else { /* delimited by the close */
        if (!eof) return c->rlen - hlen > MAX_RESP_BODY ? -1 : 0;
        blen = c->rlen - hlen;
        close_after = true;
    }
    total = hlen + blen;
    if (c->rlen > total) /* bytes we did not ask for */
        return -1;

    /* settle the request */
    s->completed++;
    atomic_fetch_add_explicit(&g_completed, 1, memory_order_relaxed);
    if (status < 600)
        s->status[status]++;
    else
        s->other_status++;
    if (status >= 200 && status < 300) s->ok++;
    if (status == 202) {
        if (have_cl && !body_names_id(b + hlen, blen, c->id, c->id_len)) s->id_mismatch++;
        record_id(c->w, c->id, c->id_len);
    }
    hist_add(&s->h, (uint64_t)((now - c->t0_ns) / 1000));
    s->last_done_ns = now;
    c->have_req = false;
    c->retried = false;
    c->failures = 0;
    c->served++;
    c->rlen = 0;
    if (close_after) {
        close_conn(c);
        s->reconnects++;
    } else {
        c->st = C_IDLE;
    }
    return 1;
}

static void do_read(struct conn *c, int64_t now)
{
    for (;;) {
        ssize_t k;
        int r;

        if (c->rcap - c->rlen < 4096) {
            size_t cap = c->rcap * 2;
            char *p;
            if (cap > MAX_HEAD_BYTES + MAX_RESP_BODY + 65536 * 2) {
                close_conn(c);
                c->have_req = false;
                c->w->s.protocol_errors++;
                count_conn_error(c);
                return;
            }
            p = realloc(c->rbuf, cap);
            if (!p) {
                fail_conn(c, &c->w->s.io_errors);
                return;
            }
            c->rbuf = p;
            c->rcap = cap;
        }
        k = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (k > 0 && !c->have_req) { /* bytes nobody asked for */
            close_conn(c);
            c->w->s.protocol_errors++;
            count_conn_error(c);
            return;
        }
        if (k == 0 && c->have_req && c->rlen > 0) {
            r = parse_response(c, true, now);
            if (r == 1) {
                if (c->fd >= 0) close_conn(c);
                return;
            }
            close_conn(c);
            c->have_req = false;
            if (r < 0)
                c->w->s.protocol_errors++;
            else
                c->w->s.io_errors++;
            count_conn_error(c);
            return;
        }
        if (k <= 0) {           /* closed or reset */
            if (!c->have_req) { /* idle keep-alive close: just reconnect */
                close_conn(c);
                c->w->s.reconnects++;
                return;
            }
            fail_conn(c, &c->w->s.io_errors);
            return;
        }
        c->rlen += (size_t)k;
        r = parse_response(c, false, now);
        if (r < 0) {
            close_conn(c);
            c->have_req = false;
            c->w->s.protocol_errors++;
            count_conn_error(c);
            return;
        }
        if (r == 1) return;
    }
}

static void on_event(struct conn *c, uint32_t ev, int64_t now)
{
    if (c->st == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0 ||
            (ev & (EPOLLERR | EPOLLHUP))) {
            close_conn(c);
            c->w->s.connect_errors++;
            count_conn_error(c);
            return;
        }
        c->st = C_IDLE;
        next_request(c, now);
        return;
    }
    if (c->st == C_WRITING && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        do_write(c);
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) do_read(c, now);
}

/* Drive every connection of this worker that has a timer or nothing to wait for. Returns the
 * time of the next timer, and whether work remains. */
static bool service(struct worker *w, int64_t now, int64_t *next)
{
    bool busy = false;
    int i;

    *next = now + 100 * 1000000LL;
    for (i = 0; i < w->n; i++) {
        struct conn *c = &w->conns[i];
        bool stopping = atomic_load(&g_stop) || now >= g_end_ns;

        if (c->st == C_DONE) continue;
        if ((c->st == C_CONNECTING || c->st == C_WRITING || c->st == C_READING) &&
            now >= c->deadline_ns) {
            if (c->st == C_CONNECTING) {
                close_conn(c);
                w->s.connect_errors++;
                count_conn_error(c);
            } else {
                close_conn(c);
                c->have_req = false;
                c->retried = false;
                w->s.timeouts++;
                count_conn_error(c);
            }
        }
        if (c->st == C_CLOSED && c->have_req && now >= c->req_deadline) {
            c->have_req = false; /* a resend that found no connection in time */
            c->retried = false;
            w->s.timeouts++;
        }
        if (c->st == C_CLOSED) {
            if (stopping && !c->have_req) {
                c->st = C_DONE;
                continue;
            }
            if (now >= c->backoff_until) {
                start_connect(c);
            } else if (c->backoff_until < *next) {
                *next = c->backoff_until;
            }
        }
        if (c->st == C_IDLE) {
            if (c->have_req || O.rate <= 0 || now >= c->due_ns || stopping)
                next_request(c, now);
            else if (c->due_ns < *next)
                *next = c->due_ns;
        }
        if (c->st == C_CONNECTING || c->st == C_WRITING || c->st == C_READING) {
            if (c->deadline_ns < *next) *next = c->deadline_ns;
        }
        if (c->st != C_DONE) busy = true;
    }
    return busy;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[256];
    int64_t now = now_ns(), next;
    bool pwait2 = true;

    while (service(w, now, &next)) {
        int64_t wait_ns = next - now;
        int n, i;

        if (wait_ns < 0) wait_ns = 0;
        if (wait_ns > 100 * 1000000LL) wait_ns = 100 * 1000000LL;
        /* epoll_pwait2 keeps open-loop pacing to the microsecond; epoll_wait rounds up to ms */
        n = -1;
        if (pwait2) {
            struct timespec ts = {(time_t)(wait_ns / NS_PER_S), (long)(wait_ns % NS_PER_S)};
            n = epoll_pwait2(w->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), &ts, NULL);
            if (n < 0 && errno == ENOSYS) pwait2 = false;
        }
        if (!pwait2)
            n = epoll_wait(w->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])),
                           (int)((wait_ns + 999999) / 1000000));
        now = now_ns();
        for (i = 0; i < n; i++)
            on_event((struct conn *)evs[i].data.ptr, evs[i].events, now);
    }
    return NULL;
}

/* ---- command line ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hq_load --url http://127.0.0.1:PORT/webhooks/SOURCE --secret S\n"
            "               (--requests N | --duration S) [options]\n"
            "  --url URL           http:// only; the host must be a loopback IPv4 address or\n"
            "                      localhost (see --allow-remote)\n"
            "  --secret S          GitHub webhook secret (or env HQ_LOAD_SECRET)\n"
            "  --connections C     keep-alive connections (default 32, max %d)\n"
            "  --threads T         epoll threads (default min(2, C))\n"
            "  --requests N        total requests to send\n"
            "  --duration S        stop starting requests after S seconds (default 10 when\n"
            "                      --requests is not given)\n"
            "  --rate R            total requests/s, open loop, paced per connection; latency is\n"
            "                      measured from each request's scheduled time (0 = as fast as\n"
            "                      the server answers, one request in flight per connection)\n"
            "  --body-bytes B      JSON body size (default 1024)\n"
            "  --event TYPE        X-GitHub-Event (default push)\n"
            "  --prefix P          delivery id prefix; ids are P-<n> (default hq<pid>)\n"
            "  --ids-out FILE      write each delivery id answered 202, one per line\n"
            "  --timeout-ms MS     per request and per connect (default 10000)\n"
            "  --max-errors N      stop after N connection errors (default 1000, 0 = never)\n"
            "  --progress          print the completed count every second (stderr)\n"
            "  --allow-remote      allow a non-loopback target\n"
            "Prints a report and a final line\n"
            "  RESULT conns=C rps=R p50_ms=.. p99_ms=.. ok=N errors=N ...\n"
            "rps counts 2xx answers per second; errors counts requests that got no 2xx answer.\n"
            "Exit: 0 all requests answered 2xx, 1 some did not (or none was sent), 2 usage.\n",
            MAX_CONNS);
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s == '-') return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;

    if (!s || !*s) return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

/* http://HOST[:PORT]/PATH -> O.host, O.addr, O.path. */
static int parse_url(const char *url)
{
    const char *p, *slash, *colon;
    char hostonly[256];
    uint64_t port = 80;
    size_t hl;

    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "hq_load: only http:// URLs are supported\n");
        return -1;
    }
    p = url + 7;
    slash = strchr(p, '/');
    if (!slash) slash = p + strlen(p);
    hl = (size_t)(slash - p);
    if (hl == 0 || hl >= sizeof(O.host)) return -1;
    memcpy(O.host, p, hl);
    O.host[hl] = '\0';
    snprintf(O.path, sizeof(O.path), "%s", *slash ? slash : "/");
    if (strlen(slash) >= sizeof(O.path)) return -1;
    colon = strchr(O.host, ':');
    if (colon) {
        if (parse_u64(colon + 1, 1, 65535, &port) != 0) return -1;
        hl = (size_t)(colon - O.host);
    }
    memcpy(hostonly, O.host, hl);
    hostonly[hl] = '\0';
    memset(&O.addr, 0, sizeof(O.addr));
    O.addr.sin_family = AF_INET;
    O.addr.sin_port = htons((uint16_t)port);
    if (strcmp(hostonly, "localhost") == 0) {
        O.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (inet_pton(AF_INET, hostonly, &O.addr.sin_addr) != 1) {
        fprintf(stderr, "hq_load: the host must be an IPv4 address or localhost\n");
        return -1;
    }
    if (!O.allow_remote && (ntohl(O.addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "hq_load: refusing a non-loopback target (use --allow-remote)\n");
        return -1;
    }
    return 0;
}

static void on_signal(int sig)
{
    (void)sig;
    if (atomic_load(&g_stop)) _exit(130);
    atomic_store(&g_stop, 1);
}

/* One known-answer check of the reusable HMAC context against OpenSSL's one-shot HMAC(). */
static int hmac_self_check(struct worker *w)
{
    static const char msg[] = "{\"hq_load\":\"self-check\"}";
    unsigned char ref[32];
    unsigned int rlen = 0;
    char a[65], b[65];
    size_t i;
    int round;

    if (!HMAC(EVP_sha256(), O.secret, (int)O.secret_len, (const unsigned char *)msg,
              sizeof(msg) - 1, ref, &rlen) ||
        rlen != 32)
        return -1;
    for (i = 0; i < 32; i++) {
        b[2 * i] = HEXD[ref[i] >> 4];
        b[2 * i + 1] = HEXD[ref[i] & 15];
    }
    b[64] = '\0';
    for (round = 0; round < 2; round++) /* twice: the re-init with the kept key must work */
        if (sign_body(w, msg, sizeof(msg) - 1, a) != 0 || strcmp(a, b) != 0) return -1;
    return 0;
}

int main(int argc, char **argv)
{
    static struct stats tot;
    struct worker *ws = NULL;
    struct conn *conns = NULL;
    const char *url = NULL;
    char prefix_buf[32];
    uint64_t u;
    int64_t t_end, last_print;
    double elapsed, rps, all_rps, cpu_s = 0;
    struct rusage ru;
    uint64_t errors;
    int i, rc = 1, started = 0;
    FILE *ids = NULL;
    struct sigaction sa;

    O.conns = 32;
    O.threads = 0;
    O.body_bytes = 1024;
    O.event = "push";
    O.timeout_ms = 10000;
    O.max_errors = 1000;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--allow-remote") == 0) {
            O.allow_remote = true;
            takes = false;
        } else if (strcmp(a, "--progress") == 0) {
            O.progress = true;
            takes = false;
        } else if (!v) {
            fprintf(stderr, "hq_load: %s needs a value (or is unknown)\n", a);
            usage(stderr);
            return 2;
        } else if (strcmp(a, "--url") == 0) {
            url = v;
        } else if (strcmp(a, "--secret") == 0) {
            O.secret = v;
        } else if (strcmp(a, "--connections") == 0 || strcmp(a, "-c") == 0) {
            if (parse_u64(v, 1, MAX_CONNS, &u) != 0) goto bad;
            O.conns = (int)u;
        } else if (strcmp(a, "--threads") == 0) {
            if (parse_u64(v, 1, MAX_THREADS, &u) != 0) goto bad;
            O.threads = (int)u;
        } else if (strcmp(a, "--requests") == 0 || strcmp(a, "-n") == 0) {
            if (parse_u64(v, 1, UINT64_C(1) << 40, &O.requests) != 0) goto bad;
        } else if (strcmp(a, "--duration") == 0 || strcmp(a, "-d") == 0) {
            if (parse_double(v, 0.001, 86400, &O.duration_s) != 0) goto bad;
        } else if (strcmp(a, "--rate") == 0) {
            if (parse_double(v, 0, 1e7, &O.rate) != 0) goto bad;
        } else if (strcmp(a, "--body-bytes") == 0) {
            if (parse_u64(v, 1, MAX_BODY_BYTES, &u) != 0) goto bad;
            O.body_bytes = (size_t)u;
        } else if (strcmp(a, "--event") == 0) {
            O.event = v;
        } else if (strcmp(a, "--prefix") == 0) {
            O.prefix = v;
        } else if (strcmp(a, "--ids-out") == 0) {
            O.ids_out = v;
        } else if (strcmp(a, "--timeout-ms") == 0) {
            if (parse_u64(v, 1, 600000, &u) != 0) goto bad;
            O.timeout_ms = (int)u;
        } else if (strcmp(a, "--max-errors") == 0) {
            if (parse_u64(v, 0, UINT64_MAX, &O.max_errors) != 0) goto bad;
        } else {
            fprintf(stderr, "hq_load: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (takes) i++;
        continue;
    bad:
        fprintf(stderr, "hq_load: bad value for %s: '%s'\n", a, v);
        return 2;
    }
    if (!O.secret) O.secret = getenv("HQ_LOAD_SECRET");
    if (!url || !O.secret || !*O.secret) {
        fprintf(stderr, "hq_load: --url and --secret are required\n");
        usage(stderr);
        return 2;
    }
    O.secret_len = strlen(O.secret);
    if (parse_url(url) != 0) {
        fprintf(stderr, "hq_load: bad or refused URL '%s'\n", url);
        return 2;
    }
    if (O.requests == 0 && O.duration_s == 0) O.duration_s = 10;
    if (!O.prefix) {
        snprintf(prefix_buf, sizeof(prefix_buf), "hq%ld", (long)getpid());
        O.prefix = prefix_buf;
    }
    if (strlen(O.prefix) > 64 || strpbrk(O.prefix, "\r\n\"\\ ") || strlen(O.event) > 64 ||
        strpbrk(O.event, "\r\n")) {
        fprintf(stderr, "hq_load: --prefix and --event must be <= 64 characters; the prefix "
                        "without spaces, quotes or backslashes\n");
        return 2;
    }
    if (O.threads == 0) O.threads = O.conns < 2 ? O.conns : 2;
    if (O.threads > O.conns) O.threads = O.conns;

    g_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ws = calloc((size_t)O.threads, sizeof(*ws));
    conns = calloc((size_t)O.conns, sizeof(*conns));
    if (!g_mac || !ws || !conns) {
        fprintf(stderr, "hq_load: out of memory or no HMAC in OpenSSL\n");
        goto out;
    }
    for (i = 0; i < O.threads; i++) {
        struct worker *w = &ws[i];
        OSSL_PARAM params[2];
        char digest[] = "SHA256";

        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->mac = EVP_MAC_CTX_new(g_mac);
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
        params[1] = OSSL_PARAM_construct_end();
        if (w->ep < 0 || !w->mac ||
            !EVP_MAC_init(w->mac, (const unsigned char *)O.secret, O.secret_len, params)) {
            fprintf(stderr, "hq_load: cannot set up worker %d\n", i);
            goto out;
        }
        if (hmac_self_check(w) != 0) {
            fprintf(stderr, "hq_load: HMAC self-check failed\n");
            goto out;
        }
    }
    /* connections round-robin over the workers, each worker's slice contiguous */
    {
        int per = O.conns / O.threads, extra = O.conns % O.threads, next = 0;
        for (i = 0; i < O.threads; i++) {
            int n = per + (i < extra ? 1 : 0), j;
            ws[i].conns = &conns[next];
            ws[i].n = n;
            for (j = 0; j < n; j++) {
                struct conn *c = &conns[next + j];
                c->w = &ws[i];
                c->idx = next + j;
                c->fd = -1;
                c->st = C_CLOSED;
                c->rcap = 8192;
                c->rbuf = malloc(c->rcap);
                if (!c->rbuf) {
                    fprintf(stderr, "hq_load: out of memory\n");
                    goto out;
                }
            }
            next += n;
        }
    }
    if (O.ids_out) {
        ids = fopen(O.ids_out, "w");
        if (!ids) {
            fprintf(stderr, "hq_load: cannot write %s: %s\n", O.ids_out, strerror(errno));
            goto out;
        }
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    g_start_ns = now_ns();
    g_end_ns = O.duration_s > 0 ? g_start_ns + (int64_t)(O.duration_s * 1e9) : INT64_MAX;
    for (i = 0; i < O.conns; i++)
        conns[i].due_ns = O.rate > 0 ? g_start_ns + (int64_t)((double)i * 1e9 / O.rate) : 0;
    for (i = 0; i < O.threads; i++) {
        if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, "hq_load: cannot start a thread\n");
            atomic_store(&g_stop, 1);
            break;
        }
        started++;
    }
    last_print = g_start_ns;
    if (O.progress) {
        uint64_t prev = 0;
        /* the workers end by themselves; print while any is still running */
        for (;;) {
            int alive = 0, j;
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
            for (j = 0; j < started; j++)
                if (pthread_tryjoin_np(ws[j].tid, NULL) == 0) ws[j].tid = 0;
            for (j = 0; j < started; j++)
                alive += ws[j].tid != 0;
            if (!alive) break;
            if (now_ns() - last_print >= NS_PER_S) {
                uint64_t c = atomic_load(&g_completed);
                last_print = now_ns();
                fprintf(stderr, "hq_load: t=%.0fs completed=%" PRIu64 " (+%" PRIu64 "/s)\n",
                        (double)(last_print - g_start_ns) / 1e9, c, c - prev);
                prev = c;
            }
        }
    }
    for (i = 0; i < started; i++)
        if (ws[i].tid) pthread_join(ws[i].tid, NULL);
    t_end = now_ns();
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;

    for (i = 0; i < started; i++) {
        struct stats *s = &ws[i].s;
        int k;
        tot.sent += s->sent;
        tot.completed += s->completed;
        tot.ok += s->ok;
        for (k = 0; k < 600; k++)
            tot.status[k] += s->status[k];
        tot.other_status += s->other_status;
        tot.connect_errors += s->connect_errors;
        tot.io_errors += s->io_errors;
        tot.timeouts += s->timeouts;
        tot.protocol_errors += s->protocol_errors;
        tot.retried += s->retried;
        tot.reconnects += s->reconnects;
        tot.id_mismatch += s->id_mismatch;
        if (s->last_done_ns > tot.last_done_ns) tot.last_done_ns = s->last_done_ns;
        hist_merge(&tot.h, &s->h);
        if (ids && ws[i].ids_len && fwrite(ws[i].ids, 1, ws[i].ids_len, ids) != ws[i].ids_len) {
            fprintf(stderr, "hq_load: writing %s failed\n", O.ids_out);
            ws[i].oom = true;
        }
        if (ws[i].oom) fprintf(stderr, "hq_load: WARNING: the ids file is incomplete\n");
    }
    if (ids) {
        if (fclose(ids) != 0) fprintf(stderr, "hq_load: writing %s failed\n", O.ids_out);
        ids = NULL;
    }

    /* the run lasts from the start to the last answer (or to the end when nothing came) */
    elapsed =
        (double)((tot.last_done_ns > g_start_ns ? tot.last_done_ns : t_end) - g_start_ns) / 1e9;
    if (elapsed <= 0) elapsed = 1e-9;
    rps = (double)tot.ok / elapsed;
    all_rps = (double)tot.completed / elapsed;
    errors = (tot.completed - tot.ok) + tot.io_errors + tot.timeouts + tot.protocol_errors;

    printf("hq_load: %s conns=%d threads=%d body=%zuB rate=%s", url, O.conns, O.threads,
           O.body_bytes, O.rate > 0 ? "" : "max");
    if (O.rate > 0) printf("%.1f/s", O.rate);
    printf(" elapsed=%.2fs%s\n", elapsed, atomic_load(&g_stop) ? " (stopped early)" : "");
    printf("requests: sent=%" PRIu64 " answered=%" PRIu64 " ok(2xx)=%" PRIu64 "\n", tot.sent,
           tot.completed, tot.ok);
    printf("status:");
    for (i = 0; i < 600; i++)
        if (tot.status[i]) printf(" %d=%" PRIu64, i, tot.status[i]);
    if (tot.other_status) printf(" other=%" PRIu64, tot.other_status);
    printf("\n");
    printf("errors: connect=%" PRIu64 " io=%" PRIu64 " timeout=%" PRIu64 " protocol=%" PRIu64
           " resent=%" PRIu64 " reconnects=%" PRIu64 " id_mismatch=%" PRIu64 "\n",
           tot.connect_errors, tot.io_errors, tot.timeouts, tot.protocol_errors, tot.retried,
           tot.reconnects, tot.id_mismatch);
    printf("throughput: %.1f req/s 2xx, %.1f req/s answered\n", rps, all_rps);
    printf("hq_load cpu: %.2f s (%.0f%% of one core over %.2f s)\n", cpu_s,
           100.0 * cpu_s / ((double)(t_end - g_start_ns) / 1e9),
           (double)(t_end - g_start_ns) / 1e9);
    printf("latency ms (%s, %" PRIu64 " answers): p50=%.3f p90=%.3f p99=%.3f p99.9=%.3f "
           "max=%.3f\n",
           O.rate > 0 ? "from scheduled send time" : "from first byte sent", tot.h.count,
           hist_quantile_ms(&tot.h, 0.50), hist_quantile_ms(&tot.h, 0.90),
           hist_quantile_ms(&tot.h, 0.99), hist_quantile_ms(&tot.h, 0.999),
           (double)tot.h.max_us / 1000.0);
    printf("RESULT conns=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f ok=%" PRIu64 " errors=%" PRIu64
           " p90_ms=%.3f p999_ms=%.3f max_ms=%.3f sent=%" PRIu64 " conn_errors=%" PRIu64
           " rate=%.1f elapsed_s=%.2f cpu_pct=%.0f\n",
           O.conns, rps, hist_quantile_ms(&tot.h, 0.50), hist_quantile_ms(&tot.h, 0.99), tot.ok,
           errors, hist_quantile_ms(&tot.h, 0.90), hist_quantile_ms(&tot.h, 0.999),
           (double)tot.h.max_us / 1000.0, tot.sent, tot.connect_errors, O.rate, elapsed,
           100.0 * cpu_s / ((double)(t_end - g_start_ns) / 1e9));
    fflush(stdout);
    rc = (errors == 0 && tot.ok > 0) ? 0 : 1;
out:
    if (ids) fclose(ids);
    if (ws) {
        for (i = 0; i < O.threads; i++) {
            if (ws[i].ep > 0) close(ws[i].ep);
            EVP_MAC_CTX_free(ws[i].mac);
            free(ws[i].ids);
        }
    }
    if (conns) {
        for (i = 0; i < O.conns; i++) {
            if (conns[i].fd >= 0) close(conns[i].fd);
            free(conns[i].req);
            free(conns[i].rbuf);
        }
    }
    free(ws);
    free(conns);
    EVP_MAC_free(g_mac);
    return rc;
}
