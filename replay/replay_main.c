/* hookmq-replay: replay archived events (docs/replay.md).
 *
 *   hookmq-replay [-c FILE] FILTERS TARGET [--rate N] [--dry-run] [--restart]
 *   hookmq-replay [-c FILE] [FILTERS TARGET ...] --check
 *
 * --check validates the config and exits; with filters and a target it also validates them
 * as a run would (the target consumer and its bindings), stopping before the archive, the
 * checkpoint and the broker: it reads no archive and connects to nothing.
 *
 * The run itself (two archive scans, publishing with pipelined confirms, the checkpoint, the
 * lifecycle records) is core's hq_replay_run (hq_replay_run.h), which hookmq-console uses
 * too; this file is the command line (replay_args.c), the signals, and what is printed: the
 * dry-run listing and the messages on stdout, errors and the progress line on stderr.
 *
 * Exit codes (docs/interface.md): 0 ok (also: already completed, nothing to replay, interrupted by
 * SIGTERM/SIGINT after settling what was in flight), 1 runtime failure (broker, I/O, events
 * nacked or returned), 2 usage or configuration error, 3 the target queue or exchange is
 * missing (run `hookmq-dlx apply`). core's hq_exit_code_run() is the one mapping. */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hq_config.h"
#include "hq_log.h"
#include "hq_replay.h"
#include "hq_replay_run.h"
#include "hq_time.h"
#include "replay_args.h"

#define PROG "hookmq-replay"

static atomic_int stop_signal; /* lock-free: set by the signal handler */
static volatile sig_atomic_t hup_signal;

static void on_stop(int sig)
{
    atomic_store(&stop_signal, sig);
}

static void on_hup(int sig)
{
    (void)sig;
    hup_signal = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [-c FILE] FILTERS TARGET [--rate N] [--dry-run] [--restart]\n"
            "       " PROG " [-c FILE] [FILTERS TARGET ...] --check\n"
            "\n"
            "Republishes archived events (with publisher confirms), keeping their message id,\n"
            "content type, timestamp, body and headers, adding hookmq-replay-id and\n"
            "hookmq-replayed-at. Each (source, id) is replayed once. An interrupted replay\n"
            "resumes from its checkpoint when the same command is run again. See docs/replay.md.\n"
            "\n"
            "Filters (as `hookmq-archive query`; --from or --id is required):\n"
            "      --from TIME         received at or after TIME (RFC 3339, or -2h, -15m, -7d)\n"
            "      --to TIME           received before TIME\n"
            "      --source NAME       from this source\n"
            "      --type GLOB         event type (hookmq-event-type) matching GLOB\n"
            "      --id ID             this event id\n"
            "      --grep TEXT         body containing TEXT\n"
            "Target (exactly one):\n"
            "      --to-consumer NAME  the consumer's work queue only (exchange \"\", routing key\n"
            "                          hookmq.NAME), only events its bindings match, with\n"
            "                          hookmq-attempt = 1\n"
            "      --ignore-bindings   with --to-consumer: every selected event\n"
            "      --to-exchange       through the events exchange: every bound consumer AND the\n"
            "                          archive get the events again\n"
            "Options:\n"
            "  -c, --config FILE       config file (default: $HOOKMQ_CONFIG, then\n"
            "                          /etc/hookmq/hookmq.conf)\n"
            "      --rate N            at most N events per second (default: unlimited)\n"
            "      --dry-run           print what would be replayed and the count; publish nothing\n"
            "      --restart           ignore an existing checkpoint and replay everything again\n"
            "      --window N          publishes awaiting a confirm (default %d, max %d)\n"
            "      --checkpoint-dir D  where checkpoints live (default: archive.dir/.replay)\n"
            "      --no-lifecycle      do not emit \"replayed\" lifecycle records\n"
            "  -q, --quiet             no progress line on stderr\n"
            "      --check             validate the config and exit (0 ok, 2 error); with\n"
            "                          filters and a target, validate them too (the target\n"
            "                          consumer and its bindings). Reads no archive, connects\n"
            "                          to nothing.\n"
            "  -h, --help              this help\n"
            "  -V, --version           print the version\n"
            "\n"
            "Exit codes: 0 ok (also: already completed; interrupted by SIGTERM/SIGINT, resumable),\n"
            "1 runtime failure (re-run to resume), 2 usage/config error, 3 target queue or\n"
            "exchange missing (run hookmq-dlx apply).\n",
            HQ_REPLAY_WINDOW_DEFAULT, HQ_REPLAY_WINDOW_MAX);
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the program keeps around a run: how it prints. */
struct cli {
    const struct hq_replay_opts *o;
    const char *config_path;
    bool tty;
    double last_progress, last_progress_confirmed_t;
    uint64_t last_progress_confirmed;
};

static void print_sanitized(FILE *f, const char *s)
{
    const unsigned char *p;

    for (p = (const unsigned char *)(s ? s : ""); *p; p++)
        fputc(*p <= 0x20 || *p == 0x7f ? '?' : *p, f);
}

/* --dry-run: one line per event that would be replayed. */
static void on_match(void *arg, const struct hq_arec *r)
{
    char t[40];

    (void)arg;
    hq_time_format(r->received_at, t, sizeof(t));
    printf("%s ", t);
    print_sanitized(stdout, r->source);
    putchar(' ');
    print_sanitized(stdout, r->id);
    putchar(' ');
    print_sanitized(stdout, r->type);
    putchar(' ');
    print_sanitized(stdout, r->routing_key);
    printf(" %zu\n", r->body_len);
}

static void on_message(void *arg, bool err, const char *line)
{
    (void)arg;
    if (err) {
        fprintf(stderr, PROG ": %s\n", line);
    } else {
        printf("%s\n", line);
        fflush(stdout);
    }
}

/* SIGHUP: the log level is reloaded; the rest of a replay is fixed at its start. */
static void check_hup(const struct cli *cl, const char *replay_id)
{
    struct hq_config *nc = NULL;
    char err[512];

    if (!hup_signal)
        return;
    hup_signal = 0;
    if (hq_config_load(cl->config_path, &nc, err, sizeof(err)) != HQ_OK) {
        hq_warn("SIGHUP: config not reloaded", "error=\"%s\"", err);
        return;
    }
    hq_log_set_level(nc->log_level);
    hq_info("SIGHUP: log level reloaded (the rest of a replay is fixed at its start)",
            "replay_id=%s", replay_id);
    hq_config_free(nc);
}

/* The progress line on stderr, at most once a second (and a final one). */
static void on_progress(void *arg, const struct hq_replay_progress *p, bool final)
{
    struct cli *cl = arg;
    double now, dt, rate;
    uint64_t done, total;

    check_hup(cl, p->id);
    if (cl->o->quiet || cl->o->dry_run || !p->publishing)
        return;
    now = mono_s();
    if (cl->last_progress_confirmed_t == 0)
        cl->last_progress = cl->last_progress_confirmed_t = p->t0;
    if (!final && now - cl->last_progress < 1.0)
        return;
    dt = now - cl->last_progress_confirmed_t;
    rate = final ? (now - p->t0 > 0 ? (double)p->confirmed / (now - p->t0) : 0)
                 : (dt > 0 ? (double)(p->confirmed - cl->last_progress_confirmed) / dt : 0);
    cl->last_progress = now;
    cl->last_progress_confirmed_t = now;
    cl->last_progress_confirmed = p->confirmed;
    done = p->earlier + p->confirmed;
    total = p->total + p->extra;
    fprintf(stderr, "%s%s: %" PRIu64 "/%" PRIu64 " replayed (%.1f%%), %.0f/s%s, in flight %zu%s%s",
            cl->tty ? "\r\033[K" : "", p->id, done, total,
            total ? 100.0 * (double)done / (double)total : 100.0, rate,
            final ? " average" : "", p->in_flight, p->blocked ? ", broker blocked publishing" : "",
            cl->tty && !final ? "" : "\n");
    fflush(stderr);
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sa.sa_flags = (int)(SA_RESTART | SA_RESETHAND); /* a second SIGINT/SIGTERM ends it at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Everything after the command line: the replay's status (mapped by hq_exit_code_run: an
 * interrupted replay exits 0, it resumes). */
static int run(const struct hq_replay_opts *o, const char *config_path)
{
    struct cli cl;
    struct hq_replay_hooks h;
    struct hq_config *cfg = NULL;
    char err[1024];
    int rc;

    if (hq_config_load(config_path, &cfg, err, sizeof(err)) != HQ_OK) {
        fprintf(stderr, "%s\n", err);
        return HQ_ECONFIG;
    }
    hq_log_setup(PROG, cfg->log_level, cfg->log_format);
    memset(&cl, 0, sizeof(cl));
    cl.o = o;
    cl.config_path = config_path;
    cl.tty = isatty(STDERR_FILENO) == 1;
    install_signals();
    memset(&h, 0, sizeof(h));
    h.arg = &cl;
    h.conn_name = PROG;
    h.stop = &stop_signal;
    h.on_match = on_match;
    h.on_progress = on_progress;
    h.on_message = on_message;
    rc = hq_replay_run(o, cfg, &h, NULL);
    hq_config_free(cfg);
    return rc;
}

/* --check (docs/interface.md: every program has one): argv holds "--check". With nothing else than
 * -c FILE (or --help / --version) the config alone is validated; with more, the rest must be a
 * valid replay command line and its target is resolved against the config as run() would,
 * stopping there. Returns the exit code. */
static int check_main(int argc, char **argv)
{
    struct hq_replay_opts o;
    struct hq_config *cfg = NULL;
    const char *config = NULL, *path;
    char **args;
    char err[1024], tgt[256];
    bool config_only = true;
    int i, n = 0, rc;

    args = calloc((size_t)argc + 1, sizeof(*args));
    if (!args) {
        fprintf(stderr, PROG ": out of memory\n");
        return hq_exit_code_run(HQ_ENOMEM);
    }
    for (i = 0; i < argc; i++)
        if (i == 0 || strcmp(argv[i], "--check") != 0)
            args[n++] = argv[i];
    for (i = 1; i < n && config_only; i++) {
        if ((strcmp(args[i], "-c") == 0 || strcmp(args[i], "--config") == 0) && i + 1 < n)
            config = args[++i];
        else if (strncmp(args[i], "--config=", 9) == 0 && args[i][9])
            config = args[i] + 9;
        else
            config_only = false; /* --help, --version and the rest: hq_replay_parse_args */
    }
    if (config_only) {
        path = hq_config_default_path(config);
        if (hq_config_load(path, &cfg, err, sizeof(err)) != HQ_OK) {
            fprintf(stderr, "%s\n", err);
            rc = HQ_ECONFIG;
            goto out;
        }
        printf("%s: ok (%zu consumers, archive.dir %s)\n", path, cfg->n_consumers,
               cfg->archive.dir);
        rc = HQ_OK;
        goto out;
    }
    rc = hq_replay_parse_args(n, args, hq_now_ms(), &o, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": %s\n", err);
        fprintf(stderr, "usage: " PROG " [-c FILE] [FILTERS TARGET ...] --check "
                        "(--help for more)\n");
        goto out;
    }
    if (o.help || o.version) {
        if (o.help)
            usage(stdout);
        else
            printf(PROG " %s\n", HQ_VERSION);
        rc = HQ_OK;
        goto out;
    }
    path = hq_config_default_path(o.config);
    if (hq_config_load(path, &cfg, err, sizeof(err)) != HQ_OK) {
        fprintf(stderr, "%s\n", err);
        rc = HQ_ECONFIG;
        goto out;
    }
    rc = hq_replay_check_target(&o, cfg, tgt, sizeof(tgt), err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    printf("%s: ok (replay to %s)\n", path, tgt);
out:
    hq_config_free(cfg);
    free(args);
    return hq_exit_code_run(rc);
}

int main(int argc, char **argv)
{
    struct hq_replay_opts o;
    char err[1024];
    int i, rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "--check") == 0)
            return check_main(argc, argv);
    rc = hq_replay_parse_args(argc, argv, hq_now_ms(), &o, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": %s\n", err);
        fprintf(stderr, "usage: " PROG " [-c FILE] FILTERS TARGET [--rate N] [--dry-run] "
                        "(--help for more)\n");
        return hq_exit_code_run(rc);
    }
    if (o.help) {
        usage(stdout);
        return HQ_EXIT_OK;
    }
    if (o.version) {
        printf(PROG " %s\n", HQ_VERSION);
        return HQ_EXIT_OK;
    }
    return hq_exit_code_run(run(&o, hq_config_default_path(o.config)));
}
