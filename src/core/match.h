/*
 * Evaluating one data plane proxy: select its MeshMetrics (select.h), order
 * them as Kuma does (order.h), fold their defaults (merge.h), then the
 * legacy Mesh.metrics mode and the annotation layer (layers.h). The result
 * is one effective MeshMetric `default` with the origin of every value
 * (docs/merge-order.md).
 */
#ifndef MM_CORE_MATCH_H
#define MM_CORE_MATCH_H

#include <jansson.h>
#include <stdbool.h>

#include "core/dataplane.h"
#include "core/violations.h"

struct policy_view;

enum match_mode {
    MATCH_MODE_NONE = 0,    /* nothing configures metrics for this pod */
    MATCH_MODE_MESHMETRIC,  /* at least one MeshMetric matched */
    MATCH_MODE_LEGACY,      /* Mesh.metrics enables Prometheus, no MeshMetric matched */
    MATCH_MODE_ANNOTATIONS, /* only pod annotations configure metrics */
};

const char *match_mode_name(enum match_mode m); /* "None", "MeshMetric", "Legacy", "Annotations" */

struct match_result {
    enum match_mode mode;
    json_t *policies;  /* array of policy ids ("namespace/name", "Mesh/name"), lowest priority first */
    json_t *effective; /* merged `default` in MeshMetric's schema, after annotations; {} when none */
    json_t *origins;   /* object: JSON Pointer into effective -> "namespace/name" | "annotation:<key>" | "mesh:<name>" | "default" */
    struct violations warnings; /* about this pod: annotation parse errors...; field = where */
    struct violations policy_warnings; /* notes of the matched policies (normalised values,
                                          deprecations); field = policy id. Shown by explain,
                                          not returned to each admission. */
    json_t *effective_hash;     /* string podpatch_config_hash(effective) when known, else NULL */
    bool legacy_ignored;        /* the mesh enables Mesh.metrics, ignored because MeshMetric applies */
    bool shared; /* policies, effective, origins and effective_hash are borrowed from the view's
                    merge memo: read-only, valid while the caller holds the view (reference
                    counts of values shared between threads are never touched) */
};

void match_result_init(struct match_result *r);
void match_result_cleanup(struct match_result *r);

/*
 * Select, order and merge the MeshMetrics of view for dp, then apply the
 * pod's prometheus.metrics.kuma.io/... annotations (pod_annotations may be
 * NULL). Always fills out (mode NONE when nothing applies). Thread-safe: the
 * view is only read (its memo is lock-free). The result may borrow from the
 * view (out->shared): clean it up before releasing the view.
 */
void match_evaluate(const struct dataplane *dp, const struct policy_view *view,
                    const json_t *pod_annotations, struct match_result *out);

/*
 * The MeshMetrics of dp's mesh that do not select it, each with the reason:
 * a new array of {"policy": id, "reason": text}, for `explain --all`.
 */
json_t *match_unselected(const struct dataplane *dp, const struct policy_view *view);

#endif
