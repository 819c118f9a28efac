/* metrics: a small Prometheus registry. Families and series live in linked lists guarded by
 * one mutex for lookup/creation; values are updated with relaxed atomics. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hq_metrics.h"

enum kind { K_COUNTER, K_GAUGE, K_HIST };

struct hq_metric {
    struct hq_metric *next;
    char *labels;
    _Atomic int64_t value;         /* counter / gauge */
    _Atomic uint64_t *buckets;     /* histogram: n_bounds + 1 cumulative-at-render counts */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_micro;    /* sum * 1e6, so it can be an atomic integer */
    double *bounds;
    size_t n_bounds;
};

struct family {
    struct family *next;
    char *name, *help;
    enum kind kind;
    struct hq_metric *series;
};

struct hq_metrics {
    pthread_mutex_t lock;
    struct family *families, **tail;
};

struct hq_metrics *hq_metrics_new(void)
{
    struct hq_metrics *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->tail = &m->families;
    return m;
}

static void series_free(struct hq_metric *s)
{
    free(s->labels);
    free((void *)s->buckets);
    free(s->bounds);
    free(s);
}

void hq_metrics_free(struct hq_metrics *m)
{
    struct family *f, *fn;
    struct hq_metric *s, *sn;

    if (!m)
        return;
    for (f = m->families; f; f = fn) {
        fn = f->next;
        for (s = f->series; s; s = sn) {
            sn = s->next;
            series_free(s);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static struct hq_metric *get(struct hq_metrics *m, enum kind kind, const char *name,
                             const char *help, const char *labels, const double *bounds,
                             size_t n_bounds)
{
    struct family *f;
    struct hq_metric *s = NULL, **sp;

    if (!m)
        return NULL;
    pthread_mutex_lock(&m->lock);
    for (f = m->families; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            break;
    if (!f) {
        f = calloc(1, sizeof(*f));
        if (!f)
            goto out;
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
        f->kind = kind;
        if (!f->name || !f->help) {
            free(f->name);
            free(f->help);
            free(f);
            f = NULL;
            goto out;
        }
        *m->tail = f;
        m->tail = &f->next;
    }
    if (f->kind != kind)
        goto out;
    for (sp = &f->series; *sp; sp = &(*sp)->next) {
        if (strcmp((*sp)->labels, labels) == 0) {
            s = *sp;
            goto out;
        }
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        goto out;
    s->labels = strdup(labels);
    if (kind == K_HIST) {
        s->buckets = calloc(n_bounds + 1, sizeof(*s->buckets));
        s->bounds = malloc((n_bounds ? n_bounds : 1) * sizeof(double));
        if (s->bounds && n_bounds)
            memcpy(s->bounds, bounds, n_bounds * sizeof(double));
        s->n_bounds = n_bounds;
    }
    if (!s->labels || (kind == K_HIST && (!s->buckets || !s->bounds))) {
        series_free(s);
        s = NULL;
        goto out;
    }
    *sp = s;
out:
    pthread_mutex_unlock(&m->lock);
    return s;
}

struct hq_metric *hq_counter(struct hq_metrics *m, const char *name, const char *help,
                             const char *labels)
{
    return get(m, K_COUNTER, name, help, labels, NULL, 0);
}

struct hq_metric *hq_gauge(struct hq_metrics *m, const char *name, const char *help,
                           const char *labels)
{
    return get(m, K_GAUGE, name, help, labels, NULL, 0);
}

struct hq_metric *hq_histogram(struct hq_metrics *m, const char *name, const char *help,
                               const char *labels, const double *bounds, size_t n_bounds)
{
    return get(m, K_HIST, name, help, labels, bounds, n_bounds);
}

void hq_metric_inc(struct hq_metric *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->value, 1, memory_order_relaxed);
}

void hq_metric_add(struct hq_metric *s, int64_t v)
{
    if (s)
        atomic_fetch_add_explicit(&s->value, v, memory_order_relaxed);
}

void hq_metric_set(struct hq_metric *s, int64_t v)
{
    if (s)
        atomic_store_explicit(&s->value, v, memory_order_relaxed);
}

void hq_metric_observe(struct hq_metric *s, double v)
{
    size_t i;

    if (!s || !s->buckets || isnan(v))
        return;
    for (i = 0; i < s->n_bounds; i++)
        if (v <= s->bounds[i])
            break;
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    if (v > 0)
        atomic_fetch_add_explicit(&s->sum_micro, (uint64_t)(v * 1e6), memory_order_relaxed);
}

void hq_metrics_escape(const char *v, char *out, size_t outsz)
{
    size_t o = 0;

    if (!outsz)
        return;
    for (; *v && o + 2 < outsz; v++) {
        if (*v == '\\' || *v == '"') {
            out[o++] = '\\';
            out[o++] = *v;
        } else if (*v == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *v;
        }
    }
    out[o] = '\0';
}

static int render_hist(struct hq_buf *out, const struct family *f, const struct hq_metric *s)
{
    const char *sep = s->labels[0] ? "," : "";
    uint64_t cum = 0;
    size_t i;
    int rc = HQ_OK;

    for (i = 0; i <= s->n_bounds && rc == HQ_OK; i++) {
        cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        if (i < s->n_bounds)
            rc = hq_buf_appendf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", f->name, s->labels, sep,
                                s->bounds[i], (unsigned long long)cum);
        else
            rc = hq_buf_appendf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels,
                                sep, (unsigned long long)cum);
    }
    if (rc == HQ_OK)
        rc = hq_buf_appendf(out, "%s_sum%s%s%s %.6f\n", f->name, s->labels[0] ? "{" : "",
                            s->labels, s->labels[0] ? "}" : "",
                            (double)atomic_load(&s->sum_micro) / 1e6);
    if (rc == HQ_OK)
        rc = hq_buf_appendf(out, "%s_count%s%s%s %llu\n", f->name, s->labels[0] ? "{" : "",
                            s->labels, s->labels[0] ? "}" : "", (unsigned long long)cum);
    return rc;
}

int hq_metrics_render(struct hq_metrics *m, struct hq_buf *out)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    struct family *f;
    struct hq_metric *s;
    int rc = HQ_OK;

    pthread_mutex_lock(&m->lock);
    for (f = m->families; f && rc == HQ_OK; f = f->next) {
        rc = hq_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                            types[f->kind]);
        for (s = f->series; s && rc == HQ_OK; s = s->next) {
            if (f->kind == K_HIST)
                rc = render_hist(out, f, s);
            else
                rc = hq_buf_appendf(out, "%s%s%s%s %lld\n", f->name, s->labels[0] ? "{" : "",
                                    s->labels, s->labels[0] ? "}" : "",
                                    (long long)atomic_load_explicit(&s->value,
                                                                    memory_order_relaxed));
        }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}
