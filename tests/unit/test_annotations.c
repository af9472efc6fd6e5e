/*
 * Parsing of the prometheus.metrics.kuma.io/ annotations with Kuma v2.14's rules and error
 * texts, and the kuma.io/mesh resolution order. Each case is the pod's
 * annotations, the parsed result and the exact problems reported.
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

#include "core/annotations.h"
#include "util/xalloc.h"

#define P "prometheus.metrics.kuma.io/"
#define A "prometheus.metrics.kuma.io/aggregate-"

struct parse_case {
    const char *name;
    const char *annotations; /* JSON object, or NULL for no annotations */
    /* {"port": n (only when has_port), "path": s (only when set), "any": b,
     *  "apps": [{"name", "port" (only when has_port), "path", "enabled", "address"?}]} */
    const char *result;
    /* [[field, message], ...] in the order reported */
    const char *errors;
};

static const struct parse_case parse_cases[] = {
    {"no annotations", NULL, "{\"any\":false,\"apps\":[]}", "[]"},
    {"empty object", "{}", "{\"any\":false,\"apps\":[]}", "[]"},
    {"unrelated annotations", "{\"prometheus.io/port\":\"8080\",\"kuma.io/mesh\":\"x\"}",
     "{\"any\":false,\"apps\":[]}", "[]"},
    {"docs example: port and path (testdata 07)",
     "{\"" P "port\":\"1234\",\"" P "path\":\"/non-standard-path\"}",
     "{\"port\":1234,\"path\":\"/non-standard-path\",\"any\":true,\"apps\":[]}", "[]"},
    {"port only", "{\"" P "port\":\"5670\"}", "{\"port\":5670,\"any\":true,\"apps\":[]}", "[]"},
    {"path only", "{\"" P "path\":\"/m\"}", "{\"path\":\"/m\",\"any\":true,\"apps\":[]}", "[]"},
    {"empty path counts as absent", "{\"" P "path\":\"\"}", "{\"any\":false,\"apps\":[]}", "[]"},
    {"port 0 parses (Kuma never range-checks)", "{\"" P "port\":\"0\"}",
     "{\"port\":0,\"any\":true,\"apps\":[]}", "[]"},
    {"leading zeros", "{\"" P "port\":\"007\"}", "{\"port\":7,\"any\":true,\"apps\":[]}", "[]"},
    {"largest uint32", "{\"" P "port\":\"4294967295\"}",
     "{\"port\":4294967295,\"any\":true,\"apps\":[]}", "[]"},
    {"not a TCP port but a uint32", "{\"" P "port\":\"70000\"}",
     "{\"port\":70000,\"any\":true,\"apps\":[]}", "[]"},
    {"port abc", "{\"" P "port\":\"abc\"}", "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"failed to parse annotation \\\"" P "port\\\": strconv.ParseUint: parsing "
     "\\\"abc\\\": invalid syntax\"]]"},
    {"port out of range", "{\"" P "port\":\"4294967296\"}", "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"failed to parse annotation \\\"" P "port\\\": strconv.ParseUint: parsing "
     "\\\"4294967296\\\": value out of range\"]]"},
    {"overflow is found before a later bad character", "{\"" P "port\":\"99999999999abc\"}",
     "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"failed to parse annotation \\\"" P "port\\\": strconv.ParseUint: parsing "
     "\\\"99999999999abc\\\": value out of range\"]]"},
    {"bad character before overflow", "{\"" P "port\":\"9x99999999999\"}",
     "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"failed to parse annotation \\\"" P "port\\\": strconv.ParseUint: parsing "
     "\\\"9x99999999999\\\": invalid syntax\"]]"},
    {"empty port", "{\"" P "port\":\"\"}", "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"failed to parse annotation \\\"" P "port\\\": strconv.ParseUint: parsing "
     "\\\"\\\": invalid syntax\"]]"},
    {"sign is not allowed", "{\"" P "port\":\"+80\"}", "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"failed to parse annotation \\\"" P "port\\\": strconv.ParseUint: parsing "
     "\\\"+80\\\": invalid syntax\"]]"},
    {"negative", "{\"" P "port\":\"-1\"}", "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"failed to parse annotation \\\"" P "port\\\": strconv.ParseUint: parsing "
     "\\\"-1\\\": invalid syntax\"]]"},
    {"spaces", "{\"" P "port\":\" 80\"}", "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"failed to parse annotation \\\"" P "port\\\": strconv.ParseUint: parsing "
     "\\\" 80\\\": invalid syntax\"]]"},
    {"hex and underscores need base 0", "{\"" P "port\":\"0x50\",\"" A "a-port\":\"1_000\"}",
     "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"failed to parse annotation \\\"" P "port\\\": strconv.ParseUint: parsing "
     "\\\"0x50\\\": invalid syntax\"],"
     "[\"\",\"failed to parse annotation \\\"" A "a-port\\\": strconv.ParseUint: parsing "
     "\\\"1_000\\\": invalid syntax\"]]"},
    {"Go quoting of the value", "{\"" P "port\":\"a\\\"b\\\\c\\t\\u0001\\u007f\"}",
     "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"failed to parse annotation \\\"" P "port\\\": strconv.ParseUint: parsing "
     "\\\"a\\\\\\\"b\\\\\\\\c\\\\t\\\\x01\\\\x7f\\\": invalid syntax\"]]"},
    {"Go quoting keeps printable Unicode, escapes invisible",
     "{\"" P "port\":\"\\u00e9\\u00a0\\u200b\\ud83d\\ude00\\u0085\"}",
     "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"failed to parse annotation \\\"" P "port\\\": strconv.ParseUint: parsing "
     "\\\"\\u00e9\\\\u00a0\\\\u200b\\ud83d\\ude00\\\\u0085\\\": invalid syntax\"]]"},
    {"non-string port", "{\"" P "port\":8080}", "{\"any\":false,\"apps\":[]}",
     "[[\"" P "port\",\"annotation value must be a string, not a number\"]]"},
    {"non-string path", "{\"" P "path\":true}", "{\"any\":false,\"apps\":[]}",
     "[[\"" P "path\",\"annotation value must be a string, not a boolean\"]]"},
    {"keys are case-sensitive", "{\"Prometheus.metrics.kuma.io/port\":\"1\",\"" A "x-Port\":\"1\"}",
     "{\"any\":false,\"apps\":[]}", "[]"},

    /* aggregate-<name>-* */
    {"aggregate port and path",
     "{\"" A "application-port\":\"80\",\"" A "application-path\":\"/stats\"}",
     "{\"any\":true,\"apps\":[{\"name\":\"application\",\"port\":80,\"path\":\"/stats\","
     "\"enabled\":true}]}",
     "[]"},
    {"aggregate path defaults to /metrics", "{\"" A "app-port\":\"8080\"}",
     "{\"any\":true,\"apps\":[{\"name\":\"app\",\"port\":8080,\"path\":\"/metrics\","
     "\"enabled\":true}]}",
     "[]"},
    {"Kuma test: disabled without port", "{\"" A "disabled-enabled\":\"false\"}",
     "{\"any\":true,\"apps\":[{\"name\":\"disabled\",\"path\":\"/metrics\",\"enabled\":false}]}",
     "[]"},
    {"Kuma test: my-app has no port",
     "{\"" A "my-app-path\":\"/x\",\"" A "my-app-2-port\":\"123\"}",
     "{\"any\":true,\"apps\":[{\"name\":\"my-app-2\",\"port\":123,\"path\":\"/metrics\","
     "\"enabled\":true}]}",
     "[[\"" A "my-app-port\",\"port needs to be specified for metrics scraping\"]]"},
    {"Kuma test: 123a", "{\"" A "my-app-2-port\":\"123a\"}", "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"failed to parse annotation \\\"" A "my-app-2-port\\\": strconv.ParseUint: "
     "parsing \\\"123a\\\": invalid syntax\"]]"},
    {"greedy name: default-path", "{\"" A "default-path-port\":\"8080\"}",
     "{\"any\":true,\"apps\":[{\"name\":\"default-path\",\"port\":8080,\"path\":\"/metrics\","
     "\"enabled\":true}]}",
     "[]"},
    {"greedy name: enabled-port", "{\"" A "x-enabled-port\":\"1\",\"" A "x-enabled\":\"no\"}",
     "{\"any\":true,\"apps\":[{\"name\":\"x\",\"path\":\"/metrics\",\"enabled\":false},"
     "{\"name\":\"x-enabled\",\"port\":1,\"path\":\"/metrics\",\"enabled\":true}]}",
     "[]"},
    {"underscore and dot names are silently ignored",
     "{\"" A "my_app-port\":\"8080\",\"" A "my.app-port\":\"8080\"}", "{\"any\":false,\"apps\":[]}",
     "[]"},
    {"empty name does not match, a dash does", "{\"" A "-port\":\"1\",\"" A "--port\":\"2\"}",
     "{\"any\":true,\"apps\":[{\"name\":\"-\",\"port\":2,\"path\":\"/metrics\","
     "\"enabled\":true}]}",
     "[]"},
    {"unknown suffix does not match", "{\"" A "x-port-extra\":\"1\",\"" A "x-scheme\":\"https\"}",
     "{\"any\":false,\"apps\":[]}", "[]"},
    {"address alone does not register an app", "{\"" A "x-address\":\"10.0.0.1\"}",
     "{\"any\":false,\"apps\":[]}", "[]"},
    {"address is read with a port", "{\"" A "x-address\":\"127.0.0.1\",\"" A "x-port\":\"1234\"}",
     "{\"any\":true,\"apps\":[{\"name\":\"x\",\"port\":1234,\"path\":\"/metrics\","
     "\"enabled\":true,\"address\":\"127.0.0.1\"}]}",
     "[]"},
    {"address is read with enabled only",
     "{\"" A "x-address\":\"::1\",\"" A "x-enabled\":\"false\"}",
     "{\"any\":true,\"apps\":[{\"name\":\"x\",\"path\":\"/metrics\",\"enabled\":false,"
     "\"address\":\"::1\"}]}",
     "[]"},
    {"empty address counts as absent", "{\"" A "x-address\":\"\",\"" A "x-port\":\"1\"}",
     "{\"any\":true,\"apps\":[{\"name\":\"x\",\"port\":1,\"path\":\"/metrics\","
     "\"enabled\":true}]}",
     "[]"},
    {"present empty aggregate path stays empty", "{\"" A "x-path\":\"\",\"" A "x-port\":\"1\"}",
     "{\"any\":true,\"apps\":[{\"name\":\"x\",\"port\":1,\"path\":\"\",\"enabled\":true}]}", "[]"},
    {"enabled accepts true|yes|enabled|false|no|disabled",
     "{\"" A "a-enabled\":\"true\",\"" A "a-port\":\"1\",\"" A "b-enabled\":\"yes\",\"" A
     "b-port\":\"2\",\"" A "c-enabled\":\"enabled\",\"" A "c-port\":\"3\",\"" A
     "d-enabled\":\"false\",\"" A "e-enabled\":\"no\",\"" A "f-enabled\":\"disabled\"}",
     "{\"any\":true,\"apps\":["
     "{\"name\":\"a\",\"port\":1,\"path\":\"/metrics\",\"enabled\":true},"
     "{\"name\":\"b\",\"port\":2,\"path\":\"/metrics\",\"enabled\":true},"
     "{\"name\":\"c\",\"port\":3,\"path\":\"/metrics\",\"enabled\":true},"
     "{\"name\":\"d\",\"path\":\"/metrics\",\"enabled\":false},"
     "{\"name\":\"e\",\"path\":\"/metrics\",\"enabled\":false},"
     "{\"name\":\"f\",\"path\":\"/metrics\",\"enabled\":false}]}",
     "[]"},
    {"enabled is case-sensitive; no port error after a bad enabled",
     "{\"" A "a-enabled\":\"True\"}", "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"annotation \\\"" A "a-enabled\\\" has wrong value \\\"True\\\"\"]]"},
    {"enabled 1 is wrong", "{\"" A "a-enabled\":\"1\",\"" A "a-port\":\"80\"}",
     "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"annotation \\\"" A "a-enabled\\\" has wrong value \\\"1\\\"\"]]"},
    {"disabled app still reports a bad port",
     "{\"" A "x-enabled\":\"false\",\"" A "x-port\":\"abc\"}", "{\"any\":false,\"apps\":[]}",
     "[[\"\",\"failed to parse annotation \\\"" A "x-port\\\": strconv.ParseUint: parsing "
     "\\\"abc\\\": invalid syntax\"]]"},
    {"aggregate port is not range-checked", "{\"" A "x-port\":\"0\",\"" A "y-port\":\"70000\"}",
     "{\"any\":true,\"apps\":[{\"name\":\"x\",\"port\":0,\"path\":\"/metrics\",\"enabled\":true},"
     "{\"name\":\"y\",\"port\":70000,\"path\":\"/metrics\",\"enabled\":true}]}",
     "[]"},
    {"non-string aggregate value counts as present but bad", "{\"" A "x-port\":80}",
     "{\"any\":false,\"apps\":[]}",
     "[[\"" A "x-port\",\"annotation value must be a string, not a number\"]]"},
    {"non-string address drops the app", "{\"" A "x-port\":\"80\",\"" A "x-address\":[]}",
     "{\"any\":false,\"apps\":[]}",
     "[[\"" A "x-address\",\"annotation value must be a string, not an array\"]]"},
    {"apps sorted bytewise, errors in name order, the rest still applies",
     "{\"" P "port\":\"x\",\"" A "zeta-port\":\"3\",\"" A "alpha-port\":\"1\",\"" A
     "Beta-port\":\"2\",\"" A "mid-enabled\":\"maybe\",\"" A "bad-path\":\"/p\"}",
     "{\"any\":true,\"apps\":["
     "{\"name\":\"Beta\",\"port\":2,\"path\":\"/metrics\",\"enabled\":true},"
     "{\"name\":\"alpha\",\"port\":1,\"path\":\"/metrics\",\"enabled\":true},"
     "{\"name\":\"zeta\",\"port\":3,\"path\":\"/metrics\",\"enabled\":true}]}",
     "[[\"\",\"failed to parse annotation \\\"" P "port\\\": strconv.ParseUint: parsing "
     "\\\"x\\\": invalid syntax\"],"
     "[\"" A "bad-port\",\"port needs to be specified for metrics scraping\"],"
     "[\"\",\"annotation \\\"" A "mid-enabled\\\" has wrong value \\\"maybe\\\"\"]]"},
    {"docs example: Traffic Metrics aggregate annotations",
     "{\"" A "my-service-enabled\":\"false\",\"" A "other-sidecar-port\":\"1234\",\"" A
     "application-port\":\"80\",\"" A "application-path\":\"/stats\"}",
     "{\"any\":true,\"apps\":["
     "{\"name\":\"application\",\"port\":80,\"path\":\"/stats\",\"enabled\":true},"
     "{\"name\":\"my-service\",\"path\":\"/metrics\",\"enabled\":false},"
     "{\"name\":\"other-sidecar\",\"port\":1234,\"path\":\"/metrics\",\"enabled\":true}]}",
     "[]"},
};

static json_t *result_json(const struct annot_metrics *m)
{
    json_t *r = json_object();
    if (m->has_port)
        json_object_set_new(r, "port", json_integer(m->port));
    if (m->path)
        json_object_set_new(r, "path", json_string(m->path));
    json_object_set_new(r, "any", json_boolean(m->any));
    json_t *apps = json_array();
    for (size_t i = 0; i < m->n_apps; i++) {
        const struct annot_app *a = &m->apps[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(a->name));
        if (a->has_port)
            json_object_set_new(o, "port", json_integer(a->port));
        assert_non_null(a->path);
        json_object_set_new(o, "path", json_string(a->path));
        json_object_set_new(o, "enabled", json_boolean(a->enabled));
        if (a->address)
            json_object_set_new(o, "address", json_string(a->address));
        json_array_append_new(apps, o);
    }
    json_object_set_new(r, "apps", apps);
    return r;
}

static json_t *errors_json(const struct violations *v)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < v->len; i++)
        json_array_append_new(arr, json_pack("[s,s]", v->items[i].field, v->items[i].message));
    return arr;
}

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    return v;
}

static void check_json(const char *what, const char *name, json_t *got, const char *want_text)
{
    json_t *want = load(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("case \"%s\": %s\n got  %s\n want %s", name, what, g, w);
    }
    json_decref(want);
}

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof parse_cases / sizeof *parse_cases; i++) {
        const struct parse_case *c = &parse_cases[i];
        json_t *in = c->annotations ? load(c->annotations) : NULL;
        struct annot_metrics m;
        struct violations errs;
        annotations_init(&m);
        violations_init(&errs);
        bool ok = annotations_parse(in, &m, &errs);
        json_t *got = result_json(&m);
        json_t *got_errs = errors_json(&errs);
        check_json("result", c->name, got, c->result);
        check_json("errors", c->name, got_errs, c->errors);
        if (ok != (errs.len == 0))
            fail_msg("case \"%s\": returned %d with %zu errors", c->name, ok, errs.len);
        json_decref(got);
        json_decref(got_errs);
        json_decref(in);
        annotations_cleanup(&m);
        violations_cleanup(&errs);
    }
}

/* Bytes that are not UTF-8 cannot come from json_loads; build them directly. */
static void test_quote_invalid_utf8(void **state)
{
    (void)state;
    json_t *in = json_object();
    json_object_set_new_nocheck(in, P "port", json_string_nocheck("1\xff\xc3(2"));
    struct annot_metrics m;
    struct violations errs;
    annotations_init(&m);
    violations_init(&errs);
    assert_false(annotations_parse(in, &m, &errs));
    assert_int_equal(errs.len, 1);
    assert_string_equal(errs.items[0].message,
                        "failed to parse annotation \"" P "port\": strconv.ParseUint: parsing "
                        "\"1\\xff\\xc3(2\": invalid syntax");
    assert_false(m.has_port);
    annotations_cleanup(&m);
    violations_cleanup(&errs);
    json_decref(in);
}

/* The worst-case expansion (every byte escaped as \xNN) is not truncated. */
static void test_quote_worst_case(void **state)
{
    (void)state;
    char value[301], want[2048];
    memset(value, 0x01, 300);
    value[300] = '\0';
    int off = snprintf(want, sizeof want,
                       "failed to parse annotation \"" P "port\": strconv.ParseUint: parsing \"");
    for (int i = 0; i < 300; i++)
        off += snprintf(want + off, sizeof want - (size_t)off, "\\x01");
    snprintf(want + off, sizeof want - (size_t)off, "\": invalid syntax");
    json_t *in = json_pack("{s:s}", P "port", value);
    struct annot_metrics m;
    struct violations errs;
    annotations_init(&m);
    violations_init(&errs);
    assert_false(annotations_parse(in, &m, &errs));
    assert_int_equal(errs.len, 1);
    assert_string_equal(errs.items[0].message, want);
    annotations_cleanup(&m);
    violations_cleanup(&errs);
    json_decref(in);
}

/* Non-object input is treated as "no annotations", and errors append to what is there. */
static void test_parse_edges(void **state)
{
    (void)state;
    struct annot_metrics m;
    struct violations errs;
    annotations_init(&m);
    violations_init(&errs);
    violations_add(&errs, "earlier", "kept");
    json_t *arr = json_array();
    assert_true(annotations_parse(arr, &m, &errs));
    assert_false(m.any);
    json_t *bad = load("{\"" P "port\":\"x\"}");
    assert_false(annotations_parse(bad, &m, &errs));
    assert_int_equal(errs.len, 2);
    assert_string_equal(errs.items[0].field, "earlier");
    annotations_cleanup(&m);
    annotations_cleanup(&m); /* idempotent */
    violations_cleanup(&errs);
    json_decref(arr);
    json_decref(bad);
}

/* A pod with many aggregate annotations: all parsed, sorted, no quadratic blow-up in memory. */
static void test_many_apps(void **state)
{
    (void)state;
    json_t *in = json_object();
    for (int i = 999; i >= 0; i--) {
        char key[128], val[16];
        snprintf(key, sizeof key, A "app%04d-port", i);
        snprintf(val, sizeof val, "%d", 1000 + i);
        json_object_set_new(in, key, json_string(val));
    }
    struct annot_metrics m;
    struct violations errs;
    annotations_init(&m);
    violations_init(&errs);
    assert_true(annotations_parse(in, &m, &errs));
    assert_int_equal(m.n_apps, 1000);
    assert_string_equal(m.apps[0].name, "app0000");
    assert_int_equal(m.apps[0].port, 1000);
    assert_string_equal(m.apps[999].name, "app0999");
    annotations_cleanup(&m);
    violations_cleanup(&errs);
    json_decref(in);
}

struct mesh_case {
    const char *name;
    const char *pod_labels, *pod_annotations, *ns_labels, *ns_annotations; /* JSON or NULL */
    const char *want;
};

static const struct mesh_case mesh_cases[] = {
    {"nothing set", NULL, NULL, NULL, NULL, "default"},
    {"pod label wins", "{\"kuma.io/mesh\":\"a\"}", "{\"kuma.io/mesh\":\"b\"}",
     "{\"kuma.io/mesh\":\"c\"}", "{\"kuma.io/mesh\":\"d\"}", "a"},
    {"pod annotation next", "{}", "{\"kuma.io/mesh\":\"b\"}", "{\"kuma.io/mesh\":\"c\"}",
     "{\"kuma.io/mesh\":\"d\"}", "b"},
    {"namespace label next", NULL, NULL, "{\"kuma.io/mesh\":\"c\"}", "{\"kuma.io/mesh\":\"d\"}",
     "c"},
    {"namespace annotation last", NULL, NULL, NULL, "{\"kuma.io/mesh\":\"d\"}", "d"},
    {"empty values are skipped", "{\"kuma.io/mesh\":\"\"}", "{\"kuma.io/mesh\":\"\"}",
     "{\"kuma.io/mesh\":\"c\"}", NULL, "c"},
    {"non-string values are skipped", "{\"kuma.io/mesh\":1}", NULL, NULL, NULL, "default"},
    {"other keys do not count", "{\"kuma.io/meshes\":\"x\",\"mesh\":\"y\"}", NULL, NULL, NULL,
     "default"},
};

static void test_mesh_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mesh_cases / sizeof *mesh_cases; i++) {
        const struct mesh_case *c = &mesh_cases[i];
        json_t *pl = c->pod_labels ? load(c->pod_labels) : NULL;
        json_t *pa = c->pod_annotations ? load(c->pod_annotations) : NULL;
        json_t *nl = c->ns_labels ? load(c->ns_labels) : NULL;
        json_t *na = c->ns_annotations ? load(c->ns_annotations) : NULL;
        const char *got = annotations_mesh(pl, pa, nl, na);
        if (strcmp(got, c->want))
            fail_msg("case \"%s\": got %s want %s", c->name, got, c->want);
        json_decref(pl);
        json_decref(pa);
        json_decref(nl);
        json_decref(na);
    }
}

/* Fixtures in tests/data/annotations/ (see its README.md). */
static void test_fixtures(void **state)
{
    (void)state;
    static const char *const fixtures[] = {"path-without-slash", "aggregate-path-without-slash"};
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
        char *dir = tu_testdata();
        char *path = xasprintf("%s/annotations/%s.yaml", dir, fixtures[i]);
        json_t *docs = tu_load_yaml(path, true);
        json_t *expect = json_array_get(docs, 1);
        struct annot_metrics m;
        struct violations errs;
        annotations_init(&m);
        violations_init(&errs);
        (void)annotations_parse(json_array_get(docs, 0), &m, &errs);
        json_t *got = result_json(&m);
        json_t *got_errs = errors_json(&errs);
        if (!json_equal(got, json_object_get(expect, "result")) ||
            !json_equal(got_errs, json_object_get(expect, "errors"))) {
            char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
            char *e = json_dumps(got_errs, JSON_COMPACT);
            fail_msg("fixture %s: got %s %s", fixtures[i], g, e);
        }
        json_decref(got);
        json_decref(got_errs);
        annotations_cleanup(&m);
        violations_cleanup(&errs);
        json_decref(docs);
        free(path);
        free(dir);
    }
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table), cmocka_unit_test(test_quote_invalid_utf8),
        cmocka_unit_test(test_fixtures),    cmocka_unit_test(test_quote_worst_case),
        cmocka_unit_test(test_parse_edges), cmocka_unit_test(test_many_apps),
        cmocka_unit_test(test_mesh_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
