/* Standard base64 (RFC 4648, padded), as Go's encoding/json uses for []byte. */
#ifndef MM_UTIL_BASE64_H
#define MM_UTIL_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* Encode; caller frees. */
char *base64_encode(const void *data, size_t len);
/* Strict decode (padding required, no whitespace). Returns NULL on bad input;
 * *outlen gets the length. Caller frees. */
unsigned char *base64_decode(const char *s, size_t len, size_t *outlen);

#endif
