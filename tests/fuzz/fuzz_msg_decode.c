/* fuzz_msg_decode: hq_msg_decode on hostile bytes. Whatever decodes must re-encode to the very
 * same bytes (the encoding is canonical) and decode again to an equal message. Each input is
 * tried twice: as is, and with its length field and CRC-32 patched to match, so that mutations
 * reach the field checks behind the checksum. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    size_t i;
    int k;

    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void one(const unsigned char *p, size_t n)
{
    struct hq_msg m, d;
    struct hq_buf b = HQ_BUF_INIT(128u << 20);
    size_t i;
    int rc = hq_msg_decode(p, n, &m);

    if (rc != HQ_OK) {
        struct hq_msg z;
        memset(&z, 0, sizeof(z));
        check(rc == HQ_EINVAL || rc == HQ_ENOMEM, "status");
        check(memcmp(&m, &z, sizeof(z)) == 0, "zeroed on failure");
        return;
    }
    check(hq_msg_encode(&m, &b) == HQ_OK, "re-encode");
    check(b.len == n && memcmp(b.data, p, n) == 0, "canonical encoding");
    check(hq_msg_decode(b.data, b.len, &d) == HQ_OK, "decode again");
    check((m.routing_key == NULL) == (d.routing_key == NULL), "routing key");
    check(!m.routing_key || strcmp(m.routing_key, d.routing_key) == 0, "routing key");
    check((m.message_id == NULL) == (d.message_id == NULL), "message id");
    check(!m.message_id || strcmp(m.message_id, d.message_id) == 0, "message id");
    check((m.content_type == NULL) == (d.content_type == NULL), "content type");
    check(!m.content_type || strcmp(m.content_type, d.content_type) == 0, "content type");
    check(m.timestamp_s == d.timestamp_s, "timestamp");
    check(m.n_headers == d.n_headers, "header count");
    for (i = 0; i < m.n_headers; i++) {
        check(strcmp(m.headers[i].key, d.headers[i].key) == 0, "key");
        check(m.headers[i].type == d.headers[i].type, "type");
        if (m.headers[i].type == HQ_HDR_STR)
            check(strcmp(m.headers[i].str, d.headers[i].str) == 0, "value");
        else
            check(m.headers[i].num == d.headers[i].num, "num");
    }
    check(m.body_len == d.body_len, "body length");
    check(m.body_len == 0 || memcmp(m.body, d.body, m.body_len) == 0, "body");
    /* a copy is equal too */
    hq_msg_free(&d);
    check(hq_msg_copy(&m, &d) == HQ_OK, "copy");
    hq_buf_reset(&b);
    check(hq_msg_encode(&d, &b) == HQ_OK && b.len == n && memcmp(b.data, p, n) == 0,
          "copy encoding");
    hq_msg_free(&d);
    hq_msg_free(&m);
    hq_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *fixed;

    one(data, size);
    if (size < 13 || size > (64u << 20)) return 0;
    fixed = malloc(size);
    if (!fixed) return 0;
    memcpy(fixed, data, size);
    put32(fixed + 5, (uint32_t)size);
    put32(fixed + size - 4, crc32_ieee(fixed, size - 4));
    one(fixed, size);
    free(fixed);
    return 0;
}
