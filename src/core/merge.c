/* RFC 7396 merge with Kuma's append exception, and JSON Pointer origins. */
#include "core/merge.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

json_t *merge_copy_pruned(const json_t *v)
{
    if (json_is_object(v)) {
        json_t *out = json_object();
        const char *key;
        json_t *item;
        json_object_foreach((json_t *)v, key, item)
        {
            if (!json_is_null(item))
                json_object_set_new(out, key, merge_copy_pruned(item));
        }
        return out;
    }
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            json_array_append_new(out, merge_copy_pruned(item));
        }
        return out;
    }
    return json_deep_copy(v);
}

/* ---- JSON Pointer origins ---------------------------------------------- */

/* ptr + "/" + key with ~ and / escaped. Caller frees. */
char *merge_ptr_join(const char *ptr, const char *key)
{
    size_t extra = 0;
    for (const char *c = key; *c; c++)
        extra += *c == '~' || *c == '/';
    size_t plen = strlen(ptr), klen = strlen(key);
    char *out = xmalloc(plen + 1 + klen + extra + 1);
    char *o = out;
    memcpy(o, ptr, plen);
    o += plen;
    *o++ = '/';
    for (const char *c = key; *c; c++) {
        if (*c == '~' || *c == '/') {
            *o++ = '~';
            *o++ = *c == '~' ? '0' : '1';
        } else {
            *o++ = *c;
        }
    }
    *o = '\0';
    return out;
}

char *merge_ptr_index(const char *ptr, size_t i)
{
    return xasprintf("%s/%zu", ptr, i);
}

/* True when key is ptr or lies below it. */
bool merge_ptr_under(const char *key, const char *ptr)
{
    size_t n = strlen(ptr);
    return !strncmp(key, ptr, n) && (key[n] == '\0' || key[n] == '/');
}

/* Forget the origins of ptr and everything below it. */
void merge_origins_drop(json_t *origins, const char *ptr)
{
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(origins, tmp, key, v)
    {
        if (merge_ptr_under(key, ptr))
            json_object_del(origins, key);
    }
}

void merge_origins_set(json_t *origins, const char *ptr, const char *origin)
{
    json_object_set_new(origins, ptr, json_string(origin));
}

/* ---- RFC 7396 merge with Kuma's "append" exception ---------------------- */

static bool is_append_key(const char *key)
{
    return !strncmp(key, "append", 6);
}

/*
 * Merge patch (an object) into target (an object). With share, arrays and
 * scalars of the patch are referenced, not copied: the caller must replace the
 * result by merge_copy_pruned() of it before changing anything in place (the
 * patches are policies of a shared, immutable snapshot). When origins is non-NULL,
 * every value the patch sets is recorded under its pointer (ptr is target's
 * pointer, "" for the root) with origin src.
 */
void merge_objects(json_t *target, const json_t *patch, json_t *origins, const char *ptr,
                   const char *src, bool share)
{
    const char *key;
    json_t *pv;
    json_object_foreach((json_t *)patch, key, pv)
    {
        char *child = merge_ptr_join(ptr, key);
        json_t *tv = json_object_get(target, key);
        if (json_is_null(pv)) {
            json_object_del(target, key);
            if (origins)
                merge_origins_drop(origins, child);
        } else if (json_is_object(pv)) {
            bool created = !json_is_object(tv);
            if (created) {
                if (origins)
                    merge_origins_drop(origins, child);
                tv = json_object();
                json_object_set_new(target, key, tv);
            }
            merge_objects(tv, pv, origins, child, src, share);
            if (origins && created && json_object_size(tv) == 0)
                merge_origins_set(origins, child, src);
        } else if (is_append_key(key) && json_is_array(pv)) {
            /* Kuma's appendSlicesPrefix: concatenate, lowest priority first. */
            if (!json_is_array(tv)) {
                if (origins)
                    merge_origins_drop(origins, child);
                tv = json_array();
                json_object_set_new(target, key, tv);
                if (origins && json_array_size(pv) == 0)
                    merge_origins_set(origins, child, src);
            }
            size_t i;
            json_t *item;
            json_array_foreach(pv, i, item)
            {
                if (origins) {
                    char *ip = merge_ptr_index(child, json_array_size(tv));
                    merge_origins_set(origins, ip, src);
                    free(ip);
                }
                json_array_append_new(tv, share ? json_incref(item) : merge_copy_pruned(item));
            }
        } else {
            if (origins) {
                if (tv) /* nothing is recorded below a key the target lacks */
                    merge_origins_drop(origins, child);
                merge_origins_set(origins, child, src);
            }
            json_object_set_new(target, key, share ? json_incref(pv) : merge_copy_pruned(pv));
        }
        free(child);
    }
}

void merge_patch(json_t *target, const json_t *patch)
{
    if (json_is_object(target) && json_is_object(patch))
        merge_objects(target, patch, NULL, "", NULL, false);
}
