/*
 * The dataplane view of a pod (core/dataplane.h).
 *
 * 1. Kuma's own pod converter test data (tests/data/kuma-converter, Kuma v2.14.3
 *    pod_converter_test.go): every case the product models, compared with Kuma's
 *    golden Dataplane read back through dataplane_from_kuma.
 * 2. Kuma's own unit tables for InboundTagsForService, ProtocolTagFor and the
 *    serviceless name extractor, copied with their entry names.
 * 3. The reconciler's rules (which Services count, defaults, owners that are not
 *    known, gateways, templates, labels), each case naming the Kuma source it
 *    follows; expectations are written from that source, never from our output.
 * 4. dataplane_from_kuma's unhappy paths and dataplane_diff.
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
#include "core/view.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

/* ---- helpers ---------------------------------------------------------------------- */

/* Every document of YAML text (objects only). */
static json_t *yaml_docs(const char *text)
{
    json_t *docs = NULL;
    struct mm_error err;
    if (yamljson_load(text, strlen(text), NULL, &docs, &err) != MM_OK)
        fail_msg("bad YAML in test: %s\n%s", err.message, text);
    json_t *out = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        if (json_is_object(d))
            json_array_append(out, d);
    }
    json_decref(docs);
    return out;
}

static json_t *load_docs(const char *dir, const char *file, bool required)
{
    char *path = xasprintf("%s/%s", dir, file);
    json_t *raw = tu_load_yaml(path, required);
    free(path);
    json_t *out = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(raw, i, d)
    {
        if (json_is_object(d))
            json_array_append(out, d);
    }
    json_decref(raw);
    return out;
}

static bool file_exists(const char *dir, const char *file)
{
    char *path = xasprintf("%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    free(path);
    if (f)
        fclose(f);
    return f != NULL;
}

/* True when want equals got; otherwise prints where they differ. */
static bool same_json(const char *what, const char *case_name, const json_t *want,
                      const json_t *got)
{
    if (json_equal(want, got))
        return true;
    print_message("%s: %s differ:\n", case_name, what);
    tu_print_diff("", want, got);
    return false;
}

static void expect_json(const char *what, const char *case_name, const json_t *want,
                        const json_t *got)
{
    if (!same_json(what, case_name, want, got))
        fail_msg("%s: %s differ", case_name, what);
}

static bool has_warning(const struct dataplane *dp, const char *needle)
{
    for (size_t i = 0; i < dp->warnings.len; i++)
        if (strstr(dp->warnings.items[i].message, needle))
            return true;
    return false;
}

static char *warnings_text(const struct dataplane *dp)
{
    char *s = violations_join(&dp->warnings);
    return s ? s : xstrdup("");
}

/* ---- 1. Kuma's converter fixtures -------------------------------------------------------- */

static const char *const workload_labels_31[] = {"app.kubernetes.io/name", "app", NULL};
static const char *const workload_labels_32[] = {"statefulset.kubernetes.io/pod-name",
                                                 "app.kubernetes.io/instance", NULL};
static const char *const region_only[] = {"topology.kubernetes.io/region", NULL};

/* The entries of DescribeTable("should convert Pod into a Dataplane YAML version"). */
struct kuma_case {
    const char *entry; /* Kuma's Entry description */
    const char *pod, *services, *replicasets, *node, *dataplane;
    const char *const *node_labels_to_copy;
    const char *const *workload_labels;
    bool inbounds_only; /* labels start from an existing Dataplane's: not modelled */
};

static const struct kuma_case kuma_cases[] = {
    {"01.Pod with 2 Services", "01.pod.yaml", "01.services-for-pod.yaml", NULL, NULL,
     "01.dataplane.yaml", NULL, NULL, false},
    {"02. Pod with 1 Service and 1 other Dataplane", "02.pod.yaml", "02.services-for-pod.yaml",
     NULL, NULL, "02.dataplane.yaml", NULL, NULL, false},
    {"03. Pod with gateway annotation and 1 service - legacy", "03.pod.yaml",
     "03.services-for-pod.yaml", NULL, NULL, "03.dataplane.yaml", NULL, NULL, false},
    {"04. Pod with direct access to all services", "04.pod.yaml", "04.services-for-pod.yaml", NULL,
     NULL, "04.dataplane.yaml", NULL, NULL, false},
    {"05. Pod with direct access to chosen services", "05.pod.yaml", "05.services-for-pod.yaml",
     NULL, NULL, "05.dataplane.yaml", NULL, NULL, false},
    {"06. Pod with headless service and communication to headless services", "06.pod.yaml",
     "06.services-for-pod.yaml", NULL, NULL, "06.dataplane.yaml", NULL, NULL, false},
    {"07. Pod with metrics override", "07.pod.yaml", "07.services-for-pod.yaml", NULL, NULL,
     "07.dataplane.yaml", NULL, NULL, false},
    {"08. Pod with transparent proxy enabled, without direct access servies", "08.pod.yaml",
     "08.services-for-pod.yaml", NULL, NULL, "08.dataplane.yaml", NULL, NULL, false},
    {"09. Pod with Kuma Ingress", "09.pod.yaml", "09.services-for-pod.yaml", NULL, NULL,
     "09.dataplane.yaml", NULL, NULL, false},
    {"10. Pod probes", "10.pod.yaml", "10.services-for-pod.yaml", NULL, NULL, "10.dataplane.yaml",
     NULL, NULL, false},
    {"11. Pod with several containers", "11.pod.yaml", "11.services-for-pod.yaml", NULL, NULL,
     "11.dataplane.yaml", NULL, NULL, false},
    {"12. Pod with kuma-sidecar is not ready", "12.pod.yaml", "12.services-for-pod.yaml", NULL,
     NULL, "12.dataplane.yaml", NULL, NULL, false},
    {"13. Pod without a service", "13.pod.yaml", NULL, NULL, NULL, "13.dataplane.yaml", NULL, NULL,
     false},
    {"14. Gateway pod without a service", "14.pod.yaml", NULL, NULL, NULL, "14.dataplane.yaml",
     NULL, NULL, false},
    {"15. Pod with transparent proxy enabled, IPv6 and without direct access servies",
     "15.pod.yaml", "15.services-for-pod.yaml", NULL, NULL, "15.dataplane.yaml", NULL, NULL, false},
    {"16. Pod with Kuma Egress", "16.pod.yaml", "16.services-for-pod.yaml", NULL, NULL,
     "16.dataplane.yaml", NULL, NULL, false},
    {"17. Pod with reachable services", "17.pod.yaml", "17.services-for-pod.yaml", NULL, NULL,
     "17.dataplane.yaml", NULL, NULL, false},
    {"18. Gateway with non tcp appProtocol", "18.pod.yaml", "18.services-for-pod.yaml", NULL, NULL,
     "18.dataplane.yaml", NULL, NULL, false},
    {"19. Terminating pod is unhealthy", "19.pod.yaml", "19.services-for-pod.yaml", NULL, NULL,
     "19.dataplane.yaml", NULL, NULL, false},
    {"20. Pod with gateway annotation and 1 service identified by deployment", "20.pod.yaml",
     "20.services-for-pod.yaml", "20.replicasets-for-pod.yaml", NULL, "20.dataplane.yaml", NULL,
     NULL, false},
    {"21. Pod with gateway annotation and 1 service with no replicaset", "21.pod.yaml",
     "21.services-for-pod.yaml", NULL, NULL, "21.dataplane.yaml", NULL, NULL, false},
    {"22. Pod with gateway annotation and 1 service with replicaset but no deployment",
     "22.pod.yaml", "22.services-for-pod.yaml", "22.replicasets-for-pod.yaml", NULL,
     "22.dataplane.yaml", NULL, NULL, false},
    {"23. Pod with ignored listener", "23.pod.yaml", "23.services-for-pod.yaml", NULL, NULL,
     "23.dataplane.yaml", NULL, NULL, false},
    {"24. Pod with transparent proxy enabled, with ipv6 disabled", "24.pod.yaml",
     "08.services-for-pod.yaml", NULL, NULL, "24.dataplane.yaml", NULL, NULL, false},
    {"25. Pod with transparent proxy enabled, with no ip-family-mode and ipv6 disabled",
     "25.pod.yaml", "08.services-for-pod.yaml", NULL, NULL, "25.dataplane.yaml", NULL, NULL, false},
    {"26. Should copy node label to the inbound tags", "26.pod.yaml", NULL, NULL, "26.node.yaml",
     "26.dataplane.yaml", region_only, NULL, false},
    {"27. Should not copy label to the dataplane if there is no node label", "27.pod.yaml", NULL,
     NULL, "27.node.yaml", "27.dataplane.yaml", region_only, NULL, false},
    {"28. Pod with reachable backend refs", "28.pod.yaml", "28.services-for-pod.yaml", NULL, NULL,
     "28.dataplane.yaml", NULL, NULL, false},
    {"29. Pod with empty reachable backend refs", "29.pod.yaml", "29.services-for-pod.yaml", NULL,
     NULL, "29.dataplane.yaml", NULL, NULL, false},
    {"should create dataplane even if service ports don't match", "mismatch-ports.pod.yaml",
     "mismatch-ports.services-for-pod.yaml", NULL, NULL, "mismatch-ports.dataplane.yaml", NULL,
     NULL, false},
    {"30. Pod using application probe proxy", "30.pod.yaml", "30.services-for-pod.yaml", NULL, NULL,
     "30.dataplane.yaml", NULL, NULL, false},
    {"Update existing dataplane with pod labels", "update-dataplane.pod.yaml",
     "update-dataplane.services-for-pod.yaml", NULL, NULL, "update-dataplane.dataplane.yaml", NULL,
     NULL, true},
    {"Multiple services selecting a single port keeps all inbounds when inbound tags enabled",
     "overlapping-inbounds.pod.yaml", "overlapping-inbounds.services-for-pod.yaml", NULL, NULL,
     "overlapping-inbounds.dataplane.yaml", NULL, NULL, false},
    {"31. Pod with workload labels configured matching pod label", "31.pod.yaml",
     "31.services-for-pod.yaml", NULL, NULL, "31.dataplane.yaml", NULL, workload_labels_31, false},
    {"32. Pod with workload labels configured, fallback to service account", "32.pod.yaml",
     "32.services-for-pod.yaml", NULL, NULL, "32.dataplane.yaml", NULL, workload_labels_32, false},
    {"33. Pod without workload labels configured uses service account", "33.pod.yaml",
     "33.services-for-pod.yaml", NULL, NULL, "33.dataplane.yaml", NULL, NULL, false},
    {"36. Zone-proxy-only Pod with ZoneIngress listener", "36.pod.yaml", "36.services-for-pod.yaml",
     NULL, NULL, "36.dataplane.yaml", NULL, NULL, false},
    {"37. Pod with regular inbound and ZoneEgress listener", "37.pod.yaml",
     "37.services-for-pod.yaml", NULL, NULL, "37.dataplane.yaml", NULL, NULL, false},
    {"38. Zone-proxy-only Pod with ZoneIngress listener, sidecar not ready", "38.pod.yaml",
     "38.services-for-pod.yaml", NULL, NULL, "38.dataplane.yaml", NULL, NULL, false},
    {"39. Zone-proxy-only Pod with both ZoneIngress and ZoneEgress listeners", "39.pod.yaml",
     "39.services-for-pod.yaml", NULL, NULL, "39.dataplane.yaml", NULL, NULL, false},
    {"40. Zone-proxy-only Pod where service port differs from container port", "40.pod.yaml",
     "40.services-for-pod.yaml", NULL, NULL, "40.dataplane.yaml", NULL, NULL, false},
    {"41. Zone-proxy-only Pod with unnamed service port - listener name derived from service",
     "41.pod.yaml", "41.services-for-pod.yaml", NULL, NULL, "41.dataplane.yaml", NULL, NULL, false},
    {"42. Zone-proxy-only Pod with two ingress services on the same port", "42.pod.yaml",
     "42.services-for-pod.yaml", NULL, NULL, "42.dataplane.yaml", NULL, NULL, false},
    {"44. Zone proxy Services with non-Exclusive MeshServices mode skips listeners", "44.pod.yaml",
     "44.services-for-pod.yaml", NULL, NULL, "44.dataplane.yaml", NULL, NULL, false},
};

/* The Node's labels that nodeLabelsToCopy keeps (getNodeLabelsToCopy). */
static json_t *node_labels(const char *dir, const struct kuma_case *c)
{
    if (!c->node)
        return NULL;
    json_t *docs = load_docs(dir, c->node, true);
    const json_t *labels =
        json_object_get(json_object_get(json_array_get(docs, 0), "metadata"), "labels");
    json_t *out = json_object();
    for (size_t i = 0; c->node_labels_to_copy && c->node_labels_to_copy[i]; i++) {
        json_t *v = json_object_get(labels, c->node_labels_to_copy[i]);
        if (v)
            json_object_set(out, c->node_labels_to_copy[i], v);
    }
    json_decref(docs);
    return out;
}

/* The compared part of an inbound list: everything dataplane.h keeps. */
static json_t *inbounds_of(const struct dataplane *dp)
{
    return json_incref(dp->inbounds);
}

static bool run_kuma_case(const char *dir, const struct kuma_case *c)
{
    bool ok = true;
    json_t *pods = load_docs(dir, c->pod, true);
    const json_t *pod = json_array_get(pods, 0);
    json_t *services = c->services ? load_docs(dir, c->services, true) : json_array();
    json_t *owners = c->replicasets ? load_docs(dir, c->replicasets, true) : json_array();
    json_t *nl = node_labels(dir, c);
    struct policy_view *view = tu_view(owners, NULL, c->entry);
    size_t n = json_array_size(services);
    const json_t **svcs = xmalloc((n ? n : 1) * sizeof *svcs);
    for (size_t i = 0; i < n; i++)
        svcs[i] = json_array_get(services, i);
    struct dataplane_options opt = {.zone = "zone-1",
                                    .no_cp_mode = true,
                                    .workload_labels = c->workload_labels,
                                    .node_labels = nl};
    struct dataplane got, want;
    dataplane_convert(pod, NULL, "default", svcs, n, view, &opt, &got);

    /* Kuma's golden, named as the reconciler names it (after the pod, in its namespace). */
    json_t *goldens = load_docs(dir, c->dataplane, true);
    json_t *golden = json_deep_copy(json_array_get(goldens, 0));
    json_t *md = json_object_get(golden, "metadata");
    const json_t *pod_md = json_object_get(pod, "metadata");
    json_object_set(md, "name", json_object_get(pod_md, "name"));
    json_object_set(md, "namespace", json_object_get(pod_md, "namespace"));
    assert_int_equal(dataplane_from_kuma(golden, &want), MM_OK);

    json_t *wi = inbounds_of(&want), *gi = inbounds_of(&got);
    ok &= same_json("inbounds", c->entry, wi, gi);
    json_decref(wi);
    json_decref(gi);
    ok &= same_json("gateway tags", c->entry, want.gateway_tags ? want.gateway_tags : json_null(),
                    got.gateway_tags ? got.gateway_tags : json_null());
    if (want.proxy_type != got.proxy_type || strcmp(want.mesh, got.mesh)) {
        print_message("%s: proxy type %d/%d, mesh %s/%s\n", c->entry, want.proxy_type,
                      got.proxy_type, want.mesh, got.mesh);
        ok = false;
    }
    if (!c->inbounds_only) {
        ok &= same_json("labels", c->entry, want.labels, got.labels);
        char *diff = dataplane_diff(&got, &want, "the derived view", "Kuma's Dataplane", NULL);
        if (diff) {
            print_message("%s: %s\n", c->entry, diff);
            ok = false;
        }
        free(diff);
    }

    dataplane_cleanup(&got);
    dataplane_cleanup(&want);
    view_unref(view);
    free(svcs);
    json_decref(golden);
    json_decref(goldens);
    json_decref(nl);
    json_decref(owners);
    json_decref(services);
    json_decref(pods);
    return ok;
}

static void test_kuma_converter_fixtures(void **state)
{
    (void)state;
    char *data = tu_testdata();
    char *dir = xasprintf("%s/kuma-converter", data);
    size_t failed = 0, n = sizeof kuma_cases / sizeof *kuma_cases;
    for (size_t i = 0; i < n; i++) {
        const struct kuma_case *c = &kuma_cases[i];
        assert_true(file_exists(dir, c->pod));
        if (!run_kuma_case(dir, c))
            failed++;
    }
    free(dir);
    free(data);
    if (failed)
        fail_msg("%zu of %zu Kuma converter cases differ", failed, n);
}

/* DescribeTable("should infer name based on the resource type") */
static void test_kuma_serviceless_names(void **state)
{
    (void)state;
    static const struct {
        const char *entry, *pod, *owners, *name, *kind;
    } cases[] = {
        {"name from deployment", "01.pod.yaml", "01.replicasets-for-pod.yaml", "test-server",
         "Deployment"},
        {"name from cronjob", "02.pod.yaml", "02.job-for-pod.yaml", "test-job", "CronJob"},
        {"name from replicaset", "03.pod.yaml", "03.replicasets-for-pod.yaml", "test-rs",
         "ReplicaSet"},
        {"name from job", "04.pod.yaml", "04.job-for-pod.yaml", "test-job", "Job"},
        {"name from pod", "05.pod.yaml", NULL, "test-pod-1", "Pod"},
        {"name from daemonset", "06.pod.yaml", NULL, "test-ds", "DaemonSet"},
    };
    char *data = tu_testdata();
    char *dir = xasprintf("%s/kuma-converter/serviceless", data);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *pods = load_docs(dir, cases[i].pod, true);
        json_t *owners = cases[i].owners ? load_docs(dir, cases[i].owners, true) : json_array();
        struct policy_view *view = tu_view(owners, NULL, cases[i].entry);
        struct dataplane dp;
        struct dataplane_options opt = {.zone = "zone-1", .no_cp_mode = true};
        dataplane_convert(json_array_get(pods, 0), NULL, "default", NULL, 0, view, &opt, &dp);
        if (strcmp(dp.workload, cases[i].name) || strcmp(dp.workload_kind, cases[i].kind))
            fail_msg("%s: want %s %s, got %s %s", cases[i].entry, cases[i].kind, cases[i].name,
                     dp.workload_kind, dp.workload);
        /* ... and the serviceless inbound is named after it (InboundTagsForPod). */
        char *svc = xasprintf("%s_demo_svc", cases[i].name);
        const json_t *tags = json_object_get(json_array_get(dp.inbounds, 0), "tags");
        assert_string_equal(json_string_value(json_object_get(tags, "kuma.io/service")), svc);
        assert_int_equal(dp.warnings.len, 0);
        free(svc);
        dataplane_cleanup(&dp);
        view_unref(view);
        json_decref(owners);
        json_decref(pods);
    }
    free(dir);
    free(data);
}

/* ---- 2. Kuma's InboundTagsForService and ProtocolTagFor tables ------------------------- */

/*
 * DescribeTable("should combine Pod's labels with Service's FQDN and port"): a pod in
 * demo without a name, Service demo/example with port {name: http, port: 80,
 * targetPort: 8080}; the expected tags are the entries' maps.
 */
static void test_kuma_inbound_tags_for_service(void **state)
{
    (void)state;
    static const struct {
        const char *entry, *zone, *pod_labels, *svc_annotations, *app_protocol, *node_labels,
            *expected;
    } cases[] = {
        {"Pod without labels", "", "{}", "{}", NULL, NULL,
         "{kuma.io/service: example_demo_svc_80, kuma.io/protocol: tcp, "
         "k8s.kuma.io/service-name: example, k8s.kuma.io/service-port: '80', "
         "k8s.kuma.io/namespace: demo}"},
        {"Pod with labels", "", "{app: example, version: '0.1'}", "{}", NULL, NULL,
         "{app: example, version: '0.1', kuma.io/service: example_demo_svc_80, "
         "kuma.io/protocol: tcp, k8s.kuma.io/service-name: example, "
         "k8s.kuma.io/service-port: '80', k8s.kuma.io/namespace: demo}"},
        {"Pod with node's topology labels", "", "{app: example, version: '0.1'}", "{}", NULL,
         "{topology.kubernetes.io/region: east, topology.kubernetes.io/zone: east-2a}",
         "{app: example, version: '0.1', kuma.io/service: example_demo_svc_80, "
         "kuma.io/protocol: tcp, k8s.kuma.io/service-name: example, "
         "k8s.kuma.io/service-port: '80', k8s.kuma.io/namespace: demo, "
         "topology.kubernetes.io/region: east, topology.kubernetes.io/zone: east-2a}"},
        {"Pod with `service` label", "",
         "{kuma.io/service: something, app: example, version: '0.1'}", "{}", NULL, NULL,
         "{app: example, version: '0.1', kuma.io/service: example_demo_svc_80, "
         "kuma.io/protocol: tcp, k8s.kuma.io/service-name: example, "
         "k8s.kuma.io/service-port: '80', k8s.kuma.io/namespace: demo}"},
        {"Service with a `<port>.service.kuma.io/protocol` annotation and an unknown value", "",
         "{app: example, version: '0.1'}",
         "{80.service.kuma.io/protocol: not-yet-supported-protocol}", NULL, NULL,
         "{app: example, version: '0.1', kuma.io/service: example_demo_svc_80, "
         "kuma.io/protocol: not-yet-supported-protocol, k8s.kuma.io/service-name: example, "
         "k8s.kuma.io/service-port: '80', k8s.kuma.io/namespace: demo}"},
        {"Service with a `<port>.service.kuma.io/protocol` annotation and a known value", "",
         "{app: example, version: '0.1'}", "{80.service.kuma.io/protocol: http}", NULL, NULL,
         "{app: example, version: '0.1', kuma.io/service: example_demo_svc_80, "
         "kuma.io/protocol: http, k8s.kuma.io/service-name: example, "
         "k8s.kuma.io/service-port: '80', k8s.kuma.io/namespace: demo}"},
        {"Service with appProtocol and a known value", "", "{app: example, version: '0.1'}", "{}",
         "http", NULL,
         "{app: example, version: '0.1', kuma.io/service: example_demo_svc_80, "
         "kuma.io/protocol: http, k8s.kuma.io/service-name: example, "
         "k8s.kuma.io/service-port: '80', k8s.kuma.io/namespace: demo}"},
        {"Inject a zone tag if Zone is set", "zone-1", "{app: example, version: '0.1'}", "{}", NULL,
         NULL,
         "{app: example, version: '0.1', kuma.io/service: example_demo_svc_80, "
         "kuma.io/zone: zone-1, kuma.io/protocol: tcp, k8s.kuma.io/service-name: example, "
         "k8s.kuma.io/service-port: '80', k8s.kuma.io/namespace: demo}"},
        {"Pod with empty labels", "", "{app: example, version: ''}", "{}", NULL, NULL,
         "{app: example, kuma.io/service: example_demo_svc_80, kuma.io/protocol: tcp, "
         "k8s.kuma.io/service-name: example, k8s.kuma.io/service-port: '80', "
         "k8s.kuma.io/namespace: demo}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *pod_text = xasprintf("metadata: {namespace: demo, labels: %s}", cases[i].pod_labels);
        char *svc_text = xasprintf(
            "metadata: {namespace: demo, name: example, labels: {more: labels}, annotations: "
            "%s}\nspec: {ports: [{name: http, port: 80, targetPort: 8080%s%s}]}",
            cases[i].svc_annotations, cases[i].app_protocol ? ", appProtocol: " : "",
            cases[i].app_protocol ? cases[i].app_protocol : "");
        json_t *pod = tu_yaml(pod_text), *svc = tu_yaml(svc_text);
        json_t *nl = cases[i].node_labels ? tu_yaml(cases[i].node_labels) : NULL;
        json_t *expected = tu_yaml(cases[i].expected);
        const json_t *svcs[] = {svc};
        struct dataplane_options opt = {
            .zone = cases[i].zone, .no_cp_mode = true, .node_labels = nl};
        struct dataplane dp;
        dataplane_convert(pod, NULL, "default", svcs, 1, NULL, &opt, &dp);
        assert_int_equal(json_array_size(dp.inbounds), 1);
        expect_json("tags", cases[i].entry, expected,
                    json_object_get(json_array_get(dp.inbounds, 0), "tags"));
        assert_int_equal(
            json_integer_value(json_object_get(json_array_get(dp.inbounds, 0), "port")), 8080);
        dataplane_cleanup(&dp);
        json_decref(expected);
        json_decref(nl);
        json_decref(svc);
        json_decref(pod);
        free(svc_text);
        free(pod_text);
    }
}

/* DescribeTable("should infer protocol from `appProtocol` or `<port>.service.kuma.io/protocol`
 * field") */
static void test_kuma_protocol_tag_for(void **state)
{
    (void)state;
    static const struct {
        const char *entry, *app_protocol, *annotations, *expected;
    } cases[] = {
        {"no appProtocol", NULL, "{}", "tcp"},
        {"appProtocol has an empty value", "''", "{}", "tcp"},
        {"no appProtocol but with `<port>.service.kuma.io/protocol` annotation", NULL,
         "{80.service.kuma.io/protocol: http}", "http"},
        {"appProtocol has an unknown value", "not-yet-supported-protocol", "{}", "tcp"},
        {"appProtocol has a lowercase value", "HtTp", "{}", "http"},
        {"appProtocol has a known value: http", "http", "{}", "http"},
        {"appProtocol has a known value: tcp", "tcp", "{}", "tcp"},
        {"no appProtocol and no `<port>.service.kuma.io/protocol`", NULL, "{}", "tcp"},
    };
    json_t *pod = tu_yaml("metadata: {namespace: demo, name: example-pod}");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *svc_text =
            xasprintf("metadata: {namespace: demo, name: example, annotations: %s}\n"
                      "spec: {ports: [{name: http, port: 80, targetPort: 8080%s%s}]}",
                      cases[i].annotations, cases[i].app_protocol ? ", appProtocol: " : "",
                      cases[i].app_protocol ? cases[i].app_protocol : "");
        json_t *svc = tu_yaml(svc_text);
        const json_t *svcs[] = {svc};
        struct dataplane dp;
        dataplane_convert(pod, NULL, "default", svcs, 1, NULL, NULL, &dp);
        const json_t *tags = json_object_get(json_array_get(dp.inbounds, 0), "tags");
        const char *got = json_string_value(json_object_get(tags, "kuma.io/protocol"));
        if (!got || strcmp(got, cases[i].expected))
            fail_msg("%s: want %s, got %s", cases[i].entry, cases[i].expected,
                     got ? got : "(none)");
        dataplane_cleanup(&dp);
        json_decref(svc);
        free(svc_text);
    }
    json_decref(pod);
}

/* ---- 3. the reconciler's rules ------------------------------------------------------- */

static const char *const app_first[] = {"app.kubernetes.io/name", "app", NULL};

/*
 * docs: the view's objects, then the Pod (the document of kind Pod or, with
 * template_owner, the pod template at spec.template of the last document).
 * Expectations: inbounds (full, YAML; NULL = not checked), gateway tags
 * (NULL = none), labels (a subset that must be there, with "~" meaning
 * "absent"), and warnings (substrings; "" = no warnings at all).
 */
struct rule_case {
    const char *name;
    const char *source; /* the Kuma code the expectation is written from */
    const char *docs;
    bool template_owner;
    const char *const *workload_labels;
    const char *inbounds;
    const char *gateway_tags;
    int proxy_type; /* enum proxy_type */
    int gateway;    /* enum gateway_type */
    const char *labels;
    const char *warning;
    const char *workload; /* the name extractor's name, NULL = not checked */
};

#define POD_WEB                                                                                    \
    "kind: Pod\nmetadata:\n  name: web-7f9c-abcde\n  namespace: shop\n  labels: {app: web, "       \
    "pod-template-hash: 7f9c, kuma.io/sidecar-injection: enabled, empty: ''}\n"                    \
    "  ownerReferences: [{kind: ReplicaSet, name: web-7f9c}]\n"                                    \
    "spec:\n  containers: [{name: app, ports: [{containerPort: 8080, name: http}, "                \
    "{containerPort: 9000, name: grpc}]}]\n"
#define RS_WEB                                                                                     \
    "kind: ReplicaSet\nmetadata: {name: web-7f9c, namespace: shop, ownerReferences: "              \
    "[{kind: Deployment, name: web}]}\n---\n"
#define SERVICELESS_WEB                                                                            \
    "[{port: 49151, serviceless: true, tags: {app: web, pod-template-hash: 7f9c, "                 \
    "kuma.io/sidecar-injection: enabled, k8s.kuma.io/namespace: shop, kuma.io/service: "           \
    "web_shop_svc, kuma.io/zone: default, kuma.io/protocol: tcp, kuma.io/instance: "               \
    "web-7f9c-abcde}}]"
#define SVC_WEB(extra_meta, extra_spec)                                                            \
    "kind: Service\nmetadata: {name: web, namespace: shop" extra_meta "}\n"                        \
    "spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]" extra_spec "}\n---\n"
#define INBOUND_WEB_80                                                                             \
    "[{port: 8080, name: http, tags: {app: web, pod-template-hash: 7f9c, "                         \
    "k8s.kuma.io/namespace: shop, k8s.kuma.io/service-name: web, k8s.kuma.io/service-port: "       \
    "'80', kuma.io/service: web_shop_svc_80, kuma.io/zone: default, kuma.io/protocol: tcp}}]"

static const struct rule_case rule_cases[] = {
    {"serviceless inbound named after the Deployment",
     "inbound_converter.go inboundInterfacesFor/InboundTagsForPod; serviceless_name_extractor.go; "
     "labels/compute.go Compute (mode zone); store.go GetLabels",
     RS_WEB POD_WEB, false, NULL, SERVICELESS_WEB, NULL, PROXY_SIDECAR, GATEWAY_NONE,
     "{app: web, pod-template-hash: 7f9c, kuma.io/sidecar-injection: enabled, empty: '', "
     "kuma.io/mesh: default, kuma.io/origin: zone, kuma.io/zone: default, kuma.io/env: "
     "kubernetes, k8s.kuma.io/namespace: shop, kuma.io/proxy-type: sidecar, "
     "k8s.kuma.io/service-account: default, kuma.io/workload: default, kuma.io/display-name: "
     "web-7f9c-abcde}",
     "", "web"},
    {"ReplicaSet not known: Deployment name from the pod-template-hash",
     "serviceless_name_extractor.go (the Get fails: Kuma makes no Dataplane)", POD_WEB, false, NULL,
     SERVICELESS_WEB, NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL,
     "ReplicaSet shop/web-7f9c is not known; Kuma cannot convert this pod into a Dataplane "
     "until it can read it; assumed its Deployment is named web (the ReplicaSet's name without "
     "the pod-template-hash suffix)",
     "web"},
    {"ReplicaSet not known and no hash: named after the ReplicaSet",
     "serviceless_name_extractor.go",
     "kind: Pod\nmetadata: {name: p1, namespace: shop, ownerReferences: [{kind: ReplicaSet, "
     "name: batch-x}]}\n",
     false, NULL,
     "[{port: 49151, serviceless: true, tags: {k8s.kuma.io/namespace: shop, kuma.io/service: "
     "batch-x_shop_svc, kuma.io/zone: default, kuma.io/protocol: tcp, kuma.io/instance: p1}}]",
     NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL,
     "assumed it has no owner, so the workload is named batch-x", "batch-x"},
    {"owner not known but not needed: no warning",
     "inbound_converter.go (Name() only without inbounds)", SVC_WEB("", "") POD_WEB, false, NULL,
     INBOUND_WEB_80, NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL, "", NULL},
    {"Job not known: named after the Job", "serviceless_name_extractor.go",
     "kind: Pod\nmetadata: {name: nightly-29000-x, namespace: shop, ownerReferences: [{kind: "
     "Job, name: nightly-29000}]}\n",
     false, NULL, NULL, NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL,
     "Job shop/nightly-29000 is not known; Kuma cannot convert this pod into a Dataplane until "
     "it can read it; assumed no CronJob owns it, so the workload is named nightly-29000",
     "nightly-29000"},
    {"Job of a CronJob", "serviceless_name_extractor.go",
     "kind: Job\nmetadata: {name: nightly-29000, namespace: shop, ownerReferences: [{kind: "
     "CronJob, name: nightly}]}\n---\nkind: Pod\nmetadata: {name: nightly-29000-x, namespace: "
     "shop, ownerReferences: [{kind: Job, name: nightly-29000}]}\n",
     false, NULL,
     "[{port: 49151, serviceless: true, tags: {k8s.kuma.io/namespace: shop, kuma.io/service: "
     "nightly_shop_svc, kuma.io/zone: default, kuma.io/protocol: tcp, kuma.io/instance: "
     "nightly-29000-x}}]",
     NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL, "", "nightly"},
    {"ReplicaSet owned by something else: the pod's name",
     "serviceless_name_extractor.go (the loop goes on to the pod's name)",
     "kind: ReplicaSet\nmetadata: {name: r-1, namespace: shop, ownerReferences: [{kind: "
     "Rollout, name: r}]}\n---\nkind: Pod\nmetadata: {name: r-1-x, namespace: shop, "
     "ownerReferences: [{kind: ReplicaSet, name: r-1}]}\n",
     false, NULL, NULL, NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL, "", "r-1-x"},
    {"Service inbounds: container port, dropped labels, protocol, named and missing ports",
     "inbound_converter.go inboundForService/InboundTagsForService/ProtocolTagFor; "
     "util.go FindPort",
     "kind: Service\nmetadata: {name: web, namespace: shop, annotations: "
     "{80.service.kuma.io/protocol: HTTP}}\nspec: {selector: {app: web}, ports: [{port: 80, "
     "targetPort: 8080}, {port: 9090, targetPort: grpc, appProtocol: GRPC}, {port: 53, "
     "protocol: UDP, targetPort: 53}, {port: 7000, targetPort: admin}, {port: 7001, "
     "targetPort: '7001'}, {port: '80'}, {port: 0}, {port: 70000}, {port: 81, targetPort: "
     "70000}]}\n---\n" POD_WEB,
     false, NULL,
     "[{port: 8080, name: http, tags: {app: web, pod-template-hash: 7f9c, "
     "k8s.kuma.io/namespace: shop, k8s.kuma.io/service-name: web, k8s.kuma.io/service-port: "
     "'80', kuma.io/service: web_shop_svc_80, kuma.io/zone: default, kuma.io/protocol: http}}, "
     "{port: 9000, name: grpc, tags: {app: web, pod-template-hash: 7f9c, k8s.kuma.io/namespace: "
     "shop, k8s.kuma.io/service-name: web, k8s.kuma.io/service-port: '9090', kuma.io/service: "
     "web_shop_svc_9090, kuma.io/zone: default, kuma.io/protocol: grpc}}]",
     NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL,
     "Service web port 7000: targetPort \"admin\" names no container port of the pod", "web"},
    {"targetPort absent: the Service port (the API server's default)",
     "k8s SetDefaults_Service; util.go FindPort",
     "kind: Service\nmetadata: {name: web, namespace: shop}\nspec: {selector: {app: web}, "
     "ports: [{port: 9000}]}\n---\n" POD_WEB,
     false, NULL,
     "[{port: 9000, name: grpc, tags: {app: web, pod-template-hash: 7f9c, "
     "k8s.kuma.io/namespace: shop, k8s.kuma.io/service-name: web, k8s.kuma.io/service-port: "
     "'9000', kuma.io/service: web_shop_svc_9000, kuma.io/zone: default, kuma.io/protocol: "
     "tcp}}]",
     NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL, "", NULL},
    {"headless Service, unknown appProtocol, annotation protocol",
     "InboundTagsForService isHeadlessService; ProtocolTagFor",
     "kind: Service\nmetadata: {name: db, namespace: shop, annotations: "
     "{5432.service.kuma.io/protocol: Kafka}}\nspec: {clusterIP: None, selector: {app: web}, "
     "ports: [{port: 5432, targetPort: 5432, appProtocol: postgres}]}\n---\n" POD_WEB,
     false, NULL,
     "[{port: 5432, tags: {app: web, pod-template-hash: 7f9c, k8s.kuma.io/namespace: shop, "
     "k8s.kuma.io/service-name: db, k8s.kuma.io/service-port: '5432', kuma.io/service: "
     "db_shop_svc_5432, kuma.io/zone: default, kuma.io/protocol: kafka, kuma.io/instance: "
     "web-7f9c-abcde}}]",
     NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL, "", NULL},
    {"Services Kuma does not count: serviceless",
     "pod_controller.go findMatchingServices (Ignored, selector); inbound_converter.go "
     "(ExternalName, non-TCP)",
     SVC_WEB(
         ", annotations: {kuma.io/ignore: 'true'}",
         "") "kind: Service\nmetadata: {name: other, namespace: shop}\nspec: {selector: {app: "
             "other}, "
             "ports: [{port: 80}]}\n---\n"
             "kind: Service\nmetadata: {name: manual, namespace: shop}\nspec: {ports: [{port: "
             "80}]}\n---\n"
             "kind: Service\nmetadata: {name: ext, namespace: shop}\nspec: {type: ExternalName, "
             "externalName: example.com, selector: {app: web}, ports: [{port: 80}]}\n---\n"
             "kind: Service\nmetadata: {name: udp, namespace: shop}\nspec: {selector: {app: web}, "
             "ports: [{port: 53, protocol: UDP}]}\n---\n"
             "kind: Service\nmetadata: {name: web, namespace: elsewhere}\nspec: {selector: {app: "
             "web}, "
             "ports: [{port: 80}]}\n---\n" RS_WEB POD_WEB,
     false, NULL, SERVICELESS_WEB, NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL, "", "web"},
    {"kuma.io/ignore with another value still counts", "util.go Ignored (GetEnabled)",
     SVC_WEB(", annotations: {kuma.io/ignore: 'no'}", "") POD_WEB, false, NULL, INBOUND_WEB_80,
     NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL, "", NULL},
    {"zone-proxy Services only: no inbound at all", "pod_converter.go dataplaneFor",
     "kind: Service\nmetadata: {name: zi, namespace: shop, labels: {k8s.kuma.io/zone-proxy-type: "
     "ingress}}\nspec: {selector: {app: web}, ports: [{port: 10001}]}\n---\n" POD_WEB,
     false, NULL, "[]", NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL, "", NULL},
    {"zone-proxy and regular Services: the regular ones", "pod_converter.go dataplaneFor",
     "kind: Service\nmetadata: {name: zi, namespace: shop, labels: {k8s.kuma.io/zone-proxy-type: "
     "ingress}}\nspec: {selector: {app: web}, ports: [{port: 10001}]}\n---\n" SVC_WEB("", "")
         POD_WEB,
     false, NULL, INBOUND_WEB_80, NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL, "", NULL},
    {"delegated gateway: gateway tags, no inbounds, no non-tcp protocol tag",
     "pod_converter.go GatewayByServiceFor; InboundTagsForService (gateway enabled); "
     "matchers resolveDataplaneProxyType; GetProxyType (sidecar label)",
     SVC_WEB("", "") "kind: Pod\nmetadata: {name: gw-1, namespace: shop, labels: {app: web}, "
                     "annotations: {kuma.io/gateway: enabled}}\n"
                     "spec: {containers: [{name: app}]}\n",
     false, NULL, "[]",
     "{app: web, k8s.kuma.io/namespace: shop, k8s.kuma.io/service-name: web, "
     "k8s.kuma.io/service-port: '80', kuma.io/service: web_shop_svc_80, kuma.io/zone: default, "
     "kuma.io/protocol: tcp}",
     PROXY_GATEWAY, GATEWAY_DELEGATED, "{kuma.io/proxy-type: sidecar}", "", NULL},
    {"delegated gateway with an http port: no protocol tag",
     "InboundTagsForService (provided gateway only supports tcp)",
     "kind: Service\nmetadata: {name: web, namespace: shop}\nspec: {selector: {app: web}, "
     "ports: [{port: 80, targetPort: 8080, appProtocol: http}]}\n---\n"
     "kind: Pod\nmetadata: {name: gw-1, namespace: shop, labels: {app: web}, annotations: "
     "{kuma.io/gateway: enabled}}\n",
     false, NULL, "[]",
     "{app: web, k8s.kuma.io/namespace: shop, k8s.kuma.io/service-name: web, "
     "k8s.kuma.io/service-port: '80', kuma.io/service: web_shop_svc_80, kuma.io/zone: default}",
     PROXY_GATEWAY, GATEWAY_DELEGATED, NULL, "", NULL},
    {"provided gateway of a Deployment", "pod_converter.go GatewayByDeploymentFor",
     "kind: ReplicaSet\nmetadata: {name: edge-5d, namespace: shop, ownerReferences: [{kind: "
     "Deployment, name: edge}]}\n---\nkind: Pod\nmetadata: {name: edge-5d-x, namespace: shop, "
     "annotations: {kuma.io/gateway: provided}, ownerReferences: [{kind: ReplicaSet, name: "
     "edge-5d}]}\n",
     false, NULL, "[]", "{kuma.io/service-name: edge_shop_svc}", PROXY_GATEWAY, GATEWAY_DELEGATED,
     NULL, "", "edge"},
    {"provided gateway, ReplicaSet not known: assumed from the hash, with a warning",
     "pod_converter.go GatewayByDeploymentFor (Name() fails in Kuma)",
     "kind: Pod\nmetadata: {name: edge-5d-x, namespace: shop, labels: {pod-template-hash: 5d}, "
     "annotations: {kuma.io/gateway: provided}, ownerReferences: [{kind: ReplicaSet, name: "
     "edge-5d}]}\n",
     false, NULL, "[]", "{kuma.io/service-name: edge_shop_svc}", PROXY_GATEWAY, GATEWAY_DELEGATED,
     NULL, "assumed its Deployment is named edge", "edge"},
    {"builtin gateway: tags from kuma.io/tags plus the zone, proxy-type gateway, no workload",
     "gateway_converter.go createOrUpdateBuiltinGatewayDataplane/BuiltinGatewayDataplane",
     "kind: Pod\nmetadata: {name: gw-x, namespace: shop, labels: {app: gw}, annotations: "
     "{kuma.io/gateway: builtin, kuma.io/tags: '{\"kuma.io/service\":\"edge-gw\"}'}}\n"
     "spec: {serviceAccountName: gw-sa}\n",
     false, NULL, "[]", "{kuma.io/service: edge-gw, kuma.io/zone: default}", PROXY_GATEWAY,
     GATEWAY_BUILTIN,
     "{kuma.io/proxy-type: gateway, k8s.kuma.io/service-account: gw-sa, kuma.io/workload: '~'}", "",
     NULL},
    {"builtin gateway without kuma.io/tags", "gateway_converter.go (an event, no Dataplane)",
     "kind: Pod\nmetadata: {name: gw-x, namespace: shop, annotations: {kuma.io/gateway: "
     "builtin}}\n",
     false, NULL, "[]", "{kuma.io/zone: default}", PROXY_GATEWAY, GATEWAY_BUILTIN, NULL,
     "Missing kuma.io/tags annotation on Pod serving a builtin Gateway", NULL},
    {"invalid gateway type: viewed as a sidecar", "pod_converter.go dataplaneFor (an error)",
     SVC_WEB("", "") "kind: Pod\nmetadata: {name: web-1, namespace: shop, labels: {app: web}, "
                     "annotations: {kuma.io/gateway: bogus}}\n"
                     "spec: {containers: [{ports: [{containerPort: 8080, name: http}]}]}\n",
     false, NULL,
     "[{port: 8080, name: http, tags: {app: web, k8s.kuma.io/namespace: shop, "
     "k8s.kuma.io/service-name: web, k8s.kuma.io/service-port: '80', kuma.io/service: "
     "web_shop_svc_80, kuma.io/zone: default, kuma.io/protocol: tcp}}]",
     NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL, "invalid delegated gateway type 'bogus'", NULL},
    {"ingress pod: Kuma makes a ZoneIngress", "pod_controller.go Reconcile",
     "kind: Pod\nmetadata: {name: zi-1, namespace: kuma-system, annotations: {kuma.io/ingress: "
     "enabled}}\n",
     false, NULL, NULL, NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL, "Kuma makes a ZoneIngress", NULL},
    {"labels: what the pod sets first stays (setIfNotExist), the rest is Kuma's",
     "labels/compute.go Compute; store.go GetLabels",
     "kind: Pod\nmetadata: {name: p1, namespace: shop, labels: {kuma.io/zone: other, "
     "kuma.io/mesh: '', kuma.io/display-name: fake, k8s.kuma.io/service-account: fake, "
     "kuma.io/proxy-type: gateway, kuma.io/listener-zoneingress: enabled, kuma.io/env: "
     "universal}}\nspec: {serviceAccountName: real}\n",
     false, NULL, NULL, NULL, PROXY_SIDECAR, GATEWAY_NONE,
     "{kuma.io/zone: other, kuma.io/mesh: '', kuma.io/display-name: p1, "
     "k8s.kuma.io/service-account: real, kuma.io/workload: real, kuma.io/proxy-type: sidecar, "
     "kuma.io/listener-zoneingress: '~', kuma.io/env: universal, kuma.io/origin: zone, "
     "k8s.kuma.io/namespace: shop}",
     NULL, NULL},
    {"labels: a pod labelled origin global is not locally originated",
     "labels/compute.go Compute; model.IsLocallyOriginated",
     "kind: Pod\nmetadata: {name: p1, namespace: shop, labels: {kuma.io/origin: global}}\n", false,
     NULL, NULL, NULL, PROXY_SIDECAR, GATEWAY_NONE,
     "{kuma.io/origin: global, kuma.io/zone: '~', kuma.io/env: '~', k8s.kuma.io/namespace: "
     "'~', kuma.io/mesh: default}",
     NULL, NULL},
    {"service account: the deprecated field", "k8s v1 conversion of serviceAccount",
     "kind: Pod\nmetadata: {name: p1, namespace: shop}\nspec: {serviceAccount: legacy}\n", false,
     NULL, NULL, NULL, PROXY_SIDECAR, GATEWAY_NONE,
     "{k8s.kuma.io/service-account: legacy, kuma.io/workload: legacy}", NULL, NULL},
    {"workloadLabels: the first configured pod label", "pod_converter.go computeWorkloadName",
     "kind: Pod\nmetadata: {name: p1, namespace: shop, labels: {app: redis, "
     "app.kubernetes.io/name: ''}}\nspec: {serviceAccountName: sa}\n",
     false, app_first, NULL, NULL, PROXY_SIDECAR, GATEWAY_NONE,
     "{kuma.io/workload: redis, k8s.kuma.io/service-account: sa}", NULL, NULL},
    {"mesh from the Namespace label", "util.go MeshOfByLabelOrAnnotation",
     "kind: Namespace\nmetadata: {name: shop, labels: {kuma.io/mesh: payments}}\n---\n"
     "kind: Pod\nmetadata: {name: p1, namespace: shop}\n",
     false, NULL, NULL, NULL, PROXY_SIDECAR, GATEWAY_NONE, "{kuma.io/mesh: payments}", NULL, NULL},
    {"a Deployment's pod template: the Deployment's name",
     "serviceless_name_extractor.go (pods of a Deployment: ReplicaSet -> Deployment)",
     "kind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {template: {metadata: "
     "{labels: {app: web}}, spec: {containers: [{name: app}]}}}\n",
     true, NULL,
     "[{port: 49151, serviceless: true, tags: {app: web, k8s.kuma.io/namespace: shop, "
     "kuma.io/service: web_shop_svc, kuma.io/zone: default, kuma.io/protocol: tcp, "
     "kuma.io/instance: ''}}]",
     NULL, PROXY_SIDECAR, GATEWAY_NONE, "{kuma.io/display-name: ''}", "", "web"},
    {"a CronJob's pod template: the CronJob's name", "serviceless_name_extractor.go",
     "kind: CronJob\nmetadata: {name: nightly, namespace: shop}\nspec: {jobTemplate: {spec: "
     "{template: {spec: {containers: [{name: app}]}}}}}\n",
     true, NULL, NULL, NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL, "", "nightly"},
    {"a ReplicaSet template owned by a Rollout: each pod's own name",
     "serviceless_name_extractor.go",
     "kind: ReplicaSet\nmetadata: {name: r-1, namespace: shop, ownerReferences: [{kind: "
     "Rollout, name: r}]}\nspec: {template: {spec: {containers: [{name: app}]}}}\n",
     true, NULL, NULL, NULL, PROXY_SIDECAR, GATEWAY_NONE, NULL,
     "ReplicaSet r-1 is owned by neither a Deployment nor a CronJob", ""},
    {"a bare pod at admission without a name", "serviceless_name_extractor.go (pod.Name)",
     "kind: Pod\nmetadata: {generateName: web-, namespace: shop}\n", false, NULL, NULL, NULL,
     PROXY_SIDECAR, GATEWAY_NONE, NULL, "the pod has no name yet", ""},
};

/* The pod (template) of a case, borrowed from docs. */
static const json_t *case_pod(const json_t *docs, bool template_owner, const json_t **owner)
{
    const json_t *last = json_array_get(docs, json_array_size(docs) - 1);
    *owner = NULL;
    if (!template_owner)
        return last;
    *owner = last;
    const json_t *spec = json_object_get(last, "spec");
    const json_t *jt = json_object_get(spec, "jobTemplate");
    if (jt)
        spec = json_object_get(jt, "spec");
    return json_object_get(spec, "template");
}

static void check_labels(const char *name, const char *subset_yaml, const json_t *labels)
{
    json_t *subset = tu_yaml(subset_yaml);
    const char *key;
    json_t *v;
    json_object_foreach(subset, key, v)
    {
        const char *want = json_string_value(v);
        const char *got = json_string_value(json_object_get(labels, key));
        if (!strcmp(want, "~") ? got != NULL : (!got || strcmp(want, got))) {
            char *all = tu_dump(labels);
            fail_msg("%s: label %s: want %s, got %s (labels %s)", name, key, want,
                     got ? got : "(absent)", all);
            free(all);
        }
    }
    json_decref(subset);
}

static void test_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rule_cases / sizeof *rule_cases; i++) {
        const struct rule_case *c = &rule_cases[i];
        json_t *docs = yaml_docs(c->docs);
        const json_t *owner = NULL;
        const json_t *pod = case_pod(docs, c->template_owner, &owner);
        json_t *view_docs = json_array();
        for (size_t d = 0; d + 1 < json_array_size(docs); d++)
            json_array_append(view_docs, json_array_get(docs, d));
        struct policy_view *view = tu_view(view_docs, NULL, c->name);
        const char *ns = json_string_value(
            json_object_get(json_object_get(owner ? owner : pod, "metadata"), "namespace"));
        struct dataplane_options opt = {.workload_labels = c->workload_labels,
                                        .template_owner = owner};
        struct dataplane dp;
        dataplane_from_pod(pod, ns, view, &opt, &dp);
        if (c->inbounds) {
            json_t *want = tu_yaml(c->inbounds);
            expect_json("inbounds", c->name, want, dp.inbounds);
            json_decref(want);
        }
        if (c->gateway_tags) {
            json_t *want = tu_yaml(c->gateway_tags);
            expect_json("gateway tags", c->name, want,
                        dp.gateway_tags ? dp.gateway_tags : json_null());
            json_decref(want);
        } else if (dp.gateway_tags) {
            fail_msg("%s: unexpected gateway tags", c->name);
        }
        if ((int)dp.proxy_type != c->proxy_type || (int)dp.gateway != c->gateway)
            fail_msg("%s: proxy type %d gateway %d", c->name, dp.proxy_type, dp.gateway);
        if (c->labels)
            check_labels(c->name, c->labels, dp.labels);
        if (c->warning) {
            char *all = warnings_text(&dp);
            if (!*c->warning ? dp.warnings.len != 0 : !has_warning(&dp, c->warning))
                fail_msg("%s: want warning \"%s\", got \"%s\"", c->name, c->warning, all);
            free(all);
        }
        if (c->workload && strcmp(c->workload, dp.workload))
            fail_msg("%s: workload %s, want %s", c->name, dp.workload, c->workload);
        dataplane_cleanup(&dp);
        view_unref(view);
        json_decref(view_docs);
        json_decref(docs);
    }
}

/* Zone options: a named zone, and no view at all (empty parts, "default" everywhere). */
static void test_zone_and_defaults(void **state)
{
    (void)state;
    json_t *pod = tu_yaml("metadata: {name: p1, namespace: shop, labels: {app: a}}");
    struct dataplane_options opt = {.zone = "eu-west"};
    struct dataplane dp;
    dataplane_from_pod(pod, NULL, NULL, &opt, &dp);
    check_labels("zone", "{kuma.io/zone: eu-west, kuma.io/origin: zone, kuma.io/env: kubernetes}",
                 dp.labels);
    const json_t *tags = json_object_get(json_array_get(dp.inbounds, 0), "tags");
    assert_string_equal(json_string_value(json_object_get(tags, "kuma.io/zone")), "eu-west");
    assert_string_equal(json_string_value(json_object_get(tags, "kuma.io/service")), "p1_shop_svc");
    dataplane_cleanup(&dp);

    /* Not a pod at all, no view: an empty dataplane in "default" with a serviceless inbound. */
    json_t *junk = json_string("junk");
    dataplane_from_pod(junk, "", NULL, NULL, &dp);
    assert_string_equal(dp.namespace, "default");
    assert_string_equal(dp.mesh, "default");
    assert_int_equal(json_array_size(dp.inbounds), 1);
    dataplane_cleanup(&dp);
    dataplane_cleanup(&dp); /* idempotent */
    struct dataplane zero;
    memset(&zero, 0, sizeof zero);
    dataplane_cleanup(&zero);
    json_decref(junk);
    json_decref(pod);
}

/* ---- 4. dataplane_from_kuma and dataplane_diff ------------------------------------------- */

static void test_from_kuma(void **state)
{
    (void)state;
    struct dataplane dp;
    /* Not an object; another kind. */
    json_t *s = json_string("x");
    assert_int_equal(dataplane_from_kuma(s, &dp), MM_ERR_TYPE);
    assert_int_equal(json_array_size(dp.inbounds), 0);
    dataplane_cleanup(&dp);
    json_decref(s);
    json_t *pod = tu_yaml("{kind: Pod, metadata: {name: p}}");
    assert_int_equal(dataplane_from_kuma(pod, &dp), MM_ERR_TYPE);
    dataplane_cleanup(&dp);
    json_decref(pod);

    /* The store adapter's labels; mesh from the top-level field; odd shapes skipped. */
    json_t *obj = tu_yaml(
        "apiVersion: kuma.io/v1alpha1\nkind: Dataplane\nmesh: payments\n"
        "metadata:\n  name: web-1\n  namespace: shop\n  labels: {kuma.io/mesh: other, app: web, "
        "kuma.io/display-name: copied, n: 1}\n"
        "  annotations: {k8s.kuma.io/service-account: sa, kuma.io/workload: wl}\n"
        "spec:\n  networking:\n    inbound:\n    - {port: 49151, tags: {kuma.io/service: "
        "web_shop_svc, n: 2}}\n    - {port: 8080, name: http, tags: {kuma.io/service: x}}\n"
        "    - {tags: 7}\n");
    assert_int_equal(dataplane_from_kuma(obj, &dp), MM_OK);
    assert_string_equal(dp.mesh, "payments");
    assert_string_equal(dp.name, "web-1");
    assert_string_equal(dp.namespace, "shop");
    check_labels("from_kuma",
                 "{kuma.io/display-name: web-1, app: web, k8s.kuma.io/service-account: sa, "
                 "kuma.io/workload: wl, kuma.io/mesh: other, n: '~'}",
                 dp.labels);
    json_t *want = tu_yaml("[{port: 49151, serviceless: true, tags: {kuma.io/service: "
                           "web_shop_svc}}, {port: 8080, name: http, tags: {kuma.io/service: "
                           "x}}, {port: 0, tags: {}}]");
    expect_json("inbounds", "from_kuma", want, dp.inbounds);
    json_decref(want);
    assert_int_equal(dp.proxy_type, PROXY_SIDECAR);
    assert_null(dp.gateway_tags);
    dataplane_cleanup(&dp);
    json_decref(obj);

    /* Annotation display name; mesh from the label; builtin and delegated gateways. */
    obj = tu_yaml("{metadata: {name: gw, labels: {kuma.io/mesh: m2}, annotations: "
                  "{kuma.io/display-name: shown}}, spec: {networking: {gateway: {type: BUILTIN, "
                  "tags: {kuma.io/service: edge}}}}}");
    assert_int_equal(dataplane_from_kuma(obj, &dp), MM_OK);
    assert_string_equal(dp.mesh, "m2");
    check_labels("from_kuma gw", "{kuma.io/display-name: shown}", dp.labels);
    assert_int_equal(dp.gateway, GATEWAY_BUILTIN);
    assert_int_equal(dp.proxy_type, PROXY_GATEWAY);
    dataplane_cleanup(&dp);
    json_decref(obj);
    obj = tu_yaml("{spec: {networking: {gateway: {tags: {a: b}}}}}");
    assert_int_equal(dataplane_from_kuma(obj, &dp), MM_OK);
    assert_int_equal(dp.gateway, GATEWAY_DELEGATED);
    assert_string_equal(dp.mesh, "default");
    dataplane_cleanup(&dp);
    json_decref(obj);
}

static void test_diff(void **state)
{
    (void)state;
    json_t *pod = tu_yaml("metadata: {name: p1, namespace: shop, labels: {app: a}}\n"
                          "spec: {serviceAccountName: sa}");
    struct dataplane a, b;
    dataplane_from_pod(pod, NULL, NULL, NULL, &a);
    dataplane_from_pod(pod, NULL, NULL, NULL, &b);
    assert_null(dataplane_diff(&a, &b, "A", "B", NULL));

    json_object_set_new(b.labels, "kuma.io/workload", json_string("other"));
    json_object_set_new(b.labels, "extra", json_string("x"));
    json_t *tags = json_object_get(json_array_get(b.inbounds, 0), "tags");
    json_object_set_new(tags, "topology.kubernetes.io/zone", json_string("eu-1"));
    char *d = dataplane_diff(&a, &b, "the derived view", "Kuma's Dataplane", NULL);
    assert_non_null(d);
    assert_non_null(strstr(d, "label extra: \"x\" only in Kuma's Dataplane"));
    assert_non_null(
        strstr(d, "label kuma.io/workload: \"sa\" in the derived view, \"other\" in Kuma's "
                  "Dataplane"));
    assert_non_null(strstr(d, "only in the derived view"));
    assert_non_null(strstr(d, "topology.kubernetes.io/zone"));
    free(d);

    /* Node labels ignored, and the label differences ignored too: equal. */
    const char *ignore[] = {"topology.kubernetes.io/zone", "kuma.io/workload", "extra", NULL};
    assert_null(dataplane_diff(&a, &b, "A", "B", ignore));
    assert_null(dataplane_diff(&a, &a, NULL, NULL, dataplane_node_labels_default()));

    /* Mesh, proxy type, gateway tags, an extra inbound. */
    free(b.mesh);
    b.mesh = xstrdup("m2");
    b.proxy_type = PROXY_GATEWAY;
    b.gateway_tags = json_pack("{s:s}", "kuma.io/service", "g");
    json_array_append_new(b.inbounds, json_deep_copy(json_array_get(a.inbounds, 0)));
    d = dataplane_diff(&a, &b, "A", "B", ignore);
    assert_non_null(d);
    assert_non_null(strstr(d, "mesh: \"default\" in A, \"m2\" in B"));
    assert_non_null(strstr(d, "proxy type: Sidecar in A, Gateway in B"));
    assert_non_null(strstr(d, "gateway tags only in B"));
    assert_non_null(strstr(d, "only in B"));
    free(d);
    a.gateway_tags = json_pack("{s:s}", "kuma.io/service", "h");
    d = dataplane_diff(&a, &b, "A", "B", ignore);
    assert_non_null(strstr(d, "gateway tag kuma.io/service: \"h\" in A, \"g\" in B"));
    free(d);

    dataplane_cleanup(&a);
    dataplane_cleanup(&b);
    json_decref(pod);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kuma_converter_fixtures),
        cmocka_unit_test(test_kuma_serviceless_names),
        cmocka_unit_test(test_kuma_inbound_tags_for_service),
        cmocka_unit_test(test_kuma_protocol_tag_for),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_zone_and_defaults),
        cmocka_unit_test(test_from_kuma),
        cmocka_unit_test(test_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
