/* sha256.h — SHA-256 (FIPS 180-4), incremental.
 *
 * Used for the checksums in export bundles' manifest.json. None of the linked
 * libraries exposes SHA-256 publicly, so this is a small self-contained one,
 * tested against the FIPS 180-2 example vectors (tests/unit/test_queue_sha256.c).
 */
#ifndef TM_SHA256_H
#define TM_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct tm_sha256_ctx {
    uint32_t h[8];
    uint64_t bytes;      /* total length so far */
    uint8_t block[64];
    size_t fill;         /* bytes in block */
} tm_sha256_ctx;

void tm_sha256_init(tm_sha256_ctx *c);
void tm_sha256_update(tm_sha256_ctx *c, const void *data, size_t len);
void tm_sha256_final(tm_sha256_ctx *c, uint8_t out[32]);
/* One-shot digest. */
void tm_sha256(const void *data, size_t len, uint8_t out[32]);
/* 64 lowercase hex digits + NUL. */
void tm_sha256_hex(const uint8_t digest[32], char out[65]);

#endif
