/*
 * Matching a pod (a "dataplane") against policies, Kuma's SortByTargetRef
 * ordering, and the RFC 7396 merge into one effective MeshMetric `default`,
 * with the legacy Mesh.metrics mode and the annotation layer on top
 * (kuma-metrics.md §3, §4, §6.4; design in docs/merge-order.md).
 */
#ifndef MM_CORE_MATCH_H
#define MM_CORE_MATCH_H

#include <jansson.h>

#include "core/inputs.h"
#include "core/violations.h"

/* What Kuma would know about the pod as a Dataplane. */
struct dataplane {
    char *name;      /* pod name (may be "" at admission with generateName) */
    char *namespace; /* pod namespace */
    char *mesh;      /* resolved mesh */
    json_t *labels;  /* Dataplane labels: pod labels + kuma.io/mesh, k8s.kuma.io/namespace, ... */
    json_t *inbounds; /* array of tag objects, one per inbound (Service port), each with kuma.io/service */
};

/*
 * Build the dataplane view of a pod. pod is the Pod object (or pod template
 * with metadata/spec); namespace overrides metadata.namespace when non-NULL
 * (admission sends it separately). Services in set that select the pod
 * (same namespace, every selector label equal) give one inbound per port
 * with kuma.io/service "<svc>_<ns>_svc_<port>". Always succeeds for an
 * object; missing parts are empty.
 */
void dataplane_from_pod(const json_t *pod, const char *namespace, const struct policy_set *set,
                        struct dataplane *out);
void dataplane_cleanup(struct dataplane *dp);

enum match_mode {
    MATCH_MODE_NONE = 0,    /* nothing configures metrics for this pod */
    MATCH_MODE_MESHMETRIC,  /* at least one MeshMetric matched */
    MATCH_MODE_LEGACY,      /* Mesh.metrics enables Prometheus, no MeshMetric matched */
    MATCH_MODE_ANNOTATIONS, /* only pod annotations configure metrics */
};

const char *match_mode_name(enum match_mode m); /* "None", "MeshMetric", "Legacy", "Annotations" */

struct match_result {
    enum match_mode mode;
    json_t *policies;  /* array of "namespace/name", lowest priority first */
    json_t *effective; /* merged `default` in MeshMetric's schema, after annotations; {} when none */
    json_t *origins;   /* object: JSON Pointer into effective -> "namespace/name" | "annotation:<key>" | "mesh:<name>" */
    struct violations warnings; /* annotation parse errors etc.; field = annotation key or policy */
    json_t *effective_hash; /* string podpatch_config_hash(effective) when known, else NULL */
};

void match_result_init(struct match_result *r);
void match_result_cleanup(struct match_result *r);

/*
 * Select, order and merge the policies for dp, then apply the pod's
 * prometheus.metrics.kuma.io/... annotations (pod_annotations may be NULL).
 * system_namespace is where mesh-wide policies live ("kuma-system").
 * Always fills out (mode NONE when nothing applies).
 */
void match_evaluate(const struct dataplane *dp, const struct policy_set *set,
                    const json_t *pod_annotations, const char *system_namespace,
                    struct match_result *out);

/*
 * Selection data precomputed once for an immutable array of MeshMetrics
 * (mesh, namespace, targetRef), so evaluating a pod does not look them up
 * again for every policy. Snapshots carry one (policy_set.index); it borrows
 * from the array, which must outlive it.
 */
struct match_index *match_index_create(const json_t *meshmetrics);
void match_index_free(struct match_index *ix); /* NULL is a no-op */

/* True when policy (a MeshMetric) selects dp; exposed for tests and the operator. */
bool match_selects(const json_t *policy, const struct dataplane *dp, const char *system_namespace);

/*
 * Kuma's SortByTargetRef comparison: <0 when a has lower priority than b.
 * system_namespace decides the policy role when the label is absent.
 */
int match_compare(const json_t *a, const json_t *b, const char *system_namespace);

/* RFC 7396 merge of patch into target in place, except that keys whose name
 * starts with "append" (appendProfiles) concatenate arrays. */
void match_merge_patch(json_t *target, const json_t *patch);

#endif
