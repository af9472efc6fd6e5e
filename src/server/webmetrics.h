/*
 * The webhook's own Prometheus metrics: lock-free counters updated on the
 * request path and rendered in the text exposition format (version 0.0.4).
 */
#ifndef MM_SERVER_WEBMETRICS_H
#define MM_SERVER_WEBMETRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/strbuf.h"

enum webhook_endpoint {
    WEBHOOK_EP_MUTATE = 0,
    WEBHOOK_EP_VALIDATE,
    WEBHOOK_EP_HEALTHZ,
    WEBHOOK_EP_READYZ,
    WEBHOOK_EP_METRICS,
    WEBHOOK_EP_OTHER,
    WEBHOOK_EP_COUNT
};

/* "mutate", "validate", "healthz", "readyz", "metrics", "other". */
const char *webhook_endpoint_name(enum webhook_endpoint ep);

#define WEBMETRICS_CODES 10   /* 200 400 404 405 408 413 415 500 503 other */
#define WEBMETRICS_BUCKETS 14 /* latency buckets, +Inf excluded */
#define WEBMETRICS_KINDS 3    /* MeshMetric, Mesh, other */

struct webmetrics {
    atomic_ullong requests[WEBHOOK_EP_COUNT][WEBMETRICS_CODES];
    atomic_ullong latency_bucket[2][WEBMETRICS_BUCKETS + 1]; /* mutate, validate; non-cumulative */
    atomic_ullong latency_sum_ns[2];
    atomic_ullong patches;
    atomic_ullong denials[WEBMETRICS_KINDS];
    atomic_ullong warnings[2];
    atomic_ullong engine_errors;
};

/* Other values the server reads at render time. */
struct webmetrics_gauges {
    int64_t cert_not_after; /* unix seconds, 0 = none loaded */
    uint64_t cert_reloads_ok, cert_reloads_failed;
    long policies_meshmetric, policies_mesh, namespaces, services; /* -1 = unknown */
    long policies_rejected; /* invalid policies left out of the view */
    bool ready;
    unsigned connections;
    unsigned in_flight;
};

void webmetrics_init(struct webmetrics *m);
/* Count one answered request; seconds feeds the histogram for mutate and validate. */
void webmetrics_request(struct webmetrics *m, enum webhook_endpoint ep, unsigned code,
                        double seconds);
void webmetrics_patch(struct webmetrics *m);
/* kind: "MeshMetric", "Mesh", anything else counts as other. */
void webmetrics_denial(struct webmetrics *m, const char *kind);
void webmetrics_warnings(struct webmetrics *m, enum webhook_endpoint ep, uint64_t n);
void webmetrics_engine_error(struct webmetrics *m);

/* Append the exposition text; false when out is over its cap. */
bool webmetrics_render(const struct webmetrics *m, const struct webmetrics_gauges *g,
                       struct strbuf *out) __attribute__((warn_unused_result));

#endif
