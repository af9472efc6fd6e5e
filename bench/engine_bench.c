/*
 * Engine throughput: AdmissionReview bytes -> decode -> match (100 policies)
 * -> patch -> encoded response, against a bare jansson parse + dump of the
 * same bytes, measured in the same process and run.
 *
 *   engine_bench ADMISSIONREVIEW.json [seconds-per-side]
 *
 * Prints pods/s for both and the cost ratio (engine / bare).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/admission.h"
#include "core/engine.h"
#include "core/memo.h"
#include "core/view.h"
#include "util/fileio.h"
#include "util/xalloc.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 100 policies of every kind the engine matches: some select the pod, most do not. */
static void add_policies(struct view_builder *set)
{
    static const char *const kinds[] = {"Mesh", "MeshSubset", "MeshService", "Dataplane",
                                        "MeshServiceSubset"};
    for (int i = 0; i < 100; i++) {
        const char *kind = kinds[i % 5];
        const char *ns = i % 3 == 0 ? "kuma-system" : (i % 3 == 1 ? "shop-prod" : "other-ns");
        const char *mesh = i % 7 == 6 ? "other-mesh" : "default";
        json_t *tr = json_pack("{s:s}", "kind", kind);
        if (!strcmp(kind, "MeshSubset"))
            json_object_set_new(tr, "tags", json_pack("{s:s}", "team", i % 2 ? "payments" : "x"));
        else if (!strcmp(kind, "MeshService"))
            json_object_set_new(tr, "name", json_string(i % 2 ? "checkout-api_shop-prod_svc_8080"
                                                               : "other_shop-prod_svc_80"));
        else if (!strcmp(kind, "MeshServiceSubset")) {
            json_object_set_new(tr, "name", json_string("checkout-api_shop-prod_svc_8080"));
            json_object_set_new(tr, "tags", json_pack("{s:s}", "team", "payments"));
        } else if (!strcmp(kind, "Dataplane"))
            json_object_set_new(tr, "labels",
                                json_pack("{s:s}", "app.kubernetes.io/name",
                                          i % 2 ? "checkout-api" : "nope"));
        char name[64];
        snprintf(name, sizeof name, "policy-%03d", i);
        json_t *mm = json_pack(
            "{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:o, s:{s:{s:{s:[{s:s}]}, s:b}, s:[{s:s, s:i}], "
            "s:[{s:s, s:{s:i, s:{s:s}}}]}}}",
            "apiVersion", "kuma.io/v1alpha1", "kind", "MeshMetric", "metadata", "name", name,
            "namespace", ns, "labels", "kuma.io/mesh", mesh, "spec", "targetRef", tr, "default",
            "sidecar", "profiles", "appendProfiles", "name", i % 2 ? "Basic" : "All",
            "includeUnused", i % 2, "applications", "name", "app", "port", 9000 + i, "backends",
            "type", "Prometheus", "prometheus", "port", 5670 + (i % 4), "tls", "mode",
            i % 4 == 0 ? "ProvidedTLS" : "Disabled");
        struct mm_error err;
        if (view_builder_add(set, mm, NULL, &err)) {
            fprintf(stderr, "policy %d: %s: %s\n", i, err.field, err.message);
            exit(2);
        }
        json_decref(mm);
    }
    json_t *svc = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:s}, s:[{s:s, s:i}]}}", "apiVersion",
                            "v1", "kind", "Service", "metadata", "name", "checkout-api",
                            "namespace", "shop-prod", "spec", "selector",
                            "app.kubernetes.io/name", "checkout-api", "ports", "name", "http",
                            "port", 8080);
    struct mm_error err;
    if (view_builder_add(set, svc, NULL, &err))
        exit(2);
    json_decref(svc);
}

static double engine_rate(const struct engine_config *cfg, const struct policy_view *set,
                          const char *body, size_t len, double secs, size_t *sink)
{
    struct mm_error err;
    size_t n = 0;
    double t0 = now(), t;
    do {
        for (int k = 0; k < 64; k++) {
            struct admission_request req;
            enum mm_status st = admission_decode(body, len, &req, &err);
            struct engine_result res;
            engine_result_init(&res);
            if (st == MM_OK)
                st = engine_evaluate(cfg, set, req.object, req.namespace, &res, &err);
            struct admission_response resp = {.uid = req.uid, .allowed = true,
                                              .patch = res.patch, .warnings = &res.warnings};
            char *out = admission_encode(&resp);
            *sink += strlen(out);
            free(out);
            engine_result_cleanup(&res);
            admission_request_cleanup(&req);
        }
        n += 64;
    } while ((t = now()) - t0 < secs);
    return (double)n / (t - t0);
}

int main(int argc, char **argv)
{
    xalloc_install_json();
    if (argc < 2) {
        fprintf(stderr, "usage: engine_bench ADMISSIONREVIEW.json [seconds]\n");
        return 2;
    }
    double secs = argc > 2 ? strtod(argv[2], NULL) : 3.0;
    char *body = NULL;
    size_t len = 0;
    struct mm_error err;
    if (fileio_read(argv[1], ADMISSION_MAX_BODY, &body, &len, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 2;
    }
    /* The unmemoised view first (as the CLI evaluates every pod), the webhook's later. */
    struct view_options plain_opts = {.no_memo = true}, memo_opts = {.no_memo = false};
    struct view_builder *pb = view_builder_create(&plain_opts);
    add_policies(pb);
    struct policy_view *plain = view_builder_finish(pb, 1);
    struct view_builder *mb = view_builder_create(&memo_opts);
    add_policies(mb);
    struct policy_view *memo_view = view_builder_finish(mb, 1);
    const struct view_rejection *rej = NULL;
    if (view_rejections(plain, &rej)) {
        fprintf(stderr, "%s %s is invalid: %s\n", rej[0].kind, rej[0].id, rej[0].errors);
        return 2;
    }
    struct engine_config cfg;
    engine_config_init(&cfg);

    /* Check once that the engine really patches this pod. */
    size_t patch_ops = 0, policies = 0;
    {
        struct admission_request req;
        if (admission_decode(body, len, &req, &err)) {
            fprintf(stderr, "decode: %s\n", err.message);
            return 2;
        }
        struct engine_result res;
        engine_result_init(&res);
        if (engine_evaluate(&cfg, plain, req.object, req.namespace, &res, &err)) {
            fprintf(stderr, "engine: %s\n", err.message);
            return 2;
        }
        patch_ops = json_array_size(res.patch);
        policies = json_array_size(res.match.policies);
        engine_result_cleanup(&res);
        admission_request_cleanup(&req);
    }

    size_t sink = 0;
    if (argc > 3 && !strcmp(argv[3], "--profile-memo")) {
        /* Only the webhook path with a warm memo, for callgrind. */
        (void)engine_rate(&cfg, memo_view, body, len, secs, &sink);
        view_unref(plain);
        view_unref(memo_view);
        free(body);
        return 0;
    }
    /* Baseline: bare jansson parse + dump. */
    size_t n_bare = 0;
    double t0 = now(), t;
    do {
        for (int k = 0; k < 64; k++) {
            json_t *v = json_loadb(body, len, 0, NULL);
            char *out = json_dumps(v, JSON_COMPACT);
            sink += strlen(out);
            free(out);
            json_decref(v);
        }
        n_bare += 64;
    } while ((t = now()) - t0 < secs);
    double bare_rate = (double)n_bare / (t - t0);

    /* Engine: decode -> match -> patch -> encode; first on a bare policy set
     * (every pod merges its policies, as the CLI does), then as the webhook
     * runs it: policy snapshots carry a selection index and a merge memo, so
     * pods of one workload merge once per snapshot. */
    double eng_rate = engine_rate(&cfg, plain, body, len, secs, &sink);
    struct mm_error err2;
    /* The engine alone (no memo) on a decoded request: where the time goes. */
    size_t n_only = 0;
    struct admission_request pre;
    if (admission_decode(body, len, &pre, &err2))
        return 2;
    t0 = now();
    do {
        for (int k = 0; k < 64; k++) {
            struct engine_result res;
            engine_result_init(&res);
            if (engine_evaluate(&cfg, plain, pre.object, pre.namespace, &res, &err2) == MM_OK)
                sink += json_array_size(res.patch);
            engine_result_cleanup(&res);
        }
        n_only += 64;
    } while ((t = now()) - t0 < secs);
    double only_rate = (double)n_only / (t - t0);
    admission_request_cleanup(&pre);

    double memo_rate = engine_rate(&cfg, memo_view, body, len, secs, &sink);
    struct view_counts vc;
    view_counts(plain, &vc);

    printf("pod: %zu bytes, %zu policies loaded, %zu matched, patch of %zu operations\n", len,
           vc.meshmetrics, policies, patch_ops);
    printf("%-40s %10.0f pods/s  %8.1f us/pod\n", "bare jansson parse+dump", bare_rate,
           1e6 / bare_rate);
    printf("%-40s %10.0f pods/s  %8.1f us/pod\n", "engine, no memo (every pod merges)",
           eng_rate, 1e6 / eng_rate);
    printf("%-40s %10.0f pods/s  %8.1f us/pod\n", "  of which engine_evaluate alone", only_rate,
           1e6 / only_rate);
    printf("%-40s %10.0f pods/s  %8.1f us/pod\n", "engine as the webhook runs it",
           memo_rate, 1e6 / memo_rate);
    printf("cost ratio engine/bare: %.2fx without memo, %.2fx with memo (target <= 3.00x)\n",
           bare_rate / eng_rate, bare_rate / memo_rate);
    view_unref(plain);
    view_unref(memo_view);
    free(body);
    return sink == 0;
}
