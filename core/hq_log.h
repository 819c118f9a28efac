/* hq_log: leveled, printf-checked logging; text (key=value) or JSON lines on stderr.
 * Thread-safe. Never pass secrets or signature values. */
#ifndef HQ_LOG_H
#define HQ_LOG_H

#include <stdatomic.h>

enum hq_log_level { HQ_LOG_ERROR = 0, HQ_LOG_WARN, HQ_LOG_INFO, HQ_LOG_DEBUG };
enum hq_log_format { HQ_LOG_TEXT = 0, HQ_LOG_JSON };

void hq_log_setup(const char *program, enum hq_log_level level, enum hq_log_format format);
void hq_log_set_level(enum hq_log_level level);
extern _Atomic int hq__log_level;
/* The level in force (changed by SIGHUP reloads while other threads log). */
#define hq_log_enabled(level)                                                                      \
    ((int)(level) <= atomic_load_explicit(&hq__log_level, memory_order_relaxed))

/* msg is a short human message; fields is a printf format of "key=value key=value" pairs.
 * A string argument right after "key=" (key=%s) or between quotes (key="%s") is a value and is
 * escaped: quoted when it holds a space, '=', '"', '\\' or a control byte; control bytes and
 * invalid UTF-8 as \xHH (see core/log.c), so request data cannot forge a field or a line. A %s
 * anywhere else is copied as it is (the caller's own field syntax: never request data there).
 * JSON format turns each pair into a member. */
void hq__log(enum hq_log_level level, const char *msg, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define hq_log(level, msg, ...)                                                                    \
    do {                                                                                           \
        if (hq_log_enabled(level))                                                                 \
            hq__log((level), (msg), __VA_ARGS__);                                                  \
    } while (0)
#define hq_error(msg, ...) hq_log(HQ_LOG_ERROR, msg, __VA_ARGS__)
#define hq_warn(msg, ...) hq_log(HQ_LOG_WARN, msg, __VA_ARGS__)
#define hq_info(msg, ...) hq_log(HQ_LOG_INFO, msg, __VA_ARGS__)
#define hq_debug(msg, ...) hq_log(HQ_LOG_DEBUG, msg, __VA_ARGS__)

#endif
