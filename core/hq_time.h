/* hq_time: clocks, durations with units ("200ms", "10s", "5m", "1h", "7d"), RFC 3339. */
#ifndef HQ_TIME_H
#define HQ_TIME_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include "hq_status.h"

int64_t hq_now_ms(void);       /* wall clock, ms since the epoch */
int64_t hq_mono_ms(void);      /* monotonic clock, ms */
int64_t hq_mono_us(void);      /* the same clock, microseconds */

/* Wait on cv (mu held; cv made with a condattr on CLOCK_MONOTONIC) until deadline_ms on the
 * hq_mono_ms() clock (a deadline passed or negative returns at once). Returns when signalled,
 * at the deadline or on a spurious wake-up: the caller checks its condition again. */
void hq_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms);

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

#define HQ_HOUR_MS 3600000LL
/* The start (ms since the epoch) of the hour that holds t_ms; the floor for negative values
 * too. */
int64_t hq_hour_start(int64_t t_ms);
/* The start (ms since the epoch) of the UTC hour year-month-day hour:00 into *hour_ms; false
 * when they do not form a valid UTC hour (month 1..12, a day that month has, hour 0..23,
 * year 1970..9999). */
bool hq_utc_hour(int year, int month, int day, int hour, int64_t *hour_ms);

#endif
