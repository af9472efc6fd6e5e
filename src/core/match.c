/* Evaluating a proxy: select, order, merge, layers (see match.h). */
#include "core/match.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/annotations.h"
#include "core/layers.h"
#include "core/memo.h"
#include "core/merge.h"
#include "core/mesh.h"
#include "core/order.h"
#include "core/podpatch.h"
#include "core/policy.h"
#include "core/select.h"
#include "core/view.h"
#include "util/xalloc.h"

/* ---- results -------------------------------------------------------------- */

void match_result_init(struct match_result *r)
{
    r->mode = MATCH_MODE_NONE;
    r->policies = json_array();
    r->effective = json_object();
    r->origins = json_object();
    r->effective_hash = NULL;
    r->legacy_ignored = false;
    r->shared = false;
    violations_init(&r->warnings);
    violations_init(&r->policy_warnings);
}

void match_result_cleanup(struct match_result *r)
{
    if (!r->shared) { /* shared values belong to the view's memo */
        json_decref(r->policies);
        json_decref(r->effective);
        json_decref(r->origins);
        json_decref(r->effective_hash);
    }
    r->shared = false;
    r->effective_hash = NULL;
    violations_cleanup(&r->warnings);
    violations_cleanup(&r->policy_warnings);
    r->legacy_ignored = false;
    r->policies = r->effective = r->origins = NULL;
    r->mode = MATCH_MODE_NONE;
}

const char *match_mode_name(enum match_mode m)
{
    switch (m) {
    case MATCH_MODE_MESHMETRIC:
        return "MeshMetric";
    case MATCH_MODE_LEGACY:
        return "Legacy";
    case MATCH_MODE_ANNOTATIONS:
        return "Annotations";
    case MATCH_MODE_NONE:
    default:
        return "None";
    }
}
/* The merge of the selected policies (order's input, borrowed): fills policies, effective, origins. */
static void merge_selected(const struct policy **matched, size_t n, struct match_result *out)
{
    order_sort(matched, n);
    for (size_t i = 0; i < n; i++) {
        const struct policy *p = matched[i];
        json_array_append_new(out->policies, json_string(p->id));
        const json_t *def = policy_default(p);
        const json_t *raw = json_object_get(json_object_get(p->obj, "spec"), "default");
        if (def) /* copies: policies are shared between threads, their counts stay untouched */
            merge_objects(out->effective, def, out->origins, "", p->id, false);
        else if (raw && !json_is_null(raw)) /* only wrapped (unvalidated) policies get here */
            violations_add(&out->warnings, p->id, "spec.default is not an object; ignored");
        for (size_t w = 0; w < p->warnings.len; w++)
            violations_add(&out->policy_warnings, p->id, "%s%s%s", p->warnings.items[w].field,
                           p->warnings.items[w].field[0] ? ": " : "",
                           p->warnings.items[w].message);
    }
}

/* Point out at the memo's value (borrowed from the view, shared by every thread). */
static void use_memo_value(struct match_result *out, const struct memo_value *v)
{
    json_decref(out->policies);
    json_decref(out->effective);
    json_decref(out->origins);
    json_decref(out->effective_hash);
    out->policies = v->policies;
    out->effective = v->effective;
    out->origins = v->origins;
    out->effective_hash = v->hash;
    out->shared = true;
}

/* Our own copies of what is borrowed from the memo, before changing them. */
static void own_memo_value(struct match_result *out)
{
    if (!out->shared)
        return;
    out->policies = json_deep_copy(out->policies);
    out->effective = json_deep_copy(out->effective);
    out->origins = json_deep_copy(out->origins);
    out->effective_hash = out->effective_hash ? json_deep_copy(out->effective_hash) : NULL;
    out->shared = false;
}

void match_evaluate(const struct dataplane *dp, const struct policy_view *view,
                    const json_t *pod_annotations, struct match_result *out)
{
    const struct policy **matched = NULL;
    uint32_t *key = NULL;
    size_t n = 0;
    struct annot_metrics am;

    match_result_cleanup(out);
    match_result_init(out);
    annotations_init(&am);
    if (!json_is_object(pod_annotations))
        pod_annotations = NULL;
    (void)annotations_parse(pod_annotations, &am, &out->warnings);

    const char *mesh_name = dp && dp->mesh ? dp->mesh : "default";
    const struct policy *const *cands = NULL;
    const uint32_t *index = NULL;
    size_t total = view && dp ? view_candidates(view, mesh_name, dp->namespace, &cands, &index)
                              : 0;
    struct select_context ctx = {.system_namespace =
                                     view ? view_system_namespace(view) : "kuma-system",
                                 .zone = view ? view_zone(view) : "default"};
    if (total) {
        key = xmalloc(total * sizeof *key);
        matched = xmalloc(total * sizeof *matched);
    }
    for (size_t i = 0; i < total; i++) {
        if (select_policy(cands[i], dp, &ctx, NULL, 0)) {
            matched[n] = cands[i];
            key[n++] = index[i];
        }
    }
    const struct policy *mesh = view ? view_mesh(view, mesh_name) : NULL;
    const json_t *conf = mesh ? mesh_prometheus_conf(mesh->obj) : NULL;

    if (n > 0) {
        out->mode = MATCH_MODE_MESHMETRIC;
        out->legacy_ignored = conf != NULL;
        struct memo *memo = view_memo(view);
        const struct memo_value *hit = memo ? memo_get(memo, key, n) : NULL;
        if (hit) {
            use_memo_value(out, hit);
            for (size_t i = 0; i < n; i++) /* policy warnings are not memoised */
                for (size_t w = 0; w < matched[i]->warnings.len; w++)
                    violations_add(&out->policy_warnings, matched[i]->id, "%s%s%s",
                                   matched[i]->warnings.items[w].field,
                                   matched[i]->warnings.items[w].field[0] ? ": " : "",
                                   matched[i]->warnings.items[w].message);
        } else {
            merge_selected(matched, n, out);
            if (memo) {
                char *h = podpatch_config_hash(out->effective);
                out->effective_hash = json_string(h);
                free(h);
                /* Published (or an equal value another thread published first): from here on
                 * the result borrows the memo's value, like a hit. */
                const struct memo_value *pub =
                    memo_put(memo, key, n,
                             (struct memo_value){json_incref(out->policies),
                                                 json_incref(out->effective),
                                                 json_incref(out->origins),
                                                 json_incref(out->effective_hash)});
                if (pub)
                    use_memo_value(out, pub);
            }
        }
        if (am.any) {
            own_memo_value(out); /* the memo's value is shared: change a copy */
            layers_annotations(out->effective, out->origins, &am, pod_annotations, false,
                               &out->warnings);
            json_decref(out->effective_hash); /* no longer the hash of effective */
            out->effective_hash = NULL;
        }
    } else if (conf) {
        out->mode = MATCH_MODE_LEGACY;
        layers_legacy(mesh_name, conf, &am, pod_annotations, out);
    } else if (am.any) {
        out->mode = MATCH_MODE_ANNOTATIONS;
        layers_annotations(out->effective, out->origins, &am, pod_annotations, true,
                           &out->warnings);
    }
    annotations_cleanup(&am);
    free(matched);
    free(key);
}

json_t *match_unselected(const struct dataplane *dp, const struct policy_view *view)
{
    json_t *out = json_array();
    if (!dp || !view)
        return out;
    struct select_context ctx = {.system_namespace = view_system_namespace(view),
                                 .zone = view_zone(view)};
    const struct policy *const *all = NULL;
    size_t n = view_policies(view, &all);
    char why[512];
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i]->mesh, dp->mesh ? dp->mesh : "default"))
            continue;
        if (!select_policy(all[i], dp, &ctx, why, sizeof why))
            json_array_append_new(out, json_pack("{s:s, s:s}", "policy", all[i]->id, "reason",
                                                 why));
    }
    return out;
}
