/* fuzz_net: hq_cidr_parse, hq_cidr_list_match and hq_client_addr on hostile text.
 *
 * Input lines: line 1 = the peer address, line 2 = the X-Forwarded-For value, every further
 * line a CIDR for the trusted list (each line is also parsed as a CIDR on its own).
 * Invariants: a parsed CIDR has zero host bits and a prefix within its family; the address
 * hq_client_addr returns is a valid address (it parses and matches itself as a /32 or /128). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hq_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "invariant broken: %s\n", what);
        abort();
    }
}

static void check_cidr(const struct hq_cidr *c)
{
    unsigned maxp = c->family == AF_INET ? 32 : 128, i;

    check(c->family == AF_INET || c->family == AF_INET6, "family");
    check(c->prefix <= maxp, "prefix");
    for (i = c->prefix; i < maxp; i++)
        check(!(c->addr[i / 8] & (0x80u >> (i % 8))), "host bits zero");
    if (c->family == AF_INET)
        for (i = 4; i < 16; i++)
            check(c->addr[i] == 0, "IPv4 padding");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, *lines[64], *p, out[64], self[80];
    size_t n = 0, i;
    struct hq_cidr_list trusted = {NULL, 0};
    struct hq_cidr c;

    if (size > 16384)
        return 0;
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    p = text;
    while (n < 64) {
        lines[n++] = p;
        p = strchr(p, '\n');
        if (!p)
            break;
        *p++ = '\0';
    }
    for (i = 0; i < n; i++) {
        if (hq_cidr_parse(lines[i], &c) == HQ_OK) {
            check_cidr(&c);
            if (i >= 2 && hq_cidr_list_add(&trusted, &c) != HQ_OK)
                break;
        }
    }
    for (i = 0; i < n; i++)
        (void)hq_cidr_list_match(&trusted, lines[i]);
    if (hq_client_addr(lines[0], n > 1 ? lines[1] : NULL, &trusted, out, sizeof(out)) == HQ_OK) {
        struct hq_cidr_list one = {NULL, 0};
        check(hq_cidr_parse(out, &c) == HQ_OK, "result parses");
        check(c.prefix == (c.family == AF_INET ? 32u : 128u), "result is one address");
        check(hq_cidr_list_add(&one, &c) == HQ_OK, "add");
        check(hq_cidr_list_match(&one, out), "result matches itself");
        hq_cidr_list_free(&one);
        /* without a trusted list the peer itself comes back */
        check(hq_client_addr(lines[0], n > 1 ? lines[1] : NULL, NULL, self, sizeof(self)) == HQ_OK,
              "peer alone");
    }
    hq_cidr_list_free(&trusted);
    free(text);
    return 0;
}
