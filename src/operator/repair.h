/*
 * Opt-in repair (--restart-out-of-sync): a pod that does not run the metrics
 * config its policies ask for gets it only when it is recreated, so the
 * owning Deployment, StatefulSet or DaemonSet is restarted the way
 * `kubectl rollout restart` does it (the pod template's
 * kubectl.kubernetes.io/restartedAt annotation, sent as a merge patch); the workload's own rollout
 * strategy then replaces its pods.
 *
 * Limits: at most `rate_per_minute` restarts a minute (a token bucket); a
 * workload is not restarted while more than `max_unavailable_percent` of its
 * pods are not ready (a rollout already in progress counts), nor again within
 * `cooldown_ms` of its last restart; bare pods and pods of other owners (Jobs,
 * CronJobs, custom controllers) are never touched, only reported.
 */
#ifndef MM_OPERATOR_REPAIR_H
#define MM_OPERATOR_REPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s/client.h"

/* The workload that owns a pod. Strings are borrowed. */
struct repair_target {
    const char *kind; /* "Deployment", "StatefulSet", "DaemonSet"; anything else is refused */
    const char *namespace;
    const char *name;
};

struct repair_config {
    double rate_per_minute;          /* 0 = 1 */
    unsigned max_unavailable_percent; /* 0 = 25 */
    uint64_t cooldown_ms;            /* 0 = 300000 (5 min) */
    /* Counts the workload's pods and the ones not ready (the caches know). */
    bool (*workload_pods)(void *ctx, const struct repair_target *t, size_t *total,
                          size_t *unavailable);
    void *ctx;
    uint64_t (*clock_ms)(void); /* NULL: the monotonic clock (tests inject one) */
};

enum repair_result {
    REPAIR_RESTARTED = 0,
    REPAIR_NOT_A_WORKLOAD, /* a bare pod or another kind of owner: never restarted */
    REPAIR_RATE_LIMITED,   /* the token bucket is empty: try again later */
    REPAIR_COOLING_DOWN,   /* restarted recently */
    REPAIR_TOO_MANY_UNAVAILABLE,
    REPAIR_FAILED,         /* the API call failed */
};

const char *repair_result_name(enum repair_result r);

struct repair;

/* c is borrowed. */
struct repair *repair_create(struct k8s_client *c, const struct repair_config *cfg);
void repair_free(struct repair *r); /* NULL is a no-op */

/*
 * Restart t if the limits allow it. why (may be NULL) receives a sentence for
 * logs and events. Thread-safe.
 */
enum repair_result repair_restart(struct repair *r, const struct repair_target *t, char *why,
                                  size_t why_len);

/* Restarts done so far. */
uint64_t repair_count(struct repair *r);

/*
 * The pure decision, exposed for tests: may t be restarted now? tokens is
 * the bucket's content (updated when it returns REPAIR_RESTARTED).
 */
enum repair_result repair_decide(const struct repair_target *t, double *tokens,
                                 uint64_t last_restart_ms, bool ever, uint64_t now_ms,
                                 uint64_t cooldown_ms, size_t total, size_t unavailable,
                                 unsigned max_unavailable_percent);

#endif
