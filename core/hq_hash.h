/* hq_hash: the checksums of hookmq's on-disk formats. Two polynomials, both kept for
 * compatibility with files written by earlier versions: CRC-32 (IEEE 802.3, zlib's crc32) over
 * an encoded event (the inner layer of a spool record, hq_event.h), and CRC-32C (Castagnoli)
 * over a whole spool record (gateway/spool.c). Both are used the way zlib's crc32() is: start
 * with crc = 0 and feed each piece with the previous result. Pure and thread-safe. */
#ifndef HQ_HASH_H
#define HQ_HASH_H

#include <stddef.h>
#include <stdint.h>

uint32_t hq_crc32(uint32_t crc, const void *p, size_t n);
uint32_t hq_crc32c(uint32_t crc, const void *p, size_t n);

#endif
