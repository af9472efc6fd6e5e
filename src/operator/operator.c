/* The operator's parts, started and stopped in order (see operator.h). */
#include "operator/operator.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "k8s/client.h"
#include "k8s/config.h"
#include "k8s/status.h"
#include "operator/cache.h"
#include "operator/events.h"
#include "operator/leader.h"
#include "operator/policycache.h"
#include "operator/reconcile.h"
#include "operator/repair.h"
#include "operator/webhookcerts.h"
#include "util/log.h"
#include "util/xalloc.h"

struct operator_main {
    struct operator_config cfg;
    char *namespace;
    char *identity;
    struct k8s_config kcfg;
    struct k8s_client *client;
    struct caches *caches;
    struct policycache *policies;
    struct reconciler *reconciler;
    struct events *events;
    struct repair *repair;
    struct leader_elector *leader;
    struct webhookcerts *certs;
    bool status_subresource;
    atomic_bool stopping;
    bool started;
};

/* ---- leadership --------------------------------------------------------------------------- */

static bool is_leader(void *ctx)
{
    struct operator_main *op = ctx;
    return !op->leader || leader_is_leader(op->leader);
}

static void started_leading(void *ctx)
{
    struct operator_main *op = ctx;
    log_kv(LOG_INFO, "became the leader: writing status, Events and restarts", "identity",
           op->identity, NULL);
    if (op->reconciler)
        reconciler_became_leader(op->reconciler);
    if (op->certs)
        webhookcerts_kick(op->certs);
}

static void stopped_leading(void *ctx)
{
    struct operator_main *op = ctx;
    if (atomic_load(&op->stopping)) {
        log_kv(LOG_INFO, "stopped leading (shutting down)", "identity", op->identity, NULL);
        return;
    }
    log_kv(LOG_ERROR, "leader election lost", "identity", op->identity, NULL);
    if (op->cfg.on_fatal)
        op->cfg.on_fatal(op->cfg.fatal_ctx, "leader election lost");
}

static void new_leader(void *ctx, const char *identity)
{
    struct operator_main *op = ctx;
    if (identity && *identity && strcmp(identity, op->identity))
        log_kv(LOG_INFO, "another replica leads", "leader", identity, NULL);
}

/*
 * POD_NAME (the Deployment sets it from the downward API: unique among the replicas, and a
 * restarted container keeps it), else hostname_<random> (unique per process).
 */
static char *make_identity(void)
{
    const char *pod = getenv("POD_NAME");
    if (pod && *pod)
        return xstrdup(pod);
    char host[128] = "meshmetric-operator";
    (void)gethostname(host, sizeof host - 1);
    unsigned char rnd[6] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(rnd, 1, sizeof rnd, f) != sizeof rnd)
            memset(rnd, 0, sizeof rnd);
        fclose(f);
    }
    return xasprintf("%s_%02x%02x%02x%02x%02x%02x", host, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
                     rnd[5]);
}

/* ---- discovery ------------------------------------------------------------------------------ */

/* Whether the MeshMetric CRD has a status subresource (ours) or not (Kuma's). */
static bool detect_status_subresource(struct operator_main *op)
{
    json_t *crd = NULL;
    struct k8s_error err = K8S_ERROR_INIT;
    static const struct k8s_resource crds = {"apiextensions.k8s.io", "v1",
                                             "customresourcedefinitions"};
    bool sub = false;
    if (k8s_get(op->client, &crds, NULL, "meshmetrics.kuma.io", NULL, NULL, &crd, &err) ==
        MM_OK) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(json_object_get(crd, "spec"), "versions"), i, v)
        {
            const char *name = json_string_value(json_object_get(v, "name"));
            if (name && !strcmp(name, "v1alpha1"))
                sub = json_is_object(
                    json_object_get(json_object_get(v, "subresources"), "status"));
        }
    } else {
        log_kv(LOG_WARN,
               "cannot read the MeshMetric CRD; assuming Kuma's (no status subresource)", "error",
               err.base.message, NULL);
    }
    json_decref(crd);
    k8s_error_cleanup(&err);
    return sub;
}

/* ---- repair's view of a workload's pods ---------------------------------------------------- */

struct count_ctx {
    struct operator_main *op;
    const struct repair_target *t;
    size_t total, unavailable;
};

static bool count_pod(void *ctx, const struct cache_entry *e)
{
    struct count_ctx *c = ctx;
    const struct podstore_pod *pod = e->pod;
    size_t n = podstore_owner_count(pod);
    for (size_t i = 0; i < n; i++) {
        struct podstore_owner o;
        podstore_owner_at(pod, i, &o);
        if (!o.controller)
            continue;
        bool mine = !strcmp(o.kind, c->t->kind) && !strcmp(o.name, c->t->name);
        if (!mine && !strcmp(o.kind, "ReplicaSet") && !strcmp(c->t->kind, "Deployment")) {
            /* ReplicaSets of a Deployment are named <deployment>-<hash>. */
            size_t len = strlen(c->t->name);
            mine = !strncmp(o.name, c->t->name, len) && o.name[len] == '-';
        }
        if (mine) {
            c->total++;
            if (!podstore_ready(pod) || podstore_deleting(pod))
                c->unavailable++;
        }
    }
    return true;
}

static bool workload_pods(void *ctx, const struct repair_target *t, size_t *total,
                          size_t *unavailable)
{
    struct operator_main *op = ctx;
    struct count_ctx c = {op, t, 0, 0};
    cache_foreach(caches_store(op->caches, CACHE_PODS), t->namespace, count_pod, &c);
    *total = c.total;
    *unavailable = c.unavailable;
    return true;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

enum mm_status operator_create(const struct operator_config *cfg, struct operator_main **out,
                               struct mm_error *err)
{
    *out = NULL;
    struct operator_main *op = xcalloc(1, sizeof *op);
    op->cfg = *cfg;
    atomic_init(&op->stopping, false);
    k8s_config_init(&op->kcfg);
    struct k8s_load_options lo;
    k8s_load_options_from_process(&lo, cfg->kubeconfig, cfg->context);
    enum mm_status st = k8s_config_load(&lo, &op->kcfg, err);
    if (st) {
        operator_free(op);
        return st;
    }
    if (op->kcfg.warning)
        log_kv(LOG_WARN, op->kcfg.warning, NULL);
    struct k8s_client_options co;
    k8s_client_options_init(&co);
    struct k8s_error kerr = K8S_ERROR_INIT;
    st = k8s_client_create(&op->kcfg, &co, &op->client, &kerr);
    if (st) {
        mm_error_set(err, st, kerr.base.field, "%s", kerr.base.message);
        k8s_error_cleanup(&kerr);
        operator_free(op);
        return st;
    }
    const char *env_ns = getenv("POD_NAMESPACE");
    op->namespace = xstrdup(cfg->namespace && *cfg->namespace ? cfg->namespace
                            : env_ns && *env_ns                ? env_ns
                                                               : k8s_client_namespace(op->client));
    op->identity = make_identity();
    log_kv(LOG_INFO, "cluster configuration loaded", "source", op->kcfg.source, "server",
           k8s_client_server(op->client), "namespace", op->namespace, "identity", op->identity,
           NULL);
    *out = op;
    return MM_OK;
}

enum mm_status operator_start(struct operator_main *op, struct mm_error *err)
{
    enum mm_status st;
    const struct operator_config *cfg = &op->cfg;
    op->status_subresource = detect_status_subresource(op);
    log_kv(LOG_INFO, "MeshMetric status is written", "through",
           op->status_subresource ? "the /status subresource (our CRD)"
                                  : "the main resource (Kuma's CRD)",
           NULL);

    if (cfg->manage_webhook_certs) {
        struct webhookcerts_config wc;
        webhookcerts_config_init(&wc);
        wc.namespace = op->namespace;
        if (cfg->webhook_secret && *cfg->webhook_secret)
            wc.secret_name = cfg->webhook_secret;
        if (cfg->webhook_service && *cfg->webhook_service)
            wc.service_name = cfg->webhook_service;
        if (cfg->mutating_webhook_configuration)
            wc.mutating_name = cfg->mutating_webhook_configuration;
        if (cfg->validating_webhook_configuration)
            wc.validating_name = cfg->validating_webhook_configuration;
        if (cfg->cert_path && *cfg->cert_path)
            wc.cert_path = cfg->cert_path;
        if (cfg->key_path && *cfg->key_path)
            wc.key_path = cfg->key_path;
        wc.is_leader = is_leader;
        wc.leader_ctx = op;
        if ((st = webhookcerts_config_validate(&wc, err)) ||
            (st = webhookcerts_create(op->client, &wc, &op->certs, err)) ||
            (st = webhookcerts_start(op->certs, err)))
            goto fail;
    }

    struct caches_options co;
    caches_options_init(&co);
    if (cfg->resync_period_s)
        co.reflector.resync_ms = (uint64_t)cfg->resync_period_s * 1000u;
    if ((st = caches_create(op->client, &co, &op->caches, err)))
        goto fail;
    struct policycache_stores ps;
    policycache_stores_from(op->caches, &ps);
    struct policycache_options po = {.system_namespace = cfg->system_namespace,
                                     .zone = cfg->zone};
    if ((st = policycache_create(&ps, &po, &op->policies, err)))
        goto fail;

    struct events_config ec = {.controller = "meshmetric.kuma.io/operator",
                               .instance = op->identity,
                               .enabled = is_leader,
                               .enabled_ctx = op};
    op->events = events_create(op->client, &ec);
    if (cfg->restart_out_of_sync) {
        struct repair_config rc = {.rate_per_minute = cfg->restart_rate,
                                   .max_unavailable_percent = cfg->restart_max_unavailable,
                                   .workload_pods = workload_pods,
                                   .ctx = op};
        op->repair = repair_create(op->client, &rc);
    }
    struct reconcile_config rc = {.caches = op->caches,
                                  .policies = op->policies,
                                  .client = op->client,
                                  .events = op->events,
                                  .repair = op->repair,
                                  .status_subresource = op->status_subresource,
                                  .is_leader = is_leader,
                                  .leader_ctx = op};
    if ((st = reconciler_create(&rc, &op->reconciler, err)))
        goto fail;
    if ((st = caches_start(op->caches, err)) || (st = policycache_start(op->policies, err)) ||
        (st = reconciler_start(op->reconciler, err)))
        goto fail;

    if (cfg->leader_elect) {
        struct leader_config lc;
        leader_config_init(&lc);
        lc.namespace = cfg->leader_election_namespace && *cfg->leader_election_namespace
                           ? cfg->leader_election_namespace
                           : op->namespace;
        lc.name = cfg->leader_election_id && *cfg->leader_election_id ? cfg->leader_election_id
                                                                       : "meshmetric-operator";
        lc.identity = op->identity;
        if (cfg->lease_duration_s)
            lc.lease_duration_ms = (uint64_t)cfg->lease_duration_s * 1000u;
        if (cfg->renew_deadline_s)
            lc.renew_deadline_ms = (uint64_t)cfg->renew_deadline_s * 1000u;
        if (cfg->retry_period_s)
            lc.retry_period_ms = (uint64_t)cfg->retry_period_s * 1000u;
        lc.ctx = op;
        lc.on_started_leading = started_leading;
        lc.on_stopped_leading = stopped_leading;
        lc.on_new_leader = new_leader;
        if ((st = leader_create(op->client, &lc, &op->leader, err)) ||
            (st = leader_start(op->leader, err)))
            goto fail;
    } else {
        started_leading(op); /* a single replica leads */
    }
    op->started = true;
    return MM_OK;
fail:
    operator_stop(op);
    return st;
}

struct policy_source operator_source(struct operator_main *op)
{
    return policycache_source(op->policies);
}

bool operator_ready(struct operator_main *op, char *why, size_t why_len)
{
    const char *missing = NULL;
    if (!op->started)
        missing = "not started";
    else if (!caches_synced(op->caches))
        missing = "caches not synced yet";
    else if (!policycache_source(op->policies).ready(op->policies))
        missing = "no policy view from the synced caches yet";
    else if (op->certs && !webhookcerts_ready(op->certs))
        missing = "webhook certificate not written yet";
    if (missing && why && why_len)
        snprintf(why, why_len, "%s", missing);
    return missing == NULL;
}

void operator_reload_counts(struct operator_main *op, uint64_t *ok, uint64_t *failed,
                            int64_t *last_ok)
{
    if (!op->policies) {
        *ok = *failed = 0;
        if (last_ok)
            *last_ok = 0;
        return;
    }
    policycache_reload_counts(op->policies, ok, failed, last_ok);
}

bool operator_render_metrics(struct operator_main *op, struct strbuf *out)
{
    bool ok = strbuf_printf(out,
                            "# HELP meshmetric_operator_leader 1 while this replica holds the "
                            "leader Lease (writes status, Events and restarts).\n"
                            "# TYPE meshmetric_operator_leader gauge\n"
                            "meshmetric_operator_leader %d\n",
                            op->started && is_leader(op) ? 1 : 0);
    if (op->reconciler)
        ok = ok && reconciler_render_metrics(op->reconciler, out);
    if (op->caches) {
        ok = ok && strbuf_puts(out, "# HELP meshmetric_operator_cache_objects Objects in an "
                                    "informer cache.\n"
                                    "# TYPE meshmetric_operator_cache_objects gauge\n");
        for (int k = 0; ok && k < CACHE_KIND_COUNT; k++) {
            struct cache_store *s = caches_store(op->caches, (enum cache_kind)k);
            if (!s)
                continue;
            struct cache_stats cs;
            cache_stats(s, &cs);
            ok = strbuf_printf(out, "meshmetric_operator_cache_objects{resource=\"%s\"} %zu\n",
                               cache_kind_info((enum cache_kind)k)->name, cs.objects);
        }
        ok = ok && strbuf_puts(out, "# HELP meshmetric_operator_cache_relists_total Lists of "
                                    "an informer cache after its first (410s, errors, resyncs).\n"
                                    "# TYPE meshmetric_operator_cache_relists_total counter\n");
        for (int k = 0; ok && k < CACHE_KIND_COUNT; k++) {
            if (!caches_store(op->caches, (enum cache_kind)k))
                continue;
            struct k8s_reflector_state rs;
            caches_reflector_state(op->caches, (enum cache_kind)k, &rs);
            ok = strbuf_printf(out,
                               "meshmetric_operator_cache_relists_total{resource=\"%s\"} %llu\n",
                               cache_kind_info((enum cache_kind)k)->name,
                               (unsigned long long)rs.relists);
        }
    }
    if (op->events) {
        struct events_stats es;
        events_stats(op->events, &es);
        ok = ok && strbuf_printf(out,
                                 "# HELP meshmetric_operator_events_total Events recorded, by "
                                 "result.\n"
                                 "# TYPE meshmetric_operator_events_total counter\n"
                                 "meshmetric_operator_events_total{result=\"created\"} %llu\n"
                                 "meshmetric_operator_events_total{result=\"series_patched\"} "
                                 "%llu\n"
                                 "meshmetric_operator_events_total{result=\"dropped\"} %llu\n"
                                 "meshmetric_operator_events_total{result=\"failed\"} %llu\n",
                                 (unsigned long long)es.created, (unsigned long long)es.patched,
                                 (unsigned long long)es.dropped, (unsigned long long)es.failed);
    }
    if (op->certs) {
        struct webhookcerts_stats ws;
        webhookcerts_stats(op->certs, &ws);
        ok = ok && strbuf_printf(out,
                                 "# HELP meshmetric_operator_webhook_ca_expiry_timestamp_seconds "
                                 "notAfter of the CA of the managed webhook certificate.\n"
                                 "# TYPE meshmetric_operator_webhook_ca_expiry_timestamp_seconds "
                                 "gauge\n"
                                 "meshmetric_operator_webhook_ca_expiry_timestamp_seconds %lld\n"
                                 "# HELP meshmetric_operator_webhook_cert_rotations_total Managed "
                                 "certificate writes, by kind.\n"
                                 "# TYPE meshmetric_operator_webhook_cert_rotations_total "
                                 "counter\n"
                                 "meshmetric_operator_webhook_cert_rotations_total{kind=\"create\"}"
                                 " %llu\n"
                                 "meshmetric_operator_webhook_cert_rotations_total{kind=\"serving\"}"
                                 " %llu\n"
                                 "meshmetric_operator_webhook_cert_rotations_total{kind=\"ca\"} "
                                 "%llu\n"
                                 "meshmetric_operator_webhook_cert_rotations_total{kind=\"repair\"}"
                                 " %llu\n"
                                 "# HELP meshmetric_operator_webhook_cabundle_updates_total "
                                 "Webhook configurations whose caBundle was replaced.\n"
                                 "# TYPE meshmetric_operator_webhook_cabundle_updates_total "
                                 "counter\n"
                                 "meshmetric_operator_webhook_cabundle_updates_total %llu\n",
                                 (long long)ws.ca_not_after, (unsigned long long)ws.creations,
                                 (unsigned long long)ws.rotations,
                                 (unsigned long long)ws.ca_rotations,
                                 (unsigned long long)ws.repairs,
                                 (unsigned long long)ws.bundle_updates);
    }
    return ok;
}

void operator_stop(struct operator_main *op)
{
    if (!op || atomic_exchange(&op->stopping, true))
        return;
    /* Work stops first, then the Lease is released so another replica takes over at once. */
    if (op->reconciler)
        reconciler_stop(op->reconciler);
    if (op->leader)
        leader_stop(op->leader);
    if (op->policies)
        policycache_stop(op->policies);
    if (op->caches)
        caches_stop(op->caches);
    if (op->certs)
        webhookcerts_stop(op->certs);
}

void operator_free(struct operator_main *op)
{
    if (!op)
        return;
    operator_stop(op);
    reconciler_free(op->reconciler);
    leader_free(op->leader);
    events_free(op->events, 2000);
    repair_free(op->repair);
    policycache_free(op->policies);
    caches_free(op->caches);
    webhookcerts_free(op->certs);
    k8s_client_free(op->client);
    k8s_config_cleanup(&op->kcfg);
    free(op->namespace);
    free(op->identity);
    free(op);
}
