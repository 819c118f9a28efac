/* fuzz_promtext: the console's Prometheus text reader (console/promtext.c) on hostile text, as
 * a gateway's /metrics answer (or whatever answers on its port) could send it.
 *
 * Invariants: only wanted metrics reach the callback; every sample has at most
 * CS_PROM_LABELS_MAX labels, each name and value NUL-terminated within its bound, and
 * cs_prom_label finds each of them; the bad-line count never exceeds the number of lines; a
 * callback that stops the parse has its value returned. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promtext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const want[] = {"hookmq_gateway_requests_total",
                                   "hookmq_gateway_verification_failures_total", "a", NULL};

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

struct seen {
    size_t samples, stop_at;
};

static int on_sample(void *arg, const struct cs_prom_sample *s)
{
    struct seen *st = arg;
    bool wanted = false;

    for (size_t i = 0; want[i]; i++)
        wanted |= strcmp(want[i], s->metric) == 0;
    check(wanted, "only wanted metrics");
    check(s->n_labels <= CS_PROM_LABELS_MAX, "label count");
    for (size_t i = 0; i < s->n_labels; i++) {
        check(memchr(s->labels[i].name, 0, sizeof(s->labels[i].name)) != NULL, "name bound");
        check(memchr(s->labels[i].value, 0, sizeof(s->labels[i].value)) != NULL, "value bound");
        check(cs_prom_label(s, s->labels[i].name) != NULL, "label found");
    }
    return ++st->samples == st->stop_at ? 7 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t lines = 1, bad = 0;
    struct seen st = {0, 0};
    int rc;

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    rc = cs_prom_parse((const char *)data, size, want, on_sample, &st, &bad);
    check(rc == 0, "no stop requested");
    check(bad <= lines, "bad lines");
    if (st.samples > 0) { /* again, stopping at the last sample */
        st = (struct seen){0, st.samples};
        check(cs_prom_parse((const char *)data, size, want, on_sample, &st, NULL) == 7,
              "stop value returned");
    }
    return 0;
}
