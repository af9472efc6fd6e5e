/*
 * Compact pods (src/operator/podstore.c): what a packed pod keeps (tables of
 * pods and accessors), the annotation list, bad input, the size of a
 * realistic pod, and the equivalence that makes compact pods safe: for
 * every pod fixture of the repository (the objects of
 * tests/data/admission/<case>.json, podpatch/<case>/pod.json,
 * seeds/<case>/pod.yaml, match/<case>/pod.yaml and examples/<file>.yaml;
 * workload templates made into pods), engine_evaluate on the rebuilt pod
 * gives the same dataplane view and the same match result (policies,
 * effective config, origins, warnings, hash) as on the full pod, against the
 * fixture's own policies and against a view with Services selecting the pod
 * and the ReplicaSets/Jobs that own it.
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

#include "core/engine.h"
#include "core/view.h"
#include "operator/podstore.h"
#include "util/xalloc.h"

/* ---- packing: tables ---------------------------------------------------------------- */

struct pack_case {
    const char *name;
    const char *pod; /* YAML */
    enum mm_status status;
    const char *want; /* JSON: the rebuilt pod (podstore_to_json), when status is MM_OK */
};

static const struct pack_case pack_cases[] = {
    {"minimal", "metadata: {name: a}", MM_OK,
     "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\"},"
     "\"spec\":{\"containers\":[]},\"status\":{}}"},
    {"identity and status",
     "metadata: {name: a, namespace: ns, uid: u-1, resourceVersion: '42',"
     " creationTimestamp: '2025-01-02T03:04:05Z', deletionTimestamp: '2025-01-02T04:00:00Z',"
     " generateName: a-, managedFields: [{manager: kubelet}]}\n"
     "spec: {serviceAccountName: sa, nodeName: n1}\n"
     "status: {podIP: 10.0.0.1, phase: Running, hostIP: 1.2.3.4,"
     " conditions: [{type: PodScheduled, status: 'True'}, {type: Ready, status: 'True'}]}",
     MM_OK,
     "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\","
     "\"uid\":\"u-1\",\"resourceVersion\":\"42\",\"creationTimestamp\":\"2025-01-02T03:04:05Z\","
     "\"deletionTimestamp\":\"2025-01-02T04:00:00Z\"},"
     "\"spec\":{\"serviceAccountName\":\"sa\",\"containers\":[]},"
     "\"status\":{\"podIP\":\"10.0.0.1\",\"phase\":\"Running\","
     "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}"},
    {"not ready", "metadata: {name: a}\nstatus: {conditions: [{type: Ready, status: Unknown}]}",
     MM_OK,
     "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\"},"
     "\"spec\":{\"containers\":[]},\"status\":{\"conditions\":[{\"type\":\"Ready\","
     "\"status\":\"False\"}]}}"},
    {"deprecated serviceAccount", "metadata: {name: a}\nspec: {serviceAccount: old}", MM_OK,
     "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\"},"
     "\"spec\":{\"serviceAccountName\":\"old\",\"containers\":[]},\"status\":{}}"},
    {"labels kept, annotations filtered, non-strings dropped",
     "metadata:\n"
     "  name: a\n"
     "  labels: {app: web, kuma.io/sidecar-injection: enabled, n: 1}\n"
     "  annotations:\n"
     "    kuma.io/mesh: m\n"
     "    kuma.io/gateway: enabled\n"
     "    kuma.io/tags: '{\"a\":\"b\"}'\n"
     "    kuma.io/envoy-admin-port: '9901'\n"
     "    prometheus.metrics.kuma.io/port: '1234'\n"
     "    prometheus.metrics.kuma.io/aggregate-app-port: '8080'\n"
     "    meshmetric.kuma.io/config-hash: sha256:0123456789abcdef\n"
     "    meshmetric.kuma.io/config: summary\n"
     "    prometheus.io/scrape: 'true'\n"
     "    kubectl.kubernetes.io/last-applied-configuration: '{}'\n"
     "    traffic.kuma.io/transparent-proxy-config: 'big: yaml'\n"
     "    kuma.io/sidecar-uid: '5678'\n"
     "    kuma.io/ignore: 7\n",
     MM_OK,
     "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\","
     "\"labels\":{\"app\":\"web\",\"kuma.io/sidecar-injection\":\"enabled\"},"
     "\"annotations\":{\"kuma.io/mesh\":\"m\",\"kuma.io/gateway\":\"enabled\","
     "\"kuma.io/tags\":\"{\\\"a\\\":\\\"b\\\"}\",\"kuma.io/envoy-admin-port\":\"9901\","
     "\"prometheus.metrics.kuma.io/port\":\"1234\","
     "\"prometheus.metrics.kuma.io/aggregate-app-port\":\"8080\","
     "\"meshmetric.kuma.io/config-hash\":\"sha256:0123456789abcdef\","
     "\"meshmetric.kuma.io/config\":\"summary\"}},"
     "\"spec\":{\"containers\":[]},\"status\":{}}"},
    {"owners",
     "metadata:\n  name: a\n  ownerReferences:\n"
     "  - {apiVersion: apps/v1, kind: ReplicaSet, name: web-7d9f, uid: x, controller: true,"
     " blockOwnerDeletion: true}\n"
     "  - {kind: Other, name: o}\n  - 5\n",
     MM_OK,
     "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\",\"ownerReferences\":["
     "{\"kind\":\"ReplicaSet\",\"name\":\"web-7d9f\",\"controller\":true},"
     "{\"kind\":\"Other\",\"name\":\"o\"}]},\"spec\":{\"containers\":[]},\"status\":{}}"},
    {"containers, init containers and ports",
     "metadata: {name: a}\n"
     "spec:\n"
     "  initContainers:\n"
     "  - {name: kuma-sidecar, image: x, ports: [{containerPort: 9901, name: admin}]}\n"
     "  containers:\n"
     "  - name: app\n"
     "    image: web\n"
     "    env: [{name: A, value: b}]\n"
     "    ports: [{containerPort: 8080, name: http, protocol: TCP}, {containerPort: 53,"
     " protocol: UDP}, {name: noport}, 7]\n"
     "  - {image: unnamed}\n",
     MM_OK,
     "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\"},"
     "\"spec\":{\"containers\":[{\"name\":\"app\",\"ports\":[{\"name\":\"http\","
     "\"containerPort\":8080,\"protocol\":\"TCP\"},{\"containerPort\":53,\"protocol\":\"UDP\"},"
     "{\"name\":\"noport\"}]},{}],"
     "\"initContainers\":[{\"name\":\"kuma-sidecar\",\"ports\":[{\"name\":\"admin\","
     "\"containerPort\":9901}]}]},\"status\":{}}"},
    {"not an object", "[1, 2]", MM_ERR_TYPE, NULL},
    {"no metadata", "spec: {}", MM_ERR_TYPE, NULL},
    {"empty name", "metadata: {name: ''}", MM_ERR_TYPE, NULL},
    {"name not a string", "metadata: {name: 5}", MM_ERR_TYPE, NULL},
};

static void test_pack_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof pack_cases / sizeof *pack_cases; i++) {
        const struct pack_case *c = &pack_cases[i];
        json_t *pod = tu_yaml(c->pod);
        struct podstore_pod *p = NULL;
        struct mm_error err;
        mm_error_clear(&err);
        enum mm_status st = podstore_pack(pod, &p, &err);
        if (st != c->status)
            fail_msg("%s: status %s, want %s (%s)", c->name, mm_status_name(st),
                     mm_status_name(c->status), err.message);
        if (st == MM_OK) {
            json_t *got = podstore_to_json(p);
            json_error_t jerr;
            json_t *want = json_loads(c->want, 0, &jerr);
            if (!want)
                fail_msg("%s: bad want: %s", c->name, jerr.text);
            if (!json_equal(want, got)) {
                print_message("%s: rebuilt pod differs (want -, got +)\n", c->name);
                tu_print_diff("", want, got);
                fail();
            }
            /* packing the rebuilt pod again changes nothing */
            struct podstore_pod *again = NULL;
            assert_int_equal(podstore_pack(got, &again, &err), MM_OK);
            json_t *got2 = podstore_to_json(again);
            assert_true(json_equal(got, got2));
            assert_int_equal(podstore_size(again), podstore_size(p));
            json_decref(got2);
            podstore_free(again);
            json_decref(want);
            json_decref(got);
        } else {
            assert_null(p);
            assert_true(err.message[0] != '\0');
        }
        podstore_free(p);
        json_decref(pod);
    }
    podstore_free(NULL);
}

static void test_accessors(void **state)
{
    (void)state;
    json_t *pod = tu_yaml("metadata:\n"
                          "  name: web-1\n"
                          "  namespace: shop\n"
                          "  uid: u\n"
                          "  resourceVersion: '7'\n"
                          "  deletionTimestamp: '2025-01-01T00:00:00Z'\n"
                          "  labels: {app: web, team: a}\n"
                          "  annotations: {kuma.io/mesh: m, other: x}\n"
                          "  ownerReferences: [{kind: Job, name: j, controller: true}]\n"
                          "spec:\n"
                          "  serviceAccountName: sa\n"
                          "  containers:\n"
                          "  - {name: app, ports: [{containerPort: 80}, {containerPort: 81,"
                          " name: m, protocol: SCTP}]}\n"
                          "  - {name: kuma-sidecar}\n"
                          "status: {podIP: 10.1.2.3, phase: Pending}\n");
    struct podstore_pod *p = NULL;
    assert_int_equal(podstore_pack(pod, &p, NULL), MM_OK);
    assert_string_equal(podstore_name(p), "web-1");
    assert_string_equal(podstore_namespace(p), "shop");
    assert_string_equal(podstore_uid(p), "u");
    assert_string_equal(podstore_resource_version(p), "7");
    assert_string_equal(podstore_creation_timestamp(p), "");
    assert_true(podstore_deleting(p));
    assert_false(podstore_ready(p));
    assert_string_equal(podstore_service_account(p), "sa");
    assert_string_equal(podstore_pod_ip(p), "10.1.2.3");
    assert_string_equal(podstore_phase(p), "Pending");
    assert_int_equal(podstore_label_count(p), 2);
    assert_string_equal(podstore_label(p, "team"), "a");
    assert_null(podstore_label(p, "nope"));
    const char *k, *v;
    podstore_label_at(p, 0, &k, &v);
    assert_string_equal(k, "app");
    assert_string_equal(v, "web");
    assert_int_equal(podstore_annotation_count(p), 1);
    assert_string_equal(podstore_annotation(p, "kuma.io/mesh"), "m");
    assert_null(podstore_annotation(p, "other"));
    podstore_annotation_at(p, 0, &k, &v);
    assert_string_equal(k, "kuma.io/mesh");
    assert_int_equal(podstore_owner_count(p), 1);
    struct podstore_owner o;
    podstore_owner_at(p, 0, &o);
    assert_string_equal(o.kind, "Job");
    assert_string_equal(o.name, "j");
    assert_true(o.controller);
    assert_int_equal(podstore_container_count(p), 2);
    assert_int_equal(podstore_sidecar(p), 1);
    struct podstore_container c;
    podstore_container_at(p, 0, &c);
    assert_string_equal(c.name, "app");
    assert_false(c.init);
    assert_int_equal(c.first_port, 0);
    assert_int_equal(c.n_ports, 2);
    assert_int_equal(podstore_port_count(p), 2);
    struct podstore_port pt;
    podstore_port_at(p, 1, &pt);
    assert_string_equal(pt.name, "m");
    assert_string_equal(pt.protocol, "SCTP");
    assert_true(pt.has_container_port);
    assert_int_equal(pt.container_port, 81);
    podstore_port_at(p, 0, &pt);
    assert_string_equal(pt.name, "");
    assert_string_equal(pt.protocol, "");
    podstore_free(p);
    json_decref(pod);
}

static const struct {
    const char *pod;
    bool meshed;
} meshed_cases[] = {
    {"spec: {containers: [{name: app}, {name: kuma-sidecar}]}", true},
    {"spec: {initContainers: [{name: kuma-sidecar}], containers: [{name: app}]}", true},
    {"spec: {containers: [{name: app}]}", false},
    {"spec: {containers: [{name: Kuma-Sidecar}]}", false},
    {"spec: {containers: {name: kuma-sidecar}}", false},
    {"metadata: {name: a}", false},
    {"[]", false},
};

static void test_is_meshed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof meshed_cases / sizeof *meshed_cases; i++) {
        json_t *pod = tu_yaml(meshed_cases[i].pod);
        if (podstore_is_meshed(pod) != meshed_cases[i].meshed)
            fail_msg("%s: meshed should be %d", meshed_cases[i].pod, meshed_cases[i].meshed);
        json_decref(pod);
    }
    assert_false(podstore_is_meshed(NULL));
}

static const struct {
    const char *key;
    bool kept;
} kept_cases[] = {
    {"prometheus.metrics.kuma.io/port", true},
    {"prometheus.metrics.kuma.io/aggregate-x-path", true},
    {"prometheus.metrics.kuma.io/tls-secret", true},
    {"kuma.io/mesh", true},
    {"kuma.io/gateway", true},
    {"kuma.io/ingress", true},
    {"kuma.io/egress", true},
    {"kuma.io/tags", true},
    {"kuma.io/sidecar-injection", true},
    {"kuma.io/sidecar-injected", true},
    {"kuma.io/transparent-proxying", true},
    {"kuma.io/envoy-admin-port", true},
    {"meshmetric.kuma.io/config-hash", true},
    {"meshmetric.kuma.io/config", true},
    {"kuma.io/meshx", false},
    {"kuma.io/sidecar-uid", false},
    {"prometheus.io/scrape", false},
    {"prometheus.metrics.kuma.io", false},
    {"kubectl.kubernetes.io/last-applied-configuration", false},
    {"traffic.kuma.io/transparent-proxy-config", false},
    {"", false},
};

static void test_annotation_kept(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof kept_cases / sizeof *kept_cases; i++)
        if (podstore_annotation_kept(kept_cases[i].key) != kept_cases[i].kept)
            fail_msg("%s: kept should be %d", kept_cases[i].key, kept_cases[i].kept);
    assert_false(podstore_annotation_kept(NULL));
}

/* The reference pod of the benchmarks packs into well under 2 KB. */
static void test_size_of_reference_pod(void **state)
{
    (void)state;
    char *dir = tu_testdata();
    char *path = xasprintf("%s/admission/kuma-pod.json", dir);
    json_error_t jerr;
    json_t *review = json_load_file(path, 0, &jerr);
    if (!review)
        fail_msg("%s: %s", path, jerr.text);
    json_t *pod = json_deep_copy(json_object_get(json_object_get(review, "request"), "object"));
    json_object_set_new(json_object_get(pod, "metadata"), "name",
                        json_string("checkout-api-7d9f8c6b5d-x2x4z"));
    struct podstore_pod *p = NULL;
    assert_int_equal(podstore_pack(pod, &p, NULL), MM_OK);
    char *text = json_dumps(pod, JSON_COMPACT);
    print_message("    kuma-pod.json: %zu bytes of JSON, packed into %zu bytes\n", strlen(text),
                  podstore_size(p));
    assert_true(podstore_size(p) < 1024);
    free(text);
    podstore_free(p);
    json_decref(pod);
    json_decref(review);
    free(path);
    free(dir);
}

/* ---- equivalence on every pod fixture ------------------------------------------------- */

struct fixture_pod {
    char *what;
    json_t *pod;      /* normalised, full */
    json_t *policies; /* array of documents (may be empty) */
};

struct fixtures {
    struct fixture_pod *items;
    size_t n;
};

/*
 * What the cache receives: a Pod with kind, a name and a namespace (list
 * items may lack kind; cached pods always have a name). A workload becomes
 * the pod its template would give.
 */
static json_t *normalise(const json_t *obj, const char *ns_hint)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    json_t *pod;
    if (kind && strcmp(kind, "Pod")) {
        const json_t *tpl = json_object_get(json_object_get(obj, "spec"), "template");
        if (!strcmp(kind, "CronJob"))
            tpl = json_object_get(
                json_object_get(json_object_get(json_object_get(obj, "spec"), "jobTemplate"),
                                "spec"),
                "template");
        if (!json_is_object(tpl))
            return NULL;
        pod = json_deep_copy(tpl);
        json_t *md = json_object_get(pod, "metadata");
        if (!json_is_object(md)) {
            md = json_object();
            json_object_set_new(pod, "metadata", md);
        }
        const char *wname =
            json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
        json_object_set_new(md, "name", json_sprintf("%s-abcde", wname ? wname : "workload"));
        const char *wns =
            json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));
        if (wns)
            json_object_set_new(md, "namespace", json_string(wns));
    } else {
        pod = json_deep_copy(obj);
    }
    json_object_set_new(pod, "kind", json_string("Pod"));
    json_t *md = json_object_get(pod, "metadata");
    if (!json_is_object(md)) {
        md = json_object();
        json_object_set_new(pod, "metadata", md);
    }
    const char *name = json_string_value(json_object_get(md, "name"));
    if (!name || !*name) {
        const char *gen = json_string_value(json_object_get(md, "generateName"));
        json_object_set_new(md, "name", json_sprintf("%sxyz12", gen ? gen : "pod-"));
    }
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    if (!ns || !*ns)
        json_object_set_new(md, "namespace", json_string(ns_hint ? ns_hint : "default"));
    return pod;
}

static void fixtures_add(struct fixtures *f, const char *what, const json_t *obj,
                         const char *ns_hint, const json_t *policies)
{
    if (!json_is_object(obj))
        return;
    json_t *pod = normalise(obj, ns_hint);
    if (!pod)
        return;
    f->items = xrealloc(f->items, (f->n + 1) * sizeof *f->items);
    f->items[f->n].what = xstrdup(what);
    f->items[f->n].pod = pod;
    f->items[f->n].policies = policies ? json_incref((json_t *)policies) : json_array();
    f->n++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted entries of dir (names not starting with '.'). */
static size_t list_dir(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(e->d_name);
    }
    if (d)
        closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_str);
    *out = names;
    return n;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static void load_case_dirs(struct fixtures *f, const char *base, const char *podfile)
{
    char **names = NULL;
    size_t n = list_dir(base, &names);
    for (size_t i = 0; i < n; i++) {
        char *pod_path = xasprintf("%s/%s/%s", base, names[i], podfile);
        char *pol_path = xasprintf("%s/%s/policies.yaml", base, names[i]);
        json_t *pods = NULL;
        if (ends_with(podfile, ".json")) {
            json_t *one = json_load_file(pod_path, 0, NULL);
            if (one) {
                pods = json_array();
                json_array_append_new(pods, one);
            }
        } else {
            pods = tu_load_yaml(pod_path, false);
        }
        json_t *policies = tu_load_yaml(pol_path, false);
        size_t k;
        json_t *doc;
        json_array_foreach(pods, k, doc)
        {
            fixtures_add(f, pod_path, doc, NULL, policies);
        }
        json_decref(pods);
        json_decref(policies);
        free(pod_path);
        free(pol_path);
    }
    free_names(names, n);
}

static void load_fixtures(struct fixtures *f)
{
    char *data = tu_testdata();
    /* AdmissionReviews: request.object and request.oldObject */
    char *adm = xasprintf("%s/admission", data);
    char **names = NULL;
    size_t n = list_dir(adm, &names);
    for (size_t i = 0; i < n; i++) {
        if (!ends_with(names[i], ".json"))
            continue;
        char *path = xasprintf("%s/%s", adm, names[i]);
        json_t *review = json_load_file(path, 0, NULL);
        const json_t *req = json_object_get(review, "request");
        const char *ns = json_string_value(json_object_get(req, "namespace"));
        fixtures_add(f, path, json_object_get(req, "object"), ns, NULL);
        fixtures_add(f, path, json_object_get(req, "oldObject"), ns, NULL);
        json_decref(review);
        free(path);
    }
    free_names(names, n);
    free(adm);

    char *dir = xasprintf("%s/podpatch", data);
    load_case_dirs(f, dir, "pod.json");
    free(dir);
    dir = xasprintf("%s/seeds", data);
    load_case_dirs(f, dir, "pod.yaml");
    free(dir);
    dir = xasprintf("%s/match", data);
    load_case_dirs(f, dir, "pod.yaml");
    free(dir);

    /* examples/: the pods and workloads, with examples/policies.yaml */
    char *ex = xasprintf("%s/../../examples", data);
    char *pol = xasprintf("%s/policies.yaml", ex);
    json_t *policies = tu_load_yaml(pol, false);
    n = list_dir(ex, &names);
    for (size_t i = 0; i < n; i++) {
        if (!ends_with(names[i], ".yaml") || !strcmp(names[i], "policies.yaml"))
            continue;
        char *path = xasprintf("%s/%s", ex, names[i]);
        json_t *docs = tu_load_yaml(path, true);
        size_t k;
        json_t *doc;
        json_array_foreach(docs, k, doc)
        {
            if (engine_kind_supported(json_string_value(json_object_get(doc, "kind"))))
                fixtures_add(f, path, doc, NULL, policies);
        }
        json_decref(docs);
        free(path);
    }
    free_names(names, n);
    json_decref(policies);
    free(pol);
    free(ex);
    free(data);
}

/*
 * A context for pod: its Namespace, a Service selecting it by all its labels
 * with one port per container port (by name when named, else by number), a
 * headless Service selecting it by one label, and for each ReplicaSet or Job
 * owner an object owned by a Deployment or CronJob.
 */
static void add_context(json_t *docs, const json_t *pod)
{
    const json_t *md = json_object_get(pod, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const json_t *labels = json_object_get(md, "labels");
    json_array_append_new(docs,
                          json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind",
                                    "Namespace", "metadata", "name", ns, "labels", "team", "ctx"));
    if (json_is_object(labels) && json_object_size(labels)) {
        json_t *ports = json_array();
        size_t i, j;
        json_t *c, *p;
        int svc_port = 1000;
        json_array_foreach(json_object_get(json_object_get(pod, "spec"), "containers"), i, c)
        {
            json_array_foreach(json_object_get(c, "ports"), j, p)
            {
                const json_t *name = json_object_get(p, "name");
                const json_t *num = json_object_get(p, "containerPort");
                json_t *sp = json_pack("{s:i}", "port", svc_port++);
                if (json_is_string(name))
                    json_object_set(sp, "targetPort", (json_t *)name);
                else if (json_is_integer(num))
                    json_object_set(sp, "targetPort", (json_t *)num);
                const json_t *proto = json_object_get(p, "protocol");
                if (json_is_string(proto))
                    json_object_set(sp, "protocol", (json_t *)proto);
                json_array_append_new(ports, sp);
            }
        }
        json_array_append_new(ports, json_pack("{s:i, s:s}", "port", 99, "appProtocol", "http"));
        json_array_append_new(docs, json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:O, s:o}}",
                                              "apiVersion", "v1", "kind", "Service", "metadata",
                                              "name", "ctx-all", "namespace", ns, "spec",
                                              "selector", labels, "ports", ports));
        const char *key = json_object_iter_key(json_object_iter((json_t *)labels));
        const json_t *val = json_object_get(labels, key);
        if (json_is_string(val))
            json_array_append_new(
                docs, json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:{s:O}, s:[{s:i}]}}",
                                "apiVersion", "v1", "kind", "Service", "metadata", "name",
                                "ctx-headless", "namespace", ns, "spec", "clusterIP", "None",
                                "selector", key, val, "ports", "port", 8080));
    }
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(md, "ownerReferences"), i, o)
    {
        const char *kind = json_string_value(json_object_get(o, "kind"));
        const char *name = json_string_value(json_object_get(o, "name"));
        if (!kind || !name)
            continue;
        bool rs = !strcmp(kind, "ReplicaSet");
        if (!rs && strcmp(kind, "Job"))
            continue;
        json_array_append_new(docs,
                              json_pack("{s:s, s:s, s:{s:s, s:s, s:[{s:s, s:s}]}}", "apiVersion",
                                        rs ? "apps/v1" : "batch/v1", "kind", kind, "metadata",
                                        "name", name, "namespace", ns, "ownerReferences", "kind",
                                        rs ? "Deployment" : "CronJob", "name", "ctx-owner"));
    }
}

/* A view of docs that keeps rejected policies out instead of failing. */
static struct policy_view *view_of(const json_t *docs, const char *what)
{
    struct view_builder *b = view_builder_create(NULL);
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        struct mm_error err;
        mm_error_clear(&err);
        if (view_builder_add(b, doc, NULL, &err) != MM_OK)
            fail_msg("%s: document %zu: %s: %s", what, i, err.field, err.message);
    }
    return view_builder_finish(b, 1);
}

static json_t *violations_list(const struct violations *v)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < v->len; i++)
        json_array_append_new(arr, json_pack("[s,s]", v->items[i].field, v->items[i].message));
    return arr;
}

/* What the equivalence compares: the dataplane view and the match result. */
static json_t *summary(const struct engine_result *r)
{
    const struct dataplane *dp = &r->dp;
    return json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:i, s:i, s:O?, s:O?, s:O?, s:o, "
                     "s:s, s:O?, s:O?, s:O?, s:O?, s:o, s:b, s:b, s:s?}",
                     "name", dp->name, "namespace", dp->namespace, "mesh", dp->mesh, "workload",
                     dp->workload, "workloadKind", dp->workload_kind, "proxyType",
                     (int)dp->proxy_type, "gateway", (int)dp->gateway, "labels", dp->labels,
                     "inbounds", dp->inbounds, "gatewayTags", dp->gateway_tags, "dpWarnings",
                     violations_list(&dp->warnings), "mode", match_mode_name(r->match.mode),
                     "policies", r->match.policies, "effective", r->match.effective, "origins",
                     r->match.origins, "hash", r->match.effective_hash, "matchWarnings",
                     violations_list(&r->match.warnings), "legacyIgnored", r->match.legacy_ignored,
                     "hasSidecar", r->has_sidecar, "secret", r->secret);
}

static json_t *evaluate(const struct policy_view *view, const json_t *pod)
{
    struct engine_config cfg;
    engine_config_init(&cfg);
    struct engine_result r;
    engine_result_init(&r);
    struct mm_error err;
    mm_error_clear(&err);
    /* The status only concerns the JSON Patch (not comparable: the sidecar's details are gone). */
    enum mm_status st = engine_evaluate(&cfg, view, pod, NULL, &r, &err);
    (void)st;
    json_t *s = summary(&r);
    engine_result_cleanup(&r);
    return s;
}

static void test_equivalence_on_fixtures(void **state)
{
    (void)state;
    struct fixtures f = {0};
    load_fixtures(&f);
    size_t compared = 0, sidecars = 0, inbound_ctx = 0;
    bool failed = false;
    for (size_t i = 0; i < f.n; i++) {
        const struct fixture_pod *fp = &f.items[i];
        struct podstore_pod *p = NULL;
        struct mm_error err;
        mm_error_clear(&err);
        if (podstore_pack(fp->pod, &p, &err) != MM_OK)
            fail_msg("%s: %s", fp->what, err.message);
        json_t *rebuilt = podstore_to_json(p);
        sidecars += podstore_sidecar(p) >= 0;

        json_t *with_ctx = json_copy(fp->policies);
        add_context(with_ctx, fp->pod);
        const json_t *sets[2] = {fp->policies, with_ctx};
        for (size_t v = 0; v < 2; v++) {
            struct policy_view *view = view_of(sets[v], fp->what);
            json_t *a = evaluate(view, fp->pod), *b = evaluate(view, rebuilt);
            if (!json_equal(a, b)) {
                print_message("%s (%s): full and compact pod differ (full -, compact +):\n",
                              fp->what, v ? "with Services and owners" : "fixture policies");
                tu_print_diff("", a, b);
                failed = true;
            }
            if (v == 1 && json_array_size(json_object_get(a, "inbounds")) &&
                !json_object_get(json_array_get(json_object_get(a, "inbounds"), 0), "serviceless"))
                inbound_ctx++;
            compared++;
            json_decref(a);
            json_decref(b);
            view_unref(view);
        }
        json_decref(with_ctx);
        json_decref(rebuilt);
        podstore_free(p);
    }
    print_message("    %zu pods (%zu with kuma-sidecar), %zu evaluations compared, %zu with "
                  "Service inbounds\n",
                  f.n, sidecars, compared, inbound_ctx);
    assert_true(f.n >= 80);
    assert_true(inbound_ctx >= 40);
    for (size_t i = 0; i < f.n; i++) {
        free(f.items[i].what);
        json_decref(f.items[i].pod);
        json_decref(f.items[i].policies);
    }
    free(f.items);
    assert_false(failed);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_table),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_is_meshed),
        cmocka_unit_test(test_annotation_kept),
        cmocka_unit_test(test_size_of_reference_pod),
        cmocka_unit_test(test_equivalence_on_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
