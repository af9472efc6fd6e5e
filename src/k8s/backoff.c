#include "k8s/backoff.h"

void k8s_backoff_init(struct k8s_backoff *b)
{
    b->initial_ms = 800;
    b->max_ms = 30000;
    b->reset_ms = 120000;
    b->factor = 2.0;
    b->jitter = 1.0;
    k8s_backoff_reset(b);
}

void k8s_backoff_reset(struct k8s_backoff *b)
{
    b->next_ms = 0;
    b->last_ms = 0;
}

uint64_t k8s_backoff_next(struct k8s_backoff *b, uint64_t now_ms, double rnd)
{
    if (b->next_ms == 0 || (b->last_ms && now_ms - b->last_ms > b->reset_ms))
        b->next_ms = b->initial_ms;
    b->last_ms = now_ms ? now_ms : 1;
    uint64_t d = b->next_ms < b->max_ms ? b->next_ms : b->max_ms;
    double grown = (double)d * b->factor;
    b->next_ms = grown >= (double)b->max_ms ? b->max_ms : (uint64_t)grown;
    if (rnd < 0)
        rnd = 0;
    if (rnd >= 1)
        rnd = 0.999999;
    double w = (double)d + rnd * b->jitter * (double)d;
    return w >= (double)b->max_ms ? b->max_ms : (uint64_t)w;
}
