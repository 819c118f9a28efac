/* promtext: a strict, bounded reader of the Prometheus text format (the gateway's /metrics),
 * for the console's sources page (console/sources.c). Pure functions, no I/O; the input is
 * untrusted: every line, name, label and value is bounded, and whatever does not parse is
 * skipped and counted, never trusted. */
#ifndef CS_PROMTEXT_H
#define CS_PROMTEXT_H

#include <stddef.h>
#include <stdint.h>

#define CS_PROM_LINE_MAX 4096  /* longer lines are skipped */
#define CS_PROM_LABELS_MAX 8   /* samples with more labels are skipped */
#define CS_PROM_LABEL_MAX 256  /* bytes of a label name or (unescaped) value */

struct cs_prom_label {
    char name[CS_PROM_LABEL_MAX + 1];
    char value[CS_PROM_LABEL_MAX + 1];
};

struct cs_prom_sample {
    const char *metric; /* borrowed for the callback: the metric name */
    struct cs_prom_label labels[CS_PROM_LABELS_MAX];
    size_t n_labels;
    uint64_t value;     /* counters only: a finite value >= 0, truncated to an integer */
};

/* fn returns 0 to go on, non-zero to stop (cs_prom_parse then returns that value). */
typedef int (*cs_prom_fn)(void *arg, const struct cs_prom_sample *s);

/* Call fn for every sample in text[0..n) whose metric name is one of want (NULL-ended) and
 * that parses: name, optional {labels} (name="value" with \\, \" and \n escapes), a value,
 * an optional timestamp. Comments (#) and blank lines are ignored. *bad (may be NULL) gets the
 * number of lines of a wanted metric that did not parse (too long, bad escapes, a negative,
 * NaN or infinite value, too many labels, NUL bytes). Returns 0 or fn's stop value. */
int cs_prom_parse(const char *text, size_t n, const char *const *want, cs_prom_fn fn, void *arg,
                  size_t *bad);

/* The value of label name in s, or NULL. */
const char *cs_prom_label(const struct cs_prom_sample *s, const char *name);

#endif
