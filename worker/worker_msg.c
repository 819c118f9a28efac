/* worker_msg.c: message helpers of hookmq-worker: header lookups, the retry tier formula
 * (docs/interface.md), clean copies for retry / DLQ / redrive republishing, and log-safe
 * text. Pure functions, no broker access. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hq_consume.h"
#include "worker.h"

#define ATTEMPT_MAX 1000000

int64_t wk_msg_long(const struct hq_msg *m, const char *key, int64_t def)
{
    const struct hq_hdr *h = hq_msg_header(m, key);
    long long v;
    char *end;

    if (!h) return def;
    if (h->type == HQ_HDR_LONG) return h->num;
    if (!h->str || !*h->str) return def;
    errno = 0;
    v = strtoll(h->str, &end, 10);
    if (errno || *end) return def;
    return (int64_t)v;
}

uint32_t wk_msg_attempt(const struct hq_msg *m)
{
    int64_t n = wk_msg_long(m, "hookmq-attempt", 1);

    if (n < 1) return 1;
    if (n > ATTEMPT_MAX) return ATTEMPT_MAX;
    return (uint32_t)n;
}

uint64_t wk_retry_delay(const uint64_t *delays, size_t n_delays, uint32_t n, int64_t retry_after_ms)
{
    size_t idx, i;
    uint64_t d, best = 0, largest = 0;
    bool found = false;

    if (!delays || n_delays == 0) return 0;
    if (n < 1) n = 1;
    idx = (size_t)n < n_delays ? (size_t)n : n_delays;
    d = delays[idx - 1];
    if (retry_after_ms <= 0 || (uint64_t)retry_after_ms <= d) return d;
    for (i = 0; i < n_delays; i++) {
        if (delays[i] > largest) largest = delays[i];
        if (delays[i] >= (uint64_t)retry_after_ms && (!found || delays[i] < best)) {
            best = delays[i];
            found = true;
        }
    }
    return found ? best : largest;
}

static bool dlq_header(const char *k)
{
    return strcmp(k, "hookmq-consumer") == 0 || strcmp(k, "hookmq-attempts") == 0 ||
           strcmp(k, "hookmq-last-error") == 0 || strcmp(k, "hookmq-failed-at") == 0;
}

int wk_msg_clean_copy(const struct hq_msg *src, bool drop_dlq, struct hq_msg *dst)
{
    size_t i, k = 0;
    int rc;

    rc = hq_msg_copy(src, dst);
    if (rc != HQ_OK) return rc;
    for (i = 0; i < dst->n_headers; i++) {
        struct hq_hdr *h = &dst->headers[i];

        if (!h->key || hq_header_broker_owned(h->key) || (drop_dlq && dlq_header(h->key))) {
            free(h->key);
            free(h->str);
            continue;
        }
        dst->headers[k++] = *h;
    }
    dst->n_headers = k;
    if (k == 0) {
        free(dst->headers);
        dst->headers = NULL;
    }
    return HQ_OK;
}

void wk_log_safe(char *out, size_t outsz, const char *s, bool quoted)
{
    size_t o = 0;

    if (!outsz) return;
    if (!s) s = "";
    for (; *s && o + 1 < outsz; s++) {
        unsigned char c = (unsigned char)*s;
        out[o++] = (c < 0x20 || c == 0x7f || c == '"' || c == '\\' || (c == ' ' && !quoted))
                       ? '_'
                       : (char)c;
    }
    out[o] = '\0';
}
