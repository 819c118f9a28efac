/* event_codec: the binary encoding of an event (struct hq_msg, hq_event.h) that the gateway's
 * spool journal holds. Decoding reads untrusted bytes: every length is checked against the
 * input and the caps of hq__event.h, and nothing is read past n. Thread-safe. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hq__event.h"
#include "hq_codec.h"
#include "hq_event.h"
#include "hq_hash.h"

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
    if (n > HQ__EV_SHORTSTR_MAX) return HQ_EINVAL;
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
    if (m->n_headers > HQ__EV_MAX_HEADERS || m->body_len > HQ__EV_BODY_MAX || (m->body_len && !m->body) ||
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
        if (!hq__event_valid_key(h->key)) goto out;
        kl = (unsigned char)strlen(h->key);
        if ((rc = hq_buf_append(out, &kl, 1)) != HQ_OK ||
            (rc = hq_buf_append(out, h->key, kl)) != HQ_OK)
            goto out;
        if (h->type == HQ_HDR_STR) {
            unsigned char t = 0;
            rc = HQ_EINVAL;
            if (!h->str || (n = strlen(h->str)) > HQ__EV_HDR_VAL_MAX) goto out;
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
    *out = strndup((const char *)q, len);
    return *out ? HQ_OK : HQ_ENOMEM;
}

static int dec_optstr(struct dec *d, char **out)
{
    uint32_t len;

    *out = NULL;
    if (!dec_u32(d, &len)) return HQ_EINVAL;
    if (len == ENC_NULL_STR) return HQ_OK;
    if (len > HQ__EV_SHORTSTR_MAX) return HQ_EINVAL;
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
    if (!dec_u32(&d, &cnt) || cnt > HQ__EV_MAX_HEADERS) goto out;
    /* Each header takes at least 1 + 1 + 1 + 4 bytes: refuse counts the input cannot hold
     * before allocating. */
    if ((size_t)cnt * 7 > d.n - d.off) goto out;
    if (cnt) {
        rc = HQ_ENOMEM;
        out->headers = calloc(hq__event_hdr_cap(cnt), sizeof(*out->headers));
        if (!out->headers) goto out;
    }
    for (i = 0; i < cnt; i++) {
        struct hq_hdr *h = &out->headers[i];
        rc = HQ_EINVAL;
        if (!dec_take(&d, 1, &q) || q[0] == 0 || q[0] > HQ__EV_KEY_MAX) goto out;
        out->n_headers = i + 1;
        if ((rc = dec_bytes_str(&d, q[0], &h->key)) != HQ_OK) goto out;
        rc = HQ_EINVAL;
        if (!dec_take(&d, 1, &q)) goto out;
        if (q[0] == 0) {
            h->type = HQ_HDR_STR;
            if (!dec_u32(&d, &len) || len > HQ__EV_HDR_VAL_MAX) goto out;
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
    if (!dec_u32(&d, &len) || len > HQ__EV_BODY_MAX || len != d.n - d.off) goto out;
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
