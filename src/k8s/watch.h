/*
 * Watches (kubernetes-api.md 3.3): GET ...?watch=true&allowWatchBookmarks=true
 * &resourceVersion=RV&timeoutSeconds=T, answered with a chunked stream of
 * JSON objects {"type": ..., "object": {...}}, each normally followed by a
 * newline.
 *
 * The decoder finds the end of each JSON value itself (braces outside
 * strings), so it handles any split of the byte stream: several events in
 * one chunk, one event across many chunks, events with or without newlines
 * between them. Each event is capped in size.
 */
#ifndef MM_K8S_WATCH_H
#define MM_K8S_WATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "k8s/cancel.h"
#include "k8s/client.h"
#include "k8s/status.h"
#include "util/error.h"
#include "util/strbuf.h"

enum k8s_event_type {
    K8S_EVENT_ADDED,
    K8S_EVENT_MODIFIED,
    K8S_EVENT_DELETED,
    K8S_EVENT_BOOKMARK, /* only object.metadata.resourceVersion is meaningful */
    K8S_EVENT_ERROR,    /* object is a Status */
};

/* "ADDED", "MODIFIED", ... */
const char *k8s_event_type_name(enum k8s_event_type t);

struct k8s_watch_event {
    enum k8s_event_type type;
    json_t *object;               /* borrowed: valid during the callback; json_incref to keep */
    const char *resource_version; /* borrowed: object.metadata.resourceVersion, NULL if absent */
};

/* Called for each event; a non-MM_OK return stops the stream and is returned. */
typedef enum mm_status (*k8s_event_fn)(void *ctx, const struct k8s_watch_event *ev);

/* 16 MiB: larger than any object etcd stores (1.5 MiB by default). */
#define K8S_WATCH_MAX_EVENT (16u << 20)

struct k8s_watch_decoder {
    struct strbuf buf; /* the event being assembled across chunks */
    size_t max_event;
    int depth;
    bool in_string;
    bool escape;
    bool started;
    size_t events; /* events decoded so far */
};

/* Start a decoder; max_event 0 means K8S_WATCH_MAX_EVENT. */
void k8s_watch_decoder_init(struct k8s_watch_decoder *d, size_t max_event);
void k8s_watch_decoder_cleanup(struct k8s_watch_decoder *d);

/*
 * Feed the next len bytes of the stream; fn is called for every event that
 * completes. Errors (err filled, the decoder must not be fed again):
 * MM_ERR_TOO_BIG for an event over the cap, MM_ERR_PARSE for bytes that are
 * not a JSON object, an object without a known "type" or without an
 * "object" object; whatever fn returned.
 */
enum mm_status k8s_watch_decoder_feed(struct k8s_watch_decoder *d, const char *data, size_t len,
                                      k8s_event_fn fn, void *ctx, struct k8s_error *err) MM_WUR;

/* The stream ended: MM_ERR_PARSE if it ended inside an event. */
enum mm_status k8s_watch_decoder_finish(const struct k8s_watch_decoder *d,
                                        struct k8s_error *err) MM_WUR;

struct k8s_watch_opts {
    const char *resource_version; /* NULL/"": "start at most recent" with synthetic ADDED events */
    const char *label_selector;
    const char *field_selector;
    long timeout_seconds;      /* the server ends the stream after this; 0: not sent */
    bool no_bookmarks;         /* do not send allowWatchBookmarks=true */
    size_t max_event;          /* 0: K8S_WATCH_MAX_EVENT */
    long idle_timeout_s;       /* no byte for this long ends the stream (MM_OK); 0: 300 s */
    uint64_t deadline_ms;      /* k8s_clock_ms() value that ends the stream (MM_OK); 0: none */
    struct k8s_cancel *cancel; /* fired: MM_ERR_CANCELLED within ~1 s */
    void (*on_open)(void *ctx); /* once, when the server accepted the watch (2xx); may be NULL */
    void *open_ctx;
};

/*
 * Watch res in ns (NULL/"" for all namespaces or cluster scope) and hand
 * every ADDED/MODIFIED/DELETED/BOOKMARK event to fn, in order. Blocks until:
 *  - the server ends the stream (timeoutSeconds, or it closed the watch), the
 *    idle timeout or the deadline passed: MM_OK;
 *  - an ERROR event: its Status decoded into err (410 Expired/Gone:
 *    MM_ERR_EXPIRED, exactly as an HTTP 410 answer to the request is);
 *  - fn returned an error: that error;
 *  - cancel fired: MM_ERR_CANCELLED;
 *  - a non-2xx answer or a transport failure: decoded as for every call.
 * The ERROR event itself is not handed to fn.
 */
enum mm_status k8s_watch(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                         const struct k8s_watch_opts *wopts, k8s_event_fn fn, void *ctx,
                         struct k8s_error *err) MM_WUR;

#endif
