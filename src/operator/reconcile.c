/* The pod and MeshMetric reconcilers (see reconcile.h). */
#include "operator/reconcile.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

#include "core/engine.h"
#include "core/podpatch.h"
#include "core/status.h"
#include "core/view.h"
#include "k8s/status.h"
#include "operator/podstore.h"
#include "operator/workqueue.h"
#include "util/log.h"
#include "util/xalloc.h"

#define KIND_POD "Pod"
#define KIND_MESHMETRIC "MeshMetric"
#define N_BUCKETS 12
static const double BUCKETS[N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,   0.25,   0.5,   1,    2.5};

/* What the pod reconciler last found for a pod. */
struct pod_state {
    UT_hash_handle hh;
    char *key; /* "namespace/name" */
    char *uid;
    enum pod_sync sync;
    char **policies; /* MeshMetric ids selecting it, sorted */
    size_t n_policies;
};

/* What the status reconciler last reported for a MeshMetric. */
struct mm_state {
    UT_hash_handle hh;
    char *key; /* "namespace/name" */
    struct status_figures figures;
    bool reported;
};

struct histogram {
    atomic_ullong buckets[N_BUCKETS + 1];
    atomic_ullong sum_us;
};

struct reconciler {
    struct reconcile_config cfg;
    struct cache_store *pods, *dataplanes, *meshmetrics, *replicasets;
    struct policy_source source;
    struct workqueue *podq, *statusq;

    pthread_mutex_t lock; /* guards the state tables */
    struct pod_state *states;
    struct mm_state *mms;

    pthread_t *threads;
    size_t n_threads;
    pthread_t view_thread;
    atomic_bool stop;
    atomic_bool holding; /* decisions held: a cache is not current (logged on each change) */
    atomic_uint busy;

    atomic_ullong pod_ok, pod_error, status_ok, status_error, status_writes, status_conflicts;
    struct histogram pod_hist, status_hist;
};

/* ---- small helpers --------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void observe(struct histogram *h, double secs)
{
    size_t i = 0;
    while (i < N_BUCKETS && secs > BUCKETS[i])
        i++;
    atomic_fetch_add(&h->buckets[i], 1);
    atomic_fetch_add(&h->sum_us, (unsigned long long)(secs * 1e6));
}

static bool leader(const struct reconciler *r)
{
    return !r->cfg.is_leader || r->cfg.is_leader(r->cfg.leader_ctx);
}

/* Split "namespace/name" into parts (pointers into buf). */
static bool split_key(const char *key, char *buf, size_t len, const char **ns, const char **name)
{
    if (snprintf(buf, len, "%s", key) >= (int)len)
        return false;
    char *slash = strchr(buf, '/');
    if (!slash)
        return false;
    *slash = '\0';
    *ns = buf;
    *name = slash + 1;
    return true;
}

/*
 * Statuses, Events and restarts are decisions about the cluster: they are made only from
 * stores that follow the server. Not in the middle of a relist, and not while a reflector
 * cannot list or watch (its store is what it last saw: after an outage or a restore it may
 * name pods that are gone). The webhook keeps answering from the stores meanwhile.
 */
static bool stores_consistent(struct reconciler *r)
{
    if (!(caches_synced(r->cfg.caches) && r->source.ready(r->source.ctx) &&
          !cache_store_replacing(r->pods) && !cache_store_replacing(r->meshmetrics) &&
          (!r->dataplanes || !cache_store_replacing(r->dataplanes))))
        return false;
    char stale[160];
    bool current = caches_current(r->cfg.caches, stale, sizeof stale);
    bool was_holding = atomic_exchange(&r->holding, !current);
    if (!current && !was_holding)
        LOG(LOG_WARN,
            "operator: holding status writes, Events and restarts: cannot list or "
            "watch %s, so the caches may not match the cluster",
            stale);
    else if (current && was_holding)
        LOG(LOG_INFO, "operator: caches follow the API server again; status writes resume");
    return current;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void pod_state_free(struct pod_state *s)
{
    free(s->key);
    free(s->uid);
    free_strings(s->policies, s->n_policies);
    free(s);
}

/* ---- store callbacks: enqueue work -------------------------------------------------------- */

static void on_pod(void *ctx, enum cache_change what, const struct cache_entry *old,
                   const struct cache_entry *now)
{
    struct reconciler *r = ctx;
    const struct cache_entry *e = now ? now : old;
    (void)what;
    workqueue_add(r->podq, e->key);
}

static void on_meshmetric(void *ctx, enum cache_change what, const struct cache_entry *old,
                          const struct cache_entry *now)
{
    struct reconciler *r = ctx;
    const struct cache_entry *e = now ? now : old;
    (void)what;
    workqueue_add_after(r->statusq, e->key, r->cfg.status_delay_ms);
}

static void on_synced(void *ctx, bool first)
{
    (void)ctx;
    (void)first;
}

/* ---- the pod reconciler ------------------------------------------------------------------- */

/* Owner workload of a pod for repair: a ReplicaSet's Deployment, a StatefulSet or a DaemonSet. */
static void pod_workload(struct reconciler *r, const struct podstore_pod *pod, char *kind,
                         size_t kind_len, char *name, size_t name_len)
{
    kind[0] = name[0] = '\0';
    size_t n = podstore_owner_count(pod);
    for (size_t i = 0; i < n; i++) {
        struct podstore_owner o;
        podstore_owner_at(pod, i, &o);
        if (!o.controller)
            continue;
        snprintf(kind, kind_len, "%s", o.kind);
        snprintf(name, name_len, "%s", o.name);
        if (strcmp(o.kind, "ReplicaSet") || !r->replicasets)
            return;
        /* The ReplicaSet's controller, when it is a Deployment. */
        const struct cache_entry *rs = cache_get(r->replicasets, podstore_namespace(pod), o.name);
        kind[0] = name[0] = '\0';
        snprintf(kind, kind_len, "ReplicaSet");
        snprintf(name, name_len, "%s", o.name);
        const json_t *owners =
            rs ? json_object_get(json_object_get(rs->object, "metadata"), "ownerReferences") : NULL;
        size_t k;
        json_t *ref;
        json_array_foreach(owners, k, ref)
        {
            if (!json_is_true(json_object_get(ref, "controller")))
                continue;
            snprintf(kind, kind_len, "%s", json_string_value(json_object_get(ref, "kind")));
            snprintf(name, name_len, "%s", json_string_value(json_object_get(ref, "name")));
        }
        cache_entry_unref(rs);
        return;
    }
}

/* The MeshMetric ids in a match's policy list ("Mesh/x" legacy entries left out), sorted. */
static char **policy_ids(const json_t *policies, size_t *n_out)
{
    size_t n = 0, i;
    json_t *p;
    char **out = xcalloc(json_array_size(policies) + 1, sizeof *out);
    json_array_foreach(policies, i, p)
    {
        const char *id = json_string_value(p);
        if (id && strncmp(id, "Mesh/", 5))
            out[n++] = xstrdup(id);
    }
    qsort(out, n, sizeof *out, cmp_str);
    *n_out = n;
    return out;
}

static bool same_ids(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]))
            return false;
    return true;
}

/* The MeshMetric status keys ("namespace/name") of policy ids, queued. */
static void queue_statuses(struct reconciler *r, char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        workqueue_add_after(r->statusq, ids[i], r->cfg.status_delay_ms);
}

static void pod_event(struct reconciler *r, const struct podstore_pod *pod, enum pod_sync sync,
                      enum pod_sync before, bool known, const struct engine_want *w)
{
    if (!r->cfg.events)
        return;
    struct event_ref ref = {"v1",
                            KIND_POD,
                            podstore_namespace(pod),
                            podstore_name(pod),
                            podstore_uid(pod),
                            podstore_resource_version(pod)};
    const char *recorded = podstore_annotation(pod, PODPATCH_ANNOT_HASH);
    switch (sync) {
    case POD_SYNC_IN_SYNC:
        if (known && before != POD_SYNC_IN_SYNC)
            events_record(r->cfg.events, &ref, "Normal", status_pod_reason(sync), "Reconcile",
                          "the pod runs the metrics config its policies ask for (%s)", w->hash);
        break;
    case POD_SYNC_NOT_APPLIED:
        events_record(r->cfg.events, &ref, "Warning", status_pod_reason(sync), "Reconcile",
                      "the pod was created without the metrics patch (the webhook was down, or "
                      "the pod predates meshmetric-operator); its policies ask for %s; recreate "
                      "the pod (or enable --restart-out-of-sync) to apply it",
                      w->hash);
        break;
    case POD_SYNC_OUTDATED:
        events_record(r->cfg.events, &ref, "Warning", status_pod_reason(sync), "Reconcile",
                      "the pod runs metrics config %s but its policies now ask for %s%s; "
                      "recreate the pod (or enable --restart-out-of-sync) to apply it",
                      recorded && *recorded ? recorded : "(none recorded)", w->hash,
                      w->empty ? " (no metrics config)" : "");
        break;
    case POD_SYNC_DATAPLANE_DRIFT:
        events_record(r->cfg.events, &ref, "Warning", status_pod_reason(sync), "Reconcile", "%s",
                      w->drift ? w->drift : "Kuma's Dataplane differs");
        break;
    }
}

static void maybe_repair(struct reconciler *r, const struct podstore_pod *pod, enum pod_sync sync)
{
    if (!r->cfg.repair || !leader(r) || (sync != POD_SYNC_NOT_APPLIED && sync != POD_SYNC_OUTDATED))
        return;
    char kind[64], name[256], why[512];
    pod_workload(r, pod, kind, sizeof kind, name, sizeof name);
    struct repair_target t = {kind, podstore_namespace(pod), name};
    enum repair_result res = repair_restart(r->cfg.repair, &t, why, sizeof why);
    if (res == REPAIR_RESTARTED || res == REPAIR_NOT_A_WORKLOAD || res == REPAIR_FAILED)
        log_kv(res == REPAIR_RESTARTED ? LOG_INFO : LOG_WARN, "repair", "pod", podstore_name(pod),
               "namespace", podstore_namespace(pod), "result", repair_result_name(res), "detail",
               why, NULL);
    if (r->cfg.events && (res == REPAIR_RESTARTED || res == REPAIR_NOT_A_WORKLOAD)) {
        struct event_ref ref = {
            "v1", KIND_POD, podstore_namespace(pod), podstore_name(pod), podstore_uid(pod), NULL};
        events_record(r->cfg.events, &ref, res == REPAIR_RESTARTED ? "Normal" : "Warning",
                      res == REPAIR_RESTARTED ? "WorkloadRestarted" : "RestartSkipped", "Repair",
                      "%s", why);
    }
    if (res == REPAIR_RATE_LIMITED || res == REPAIR_TOO_MANY_UNAVAILABLE ||
        res == REPAIR_COOLING_DOWN || res == REPAIR_FAILED) {
        char *key = xasprintf("%s/%s", podstore_namespace(pod), podstore_name(pod));
        workqueue_add_after(r->podq, key, 15000); /* look again later */
        free(key);
    }
}

static enum mm_status reconcile_pod(struct reconciler *r, const char *key)
{
    char buf[512];
    const char *ns, *name;
    if (!split_key(key, buf, sizeof buf, &ns, &name))
        return MM_OK; /* not a key we make: forget it */
    const struct cache_entry *e = cache_get(r->pods, ns, name);
    if (!e) {
        pthread_mutex_lock(&r->lock);
        struct pod_state *s = NULL;
        HASH_FIND_STR(r->states, key, s);
        if (s)
            HASH_DEL(r->states, s);
        pthread_mutex_unlock(&r->lock);
        if (s) {
            queue_statuses(r, s->policies, s->n_policies);
            pod_state_free(s);
        }
        return MM_OK;
    }
    const struct podstore_pod *pod = e->pod;
    json_t *json = podstore_to_json(pod);
    const struct cache_entry *kdp = r->dataplanes ? cache_get(r->dataplanes, ns, name) : NULL;
    struct policy_view *view = r->source.acquire(r->source.ctx);
    struct engine_want w;
    engine_want_init(&w);
    engine_want_pod(view, json, kdp ? kdp->object : NULL, &w);
    const char *recorded = podstore_annotation(pod, PODPATCH_ANNOT_HASH);
    struct pod_sync_input in = {recorded, w.hash, w.empty, w.drift};
    enum pod_sync sync = status_pod_sync(&in);
    size_t n_ids = 0;
    char **ids = policy_ids(w.match.policies, &n_ids);

    pthread_mutex_lock(&r->lock);
    struct pod_state *s = NULL;
    HASH_FIND_STR(r->states, key, s);
    bool known = s != NULL && !strcmp(s->uid, podstore_uid(pod));
    enum pod_sync before = known ? s->sync : POD_SYNC_IN_SYNC;
    bool changed_sync = !known || s->sync != sync;
    bool changed_ids = !known || !same_ids(s->policies, s->n_policies, ids, n_ids);
    char **old_ids = NULL;
    size_t n_old = 0;
    if (!s) {
        s = xcalloc(1, sizeof *s);
        s->key = xstrdup(key);
        HASH_ADD_KEYPTR(hh, r->states, s->key, strlen(s->key), s);
    }
    if (!known) {
        free(s->uid);
        s->uid = xstrdup(podstore_uid(pod));
    }
    if (changed_ids) {
        old_ids = s->policies;
        n_old = s->n_policies;
        s->policies = ids;
        s->n_policies = n_ids;
        ids = NULL; /* moved into the state */
        n_ids = 0;
    }
    s->sync = sync;
    pthread_mutex_unlock(&r->lock);

    if (changed_sync || changed_ids) {
        queue_statuses(r, old_ids, n_old);
        char **cur = NULL;
        size_t n_cur = 0;
        pthread_mutex_lock(&r->lock);
        HASH_FIND_STR(r->states, key, s);
        if (s) { /* queue the current policies (copied under the lock) */
            cur = xcalloc(s->n_policies + 1, sizeof *cur);
            for (size_t i = 0; i < s->n_policies; i++)
                cur[n_cur++] = xstrdup(s->policies[i]);
        }
        pthread_mutex_unlock(&r->lock);
        queue_statuses(r, cur, n_cur);
        free_strings(cur, n_cur);
    }
    if (leader(r) && stores_consistent(r)) {
        /* One event per state change; a repeat of an out-of-sync state adds to its series. */
        if (changed_sync || sync != POD_SYNC_IN_SYNC)
            pod_event(r, pod, sync, before, known, &w);
        maybe_repair(r, pod, sync);
    }
    free_strings(old_ids, n_old);
    free_strings(ids, n_ids);
    engine_want_cleanup(&w);
    view_unref(view);
    cache_entry_unref(kdp);
    json_decref(json);
    cache_entry_unref(e);
    return MM_OK;
}

/* ---- the MeshMetric status reconciler ------------------------------------------------------ */

struct member_collect {
    const char *id;
    struct status_member *items;
    char **names;
    size_t n, cap;
};

static void collect_members(struct reconciler *r, struct member_collect *c)
{
    pthread_mutex_lock(&r->lock);
    for (struct pod_state *s = r->states; s; s = s->hh.next) {
        /* policies are sorted: binary search for the id */
        size_t lo = 0, hi = s->n_policies;
        bool found = false;
        while (lo < hi && !found) {
            size_t mid = (lo + hi) / 2;
            int d = strcmp(s->policies[mid], c->id);
            if (!d)
                found = true;
            else if (d < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (!found)
            continue;
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 16;
            c->items = xrealloc(c->items, c->cap * sizeof *c->items);
            c->names = xrealloc(c->names, c->cap * sizeof *c->names);
        }
        c->names[c->n] = xstrdup(s->key);
        c->items[c->n].name = c->names[c->n];
        c->items[c->n].sync = s->sync;
        c->n++;
    }
    pthread_mutex_unlock(&r->lock);
}

static const struct k8s_resource MESHMETRICS = {"kuma.io", "v1alpha1", "meshmetrics"};

/*
 * Write wanted conditions onto the MeshMetric ns/name: a JSON merge patch of status.conditions
 * (ours merged into the others' as the object had them) carrying the resourceVersion they were
 * read at, so the API server answers 409 if anyone wrote in between (kuma-cp); then the object
 * is read again and the merge redone. The first attempt starts from the cached object, so an
 * uncontended write is one request. A patch leaves the rest of the object alone (the cache
 * keeps no managedFields or last-applied annotation; a PUT from it would drop them).
 */
static enum mm_status write_status(struct reconciler *r, const char *ns, const char *name,
                                   const json_t *cached, const json_t *wanted, bool *wrote)
{
    enum mm_status st = MM_OK;
    struct k8s_error err = K8S_ERROR_INIT;
    struct k8s_call_opts opts = {.field_manager = "meshmetric-operator"};
    json_t *obj = json_incref((json_t *)(uintptr_t)cached);
    *wrote = false;
    for (int attempt = 0; attempt < 5; attempt++) {
        if (!obj) {
            st = k8s_get(r->cfg.client, &MESHMETRICS, ns, name, NULL, &opts, &obj, &err);
            if (st == MM_ERR_NOT_FOUND) {
                st = MM_OK; /* deleted meanwhile */
                break;
            }
            if (st)
                break;
        }
        bool changed = false;
        json_t *merged =
            status_merge_conditions(json_object_get(json_object_get(obj, "status"), "conditions"),
                                    wanted, false, NULL, -1, &changed);
        const char *rv =
            json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        if (!changed || !rv) {
            json_decref(merged);
            if (changed) { /* no resourceVersion to guard the write with: read the object */
                json_decref(obj);
                obj = NULL;
                continue;
            }
            break;
        }
        json_t *patch = json_pack("{s:{s:s}, s:{s:o}}", "metadata", "resourceVersion", rv, "status",
                                  "conditions", merged);
        st = k8s_patch(r->cfg.client, &MESHMETRICS, ns, name,
                       r->cfg.status_subresource ? "status" : NULL, K8S_PATCH_MERGE, patch, &opts,
                       NULL, &err);
        json_decref(patch);
        json_decref(obj);
        obj = NULL;
        if (st == MM_ERR_CONFLICT) {
            atomic_fetch_add(&r->status_conflicts, 1);
            continue; /* someone wrote in between (kuma-cp): read again */
        }
        if (st == MM_ERR_NOT_FOUND)
            st = MM_OK; /* deleted meanwhile */
        else if (st == MM_OK) {
            *wrote = true;
            atomic_fetch_add(&r->status_writes, 1);
        }
        break;
    }
    json_decref(obj);
    if (st)
        log_kv(LOG_WARN, "cannot write MeshMetric status", "namespace", ns, "name", name, "error",
               err.base.message, NULL);
    k8s_error_cleanup(&err);
    return st;
}

static enum mm_status reconcile_status(struct reconciler *r, const char *key)
{
    char buf[512];
    const char *ns, *name;
    if (!split_key(key, buf, sizeof buf, &ns, &name))
        return MM_OK;
    const struct cache_entry *e = cache_get(r->meshmetrics, ns, name);
    if (!e) {
        pthread_mutex_lock(&r->lock);
        struct mm_state *m = NULL;
        HASH_FIND_STR(r->mms, key, m);
        if (m)
            HASH_DEL(r->mms, m);
        pthread_mutex_unlock(&r->lock);
        if (m) {
            free(m->key);
            free(m);
        }
        return MM_OK;
    }
    const struct policycache_loaded *loaded = e->extra;
    struct member_collect c = {.id = key};
    collect_members(r, &c);
    struct status_figures fig;
    const char *errors = loaded ? loaded->errors : NULL;
    json_t *wanted = status_conditions(errors, c.items, c.n, &fig);
    enum mm_status st = MM_OK;
    bool changed = false;
    json_t *check =
        status_merge_conditions(json_object_get(json_object_get(e->object, "status"), "conditions"),
                                wanted, false, NULL, -1, &changed);
    json_decref(check);
    bool wrote = false;
    if (changed)
        st = write_status(r, ns, name, e->object, wanted, &wrote);

    /* An event when the figures change (not for the first report of an unchanged state). */
    pthread_mutex_lock(&r->lock);
    struct mm_state *m = NULL;
    HASH_FIND_STR(r->mms, key, m);
    bool report = st == MM_OK &&
                  (!m || !m->reported || m->figures.in_sync != fig.in_sync ||
                   m->figures.out_of_sync != fig.out_of_sync || m->figures.total != fig.total) &&
                  (wrote || (m && m->reported));
    if (!m) {
        m = xcalloc(1, sizeof *m);
        m->key = xstrdup(key);
        HASH_ADD_KEYPTR(hh, r->mms, m->key, strlen(m->key), m);
    }
    if (st == MM_OK) {
        m->figures = fig;
        m->reported = true;
    }
    pthread_mutex_unlock(&r->lock);
    if (report && r->cfg.events && !errors) {
        struct event_ref ref = {"kuma.io/v1alpha1", KIND_MESHMETRIC, ns, name, e->uid, NULL};
        const json_t *cond = NULL;
        size_t i;
        json_t *x;
        json_array_foreach(wanted, i, x)
        {
            if (!strcmp(json_string_value(json_object_get(x, "type")), STATUS_COND_IN_SYNC))
                cond = x;
        }
        events_record(r->cfg.events, &ref, fig.out_of_sync ? "Warning" : "Normal",
                      fig.out_of_sync ? "DataplanesOutOfSync" : "DataplanesInSync", "Reconcile",
                      "%s", json_string_value(json_object_get(cond, "message")));
    }
    json_decref(wanted);
    for (size_t i = 0; i < c.n; i++)
        free(c.names[i]);
    free(c.names);
    free(c.items);
    cache_entry_unref(e);
    return st;
}

/* ---- workers -------------------------------------------------------------------------------- */

struct worker {
    struct reconciler *r;
    bool status; /* the status queue, else the pod queue */
};

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    struct reconciler *r = wk->r;
    struct workqueue *q = wk->status ? r->statusq : r->podq;
    while (!atomic_load(&r->stop)) {
        /* Nothing is evaluated before the live view was built from synced caches. */
        if (!r->source.ready(r->source.ctx)) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        char *key = NULL;
        if (workqueue_get(q, 500, &key) != MM_OK || !key)
            continue;
        atomic_fetch_add(&r->busy, 1);
        double t0 = now_s();
        enum mm_status st;
        if (wk->status && (!leader(r) || !stores_consistent(r))) {
            /* Only the leader writes; not from a cache in the middle of a relist. */
            if (leader(r))
                workqueue_add_after(q, key, 1000);
            st = MM_OK;
        } else {
            st = wk->status ? reconcile_status(r, key) : reconcile_pod(r, key);
        }
        observe(wk->status ? &r->status_hist : &r->pod_hist, now_s() - t0);
        if (st == MM_OK) {
            workqueue_forget(q, key);
            atomic_fetch_add(wk->status ? &r->status_ok : &r->pod_ok, 1);
        } else {
            workqueue_add_rate_limited(q, key);
            atomic_fetch_add(wk->status ? &r->status_error : &r->pod_error, 1);
        }
        workqueue_done(q, key);
        atomic_fetch_sub(&r->busy, 1);
        free(key);
    }
    free(wk);
    return NULL;
}

static bool queue_pod(void *ctx, const struct cache_entry *e)
{
    workqueue_add(((struct reconciler *)ctx)->podq, e->key);
    return true;
}

static bool queue_status(void *ctx, const struct cache_entry *e)
{
    struct reconciler *r = ctx;
    workqueue_add_after(r->statusq, e->key, r->cfg.status_delay_ms);
    return true;
}

/* A new view generation: every pod is evaluated again, and every MeshMetric. */
static void *view_main(void *arg)
{
    struct reconciler *r = arg;
    uint64_t seen = 0;
    while (!atomic_load(&r->stop)) {
        struct policy_view *v = r->source.wait_newer(r->source.ctx, seen, 500);
        uint64_t gen = view_generation(v);
        view_unref(v);
        if (gen <= seen || !r->source.ready(r->source.ctx))
            continue;
        seen = gen;
        cache_foreach(r->pods, NULL, queue_pod, r);
        cache_foreach(r->meshmetrics, NULL, queue_status, r);
    }
    return NULL;
}

void reconciler_became_leader(struct reconciler *r)
{
    cache_foreach(r->meshmetrics, NULL, queue_status, r);
    cache_foreach(r->pods, NULL, queue_pod, r);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

enum mm_status reconciler_create(const struct reconcile_config *cfg, struct reconciler **out,
                                 struct mm_error *err)
{
    *out = NULL;
    struct reconciler *r = xcalloc(1, sizeof *r);
    r->cfg = *cfg;
    if (!r->cfg.pod_workers)
        r->cfg.pod_workers = 2;
    if (!r->cfg.status_delay_ms)
        r->cfg.status_delay_ms = 200;
    r->pods = caches_store(cfg->caches, CACHE_PODS);
    r->meshmetrics = caches_store(cfg->caches, CACHE_MESHMETRICS);
    r->dataplanes = caches_store(cfg->caches, CACHE_DATAPLANES);
    r->replicasets = caches_store(cfg->caches, CACHE_REPLICASETS);
    if (!r->pods || !r->meshmetrics) {
        free(r);
        return mm_error_set(err, MM_ERR_INVALID, "caches",
                            "the reconcilers need the pod and MeshMetric caches");
    }
    r->source = policycache_source(cfg->policies);
    struct workqueue_options qo;
    workqueue_options_init(&qo);
    qo.name = "pods";
    qo.qps = 0; /* pods are evaluated locally: no overall bucket */
    r->podq = workqueue_create(&qo);
    workqueue_options_init(&qo);
    qo.name = "meshmetrics";
    r->statusq = workqueue_create(&qo);
    pthread_mutex_init(&r->lock, NULL);
    atomic_init(&r->stop, false);
    atomic_init(&r->busy, 0);

    struct cache_handler ph = {.ctx = r, .changed = on_pod, .synced = on_synced};
    struct cache_handler mh = {.ctx = r, .changed = on_meshmetric, .synced = on_synced};
    enum mm_status st = cache_store_add_handler(r->pods, &ph);
    if (!st)
        st = cache_store_add_handler(r->meshmetrics, &mh);
    if (!st && r->dataplanes) /* Kuma's Dataplane changed: its pod is evaluated again */
        st = cache_store_add_handler(r->dataplanes, &ph);
    if (st) {
        reconciler_free(r);
        return mm_error_set(err, st, "caches", "no handler slot left on a store");
    }
    *out = r;
    return MM_OK;
}

enum mm_status reconciler_start(struct reconciler *r, struct mm_error *err)
{
    size_t n = r->cfg.pod_workers + 1;
    r->threads = xcalloc(n, sizeof *r->threads);
    for (size_t i = 0; i < n; i++) {
        struct worker *wk = xcalloc(1, sizeof *wk);
        wk->r = r;
        wk->status = i == 0;
        if (pthread_create(&r->threads[i], NULL, worker_main, wk) != 0) {
            free(wk);
            reconciler_stop(r);
            return mm_error_set(err, MM_ERR_INTERNAL, NULL, "cannot start a reconcile worker");
        }
        r->n_threads++;
    }
    if (pthread_create(&r->view_thread, NULL, view_main, r) != 0) {
        reconciler_stop(r);
        return mm_error_set(err, MM_ERR_INTERNAL, NULL, "cannot start the view watcher");
    }
    return MM_OK;
}

void reconciler_stop(struct reconciler *r)
{
    if (!r || atomic_exchange(&r->stop, true))
        return;
    workqueue_shutdown(r->podq);
    workqueue_shutdown(r->statusq);
    for (size_t i = 0; i < r->n_threads; i++)
        pthread_join(r->threads[i], NULL);
    r->n_threads = 0;
    if (r->view_thread)
        pthread_join(r->view_thread, NULL);
    r->view_thread = 0;
}

void reconciler_free(struct reconciler *r)
{
    if (!r)
        return;
    reconciler_stop(r);
    free(r->threads);
    struct pod_state *s, *tmp;
    HASH_ITER(hh, r->states, s, tmp)
    {
        HASH_DEL(r->states, s);
        pod_state_free(s);
    }
    struct mm_state *m, *mtmp;
    HASH_ITER(hh, r->mms, m, mtmp)
    {
        HASH_DEL(r->mms, m);
        free(m->key);
        free(m);
    }
    workqueue_free(r->podq);
    workqueue_free(r->statusq);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---- observability -------------------------------------------------------------------------- */

void reconciler_stats(struct reconciler *r, struct reconcile_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&r->lock);
    for (struct pod_state *s = r->states; s; s = s->hh.next) {
        out->pods++;
        if (s->sync == POD_SYNC_IN_SYNC)
            out->in_sync++;
        else
            out->out_of_sync++;
    }
    pthread_mutex_unlock(&r->lock);
    out->pod_queue = workqueue_len(r->podq);
    out->status_queue = workqueue_len(r->statusq);
    out->pod_ok = atomic_load(&r->pod_ok);
    out->pod_error = atomic_load(&r->pod_error);
    out->status_ok = atomic_load(&r->status_ok);
    out->status_error = atomic_load(&r->status_error);
    out->status_writes = atomic_load(&r->status_writes);
    out->status_conflicts = atomic_load(&r->status_conflicts);
    out->restarts = r->cfg.repair ? repair_count(r->cfg.repair) : 0;
}

static bool render_histogram(struct strbuf *out, const char *controller, struct histogram *h)
{
    unsigned long long cum = 0;
    bool ok = true;
    for (size_t i = 0; i < N_BUCKETS && ok; i++) {
        cum += atomic_load(&h->buckets[i]);
        ok =
            strbuf_printf(out,
                          "meshmetric_operator_reconcile_duration_seconds_bucket{controller=\"%s\","
                          "le=\"%g\"} %llu\n",
                          controller, BUCKETS[i], cum);
    }
    cum += atomic_load(&h->buckets[N_BUCKETS]);
    return ok &&
           strbuf_printf(out,
                         "meshmetric_operator_reconcile_duration_seconds_bucket{controller=\"%s\","
                         "le=\"+Inf\"} %llu\n"
                         "meshmetric_operator_reconcile_duration_seconds_sum{controller=\"%s\"} "
                         "%.6f\n"
                         "meshmetric_operator_reconcile_duration_seconds_count{controller=\"%s\"} "
                         "%llu\n",
                         controller, cum, controller, (double)atomic_load(&h->sum_us) / 1e6,
                         controller, cum);
}

bool reconciler_render_metrics(struct reconciler *r, struct strbuf *out)
{
    struct reconcile_stats s;
    reconciler_stats(r, &s);
    bool ok = strbuf_printf(
        out,
        "# HELP meshmetric_operator_dataplanes Meshed pods by whether they run the metrics "
        "config their policies ask for.\n"
        "# TYPE meshmetric_operator_dataplanes gauge\n"
        "meshmetric_operator_dataplanes{state=\"in_sync\"} %zu\n"
        "meshmetric_operator_dataplanes{state=\"out_of_sync\"} %zu\n"
        "# HELP meshmetric_operator_reconcile_queue_depth Keys waiting in a reconcile queue.\n"
        "# TYPE meshmetric_operator_reconcile_queue_depth gauge\n"
        "meshmetric_operator_reconcile_queue_depth{controller=\"pods\"} %zu\n"
        "meshmetric_operator_reconcile_queue_depth{controller=\"meshmetrics\"} %zu\n"
        "# HELP meshmetric_operator_reconcile_total Reconciles by controller and result.\n"
        "# TYPE meshmetric_operator_reconcile_total counter\n"
        "meshmetric_operator_reconcile_total{controller=\"pods\",result=\"success\"} %llu\n"
        "meshmetric_operator_reconcile_total{controller=\"pods\",result=\"error\"} %llu\n"
        "meshmetric_operator_reconcile_total{controller=\"meshmetrics\",result=\"success\"} %llu\n"
        "meshmetric_operator_reconcile_total{controller=\"meshmetrics\",result=\"error\"} %llu\n"
        "# HELP meshmetric_operator_status_writes_total MeshMetric status writes, and the 409 "
        "conflicts retried.\n"
        "# TYPE meshmetric_operator_status_writes_total counter\n"
        "meshmetric_operator_status_writes_total{result=\"written\"} %llu\n"
        "meshmetric_operator_status_writes_total{result=\"conflict\"} %llu\n"
        "# HELP meshmetric_operator_workload_restarts_total Workloads restarted by "
        "--restart-out-of-sync.\n"
        "# TYPE meshmetric_operator_workload_restarts_total counter\n"
        "meshmetric_operator_workload_restarts_total %llu\n"
        "# HELP meshmetric_operator_reconcile_duration_seconds Time one reconcile took.\n"
        "# TYPE meshmetric_operator_reconcile_duration_seconds histogram\n",
        s.in_sync, s.out_of_sync, s.pod_queue, s.status_queue, (unsigned long long)s.pod_ok,
        (unsigned long long)s.pod_error, (unsigned long long)s.status_ok,
        (unsigned long long)s.status_error, (unsigned long long)s.status_writes,
        (unsigned long long)s.status_conflicts, (unsigned long long)s.restarts);
    return ok && render_histogram(out, "pods", &r->pod_hist) &&
           render_histogram(out, "meshmetrics", &r->status_hist);
}

bool reconciler_wait_idle(struct reconciler *r, unsigned timeout_ms)
{
    double deadline = now_s() + timeout_ms / 1000.0;
    while (now_s() < deadline) {
        struct workqueue_stats a, b;
        workqueue_stats(r->podq, &a);
        workqueue_stats(r->statusq, &b);
        if (a.depth + a.processing + a.waiting + b.depth + b.processing + b.waiting == 0 &&
            atomic_load(&r->busy) == 0)
            return true;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}
