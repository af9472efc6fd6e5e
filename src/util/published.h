/*
 * A published, reference-counted value with a generation number: one writer
 * swaps in new values, any number of readers take references to the current
 * one without blocking each other for longer than a pointer copy, and
 * long-polling readers wait for a newer generation (a condition variable).
 * The policy sources (directory and operator caches) publish their views
 * through it.
 */
#ifndef MM_UTIL_PUBLISHED_H
#define MM_UTIL_PUBLISHED_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct published {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* CLOCK_MONOTONIC */
    void *value;
    uint64_t generation;
    void *(*ref)(void *value);
    void (*unref)(void *value);
};

/* initial is taken (its reference moves in); ref/unref manage the value's count. */
void published_init(struct published *p, void *initial, uint64_t generation,
                    void *(*ref)(void *), void (*unref)(void *));
/* Drop the value. No reader may be waiting. */
void published_cleanup(struct published *p);

/* Swap in value (reference taken) as generation; wakes every waiter. The old value is released. */
void published_set(struct published *p, void *value, uint64_t generation);

/* A new reference to the current value; *generation (may be NULL) gets its generation. */
void *published_get(struct published *p, uint64_t *generation);

/*
 * Wait until the generation is greater than after, or timeout_ms passed;
 * returns a new reference to the current value either way.
 */
void *published_wait(struct published *p, uint64_t after, unsigned timeout_ms,
                     uint64_t *generation);

#endif
