/* broker_ceiling: how fast can this broker take confirmed, persistent publishes at all?
 *
 * A plain rabbitmq-c publisher (no hookmq code in the publish path): C connections, each in
 * its own thread with a window of W unconfirmed publishes (pipelined confirms, acks with
 * multiple=1 settle every tag <= delivery tag), publishing persistent messages of SIZE bytes
 * to a topic exchange with one queue bound with "#" - the same shape as the gateway's path
 * into hookmq.events. Prints confirmed msgs/s. The gateway's benchmark is judged against it.
 *
 *   hq_broker_ceiling [--uri URI] [--exchange NAME] [--queue NAME] [--queue-type quorum|classic]
 *                     [--size BYTES] [--window W] [--connections C] [--seconds S | --count N]
 *                     [--no-declare] [--keep] [--event-headers] [--steps N]
 *
 * --event-headers gives every message what hookmq-gateway puts on a GitHub event (a timestamp
 * and the seven headers hookmq-source, hookmq-event-type, hookmq-received-at, hookmq-scheme,
 * http-x-github-event, http-x-github-delivery, http-x-hub-signature-256, with realistic
 * values): the broker's ceiling for the messages the gateway actually publishes. --steps N adds
 * what a worker's retry copy carries after N durable steps of 1 KiB: a `hookmq-steps` field
 * table of N entries (step name -> 1 KiB of bytes).
 *
 * By default it declares the exchange (topic, durable) and the queue (durable, of the given
 * type) bound with "#", and deletes the queue at the end (--keep leaves it). Keep runs short
 * on shared machines (--seconds <= 20). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hq__amqp_inc.h"

struct cfg {
    const char *uri, *exchange, *queue, *qtype, *routing_key;
    size_t size;
    int window, conns, seconds;
    long count;
    bool declare, keep, event_headers;
    int n_headers; /* with event_headers: the first n of the seven (default 7) */
    int n_steps;   /* a hookmq-steps table of n_steps entries of STEP_BYTES */
};

#define MAX_STEPS 8
#define STEP_BYTES 1024

struct worker {
    const struct cfg *cfg;
    int idx;
    pthread_t thr;
    long confirmed, nacked;
    int failed;
    char err[256];
};

static atomic_long budget; /* messages left to publish in --count mode */
static atomic_int stop_flag;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int check_reply(amqp_rpc_reply_t r, const char *what, char *err, size_t errsz)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        snprintf(err, errsz, "%s: %s", what, amqp_error_string2(r.library_error));
    else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
             r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *m = r.reply.decoded;
        snprintf(err, errsz, "%s: %d %.*s", what, m->reply_code, (int)m->reply_text.len,
                 (const char *)m->reply_text.bytes);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
               r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *m = r.reply.decoded;
        snprintf(err, errsz, "%s: %d %.*s", what, m->reply_code, (int)m->reply_text.len,
                 (const char *)m->reply_text.bytes);
    } else {
        snprintf(err, errsz, "%s: failed", what);
    }
    return -1;
}

static amqp_connection_state_t open_conn(const char *uri, char *err, size_t errsz)
{
    struct amqp_connection_info ci;
    amqp_connection_state_t st;
    amqp_socket_t *sock;
    struct timeval tv = {10, 0};
    char *copy = strdup(uri);
    int s;

    if (!copy)
        return NULL;
    if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) {
        snprintf(err, errsz, "bad URI");
        free(copy);
        return NULL;
    }
    st = amqp_new_connection();
    sock = ci.ssl ? amqp_ssl_socket_new(st) : amqp_tcp_socket_new(st);
    s = sock ? amqp_socket_open_noblock(sock, ci.host, ci.port, &tv) : AMQP_STATUS_NO_MEMORY;
    if (s != AMQP_STATUS_OK) {
        snprintf(err, errsz, "connect: %s", amqp_error_string2(s));
        goto fail;
    }
    (void)amqp_set_rpc_timeout(st, &tv);
    if (check_reply(amqp_login(st, ci.vhost, 0, 131072, 30, AMQP_SASL_METHOD_PLAIN, ci.user,
                               ci.password),
                    "login", err, errsz) != 0)
        goto fail;
    amqp_channel_open(st, 1);
    if (check_reply(amqp_get_rpc_reply(st), "channel.open", err, errsz) != 0)
        goto fail;
    free(copy);
    return st;
fail:
    amqp_destroy_connection(st);
    free(copy);
    return NULL;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    const struct cfg *c = w->cfg;
    amqp_connection_state_t st = open_conn(c->uri, w->err, sizeof(w->err));
    amqp_basic_properties_t props;
    amqp_bytes_t body;
    char *payload = NULL, mid[64], sig[80];
    amqp_table_entry_t hdr[8], steps[MAX_STEPS];
    static char step_names[MAX_STEPS][16], step_val[STEP_BYTES];
    uint64_t next = 1, lo = 1; /* unconfirmed tags: [lo, next) */
    long seq = 0;
    bool draining = false;
    double drain_until = 0;

    if (!st) {
        w->failed = 1;
        return NULL;
    }
    amqp_confirm_select(st, 1);
    if (check_reply(amqp_get_rpc_reply(st), "confirm.select", w->err, sizeof(w->err)) != 0) {
        w->failed = 1;
        goto out;
    }
    payload = malloc(c->size ? c->size : 1);
    if (!payload) {
        w->failed = 1;
        goto out;
    }
    memset(payload, 'x', c->size);
    body.bytes = payload;
    body.len = c->size;
    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG;
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.content_type = amqp_cstring_bytes("application/octet-stream");
    if (c->event_headers) {
        props._flags |= AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_HEADERS_FLAG;
        props.content_type = amqp_cstring_bytes("application/json");
        /* what the gateway puts on a GitHub event; NULL values are set per message */
        static const char *const names[7] = {
            "hookmq-source",       "hookmq-event-type",      "hookmq-received-at",
            "hookmq-scheme",       "http-x-github-event",    "http-x-github-delivery",
            "http-x-hub-signature-256"};
        const char *values[7] = {"github", "push", NULL, "github", "push", NULL, sig};
        int k;

        memcpy(sig, "sha256=", 7);
        memset(sig + 7, 'a', 64);
        sig[71] = '\0';
        for (k = 0; k < 7; k++) {
            hdr[k].key = amqp_cstring_bytes(names[k]);
            hdr[k].value.kind = k == 2 ? AMQP_FIELD_KIND_I64 : AMQP_FIELD_KIND_UTF8;
            if (values[k])
                hdr[k].value.value.bytes = amqp_cstring_bytes(values[k]);
        }
        props.headers.num_entries = c->n_headers;
        if (c->n_steps > 0) {
            memset(step_val, 's', sizeof(step_val));
            for (k = 0; k < c->n_steps; k++) {
                snprintf(step_names[k], sizeof(step_names[k]), "step-%d", k);
                steps[k].key = amqp_cstring_bytes(step_names[k]);
                steps[k].value.kind = AMQP_FIELD_KIND_BYTES;
                steps[k].value.value.bytes.bytes = step_val;
                steps[k].value.value.bytes.len = sizeof(step_val);
            }
            hdr[c->n_headers].key = amqp_cstring_bytes("hookmq-steps");
            hdr[c->n_headers].value.kind = AMQP_FIELD_KIND_TABLE;
            hdr[c->n_headers].value.value.table.num_entries = c->n_steps;
            hdr[c->n_headers].value.value.table.entries = steps;
            props.headers.num_entries++;
        }
        if (props.headers.num_entries == 0)
            props._flags &= ~(amqp_flags_t)AMQP_BASIC_HEADERS_FLAG;
        props.headers.entries = hdr;
    }

    for (;;) {
        amqp_frame_t f;
        struct timeval tv = {0, 0};
        int s;

        if (!draining && atomic_load(&stop_flag)) {
            draining = true;
            drain_until = now_s() + 10.0;
        }
        if (draining && (lo == next || now_s() > drain_until))
            break;
        /* fill the window */
        while (!draining && next - lo < (uint64_t)c->window) {
            if (c->count > 0 && atomic_fetch_sub(&budget, 1) <= 0) {
                draining = true;
                drain_until = now_s() + 10.0;
                break;
            }
            snprintf(mid, sizeof(mid), "ceiling-%d-%ld", w->idx, seq++);
            props.message_id = amqp_cstring_bytes(mid);
            if (c->event_headers) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                props.timestamp = (uint64_t)ts.tv_sec;
                hdr[2].value.value.i64 = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
                hdr[5].value.value.bytes = props.message_id; /* the delivery id is the id */
            }
            s = amqp_basic_publish(st, 1, amqp_cstring_bytes(c->exchange),
                                   amqp_cstring_bytes(c->routing_key), 0, 0, &props, body);
            if (s != AMQP_STATUS_OK) {
                snprintf(w->err, sizeof(w->err), "publish: %s", amqp_error_string2(s));
                w->failed = 1;
                goto out;
            }
            next++;
        }
        /* read confirms: wait when the window is full (or draining), else just poll */
        if (next - lo >= (uint64_t)c->window || draining)
            tv.tv_usec = 100000;
        amqp_maybe_release_buffers(st);
        s = amqp_simple_wait_frame_noblock(st, &f, &tv);
        if (s == AMQP_STATUS_TIMEOUT)
            continue;
        if (s != AMQP_STATUS_OK) {
            snprintf(w->err, sizeof(w->err), "wait: %s", amqp_error_string2(s));
            w->failed = 1;
            goto out;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD ||
            f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            bool ack = f.payload.method.id == AMQP_BASIC_ACK_METHOD;
            uint64_t tag = ack ? ((amqp_basic_ack_t *)f.payload.method.decoded)->delivery_tag
                               : ((amqp_basic_nack_t *)f.payload.method.decoded)->delivery_tag;
            bool multiple = ack ? ((amqp_basic_ack_t *)f.payload.method.decoded)->multiple
                                : ((amqp_basic_nack_t *)f.payload.method.decoded)->multiple;
            long n = multiple ? (long)(tag - lo + 1) : 1;

            /* acks arrive in order in practice; count out-of-order singles as one */
            if (ack)
                w->confirmed += n;
            else
                w->nacked += n;
            if (tag >= lo)
                lo = multiple ? tag + 1 : (tag == lo ? lo + 1 : lo);
        } else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                   f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
            snprintf(w->err, sizeof(w->err), "the broker closed the channel/connection");
            w->failed = 1;
            goto out;
        }
    }
out:
    if (!w->failed) {
        amqp_channel_close(st, 1, AMQP_REPLY_SUCCESS);
        amqp_connection_close(st, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(st);
    free(payload);
    return NULL;
}

static int declare(const struct cfg *c, bool delete_queue)
{
    char err[256];
    amqp_connection_state_t st = open_conn(c->uri, err, sizeof(err));
    amqp_table_entry_t e;
    amqp_table_t args = {0, NULL};
    int rc = -1;

    if (!st) {
        fprintf(stderr, "broker_ceiling: %s\n", err);
        return -1;
    }
    if (delete_queue) {
        amqp_queue_delete(st, 1, amqp_cstring_bytes(c->queue), 0, 0);
        rc = check_reply(amqp_get_rpc_reply(st), "queue.delete", err, sizeof(err));
        goto out;
    }
    amqp_exchange_declare(st, 1, amqp_cstring_bytes(c->exchange), amqp_cstring_bytes("topic"), 0,
                          1, 0, 0, amqp_empty_table);
    if (check_reply(amqp_get_rpc_reply(st), "exchange.declare", err, sizeof(err)) != 0)
        goto out;
    if (strcmp(c->qtype, "classic") != 0) {
        e.key = amqp_cstring_bytes("x-queue-type");
        e.value.kind = AMQP_FIELD_KIND_UTF8;
        e.value.value.bytes = amqp_cstring_bytes(c->qtype);
        args.num_entries = 1;
        args.entries = &e;
    }
    amqp_queue_declare(st, 1, amqp_cstring_bytes(c->queue), 0, 1, 0, 0, args);
    if (check_reply(amqp_get_rpc_reply(st), "queue.declare", err, sizeof(err)) != 0)
        goto out;
    amqp_queue_bind(st, 1, amqp_cstring_bytes(c->queue), amqp_cstring_bytes(c->exchange),
                    amqp_cstring_bytes("#"), amqp_empty_table);
    if (check_reply(amqp_get_rpc_reply(st), "queue.bind", err, sizeof(err)) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "broker_ceiling: %s\n", err);
    else {
        amqp_channel_close(st, 1, AMQP_REPLY_SUCCESS);
        amqp_connection_close(st, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(st);
    return rc;
}

static long parse_long(const char *s, long lo, long hi, const char *what)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "broker_ceiling: %s must be %ld..%ld\n", what, lo, hi);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: hq_broker_ceiling [--uri URI] [--exchange NAME] [--queue NAME]\n"
                    "         [--queue-type quorum|classic] [--size BYTES] [--window W]\n"
                    "         [--connections C] [--seconds S | --count N] [--no-declare] [--keep]\n"
                    "         [--routing-key KEY]   (default bench.ceiling) [--event-headers]\n"
                    "         [--headers N]   (the event's timestamp and first N of its 7 headers)\n"
                    "         [--steps N]     (and a hookmq-steps table of N steps of 1 KiB)\n");
}

int main(int argc, char **argv)
{
    struct cfg c = {"amqp://guest:guest@127.0.0.1:5672/%2f", "hookmq.bench", "hookmq.bench.ceiling",
                    "quorum", "bench.ceiling", 1024, 512, 1, 10, 0, true, false, false, 7, 0};
    struct worker *w;
    long confirmed = 0, nacked = 0;
    double t0, dt;
    int i, failed = 0;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-declare") == 0) {
            c.declare = false;
            continue;
        }
        if (strcmp(a, "--keep") == 0) {
            c.keep = true;
            continue;
        }
        if (strcmp(a, "--event-headers") == 0) {
            c.event_headers = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        }
        if (!v) {
            usage();
            return 2;
        }
        if (strcmp(a, "--headers") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 0 || n > 7) {
                fprintf(stderr, "hq_broker_ceiling: --headers takes 0..7\n");
                return 2;
            }
            c.event_headers = true;
            c.n_headers = (int)n;
            i++;
            continue;
        }
        if (strcmp(a, "--steps") == 0) {
            c.n_steps = (int)parse_long(v, 0, MAX_STEPS, "--steps");
            c.event_headers = true;
            i++;
            continue;
        }
        i++;
        if (strcmp(a, "--uri") == 0)
            c.uri = v;
        else if (strcmp(a, "--exchange") == 0)
            c.exchange = v;
        else if (strcmp(a, "--queue") == 0)
            c.queue = v;
        else if (strcmp(a, "--queue-type") == 0)
            c.qtype = v;
        else if (strcmp(a, "--routing-key") == 0)
            c.routing_key = v;
        else if (strcmp(a, "--size") == 0)
            c.size = (size_t)parse_long(v, 0, 64L << 20, "--size");
        else if (strcmp(a, "--window") == 0)
            c.window = (int)parse_long(v, 1, 65535, "--window");
        else if (strcmp(a, "--connections") == 0)
            c.conns = (int)parse_long(v, 1, 64, "--connections");
        else if (strcmp(a, "--seconds") == 0)
            c.seconds = (int)parse_long(v, 1, 600, "--seconds");
        else if (strcmp(a, "--count") == 0)
            c.count = parse_long(v, 1, 1000000000L, "--count");
        else {
            usage();
            return 2;
        }
    }
    if (strcmp(c.qtype, "quorum") != 0 && strcmp(c.qtype, "classic") != 0) {
        usage();
        return 2;
    }
    if (c.declare && declare(&c, false) != 0)
        return 1;
    atomic_store(&budget, c.count);
    w = calloc((size_t)c.conns, sizeof(*w));
    if (!w)
        return 1;
    t0 = now_s();
    for (i = 0; i < c.conns; i++) {
        w[i].cfg = &c;
        w[i].idx = i;
        if (pthread_create(&w[i].thr, NULL, run, &w[i]) != 0)
            return 1;
    }
    if (c.count == 0) {
        struct timespec ts = {c.seconds, 0};
        nanosleep(&ts, NULL);
        atomic_store(&stop_flag, 1);
    }
    for (i = 0; i < c.conns; i++) {
        pthread_join(w[i].thr, NULL);
        confirmed += w[i].confirmed;
        nacked += w[i].nacked;
        if (w[i].failed) {
            failed++;
            fprintf(stderr, "broker_ceiling: connection %d: %s\n", i, w[i].err);
        }
    }
    dt = now_s() - t0;
    printf("broker_ceiling: queue_type=%s size=%zu window=%d connections=%d\n", c.qtype, c.size,
           c.window, c.conns);
    printf("confirmed=%ld nacked=%ld seconds=%.2f msgs_per_s=%.0f\n", confirmed, nacked, dt,
           dt > 0 ? (double)confirmed / dt : 0.0);
    if (c.declare && !c.keep)
        (void)declare(&c, true);
    free(w);
    return failed ? 1 : 0;
}
