/* Unit tests: the example plugin worker/examples/hello, loaded the way the worker loads a
 * plugin (hq_plugin_load): options, per-source counting, RETRY with a message, log lines,
 * option errors, and that the .so exports nothing but hq_handler_get. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <cmocka.h>

#include "plugin.h"

static char log_buf[8192];

static void test_log(enum hq_handler_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void test_log(enum hq_handler_log_level level, const char *fmt, ...)
{
    va_list ap;
    size_t used = strlen(log_buf);

    va_start(ap, fmt);
    if (used < sizeof(log_buf) - 8) {
        used += (size_t)snprintf(log_buf + used, sizeof(log_buf) - used, "%d ", (int)level);
        vsnprintf(log_buf + used, sizeof(log_buf) - used - 1, fmt, ap);
        used = strlen(log_buf);
        log_buf[used] = '\n';
        log_buf[used + 1] = '\0';
    }
    va_end(ap);
}

static const struct hq_host_api api = {
    .struct_size = sizeof(struct hq_host_api),
    .host_version = "test",
    .consumer = "demo",
    .log = test_log,
};

static struct hq_event make_event(const char *id, const char *source)
{
    struct hq_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.struct_size = sizeof(ev);
    ev.id = id;
    ev.source = source;
    ev.type = "push";
    ev.routing_key = "x.push";
    ev.consumer = "demo";
    ev.body = (const unsigned char *)"{}";
    ev.body_len = 2;
    ev.attempt = 1;
    ev.received_at_ms = 1700000000000;
    return ev;
}

static void test_hello_counts_and_retries(void **state)
{
    struct hq_handler_opt opts[] = {{.key = "greeting", .value = "hi"},
                                    {.key = "retry_source", .value = "stripe"}};
    struct hq_plugin p;
    struct hq_error err;
    struct hq_event ev;
    char msg[512];
    void *st = NULL;

    (void)state;
    assert_int_equal(hq_plugin_load(HQ_HELLO_SO, &p, msg, sizeof(msg)), HQ_OK);
    assert_non_null(p.dl);
    assert_string_equal(p.h->name, "hello");
    assert_string_equal(p.h->version, "1.0.0");
    assert_int_equal(p.h->init(&api, opts, 2, &st), 0);
    log_buf[0] = '\0';

    ev = make_event("e1", "github");
    assert_int_equal(p.h->handle(st, &ev, &err), HQ_VERDICT_ACK);
    ev = make_event("e2", "github");
    assert_int_equal(p.h->handle(st, &ev, &err), HQ_VERDICT_ACK);
    ev = make_event("e3", "shop");
    assert_int_equal(p.h->handle(st, &ev, &err), HQ_VERDICT_ACK);
    assert_string_equal(log_buf,
                        "2 hi event id=e1 source=github count=1 attempt=1 bytes=2\n"
                        "2 hi event id=e2 source=github count=2 attempt=1 bytes=2\n"
                        "2 hi event id=e3 source=shop count=1 attempt=1 bytes=2\n");

    memset(&err, 0, sizeof(err));
    ev = make_event("e4", "stripe");
    assert_int_equal(p.h->handle(st, &ev, &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "hello: not ready for stripe events yet");
    assert_int_equal(err.retry_after_ms, 5000);

    /* a host whose event struct is older than the plugin needs: never read past it */
    ev = make_event("e5", "github");
    ev.struct_size = 8;
    assert_int_equal(p.h->handle(st, &ev, &err), HQ_VERDICT_RETRY);

    log_buf[0] = '\0';
    p.h->fini(st);
    assert_string_equal(log_buf, "2 hi total source=github count=2\n"
                                 "2 hi total source=shop count=1\n");
    hq_plugin_unload(&p);
}

static void test_hello_defaults_and_bad_option(void **state)
{
    struct hq_handler_opt bad = {.key = "greting", .value = "x"};
    struct hq_plugin p;
    struct hq_error err;
    struct hq_event ev = make_event("e1", "stripe");
    char msg[512];
    void *st = NULL;

    (void)state;
    assert_int_equal(hq_plugin_load(HQ_HELLO_SO, &p, msg, sizeof(msg)), HQ_OK);
    log_buf[0] = '\0';
    assert_int_not_equal(p.h->init(&api, &bad, 1, &st), 0);
    assert_string_equal(log_buf, "0 hello: bad option greting (known: greeting, retry_source)\n");
    assert_int_equal(p.h->init(&api, NULL, 0, &st), 0);
    log_buf[0] = '\0';
    assert_int_equal(p.h->handle(st, &ev, &err), HQ_VERDICT_ACK);
    assert_string_equal(log_buf, "2 hello event id=e1 source=stripe count=1 attempt=1 bytes=2\n");
    p.h->fini(st);
    hq_plugin_unload(&p);
}

/* Built with hidden visibility: internal functions are not exported. */
static void test_hello_exports_only_the_entry(void **state)
{
    void *dl = dlopen(HQ_HELLO_SO, RTLD_NOW | RTLD_LOCAL);

    (void)state;
    assert_non_null(dl);
    assert_non_null(dlsym(dl, "hq_handler_get"));
    assert_null(dlsym(dl, "hello_handle"));
    assert_null(dlsym(dl, "hello_init"));
    assert_null(dlsym(dl, "hello_table"));
    assert_null(dlsym(dl, "count_source"));
    dlclose(dl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_counts_and_retries),
        cmocka_unit_test(test_hello_defaults_and_bad_option),
        cmocka_unit_test(test_hello_exports_only_the_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
