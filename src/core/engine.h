/*
 * The whole pipeline for one object: pod (or workload pod template) ->
 * dataplane -> matched, merged config -> JSON Patch. The webhook and the
 * CLI both call this, so offline results equal admission results.
 */
#ifndef MM_CORE_ENGINE_H
#define MM_CORE_ENGINE_H

#include <jansson.h>

#include "core/inputs.h"
#include "core/match.h"
#include "core/podpatch.h"
#include "core/violations.h"
#include "util/error.h"

struct engine_config {
    const char *system_namespace;   /* "kuma-system" */
    struct podpatch_options patch;
};

void engine_config_init(struct engine_config *cfg); /* defaults */

struct engine_result {
    const char *kind;     /* "Pod", "Deployment", ... (static string) */
    const char *base;     /* JSON Pointer of the pod template in the object (static string) */
    struct dataplane dp;
    struct match_result match;
    json_t *patch;        /* JSON Patch array against the object as given */
    struct violations warnings; /* match warnings + patch warnings */
};

void engine_result_init(struct engine_result *r);
void engine_result_cleanup(struct engine_result *r);

/*
 * Evaluate obj: a Pod, or a Deployment/StatefulSet/DaemonSet/ReplicaSet/Job
 * (pod template at /spec/template) or CronJob (/spec/jobTemplate/spec/template).
 * namespace overrides metadata.namespace when non-NULL and non-empty; when both
 * are absent, "default". Returns MM_ERR_TYPE for other kinds or a missing
 * template.
 */
enum mm_status engine_evaluate(const struct engine_config *cfg, const struct policy_set *set,
                               const json_t *obj, const char *namespace,
                               struct engine_result *out, struct mm_error *err) MM_WUR;

/*
 * The explain document: {mesh, mode, policies, effective, origins, warnings,
 * patch, dataplane: {name, namespace, labels, inbounds}}. New reference.
 */
json_t *engine_explain_json(const struct engine_result *r);

#endif
