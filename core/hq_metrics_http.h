/* hq_metrics_http: serve a registry's Prometheus text on GET /metrics (CivetWeb). */
#ifndef HQ_METRICS_HTTP_H
#define HQ_METRICS_HTTP_H

#include <stddef.h>
#include "hq_metrics.h"
#include "hq_status.h"

/* Serve m on listen ("host:port"; NULL: nothing to do, HQ_OK). render_hook (may be NULL) runs
 * before each render, e.g. to set gauges from live counters. m and arg are borrowed until
 * hq_metrics_http_stop(). One server per process. HQ_EIO with err set when it cannot listen. */
HQ_MUST_CHECK int hq_metrics_http_start(const char *listen, struct hq_metrics *m,
                                        void (*render_hook)(void *), void *arg, char *err,
                                        size_t errsz);
/* Stop serving (quickly: the listener is woken). Safe when never started. */
void hq_metrics_http_stop(void);

#endif
