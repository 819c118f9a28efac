/* test_codec: hex and base64 encoders and strict decoders (RFC 4648 test vectors plus
 * hostile inputs), the little-endian integers and the CRCs of hq_hash.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "hq_codec.h"
#include "hq_hash.h"

/* RFC 4648 section 10 */
static const struct {
    const char *in, *b64, *hex;
} rfc[] = {
    {"", "", ""},
    {"f", "Zg==", "66"},
    {"fo", "Zm8=", "666f"},
    {"foo", "Zm9v", "666f6f"},
    {"foob", "Zm9vYg==", "666f6f62"},
    {"fooba", "Zm9vYmE=", "666f6f6261"},
    {"foobar", "Zm9vYmFy", "666f6f626172"},
};

static void test_rfc4648(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++) {
        char out[64];
        unsigned char dec[64];
        size_t n = strlen(rfc[i].in), dl = 99;

        assert_int_equal(hq_b64_encode((const unsigned char *)rfc[i].in, n, out),
                         strlen(rfc[i].b64));
        assert_string_equal(out, rfc[i].b64);
        hq_hex_encode((const unsigned char *)rfc[i].in, n, out);
        assert_string_equal(out, rfc[i].hex);

        assert_int_equal(hq_b64_decode(rfc[i].b64, strlen(rfc[i].b64), 0, dec, sizeof(dec), &dl),
                         HQ_OK);
        assert_int_equal(dl, n);
        assert_memory_equal(dec, rfc[i].in, n);
        assert_int_equal(hq_hex_decode(rfc[i].hex, strlen(rfc[i].hex), dec, sizeof(dec), &dl),
                         HQ_OK);
        assert_int_equal(dl, n);
        assert_memory_equal(dec, rfc[i].in, n);
    }
}

static void test_b64_all_bytes(void **state)
{
    unsigned char in[256], dec[256];
    char out[400], ref[400];
    size_t i, n, dl;

    (void)state;
    for (i = 0; i < 256; i++)
        in[i] = (unsigned char)(255 - i);
    for (n = 0; n <= 256; n++) {
        int rl = EVP_EncodeBlock((unsigned char *)ref, in, (int)n);
        assert_int_equal(hq_b64_encode(in, n, out), (size_t)rl);
        assert_string_equal(out, ref); /* OpenSSL as the reference */
        assert_int_equal(hq_b64_decode(out, strlen(out), 0, dec, sizeof(dec), &dl), HQ_OK);
        assert_int_equal(dl, n);
        assert_memory_equal(dec, in, n);
        /* unpadded form decodes too when allowed, and only then */
        {
            size_t ul = strlen(out);
            while (ul && out[ul - 1] == '=')
                ul--;
            assert_int_equal(hq_b64_decode(out, ul, 1, dec, sizeof(dec), &dl), HQ_OK);
            assert_int_equal(dl, n);
            assert_memory_equal(dec, in, n);
            if (ul != strlen(out))
                assert_int_equal(hq_b64_decode(out, ul, 0, dec, sizeof(dec), &dl), HQ_EINVAL);
        }
    }
}

static void test_b64_strict(void **state)
{
    static const char *bad[] = {
        "Zg=",      /* short padding */
        "Zg",       /* unpadded (not allowed here) */
        "Z===",     /* three '=' */
        "====",     /* only padding */
        "Zm9v\n",   /* whitespace */
        " Zm9v",    /* leading space */
        "Zm 9v",    /* inner space */
        "Zm9-",     /* URL-safe alphabet */
        "Zm9_",     /* URL-safe alphabet */
        "Zg==Zg==", /* data after padding */
        "Z=g=",     /* padding inside */
        "Zh==",     /* non-zero unused bits (canonical is Zg==) */
        "Zm9=",     /* non-zero unused bits (canonical is Zm8=) */
        "Zm9vY",    /* 5 chars */
        "\xc3\xa9\xc3\xa9",
    };
    unsigned char out[16];
    size_t i, dl = 7;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = hq_b64_decode(bad[i], strlen(bad[i]), 0, out, sizeof(out), &dl);
        if (rc != HQ_EINVAL)
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(dl, 0);
    }
    /* unpadded mode still rejects a dangling single character and bad padding */
    assert_int_equal(hq_b64_decode("Zm9vY", 5, 1, out, sizeof(out), &dl), HQ_EINVAL);
    assert_int_equal(hq_b64_decode("Zg=", 3, 1, out, sizeof(out), &dl), HQ_EINVAL);
    assert_int_equal(hq_b64_decode("Zh", 2, 1, out, sizeof(out), &dl), HQ_EINVAL);
    assert_int_equal(hq_b64_decode("Zg", 2, 1, out, sizeof(out), &dl), HQ_OK);
    assert_int_equal(dl, 1);
    assert_int_equal(out[0], 'f');
    /* an embedded NUL is a bad character (length-delimited input) */
    assert_int_equal(hq_b64_decode("Zm\0v", 4, 0, out, sizeof(out), &dl), HQ_EINVAL);
    /* empty input */
    assert_int_equal(hq_b64_decode("", 0, 0, out, sizeof(out), &dl), HQ_OK);
    assert_int_equal(dl, 0);
    assert_int_equal(hq_b64_decode(NULL, 0, 0, out, 0, &dl), HQ_OK);
    assert_int_equal(hq_b64_decode(NULL, 4, 0, out, sizeof(out), &dl), HQ_EINVAL);
}

static void test_b64_too_big(void **state)
{
    unsigned char out[6];
    size_t dl = 9;

    (void)state;
    assert_int_equal(hq_b64_decode("Zm9vYmFy", 8, 0, out, 6, &dl), HQ_OK);
    assert_int_equal(dl, 6);
    assert_int_equal(hq_b64_decode("Zm9vYmFy", 8, 0, out, 5, &dl), HQ_ETOOBIG);
    assert_int_equal(hq_b64_decode("Zm9vYmE=", 8, 0, out, 4, &dl), HQ_ETOOBIG);
    assert_int_equal(hq_b64_decode("Zm9vYmE=", 8, 0, out, 5, &dl), HQ_OK);
    assert_int_equal(dl, 5);
    /* bad characters are reported before size */
    assert_int_equal(hq_b64_decode("Zm9vYm!y", 8, 0, out, 1, &dl), HQ_EINVAL);
}

static void test_hex(void **state)
{
    unsigned char out[8];
    size_t dl = 5;
    char enc[17];
    static const unsigned char bytes[] = {0x00, 0x0f, 0xa5, 0xff};

    (void)state;
    hq_hex_encode(bytes, 4, enc);
    assert_string_equal(enc, "000fa5ff");
    assert_int_equal(hq_hex_decode("000FA5ff", 8, out, sizeof(out), &dl), HQ_OK);
    assert_int_equal(dl, 4);
    assert_memory_equal(out, bytes, 4);
    assert_int_equal(hq_hex_decode("abc", 3, out, sizeof(out), &dl), HQ_EINVAL);
    assert_int_equal(dl, 0);
    assert_int_equal(hq_hex_decode("zz", 2, out, sizeof(out), &dl), HQ_EINVAL);
    assert_int_equal(hq_hex_decode("0g", 2, out, sizeof(out), &dl), HQ_EINVAL);
    assert_int_equal(hq_hex_decode(" 0", 2, out, sizeof(out), &dl), HQ_EINVAL);
    assert_int_equal(hq_hex_decode("0\0", 2, out, sizeof(out), &dl), HQ_EINVAL);
    assert_int_equal(hq_hex_decode("0x00", 4, out, sizeof(out), &dl), HQ_EINVAL);
    assert_int_equal(hq_hex_decode("000102", 6, out, 2, &dl), HQ_ETOOBIG);
    assert_int_equal(hq_hex_decode("", 0, out, 0, &dl), HQ_OK);
    assert_int_equal(dl, 0);
    assert_int_equal(hq_hex_decode(NULL, 2, out, sizeof(out), &dl), HQ_EINVAL);
    /* outlen may be NULL */
    assert_int_equal(hq_hex_decode("ff", 2, out, sizeof(out), NULL), HQ_OK);
    assert_int_equal(out[0], 0xff);
}

static void test_hex_round_trip(void **state)
{
    unsigned char in[200], out[200];
    char enc[401];
    size_t n, dl;

    (void)state;
    for (n = 0; n < sizeof(in); n++)
        in[n] = (unsigned char)(n * 37 + 11);
    for (n = 0; n <= sizeof(in); n++) {
        hq_hex_encode(in, n, enc);
        assert_int_equal(strlen(enc), 2 * n);
        assert_int_equal(hq_hex_decode(enc, 2 * n, out, sizeof(out), &dl), HQ_OK);
        assert_int_equal(dl, n);
        assert_memory_equal(out, in, n);
    }
}

static void test_le(void **state)
{
    unsigned char b[8];

    (void)state;
    hq_put_le64(b, 0x0102030405060708ull);
    assert_memory_equal(b, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
    assert_true(hq_get_le64(b) == 0x0102030405060708ull);
    assert_int_equal(hq_get_le32(b + 4), 0x01020304u);
    hq_put_le32(b, 0xdeadbeefu);
    assert_memory_equal(b, "\xef\xbe\xad\xde", 4);
}

/* The check values of the CRC catalogue ("123456789"); fed in pieces gives the same. */
static void test_crc(void **state)
{
    const char *s = "123456789";

    (void)state;
    assert_int_equal(hq_crc32(0, s, 9), 0xCBF43926u);
    assert_int_equal(hq_crc32c(0, s, 9), 0xE3069283u);
    assert_int_equal(hq_crc32(hq_crc32(0, s, 4), s + 4, 5), 0xCBF43926u);
    assert_int_equal(hq_crc32c(hq_crc32c(0, s, 2), s + 2, 7), 0xE3069283u);
    assert_int_equal(hq_crc32(0, s, 0), 0);
}

/* FIPS 180-2 vectors, whole and in pieces (an empty piece included). */
static void test_sha256(void **state)
{
    static const char abc_hex[] =
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    static const char empty_hex[] =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    static const char two_hex[] =
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    const void *p[4] = {"ab", "", "c", NULL};
    size_t len[4] = {2, 0, 1, 0};
    unsigned char d[32];
    char hex[65];

    (void)state;
    assert_int_equal(hq_sha256(p, len, 3, d), HQ_OK);
    hq_hex_encode(d, 32, hex);
    assert_string_equal(hex, abc_hex);
    assert_int_equal(hq_sha256(p, len, 0, d), HQ_OK);
    hq_hex_encode(d, 32, hex);
    assert_string_equal(hex, empty_hex);
    p[0] = two;
    len[0] = 20;
    p[1] = two + 20;
    len[1] = strlen(two) - 20;
    assert_int_equal(hq_sha256(p, len, 2, d), HQ_OK);
    hq_hex_encode(d, 32, hex);
    assert_string_equal(hex, two_hex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648),      cmocka_unit_test(test_b64_all_bytes),
        cmocka_unit_test(test_b64_strict),   cmocka_unit_test(test_b64_too_big),
        cmocka_unit_test(test_hex),          cmocka_unit_test(test_hex_round_trip),
        cmocka_unit_test(test_le),           cmocka_unit_test(test_crc),
        cmocka_unit_test(test_sha256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
