/*
 * MeshMetric (kuma.io/v1alpha1) model: defaults and validation with Kuma
 * v2.14.3's exact rules, messages and field paths
 * (Kuma: pkg/plugins/policies/meshmetric/api/v1alpha1/validator.go). Resources stay jansson
 * objects: the merge is RFC 7396 on JSON anyway, and unknown fields must survive.
 */
#ifndef MM_CORE_MESHMETRIC_H
#define MM_CORE_MESHMETRIC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

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
 * Validate a whole MeshMetric object in the stages it meets on Kubernetes:
 * the API server's structural schema check, the decoding of the object into
 * Kuma's Go types by Kuma's webhook, then Kuma's validator. system_namespace
 * decides the policy role and so the allowed targetRef kinds
 * (kuma-metrics.md §2.6). Violations are appended to errs in Kuma's order
 * with Kuma's paths ("spec.default.backends.backend[0].port", ...).
 * Warnings (field may be "") are appended to warnings (may be NULL): Kuma's
 * deprecations with Kuma's text (deprecated.go; only for an object that
 * passes, as Kuma's webhook returns them only then), unknown fields in the
 * API server's words (unknown field "spec.x"), and the operator's notes on
 * accepted-but-surprising settings.
 * Also normalises an OpenTelemetry endpoint given as an http(s) URL to
 * host:port in place, with a warning (kuma-metrics.md §10).
 * Returns true when errs gained no entries.
 */
bool meshmetric_validate(json_t *meshmetric, const char *system_namespace, struct violations *errs,
                         struct violations *warnings);

/*
 * meshmetric_validate, and with strict set every field Kuma's CRD schema
 * does not know is an error (meshmetric_unknown_fields) instead of a
 * warning, as `kubectl apply --validate=strict` makes it. Unknown fields do
 * not stop the other checks.
 */
bool meshmetric_validate_ex(json_t *meshmetric, const char *system_namespace, bool strict,
                            struct violations *errs, struct violations *warnings);

/*
 * Append one violation per field of a MeshMetric object that Kuma's CRD
 * schema (v2.14.3, plus metav1.ObjectMeta for metadata) does not know, in
 * document order: field = the API server's path of the field
 * ("spec.default.backends[0].prometheus.prot"), message
 * `unknown field "prot" (did you mean "port"?)` (the hint only when a known
 * field at that path is close). Returns how many were appended.
 */
size_t meshmetric_unknown_fields(const json_t *meshmetric, struct violations *out);

/*
 * The embedded copy of Kuma's MeshMetric CRD schema as JSON Schema (type,
 * properties, items, enum, required, additionalProperties only), for
 * checking it against the CRD file. Operator extensions (the Kuma 2.6
 * sidecar.regex) are left out. New reference.
 */
json_t *meshmetric_crd_schema(void);

/*
 * The candidate closest to key (optimal string alignment distance, letter
 * case ignored), or NULL when none is close enough to be a typo: at most 1
 * edit for keys up to 5 characters, 2 beyond. Ties go to the earlier
 * candidate. Borrowed from candidates. Shared with mesh.c.
 */
const char *meshmetric_did_you_mean(const char *key, const char *const *candidates, size_t n);

/* The mesh a policy belongs to: label kuma.io/mesh, else "default". Borrowed. */
const char *meshmetric_mesh(const json_t *meshmetric);

#endif
