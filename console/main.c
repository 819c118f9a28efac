/* hookmq-console: the events console in a browser (docs/console.md).
 *
 *   hookmq-console [-c FILE] [--check]
 *   hookmq-console hash-password      (password on standard input, hash on standard output)
 *
 * Exit codes (docs/interface.md): 0 ok, 1 runtime failure, 2 usage or configuration error.
 * core's hq_exit_code() maps a status to an exit code. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console.h"
#include "hq_log.h"
#include "hq_passwd.h"
#include "hq_signals.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " CS_PROG " [-c FILE] [--check]\n"
            "       " CS_PROG " hash-password < PASSWORD\n"
            "\n"
            "Serves the events console (search, inspect and follow events in a browser) on\n"
            "console.listen (default 127.0.0.1:8088); users log in with the names and password\n"
            "hashes of the console group. See docs/console.md.\n"
            "\n"
            "  hash-password       read a password on standard input (one line; the newline is\n"
            "                      not part of it) and print its hash for users[].password_hash\n"
            "  -c, --config FILE   config file (default: $HOOKMQ_CONFIG, then\n"
            "                      /etc/hookmq/hookmq.conf)\n"
            "      --check         validate the config, print one line and exit (0 ok, 2 error)\n"
            "  -h, --help          this help\n"
            "  -V, --version       print the version\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop it (sessions end). Exit codes: 0 ok, 1 runtime\n"
            "failure, 2 usage or configuration error.\n");
}

/* hash-password: one line from stdin (at most HQ_PASSWD_MAX bytes), its hash to stdout. */
static int hash_password(void)
{
    char pw[HQ_PASSWD_MAX + 2], out[HQ_PASSWD_HASH_MAX];
    size_t n = fread(pw, 1, sizeof(pw) - 1, stdin);
    int rc;

    pw[n] = '\0';
    if (n > 0 && pw[n - 1] == '\n')
        pw[--n] = '\0';
    if (n > 0 && pw[n - 1] == '\r')
        pw[--n] = '\0';
    if (n == 0 || n > HQ_PASSWD_MAX || strchr(pw, '\n') || strlen(pw) != n) {
        fprintf(stderr, CS_PROG ": hash-password: give one line of 1 to %d bytes on standard "
                                "input (no NUL byte)\n",
                HQ_PASSWD_MAX);
        memset(pw, 0, sizeof(pw));
        return hq_exit_code(HQ_EINVAL);
    }
    rc = hq_passwd_hash(pw, n, out, sizeof(out));
    memset(pw, 0, sizeof(pw));
    if (rc != HQ_OK) {
        fprintf(stderr, CS_PROG ": hash-password: %s\n", hq_strerror(rc));
        return hq_exit_code(rc);
    }
    printf("%s\n", out);
    return HQ_EXIT_OK;
}

int main(int argc, char **argv)
{
    const char *cli_path = NULL, *path;
    struct hq_config *cfg = NULL;
    bool check = false, hash = false;
    char err[512];
    sigset_t set;
    int i, rc;

    for (i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            cli_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            cli_path = argv[i] + 9;
        } else if (strcmp(argv[i], "--check") == 0) {
            check = true;
        } else if (strcmp(argv[i], "hash-password") == 0 && i == 1) {
            hash = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return HQ_EXIT_OK;
        } else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
            printf(CS_PROG " %s\n", HQ_VERSION);
            return HQ_EXIT_OK;
        } else {
            fprintf(stderr, CS_PROG ": unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return hq_exit_code(HQ_EINVAL);
        }
    }
    if (hash) {
        if (check || cli_path) {
            fprintf(stderr, CS_PROG ": hash-password takes no other argument\n");
            return hq_exit_code(HQ_EINVAL);
        }
        return hash_password();
    }
    path = hq_config_default_path(cli_path);
    rc = hq_config_load(path, &cfg, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, "%s\n", err);
        return hq_exit_code(rc == HQ_ENOMEM ? rc : HQ_ECONFIG);
    }
    if (cfg->console.n_users == 0) {
        fprintf(stderr,
                "%s: console.users: no users: add at least one (name, password_hash from `"
                CS_PROG " hash-password`, role; docs/config.md)\n",
                path);
        hq_config_free(cfg);
        return hq_exit_code(HQ_ECONFIG);
    }
    if (check) {
        printf("%s: ok (console on %s, %zu users%s)\n", path, cfg->console.listen,
               cfg->console.n_users, cfg->console.read_only ? ", read-only" : "");
        hq_config_free(cfg);
        return HQ_EXIT_OK;
    }
    hq_log_setup(CS_PROG, cfg->log_level, cfg->log_format);
    hq_signals_block(&set);

    rc = cs_http_start(cfg, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, CS_PROG ": %s\n", err);
        hq_config_free(cfg);
        return hq_exit_code(rc);
    }
    hq_info("started", "listen=%s users=%zu read_only=%s archive=%s version=%s",
            cfg->console.listen, cfg->console.n_users, cfg->console.read_only ? "true" : "false",
            cfg->archive.dir, HQ_VERSION);
    for (;;) {
        int sig = 0;

        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            hq_info("SIGHUP: the console reads its config only at start; restart it to apply "
                    "changes", "%s", "");
            continue;
        }
        hq_info("stopping", "signal=%d", sig);
        break;
    }
    cs_http_stop();
    cs_replays_shutdown();
    hq_config_free(cfg);
    hq_info("stopped", "%s", "");
    return HQ_EXIT_OK;
}
