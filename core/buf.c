/* buf: capped growable byte buffers, growing arrays, splitting lines (hq_buf.h). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_buf.h"

static int buf_reserve(struct hq_buf *b, size_t extra)
{
    size_t need, nalloc;
    unsigned char *p;

    if (extra > b->cap || b->len > b->cap - extra)
        return HQ_ETOOBIG;
    need = b->len + extra + 1;
    if (need <= b->alloc)
        return HQ_OK;
    nalloc = b->alloc ? b->alloc : 256;
    while (nalloc < need)
        nalloc *= 2;
    if (nalloc > b->cap + 1)
        nalloc = b->cap + 1;
    p = realloc(b->data, nalloc);
    if (!p)
        return HQ_ENOMEM;
    b->data = p;
    b->alloc = nalloc;
    return HQ_OK;
}

int hq_buf_append(struct hq_buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);

    if (rc != HQ_OK)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return HQ_OK;
}

int hq_buf_appendf(struct hq_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return HQ_EINVAL;
    rc = buf_reserve(b, (size_t)n);
    if (rc != HQ_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return HQ_OK;
}

void hq_buf_reset(struct hq_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void hq_buf_free(struct hq_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}

int hq_lines(const char *p, size_t n, hq_line_fn fn, void *arg, const char **rest,
             size_t *rest_len)
{
    const char *end = p + n, *nl;
    int rc;

    while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        rc = fn(arg, p, (size_t)(nl - p));
        p = nl + 1;
        if (rc)
            return rc;
    }
    if (rest)
        *rest = p;
    if (rest_len)
        *rest_len = (size_t)(end - p);
    return 0;
}

void *hq_array_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first)
{
    size_t nc;

    if (n < *cap)
        return v;
    nc = *cap ? *cap * 2 : first;
    if (nc <= *cap || elem == 0 || nc > SIZE_MAX / elem)
        return NULL;
    v = realloc(v, nc * elem);
    if (v)
        *cap = nc;
    return v;
}

size_t hq_ring_take_if(void *ring, size_t elem, size_t cap, size_t *head, size_t *len, void *out,
                       size_t max, size_t scan,
                       enum hq_ring_pick (*pick)(const void *x, void *arg), void *arg)
{
    unsigned char *r = ring, *o = out;
    size_t i, n = 0, kept = 0, limit = *len < scan ? *len : scan;

#define AT(k) (r + ((*head + (k)) % cap) * elem)
    /* oldest first: taken ones go to out, kept ones close up towards the head */
    for (i = 0; i < limit && n < max; i++) {
        enum hq_ring_pick d = pick(AT(i), arg);

        if (d == HQ_RING_STOP)
            break;
        if (d == HQ_RING_TAKE) {
            memcpy(o + n++ * elem, AT(i), elem);
        } else {
            if (kept != i)
                memcpy(AT(kept), AT(i), elem);
            kept++;
        }
    }
    /* the kept ones now sit in [0, kept), the gap in [kept, i): move them up against the
     * elements not looked at, last first, so that the gap ends up at the head */
    if (n) {
        while (kept--)
            memcpy(AT(kept + n), AT(kept), elem);
        for (i = 0; i < n; i++)
            memset(AT(i), 0, elem);
        *head = (*head + n) % cap;
        *len -= n;
    }
#undef AT
    return n;
}
