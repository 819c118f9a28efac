/* hq_net: IPv4/IPv6 CIDR lists (allow_from, trusted_proxies) and client-address logic. */
#ifndef HQ_NET_H
#define HQ_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hq_status.h"

struct hq_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
};

struct hq_cidr_list {
    struct hq_cidr *v; /* owned */
    size_t n;
};

/* "203.0.113.0/24", "10.1.2.3" (= /32), "::1/128". Host bits must be zero. */
HQ_MUST_CHECK int hq_cidr_parse(const char *s, struct hq_cidr *out);
HQ_MUST_CHECK int hq_cidr_list_add(struct hq_cidr_list *l, const struct hq_cidr *c);
void hq_cidr_list_free(struct hq_cidr_list *l);
/* Does the textual address ip (v4 or v6, no port) fall in any entry? false on a bad ip. */
bool hq_cidr_list_match(const struct hq_cidr_list *l, const char *ip);

/* The client address to judge allow_from by: peer, unless peer is in trusted and xff is set;
 * then walk X-Forwarded-For from the right, skipping trusted hops, and return the first
 * untrusted address (or the leftmost). Writes into out (>= 64 bytes). HQ_EINVAL when xff
 * holds a malformed address in the part that is walked. */
HQ_MUST_CHECK int hq_client_addr(const char *peer, const char *xff,
                                 const struct hq_cidr_list *trusted, char *out, size_t outsz);

#endif
