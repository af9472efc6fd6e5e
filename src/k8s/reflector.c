#include "k8s/reflector.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/backoff.h"
#include "k8s/cancel.h"
#include "k8s/watch.h"
#include "util/log.h"
#include "util/xalloc.h"

/* A list page may be large (up to the body cap): give it more time than a single GET. */
#define LIST_TIMEOUT_MS 120000
/* A watch that ends this fast with no event is treated as an error (client-go: "very short watch").
 */
#define SHORT_WATCH_MS 1000

struct k8s_reflector {
    struct k8s_client *client;
    char *group, *version, *plural;
    struct k8s_resource res;
    char *name, *ns, *label_selector, *field_selector;
    struct k8s_reflector_options opts;
    struct k8s_reflector_handler h;
    struct k8s_cancel *cancel;
    struct k8s_backoff backoff;
    uint64_t rng;

    /* reflector thread only */
    char *rv;            /* last synced resourceVersion; NULL before the first list */
    bool rv_unavailable; /* client-go isLastSyncResourceVersionUnavailable */
    bool paginated;      /* the first list (RV "0") came back in pages */
    uint64_t watch_events;

    pthread_t thread;
    bool started;
    bool joined;
    pthread_mutex_t lock; /* state, started/joined */
    struct k8s_reflector_state state;
};

void k8s_reflector_options_init(struct k8s_reflector_options *o)
{
    memset(o, 0, sizeof *o);
    o->page_size = 500;
    o->min_watch_timeout_s = 300;
    o->backoff_initial_ms = 800;
    o->backoff_max_ms = 30000;
    o->backoff_reset_ms = 120000;
}

static char *dup_or_null(const char *s)
{
    return s && s[0] ? xstrdup(s) : NULL;
}

enum mm_status k8s_reflector_create(struct k8s_client *c, const struct k8s_resource *res,
                                    const struct k8s_reflector_options *opts,
                                    const struct k8s_reflector_handler *handler,
                                    struct k8s_reflector **out, struct mm_error *err)
{
    *out = NULL;
    if (!c || !res || !res->version || !res->version[0] || !res->plural || !res->plural[0])
        return mm_error_set(err, MM_ERR_INVALID, "resource",
                            "a reflector needs a client and a resource (version and plural)");
    struct k8s_reflector *r = xcalloc(1, sizeof *r);
    r->client = c;
    r->group = xstrdup(res->group ? res->group : "");
    r->version = xstrdup(res->version);
    r->plural = xstrdup(res->plural);
    r->res = (struct k8s_resource){r->group, r->version, r->plural};
    k8s_reflector_options_init(&r->opts);
    if (opts) {
        struct k8s_reflector_options d = r->opts;
        r->opts = *opts;
        if (r->opts.page_size <= 0)
            r->opts.page_size = d.page_size;
        if (r->opts.min_watch_timeout_s <= 0)
            r->opts.min_watch_timeout_s = d.min_watch_timeout_s;
        if (!r->opts.backoff_initial_ms)
            r->opts.backoff_initial_ms = d.backoff_initial_ms;
        if (!r->opts.backoff_max_ms)
            r->opts.backoff_max_ms = d.backoff_max_ms;
        if (!r->opts.backoff_reset_ms)
            r->opts.backoff_reset_ms = d.backoff_reset_ms;
    }
    r->name = xstrdup(r->opts.name && r->opts.name[0] ? r->opts.name : res->plural);
    r->ns = dup_or_null(r->opts.namespace);
    r->label_selector = dup_or_null(r->opts.label_selector);
    r->field_selector = dup_or_null(r->opts.field_selector);
    r->opts.name = r->name;
    r->opts.namespace = r->ns;
    r->opts.label_selector = r->label_selector;
    r->opts.field_selector = r->field_selector;
    if (handler)
        r->h = *handler;
    r->cancel = k8s_cancel_create();
    k8s_backoff_init(&r->backoff);
    r->backoff.initial_ms = r->opts.backoff_initial_ms;
    r->backoff.max_ms = r->opts.backoff_max_ms;
    r->backoff.reset_ms = r->opts.backoff_reset_ms;
    r->rng = k8s_clock_ms() ^ (uint64_t)(uintptr_t)r ^ 0x9e3779b97f4a7c15ull;
    pthread_mutex_init(&r->lock, NULL);
    *out = r;
    return MM_OK;
}

void k8s_reflector_free(struct k8s_reflector *r)
{
    if (!r)
        return;
    k8s_reflector_stop(r);
    pthread_mutex_destroy(&r->lock);
    k8s_cancel_free(r->cancel);
    free(r->group);
    free(r->version);
    free(r->plural);
    free(r->name);
    free(r->ns);
    free(r->label_selector);
    free(r->field_selector);
    free(r->rv);
    free(r);
}

void k8s_reflector_state(struct k8s_reflector *r, struct k8s_reflector_state *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->state;
    pthread_mutex_unlock(&r->lock);
}

/* ---- helpers (reflector thread) ---- */

static double rnd(struct k8s_reflector *r)
{
    if (r->opts.random)
        return r->opts.random(r->opts.random_ctx);
    /* xorshift64*: jitter only, not security */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return (double)((r->rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static void set_rv(struct k8s_reflector *r, const char *rv)
{
    if (r->rv && !strcmp(r->rv, rv))
        return;
    free(r->rv);
    r->rv = xstrdup(rv);
    pthread_mutex_lock(&r->lock);
    snprintf(r->state.resource_version, sizeof r->state.resource_version, "%s", rv);
    pthread_mutex_unlock(&r->lock);
}

static void set_current(struct k8s_reflector *r, bool current)
{
    pthread_mutex_lock(&r->lock);
    r->state.current = current;
    pthread_mutex_unlock(&r->lock);
}

/* The server accepted a watch: events flow again from the last resourceVersion. */
static void watch_opened(void *ctx)
{
    set_current(ctx, true);
}

static void note_error(struct k8s_reflector *r, const struct k8s_error *e, uint64_t wait_ms)
{
    pthread_mutex_lock(&r->lock);
    r->state.current = false;
    r->state.errors++;
    r->state.last_backoff_ms = wait_ms;
    r->state.last_error_code = e->base.code;
    snprintf(r->state.last_error, sizeof r->state.last_error, "%.255s", e->base.message);
    pthread_mutex_unlock(&r->lock);
}

/* Back off after a failure; honours Retry-After. True when stopped meanwhile. */
static bool backoff_wait(struct k8s_reflector *r, const struct k8s_error *e)
{
    uint64_t wait = k8s_backoff_next(&r->backoff, k8s_clock_ms(), rnd(r));
    if (e->retry_after_s >= 0 && (uint64_t)e->retry_after_s * 1000 > wait)
        wait = (uint64_t)e->retry_after_s * 1000;
    note_error(r, e, wait);
    LOG(LOG_WARN, "k8s reflector %s: %s; retrying in %llu ms", r->name, e->base.message,
        (unsigned long long)wait);
    return k8s_cancel_sleep(r->cancel, wait);
}

/* ---- list ---- */

struct list_run {
    struct k8s_reflector *r;
    bool begun;
    char *rv;          /* metadata.resourceVersion of the first page */
    bool had_continue; /* the first page said there is more */
};

/* One item of a streamed page: the replace begins with the first page's first byte. */
static void begin_run(struct list_run *lr)
{
    if (!lr->begun) {
        if (lr->r->h.replace_begin)
            lr->r->h.replace_begin(lr->r->h.ctx);
        lr->begun = true;
    }
}

static enum mm_status deliver_item(void *ctx, json_t *item)
{
    struct list_run *lr = ctx;
    begin_run(lr);
    if (lr->r->h.replace_item)
        lr->r->h.replace_item(lr->r->h.ctx, item);
    return MM_OK;
}

static void abort_run(struct list_run *lr)
{
    if (lr->begun && lr->r->h.replace_abort)
        lr->r->h.replace_abort(lr->r->h.ctx);
    lr->begun = false;
    free(lr->rv);
    lr->rv = NULL;
    lr->had_continue = false;
}

/*
 * One complete list at resourceVersion rv_param ("" = consistent read) with
 * page size limit (0 = unpaged), streamed to the handler. On MM_OK the
 * replace is ended and *rv_out holds the list's RV (caller frees).
 */
static enum mm_status list_all(struct k8s_reflector *r, const char *rv_param, long limit,
                               char **rv_out, bool *had_continue, struct k8s_error *err)
{
    struct list_run lr = {.r = r};
    struct k8s_call_opts call = {.timeout_ms = LIST_TIMEOUT_MS, .cancel = r->cancel};
    struct k8s_list_opts l = {.label_selector = r->label_selector,
                              .field_selector = r->field_selector,
                              .limit = limit,
                              .resource_version = rv_param};
    char *cont = NULL;
    enum mm_status rc;
    *rv_out = NULL;
    *had_continue = false;
    for (;;) {
        /* Streamed: each item is parsed alone as it arrives (a 10,000-pod list never becomes
         * one JSON tree). */
        char *prv = NULL, *next = NULL;
        rc = k8s_list_stream(r->client, &r->res, r->ns, &l, &call, r->opts.max_event, deliver_item,
                             &lr, &prv, &next, err);
        if (rc == MM_ERR_EXPIRED && cont) {
            /* The continue token expired part way (client-go's pager, FullListIfExpired):
             * start again with one full, consistent list. */
            LOG(LOG_INFO, "k8s reflector %s: continue token expired; listing again in full",
                r->name);
            abort_run(&lr);
            struct k8s_list_opts full = {.label_selector = r->label_selector,
                                         .field_selector = r->field_selector};
            free(prv);
            prv = NULL;
            rc = k8s_list_stream(r->client, &r->res, r->ns, &full, &call, r->opts.max_event,
                                 deliver_item, &lr, &prv, NULL, err);
            free(cont);
            cont = NULL;
            if (rc == MM_OK) {
                begin_run(&lr);
                lr.rv = prv;
                prv = NULL;
            }
            free(prv);
            break;
        }
        if (rc != MM_OK) {
            free(prv);
            free(next);
            break;
        }
        begin_run(&lr); /* an empty first page still begins the replace */
        if (!lr.rv) {
            lr.rv = prv;
            prv = NULL;
            lr.had_continue = next && next[0];
        }
        free(prv);
        free(cont);
        cont = next && next[0] ? next : NULL;
        if (!cont)
            free(next);
        if (!cont)
            break;
        l.continue_token = cont;
        l.resource_version = NULL; /* not allowed with continue */
    }
    free(cont);
    if (rc != MM_OK) {
        abort_run(&lr);
        return rc;
    }
    if (!lr.begun && r->h.replace_begin) /* cannot happen (a page always came), but keep pairs */
        r->h.replace_begin(r->h.ctx);
    if (r->h.replace_end)
        r->h.replace_end(r->h.ctx, lr.rv);
    *rv_out = lr.rv;
    *had_continue = lr.had_continue;
    return MM_OK;
}

/*
 * client-go's relist (reflector.go list()): resourceVersion "0" the first
 * time, the last synced RV afterwards, "" when that is known unavailable or
 * for a resync; paged unless an RV other than "0"/"" is asked of a server
 * that did not page the first list. A 410 or "too large resource version"
 * answer switches to "" at once.
 */
static enum mm_status relist(struct k8s_reflector *r, bool consistent, struct k8s_error *err)
{
    const char *rv_param;
    if (consistent || r->rv_unavailable)
        rv_param = "";
    else if (!r->rv)
        rv_param = "0";
    else
        rv_param = r->rv;
    long limit = r->opts.page_size;
    if (!r->paginated && rv_param[0] && strcmp(rv_param, "0"))
        limit = 0; /* let the watch cache serve it (client-go) */
    char *new_rv = NULL;
    bool had_continue = false;
    char *asked = xstrdup(rv_param);
    enum mm_status rc = list_all(r, asked, limit, &new_rv, &had_continue, err);
    if ((rc == MM_ERR_EXPIRED || (rc == MM_ERR_RETRY && err->rv_too_large)) && asked[0]) {
        LOG(LOG_INFO, "k8s reflector %s: list at resourceVersion %s: %s; listing at the latest",
            r->name, asked, err->base.message);
        r->rv_unavailable = true;
        pthread_mutex_lock(&r->lock);
        r->state.expired += rc == MM_ERR_EXPIRED;
        pthread_mutex_unlock(&r->lock);
        rc = list_all(r, "", r->opts.page_size, &new_rv, &had_continue, err);
    }
    if (rc == MM_OK) {
        if (!strcmp(asked, "0") && had_continue)
            r->paginated = true;
        r->rv_unavailable = false;
        set_rv(r, new_rv);
        pthread_mutex_lock(&r->lock);
        if (r->state.lists)
            r->state.relists++;
        r->state.lists++;
        pthread_mutex_unlock(&r->lock);
    }
    free(asked);
    free(new_rv);
    return rc;
}

/* ---- watch ---- */

static enum mm_status on_watch_event(void *ctx, const struct k8s_watch_event *ev)
{
    struct k8s_reflector *r = ctx;
    r->watch_events++;
    switch (ev->type) {
    case K8S_EVENT_ADDED:
        if (r->h.add)
            r->h.add(r->h.ctx, ev->object);
        break;
    case K8S_EVENT_MODIFIED:
        if (r->h.update)
            r->h.update(r->h.ctx, ev->object);
        break;
    case K8S_EVENT_DELETED:
        if (r->h.delete)
            r->h.delete(r->h.ctx, ev->object);
        break;
    case K8S_EVENT_BOOKMARK:
    case K8S_EVENT_ERROR:
        break;
    }
    pthread_mutex_lock(&r->lock);
    if (ev->type == K8S_EVENT_BOOKMARK)
        r->state.bookmarks++;
    else
        r->state.events++;
    pthread_mutex_unlock(&r->lock);
    /* Every event, bookmarks included, moves the point a new watch resumes from. */
    if (ev->resource_version && ev->resource_version[0])
        set_rv(r, ev->resource_version);
    return MM_OK;
}

void k8s_reflector_run(struct k8s_reflector *r)
{
    struct k8s_error err = K8S_ERROR_INIT;
    bool need_list = true;
    bool consistent = false;  /* the next list is a resync: a consistent read */
    bool just_listed = false; /* no watch has delivered anything since the last list */
    uint64_t next_resync = 0;

    LOG(LOG_INFO, "k8s reflector %s: starting (namespace %s)", r->name, r->ns ? r->ns : "(all)");
    while (!k8s_cancel_fired(r->cancel)) {
        if (need_list) {
            enum mm_status rc = relist(r, consistent, &err);
            if (rc == MM_ERR_CANCELLED)
                break;
            if (rc != MM_OK) {
                if (backoff_wait(r, &err))
                    break;
                continue;
            }
            need_list = false;
            just_listed = true;
            if (consistent) {
                pthread_mutex_lock(&r->lock);
                r->state.resyncs++;
                pthread_mutex_unlock(&r->lock);
            }
            consistent = false;
            if (r->opts.resync_ms)
                next_resync = k8s_clock_ms() + r->opts.resync_ms;
            pthread_mutex_lock(&r->lock);
            bool first = !r->state.synced;
            r->state.synced = true;
            r->state.current = true;
            pthread_mutex_unlock(&r->lock);
            if (first) {
                LOG(LOG_INFO, "k8s reflector %s: synced at resourceVersion %s", r->name, r->rv);
                if (r->h.synced)
                    r->h.synced(r->h.ctx);
            }
        }

        long min = r->opts.min_watch_timeout_s;
        struct k8s_watch_opts w = {
            .resource_version = r->rv,
            .label_selector = r->label_selector,
            .field_selector = r->field_selector,
            .timeout_seconds = min + (long)(rnd(r) * (double)min),
            .max_event = r->opts.max_event,
            .idle_timeout_s = r->opts.watch_idle_timeout_s,
            .deadline_ms = next_resync,
            .cancel = r->cancel,
            .on_open = watch_opened,
            .open_ctx = r,
        };
        pthread_mutex_lock(&r->lock);
        r->state.watches++;
        pthread_mutex_unlock(&r->lock);
        r->watch_events = 0;
        uint64_t t0 = k8s_clock_ms();
        enum mm_status rc = k8s_watch(r->client, &r->res, r->ns, &w, on_watch_event, r, &err);
        uint64_t took = k8s_clock_ms() - t0;
        bool after_list = just_listed;
        if (r->watch_events > 0 || took >= SHORT_WATCH_MS)
            just_listed = false;
        if (rc == MM_ERR_CANCELLED || k8s_cancel_fired(r->cancel))
            break;
        if (rc == MM_OK) {
            if (next_resync && k8s_clock_ms() >= next_resync) {
                LOG(LOG_INFO, "k8s reflector %s: resync period passed; relisting", r->name);
                need_list = true;
                consistent = true;
                continue;
            }
            if (r->watch_events == 0 && took < SHORT_WATCH_MS) {
                k8s_error_cleanup(&err);
                k8s_error_set(&err, MM_ERR_RETRY,
                              "very short watch: the server closed the watch after %llu ms with "
                              "no event",
                              (unsigned long long)took);
                if (backoff_wait(r, &err))
                    break;
            }
            continue; /* timeout or closed: watch again from the last RV */
        }
        if (rc == MM_ERR_EXPIRED) {
            LOG(LOG_INFO, "k8s reflector %s: watch at resourceVersion %s: %s; relisting", r->name,
                r->rv ? r->rv : "", err.base.message);
            pthread_mutex_lock(&r->lock);
            r->state.expired++;
            r->state.current = false; /* events were missed: stale until the relist */
            pthread_mutex_unlock(&r->lock);
            need_list = true;
            /* Expired again right after a relist: the server is struggling, back off. */
            if (after_list && r->watch_events == 0 && took < SHORT_WATCH_MS &&
                backoff_wait(r, &err))
                break;
            continue;
        }
        if (rc == MM_ERR_RETRY && err.rv_too_large) {
            r->rv_unavailable = true;
            need_list = true;
        }
        /* 429, 5xx, connection failures, TLS, a garbled stream...: back off, then watch again
         * from the same RV (a 410 will tell us when it is gone). */
        if (backoff_wait(r, &err))
            break;
    }
    k8s_error_cleanup(&err);
    LOG(LOG_INFO, "k8s reflector %s: stopped", r->name);
}

static void *thread_main(void *arg)
{
    k8s_reflector_run(arg);
    return NULL;
}

enum mm_status k8s_reflector_start(struct k8s_reflector *r, struct mm_error *err)
{
    pthread_mutex_lock(&r->lock);
    if (r->started) {
        pthread_mutex_unlock(&r->lock);
        return mm_error_set(err, MM_ERR_INVALID, "", "reflector %s already started", r->name);
    }
    int e = pthread_create(&r->thread, NULL, thread_main, r);
    if (e == 0)
        r->started = true;
    pthread_mutex_unlock(&r->lock);
    if (e)
        return mm_error_set(err, MM_ERR_INTERNAL, "", "reflector %s: cannot start a thread",
                            r->name);
    return MM_OK;
}

void k8s_reflector_stop(struct k8s_reflector *r)
{
    if (!r)
        return;
    k8s_cancel_fire(r->cancel);
    pthread_mutex_lock(&r->lock);
    bool join = r->started && !r->joined;
    r->joined = r->joined || join;
    pthread_mutex_unlock(&r->lock);
    if (join)
        pthread_join(r->thread, NULL);
}
