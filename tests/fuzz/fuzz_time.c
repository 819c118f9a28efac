/* fuzz_time: hq_duration_parse / hq_duration_format and hq_time_parse / hq_time_format.
 *
 * Input: the text to parse (both as a duration and as a time). Invariants: a parsed duration
 * formats to text that parses back to the same value; a parsed time within years 0000-9999
 * formats to RFC 3339 that parses back to the same instant. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

#define NOW_MS 1795946400123LL           /* 2026-11-29T10:00:00.123Z */
#define MIN_MS (-62167219200000LL)       /* 0000-01-01T00:00:00Z */
#define MAX_MS 253402300800000LL         /* 10000-01-01T00:00:00Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, buf[64];
    uint64_t d, d2;
    int64_t t, t2;

    if (size > 4096)
        return 0;
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    if (hq_duration_parse(text, &d) == HQ_OK) {
        hq_duration_format(d, buf, sizeof(buf));
        check(hq_duration_parse(buf, &d2) == HQ_OK && d2 == d, "duration round trip");
    }
    if (hq_time_parse(text, NOW_MS, &t) == HQ_OK) {
        if (t >= MIN_MS && t < MAX_MS) {
            hq_time_format(t, buf, sizeof(buf));
            check(hq_time_parse(buf, 0, &t2) == HQ_OK && t2 == t, "time round trip");
        }
        if (text[0] == '-')
            check(t <= NOW_MS, "relative times are in the past");
    }
    free(text);
    return 0;
}
