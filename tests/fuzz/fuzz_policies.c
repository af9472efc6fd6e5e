/*
 * libFuzzer target: arbitrary bytes as a policy file through the CLI's path:
 * YAML -> validation -> policy set -> engine on a fixed pod.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"
#include "core/mesh.h"
#include "core/meshmetric.h"
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
    struct policy_set set;
    policy_set_init(&set);
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d) {
        struct violations errs, warns;
        violations_init(&errs);
        violations_init(&warns);
        const char *kind = json_string_value(json_object_get(d, "kind"));
        bool ok = true;
        if (kind && !strcmp(kind, "MeshMetric"))
            ok = meshmetric_validate(d, "kuma-system", &errs, &warns);
        else if (kind && !strcmp(kind, "Mesh"))
            ok = mesh_validate(d, &errs, &warns);
        free(violations_join(&errs));
        violations_cleanup(&errs);
        violations_cleanup(&warns);
        if (ok)
            (void)policy_set_add(&set, json_incref(d), NULL, &err);
    }
    struct engine_result res;
    engine_result_init(&res);
    if (engine_evaluate(&cfg, &set, pod, NULL, &res, &err) == MM_OK) {
        json_t *ex = engine_explain_json(&res);
        json_decref(ex);
    }
    engine_result_cleanup(&res);
    policy_set_cleanup(&set);
    json_decref(docs);
    return 0;
}
