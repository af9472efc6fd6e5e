/* The one policy loader (see policy.h). */
#include "core/policy.h"

#include <stdlib.h>
#include <string.h>

#include "core/mesh.h"
#include "core/meshmetric.h"
#include "core/select.h"
#include "util/xalloc.h"

static const char *meta_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

bool policy_kind_supported(const char *kind)
{
    return kind && (!strcmp(kind, "MeshMetric") || !strcmp(kind, "Mesh"));
}

enum mm_status policy_load(const json_t *doc, const struct policy_load_options *opt,
                           struct policy **out, struct violations *errs,
                           struct violations *warnings, struct mm_error *err)
{
    const char *system_ns = opt && opt->system_namespace ? opt->system_namespace : "kuma-system";
    struct violations local_warnings;
    json_t *copy = NULL;
    enum mm_status st = MM_OK;

    *out = NULL;
    violations_init(&local_warnings);
    if (!json_is_object(doc)) {
        st = mm_error_set(err, MM_ERR_TYPE, "", "the document is a %s, not an object",
                          json_is_array(doc) ? "list" : "scalar");
        goto cleanup;
    }
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    if (!policy_kind_supported(kind)) {
        st = mm_error_set(err, MM_ERR_TYPE, "kind", "\"%s\" is not a MeshMetric or a Mesh",
                          kind ? kind : "");
        goto cleanup;
    }
    bool is_mm = !strcmp(kind, "MeshMetric");
    copy = json_deep_copy(doc); /* validation normalises in place */
    size_t before = errs->len;
    if (is_mm)
        (void)meshmetric_validate(copy, system_ns, errs, &local_warnings);
    else
        (void)mesh_validate(copy, errs, &local_warnings);
    if (errs->len > before) {
        st = mm_error_set(err, MM_ERR_INVALID, "", "the %s is invalid", kind);
        goto cleanup;
    }
    const char *name = meta_str(copy, "name");
    if (!name || !*name) { /* the validators report it; a defensive second check */
        violations_add(errs, "metadata.name", "Required value: name or generateName is required");
        st = mm_error_set(err, MM_ERR_INVALID, "metadata.name", "a %s needs metadata.name",
                          kind);
        goto cleanup;
    }
    if (is_mm)
        meshmetric_default(copy);
    else
        mesh_default(copy);

    *out = policy_wrap(copy, opt); /* cannot fail: an object with a name */
    copy = NULL;
    violations_extend(&(*out)->warnings, &local_warnings);
cleanup:
    if (warnings)
        violations_extend(warnings, &local_warnings);
    violations_cleanup(&local_warnings);
    json_decref(copy);
    return st;
}

struct policy *policy_wrap(json_t *obj, const struct policy_load_options *opt)
{
    const char *system_ns = opt && opt->system_namespace ? opt->system_namespace : "kuma-system";
    const char *zone = opt && opt->zone ? opt->zone : "default";
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *name = meta_str(obj, "name");
    if (!json_is_object(obj) || !name) {
        json_decref(obj);
        return NULL;
    }
    bool is_mm = !kind || strcmp(kind, "Mesh") != 0; /* kind-less objects count as MeshMetrics */
    struct policy *p = xcalloc(1, sizeof *p);
    atomic_init(&p->refs, 1);
    p->kind = is_mm ? POLICY_MESHMETRIC : POLICY_MESH;
    p->obj = obj;
    p->name = name;
    const char *ns = meta_str(obj, "namespace");
    p->namespace = ns && is_mm ? ns : "";
    p->mesh = is_mm ? meshmetric_mesh(obj) : p->name;
    p->id = is_mm ? xasprintf("%s/%s", *p->namespace ? p->namespace : system_ns, p->name)
                  : xasprintf("Mesh/%s", p->name);
    labels_policy_compute(obj, system_ns, zone, &p->labels);
    if (is_mm)
        select_target_init(&p->target, json_object_get(json_object_get(obj, "spec"), "targetRef"));
    violations_init(&p->warnings);
    return p;
}

struct policy *policy_ref(struct policy *p)
{
    atomic_fetch_add(&p->refs, 1);
    return p;
}

void policy_unref(struct policy *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    json_decref(p->obj);
    free(p->id);
    labels_policy_cleanup(&p->labels);
    violations_cleanup(&p->warnings);
    free(p);
}

const json_t *policy_default(const struct policy *p)
{
    const json_t *def = json_object_get(json_object_get(p->obj, "spec"), "default");
    return json_is_object(def) ? def : NULL;
}
