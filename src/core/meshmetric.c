/*
 * MeshMetric: defaults and validation (kuma-metrics.md §2, §10).
 *
 * Validation runs in the three stages a MeshMetric meets on Kubernetes:
 *
 * 1. The API server's structural schema check against Kuma's CRD
 *    (deployments/charts/kuma/crds/kuma.io_meshmetrics.yaml at v2.14.3,
 *    embedded below as kuma_meshmetric_crd): JSON types, enums, required
 *    fields. Messages and paths follow the apiserver (field.ErrorList from
 *    kube-openapi), e.g.
 *      spec.default.backends[0].type: Unsupported value: "Foo": supported values: "Prometheus",
 *        "OpenTelemetry"
 *      spec.default.applications[0].port: Required value
 *      spec.default.backends[0].prometheus.port: Invalid value: "string":
 *        spec.default.backends[0].prometheus.port in body must be of type integer: "string"
 *    The apiserver decodes a JSON integer as an int64 when it fits and as a
 *    float64 otherwise (sigs.k8s.io/json UnmarshalCaseSensitivePreserveInts),
 *    strips the unsupported format "int32" from the schema
 *    (StripUnsupportedFormatsPostProcess), and kube-openapi's type check
 *    accepts a float64 as an integer only when it is integral and within
 *    +-(2^53-1) (swag.IsFloat64AJSONInteger). So any int64 passes and a
 *    larger number is `must be of type integer: "number"`.
 *    Choices where the apiserver has no single answer: null in an object
 *    field is treated as absent (the apiserver prunes nulls of non-nullable
 *    fields before defaulting); a null array item is a type error. Unknown
 *    fields are not errors (the apiserver prunes them silently); they are
 *    returned as warnings in the apiserver's own words
 *    (`unknown field "spec.x"`, what `kubectl apply --validate=warn`
 *    prints), and kept in the object; meshmetric_validate_ex(strict) makes
 *    them errors, as the default `--validate=strict` does.
 *    After each enum or required-field message, Kuma's own message for the
 *    same field follows when Kuma's validator has one (the API server's
 *    comes first: it runs first and its answer is what kubectl shows).
 *    Otherwise, when this stage finds errors the later stages do not run:
 *    the API server rejects the object before any webhook sees it.
 *
 * 2. Kuma's webhook decodes the object into its Go types
 *    (pkg/plugins/runtime/k8s/webhooks/validation.go, decode(); a failure is
 *    admission.Errored(400, err)). What the schema lets through and Go
 *    refuses: a uint32 port outside 0..4294967295 (the CRD says only
 *    "type: integer"), giving encoding/json's
 *      json: cannot unmarshal number 4294967296 into Go struct field
 *        PrometheusBackend.spec.default.backends.prometheus.port of type uint32
 *    and an openTelemetry.refreshInterval that time.ParseDuration refuses
 *    (metav1.Duration): `time: invalid duration "1 minute"`. Go stops at
 *    the first such error; every one is reported here, each with the text
 *    Go gives for it. When this stage finds errors Kuma's validator does
 *    not run.
 *
 * 3. Kuma's validator (pkg/plugins/policies/meshmetric/api/v1alpha1/
 *    validator.go, pkg/core/resources/apis/mesh/validators.go
 *    ValidateTargetRef, pkg/core/validators/common_validators.go
 *    ValidateOtelBackendRefOrEndpoint, v2.14.3) with its exact messages and
 *    its quirky paths ("spec.default.applications.application[0]"), reading
 *    the JSON with Go's zero-value semantics (a missing string is "").
 *    Schema defaults count as applied (a Prometheus backend without a port
 *    has port 5670). When it passes, Kuma's deprecations (deprecated.go,
 *    and TopLevelTargetRefDeprecations in
 *    pkg/plugins/policies/core/jsonpatch/validators/validator.go) become
 *    warnings with Kuma's text, as Kuma's webhook returns them.
 *
 * Operator decisions on top (kuma-metrics.md §10): an OpenTelemetry endpoint
 * written as an http(s) URL with nothing but host:port is rewritten to
 * host:port with a warning; the Kuma 2.6 field sidecar.regex is accepted with
 * a warning, and cannot be combined with sidecar.profiles; ActiveMTLSBackend
 * is accepted with a warning that it serves plain HTTP; a Prometheus path
 * without a leading "/" is accepted (Kuma does) with a warning, because Kuma
 * makes it the prefix of the Envoy route of the metrics listener
 * (plugin/xds/prometheus_configurer.go staticEndpoint,
 * xds/envoy/listeners/v3/static_endpoints_configurer.go RouteMatch_Prefix)
 * and a prefix without "/" never matches a request path.
 */
#include "core/meshmetric.h"

#include <ctype.h>
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
/* swag.IsFloat64AJSONInteger: the largest float64 kube-openapi calls an integer. */
#define MAX_JSON_INTEGER 9007199254740991.0

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

/*
 * Value of a number the apiserver accepts as an integer: a JSON integer
 * (jansson's int64, which is what the apiserver decodes it to), or an
 * integral real within +-(2^53-1) (swag.IsFloat64AJSONInteger). False
 * otherwise.
 */
static bool integral_value(const json_t *v, double *out)
{
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (isfinite(d) && d == floor(d) && fabs(d) <= MAX_JSON_INTEGER) {
            *out = d;
            return true;
        }
    }
    return false;
}

/* ---- Kuma's CRD schema, embedded ------------------------------------------- */

/*
 * kuma_meshmetric_crd: the openAPIV3Schema of Kuma v2.14.3's
 * deployments/charts/kuma/crds/kuma.io_meshmetrics.yaml, reduced to what
 * the API server checks (type, properties, items, enum, required,
 * additionalProperties) plus how Kuma's Go types decode each field
 * (pkg/plugins/policies/meshmetric/api/v1alpha1/meshmetric.go,
 * api/common/v1alpha1/targetref.go). tests/unit/test_meshmetric.c compares
 * it with a verbatim copy of the CRD (tests/data/meshmetric/kuma.io_meshmetrics.yaml).
 * Not from the CRD: metadata lists metav1.ObjectMeta's fields (the CRD says
 * only "type: object"; the API server knows ObjectMeta), and sidecar.regex
 * is the Kuma 2.6 field the operator still accepts (ext).
 */
enum node_type { N_OBJECT, N_ARRAY, N_STRING, N_INTEGER, N_BOOLEAN, N_STRING_MAP, N_ANY };

/* How Kuma's webhook decodes a value into its Go type, when that can fail. */
enum go_decode { GO_PLAIN, GO_UINT32, GO_DURATION };

struct prop;

struct node {
    enum node_type type;
    const struct prop *props; /* N_OBJECT: NULL-name terminated */
    const struct node *items; /* N_ARRAY */
    const char *const *enums; /* N_STRING: NULL terminated, or NULL for any */
    enum go_decode go;
    const char *go_struct; /* N_OBJECT: its Go type, named in decode errors */
    bool opaque;           /* N_OBJECT: the CRD says only "type: object" */
};

struct prop {
    const char *name;
    const struct node *node;
    bool required;
    bool ext; /* an operator extension, not in the CRD */
};

static const struct node n_string = {.type = N_STRING};
static const struct node n_uint32 = {.type = N_INTEGER, .go = GO_UINT32};
static const struct node n_duration = {.type = N_STRING, .go = GO_DURATION};
static const struct node n_bool = {.type = N_BOOLEAN};
static const struct node n_string_map = {.type = N_STRING_MAP};
static const struct node n_any = {.type = N_ANY};

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
static const char *const profile_enum[] = {"All", "Basic", "None", NULL};
static const char *const selector_type_enum[] = {"Prefix", "Regex", "Exact", "Contains", NULL};
static const char *const backend_type_enum[] = {"Prometheus", "OpenTelemetry", NULL};
static const char *const tls_mode_enum[] = {"Disabled", "ProvidedTLS", "ActiveMTLSBackend", NULL};
static const char *const backend_ref_kind_enum[] = {"MeshOpenTelemetryBackend", NULL};
static const char *const condition_status_enum[] = {"True", "False", "Unknown", NULL};

static const struct node n_kind = {.type = N_STRING, .enums = kind_enum};
static const struct node n_proxy_type = {.type = N_STRING, .enums = proxy_type_enum};
static const struct node n_proxy_types = {.type = N_ARRAY, .items = &n_proxy_type};

static const struct prop target_ref_props[] = {
    {"kind", &n_kind, true, false},
    {"labels", &n_string_map, false, false},
    {"mesh", &n_string, false, false},
    {"name", &n_string, false, false},
    {"namespace", &n_string, false, false},
    {"proxyTypes", &n_proxy_types, false, false},
    {"sectionName", &n_string, false, false},
    {"tags", &n_string_map, false, false},
    {NULL, NULL, false, false},
};
static const struct node n_target_ref = {
    .type = N_OBJECT, .props = target_ref_props, .go_struct = "TargetRef"};

static const struct node n_selector_type = {.type = N_STRING, .enums = selector_type_enum};
static const struct prop selector_props[] = {
    {"match", &n_string, true, false},
    {"type", &n_selector_type, true, false},
    {NULL, NULL, false, false},
};
static const struct node n_selector = {
    .type = N_OBJECT, .props = selector_props, .go_struct = "Selector"};
static const struct node n_selectors = {.type = N_ARRAY, .items = &n_selector};

static const struct node n_profile_name = {.type = N_STRING, .enums = profile_enum};
static const struct prop profile_props[] = {
    {"name", &n_profile_name, true, false},
    {NULL, NULL, false, false},
};
static const struct node n_profile = {
    .type = N_OBJECT, .props = profile_props, .go_struct = "Profile"};
static const struct node n_profiles_list = {.type = N_ARRAY, .items = &n_profile};

static const struct prop profiles_props[] = {
    {"appendProfiles", &n_profiles_list, false, false},
    {"exclude", &n_selectors, false, false},
    {"include", &n_selectors, false, false},
    {NULL, NULL, false, false},
};
static const struct node n_profiles = {
    .type = N_OBJECT, .props = profiles_props, .go_struct = "Profiles"};

static const struct prop sidecar_props[] = {
    {"includeUnused", &n_bool, false, false},
    {"profiles", &n_profiles, false, false},
    {"regex", &n_string, false, true}, /* Kuma 2.6 shape, accepted by the operator (§10) */
    {NULL, NULL, false, false},
};
static const struct node n_sidecar = {
    .type = N_OBJECT, .props = sidecar_props, .go_struct = "Sidecar"};

static const struct prop application_props[] = {
    {"address", &n_string, false, false}, {"name", &n_string, false, false},
    {"path", &n_string, false, false},    {"port", &n_uint32, true, false},
    {NULL, NULL, false, false},
};
static const struct node n_application = {
    .type = N_OBJECT, .props = application_props, .go_struct = "Application"};
static const struct node n_applications = {.type = N_ARRAY, .items = &n_application};

static const struct node n_tls_mode = {.type = N_STRING, .enums = tls_mode_enum};
static const struct prop tls_props[] = {
    {"mode", &n_tls_mode, false, false},
    {NULL, NULL, false, false},
};
static const struct node n_tls = {
    .type = N_OBJECT, .props = tls_props, .go_struct = "PrometheusTls"};

static const struct prop prometheus_props[] = {
    {"clientId", &n_string, false, false},
    {"path", &n_string, false, false},
    {"port", &n_uint32, false, false},
    {"tls", &n_tls, false, false},
    {NULL, NULL, false, false},
};
static const struct node n_prometheus = {
    .type = N_OBJECT, .props = prometheus_props, .go_struct = "PrometheusBackend"};

static const struct node n_backend_ref_kind = {.type = N_STRING, .enums = backend_ref_kind_enum};
static const struct prop backend_ref_props[] = {
    {"kind", &n_backend_ref_kind, true, false},
    {"labels", &n_string_map, false, false},
    {NULL, NULL, false, false},
};
static const struct node n_backend_ref = {
    .type = N_OBJECT, .props = backend_ref_props, .go_struct = "BackendResourceRef"};

static const struct prop otel_props[] = {
    {"backendRef", &n_backend_ref, false, false},
    {"endpoint", &n_string, false, false},
    {"refreshInterval", &n_duration, false, false},
    {NULL, NULL, false, false},
};
static const struct node n_otel = {
    .type = N_OBJECT, .props = otel_props, .go_struct = "OpenTelemetryBackend"};

static const struct node n_backend_type = {.type = N_STRING, .enums = backend_type_enum};
static const struct prop backend_props[] = {
    {"openTelemetry", &n_otel, false, false},
    {"prometheus", &n_prometheus, false, false},
    {"type", &n_backend_type, true, false},
    {NULL, NULL, false, false},
};
static const struct node n_backend = {
    .type = N_OBJECT, .props = backend_props, .go_struct = "Backend"};
static const struct node n_backends = {.type = N_ARRAY, .items = &n_backend};

static const struct prop conf_props[] = {
    {"applications", &n_applications, false, false},
    {"backends", &n_backends, false, false},
    {"sidecar", &n_sidecar, false, false},
    {NULL, NULL, false, false},
};
static const struct node n_conf = {.type = N_OBJECT, .props = conf_props, .go_struct = "Conf"};

static const struct prop spec_props[] = {
    {"default", &n_conf, false, false},
    {"targetRef", &n_target_ref, false, false},
    {NULL, NULL, false, false},
};
static const struct node n_spec = {
    .type = N_OBJECT, .props = spec_props, .go_struct = "MeshMetric"};

static const struct node n_condition_status = {.type = N_STRING, .enums = condition_status_enum};
static const struct prop condition_props[] = {
    {"message", &n_string, true, false},
    {"reason", &n_string, true, false},
    {"status", &n_condition_status, true, false},
    {"type", &n_string, true, false},
    {NULL, NULL, false, false},
};
static const struct node n_condition = {.type = N_OBJECT, .props = condition_props};
static const struct node n_conditions = {.type = N_ARRAY, .items = &n_condition};
static const struct prop status_props[] = {
    {"conditions", &n_conditions, false, false},
    {NULL, NULL, false, false},
};
static const struct node n_status = {.type = N_OBJECT, .props = status_props};

/* metav1.ObjectMeta (k8s.io/apimachinery/pkg/apis/meta/v1/types.go), by JSON name. */
static const struct prop object_meta_props[] = {
    {"name", &n_any, false, true},
    {"generateName", &n_any, false, true},
    {"namespace", &n_any, false, true},
    {"selfLink", &n_any, false, true},
    {"uid", &n_any, false, true},
    {"resourceVersion", &n_any, false, true},
    {"generation", &n_any, false, true},
    {"creationTimestamp", &n_any, false, true},
    {"deletionTimestamp", &n_any, false, true},
    {"deletionGracePeriodSeconds", &n_any, false, true},
    {"labels", &n_any, false, true},
    {"annotations", &n_any, false, true},
    {"ownerReferences", &n_any, false, true},
    {"finalizers", &n_any, false, true},
    {"managedFields", &n_any, false, true},
    {NULL, NULL, false, false},
};
static const struct node n_object_meta = {
    .type = N_OBJECT, .props = object_meta_props, .opaque = true};

static const struct prop root_props[] = {
    {"apiVersion", &n_string, false, false},    {"kind", &n_string, false, false},
    {"metadata", &n_object_meta, false, false}, {"spec", &n_spec, false, false},
    {"status", &n_status, false, false},        {NULL, NULL, false, false},
};
static const struct node kuma_meshmetric_crd = {.type = N_OBJECT, .props = root_props};

static const struct prop *find_prop(const struct node *n, const char *name)
{
    for (const struct prop *p = n->props; p && p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

/* ---- stage 1: the API server's schema check --------------------------------- */

struct schema_ctx {
    struct violations *errs;
    struct path path;
};

static void type_error(struct schema_ctx *c, const json_t *v, const char *want)
{
    const char *got = json_type_name(v);
    violations_add(c->errs, c->path.s,
                   "Invalid value: \"%s\": %s in body must be of type %s: \"%s\"", got, c->path.s,
                   want, got);
}

#define UNSUPPORTED_VALUE "Unsupported value: "
#define REQUIRED_VALUE "Required value"

static void enum_error(struct schema_ctx *c, const char *value, const char *const *enums)
{
    struct strbuf b;
    strbuf_init(&b, (size_t)-1 / 2);
    bool ok = true;
    for (const char *const *e = enums; *e && ok; e++)
        ok = strbuf_printf(&b, "%s\"%s\"", e == enums ? "" : ", ", *e);
    violations_add(c->errs, c->path.s, UNSUPPORTED_VALUE "\"%s\": supported values: %s", value,
                   strbuf_str(&b));
    strbuf_cleanup(&b);
}

static void check_node(struct schema_ctx *c, const struct node *n, const json_t *v);

static void check_object(struct schema_ctx *c, const struct node *n, const json_t *v)
{
    for (const struct prop *p = n->props; p->name; p++) {
        if (p->required && !member(v, p->name)) {
            size_t old = path_field(&c->path, p->name);
            violations_add(c->errs, c->path.s, REQUIRED_VALUE);
            path_reset(&c->path, old);
        }
    }
    const char *key;
    json_t *child;
    json_object_foreach((json_t *)v, key, child)
    {
        const struct prop *p = find_prop(n, key);
        if (!p || json_is_null(child))
            continue; /* unknown: pruned (see unknown_fields); null: the same as absent */
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
        if (!integral_value(v, &d))
            type_error(c, v, "integer");
        return;
    }
    case N_BOOLEAN:
        if (!json_is_boolean(v))
            type_error(c, v, "boolean");
        return;
    case N_ANY:
        return;
    }
}

/* ---- unknown fields ------------------------------------------------------------ */

/* Optimal string alignment distance, letter case ignored; max + 1 when clearly farther. */
static size_t osa_distance(const char *a, const char *b, size_t max)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64 || (n > m ? n - m : m - n) > max)
        return max + 1; /* field names are short; a long key is no typo of one */
    size_t rows[3][65]; /* row r of the table is rows[r % 3] */
    for (size_t j = 0; j <= m; j++)
        rows[0][j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t *cur = rows[i % 3], *prev = rows[(i + 2) % 3], *two = rows[(i + 1) % 3];
        cur[0] = i;
        int ca = tolower((unsigned char)a[i - 1]);
        for (size_t j = 1; j <= m; j++) {
            int cb = tolower((unsigned char)b[j - 1]);
            size_t best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (prev[j - 1] + (ca == cb ? 0 : 1) < best)
                best = prev[j - 1] + (ca == cb ? 0 : 1);
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && two[j - 2] + 1 < best)
                best = two[j - 2] + 1;
            cur[j] = best;
        }
    }
    return rows[n % 3][m];
}

const char *meshmetric_did_you_mean(const char *key, const char *const *candidates, size_t n)
{
    if (!key || !*key)
        return NULL;
    size_t max = strlen(key) <= 5 ? 1 : 2;
    const char *best = NULL;
    size_t best_d = max + 1;
    for (size_t i = 0; i < n; i++) {
        size_t d = osa_distance(key, candidates[i], max);
        if (d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}

/* The closest known field of object node n to key, or NULL. */
static const char *suggest(const struct node *n, const char *key)
{
    const char *names[32];
    size_t count = 0;
    for (const struct prop *p = n->props; p && p->name && count < 32; p++)
        names[count++] = p->name;
    return meshmetric_did_you_mean(key, names, count);
}

struct unknown_ctx {
    struct path path;
    struct violations *out; /* may be NULL: count only */
    bool apiserver_text;    /* `unknown field "spec.x"` (a warning) vs. the strict listing */
    size_t limit;           /* most entries written to out */
    size_t count;
};

static void report_unknown(struct unknown_ctx *u, const struct node *n, const char *key)
{
    u->count++;
    if (!u->out || u->count > u->limit)
        return;
    size_t old = path_field(&u->path, key);
    if (u->apiserver_text) {
        violations_add(u->out, "", "unknown field \"%s\"", u->path.s);
    } else {
        const char *hint = suggest(n, key);
        if (hint)
            violations_add(u->out, u->path.s, "unknown field \"%s\" (did you mean \"%s\"?)", key,
                           hint);
        else
            violations_add(u->out, u->path.s, "unknown field \"%s\"", key);
    }
    path_reset(&u->path, old);
}

static void walk_unknown(struct unknown_ctx *u, const struct node *n, const json_t *v)
{
    if (n->type == N_ARRAY && json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            size_t old = path_index(&u->path, i);
            walk_unknown(u, n->items, item);
            path_reset(&u->path, old);
        }
        return;
    }
    if (n->type != N_OBJECT || !json_is_object(v))
        return;
    const char *key;
    json_t *child;
    json_object_foreach((json_t *)v, key, child)
    {
        const struct prop *p = find_prop(n, key);
        if (!p) {
            report_unknown(u, n, key);
            continue;
        }
        size_t old = path_field(&u->path, key);
        walk_unknown(u, p->node, child);
        path_reset(&u->path, old);
    }
}

size_t meshmetric_unknown_fields(const json_t *meshmetric, struct violations *out)
{
    struct unknown_ctx u = {.out = out, .limit = (size_t)-1};
    path_init(&u.path, NULL);
    walk_unknown(&u, &kuma_meshmetric_crd, meshmetric);
    path_cleanup(&u.path);
    return u.count;
}

/* The API server's warnings for unknown fields (--validate=warn), at most MAX_UNKNOWN_WARNINGS. */
static void warn_unknown_fields(const json_t *meshmetric, struct violations *warnings)
{
    if (!warnings)
        return;
    struct unknown_ctx u = {.out = warnings, .apiserver_text = true, .limit = MAX_UNKNOWN_WARNINGS};
    path_init(&u.path, NULL);
    walk_unknown(&u, &kuma_meshmetric_crd, meshmetric);
    path_cleanup(&u.path);
    if (u.count > MAX_UNKNOWN_WARNINGS)
        violations_add(warnings, "", "%zu more unknown fields not listed",
                       u.count - MAX_UNKNOWN_WARNINGS);
}

/* ---- stage 2: decoding into Kuma's Go types ---------------------------------- */

/*
 * Go's UTF-8 decoding of one rune at s (n bytes left): the rune and its
 * width, or U+FFFD with width 1 for an invalid sequence (as `range` does).
 */
static uint32_t go_rune(const unsigned char *s, size_t n, size_t *width)
{
    uint32_t r, min;
    size_t len;
    *width = 1;
    if (s[0] < 0x80)
        return s[0];
    if ((s[0] & 0xE0) == 0xC0)
        len = 2, r = s[0] & 0x1Fu, min = 0x80;
    else if ((s[0] & 0xF0) == 0xE0)
        len = 3, r = s[0] & 0x0Fu, min = 0x800;
    else if ((s[0] & 0xF8) == 0xF0)
        len = 4, r = s[0] & 0x07u, min = 0x10000;
    else
        return 0xFFFD;
    if (len > n)
        return 0xFFFD;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0xFFFD;
        r = (r << 6) | (s[i] & 0x3Fu);
    }
    if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
        return 0xFFFD;
    *width = len;
    return r;
}

/* Go's time.quote (time/format.go): non-ASCII and control bytes as \xNN. */
static void go_time_quote(struct strbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    bool ok = strbuf_puts(b, "\"");
    for (size_t i = 0; i < n && ok;) {
        size_t w;
        uint32_t c = go_rune(p + i, n - i, &w);
        if (c >= 0x80 || c < ' ') {
            size_t width = w;
            if (c == 0xFFFD)
                width = (i + 2 < n && p[i] == 0xEF && p[i + 1] == 0xBF && p[i + 2] == 0xBD) ? 3 : 1;
            for (size_t j = 0; j < width && ok; j++) {
                char e[5] = {'\\', 'x', hex[p[i + j] >> 4], hex[p[i + j] & 0xF], '\0'};
                ok = strbuf_puts(b, e);
            }
        } else {
            if (c == '"' || c == '\\')
                ok = strbuf_puts(b, "\\");
            ok = ok && strbuf_append(b, p + i, 1);
        }
        i += w;
    }
    ok = ok && strbuf_puts(b, "\"");
    (void)ok; /* the buffer is effectively unbounded */
}

static char *duration_error(const char *what, const char *unit, size_t unit_len, const char *orig)
{
    struct strbuf b;
    strbuf_init(&b, (size_t)-1 / 2);
    bool ok = strbuf_puts(&b, "time: ") && strbuf_puts(&b, what);
    if (unit) {
        go_time_quote(&b, unit, unit_len);
        ok = ok && strbuf_puts(&b, " in duration ");
    }
    (void)ok;
    go_time_quote(&b, orig, strlen(orig));
    return strbuf_steal(&b);
}

static uint64_t duration_unit(const char *u, size_t n)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1ull},           {"us", 1000ull},
        {"\xc2\xb5s", 1000ull}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000ull}, /* U+03BC Greek mu */
        {"ms", 1000000ull},     {"s", 1000000000ull},
        {"m", 60000000000ull},  {"h", 3600000000000ull},
    };
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0)
            return units[i].ns;
    return 0;
}

/*
 * Go's time.ParseDuration (time/format.go), which metav1.Duration's
 * UnmarshalJSON calls: NULL when s parses, else Go's error text (caller
 * frees), e.g. `time: invalid duration "1 minute"`,
 * `time: missing unit in duration "30"`, `time: unknown unit "d" in duration "1d"`.
 */
static char *go_parse_duration(const char *orig)
{
    const uint64_t two63 = 1ull << 63;
    const char *s = orig;
    uint64_t d = 0;
    bool neg = false;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0)
        return NULL;
    if (!*s)
        return duration_error("invalid duration ", NULL, 0, orig);
    while (*s) {
        uint64_t v = 0, f = 0;
        double scale = 1;
        if (!(*s == '.' || (*s >= '0' && *s <= '9')))
            return duration_error("invalid duration ", NULL, 0, orig);
        const char *start = s;
        for (; *s >= '0' && *s <= '9'; s++) { /* leadingInt */
            if (v > two63 / 10)
                return duration_error("invalid duration ", NULL, 0, orig);
            v = v * 10 + (uint64_t)(*s - '0');
            if (v > two63)
                return duration_error("invalid duration ", NULL, 0, orig);
        }
        bool pre = s != start, post = false;
        if (*s == '.') { /* leadingFraction */
            s++;
            const char *fs = s;
            bool overflow = false;
            for (; *s >= '0' && *s <= '9'; s++) {
                if (overflow)
                    continue;
                if (f > (two63 - 1) / 10) {
                    overflow = true;
                    continue;
                }
                uint64_t y = f * 10 + (uint64_t)(*s - '0');
                if (y > two63) {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10;
            }
            post = s != fs;
        }
        if (!pre && !post)
            return duration_error("invalid duration ", NULL, 0, orig);
        const char *u = s;
        while (*s && *s != '.' && !(*s >= '0' && *s <= '9'))
            s++;
        if (s == u)
            return duration_error("missing unit in duration ", NULL, 0, orig);
        uint64_t unit = duration_unit(u, (size_t)(s - u));
        if (!unit)
            return duration_error("unknown unit ", u, (size_t)(s - u), orig);
        if (v > two63 / unit)
            return duration_error("invalid duration ", NULL, 0, orig);
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > two63)
                return duration_error("invalid duration ", NULL, 0, orig);
        }
        d += v; /* wraps exactly as Go's uint64 does */
        if (d > two63)
            return duration_error("invalid duration ", NULL, 0, orig);
    }
    if (!neg && d > two63 - 1)
        return duration_error("invalid duration ", NULL, 0, orig);
    return NULL;
}

struct decode_ctx {
    struct violations *errs;
    struct path path;   /* the API server's path: spec.default.backends[0].prometheus.port */
    struct path gopath; /* encoding/json's field stack: spec.default.backends.prometheus.port */
};

/* encoding/json's literal of a number the API server re-encoded (int64, or an integral float64). */
static void number_literal(const json_t *v, char *buf, size_t n)
{
    if (json_is_integer(v)) {
        snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    }
    double d = json_real_value(v);
    snprintf(buf, n, "%s%.0f", d == 0 && signbit(d) ? "-" : "", d); /* Go writes -0 as "-0" */
}

static void decode_node(struct decode_ctx *d, const struct node *n, const json_t *v,
                        const char *go_struct)
{
    switch (n->type) {
    case N_OBJECT: {
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)v, key, child)
        {
            const struct prop *p = find_prop(n, key);
            if (!p || json_is_null(child))
                continue;
            size_t old = path_field(&d->path, key);
            size_t gold = path_field(&d->gopath, key);
            decode_node(d, p->node, child, n->go_struct);
            path_reset(&d->gopath, gold);
            path_reset(&d->path, old);
        }
        return;
    }
    case N_ARRAY: {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            size_t old = path_index(&d->path, i);
            decode_node(d, n->items, item, go_struct);
            path_reset(&d->path, old);
        }
        return;
    }
    case N_INTEGER: {
        double x = 0;
        (void)integral_value(v, &x); /* stage 1 passed: it is one */
        bool negative_zero = json_is_real(v) && x == 0 && signbit(x);
        if (n->go == GO_UINT32 && (x < 0 || x > 4294967295.0 || negative_zero)) {
            char lit[64];
            number_literal(v, lit, sizeof lit);
            violations_add(d->errs, d->path.s,
                           "json: cannot unmarshal number %s into Go struct field %s.%s of type "
                           "uint32",
                           lit, go_struct ? go_struct : "", d->gopath.s);
        }
        return;
    }
    case N_STRING:
        if (n->go == GO_DURATION) {
            char *why = go_parse_duration(json_string_value(v));
            if (why)
                violations_add(d->errs, d->path.s, "%s", why);
            free(why);
        }
        return;
    case N_STRING_MAP:
    case N_BOOLEAN:
    case N_ANY:
        return;
    }
}

/* Stage 2 on spec (which passed stage 1). */
static void decode_spec(const json_t *spec, struct violations *errs)
{
    struct decode_ctx d = {.errs = errs};
    path_init(&d.path, "spec");
    path_init(&d.gopath, "spec");
    decode_node(&d, &n_spec, spec, NULL);
    path_cleanup(&d.path);
    path_cleanup(&d.gopath);
}

/* ---- stage 3: Kuma's validator ------------------------------------------------ */

struct kuma_ctx {
    struct violations *errs;
    struct violations *warnings; /* may be NULL */
    bool normalise;              /* rewrite an http(s) URL endpoint in place (§10) */
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

/* disallowedField: set = a non-empty string, map or list. */
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

/* requiredField */
static void required(struct kuma_ctx *k, const json_t *ref, const char *field, const char *kind)
{
    if (!*member_str(ref, field))
        kuma_add_at(k, field, "must be set when kind is %s", kind);
}

/* validateName (no AllowedInvalidNames for MeshMetric) */
static void check_name(struct kuma_ctx *k, const json_t *ref)
{
    if (!valid_name(member_str(ref, "name")))
        kuma_add_at(k, "name",
                    "invalid characters: must consist of lower case alphanumeric characters, "
                    "'-', '.' and '_'.");
}

/*
 * validateProxyTypes: `proxyTypes != nil && len(*proxyTypes) == 0`. A JSON
 * `proxyTypes: []` decodes to a non-nil empty slice; null and absent to nil.
 */
static void proxy_types(struct kuma_ctx *k, const json_t *ref)
{
    const json_t *pt = member(ref, "proxyTypes");
    if (json_is_array(pt) && json_array_size(pt) == 0)
        kuma_add_at(k, "proxyTypes", "must be undefined or have at least one element");
}

static const char *const system_kinds[] = {
    "Mesh", "MeshSubset", "MeshService", "MeshServiceSubset", "MeshGateway", "Dataplane", NULL};
static const char *const workload_kinds[] = {"Mesh",      "MeshSubset",        "MeshService",
                                             "Dataplane", "MeshServiceSubset", NULL};

/*
 * mesh.ValidateTargetRef (pkg/core/resources/apis/mesh/validators.go,
 * v2.14.3) with MeshMetric's options (validator.go validateTop: the system
 * role adds MeshGateway with GatewayListenerTagsAllowed; IsInboundPolicy is
 * false); path at spec.targetRef. The cases are in Kuma's order, and so are
 * the checks inside each.
 */
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
        proxy_types(k, ref);
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
        proxy_types(k, ref);
    } else if (strcmp(kind, "MeshService") == 0) {
        /* v2.14.3 has no sectionName rule here (older ones refused sectionName with labels). */
        check_name(k, ref);
        disallowed(k, ref, "mesh", kind);
        disallowed(k, ref, "tags", kind);
        disallowed(k, ref, "proxyTypes", kind);
        if (!has_labels && !*name)
            kuma_add(k, "name or labels must be set when kind is MeshService");
        if (has_labels && (*name || *ns))
            kuma_add_at(k, "labels", "either labels or name and namespace must be specified");
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

/*
 * validators.ValidateOtelBackendRefOrEndpoint with MeshMetric's extra
 * validateOtelEndpointHostPort: a switch, so exactly one of its cases
 * reports. Path at spec.default.backends.backend[i]; index is i.
 */
static void validate_otel(struct kuma_ctx *k, json_t *otel, size_t index)
{
    const char *ep = json_string_value(member(otel, "endpoint"));
    if (ep && *ep && k->normalise) {
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
    size_t hostlen, portlen;
    if (has_endpoint && ref) {
        kuma_add(k, "openTelemetry must have only one type defined: endpoint, backendRef");
    } else if (!has_endpoint && !ref) {
        kuma_add(k, "openTelemetry must have exactly one defined: endpoint, backendRef");
    } else if (ref) { /* ValidateBackendResourceRef */
        size_t o = path_field(&k->path, "backendRef");
        if (strcmp(member_str(ref, "kind"), "MeshOpenTelemetryBackend") != 0)
            kuma_add_at(k, "kind", "\"kind\" must be one of [\"MeshOpenTelemetryBackend\"]");
        if (!map_set(ref, "labels"))
            kuma_add(k, "backendRef must have exactly one defined: labels");
        path_reset(&k->path, o);
    } else if (strpbrk(ep, "/?#")) {
        kuma_add_at(k, "endpoint", "must be in host:port format, not a URL");
    } else if (!split_host_port(ep, &hostlen, &portlen)) {
        kuma_add_at(k, "endpoint", "must be in host:port format");
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
                    char field[80];
                    if (strcmp(member_str(member(prom, "tls"), "mode"), "ActiveMTLSBackend") == 0) {
                        snprintf(field, sizeof field,
                                 "spec.default.backends[%zu].prometheus.tls.mode", i);
                        warn(k, field,
                             "ActiveMTLSBackend is accepted but Kuma serves plain HTTP; use "
                             "ProvidedTLS");
                    }
                    const char *path = member_str(prom, "path");
                    if (*path && *path != '/') {
                        snprintf(field, sizeof field, "spec.default.backends[%zu].prometheus.path",
                                 i);
                        warn(k, field,
                             "no leading \"/\": Kuma's Envoy route never matches it, every scrape "
                             "gets 404");
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

static bool kuma_validate(json_t *meshmetric, bool system, bool normalise, struct violations *errs,
                          struct violations *warnings)
{
    size_t before = errs->len;
    struct kuma_ctx k = {.errs = errs, .warnings = warnings, .normalise = normalise};
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

/*
 * Kuma's validator alone, without the earlier stages (which on Kubernetes
 * make several of its messages unreachable). Not in the public header:
 * exposed for tests/unit/test_meshmetric.c, which declares it.
 */
bool meshmetric_validate_kuma(json_t *meshmetric, bool system, struct violations *errs,
                              struct violations *warnings);

bool meshmetric_validate_kuma(json_t *meshmetric, bool system, struct violations *errs,
                              struct violations *warnings)
{
    return kuma_validate(meshmetric, system, true, errs, warnings);
}

/* ---- putting the stages together ---------------------------------------------- */

/*
 * Kuma's path for the field of an API server enum/required message:
 * applications[i].port -> applications.application[i] (ValidatePort at
 * RootedAt("application").Index(i)), backends[i].type ->
 * backends.backend[i] ("unrecognized type" at the backend), and
 * backends[i]... -> backends.backend[i]... otherwise. Caller frees.
 */
static char *kuma_path_of(const char *api)
{
    static const struct {
        const char *api, *kuma, *leaf;
    } map[] = {
        {"spec.default.applications[", "spec.default.applications.application[", ".port"},
        {"spec.default.backends[", "spec.default.backends.backend[", ".type"},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        size_t n = strlen(map[i].api);
        if (strncmp(api, map[i].api, n) != 0)
            continue;
        const char *close = strchr(api + n, ']');
        if (!close)
            break;
        const char *tail = close + 1;
        return xasprintf("%s%.*s]%s", map[i].kuma, (int)(close - (api + n)), api + n,
                         strcmp(tail, map[i].leaf) == 0 ? "" : tail);
    }
    return xstrdup(api);
}

/*
 * After each enum or required-field violation of stage 1 (errs from
 * index `from`), put Kuma's own violations for the same field, from a run
 * of Kuma's validator that changes nothing.
 */
static void pair_kuma_messages(json_t *meshmetric, bool system, struct violations *errs,
                               size_t from)
{
    struct violations kuma, merged;
    violations_init(&kuma);
    violations_init(&merged);
    (void)kuma_validate(meshmetric, system, false, &kuma, NULL);
    bool *used = xcalloc(kuma.len ? kuma.len : 1, sizeof *used);
    for (size_t i = from; i < errs->len; i++) {
        const struct violation *v = &errs->items[i];
        violations_add(&merged, v->field, "%s", v->message);
        if (strncmp(v->message, UNSUPPORTED_VALUE, strlen(UNSUPPORTED_VALUE)) != 0 &&
            strncmp(v->message, REQUIRED_VALUE, strlen(REQUIRED_VALUE)) != 0)
            continue;
        char *kp = kuma_path_of(v->field);
        for (size_t j = 0; j < kuma.len; j++) {
            if (!used[j] && strcmp(kuma.items[j].field, kp) == 0) {
                used[j] = true;
                violations_add(&merged, kuma.items[j].field, "%s", kuma.items[j].message);
            }
        }
        free(kp);
    }
    for (size_t i = from; i < errs->len; i++) {
        free(errs->items[i].field);
        free(errs->items[i].message);
    }
    errs->len = from;
    violations_extend(errs, &merged);
    free(used);
    violations_cleanup(&merged);
    violations_cleanup(&kuma);
}

/*
 * MeshMetricResource.Deprecations (deprecated.go, v2.14.3): the endpoint
 * notice once, then TopLevelTargetRefDeprecations(spec.targetRef).
 */
static void deprecations(const json_t *meshmetric, struct violations *warnings)
{
    const json_t *spec = member_object(meshmetric, "spec");
    size_t i;
    const json_t *b;
    json_array_foreach(member_array(member_object(spec, "default"), "backends"), i, b)
    {
        const json_t *otel = member_object(b, "openTelemetry");
        if (otel && *member_str(otel, "endpoint") && !member(otel, "backendRef")) {
            violations_add(warnings, "",
                           "openTelemetry.endpoint is deprecated, use openTelemetry.backendRef "
                           "with a MeshOpenTelemetryBackend resource instead");
            break;
        }
    }
    const json_t *ref = member_object(spec, "targetRef");
    const char *kind = member_str(ref, "kind");
    if (ref && (!strcmp(kind, "MeshService") || !strcmp(kind, "MeshServiceSubset") ||
                !strcmp(kind, "MeshSubset")))
        violations_add(warnings, "",
                       "%s value for 'targetRef.kind' is deprecated, use Dataplane with labels "
                       "instead",
                       kind);
    else if (ref && !strcmp(kind, "MeshHTTPRoute")) /* unreachable: MeshMetric refuses the kind */
        violations_add(warnings, "",
                       "MeshHTTPRoute value for 'targetRef.kind' is deprecated, use "
                       "MeshHTTPRoute in spec.to[].targetRef");
}

bool meshmetric_validate_ex(json_t *meshmetric, const char *system_namespace, bool strict,
                            struct violations *errs, struct violations *warnings)
{
    size_t before = errs->len;
    if (!json_is_object(meshmetric)) {
        const char *t = meshmetric ? json_type_name(meshmetric) : "null";
        violations_add(errs, "", "Invalid value: \"%s\": body must be of type object: \"%s\"", t,
                       t);
        return false;
    }
    bool system = system_role(meshmetric, system_namespace);

    /* Stage 1: metadata as the apiserver checks ObjectMeta, then spec against the CRD. */
    struct schema_ctx c = {.errs = errs};
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
            violations_add(errs, "metadata.name",
                           "Required value: name or generateName is required");
        }
    }
    path_reset(&c.path, 0);
    const json_t *spec = member(meshmetric, "spec");
    if (spec) {
        path_field(&c.path, "spec");
        check_node(&c, &n_spec, spec);
    }
    path_cleanup(&c.path);
    bool schema_failed = errs->len > before;
    if (schema_failed)
        pair_kuma_messages(meshmetric, system, errs, before);

    if (strict)
        (void)meshmetric_unknown_fields(meshmetric, errs);
    else
        warn_unknown_fields(meshmetric, warnings);
    if (schema_failed)
        return false; /* rejected by the API server: no webhook runs */

    /* Stage 2: Kuma's webhook decodes the object. */
    size_t decoded = errs->len;
    if (spec)
        decode_spec(spec, errs);
    if (errs->len > decoded)
        return false; /* admission.Errored(400): Kuma's validator does not run */

    /* Stage 3: Kuma's validator, then its deprecations. */
    bool ok = kuma_validate(meshmetric, system, true, errs, warnings);
    if (ok && errs->len == before && warnings)
        deprecations(meshmetric, warnings);
    return errs->len == before;
}

bool meshmetric_validate(json_t *meshmetric, const char *system_namespace, struct violations *errs,
                         struct violations *warnings)
{
    return meshmetric_validate_ex(meshmetric, system_namespace, false, errs, warnings);
}

/* ---- the embedded CRD as JSON Schema ------------------------------------------- */

static json_t *schema_json(const struct node *n)
{
    static const char *const types[] = {
        [N_OBJECT] = "object",   [N_ARRAY] = "array",     [N_STRING] = "string",
        [N_INTEGER] = "integer", [N_BOOLEAN] = "boolean", [N_STRING_MAP] = "object",
        [N_ANY] = "object",
    };
    json_t *o = json_pack("{s:s}", "type", types[n->type]);
    if (n->type == N_OBJECT && !n->opaque) {
        json_t *props = json_object();
        json_t *req = json_array();
        for (const struct prop *p = n->props; p->name; p++) {
            if (p->ext)
                continue;
            json_object_set_new(props, p->name, schema_json(p->node));
            if (p->required)
                json_array_append_new(req, json_string(p->name));
        }
        json_object_set_new(o, "properties", props);
        if (json_array_size(req))
            json_object_set_new(o, "required", req);
        else
            json_decref(req);
    } else if (n->type == N_ARRAY) {
        json_object_set_new(o, "items", schema_json(n->items));
    } else if (n->type == N_STRING_MAP) {
        json_object_set_new(o, "additionalProperties", json_pack("{s:s}", "type", "string"));
    } else if (n->type == N_STRING && n->enums) {
        json_t *e = json_array();
        for (const char *const *s = n->enums; *s; s++)
            json_array_append_new(e, json_string(*s));
        json_object_set_new(o, "enum", e);
    }
    return o;
}

json_t *meshmetric_crd_schema(void)
{
    return schema_json(&kuma_meshmetric_crd);
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
