/*
 * Legacy Traffic Metrics: the cluster-scoped Mesh resource's spec.metrics
 * (kuma-metrics.md §6): defaulter, validator, and conversion of the enabled
 * Prometheus backend into the operator's effective config.
 */
#ifndef MM_CORE_MESH_H
#define MM_CORE_MESH_H

#include <jansson.h>
#include <stdbool.h>

#include "core/violations.h"

/* Apply Kuma's Mesh defaulter to every prometheus backend of spec.metrics, in place. */
void mesh_default(json_t *mesh);

/* Validate spec.metrics with Kuma's messages (paths prefixed "metrics."). */
bool mesh_validate(const json_t *mesh, struct violations *errs, struct violations *warnings);

/*
 * The conf of the enabled Prometheus backend (after defaults), or NULL when
 * the Mesh does not enable Prometheus (HasPrometheusMetricsEnabled). Borrowed.
 */
const json_t *mesh_prometheus_conf(const json_t *mesh);

#endif
