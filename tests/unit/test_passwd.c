/* test_passwd: console password hashes (PBKDF2-SHA256, PHC-style string): a known answer
 * computed independently (Python's hashlib.pbkdf2_hmac), round trips, and malformed hashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hq_passwd.h"

/* hashlib.pbkdf2_hmac('sha256', b'correct horse', bytes(range(16)), 100000) */
static const char known[] =
    "$pbkdf2-sha256$i=100000$AAECAwQFBgcICQoLDA0ODw$V/LC8HOXSNUWQZsGKohGZjI8WD6krhZVBKgfe1PGKgk";

static void test_known_answer(void **state)
{
    (void)state;
    assert_true(hq_passwd_valid(known, NULL));
    assert_int_equal(hq_passwd_verify("correct horse", 13, known), HQ_OK);
    assert_int_equal(hq_passwd_verify("correct horsf", 13, known), HQ_EAUTH);
    assert_int_equal(hq_passwd_verify("correct hors", 12, known), HQ_EAUTH);
    assert_int_equal(hq_passwd_verify("", 0, known), HQ_EAUTH);
}

static void test_round_trip(void **state)
{
    char h1[HQ_PASSWD_HASH_MAX], h2[HQ_PASSWD_HASH_MAX];

    (void)state;
    assert_int_equal(hq_passwd_hash("s3cret pw", 9, h1, sizeof(h1)), HQ_OK);
    assert_int_equal(hq_passwd_hash("s3cret pw", 9, h2, sizeof(h2)), HQ_OK);
    assert_true(strncmp(h1, "$pbkdf2-sha256$i=600000$", 24) == 0);
    assert_string_not_equal(h1, h2); /* fresh salt each time */
    assert_true(hq_passwd_valid(h1, NULL));
    assert_int_equal(hq_passwd_verify("s3cret pw", 9, h1), HQ_OK);
    assert_int_equal(hq_passwd_verify("s3cret pW", 9, h1), HQ_EAUTH);
    assert_int_equal(hq_passwd_hash("", 0, h1, sizeof(h1)), HQ_EINVAL);
    assert_int_equal(hq_passwd_hash("x", 1, h1, 20), HQ_ETOOBIG);
}

static void test_malformed(void **state)
{
    static const char *bad[] = {
        "",
        "plaintext",
        "$pbkdf2-sha1$i=100000$AAECAwQFBgcICQoLDA0ODw$V/LC8HOXSNUWQZsGKohGZjI8WD6krhZVBKgfe1PGKgk",
        "$pbkdf2-sha256$i=99999$AAECAwQFBgcICQoLDA0ODw$V/LC8HOXSNUWQZsGKohGZjI8WD6krhZVBKgfe1PGKgk",
        "$pbkdf2-sha256$i=010000$AAECAwQFBgcICQoLDA0ODw$V/LC8HOXSNUWQZsGKohGZjI8WD6krhZVBKgfe1PGKgk",
        "$pbkdf2-sha256$i=99999999999$AAECAwQFBgcICQoLDA0ODw$V/LC8HOXSNUWQZsGKohGZjI8WD6krhZ",
        "$pbkdf2-sha256$i=100000$AAECAwQFBgcICQoLDA0ODw",
        "$pbkdf2-sha256$i=100000$AAEC$V/LC8HOXSNUWQZsGKohGZjI8WD6krhZVBKgfe1PGKgk",
        "$pbkdf2-sha256$i=100000$AAECAwQFBgcICQoLDA0ODw$V/LC8HOXSNUWQZsGKohGZjI8WD6krhZVBKgfe1PGKg",
        "$pbkdf2-sha256$i=100000$AAECAwQFBgcICQoLDA0ODw$V/LC8HOXSNUWQZsGKohGZjI8WD6krhZVBKgfe1PGKgk$",
        "$pbkdf2-sha256$i=100000$AAECAwQFBgcICQoLDA0O D$V/LC8HOXSNUWQZsGKohGZjI8WD6krhZVBKgfe1PGKgk",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = NULL;

        assert_false(hq_passwd_valid(bad[i], &why));
        assert_non_null(why);
        assert_int_equal(hq_passwd_verify("correct horse", 13, bad[i]), HQ_EINVAL);
    }
}

static void test_ct_equal_and_random(void **state)
{
    unsigned char a[32] = {0}, b[32] = {0};

    (void)state;
    assert_true(hq_ct_equal(a, b, sizeof(a)));
    assert_int_equal(hq_random_bytes(a, sizeof(a)), HQ_OK);
    assert_int_equal(hq_random_bytes(b, sizeof(b)), HQ_OK);
    assert_false(hq_ct_equal(a, b, sizeof(a)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_ct_equal_and_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
