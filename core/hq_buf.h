/* hq_buf: a growable byte buffer with a mandatory hard cap; growing an array; the lines of a
 * byte range. */
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

/* Room for one more element in the array v of *cap elements of elem bytes, n of them used:
 * v itself while n < *cap, else v reallocated to twice *cap elements (first when *cap is 0)
 * and *cap updated. NULL on ENOMEM or overflow: v is then unchanged and still the caller's. */
void *hq_array_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first);

/* Call fn(arg, line, len) for every '\n'-terminated line of p[0..n) (len without the '\n');
 * the unterminated rest (if any) is returned in *rest and *rest_len (each may be NULL) and not
 * passed to fn. fn returns non-zero to stop: hq_lines then returns that value (and leaves
 * *rest alone), else 0. */
typedef int (*hq_line_fn)(void *arg, const char *line, size_t len);
int hq_lines(const char *p, size_t n, hq_line_fn fn, void *arg, const char **rest,
             size_t *rest_len);

#endif
