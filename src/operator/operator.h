/*
 * The operator as one object: connect to the cluster, run the informer
 * caches and the live policy view the webhook admits from, the reconcilers,
 * leader election and the managed webhook certificates, and stop them all in
 * the reverse order. serve (src/cli/serve.c) only wires flags to this and
 * hands operator_source() to the HTTPS server.
 *
 * Start order: client -> discovery (which optional CRDs exist, whether the
 * MeshMetric CRD has a status subresource) -> certificates (so the webhook
 * can serve as early as possible) -> caches + policy view + reconcilers ->
 * leader election. Only the leader writes status, Events and restarts; every
 * replica serves admissions from its own caches.
 */
#ifndef MM_OPERATOR_OPERATOR_H
#define MM_OPERATOR_OPERATOR_H

#include <stdbool.h>
#include <stddef.h>

#include "core/source.h"
#include "util/error.h"
#include "util/strbuf.h"

struct operator_config {
    const char *kubeconfig; /* --kubeconfig; NULL/"": KUBECONFIG, in-cluster, ~/.kube/config */
    const char *context;    /* --context */
    const char *namespace;  /* the operator's own; NULL/"": POD_NAMESPACE, then the client's */
    const char *system_namespace;
    const char *zone;
    unsigned resync_period_s; /* a full relist of every cache this often; 0: off */

    bool leader_elect;
    const char *leader_election_id;        /* the Lease name */
    const char *leader_election_namespace; /* NULL/"": namespace */
    unsigned lease_duration_s, renew_deadline_s, retry_period_s;

    bool manage_webhook_certs;
    const char *webhook_secret, *webhook_service;
    const char *mutating_webhook_configuration, *validating_webhook_configuration;
    const char *cert_path, *key_path; /* the files the HTTPS server reloads */

    bool restart_out_of_sync;
    double restart_rate;              /* per minute */
    unsigned restart_max_unavailable; /* percent */

    /* Leadership was lost (not by stopping): the process should exit, as client-go programs do. */
    void (*on_fatal)(void *ctx, const char *why);
    void *fatal_ctx;
};

struct operator_main;

/*
 * Load the cluster configuration and create the client (nothing is sent
 * yet). Errors name the kubeconfig setting or say why in-cluster
 * configuration is incomplete.
 */
enum mm_status operator_create(const struct operator_config *cfg, struct operator_main **out,
                               struct mm_error *err) MM_WUR;

/* Discover, start every part. On error what was started is stopped again. */
enum mm_status operator_start(struct operator_main *op, struct mm_error *err) MM_WUR;

/* The live policy view (valid while op lives). */
struct policy_source operator_source(struct operator_main *op);

/*
 * True when caches are synced, the first view from them is published and
 * (with managed certificates) the serving files are written; otherwise why
 * (may be NULL) says what is missing.
 */
bool operator_ready(struct operator_main *op, char *why, size_t why_len);

/* The operator's metric families (Prometheus text), appended to out; false when full. */
bool operator_render_metrics(struct operator_main *op, struct strbuf *out) MM_WUR;

/* Policy view builds (success/failure) and the unix time of the last success. */
void operator_reload_counts(struct operator_main *op, uint64_t *ok, uint64_t *failed,
                            int64_t *last_ok);

/* Stop in the reverse order; the Lease is released (another replica takes over at once). */
void operator_stop(struct operator_main *op);
void operator_free(struct operator_main *op); /* NULL is a no-op */

#endif
