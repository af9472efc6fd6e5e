/*
 * The work queue (src/operator/workqueue.c): de-duplication, a key added
 * while it is processed (queued again after done), FIFO order, delayed
 * adds, the rate limiter (per-key exponential backoff and the overall
 * bucket, forget, requeue counts), get timeouts, shutdown waking getters,
 * and a stress test (TSan) of producers and workers checking that a key is
 * never processed twice at once and that every add is followed by a
 * processing of its key.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "operator/workqueue.h"
#include "util/xalloc.h"

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- semantics as tables: each op is "+k" add, "<k" get (expecting k), ">k" done, "#n" len,
 *      "-" get times out ---- */

struct sem_case {
    const char *name;
    const char *ops[24];
};

static const struct sem_case sem_cases[] = {
    {"FIFO", {"+a", "+b", "+c", "#3", "<a", "<b", "<c", "#0", "-", NULL}},
    {"a queued key is queued once", {"+a", "+a", "+b", "+a", "#2", "<a", "<b", "#0", "-", NULL}},
    {"a key added while processed waits for done",
     {"+a", "<a", "+a", "+a", "#0", "-", ">a", "#1", "<a", ">a", "#0", NULL}},
    {"done without a new add does not requeue", {"+a", "<a", ">a", "#0", "-", NULL}},
    {"another key is not held back by a processed one",
     {"+a", "<a", "+b", "+a", "#1", "<b", ">b", ">a", "<a", ">a", "#0", NULL}},
    {"done of an unknown key is harmless", {">x", "+a", ">a", "#1", "<a", NULL}},
};

static void test_semantics(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof sem_cases / sizeof *sem_cases; i++) {
        const struct sem_case *c = &sem_cases[i];
        struct workqueue *q = workqueue_create(NULL);
        for (const char *const *op = c->ops; *op; op++) {
            const char *arg = *op + 1;
            char *key = NULL;
            switch (**op) {
            case '+':
                workqueue_add(q, arg);
                break;
            case '>':
                workqueue_done(q, arg);
                break;
            case '#':
                if (workqueue_len(q) != strtoul(arg, NULL, 10))
                    fail_msg("%s: at %s: len %zu", c->name, *op, workqueue_len(q));
                break;
            case '<':
                if (workqueue_get(q, 100, &key) != MM_OK || strcmp(key, arg))
                    fail_msg("%s: at %s: got %s", c->name, *op, key ? key : "(nothing)");
                free(key);
                break;
            case '-':
                if (workqueue_get(q, 20, &key) != MM_ERR_RETRY)
                    fail_msg("%s: at %s: got %s, want a timeout", c->name, *op, key);
                assert_null(key);
                break;
            default:
                fail_msg("bad op %s", *op);
            }
        }
        workqueue_free(q);
    }
    workqueue_free(NULL);
}

static void test_delayed_adds(void **state)
{
    (void)state;
    struct workqueue *q = workqueue_create(NULL);
    char *key = NULL;
    uint64_t t0 = ms_now();
    workqueue_add_after(q, "late", 150);
    workqueue_add_after(q, "soon", 60);
    assert_int_equal(workqueue_len(q), 0);
    struct workqueue_stats st;
    workqueue_stats(q, &st);
    assert_int_equal(st.waiting, 2);
    assert_int_equal(workqueue_get(q, 1000, &key), MM_OK);
    uint64_t t1 = ms_now() - t0;
    assert_string_equal(key, "soon");
    assert_true(t1 >= 55 && t1 < 140);
    workqueue_done(q, key);
    free(key);
    assert_int_equal(workqueue_get(q, 1000, &key), MM_OK);
    uint64_t t2 = ms_now() - t0;
    assert_string_equal(key, "late");
    assert_true(t2 >= 145);
    workqueue_done(q, key);
    free(key);

    /* a key waiting twice keeps the earlier time */
    t0 = ms_now();
    workqueue_add_after(q, "k", 400);
    workqueue_add_after(q, "k", 50);
    workqueue_add_after(q, "k", 300);
    assert_int_equal(workqueue_get(q, 1000, &key), MM_OK);
    assert_true(ms_now() - t0 < 250);
    free(key);
    workqueue_stats(q, &st);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.processing, 1);
    workqueue_done(q, "k");

    /* a delayed add of a queued key is de-duplicated when it is due */
    workqueue_add(q, "d");
    workqueue_add_after(q, "d", 30);
    usleep(60 * 1000);
    assert_int_equal(workqueue_len(q), 1);
    /* zero delay is an add */
    workqueue_add_after(q, "z", 0);
    assert_int_equal(workqueue_len(q), 2);
    workqueue_free(q);
}

/* A getter waiting for ever is woken by a delayed key coming due. */
static void *wait_for_one(void *arg)
{
    struct workqueue *q = arg;
    char *key = NULL;
    enum mm_status st = workqueue_get(q, -1, &key);
    free(key);
    return (void *)(intptr_t)st;
}

static void test_blocked_getter_gets_delayed_key(void **state)
{
    (void)state;
    struct workqueue *q = workqueue_create(NULL);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_for_one, q), 0);
    usleep(30 * 1000);
    workqueue_add_after(q, "x", 40);
    void *rc = NULL;
    pthread_join(t, &rc);
    assert_int_equal((intptr_t)rc, MM_OK);
    workqueue_free(q);
}

static void test_rate_limiter(void **state)
{
    (void)state;
    struct workqueue_options o;
    workqueue_options_init(&o);
    assert_int_equal(o.base_delay_ms, 5);
    assert_int_equal(o.max_delay_ms, 1000000);
    o.qps = 0; /* the per-key limiter alone */
    struct workqueue *q = workqueue_create(&o);
    static const uint64_t want[] = {5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        assert_int_equal(workqueue_when(q, "a"), want[i]);
    assert_int_equal(workqueue_num_requeues(q, "a"), 10);
    assert_int_equal(workqueue_when(q, "b"), 5); /* per key */
    for (int i = 0; i < 40; i++)
        (void)workqueue_when(q, "a");
    assert_int_equal(workqueue_when(q, "a"), 1000000); /* capped at 1000 s */
    workqueue_forget(q, "a");
    assert_int_equal(workqueue_num_requeues(q, "a"), 0);
    assert_int_equal(workqueue_when(q, "a"), 5);
    workqueue_forget(q, "never-seen");
    assert_int_equal(workqueue_num_requeues(q, "never-seen"), 0);
    workqueue_free(q);

    /* the bucket: 100 at once, then one every 100 ms (10 qps) */
    workqueue_options_init(&o);
    q = workqueue_create(&o);
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(workqueue_when(q, key), 5);
    }
    uint64_t d = workqueue_when(q, "k100");
    assert_true(d >= 90 && d <= 100);
    d = workqueue_when(q, "k101");
    assert_true(d >= 190 && d <= 200);
    workqueue_free(q);
}

static void test_add_rate_limited(void **state)
{
    (void)state;
    struct workqueue *q = workqueue_create(NULL);
    char *key = NULL;
    uint64_t t0 = ms_now();
    for (int i = 0; i < 4; i++) { /* 5 + 10 + 20 + 40 ms, one at a time */
        workqueue_add_rate_limited(q, "r");
        assert_int_equal(workqueue_get(q, 1000, &key), MM_OK);
        workqueue_done(q, key);
        free(key);
    }
    assert_true(ms_now() - t0 >= 75);
    assert_int_equal(workqueue_num_requeues(q, "r"), 4);
    struct workqueue_stats st;
    workqueue_stats(q, &st);
    assert_int_equal(st.retries, 4);
    workqueue_forget(q, "r");
    assert_int_equal(workqueue_num_requeues(q, "r"), 0);
    workqueue_free(q);
}

struct getter {
    struct workqueue *q;
    enum mm_status st;
    uint64_t took;
};

static void *blocked_get(void *arg)
{
    struct getter *g = arg;
    char *key = NULL;
    uint64_t t0 = ms_now();
    g->st = workqueue_get(g->q, -1, &key);
    g->took = ms_now() - t0;
    free(key);
    return NULL;
}

static void test_shutdown_wakes_getters(void **state)
{
    (void)state;
    struct workqueue *q = workqueue_create(NULL);
    struct getter g[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        g[i] = (struct getter){q, MM_OK, 0};
        assert_int_equal(pthread_create(&t[i], NULL, blocked_get, &g[i]), 0);
    }
    usleep(50 * 1000);
    workqueue_add_after(q, "later", 100000);
    assert_false(workqueue_shutting_down(q));
    workqueue_shutdown(q);
    workqueue_shutdown(q);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(g[i].st, MM_ERR_CANCELLED);
        assert_true(g[i].took < 1000);
    }
    assert_true(workqueue_shutting_down(q));
    workqueue_add(q, "ignored");
    assert_int_equal(workqueue_len(q), 0);
    char *key = NULL;
    assert_int_equal(workqueue_get(q, 10, &key), MM_ERR_CANCELLED);
    assert_null(key);
    workqueue_free(q);
}

/* ---- stress -------------------------------------------------------------------------------- */

#define KEYS 50
#define PRODUCERS 3
#define WORKERS 4
#define ADDS_EACH 3000

struct stress {
    struct workqueue *q;
    atomic_int busy[KEYS];     /* workers processing the key now (must stay <= 1) */
    atomic_ullong added[KEYS]; /* adds made (incremented before each add) */
    atomic_ullong seen[KEYS];  /* the largest added[] a worker saw after taking the key */
    atomic_ullong processed;
    atomic_bool overlap;
};

static void *producer(void *arg)
{
    struct stress *s = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    for (int i = 0; i < ADDS_EACH; i++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)((seed >> 8) % KEYS);
        char key[16];
        snprintf(key, sizeof key, "ns/k%02d", k);
        atomic_fetch_add(&s->added[k], 1);
        if ((seed >> 20) % 10 == 0)
            workqueue_add_after(s->q, key, (seed >> 24) % 3);
        else
            workqueue_add(s->q, key);
    }
    return NULL;
}

static void *worker(void *arg)
{
    struct stress *s = arg;
    char *key = NULL;
    while (workqueue_get(s->q, -1, &key) == MM_OK) {
        int k = (int)strtol(key + 4, NULL, 10);
        if (atomic_fetch_add(&s->busy[k], 1) != 0)
            atomic_store(&s->overlap, true);
        unsigned long long a = atomic_load(&s->added[k]);
        unsigned long long prev = atomic_load(&s->seen[k]);
        while (a > prev && !atomic_compare_exchange_weak(&s->seen[k], &prev, a))
            ;
        atomic_fetch_add(&s->processed, 1);
        atomic_fetch_sub(&s->busy[k], 1);
        workqueue_done(s->q, key);
        free(key);
    }
    return NULL;
}

static void test_stress(void **state)
{
    (void)state;
    struct stress *s = xcalloc(1, sizeof *s);
    s->q = workqueue_create(NULL);
    pthread_t prod[PRODUCERS], work[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_create(&work[i], NULL, worker, s), 0);
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(pthread_create(&prod[i], NULL, producer, s), 0);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(prod[i], NULL);
    /* drain: every key added must have been taken after its last add */
    uint64_t t0 = ms_now();
    struct workqueue_stats st;
    for (;;) {
        workqueue_stats(s->q, &st);
        if ((st.depth == 0 && st.processing == 0 && st.waiting == 0) || ms_now() - t0 > 10000)
            break;
        usleep(2000);
    }
    workqueue_shutdown(s->q);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(work[i], NULL);
    assert_false(atomic_load(&s->overlap));
    unsigned long long total = 0;
    for (int k = 0; k < KEYS; k++) {
        total += atomic_load(&s->added[k]);
        if (atomic_load(&s->seen[k]) != atomic_load(&s->added[k]))
            fail_msg("key %d: added %llu times, last processing saw %llu", k,
                     (unsigned long long)atomic_load(&s->added[k]),
                     (unsigned long long)atomic_load(&s->seen[k]));
    }
    assert_int_equal(total, PRODUCERS * ADDS_EACH);
    print_message("    %d adds of %d keys gave %llu processings (de-duplicated)\n",
                  PRODUCERS * ADDS_EACH, KEYS, (unsigned long long)atomic_load(&s->processed));
    assert_true(atomic_load(&s->processed) <= total);
    workqueue_free(s->q);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_semantics),
        cmocka_unit_test(test_delayed_adds),
        cmocka_unit_test(test_blocked_getter_gets_delayed_key),
        cmocka_unit_test(test_rate_limiter),
        cmocka_unit_test(test_add_rate_limited),
        cmocka_unit_test(test_shutdown_wakes_getters),
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
