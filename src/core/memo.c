#include "core/memo.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

#define MAX_PROBES 32

struct entry {
    uint64_t hash;
    size_t n;
    uint32_t *key;
    struct memo_value value;
};

struct memo {
    size_t mask;
    _Atomic(struct entry *) *slots;
};

static uint64_t hash_key(const uint32_t *key, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the indices */
    for (size_t i = 0; i < n; i++) {
        h ^= key[i];
        h *= 1099511628211ull;
    }
    h ^= n;
    h *= 1099511628211ull;
    return h;
}

struct memo *memo_create(size_t slots)
{
    size_t cap = 16;
    while (cap < slots)
        cap *= 2;
    struct memo *m = xcalloc(1, sizeof *m);
    m->mask = cap - 1;
    m->slots = xcalloc(cap, sizeof *m->slots);
    for (size_t i = 0; i < cap; i++)
        atomic_init(&m->slots[i], NULL);
    return m;
}

static void entry_free(struct entry *e)
{
    json_decref(e->value.policies);
    json_decref(e->value.effective);
    json_decref(e->value.origins);
    json_decref(e->value.hash);
    free(e->key);
    free(e);
}

void memo_free(struct memo *m)
{
    if (!m)
        return;
    for (size_t i = 0; i <= m->mask; i++) {
        struct entry *e = atomic_load(&m->slots[i]);
        if (e)
            entry_free(e);
    }
    free(m->slots);
    free(m);
}

static bool same(const struct entry *e, uint64_t h, const uint32_t *key, size_t n)
{
    return e->hash == h && e->n == n && (n == 0 || !memcmp(e->key, key, n * sizeof *key));
}

const struct memo_value *memo_get(const struct memo *m, const uint32_t *key, size_t n)
{
    uint64_t h = hash_key(key, n);
    for (size_t p = 0; p < MAX_PROBES && p <= m->mask; p++) {
        struct entry *e = atomic_load_explicit(&m->slots[(h + p) & m->mask], memory_order_acquire);
        if (!e)
            return NULL;
        if (same(e, h, key, n))
            return &e->value;
    }
    return NULL;
}

const struct memo_value *memo_put(struct memo *m, const uint32_t *key, size_t n,
                                  struct memo_value value)
{
    struct entry *mine = xmalloc(sizeof *mine);
    mine->hash = hash_key(key, n);
    mine->n = n;
    mine->key = xmalloc((n ? n : 1) * sizeof *key);
    if (n)
        memcpy(mine->key, key, n * sizeof *key);
    mine->value = value;
    for (size_t p = 0; p < MAX_PROBES && p <= m->mask; p++) {
        _Atomic(struct entry *) *slot = &m->slots[(mine->hash + p) & m->mask];
        struct entry *expected = NULL;
        if (atomic_compare_exchange_strong_explicit(slot, &expected, mine, memory_order_acq_rel,
                                                    memory_order_acquire))
            return &mine->value;
        if (same(expected, mine->hash, key, n)) { /* another thread was first */
            entry_free(mine);
            return &expected->value;
        }
    }
    entry_free(mine);
    return NULL;
}
