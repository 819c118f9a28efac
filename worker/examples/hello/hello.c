/* hello.c: the example hookmq handler plugin (docs/plugins.md walks through it).
 *
 * It greets every event in the log, counts events per source for its handler thread, and
 * acknowledges them, except events of one source chosen by an option, which it asks to be
 * retried later. Copy this file to start a handler of your own.
 *
 * Options (the consumer's `options` group in hookmq.conf):
 *   greeting     = "hello"   the word each log line starts with (at most 63 bytes)
 *   retry_source = "stripe"  events of this source are answered RETRY (a demonstration)
 *
 * Build, from a checkout (use -I<prefix>/include against the installed header):
 *   cc -shared -fPIC -fvisibility=hidden -I worker/include \
 *      worker/examples/hello/hello.c -o hello.so
 * Use:   consumers = ( { name = "demo"; bindings = [ "#" ]; handler = "/path/to/hello.so";
 *                        options = { greeting = "hi"; }; } ); */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hookmq/handler.h>

#define HELLO_MAX_SOURCES 32

/* One handler thread's state. init() allocates it, handle() uses it (never concurrently with
 * itself), fini() frees it: no locks needed. */
struct hello {
    const struct hq_host_api *api; /* borrowed from the host until fini() */
    char greeting[64];
    char retry_source[65];
    struct {
        char source[65];
        unsigned long count;
    } seen[HELLO_MAX_SOURCES];
    size_t n_seen;
    unsigned long others; /* events of sources beyond the table */
};

/* Options arrive as text: key, plus value for a scalar or values[n_values] for an array. The
 * strings are the host's: copy what you keep (here into fixed buffers). */
static int hello_init(const struct hq_host_api *api, const struct hq_handler_opt *opts,
                      size_t n_opts, void **state)
{
    struct hello *h;
    size_t i;

    h = calloc(1, sizeof(*h));
    if (!h) {
        api->log(HQ_HLOG_ERROR, "hello: out of memory");
        return -1;
    }
    h->api = api;
    snprintf(h->greeting, sizeof(h->greeting), "hello");
    for (i = 0; i < n_opts; i++) {
        const struct hq_handler_opt *o = &opts[i];
        if (strcmp(o->key, "greeting") == 0 && o->value &&
            strlen(o->value) < sizeof(h->greeting)) {
            snprintf(h->greeting, sizeof(h->greeting), "%s", o->value);
        } else if (strcmp(o->key, "retry_source") == 0 && o->value &&
                   strlen(o->value) < sizeof(h->retry_source)) {
            snprintf(h->retry_source, sizeof(h->retry_source), "%s", o->value);
        } else {
            /* A non-zero return makes the worker exit with status 2: report what is wrong. */
            api->log(HQ_HLOG_ERROR, "hello: bad option %s (known: greeting, retry_source)",
                     o->key);
            free(h);
            return -1;
        }
    }
    *state = h;
    return 0;
}

static unsigned long count_source(struct hello *h, const char *source)
{
    size_t i;

    for (i = 0; i < h->n_seen; i++)
        if (strcmp(h->seen[i].source, source) == 0)
            return ++h->seen[i].count;
    if (h->n_seen == HELLO_MAX_SOURCES || strlen(source) >= sizeof(h->seen[0].source))
        return ++h->others;
    snprintf(h->seen[h->n_seen].source, sizeof(h->seen[0].source), "%s", source);
    h->seen[h->n_seen].count = 1;
    return h->seen[h->n_seen++].count;
}

/* Every pointer in ev is borrowed until this function returns. Return ACK when done, RETRY
 * for a temporary failure (the event comes back after the consumer's retry delay), REJECT
 * when it can never succeed (the event is parked in the dead-letter queue). */
static enum hq_verdict hello_handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    struct hello *h = state;
    unsigned long n;

    /* Members added to struct hq_event in later minor versions are read only when the host's
     * struct_size covers them; everything below is in ABI 1.0. */
    if (ev->struct_size < offsetof(struct hq_event, received_at_ms) + sizeof(ev->received_at_ms))
        return HQ_VERDICT_RETRY;

    if (h->retry_source[0] && strcmp(ev->source, h->retry_source) == 0) {
        /* The message goes to the log and, if the event ends in the DLQ, to its
         * hookmq-last-error header. retry_after_ms = 0 would use the consumer's own delay. */
        snprintf(err->message, sizeof(err->message), "hello: not ready for %s events yet",
                 ev->source);
        err->retry_after_ms = 5000;
        return HQ_VERDICT_RETRY;
    }
    n = count_source(h, ev->source);
    /* Log through the host: one line with the worker's format and consumer name. Event
     * fields come from the outside world: never log the body above debug level. */
    h->api->log(HQ_HLOG_INFO, "%s event id=%s source=%s count=%lu attempt=%u bytes=%zu",
                h->greeting, ev->id, ev->source, n, (unsigned)ev->attempt, ev->body_len);
    return HQ_VERDICT_ACK;
}

static void hello_fini(void *state)
{
    struct hello *h = state;
    size_t i;

    if (!h)
        return;
    for (i = 0; i < h->n_seen; i++)
        h->api->log(HQ_HLOG_INFO, "%s total source=%s count=%lu", h->greeting,
                    h->seen[i].source, h->seen[i].count);
    free(h);
}

/* The table is const and lives as long as the plugin is loaded. */
static const struct hq_handler hello_table = {
    .abi_major = HQ_HANDLER_ABI_MAJOR,
    .abi_minor = HQ_HANDLER_ABI_MINOR,
    .struct_size = sizeof(struct hq_handler),
    .name = "hello",
    .version = "1.0.0",
    .init = hello_init,
    .handle = hello_handle,
    .fini = hello_fini,
};

/* The one exported symbol. Refuse (NULL) a host of another ABI major. */
HQ_HANDLER_EXPORT const struct hq_handler *hq_handler_get(uint32_t host_abi_major)
{
    if (host_abi_major != HQ_HANDLER_ABI_MAJOR)
        return NULL;
    return &hello_table;
}
