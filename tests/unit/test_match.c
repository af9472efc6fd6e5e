/*
 * Matching, SortByTargetRef ordering, the RFC 7396 merge, the dataplane view
 * of a pod, and the evaluation layers with their origins and warnings.
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

/* A policy from JSON text, as is (no validation, no defaults); NULL when not wrappable. */
static struct policy *wrap(const char *text, const char *system_namespace)
{
    struct policy_load_options lo = {system_namespace, NULL};
    return policy_wrap(load(text), &lo);
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

/* ---- ordering ----------------------------------------------------------------- */

#define POL(ns, name, labels, tr)                                                                  \
    "{\"kind\":\"MeshMetric\",\"metadata\":{\"namespace\":\"" ns "\",\"name\":\"" name             \
    "\",\"labels\":" labels "},\"spec\":{\"targetRef\":" tr "}}"
#define SYS "kuma-system"
#define K(kind) "{\"kind\":\"" kind "\"}"

struct compare_case {
    const char *name, *a, *b;
    int want; /* sign of match_compare(a, b) */
    const char *system_namespace;
};

static const struct compare_case compare_cases[] = {
    {"Mesh < MeshSubset", POL(SYS, "a", "{}", K("Mesh")), POL(SYS, "z", "{}", K("MeshSubset")), -1,
     NULL},
    {"Dataplane < MeshSubset (code, not docs)", POL(SYS, "a", "{}", K("Dataplane")),
     POL(SYS, "z", "{}", K("MeshSubset")), -1, NULL},
    {"MeshGateway > Dataplane", POL(SYS, "z", "{}", K("MeshGateway")),
     POL(SYS, "a", "{}", K("Dataplane")), 1, NULL},
    {"MeshService > MeshSubset", POL(SYS, "z", "{}", K("MeshService")),
     POL(SYS, "a", "{}", K("MeshSubset")), 1, NULL},
    {"MeshServiceSubset > MeshService", POL(SYS, "z", "{}", K("MeshServiceSubset")),
     POL(SYS, "a", "{}", K("MeshService")), 1, NULL},
    {"MeshHTTPRoute is the highest", POL(SYS, "z", "{}", K("MeshHTTPRoute")),
     POL(SYS, "a", "{}", K("MeshServiceSubset")), 1, NULL},
    {"unknown kind ranks below Mesh", POL(SYS, "a", "{}", K("Foo")), POL(SYS, "z", "{}", K("Mesh")),
     -1, NULL},
    {"missing targetRef is Mesh; then the smaller name wins",
     "{\"metadata\":{\"namespace\":\"" SYS "\",\"name\":\"a\"},\"spec\":{}}",
     POL(SYS, "b", "{}", K("Mesh")), 1, NULL},
    {"Dataplane name beats labels",
     POL(SYS, "z", "{}", "{\"kind\":\"Dataplane\",\"name\":\"web\"}"),
     POL(SYS, "a", "{}", "{\"kind\":\"Dataplane\",\"labels\":{\"app\":\"web\"}}"), 1, NULL},
    {"Dataplane labels lose to name", POL(SYS, "a", "{}", "{\"kind\":\"Dataplane\",\"labels\":{}}"),
     POL(SYS, "z", "{}", "{\"kind\":\"Dataplane\",\"name\":\"web\"}"), -1, NULL},
    {"plain Dataplane ties with labels: the name decides", POL(SYS, "b", "{}", K("Dataplane")),
     POL(SYS, "a", "{}", "{\"kind\":\"Dataplane\",\"labels\":{\"app\":\"web\"}}"), -1, NULL},
    {"Dataplane with sectionName beats none",
     POL(SYS, "z", "{}", "{\"kind\":\"Dataplane\",\"sectionName\":\"http\"}"),
     POL(SYS, "a", "{}", K("Dataplane")), 1, NULL},
    {"sectionName does not count outside Dataplane",
     POL(SYS, "z", "{}", "{\"kind\":\"Mesh\",\"sectionName\":\"http\"}"),
     POL(SYS, "a", "{}", K("Mesh")), -1, NULL},
    {"origin global < none", POL(SYS, "a", "{\"kuma.io/origin\":\"global\"}", K("Mesh")),
     POL(SYS, "z", "{}", K("Mesh")), -1, NULL},
    {"origin zone > none", POL(SYS, "z", "{\"kuma.io/origin\":\"zone\"}", K("Mesh")),
     POL(SYS, "a", "{}", K("Mesh")), 1, NULL},
    {"origin before role", POL(SYS, "z", "{\"kuma.io/origin\":\"zone\"}", K("Mesh")),
     POL("app", "a", "{}", K("Mesh")), 1, NULL},
    {"computed role: system namespace < workload namespace", POL(SYS, "a", "{}", K("Mesh")),
     POL("app", "z", "{}", K("Mesh")), -1, NULL},
    {"a copied role label is not trusted: the role is computed",
     POL("app", "z", "{\"kuma.io/policy-role\":\"system\"}", K("Mesh")),
     POL(SYS, "a", "{}", K("Mesh")), 1, NULL},
    {"role labels in the system namespace change nothing: the name decides",
     POL(SYS, "a", "{\"kuma.io/policy-role\":\"producer\"}", K("Mesh")),
     POL(SYS, "z", "{\"kuma.io/policy-role\":\"consumer\"}", K("Mesh")), 1, NULL},
    {"docs: aaa beats zzzzz", POL(SYS, "aaa", "{}", K("Mesh")), POL(SYS, "zzzzz", "{}", K("Mesh")),
     1, NULL},
    {"docs: aaaaa beats aaaaa1", POL(SYS, "aaaaa", "{}", K("Mesh")),
     POL(SYS, "aaaaa1", "{}", K("Mesh")), 1, NULL},
    {"bytewise names: upper case sorts first so wins", POL(SYS, "Z", "{}", K("Mesh")),
     POL(SYS, "a", "{}", K("Mesh")), 1, NULL},
    {"a copied display-name label is not trusted: metadata.name decides",
     POL(SYS, "zzz", "{\"kuma.io/display-name\":\"aaa\"}", K("Mesh")),
     POL(SYS, "mmm", "{}", K("Mesh")), -1, NULL},
    {"equal", POL(SYS, "a", "{}", K("Mesh")), POL(SYS, "a", "{}", K("Mesh")), 0, NULL},
    {"same name in another namespace: role decides", POL("app", "a", "{}", K("Mesh")),
     POL(SYS, "a", "{}", K("Mesh")), 1, NULL},
    {"MeshGateway: fewer tags rank lower",
     POL(SYS, "a", "{}", "{\"kind\":\"MeshGateway\",\"name\":\"g\",\"tags\":{\"x\":\"1\"}}"),
     POL(SYS, "z", "{}",
         "{\"kind\":\"MeshGateway\",\"name\":\"g\",\"tags\":{\"x\":\"1\",\"y\":\"2\"}}"),
     -1, NULL},
    {"kind before role", POL("app", "z", "{}", K("Mesh")), POL(SYS, "a", "{}", K("MeshSubset")), -1,
     NULL},
    {"configurable system namespace", POL("mesh-system", "z", "{}", K("Mesh")),
     POL(SYS, "a", "{}", K("Mesh")), -1, "mesh-system"},
    {"no namespace counts as the system namespace",
     "{\"metadata\":{\"name\":\"z\"},\"spec\":{\"targetRef\":{\"kind\":\"Mesh\"}}}",
     POL("app", "a", "{}", K("Mesh")), -1, NULL},
};

static void test_compare_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof compare_cases / sizeof *compare_cases; i++) {
        const struct compare_case *c = &compare_cases[i];
        const char *sys = c->system_namespace ? c->system_namespace : SYS;
        struct policy *a = wrap(c->a, sys), *b = wrap(c->b, sys);
        assert_non_null(a);
        assert_non_null(b);
        int ab = order_compare(a, b);
        int ba = order_compare(b, a);
        int sab = (ab > 0) - (ab < 0), sba = (ba > 0) - (ba < 0);
        if (sab != c->want)
            fail_msg("case \"%s\": compare(a, b) = %d, want %d", c->name, ab, c->want);
        if (sba != -c->want)
            fail_msg("case \"%s\": not antisymmetric: compare(b, a) = %d", c->name, ba);
        policy_unref(a);
        policy_unref(b);
    }
}

/* ---- the dataplane and selection --------------------------------------------------- */

static const char *services_json =
    "["
    "{\"kind\":\"Service\",\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\"},"
    " \"spec\":{\"selector\":{\"app\":\"web\"},\"ports\":[{\"port\":8080,\"appProtocol\":\"http\"},"
    "  {\"port\":9090,\"name\":\"metrics\"},{\"port\":\"80\"},{\"port\":0},{\"port\":70000}]}},"
    "{\"kind\":\"Service\",\"metadata\":{\"name\":\"other\",\"namespace\":\"shop\"},"
    " \"spec\":{\"selector\":{\"app\":\"other\"},\"ports\":[{\"port\":1}]}},"
    "{\"kind\":\"Service\",\"metadata\":{\"name\":\"versioned\",\"namespace\":\"shop\"},"
    " \"spec\":{\"selector\":{\"app\":\"web\",\"version\":\"v2\"},\"ports\":[{\"port\":2}]}},"
    "{\"kind\":\"Service\",\"metadata\":{\"name\":\"web\",\"namespace\":\"elsewhere\"},"
    " \"spec\":{\"selector\":{\"app\":\"web\"},\"ports\":[{\"port\":3}]}},"
    "{\"kind\":\"Service\",\"metadata\":{\"name\":\"empty\",\"namespace\":\"shop\"},"
    " \"spec\":{\"selector\":{},\"ports\":[{\"port\":4}]}},"
    "{\"kind\":\"Service\",\"metadata\":{\"name\":\"nosel\",\"namespace\":\"shop\"},"
    " \"spec\":{\"ports\":[{\"port\":5}]}},"
    "{\"kind\":\"Service\",\"metadata\":{\"name\":\"nsless\"},"
    " \"spec\":{\"selector\":{\"app\":\"web\"},\"ports\":[{\"port\":6}]}},"
    "{\"kind\":\"Service\",\"metadata\":{\"name\":\"numsel\",\"namespace\":\"shop\"},"
    " \"spec\":{\"selector\":{\"app\":1},\"ports\":[{\"port\":7}]}}"
    "]";

static const char *namespaces_json =
    "[{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"meshy\",\"labels\":{\"kuma.io/mesh\":"
    "\"ns-mesh\"}}},"
    "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"annotated\",\"annotations\":{\"kuma.io/"
    "mesh\":\"ann-mesh\"}}}]";

static const char *web_pod =
    "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-1\",\"namespace\":\"shop\","
    "\"labels\":{\"app\":\"web\",\"version\":\"v1\",\"k8s.kuma.io/namespace\":\"fake\","
    "\"num\":5}}}";

static struct policy_view *shop_view(void)
{
    const char *texts[] = {services_json, namespaces_json};
    return view_of(texts, 2, SYS);
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

static void test_dataplane_from_pod(void **state)
{
    (void)state;
    struct policy_view *view = shop_view();
    struct dataplane dp;
    json_t *pod = load(web_pod);
    dataplane_from_pod(pod, NULL, view, NULL, &dp);
    assert_string_equal(dp.name, "web-1");
    assert_string_equal(dp.namespace, "shop");
    assert_string_equal(dp.mesh, "default");
    check_json("labels", dp.labels,
               "{\"app\":\"web\",\"version\":\"v1\",\"k8s.kuma.io/namespace\":\"shop\","
               "\"kuma.io/mesh\":\"default\",\"kuma.io/proxy-type\":\"sidecar\"}");
    /* Only "web" in shop selects it; bad ports are skipped; the computed tags win. */
    check_json("inbounds", dp.inbounds,
               "[{\"port\":8080,\"tags\":{\"app\":\"web\",\"version\":\"v1\","
               "\"kuma.io/service\":\"web_shop_svc_8080\","
               "\"k8s.kuma.io/namespace\":\"shop\",\"kuma.io/protocol\":\"http\","
               "\"k8s.kuma.io/service-name\":\"web\",\"k8s.kuma.io/service-port\":\"8080\"}},"
               "{\"port\":9090,\"tags\":{\"app\":\"web\",\"version\":\"v1\","
               "\"kuma.io/service\":\"web_shop_svc_9090\","
               "\"k8s.kuma.io/namespace\":\"shop\",\"kuma.io/protocol\":\"tcp\","
               "\"k8s.kuma.io/service-name\":\"web\",\"k8s.kuma.io/service-port\":\"9090\"}}]");
    dataplane_cleanup(&dp);
    dataplane_cleanup(&dp); /* idempotent */

    /* The namespace argument wins; a Service without namespace is in "default". */
    dataplane_from_pod(pod, "default", view, NULL, &dp);
    assert_string_equal(dp.namespace, "default");
    check_json("inbounds in default", dp.inbounds,
               "[{\"port\":6,\"tags\":{\"app\":\"web\",\"version\":\"v1\","
               "\"kuma.io/service\":\"nsless_default_svc_6\","
               "\"k8s.kuma.io/namespace\":\"default\",\"kuma.io/protocol\":\"tcp\","
               "\"k8s.kuma.io/service-name\":\"nsless\",\"k8s.kuma.io/service-port\":\"6\"}}]");
    dataplane_cleanup(&dp);

    /* Mesh from the namespace label, then the namespace annotation; the pod label first. */
    dataplane_from_pod(pod, "meshy", view, NULL, &dp);
    assert_string_equal(dp.mesh, "ns-mesh");
    assert_string_equal(json_string_value(json_object_get(dp.labels, "kuma.io/mesh")), "ns-mesh");
    assert_int_equal(json_array_size(dp.inbounds), 0);
    dataplane_cleanup(&dp);
    dataplane_from_pod(pod, "annotated", view, NULL, &dp);
    assert_string_equal(dp.mesh, "ann-mesh");
    dataplane_cleanup(&dp);
    json_t *pod2 = load("{\"metadata\":{\"name\":\"p\",\"namespace\":\"meshy\",\"labels\":"
                        "{\"kuma.io/mesh\":\"mine\"}}}");
    dataplane_from_pod(pod2, NULL, view, NULL, &dp);
    assert_string_equal(dp.mesh, "mine");
    dataplane_cleanup(&dp);

    /* Not a pod at all, no set: an empty dataplane in "default". */
    json_t *junk = load("[1]");
    dataplane_from_pod(junk, "", NULL, NULL, &dp);
    assert_string_equal(dp.name, "");
    assert_string_equal(dp.namespace, "default");
    assert_string_equal(dp.mesh, "default");
    check_json("junk labels", dp.labels,
               "{\"k8s.kuma.io/namespace\":\"default\",\"kuma.io/mesh\":\"default\","
               "\"kuma.io/proxy-type\":\"sidecar\"}");
    check_json("junk inbounds", dp.inbounds, "[]");
    dataplane_cleanup(&dp);

    /* A zeroed dataplane cleans up. */
    memset(&dp, 0, sizeof dp);
    dataplane_cleanup(&dp);

    json_decref(junk);
    json_decref(pod2);
    json_decref(pod);
    view_unref(view);
}

struct select_case {
    const char *name;
    const char *policy;
    bool web;    /* selects web-1 in shop (two inbounds) */
    bool lonely; /* selects lonely in shop (no Service, no inbounds) */
};

#define TR(tr) POL(SYS, "p", "{}", tr)
#define TRNS(ns, tr) POL(ns, "p", "{}", tr)

static const struct select_case select_cases[] = {
    {"Mesh", TR(K("Mesh")), true, true},
    {"no targetRef", "{\"metadata\":{\"name\":\"p\",\"namespace\":\"" SYS "\"},\"spec\":{}}", true,
     true},
    {"null targetRef", TR("null"), true, true},
    {"no metadata.namespace = system namespace",
     "{\"metadata\":{\"name\":\"p\"},\"spec\":{\"targetRef\":{\"kind\":\"Mesh\"}}}", true, true},
    {"proxyTypes Sidecar", TR("{\"kind\":\"Mesh\",\"proxyTypes\":[\"Sidecar\"]}"), true, true},
    {"proxyTypes Gateway", TR("{\"kind\":\"Mesh\",\"proxyTypes\":[\"Gateway\"]}"), false, false},
    {"proxyTypes empty", TR("{\"kind\":\"Mesh\",\"proxyTypes\":[]}"), true, true},
    {"proxyTypes both", TR("{\"kind\":\"Mesh\",\"proxyTypes\":[\"Gateway\",\"Sidecar\"]}"), true,
     true},
    {"other mesh", POL(SYS, "p", "{\"kuma.io/mesh\":\"other\"}", K("Mesh")), false, false},
    {"default mesh label", POL(SYS, "p", "{\"kuma.io/mesh\":\"default\"}", K("Mesh")), true, true},
    {"pod namespace", TRNS("shop", K("Mesh")), true, true},
    {"another namespace", TRNS("other-ns", K("Mesh")), false, false},
    {"MeshSubset app=web", TR("{\"kind\":\"MeshSubset\",\"tags\":{\"app\":\"web\"}}"), true, false},
    {"MeshSubset wrong version",
     TR("{\"kind\":\"MeshSubset\",\"tags\":{\"app\":\"web\",\"version\":\"v2\"}}"), false, false},
    {"MeshSubset protocol http",
     TR("{\"kind\":\"MeshSubset\",\"tags\":{\"kuma.io/protocol\":"
        "\"http\"}}"),
     true, false},
    {"MeshSubset service-port",
     TR("{\"kind\":\"MeshSubset\",\"tags\":{\"k8s.kuma.io/service-port\":\"9090\"}}"), true, false},
    {"MeshSubset no tags needs an inbound", TR("{\"kind\":\"MeshSubset\"}"), true, false},
    {"MeshSubset wildcard", TR("{\"kind\":\"MeshSubset\",\"tags\":{\"version\":\"*\"}}"), true,
     false},
    {"MeshSubset wildcard needs the tag", TR("{\"kind\":\"MeshSubset\",\"tags\":{\"zone\":\"*\"}}"),
     false, false},
    {"MeshSubset non-string tag", TR("{\"kind\":\"MeshSubset\",\"tags\":{\"app\":1}}"), false,
     false},
    {"MeshSubset proxyTypes Gateway",
     TR("{\"kind\":\"MeshSubset\",\"tags\":{\"app\":\"web\"},\"proxyTypes\":[\"Gateway\"]}"), false,
     false},
    {"MeshService kuma.io/service", TR("{\"kind\":\"MeshService\",\"name\":\"web_shop_svc_8080\"}"),
     true, false},
    {"MeshService plain name", TR("{\"kind\":\"MeshService\",\"name\":\"web\"}"), false, false},
    {"MeshService without name", TR("{\"kind\":\"MeshService\",\"labels\":{\"app\":\"web\"}}"),
     false, false},
    {"MeshServiceSubset tcp port",
     TR("{\"kind\":\"MeshServiceSubset\",\"name\":\"web_shop_svc_9090\",\"tags\":{\"kuma.io/"
        "protocol\":\"tcp\"}}"),
     true, false},
    {"MeshServiceSubset tags must hold on that inbound",
     TR("{\"kind\":\"MeshServiceSubset\",\"name\":\"web_shop_svc_9090\",\"tags\":{\"kuma.io/"
        "protocol\":\"http\"}}"),
     false, false},
    {"MeshServiceSubset tags override the name (as in Kuma)",
     TR("{\"kind\":\"MeshServiceSubset\",\"name\":\"nope\",\"tags\":{\"kuma.io/service\":"
        "\"web_shop_svc_8080\"}}"),
     true, false},
    {"Dataplane all", TR(K("Dataplane")), true, true},
    {"Dataplane labels", TR("{\"kind\":\"Dataplane\",\"labels\":{\"app\":\"web\"}}"), true, false},
    {"Dataplane computed labels",
     TR("{\"kind\":\"Dataplane\",\"labels\":{\"kuma.io/mesh\":\"default\",\"k8s.kuma.io/"
        "namespace\":\"shop\",\"kuma.io/proxy-type\":\"sidecar\"}}"),
     true, true},
    {"Dataplane labels mismatch", TR("{\"kind\":\"Dataplane\",\"labels\":{\"app\":\"db\"}}"), false,
     false},
    {"Dataplane empty label value matches a missing label (Go map)",
     TR("{\"kind\":\"Dataplane\",\"labels\":{\"absent\":\"\"}}"), true, true},
    {"Dataplane empty labels", TR("{\"kind\":\"Dataplane\",\"labels\":{}}"), true, true},
    {"Dataplane name and namespace",
     TR("{\"kind\":\"Dataplane\",\"name\":\"web-1\",\"namespace\":\"shop\"}"), true, false},
    {"Dataplane name: namespace defaults to the policy's (system)",
     TR("{\"kind\":\"Dataplane\",\"name\":\"web-1\"}"), false, false},
    {"Dataplane name: namespace defaults to the policy's (shop)",
     TRNS("shop", "{\"kind\":\"Dataplane\",\"name\":\"lonely\"}"), false, true},
    {"Dataplane other name",
     TR("{\"kind\":\"Dataplane\",\"name\":\"web-2\",\"namespace\":\"shop\"}"), false, false},
    {"Dataplane namespace only", TR("{\"kind\":\"Dataplane\",\"namespace\":\"shop\"}"), false,
     false},
    {"MeshGateway never selects a sidecar", TR("{\"kind\":\"MeshGateway\",\"name\":\"gw\"}"), false,
     false},
    {"MeshHTTPRoute", TR("{\"kind\":\"MeshHTTPRoute\",\"name\":\"r\"}"), false, false},
    {"unknown kind", TR(K("Foo")), false, false},
    {"targetRef without kind", TR("{}"), false, false},
    {"targetRef not an object", TR("\"Mesh\""), false, false},
    {"policy not an object", "[]", false, false},
};

static void test_select_table(void **state)
{
    (void)state;
    struct policy_view *view = shop_view();
    json_t *pod = load(web_pod);
    json_t *lonely_pod = load("{\"metadata\":{\"name\":\"lonely\",\"namespace\":\"shop\"}}");
    struct dataplane web, lonely;
    struct select_context ctx = {SYS, "default"};
    dataplane_from_pod(pod, NULL, view, NULL, &web);
    dataplane_from_pod(lonely_pod, NULL, view, NULL, &lonely);
    assert_int_equal(json_array_size(web.inbounds), 2);
    for (size_t i = 0; i < sizeof select_cases / sizeof *select_cases; i++) {
        const struct select_case *c = &select_cases[i];
        struct policy *p = wrap(c->policy, SYS);
        char why[256];
        bool w = p && select_policy(p, &web, &ctx, why, sizeof why);
        bool l = p && select_policy(p, &lonely, NULL, NULL, 0);
        if (w != c->web || l != c->lonely)
            fail_msg("case \"%s\": web %d (want %d), lonely %d (want %d)", c->name, w, c->web, l,
                     c->lonely);
        if (p && !w && !why[0])
            fail_msg("case \"%s\": no reason given for not selecting", c->name);
        policy_unref(p);
    }
    /* Another system namespace turns a kuma-system policy into a foreign one. */
    struct policy *p = wrap(TR(K("Mesh")), "mesh-system");
    struct select_context other = {"mesh-system", "default"};
    char why[256];
    assert_false(select_policy(p, &web, &other, why, sizeof why));
    assert_non_null(strstr(why, "namespace \"kuma-system\""));
    policy_unref(p);
    dataplane_cleanup(&web);
    dataplane_cleanup(&lonely);
    json_decref(pod);
    json_decref(lonely_pod);
    view_unref(view);
}

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
        cmocka_unit_test(test_merge_table),        cmocka_unit_test(test_compare_table),
        cmocka_unit_test(test_dataplane_from_pod), cmocka_unit_test(test_select_table),
        cmocka_unit_test(test_mode_names),         cmocka_unit_test(test_evaluate_nothing),
        cmocka_unit_test(test_evaluate_table),     cmocka_unit_test(test_many_policies),
        cmocka_unit_test(test_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
