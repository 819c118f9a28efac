/* codec: hex and standard base64, encoders and strict decoders (hq_codec.h).
 *
 * The decoders accept only their alphabet: no whitespace, no URL-safe base64, no data after
 * padding, and base64 whose unused trailing bits are zero (RFC 4648 section 3.5), so that every
 * byte string has exactly one accepted encoding. Thread-safe; only the _alloc and _append
 * helpers allocate.
 *
 * Base64 encoding is OpenSSL's (EVP_EncodeBlock). Decoding stays here: EVP_DecodeBlock
 * skips leading and trailing whitespace, requires padding (no unpadded mode), does not
 * check that the unused trailing bits are zero, and writes a zero byte for each '=' (the
 * caller would have to subtract the padding itself); none of that is the strict decoding
 * that signature headers need (tests/unit/test_codec.c). */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "hq_codec.h"

static const char hex_digits[] = "0123456789abcdef";

void hq_hex_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hex_digits[in[i] >> 4];
        out[2 * i + 1] = hex_digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hq_hex_decode(const char *in, size_t n, unsigned char *out, size_t outsz, size_t *outlen)
{
    size_t i;

    if (outlen)
        *outlen = 0;
    if ((!in && n) || n % 2 != 0)
        return HQ_EINVAL;
    for (i = 0; i < n; i++)
        if (hex_val((unsigned char)in[i]) < 0)
            return HQ_EINVAL;
    if (n / 2 > outsz)
        return HQ_ETOOBIG;
    for (i = 0; i < n / 2; i++)
        out[i] = (unsigned char)(hex_val((unsigned char)in[2 * i]) << 4 |
                                 hex_val((unsigned char)in[2 * i + 1]));
    if (outlen)
        *outlen = n / 2;
    return HQ_OK;
}

/* OpenSSL's EVP_EncodeBlock writes the same standard padded, NUL-terminated text; it takes an
 * int length, so longer inputs go in whole quanta of 3 bytes. */
size_t hq_b64_encode(const unsigned char *in, size_t n, char *out)
{
    const size_t chunk = (size_t)3 << 28; /* 768 MiB in, 1 GiB out: well within int */
    size_t o = 0;

    out[0] = '\0';
    while (n > 0) {
        size_t k = n < chunk ? n : chunk;

        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, in, (int)k);
        in += k;
        n -= k;
    }
    return o;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int hq_b64_decode(const char *in, size_t n, int allow_unpadded, unsigned char *out, size_t outsz,
                  size_t *outlen)
{
    size_t data_chars, pad = 0, full, rem, need, i, o = 0;
    uint32_t v;

    if (outlen)
        *outlen = 0;
    if (!in && n)
        return HQ_EINVAL;
    /* Count trailing padding (at most two '='). */
    while (pad < n && pad < 3 && in[n - 1 - pad] == '=')
        pad++;
    if (pad > 2)
        return HQ_EINVAL;
    /* Padded (or padding required): whole quanta only, so any padding completes the last. */
    if (pad > 0 || !allow_unpadded) {
        if (n % 4 != 0)
            return HQ_EINVAL;
    }
    data_chars = n - pad;
    rem = data_chars % 4;
    if (rem == 1)
        return HQ_EINVAL;
    for (i = 0; i < data_chars; i++)
        if (b64_val((unsigned char)in[i]) < 0)
            return HQ_EINVAL;
    full = data_chars / 4;
    need = full * 3 + (rem ? rem - 1 : 0);
    if (need > outsz)
        return HQ_ETOOBIG;
    for (i = 0; i < full; i++) {
        const char *q = in + 4 * i;
        v = (uint32_t)b64_val((unsigned char)q[0]) << 18 |
            (uint32_t)b64_val((unsigned char)q[1]) << 12 |
            (uint32_t)b64_val((unsigned char)q[2]) << 6 | (uint32_t)b64_val((unsigned char)q[3]);
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    if (rem) {
        const char *q = in + 4 * full;
        v = (uint32_t)b64_val((unsigned char)q[0]) << 18 |
            (uint32_t)b64_val((unsigned char)q[1]) << 12;
        if (rem == 3)
            v |= (uint32_t)b64_val((unsigned char)q[2]) << 6;
        /* Canonical form: the bits below the last whole byte must be zero. */
        if ((rem == 2 && (v & 0xffffu) != 0) || (rem == 3 && (v & 0xffu) != 0))
            return HQ_EINVAL;
        out[o++] = (unsigned char)(v >> 16);
        if (rem == 3)
            out[o++] = (unsigned char)(v >> 8);
    }
    if (outlen)
        *outlen = o;
    return HQ_OK;
}

int hq_sha256(const void *const *p, const size_t *len, size_t n, unsigned char out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int dl = 0;
    size_t i;
    int ok;

    if (!c)
        return HQ_ENOMEM;
    ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    for (i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(c, p[i], len[i]);
    ok = ok && EVP_DigestFinal_ex(c, out, &dl) && dl == 32;
    EVP_MD_CTX_free(c);
    return ok ? HQ_OK : HQ_ENOMEM;
}

int hq_b64_append(struct hq_buf *b, const void *p, size_t n)
{
    char out[4 * 1024 + 8];
    const unsigned char *in = p;
    size_t off = 0;
    int rc = HQ_OK;

    while (off < n && rc == HQ_OK) {
        size_t chunk = n - off < 3 * 1024 ? n - off : 3 * 1024;
        size_t len = hq_b64_encode(in + off, chunk, out);

        rc = hq_buf_append(b, out, len);
        off += chunk;
    }
    return rc;
}

int hq_b64_decode_alloc(const char *in, size_t n, unsigned char **out, size_t *outlen)
{
    size_t cap = n / 4 * 3 + 3;
    unsigned char *buf;

    *out = NULL;
    *outlen = 0;
    buf = malloc(cap + 1);
    if (!buf)
        return HQ_ENOMEM;
    if (hq_b64_decode(in, n, 0, buf, cap, outlen) != HQ_OK) {
        free(buf);
        *outlen = 0;
        return HQ_EINVAL;
    }
    buf[*outlen] = '\0';
    *out = buf;
    return HQ_OK;
}
