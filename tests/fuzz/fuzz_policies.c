/*
 * libFuzzer target: arbitrary bytes as a policy file through the one loader:
 * YAML -> view builder (policy_load: validation, normalisation, defaults) ->
 * engine and explain on a fixed pod, strict unknown-field checks too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"
#include "core/mesh.h"
#include "core/meshmetric.h"
#include "core/view.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

static json_t *pod;
static struct engine_config cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    xalloc_install_json();
    engine_config_init(&cfg);
    pod = json_loads("{\"kind\":\"Pod\",\"metadata\":{\"namespace\":\"shop-prod\",\"labels\":"
                     "{\"app\":\"x\"},\"annotations\":{\"prometheus.metrics.kuma.io/"
                     "aggregate-a-port\":\"9000\"}},\"spec\":{\"containers\":[{\"name\":"
                     "\"kuma-sidecar\"},{\"name\":\"app\",\"ports\":[{\"containerPort\":8080}]}]}}",
                     0, NULL);
    if (!pod)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *docs = NULL;
    struct mm_error err;
    struct yamljson_limits lim = yamljson_default_limits;
    lim.max_nodes = 20000;
    if (yamljson_load((const char *)data, size, &lim, &docs, &err))
        return 0;
    struct view_builder *b = view_builder_create(NULL);
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        struct violations unknown;
        violations_init(&unknown);
        const char *kind = json_string_value(json_object_get(d, "kind"));
        if (kind && !strcmp(kind, "MeshMetric"))
            meshmetric_unknown_fields(d, &unknown);
        violations_cleanup(&unknown);
        (void)view_builder_add(b, d, NULL, &err);
    }
    struct policy_view *view = view_builder_finish(b, 1);
    struct engine_result res;
    engine_result_init(&res);
    if (engine_evaluate(&cfg, view, pod, NULL, &res, &err) == MM_OK) {
        json_t *ex = engine_explain_json(&res, view, &cfg, true);
        json_decref(ex);
    }
    engine_result_cleanup(&res);
    view_unref(view);
    json_decref(docs);
    return 0;
}
