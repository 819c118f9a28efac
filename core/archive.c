/* archive: archive records (docs/archive.md) and the segment writer of
 * hookmq-archive (see hq_archive.h; compression and the index are in archive_index.c, reading
 * in archive_read.c).
 *
 * A record is one JSON object per line, written by hand here (json-c's serializer would turn
 * '/' into "\/" and cannot say which bytes were invalid UTF-8) and read back with json-c in
 * strict mode. The body is kept exact: "body" when it is valid UTF-8 by our own validator
 * (json-c accepts overlongs, surrogates and code points above U+10FFFF), else "body_b64". */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "hq__archive.h"
#include "hq__json.h"
#include "hq_codec.h"
#include "hq_consume.h"
#include "hq_json.h"
#include "hq_lifecycle.h"
#include "hq_log.h"
#include "hq_time.h"
#include "hq_utf8.h"

#define TRACE_EXCHANGE "amq.rabbitmq.trace"
#define REC_DEPTH 8 /* record: object > headers > {"b64"} */

/* ================================================================== a set of (source, id) keys */

static void key128(const char *source, const char *id, uint64_t *a, uint64_t *b)
{
    size_t ls = strlen(source), li = strlen(id), n = ls + 1 + li;
    char stack[512], *buf = n <= sizeof(stack) ? stack : malloc(n);

    if (!buf) {
        /* no memory for the joined key: hash the parts (still deterministic) */
        *a = hq_murmur64a(hq_murmur64a(1, source, ls), id, li);
        *b = hq_murmur64a(hq_murmur64a(2, source, ls), id, li);
    } else {
        memcpy(buf, source, ls);
        buf[ls] = '\0';
        memcpy(buf + ls + 1, id, li);
        *a = hq_murmur64a(0x9e3779b97f4a7c15ULL, buf, n);
        *b = hq_murmur64a(0xc2b2ae3d27d4eb4fULL, buf, n);
        if (buf != stack)
            free(buf);
    }
    if (*a == 0 && *b == 0)
        *b = 1;
}

static int hset_grow(struct hq__hset *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 1024, i;
    uint64_t *ns = calloc(ncap, 2 * sizeof(uint64_t));

    if (!ns)
        return HQ_ENOMEM;
    for (i = 0; i < s->cap; i++) {
        uint64_t a = s->slots[2 * i], b = s->slots[2 * i + 1];
        size_t j;

        if (!a && !b)
            continue;
        for (j = (size_t)(a ^ (b >> 7)) & (ncap - 1);; j = (j + 1) & (ncap - 1)) {
            if (!ns[2 * j] && !ns[2 * j + 1]) {
                ns[2 * j] = a;
                ns[2 * j + 1] = b;
                break;
            }
        }
    }
    free(s->slots);
    s->slots = ns;
    s->cap = ncap;
    return HQ_OK;
}

int hq__hset_add(struct hq__hset *s, const char *source, const char *id, bool *added)
{
    uint64_t a, b;
    size_t j;

    *added = false;
    if ((s->n + 1) * 2 > s->cap && hset_grow(s) != HQ_OK)
        return HQ_ENOMEM;
    key128(source ? source : "", id ? id : "", &a, &b);
    for (j = (size_t)(a ^ (b >> 7)) & (s->cap - 1);; j = (j + 1) & (s->cap - 1)) {
        if (s->slots[2 * j] == a && s->slots[2 * j + 1] == b)
            return HQ_OK;
        if (!s->slots[2 * j] && !s->slots[2 * j + 1]) {
            s->slots[2 * j] = a;
            s->slots[2 * j + 1] = b;
            s->n++;
            *added = true;
            return HQ_OK;
        }
    }
}

void hq__hset_free(struct hq__hset *s)
{
    if (!s)
        return;
    free(s->slots);
    memset(s, 0, sizeof(*s));
}

int hq__aslots_reserve(size_t **slots, size_t *nslots, size_t n,
                       uint64_t (*hash)(const void *arg, size_t i), const void *arg)
{
    size_t ns, i, *s;

    if ((n + 1) * 2 <= *nslots)
        return HQ_OK;
    ns = *nslots ? *nslots * 2 : 256;
    s = calloc(ns, sizeof(*s));
    if (!s)
        return HQ_ENOMEM;
    for (i = 0; i < n; i++) {
        size_t j = (size_t)hash(arg, i) & (ns - 1);

        while (s[j])
            j = (j + 1) & (ns - 1);
        s[j] = i + 1;
    }
    free(*slots);
    *slots = s;
    *nslots = ns;
    return HQ_OK;
}

struct hq_aseen {
    struct hq__hset set;
};

struct hq_aseen *hq_aseen_new(void)
{
    return calloc(1, sizeof(struct hq_aseen));
}

int hq_aseen_add(struct hq_aseen *s, const char *source, const char *id)
{
    bool added;
    int rc;

    if (!s)
        return HQ_EINVAL;
    rc = hq__hset_add(&s->set, source, id, &added);
    if (rc != HQ_OK)
        return rc;
    return added ? 1 : 0;
}

size_t hq_aseen_count(const struct hq_aseen *s)
{
    return s ? s->set.n : 0;
}

void hq_aseen_free(struct hq_aseen *s)
{
    if (!s)
        return;
    hq__hset_free(&s->set);
    free(s);
}

/* ================================================================== JSON */

static int json_cstr(struct hq_buf *b, const char *s)
{
    return hq_json_str(b, s ? s : "", s ? strlen(s) : 0);
}

/* A value that must keep its exact bytes: a JSON string when valid UTF-8, else {"b64":".."}. */
static int json_exact(struct hq_buf *b, const char *s, size_t n)
{
    int rc;

    if (hq_utf8_valid((const unsigned char *)s, n))
        return hq_json_str(b, s, n);
    if ((rc = hq_buf_append(b, "{\"b64\":\"", 8)) != HQ_OK ||
        (rc = hq_b64_append(b, s, n)) != HQ_OK)
        return rc;
    return hq_buf_append(b, "\"}", 2);
}

/* ================================================================== segment names */

int hq_archive_segment_base(const char *dir, int64_t t_ms, unsigned seq, char *out, size_t outsz)
{
    struct tm tm;
    time_t t = (time_t)(hq_hour_start(t_ms) / 1000);
    int n;

    if (!dir || !out || !gmtime_r(&t, &tm))
        return HQ_EINVAL;
    if (seq)
        n = snprintf(out, outsz, "%s/%04d/%02d/%02d/%02d.%u", dir, tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, seq);
    else
        n = snprintf(out, outsz, "%s/%04d/%02d/%02d/%02d", dir, tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour);
    return n < 0 || (size_t)n >= outsz ? HQ_ETOOBIG : HQ_OK;
}

/* ================================================================== encode */

static const char *kind_name(enum hq_arec_kind k)
{
    switch (k) {
    case HQ_AREC_LIFECYCLE: return "lifecycle";
    case HQ_AREC_TRACE: return "trace";
    default: return "event";
    }
}

static int64_t hdr_ms(const struct hq_msg *m, const char *key)
{
    const struct hq_hdr *h = hq_msg_header(m, key);
    char *end;
    long long v;

    if (!h)
        return 0;
    if (h->type == HQ_HDR_LONG)
        return h->num;
    if (!h->str)
        return 0;
    errno = 0;
    v = strtoll(h->str, &end, 10);
    return errno || *end || end == h->str ? 0 : v;
}

/* What a lifecycle body says (borrowed from the parsed object o). */
struct lc_body {
    json_object *o;
    const char *source, *id, *verdict;
    int64_t at;
};

static void lc_body_parse(const struct hq_msg *m, struct lc_body *lb)
{
    json_object *v;

    memset(lb, 0, sizeof(*lb));
    if (!m->body || m->body_len < 2 || m->body_len > (1u << 20) || m->body[0] != '{')
        return;
    lb->o = hq_json_parse((const char *)m->body, m->body_len, 16);
    if (!lb->o || !json_object_is_type(lb->o, json_type_object))
        return;
    if (json_object_object_get_ex(lb->o, "source", &v) && json_object_is_type(v, json_type_string))
        lb->source = json_object_get_string(v);
    if (json_object_object_get_ex(lb->o, "id", &v) && json_object_is_type(v, json_type_string))
        lb->id = json_object_get_string(v);
    if (json_object_object_get_ex(lb->o, "verdict", &v) && json_object_is_type(v, json_type_string))
        lb->verdict = json_object_get_string(v);
    if (json_object_object_get_ex(lb->o, "at", &v) && json_object_is_type(v, json_type_int))
        lb->at = json_object_get_int64(v);
}

/* Append "key":<string> (display copy). */
static int kv_str(struct hq_buf *b, const char *key, const char *s, size_t n)
{
    int rc = hq_buf_append(b, key, strlen(key));

    return rc == HQ_OK ? hq_json_str(b, s ? s : "", s ? n : 0) : rc;
}

int hq_arec_encode_msg(enum hq_arec_kind kind, const struct hq_msg *m, uint8_t delivery_mode,
                       int64_t now_ms, struct hq_buf *out)
{
    const char *rk, *source = NULL, *type = NULL, *id = NULL, *dot;
    size_t source_len = 0, type_len = 0, i, mark;
    struct lc_body lb;
    int64_t at = 0;
    bool first;
    int rc;

    if (!m || !out)
        return HQ_EINVAL;
    memset(&lb, 0, sizeof(lb));
    mark = out->len;
    rk = m->routing_key ? m->routing_key : "";
    dot = strchr(rk, '.');

    if (kind == HQ_AREC_LIFECYCLE) {
        lc_body_parse(m, &lb);
        source = hq_msg_str(m, "hookmq-source");
        if (!source)
            source = lb.source;
        id = hq_msg_str(m, "hookmq-event-id");
        if (!id)
            id = lb.id;
        type = hq_msg_str(m, "hookmq-verdict");
        if (!type)
            type = lb.verdict;
        if (!type && dot) {
            type = dot + 1;
            type_len = strlen(type);
        }
        at = lb.at;
    } else if (kind == HQ_AREC_EVENT) {
        source = hq_msg_str(m, "hookmq-source");
        type = hq_msg_str(m, "hookmq-event-type");
        id = m->message_id;
        at = hdr_ms(m, "hookmq-received-at");
        if (!source) {
            source = rk;
            source_len = dot ? (size_t)(dot - rk) : strlen(rk);
        }
        if (!type && dot) {
            type = dot + 1;
            type_len = strlen(type);
        }
    } else { /* trace: the routing key says publish.<exchange> / deliver.<queue> */
        type = rk;
        id = m->message_id;
    }
    if (source && !source_len)
        source_len = strlen(source);
    if (type && !type_len)
        type_len = strlen(type);
    if (at <= 0 && m->timestamp_s > 0 && m->timestamp_s < INT64_MAX / 1000)
        at = m->timestamp_s * 1000;
    if (at <= 0)
        at = now_ms;

    if ((rc = hq_buf_appendf(out, "{\"kind\":\"%s\",\"received_at\":%lld", kind_name(kind),
                             (long long)at)) != HQ_OK ||
        (rc = kv_str(out, ",\"source\":", source, source_len)) != HQ_OK ||
        (rc = kv_str(out, ",\"type\":", type, type_len)) != HQ_OK ||
        (rc = kv_str(out, ",\"id\":", id, id ? strlen(id) : 0)) != HQ_OK ||
        (rc = kv_str(out, ",\"routing_key\":", rk, strlen(rk))) != HQ_OK)
        goto out;

    /* properties (exact values) */
    if ((rc = hq_buf_append(out, ",\"properties\":{", 15)) != HQ_OK)
        goto out;
    first = true;
    if (m->message_id) {
        if ((rc = hq_buf_append(out, "\"message_id\":", 13)) != HQ_OK ||
            (rc = json_exact(out, m->message_id, strlen(m->message_id))) != HQ_OK)
            goto out;
        first = false;
    }
    if (m->content_type) {
        if ((rc = hq_buf_append(out, first ? "\"content_type\":" : ",\"content_type\":",
                                first ? 15 : 16)) != HQ_OK ||
            (rc = json_exact(out, m->content_type, strlen(m->content_type))) != HQ_OK)
            goto out;
        first = false;
    }
    if (m->timestamp_s) {
        if ((rc = hq_buf_appendf(out, "%s\"timestamp\":%lld", first ? "" : ",",
                                 (long long)m->timestamp_s)) != HQ_OK)
            goto out;
        first = false;
    }
    if (delivery_mode) {
        if ((rc = hq_buf_appendf(out, "%s\"delivery_mode\":%u", first ? "" : ",",
                                 (unsigned)delivery_mode)) != HQ_OK)
            goto out;
    }

    /* headers (exact values; keys are display strings) */
    if ((rc = hq_buf_append(out, "},\"headers\":{", 13)) != HQ_OK)
        goto out;
    for (i = 0; i < m->n_headers; i++) {
        const struct hq_hdr *h = &m->headers[i];

        if (!h->key)
            continue;
        if ((i && (rc = hq_buf_append(out, ",", 1)) != HQ_OK) ||
            (rc = json_cstr(out, h->key)) != HQ_OK || (rc = hq_buf_append(out, ":", 1)) != HQ_OK)
            goto out;
        if (h->type == HQ_HDR_LONG)
            rc = hq_buf_appendf(out, "%lld", (long long)h->num);
        else
            rc = json_exact(out, h->str ? h->str : "", h->str ? strlen(h->str) : 0);
        if (rc != HQ_OK)
            goto out;
    }
    if ((rc = hq_buf_append(out, "}", 1)) != HQ_OK)
        goto out;

    /* body */
    if (hq_utf8_valid(m->body, m->body_len)) {
        if ((rc = hq_buf_append(out, ",\"body\":", 8)) != HQ_OK ||
            (rc = hq_json_str(out, (const char *)m->body, m->body_len)) != HQ_OK)
            goto out;
    } else {
        if ((rc = hq_buf_append(out, ",\"body_b64\":\"", 13)) != HQ_OK ||
            (rc = hq_b64_append(out, m->body, m->body_len)) != HQ_OK ||
            (rc = hq_buf_append(out, "\"", 1)) != HQ_OK)
            goto out;
    }
    rc = hq_buf_append(out, "}\n", 2);
out:
    if (lb.o)
        json_object_put(lb.o);
    if (rc != HQ_OK) {
        out->len = mark; /* never leave half a record behind */
        if (out->data)
            out->data[mark] = '\0';
    }
    return rc;
}

/* A batch of lifecycle records (hq_lc_batch: one JSON object per line): one archive record
 * per line, each as if its record had come alone (body: that line; source, id and verdict
 * from it; message_id "<batch id>.<line number>", so a redelivered batch gives the same ids). */
static int encode_lc_batch(const struct hq_delivery *d, int64_t now_ms, struct hq_buf *out,
                           size_t *nrec)
{
    const unsigned char *p = d->msg.body, *end = p + d->msg.body_len;
    size_t mark = out->len, k = 0;
    char mid[300];
    int rc = HQ_OK;

    while (p < end) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        struct hq_msg part = d->msg; /* shallow: everything borrowed from d */

        if (len) {
            snprintf(mid, sizeof(mid), "%.255s.%zu", d->msg.message_id ? d->msg.message_id : "",
                     k + 1);
            part.message_id = mid;
            part.content_type = (char *)"application/json"; /* this line: one JSON object */
            part.body = (unsigned char *)p;
            part.body_len = len;
            rc = hq_arec_encode_msg(HQ_AREC_LIFECYCLE, &part, d->delivery_mode, now_ms, out);
            if (rc != HQ_OK) {
                out->len = mark; /* all of the batch or nothing */
                if (out->data)
                    out->data[mark] = '\0';
                return rc;
            }
            k++;
        }
        p += len + (nl ? 1 : 0);
    }
    *nrec = k;
    return HQ_OK;
}

int hq_arec_encode(const struct hq_delivery *d, int64_t now_ms, struct hq_buf *out, size_t *nrec)
{
    enum hq_arec_kind kind = HQ_AREC_EVENT;
    size_t one;
    int rc;

    if (!nrec)
        nrec = &one;
    *nrec = 0;
    if (!d || !out)
        return HQ_EINVAL;
    if (d->exchange && strcmp(d->exchange, HQ_LIFECYCLE_EXCHANGE) == 0)
        kind = HQ_AREC_LIFECYCLE;
    else if (d->exchange && strcmp(d->exchange, TRACE_EXCHANGE) == 0)
        kind = HQ_AREC_TRACE;
    if (kind == HQ_AREC_LIFECYCLE && hq_msg_header(&d->msg, "hookmq-records") &&
        d->msg.body_len && memchr(d->msg.body, '\n', d->msg.body_len))
        return encode_lc_batch(d, now_ms, out, nrec);
    rc = hq_arec_encode_msg(kind, &d->msg, d->delivery_mode, now_ms, out);
    if (rc == HQ_OK)
        *nrec = 1;
    return rc;
}

/* ================================================================== parse */

void hq_arec_free(struct hq_arec *r)
{
    if (!r)
        return;
    free(r->source);
    free(r->type);
    free(r->id);
    free(r->routing_key);
    free(r->properties_json);
    free(r->headers_json);
    free(r->body);
    free(r->line);
    memset(r, 0, sizeof(*r));
}

/* The JSON string v without NUL bytes, copied. */
static int string_copy(json_object *v, char **out)
{
    const char *s;
    int n;

    if (!json_object_is_type(v, json_type_string))
        return HQ_EINVAL;
    s = json_object_get_string(v);
    n = json_object_get_string_len(v);
    if (n < 0 || memchr(s, '\0', (size_t)n))
        return HQ_EINVAL;
    *out = strndup(s, (size_t)n);
    return *out ? HQ_OK : HQ_ENOMEM;
}

/* A string member without NUL bytes, copied. */
static int get_cstr(json_object *o, const char *key, char **out)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v))
        return HQ_EINVAL;
    return string_copy(v, out);
}

static int obj_text(json_object *o, const char *key, char **out)
{
    json_object *v;
    const char *s;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_object))
        return HQ_EINVAL;
    s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s)
        return HQ_ENOMEM;
    *out = strdup(s);
    return *out ? HQ_OK : HQ_ENOMEM;
}

int hq_arec_parse(const char *line, size_t n, struct hq_arec *out)
{
    json_object *o = NULL, *v, *body = NULL, *b64 = NULL;
    const char *k;
    int rc = HQ_EINVAL;

    if (!out)
        return HQ_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!line)
        return HQ_EINVAL;
    if (n && line[n - 1] == '\n')
        n--;
    if (n < 2 || n > HQ__AREC_LINE_MAX || line[0] != '{')
        return HQ_EINVAL;
    o = hq_json_parse(line, n, REC_DEPTH);
    if (!o || !json_object_is_type(o, json_type_object))
        goto out;
    if (!json_object_object_get_ex(o, "kind", &v) || !json_object_is_type(v, json_type_string))
        goto out;
    k = json_object_get_string(v);
    if (strcmp(k, "event") == 0)
        out->kind = HQ_AREC_EVENT;
    else if (strcmp(k, "lifecycle") == 0)
        out->kind = HQ_AREC_LIFECYCLE;
    else if (strcmp(k, "trace") == 0)
        out->kind = HQ_AREC_TRACE;
    else
        goto out;
    out->lifecycle = out->kind == HQ_AREC_LIFECYCLE;
    if (!json_object_object_get_ex(o, "received_at", &v) || !json_object_is_type(v, json_type_int))
        goto out;
    errno = 0;
    out->received_at = json_object_get_int64(v);
    if (errno == ERANGE)
        goto out;
    if ((rc = get_cstr(o, "source", &out->source)) != HQ_OK ||
        (rc = get_cstr(o, "type", &out->type)) != HQ_OK ||
        (rc = get_cstr(o, "id", &out->id)) != HQ_OK ||
        (rc = get_cstr(o, "routing_key", &out->routing_key)) != HQ_OK ||
        (rc = obj_text(o, "properties", &out->properties_json)) != HQ_OK ||
        (rc = obj_text(o, "headers", &out->headers_json)) != HQ_OK)
        goto out;
    rc = HQ_EINVAL;
    json_object_object_get_ex(o, "body", &body);
    json_object_object_get_ex(o, "body_b64", &b64);
    if (!body == !b64)
        goto out; /* exactly one of them */
    if (body) {
        const char *s;
        int len;

        if (!json_object_is_type(body, json_type_string))
            goto out;
        s = json_object_get_string(body);
        len = json_object_get_string_len(body);
        /* our writer only ever stores valid UTF-8 here */
        if (len < 0 || !hq_utf8_valid((const unsigned char *)s, (size_t)len))
            goto out;
        out->body = malloc((size_t)len + 1);
        if (!out->body) {
            rc = HQ_ENOMEM;
            goto out;
        }
        memcpy(out->body, s, (size_t)len);
        out->body[len] = '\0';
        out->body_len = (size_t)len;
    } else {
        int len;

        if (!json_object_is_type(b64, json_type_string))
            goto out;
        len = json_object_get_string_len(b64);
        if (len < 0)
            goto out;
        rc = hq_b64_decode_alloc(json_object_get_string(b64), (size_t)len, &out->body,
                                 &out->body_len);
        if (rc != HQ_OK)
            goto out;
        rc = HQ_EINVAL;
    }
    out->line = strndup(line, n);
    if (!out->line) {
        rc = HQ_ENOMEM;
        goto out;
    }
    out->line_len = n;
    rc = HQ_OK;
out:
    if (o)
        json_object_put(o);
    if (rc != HQ_OK)
        hq_arec_free(out);
    return rc;
}

/* A {"b64"} or string value as exact bytes (NUL-terminated copy; NUL inside refused). */
static int exact_value(json_object *v, char **out)
{
    int len;

    *out = NULL;
    if (json_object_is_type(v, json_type_string))
        return string_copy(v, out);
    if (json_object_is_type(v, json_type_object)) {
        json_object *b;
        unsigned char *buf;
        size_t got;
        int rc;

        if (json_object_object_length(v) != 1 || !json_object_object_get_ex(v, "b64", &b) ||
            !json_object_is_type(b, json_type_string))
            return HQ_EINVAL;
        len = json_object_get_string_len(b);
        if (len < 0)
            return HQ_EINVAL;
        rc = hq_b64_decode_alloc(json_object_get_string(b), (size_t)len, &buf, &got);
        if (rc != HQ_OK)
            return rc;
        if (memchr(buf, '\0', got)) {
            free(buf);
            return HQ_EINVAL;
        }
        *out = (char *)buf;
        return HQ_OK;
    }
    return HQ_EINVAL;
}

int hq_arec_to_msg(const struct hq_arec *r, struct hq_msg *out)
{
    json_object *props = NULL, *hdrs = NULL, *v;
    int rc = HQ_EINVAL;

    if (!r || !out)
        return HQ_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!r->properties_json || !r->headers_json)
        return HQ_EINVAL;
    props = hq_json_parse(r->properties_json, strlen(r->properties_json), REC_DEPTH);
    hdrs = hq_json_parse(r->headers_json, strlen(r->headers_json), REC_DEPTH);
    if (!props || !hdrs || !json_object_is_type(props, json_type_object) ||
        !json_object_is_type(hdrs, json_type_object))
        goto out;
    rc = HQ_ENOMEM;
    if (!(out->routing_key = strdup(r->routing_key ? r->routing_key : "")))
        goto out;
    if (json_object_object_get_ex(props, "message_id", &v) &&
        (rc = exact_value(v, &out->message_id)) != HQ_OK)
        goto out;
    if (json_object_object_get_ex(props, "content_type", &v) &&
        (rc = exact_value(v, &out->content_type)) != HQ_OK)
        goto out;
    if (json_object_object_get_ex(props, "timestamp", &v)) {
        if (!json_object_is_type(v, json_type_int)) {
            rc = HQ_EINVAL;
            goto out;
        }
        out->timestamp_s = json_object_get_int64(v);
    }
    {
        json_object_object_foreach(hdrs, key, val)
        {
            /* our writer only writes valid UTF-8 keys */
            if (!hq_utf8_valid((const unsigned char *)key, strlen(key))) {
                rc = HQ_EINVAL;
                goto out;
            }
            if (json_object_is_type(val, json_type_int)) {
                rc = hq_msg_add_long(out, key, json_object_get_int64(val));
            } else if (json_object_is_type(val, json_type_boolean)) {
                rc = hq_msg_add_long(out, key, json_object_get_boolean(val) ? 1 : 0);
            } else {
                char *s = NULL;

                rc = exact_value(val, &s);
                if (rc == HQ_OK)
                    rc = hq_msg_add_str(out, key, s);
                free(s);
            }
            if (rc != HQ_OK)
                goto out;
        }
    }
    if (r->body_len) {
        out->body = malloc(r->body_len);
        if (!out->body) {
            rc = HQ_ENOMEM;
            goto out;
        }
        memcpy(out->body, r->body, r->body_len);
        out->body_len = r->body_len;
    }
    rc = HQ_OK;
out:
    if (props)
        json_object_put(props);
    if (hdrs)
        json_object_put(hdrs);
    if (rc != HQ_OK)
        hq_msg_free(out);
    return rc;
}

/* ================================================================== filters */

void hq_afilter_init(struct hq_afilter *f)
{
    if (!f)
        return;
    memset(f, 0, sizeof(*f));
    f->from_ms = INT64_MIN;
    f->to_ms = INT64_MAX;
}

bool hq_afilter_match(const struct hq_afilter *f, const struct hq_arec *r)
{
    unsigned mask, kind;

    if (!f || !r)
        return false;
    kind = r->lifecycle ? HQ_AREC_LIFECYCLE : (unsigned)r->kind;
    mask = f->kinds ? f->kinds : (1u << HQ_AREC_EVENT) | (1u << HQ_AREC_LIFECYCLE);
    if (f->events_only)
        mask &= 1u << HQ_AREC_EVENT;
    if (!(mask & (1u << kind)))
        return false;
    if (r->received_at < f->from_ms || r->received_at >= f->to_ms)
        return false;
    if (f->source && (!r->source || strcmp(f->source, r->source) != 0))
        return false;
    if (f->id && (!r->id || strcmp(f->id, r->id) != 0))
        return false;
    if (f->type_glob && fnmatch(f->type_glob, r->type ? r->type : "", 0) != 0)
        return false;
    if (f->grep && f->grep[0] &&
        (!r->body || !memmem(r->body, r->body_len, f->grep, strlen(f->grep))))
        return false;
    return true;
}

/* ================================================================== writer */

struct hq_awriter {
    char dir[PATH_MAX];
    int lock_fd;
    int fd;             /* open segment, -1 when none */
    int64_t hour;       /* its hour */
    char base[PATH_MAX];
    char path[PATH_MAX + 16];
    off_t size;         /* synced size */
};

int hq_awriter_open(const char *dir, struct hq_awriter **out, char *err, size_t errsz)
{
    struct hq_awriter *w;
    char lock[PATH_MAX + 8];
    int rc;

    *out = NULL;
    if (!dir || !*dir || strlen(dir) >= PATH_MAX - 64) {
        snprintf(err, errsz, "archive.dir is empty or too long");
        return HQ_EINVAL;
    }
    w = calloc(1, sizeof(*w));
    if (!w)
        return HQ_ENOMEM;
    w->fd = -1;
    w->lock_fd = -1;
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    rc = hq_mkdirs(dir);
    if (rc != HQ_OK) {
        snprintf(err, errsz, "cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    snprintf(lock, sizeof(lock), "%s/.lock", dir);
    w->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (w->lock_fd < 0) {
        snprintf(err, errsz, "cannot open %s: %s", lock, strerror(errno));
        rc = HQ_EIO;
        goto fail;
    }
    if (flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errsz, "%s is locked: another hookmq-archive writes to %s", lock, dir);
        rc = HQ_EIO;
        goto fail;
    }
    *out = w;
    return HQ_OK;
fail:
    if (w->lock_fd >= 0)
        close(w->lock_fd);
    free(w);
    return rc;
}

static void seg_close(struct hq_awriter *w, char *closed, size_t closedsz)
{
    if (w->fd < 0)
        return;
    (void)fdatasync(w->fd); /* every batch was synced already */
    close(w->fd);
    w->fd = -1;
    if (closed)
        snprintf(closed, closedsz, "%s", w->base);
    w->base[0] = '\0';
}

static bool disk_full(int e)
{
    return e == ENOSPC || e == EDQUOT;
}

/* Try to take base.jsonl of the writer (w->base) for appending. Returns the fd (open for
 * appending, flock'd exclusively, *st filled) or -1 with *claimed set when the segment is
 * closed for good (its .jsonl.zst exists) or held by a compression (hq_archive_compress holds
 * the flock from before it reads the .jsonl until after it deleted it), or -1 with errno for
 * an I/O error. The checks after the flock close the races with a compression that ran
 * between the open and the flock. */
static int seg_take(struct hq_awriter *w, struct stat *st, bool *claimed)
{
    char zst[PATH_MAX + 16];
    struct stat pst;
    int fd, e;
    bool same;

    *claimed = false;
    snprintf(zst, sizeof(zst), "%s.jsonl.zst", w->base);
    if (hq_path_exists(zst)) {
        *claimed = true;
        return -1;
    }
    fd = open(w->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            *claimed = true;
            return -1;
        }
        errno = e;
        return -1;
    }
    if (fstat(fd, st) != 0) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    same = stat(w->path, &pst) == 0 && pst.st_ino == st->st_ino && pst.st_dev == st->st_dev;
    if (!same || hq_path_exists(zst)) {
        /* compressed and deleted meanwhile; a file this open just created beside the
         * .jsonl.zst is empty and goes again */
        if (same && st->st_size == 0)
            (void)unlink(w->path);
        close(fd);
        *claimed = true;
        return -1;
    }
    return fd;
}

/* Open (create) the segment of hour for appending: seq 0, or the first later seq of that hour
 * that compression has not claimed (the clock stepped back into an hour already closed). The
 * writer holds a flock on its open segment, so a compression never takes it from under it.
 * HQ_EIO with errno set on failure. */
static int seg_open(struct hq_awriter *w, int64_t hour)
{
    struct stat st;
    unsigned seq;
    int rc, fd = -1;
    bool claimed = false;

    for (seq = 0; seq < 1000; seq++) {
        rc = hq_archive_segment_base(w->dir, hour, seq, w->base, sizeof(w->base));
        if (rc != HQ_OK)
            return rc;
        snprintf(w->path, sizeof(w->path), "%s.jsonl", w->base);
        if (seq == 0) {
            char d[PATH_MAX];
            const char *slash = strrchr(w->base, '/');

            snprintf(d, sizeof(d), "%.*s", (int)(slash - w->base), w->base);
            if ((rc = hq_mkdirs(d)) != HQ_OK)
                return rc;
        }
        fd = seg_take(w, &st, &claimed);
        if (fd >= 0)
            break;
        if (!claimed)
            return HQ_EIO; /* never append to a later seq past an unusable earlier one */
        /* an earlier closed one keeps its name: never append to it */
        hq_debug("archive segment closed or being compressed: trying the next name",
                 "segment=%s", w->path);
    }
    if (fd < 0) {
        errno = EEXIST;
        return HQ_EIO;
    }
    if (st.st_size == 0) {
        /* a new file: its directory entry must survive a crash too */
        if (hq_fsync_dir(w->path, false) != HQ_OK) {
            close(fd);
            return HQ_EIO;
        }
    } else {
        char last = '\n';
        int rfd = open(w->path, O_RDONLY | O_CLOEXEC);

        if (rfd >= 0) {
            if (pread(rfd, &last, 1, st.st_size - 1) != 1)
                last = '\n';
            close(rfd);
        }
        if (last != '\n') {
            /* a torn line left by a crash: end it so the next record stays whole */
            hq_warn("terminating a torn last line in the archive segment (it is skipped when read)",
                    "segment=%s", w->path);
            if (write(fd, "\n", 1) != 1 || fdatasync(fd) != 0) {
                close(fd);
                return HQ_EIO;
            }
            st.st_size++;
        }
    }
    w->fd = fd;
    w->hour = hour;
    w->size = st.st_size;
    hq_debug("archive segment open", "segment=%s size=%lld", w->path, (long long)w->size);
    return HQ_OK;
}

bool hq_awriter_tick(struct hq_awriter *w, int64_t now_ms, char *closed, size_t closedsz)
{
    if (closed && closedsz)
        closed[0] = '\0';
    if (!w || w->fd < 0 || hq_hour_start(now_ms) == w->hour)
        return false;
    seg_close(w, closed, closedsz);
    return true;
}

const char *hq_awriter_current(const struct hq_awriter *w)
{
    return w && w->fd >= 0 ? w->base : NULL;
}

int hq_awriter_append(struct hq_awriter *w, int64_t now_ms, const void *data, size_t n,
                      char *closed, size_t closedsz, double *fsync_s)
{
    int64_t hour = hq_hour_start(now_ms);
    int rc;

    if (closed && closedsz)
        closed[0] = '\0';
    if (fsync_s)
        *fsync_s = 0;
    if (!w || (!data && n))
        return HQ_EINVAL;
    if (w->fd >= 0 && w->hour != hour)
        seg_close(w, closed, closedsz);
    if (w->fd < 0 && (rc = seg_open(w, hour)) != HQ_OK) {
        int e = errno;

        hq_error("cannot open the archive segment", "segment=%s.jsonl error=\"%s\"", w->base,
                 strerror(e));
        return rc == HQ_EIO && disk_full(e) ? HQ_EFULL : rc;
    }
    errno = 0; /* a write that writes nothing leaves it: not a full disk */
    if (hq_write_all(w->fd, data, n) != HQ_OK) {
        int e = errno;

        hq_error("archive write failed", "segment=%s error=\"%s\"", w->path, strerror(e));
        /* take the partial batch back out: it is not acked and will be redelivered */
        if (ftruncate(w->fd, w->size) != 0) {
            close(w->fd);
            w->fd = -1;
        }
        return disk_full(e) ? HQ_EFULL : HQ_EIO;
    }
    {
        struct timespec a, b;

        clock_gettime(CLOCK_MONOTONIC, &a);
        if (fdatasync(w->fd) != 0) {
            /* after a failed fsync the page cache state is unknown: never retry, never ack */
            hq_error("archive fsync failed", "segment=%s error=\"%s\"", w->path, strerror(errno));
            close(w->fd);
            w->fd = -1;
            return HQ_EIO;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (fsync_s)
            *fsync_s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    }
    w->size += (off_t)n;
    return HQ_OK;
}

void hq_awriter_close(struct hq_awriter *w)
{
    if (!w)
        return;
    seg_close(w, NULL, 0);
    if (w->lock_fd >= 0)
        close(w->lock_fd); /* releases the flock */
    free(w);
}
