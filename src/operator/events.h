/*
 * Kubernetes Events from the operator, as client-go's tools/events records
 * them (events.k8s.io/v1): the first occurrence of an event creates an Event
 * named <regarding>.<hex timestamp>; an isomorphic one (same regarding
 * object, reason, action and reporting controller) turns it into a series —
 * series.count 2 and lastObservedTime are patched at once, later counts are
 * flushed periodically — and a series not observed for six minutes is
 * finished, so the next occurrence creates a new Event.
 *
 * Recording never blocks the caller on the API server: events go to a
 * bounded queue that a thread sends (a full queue drops the oldest and
 * counts it). Only the leader records (a callback tells).
 */
#ifndef MM_OPERATOR_EVENTS_H
#define MM_OPERATOR_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "k8s/client.h"

/* The object an Event is about (ObjectReference). Strings are borrowed. */
struct event_ref {
    const char *api_version; /* "v1", "kuma.io/v1alpha1" */
    const char *kind;        /* "Pod", "MeshMetric" */
    const char *namespace;   /* "" for a cluster-scoped object */
    const char *name;
    const char *uid;           /* may be NULL */
    const char *resource_version; /* may be NULL */
};

struct events_config {
    const char *controller; /* reportingController, e.g. "meshmetric.kuma.io/operator" */
    const char *instance;   /* reportingInstance: the pod name (<= 128 characters) */
    bool (*enabled)(void *ctx); /* e.g. "am I the leader"; NULL: always */
    void *enabled_ctx;
    unsigned queue_max;     /* pending events kept; 0 = 1000 */
    unsigned flush_ms;      /* how often grown series are patched; 0 = 30000 */
    unsigned finish_ms;     /* a series unobserved this long is finished; 0 = 360000 (6 min) */
};

struct events;

/* Start the sender thread. c is borrowed (must outlive the recorder); cfg strings are copied. */
struct events *events_create(struct k8s_client *c, const struct events_config *cfg);
/* Send what is queued (at most timeout_ms), stop the thread, free. NULL is a no-op. */
void events_free(struct events *e, unsigned timeout_ms);

/*
 * Record an event: type "Normal" or "Warning", reason and action CamelCase
 * (<= 128 characters), the note printf-formatted and cut to 1 kB.
 */
void events_record(struct events *e, const struct event_ref *regarding, const char *type,
                   const char *reason, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

struct events_stats {
    uint64_t created, patched, dropped, failed;
    unsigned queued;
};
void events_stats(struct events *e, struct events_stats *out);

/* Wait until the queue is empty (for tests); false after timeout_ms. */
bool events_drain(struct events *e, unsigned timeout_ms);

#endif
