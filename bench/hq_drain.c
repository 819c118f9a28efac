/* hq_drain: consume a queue to empty and check it against the ids a load run got 202 for.
 *
 * Consumes --queue with basic.consume (manual acks, prefetch 500, acks with multiple=1) until
 * no message has arrived for --idle-ms (or --max-ms has passed), then compares the message_id
 * of every message with the ids files (hq_load --ids-out; one id per line, several --ids may
 * be given) and prints
 *   expected=N received=M distinct=D missing=X duplicates=Y unexpected=Z
 * where expected counts the distinct ids in the files, received every message consumed,
 * distinct the distinct message_ids among them, missing the expected ids never received,
 * duplicates the messages beyond the first for an id (received - distinct - no_id), and
 * unexpected the distinct received ids that no file lists. Exit 0 when nothing is missing,
 * 1 when something is (or on a broker error), 2 on a usage error.
 *
 * Acked messages are gone: run it on a queue that only the benchmark uses. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "hq__amqp_inc.h"

#define MAX_IDS_FILES 16
#define MAX_ID_LEN 1024
#define MAX_FILE_BYTES (1024LL * 1024 * 1024)

struct entry {
    char *id; /* NULL = free slot; expected ids point into a file buffer, others are owned */
    uint32_t len;
    bool expected;
    bool owned;
    uint64_t count; /* times received */
};

struct set {
    struct entry *e;
    size_t cap, n;
};

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int set_grow(struct set *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024, i;
    struct entry *e = calloc(cap, sizeof(*e));

    if (!e) return -1;
    for (i = 0; i < s->cap; i++) {
        size_t j;
        if (!s->e[i].id) continue;
        j = (size_t)hash(s->e[i].id, s->e[i].len) & (cap - 1);
        while (e[j].id)
            j = (j + 1) & (cap - 1);
        e[j] = s->e[i];
    }
    free(s->e);
    s->e = e;
    s->cap = cap;
    return 0;
}

/* Find id; when absent and add is set, insert it (pointing at id, not copied). NULL when absent
 * and not added, or out of memory. *added tells whether it was inserted. */
static struct entry *set_get(struct set *s, char *id, size_t len, bool add, bool *added)
{
    size_t j;

    *added = false;
    if ((s->n + 1) * 2 > s->cap && set_grow(s) != 0) return NULL;
    j = (size_t)hash(id, len) & (s->cap - 1);
    while (s->e[j].id) {
        if (s->e[j].len == len && memcmp(s->e[j].id, id, len) == 0) return &s->e[j];
        j = (j + 1) & (s->cap - 1);
    }
    if (!add) return NULL;
    s->e[j].id = id;
    s->e[j].len = (uint32_t)len;
    s->n++;
    *added = true;
    return &s->e[j];
}

/* Read path whole into *buf (caller frees) and add its lines as expected ids. */
static int load_ids(struct set *s, const char *path, char **buf, uint64_t *lines, uint64_t *dups)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL, *p, *end;
    long sz;
    size_t got;

    if (!f) {
        fprintf(stderr, "hq_drain: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || sz > MAX_FILE_BYTES ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "hq_drain: cannot read %s (or larger than 1 GiB)\n", path);
        fclose(f);
        return -1;
    }
    b = malloc((size_t)sz + 1);
    if (!b) {
        fclose(f);
        return -1;
    }
    got = fread(b, 1, (size_t)sz, f);
    fclose(f);
    if (got != (size_t)sz) {
        fprintf(stderr, "hq_drain: short read on %s\n", path);
        free(b);
        return -1;
    }
    b[sz] = '\n';
    *buf = b;
    p = b;
    end = b + sz;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p) + 1);
        size_t len = (size_t)(nl - p);
        bool added;
        struct entry *e;

        if (len > 0 && p[len - 1] == '\r') len--;
        if (len > 0 && len <= MAX_ID_LEN) {
            e = set_get(s, p, len, true, &added);
            if (!e) return -1;
            e->expected = true;
            (*lines)++;
            if (!added) (*dups)++;
        }
        p = nl + 1;
    }
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One message for the books. */
static int note(struct set *s, const amqp_basic_properties_t *p, uint64_t *no_id)
{
    struct entry *e;
    bool added;
    char *copy;
    size_t len;

    if (!(p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) || p->message_id.len == 0) {
        (*no_id)++;
        return 0;
    }
    len = p->message_id.len > MAX_ID_LEN ? MAX_ID_LEN : p->message_id.len;
    e = set_get(s, p->message_id.bytes, len, false, &added);
    if (!e) {
        copy = malloc(len + 1);
        if (!copy) return -1;
        memcpy(copy, p->message_id.bytes, len);
        copy[len] = '\0';
        e = set_get(s, copy, len, true, &added);
        if (!e) {
            free(copy);
            return -1;
        }
        e->owned = true;
    }
    e->count++;
    return 0;
}

static const char *reply_text(amqp_rpc_reply_t r, char *buf, size_t n)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return "ok";
    case AMQP_RESPONSE_NONE:
        return "no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return amqp_error_string2(r.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, n, "channel closed by the broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            return buf;
        }
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(buf, n, "connection closed by the broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
            return buf;
        }
        snprintf(buf, n, "broker error (method 0x%08x)", (unsigned)r.reply.id);
        return buf;
    }
    return "unknown";
}

static void usage(FILE *f)
{
    fprintf(f, "usage: hq_drain --queue NAME [--ids FILE]... [options]\n"
               "  --host H          broker host (default 127.0.0.1)\n"
               "  --port P          AMQP port (default 5672)\n"
               "  --user U --password P --vhost V   (default guest, guest, /)\n"
               "  --queue NAME      the queue to empty (its messages are acked and gone)\n"
               "  --ids FILE        expected message ids, one per line (repeatable)\n"
               "  --idle-ms MS      stop when nothing arrived for MS ms (default 3000)\n"
               "  --max-ms MS       stop after MS ms in any case (default 120000)\n"
               "  --prefetch N      basic.qos prefetch (default 500)\n"
               "  --show-missing N  list up to N missing ids on stderr (default 10)\n"
               "Prints: expected=N received=M distinct=D missing=X duplicates=Y unexpected=Z\n"
               "Exit: 0 nothing missing, 1 ids missing or a broker error, 2 usage.\n");
}

static int parse_num(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    if (!s || !*s) return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *user = "guest", *pass = "guest", *vhost = "/";
    const char *queue = NULL, *ids_path[MAX_IDS_FILES];
    char *ids_buf[MAX_IDS_FILES] = {0};
    int n_ids = 0, i, rc = 1;
    long port = 5672, idle_ms = 3000, max_ms = 120000, prefetch = 500, show_missing = 10;
    struct set set = {0};
    uint64_t lines = 0, file_dups = 0, received = 0, no_id = 0, unacked = 0, last_tag = 0;
    uint64_t expected = 0, distinct = 0, missing = 0, duplicates = 0, unexpected = 0, shown = 0;
    amqp_connection_state_t conn = NULL;
    amqp_socket_t *sock;
    amqp_rpc_reply_t r;
    bool channel_open = false, logged_in = false, failed = false;
    int64_t t_start, t_last, t_first = 0;
    char ebuf[256];
    size_t k;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "hq_drain: %s needs a value (or is unknown)\n", a);
            usage(stderr);
            return 2;
        }
        if (strcmp(a, "--host") == 0)
            host = v;
        else if (strcmp(a, "--port") == 0) {
            if (parse_num(v, 1, 65535, &port) != 0) goto bad;
        } else if (strcmp(a, "--user") == 0)
            user = v;
        else if (strcmp(a, "--password") == 0)
            pass = v;
        else if (strcmp(a, "--vhost") == 0)
            vhost = v;
        else if (strcmp(a, "--queue") == 0)
            queue = v;
        else if (strcmp(a, "--ids") == 0) {
            if (n_ids == MAX_IDS_FILES) {
                fprintf(stderr, "hq_drain: at most %d --ids files\n", MAX_IDS_FILES);
                return 2;
            }
            ids_path[n_ids++] = v;
        } else if (strcmp(a, "--idle-ms") == 0) {
            if (parse_num(v, 1, 3600000, &idle_ms) != 0) goto bad;
        } else if (strcmp(a, "--max-ms") == 0) {
            if (parse_num(v, 1, 86400000, &max_ms) != 0) goto bad;
        } else if (strcmp(a, "--prefetch") == 0) {
            if (parse_num(v, 1, 65535, &prefetch) != 0) goto bad;
        } else if (strcmp(a, "--show-missing") == 0) {
            if (parse_num(v, 0, 1000000, &show_missing) != 0) goto bad;
        } else {
            fprintf(stderr, "hq_drain: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        continue;
    bad:
        fprintf(stderr, "hq_drain: bad value for %s: '%s'\n", a, v);
        return 2;
    }
    if (!queue) {
        fprintf(stderr, "hq_drain: --queue is required\n");
        usage(stderr);
        return 2;
    }
    for (i = 0; i < n_ids; i++)
        if (load_ids(&set, ids_path[i], &ids_buf[i], &lines, &file_dups) != 0) goto out;

    conn = amqp_new_connection();
    sock = conn ? amqp_tcp_socket_new(conn) : NULL;
    if (!sock) {
        fprintf(stderr, "hq_drain: out of memory\n");
        goto out;
    }
    {
        struct timeval tv = {5, 0};
        int st = amqp_socket_open_noblock(sock, host, (int)port, &tv);
        if (st != AMQP_STATUS_OK) {
            fprintf(stderr, "hq_drain: cannot connect to %s:%ld: %s\n", host, port,
                    amqp_error_string2(st));
            goto out;
        }
        tv.tv_sec = 30;
        amqp_set_rpc_timeout(conn, &tv);
    }
    r = amqp_login(conn, vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, user, pass);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "hq_drain: login failed: %s\n", reply_text(r, ebuf, sizeof(ebuf)));
        goto out;
    }
    logged_in = true;
    amqp_channel_open(conn, 1);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "hq_drain: channel.open: %s\n", reply_text(r, ebuf, sizeof(ebuf)));
        goto out;
    }
    channel_open = true;
    amqp_basic_qos(conn, 1, 0, (uint16_t)prefetch, 0);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                           amqp_empty_table);
        r = amqp_get_rpc_reply(conn);
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "hq_drain: consume from '%s': %s\n", queue,
                reply_text(r, ebuf, sizeof(ebuf)));
        if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) channel_open = false;
        goto out;
    }

    t_start = t_last = now_ms();
    for (;;) {
        amqp_envelope_t env;
        int64_t now = now_ms(), wait = idle_ms - (now - t_last);
        struct timeval tv;

        if (now - t_start >= max_ms) {
            fprintf(stderr, "hq_drain: stopped after --max-ms %ld ms\n", max_ms);
            break;
        }
        if (wait <= 0) break;
        if (wait > 100) wait = 100; /* wake up to flush acks */
        tv.tv_sec = (time_t)(wait / 1000);
        tv.tv_usec = (suseconds_t)((wait % 1000) * 1000);
        amqp_maybe_release_buffers(conn);
        r = amqp_consume_message(conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            if (note(&set, &env.message.properties, &no_id) != 0) {
                amqp_destroy_envelope(&env);
                fprintf(stderr, "hq_drain: out of memory\n");
                failed = true;
                break;
            }
            received++;
            if (!t_first) t_first = now_ms();
            last_tag = env.delivery_tag;
            unacked++;
            amqp_destroy_envelope(&env);
            if (unacked >= (uint64_t)prefetch / 2) {
                if (amqp_basic_ack(conn, 1, last_tag, 1) != AMQP_STATUS_OK) {
                    fprintf(stderr, "hq_drain: ack failed\n");
                    failed = true;
                    break;
                }
                unacked = 0;
            }
            t_last = now_ms();
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
            if (unacked) {
                if (amqp_basic_ack(conn, 1, last_tag, 1) != AMQP_STATUS_OK) {
                    fprintf(stderr, "hq_drain: ack failed\n");
                    failed = true;
                    break;
                }
                unacked = 0;
            }
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            /* a frame other than a delivery: find out which */
            amqp_frame_t fr;
            if (amqp_simple_wait_frame(conn, &fr) != AMQP_STATUS_OK) {
                failed = true;
                break;
            }
            if (fr.frame_type != AMQP_FRAME_METHOD) continue;
            if (fr.payload.method.id == AMQP_BASIC_CANCEL_METHOD) {
                fprintf(stderr, "hq_drain: the broker cancelled the consumer (queue deleted?)\n");
                failed = true;
                break;
            }
            if (fr.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
                amqp_channel_close_ok_t ok = {0};
                const amqp_channel_close_t *m = fr.payload.method.decoded;
                fprintf(stderr, "hq_drain: channel closed by the broker: %u %.*s\n", m->reply_code,
                        (int)m->reply_text.len, (const char *)m->reply_text.bytes);
                amqp_send_method(conn, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
                channel_open = false;
                failed = true;
                break;
            }
            if (fr.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
                amqp_connection_close_ok_t ok = {0};
                const amqp_connection_close_t *m = fr.payload.method.decoded;
                fprintf(stderr, "hq_drain: connection closed by the broker: %u %.*s\n",
                        m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
                amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
                channel_open = false;
                logged_in = false;
                failed = true;
                break;
            }
            continue;
        }
        fprintf(stderr, "hq_drain: consume: %s\n", reply_text(r, ebuf, sizeof(ebuf)));
        channel_open = false;
        logged_in = false;
        failed = true;
        break;
    }
    if (!failed && unacked && amqp_basic_ack(conn, 1, last_tag, 1) != AMQP_STATUS_OK) failed = true;

    for (k = 0; k < set.cap; k++) {
        const struct entry *e = &set.e[k];
        if (!e->id) continue;
        if (e->expected) expected++;
        if (e->count > 0) distinct++;
        if (e->count > 1) duplicates += e->count - 1;
        if (e->expected && e->count == 0) {
            missing++;
            if (shown < (uint64_t)show_missing) {
                fprintf(stderr, "hq_drain: missing id %.*s\n", (int)e->len, e->id);
                shown++;
            }
        }
        if (!e->expected && e->count > 0) unexpected++;
    }
    if (received > 0 && t_first)
        fprintf(stderr, "hq_drain: %" PRIu64 " messages in %.2f s (%.0f msg/s)%s\n", received,
                (double)(t_last - t_first) / 1000.0,
                t_last > t_first ? (double)received * 1000.0 / (double)(t_last - t_first) : 0.0,
                file_dups ? " (the ids files repeat some ids)" : "");
    if (no_id) fprintf(stderr, "hq_drain: %" PRIu64 " messages had no message_id\n", no_id);
    printf("expected=%" PRIu64 " received=%" PRIu64 " distinct=%" PRIu64 " missing=%" PRIu64
           " duplicates=%" PRIu64 " unexpected=%" PRIu64 "\n",
           expected, received, distinct, missing, duplicates, unexpected);
    fflush(stdout);
    rc = (missing > 0 || failed) ? 1 : 0;
out:
    if (conn) {
        if (channel_open) amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
        if (logged_in) amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(conn);
    }
    for (k = 0; k < set.cap; k++)
        if (set.e[k].owned) free(set.e[k].id);
    free(set.e);
    for (i = 0; i < n_ids; i++)
        free(ids_buf[i]);
    (void)lines;
    return rc;
}
