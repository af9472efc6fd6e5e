#include "k8s/config.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/base64.h"
#include "util/fileio.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

#define KUBECONFIG_MAX (4u << 20) /* bytes of a kubeconfig file */
#define PEM_FILE_MAX (1u << 20)   /* bytes of a CA bundle, certificate or key file */
#define TOKEN_FILE_MAX (64u << 10)

void k8s_config_init(struct k8s_config *c)
{
    memset(c, 0, sizeof *c);
}

static void free_secret(char *p, size_t len)
{
    if (!p)
        return;
    explicit_bzero(p, len ? len : strlen(p));
    free(p);
}

void k8s_config_cleanup(struct k8s_config *c)
{
    if (!c)
        return;
    free(c->server);
    free(c->namespace);
    free(c->tls_server_name);
    free(c->ca_pem);
    free(c->client_cert_pem);
    free_secret(c->client_key_pem, c->client_key_len);
    free_secret(c->token, 0);
    free(c->token_file);
    free(c->source);
    free(c->context);
    free(c->warning);
    k8s_config_init(c);
}

/* ---- small helpers ---- */

#define FIELD_LEN 300

/* Format a kubeconfig field path (truncated silently: it only names things in messages). */
static void fieldf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fieldf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, FIELD_LEN, fmt, ap);
    va_end(ap);
}

/* Copy s without leading and trailing whitespace (Go's strings.TrimSpace). */
static char *trim_dup(const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    return xstrndup(s, len);
}

static bool looks_like_pem(const char *data, size_t len)
{
    static const char marker[] = "-----BEGIN ";
    size_t m = sizeof marker - 1;
    for (size_t i = 0; i + m <= len; i++)
        if (!memcmp(data + i, marker, m))
            return true;
    return false;
}

/*
 * Go's base64.StdEncoding as encoding/json uses it for []byte: padded,
 * '\r' and '\n' ignored, nothing else tolerated. NULL on bad input.
 */
static char *decode_b64(const char *s, size_t *outlen)
{
    size_t n = strlen(s);
    char *clean = xmalloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\r' && s[i] != '\n')
            clean[k++] = s[i];
    clean[k] = '\0';
    unsigned char *out = base64_decode(clean, k, outlen);
    free(clean);
    return (char *)out;
}

static char *resolve_path(const char *base_file, const char *p)
{
    if (p[0] == '/' || !base_file)
        return xstrdup(p);
    const char *slash = strrchr(base_file, '/');
    if (!slash)
        return xstrdup(p);
    return xasprintf("%.*s/%s", (int)(slash - base_file), base_file, p);
}

/* ---- in-cluster ---- */

void k8s_incluster_env_from_process(struct k8s_incluster_env *env)
{
    env->host = getenv("KUBERNETES_SERVICE_HOST");
    env->port = getenv("KUBERNETES_SERVICE_PORT");
    env->pod_namespace = getenv("POD_NAMESPACE");
    env->token_file = K8S_SA_DIR "/token";
    env->ca_file = K8S_SA_DIR "/ca.crt";
    env->namespace_file = K8S_SA_DIR "/namespace";
}

/* Read a token file: trimmed, non-empty. *token is a new string (secret). */
static enum mm_status read_token_file(const char *path, const char *field, char **token,
                                      struct mm_error *err)
{
    char *data = NULL;
    size_t len = 0;
    struct mm_error ferr;
    *token = NULL;
    enum mm_status rc = fileio_read(path, TOKEN_FILE_MAX, &data, &len, &ferr);
    if (rc != MM_OK)
        return mm_error_set(err, rc, field, "token file %s: %s", path, ferr.message);
    char *t = trim_dup(data, len);
    free_secret(data, len);
    if (!t[0]) {
        free(t);
        return mm_error_set(err, MM_ERR_INVALID, field, "token file %s is empty", path);
    }
    *token = t;
    return MM_OK;
}

/* Read a PEM file into data and len; errors name field and path. */
static enum mm_status read_pem_file(const char *path, const char *field, bool secret, char **data,
                                    size_t *len, struct mm_error *err)
{
    struct mm_error ferr;
    enum mm_status rc = fileio_read(path, PEM_FILE_MAX, data, len, &ferr);
    if (rc != MM_OK)
        return mm_error_set(err, rc, field, "cannot read %s: %s", path, ferr.message);
    if (!looks_like_pem(*data, *len)) {
        if (secret)
            free_secret(*data, *len);
        else
            free(*data);
        *data = NULL;
        *len = 0;
        return mm_error_set(err, MM_ERR_INVALID, field, "%s is not PEM (no \"-----BEGIN\" line)",
                            path);
    }
    return MM_OK;
}

enum mm_status k8s_config_in_cluster(const struct k8s_incluster_env *env, struct k8s_config *out,
                                     struct mm_error *err)
{
    struct k8s_config c;
    k8s_config_init(&c);
    enum mm_status rc = MM_OK;
    char *nsdata = NULL;
    size_t nslen = 0;

    if (!env->host || !env->host[0] || !env->port || !env->port[0]) {
        rc = mm_error_set(err, MM_ERR_NOT_FOUND, "KUBERNETES_SERVICE_HOST",
                          "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                          "KUBERNETES_SERVICE_PORT must be defined");
        goto done;
    }
    for (const char *p = env->port; *p; p++)
        if (!isdigit((unsigned char)*p)) {
            rc = mm_error_set(err, MM_ERR_INVALID, "KUBERNETES_SERVICE_PORT",
                              "\"%.32s\" is not a port number", env->port);
            goto done;
        }
    if (strchr(env->host, ':') && env->host[0] != '[')
        c.server = xasprintf("https://[%s]:%s", env->host, env->port);
    else
        c.server = xasprintf("https://%s:%s", env->host, env->port);

    /* Read the token once now so a missing or empty token fails at start, as client-go does. */
    char *tok = NULL;
    rc = read_token_file(env->token_file, "token", &tok, err);
    if (rc != MM_OK)
        goto done;
    free_secret(tok, 0);
    c.token_file = xstrdup(env->token_file);

    rc = read_pem_file(env->ca_file, "ca.crt", false, &c.ca_pem, &c.ca_pem_len, err);
    if (rc != MM_OK)
        goto done;

    if (env->pod_namespace && env->pod_namespace[0]) {
        c.namespace = xstrdup(env->pod_namespace);
    } else {
        struct mm_error ignored;
        if (env->namespace_file &&
            fileio_read(env->namespace_file, 4096, &nsdata, &nslen, &ignored) == MM_OK) {
            c.namespace = trim_dup(nsdata, nslen);
            if (!c.namespace[0]) {
                free(c.namespace);
                c.namespace = NULL;
            }
        }
        if (!c.namespace)
            c.namespace = xstrdup("default");
    }
    c.source = xstrdup("in-cluster");
    c.in_cluster = true;
    *out = c;
    k8s_config_init(&c);
done:
    free(nsdata);
    k8s_config_cleanup(&c);
    return rc;
}

/* ---- kubeconfig ---- */

struct kc {
    const char *path;    /* for messages; "kubeconfig" when NULL */
    const char *base;    /* the file relative references are resolved against; may be NULL */
    const char *context; /* the context name in use, for messages */
    struct mm_error *err;
};

static enum mm_status kc_err(struct kc *k, enum mm_status code, const char *field, const char *fmt,
                             ...) __attribute__((format(printf, 4, 5)));

static enum mm_status kc_err(struct kc *k, enum mm_status code, const char *field, const char *fmt,
                             ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (k->context)
        return mm_error_set(k->err, code, field, "kubeconfig %s, context \"%s\": %s", k->path,
                            k->context, msg);
    return mm_error_set(k->err, code, field, "kubeconfig %s: %s", k->path, msg);
}

/* The entry of a named list (clusters/users/contexts) whose name is name; NULL if none. */
static const json_t *find_named(const json_t *list, const char *name)
{
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *n = json_string_value(json_object_get(v, "name"));
        if (n && !strcmp(n, name))
            return v;
    }
    return NULL;
}

static enum mm_status check_list(struct kc *k, const json_t *doc, const char *key,
                                 const json_t **out)
{
    const json_t *v = json_object_get(doc, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return MM_OK;
    if (!json_is_array(v))
        return kc_err(k, MM_ERR_TYPE, key, "%s must be a list", key);
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        char field[64];
        fieldf(field, "%s[%zu]", key, i);
        if (!json_is_object(e) || !json_is_string(json_object_get(e, "name")))
            return kc_err(k, MM_ERR_TYPE, field, "every entry of %s needs a string name", key);
    }
    *out = v;
    return MM_OK;
}

/* A string member of obj: *out borrowed (NULL if absent); error if present and not a string. */
static enum mm_status get_str(struct kc *k, const json_t *obj, const char *key, const char *prefix,
                              const char **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return MM_OK;
    if (!json_is_string(v)) {
        char field[FIELD_LEN];
        fieldf(field, "%s.%s", prefix, key);
        return kc_err(k, MM_ERR_TYPE, field, "must be a string");
    }
    *out = json_string_value(v);
    if (!(*out)[0])
        *out = NULL; /* "" is unset, as in Go */
    return MM_OK;
}

static enum mm_status get_bool(struct kc *k, const json_t *obj, const char *key, const char *prefix,
                               bool *out)
{
    const json_t *v = json_object_get(obj, key);
    *out = false;
    if (!v || json_is_null(v))
        return MM_OK;
    if (!json_is_boolean(v)) {
        char field[FIELD_LEN];
        fieldf(field, "%s.%s", prefix, key);
        return kc_err(k, MM_ERR_TYPE, field, "must be true or false");
    }
    *out = json_is_true(v);
    return MM_OK;
}

/*
 * Load PEM from either key_data (base64) or key_file. Both set: the data wins,
 * as in client-go. secret: never print anything of it. *data NULL when neither.
 */
static enum mm_status load_pem(struct kc *k, const json_t *obj, const char *prefix,
                               const char *file_key, const char *data_key, bool secret, char **data,
                               size_t *len)
{
    const char *b64 = NULL, *file = NULL;
    char field[FIELD_LEN];
    enum mm_status rc;
    *data = NULL;
    *len = 0;
    if ((rc = get_str(k, obj, data_key, prefix, &b64)) ||
        (rc = get_str(k, obj, file_key, prefix, &file)))
        return rc;
    if (b64) {
        fieldf(field, "%s.%s", prefix, data_key);
        char *d = decode_b64(b64, len);
        if (!d)
            return kc_err(k, MM_ERR_INVALID, field, "illegal base64 data (want the base64 of PEM)");
        if (!looks_like_pem(d, *len)) {
            if (secret)
                free_secret(d, *len);
            else
                free(d);
            *len = 0;
            return kc_err(k, MM_ERR_INVALID, field,
                          "the decoded data is not PEM (no \"-----BEGIN\" line)");
        }
        *data = d;
        return MM_OK;
    }
    if (file) {
        fieldf(field, "%s.%s", prefix, file_key);
        char *p = resolve_path(k->base, file);
        struct mm_error ferr;
        rc = read_pem_file(p, field, secret, data, len, &ferr);
        free(p);
        if (rc != MM_OK)
            return kc_err(k, rc, field, "%s", ferr.message);
    }
    return MM_OK;
}

static bool json_doc_empty(const json_t *doc)
{
    if (!json_is_object(doc))
        return json_is_null(doc);
    const char *keys[] = {"clusters", "users", "contexts"};
    for (size_t i = 0; i < 3; i++) {
        const json_t *v = json_object_get(doc, keys[i]);
        if (json_is_array(v) && json_array_size(v) > 0)
            return false;
    }
    const char *cur = json_string_value(json_object_get(doc, "current-context"));
    return !cur || !cur[0];
}

static const char *const unsupported_user_keys[][2] = {
    {"exec",
     "exec credential plugins are not supported; use token, tokenFile or a client certificate"},
    {"auth-provider", "auth-provider plugins are not supported; use token, tokenFile or a client "
                      "certificate"},
    {"username", "basic authentication (username/password) is not supported"},
    {"password", "basic authentication (username/password) is not supported"},
    {"as", "impersonation (as) is not supported"},
    {"as-uid", "impersonation (as-uid) is not supported"},
    {"as-groups", "impersonation (as-groups) is not supported"},
    {"as-user-extra", "impersonation (as-user-extra) is not supported"},
};

enum mm_status k8s_kubeconfig_parse(const char *text, size_t len, const char *path,
                                    const char *context, struct k8s_config *out,
                                    struct mm_error *err)
{
    struct kc k = {.path = path ? path : "kubeconfig", .base = path, .context = NULL, .err = err};
    struct k8s_config c;
    k8s_config_init(&c);
    json_t *docs = NULL;
    enum mm_status rc = MM_OK;
    char field[FIELD_LEN];

    struct yamljson_limits lim = yamljson_default_limits;
    lim.max_bytes = KUBECONFIG_MAX;
    lim.max_docs = 1;
    struct mm_error yerr;
    rc = yamljson_load(text, len, &lim, &docs, &yerr);
    if (rc != MM_OK) {
        rc = kc_err(&k, rc == MM_ERR_TOO_BIG ? MM_ERR_TOO_BIG : MM_ERR_PARSE, "", "%s",
                    yerr.message);
        goto done;
    }
    const json_t *doc = json_array_get(docs, 0);
    if (!doc || json_doc_empty(doc)) {
        rc = kc_err(&k, MM_ERR_NOT_FOUND, "", "the file is empty (no contexts, clusters or users)");
        goto done;
    }
    if (!json_is_object(doc)) {
        rc = kc_err(&k, MM_ERR_TYPE, "",
                    "the document must be a mapping (apiVersion: v1, kind: Config)");
        goto done;
    }
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    if (kind && strcmp(kind, "Config")) {
        rc = kc_err(&k, MM_ERR_INVALID, "kind", "kind is \"%.64s\", want Config", kind);
        goto done;
    }
    const json_t *clusters, *users, *contexts;
    if ((rc = check_list(&k, doc, "clusters", &clusters)) ||
        (rc = check_list(&k, doc, "users", &users)) ||
        (rc = check_list(&k, doc, "contexts", &contexts)))
        goto done;

    /* The context. */
    const char *ctx_name = context && context[0] ? context : NULL;
    if (!ctx_name) {
        const char *cur = NULL;
        if ((rc = get_str(&k, doc, "current-context", "", &cur)))
            goto done;
        if (!cur) {
            rc = kc_err(&k, MM_ERR_INVALID, "current-context",
                        "current-context is not set; pass --context with one of the contexts");
            goto done;
        }
        ctx_name = cur;
    }
    k.context = ctx_name;
    const json_t *ctx_entry = find_named(contexts, ctx_name);
    if (!ctx_entry) {
        rc = kc_err(&k, MM_ERR_NOT_FOUND, context && context[0] ? "--context" : "current-context",
                    "context \"%s\" not found in contexts", ctx_name);
        goto done;
    }
    char ctx_prefix[FIELD_LEN];
    fieldf(ctx_prefix, "contexts[name=%s].context", ctx_name);
    const json_t *ctx = json_object_get(ctx_entry, "context");
    if (!json_is_object(ctx)) {
        rc = kc_err(&k, MM_ERR_TYPE, ctx_prefix, "the context must be a mapping");
        goto done;
    }
    const char *cluster_name = NULL, *user_name = NULL, *ns = NULL;
    if ((rc = get_str(&k, ctx, "cluster", ctx_prefix, &cluster_name)) ||
        (rc = get_str(&k, ctx, "user", ctx_prefix, &user_name)) ||
        (rc = get_str(&k, ctx, "namespace", ctx_prefix, &ns)))
        goto done;

    /* The cluster. */
    fieldf(field, "%s.cluster", ctx_prefix);
    if (!cluster_name) {
        rc = kc_err(&k, MM_ERR_INVALID, field, "the context names no cluster");
        goto done;
    }
    const json_t *cl_entry = find_named(clusters, cluster_name);
    if (!cl_entry) {
        rc = kc_err(&k, MM_ERR_NOT_FOUND, field, "cluster \"%s\" was not found in clusters",
                    cluster_name);
        goto done;
    }
    char cl_prefix[FIELD_LEN];
    fieldf(cl_prefix, "clusters[name=%s].cluster", cluster_name);
    const json_t *cl = json_object_get(cl_entry, "cluster");
    if (!json_is_object(cl)) {
        rc = kc_err(&k, MM_ERR_TYPE, cl_prefix, "the cluster must be a mapping");
        goto done;
    }
    const char *server = NULL, *sni = NULL, *proxy = NULL;
    if ((rc = get_str(&k, cl, "server", cl_prefix, &server)) ||
        (rc = get_str(&k, cl, "tls-server-name", cl_prefix, &sni)) ||
        (rc = get_str(&k, cl, "proxy-url", cl_prefix, &proxy)) ||
        (rc = get_bool(&k, cl, "insecure-skip-tls-verify", cl_prefix, &c.insecure)) ||
        (rc = get_bool(&k, cl, "disable-compression", cl_prefix, &c.disable_compression)))
        goto done;
    fieldf(field, "%s.server", cl_prefix);
    if (!server) {
        rc = kc_err(&k, MM_ERR_INVALID, field, "no server found for cluster \"%s\"", cluster_name);
        goto done;
    }
    if (strncmp(server, "https://", 8) && strncmp(server, "http://", 7)) {
        rc = kc_err(&k, MM_ERR_INVALID, field,
                    "server \"%.200s\" must be an http:// or https:// URL", server);
        goto done;
    }
    if (proxy) {
        fieldf(field, "%s.proxy-url", cl_prefix);
        rc = kc_err(&k, MM_ERR_INVALID, field, "proxy-url is not supported");
        goto done;
    }
    size_t slen = strlen(server);
    while (slen && server[slen - 1] == '/')
        slen--;
    c.server = xstrndup(server, slen);
    if (sni)
        c.tls_server_name = xstrdup(sni);
    if ((rc = load_pem(&k, cl, cl_prefix, "certificate-authority", "certificate-authority-data",
                       false, &c.ca_pem, &c.ca_pem_len)))
        goto done;
    if (c.insecure && c.ca_pem) {
        fieldf(field, "%s.insecure-skip-tls-verify", cl_prefix);
        rc = kc_err(&k, MM_ERR_INVALID, field,
                    "specifying a root certificates file with the insecure flag is not allowed");
        goto done;
    }

    /* The user (optional: a context without a user is anonymous). */
    if (user_name) {
        fieldf(field, "%s.user", ctx_prefix);
        const json_t *u_entry = find_named(users, user_name);
        if (!u_entry) {
            rc = kc_err(&k, MM_ERR_NOT_FOUND, field, "user \"%s\" was not found in users",
                        user_name);
            goto done;
        }
        char u_prefix[FIELD_LEN];
        fieldf(u_prefix, "users[name=%s].user", user_name);
        const json_t *u = json_object_get(u_entry, "user");
        if (u && !json_is_null(u) && !json_is_object(u)) {
            rc = kc_err(&k, MM_ERR_TYPE, u_prefix, "the user must be a mapping");
            goto done;
        }
        for (size_t i = 0; i < sizeof unsupported_user_keys / sizeof unsupported_user_keys[0];
             i++) {
            const json_t *v = json_object_get(u, unsupported_user_keys[i][0]);
            if (v && !json_is_null(v) && !(json_is_string(v) && !json_string_length(v))) {
                fieldf(field, "%s.%s", u_prefix, unsupported_user_keys[i][0]);
                rc = kc_err(&k, MM_ERR_INVALID, field, "%s", unsupported_user_keys[i][1]);
                goto done;
            }
        }
        const char *token = NULL, *token_file = NULL;
        if ((rc = get_str(&k, u, "token", u_prefix, &token)) ||
            (rc = get_str(&k, u, "tokenFile", u_prefix, &token_file)))
            goto done;
        if (token)
            c.token = xstrdup(token);
        if (token_file) {
            c.token_file = resolve_path(k.base, token_file);
            char *t = NULL;
            fieldf(field, "%s.tokenFile", u_prefix);
            struct mm_error terr;
            rc = read_token_file(c.token_file, field, &t, &terr);
            if (rc != MM_OK) {
                rc = kc_err(&k, rc, field, "%s", terr.message);
                goto done;
            }
            free_secret(t, 0);
        }
        if ((rc = load_pem(&k, u, u_prefix, "client-certificate", "client-certificate-data", false,
                           &c.client_cert_pem, &c.client_cert_len)) ||
            (rc = load_pem(&k, u, u_prefix, "client-key", "client-key-data", true,
                           &c.client_key_pem, &c.client_key_len)))
            goto done;
        if (c.client_cert_pem && !c.client_key_pem) {
            fieldf(field, "%s.client-key-data", u_prefix);
            rc = kc_err(&k, MM_ERR_INVALID, field,
                        "client-key-data or client-key must be specified for %s to use the "
                        "clientCert authentication method",
                        user_name);
            goto done;
        }
        if (c.client_key_pem && !c.client_cert_pem) {
            fieldf(field, "%s.client-certificate-data", u_prefix);
            rc = kc_err(&k, MM_ERR_INVALID, field,
                        "client-certificate-data or client-certificate must be specified for %s "
                        "to use the clientCert authentication method",
                        user_name);
            goto done;
        }
    }
    c.namespace = xstrdup(ns ? ns : "default");
    c.source = xstrdup(k.path);
    c.context = xstrdup(ctx_name);
    *out = c;
    k8s_config_init(&c);
done:
    json_decref(docs);
    k8s_config_cleanup(&c);
    return rc;
}

enum mm_status k8s_kubeconfig_load(const char *path, const char *context, struct k8s_config *out,
                                   struct mm_error *err)
{
    char *data = NULL;
    size_t len = 0;
    struct mm_error ferr;
    enum mm_status rc = fileio_read(path, KUBECONFIG_MAX, &data, &len, &ferr);
    if (rc != MM_OK)
        return mm_error_set(err, rc, "kubeconfig", "%s: %s", path, ferr.message);
    rc = k8s_kubeconfig_parse(data, len, path, context, out, err);
    free_secret(data, len);
    return rc;
}

/* ---- the loading rules ---- */

void k8s_load_options_from_process(struct k8s_load_options *o, const char *kubeconfig_flag,
                                   const char *context_flag)
{
    memset(o, 0, sizeof *o);
    o->kubeconfig = kubeconfig_flag;
    o->context = context_flag;
    o->kubeconfig_env = getenv("KUBECONFIG");
    o->home = getenv("HOME");
    k8s_incluster_env_from_process(&o->incluster);
}

static bool is_regular_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool in_cluster_possible(const struct k8s_incluster_env *e)
{
    return e->host && e->host[0] && e->port && e->port[0] && e->token_file &&
           is_regular_file(e->token_file);
}

enum mm_status k8s_config_load(const struct k8s_load_options *o, struct k8s_config *out,
                               struct mm_error *err)
{
    char *path = NULL;
    char *warning = NULL;
    enum mm_status rc;
    const char *ctx = o->context && o->context[0] ? o->context : NULL;

    if (o->kubeconfig && o->kubeconfig[0]) {
        rc = k8s_kubeconfig_load(o->kubeconfig, ctx, out, err);
        if (rc == MM_ERR_NOT_FOUND && !err->field[0])
            rc = mm_error_set(err, MM_ERR_INVALID, "--kubeconfig",
                              "kubeconfig %s is empty (no contexts, clusters or users)",
                              o->kubeconfig);
        return rc;
    }
    if (o->kubeconfig_env && o->kubeconfig_env[0]) {
        /* First existing file of the list (client-go merges them all). */
        const char *s = o->kubeconfig_env;
        size_t entries = 0;
        while (*s) {
            const char *colon = strchr(s, ':');
            size_t n = colon ? (size_t)(colon - s) : strlen(s);
            if (n) {
                entries++;
                char *cand = xstrndup(s, n);
                if (!path && is_regular_file(cand))
                    path = cand;
                else
                    free(cand);
            }
            s += n + (colon ? 1 : 0);
        }
        if (path && entries > 1)
            warning = xasprintf("KUBECONFIG lists %zu files; only the first existing one (%s) is "
                                "used, the others are not merged as kubectl would",
                                entries, path);
    } else if (o->home && o->home[0]) {
        char *cand = xasprintf("%s/.kube/config", o->home);
        if (is_regular_file(cand))
            path = cand;
        else
            free(cand);
    }
    if (path) {
        rc = k8s_kubeconfig_load(path, ctx, out, err);
        if (rc == MM_OK) {
            out->warning = warning;
            warning = NULL;
            goto done;
        }
        if (!(rc == MM_ERR_NOT_FOUND && !err->field[0])) /* not merely an empty file */
            goto done;
    }
    if (in_cluster_possible(&o->incluster)) {
        if (ctx) {
            rc = mm_error_set(err, MM_ERR_INVALID, "--context",
                              "context \"%s\" requested but no kubeconfig was found (running "
                              "in-cluster); pass --kubeconfig",
                              ctx);
            goto done;
        }
        rc = k8s_config_in_cluster(&o->incluster, out, err);
        goto done;
    }
    rc = mm_error_set(err, MM_ERR_NOT_FOUND, "kubeconfig",
                      "invalid configuration: no configuration has been provided: pass "
                      "--kubeconfig, set KUBECONFIG, create ~/.kube/config or run in a cluster "
                      "(KUBERNETES_SERVICE_HOST/PORT and %s)",
                      o->incluster.token_file ? o->incluster.token_file : K8S_SA_DIR "/token");
done:
    free(path);
    free(warning);
    return rc;
}
