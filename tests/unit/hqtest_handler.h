/* hqtest_handler.h: scaffolding the unit tests of handlers share (the plugin loader, the
 * built-in exec and http handlers, the example plugins). Header-only: each test program
 * includes it once, after hookmq/handler.h (or plugin.h).
 *
 * - hqtest_log: a host log function that appends each line to hqtest_log_buf ('\n'-ended;
 *   lines that no longer fit are dropped; thread-safe). Define HQTEST_LOG_LEVELS before the
 *   include to start each line with its level number and a space. A test empties the buffer
 *   with hqtest_log_buf[0] = '\0'.
 * - HQTEST_HOST_API(consumer): the host API a handler's init gets: version "test", the
 *   consumer's name, hqtest_log.
 * - HQTEST_EVENT(...): a struct hq_event with struct_size set and the given fields
 *   (designated initializers), the others zero. */
#ifndef HQTEST_HANDLER_H
#define HQTEST_HANDLER_H

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static char hqtest_log_buf[16384];
static pthread_mutex_t hqtest_log_mu = PTHREAD_MUTEX_INITIALIZER;

static void hqtest_log(enum hq_handler_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), unused));
static void hqtest_log(enum hq_handler_log_level level, const char *fmt, ...)
{
    va_list ap;
    size_t used;

    pthread_mutex_lock(&hqtest_log_mu);
    used = strlen(hqtest_log_buf);
    va_start(ap, fmt);
    if (used < sizeof(hqtest_log_buf) - 8) {
#ifdef HQTEST_LOG_LEVELS
        used += (size_t)snprintf(hqtest_log_buf + used, sizeof(hqtest_log_buf) - used, "%d ",
                                 (int)level);
#else
        (void)level;
#endif
        vsnprintf(hqtest_log_buf + used, sizeof(hqtest_log_buf) - used - 1, fmt, ap);
        used = strlen(hqtest_log_buf);
        hqtest_log_buf[used] = '\n';
        hqtest_log_buf[used + 1] = '\0';
    }
    va_end(ap);
    pthread_mutex_unlock(&hqtest_log_mu);
}

#define HQTEST_HOST_API(CONSUMER)                                                                  \
    {                                                                                              \
        .struct_size = sizeof(struct hq_host_api), .host_version = "test", .consumer = (CONSUMER), \
        .log = hqtest_log,                                                                         \
    }

#define HQTEST_EVENT(...) ((struct hq_event){.struct_size = sizeof(struct hq_event), __VA_ARGS__})

#endif
