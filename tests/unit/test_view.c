/*
 * The policy view (core/view.h): what the builder keeps, how it indexes
 * policies by mesh and namespace, duplicates, rejections, notes, Lists.
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

#include "core/policy.h"
#include "core/view.h"
#include "util/xalloc.h"

static const char DOCS[] =
    "apiVersion: kuma.io/v1alpha1\nkind: MeshMetric\n"
    "metadata: {name: sys-a, namespace: kuma-system}\nspec: {default: {}}\n"
    "---\napiVersion: kuma.io/v1alpha1\nkind: MeshMetric\n"
    "metadata: {name: shop-a, namespace: shop}\nspec: {default: {}}\n"
    "---\napiVersion: kuma.io/v1alpha1\nkind: MeshMetric\n"
    "metadata: {name: other-mesh, namespace: kuma-system, labels: {kuma.io/mesh: m2}}\n"
    "spec: {default: {}}\n"
    "---\napiVersion: kuma.io/v1alpha1\nkind: MeshMetricList\nitems:\n"
    "- metadata: {name: shop-b, namespace: shop}\n  spec: {default: {}}\n"
    "- metadata: {name: bad, namespace: shop}\n"
    "  spec: {default: {backends: [{type: Prometheus, prometheus: {port: 0}}]}}\n"
    "---\napiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}\nspec: {}\n"
    "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: zeta, namespace: shop}\n"
    "spec: {selector: {app: z}}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: alpha, namespace: shop}\n"
    "spec: {selector: {app: a}}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: alpha, namespace: shop}\n"
    "spec: {selector: {app: a2}}\n"
    "---\napiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web-5d9, namespace: shop}\n"
    "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ignored}\n";

static struct policy_view *build(const char *text, const char *zone)
{
    json_t *docs = NULL;
    struct mm_error err;
    if (yamljson_load(text, strlen(text), NULL, &docs, &err) != MM_OK)
        fail_msg("%s", err.message);
    struct view_options vo = {.system_namespace = "kuma-system", .zone = zone};
    struct view_builder *b = view_builder_create(&vo);
    size_t i;
    json_t *d;
    bool any_ignored = false;
    json_array_foreach(docs, i, d)
    {
        bool ignored = false;
        if (view_builder_add(b, d, &ignored, &err) != MM_OK)
            fail_msg("document %zu: %s", i, err.message);
        any_ignored |= ignored;
    }
    assert_true(any_ignored); /* the ConfigMap */
    json_decref(docs);
    return view_builder_finish(b, 7);
}

static void test_indexes(void **state)
{
    (void)state;
    struct policy_view *v = build(DOCS, NULL);
    assert_int_equal(view_generation(v), 7);
    assert_string_equal(view_zone(v), "default");
    struct view_counts c;
    view_counts(v, &c);
    assert_int_equal(c.meshmetrics, 4);
    assert_int_equal(c.meshes, 1);
    assert_int_equal(c.namespaces, 1);
    assert_int_equal(c.services, 2); /* the second "alpha" replaced the first */
    assert_int_equal(c.owners, 1);
    assert_int_equal(c.rejected, 1);

    /* A pod of shop in mesh default: the system namespace's policies and shop's. */
    const struct policy *const *cands = NULL;
    const uint32_t *index = NULL;
    size_t n = view_candidates(v, "default", "shop", &cands, &index);
    assert_int_equal(n, 3);
    const struct policy *const *all = NULL;
    size_t total = view_policies(v, &all);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(all[index[i]], cands[i]); /* the memo key is the view's index */
    /* Another namespace: the system namespace's only; another mesh: its own. */
    n = view_candidates(v, "default", "web", &cands, NULL);
    assert_int_equal(n, 1);
    assert_string_equal(cands[0]->name, "sys-a");
    n = view_candidates(v, "m2", "shop", &cands, NULL);
    assert_int_equal(n, 1);
    assert_string_equal(cands[0]->name, "other-mesh");
    assert_int_equal(view_candidates(v, "none", "shop", &cands, NULL), 0);
    assert_int_equal(total, 4);

    const json_t *const *svcs = NULL;
    assert_int_equal(view_services(v, "shop", &svcs), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(svcs[0], "metadata"), "name")), "alpha");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(svcs[0], "spec"), "selector"), "app")),
                        "a2");
    assert_int_equal(view_services(v, "web", &svcs), 0);
    assert_non_null(view_owner(v, "ReplicaSet", "shop", "web-5d9"));
    assert_null(view_owner(v, "Job", "shop", "web-5d9"));
    assert_non_null(view_mesh(v, "default"));
    assert_null(view_mesh(v, "m2"));
    assert_non_null(view_namespace(v, "shop"));

    const struct view_rejection *rej = NULL;
    assert_int_equal(view_rejections(v, &rej), 1);
    assert_string_equal(rej[0].id, "shop/bad");
    assert_string_equal(rej[0].errors,
                        "spec.default.backends.backend[0].port: port must be a valid (1-65535)");
    view_unref(v);
}

/* The same policy twice: the later one wins. Builder errors name the List item. */
static void test_duplicates_and_errors(void **state)
{
    (void)state;
    struct policy_view *v =
        build("kind: MeshMetric\nmetadata: {name: p, namespace: kuma-system}\n"
              "spec: {default: {sidecar: {includeUnused: true}}}\n"
              "---\nkind: MeshMetric\nmetadata: {name: p, namespace: kuma-system}\n"
              "spec: {default: {sidecar: {includeUnused: false}}}\n"
              "---\nkind: Secret\nmetadata: {name: x}\n",
              NULL);
    const struct policy *const *all = NULL;
    assert_int_equal(view_policies(v, &all), 1);
    assert_true(json_is_false(
        json_object_get(json_object_get(policy_default(all[0]), "sidecar"), "includeUnused")));
    view_unref(v);

    struct view_builder *b = view_builder_create(NULL);
    struct mm_error err;
    json_t *list = tu_yaml("kind: List\nitems:\n- kind: Service\n  metadata: {namespace: a}\n");
    assert_int_equal(view_builder_add(b, list, NULL, &err), MM_ERR_TYPE);
    assert_string_equal(err.field, "items[0].metadata.name");
    json_decref(list);
    json_t *scalar = json_string("x");
    assert_int_equal(view_builder_add(b, scalar, NULL, &err), MM_ERR_TYPE);
    json_decref(scalar);
    json_t *nolist = tu_yaml("kind: MeshMetricList\n");
    assert_int_equal(view_builder_add(b, nolist, NULL, &err), MM_ERR_TYPE);
    assert_string_equal(err.field, "items");
    json_decref(nolist);
    view_builder_free(b);
}

/* A policy Kuma stamped with another zone selects nothing here: the view says so. */
static void test_zone_notes(void **state)
{
    (void)state;
    const char *text = "kind: MeshMetric\nmetadata: {name: p, namespace: kuma-system, labels: "
                       "{kuma.io/zone: east, kuma.io/origin: zone}}\nspec: {default: {}}\n"
                       "---\nkind: MeshMetric\nmetadata: {name: g, namespace: kuma-system, labels: "
                       "{kuma.io/zone: east, kuma.io/origin: global}}\nspec: {default: {}}\n"
                       "---\nkind: ConfigMap\nmetadata: {name: c}\n";
    struct policy_view *v = build(text, "west");
    const struct view_note *notes = NULL;
    assert_int_equal(view_notes(v, &notes), 1);
    assert_string_equal(notes[0].id, "kuma-system/p");
    assert_non_null(strstr(notes[0].text, "kuma.io/zone: east"));
    view_unref(v);
    v = build(text, "east");
    assert_int_equal(view_notes(v, &notes), 0);
    view_unref(v);
}

/* What a rebuild adds: rejections and notes not in the previous view, each by id and text. */
#define BAD_PORT(p)                                                                                \
    "---\nkind: MeshMetric\nmetadata: {name: bad, namespace: kuma-system}\nspec: {default: "       \
    "{backends: [{type: Prometheus, prometheus: {port: " #p "}}]}}\n"
#define EAST                                                                                       \
    "---\nkind: MeshMetric\nmetadata: {name: e, namespace: kuma-system, labels: {kuma.io/zone: "   \
    "east, kuma.io/origin: zone}}\nspec: {default: {}}\n"
#define NS "---\nkind: Namespace\nmetadata: {name: x}\n"
#define BAD_APP                                                                                    \
    "---\nkind: MeshMetric\nmetadata: {name: bad, namespace: kuma-system}\nspec: {default: "       \
    "{applications: [{port: 0}]}}\n"
#define CM "---\nkind: ConfigMap\nmetadata: {name: c}\n" /* build() wants one ignored */
static void test_new_since(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *old; /* NULL: no view before */
        const char *fresh;
        size_t want_rej, want_notes;
    } cases[] = {
        {"first view: everything is new", NULL, BAD_PORT(70000) EAST CM, 1, 1},
        {"same again: nothing new", BAD_PORT(70000) EAST CM, BAD_PORT(70000) EAST CM, 0, 0},
        {"another error for the same policy is new", BAD_PORT(70000) EAST CM, BAD_APP EAST CM, 1,
         0},
        {"a note appears", BAD_PORT(70000) CM, BAD_PORT(70000) EAST CM, 0, 1},
        {"a rejection appears", NS EAST CM, BAD_PORT(70000) EAST CM, 1, 0},
        {"what went away is not new", BAD_PORT(70000) EAST CM, NS CM, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct policy_view *ov = cases[i].old ? build(cases[i].old, "west") : NULL;
        struct policy_view *nv = build(cases[i].fresh, "west");
        size_t *idx = NULL;
        size_t got = view_new_rejections(ov, nv, &idx);
        if (got != cases[i].want_rej)
            fail_msg("%s: %zu new rejections, want %zu", cases[i].name, got, cases[i].want_rej);
        if (got)
            assert_int_equal(idx[0], 0);
        free(idx);
        got = view_new_notes(ov, nv, &idx);
        if (got != cases[i].want_notes)
            fail_msg("%s: %zu new notes, want %zu", cases[i].name, got, cases[i].want_notes);
        if (got)
            assert_int_equal(idx[0], 0);
        free(idx);
        view_unref(ov);
        view_unref(nv);
    }
}
#undef BAD_PORT
#undef EAST
#undef NS
#undef CM
#undef BAD_APP

/* An empty view, shared references, and the memo switch. */
static void test_empty_and_refs(void **state)
{
    (void)state;
    struct view_options vo = {.no_memo = true};
    struct policy_view *v = view_empty(&vo);
    assert_int_equal(view_generation(v), 0);
    assert_null(view_memo(v));
    struct policy_view *w = view_ref(v);
    view_unref(v);
    struct view_counts c;
    view_counts(w, &c);
    assert_int_equal(c.meshmetrics + c.meshes + c.namespaces + c.services, 0);
    view_unref(w);
    view_unref(NULL);
    v = view_empty(NULL);
    assert_non_null(view_memo(v));
    view_unref(v);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_indexes),
        cmocka_unit_test(test_new_since),
        cmocka_unit_test(test_duplicates_and_errors),
        cmocka_unit_test(test_zone_notes),
        cmocka_unit_test(test_empty_and_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
