/* event: the event envelope of hookmq (what the gateway publishes and consumers receive),
 * event type / id extraction per scheme and selector, routing keys, UUIDv7, the provider
 * headers kept per scheme, and the binary message encoding used by the gateway's spool.
 *
 * Everything here works on untrusted request data: every length is checked, every string
 * that reaches a message is capped, and the JSON parser runs strictly (hq_json_parse_untrusted).
 * All functions are thread-safe; hq_uuid7 serializes on one mutex. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "hq__scheme.h"
#include "hq_codec.h"
#include "hq_event.h"
#include "hq_hash.h"
#include "hq_json.h"
#include "hq_sig.h"
#include "hq_time.h"
#include "hq_utf8.h"

/* Caps. AMQP short strings (routing key, message_id, content_type) hold at most 255 bytes and
 * field-table keys at most 128. */
#define EV_SHORTSTR_MAX 255u
#define EV_KEY_MAX 128u
#define EV_MAX_HEADERS 1024u
#define EV_HDR_VAL_MAX (1024u * 1024u)    /* one string header of a message */
#define EV_BODY_MAX (64u * 1024u * 1024u) /* message body */
#define EV_HTTP_VAL_MAX 8192u             /* a kept http-* header value (truncated) */
#define EV_TYPE_MAX 255u                  /* extracted event type */
#define EV_ID_MAX 255u                    /* extracted event id (= AMQP message_id) */
#define EV_RK_TYPE_MAX 200u               /* type part of the routing key */
#define EV_JSON_DEPTH 32
#define EV_HANDSHAKE_TOKEN_MAX 1024u /* Slack challenge, Zoom plainToken */

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

static char *memdup_str(const void *p, size_t n)
{
    char *s = malloc(n + 1);

    if (!s) return NULL;
    if (n) memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* An extracted type or id: 1..max bytes of well-formed UTF-8 without control characters
 * (C0, DEL; this also excludes NUL). */
static bool valid_value(const char *s, size_t n, size_t max)
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

static bool valid_key(const char *key)
{
    size_t n;

    if (!key) return false;
    n = strlen(key);
    return n >= 1 && n <= EV_KEY_MAX;
}

static struct hq_hdr *msg_find(struct hq_msg *m, const char *key)
{
    size_t i;

    for (i = 0; i < m->n_headers; i++) {
        if (m->headers[i].key && strcmp(m->headers[i].key, key) == 0) return &m->headers[i];
    }
    return NULL;
}

/* Header arrays hold hdr_cap(n_headers) slots: 8, then powers of two. Every array a message
 * may later grow (msg_push, hq_msg_copy, hq_msg_decode) is allocated with this rule, so a
 * push reallocates only when n_headers reaches a power of two >= 8, not on every header. */
static size_t hdr_cap(size_t n)
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
    char *k = memdup_str(key, keylen);

    if (!k) return NULL;
    if (!m->headers || m->n_headers == hdr_cap(m->n_headers)) {
        h = realloc(m->headers, hdr_cap(m->n_headers + 1) * sizeof(*h));
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

/* Set string header key to val[0..n) (n <= EV_HDR_VAL_MAX, no NUL inside), replacing an
 * existing header of the same key. */
static int msg_set_strn(struct hq_msg *m, const char *key, const char *val, size_t n)
{
    struct hq_hdr *h;
    char *v;

    if (!m || !valid_key(key) || !val) return HQ_EINVAL;
    if (n > EV_HDR_VAL_MAX) return HQ_ETOOBIG;
    h = msg_find(m, key);
    if (!h && m->n_headers >= EV_MAX_HEADERS) return HQ_ETOOBIG;
    v = memdup_str(val, n);
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

    if (!m || !valid_key(key)) return HQ_EINVAL;
    h = msg_find(m, key);
    if (!h) {
        if (m->n_headers >= EV_MAX_HEADERS) return HQ_ETOOBIG;
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
        dst->headers = calloc(hdr_cap(src->n_headers), sizeof(*dst->headers));
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
 * Binary encoding (spool journal), version 1. All integers little-endian.
 *
 *   off  size
 *   0    4     magic "HQEV"
 *   4    1     version = 1
 *   5    4     u32 total record length N (magic through CRC)
 *   9    8     i64 timestamp_s
 *   17         routing_key, message_id, content_type: each an opt-string
 *              (u32 length, 0xFFFFFFFF = NULL, else <= 255 bytes, no NUL)
 *              u32 header count (<= 1024), then per header:
 *                u8 key length (1..128), key bytes (no NUL), u8 type (0 string, 1 long),
 *                string: u32 length (<= 1 MiB) + bytes (no NUL); long: i64
 *              u32 body length (<= 64 MiB), body bytes
 *   N-4  4     CRC-32 (IEEE 802.3, as zlib's crc32()) of bytes [0, N-4)
 *
 * A record is self-delimiting (bytes 5..8 give its length). hq_msg_decode wants exactly one
 * record: n must equal N.
 * ---------------------------------------------------------------------------------------- */

#define ENC_MAGIC "HQEV"
#define ENC_VERSION 1u
#define ENC_NULL_STR 0xFFFFFFFFu
#define ENC_FIXED_HEAD 17u
#define ENC_MIN_LEN (ENC_FIXED_HEAD + 3 * 4 + 4 + 4 + 4)

static int enc_u32(struct hq_buf *b, uint32_t v)
{
    unsigned char t[4];

    hq_put_le32(t, v);
    return hq_buf_append(b, t, 4);
}

static int enc_i64(struct hq_buf *b, int64_t v)
{
    unsigned char t[8];

    hq_put_le64(t, (uint64_t)v);
    return hq_buf_append(b, t, 8);
}

static int enc_optstr(struct hq_buf *b, const char *s)
{
    size_t n;
    int rc;

    if (!s) return enc_u32(b, ENC_NULL_STR);
    n = strlen(s);
    if (n > EV_SHORTSTR_MAX) return HQ_EINVAL;
    rc = enc_u32(b, (uint32_t)n);
    return rc == HQ_OK ? hq_buf_append(b, s, n) : rc;
}

/* Appends one record for m to out (out->len grows; on failure out is restored to its previous
 * length). HQ_EINVAL when m breaks a cap of the format, HQ_ETOOBIG when out's cap is hit. */
int hq_msg_encode(const struct hq_msg *m, struct hq_buf *out)
{
    size_t start, i, total;
    int rc = HQ_EINVAL;
    unsigned char hdr[ENC_FIXED_HEAD];

    if (!m || !out) return HQ_EINVAL;
    start = out->len;
    if (m->n_headers > EV_MAX_HEADERS || m->body_len > EV_BODY_MAX || (m->body_len && !m->body) ||
        (m->n_headers && !m->headers))
        goto out;
    memcpy(hdr, ENC_MAGIC, 4);
    hdr[4] = ENC_VERSION;
    hq_put_le32(hdr + 5, 0); /* patched below */
    hq_put_le64(hdr + 9, (uint64_t)m->timestamp_s);
    if ((rc = hq_buf_append(out, hdr, sizeof(hdr))) != HQ_OK ||
        (rc = enc_optstr(out, m->routing_key)) != HQ_OK ||
        (rc = enc_optstr(out, m->message_id)) != HQ_OK ||
        (rc = enc_optstr(out, m->content_type)) != HQ_OK ||
        (rc = enc_u32(out, (uint32_t)m->n_headers)) != HQ_OK)
        goto out;
    for (i = 0; i < m->n_headers; i++) {
        const struct hq_hdr *h = &m->headers[i];
        unsigned char kl;
        size_t n;

        rc = HQ_EINVAL;
        if (!valid_key(h->key)) goto out;
        kl = (unsigned char)strlen(h->key);
        if ((rc = hq_buf_append(out, &kl, 1)) != HQ_OK ||
            (rc = hq_buf_append(out, h->key, kl)) != HQ_OK)
            goto out;
        if (h->type == HQ_HDR_STR) {
            unsigned char t = 0;
            rc = HQ_EINVAL;
            if (!h->str || (n = strlen(h->str)) > EV_HDR_VAL_MAX) goto out;
            if ((rc = hq_buf_append(out, &t, 1)) != HQ_OK ||
                (rc = enc_u32(out, (uint32_t)n)) != HQ_OK ||
                (rc = hq_buf_append(out, h->str, n)) != HQ_OK)
                goto out;
        } else if (h->type == HQ_HDR_LONG) {
            unsigned char t = 1;
            if ((rc = hq_buf_append(out, &t, 1)) != HQ_OK || (rc = enc_i64(out, h->num)) != HQ_OK)
                goto out;
        } else {
            rc = HQ_EINVAL;
            goto out;
        }
    }
    if ((rc = enc_u32(out, (uint32_t)m->body_len)) != HQ_OK ||
        (rc = hq_buf_append(out, m->body, m->body_len)) != HQ_OK)
        goto out;
    total = out->len - start + 4;
    if (total > UINT32_MAX) {
        rc = HQ_ETOOBIG;
        goto out;
    }
    hq_put_le32(out->data + start + 5, (uint32_t)total);
    rc = enc_u32(out, hq_crc32(0, out->data + start, out->len - start));
out:
    if (rc != HQ_OK && out) {
        out->len = start;
        if (out->data) out->data[start] = '\0';
    }
    return rc;
}

struct dec {
    const unsigned char *p;
    size_t n; /* end of the readable region (before the CRC) */
    size_t off;
};

static bool dec_take(struct dec *d, size_t k, const unsigned char **out)
{
    if (k > d->n - d->off) return false;
    *out = d->p + d->off;
    d->off += k;
    return true;
}

static bool dec_u32(struct dec *d, uint32_t *v)
{
    const unsigned char *q;

    if (!dec_take(d, 4, &q)) return false;
    *v = hq_get_le32(q);
    return true;
}

/* A string of len bytes without NUL, copied. */
static int dec_bytes_str(struct dec *d, size_t len, char **out)
{
    const unsigned char *q;

    if (!dec_take(d, len, &q) || memchr(q, '\0', len)) return HQ_EINVAL;
    *out = memdup_str(q, len);
    return *out ? HQ_OK : HQ_ENOMEM;
}

static int dec_optstr(struct dec *d, char **out)
{
    uint32_t len;

    *out = NULL;
    if (!dec_u32(d, &len)) return HQ_EINVAL;
    if (len == ENC_NULL_STR) return HQ_OK;
    if (len > EV_SHORTSTR_MAX) return HQ_EINVAL;
    return dec_bytes_str(d, len, out);
}

/* Decodes exactly one record p[0..n) into *out (caller frees with hq_msg_free()). Never
 * reads past n. HQ_EINVAL on anything malformed (bad magic, version, length, CRC, cap, NUL
 * inside a string, trailing bytes), HQ_ENOMEM; *out is zeroed on failure. */
int hq_msg_decode(const unsigned char *p, size_t n, struct hq_msg *out)
{
    struct dec d;
    const unsigned char *q;
    uint32_t cnt, len, i;
    int rc = HQ_EINVAL;

    if (!out) return HQ_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!p || n < ENC_MIN_LEN || n > UINT32_MAX) return HQ_EINVAL;
    if (memcmp(p, ENC_MAGIC, 4) != 0 || p[4] != ENC_VERSION || hq_get_le32(p + 5) != n ||
        hq_get_le32(p + n - 4) != hq_crc32(0, p, n - 4))
        return HQ_EINVAL;
    d.p = p;
    d.n = n - 4;
    d.off = ENC_FIXED_HEAD;
    out->timestamp_s = (int64_t)hq_get_le64(p + 9);
    if ((rc = dec_optstr(&d, &out->routing_key)) != HQ_OK ||
        (rc = dec_optstr(&d, &out->message_id)) != HQ_OK ||
        (rc = dec_optstr(&d, &out->content_type)) != HQ_OK)
        goto out;
    rc = HQ_EINVAL;
    if (!dec_u32(&d, &cnt) || cnt > EV_MAX_HEADERS) goto out;
    /* Each header takes at least 1 + 1 + 1 + 4 bytes: refuse counts the input cannot hold
     * before allocating. */
    if ((size_t)cnt * 7 > d.n - d.off) goto out;
    if (cnt) {
        rc = HQ_ENOMEM;
        out->headers = calloc(hdr_cap(cnt), sizeof(*out->headers));
        if (!out->headers) goto out;
    }
    for (i = 0; i < cnt; i++) {
        struct hq_hdr *h = &out->headers[i];
        rc = HQ_EINVAL;
        if (!dec_take(&d, 1, &q) || q[0] == 0 || q[0] > EV_KEY_MAX) goto out;
        out->n_headers = i + 1;
        if ((rc = dec_bytes_str(&d, q[0], &h->key)) != HQ_OK) goto out;
        rc = HQ_EINVAL;
        if (!dec_take(&d, 1, &q)) goto out;
        if (q[0] == 0) {
            h->type = HQ_HDR_STR;
            if (!dec_u32(&d, &len) || len > EV_HDR_VAL_MAX) goto out;
            if ((rc = dec_bytes_str(&d, len, &h->str)) != HQ_OK) goto out;
        } else if (q[0] == 1) {
            h->type = HQ_HDR_LONG;
            if (!dec_take(&d, 8, &q)) goto out;
            h->num = (int64_t)hq_get_le64(q);
        } else {
            goto out;
        }
    }
    rc = HQ_EINVAL;
    if (!dec_u32(&d, &len) || len > EV_BODY_MAX || len != d.n - d.off) goto out;
    if (len) {
        rc = HQ_ENOMEM;
        out->body = malloc(len);
        if (!out->body) goto out;
        memcpy(out->body, d.p + d.off, len);
        out->body_len = len;
    }
    rc = HQ_OK;
out:
    if (rc != HQ_OK) hq_msg_free(out);
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
    if (slen > EV_SHORTSTR_MAX - 2) return NULL;
    cap = EV_SHORTSTR_MAX - 1 - slen;
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
 * UUIDv7 (RFC 9562 section 5.7, monotonic per section 6.2 method 1: a 12-bit counter in
 * rand_a seeded with 11 random bits on each new millisecond; on overflow the timestamp is
 * advanced by one ms, so values never go backwards even if the wall clock does).
 * ---------------------------------------------------------------------------------------- */

static pthread_mutex_t uuid_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t uuid_last_ms;
static unsigned uuid_last_seq;

static void random_fill(unsigned char *p, size_t n)
{
    size_t got = 0;

    if (RAND_bytes(p, (int)n) == 1) return;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r <= 0) break;
        got += (size_t)r;
    }
    /* If both fail the bytes keep whatever they held; uniqueness within the process still
     * holds through the (ms, counter) pair. */
}

void hq_uuid7(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    int64_t now = hq_now_ms();
    uint64_t ms;
    unsigned seq;
    size_t i, o = 0;

    memset(b, 0, sizeof(b));
    random_fill(b, sizeof(b));
    if (now < 0) now = 0;
    pthread_mutex_lock(&uuid_mu);
    if ((uint64_t)now > uuid_last_ms) {
        ms = (uint64_t)now;
        seq = ((unsigned)b[6] << 8 | b[7]) & 0x7FF;
    } else {
        ms = uuid_last_ms;
        seq = uuid_last_seq + 1;
        if (seq > 0xFFF) {
            ms++;
            seq = ((unsigned)b[6] << 8 | b[7]) & 0x7FF;
        }
    }
    uuid_last_ms = ms;
    uuid_last_seq = seq;
    pthread_mutex_unlock(&uuid_mu);

    ms &= 0xFFFFFFFFFFFFull;
    for (i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    b[6] = (unsigned char)(0x70 | (seq >> 8));
    b[7] = (unsigned char)(seq & 0xFF);
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* RFC 6901 evaluation (ptr is "" or starts with '/'); NULL when absent or ptr is invalid.
 * Borrowed from root. */
static struct json_object *json_pointer_eval(struct json_object *root, const char *ptr)
{
    struct json_object *cur = root;
    char *tok = NULL;
    const char *s = ptr;

    if (*s == '\0') return root;
    if (*s != '/') return NULL;
    tok = malloc(strlen(ptr) + 1);
    if (!tok) return NULL;
    while (cur && *s == '/') {
        size_t k = 0;
        s++;
        while (*s && *s != '/') {
            if (*s == '~') {
                if (s[1] == '0')
                    tok[k++] = '~';
                else if (s[1] == '1')
                    tok[k++] = '/';
                else {
                    cur = NULL;
                    goto out;
                }
                s += 2;
            } else {
                tok[k++] = *s++;
            }
        }
        tok[k] = '\0';
        if (json_object_is_type(cur, json_type_object)) {
            struct json_object *next = NULL;
            if (!json_object_object_get_ex(cur, tok, &next)) next = NULL;
            cur = next;
        } else if (json_object_is_type(cur, json_type_array)) {
            size_t idx = 0, j;
            /* "0" or [1-9][0-9]*; "-" (past the end) never exists */
            if (k == 0 || k > 9 || (k > 1 && tok[0] == '0')) {
                cur = NULL;
                goto out;
            }
            for (j = 0; j < k; j++) {
                if (tok[j] < '0' || tok[j] > '9') {
                    cur = NULL;
                    goto out;
                }
                idx = idx * 10 + (size_t)(tok[j] - '0');
            }
            cur = idx < json_object_array_length(cur) ? json_object_array_get_idx(cur, idx) : NULL;
        } else {
            cur = NULL;
        }
    }
out:
    free(tok);
    return cur;
}

/* Text of a JSON value usable as a type/id: strings as they are, numbers in their text form.
 * HQ_OK (*out malloc'd), HQ_ENOTFOUND, HQ_ENOMEM. */
static int json_value_text(struct json_object *v, size_t max, char **out)
{
    const char *s;
    size_t n;

    *out = NULL;
    switch (json_object_get_type(v)) {
    case json_type_string:
        s = json_object_get_string(v);
        n = (size_t)json_object_get_string_len(v);
        break;
    case json_type_int:
    case json_type_double:
        /* doubles keep the text they were parsed from; ints print their 64-bit value */
        s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        if (!s) return HQ_ENOMEM;
        n = strlen(s);
        /* json-c clamps out-of-range integers to these: the real value is unknown */
        if (json_object_is_type(v, json_type_int) &&
            (strcmp(s, "18446744073709551615") == 0 || strcmp(s, "-9223372036854775808") == 0))
            return HQ_ENOTFOUND;
        break;
    default: /* null, boolean, object, array */
        return HQ_ENOTFOUND;
    }
    if (!s || !valid_value(s, n, max)) return HQ_ENOTFOUND;
    *out = memdup_str(s, n);
    return *out ? HQ_OK : HQ_ENOMEM;
}

/* ------------------------------------------------------------------------------------------
 * application/x-www-form-urlencoded
 * ---------------------------------------------------------------------------------------- */

/* Value of the first form field called field in body, decoded, at most cap bytes. HQ_OK with
 * *out (malloc'd, NUL-terminated, *outlen its length, may contain NUL bytes), HQ_ENOTFOUND
 * (absent or longer than cap), HQ_ENOMEM. */
static int form_get(const unsigned char *body, size_t n, const char *field, size_t cap, char **out,
                    size_t *outlen)
{
    size_t flen = strlen(field), i = 0;
    unsigned char name[256];

    *out = NULL;
    *outlen = 0;
    if (flen == 0 || flen >= sizeof(name)) return HQ_ENOTFOUND;
    while (i < n) {
        size_t j = i, eq, nlen = 0;
        while (j < n && body[j] != '&')
            j++;
        eq = i;
        while (eq < j && body[eq] != '=')
            eq++;
        if (hq_form_decode(body + i, eq - i, name, sizeof(name), &nlen) && nlen == flen &&
            memcmp(name, field, flen) == 0) {
            size_t vraw = eq < j ? j - eq - 1 : 0;
            size_t room = vraw < cap ? vraw : cap;
            unsigned char *v = malloc(room + 1);
            size_t vlen = 0;
            if (!v) return HQ_ENOMEM;
            if (!hq_form_decode(body + eq + (eq < j ? 1 : 0), vraw, v, room, &vlen)) {
                free(v);
                return HQ_ENOTFOUND;
            }
            v[vlen] = '\0';
            *out = (char *)v;
            *outlen = vlen;
            return HQ_OK;
        }
        i = j + 1;
    }
    return HQ_ENOTFOUND;
}

/* ------------------------------------------------------------------------------------------
 * Extraction
 * ---------------------------------------------------------------------------------------- */

struct hq__ex_ctx {
    const struct hq_source_cfg *src;
    const struct hq_request_view *req;
    bool form;                /* an application/x-www-form-urlencoded body */
    bool json_done;           /* parse attempted (once per request) */
    int json_rc;              /* its result */
    struct json_object *root; /* owned */
};

/* The body's JSON tree, parsed on first use. HQ_OK, HQ_EINVAL (not JSON), HQ_ENOMEM. */
static int ex_json(struct hq__ex_ctx *c, struct json_object **root)
{
    if (!c->json_done) {
        c->json_done = true;
        if (!c->req->body && c->req->body_len)
            c->json_rc = HQ_EINVAL;
        else
            c->json_rc = hq_json_parse_untrusted(
                c->req->body ? c->req->body : (const unsigned char *)"", c->req->body_len,
                EV_JSON_DEPTH, (void **)&c->root);
    }
    *root = c->root;
    return c->json_rc;
}

/* Evaluate one selector. HQ_OK (*out malloc'd, valid per valid_value), HQ_ENOTFOUND (absent,
 * invalid value, or a selector we do not understand), HQ_EINVAL (json selector on a body that
 * is not JSON), HQ_ENOMEM. */
static int sel_eval(struct hq__ex_ctx *c, const char *sel, size_t max, char **out)
{
    *out = NULL;
    if (strncmp(sel, "json:", 5) == 0) {
        struct json_object *root, *v;
        int rc = ex_json(c, &root);
        if (rc != HQ_OK) return rc;
        v = json_pointer_eval(root, sel + 5);
        return v ? json_value_text(v, max, out) : HQ_ENOTFOUND;
    }
    if (strncmp(sel, "header:", 7) == 0) {
        const char *v = hq_req_header(c->req, sel + 7, NULL);
        size_t n;
        if (!v || sel[7] == '\0') return HQ_ENOTFOUND;
        /* optional whitespace around a field value is not part of it (RFC 9110 5.5) */
        while (*v == ' ' || *v == '\t')
            v++;
        n = strlen(v);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        if (!valid_value(v, n, max)) return HQ_ENOTFOUND;
        *out = memdup_str(v, n);
        return *out ? HQ_OK : HQ_ENOMEM;
    }
    if (strncmp(sel, "const:", 6) == 0) {
        size_t n = strlen(sel + 6);
        if (!valid_value(sel + 6, n, max)) return HQ_ENOTFOUND;
        *out = memdup_str(sel + 6, n);
        return *out ? HQ_OK : HQ_ENOMEM;
    }
    if (strncmp(sel, "form:", 5) == 0) {
        char *v = NULL;
        size_t n = 0;
        int rc;
        if (!c->req->body) return HQ_ENOTFOUND;
        rc = form_get(c->req->body, c->req->body_len, sel + 5, max, &v, &n);
        if (rc != HQ_OK) return rc;
        if (!valid_value(v, n, max)) {
            free(v);
            return HQ_ENOTFOUND;
        }
        *out = v;
        return HQ_OK;
    }
    return HQ_ENOTFOUND;
}

/* Try sels in order (NULL-terminated) until one yields a value. A bad_json result is
 * remembered but a later selector may still succeed. */
static int sel_eval_any(struct hq__ex_ctx *c, const char *const *sels, size_t max, char **out)
{
    int rc = HQ_ENOTFOUND, first_bad = HQ_ENOTFOUND;

    for (; *sels; sels++) {
        rc = sel_eval(c, *sels, max, out);
        if (rc == HQ_OK || rc == HQ_ENOMEM) return rc;
        if (rc == HQ_EINVAL) first_bad = HQ_EINVAL;
    }
    return first_bad == HQ_EINVAL ? HQ_EINVAL : rc;
}

/* Slack interactivity posts a form with one field "payload" holding JSON; its /type
 * ("block_actions", "view_submission", ...) is the event type. Extension to
 * docs/message-format.md, which names only the slash command's "command" field. */
static int slack_payload_type(struct hq__ex_ctx *c, char **out)
{
    char *payload = NULL;
    size_t plen = 0;
    struct json_object *root = NULL, *v;
    int rc;

    *out = NULL;
    if (!c->req->body) return HQ_ENOTFOUND;
    rc = form_get(c->req->body, c->req->body_len, "payload", c->req->body_len, &payload, &plen);
    if (rc != HQ_OK) return rc;
    rc = hq_json_parse_untrusted((const unsigned char *)payload, plen, EV_JSON_DEPTH, (void **)&root);
    if (rc == HQ_OK) {
        v = json_pointer_eval(root, "/type");
        rc = v ? json_value_text(v, EV_TYPE_MAX, out) : HQ_ENOTFOUND;
    }
    json_object_put(root);
    free(payload);
    return rc;
}

static int set_generated_id(struct hq_event_meta *meta)
{
    meta->id = malloc(37);
    if (!meta->id) return HQ_ENOMEM;
    hq_uuid7(meta->id);
    meta->id_generated = true;
    return HQ_OK;
}

/* The string member name of object o, if it is a string of 1..max bytes. Borrowed. */
static const char *json_member_str(struct json_object *o, const char *name, size_t max, size_t *len)
{
    struct json_object *v = NULL;
    const char *s;

    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, name, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    s = json_object_get_string(v);
    *len = (size_t)json_object_get_string_len(v);
    if (!s || *len == 0 || *len > max) return NULL;
    return s;
}

/* A handshake's answer: type and body (taken from b) into meta, a generated id. */
static int handshake_answer(struct hq_buf *b, const char *type, struct hq_event_meta *meta)
{
    int rc = HQ_ENOMEM;

    meta->type = strdup(type);
    if (!meta->type) goto out;
    meta->handshake_body = (char *)b->data;
    b->data = NULL;
    meta->handshake_content_type = strdup("application/json");
    if (!meta->handshake_content_type) goto out;
    meta->handshake = true;
    rc = set_generated_id(meta);
out:
    hq_buf_free(b);
    return rc;
}

/* Slack's url_verification (JSON bodies only): answered with its challenge. hq_scheme_ops. */
int hq__handshake_slack(struct hq__ex_ctx *c, const struct hq_secret *secret,
                        struct hq_event_meta *meta, const char **reason)
{
    struct json_object *root = NULL;
    const char *s, *tok;
    size_t n = 0, tlen = 0;
    struct hq_buf b = HQ_BUF_INIT(4 * EV_HANDSHAKE_TOKEN_MAX);
    int rc;

    if (c->form || ex_json(c, &root) != HQ_OK || !json_object_is_type(root, json_type_object))
        return HQ_ENOTFOUND;
    s = json_member_str(root, "type", EV_TYPE_MAX, &n);
    if (!s || n != 16 || memcmp(s, "url_verification", 16) != 0) return HQ_ENOTFOUND;
    tok = json_member_str(root, "challenge", EV_HANDSHAKE_TOKEN_MAX, &tlen);
    if (!tok || !valid_value(tok, tlen, EV_HANDSHAKE_TOKEN_MAX)) {
        *reason = "bad_handshake";
        return HQ_EINVAL;
    }
    if ((rc = hq_buf_append(&b, "{\"challenge\":\"", 14)) != HQ_OK ||
        (rc = hq_buf_append_json_str(&b, tok, tlen)) != HQ_OK ||
        (rc = hq_buf_append(&b, "\"}", 2)) != HQ_OK)
        goto out;
    return handshake_answer(&b, "url_verification", meta);
out:
    hq_buf_free(&b);
    return rc;
}

/* Zoom's endpoint.url_validation: answered with hex(HMAC-SHA256(secret, plainToken)).
 * hq_scheme_ops. */
int hq__handshake_zoom(struct hq__ex_ctx *c, const struct hq_secret *secret,
                       struct hq_event_meta *meta, const char **reason)
{
    struct json_object *root = NULL, *payload = NULL;
    const char *s, *tok;
    size_t n = 0, tlen = 0;
    struct hq_buf b = HQ_BUF_INIT(4 * EV_HANDSHAKE_TOKEN_MAX);
    char hexmac[65];
    int rc;

    if (ex_json(c, &root) != HQ_OK || !json_object_is_type(root, json_type_object))
        return HQ_ENOTFOUND;
    s = json_member_str(root, "event", EV_TYPE_MAX, &n);
    if (!s || n != 23 || memcmp(s, "endpoint.url_validation", 23) != 0) return HQ_ENOTFOUND;
    tok = NULL;
    if (json_object_object_get_ex(root, "payload", &payload))
        tok = json_member_str(payload, "plainToken", EV_HANDSHAKE_TOKEN_MAX, &tlen);
    if (!tok || !valid_value(tok, tlen, EV_HANDSHAKE_TOKEN_MAX)) {
        *reason = "bad_handshake";
        return HQ_EINVAL;
    }
    if (!secret && c->src->n_secrets > 0) secret = &c->src->secrets[0];
    if (!secret || !secret->data || secret->len > INT_MAX) {
        *reason = "no_secret";
        return HQ_EINVAL;
    }
    hq_sig_hmac_sha256_hex(secret, (const unsigned char *)tok, tlen, hexmac);
    if (!hexmac[0]) { /* OpenSSL failed */
        rc = HQ_ENOMEM;
        goto out;
    }
    if ((rc = hq_buf_append(&b, "{\"plainToken\":\"", 15)) != HQ_OK ||
        (rc = hq_buf_append_json_str(&b, tok, tlen)) != HQ_OK ||
        (rc = hq_buf_appendf(&b, "\",\"encryptedToken\":\"%s\"}", hexmac)) != HQ_OK)
        goto out;
    return handshake_answer(&b, "endpoint.url_validation", meta);
out:
    hq_buf_free(&b);
    return rc;
}

int hq_event_extract(const struct hq_source_cfg *src, const struct hq_request_view *req,
                     const struct hq_secret *verified_secret, struct hq_event_meta *meta,
                     const char **reason)
{
    struct hq__ex_ctx c;
    const char *dummy = NULL;
    const struct hq_scheme_ops *def;
    bool form, id_required;
    int rc;

    if (!reason) reason = &dummy;
    *reason = NULL;
    if (!meta) return HQ_EINVAL;
    memset(meta, 0, sizeof(*meta));
    if (!src || !req || !(def = hq_scheme_ops(src->scheme))) {
        *reason = "invalid_argument";
        return HQ_EINVAL;
    }
    memset(&c, 0, sizeof(c));
    c.src = src;
    c.req = req;
    form = hq_media_type_is(hq_req_content_type(req), "application/x-www-form-urlencoded");
    c.form = form;

    /* 1. provider handshakes (answered by the gateway, never published) */
    if (def->handshake) {
        rc = def->handshake(&c, verified_secret, meta, reason);
        if (rc != HQ_ENOTFOUND) goto out;
    }

    /* 2. type: always required */
    if (src->event_type) {
        rc = sel_eval(&c, src->event_type, EV_TYPE_MAX, &meta->type);
    } else if (src->scheme == HQ_SCHEME_SLACK && form) {
        rc = sel_eval(&c, "form:command", EV_TYPE_MAX, &meta->type);
        if (rc == HQ_ENOTFOUND) rc = slack_payload_type(&c, &meta->type);
        if (rc == HQ_EINVAL) /* a payload field that is not JSON */
            rc = HQ_ENOTFOUND;
    } else {
        rc = sel_eval_any(&c, def->event_type, EV_TYPE_MAX, &meta->type);
    }
    if (rc == HQ_ENOTFOUND) {
        *reason = "missing_type";
        rc = HQ_EINVAL;
    } else if (rc == HQ_EINVAL) {
        *reason = "bad_json";
    }
    if (rc != HQ_OK) goto out;

    /* 3. id: required where the scheme has one, and whenever a selector is configured */
    id_required = src->event_id != NULL || def->id_required;
    if (src->event_id)
        rc = sel_eval(&c, src->event_id, EV_ID_MAX, &meta->id);
    else if (def->event_id[0] && !(src->scheme == HQ_SCHEME_SLACK && form))
        rc = sel_eval_any(&c, def->event_id, EV_ID_MAX, &meta->id);
    else
        rc = HQ_ENOTFOUND;
    if (rc == HQ_ENOMEM) goto out;
    if (rc != HQ_OK && !id_required) {
        rc = set_generated_id(meta); /* also when an optional json id meets a non-JSON body */
    } else if (rc == HQ_ENOTFOUND) {
        *reason = "missing_id";
        rc = HQ_EINVAL;
    } else if (rc == HQ_EINVAL) {
        *reason = "bad_json";
    }
out:
    json_object_put(c.root);
    if (rc != HQ_OK) {
        hq_event_meta_free(meta);
        if (rc == HQ_ENOMEM) *reason = NULL;
    }
    return rc;
}

void hq_event_meta_free(struct hq_event_meta *meta)
{
    if (!meta) return;
    free(meta->type);
    free(meta->id);
    free(meta->handshake_body);
    free(meta->handshake_content_type);
    memset(meta, 0, sizeof(*meta));
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
    char key[EV_KEY_MAX + 1];

    if (!out) return HQ_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!src || !req || !meta || !meta->type || !meta->id || (req->body_len && !req->body))
        return HQ_EINVAL;
    if (strlen(meta->id) > EV_SHORTSTR_MAX) goto out;
    rc = HQ_ETOOBIG;
    if (req->body_len > EV_BODY_MAX) goto out;
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
    if (ct && strlen(ct) <= EV_SHORTSTR_MAX && valid_value(ct, strlen(ct), EV_SHORTSTR_MAX)) {
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
        if (nlen + 5 > EV_KEY_MAX) continue;
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
