/*
 * MeshMetric: defaults and validation (kuma-metrics.md §2, §10).
 *
 * Validation runs in the two stages a MeshMetric meets on Kubernetes:
 *
 * 1. The API server's structural schema check (the CRD's openAPIV3Schema):
 *    JSON types, enums, required fields. Messages and paths follow the
 *    apiserver (field.ErrorList from kube-openapi), e.g.
 *      spec.default.backends[0].type: Unsupported value: "Foo": supported values: "Prometheus",
 * "OpenTelemetry" spec.default.applications[0].port: Required value
 *      spec.default.backends[0].prometheus.port: Invalid value: "string":
 * spec.default.backends[0].prometheus.port in body must be of type integer: "string" Choices where
 * the apiserver has no single answer: null in an object field is treated as absent (the apiserver
 * prunes nulls of non-nullable fields before defaulting); a null array item is a type error; an
 *    integral floating-point number counts as an integer; a negative port is
 *    reported as a schema minimum ("should be greater than or equal to 0")
 *    because Kuma's uint32 cannot hold it. Unknown fields are not errors (the
 *    apiserver prunes them silently); they are returned as warnings in the
 *    apiserver's own words ("unknown field \"spec.x\""), and kept in the object.
 *    The appendProfiles name enum is left to Kuma's validator so its message
 *    ("unrecognized profile name ...") is the one users see.
 *    When this stage finds errors, the second stage does not run: the API
 *    server rejects the object before any webhook sees it.
 *
 * 2. Kuma's validator (pkg/plugins/policies/meshmetric/api/v1alpha1/
 *    validator.go and ValidateTargetRef, v2.14.3) with its exact messages and
 *    its quirky paths ("spec.default.applications.application[0]"), reading
 *    the JSON with Go's zero-value semantics (a missing string is "").
 *    Schema defaults count as applied (a Prometheus backend without a port
 *    has port 5670).
 *
 * Operator decisions on top (kuma-metrics.md §10): an OpenTelemetry endpoint
 * written as an http(s) URL with nothing but host:port is rewritten to
 * host:port with a warning; the Kuma 2.6 field sidecar.regex is accepted with
 * a warning, and cannot be combined with sidecar.profiles; ActiveMTLSBackend
 * is accepted with a warning that it serves plain HTTP.
 */
#include "core/meshmetric.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/regex.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define DEFAULT_PROMETHEUS_PORT 5670
#define DEFAULT_PATH "/metrics"
#define MAX_UNKNOWN_WARNINGS 10

/* ---- field paths ---------------------------------------------------------- */

struct path {
    char *s;
    size_t len;
    size_t cap;
};

static void path_init(struct path *p, const char *root)
{
    p->cap = 128;
    p->s = xmalloc(p->cap);
    p->len = 0;
    p->s[0] = '\0';
    if (root) {
        size_t n = strlen(root);
        p->s = xrealloc(p->s, p->cap = n + 128);
        memcpy(p->s, root, n + 1);
        p->len = n;
    }
}

static void path_cleanup(struct path *p)
{
    free(p->s);
    p->s = NULL;
}

static void path_append(struct path *p, const char *s, size_t n)
{
    if (p->len + n + 1 > p->cap) {
        p->cap = (p->len + n + 1) * 2;
        p->s = xrealloc(p->s, p->cap);
    }
    memcpy(p->s + p->len, s, n);
    p->len += n;
    p->s[p->len] = '\0';
}

/* Append ".name" (or "name" at the root); returns the length to restore. */
static size_t path_field(struct path *p, const char *name)
{
    size_t old = p->len;
    if (p->len)
        path_append(p, ".", 1);
    path_append(p, name, strlen(name));
    return old;
}

static size_t path_index(struct path *p, size_t i)
{
    char buf[32];
    size_t old = p->len;
    int n = snprintf(buf, sizeof buf, "[%zu]", i);
    path_append(p, buf, (size_t)n);
    return old;
}

/* Append ["key"] quoted as Go's %q does (Kuma's PathBuilder.Key). */
static size_t path_key(struct path *p, const char *key)
{
    size_t old = p->len;
    path_append(p, "[\"", 2);
    for (const unsigned char *c = (const unsigned char *)key; *c; c++) {
        char buf[8];
        const char *e = NULL;
        switch (*c) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\a':
            e = "\\a";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        case '\v':
            e = "\\v";
            break;
        default:
            if (*c < 0x20 || *c == 0x7f) {
                snprintf(buf, sizeof buf, "\\x%02x", *c);
                e = buf;
            }
            break;
        }
        if (e)
            path_append(p, e, strlen(e));
        else
            path_append(p, (const char *)c, 1);
    }
    path_append(p, "\"]", 2);
    return old;
}

static void path_reset(struct path *p, size_t len)
{
    p->len = len;
    p->s[len] = '\0';
}

/* ---- JSON helpers ---------------------------------------------------------- */

/* The member, or NULL when absent or JSON null (null fields are pruned). */
static json_t *member(const json_t *obj, const char *key)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_null(v) ? NULL : v;
}

static json_t *member_object(const json_t *obj, const char *key)
{
    json_t *v = member(obj, key);
    return json_is_object(v) ? v : NULL;
}

static json_t *member_array(const json_t *obj, const char *key)
{
    json_t *v = member(obj, key);
    return json_is_array(v) ? v : NULL;
}

/* Go zero-value read of a string field: "" when absent or not a string. */
static const char *member_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(member(obj, key));
    return s ? s : "";
}

/* A map is "set" in Kuma's sense when it has at least one entry. */
static bool map_set(const json_t *obj, const char *key)
{
    const json_t *m = member_object(obj, key);
    return m && json_object_size(m) > 0;
}

/* The JSON type name kube-openapi reports. */
static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* Integer value of an integer, or of an integral real (clamped); false otherwise. */
static bool integral_value(const json_t *v, double *out)
{
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (isfinite(d) && d == floor(d)) {
            *out = d;
            return true;
        }
    }
    return false;
}

/* ---- stage 1: the CRD structural schema ------------------------------------- */

enum node_type { N_OBJECT, N_ARRAY, N_STRING, N_INTEGER, N_BOOLEAN, N_STRING_MAP };

struct prop;

struct node {
    enum node_type type;
    const struct prop *props; /* N_OBJECT: NULL-name terminated */
    const struct node *items; /* N_ARRAY */
    const char *const *enums; /* N_STRING: NULL terminated, or NULL for any */
    bool uint;                /* N_INTEGER: minimum 0 (Go uint32) */
};

struct prop {
    const char *name;
    const struct node *node;
    bool required;
};

static const struct node n_string = {.type = N_STRING};
static const struct node n_uint = {.type = N_INTEGER, .uint = true};
static const struct node n_bool = {.type = N_BOOLEAN};
static const struct node n_string_map = {.type = N_STRING_MAP};

static const char *const kind_enum[] = {"Mesh",
                                        "MeshSubset",
                                        "MeshGateway",
                                        "MeshService",
                                        "MeshExternalService",
                                        "MeshMultiZoneService",
                                        "MeshServiceSubset",
                                        "MeshHTTPRoute",
                                        "Dataplane",
                                        NULL};
static const char *const proxy_type_enum[] = {"Sidecar", "Gateway", NULL};
static const char *const selector_type_enum[] = {"Prefix", "Regex", "Exact", "Contains", NULL};
static const char *const backend_type_enum[] = {"Prometheus", "OpenTelemetry", NULL};
static const char *const tls_mode_enum[] = {"Disabled", "ProvidedTLS", "ActiveMTLSBackend", NULL};

static const struct node n_kind = {.type = N_STRING, .enums = kind_enum};
static const struct node n_proxy_type = {.type = N_STRING, .enums = proxy_type_enum};
static const struct node n_proxy_types = {.type = N_ARRAY, .items = &n_proxy_type};

static const struct prop target_ref_props[] = {
    {"kind", &n_kind, true},
    {"labels", &n_string_map, false},
    {"mesh", &n_string, false},
    {"name", &n_string, false},
    {"namespace", &n_string, false},
    {"proxyTypes", &n_proxy_types, false},
    {"sectionName", &n_string, false},
    {"tags", &n_string_map, false},
    {NULL, NULL, false},
};
static const struct node n_target_ref = {.type = N_OBJECT, .props = target_ref_props};

static const struct node n_selector_type = {.type = N_STRING, .enums = selector_type_enum};
static const struct prop selector_props[] = {
    {"match", &n_string, true},
    {"type", &n_selector_type, true},
    {NULL, NULL, false},
};
static const struct node n_selector = {.type = N_OBJECT, .props = selector_props};
static const struct node n_selectors = {.type = N_ARRAY, .items = &n_selector};

/* name: the enum is checked by Kuma's validator, with Kuma's message. */
static const struct prop profile_props[] = {
    {"name", &n_string, true},
    {NULL, NULL, false},
};
static const struct node n_profile = {.type = N_OBJECT, .props = profile_props};
static const struct node n_profiles_list = {.type = N_ARRAY, .items = &n_profile};

static const struct prop profiles_props[] = {
    {"appendProfiles", &n_profiles_list, false},
    {"exclude", &n_selectors, false},
    {"include", &n_selectors, false},
    {NULL, NULL, false},
};
static const struct node n_profiles = {.type = N_OBJECT, .props = profiles_props};

static const struct prop sidecar_props[] = {
    {"includeUnused", &n_bool, false},
    {"profiles", &n_profiles, false},
    {"regex", &n_string, false}, /* Kuma 2.6 shape, accepted by the operator (§10) */
    {NULL, NULL, false},
};
static const struct node n_sidecar = {.type = N_OBJECT, .props = sidecar_props};

static const struct prop application_props[] = {
    {"address", &n_string, false}, {"name", &n_string, false}, {"path", &n_string, false},
    {"port", &n_uint, true},       {NULL, NULL, false},
};
static const struct node n_application = {.type = N_OBJECT, .props = application_props};
static const struct node n_applications = {.type = N_ARRAY, .items = &n_application};

static const struct node n_tls_mode = {.type = N_STRING, .enums = tls_mode_enum};
static const struct prop tls_props[] = {
    {"mode", &n_tls_mode, false}, /* required in the CRD, but defaulted first */
    {NULL, NULL, false},
};
static const struct node n_tls = {.type = N_OBJECT, .props = tls_props};

static const struct prop prometheus_props[] = {
    {"clientId", &n_string, false}, {"path", &n_string, false}, {"port", &n_uint, false},
    {"tls", &n_tls, false},         {NULL, NULL, false},
};
static const struct node n_prometheus = {.type = N_OBJECT, .props = prometheus_props};

static const struct prop backend_ref_props[] = {
    {"kind", &n_string, false},
    {"labels", &n_string_map, false},
    {NULL, NULL, false},
};
static const struct node n_backend_ref = {.type = N_OBJECT, .props = backend_ref_props};

static const struct prop otel_props[] = {
    {"backendRef", &n_backend_ref, false},
    {"endpoint", &n_string, false},
    {"refreshInterval", &n_string, false},
    {NULL, NULL, false},
};
static const struct node n_otel = {.type = N_OBJECT, .props = otel_props};

static const struct node n_backend_type = {.type = N_STRING, .enums = backend_type_enum};
static const struct prop backend_props[] = {
    {"openTelemetry", &n_otel, false},
    {"prometheus", &n_prometheus, false},
    {"type", &n_backend_type, true},
    {NULL, NULL, false},
};
static const struct node n_backend = {.type = N_OBJECT, .props = backend_props};
static const struct node n_backends = {.type = N_ARRAY, .items = &n_backend};

static const struct prop conf_props[] = {
    {"applications", &n_applications, false},
    {"backends", &n_backends, false},
    {"sidecar", &n_sidecar, false},
    {NULL, NULL, false},
};
static const struct node n_conf = {.type = N_OBJECT, .props = conf_props};

static const struct prop spec_props[] = {
    {"default", &n_conf, false},
    {"targetRef", &n_target_ref, false},
    {NULL, NULL, false},
};
static const struct node n_spec = {.type = N_OBJECT, .props = spec_props};

struct schema_ctx {
    struct violations *errs;
    struct violations *warnings;
    struct path path;
    size_t unknown; /* unknown fields seen */
};

static const struct prop *find_prop(const struct node *n, const char *name)
{
    for (const struct prop *p = n->props; p && p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static void type_error(struct schema_ctx *c, const json_t *v, const char *want)
{
    const char *got = json_type_name(v);
    violations_add(c->errs, c->path.s,
                   "Invalid value: \"%s\": %s in body must be of type %s: \"%s\"", got, c->path.s,
                   want, got);
}

static void enum_error(struct schema_ctx *c, const char *value, const char *const *enums)
{
    struct strbuf b;
    strbuf_init(&b, (size_t)-1 / 2);
    bool ok = true;
    for (const char *const *e = enums; *e && ok; e++)
        ok = strbuf_printf(&b, "%s\"%s\"", e == enums ? "" : ", ", *e);
    violations_add(c->errs, c->path.s, "Unsupported value: \"%s\": supported values: %s", value,
                   strbuf_str(&b));
    strbuf_cleanup(&b);
}

static void unknown_field(struct schema_ctx *c, const char *key)
{
    c->unknown++;
    if (!c->warnings || c->unknown > MAX_UNKNOWN_WARNINGS)
        return;
    size_t old = path_field(&c->path, key);
    violations_add(c->warnings, "", "unknown field \"%s\"", c->path.s);
    path_reset(&c->path, old);
}

static void check_node(struct schema_ctx *c, const struct node *n, const json_t *v);

static void check_object(struct schema_ctx *c, const struct node *n, const json_t *v)
{
    for (const struct prop *p = n->props; p->name; p++) {
        if (p->required && !member(v, p->name)) {
            size_t old = path_field(&c->path, p->name);
            violations_add(c->errs, c->path.s, "Required value");
            path_reset(&c->path, old);
        }
    }
    const char *key;
    json_t *child;
    json_object_foreach((json_t *)v, key, child)
    {
        const struct prop *p = find_prop(n, key);
        if (!p) {
            unknown_field(c, key);
            continue;
        }
        if (json_is_null(child))
            continue; /* pruned: the same as absent */
        size_t old = path_field(&c->path, key);
        check_node(c, p->node, child);
        path_reset(&c->path, old);
    }
}

static void check_node(struct schema_ctx *c, const struct node *n, const json_t *v)
{
    switch (n->type) {
    case N_OBJECT:
        if (!json_is_object(v)) {
            type_error(c, v, "object");
            return;
        }
        check_object(c, n, v);
        return;
    case N_STRING_MAP: {
        if (!json_is_object(v)) {
            type_error(c, v, "object");
            return;
        }
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)v, key, child)
        {
            if (json_is_null(child) || json_is_string(child))
                continue;
            size_t old = path_field(&c->path, key);
            type_error(c, child, "string");
            path_reset(&c->path, old);
        }
        return;
    }
    case N_ARRAY: {
        if (!json_is_array(v)) {
            type_error(c, v, "array");
            return;
        }
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            size_t old = path_index(&c->path, i);
            check_node(c, n->items, item);
            path_reset(&c->path, old);
        }
        return;
    }
    case N_STRING:
        if (!json_is_string(v)) {
            type_error(c, v, "string");
            return;
        }
        if (n->enums) {
            for (const char *const *e = n->enums; *e; e++)
                if (strcmp(*e, json_string_value(v)) == 0)
                    return;
            enum_error(c, json_string_value(v), n->enums);
        }
        return;
    case N_INTEGER: {
        double d;
        if (!integral_value(v, &d)) {
            type_error(c, v, "integer");
            return;
        }
        if (n->uint && d < 0) {
            if (json_is_integer(v))
                violations_add(c->errs, c->path.s,
                               "Invalid value: %" JSON_INTEGER_FORMAT
                               ": %s in body should be greater than or equal to 0",
                               json_integer_value(v), c->path.s);
            else
                violations_add(c->errs, c->path.s,
                               "Invalid value: %g: %s in body should be greater than or equal to 0",
                               d, c->path.s);
        }
        return;
    }
    case N_BOOLEAN:
        if (!json_is_boolean(v))
            type_error(c, v, "boolean");
        return;
    }
}

/* ---- stage 2: Kuma's validator ------------------------------------------------ */

struct kuma_ctx {
    struct violations *errs;
    struct violations *warnings; /* may be NULL */
    struct path path;
};

static void kuma_add(struct kuma_ctx *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void kuma_add(struct kuma_ctx *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    violations_add(k->errs, k->path.s, "%s", msg);
    free(msg);
}

/* Add a violation at the current path plus ".sub". */
static void kuma_add_at(struct kuma_ctx *k, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void kuma_add_at(struct kuma_ctx *k, const char *sub, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    size_t old = path_field(&k->path, sub);
    violations_add(k->errs, k->path.s, "%s", msg);
    path_reset(&k->path, old);
    free(msg);
}

static void warn(struct kuma_ctx *k, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void warn(struct kuma_ctx *k, const char *field, const char *fmt, ...)
{
    if (!k->warnings)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    violations_add(k->warnings, field, "%s", msg);
    free(msg);
}

static bool chars_in(const char *s, const char *extra, bool upper)
{
    for (; *s; s++) {
        char c = *s;
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (upper && c >= 'A' && c <= 'Z') ||
            (c && strchr(extra, c)))
            continue;
        return false;
    }
    return true;
}

/* Kuma's NameCharacterSet: ^[0-9a-z.\-_]*$ */
static bool valid_name(const char *s)
{
    return chars_in(s, ".-_", false);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of obj, sorted bytewise (Go's sort.Strings). Caller frees the array only. */
static const char **sorted_keys(const json_t *obj, size_t *n)
{
    *n = json_object_size(obj);
    const char **keys = xcalloc(*n ? *n : 1, sizeof *keys);
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) keys[i++] = key;
    qsort(keys, *n, sizeof *keys, cmp_str);
    return keys;
}

/*
 * ValidateTags (selector == false) / ValidateSelector (selector == true) on
 * targetRef.tags, rooted at the current path + "tags".
 */
static void validate_tags(struct kuma_ctx *k, const json_t *tags, bool selector)
{
    if (!json_is_object(tags))
        return;
    size_t n;
    const char **keys = sorted_keys(tags, &n);
    size_t base = path_field(&k->path, "tags");
    for (size_t i = 0; i < n; i++) {
        const char *key = keys[i];
        const char *value = json_string_value(json_object_get(tags, key));
        if (!value)
            value = "";
        if (!*key)
            kuma_add(k, "tag name must be non-empty");
        size_t old = path_key(&k->path, key);
        if (!chars_in(key, ".-_:/", true))
            kuma_add(k, "tag name must consist of alphanumeric characters, dots, dashes, slashes "
                        "and underscores");
        if (!*value)
            kuma_add(k, "tag value must be non-empty");
        if (selector) {
            if (!(strcmp(value, "*") == 0 || chars_in(value, ".-_:/", true)))
                kuma_add(k, "tag value must consist of alphanumeric characters, dots, dashes, "
                            "slashes and underscores or be \"*\"");
        } else if (!chars_in(value, ".-_:", true)) {
            kuma_add(k, "tag value must consist of alphanumeric characters, dots, dashes and "
                        "underscores");
        }
        path_reset(&k->path, old);
    }
    path_reset(&k->path, base);
    free(keys);
}

static void disallowed(struct kuma_ctx *k, const json_t *ref, const char *field, const char *kind)
{
    const json_t *v = member(ref, field);
    bool set = false;
    if (json_is_string(v))
        set = json_string_length(v) > 0;
    else if (json_is_object(v))
        set = json_object_size(v) > 0;
    else if (json_is_array(v))
        set = json_array_size(v) > 0;
    if (set)
        kuma_add_at(k, field, "must not be set with kind %s", kind);
}

static void required(struct kuma_ctx *k, const json_t *ref, const char *field, const char *kind)
{
    if (!*member_str(ref, field))
        kuma_add_at(k, field, "must be set when kind is %s", kind);
}

static void check_name(struct kuma_ctx *k, const json_t *ref)
{
    if (!valid_name(member_str(ref, "name")))
        kuma_add_at(k, "name",
                    "invalid characters: must consist of lower case alphanumeric characters, "
                    "'-', '.' and '_'.");
}

static const char *const system_kinds[] = {
    "Mesh", "MeshSubset", "MeshService", "MeshServiceSubset", "MeshGateway", "Dataplane", NULL};
static const char *const workload_kinds[] = {"Mesh",      "MeshSubset",        "MeshService",
                                             "Dataplane", "MeshServiceSubset", NULL};

/* mesh.ValidateTargetRef (v2.14.3) with MeshMetric's options; path at spec.targetRef. */
static void validate_target_ref(struct kuma_ctx *k, const json_t *ref, bool system_role)
{
    const char *kind = member_str(ref, "kind");
    if (!*kind) {
        kuma_add_at(k, "kind", "must be defined");
        return;
    }
    bool supported = false;
    for (const char *const *s = system_role ? system_kinds : workload_kinds; *s; s++)
        supported = supported || strcmp(*s, kind) == 0;
    if (!supported) {
        kuma_add_at(k, "kind", "value '%s' is not supported", kind);
        return;
    }
    bool has_labels = map_set(ref, "labels");
    const char *name = member_str(ref, "name");
    const char *ns = member_str(ref, "namespace");

    if (strcmp(kind, "Mesh") == 0) {
        if (*name)
            kuma_add_at(k, "name", "using name with kind Mesh is not yet supported");
        disallowed(k, ref, "mesh", kind);
        disallowed(k, ref, "tags", kind);
        disallowed(k, ref, "labels", kind);
        disallowed(k, ref, "namespace", kind);
        disallowed(k, ref, "sectionName", kind);
        const json_t *pt = member(ref, "proxyTypes");
        if (json_is_array(pt) && json_array_size(pt) == 0)
            kuma_add_at(k, "proxyTypes", "must be undefined or have at least one element");
    } else if (strcmp(kind, "Dataplane") == 0) {
        disallowed(k, ref, "tags", kind);
        disallowed(k, ref, "mesh", kind);
        disallowed(k, ref, "proxyTypes", kind);
        if (has_labels && (*name || *ns))
            kuma_add_at(k, "labels", "either labels or name and namespace must be specified");
        /* MeshMetric is not an inbound policy. */
        if (*member_str(ref, "sectionName"))
            kuma_add_at(k, "sectionName", "can only be used with inbound policies");
    } else if (strcmp(kind, "MeshSubset") == 0) {
        disallowed(k, ref, "name", kind);
        disallowed(k, ref, "mesh", kind);
        validate_tags(k, member_object(ref, "tags"), false);
        disallowed(k, ref, "labels", kind);
        disallowed(k, ref, "namespace", kind);
        disallowed(k, ref, "sectionName", kind);
    } else if (strcmp(kind, "MeshService") == 0) {
        check_name(k, ref);
        disallowed(k, ref, "mesh", kind);
        disallowed(k, ref, "tags", kind);
        disallowed(k, ref, "proxyTypes", kind);
        if (!has_labels && !*name)
            kuma_add(k, "name or labels must be set when kind is MeshService");
        if (has_labels && (*name || *ns))
            kuma_add_at(k, "labels", "either labels or name and namespace must be specified");
        if (has_labels && *member_str(ref, "sectionName"))
            kuma_add_at(k, "sectionName", "sectionName should not be combined with labels");
    } else { /* MeshServiceSubset, MeshGateway */
        required(k, ref, "name", kind);
        check_name(k, ref);
        disallowed(k, ref, "mesh", kind);
        disallowed(k, ref, "proxyTypes", kind);
        validate_tags(k, member_object(ref, "tags"), true);
        /* MeshGateway listener tags: allowed for the system role, the only
         * role where MeshGateway is supported at all. */
        disallowed(k, ref, "labels", kind);
        disallowed(k, ref, "namespace", kind);
        disallowed(k, ref, "sectionName", kind);
    }
}

/* validators.ValidatePort on a JSON port; absent_value is what "absent" means. */
static bool port_valid(const json_t *v, double absent_value)
{
    double d = absent_value;
    if (v && !integral_value(v, &d))
        d = 0; /* Go zero value of a field that did not decode */
    return d >= 1 && d <= 65535;
}

static void validate_selectors(struct kuma_ctx *k, const json_t *list, const char *name)
{
    size_t base = path_field(&k->path, name);
    size_t i;
    json_t *sel;
    json_array_foreach(list, i, sel)
    {
        size_t old = path_index(&k->path, i);
        const char *type = member_str(sel, "type");
        if (strcmp(type, "Regex") == 0) {
            if (!regex_re2_valid(member_str(sel, "match"), NULL, 0))
                kuma_add_at(k, "match", "invalid regex");
        } else if (strcmp(type, "Prefix") != 0 && strcmp(type, "Exact") != 0 &&
                   strcmp(type, "Contains") != 0) {
            kuma_add_at(k, "type",
                        "unrecognized type '%s' - 'Regex', 'Prefix', 'Exact' are supported", type);
        }
        path_reset(&k->path, old);
    }
    path_reset(&k->path, base);
}

/* Path at spec.default.sidecar. */
static void validate_sidecar(struct kuma_ctx *k, const json_t *sidecar)
{
    const json_t *regex = member(sidecar, "regex");
    const json_t *profiles = member_object(sidecar, "profiles");
    if (regex) { /* Kuma 2.6 */
        if (!regex_re2_valid(member_str(sidecar, "regex"), NULL, 0))
            kuma_add_at(k, "regex", "invalid regex");
        if (profiles)
            kuma_add(k, "regex (Kuma 2.6) and profiles cannot be combined; use profiles");
        else
            warn(k, "spec.default.sidecar.regex",
                 "is the Kuma 2.6 field (deprecated); use profiles.include with type Regex");
    }
    if (!profiles)
        return;
    size_t old = path_field(&k->path, "profiles");
    const json_t *list;
    if ((list = member_array(profiles, "exclude")))
        validate_selectors(k, list, "exclude");
    if ((list = member_array(profiles, "include")))
        validate_selectors(k, list, "include");
    if ((list = member_array(profiles, "appendProfiles"))) {
        size_t base = path_field(&k->path, "appendProfiles");
        size_t i;
        json_t *prof;
        json_array_foreach(list, i, prof)
        {
            const char *name = member_str(prof, "name");
            if (strcmp(name, "All") && strcmp(name, "None") && strcmp(name, "Basic")) {
                size_t o = path_index(&k->path, i);
                kuma_add_at(k, "name",
                            "unrecognized profile name '%s' - 'All', 'None', 'Basic' are supported",
                            name);
                path_reset(&k->path, o);
            }
        }
        path_reset(&k->path, base);
    }
    path_reset(&k->path, old);
}

/*
 * Go's net.SplitHostPort: true when s splits; host and port may be empty
 * ("host:" and ":port" split fine).
 */
static bool split_host_port(const char *s, size_t *hostlen, size_t *portlen)
{
    const char *colon = strrchr(s, ':');
    if (!colon)
        return false; /* missing port in address */
    size_t i = (size_t)(colon - s), j = 0, k = 0;
    size_t len = strlen(s);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return false; /* missing ']' in address */
        size_t end = (size_t)(close - s);
        if (end + 1 == len)
            return false; /* missing port */
        if (end + 1 != i)
            return false; /* too many colons, or missing port */
        *hostlen = end - 1;
        j = 1;
        k = end + 1;
    } else {
        if (memchr(s, ':', i))
            return false; /* too many colons in address */
        *hostlen = i;
    }
    if (strchr(s + j, '['))
        return false; /* unexpected '[' in address */
    if (strchr(s + k, ']'))
        return false; /* unexpected ']' in address */
    *portlen = len - i - 1;
    return true;
}

/*
 * Operator decision (§10): "http(s)://host:port" (optionally with a final
 * "/") becomes "host:port". Returns a new string, or NULL when the value is
 * not such a URL.
 */
static char *endpoint_from_url(const char *ep)
{
    size_t skip;
    if (strncasecmp(ep, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(ep, "https://", 8) == 0)
        skip = 8;
    else
        return NULL;
    const char *rest = ep + skip;
    size_t len = strlen(rest);
    if (len && rest[len - 1] == '/')
        len--;
    if (len == 0 || strcspn(rest, "/?#@") < len)
        return NULL;
    char *hp = xstrndup(rest, len);
    size_t hostlen, portlen;
    if (!split_host_port(hp, &hostlen, &portlen) || hostlen == 0 || portlen == 0) {
        free(hp);
        return NULL;
    }
    return hp;
}

/* Path at spec.default.backends.backend[i]; index is i. */
static void validate_otel(struct kuma_ctx *k, json_t *otel, size_t index)
{
    json_t *endpoint = member(otel, "endpoint");
    const char *ep = json_string_value(endpoint);
    if (ep && *ep) {
        char *hp = endpoint_from_url(ep);
        if (hp) {
            char field[96];
            snprintf(field, sizeof field, "spec.default.backends[%zu].openTelemetry.endpoint",
                     index);
            warn(k, field, "URL normalised: use \"%s\" instead", hp);
            json_object_set_new(otel, "endpoint", json_string(hp));
            free(hp);
            ep = json_string_value(json_object_get(otel, "endpoint"));
        }
    }
    bool has_endpoint = ep && *ep;
    const json_t *ref = member(otel, "backendRef");
    size_t old = path_field(&k->path, "openTelemetry");
    if (has_endpoint && ref)
        kuma_add(k, "openTelemetry must have only one type defined: endpoint, backendRef");
    else if (!has_endpoint && !ref)
        kuma_add(k, "openTelemetry must have exactly one defined: endpoint, backendRef");
    if (has_endpoint) {
        size_t hostlen, portlen;
        if (strpbrk(ep, "/?#"))
            kuma_add_at(k, "endpoint", "must be in host:port format, not a URL");
        else if (!split_host_port(ep, &hostlen, &portlen))
            kuma_add_at(k, "endpoint", "must be in host:port format");
    }
    if (ref) {
        size_t o = path_field(&k->path, "backendRef");
        if (strcmp(member_str(ref, "kind"), "MeshOpenTelemetryBackend") != 0)
            kuma_add_at(k, "kind", "\"kind\" must be one of [\"MeshOpenTelemetryBackend\"]");
        if (!map_set(ref, "labels"))
            kuma_add(k, "backendRef must have exactly one defined: labels");
        path_reset(&k->path, o);
    }
    path_reset(&k->path, old);
}

/* Path at spec.default. */
static void validate_conf(struct kuma_ctx *k, json_t *conf)
{
    const json_t *sidecar = member_object(conf, "sidecar");
    if (sidecar) {
        size_t old = path_field(&k->path, "sidecar");
        validate_sidecar(k, sidecar);
        path_reset(&k->path, old);
    }

    const json_t *apps = member_array(conf, "applications");
    if (apps) {
        size_t old = path_field(&k->path, "applications.application");
        size_t i;
        json_t *app;
        json_array_foreach(apps, i, app)
        {
            if (!port_valid(member(app, "port"), 0)) {
                size_t o = path_index(&k->path, i);
                kuma_add(k, "port must be a valid (1-65535)");
                path_reset(&k->path, o);
            }
        }
        path_reset(&k->path, old);
    }

    json_t *backends = member_array(conf, "backends");
    if (backends) {
        size_t old = path_field(&k->path, "backends.backend");
        size_t i;
        json_t *b;
        json_array_foreach(backends, i, b)
        {
            size_t o = path_index(&k->path, i);
            const char *type = member_str(b, "type");
            if (strcmp(type, "Prometheus") == 0) {
                const json_t *prom = member(b, "prometheus");
                if (!prom) {
                    kuma_add_at(k, "prometheus", "must be defined");
                } else {
                    if (!port_valid(member(prom, "port"), DEFAULT_PROMETHEUS_PORT))
                        kuma_add_at(k, "port", "port must be a valid (1-65535)");
                    if (strcmp(member_str(member(prom, "tls"), "mode"), "ActiveMTLSBackend") == 0) {
                        char field[80];
                        snprintf(field, sizeof field,
                                 "spec.default.backends[%zu].prometheus.tls.mode", i);
                        warn(k, field,
                             "ActiveMTLSBackend is accepted but Kuma serves plain HTTP; use "
                             "ProvidedTLS");
                    }
                }
            } else if (strcmp(type, "OpenTelemetry") == 0) {
                json_t *otel = member(b, "openTelemetry");
                if (!otel)
                    kuma_add_at(k, "openTelemetry", "must be defined");
                else
                    validate_otel(k, otel, i);
            } else {
                kuma_add(k, "unrecognized type");
            }
            path_reset(&k->path, o);
        }
        path_reset(&k->path, old);
    }
}

static bool system_role(const json_t *mm, const char *system_namespace)
{
    const json_t *meta = member_object(mm, "metadata");
    const char *role =
        json_string_value(member(member_object(meta, "labels"), "kuma.io/policy-role"));
    if (role)
        return strcmp(role, "system") == 0;
    const char *ns = json_string_value(member(meta, "namespace"));
    return ns && system_namespace && *system_namespace && strcmp(ns, system_namespace) == 0;
}

/*
 * Kuma's validator alone, without the structural stage (which on Kubernetes
 * makes several of its messages unreachable). Not in the public header:
 * exposed for tests/unit/test_meshmetric.c, which declares it.
 */
bool meshmetric_validate_kuma(json_t *meshmetric, bool system, struct violations *errs,
                              struct violations *warnings);

bool meshmetric_validate_kuma(json_t *meshmetric, bool system, struct violations *errs,
                              struct violations *warnings)
{
    size_t before = errs->len;
    struct kuma_ctx k = {.errs = errs, .warnings = warnings};
    json_t *spec = member_object(meshmetric, "spec");
    path_init(&k.path, "spec");
    const json_t *ref = member(spec, "targetRef");
    if (ref) {
        size_t old = path_field(&k.path, "targetRef");
        validate_target_ref(&k, ref, system);
        path_reset(&k.path, old);
    }
    json_t *conf = member_object(spec, "default");
    if (conf) {
        size_t old = path_field(&k.path, "default");
        validate_conf(&k, conf);
        path_reset(&k.path, old);
    }
    path_cleanup(&k.path);
    return errs->len == before;
}

bool meshmetric_validate(json_t *meshmetric, const char *system_namespace, struct violations *errs,
                         struct violations *warnings)
{
    size_t before = errs->len;
    if (!json_is_object(meshmetric)) {
        const char *t = meshmetric ? json_type_name(meshmetric) : "null";
        violations_add(errs, "", "Invalid value: \"%s\": body must be of type object: \"%s\"", t,
                       t);
        return false;
    }

    struct schema_ctx c = {.errs = errs, .warnings = warnings};
    path_init(&c.path, NULL);
    const json_t *meta = member(meshmetric, "metadata");
    if (meta && !json_is_object(meta)) {
        path_field(&c.path, "metadata");
        type_error(&c, meta, "object");
    } else {
        const json_t *name = member(meta, "name");
        if (name && !json_is_string(name)) {
            path_field(&c.path, "metadata.name");
            type_error(&c, name, "string");
        } else if (!name || json_string_length(name) == 0) {
            /* The apiserver's ObjectMeta validation. */
            violations_add(errs, "metadata.name",
                           "Required value: name or generateName is required");
        }
    }
    path_reset(&c.path, 0);
    /* Top-level fields the CRD does not know (e.g. a Universal-style "default:"). */
    static const char *const top_fields[] = {"apiVersion", "kind", "metadata", "spec", "status"};
    const char *key;
    json_t *child;
    json_object_foreach(meshmetric, key, child)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof top_fields / sizeof *top_fields && !known; i++)
            known = strcmp(key, top_fields[i]) == 0;
        if (!known)
            unknown_field(&c, key);
    }
    const json_t *spec = member(meshmetric, "spec");
    if (spec) {
        path_field(&c.path, "spec");
        check_node(&c, &n_spec, spec);
    }
    if (warnings && c.unknown > MAX_UNKNOWN_WARNINGS)
        violations_add(warnings, "", "%zu more unknown fields not listed",
                       c.unknown - MAX_UNKNOWN_WARNINGS);
    path_cleanup(&c.path);
    if (errs->len > before)
        return false; /* rejected by the API server: no webhook runs */

    return meshmetric_validate_kuma(meshmetric, system_role(meshmetric, system_namespace), errs,
                                    warnings);
}

/* ---- defaults ------------------------------------------------------------------- */

/* Remove null members of v and of the known objects below it (the apiserver's null pruning). */
static void prune_nulls(json_t *v, const struct node *n)
{
    if (n->type == N_ARRAY && json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) prune_nulls(item, n->items);
        return;
    }
    if ((n->type != N_OBJECT && n->type != N_STRING_MAP) || !json_is_object(v))
        return;
    const char *key;
    json_t *child;
    void *tmp;
    json_object_foreach_safe(v, tmp, key, child)
    {
        if (json_is_null(child)) {
            json_object_del(v, key);
            continue;
        }
        const struct prop *p = n->type == N_OBJECT ? find_prop(n, key) : NULL;
        if (p)
            prune_nulls(child, p->node);
    }
}

static void set_default(json_t *obj, const char *key, json_t *value)
{
    if (json_is_object(obj) && !json_object_get(obj, key))
        json_object_set_new(obj, key, value);
    else
        json_decref(value);
}

void meshmetric_default_conf(json_t *conf)
{
    if (!json_is_object(conf))
        return;
    prune_nulls(conf, &n_conf);
    size_t i;
    json_t *item;
    json_t *apps = member_array(conf, "applications");
    json_t *backends = member_array(conf, "backends");
    json_array_foreach(apps, i, item) set_default(item, "path", json_string(DEFAULT_PATH));
    json_array_foreach(backends, i, item)
    {
        json_t *prom = member_object(item, "prometheus");
        if (!prom)
            continue;
        set_default(prom, "port", json_integer(DEFAULT_PROMETHEUS_PORT));
        set_default(prom, "path", json_string(DEFAULT_PATH));
        /* tls has no default itself: mode is defaulted only inside a given tls. */
        set_default(member_object(prom, "tls"), "mode", json_string("Disabled"));
    }
    /* openTelemetry: refreshInterval is left to the data plane, and the
     * v2.14 default endpoint "" is not written (it means "not set"). */
}

void meshmetric_default(json_t *meshmetric)
{
    json_t *spec = member_object(meshmetric, "spec");
    if (!spec)
        return;
    prune_nulls(spec, &n_spec);
    meshmetric_default_conf(member_object(spec, "default"));
}

const char *meshmetric_mesh(const json_t *meshmetric)
{
    const json_t *labels = member_object(member_object(meshmetric, "metadata"), "labels");
    const char *mesh = json_string_value(member(labels, "kuma.io/mesh"));
    return mesh && *mesh ? mesh : "default";
}
