/*
 * The live policy view (src/operator/policycache.c), with the stores fed
 * through their reflector handlers directly (no server): readiness after
 * the first sync of every store, the first view built at once, debouncing
 * (one view after a burst; at most one per max_delay under a constant
 * stream), generations, policies loaded once per object version and shared
 * between views, objects shared (not copied), invalid policies left out and
 * listed, the contributor extension point, and a stress test (TSan) of
 * readers evaluating views while the stores change and views are swapped.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "core/engine.h"
#include "core/view.h"
#include "operator/policycache.h"
#include "util/log.h"
#include "util/xalloc.h"

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct fixture {
    struct cache_store *s[CACHE_KIND_COUNT];
    struct k8s_reflector_handler h[CACHE_KIND_COUNT];
    struct policycache *pc;
    struct policy_source src;
};

static const enum cache_kind view_kinds[] = {CACHE_MESHMETRICS, CACHE_MESHES,      CACHE_NAMESPACES,
                                             CACHE_SERVICES,    CACHE_REPLICASETS, CACHE_JOBS,
                                             CACHE_PODS};

static void fixture_init(struct fixture *f, unsigned debounce_ms, unsigned max_delay_ms, bool start)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < sizeof view_kinds / sizeof *view_kinds; i++) {
        enum cache_kind k = view_kinds[i];
        f->s[k] = cache_store_create(k, NULL);
        f->h[k] = cache_store_reflector_handler(f->s[k]);
    }
    struct policycache_stores st = {f->s[CACHE_MESHMETRICS], f->s[CACHE_MESHES],
                                    f->s[CACHE_NAMESPACES],  f->s[CACHE_SERVICES],
                                    f->s[CACHE_REPLICASETS], f->s[CACHE_JOBS]};
    struct policycache_options o = {.debounce_ms = debounce_ms, .max_delay_ms = max_delay_ms};
    struct mm_error err;
    assert_int_equal(policycache_create(&st, &o, &f->pc, &err), MM_OK);
    f->src = policycache_source(f->pc);
    if (start)
        assert_int_equal(policycache_start(f->pc, &err), MM_OK);
}

static void fixture_cleanup(struct fixture *f)
{
    policycache_free(f->pc);
    for (size_t k = 0; k < CACHE_KIND_COUNT; k++)
        cache_store_free(f->s[k]);
}

static void feed(struct fixture *f, enum cache_kind k, char op, const char *yaml)
{
    json_t *o = yaml ? tu_yaml(yaml) : NULL;
    struct k8s_reflector_handler *h = &f->h[k];
    switch (op) {
    case 'b':
        h->replace_begin(h->ctx);
        break;
    case 'i':
        h->replace_item(h->ctx, o);
        break;
    case 'e':
        h->replace_end(h->ctx, "1");
        break;
    case 'a':
        h->add(h->ctx, o);
        break;
    case 'u':
        h->update(h->ctx, o);
        break;
    case 'd':
        h->delete (h->ctx, o);
        break;
    default:
        fail();
    }
    json_decref(o);
}

/* Complete an (empty unless items given) first list of kind k. */
static void sync_kind(struct fixture *f, enum cache_kind k, const char *const *items)
{
    feed(f, k, 'b', NULL);
    for (; items && *items; items++)
        feed(f, k, 'i', *items);
    feed(f, k, 'e', NULL);
}

static char *mm(const char *name, const char *ns, int port, int rv)
{
    return xasprintf("apiVersion: kuma.io/v1alpha1\nkind: MeshMetric\n"
                     "metadata: {name: %s, namespace: %s, resourceVersion: '%d', uid: u-%s}\n"
                     "spec:\n  targetRef: {kind: Mesh}\n  default:\n"
                     "    backends: [{type: Prometheus, prometheus: {port: %d}}]\n",
                     name, ns, rv, name, port);
}

static char *svc(const char *name, int rv)
{
    /* each version changes a label too: a change the view reads */
    return xasprintf("{metadata: {name: %s, namespace: shop, resourceVersion: '%d', labels: {rev: "
                     "'%d'}}, spec: {selector: {app: %s}, ports: [{port: 80, targetPort: 8080}]}}",
                     name, rv, rv, name);
}

/* The current view's generation. */
static uint64_t generation(struct fixture *f)
{
    struct policy_view *v = f->src.acquire(f->src.ctx);
    uint64_t g = view_generation(v);
    view_unref(v);
    return g;
}

static void test_create_needs_stores(void **state)
{
    (void)state;
    struct policycache_stores st = {0};
    struct policycache *pc = NULL;
    struct mm_error err;
    assert_int_equal(policycache_create(&st, NULL, &pc, &err), MM_ERR_INVALID);
    assert_null(pc);
    assert_int_equal(policycache_create(NULL, NULL, &pc, &err), MM_ERR_INVALID);
    policycache_free(NULL);
}

static void test_ready_after_every_sync(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1000, 5000, true); /* a long debounce: the first view must not wait for it */
    assert_false(f.src.ready(f.src.ctx));
    assert_int_equal(generation(&f), 0);
    char *a = mm("a", "kuma-system", 5670, 1);
    const char *items[] = {a, NULL};
    sync_kind(&f, CACHE_MESHMETRICS, items);
    sync_kind(&f, CACHE_MESHES, NULL);
    sync_kind(&f, CACHE_NAMESPACES, NULL);
    sync_kind(&f, CACHE_SERVICES, NULL);
    sync_kind(&f, CACHE_REPLICASETS, NULL);
    usleep(1300 * 1000); /* past the debounce: still no view of a partial list */
    assert_false(f.src.ready(f.src.ctx));
    assert_int_equal(generation(&f), 0);
    uint64_t t0 = ms_now();
    sync_kind(&f, CACHE_JOBS, NULL);
    struct policy_view *v = f.src.wait_newer(f.src.ctx, 0, 2000);
    uint64_t took = ms_now() - t0;
    assert_int_equal(view_generation(v), 1);
    assert_true(took < 500); /* the first view does not wait for the debounce */
    for (int i = 0; i < 100 && !f.src.ready(f.src.ctx); i++)
        usleep(1000); /* ready turns true just after the view is published, never before */
    assert_true(f.src.ready(f.src.ctx));
    const struct policy *const *ps = NULL;
    assert_int_equal(view_policies(v, &ps), 1);
    assert_string_equal(ps[0]->id, "kuma-system/a");
    view_unref(v);
    uint64_t ok = 0, failed = 9;
    int64_t last = 0;
    policycache_reload_counts(f.pc, &ok, &failed, &last);
    assert_int_equal(ok, 1);
    assert_int_equal(failed, 0);
    assert_true(last > 0);
    free(a);
    fixture_cleanup(&f);
}

static void sync_all(struct fixture *f)
{
    for (size_t i = 0; i < sizeof view_kinds / sizeof *view_kinds; i++)
        sync_kind(f, view_kinds[i], NULL);
}

static void test_debounce_burst(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 100, 1000, true);
    sync_all(&f);
    struct policy_view *v = f.src.wait_newer(f.src.ctx, 0, 2000);
    assert_int_equal(view_generation(v), 1);
    view_unref(v);
    /* a burst of 10 changes 20 ms apart: one view, about 100 ms after the last */
    uint64_t t0 = ms_now();
    for (int i = 0; i < 10; i++) {
        char *s = svc("web", i + 2);
        feed(&f, CACHE_SERVICES, 'a', s);
        free(s);
        usleep(20 * 1000);
    }
    uint64_t last = ms_now();
    assert_int_equal(generation(&f), 1); /* nothing yet: the burst kept the debounce going */
    v = f.src.wait_newer(f.src.ctx, 1, 2000);
    uint64_t built = ms_now();
    assert_int_equal(view_generation(v), 2);
    assert_true(built - last >= 50 && built - last < 400);
    assert_true(built - t0 < 1000);
    const json_t *const *svcs = NULL;
    assert_int_equal(view_services(v, "shop", &svcs), 1);
    view_unref(v);
    v = f.src.wait_newer(f.src.ctx, 2, 300); /* no more */
    assert_int_equal(view_generation(v), 2);
    view_unref(v);
    fixture_cleanup(&f);
}

static void test_debounce_constant_stream(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 100, 500, true);
    sync_all(&f);
    struct policy_view *v = f.src.wait_newer(f.src.ctx, 0, 2000);
    view_unref(v);
    /* a change every 30 ms for 1.6 s: the debounce never settles, max_delay (500 ms) caps it */
    uint64_t t0 = ms_now();
    int i = 0;
    while (ms_now() - t0 < 1600) {
        char *s = svc("web", 100 + i++);
        feed(&f, CACHE_SERVICES, 'u', s);
        free(s);
        usleep(30 * 1000);
    }
    uint64_t g = generation(&f) - 1; /* views built during the stream */
    print_message("    %d changes in 1.6 s gave %llu views (max delay 500 ms)\n", i,
                  (unsigned long long)g);
    assert_true(g >= 2 && g <= 4);
    fixture_cleanup(&f);
}

static void test_shared_and_loaded_once(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 10, 100, false); /* flush by hand */
    char *a = mm("a", "kuma-system", 5670, 1);
    const char *mms[] = {a, NULL};
    sync_kind(&f, CACHE_MESHMETRICS, mms);
    const char *nss[] = {"{metadata: {name: shop, labels: {kuma.io/mesh: default}}}", NULL};
    sync_kind(&f, CACHE_NAMESPACES, nss);
    const char *meshes[] = {"{apiVersion: kuma.io/v1alpha1, kind: Mesh, metadata: {name: default,"
                            " resourceVersion: '4'}}",
                            NULL};
    sync_kind(&f, CACHE_MESHES, meshes);
    const char *rss[] = {"{metadata: {name: web-1, namespace: shop, ownerReferences: [{kind:"
                         " Deployment, name: web}]}}",
                         NULL};
    sync_kind(&f, CACHE_REPLICASETS, rss);
    const char *jobs[] = {"{metadata: {name: j, namespace: shop}}", NULL};
    sync_kind(&f, CACHE_JOBS, jobs);
    sync_kind(&f, CACHE_SERVICES, NULL);
    assert_int_equal(policycache_flush(f.pc, false), 1);
    assert_true(f.src.ready(f.src.ctx));
    struct policy_view *v1 = f.src.acquire(f.src.ctx);
    /* a Service changes: a new view sharing the same loaded policy and the same objects */
    char *s = svc("web", 2);
    feed(&f, CACHE_SERVICES, 'a', s);
    free(s);
    assert_int_equal(policycache_flush(f.pc, false), 2);
    assert_int_equal(policycache_flush(f.pc, false), 2); /* nothing changed */
    struct policy_view *v2 = f.src.acquire(f.src.ctx);
    const struct policy *const *p1 = NULL, *const *p2 = NULL;
    assert_int_equal(view_policies(v1, &p1), 1);
    assert_int_equal(view_policies(v2, &p2), 1);
    assert_ptr_equal(p1[0], p2[0]);
    assert_non_null(view_mesh(v2, "default"));
    assert_ptr_equal(view_mesh(v1, "default"), view_mesh(v2, "default"));
    const struct cache_entry *ns = cache_get(f.s[CACHE_NAMESPACES], NULL, "shop");
    assert_ptr_equal(view_namespace(v2, "shop"), ns->object);
    cache_entry_unref(ns);
    const struct cache_entry *rs = cache_get(f.s[CACHE_REPLICASETS], "shop", "web-1");
    assert_ptr_equal(view_owner(v2, "ReplicaSet", "shop", "web-1"), rs->object);
    cache_entry_unref(rs);
    assert_non_null(view_owner(v2, "Job", "shop", "j"));
    /* the entry's loaded form */
    const struct cache_entry *e = cache_get(f.s[CACHE_MESHMETRICS], "kuma-system", "a");
    const struct policycache_loaded *l = e->extra;
    assert_ptr_equal(l->policy, p2[0]);
    assert_string_equal(l->kind, "MeshMetric");
    assert_string_equal(l->id, "kuma-system/a");
    assert_null(l->errors);
    cache_entry_unref(e);
    /* a relist with the same version keeps the loaded policy */
    feed(&f, CACHE_MESHMETRICS, 'b', NULL);
    feed(&f, CACHE_MESHMETRICS, 'i', a);
    feed(&f, CACHE_MESHMETRICS, 'e', NULL);
    policycache_flush(f.pc, true);
    struct policy_view *v3 = f.src.acquire(f.src.ctx);
    const struct policy *const *p3 = NULL;
    assert_int_equal(view_policies(v3, &p3), 1);
    assert_ptr_equal(p3[0], p1[0]);
    /* a new version is loaded again */
    char *a2 = mm("a", "kuma-system", 5671, 2);
    feed(&f, CACHE_MESHMETRICS, 'u', a2);
    policycache_flush(f.pc, false);
    struct policy_view *v4 = f.src.acquire(f.src.ctx);
    const struct policy *const *p4 = NULL;
    assert_int_equal(view_policies(v4, &p4), 1);
    assert_ptr_not_equal(p4[0], p1[0]);
    /* views held keep what they had */
    assert_int_equal(view_generation(v1), 1);
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(json_array_get(json_object_get(policy_default(p1[0]), "backends"), 0),
                            "prometheus"),
            "port")),
        5670);
    view_unref(v1);
    view_unref(v2);
    view_unref(v3);
    view_unref(v4);
    free(a);
    free(a2);
    fixture_cleanup(&f);
}

static void test_invalid_left_out(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 10, 100, false);
    char *good = mm("good", "kuma-system", 5670, 1);
    char *bad = mm("bad", "shop", 0, 2);
    const char *mms[] = {good, bad,
                         "{apiVersion: kuma.io/v1alpha1, kind: MeshMetric, metadata: {name: typo,"
                         " namespace: shop}, spec: {targetRef: {kind: Mesh}, default:"
                         " {backends: [{type: Nope}]}}}",
                         NULL};
    sync_kind(&f, CACHE_MESHMETRICS, mms);
    const char *meshes[] = {
        "{kind: Mesh, metadata: {name: broken}, spec: {metrics: {enabledBackend: x,"
        " backends: [{name: y, type: prometheus}]}}}",
        NULL};
    sync_kind(&f, CACHE_MESHES, meshes);
    sync_kind(&f, CACHE_NAMESPACES, NULL);
    sync_kind(&f, CACHE_SERVICES, NULL);
    sync_kind(&f, CACHE_REPLICASETS, NULL);
    sync_kind(&f, CACHE_JOBS, NULL);
    policycache_flush(f.pc, false);
    struct policy_view *v = f.src.acquire(f.src.ctx);
    const struct policy *const *ps = NULL;
    assert_int_equal(view_policies(v, &ps), 1);
    assert_string_equal(ps[0]->id, "kuma-system/good");
    const struct view_rejection *rej = NULL;
    size_t n = view_rejections(v, &rej);
    for (size_t i = 0; i < n; i++)
        print_message("    rejected %s %s: %s\n", rej[i].kind, rej[i].id, rej[i].errors);
    assert_int_equal(n, 3);
    assert_string_equal(rej[0].kind, "MeshMetric"); /* MeshMetrics sorted by key, then Meshes */
    assert_string_equal(rej[0].id, "shop/bad");
    assert_non_null(strstr(rej[0].errors, "port"));
    assert_string_equal(rej[1].id, "shop/typo");
    assert_string_equal(rej[2].kind, "Mesh");
    assert_string_equal(rej[2].id, "Mesh/broken");
    struct view_counts c;
    view_counts(v, &c);
    assert_int_equal(c.rejected, 3);
    view_unref(v);
    /* fixing it brings it in */
    char *fixed = mm("bad", "shop", 5680, 3);
    feed(&f, CACHE_MESHMETRICS, 'u', fixed);
    policycache_flush(f.pc, false);
    v = f.src.acquire(f.src.ctx);
    assert_int_equal(view_policies(v, &ps), 2);
    assert_int_equal(view_rejections(v, &rej), 2);
    view_unref(v);
    free(good);
    free(bad);
    free(fixed);
    fixture_cleanup(&f);
}

/* Every kind the view reads makes a new generation; pods do not (not in the view yet). */
static void test_each_kind_changes_the_view(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 10, 100, false);
    sync_all(&f);
    uint64_t g = policycache_flush(f.pc, false);
    assert_int_equal(g, 1);
    static const struct {
        enum cache_kind kind;
        const char *obj;
    } changes[] = {
        {CACHE_MESHMETRICS, "{kind: MeshMetric, metadata: {name: m, namespace: kuma-system}}"},
        {CACHE_MESHES, "{kind: Mesh, metadata: {name: default}}"},
        {CACHE_NAMESPACES, "{metadata: {name: shop}}"},
        {CACHE_SERVICES, "{metadata: {name: s, namespace: shop}}"},
        {CACHE_REPLICASETS, "{metadata: {name: r, namespace: shop}}"},
        {CACHE_JOBS, "{metadata: {name: j, namespace: shop}}"},
    };
    for (size_t i = 0; i < sizeof changes / sizeof *changes; i++) {
        feed(&f, changes[i].kind, 'a', changes[i].obj);
        assert_int_equal(policycache_flush(f.pc, false), ++g);
        feed(&f, changes[i].kind, 'd', changes[i].obj);
        assert_int_equal(policycache_flush(f.pc, false), ++g);
    }
    feed(&f, CACHE_PODS, 'a',
         "{metadata: {name: p, namespace: shop}, spec: {containers: [{name: kuma-sidecar}]}}");
    assert_int_equal(policycache_flush(f.pc, false), g);
    fixture_cleanup(&f);
}

/*
 * Updates that change only what the view never reads (status, resourceVersion, generation,
 * managedFields) make no new generation: a status write must not re-evaluate every pod.
 * Anything else does, metadata included.
 */
static void test_irrelevant_updates(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 10, 100, false);
    sync_all(&f);
    uint64_t g = policycache_flush(f.pc, false);
    static const char *const BASE =
        "{kind: MeshMetric, metadata: {name: m, namespace: kuma-system, resourceVersion: '1', "
        "generation: 1, labels: {a: b}}, spec: {targetRef: {kind: Mesh}}}";
    feed(&f, CACHE_MESHMETRICS, 'a', BASE);
    assert_int_equal(policycache_flush(f.pc, false), ++g);
    static const struct {
        enum cache_kind kind;
        const char *obj;
        bool new_generation;
    } cases[] = {
        {CACHE_MESHMETRICS,
         "{kind: MeshMetric, metadata: {name: m, namespace: kuma-system, resourceVersion: '2', "
         "generation: 2, labels: {a: b}, managedFields: [{manager: x}]}, spec: {targetRef: {kind: "
         "Mesh}}, status: {conditions: [{type: T, status: 'True', reason: R, message: M}]}}",
         false},
        {CACHE_MESHMETRICS,
         "{kind: MeshMetric, metadata: {name: m, namespace: kuma-system, resourceVersion: '3', "
         "generation: 2, labels: {a: c}}, spec: {targetRef: {kind: Mesh}}}",
         true},
        {CACHE_MESHMETRICS,
         "{kind: MeshMetric, metadata: {name: m, namespace: kuma-system, resourceVersion: '4', "
         "generation: 3, labels: {a: c}}, spec: {targetRef: {kind: Mesh}, default: {}}}",
         true},
        {CACHE_MESHMETRICS,
         "{kind: MeshMetric, metadata: {name: m, namespace: kuma-system, resourceVersion: '5', "
         "generation: 3, labels: {a: c}, annotations: {x: y}}, spec: {targetRef: {kind: Mesh}, "
         "default: {}}}",
         true},
        {CACHE_SERVICES, "{metadata: {name: s, namespace: shop, resourceVersion: '1'}}", true},
        {CACHE_SERVICES,
         "{metadata: {name: s, namespace: shop, resourceVersion: '2'}, status: {loadBalancer: "
         "{ingress: [{ip: 1.2.3.4}]}}}",
         false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        feed(&f, cases[i].kind, cases[i].kind == CACHE_SERVICES && i == 4 ? 'a' : 'u',
             cases[i].obj);
        uint64_t got = policycache_flush(f.pc, false);
        if (cases[i].new_generation)
            g++;
        if (got != g)
            fail_msg("case %zu: generation %llu, want %llu", i, (unsigned long long)got,
                     (unsigned long long)g);
    }
    fixture_cleanup(&f);
}

/* The extension point: the pod store as a contributor. */
struct contrib {
    int calls;
};

static void contribute(void *ctx, struct view_builder *b, const struct cache_entry *e)
{
    struct contrib *c = ctx;
    (void)b;
    assert_non_null(e->pod);
    c->calls++;
}

static void test_contributor(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 10, 100, false);
    struct contrib c = {0};
    assert_int_equal(policycache_add_contributor(f.pc, f.s[CACHE_PODS], contribute, &c), MM_OK);
    for (size_t i = 0; i < sizeof view_kinds / sizeof *view_kinds; i++)
        if (view_kinds[i] != CACHE_PODS)
            sync_kind(&f, view_kinds[i], NULL);
    policycache_flush(f.pc, false);
    assert_false(f.src.ready(f.src.ctx)); /* the contributor's store has not synced */
    const char *pods[] = {
        "{metadata: {name: p, namespace: shop}, spec: {containers: [{name: kuma-sidecar}]}}",
        "{metadata: {name: q, namespace: shop}, spec: {containers: [{name: kuma-sidecar}]}}", NULL};
    sync_kind(&f, CACHE_PODS, pods);
    uint64_t g = policycache_flush(f.pc, false);
    assert_true(f.src.ready(f.src.ctx));
    assert_int_equal(c.calls, 2);
    feed(&f, CACHE_PODS, 'd', pods[0]);
    assert_int_equal(policycache_flush(f.pc, false), g + 1);
    assert_int_equal(c.calls, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(policycache_add_contributor(f.pc, f.s[CACHE_PODS], contribute, &c), MM_OK);
    assert_int_equal(policycache_add_contributor(f.pc, f.s[CACHE_PODS], contribute, &c),
                     MM_ERR_TOO_BIG);
    fixture_cleanup(&f);
}

static void test_wait_newer_times_out(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 10, 100, true);
    uint64_t t0 = ms_now();
    struct policy_view *v = f.src.wait_newer(f.src.ctx, 0, 100);
    assert_true(ms_now() - t0 >= 95);
    assert_int_equal(view_generation(v), 0);
    view_unref(v);
    policycache_stop(f.pc);
    policycache_stop(f.pc);
    fixture_cleanup(&f);
}

/* ---- stress: readers evaluate pods while views are swapped (TSan) --------------------------- */

#define READERS 4

struct stress {
    struct fixture *f;
    atomic_bool done;
    atomic_ullong evaluations;
    json_t *pod;
};

static void *reader(void *arg)
{
    struct stress *s = arg;
    struct engine_config cfg;
    engine_config_init(&cfg);
    uint64_t last = 0;
    while (!atomic_load(&s->done)) {
        struct policy_view *v = s->f->src.acquire(s->f->src.ctx);
        assert_true(view_generation(v) >= last);
        last = view_generation(v);
        struct engine_result r;
        engine_result_init(&r);
        struct mm_error err;
        if (engine_evaluate(&cfg, v, s->pod, NULL, &r, &err) != MM_OK)
            fail_msg("evaluate: %s", err.message);
        engine_result_cleanup(&r);
        view_unref(v);
        atomic_fetch_add(&s->evaluations, 1);
    }
    return NULL;
}

static void test_stress(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, 1, 5, true);
    sync_all(&f);
    struct policy_view *v = f.src.wait_newer(f.src.ctx, 0, 2000);
    view_unref(v);
    struct stress s = {.f = &f,
                       .pod = tu_yaml("{kind: Pod, metadata: {name: web-1, namespace: shop,"
                                      " labels: {app: web}}, spec: {containers: [{name: app,"
                                      " ports: [{containerPort: 8080}]}, {name: kuma-sidecar}]}}")};
    atomic_init(&s.done, false);
    atomic_init(&s.evaluations, 0);
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &s), 0);
    for (int i = 0; i < 300; i++) {
        char *p = mm(i % 2 ? "a" : "b", i % 3 ? "kuma-system" : "shop", 5000 + i, 10 + i);
        feed(&f, CACHE_MESHMETRICS, 'u', p);
        free(p);
        char *sv = svc("web", 10 + i);
        feed(&f, CACHE_SERVICES, 'u', sv);
        free(sv);
        if (i % 50 == 0) { /* a relist in the middle */
            feed(&f, CACHE_NAMESPACES, 'b', NULL);
            feed(&f, CACHE_NAMESPACES, 'i', "{metadata: {name: shop}}");
            feed(&f, CACHE_NAMESPACES, 'e', NULL);
        }
        usleep(500);
    }
    usleep(50 * 1000);
    atomic_store(&s.done, true);
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);
    uint64_t g = generation(&f);
    print_message("    %llu evaluations over %llu view generations\n",
                  (unsigned long long)atomic_load(&s.evaluations), (unsigned long long)g);
    assert_true(g > 10);
    json_decref(s.pod);
    fixture_cleanup(&f);
}

/*
 * Under TSan, two patterns of jansson 2.14 (an uninstrumented library) on
 * values that threads share (view objects, merge memo results) are
 * reported although the shared data never changes after it is built:
 *  - the inline json_incref/json_decref (jansson.h) read the count with a
 *    plain load, to skip static values (count -1), before the atomic update;
 *  - the decrement is release-only (no acquire when it reaches zero), so
 *    the free in json_delete is not ordered after other threads' earlier
 *    reads in the C11 model (on hardware the control dependency orders it).
 * Both are suppressed; our own reference counts (entries, views, policies)
 * are C11 atomics with acquire-release and stay checked.
 */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:json_incref\nrace:json_decref\ncalled_from_lib:libjansson.so.4\n";
}

int main(void)
{
    xalloc_install_json();
    log_setup(LOG_ERROR, LOG_FORMAT_LOGFMT); /* the invalid policies' warnings are expected */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_needs_stores),
        cmocka_unit_test(test_ready_after_every_sync),
        cmocka_unit_test(test_debounce_burst),
        cmocka_unit_test(test_debounce_constant_stream),
        cmocka_unit_test(test_shared_and_loaded_once),
        cmocka_unit_test(test_invalid_left_out),
        cmocka_unit_test(test_each_kind_changes_the_view),
        cmocka_unit_test(test_irrelevant_updates),
        cmocka_unit_test(test_contributor),
        cmocka_unit_test(test_wait_newer_times_out),
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
