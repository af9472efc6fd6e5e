/* Events with client-go's series semantics (see events.h). */
#include "operator/events.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s/microtime.h"
#include "k8s/status.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xalloc.h"

#define NOTE_MAX 1024

static const struct k8s_resource EVENTS = {"events.k8s.io", "v1", "events"};

/* One event the API server knows, keyed by what makes two events isomorphic. */
struct series {
    char *key;
    char *namespace;
    char *name;           /* the Event object's name */
    uint32_t count;       /* occurrences so far */
    uint32_t sent;        /* the count the server has */
    int64_t last_us;      /* last occurrence (wall clock, for lastObservedTime) */
    uint64_t last_ms;     /* last occurrence (monotonic, for finishing) */
    bool created;         /* the create was answered */
};

enum op { OP_CREATE, OP_PATCH };

struct item {
    enum op op;
    json_t *event;    /* OP_CREATE: the Event */
    char *namespace;  /* OP_PATCH */
    char *name;
    char *key;        /* the series it belongs to */
    uint32_t count;
    int64_t last_us;
};

struct events {
    struct k8s_client *client;
    char *controller;
    char *instance;
    bool (*enabled)(void *ctx);
    void *enabled_ctx;
    unsigned queue_max, flush_ms, finish_ms;

    pthread_mutex_t lock;
    pthread_cond_t wake; /* CLOCK_MONOTONIC */
    pthread_cond_t idle;
    pthread_t thread;
    bool stop;
    bool busy;
    struct item *queue;
    size_t head, len, cap; /* ring buffer */
    struct series *series;
    size_t n_series, cap_series;
    struct events_stats stats;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void item_cleanup(struct item *it)
{
    json_decref(it->event);
    free(it->namespace);
    free(it->name);
    free(it->key);
    memset(it, 0, sizeof *it);
}

static struct series *find_series(struct events *e, const char *key)
{
    for (size_t i = 0; i < e->n_series; i++)
        if (!strcmp(e->series[i].key, key))
            return &e->series[i];
    return NULL;
}

static void drop_series(struct events *e, size_t i)
{
    free(e->series[i].key);
    free(e->series[i].namespace);
    free(e->series[i].name);
    e->series[i] = e->series[--e->n_series];
}

/* Queue an item (lock held); the oldest is dropped when full. */
static void enqueue(struct events *e, struct item *it)
{
    if (e->len == e->queue_max) {
        struct item *old = &e->queue[e->head];
        item_cleanup(old);
        e->head = (e->head + 1) % e->cap;
        e->len--;
        e->stats.dropped++;
    }
    e->queue[(e->head + e->len) % e->cap] = *it;
    e->len++;
    pthread_cond_signal(&e->wake);
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

void events_record(struct events *e, const struct event_ref *ref, const char *type,
                   const char *reason, const char *action, const char *fmt, ...)
{
    if (!e || (e->enabled && !e->enabled(e->enabled_ctx)))
        return;
    char note[NOTE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note, sizeof note, fmt, ap);
    va_end(ap);
    /* Cut on a character boundary. */
    size_t n = strlen(note);
    if (n == NOTE_MAX)
        while (n > 0 && ((unsigned char)note[n - 1] & 0xC0) == 0x80)
            note[--n] = '\0';

    int64_t now_us = k8s_wall_us();
    uint64_t now_ms = mono_ms();
    const char *ns = ref->namespace && *ref->namespace ? ref->namespace : "default";
    char *key = xasprintf("%s|%s|%s|%s|%s|%s|%s|%s", or_empty(ref->api_version), or_empty(ref->kind),
                          or_empty(ref->namespace), or_empty(ref->name), or_empty(ref->uid),
                          reason, action, e->controller);
    struct item it;
    memset(&it, 0, sizeof it);
    pthread_mutex_lock(&e->lock);
    struct series *s = find_series(e, key);
    if (s && now_ms - s->last_ms > e->finish_ms) { /* the series finished: start anew */
        drop_series(e, (size_t)(s - e->series));
        s = NULL;
    }
    if (s) {
        s->count++;
        s->last_us = now_us;
        s->last_ms = now_ms;
        if (s->count == 2 && s->created) { /* becomes a series: patch at once */
            it.op = OP_PATCH;
            it.namespace = xstrdup(s->namespace);
            it.name = xstrdup(s->name);
            it.key = key;
            it.count = s->count;
            it.last_us = now_us;
            enqueue(e, &it);
            key = NULL;
        }
    } else {
        char micro[K8S_MICROTIME_LEN];
        k8s_microtime_format(now_us, micro);
        char *name = xasprintf("%s.%llx", ref->name, (unsigned long long)now_us * 1000ull);
        json_t *regarding = json_pack("{s:s, s:s, s:s, s:s}", "apiVersion",
                                      or_empty(ref->api_version), "kind", or_empty(ref->kind),
                                      "namespace", or_empty(ref->namespace), "name",
                                      or_empty(ref->name));
        if (ref->uid && *ref->uid)
            json_object_set_new(regarding, "uid", json_string(ref->uid));
        if (ref->resource_version && *ref->resource_version)
            json_object_set_new(regarding, "resourceVersion", json_string(ref->resource_version));
        json_t *note_json = json_string(note);
        it.op = OP_CREATE;
        it.event = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s}",
                             "apiVersion", "events.k8s.io/v1", "kind", "Event", "metadata", "name",
                             name, "namespace", ns, "eventTime", micro, "reportingController",
                             e->controller, "reportingInstance", e->instance, "action", action,
                             "reason", reason, "regarding", regarding, "note",
                             note_json ? note_json : json_string("(note not UTF-8)"), "type", type);
        if (e->n_series == e->cap_series) {
            e->cap_series = e->cap_series ? e->cap_series * 2 : 64;
            e->series = xrealloc(e->series, e->cap_series * sizeof *e->series);
        }
        struct series *ns_ = &e->series[e->n_series++];
        memset(ns_, 0, sizeof *ns_);
        ns_->key = xstrdup(key);
        ns_->namespace = xstrdup(ns);
        ns_->name = name;
        ns_->count = 1;
        ns_->sent = 1;
        ns_->last_us = now_us;
        ns_->last_ms = now_ms;
        it.key = key;
        key = NULL;
        enqueue(e, &it);
    }
    pthread_mutex_unlock(&e->lock);
    free(key);
}

/* Send one item (no lock held). */
static void send_item(struct events *e, struct item *it)
{
    struct k8s_error err = K8S_ERROR_INIT;
    struct k8s_call_opts opts = {.timeout_ms = 10000, .field_manager = "meshmetric-operator"};
    enum mm_status st;
    if (it->op == OP_CREATE) {
        st = k8s_create(e->client, &EVENTS,
                        json_string_value(json_object_get(json_object_get(it->event, "metadata"),
                                                          "namespace")),
                        it->event, &opts, NULL, &err);
    } else {
        char micro[K8S_MICROTIME_LEN];
        k8s_microtime_format(it->last_us, micro);
        json_t *patch =
            json_pack("{s:{s:i, s:s}}", "series", "count", (json_int_t)it->count,
                      "lastObservedTime", micro);
        st = k8s_patch(e->client, &EVENTS, it->namespace, it->name, NULL, K8S_PATCH_MERGE, patch,
                       &opts, NULL, &err);
        json_decref(patch);
    }
    pthread_mutex_lock(&e->lock);
    struct series *s = find_series(e, it->key);
    if (st == MM_OK) {
        if (it->op == OP_CREATE) {
            e->stats.created++;
            if (s) {
                s->created = true;
                if (s->count >= 2 && s->sent < s->count) { /* grew while the create was out */
                    struct item p;
                    memset(&p, 0, sizeof p);
                    p.op = OP_PATCH;
                    p.namespace = xstrdup(s->namespace);
                    p.name = xstrdup(s->name);
                    p.key = xstrdup(s->key);
                    p.count = s->count;
                    p.last_us = s->last_us;
                    enqueue(e, &p);
                }
            }
        } else {
            e->stats.patched++;
            if (s && s->sent < it->count)
                s->sent = it->count;
        }
    } else {
        e->stats.failed++;
        /* Forget the series: the next occurrence creates a new Event (e.g. this one expired). */
        if (s)
            drop_series(e, (size_t)(s - e->series));
    }
    pthread_mutex_unlock(&e->lock);
    if (st != MM_OK)
        log_kv(LOG_WARN, "cannot record an event", "op", it->op == OP_CREATE ? "create" : "patch",
               "error", err.base.message, NULL);
    k8s_error_cleanup(&err);
}

/* Queue patches for grown series and finish idle ones (lock held). */
static void flush_series(struct events *e, uint64_t now_ms)
{
    for (size_t i = 0; i < e->n_series;) {
        struct series *s = &e->series[i];
        if (now_ms - s->last_ms > e->finish_ms) {
            drop_series(e, i);
            continue;
        }
        if (s->created && s->count >= 2 && s->sent < s->count) {
            struct item p;
            memset(&p, 0, sizeof p);
            p.op = OP_PATCH;
            p.namespace = xstrdup(s->namespace);
            p.name = xstrdup(s->name);
            p.key = xstrdup(s->key);
            p.count = s->count;
            p.last_us = s->last_us;
            s->sent = s->count; /* optimistic; a failure drops the series */
            enqueue(e, &p);
        }
        i++;
    }
}

static void *sender(void *arg)
{
    struct events *e = arg;
    uint64_t next_flush = mono_ms() + e->flush_ms;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (e->len == 0 && !e->stop) {
            uint64_t now = mono_ms();
            if (now >= next_flush) {
                flush_series(e, now);
                next_flush = now + e->flush_ms;
                continue;
            }
            pthread_cond_broadcast(&e->idle);
            struct timespec ts;
            uint64_t wait = next_flush - now;
            ts = mono_deadline(wait);
            pthread_cond_timedwait(&e->wake, &e->lock, &ts);
        }
        if (e->len == 0 && e->stop)
            break;
        struct item it = e->queue[e->head];
        e->head = (e->head + 1) % e->cap;
        e->len--;
        e->busy = true;
        pthread_mutex_unlock(&e->lock);
        send_item(e, &it);
        item_cleanup(&it);
        pthread_mutex_lock(&e->lock);
        e->busy = false;
    }
    pthread_cond_broadcast(&e->idle);
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

struct events *events_create(struct k8s_client *c, const struct events_config *cfg)
{
    struct events *e = xcalloc(1, sizeof *e);
    e->client = c;
    e->controller = xstrdup(cfg->controller ? cfg->controller : "meshmetric.kuma.io/operator");
    e->instance = xstrndup(cfg->instance ? cfg->instance : "meshmetric-operator", 128);
    e->enabled = cfg->enabled;
    e->enabled_ctx = cfg->enabled_ctx;
    e->queue_max = cfg->queue_max ? cfg->queue_max : 1000;
    e->flush_ms = cfg->flush_ms ? cfg->flush_ms : 30000;
    e->finish_ms = cfg->finish_ms ? cfg->finish_ms : 360000;
    e->cap = e->queue_max;
    e->queue = xcalloc(e->cap, sizeof *e->queue);
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&e->wake, &attr);
    pthread_cond_init(&e->idle, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&e->thread, NULL, sender, e) != 0) {
        log_kv(LOG_ERROR, "cannot start the event sender; events are not recorded", NULL);
        e->stop = true;
        e->thread = 0;
    }
    return e;
}

bool events_drain(struct events *e, unsigned timeout_ms)
{
    struct timespec ts = mono_deadline(timeout_ms);
    pthread_mutex_lock(&e->lock);
    int rc = 0;
    while ((e->len > 0 || e->busy) && rc == 0)
        rc = pthread_cond_timedwait(&e->idle, &e->lock, &ts);
    bool empty = e->len == 0 && !e->busy;
    pthread_mutex_unlock(&e->lock);
    return empty;
}

void events_stats(struct events *e, struct events_stats *out)
{
    pthread_mutex_lock(&e->lock);
    *out = e->stats;
    out->queued = (unsigned)e->len;
    pthread_mutex_unlock(&e->lock);
}

void events_free(struct events *e, unsigned timeout_ms)
{
    if (!e)
        return;
    if (e->thread) {
        (void)events_drain(e, timeout_ms);
        pthread_mutex_lock(&e->lock);
        e->stop = true;
        /* Whatever is still queued is dropped, not sent. */
        while (e->len) {
            item_cleanup(&e->queue[e->head]);
            e->head = (e->head + 1) % e->cap;
            e->len--;
        }
        pthread_cond_signal(&e->wake);
        pthread_mutex_unlock(&e->lock);
        pthread_join(e->thread, NULL);
    }
    while (e->n_series)
        drop_series(e, e->n_series - 1);
    free(e->series);
    free(e->queue);
    pthread_cond_destroy(&e->wake);
    pthread_cond_destroy(&e->idle);
    pthread_mutex_destroy(&e->lock);
    free(e->controller);
    free(e->instance);
    free(e);
}
