/* hq_buf: a growable byte buffer with a mandatory hard cap. */
#ifndef HQ_BUF_H
#define HQ_BUF_H

#include <stddef.h>
#include "hq_status.h"

struct hq_buf {
    unsigned char *data; /* owned; NUL-terminated after every append (not counted in len) */
    size_t len;
    size_t alloc;
    size_t cap; /* appends that would exceed cap fail with HQ_ETOOBIG */
};

#define HQ_BUF_INIT(c) {NULL, 0, 0, (c)}

HQ_MUST_CHECK int hq_buf_append(struct hq_buf *b, const void *p, size_t n);
HQ_MUST_CHECK int hq_buf_appendf(struct hq_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void hq_buf_reset(struct hq_buf *b);
/* NULL-safe; leaves b empty and reusable with the same cap. */
void hq_buf_free(struct hq_buf *b);

#endif
