/*
 * Compact pods for the informer cache. A pod's jansson tree costs about
 * 35 KB of heap; a cached pod here is one allocation of a few hundred bytes
 * holding only what the engine (core/dataplane.c, core/match.c) and the
 * reconcilers read:
 *
 *   metadata: name, namespace, uid, resourceVersion, creationTimestamp,
 *             deletionTimestamp (deletion in progress), labels, the
 *             annotations of podstore_annotation_kept() (one table, in
 *             podstore.c), ownerReferences (kind, name, controller);
 *   spec:     serviceAccountName (else the deprecated serviceAccount),
 *             containers and initContainers: name and ports (name,
 *             containerPort, protocol), and which one is kuma-sidecar;
 *   status:   podIP, phase, the Ready condition.
 *
 * Layout: a fixed header, then small arrays (labels, annotations, owners,
 * containers, ports) of 32-bit offsets into a string table, all in the same
 * block. A packed pod never changes (the cache replaces it whole), so any
 * number of threads read it without locks.
 *
 * podstore_to_json() rebuilds the minimal Pod object core's
 * dataplane_from_pod() and engine_evaluate() read. For every pod, evaluating
 * the rebuilt object gives the same dataplane view and the same effective
 * config as evaluating the full object (tests/unit/test_operator_podstore.c
 * checks this on every pod fixture). The JSON Patch is not comparable: it
 * reads the sidecar container's env, args and volume mounts, which are not
 * kept; the reconcilers compare config hashes (the kept annotation
 * meshmetric.kuma.io/config-hash) instead.
 */
#ifndef MM_OPERATOR_PODSTORE_H
#define MM_OPERATOR_PODSTORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define PODSTORE_SIDECAR "kuma-sidecar"

struct podstore_pod;

/* One ownerReference. Strings are borrowed from the pod. */
struct podstore_owner {
    const char *kind;
    const char *name;
    bool controller;
};

/* One container port. name and protocol are "" when the pod has none. */
struct podstore_port {
    const char *name;
    const char *protocol;
    bool has_container_port;
    long long container_port;
};

/* One container (containers first, then initContainers, each in pod order). */
struct podstore_container {
    const char *name;  /* "" when absent */
    bool init;         /* from spec.initContainers */
    size_t first_port; /* index of its first port in podstore_port() */
    size_t n_ports;
};

/* True when a container or initContainer of pod (borrowed) is named kuma-sidecar. */
bool podstore_is_meshed(const json_t *pod);

/*
 * True for the annotation keys a packed pod keeps: the prefix
 * prometheus.metrics.kuma.io/, the kuma.io/ annotations Kuma's pod converter
 * and core/dataplane.c read (mesh, gateway, ingress, egress, tags,
 * sidecar-injection, sidecar-injected, transparent proxying, probes, admin
 * port), and ours (meshmetric.kuma.io/config-hash, meshmetric.kuma.io/config).
 */
bool podstore_annotation_kept(const char *key);

/*
 * Pack pod (borrowed; never changed). Labels and annotations whose values
 * are not strings are left out (the API server only stores strings).
 * MM_ERR_TYPE when pod is not an object or has no metadata.name (err names
 * the field); MM_ERR_TOO_BIG past 4 GiB of strings. *out is a new pod, freed
 * with podstore_free.
 */
enum mm_status podstore_pack(const json_t *pod, struct podstore_pod **out,
                             struct mm_error *err) MM_WUR;
void podstore_free(struct podstore_pod *p); /* NULL is a no-op */

/* The bytes the pod's one allocation takes. */
size_t podstore_size(const struct podstore_pod *p);

/*
 * The minimal Pod object (kind Pod, apiVersion v1) of the packed pod: a new
 * reference. Empty label, annotation, owner and port lists are left out.
 */
json_t *podstore_to_json(const struct podstore_pod *p);

/* ---- reading (strings borrowed from p; "" when the pod had none) ---- */

const char *podstore_name(const struct podstore_pod *p);
const char *podstore_namespace(const struct podstore_pod *p);
const char *podstore_uid(const struct podstore_pod *p);
const char *podstore_resource_version(const struct podstore_pod *p);
const char *podstore_creation_timestamp(const struct podstore_pod *p);
const char *podstore_deletion_timestamp(const struct podstore_pod *p);
const char *podstore_service_account(const struct podstore_pod *p);
const char *podstore_pod_ip(const struct podstore_pod *p);
const char *podstore_phase(const struct podstore_pod *p);
bool podstore_deleting(const struct podstore_pod *p); /* deletionTimestamp set */
bool podstore_ready(const struct podstore_pod *p);    /* condition Ready is "True" */

size_t podstore_label_count(const struct podstore_pod *p);
/* The i-th label (in the pod's order). */
void podstore_label_at(const struct podstore_pod *p, size_t i, const char **key,
                       const char **value);
/* The value of label key, or NULL. */
const char *podstore_label(const struct podstore_pod *p, const char *key);

size_t podstore_annotation_count(const struct podstore_pod *p);
void podstore_annotation_at(const struct podstore_pod *p, size_t i, const char **key,
                            const char **value);
/* The value of a kept annotation, or NULL. */
const char *podstore_annotation(const struct podstore_pod *p, const char *key);

size_t podstore_owner_count(const struct podstore_pod *p);
void podstore_owner_at(const struct podstore_pod *p, size_t i, struct podstore_owner *out);

size_t podstore_container_count(const struct podstore_pod *p);
void podstore_container_at(const struct podstore_pod *p, size_t i, struct podstore_container *out);
/* Index of the kuma-sidecar container in podstore_container_at() order, or -1. */
long podstore_sidecar(const struct podstore_pod *p);

size_t podstore_port_count(const struct podstore_pod *p);
void podstore_port_at(const struct podstore_pod *p, size_t i, struct podstore_port *out);

#endif
