/*
 * The admission webhook: POST /mutate and POST /validate over HTTPS, plus
 * GET /healthz, /readyz and /metrics on the same port and, when metrics_addr
 * is set, on a plain-HTTP listener for Kubernetes probes and Prometheus.
 *
 * The transport (TLS from a cert_store, routing, limits, JSON error replies,
 * deadlines for slow clients, the connection limit, graceful shutdown) is the
 * HTTP layer's (server/http.h); this module holds the admission handlers
 * (server/admit.h) and the health and metrics handlers both listeners share.
 */
#ifndef MM_SERVER_WEBHOOK_H
#define MM_SERVER_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/engine.h"
#include "core/source.h"
#include "core/view.h"
#include "server/certstore.h"
#include "server/http.h"
#include "util/error.h"
#include "util/strbuf.h"

#define WEBHOOK_TLS_PRIORITIES HTTP_TLS_PRIORITIES

/*
 * The policy source's reload counters (optional): successful and failed
 * rebuilds of the policy view so far and the unix time of the last success
 * (0: none). policydir_reload_counts has this shape; so will the operator's
 * cache source. Called for every scrape, possibly from several threads at once.
 */
typedef void (*webhook_reload_stats_fn)(void *ctx, uint64_t *ok, uint64_t *failed,
                                        int64_t *last_ok);

/*
 * Append more metric families to /metrics (optional; e.g. the operator's own).
 * Called for every scrape on either listener, possibly from several threads at
 * once; return false when out is over its cap. Family names must not clash
 * with the webhook's.
 */
typedef bool (*webhook_render_fn)(void *ctx, struct strbuf *out);

struct webhook_config {
    const char *addr;                   /* ":9443", "127.0.0.1:9443", "[::1]:9443"; port 0 = any */
    const char *metrics_addr;           /* plain-HTTP /metrics, /healthz, /readyz; NULL/"": none */
    const struct engine_config *engine; /* borrowed; must outlive the server */
    const char *system_namespace;       /* borrowed; "kuma-system" when NULL */
    struct policy_source source;
    struct cert_store *certs;  /* borrowed; serves every TLS handshake of the HTTPS port */
    unsigned thread_pool;      /* 0: a thread per connection; N: an epoll pool of N threads */
    unsigned connection_limit; /* 0 = 1000; past it, stalled and idle connections make room */
    unsigned header_timeout_s; /* TLS handshake + request headers; 0 = 10 */
    unsigned idle_timeout_s;   /* keep-alive idle timeout; 0 = 120 */
    unsigned body_timeout_s;   /* whole-request-body read deadline; 0 = 30 */
    webhook_reload_stats_fn reload_stats; /* may be NULL: no meshmetric_policy_reload* metrics */
    void *reload_stats_ctx;
    webhook_render_fn render_extra; /* may be NULL */
    void *render_extra_ctx;
};

/* The plain listener's connection limit (probes and scrapes need few). */
#define WEBHOOK_METRICS_CONNECTION_LIMIT 128

struct webhook_server;

/*
 * Create a server from cfg (strings copied, engine/source/certs and the
 * callbacks' contexts borrowed). Nothing listens yet. Never NULL.
 */
struct webhook_server *webhook_server_create(const struct webhook_config *cfg);

/*
 * Bind both listeners and start serving. MM_ERR_INVALID for a bad address
 * (err names the flag: webhook-addr or metrics-addr), MM_ERR_IO when a socket
 * cannot be bound, MM_ERR_INTERNAL when libmicrohttpd refuses. On error
 * nothing is left listening.
 */
enum mm_status webhook_server_start(struct webhook_server *s, struct mm_error *err) MM_WUR;

/* The bound TCP port of the HTTPS listener (useful with port 0), 0 before start. */
uint16_t webhook_server_port(const struct webhook_server *s);
/* The bound port of the plain-HTTP listener, 0 when there is none. */
uint16_t webhook_server_metrics_port(const struct webhook_server *s);

/*
 * Graceful stop: /readyz turns 503 on both listeners, the HTTPS listener
 * refuses new connections and lets requests in flight finish (at most
 * timeout_ms), then the plain listener stops. Idempotent. Returns the number
 * of requests still in flight when it gave up (0 = clean).
 */
unsigned webhook_server_shutdown(struct webhook_server *s, unsigned timeout_ms);

/* Shut down (if running, with a 10 s budget) and free. NULL is a no-op. */
void webhook_server_free(struct webhook_server *s);

/* Requests currently being read or answered on the HTTPS listener. */
unsigned webhook_server_in_flight(const struct webhook_server *s);

/* The HTTPS listener's HTTP layer (borrowed), e.g. for its counters. */
const struct http_server *webhook_server_http(const struct webhook_server *s);

/*
 * The text /metrics serves (for tests and other listeners): appended to out;
 * false when out is over its cap.
 */
bool webhook_server_render_metrics(struct webhook_server *s, struct strbuf *out) MM_WUR;

#endif
