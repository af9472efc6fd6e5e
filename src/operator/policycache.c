/* The live policy view built from the informer caches (see policycache.h). */
#include "operator/policycache.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/published.h"
#include "util/xalloc.h"

#define DEFAULT_DEBOUNCE_MS 100u
#define DEFAULT_MAX_DELAY_MS 1000u
#define MAX_CONTRIBUTORS 4

struct contributor {
    struct cache_store *store;
    policycache_add_fn add;
    void *ctx;
};

struct policycache {
    struct policycache_stores st;
    char *system_namespace;
    char *zone;
    unsigned debounce_ms, max_delay_ms;
    struct contributor contrib[MAX_CONTRIBUTORS];
    size_t n_contrib;

    struct view_cell cell; /* the published view, ready, reload counters */

    pthread_mutex_t lock; /* guards the fields below; cond signals them */
    pthread_cond_t cond;  /* CLOCK_MONOTONIC */
    bool dirty;           /* a change not in the published view yet */
    uint64_t first_dirty_ms, last_change_ms;
    bool build_now; /* the last store just synced: build without the debounce */
    bool stop;
    bool running;
    pthread_t thread;

    pthread_mutex_t build_lock; /* serialises builds (thread and flush) */
    uint64_t generation;        /* of the last view built (under build_lock) */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void policycache_stores_from(struct caches *cs, struct policycache_stores *out)
{
    out->meshmetrics = caches_store(cs, CACHE_MESHMETRICS);
    out->meshes = caches_store(cs, CACHE_MESHES);
    out->namespaces = caches_store(cs, CACHE_NAMESPACES);
    out->services = caches_store(cs, CACHE_SERVICES);
    out->replicasets = caches_store(cs, CACHE_REPLICASETS);
    out->jobs = caches_store(cs, CACHE_JOBS);
}

/* ---- loading, once per object version (the stores' decorator) ----------------------- */

static void loaded_free(void *p)
{
    struct policycache_loaded *l = p;
    policy_unref(l->policy);
    free(l->id);
    free(l->errors);
    free(l);
}

static void *load(void *ctx, const struct cache_entry *e)
{
    struct policycache *pc = ctx;
    struct policycache_loaded *l = xcalloc(1, sizeof *l);
    const char *kind = json_string_value(json_object_get(e->object, "kind"));
    bool mesh = kind && !strcmp(kind, "Mesh"); /* the stores always set kind */
    l->kind = mesh ? "Mesh" : "MeshMetric";
    l->id =
        mesh ? xasprintf("Mesh/%s", e->name)
             : xasprintf("%s/%s", e->namespace[0] ? e->namespace : pc->system_namespace, e->name);
    struct violations errs, warnings;
    violations_init(&errs);
    violations_init(&warnings);
    struct mm_error err;
    mm_error_clear(&err);
    struct policy_load_options lo = {.system_namespace = pc->system_namespace, .zone = pc->zone};
    enum mm_status st = policy_load(e->object, &lo, &l->policy, &errs, &warnings, &err);
    if (st == MM_ERR_INVALID) {
        l->errors = violations_join(&errs);
    } else if (st != MM_OK) {
        char buf[1100];
        l->errors = xstrdup(mm_error_str(&err, buf, sizeof buf));
    }
    /* An invalid one is logged when a view is built without it (log_new), once, not on
     * every new version of the object (our own status writes make new versions). */
    if (!l->errors && warnings.len && log_enabled(LOG_DEBUG)) {
        char *w = violations_join(&warnings);
        log_kv(LOG_DEBUG, "policy loaded with warnings", "kind", l->kind, "policy", l->id,
               "resourceVersion", e->resource_version, "warnings", w, NULL);
        free(w);
    }
    violations_cleanup(&errs);
    violations_cleanup(&warnings);
    return l;
}

/* ---- change tracking (store callbacks, on reflector threads) ------------------------- */

static bool all_synced(const struct policycache *pc)
{
    struct cache_store *const req[] = {pc->st.meshmetrics, pc->st.meshes,      pc->st.namespaces,
                                       pc->st.services,    pc->st.replicasets, pc->st.jobs};
    for (size_t i = 0; i < sizeof req / sizeof *req; i++)
        if (req[i] && !cache_synced(req[i]))
            return false;
    for (size_t i = 0; i < pc->n_contrib; i++)
        if (!cache_synced(pc->contrib[i].store))
            return false;
    return true;
}

/*
 * Whether a change can change the view. The view reads objects' spec and metadata; their
 * status, resourceVersion, generation and managedFields it never reads. Skipping those matters:
 * every MeshMetric status write (ours, kuma-cp's) and every ReplicaSet status update would
 * otherwise rebuild the view and re-evaluate every pod.
 */
static bool metadata_differs(const json_t *a, const json_t *b)
{
    static const char *const ignored[] = {"resourceVersion", "generation", "managedFields"};
    const char *key;
    json_t *v;
    for (int pass = 0; pass < 2; pass++) {
        const json_t *x = pass ? b : a, *y = pass ? a : b;
        json_object_foreach((json_t *)x, key, v)
        {
            bool skip = false;
            for (size_t i = 0; i < sizeof ignored / sizeof *ignored && !skip; i++)
                skip = !strcmp(key, ignored[i]);
            if (!skip && !json_equal(v, json_object_get(y, key)))
                return true;
        }
    }
    return false;
}

static bool view_relevant(const struct cache_entry *old, const struct cache_entry *now)
{
    if (!old || !now || !old->object || !now->object)
        return true;
    const char *key;
    json_t *v;
    for (int pass = 0; pass < 2; pass++) {
        const json_t *x = pass ? now->object : old->object;
        const json_t *y = pass ? old->object : now->object;
        json_object_foreach((json_t *)x, key, v)
        {
            if (!strcmp(key, "status"))
                continue;
            json_t *w = json_object_get(y, key);
            if (!strcmp(key, "metadata") ? metadata_differs(v, w) : !json_equal(v, w))
                return true;
        }
    }
    return false;
}

static void on_changed(void *ctx, enum cache_change what, const struct cache_entry *old,
                       const struct cache_entry *now)
{
    struct policycache *pc = ctx;
    (void)what;
    if (!view_relevant(old, now))
        return;
    uint64_t t = now_ms();
    pthread_mutex_lock(&pc->lock);
    if (!pc->dirty)
        pc->first_dirty_ms = t;
    pc->dirty = true;
    pc->last_change_ms = t;
    pthread_cond_signal(&pc->cond);
    pthread_mutex_unlock(&pc->lock);
}

static void on_synced(void *ctx, bool first)
{
    struct policycache *pc = ctx;
    if (!first || view_cell_ready(&pc->cell) || !all_synced(pc))
        return;
    pthread_mutex_lock(&pc->lock);
    pc->build_now = true;
    pc->dirty = true;
    pthread_cond_signal(&pc->cond);
    pthread_mutex_unlock(&pc->lock);
}

/* ---- building ------------------------------------------------------------------------- */

static int cmp_entries(const void *a, const void *b)
{
    return strcmp((*(const struct cache_entry *const *)a)->key,
                  (*(const struct cache_entry *const *)b)->key);
}

static void add_policies(struct view_builder *b, struct cache_store *s)
{
    if (!s)
        return;
    const struct cache_entry **list = NULL;
    size_t n = cache_list(s, NULL, &list);
    if (n > 1) /* a stable order for rejections (the view sorts policies itself) */
        qsort(list, n, sizeof *list, cmp_entries);
    for (size_t i = 0; i < n; i++) {
        const struct policycache_loaded *l = list[i]->extra;
        if (!l)
            continue;
        if (l->policy)
            view_builder_add_policy(b, policy_ref(l->policy));
        else
            view_builder_reject(b, l->kind, l->id, l->errors);
    }
    cache_list_free(list, n);
}

static void add_objects(struct view_builder *b, struct cache_store *s, const char *kind)
{
    if (!s)
        return;
    const struct cache_entry **list = NULL;
    size_t n = cache_list(s, NULL, &list);
    for (size_t i = 0; i < n; i++)
        if (list[i]->object) /* immutable: the view takes its own reference */
            view_builder_add_object(b, kind, (json_t *)(uintptr_t)list[i]->object);
    cache_list_free(list, n);
}

static void add_contributed(struct view_builder *b, const struct contributor *c)
{
    const struct cache_entry **list = NULL;
    size_t n = cache_list(c->store, NULL, &list);
    for (size_t i = 0; i < n; i++)
        c->add(c->ctx, b, list[i]);
    cache_list_free(list, n);
}

/* Build and publish one view (any thread). Returns its generation. */
/* Log what is new in v: each rejection and note once, across rebuilds. */
static void log_new(const struct policy_view *old, const struct policy_view *v)
{
    const struct view_rejection *rej = NULL;
    const struct view_note *notes = NULL;
    size_t *idx = NULL;
    view_rejections(v, &rej);
    view_notes(v, &notes);
    size_t n = view_new_rejections(old, v, &idx);
    for (size_t i = 0; i < n; i++)
        log_kv(LOG_WARN, "invalid policy left out: Kuma would reject it", "kind", rej[idx[i]].kind,
               "policy", rej[idx[i]].id, "error", rej[idx[i]].errors, NULL);
    free(idx);
    n = view_new_notes(old, v, &idx);
    for (size_t i = 0; i < n; i++)
        log_kv(LOG_WARN, "policy selects nothing here", "policy", notes[idx[i]].id, "reason",
               notes[idx[i]].text, NULL);
    free(idx);
}

static uint64_t build(struct policycache *pc)
{
    pthread_mutex_lock(&pc->build_lock);
    uint64_t t0 = now_ms();
    struct view_options vo = {.system_namespace = pc->system_namespace, .zone = pc->zone};
    struct view_builder *b = view_builder_create(&vo);
    add_policies(b, pc->st.meshmetrics);
    add_policies(b, pc->st.meshes);
    add_objects(b, pc->st.namespaces, "Namespace");
    add_objects(b, pc->st.services, "Service");
    add_objects(b, pc->st.replicasets, "ReplicaSet");
    add_objects(b, pc->st.jobs, "Job");
    for (size_t i = 0; i < pc->n_contrib; i++)
        add_contributed(b, &pc->contrib[i]);
    uint64_t gen = ++pc->generation;
    struct policy_view *v = view_builder_finish(b, gen);
    struct view_counts c;
    view_counts(v, &c);
    struct policy_view *old = view_cell_publish(&pc->cell, view_ref(v), gen, (long long)time(NULL));
    log_new(old, v);
    view_unref(old);
    view_unref(v);
    bool became_ready = !view_cell_ready(&pc->cell) && all_synced(pc);
    if (became_ready)
        view_cell_set_ready(&pc->cell);
    pthread_mutex_unlock(&pc->build_lock);

    if (log_enabled(became_ready ? LOG_INFO : LOG_DEBUG)) {
        char g[24], mm[24], meshes[24], nss[24], svcs[24], owners[24], rej[24], ms[24];
        snprintf(g, sizeof g, "%llu", (unsigned long long)gen);
        snprintf(mm, sizeof mm, "%zu", c.meshmetrics);
        snprintf(meshes, sizeof meshes, "%zu", c.meshes);
        snprintf(nss, sizeof nss, "%zu", c.namespaces);
        snprintf(svcs, sizeof svcs, "%zu", c.services);
        snprintf(owners, sizeof owners, "%zu", c.owners);
        snprintf(rej, sizeof rej, "%zu", c.rejected);
        snprintf(ms, sizeof ms, "%llu", (unsigned long long)(now_ms() - t0));
        log_kv(became_ready ? LOG_INFO : LOG_DEBUG,
               became_ready ? "policy view ready (caches synced)" : "policy view rebuilt",
               "generation", g, "meshmetrics", mm, "meshes", meshes, "namespaces", nss, "services",
               svcs, "owners", owners, "invalid_left_out", rej, "build_ms", ms, NULL);
    }
    return gen;
}

uint64_t policycache_flush(struct policycache *pc, bool force)
{
    pthread_mutex_lock(&pc->lock);
    bool dirty = pc->dirty;
    pc->dirty = false;
    pc->build_now = false;
    pthread_mutex_unlock(&pc->lock);
    if (dirty || force)
        return build(pc);
    pthread_mutex_lock(&pc->build_lock);
    uint64_t gen = pc->generation;
    pthread_mutex_unlock(&pc->build_lock);
    return gen;
}

static void timed_wait(struct policycache *pc, uint64_t ms)
{
    struct timespec ts = mono_deadline(ms);
    (void)pthread_cond_timedwait(&pc->cond, &pc->lock, &ts);
}

static void *builder_main(void *arg)
{
    struct policycache *pc = arg;
    pthread_mutex_lock(&pc->lock);
    while (!pc->stop) {
        /* No view of a half-listed cluster: wait for the first sync of every store. */
        if (!pc->dirty || (!pc->build_now && !view_cell_ready(&pc->cell))) {
            if (pc->dirty && !view_cell_ready(&pc->cell) && all_synced(pc))
                pc->build_now = true; /* a sync raced with this check */
            else
                timed_wait(pc, 1000);
            continue;
        }
        uint64_t now = now_ms();
        uint64_t due = pc->last_change_ms + pc->debounce_ms;
        uint64_t cap = pc->first_dirty_ms + pc->max_delay_ms;
        if (cap < due)
            due = cap;
        if (!pc->build_now && now < due) {
            timed_wait(pc, due - now);
            continue;
        }
        pc->dirty = false;
        pc->build_now = false;
        pthread_mutex_unlock(&pc->lock);
        (void)build(pc);
        pthread_mutex_lock(&pc->lock);
    }
    pthread_mutex_unlock(&pc->lock);
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

enum mm_status policycache_create(const struct policycache_stores *stores,
                                  const struct policycache_options *opt, struct policycache **out,
                                  struct mm_error *err)
{
    *out = NULL;
    if (!stores || !stores->meshmetrics || !stores->namespaces || !stores->services)
        return mm_error_set(err, MM_ERR_INVALID, "",
                            "the policy cache needs the MeshMetric, Namespace and Service stores");
    struct policycache *pc = xcalloc(1, sizeof *pc);
    pc->st = *stores;
    pc->system_namespace =
        xstrdup(opt && opt->system_namespace ? opt->system_namespace : "kuma-system");
    pc->zone = xstrdup(opt && opt->zone ? opt->zone : "default");
    pc->debounce_ms = opt && opt->debounce_ms ? opt->debounce_ms : DEFAULT_DEBOUNCE_MS;
    pc->max_delay_ms = opt && opt->max_delay_ms ? opt->max_delay_ms : DEFAULT_MAX_DELAY_MS;
    struct view_options vo = {.system_namespace = pc->system_namespace, .zone = pc->zone};
    view_cell_init(&pc->cell, view_empty(&vo), false);
    pthread_mutex_init(&pc->lock, NULL);
    pthread_mutex_init(&pc->build_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&pc->cond, &attr);
    pthread_condattr_destroy(&attr);

    struct cache_handler h = {.ctx = pc, .changed = on_changed, .synced = on_synced};
    struct cache_store *all[] = {pc->st.meshmetrics, pc->st.meshes,      pc->st.namespaces,
                                 pc->st.services,    pc->st.replicasets, pc->st.jobs};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        if (all[i] && cache_store_add_handler(all[i], &h) != MM_OK) {
            policycache_free(pc);
            return mm_error_set(err, MM_ERR_TOO_BIG, "", "the %s store has no handler slot left",
                                cache_kind_info(cache_store_kind(all[i]))->name);
        }
    }
    cache_store_set_decorator(pc->st.meshmetrics, load, loaded_free, pc);
    if (pc->st.meshes)
        cache_store_set_decorator(pc->st.meshes, load, loaded_free, pc);
    *out = pc;
    return MM_OK;
}

enum mm_status policycache_add_contributor(struct policycache *pc, struct cache_store *store,
                                           policycache_add_fn add, void *ctx)
{
    if (pc->n_contrib == MAX_CONTRIBUTORS)
        return MM_ERR_TOO_BIG;
    struct cache_handler h = {.ctx = pc, .changed = on_changed, .synced = on_synced};
    enum mm_status st = cache_store_add_handler(store, &h);
    if (st != MM_OK)
        return st;
    pc->contrib[pc->n_contrib++] = (struct contributor){store, add, ctx};
    return MM_OK;
}

enum mm_status policycache_start(struct policycache *pc, struct mm_error *err)
{
    pthread_mutex_lock(&pc->lock);
    if (pc->running) {
        pthread_mutex_unlock(&pc->lock);
        return MM_OK;
    }
    pc->stop = false;
    int e = pthread_create(&pc->thread, NULL, builder_main, pc);
    pc->running = e == 0;
    pthread_mutex_unlock(&pc->lock);
    if (e)
        return mm_error_set(err, MM_ERR_INTERNAL, "", "cannot start the policy view builder");
    return MM_OK;
}

void policycache_stop(struct policycache *pc)
{
    pthread_mutex_lock(&pc->lock);
    bool join = pc->running;
    pc->running = false;
    pc->stop = true;
    pthread_cond_broadcast(&pc->cond);
    pthread_mutex_unlock(&pc->lock);
    if (join)
        pthread_join(pc->thread, NULL);
}

void policycache_free(struct policycache *pc)
{
    if (!pc)
        return;
    policycache_stop(pc);
    view_cell_cleanup(&pc->cell);
    pthread_cond_destroy(&pc->cond);
    pthread_mutex_destroy(&pc->lock);
    pthread_mutex_destroy(&pc->build_lock);
    free(pc->system_namespace);
    free(pc->zone);
    free(pc);
}

/* ---- the policy source ------------------------------------------------------------------- */

struct policy_source policycache_source(struct policycache *pc)
{
    return view_cell_source(&pc->cell);
}

void policycache_reload_counts(const struct policycache *pc, uint64_t *ok, uint64_t *failed,
                               int64_t *last_ok)
{
    view_cell_reload_counts(&pc->cell, ok, failed, last_ok);
}
