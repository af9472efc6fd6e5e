/*
 * The reconcilers: controller-runtime's shape (informer -> de-duplicating
 * work queue -> reconcile, done / error with rate-limited retry / retry
 * after) in two controllers.
 *
 * pods: for every meshed pod, what its policies ask for now (core's
 *   engine_want_pod, against Kuma's own Dataplane when there is one) against
 *   what the webhook applied (the config hash on the pod): in sync, never
 *   patched, outdated, or Kuma's Dataplane differing from the derived view.
 *   A change of state records one Event on the pod (Warning per reason, a
 *   series when it repeats; Normal when back in sync), marks the MeshMetrics
 *   that select it for a status update, and with repair on restarts the
 *   owning workload.
 * meshmetrics: the conditions of a MeshMetric from the states of the pods it
 *   selects (core/status.h), merged with other writers' conditions and
 *   written only when they changed: through the main resource on Kuma's CRD
 *   (no status subresource), through /status on ours; read-modify-write with
 *   the resourceVersion, retried on 409. An Event on the MeshMetric when its
 *   figures change.
 *
 * Every replica evaluates (the figures feed its /metrics); only the leader
 * writes status, Events and restarts. Nothing is written from caches that
 * are not synced or are in the middle of a relist, or before the live view
 * was built from synced caches.
 */
#ifndef MM_OPERATOR_RECONCILE_H
#define MM_OPERATOR_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s/client.h"
#include "operator/cache.h"
#include "operator/events.h"
#include "operator/policycache.h"
#include "operator/repair.h"
#include "util/error.h"
#include "util/strbuf.h"

struct reconcile_config {
    struct caches *caches;           /* borrowed */
    struct policycache *policies;    /* borrowed: the live view */
    struct k8s_client *client;       /* borrowed */
    struct events *events;           /* borrowed; NULL: no Events */
    struct repair *repair;           /* borrowed; NULL: repair off */
    bool status_subresource;         /* the MeshMetric CRD has one (ours): write /status */
    bool (*is_leader)(void *ctx);    /* NULL: always the leader */
    void *leader_ctx;
    unsigned pod_workers;            /* 0 = 2 */
    unsigned status_delay_ms;        /* coalesce a MeshMetric's status writes; 0 = 200 */
};

struct reconciler;

/*
 * Register the handlers on the caches' stores (before caches_start) and
 * create the queues. Nothing runs yet.
 */
enum mm_status reconciler_create(const struct reconcile_config *cfg, struct reconciler **out,
                                 struct mm_error *err) MM_WUR;
enum mm_status reconciler_start(struct reconciler *r, struct mm_error *err) MM_WUR;
/* Stop the workers (in-flight reconciles finish). Idempotent. */
void reconciler_stop(struct reconciler *r);
void reconciler_free(struct reconciler *r); /* NULL is a no-op */

/* Leadership gained: every MeshMetric's status is reconciled again (the old leader may be gone). */
void reconciler_became_leader(struct reconciler *r);

struct reconcile_stats {
    size_t pods, in_sync, out_of_sync;      /* pod states known */
    size_t pod_queue, status_queue;         /* queue depths */
    uint64_t pod_ok, pod_error;             /* reconciles by result */
    uint64_t status_ok, status_error, status_writes, status_conflicts;
    uint64_t restarts;
};
void reconciler_stats(struct reconciler *r, struct reconcile_stats *out);

/* Append the reconcilers' metric families (Prometheus text format) to out; false when full. */
bool reconciler_render_metrics(struct reconciler *r, struct strbuf *out) MM_WUR;

/* Wait until both queues are empty and idle (tests and the benchmark); false after timeout_ms. */
bool reconciler_wait_idle(struct reconciler *r, unsigned timeout_ms);

#endif
