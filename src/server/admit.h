/*
 * What the webhook answers to one admission body, independent of HTTP:
 * /mutate (pods: the engine's JSON Patch, never a denial) and /validate
 * (MeshMetric and Mesh: Kuma's validation, 422 Invalid on violations).
 * The HTTP layer (http.c) checks method, path, type and size first.
 */
#ifndef MM_SERVER_ADMIT_H
#define MM_SERVER_ADMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/engine.h"
#include "core/source.h"
#include "core/view.h"
#include "server/webmetrics.h"

struct replay;

struct admit_env {
    const struct engine_config *engine; /* patch options */
    const char *system_namespace;       /* decides the targetRef kinds /validate allows */
    struct policy_source source;
    struct webmetrics *metrics; /* may be NULL */
    struct replay *replay;      /* answers of repeated pods (server/replay.h); may be NULL */
};

enum admit_log {
    ADMIT_LOG_NONE = 0, /* an ordinary answer */
    ADMIT_LOG_INFO,     /* worth a line: a denial, a dry run... */
    ADMIT_LOG_WARN,     /* rejected request (4xx) or a pod admitted despite a problem */
    ADMIT_LOG_ERROR,    /* the engine failed on a pod */
};

struct admit_reply {
    unsigned status; /* HTTP status: 200, or 400 for a body that is no AdmissionReview */
    char *body;      /* JSON, owned */
    enum admit_log log;
    char uid[128];     /* request uid when known, for logs */
    char reason[1400]; /* one line for the log when log != NONE */
    char object[300];  /* "<kind> <namespace>/<name>" when known */
    bool patched;      /* a non-empty patch was returned */
    bool dry_run;
    enum webhook_outcome outcome; /* for meshmetric_webhook_admissions_total */
};

void admit_reply_init(struct admit_reply *r);
void admit_reply_cleanup(struct admit_reply *r);

/* Answer a /mutate body (borrowed). Always fills out. */
void admit_mutate(const struct admit_env *env, const char *body, size_t len,
                  struct admit_reply *out);

/* Answer a /validate body (borrowed). Always fills out. */
void admit_validate(const struct admit_env *env, const char *body, size_t len,
                    struct admit_reply *out);

#endif
