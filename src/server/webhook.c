/* libmicrohttpd glue for the admission webhook: routing, transport checks, metrics, logs. */
#include "server/webhook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/admission.h"
#include "server/admit.h"
#include "server/webmetrics.h"
#include "util/log.h"
#include "server/replay.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#if MHD_VERSION < 0x00097002
#error "libmicrohttpd 0.9.70 or newer is needed (enum MHD_Result)"
#endif

struct webhook_server {
    struct webhook_config cfg; /* addr copied below */
    char *addr;
    struct MHD_Daemon *daemon;
    int listen_fd;
    uint16_t port;
    bool stopped;
    atomic_bool shutting_down;
    atomic_uint in_flight;
    atomic_uint connections;
    struct webmetrics metrics;
    struct admit_env env;
};

/* One HTTP request's state, from the first access-handler call to completion. */
struct request {
    enum webhook_endpoint ep;
    struct timespec start;
    struct strbuf body;
    bool responded; /* a response is queued; ignore the rest of the body */
    bool too_big;   /* the body passed the cap while streaming */
    size_t discarded;
};

static double elapsed(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

static enum webhook_endpoint endpoint_of(const char *url)
{
    if (!strcmp(url, "/mutate"))
        return WEBHOOK_EP_MUTATE;
    if (!strcmp(url, "/validate"))
        return WEBHOOK_EP_VALIDATE;
    if (!strcmp(url, "/healthz"))
        return WEBHOOK_EP_HEALTHZ;
    if (!strcmp(url, "/readyz"))
        return WEBHOOK_EP_READYZ;
    if (!strcmp(url, "/metrics"))
        return WEBHOOK_EP_METRICS;
    return WEBHOOK_EP_OTHER;
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

/* Queue body (owned, freed by MHD) with status and headers; count it. */
static enum MHD_Result respond(struct webhook_server *s, struct MHD_Connection *conn,
                               struct request *r, unsigned status, char *body,
                               const char *content_type, const char *allow)
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
    if (atomic_load(&s->shutting_down))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    if (rc == MHD_YES) {
        r->responded = true;
        webmetrics_request(&s->metrics, r->ep, status, elapsed(&r->start));
    }
    return rc;
}

static const char JSON_TYPE[] = "application/json";

/* A transport-level rejection: JSON error body and one warn log line. */
static enum MHD_Result reject(struct webhook_server *s, struct MHD_Connection *conn,
                              struct request *r, const char *url, unsigned status,
                              const char *error, const char *field, const char *allow)
{
    enum MHD_Result rc =
        respond(s, conn, r, status, admit_error_body(error, field), JSON_TYPE, allow);
    if (rc == MHD_YES) {
        char code[8];
        snprintf(code, sizeof code, "%u", status);
        log_kv(LOG_WARN, "request rejected", "path", url, "code", code, "reason", error, NULL);
    }
    return rc;
}

static bool get_ready(struct webhook_server *s)
{
    return cert_store_ready(s->cfg.certs) && s->cfg.source.ready(s->cfg.source.ctx) &&
           !atomic_load(&s->shutting_down);
}

static enum MHD_Result serve_get(struct webhook_server *s, struct MHD_Connection *conn,
                                 struct request *r)
{
    if (r->ep == WEBHOOK_EP_HEALTHZ)
        return respond(s, conn, r, 200, xstrdup("ok\n"), "text/plain; charset=utf-8", NULL);
    if (r->ep == WEBHOOK_EP_READYZ) {
        bool certs = cert_store_ready(s->cfg.certs);
        bool policies = s->cfg.source.ready(s->cfg.source.ctx);
        bool stopping = atomic_load(&s->shutting_down);
        bool ok = certs && policies && !stopping;
        /* "?verbose" has no value: look the key up, not its value. */
        const char *vval = NULL;
        size_t vlen = 0;
        bool verbose = MHD_lookup_connection_value_n(conn, MHD_GET_ARGUMENT_KIND, "verbose",
                                                     strlen("verbose"), &vval, &vlen) == MHD_YES;
        if (!verbose) {
            if (ok)
                return respond(s, conn, r, 200, xstrdup("ok\n"), "text/plain; charset=utf-8",
                               NULL);
            char *msg = xasprintf("not ready:%s%s%s\n", certs ? "" : " no serving certificate",
                                  policies ? "" : " policies not loaded",
                                  stopping ? " shutting down" : "");
            return respond(s, conn, r, 503, msg, "text/plain; charset=utf-8", NULL);
        }
        /* Kubernetes' verbose health format: one [+]/[-] line per check. */
        struct strbuf out;
        strbuf_init(&out, 1u << 20);
        struct policy_view *view = s->cfg.source.acquire(s->cfg.source.ctx);
        const struct view_rejection *rej = NULL;
        size_t n_rej = view_rejections(view, &rej);
        bool fits = strbuf_printf(&out, "[%c]certificate %s\n", certs ? '+' : '-',
                                  certs ? "ok" : "failed: no serving certificate loaded") &&
                    strbuf_printf(&out, "[%c]policies %s (generation %llu)\n",
                                  policies ? '+' : '-', policies ? "ok" : "failed: not loaded",
                                  (unsigned long long)view_generation(view)) &&
                    strbuf_printf(&out, "[%c]shutdown %s\n", stopping ? '-' : '+',
                                  stopping ? "failed: shutting down" : "ok") &&
                    strbuf_printf(&out, "[+]invalid-policies ok: %zu left out%s\n", n_rej,
                                  n_rej ? " (Kuma would reject them; the others apply)" : "");
        for (size_t i = 0; fits && i < n_rej; i++)
            fits = strbuf_printf(&out, "    %s %s: %s\n", rej[i].kind, rej[i].id, rej[i].errors);
        view_unref(view);
        fits = fits && strbuf_printf(&out, "readyz check %s\n", ok ? "passed" : "failed");
        if (!fits) { /* cut at the cap: the checks are listed first */
            const char cut[] = "\n(output truncated)\n";
            if (out.len + sizeof cut < out.limit && !strbuf_puts(&out, cut))
                out.len = out.len; /* cannot fail: checked above */
        }
        return respond(s, conn, r, ok ? 200 : 503, strbuf_steal(&out),
                       "text/plain; charset=utf-8", NULL);
    }
    struct webmetrics_gauges g;
    memset(&g, 0, sizeof g);
    g.cert_not_after = cert_store_not_after(s->cfg.certs);
    cert_store_reload_counts(s->cfg.certs, &g.cert_reloads_ok, &g.cert_reloads_failed);
    struct policy_view *view = s->cfg.source.acquire(s->cfg.source.ctx);
    struct view_counts vc;
    view_counts(view, &vc);
    g.policies_meshmetric = (long)vc.meshmetrics;
    g.policies_mesh = (long)vc.meshes;
    g.namespaces = (long)vc.namespaces;
    g.services = (long)vc.services;
    g.policies_rejected = (long)vc.rejected;
    view_unref(view);
    g.ready = get_ready(s);
    g.connections = atomic_load(&s->connections);
    g.in_flight = atomic_load(&s->in_flight);
    struct strbuf out;
    strbuf_init(&out, 1u << 20);
    if (!webmetrics_render(&s->metrics, &g, &out)) {
        strbuf_cleanup(&out);
        return respond(s, conn, r, 500, admit_error_body("metrics output too large", NULL),
                       JSON_TYPE, NULL);
    }
    return respond(s, conn, r, 200, strbuf_steal(&out), "text/plain; version=0.0.4; charset=utf-8",
                   NULL);
}

static enum MHD_Result serve_admission(struct webhook_server *s, struct MHD_Connection *conn,
                                       struct request *r, const char *url)
{
    struct admit_reply reply;
    if (r->ep == WEBHOOK_EP_MUTATE)
        admit_mutate(&s->env, strbuf_str(&r->body), r->body.len, &reply);
    else
        admit_validate(&s->env, strbuf_str(&r->body), r->body.len, &reply);
    strbuf_cleanup(&r->body);

    unsigned status = reply.status;
    if (reply.log != ADMIT_LOG_NONE || log_enabled(LOG_DEBUG)) {
        enum log_level lvl = reply.log == ADMIT_LOG_ERROR  ? LOG_ERROR
                             : reply.log == ADMIT_LOG_WARN ? LOG_WARN
                             : reply.log == ADMIT_LOG_INFO ? LOG_INFO
                                                           : LOG_DEBUG;
        char code[8], ms[32];
        snprintf(code, sizeof code, "%u", status);
        snprintf(ms, sizeof ms, "%.3f", elapsed(&r->start) * 1e3);
        log_kv(lvl, reply.log == ADMIT_LOG_NONE ? "admission answered" : reply.reason, "path", url,
               "code", code, "uid", reply.uid, "object", reply.object, "patched",
               reply.patched ? "true" : "false", "dry_run", reply.dry_run ? "true" : "false", "ms",
               ms, NULL);
    }
    char *body = reply.body;
    reply.body = NULL;
    admit_reply_cleanup(&reply);
    return respond(s, conn, r, status, body, JSON_TYPE, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct webhook_server *s = cls;
    struct request *r = *con_cls;
    (void)version;

    if (!r) {
        r = xcalloc(1, sizeof *r);
        clock_gettime(CLOCK_MONOTONIC, &r->start);
        r->ep = endpoint_of(url);
        *con_cls = r;
        atomic_fetch_add(&s->in_flight, 1);
        bool is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        switch (r->ep) {
        case WEBHOOK_EP_OTHER:
            return reject(s, conn, r, url, 404,
                          "no such path; the webhook serves /mutate and /validate", "path", NULL);
        case WEBHOOK_EP_HEALTHZ:
        case WEBHOOK_EP_READYZ:
        case WEBHOOK_EP_METRICS:
            if (!is_get)
                return reject(s, conn, r, url, 405, "method not allowed; use GET", "method",
                              "GET, HEAD");
            /* Answer on the next call: a response queued before the request is
             * complete makes libmicrohttpd close the connection. */
            return MHD_YES;
        case WEBHOOK_EP_MUTATE:
        case WEBHOOK_EP_VALIDATE:
        case WEBHOOK_EP_COUNT:
            break;
        }
        if (strcmp(method, "POST") != 0)
            return reject(s, conn, r, url, 405, "method not allowed; use POST", "method", "POST");
        const char *ct =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!is_json_type(ct)) {
            char *msg = xasprintf("unsupported Content-Type \"%.100s\"; want application/json",
                                  ct ? ct : "");
            enum MHD_Result rc = reject(s, conn, r, url, 415, msg, "Content-Type", NULL);
            free(msg);
            return rc;
        }
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || end == cl || n > ADMISSION_MAX_BODY) {
                char *msg = xasprintf("request body of %.40s bytes is over the %u-byte limit", cl,
                                      ADMISSION_MAX_BODY);
                enum MHD_Result rc = reject(s, conn, r, url, 413, msg, "Content-Length", NULL);
                free(msg);
                return rc;
            }
        }
        strbuf_init(&r->body, ADMISSION_MAX_BODY);
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        bool admission = r->ep == WEBHOOK_EP_MUTATE || r->ep == WEBHOOK_EP_VALIDATE;
        if (r->responded || r->too_big || !admission) {
            /* Discard the rest of a rejected body (or a GET's body), but not
             * forever: past the cap the connection is closed without an answer. */
            r->discarded += n;
            return r->discarded > ADMISSION_MAX_BODY ? MHD_NO : MHD_YES;
        }
        if (elapsed(&r->start) > (double)s->cfg.body_timeout_s) {
            char t[16];
            snprintf(t, sizeof t, "%u", s->cfg.body_timeout_s);
            log_kv(LOG_WARN, "request rejected", "path", url, "code", "408", "reason",
                   "request body not received within the read timeout; closing", "timeout_s", t,
                   NULL);
            webmetrics_request(&s->metrics, r->ep, 408, elapsed(&r->start));
            return MHD_NO; /* closes the connection */
        }
        if (!strbuf_append(&r->body, upload_data, n)) {
            r->too_big = true;
            strbuf_cleanup(&r->body);
            /* Answer now if libmicrohttpd lets us; otherwise after the body. */
            char *msg = xasprintf("request body is over the %u-byte limit", ADMISSION_MAX_BODY);
            (void)reject(s, conn, r, url, 413, msg, "body", NULL);
            free(msg);
        }
        return MHD_YES;
    }

    if (r->responded)
        return MHD_YES;
    if (r->too_big) {
        char *msg = xasprintf("request body is over the %u-byte limit", ADMISSION_MAX_BODY);
        enum MHD_Result rc = reject(s, conn, r, url, 413, msg, "body", NULL);
        free(msg);
        return rc;
    }
    if (r->ep != WEBHOOK_EP_MUTATE && r->ep != WEBHOOK_EP_VALIDATE)
        return serve_get(s, conn, r);
    return serve_admission(s, conn, r, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct webhook_server *s = cls;
    struct request *r = *con_cls;
    (void)conn;
    if (!r)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->responded &&
        toe != MHD_REQUEST_TERMINATED_READ_ERROR) {
        char code[8];
        snprintf(code, sizeof code, "%d", (int)toe);
        log_kv(LOG_DEBUG, "request ended without a response", "termination", code, NULL);
    }
    strbuf_cleanup(&r->body);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct webhook_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        *socket_context = cert_store_conn_start(ci ? (gnutls_session_t)ci->tls_session : NULL);
        atomic_fetch_add(&s->connections, 1);
    } else {
        cert_store_conn_end(*socket_context);
        *socket_context = NULL;
        atomic_fetch_sub(&s->connections, 1);
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (!log_enabled(LOG_DEBUG))
        return;
    char *m = xvasprintf(fmt, ap);
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == '\r'))
        m[--n] = '\0';
    log_kv(LOG_DEBUG, "libmicrohttpd", "detail", m, NULL);
    free(m);
}

struct webhook_server *webhook_server_create(const struct webhook_config *cfg)
{
    struct webhook_server *s = xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    s->addr = xstrdup(cfg->addr ? cfg->addr : ":9443");
    s->cfg.addr = s->addr;
    if (!s->cfg.connection_limit)
        s->cfg.connection_limit = 1000;
    if (!s->cfg.idle_timeout_s)
        s->cfg.idle_timeout_s = 120;
    if (!s->cfg.body_timeout_s)
        s->cfg.body_timeout_s = 30;
    s->listen_fd = -1;
    atomic_init(&s->shutting_down, false);
    atomic_init(&s->in_flight, 0);
    atomic_init(&s->connections, 0);
    webmetrics_init(&s->metrics);
    s->env.engine = cfg->engine;
    s->env.system_namespace = cfg->system_namespace ? cfg->system_namespace : "kuma-system";
    s->env.source = cfg->source;
    s->env.metrics = &s->metrics;
    /* Answers of repeated pods: 256 entries of at most 64 KiB bodies (<= 16 MiB). */
    s->env.replay = replay_create(256, 64u << 10);
    return s;
}

/* Split "host:port", ":port", "[v6]:port". host is NULL for "any". */
static enum mm_status parse_addr(const char *addr, char **host, char **port, struct mm_error *err)
{
    const char *colon;
    *host = NULL;
    *port = NULL;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return mm_error_set(err, MM_ERR_INVALID, "webhook-addr", "\"%s\" is not [IPv6]:port",
                                addr);
        *host = xstrndup(addr + 1, (size_t)(close - addr - 1));
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return mm_error_set(err, MM_ERR_INVALID, "webhook-addr",
                                "\"%s\" has no port; want host:port or :port", addr);
        if (colon > addr)
            *host = xstrndup(addr, (size_t)(colon - addr));
    }
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535) {
        free(*host);
        *host = NULL;
        return mm_error_set(err, MM_ERR_INVALID, "webhook-addr", "bad port in \"%s\"", addr);
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

static enum mm_status open_listener(struct webhook_server *s, struct mm_error *err)
{
    char *host = NULL, *port = NULL;
    struct addrinfo *res = NULL;
    enum mm_status st = parse_addr(s->addr, &host, &port, err);
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
            st = mm_error_set(err, MM_ERR_INVALID, "webhook-addr", "cannot resolve \"%s\": %s",
                              host, gai_strerror(gai));
            goto cleanup;
        }
        for (struct addrinfo *ai = res; ai && s->listen_fd < 0; ai = ai->ai_next)
            s->listen_fd = listen_on(ai->ai_addr, ai->ai_addrlen, false);
    }
    if (s->listen_fd < 0) {
        st = mm_error_set(err, MM_ERR_IO, "webhook-addr", "cannot listen on %s: %s", s->addr,
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

enum mm_status webhook_server_start(struct webhook_server *s, struct mm_error *err)
{
    enum mm_status st = open_listener(s, err);
    if (st)
        return st;
    cert_store_install(s->cfg.certs);
    unsigned flags =
        MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    unsigned pool = s->cfg.thread_pool;
    if (pool == 0)
        flags |= MHD_USE_THREAD_PER_CONNECTION; /* measured faster: bench/webhook.sh */
    else
        flags |= MHD_USE_EPOLL;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_LISTEN_SOCKET, s->listen_fd, NULL},
        {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)(uintptr_t)&cert_store_retrieve},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)(uintptr_t)WEBHOOK_TLS_PRIORITIES},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)s->cfg.idle_timeout_s, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)s->cfg.connection_limit, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)(uintptr_t)&on_completed, s},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)(uintptr_t)&on_connection, s},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)(uintptr_t)&on_mhd_log, s},
        {pool > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)pool, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, &on_request, s, MHD_OPTION_ARRAY, opts,
                                 MHD_OPTION_END);
    if (!s->daemon) {
        close(s->listen_fd);
        s->listen_fd = -1;
        cert_store_install(NULL);
        return mm_error_set(err, MM_ERR_INTERNAL, NULL,
                            "libmicrohttpd refused to start the HTTPS daemon on %s", s->addr);
    }
    char port[8], threads[16];
    snprintf(port, sizeof port, "%u", s->port);
    snprintf(threads, sizeof threads, "%u", pool);
    log_kv(LOG_INFO, "webhook listening", "addr", s->addr, "port", port, "mode",
           pool ? "thread-pool" : "thread-per-connection", "threads", threads, "tls",
           WEBHOOK_TLS_PRIORITIES, NULL);
    return MM_OK;
}

uint16_t webhook_server_port(const struct webhook_server *s)
{
    return s->daemon ? s->port : 0;
}

unsigned webhook_server_in_flight(const struct webhook_server *s)
{
    return atomic_load(&((struct webhook_server *)(uintptr_t)s)->in_flight);
}

unsigned webhook_server_shutdown(struct webhook_server *s, unsigned timeout_ms)
{
    if (!s->daemon || s->stopped)
        return 0;
    atomic_store(&s->shutting_down, true);
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
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    s->listen_fd = -1;
    s->stopped = true;
    cert_store_install(NULL);
    char n[16];
    snprintf(n, sizeof n, "%u", left);
    log_kv(left ? LOG_WARN : LOG_INFO, "webhook stopped", "abandoned_requests", n, NULL);
    return left;
}

void webhook_server_free(struct webhook_server *s)
{
    if (!s)
        return;
    if (s->daemon)
        (void)webhook_server_shutdown(s, 10000);
    else if (s->listen_fd >= 0)
        close(s->listen_fd);
    replay_free(s->env.replay);
    free(s->addr);
    free(s);
}
