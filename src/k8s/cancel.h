/*
 * A cancellation token for long calls (watches, retry waits, reflector and
 * leader loops): one thread fires it, others notice within about a second
 * (libcurl calls our progress check at least once a second while a transfer
 * is idle) or at once when sleeping in k8s_cancel_sleep().
 */
#ifndef MM_K8S_CANCEL_H
#define MM_K8S_CANCEL_H

#include <stdbool.h>
#include <stdint.h>

struct k8s_cancel;

/* A new, unfired token; caller frees with k8s_cancel_free. Never NULL (OOM aborts). */
struct k8s_cancel *k8s_cancel_create(void);
void k8s_cancel_free(struct k8s_cancel *c);
/* Fire (idempotent; safe from any thread, not from a signal handler). */
void k8s_cancel_fire(struct k8s_cancel *c);
/* Back to unfired (only while no other thread uses the token). */
void k8s_cancel_reset(struct k8s_cancel *c);
/* True once fired. c may be NULL (never fired). */
bool k8s_cancel_fired(const struct k8s_cancel *c);
/* Sleep ms milliseconds or until fired; true when fired. c may be NULL (plain sleep). */
bool k8s_cancel_sleep(struct k8s_cancel *c, uint64_t ms);

/*
 * Call fn(arg) when c fires (at once if it has already fired). Used by the
 * client to wake a transfer blocked in poll(). fn runs on the firing thread
 * with the token's lock held: it must be quick and must not touch c.
 * At most K8S_CANCEL_MAX_WAKERS at a time; false (nothing registered) beyond.
 */
#define K8S_CANCEL_MAX_WAKERS 64
bool k8s_cancel_subscribe(struct k8s_cancel *c, void (*fn)(void *arg), void *arg);
/* Undo k8s_cancel_subscribe; after it returns fn(arg) is not running and will not run. */
void k8s_cancel_unsubscribe(struct k8s_cancel *c, void (*fn)(void *arg), void *arg);

/* Monotonic clock in milliseconds (CLOCK_MONOTONIC), for deadlines and observed times. */
uint64_t k8s_clock_ms(void);

#endif
