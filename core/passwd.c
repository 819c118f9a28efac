/* passwd: PBKDF2-SHA256 password hashes in a PHC-style string, random tokens (hq_passwd.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "hq_codec.h"
#include "hq_passwd.h"

#define PREFIX "$pbkdf2-sha256$i="
#define SALT_LEN 16
#define DK_LEN 32

struct parsed {
    unsigned long iter;
    unsigned char salt[64];
    size_t salt_len;
    unsigned char dk[DK_LEN];
};

int hq_random_bytes(unsigned char *out, size_t n)
{
    if (n > 0x7fffffff || RAND_bytes(out, (int)n) != 1)
        return HQ_EIO;
    return HQ_OK;
}

bool hq_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* standard base64 without the padding */
static void b64_nopad(const unsigned char *in, size_t n, char *out)
{
    size_t len = hq_b64_encode(in, n, out);

    while (len > 0 && out[len - 1] == '=')
        out[--len] = '\0';
}

static int derive(const char *pw, size_t n, const unsigned char *salt, size_t salt_len,
                  unsigned long iter, unsigned char dk[DK_LEN])
{
    if (PKCS5_PBKDF2_HMAC(pw, (int)n, salt, (int)salt_len, (int)iter, EVP_sha256(), DK_LEN, dk) !=
        1)
        return HQ_EIO;
    return HQ_OK;
}

int hq_passwd_hash(const char *password, size_t n, char *out, size_t outsz)
{
    unsigned char salt[SALT_LEN], dk[DK_LEN];
    char s64[32], d64[48];
    int w, rc;

    if (n == 0 || n > HQ_PASSWD_MAX)
        return HQ_EINVAL;
    if ((rc = hq_random_bytes(salt, sizeof(salt))) != HQ_OK)
        return rc;
    if ((rc = derive(password, n, salt, sizeof(salt), HQ_PASSWD_ITER, dk)) != HQ_OK)
        return rc;
    b64_nopad(salt, sizeof(salt), s64);
    b64_nopad(dk, sizeof(dk), d64);
    OPENSSL_cleanse(dk, sizeof(dk));
    w = snprintf(out, outsz, PREFIX "%u$%s$%s", HQ_PASSWD_ITER, s64, d64);
    if (w < 0 || (size_t)w >= outsz)
        return HQ_ETOOBIG;
    return HQ_OK;
}

static const char *parse(const char *s, struct parsed *p)
{
    const char *salt, *dk, *end;
    unsigned long v = 0;
    size_t n, dkn;

    if (!s || strncmp(s, PREFIX, strlen(PREFIX)) != 0)
        return "does not start with $pbkdf2-sha256$i= (make one with hookmq-console "
               "hash-password)";
    s += strlen(PREFIX);
    if (*s < '1' || *s > '9')
        return "the iteration count is not a number";
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > HQ_PASSWD_MAX_ITER)
            return "the iteration count is above 10000000";
    }
    if (v < HQ_PASSWD_MIN_ITER)
        return "the iteration count is below 100000";
    if (*s != '$')
        return "expected $ after the iteration count";
    salt = s + 1;
    dk = strchr(salt, '$');
    if (!dk)
        return "expected $SALT$HASH after the iteration count";
    n = (size_t)(dk - salt);
    dk++;
    end = dk + strlen(dk);
    if (n < 11 || n > 86 ||
        hq_b64_decode(salt, n, 1, p->salt, sizeof(p->salt), &p->salt_len) != HQ_OK ||
        p->salt_len < 8)
        return "the salt is not 8 to 64 bytes of base64";
    if (hq_b64_decode(dk, (size_t)(end - dk), 1, p->dk, sizeof(p->dk), &dkn) != HQ_OK ||
        dkn != DK_LEN)
        return "the hash is not 32 bytes of base64";
    p->iter = v;
    return NULL;
}

bool hq_passwd_valid(const char *encoded, const char **why)
{
    struct parsed p;
    const char *w = parse(encoded, &p);

    if (why)
        *why = w;
    return w == NULL;
}

int hq_passwd_verify(const char *password, size_t n, const char *encoded)
{
    struct parsed p;
    unsigned char dk[DK_LEN];
    int rc;

    if (parse(encoded, &p) != NULL || n > HQ_PASSWD_MAX)
        return HQ_EINVAL;
    if ((rc = derive(password, n, p.salt, p.salt_len, p.iter, dk)) != HQ_OK)
        return rc;
    rc = CRYPTO_memcmp(dk, p.dk, DK_LEN) == 0 ? HQ_OK : HQ_EAUTH;
    OPENSSL_cleanse(dk, sizeof(dk));
    return rc;
}
