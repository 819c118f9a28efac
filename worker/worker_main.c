/* hookmq-worker: runs one consumer's handler (docs/consumers.md).
 *
 *   hookmq-worker [-c FILE] --consumer NAME [--stop-timeout SECONDS]
 *   hookmq-worker [-c FILE] [--consumer NAME] --check
 *
 * --check loads the config and, with --consumer, resolves the consumer and loads its handler
 * exactly as at start-up (built-in, or dlopen + hq_handler_get + ABI checks) without calling
 * init; it connects to nothing.
 *
 * Exit codes (docs/interface.md): 0 ok (also after SIGTERM once in-flight handlers finished),
 * 1 runtime failure (or SIGTERM's stop timeout ran out with a handler still running),
 * 2 usage or configuration error (unknown consumer, handler plugin that cannot be loaded or
 * whose init fails), 3 topology missing (work queue, retry queues or DLQ: run
 * `hookmq-dlx apply`). core's hq_exit_code() maps a status to an exit code. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hq_amqp.h"
#include "hq_log.h"
#include "hq_signals.h"
#include "hq_time.h"
#include "hq_topology.h"
#include "hq_metrics_http.h"
#include "worker.h"

#define PROG "hookmq-worker"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [-c FILE] --consumer NAME [--stop-timeout SECONDS]\n"
            "       " PROG " [-c FILE] [--consumer NAME] --check\n"
            "\n"
            "Consumes the work queue hookmq.NAME of the consumer NAME from the config and runs\n"
            "its handler on every event: ACK, RETRY (through the retry tiers, then the DLQ)\n"
            "or REJECT (to the DLQ). See docs/consumers.md.\n"
            "\n"
            "  -c, --config FILE       config file (default: $HOOKMQ_CONFIG, then\n"
            "                          /etc/hookmq/hookmq.conf)\n"
            "      --consumer NAME     the consumer to run (a name from `consumers`)\n"
            "      --stop-timeout S    on SIGTERM, wait at most S seconds (default %d) for\n"
            "                          running handlers; then exit 1, leaving their events\n"
            "                          unacked for redelivery\n"
            "      --check             validate the config and exit (0 ok, 2 error); with\n"
            "                          --consumer also check that the consumer exists and\n"
            "                          load its handler (plugin: open, entry symbol, ABI)\n"
            "                          without initialising it. Connects to nothing.\n"
            "  -h, --help              this help\n"
            "  -V, --version           print the version\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop taking deliveries, let running handlers finish,\n"
            "settle and exit 0; SIGHUP reloads the log level, max_per_second, max_attempts,\n"
            "redrive settings and the handler options.\n"
            "Exit codes: 0 ok, 1 runtime failure, 2 usage/config error (unknown consumer,\n"
            "handler cannot be loaded or initialised), 3 queues missing on the broker (run\n"
            "hookmq-dlx apply).\n",
            WK_STOP_TIMEOUT_S);
}

struct args {
    const char *config;
    const char *consumer;
    int stop_timeout_s;
    bool check; /* --check: validate and exit */
};

/* HQ_OK; HQ_EINVAL after printing why; *done set with *exit_status for --help/--version. */
static int parse_args(int argc, char **argv, struct args *a, bool *done)
{
    int i;

    memset(a, 0, sizeof(*a));
    a->stop_timeout_s = WK_STOP_TIMEOUT_S;
    *done = false;
    for (i = 1; i < argc; i++) {
        const char *s = argv[i];

        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            usage(stdout);
            *done = true;
            return HQ_OK;
        } else if (strcmp(s, "-V") == 0 || strcmp(s, "--version") == 0) {
            printf(PROG " %s\n", HQ_VERSION);
            *done = true;
            return HQ_OK;
        } else if ((strcmp(s, "-c") == 0 || strcmp(s, "--config") == 0) && i + 1 < argc) {
            a->config = argv[++i];
        } else if (strncmp(s, "--config=", 9) == 0) {
            a->config = s + 9;
        } else if (strcmp(s, "--consumer") == 0 && i + 1 < argc) {
            a->consumer = argv[++i];
        } else if (strncmp(s, "--consumer=", 11) == 0) {
            a->consumer = s + 11;
        } else if (strcmp(s, "--stop-timeout") == 0 && i + 1 < argc) {
            char *end;
            long v;
            errno = 0;
            v = strtol(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || v < 0 || v > 86400) {
                fprintf(stderr, PROG ": --stop-timeout: expected seconds (0..86400), got '%s'\n",
                        argv[i]);
                return HQ_EINVAL;
            }
            a->stop_timeout_s = (int)v;
        } else if (strcmp(s, "--check") == 0) {
            a->check = true;
        } else {
            fprintf(stderr, PROG ": unknown or incomplete argument '%s'\n", s);
            usage(stderr);
            return HQ_EINVAL;
        }
    }
    if (a->consumer && !*a->consumer) {
        fprintf(stderr, PROG ": --consumer: empty name\n");
        usage(stderr);
        return HQ_EINVAL;
    }
    if (!a->consumer && !a->check) {
        fprintf(stderr, PROG ": --consumer NAME is required\n");
        usage(stderr);
        return HQ_EINVAL;
    }
    return HQ_OK;
}

static struct wk_snap *snap_new(struct hq_config *cfg, const struct hq_consumer_cfg *con,
                                uint64_t gen)
{
    struct wk_snap *s = calloc(1, sizeof(*s));

    if (!s) return NULL;
    atomic_init(&s->refs, 1);
    s->cfg = cfg;
    s->con = con;
    s->gen = gen;
    return s;
}

/* Wait up to ms for SIGTERM/SIGINT (start-up backoff). True when one came. */
static bool wait_term(const sigset_t *set, int64_t ms)
{
    struct timespec ts;
    int sig;

    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    for (;;) {
        sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) return true;
        if (sig < 0) return false; /* timeout (or EINTR) */
        /* SIGHUP before we run: nothing to reload yet */
    }
}

/* Connect (retrying while the broker is away) and passive-check the consumer's queues.
 * HQ_OK; HQ_ENOTFOUND after printing what is missing; HQ_ESHUTDOWN (signal); others. */
static int startup_check(struct wk *w, const sigset_t *set)
{
    const struct hq_consumer_cfg *con = w->con;
    struct hq_amqp *c = NULL;
    size_t start = 0, i;
    char missing[4096] = "", q[HQ_NAME_MAX + 64], d[32];
    int rc, failures = 0, n_missing = 0;

    for (;;) {
        rc = hq_amqp_connect(&w->cfg->broker, "hookmq-worker (startup check)",
                             WK_CONNECT_TIMEOUT_MS, &start, &c);
        if (rc == HQ_OK) break;
        if (rc != HQ_EDOWN && rc != HQ_ETIMEDOUT) {
            fprintf(stderr, PROG ": cannot connect to the broker: %s\n", hq_strerror(rc));
            return rc == HQ_EINVAL ? HQ_ECONFIG : rc;
        }
        failures++;
        if (wait_term(set, failures < 6 ? 500L << failures : 30000)) return HQ_ESHUTDOWN;
        start = (start + 1) % w->cfg->broker.n_uris;
    }

#define CHECK(name)                                                                                \
    do {                                                                                           \
        rc = hq_amqp_queue_exists(c, (name), NULL, NULL);                                          \
        if (rc == HQ_ENOTFOUND) {                                                                  \
            size_t used = strlen(missing);                                                         \
            snprintf(missing + used, sizeof(missing) - used, "%s%s", n_missing ? ", " : "",        \
                     (name));                                                                      \
            n_missing++;                                                                           \
        } else if (rc != HQ_OK) {                                                                  \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

    CHECK(w->work_queue);
    for (i = 0; i < con->n_delays; i++) {
        if (!hq_topology_delay_first(con, i)) continue;
        hq_duration_format(con->delays_ms[i], d, sizeof(d));
        snprintf(q, sizeof(q), "hookmq.%s.retry.%s", con->name, d);
        CHECK(q);
    }
    CHECK(w->dlq);
#undef CHECK
    rc = HQ_OK;
    if (n_missing) {
        fprintf(stderr,
                PROG ": consumer '%s': missing on the broker: %s; create the topology with: "
                     "hookmq-dlx apply -c %s\n",
                con->name, missing, w->config_path);
        rc = HQ_ENOTFOUND;
    }
out:
    if (rc != HQ_OK && rc != HQ_ENOTFOUND)
        fprintf(stderr, PROG ": broker check failed: %s\n", hq_strerror(rc));
    hq_amqp_close(c);
    return rc;
}

static void reload(struct wk *w)
{
    struct hq_config *cfg = NULL;
    const struct hq_consumer_cfg *con, *b = w->con;
    struct wk_snap *s, *old;
    char err[512];
    bool restart = false;
    size_t i;

    if (hq_config_load(w->config_path, &cfg, err, sizeof(err)) != HQ_OK) {
        hq_error("reload failed, keeping the running config", "error=\"%s\"", err);
        return;
    }
    con = hq_config_consumer(cfg, b->name);
    if (!con) {
        hq_error("reload: the consumer is gone from the config, keeping the running config",
                 "consumer=%s config=%s", b->name, w->config_path);
        hq_config_free(cfg);
        return;
    }
    s = snap_new(cfg, con, atomic_load(&w->gen) + 1);
    if (!s) {
        hq_config_free(cfg);
        return;
    }
    if (strcmp(con->handler, b->handler) != 0 || con->prefetch != b->prefetch ||
        con->concurrency != b->concurrency || con->n_delays != b->n_delays ||
        con->dedupe != b->dedupe || (con->redrive && !b->redrive) ||
        !con->metrics_listen != !b->metrics_listen ||
        (con->metrics_listen && strcmp(con->metrics_listen, b->metrics_listen) != 0) ||
        cfg->broker.n_uris != w->cfg->broker.n_uris ||
        cfg->broker.queue_type != w->cfg->broker.queue_type)
        restart = true;
    for (i = 0; !restart && i < con->n_delays; i++)
        if (con->delays_ms[i] != b->delays_ms[i]) restart = true;
    for (i = 0; !restart && i < cfg->broker.n_uris; i++)
        if (strcmp(cfg->broker.uris[i], w->cfg->broker.uris[i]) != 0) restart = true;
    if (restart)
        hq_warn("reload: handler, prefetch, concurrency, retry delays, dedupe, metrics_listen, "
                "turning redrive on and broker settings change only on restart",
                "consumer=%s", b->name);
    hq_log_set_level(cfg->log_level);
    pthread_mutex_lock(&w->snap_lock);
    old = w->snap;
    w->snap = s;
    atomic_store(&w->gen, s->gen);
    pthread_mutex_unlock(&w->snap_lock);
    wk_snap_put(old);
    wk_rate_set(&w->rate, con->max_per_second);
    hq_info("config reloaded", "consumer=%s config=%s max_per_second=%g max_attempts=%d", b->name,
            w->config_path, con->max_per_second, con->max_attempts);
}

static void print_consumers(const struct hq_config *cfg)
{
    size_t i;

    fprintf(stderr, PROG ": consumers in the config:");
    for (i = 0; i < cfg->n_consumers; i++)
        fprintf(stderr, "%s%s", i ? ", " : " ", cfg->consumers[i].name);
    fprintf(stderr, "%s\n", cfg->n_consumers ? "" : " none");
}

/* --check with --consumer: load the consumer's handler exactly as start-up does (built-in, or
 * dlopen + hq_handler_get + ABI and table checks), print one line and unload it; init is never
 * called and nothing is connected to. HQ_OK, or HQ_EINVAL after printing why. */
static int check_handler(const char *path, const struct hq_consumer_cfg *con)
{
    struct hq_plugin p;
    char err[1024];
    int rc;

    rc = hq_plugin_load(con->handler, &p, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": consumer '%s': handler %s\n", con->name, err);
        return HQ_EINVAL;
    }
    if (p.dl)
        printf("%s: ok (consumer %s, handler %s: %s %s, ABI %u.%u)\n", path, con->name, p.name,
               p.h->name ? p.h->name : "?", p.h->version ? p.h->version : "?", p.h->abi_major,
               p.h->abi_minor);
    else
        printf("%s: ok (consumer %s, handler %s)\n", path, con->name, p.name);
    hq_plugin_unload(&p);
    return HQ_OK;
}

/* Before each /metrics render: the gauges that are kept as plain atomics. */
static void refresh_gauges(void *arg)
{
    struct wk *w = arg;

    hq_metric_set(w->m.connected, atomic_load(&w->connected));
    hq_metric_set(w->m.in_flight, atomic_load(&w->in_flight));
    if (w->lc) {
        struct hq_lc_stats st;

        hq_lc_get_stats(w->lc, &st);
        hq_metric_set(w->m.lc_published, (int64_t)st.published);
        hq_metric_set(w->m.lc_dropped, (int64_t)st.dropped);
    }
}

int main(int argc, char **argv)
{
    struct args a;
    struct hq_config *cfg = NULL;
    const struct hq_consumer_cfg *con;
    static struct wk w;
    sigset_t set;
    char err[1024];
    bool done, states = false, clean;
    int i, rc, status = HQ_EXIT_RUNTIME;

    if (parse_args(argc, argv, &a, &done) != HQ_OK) return HQ_EXIT_USAGE;
    if (done) return HQ_EXIT_OK;
    w.config_path = hq_config_default_path(a.config);
    rc = hq_config_load(w.config_path, &cfg, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, "%s\n", err);
        return hq_exit_code(HQ_ECONFIG);
    }
    if (a.check && !a.consumer) {
        printf("%s: ok (%zu consumers)\n", w.config_path, cfg->n_consumers);
        hq_config_free(cfg);
        return HQ_EXIT_OK;
    }
    con = hq_config_consumer(cfg, a.consumer);
    if (!con) {
        fprintf(stderr, PROG ": %s: unknown consumer '%s'\n", w.config_path, a.consumer);
        print_consumers(cfg);
        hq_config_free(cfg);
        return hq_exit_code(HQ_EINVAL);
    }
    if (a.check) {
        rc = check_handler(w.config_path, con);
        hq_config_free(cfg);
        return hq_exit_code(rc);
    }
    hq_log_setup(PROG, cfg->log_level, cfg->log_format);

    /* Signals are taken synchronously by this thread; every thread inherits the mask. */
    hq_signals_block(&set);
    srand((unsigned)(hq_mono_ms() ^ ((int64_t)getpid() << 16)));

    pthread_mutex_init(&w.snap_lock, NULL);
    w.snap = snap_new(cfg, con, 1);
    if (!w.snap) {
        hq_config_free(cfg);
        fprintf(stderr, PROG ": out of memory\n");
        return HQ_EXIT_RUNTIME;
    }
    w.boot_snap = w.snap; /* the boot config outlives reloads: hold it too */
    atomic_fetch_add(&w.boot_snap->refs, 1);
    atomic_init(&w.gen, 1);
    w.cfg = cfg;
    w.con = con;
    w.stop_timeout_ms = a.stop_timeout_s * 1000;
    snprintf(w.work_queue, sizeof(w.work_queue), "hookmq.%s", con->name);
    snprintf(w.dlq, sizeof(w.dlq), "hookmq.%s.dlq", con->name);
    snprintf(w.label, sizeof(w.label), "consumer=\"%s\"", con->name); /* [a-z0-9_-] */
    wk_rate_init(&w.rate, con->max_per_second);

    rc = hq_plugin_load(con->handler, &w.plugin, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": consumer '%s': handler %s\n", con->name, err);
        status = HQ_EXIT_USAGE;
        goto out;
    }
    wk_host_api_init(&w);
    w.n_slots = con->concurrency;
    w.slot_prefetch = con->prefetch / con->concurrency;
    if (w.slot_prefetch < 1) w.slot_prefetch = 1;
    w.slots = calloc((size_t)w.n_slots, sizeof(*w.slots));
    w.metrics = hq_metrics_new();
    if (!w.slots || !w.metrics || wk_metrics_init(&w) != HQ_OK) {
        fprintf(stderr, PROG ": out of memory\n");
        goto out;
    }
    for (i = 0; i < w.n_slots; i++) {
        w.slots[i].w = &w;
        w.slots[i].idx = i;
    }
    rc = wk_init_states(&w, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": consumer '%s': %s\n", con->name, err);
        status = HQ_EXIT_USAGE;
        goto out;
    }
    states = true;

    rc = startup_check(&w, &set);
    if (rc != HQ_OK) {
        status = hq_exit_code_run(rc); /* stopped by a signal while retrying: 0 */
        goto out;
    }

    if (con->dedupe) {
        rc = wk_dedupe_open(con->dedupe_path, con->dedupe_window_ms, &w.dedupe, err, sizeof(err));
        if (rc != HQ_OK) {
            fprintf(stderr, PROG ": dedupe ledger: %s\n", err);
            goto out;
        }
    }
    {
        /* the crash ledger, for both queue types: a quorum queue's x-delivery-limit also
         * counts the innocent deliveries prefetched behind a poison event each time it takes
         * the worker down; the ledger counts only the event whose handler was running */
        char path[4096];
        const char *tmp = getenv("TMPDIR");

        if (con->dedupe)
            snprintf(path, sizeof(path), "%s.inflight", con->dedupe_path);
        else
            snprintf(path, sizeof(path), "%s/hookmq-%s.inflight", tmp && *tmp ? tmp : "/tmp",
                     con->name);
        rc = wk_inflight_open(path, w.n_slots, &w.inflight, err, sizeof(err));
        if (rc != HQ_OK) {
            fprintf(stderr, PROG ": crash ledger: %s\n", err);
            goto out;
        }
    }
    {
        char lcname[HQ_NAME_MAX + 64];

        snprintf(lcname, sizeof(lcname), "hookmq-worker %s copies", con->name);
        if (hq_pub_start(&w.cfg->broker, 1, w.n_slots * 2, lcname, &w.copies) != HQ_OK) {
            fprintf(stderr, PROG ": cannot start the publisher of retry and DLQ copies\n");
            goto out;
        }
        hq_pub_set_mandatory(w.copies); /* a missing tier or DLQ refuses the copy, loudly */
        snprintf(lcname, sizeof(lcname), "hookmq-worker %s lifecycle", con->name);
        if (hq_lc_start(&w.cfg->broker, lcname, 4096, &w.lc) != HQ_OK)
            hq_warn("lifecycle records off: cannot start their publisher", "consumer=%s",
                    con->name);
    }
    rc = hq_metrics_http_start(con->metrics_listen, w.metrics, refresh_gauges, &w, err,
                               sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, PROG ": metrics: %s\n", err);
        goto out;
    }
    if (wk_start_slots(&w) != HQ_OK) {
        fprintf(stderr, PROG ": cannot start threads\n");
        atomic_store(&w.stopping, true);
        wk_join_slots(&w);
        goto out;
    }
    if (con->redrive && wk_redrive_start(&w) != HQ_OK)
        hq_error("cannot start the redrive thread", "consumer=%s", con->name);
    hq_info("started",
            "consumer=%s queue=%s handler=%s concurrency=%d prefetch=%d max_per_second=%g "
            "dedupe=%s crash_ledger=%s metrics=%s version=%s",
            con->name, w.work_queue, w.plugin.name, w.n_slots, con->prefetch, con->max_per_second,
            w.dedupe ? wk_dedupe_path(w.dedupe) : "off",
            w.inflight ? wk_inflight_path(w.inflight) : "off",
            con->metrics_listen ? con->metrics_listen : "off", HQ_VERSION);

    for (;;) {
        int sig = 0;

        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGHUP) {
            reload(&w);
            continue;
        }
        hq_info("stopping: finishing in-flight handlers", "consumer=%s signal=%d timeout_s=%d",
                con->name, sig, a.stop_timeout_s);
        break;
    }
    atomic_store(&w.stop_deadline_ms, hq_mono_ms() + w.stop_timeout_ms);
    atomic_store(&w.stopping, true);
    clean = wk_join_slots(&w);
    wk_redrive_join(&w);
    hq_metrics_http_stop();
    if (!clean) {
        hq_error("stopped with handlers still running; their events stay unacked and will be "
                 "redelivered",
                 "consumer=%s", con->name);
        /* the hung handler threads still use their states and the plugin: exit now */
        fflush(stderr);
        _exit(HQ_EXIT_RUNTIME);
    }
    status = HQ_EXIT_OK;
out:
    if (states) {
        for (i = 0; i < w.n_slots; i++) {
            if (w.slots[i].state_snap) {
                w.plugin.h->fini(w.slots[i].state);
                wk_snap_put(w.slots[i].state_snap);
            }
        }
    }
    hq_lc_stop(w.lc, 2000);
    hq_pub_stop(w.copies, 2000);
    wk_dedupe_close(w.dedupe);
    wk_inflight_close(w.inflight);
    hq_plugin_unload(&w.plugin);
    hq_metrics_free(w.metrics);
    free(w.m.retry_tier);
    free(w.slots);
    wk_rate_destroy(&w.rate);
    wk_snap_put(w.snap);
    wk_snap_put(w.boot_snap);
    if (status == HQ_EXIT_OK) hq_info("stopped", "consumer=%s", a.consumer);
    return status;
}
