/* Rate-limited workload restarts (see repair.h). */
#include "operator/repair.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s/microtime.h"
#include "k8s/status.h"
#include "util/log.h"
#include "util/xalloc.h"

#define RESTARTED_AT "kubectl.kubernetes.io/restartedAt"

struct last {
    char *key; /* "Kind/namespace/name" */
    uint64_t at_ms;
};

struct repair {
    struct k8s_client *client;
    struct repair_config cfg;
    pthread_mutex_t lock;
    double tokens;
    uint64_t refilled_ms;
    struct last *last;
    size_t n_last;
    uint64_t restarts;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *repair_result_name(enum repair_result r)
{
    switch (r) {
    case REPAIR_RESTARTED:
        return "restarted";
    case REPAIR_NOT_A_WORKLOAD:
        return "not a workload";
    case REPAIR_RATE_LIMITED:
        return "rate limited";
    case REPAIR_COOLING_DOWN:
        return "cooling down";
    case REPAIR_TOO_MANY_UNAVAILABLE:
        return "too many pods unavailable";
    case REPAIR_FAILED:
        return "failed";
    }
    return "unknown";
}

static const char *const plural_of[][2] = {
    {"Deployment", "deployments"},
    {"StatefulSet", "statefulsets"},
    {"DaemonSet", "daemonsets"},
};

static const char *workload_plural(const char *kind)
{
    for (size_t i = 0; kind && i < sizeof plural_of / sizeof *plural_of; i++)
        if (!strcmp(kind, plural_of[i][0]))
            return plural_of[i][1];
    return NULL;
}

enum repair_result repair_decide(const struct repair_target *t, double *tokens,
                                 uint64_t last_restart_ms, bool ever, uint64_t now_ms,
                                 uint64_t cooldown_ms, size_t total, size_t unavailable,
                                 unsigned max_unavailable_percent)
{
    if (!t || !workload_plural(t->kind) || !t->name || !*t->name)
        return REPAIR_NOT_A_WORKLOAD;
    if (ever && now_ms - last_restart_ms < cooldown_ms)
        return REPAIR_COOLING_DOWN;
    /* unavailable / total > max% (integer arithmetic; an empty workload has nothing to lose) */
    if (total > 0 && unavailable * 100u > (size_t)max_unavailable_percent * total)
        return REPAIR_TOO_MANY_UNAVAILABLE;
    if (*tokens < 1.0)
        return REPAIR_RATE_LIMITED;
    *tokens -= 1.0;
    return REPAIR_RESTARTED;
}

struct repair *repair_create(struct k8s_client *c, const struct repair_config *cfg)
{
    struct repair *r = xcalloc(1, sizeof *r);
    r->client = c;
    r->cfg = *cfg;
    if (r->cfg.rate_per_minute <= 0)
        r->cfg.rate_per_minute = 1;
    if (!r->cfg.max_unavailable_percent)
        r->cfg.max_unavailable_percent = 25;
    if (!r->cfg.cooldown_ms)
        r->cfg.cooldown_ms = 300000;
    if (!r->cfg.clock_ms)
        r->cfg.clock_ms = mono_ms;
    r->tokens = 1.0; /* one restart may happen at once */
    r->refilled_ms = r->cfg.clock_ms();
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void repair_free(struct repair *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_last; i++)
        free(r->last[i].key);
    free(r->last);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

uint64_t repair_count(struct repair *r)
{
    pthread_mutex_lock(&r->lock);
    uint64_t n = r->restarts;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static struct last *find_last(struct repair *r, const char *key)
{
    for (size_t i = 0; i < r->n_last; i++)
        if (!strcmp(r->last[i].key, key))
            return &r->last[i];
    return NULL;
}

enum repair_result repair_restart(struct repair *r, const struct repair_target *t, char *why,
                                  size_t why_len)
{
    char dummy[8];
    if (!why || !why_len) {
        why = dummy;
        why_len = sizeof dummy;
    }
    why[0] = '\0';
    size_t total = 0, unavailable = 0;
    if (workload_plural(t ? t->kind : NULL) && r->cfg.workload_pods &&
        !r->cfg.workload_pods(r->cfg.ctx, t, &total, &unavailable)) {
        total = unavailable = 0; /* unknown: the share check cannot refuse */
    }
    char *key = xasprintf("%s/%s/%s", t && t->kind ? t->kind : "", t && t->namespace ? t->namespace : "",
                          t && t->name ? t->name : "");
    pthread_mutex_lock(&r->lock);
    uint64_t now = r->cfg.clock_ms();
    r->tokens += (double)(now - r->refilled_ms) * r->cfg.rate_per_minute / 60000.0;
    if (r->tokens > 1.0) /* a burst of one */
        r->tokens = 1.0;
    r->refilled_ms = now;
    struct last *l = find_last(r, key);
    enum repair_result res =
        repair_decide(t, &r->tokens, l ? l->at_ms : 0, l != NULL, now, r->cfg.cooldown_ms, total,
                      unavailable, r->cfg.max_unavailable_percent);
    if (res == REPAIR_RESTARTED) {
        if (!l) {
            r->last = xrealloc(r->last, (r->n_last + 1) * sizeof *r->last);
            l = &r->last[r->n_last++];
            l->key = xstrdup(key);
        }
        l->at_ms = now; /* claimed before the call: two reconcilers cannot both restart */
    }
    pthread_mutex_unlock(&r->lock);

    switch (res) {
    case REPAIR_NOT_A_WORKLOAD:
        snprintf(why, why_len,
                 "not restarted: owned by %s %s, not a Deployment, StatefulSet or DaemonSet "
                 "(recreate the pod to apply the config)",
                 t && t->kind && *t->kind ? t->kind : "nothing (a bare pod)",
                 t && t->name ? t->name : "");
        break;
    case REPAIR_RATE_LIMITED:
        snprintf(why, why_len, "restart of %s %s/%s postponed: at most %.3g restarts a minute",
                 t->kind, t->namespace, t->name, r->cfg.rate_per_minute);
        break;
    case REPAIR_COOLING_DOWN:
        snprintf(why, why_len, "%s %s/%s was restarted less than %llu s ago", t->kind,
                 t->namespace, t->name, (unsigned long long)(r->cfg.cooldown_ms / 1000u));
        break;
    case REPAIR_TOO_MANY_UNAVAILABLE:
        snprintf(why, why_len,
                 "restart of %s %s/%s postponed: %zu of its %zu pods are not ready (more than %u%%)",
                 t->kind, t->namespace, t->name, unavailable, total,
                 r->cfg.max_unavailable_percent);
        break;
    case REPAIR_RESTARTED:
    case REPAIR_FAILED:
        break;
    }
    if (res != REPAIR_RESTARTED) {
        free(key);
        return res;
    }

    char now_s[K8S_MICROTIME_LEN];
    k8s_time_format(k8s_wall_us(), now_s);
    /* The annotation kubectl rollout restart sets. kubectl sends it as a strategic merge patch;
     * the patch touches only maps, so a JSON merge patch has the same effect and also works on
     * workload kinds served as custom resources (which refuse strategic merge patches). */
    json_t *patch = json_pack("{s:{s:{s:{s:{s:s}}}}}", "spec", "template", "metadata",
                              "annotations", RESTARTED_AT, now_s);
    struct k8s_resource res_apps = {"apps", "v1", workload_plural(t->kind)};
    struct k8s_error err = K8S_ERROR_INIT;
    struct k8s_call_opts opts = {.field_manager = "meshmetric-operator"};
    enum mm_status st = k8s_patch(r->client, &res_apps, t->namespace, t->name, NULL,
                                  K8S_PATCH_MERGE, patch, &opts, NULL, &err);
    json_decref(patch);
    if (st != MM_OK) {
        snprintf(why, why_len, "restart of %s %s/%s failed: %s", t->kind, t->namespace, t->name,
                 err.base.message);
        pthread_mutex_lock(&r->lock);
        struct last *again = find_last(r, key);
        if (again) { /* forget the claim: a later attempt may try again */
            free(again->key);
            *again = r->last[--r->n_last];
        }
        pthread_mutex_unlock(&r->lock);
        k8s_error_cleanup(&err);
        free(key);
        return REPAIR_FAILED;
    }
    pthread_mutex_lock(&r->lock);
    r->restarts++;
    pthread_mutex_unlock(&r->lock);
    snprintf(why, why_len, "restarted %s %s/%s (kubectl.kubernetes.io/restartedAt=%s)", t->kind,
             t->namespace, t->name, now_s);
    k8s_error_cleanup(&err);
    free(key);
    return REPAIR_RESTARTED;
}
