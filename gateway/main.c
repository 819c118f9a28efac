/* hookmq-gateway: verified webhooks into RabbitMQ, durable (confirmed or spooled) before 2xx.
 *
 *   hookmq-gateway [-c FILE] [--check | --spool-list | --spool-quarantine |
 *                   --spool-retry-quarantine]
 *
 * Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error, 3 topology missing. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw.h"
#include "hq_amqp.h"
#include "hq_log.h"
#include "hq_signals.h"
#include "hq_time.h"

#define PUB_WINDOW 256

static void usage(FILE *f)
{
    fprintf(f, "usage: hookmq-gateway [-c FILE] [--check | --spool-list | --spool-quarantine |\n"
               "                      --spool-retry-quarantine]\n"
               "\n"
               "Receives webhooks on POST /webhooks/<source>, verifies their signatures and\n"
               "publishes them to RabbitMQ with publisher confirms (or an fsync'd spool).\n"
               "\n"
               "  -c, --config FILE  config file (default: $HOOKMQ_CONFIG, then\n"
               "                     /etc/hookmq/hookmq.conf)\n"
               "      --check        validate the config and exit (0 ok, 2 error)\n"
               "      --spool-list   list the events waiting in spool_dir and exit\n"
               "      --spool-quarantine  list the records set aside in spool_dir's\n"
               "                     quarantine and exit\n"
               "      --spool-retry-quarantine  give the quarantined records back to the\n"
               "                     drainer (with the gateway stopped) and exit\n"
               "  -h, --help         this help\n"
               "  -V, --version      print the version\n"
               "\n"
               "Signals: SIGTERM/SIGINT finish in-flight requests and exit 0; SIGHUP reloads\n"
               "sources, secrets and the log level.\n"
               "Exit codes: 0 ok, 1 runtime failure, 2 usage/config error, 3 the events\n"
               "exchange is missing (run hookmq-dlx apply).\n");
}

struct gw_snap *gw_snap_get(struct gw *g)
{
    struct gw_snap *s;

    pthread_mutex_lock(&g->snap_lock);
    s = g->snap;
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&g->snap_lock);
    return s;
}

void gw_snap_put(struct gw_snap *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        hq_config_free(s->cfg);
        free(s);
    }
}

static struct gw_snap *snap_new(struct hq_config *cfg)
{
    struct gw_snap *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    s->cfg = cfg;
    return s;
}

/* At start-up: is the events exchange there? HQ_OK, HQ_ENOTFOUND, or HQ_EDOWN (the broker
 * is away: start anyway, the spool takes over). */
static int check_exchange(const struct hq_config *cfg)
{
    struct hq_amqp *c = NULL;
    size_t start = 0;
    int rc;

    rc = hq_amqp_connect(&cfg->broker, "hookmq-gateway (startup check)", 5000, &start, &c);
    if (rc != HQ_OK)
        return HQ_EDOWN;
    rc = hq_amqp_exchange_exists(c, cfg->broker.exchange);
    hq_amqp_close(c);
    return rc;
}

/* --spool-list, --spool-quarantine (read-only, safe beside a running gateway) and
 * --spool-retry-quarantine (1, 2, 3). */
static int spool_command(const struct hq_config *cfg, int cmd)
{
    char err[512] = "";
    size_t n = 0;
    int rc;

    if (!cfg->gateway.spool_dir) {
        fprintf(stderr, "hookmq-gateway: no gateway.spool_dir in the config\n");
        return HQ_EXIT_USAGE;
    }
    if (cmd == 3) {
        rc = gw_spool_retry_quarantine(cfg->gateway.spool_dir, &n, err, sizeof(err));
        if (rc != HQ_OK) {
            fprintf(stderr, "hookmq-gateway: %s\n", err);
            return HQ_EXIT_RUNTIME;
        }
        fprintf(stderr, "%zu records given back to the drainer\n", n);
        return HQ_EXIT_OK;
    }
    rc = gw_spool_list(cfg->gateway.spool_dir, cmd == 2, stdout, &n);
    if (rc != HQ_OK) {
        fprintf(stderr, "hookmq-gateway: %s: %s\n", cfg->gateway.spool_dir, hq_strerror(rc));
        return HQ_EXIT_RUNTIME;
    }
    fprintf(stderr, "%zu records\n", n);
    return HQ_EXIT_OK;
}

static void reload(struct gw *g, const char *path)
{
    struct hq_config *cfg = NULL;
    struct gw_snap *s, *old;
    char err[512];

    if (hq_config_load(path, &cfg, err, sizeof(err)) != HQ_OK) {
        hq_error("reload failed, keeping the running config", "error=\"%s\"", err);
        return;
    }
    s = snap_new(cfg);
    if (!s) {
        hq_config_free(cfg);
        return;
    }
    if (strcmp(cfg->gateway.listen, g->boot->gateway.listen) != 0 ||
        strcmp(cfg->broker.exchange, g->boot->broker.exchange) != 0)
        hq_warn("listen and broker settings change only on restart", "config=%s", path);
    hq_log_set_level(cfg->log_level);
    pthread_mutex_lock(&g->snap_lock);
    old = g->snap;
    g->snap = s;
    pthread_mutex_unlock(&g->snap_lock);
    gw_snap_put(old);
    hq_info("config reloaded", "config=%s sources=%zu", path, cfg->n_sources);
}

int main(int argc, char **argv)
{
    const char *cli_path = NULL, *path;
    struct hq_config *cfg = NULL;
    struct gw g;
    struct gw_snap *boot_snap = NULL;
    bool check = false;
    int spool_cmd = 0; /* 1 --spool-list, 2 --spool-quarantine, 3 --spool-retry-quarantine */
    char err[512];
    sigset_t set;
    int i, rc, status = HQ_EXIT_RUNTIME;

    memset(&g, 0, sizeof(g));
    for (i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            cli_path = argv[++i];
        } else if (strcmp(argv[i], "--check") == 0) {
            check = true;
        } else if (strcmp(argv[i], "--spool-list") == 0) {
            spool_cmd = 1;
        } else if (strcmp(argv[i], "--spool-quarantine") == 0) {
            spool_cmd = 2;
        } else if (strcmp(argv[i], "--spool-retry-quarantine") == 0) {
            spool_cmd = 3;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return HQ_EXIT_OK;
        } else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
            printf("hookmq-gateway %s\n", HQ_VERSION);
            return HQ_EXIT_OK;
        } else {
            fprintf(stderr, "hookmq-gateway: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return HQ_EXIT_USAGE;
        }
    }
    path = hq_config_default_path(cli_path);
    rc = hq_config_load(path, &cfg, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, "%s\n", err);
        return hq_exit_code(HQ_ECONFIG);
    }
    if (check) {
        printf("%s: ok (%zu sources, %zu consumers)\n", path, cfg->n_sources, cfg->n_consumers);
        hq_config_free(cfg);
        return HQ_EXIT_OK;
    }
    if (spool_cmd) {
        status = spool_command(cfg, spool_cmd);
        hq_config_free(cfg);
        return status;
    }
    hq_log_setup("hookmq-gateway", cfg->log_level, cfg->log_format);
    /* hundreds of HTTP threads: a few malloc arenas keep RSS down (MALLOC_ARENA_MAX wins) */
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, 2);

    /* Signals are taken synchronously by this thread; every thread started below inherits
     * the blocked mask. SIGPIPE is ignored (clients hang up). */
    hq_signals_block(&set);

    rc = check_exchange(cfg);
    if (rc == HQ_ENOTFOUND) {
        fprintf(stderr,
                "hookmq-gateway: exchange '%s' does not exist on the broker; create the "
                "topology with: hookmq-dlx apply -c %s\n",
                cfg->broker.exchange, path);
        hq_config_free(cfg);
        return hq_exit_code(HQ_ENOTFOUND);
    }
    if (rc != HQ_OK)
        hq_warn("broker not reachable at start-up; events go to the spool until it is",
                "spool=%s", cfg->gateway.spool_dir ? cfg->gateway.spool_dir : "none");

    pthread_mutex_init(&g.snap_lock, NULL);
    g.snap = snap_new(cfg);
    g.boot = cfg;
    g.metrics = hq_metrics_new();
    g.replay = gw_replay_new();
    if (!g.snap) {
        hq_config_free(cfg);
        fprintf(stderr, "hookmq-gateway: out of memory\n");
        return HQ_EXIT_RUNTIME;
    }
    /* g.boot (listen, broker) must outlive reloads: hold the first snapshot too */
    boot_snap = g.snap;
    atomic_fetch_add(&boot_snap->refs, 1);
    if (!g.metrics || !g.replay) {
        fprintf(stderr, "hookmq-gateway: out of memory\n");
        goto out;
    }

    if (cfg->gateway.spool_dir) {
        rc = gw_spool_open(cfg->gateway.spool_dir, cfg->gateway.spool_max_bytes, &g.spool, err,
                           sizeof(err));
        if (rc != HQ_OK) {
            fprintf(stderr, "hookmq-gateway: %s\n", err);
            goto out;
        }
    }
    rc = hq_pub_start(&cfg->broker, cfg->gateway.publishers, PUB_WINDOW, "hookmq-gateway",
                      &g.pub);
    if (rc != HQ_OK) {
        fprintf(stderr, "hookmq-gateway: cannot start publishers: %s\n", hq_strerror(rc));
        goto out;
    }
    if (g.spool) {
        rc = gw_spool_start_drainer(g.spool, g.pub, cfg->broker.exchange,
                                    cfg->gateway.confirm_timeout_ms,
                                    hq_counter(g.metrics, "hookmq_gateway_spool_drained_total",
                                               "Spooled events republished and confirmed", ""),
                                    hq_counter(g.metrics, "hookmq_gateway_spool_quarantined_total",
                                               "Spooled records set aside in the quarantine",
                                               ""),
                                    hq_gauge(g.metrics, "hookmq_gateway_spool_quarantine_records",
                                             "Records in the spool's quarantine", ""));
        if (rc != HQ_OK)
            goto out;
    }
    rc = gw_http_start(&g, err, sizeof(err));
    if (rc != HQ_OK) {
        fprintf(stderr, "hookmq-gateway: %s\n", err);
        goto out;
    }
    hq_info("started", "listen=%s metrics=%s sources=%zu exchange=%s spool=%s version=%s",
            cfg->gateway.listen, cfg->gateway.metrics_listen ? cfg->gateway.metrics_listen : "off",
            cfg->n_sources, cfg->broker.exchange,
            cfg->gateway.spool_dir ? cfg->gateway.spool_dir : "off", HQ_VERSION);

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload(&g, path);
            continue;
        }
        hq_info("stopping: finishing in-flight requests", "signal=%d", sig);
        break;
    }
    /* stop taking work, let requests already inside finish (bounded), then close */
    atomic_store(&g.stopping, true);
    {
        int64_t deadline = hq_mono_ms() + cfg->gateway.request_timeout_ms +
                           cfg->gateway.confirm_timeout_ms + 1000;
        while (atomic_load(&g.active) > 0 && hq_mono_ms() < deadline)
            usleep(20 * 1000);
    }
    gw_http_stop(&g);
    status = HQ_EXIT_OK;
out:
    if (g.spool)
        gw_spool_close(g.spool); /* stops the drainer before the publishers go */
    hq_pub_stop(g.pub, 5000);
    gw_replay_free(g.replay);
    gw_snap_put(g.snap);
    gw_snap_put(boot_snap);
    hq_metrics_free(g.metrics);
    if (status == HQ_EXIT_OK)
        hq_info("stopped", "%s", "");
    return status;
}
