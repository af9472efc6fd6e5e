/*
 * A work queue of string keys ("namespace/name"), as client-go's workqueue
 * (util/workqueue: queue.go, delaying_queue.go, rate_limiting_queue.go) and
 * controller-runtime's default rate limiter:
 *
 *  - de-duplicating: a key added while it waits in the queue is queued once;
 *    a key added while a worker processes it is queued again when the worker
 *    calls done(), so one key is never processed by two workers at once;
 *  - add_after(delay): the key is added when the delay has passed (a key
 *    already waiting keeps the earlier of the two times);
 *  - add_rate_limited: add_after(when(key)), where when() is the maximum of
 *    a per-key exponential backoff (5 ms * 2^failures, capped at 1000 s) and
 *    an overall token bucket (10 per second, burst 100);
 *    forget(key) clears the key's failures (call it after a success);
 *  - get blocks until a key is ready or the queue shuts down; done(key) ends
 *    its processing.
 *
 * Thread-safe: one mutex and one condition variable; delayed keys sit in a
 * min-heap that get() and len() promote when due (no timer thread).
 *
 * Difference from client-go, on purpose: after shutdown, get() returns
 * MM_ERR_CANCELLED at once even when keys remain queued (they are dropped:
 * a new leader lists everything again), and adds are ignored.
 */
#ifndef MM_OPERATOR_WORKQUEUE_H
#define MM_OPERATOR_WORKQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct workqueue;

struct workqueue_options {
    const char *name;       /* for logs and metrics; copied */
    uint64_t base_delay_ms; /* 5 */
    uint64_t max_delay_ms;  /* 1000000 (1000 s) */
    double qps;             /* 10: the overall bucket's rate; <= 0: no bucket */
    unsigned burst;         /* 100 */
};

/* controller-runtime's defaults above. */
void workqueue_options_init(struct workqueue_options *o);

/* A new, empty queue; opt NULL: defaults. Never NULL. */
struct workqueue *workqueue_create(const struct workqueue_options *opt);
/* Free. No thread may use the queue any more (shut it down and join the workers first). */
void workqueue_free(struct workqueue *q);

/* Queue key (copied) unless it is queued already. Ignored after shutdown. */
void workqueue_add(struct workqueue *q, const char *key);
/* Add key after delay_ms (0: now). */
void workqueue_add_after(struct workqueue *q, const char *key, uint64_t delay_ms);
/* Add key after the rate limiter's delay for it (workqueue_when). */
void workqueue_add_rate_limited(struct workqueue *q, const char *key);

/*
 * The rate limiter's delay for key now, in ms: max(per-key exponential,
 * bucket). Advances both (as client-go's RateLimiter.When).
 */
uint64_t workqueue_when(struct workqueue *q, const char *key);
/* Clear key's failure count (after it was processed successfully). */
void workqueue_forget(struct workqueue *q, const char *key);
/* How many times key was rate-limited since the last forget. */
unsigned workqueue_num_requeues(struct workqueue *q, const char *key);

/*
 * Take the next key: *key is a new string (pass it to workqueue_done, then
 * free it). timeout_ms < 0 waits for ever. Returns MM_OK, MM_ERR_CANCELLED
 * once the queue is shut down (*key NULL), or MM_ERR_RETRY on timeout.
 */
enum mm_status workqueue_get(struct workqueue *q, long timeout_ms, char **key) MM_WUR;

/* Processing of key ended; it is queued again if it was added meanwhile. */
void workqueue_done(struct workqueue *q, const char *key);

/* Wake every getter with MM_ERR_CANCELLED; ignore adds from now on. Idempotent. */
void workqueue_shutdown(struct workqueue *q);
bool workqueue_shutting_down(struct workqueue *q);

/* Keys ready to be taken (client-go Len(); the reconcile-queue-depth metric). */
size_t workqueue_len(struct workqueue *q);

struct workqueue_stats {
    size_t depth;      /* ready keys (workqueue_len) */
    size_t processing; /* keys taken and not done */
    size_t waiting;    /* keys waiting for their delay */
    uint64_t adds;     /* adds that queued or delayed a key (de-duplicated ones not counted) */
    uint64_t retries;  /* add_rate_limited calls */
};
void workqueue_stats(struct workqueue *q, struct workqueue_stats *out);

#endif
