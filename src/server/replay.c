#include "server/replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* Every answer admission_encode writes starts like this, then the uid token. */
#define ENVELOPE "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"response\":{\"uid\":"

struct entry {
    uint64_t hash;
    char *key; /* body without the uid token */
    size_t key_len;
    size_t uid_off; /* where the uid token was in the body */
    char *tail;     /* the answer after the uid token */
    struct admit_reply meta; /* log, reason, object, patched, dry_run (body unused) */
    size_t n_warnings;
};

struct replay {
    pthread_mutex_t lock;
    size_t n;
    size_t max_body;
    struct entry **slots;
    struct policy_view *snap; /* the snapshot the entries belong to (a reference) */
};

static uint64_t hash_parts(const char *a, size_t alen, const char *b, size_t blen)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < alen; i++)
        h = (h ^ (unsigned char)a[i]) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (size_t i = 0; i < blen; i++)
        h = (h ^ (unsigned char)b[i]) * 1099511628211ull;
    return h;
}

struct replay *replay_create(size_t slots, size_t max_body)
{
    struct replay *r = xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->n = slots ? slots : 1;
    r->max_body = max_body;
    r->slots = xcalloc(r->n, sizeof *r->slots);
    return r;
}

static void entry_free(struct entry *e)
{
    if (!e)
        return;
    free(e->key);
    free(e->tail);
    free(e);
}

static void flush(struct replay *r)
{
    for (size_t i = 0; i < r->n; i++) {
        entry_free(r->slots[i]);
        r->slots[i] = NULL;
    }
}

void replay_free(struct replay *r)
{
    if (!r)
        return;
    flush(r);
    view_unref(r->snap);
    free(r->slots);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static bool same_key(const struct entry *e, uint64_t h, const char *body, size_t len,
                     size_t uid_off, size_t uid_len)
{
    size_t tail = len - uid_off - uid_len;
    return e->hash == h && e->uid_off == uid_off && e->key_len == uid_off + tail &&
           !memcmp(e->key, body, uid_off) && !memcmp(e->key + uid_off, body + uid_off + uid_len, tail);
}

bool replay_get(struct replay *r, const struct policy_view *snap, const char *body,
                size_t len, size_t uid_off, size_t uid_len, struct admit_reply *out,
                size_t *n_warnings)
{
    if (len > r->max_body || uid_off + uid_len > len)
        return false;
    size_t tail_len = len - uid_off - uid_len;
    uint64_t h = hash_parts(body, uid_off, body + uid_off + uid_len, tail_len);
    bool hit = false;
    pthread_mutex_lock(&r->lock);
    const struct entry *e = r->slots[h % r->n];
    if (r->snap == snap && e && same_key(e, h, body, len, uid_off, uid_len)) {
        out->body = xasprintf(ENVELOPE "%.*s%s", (int)uid_len, body + uid_off, e->tail);
        out->status = 200;
        out->log = e->meta.log;
        snprintf(out->reason, sizeof out->reason, "%s", e->meta.reason);
        snprintf(out->object, sizeof out->object, "%s", e->meta.object);
        snprintf(out->uid, sizeof out->uid, "%.*s", (int)uid_len - 2, body + uid_off + 1);
        out->patched = e->meta.patched;
        out->dry_run = e->meta.dry_run;
        *n_warnings = e->n_warnings;
        hit = true;
    }
    pthread_mutex_unlock(&r->lock);
    return hit;
}

void replay_put(struct replay *r, struct policy_view *snap, const char *body, size_t len,
                size_t uid_off, size_t uid_len, const struct admit_reply *reply,
                size_t n_warnings)
{
    size_t env_len = strlen(ENVELOPE);
    if (len > r->max_body || uid_off + uid_len > len || reply->status != 200 || !reply->body ||
        strncmp(reply->body, ENVELOPE, env_len) ||
        strncmp(reply->body + env_len, body + uid_off, uid_len))
        return; /* not the shape we can splice a uid into */
    struct entry *e = xcalloc(1, sizeof *e);
    size_t tail_len = len - uid_off - uid_len;
    e->key_len = uid_off + tail_len;
    e->key = xmalloc(e->key_len ? e->key_len : 1);
    memcpy(e->key, body, uid_off);
    memcpy(e->key + uid_off, body + uid_off + uid_len, tail_len);
    e->hash = hash_parts(body, uid_off, body + uid_off + uid_len, tail_len);
    e->uid_off = uid_off;
    e->tail = xstrdup(reply->body + env_len + uid_len);
    e->meta = *reply;
    e->meta.body = NULL;
    e->n_warnings = n_warnings;
    pthread_mutex_lock(&r->lock);
    if (r->snap != snap) { /* policies changed: everything cached is stale */
        flush(r);
        view_unref(r->snap);
        r->snap = view_ref(snap);
    }
    struct entry **slot = &r->slots[e->hash % r->n];
    entry_free(*slot);
    *slot = e;
    pthread_mutex_unlock(&r->lock);
}
