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

#define HQTEST_LOG_LEVELS
#include "hqtest_handler.h"

static const struct hq_host_api api = HQTEST_HOST_API("demo");

static struct hq_event make_event(const char *id, const char *source)
{
    return HQTEST_EVENT(.id = id, .source = source, .type = "push", .routing_key = "x.push",
                        .consumer = "demo", .body = (const unsigned char *)"{}", .body_len = 2,
                        .attempt = 1, .received_at_ms = 1700000000000);
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
    hqtest_log_buf[0] = '\0';

    ev = make_event("e1", "github");
    assert_int_equal(p.h->handle(st, &ev, &err), HQ_VERDICT_ACK);
    ev = make_event("e2", "github");
    assert_int_equal(p.h->handle(st, &ev, &err), HQ_VERDICT_ACK);
    ev = make_event("e3", "shop");
    assert_int_equal(p.h->handle(st, &ev, &err), HQ_VERDICT_ACK);
    assert_string_equal(hqtest_log_buf,
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

    hqtest_log_buf[0] = '\0';
    p.h->fini(st);
    assert_string_equal(hqtest_log_buf, "2 hi total source=github count=2\n"
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
    hqtest_log_buf[0] = '\0';
    assert_int_not_equal(p.h->init(&api, &bad, 1, &st), 0);
    assert_string_equal(hqtest_log_buf, "0 hello: bad option greting (known: greeting, retry_source)\n");
    assert_int_equal(p.h->init(&api, NULL, 0, &st), 0);
    hqtest_log_buf[0] = '\0';
    assert_int_equal(p.h->handle(st, &ev, &err), HQ_VERDICT_ACK);
    assert_string_equal(hqtest_log_buf, "2 hello event id=e1 source=stripe count=1 attempt=1 bytes=2\n");
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
