/*
 * The HTTPS admission webhook server (libmicrohttpd over GnuTLS):
 * POST /mutate, POST /validate, GET /healthz, /readyz, /metrics.
 *
 * Transport rules: TLS 1.2+ only, the certificate served per handshake from
 * a cert_store (hot reload), query strings ignored, 405/404/415/413/400 with
 * a JSON body for bad requests, a body cap of ADMISSION_MAX_BODY, an idle
 * keep-alive timeout (default 120 s, above the API server's 90 s), a body
 * read timeout and a connection limit. Shutdown stops accepting, lets
 * in-flight requests finish, then closes. One log line per rejected or
 * failed request.
 */
#ifndef MM_SERVER_WEBHOOK_H
#define MM_SERVER_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/engine.h"
#include "core/source.h"
#include "core/view.h"
#include "server/certstore.h"
#include "util/error.h"

#define WEBHOOK_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct webhook_config {
    const char *addr;                   /* ":9443", "127.0.0.1:9443", "[::1]:9443"; port 0 = any */
    const struct engine_config *engine; /* borrowed; must outlive the server */
    const char *system_namespace;       /* borrowed; "kuma-system" when NULL */
    struct policy_source source;
    struct cert_store *certs;  /* borrowed; the server installs it for GnuTLS */
    unsigned thread_pool;      /* 0: a thread per connection; N: an epoll pool of N threads */
    unsigned connection_limit; /* 0 = 1000 */
    unsigned idle_timeout_s;   /* keep-alive idle timeout; 0 = 120 */
    unsigned body_timeout_s;   /* whole-request read deadline; 0 = 30 */
};

struct webhook_server;

/*
 * Create a server from cfg (strings copied, engine/source/certs borrowed).
 * Nothing listens yet. Never NULL.
 */
struct webhook_server *webhook_server_create(const struct webhook_config *cfg);

/*
 * Bind and start serving. MM_ERR_INVALID for a bad address, MM_ERR_IO when
 * the socket cannot be bound, MM_ERR_INTERNAL when libmicrohttpd refuses.
 */
enum mm_status webhook_server_start(struct webhook_server *s, struct mm_error *err) MM_WUR;

/* The bound TCP port (useful with port 0), 0 before start. */
uint16_t webhook_server_port(const struct webhook_server *s);

/*
 * Graceful stop: refuse new connections, let requests in flight finish
 * (at most timeout_ms), then close every connection. Idempotent.
 * Returns the number of requests still in flight when it gave up (0 = clean).
 */
unsigned webhook_server_shutdown(struct webhook_server *s, unsigned timeout_ms);

/* Shut down (if running, with a 10 s budget) and free. NULL is a no-op. */
void webhook_server_free(struct webhook_server *s);

/* Requests currently being read or answered. */
unsigned webhook_server_in_flight(const struct webhook_server *s);

#endif
