/*
 * SHA-256 (FIPS 180-4). Written here, not taken from OpenSSL, because core/
 * and util/ must not link OpenSSL (the I/O boundary holds by construction)
 * and core needs a stable content hash for the applied-config annotation.
 * Checked against the NIST test vectors in tests/unit/test_util.c.
 */
#ifndef MM_UTIL_SHA256_H
#define MM_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

void sha256(const void *data, size_t len, uint8_t out[32]);
/* Lower-case hex of the digest into out (65 bytes incl. NUL). */
void sha256_hex(const void *data, size_t len, char out[65]);

#endif
