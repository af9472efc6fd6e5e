/*
 * The operator's informer caches against a real API server (bench/operator.sh
 * drives it against tests/apiserver; tests/e2e/caches_test.sh uses its watch
 * mode).
 *
 *   operator_bench sync  [--kubeconfig F] [--full] [--page-size N] [--timeout-s N]
 *       Start every cache and the policy view, wait until the view is ready
 *       (every store listed once), print one JSON line: time to sync, RSS
 *       before and after, peak RSS, CPU seconds (user+sys from
 *       /proc/self/stat), objects per store, the view's counts. --full keeps
 *       pods as whole jansson trees (the baseline of the compact store).
 *
 *   operator_bench watch [--kubeconfig F] --state FILE [--interval-ms N]
 *                        [--backoff-max-ms N]
 *       Run until SIGINT/SIGTERM, writing FILE (atomically, every interval)
 *       with every store's keys and resourceVersions, the reflectors'
 *       counters, the view's generation, policies and rejections.
 *
 *   operator_bench converge [--kubeconfig F] [--timeout-s N]
 *       The caches, the policy view and the reconcilers (always the leader):
 *       the time until every pod is evaluated and every MeshMetric status
 *       written, then the time until everything converges after one
 *       mesh-wide MeshMetric changes its appendProfiles: every pod's config
 *       changes (profiles are concatenated across policies), so every pod is
 *       evaluated again and goes out of sync, and every MeshMetric that
 *       selects pods gets a new status. The change is undone at the end. One
 *       JSON line.
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/view.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "operator/cache.h"
#include "operator/policycache.h"
#include "operator/reconcile.h"
#include "util/log.h"
#include "util/xalloc.h"

struct args {
    const char *cmd;
    const char *kubeconfig;
    const char *state;
    bool full;
    long page_size;
    long timeout_s;
    long interval_ms;
    long backoff_max_ms;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A "VmRSS:"-style line of /proc/self/status, in kB. */
static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl))
            v = strtol(line + kl, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* utime + stime of this process, in seconds (/proc/self/stat fields 14 and 15). */
static double cpu_s(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    char buf[2048];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
     * stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int usage(void)
{
    fprintf(stderr, "usage: operator_bench sync|watch|converge [--kubeconfig F] [--full]\n"
                    "         [--page-size N] [--timeout-s N] [--state FILE] [--interval-ms N]\n"
                    "         [--backoff-max-ms N]\n");
    return 2;
}

static bool parse(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof *a);
    a->timeout_s = 600;
    a->interval_ms = 200;
    if (argc < 2)
        return false;
    a->cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--full")) {
            a->full = true;
            continue;
        }
        if (!v)
            return false;
        if (!strcmp(argv[i], "--kubeconfig"))
            a->kubeconfig = v;
        else if (!strcmp(argv[i], "--state"))
            a->state = v;
        else if (!strcmp(argv[i], "--page-size"))
            a->page_size = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "--timeout-s"))
            a->timeout_s = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "--interval-ms"))
            a->interval_ms = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "--backoff-max-ms"))
            a->backoff_max_ms = strtol(v, NULL, 10);
        else
            return false;
        i++;
    }
    return true;
}

static struct k8s_client *client_from(const struct args *a)
{
    struct k8s_load_options lo;
    struct k8s_config cfg;
    struct mm_error err;
    struct k8s_error kerr = K8S_ERROR_INIT;
    struct k8s_client *c = NULL;
    k8s_config_init(&cfg);
    k8s_load_options_from_process(&lo, a->kubeconfig, NULL);
    if (k8s_config_load(&lo, &cfg, &err) != MM_OK) {
        fprintf(stderr, "operator_bench: %s: %s\n", err.field, err.message);
    } else if (k8s_client_create(&cfg, NULL, &c, &kerr) != MM_OK) {
        fprintf(stderr, "operator_bench: %s\n", kerr.base.message);
        c = NULL;
    }
    k8s_error_cleanup(&kerr);
    k8s_config_cleanup(&cfg);
    return c;
}

struct running {
    struct caches *cs;
    struct policycache *pc;
    struct policy_source src;
    struct reconciler *rec; /* converge only */
    struct k8s_client *client;
};

/* Whether the MeshMetric CRD has a status subresource (ours) or not (Kuma's). */
static bool status_subresource(struct k8s_client *c)
{
    static const struct k8s_resource crds = {"apiextensions.k8s.io", "v1",
                                             "customresourcedefinitions"};
    json_t *crd = NULL;
    struct k8s_error err = K8S_ERROR_INIT;
    bool sub = false;
    if (k8s_get(c, &crds, NULL, "meshmetrics.kuma.io", NULL, NULL, &crd, &err) == MM_OK) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(json_object_get(crd, "spec"), "versions"), i, v) sub |=
            json_is_object(json_object_get(json_object_get(v, "subresources"), "status"));
    }
    json_decref(crd);
    k8s_error_cleanup(&err);
    return sub;
}

static bool start(struct k8s_client *c, const struct args *a, struct running *r)
{
    struct caches_options co;
    struct mm_error err;
    caches_options_init(&co);
    co.keep_full_pods = a->full;
    if (a->page_size > 0)
        co.reflector.page_size = a->page_size;
    if (a->backoff_max_ms > 0) {
        co.reflector.backoff_max_ms = (uint64_t)a->backoff_max_ms;
        if (co.reflector.backoff_initial_ms > co.reflector.backoff_max_ms)
            co.reflector.backoff_initial_ms = co.reflector.backoff_max_ms;
    }
    memset(r, 0, sizeof *r);
    if (caches_create(c, &co, &r->cs, &err) != MM_OK) {
        fprintf(stderr, "operator_bench: caches: %s\n", err.message);
        return false;
    }
    struct policycache_stores st;
    policycache_stores_from(r->cs, &st);
    if (policycache_create(&st, NULL, &r->pc, &err) != MM_OK ||
        policycache_start(r->pc, &err) != MM_OK) {
        fprintf(stderr, "operator_bench: policy cache: %s\n", err.message);
        return false;
    }
    r->src = policycache_source(r->pc);
    r->client = c;
    if (!strcmp(a->cmd, "converge")) {
        struct reconcile_config rc = {.caches = r->cs,
                                      .policies = r->pc,
                                      .client = c,
                                      .status_subresource = status_subresource(c)};
        if (reconciler_create(&rc, &r->rec, &err) != MM_OK) {
            fprintf(stderr, "operator_bench: reconciler: %s\n", err.message);
            return false;
        }
    }
    if (caches_start(r->cs, &err) != MM_OK) {
        fprintf(stderr, "operator_bench: start: %s: %s\n", err.field, err.message);
        return false;
    }
    return true;
}

static void stop(struct running *r)
{
    if (r->rec)
        reconciler_stop(r->rec);
    if (r->cs)
        caches_stop(r->cs); /* no more store callbacks */
    reconciler_free(r->rec);
    policycache_free(r->pc);
    caches_free(r->cs);
}

/* ---- sync ------------------------------------------------------------------------------ */

static int sync_main(const struct args *a)
{
    double cpu0 = cpu_s();
    long rss0 = status_kb("VmRSS:");
    struct k8s_client *c = client_from(a);
    if (!c)
        return 1;
    struct running r;
    long rss_before = status_kb("VmRSS:");
    double cpu_before = cpu_s();
    double t0 = now_s();
    if (!start(c, a, &r)) {
        stop(&r);
        k8s_client_free(c);
        return 1;
    }
    bool synced = caches_wait_synced(r.cs, (unsigned)(a->timeout_s * 1000));
    double t_sync = now_s() - t0;
    while (synced && !r.src.ready(r.src.ctx) && now_s() - t0 < (double)a->timeout_s)
        usleep(1000);
    double t_ready = now_s() - t0;
    double cpu = cpu_s() - cpu_before;
    long rss = status_kb("VmRSS:");
    long hwm = status_kb("VmHWM:");
    json_t *out = json_pack("{s:s, s:b, s:f, s:f, s:i, s:i, s:i, s:i, s:f, s:f}", "mode",
                            a->full ? "full" : "compact", "synced", synced, "sync_s", t_sync,
                            "ready_s", t_ready, "rss_start_kb", (json_int_t)rss0, "rss_before_kb",
                            (json_int_t)rss_before, "rss_synced_kb", (json_int_t)rss, "hwm_kb",
                            (json_int_t)hwm, "cpu_s", cpu, "cpu_setup_s", cpu_before - cpu0);
#ifdef __GLIBC__
    struct mallinfo2 mi = mallinfo2();
    json_object_set_new(out, "heap",
                        json_pack("{s:i, s:i, s:i}", "in_use_kb", (json_int_t)(mi.uordblks / 1024),
                                  "free_kb", (json_int_t)(mi.fordblks / 1024), "mmap_kb",
                                  (json_int_t)(mi.hblkhd / 1024)));
#endif
    json_t *stores = json_object();
    for (unsigned k = 0; k < CACHE_KIND_COUNT; k++) {
        struct cache_store *s = caches_store(r.cs, (enum cache_kind)k);
        struct cache_stats cst;
        cache_stats(s, &cst);
        struct k8s_reflector_state rs;
        caches_reflector_state(r.cs, (enum cache_kind)k, &rs);
        json_object_set_new(
            stores, cache_kind_info((enum cache_kind)k)->name,
            json_pack("{s:i, s:i, s:i, s:b, s:i}", "objects", (json_int_t)cst.objects, "bytes",
                      (json_int_t)cst.bytes, "skipped", (json_int_t)cst.skipped, "served",
                      caches_served(r.cs, (enum cache_kind)k), "lists", (json_int_t)rs.lists));
    }
    json_object_set_new(out, "stores", stores);
    /* one more view of the same caches: what a change costs once the debounce has passed */
    double tb = now_s();
    (void)policycache_flush(r.pc, true);
    double build_ms = (now_s() - tb) * 1000.0;
    struct policy_view *v = r.src.acquire(r.src.ctx);
    struct view_counts vc;
    view_counts(v, &vc);
    json_object_set_new(out, "view_build_ms", json_real(build_ms));
    json_object_set_new(out, "view",
                        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "generation",
                                  (json_int_t)view_generation(v), "meshmetrics",
                                  (json_int_t)vc.meshmetrics, "meshes", (json_int_t)vc.meshes,
                                  "namespaces", (json_int_t)vc.namespaces, "services",
                                  (json_int_t)vc.services, "owners", (json_int_t)vc.owners,
                                  "rejected", (json_int_t)vc.rejected));
    view_unref(v);
    char *text = json_dumps(out, JSON_COMPACT);
    printf("%s\n", text);
    free(text);
    json_decref(out);
    stop(&r);
    k8s_client_free(c);
    return synced ? 0 : 1;
}

/* ---- watch ----------------------------------------------------------------------------- */

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static json_t *state_json(struct running *r)
{
    json_t *stores = json_object(), *reflectors = json_object();
    for (unsigned k = 0; k < CACHE_KIND_COUNT; k++) {
        const char *name = cache_kind_info((enum cache_kind)k)->name;
        struct cache_store *s = caches_store(r->cs, (enum cache_kind)k);
        const struct cache_entry **list = NULL;
        size_t n = cache_list(s, NULL, &list);
        json_t *objs = json_object();
        for (size_t i = 0; i < n; i++)
            json_object_set_new(objs, list[i]->key, json_string(list[i]->resource_version));
        cache_list_free(list, n);
        json_object_set_new(stores, name,
                            json_pack("{s:b, s:b, s:o}", "synced", cache_synced(s), "served",
                                      caches_served(r->cs, (enum cache_kind)k), "objects", objs));
        struct k8s_reflector_state rs;
        caches_reflector_state(r->cs, (enum cache_kind)k, &rs);
        json_object_set_new(reflectors, name,
                            json_pack("{s:i, s:i, s:i, s:i, s:i, s:s}", "lists",
                                      (json_int_t)rs.lists, "relists", (json_int_t)rs.relists,
                                      "watches", (json_int_t)rs.watches, "expired",
                                      (json_int_t)rs.expired, "errors", (json_int_t)rs.errors,
                                      "last_error", rs.last_error));
    }
    struct policy_view *v = r->src.acquire(r->src.ctx);
    json_t *policies = json_array(), *rejections = json_array();
    const struct policy *const *ps = NULL;
    size_t n = view_policies(v, &ps);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(policies, json_string(ps[i]->id));
    n = view_meshes(v, &ps);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(policies, json_string(ps[i]->id));
    const struct view_rejection *rej = NULL;
    n = view_rejections(v, &rej);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(rejections, json_pack("{s:s, s:s, s:s}", "kind", rej[i].kind, "id",
                                                    rej[i].id, "errors", rej[i].errors));
    uint64_t ok = 0, failed = 0;
    int64_t last_ok = 0;
    policycache_reload_counts(r->pc, &ok, &failed, &last_ok);
    json_t *out =
        json_pack("{s:b, s:b, s:i, s:o, s:o, s:o, s:o, s:i}", "synced", caches_synced(r->cs),
                  "ready", r->src.ready(r->src.ctx), "generation", (json_int_t)view_generation(v),
                  "stores", stores, "reflectors", reflectors, "policies", policies, "rejections",
                  rejections, "reloads", (json_int_t)ok);
    view_unref(v);
    return out;
}

static int watch_main(const struct args *a)
{
    if (!a->state)
        return usage();
    struct k8s_client *c = client_from(a);
    if (!c)
        return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct running r;
    int rc = 0;
    if (!start(c, a, &r)) {
        rc = 1;
        goto done;
    }
    char *tmp = xasprintf("%s.tmp", a->state);
    while (!stopping) {
        json_t *st = state_json(&r);
        if (json_dump_file(st, tmp, JSON_COMPACT | JSON_SORT_KEYS) == 0)
            (void)rename(tmp, a->state);
        json_decref(st);
        struct timespec ts = {a->interval_ms / 1000, (a->interval_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) && errno == EINTR && !stopping)
            ;
    }
    free(tmp);
done:
    stop(&r);
    k8s_client_free(c);
    return rc;
}

/* ---- converge ------------------------------------------------------------------------- */

struct pick {
    char ns[128], name[128];
    json_t *profiles; /* its original spec.default.sidecar.profiles.appendProfiles (or null) */
};

/* The first mesh-wide MeshMetric (system namespace, targetRef Mesh or absent). */
static bool pick_policy(void *ctx, const struct cache_entry *e)
{
    struct pick *p = ctx;
    const json_t *spec = json_object_get(e->object, "spec");
    const json_t *tr = json_object_get(spec, "targetRef");
    const char *kind = json_string_value(json_object_get(tr, "kind"));
    if (p->name[0] || strcmp(e->namespace, "kuma-system") || (kind && strcmp(kind, "Mesh")) ||
        json_object_size(tr) > 1)
        return true;
    snprintf(p->ns, sizeof p->ns, "%s", e->namespace);
    snprintf(p->name, sizeof p->name, "%s", e->name);
    json_t *ap = json_object_get(
        json_object_get(json_object_get(json_object_get(spec, "default"), "sidecar"), "profiles"),
        "appendProfiles");
    p->profiles = ap ? json_deep_copy(ap) : json_null();
    return false;
}

/* A MeshMetric whose status still counts an in-sync dataplane. */
static bool find_in_sync(void *ctx, const struct cache_entry *e)
{
    bool *found = ctx;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(e->object, "status"), "conditions"), i, c)
    {
        const char *t = json_string_value(json_object_get(c, "type"));
        const char *r = json_string_value(json_object_get(c, "reason"));
        if (t && r && !strcmp(t, "meshmetric.kuma.io/DataplanesInSync") &&
            !strncmp(r, "InSync:", 7) && strncmp(r, "InSync:0,", 9)) {
            *found = true;
            return false;
        }
    }
    return true;
}

static int converge_main(const struct args *a)
{
    struct k8s_client *c = client_from(a);
    if (!c)
        return 1;
    struct running r;
    struct mm_error err;
    int rc = 1;
    double cpu0 = cpu_s(), t0 = now_s();
    if (!start(c, a, &r))
        goto done;
    if (reconciler_start(r.rec, &err) != MM_OK) {
        fprintf(stderr, "operator_bench: %s\n", err.message);
        goto done;
    }
    unsigned timeout_ms = (unsigned)(a->timeout_s * 1000);
    if (!caches_wait_synced(r.cs, timeout_ms))
        goto done;
    while (!r.src.ready(r.src.ctx) && now_s() - t0 < (double)a->timeout_s)
        usleep(1000);
    double t_ready = now_s() - t0;
    usleep(300 * 1000); /* let the first view's pod and status keys be queued */
    bool idle = reconciler_wait_idle(r.rec, timeout_ms);
    double t_initial = now_s() - t0;
    struct reconcile_stats s0;
    reconciler_stats(r.rec, &s0);

    struct cache_store *mms = caches_store(r.cs, CACHE_MESHMETRICS);
    struct pick p = {{0}, {0}, NULL};
    cache_foreach(mms, "kuma-system", pick_policy, &p);
    if (!p.name[0]) {
        fprintf(stderr, "operator_bench converge: no mesh-wide MeshMetric to change\n");
        goto done;
    }
    struct policy_view *v = r.src.acquire(r.src.ctx);
    uint64_t gen0 = view_generation(v);
    view_unref(v);
    static const struct k8s_resource mm = {"kuma.io", "v1alpha1", "meshmetrics"};
    json_t *patch = json_pack("{s:{s:{s:{s:{s:[{s:s}]}}}}}", "spec", "default", "sidecar",
                              "profiles", "appendProfiles", "name", "None");
    struct k8s_error kerr = K8S_ERROR_INIT;
    double t1 = now_s();
    enum mm_status st =
        k8s_patch(c, &mm, p.ns, p.name, NULL, K8S_PATCH_MERGE, patch, NULL, NULL, &kerr);
    json_decref(patch);
    if (st) {
        fprintf(stderr, "operator_bench converge: patch: %s\n", kerr.base.message);
        k8s_error_cleanup(&kerr);
        goto done;
    }
    k8s_error_cleanup(&kerr);
    bool converged = false;
    while (now_s() - t1 < (double)a->timeout_s) {
        v = r.src.acquire(r.src.ctx);
        uint64_t gen = view_generation(v);
        view_unref(v);
        bool in_sync = false;
        if (gen > gen0)
            cache_foreach(mms, NULL, find_in_sync, &in_sync);
        if (gen > gen0 && !in_sync && reconciler_wait_idle(r.rec, 10)) {
            converged = true;
            break;
        }
        usleep(5000);
    }
    double t_converge = now_s() - t1;
    struct reconcile_stats s1;
    reconciler_stats(r.rec, &s1);
    json_t *out = json_pack(
        "{s:b, s:b, s:f, s:f, s:f, s:i, s:i, s:i, s:i, s:i, s:s, s:f}", "idle", idle, "converged",
        converged, "ready_s", t_ready, "initial_s", t_initial, "converge_s", t_converge, "pods",
        (json_int_t)s1.pods, "status_writes_initial", (json_int_t)s0.status_writes,
        "status_writes_change", (json_int_t)(s1.status_writes - s0.status_writes),
        "pod_reconciles_change", (json_int_t)(s1.pod_ok - s0.pod_ok), "out_of_sync",
        (json_int_t)s1.out_of_sync, "changed", p.name, "cpu_s", cpu_s() - cpu0);
    char *text = json_dumps(out, JSON_COMPACT);
    printf("%s\n", text);
    free(text);
    json_decref(out);
    rc = converged ? 0 : 1;
    /* Put the policy back for the next run. */
    json_t *back = json_pack("{s:{s:{s:{s:{s:O}}}}}", "spec", "default", "sidecar", "profiles",
                             "appendProfiles", p.profiles);
    if (k8s_patch(c, &mm, p.ns, p.name, NULL, K8S_PATCH_MERGE, back, NULL, NULL, &kerr) != MM_OK)
        fprintf(stderr, "operator_bench converge: restoring %s: %s\n", p.name, kerr.base.message);
    k8s_error_cleanup(&kerr);
    json_decref(back);
    json_decref(p.profiles);
    p.profiles = NULL;
done:
    stop(&r);
    k8s_client_free(c);
    return rc;
}

int main(int argc, char **argv)
{
    struct args a;
    xalloc_install_json();
    if (!parse(argc, argv, &a))
        return usage();
    log_setup(!strcmp(a.cmd, "watch") ? LOG_INFO : LOG_WARN, LOG_FORMAT_LOGFMT);
    if (!strcmp(a.cmd, "sync"))
        return sync_main(&a);
    if (!strcmp(a.cmd, "watch"))
        return watch_main(&a);
    if (!strcmp(a.cmd, "converge"))
        return converge_main(&a);
    return usage();
}
