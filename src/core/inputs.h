/*
 * The objects the engine reads besides the pod: MeshMetric, Mesh, Namespace
 * and Service resources. A policy_set owns them; a policy_snapshot is an
 * immutable, reference-counted policy_set that a policy_source hands out,
 * so the webhook can evaluate a pod while the source swaps in a new set
 * (the directory watcher now, the operator's informer caches later).
 */
#ifndef MM_CORE_INPUTS_H
#define MM_CORE_INPUTS_H

#include <jansson.h>
#include <stdbool.h>

#include "core/memo.h"
#include "core/violations.h"
#include "util/error.h"

struct policy_set {
    json_t *meshmetrics; /* array of MeshMetric objects, defaults applied */
    json_t *meshes;      /* array of Mesh objects, defaults applied */
    json_t *namespaces;  /* array of Namespace objects */
    json_t *services;    /* array of Service objects */
    struct memo *memo;   /* merge cache (core/memo.h); NULL = none. Snapshots have one. */
    struct match_index *index; /* selection index (core/match.h); NULL = none. Snapshots have one. */
};

void policy_set_init(struct policy_set *s);
void policy_set_cleanup(struct policy_set *s);

/*
 * Add one Kubernetes object by its kind (takes the reference on every path).
 * MeshMetric and Mesh get defaults applied; a List's items are added one by
 * one. Other kinds are ignored and reported through *ignored (may be NULL).
 * A MeshMetric/Mesh with missing metadata.name is an MM_ERR_INVALID error.
 */
enum mm_status policy_set_add(struct policy_set *s, json_t *obj, bool *ignored,
                              struct mm_error *err) MM_WUR;

/* Namespace object by name, or NULL. Borrowed. */
const json_t *policy_set_namespace(const struct policy_set *s, const char *name);
/* Mesh object by name, or NULL. Borrowed. */
const json_t *policy_set_mesh(const struct policy_set *s, const char *name);

struct policy_snapshot;

/*
 * Wrap a set (its contents are moved; s is left empty). Refcount 1. The
 * snapshot gets a merge memo: the set must not change from here on.
 */
struct policy_snapshot *policy_snapshot_create(struct policy_set *s);
struct policy_snapshot *policy_snapshot_ref(struct policy_snapshot *snap);
void policy_snapshot_unref(struct policy_snapshot *snap); /* NULL is a no-op */
/* Borrowed; valid while the caller holds a reference. */
const struct policy_set *policy_snapshot_set(const struct policy_snapshot *snap);

/*
 * Where live policies come from. The webhook only knows this interface;
 * main hands it the directory source (server/) or the operator's cache.
 */
struct policy_source {
    /* A new reference to the current snapshot, never NULL. */
    struct policy_snapshot *(*acquire)(void *ctx);
    /* True once the source has loaded (or synced) at least once. */
    bool (*ready)(void *ctx);
    void *ctx;
};

#endif
