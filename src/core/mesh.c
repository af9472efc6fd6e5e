/*
 * Legacy Traffic Metrics: Mesh.spec.metrics (kuma-metrics.md §6).
 *
 * The Mesh CRD keeps spec with x-kubernetes-preserve-unknown-fields, so the
 * API server checks nothing; Kuma decodes the spec with protojson
 * (DiscardUnknown: unknown fields and unknown enum names are dropped) and each
 * prometheus backend's conf (a google.protobuf.Struct) into
 * PrometheusMetricsBackendConfig with util/proto.ToTyped. A conf that does
 * not decode gives "could not parse config: <protojson error>"; protojson
 * prefixes its errors with "proto: (line L:C): " and randomises the spacing
 * on purpose, so the position prefix is left out here and only the stable
 * part of the message is kept ("invalid value for uint32 field port: -1").
 *
 * Defaulter: mesh_defaulter.go (§6.2). Validator: validateMetrics and
 * validatePrometheusConfig in mesh_validator.go (§6.3), run on the defaulted
 * Mesh, as on Kubernetes the defaulting webhook runs before the validating one.
 * Field paths start with "spec.": Kuma's validator roots them at "metrics",
 * and its Kubernetes webhook adds "spec" for resources that are not
 * plugin-originated, as Mesh is (pkg/plugins/runtime/k8s/webhooks/
 * validation.go, convertSpecValidationError). When the Mesh passes, Kuma's
 * deprecations (deprecated.go: a name that is not a DNS-1035 label) are
 * returned as warnings, as Kuma's webhook does.
 */
#include "core/mesh.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/meshmetric.h"
#include "core/regex.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define DEFAULT_PORT 5670
#define DEFAULT_PATH "/metrics"
#define MAX_TOKEN 200 /* bytes of a bad value quoted in a message */

/* PrometheusTlsConfig.Mode values, in proto order. */
static const char *const tls_modes[] = {"activeMTLSBackend", "providedTLS", "disabled"};

enum tls_mode { TLS_ACTIVE = 0, TLS_PROVIDED = 1, TLS_DISABLED = 2 };

static json_t *member(const json_t *obj, const char *key)
{
    json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_null(v) ? NULL : v;
}

/* protojson's raw token text for a value of the wrong type. */
static char *token_text(const json_t *v)
{
    if (json_is_object(v))
        return xstrdup("{");
    if (json_is_array(v))
        return xstrdup("[");
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!s)
        return xstrdup("?");
    size_t n = strlen(s);
    if (n > MAX_TOKEN) { /* keep messages short; cut on a UTF-8 boundary */
        n = MAX_TOKEN;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    char *copy = n < strlen(s) ? xasprintf("%.*s...", (int)n, s) : xstrdup(s);
    free(s);
    return copy;
}

/* ---- decoding the conf as protojson would ------------------------------------ */

struct decode {
    struct strbuf err; /* first error, empty when none */
    struct violations *warnings;
    const char *path;   /* e.g. "spec.metrics.backends[0].conf" */
    bool quiet_unknown; /* unknown fields are reported elsewhere (strict mode) */
};

static bool decode_fail(struct decode *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool decode_fail(struct decode *d, const char *fmt, ...)
{
    if (strbuf_str(&d->err)[0])
        return false;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    bool ok = strbuf_puts(&d->err, msg);
    (void)ok;
    free(msg);
    return false;
}

static bool expect_message(struct decode *d, const json_t *v)
{
    if (json_is_object(v))
        return true;
    char *t = token_text(v);
    decode_fail(d, "unexpected token %s", t);
    free(t);
    return false;
}

static bool scalar_fail(struct decode *d, const char *kind, const char *field, const json_t *v)
{
    char *t = token_text(v);
    decode_fail(d, "invalid value for %s field %s: %s", kind, field, t);
    free(t);
    return false;
}

/* uint32: a JSON number, or a string holding one (protojson accepts both). */
static bool decode_uint32(struct decode *d, const char *field, const json_t *v, double *out)
{
    double x;
    if (json_is_integer(v)) {
        x = (double)json_integer_value(v);
    } else if (json_is_real(v)) {
        x = json_real_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        if (!*s || strspn(s, "0123456789") != strlen(s))
            return scalar_fail(d, "uint32", field, v);
        x = strtod(s, &end);
    } else {
        return scalar_fail(d, "uint32", field, v);
    }
    if (!isfinite(x) || x != floor(x) || x < 0 || x > 4294967295.0)
        return scalar_fail(d, "uint32", field, v);
    if (out)
        *out = x;
    return true;
}

static bool decode_string(struct decode *d, const char *field, const json_t *v)
{
    return json_is_string(v) || scalar_fail(d, "string", field, v);
}

/* google.protobuf.BoolValue: the wrapper reports its inner field "value". */
static bool decode_bool_value(struct decode *d, const json_t *v)
{
    return json_is_boolean(v) || scalar_fail(d, "bool", "value", v);
}

/* Warn about an unknown field key of the object at d->path + sub. */
static void unknown(struct decode *d, const char *sub, const char *key)
{
    if (d->warnings && !d->quiet_unknown)
        violations_add(d->warnings, "", "unknown field \"%s%s.%s\" is ignored by Kuma", d->path,
                       sub, key);
}

/* Mode from a decoded tls.mode value: a name, a number, or unknown (-1). */
static int tls_mode_of(const json_t *v)
{
    if (json_is_string(v)) {
        for (int i = 0; i < 3; i++)
            if (strcmp(json_string_value(v), tls_modes[i]) == 0)
                return i;
        return -1;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 2)
        return (int)json_integer_value(v);
    return -1;
}

/*
 * Decode conf as PrometheusMetricsBackendConfig. Returns false with d->err
 * set on the first protojson error; unknown fields become warnings.
 */
static bool decode_conf(struct decode *d, const json_t *conf)
{
    if (!expect_message(d, conf))
        return false;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)conf, key, v)
    {
        if (json_is_null(v))
            continue;
        if (strcmp(key, "port") == 0) {
            if (!decode_uint32(d, "port", v, NULL))
                return false;
        } else if (strcmp(key, "path") == 0) {
            if (!decode_string(d, "path", v))
                return false;
        } else if (strcmp(key, "skipMTLS") == 0) {
            if (!decode_bool_value(d, v))
                return false;
        } else if (strcmp(key, "tags") == 0) {
            if (!expect_message(d, v))
                return false;
            const char *tk;
            json_t *tv;
            json_object_foreach(v, tk, tv)
            {
                if (!json_is_string(tv)) /* map<string,string> values: the field is "value" */
                    return scalar_fail(d, "string", "value", tv);
            }
        } else if (strcmp(key, "envoy") == 0) {
            if (!expect_message(d, v))
                return false;
            const char *ek;
            json_t *ev;
            json_object_foreach(v, ek, ev)
            {
                if (json_is_null(ev))
                    continue;
                if (strcmp(ek, "filterRegex") == 0) {
                    if (!decode_string(d, "filterRegex", ev))
                        return false;
                } else if (strcmp(ek, "usedOnly") == 0) {
                    if (!decode_bool_value(d, ev))
                        return false;
                } else {
                    unknown(d, ".envoy", ek);
                }
            }
        } else if (strcmp(key, "tls") == 0) {
            if (!expect_message(d, v))
                return false;
            const char *tk;
            json_t *tv;
            json_object_foreach(v, tk, tv)
            {
                if (json_is_null(tv))
                    continue;
                if (strcmp(tk, "mode") == 0) {
                    if (!json_is_string(tv) && !json_is_integer(tv))
                        return scalar_fail(d, "enum", "mode", tv);
                    if (d->warnings && tls_mode_of(tv) < 0) {
                        char *field = xasprintf("%s.tls.mode", d->path);
                        char *t = token_text(tv);
                        violations_add(d->warnings, field,
                                       "unknown mode %s is ignored: Kuma uses activeMTLSBackend",
                                       t);
                        free(t);
                        free(field);
                    }
                } else {
                    unknown(d, ".tls", tk);
                }
            }
        } else if (strcmp(key, "aggregate") == 0) {
            if (!json_is_array(v)) {
                char *t = token_text(v);
                decode_fail(d, "unexpected token %s", t);
                free(t);
                return false;
            }
            size_t i;
            json_t *agg;
            json_array_foreach(v, i, agg)
            {
                if (!expect_message(d, agg))
                    return false;
                const char *ak;
                json_t *av;
                json_object_foreach(agg, ak, av)
                {
                    if (json_is_null(av))
                        continue;
                    bool ok = true;
                    if (strcmp(ak, "name") == 0 || strcmp(ak, "path") == 0 ||
                        strcmp(ak, "address") == 0)
                        ok = decode_string(d, ak, av);
                    else if (strcmp(ak, "port") == 0)
                        ok = decode_uint32(d, "port", av, NULL);
                    else if (strcmp(ak, "enabled") == 0)
                        ok = decode_bool_value(d, av);
                    else {
                        char sub[48];
                        snprintf(sub, sizeof sub, ".aggregate[%zu]", i);
                        unknown(d, sub, ak);
                    }
                    if (!ok)
                        return false;
                }
            }
        } else {
            unknown(d, "", key);
        }
    }
    return true;
}

/* Decode without warnings; true when conf decodes. */
static bool conf_decodes(const json_t *conf)
{
    struct decode d = {.path = ""};
    strbuf_init(&d.err, 4096);
    bool ok = decode_conf(&d, conf);
    strbuf_cleanup(&d.err);
    return ok;
}

/* ---- defaulter ------------------------------------------------------------------------ */

static json_t *tls_object(const char *mode)
{
    return json_pack("{s:s}", "mode", mode);
}

/* A uint32 given as a numeric string becomes a number, as Kuma's re-encoding does. */
static void normalise_uint(json_t *obj, const char *key)
{
    json_t *v = member(obj, key);
    if (json_is_string(v)) {
        double x = strtod(json_string_value(v), NULL);
        json_object_set_new(obj, key, json_integer((json_int_t)x));
    } else if (json_is_real(v)) {
        json_object_set_new(obj, key, json_integer((json_int_t)json_real_value(v)));
    }
}

static void default_conf(json_t *conf)
{
    const json_t *skip = member(conf, "skipMTLS");
    json_t *tls = member(conf, "tls");
    if (tls) {
        /* Re-encoded by Kuma: an unknown mode name is dropped, i.e. activeMTLSBackend. */
        int mode = tls_mode_of(member(tls, "mode"));
        json_object_set_new(tls, "mode", json_string(tls_modes[mode < 0 ? TLS_ACTIVE : mode]));
        if (skip && mode == TLS_PROVIDED)
            json_object_del(conf, "skipMTLS");
    } else if (skip && json_is_true(skip)) {
        json_object_set_new(conf, "tls", tls_object(tls_modes[TLS_DISABLED]));
    } else {
        json_object_set_new(conf, "tls", tls_object(tls_modes[TLS_ACTIVE]));
    }

    normalise_uint(conf, "port");
    const json_t *port = member(conf, "port");
    if (!port || (json_is_integer(port) && json_integer_value(port) == 0))
        json_object_set_new(conf, "port", json_integer(DEFAULT_PORT));
    const char *path = json_string_value(member(conf, "path"));
    if (!path || !*path)
        json_object_set_new(conf, "path", json_string(DEFAULT_PATH));
    const json_t *tags = member(conf, "tags");
    if (!tags || json_object_size(tags) == 0)
        json_object_set_new(conf, "tags",
                            json_pack("{s:s}", "kuma.io/service", "dataplane-metrics"));
    size_t i;
    json_t *agg;
    json_t *aggs = member(conf, "aggregate");
    json_array_foreach(aggs, i, agg) normalise_uint(agg, "port");
    /* No default for aggregate[].path (§6.2). */
}

void mesh_default(json_t *mesh)
{
    json_t *metrics = member(member(mesh, "spec"), "metrics");
    json_t *backends = member(metrics, "backends");
    if (!json_is_array(backends))
        return;
    size_t i;
    json_t *b;
    json_array_foreach(backends, i, b)
    {
        const char *type = json_string_value(member(b, "type"));
        if (!json_is_object(b) || !type || strcmp(type, "prometheus") != 0)
            continue;
        json_t *conf = member(b, "conf");
        if (!conf) {
            conf = json_object();
            json_object_set_new(b, "conf", conf);
        }
        if (!conf_decodes(conf))
            continue; /* Kuma's defaulter fails; the validator reports it */
        default_conf(conf);
    }
}

/* ---- validator -------------------------------------------------------------------------- */

/* Go's %q of a string, enough for names: quotes and backslashes escaped. */
static char *go_quote(const char *s)
{
    struct strbuf b;
    strbuf_init(&b, strlen(s) * 4 + 3);
    bool ok = strbuf_puts(&b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c && ok; c++) {
        if (*c == '"' || *c == '\\')
            ok = strbuf_printf(&b, "\\%c", *c);
        else if (*c == '\n')
            ok = strbuf_puts(&b, "\\n");
        else if (*c == '\t')
            ok = strbuf_puts(&b, "\\t");
        else if (*c < 0x20 || *c == 0x7f)
            ok = strbuf_printf(&b, "\\x%02x", *c);
        else
            ok = strbuf_append(&b, c, 1);
    }
    ok = ok && strbuf_puts(&b, "\"");
    return strbuf_steal(&b);
}

static bool skip_value(const json_t *conf)
{
    return json_is_true(member(conf, "skipMTLS"));
}

/* validatePrometheusConfig: path is "spec.metrics.backends[i].conf". */
static void validate_conf(const json_t *conf, const char *path, struct violations *errs)
{
    struct decode d = {.path = path};
    strbuf_init(&d.err, 4096);
    bool decoded = conf ? decode_conf(&d, conf) : true;
    if (!decoded) {
        violations_add(errs, path, "could not parse config: %s", strbuf_str(&d.err));
        strbuf_cleanup(&d.err);
        return;
    }
    strbuf_cleanup(&d.err);
    const json_t *skip = member(conf, "skipMTLS");
    const json_t *tls = member(conf, "tls");
    if (skip && tls) {
        int mode = tls_mode_of(member(tls, "mode"));
        if (mode < 0)
            mode = TLS_ACTIVE;
        bool equal =
            (!skip_value(conf) && mode == TLS_ACTIVE) || (skip_value(conf) && mode == TLS_DISABLED);
        if (!equal) {
            violations_add(errs, path, "skipMTLS and tls configuration cannot be defined together");
            return;
        }
    }
    const char *re = json_string_value(member(member(conf, "envoy"), "filterRegex"));
    char why[1024];
    if (!regex_re2_valid(re ? re : "", why, sizeof why)) {
        char *field = xasprintf("%s.envoy.filterRegex", path);
        violations_add(errs, field, "provided regexp isn't correct: %s", why);
        free(field);
        return;
    }
    const json_t *aggs = member(conf, "aggregate");
    size_t n = json_array_size(aggs);
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(member(json_array_get(aggs, i), "name"));
        if (!name)
            name = "";
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++) {
            const char *other = json_string_value(member(json_array_get(aggs, j), "name"));
            dup = strcmp(other ? other : "", name) == 0;
        }
        if (dup) {
            char *field = xasprintf("%s.aggregate[%zu].name", path, i);
            violations_add(errs, field, "duplicate entry: %s, values have to be unique", name);
            free(field);
        }
    }
}

/* Warnings on the conf as written (before defaults). */
static void warn_conf(const json_t *conf, const char *path, bool quiet_unknown,
                      struct violations *warnings)
{
    struct decode d = {.path = path, .warnings = warnings, .quiet_unknown = quiet_unknown};
    strbuf_init(&d.err, 4096);
    bool ok = decode_conf(&d, conf);
    strbuf_cleanup(&d.err);
    if (!ok)
        return;
    const json_t *aggs = member(conf, "aggregate");
    size_t i;
    json_t *agg;
    json_array_foreach(aggs, i, agg)
    {
        if (json_is_false(member(agg, "enabled")))
            continue;
        const char *p = json_string_value(member(agg, "path"));
        if (!p || !*p) {
            char *field = xasprintf("%s.aggregate[%zu].path", path, i);
            violations_add(warnings, field,
                           "not set: Kuma has no default here (the docs say /metrics)");
            free(field);
        }
    }
}

static bool metrics_shape(const json_t *metrics, struct violations *errs)
{
    if (!json_is_object(metrics)) {
        char *t = token_text(metrics);
        violations_add(errs, "spec.metrics", "could not parse: unexpected token %s", t);
        free(t);
        return false;
    }
    const json_t *eb = member(metrics, "enabledBackend");
    if (eb && !json_is_string(eb)) {
        char *t = token_text(eb);
        violations_add(errs, "spec.metrics.enabledBackend",
                       "could not parse: invalid value for string field enabledBackend: %s", t);
        free(t);
        return false;
    }
    const json_t *backends = member(metrics, "backends");
    if (backends && !json_is_array(backends)) {
        char *t = token_text(backends);
        violations_add(errs, "spec.metrics.backends", "could not parse: unexpected token %s", t);
        free(t);
        return false;
    }
    size_t i;
    json_t *b;
    bool ok = true;
    json_array_foreach(backends, i, b)
    {
        char *field = NULL;
        char *t = NULL;
        if (!json_is_object(b)) {
            field = xasprintf("spec.metrics.backends[%zu]", i);
            t = token_text(b);
            violations_add(errs, field, "could not parse: unexpected token %s", t);
        } else {
            static const char *const strings[] = {"name", "type"};
            for (size_t s = 0; s < 2 && !field; s++) {
                const json_t *v = member(b, strings[s]);
                if (v && !json_is_string(v)) {
                    field = xasprintf("spec.metrics.backends[%zu].%s", i, strings[s]);
                    t = token_text(v);
                    violations_add(errs, field,
                                   "could not parse: invalid value for string field %s: %s",
                                   strings[s], t);
                }
            }
        }
        ok = ok && !field;
        free(field);
        free(t);
    }
    return ok;
}

/* The metrics part of mesh_validate_ex. */
static bool validate_metrics(const json_t *mesh, bool strict, struct violations *errs,
                             struct violations *warnings)
{
    size_t before = errs->len;
    const json_t *metrics = member(member(mesh, "spec"), "metrics");
    if (!metrics)
        return true;
    if (!metrics_shape(metrics, errs))
        return false;

    if (warnings) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)metrics, key, v)
        {
            if (!strict && strcmp(key, "enabledBackend") && strcmp(key, "backends"))
                violations_add(warnings, "", "unknown field \"spec.metrics.%s\" is ignored by Kuma",
                               key);
        }
        size_t i;
        json_t *b;
        json_array_foreach(member(metrics, "backends"), i, b)
        {
            json_object_foreach(b, key, v)
            {
                if (!strict && strcmp(key, "name") && strcmp(key, "type") && strcmp(key, "conf"))
                    violations_add(
                        warnings, "",
                        "unknown field \"spec.metrics.backends[%zu].%s\" is ignored by Kuma", i,
                        key);
            }
            const json_t *conf = member(b, "conf");
            const char *type = json_string_value(member(b, "type"));
            if (conf && type && strcmp(type, "prometheus") == 0) {
                char *path = xasprintf("spec.metrics.backends[%zu].conf", i);
                warn_conf(conf, path, strict, warnings);
                free(path);
            }
        }
    }

    /* Validate what Kuma validates: the defaulted Mesh. */
    json_t *copy = json_pack("{s:{s:o}}", "spec", "metrics", json_deep_copy(metrics));
    mesh_default(copy);
    const json_t *m = json_object_get(json_object_get(copy, "spec"), "metrics");
    const json_t *backends = member(m, "backends");
    size_t n = json_array_size(backends);
    for (size_t i = 0; i < n; i++) {
        const json_t *b = json_array_get(backends, i);
        const char *name = json_string_value(member(b, "name"));
        if (!name)
            name = "";
        for (size_t j = 0; j < i; j++) {
            const char *other = json_string_value(member(json_array_get(backends, j), "name"));
            if (strcmp(other ? other : "", name) == 0) {
                char *field = xasprintf("spec.metrics.backends[%zu].name", i);
                char *q = go_quote(name);
                violations_add(errs, field, "%s name is already used for another backend", q);
                free(q);
                free(field);
                break;
            }
        }
        const char *type = json_string_value(member(b, "type"));
        if (!type || strcmp(type, "prometheus") != 0) {
            char *field = xasprintf("spec.metrics.backends[%zu].type", i);
            violations_add(errs, field, "unknown backend type. Available backends: \"prometheus\"");
            free(field);
        } else {
            char *path = xasprintf("spec.metrics.backends[%zu].conf", i);
            validate_conf(member(b, "conf"), path, errs);
            free(path);
        }
    }
    const char *enabled = json_string_value(member(m, "enabledBackend"));
    if (enabled && *enabled) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++) {
            const char *name = json_string_value(member(json_array_get(backends, i), "name"));
            found = strcmp(name ? name : "", enabled) == 0;
        }
        if (!found)
            violations_add(errs, "spec.metrics.enabledBackend",
                           "has to be set to one of the backends in the mesh");
    }
    json_decref(copy);
    return errs->len == before;
}

/* ---- Kuma's deprecations (pkg/core/resources/apis/mesh/deprecated.go) -------------- */

/*
 * apimachinery v0.36.1 (Kuma v2.14.3's) validation.IsDNS1035Label, which
 * NameIsDNS1035Label(name, false) calls: its error strings, in its order.
 */
static void dns1035_label_errors(const char *s, struct strbuf *b)
{
    bool ok = true;
    size_t n = strlen(s);
    if (n > 63)
        ok = strbuf_puts(b, "must be no more than 63 characters");
    bool match = n > 0 && s[0] >= 'a' && s[0] <= 'z';
    for (size_t i = 1; match && i < n; i++)
        match = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-';
    if (match && n > 1)
        match = s[n - 1] != '-';
    if (!match) /* RegexError(msg, fmt, "my-name", "abc-123"): note its two spaces before "or" */
        ok = ok && strbuf_puts(b, b->len ? "; " : "") &&
             strbuf_puts(b, "a DNS-1035 label must consist of lower case alphanumeric characters "
                            "or '-', start with an alphabetic character, and end with an "
                            "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used "
                            "for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')");
    (void)ok; /* the buffer is unbounded */
}

/* MeshResource.Deprecations: the display name (label kuma.io/display-name, else the name). */
static void deprecations(const json_t *mesh, struct violations *warnings)
{
    const json_t *meta = member(mesh, "metadata");
    const char *name = json_string_value(member(member(meta, "labels"), "kuma.io/display-name"));
    if (!name || !*name)
        name = json_string_value(member(meta, "name"));
    if (!name)
        name = "";
    struct strbuf b;
    strbuf_init(&b, (size_t)-1 / 2);
    dns1035_label_errors(name, &b);
    if (b.len)
        violations_add(warnings, "",
                       "Invalid Mesh resource name: '%s'. It does not conform to the DNS format "
                       "(RFC 1035). This is deprecated. Errors: %s",
                       name, strbuf_str(&b));
    strbuf_cleanup(&b);
}

/* ---- known fields ------------------------------------------------------------------ */

/*
 * The fields Kuma knows: the Mesh CRD's top level (deployments/charts/kuma/
 * crds/kuma.io_meshes.yaml, v2.14.3: apiVersion, kind, mesh, metadata, spec),
 * metav1.ObjectMeta, and below spec (x-kubernetes-preserve-unknown-fields:
 * Kuma's jsonpb decoding drops unknown names) the Mesh message of
 * api/mesh/v1alpha1/mesh.proto and the metrics messages of metrics.proto.
 * Only the metrics subtree is descended.
 */
struct known {
    const char *const *names;         /* NULL-terminated */
    const struct known *const *below; /* parallel to names; NULL entries are not descended */
    bool list;                        /* a list of objects with these fields */
};

static const char *const tls_names[] = {"mode", NULL};
static const struct known k_tls = {tls_names, NULL, false};
static const char *const envoy_names[] = {"filterRegex", "usedOnly", NULL};
static const struct known k_envoy = {envoy_names, NULL, false};
static const char *const aggregate_names[] = {"name", "port", "path", "enabled", "address", NULL};
static const struct known k_aggregate = {aggregate_names, NULL, true};
static const char *const conf_names[] = {"port",      "path",  "tags", "skipMTLS",
                                         "aggregate", "envoy", "tls",  NULL};
static const struct known *const conf_below[] = {NULL,         NULL,     NULL,  NULL,
                                                 &k_aggregate, &k_envoy, &k_tls};
static const struct known k_conf = {conf_names, conf_below, false};
static const char *const backend_names[] = {"name", "type", "conf", NULL};
static const struct known *const backend_below[] = {NULL, NULL, &k_conf};
static const struct known k_backends = {backend_names, backend_below, true};
static const char *const metrics_names[] = {"enabledBackend", "backends", NULL};
static const struct known *const metrics_below[] = {NULL, &k_backends};
static const struct known k_metrics = {metrics_names, metrics_below, false};
static const char *const spec_names[] = {
    "mtls",         "tracing", "logging",     "metrics",
    "networking",   "routing", "constraints", "skipCreatingInitialPolicies",
    "meshServices", NULL};
static const struct known *const spec_below[] = {NULL, NULL, NULL, &k_metrics, NULL,
                                                 NULL, NULL, NULL, NULL};
static const struct known k_spec = {spec_names, spec_below, false};
static const char *const meta_names[] = {"name",
                                         "generateName",
                                         "namespace",
                                         "selfLink",
                                         "uid",
                                         "resourceVersion",
                                         "generation",
                                         "creationTimestamp",
                                         "deletionTimestamp",
                                         "deletionGracePeriodSeconds",
                                         "labels",
                                         "annotations",
                                         "ownerReferences",
                                         "finalizers",
                                         "managedFields",
                                         NULL};
static const struct known k_meta = {meta_names, NULL, false};
static const char *const root_names[] = {"apiVersion", "kind", "mesh", "metadata", "spec", NULL};
static const struct known *const root_below[] = {NULL, NULL, NULL, &k_meta, &k_spec};
static const struct known k_root = {root_names, root_below, false};

static void walk_known(const struct known *k, const json_t *v, struct strbuf *path,
                       struct violations *out, size_t *count);

static void walk_object(const struct known *k, const json_t *v, struct strbuf *path,
                        struct violations *out, size_t *count)
{
    if (!json_is_object(v))
        return;
    size_t n = 0;
    while (k->names[n])
        n++;
    const char *key;
    json_t *child;
    json_object_foreach((json_t *)v, key, child)
    {
        size_t i = 0;
        while (i < n && strcmp(k->names[i], key) != 0)
            i++;
        size_t old = path->len;
        bool ok = strbuf_printf(path, "%s%s", old ? "." : "", key);
        (void)ok; /* the path buffer is unbounded */
        if (i == n) {
            (*count)++;
            const char *hint = meshmetric_did_you_mean(key, k->names, n);
            if (out && hint)
                violations_add(out, strbuf_str(path), "unknown field \"%s\" (did you mean \"%s\"?)",
                               key, hint);
            else if (out)
                violations_add(out, strbuf_str(path), "unknown field \"%s\"", key);
        } else if (k->below && k->below[i]) {
            walk_known(k->below[i], child, path, out, count);
        }
        path->len = old;
        path->data[old] = '\0';
    }
}

static void walk_known(const struct known *k, const json_t *v, struct strbuf *path,
                       struct violations *out, size_t *count)
{
    if (!k->list) {
        walk_object(k, v, path, out, count);
        return;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        size_t old = path->len;
        bool ok = strbuf_printf(path, "[%zu]", i);
        (void)ok;
        walk_object(k, item, path, out, count);
        path->len = old;
        path->data[old] = '\0';
    }
}

size_t mesh_unknown_fields(const json_t *mesh, struct violations *out)
{
    struct strbuf path;
    strbuf_init(&path, (size_t)-1 / 2);
    bool ok = strbuf_puts(&path, "");
    (void)ok;
    size_t count = 0;
    walk_known(&k_root, mesh, &path, out, &count);
    strbuf_cleanup(&path);
    return count;
}

bool mesh_validate_ex(const json_t *mesh, bool strict, struct violations *errs,
                      struct violations *warnings)
{
    size_t before = errs->len;
    if (strict) {
        (void)mesh_unknown_fields(mesh, errs);
    } else if (warnings) {
        const char *key;
        json_t *v;
        json_object_foreach(member(mesh, "spec"), key, v)
        {
            bool known = false;
            for (const char *const *n = spec_names; *n && !known; n++)
                known = strcmp(*n, key) == 0;
            if (!known)
                violations_add(warnings, "", "unknown field \"spec.%s\" is ignored by Kuma", key);
        }
    }
    (void)validate_metrics(mesh, strict, errs, warnings);
    /* Kuma's webhook returns the deprecations only with an allowed answer. */
    if (errs->len == before && warnings && json_is_object(mesh))
        deprecations(mesh, warnings);
    return errs->len == before;
}

bool mesh_validate(const json_t *mesh, struct violations *errs, struct violations *warnings)
{
    return mesh_validate_ex(mesh, false, errs, warnings);
}

const json_t *mesh_prometheus_conf(const json_t *mesh)
{
    const json_t *metrics = member(member(mesh, "spec"), "metrics");
    const char *enabled = json_string_value(member(metrics, "enabledBackend"));
    if (!enabled)
        enabled = ""; /* GetEnabledBackend() is "" and matches an unnamed backend */
    const json_t *backends = member(metrics, "backends");
    size_t i;
    json_t *b;
    json_array_foreach(backends, i, b)
    {
        const char *name = json_string_value(member(b, "name"));
        if (strcmp(name ? name : "", enabled) != 0)
            continue;
        const char *type = json_string_value(member(b, "type"));
        if (!type || strcmp(type, "prometheus") != 0)
            return NULL;
        const json_t *conf = member(b, "conf");
        return json_is_object(conf) ? conf : NULL;
    }
    return NULL;
}
