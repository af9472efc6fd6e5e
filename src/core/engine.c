#include "core/engine.h"

#include <string.h>

#include "core/annotations.h"
#include "core/view.h"
#include "util/xalloc.h"

void engine_config_init(struct engine_config *cfg)
{
    cfg->patch = podpatch_default_options;
}

void engine_result_init(struct engine_result *r)
{
    memset(r, 0, sizeof *r);
    match_result_init(&r->match);
    violations_init(&r->warnings);
    violations_init(&r->dp.warnings);
}

void engine_result_cleanup(struct engine_result *r)
{
    free(r->object_name);
    free(r->secret);
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

bool engine_kind_supported(const char *kind)
{
    for (size_t i = 0; kind && i < sizeof workloads / sizeof *workloads; i++)
        if (!strcmp(kind, workloads[i].kind))
            return true;
    return false;
}

static bool has_named(const json_t *list, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        const char *n = json_string_value(json_object_get(c, "name"));
        if (n && !strcmp(n, name))
            return true;
    }
    return false;
}

/* The Secret a ProvidedTLS backend needs mounted, or NULL. Borrowed. */
static const char *tls_secret(const json_t *effective, const struct engine_config *cfg,
                              const json_t *annotations)
{
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(effective, "backends"), i, b)
    {
        const json_t *mode =
            json_object_get(json_object_get(json_object_get(b, "prometheus"), "tls"), "mode");
        if (json_is_string(mode) && !strcmp(json_string_value(mode), "ProvidedTLS")) {
            const char *s = json_string_value(json_object_get(annotations, ANNOT_TLS_SECRET));
            return s && *s ? s : cfg->patch.default_tls_secret;
        }
    }
    return NULL;
}

enum mm_status engine_evaluate(const struct engine_config *cfg, const struct policy_view *view,
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
    const json_t *md = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(md, "name"));
    if (!name || !*name) {
        name = json_string_value(json_object_get(md, "generateName"));
        out->generated_name = name && *name;
    }
    out->object_name = xstrdup(name ? name : "");

    /* A template's namespace is the workload's. */
    const char *ns = namespace && *namespace ? namespace : NULL;
    if (!ns)
        ns = json_string_value(json_object_get(md, "namespace"));
    if (!ns || !*ns)
        ns = "default";

    const json_t *spec = json_object_get(pod, "spec");
    out->has_sidecar = has_named(json_object_get(spec, "containers"), PODPATCH_SIDECAR) ||
                       has_named(json_object_get(spec, "initContainers"), PODPATCH_SIDECAR);
    struct dataplane_options dopt = {.zone = view ? view_zone(view) : NULL,
                                     .system_namespace = view ? view_system_namespace(view) : NULL,
                                     .template_owner = *w->base ? obj : NULL};
    dataplane_cleanup(&out->dp);
    dataplane_from_pod(pod, ns, view, &dopt, &out->dp);
    const json_t *annotations = json_object_get(json_object_get(pod, "metadata"), "annotations");
    match_evaluate(&out->dp, view, json_is_object(annotations) ? annotations : NULL, &out->match);
    violations_extend(&out->warnings, &out->dp.warnings);
    violations_extend(&out->warnings, &out->match.warnings);
    const char *secret = tls_secret(out->match.effective, cfg, annotations);
    out->secret = secret ? xstrdup(secret) : NULL;
    return podpatch_build_hashed(pod, w->base, out->match.effective,
                                 json_string_value(out->match.effective_hash), &cfg->patch,
                                 &out->patch, &out->warnings, err);
}

void engine_want_init(struct engine_want *w)
{
    memset(w, 0, sizeof *w);
    violations_init(&w->dp.warnings);
    match_result_init(&w->match);
}

void engine_want_cleanup(struct engine_want *w)
{
    dataplane_cleanup(&w->dp);
    match_result_cleanup(&w->match);
    free(w->hash);
    free(w->drift);
    memset(w, 0, sizeof *w);
}

void engine_want_pod(const struct policy_view *view, const json_t *pod,
                     const json_t *kuma_dataplane, struct engine_want *out)
{
    engine_want_cleanup(out);
    engine_want_init(out);
    const json_t *md = json_object_get(pod, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    struct dataplane_options dopt = {.zone = view ? view_zone(view) : NULL,
                                     .system_namespace = view ? view_system_namespace(view) : NULL};
    dataplane_cleanup(&out->dp);
    dataplane_from_pod(pod, ns && *ns ? ns : "default", view, &dopt, &out->dp);
    const json_t *annotations = json_object_get(md, "annotations");
    if (!json_is_object(annotations))
        annotations = NULL;
    struct dataplane real;
    memset(&real, 0, sizeof real);
    violations_init(&real.warnings);
    if (kuma_dataplane && dataplane_from_kuma(kuma_dataplane, &real) == MM_OK) {
        out->from_kuma = true;
        /* Kuma copies node labels onto inbound tags; the view has no Nodes. */
        out->drift = dataplane_diff(&out->dp, &real, "the view derived from the pod",
                                    "Kuma's Dataplane", dataplane_node_labels_default());
        match_evaluate(&real, view, annotations, &out->match);
    } else {
        match_evaluate(&out->dp, view, annotations, &out->match);
    }
    dataplane_cleanup(&real);
    const json_t *eff = out->match.effective;
    out->empty = !eff || json_is_null(eff) || (json_is_object(eff) && json_object_size(eff) == 0);
    const char *known = json_string_value(out->match.effective_hash);
    out->hash = known && !out->empty ? xstrdup(known) : podpatch_config_hash(out->empty ? NULL : eff);
}

static json_t *violations_lines(const struct violations *v)
{
    json_t *out = json_array();
    for (size_t i = 0; i < v->len; i++) {
        const struct violation *x = &v->items[i];
        json_array_append_new(out, x->field[0] ? json_sprintf("%s: %s", x->field, x->message)
                                               : json_string(x->message));
    }
    return out;
}

static bool has_backends(const json_t *effective)
{
    return json_array_size(json_object_get(effective, "backends")) > 0;
}

json_t *engine_explain_json(const struct engine_result *r, const struct policy_view *view,
                            const struct engine_config *cfg, bool all)
{
    const struct dataplane *dp = &r->dp;
    json_t *reasons = json_array();
    if (!r->has_sidecar)
        json_array_append_new(
            reasons, json_string("no kuma-sidecar container: the pod is not (yet) in a mesh. "
                                 "Kuma's injector adds the sidecar when the pod or its namespace "
                                 "is labelled kuma.io/sidecar-injection: enabled; this webhook "
                                 "then patches it (it runs after Kuma's, with "
                                 "reinvocationPolicy IfNeeded)"));
    if (r->match.mode == MATCH_MODE_NONE)
        json_array_append_new(reasons,
                              json_sprintf("no MeshMetric of mesh \"%s\" selects the pod, the "
                                           "mesh does not enable Mesh.metrics and the pod has "
                                           "no prometheus.metrics.kuma.io annotations",
                                           dp->mesh ? dp->mesh : "default"));
    else if (!has_backends(r->match.effective))
        json_array_append_new(reasons,
                              json_string("the effective config has no backends: Kuma "
                                          "generates no metrics endpoint without one"));
    if (r->match.legacy_ignored)
        json_array_append_new(reasons,
                              json_sprintf("Mesh \"%s\" enables Mesh.metrics, ignored for this "
                                           "pod because a MeshMetric applies (as in Kuma)",
                                           dp->mesh ? dp->mesh : "default"));

    json_t *warnings = violations_lines(&r->warnings);
    json_t *pw = violations_lines(&r->match.policy_warnings);
    json_array_extend(warnings, pw);
    json_decref(pw);

    (void)cfg;
    json_t *dpj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:O}", "name",
                            dp->name ? dp->name : "", "namespace",
                            dp->namespace ? dp->namespace : "", "workload",
                            dp->workload ? dp->workload : "", "workloadKind",
                            dp->workload_kind ? dp->workload_kind : "", "proxyType",
                            dataplane_proxy_type_name(dp->proxy_type), "labels",
                            dp->labels ? dp->labels : json_null(), "inbounds",
                            dp->inbounds ? dp->inbounds : json_null());
    if (dp->gateway_tags)
        json_object_set(dpj, "gatewayTags", dp->gateway_tags);
    /* Copies: the match may borrow from the view's memo, whose counts other threads share. */
    json_t *out = json_pack(
        "{s:s, s:s, s:b, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:O, s:o, s:o, s:o}", "kind",
        r->kind ? r->kind : "Pod", "name", r->object_name ? r->object_name : "", "generateName",
        r->generated_name, "namespace",
        dp->namespace ? dp->namespace : "", "mesh", dp->mesh ? dp->mesh : "default", "mode",
        match_mode_name(r->match.mode), "policies", json_deep_copy(r->match.policies),
        "effective", json_deep_copy(r->match.effective), "origins",
        json_deep_copy(r->match.origins), "warnings", warnings, "patch",
        r->patch ? r->patch : json_null(), "secret", r->secret ? json_string(r->secret) : json_null(),
        "reasons", reasons, "dataplane", dpj);
    if (all)
        json_object_set_new(out, "unselected", match_unselected(dp, view));
    return out;
}
