/*
 * Legacy Traffic Metrics: the cluster-scoped Mesh resource's spec.metrics
 * (kuma-metrics.md §6): defaulter, validator, and conversion of the enabled
 * Prometheus backend into the operator's effective config.
 */
#ifndef MM_CORE_MESH_H
#define MM_CORE_MESH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/violations.h"

/* Apply Kuma's Mesh defaulter to every prometheus backend of spec.metrics, in place. */
void mesh_default(json_t *mesh);

/*
 * Validate spec.metrics with Kuma's messages, at the paths Kuma's webhook
 * reports ("spec.metrics.backends[0].conf: ..."). Warnings (may be NULL):
 * fields Kuma ignores, the operator's notes, and Kuma's deprecations (a Mesh
 * name that is not a DNS-1035 label; only for a valid Mesh, as Kuma's
 * webhook). Returns true when errs gained no entries.
 */
bool mesh_validate(const json_t *mesh, struct violations *errs, struct violations *warnings);

/* mesh_validate; with strict, fields Kuma does not know are errors (mesh_unknown_fields). */
bool mesh_validate_ex(const json_t *mesh, bool strict, struct violations *errs,
                      struct violations *warnings);

/*
 * Append one violation per field of a Mesh object that Kuma does not know
 * (the CRD's top level, metav1.ObjectMeta, the Mesh spec message, and the
 * whole metrics subtree of metrics.proto), in document order: field = its
 * path ("spec.metrics.backends[0].conf.prot"), message
 * `unknown field "prot" (did you mean "port"?)`. Returns how many.
 */
size_t mesh_unknown_fields(const json_t *mesh, struct violations *out);

/*
 * The conf of the enabled Prometheus backend (after defaults), or NULL when
 * the Mesh does not enable Prometheus (HasPrometheusMetricsEnabled). Borrowed.
 */
const json_t *mesh_prometheus_conf(const json_t *mesh);

#endif
