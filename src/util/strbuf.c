#include "util/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void strbuf_init(struct strbuf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

void strbuf_cleanup(struct strbuf *b)
{
    free(b->data);
    strbuf_init(b, b->limit);
}

bool strbuf_append(struct strbuf *b, const void *data, size_t n)
{
    if (n > b->limit || b->len > b->limit - n)
        return false;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool strbuf_puts(struct strbuf *b, const char *s)
{
    return strbuf_append(b, s, strlen(s));
}

bool strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    bool ok = strbuf_puts(b, s);
    free(s);
    return ok;
}

char *strbuf_steal(struct strbuf *b)
{
    char *p = b->data ? b->data : xstrdup("");
    strbuf_init(b, b->limit);
    return p;
}

const char *strbuf_str(const struct strbuf *b)
{
    return b->data ? b->data : "";
}
