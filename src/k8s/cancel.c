#include "k8s/cancel.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "util/clock.h"
#include "util/xalloc.h"

struct waker {
    void (*fn)(void *arg);
    void *arg;
};

struct k8s_cancel {
    atomic_bool fired;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    struct waker wakers[K8S_CANCEL_MAX_WAKERS];
    size_t nwakers;
};

struct k8s_cancel *k8s_cancel_create(void)
{
    struct k8s_cancel *c = xcalloc(1, sizeof *c);
    atomic_init(&c->fired, false);
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    return c;
}

void k8s_cancel_free(struct k8s_cancel *c)
{
    if (!c)
        return;
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void k8s_cancel_fire(struct k8s_cancel *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    atomic_store(&c->fired, true);
    pthread_cond_broadcast(&c->cond);
    for (size_t i = 0; i < c->nwakers; i++)
        c->wakers[i].fn(c->wakers[i].arg);
    pthread_mutex_unlock(&c->lock);
}

bool k8s_cancel_subscribe(struct k8s_cancel *c, void (*fn)(void *arg), void *arg)
{
    if (!c)
        return false;
    bool ok = false;
    pthread_mutex_lock(&c->lock);
    if (c->nwakers < K8S_CANCEL_MAX_WAKERS) {
        c->wakers[c->nwakers++] = (struct waker){fn, arg};
        ok = true;
        if (atomic_load(&c->fired))
            fn(arg);
    }
    pthread_mutex_unlock(&c->lock);
    return ok;
}

void k8s_cancel_unsubscribe(struct k8s_cancel *c, void (*fn)(void *arg), void *arg)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->nwakers; i++) {
        if (c->wakers[i].fn == fn && c->wakers[i].arg == arg) {
            c->wakers[i] = c->wakers[--c->nwakers];
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void k8s_cancel_reset(struct k8s_cancel *c)
{
    if (c)
        atomic_store(&c->fired, false);
}

bool k8s_cancel_fired(const struct k8s_cancel *c)
{
    return c && atomic_load(&((struct k8s_cancel *)c)->fired);
}

uint64_t k8s_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool k8s_cancel_sleep(struct k8s_cancel *c, uint64_t ms)
{
    struct timespec until = mono_deadline(ms);
    if (!c) {
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
            ;
        return false;
    }
    pthread_mutex_lock(&c->lock);
    while (!atomic_load(&c->fired)) {
        if (pthread_cond_timedwait(&c->cond, &c->lock, &until) == ETIMEDOUT)
            break;
    }
    bool fired = atomic_load(&c->fired);
    pthread_mutex_unlock(&c->lock);
    return fired;
}
