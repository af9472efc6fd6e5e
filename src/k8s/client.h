/*
 * The Kubernetes API client: one object shared by every thread, whose unit is
 * a resource (group, version, plural) plus raw JSON bodies (jansson values).
 * No generated types: callers read and build the JSON they need.
 *
 * Transport: libcurl easy handles from a small pool, all attached to one
 * share handle that shares the connection cache (keep-alive), DNS and TLS
 * sessions, with one mutex per shared data kind. HTTP/1.1. Connect timeout
 * 10 s, request timeout 30 s by default (per call override), body cap 64 MiB
 * by default (per call override). TLS verification is on (the config's CA
 * only, or the system roots when it has none) unless the config says
 * insecure; a client certificate/key is used from PEM in memory;
 * tls-server-name sets SNI and the verification name (through CONNECT_TO).
 * The bearer token comes from the config, or from its token file, re-read
 * every minute and after a 401.
 *
 * Errors: every call returns an enum mm_status (MM_OK on 2xx) and fills the
 * struct k8s_error it is given (may be NULL) as k8s/status.h describes.
 * Retries: a GET/LIST answered 429 or 5xx with a Retry-After (header or
 * details.retryAfterSeconds), or whose connection was reset, is retried
 * after the given delay, up to 10 times; a write is retried only for 429 with
 * Retry-After (as client-go). A delay longer than max_retry_wait_ms, or
 * no_retry, returns MM_ERR_RETRY with err->retry_after_s so the caller backs
 * off instead.
 */
#ifndef MM_K8S_CLIENT_H
#define MM_K8S_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s/cancel.h"
#include "k8s/config.h"
#include "k8s/status.h"
#include "util/error.h"
#include "util/strbuf.h"

struct k8s_client;

struct k8s_client_options {
    long connect_timeout_ms; /* 10000 */
    long request_timeout_ms; /* 30000; the default of every non-watch call */
    size_t max_body;         /* 64 MiB; the default response body cap */
    int max_retries;         /* 10 */
    long max_retry_wait_ms;  /* 30000: a longer Retry-After is returned to the caller */
    long token_refresh_ms;   /* 60000: how long a token read from a file is used */
    const char *user_agent;  /* "meshmetric-operator/<version>" */
};

/* The defaults above. */
void k8s_client_options_init(struct k8s_client_options *o);

/*
 * Make a client for cfg (copied: cfg may be freed afterwards). opts NULL
 * means the defaults. Errors: MM_ERR_INVALID for a server URL libcurl cannot
 * use. Nothing is sent yet. The client is freed with k8s_client_free(), after
 * every thread using it has finished its calls.
 */
enum mm_status k8s_client_create(const struct k8s_config *cfg,
                                 const struct k8s_client_options *opts, struct k8s_client **out,
                                 struct k8s_error *err) MM_WUR;
void k8s_client_free(struct k8s_client *c);

/* The configuration's default namespace (borrowed, lives as long as the client). */
const char *k8s_client_namespace(const struct k8s_client *c);
/* The server URL (borrowed). */
const char *k8s_client_server(const struct k8s_client *c);

/* Counters since creation, for /metrics (read without locking). */
struct k8s_client_stats {
    uint64_t requests; /* attempts sent, retries included */
    uint64_t retries;  /* attempts repeated because of 429/Retry-After, a reset connection, a 401 */
    uint64_t failures; /* calls that returned an error */
};
void k8s_client_stats(const struct k8s_client *c, struct k8s_client_stats *out);

/* A resource: group ("" for the core group), version, plural. Borrowed strings. */
struct k8s_resource {
    const char *group;
    const char *version;
    const char *plural;
};

/* Per call options; a NULL pointer means all defaults. */
struct k8s_call_opts {
    long timeout_ms;           /* 0: the client's request timeout; < 0: none */
    size_t max_body;           /* 0: the client's cap */
    struct k8s_cancel *cancel; /* NULL: not cancellable; fired: MM_ERR_CANCELLED within ~1 s */
    const char *field_manager; /* writes: fieldManager= (required by apply patches) */
    bool dry_run;              /* writes: dryRun=All */
    bool force;                /* apply patches only: force=true */
    bool no_retry;             /* never wait for a Retry-After inline */
};

/*
 * GET one object: .../namespaces/NS/PLURAL/NAME[/SUBRESOURCE]. ns NULL or ""
 * for cluster-scoped resources; subresource NULL for the object itself.
 * *out is a new reference (caller decrefs); NULL on error.
 */
enum mm_status k8s_get(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                       const char *name, const char *subresource, const struct k8s_call_opts *opts,
                       json_t **out, struct k8s_error *err) MM_WUR;

/* metav1.ListOptions (kubernetes-api.md 3.2). NULL/0 members are not sent. */
struct k8s_list_opts {
    const char *label_selector;
    const char *field_selector;
    long limit;
    const char *continue_token;
    const char *resource_version;       /* "" is not sent: a consistent read */
    const char *resource_version_match; /* "Exact" or "NotOlderThan" */
    long timeout_seconds;
};

/*
 * One page of a list: the whole <Kind>List as the server sent it (*page, a
 * new reference; "items" is checked to be an array). ns NULL or "" lists
 * across namespaces. The body is parsed once and freed before returning.
 */
enum mm_status k8s_list(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                        const struct k8s_list_opts *lopts, const struct k8s_call_opts *opts,
                        json_t **page, struct k8s_error *err) MM_WUR;

/*
 * Called once per item. item is borrowed (valid during the call; take a
 * reference with json_incref to keep it, never modify it). A non-MM_OK
 * return stops the listing and is returned by k8s_list_each.
 */
typedef enum mm_status (*k8s_item_fn)(void *ctx, json_t *item);

/*
 * List every page (limit as given, following metadata.continue; later pages
 * drop resourceVersion as client-go's pager does), handing each item to fn
 * while only one page is in memory. *resource_version (may be NULL) gets the
 * list's metadata.resourceVersion (new string, caller frees). A 410 on a
 * continue page is MM_ERR_EXPIRED (the caller decides whether to list again
 * from scratch; fn has then seen a partial list).
 */
enum mm_status k8s_list_each(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                             const struct k8s_list_opts *lopts, const struct k8s_call_opts *opts,
                             k8s_item_fn fn, void *ctx, char **resource_version,
                             struct k8s_error *err) MM_WUR;

/*
 * One list page, streamed: each item is parsed on its own as the body
 * arrives and handed to fn (borrowed for the call), so memory stays at about
 * one item however long the list is (k8s/liststream.h). *resource_version and
 * *continue_token (may be NULL; caller frees) get the page's
 * metadata.resourceVersion and metadata.continue ("" when absent). max_item
 * 0 = 4 MiB per item; opts->max_body is not used (nothing is buffered).
 * fn's non-MM_OK status stops the transfer and is returned.
 */
enum mm_status k8s_list_stream(struct k8s_client *c, const struct k8s_resource *res,
                               const char *ns, const struct k8s_list_opts *lopts,
                               const struct k8s_call_opts *opts, size_t max_item,
                               enum mm_status (*fn)(void *ctx, json_t *item), void *ctx,
                               char **resource_version, char **continue_token,
                               struct k8s_error *err) MM_WUR;

/* POST obj to the collection. *out (may be NULL) gets the created object. 409 AlreadyExists:
 * MM_ERR_CONFLICT. */
enum mm_status k8s_create(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                          const json_t *obj, const struct k8s_call_opts *opts, json_t **out,
                          struct k8s_error *err) MM_WUR;

/*
 * PUT obj to NAME (or NAME/SUBRESOURCE, e.g. "status"). obj should carry
 * metadata.resourceVersion (custom resources and Leases require it): a stale
 * one is MM_ERR_CONFLICT with reason "Conflict". *out (may be NULL) gets the
 * stored object.
 */
enum mm_status k8s_update(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                          const char *name, const char *subresource, const json_t *obj,
                          const struct k8s_call_opts *opts, json_t **out,
                          struct k8s_error *err) MM_WUR;

enum k8s_patch_type {
    K8S_PATCH_JSON,      /* application/json-patch+json (RFC 6902, json-patch v4 on the server) */
    K8S_PATCH_MERGE,     /* application/merge-patch+json (RFC 7386) */
    K8S_PATCH_STRATEGIC, /* application/strategic-merge-patch+json (built-in kinds only) */
    K8S_PATCH_APPLY,     /* application/apply-patch+yaml (server-side apply; needs field_manager) */
};

/* The Content-Type of a patch type. */
const char *k8s_patch_content_type(enum k8s_patch_type type);

/*
 * PATCH NAME[/SUBRESOURCE] with patch (a JSON array for K8S_PATCH_JSON, an
 * object otherwise). *out (may be NULL) gets the patched object. An apply
 * patch without opts->field_manager is MM_ERR_INVALID before anything is sent.
 */
enum mm_status k8s_patch(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                         const char *name, const char *subresource, enum k8s_patch_type type,
                         const json_t *patch, const struct k8s_call_opts *opts, json_t **out,
                         struct k8s_error *err) MM_WUR;

enum k8s_propagation {
    K8S_PROPAGATION_DEFAULT = 0, /* not sent: the resource's default */
    K8S_PROPAGATION_ORPHAN,
    K8S_PROPAGATION_BACKGROUND,
    K8S_PROPAGATION_FOREGROUND,
};

/* DeleteOptions; NULL/zero members are not sent. */
struct k8s_delete_opts {
    enum k8s_propagation propagation;
    const char *precondition_uid;
    const char *precondition_rv; /* a stale one is MM_ERR_CONFLICT */
    long grace_period_seconds;   /* < 0: not sent (0 means "now") */
};

/* The struct k8s_delete_opts that sends nothing (grace_period_seconds -1). */
void k8s_delete_opts_init(struct k8s_delete_opts *d);

/*
 * DELETE NAME. *out (may be NULL) gets what the server answered: the object
 * (Pods, or pending deletion with finalizers) or a Status with status
 * "Success" (custom resources).
 */
enum mm_status k8s_delete(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                          const char *name, const struct k8s_delete_opts *dopts,
                          const struct k8s_call_opts *opts, json_t **out,
                          struct k8s_error *err) MM_WUR;

/* A raw answer. body is NUL-terminated (may be empty); caller frees with k8s_response_cleanup. */
struct k8s_response {
    int http_code;
    char *body;
    size_t len;
    char content_type[128];
};
void k8s_response_cleanup(struct k8s_response *r);

/*
 * Any request: method (GET, POST, PUT, PATCH or DELETE; anything else is
 * MM_ERR_INVALID), path_query ("/apis/kuma.io/v1alpha1",
 * "/version", already escaped), an optional body with its content type.
 * On 2xx *resp is filled (caller cleans up). On any other answer the error is
 * decoded into err as for every call and *resp is left empty.
 */
enum mm_status k8s_request(struct k8s_client *c, const char *method, const char *path_query,
                           const char *body, size_t body_len, const char *content_type,
                           const struct k8s_call_opts *opts, struct k8s_response *resp,
                           struct k8s_error *err) MM_WUR;

/* GET path_query and parse the answer as JSON (*out: new reference). */
enum mm_status k8s_get_raw(struct k8s_client *c, const char *path_query,
                           const struct k8s_call_opts *opts, json_t **out,
                           struct k8s_error *err) MM_WUR;

/*
 * Discovery: does the server serve res? GETs /api/v1 or /apis/GROUP/VERSION
 * and looks for res->plural in "resources". A 404 (group/version not
 * served, e.g. the Kuma CRDs are not installed) is MM_OK with *exists false.
 */
enum mm_status k8s_resource_exists(struct k8s_client *c, const struct k8s_resource *res,
                                   const struct k8s_call_opts *opts, bool *exists,
                                   struct k8s_error *err) MM_WUR;

/* ---- path helpers (pure; exposed for tests and for k8s/watch.c) ---- */

/*
 * "/api/v1/namespaces/NS/PLURAL/NAME/SUB" (core group) or
 * "/apis/GROUP/VERSION/...", each segment percent-escaped; ns, name and sub
 * may be NULL or "". Caller frees.
 */
char *k8s_path(const struct k8s_resource *res, const char *ns, const char *name, const char *sub);
/* Percent-escape everything but RFC 3986 unreserved characters. Caller frees. */
char *k8s_escape(const char *s);
/* Append "?key=value" or "&key=value" (value escaped) to a path in q. False past q's cap. */
bool k8s_query_add(struct strbuf *q, const char *key, const char *value) MM_WUR;

#endif
