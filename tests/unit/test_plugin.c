/* Unit tests: the plugin loader (worker/plugin.c) with the test plugins of tests/handlers/:
 * good plugins load and run, every kind of bad plugin is refused with its message and leaves
 * nothing loaded, built-in names resolve, and the config's options reach plugins unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "hq_config.h"
#include "hq_time.h"
#include "plugin.h"

#include "hqtest_handler.h"

static const struct hq_host_api api = HQTEST_HOST_API("c1");

static void plugin_path(char *out, size_t outsz, const char *name)
{
    snprintf(out, outsz, "%s/hq_handler_%s.so", HQ_HANDLERS_DIR, name);
}

/* Is the object at path still mapped in this process? */
static int still_loaded(const char *path)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_NOLOAD);

    if (!dl)
        return 0;
    dlclose(dl);
    return 1;
}

static struct hq_event make_event(const char *id, const char *body)
{
    struct hq_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.struct_size = sizeof(ev);
    ev.id = id;
    ev.source = "gh";
    ev.type = "push";
    ev.routing_key = "gh.push";
    ev.content_type = "application/json";
    ev.consumer = "c1";
    ev.body = (const unsigned char *)body;
    ev.body_len = strlen(body);
    ev.attempt = 1;
    ev.received_at_ms = 1700000000123;
    return ev;
}

/* Load name with opts, run one event, unload; returns the verdict. */
static enum hq_verdict run_plugin(const char *name, const struct hq_handler_opt *opts, size_t n,
                                  const struct hq_event *ev, struct hq_error *err)
{
    struct hq_plugin p;
    char path[512], msg[512];
    void *state = NULL;
    enum hq_verdict v;

    plugin_path(path, sizeof(path), name);
    assert_int_equal(hq_plugin_load(path, &p, msg, sizeof(msg)), HQ_OK);
    assert_string_equal(msg, "");
    assert_non_null(p.h);
    assert_non_null(p.dl);
    assert_string_equal(p.name, path);
    assert_string_equal(p.h->name, name);
    assert_int_equal(p.h->init(&api, opts, n, &state), 0);
    memset(err, 0, sizeof(*err));
    v = p.h->handle(state, ev, err);
    p.h->fini(state);
    hq_plugin_unload(&p);
    assert_null(p.h);
    assert_null(p.dl);
    assert_false(still_loaded(path));
    return v;
}

static void test_builtins_resolve(void **state)
{
    static const char *const names[] = {"exec", "http", "log"};
    const struct hq_handler *want[] = {&hq_builtin_exec, &hq_builtin_http, &hq_builtin_log};
    struct hq_plugin p;
    char msg[256];
    size_t i;

    (void)state;
    for (i = 0; i < 3; i++) {
        memset(&p, 0xAA, sizeof(p));
        assert_int_equal(hq_plugin_load(names[i], &p, msg, sizeof(msg)), HQ_OK);
        assert_ptr_equal(p.h, want[i]);
        assert_null(p.dl);
        assert_string_equal(p.name, names[i]);
        assert_string_equal(p.h->name, names[i]);
        assert_int_equal(p.h->abi_major, HQ_HANDLER_ABI_MAJOR);
        assert_int_equal(p.h->struct_size, sizeof(struct hq_handler));
        hq_plugin_unload(&p);
        assert_null(p.h);
    }
    hq_plugin_unload(NULL);
    /* names are exact: no case folding, no prefixes */
    assert_int_equal(hq_plugin_load("EXEC", &p, msg, sizeof(msg)), HQ_ENOTFOUND);
    assert_non_null(strstr(msg, "EXEC: unknown handler"));
    assert_int_equal(hq_plugin_load("exec2", &p, msg, sizeof(msg)), HQ_ENOTFOUND);
    assert_int_equal(hq_plugin_load("", &p, msg, sizeof(msg)), HQ_EINVAL);
    assert_int_equal(hq_plugin_load(NULL, &p, msg, sizeof(msg)), HQ_EINVAL);
    /* a bare file name is not searched for in the library path */
    assert_int_equal(hq_plugin_load("hq_handler_ack.so", &p, msg, sizeof(msg)), HQ_ENOTFOUND);
    assert_null(p.h);
    assert_null(p.dl);
}

/* Expect the load of path to fail with rc and a message containing want; nothing stays
 * loaded and *out stays zeroed. */
static void expect_refused(const char *path, int rc, const char *want)
{
    struct hq_plugin p;
    char msg[512];

    memset(&p, 0x55, sizeof(p));
    assert_int_equal(hq_plugin_load(path, &p, msg, sizeof(msg)), rc);
    if (!strstr(msg, want))
        fail_msg("message \"%s\" lacks \"%s\"", msg, want);
    assert_true(strncmp(msg, path, strlen(path)) == 0); /* names the handler first */
    assert_null(p.h);
    assert_null(p.dl);
    assert_string_equal(p.name, "");
    assert_false(still_loaded(path));
    /* no message buffer is fine too */
    assert_int_equal(hq_plugin_load(path, &p, NULL, 0), rc);
}

static void test_bad_plugins_refused(void **state)
{
    char path[512], want[128];

    (void)state;
    plugin_path(path, sizeof(path), "badabi");
    snprintf(want, sizeof(want), ": ABI major 99, this worker speaks %u", HQ_HANDLER_ABI_MAJOR);
    expect_refused(path, HQ_EINVAL, want);
    plugin_path(path, sizeof(path), "nosym");
    expect_refused(path, HQ_EINVAL, ": no symbol hq_handler_get");
    plugin_path(path, sizeof(path), "nullget");
    expect_refused(path, HQ_EINVAL, ": hq_handler_get(1) refused this worker's ABI major");
    plugin_path(path, sizeof(path), "short");
    expect_refused(path, HQ_EINVAL, ": handler table too small (struct_size ");
    plugin_path(path, sizeof(path), "nofini");
    expect_refused(path, HQ_EINVAL, ": handler table lacks fini");
}

static void test_missing_and_non_elf(void **state)
{
    char path[] = "/tmp/hq-plugin-test-XXXXXX";
    char longp[600];
    struct hq_plugin p;
    char msg[512];
    int fd;

    (void)state;
    expect_refused("/nonexistent/dir/hq_handler_x.so", HQ_ENOTFOUND,
                   ": cannot open: No such file or directory");
    expect_refused("./no-such-plugin.so", HQ_ENOTFOUND, ": cannot open: ");
    expect_refused("/tmp", HQ_EINVAL, ": cannot open: not a regular file");

    fd = mkstemp(path);
    assert_true(fd >= 0);
    {
        static const char script[] = "#!/bin/sh\necho this is a shell script, not a shared "
                                     "object\nexit 0 # padding padding padding padding\n";
        assert_true(write(fd, script, sizeof(script) - 1) == (ssize_t)sizeof(script) - 1);
    }
    close(fd);
    expect_refused(path, HQ_EINVAL, ": cannot open: ");
    assert_int_equal(hq_plugin_load(path, &p, msg, sizeof(msg)), HQ_EINVAL);
    assert_non_null(strstr(msg, "ELF")); /* dlerror's reason is kept */
    /* an empty file */
    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    expect_refused(path, HQ_EINVAL, ": cannot open: ");
    unlink(path);

    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(hq_plugin_load(longp, &p, msg, sizeof(msg)), HQ_EINVAL);
    assert_non_null(strstr(msg, "handler path longer than 255 bytes"));
    /* a small message buffer is truncated, never overrun */
    msg[8] = 'X';
    assert_int_equal(hq_plugin_load("/nonexistent.so", &p, msg, 8), HQ_ENOTFOUND);
    assert_int_equal(strlen(msg), 7);
    assert_int_equal(msg[8], 'X');
}

static void test_good_plugins_run(void **state)
{
    struct hq_event ev = make_event("evt-1", "{\"ok\":true}");
    struct hq_error err;
    struct hq_handler_opt opt = {.key = "retry_after_ms", .value = "1500"};

    (void)state;
    assert_int_equal(run_plugin("ack", NULL, 0, &ev, &err), HQ_VERDICT_ACK);
    assert_int_equal(run_plugin("reject", NULL, 0, &ev, &err), HQ_VERDICT_REJECT);
    assert_string_equal(err.message, "reject plugin: evt-1 is unacceptable");
    assert_int_equal(run_plugin("retry", NULL, 0, &ev, &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "retry plugin: try evt-1 again later (attempt 1)");
    assert_int_equal(err.retry_after_ms, 0);
    assert_int_equal(run_plugin("retry", &opt, 1, &ev, &err), HQ_VERDICT_RETRY);
    assert_int_equal(err.retry_after_ms, 1500);
    /* crash without poison */
    assert_int_equal(run_plugin("crash", NULL, 0, &ev, &err), HQ_VERDICT_ACK);
}

static void test_slow_and_hang(void **state)
{
    struct hq_event ev = make_event("evt-2", "x");
    struct hq_error err;
    struct hq_handler_opt ms = {.key = "ms", .value = "150"};
    struct hq_handler_opt secs = {.key = "seconds", .value = "0"};
    struct hq_handler_opt bad = {.key = "ms", .value = "soon"};
    struct hq_plugin p;
    char path[512], msg[256];
    void *st = NULL;
    int64_t t0;

    (void)state;
    t0 = hq_mono_ms();
    assert_int_equal(run_plugin("slow", &ms, 1, &ev, &err), HQ_VERDICT_ACK);
    assert_true(hq_mono_ms() - t0 >= 150);
    t0 = hq_mono_ms();
    assert_int_equal(run_plugin("hang", &secs, 1, &ev, &err), HQ_VERDICT_ACK);
    assert_true(hq_mono_ms() - t0 < 1000);

    plugin_path(path, sizeof(path), "slow");
    assert_int_equal(hq_plugin_load(path, &p, msg, sizeof(msg)), HQ_OK);
    hqtest_log_buf[0] = '\0';
    assert_int_not_equal(p.h->init(&api, &bad, 1, &st), 0);
    assert_non_null(strstr(hqtest_log_buf, "slow: option ms"));
    hq_plugin_unload(&p);
}

/* crash.c aborts the whole process on "poison": run it in a child. */
static void test_crash_poison(void **state)
{
    struct hq_event ev = make_event("evt-3", "{\"x\":\"some poison here\"}");
    struct hq_plugin p;
    char path[512], msg[256];
    int status;
    pid_t pid;

    (void)state;
    plugin_path(path, sizeof(path), "crash");
    assert_int_equal(hq_plugin_load(path, &p, msg, sizeof(msg)), HQ_OK);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct hq_error err;
        void *st = NULL;
        signal(SIGABRT, SIG_DFL);
        if (p.h->init(&api, NULL, 0, &st) != 0)
            _exit(3);
        p.h->handle(st, &ev, &err);
        _exit(0); /* not reached */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    hq_plugin_unload(&p);
}

static void test_record(void **state)
{
    char file[] = "/tmp/hq-record-XXXXXX", buf[512];
    struct hq_handler_opt opts[2] = {{.key = "file"}, {.key = "fail_until", .value = "3"}};
    struct hq_handler_opt verdict[2] = {{.key = "file"}, {.key = "verdict", .value = "reject"}};
    struct hq_event ev = make_event("evt-4", "body");
    struct hq_error err;
    ssize_t n;
    int fd;

    (void)state;
    fd = mkstemp(file);
    assert_true(fd >= 0);
    opts[0].value = file;
    verdict[0].value = file;
    ev.attempt = 1;
    assert_int_equal(run_plugin("record", opts, 2, &ev, &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "record: attempt 1 < fail_until 3");
    ev.attempt = 2;
    assert_int_equal(run_plugin("record", opts, 2, &ev, &err), HQ_VERDICT_RETRY);
    ev.attempt = 3;
    assert_int_equal(run_plugin("record", opts, 2, &ev, &err), HQ_VERDICT_ACK);
    ev.attempt = 4;
    ev.id = "evt-5";
    assert_int_equal(run_plugin("record", verdict, 2, &ev, &err), HQ_VERDICT_REJECT);
    assert_int_equal(run_plugin("record", opts, 1, &ev, &err), HQ_VERDICT_ACK);
    n = read(fd, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "c1 evt-4 1\nc1 evt-4 2\nc1 evt-4 3\nc1 evt-5 4\nc1 evt-5 4\n");
    close(fd);
    unlink(file);
}

static void test_record_needs_file(void **state)
{
    struct hq_plugin p;
    struct hq_handler_opt bad[2] = {{.key = "file", .value = "/tmp/x"},
                                    {.key = "verdict", .value = "maybe"}};
    char path[512], msg[256];
    void *st = NULL;

    (void)state;
    plugin_path(path, sizeof(path), "record");
    assert_int_equal(hq_plugin_load(path, &p, msg, sizeof(msg)), HQ_OK);
    hqtest_log_buf[0] = '\0';
    assert_int_not_equal(p.h->init(&api, NULL, 0, &st), 0);
    assert_non_null(strstr(hqtest_log_buf, "record: option file is required"));
    assert_int_not_equal(p.h->init(&api, bad, 2, &st), 0);
    assert_non_null(strstr(hqtest_log_buf, "record: option verdict"));
    hq_plugin_unload(&p);
}

/* Two consumers may name the same .so: both loads share one mapping until both unload. */
static void test_load_twice(void **state)
{
    struct hq_plugin a, b;
    char path[512], msg[256];

    (void)state;
    plugin_path(path, sizeof(path), "ack");
    assert_int_equal(hq_plugin_load(path, &a, msg, sizeof(msg)), HQ_OK);
    assert_int_equal(hq_plugin_load(path, &b, msg, sizeof(msg)), HQ_OK);
    assert_ptr_equal(a.h, b.h);
    hq_plugin_unload(&a);
    assert_true(still_loaded(path));
    hq_plugin_unload(&b);
    assert_false(still_loaded(path));
}

/* The config's options are handed to plugins as struct hq_handler_opt without a copy. */
static void test_opts_from_config(void **state)
{
    static const char text[] =
        "consumers = ( { name = \"c1\"; bindings = [ \"#\" ]; handler = \"exec\";\n"
        "  options = { command = \"cat >/dev/null\"; timeout = \"5s\"; n = 7; on = true;\n"
        "              retry_exit_codes = [ 3, 4 ]; empty = [ ]; }; } );\n";
    struct hq_config *cfg = NULL;
    const struct hq_consumer_cfg *c;
    const struct hq_handler_opt *o;
    char err[512];

    (void)state;
    assert_int_equal(hq_config_load_string(text, "t.conf", &cfg, err, sizeof(err)), HQ_OK);
    c = hq_config_consumer(cfg, "c1");
    assert_non_null(c);
    o = hq_plugin_opts(c);
    assert_ptr_equal((const void *)o, (const void *)c->options);
    assert_int_equal(c->n_options, 6);
    assert_string_equal(o[0].key, "command");
    assert_string_equal(o[0].value, "cat >/dev/null");
    assert_null(o[0].values);
    assert_string_equal(o[1].key, "timeout");
    assert_string_equal(o[1].value, "5s");
    assert_string_equal(o[2].value, "7");
    assert_string_equal(o[3].value, "true");
    assert_string_equal(o[4].key, "retry_exit_codes");
    assert_null(o[4].value);
    assert_int_equal(o[4].n_values, 2);
    assert_string_equal(o[4].values[0], "3");
    assert_string_equal(o[4].values[1], "4");
    assert_int_equal(o[5].n_values, 0);
    assert_null(hq_plugin_opts(NULL));
    hq_config_free(cfg);
}

/* The built-in log handler: one quoted, escaped line per event; the body only at debug
 * level and truncated; ACK. */
static void test_builtin_log(void **state)
{
    struct hq_handler_opt opts[2] = {{.key = "level", .value = "warn"},
                                     {.key = "body_bytes", .value = "13"}};
    struct hq_handler_opt bad_level = {.key = "level", .value = "loud"};
    struct hq_handler_opt bad_bytes = {.key = "body_bytes", .value = "5000"};
    struct hq_handler_opt unknown = {.key = "format", .value = "json"};
    struct hq_handler_opt none = {.key = "body_bytes", .value = "0"};
    struct hq_event ev = make_event("id\"x\n\\y", "{\"secret\":\"\x01\xff payload\"}");
    struct hq_error err;
    void *st = NULL;
    char longid[600];

    (void)state;
    assert_int_equal(hq_builtin_log.init(&api, opts, 2, &st), 0);
    hqtest_log_buf[0] = '\0';
    assert_int_equal(hq_builtin_log.handle(st, &ev, &err), HQ_VERDICT_ACK);
    assert_string_equal(hqtest_log_buf,
                        "event consumer=\"c1\" id=\"id\\\"x\\x0a\\\\y\" source=\"gh\" "
                        "type=\"push\" routing_key=\"gh.push\" attempt=1 "
                        "content_type=\"application/json\" body_bytes=23\n"
                        "event body id=\"id\\\"x\\x0a\\\\y\" "
                        "body=\"{\\\"secret\\\":\\\"\\x01\\xff...\"\n");
    /* a long id is cut */
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    ev.id = longid;
    ev.content_type = NULL;
    hqtest_log_buf[0] = '\0';
    assert_int_equal(hq_builtin_log.handle(st, &ev, &err), HQ_VERDICT_ACK);
    assert_non_null(strstr(hqtest_log_buf, "aaa...\" source="));
    assert_non_null(strstr(hqtest_log_buf, "content_type=\"\""));
    assert_true(strlen(hqtest_log_buf) < 700);
    hq_builtin_log.fini(st);

    assert_int_equal(hq_builtin_log.init(&api, &none, 1, &st), 0);
    hqtest_log_buf[0] = '\0';
    assert_int_equal(hq_builtin_log.handle(st, &ev, &err), HQ_VERDICT_ACK);
    assert_null(strstr(hqtest_log_buf, "body="));
    hq_builtin_log.fini(st);

    hqtest_log_buf[0] = '\0';
    assert_int_not_equal(hq_builtin_log.init(&api, &bad_level, 1, &st), 0);
    assert_non_null(strstr(hqtest_log_buf, "log: option level"));
    assert_int_not_equal(hq_builtin_log.init(&api, &bad_bytes, 1, &st), 0);
    assert_non_null(strstr(hqtest_log_buf, "log: option body_bytes: expected 0..4096"));
    assert_int_not_equal(hq_builtin_log.init(&api, &unknown, 1, &st), 0);
    assert_non_null(strstr(hqtest_log_buf, "log: unknown option format"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins_resolve),
        cmocka_unit_test(test_bad_plugins_refused),
        cmocka_unit_test(test_missing_and_non_elf),
        cmocka_unit_test(test_good_plugins_run),
        cmocka_unit_test(test_slow_and_hang),
        cmocka_unit_test(test_crash_poison),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_record_needs_file),
        cmocka_unit_test(test_load_twice),
        cmocka_unit_test(test_opts_from_config),
        cmocka_unit_test(test_builtin_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
