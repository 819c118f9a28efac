/* hq_time: clocks, durations with units ("200ms", "10s", "5m", "1h", "7d"), RFC 3339. */
#ifndef HQ_TIME_H
#define HQ_TIME_H

#include <stdint.h>
#include <stddef.h>
#include "hq_status.h"

int64_t hq_now_ms(void);       /* wall clock, ms since the epoch */
int64_t hq_mono_ms(void);      /* monotonic clock, ms */

/* Parse "<digits><unit>" with unit ms|s|m|h|d into milliseconds. No sign, no spaces,
 * no fraction; overflow is HQ_EINVAL. */
HQ_MUST_CHECK int hq_duration_parse(const char *s, uint64_t *ms_out);
/* Write a duration normalized to the largest whole unit ("60000" -> "1m", "200" -> "200ms"). */
void hq_duration_format(uint64_t ms, char *out, size_t outsz);
/* RFC 3339 ("2026-11-29T10:00:00Z", "...T10:00:00.123+02:00") or relative to now_ms
 * ("-2h", "-15m", "-7d", "now") into ms since the epoch. */
HQ_MUST_CHECK int hq_time_parse(const char *s, int64_t now_ms, int64_t *ms_out);
/* Format ms since the epoch as RFC 3339 UTC with milliseconds. */
void hq_time_format(int64_t ms, char *out, size_t outsz);

#endif
