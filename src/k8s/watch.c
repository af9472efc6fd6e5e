#include "k8s/watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/request.h"
#include "util/log.h"
#include "util/xalloc.h"

/* A decoder buffer that grew past this is released after its event instead of kept. */
#define KEEP_BUFFER_MAX (1u << 20)

const char *k8s_event_type_name(enum k8s_event_type t)
{
    /* clang-format off */
    switch (t) {
    case K8S_EVENT_ADDED: return "ADDED";
    case K8S_EVENT_MODIFIED: return "MODIFIED";
    case K8S_EVENT_DELETED: return "DELETED";
    case K8S_EVENT_BOOKMARK: return "BOOKMARK";
    case K8S_EVENT_ERROR: return "ERROR";
    }
    /* clang-format on */
    return "?";
}

void k8s_watch_decoder_init(struct k8s_watch_decoder *d, size_t max_event)
{
    memset(d, 0, sizeof *d);
    d->max_event = max_event ? max_event : K8S_WATCH_MAX_EVENT;
    strbuf_init(&d->buf, d->max_event);
}

void k8s_watch_decoder_cleanup(struct k8s_watch_decoder *d)
{
    strbuf_cleanup(&d->buf);
}

static void reset_event(struct k8s_watch_decoder *d)
{
    d->started = false;
    d->depth = 0;
    d->in_string = false;
    d->escape = false;
    if (d->buf.cap > KEEP_BUFFER_MAX) {
        strbuf_cleanup(&d->buf);
    } else if (d->buf.data) {
        d->buf.len = 0;
        d->buf.data[0] = '\0';
    }
}

/* A printable excerpt of bad input for messages. */
static void excerpt(const char *data, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < outlen && i < 40; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
    }
    out[o < outlen ? o : outlen - 1] = '\0';
}

static enum mm_status deliver(struct k8s_watch_decoder *d, const char *p, size_t n, k8s_event_fn fn,
                              void *ctx, struct k8s_error *err)
{
    json_error_t jerr;
    json_t *ev = json_loadb(p, n, 0, &jerr);
    enum mm_status rc = MM_OK;
    char ex[200];
    if (!ev) {
        excerpt(p, n, ex, sizeof ex);
        rc = k8s_error_set(err, MM_ERR_PARSE, "watch event %zu is not JSON: %s (\"%s\")",
                           d->events + 1, jerr.text, ex);
        goto done;
    }
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    struct k8s_watch_event e = {0};
    if (!type) {
        rc = k8s_error_set(err, MM_ERR_PARSE, "watch event %zu has no type", d->events + 1);
        goto done;
    }
    if (!strcmp(type, "ADDED"))
        e.type = K8S_EVENT_ADDED;
    else if (!strcmp(type, "MODIFIED"))
        e.type = K8S_EVENT_MODIFIED;
    else if (!strcmp(type, "DELETED"))
        e.type = K8S_EVENT_DELETED;
    else if (!strcmp(type, "BOOKMARK"))
        e.type = K8S_EVENT_BOOKMARK;
    else if (!strcmp(type, "ERROR"))
        e.type = K8S_EVENT_ERROR;
    else {
        excerpt(type, strlen(type), ex, sizeof ex);
        rc = k8s_error_set(err, MM_ERR_PARSE, "watch event %zu has the unknown type \"%s\"",
                           d->events + 1, ex);
        goto done;
    }
    if (!json_is_object(obj)) {
        rc = k8s_error_set(err, MM_ERR_PARSE, "watch event %zu (%s) has no object", d->events + 1,
                           type);
        goto done;
    }
    e.object = obj;
    e.resource_version =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    d->events++;
    rc = fn(ctx, &e);
done:
    json_decref(ev);
    return rc;
}

enum mm_status k8s_watch_decoder_feed(struct k8s_watch_decoder *d, const char *data, size_t len,
                                      k8s_event_fn fn, void *ctx, struct k8s_error *err)
{
    size_t start = 0; /* where the current event's bytes begin in data */
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        if (!d->started) {
            if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
                continue;
            if (ch != '{') {
                char ex[200];
                excerpt(data + i, len - i, ex, sizeof ex);
                return k8s_error_set(
                    err, MM_ERR_PARSE,
                    "watch stream: expected a JSON object after event %zu, got \"%s\"", d->events,
                    ex);
            }
            d->started = true;
            d->depth = 1;
            start = i;
            continue;
        }
        if (d->buf.len + (i - start + 1) > d->max_event)
            return k8s_error_set(err, MM_ERR_TOO_BIG,
                                 "watch event %zu is larger than the limit of %zu bytes",
                                 d->events + 1, d->max_event);
        if (d->in_string) {
            if (d->escape)
                d->escape = false;
            else if (ch == '\\')
                d->escape = true;
            else if (ch == '"')
                d->in_string = false;
            continue;
        }
        if (ch == '"') {
            d->in_string = true;
        } else if (ch == '{' || ch == '[') {
            d->depth++;
        } else if (ch == '}' || ch == ']') {
            if (--d->depth > 0)
                continue;
            enum mm_status rc;
            if (d->buf.len == 0) {
                rc = deliver(d, data + start, i - start + 1, fn, ctx, err);
            } else {
                if (!strbuf_append(&d->buf, data + start, i - start + 1))
                    return k8s_error_set(err, MM_ERR_TOO_BIG,
                                         "watch event %zu is larger than the limit of %zu bytes",
                                         d->events + 1, d->max_event);
                rc = deliver(d, d->buf.data, d->buf.len, fn, ctx, err);
            }
            reset_event(d);
            if (rc != MM_OK)
                return rc;
        }
    }
    if (d->started && !strbuf_append(&d->buf, data + start, len - start))
        return k8s_error_set(err, MM_ERR_TOO_BIG,
                             "watch event %zu is larger than the limit of %zu bytes", d->events + 1,
                             d->max_event);
    return MM_OK;
}

enum mm_status k8s_watch_decoder_finish(const struct k8s_watch_decoder *d, struct k8s_error *err)
{
    if (d->started)
        return k8s_error_set(err, MM_ERR_PARSE,
                             "watch stream ended inside event %zu (%zu bytes received)",
                             d->events + 1, d->buf.len);
    return MM_OK;
}

/* ---- the watch call ---- */

struct watch_ctx {
    struct k8s_watch_decoder dec;
    k8s_event_fn fn;
    void *fn_ctx;
    struct k8s_error *err;
    const char *what;
};

static enum mm_status on_event(void *ctx, const struct k8s_watch_event *ev)
{
    struct watch_ctx *w = ctx;
    if (ev->type == K8S_EVENT_ERROR) {
        enum mm_status rc = k8s_status_from_object(ev->object, w->what, w->err);
        LOG(LOG_DEBUG, "k8s: %s: ERROR event: %s", w->what, w->err->base.message);
        return rc;
    }
    return w->fn(w->fn_ctx, ev);
}

static enum mm_status on_bytes(void *ctx, const char *data, size_t len)
{
    struct watch_ctx *w = ctx;
    return k8s_watch_decoder_feed(&w->dec, data, len, on_event, w, w->err);
}

enum mm_status k8s_watch(struct k8s_client *c, const struct k8s_resource *res, const char *ns,
                         const struct k8s_watch_opts *wopts, k8s_event_fn fn, void *ctx,
                         struct k8s_error *err)
{
    struct k8s_watch_opts o = {0};
    struct k8s_error local = K8S_ERROR_INIT;
    struct watch_ctx w;
    struct strbuf q;
    char num[32];
    char *what = NULL;
    enum mm_status rc;
    bool ended_early = false;

    if (wopts)
        o = *wopts;
    if (!err)
        err = &local;
    k8s_error_cleanup(err);
    char *p = k8s_path(res, ns, NULL, NULL);
    strbuf_init(&q, 64u << 10);
    bool ok = strbuf_puts(&q, p) && k8s_query_add(&q, "watch", "true");
    free(p);
    if (!o.no_bookmarks)
        ok = ok && k8s_query_add(&q, "allowWatchBookmarks", "true");
    if (o.resource_version && o.resource_version[0])
        ok = ok && k8s_query_add(&q, "resourceVersion", o.resource_version);
    if (o.label_selector && o.label_selector[0])
        ok = ok && k8s_query_add(&q, "labelSelector", o.label_selector);
    if (o.field_selector && o.field_selector[0])
        ok = ok && k8s_query_add(&q, "fieldSelector", o.field_selector);
    if (o.timeout_seconds > 0) {
        snprintf(num, sizeof num, "%ld", o.timeout_seconds);
        ok = ok && k8s_query_add(&q, "timeoutSeconds", num);
    }
    if (!ok) {
        rc = k8s_error_set(err, MM_ERR_TOO_BIG, "watch %s: the query is too long", res->plural);
        strbuf_cleanup(&q);
        goto done;
    }
    what = xasprintf("GET %.280s", q.data);
    memset(&w, 0, sizeof w);
    k8s_watch_decoder_init(&w.dec, o.max_event);
    w.fn = fn;
    w.fn_ctx = ctx;
    w.err = err;
    w.what = what;
    struct k8s_stream_opts so = {
        .cancel = o.cancel,
        .deadline_ms = o.deadline_ms,
        .idle_timeout_s = o.idle_timeout_s,
        /* The server ends the stream after timeoutSeconds; this only guards against one that
         * keeps trickling bytes past it. */
        .max_time_ms = o.timeout_seconds > 0 ? (o.timeout_seconds + 60) * 1000 : 0,
        .on_open = o.on_open,
        .open_ctx = o.open_ctx,
    };
    rc = k8s_client_stream(c, q.data, &so, on_bytes, &w, &ended_early, err);
    if (rc == MM_OK && !ended_early)
        rc = k8s_watch_decoder_finish(&w.dec, err);
    k8s_watch_decoder_cleanup(&w.dec);
    strbuf_cleanup(&q);
done:
    free(what);
    k8s_error_cleanup(&local);
    return rc;
}
