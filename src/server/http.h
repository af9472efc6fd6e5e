/*
 * The HTTP layer of meshmetric-operator's servers (the admission webhook, its
 * plain-HTTP health and metrics listener, the discovery server): libmicrohttpd
 * over GnuTLS, or plain HTTP.
 *
 * A server is a route table plus transport rules:
 *  - listener: ":PORT" (all interfaces, IPv6 dual stack, IPv4 when the host
 *    has no IPv6), "HOST:PORT", "[IPv6]:PORT"; port 0 picks a free one;
 *  - TLS 1.2/1.3 with the certificate of a cert_store, handed to every
 *    handshake (reloads apply to new handshakes), or plain HTTP;
 *  - routing by exact path (the query string is ignored) and method, with
 *    JSON error bodies {"error": "...", "field": "..."}: 404 unknown path,
 *    405 wrong method (with Allow), 415 Content-Type not application/json,
 *    413 body over the route's cap (before reading it when Content-Length
 *    says so), 408 logged and the connection closed when a body is late;
 *  - slow and hostile clients: the connection table (server/conntable.h)
 *    gives the TLS handshake and request headers header_timeout, a body
 *    read_timeout, an idle keep-alive connection idle_timeout, and makes
 *    room at connection_limit by closing stalled or idle connections;
 *  - request accounting: requests by route and status code, open connections,
 *    requests in flight, connections closed by reason (http_server_render);
 *  - graceful shutdown: stop accepting, let requests in flight finish (their
 *    responses carry Connection: close), then close everything.
 *
 * Handlers run on the connection's thread (a thread per connection by
 * default, or a pool), one call per complete request, and fill a reply.
 */
#ifndef MM_SERVER_HTTP_H
#define MM_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/certstore.h"
#include "server/conntable.h"
#include "util/error.h"
#include "util/strbuf.h"

#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* Route methods (a bit set). GET implies HEAD. */
#define HTTP_GET 1u
#define HTTP_POST 2u

/* One request, as a handler sees it. Borrowed for the duration of the call. */
struct http_request;

/* The path without the query string, e.g. "/mutate". */
const char *http_request_path(const struct http_request *r);
/* "GET", "HEAD", "POST", ... */
const char *http_request_method(const struct http_request *r);
/* A query argument: its value, "" when present without one ("?verbose"), NULL when absent. */
const char *http_request_query(const struct http_request *r, const char *key);
/* A request header (case-insensitive name), or NULL. */
const char *http_request_header(const struct http_request *r, const char *name);
/* The body (NUL-terminated; "" for none) and its length. */
const char *http_request_body(const struct http_request *r, size_t *len);
/* Seconds since the request's headers were complete. */
double http_request_elapsed(const struct http_request *r);

/* What a handler answers. */
struct http_reply {
    unsigned status;          /* 200 when the handler leaves it 0 */
    char *body;               /* NUL-terminated, owned (freed by the layer); NULL: empty */
    const char *content_type; /* static text; NULL: "text/plain; charset=utf-8" */
};

/* Set status, content type (static) and body (taken). */
void http_reply_set(struct http_reply *out, unsigned status, const char *content_type, char *body);
/* A JSON error reply {"error": error, "field": field} (field omitted when NULL or ""). */
void http_reply_error(struct http_reply *out, unsigned status, const char *error,
                      const char *field);
/* {"error": error, "field": field} as compact JSON. Caller frees. */
char *http_error_body(const char *error, const char *field);

typedef void (*http_handler_fn)(void *ctx, const struct http_request *req, struct http_reply *out);

struct http_route {
    const char *path; /* exact, e.g. "/mutate"; borrowed, must outlive the server */
    const char *name; /* for metrics and logs, e.g. "mutate"; borrowed */
    unsigned methods; /* HTTP_GET, HTTP_POST or both */
    http_handler_fn handler;
    void *ctx;         /* handed to handler */
    size_t body_limit; /* bytes of body read for the handler; 0: none (a body is discarded) */
    bool json_body;    /* POST needs Content-Type application/json (parameters allowed) */
};

/*
 * Called once per answered request from the connection's thread: route is
 * the index in the route table, or -1 for an unknown path.
 */
typedef void (*http_observe_fn)(void *ctx, int route, unsigned status, double seconds);

struct http_config {
    const char *name;      /* "webhook", "metrics": logs; copied */
    const char *addr;      /* see above; copied */
    const char *addr_flag; /* the flag that set addr, named in errors; NULL: "addr" */
    struct cert_store
        *certs; /* TLS from this store (borrowed, must outlive the server); NULL: plain */
    const struct http_route *routes; /* copied (the strings and ctx are borrowed) */
    size_t n_routes;
    const char *not_found;     /* 404 text; NULL: "no such path" */
    unsigned thread_pool;      /* 0: a thread per connection; N: an epoll pool of N threads */
    unsigned connection_limit; /* soft limit (conntable.h); 0 = 1000 */
    unsigned header_timeout_s; /* TLS handshake + request headers; 0 = 10 */
    unsigned idle_timeout_s;   /* keep-alive idle; 0 = 120 */
    unsigned read_timeout_s;   /* request body; 0 = 30 */
    http_observe_fn observe;   /* may be NULL */
    void *observe_ctx;
};

struct http_server;

/* A server for cfg (copied as described above). Nothing listens yet. Never NULL. */
struct http_server *http_server_create(const struct http_config *cfg);

/*
 * Bind and start serving. MM_ERR_INVALID for a bad address (err names the
 * flag), MM_ERR_IO when the socket cannot be bound, MM_ERR_INTERNAL when
 * libmicrohttpd refuses.
 */
enum mm_status http_server_start(struct http_server *s, struct mm_error *err) MM_WUR;

/* The bound TCP port (useful with port 0), 0 before start. */
uint16_t http_server_port(const struct http_server *s);

/*
 * Graceful stop: refuse new connections, let requests in flight finish (at
 * most timeout_ms; their responses carry Connection: close), then close every
 * connection. Idempotent. Returns the requests still in flight when it gave
 * up (0 = clean).
 */
unsigned http_server_shutdown(struct http_server *s, unsigned timeout_ms);

/* True once http_server_shutdown has begun. */
bool http_server_stopping(const struct http_server *s);

/* Shut down (if running, with a 10 s budget) and free. NULL is a no-op. */
void http_server_free(struct http_server *s);

/* Requests being read or answered. */
unsigned http_server_in_flight(const struct http_server *s);
/* Open client connections. */
unsigned http_server_connections(const struct http_server *s);

/* Counters for tests and metrics. */
struct http_counts {
    uint64_t requests;                 /* answered, all routes and codes */
    uint64_t closed[CONN_CLOSE_COUNT]; /* by enum conn_close_reason */
};
void http_server_counts(const struct http_server *s, struct http_counts *out);

/*
 * Append the server's accounting as Prometheus text, every family named
 * prefix + suffix: _requests_total{endpoint,code} (endpoint = route name or
 * "other"), _open_connections, _in_flight_requests,
 * _connections_closed_total{reason}. False when out is over its cap.
 */
bool http_server_render(const struct http_server *s, const char *prefix, struct strbuf *out)
    __attribute__((warn_unused_result));

#endif
