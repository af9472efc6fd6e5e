#include "util/base64.h"

#include <stdint.h>
#include <stdlib.h>

#include "util/xalloc.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Decoding table: 0..63 for alphabet characters, 0xff for everything else. */
static unsigned char decode_char(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned char)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (unsigned char)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (unsigned char)(c - '0' + 52);
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return 0xff;
}

char *base64_encode(const void *data, size_t len)
{
    const unsigned char *in = data;
    size_t out_len = (len + 2) / 3 * 4;
    char *out = xmalloc(out_len + 1);
    char *p = out;
    size_t i = 0;

    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *p++ = alphabet[v >> 18 & 63];
        *p++ = alphabet[v >> 12 & 63];
        *p++ = alphabet[v >> 6 & 63];
        *p++ = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *p++ = alphabet[v >> 18 & 63];
        *p++ = alphabet[v >> 12 & 63];
        *p++ = '=';
        *p++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *p++ = alphabet[v >> 18 & 63];
        *p++ = alphabet[v >> 12 & 63];
        *p++ = alphabet[v >> 6 & 63];
        *p++ = '=';
    }
    *p = '\0';
    return out;
}

/*
 * Strict RFC 4648 decoding: the length must be a multiple of 4, '=' may only
 * appear as one or two final padding characters, and nothing outside the
 * alphabet is accepted (no whitespace, no URL-safe characters). Like Go's
 * base64.StdEncoding, non-zero bits in the last symbol before the padding
 * are ignored rather than rejected.
 */
unsigned char *base64_decode(const char *s, size_t len, size_t *outlen)
{
    if (outlen)
        *outlen = 0;
    if (!s || len % 4 != 0)
        return NULL;

    size_t pad = 0;
    if (len >= 4 && s[len - 1] == '=') {
        pad = 1;
        if (s[len - 2] == '=')
            pad = 2;
    }
    unsigned char *out = xmalloc(len / 4 * 3 + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        size_t n = last ? 4 - pad : 4; /* significant symbols in this quantum */
        uint32_t v = 0;
        for (size_t j = 0; j < 4; j++) {
            unsigned char d = 0;
            if (j < n) {
                d = decode_char((unsigned char)s[i + j]);
                if (d == 0xff)
                    goto fail;
            }
            v = v << 6 | d;
        }
        out[o++] = (unsigned char)(v >> 16);
        if (n > 2)
            out[o++] = (unsigned char)(v >> 8 & 0xff);
        if (n > 3)
            out[o++] = (unsigned char)(v & 0xff);
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;

fail:
    free(out);
    return NULL;
}
