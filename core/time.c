/* time: clocks, unit durations and RFC 3339 timestamps. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hq_time.h"

int64_t hq_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hq_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hq_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void hq_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts;

    if (deadline_ms < 0)
        deadline_ms = 0;
    ts.tv_sec = (time_t)(deadline_ms / 1000);
    ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
    (void)pthread_cond_timedwait(cv, mu, &ts);
}

static const struct {
    const char *name;
    uint64_t ms;
} units[] = {{"d", 86400000ULL}, {"h", 3600000ULL}, {"m", 60000ULL}, {"s", 1000ULL}, {"ms", 1ULL}};

int hq_duration_parse(const char *s, uint64_t *ms_out)
{
    uint64_t v = 0;
    const char *p = s;
    size_t i;

    if (!s || !isdigit((unsigned char)*p))
        return HQ_EINVAL;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return HQ_EINVAL;
        v = v * 10 + d;
        p++;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].name) == 0) {
            if (v > UINT64_MAX / units[i].ms)
                return HQ_EINVAL;
            *ms_out = v * units[i].ms;
            return HQ_OK;
        }
    }
    return HQ_EINVAL;
}

void hq_duration_format(uint64_t ms, char *out, size_t outsz)
{
    size_t i;

    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(out, outsz, "%llu%s", (unsigned long long)(ms / units[i].ms), units[i].name);
            return;
        }
    }
    snprintf(out, outsz, "%llums", (unsigned long long)ms);
}

static int parse_digits(const char **p, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return HQ_EINVAL;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return HQ_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int hq_time_parse(const char *s, int64_t now_ms, int64_t *ms_out)
{
    int Y, M, D, h, mi, sec, oh = 0, om = 0, frac_ms = 0, sign = 0;
    const char *p = s;
    uint64_t rel;

    if (!s || !*s)
        return HQ_EINVAL;
    if (strcmp(s, "now") == 0) {
        *ms_out = now_ms;
        return HQ_OK;
    }
    if (*s == '-') {
        if (hq_duration_parse(s + 1, &rel) != HQ_OK || rel > (uint64_t)INT64_MAX / 2 ||
            now_ms < INT64_MIN / 2)
            return HQ_EINVAL;
        *ms_out = now_ms - (int64_t)rel;
        return HQ_OK;
    }
    if (parse_digits(&p, 4, &Y) || *p++ != '-' || parse_digits(&p, 2, &M) || *p++ != '-' ||
        parse_digits(&p, 2, &D))
        return HQ_EINVAL;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return HQ_EINVAL;
    p++;
    if (parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &mi) || *p++ != ':' ||
        parse_digits(&p, 2, &sec))
        return HQ_EINVAL;
    if (*p == '.') {
        int digits = 0;
        p++;
        if (!isdigit((unsigned char)*p))
            return HQ_EINVAL;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        while (digits < 3) {
            frac_ms *= 10;
            digits++;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        p++;
        if (parse_digits(&p, 2, &oh) || *p++ != ':' || parse_digits(&p, 2, &om))
            return HQ_EINVAL;
        if (oh > 23 || om > 59)
            return HQ_EINVAL;
    } else {
        return HQ_EINVAL;
    }
    if (*p != '\0')
        return HQ_EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60)
        return HQ_EINVAL;
    {
        static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
        if (D > mdays[M - 1] || (M == 2 && D == 29 && !leap))
            return HQ_EINVAL;
    }
    *ms_out = (days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + mi * 60 + sec -
               sign * (oh * 3600 + om * 60)) *
                  1000 +
              frac_ms;
    return HQ_OK;
}

void hq_time_format(int64_t ms, char *out, size_t outsz)
{
    int64_t sec = ms / 1000, rem = ms % 1000;
    struct tm tm;
    time_t t;

    if (rem < 0) { /* floor division for times before the epoch */
        sec -= 1;
        rem += 1000;
    }
    t = (time_t)sec;

    gmtime_r(&t, &tm);
    snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)rem);
}

int64_t hq_hour_start(int64_t t)
{
    int64_t h = t / HQ_HOUR_MS;

    if (t < 0 && t % HQ_HOUR_MS)
        h--;
    return h * HQ_HOUR_MS;
}

bool hq_utc_hour(int year, int month, int day, int hour, int64_t *hour_ms)
{
    struct tm tm, back;
    time_t t;

    if (year < 1970 || year > 9999 || month < 1 || month > 12 || day < 1 || day > 31 ||
        hour < 0 || hour > 23)
        return false;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    t = timegm(&tm);
    if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != day || back.tm_mon != month - 1)
        return false;
    *hour_ms = (int64_t)t * 1000;
    return true;
}
