/*
 * Where live policy views come from. The webhook (and later the discovery
 * server) only know this interface; main hands them the policy directory
 * (server/policydir.h) or the operator's informer caches.
 */
#ifndef MM_CORE_SOURCE_H
#define MM_CORE_SOURCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/published.h"

struct policy_view;

struct policy_source {
    /* A new reference to the current view, never NULL. */
    struct policy_view *(*acquire)(void *ctx);
    /* True once the source has loaded (or synced) at least once. */
    bool (*ready)(void *ctx);
    /*
     * Wait until the current view's generation is greater than generation,
     * or timeout_ms passed; then return a new reference to the current view
     * (check its generation to tell which). For long polls.
     */
    struct policy_view *(*wait_newer)(void *ctx, uint64_t generation, unsigned timeout_ms);
    void *ctx;
};

/*
 * The published view of a source and its reload counters, shared by both
 * sources: one builder publishes, readers acquire or long-poll. Thread-safe.
 */
struct view_cell {
    struct published current; /* struct policy_view */
    atomic_bool ready;
    atomic_ullong reloads_ok, reloads_failed;
    atomic_llong last_ok; /* unix time of the last successful build; 0: none */
};

/* initial (reference taken over) as generation 0. */
void view_cell_init(struct view_cell *c, struct policy_view *initial, bool ready);
/* No reader may be waiting. */
void view_cell_cleanup(struct view_cell *c);
/*
 * Publish v (reference taken over) as generation; count a success at unix
 * time now. Returns the view it replaced (a reference; drop it), e.g. to log
 * what is new. Does not change ready.
 */
struct policy_view *view_cell_publish(struct view_cell *c, struct policy_view *v,
                                      uint64_t generation, long long now);
void view_cell_failed(struct view_cell *c);
void view_cell_set_ready(struct view_cell *c);
bool view_cell_ready(const struct view_cell *c);
/* The policy_source reading c (which must outlive it). */
struct policy_source view_cell_source(struct view_cell *c);
/* Successful and failed builds, and the time of the last success (may be NULL). */
void view_cell_reload_counts(const struct view_cell *c, uint64_t *ok, uint64_t *failed,
                             int64_t *last_ok);

#endif
