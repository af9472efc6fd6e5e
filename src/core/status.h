/*
 * The status the operator keeps true, as pure functions: whether a pod runs
 * the metrics config its policies ask for (and why not), the conditions a
 * MeshMetric carries with its figures, and how they merge with the
 * conditions other writers (kuma-cp's BackendRefsResolved) keep on the same
 * object.
 *
 * Kuma's MeshMetric CRD (deployments/charts/kuma/crds/kuma.io_meshmetrics.yaml,
 * v2.14.3) has no status subresource and a status schema holding only
 * conditions[] with type, status, reason and message: every other field is
 * pruned by the API server. So the figures travel in the reason
 * ("InSync:12,OutOfSync:2", which the reason pattern allows) and in the
 * bounded message. Our own CRD (crds/) keeps that status schema unchanged
 * (it adds only the status subresource and printer columns), so the
 * operator writes the same four fields on both: no counters, no
 * lastTransitionTime, no observedGeneration (the operator calls
 * status_merge_conditions with timestamps off).
 */
#ifndef MM_CORE_STATUS_H
#define MM_CORE_STATUS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Condition types of ours, distinct from Kuma's own. */
#define STATUS_COND_IN_SYNC "meshmetric.kuma.io/DataplanesInSync"
#define STATUS_COND_VALID "meshmetric.kuma.io/Valid"

/* Messages are cut to this many bytes (the CRD allows 32768). */
#define STATUS_MESSAGE_MAX 1024

/* ---- one pod ---------------------------------------------------------------------- */

enum pod_sync {
    POD_SYNC_IN_SYNC = 0,
    POD_SYNC_NOT_APPLIED,     /* a config applies but the pod was never patched */
    POD_SYNC_OUTDATED,        /* patched with another config than the policies ask for now */
    POD_SYNC_DATAPLANE_DRIFT, /* Kuma's Dataplane differs from the view the webhook derived */
};

struct pod_sync_input {
    const char *recorded_hash; /* the pod's meshmetric.kuma.io/config-hash, NULL when absent */
    const char *want_hash;     /* the hash of the config the policies ask for now */
    bool want_empty;           /* no metrics config applies (nothing to patch) */
    const char *drift;         /* how Kuma's Dataplane differs from the derived view, or NULL */
};

/* Classify a pod. A pod without config and without a record is in sync. */
enum pod_sync status_pod_sync(const struct pod_sync_input *in);

/* The Event reason for a state: "MetricsConfigApplied", "MetricsConfigNotApplied", ... */
const char *status_pod_reason(enum pod_sync s);

/* A short phrase for lists: "created while the webhook was down", "config changed", ... */
const char *status_pod_phrase(enum pod_sync s);

/* ---- one MeshMetric ----------------------------------------------------------------- */

/* A dataplane a MeshMetric selects, for its figures. */
struct status_member {
    const char *name; /* "namespace/pod" */
    enum pod_sync sync;
};

struct status_figures {
    size_t total, in_sync, out_of_sync;
};

/*
 * The conditions of ours for a MeshMetric: valid (NULL errors) or not (Kuma's
 * joined errors), and the figures over members (any order; sorted by name in
 * the message, which lists at most as many out-of-sync pods as fit in
 * STATUS_MESSAGE_MAX). A new array of {type, status, reason, message}.
 * figures (may be NULL) receives the counts.
 */
json_t *status_conditions(const char *errors, const struct status_member *members, size_t n,
                          struct status_figures *figures);

/*
 * Merge wanted (conditions of ours) into current (status.conditions as read,
 * may be NULL): conditions of other types are kept as they are and where they
 * are; ours are replaced in place or appended. With timestamps, each of ours
 * carries lastTransitionTime (kept from current while its status is
 * unchanged, else now_rfc3339) and observedGeneration (generation >= 0).
 * *changed says whether the result differs from current in anything but
 * lastTransitionTime of an unchanged condition. New reference.
 */
json_t *status_merge_conditions(const json_t *current, const json_t *wanted, bool timestamps,
                                const char *now_rfc3339, long long generation, bool *changed);

/* "InSync:12,OutOfSync:2"-style reason text of figures into buf (borrowed). */
const char *status_figures_reason(const struct status_figures *f, char *buf, size_t len);

#endif
