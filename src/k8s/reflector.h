/*
 * The reflector: client-go's tools/cache/reflector.go for one resource.
 * It lists, then watches from the list's resourceVersion, and keeps going
 * across watch timeouts, closed connections, 410 Expired, server restarts and
 * errors, so that a consumer's cache converges to the server's objects with
 * no event lost and none delivered twice. See docs/k8s-client.md.
 *
 * The reflector keeps no objects. It drives a handler:
 *  - every (re)list is delivered as replace_begin, replace_item for each
 *    object (streamed page by page), then replace_end(rv): the consumer
 *    replaces its whole cache, so objects that vanished (deleted while the
 *    watch was down) disappear; replace_abort instead of replace_end when
 *    the list failed part way (the consumer drops what it got since begin);
 *  - watch events as add / update / delete;
 *  - synced() once, after the first complete replace.
 * All handler calls come from the reflector's thread, one at a time. Objects
 * are borrowed: take a reference (json_incref) to keep one, never modify it.
 * A handler must not call k8s_reflector_stop().
 */
#ifndef MM_K8S_REFLECTOR_H
#define MM_K8S_REFLECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s/client.h"
#include "k8s/status.h"
#include "util/error.h"

/* Any member may be NULL (nothing is called). */
struct k8s_reflector_handler {
    void *ctx;
    void (*replace_begin)(void *ctx);
    void (*replace_item)(void *ctx, json_t *obj);
    void (*replace_end)(void *ctx, const char *resource_version);
    void (*replace_abort)(void *ctx);
    void (*add)(void *ctx, json_t *obj);
    void (*update)(void *ctx, json_t *obj);
    void (*delete)(void *ctx, json_t *obj);
    void (*synced)(void *ctx);
};

struct k8s_reflector_options {
    const char *name;      /* for logs, e.g. "pods"; NULL: the plural */
    const char *namespace; /* NULL or "": all namespaces (or a cluster-scoped resource) */
    const char *label_selector;
    const char *field_selector;
    long page_size;              /* 500 */
    long min_watch_timeout_s;    /* 300: each watch asks timeoutSeconds in [min, 2 min) */
    long watch_idle_timeout_s;   /* 0: 300 s without a byte ends a watch (then re-watch) */
    uint64_t resync_ms;          /* 0: off; else a full relist (consistent read) this often */
    size_t max_list_body;        /* unused: lists are streamed item by item (k8s/liststream.h) */
    size_t max_event;            /* 0: K8S_WATCH_MAX_EVENT */
    uint64_t backoff_initial_ms; /* 800 */
    uint64_t backoff_max_ms;     /* 30000 */
    uint64_t backoff_reset_ms;   /* 120000: a healthy period that resets the backoff */
    double (*random)(void *ctx); /* [0, 1) for jitter; NULL: an internal generator */
    void *random_ctx;
};

/* The defaults above (all pointers NULL). */
void k8s_reflector_options_init(struct k8s_reflector_options *o);

struct k8s_reflector;

/*
 * A reflector for res (strings copied) using client c (borrowed: it must
 * outlive the reflector). opts NULL: defaults. handler is copied. Nothing
 * runs until k8s_reflector_start() or k8s_reflector_run().
 */
enum mm_status k8s_reflector_create(struct k8s_client *c, const struct k8s_resource *res,
                                    const struct k8s_reflector_options *opts,
                                    const struct k8s_reflector_handler *handler,
                                    struct k8s_reflector **out, struct mm_error *err) MM_WUR;
/* Stop (if running) and free. r may be NULL. */
void k8s_reflector_free(struct k8s_reflector *r);

/* Run in a new thread. MM_ERR_INVALID if already started; MM_ERR_INTERNAL if no thread. */
enum mm_status k8s_reflector_start(struct k8s_reflector *r, struct mm_error *err) MM_WUR;
/*
 * Stop and join the thread (returns within about a second: an in-flight
 * request is aborted). Idempotent. After stop the reflector cannot be restarted.
 */
void k8s_reflector_stop(struct k8s_reflector *r);
/* Run in the calling thread until k8s_reflector_stop() is called from another one. */
void k8s_reflector_run(struct k8s_reflector *r);

/* A snapshot of the reflector's state, for /readyz and /metrics. */
struct k8s_reflector_state {
    bool synced;                /* the first list completed */
    bool current;               /* the last list succeeded or the watch is open: the consumer's
                                   cache follows the server; false from a failed list or watch
                                   (or a 410) until the next list or accepted watch */
    char resource_version[128]; /* last synced RV ("" before the first list) */
    uint64_t lists;             /* complete lists (the first included) */
    uint64_t relists;           /* lists after the first one (410, errors, resyncs) */
    uint64_t resyncs;           /* relists made by the resync period */
    uint64_t watches;           /* watch requests made */
    uint64_t events;            /* ADDED/MODIFIED/DELETED delivered */
    uint64_t bookmarks;
    uint64_t expired;               /* 410 answers or ERROR events */
    uint64_t errors;                /* failed lists and watches (each one backs off) */
    uint64_t last_backoff_ms;       /* the last wait after an error */
    enum mm_status last_error_code; /* MM_OK if none yet */
    char last_error[256];           /* its message, truncated */
};
void k8s_reflector_state(struct k8s_reflector *r, struct k8s_reflector_state *out);

#endif
