/* metrics_http: GET /metrics (Prometheus text 0.0.4) on a program's metrics_listen, served
 * by CivetWeb (two threads, no document root). Every other path is 404. Used by the worker
 * and the archive logger; one server per process. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hq_metrics_http.h"
#include "hq__civetweb.h"
#include "hq_mg.h"
#include "hq_buf.h"
#include "hq_log.h"

static struct mg_context *ctx;
static char listen_addr[64];
static struct hq_metrics *metrics;
static void (*hook)(void *);
static void *hook_arg;

static int on_metrics(struct mg_connection *conn, void *cbdata)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct hq_buf out = HQ_BUF_INIT(16u << 20);
    char num[32];

    (void)cbdata;
    if (!ri || strcmp(ri->local_uri ? ri->local_uri : "", "/metrics") != 0) {
        mg_send_http_error(conn, 404, "%s", "not found");
        return 404;
    }
    if (hook)
        hook(hook_arg);
    if (hq_metrics_render(metrics, &out) != HQ_OK) {
        mg_send_http_error(conn, 500, "%s", "metrics too large");
        hq_buf_free(&out);
        return 500;
    }
    /* our own header block: CivetWeb's adds a Date from the non-reentrant gmtime() */
    snprintf(num, sizeof(num), "%zu", out.len);
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
              "Content-Length: %s\r\n\r\n",
              num);
    mg_write(conn, out.data, out.len);
    hq_buf_free(&out);
    return 200;
}

static int on_log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    hq_debug("civetweb", "message=\"%s\"", message);
    return 1;
}

struct mg_context *hq_mg_start(struct mg_init_data *init, char *err, size_t errsz)
{
    struct mg_error_data ed;
    struct mg_context *c;
    char ebuf[256] = "";
    unsigned ecode;

    hq__mg_error_init(&ed, &ecode, ebuf, sizeof(ebuf));
    c = mg_start2(init, &ed);
    if (!c && err && errsz)
        snprintf(err, errsz, "%s", ebuf[0] ? ebuf : "failed");
    return c;
}

int hq_metrics_http_start(const char *listen, struct hq_metrics *m,
                          void (*render_hook)(void *), void *arg, char *err, size_t errsz)
{
    const char *opts[] = {"listening_ports", listen, "num_threads", "2", "request_timeout_ms",
                          "10000", "enable_keep_alive", "yes", "max_request_size", "16384",
                          NULL};
    struct mg_callbacks cb;
    struct mg_init_data init;
    char ebuf[256] = "";

    if (!listen)
        return HQ_OK;
    metrics = m;
    hook = render_hook;
    hook_arg = arg;
    mg_init_library(0);
    memset(&cb, 0, sizeof(cb));
    cb.log_message = on_log_message;
    memset(&init, 0, sizeof(init));
    init.callbacks = &cb;
    init.configuration_options = opts;
    ctx = hq_mg_start(&init, ebuf, sizeof(ebuf));
    if (!ctx) {
        snprintf(err, errsz, "cannot listen on %s: %s", listen, ebuf);
        mg_exit_library();
        return HQ_EIO;
    }
    mg_set_request_handler(ctx, "/", on_metrics, NULL);
    snprintf(listen_addr, sizeof(listen_addr), "%s", listen);
    return HQ_OK;
}

static atomic_bool stop_done;

static void *stop_main(void *arg)
{
    (void)arg;
    mg_stop(ctx);
    atomic_store(&stop_done, true);
    return NULL;
}

/* CivetWeb's listener notices mg_stop only when its poll(2) returns (up to 2 s later): a
 * connection to the listening socket wakes it at once. */
static void poke_listener(void)
{
    struct sockaddr_in sa;
    char host[64], *colon;
    long port;
    int fd;

    snprintf(host, sizeof(host), "%s", listen_addr);
    colon = strrchr(host, ':');
    if (!colon)
        return;
    *colon = '\0';
    port = strtol(colon + 1, NULL, 10);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return;
    if (sa.sin_addr.s_addr == htonl(INADDR_ANY))
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    (void)connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
}

void hq_metrics_http_stop(void)
{
    pthread_t t;
    int i;

    if (!ctx)
        return;
    atomic_store(&stop_done, false);
    if (pthread_create(&t, NULL, stop_main, NULL) != 0) {
        mg_stop(ctx);
    } else {
        for (i = 0; i < 100 && !atomic_load(&stop_done); i++) {
            struct timespec ts = {0, 20 * 1000000L};
            poke_listener();
            nanosleep(&ts, NULL);
        }
        pthread_join(t, NULL);
    }
    ctx = NULL;
    mg_exit_library();
}
