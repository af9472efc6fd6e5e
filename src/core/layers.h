/*
 * The layers around the MeshMetric merge (docs/merge-order.md):
 * - the pod's prometheus.metrics.kuma.io annotations, applied on top of the
 *   merged MeshMetric config (highest priority), or on their own;
 * - the legacy Mesh.metrics ("Traffic Metrics") mode, Kuma's
 *   DataplaneResource.GetPrometheusConfig: the Mesh's enabled Prometheus
 *   backend as the base, the annotations merged into it.
 * Both record the origin of every value they set (core/merge.h).
 */
#ifndef MM_CORE_LAYERS_H
#define MM_CORE_LAYERS_H

#include <jansson.h>
#include <stdbool.h>

#include "core/annotations.h"
#include "core/match.h"
#include "core/violations.h"

/*
 * Apply parsed annotations am (the raw object is annotations, for origin
 * keys) on top of effective: port/path go to the first Prometheus backend;
 * one with the defaults is added when there is none and port/path are set,
 * or always when force_backend. Aggregate applications replace or add
 * applications by name. Problems go to warnings.
 */
void layers_annotations(json_t *effective, json_t *origins, const struct annot_metrics *am,
                        const json_t *annotations, bool force_backend,
                        struct violations *warnings);

/*
 * Legacy mode: out (initialised, empty) gets the effective config of the
 * Mesh mesh_name's enabled Prometheus conf with the annotations merged as
 * Kuma merges a Dataplane's metrics into the Mesh's.
 */
void layers_legacy(const char *mesh_name, const json_t *conf, const struct annot_metrics *am,
                   const json_t *annotations, struct match_result *out);

#endif
