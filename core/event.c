/* event: the event envelope of hookmq (what the gateway publishes and consumers receive):
 * struct hq_msg and its headers, routing keys, the provider headers kept per scheme, and the
 * message built for an accepted request. Its spool encoding is event_codec.c, type and id
 * extraction event_extract.c, UUIDv7 uuid7.c.
 *
 * Everything here works on untrusted request data: every length is checked and every string
 * that reaches a message is capped. All functions are thread-safe. */
#include <stdlib.h>
#include <string.h>

#include "hq__event.h"
#include "hq_event.h"
#include "hq_scheme.h"
#include "hq_utf8.h"

#define EV_HTTP_VAL_MAX 8192u /* a kept http-* header value (truncated) */
#define EV_RK_TYPE_MAX 200u   /* type part of the routing key */

/* ------------------------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------------------------- */

static int ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static bool ascii_ieq(const char *a, const char *b)
{
    while (*a && *b) {
        if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b)) return false;
        a++, b++;
    }
    return *a == *b;
}

bool hq__event_valid_value(const char *s, size_t n, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    if (n == 0 || n > max) return false;
    while (i < n) {
        size_t k;
        if (p[i] < 0x20 || p[i] == 0x7f) return false;
        k = hq_utf8_seq(p + i, n - i);
        if (k == 0) return false;
        i += k;
    }
    return true;
}

/* The scheme's name, as in the configuration (the scheme table, core/scheme.c). */
static const char *scheme_str(enum hq_scheme s)
{
    const char *n = hq_scheme_name(s);

    return n ? n : "unknown";
}

/* ------------------------------------------------------------------------------------------
 * hq_msg
 * ---------------------------------------------------------------------------------------- */

bool hq__event_valid_key(const char *key)
{
    size_t n;

    if (!key) return false;
    n = strlen(key);
    return n >= 1 && n <= HQ__EV_KEY_MAX;
}

static struct hq_hdr *msg_find(struct hq_msg *m, const char *key)
{
    size_t i;

    for (i = 0; i < m->n_headers; i++) {
        if (m->headers[i].key && strcmp(m->headers[i].key, key) == 0) return &m->headers[i];
    }
    return NULL;
}

size_t hq__event_hdr_cap(size_t n)
{
    size_t c = 8;

    while (c < n)
        c *= 2;
    return c;
}

/* Append a zeroed header slot holding a copy of key; NULL on ENOMEM. */
static struct hq_hdr *msg_push(struct hq_msg *m, const char *key, size_t keylen)
{
    struct hq_hdr *h;
    char *k = strndup(key, keylen);

    if (!k) return NULL;
    if (!m->headers || m->n_headers == hq__event_hdr_cap(m->n_headers)) {
        h = realloc(m->headers, hq__event_hdr_cap(m->n_headers + 1) * sizeof(*h));
        if (!h) {
            free(k);
            return NULL;
        }
        m->headers = h;
    }
    h = m->headers;
    h = &m->headers[m->n_headers++];
    memset(h, 0, sizeof(*h));
    h->key = k;
    return h;
}

/* Set string header key to val[0..n) (n <= HQ__EV_HDR_VAL_MAX, no NUL inside), replacing an
 * existing header of the same key. */
static int msg_set_strn(struct hq_msg *m, const char *key, const char *val, size_t n)
{
    struct hq_hdr *h;
    char *v;

    if (!m || !hq__event_valid_key(key) || !val) return HQ_EINVAL;
    if (n > HQ__EV_HDR_VAL_MAX) return HQ_ETOOBIG;
    h = msg_find(m, key);
    if (!h && m->n_headers >= HQ__EV_MAX_HEADERS) return HQ_ETOOBIG;
    v = strndup(val, n);
    if (!v) return HQ_ENOMEM;
    if (!h) {
        h = msg_push(m, key, strlen(key));
        if (!h) {
            free(v);
            return HQ_ENOMEM;
        }
    }
    free(h->str);
    h->type = HQ_HDR_STR;
    h->str = v;
    h->num = 0;
    return HQ_OK;
}

/* Adds (or replaces) string header key. Both copied. HQ_EINVAL for a key outside 1..128
 * bytes, HQ_ETOOBIG for a value over 1 MiB or a 1025th header. */
int hq_msg_add_str(struct hq_msg *m, const char *key, const char *val)
{
    if (!val) return HQ_EINVAL;
    return msg_set_strn(m, key, val, strlen(val));
}

int hq_msg_add_strn(struct hq_msg *m, const char *key, const char *val, size_t n)
{
    const char *nul;

    if (!val && n) return HQ_EINVAL;
    if (n && (nul = memchr(val, '\0', n)) != NULL) n = (size_t)(nul - val);
    return msg_set_strn(m, key, n ? val : "", n);
}

/* Adds (or replaces) long header key. */
int hq_msg_add_long(struct hq_msg *m, const char *key, int64_t v)
{
    struct hq_hdr *h;

    if (!m || !hq__event_valid_key(key)) return HQ_EINVAL;
    h = msg_find(m, key);
    if (!h) {
        if (m->n_headers >= HQ__EV_MAX_HEADERS) return HQ_ETOOBIG;
        h = msg_push(m, key, strlen(key));
        if (!h) return HQ_ENOMEM;
    }
    free(h->str);
    h->str = NULL;
    h->type = HQ_HDR_LONG;
    h->num = v;
    return HQ_OK;
}

int hq_msg_add_table(struct hq_msg *m, const char *key, const char *text)
{
    int rc;

    if (!text) return HQ_EINVAL;
    rc = msg_set_strn(m, key, text, strlen(text));
    if (rc == HQ_OK) msg_find(m, key)->type = HQ_HDR_TABLE;
    return rc;
}

void hq_msg_remove(struct hq_msg *m, const char *key)
{
    size_t i;

    if (!m || !key) return;
    for (i = 0; i < m->n_headers; i++) {
        if (m->headers[i].key && strcmp(m->headers[i].key, key) == 0) {
            free(m->headers[i].key);
            free(m->headers[i].str);
            memmove(&m->headers[i], &m->headers[i + 1],
                    (m->n_headers - i - 1) * sizeof(m->headers[0]));
            m->n_headers--;
            return;
        }
    }
}

/* The header called key (exact, case-sensitive like AMQP tables), or NULL. Borrowed from m. */
const struct hq_hdr *hq_msg_header(const struct hq_msg *m, const char *key)
{
    size_t i;

    if (!m || !key) return NULL;
    for (i = 0; i < m->n_headers; i++) {
        if (m->headers[i].key && strcmp(m->headers[i].key, key) == 0) return &m->headers[i];
    }
    return NULL;
}

const char *hq_msg_str(const struct hq_msg *m, const char *key)
{
    const struct hq_hdr *h = hq_msg_header(m, key);

    return h && h->type == HQ_HDR_STR && h->str ? h->str : NULL;
}

void hq_msg_free(struct hq_msg *m)
{
    size_t i;

    if (!m) return;
    for (i = 0; i < m->n_headers; i++) {
        free(m->headers[i].key);
        free(m->headers[i].str);
    }
    free(m->headers);
    free(m->routing_key);
    free(m->message_id);
    free(m->content_type);
    free(m->body);
    memset(m, 0, sizeof(*m));
}

static int dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (!s) return HQ_OK;
    *out = strdup(s);
    return *out ? HQ_OK : HQ_ENOMEM;
}

/* Deep copy of src into dst (dst's previous contents are not freed). On failure dst is
 * zeroed. */
int hq_msg_copy(const struct hq_msg *src, struct hq_msg *dst)
{
    size_t i;
    int rc = HQ_ENOMEM;

    if (!dst) return HQ_EINVAL;
    memset(dst, 0, sizeof(*dst));
    if (!src) return HQ_EINVAL;
    if (dup_opt(src->routing_key, &dst->routing_key) != HQ_OK ||
        dup_opt(src->message_id, &dst->message_id) != HQ_OK ||
        dup_opt(src->content_type, &dst->content_type) != HQ_OK)
        goto out;
    dst->timestamp_s = src->timestamp_s;
    if (src->n_headers) {
        dst->headers = calloc(hq__event_hdr_cap(src->n_headers), sizeof(*dst->headers));
        if (!dst->headers) goto out;
        for (i = 0; i < src->n_headers; i++) {
            const struct hq_hdr *s = &src->headers[i];
            struct hq_hdr *d = &dst->headers[i];
            dst->n_headers = i + 1;
            d->type = s->type;
            d->num = s->num;
            if (dup_opt(s->key, &d->key) != HQ_OK || dup_opt(s->str, &d->str) != HQ_OK) goto out;
        }
    }
    if (src->body_len) {
        if (!src->body) {
            rc = HQ_EINVAL;
            goto out;
        }
        dst->body = malloc(src->body_len);
        if (!dst->body) goto out;
        memcpy(dst->body, src->body, src->body_len);
        dst->body_len = src->body_len;
    }
    rc = HQ_OK;
out:
    if (rc != HQ_OK) hq_msg_free(dst);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Routing keys
 * ---------------------------------------------------------------------------------------- */

/* "<source>.<normalized type>". The type is cut to 200 bytes, and further so that the whole
 * key fits an AMQP short string (255 bytes): with a 64-byte source name the type keeps 190.
 * An empty type becomes "_" (extract never yields one; this is only a safety net). The
 * source is copied as is (config names are [a-z0-9_-]). Caller frees. NULL on bad input
 * (NULL, source longer than 253 bytes) or ENOMEM. */
char *hq_routing_key(const char *source, const char *type)
{
    size_t slen, tlen, cap, i;
    char *rk;

    if (!source || !type) return NULL;
    slen = strlen(source);
    if (slen > HQ__EV_SHORTSTR_MAX - 2) return NULL;
    cap = HQ__EV_SHORTSTR_MAX - 1 - slen;
    if (cap > EV_RK_TYPE_MAX) cap = EV_RK_TYPE_MAX;
    tlen = strnlen(type, cap);
    rk = malloc(slen + 1 + (tlen ? tlen : 1) + 1);
    if (!rk) return NULL;
    memcpy(rk, source, slen);
    rk[slen] = '.';
    if (tlen == 0) {
        rk[slen + 1] = '_';
        rk[slen + 2] = '\0';
        return rk;
    }
    for (i = 0; i < tlen; i++) {
        int c = ascii_lower((unsigned char)type[i]);
        if (c == '/')
            c = '.';
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                   c == '-'))
            c = '_'; /* includes ' ' and every byte >= 0x80 */
        rk[slen + 1 + i] = (char)c;
    }
    rk[slen + 1 + tlen] = '\0';
    return rk;
}

/* ------------------------------------------------------------------------------------------
 * Kept provider headers
 * ---------------------------------------------------------------------------------------- */

/* Never copied, whatever the scheme or configuration says. */
static const char *const never_keep[] = {"Authorization", "Proxy-Authorization", "Cookie",
                                         "Set-Cookie",    "X-Gitlab-Token",      NULL};

static bool in_list(const char *const *list, const char *name)
{
    for (; *list; list++) {
        if (ascii_ieq(*list, name)) return true;
    }
    return false;
}

static bool selector_header_is(const char *sel, const char *name)
{
    return sel && strncmp(sel, "header:", 7) == 0 && sel[7] && ascii_ieq(sel + 7, name);
}

bool hq_event_keep_header(const struct hq_source_cfg *src, const char *name)
{
    const struct hq_scheme_ops *ops;

    if (!src || !name || !*name || !(ops = hq_scheme_ops(src->scheme)))
        return false;
    if (in_list(never_keep, name)) return false;
    /* the token scheme's header carries the shared secret itself */
    if (src->scheme == HQ_SCHEME_TOKEN && src->header && ascii_ieq(src->header, name)) return false;
    if (ops->keep_headers && in_list(ops->keep_headers, name)) return true;
    if (src->scheme == HQ_SCHEME_HMAC && src->header && ascii_ieq(src->header, name)) return true;
    return selector_header_is(src->event_type, name) || selector_header_is(src->event_id, name);
}

/* ------------------------------------------------------------------------------------------
 * Building the message
 * ---------------------------------------------------------------------------------------- */

int hq_event_build(const struct hq_source_cfg *src, const struct hq_request_view *req,
                   const struct hq_event_meta *meta, int64_t received_ms, struct hq_msg *out)
{
    const char *ct;
    size_t i;
    int rc = HQ_EINVAL;
    char key[HQ__EV_KEY_MAX + 1];

    if (!out) return HQ_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!src || !req || !meta || !meta->type || !meta->id || (req->body_len && !req->body))
        return HQ_EINVAL;
    if (strlen(meta->id) > HQ__EV_SHORTSTR_MAX) goto out;
    rc = HQ_ETOOBIG;
    if (req->body_len > HQ__EV_BODY_MAX) goto out;
    rc = HQ_ENOMEM;
    if (req->body_len) {
        out->body = malloc(req->body_len);
        if (!out->body) goto out;
        memcpy(out->body, req->body, req->body_len);
        out->body_len = req->body_len;
    }
    /* A content type that cannot be an AMQP short string (or has control characters) is
     * dropped rather than cut. */
    ct = hq_req_content_type(req);
    if (ct && strlen(ct) <= HQ__EV_SHORTSTR_MAX && hq__event_valid_value(ct, strlen(ct), HQ__EV_SHORTSTR_MAX)) {
        out->content_type = strdup(ct);
        if (!out->content_type) goto out;
    }
    out->message_id = strdup(meta->id);
    if (!out->message_id) goto out;
    out->timestamp_s = received_ms / 1000;
    if (received_ms % 1000 < 0) out->timestamp_s--; /* floor, for the odd negative clock */
    out->routing_key = hq_routing_key(src->name, meta->type);
    if (!out->routing_key) goto out; /* ENOMEM, or a source name no config accepts */
    if ((rc = hq_msg_add_str(out, "hookmq-source", src->name)) != HQ_OK ||
        (rc = hq_msg_add_str(out, "hookmq-event-type", meta->type)) != HQ_OK ||
        (rc = hq_msg_add_long(out, "hookmq-received-at", received_ms)) != HQ_OK ||
        (rc = hq_msg_add_str(out, "hookmq-scheme", scheme_str(src->scheme))) != HQ_OK)
        goto out;
    for (i = 0; req->headers && i < req->n_headers; i++) {
        const struct hq_header *h = &req->headers[i];
        size_t nlen, j, vlen;

        if (!h->name || !h->value || !hq_event_keep_header(src, h->name)) continue;
        nlen = strlen(h->name);
        if (nlen + 5 > HQ__EV_KEY_MAX) continue;
        memcpy(key, "http-", 5);
        for (j = 0; j < nlen; j++)
            key[5 + j] = (char)ascii_lower((unsigned char)h->name[j]);
        key[5 + nlen] = '\0';
        if (hq_msg_header(out, key))
            continue; /* a repeated header: the first one counts, as in extraction */
        vlen = strnlen(h->value, EV_HTTP_VAL_MAX);
        if ((rc = msg_set_strn(out, key, h->value, vlen)) != HQ_OK) goto out;
    }
    rc = HQ_OK;
out:
    if (rc != HQ_OK) hq_msg_free(out);
    return rc;
}
