/* Unit tests: core/metrics.c (registry, exposition format). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "hq_metrics.h"
#include "hq_metrics_http.h"

static void test_counter_gauge_render(void **state)
{
    struct hq_metrics *m = hq_metrics_new();
    struct hq_buf out = HQ_BUF_INIT(1 << 20);
    struct hq_metric *a, *b;

    (void)state;
    a = hq_counter(m, "hq_requests_total", "Requests", "source=\"gh\",status=\"202\"");
    b = hq_counter(m, "hq_requests_total", "ignored", "source=\"gh\",status=\"202\"");
    assert_ptr_equal(a, b); /* same series */
    hq_metric_inc(a);
    hq_metric_add(b, 2);
    hq_metric_set(hq_gauge(m, "hq_in_flight", "In flight", ""), 7);
    hq_metric_inc(NULL); /* NULL-safe */
    /* a family keeps its kind: asking for a gauge of a counter's name fails */
    assert_null(hq_gauge(m, "hq_requests_total", "x", ""));
    assert_int_equal(hq_metrics_render(m, &out), HQ_OK);
    assert_non_null(strstr((char *)out.data, "# HELP hq_requests_total Requests\n"
                                             "# TYPE hq_requests_total counter\n"
                                             "hq_requests_total{source=\"gh\",status=\"202\"} 3\n"));
    assert_non_null(strstr((char *)out.data, "# TYPE hq_in_flight gauge\nhq_in_flight 7\n"));
    hq_buf_free(&out);
    hq_metrics_free(m);
}

static void test_histogram(void **state)
{
    static const double bounds[] = {0.01, 0.1, 1};
    struct hq_metrics *m = hq_metrics_new();
    struct hq_buf out = HQ_BUF_INIT(1 << 20);
    struct hq_metric *h = hq_histogram(m, "hq_lat_seconds", "Latency", "", bounds, 3);

    (void)state;
    hq_metric_observe(h, 0.005);
    hq_metric_observe(h, 0.01); /* le is inclusive */
    hq_metric_observe(h, 0.5);
    hq_metric_observe(h, 7);
    assert_int_equal(hq_metrics_render(m, &out), HQ_OK);
    assert_non_null(strstr((char *)out.data, "hq_lat_seconds_bucket{le=\"0.01\"} 2\n"
                                             "hq_lat_seconds_bucket{le=\"0.1\"} 2\n"
                                             "hq_lat_seconds_bucket{le=\"1\"} 3\n"
                                             "hq_lat_seconds_bucket{le=\"+Inf\"} 4\n"
                                             "hq_lat_seconds_sum 7.515000\n"
                                             "hq_lat_seconds_count 4\n"));
    hq_buf_free(&out);
    hq_metrics_free(m);
}

static void test_escape(void **state)
{
    char out[32];

    (void)state;
    hq_metrics_escape("a\"b\\c\nd", out, sizeof(out));
    assert_string_equal(out, "a\\\"b\\\\c\\nd");
    hq_metrics_escape("abcdefgh", out, 5); /* truncates, stays terminated */
    assert_int_equal(strlen(out), 3);
}

static struct hq_metrics *shared;

static void *bump(void *arg)
{
    int i;

    (void)arg;
    for (i = 0; i < 10000; i++)
        hq_metric_inc(hq_counter(shared, "hq_c_total", "c", "k=\"v\""));
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    pthread_t th[4];
    struct hq_buf out = HQ_BUF_INIT(1 << 20);
    int i;

    (void)state;
    shared = hq_metrics_new();
    for (i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, bump, NULL);
    for (i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(hq_metrics_render(shared, &out), HQ_OK);
    assert_non_null(strstr((char *)out.data, "hq_c_total{k=\"v\"} 40000\n"));
    hq_buf_free(&out);
    hq_metrics_free(shared);
}

/* A port that is taken: hq_metrics_http_start() fails with CivetWeb's own reason (read back
 * through struct mg_error_data, whose layout differs between CivetWeb 1.15 and 1.16). */
static void test_http_start_port_taken(void **state)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    struct hq_metrics *m = hq_metrics_new();
    char listen_at[64], err[512] = "", want[96];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)state;
    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));

    assert_int_equal(hq_metrics_http_start(listen_at, m, NULL, NULL, err, sizeof(err)), HQ_EIO);
    snprintf(want, sizeof(want), "cannot listen on %s: ", listen_at);
    assert_memory_equal(err, want, strlen(want));
    /* the reason is CivetWeb's text, not the fallback "failed" */
    assert_true(strlen(err) > strlen(want) + 6);
    assert_string_not_equal(err + strlen(want), "failed");
    hq_metrics_http_stop();
    close(fd);
    hq_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_gauge_render),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_concurrent_updates),
        cmocka_unit_test(test_http_start_port_taken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
