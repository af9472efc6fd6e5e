#include "operator/leader.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/cancel.h"
#include "k8s/microtime.h"
#include "k8s/status.h"
#include "util/log.h"
#include "util/xalloc.h"

#define JITTER_FACTOR 1.2 /* client-go leaderelection.JitterFactor */

static const struct k8s_resource leases = {"coordination.k8s.io", "v1", "leases"};

/* ---- records ---- */

bool leader_record_equal(const struct leader_record *a, const struct leader_record *b)
{
    return !strcmp(a->holder, b->holder) && a->lease_duration_s == b->lease_duration_s &&
           a->acquire_us == b->acquire_us && a->renew_us == b->renew_us &&
           a->transitions == b->transitions;
}

static enum mm_status read_time(const json_t *spec, const char *key, int64_t *out,
                                struct mm_error *err)
{
    const json_t *v = json_object_get(spec, key);
    *out = 0;
    if (!v || json_is_null(v))
        return MM_OK;
    if (!json_is_string(v))
        return mm_error_set(err, MM_ERR_TYPE, key, "spec.%s must be a MicroTime string", key);
    struct mm_error terr;
    if (k8s_microtime_parse(json_string_value(v), out, &terr) != MM_OK)
        return mm_error_set(err, MM_ERR_PARSE, key, "spec.%s: %s", key, terr.message);
    return MM_OK;
}

static enum mm_status read_int32(const json_t *spec, const char *key, int32_t *out,
                                 struct mm_error *err)
{
    const json_t *v = json_object_get(spec, key);
    *out = 0;
    if (!v || json_is_null(v))
        return MM_OK;
    if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
        json_integer_value(v) > INT32_MAX)
        return mm_error_set(err, MM_ERR_TYPE, key, "spec.%s must be a 32-bit integer", key);
    *out = (int32_t)json_integer_value(v);
    return MM_OK;
}

enum mm_status leader_record_from_lease(const json_t *lease, struct leader_record *out,
                                        struct mm_error *err)
{
    memset(out, 0, sizeof *out);
    const json_t *spec = json_object_get(lease, "spec");
    if (!spec || json_is_null(spec))
        return MM_OK;
    if (!json_is_object(spec))
        return mm_error_set(err, MM_ERR_TYPE, "spec", "the Lease spec must be an object");
    const json_t *h = json_object_get(spec, "holderIdentity");
    if (h && !json_is_null(h)) {
        if (!json_is_string(h))
            return mm_error_set(err, MM_ERR_TYPE, "holderIdentity",
                                "spec.holderIdentity must be a string");
        snprintf(out->holder, sizeof out->holder, "%s", json_string_value(h));
    }
    enum mm_status rc;
    if ((rc = read_int32(spec, "leaseDurationSeconds", &out->lease_duration_s, err)) ||
        (rc = read_int32(spec, "leaseTransitions", &out->transitions, err)) ||
        (rc = read_time(spec, "acquireTime", &out->acquire_us, err)) ||
        (rc = read_time(spec, "renewTime", &out->renew_us, err)))
        return rc;
    return MM_OK;
}

static json_t *time_value(int64_t us)
{
    if (!us)
        return json_null();
    char buf[K8S_MICROTIME_LEN];
    k8s_microtime_format(us, buf);
    return json_string(buf);
}

void leader_record_to_lease(const struct leader_record *rec, json_t *lease)
{
    json_t *spec = json_object_get(lease, "spec");
    if (!json_is_object(spec)) {
        spec = json_object();
        json_object_set_new(lease, "spec", spec);
    }
    json_object_set_new(spec, "holderIdentity", json_string(rec->holder));
    json_object_set_new(spec, "leaseDurationSeconds", json_integer(rec->lease_duration_s));
    json_object_set_new(spec, "acquireTime", time_value(rec->acquire_us));
    json_object_set_new(spec, "renewTime", time_value(rec->renew_us));
    json_object_set_new(spec, "leaseTransitions", json_integer(rec->transitions));
}

json_t *leader_lease_new(const char *ns, const char *name, const struct leader_record *rec)
{
    json_t *lease = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "coordination.k8s.io/v1",
                              "kind", "Lease", "metadata", "name", name, "namespace", ns);
    leader_record_to_lease(rec, lease);
    return lease;
}

/* ---- decisions (pure) ---- */

bool leader_is_holder(const struct leader_observed *o, const char *self)
{
    return o->valid && self && self[0] && !strcmp(o->rec.holder, self);
}

bool leader_lease_valid(const struct leader_observed *o, uint64_t now_ms)
{
    if (!o->valid)
        return false;
    int64_t dur = o->rec.lease_duration_s > 0 ? o->rec.lease_duration_s : 0;
    return o->time_ms + (uint64_t)dur * 1000 > now_ms;
}

static void fill(struct leader_record *out, const char *self, int32_t lease_s, int64_t now_us)
{
    memset(out, 0, sizeof *out);
    snprintf(out->holder, sizeof out->holder, "%s", self);
    out->lease_duration_s = lease_s;
    out->acquire_us = now_us;
    out->renew_us = now_us;
}

bool leader_fast_path(const struct leader_observed *o, const char *self, int32_t lease_s,
                      uint64_t now_ms, int64_t now_us, struct leader_record *out)
{
    if (!leader_is_holder(o, self) || !leader_lease_valid(o, now_ms))
        return false;
    fill(out, self, lease_s, now_us);
    out->acquire_us = o->rec.acquire_us;
    out->transitions = o->rec.transitions;
    return true;
}

void leader_observe(struct leader_observed *o, const struct leader_record *rec, uint64_t now_ms)
{
    o->valid = true;
    o->rec = *rec;
    o->time_ms = now_ms;
}

enum leader_decision leader_decide(struct leader_observed *o, const struct leader_record *current,
                                   const char *self, int32_t lease_s, uint64_t now_ms,
                                   int64_t now_us, struct leader_record *out)
{
    fill(out, self, lease_s, now_us);
    if (!current)
        return LEADER_CREATE; /* 2. no Lease yet: create it (transitions 0) */
    /* 3. a changed record restarts the observation clock */
    if (!o->valid || !leader_record_equal(&o->rec, current))
        leader_observe(o, current, now_ms);
    /* 4. held by someone else and not expired by our own clock */
    if (current->holder[0] && leader_lease_valid(o, now_ms) && !leader_is_holder(o, self))
        return LEADER_FOLLOW;
    /* 5. renew keeps acquireTime and transitions; a takeover counts one more transition */
    if (leader_is_holder(o, self)) {
        out->acquire_us = current->acquire_us;
        out->transitions = current->transitions;
    } else {
        out->transitions = current->transitions + 1;
    }
    return LEADER_UPDATE;
}

void leader_release_record(const struct leader_observed *o, int64_t now_us,
                           struct leader_record *out)
{
    memset(out, 0, sizeof *out);
    out->lease_duration_s = 1;
    out->acquire_us = now_us;
    out->renew_us = now_us;
    out->transitions = o->valid ? o->rec.transitions : 0;
}

/* ---- configuration ---- */

void leader_config_init(struct leader_config *c)
{
    memset(c, 0, sizeof *c);
    c->lease_duration_ms = 15000;
    c->renew_deadline_ms = 10000;
    c->retry_period_ms = 2000;
}

enum mm_status leader_config_validate(const struct leader_config *c, struct mm_error *err)
{
    if (c->lease_duration_ms <= c->renew_deadline_ms)
        return mm_error_set(err, MM_ERR_INVALID, "leaseDuration",
                            "leaseDuration (%llu ms) must be greater than renewDeadline (%llu ms)",
                            (unsigned long long)c->lease_duration_ms,
                            (unsigned long long)c->renew_deadline_ms);
    if ((double)c->renew_deadline_ms <= JITTER_FACTOR * (double)c->retry_period_ms)
        return mm_error_set(err, MM_ERR_INVALID, "renewDeadline",
                            "renewDeadline (%llu ms) must be greater than retryPeriod*JitterFactor "
                            "(%llu ms * 1.2)",
                            (unsigned long long)c->renew_deadline_ms,
                            (unsigned long long)c->retry_period_ms);
    if (c->lease_duration_ms < 1000)
        return mm_error_set(err, MM_ERR_INVALID, "leaseDuration",
                            "leaseDuration (%llu ms) must be at least 1 s (it is sent in seconds)",
                            (unsigned long long)c->lease_duration_ms);
    if (c->lease_duration_ms / 1000 > INT32_MAX)
        return mm_error_set(err, MM_ERR_INVALID, "leaseDuration", "leaseDuration is too large");
    if (c->retry_period_ms < 1)
        return mm_error_set(err, MM_ERR_INVALID, "retryPeriod",
                            "retryPeriod must be greater than zero");
    if (!c->identity || !c->identity[0])
        return mm_error_set(err, MM_ERR_INVALID, "identity", "Lock identity is empty");
    if (strlen(c->identity) >= LEADER_IDENTITY_MAX)
        return mm_error_set(err, MM_ERR_INVALID, "identity",
                            "identity is longer than %d characters", LEADER_IDENTITY_MAX - 1);
    if (!c->name || !c->name[0])
        return mm_error_set(err, MM_ERR_INVALID, "name", "the Lease name is empty");
    if (!c->namespace || !c->namespace[0])
        return mm_error_set(err, MM_ERR_INVALID, "namespace", "the Lease namespace is empty");
    return MM_OK;
}

/* ---- the elector ---- */

struct leader_elector {
    struct k8s_client *client;
    struct leader_config cfg;
    char *ns, *name, *identity;
    int32_t lease_s;
    struct k8s_cancel *cancel;
    pthread_t thread;
    bool started, joined;
    atomic_bool leading;
    atomic_bool done;
    uint64_t rng;

    /* elector thread only */
    struct leader_observed obs;
    json_t *lease; /* the Lease as last read or written (its resourceVersion is what a PUT sends) */
    char reported[LEADER_IDENTITY_MAX];
    bool reported_set;

    pthread_mutex_t lock; /* stats, started/joined */
    struct leader_stats stats;
};

enum mm_status leader_create(struct k8s_client *client, const struct leader_config *cfg,
                             struct leader_elector **out, struct mm_error *err)
{
    *out = NULL;
    enum mm_status rc = leader_config_validate(cfg, err);
    if (rc != MM_OK)
        return rc;
    struct leader_elector *le = xcalloc(1, sizeof *le);
    le->client = client;
    le->cfg = *cfg;
    le->ns = xstrdup(cfg->namespace);
    le->name = xstrdup(cfg->name);
    le->identity = xstrdup(cfg->identity);
    le->cfg.namespace = le->ns;
    le->cfg.name = le->name;
    le->cfg.identity = le->identity;
    le->lease_s = (int32_t)(cfg->lease_duration_ms / 1000);
    le->cancel = k8s_cancel_create();
    atomic_init(&le->leading, false);
    atomic_init(&le->done, false);
    le->rng = k8s_clock_ms() ^ (uint64_t)(uintptr_t)le ^ 0xd1b54a32d192ed03ull;
    pthread_mutex_init(&le->lock, NULL);
    *out = le;
    return MM_OK;
}

bool leader_is_leader(const struct leader_elector *le)
{
    return le && atomic_load(&((struct leader_elector *)le)->leading);
}

bool leader_done(const struct leader_elector *le)
{
    return le && atomic_load(&((struct leader_elector *)le)->done);
}

void leader_stats(struct leader_elector *le, struct leader_stats *out)
{
    pthread_mutex_lock(&le->lock);
    *out = le->stats;
    pthread_mutex_unlock(&le->lock);
}

static double rnd(struct leader_elector *le)
{
    if (le->cfg.random)
        return le->cfg.random(le->cfg.random_ctx);
    le->rng ^= le->rng >> 12;
    le->rng ^= le->rng << 25;
    le->rng ^= le->rng >> 27;
    return (double)((le->rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static void count(struct leader_elector *le, enum mm_status rc)
{
    pthread_mutex_lock(&le->lock);
    if (rc == MM_ERR_CONFLICT)
        le->stats.conflicts++;
    else if (rc != MM_OK)
        le->stats.errors++;
    pthread_mutex_unlock(&le->lock);
}

static void keep_lease(struct leader_elector *le, json_t *lease)
{
    json_decref(le->lease);
    le->lease = lease;
}

/* PUT rec onto the last Lease read/written. */
static enum mm_status put_record(struct leader_elector *le, const struct leader_record *rec,
                                 const struct k8s_call_opts *call, struct k8s_error *err)
{
    json_t *body = json_deep_copy(le->lease);
    json_t *stored = NULL;
    leader_record_to_lease(rec, body);
    enum mm_status rc =
        k8s_update(le->client, &leases, le->ns, le->name, NULL, body, call, &stored, err);
    json_decref(body);
    if (rc == MM_OK)
        keep_lease(le, stored);
    else
        json_decref(stored);
    return rc;
}

/* client-go tryAcquireOrRenew. timeout_ms bounds each request. */
static bool try_acquire_or_renew(struct leader_elector *le, long timeout_ms)
{
    struct k8s_error err = K8S_ERROR_INIT;
    struct k8s_call_opts call = {
        .timeout_ms = timeout_ms > 0 ? timeout_ms : 1, .cancel = le->cancel, .no_retry = true};
    struct leader_record rec;
    json_t *got = NULL;
    bool ok = false;
    enum mm_status rc;

    pthread_mutex_lock(&le->lock);
    le->stats.tries++;
    pthread_mutex_unlock(&le->lock);

    /* 1. fast path */
    if (le->lease && leader_fast_path(&le->obs, le->identity, le->lease_s, k8s_clock_ms(),
                                      k8s_wall_us(), &rec)) {
        rc = put_record(le, &rec, &call, &err);
        if (rc == MM_OK) {
            leader_observe(&le->obs, &rec, k8s_clock_ms());
            ok = true;
            goto done;
        }
        count(le, rc);
        if (rc == MM_ERR_CANCELLED)
            goto done;
        LOG(LOG_WARN,
            "leader %s/%s: failed to update the lease optimistically (%s); falling back "
            "to the slow path",
            le->ns, le->name, err.base.message);
    }

    /* 2. get or create */
    rc = k8s_get(le->client, &leases, le->ns, le->name, NULL, &call, &got, &err);
    if (rc == MM_ERR_NOT_FOUND) {
        leader_decide(&le->obs, NULL, le->identity, le->lease_s, k8s_clock_ms(), k8s_wall_us(),
                      &rec);
        json_t *lease = leader_lease_new(le->ns, le->name, &rec);
        json_t *stored = NULL;
        rc = k8s_create(le->client, &leases, le->ns, lease, &call, &stored, &err);
        json_decref(lease);
        if (rc != MM_OK) {
            json_decref(stored);
            count(le, rc);
            LOG(LOG_INFO, "leader %s/%s: error initially creating the lease: %s", le->ns, le->name,
                err.base.message);
            goto done;
        }
        keep_lease(le, stored);
        leader_observe(&le->obs, &rec, k8s_clock_ms());
        ok = true;
        goto done;
    }
    if (rc != MM_OK) {
        count(le, rc);
        if (rc != MM_ERR_CANCELLED)
            LOG(LOG_WARN, "leader %s/%s: error retrieving the lease: %s", le->ns, le->name,
                err.base.message);
        goto done;
    }
    struct leader_record cur;
    struct mm_error perr;
    if (leader_record_from_lease(got, &cur, &perr) != MM_OK) {
        count(le, MM_ERR_PARSE);
        LOG(LOG_WARN, "leader %s/%s: cannot read the lease: %s", le->ns, le->name, perr.message);
        goto done;
    }
    keep_lease(le, got);
    got = NULL;
    /* 3-4. observe and check */
    if (leader_decide(&le->obs, &cur, le->identity, le->lease_s, k8s_clock_ms(), k8s_wall_us(),
                      &rec) == LEADER_FOLLOW)
        goto done;
    /* 5. update (renew or take over) */
    rc = put_record(le, &rec, &call, &err);
    if (rc != MM_OK) {
        count(le, rc);
        if (rc != MM_ERR_CANCELLED)
            LOG(LOG_INFO, "leader %s/%s: failed to update the lease: %s", le->ns, le->name,
                err.base.message);
        goto done;
    }
    leader_observe(&le->obs, &rec, k8s_clock_ms());
    ok = true;
done:
    json_decref(got);
    k8s_error_cleanup(&err);
    pthread_mutex_lock(&le->lock);
    snprintf(le->stats.holder, sizeof le->stats.holder, "%s",
             le->obs.valid ? le->obs.rec.holder : "");
    pthread_mutex_unlock(&le->lock);
    return ok;
}

static void maybe_report_transition(struct leader_elector *le)
{
    if (!le->obs.valid)
        return;
    if (le->reported_set && !strcmp(le->reported, le->obs.rec.holder))
        return;
    snprintf(le->reported, sizeof le->reported, "%s", le->obs.rec.holder);
    le->reported_set = true;
    LOG(LOG_INFO, "leader %s/%s: new leader \"%s\"", le->ns, le->name, le->reported);
    if (le->cfg.on_new_leader)
        le->cfg.on_new_leader(le->cfg.ctx, le->reported);
}

/*
 * Release the lease (client-go release()). A 409 means our last view of the
 * Lease is stale, typically because stop aborted a renewal that the server
 * had already applied: read it again and release only if we still hold it.
 */
static void release(struct leader_elector *le)
{
    if (!le->lease || !leader_is_holder(&le->obs, le->identity))
        return;
    struct k8s_error err = K8S_ERROR_INIT;
    struct k8s_call_opts call = {.timeout_ms = (long)le->cfg.renew_deadline_ms, .no_retry = true};
    struct leader_record rec;
    enum mm_status rc = MM_ERR_CONFLICT;
    for (int attempt = 0; attempt < 2 && rc == MM_ERR_CONFLICT; attempt++) {
        if (attempt > 0) {
            json_t *fresh = NULL;
            struct leader_record cur;
            struct mm_error perr;
            if (k8s_get(le->client, &leases, le->ns, le->name, NULL, &call, &fresh, &err) !=
                    MM_OK ||
                leader_record_from_lease(fresh, &cur, &perr) != MM_OK) {
                json_decref(fresh);
                break;
            }
            if (strcmp(cur.holder, le->identity)) {
                LOG(LOG_INFO, "leader %s/%s: not releasing: the lease is now held by \"%s\"",
                    le->ns, le->name, cur.holder);
                json_decref(fresh);
                rc = MM_OK;
                goto done;
            }
            keep_lease(le, fresh);
            leader_observe(&le->obs, &cur, k8s_clock_ms());
        }
        leader_release_record(&le->obs, k8s_wall_us(), &rec);
        rc = put_record(le, &rec, &call, &err);
    }
    if (rc == MM_OK) {
        leader_observe(&le->obs, &rec, k8s_clock_ms());
        LOG(LOG_INFO, "leader %s/%s: released the lease", le->ns, le->name);
    } else {
        count(le, rc);
        LOG(LOG_WARN, "leader %s/%s: failed to release the lease: %s", le->ns, le->name,
            err.base.message);
    }
done:
    k8s_error_cleanup(&err);
}

static void run(struct leader_elector *le)
{
    const struct leader_config *cfg = &le->cfg;
    LOG(LOG_INFO, "leader %s/%s: %s attempting to acquire the lease", le->ns, le->name,
        le->identity);
    /* acquire: wait.JitterUntil(tryAcquireOrRenew, RetryPeriod, 1.2, sliding) */
    for (;;) {
        bool ok = try_acquire_or_renew(le, (long)cfg->renew_deadline_ms);
        maybe_report_transition(le);
        if (ok)
            break;
        uint64_t wait = cfg->retry_period_ms +
                        (uint64_t)(rnd(le) * JITTER_FACTOR * (double)cfg->retry_period_ms);
        if (k8s_cancel_sleep(le->cancel, wait))
            return;
    }
    if (k8s_cancel_fired(le->cancel)) {
        release(le);
        return;
    }
    atomic_store(&le->leading, true);
    pthread_mutex_lock(&le->lock);
    le->stats.acquired++;
    pthread_mutex_unlock(&le->lock);
    LOG(LOG_INFO, "leader %s/%s: %s acquired the lease", le->ns, le->name, le->identity);
    if (cfg->on_started_leading)
        cfg->on_started_leading(cfg->ctx);

    /* renew: every RetryPeriod; PollUntilContextTimeout(RetryPeriod, RenewDeadline, immediate) */
    bool lost = false;
    while (!k8s_cancel_fired(le->cancel)) {
        uint64_t deadline = k8s_clock_ms() + cfg->renew_deadline_ms;
        bool renewed = false;
        for (;;) {
            uint64_t now = k8s_clock_ms();
            if (now >= deadline)
                break;
            if (try_acquire_or_renew(le, (long)(deadline - now))) {
                renewed = true;
                break;
            }
            if (k8s_cancel_fired(le->cancel))
                break;
            now = k8s_clock_ms();
            if (now >= deadline)
                break;
            uint64_t wait =
                cfg->retry_period_ms < deadline - now ? cfg->retry_period_ms : deadline - now;
            if (k8s_cancel_sleep(le->cancel, wait))
                break;
        }
        maybe_report_transition(le);
        if (k8s_cancel_fired(le->cancel))
            break;
        if (!renewed) {
            lost = true;
            break;
        }
        if (k8s_cancel_sleep(le->cancel, cfg->retry_period_ms))
            break;
    }
    atomic_store(&le->leading, false);
    if (lost)
        LOG(LOG_ERROR, "leader %s/%s: failed to renew the lease within %llu ms; leadership lost",
            le->ns, le->name, (unsigned long long)cfg->renew_deadline_ms);
    else
        LOG(LOG_INFO, "leader %s/%s: stopping", le->ns, le->name);
    if (cfg->on_stopped_leading)
        cfg->on_stopped_leading(cfg->ctx);
    if (!cfg->keep_on_stop)
        release(le);
}

static void *thread_main(void *arg)
{
    struct leader_elector *le = arg;
    run(le);
    atomic_store(&le->done, true);
    return NULL;
}

enum mm_status leader_start(struct leader_elector *le, struct mm_error *err)
{
    pthread_mutex_lock(&le->lock);
    if (le->started) {
        pthread_mutex_unlock(&le->lock);
        return mm_error_set(err, MM_ERR_INVALID, "", "leader elector already started");
    }
    int e = pthread_create(&le->thread, NULL, thread_main, le);
    if (e == 0)
        le->started = true;
    pthread_mutex_unlock(&le->lock);
    if (e)
        return mm_error_set(err, MM_ERR_INTERNAL, "", "leader elector: cannot start a thread");
    return MM_OK;
}

void leader_stop(struct leader_elector *le)
{
    if (!le)
        return;
    k8s_cancel_fire(le->cancel);
    pthread_mutex_lock(&le->lock);
    bool join = le->started && !le->joined;
    le->joined = le->joined || join;
    pthread_mutex_unlock(&le->lock);
    if (join)
        pthread_join(le->thread, NULL);
}

void leader_free(struct leader_elector *le)
{
    if (!le)
        return;
    leader_stop(le);
    json_decref(le->lease);
    k8s_cancel_free(le->cancel);
    pthread_mutex_destroy(&le->lock);
    free(le->ns);
    free(le->name);
    free(le->identity);
    free(le);
}
