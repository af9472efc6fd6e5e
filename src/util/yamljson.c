#include "util/yamljson.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util/strbuf.h"
#include "util/xalloc.h"

const struct yamljson_limits yamljson_default_limits = {
    .max_bytes = 16u << 20,
    .max_depth = 64,
    .max_nodes = 1000000,
    .max_docs = 1000,
};

struct anchor {
    char *name;
    json_t *value;
    size_t nodes;
};

struct frame {
    json_t *value;  /* array or object being filled */
    char *key;      /* pending key for objects, NULL when expecting a key */
    char *anchor;   /* anchor of this collection, registered when it ends */
    size_t nodes_at_start;
};

struct loader {
    const struct yamljson_limits *lim;
    struct frame *stack;
    size_t depth;
    struct anchor *anchors;
    size_t n_anchors;
    size_t nodes;
    json_t *doc;
    struct mm_error *err;
};

static enum mm_status fail_at(struct loader *l, const yaml_mark_t *m, enum mm_status code,
                              const char *fmt, const char *arg) __attribute__((format(printf, 4, 0)));

static enum mm_status fail_at(struct loader *l, const yaml_mark_t *m, enum mm_status code,
                              const char *fmt, const char *arg)
{
    char msg[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(msg, sizeof msg, fmt, arg);
#pragma GCC diagnostic pop
    return mm_error_set(l->err, code, NULL, "line %zu column %zu: %s", m->line + 1, m->column + 1,
                        msg);
}

static bool match_int(const char *s, json_int_t *out)
{
    const char *p = s;
    int base = 10;
    if (p[0] == '0' && p[1] == 'o') {
        base = 8;
        p += 2;
    } else if (p[0] == '0' && p[1] == 'x') {
        base = 16;
        p += 2;
    } else {
        const char *q = (*p == '-' || *p == '+') ? p + 1 : p;
        if (!*q)
            return false;
        for (; *q; q++)
            if (*q < '0' || *q > '9')
                return false;
    }
    if (!*p)
        return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(p, &end, base);
    if (errno || *end)
        return false;
    *out = (json_int_t)v;
    return true;
}

static bool match_float(const char *s, double *out)
{
    /* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9') {
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p)
        return false;
    char *end = NULL;
    double d = strtod(s, &end);
    if (*end || !isfinite(d))
        return false;
    *out = d;
    return true;
}

static json_t *resolve_scalar(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    if (tag && strcmp(tag, YAML_STR_TAG) == 0)
        return json_stringn(v, len);
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE && !tag)
        return json_stringn(v, len);
    if (strlen(v) != len) /* embedded NUL: keep as string */
        return json_stringn(v, len);
    if (len == 0 || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
        !strcmp(v, "NULL"))
        return json_null();
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
        return json_true();
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
        return json_false();
    json_int_t i;
    if (match_int(v, &i))
        return json_integer(i);
    double d;
    if (match_float(v, &d))
        return json_real(d);
    return json_stringn(v, len);
}

static void add_anchor(struct loader *l, const char *name, json_t *value, size_t nodes)
{
    l->anchors = xrealloc(l->anchors, (l->n_anchors + 1) * sizeof *l->anchors);
    l->anchors[l->n_anchors].name = xstrdup(name);
    l->anchors[l->n_anchors].value = json_incref(value);
    l->anchors[l->n_anchors].nodes = nodes;
    l->n_anchors++;
}

static const struct anchor *find_anchor(const struct loader *l, const char *name)
{
    for (size_t i = l->n_anchors; i-- > 0;)
        if (!strcmp(l->anchors[i].name, name))
            return &l->anchors[i];
    return NULL;
}

/* Attach a finished value (takes the reference) to the parent or the document. */
static enum mm_status attach(struct loader *l, json_t *value, const yaml_mark_t *m)
{
    if (l->depth == 0) {
        l->doc = value;
        return MM_OK;
    }
    struct frame *f = &l->stack[l->depth - 1];
    if (json_is_array(f->value)) {
        json_array_append_new(f->value, value);
        return MM_OK;
    }
    if (!f->key) {
        if (!json_is_string(value)) {
            json_decref(value);
            return fail_at(l, m, MM_ERR_TYPE, "%s", "mapping keys must be strings");
        }
        f->key = xstrdup(json_string_value(value));
        json_decref(value);
        return MM_OK;
    }
    if (json_object_get(f->value, f->key)) {
        enum mm_status st = fail_at(l, m, MM_ERR_PARSE, "duplicate mapping key \"%s\"", f->key);
        json_decref(value);
        return st;
    }
    json_object_set_new(f->value, f->key, value);
    free(f->key);
    f->key = NULL;
    return MM_OK;
}

static void loader_reset(struct loader *l)
{
    while (l->depth > 0) {
        struct frame *f = &l->stack[--l->depth];
        json_decref(f->value);
        free(f->key);
        free(f->anchor);
    }
    for (size_t i = 0; i < l->n_anchors; i++) {
        free(l->anchors[i].name);
        json_decref(l->anchors[i].value);
    }
    free(l->anchors);
    l->anchors = NULL;
    l->n_anchors = 0;
    json_decref(l->doc);
    l->doc = NULL;
}

static enum mm_status handle(struct loader *l, const yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        if (++l->nodes > l->lim->max_nodes)
            return fail_at(l, m, MM_ERR_TOO_BIG, "more than %s nodes", "the allowed number of");
        json_t *v = resolve_scalar(ev);
        if (!v)
            return fail_at(l, m, MM_ERR_PARSE, "%s", "scalar is not valid UTF-8");
        if (ev->data.scalar.anchor)
            add_anchor(l, (const char *)ev->data.scalar.anchor, v, 1);
        return attach(l, v, m);
    }
    case YAML_ALIAS_EVENT: {
        const struct anchor *a = find_anchor(l, (const char *)ev->data.alias.anchor);
        if (!a)
            return fail_at(l, m, MM_ERR_PARSE, "unknown alias \"%s\"",
                           (const char *)ev->data.alias.anchor);
        l->nodes += a->nodes;
        if (l->nodes > l->lim->max_nodes)
            return fail_at(l, m, MM_ERR_TOO_BIG, "%s", "too many nodes after alias expansion");
        return attach(l, json_deep_copy(a->value), m);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        if (l->depth >= l->lim->max_depth)
            return fail_at(l, m, MM_ERR_TOO_BIG, "%s", "nesting deeper than allowed");
        if (++l->nodes > l->lim->max_nodes)
            return fail_at(l, m, MM_ERR_TOO_BIG, "%s", "too many nodes");
        l->stack = xrealloc(l->stack, (l->depth + 1) * sizeof *l->stack);
        struct frame *f = &l->stack[l->depth++];
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        const yaml_char_t *anchor = seq ? ev->data.sequence_start.anchor
                                        : ev->data.mapping_start.anchor;
        f->value = seq ? json_array() : json_object();
        f->key = NULL;
        f->anchor = anchor ? xstrdup((const char *)anchor) : NULL;
        f->nodes_at_start = l->nodes;
        return MM_OK;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        struct frame f = l->stack[--l->depth];
        free(f.key);
        if (f.anchor) {
            add_anchor(l, f.anchor, f.value, l->nodes - f.nodes_at_start + 1);
            free(f.anchor);
        }
        return attach(l, f.value, m);
    }
    default:
        return MM_OK;
    }
}

static enum mm_status load_json(const char *data, size_t len, json_t **docs_out,
                                struct mm_error *err)
{
    json_error_t jerr;
    json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!v)
        return mm_error_set(err, MM_ERR_PARSE, NULL, "line %d column %d: %s", jerr.line,
                            jerr.column, jerr.text);
    *docs_out = json_array();
    json_array_append_new(*docs_out, v);
    return MM_OK;
}

enum mm_status yamljson_load(const char *data, size_t len, const struct yamljson_limits *lim,
                             json_t **docs_out, struct mm_error *err)
{
    *docs_out = NULL;
    if (!lim)
        lim = &yamljson_default_limits;
    if (len > lim->max_bytes)
        return mm_error_set(err, MM_ERR_TOO_BIG, NULL,
                            "input is %zu bytes, more than the limit of %zu", len, lim->max_bytes);
    /* Fast path: a single JSON document (jansson caps nesting at 2048 itself). */
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
        i++;
    if (i < len && data[i] == '{') {
        json_error_t jerr;
        json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
        if (v) {
            json_decref(v);
            return load_json(data, len, docs_out, err);
        }
        /* Not plain JSON: it may still be YAML flow style; fall through. */
    }

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return mm_error_set(err, MM_ERR_INTERNAL, NULL, "cannot initialise YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);

    struct loader l = {.lim = lim, .err = err};
    json_t *docs = json_array();
    enum mm_status st = MM_OK;
    bool done = false;
    while (!done && st == MM_OK) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            st = mm_error_set(err, MM_ERR_PARSE, NULL, "line %zu column %zu: %s",
                              parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                              parser.problem ? parser.problem : "invalid YAML");
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            loader_reset(&l);
            break;
        case YAML_DOCUMENT_END_EVENT:
            if (l.doc && !json_is_null(l.doc)) {
                if (json_array_size(docs) >= lim->max_docs) {
                    st = mm_error_set(err, MM_ERR_TOO_BIG, NULL, "more than %zu documents",
                                      lim->max_docs);
                    break;
                }
                json_array_append(docs, l.doc);
            }
            loader_reset(&l);
            break;
        default:
            st = handle(&l, &ev);
            break;
        }
        yaml_event_delete(&ev);
    }
    loader_reset(&l);
    free(l.stack);
    yaml_parser_delete(&parser);
    if (st != MM_OK) {
        json_decref(docs);
        return st;
    }
    *docs_out = docs;
    return MM_OK;
}

/* ---- emitter ---- */

static int write_cb(void *data, unsigned char *buffer, size_t size)
{
    return strbuf_append(data, buffer, size) ? 1 : 0;
}

static bool needs_quotes(const char *s)
{
    if (!*s)
        return true;
    json_int_t i;
    double d;
    if (match_int(s, &i) || match_float(s, &d))
        return true;
    static const char *const words[] = {"~",   "null", "Null",  "NULL",  "true", "True", "TRUE",
                                        "false", "False", "FALSE", "yes",  "no",   "on",   "off",
                                        "y",     "n",     "Yes",   "No",   "On",   "Off"};
    for (size_t k = 0; k < sizeof words / sizeof *words; k++)
        if (!strcmp(s, words[k]))
            return true;
    return false;
}

static int emit_value(yaml_emitter_t *e, const json_t *v)
{
    yaml_event_t ev;
    char buf[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        if (!yaml_emitter_emit(e, &ev))
            return 0;
        const char *k;
        const json_t *c;
        json_object_foreach((json_t *)v, k, c) {
            int quoted = needs_quotes(k);
            yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)k, (int)strlen(k),
                                         !quoted, 1,
                                         quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                                : YAML_ANY_SCALAR_STYLE);
            if (!yaml_emitter_emit(e, &ev) || !emit_value(e, c))
                return 0;
        }
        yaml_mapping_end_event_initialize(&ev);
        return yaml_emitter_emit(e, &ev);
    }
    case JSON_ARRAY: {
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
        if (!yaml_emitter_emit(e, &ev))
            return 0;
        size_t i;
        const json_t *c;
        json_array_foreach(v, i, c) if (!emit_value(e, c)) return 0;
        yaml_sequence_end_event_initialize(&ev);
        return yaml_emitter_emit(e, &ev);
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        int quoted = needs_quotes(s);
        yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)s,
                                     (int)json_string_length(v), !quoted, 1,
                                     quoted               ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                     : strchr(s, '\n') ? YAML_LITERAL_SCALAR_STYLE
                                                          : YAML_ANY_SCALAR_STYLE);
        return yaml_emitter_emit(e, &ev);
    }
    case JSON_INTEGER:
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
        break;
    case JSON_TRUE:
        snprintf(buf, sizeof buf, "true");
        break;
    case JSON_FALSE:
        snprintf(buf, sizeof buf, "false");
        break;
    case JSON_NULL:
        snprintf(buf, sizeof buf, "null");
        break;
    }
    yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)buf, (int)strlen(buf), 1, 0,
                                 YAML_PLAIN_SCALAR_STYLE);
    return yaml_emitter_emit(e, &ev);
}

char *yamljson_dump(const json_t *value)
{
    struct strbuf out;
    strbuf_init(&out, (size_t)1 << 30);
    yaml_emitter_t e;
    yaml_event_t ev;
    yaml_emitter_initialize(&e);
    yaml_emitter_set_output(&e, write_cb, &out);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1);
    int ok = 1;
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    ok = ok && yaml_emitter_emit(&e, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    ok = ok && yaml_emitter_emit(&e, &ev);
    ok = ok && emit_value(&e, value);
    yaml_document_end_event_initialize(&ev, 1);
    ok = ok && yaml_emitter_emit(&e, &ev);
    yaml_stream_end_event_initialize(&ev);
    ok = ok && yaml_emitter_emit(&e, &ev);
    yaml_emitter_delete(&e);
    if (!ok) {
        strbuf_cleanup(&out);
        return NULL;
    }
    return strbuf_steal(&out);
}
