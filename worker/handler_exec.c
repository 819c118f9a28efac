/* handler_exec.c: the built-in "exec" handler (docs/interface.md, docs/plugins.md). Runs a program
 * for each event with the raw body on stdin and the event's metadata in the environment; the
 * exit status is the verdict.
 *
 * Options:
 *   command          = "..."          run through /bin/sh -c (exactly one of command / argv)
 *   argv             = [ "/path", "arg", ... ]  run directly (execvp: argv[0] is looked up
 *                                     in the worker's PATH when it holds no '/')
 *   timeout          = "30s"          then the whole process group is SIGKILLed: RETRY
 *
 * Verdicts: exit 0 = ACK, 75 or a retry_exit_codes code = RETRY, any other exit = REJECT;
 * killed by a signal the worker did not send (systemctl stop/restart, the OOM killer) = RETRY.
 *   retry_exit_codes = [ 3, 69 ]      exit codes that mean RETRY besides 75 (1..255)
 *   env              = [ "LANG", "TZ" ]  variables copied from the worker's environment
 *                                     (read once at start-up; unset ones are skipped)
 *   stdout           = "null"         "null" (default) or "inherit" (the worker's stdout)
 *
 * The child's environment is exactly HOOKMQ_EVENT_ID, HOOKMQ_SOURCE, HOOKMQ_EVENT_TYPE,
 * HOOKMQ_ROUTING_KEY, HOOKMQ_ATTEMPT, HOOKMQ_CONSUMER, HOOKMQ_RECEIVED_AT (ms since the epoch),
 * PATH (the worker's, or /usr/local/bin:/usr/bin:/bin) and HOME (when the worker has one),
 * plus the `env` passthrough. stderr is captured; its last 1 KiB goes into the error message.
 *
 * Durable steps (docs/plugins.md, "Durable steps"), when the host has them (ABI 1.1): each
 * run gets HOOKMQ_STEPS_DIR, a private directory (mode 0700, made with mkdtemp under $TMPDIR
 * or /tmp) holding one file per step the event carries, named after the step (step names are
 * safe file names). `hookmq-step NAME -- COMMAND...` reads and writes it. After an exit that
 * means RETRY, every file there with a valid step name is saved with the event
 * (api->step_put); the directory is removed after every run.
 *
 * Process handling, safe in a multi-threaded worker: posix_spawn (glibc: clone(CLONE_VFORK),
 * nothing but async-signal-safe work in the child) with argv/envp prepared before; the child
 * gets its own session and process group (POSIX_SPAWN_SETSID), an empty signal mask, default
 * signal dispositions, and no descriptor but 0, 1 and 2 (every pipe here is O_CLOEXEC and
 * closefrom(3) covers descriptors other threads opened without it). The body is written with
 * poll() on a non-blocking pipe while stderr is drained and the child's exit is watched
 * (pidfd, else a 20 ms poll), so neither a child that never reads stdin nor a large body can
 * deadlock; SIGPIPE is blocked in the calling thread while writing and a SIGPIPE it caused is
 * consumed. The child is reaped with waitpid() on its pid only: the worker must not set
 * SIGCHLD to SIG_IGN. Background processes the command leaves behind survive a normal exit;
 * after a timeout the whole group is killed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hq_steps.h"
#include "hq_time.h"
#include "plugin.h"

#define EXEC_TAIL_MAX 1024           /* stderr bytes kept for the message */
#define EXEC_WRITE_CHUNK 65536       /* one write() to the child's stdin at most */
#define EXEC_DRAIN_MAX (1024 * 1024) /* stderr read after the child exited, at most */
#define EXEC_POLL_MS 20              /* exit polling interval without a pidfd */
#define EXEC_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

struct exec_state {
    const struct hq_host_api *api;
    char tmpdir[PATH_MAX - 64]; /* where steps directories are made ($TMPDIR or /tmp) */
    bool steps;                 /* the host has the step calls */
    char **argv;      /* owned, NULL-terminated */
    char **base_env;  /* owned "NAME=value" strings: PATH, HOME, env passthrough */
    size_t n_base_env;
    uint64_t timeout_ms;
    bool retry_code[256];
    bool inherit_stdout;
};

static void free_strv(char **v)
{
    size_t i;

    if (!v)
        return;
    for (i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

/* "name=value" in a new string, or NULL. */
static char *env_pair(const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value ? value : "");
    char *s = malloc(nl + vl + 2);

    if (!s)
        return NULL;
    memcpy(s, name, nl);
    s[nl] = '=';
    memcpy(s + nl + 1, value ? value : "", vl + 1);
    return s;
}

static bool env_name_ok(const char *s)
{
    size_t i;

    if (!s || !*s || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (i = 0; s[i]; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
        if (i > 255)
            return false;
    }
    return true;
}

static int add_base_env(struct exec_state *st, const char *name, const char *value)
{
    char *p = env_pair(name, value);

    if (!p)
        return -1;
    st->base_env[st->n_base_env++] = p;
    st->base_env[st->n_base_env] = NULL;
    return 0;
}

static void exec_fini(void *state)
{
    struct exec_state *st = state;

    if (!st)
        return;
    free_strv(st->argv);
    free_strv(st->base_env);
    free(st);
}

static int exec_init(const struct hq_host_api *api, const struct hq_handler_opt *opts, size_t n,
                     void **state)
{
    struct exec_state *st;
    const struct hq_handler_opt *command = NULL, *argv = NULL, *env = NULL;
    const char *path, *home;
    size_t i, k;

    st = calloc(1, sizeof(*st));
    if (!st)
        goto oom;
    st->api = api;
    st->timeout_ms = 30000;
    st->retry_code[75] = true;
    for (i = 0; i < n; i++) {
        const struct hq_handler_opt *o = &opts[i];
        if (strcmp(o->key, "command") == 0) {
            if (!o->value || !*o->value) {
                api->log(HQ_HLOG_ERROR, "exec: option command: expected a non-empty string");
                goto fail;
            }
            command = o;
        } else if (strcmp(o->key, "argv") == 0) {
            if (!o->values || o->n_values == 0 || !o->values[0] || !*o->values[0]) {
                api->log(HQ_HLOG_ERROR,
                         "exec: option argv: expected a non-empty array of strings");
                goto fail;
            }
            argv = o;
        } else if (strcmp(o->key, "timeout") == 0) {
            if (!o->value || hq_duration_parse(o->value, &st->timeout_ms) != HQ_OK ||
                st->timeout_ms == 0) {
                api->log(HQ_HLOG_ERROR, "exec: option timeout: expected a duration like \"30s\"");
                goto fail;
            }
        } else if (strcmp(o->key, "retry_exit_codes") == 0) {
            if (!o->values) {
                api->log(HQ_HLOG_ERROR, "exec: option retry_exit_codes: expected an array");
                goto fail;
            }
            for (k = 0; k < o->n_values; k++) {
                const char *s = o->values[k];
                char *end;
                long v;
                errno = 0;
                v = s ? strtol(s, &end, 10) : 0;
                if (!s || errno || end == s || *end || v < 1 || v > 255) {
                    api->log(HQ_HLOG_ERROR,
                             "exec: option retry_exit_codes: %s is not an exit code 1..255",
                             s ? s : "(null)");
                    goto fail;
                }
                st->retry_code[v] = true;
            }
        } else if (strcmp(o->key, "env") == 0) {
            if (!o->values) {
                api->log(HQ_HLOG_ERROR, "exec: option env: expected an array of names");
                goto fail;
            }
            for (k = 0; k < o->n_values; k++) {
                if (!env_name_ok(o->values[k]) || strncmp(o->values[k], "HOOKMQ_", 7) == 0) {
                    api->log(HQ_HLOG_ERROR,
                             "exec: option env: %s is not a variable name that can be passed",
                             o->values[k] ? o->values[k] : "(null)");
                    goto fail;
                }
            }
            env = o;
        } else if (strcmp(o->key, "stdout") == 0) {
            if (o->value && strcmp(o->value, "null") == 0) {
                st->inherit_stdout = false;
            } else if (o->value && strcmp(o->value, "inherit") == 0) {
                st->inherit_stdout = true;
            } else {
                api->log(HQ_HLOG_ERROR, "exec: option stdout: expected \"null\" or \"inherit\"");
                goto fail;
            }
        } else {
            api->log(HQ_HLOG_ERROR,
                     "exec: unknown option %s (known: command, argv, timeout, "
                     "retry_exit_codes, env, stdout)",
                     o->key);
            goto fail;
        }
    }
    if (!command == !argv) {
        api->log(HQ_HLOG_ERROR, "exec: set exactly one of the options command and argv");
        goto fail;
    }

    if (command) {
        st->argv = calloc(4, sizeof(char *));
        if (!st->argv || !(st->argv[0] = strdup("/bin/sh")) || !(st->argv[1] = strdup("-c")) ||
            !(st->argv[2] = strdup(command->value)))
            goto oom;
    } else {
        st->argv = calloc(argv->n_values + 1, sizeof(char *));
        if (!st->argv)
            goto oom;
        for (k = 0; k < argv->n_values; k++) {
            if (!(st->argv[k] = strdup(argv->values[k] ? argv->values[k] : "")))
                goto oom;
        }
    }

    /* getenv() here, once, in init: never while other threads might call setenv(). */
    st->steps = HQ_HOST_HAS_STEPS(api);
    {
        const char *t = getenv("TMPDIR");

        snprintf(st->tmpdir, sizeof(st->tmpdir), "%s",
                 t && t[0] == '/' && strlen(t) < sizeof(st->tmpdir) ? t : "/tmp");
    }
    st->base_env = calloc(2 + (env ? env->n_values : 0) + 1, sizeof(char *));
    if (!st->base_env)
        goto oom;
    path = getenv("PATH");
    home = getenv("HOME");
    if (add_base_env(st, "PATH", path && *path ? path : EXEC_DEFAULT_PATH) != 0)
        goto oom;
    if (home && add_base_env(st, "HOME", home) != 0)
        goto oom;
    for (k = 0; env && k < env->n_values; k++) {
        const char *name = env->values[k], *v;
        bool dup = strcmp(name, "PATH") == 0 || strcmp(name, "HOME") == 0;
        size_t j;
        for (j = 0; j < k && !dup; j++)
            dup = strcmp(env->values[j], name) == 0;
        if (dup || !(v = getenv(name)))
            continue;
        if (add_base_env(st, name, v) != 0)
            goto oom;
    }
    *state = st;
    return 0;
oom:
    api->log(HQ_HLOG_ERROR, "exec: out of memory");
fail:
    exec_fini(st);
    return -1;
}

/* Move fd to a number >= 3 (O_CLOEXEC), so dup2() onto 0/1/2 in the child always clears
 * FD_CLOEXEC. Returns the new fd or -1 (fd is closed either way on failure). */
static int above_stdio(int fd)
{
    int nfd;

    if (fd > 2)
        return fd;
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd;
}

static int make_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    p[0] = above_stdio(p[0]);
    p[1] = above_stdio(p[1]);
    if (p[0] < 0 || p[1] < 0) {
        if (p[0] >= 0)
            close(p[0]);
        if (p[1] >= 0)
            close(p[1]);
        return -1;
    }
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

struct tail {
    char buf[EXEC_TAIL_MAX];
    size_t len;
};

static void tail_add(struct tail *t, const char *p, size_t n)
{
    if (n >= sizeof(t->buf)) {
        memcpy(t->buf, p + n - sizeof(t->buf), sizeof(t->buf));
        t->len = sizeof(t->buf);
        return;
    }
    if (t->len + n > sizeof(t->buf)) {
        size_t drop = t->len + n - sizeof(t->buf);
        memmove(t->buf, t->buf + drop, t->len - drop);
        t->len -= drop;
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
}

/* Read what is available on fd into the tail; returns 0 at EOF or error (fd closed), 1 while
 * more may come. At most max bytes per call (0 = until EAGAIN). */
static int drain(int *fd, struct tail *t, size_t max)
{
    char buf[4096];
    size_t total = 0;

    for (;;) {
        ssize_t r = read(*fd, buf, sizeof(buf));
        if (r > 0) {
            tail_add(t, buf, (size_t)r);
            total += (size_t)r;
            if (max && total >= max)
                return 1;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        close_fd(fd);
        return 0;
    }
}

/* Append ": <stderr tail>" to err->message: the newest bytes that fit, starting on a UTF-8
 * boundary, NUL and control bytes other than newline and tab shown as '?', trailing
 * whitespace removed. */
static void append_tail(struct hq_error *err, const struct tail *t)
{
    size_t used = strlen(err->message), room, start, len, i;
    char *o;

    len = t->len;
    while (len > 0 && (t->buf[len - 1] == '\n' || t->buf[len - 1] == '\r' ||
                       t->buf[len - 1] == ' ' || t->buf[len - 1] == '\t'))
        len--;
    if (len == 0 || used + 3 >= sizeof(err->message))
        return;
    room = sizeof(err->message) - used - 3; /* ": " and NUL */
    start = len > room ? len - room : 0;
    while (start < len && ((unsigned char)t->buf[start] & 0xC0) == 0x80)
        start++;
    o = err->message + used;
    *o++ = ':';
    *o++ = ' ';
    for (i = start; i < len; i++) {
        unsigned char c = (unsigned char)t->buf[i];
        *o++ = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? '?' : (char)c;
    }
    *o = '\0';
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, (int)pid, 0);
    if (fd >= 0) {
        (void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
        return (int)fd;
    }
#else
    (void)pid;
#endif
    return -1; /* ENOSYS or a seccomp filter: fall back to polling */
}

static pid_t reap(pid_t pid, int *status, int flags)
{
    pid_t r;

    do {
        r = waitpid(pid, status, flags);
    } while (r < 0 && errno == EINTR);
    return r;
}

/* ---------------------------------------------------------------- durable steps */

#define STEP_FILE_MAX (96 * 1024) /* steps.max_bytes at most (core/config.c) */

/* Remove dir and what the command left in it (files, and directories one level down at most
 * are not expected: anything else is removed recursively too). */
static void rm_tree(int parent, const char *name)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d;
    struct dirent *e;

    if (fd >= 0 && (d = fdopendir(fd)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno == EISDIR)
                rm_tree(dirfd(d), e->d_name);
        }
        closedir(d);
    } else if (fd >= 0) {
        close(fd);
    }
    (void)unlinkat(parent, name, AT_REMOVEDIR);
}

static int write_all(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;

    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Make the run's steps directory in dir (PATH_MAX) with a file per carried step. */
static int steps_dir_make(const struct exec_state *st, const struct hq_event *ev, char *dir,
                          struct hq_error *err)
{
    const struct hq_host_api *api = st->api;
    size_t i, n;

    snprintf(dir, PATH_MAX, "%s/hookmq-steps-XXXXXX", st->tmpdir);
    if (!mkdtemp(dir)) {
        snprintf(err->message, sizeof(err->message), "exec: steps directory in %.900s: %s",
                 st->tmpdir, strerror(errno));
        dir[0] = '\0';
        return -1;
    }
    n = api->step_count(ev);
    for (i = 0; i < n; i++) {
        const char *name = api->step_name(ev, i);
        const void *data;
        size_t len;
        char path[PATH_MAX + 80];
        int fd, bad;

        if (!name || !api->step_get(ev, name, &data, &len))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        bad = fd < 0 || write_all(fd, data, len) != 0;
        if (fd >= 0 && close(fd) != 0)
            bad = 1;
        if (bad) {
            snprintf(err->message, sizeof(err->message), "exec: writing step %s: %s", name,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* After a RETRY exit: save every step file of dir with the event. */
static void steps_collect(const struct exec_state *st, const struct hq_event *ev,
                          const char *dir)
{
    const struct hq_host_api *api = st->api;
    unsigned char *buf = malloc(STEP_FILE_MAX + 1);
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!buf || !d) {
        api->log(HQ_HLOG_WARN, "exec: cannot read the steps directory: %s", strerror(errno));
        goto out;
    }
    while ((e = readdir(d)) != NULL) {
        const void *old;
        size_t oldlen, len = 0;
        ssize_t r;
        int fd, rc;

        if (!hq_step_name_ok(e->d_name, strlen(e->d_name)))
            continue; /* ".", "..", hookmq-step's temporary files, other names */
        fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue; /* not a regular file we may read (a symlink, ...) */
        while ((r = read(fd, buf + len, STEP_FILE_MAX + 1 - len)) > 0 ||
               (r < 0 && errno == EINTR))
            if (r > 0 && (len += (size_t)r) > STEP_FILE_MAX)
                break;
        close(fd);
        if (r < 0 || len > STEP_FILE_MAX) {
            api->log(HQ_HLOG_WARN, "exec: step %s not saved: %s", e->d_name,
                     r < 0 ? "cannot read it" : "larger than 96 KiB");
            continue;
        }
        if (api->step_get(ev, e->d_name, &old, &oldlen) && oldlen == len &&
            (len == 0 || memcmp(old, buf, len) == 0))
            continue; /* carried in already */
        rc = api->step_put(ev, e->d_name, buf, len);
        if (rc != HQ_STEP_OK)
            api->log(HQ_HLOG_WARN, "exec: step %s not saved (status %d)", e->d_name, rc);
    }
out:
    if (d)
        closedir(d);
    free(buf);
}

/* The environment of one run: owned strings in env[0..n), env[n] = NULL. */
static char **build_env(const struct exec_state *st, const struct hq_event *ev,
                        const char *steps_dir)
{
    char num[32], at[32];
    char **env;
    size_t n = 0, i;

    env = calloc(8 + st->n_base_env + 1, sizeof(char *));
    if (!env)
        return NULL;
    snprintf(num, sizeof(num), "%" PRIu32, ev->attempt);
    snprintf(at, sizeof(at), "%" PRId64, ev->received_at_ms);
    if (!(env[n++] = env_pair("HOOKMQ_EVENT_ID", ev->id)) ||
        !(env[n++] = env_pair("HOOKMQ_SOURCE", ev->source)) ||
        !(env[n++] = env_pair("HOOKMQ_EVENT_TYPE", ev->type)) ||
        !(env[n++] = env_pair("HOOKMQ_ROUTING_KEY", ev->routing_key)) ||
        !(env[n++] = env_pair("HOOKMQ_ATTEMPT", num)) ||
        !(env[n++] = env_pair("HOOKMQ_CONSUMER", ev->consumer)) ||
        !(env[n++] = env_pair("HOOKMQ_RECEIVED_AT", at)))
        goto fail;
    if (steps_dir && steps_dir[0] && !(env[n++] = env_pair("HOOKMQ_STEPS_DIR", steps_dir)))
        goto fail;
    for (i = 0; i < st->n_base_env; i++) {
        if (!(env[n++] = strdup(st->base_env[i])))
            goto fail;
    }
    return env;
fail:
    free_strv(env);
    return NULL;
}

static enum hq_verdict exec_handle(void *state, const struct hq_event *ev, struct hq_error *err)
{
    struct exec_state *st = state;
    enum hq_verdict verdict = HQ_VERDICT_RETRY;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_ok = false, attr_ok = false, spawned = false, exited = false, timed_out = false;
    bool caused_sigpipe = false, sigpipe_was_pending = false;
    sigset_t pipeset, oldmask, empty, defaults, pending;
    struct tail *tail = NULL;
    char **envp = NULL;
    char steps_dir[PATH_MAX] = "";
    int in[2] = {-1, -1}, er[2] = {-1, -1}, pidfd = -1, status = 0, rc;
    size_t off = 0;
    int64_t deadline;
    pid_t pid = -1;

    err->message[0] = '\0';
    err->retry_after_ms = 0;
    sigemptyset(&pipeset);
    sigaddset(&pipeset, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipeset, &oldmask);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1)
        sigpipe_was_pending = true;

    if (st->steps && steps_dir_make(st, ev, steps_dir, err) != 0)
        goto out; /* RETRY: the disk may have room later */
    tail = calloc(1, sizeof(*tail));
    envp = build_env(st, ev, steps_dir);
    if (!tail || !envp) {
        snprintf(err->message, sizeof(err->message), "exec: out of memory");
        goto out;
    }
    if (make_pipe(in) != 0 || make_pipe(er) != 0) {
        snprintf(err->message, sizeof(err->message), "exec: pipe: %s", strerror(errno));
        goto out;
    }
    if (fcntl(in[1], F_SETFL, O_NONBLOCK) != 0 || fcntl(er[0], F_SETFL, O_NONBLOCK) != 0) {
        snprintf(err->message, sizeof(err->message), "exec: fcntl: %s", strerror(errno));
        goto out;
    }

    if (posix_spawn_file_actions_init(&fa) != 0)
        goto oom;
    fa_ok = true;
    if (posix_spawn_file_actions_adddup2(&fa, in[0], 0) != 0 ||
        (!st->inherit_stdout &&
         posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0) != 0) ||
        posix_spawn_file_actions_adddup2(&fa, er[1], 2) != 0)
        goto oom;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (posix_spawn_file_actions_addclosefrom_np(&fa, 3) != 0)
        goto oom;
#endif
    if (posix_spawnattr_init(&attr) != 0)
        goto oom;
    attr_ok = true;
    sigemptyset(&empty);
    sigfillset(&defaults);
    sigdelset(&defaults, SIGKILL);
    sigdelset(&defaults, SIGSTOP);
    if (posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF) != 0 ||
        posix_spawnattr_setsigmask(&attr, &empty) != 0 ||
        posix_spawnattr_setsigdefault(&attr, &defaults) != 0)
        goto oom;

    rc = posix_spawnp(&pid, st->argv[0], &fa, &attr, st->argv, envp);
    if (rc != 0) {
        snprintf(err->message, sizeof(err->message), "cannot execute %s: %s", st->argv[0],
                 strerror(rc));
        /* A missing or unusable program will not appear by retrying; resource shortages may
         * go away. */
        if (rc == ENOENT || rc == EACCES || rc == ENOEXEC || rc == ENOTDIR || rc == ELOOP ||
            rc == ENAMETOOLONG || rc == EISDIR || rc == E2BIG)
            verdict = HQ_VERDICT_REJECT;
        goto out;
    }
    spawned = true;
    close_fd(&in[0]);
    close_fd(&er[1]);
    pidfd = open_pidfd(pid);
    if (ev->body_len == 0 || !ev->body)
        close_fd(&in[1]);

    deadline = hq_mono_ms() + (int64_t)(st->timeout_ms > INT64_MAX / 2 ? INT64_MAX / 2
                                                                       : st->timeout_ms);
    while (!exited) {
        struct pollfd pf[3];
        nfds_t npf = 0;
        int i_in = -1, i_er = -1, i_pid = -1, wait_ms, pr;
        int64_t left = deadline - hq_mono_ms();

        if (left <= 0) {
            timed_out = true;
            break;
        }
        wait_ms = left > INT_MAX ? INT_MAX : (int)left;
        if (in[1] >= 0) {
            pf[npf] = (struct pollfd){.fd = in[1], .events = POLLOUT};
            i_in = (int)npf++;
        }
        if (er[0] >= 0) {
            pf[npf] = (struct pollfd){.fd = er[0], .events = POLLIN};
            i_er = (int)npf++;
        }
        if (pidfd >= 0) {
            pf[npf] = (struct pollfd){.fd = pidfd, .events = POLLIN};
            i_pid = (int)npf++;
        } else if (wait_ms > EXEC_POLL_MS) {
            wait_ms = EXEC_POLL_MS;
        }
        pr = poll(pf, npf, wait_ms);
        if (pr < 0 && errno != EINTR) {
            snprintf(err->message, sizeof(err->message), "exec: poll: %s", strerror(errno));
            timed_out = true; /* cannot supervise the child any more: kill it */
            break;
        }
        if (pr > 0 && i_in >= 0 && pf[i_in].revents) {
            size_t want = ev->body_len - off;
            ssize_t w;
            if (want > EXEC_WRITE_CHUNK)
                want = EXEC_WRITE_CHUNK;
            w = write(in[1], ev->body + off, want);
            if (w > 0) {
                off += (size_t)w;
                if (off == ev->body_len)
                    close_fd(&in[1]); /* EOF for the child */
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                /* EPIPE: the child closed stdin without reading it all; not an error by
                 * itself, its exit status decides. */
                if (errno == EPIPE)
                    caused_sigpipe = true;
                close_fd(&in[1]);
            }
        }
        if (pr > 0 && i_er >= 0 && pf[i_er].revents)
            drain(&er[0], tail, EXEC_WRITE_CHUNK);
        if (pidfd < 0 || (pr > 0 && i_pid >= 0 && pf[i_pid].revents)) {
            pid_t r = reap(pid, &status, WNOHANG);
            if (r == pid) {
                exited = true;
            } else if (r < 0) {
                snprintf(err->message, sizeof(err->message), "exec: waitpid: %s",
                         strerror(errno));
                pid = -1; /* nothing left to reap (SIGCHLD ignored?) */
                goto out;
            }
        }
    }

    if (timed_out) {
        /* The child leads its own process group (setsid): kill every process in it. */
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        if (reap(pid, &status, 0) != pid)
            status = 0;
        exited = true;
    }
    /* Whatever the child (or a grandchild still holding the pipe) wrote before it exited. */
    if (er[0] >= 0)
        drain(&er[0], tail, EXEC_DRAIN_MAX);

    if (timed_out) {
        char d[32];
        hq_duration_format(st->timeout_ms, d, sizeof(d));
        if (!err->message[0])
            snprintf(err->message, sizeof(err->message), "timed out after %s", d);
        verdict = HQ_VERDICT_RETRY;
    } else if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        if (code == 0) {
            verdict = HQ_VERDICT_ACK;
        } else {
            verdict = st->retry_code[code] ? HQ_VERDICT_RETRY : HQ_VERDICT_REJECT;
            snprintf(err->message, sizeof(err->message), "exit %d", code);
            if (verdict == HQ_VERDICT_RETRY && steps_dir[0])
                steps_collect(st, ev, steps_dir);
        }
    } else if (WIFSIGNALED(status)) {
        /* The worker sends signals only on a timeout (above). Any other death by signal came
         * from outside: a service manager's stop or restart, the OOM killer, an operator. The
         * event itself did nothing wrong (docs/plugins.md, "exec"): try it again. */
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        verdict = HQ_VERDICT_RETRY;
        snprintf(err->message, sizeof(err->message), "killed by signal %d%s%s", sig,
                 abbrev ? " SIG" : "", abbrev ? abbrev : "");
    } else {
        verdict = HQ_VERDICT_RETRY;
        snprintf(err->message, sizeof(err->message), "exec: unexpected wait status %d", status);
    }
    if (verdict != HQ_VERDICT_ACK)
        append_tail(err, tail);
    goto out;

oom:
    snprintf(err->message, sizeof(err->message), "exec: out of memory");
out:
    if (spawned && !exited && pid > 0) {
        kill(-pid, SIGKILL);
        reap(pid, &status, 0);
    }
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&er[0]);
    close_fd(&er[1]);
    close_fd(&pidfd);
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    if (caused_sigpipe && !sigpipe_was_pending) {
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipeset, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    free_strv(envp);
    free(tail);
    if (steps_dir[0])
        rm_tree(AT_FDCWD, steps_dir);
    return verdict;
}

const struct hq_handler hq_builtin_exec = {
    .abi_major = HQ_HANDLER_ABI_MAJOR,
    .abi_minor = HQ_HANDLER_ABI_MINOR,
    .struct_size = sizeof(struct hq_handler),
    .name = "exec",
    .version = HQ_VERSION,
    .init = exec_init,
    .handle = exec_handle,
    .fini = exec_fini,
};
