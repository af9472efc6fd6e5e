#include "core/source.h"

#include <stdint.h>

#include "core/view.h"

static void *ref_view(void *v)
{
    return view_ref(v);
}

static void unref_view(void *v)
{
    view_unref(v);
}

void view_cell_init(struct view_cell *c, struct policy_view *initial, bool ready)
{
    published_init(&c->current, initial, 0, ref_view, unref_view);
    atomic_init(&c->ready, ready);
    atomic_init(&c->reloads_ok, 0);
    atomic_init(&c->reloads_failed, 0);
    atomic_init(&c->last_ok, 0);
}

void view_cell_cleanup(struct view_cell *c)
{
    published_cleanup(&c->current);
}

struct policy_view *view_cell_publish(struct view_cell *c, struct policy_view *v,
                                      uint64_t generation, long long now)
{
    struct policy_view *old = published_get(&c->current, NULL);
    published_set(&c->current, v, generation); /* readers keep the views they hold */
    atomic_fetch_add(&c->reloads_ok, 1);
    atomic_store(&c->last_ok, now);
    return old;
}

void view_cell_failed(struct view_cell *c)
{
    atomic_fetch_add(&c->reloads_failed, 1);
}

void view_cell_set_ready(struct view_cell *c)
{
    atomic_store(&c->ready, true);
}

bool view_cell_ready(const struct view_cell *c)
{
    return atomic_load(&((struct view_cell *)(uintptr_t)c)->ready);
}

static struct policy_view *source_acquire(void *ctx)
{
    struct view_cell *c = ctx;
    return published_get(&c->current, NULL);
}

static bool source_ready(void *ctx)
{
    return view_cell_ready(ctx);
}

static struct policy_view *source_wait(void *ctx, uint64_t generation, unsigned timeout_ms)
{
    struct view_cell *c = ctx;
    return published_wait(&c->current, generation, timeout_ms, NULL);
}

struct policy_source view_cell_source(struct view_cell *c)
{
    return (struct policy_source){
        .acquire = source_acquire, .ready = source_ready, .wait_newer = source_wait, .ctx = c};
}

void view_cell_reload_counts(const struct view_cell *cc, uint64_t *ok, uint64_t *failed,
                             int64_t *last_ok)
{
    struct view_cell *c = (struct view_cell *)(uintptr_t)cc;
    *ok = atomic_load(&c->reloads_ok);
    *failed = atomic_load(&c->reloads_failed);
    if (last_ok)
        *last_ok = (int64_t)atomic_load(&c->last_ok);
}
