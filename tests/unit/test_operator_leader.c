/*
 * Unit tests for the pure parts of src/operator/leader.c, following
 * client-go's tools/leaderelection (kubernetes-api.md 5): the decision of
 * tryAcquireOrRenew as a function of (observed record and time, current
 * record, self, now), the fast path, the release record, the Lease <->
 * record codec (MicroTime with six digits), and the configuration checks of
 * NewLeaderElector. The elector against a server is in tests/e2e/k8s_test.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "operator/leader.h"
#include "testutil.h"
#include "util/xalloc.h"

#define T0 1000000u           /* monotonic ms of the first observation */
#define W0 1735689600000000LL /* wall clock us: 2025-01-01T00:00:00Z */
#define W1 1735689700000000LL /* "now" on the wall clock */

static struct leader_record rec(const char *holder, int dur, int64_t acq, int64_t renew, int tr)
{
    struct leader_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.holder, sizeof r.holder, "%s", holder);
    r.lease_duration_s = dur;
    r.acquire_us = acq;
    r.renew_us = renew;
    r.transitions = tr;
    return r;
}

struct decide_case {
    const char *name;
    bool observed;             /* an earlier observation exists */
    struct leader_record seen; /* what was observed, at T0 */
    bool found;                /* false: the GET was 404 */
    struct leader_record cur;  /* what the GET returned */
    uint64_t now;              /* monotonic ms */
    enum leader_decision want;
    int want_transitions;
    bool keeps_acquire; /* acquire time copied from cur (renew) instead of now */
    bool reobserved;    /* observation time moved to now */
};

/* clang-format off */
static const struct decide_case decide_cases[] = {
    {"404: create", false, {"", 0, 0, 0, 0}, false, {"", 0, 0, 0, 0}, T0, LEADER_CREATE, 0, false, false},
    {"first sight of another's lease: follow", false, {"", 0, 0, 0, 0}, true, {"other", 15, W0, W0, 3}, T0,
     LEADER_FOLLOW, 0, false, true},
    {"unchanged for less than leaseDuration: follow", true, {"other", 15, W0, W0, 3}, true,
     {"other", 15, W0, W0, 3}, T0 + 14999, LEADER_FOLLOW, 0, false, false},
    {"unchanged for a full leaseDuration: take over", true, {"other", 15, W0, W0, 3}, true,
     {"other", 15, W0, W0, 3}, T0 + 15000, LEADER_UPDATE, 4, false, false},
    {"renewed by its holder (changed record): observe again and follow", true,
     {"other", 15, W0, W0, 3}, true, {"other", 15, W0, W0 + 2000000, 3}, T0 + 20000,
     LEADER_FOLLOW, 0, false, true},
    {"released (empty holder): take over at once", true, {"other", 15, W0, W0, 3}, true,
     {"", 1, W0, W0 + 5000000, 3}, T0 + 100, LEADER_UPDATE, 4, false, true},
    {"released, first sight: take over at once", false, {"", 0, 0, 0, 0}, true, {"", 1, W0, W0, 0}, T0,
     LEADER_UPDATE, 1, false, true},
    {"held by self (restart with the same identity): renew", false, {"", 0, 0, 0, 0}, true,
     {"me", 15, W0, W0, 7}, T0, LEADER_UPDATE, 7, true, true},
    {"held by self, expired by our clock: still a renew", true, {"me", 15, W0, W0, 7}, true,
     {"me", 15, W0, W0, 7}, T0 + 60000, LEADER_UPDATE, 7, true, false},
    {"server renewTime long ago but observed just now: follow (local clock only)", false, {"", 0, 0, 0, 0},
     true, {"other", 15, 1000000000000LL, 1000000000000LL, 0}, T0, LEADER_FOLLOW, 0, false, true},
    {"the record's duration counts, not ours: 60 s lease after 20 s", true,
     {"other", 60, W0, W0, 1}, true, {"other", 60, W0, W0, 1}, T0 + 20000, LEADER_FOLLOW, 0,
     false, false},
    {"a zero duration is already expired", true, {"other", 0, W0, W0, 1}, true,
     {"other", 0, W0, W0, 1}, T0 + 1, LEADER_UPDATE, 2, false, false},
};
/* clang-format on */

static void test_decide_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof decide_cases / sizeof decide_cases[0]; i++) {
        const struct decide_case *c = &decide_cases[i];
        print_message("decide: %s\n", c->name);
        struct leader_observed o = {0};
        if (c->observed)
            leader_observe(&o, &c->seen, T0);
        struct leader_record out;
        enum leader_decision d =
            leader_decide(&o, c->found ? &c->cur : NULL, "me", 15, c->now, W1, &out);
        assert_int_equal(d, c->want);
        if (d == LEADER_FOLLOW)
            continue;
        assert_string_equal(out.holder, "me");
        assert_int_equal(out.lease_duration_s, 15);
        assert_int_equal(out.renew_us, W1);
        assert_int_equal(out.transitions, c->want_transitions);
        assert_int_equal(out.acquire_us, c->keeps_acquire ? c->cur.acquire_us : W1);
        if (c->found) {
            assert_true(o.valid);
            assert_true(leader_record_equal(&o.rec, &c->cur));
            assert_int_equal(o.time_ms, c->reobserved ? c->now : T0);
        }
    }
}

/* A follower must see the record unchanged for a full leaseDuration, counted from when it changed.
 */
static void test_takeover_timeline(void **state)
{
    (void)state;
    struct leader_observed o = {0};
    struct leader_record out;
    struct leader_record held = rec("leader", 3, W0, W0, 0);
    uint64_t t = T0;
    /* the leader renews every 500 ms for 5 s: the follower never takes over */
    for (int k = 0; k < 10; k++) {
        held.renew_us += 500000;
        assert_int_equal(leader_decide(&o, &held, "follower", 3, t, W1, &out), LEADER_FOLLOW);
        t += 500;
    }
    /* then it stops: the follower takes over only 3 s after the last change it saw */
    uint64_t last_change = t - 500;
    for (; t < last_change + 3000; t += 250)
        assert_int_equal(leader_decide(&o, &held, "follower", 3, t, W1, &out), LEADER_FOLLOW);
    assert_int_equal(leader_decide(&o, &held, "follower", 3, t, W1, &out), LEADER_UPDATE);
    assert_int_equal(out.transitions, 1);
    assert_string_equal(out.holder, "follower");
}

static void test_fast_path(void **state)
{
    (void)state;
    struct leader_observed o = {0};
    struct leader_record out;
    assert_false(leader_fast_path(&o, "me", 15, T0, W1, &out)); /* nothing observed */
    struct leader_record mine = rec("me", 15, W0, W0 + 7, 4);
    leader_observe(&o, &mine, T0);
    assert_true(leader_is_holder(&o, "me"));
    assert_true(leader_fast_path(&o, "me", 15, T0 + 14999, W1, &out));
    assert_string_equal(out.holder, "me");
    assert_int_equal(out.acquire_us, W0);
    assert_int_equal(out.renew_us, W1);
    assert_int_equal(out.transitions, 4);
    assert_false(leader_fast_path(&o, "me", 15, T0 + 15000, W1, &out)); /* expired: slow path */
    assert_false(leader_fast_path(&o, "someone", 15, T0, W1, &out));
    assert_false(leader_is_holder(&o, ""));
    assert_false(leader_is_holder(&o, NULL));
}

static void test_release_record(void **state)
{
    (void)state;
    struct leader_observed o = {0};
    struct leader_record mine = rec("me", 15, W0, W0, 9), out;
    leader_observe(&o, &mine, T0);
    leader_release_record(&o, W1, &out);
    assert_string_equal(out.holder, "");
    assert_int_equal(out.lease_duration_s, 1);
    assert_int_equal(out.acquire_us, W1);
    assert_int_equal(out.renew_us, W1);
    assert_int_equal(out.transitions, 9);
}

static void test_lease_codec(void **state)
{
    (void)state;
    json_t *lease = tu_yaml("apiVersion: coordination.k8s.io/v1\nkind: Lease\n"
                            "metadata: {name: mm, namespace: kuma-system, resourceVersion: '42', "
                            "labels: {a: b}}\n"
                            "spec: {holderIdentity: host_1234, leaseDurationSeconds: 15, "
                            "acquireTime: '2025-01-01T00:00:00.000000Z', "
                            "renewTime: '2025-01-01T00:00:10.123456Z', leaseTransitions: 2, "
                            "strategy: OldestEmulationVersion}\n");
    struct leader_record r;
    struct mm_error err;
    assert_int_equal(leader_record_from_lease(lease, &r, &err), MM_OK);
    assert_string_equal(r.holder, "host_1234");
    assert_int_equal(r.lease_duration_s, 15);
    assert_int_equal(r.acquire_us, W0);
    assert_int_equal(r.renew_us, W0 + 10123456);
    assert_int_equal(r.transitions, 2);

    struct leader_record w = rec("me_5678", 15, W0, W0 + 1, 3);
    leader_record_to_lease(&w, lease);
    json_t *want = tu_yaml("apiVersion: coordination.k8s.io/v1\nkind: Lease\n"
                           "metadata: {name: mm, namespace: kuma-system, resourceVersion: '42', "
                           "labels: {a: b}}\n"
                           "spec: {holderIdentity: me_5678, leaseDurationSeconds: 15, "
                           "acquireTime: '2025-01-01T00:00:00.000000Z', "
                           "renewTime: '2025-01-01T00:00:00.000001Z', leaseTransitions: 3, "
                           "strategy: OldestEmulationVersion}\n");
    if (!json_equal(lease, want)) {
        tu_print_diff("", want, lease);
        fail_msg("leader_record_to_lease");
    }
    json_decref(want);
    json_decref(lease);

    /* a new Lease; a zero time is written as null (Go's zero MicroTime) */
    struct leader_record z = rec("x", 1, 0, W0, 0);
    json_t *nl = leader_lease_new("ns", "name", &z);
    want = tu_yaml("{apiVersion: coordination.k8s.io/v1, kind: Lease, metadata: {name: name, "
                   "namespace: ns}, spec: {holderIdentity: x, leaseDurationSeconds: 1, "
                   "acquireTime: null, renewTime: '2025-01-01T00:00:00.000000Z', "
                   "leaseTransitions: 0}}");
    assert_true(json_equal(nl, want));
    json_decref(want);
    json_decref(nl);

    /* an empty spec and odd values */
    json_t *empty = tu_yaml("{metadata: {name: x}}");
    assert_int_equal(leader_record_from_lease(empty, &r, &err), MM_OK);
    assert_string_equal(r.holder, "");
    assert_int_equal(r.renew_us, 0);
    json_decref(empty);
    const char *bad[] = {
        "{spec: {holderIdentity: 5}}",
        "{spec: {leaseDurationSeconds: 'x'}}",
        "{spec: {leaseTransitions: 99999999999}}",
        "{spec: {renewTime: 'yesterday'}}",
        "{spec: {acquireTime: 12}}",
        "{spec: [1]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *b = tu_yaml(bad[i]);
        assert_int_not_equal(leader_record_from_lease(b, &r, &err), MM_OK);
        json_decref(b);
    }
}

struct cfg_case {
    const char *name;
    uint64_t dur, renew, retry;
    const char *identity, *lease, *ns;
    enum mm_status want;
    const char *msg;
};

/* clang-format off */
static const struct cfg_case cfg_cases[] = {
    {"client-go defaults", 15000, 10000, 2000, "id", "l", "ns", MM_OK, NULL},
    {"short test values", 3000, 2000, 500, "id", "l", "ns", MM_OK, NULL},
    {"duration == renew deadline", 10000, 10000, 2000, "id", "l", "ns", MM_ERR_INVALID,
     "leaseDuration (10000 ms) must be greater than renewDeadline (10000 ms)"},
    {"renew deadline == 1.2 x retry", 15000, 2400, 2000, "id", "l", "ns", MM_ERR_INVALID,
     "renewDeadline (2400 ms) must be greater than retryPeriod*JitterFactor"},
    {"renew deadline just above 1.2 x retry", 15000, 2401, 2000, "id", "l", "ns", MM_OK, NULL},
    {"lease under a second", 900, 500, 100, "id", "l", "ns", MM_ERR_INVALID, "at least 1 s"},
    {"zero retry", 15000, 10000, 0, "id", "l", "ns", MM_ERR_INVALID, "greater than zero"},
    {"no identity", 15000, 10000, 2000, "", "l", "ns", MM_ERR_INVALID, "Lock identity is empty"},
    {"no lease name", 15000, 10000, 2000, "id", NULL, "ns", MM_ERR_INVALID, "name is empty"},
    {"no namespace", 15000, 10000, 2000, "id", "l", "", MM_ERR_INVALID, "namespace is empty"},
};
/* clang-format on */

static void test_config_validate(void **state)
{
    (void)state;
    struct leader_config def;
    leader_config_init(&def);
    assert_int_equal(def.lease_duration_ms, 15000);
    assert_int_equal(def.renew_deadline_ms, 10000);
    assert_int_equal(def.retry_period_ms, 2000);
    for (size_t i = 0; i < sizeof cfg_cases / sizeof cfg_cases[0]; i++) {
        const struct cfg_case *c = &cfg_cases[i];
        struct leader_config cfg;
        leader_config_init(&cfg);
        cfg.lease_duration_ms = c->dur;
        cfg.renew_deadline_ms = c->renew;
        cfg.retry_period_ms = c->retry;
        cfg.identity = c->identity;
        cfg.name = c->lease;
        cfg.namespace = c->ns;
        struct mm_error err;
        mm_error_clear(&err);
        enum mm_status rc = leader_config_validate(&cfg, &err);
        if (rc != c->want)
            fail_msg("%s: got %s (%s)", c->name, mm_status_name(rc), err.message);
        if (c->msg && !strstr(err.message, c->msg))
            fail_msg("%s: [%s] lacks [%s]", c->name, err.message, c->msg);
    }
    char longid[LEADER_IDENTITY_MAX + 1];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    struct leader_config cfg;
    leader_config_init(&cfg);
    cfg.identity = longid;
    cfg.name = "l";
    cfg.namespace = "ns";
    assert_int_equal(leader_config_validate(&cfg, NULL), MM_ERR_INVALID);
    /* leader_create validates too and returns no elector */
    struct leader_elector *le = (struct leader_elector *)&cfg;
    cfg.identity = "";
    assert_int_equal(leader_create(NULL, &cfg, &le, NULL), MM_ERR_INVALID);
    assert_null(le);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_table), cmocka_unit_test(test_takeover_timeline),
        cmocka_unit_test(test_fast_path),    cmocka_unit_test(test_release_record),
        cmocka_unit_test(test_lease_codec),  cmocka_unit_test(test_config_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
