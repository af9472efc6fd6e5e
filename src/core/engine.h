/*
 * The whole pipeline for one object: pod (or workload pod template) ->
 * dataplane view -> matched, merged config -> JSON Patch. The webhook and
 * the CLI both call this with a policy view, so offline results equal
 * admission results.
 */
#ifndef MM_CORE_ENGINE_H
#define MM_CORE_ENGINE_H

#include <jansson.h>
#include <stdbool.h>

#include "core/dataplane.h"
#include "core/match.h"
#include "core/podpatch.h"
#include "core/violations.h"
#include "util/error.h"

struct policy_view;

struct engine_config {
    struct podpatch_options patch;
};

void engine_config_init(struct engine_config *cfg); /* defaults */

struct engine_result {
    const char *kind;  /* "Pod", "Deployment", ... (static string) */
    const char *base;  /* JSON Pointer of the pod template in the object (static string) */
    char *object_name; /* metadata.name of the object, else its generateName, else "" */
    bool generated_name; /* object_name is a generateName prefix */
    bool has_sidecar;  /* the pod (template) has a kuma-sidecar container */
    char *secret;      /* the Secret a ProvidedTLS backend needs mounted, or NULL */
    struct dataplane dp;
    struct match_result match;
    json_t *patch;     /* JSON Patch array against the object as given */
    struct violations warnings; /* dataplane + match + patch warnings, for the admission response */
};

void engine_result_init(struct engine_result *r);
void engine_result_cleanup(struct engine_result *r);

/*
 * Evaluate obj: a Pod, or a Deployment/StatefulSet/DaemonSet/ReplicaSet/Job
 * (pod template at /spec/template) or CronJob (/spec/jobTemplate/spec/template)
 * against view (the system namespace and zone are the view's). namespace
 * overrides metadata.namespace when non-NULL and non-empty; when both are
 * absent, "default". Returns MM_ERR_TYPE for other kinds or a missing template.
 */
enum mm_status engine_evaluate(const struct engine_config *cfg, const struct policy_view *view,
                               const json_t *obj, const char *namespace,
                               struct engine_result *out, struct mm_error *err) MM_WUR;

/*
 * What a pod's policies ask for now, without building the patch: the
 * dataplane view, the match and the config hash the webhook records on the
 * pod (meshmetric.kuma.io/config-hash). kuma_dataplane (may be NULL) is
 * Kuma's own Dataplane object for the pod: when given, the match is made
 * against it (Kuma computed its inbounds) and drift says how it differs from
 * the view derived from the pod (NULL when it does not).
 */
struct engine_want {
    struct dataplane dp;       /* derived from the pod */
    struct match_result match; /* against Kuma's Dataplane when given, else the derived view */
    char *hash;                /* what the webhook would record */
    bool empty;                /* no config applies (the webhook records nothing new) */
    char *drift;               /* Kuma's Dataplane vs the derived view, or NULL */
    bool from_kuma;            /* match was made against Kuma's Dataplane */
};

void engine_want_init(struct engine_want *w);
void engine_want_cleanup(struct engine_want *w);

/* Fill out for pod (a Pod object, borrowed). Always succeeds. */
void engine_want_pod(const struct policy_view *view, const json_t *pod,
                     const json_t *kuma_dataplane, struct engine_want *out);

/* True for the kinds engine_evaluate takes. */
bool engine_kind_supported(const char *kind);

/*
 * The explain document: {kind, name, namespace, mesh, mode, policies,
 * effective, origins, warnings, patch, secret, reasons, dataplane: {name,
 * namespace, workload, proxyType, labels, inbounds}} and, with all, the
 * mesh's policies that did not select the pod ("unselected"). New reference.
 */
json_t *engine_explain_json(const struct engine_result *r, const struct policy_view *view,
                            const struct engine_config *cfg, bool all);

#endif
