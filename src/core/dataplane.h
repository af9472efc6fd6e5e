/*
 * What Kuma would know about a pod as a Dataplane: its mesh, the labels
 * Kuma's store puts on the Dataplane, its proxy type and its inbounds (or, for
 * a gateway, its gateway tags) — the view of a pod that policy selection
 * reads. It follows Kuma's pod reconciler and converter at v2.14.3
 * (pkg/plugins/runtime/k8s/controllers/pod_controller.go, pod_converter.go,
 * inbound_converter.go, serviceless_name_extractor.go, gateway_converter.go,
 * pkg/plugins/runtime/k8s/util/util.go); docs/merge-order.md ("The Dataplane
 * view") lists each rule with its source.
 *
 * The same struct can be read from Kuma's real Dataplane object
 * (dataplane_from_kuma) and two of them compared (dataplane_diff), so the
 * operator can tell when Kuma's Dataplane and the derived view disagree.
 */
#ifndef MM_CORE_DATAPLANE_H
#define MM_CORE_DATAPLANE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/violations.h"
#include "util/error.h"

struct policy_view;

/* The port of a serviceless inbound (mesh_proto.TCPPortReserved, IANA-reserved). */
#define DATAPLANE_SERVICELESS_PORT 49151

/* The proxy type as targetRef proxyTypes see it (matchers resolveDataplaneProxyType). */
enum proxy_type {
    PROXY_SIDECAR = 0,
    PROXY_GATEWAY, /* networking.gateway is set: a delegated or builtin gateway */
};

enum gateway_type {
    GATEWAY_NONE = 0,
    GATEWAY_DELEGATED, /* annotation kuma.io/gateway: enabled | provided */
    GATEWAY_BUILTIN,   /* annotation kuma.io/gateway: builtin (a MeshGatewayInstance's pod) */
};

struct dataplane {
    char *name;          /* pod name ("" at admission with generateName) */
    char *namespace;     /* pod namespace */
    char *mesh;          /* resolved mesh */
    char *workload;      /* the name Kuma's name extractor gives (Deployment, CronJob, owner,
                            pod); "" when unknown (dataplane_from_kuma) */
    char *workload_kind; /* its kind ("Deployment", "CronJob", "ReplicaSet", "Job", the
                            owner's kind, or the pod's kind field); "" when unknown */
    enum proxy_type proxy_type;
    enum gateway_type gateway;
    json_t *labels;             /* the Dataplane's labels as policy matching reads them */
    json_t *inbounds;           /* array of {"port": N, "tags": {...}} plus "name" (the container
                                   port's name, when it has one) and "serviceless": true (the
                                   inbound on DATAPLANE_SERVICELESS_PORT), in Kuma's order */
    json_t *gateway_tags;       /* a gateway's networking.gateway.tags; NULL for a sidecar */
    struct violations warnings; /* what had to be assumed, or where Kuma would refuse */
};

/*
 * The control plane's settings that change a Dataplane. Zero means Kuma's
 * defaults (pkg/config/app/kuma-cp/kuma-cp.defaults.yaml).
 */
struct dataplane_options {
    const char *zone;                   /* multizone.zone.name; "default" when NULL; "" = none */
    const char *system_namespace;       /* "kuma-system" when NULL */
    bool no_cp_mode;                    /* labels.Compute without mode "zone", as Kuma's converter
                                           tests run it: no kuma.io/origin, kuma.io/zone, kuma.io/env
                                           labels. A running control plane always has mode zone. */
    const char *const *workload_labels; /* runtime.kubernetes.workloadLabels, NULL-terminated;
                                           NULL = [] (the default: the service account) */
    const json_t *node_labels;    /* the pod's Node's labels that Kuma copies onto inbound tags
                                     (runtime.kubernetes.injector.nodeLabelsToCopy already
                                     applied); NULL when unknown (the view has no Nodes) */
    const json_t *template_owner; /* the workload whose pod template `pod` is (Deployment,
                                     StatefulSet, DaemonSet, ReplicaSet, Job, CronJob), for
                                     the workload name its pods will get; NULL for a Pod */
};

/*
 * Build the dataplane view of a pod as Kuma's pod reconciler would: the
 * Kubernetes defaults the API server gives a pod before Kuma sees it (service
 * account "default"), the mesh (label, annotation, Namespace label, Namespace
 * annotation, "default"), the Services of view that Kuma counts for the pod
 * (findMatchingServices), then dataplane_convert. pod is the Pod object (or
 * a workload's pod template with metadata/spec); namespace overrides
 * metadata.namespace when non-NULL and non-empty (admission sends it
 * separately). view (may be NULL) gives the Namespaces, Services and owner
 * objects (ReplicaSets, Jobs). Always succeeds for an object; missing parts
 * are empty. out is overwritten; free with dataplane_cleanup.
 */
void dataplane_from_pod(const json_t *pod, const char *namespace, const struct policy_view *view,
                        const struct dataplane_options *opt, struct dataplane *out);

/*
 * Kuma's PodConverter.PodToDataplane for a pod as given (no defaults added)
 * with the Services the reconciler hands it (services[0..n), borrowed, in
 * Kuma's order: by name) in mesh `mesh`: inbounds or gateway, and the labels.
 * view (may be NULL) gives the ReplicaSets and Jobs the name extractor reads.
 * This is what Kuma's own converter tests exercise (tests/data/kuma-converter).
 */
void dataplane_convert(const json_t *pod, const char *namespace, const char *mesh,
                       const json_t *const *services, size_t n, const struct policy_view *view,
                       const struct dataplane_options *opt, struct dataplane *out);

/*
 * The same struct from Kuma's Dataplane custom resource as stored on
 * Kubernetes (kuma.io/v1alpha1 Dataplane: top-level `mesh`, metadata, and the
 * Dataplane proto as JSON in `spec`): labels as Kuma's store adapter reads
 * them (metadata.labels plus kuma.io/display-name, k8s.kuma.io/service-account
 * and kuma.io/workload from annotations, the display name defaulting to the
 * object's name), spec.networking.inbound[] and spec.networking.gateway.
 * obj is borrowed. out is always initialised (free with dataplane_cleanup);
 * MM_ERR_TYPE when obj is not an object or names another kind.
 */
enum mm_status dataplane_from_kuma(const json_t *obj, struct dataplane *out) MM_WUR;

/*
 * Compare the parts of two dataplanes that policy selection reads: mesh,
 * proxy type, labels, the set of inbound tag sets (order and ports aside) and
 * the gateway tags. ignore (NULL-terminated, may be NULL) lists label and tag
 * keys to leave out, e.g. dataplane_node_labels_default(): Kuma copies Node
 * labels onto inbound tags, which a view built at admission cannot know.
 * Returns NULL when they agree, else a new sentence listing each difference
 * ("label kuma.io/workload: \"web\" in a, \"default\" in b; ..."), naming
 * a and b as a_name and b_name. Caller frees.
 */
char *dataplane_diff(const struct dataplane *a, const struct dataplane *b, const char *a_name,
                     const char *b_name, const char *const *ignore);

/* Kuma's default nodeLabelsToCopy (NULL-terminated, static). */
const char *const *dataplane_node_labels_default(void);

void dataplane_cleanup(struct dataplane *dp);

/* "Sidecar" or "Gateway" (the proxyTypes spelling). */
const char *dataplane_proxy_type_name(enum proxy_type t);

#endif
