#include "server/poller.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "util/clock.h"

void poller_init(struct poller *p, enum mm_status (*tick)(void *, struct mm_error *),
                 void (*failed)(void *, const char *), void *ctx)
{
    memset(p, 0, sizeof *p);
    p->tick = tick;
    p->failed = failed;
    p->ctx = ctx;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
}

void poller_cleanup(struct poller *p)
{
    poller_stop(p);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
}

static void *poller_main(void *arg)
{
    struct poller *p = arg;
    char last_error[1100] = "";
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        struct timespec until = mono_deadline(p->interval_ms);
        while (!p->stop && pthread_cond_timedwait(&p->cond, &p->lock, &until) != ETIMEDOUT)
            ;
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->lock);
        struct mm_error err;
        mm_error_clear(&err);
        if (p->tick(p->ctx, &err)) {
            char buf[1100];
            mm_error_str(&err, buf, sizeof buf);
            if (strcmp(buf, last_error) != 0) { /* once per distinct problem */
                p->failed(p->ctx, buf);
                snprintf(last_error, sizeof last_error, "%s", buf);
            }
        } else {
            last_error[0] = '\0';
        }
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

bool poller_start(struct poller *p, unsigned interval_ms)
{
    bool ok = true;
    pthread_mutex_lock(&p->lock);
    if (!p->running) {
        p->interval_ms = interval_ms ? interval_ms : 1000;
        p->stop = false;
        ok = pthread_create(&p->thread, NULL, poller_main, p) == 0;
        p->running = ok;
    }
    pthread_mutex_unlock(&p->lock);
    return ok;
}

void poller_stop(struct poller *p)
{
    pthread_mutex_lock(&p->lock);
    bool join = p->running;
    p->stop = true;
    p->running = false;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (join)
        pthread_join(p->thread, NULL);
}
