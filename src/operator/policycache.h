/*
 * The live policy view: the cluster counterpart of server/policydir.h, a
 * struct policy_source (core/source.h) built from the informer caches.
 *
 *  - Every MeshMetric and Mesh goes through policy_load once per object
 *    version, on the reflector's thread, as the store's decorator: the
 *    loaded struct policy (or, for an object Kuma would reject, its joined
 *    errors) lives in the cache entry, and views share it. An invalid
 *    object is logged once per version and becomes a view rejection
 *    (view_rejections()).
 *  - A change to a MeshMetric, Mesh, Namespace, Service, ReplicaSet or Job
 *    marks the view dirty; a builder thread builds a new view generation
 *    debounce_ms after the last change, and at most max_delay_ms after the
 *    first unbuilt change under a constant stream; it publishes the view
 *    through util/published.h. Views take references to the loaded
 *    policies and to the stores' trimmed, immutable Namespace, Service,
 *    ReplicaSet and Job objects: building one copies no document.
 *  - ready() is true once every store the view reads completed its first
 *    list AND a view built after that is published (the webhook and /readyz
 *    wait for it): it turns true just after that view is published, never
 *    before, so whoever sees ready() acquires a view of synced caches. The
 *    first view is built as soon as the last store syncs, without the
 *    debounce.
 *
 * Extension point: contributors (policycache_add_contributor) add more of
 * a store's entries to each view and rebuild it when that store changes.
 * The discovery server will register the pod store this way once the view
 * has a place for pods (core/view.h).
 *
 * Threads: the store callbacks only mark and signal (a mutex and a
 * condition variable); the builder thread reads the stores through
 * cache_list (references, no store lock held while building).
 */
#ifndef MM_OPERATOR_POLICYCACHE_H
#define MM_OPERATOR_POLICYCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/policy.h"
#include "core/source.h"
#include "core/view.h"
#include "operator/cache.h"
#include "util/error.h"

struct policycache;

/* The stores a view reads (borrowed; they must outlive the policy cache). */
struct policycache_stores {
    struct cache_store *meshmetrics; /* required */
    struct cache_store *meshes;      /* may be NULL (no Mesh CRD) */
    struct cache_store *namespaces;  /* required */
    struct cache_store *services;    /* required */
    struct cache_store *replicasets; /* may be NULL: workload names assumed (core/dataplane.c) */
    struct cache_store *jobs;        /* may be NULL */
};

/* The stores of cs (NULL members for kinds it does not run). */
void policycache_stores_from(struct caches *cs, struct policycache_stores *out);

struct policycache_options {
    const char *system_namespace; /* "kuma-system" when NULL; copied */
    const char *zone;             /* "default" when NULL; copied */
    unsigned debounce_ms;         /* 100; 0: the default */
    unsigned max_delay_ms;        /* 1000; 0: the default */
};

/*
 * A policy cache over stores (copied). Registers a decorator on the
 * MeshMetric and Mesh stores and a handler on every store: call it after
 * caches_create and before caches_start. MM_ERR_INVALID when a required
 * store is missing; MM_ERR_TOO_BIG when a store has no handler slot left.
 */
enum mm_status policycache_create(const struct policycache_stores *stores,
                                  const struct policycache_options *opt, struct policycache **out,
                                  struct mm_error *err) MM_WUR;

/* Start / stop the builder thread (stop: joins it; idempotent). */
enum mm_status policycache_start(struct policycache *pc, struct mm_error *err) MM_WUR;
void policycache_stop(struct policycache *pc);

/*
 * Stop and free. The stores must not call it any more (stop the caches
 * first). Views held by readers stay valid. NULL is a no-op.
 */
void policycache_free(struct policycache *pc);

/* The policy_source (ctx = pc), valid while pc lives. */
struct policy_source policycache_source(struct policycache *pc);

/*
 * Build and publish a view now when anything changed since the last one
 * (force: always), in the calling thread; returns the current generation.
 * For tests and for a reconciler that needs the latest view at once.
 */
uint64_t policycache_flush(struct policycache *pc, bool force);

/* Views built so far / failed, and the unix time of the last success (0: none; may be NULL). */
void policycache_reload_counts(const struct policycache *pc, uint64_t *ok, uint64_t *failed,
                               int64_t *last_ok);

/* The loaded form of a MeshMetric or Mesh entry (entry->extra of those stores). */
struct policycache_loaded {
    struct policy *policy; /* NULL when Kuma would reject the object */
    const char *kind;      /* "MeshMetric" or "Mesh" */
    char *id;              /* "namespace/name" or "Mesh/name" */
    char *errors;          /* the joined violations when rejected, else NULL */
};

/*
 * Extension point: add entries of store to every view. add is called by
 * the builder for each entry (borrowed); a change in store marks the view
 * dirty. Before policycache_start only. MM_ERR_TOO_BIG past 4 contributors
 * or when the store has no handler slot left.
 */
typedef void (*policycache_add_fn)(void *ctx, struct view_builder *b, const struct cache_entry *e);
enum mm_status policycache_add_contributor(struct policycache *pc, struct cache_store *store,
                                           policycache_add_fn add, void *ctx) MM_WUR;

#endif
