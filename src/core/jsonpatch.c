#include "core/jsonpatch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* Split a JSON Pointer into its parent and unescaped last token. */
struct pointer {
    json_t *parent;
    char *token; /* unescaped */
};

static char *unescape(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '~' && i + 1 < n && (s[i + 1] == '0' || s[i + 1] == '1')) {
            out[j++] = s[i + 1] == '0' ? '~' : '/';
            i++;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

static bool array_index(const char *tok, size_t size, bool allow_end, size_t *idx)
{
    if (allow_end && !strcmp(tok, "-")) {
        *idx = size;
        return true;
    }
    if (!*tok || (tok[0] == '0' && tok[1]) || tok[0] == '-' || tok[0] == '+')
        return false;
    for (const char *p = tok; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    errno = 0;
    unsigned long long v = strtoull(tok, NULL, 10);
    if (errno || v > (allow_end ? size : size - 1) || (!allow_end && size == 0))
        return false;
    *idx = (size_t)v;
    return true;
}

static json_t *child(json_t *v, const char *tok)
{
    if (json_is_object(v))
        return json_object_get(v, tok);
    if (json_is_array(v)) {
        size_t idx;
        if (!array_index(tok, json_array_size(v), false, &idx))
            return NULL;
        return json_array_get(v, idx);
    }
    return NULL;
}

/* Resolve path to a value (NULL when missing). "" is the root. */
static json_t *resolve(json_t *root, const char *path)
{
    if (!*path)
        return root;
    if (*path != '/')
        return NULL;
    json_t *cur = root;
    const char *p = path + 1;
    while (cur) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char *tok = unescape(p, n);
        cur = child(cur, tok);
        free(tok);
        if (!slash)
            break;
        p = slash + 1;
    }
    return cur;
}

static bool split(json_t *root, const char *path, struct pointer *out)
{
    const char *last = strrchr(path, '/');
    if (*path != '/' || !last)
        return false;
    char *parent_path = xstrndup(path, (size_t)(last - path));
    out->parent = resolve(root, parent_path);
    free(parent_path);
    out->token = unescape(last + 1, strlen(last + 1));
    return out->parent != NULL;
}

static enum mm_status op_add(json_t **doc, const char *path, json_t *value, struct mm_error *err,
                             const char *field)
{
    if (!*path) {
        json_decref(*doc);
        *doc = value;
        return MM_OK;
    }
    struct pointer p = {0};
    enum mm_status st = MM_OK;
    if (!split(*doc, path, &p)) {
        st = mm_error_set(err, MM_ERR_INVALID, field, "path \"%s\": parent does not exist", path);
    } else if (json_is_object(p.parent)) {
        json_object_set(p.parent, p.token, value);
    } else if (json_is_array(p.parent)) {
        size_t idx;
        if (!array_index(p.token, json_array_size(p.parent), true, &idx))
            st = mm_error_set(err, MM_ERR_INVALID, field, "path \"%s\": bad array index", path);
        else
            json_array_insert(p.parent, idx, value);
    } else {
        st = mm_error_set(err, MM_ERR_INVALID, field, "path \"%s\": parent is not a container",
                          path);
    }
    free(p.token);
    json_decref(value);
    return st;
}

static enum mm_status op_remove(json_t *doc, const char *path, json_t **removed,
                                struct mm_error *err, const char *field)
{
    struct pointer p = {0};
    enum mm_status st = MM_OK;
    if (!split(doc, path, &p) || !child(p.parent, p.token)) {
        st = mm_error_set(err, MM_ERR_INVALID, field, "path \"%s\" does not exist", path);
    } else if (json_is_object(p.parent)) {
        if (removed)
            *removed = json_incref(json_object_get(p.parent, p.token));
        json_object_del(p.parent, p.token);
    } else {
        size_t idx;
        (void)array_index(p.token, json_array_size(p.parent), false, &idx);
        if (removed)
            *removed = json_incref(json_array_get(p.parent, idx));
        json_array_remove(p.parent, idx);
    }
    free(p.token);
    return st;
}

static enum mm_status apply_one(json_t **doc, const json_t *op, size_t i, struct mm_error *err)
{
    char field[32];
    snprintf(field, sizeof field, "[%zu]", i);
    const char *kind = json_string_value(json_object_get(op, "op"));
    const char *path = json_string_value(json_object_get(op, "path"));
    json_t *value = json_object_get(op, "value");
    if (!kind || !path)
        return mm_error_set(err, MM_ERR_TYPE, field, "operation needs string \"op\" and \"path\"");
    if (!strcmp(kind, "add") || !strcmp(kind, "replace") || !strcmp(kind, "test")) {
        if (!value)
            return mm_error_set(err, MM_ERR_TYPE, field, "%s needs a value", kind);
    }
    if (!strcmp(kind, "add"))
        return op_add(doc, path, json_deep_copy(value), err, field);
    if (!strcmp(kind, "remove")) {
        if (!*path)
            return mm_error_set(err, MM_ERR_INVALID, field, "cannot remove the root");
        return op_remove(*doc, path, NULL, err, field);
    }
    if (!strcmp(kind, "replace")) {
        if (!resolve(*doc, path))
            return mm_error_set(err, MM_ERR_INVALID, field, "path \"%s\" does not exist", path);
        if (*path) {
            enum mm_status st = op_remove(*doc, path, NULL, err, field);
            if (st)
                return st;
        }
        return op_add(doc, path, json_deep_copy(value), err, field);
    }
    if (!strcmp(kind, "test")) {
        json_t *cur = resolve(*doc, path);
        if (!cur || !json_equal(cur, value))
            return mm_error_set(err, MM_ERR_INVALID, field, "test of \"%s\" failed", path);
        return MM_OK;
    }
    if (!strcmp(kind, "move") || !strcmp(kind, "copy")) {
        const char *from = json_string_value(json_object_get(op, "from"));
        if (!from)
            return mm_error_set(err, MM_ERR_TYPE, field, "%s needs \"from\"", kind);
        json_t *src = resolve(*doc, from);
        if (!src)
            return mm_error_set(err, MM_ERR_INVALID, field, "from \"%s\" does not exist", from);
        if (!strcmp(kind, "copy"))
            return op_add(doc, path, json_deep_copy(src), err, field);
        size_t flen = strlen(from);
        if (!strncmp(path, from, flen) && (path[flen] == '/' || !path[flen]) && path[flen])
            return mm_error_set(err, MM_ERR_INVALID, field, "cannot move \"%s\" into itself",
                                from);
        json_t *moved = NULL;
        enum mm_status st = op_remove(*doc, from, &moved, err, field);
        if (st)
            return st;
        return op_add(doc, path, moved, err, field);
    }
    return mm_error_set(err, MM_ERR_INVALID, field, "unknown op \"%s\"", kind);
}

enum mm_status jsonpatch_apply(json_t **doc, const json_t *patch, struct mm_error *err)
{
    if (!json_is_array(patch))
        return mm_error_set(err, MM_ERR_TYPE, "", "a JSON Patch must be an array");
    json_t *work = json_deep_copy(*doc);
    size_t i;
    const json_t *op;
    json_array_foreach(patch, i, op) {
        enum mm_status st = apply_one(&work, op, i, err);
        if (st) {
            json_decref(work);
            return st;
        }
    }
    json_decref(*doc);
    *doc = work;
    return MM_OK;
}
