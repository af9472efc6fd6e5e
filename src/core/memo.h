/*
 * A lock-free, fixed-size cache of merge results for one immutable policy
 * set, keyed by which policies matched (their indices). Pods of one workload
 * match the same policies, so the webhook merges each combination once per
 * snapshot instead of once per pod. Entries are immutable once published and
 * live as long as the memo; the values are shared read-only (jansson's
 * reference counts are atomic), so a reader that wants to change one copies
 * it. When the table is full, results are simply not cached.
 */
#ifndef MM_CORE_MEMO_H
#define MM_CORE_MEMO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct memo_value {
    json_t *policies;  /* "namespace/name" array, merge order */
    json_t *effective; /* merged default, before annotations */
    json_t *origins;
    json_t *hash;      /* string: podpatch_config_hash(effective) */
};

struct memo;

/* A memo with room for `slots` entries (rounded up to a power of two). */
struct memo *memo_create(size_t slots);
void memo_free(struct memo *m); /* NULL is a no-op */

/* The cached value for key (borrowed, valid while the memo lives), or NULL. */
const struct memo_value *memo_get(const struct memo *m, const uint32_t *key, size_t n);

/*
 * Publish value for key (takes the three references on every path). Returns
 * the published value (borrowed): this one, or an equal one another thread
 * published first; NULL when the memo is full (the references are released).
 */
const struct memo_value *memo_put(struct memo *m, const uint32_t *key, size_t n,
                                  struct memo_value value);

#endif
