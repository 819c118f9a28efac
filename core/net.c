/* net: IPv4/IPv6 CIDR parsing and matching (allow_from, trusted_proxies) and the client-address
 * rule for X-Forwarded-For.
 *
 * Addresses are parsed with inet_pton only (no DNS, no zone ids, no shorthand such as "10.1").
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is treated as the IPv4 address it carries, both
 * when matching and when reported, so one allow_from entry covers both spellings. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hq_net.h"

#define ADDR_TEXT_MAX 64 /* longest address text we look at (INET6_ADDRSTRLEN is 46) */

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Parse the n bytes at s (no NUL needed) as a bare IPv4 or IPv6 address into family/addr.
 * IPv4-mapped IPv6 addresses become AF_INET. */
static int parse_addr(const char *s, size_t n, int *family, uint8_t addr[16])
{
    char buf[ADDR_TEXT_MAX];

    if (n == 0 || n >= sizeof(buf))
        return HQ_EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) /* embedded NUL */
        return HQ_EINVAL;
    memset(addr, 0, 16);
    if (strchr(buf, ':')) {
        if (inet_pton(AF_INET6, buf, addr) != 1)
            return HQ_EINVAL;
        if (memcmp(addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
            memmove(addr, addr + 12, 4);
            memset(addr + 4, 0, 12);
            *family = AF_INET;
        } else {
            *family = AF_INET6;
        }
        return HQ_OK;
    }
    if (inet_pton(AF_INET, buf, addr) != 1)
        return HQ_EINVAL;
    *family = AF_INET;
    return HQ_OK;
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;

    if (full && memcmp(a, net, full) != 0)
        return false;
    if (rest) {
        uint8_t mask = (uint8_t)(0xffu << (8 - rest));
        if ((a[full] & mask) != (net[full] & mask))
            return false;
    }
    return true;
}

int hq_cidr_parse(const char *s, struct hq_cidr *out)
{
    struct hq_cidr c;
    const char *slash;
    size_t alen;
    unsigned maxp, i;

    if (!s || !out)
        return HQ_EINVAL;
    memset(&c, 0, sizeof(c));
    slash = strchr(s, '/');
    alen = slash ? (size_t)(slash - s) : strlen(s);
    if (parse_addr(s, alen, &c.family, c.addr) != HQ_OK)
        return HQ_EINVAL;
    /* An IPv4-mapped spelling with a prefix counts its prefix in IPv6 bits. */
    maxp = c.family == AF_INET ? 32 : 128;
    if (slash) {
        const char *p = slash + 1;
        unsigned v = 0;
        size_t nd = 0;
        bool mapped = c.family == AF_INET && memchr(s, ':', alen) != NULL;

        if (*p == '0' && p[1] != '\0')
            return HQ_EINVAL; /* no leading zeros */
        while (*p >= '0' && *p <= '9' && nd < 4) {
            v = v * 10 + (unsigned)(*p - '0');
            p++;
            nd++;
        }
        if (nd == 0 || *p != '\0')
            return HQ_EINVAL;
        if (mapped) {
            if (v > 128 || v < 96)
                return HQ_EINVAL;
            v -= 96;
        } else if (v > maxp) {
            return HQ_EINVAL;
        }
        c.prefix = v;
    } else {
        c.prefix = maxp;
    }
    /* host bits must be zero */
    for (i = c.prefix; i < maxp; i++) {
        if (c.addr[i / 8] & (0x80u >> (i % 8)))
            return HQ_EINVAL;
    }
    *out = c;
    return HQ_OK;
}

int hq_cidr_list_add(struct hq_cidr_list *l, const struct hq_cidr *c)
{
    struct hq_cidr *nv;

    if (!l || !c)
        return HQ_EINVAL;
    if (l->n >= 65536)
        return HQ_ETOOBIG;
    nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
    if (!nv)
        return HQ_ENOMEM;
    nv[l->n++] = *c;
    l->v = nv;
    return HQ_OK;
}

void hq_cidr_list_free(struct hq_cidr_list *l)
{
    if (!l)
        return;
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static bool list_match_addr(const struct hq_cidr_list *l, int family, const uint8_t addr[16])
{
    size_t i;

    if (!l)
        return false;
    for (i = 0; i < l->n; i++) {
        if (l->v[i].family == family && prefix_match(addr, l->v[i].addr, l->v[i].prefix))
            return true;
    }
    return false;
}

bool hq_cidr_list_match(const struct hq_cidr_list *l, const char *ip)
{
    int family;
    uint8_t addr[16];

    if (!l || !ip || parse_addr(ip, strlen(ip), &family, addr) != HQ_OK)
        return false;
    return list_match_addr(l, family, addr);
}

/* One X-Forwarded-For element, already trimmed: "a.b.c.d", "a.b.c.d:port", "v6", "[v6]" or
 * "[v6]:port" (some proxies append the client port). */
static int parse_xff_elem(const char *s, size_t n, int *family, uint8_t addr[16])
{
    const char *colon;
    size_t i;

    if (n == 0 || n >= ADDR_TEXT_MAX)
        return HQ_EINVAL;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        size_t rest;
        if (!close)
            return HQ_EINVAL;
        rest = n - (size_t)(close + 1 - s);
        if (rest > 0) {
            if (close[1] != ':' || rest < 2 || rest > 6)
                return HQ_EINVAL;
            for (i = 2; i < rest + 1; i++)
                if (close[i] < '0' || close[i] > '9')
                    return HQ_EINVAL;
        }
        if (parse_addr(s + 1, (size_t)(close - s - 1), family, addr) != HQ_OK)
            return HQ_EINVAL;
        return *family == AF_INET6 || memchr(s, ':', (size_t)(close - s)) ? HQ_OK : HQ_EINVAL;
    }
    colon = memchr(s, ':', n);
    if (colon && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)) == NULL) {
        /* exactly one colon: IPv4 with a port */
        size_t plen = n - (size_t)(colon + 1 - s);
        if (plen < 1 || plen > 5)
            return HQ_EINVAL;
        for (i = 0; i < plen; i++)
            if (colon[1 + i] < '0' || colon[1 + i] > '9')
                return HQ_EINVAL;
        if (parse_addr(s, (size_t)(colon - s), family, addr) != HQ_OK || *family != AF_INET)
            return HQ_EINVAL;
        return HQ_OK;
    }
    return parse_addr(s, n, family, addr);
}

static int write_addr(int family, const uint8_t addr[16], char *out, size_t outsz)
{
    char buf[ADDR_TEXT_MAX];
    size_t n;

    if (!inet_ntop(family, addr, buf, sizeof(buf)))
        return HQ_EINVAL;
    n = strlen(buf);
    if (n >= outsz)
        return HQ_ETOOBIG;
    memcpy(out, buf, n + 1);
    return HQ_OK;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int hq_client_addr(const char *peer, const char *xff, const struct hq_cidr_list *trusted,
                   char *out, size_t outsz)
{
    int family, efam = 0;
    uint8_t addr[16], eaddr[16];
    size_t end;
    bool any = false;

    if (!peer || !out || outsz == 0)
        return HQ_EINVAL;
    out[0] = '\0';
    if (parse_addr(peer, strlen(peer), &family, addr) != HQ_OK)
        return HQ_EINVAL;
    if (!xff || !list_match_addr(trusted, family, addr))
        return write_addr(family, addr, out, outsz);
    end = strlen(xff);
    while (end > 0 && is_ows(xff[end - 1]))
        end--;
    if (end == 0) /* an empty header is no header */
        return write_addr(family, addr, out, outsz);
    /* Walk from the right: the rightmost entry was added by the proxy we trust. */
    for (;;) {
        size_t start = end, e = end;

        while (start > 0 && xff[start - 1] != ',')
            start--;
        {
            size_t b = start;
            while (b < e && is_ows(xff[b]))
                b++;
            while (e > b && is_ows(xff[e - 1]))
                e--;
            if (parse_xff_elem(xff + b, e - b, &efam, eaddr) != HQ_OK)
                return HQ_EINVAL;
        }
        any = true;
        if (!list_match_addr(trusted, efam, eaddr))
            return write_addr(efam, eaddr, out, outsz);
        if (start == 0)
            break;
        end = start - 1; /* skip the comma */
    }
    /* every hop was trusted: the leftmost is the best we know */
    if (any)
        return write_addr(efam, eaddr, out, outsz);
    return write_addr(family, addr, out, outsz);
}
