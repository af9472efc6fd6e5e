/*
 * Which MeshMetrics select a data plane proxy (core/select.h), in which order
 * they merge (core/order.h), and the policy labels both read (core/labels.h).
 * Each table entry names the Kuma v2.14.3 code its expectation is written
 * from. Policies are built from their objects directly (the labels and the
 * targetRef as policy_load computes them), so shapes Kuma's validator would
 * refuse (a sectionName) can be ordered too; one test goes through
 * policy_load to show the loader computes the same.
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

#include "core/dataplane.h"
#include "core/labels.h"
#include "core/order.h"
#include "core/policy.h"
#include "core/select.h"
#include "core/view.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

#define ZONE "default"
#define SYS "kuma-system"

/* A MeshMetric from YAML text, with what policy_load computes for selection and order. */
static struct policy *mk(const char *yaml)
{
    json_t *obj = tu_yaml(yaml);
    struct policy *p = xcalloc(1, sizeof *p);
    atomic_init(&p->refs, 1);
    p->kind = POLICY_MESHMETRIC;
    p->obj = obj;
    const json_t *md = json_object_get(obj, "metadata");
    p->name = json_string_value(json_object_get(md, "name"));
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    p->namespace = ns ? ns : "";
    const char *mesh =
        json_string_value(json_object_get(json_object_get(md, "labels"), "kuma.io/mesh"));
    p->mesh = mesh && *mesh ? mesh : "default";
    p->id = xasprintf("%s/%s", *p->namespace ? p->namespace : SYS, p->name);
    labels_policy_compute(obj, SYS, ZONE, &p->labels);
    select_target_init(&p->target, json_object_get(json_object_get(obj, "spec"), "targetRef"));
    violations_init(&p->warnings);
    return p;
}

static void unmk(struct policy *p)
{
    json_decref(p->obj);
    free(p->id);
    labels_policy_cleanup(&p->labels);
    violations_cleanup(&p->warnings);
    free(p);
}

/* ---- the data plane proxies ------------------------------------------------------------- */

static const char *const view_yaml =
    "kind: ReplicaSet\nmetadata: {name: web-7f9c, namespace: shop, ownerReferences: [{kind: "
    "Deployment, name: web}]}\n---\n"
    "kind: Service\nmetadata: {name: api, namespace: shop}\nspec: {selector: {app: api}, ports: "
    "[{port: 80, targetPort: 8080, appProtocol: http}]}\n---\n"
    "kind: Service\nmetadata: {name: edge, namespace: shop}\nspec: {selector: {app: edge}, "
    "ports: [{port: 80, targetPort: 8080}]}\n";

enum dp_id { DP_WEB, DP_API, DP_GW, DP_BUILTIN, DP_FAR, DP_COUNT };

static const char *const pods_yaml[DP_COUNT] = {
    /* no Service: a serviceless inbound (the pod of a Deployment) */
    "kind: Pod\nmetadata: {name: web-7f9c-abcde, namespace: shop, labels: {app: web, "
    "pod-template-hash: 7f9c, kuma.io/display-name: fake}, ownerReferences: [{kind: ReplicaSet, "
    "name: web-7f9c}]}\nspec: {serviceAccountName: web-sa}\n",
    "kind: Pod\nmetadata: {name: api-1, namespace: shop, labels: {app: api, version: v2}}\n"
    "spec: {containers: [{ports: [{containerPort: 8080}]}]}\n",
    "kind: Pod\nmetadata: {name: edge-1, namespace: shop, labels: {app: edge}, annotations: "
    "{kuma.io/gateway: enabled}}\n",
    "kind: Pod\nmetadata: {name: gw-1, namespace: shop, annotations: {kuma.io/gateway: builtin, "
    "kuma.io/tags: '{\"kuma.io/service\":\"gw\"}'}}\n",
    "kind: Pod\nmetadata: {name: far-1, namespace: far, labels: {app: web}}\n",
};

struct fixture {
    struct policy_view *view;
    struct dataplane dps[DP_COUNT];
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    json_t *docs = NULL;
    struct mm_error err;
    if (yamljson_load(view_yaml, strlen(view_yaml), NULL, &docs, &err) != MM_OK)
        return -1;
    f->view = tu_view(docs, SYS, "select view");
    json_decref(docs);
    for (int i = 0; i < DP_COUNT; i++) {
        json_t *pod = tu_yaml(pods_yaml[i]);
        dataplane_from_pod(pod, NULL, f->view, NULL, &f->dps[i]);
        json_decref(pod);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < DP_COUNT; i++)
        dataplane_cleanup(&f->dps[i]);
    view_unref(f->view);
    free(f);
    return 0;
}

/* ---- selection ------------------------------------------------------------------------ */

#define MM(ns, extra_meta, target)                                                                 \
    "kind: MeshMetric\nmetadata: {name: m, namespace: " ns extra_meta                              \
    "}\nspec: {targetRef: " target "}\n"

struct select_case {
    const char *name;
    const char *source;
    const char *policy;
    enum dp_id dp;
    bool selected;
    const char *why; /* substring of the reason when not selected */
};

static const struct select_case select_cases[] = {
    {"Mesh selects a sidecar", "DppSelectedByPolicy Mesh", MM(SYS, "", "{kind: Mesh}"), DP_WEB,
     true, NULL},
    {"MeshSubset selects a pod without a Service (serviceless inbound)",
     "inboundsSelectedByTags; inbound_converter.go InboundTagsForPod",
     MM(SYS, "", "{kind: MeshSubset, tags: {app: web}}"), DP_WEB, true, NULL},
    {"MeshService selects the serviceless service", "DppSelectedByPolicy MeshService",
     MM(SYS, "", "{kind: MeshService, name: web_shop_svc}"), DP_WEB, true, NULL},
    {"MeshServiceSubset with a serviceless tag", "DppSelectedByPolicy MeshServiceSubset",
     MM(SYS, "", "{kind: MeshServiceSubset, name: web_shop_svc, tags: {kuma.io/protocol: tcp}}"),
     DP_WEB, true, NULL},
    {"MeshServiceSubset with a tag the inbound lacks", "TagSelector.Matches",
     MM(SYS, "", "{kind: MeshServiceSubset, name: web_shop_svc, tags: {version: v1}}"), DP_WEB,
     false, "with the subset's tags"},
    {"MeshServiceSubset whose tags name the service", "maps.Copy(tags, ref.Tags)",
     MM(SYS, "", "{kind: MeshServiceSubset, name: nope, tags: {kuma.io/service: api_shop_svc_80}}"),
     DP_API, true, NULL},
    {"MeshService of a Service inbound", "DppSelectedByPolicy MeshService",
     MM(SYS, "", "{kind: MeshService, name: api_shop_svc_80}"), DP_API, true, NULL},
    {"MeshService of another service", "DppSelectedByPolicy MeshService",
     MM(SYS, "", "{kind: MeshService, name: api_shop_svc_80}"), DP_WEB, false,
     "no inbound of the pod is the service"},
    {"MeshService by labels only selects nothing", "DppSelectedByPolicy uses ref.Name only",
     MM(SYS, "", "{kind: MeshService, labels: {app: api}}"), DP_API, false, NULL},
    {"MeshSubset * matches any value", "TagSelector.Matches (MatchAllTag)",
     MM(SYS, "", "{kind: MeshSubset, tags: {version: '*'}}"), DP_API, true, NULL},
    {"Mesh proxyTypes [Gateway] leaves out a sidecar", "isSupportedProxyType",
     MM(SYS, "", "{kind: Mesh, proxyTypes: [Gateway]}"), DP_WEB, false, "leave out Sidecar"},
    {"Mesh proxyTypes [Gateway] selects a delegated gateway", "resolveDataplaneProxyType",
     MM(SYS, "", "{kind: Mesh, proxyTypes: [Gateway]}"), DP_GW, true, NULL},
    {"Mesh proxyTypes [Sidecar] leaves out a delegated gateway", "resolveDataplaneProxyType",
     MM(SYS, "", "{kind: Mesh, proxyTypes: [Sidecar]}"), DP_GW, false, "leave out Gateway"},
    {"MeshSubset matches a delegated gateway's tags", "inboundsSelectedByTags (delegated)",
     MM(SYS, "", "{kind: MeshSubset, tags: {kuma.io/service: edge_shop_svc_80}}"), DP_GW, true,
     NULL},
    {"MeshService matches a delegated gateway's tags", "inboundsSelectedByTags (delegated)",
     MM(SYS, "", "{kind: MeshService, name: edge_shop_svc_80}"), DP_GW, true, NULL},
    {"Dataplane labels: the workload (service account)", "isSelectedByLabels; compute.go",
     MM(SYS, "", "{kind: Dataplane, labels: {kuma.io/workload: web-sa}}"), DP_WEB, true, NULL},
    {"Dataplane labels: the display name is the pod's name, not a copied label",
     "store.go GetLabels", MM(SYS, "", "{kind: Dataplane, labels: {kuma.io/display-name: fake}}"),
     DP_WEB, false, "do not have all its labels"},
    {"Dataplane labels: display name", "store.go GetLabels",
     MM(SYS, "",
        "{kind: Dataplane, labels: {kuma.io/display-name: web-7f9c-abcde, "
        "kuma.io/zone: default, k8s.kuma.io/namespace: shop}}"),
     DP_WEB, true, NULL},
    {"Dataplane labels: a delegated gateway's proxy-type label is sidecar",
     "Dataplane.GetProxyType (builtin only)",
     MM(SYS, "", "{kind: Dataplane, labels: {kuma.io/proxy-type: gateway}}"), DP_GW, false, NULL},
    {"Dataplane labels {} select every proxy", "isSelectedByLabels (a non-nil empty map)",
     MM(SYS, "", "{kind: Dataplane, labels: {}}"), DP_API, true, NULL},
    {"Dataplane by name in the policy's namespace", "isSelectedByResourceIdentifier",
     MM("shop", "", "{kind: Dataplane, name: web-7f9c-abcde}"), DP_WEB, true, NULL},
    {"Dataplane by name: the system namespace is not the pod's",
     "TargetRefToKRI (namespace from the policy)",
     MM(SYS, "", "{kind: Dataplane, name: web-7f9c-abcde}"), DP_WEB, false,
     "names kuma-system/web-7f9c-abcde"},
    {"Dataplane by name and namespace", "TargetRefToKRI",
     MM(SYS, "", "{kind: Dataplane, name: web-7f9c-abcde, namespace: shop}"), DP_WEB, true, NULL},
    {"Dataplane by name from a global policy: its identifier names no zone",
     "TargetRefToKRI (zone from the policy's kuma.io/zone label)",
     MM(SYS, ", labels: {kuma.io/origin: global}",
        "{kind: Dataplane, name: web-7f9c-abcde, namespace: shop}"),
     DP_WEB, false, "in zone \"\""},
    {"Dataplane by name from a policy labelled with another zone", "dppSelectedByZone",
     MM(SYS, ", labels: {kuma.io/zone: east}",
        "{kind: Dataplane, name: web-7f9c-abcde, namespace: shop}"),
     DP_WEB, false, "comes from zone \"east\""},
    {"Dataplane with only a namespace selects nothing", "allDataplanesSelected",
     MM(SYS, "", "{kind: Dataplane, namespace: shop}"), DP_WEB, false, "selects nothing"},
    {"Dataplane never selects a builtin gateway", "DppSelectedByPolicy (gateway != nil)",
     MM(SYS, "", "{kind: Dataplane}"), DP_BUILTIN, false, "builtin gateway"},
    {"a global policy applies in every zone", "dppSelectedByZone",
     MM(SYS, ", labels: {kuma.io/origin: global}", "{kind: Mesh}"), DP_WEB, true, NULL},
    {"a workload-owner policy stays in its namespace", "dppSelectedByNamespace",
     MM("shop", "", "{kind: Mesh}"), DP_FAR, false, "workload-owner policy of namespace \"shop\""},
    {"a copied policy-role label changes nothing", "compute.go (set, not setIfNotExist)",
     MM("shop", ", labels: {kuma.io/policy-role: system}", "{kind: Mesh}"), DP_FAR, false,
     "workload-owner"},
    {"a k8s.kuma.io/namespace label set on the policy is kept",
     "compute.go setIfNotExist; dppSelectedByNamespace",
     MM("shop", ", labels: {k8s.kuma.io/namespace: far}", "{kind: Mesh}"), DP_FAR, true, NULL},
    {"another mesh", "MatchedPolicies (policies of the proxy's mesh)",
     MM(SYS, ", labels: {kuma.io/mesh: other}", "{kind: Mesh}"), DP_WEB, false, "mesh \"other\""},
    {"MeshGateway", "DppSelectedByPolicy MeshGateway (builtin and a MeshGateway only)",
     MM(SYS, "", "{kind: MeshGateway, name: gw}"), DP_BUILTIN, false, "builtin gateways only"},
    {"MeshHTTPRoute", "not a MeshMetric target", MM(SYS, "", "{kind: MeshHTTPRoute, name: r}"),
     DP_WEB, false, "selects no data plane"},
    {"a targetRef that is not an object selects nothing", "(Kuma's schema refuses it)",
     MM(SYS, "", "Mesh"), DP_WEB, false, "selects no data plane"},
    {"targetRef null is Mesh", "the MeshMetric API's nil targetRef", MM(SYS, "", "null"), DP_WEB,
     true, NULL},
    {"absent targetRef is Mesh", "the MeshMetric API's nil targetRef",
     "kind: MeshMetric\nmetadata: {name: m, namespace: kuma-system}\nspec: {}\n", DP_BUILTIN, true,
     NULL},
};

static void test_select_table(void **state)
{
    struct fixture *f = *state;
    struct select_context ctx = {SYS, ZONE};
    size_t failed = 0;
    for (size_t i = 0; i < sizeof select_cases / sizeof *select_cases; i++) {
        const struct select_case *c = &select_cases[i];
        struct policy *p = mk(c->policy);
        char why[512];
        bool got = select_policy(p, &f->dps[c->dp], &ctx, why, sizeof why);
        bool ok = got == c->selected;
        if (ok && !got && c->why && !strstr(why, c->why))
            ok = false;
        if (ok && got && why[0])
            ok = false;
        if (!ok) {
            print_message("%s (%s): want %s%s%s, got %s: %s\n", c->name, c->source,
                          c->selected ? "selected" : "not selected", c->why ? " because " : "",
                          c->why ? c->why : "", got ? "selected" : "not selected", why);
            failed++;
        }
        /* why is optional */
        assert_int_equal(select_policy(p, &f->dps[c->dp], &ctx, NULL, 0), got);
        unmk(p);
    }
    if (failed)
        fail_msg("%zu selection cases failed", failed);
}

/* A Dataplane read from Kuma's object is selected by the same rules. */
static void test_select_kuma_dataplane(void **state)
{
    (void)state;
    json_t *obj = tu_yaml("kind: Dataplane\nmesh: default\nmetadata: {name: web-1, namespace: "
                          "shop, labels: {kuma.io/origin: zone, kuma.io/zone: default, "
                          "k8s.kuma.io/namespace: shop}}\nspec: {networking: {inbound: [{port: "
                          "49151, tags: {app: web, kuma.io/service: web_shop_svc}}]}}");
    struct dataplane dp;
    assert_int_equal(dataplane_from_kuma(obj, &dp), MM_OK);
    struct policy *by_name = mk(MM("shop", "", "{kind: Dataplane, name: web-1}"));
    struct policy *subset = mk(MM(SYS, "", "{kind: MeshSubset, tags: {app: web}}"));
    struct policy *other_zone = mk(MM(SYS, ", labels: {kuma.io/zone: east}", "{kind: Mesh}"));
    assert_true(select_policy(by_name, &dp, NULL, NULL, 0));
    assert_true(select_policy(subset, &dp, NULL, NULL, 0));
    assert_false(select_policy(other_zone, &dp, NULL, NULL, 0));
    unmk(by_name);
    unmk(subset);
    unmk(other_zone);
    dataplane_cleanup(&dp);
    json_decref(obj);
}

/* ---- the policy labels ---------------------------------------------------------------- */

static void test_policy_labels(void **state)
{
    (void)state;
    static const struct {
        const char *name, *source, *meta;
        enum policy_role role;
        const char *origin, *zone, *namespace, *display;
    } cases[] = {
        {"system namespace", "ComputePolicyRole; Compute (zone mode)",
         "{name: a, namespace: kuma-system}", POLICY_ROLE_SYSTEM, "zone", ZONE, "kuma-system", "a"},
        {"another namespace: workload-owner (no to/from)", "ComputePolicyRole",
         "{name: a, namespace: shop}", POLICY_ROLE_WORKLOAD_OWNER, "zone", ZONE, "shop", "a"},
        {"no namespace: the system namespace", "(a Universal-style file)", "{name: a}",
         POLICY_ROLE_SYSTEM, "zone", ZONE, "kuma-system", "a"},
        {"copied role and display-name labels do not count", "Compute (set); GetLabels",
         "{name: a, namespace: shop, labels: {kuma.io/policy-role: system, kuma.io/display-name: "
         "zzz}}",
         POLICY_ROLE_WORKLOAD_OWNER, "zone", ZONE, "shop", "a"},
        {"the display-name annotation counts", "store.go GetLabels; GetDisplayName",
         "{name: a-5d8f, namespace: kuma-system, annotations: {kuma.io/display-name: a}}",
         POLICY_ROLE_SYSTEM, "zone", ZONE, "kuma-system", "a"},
        {"an empty display-name annotation: name.namespace", "GetDisplayName (GetName)",
         "{name: a, namespace: shop, annotations: {kuma.io/display-name: ''}}",
         POLICY_ROLE_WORKLOAD_OWNER, "zone", ZONE, "shop", "a.shop"},
        {"origin global: no zone, labels as synced", "Compute; IsLocallyOriginated",
         "{name: a, namespace: kuma-system, labels: {kuma.io/origin: global, "
         "kuma.io/policy-role: consumer}}",
         POLICY_ROLE_CONSUMER, "global", NULL, NULL, "a"},
        {"origin global without a role label: system", "core_model.PolicyRole",
         "{name: a, namespace: shop, labels: {kuma.io/origin: global, k8s.kuma.io/namespace: "
         "x}}",
         POLICY_ROLE_SYSTEM, "global", NULL, "x", "a"},
        {"an unknown role label value", "roleOrder (0)",
         "{name: a, namespace: shop, labels: {kuma.io/origin: global, kuma.io/policy-role: "
         "boss}}",
         POLICY_ROLE_UNKNOWN, "global", NULL, NULL, "a"},
        {"an empty origin counts as local", "resourceOrigin; setIfNotExist",
         "{name: a, namespace: shop, labels: {kuma.io/origin: ''}}", POLICY_ROLE_WORKLOAD_OWNER, "",
         ZONE, "shop", "a"},
        {"a zone label set on the policy is kept", "setIfNotExist",
         "{name: a, namespace: shop, labels: {kuma.io/zone: east}}", POLICY_ROLE_WORKLOAD_OWNER,
         "zone", "east", "shop", "a"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *text = xasprintf("{kind: MeshMetric, metadata: %s}", cases[i].meta);
        json_t *obj = tu_yaml(text);
        struct policy_labels l;
        labels_policy_compute(obj, SYS, ZONE, &l);
        const char *name = cases[i].name;
        if (l.role != cases[i].role)
            fail_msg("%s: role %s, want %s", name, labels_role_name(l.role),
                     labels_role_name(cases[i].role));
#define SAME(field)                                                                                \
    if (!cases[i].field != !l.field || (l.field && strcmp(l.field, cases[i].field)))               \
        fail_msg("%s: " #field " %s, want %s", name, l.field ? l.field : "(none)",                 \
                 cases[i].field ? cases[i].field : "(none)");
        SAME(origin)
        SAME(zone)
        SAME(namespace)
#undef SAME
        assert_string_equal(l.display_name, cases[i].display);
        labels_policy_cleanup(&l);
        json_decref(obj);
        free(text);
    }
    assert_string_equal(labels_role_name(POLICY_ROLE_UNKNOWN), "");
    assert_string_equal(labels_role_name(POLICY_ROLE_PRODUCER), "producer");
}

/* policy_load computes the same labels and targetRef. */
static void test_policy_load_labels(void **state)
{
    (void)state;
    json_t *doc = tu_yaml("kind: MeshMetric\nmetadata: {name: team, namespace: shop, labels: "
                          "{kuma.io/policy-role: system}}\nspec: {targetRef: {kind: Dataplane, "
                          "labels: {app: web}}, default: {backends: [{type: Prometheus, "
                          "prometheus: {port: 5670}}]}}");
    struct policy_load_options lo = {SYS, "eu"};
    struct policy *p = NULL;
    struct violations errs;
    violations_init(&errs);
    struct mm_error err;
    assert_int_equal(policy_load(doc, &lo, &p, &errs, NULL, &err), MM_OK);
    assert_int_equal(p->labels.role, POLICY_ROLE_WORKLOAD_OWNER);
    assert_string_equal(p->labels.zone, "eu");
    assert_string_equal(p->labels.origin, "zone");
    assert_string_equal(p->labels.namespace, "shop");
    assert_int_equal(p->target.kind, TARGET_DATAPLANE);
    assert_int_equal(p->target.kind_rank, 2);
    policy_unref(p);
    violations_cleanup(&errs);
    json_decref(doc);
}

/* ---- the order --------------------------------------------------------------------------- */

struct order_case {
    const char *name;
    const char *source;
    const char *a, *b;
    int sign; /* of order_compare(a, b): <0 a has lower priority */
};

#define P(ns, name, extra_meta, target)                                                            \
    "kind: MeshMetric\nmetadata: {name: " name ", namespace: " ns extra_meta "}\nspec: "           \
    "{targetRef: " target "}\n"

static const struct order_case order_cases[] = {
    {"Mesh below MeshSubset", "targetref.go order map", P(SYS, "a", "", "{kind: Mesh}"),
     P(SYS, "a", "", "{kind: MeshSubset}"), -1},
    {"Dataplane below MeshSubset (code, not docs)", "targetref.go order map",
     P(SYS, "a", "", "{kind: Dataplane}"), P(SYS, "a", "", "{kind: MeshSubset}"), -1},
    {"MeshServiceSubset above MeshService", "targetref.go order map",
     P(SYS, "a", "", "{kind: MeshServiceSubset, name: s}"),
     P(SYS, "a", "", "{kind: MeshService, name: s}"), 1},
    {"Dataplane by name above Dataplane by labels", "CompareDataplaneKind",
     P(SYS, "z", "", "{kind: Dataplane, name: x}"),
     P(SYS, "a", "", "{kind: Dataplane, labels: {}}"), 1},
    {"Dataplane with sectionName above one without", "CompareDataplaneKind",
     P(SYS, "z", "", "{kind: Dataplane, sectionName: s}"), P(SYS, "a", "", "{kind: Dataplane}"), 1},
    {"plain Dataplane ties with labels: the display name decides", "CompareDataplaneKind (0)",
     P(SYS, "b", "", "{kind: Dataplane}"), P(SYS, "a", "", "{kind: Dataplane, labels: {x: y}}"),
     -1},
    {"global origin below a local (zone) policy", "ResourceOrigin.Compare",
     P(SYS, "a", ", labels: {kuma.io/origin: global}", "{kind: Mesh}"),
     P(SYS, "z", "", "{kind: Mesh}"), -1},
    {"an unknown origin value ranks below global", "originOrder (0)",
     P(SYS, "a", ", labels: {kuma.io/origin: weird}", "{kind: Mesh}"),
     P(SYS, "z", ", labels: {kuma.io/origin: global}", "{kind: Mesh}"), -1},
    {"an empty origin ranks between global and zone", "originOrder",
     P(SYS, "a", ", labels: {kuma.io/origin: ''}", "{kind: Mesh}"), P(SYS, "z", "", "{kind: Mesh}"),
     -1},
    {"MeshGateway: fewer tags rank lower", "SortByTargetRef",
     P(SYS, "a", "", "{kind: MeshGateway, name: g}"),
     P(SYS, "z", "", "{kind: MeshGateway, name: g, tags: {a: b}}"), -1},
    {"system below workload-owner", "PolicyRole.Compare", P(SYS, "a", "", "{kind: Mesh}"),
     P("shop", "z", "", "{kind: Mesh}"), -1},
    {"a copied role label does not lift a namespaced policy", "Compute (set)",
     P("shop", "a", ", labels: {kuma.io/policy-role: system}", "{kind: Mesh}"),
     P(SYS, "a", "", "{kind: Mesh}"), 1},
    {"the smaller display name wins", "cmp.Compare(name2, name1)",
     P(SYS, "aaa", "", "{kind: Mesh}"), P(SYS, "zzz", "", "{kind: Mesh}"), 1},
    {"the display-name annotation, not the object name", "GetDisplayName",
     P(SYS, "zzz-5f8d", ", annotations: {kuma.io/display-name: aaa}", "{kind: Mesh}"),
     P(SYS, "bbb", "", "{kind: Mesh}"), 1},
    {"a copied display-name label does not count", "store.go GetLabels",
     P(SYS, "zzz", ", labels: {kuma.io/display-name: aaa}", "{kind: Mesh}"),
     P(SYS, "bbb", "", "{kind: Mesh}"), -1},
    {"same name in two namespaces: a tie (no namespace or KRI key)", "SortByTargetRef",
     P("shop", "a", "", "{kind: Mesh}"), P("far", "a", "", "{kind: Mesh}"), 0},
};

static void test_order_table(void **state)
{
    (void)state;
    size_t failed = 0;
    for (size_t i = 0; i < sizeof order_cases / sizeof *order_cases; i++) {
        const struct order_case *c = &order_cases[i];
        struct policy *a = mk(c->a), *b = mk(c->b);
        int got = order_compare(a, b), back = order_compare(b, a);
        int s = (got > 0) - (got < 0);
        if (s != c->sign || ((back > 0) - (back < 0)) != -c->sign) {
            print_message("%s (%s): want %d, got %d (reverse %d)\n", c->name, c->source, c->sign,
                          got, back);
            failed++;
        }
        unmk(a);
        unmk(b);
    }
    if (failed)
        fail_msg("%zu order cases failed", failed);
}

static void test_order_kind_rank(void **state)
{
    (void)state;
    static const struct {
        const char *kind;
        int rank;
    } ranks[] = {{"Mesh", 1},
                 {"Dataplane", 2},
                 {"MeshSubset", 3},
                 {"MeshGateway", 4},
                 {"MeshService", 5},
                 {"MeshExternalService", 6},
                 {"MeshMultiZoneService", 7},
                 {"MeshServiceSubset", 8},
                 {"MeshHTTPRoute", 9},
                 {"Bogus", 0},
                 {NULL, 0}};
    for (size_t i = 0; i < sizeof ranks / sizeof *ranks; i++)
        assert_int_equal(order_kind_rank(ranks[i].kind), ranks[i].rank);
}

/* order_sort: ascending priority; ties keep their input order (Kuma's sort is unstable). */
static void test_order_sort(void **state)
{
    (void)state;
    struct policy *p[] = {
        mk(P(SYS, "b", "", "{kind: MeshSubset}")), mk(P("shop", "same", "", "{kind: Mesh}")),
        mk(P("far", "same", "", "{kind: Mesh}")),  mk(P(SYS, "a", "", "{kind: Mesh}")),
        mk(P(SYS, "c", "", "{kind: Mesh}")),
    };
    const struct policy *items[5];
    for (int i = 0; i < 5; i++)
        items[i] = p[i];
    order_sort(items, 5);
    const char *want[] = {"kuma-system/c", "kuma-system/a", "shop/same", "far/same",
                          "kuma-system/b"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(items[i]->id, want[i]);
    order_sort(items, 0);
    order_sort(items, 1);
    for (int i = 0; i < 5; i++)
        unmk(p[i]);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_select_table, setup, teardown),
        cmocka_unit_test(test_select_kuma_dataplane),
        cmocka_unit_test(test_policy_labels),
        cmocka_unit_test(test_policy_load_labels),
        cmocka_unit_test(test_order_table),
        cmocka_unit_test(test_order_kind_rank),
        cmocka_unit_test(test_order_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
