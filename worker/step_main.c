/* step_main.c: hookmq-step, the durable steps helper of the exec handler (docs/plugins.md,
 * "Durable steps"; man hookmq-step).
 *
 *   hookmq-step NAME -- COMMAND [ARG]...
 *
 * In a command run by hookmq-worker's exec handler (which sets HOOKMQ_STEPS_DIR): when step
 * NAME completed in an earlier attempt of the event, print its saved output and exit 0 without
 * running COMMAND. Otherwise run COMMAND (execvp, standard input and error inherited) with its
 * standard output going to a temporary file in the directory; if it exits 0, the file is
 * fsync'd and renamed to NAME (atomic: a step is saved whole or not at all), then printed. If
 * COMMAND fails, nothing is saved and hookmq-step exits with COMMAND's status (128 + signal
 * when it was killed). The worker saves the directory with the event when the run ends in
 * RETRY (exit 75). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hq_steps.h"

#define PROG "hookmq-step"
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " NAME -- COMMAND [ARG]...\n"
            "       " PROG " --help | --version\n"
            "\n"
            "Run COMMAND once per event: when step NAME already completed in an earlier attempt\n"
            "(a file NAME in $HOOKMQ_STEPS_DIR, set by hookmq-worker's exec handler), print its\n"
            "saved output; otherwise run COMMAND, save its standard output atomically if it\n"
            "exits 0, and print it. NAME: 1 to 64 bytes of A-Z a-z 0-9 . _ - (not starting with\n"
            "'.'). The worker keeps the saved steps with the event when the handler exits 75\n"
            "(RETRY), so a retry does not run them again.\n"
            "\n"
            "Exit status: 0 the step's output was printed; COMMAND's own status when it failed\n"
            "(128 + N when killed by signal N; 127 not found, 126 not executable); 1 runtime\n"
            "error (the steps directory cannot be read or written); 2 usage error or\n"
            "HOOKMQ_STEPS_DIR not set.\n");
}

/* Copy fd to standard output. */
static int cat_fd(int fd)
{
    char buf[65536];
    ssize_t r;

    while ((r = read(fd, buf, sizeof(buf))) != 0) {
        const char *p = buf;

        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (r > 0) {
            ssize_t w = write(STDOUT_FILENO, p, (size_t)r);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -1;
            p += w;
            r -= w;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir, *name;
    char path[4096], tmp[4200];
    int fd, status, rc = EXIT_RUNTIME;
    pid_t pid;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        printf(PROG " %s\n", HQ_VERSION);
        return 0;
    }
    if (argc < 4 || strcmp(argv[2], "--") != 0 || argv[1][0] == '-') {
        if (argc >= 2 && argv[1][0] == '-')
            fprintf(stderr, PROG ": unknown option %s\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
    }
    name = argv[1];
    if (!hq_step_name_ok(name, strlen(name))) {
        fprintf(stderr,
                PROG ": bad step name '%s' (1 to 64 bytes of A-Z a-z 0-9 . _ -, not starting "
                     "with '.')\n",
                name);
        return EXIT_USAGE;
    }
    dir = getenv("HOOKMQ_STEPS_DIR");
    if (!dir || !*dir) {
        fprintf(stderr, PROG ": HOOKMQ_STEPS_DIR is not set (run it from a command of "
                        "hookmq-worker's exec handler)\n");
        return EXIT_USAGE;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
        fprintf(stderr, PROG ": HOOKMQ_STEPS_DIR is too long\n");
        return EXIT_USAGE;
    }

    /* done in an earlier attempt: its output, COMMAND not run */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        rc = cat_fd(fd) == 0 ? 0 : EXIT_RUNTIME;
        if (rc)
            fprintf(stderr, PROG ": reading step %s: %s\n", name, strerror(errno));
        close(fd);
        return rc;
    }
    if (errno != ENOENT) {
        fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
        return EXIT_RUNTIME;
    }

    /* run it, its output into a temporary file (a name no step can have) */
    snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", dir, name, (long)getpid());
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, PROG ": %s: %s\n", tmp, strerror(errno));
        return EXIT_RUNTIME;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        if (dup2(fd, STDOUT_FILENO) < 0)
            _exit(EXIT_RUNTIME);
        execvp(argv[3], argv + 3);
        fprintf(stderr, PROG ": cannot execute %s: %s\n", argv[3], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, PROG ": waitpid: %s\n", strerror(errno));
            goto fail;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        goto fail; /* not saved: the step runs again next time */
    }
    if (fsync(fd) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, PROG ": saving step %s: %s\n", name, strerror(errno));
        goto fail;
    }
    if (lseek(fd, 0, SEEK_SET) != 0 || cat_fd(fd) != 0) {
        fprintf(stderr, PROG ": printing step %s: %s\n", name, strerror(errno));
        close(fd);
        return EXIT_RUNTIME;
    }
    close(fd);
    return 0;
fail:
    close(fd);
    unlink(tmp);
    return rc;
}
