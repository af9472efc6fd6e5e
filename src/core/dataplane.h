/*
 * What Kuma would know about a pod as a Dataplane: its mesh, the labels
 * Kuma's store puts on the Dataplane, its proxy type and its inbounds with
 * their tags — the view of a pod that policy selection reads. It follows
 * Kuma's pod converter (pkg/plugins/runtime/k8s/controllers/
 * pod_converter.go, inbound_converter.go, serviceless_name_extractor.go,
 * v2.14.3); docs/merge-order.md lists each rule with its source.
 */
#ifndef MM_CORE_DATAPLANE_H
#define MM_CORE_DATAPLANE_H

#include <jansson.h>
#include <stdbool.h>

#include "core/violations.h"

struct policy_view;

enum proxy_type {
    PROXY_SIDECAR = 0,
    PROXY_GATEWAY, /* a delegated gateway pod (kuma.io/gateway: enabled) */
};

struct dataplane {
    char *name;       /* pod name ("" at admission with generateName) */
    char *namespace;  /* pod namespace */
    char *mesh;       /* resolved mesh */
    char *workload;   /* the workload name Kuma derives (Deployment, CronJob, owner, pod) */
    enum proxy_type proxy_type;
    json_t *labels;   /* the Dataplane's labels as Kuma's store sets them */
    json_t *inbounds; /* array of {"port": N, "tags": {...}} in Kuma's order */
    struct violations warnings; /* what had to be assumed (e.g. a missing owner object) */
};

struct dataplane_options {
    const char *zone;             /* "default" when NULL */
    const char *system_namespace; /* "kuma-system" when NULL */
};

/*
 * Build the dataplane view of a pod. pod is the Pod object (or a workload's
 * pod template with metadata/spec); namespace overrides metadata.namespace
 * when non-NULL and non-empty (admission sends it separately). view (may be
 * NULL) gives the Namespaces, Services and owner objects (ReplicaSets, Jobs)
 * the converter reads. Always succeeds for an object; missing parts are
 * empty. out is overwritten; free with dataplane_cleanup.
 */
void dataplane_from_pod(const json_t *pod, const char *namespace, const struct policy_view *view,
                        const struct dataplane_options *opt, struct dataplane *out);

void dataplane_cleanup(struct dataplane *dp);

/* "Sidecar" or "Gateway" (the proxyTypes spelling). */
const char *dataplane_proxy_type_name(enum proxy_type t);

#endif
