/* handler_log.c: the built-in "log" handler. Logs one line per event through the host's
 * logger and acknowledges it. Useful to watch a binding before writing a real handler.
 *
 * Options (all optional):
 *   level      = "info"   level of the per-event line: error | warn | info | debug
 *   body_bytes = 256      a second line at debug level shows at most this many body bytes,
 *                         escaped (0..4096; 0 = never show the body)
 *
 * The body is never logged above debug level. Values taken from the event (id, type, ...)
 * are quoted and escaped, so a hostile id cannot forge log lines. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

#define LOG_FIELD_MAX 200  /* event-supplied text shown per field, in input bytes */
#define LOG_BODY_MAX 4096

struct log_state {
    const struct hq_host_api *api;
    enum hq_handler_log_level level;
    size_t body_bytes;
};

/* Write s[0..n) as a double-quoted string into out (always NUL-terminated): '"' and '\' are
 * backslash-escaped, bytes outside printable ASCII become \xNN; "..." marks truncation at
 * cap input bytes or when out is full. */
static void quote(char *out, size_t outsz, const unsigned char *s, size_t n, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i;
    int cut = n > cap;

    if (outsz < 8) {
        if (outsz)
            out[0] = '\0';
        return;
    }
    if (cut)
        n = cap;
    out[o++] = '"';
    for (i = 0; i < n; i++) {
        unsigned char c = s[i];
        /* worst case 4 bytes for this char + 3 for "..." + quote + NUL */
        if (o + 4 + 5 > outsz) {
            cut = 1;
            break;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    if (cut) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
}

static void quote_str(char *out, size_t outsz, const char *s)
{
    if (!s)
        s = "";
    quote(out, outsz, (const unsigned char *)s, strlen(s), LOG_FIELD_MAX);
}

static int parse_level(const char *s, enum hq_handler_log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum hq_handler_log_level)i;
            return 0;
        }
    }
    return -1;
}

static int log_init(const struct hq_host_api *api, const struct hq_handler_opt *opts, size_t n,
                    void **state)
{
    struct log_state *st;
    size_t i;

    st = calloc(1, sizeof(*st));
    if (!st) {
        api->log(HQ_HLOG_ERROR, "log: out of memory");
        return -1;
    }
    st->api = api;
    st->level = HQ_HLOG_INFO;
    st->body_bytes = 256;
    for (i = 0; i < n; i++) {
        const struct hq_handler_opt *o = &opts[i];
        if (strcmp(o->key, "level") == 0) {
            if (!o->value || parse_level(o->value, &st->level) != 0) {
                api->log(HQ_HLOG_ERROR, "log: option level: expected error, warn, info or debug");
                goto fail;
            }
        } else if (strcmp(o->key, "body_bytes") == 0) {
            char *end;
            unsigned long long v;
            errno = 0;
            v = o->value ? strtoull(o->value, &end, 10) : 0;
            if (!o->value || errno || end == o->value || *end || o->value[0] == '-' ||
                v > LOG_BODY_MAX) {
                api->log(HQ_HLOG_ERROR, "log: option body_bytes: expected 0..%d", LOG_BODY_MAX);
                goto fail;
            }
            st->body_bytes = (size_t)v;
        } else {
            api->log(HQ_HLOG_ERROR, "log: unknown option %s (known: level, body_bytes)", o->key);
            goto fail;
        }
    }
    *state = st;
    return 0;
fail:
    free(st);
    return -1;
}

static enum hq_verdict log_handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    struct log_state *st = state;
    char consumer[LOG_FIELD_MAX * 4 + 8], id[LOG_FIELD_MAX * 4 + 8], source[LOG_FIELD_MAX * 4 + 8],
        type[LOG_FIELD_MAX * 4 + 8], rk[LOG_FIELD_MAX * 4 + 8], ct[LOG_FIELD_MAX * 4 + 8];

    (void)err;
    quote_str(consumer, sizeof(consumer), ev->consumer);
    quote_str(id, sizeof(id), ev->id);
    quote_str(source, sizeof(source), ev->source);
    quote_str(type, sizeof(type), ev->type);
    quote_str(rk, sizeof(rk), ev->routing_key);
    quote_str(ct, sizeof(ct), ev->content_type);
    st->api->log(st->level,
                 "event consumer=%s id=%s source=%s type=%s routing_key=%s attempt=%" PRIu32
                 " content_type=%s body_bytes=%zu",
                 consumer, id, source, type, rk, ev->attempt, ct, ev->body_len);
    if (st->body_bytes > 0 && ev->body_len > 0) {
        char *body = malloc(st->body_bytes * 4 + 8);
        if (body) {
            quote(body, st->body_bytes * 4 + 8, ev->body, ev->body_len, st->body_bytes);
            st->api->log(HQ_HLOG_DEBUG, "event body id=%s body=%s", id, body);
            free(body);
        }
    }
    return HQ_VERDICT_ACK;
}

static void log_fini(void *state)
{
    free(state);
}

const struct hq_handler hq_builtin_log = {
    .abi_major = HQ_HANDLER_ABI_MAJOR,
    .abi_minor = HQ_HANDLER_ABI_MINOR,
    .struct_size = sizeof(struct hq_handler),
    .name = "log",
    .version = HQ_VERSION,
    .init = log_init,
    .handle = log_handle,
    .fini = log_fini,
};
