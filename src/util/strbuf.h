/*
 * A growable byte buffer with a hard size cap (curl's dynbuf idea): every
 * buffer that holds outside input is created with the most it may ever hold.
 */
#ifndef MM_UTIL_STRBUF_H
#define MM_UTIL_STRBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct strbuf {
    char *data;    /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;    /* allocated */
    size_t limit;  /* most bytes the buffer may hold (excluding the NUL) */
};

/* Initialise an empty buffer that may grow to at most limit bytes. */
void strbuf_init(struct strbuf *b, size_t limit);
void strbuf_cleanup(struct strbuf *b);
/* Append; returns false (and leaves the buffer unchanged) past the limit. */
bool strbuf_append(struct strbuf *b, const void *data, size_t n) __attribute__((warn_unused_result));
bool strbuf_puts(struct strbuf *b, const char *s) __attribute__((warn_unused_result));
bool strbuf_printf(struct strbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
/* Hand the contents to the caller (never NULL) and reset the buffer. */
char *strbuf_steal(struct strbuf *b);
const char *strbuf_str(const struct strbuf *b);

#endif
