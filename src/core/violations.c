#include "core/violations.h"

#include <stdarg.h>
#include <stdlib.h>

#include "util/strbuf.h"
#include "util/xalloc.h"

void violations_init(struct violations *v)
{
    v->items = NULL;
    v->len = 0;
    v->cap = 0;
}

void violations_cleanup(struct violations *v)
{
    for (size_t i = 0; i < v->len; i++) {
        free(v->items[i].field);
        free(v->items[i].message);
    }
    free(v->items);
    violations_init(v);
}

static void push(struct violations *v, char *field, char *message)
{
    if (v->len == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 4;
        v->items = xrealloc(v->items, v->cap * sizeof *v->items);
    }
    v->items[v->len].field = field;
    v->items[v->len].message = message;
    v->len++;
}

void violations_add(struct violations *v, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    push(v, xstrdup(field ? field : ""), msg);
}

void violations_extend(struct violations *v, const struct violations *src)
{
    for (size_t i = 0; i < src->len; i++)
        push(v, xstrdup(src->items[i].field), xstrdup(src->items[i].message));
}

bool violations_empty(const struct violations *v)
{
    return v->len == 0;
}

char *violations_join(const struct violations *v)
{
    struct strbuf b;
    strbuf_init(&b, (size_t)-1 / 2);
    for (size_t i = 0; i < v->len; i++) {
        bool ok = strbuf_puts(&b, i ? "; " : "");
        if (v->items[i].field[0])
            ok = ok && strbuf_printf(&b, "%s: ", v->items[i].field);
        ok = ok && strbuf_puts(&b, v->items[i].message);
        (void)ok; /* the limit is effectively unbounded */
    }
    return strbuf_steal(&b);
}

json_t *violations_to_json(const struct violations *v)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < v->len; i++)
        json_array_append_new(arr, json_pack("{s:s,s:s}", "field", v->items[i].field, "message",
                                             v->items[i].message));
    return arr;
}
