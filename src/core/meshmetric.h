/*
 * MeshMetric (kuma.io/v1alpha1) model: defaults and validation with Kuma
 * v2.14.3's exact rules, messages and field paths
 * (Kuma: pkg/plugins/policies/meshmetric/api/v1alpha1/validator.go). Resources stay jansson objects:
 * the merge is RFC 7396 on JSON anyway, and unknown fields must survive.
 */
#ifndef MM_CORE_MESHMETRIC_H
#define MM_CORE_MESHMETRIC_H

#include <jansson.h>
#include <stdbool.h>

#include "core/violations.h"
#include "util/error.h"

/*
 * Apply the CRD schema defaults to a MeshMetric `default` (spec.default)
 * in place: backends[].prometheus.port 5670, .path "/metrics",
 * .tls.mode "Disabled"; applications[].path "/metrics";
 * openTelemetry.refreshInterval is left to the data plane. Values of the
 * wrong type are left alone (validation reports them).
 */
void meshmetric_default_conf(json_t *conf);

/* Apply defaults to a whole MeshMetric object (its spec.default). */
void meshmetric_default(json_t *meshmetric);

/*
 * Validate a whole MeshMetric object (structural schema checks first, as the
 * API server would, then Kuma's validator). system_namespace decides the
 * policy role and so the allowed targetRef kinds (kuma-metrics.md §2.6).
 * Violations are appended to errs in Kuma's order with Kuma's paths
 * ("spec.default.backends.backend[0].port", ...); accepted-but-surprising
 * settings are appended to warnings as plain sentences (field may be set).
 * Also normalises an OpenTelemetry endpoint given as an http(s) URL to
 * host:port in place, with a warning (kuma-metrics.md §10).
 * Returns true when errs gained no entries.
 */
bool meshmetric_validate(json_t *meshmetric, const char *system_namespace,
                         struct violations *errs, struct violations *warnings);

/* The mesh a policy belongs to: label kuma.io/mesh, else "default". Borrowed. */
const char *meshmetric_mesh(const json_t *meshmetric);

#endif
