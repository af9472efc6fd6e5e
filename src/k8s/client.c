#include "k8s/client.h"
#include "k8s/liststream.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "k8s/request.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/xalloc.h"

#ifndef MM_VERSION
#define MM_VERSION "dev"
#endif

#define POOL_MAX 16               /* idle easy handles kept */
#define MAX_IDLE_CONNECTIONS 32   /* idle keep-alive connections kept in the shared cache */
#define ERROR_BODY_MAX (1u << 20) /* body kept from a non-2xx answer of a stream */
#define PATH_MAX_LEN (64u << 10)  /* path + query */
#define TOKEN_FILE_MAX (64u << 10)

/* An easy handle and the multi handle that drives it (so a cancel can wake its poll). */
struct handle {
    CURL *easy;
    CURLM *multi;
};

static void handle_free(struct handle *hd);

struct k8s_client {
    /* immutable after create */
    char *server;      /* as configured */
    char *base_url;    /* what requests go to (host replaced by tls-server-name) */
    char *host_header; /* "Host: <server host:port>" when tls-server-name is set */
    struct curl_slist *connect_to;
    char *namespace;
    char *user_agent;
    char *ca_pem;
    size_t ca_pem_len;
    char *cert_pem;
    size_t cert_len;
    char *key_pem; /* secret */
    size_t key_len;
    bool insecure;
    bool https;
    bool compression;
    struct k8s_client_options opts;

    /* the bearer token */
    pthread_mutex_t token_lock;
    char *token; /* secret: static, or the last one read from token_file */
    char *token_file;
    uint64_t token_read_ms; /* when token was read from the file; 0: never */

    /* connections */
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_lock;
    struct handle *pool[POOL_MAX];
    size_t npool;

    atomic_uint_fast64_t n_requests, n_retries, n_failures;
};

/* ---- small helpers ---- */

static void free_secret(char *p, size_t len)
{
    if (!p)
        return;
    explicit_bzero(p, len ? len : strlen(p));
    free(p);
}

static char *dup_mem(const char *p, size_t n)
{
    if (!p)
        return NULL;
    char *d = xmalloc(n + 1);
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void k8s_client_options_init(struct k8s_client_options *o)
{
    o->connect_timeout_ms = 10000;
    o->request_timeout_ms = 30000;
    o->max_body = 64u << 20;
    o->max_retries = 10;
    o->max_retry_wait_ms = 30000;
    o->token_refresh_ms = 60000;
    o->user_agent = "meshmetric-operator/" MM_VERSION;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userp)
{
    (void)h;
    (void)access;
    struct k8s_client *c = userp;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userp)
{
    (void)h;
    struct k8s_client *c = userp;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&c->share_locks[data]);
}

/* ---- paths ---- */

static bool unreserved(unsigned char ch)
{
    return isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

char *k8s_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = xmalloc(n * 3 + 1);
    char *p = out;
    for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
        if (unreserved(*q)) {
            *p++ = (char)*q;
        } else {
            *p++ = '%';
            *p++ = hex[*q >> 4];
            *p++ = hex[*q & 15];
        }
    }
    *p = '\0';
    return out;
}

static bool append_segment(struct strbuf *b, const char *seg)
{
    char *e = k8s_escape(seg);
    bool ok = strbuf_puts(b, "/") && strbuf_puts(b, e);
    free(e);
    return ok;
}

char *k8s_path(const struct k8s_resource *res, const char *ns, const char *name, const char *sub)
{
    struct strbuf b;
    strbuf_init(&b, PATH_MAX_LEN);
    bool ok;
    if (!res->group || !res->group[0])
        ok = strbuf_puts(&b, "/api") && append_segment(&b, res->version);
    else
        ok = strbuf_puts(&b, "/apis") && append_segment(&b, res->group) &&
             append_segment(&b, res->version);
    if (ns && ns[0])
        ok = ok && append_segment(&b, "namespaces") && append_segment(&b, ns);
    ok = ok && append_segment(&b, res->plural);
    if (name && name[0]) {
        ok = ok && append_segment(&b, name);
        if (sub && sub[0])
            ok = ok && append_segment(&b, sub);
    }
    if (!ok) { /* only with absurdly long names; the server will answer 404 */
        strbuf_cleanup(&b);
        return xstrdup("/");
    }
    return strbuf_steal(&b);
}

bool k8s_query_add(struct strbuf *q, const char *key, const char *value)
{
    char *e = k8s_escape(value);
    bool has_query = q->data && strchr(q->data, '?');
    bool ok = strbuf_puts(q, has_query ? "&" : "?") && strbuf_puts(q, key) && strbuf_puts(q, "=") &&
              strbuf_puts(q, e);
    free(e);
    return ok;
}

/* ---- create / free ---- */

enum mm_status k8s_client_create(const struct k8s_config *cfg,
                                 const struct k8s_client_options *opts, struct k8s_client **out,
                                 struct k8s_error *err)
{
    struct k8s_client *c = NULL;
    CURLU *u = NULL;
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    enum mm_status rc = MM_OK;

    k8s_error_cleanup(err);
    *out = NULL;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        rc = k8s_error_set(err, MM_ERR_INTERNAL, "curl_global_init failed: %s",
                           curl_easy_strerror(curl_init_rc));
        goto done;
    }
    if (!cfg->server || !cfg->server[0]) {
        rc = k8s_error_set(err, MM_ERR_INVALID, "the configuration has no server");
        goto done;
    }
    u = curl_url();
    if (!u)
        abort();
    if (curl_url_set(u, CURLUPART_URL, cfg->server, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK ||
        (strcmp(scheme, "https") && strcmp(scheme, "http"))) {
        rc =
            k8s_error_set(err, MM_ERR_INVALID, "server \"%.200s\" (%s) is not a usable http(s) URL",
                          cfg->server, cfg->source ? cfg->source : "configuration");
        goto done;
    }

    c = xcalloc(1, sizeof *c);
    if (opts)
        c->opts = *opts;
    else
        k8s_client_options_init(&c->opts);
    struct k8s_client_options def;
    k8s_client_options_init(&def);
    if (c->opts.connect_timeout_ms <= 0)
        c->opts.connect_timeout_ms = def.connect_timeout_ms;
    if (c->opts.request_timeout_ms <= 0)
        c->opts.request_timeout_ms = def.request_timeout_ms;
    if (!c->opts.max_body)
        c->opts.max_body = def.max_body;
    if (c->opts.max_retries < 0)
        c->opts.max_retries = 0;
    if (c->opts.token_refresh_ms <= 0)
        c->opts.token_refresh_ms = def.token_refresh_ms;
    c->user_agent = xstrdup(c->opts.user_agent ? c->opts.user_agent : def.user_agent);
    c->opts.user_agent = c->user_agent;

    c->server = xstrdup(cfg->server);
    c->https = !strcmp(scheme, "https");
    size_t plen = strlen(path);
    while (plen && path[plen - 1] == '/')
        plen--;
    if (cfg->tls_server_name && cfg->tls_server_name[0] && c->https) {
        /* Ask for https://<tls-server-name>:<port> (SNI and verification name) but connect to
         * the configured host; keep the configured host in the Host header, as Go does. */
        c->base_url = xasprintf("https://%s:%s%.*s", cfg->tls_server_name, port, (int)plen, path);
        char *ct = xasprintf("%s:%s:%s:%s", cfg->tls_server_name, port, host, port);
        c->connect_to = curl_slist_append(NULL, ct);
        free(ct);
        if (!c->connect_to)
            abort();
        c->host_header = xasprintf("Host: %s:%s", host, port);
    } else {
        c->base_url = xasprintf("%s://%s:%s%.*s", scheme, host, port, (int)plen, path);
    }
    c->namespace = xstrdup(cfg->namespace && cfg->namespace[0] ? cfg->namespace : "default");
    c->insecure = cfg->insecure;
    c->compression = !cfg->disable_compression;
    c->ca_pem = dup_mem(cfg->ca_pem, cfg->ca_pem_len);
    c->ca_pem_len = cfg->ca_pem_len;
    c->cert_pem = dup_mem(cfg->client_cert_pem, cfg->client_cert_len);
    c->cert_len = cfg->client_cert_len;
    c->key_pem = dup_mem(cfg->client_key_pem, cfg->client_key_len);
    c->key_len = cfg->client_key_len;
    c->token = cfg->token ? xstrdup(cfg->token) : NULL;
    c->token_file = cfg->token_file ? xstrdup(cfg->token_file) : NULL;
    pthread_mutex_init(&c->token_lock, NULL);
    pthread_mutex_init(&c->pool_lock, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_locks[i], NULL);
    atomic_init(&c->n_requests, 0);
    atomic_init(&c->n_retries, 0);
    atomic_init(&c->n_failures, 0);

    c->share = curl_share_init();
    if (!c->share)
        abort();
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    *out = c;
    c = NULL;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    k8s_client_free(c);
    return rc;
}

void k8s_client_free(struct k8s_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->npool; i++)
        handle_free(c->pool[i]);
    if (c->share)
        curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->share_locks[i]);
    pthread_mutex_destroy(&c->pool_lock);
    pthread_mutex_destroy(&c->token_lock);
    curl_slist_free_all(c->connect_to);
    free(c->server);
    free(c->base_url);
    free(c->host_header);
    free(c->namespace);
    free(c->user_agent);
    free(c->ca_pem);
    free(c->cert_pem);
    free_secret(c->key_pem, c->key_len);
    free_secret(c->token, 0);
    free(c->token_file);
    free(c);
}

const char *k8s_client_namespace(const struct k8s_client *c)
{
    return c->namespace;
}

const char *k8s_client_server(const struct k8s_client *c)
{
    return c->server;
}

void k8s_client_stats(const struct k8s_client *c, struct k8s_client_stats *out)
{
    struct k8s_client *m = (struct k8s_client *)c;
    out->requests = atomic_load(&m->n_requests);
    out->retries = atomic_load(&m->n_retries);
    out->failures = atomic_load(&m->n_failures);
}

/* ---- the bearer token ---- */

/*
 * A copy of the current token (caller frees with free_secret), or NULL when
 * the client sends none. A token file is re-read when older than
 * token_refresh_ms or after a 401 (token_read_ms reset to 0); when a re-read
 * fails, the last good token is kept (client-go's cachingTokenSource).
 */
static enum mm_status current_token(struct k8s_client *c, char **out, struct k8s_error *err)
{
    enum mm_status rc = MM_OK;
    *out = NULL;
    pthread_mutex_lock(&c->token_lock);
    if (c->token_file) {
        uint64_t now = k8s_clock_ms();
        if (!c->token_read_ms || now - c->token_read_ms >= (uint64_t)c->opts.token_refresh_ms) {
            char *data = NULL;
            size_t len = 0;
            struct mm_error ferr;
            enum mm_status frc = fileio_read(c->token_file, TOKEN_FILE_MAX, &data, &len, &ferr);
            size_t a = 0, b = len;
            while (frc == MM_OK && a < b && isspace((unsigned char)data[a]))
                a++;
            while (frc == MM_OK && b > a && isspace((unsigned char)data[b - 1]))
                b--;
            if (frc == MM_OK && b > a) {
                free_secret(c->token, 0);
                c->token = xstrndup(data + a, b - a);
                c->token_read_ms = now ? now : 1;
            } else if (c->token && c->token_read_ms) {
                LOG(LOG_WARN, "k8s: cannot re-read token file %s (%s); using the last token",
                    c->token_file, frc == MM_OK ? "empty" : ferr.message);
                c->token_read_ms = now ? now : 1; /* try again after the next period */
            } else if (!c->token) {
                rc = k8s_error_set(err, frc == MM_OK ? MM_ERR_DENIED : frc, "token file %s: %s",
                                   c->token_file, frc == MM_OK ? "empty token" : ferr.message);
            }
            free_secret(data, len);
        }
    }
    if (rc == MM_OK && c->token)
        *out = xstrdup(c->token);
    pthread_mutex_unlock(&c->token_lock);
    return rc;
}

/* After a 401: make the next request re-read the token file. True when there is a file. */
static bool token_invalidate(struct k8s_client *c)
{
    pthread_mutex_lock(&c->token_lock);
    bool has_file = c->token_file != NULL;
    if (has_file)
        c->token_read_ms = 0;
    pthread_mutex_unlock(&c->token_lock);
    return has_file;
}

/* ---- one transfer ---- */

struct xfer {
    int code; /* from the last status line */
    char content_type[128];
    char retry_after[32];
    struct strbuf body;
    bool too_big;
    bool streaming;
    k8s_sink_fn sink;
    void *sink_ctx;
    enum mm_status sink_rc;
    struct k8s_cancel *cancel;
    uint64_t deadline_ms;
    bool deadline_hit;
    void (*on_open)(void *ctx); /* once, at the end of a 2xx answer's headers */
    void *open_ctx;
};

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    struct xfer *x = userp;
    size_t len = size * n;
    if (len > 5 && !strncmp(data, "HTTP/", 5)) {
        const char *sp = memchr(data, ' ', len);
        x->code = 0;
        if (sp && (size_t)(sp - data) + 4 <= len && isdigit((unsigned char)sp[1]) &&
            isdigit((unsigned char)sp[2]) && isdigit((unsigned char)sp[3]))
            x->code = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
        x->content_type[0] = '\0';
        x->retry_after[0] = '\0';
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon) {
        /* The blank line that ends a header block. */
        if (x->on_open && x->code >= 200 && x->code < 300 && len <= 2 &&
            (data[0] == '\r' || data[0] == '\n')) {
            void (*fn)(void *) = x->on_open;
            x->on_open = NULL;
            fn(x->open_ctx);
        }
        return len;
    }
    size_t klen = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vlen = len - klen - 1;
    while (vlen && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    char *dst = NULL;
    size_t cap = 0;
    if (klen == 12 && !strncasecmp(data, "Content-Type", 12)) {
        dst = x->content_type;
        cap = sizeof x->content_type;
    } else if (klen == 11 && !strncasecmp(data, "Retry-After", 11)) {
        dst = x->retry_after;
        cap = sizeof x->retry_after;
    }
    if (dst) {
        if (vlen >= cap)
            vlen = cap - 1;
        memcpy(dst, v, vlen);
        dst[vlen] = '\0';
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    struct xfer *x = userp;
    size_t len = size * n;
    if (x->streaming && x->code >= 200 && x->code < 300) {
        x->sink_rc = x->sink(x->sink_ctx, data, len);
        return x->sink_rc == MM_OK ? len : 0;
    }
    if (!strbuf_append(&x->body, data, len)) {
        x->too_big = true;
        return 0;
    }
    return len;
}

static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    struct xfer *x = userp;
    if (k8s_cancel_fired(x->cancel))
        return 1;
    if (x->deadline_ms && k8s_clock_ms() >= x->deadline_ms) {
        x->deadline_hit = true;
        return 1;
    }
    return 0;
}

static void handle_free(struct handle *hd)
{
    if (!hd)
        return;
    curl_multi_cleanup(hd->multi);
    curl_easy_cleanup(hd->easy);
    free(hd);
}

static struct handle *handle_get(struct k8s_client *c)
{
    struct handle *hd = NULL;
    pthread_mutex_lock(&c->pool_lock);
    if (c->npool)
        hd = c->pool[--c->npool];
    pthread_mutex_unlock(&c->pool_lock);
    if (hd) {
        curl_easy_reset(hd->easy);
        return hd;
    }
    hd = xcalloc(1, sizeof *hd);
    hd->easy = curl_easy_init();
    hd->multi = curl_multi_init();
    if (!hd->easy || !hd->multi)
        abort(); /* out of memory: the project's policy (util/xalloc.h) */
    /* The shared connection cache keeps at most this many connections; libcurl takes the limit
     * from the multi that returns a connection, 4 per easy handle by default, so concurrent
     * callers would close each other's keep-alive connections. */
    curl_multi_setopt(hd->multi, CURLMOPT_MAXCONNECTS, (long)MAX_IDLE_CONNECTIONS);
    return hd;
}

static void handle_put(struct k8s_client *c, struct handle *hd)
{
    pthread_mutex_lock(&c->pool_lock);
    if (c->npool < POOL_MAX) {
        c->pool[c->npool++] = hd;
        hd = NULL;
    }
    pthread_mutex_unlock(&c->pool_lock);
    handle_free(hd);
}

static void wake_multi(void *arg)
{
    curl_multi_wakeup(arg);
}

/*
 * curl_easy_perform, but through the handle's multi so that a cancel (or the
 * deadline) interrupts a transfer that waits for data at once instead of at
 * libcurl's next progress call.
 */
static CURLcode drive(struct handle *hd, struct xfer *x)
{
    CURLcode cc = CURLE_OK;
    bool subscribed = x->cancel && k8s_cancel_subscribe(x->cancel, wake_multi, hd->multi);
    if (curl_multi_add_handle(hd->multi, hd->easy) != CURLM_OK) {
        if (subscribed)
            k8s_cancel_unsubscribe(x->cancel, wake_multi, hd->multi);
        return CURLE_OUT_OF_MEMORY;
    }
    bool done = false;
    while (!done) {
        int running = 0;
        if (curl_multi_perform(hd->multi, &running) != CURLM_OK) {
            cc = CURLE_RECV_ERROR;
            break;
        }
        int left = 0;
        CURLMsg *m;
        while ((m = curl_multi_info_read(hd->multi, &left)) != NULL) {
            if (m->msg == CURLMSG_DONE) {
                cc = m->data.result;
                done = true;
            }
        }
        if (done)
            break;
        if (!running) { /* finished without a message: should not happen */
            cc = CURLE_GOT_NOTHING;
            break;
        }
        if (k8s_cancel_fired(x->cancel)) {
            cc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        int timeout = 1000;
        if (x->deadline_ms) {
            uint64_t now = k8s_clock_ms();
            if (now >= x->deadline_ms) {
                x->deadline_hit = true;
                cc = CURLE_ABORTED_BY_CALLBACK;
                break;
            }
            if (x->deadline_ms - now < (uint64_t)timeout)
                timeout = (int)(x->deadline_ms - now);
        }
        curl_multi_poll(hd->multi, NULL, 0, timeout, NULL);
    }
    curl_multi_remove_handle(hd->multi, hd->easy); /* closes the connection if unfinished */
    if (subscribed)
        k8s_cancel_unsubscribe(x->cancel, wake_multi, hd->multi);
    return cc;
}

struct req {
    const char *method;
    const char *path; /* path + query */
    const char *body; /* NULL: none */
    size_t body_len;
    const char *content_type;
    long timeout_ms; /* < 0: none */
    size_t max_body;
    struct k8s_cancel *cancel;
    /* streaming */
    bool streaming;
    k8s_sink_fn sink;
    void *sink_ctx;
    uint64_t deadline_ms;
    long idle_timeout_s;
    long max_time_ms;
    bool no_retry;
};

static enum mm_status map_curl(CURLcode cc)
{
    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
        return MM_ERR_TLS;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return MM_ERR_INVALID;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
        return MM_ERR_RETRY;
    default:
        return MM_ERR_IO;
    }
}

/* A failed connection that a GET may simply send again (client-go: reset or EOF). */
static bool connection_dropped(CURLcode cc)
{
    return cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING ||
           cc == CURLE_PARTIAL_FILE;
}

/*
 * Send r once. Returns MM_OK with x->code set when an HTTP answer came (any
 * code); otherwise the transport error in err. *cc gets libcurl's code.
 */
static enum mm_status perform(struct k8s_client *c, const struct req *r, const char *token,
                              struct xfer *x, CURLcode *cc, struct k8s_error *err)
{
    struct handle *hd = handle_get(c);
    CURL *h = hd->easy;
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    char *url = xasprintf("%s%s", c->base_url, r->path);
    char *auth = NULL;
    enum mm_status rc = MM_OK;

    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (r->body) {
        char *ct =
            xasprintf("Content-Type: %s", r->content_type ? r->content_type : "application/json");
        hdrs = curl_slist_append(hdrs, ct);
        free(ct);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (token) {
        auth = xasprintf("Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (c->host_header)
        hdrs = curl_slist_append(hdrs, c->host_header);
    if (!hdrs)
        abort();

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    if (c->connect_to)
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, c->connect_to);
    if (r->streaming) {
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                         r->idle_timeout_s > 0 ? r->idle_timeout_s : 300L);
        if (r->max_time_ms > 0)
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->max_time_ms);
    } else {
        if (r->timeout_ms > 0)
            curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->timeout_ms);
        if (c->compression)
            curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    }
    if (c->https) {
        if (c->insecure) {
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        } else {
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
            curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        }
        if (c->ca_pem) {
            struct curl_blob blob = {
                .data = c->ca_pem, .len = c->ca_pem_len, .flags = CURL_BLOB_NOCOPY};
            curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
            curl_easy_setopt(h, CURLOPT_CAPATH, NULL); /* only the configured CA, as Go's RootCAs */
        }
        if (c->cert_pem && c->key_pem) {
            struct curl_blob cert = {
                .data = c->cert_pem, .len = c->cert_len, .flags = CURL_BLOB_NOCOPY};
            struct curl_blob key = {
                .data = c->key_pem, .len = c->key_len, .flags = CURL_BLOB_NOCOPY};
            curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
            curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
            curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
            curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
        }
    }
    if (!strcmp(r->method, "POST")) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
    } else if (strcmp(r->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    }
    if (r->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else if (!strcmp(r->method, "POST") || !strcmp(r->method, "PUT") ||
               !strcmp(r->method, "PATCH")) {
        /* an empty body, never libcurl's default read callback (stdin) */
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }

    atomic_fetch_add(&c->n_requests, 1);
    *cc = drive(hd, x);
    if (*cc == CURLE_OK) {
        if (!x->code) {
            long code = 0;
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
            x->code = (int)code;
        }
        goto done;
    }
    if (*cc == CURLE_ABORTED_BY_CALLBACK) {
        rc = x->deadline_hit
                 ? MM_OK
                 : k8s_error_set(err, MM_ERR_CANCELLED, "%s %s: cancelled", r->method, r->path);
        goto done;
    }
    if (*cc == CURLE_WRITE_ERROR && x->too_big) {
        rc = k8s_error_set(err, MM_ERR_TOO_BIG,
                           "%s %s: the response is larger than the limit of %zu bytes", r->method,
                           r->path, x->body.limit);
        goto done;
    }
    if (*cc == CURLE_WRITE_ERROR && x->streaming && x->sink_rc != MM_OK) {
        rc = x->sink_rc; /* the sink filled err */
        goto done;
    }
    if (*cc == CURLE_OPERATION_TIMEDOUT && r->streaming && x->code >= 200 && x->code < 300) {
        x->deadline_hit = true; /* idle or max time: the stream simply ends */
        goto done;
    }
    rc = map_curl(*cc);
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(*cc);
    if (rc == MM_ERR_TLS)
        k8s_error_set(err, rc, "%s %s: TLS: %s (server %s)", r->method, r->path, detail, c->server);
    else
        k8s_error_set(err, rc, "%s %s: %s (server %s)", r->method, r->path, detail, c->server);
done:
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    handle_put(c, hd);
    curl_slist_free_all(hdrs);
    if (auth)
        free_secret(auth, 0);
    free(url);
    return rc;
}

static bool may_retry(const char *method, int code, long retry_after_s)
{
    if (retry_after_s < 0)
        return false;
    if (code == 429)
        return true; /* any verb: the server did not process it and said when to come back */
    return code >= 500 && !strcmp(method, "GET");
}

/*
 * Send r with the retry rules of client.h. On MM_OK, x holds a 2xx answer
 * (or, streaming, the stream ended). Otherwise err is filled (decoded Status
 * or transport error).
 */
static enum mm_status execute(struct k8s_client *c, const struct req *r, struct xfer *x,
                              struct k8s_error *err)
{
    enum mm_status rc;
    bool retried_401 = false;
    int attempt = 0;
    char what[300];
    snprintf(what, sizeof what, "%s %.280s", r->method, r->path);
    k8s_error_cleanup(err);
    for (;;) {
        char *token = NULL;
        rc = current_token(c, &token, err);
        if (rc != MM_OK)
            break;
        strbuf_cleanup(&x->body);
        x->code = 0;
        x->too_big = false;
        x->deadline_hit = false;
        x->sink_rc = MM_OK;
        x->content_type[0] = x->retry_after[0] = '\0';
        CURLcode cc = CURLE_OK;
        uint64_t t0 = k8s_clock_ms();
        rc = perform(c, r, token, x, &cc, err);
        free_secret(token, 0);
        if (rc != MM_OK) {
            /* A GET whose (reused) connection was dropped is sent once more. */
            if (rc == MM_ERR_RETRY && connection_dropped(cc) && !r->streaming && !r->no_retry &&
                !strcmp(r->method, "GET") && attempt == 0 && c->opts.max_retries > 0) {
                attempt++;
                atomic_fetch_add(&c->n_retries, 1);
                LOG(LOG_DEBUG, "k8s: %s: connection dropped (%s), sending again", what,
                    curl_easy_strerror(cc));
                continue;
            }
            break;
        }
        LOG(LOG_DEBUG, "k8s: %s -> %d (%llu ms)", what, x->code,
            (unsigned long long)(k8s_clock_ms() - t0));
        if (x->deadline_hit || (x->code >= 200 && x->code < 300))
            break;
        if (x->code == 401 && !retried_401 && token_invalidate(c)) {
            retried_401 = true;
            atomic_fetch_add(&c->n_retries, 1);
            continue; /* the token file may hold a rotated token */
        }
        struct k8s_error local = K8S_ERROR_INIT;
        struct k8s_error *e = err ? err : &local;
        rc = k8s_status_decode(x->code, x->content_type, x->body.data, x->body.len, x->retry_after,
                               what, e);
        long ra = e->retry_after_s;
        k8s_error_cleanup(&local);
        if (may_retry(r->method, x->code, ra) && !r->streaming && !r->no_retry &&
            attempt < c->opts.max_retries && ra * 1000 <= c->opts.max_retry_wait_ms) {
            LOG(LOG_INFO, "k8s: %s: %d, retrying after %lds (retry %d of %d)", what, x->code, ra,
                attempt + 1, c->opts.max_retries);
            if (k8s_cancel_sleep(r->cancel, (uint64_t)ra * 1000)) {
                rc = k8s_error_set(err, MM_ERR_CANCELLED, "%s: cancelled", what);
                break;
            }
            attempt++;
            atomic_fetch_add(&c->n_retries, 1);
            continue;
        }
        break;
    }
    if (rc != MM_OK)
        atomic_fetch_add(&c->n_failures, 1);
    return rc;
}

static void req_init(struct k8s_client *c, struct req *r, const char *method, const char *path,
                     const struct k8s_call_opts *opts)
{
    memset(r, 0, sizeof *r);
    r->method = method;
    r->path = path;
    r->timeout_ms = c->opts.request_timeout_ms;
    r->max_body = c->opts.max_body;
    if (!opts)
        return;
    if (opts->timeout_ms > 0)
        r->timeout_ms = opts->timeout_ms;
    else if (opts->timeout_ms < 0)
        r->timeout_ms = -1;
    if (opts->max_body)
        r->max_body = opts->max_body;
    r->cancel = opts->cancel;
    r->no_retry = opts->no_retry;
}

/* Run a non-streaming request; on MM_OK x->body holds the 2xx answer (caller cleans x up). */
static enum mm_status run(struct k8s_client *c, const struct req *r, struct xfer *x,
                          struct k8s_error *err)
{
    memset(x, 0, sizeof *x);
    strbuf_init(&x->body, r->max_body);
    x->cancel = r->cancel;
    return execute(c, r, x, err);
}

/* Parse a 2xx JSON body; *out NULL for an empty body. */
static enum mm_status parse_body(struct xfer *x, const char *what, json_t **out,
                                 struct k8s_error *err)
{
    *out = NULL;
    if (!x->body.len)
        return MM_OK;
    json_error_t jerr;
    *out = json_loadb(x->body.data, x->body.len, 0, &jerr);
    if (!*out)
        return k8s_error_set(err, MM_ERR_PARSE,
                             "%s: the answer is not JSON: %s (line %d, column %d)", what, jerr.text,
                             jerr.line, jerr.column);
    return MM_OK;
}

/* ---- verbs ---- */

static char *what_of(const char *method, const char *path)
{
    return xasprintf("%s %.280s", method, path);
}

/* Send body (may be NULL) and parse the JSON answer into *out (may be NULL: discarded). */
static enum mm_status call_json(struct k8s_client *c, const char *method, const char *path,
                                const json_t *body, const char *content_type,
                                const struct k8s_call_opts *opts, json_t **out,
                                struct k8s_error *err)
{
    struct req r;
    struct xfer x;
    char *data = NULL;
    char *what = what_of(method, path);
    json_t *result = NULL;
    if (out)
        *out = NULL;
    req_init(c, &r, method, path, opts);
    if (body) {
        data = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!data) {
            k8s_error_cleanup(err);
            enum mm_status erc =
                k8s_error_set(err, MM_ERR_INVALID, "%s: the body cannot be encoded as JSON", what);
            free(what);
            return erc;
        }
        r.body = data;
        r.body_len = strlen(data);
        r.content_type = content_type;
    }
    enum mm_status rc = run(c, &r, &x, err);
    if (rc == MM_OK) {
        rc = parse_body(&x, what, &result, err);
        if (rc != MM_OK)
            atomic_fetch_add(&c->n_failures, 1);
    }
    strbuf_cleanup(&x.body);
    free(data);
    free(what);
    if (out)
        *out = result;
    else
        json_decref(result);
    return rc;
}

/* path + the write query parameters of opts. Caller frees. */
static char *write_path(const struct k8s_resource *res, const char *ns, const char *name,
                        const char *sub, const struct k8s_call_opts *opts)
{
    char *p = k8s_path(res, ns, name, sub);
    struct strbuf b;
    strbuf_init(&b, PATH_MAX_LEN);
    bool ok = strbuf_puts(&b, p);
    free(p);
    if (opts && opts->field_manager && opts->field_manager[0])
        ok = ok && k8s_query_add(&b, "fieldManager", opts->field_manager);
    if (opts && opts->dry_run)
        ok = ok && k8s_query_add(&b, "dryRun", "All");
    if (opts && opts->force)
        ok = ok && k8s_query_add(&b, "force", "true");
    (void)ok; /* only a field manager of 64 KiB could fail; the server rejects it anyway */
    return strbuf_steal(&b);
}

enum mm_status k8s_get(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                       const char *name, const char *subresource, const struct k8s_call_opts *opts,
                       json_t **out, struct k8s_error *err)
{
    *out = NULL;
    if (!name || !name[0]) {
        k8s_error_cleanup(err);
        return k8s_error_set(err, MM_ERR_INVALID, "get %s: empty name", res->plural);
    }
    char *path = k8s_path(res, ns, name, subresource);
    enum mm_status rc = call_json(c, "GET", path, NULL, NULL, opts, out, err);
    free(path);
    return rc;
}

static bool list_query(struct strbuf *b, const struct k8s_list_opts *l)
{
    bool ok = true;
    char num[32];
    if (!l)
        return true;
    if (l->label_selector && l->label_selector[0])
        ok = ok && k8s_query_add(b, "labelSelector", l->label_selector);
    if (l->field_selector && l->field_selector[0])
        ok = ok && k8s_query_add(b, "fieldSelector", l->field_selector);
    if (l->limit > 0) {
        snprintf(num, sizeof num, "%ld", l->limit);
        ok = ok && k8s_query_add(b, "limit", num);
    }
    if (l->continue_token && l->continue_token[0])
        ok = ok && k8s_query_add(b, "continue", l->continue_token);
    if (l->resource_version && l->resource_version[0])
        ok = ok && k8s_query_add(b, "resourceVersion", l->resource_version);
    if (l->resource_version_match && l->resource_version_match[0])
        ok = ok && k8s_query_add(b, "resourceVersionMatch", l->resource_version_match);
    if (l->timeout_seconds > 0) {
        snprintf(num, sizeof num, "%ld", l->timeout_seconds);
        ok = ok && k8s_query_add(b, "timeoutSeconds", num);
    }
    return ok;
}

/* The path and query of a list into b (initialised here; cleaned up on false: too long). */
static bool list_path(struct strbuf *b, const struct k8s_resource *res, const char *ns,
                      const struct k8s_list_opts *lopts)
{
    char *p = k8s_path(res, ns, NULL, NULL);
    strbuf_init(b, PATH_MAX_LEN);
    bool ok = strbuf_puts(b, p) && list_query(b, lopts);
    free(p);
    if (!ok)
        strbuf_cleanup(b);
    return ok;
}

enum mm_status k8s_list(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                        const struct k8s_list_opts *lopts, const struct k8s_call_opts *opts,
                        json_t **page, struct k8s_error *err)
{
    *page = NULL;
    struct strbuf b;
    if (!list_path(&b, res, ns, lopts)) {
        k8s_error_cleanup(err);
        return k8s_error_set(err, MM_ERR_TOO_BIG, "list %s: the query is too long", res->plural);
    }
    json_t *doc = NULL;
    enum mm_status rc = call_json(c, "GET", b.data, NULL, NULL, opts, &doc, err);
    if (rc == MM_OK && (!json_is_object(doc) || !json_is_array(json_object_get(doc, "items")))) {
        /* A list without items is legal JSON ("items": null) when empty; anything else is not a
         * list. */
        const json_t *items = json_object_get(doc, "items");
        if (json_is_object(doc) && (!items || json_is_null(items))) {
            json_object_set_new(doc, "items", json_array());
        } else {
            rc = k8s_error_set(err, MM_ERR_PARSE,
                               "GET %.280s: the answer is not a list (no items array)", b.data);
            atomic_fetch_add(&c->n_failures, 1);
            json_decref(doc);
            doc = NULL;
        }
    }
    strbuf_cleanup(&b);
    *page = doc;
    return rc;
}

enum mm_status k8s_list_each(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                             const struct k8s_list_opts *lopts, const struct k8s_call_opts *opts,
                             k8s_item_fn fn, void *ctx, char **resource_version,
                             struct k8s_error *err)
{
    struct k8s_list_opts l = {0};
    char *cont = NULL;
    char *rv = NULL;
    enum mm_status rc = MM_OK;
    if (lopts)
        l = *lopts;
    if (resource_version)
        *resource_version = NULL;
    for (;;) {
        json_t *page = NULL;
        rc = k8s_list(c, res, ns, &l, opts, &page, err);
        if (rc != MM_OK)
            break;
        const json_t *meta = json_object_get(page, "metadata");
        if (!rv)
            rv = xstrdup(json_string_value(json_object_get(meta, "resourceVersion"))
                             ? json_string_value(json_object_get(meta, "resourceVersion"))
                             : "");
        const char *next = json_string_value(json_object_get(meta, "continue"));
        free(cont);
        cont = next && next[0] ? xstrdup(next) : NULL;
        json_t *items = json_object_get(page, "items");
        size_t i;
        json_t *item;
        json_array_foreach(items, i, item)
        {
            rc = fn(ctx, item);
            if (rc != MM_OK)
                break;
        }
        json_decref(page);
        if (rc != MM_OK) {
            k8s_error_cleanup(err);
            k8s_error_set(err, rc, "list %s: stopped by the item handler (%s)", res->plural,
                          mm_status_name(rc));
            break;
        }
        if (!cont)
            break;
        /* Continue pages: the token carries the snapshot; RV options are not allowed with it. */
        l.continue_token = cont;
        l.resource_version = NULL;
        l.resource_version_match = NULL;
    }
    free(cont);
    if (rc == MM_OK && resource_version)
        *resource_version = rv;
    else
        free(rv);
    return rc;
}

struct list_sink {
    struct k8s_list_decoder dec;
    struct k8s_error *err;
};

static enum mm_status list_sink(void *ctx, const char *data, size_t len)
{
    struct list_sink *ls = ctx;
    struct mm_error e;
    mm_error_clear(&e);
    enum mm_status st = k8s_list_decoder_feed(&ls->dec, data, len, &e);
    if (st) {
        k8s_error_cleanup(ls->err);
        k8s_error_set(ls->err, st, "%s", e.message);
    }
    return st;
}

enum mm_status k8s_list_stream(struct k8s_client *c, const struct k8s_resource *res,
                               const char *ns, const struct k8s_list_opts *lopts,
                               const struct k8s_call_opts *opts, size_t max_item,
                               enum mm_status (*fn)(void *ctx, json_t *item), void *ctx,
                               char **resource_version, char **continue_token,
                               struct k8s_error *err)
{
    if (resource_version)
        *resource_version = NULL;
    if (continue_token)
        *continue_token = NULL;
    struct strbuf b;
    if (!list_path(&b, res, ns, lopts)) {
        k8s_error_cleanup(err);
        return k8s_error_set(err, MM_ERR_TOO_BIG, "list %s: the query is too long", res->plural);
    }
    struct list_sink ls = {.err = err};
    k8s_list_decoder_init(&ls.dec, max_item, fn, ctx);
    struct k8s_stream_opts so = {.cancel = opts ? opts->cancel : NULL,
                                 .idle_timeout_s = 60,
                                 .max_time_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms
                                                                               : 120000};
    enum mm_status rc = k8s_client_stream(c, b.data, &so, list_sink, &ls, NULL, err);
    if (rc == MM_OK) {
        struct mm_error e;
        mm_error_clear(&e);
        if (k8s_list_decoder_finish(&ls.dec, &e) != MM_OK) {
            rc = k8s_error_set(err, MM_ERR_RETRY, "GET %.280s: %s", b.data, e.message);
            atomic_fetch_add(&c->n_failures, 1);
        }
    }
    if (rc == MM_OK) {
        const json_t *md = ls.dec.metadata;
        const char *rv = json_string_value(json_object_get(md, "resourceVersion"));
        const char *next = json_string_value(json_object_get(md, "continue"));
        if (resource_version)
            *resource_version = xstrdup(rv ? rv : "");
        if (continue_token)
            *continue_token = xstrdup(next ? next : "");
    }
    k8s_list_decoder_cleanup(&ls.dec);
    strbuf_cleanup(&b);
    return rc;
}

enum mm_status k8s_create(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                          const json_t *obj, const struct k8s_call_opts *opts, json_t **out,
                          struct k8s_error *err)
{
    char *path = write_path(res, ns, NULL, NULL, opts);
    enum mm_status rc = call_json(c, "POST", path, obj, "application/json", opts, out, err);
    free(path);
    return rc;
}

enum mm_status k8s_update(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                          const char *name, const char *subresource, const json_t *obj,
                          const struct k8s_call_opts *opts, json_t **out, struct k8s_error *err)
{
    if (out)
        *out = NULL;
    if (!name || !name[0]) {
        k8s_error_cleanup(err);
        return k8s_error_set(err, MM_ERR_INVALID, "update %s: empty name", res->plural);
    }
    char *path = write_path(res, ns, name, subresource, opts);
    enum mm_status rc = call_json(c, "PUT", path, obj, "application/json", opts, out, err);
    free(path);
    return rc;
}

const char *k8s_patch_content_type(enum k8s_patch_type type)
{
    /* clang-format off */
    switch (type) {
    case K8S_PATCH_JSON: return "application/json-patch+json";
    case K8S_PATCH_MERGE: return "application/merge-patch+json";
    case K8S_PATCH_STRATEGIC: return "application/strategic-merge-patch+json";
    case K8S_PATCH_APPLY: return "application/apply-patch+yaml";
    }
    /* clang-format on */
    return "application/merge-patch+json";
}

enum mm_status k8s_patch(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                         const char *name, const char *subresource, enum k8s_patch_type type,
                         const json_t *patch, const struct k8s_call_opts *opts, json_t **out,
                         struct k8s_error *err)
{
    if (out)
        *out = NULL;
    k8s_error_cleanup(err);
    if (!name || !name[0])
        return k8s_error_set(err, MM_ERR_INVALID, "patch %s: empty name", res->plural);
    if (type == K8S_PATCH_JSON && !json_is_array(patch))
        return k8s_error_set(err, MM_ERR_INVALID, "patch %s/%s: a JSON patch must be an array",
                             res->plural, name);
    if (type != K8S_PATCH_JSON && !json_is_object(patch))
        return k8s_error_set(err, MM_ERR_INVALID, "patch %s/%s: a %s patch must be an object",
                             res->plural, name, k8s_patch_content_type(type));
    if (type == K8S_PATCH_APPLY && !(opts && opts->field_manager && opts->field_manager[0]))
        return k8s_error_set(err, MM_ERR_INVALID,
                             "patch %s/%s: an apply patch needs a field manager", res->plural,
                             name);
    char *path = write_path(res, ns, name, subresource, opts);
    enum mm_status rc =
        call_json(c, "PATCH", path, patch, k8s_patch_content_type(type), opts, out, err);
    free(path);
    return rc;
}

void k8s_delete_opts_init(struct k8s_delete_opts *d)
{
    memset(d, 0, sizeof *d);
    d->grace_period_seconds = -1;
}

enum mm_status k8s_delete(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                          const char *name, const struct k8s_delete_opts *dopts,
                          const struct k8s_call_opts *opts, json_t **out, struct k8s_error *err)
{
    if (out)
        *out = NULL;
    if (!name || !name[0]) {
        k8s_error_cleanup(err);
        return k8s_error_set(err, MM_ERR_INVALID, "delete %s: empty name", res->plural);
    }
    json_t *body = NULL;
    if (dopts) {
        static const char *const prop[] = {NULL, "Orphan", "Background", "Foreground"};
        json_t *pre = NULL;
        body = json_pack("{s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1");
        if (dopts->propagation > K8S_PROPAGATION_DEFAULT &&
            dopts->propagation <= K8S_PROPAGATION_FOREGROUND)
            json_object_set_new(body, "propagationPolicy", json_string(prop[dopts->propagation]));
        if (dopts->grace_period_seconds >= 0)
            json_object_set_new(body, "gracePeriodSeconds",
                                json_integer(dopts->grace_period_seconds));
        if (dopts->precondition_uid && dopts->precondition_uid[0]) {
            pre = pre ? pre : json_object();
            json_object_set_new(pre, "uid", json_string(dopts->precondition_uid));
        }
        if (dopts->precondition_rv && dopts->precondition_rv[0]) {
            pre = pre ? pre : json_object();
            json_object_set_new(pre, "resourceVersion", json_string(dopts->precondition_rv));
        }
        if (pre)
            json_object_set_new(body, "preconditions", pre);
        if (json_object_size(body) == 2) {
            json_decref(body);
            body = NULL;
        }
    }
    char *path = write_path(res, ns, name, NULL, opts);
    enum mm_status rc = call_json(c, "DELETE", path, body, "application/json", opts, out, err);
    free(path);
    json_decref(body);
    return rc;
}

void k8s_response_cleanup(struct k8s_response *r)
{
    if (!r)
        return;
    free(r->body);
    memset(r, 0, sizeof *r);
}

enum mm_status k8s_request(struct k8s_client *c, const char *method, const char *path_query,
                           const char *body, size_t body_len, const char *content_type,
                           const struct k8s_call_opts *opts, struct k8s_response *resp,
                           struct k8s_error *err)
{
    struct req r;
    struct xfer x;
    memset(resp, 0, sizeof *resp);
    if (!path_query || path_query[0] != '/') {
        k8s_error_cleanup(err);
        return k8s_error_set(err, MM_ERR_INVALID, "%s: the path must start with '/'", method);
    }
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    bool known = false;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        known = known || (method && !strcmp(method, methods[i]));
    if (!known) {
        k8s_error_cleanup(err);
        return k8s_error_set(err, MM_ERR_INVALID, "%s %s: unsupported method",
                             method ? method : "(null)", path_query);
    }
    req_init(c, &r, method, path_query, opts);
    if (body) {
        r.body = body;
        r.body_len = body_len;
        r.content_type = content_type;
    }
    enum mm_status rc = run(c, &r, &x, err);
    if (rc == MM_OK) {
        resp->http_code = x.code;
        resp->len = x.body.len;
        snprintf(resp->content_type, sizeof resp->content_type, "%s", x.content_type);
        resp->body = strbuf_steal(&x.body);
    }
    strbuf_cleanup(&x.body);
    return rc;
}

enum mm_status k8s_get_raw(struct k8s_client *c, const char *path_query,
                           const struct k8s_call_opts *opts, json_t **out, struct k8s_error *err)
{
    *out = NULL;
    if (!path_query || path_query[0] != '/') {
        k8s_error_cleanup(err);
        return k8s_error_set(err, MM_ERR_INVALID, "GET: the path must start with '/'");
    }
    return call_json(c, "GET", path_query, NULL, NULL, opts, out, err);
}

enum mm_status k8s_resource_exists(struct k8s_client *c, const struct k8s_resource *res,
                                   const struct k8s_call_opts *opts, bool *exists,
                                   struct k8s_error *err)
{
    *exists = false;
    struct k8s_resource gv = *res;
    char *p = k8s_path(&gv, NULL, NULL, NULL);
    /* k8s_path ends with "/<plural>": cut it to get the group-version path. */
    char *slash = strrchr(p, '/');
    if (slash)
        *slash = '\0';
    json_t *doc = NULL;
    enum mm_status rc = call_json(c, "GET", p, NULL, NULL, opts, &doc, err);
    free(p);
    if (rc == MM_ERR_NOT_FOUND) {
        k8s_error_cleanup(err);
        return MM_OK;
    }
    if (rc != MM_OK)
        return rc;
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(doc, "resources"), i, r)
    {
        const char *name = json_string_value(json_object_get(r, "name"));
        if (name && !strcmp(name, res->plural)) {
            *exists = true;
            break;
        }
    }
    json_decref(doc);
    return MM_OK;
}

/* ---- streaming (k8s/request.h) ---- */

enum mm_status k8s_client_stream(struct k8s_client *c, const char *path_query,
                                 const struct k8s_stream_opts *so, k8s_sink_fn sink, void *ctx,
                                 bool *ended_early, struct k8s_error *err)
{
    struct req r;
    struct xfer x;
    req_init(c, &r, "GET", path_query, NULL);
    r.streaming = true;
    r.sink = sink;
    r.sink_ctx = ctx;
    r.timeout_ms = -1;
    r.cancel = so ? so->cancel : NULL;
    r.deadline_ms = so ? so->deadline_ms : 0;
    r.idle_timeout_s = so ? so->idle_timeout_s : 0;
    r.max_time_ms = so ? so->max_time_ms : 0;
    memset(&x, 0, sizeof x);
    strbuf_init(&x.body, ERROR_BODY_MAX);
    x.cancel = r.cancel;
    x.streaming = true;
    x.sink = sink;
    x.sink_ctx = ctx;
    x.deadline_ms = r.deadline_ms;
    x.on_open = so ? so->on_open : NULL;
    x.open_ctx = so ? so->open_ctx : NULL;
    if (ended_early)
        *ended_early = false;
    enum mm_status rc = execute(c, &r, &x, err);
    if (rc == MM_OK && ended_early)
        *ended_early = x.deadline_hit;
    strbuf_cleanup(&x.body);
    return rc;
}
