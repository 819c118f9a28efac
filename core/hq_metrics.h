/* hq_metrics: a small thread-safe Prometheus registry (counters, gauges, histograms with
 * label sets) rendered in the text exposition format. Metric handles are stable pointers
 * valid until hq_metrics_free(); updates are lock-free atomics. */
#ifndef HQ_METRICS_H
#define HQ_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "hq_status.h"
#include "hq_buf.h"

struct hq_metrics;
struct hq_metric; /* one (name, labels) series */

struct hq_metrics *hq_metrics_new(void);
void hq_metrics_free(struct hq_metrics *m);

/* Find or create a series. labels is the Prometheus label text without braces, e.g.
 * "source=\"github\",status=\"202\"" or "" (label values must be escaped by the caller with
 * hq_metrics_escape). help is used when the family is first seen. NULL on ENOMEM. */
struct hq_metric *hq_counter(struct hq_metrics *m, const char *name, const char *help,
                             const char *labels);
struct hq_metric *hq_gauge(struct hq_metrics *m, const char *name, const char *help,
                           const char *labels);
/* bounds: ascending upper bounds (seconds etc.), copied; +Inf is implicit. */
struct hq_metric *hq_histogram(struct hq_metrics *m, const char *name, const char *help,
                               const char *labels, const double *bounds, size_t n_bounds);

void hq_metric_inc(struct hq_metric *s);              /* counter/gauge += 1; NULL-safe */
void hq_metric_add(struct hq_metric *s, int64_t v);    /* counter (v >= 0) / gauge */
void hq_metric_set(struct hq_metric *s, int64_t v);    /* gauge */
void hq_metric_observe(struct hq_metric *s, double v); /* histogram */

/* Escape a label value (\\, \", \n) into out. */
void hq_metrics_escape(const char *v, char *out, size_t outsz);

HQ_MUST_CHECK int hq_metrics_render(struct hq_metrics *m, struct hq_buf *out);

#endif
