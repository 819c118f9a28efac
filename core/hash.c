/* hash: CRC-32 and CRC-32C, table-driven (hq_hash.h). OpenSSL has no public CRC and zlib is
 * not otherwise a dependency; these 40 lines are cheaper than a new library. */
#include <pthread.h>

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
