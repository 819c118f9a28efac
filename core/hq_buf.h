/* hq_buf: a growable byte buffer with a mandatory hard cap; growing an array; taking selected
 * elements out of a ring; the lines of a byte range. */
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

/* What hq_ring_take_if does with one element it looks at. */
enum hq_ring_pick {
    HQ_RING_TAKE, /* move it to out */
    HQ_RING_SKIP, /* leave it in the ring, in its place in the order */
    HQ_RING_STOP  /* leave it, and look no further */
};

/* Take elements out of the middle of a ring buffer: ring holds cap elements of elem bytes, *len
 * of them in use from index *head on (wrapping). Looks at the oldest min(*len, scan) of them in
 * order and asks pick(x, arg) about each: those it takes are copied to out, in order, until
 * max are taken. The ring is compacted so that the elements left keep their order: *head and
 * *len are updated, and the slots given up are zeroed. Returns the number taken (0..max). */
size_t hq_ring_take_if(void *ring, size_t elem, size_t cap, size_t *head, size_t *len, void *out,
                       size_t max, size_t scan,
                       enum hq_ring_pick (*pick)(const void *x, void *arg), void *arg);

/* Call fn(arg, line, len) for every '\n'-terminated line of p[0..n) (len without the '\n');
 * the unterminated rest (if any) is returned in *rest and *rest_len (each may be NULL) and not
 * passed to fn. fn returns non-zero to stop: hq_lines then returns that value (and leaves
 * *rest alone), else 0. */
typedef int (*hq_line_fn)(void *arg, const char *line, size_t len);
int hq_lines(const char *p, size_t n, hq_line_fn fn, void *arg, const char **rest,
             size_t *rest_len);

#endif
