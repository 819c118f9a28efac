/* hq_passwd: password hashes for the console's users (docs/console.md), and random tokens.
 *
 * A hash is the PHC-style string
 *     $pbkdf2-sha256$i=ITERATIONS$SALT$HASH
 * PBKDF2-HMAC-SHA256 (OpenSSL), SALT 16 random bytes and HASH the 32-byte derived key, both in
 * standard base64 without padding. ITERATIONS is at least HQ_PASSWD_MIN_ITER (new hashes use
 * HQ_PASSWD_ITER). Thread-safe, no shared state. */
#ifndef HQ_PASSWD_H
#define HQ_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include "hq_status.h"

#define HQ_PASSWD_ITER 600000u      /* what hq_passwd_hash writes (OWASP 2023 for PBKDF2-SHA256) */
#define HQ_PASSWD_MIN_ITER 100000u  /* the fewest a hash may name */
#define HQ_PASSWD_MAX_ITER 10000000u
#define HQ_PASSWD_HASH_MAX 128      /* the length of an encoded hash is below this */
#define HQ_PASSWD_MAX 1024          /* longest password accepted, in bytes */

/* Hash password (n bytes, 1..HQ_PASSWD_MAX) with a fresh salt into out (>= HQ_PASSWD_HASH_MAX
 * bytes, NUL-terminated). HQ_EINVAL for an empty or too long password, HQ_EIO when the random
 * generator or the KDF fails. */
HQ_MUST_CHECK int hq_passwd_hash(const char *password, size_t n, char *out, size_t outsz);

/* Is encoded a well-formed hash (the format above, iterations in range)? When not, *why
 * (may be NULL) gets a static description. */
bool hq_passwd_valid(const char *encoded, const char **why);

/* Check password against encoded in constant time (CRYPTO_memcmp over the derived keys).
 * HQ_OK on a match, HQ_EAUTH on a mismatch, HQ_EINVAL when encoded is malformed (or the
 * password too long), HQ_EIO when the KDF fails. */
HQ_MUST_CHECK int hq_passwd_verify(const char *password, size_t n, const char *encoded);

/* Fill out with n bytes from the OpenSSL CSPRNG. HQ_EIO when it fails. */
HQ_MUST_CHECK int hq_random_bytes(unsigned char *out, size_t n);

/* Constant-time equality of two byte strings of the same length n. */
bool hq_ct_equal(const void *a, const void *b, size_t n);

#endif
