/*
 * Where live policy views come from. The webhook (and later the discovery
 * server) only know this interface; main hands them the policy directory
 * (server/policydir.h) or the operator's informer caches.
 */
#ifndef MM_CORE_SOURCE_H
#define MM_CORE_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

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

#endif
