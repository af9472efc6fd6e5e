/* Streaming list decoding (see liststream.h). */
#include "k8s/liststream.h"

#include <string.h>

#define DEFAULT_MAX_ITEM (4u << 20)

void k8s_list_decoder_init(struct k8s_list_decoder *d, size_t max_item, k8s_list_item_fn item,
                           void *ctx)
{
    memset(d, 0, sizeof *d);
    d->item = item;
    d->ctx = ctx;
    d->max_item = max_item ? max_item : DEFAULT_MAX_ITEM;
    strbuf_init(&d->buf, d->max_item);
}

void k8s_list_decoder_cleanup(struct k8s_list_decoder *d)
{
    json_decref(d->metadata);
    d->metadata = NULL;
    strbuf_cleanup(&d->buf);
}

static enum mm_status fail(struct mm_error *err, enum mm_status st, const char *what)
{
    return mm_error_set(err, st, "", "list answer: %s", what);
}

/* A captured value is complete: parse and dispatch it. */
static enum mm_status dispatch(struct k8s_list_decoder *d, struct mm_error *err)
{
    json_error_t jerr;
    json_t *v = json_loadb(strbuf_str(&d->buf), d->buf.len, 0, &jerr);
    int kind = d->capture;
    d->capture = 0;
    d->buf.len = 0;
    if (d->buf.data)
        d->buf.data[0] = '\0';
    if (!v)
        return mm_error_set(err, MM_ERR_PARSE, "", "list answer: %s %s: %s",
                            kind == 1 ? "metadata" : "item", "is not valid JSON", jerr.text);
    if (kind == 1) {
        json_decref(d->metadata);
        d->metadata = v;
        return MM_OK;
    }
    d->items++;
    enum mm_status st = d->item ? d->item(d->ctx, v) : MM_OK;
    json_decref(v);
    if (st)
        return mm_error_set(err, st, "", "list answer: stopped by the item handler");
    return MM_OK;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

enum mm_status k8s_list_decoder_feed(struct k8s_list_decoder *d, const char *data, size_t len,
                                     struct mm_error *err)
{
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        if (d->done) {
            if (!is_space(ch))
                return fail(err, MM_ERR_PARSE, "data after the end of the object");
            continue;
        }
        if (d->capture && !strbuf_append(&d->buf, &ch, 1))
            return mm_error_set(err, MM_ERR_TOO_BIG, "",
                                "list answer: an item is over the %zu-byte limit", d->max_item);
        if (d->in_string) {
            if (d->escape) {
                d->escape = false;
            } else if (ch == '\\') {
                d->escape = true;
            } else if (ch == '"') {
                d->in_string = false;
                if (d->collecting_key) {
                    d->collecting_key = false;
                    d->key_items = d->key_len == 5 && !memcmp(d->key, "items", 5);
                    d->key_metadata = d->key_len == 8 && !memcmp(d->key, "metadata", 8);
                }
            } else if (d->collecting_key) {
                if (d->key_len < sizeof d->key)
                    d->key[d->key_len] = ch;
                d->key_len++;
            }
            continue;
        }
        if (is_space(ch))
            continue;
        if (!d->started) {
            if (ch != '{')
                return fail(err, MM_ERR_PARSE, "not a JSON object");
            d->started = true;
            d->depth = 1;
            d->expect_key = true;
            continue;
        }
        switch (ch) {
        case '"':
            d->in_string = true;
            if (d->depth == 1 && d->expect_key) {
                d->collecting_key = true;
                d->key_len = 0;
            } else if (d->depth == 1 && d->pending_value) {
                d->pending_value = false; /* a string value at the top level */
            }
            break;
        case ':':
            if (d->depth == 1) {
                d->expect_key = false;
                d->pending_value = true;
            }
            break;
        case ',':
            if (d->depth == 1) {
                d->expect_key = true;
                d->pending_value = false;
            }
            break;
        case '{':
        case '[':
            if (d->depth == 1 && d->pending_value) {
                d->pending_value = false;
                if (d->key_items && ch == '[') {
                    d->in_items = true;
                } else if (d->key_metadata && ch == '{') {
                    d->capture = 1;
                    d->capture_depth = 1;
                    if (!strbuf_append(&d->buf, &ch, 1))
                        return fail(err, MM_ERR_TOO_BIG, "metadata over the limit");
                }
            } else if (d->in_items && d->depth == 2 && ch == '{' && !d->capture) {
                d->capture = 2;
                d->capture_depth = 2;
                if (!strbuf_append(&d->buf, &ch, 1))
                    return fail(err, MM_ERR_TOO_BIG, "item over the limit");
            }
            if (d->depth >= 512)
                return fail(err, MM_ERR_TOO_BIG, "nested deeper than 512");
            d->depth++;
            break;
        case '}':
        case ']':
            d->depth--;
            if (d->depth < 0)
                return fail(err, MM_ERR_PARSE, "unbalanced brackets");
            if (d->capture && d->depth == d->capture_depth) {
                enum mm_status st = dispatch(d, err);
                if (st)
                    return st;
            }
            if (d->in_items && d->depth == 1)
                d->in_items = false;
            if (d->depth == 0)
                d->done = true;
            break;
        default:
            if (d->depth == 1 && d->pending_value)
                d->pending_value = false; /* a scalar value at the top level */
            break;
        }
    }
    return MM_OK;
}

enum mm_status k8s_list_decoder_finish(struct k8s_list_decoder *d, struct mm_error *err)
{
    if (!d->done)
        return fail(err, MM_ERR_PARSE, d->started ? "the body ended early" : "empty body");
    return MM_OK;
}
