/* log: one line per event on stderr, "ts level program msg key=value ..." or JSON. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>

#include "hq_buf.h"
#include "hq_log.h"
#include "hq_time.h"

_Atomic int hq__log_level = HQ_LOG_INFO;
static enum hq_log_format log_format = HQ_LOG_TEXT;
static char log_program[64] = "hookmq";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_names[] = {"error", "warn", "info", "debug"};

void hq_log_setup(const char *program, enum hq_log_level level, enum hq_log_format format)
{
    if (program)
        snprintf(log_program, sizeof(log_program), "%s", program);
    atomic_store_explicit(&hq__log_level, (int)level, memory_order_relaxed);
    log_format = format;
}

void hq_log_set_level(enum hq_log_level level)
{
    atomic_store_explicit(&hq__log_level, (int)level, memory_order_relaxed);
}

/* Turn "k=v k2=\"a b\"" into JSON members appended to b. */
static int fields_to_json(struct hq_buf *b, const char *f)
{
    int rc = HQ_OK;

    while (*f && rc == HQ_OK) {
        const char *k, *eq, *v, *ve;

        while (*f == ' ')
            f++;
        if (!*f)
            break;
        k = f;
        eq = strchr(k, '=');
        if (!eq || memchr(k, ' ', (size_t)(eq - k))) {
            /* not a pair: keep the rest as text */
            rc = hq_buf_append(b, ",\"extra\":\"", 10);
            if (rc == HQ_OK)
                rc = hq_buf_append_json_str(b, k, strlen(k));
            if (rc == HQ_OK)
                rc = hq_buf_append(b, "\"", 1);
            break;
        }
        v = eq + 1;
        if (*v == '"') {
            v++;
            ve = strchr(v, '"');
            if (!ve)
                ve = v + strlen(v);
            f = *ve ? ve + 1 : ve;
        } else {
            ve = strchr(v, ' ');
            if (!ve)
                ve = v + strlen(v);
            f = ve;
        }
        rc = hq_buf_append(b, ",\"", 2);
        if (rc == HQ_OK)
            rc = hq_buf_append_json_str(b, k, (size_t)(eq - k));
        if (rc == HQ_OK)
            rc = hq_buf_append(b, "\":\"", 3);
        if (rc == HQ_OK)
            rc = hq_buf_append_json_str(b, v, (size_t)(ve - v));
        if (rc == HQ_OK)
            rc = hq_buf_append(b, "\"", 1);
    }
    return rc;
}

void hq__log(enum hq_log_level level, const char *msg, const char *fields_fmt, ...)
{
    char fields[2048], ts[40];
    struct hq_buf line = HQ_BUF_INIT(8192);
    va_list ap;
    int rc;

    va_start(ap, fields_fmt);
    vsnprintf(fields, sizeof(fields), fields_fmt, ap);
    va_end(ap);
    hq_time_format(hq_now_ms(), ts, sizeof(ts));
    if ((unsigned)level > HQ_LOG_DEBUG)
        level = HQ_LOG_DEBUG;

    if (log_format == HQ_LOG_JSON) {
        rc = hq_buf_appendf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"program\":\"", ts,
                            level_names[level]);
        if (rc == HQ_OK)
            rc = hq_buf_append_json_str(&line, log_program, strlen(log_program));
        if (rc == HQ_OK)
            rc = hq_buf_append(&line, "\",\"msg\":\"", 9);
        if (rc == HQ_OK)
            rc = hq_buf_append_json_str(&line, msg, strlen(msg));
        if (rc == HQ_OK)
            rc = hq_buf_append(&line, "\"", 1);
        if (rc == HQ_OK)
            rc = fields_to_json(&line, fields);
        if (rc == HQ_OK)
            rc = hq_buf_append(&line, "}\n", 2);
    } else {
        rc = hq_buf_appendf(&line, "%s %-5s %s: %s%s%s\n", ts, level_names[level], log_program,
                            msg, fields[0] ? " " : "", fields);
    }
    if (rc == HQ_OK) {
        pthread_mutex_lock(&log_lock);
        fwrite(line.data, 1, line.len, stderr);
        fflush(stderr);
        pthread_mutex_unlock(&log_lock);
    }
    hq_buf_free(&line);
}
