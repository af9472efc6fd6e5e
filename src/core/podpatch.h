/*
 * Effective config + pod -> RFC 6902 JSON Patch for the kuma-sidecar
 * container (in containers or initContainers). Idempotent: running it on the
 * patched pod yields []. Only emits operations valid under strict RFC 6902
 * (creates missing maps/arrays first, escapes ~ and / in pointers).
 */
#ifndef MM_CORE_PODPATCH_H
#define MM_CORE_PODPATCH_H

#include <jansson.h>
#include <stdbool.h>

#include "core/violations.h"
#include "util/error.h"

#define PODPATCH_SIDECAR "kuma-sidecar"
#define PODPATCH_ENV_CERT "KUMA_DATAPLANE_RUNTIME_METRICS_CERT_PATH"
#define PODPATCH_ENV_KEY "KUMA_DATAPLANE_RUNTIME_METRICS_KEY_PATH"
/* Pod annotations we write to record what was applied. */
#define PODPATCH_ANNOT_HASH "meshmetric.kuma.io/config-hash"
#define PODPATCH_ANNOT_CONFIG "meshmetric.kuma.io/config"

struct podpatch_options {
    const char *default_tls_secret; /* Secret when the pod has no tls-secret annotation */
    const char *cert_dir;           /* mount path, e.g. "/var/run/secrets/meshmetric.kuma.io/tls" */
    bool prometheus_annotations;    /* add prometheus.io/scrape|port|path|scheme (never overwrite) */
};

extern const struct podpatch_options podpatch_default_options;

/*
 * Build the patch. pod is the Pod object, or a workload's pod template
 * ({metadata, spec}); base is the JSON Pointer of that object in the
 * document the patch applies to ("" for a Pod, "/spec/template" for a
 * Deployment, "/spec/jobTemplate/spec/template" for a CronJob). effective is
 * the merged MeshMetric `default` (may be NULL or {} = no metrics config).
 * *patch_out is a new array (empty when nothing changes, or when the pod has
 * no kuma-sidecar container). Problems that do not stop the patch (e.g. a
 * port already used by another container) go to warnings.
 */
enum mm_status podpatch_build(const json_t *pod, const char *base, const json_t *effective,
                              const struct podpatch_options *opt, json_t **patch_out,
                              struct violations *warnings, struct mm_error *err) MM_WUR;

/*
 * podpatch_build with the effective config's hash already known
 * (podpatch_config_hash(effective), e.g. cached with a merge result);
 * config_hash NULL computes it.
 */
enum mm_status podpatch_build_hashed(const json_t *pod, const char *base, const json_t *effective,
                                     const char *config_hash, const struct podpatch_options *opt,
                                     json_t **patch_out, struct violations *warnings,
                                     struct mm_error *err) MM_WUR;

/* The hash recorded in PODPATCH_ANNOT_HASH for an effective config ("sha256:<hex16>"). Caller frees. */
char *podpatch_config_hash(const json_t *effective);

/* JSON Pointer escaping of one reference token (~ -> ~0, / -> ~1). Caller frees. */
char *podpatch_escape_token(const char *token);

#endif
