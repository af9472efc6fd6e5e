/*
 * The RFC 7396 merge and whole evaluations: selection, SortByTargetRef order,
 * merge and the layers, with their origins and warnings.
 * Policies here are wrapped without validation (policy_wrap) so selection and
 * ordering can be tested on any shape; test_meshmetric covers validation.
 * Inline tables for the small functions; tests/data/match/<case>/ fixtures
 * ({policies.yaml, pod.yaml, expected.json}) for whole evaluations.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "core/match.h"
#include "core/merge.h"
#include "core/order.h"
#include "core/policy.h"
#include "core/select.h"
#include "core/view.h"
#include "util/fileio.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!v)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    return v;
}

static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static struct policy *wrap_obj(json_t *obj, const char *system_namespace)
{
    struct policy_load_options lo = {system_namespace, NULL};
    return policy_wrap(obj, &lo);
}

static void check_json(const char *what, json_t *got, const char *want_text)
{
    json_t *want = load(want_text);
    if (!json_equal(got, want)) {
        char *g = dump(got), *w = dump(want);
        fail_msg("%s:\n got  %s\n want %s", what, g, w);
    }
    json_decref(want);
}

/* A view of the objects in the JSON arrays texts[0..n) (MeshMetrics wrapped as is). */
static struct policy_view *view_of(const char *const *texts, size_t n, const char *system_namespace)
{
    struct view_options vo = {.system_namespace = system_namespace, .zone = NULL};
    struct view_builder *b = view_builder_create(&vo);
    for (size_t t = 0; t < n; t++) {
        json_t *arr = load(texts[t]);
        size_t i;
        json_t *o;
        json_array_foreach(arr, i, o)
        {
            const char *kind = json_string_value(json_object_get(o, "kind"));
            if (!kind || !strcmp(kind, "MeshMetric")) {
                struct policy *p = wrap_obj(json_incref(o), system_namespace);
                if (p)
                    view_builder_add_policy(b, p);
            } else {
                struct mm_error err;
                if (view_builder_add(b, o, NULL, &err) != MM_OK)
                    fail_msg("view_of: %s", err.message);
            }
        }
        json_decref(arr);
    }
    return view_builder_finish(b, 1);
}

/* ---- RFC 7396 merge ------------------------------------------------------ */

struct merge_case {
    const char *name, *target, *patch, *want;
};

static const struct merge_case merge_cases[] = {
    /* RFC 7396 Appendix A, the cases where target and patch are objects. */
    {"rfc 1", "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
    {"rfc 2", "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
    {"rfc 3", "{\"a\":\"b\"}", "{\"a\":null}", "{}"},
    {"rfc 4", "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
    {"rfc 5", "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
    {"rfc 6", "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
    {"rfc 7", "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
    {"rfc 8", "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
    {"rfc 13", "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
    {"rfc 15", "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
    /* Kuma docs, "Merging configuration". */
    {"docs: empty array wipes, arrays replaced whole",
     "{\"conf\":1,\"sub\":{\"array\":[1,2,3],\"other-array\":[3,4,5]}}",
     "{\"sub\":{\"array\":[],\"other-array\":[5,6]}}",
     "{\"conf\":1,\"sub\":{\"array\":[],\"other-array\":[5,6]}}"},
    {"arrays of objects are not merged by key",
     "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":1}}]}",
     "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"path\":\"/x\"}}]}",
     "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"path\":\"/x\"}}]}"},
    {"appendProfiles concatenates",
     "{\"sidecar\":{\"profiles\":{\"appendProfiles\":[{\"name\":\"Basic\"}],\"include\":[1]}}}",
     "{\"sidecar\":{\"profiles\":{\"appendProfiles\":[{\"name\":\"All\"}],\"include\":[2]}}}",
     "{\"sidecar\":{\"profiles\":{\"appendProfiles\":[{\"name\":\"Basic\"},{\"name\":\"All\"}],"
     "\"include\":[2]}}}"},
    {"empty appendProfiles adds nothing", "{\"appendX\":[1]}", "{\"appendX\":[]}",
     "{\"appendX\":[1]}"},
    {"append onto a non-array replaces it", "{\"appendX\":\"s\"}", "{\"appendX\":[1]}",
     "{\"appendX\":[1]}"},
    {"append with a non-array value replaces", "{\"appendX\":[1]}", "{\"appendX\":2}",
     "{\"appendX\":2}"},
    {"null removes an append list", "{\"appendX\":[1]}", "{\"appendX\":null}", "{}"},
    {"nulls pruned inside copied arrays (Kuma's pruneNulls)", "{}",
     "{\"a\":[{\"b\":null,\"c\":{\"d\":null,\"e\":1}},null]}", "{\"a\":[{\"c\":{\"e\":1}},null]}"},
    {"object replaces scalar", "{\"a\":1}", "{\"a\":{\"b\":null,\"c\":2}}", "{\"a\":{\"c\":2}}"},
    {"scalar replaces object", "{\"a\":{\"b\":1}}", "{\"a\":false}", "{\"a\":false}"},
    {"deleting a missing key is a no-op", "{\"a\":1}", "{\"b\":null}", "{\"a\":1}"},
    {"empty patch", "{\"a\":1}", "{}", "{\"a\":1}"},
    /* Not objects: left alone (callers only merge objects). */
    {"non-object patch leaves target", "{\"a\":1}", "[1]", "{\"a\":1}"},
    {"non-object target is left alone", "[1,2]", "{\"a\":1}", "[1,2]"},
};

static void test_merge_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof merge_cases / sizeof *merge_cases; i++) {
        const struct merge_case *c = &merge_cases[i];
        json_t *target = load(c->target), *patch = load(c->patch), *want = load(c->want);
        json_t *patch_copy = json_deep_copy(patch);
        merge_patch(target, patch);
        if (!json_equal(target, want)) {
            char *g = dump(target);
            fail_msg("case \"%s\": got %s want %s", c->name, g, c->want);
        }
        if (!json_equal(patch, patch_copy))
            fail_msg("case \"%s\": the patch was modified", c->name);
        /* The result shares nothing with the patch. */
        json_object_clear(patch);
        if (!json_equal(target, want))
            fail_msg("case \"%s\": result aliases the patch", c->name);
        json_decref(target);
        json_decref(patch);
        json_decref(patch_copy);
        json_decref(want);
    }
}

/* Ordering, the dataplane view and selection have their own tests (test_select.c,
 * test_dataplane.c, with Kuma's tables and fixtures); here they are exercised
 * through whole evaluations. */

#define SYS "kuma-system"
#define K(kind) "{\"kind\":\"" kind "\"}"

/* ---- evaluation: inline cases -------------------------------------------------------- */

static void test_mode_names(void **state)
{
    (void)state;
    assert_string_equal(match_mode_name(MATCH_MODE_NONE), "None");
    assert_string_equal(match_mode_name(MATCH_MODE_MESHMETRIC), "MeshMetric");
    assert_string_equal(match_mode_name(MATCH_MODE_LEGACY), "Legacy");
    assert_string_equal(match_mode_name(MATCH_MODE_ANNOTATIONS), "Annotations");
    assert_string_equal(match_mode_name((enum match_mode)42), "None");
}

/* No set, no annotations: mode None, empty results; a result can be evaluated into twice. */
static void test_evaluate_nothing(void **state)
{
    (void)state;
    json_t *pod = load("{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\"}}");
    struct dataplane dp;
    struct match_result r;
    dataplane_from_pod(pod, NULL, NULL, NULL, &dp);
    match_result_init(&r);
    match_evaluate(&dp, NULL, NULL, &r);
    assert_int_equal(r.mode, MATCH_MODE_NONE);
    check_json("policies", r.policies, "[]");
    check_json("effective", r.effective, "{}");
    check_json("origins", r.origins, "{}");
    assert_int_equal(r.warnings.len, 0);

    json_t *ann = load("{\"prometheus.metrics.kuma.io/port\":\"abc\"}");
    match_evaluate(&dp, NULL, ann, &r);
    assert_int_equal(r.mode, MATCH_MODE_NONE);
    assert_int_equal(r.warnings.len, 1);
    match_evaluate(&dp, NULL, NULL, &r); /* previous warnings are gone */
    assert_int_equal(r.warnings.len, 0);
    match_result_cleanup(&r);
    match_result_cleanup(&r); /* idempotent */
    dataplane_cleanup(&dp);
    json_decref(ann);
    json_decref(pod);
}

struct eval_case {
    const char *name;
    const char *meshmetrics; /* JSON array, used as is (no defaulting) */
    const char *annotations; /* JSON object or NULL */
    const char *mode;
    const char *policies, *effective, *origins, *warnings; /* warnings: [[field, message]] */
};

#define MMP(name, tr, def)                                                                         \
    "{\"kind\":\"MeshMetric\",\"metadata\":{\"name\":\"" name "\",\"namespace\":\"" SYS            \
    "\"},\"spec\":{\"targetRef\":" tr ",\"default\":" def "}}"
#define PROM(port)                                                                                 \
    "{\"type\":\"Prometheus\",\"prometheus\":{\"port\":" #port ",\"path\":\"/metrics\"}}"
#define AP "prometheus.metrics.kuma.io/"
#define AG "prometheus.metrics.kuma.io/aggregate-"

static const struct eval_case eval_cases[] = {
    {"port 0 and 70000 annotations are ignored with warnings",
     "[" MMP("m", K("Mesh"), "{\"backends\":[" PROM(5670) "]}") "]", "{\"" AP "port\":\"0\"}",
     "MeshMetric", "[\"kuma-system/m\"]", "{\"backends\":[" PROM(5670) "]}",
     "{\"/backends\":\"kuma-system/m\"}",
     "[[\"" AP "port\",\"port 0 never overrides the configured port (Kuma skips zero values); "
     "ignored\"]]"},
    {"port above 65535 is ignored with a warning",
     "[" MMP("m", K("Mesh"), "{\"backends\":[" PROM(5670) "]}") "]",
     "{\"" AP "port\":\"70000\",\"" AP "path\":\"/p\"}", "MeshMetric", "[\"kuma-system/m\"]",
     "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":5670,\"path\":\"/p\"}}]}",
     "{\"/backends\":\"kuma-system/m\",\"/backends/0/prometheus/path\":\"annotation:" AP "path\"}",
     "[[\"" AP "port\",\"port 70000 is not a valid TCP port (1-65535); ignored\"]]"},
    {"port goes to the first Prometheus backend",
     "[" MMP("m", K("Mesh"),
             "{\"backends\":[{\"type\":\"OpenTelemetry\",\"openTelemetry\":{\"endpoint\":\"c:"
             "4317\"}}," PROM(1) "," PROM(2) "]}") "]",
     "{\"" AP "port\":\"9999\"}", "MeshMetric", "[\"kuma-system/m\"]",
     "{\"backends\":[{\"type\":\"OpenTelemetry\",\"openTelemetry\":{\"endpoint\":\"c:4317\"}}"
     "," PROM(9999) "," PROM(2) "]}",
     "{\"/backends\":\"kuma-system/m\",\"/backends/1/prometheus/port\":\"annotation:" AP "port\"}",
     "[]"},
    {"a backend is created when there is no Prometheus one",
     "[" MMP("m", K("Mesh"), "{\"sidecar\":{\"includeUnused\":true}}") "]",
     "{\"" AP "path\":\"/x\"}", "MeshMetric", "[\"kuma-system/m\"]",
     "{\"sidecar\":{\"includeUnused\":true},\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":"
     "{\"port\":5670,\"path\":\"/x\",\"tls\":{\"mode\":\"Disabled\"}}}]}",
     "{\"/sidecar/includeUnused\":\"kuma-system/m\",\"/backends/0\":\"default\","
     "\"/backends/0/prometheus/path\":\"annotation:" AP "path\"}",
     "[]"},
    {"aggregates alone do not create a backend", "[" MMP("m", K("Mesh"), "{\"backends\":[]}") "]",
     "{\"" AG "a-port\":\"81\"}", "MeshMetric", "[\"kuma-system/m\"]",
     "{\"backends\":[],\"applications\":[{\"name\":\"a\",\"path\":\"/metrics\",\"port\":81}]}",
     "{\"/backends\":\"kuma-system/m\",\"/applications/0\":\"annotation:" AG "a-port\","
     "\"/applications/0/path\":\"default\"}",
     "[]"},
    {"aggregates replace, remove and append by name; origins follow the elements",
     "[" MMP("m", K("Mesh"),
             "{\"applications\":[{\"name\":\"keep\",\"port\":1},{\"port\":2},"
             "{\"name\":\"swap\",\"port\":3,\"path\":\"/old\"},{\"name\":\"drop\",\"port\":4},"
             "{\"name\":\"swap\",\"port\":5}]}") "]",
     "{\"" AG "swap-port\":\"30\",\"" AG "swap-address\":\"127.0.0.1\",\"" AG
     "drop-enabled\":\"false\",\"" AG "new-port\":\"60\",\"" AG "new-path\":\"/n\",\"" AG
     "ghost-enabled\":\"no\",\"" AG "bad-port\":\"0\"}",
     "MeshMetric", "[\"kuma-system/m\"]",
     "{\"applications\":[{\"name\":\"keep\",\"port\":1},{\"port\":2},"
     "{\"name\":\"swap\",\"path\":\"/metrics\",\"port\":30,\"address\":\"127.0.0.1\"},"
     "{\"name\":\"new\",\"path\":\"/n\",\"port\":60}]}",
     "{\"/applications/0\":\"kuma-system/m\",\"/applications/1\":\"kuma-system/m\","
     "\"/applications/2\":\"annotation:" AG "swap-port\",\"/applications/2/path\":\"default\","
     "\"/applications/2/address\":\"annotation:" AG "swap-address\","
     "\"/applications/3\":\"annotation:" AG "new-port\","
     "\"/applications/3/path\":\"annotation:" AG "new-path\"}",
     "[[\"" AG "bad-port\",\"port 0 is not a valid TCP port (1-65535); the annotations of "
     "application \\\"bad\\\" are ignored\"]]"},
    {"disabling every application leaves none",
     "[" MMP("m", K("Mesh"), "{\"applications\":[{\"name\":\"a\",\"port\":1}]}") "]",
     "{\"" AG "a-enabled\":\"false\"}", "MeshMetric", "[\"kuma-system/m\"]", "{}", "{}", "[]"},
    {"annotation parse errors become warnings and the rest applies",
     "[" MMP("m", K("Mesh"), "{\"backends\":[" PROM(5670) "]}") "]",
     "{\"" AP "port\":\"x1\",\"" AP "path\":\"/ok\",\"" AG "a-path\":\"/a\"}", "MeshMetric",
     "[\"kuma-system/m\"]",
     "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":5670,\"path\":\"/ok\"}}]}",
     "{\"/backends\":\"kuma-system/m\",\"/backends/0/prometheus/path\":\"annotation:" AP "path\"}",
     "[[\"\",\"failed to parse annotation \\\"" AP "port\\\": strconv.ParseUint: parsing "
     "\\\"x1\\\": invalid syntax\"],"
     "[\"" AG "a-port\",\"port needs to be specified for metrics scraping\"]]"},
    {"a default that is not an object is skipped with a warning",
     "[" MMP("a", K("Mesh"), "[1]") "," MMP(
         "b", K("Mesh"), "{\"sidecar\":{}}") ","
                                             "{\"metadata\":{\"name\":\"c\",\"namespace\":\"" SYS
                                             "\"}}]",
     NULL, "MeshMetric", "[\"kuma-system/c\",\"kuma-system/b\",\"kuma-system/a\"]",
     "{\"sidecar\":{}}", "{\"/sidecar\":\"kuma-system/b\"}",
     "[[\"kuma-system/a\",\"spec.default is not an object; ignored\"]]"},
    {"null in a higher policy deletes, with its origins",
     "[" MMP(
         "b", K("Mesh"),
         "{\"sidecar\":{\"includeUnused\":true,\"profiles\":{\"exclude\":[1]}}}") "," MMP("a",
                                                                                          K("Mesh"),
                                                                                          "{\"sidec"
                                                                                          "ar\":{"
                                                                                          "\"profil"
                                                                                          "es\":"
                                                                                          "null}}") "]",
     NULL, "MeshMetric", "[\"kuma-system/b\",\"kuma-system/a\"]",
     "{\"sidecar\":{\"includeUnused\":true}}", "{\"/sidecar/includeUnused\":\"kuma-system/b\"}",
     "[]"},
    {"append origins per element, whole-array origins replaced",
     "[" MMP(
         "c", K("Mesh"),
         "{\"sidecar\":{\"profiles\":{\"appendProfiles\":[{\"name\":\"None\"}],"
         "\"include\":[{\"type\":\"Prefix\",\"match\":\"a\"}]}}}") "," MMP("b", K("Mesh"),
                                                                           "{\"sidecar\":{"
                                                                           "\"profiles\":{"
                                                                           "\"appendProfiles\":[]}}"
                                                                           "}") "," MMP("a",
                                                                                        K("Mesh"),
                                                                                        "{\"sidecar"
                                                                                        "\":{"
                                                                                        "\"profiles"
                                                                                        "\":{"
                                                                                        "\"appendPr"
                                                                                        "ofiles\":["
                                                                                        "{\"name\":"
                                                                                        "\"Basic\"}"
                                                                                        ",{"
                                                                                        "\"name\":"
                                                                                        "\"All\"}],"
                                                                                        "\"include"
                                                                                        "\":[{"
                                                                                        "\"type\":"
                                                                                        "\"Exact\","
                                                                                        "\"match\":"
                                                                                        "\"b\"}]}}"
                                                                                        "}") "]",
     NULL, "MeshMetric", "[\"kuma-system/c\",\"kuma-system/b\",\"kuma-system/a\"]",
     "{\"sidecar\":{\"profiles\":{\"appendProfiles\":[{\"name\":\"None\"},{\"name\":\"Basic\"},"
     "{\"name\":\"All\"}],\"include\":[{\"type\":\"Exact\",\"match\":\"b\"}]}}}",
     "{\"/sidecar/profiles/appendProfiles/0\":\"kuma-system/c\","
     "\"/sidecar/profiles/appendProfiles/1\":\"kuma-system/a\","
     "\"/sidecar/profiles/appendProfiles/2\":\"kuma-system/a\","
     "\"/sidecar/profiles/include\":\"kuma-system/a\"}",
     "[]"},
    {"keys with / and ~ are escaped in origins",
     "[" MMP("m", K("Mesh"), "{\"x/y\":{\"a~b\":1}}") "]", NULL, "MeshMetric",
     "[\"kuma-system/m\"]", "{\"x/y\":{\"a~b\":1}}", "{\"/x~1y/a~0b\":\"kuma-system/m\"}", "[]"},
    {"annotations only: defaults plus annotations", "[]",
     "{\"" AP "port\":\"1234\",\"" AG "app-port\":\"8080\",\"" AG "off-enabled\":\"false\"}",
     "Annotations", "[]",
     "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":1234,\"path\":\"/metrics\","
     "\"tls\":{\"mode\":\"Disabled\"}}}],\"applications\":[{\"name\":\"app\",\"path\":\"/metrics\","
     "\"port\":8080}]}",
     "{\"/backends/0\":\"default\",\"/backends/0/prometheus/port\":\"annotation:" AP "port\","
     "\"/applications/0\":\"annotation:" AG "app-port\",\"/applications/0/path\":\"default\"}",
     "[]"},
    {"annotations only, all invalid: nothing configured", "[]", "{\"" AP "port\":\"-1\"}", "None",
     "[]", "{}", "{}",
     "[[\"\",\"failed to parse annotation \\\"" AP "port\\\": strconv.ParseUint: parsing "
     "\\\"-1\\\": invalid syntax\"]]"},
    {"annotations only, port 0: the default port with a warning", "[]", "{\"" AP "port\":\"0\"}",
     "Annotations", "[]",
     "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":5670,\"path\":\"/metrics\","
     "\"tls\":{\"mode\":\"Disabled\"}}}]}",
     "{\"/backends/0\":\"default\"}",
     "[[\"" AP "port\",\"port 0 never overrides the configured port (Kuma skips zero values); "
     "ignored\"]]"},
};

static json_t *warnings_json(const struct violations *v)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < v->len; i++)
        json_array_append_new(arr, json_pack("[s,s]", v->items[i].field, v->items[i].message));
    return arr;
}

static void test_evaluate_table(void **state)
{
    (void)state;
    json_t *pod = load("{\"metadata\":{\"name\":\"p\",\"namespace\":\"app\"}}");
    for (size_t i = 0; i < sizeof eval_cases / sizeof *eval_cases; i++) {
        const struct eval_case *c = &eval_cases[i];
        struct dataplane dp;
        struct match_result r;
        struct policy_view *view = view_of(&c->meshmetrics, 1, SYS);
        json_t *ann = c->annotations ? load(c->annotations) : NULL;
        dataplane_from_pod(pod, NULL, view, NULL, &dp);
        match_result_init(&r);
        match_evaluate(&dp, view, ann, &r);
        json_t *w = warnings_json(&r.warnings);
        char what[512];
        if (strcmp(match_mode_name(r.mode), c->mode))
            fail_msg("case \"%s\": mode %s, want %s", c->name, match_mode_name(r.mode), c->mode);
        snprintf(what, sizeof what, "case \"%s\" policies", c->name);
        check_json(what, r.policies, c->policies);
        snprintf(what, sizeof what, "case \"%s\" effective", c->name);
        check_json(what, r.effective, c->effective);
        snprintf(what, sizeof what, "case \"%s\" origins", c->name);
        check_json(what, r.origins, c->origins);
        snprintf(what, sizeof what, "case \"%s\" warnings", c->name);
        check_json(what, w, c->warnings);
        json_decref(w);
        json_decref(ann);
        match_result_cleanup(&r);
        dataplane_cleanup(&dp);
        view_unref(view);
    }
    json_decref(pod);
}

/* Many policies: the sort is stable and the result is the same for any input order. */
static void test_many_policies(void **state)
{
    (void)state;
    json_t *pod = load("{\"metadata\":{\"name\":\"p\",\"namespace\":\"app\"}}");
    json_t *fwd = json_array(), *rev = json_array();
    for (int i = 0; i < 300; i++) {
        json_t *p = json_pack("{s:{s:o, s:s}, s:{s:{s:s}, s:{s:i}}}", "metadata", "name",
                              json_sprintf("p%03d", i), "namespace", i % 2 ? SYS : "app", "spec",
                              "targetRef", "kind", i % 3 ? "Mesh" : "Dataplane", "default", "n", i);
        json_array_append(fwd, p);
        json_array_insert_new(rev, 0, p);
    }
    struct dataplane dp;
    struct match_result ra, rb;
    char *tf = json_dumps(fwd, JSON_COMPACT), *tr = json_dumps(rev, JSON_COMPACT);
    json_decref(fwd);
    json_decref(rev);
    struct policy_view *a = view_of((const char *const *)&tf, 1, SYS);
    struct policy_view *b = view_of((const char *const *)&tr, 1, SYS);
    free(tf);
    free(tr);
    dataplane_from_pod(pod, NULL, a, NULL, &dp);
    match_result_init(&ra);
    match_result_init(&rb);
    match_evaluate(&dp, a, NULL, &ra);
    match_evaluate(&dp, b, NULL, &rb);
    assert_int_equal(json_array_size(ra.policies), 300);
    assert_true(json_equal(ra.policies, rb.policies));
    /* Mesh first, Dataplane after; within each, system before app; then inverted names. */
    assert_string_equal(json_string_value(json_array_get(ra.policies, 0)), "kuma-system/p299");
    assert_string_equal(json_string_value(json_array_get(ra.policies, 299)), "app/p000");
    assert_int_equal(json_integer_value(json_object_get(ra.effective, "n")), 0);
    match_result_cleanup(&ra);
    match_result_cleanup(&rb);
    dataplane_cleanup(&dp);
    view_unref(a);
    view_unref(b);
    json_decref(pod);
}

/* ---- evaluation: fixtures under tests/data/match ------------------------------------ */



static void test_fixtures(void **state)
{
    (void)state;
    const char *root = getenv("MM_TESTDATA");
    assert_non_null(root);
    char *dir = xasprintf("%s/match", root);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    assert_true(n > 2);
    int cases = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        char *base = xasprintf("%s/%s", dir, name);
        char *exp_path = xasprintf("%s/expected.json", base);
        json_error_t jerr;
        json_t *want = name[0] == '.' ? NULL : json_load_file(exp_path, 0, &jerr);
        if (want) {
            cases++;
            char *pp = xasprintf("%s/policies.yaml", base), *podp = xasprintf("%s/pod.yaml", base);
            json_t *docs = tu_load_yaml(pp, false), *pods = tu_load_yaml(podp, true);
            struct mm_error err;
            const char *sysns = json_string_value(json_object_get(want, "systemNamespace"));
            struct view_options vo = {.system_namespace = sysns ? sysns : SYS, .zone = NULL};
            struct view_builder *b = view_builder_create(&vo);
            size_t j;
            json_t *doc;
            json_array_foreach(docs, j, doc)
            {
                if (view_builder_add(b, doc, NULL, &err) != MM_OK)
                    fail_msg("%s: document %zu: %s", pp, j, err.message);
            }
            struct policy_view *view = view_builder_finish(b, 1);
            const struct view_rejection *rej = NULL;
            if (view_rejections(view, &rej))
                fail_msg("%s: %s %s is invalid: %s", pp, rej[0].kind, rej[0].id, rej[0].errors);
            const json_t *pod = json_array_get(pods, 0);
            struct dataplane dp;
            struct match_result r;
            dataplane_from_pod(pod, NULL, view, NULL, &dp);
            match_result_init(&r);
            match_evaluate(&dp, view,
                           json_object_get(json_object_get(pod, "metadata"), "annotations"), &r);
            json_t *got = json_pack("{s:s, s:O, s:O, s:O, s:o}", "mode", match_mode_name(r.mode),
                                    "policies", r.policies, "effective", r.effective, "origins",
                                    r.origins, "warnings", warnings_json(&r.warnings));
            json_object_del(want, "systemNamespace");
            json_t *cmp = json_deep_copy(got);
            /* Only the keys the fixture states are compared. */
            const char *key;
            json_t *v;
            void *tmp;
            json_object_foreach_safe(cmp, tmp, key, v)
            {
                if (!json_object_get(want, key))
                    json_object_del(cmp, key);
            }
            if (!json_equal(want, cmp)) {
                failed++;
                print_message("match fixture %s differs:\n", name);
                tu_print_diff("", want, cmp);
            }
            json_decref(cmp);
            json_decref(got);
            match_result_cleanup(&r);
            dataplane_cleanup(&dp);
            view_unref(view);
            json_decref(docs);
            json_decref(pods);
            free(pp);
            free(podp);
            json_decref(want);
        }
        free(exp_path);
        free(base);
        free(names[i]);
    }
    free(names);
    free(dir);
    print_message("%d match fixtures\n", cases);
    assert_true(cases > 0);
    if (failed)
        fail_msg("%d of %d match fixtures differ", failed, cases);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_table),        cmocka_unit_test(test_mode_names),
        cmocka_unit_test(test_evaluate_nothing),
        cmocka_unit_test(test_evaluate_table),     cmocka_unit_test(test_many_policies),
        cmocka_unit_test(test_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
