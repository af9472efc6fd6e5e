/*
 * Unit tests for src/k8s/backoff.c: the reflector's exponential backoff
 * (800 ms initial, x2, 30 s cap, jitter up to +100 %, reset after a healthy
 * period of 2 minutes) checked with an injected random source, as exact
 * sequences at the extremes and as bounds for a pseudo-random sequence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "k8s/backoff.h"

static void test_defaults(void **state)
{
    (void)state;
    struct k8s_backoff b;
    k8s_backoff_init(&b);
    assert_int_equal(b.initial_ms, 800);
    assert_int_equal(b.max_ms, 30000);
    assert_int_equal(b.reset_ms, 120000);
}

struct seq_case {
    const char *name;
    double rnd;
    uint64_t want[10];
};

/* clang-format off */
static const struct seq_case seq_cases[] = {
    {"no jitter", 0.0, {800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000, 30000}},
    {"half jitter", 0.5, {1200, 2400, 4800, 9600, 19200, 30000, 30000, 30000, 30000, 30000}},
    {"full jitter (just under 2x), capped", 0.999,
     {1599, 3198, 6396, 12793, 25587, 30000, 30000, 30000, 30000, 30000}},
    {"out-of-range random is clamped", 7.0,
     {1599, 3199, 6399, 12799, 25599, 30000, 30000, 30000, 30000, 30000}},
    {"negative random is clamped", -1.0,
     {800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000, 30000}},
};
/* clang-format on */

static void test_sequences(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof seq_cases / sizeof seq_cases[0]; i++) {
        struct k8s_backoff b;
        k8s_backoff_init(&b);
        uint64_t now = 1000;
        for (int k = 0; k < 10; k++) {
            uint64_t w = k8s_backoff_next(&b, now, seq_cases[i].rnd);
            if (w != seq_cases[i].want[k])
                fail_msg("%s: step %d: %llu, want %llu", seq_cases[i].name, k,
                         (unsigned long long)w, (unsigned long long)seq_cases[i].want[k]);
            now += w; /* failures back to back */
        }
    }
}

/* A deterministic pseudo-random source (the injected one): every wait is within [d, min(2d, max)].
 */
static double lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static void test_bounds_random(void **state)
{
    (void)state;
    uint64_t seed = 42;
    for (int run = 0; run < 200; run++) {
        struct k8s_backoff b;
        k8s_backoff_init(&b);
        uint64_t now = 5, d = 800, total = 0;
        for (int k = 0; k < 12; k++) {
            uint64_t w = k8s_backoff_next(&b, now, lcg(&seed));
            uint64_t hi = 2 * d < 30000 ? 2 * d : 30000;
            uint64_t lo = d < 30000 ? d : 30000;
            assert_true(w >= lo);
            assert_true(w <= hi);
            d = d * 2 > 30000 ? 30000 : d * 2;
            now += w;
            total += w;
        }
        assert_true(total >= 800 + 1600 + 3200 + 6400 + 12800 + 25600 + 6 * 30000);
    }
}

/* After a healthy period longer than reset_ms without failures, it starts again at initial. */
static void test_reset_after_healthy_period(void **state)
{
    (void)state;
    struct k8s_backoff b;
    k8s_backoff_init(&b);
    uint64_t now = 100;
    for (int k = 0; k < 5; k++)
        now += k8s_backoff_next(&b, now, 0.0); /* 800 .. 12800 */
    /* exactly reset_ms later: not yet healthy long enough */
    uint64_t last = b.last_ms;
    assert_int_equal(k8s_backoff_next(&b, last + 120000, 0.0), 25600);
    last = b.last_ms;
    assert_int_equal(k8s_backoff_next(&b, last + 120001, 0.0), 800);
    assert_int_equal(k8s_backoff_next(&b, last + 120002, 0.0), 1600);
    k8s_backoff_reset(&b);
    assert_int_equal(k8s_backoff_next(&b, last + 120003, 0.0), 800);
}

static void test_custom(void **state)
{
    (void)state;
    struct k8s_backoff b;
    k8s_backoff_init(&b);
    b.initial_ms = 100;
    b.max_ms = 250;
    b.factor = 3.0;
    b.jitter = 0.0;
    assert_int_equal(k8s_backoff_next(&b, 1, 0.9), 100);
    assert_int_equal(k8s_backoff_next(&b, 2, 0.9), 250);
    assert_int_equal(k8s_backoff_next(&b, 3, 0.9), 250);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),      cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_bounds_random), cmocka_unit_test(test_reset_after_healthy_period),
        cmocka_unit_test(test_custom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
