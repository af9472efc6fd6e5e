/*
 * Exponential backoff with jitter, as client-go's reflector uses it
 * (wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0)): each
 * failure waits d = initial * factor^n, capped at max, plus a random jitter of
 * up to jitter * d; the total never exceeds max. When no failure happened for
 * reset_ms (a healthy period), the sequence starts again at initial.
 * Pure: the caller passes the clock and the random number, so tests can
 * check the exact sequence and its bounds.
 */
#ifndef MM_K8S_BACKOFF_H
#define MM_K8S_BACKOFF_H

#include <stdint.h>

struct k8s_backoff {
    uint64_t initial_ms; /* 800 */
    uint64_t max_ms;     /* 30000 */
    uint64_t reset_ms;   /* 120000 */
    double factor;       /* 2.0 */
    double jitter;       /* 1.0: the wait is in [d, 2d), capped at max */
    /* state */
    uint64_t next_ms; /* the un-jittered wait of the next failure; 0 = initial */
    uint64_t last_ms; /* clock of the last failure; 0 = none yet */
};

/* The reflector's defaults above, state cleared. */
void k8s_backoff_init(struct k8s_backoff *b);
/*
 * The wait after a failure at now_ms (monotonic), with rnd in [0, 1) from the
 * caller's random source. Advances the sequence.
 */
uint64_t k8s_backoff_next(struct k8s_backoff *b, uint64_t now_ms, double rnd);
/* Start again at initial (after an explicit success, if the caller wants that). */
void k8s_backoff_reset(struct k8s_backoff *b);

#endif
