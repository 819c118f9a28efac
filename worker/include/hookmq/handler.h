/* hookmq/handler.h: the handler plugin ABI of hookmq-worker (the only header a handler
 * author needs).
 *
 * A plugin is a shared object exporting one symbol, hq_handler_get(), that returns a const,
 * versioned table. The table is append-only: new members are added at the end and the host
 * reads a member only when struct_size says it is present. A plugin built for another ABI
 * major is refused at start-up.
 *
 * Threading: the worker runs `concurrency` handler threads. init() is called once per handler
 * thread and returns that thread's state; handle() is never called concurrently with the same
 * state; fini() is called once per state at shutdown. Everything the host passes in is
 * borrowed: valid until the call returns (handle) or until fini (api, opts).
 *
 * Build: cc -shared -fPIC -fvisibility=hidden my_handler.c -o my_handler.so */
#ifndef HOOKMQ_HANDLER_H
#define HOOKMQ_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HQ_HANDLER_ABI_MAJOR 1u
#define HQ_HANDLER_ABI_MINOR 1u

#define HQ_HANDLER_EXPORT __attribute__((visibility("default")))

/* What happens to the event after handle() returns. */
enum hq_verdict {
    HQ_VERDICT_ACK = 0,    /* processed: acknowledged and removed */
    HQ_VERDICT_RETRY = 1,  /* failed, try again later (retry tiers, then the DLQ) */
    HQ_VERDICT_REJECT = 2, /* will never succeed: straight to the dead-letter queue */
};

/* One message header, as text (numbers in decimal). */
struct hq_kv {
    const char *key;
    const char *value;
};

/* The event. Every pointer is borrowed until handle() returns. */
struct hq_event {
    uint32_t struct_size;        /* sizeof(struct hq_event) of the host */
    const char *id;              /* stable event id (message_id): dedupe on (source, id) */
    const char *source;          /* hookmq-source */
    const char *type;            /* hookmq-event-type, the provider's raw type */
    const char *routing_key;     /* original <source>.<type>, on retries too */
    const char *content_type;    /* may be NULL */
    const char *consumer;        /* the consumer name from the config */
    const struct hq_kv *headers; /* every message header, including http-* and hookmq-* */
    size_t n_headers;
    const unsigned char *body;   /* the raw request body, exactly as received */
    size_t body_len;
    uint32_t attempt;            /* 1 on the first delivery to this consumer */
    int64_t received_at_ms;      /* when the gateway received it (ms since the epoch) */
};

/* Filled by handle() to explain a RETRY or REJECT. */
struct hq_error {
    char message[1024];     /* goes to hookmq-last-error on DLQ copies and to the log */
    int64_t retry_after_ms; /* RETRY: the earliest useful retry (0 = the normal tier) */
};

/* One option from the consumer's `options` group. */
struct hq_handler_opt {
    const char *key;
    const char *value;               /* scalar as text; NULL for arrays */
    const char *const *values;       /* array elements as text; NULL for scalars */
    size_t n_values;
};

enum hq_handler_log_level {
    HQ_HLOG_ERROR = 0,
    HQ_HLOG_WARN = 1,
    HQ_HLOG_INFO = 2,
    HQ_HLOG_DEBUG = 3,
};

/* Status codes of the step calls (ABI 1.1). 0 = OK, negative = error. */
enum hq_step_status {
    HQ_STEP_OK = 0,
    HQ_STEP_EINVAL = -1,  /* bad name (1..64 bytes of [A-Za-z0-9._-], not starting with '.'),
                           * NULL data with len > 0,
                           * or ev is not the event of the handle() running on this thread */
    HQ_STEP_ETOOBIG = -2, /* the event's steps would exceed the consumer's steps.max_bytes */
    HQ_STEP_ENOMEM = -3,
};

/* Services of the host. Borrowed until fini(). */
struct hq_host_api {
    uint32_t struct_size;
    const char *host_version;
    const char *consumer;
    /* One log line through the worker's logger (text or JSON, with consumer=...). */
    void (*log)(enum hq_handler_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

    /* ---- ABI 1.1: durable steps (docs/plugins.md, "Durable steps"). Present when
     * struct_size > offsetof(struct hq_host_api, step_get); check with HQ_HOST_HAS_STEPS(api).
     * Call them only from inside handle(), on its thread, with the ev handle() was given. A
     * step saved with step_put travels with the event when this attempt ends in RETRY (and
     * to the DLQ), so later attempts get it back from step_get instead of running it again.
     * An attempt that crashes or times out saves nothing. */

    /* The saved result of step name: 1 with *data / *len set (borrowed until handle()
     * returns; *data may be NULL when *len is 0), or 0 when no earlier attempt (nor this one)
     * saved it (or name is invalid). */
    int (*step_get)(const struct hq_event *ev, const char *name, const void **data, size_t *len);
    /* Save the result of step name: data[0..len) is copied (the caller keeps data). Saving a
     * name again replaces it. HQ_STEP_OK, or a negative enum hq_step_status; a step over the
     * cap is also logged by the host. */
    int (*step_put)(const struct hq_event *ev, const char *name, const void *data, size_t len);
    /* How many steps the event carries now (saved by earlier attempts and by this one), and
     * the name of step i (0 <= i < count; borrowed until handle() returns; NULL past the
     * end), for logging. */
    size_t (*step_count)(const struct hq_event *ev);
    const char *(*step_name)(const struct hq_event *ev, size_t i);
};

/* Does api (ABI 1.1 or later) carry the step calls? A 1.0 host does not. */
#define HQ_HOST_HAS_STEPS(api)                                                                     \
    ((api)->struct_size >= offsetof(struct hq_host_api, step_name) + sizeof((api)->step_name) &&  \
     (api)->step_get != NULL)

struct hq_handler {
    uint32_t abi_major, abi_minor, struct_size;
    const char *name, *version;
    /* Called once per handler thread. Return 0 and set *state, or non-zero with a message
     * logged through api->log: the worker then exits with status 2. */
    int (*init)(const struct hq_host_api *api, const struct hq_handler_opt *opts, size_t n_opts,
                void **state);
    enum hq_verdict (*handle)(void *state, const struct hq_event *ev, struct hq_error *err);
    void (*fini)(void *state);
};

/* The one exported symbol. Return the table, or NULL to refuse a host of another major. */
HQ_HANDLER_EXPORT const struct hq_handler *hq_handler_get(uint32_t host_abi_major);

#ifdef __cplusplus
}
#endif

#endif
