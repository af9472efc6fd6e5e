/*
 * Leader election with a coordination.k8s.io/v1 Lease, as client-go's
 * tools/leaderelection does it (kubernetes-api.md 5):
 *
 *  - try: (1) fast path for the leader: PUT renewTime=now on the Lease last
 *    written, keeping acquireTime and leaseTransitions; (2) GET; 404 -> create
 *    it holding it ourselves (a 409 from a faster candidate: not leader);
 *    (3) when the record differs from the last one observed, remember it and
 *    the LOCAL monotonic time of the observation; (4) held by someone else and
 *    observed time + leaseDurationSeconds not yet passed -> not leader; (5)
 *    else PUT it with our identity (resourceVersion from the GET, so a
 *    concurrent writer gets 409): renew keeps acquireTime/leaseTransitions,
 *    a takeover sets acquireTime=now and leaseTransitions+1.
 *  - acquire: try every RetryPeriod with jitter 1.2 (wait.JitterUntil) until
 *    it succeeds; then on_started_leading;
 *  - renew: every RetryPeriod; when no try succeeded within RenewDeadline,
 *    leadership is lost: is_leader turns false and on_stopped_leading runs
 *    (the operator then exits, as client-go programs do);
 *  - stop (SIGTERM): is_leader false, on_stopped_leading, then release: PUT
 *    holderIdentity "", leaseDurationSeconds 1, acquireTime=renewTime=now,
 *    same leaseTransitions, so another candidate takes over at once.
 * Times on the wire are MicroTime ("2006-01-02T15:04:05.000000Z").
 *
 * Differences from client-go, on purpose: on_stopped_leading is called only
 * if leadership was held (client-go calls it on every exit of Run), and on
 * stop it runs before the release (work stops before the lease is handed
 * over). The decision steps are pure functions below, tested without a server.
 */
#ifndef MM_OPERATOR_LEADER_H
#define MM_OPERATOR_LEADER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "k8s/client.h"
#include "util/error.h"

#define LEADER_IDENTITY_MAX 256

/* The Lease spec as client-go's LeaderElectionRecord sees it. */
struct leader_record {
    char holder[LEADER_IDENTITY_MAX]; /* holderIdentity; "" when released */
    int32_t lease_duration_s;         /* leaseDurationSeconds */
    int64_t acquire_us;               /* acquireTime, microseconds since the epoch; 0: unset */
    int64_t renew_us;                 /* renewTime; 0: unset */
    int32_t transitions;              /* leaseTransitions */
};

bool leader_record_equal(const struct leader_record *a, const struct leader_record *b);
/* Read spec of a Lease object (missing fields are zero). MM_ERR_PARSE/TYPE on bad fields. */
enum mm_status leader_record_from_lease(const json_t *lease, struct leader_record *out,
                                        struct mm_error *err) MM_WUR;
/* Write rec into lease's spec (creating spec if needed); other fields are kept. */
void leader_record_to_lease(const struct leader_record *rec, json_t *lease);
/* A new Lease object ns/name holding rec. Caller decrefs. */
json_t *leader_lease_new(const char *ns, const char *name, const struct leader_record *rec);

/* What the elector last observed, and when (local monotonic clock). */
struct leader_observed {
    bool valid;
    struct leader_record rec;
    uint64_t time_ms;
};

/* The observed holder is self (client-go IsLeader). */
bool leader_is_holder(const struct leader_observed *o, const char *self);
/* observed time + observed leaseDurationSeconds is after now (client-go isLeaseValid). */
bool leader_lease_valid(const struct leader_observed *o, uint64_t now_ms);

/*
 * Step 1: true when the fast path applies (we hold the lease and it is still
 * valid); *out is then the record to PUT.
 */
bool leader_fast_path(const struct leader_observed *o, const char *self, int32_t lease_s,
                      uint64_t now_ms, int64_t now_us, struct leader_record *out);

enum leader_decision {
    LEADER_FOLLOW, /* someone else holds a valid lease: do nothing */
    LEADER_CREATE, /* no Lease (404): create *out */
    LEADER_UPDATE, /* PUT *out (renew or takeover) */
};

/*
 * Steps 2-4 for the record current (NULL: the GET was 404). Updates o when
 * current differs from what was observed (observation time now_ms), and
 * fills *out for LEADER_CREATE/LEADER_UPDATE.
 */
enum leader_decision leader_decide(struct leader_observed *o, const struct leader_record *current,
                                   const char *self, int32_t lease_s, uint64_t now_ms,
                                   int64_t now_us, struct leader_record *out);
/* After a successful write of rec: observe it at now_ms (client-go setObservedRecord). */
void leader_observe(struct leader_observed *o, const struct leader_record *rec, uint64_t now_ms);
/* The release record: holder "", duration 1 s, times now, same transitions. */
void leader_release_record(const struct leader_observed *o, int64_t now_us,
                           struct leader_record *out);

/* ---- the elector ---- */

struct leader_config {
    const char *namespace;      /* of the Lease */
    const char *name;           /* of the Lease */
    const char *identity;       /* this candidate, e.g. "<hostname>_<uuid>" (unique per process) */
    uint64_t lease_duration_ms; /* 15000; sent as whole seconds */
    uint64_t renew_deadline_ms; /* 10000 */
    uint64_t retry_period_ms;   /* 2000 */
    bool keep_on_stop;          /* do not release the Lease on stop (default: release) */
    void *ctx;
    void (*on_started_leading)(void *ctx);
    void (*on_stopped_leading)(void *ctx);
    void (*on_new_leader)(void *ctx, const char *identity); /* identity borrowed; "" = released */
    double (*random)(void *ctx); /* [0, 1) for the retry jitter; NULL: internal generator */
    void *random_ctx;
};

/* Defaults above, pointers NULL. */
void leader_config_init(struct leader_config *c);
/*
 * client-go's NewLeaderElector checks: lease duration > renew deadline >
 * 1.2 x retry period, all > 0, lease duration at least 1 s, identity, name and
 * namespace set, identity shorter than LEADER_IDENTITY_MAX. MM_ERR_INVALID.
 */
enum mm_status leader_config_validate(const struct leader_config *c, struct mm_error *err) MM_WUR;

struct leader_elector;

/* Validate cfg and make an elector (strings copied; client borrowed, must outlive it). */
enum mm_status leader_create(struct k8s_client *client, const struct leader_config *cfg,
                             struct leader_elector **out, struct mm_error *err) MM_WUR;
/* Run the elector in its own thread. Callbacks run on that thread and must not block long. */
enum mm_status leader_start(struct leader_elector *le, struct mm_error *err) MM_WUR;
/* Stop (release unless keep_on_stop) and join. Idempotent; returns within about a second plus the
 * release. */
void leader_stop(struct leader_elector *le);
/* Stop if running, then free. le may be NULL. */
void leader_free(struct leader_elector *le);
/* True while this elector holds the lease. Safe from any thread. */
bool leader_is_leader(const struct leader_elector *le);
/* True once the elector's thread has ended (leadership lost, or stopped). Safe from any thread. */
bool leader_done(const struct leader_elector *le);

struct leader_stats {
    uint64_t tries;                   /* tryAcquireOrRenew calls */
    uint64_t acquired;                /* times leadership was gained */
    uint64_t conflicts;               /* 409 answers to a create or PUT */
    uint64_t errors;                  /* other failed requests */
    char holder[LEADER_IDENTITY_MAX]; /* the last observed holder */
};
void leader_stats(struct leader_elector *le, struct leader_stats *out);

#endif
