/* hq_utf8: the one UTF-8 validator of hookmq (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), and cutting a string without splitting a sequence. Pure
 * functions: thread-safe, no allocation, inputs borrowed for the call. */
#ifndef HQ_UTF8_H
#define HQ_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1..4) of the well-formed UTF-8 sequence at p, with n > 0 bytes available; 0 when
 * it is not well-formed or is cut short by n. */
size_t hq_utf8_seq(const unsigned char *p, size_t n);

/* Is p[0..n) well-formed UTF-8? NUL is valid (U+0000). p may be NULL only when n is 0. */
bool hq_utf8_valid(const unsigned char *p, size_t n);

/* The length of the NUL-terminated s cut to at most max bytes without splitting a UTF-8
 * sequence (the cut moves back over continuation bytes). */
size_t hq_utf8_cut(const char *s, size_t max);

#endif
