/* downgrade.c: the durable steps example (docs/plugins.md, "Durable steps"), as a hookmq
 * handler plugin (ABI 1.1).
 *
 * A subscription was cancelled: load the user, downgrade the user's plan, send an email. Each
 * step's result is saved with api->step_put when it completes; when a later step fails and the
 * event is retried, api->step_get returns the saved results and the earlier steps do not run
 * again. Only send-email fails here (its first `fail_times` runs, a flaky mail server), so
 * load-user and downgrade-user run once and send-email runs fail_times + 1 times.
 *
 * Options (the consumer's `options` group):
 *   log        = "/path"  each real run of a step appends "<step> <event id>\n" to this file
 *   fail_times = "2"      how many runs of send-email fail (counted in the log file when there
 *                         is one, so also across redrives and handler threads; else per thread)
 *
 * Build, from a checkout:
 *   cc -shared -fPIC -fvisibility=hidden -I worker/include \
 *      worker/examples/downgrade/downgrade.c -o hq_example_downgrade.so
 * Use: consumers = ( { name = "billing"; bindings = [ "#" ];
 *                      handler = "/path/to/hq_example_downgrade.so";
 *                      options = { log = "/tmp/steps.log"; }; } ); */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hookmq/handler.h>

struct downgrade {
    const struct hq_host_api *api; /* borrowed until fini() */
    char log[4096];
    long fail_times;
    unsigned long sends; /* runs of send-email by this thread (without a log file) */
};

static int dg_init(const struct hq_host_api *api, const struct hq_handler_opt *opts,
                   size_t n_opts, void **state)
{
    struct downgrade *d;
    size_t i;

    /* a 1.0 host has no step calls: refuse to start rather than run every step every time */
    if (!HQ_HOST_HAS_STEPS(api)) {
        api->log(HQ_HLOG_ERROR, "downgrade: this worker has no durable steps (ABI 1.1)");
        return -1;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        api->log(HQ_HLOG_ERROR, "downgrade: out of memory");
        return -1;
    }
    d->api = api;
    d->fail_times = 2;
    for (i = 0; i < n_opts; i++) {
        const struct hq_handler_opt *o = &opts[i];
        char *end;

        if (strcmp(o->key, "log") == 0 && o->value && strlen(o->value) < sizeof(d->log)) {
            snprintf(d->log, sizeof(d->log), "%s", o->value);
        } else if (strcmp(o->key, "fail_times") == 0 && o->value) {
            errno = 0;
            d->fail_times = strtol(o->value, &end, 10);
            if (errno || end == o->value || *end || d->fail_times < 0 || d->fail_times > 1000) {
                api->log(HQ_HLOG_ERROR, "downgrade: fail_times must be 0..1000, not '%s'",
                         o->value);
                free(d);
                return -1;
            }
        } else {
            api->log(HQ_HLOG_ERROR, "downgrade: bad option %s (known: log, fail_times)", o->key);
            free(d);
            return -1;
        }
    }
    *state = d;
    return 0;
}

/* A real run of step for ev: one line in the log file (when there is one). */
static void ran(struct downgrade *d, const char *step, const struct hq_event *ev)
{
    FILE *f;

    d->api->log(HQ_HLOG_INFO, "downgrade: running %s for %s (attempt %u)", step, ev->id,
                (unsigned)ev->attempt);
    if (!d->log[0] || !(f = fopen(d->log, "a")))
        return;
    fprintf(f, "%s %s\n", step, ev->id);
    fclose(f);
}

/* How many times send-email ran for ev before (the log file, else this thread's count). */
static unsigned long sends_before(struct downgrade *d, const struct hq_event *ev)
{
    char line[512], want[400];
    unsigned long n = 0;
    FILE *f;

    if (!d->log[0])
        return d->sends;
    snprintf(want, sizeof(want), "send-email %s\n", ev->id);
    if (!(f = fopen(d->log, "r")))
        return 0;
    while (fgets(line, sizeof(line), f))
        n += strcmp(line, want) == 0;
    fclose(f);
    return n;
}

static enum hq_verdict dg_handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    struct downgrade *d = state;
    const struct hq_host_api *api = d->api;
    const void *user, *plan;
    size_t user_len, plan_len, i;
    char buf[256];
    int n, rc;

    /* the steps this event carries from earlier attempts (names only, for the log) */
    for (i = 0; i < api->step_count(ev); i++)
        api->log(HQ_HLOG_DEBUG, "downgrade: %s has step %s", ev->id, api->step_name(ev, i));

    /* step 1: load-user (here: made up from the event; in real life a database read) */
    if (!api->step_get(ev, "load-user", &user, &user_len)) {
        ran(d, "load-user", ev);
        n = snprintf(buf, sizeof(buf), "{\"user\":\"%.100s\",\"plan\":\"pro\"}", ev->id);
        if ((rc = api->step_put(ev, "load-user", buf, (size_t)n)) != HQ_STEP_OK) {
            snprintf(err->message, sizeof(err->message), "downgrade: saving load-user: %d", rc);
            return HQ_VERDICT_RETRY;
        }
        api->step_get(ev, "load-user", &user, &user_len);
    }
    /* step 2: downgrade-user (a write that must not happen twice) */
    if (!api->step_get(ev, "downgrade-user", &plan, &plan_len)) {
        ran(d, "downgrade-user", ev);
        if ((rc = api->step_put(ev, "downgrade-user", "free", 4)) != HQ_STEP_OK) {
            snprintf(err->message, sizeof(err->message), "downgrade: saving downgrade-user: %d",
                     rc);
            return HQ_VERDICT_RETRY;
        }
        api->step_get(ev, "downgrade-user", &plan, &plan_len);
    }
    /* step 3: send-email, which fails its first fail_times runs */
    if (!api->step_get(ev, "send-email", NULL, NULL)) {
        unsigned long before = sends_before(d, ev);

        ran(d, "send-email", ev);
        d->sends++;
        if ((long)before < d->fail_times) {
            snprintf(err->message, sizeof(err->message),
                     "downgrade: mail server unavailable (run %lu of send-email)", before + 1);
            return HQ_VERDICT_RETRY;
        }
        api->log(HQ_HLOG_INFO, "downgrade: emailed %.*s: plan now %.*s", (int)user_len,
                 (const char *)user, (int)plan_len, (const char *)plan);
        (void)api->step_put(ev, "send-email", "sent", 4);
    }
    return HQ_VERDICT_ACK;
}

static void dg_fini(void *state)
{
    free(state);
}

static const struct hq_handler downgrade_handler = {
    .abi_major = HQ_HANDLER_ABI_MAJOR,
    .abi_minor = HQ_HANDLER_ABI_MINOR,
    .struct_size = sizeof(struct hq_handler),
    .name = "downgrade",
    .version = "1.0",
    .init = dg_init,
    .handle = dg_handle,
    .fini = dg_fini,
};

HQ_HANDLER_EXPORT const struct hq_handler *hq_handler_get(uint32_t host_abi_major)
{
    return host_abi_major == HQ_HANDLER_ABI_MAJOR ? &downgrade_handler : NULL;
}
