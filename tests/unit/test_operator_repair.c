/* The repair decision (operator/repair.h): what may be restarted, and when. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "operator/repair.h"

struct decide_case {
    const char *name;
    const char *kind;
    double tokens;
    bool ever;
    uint64_t last_ms, now_ms;
    size_t total, unavailable;
    enum repair_result want;
    double tokens_after;
};

static const struct decide_case cases[] = {
    {"deployment restarts", "Deployment", 1, false, 0, 1000, 4, 0, REPAIR_RESTARTED, 0},
    {"statefulset restarts", "StatefulSet", 1.5, false, 0, 1000, 3, 0, REPAIR_RESTARTED, 0.5},
    {"daemonset restarts", "DaemonSet", 1, false, 0, 1000, 0, 0, REPAIR_RESTARTED, 0},
    {"a bare pod never", "", 1, false, 0, 1000, 1, 0, REPAIR_NOT_A_WORKLOAD, 1},
    {"a Job never", "Job", 1, false, 0, 1000, 1, 0, REPAIR_NOT_A_WORKLOAD, 1},
    {"a ReplicaSet without Deployment never", "ReplicaSet", 1, false, 0, 1000, 1, 0,
     REPAIR_NOT_A_WORKLOAD, 1},
    {"no token", "Deployment", 0.99, false, 0, 1000, 4, 0, REPAIR_RATE_LIMITED, 0.99},
    {"within the cooldown", "Deployment", 1, true, 1000, 200000, 4, 0, REPAIR_COOLING_DOWN, 1},
    {"after the cooldown", "Deployment", 1, true, 1000, 302000, 4, 0, REPAIR_RESTARTED, 0},
    {"1 of 4 unavailable is 25%: allowed", "Deployment", 1, false, 0, 1000, 4, 1,
     REPAIR_RESTARTED, 0},
    {"2 of 4 unavailable is over 25%", "Deployment", 1, false, 0, 1000, 4, 2,
     REPAIR_TOO_MANY_UNAVAILABLE, 1},
    {"1 of 3 unavailable is over 25%", "Deployment", 1, false, 0, 1000, 3, 1,
     REPAIR_TOO_MANY_UNAVAILABLE, 1},
};

static void test_decide(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct decide_case *c = &cases[i];
        struct repair_target t = {c->kind, "shop", "web"};
        double tokens = c->tokens;
        enum repair_result got = repair_decide(&t, &tokens, c->last_ms, c->ever, c->now_ms,
                                               300000, c->total, c->unavailable, 25);
        if (got != c->want)
            fail_msg("case \"%s\": %s, want %s", c->name, repair_result_name(got),
                     repair_result_name(c->want));
        if (tokens < c->tokens_after - 1e-9 || tokens > c->tokens_after + 1e-9)
            fail_msg("case \"%s\": tokens %g, want %g", c->name, tokens, c->tokens_after);
    }
    double tokens = 1;
    assert_int_equal(repair_decide(NULL, &tokens, 0, false, 0, 0, 0, 0, 25),
                     REPAIR_NOT_A_WORKLOAD);
}

/* Through repair_restart with an injected clock: the bucket refills at the configured rate. */
static uint64_t fake_now;
static uint64_t fake_clock(void)
{
    return fake_now;
}

static void test_rate(void **state)
{
    (void)state;
    fake_now = 1000;
    struct repair_config cfg = {.rate_per_minute = 2, .clock_ms = fake_clock};
    struct repair *r = repair_create(NULL, &cfg);
    char why[256];
    /* Bare pods and Jobs are refused without touching the bucket or the API. */
    struct repair_target job = {"Job", "shop", "nightly"};
    assert_int_equal(repair_restart(r, &job, why, sizeof why), REPAIR_NOT_A_WORKLOAD);
    assert_non_null(strstr(why, "Job nightly"));
    struct repair_target bare = {"", "shop", "p"};
    assert_int_equal(repair_restart(r, &bare, why, sizeof why), REPAIR_NOT_A_WORKLOAD);
    assert_non_null(strstr(why, "bare pod"));
    assert_int_equal(repair_count(r), 0);
    repair_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
