/*
 * A background thread that calls a function every interval until stopped,
 * and reports each distinct failure once (not once per tick): the shared
 * shape of the certificate and policy-directory watchers.
 */
#ifndef MM_SERVER_POLLER_H
#define MM_SERVER_POLLER_H

#include <pthread.h>
#include <stdbool.h>

#include "util/error.h"

struct poller {
    /* Called every interval from the poller thread. */
    enum mm_status (*tick)(void *ctx, struct mm_error *err);
    /* Called when tick fails with an error text different from the last one. */
    void (*failed)(void *ctx, const char *error);
    void *ctx;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    pthread_t thread;
    bool running;
    bool stop;
    unsigned interval_ms;
};

/* Embed in the owner; ctx is passed to both callbacks. */
void poller_init(struct poller *p, enum mm_status (*tick)(void *, struct mm_error *),
                 void (*failed)(void *, const char *), void *ctx);
/* Stops the thread if running. */
void poller_cleanup(struct poller *p);
/* Start the thread (no-op when running); interval 0 means 1000 ms. False when it cannot start. */
bool poller_start(struct poller *p, unsigned interval_ms);
/* Stop and join the thread (no-op when not running); wakes it at once. */
void poller_stop(struct poller *p);

#endif
