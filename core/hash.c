/* hash: CRC-32 and CRC-32C, table-driven; MurmurHash64A and FNV-1a 64 (hq_hash.h). OpenSSL
 * has neither a public CRC nor these hashes, and zlib is not otherwise a dependency; these
 * lines are cheaper than a new library. */
#include <pthread.h>

#include "hq_codec.h"
#include "hq_hash.h"

static uint32_t ieee_table[256], castagnoli_table[256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void fill(uint32_t *table, uint32_t poly) /* poly: reflected */
{
    uint32_t i, k, c;

    for (i = 0; i < 256; i++) {
        c = i;
        for (k = 0; k < 8; k++)
            c = (c & 1) ? poly ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
}

static void tables_init(void)
{
    fill(ieee_table, 0xEDB88320u);
    fill(castagnoli_table, 0x82F63B78u);
}

static uint32_t crc(const uint32_t *table, uint32_t c, const unsigned char *p, size_t n)
{
    c = ~c;
    while (n--)
        c = table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

uint32_t hq_crc32(uint32_t c, const void *p, size_t n)
{
    pthread_once(&tables_once, tables_init);
    return crc(ieee_table, c, p, n);
}

uint32_t hq_crc32c(uint32_t c, const void *p, size_t n)
{
    pthread_once(&tables_once, tables_init);
    return crc(castagnoli_table, c, p, n);
}

uint64_t hq_murmur64a(uint64_t seed, const void *key, size_t len)
{
    const uint64_t m = 0xc6a4a7935bd1e995ULL;
    const int r = 47;
    const unsigned char *p = key;
    uint64_t h = seed ^ ((uint64_t)len * m);
    size_t i, nb = len / 8;

    for (i = 0; i < nb; i++, p += 8) {
        uint64_t k = hq_get_le64(p);
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
    }
    switch (len & 7) {
    case 7: h ^= (uint64_t)p[6] << 48; /* fall through */
    case 6: h ^= (uint64_t)p[5] << 40; /* fall through */
    case 5: h ^= (uint64_t)p[4] << 32; /* fall through */
    case 4: h ^= (uint64_t)p[3] << 24; /* fall through */
    case 3: h ^= (uint64_t)p[2] << 16; /* fall through */
    case 2: h ^= (uint64_t)p[1] << 8;  /* fall through */
    case 1:
        h ^= (uint64_t)p[0];
        h *= m;
        break;
    default: break;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

uint64_t hq_fnv1a64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
