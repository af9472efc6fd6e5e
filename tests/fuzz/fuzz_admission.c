/*
 * libFuzzer target: arbitrary bytes as an AdmissionReview body through the
 * whole webhook path (decode -> engine -> encode) with a fixed policy set,
 * and the response must always be a well-formed AdmissionReview.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/admission.h"
#include "core/engine.h"
#include "core/view.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

static struct policy_view *view;
static struct engine_config cfg;

static const char policies[] =
    "apiVersion: kuma.io/v1alpha1\nkind: MeshMetric\nmetadata: {name: a, namespace: kuma-system}\n"
    "spec: {default: {backends: [{type: Prometheus, prometheus: {port: 5670, tls: {mode: "
    "ProvidedTLS}}}], applications: [{name: app, port: 9102}]}}\n---\n"
    "apiVersion: kuma.io/v1alpha1\nkind: MeshMetric\nmetadata: {name: b, namespace: shop-prod}\n"
    "spec: {targetRef: {kind: Dataplane, labels: {app: x}}, default: {sidecar: {profiles: "
    "{appendProfiles: [{name: All}]}}}}\n---\n"
    "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop-prod}\n"
    "spec: {selector: {app: x}, ports: [{port: 80}]}\n";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    xalloc_install_json();
    engine_config_init(&cfg);
    struct view_builder *b = view_builder_create(NULL);
    json_t *docs = NULL;
    struct mm_error err;
    if (yamljson_load(policies, sizeof policies - 1, NULL, &docs, &err))
        abort();
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d) if (view_builder_add(b, d, NULL, &err)) abort();
    json_decref(docs);
    view = view_builder_finish(b, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct admission_request req;
    struct mm_error err;
    size_t uid_off = 0, uid_len = 0;
    bool scanned = admission_scan_uid((const char *)data, size, &uid_off, &uid_len);
    enum mm_status st = admission_decode((const char *)data, size, &req, &err);
    /* The scanner may give up, but what it finds must be what the parser finds. */
    if (scanned && st == MM_OK &&
        (strlen(req.uid) != uid_len - 2 || memcmp(req.uid, data + uid_off + 1, uid_len - 2)))
        abort();
    struct engine_result res;
    engine_result_init(&res);
    if (st == MM_OK && req.object)
        st = engine_evaluate(&cfg, view, req.object, req.namespace, &res, &err);
    struct admission_response resp = {.uid = req.uid ? req.uid : "", .allowed = true,
                                      .patch = st == MM_OK ? res.patch : NULL,
                                      .warnings = &res.warnings};
    char *out = admission_encode(&resp);
    json_error_t jerr;
    json_t *back = json_loads(out, 0, &jerr);
    if (!back || !json_is_object(json_object_get(back, "response")))
        abort(); /* the response must always parse */
    json_decref(back);
    free(out);
    engine_result_cleanup(&res);
    admission_request_cleanup(&req);
    return 0;
}
