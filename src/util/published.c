#include "util/clock.h"
#include "util/published.h"

#include <errno.h>
#include <time.h>

void published_init(struct published *p, void *initial, uint64_t generation,
                    void *(*ref)(void *), void (*unref)(void *))
{
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->changed, &attr);
    pthread_condattr_destroy(&attr);
    p->value = initial;
    p->generation = generation;
    p->ref = ref;
    p->unref = unref;
}

void published_cleanup(struct published *p)
{
    if (p->value)
        p->unref(p->value);
    p->value = NULL;
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
}

void published_set(struct published *p, void *value, uint64_t generation)
{
    pthread_mutex_lock(&p->lock);
    void *old = p->value;
    p->value = value;
    p->generation = generation;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    if (old)
        p->unref(old); /* readers that hold it keep their own reference */
}

void *published_get(struct published *p, uint64_t *generation)
{
    pthread_mutex_lock(&p->lock);
    void *v = p->ref(p->value);
    if (generation)
        *generation = p->generation;
    pthread_mutex_unlock(&p->lock);
    return v;
}

void *published_wait(struct published *p, uint64_t after, unsigned timeout_ms,
                     uint64_t *generation)
{
    struct timespec deadline = mono_deadline(timeout_ms);
    pthread_mutex_lock(&p->lock);
    while (p->generation <= after) {
        int rc = pthread_cond_timedwait(&p->changed, &p->lock, &deadline);
        if (rc == ETIMEDOUT)
            break;
    }
    void *v = p->ref(p->value);
    if (generation)
        *generation = p->generation;
    pthread_mutex_unlock(&p->lock);
    return v;
}
