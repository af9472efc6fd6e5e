/*
 * The webhook's own Prometheus metrics: lock-free counters updated on the
 * admission path and rendered in the text exposition format (version 0.0.4).
 * The HTTP accounting (requests by endpoint and code, connections) is the
 * HTTP layer's (http_server_render); the process metrics are procmetrics'.
 */
#ifndef MM_SERVER_WEBMETRICS_H
#define MM_SERVER_WEBMETRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/strbuf.h"

/* The admission endpoints. */
enum webhook_endpoint { WEBHOOK_EP_MUTATE = 0, WEBHOOK_EP_VALIDATE, WEBHOOK_EP_COUNT };

/* "mutate", "validate". */
const char *webhook_endpoint_name(enum webhook_endpoint ep);

/*
 * What an admission came to (meshmetric_webhook_admissions_total{outcome}).
 * /mutate: patched, unchanged (no patch, no warning), warned (no patch but
 * warnings), error (not an AdmissionReview, or a pod admitted unchanged
 * because it could not be processed). /validate: allowed, warned (allowed
 * with warnings), denied, error (not an AdmissionReview, or malformed).
 */
enum webhook_outcome {
    WEBHOOK_PATCHED = 0,
    WEBHOOK_UNCHANGED,
    WEBHOOK_WARNED,
    WEBHOOK_DENIED,
    WEBHOOK_ALLOWED,
    WEBHOOK_ERROR,
    WEBHOOK_OUTCOME_COUNT
};

/* "patched", "unchanged", "warned", "denied", "allowed", "error". */
const char *webhook_outcome_name(enum webhook_outcome o);

#define WEBMETRICS_BUCKETS 14 /* latency buckets, +Inf excluded */
#define WEBMETRICS_KINDS 3    /* MeshMetric, Mesh, other */

struct webmetrics {
    atomic_ullong latency_bucket[WEBHOOK_EP_COUNT][WEBMETRICS_BUCKETS + 1]; /* non-cumulative */
    atomic_ullong latency_sum_ns[WEBHOOK_EP_COUNT];
    atomic_ullong admissions[WEBHOOK_EP_COUNT][WEBHOOK_OUTCOME_COUNT];
    atomic_ullong patches;
    atomic_ullong denials[WEBMETRICS_KINDS];
    atomic_ullong warnings[WEBHOOK_EP_COUNT];
    atomic_ullong engine_errors;
};

/* Other values the server reads at render time. */
struct webmetrics_gauges {
    int64_t cert_not_after; /* unix seconds, 0 = none loaded */
    uint64_t cert_reloads_ok, cert_reloads_failed;
    long policies_meshmetric, policies_mesh, namespaces, services; /* -1 = unknown */
    long policies_rejected;   /* invalid policies left out of the view */
    bool have_policy_reloads; /* the policy source reports its reloads */
    uint64_t policy_reloads_ok, policy_reloads_failed;
    int64_t policy_last_ok; /* unix seconds of the last successful reload, 0 = none */
    bool ready;
};

void webmetrics_init(struct webmetrics *m);
/* One answered request of ep (any status) for the latency histogram. */
void webmetrics_observe(struct webmetrics *m, enum webhook_endpoint ep, double seconds);
/* One admission answered by the admission logic, with its outcome. */
void webmetrics_admission(struct webmetrics *m, enum webhook_endpoint ep,
                          enum webhook_outcome outcome);
void webmetrics_patch(struct webmetrics *m);
/* kind: "MeshMetric", "Mesh", anything else counts as other. */
void webmetrics_denial(struct webmetrics *m, const char *kind);
void webmetrics_warnings(struct webmetrics *m, enum webhook_endpoint ep, uint64_t n);
void webmetrics_engine_error(struct webmetrics *m);

/* Append the exposition text; false when out is over its cap. */
bool webmetrics_render(const struct webmetrics *m, const struct webmetrics_gauges *g,
                       struct strbuf *out) __attribute__((warn_unused_result));

#endif
