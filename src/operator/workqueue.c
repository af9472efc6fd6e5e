/* A de-duplicating, delaying, rate-limited work queue (see workqueue.h). */
#include "operator/workqueue.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/xalloc.h"

#define NOT_WAITING SIZE_MAX

struct item {
    struct item *chain; /* hash chain */
    uint32_t hash;
    char *key;
    struct item *next; /* FIFO link while queued */
    bool dirty;        /* needs processing (client-go's dirty set) */
    bool queued;       /* in the FIFO */
    bool processing;
    size_t heap_pos;   /* position in the delay heap, or NOT_WAITING */
    uint64_t ready_ms; /* when waiting: the monotonic time it is due */
    unsigned failures; /* the per-key limiter's count */
};

struct workqueue {
    char *name;
    struct workqueue_options opt;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    bool shutdown;

    struct item **buckets; /* key -> item; an item lives while it has any state */
    size_t nb, n;

    struct item *head, *tail; /* FIFO of ready keys */
    size_t depth;
    size_t processing;

    struct item **heap; /* min-heap by ready_ms */
    size_t heap_n, heap_cap;

    double tokens; /* the bucket */
    uint64_t tokens_at_ms;

    uint64_t adds, retries;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void workqueue_options_init(struct workqueue_options *o)
{
    memset(o, 0, sizeof *o);
    o->base_delay_ms = 5;
    o->max_delay_ms = 1000000;
    o->qps = 10;
    o->burst = 100;
}

struct workqueue *workqueue_create(const struct workqueue_options *opt)
{
    struct workqueue *q = xcalloc(1, sizeof *q);
    workqueue_options_init(&q->opt);
    if (opt)
        q->opt = *opt;
    q->name = xstrdup(opt && opt->name ? opt->name : "workqueue");
    q->opt.name = q->name;
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &attr);
    pthread_condattr_destroy(&attr);
    q->nb = 64;
    q->buckets = xcalloc(q->nb, sizeof *q->buckets);
    q->tokens = (double)q->opt.burst;
    q->tokens_at_ms = now_ms();
    return q;
}

void workqueue_free(struct workqueue *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->nb; i++) {
        struct item *it = q->buckets[i];
        while (it) {
            struct item *next = it->chain;
            free(it->key);
            free(it);
            it = next;
        }
    }
    free(q->buckets);
    free(q->heap);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    free(q->name);
    free(q);
}

/* ---- items (under the lock) ---------------------------------------------------------- */

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static struct item *find(struct workqueue *q, const char *key, uint32_t h)
{
    for (struct item *it = q->buckets[h & (q->nb - 1)]; it; it = it->chain)
        if (it->hash == h && !strcmp(it->key, key))
            return it;
    return NULL;
}

static struct item *get_item(struct workqueue *q, const char *key)
{
    uint32_t h = hash_str(key);
    struct item *it = find(q, key, h);
    if (it)
        return it;
    if (q->n >= q->nb) {
        size_t nb = q->nb * 2;
        struct item **b = xcalloc(nb, sizeof *b);
        for (size_t i = 0; i < q->nb; i++) {
            struct item *x = q->buckets[i];
            while (x) {
                struct item *next = x->chain;
                x->chain = b[x->hash & (nb - 1)];
                b[x->hash & (nb - 1)] = x;
                x = next;
            }
        }
        free(q->buckets);
        q->buckets = b;
        q->nb = nb;
    }
    it = xcalloc(1, sizeof *it);
    it->key = xstrdup(key);
    it->hash = h;
    it->heap_pos = NOT_WAITING;
    it->chain = q->buckets[h & (q->nb - 1)];
    q->buckets[h & (q->nb - 1)] = it;
    q->n++;
    return it;
}

/* Free it when nothing refers to it any more. */
static void maybe_release(struct workqueue *q, struct item *it)
{
    if (it->dirty || it->queued || it->processing || it->heap_pos != NOT_WAITING || it->failures)
        return;
    for (struct item **at = &q->buckets[it->hash & (q->nb - 1)]; *at; at = &(*at)->chain) {
        if (*at == it) {
            *at = it->chain;
            q->n--;
            break;
        }
    }
    free(it->key);
    free(it);
}

static void push(struct workqueue *q, struct item *it)
{
    it->queued = true;
    it->next = NULL;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->depth++;
}

static struct item *pop(struct workqueue *q)
{
    struct item *it = q->head;
    if (!it)
        return NULL;
    q->head = it->next;
    if (!q->head)
        q->tail = NULL;
    it->next = NULL;
    it->queued = false;
    q->depth--;
    return it;
}

/* client-go Add: dirty once; queued unless being processed. True when something changed. */
static bool add_locked(struct workqueue *q, struct item *it)
{
    if (it->dirty)
        return false;
    it->dirty = true;
    if (!it->processing)
        push(q, it);
    pthread_cond_signal(&q->cond);
    return true;
}

/* ---- the delay heap (under the lock) ---------------------------------------------------- */

static void heap_swap(struct workqueue *q, size_t a, size_t b)
{
    struct item *t = q->heap[a];
    q->heap[a] = q->heap[b];
    q->heap[b] = t;
    q->heap[a]->heap_pos = a;
    q->heap[b]->heap_pos = b;
}

static void heap_up(struct workqueue *q, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (q->heap[parent]->ready_ms <= q->heap[i]->ready_ms)
            break;
        heap_swap(q, parent, i);
        i = parent;
    }
}

static void heap_down(struct workqueue *q, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->heap_n && q->heap[l]->ready_ms < q->heap[m]->ready_ms)
            m = l;
        if (r < q->heap_n && q->heap[r]->ready_ms < q->heap[m]->ready_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(q, i, m);
        i = m;
    }
}

static void heap_remove_top(struct workqueue *q)
{
    struct item *top = q->heap[0];
    q->heap_n--;
    if (q->heap_n) {
        q->heap[0] = q->heap[q->heap_n];
        q->heap[0]->heap_pos = 0;
        heap_down(q, 0);
    }
    top->heap_pos = NOT_WAITING;
}

/* Move every due key from the heap to the queue. */
static void promote(struct workqueue *q, uint64_t now)
{
    while (q->heap_n && q->heap[0]->ready_ms <= now) {
        struct item *it = q->heap[0];
        heap_remove_top(q);
        add_locked(q, it);
    }
}

/* ---- adding ---------------------------------------------------------------------------- */

void workqueue_add(struct workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    if (!q->shutdown) {
        struct item *it = get_item(q, key);
        if (add_locked(q, it))
            q->adds++;
        maybe_release(q, it);
    }
    pthread_mutex_unlock(&q->lock);
}

void workqueue_add_after(struct workqueue *q, const char *key, uint64_t delay_ms)
{
    if (delay_ms == 0) {
        workqueue_add(q, key);
        return;
    }
    pthread_mutex_lock(&q->lock);
    if (!q->shutdown) {
        struct item *it = get_item(q, key);
        uint64_t ready = now_ms() + delay_ms;
        if (it->heap_pos != NOT_WAITING) {
            if (ready < it->ready_ms) { /* keep the earlier time (client-go waitingForQueue) */
                it->ready_ms = ready;
                heap_up(q, it->heap_pos);
            }
        } else {
            if (q->heap_n == q->heap_cap) {
                q->heap_cap = q->heap_cap ? q->heap_cap * 2 : 16;
                q->heap = xrealloc(q->heap, q->heap_cap * sizeof *q->heap);
            }
            it->ready_ms = ready;
            it->heap_pos = q->heap_n;
            q->heap[q->heap_n++] = it;
            heap_up(q, it->heap_pos);
            q->adds++;
        }
        pthread_cond_broadcast(&q->cond); /* a getter may need to wait less now */
    }
    pthread_mutex_unlock(&q->lock);
}

/* Under the lock. */
static uint64_t when_locked(struct workqueue *q, struct item *it)
{
    /* ItemExponentialFailureRateLimiter */
    double backoff = (double)q->opt.base_delay_ms * pow(2.0, (double)it->failures);
    it->failures++;
    uint64_t item_ms =
        backoff >= (double)q->opt.max_delay_ms ? q->opt.max_delay_ms : (uint64_t)backoff;
    /* BucketRateLimiter: rate.Limiter.Reserve().Delay() */
    uint64_t bucket_ms = 0;
    if (q->opt.qps > 0) {
        uint64_t now = now_ms();
        q->tokens += (double)(now - q->tokens_at_ms) / 1000.0 * q->opt.qps;
        if (q->tokens > (double)q->opt.burst)
            q->tokens = (double)q->opt.burst;
        q->tokens_at_ms = now;
        q->tokens -= 1.0;
        if (q->tokens < 0)
            bucket_ms = (uint64_t)ceil(-q->tokens / q->opt.qps * 1000.0);
    }
    return item_ms > bucket_ms ? item_ms : bucket_ms;
}

uint64_t workqueue_when(struct workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    uint64_t d = when_locked(q, get_item(q, key));
    pthread_mutex_unlock(&q->lock);
    return d;
}

void workqueue_add_rate_limited(struct workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    uint64_t d = 0;
    bool down = q->shutdown;
    if (!down) {
        d = when_locked(q, get_item(q, key));
        q->retries++;
    }
    pthread_mutex_unlock(&q->lock);
    if (!down)
        workqueue_add_after(q, key, d);
}

void workqueue_forget(struct workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    struct item *it = find(q, key, hash_str(key));
    if (it) {
        it->failures = 0;
        maybe_release(q, it);
    }
    pthread_mutex_unlock(&q->lock);
}

unsigned workqueue_num_requeues(struct workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    struct item *it = find(q, key, hash_str(key));
    unsigned n = it ? it->failures : 0;
    pthread_mutex_unlock(&q->lock);
    return n;
}

/* ---- taking ------------------------------------------------------------------------------ */

static void add_ms(struct timespec *ts, uint64_t ms)
{
    ts->tv_sec += (time_t)(ms / 1000u);
    ts->tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

enum mm_status workqueue_get(struct workqueue *q, long timeout_ms, char **key)
{
    *key = NULL;
    uint64_t start = now_ms();
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms;
    enum mm_status st = MM_OK;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        if (q->shutdown) {
            st = MM_ERR_CANCELLED;
            break;
        }
        uint64_t now = now_ms();
        promote(q, now);
        struct item *it = pop(q);
        if (it) {
            it->processing = true;
            it->dirty = false;
            q->processing++;
            *key = xstrdup(it->key);
            break;
        }
        if (now >= deadline) {
            st = MM_ERR_RETRY;
            break;
        }
        uint64_t wake = deadline;
        if (q->heap_n && q->heap[0]->ready_ms < wake)
            wake = q->heap[0]->ready_ms;
        if (wake == UINT64_MAX) {
            pthread_cond_wait(&q->cond, &q->lock);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            add_ms(&ts, wake > now ? wake - now : 0);
            int rc = pthread_cond_timedwait(&q->cond, &q->lock, &ts);
            (void)rc; /* loop: re-check everything */
        }
    }
    pthread_mutex_unlock(&q->lock);
    return st;
}

void workqueue_done(struct workqueue *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    struct item *it = find(q, key, hash_str(key));
    if (it && it->processing) {
        it->processing = false;
        q->processing--;
        if (it->dirty && !q->shutdown) {
            push(q, it);
            pthread_cond_signal(&q->cond);
        }
        maybe_release(q, it);
    }
    pthread_mutex_unlock(&q->lock);
}

void workqueue_shutdown(struct workqueue *q)
{
    pthread_mutex_lock(&q->lock);
    q->shutdown = true;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

bool workqueue_shutting_down(struct workqueue *q)
{
    pthread_mutex_lock(&q->lock);
    bool down = q->shutdown;
    pthread_mutex_unlock(&q->lock);
    return down;
}

size_t workqueue_len(struct workqueue *q)
{
    pthread_mutex_lock(&q->lock);
    promote(q, now_ms());
    size_t n = q->depth;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void workqueue_stats(struct workqueue *q, struct workqueue_stats *out)
{
    pthread_mutex_lock(&q->lock);
    promote(q, now_ms());
    out->depth = q->depth;
    out->processing = q->processing;
    out->waiting = q->heap_n;
    out->adds = q->adds;
    out->retries = q->retries;
    pthread_mutex_unlock(&q->lock);
}
