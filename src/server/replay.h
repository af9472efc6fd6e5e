/*
 * Replay of /mutate answers for repeated pods. The pods of one workload reach
 * the webhook as byte-identical AdmissionReviews except for request.uid (a
 * ReplicaSet scaling up sends N of them), and the answer depends only on the
 * review and the policy snapshot. So the answer to a review is kept, keyed by
 * its bytes without the uid, and replayed with the new uid spliced in: no
 * JSON parse, no engine run. Entries belong to one snapshot; the first use of
 * a newer snapshot empties the cache. Thread-safe (one short mutex).
 */
#ifndef MM_SERVER_REPLAY_H
#define MM_SERVER_REPLAY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/source.h"
#include "core/view.h"
#include "server/admit.h"

struct replay;

/* A cache of up to `slots` answers for bodies of at most max_body bytes. */
struct replay *replay_create(size_t slots, size_t max_body);
void replay_free(struct replay *r); /* NULL is a no-op */

/*
 * The answer for body under snap, with body's uid token (body[uid_off,
 * uid_off + uid_len), quotes included, from admission_scan_uid) spliced in.
 * On a hit fills out (body, status 200, log fields, patched, dry_run) and
 * returns true; *n_warnings gets the answer's warning count.
 */
bool replay_get(struct replay *r, const struct policy_view *snap, const char *body,
                size_t len, size_t uid_off, size_t uid_len, struct admit_reply *out,
                size_t *n_warnings);

/*
 * Remember reply (a 200 answer whose JSON starts with the response envelope
 * and the uid equal to the body's token) for body under snap. Answers of
 * any other shape are not kept.
 */
void replay_put(struct replay *r, struct policy_view *snap, const char *body, size_t len,
                size_t uid_off, size_t uid_len, const struct admit_reply *reply,
                size_t n_warnings);

#endif
