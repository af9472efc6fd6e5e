/*
 * Legacy Traffic Metrics (Mesh.spec.metrics): Kuma's Mesh defaulter and
 * validator messages (kuma-metrics.md §6.2, §6.3), the enabled Prometheus
 * conf, the docs' examples (tests/data/mesh/), and hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "core/mesh.h"
#include "core/violations.h"
#include "util/fileio.h"
#include "util/xalloc.h"
#include "util/yamljson.h"


/* A Mesh named default whose spec.metrics is the given YAML. */
static json_t *mesh_with(const char *metrics_yaml)
{
    json_t *mesh = json_pack("{s:s,s:s,s:{s:s},s:{}}", "apiVersion", "kuma.io/v1alpha1", "kind",
                             "Mesh", "metadata", "name", "default", "spec");
    json_object_set_new(json_object_get(mesh, "spec"), "metrics", tu_yaml(metrics_yaml));
    return mesh;
}


static bool same(const char *got, const char *want)
{
    return want ? strcmp(got, want) == 0 : got[0] == '\0';
}

/* ---- validator ---- */

struct vcase {
    const char *name;
    const char *metrics; /* YAML of spec.metrics */
    const char *errors;  /* joined; NULL = valid */
    const char *warnings;
};

#define B0 "spec.metrics.backends[0]"
#define CONF0 B0 ".conf"

static const struct vcase validate_cases[] = {
    {"duplicate backend name",
     "{enabledBackend: prometheus-1, backends: [{name: prometheus-1, type: prometheus}, "
     "{name: prometheus-1, type: prometheus}]}",
     "spec.metrics.backends[1].name: \"prometheus-1\" name is already used for another backend", NULL},
    {"duplicate empty names", "{backends: [{type: prometheus}, {type: prometheus}]}",
     "spec.metrics.backends[1].name: \"\" name is already used for another backend", NULL},
    {"unknown backend type", "{backends: [{name: a, type: Prometheus}]}",
     B0 ".type: unknown backend type. Available backends: \"prometheus\"", NULL},
    {"missing backend type", "{backends: [{name: a}]}",
     B0 ".type: unknown backend type. Available backends: \"prometheus\"", NULL},
    {"duplicate name, then the type", "{backends: [{name: a, type: prometheus}, {name: a}]}",
     "spec.metrics.backends[1].name: \"a\" name is already used for another backend; "
     "spec.metrics.backends[1].type: unknown backend type. Available backends: \"prometheus\"",
     NULL},
    {"enabledBackend not a backend",
     "{enabledBackend: prometheus-2, backends: [{name: prometheus-1, "
     "type: prometheus}]}",
     "spec.metrics.enabledBackend: has to be set to one of the backends in the mesh", NULL},
    {"enabledBackend without backends", "{enabledBackend: p}",
     "spec.metrics.enabledBackend: has to be set to one of the backends in the mesh", NULL},
    {"no enabledBackend", "{backends: [{name: a, type: prometheus}]}", NULL, NULL},
    {"conf: port not a number", "{backends: [{name: a, type: prometheus, conf: {port: abc}}]}",
     CONF0 ": could not parse config: invalid value for uint32 field port: \"abc\"", NULL},
    {"conf: negative port", "{backends: [{name: a, type: prometheus, conf: {port: -1}}]}",
     CONF0 ": could not parse config: invalid value for uint32 field port: -1", NULL},
    {"conf: fractional port", "{backends: [{name: a, type: prometheus, conf: {port: 1.5}}]}",
     CONF0 ": could not parse config: invalid value for uint32 field port: 1.5", NULL},
    {"conf: port above uint32",
     "{backends: [{name: a, type: prometheus, conf: {port: 4294967296}}]}",
     CONF0 ": could not parse config: invalid value for uint32 field port: 4294967296", NULL},
    {"conf: port as a numeric string is fine",
     "{backends: [{name: a, type: prometheus, conf: {port: \"8080\"}}]}", NULL, NULL},
    {"conf: path not a string", "{backends: [{name: a, type: prometheus, conf: {path: 5}}]}",
     CONF0 ": could not parse config: invalid value for string field path: 5", NULL},
    {"conf: skipMTLS not a bool",
     "{backends: [{name: a, type: prometheus, conf: {skipMTLS: \"yes\"}}]}",
     CONF0 ": could not parse config: invalid value for bool field value: \"yes\"", NULL},
    {"conf: tags not a map", "{backends: [{name: a, type: prometheus, conf: {tags: [a]}}]}",
     CONF0 ": could not parse config: unexpected token [", NULL},
    {"conf: tag value not a string",
     "{backends: [{name: a, type: prometheus, conf: {tags: {a: 1}}}]}",
     CONF0 ": could not parse config: invalid value for string field value: 1", NULL},
    {"conf: aggregate not a list",
     "{backends: [{name: a, type: prometheus, conf: {aggregate: {name: x}}}]}",
     CONF0 ": could not parse config: unexpected token {", NULL},
    {"conf: aggregate item port",
     "{backends: [{name: a, type: prometheus, conf: {aggregate: [{name: x, port: y}]}}]}",
     CONF0 ": could not parse config: invalid value for uint32 field port: \"y\"", NULL},
    {"conf: tls mode type", "{backends: [{name: a, type: prometheus, conf: {tls: {mode: true}}}]}",
     CONF0 ": could not parse config: invalid value for enum field mode: true", NULL},
    {"conf: envoy not an object", "{backends: [{name: a, type: prometheus, conf: {envoy: x}}]}",
     CONF0 ": could not parse config: unexpected token \"x\"", NULL},
    {"conf not an object", "{backends: [{name: a, type: prometheus, conf: text}]}",
     CONF0 ": could not parse config: unexpected token \"text\"", NULL},
    {"skipMTLS true with activeMTLSBackend",
     "{backends: [{name: a, type: prometheus, conf: {skipMTLS: true, tls: {mode: "
     "activeMTLSBackend}}}]}",
     CONF0 ": skipMTLS and tls configuration cannot be defined together", NULL},
    {"skipMTLS false with disabled",
     "{backends: [{name: a, type: prometheus, conf: {skipMTLS: false, tls: {mode: disabled}}}]}",
     CONF0 ": skipMTLS and tls configuration cannot be defined together", NULL},
    {"skipMTLS agreeing with tls",
     "{backends: [{name: a, type: prometheus, conf: {skipMTLS: true, tls: {mode: disabled}}}, "
     "{name: b, type: prometheus, conf: {skipMTLS: false, tls: {mode: activeMTLSBackend}}}]}",
     NULL, NULL},
    {"providedTLS with skipMTLS (the defaulter drops skipMTLS)",
     "{backends: [{name: a, type: prometheus, conf: {skipMTLS: true, tls: {mode: providedTLS}}}]}",
     NULL, NULL},
    {"filterRegex not RE2",
     "{backends: [{name: a, type: prometheus, conf: {envoy: {filterRegex: \"(abc\"}}}]}",
     CONF0 ".envoy.filterRegex: provided regexp isn't correct: error parsing regexp: missing "
           "closing ): `(abc`",
     NULL},
    {"filterRegex lookahead",
     "{backends: [{name: a, type: prometheus, conf: {envoy: {filterRegex: \"envoy_(?!x)\"}}}]}",
     CONF0 ".envoy.filterRegex: provided regexp isn't correct: error parsing regexp: invalid or "
           "unsupported Perl syntax: `(?!`",
     NULL},
    {"skipMTLS conflict stops the conf checks",
     "{backends: [{name: a, type: prometheus, conf: {skipMTLS: true, tls: {mode: "
     "activeMTLSBackend}, envoy: {filterRegex: \"(\"}}}]}",
     CONF0 ": skipMTLS and tls configuration cannot be defined together", NULL},
    {"duplicate aggregate names",
     "{backends: [{name: a, type: prometheus, conf: {aggregate: [{name: app, path: /m}, {name: b, "
     "path: /m}, {name: app, path: /m}, {name: app, path: /m}]}}]}",
     CONF0 ".aggregate[2].name: duplicate entry: app, values have to be unique; " CONF0
           ".aggregate[3].name: duplicate entry: app, values have to be unique",
     NULL},
    {"several backends in order",
     "{enabledBackend: z, backends: [{name: a, type: x}, {name: b, type: prometheus, conf: "
     "{port: -2}}]}",
     B0 ".type: unknown backend type. Available backends: \"prometheus\"; "
        "spec.metrics.backends[1].conf: could not parse config: invalid value for uint32 field port: "
        "-2; spec.metrics.enabledBackend: has to be set to one of the backends in the mesh",
     NULL},
    /* Shapes outside conf. */
    {"metrics not an object", "[a]", "spec.metrics: could not parse: unexpected token [", NULL},
    {"backends not a list", "{backends: {name: a}}",
     "spec.metrics.backends: could not parse: unexpected token {", NULL},
    {"backend not an object", "{backends: [5]}", B0 ": could not parse: unexpected token 5", NULL},
    {"backend name not a string", "{backends: [{name: 5, type: prometheus}]}",
     B0 ".name: could not parse: invalid value for string field name: 5", NULL},
    {"enabledBackend not a string", "{enabledBackend: [a]}",
     "spec.metrics.enabledBackend: could not parse: invalid value for string field enabledBackend: [",
     NULL},
    {"metrics null", "null", NULL, NULL},
    {"metrics empty", "{}", NULL, NULL},
    /* Warnings. */
    {"unknown fields are ignored by Kuma",
     "{enabled: true, backends: [{name: a, type: prometheus, config: {}, conf: {skipMtls: true, "
     "envoy: {regex: x}, tls: {mod: x}, aggregate: [{name: x, path: /m, Port: 1}]}}]}",
     NULL,
     "unknown field \"spec.metrics.enabled\" is ignored by Kuma; unknown field "
     "\"spec.metrics.backends[0].config\" is ignored by Kuma; unknown field "
     "\"spec.metrics.backends[0].conf.skipMtls\" is ignored by Kuma; unknown field "
     "\"spec.metrics.backends[0].conf.envoy.regex\" is ignored by Kuma; unknown field "
     "\"spec.metrics.backends[0].conf.tls.mod\" is ignored by Kuma; unknown field "
     "\"spec.metrics.backends[0].conf.aggregate[0].Port\" is ignored by Kuma"},
    {"aggregate path unset, unless disabled",
     "{backends: [{name: a, type: prometheus, conf: {aggregate: [{name: x, port: 1}, {name: y, "
     "enabled: false}]}}]}",
     NULL, CONF0 ".aggregate[0].path: not set: Kuma has no default here (the docs say /metrics)"},
};

static void test_validate(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof validate_cases / sizeof *validate_cases; i++) {
        json_t *mesh = mesh_with(validate_cases[i].metrics);
        json_t *before = json_deep_copy(mesh);
        struct violations errs, warns;
        violations_init(&errs);
        violations_init(&warns);
        bool ok = mesh_validate(mesh, &errs, &warns);
        char *e = violations_join(&errs);
        char *w = violations_join(&warns);
        if (ok != (validate_cases[i].errors == NULL) || !same(e, validate_cases[i].errors) ||
            !same(w, validate_cases[i].warnings)) {
            print_error("case \"%s\":\n  errors   got  %s\n           want %s\n  warnings got  %s\n"
                        "           want %s\n",
                        validate_cases[i].name, e,
                        validate_cases[i].errors ? validate_cases[i].errors : "(none)", w,
                        validate_cases[i].warnings ? validate_cases[i].warnings : "(none)");
            failures++;
        }
        if (!json_equal(mesh, before)) {
            print_error("case \"%s\": mesh_validate changed its input\n", validate_cases[i].name);
            failures++;
        }
        free(e);
        free(w);
        violations_cleanup(&errs);
        violations_cleanup(&warns);
        json_decref(mesh);
        json_decref(before);
    }
    assert_int_equal(failures, 0);

    /* No spec, no metrics, not an object: nothing to validate. */
    struct violations errs;
    violations_init(&errs);
    assert_true(mesh_validate(NULL, &errs, NULL));
    json_t *m = tu_yaml("{metadata: {name: default}}");
    assert_true(mesh_validate(m, &errs, NULL));
    json_decref(m);
    m = tu_yaml("{spec: 5}");
    assert_true(mesh_validate(m, &errs, NULL));
    json_decref(m);
    assert_int_equal(errs.len, 0);
    violations_cleanup(&errs);
}

/* ---- defaulter ---- */

struct dcase {
    const char *name;
    const char *metrics;
    const char *expect;
};

#define DEFAULTS "port: 5670, path: /metrics, tags: {kuma.io/service: dataplane-metrics}"

static const struct dcase default_cases[] = {
    {"no conf", "{backends: [{name: a, type: prometheus}]}",
     "{backends: [{name: a, type: prometheus, conf: {tls: {mode: activeMTLSBackend}, " DEFAULTS
     "}}]}"},
    {"null conf", "{backends: [{name: a, type: prometheus, conf: null}]}",
     "{backends: [{name: a, type: prometheus, conf: {tls: {mode: activeMTLSBackend}, " DEFAULTS
     "}}]}"},
    {"skipMTLS true", "{backends: [{type: prometheus, conf: {skipMTLS: true}}]}",
     "{backends: [{type: prometheus, conf: {skipMTLS: true, tls: {mode: disabled}, " DEFAULTS
     "}}]}"},
    {"skipMTLS false", "{backends: [{type: prometheus, conf: {skipMTLS: false}}]}",
     "{backends: [{type: prometheus, conf: {skipMTLS: false, tls: {mode: "
     "activeMTLSBackend}, " DEFAULTS "}}]}"},
    {"providedTLS drops skipMTLS",
     "{backends: [{type: prometheus, conf: {skipMTLS: false, tls: {mode: providedTLS}}}]}",
     "{backends: [{type: prometheus, conf: {tls: {mode: providedTLS}, " DEFAULTS "}}]}"},
    {"tls kept with skipMTLS",
     "{backends: [{type: prometheus, conf: {skipMTLS: true, tls: {mode: "
     "activeMTLSBackend}}}]}",
     "{backends: [{type: prometheus, conf: {skipMTLS: true, tls: {mode: "
     "activeMTLSBackend}, " DEFAULTS "}}]}"},
    {"tls mode numbers and unknown names",
     "{backends: [{type: prometheus, conf: {tls: {mode: 2}}}, {type: prometheus, conf: {tls: {}}}, "
     "{type: prometheus, conf: {tls: {mode: ProvidedTLS}}}]}",
     "{backends: [{type: prometheus, conf: {tls: {mode: disabled}, " DEFAULTS "}}, "
     "{type: prometheus, conf: {tls: {mode: activeMTLSBackend}, " DEFAULTS "}}, "
     "{type: prometheus, conf: {tls: {mode: activeMTLSBackend}, " DEFAULTS "}}]}"},
    {"zero and empty values",
     "{backends: [{type: prometheus, conf: {port: 0, path: \"\", tags: {}, "
     "tls: {mode: disabled}}}]}",
     "{backends: [{type: prometheus, conf: {tls: {mode: disabled}, " DEFAULTS "}}]}"},
    {"numeric strings become numbers",
     "{backends: [{type: prometheus, conf: {port: \"1234\", tls: {mode: disabled}, aggregate: "
     "[{name: x, port: \"80\"}]}}]}",
     "{backends: [{type: prometheus, conf: {port: 1234, path: /metrics, tags: {kuma.io/service: "
     "dataplane-metrics}, tls: {mode: disabled}, aggregate: [{name: x, port: 80}]}}]}"},
    {"set values kept, no aggregate path default",
     "{backends: [{type: prometheus, conf: {port: 1, path: /p, tags: {a: b}, tls: {mode: "
     "disabled}, aggregate: [{name: x, port: 2}], extra: {keep: me}}}]}",
     "{backends: [{type: prometheus, conf: {port: 1, path: /p, tags: {a: b}, tls: {mode: "
     "disabled}, aggregate: [{name: x, port: 2}], extra: {keep: me}}}]}"},
    {"other types untouched", "{backends: [{type: datadog, conf: {}}, {type: Prometheus}]}",
     "{backends: [{type: datadog, conf: {}}, {type: Prometheus}]}"},
    {"a conf that does not decode is left alone",
     "{backends: [{type: prometheus, conf: {port: -1}}, {type: prometheus, conf: [1]}]}",
     "{backends: [{type: prometheus, conf: {port: -1}}, {type: prometheus, conf: [1]}]}"},
    {"junk shapes", "{backends: [1, null, [], {type: 5}]}", "{backends: [1, null, [], {type: 5}]}"},
};

static void test_default(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof default_cases / sizeof *default_cases; i++) {
        json_t *mesh = mesh_with(default_cases[i].metrics);
        json_t *want = tu_yaml(default_cases[i].expect);
        mesh_default(mesh);
        json_t *got = json_object_get(json_object_get(mesh, "spec"), "metrics");
        if (!json_equal(got, want)) {
            char *g = json_dumps(got, JSON_SORT_KEYS | JSON_ENCODE_ANY);
            print_error("case \"%s\": got %s\n", default_cases[i].name, g);
            free(g);
            failures++;
        }
        /* Idempotent. */
        json_t *again = json_deep_copy(mesh);
        mesh_default(again);
        if (!json_equal(again, mesh)) {
            print_error("case \"%s\": not idempotent\n", default_cases[i].name);
            failures++;
        }
        json_decref(again);
        json_decref(mesh);
        json_decref(want);
    }
    assert_int_equal(failures, 0);
    mesh_default(NULL);
    json_t *m = tu_yaml("{spec: {metrics: {backends: 5}}}");
    mesh_default(m);
    json_decref(m);
}

/* ---- enabled Prometheus conf ---- */

static void test_prometheus_conf(void **state)
{
    (void)state;
    static const struct {
        const char *metrics;
        int index; /* backend whose conf is returned, -1 for NULL */
    } cases[] = {
        {"{enabledBackend: b, backends: [{name: a, type: prometheus, conf: {port: 1}}, {name: b, "
         "type: prometheus, conf: {port: 2}}]}",
         1},
        {"{enabledBackend: a, backends: [{name: a, type: prometheus, conf: {port: 1}}, {name: a, "
         "type: prometheus, conf: {port: 2}}]}",
         0},
        {"{enabledBackend: a, backends: [{name: a, type: datadog, conf: {}}]}", -1},
        {"{enabledBackend: c, backends: [{name: a, type: prometheus, conf: {}}]}", -1},
        {"{backends: [{name: a, type: prometheus, conf: {}}]}", -1},
        /* GetEnabledBackend() is "" and an unnamed backend is named "": Kuma enables it. */
        {"{backends: [{type: prometheus, conf: {}}]}", 0},
        {"{enabledBackend: a, backends: [{name: a, type: prometheus, conf: text}]}", -1},
        {"{enabledBackend: a, backends: 5}", -1},
        {"{enabledBackend: a}", -1},
        {"null", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *mesh = mesh_with(cases[i].metrics);
        const json_t *conf = mesh_prometheus_conf(mesh);
        if (cases[i].index < 0) {
            if (conf)
                fail_msg("case %zu: want NULL", i);
        } else {
            const json_t *want = json_object_get(
                json_array_get(
                    json_object_get(json_object_get(json_object_get(mesh, "spec"), "metrics"),
                                    "backends"),
                    (size_t)cases[i].index),
                "conf");
            if (conf != want)
                fail_msg("case %zu: wrong conf", i);
        }
        json_decref(mesh);
    }
    assert_null(mesh_prometheus_conf(NULL));
}

/* ---- fixtures: the docs' examples ---- */

static const char *const fixtures[] = {
    "seed-001-shortcut",
    "seed-001-expanded",
    "seed-001-universal-skip-mtls",
    "seed-001-universal-expanded",
    "seed-001-secure",
    "seed-001-dataplane",
    "seed-002-expanded",
    "seed-002-provided-tls",
    "seed-002-aggregate",
    "seed-002-aggregate-universal",
    "seed-002-dataplane-aggregate",
    "seed-002-dataplane-override",
    "seed-002-envoy-filter",
    "seed-002-envoy-filter-universal",
    "seed-002-secure",
    "tls-mode-capitalised",
};

static json_t *load_fixture(const char *name)
{
    char *dir = tu_testdata();
    char *path = xasprintf("%s/mesh/%s.yaml", dir, name);
    json_t *docs = tu_load_yaml(path, true);
    free(path);
    free(dir);
    return docs;
}

static void test_fixtures(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
        json_t *docs = load_fixture(fixtures[i]);
        json_t *mesh = json_array_get(docs, 0);
        json_t *expect = json_array_get(docs, 1);
        struct violations errs, warns;
        violations_init(&errs);
        violations_init(&warns);
        bool ok = mesh_validate(mesh, &errs, &warns);
        mesh_default(mesh);
        char *e = violations_join(&errs);
        char *w = violations_join(&warns);
        struct violations wantw;
        violations_init(&wantw);
        size_t k;
        json_t *s;
        json_array_foreach(json_object_get(expect, "warnings"), k, s)
            violations_add(&wantw, "", "%s", json_string_value(s));
        char *want_w = violations_join(&wantw);
        violations_cleanup(&wantw);
        const char *want_e = json_string_value(json_object_get(expect, "errors"));
        json_t *metrics = json_object_get(json_object_get(mesh, "spec"), "metrics");
        bool metrics_ok = json_equal(metrics, json_object_get(expect, "metrics"));
        if (ok != (want_e == NULL) || !same(e, want_e) || strcmp(w, want_w) != 0 || !metrics_ok) {
            char *g = json_dumps(metrics, JSON_SORT_KEYS);
            print_error(
                "fixture %s:\n  errors %s\n  warnings %s\n  want warnings %s\n  metrics %s\n",
                fixtures[i], e, w, want_w, g);
            free(g);
            failures++;
        }
        /* The enabled backend's defaulted conf is what the engine reads. */
        const json_t *conf = mesh_prometheus_conf(mesh);
        if (!conf || !json_object_get(conf, "tls") || !json_object_get(conf, "port")) {
            print_error("fixture %s: no enabled Prometheus conf\n", fixtures[i]);
            failures++;
        }
        free(e);
        free(w);
        free(want_w);
        violations_cleanup(&errs);
        violations_cleanup(&warns);
        json_decref(docs);
    }
    assert_int_equal(failures, 0);
}

/* ---- hostile input ---- */

static void test_hostile(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "{spec: {metrics: {backends: [{name: a, type: prometheus, conf: {aggregate: [1, null, "
        "{name: [x]}], envoy: {filterRegex: 5, usedOnly: x}, tags: {a: null}, tls: [], port: "
        "{}}}]}}}",
        "{spec: {metrics: {enabledBackend: null, backends: [null, {conf: 5}, {type: prometheus, "
        "conf: {skipMTLS: null, tls: null, port: 99999999999999999999}}]}}}",
        "{spec: {metrics: {backends: [{type: prometheus, conf: {port: 1e300, path: [], "
        "aggregate: [{enabled: 1, address: {}}]}}]}}}",
        "[]",
        "\"x\"",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        json_t *mesh = tu_yaml(inputs[i]);
        struct violations errs, warns;
        violations_init(&errs);
        violations_init(&warns);
        (void)mesh_validate(mesh, &errs, &warns);
        mesh_default(mesh);
        (void)mesh_prometheus_conf(mesh);
        (void)mesh_validate(mesh, &errs, NULL);
        violations_cleanup(&errs);
        violations_cleanup(&warns);
        json_decref(mesh);
    }

    /* A huge bad value is quoted short. */
    json_t *big = mesh_with("{backends: [{name: a, type: prometheus, conf: {}}]}");
    char *text = xmalloc(100001);
    memset(text, 'x', 100000);
    text[100000] = '\0';
    json_object_set_new(
        json_object_get(
            json_array_get(json_object_get(json_object_get(json_object_get(big, "spec"), "metrics"),
                                           "backends"),
                           0),
            "conf"),
        "port", json_string(text));
    struct violations e;
    violations_init(&e);
    assert_false(mesh_validate(big, &e, NULL));
    assert_int_equal(e.len, 1);
    assert_true(strlen(e.items[0].message) < 300);
    assert_non_null(strstr(e.items[0].message, "invalid value for uint32 field port: \"xxx"));
    violations_cleanup(&e);
    json_decref(big);
    free(text);

    /* 10k backends with 10k aggregates each would be quadratic in Kuma too; 2k x 1 is enough. */
    json_t *mesh = mesh_with("{enabledBackend: b1999, backends: []}");
    json_t *backends =
        json_object_get(json_object_get(json_object_get(mesh, "spec"), "metrics"), "backends");
    for (int i = 0; i < 2000; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%d", i);
        json_array_append_new(backends, json_pack("{s:s,s:s}", "name", name, "type", "prometheus"));
    }
    struct violations errs, warns;
    violations_init(&errs);
    violations_init(&warns);
    assert_true(mesh_validate(mesh, &errs, &warns));
    mesh_default(mesh);
    assert_non_null(mesh_prometheus_conf(mesh));
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    json_decref(mesh);
}


/* ---- unknown fields, --strict, Kuma's deprecations ---- */

static void test_unknown_fields(void **state)
{
    (void)state;
    static const struct {
        const char *name, *yaml, *want;
    } cases[] = {
        {"typos with hints",
         "{spec: {metrics: {enabledBakend: x, backends: [{name: a, type: prometheus, conf: {prot: "
         "1, tls: {mod: x}, aggregate: [{name: b, pth: /m}]}}]}}}",
         "spec.metrics.enabledBakend: unknown field \"enabledBakend\" (did you mean "
         "\"enabledBackend\"?); spec.metrics.backends[0].conf.prot: unknown field \"prot\" (did "
         "you mean \"port\"?); spec.metrics.backends[0].conf.tls.mod: unknown field \"mod\" (did "
         "you mean \"mode\"?); spec.metrics.backends[0].conf.aggregate[0].pth: unknown field "
         "\"pth\" (did you mean \"path\"?)"},
        {"a misspelt metrics is ignored by Kuma entirely", "{spec: {metric: {enabledBackend: a}}}",
         "spec.metric: unknown field \"metric\" (did you mean \"metrics\"?)"},
        {"Universal format", "{type: Mesh, name: default, metrics: {}}",
         "type: unknown field \"type\"; name: unknown field \"name\"; metrics: unknown field "
         "\"metrics\""},
        {"kubectl get -o yaml output",
         "{apiVersion: kuma.io/v1alpha1, kind: Mesh, metadata: {name: default, uid: x, "
         "resourceVersion: \"1\", generation: 2, creationTimestamp: null, managedFields: [], "
         "annotations: {a: b}}, spec: {mtls: {enabledBackend: ca-1, backends: [{name: ca-1, type: "
         "builtin}]}, metrics: {enabledBackend: p, backends: [{name: p, type: prometheus, conf: "
         "{port: 5670, tags: {kuma.io/service: x}, envoy: {usedOnly: true}}}]}}}",
         NULL},
        {"other spec subtrees are Kuma's business", "{spec: {mtls: {foo: 1}, routing: {x: 2}}}",
         NULL},
        {"not an object", "5", NULL},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *mesh = tu_yaml(cases[i].yaml);
        struct violations out;
        violations_init(&out);
        size_t n = mesh_unknown_fields(mesh, &out);
        char *got = violations_join(&out);
        if (n != out.len || !same(got, cases[i].want)) {
            print_error("case \"%s\":\n  got  %s\n  want %s\n", cases[i].name, got,
                        cases[i].want ? cases[i].want : "(none)");
            failures++;
        }
        free(got);
        violations_cleanup(&out);
        json_decref(mesh);
    }
    assert_int_equal(failures, 0);
}

static void test_strict(void **state)
{
    (void)state;
    json_t *mesh = tu_yaml("{metadata: {name: default}, spec: {metric: {}, metrics: "
                           "{enabledBackend: b, backends: [{name: a, type: prometheus, conf: "
                           "{prt: 1}}]}}}");
    struct violations errs, warns;
    violations_init(&errs);
    violations_init(&warns);
    assert_false(mesh_validate_ex(mesh, false, &errs, &warns));
    char *e = violations_join(&errs);
    char *w = violations_join(&warns);
    assert_string_equal(e, "spec.metrics.enabledBackend: has to be set to one of the backends in "
                           "the mesh");
    assert_string_equal(w, "unknown field \"spec.metric\" is ignored by Kuma; unknown field "
                           "\"spec.metrics.backends[0].conf.prt\" is ignored by Kuma");
    free(e);
    free(w);
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    assert_false(mesh_validate_ex(mesh, true, &errs, &warns));
    e = violations_join(&errs);
    assert_string_equal(e, "spec.metric: unknown field \"metric\" (did you mean \"metrics\"?); "
                           "spec.metrics.backends[0].conf.prt: unknown field \"prt\" (did you mean "
                           "\"port\"?); spec.metrics.enabledBackend: has to be set to one of the "
                           "backends in the mesh");
    assert_int_equal(warns.len, 0);
    free(e);
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    json_decref(mesh);
}

/* pkg/core/resources/apis/mesh/deprecated.go with apimachinery v0.36.1's IsDNS1035Label. */
#define DNS1035                                                                                    \
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "  \
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "          \
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
#define INVALID_NAME(n)                                                                            \
    "Invalid Mesh resource name: '" n "'. It does not conform to the DNS format (RFC 1035). This " \
    "is deprecated. Errors: "

static void test_deprecations(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"{metadata: {name: default}}", NULL},
        {"{metadata: {name: a}}", NULL},
        {"{metadata: {name: a-1}}", NULL},
        {"{metadata: {name: my.mesh}}", INVALID_NAME("my.mesh") DNS1035},
        {"{metadata: {name: 1mesh}}", INVALID_NAME("1mesh") DNS1035},
        {"{metadata: {name: mesh-}}", INVALID_NAME("mesh-") DNS1035},
        {"{metadata: {name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}}",
         INVALID_NAME("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
             "must be no more than 63 characters"},
        {"{metadata: {name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.}}",
         INVALID_NAME("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.")
             "must be no more than 63 characters; " DNS1035},
        /* GetDisplayName prefers the kuma.io/display-name label. */
        {"{metadata: {name: ok, labels: {kuma.io/display-name: Not.Ok}}}",
         INVALID_NAME("Not.Ok") DNS1035},
        {"{metadata: {name: x.y, labels: {kuma.io/display-name: fine}}}", NULL},
        /* Only for a Mesh Kuma allows. */
        {"{metadata: {name: my.mesh}, spec: {metrics: {enabledBackend: nope}}}", NULL},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *mesh = tu_yaml(cases[i].yaml);
        struct violations errs, warns;
        violations_init(&errs);
        violations_init(&warns);
        (void)mesh_validate(mesh, &errs, &warns);
        char *w = violations_join(&warns);
        if (!same(w, cases[i].want)) {
            print_error("case %s:\n  got  %s\n  want %s\n", cases[i].yaml, w,
                        cases[i].want ? cases[i].want : "(none)");
            failures++;
        }
        free(w);
        violations_cleanup(&errs);
        violations_cleanup(&warns);
        json_decref(mesh);
    }
    assert_int_equal(failures, 0);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),        cmocka_unit_test(test_default),
        cmocka_unit_test(test_prometheus_conf), cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_hostile),        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_strict),         cmocka_unit_test(test_deprecations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
