/*
 * The operator's informer caches: one store per resource, fed by a k8s
 * reflector (k8s/reflector.h), read by the policy view (policycache.h) and
 * the reconcilers. controller-runtime's informer cache, in C:
 *
 *   reflector thread --handler--> store (hash by "namespace/name", index by namespace)
 *                                   |--> change callbacks (added/updated/deleted, old and new)
 *                                   |--> readers: cache_get / cache_list / cache_foreach
 *
 * Entries are immutable and reference-counted: an update builds a new entry
 * and swaps it in whole, so a reader that holds an entry never sees it
 * change. What an entry keeps depends on the kind (docs/operator-caches.md):
 * a trimmed, immutable jansson object (metadata without managedFields, plus
 * what the view or the reconcilers read), or for pods a compact
 * podstore_pod (podstore.h). Only pods with a kuma-sidecar container are
 * kept; a pod that loses or gains the sidecar is deleted from or added to
 * the store (no tombstones).
 *
 * Every (re)list replaces the store (mark and sweep): each listed object is
 * marked, and when the list completes every unmarked object is deleted and
 * reported as a delete. A relisted object whose resourceVersion and uid are
 * unchanged keeps its entry and reports nothing. A list that fails part way
 * (replace_abort) leaves the objects it delivered applied (each is a real,
 * newer state of its object) and deletes nothing; the next complete list
 * settles the rest.
 *
 * Locking: one read-write lock per store (writers preferred). The
 * reflector's thread is the only writer: it builds a new entry (trimming,
 * packing, the decorator) without the lock, takes the write lock only to
 * swap the entry in, and calls the change callbacks after releasing it.
 * Readers take the read lock only to find entries and take references;
 * nobody calls out while holding it. So a callback may read any store.
 *
 * Memory: the reflector streams lists item by item (k8s/liststream.h), so
 * no list is ever one tree; each pod is kept as the few fields the engine
 * reads (operator/podstore.h), about 1 KB (docs/operator-caches.md,
 * "Memory"). Out of memory aborts (util/xalloc.h).
 */
#ifndef MM_OPERATOR_CACHE_H
#define MM_OPERATOR_CACHE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s/client.h"
#include "k8s/reflector.h"
#include "operator/podstore.h"
#include "util/error.h"

/* The cached resources. */
enum cache_kind {
    CACHE_MESHMETRICS = 0, /* kuma.io/v1alpha1 meshmetrics */
    CACHE_MESHES,          /* kuma.io/v1alpha1 meshes (cluster-scoped; optional) */
    CACHE_NAMESPACES,      /* v1 namespaces */
    CACHE_SERVICES,        /* v1 services */
    CACHE_PODS,            /* v1 pods with a kuma-sidecar (compact) */
    CACHE_REPLICASETS,     /* apps/v1 replicasets (metadata) */
    CACHE_JOBS,            /* batch/v1 jobs (metadata) */
    CACHE_DATAPLANES,      /* kuma.io/v1alpha1 dataplanes (optional) */
    CACHE_KIND_COUNT,
};

#define CACHE_ALL_KINDS ((1u << CACHE_KIND_COUNT) - 1u)
#define CACHE_KIND_BIT(k) (1u << (unsigned)(k))

/* What each kind is. Static. */
struct cache_kind_info {
    const char *name; /* the plural, e.g. "meshmetrics" (logs, metrics labels) */
    const char *kind; /* e.g. "MeshMetric" */
    struct k8s_resource res;
    bool namespaced;
    bool optional; /* watched only when the server serves it (a Kuma CRD) */
};
const struct cache_kind_info *cache_kind_info(enum cache_kind k);

/*
 * One cached object version. Every member is immutable; strings and objects
 * are borrowed from the entry and live as long as a reference to it.
 */
struct cache_entry {
    const char *key;       /* "namespace/name", or "name" when cluster-scoped */
    const char *namespace; /* "" when cluster-scoped */
    const char *name;
    const char *uid;                /* "" when absent */
    const char *resource_version;   /* "" when absent */
    const json_t *object;           /* the trimmed object; NULL in the pod store (unless full) */
    const struct podstore_pod *pod; /* the pod store's compact pod; NULL elsewhere */
    const void *extra;              /* what the store's decorator made (may be NULL) */
    /* private */
    atomic_int refs_;
    void (*extra_free_)(void *extra);
};

/* A new reference to e (a const pointer: the count is not part of the value). */
const struct cache_entry *cache_entry_ref(const struct cache_entry *e);
/* Drop a reference. NULL is a no-op. */
void cache_entry_unref(const struct cache_entry *e);

/* ---- one store -------------------------------------------------------------------- */

struct cache_store;

struct cache_store_options {
    /* Keep each received object whole (pods too, as jansson trees): the bench's baseline. */
    bool keep_full;
};

/* An empty store for kind (not synced). opt may be NULL. */
struct cache_store *cache_store_create(enum cache_kind kind, const struct cache_store_options *opt);
/* Free the store and its references; nothing may feed or read it any more. NULL is a no-op. */
void cache_store_free(struct cache_store *s);

enum cache_kind cache_store_kind(const struct cache_store *s);

enum cache_change {
    CACHE_ADDED = 0,
    CACHE_UPDATED,
    CACHE_DELETED,
};

/* "added", "updated", "deleted". */
const char *cache_change_name(enum cache_change c);

/*
 * Callbacks, called on the feeding (reflector) thread, one at a time, in
 * order, after the store's lock is released: they may read any store. old
 * and now are borrowed for the call (cache_entry_ref to keep one): ADDED has
 * old NULL, DELETED has now NULL. synced is called after every complete
 * (re)list, first true the first time. A callback must not block for long
 * (enqueue work, signal a thread).
 */
struct cache_handler {
    void *ctx;
    void (*changed)(void *ctx, enum cache_change what, const struct cache_entry *old,
                    const struct cache_entry *now);
    void (*synced)(void *ctx, bool first);
};

#define CACHE_MAX_HANDLERS 8

/*
 * Register h (copied). Only before the store is fed (before caches_start):
 * the handler list is read without a lock. MM_ERR_TOO_BIG past
 * CACHE_MAX_HANDLERS.
 */
enum mm_status cache_store_add_handler(struct cache_store *s, const struct cache_handler *h) MM_WUR;

/*
 * A decorator computes something once per object version, on the feeding
 * thread, before the entry is published: fn gets the new entry (everything
 * but extra set) and returns entry->extra (may be NULL), freed with free_fn
 * when the entry goes. The policy cache loads MeshMetrics and Meshes this
 * way. Only before the store is fed.
 */
typedef void *(*cache_decorate_fn)(void *ctx, const struct cache_entry *e);
void cache_store_set_decorator(struct cache_store *s, cache_decorate_fn fn,
                               void (*free_fn)(void *extra), void *ctx);

/*
 * The reflector handler that feeds s (ctx = s): replace_begin/item/end/abort,
 * add, update, delete, synced. Tests call these members directly.
 */
struct k8s_reflector_handler cache_store_reflector_handler(struct cache_store *s);

/* ---- reading (any thread) ------------------------------------------------------------ */

/*
 * The entry of namespace/name (namespace NULL or "" for a cluster-scoped
 * object): a new reference (cache_entry_unref it), or NULL.
 */
const struct cache_entry *cache_get(struct cache_store *s, const char *namespace, const char *name);

/*
 * References to every entry of namespace ns (NULL: every entry; "": the
 * cluster-scoped ones), in no particular order, as one consistent snapshot.
 * *out is a new array (NULL when there are none); free it with
 * cache_list_free. Returns the count.
 */
size_t cache_list(struct cache_store *s, const char *ns, const struct cache_entry ***out);
void cache_list_free(const struct cache_entry **list, size_t n);

/*
 * Call fn for every entry of ns (as cache_list) until it returns false. The
 * entries are a snapshot taken under the read lock; fn runs without it.
 */
typedef bool (*cache_visit_fn)(void *ctx, const struct cache_entry *e);
void cache_foreach(struct cache_store *s, const char *ns, cache_visit_fn fn, void *ctx);

size_t cache_count(struct cache_store *s);
/* True once a list completed (the first sync). */
bool cache_synced(const struct cache_store *s);

/*
 * True while a (re)list is being applied (replace_begin to replace_end or
 * replace_abort): the store mixes the old and the new list and deletions are
 * not applied yet, so a reconciler computing totals (a status) waits.
 */
bool cache_store_replacing(const struct cache_store *s);

struct cache_stats {
    size_t objects; /* entries now */
    size_t bytes;   /* approximate heap the entries hold (podstore_size + entry) */
    uint64_t added; /* change callbacks, by kind of change */
    uint64_t updated;
    uint64_t deleted;
    uint64_t unchanged; /* relisted objects whose resourceVersion and uid were the same */
    uint64_t skipped;   /* received objects not kept (pods without kuma-sidecar, no name) */
    uint64_t lists;     /* complete (re)lists */
    uint64_t aborted;   /* lists that failed part way */
    bool synced;
};
void cache_stats(const struct cache_store *s, struct cache_stats *out);

/* ---- the set of stores, each fed by its reflector ------------------------------------ */

struct caches;

struct caches_options {
    unsigned kinds;        /* CACHE_KIND_BIT mask of the stores to run; 0: all */
    const char *namespace; /* NULL or "": every namespace (cluster-scoped kinds always all) */
    bool keep_full_pods;   /* baseline for the bench: pods as whole jansson trees */
    struct k8s_reflector_options reflector; /* applied to every reflector (name, namespace
                                               are set per kind) */
};

/* Defaults: every kind, every namespace, k8s_reflector_options_init(). */
void caches_options_init(struct caches_options *o);

/*
 * The stores of o->kinds (NULL o: defaults), with client c (borrowed: it
 * must outlive the caches). Nothing is sent yet: register handlers and
 * decorators (policycache_create, the reconcilers), then caches_start.
 */
enum mm_status caches_create(struct k8s_client *c, const struct caches_options *o,
                             struct caches **out, struct mm_error *err) MM_WUR;

/* The store of kind k, or NULL when k is not in the options' kinds. Borrowed. */
struct cache_store *caches_store(struct caches *cs, enum cache_kind k);

/*
 * Ask the server which optional kinds it serves (a kind it does not serve
 * gets an empty, synced store and no reflector), then start one reflector
 * thread per store. Errors: the discovery request failed (err says which;
 * nothing was started) or a thread could not start (the started ones are
 * stopped again).
 */
enum mm_status caches_start(struct caches *cs, struct mm_error *err) MM_WUR;

/* Stop every reflector (each returns within about a second). Idempotent. */
void caches_stop(struct caches *cs);

/* Stop and free; entries held elsewhere stay valid. NULL is a no-op. */
void caches_free(struct caches *cs);

/* True when the server serves kind k (known after caches_start; true before). */
bool caches_served(const struct caches *cs, enum cache_kind k);

/* True when every store has completed its first list. */
bool caches_synced(struct caches *cs);

/*
 * True when every reflector is current (k8s_reflector_state.current: its last list succeeded or
 * its watch is open), so the stores follow the server. False while one cannot list or watch:
 * its store still holds what it last saw, which may be far from the server's objects (after an
 * outage, a restore from backup). stale (may be NULL) gets the plurals of those that are not,
 * comma-separated.
 */
bool caches_current(struct caches *cs, char *stale, size_t stale_size);

/* Wait until caches_synced or timeout_ms passed; returns caches_synced(). */
bool caches_wait_synced(struct caches *cs, unsigned timeout_ms);

/* The reflector's state of kind k (zeroed when it has none). */
void caches_reflector_state(struct caches *cs, enum cache_kind k, struct k8s_reflector_state *out);

#endif
