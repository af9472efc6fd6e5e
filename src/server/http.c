/* libmicrohttpd glue shared by the servers: listener, TLS, routing, limits, accounting. */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/conntable.h"
#include "server/poller.h"
#include "util/log.h"
#include "util/xalloc.h"

#if MHD_VERSION < 0x00097002
#error "libmicrohttpd 0.9.70 or newer is needed (enum MHD_Result)"
#endif

#define CODES 10                   /* 200 400 404 405 408 413 415 500 503 other */
#define DISCARD_DEFAULT (1u << 20) /* body bytes discarded for routes that read none */
#define SWEEP_MS 250               /* how often deadlines are checked */
#define BACKSTOP_S 2               /* libmicrohttpd's own timeouts: this much after ours */
#define LOG_EVERY_MS 10000         /* closed-connection summary at most this often */
#define CONN_MAGIC 0x6d6d6863u

static const unsigned codes[CODES - 1] = {200, 400, 404, 405, 408, 413, 415, 500, 503};
static const char TEXT_TYPE[] = "text/plain; charset=utf-8";
static const char JSON_TYPE[] = "application/json";

/* One client connection, from the started notification to the closed one. */
struct http_conn {
    uint32_t magic;
    struct http_server *server;
    struct conn_entry entry;
    struct cert_creds *creds; /* served to this connection's handshake; released at close */
    bool served;              /* a request's headers arrived (connection thread only) */
};

struct http_request {
    struct http_server *server;
    struct MHD_Connection *conn;
    struct http_conn *hc; /* NULL when untracked */
    const char *url;
    const char *method;
    int route; /* -1: unknown path */
    struct timespec start;
    struct strbuf body;
    bool responded; /* a response is queued; ignore the rest of the body */
    bool too_big;   /* the body passed the cap while streaming */
    size_t discarded;
};

struct http_server {
    struct http_config cfg; /* strings and routes below are the copies */
    char *name;
    char *addr;
    struct http_route *routes;
    struct MHD_Daemon *daemon;
    int listen_fd;
    uint16_t port;
    bool stopped;
    atomic_bool stopping;
    atomic_uint in_flight;
    struct conn_table *conns;
    struct poller sweeper;
    atomic_ullong *requests; /* [(n_routes + 1) * CODES]; the last row: unknown paths */
    atomic_ullong answered;
    uint64_t logged[CONN_CLOSE_COUNT]; /* sweeper thread only */
    uint64_t logged_at_ms;
};

/* ---------------------------------------------------------------- replies */

char *http_error_body(const char *error, const char *field)
{
    json_t *o = json_object();
    json_t *e = json_string(error ? error : "");
    json_object_set_new(o, "error", e ? e : json_string("(invalid UTF-8 in the error text)"));
    if (field && *field) {
        json_t *f = json_string(field);
        if (f)
            json_object_set_new(o, "field", f);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

void http_reply_set(struct http_reply *out, unsigned status, const char *content_type, char *body)
{
    free(out->body);
    out->status = status;
    out->content_type = content_type;
    out->body = body;
}

void http_reply_error(struct http_reply *out, unsigned status, const char *error, const char *field)
{
    http_reply_set(out, status, JSON_TYPE, http_error_body(error, field));
}

/* ---------------------------------------------------------------- requests */

const char *http_request_path(const struct http_request *r)
{
    return r->url;
}

const char *http_request_method(const struct http_request *r)
{
    return r->method;
}

const char *http_request_query(const struct http_request *r, const char *key)
{
    const char *v = NULL;
    size_t vlen = 0;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, key, strlen(key), &v,
                                      &vlen) != MHD_YES)
        return NULL;
    return v ? v : "";
}

const char *http_request_header(const struct http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_request_body(const struct http_request *r, size_t *len)
{
    if (len)
        *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

static double elapsed(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

double http_request_elapsed(const struct http_request *r)
{
    return elapsed(&r->start);
}

/* ---------------------------------------------------------------- accounting */

static unsigned code_index(unsigned code)
{
    for (unsigned i = 0; i < CODES - 1; i++)
        if (codes[i] == code)
            return i;
    return CODES - 1;
}

static void account(struct http_server *s, const struct http_request *r, unsigned status)
{
    size_t row = r->route < 0 ? s->cfg.n_routes : (size_t)r->route;
    atomic_fetch_add_explicit(&s->requests[row * CODES + code_index(status)], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&s->answered, 1, memory_order_relaxed);
    if (s->cfg.observe)
        s->cfg.observe(s->cfg.observe_ctx, r->route, status, elapsed(&r->start));
}

/* ---------------------------------------------------------------- routing */

static int find_route(const struct http_server *s, const char *url)
{
    for (size_t i = 0; i < s->cfg.n_routes; i++)
        if (!strcmp(s->routes[i].path, url))
            return (int)i;
    return -1;
}

/* application/json, any case, optionally followed by parameters ("; charset=utf-8"). */
static bool is_json_type(const char *ct)
{
    static const char want[] = "application/json";
    if (!ct)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, want, sizeof want - 1) != 0)
        return false;
    ct += sizeof want - 1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* Queue body (owned) with status and headers; count it. */
static enum MHD_Result respond(struct http_server *s, struct http_request *r, unsigned status,
                               char *body, const char *content_type, const char *allow)
{
    size_t len = body ? strlen(body) : 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body ? body : (void *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (atomic_load(&s->stopping))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (rc == MHD_YES) {
        r->responded = true;
        account(s, r, status);
    }
    return rc;
}

/* A transport-level rejection: JSON error body and one warn log line. */
static enum MHD_Result reject(struct http_server *s, struct http_request *r, unsigned status,
                              const char *error, const char *field, const char *allow)
{
    enum MHD_Result rc = respond(s, r, status, http_error_body(error, field), JSON_TYPE, allow);
    if (rc == MHD_YES) {
        char code[8];
        snprintf(code, sizeof code, "%u", status);
        log_kv(LOG_WARN, "request rejected", "server", s->name, "path", r->url, "code", code,
               "reason", error, NULL);
    }
    return rc;
}

static struct http_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct http_conn *hc = ci ? ci->socket_context : NULL;
    return hc && hc->magic == CONN_MAGIC ? hc : NULL;
}

static size_t discard_cap(const struct http_server *s, const struct http_request *r)
{
    size_t limit = r->route >= 0 ? s->routes[r->route].body_limit : 0;
    return limit ? limit : DISCARD_DEFAULT;
}

/* The first call for a request: its headers are complete. */
static enum MHD_Result begin(struct http_server *s, struct MHD_Connection *conn, const char *url,
                             const char *method, void **con_cls)
{
    struct http_request *r = xcalloc(1, sizeof *r);
    r->server = s;
    r->conn = conn;
    r->url = url;
    r->method = method;
    clock_gettime(CLOCK_MONOTONIC, &r->start);
    r->route = find_route(s, url);
    r->hc = conn_of(conn);
    *con_cls = r;
    atomic_fetch_add(&s->in_flight, 1);
    if (r->hc) {
        conn_entry_advance(&r->hc->entry, CONN_BODY, conn_now_ms());
        if (!r->hc->served) { /* past the handshake and headers: the idle timeout from now on */
            r->hc->served = true;
            MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                      (unsigned int)(s->cfg.idle_timeout_s + BACKSTOP_S));
        }
    }
    if (r->route < 0)
        return reject(s, r, 404, s->cfg.not_found, "path", NULL);

    const struct http_route *route = &s->routes[r->route];
    bool is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    bool is_post = !strcmp(method, "POST");
    if (!((is_get && (route->methods & HTTP_GET)) || (is_post && (route->methods & HTTP_POST)))) {
        bool get = route->methods & HTTP_GET, post = route->methods & HTTP_POST;
        return reject(s, r, 405,
                      get && post ? "method not allowed; use GET or POST"
                      : get       ? "method not allowed; use GET"
                                  : "method not allowed; use POST",
                      "method",
                      get && post ? "GET, HEAD, POST"
                      : get       ? "GET, HEAD"
                                  : "POST");
    }
    if (is_get)
        return MHD_YES; /* answer on the next call: a response queued before the request is
                           complete makes libmicrohttpd close the connection */
    if (route->json_body) {
        const char *ct =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!is_json_type(ct)) {
            char *msg = xasprintf("unsupported Content-Type \"%.100s\"; want application/json",
                                  ct ? ct : "");
            enum MHD_Result rc = reject(s, r, 415, msg, "Content-Type", NULL);
            free(msg);
            return rc;
        }
    }
    if (route->body_limit) {
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || end == cl || n > route->body_limit) {
                char *msg = xasprintf("request body of %.40s bytes is over the %zu-byte limit", cl,
                                      route->body_limit);
                enum MHD_Result rc = reject(s, r, 413, msg, "Content-Length", NULL);
                free(msg);
                return rc;
            }
        }
        strbuf_init(&r->body, route->body_limit);
    }
    return MHD_YES;
}

/* A piece of the body. */
static enum MHD_Result take_body(struct http_server *s, struct http_request *r, const char *data,
                                 size_t n)
{
    bool reading = r->route >= 0 && s->routes[r->route].body_limit && !r->responded && !r->too_big;
    if (!reading) {
        /* Discard the rest of a rejected body (or a body nobody reads), but
         * not forever: past the cap the connection is closed without an answer. */
        r->discarded += n;
        return r->discarded > discard_cap(s, r) ? MHD_NO : MHD_YES;
    }
    if (elapsed(&r->start) > (double)s->cfg.read_timeout_s) {
        char t[16];
        snprintf(t, sizeof t, "%u", s->cfg.read_timeout_s);
        log_kv(LOG_WARN, "request rejected", "server", s->name, "path", r->url, "code", "408",
               "reason", "request body not received within the read timeout; closing", "timeout_s",
               t, NULL);
        account(s, r, 408);
        conn_table_record_close(s->conns, CONN_CLOSE_READ_TIMEOUT);
        return MHD_NO; /* closes the connection */
    }
    if (!strbuf_append(&r->body, data, n)) {
        r->too_big = true;
        strbuf_cleanup(&r->body);
        /* Answer now if libmicrohttpd lets us; otherwise after the body. */
        char *msg =
            xasprintf("request body is over the %zu-byte limit", s->routes[r->route].body_limit);
        (void)reject(s, r, 413, msg, "body", NULL);
        free(msg);
    }
    return MHD_YES;
}

/* The request is complete: run its handler. */
static enum MHD_Result finish(struct http_server *s, struct http_request *r)
{
    if (r->hc)
        conn_entry_advance(&r->hc->entry, CONN_ANSWERING, conn_now_ms());
    if (r->responded)
        return MHD_YES;
    if (r->too_big) {
        char *msg =
            xasprintf("request body is over the %zu-byte limit", s->routes[r->route].body_limit);
        enum MHD_Result rc = reject(s, r, 413, msg, "body", NULL);
        free(msg);
        return rc;
    }
    const struct http_route *route = &s->routes[r->route];
    struct http_reply reply = {0, NULL, NULL};
    route->handler(route->ctx, r, &reply);
    strbuf_cleanup(&r->body);
    return respond(s, r, reply.status ? reply.status : 200, reply.body,
                   reply.content_type ? reply.content_type : TEXT_TYPE, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct http_server *s = cls;
    struct http_request *r = *con_cls;
    (void)version;
    if (!r)
        return begin(s, conn, url, method, con_cls);
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return take_body(s, r, upload_data, n);
    }
    return finish(s, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct http_request *r = *con_cls;
    struct http_conn *hc = conn_of(conn);
    if (hc)
        conn_entry_advance(&hc->entry, CONN_IDLE, conn_now_ms());
    if (!r)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->responded &&
        toe != MHD_REQUEST_TERMINATED_READ_ERROR) {
        char code[8];
        snprintf(code, sizeof code, "%d", (int)toe);
        log_kv(LOG_DEBUG, "request ended without a response", "server", s->name, "termination",
               code, NULL);
    }
    strbuf_cleanup(&r->body);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

/* The request line arrived (libmicrohttpd's URI log callback): a request has begun. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)uri;
    struct http_conn *hc = conn_of(conn);
    if (hc)
        conn_entry_advance(&hc->entry, CONN_HEADERS, conn_now_ms());
    return NULL; /* the request's state is made by on_request */
}

/* GnuTLS asks for the certificate: the ClientHello was processed. */
static int retrieve_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                         const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                         gnutls_pcert_st **pcert, unsigned int *pcert_length,
                         gnutls_privkey_t *privkey)
{
    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    struct http_conn *hc = gnutls_session_get_ptr(session);
    if (!hc || hc->magic != CONN_MAGIC || !hc->server->cfg.certs)
        return -1; /* not a connection we started: no certificate */
    conn_entry_advance(&hc->entry, CONN_HELLO, conn_now_ms());
    struct cert_creds *c = cert_store_acquire(hc->server->cfg.certs);
    if (!c)
        return -1; /* no certificate yet: the handshake fails */
    struct cert_creds *old = hc->creds;
    hc->creds = c; /* kept until the connection closes */
    cert_creds_release(old);
    cert_creds_get(c, pcert, pcert_length, privkey);
    return 0;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        /* Runs before the connection's thread starts (or before it is polled). */
        struct http_conn *hc = xcalloc(1, sizeof *hc);
        hc->magic = CONN_MAGIC;
        hc->server = s;
        *socket_context = hc;
        if (s->cfg.certs) {
            const union MHD_ConnectionInfo *ti =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
            if (ti)
                gnutls_session_set_ptr((gnutls_session_t)ti->tls_session, hc);
        }
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                  (unsigned int)(s->cfg.header_timeout_s + BACKSTOP_S));
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (fi && fi->connect_fd != MHD_INVALID_SOCKET)
            (void)conn_table_add(s->conns, &hc->entry, fi->connect_fd, conn_now_ms());
        return;
    }
    struct http_conn *hc = *socket_context;
    if (!hc)
        return;
    conn_table_remove(s->conns, &hc->entry); /* before libmicrohttpd closes the socket */
    cert_creds_release(hc->creds);
    free(hc);
    *socket_context = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *s = cls;
    if (!log_enabled(LOG_DEBUG))
        return;
    char *m = xvasprintf(fmt, ap);
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == '\r'))
        m[--n] = '\0';
    log_kv(LOG_DEBUG, "libmicrohttpd", "server", s->name, "detail", m, NULL);
    free(m);
}

/* The sweeper thread: deadlines, and a summary line of the stalled or surplus connections it
 * closed (idle keep-alive connections that time out are only counted). */
static enum mm_status sweep_tick(void *ctx, struct mm_error *err)
{
    struct http_server *s = ctx;
    (void)err;
    uint64_t now = conn_now_ms();
    conn_table_sweep(s->conns, now);
    if (now - s->logged_at_ms < LOG_EVERY_MS)
        return MM_OK;
    uint64_t closed[CONN_CLOSE_COUNT];
    conn_table_closed(s->conns, closed);
    char nums[CONN_CLOSE_COUNT][24];
    bool changed = false;
    bool refused = closed[CONN_CLOSE_REFUSED] != s->logged[CONN_CLOSE_REFUSED];
    for (unsigned i = 0; i < CONN_CLOSE_COUNT; i++) {
        snprintf(nums[i], sizeof nums[i], "%llu", (unsigned long long)(closed[i] - s->logged[i]));
        if (i != CONN_CLOSE_IDLE_TIMEOUT) /* idle keep-alive ending is normal life */
            changed = changed || closed[i] != s->logged[i];
        s->logged[i] = closed[i];
    }
    s->logged_at_ms = now;
    if (changed) {
        char open[16];
        snprintf(open, sizeof open, "%u", conn_table_count(s->conns));
        log_kv(refused ? LOG_WARN : LOG_INFO,
               "closed slow, stalled or surplus connections", "server", s->name, "header_timeout",
               nums[CONN_CLOSE_HEADER_TIMEOUT], "read_timeout", nums[CONN_CLOSE_READ_TIMEOUT],
               "idle_timeout", nums[CONN_CLOSE_IDLE_TIMEOUT], "evicted", nums[CONN_CLOSE_EVICTED],
               "refused", nums[CONN_CLOSE_REFUSED], "open", open, NULL);
    }
    return MM_OK;
}

static void sweep_failed(void *ctx, const char *error)
{
    (void)ctx;
    (void)error;
}

/* ---------------------------------------------------------------- lifecycle */

struct http_server *http_server_create(const struct http_config *cfg)
{
    struct http_server *s = xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    s->name = xstrdup(cfg->name ? cfg->name : "http");
    s->addr = xstrdup(cfg->addr ? cfg->addr : ":0");
    s->cfg.name = s->name;
    s->cfg.addr = s->addr;
    if (!s->cfg.addr_flag)
        s->cfg.addr_flag = "addr";
    if (!s->cfg.not_found)
        s->cfg.not_found = "no such path";
    s->routes = xcalloc(cfg->n_routes ? cfg->n_routes : 1, sizeof *s->routes);
    if (cfg->n_routes)
        memcpy(s->routes, cfg->routes, cfg->n_routes * sizeof *s->routes);
    s->cfg.routes = s->routes;
    if (!s->cfg.connection_limit)
        s->cfg.connection_limit = 1000;
    if (!s->cfg.header_timeout_s)
        s->cfg.header_timeout_s = 10;
    if (!s->cfg.idle_timeout_s)
        s->cfg.idle_timeout_s = 120;
    if (!s->cfg.read_timeout_s)
        s->cfg.read_timeout_s = 30;
    s->listen_fd = -1;
    atomic_init(&s->stopping, false);
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->answered, 0);
    size_t n = (s->cfg.n_routes + 1) * CODES;
    s->requests = xcalloc(n, sizeof *s->requests);
    for (size_t i = 0; i < n; i++)
        atomic_init(&s->requests[i], 0);
    struct conn_limits lim = {
        .soft_limit = s->cfg.connection_limit,
        .header_timeout_ms = (uint64_t)s->cfg.header_timeout_s * 1000u,
        .read_timeout_ms = (uint64_t)s->cfg.read_timeout_s * 1000u,
        .idle_timeout_ms = (uint64_t)s->cfg.idle_timeout_s * 1000u,
        .grace_ms = 0,
    };
    s->conns = conn_table_create(&lim);
    poller_init(&s->sweeper, sweep_tick, sweep_failed, s);
    s->logged_at_ms = conn_now_ms();
    return s;
}

/* Split "host:port", ":port", "[v6]:port". host is NULL for "any". */
static enum mm_status parse_addr(const char *addr, const char *flag, char **host, char **port,
                                 struct mm_error *err)
{
    const char *colon;
    *host = NULL;
    *port = NULL;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return mm_error_set(err, MM_ERR_INVALID, flag, "\"%s\" is not [IPv6]:port", addr);
        *host = xstrndup(addr + 1, (size_t)(close - addr - 1));
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return mm_error_set(err, MM_ERR_INVALID, flag,
                                "\"%s\" has no port; want host:port or :port", addr);
        if (colon > addr)
            *host = xstrndup(addr, (size_t)(colon - addr));
    }
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535) {
        free(*host);
        *host = NULL;
        return mm_error_set(err, MM_ERR_INVALID, flag, "bad port in \"%s\"", addr);
    }
    *port = xstrdup(colon + 1);
    return MM_OK;
}

static int listen_on(const struct sockaddr *sa, socklen_t len, bool dual_stack)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? &zero : &one, sizeof one);
    if (bind(fd, sa, len) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static enum mm_status open_listener(struct http_server *s, struct mm_error *err)
{
    char *host = NULL, *port = NULL;
    struct addrinfo *res = NULL;
    enum mm_status st = parse_addr(s->addr, s->cfg.addr_flag, &host, &port, err);
    if (st)
        goto cleanup;
    if (!host || !*host) {
        /* Any address: IPv6 dual stack, or IPv4 when the host has no IPv6. */
        struct sockaddr_in6 a6;
        memset(&a6, 0, sizeof a6);
        a6.sin6_family = AF_INET6;
        a6.sin6_addr = in6addr_any;
        a6.sin6_port = htons((uint16_t)strtol(port, NULL, 10));
        s->listen_fd = listen_on((struct sockaddr *)&a6, sizeof a6, true);
        if (s->listen_fd < 0 && errno != EADDRINUSE) {
            struct sockaddr_in a4;
            memset(&a4, 0, sizeof a4);
            a4.sin_family = AF_INET;
            a4.sin_addr.s_addr = htonl(INADDR_ANY);
            a4.sin_port = a6.sin6_port;
            s->listen_fd = listen_on((struct sockaddr *)&a4, sizeof a4, false);
        }
    } else {
        struct addrinfo hints;
        memset(&hints, 0, sizeof hints);
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        int gai = getaddrinfo(host, port, &hints, &res);
        if (gai != 0) {
            st = mm_error_set(err, MM_ERR_INVALID, s->cfg.addr_flag, "cannot resolve \"%s\": %s",
                              host, gai_strerror(gai));
            goto cleanup;
        }
        for (struct addrinfo *ai = res; ai && s->listen_fd < 0; ai = ai->ai_next)
            s->listen_fd = listen_on(ai->ai_addr, ai->ai_addrlen, false);
    }
    if (s->listen_fd < 0) {
        st = mm_error_set(err, MM_ERR_IO, s->cfg.addr_flag, "cannot listen on %s: %s", s->addr,
                          strerror(errno));
        goto cleanup;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &sl) == 0)
        s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
cleanup:
    if (res)
        freeaddrinfo(res);
    free(host);
    free(port);
    return st;
}

/* libmicrohttpd's own limit: above the soft limit, so eviction happens first. */
static unsigned hard_limit(unsigned soft)
{
    unsigned margin = soft / 8 > 16 ? soft / 8 : 16;
    return soft + margin;
}

enum mm_status http_server_start(struct http_server *s, struct mm_error *err)
{
    enum mm_status st = open_listener(s, err);
    if (st)
        return st;
    unsigned pool = s->cfg.thread_pool;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (s->cfg.certs)
        flags |= MHD_USE_TLS;
    if (pool == 0) /* measured faster: bench/webhook.sh; poll() takes descriptors past 1023 */
        flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    else
        flags |= MHD_USE_EPOLL;
    unsigned hard = hard_limit(s->cfg.connection_limit);
    struct MHD_OptionItem opts[16];
    size_t k = 0;
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, s->listen_fd, NULL};
    if (s->cfg.certs) {
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
                                            (void *)(uintptr_t)&retrieve_cert};
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                            (void *)(uintptr_t)HTTP_TLS_PRIORITIES};
    }
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                        (intptr_t)(s->cfg.idle_timeout_s + BACKSTOP_S), NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)hard, NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, NULL};
    opts[k++] =
        (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)(uintptr_t)&on_completed, s};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION,
                                        (intptr_t)(uintptr_t)&on_connection, s};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK,
                                        (intptr_t)(uintptr_t)&on_request_line, s};
    opts[k++] =
        (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)(uintptr_t)&on_mhd_log, s};
    if (pool > 1)
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)pool, NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, &on_request, s, MHD_OPTION_ARRAY, opts,
                                 MHD_OPTION_END);
    if (!s->daemon) {
        close(s->listen_fd);
        s->listen_fd = -1;
        return mm_error_set(err, MM_ERR_INTERNAL, s->cfg.addr_flag,
                            "libmicrohttpd refused to start the %s daemon on %s",
                            s->cfg.certs ? "HTTPS" : "HTTP", s->addr);
    }
    if (!poller_start(&s->sweeper, SWEEP_MS))
        log_kv(LOG_ERROR, "cannot start the connection deadline thread", "server", s->name, NULL);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)hard + 64) {
        char have[24], want[24];
        snprintf(have, sizeof have, "%llu", (unsigned long long)rl.rlim_cur);
        snprintf(want, sizeof want, "%u", hard + 64);
        log_kv(LOG_WARN, "the open-file limit is below the connection limit", "server", s->name,
               "nofile", have, "wanted", want, NULL);
    }
    char port[8], threads[16], limit[16], header[16];
    snprintf(port, sizeof port, "%u", s->port);
    snprintf(threads, sizeof threads, "%u", pool);
    snprintf(limit, sizeof limit, "%u", s->cfg.connection_limit);
    snprintf(header, sizeof header, "%u", s->cfg.header_timeout_s);
    log_kv(LOG_INFO, "listening", "server", s->name, "addr", s->addr, "port", port, "mode",
           pool ? "thread-pool" : "thread-per-connection", "threads", threads, "tls",
           s->cfg.certs ? HTTP_TLS_PRIORITIES : "off", "connection_limit", limit,
           "header_timeout_s", header, NULL);
    return MM_OK;
}

uint16_t http_server_port(const struct http_server *s)
{
    return s->daemon ? s->port : 0;
}

bool http_server_stopping(const struct http_server *s)
{
    return atomic_load(&((struct http_server *)(uintptr_t)s)->stopping);
}

unsigned http_server_in_flight(const struct http_server *s)
{
    return atomic_load(&((struct http_server *)(uintptr_t)s)->in_flight);
}

unsigned http_server_connections(const struct http_server *s)
{
    return conn_table_count(s->conns);
}

void http_server_counts(const struct http_server *cs, struct http_counts *out)
{
    struct http_server *s = (struct http_server *)(uintptr_t)cs;
    memset(out, 0, sizeof *out);
    out->requests = atomic_load(&s->answered);
    conn_table_closed(s->conns, out->closed);
}

unsigned http_server_shutdown(struct http_server *s, unsigned timeout_ms)
{
    if (!s->daemon || s->stopped)
        return 0;
    atomic_store(&s->stopping, true);
    /* Stop accepting, and close the listener at once so that new connections
     * are refused (the API server then tries another endpoint) instead of
     * waiting in the backlog until we exit. */
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) {
        close(fd);
        s->listen_fd = -1;
    } /* else libmicrohttpd still polls it: close it after the daemon stops */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    unsigned left;
    while ((left = atomic_load(&s->in_flight)) > 0 && elapsed(&start) * 1e3 < timeout_ms) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->daemon); /* every connection is closed and left the table */
    s->daemon = NULL;
    poller_stop(&s->sweeper);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    s->listen_fd = -1;
    s->stopped = true;
    char n[16];
    snprintf(n, sizeof n, "%u", left);
    log_kv(left ? LOG_WARN : LOG_INFO, "server stopped", "server", s->name, "abandoned_requests", n,
           NULL);
    return left;
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    if (s->daemon)
        (void)http_server_shutdown(s, 10000);
    else if (s->listen_fd >= 0)
        close(s->listen_fd);
    poller_cleanup(&s->sweeper);
    conn_table_free(s->conns);
    free(s->requests);
    free(s->routes);
    free(s->name);
    free(s->addr);
    free(s);
}

/* ---------------------------------------------------------------- metrics */

bool http_server_render(const struct http_server *cs, const char *prefix, struct strbuf *out)
{
    struct http_server *s = (struct http_server *)(uintptr_t)cs;
    bool ok = strbuf_printf(out,
                            "# HELP %s_requests_total HTTP requests answered, by endpoint and "
                            "status code.\n"
                            "# TYPE %s_requests_total counter\n",
                            prefix, prefix);
    for (size_t row = 0; row <= s->cfg.n_routes; row++) {
        const char *name = row < s->cfg.n_routes ? s->routes[row].name : "other";
        for (unsigned c = 0; c < CODES; c++) {
            unsigned long long v =
                atomic_load_explicit(&s->requests[row * CODES + c], memory_order_relaxed);
            if (!v && !(c == 0 && row < s->cfg.n_routes))
                continue; /* keep the series set small; always show each route's 200 */
            char code[16];
            if (c < CODES - 1)
                snprintf(code, sizeof code, "%u", codes[c]);
            else
                snprintf(code, sizeof code, "other");
            ok = ok && strbuf_printf(out, "%s_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n",
                                     prefix, name, code, v);
        }
    }
    uint64_t closed[CONN_CLOSE_COUNT];
    conn_table_closed(s->conns, closed);
    ok = ok && strbuf_printf(out,
                             "# HELP %s_open_connections Open client connections.\n"
                             "# TYPE %s_open_connections gauge\n"
                             "%s_open_connections %u\n"
                             "# HELP %s_in_flight_requests Requests being read or answered.\n"
                             "# TYPE %s_in_flight_requests gauge\n"
                             "%s_in_flight_requests %u\n"
                             "# HELP %s_connections_closed_total Connections the server closed: "
                             "past a deadline, or to make room at the connection limit.\n"
                             "# TYPE %s_connections_closed_total counter\n",
                             prefix, prefix, prefix, conn_table_count(s->conns), prefix, prefix,
                             prefix, atomic_load(&s->in_flight), prefix, prefix);
    for (unsigned i = 0; i < CONN_CLOSE_COUNT; i++)
        ok = ok && strbuf_printf(out, "%s_connections_closed_total{reason=\"%s\"} %llu\n", prefix,
                                 conn_close_reason_name((enum conn_close_reason)i),
                                 (unsigned long long)closed[i]);
    return ok;
}
