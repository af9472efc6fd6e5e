/* Informer caches: stores fed by reflectors (see cache.h and docs/operator-caches.md). */
#include "operator/cache.h"

#include <errno.h>
#include <pthread.h>
#ifdef __GLIBC__
#endif
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#define LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"

static const struct cache_kind_info kinds[CACHE_KIND_COUNT] = {
    [CACHE_MESHMETRICS] =
        {"meshmetrics", "MeshMetric", {"kuma.io", "v1alpha1", "meshmetrics"}, true, false},
    [CACHE_MESHES] = {"meshes", "Mesh", {"kuma.io", "v1alpha1", "meshes"}, false, true},
    [CACHE_NAMESPACES] = {"namespaces", "Namespace", {"", "v1", "namespaces"}, false, false},
    [CACHE_SERVICES] = {"services", "Service", {"", "v1", "services"}, true, false},
    [CACHE_PODS] = {"pods", "Pod", {"", "v1", "pods"}, true, false},
    /* Optional too: every cluster serves them, but without them the engine still names
     * workloads (it assumes what Kuma would find, and says so). */
    [CACHE_REPLICASETS] = {"replicasets", "ReplicaSet", {"apps", "v1", "replicasets"}, true, true},
    [CACHE_JOBS] = {"jobs", "Job", {"batch", "v1", "jobs"}, true, true},
    [CACHE_DATAPLANES] =
        {"dataplanes", "Dataplane", {"kuma.io", "v1alpha1", "dataplanes"}, true, true},
};

const struct cache_kind_info *cache_kind_info(enum cache_kind k)
{
    return (unsigned)k < CACHE_KIND_COUNT ? &kinds[k] : NULL;
}

const char *cache_change_name(enum cache_change c)
{
    switch (c) {
    case CACHE_ADDED:
        return "added";
    case CACHE_UPDATED:
        return "updated";
    case CACHE_DELETED:
        return "deleted";
    }
    return "?";
}

/* ---- a small intrusive hash map (string keys, chaining) ----------------------------- */

struct hnode {
    struct hnode *next;
    uint32_t hash;
    const char *key; /* borrowed from the node's owner */
};

struct hmap {
    struct hnode **b;
    size_t nb; /* a power of two */
    size_t n;
};

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static void hmap_init(struct hmap *m)
{
    m->nb = 16;
    m->b = xcalloc(m->nb, sizeof *m->b);
    m->n = 0;
}

static void hmap_cleanup(struct hmap *m)
{
    free(m->b);
    memset(m, 0, sizeof *m);
}

static struct hnode *hmap_find(const struct hmap *m, const char *key, uint32_t hash)
{
    for (struct hnode *n = m->b[hash & (m->nb - 1)]; n; n = n->next)
        if (n->hash == hash && !strcmp(n->key, key))
            return n;
    return NULL;
}

static void hmap_insert(struct hmap *m, struct hnode *node)
{
    if (m->n >= m->nb) {
        size_t nb = m->nb * 2;
        struct hnode **b = xcalloc(nb, sizeof *b);
        for (size_t i = 0; i < m->nb; i++) {
            struct hnode *n = m->b[i];
            while (n) {
                struct hnode *next = n->next;
                n->next = b[n->hash & (nb - 1)];
                b[n->hash & (nb - 1)] = n;
                n = next;
            }
        }
        free(m->b);
        m->b = b;
        m->nb = nb;
    }
    struct hnode **head = &m->b[node->hash & (m->nb - 1)];
    node->next = *head;
    *head = node;
    m->n++;
}

static void hmap_remove(struct hmap *m, struct hnode *node)
{
    for (struct hnode **at = &m->b[node->hash & (m->nb - 1)]; *at; at = &(*at)->next) {
        if (*at == node) {
            *at = node->next;
            m->n--;
            return;
        }
    }
}

/* ---- entries -------------------------------------------------------------------------- */

const struct cache_entry *cache_entry_ref(const struct cache_entry *e)
{
    struct cache_entry *m = (struct cache_entry *)(uintptr_t)e;
    atomic_fetch_add_explicit(&m->refs_, 1, memory_order_relaxed);
    return e;
}

void cache_entry_unref(const struct cache_entry *e)
{
    if (!e)
        return;
    struct cache_entry *m = (struct cache_entry *)(uintptr_t)e;
    if (atomic_fetch_sub_explicit(&m->refs_, 1, memory_order_acq_rel) != 1)
        return;
    if (m->extra && m->extra_free_)
        m->extra_free_((void *)(uintptr_t)m->extra);
    json_decref((json_t *)(uintptr_t)m->object);
    podstore_free((struct podstore_pod *)(uintptr_t)m->pod);
    free(m);
}

static const char *meta_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
    return s ? s : "";
}

/* ---- trimming: what each kind keeps (docs/operator-caches.md) -------------------------- */

enum meta_level {
    META_OBJECT, /* everything but managedFields and the last-applied annotation */
    META_OWNER,  /* what a workload name needs: identity, labels, ownerReferences */
};

static void copy_member(json_t *to, const json_t *from, const char *key)
{
    json_t *v = json_object_get(from, key);
    if (v)
        json_object_set(to, key, v); /* shared: the received object is never changed */
}

static json_t *trim_metadata(const json_t *md, enum meta_level level)
{
    json_t *out = json_object();
    static const char *const identity[] = {
        "name",  "namespace", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
        "labels"};
    for (size_t i = 0; i < sizeof identity / sizeof *identity; i++)
        copy_member(out, md, identity[i]);
    if (level == META_OWNER) {
        size_t i;
        json_t *o;
        json_t *owners = json_array();
        json_array_foreach(json_object_get(md, "ownerReferences"), i, o)
        {
            json_t *ref = json_object();
            copy_member(ref, o, "apiVersion");
            copy_member(ref, o, "kind");
            copy_member(ref, o, "name");
            copy_member(ref, o, "uid");
            copy_member(ref, o, "controller");
            json_array_append_new(owners, ref);
        }
        if (json_array_size(owners))
            json_object_set_new(out, "ownerReferences", owners);
        else
            json_decref(owners);
        return out;
    }
    copy_member(out, md, "generation");
    copy_member(out, md, "ownerReferences");
    copy_member(out, md, "finalizers");
    const json_t *ann = json_object_get(md, "annotations");
    if (json_is_object(ann)) {
        if (json_object_get(ann, LAST_APPLIED)) {
            json_t *copy = json_object();
            const char *k;
            json_t *v;
            json_object_foreach((json_t *)ann, k, v)
            {
                if (strcmp(k, LAST_APPLIED))
                    json_object_set(copy, k, v);
            }
            json_object_set_new(out, "annotations", copy);
        } else {
            json_object_set(out, "annotations", (json_t *)ann);
        }
    }
    return out;
}

/* The object a store keeps for obj (a new reference). */
static json_t *trim(enum cache_kind kind, const json_t *obj)
{
    const struct cache_kind_info *info = &kinds[kind];
    json_t *out = json_object();
    const json_t *md = json_object_get(obj, "metadata");
    switch (kind) {
    case CACHE_MESHMETRICS:
    case CACHE_MESHES:
    case CACHE_DATAPLANES: {
        /* Policies and Kuma's Dataplanes: every top-level member (spec, mesh, status). */
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)obj, k, v)
        {
            if (strcmp(k, "metadata"))
                json_object_set(out, k, v);
        }
        json_object_set_new(out, "metadata", trim_metadata(md, META_OBJECT));
        break;
    }
    case CACHE_NAMESPACES:
        json_object_set_new(out, "metadata", trim_metadata(md, META_OBJECT));
        copy_member(out, obj, "status");
        break;
    case CACHE_SERVICES: {
        /* What core/dataplane.c reads: selector, ports, clusterIP (headless), type. */
        json_object_set_new(out, "metadata", trim_metadata(md, META_OBJECT));
        const json_t *spec = json_object_get(obj, "spec");
        json_t *s = json_object();
        static const char *const keep[] = {"selector", "ports", "clusterIP", "type",
                                           "externalName"};
        for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
            copy_member(s, spec, keep[i]);
        json_object_set_new(out, "spec", s);
        break;
    }
    case CACHE_REPLICASETS:
    case CACHE_JOBS:
    case CACHE_PODS: /* only with keep_full off and a caller that wants JSON: not used */
    case CACHE_KIND_COUNT:
        json_object_set_new(out, "metadata", trim_metadata(md, META_OWNER));
        break;
    }
    /* List items may come without apiVersion and kind: always set them. */
    const char *gv_group = info->res.group;
    if (!json_object_get(out, "apiVersion"))
        json_object_set_new(out, "apiVersion",
                            gv_group[0] ? json_sprintf("%s/%s", gv_group, info->res.version)
                                        : json_string(info->res.version));
    json_object_set_new(out, "kind", json_string(info->kind));
    return out;
}

/* ---- the store -------------------------------------------------------------------------- */

struct nsbucket;

struct onode {
    struct hnode h; /* key: e->key */
    const struct cache_entry *e;
    uint64_t mark; /* written and read by the feeding thread only */
    struct nsbucket *nsb;
    size_t ns_pos;
};

struct nsbucket {
    struct hnode h; /* key: ns */
    char *ns;
    struct onode **items;
    size_t n, cap;
};

struct cache_store {
    enum cache_kind kind;
    const struct cache_kind_info *info;
    bool keep_full;

    pthread_rwlock_t lock; /* guards objects, spaces, bytes */
    struct hmap objects;   /* key -> struct onode */
    struct hmap spaces;    /* namespace -> struct nsbucket */
    size_t bytes;

    /* feeding thread only */
    uint64_t mark;
    size_t replace_items; /* objects the current (re)list delivered */

    /* set before feeding starts, read without a lock afterwards */
    struct cache_handler handlers[CACHE_MAX_HANDLERS];
    size_t n_handlers;
    cache_decorate_fn decorate;
    void (*decorate_free)(void *);
    void *decorate_ctx;

    atomic_bool synced;
    atomic_bool replacing; /* between replace_begin and replace_end/abort */
    atomic_ullong added, updated, deleted, unchanged, skipped, lists, aborted;
};

struct cache_store *cache_store_create(enum cache_kind kind, const struct cache_store_options *opt)
{
    struct cache_store *s = xcalloc(1, sizeof *s);
    s->kind = kind;
    s->info = &kinds[kind];
    s->keep_full = opt && opt->keep_full;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* One writer with short critical sections: do not let a stream of readers starve it. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    hmap_init(&s->objects);
    hmap_init(&s->spaces);
    atomic_init(&s->synced, false);
    atomic_init(&s->replacing, false);
    atomic_init(&s->added, 0);
    atomic_init(&s->updated, 0);
    atomic_init(&s->deleted, 0);
    atomic_init(&s->unchanged, 0);
    atomic_init(&s->skipped, 0);
    atomic_init(&s->lists, 0);
    atomic_init(&s->aborted, 0);
    return s;
}

void cache_store_free(struct cache_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->objects.nb; i++) {
        struct hnode *n = s->objects.b[i];
        while (n) {
            struct hnode *next = n->next;
            struct onode *o = (struct onode *)n;
            cache_entry_unref(o->e);
            free(o);
            n = next;
        }
    }
    for (size_t i = 0; i < s->spaces.nb; i++) {
        struct hnode *n = s->spaces.b[i];
        while (n) {
            struct hnode *next = n->next;
            struct nsbucket *b = (struct nsbucket *)n;
            free(b->items);
            free(b->ns);
            free(b);
            n = next;
        }
    }
    hmap_cleanup(&s->objects);
    hmap_cleanup(&s->spaces);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

enum cache_kind cache_store_kind(const struct cache_store *s)
{
    return s->kind;
}

enum mm_status cache_store_add_handler(struct cache_store *s, const struct cache_handler *h)
{
    if (s->n_handlers == CACHE_MAX_HANDLERS)
        return MM_ERR_TOO_BIG;
    s->handlers[s->n_handlers++] = *h;
    return MM_OK;
}

void cache_store_set_decorator(struct cache_store *s, cache_decorate_fn fn,
                               void (*free_fn)(void *extra), void *ctx)
{
    s->decorate = fn;
    s->decorate_free = free_fn;
    s->decorate_ctx = ctx;
}

static void notify(struct cache_store *s, enum cache_change what, const struct cache_entry *old,
                   const struct cache_entry *now)
{
    atomic_ullong *counter = what == CACHE_ADDED     ? &s->added
                             : what == CACHE_UPDATED ? &s->updated
                                                     : &s->deleted;
    atomic_fetch_add(counter, 1);
    for (size_t i = 0; i < s->n_handlers; i++)
        if (s->handlers[i].changed)
            s->handlers[i].changed(s->handlers[i].ctx, what, old, now);
}

/* "ns/name" or "name" into buf (a new string when buf is too small; *heap says so). */
static char *make_key(const struct cache_store *s, const char *ns, const char *name, char *buf,
                      size_t len, bool *heap)
{
    *heap = false;
    int n = s->info->namespaced ? snprintf(buf, len, "%s/%s", ns ? ns : "", name)
                                : snprintf(buf, len, "%s", name);
    if (n >= 0 && (size_t)n < len)
        return buf;
    *heap = true;
    return s->info->namespaced ? xasprintf("%s/%s", ns ? ns : "", name) : xstrdup(name);
}

/* A new entry (refcount 1) for obj under key, or NULL when the store does not keep obj. */
static struct cache_entry *entry_create(struct cache_store *s, const json_t *obj, const char *key)
{
    struct podstore_pod *pod = NULL;
    json_t *kept = NULL;
    if (s->kind == CACHE_PODS) {
        if (!podstore_is_meshed(obj))
            return NULL;
        if (s->keep_full) {
            kept = json_incref((json_t *)(uintptr_t)obj);
        } else {
            struct mm_error err;
            if (podstore_pack(obj, &pod, &err) != MM_OK) {
                LOG(LOG_WARN, "cache %s: pod %s not cached: %s", s->info->name, key, err.message);
                return NULL;
            }
        }
    } else {
        kept = s->keep_full ? json_incref((json_t *)(uintptr_t)obj) : trim(s->kind, obj);
    }
    size_t klen = strlen(key) + 1;
    struct cache_entry *e = xmalloc(sizeof *e + klen);
    memset(e, 0, sizeof *e);
    char *k = (char *)(e + 1);
    memcpy(k, key, klen);
    e->key = k;
    if (pod) {
        e->pod = pod;
        e->namespace = podstore_namespace(pod);
        e->name = podstore_name(pod);
        e->uid = podstore_uid(pod);
        e->resource_version = podstore_resource_version(pod);
    } else {
        e->object = kept;
        e->namespace = s->info->namespaced ? meta_str(kept, "namespace") : "";
        e->name = meta_str(kept, "name");
        e->uid = meta_str(kept, "uid");
        e->resource_version = meta_str(kept, "resourceVersion");
    }
    atomic_init(&e->refs_, 1);
    if (s->decorate) {
        e->extra = s->decorate(s->decorate_ctx, e);
        e->extra_free_ = s->decorate_free;
    }
    return e;
}

static size_t entry_bytes(const struct cache_entry *e)
{
    return sizeof *e + strlen(e->key) + 1 + (e->pod ? podstore_size(e->pod) : 0);
}

/* Namespace index (under the write lock). */
static void ns_add(struct cache_store *s, struct onode *o)
{
    const char *ns = o->e->namespace;
    uint32_t h = hash_str(ns);
    struct nsbucket *b = (struct nsbucket *)hmap_find(&s->spaces, ns, h);
    if (!b) {
        b = xcalloc(1, sizeof *b);
        b->ns = xstrdup(ns);
        b->h.key = b->ns;
        b->h.hash = h;
        hmap_insert(&s->spaces, &b->h);
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->items = xrealloc(b->items, b->cap * sizeof *b->items);
    }
    o->nsb = b;
    o->ns_pos = b->n;
    b->items[b->n++] = o;
}

static void ns_remove(struct cache_store *s, struct onode *o)
{
    struct nsbucket *b = o->nsb;
    struct onode *last = b->items[--b->n];
    b->items[o->ns_pos] = last;
    last->ns_pos = o->ns_pos;
    if (b->n == 0) {
        hmap_remove(&s->spaces, &b->h);
        free(b->items);
        free(b->ns);
        free(b);
    }
    o->nsb = NULL;
}

static void remove_node(struct cache_store *s, struct onode *o)
{
    pthread_rwlock_wrlock(&s->lock);
    hmap_remove(&s->objects, &o->h);
    ns_remove(s, o);
    s->bytes -= entry_bytes(o->e);
    pthread_rwlock_unlock(&s->lock);
    notify(s, CACHE_DELETED, o->e, NULL);
    cache_entry_unref(o->e);
    free(o);
}

/* Add or replace obj (feeding thread). */
static void apply(struct cache_store *s, const json_t *obj)
{
    const char *name = meta_str(obj, "name");
    if (!json_is_object(obj) || !*name) {
        atomic_fetch_add(&s->skipped, 1);
        return;
    }
    char buf[320];
    bool heap = false;
    char *key = make_key(s, meta_str(obj, "namespace"), name, buf, sizeof buf, &heap);
    uint32_t h = hash_str(key);
    struct onode *o = (struct onode *)hmap_find(&s->objects, key, h); /* the only writer */
    if (o && !strcmp(o->e->resource_version, meta_str(obj, "resourceVersion")) &&
        !strcmp(o->e->uid, meta_str(obj, "uid"))) {
        o->mark = s->mark;
        atomic_fetch_add(&s->unchanged, 1);
        goto done;
    }
    struct cache_entry *e = entry_create(s, obj, key);
    if (!e) {
        atomic_fetch_add(&s->skipped, 1);
        if (o) /* e.g. a pod that lost its kuma-sidecar */
            remove_node(s, o);
        goto done;
    }
    if (o) {
        pthread_rwlock_wrlock(&s->lock);
        const struct cache_entry *old = o->e;
        s->bytes = s->bytes - entry_bytes(old) + entry_bytes(e);
        o->e = e;
        o->h.key = e->key;
        pthread_rwlock_unlock(&s->lock);
        o->mark = s->mark;
        notify(s, CACHE_UPDATED, old, e);
        cache_entry_unref(old);
    } else {
        o = xcalloc(1, sizeof *o);
        o->e = e;
        o->h.key = e->key;
        o->h.hash = h;
        o->mark = s->mark;
        pthread_rwlock_wrlock(&s->lock);
        hmap_insert(&s->objects, &o->h);
        ns_add(s, o);
        s->bytes += entry_bytes(e);
        pthread_rwlock_unlock(&s->lock);
        notify(s, CACHE_ADDED, NULL, e);
    }
done:
    if (heap)
        free(key);
}

static void on_delete(void *ctx, json_t *obj)
{
    struct cache_store *s = ctx;
    const char *name = meta_str(obj, "name");
    if (!*name)
        return;
    char buf[320];
    bool heap = false;
    char *key = make_key(s, meta_str(obj, "namespace"), name, buf, sizeof buf, &heap);
    struct onode *o = (struct onode *)hmap_find(&s->objects, key, hash_str(key));
    if (o)
        remove_node(s, o);
    if (heap)
        free(key);
}

static void on_add(void *ctx, json_t *obj)
{
    apply(ctx, obj);
}

static void on_replace_begin(void *ctx)
{
    struct cache_store *s = ctx;
    s->mark++;
    s->replace_items = 0;
    atomic_store(&s->replacing, true);
}

static void on_replace_item(void *ctx, json_t *obj)
{
    struct cache_store *s = ctx;
    s->replace_items++;
    apply(s, obj);
}

/* Delete every object the list just completed did not mark. */
static void sweep(struct cache_store *s)
{
    struct onode **gone = NULL;
    size_t n = 0, cap = 0;
    pthread_rwlock_wrlock(&s->lock);
    for (size_t i = 0; i < s->objects.nb; i++) {
        for (struct hnode *h = s->objects.b[i]; h; h = h->next) {
            struct onode *o = (struct onode *)h;
            if (o->mark == s->mark)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                gone = xrealloc(gone, cap * sizeof *gone);
            }
            gone[n++] = o;
        }
    }
    for (size_t i = 0; i < n; i++) {
        hmap_remove(&s->objects, &gone[i]->h);
        ns_remove(s, gone[i]);
        s->bytes -= entry_bytes(gone[i]->e);
    }
    pthread_rwlock_unlock(&s->lock);
    for (size_t i = 0; i < n; i++) {
        notify(s, CACHE_DELETED, gone[i]->e, NULL);
        cache_entry_unref(gone[i]->e);
        free(gone[i]);
    }
    free(gone);
}

static void on_replace_end(void *ctx, const char *resource_version)
{
    struct cache_store *s = ctx;
    (void)resource_version;
    sweep(s);
    atomic_store(&s->replacing,
                 false); /* before anyone hears of the sync (the bench measures then) */
    bool first = !atomic_exchange(&s->synced, true);
    atomic_fetch_add(&s->lists, 1);
    for (size_t i = 0; i < s->n_handlers; i++)
        if (s->handlers[i].synced)
            s->handlers[i].synced(s->handlers[i].ctx, first);
}

static void on_replace_abort(void *ctx)
{
    struct cache_store *s = ctx;
    atomic_store(&s->replacing, false);
    atomic_fetch_add(&s->aborted, 1);
}

struct k8s_reflector_handler cache_store_reflector_handler(struct cache_store *s)
{
    return (struct k8s_reflector_handler){
        .ctx = s,
        .replace_begin = on_replace_begin,
        .replace_item = on_replace_item,
        .replace_end = on_replace_end,
        .replace_abort = on_replace_abort,
        .add = on_add,
        .update = on_add,
        .delete = on_delete,
        .synced = NULL, /* replace_end covers it */
    };
}

/* ---- reading ----------------------------------------------------------------------------- */

const struct cache_entry *cache_get(struct cache_store *s, const char *namespace, const char *name)
{
    if (!name || !*name)
        return NULL;
    char buf[320];
    bool heap = false;
    char *key = make_key(s, namespace, name, buf, sizeof buf, &heap);
    uint32_t h = hash_str(key);
    const struct cache_entry *e = NULL;
    pthread_rwlock_rdlock(&s->lock);
    const struct onode *o = (const struct onode *)hmap_find(&s->objects, key, h);
    if (o)
        e = cache_entry_ref(o->e);
    pthread_rwlock_unlock(&s->lock);
    if (heap)
        free(key);
    return e;
}

size_t cache_list(struct cache_store *s, const char *ns, const struct cache_entry ***out)
{
    const struct cache_entry **list = NULL;
    size_t n = 0;
    pthread_rwlock_rdlock(&s->lock);
    if (!ns) {
        if (s->objects.n) {
            list = xmalloc(s->objects.n * sizeof *list);
            for (size_t i = 0; i < s->objects.nb; i++)
                for (const struct hnode *h = s->objects.b[i]; h; h = h->next)
                    list[n++] = cache_entry_ref(((const struct onode *)h)->e);
        }
    } else {
        const struct nsbucket *b = (const struct nsbucket *)hmap_find(&s->spaces, ns, hash_str(ns));
        if (b && b->n) {
            list = xmalloc(b->n * sizeof *list);
            for (size_t i = 0; i < b->n; i++)
                list[n++] = cache_entry_ref(b->items[i]->e);
        }
    }
    pthread_rwlock_unlock(&s->lock);
    *out = list;
    return n;
}

void cache_list_free(const struct cache_entry **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cache_entry_unref(list[i]);
    free((void *)list);
}

void cache_foreach(struct cache_store *s, const char *ns, cache_visit_fn fn, void *ctx)
{
    const struct cache_entry **list = NULL;
    size_t n = cache_list(s, ns, &list);
    for (size_t i = 0; i < n; i++)
        if (!fn(ctx, list[i]))
            break;
    cache_list_free(list, n);
}

size_t cache_count(struct cache_store *s)
{
    pthread_rwlock_rdlock(&s->lock);
    size_t n = s->objects.n;
    pthread_rwlock_unlock(&s->lock);
    return n;
}

bool cache_synced(const struct cache_store *s)
{
    return atomic_load(&s->synced);
}

bool cache_store_replacing(const struct cache_store *s)
{
    return atomic_load(&s->replacing);
}

void cache_stats(const struct cache_store *cs, struct cache_stats *out)
{
    struct cache_store *s = (struct cache_store *)(uintptr_t)cs;
    pthread_rwlock_rdlock(&s->lock);
    out->objects = s->objects.n;
    out->bytes = s->bytes;
    pthread_rwlock_unlock(&s->lock);
    out->added = atomic_load(&s->added);
    out->updated = atomic_load(&s->updated);
    out->deleted = atomic_load(&s->deleted);
    out->unchanged = atomic_load(&s->unchanged);
    out->skipped = atomic_load(&s->skipped);
    out->lists = atomic_load(&s->lists);
    out->aborted = atomic_load(&s->aborted);
    out->synced = atomic_load(&s->synced);
}

/* ---- the set ------------------------------------------------------------------------------ */

struct caches {
    struct k8s_client *client;
    struct caches_options opts;
    char *namespace;
    struct cache_store *stores[CACHE_KIND_COUNT];
    struct k8s_reflector *reflectors[CACHE_KIND_COUNT];
    bool served[CACHE_KIND_COUNT];
    pthread_mutex_t lock; /* with synced_cond: first-sync notifications */
    pthread_cond_t synced_cond;
    bool started;
};

void caches_options_init(struct caches_options *o)
{
    memset(o, 0, sizeof *o);
    o->kinds = CACHE_ALL_KINDS;
    k8s_reflector_options_init(&o->reflector);
}

static void set_synced(void *ctx, bool first)
{
    struct caches *cs = ctx;
    if (!first)
        return;
    pthread_mutex_lock(&cs->lock);
    pthread_cond_broadcast(&cs->synced_cond);
    pthread_mutex_unlock(&cs->lock);
}

enum mm_status caches_create(struct k8s_client *c, const struct caches_options *o,
                             struct caches **out, struct mm_error *err)
{
    *out = NULL;
    if (!c)
        return mm_error_set(err, MM_ERR_INVALID, "", "the caches need an API client");
    struct caches *cs = xcalloc(1, sizeof *cs);
    cs->client = c;
    if (o)
        cs->opts = *o;
    else
        caches_options_init(&cs->opts);
    if (!cs->opts.kinds)
        cs->opts.kinds = CACHE_ALL_KINDS;
    cs->namespace = cs->opts.namespace && *cs->opts.namespace ? xstrdup(cs->opts.namespace) : NULL;
    cs->opts.namespace = cs->namespace;
    pthread_mutex_init(&cs->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&cs->synced_cond, &attr);
    pthread_condattr_destroy(&attr);
    struct cache_handler h = {.ctx = cs, .synced = set_synced};
    for (unsigned k = 0; k < CACHE_KIND_COUNT; k++) {
        cs->served[k] = true;
        if (!(cs->opts.kinds & CACHE_KIND_BIT(k)))
            continue;
        struct cache_store_options so = {.keep_full = k == CACHE_PODS && cs->opts.keep_full_pods};
        cs->stores[k] = cache_store_create((enum cache_kind)k, &so);
        if (cache_store_add_handler(cs->stores[k], &h) != MM_OK) /* the first: cannot fail */
            abort();
    }
    *out = cs;
    return MM_OK;
}

struct cache_store *caches_store(struct caches *cs, enum cache_kind k)
{
    return (unsigned)k < CACHE_KIND_COUNT ? cs->stores[k] : NULL;
}

bool caches_served(const struct caches *cs, enum cache_kind k)
{
    return (unsigned)k < CACHE_KIND_COUNT && cs->served[k];
}

enum mm_status caches_start(struct caches *cs, struct mm_error *err)
{
    enum mm_status st = MM_OK;
    if (cs->started)
        return mm_error_set(err, MM_ERR_INVALID, "", "the caches are started already");
    for (unsigned k = 0; k < CACHE_KIND_COUNT; k++) {
        if (!cs->stores[k] || !kinds[k].optional)
            continue;
        struct k8s_error kerr = K8S_ERROR_INIT;
        bool exists = false;
        st = k8s_resource_exists(cs->client, &kinds[k].res, NULL, &exists, &kerr);
        if (st != MM_OK) {
            mm_error_set(err, st, kinds[k].name, "cannot tell whether the server serves %s: %s",
                         kinds[k].name, kerr.base.message);
            k8s_error_cleanup(&kerr);
            return st;
        }
        k8s_error_cleanup(&kerr);
        cs->served[k] = exists;
    }
    for (unsigned k = 0; k < CACHE_KIND_COUNT && st == MM_OK; k++) {
        struct cache_store *s = cs->stores[k];
        if (!s)
            continue;
        if (!cs->served[k]) {
            LOG(LOG_INFO, "cache %s: the server does not serve %s.%s/%s; the store stays empty",
                kinds[k].name, kinds[k].res.plural, kinds[k].res.group, kinds[k].res.version);
            struct k8s_reflector_handler h = cache_store_reflector_handler(s);
            h.replace_begin(s); /* an empty, complete list: synced */
            h.replace_end(s, "");
            continue;
        }
        struct k8s_reflector_options ro = cs->opts.reflector;
        ro.name = kinds[k].name;
        ro.namespace = kinds[k].namespaced ? cs->namespace : NULL;
        struct k8s_reflector_handler h = cache_store_reflector_handler(s);
        st = k8s_reflector_create(cs->client, &kinds[k].res, &ro, &h, &cs->reflectors[k], err);
        if (st == MM_OK)
            st = k8s_reflector_start(cs->reflectors[k], err);
    }
    if (st != MM_OK) {
        caches_stop(cs);
        return st;
    }
    cs->started = true;
    return MM_OK;
}

void caches_stop(struct caches *cs)
{
    for (unsigned k = 0; k < CACHE_KIND_COUNT; k++)
        if (cs->reflectors[k])
            k8s_reflector_stop(cs->reflectors[k]);
}

void caches_free(struct caches *cs)
{
    if (!cs)
        return;
    caches_stop(cs);
    for (unsigned k = 0; k < CACHE_KIND_COUNT; k++) {
        k8s_reflector_free(cs->reflectors[k]);
        cache_store_free(cs->stores[k]);
    }
    pthread_cond_destroy(&cs->synced_cond);
    pthread_mutex_destroy(&cs->lock);
    free(cs->namespace);
    free(cs);
}

bool caches_synced(struct caches *cs)
{
    for (unsigned k = 0; k < CACHE_KIND_COUNT; k++)
        if (cs->stores[k] && !cache_synced(cs->stores[k]))
            return false;
    return true;
}

bool caches_current(struct caches *cs, char *stale, size_t stale_size)
{
    bool all = true;
    size_t used = 0;
    if (stale && stale_size)
        stale[0] = '\0';
    for (unsigned k = 0; k < CACHE_KIND_COUNT; k++) {
        if (!cs->reflectors[k])
            continue;
        struct k8s_reflector_state st;
        k8s_reflector_state(cs->reflectors[k], &st);
        if (st.current)
            continue;
        if (stale && used < stale_size) {
            int n = snprintf(stale + used, stale_size - used, "%s%s", all ? "" : ",",
                             cache_kind_info(k)->name);
            used += n > 0 ? (size_t)n : 0;
        }
        all = false;
    }
    return all;
}

bool caches_wait_synced(struct caches *cs, unsigned timeout_ms)
{
    struct timespec deadline = mono_deadline(timeout_ms);
    pthread_mutex_lock(&cs->lock);
    bool ok;
    while (!(ok = caches_synced(cs)))
        if (pthread_cond_timedwait(&cs->synced_cond, &cs->lock, &deadline) == ETIMEDOUT) {
            ok = caches_synced(cs);
            break;
        }
    pthread_mutex_unlock(&cs->lock);
    return ok;
}

void caches_reflector_state(struct caches *cs, enum cache_kind k, struct k8s_reflector_state *out)
{
    memset(out, 0, sizeof *out);
    if ((unsigned)k < CACHE_KIND_COUNT && cs->reflectors[k])
        k8s_reflector_state(cs->reflectors[k], out);
}
