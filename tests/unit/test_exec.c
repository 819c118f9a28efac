/* Unit tests: the built-in exec handler (worker/handler_exec.c): the exact environment,
 * the body on stdin (large, binary, unread), exit status and signal mapping, the timeout
 * killing the whole process group, argv form, the stderr tail, descriptors and signal state
 * of the child, option errors, and concurrent use from several threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "hq_time.h"
#include "plugin.h"
#include "hqtest_handler.h"

extern char **environ;

static char self_exe[4096];
static char tmpdir[] = "/tmp/hq-exec-test-XXXXXX";
static const struct hq_host_api api = HQTEST_HOST_API("c1");

static struct hq_event make_event(const void *body, size_t len)
{
    return HQTEST_EVENT(.id = "evt-42", .source = "shop", .type = "products/create now",
                        .routing_key = "shop.products.create_now",
                        .content_type = "application/json", .consumer = "c1", .body = body,
                        .body_len = len, .attempt = 2, .received_at_ms = 1700000000123);
}

/* Options are built from NULL-terminated lists: scalar "key=value", array "key[]=a|b|c". */
struct optset {
    struct hq_handler_opt o[8];
    const char *vals[8][8];
    char store[8][256];
    size_t n;
};

static void opt_scalar(struct optset *s, const char *key, const char *value)
{
    s->o[s->n] = (struct hq_handler_opt){.key = key, .value = value};
    s->n++;
}

static void opt_array(struct optset *s, const char *key, const char *const *values, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        s->vals[s->n][i] = values[i];
    s->o[s->n] = (struct hq_handler_opt){.key = key, .values = s->vals[s->n], .n_values = n};
    s->n++;
}

/* init + handle + fini. */
static enum hq_verdict run(const struct optset *s, const struct hq_event *ev,
                           struct hq_error *err)
{
    void *st = NULL;
    enum hq_verdict v;

    if (hq_builtin_exec.init(&api, s->o, s->n, &st) != 0)
        fail_msg("init failed: %s", hqtest_log_buf);
    memset(err, 0x7f, sizeof(*err));
    v = hq_builtin_exec.handle(st, ev, err);
    hq_builtin_exec.fini(st);
    return v;
}

static enum hq_verdict run_cmd(const char *command, const struct hq_event *ev,
                               struct hq_error *err)
{
    struct optset s = {.n = 0};

    opt_scalar(&s, "command", command);
    return run(&s, ev, err);
}

static void tmp_path(char *out, size_t outsz, const char *name)
{
    snprintf(out, outsz, "%s/%s", tmpdir, name);
}

static size_t read_file(const char *path, char *buf, size_t bufsz)
{
    int fd = open(path, O_RDONLY);
    size_t got = 0;
    ssize_t r;

    assert_true(fd >= 0);
    while (got < bufsz && (r = read(fd, buf + got, bufsz - got)) > 0)
        got += (size_t)r;
    close(fd);
    return got;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_environment_exact(void **state)
{
    const char *argv[] = {self_exe, "--dump-env", NULL};
    const char *pass[] = {"HQ_TEST_PASS", "HQ_TEST_UNSET", "HOME"};
    char file[512], buf[65536], *got[64], *want[64], wbuf[4096];
    struct hq_event ev = make_event("", 0);
    struct optset s = {.n = 0};
    struct hq_error err;
    size_t n, ngot = 0, nwant = 0, i, off = 0;
    const char *home = getenv("HOME"), *path = getenv("PATH");

    (void)state;
    tmp_path(file, sizeof(file), "env.out");
    argv[2] = file;
    setenv("HQ_TEST_PASS", "passed value", 1);
    unsetenv("HQ_TEST_UNSET");
    setenv("HQ_TEST_NOT_PASSED", "secret", 1);
    opt_array(&s, "argv", argv, 3);
    opt_array(&s, "env", pass, 3);
    assert_int_equal(run(&s, &ev, &err), HQ_VERDICT_ACK);

    n = read_file(file, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    for (i = 0; i < n; i += strlen(buf + i) + 1)
        got[ngot++] = buf + i;

#define WANT(...)                                                                                  \
    do {                                                                                           \
        want[nwant++] = wbuf + off;                                                                \
        off += (size_t)snprintf(wbuf + off, sizeof(wbuf) - off, __VA_ARGS__) + 1;                 \
    } while (0)
    WANT("HOOKMQ_EVENT_ID=evt-42");
    WANT("HOOKMQ_SOURCE=shop");
    WANT("HOOKMQ_EVENT_TYPE=products/create now");
    WANT("HOOKMQ_ROUTING_KEY=shop.products.create_now");
    WANT("HOOKMQ_ATTEMPT=2");
    WANT("HOOKMQ_CONSUMER=c1");
    WANT("HOOKMQ_RECEIVED_AT=1700000000123");
    WANT("PATH=%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    if (home)
        WANT("HOME=%s", home);
    WANT("HQ_TEST_PASS=passed value");
#undef WANT
    qsort(got, ngot, sizeof(got[0]), cmp_str);
    qsort(want, nwant, sizeof(want[0]), cmp_str);
    for (i = 0; i < ngot && i < nwant; i++)
        assert_string_equal(got[i], want[i]);
    assert_int_equal(ngot, nwant);
    unsetenv("HQ_TEST_PASS");
    unsetenv("HQ_TEST_NOT_PASSED");
}

static unsigned char *make_body(size_t len)
{
    unsigned char *b = malloc(len);
    uint32_t x = 2463534242u;
    size_t i;

    assert_non_null(b);
    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (unsigned char)(i < 256 ? i : x); /* every byte value, NUL included */
    }
    return b;
}

static void test_body_on_stdin(void **state)
{
    const size_t len = 2 * 1024 * 1024;
    unsigned char *body = make_body(len);
    char *back = malloc(len + 16);
    const char *argv[] = {"/bin/sh", "-c", "cat > \"$1\"", "sh", NULL};
    char file[512];
    struct hq_event ev = make_event(body, len);
    struct optset s = {.n = 0};
    struct hq_error err;

    (void)state;
    assert_non_null(back);
    tmp_path(file, sizeof(file), "body.out");
    argv[4] = file;
    opt_array(&s, "argv", argv, 5);
    assert_int_equal(run(&s, &ev, &err), HQ_VERDICT_ACK);
    assert_int_equal(read_file(file, back, len + 16), len);
    assert_memory_equal(back, body, len);

    /* an empty body is an empty stdin (EOF at once) */
    ev = make_event("", 0);
    assert_int_equal(run_cmd("n=$(wc -c); [ \"$n\" = 0 ] || exit 3", &ev, &err), HQ_VERDICT_ACK);
    free(back);
    free(body);
}

static int sigpipe_pending(void)
{
    sigset_t p;

    sigpending(&p);
    return sigismember(&p, SIGPIPE);
}

static int sigpipe_blocked(void)
{
    sigset_t m;

    pthread_sigmask(SIG_SETMASK, NULL, &m);
    return sigismember(&m, SIGPIPE);
}

/* The test process keeps SIGPIPE's default action: a leaked SIGPIPE would kill it. */
static void test_child_never_reads_stdin(void **state)
{
    const size_t len = 2 * 1024 * 1024;
    unsigned char *body = make_body(len);
    struct hq_event ev = make_event(body, len);
    struct hq_error err;
    int64_t t0;

    (void)state;
    assert_true(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
    t0 = hq_mono_ms();
    assert_int_equal(run_cmd("exit 0", &ev, &err), HQ_VERDICT_ACK);
    /* exits later, still without reading: the writer must not block on the full pipe */
    assert_int_equal(run_cmd("sleep 0.3; exit 0", &ev, &err), HQ_VERDICT_ACK);
    /* closes stdin first: EPIPE, SIGPIPE consumed */
    assert_int_equal(run_cmd("exec 0<&-; sleep 0.2; exit 3", &ev, &err), HQ_VERDICT_REJECT);
    assert_string_equal(err.message, "exit 3");
    /* reads a little, then exits */
    assert_int_equal(run_cmd("head -c 10 >/dev/null; exit 0", &ev, &err), HQ_VERDICT_ACK);
    assert_true(hq_mono_ms() - t0 < 5000);
    assert_false(sigpipe_pending());
    assert_false(sigpipe_blocked());
    free(body);
}

static void test_exit_codes(void **state)
{
    const char *codes[] = {"3", "9"};
    struct hq_event ev = make_event("{}", 2);
    struct optset s = {.n = 0};
    struct hq_error err;

    (void)state;
    assert_int_equal(run_cmd("exit 0", &ev, &err), HQ_VERDICT_ACK);
    assert_int_equal(run_cmd("exit 75", &ev, &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "exit 75");
    assert_int_equal(err.retry_after_ms, 0);
    assert_int_equal(run_cmd("exit 3", &ev, &err), HQ_VERDICT_REJECT);
    assert_string_equal(err.message, "exit 3");
    assert_int_equal(run_cmd("exit 1", &ev, &err), HQ_VERDICT_REJECT);
    assert_int_equal(run_cmd("exit 255", &ev, &err), HQ_VERDICT_REJECT);
    assert_int_equal(run_cmd("exit 74", &ev, &err), HQ_VERDICT_REJECT);

    opt_scalar(&s, "command", "exit \"$HOOKMQ_ATTEMPT\"");
    opt_array(&s, "retry_exit_codes", codes, 2);
    ev.attempt = 9;
    assert_int_equal(run(&s, &ev, &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "exit 9");
    ev.attempt = 3;
    assert_int_equal(run(&s, &ev, &err), HQ_VERDICT_RETRY);
    ev.attempt = 75;
    assert_int_equal(run(&s, &ev, &err), HQ_VERDICT_RETRY); /* 75 stays a retry */
    ev.attempt = 4;
    assert_int_equal(run(&s, &ev, &err), HQ_VERDICT_REJECT);
    ev.attempt = 0;
    assert_int_equal(run(&s, &ev, &err), HQ_VERDICT_ACK);
}

/* A death by a signal the worker did not send is a RETRY (docs/plugins.md, "exec"). */
static void test_killed_by_signal(void **state)
{
    struct hq_event ev = make_event("{}", 2);
    struct hq_error err;

    (void)state;
    assert_int_equal(run_cmd("echo dying >&2; kill -KILL $$", &ev, &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "killed by signal 9 SIGKILL: dying");
    assert_int_equal(run_cmd("kill -SEGV $$", &ev, &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "killed by signal 11 SIGSEGV");
}

struct outside_kill {
    const char *pid_file;
    int sig;
    pid_t killed;
};

/* Wait for the child's pid in pid_file, then send it sig, as systemd's stop (without
 * KillMode=mixed) or the OOM killer would. */
static void *outside_killer(void *arg)
{
    struct outside_kill *k = arg;
    int64_t pid = 0;
    int i;

    for (i = 0; i < 500 && pid <= 1; i++) {
        FILE *f = fopen(k->pid_file, "r");
        if (f) {
            if (fscanf(f, "%" SCNd64, &pid) != 1)
                pid = 0;
            fclose(f);
        }
        if (pid <= 1)
            usleep(10000);
    }
    if (pid > 1 && kill((pid_t)pid, k->sig) == 0)
        k->killed = (pid_t)pid;
    return NULL;
}

/* The child is killed by another process while the handler waits for it: RETRY, never
 * REJECT, and the message names the signal. */
static void test_killed_from_outside(void **state)
{
    static const int sigs[] = {SIGKILL, SIGTERM};
    struct hq_event ev = make_event("{}", 2);
    struct hq_error err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        char file[512], cmd[1800], want[64];
        struct outside_kill k = {.pid_file = file, .sig = sigs[i]};
        struct optset s = {.n = 0};
        pthread_t t;
        int64_t t0;

        snprintf(file, sizeof(file), "%s/outside-%d.pid", tmpdir, sigs[i]);
        unlink(file);
        /* exec: the pid written is the pid of the process that is killed */
        snprintf(cmd, sizeof(cmd), "echo $$ > '%s.tmp' && mv '%s.tmp' '%s' && exec sleep 30",
                 file, file, file);
        opt_scalar(&s, "command", cmd);
        opt_scalar(&s, "timeout", "20s");
        assert_int_equal(pthread_create(&t, NULL, outside_killer, &k), 0);
        t0 = hq_mono_ms();
        assert_int_equal(run(&s, &ev, &err), HQ_VERDICT_RETRY);
        assert_true(hq_mono_ms() - t0 < 15000); /* the kill ended it, not the timeout */
        pthread_join(t, NULL);
        assert_true(k.killed > 1);
        snprintf(want, sizeof(want), "killed by signal %d SIG%s", sigs[i], sigabbrev_np(sigs[i]));
        assert_string_equal(err.message, want);
    }
}

/* The child starts with an empty signal mask and default dispositions, whatever the worker
 * thread had blocked or ignored. */
static void test_child_signal_state(void **state)
{
    struct hq_event ev = make_event("{}", 2);
    struct hq_error err;
    sigset_t block, old;
    void (*old_int)(int);

    (void)state;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    old_int = signal(SIGINT, SIG_IGN);
    assert_int_equal(run_cmd("kill -TERM $$; sleep 2; exit 0", &ev, &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "killed by signal 15 SIGTERM");
    assert_int_equal(run_cmd("kill -INT $$; sleep 2; exit 0", &ev, &err), HQ_VERDICT_RETRY);
    assert_string_equal(err.message, "killed by signal 2 SIGINT");
    signal(SIGINT, old_int);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The child leads its own session/process group; stdout is /dev/null; no descriptor of the
 * worker leaks into it. */
static void test_child_process_state(void **state)
{
    struct hq_event ev = make_event("{}", 2);
    struct hq_error err;
    char cmd[512];
    int leak;

    (void)state;
    leak = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */
    assert_true(leak > 2);
    snprintf(cmd, sizeof(cmd),
             "set -- $(cat /proc/$$/stat); [ \"$5\" = \"$$\" ] || exit 3; "
             "[ \"$6\" = \"$$\" ] || exit 4; "
             "[ \"$(readlink /proc/$$/fd/1)\" = /dev/null ] || exit 5; "
             "[ -e /proc/$$/fd/0 ] && [ -e /proc/$$/fd/2 ] || exit 6; "
             "[ -e /proc/$$/fd/%d ] && exit 7; exit 0",
             leak);
    assert_int_equal(run_cmd(cmd, &ev, &err), HQ_VERDICT_ACK);
    close(leak);
}

static int64_t read_pid(const char *file)
{
    char buf[64];
    size_t n;
    int i;

    for (i = 0; i < 100; i++) {
        struct stat stt;
        if (stat(file, &stt) == 0 && stt.st_size > 0)
            break;
        usleep(10000);
    }
    n = read_file(file, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    return strtoll(buf, NULL, 10);
}

static void test_timeout_kills_group(void **state)
{
    const char *argv[] = {"/bin/sh", "-c",
                          "sleep 100 & echo $! > \"$1\"; echo started >&2; wait; exit 0", "sh",
                          NULL};
    struct hq_event ev = make_event("{}", 2);
    struct optset s = {.n = 0};
    struct hq_error err;
    char file[512];
    int64_t t0, el;
    pid_t gpid, r;
    int status = 0, i;

    (void)state;
    /* Orphans are re-parented to this process, so the grandchild can be waited for. */
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    tmp_path(file, sizeof(file), "grandchild.pid");
    argv[4] = file;
    opt_array(&s, "argv", argv, 5);
    opt_scalar(&s, "timeout", "300ms");
    t0 = hq_mono_ms();
    assert_int_equal(run(&s, &ev, &err), HQ_VERDICT_RETRY);
    el = hq_mono_ms() - t0;
    assert_true(el >= 300);
    assert_true(el < 3000);
    assert_string_equal(err.message, "timed out after 300ms: started");
    assert_int_equal(err.retry_after_ms, 0);

    gpid = (pid_t)read_pid(file);
    assert_true(gpid > 1);
    for (i = 0, r = 0; i < 200 && r == 0; i++) {
        r = waitpid(gpid, &status, WNOHANG);
        if (r == 0)
            usleep(10000);
    }
    assert_int_equal(r, gpid); /* the grandchild is gone ... */
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL); /* ... killed with its group */
    /* and the handler reaped its own child: nothing else is left to wait for */
    assert_int_equal(waitpid(-1, &status, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0), 0);
}

/* A child that exits on time is not killed for a background process holding its stderr. */
static void test_background_holder_does_not_block(void **state)
{
    struct hq_event ev = make_event("{}", 2);
    struct optset s = {.n = 0};
    struct hq_error err;
    int64_t t0;

    (void)state;
    opt_scalar(&s, "command", "(sleep 1 >&2 &) ; echo bye >&2; exit 3");
    opt_scalar(&s, "timeout", "5s");
    t0 = hq_mono_ms();
    assert_int_equal(run(&s, &ev, &err), HQ_VERDICT_REJECT);
    assert_string_equal(err.message, "exit 3: bye");
    assert_true(hq_mono_ms() - t0 < 900);
}

static void test_argv_form(void **state)
{
    const char *argv[] = {"/bin/sh", "-c", "printf '%s|%s' \"$1\" \"$2\" >&2; exit 3", "sh",
                          "two words", "$HOME;*`x`"};
    const char *missing[] = {"/nonexistent/prog", "x"};
    const char *bare[] = {"true"};
    struct hq_event ev = make_event("{}", 2);
    struct optset s = {.n = 0}, m = {.n = 0}, b = {.n = 0};
    struct hq_error err;

    (void)state;
    opt_array(&s, "argv", argv, 6);
    assert_int_equal(run(&s, &ev, &err), HQ_VERDICT_REJECT);
    assert_string_equal(err.message, "exit 3: two words|$HOME;*`x`");

    opt_array(&m, "argv", missing, 2);
    assert_int_equal(run(&m, &ev, &err), HQ_VERDICT_REJECT);
    assert_string_equal(err.message,
                        "cannot execute /nonexistent/prog: No such file or directory");
    /* a bare name is looked up in PATH */
    opt_array(&b, "argv", bare, 1);
    assert_int_equal(run(&b, &ev, &err), HQ_VERDICT_ACK);
    /* the shell form reports a missing command as exit 127 */
    assert_int_equal(run_cmd("no-such-command-hq", &ev, &err), HQ_VERDICT_REJECT);
    assert_true(strncmp(err.message, "exit 127: ", 10) == 0);
    assert_non_null(strstr(err.message, "no-such-command-hq"));
}

static void test_stderr_tail(void **state)
{
    struct hq_event ev = make_event("{}", 2);
    struct hq_error err;
    size_t len;

    (void)state;
    assert_int_equal(run_cmd("head -c 5000 /dev/zero | tr '\\000' a >&2; printf 'END\\n\\n' >&2;"
                             " exit 3",
                             &ev, &err),
                     HQ_VERDICT_REJECT);
    len = strlen(err.message);
    assert_int_equal(len, sizeof(err.message) - 1);
    assert_true(strncmp(err.message, "exit 3: aaaa", 12) == 0);
    assert_string_equal(err.message + len - 6, "aaaEND");
    /* control bytes are masked, newlines kept, multi-line output ends up whole */
    assert_int_equal(run_cmd("printf 'one\\001two\\nthree\\n' >&2; exit 2", &ev, &err),
                     HQ_VERDICT_REJECT);
    assert_string_equal(err.message, "exit 2: one?two\nthree");
    /* on success stderr is not reported */
    assert_int_equal(run_cmd("echo noise >&2; exit 0", &ev, &err), HQ_VERDICT_ACK);
}

/* A large stderr while the body is still being written: neither side blocks. */
static void test_stderr_and_stdin_together(void **state)
{
    const size_t len = 1024 * 1024;
    unsigned char *body = make_body(len);
    struct hq_event ev = make_event(body, len);
    struct hq_error err;

    (void)state;
    assert_int_equal(run_cmd("head -c 3000000 /dev/zero >&2; cat >/dev/null; echo done >&2; exit 4",
                             &ev, &err),
                     HQ_VERDICT_REJECT);
    assert_non_null(strstr(err.message, "done"));
    free(body);
}

static void expect_init_fails(struct optset *s, const char *want)
{
    void *st = NULL;

    hqtest_log_buf[0] = '\0';
    assert_int_not_equal(hq_builtin_exec.init(&api, s->o, s->n, &st), 0);
    if (!strstr(hqtest_log_buf, want))
        fail_msg("log \"%s\" lacks \"%s\"", hqtest_log_buf, want);
}

static void test_option_errors(void **state)
{
    const char *bad0[] = {"0"}, *bad256[] = {"256"}, *badx[] = {"3x"}, *empty[] = {""};
    const char *envbad[] = {"HOOKMQ_SOURCE"}, *envbad2[] = {"1X"}, *argv[] = {"/bin/true"};
    struct optset s;

    (void)state;
    s = (struct optset){.n = 0};
    expect_init_fails(&s, "exec: set exactly one of the options command and argv");
    s = (struct optset){.n = 0};
    opt_scalar(&s, "command", "true");
    opt_array(&s, "argv", argv, 1);
    expect_init_fails(&s, "exactly one");
    s = (struct optset){.n = 0};
    opt_scalar(&s, "command", "");
    expect_init_fails(&s, "exec: option command");
    s = (struct optset){.n = 0};
    opt_array(&s, "argv", empty, 0);
    expect_init_fails(&s, "exec: option argv");
    s = (struct optset){.n = 0};
    opt_array(&s, "argv", empty, 1);
    expect_init_fails(&s, "exec: option argv");
    s = (struct optset){.n = 0};
    opt_scalar(&s, "command", "true");
    opt_scalar(&s, "timeout", "10");
    expect_init_fails(&s, "exec: option timeout");
    s = (struct optset){.n = 0};
    opt_scalar(&s, "command", "true");
    opt_scalar(&s, "timeout", "0s");
    expect_init_fails(&s, "exec: option timeout");
    s = (struct optset){.n = 0};
    opt_scalar(&s, "command", "true");
    opt_array(&s, "retry_exit_codes", bad0, 1);
    expect_init_fails(&s, "0 is not an exit code 1..255");
    s = (struct optset){.n = 0};
    opt_scalar(&s, "command", "true");
    opt_array(&s, "retry_exit_codes", bad256, 1);
    expect_init_fails(&s, "256 is not an exit code");
    s = (struct optset){.n = 0};
    opt_scalar(&s, "command", "true");
    opt_array(&s, "retry_exit_codes", badx, 1);
    expect_init_fails(&s, "3x is not an exit code");
    s = (struct optset){.n = 0};
    opt_scalar(&s, "command", "true");
    opt_scalar(&s, "retry_exit_codes", "3");
    expect_init_fails(&s, "expected an array");
    s = (struct optset){.n = 0};
    opt_scalar(&s, "command", "true");
    opt_array(&s, "env", envbad, 1);
    expect_init_fails(&s, "HOOKMQ_SOURCE is not a variable name that can be passed");
    s = (struct optset){.n = 0};
    opt_scalar(&s, "command", "true");
    opt_array(&s, "env", envbad2, 1);
    expect_init_fails(&s, "1X is not");
    s = (struct optset){.n = 0};
    opt_scalar(&s, "command", "true");
    opt_scalar(&s, "stdout", "file");
    expect_init_fails(&s, "exec: option stdout");
    s = (struct optset){.n = 0};
    opt_scalar(&s, "command", "true");
    opt_scalar(&s, "comand", "true");
    expect_init_fails(&s, "exec: unknown option comand");
}

struct worker_arg {
    int idx;
    int ok;
};

static void *worker(void *p)
{
    struct worker_arg *a = p;
    const size_t len = 256 * 1024 + (size_t)a->idx;
    unsigned char *body = make_body(len);
    char *back = malloc(len + 1), file[512], name[32];
    const char *argv[] = {"/bin/sh", "-c", "cat > \"$1\"; exit \"$2\"", "sh", NULL, "0"};
    struct optset s = {.n = 0};
    struct hq_event ev = make_event(body, len);
    struct hq_error err;
    void *st = NULL;
    int i, fd;

    snprintf(name, sizeof(name), "worker-%d", a->idx);
    tmp_path(file, sizeof(file), name);
    argv[4] = file;
    opt_array(&s, "argv", argv, 6);
    a->ok = hq_builtin_exec.init(&api, s.o, s.n, &st) == 0;
    for (i = 0; a->ok && i < 5; i++) {
        ssize_t r;
        size_t got = 0;
        if (hq_builtin_exec.handle(st, &ev, &err) != HQ_VERDICT_ACK) {
            a->ok = 0;
            break;
        }
        fd = open(file, O_RDONLY);
        while (fd >= 0 && (r = read(fd, back + got, len + 1 - got)) > 0)
            got += (size_t)r;
        if (fd >= 0)
            close(fd);
        if (got != len || memcmp(back, body, len) != 0)
            a->ok = 0;
    }
    hq_builtin_exec.fini(st);
    free(back);
    free(body);
    return NULL;
}

static void test_concurrent_threads(void **state)
{
    pthread_t th[4];
    struct worker_arg a[4];
    int i;

    (void)state;
    for (i = 0; i < 4; i++) {
        a[i] = (struct worker_arg){.idx = i, .ok = 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &a[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(a[i].ok);
    }
}

static int teardown_all(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Helper mode: write this process's environment, NUL-separated, to argv[2]. */
static int dump_env(const char *file)
{
    FILE *f = fopen(file, "w");
    char **e;

    if (!f)
        return 1;
    for (e = environ; *e; e++)
        fwrite(*e, 1, strlen(*e) + 1, f);
    return fclose(f) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_environment_exact),
        cmocka_unit_test(test_body_on_stdin),
        cmocka_unit_test(test_child_never_reads_stdin),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_killed_by_signal),
        cmocka_unit_test(test_killed_from_outside),
        cmocka_unit_test(test_child_signal_state),
        cmocka_unit_test(test_child_process_state),
        cmocka_unit_test(test_timeout_kills_group),
        cmocka_unit_test(test_background_holder_does_not_block),
        cmocka_unit_test(test_argv_form),
        cmocka_unit_test(test_stderr_tail),
        cmocka_unit_test(test_stderr_and_stdin_together),
        cmocka_unit_test(test_option_errors),
        cmocka_unit_test(test_concurrent_threads),
    };
    ssize_t n;

    if (argc == 3 && strcmp(argv[1], "--dump-env") == 0)
        _exit(dump_env(argv[2]));
    n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n <= 0)
        return 1;
    self_exe[n] = '\0';
    if (!mkdtemp(tmpdir))
        return 1;
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}
