/* hq_pubcheck: drives the publisher pool (core/pub.c) for tests/integration/test_pub.py.
 *
 *   hq_pubcheck --uri URI [--uri URI2] --exchange NAME [--publishers N] [--window W]
 *               [--heartbeat S]
 *
 * Reads commands on stdin, one per line, and answers each with one JSON line on stdout:
 *   wait-up MS              {"ok":bool,"ms":N}  until a connection is up and not blocked
 *   wait-down MS            {"ok":bool,"ms":N}  until no connection is up
 *   wait-blocked MS         {"ok":bool,"ms":N}  until every up connection is blocked
 *   publish N T DEADLINE_MS [SIZE] [TAG]
 *                           N messages from T caller threads, each call with its own deadline;
 *                           {"n":N,"ok":..,"edown":..,"eblocked":..,"efull":..,"etimedout":..,
 *                            "ebroker":..,"eshutdown":..,"other":..,"max_call_ms":..,
 *                            "max_over_deadline_ms":..,"elapsed_ms":..}
 *   bad                     messages no broker connection can carry (a 300-byte header key, a
 *                           200 KB header value): {"key":STATUS,"big":STATUS,"ms":N}
 *   stats                   {"connected":..,"blocked":..,"up":..,"published":..,...}
 *   quit                    stops the pool (drain 2 s) and exits 0
 * Message ids are "<TAG>-<i>" (TAG defaults to "pc"); routing key "pubcheck.<TAG>". */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hq_config.h"
#include "hq_event.h"
#include "hq_log.h"
#include "hq_pub.h"
#include "hq_time.h"

#define MAX_URIS 8

static struct hq_pub *pool;
static const char *exchange = "hookmq.events";

enum { R_OK, R_EDOWN, R_EBLOCKED, R_EFULL, R_ETIMEDOUT, R_EBROKER, R_ESHUTDOWN, R_OTHER, R_N };

struct run {
    long n;
    int deadline_ms;
    size_t size;
    char tag[64];
    atomic_long next;
    atomic_long counts[R_N];
    atomic_long max_call_ms, max_over_ms;
};

static void atomic_max(atomic_long *a, long v)
{
    long cur = atomic_load(a);

    while (v > cur && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

static int bucket(int rc)
{
    switch (rc) {
    case HQ_OK: return R_OK;
    case HQ_EDOWN: return R_EDOWN;
    case HQ_EBLOCKED: return R_EBLOCKED;
    case HQ_EFULL: return R_EFULL;
    case HQ_ETIMEDOUT: return R_ETIMEDOUT;
    case HQ_EBROKER: return R_EBROKER;
    case HQ_ESHUTDOWN: return R_ESHUTDOWN;
    default: return R_OTHER;
    }
}

static void *caller(void *arg)
{
    struct run *r = arg;
    unsigned char *body = malloc(r->size ? r->size : 1);
    char rk[96], mid[128], ts[24];
    struct hq_hdr hdrs[3];
    struct hq_msg m;
    long i;

    if (!body)
        return NULL;
    memset(body, 'p', r->size);
    snprintf(rk, sizeof(rk), "pubcheck.%s", r->tag);
    while ((i = atomic_fetch_add(&r->next, 1)) < r->n) {
        int64_t t0 = hq_mono_ms(), deadline = t0 + r->deadline_ms, t1;
        int rc;

        snprintf(mid, sizeof(mid), "%s-%ld", r->tag, i);
        snprintf(ts, sizeof(ts), "%ld", i);
        hdrs[0] = (struct hq_hdr){"hookmq-source", HQ_HDR_STR, "pubcheck", 0};
        hdrs[1] = (struct hq_hdr){"hookmq-received-at", HQ_HDR_LONG, NULL, hq_now_ms()};
        hdrs[2] = (struct hq_hdr){"pubcheck-seq", HQ_HDR_STR, ts, 0};
        memset(&m, 0, sizeof(m));
        m.routing_key = rk;
        m.message_id = mid;
        m.content_type = "application/octet-stream";
        m.timestamp_s = hq_now_ms() / 1000;
        m.headers = hdrs;
        m.n_headers = 3;
        m.body = body;
        m.body_len = r->size;
        rc = hq_pub_publish(pool, exchange, &m, deadline);
        t1 = hq_mono_ms();
        atomic_fetch_add(&r->counts[bucket(rc)], 1);
        atomic_max(&r->max_call_ms, (long)(t1 - t0));
        atomic_max(&r->max_over_ms, (long)(t1 - deadline));
    }
    free(body);
    return NULL;
}

static void cmd_publish(long n, int threads, int deadline_ms, size_t size, const char *tag)
{
    static const char *names[R_N] = {"ok",       "edown",   "eblocked",  "efull",
                                     "etimedout", "ebroker", "eshutdown", "other"};
    struct run *r = calloc(1, sizeof(*r));
    pthread_t *thr = calloc((size_t)threads, sizeof(*thr));
    int64_t t0 = hq_mono_ms();
    int i;

    if (!r || !thr) {
        printf("{\"error\":\"nomem\"}\n");
        free(r);
        free(thr);
        return;
    }
    r->n = n;
    r->deadline_ms = deadline_ms;
    r->size = size;
    snprintf(r->tag, sizeof(r->tag), "%s", tag);
    atomic_store(&r->max_over_ms, -1000000L);
    for (i = 0; i < threads; i++)
        pthread_create(&thr[i], NULL, caller, r);
    for (i = 0; i < threads; i++)
        pthread_join(thr[i], NULL);
    printf("{\"n\":%ld", n);
    for (i = 0; i < R_N; i++)
        printf(",\"%s\":%ld", names[i], atomic_load(&r->counts[i]));
    printf(",\"max_call_ms\":%ld,\"max_over_deadline_ms\":%ld,\"elapsed_ms\":%lld}\n",
           atomic_load(&r->max_call_ms), atomic_load(&r->max_over_ms),
           (long long)(hq_mono_ms() - t0));
    free(thr);
    free(r);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* which: 0 up, 1 down, 2 blocked */
static void cmd_wait(int which, int ms)
{
    int64_t t0 = hq_mono_ms();
    bool ok = false;

    for (;;) {
        struct hq_pub_stats st;
        hq_pub_get_stats(pool, &st);
        ok = which == 0 ? st.connected : which == 1 ? st.connections_up == 0 : st.blocked;
        if (ok || hq_mono_ms() - t0 >= ms)
            break;
        sleep_ms(10);
    }
    printf("{\"ok\":%s,\"ms\":%lld}\n", ok ? "true" : "false", (long long)(hq_mono_ms() - t0));
}

static void cmd_bad(void)
{
    static char key[301], val[200 * 1024];
    struct hq_hdr h;
    struct hq_msg m;
    int64_t t0 = hq_mono_ms();
    int r1, r2;

    memset(key, 'k', sizeof(key) - 1);
    memset(val, 'v', sizeof(val) - 1);
    memset(&m, 0, sizeof(m));
    m.routing_key = "pubcheck.bad";
    m.message_id = "bad-1";
    m.headers = &h;
    m.n_headers = 1;
    h = (struct hq_hdr){key, HQ_HDR_STR, "x", 0};
    r1 = hq_pub_publish(pool, exchange, &m, hq_mono_ms() + 5000);
    h = (struct hq_hdr){"big", HQ_HDR_STR, val, 0};
    r2 = hq_pub_publish(pool, exchange, &m, hq_mono_ms() + 5000);
    printf("{\"key\":\"%s\",\"big\":\"%s\",\"ms\":%lld}\n", hq_strerror(r1), hq_strerror(r2),
           (long long)(hq_mono_ms() - t0));
}

static void cmd_stats(void)
{
    struct hq_pub_stats st;

    hq_pub_get_stats(pool, &st);
    printf("{\"connected\":%s,\"blocked\":%s,\"up\":%d,\"published\":%llu,\"confirmed\":%llu,"
           "\"nacked\":%llu,\"returned\":%llu,\"reconnects\":%llu}\n",
           st.connected ? "true" : "false", st.blocked ? "true" : "false", st.connections_up,
           (unsigned long long)st.published, (unsigned long long)st.confirmed,
           (unsigned long long)st.nacked, (unsigned long long)st.returned,
           (unsigned long long)st.reconnects);
}

int main(int argc, char **argv)
{
    char *uris[MAX_URIS];
    struct hq_broker_cfg b;
    int n_uris = 0, publishers = 2, window = 256, i, rc;
    char line[512];

    memset(&b, 0, sizeof(b));
    b.heartbeat_s = 10;
    b.exchange = "hookmq.events";
    b.tls.verify_peer = true;
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--uri") == 0 && n_uris < MAX_URIS)
            uris[n_uris++] = argv[i + 1];
        else if (strcmp(argv[i], "--exchange") == 0)
            exchange = argv[i + 1];
        else if (strcmp(argv[i], "--publishers") == 0)
            publishers = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--window") == 0)
            window = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--heartbeat") == 0)
            b.heartbeat_s = (int)strtol(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "hq_pubcheck: bad argument %s\n", argv[i]);
            return 2;
        }
    }
    if (i != argc || n_uris == 0) {
        fprintf(stderr, "usage: hq_pubcheck --uri URI [--uri URI] [--exchange X] "
                        "[--publishers N] [--window W] [--heartbeat S]\n");
        return 2;
    }
    b.uris = uris;
    b.n_uris = (size_t)n_uris;
    hq_log_setup("hq_pubcheck", HQ_LOG_INFO, HQ_LOG_TEXT);
    rc = hq_pub_start(&b, publishers, window, "hq_pubcheck", &pool);
    if (rc != HQ_OK) {
        fprintf(stderr, "hq_pubcheck: hq_pub_start: %s\n", hq_strerror(rc));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof(line), stdin)) {
        char cmd[32] = "", tag[64] = "pc";
        long a = 0, b2 = 0, c = 0, d = 1024;
        int n = sscanf(line, "%31s %ld %ld %ld %ld %63s", cmd, &a, &b2, &c, &d, tag);

        if (n < 1)
            continue;
        if (strcmp(cmd, "quit") == 0)
            break;
        if (strcmp(cmd, "wait-up") == 0 && n >= 2)
            cmd_wait(0, (int)a);
        else if (strcmp(cmd, "wait-down") == 0 && n >= 2)
            cmd_wait(1, (int)a);
        else if (strcmp(cmd, "wait-blocked") == 0 && n >= 2)
            cmd_wait(2, (int)a);
        else if (strcmp(cmd, "publish") == 0 && n >= 4 && a >= 0 && b2 >= 1 && b2 <= 256 &&
                 c >= 0 && d >= 0 && d <= (64L << 20))
            cmd_publish(a, (int)b2, (int)c, (size_t)d, tag);
        else if (strcmp(cmd, "bad") == 0)
            cmd_bad();
        else if (strcmp(cmd, "stats") == 0)
            cmd_stats();
        else
            printf("{\"error\":\"bad command\"}\n");
    }
    {
        int64_t t0 = hq_mono_ms();
        hq_pub_stop(pool, 2000);
        fprintf(stderr, "hq_pubcheck: stopped in %lld ms\n", (long long)(hq_mono_ms() - t0));
    }
    return 0;
}
