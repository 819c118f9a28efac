/* promtext: the bounded Prometheus text reader of the sources page (promtext.h). */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "promtext.h"

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* A name at *p (end e) into out (at most max bytes): false when empty or too long. */
static bool read_name(const char **p, const char *e, char *out, size_t max)
{
    size_t k = 0;

    while (*p < e && name_char(**p, k == 0)) {
        if (k == max)
            return false;
        out[k++] = *(*p)++;
    }
    out[k] = '\0';
    return k > 0;
}

/* "value" with escapes, *p at the opening quote. */
static bool read_value(const char **p, const char *e, char *out, size_t max)
{
    size_t k = 0;

    if (*p >= e || **p != '"')
        return false;
    (*p)++;
    while (*p < e && **p != '"') {
        char c = *(*p)++;

        if (c == '\\') {
            if (*p >= e)
                return false;
            c = *(*p)++;
            if (c == 'n')
                c = '\n';
            else if (c != '\\' && c != '"')
                return false;
        }
        if (c == '\0' || k == max)
            return false;
        out[k++] = c;
    }
    if (*p >= e)
        return false;
    (*p)++;
    out[k] = '\0';
    return true;
}

static bool parse_line(const char *s, const char *e, const char *const *want,
                       struct cs_prom_sample *smp, char *metric, bool *wanted)
{
    const char *p = s;
    char num[64];
    size_t k = 0, i;
    char *end;
    double v;

    *wanted = false;
    if (!read_name(&p, e, metric, CS_PROM_LABEL_MAX))
        return false;
    for (i = 0; want[i]; i++)
        if (strcmp(want[i], metric) == 0)
            *wanted = true;
    if (!*wanted)
        return true;
    smp->n_labels = 0;
    if (p < e && *p == '{') {
        p++;
        while (p < e && *p != '}') {
            struct cs_prom_label *l;

            if (smp->n_labels == CS_PROM_LABELS_MAX)
                return false;
            l = &smp->labels[smp->n_labels];
            if (!read_name(&p, e, l->name, CS_PROM_LABEL_MAX) || p >= e || *p++ != '=' ||
                !read_value(&p, e, l->value, CS_PROM_LABEL_MAX))
                return false;
            smp->n_labels++;
            if (p < e && *p == ',')
                p++;
            else if (p < e && *p != '}')
                return false;
        }
        if (p >= e)
            return false;
        p++;
    }
    if (p >= e || (*p != ' ' && *p != '\t'))
        return false;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    while (p < e && *p != ' ' && *p != '\t') {
        if (k + 1 == sizeof(num))
            return false;
        num[k++] = *p++;
    }
    num[k] = '\0';
    if (k == 0)
        return false;
    v = strtod(num, &end);
    if (*end || !isfinite(v) || v < 0 || v >= 1.8e19)
        return false;
    while (p < e && (*p == ' ' || *p == '\t')) /* an optional timestamp: ignored */
        p++;
    while (p < e && ((*p >= '0' && *p <= '9') || *p == '-'))
        p++;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    if (p != e)
        return false;
    smp->value = (uint64_t)v;
    smp->metric = metric;
    return true;
}

int cs_prom_parse(const char *text, size_t n, const char *const *want, cs_prom_fn fn, void *arg,
                  size_t *bad)
{
    const char *p = text, *e = text + n;
    char metric[CS_PROM_LABEL_MAX + 1];
    struct cs_prom_sample *smp;
    size_t nbad = 0;
    int rc = 0;

    smp = malloc(sizeof(*smp));
    if (!smp) {
        if (bad)
            *bad = 0;
        return 0;
    }
    while (p < e && rc == 0) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *le = nl ? nl : e;
        bool wanted = false;

        if (le > p && le[-1] == '\r')
            le--;
        if (le == p || *p == '#') {
            /* blank or comment */
        } else if ((size_t)(le - p) > CS_PROM_LINE_MAX || memchr(p, '\0', (size_t)(le - p))) {
            nbad++;
        } else if (!parse_line(p, le, want, smp, metric, &wanted)) {
            if (wanted)
                nbad++;
        } else if (wanted) {
            rc = fn(arg, smp);
        }
        p = nl ? nl + 1 : e;
    }
    free(smp);
    if (bad)
        *bad = nbad;
    return rc;
}

const char *cs_prom_label(const struct cs_prom_sample *s, const char *name)
{
    size_t i;

    for (i = 0; i < s->n_labels; i++)
        if (strcmp(s->labels[i].name, name) == 0)
            return s->labels[i].value;
    return NULL;
}
