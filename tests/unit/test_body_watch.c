/* Unit tests: the body deadline watchdog (gateway/bodywatch.c): its per-slot decision, and
 * against real threads and signals: a poll() blocked past the deadline fails with EINTR, again
 * every GW_BODY_KICK_MS while armed; a disarmed slot leaves no signal pending and gets none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "gw.h"
#include "hq_time.h"

#define SIGNO (SIGRTMIN + 3)

static volatile sig_atomic_t handled;

static void on_signal(int sig)
{
    (void)sig;
    handled++;
}

static void test_due(void **state)
{
    int64_t next = 1000;
    bool kick = true;

    (void)state;
    /* no deadline: never */
    assert_int_equal(gw__body_watch_due(5000, 0, &next, &kick), INT64_MAX);
    assert_false(kick);
    assert_int_equal(next, 1000);
    /* before the deadline: look again then */
    next = 1000;
    assert_int_equal(gw__body_watch_due(999, 1000, &next, &kick), 1000);
    assert_false(kick);
    /* at it: kick, and again GW_BODY_KICK_MS later */
    assert_int_equal(gw__body_watch_due(1000, 1000, &next, &kick), 1000 + GW_BODY_KICK_MS);
    assert_true(kick);
    assert_int_equal(gw__body_watch_due(1100, 1000, &next, &kick), 1000 + GW_BODY_KICK_MS);
    assert_false(kick);
    assert_int_equal(gw__body_watch_due(1000 + GW_BODY_KICK_MS + 5, 1000, &next, &kick),
                     1005 + 2 * GW_BODY_KICK_MS);
    assert_true(kick);
}

/* poll() on a pipe nobody writes, up to ms: 0 on timeout, -1 with errno */
static int wait_pipe(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};

    return poll(&p, 1, ms);
}

static bool signal_pending(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigpending(&set);
    return sigismember(&set, SIGNO) == 1;
}

static void test_watch(void **state)
{
    struct sigaction sa;
    struct gw_body_slot *slot;
    sigset_t block, old;
    int fds[2], rc;
    int64_t t0, took;

    (void)state;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART, as the gateway */
    assert_int_equal(sigaction(SIGNO, &sa, NULL), 0);
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(gw_body_watch_start(SIGNO, 50), HQ_OK);
    assert_int_equal(gw_body_watch_start(SIGNO, 50), HQ_OK); /* again: no-op */
    slot = gw_body_slot_new();
    assert_non_null(slot);

    /* a blocked poll is cut at the deadline */
    t0 = hq_mono_ms();
    gw_body_slot_arm(slot, t0 + 150);
    rc = wait_pipe(fds[0], 5000);
    took = hq_mono_ms() - t0;
    assert_int_equal(rc, -1);
    assert_int_equal(errno, EINTR);
    assert_true(took >= 140);
    assert_true(took < 2000);
    /* and again while the slot stays armed */
    t0 = hq_mono_ms();
    rc = wait_pipe(fds[0], 5000);
    took = hq_mono_ms() - t0;
    assert_int_equal(rc, -1);
    assert_int_equal(errno, EINTR);
    assert_true(took < GW_BODY_KICK_MS + 1000);
    gw_body_slot_disarm(slot);
    assert_false(signal_pending());

    /* disarmed before its deadline: no signal */
    handled = 0;
    gw_body_slot_arm(slot, hq_mono_ms() + 100);
    gw_body_slot_disarm(slot);
    assert_int_equal(wait_pipe(fds[0], 300), 0);
    assert_int_equal(handled, 0);

    /* a signal sent just before the disarm is taken by it, never left for a later wait */
    gw_body_slot_arm(slot, 1); /* long past: signalled at the watchdog's next look */
    sigemptyset(&block);
    sigaddset(&block, SIGNO);
    pthread_sigmask(SIG_BLOCK, &block, &old); /* hold it pending */
    while (!signal_pending())
        (void)wait_pipe(fds[0], 10);
    gw_body_slot_disarm(slot);
    assert_false(signal_pending());
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    gw_body_slot_free(slot);
    gw_body_watch_stop();
    gw_body_watch_stop(); /* again: no-op */
    gw_body_slot_arm(NULL, 1);   /* NULL-safe */
    gw_body_slot_disarm(NULL);
    gw_body_slot_free(NULL);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due),
        cmocka_unit_test(test_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
