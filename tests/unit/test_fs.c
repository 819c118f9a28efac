/* test_fs: the file-system helpers of core/fs.c (write-all, read retrying EINTR, read a whole
 * file, mkdir -p, fsync a directory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hq_fs.h"
#define HQTEST_DIR_NAME "fs"
#include "hqtest.h"

static void put_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

/* ---- write-all */

static int n_calls;

/* A writer that writes at most 7 bytes a call and is interrupted every third call. */
static ssize_t short_write(int fd, const void *p, size_t n)
{
    if (++n_calls % 3 == 0) {
        errno = EINTR;
        return -1;
    }
    return write(fd, p, n < 7 ? n : 7);
}

static ssize_t zero_write(int fd, const void *p, size_t n)
{
    (void)fd;
    (void)p;
    (void)n;
    return 0;
}

static void test_write_all_short_writes_pipe(void **state)
{
    unsigned char in[1000], out[1000];
    int pfd[2];
    size_t i, got = 0;

    (void)state;
    for (i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 31 + 7);
    assert_int_equal(pipe(pfd), 0);
    n_calls = 0;
    assert_int_equal(hq_write_all_with(short_write, pfd[1], in, sizeof(in)), HQ_OK);
    assert_true(n_calls > (int)(sizeof(in) / 7)); /* it did take many short writes */
    close(pfd[1]);
    while (got < sizeof(out)) {
        ssize_t r = read(pfd[0], out + got, sizeof(out) - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    assert_int_equal(read(pfd[0], out, 1), 0); /* nothing more than the bytes given */
    close(pfd[0]);
    assert_memory_equal(in, out, sizeof(in));
}

static void test_write_all_pipe_and_errors(void **state)
{
    char buf[16];
    int pfd[2];

    (void)state;
    assert_int_equal(pipe(pfd), 0);
    assert_int_equal(hq_write_all(pfd[1], "hello", 5), HQ_OK);
    assert_int_equal(hq_write_all(pfd[1], "", 0), HQ_OK);
    assert_int_equal(read(pfd[0], buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "hello", 5);
    /* a writer that makes no progress is an error, not a loop */
    assert_int_equal(hq_write_all_with(zero_write, pfd[1], "x", 1), HQ_EIO);
    close(pfd[0]);
    close(pfd[1]);
    errno = 0;
    assert_int_equal(hq_write_all(pfd[1], "x", 1), HQ_EIO); /* closed fd */
    assert_int_equal(errno, EBADF);
}

/* ---- read retrying EINTR */

static volatile sig_atomic_t n_signals;

static void count_signal(int sig)
{
    (void)sig;
    n_signals++;
}

/* A child interrupts the parent's blocked read with signals whose handler does not restart
 * system calls (no SA_RESTART), then writes one byte: hq_read_some returns that byte, not the
 * EINTR; then 0 at the end; HQ_EIO with errno on a bad fd. */
static void test_read_some(void **state)
{
    struct sigaction sa, old;
    char buf[8];
    int pfd[2], st;
    pid_t pid;

    (void)state;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = count_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    n_signals = 0;
    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int i;

        close(pfd[0]);
        for (i = 0; i < 5; i++) {
            usleep(20000);
            kill(getppid(), SIGUSR1);
        }
        usleep(20000);
        _exit(write(pfd[1], "x", 1) == 1 ? 0 : 1);
    }
    close(pfd[1]);
    assert_int_equal(hq_read_some(pfd[0], buf, sizeof(buf)), 1);
    assert_int_equal(buf[0], 'x');
    assert_true(n_signals >= 1);
    assert_int_equal(hq_read_some(pfd[0], buf, sizeof(buf)), 0); /* the writer is gone */
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(pfd[0]);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    errno = 0;
    assert_int_equal(hq_read_some(pfd[0], buf, sizeof(buf)), HQ_EIO); /* closed fd */
    assert_int_equal(errno, EBADF);
}

/* ---- read a whole file */

static void test_read_file(void **state)
{
    char path[PATH_MAX], *buf = (char *)1;
    size_t n = 99;

    (void)state;
    snprintf(path, sizeof(path), "%s/f", hqtest_dir);
    put_file(path, "abc\0def", 7);
    assert_int_equal(hq_read_file(path, 7, &buf, &n), HQ_OK); /* exactly the cap */
    assert_int_equal(n, 7);
    assert_memory_equal(buf, "abc\0def", 7);
    assert_int_equal(buf[7], '\0'); /* NUL-terminated */
    free(buf);

    put_file(path, "", 0);
    assert_int_equal(hq_read_file(path, 0, &buf, &n), HQ_OK);
    assert_int_equal(n, 0);
    assert_non_null(buf);
    assert_int_equal(buf[0], '\0');
    free(buf);
}

static void test_read_file_over_cap(void **state)
{
    char path[PATH_MAX], *buf = (char *)1;
    size_t n = 99;

    (void)state;
    snprintf(path, sizeof(path), "%s/big", hqtest_dir);
    put_file(path, "12345678", 8);
    assert_int_equal(hq_read_file(path, 7, &buf, &n), HQ_ETOOBIG);
    assert_null(buf);
    assert_int_equal(n, 0);
}

static void test_read_file_missing(void **state)
{
    char path[PATH_MAX], *buf = (char *)1;
    size_t n = 99;

    (void)state;
    snprintf(path, sizeof(path), "%s/no-such-file", hqtest_dir);
    errno = 0;
    assert_int_equal(hq_read_file(path, 100, &buf, &n), HQ_ENOTFOUND);
    assert_int_equal(errno, ENOENT);
    assert_null(buf);
    assert_int_equal(n, 0);
    /* a directory is not a file: read fails, errno says why */
    errno = 0;
    assert_int_equal(hq_read_file(hqtest_dir, 100, &buf, &n), HQ_EIO);
    assert_int_equal(errno, EISDIR);
    assert_null(buf);
}

/* Not a regular file (a pipe, as /dev/stdin would be): read to its end, under the cap. */
static void test_read_file_pipe(void **state)
{
    static char data[300000];
    char path[64], *buf = NULL;
    size_t n = 0, i;
    int pfd[2], status;
    pid_t pid;

    (void)state;
    for (i = 0; i < sizeof(data); i++)
        data[i] = (char)('a' + i % 26);
    assert_int_equal(pipe(pfd), 0);
    pid = fork(); /* more than a pipe holds: a writer beside the reader */
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        _exit(hq_write_all(pfd[1], data, sizeof(data)) == HQ_OK ? 0 : 1);
    }
    close(pfd[1]);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd[0]);
    assert_int_equal(hq_read_file(path, sizeof(data), &buf, &n), HQ_OK);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(status, 0);
    assert_int_equal(n, sizeof(data));
    assert_memory_equal(buf, data, sizeof(data));
    assert_int_equal(buf[n], '\0');
    free(buf);
    close(pfd[0]);

    assert_int_equal(pipe(pfd), 0);
    assert_int_equal(write(pfd[1], data, 10), 10);
    close(pfd[1]);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", pfd[0]);
    assert_int_equal(hq_read_file(path, 9, &buf, &n), HQ_ETOOBIG);
    assert_null(buf);
    close(pfd[0]);
}

/* ---- mkdir -p, fsync a directory */

static void test_mkdirs_nested_and_existing(void **state)
{
    char path[PATH_MAX];
    struct stat st;
    mode_t um = umask(022);

    (void)state;
    umask(um);
    snprintf(path, sizeof(path), "%s/a/b/c", hqtest_dir);
    assert_int_equal(hq_mkdirs(path), HQ_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0750 & ~um);
    assert_int_equal(hq_mkdirs(path), HQ_OK); /* existing: fine */
    snprintf(path, sizeof(path), "%s/a/b/c/", hqtest_dir);
    assert_int_equal(hq_mkdirs(path), HQ_OK); /* trailing slash */
    snprintf(path, sizeof(path), "%s/a/b/d", hqtest_dir);
    assert_int_equal(hq_mkdirs(path), HQ_OK); /* beside an existing one */
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(hq_mkdirs(""), HQ_EINVAL);
}

static void test_mkdirs_component_is_file(void **state)
{
    char file[PATH_MAX], path[PATH_MAX + 8];
    struct stat st;

    (void)state;
    snprintf(file, sizeof(file), "%s/plain", hqtest_dir);
    put_file(file, "x", 1);
    snprintf(path, sizeof(path), "%s/sub", file);
    errno = 0;
    assert_int_equal(hq_mkdirs(path), HQ_EIO);
    assert_int_equal(errno, ENOTDIR);
    errno = 0;
    assert_int_equal(hq_mkdirs(file), HQ_EIO); /* the last component */
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(stat(file, &st), 0);
    assert_true(S_ISREG(st.st_mode)); /* left alone */
}

static void test_fsync_dir(void **state)
{
    char path[PATH_MAX];

    (void)state;
    assert_int_equal(hq_fsync_dir(hqtest_dir, true), HQ_OK);
    snprintf(path, sizeof(path), "%s/entry", hqtest_dir);
    assert_int_equal(hq_fsync_dir(path, false), HQ_OK); /* its parent: hqtest_dir */
    assert_int_equal(hq_fsync_dir("relative", false), HQ_OK); /* "." */
    snprintf(path, sizeof(path), "%s/missing/entry", hqtest_dir);
    assert_int_equal(hq_fsync_dir(path, false), HQ_EIO);
    snprintf(path, sizeof(path), "%s/missing", hqtest_dir);
    assert_int_equal(hq_fsync_dir(path, true), HQ_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_all_short_writes_pipe),
        cmocka_unit_test(test_write_all_pipe_and_errors),
        cmocka_unit_test(test_read_some),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_read_file_over_cap),
        cmocka_unit_test(test_read_file_missing),
        cmocka_unit_test(test_read_file_pipe),
        cmocka_unit_test(test_mkdirs_nested_and_existing),
        cmocka_unit_test(test_mkdirs_component_is_file),
        cmocka_unit_test(test_fsync_dir),
    };

    return cmocka_run_group_tests(tests, hqtest_dir_setup, hqtest_dir_teardown);
}
