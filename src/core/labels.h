/*
 * The labels Kuma computes for resources (pkg/core/resources/labels/
 * compute.go, Compute and ComputePolicyRole, v2.14.3), computed here from the
 * object itself and never trusted from a label copied onto it:
 * - a policy's role, origin, zone and namespace labels and its display name,
 *   which decide where it applies (DppSelectedByPolicy) and how it is ordered
 *   (SortByTargetRef);
 * - the labels Kuma's store puts on a Dataplane, which `Dataplane` targetRefs
 *   with `labels` match (labels_dataplane_compute; the pod converter in
 *   dataplane.c gives the inputs).
 *
 * Both follow a zone control plane (mode "zone", which is what every running
 * Kuma control plane that converts pods has: app/kuma-cp/cmd/run.go turns the
 * deprecated "standalone" into "zone") on Kubernetes.
 */
#ifndef MM_CORE_LABELS_H
#define MM_CORE_LABELS_H

#include <jansson.h>
#include <stdbool.h>

#define LABEL_MESH "kuma.io/mesh"
#define LABEL_ORIGIN "kuma.io/origin"
#define LABEL_ZONE "kuma.io/zone"
#define LABEL_ENV "kuma.io/env"
#define LABEL_NAMESPACE "k8s.kuma.io/namespace"
#define LABEL_POLICY_ROLE "kuma.io/policy-role"
#define LABEL_DISPLAY_NAME "kuma.io/display-name"
#define LABEL_PROXY_TYPE "kuma.io/proxy-type"
#define LABEL_SERVICE_ACCOUNT "k8s.kuma.io/service-account"
#define LABEL_WORKLOAD "kuma.io/workload"
#define LABEL_LISTENER_ZONE_INGRESS "kuma.io/listener-zoneingress"
#define LABEL_LISTENER_ZONE_EGRESS "kuma.io/listener-zoneegress"

/* Kuma's policy roles, in SortByTargetRef order (lowest priority first). */
enum policy_role {
    POLICY_ROLE_UNKNOWN = 0, /* a label value Kuma does not know: roleOrder gives it 0 */
    POLICY_ROLE_SYSTEM = 1,
    POLICY_ROLE_PRODUCER = 2,
    POLICY_ROLE_CONSUMER = 3,
    POLICY_ROLE_WORKLOAD_OWNER = 4,
};

/* "system", "producer", "consumer", "workload-owner" (static string; "" for unknown). */
const char *labels_role_name(enum policy_role role);

struct policy_labels {
    enum policy_role role;
    char *display_name; /* owned; never NULL after labels_policy_compute */
    char *origin;       /* owned; label kuma.io/origin as computed ("zone" unless the object
                           sets it), NULL when absent (never after labels_policy_compute) */
    char *zone;         /* owned; label kuma.io/zone as computed, NULL when Kuma sets none */
    char *namespace;    /* owned; label k8s.kuma.io/namespace as computed, NULL when none */
};

/*
 * Compute the labels Kuma's defaulting webhook gives policy (a MeshMetric
 * object; borrowed) on the zone control plane of zone `zone` whose system
 * namespace is system_namespace (pkg/plugins/runtime/k8s/webhooks/
 * defaulter.go calls Compute). An object without metadata.namespace counts as
 * being in the system namespace. The display name is Kuma's
 * GetDisplayName of the stored object: the kuma.io/display-name annotation,
 * else metadata.name (a kuma.io/display-name label never counts: the store
 * adapter overwrites it). out is overwritten; free with labels_policy_cleanup.
 */
void labels_policy_compute(const json_t *policy, const char *system_namespace, const char *zone,
                           struct policy_labels *out);
void labels_policy_cleanup(struct policy_labels *l);

/* The inputs of Compute for a Dataplane the pod converter builds. */
struct labels_dataplane_input {
    const json_t *pod_labels;    /* the pod's labels (borrowed, may be NULL) */
    const char *mesh;            /* the Dataplane's mesh */
    const char *namespace;       /* the pod's namespace */
    const char *zone;            /* the control plane's zone name */
    bool no_cp_mode;             /* Compute without mode "zone" (Kuma's converter tests) */
    bool builtin_gateway;        /* the spec is a builtin gateway (proxy type "gateway") */
    const char *service_account; /* "" or NULL: none */
    const char *workload;        /* "" or NULL: none */
    const char *display_name;    /* the Dataplane's name (the pod's name) */
};

/*
 * The labels of a pod's Dataplane as Kuma's policy matching reads them: the
 * pod's labels merged under Compute's (pod_converter.go PodToDataplane, the
 * first conversion of the pod), plus kuma.io/display-name, which the
 * Kubernetes store adapter adds on every read (pkg/plugins/resources/k8s/
 * store.go, KubernetesMetaAdapter.GetLabels). A new object.
 */
json_t *labels_dataplane_compute(const struct labels_dataplane_input *in);

#endif
