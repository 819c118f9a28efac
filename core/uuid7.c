/* uuid7: UUIDv7 event ids (hq_uuid7, hq_event.h). */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/rand.h>

#include "hq_event.h"
#include "hq_time.h"

/* ------------------------------------------------------------------------------------------
 * UUIDv7 (RFC 9562 section 5.7, monotonic per section 6.2 method 1: a 12-bit counter in
 * rand_a seeded with 11 random bits on each new millisecond; on overflow the timestamp is
 * advanced by one ms, so values never go backwards even if the wall clock does).
 * ---------------------------------------------------------------------------------------- */

static pthread_mutex_t uuid_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t uuid_last_ms;
static unsigned uuid_last_seq;

static void random_fill(unsigned char *p, size_t n)
{
    size_t got = 0;

    if (RAND_bytes(p, (int)n) == 1) return;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r <= 0) break;
        got += (size_t)r;
    }
    /* If both fail the bytes keep whatever they held; uniqueness within the process still
     * holds through the (ms, counter) pair. */
}

void hq_uuid7(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    int64_t now = hq_now_ms();
    uint64_t ms;
    unsigned seq;
    size_t i, o = 0;

    memset(b, 0, sizeof(b));
    random_fill(b, sizeof(b));
    if (now < 0) now = 0;
    pthread_mutex_lock(&uuid_mu);
    if ((uint64_t)now > uuid_last_ms) {
        ms = (uint64_t)now;
        seq = ((unsigned)b[6] << 8 | b[7]) & 0x7FF;
    } else {
        ms = uuid_last_ms;
        seq = uuid_last_seq + 1;
        if (seq > 0xFFF) {
            ms++;
            seq = ((unsigned)b[6] << 8 | b[7]) & 0x7FF;
        }
    }
    uuid_last_ms = ms;
    uuid_last_seq = seq;
    pthread_mutex_unlock(&uuid_mu);

    ms &= 0xFFFFFFFFFFFFull;
    for (i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    b[6] = (unsigned char)(0x70 | (seq >> 8));
    b[7] = (unsigned char)(seq & 0xFF);
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}
