/*
 * Pod annotations under prometheus.metrics.kuma.io/ with Kuma v2.14's rules
 * (pkg/plugins/runtime/k8s/controllers/pod_converter.go, MetricsFor and
 * MetricsAggregateFor; kuma-metrics.md §4.1). Kuma stops at the first error;
 * we keep going so every problem is reported, and an application with an
 * error is left out while the rest still applies. Paths are kept exactly as
 * written, a path without a leading "/" included, as Kuma's GetString and
 * GetStringWithDefault do (what such a path then does is described in
 * podpatch.c, which warns about it).
 */
#include "core/annotations.h"

#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"
#include "util/xalloc.h"

#define AGGREGATE_PREFIX ANNOT_PREFIX "aggregate-"
#define MESH_KEY "kuma.io/mesh"
#define DEFAULT_PATH "/metrics"

void annotations_init(struct annot_metrics *m)
{
    memset(m, 0, sizeof *m);
}

void annotations_cleanup(struct annot_metrics *m)
{
    free(m->path);
    for (size_t i = 0; i < m->n_apps; i++) {
        free(m->apps[i].name);
        free(m->apps[i].path);
        free(m->apps[i].address);
    }
    free(m->apps);
    annotations_init(m);
}

/*
 * Go's strconv.Quote, close enough for error messages: ASCII controls, '"'
 * and '\' are escaped as Go does, invalid UTF-8 bytes become \xNN, and the
 * non-printable code points a pod annotation may plausibly hold (C1
 * controls, Unicode spaces other than ' ', format characters, private use)
 * become \uNNNN / \UNNNNNNNN. Unassigned code points are kept as they are.
 */
static bool rune_printable(uint32_t r)
{
    static const struct {
        uint32_t lo, hi;
    } hidden[] = {
        {0x80, 0xA0},       {0xAD, 0xAD},       {0x0600, 0x0605},   {0x061C, 0x061C},
        {0x06DD, 0x06DD},   {0x070F, 0x070F},   {0x1680, 0x1680},   {0x180E, 0x180E},
        {0x2000, 0x200F},   {0x2028, 0x202F},   {0x205F, 0x2064},   {0x2066, 0x206F},
        {0x3000, 0x3000},   {0xE000, 0xF8FF},   {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},
        {0x110BD, 0x110BD}, {0xE0001, 0xE0001}, {0xE0020, 0xE007F}, {0xF0000, 0x10FFFF},
    };
    for (size_t i = 0; i < sizeof hidden / sizeof *hidden; i++)
        if (r >= hidden[i].lo && r <= hidden[i].hi)
            return false;
    return true;
}

/* Decode one UTF-8 sequence at s (n bytes left); 0 when invalid (Go's RuneError, width 1). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *out)
{
    size_t len;
    uint32_t r, min;
    if (s[0] < 0x80) {
        *out = s[0];
        return 1;
    } else if ((s[0] & 0xE0) == 0xC0) {
        len = 2, r = s[0] & 0x1Fu, min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, r = s[0] & 0x0Fu, min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, r = s[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        r = (r << 6) | (s[i] & 0x3Fu);
    }
    if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
        return 0;
    *out = r;
    return len;
}

static char *go_quote(const char *s)
{
    struct strbuf b;
    size_t n = strlen(s);
    /* At most 4 output bytes per input byte (\xNN), plus the quotes. */
    strbuf_init(&b, 4 * n + 2);
    bool ok = strbuf_puts(&b, "\"");
    const unsigned char *p = (const unsigned char *)s;
    while (n > 0) {
        uint32_t r = 0;
        size_t w = utf8_decode(p, n, &r);
        if (w == 0) {
            ok = ok && strbuf_printf(&b, "\\x%02x", p[0]);
            w = 1;
        } else if (r == '"' || r == '\\') {
            ok = ok && strbuf_printf(&b, "\\%c", (char)r);
        } else if (r >= 0x20 && r < 0x7F) {
            ok = ok && strbuf_append(&b, p, 1);
        } else if (r < 0x80) {
            static const char esc[] = "\a\b\f\n\r\t\v";
            static const char name[] = "abfnrtv";
            const char *e = r ? strchr(esc, (int)r) : NULL;
            if (e)
                ok = ok && strbuf_printf(&b, "\\%c", name[e - esc]);
            else
                ok = ok && strbuf_printf(&b, "\\x%02x", (unsigned)r);
        } else if (rune_printable(r)) {
            ok = ok && strbuf_append(&b, p, w);
        } else if (r < 0x10000) {
            ok = ok && strbuf_printf(&b, "\\u%04x", (unsigned)r);
        } else {
            ok = ok && strbuf_printf(&b, "\\U%08x", (unsigned)r);
        }
        p += w;
        n -= w;
    }
    ok = ok && strbuf_puts(&b, "\"");
    (void)ok; /* the limit fits the worst case */
    return strbuf_steal(&b);
}

/*
 * strconv.ParseUint(s, 10, 32), byte for byte: the first bad character is
 * a syntax error, the first digit that overflows is a range error, whichever
 * comes first. Returns NULL on success, else the reason.
 */
static const char *parse_uint32(const char *s, uint32_t *out)
{
    const uint64_t max = UINT32_MAX;
    uint64_t n = 0;
    if (!*s)
        return "invalid syntax";
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return "invalid syntax";
        n = n * 10 + (uint64_t)(*c - '0');
        if (n > max)
            return "value out of range";
    }
    *out = (uint32_t)n;
    return NULL;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    default:
        return "a string";
    }
}

/*
 * Value of key as a string. *present tells whether the key exists. A
 * non-string value (Kubernetes only stores strings; a hand-written YAML file
 * may not) is reported and returns NULL with *present true, so callers treat
 * it like a value that failed to parse.
 */
static const char *get_string(const json_t *annotations, const char *key, bool *present,
                              struct violations *errs)
{
    const json_t *v = json_object_get(annotations, key);
    *present = v != NULL;
    if (!v)
        return NULL;
    if (!json_is_string(v)) {
        violations_add(errs, key, "annotation value must be a string, not %s", type_name(v));
        return NULL;
    }
    return json_string_value(v);
}

/* Kuma's GetUint32: false on error (already reported). */
static bool get_uint32(const json_t *annotations, const char *key, bool *present, uint32_t *out,
                       struct violations *errs)
{
    const char *s = get_string(annotations, key, present, errs);
    if (!*present)
        return true;
    if (!s)
        return false;
    const char *why = parse_uint32(s, out);
    if (why) {
        char *q = go_quote(s);
        violations_add(errs, "",
                       "failed to parse annotation \"%s\": strconv.ParseUint: parsing %s: %s", key,
                       q, why);
        free(q);
        return false;
    }
    return true;
}

/* Kuma's GetEnabledWithDefault(true, key): false on error (already reported). */
static bool get_enabled(const json_t *annotations, const char *key, bool *enabled,
                        struct violations *errs)
{
    bool present = false;
    const char *s = get_string(annotations, key, &present, errs);
    *enabled = true;
    if (!present)
        return true;
    if (!s)
        return false;
    if (!strcmp(s, "enabled") || !strcmp(s, "true") || !strcmp(s, "yes"))
        return true;
    if (!strcmp(s, "disabled") || !strcmp(s, "false") || !strcmp(s, "no")) {
        *enabled = false;
        return true;
    }
    violations_add(errs, "", "annotation \"%s\" has wrong value \"%s\"", key, s);
    return false;
}

/*
 * The application name of an aggregate key, as the greedy group of
 * ^prometheus\.metrics\.kuma\.io/aggregate-([a-zA-Z0-9-]+)-(port|path|enabled)$
 * captures it: everything between the prefix and the final suffix. Returns
 * the name length, 0 when the key does not match.
 */
static size_t aggregate_name(const char *key)
{
    static const char *const suffixes[] = {"-port", "-path", "-enabled"};
    size_t plen = strlen(AGGREGATE_PREFIX);
    if (strncmp(key, AGGREGATE_PREFIX, plen))
        return 0;
    const char *name = key + plen;
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        size_t slen = strlen(suffixes[i]);
        if (n <= slen || strcmp(name + n - slen, suffixes[i]))
            continue;
        size_t len = n - slen;
        for (size_t j = 0; j < len; j++) {
            char c = name[j];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-'))
                return 0;
        }
        return len;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, de-duplicated application names found in the keys. Caller frees the array and names. */
static char **collect_names(const json_t *annotations, size_t *count)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)annotations, key, v)
    {
        size_t len = aggregate_name(key);
        if (!len)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            names = xrealloc(names, cap * sizeof *names);
        }
        names[n++] = xstrndup(key + strlen(AGGREGATE_PREFIX), len);
    }
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_str);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out > 0 && !strcmp(names[out - 1], names[i]))
            free(names[i]);
        else
            names[out++] = names[i];
    }
    *count = out;
    return names;
}

/* One application (MetricsAggregateFor's loop body). False when it has an error. */
static bool parse_app(const json_t *annotations, const char *name, struct annot_app *app,
                      struct violations *errs)
{
    char *k_enabled = xasprintf(AGGREGATE_PREFIX "%s-enabled", name);
    char *k_path = xasprintf(AGGREGATE_PREFIX "%s-path", name);
    char *k_port = xasprintf(AGGREGATE_PREFIX "%s-port", name);
    char *k_address = xasprintf(AGGREGATE_PREFIX "%s-address", name);
    bool ok = true, enabled = true, present = false;

    memset(app, 0, sizeof *app);
    bool enabled_ok = get_enabled(annotations, k_enabled, &enabled, errs);
    ok = enabled_ok;

    /* GetStringWithDefault: a present empty value stays empty, as in Kuma. */
    const char *path = get_string(annotations, k_path, &present, errs);
    if (present && !path)
        ok = false;

    uint32_t port = 0;
    bool port_present = false;
    if (!get_uint32(annotations, k_port, &port_present, &port, errs))
        ok = false;
    else if (!port_present && enabled_ok && enabled) {
        violations_add(errs, k_port, "port needs to be specified for metrics scraping");
        ok = false;
    }

    const char *address = get_string(annotations, k_address, &present, errs);
    if (present && !address)
        ok = false;

    if (ok) {
        app->name = xstrdup(name);
        app->has_port = port_present;
        app->port = port;
        app->path = xstrdup(path ? path : DEFAULT_PATH);
        app->enabled = enabled;
        app->address = address && *address ? xstrdup(address) : NULL;
    }
    free(k_enabled);
    free(k_path);
    free(k_port);
    free(k_address);
    return ok;
}

bool annotations_parse(const json_t *annotations, struct annot_metrics *out,
                       struct violations *errs)
{
    size_t before = errs->len;
    bool present = false;
    if (!json_is_object(annotations))
        return true;

    /* MetricsFor: path (empty = absent), then port, then the aggregates. */
    const char *path = get_string(annotations, ANNOT_PATH, &present, errs);
    if (path && *path) {
        free(out->path);
        out->path = xstrdup(path);
    }
    uint32_t port = 0;
    if (get_uint32(annotations, ANNOT_PORT, &present, &port, errs) && present) {
        out->has_port = true;
        out->port = port;
    }

    size_t n_names = 0;
    char **names = collect_names(annotations, &n_names);
    if (n_names)
        out->apps = xrealloc(out->apps, (out->n_apps + n_names) * sizeof *out->apps);
    for (size_t i = 0; i < n_names; i++) {
        if (parse_app(annotations, names[i], &out->apps[out->n_apps], errs))
            out->n_apps++;
        free(names[i]);
    }
    free(names);

    out->any = out->path != NULL || out->has_port || out->n_apps > 0;
    return errs->len == before;
}

static const char *string_at(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : NULL;
}

const char *annotations_mesh(const json_t *pod_labels, const json_t *pod_annotations,
                             const json_t *ns_labels, const json_t *ns_annotations)
{
    const char *mesh = string_at(pod_labels, MESH_KEY);
    if (!mesh)
        mesh = string_at(pod_annotations, MESH_KEY);
    if (!mesh)
        mesh = string_at(ns_labels, MESH_KEY);
    if (!mesh)
        mesh = string_at(ns_annotations, MESH_KEY);
    return mesh ? mesh : "default";
}
