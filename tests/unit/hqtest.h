/* hqtest.h: scaffolding the cmocka unit tests share, in one place (the C side of
 * tests/integration/hqtest.py). Header-only: each test program includes it once.
 *
 * - A scratch directory per test group: hqtest_dir, made by hqtest_dir_setup and removed with
 *   everything in it by hqtest_dir_teardown (cmocka setup/teardown functions). Define
 *   HQTEST_DIR_NAME before the include to name it /tmp/hq-test-<name>-XXXXXX.
 * - With HQTEST_FSYNC_RECORDER defined before the include: this program's fsync() records the
 *   path of every descriptor it syncs (the static library's modules call it), so a test can
 *   ask hqtest_was_fsynced(path) after resetting hqtest_n_fsynced to 0.
 *
 * The worker's handler tests have theirs in hqtest_handler.h. */
#ifndef HQTEST_H
#define HQTEST_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef HQTEST_DIR_NAME
#define HQTEST_DIR_NAME "unit"
#endif

static char hqtest_dir[256] __attribute__((unused));

static inline int hqtest_dir_setup(void **state)
{
    (void)state;
    snprintf(hqtest_dir, sizeof(hqtest_dir), "/tmp/hq-test-%s-XXXXXX", HQTEST_DIR_NAME);
    return mkdtemp(hqtest_dir) ? 0 : -1;
}

static inline int hqtest_dir_teardown(void **state)
{
    char cmd[sizeof(hqtest_dir) + 16];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", hqtest_dir);
    return system(cmd) == 0 ? 0 : -1;
}

#ifdef HQTEST_FSYNC_RECORDER
#include <sys/syscall.h>

static char hqtest_fsynced[32][PATH_MAX];
static int hqtest_n_fsynced __attribute__((unused));

/* Replaces the C library's fsync() in this program: records what was fsync'd, then syncs. */
int fsync(int fd)
{
    char link[64], target[PATH_MAX];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n > 0 && hqtest_n_fsynced < 32) {
        target[n] = '\0';
        snprintf(hqtest_fsynced[hqtest_n_fsynced++], PATH_MAX, "%s", target);
    }
    return (int)syscall(SYS_fsync, fd);
}

/* Was path fsync'd since hqtest_n_fsynced was last set to 0? */
static inline bool hqtest_was_fsynced(const char *path)
{
    int i;

    for (i = 0; i < hqtest_n_fsynced; i++)
        if (strcmp(hqtest_fsynced[i], path) == 0)
            return true;
    return false;
}
#endif

#endif
