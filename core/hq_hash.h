/* hq_hash: the checksums and hashes of hookmq's on-disk formats. Pure and thread-safe.
 *
 * Two CRC polynomials, both kept for compatibility with files written by earlier versions:
 * CRC-32 (IEEE 802.3, zlib's crc32) over an encoded event (the inner layer of a spool record,
 * hq_event.h), and CRC-32C (Castagnoli) over a whole spool record (gateway/spool.c). Both are
 * used the way zlib's crc32() is: start with crc = 0 and feed each piece with the previous
 * result.
 *
 * Two 64-bit hashes of the archive index (core/hq__archive.h): MurmurHash64A for the ids and
 * the in-memory tables, FNV-1a 64 for the index file's checksum. Their values are part of the
 * file format: never change them. */
#ifndef HQ_HASH_H
#define HQ_HASH_H

#include <stddef.h>
#include <stdint.h>

uint32_t hq_crc32(uint32_t crc, const void *p, size_t n);
uint32_t hq_crc32c(uint32_t crc, const void *p, size_t n);

/* MurmurHash64A of p[0..n) with seed (the reference algorithm, little-endian reads). */
uint64_t hq_murmur64a(uint64_t seed, const void *p, size_t n);
/* FNV-1a 64 of p[0..n), continuing from h: start with HQ_FNV1A64_INIT. */
uint64_t hq_fnv1a64(uint64_t h, const void *p, size_t n);
#define HQ_FNV1A64_INIT 0xcbf29ce484222325ULL

#endif
