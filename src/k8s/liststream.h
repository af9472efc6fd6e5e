/*
 * A list answer ({"kind":"PodList","metadata":{...},"items":[{...},...]})
 * decoded as it arrives: each item is parsed on its own and handed to a
 * callback, so a 10,000-pod list never exists as one JSON tree (or even as
 * one buffer): memory stays at about one item. The decoder is a byte-level
 * scanner that tracks strings, escapes and nesting; it captures the
 * top-level "metadata" object and each object of the top-level "items"
 * array, and skips everything else. Any split of the byte stream works.
 */
#ifndef MM_K8S_LISTSTREAM_H
#define MM_K8S_LISTSTREAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"
#include "util/strbuf.h"

/* One item (borrowed for the call). A non-MM_OK return stops the decoder with that status. */
typedef enum mm_status (*k8s_list_item_fn)(void *ctx, json_t *item);

struct k8s_list_decoder {
    k8s_list_item_fn item;
    void *ctx;
    size_t max_item;   /* bytes one item may take (its capture buffer's cap) */
    json_t *metadata;  /* the list's metadata, once seen (owned) */
    size_t items;      /* items delivered */
    /* scanner state */
    int depth;
    bool in_string, escape, started, done;
    bool expect_key;    /* at depth 1, the next string is a key */
    bool pending_value; /* at depth 1, a key was read and its value has not begun */
    bool in_items;      /* inside the top-level "items" array */
    bool key_items, key_metadata; /* the key just read */
    char key[16];
    size_t key_len;
    bool collecting_key;
    int capture;        /* 0: none, 1: metadata, 2: an item */
    int capture_depth;  /* depth the captured value's closing bracket returns to */
    struct strbuf buf;
};

/* item is called for every item; max_item 0 = 4 MiB. */
void k8s_list_decoder_init(struct k8s_list_decoder *d, size_t max_item, k8s_list_item_fn item,
                           void *ctx);
void k8s_list_decoder_cleanup(struct k8s_list_decoder *d);

/*
 * Feed the next bytes. MM_ERR_PARSE for malformed JSON or a body that is not
 * an object, MM_ERR_TOO_BIG for an item over the cap, or the callback's
 * status; err says which (may be NULL).
 */
enum mm_status k8s_list_decoder_feed(struct k8s_list_decoder *d, const char *data, size_t len,
                                     struct mm_error *err) MM_WUR;

/* The body ended: MM_OK when it was one complete object, else MM_ERR_PARSE. */
enum mm_status k8s_list_decoder_finish(struct k8s_list_decoder *d, struct mm_error *err) MM_WUR;

#endif
