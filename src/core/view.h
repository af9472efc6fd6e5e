/*
 * The policy view: everything the engine reads besides the pod, frozen.
 * Policies (loaded by policy_load), Namespaces, Services, the metadata of
 * ReplicaSets and Jobs (workload names), indexed by mesh and namespace so
 * that evaluating a pod looks only at what can concern it.
 *
 * A view is built once by a view_builder, never changes afterwards, and is
 * reference-counted: a policy source (core/source.h) hands out references,
 * swaps in a new view (a higher generation) when anything changes, and
 * readers keep the view they acquired for as long as they need it, without
 * locks. Each view carries the webhook's accelerators (the merge memo).
 */
#ifndef MM_CORE_VIEW_H
#define MM_CORE_VIEW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"
#include "core/violations.h"
#include "util/error.h"

struct memo;
struct policy_view;
struct view_builder;

struct view_options {
    const char *system_namespace; /* "kuma-system" when NULL; copied */
    const char *zone;             /* "default" when NULL; copied */
    bool no_memo;                 /* no merge memo (benchmarks of the unmemoised path) */
};

/* A policy left out of the view because Kuma would reject it. */
struct view_rejection {
    char *kind;   /* "MeshMetric" or "Mesh" */
    char *id;     /* "namespace/name", or "Mesh/name" */
    char *errors; /* Kuma's joined message: "field: msg; field: msg" */
};

/*
 * Something about a policy that makes it select nothing although it is valid
 * (e.g. it carries another zone's kuma.io/zone label: --zone does not match
 * the zone Kuma stamped on it). Shown by /readyz?verbose and logged once.
 */
struct view_note {
    char *id;   /* "namespace/name" */
    char *text; /* one sentence */
};

/* Object counts, for metrics and logs. */
struct view_counts {
    size_t meshmetrics, meshes, namespaces, services, owners, rejected;
};

/* ---- building ---------------------------------------------------------------- */

struct view_builder *view_builder_create(const struct view_options *opt);
void view_builder_free(struct view_builder *b); /* NULL is a no-op */

/*
 * Add one object (borrowed; what the view keeps is copied or referenced):
 * MeshMetric and Mesh go through policy_load (an invalid one is left out and
 * recorded as a rejection, not an error); Namespace, Service, ReplicaSet and
 * Job are kept (ReplicaSets and Jobs only for their metadata); a List's items
 * are added one by one. Other kinds set *ignored (may be NULL). MM_ERR_TYPE
 * when obj is no object, has no kind or name, or a List has no items; err
 * names the field (items[i]. prefixed for List items).
 */
enum mm_status view_builder_add(struct view_builder *b, const json_t *obj, bool *ignored,
                                struct mm_error *err) MM_WUR;

/* Add a loaded policy (takes the reference). */
void view_builder_add_policy(struct view_builder *b, struct policy *p);

/*
 * Add a Namespace, Service, ReplicaSet or Job object as the caller's caches
 * keep it (shared: takes a reference; the object must never change again).
 */
void view_builder_add_object(struct view_builder *b, const char *kind, json_t *obj);

/* Record a policy left out (copied strings). */
void view_builder_reject(struct view_builder *b, const char *kind, const char *id,
                         const char *errors);

/* Freeze: the view of generation `generation` (refcount 1). Frees b. */
struct policy_view *view_builder_finish(struct view_builder *b, uint64_t generation);

/* An empty view (no policies) of generation 0. */
struct policy_view *view_empty(const struct view_options *opt);

/* ---- using --------------------------------------------------------------------- */

struct policy_view *view_ref(struct policy_view *v);
void view_unref(struct policy_view *v); /* NULL is a no-op */

uint64_t view_generation(const struct policy_view *v);
const char *view_system_namespace(const struct policy_view *v);
const char *view_zone(const struct policy_view *v);
void view_counts(const struct policy_view *v, struct view_counts *out);

/*
 * The MeshMetrics that can apply to a pod of namespace ns in mesh: those of
 * the system namespace and those of ns. *out gets borrowed pointers, *index
 * (may be NULL) each one's position in view_policies() (a stable key for the
 * memo). Returns the count.
 */
size_t view_candidates(const struct policy_view *v, const char *mesh, const char *ns,
                       const struct policy *const **out, const uint32_t **index);

/* Every MeshMetric in the view, in a stable order (mesh, namespace, name). Borrowed. */
size_t view_policies(const struct policy_view *v, const struct policy *const **out);

/* The Mesh named name, or NULL. Borrowed. */
const struct policy *view_mesh(const struct policy_view *v, const char *name);

/* Every Mesh, sorted by name. Borrowed. */
size_t view_meshes(const struct policy_view *v, const struct policy *const **out);

/* The Namespace object named name, or NULL. Borrowed. */
const json_t *view_namespace(const struct policy_view *v, const char *name);

/* The Services of namespace ns (borrowed objects), sorted by name. */
size_t view_services(const struct policy_view *v, const char *ns, const json_t *const **out);

/* A ReplicaSet's or Job's object (kind "ReplicaSet" or "Job") in ns, or NULL. Borrowed. */
const json_t *view_owner(const struct policy_view *v, const char *kind, const char *ns,
                         const char *name);

/* Notes about valid policies (see struct view_note). Borrowed. */
size_t view_notes(const struct policy_view *v, const struct view_note **out);

/* The policies left out because Kuma would reject them. Borrowed. */
size_t view_rejections(const struct policy_view *v, const struct view_rejection **out);

/*
 * What is new in fresh compared with old (NULL: nothing before): the rejections (and notes)
 * whose id and text old does not have, as indexes into view_rejections(fresh) (view_notes).
 * *idx is allocated (free it; NULL when none). For logging each one once, across rebuilds.
 */
size_t view_new_rejections(const struct policy_view *old, const struct policy_view *fresh,
                           size_t **idx);
size_t view_new_notes(const struct policy_view *old, const struct policy_view *fresh, size_t **idx);

/* The view's merge memo (thread-safe, core/memo.h). Borrowed. */
struct memo *view_memo(const struct policy_view *v);

#endif
