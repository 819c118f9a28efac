/* utf8: strict UTF-8 validation and cutting (hq_utf8.h). The validators that event.c,
 * archive.c and dlx/dlq.c each had are this one now. */
#include <stdint.h>
#include <string.h>

#include "hq_utf8.h"

size_t hq_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    size_t need, k;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c == 0xE0)
        need = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        need = 2;
    else if (c == 0xED)
        need = 2, hi = 0x9F; /* no surrogates */
    else if (c == 0xF0)
        need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
        need = 3;
    else if (c == 0xF4)
        need = 3, hi = 0x8F; /* <= U+10FFFF */
    else
        return 0; /* 0x80..0xC1 (continuation, overlong lead), 0xF5..0xFF */
    if (n - 1 < need || p[1] < lo || p[1] > hi)
        return 0;
    for (k = 2; k <= need; k++)
        if ((p[k] & 0xC0) != 0x80)
            return 0;
    return need + 1;
}

bool hq_utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0, len;

    if (!p)
        return n == 0;
    while (i < n) {
        if (p[i] < 0x80) {
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ULL)
                    break;
                i += 8;
            }
            while (i < n && p[i] < 0x80)
                i++;
            continue;
        }
        len = hq_utf8_seq(p + i, n - i);
        if (!len)
            return false;
        i += len;
    }
    return true;
}

size_t hq_utf8_cut(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}
