/* hq_codec: hex and base64 (standard alphabet) encoding/decoding, strict; little-endian
 * integers of the binary formats (spool, archive index); SHA-256 (OpenSSL), so that programs
 * need no OpenSSL header. */
#ifndef HQ_CODEC_H
#define HQ_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include "hq_buf.h"
#include "hq_status.h"

/* Lower-case hex of n bytes into out (>= 2n+1 bytes, NUL-terminated). */
void hq_hex_encode(const unsigned char *in, size_t n, char *out);
/* Standard padded base64 into out (>= 4*((n+2)/3)+1 bytes, NUL-terminated); returns length. */
size_t hq_b64_encode(const unsigned char *in, size_t n, char *out);
/* Strict decoders: only the alphabet (hex: either case; base64: standard, padding optional
 * only when allow_unpadded). *outlen receives the byte count. HQ_EINVAL on any bad char,
 * HQ_ETOOBIG if out is too small. */
HQ_MUST_CHECK int hq_hex_decode(const char *in, size_t n, unsigned char *out, size_t outsz,
                                size_t *outlen);
HQ_MUST_CHECK int hq_b64_decode(const char *in, size_t n, int allow_unpadded, unsigned char *out,
                                size_t outsz, size_t *outlen);
/* Standard padded base64 of p[0..n) appended to b, in pieces (no copy of the whole input).
 * HQ_ETOOBIG past b's cap (b then holds part of it), HQ_ENOMEM. */
HQ_MUST_CHECK int hq_b64_append(struct hq_buf *b, const void *p, size_t n);
/* hq_b64_decode of padded in[0..n) into a new buffer: on HQ_OK *out is malloc'd (caller frees),
 * NUL-terminated (the NUL not counted in *outlen). HQ_EINVAL when in is not base64, HQ_ENOMEM;
 * *out is NULL and *outlen 0 then. */
HQ_MUST_CHECK int hq_b64_decode_alloc(const char *in, size_t n, unsigned char **out,
                                      size_t *outlen);

static inline void hq_put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t hq_get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void hq_put_le64(unsigned char *p, uint64_t v)
{
    hq_put_le32(p, (uint32_t)v);
    hq_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t hq_get_le64(const unsigned char *p)
{
    return (uint64_t)hq_get_le32(p) | (uint64_t)hq_get_le32(p + 4) << 32;
}

/* SHA-256 of the concatenation of n pieces (p[i], len[i] bytes) into out[32]. HQ_OK, or
 * HQ_ENOMEM when OpenSSL fails. */
HQ_MUST_CHECK int hq_sha256(const void *const *p, const size_t *len, size_t n,
                            unsigned char out[32]);

#endif
