#include "core/engine.h"

#include <string.h>

#include "util/xalloc.h"

void engine_config_init(struct engine_config *cfg)
{
    cfg->system_namespace = "kuma-system";
    cfg->patch = podpatch_default_options;
}

void engine_result_init(struct engine_result *r)
{
    memset(r, 0, sizeof *r);
    match_result_init(&r->match);
    violations_init(&r->warnings);
}

void engine_result_cleanup(struct engine_result *r)
{
    dataplane_cleanup(&r->dp);
    match_result_cleanup(&r->match);
    json_decref(r->patch);
    violations_cleanup(&r->warnings);
    memset(r, 0, sizeof *r);
}

struct workload {
    const char *kind;
    const char *base;
};

/* Where each supported kind keeps its pod (template). */
static const struct workload workloads[] = {
    {"Pod", ""},
    {"Deployment", "/spec/template"},
    {"StatefulSet", "/spec/template"},
    {"DaemonSet", "/spec/template"},
    {"ReplicaSet", "/spec/template"},
    {"ReplicationController", "/spec/template"},
    {"Job", "/spec/template"},
    {"CronJob", "/spec/jobTemplate/spec/template"},
};

enum mm_status engine_evaluate(const struct engine_config *cfg, const struct policy_set *set,
                               const json_t *obj, const char *namespace,
                               struct engine_result *out, struct mm_error *err)
{
    if (!json_is_object(obj))
        return mm_error_set(err, MM_ERR_TYPE, "", "the object is not a JSON object");
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const struct workload *w = NULL;
    if (!kind) /* admission objects always carry kind; tolerate bare pods */
        w = &workloads[0];
    for (size_t i = 0; kind && i < sizeof workloads / sizeof *workloads; i++)
        if (!strcmp(kind, workloads[i].kind))
            w = &workloads[i];
    if (!w)
        return mm_error_set(err, MM_ERR_TYPE, "kind",
                            "kind \"%s\" has no pod template; want Pod, Deployment, StatefulSet, "
                            "DaemonSet, ReplicaSet, Job or CronJob",
                            kind);
    const json_t *pod = obj;
    if (*w->base) {
        char *ptr = xstrdup(w->base + 1);
        char *save = NULL;
        for (char *tok = strtok_r(ptr, "/", &save); tok && pod; tok = strtok_r(NULL, "/", &save))
            pod = json_object_get(pod, tok);
        free(ptr);
        if (!json_is_object(pod))
            return mm_error_set(err, MM_ERR_TYPE, w->base + 1, "%s has no pod template at %s",
                                w->kind, w->base);
    }
    out->kind = w->kind;
    out->base = w->base;

    /* A template's namespace is the workload's. */
    const char *ns = namespace && *namespace ? namespace : NULL;
    if (!ns)
        ns = json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));
    if (!ns || !*ns)
        ns = "default";

    dataplane_from_pod(pod, ns, set, &out->dp);
    const json_t *annotations = json_object_get(json_object_get(pod, "metadata"), "annotations");
    match_evaluate(&out->dp, set, json_is_object(annotations) ? annotations : NULL,
                   cfg->system_namespace, &out->match);
    violations_extend(&out->warnings, &out->match.warnings);
    return podpatch_build_hashed(pod, w->base, out->match.effective,
                                 json_string_value(out->match.effective_hash), &cfg->patch,
                                 &out->patch, &out->warnings, err);
}

json_t *engine_explain_json(const struct engine_result *r)
{
    json_t *warnings = json_array();
    for (size_t i = 0; i < r->warnings.len; i++) {
        const struct violation *v = &r->warnings.items[i];
        json_array_append_new(warnings, v->field[0]
                                            ? json_sprintf("%s: %s", v->field, v->message)
                                            : json_string(v->message));
    }
    /* "O" takes a new reference; "o" steals one. */
    json_t *dp = json_pack("{s:s, s:s, s:o, s:o}", "name", r->dp.name ? r->dp.name : "",
                           "namespace", r->dp.namespace ? r->dp.namespace : "", "labels",
                           r->dp.labels ? json_incref(r->dp.labels) : json_object(), "inbounds",
                           r->dp.inbounds ? json_incref(r->dp.inbounds) : json_array());
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "kind",
                     r->kind ? r->kind : "Pod", "mesh", r->dp.mesh ? r->dp.mesh : "default",
                     "mode", match_mode_name(r->match.mode), "policies",
                     r->match.policies ? json_incref(r->match.policies) : json_array(),
                     "effective",
                     r->match.effective ? json_incref(r->match.effective) : json_object(),
                     "origins", r->match.origins ? json_incref(r->match.origins) : json_object(),
                     "warnings", warnings, "patch",
                     r->patch ? json_incref(r->patch) : json_array(), "dataplane", dp);
}
