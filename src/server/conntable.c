/* The connection table: deadlines and eviction at the soft limit (see conntable.h). */
#include "server/conntable.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "util/xalloc.h"

struct conn_table {
    struct conn_limits lim;
    pthread_mutex_t lock; /* guards everything below and the entries' non-atomic fields */
    struct conn_entry **entries;
    size_t n, cap;
    size_t evicted_pending; /* entries shut down by the table, not yet removed */
    uint64_t closed[CONN_CLOSE_COUNT];
};

const char *conn_close_reason_name(enum conn_close_reason r)
{
    static const char *const names[CONN_CLOSE_COUNT] = {"header_timeout", "read_timeout",
                                                        "idle_timeout", "evicted", "refused"};
    return (unsigned)r < CONN_CLOSE_COUNT ? names[r] : "unknown";
}

uint64_t conn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static unsigned long long pack(enum conn_state st, uint64_t since_ms)
{
    return ((unsigned long long)since_ms << 4) | (unsigned long long)st;
}

static void unpack(const struct conn_entry *e, enum conn_state *st, uint64_t *since_ms)
{
    unsigned long long w =
        atomic_load_explicit((atomic_ullong *)(uintptr_t)&e->word, memory_order_acquire);
    *st = (enum conn_state)(w & 0xf);
    *since_ms = (uint64_t)(w >> 4);
}

struct conn_table *conn_table_create(const struct conn_limits *limits)
{
    struct conn_table *t = xcalloc(1, sizeof *t);
    t->lim = *limits;
    if (t->lim.soft_limit == 0)
        t->lim.soft_limit = 1;
    if (t->lim.grace_ms == 0) {
        t->lim.grace_ms = t->lim.header_timeout_ms / 4;
        if (t->lim.grace_ms > 1000)
            t->lim.grace_ms = 1000;
    }
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void conn_table_free(struct conn_table *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->entries);
    free(t);
}

/* Shut e down for reason; the caller holds the lock. */
static void cut(struct conn_table *t, struct conn_entry *e, enum conn_close_reason reason)
{
    /* The socket stays open (libmicrohttpd closes it after the closed
     * notification, which cannot run while we hold the lock); its thread
     * wakes up on end-of-stream and closes the connection. */
    (void)shutdown(e->fd, SHUT_RDWR);
    e->evicted = true;
    t->evicted_pending++;
    t->closed[reason]++;
}

static bool before_request(enum conn_state st)
{
    return st == CONN_NEW || st == CONN_HELLO || st == CONN_HEADERS;
}

/*
 * The connection to shut down to make room for newest (see conntable.h), or
 * NULL when only newest itself could go. Lock held. Tiers, lowest first:
 * 0 stalled before its request, 1 idle, 2 young without a byte seen,
 * 3 young and progressing (handshake or headers under way).
 */
static struct conn_entry *pick_victim(struct conn_table *t, const struct conn_entry *newest,
                                      uint64_t now_ms)
{
    struct conn_entry *best = NULL;
    unsigned best_tier = 4;
    uint64_t best_since = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct conn_entry *e = t->entries[i];
        if (e->evicted || e == newest)
            continue;
        enum conn_state st;
        uint64_t since;
        unpack(e, &st, &since);
        unsigned tier;
        if (before_request(st))
            tier = now_ms >= since && now_ms - since >= t->lim.grace_ms ? 0
                   : st == CONN_NEW                                     ? 2
                                                                        : 3;
        else if (st == CONN_IDLE)
            tier = 1;
        else
            continue; /* a request is being read or answered */
        if (!best || tier < best_tier || (tier == best_tier && since < best_since)) {
            best = e;
            best_tier = tier;
            best_since = since;
        }
    }
    return best;
}

bool conn_table_add(struct conn_table *t, struct conn_entry *e, int fd, uint64_t now_ms)
{
    atomic_init(&e->word, pack(CONN_NEW, now_ms));
    bool kept = true;
    pthread_mutex_lock(&t->lock);
    e->fd = fd;
    e->evicted = false;
    e->in_table = true;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->entries = xrealloc(t->entries, t->cap * sizeof *t->entries);
    }
    e->index = t->n;
    t->entries[t->n++] = e;
    if (t->n - t->evicted_pending > t->lim.soft_limit) {
        struct conn_entry *victim = pick_victim(t, e, now_ms);
        if (!victim)
            victim = e; /* every other connection is in a request */
        kept = victim != e;
        cut(t, victim, kept ? CONN_CLOSE_EVICTED : CONN_CLOSE_REFUSED);
    }
    pthread_mutex_unlock(&t->lock);
    return kept;
}

void conn_table_remove(struct conn_table *t, struct conn_entry *e)
{
    pthread_mutex_lock(&t->lock);
    if (e->in_table) {
        size_t i = e->index;
        t->entries[i] = t->entries[--t->n];
        t->entries[i]->index = i;
        if (e->evicted)
            t->evicted_pending--;
        e->in_table = false;
    }
    pthread_mutex_unlock(&t->lock);
}

void conn_entry_advance(struct conn_entry *e, enum conn_state to, uint64_t now_ms)
{
    enum conn_state st;
    uint64_t since;
    unpack(e, &st, &since); /* only this connection's thread writes the word */
    switch (to) {
    case CONN_HELLO:
        if (st != CONN_NEW)
            return;
        break;
    case CONN_HEADERS:
        if (st == CONN_IDLE)
            since = now_ms;
        else if (st != CONN_NEW && st != CONN_HELLO)
            return;
        break;
    case CONN_NEW:
    case CONN_BODY:
    case CONN_ANSWERING:
    case CONN_IDLE:
    case CONN_STATE_COUNT:
        since = now_ms;
        break;
    }
    atomic_store_explicit(&e->word, pack(to, since), memory_order_release);
}

enum conn_state conn_entry_state(const struct conn_entry *e)
{
    enum conn_state st;
    uint64_t since;
    unpack(e, &st, &since);
    return st;
}

unsigned conn_table_sweep(struct conn_table *t, uint64_t now_ms)
{
    unsigned n = 0;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n; i++) {
        struct conn_entry *e = t->entries[i];
        if (e->evicted)
            continue;
        enum conn_state st;
        uint64_t since;
        unpack(e, &st, &since);
        uint64_t limit;
        enum conn_close_reason reason;
        if (before_request(st)) {
            limit = t->lim.header_timeout_ms;
            reason = CONN_CLOSE_HEADER_TIMEOUT;
        } else if (st == CONN_BODY) {
            limit = t->lim.read_timeout_ms;
            reason = CONN_CLOSE_READ_TIMEOUT;
        } else if (st == CONN_IDLE) {
            limit = t->lim.idle_timeout_ms;
            reason = CONN_CLOSE_IDLE_TIMEOUT;
        } else {
            continue; /* answering: libmicrohttpd's inactivity timeout covers a stuck reader */
        }
        if (limit && now_ms >= since && now_ms - since >= limit) {
            cut(t, e, reason);
            n++;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return n;
}

void conn_table_record_close(struct conn_table *t, enum conn_close_reason reason)
{
    if ((unsigned)reason >= CONN_CLOSE_COUNT)
        return;
    pthread_mutex_lock(&t->lock);
    t->closed[reason]++;
    pthread_mutex_unlock(&t->lock);
}

unsigned conn_table_count(struct conn_table *t)
{
    pthread_mutex_lock(&t->lock);
    unsigned n = (unsigned)t->n;
    pthread_mutex_unlock(&t->lock);
    return n;
}

void conn_table_closed(struct conn_table *t, uint64_t out[CONN_CLOSE_COUNT])
{
    pthread_mutex_lock(&t->lock);
    for (unsigned i = 0; i < CONN_CLOSE_COUNT; i++)
        out[i] = t->closed[i];
    pthread_mutex_unlock(&t->lock);
}
