/* hq_archive_tool: helpers for bench/archive_bench.sh and the archive system tests.
 *
 *   hq_archive_tool gen DIR N [--hours H] [--body-bytes B] [--sources S] [--start-ms T]
 *       Write N events (B-byte JSON bodies, S sources, spread evenly over H hours from T) as
 *       closed, compressed and indexed hourly segments under DIR, with the logger's own writer
 *       and compressor (core/archive*.c). Prints one JSON line: counts, bytes, timings and a
 *       few event ids to look up.
 *   hq_archive_tool emit -c CONFIG N [--consumer C] [--source S] [--id ID] [--verdict V]
 *       Publish N lifecycle records through the lifecycle emitter (core/lifecycle.c), then
 *       stop it with a 10 s drain. Prints one JSON line with its counters and the rate. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hq_archive.h"
#include "hq_config.h"
#include "hq_lifecycle.h"
#include "hq_log.h"
#include "hq_time.h"

#define HOUR_MS 3600000LL

static void usage(void)
{
    fprintf(stderr,
            "usage: hq_archive_tool gen DIR N [--hours H] [--body-bytes B] [--sources S] "
            "[--start-ms T]\n"
            "       hq_archive_tool emit -c CONFIG N [--consumer C] [--source S] [--id ID] "
            "[--verdict V]\n");
}

static bool num(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static double secs(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* A webhook-like JSON body of about n bytes, different per event. */
static size_t make_body(char *buf, size_t n, long long i, unsigned *seed)
{
    static const char *const words[] = {"invoice", "customer", "amount", "currency", "status",
                                        "created", "metadata", "line_items", "discount", "tax"};
    size_t len = (size_t)snprintf(buf, n, "{\"id\":\"evt_%012lld\",\"object\":\"event\",\"data\":{",
                                  i);

    while (len + 48 < n) {
        *seed = *seed * 1103515245u + 12345u;
        len += (size_t)snprintf(buf + len, n - len, "\"%s_%u\":%u,",
                                words[(*seed >> 16) % 10], (*seed >> 8) & 0xff, *seed % 100000);
    }
    len += (size_t)snprintf(buf + len, n - len, "\"end\":true}}");
    return len;
}

static int gen(int argc, char **argv)
{
    const char *dir;
    long long n, hours = 10, body_bytes = 1024, sources = 4, start = 0, v, i, written = 0;
    struct hq_awriter *w = NULL;
    struct hq_buf b = HQ_BUF_INIT((size_t)1 << 30);
    struct hq_acompress_stats cs;
    struct timespec t0, t1, tc = {0, 0}, tc1;
    double compress_s = 0;
    uint64_t bytes_in = 0, bytes_out = 0, frames = 0;
    char err[512], closed[4096], *body;
    unsigned seed = 42;
    int k;

    if (argc < 4 || !num(argv[3], 1, 100000000, &n)) {
        usage();
        return 2;
    }
    dir = argv[2];
    for (k = 4; k + 1 < argc; k += 2) {
        if (strcmp(argv[k], "--hours") == 0 && num(argv[k + 1], 1, 100000, &v))
            hours = v;
        else if (strcmp(argv[k], "--body-bytes") == 0 && num(argv[k + 1], 16, 1 << 20, &v))
            body_bytes = v;
        else if (strcmp(argv[k], "--sources") == 0 && num(argv[k + 1], 1, 1000, &v))
            sources = v;
        else if (strcmp(argv[k], "--start-ms") == 0 && num(argv[k + 1], 0, 1LL << 50, &v))
            start = v;
        else {
            usage();
            return 2;
        }
    }
    if (k != argc) {
        usage();
        return 2;
    }
    if (!start)
        start = (hq_now_ms() / HOUR_MS - hours - 1) * HOUR_MS; /* closed hours before now */
    start = start / HOUR_MS * HOUR_MS;
    body = malloc((size_t)body_bytes + 64);
    if (!body || hq_awriter_open(dir, &w, err, sizeof(err)) != HQ_OK) {
        fprintf(stderr, "hq_archive_tool: %s\n", body ? err : "out of memory");
        free(body);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < n; i++) {
        long long h = i * hours / n, per = (n + hours - 1) / hours, at;
        struct hq_msg m;
        char id[32], src[32], rk[64];

        at = start + h * HOUR_MS + (i % per) * (HOUR_MS / per);
        snprintf(id, sizeof(id), "evt-%08lld", i);
        snprintf(src, sizeof(src), "src%lld", i % sources);
        snprintf(rk, sizeof(rk), "%s.order.created", src);
        memset(&m, 0, sizeof(m));
        m.routing_key = rk;
        m.message_id = id;
        m.content_type = "application/json";
        m.timestamp_s = at / 1000;
        if (hq_msg_add_str(&m, "hookmq-source", src) != HQ_OK ||
            hq_msg_add_str(&m, "hookmq-event-type", "order.created") != HQ_OK ||
            hq_msg_add_long(&m, "hookmq-received-at", at) != HQ_OK ||
            hq_msg_add_str(&m, "hookmq-scheme", "hmac") != HQ_OK) {
            fprintf(stderr, "hq_archive_tool: out of memory\n");
            return 1;
        }
        m.body = (unsigned char *)body;
        m.body_len = make_body(body, (size_t)body_bytes + 1, i, &seed);
        if (hq_arec_encode_msg(HQ_AREC_EVENT, &m, 2, at, &b) != HQ_OK) {
            fprintf(stderr, "hq_archive_tool: encode failed\n");
            return 1;
        }
        /* borrowed members: only the headers are ours to free */
        m.routing_key = m.message_id = m.content_type = NULL;
        m.body = NULL;
        hq_msg_free(&m);
        written++;
        /* flush at 4 MiB or at the end of the hour */
        if (b.len >= (4u << 20) || i + 1 == n || (i + 1) * hours / n != h) {
            if (hq_awriter_append(w, at, b.data, b.len, closed, sizeof(closed), NULL) != HQ_OK) {
                fprintf(stderr, "hq_archive_tool: write failed\n");
                return 1;
            }
            hq_buf_reset(&b);
        }
        if (i + 1 == n || (i + 1) * hours / n != h) {
            /* the hour is over: close and compress its segment */
            if (hq_awriter_tick(w, start + (h + 1) * HOUR_MS, closed, sizeof(closed))) {
                clock_gettime(CLOCK_MONOTONIC, &tc);
                if (hq_archive_compress(closed, NULL, &cs, err, sizeof(err)) != HQ_OK) {
                    fprintf(stderr, "hq_archive_tool: %s\n", err);
                    return 1;
                }
                clock_gettime(CLOCK_MONOTONIC, &tc1);
                compress_s += secs(&tc, &tc1);
                bytes_in += cs.bytes_in;
                bytes_out += cs.bytes_out;
                frames += cs.frames;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    hq_awriter_close(w);
    hq_buf_free(&b);
    free(body);
    printf("{\"events\":%lld,\"hours\":%lld,\"start_ms\":%lld,\"bytes_raw\":%llu,"
           "\"bytes_compressed\":%llu,\"frames\":%llu,\"seconds\":%.2f,\"compress_seconds\":%.2f,"
           "\"ids\":[\"evt-%08lld\",\"evt-%08lld\",\"evt-%08lld\"]}\n",
           written, hours, start, (unsigned long long)bytes_in, (unsigned long long)bytes_out,
           (unsigned long long)frames, secs(&t0, &t1), compress_s, 0LL, n / 2 + 7, n - 1);
    return 0;
}

static int emit(int argc, char **argv)
{
    const char *config = NULL, *consumer = "bench", *source = "bench", *id = "bench-1",
               *verdict = "processed";
    long long n = 0;
    struct hq_config *cfg = NULL;
    struct hq_lc_emitter *e = NULL;
    struct hq_lc_record r;
    struct hq_lc_stats st;
    struct timespec t0, t1;
    char err[1024];
    int k, i;
    enum hq_lc_verdict vd = HQ_LC_PROCESSED;

    for (k = 2; k < argc; k++) {
        if (strcmp(argv[k], "-c") == 0 && k + 1 < argc)
            config = argv[++k];
        else if (strcmp(argv[k], "--consumer") == 0 && k + 1 < argc)
            consumer = argv[++k];
        else if (strcmp(argv[k], "--source") == 0 && k + 1 < argc)
            source = argv[++k];
        else if (strcmp(argv[k], "--id") == 0 && k + 1 < argc)
            id = argv[++k];
        else if (strcmp(argv[k], "--verdict") == 0 && k + 1 < argc)
            verdict = argv[++k];
        else if (!n && num(argv[k], 1, 10000000, &n))
            continue;
        else {
            usage();
            return 2;
        }
    }
    for (i = 0; i <= HQ_LC_DEDUPED; i++)
        if (strcmp(hq_lc_verdict_name((enum hq_lc_verdict)i), verdict) == 0)
            vd = (enum hq_lc_verdict)i;
    if (!config || !n) {
        usage();
        return 2;
    }
    if (hq_config_load(config, &cfg, err, sizeof(err)) != HQ_OK) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    hq_log_setup("hq_archive_tool", HQ_LOG_WARN, HQ_LOG_TEXT);
    if (hq_lc_start(&cfg->broker, "hq_archive_tool lifecycle", (size_t)n, &e) != HQ_OK) {
        fprintf(stderr, "hq_archive_tool: cannot start the emitter\n");
        hq_config_free(cfg);
        return 1;
    }
    /* let the connection come up (records emitted before are kept in the ring) */
    usleep(300 * 1000);
    memset(&r, 0, sizeof(r));
    r.source = source;
    r.id = id;
    r.consumer = consumer;
    r.verdict = vd;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < n; i++) {
        r.attempt = (uint32_t)i + 1;
        r.at_ms = hq_now_ms();
        hq_lc_emit(e, &r);
    }
    {
        /* wait for the queue to drain; give up after 5 s without progress */
        uint64_t last = 0;
        int idle = 0;

        for (;;) {
            uint64_t done;

            hq_lc_get_stats(e, &st);
            if (st.queued == 0 || idle >= 50)
                break;
            done = st.published + st.dropped + st.unconfirmed;
            idle = done == last ? idle + 1 : 0;
            last = done;
            usleep(100 * 1000);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    hq_lc_get_stats(e, &st);
    hq_lc_stop(e, 2000);
    printf("{\"emitted\":%lld,\"published\":%llu,\"dropped\":%llu,\"unconfirmed\":%llu,"
           "\"seconds\":%.3f,\"per_second\":%.0f}\n",
           n, (unsigned long long)st.published, (unsigned long long)st.dropped,
           (unsigned long long)st.unconfirmed, secs(&t0, &t1),
           (double)st.published / (secs(&t0, &t1) > 0 ? secs(&t0, &t1) : 1));
    hq_config_free(cfg);
    return st.published == (uint64_t)n ? 0 : 1;
}

int main(int argc, char **argv)
{
    hq_log_setup("hq_archive_tool", HQ_LOG_WARN, HQ_LOG_TEXT);
    if (argc >= 2 && strcmp(argv[1], "gen") == 0)
        return gen(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "emit") == 0)
        return emit(argc, argv);
    usage();
    return 2;
}
