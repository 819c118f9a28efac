/* log: one line per event on stderr, "ts level program msg key=value ..." or JSON.
 *
 * Values reach the log from requests (ids from unsigned headers, client addresses, reasons),
 * so a value must never be able to forge a field or a line. Every string argument in a value
 * position of the fields format is escaped: after "key=" it is written as it is when it holds
 * only printable characters other than space, '"', '=' and '\\', else quoted with the same
 * escapes; between quotes ("key=\"%s\"") '"' and '\\' are escaped. Control characters become
 * \n, \r, \t or \xHH, and bytes of invalid UTF-8 \xHH, so a text line stays one line and a
 * JSON line stays valid JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <pthread.h>

#include "hq_archive.h"
#include "hq_buf.h"
#include "hq_json.h"
#include "hq_log.h"
#include "hq_time.h"

#define FIELDS_MAX 4096 /* a longer fields text is cut (at a value boundary where it can) */

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

/* Append the escaped bytes of s[0..n) (no quotes). */
static int append_escaped(struct hq_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    bool utf8 = hq_utf8_valid((const unsigned char *)s, n);
    size_t i, start = 0;
    int rc = HQ_OK;

    for (i = 0; i < n && rc == HQ_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[4];
        size_t elen = 0;

        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, elen = 2;
        } else if (c == '\n') {
            esc[0] = '\\', esc[1] = 'n', elen = 2;
        } else if (c == '\r') {
            esc[0] = '\\', esc[1] = 'r', elen = 2;
        } else if (c == '\t') {
            esc[0] = '\\', esc[1] = 't', elen = 2;
        } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
            esc[0] = '\\', esc[1] = 'x', esc[2] = hex[c >> 4], esc[3] = hex[c & 15], elen = 4;
        }
        if (elen) {
            rc = hq_buf_append(b, s + start, i - start);
            if (rc == HQ_OK)
                rc = hq_buf_append(b, esc, elen);
            start = i + 1;
        }
    }
    if (rc == HQ_OK)
        rc = hq_buf_append(b, s + start, n - start);
    return rc;
}

/* A value written after "key=": bare when it is safe, else quoted and escaped. */
static int append_value(struct hq_buf *b, const char *s, size_t n)
{
    bool bare = n > 0 && hq_utf8_valid((const unsigned char *)s, n);
    size_t i;
    int rc;

    for (i = 0; i < n && bare; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == '"' || c == '=' || c == '\\')
            bare = false;
    }
    if (bare)
        return hq_buf_append(b, s, n);
    rc = hq_buf_append(b, "\"", 1);
    if (rc == HQ_OK)
        rc = append_escaped(b, s, n);
    if (rc == HQ_OK)
        rc = hq_buf_append(b, "\"", 1);
    return rc;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
/* printf for the fields format, with every %s in a value position escaped (see the top of the
 * file). A %s elsewhere is the caller's own field syntax and is copied as it is. Supports the
 * conversions of C99 printf except %n. HQ_ETOOBIG when b's cap is reached. */
static int format_fields(struct hq_buf *b, const char *fmt, va_list ap)
{
    const char *f = fmt;
    int rc = HQ_OK;

    while (*f && rc == HQ_OK) {
        const char *pct = strchr(f, '%'), *p;
        char spec[48], tmp[512];
        size_t sl = 0;
        char lm = 0; /* length modifier: h, H (hh), l, q (ll), z, j, t, L */
        int prec = -1;
        char conv;

        if (!pct) {
            rc = hq_buf_append(b, f, strlen(f));
            break;
        }
        rc = hq_buf_append(b, f, (size_t)(pct - f));
        if (rc != HQ_OK)
            break;
        p = pct + 1;
        if (*p == '%') {
            rc = hq_buf_append(b, "%", 1);
            f = p + 1;
            continue;
        }
        spec[sl++] = '%';
        while (*p && strchr("-+ #0", *p) && sl < 8)
            spec[sl++] = *p++;
        if (*p == '*') {
            sl += (size_t)snprintf(spec + sl, sizeof(spec) - sl, "%d", va_arg(ap, int));
            p++;
        } else {
            while (*p >= '0' && *p <= '9' && sl < 16)
                spec[sl++] = *p++;
        }
        if (*p == '.') {
            spec[sl++] = *p++;
            if (*p == '*') {
                prec = va_arg(ap, int);
                sl += (size_t)snprintf(spec + sl, sizeof(spec) - sl, "%d", prec);
                p++;
            } else {
                prec = 0;
                while (*p >= '0' && *p <= '9' && sl < 32) {
                    prec = prec * 10 + (*p - '0');
                    spec[sl++] = *p++;
                }
            }
        }
        if ((p[0] == 'h' && p[1] == 'h') || (p[0] == 'l' && p[1] == 'l')) {
            lm = p[0] == 'l' ? 'q' : 'H'; /* q: ll, H: hh */
            spec[sl++] = *p++;
            spec[sl++] = *p++;
        } else if (*p && strchr("hlzjtL", *p)) {
            lm = *p;
            spec[sl++] = *p++;
        }
        conv = *p;
        if (!conv)
            break;
        spec[sl++] = conv;
        spec[sl] = '\0';
        f = p + 1;
        tmp[0] = '\0';
        switch (conv) {
        case 'd': case 'i': {
            if (lm == 'q') snprintf(tmp, sizeof(tmp), spec, va_arg(ap, long long));
            else if (lm == 'l') snprintf(tmp, sizeof(tmp), spec, va_arg(ap, long));
            else if (lm == 'z') snprintf(tmp, sizeof(tmp), spec, va_arg(ap, ssize_t));
            else if (lm == 'j') snprintf(tmp, sizeof(tmp), spec, va_arg(ap, intmax_t));
            else if (lm == 't') snprintf(tmp, sizeof(tmp), spec, va_arg(ap, ptrdiff_t));
            else snprintf(tmp, sizeof(tmp), spec, va_arg(ap, int));
            break;
        }
        case 'u': case 'x': case 'X': case 'o': {
            if (lm == 'q') snprintf(tmp, sizeof(tmp), spec, va_arg(ap, unsigned long long));
            else if (lm == 'l') snprintf(tmp, sizeof(tmp), spec, va_arg(ap, unsigned long));
            else if (lm == 'z') snprintf(tmp, sizeof(tmp), spec, va_arg(ap, size_t));
            else if (lm == 'j') snprintf(tmp, sizeof(tmp), spec, va_arg(ap, uintmax_t));
            else if (lm == 't') snprintf(tmp, sizeof(tmp), spec, va_arg(ap, ptrdiff_t));
            else snprintf(tmp, sizeof(tmp), spec, va_arg(ap, unsigned int));
            break;
        }
        case 'c':
            snprintf(tmp, sizeof(tmp), spec, va_arg(ap, int));
            break;
        case 'e': case 'E': case 'f': case 'F': case 'g': case 'G': case 'a': case 'A':
            if (lm == 'L')
                snprintf(tmp, sizeof(tmp), spec, va_arg(ap, long double));
            else
                snprintf(tmp, sizeof(tmp), spec, va_arg(ap, double));
            break;
        case 'p':
            snprintf(tmp, sizeof(tmp), spec, va_arg(ap, void *));
            break;
        case 's': {
            const char *v = va_arg(ap, const char *);
            size_t n;
            bool after_eq = pct > fmt && pct[-1] == '=';
            bool quoted = pct > fmt && pct[-1] == '"' && *f == '"';

            if (!v)
                v = "(null)";
            n = prec >= 0 ? strnlen(v, (size_t)prec) : strlen(v);
            if (quoted)
                rc = append_escaped(b, v, n);
            else if (after_eq)
                rc = append_value(b, v, n);
            else
                rc = hq_buf_append(b, v, n);
            continue;
        }
        default: /* %n and unknown conversions: nothing */
            continue;
        }
        rc = hq_buf_append(b, tmp, strlen(tmp));
    }
    return rc;
}
#pragma GCC diagnostic pop

/* Append the member ,"k[0..kn)":"v[0..vn)" to b. */
static int json_member(struct hq_buf *b, const char *k, size_t kn, const char *v, size_t vn)
{
    int rc;

    if ((rc = hq_buf_append(b, ",\"", 2)) != HQ_OK ||
        (rc = hq_buf_append_json_str(b, k, kn)) != HQ_OK ||
        (rc = hq_buf_append(b, "\":\"", 3)) != HQ_OK ||
        (rc = hq_buf_append_json_str(b, v, vn)) != HQ_OK)
        return rc;
    return hq_buf_append(b, "\"", 1);
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
            rc = json_member(b, "extra", 5, k, strlen(k));
            break;
        }
        v = eq + 1;
        if (*v == '"') {
            /* quoted and escaped by format_fields: undo \" \\ \n \r \t; \xHH stays as text
             * (it stands for a control byte or a byte of invalid UTF-8) */
            struct hq_buf u = HQ_BUF_INIT(FIELDS_MAX);

            for (ve = v + 1; *ve && *ve != '"' && rc == HQ_OK; ve++) {
                char c = *ve;
                if (c == '\\' && ve[1]) {
                    char n = *++ve;
                    if (n == 'n')
                        c = '\n';
                    else if (n == 'r')
                        c = '\r';
                    else if (n == 't')
                        c = '\t';
                    else if (n == 'x')
                        rc = hq_buf_append(&u, "\\", 1), c = 'x';
                    else
                        c = n;
                }
                if (rc == HQ_OK)
                    rc = hq_buf_append(&u, &c, 1);
            }
            f = *ve ? ve + 1 : ve;
            if (rc == HQ_OK)
                rc = json_member(b, k, (size_t)(eq - k), u.data ? (const char *)u.data : "",
                                 u.len);
            hq_buf_free(&u);
            continue;
        } else {
            ve = strchr(v, ' ');
            if (!ve)
                ve = v + strlen(v);
            f = ve;
        }
        rc = json_member(b, k, (size_t)(eq - k), v, (size_t)(ve - v));
    }
    return rc;
}

void hq__log(enum hq_log_level level, const char *msg, const char *fields_fmt, ...)
{
    char fields[FIELDS_MAX + 1], ts[40];
    struct hq_buf fb = HQ_BUF_INIT(FIELDS_MAX);
    struct hq_buf line = HQ_BUF_INIT(4 * FIELDS_MAX);
    va_list ap;
    int rc;

    va_start(ap, fields_fmt);
    (void)format_fields(&fb, fields_fmt, ap); /* past the cap: what fitted */
    va_end(ap);
    memcpy(fields, fb.data ? (const char *)fb.data : "", fb.len);
    fields[fb.len] = '\0';
    hq_buf_free(&fb);
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
