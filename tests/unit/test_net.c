/* Unit tests: core/net.c (CIDR parsing and matching, the X-Forwarded-For client address). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "hq_net.h"

static void list_of(struct hq_cidr_list *l, const char *const *cidrs)
{
    struct hq_cidr c;

    memset(l, 0, sizeof(*l));
    for (; *cidrs; cidrs++) {
        assert_int_equal(hq_cidr_parse(*cidrs, &c), HQ_OK);
        assert_int_equal(hq_cidr_list_add(l, &c), HQ_OK);
    }
}

static void test_cidr_parse_ok(void **state)
{
    struct hq_cidr c;
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};

    (void)state;
    assert_int_equal(hq_cidr_parse("203.0.113.0/24", &c), HQ_OK);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 24);
    assert_int_equal(c.addr[0], 203);
    assert_int_equal(c.addr[2], 113);
    assert_int_equal(c.addr[3], 0);

    assert_int_equal(hq_cidr_parse("10.1.2.3", &c), HQ_OK);
    assert_int_equal(c.prefix, 32);
    assert_int_equal(c.addr[3], 3);

    assert_int_equal(hq_cidr_parse("0.0.0.0/0", &c), HQ_OK);
    assert_int_equal(c.prefix, 0);

    assert_int_equal(hq_cidr_parse("::1/128", &c), HQ_OK);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(c.prefix, 128);
    assert_int_equal(c.addr[15], 1);

    assert_int_equal(hq_cidr_parse("::1", &c), HQ_OK);
    assert_int_equal(c.prefix, 128);

    assert_int_equal(hq_cidr_parse("2001:db8::/32", &c), HQ_OK);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(c.prefix, 32);
    assert_memory_equal(c.addr, v6, 16);

    assert_int_equal(hq_cidr_parse("::/0", &c), HQ_OK);
    assert_int_equal(c.prefix, 0);

    /* IPv4-mapped: becomes the IPv4 network, prefix counted in IPv4 bits */
    assert_int_equal(hq_cidr_parse("::ffff:10.0.0.0/104", &c), HQ_OK);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(c.addr[0], 10);
}

static void test_cidr_parse_bad(void **state)
{
    struct hq_cidr c;
    static const char *const bad[] = {
        "",
        "/",
        "/24",
        "10.0.0.1/24",      /* host bits set */
        "10.0.0.0/33",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/08",      /* leading zero */
        "10.0.0.0/",
        "10.0.0.0/8/8",
        "10.0.0.0/ 8",
        " 10.0.0.0/8",
        "10.0.0.0/8 ",
        "10.0.0",
        "10.1",
        "256.0.0.0",
        "010.0.0.0",        /* glibc refuses leading zeros (octal ambiguity) */
        "1.2.3.4.5",
        "::1/129",
        "2001:db8::1/32",   /* host bits set */
        "fe80::1%eth0",     /* zone ids are not addresses */
        ":::",
        "localhost",
        "10.0.0.0/99999999999999999999",
        "::ffff:10.0.0.0/64", /* mapped prefix shorter than 96 */
        "2001:0db8:0000:0000:0000:0000:0000:0000:0000/64",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (hq_cidr_parse(bad[i], &c) != HQ_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_int_equal(hq_cidr_parse(NULL, &c), HQ_EINVAL);
}

static void test_list_match(void **state)
{
    static const char *const cidrs[] = {"203.0.113.0/24", "10.0.0.0/8", "2001:db8::/32",
                                        "192.0.2.7", "172.16.0.0/12", NULL};
    struct hq_cidr_list l;

    (void)state;
    list_of(&l, cidrs);
    assert_int_equal(l.n, 5);
    assert_true(hq_cidr_list_match(&l, "203.0.113.1"));
    assert_true(hq_cidr_list_match(&l, "203.0.113.255"));
    assert_false(hq_cidr_list_match(&l, "203.0.114.0"));
    assert_false(hq_cidr_list_match(&l, "203.0.112.255"));
    assert_true(hq_cidr_list_match(&l, "10.255.255.255"));
    assert_false(hq_cidr_list_match(&l, "11.0.0.0"));
    assert_true(hq_cidr_list_match(&l, "192.0.2.7"));
    assert_false(hq_cidr_list_match(&l, "192.0.2.8"));
    /* /12: 172.16.0.0 - 172.31.255.255 */
    assert_true(hq_cidr_list_match(&l, "172.31.255.255"));
    assert_false(hq_cidr_list_match(&l, "172.32.0.0"));
    assert_true(hq_cidr_list_match(&l, "2001:db8:ffff::1"));
    assert_false(hq_cidr_list_match(&l, "2001:db9::1"));
    /* an IPv4-mapped spelling matches the IPv4 entry */
    assert_true(hq_cidr_list_match(&l, "::ffff:10.1.2.3"));
    assert_false(hq_cidr_list_match(&l, "::ffff:11.1.2.3"));
    /* families never cross otherwise */
    assert_false(hq_cidr_list_match(&l, "::a00:1"));
    /* bad input never matches */
    assert_false(hq_cidr_list_match(&l, ""));
    assert_false(hq_cidr_list_match(&l, "10.0.0.1/8"));
    assert_false(hq_cidr_list_match(&l, "10.0.0.1 "));
    assert_false(hq_cidr_list_match(&l, "10.0.0.1:80"));
    assert_false(hq_cidr_list_match(&l, NULL));
    assert_false(hq_cidr_list_match(NULL, "10.0.0.1"));
    hq_cidr_list_free(&l);
    assert_null(l.v);
    assert_int_equal(l.n, 0);
    hq_cidr_list_free(&l);
    hq_cidr_list_free(NULL);
}

static void test_list_empty_and_all(void **state)
{
    static const char *const all[] = {"0.0.0.0/0", "::/0", NULL};
    struct hq_cidr_list empty = {NULL, 0}, l;

    (void)state;
    assert_false(hq_cidr_list_match(&empty, "127.0.0.1"));
    list_of(&l, all);
    assert_true(hq_cidr_list_match(&l, "1.2.3.4"));
    assert_true(hq_cidr_list_match(&l, "fe80::1"));
    hq_cidr_list_free(&l);
}

static void test_client_addr(void **state)
{
    static const char *const proxies[] = {"127.0.0.1/32", "10.0.0.0/8", "::1/128", NULL};
    struct hq_cidr_list t;
    char out[64];

    (void)state;
    list_of(&t, proxies);

    /* untrusted peer: XFF ignored entirely (even if malformed) */
    assert_int_equal(hq_client_addr("198.51.100.7", "1.2.3.4", &t, out, sizeof(out)), HQ_OK);
    assert_string_equal(out, "198.51.100.7");
    assert_int_equal(hq_client_addr("198.51.100.7", "garbage", &t, out, sizeof(out)), HQ_OK);
    assert_string_equal(out, "198.51.100.7");

    /* trusted peer without XFF */
    assert_int_equal(hq_client_addr("127.0.0.1", NULL, &t, out, sizeof(out)), HQ_OK);
    assert_string_equal(out, "127.0.0.1");
    assert_int_equal(hq_client_addr("127.0.0.1", "  ", &t, out, sizeof(out)), HQ_OK);
    assert_string_equal(out, "127.0.0.1");

    /* trusted peer: the rightmost untrusted hop */
    assert_int_equal(hq_client_addr("127.0.0.1", "203.0.113.9", &t, out, sizeof(out)), HQ_OK);
    assert_string_equal(out, "203.0.113.9");
    /* a client-supplied (spoofed) left part is not believed */
    assert_int_equal(hq_client_addr("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.1.1", &t, out,
                                     sizeof(out)),
                     HQ_OK);
    assert_string_equal(out, "203.0.113.9");
    /* the walk stops at the first untrusted entry: garbage left of it is never parsed */
    assert_int_equal(hq_client_addr("127.0.0.1", "junk,,, 203.0.113.9", &t, out, sizeof(out)),
                     HQ_OK);
    assert_string_equal(out, "203.0.113.9");
    /* all hops trusted: the leftmost */
    assert_int_equal(hq_client_addr("127.0.0.1", "10.0.0.5,10.0.0.6", &t, out, sizeof(out)),
                     HQ_OK);
    assert_string_equal(out, "10.0.0.5");
    /* tabs and spaces around entries */
    assert_int_equal(hq_client_addr("10.2.3.4", "\t198.51.100.1 ,\t10.9.9.9\t", &t, out,
                                     sizeof(out)),
                     HQ_OK);
    assert_string_equal(out, "198.51.100.1");
    /* ports and brackets some proxies add */
    assert_int_equal(hq_client_addr("127.0.0.1", "198.51.100.1:4711", &t, out, sizeof(out)),
                     HQ_OK);
    assert_string_equal(out, "198.51.100.1");
    assert_int_equal(hq_client_addr("127.0.0.1", "[2001:db8::1]:443", &t, out, sizeof(out)),
                     HQ_OK);
    assert_string_equal(out, "2001:db8::1");
    assert_int_equal(hq_client_addr("127.0.0.1", "2001:DB8:0::2", &t, out, sizeof(out)), HQ_OK);
    assert_string_equal(out, "2001:db8::2"); /* canonical form */
    assert_int_equal(hq_client_addr("::1", "::ffff:203.0.113.5", &t, out, sizeof(out)), HQ_OK);
    assert_string_equal(out, "203.0.113.5");
    /* IPv4-mapped peer is the IPv4 proxy */
    assert_int_equal(hq_client_addr("::ffff:127.0.0.1", "203.0.113.4", &t, out, sizeof(out)),
                     HQ_OK);
    assert_string_equal(out, "203.0.113.4");

    hq_cidr_list_free(&t);
}

static void test_client_addr_bad(void **state)
{
    static const char *const proxies[] = {"127.0.0.1/32", "10.0.0.0/8", NULL};
    static const char *const bad_xff[] = {
        "not-an-ip",
        "1.2.3.4, ",          /* empty rightmost element */
        "1.2.3.4,,10.0.0.1",  /* empty element in the walked part */
        ",",
        "1.2.3",
        "1.2.3.4:",
        "1.2.3.4:123456",
        "1.2.3.4:80x",
        "[1.2.3.4]",
        "[2001:db8::1",
        "[2001:db8::1]x",
        "[2001:db8::1]:",
        "2001:db8::1:::",
        "unknown",
        "10.0.0.1 10.0.0.2",
        "1.2.3.4\r\n",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    struct hq_cidr_list t;
    char out[64];
    size_t i;

    (void)state;
    list_of(&t, proxies);
    for (i = 0; i < sizeof(bad_xff) / sizeof(bad_xff[0]); i++) {
        if (hq_client_addr("127.0.0.1", bad_xff[i], &t, out, sizeof(out)) != HQ_EINVAL)
            fail_msg("accepted X-Forwarded-For \"%s\"", bad_xff[i]);
    }
    /* a malformed trusted-hop chain is detected even when it ends in trusted entries */
    assert_int_equal(hq_client_addr("127.0.0.1", "x, 10.0.0.1", &t, out, sizeof(out)), HQ_EINVAL);
    /* bad peer */
    assert_int_equal(hq_client_addr("", NULL, &t, out, sizeof(out)), HQ_EINVAL);
    assert_int_equal(hq_client_addr("127.0.0.1:80", NULL, &t, out, sizeof(out)), HQ_EINVAL);
    assert_int_equal(hq_client_addr(NULL, NULL, &t, out, sizeof(out)), HQ_EINVAL);
    /* no trusted list: XFF never believed */
    assert_int_equal(hq_client_addr("127.0.0.1", "1.2.3.4", NULL, out, sizeof(out)), HQ_OK);
    assert_string_equal(out, "127.0.0.1");
    /* output too small */
    assert_int_equal(hq_client_addr("127.0.0.1", NULL, &t, out, 5), HQ_ETOOBIG);
    hq_cidr_list_free(&t);
}

static void test_client_addr_long_chain(void **state)
{
    static const char *const proxies[] = {"10.0.0.0/8", NULL};
    struct hq_cidr_list t;
    char xff[16384], out[64];
    size_t used = 0;
    int i;

    (void)state;
    list_of(&t, proxies);
    used += (size_t)snprintf(xff, sizeof(xff), "198.51.100.3");
    for (i = 0; i < 1000; i++)
        used += (size_t)snprintf(xff + used, sizeof(xff) - used, ", 10.%d.%d.1", i / 256, i % 256);
    assert_true(used < sizeof(xff));
    assert_int_equal(hq_client_addr("10.0.0.1", xff, &t, out, sizeof(out)), HQ_OK);
    assert_string_equal(out, "198.51.100.3");
    hq_cidr_list_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_parse_ok),
        cmocka_unit_test(test_cidr_parse_bad),
        cmocka_unit_test(test_list_match),
        cmocka_unit_test(test_list_empty_and_all),
        cmocka_unit_test(test_client_addr),
        cmocka_unit_test(test_client_addr_bad),
        cmocka_unit_test(test_client_addr_long_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
