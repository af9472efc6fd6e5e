/*
 * prometheus.metrics.kuma.io/... pod annotations, parsed with Kuma v2.x's rules
 * and error texts (kuma-metrics.md §4), and the kuma.io/mesh resolution order.
 * Unlike Kuma, aggregate applications come out sorted by name.
 */
#ifndef MM_CORE_ANNOTATIONS_H
#define MM_CORE_ANNOTATIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/violations.h"

#define ANNOT_PREFIX "prometheus.metrics.kuma.io/"
#define ANNOT_PORT "prometheus.metrics.kuma.io/port"
#define ANNOT_PATH "prometheus.metrics.kuma.io/path"
/* Ours, not Kuma's: the Secret holding tls.crt/tls.key for ProvidedTLS. */
#define ANNOT_TLS_SECRET "prometheus.metrics.kuma.io/tls-secret"

struct annot_app {
    char *name;
    bool has_port;
    uint32_t port;
    char *path;    /* never NULL: defaults to "/metrics" */
    bool enabled;  /* absent = true */
    char *address; /* NULL when absent */
};

struct annot_metrics {
    bool has_port;
    uint32_t port;       /* may be 0 or > 65535: Kuma does not range-check */
    char *path;          /* NULL when absent or empty */
    struct annot_app *apps; /* sorted by name */
    size_t n_apps;
    bool any;            /* Kuma would set Dataplane.spec.metrics */
};

void annotations_init(struct annot_metrics *m);
void annotations_cleanup(struct annot_metrics *m);

/*
 * Parse the pod's annotations object (may be NULL or absent). Problems are
 * appended to errs with field = the annotation key and Kuma's message, e.g.
 * field "" message `failed to parse annotation "prometheus.metrics.kuma.io/port":
 * strconv.ParseUint: parsing "abc": invalid syntax`, `annotation "<key>" has
 * wrong value "<v>"`, `port needs to be specified for metrics scraping`.
 * Parsing continues past errors so every problem is reported; out holds what
 * parsed. Returns true when there were no errors.
 */
bool annotations_parse(const json_t *annotations, struct annot_metrics *out,
                       struct violations *errs);

/*
 * Mesh of a pod: pod label kuma.io/mesh, then pod annotation, then namespace
 * label, then namespace annotation, then "default". Any argument may be NULL.
 * Borrowed (points into the inputs or a static string).
 */
const char *annotations_mesh(const json_t *pod_labels, const json_t *pod_annotations,
                             const json_t *ns_labels, const json_t *ns_annotations);

#endif
