#include "core/inputs.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/match.h"
#include "core/mesh.h"
#include "core/meshmetric.h"
#include "util/xalloc.h"

void policy_set_init(struct policy_set *s)
{
    s->meshmetrics = json_array();
    s->meshes = json_array();
    s->namespaces = json_array();
    s->services = json_array();
    s->memo = NULL;
    s->index = NULL;
}

void policy_set_cleanup(struct policy_set *s)
{
    json_decref(s->meshmetrics);
    json_decref(s->meshes);
    json_decref(s->namespaces);
    json_decref(s->services);
    memo_free(s->memo);
    match_index_free(s->index);
    s->index = NULL;
    s->meshmetrics = s->meshes = s->namespaces = s->services = NULL;
    s->memo = NULL;
}

static const char *str_at(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(obj, a);
    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

enum mm_status policy_set_add(struct policy_set *s, json_t *obj, bool *ignored,
                              struct mm_error *err)
{
    enum mm_status st = MM_OK;
    if (ignored)
        *ignored = false;
    if (!json_is_object(obj)) {
        st = mm_error_set(err, MM_ERR_TYPE, "", "document is a %s, not an object",
                          json_is_array(obj) ? "list" : "scalar");
        goto out;
    }
    const char *kind = str_at(obj, "kind", NULL);
    if (!kind) {
        st = mm_error_set(err, MM_ERR_TYPE, "kind", "missing or not a string");
        goto out;
    }
    if (!strcmp(kind, "List") || (strlen(kind) > 4 && !strcmp(kind + strlen(kind) - 4, "List"))) {
        const json_t *items = json_object_get(obj, "items");
        if (!json_is_array(items)) {
            st = mm_error_set(err, MM_ERR_TYPE, "items", "a %s needs an items array", kind);
            goto out;
        }
        size_t i;
        json_t *item;
        json_array_foreach(items, i, item) {
            /* Typed lists (MeshMetricList) may omit kind on items. */
            if (json_is_object(item) && !json_object_get(item, "kind") && strcmp(kind, "List"))
                json_object_set_new(item, "kind",
                                    json_stringn(kind, strlen(kind) - 4));
            bool ign = false;
            st = policy_set_add(s, json_incref(item), &ign, err);
            if (st) {
                if (err) { /* prefix the item's path, truncating long paths */
                    char *field = xasprintf("items[%zu].%s", i, err->field);
                    snprintf(err->field, sizeof err->field, "%.*s", (int)sizeof err->field - 1,
                             field);
                    free(field);
                }
                goto out;
            }
            if (ign && ignored)
                *ignored = true;
        }
        goto out;
    }
    json_t *target = NULL;
    if (!strcmp(kind, "MeshMetric"))
        target = s->meshmetrics;
    else if (!strcmp(kind, "Mesh"))
        target = s->meshes;
    else if (!strcmp(kind, "Namespace"))
        target = s->namespaces;
    else if (!strcmp(kind, "Service"))
        target = s->services;
    if (!target) {
        if (ignored)
            *ignored = true;
        goto out;
    }
    const char *name = str_at(obj, "metadata", "name");
    if (!name || !*name) {
        st = mm_error_set(err, MM_ERR_INVALID, "metadata.name", "a %s needs metadata.name",
                          kind);
        goto out;
    }
    if (target == s->meshmetrics)
        meshmetric_default(obj);
    else if (target == s->meshes)
        mesh_default(obj);
    json_array_append(target, obj);
out:
    json_decref(obj);
    return st;
}

static const json_t *find_named(const json_t *arr, const char *name)
{
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o) {
        const char *n = str_at(o, "metadata", "name");
        if (n && !strcmp(n, name))
            return o;
    }
    return NULL;
}

const json_t *policy_set_namespace(const struct policy_set *s, const char *name)
{
    return name ? find_named(s->namespaces, name) : NULL;
}

const json_t *policy_set_mesh(const struct policy_set *s, const char *name)
{
    return name ? find_named(s->meshes, name) : NULL;
}

struct policy_snapshot {
    atomic_int refs;
    struct policy_set set;
};

struct policy_snapshot *policy_snapshot_create(struct policy_set *s)
{
    struct policy_snapshot *snap = xcalloc(1, sizeof *snap);
    atomic_init(&snap->refs, 1);
    snap->set = *s;
    if (!snap->set.memo)
        snap->set.memo = memo_create(4096);
    if (!snap->set.index)
        snap->set.index = match_index_create(snap->set.meshmetrics);
    policy_set_init(s);
    return snap;
}

struct policy_snapshot *policy_snapshot_ref(struct policy_snapshot *snap)
{
    atomic_fetch_add(&snap->refs, 1);
    return snap;
}

void policy_snapshot_unref(struct policy_snapshot *snap)
{
    if (!snap)
        return;
    if (atomic_fetch_sub(&snap->refs, 1) == 1) {
        policy_set_cleanup(&snap->set);
        free(snap);
    }
}

const struct policy_set *policy_snapshot_set(const struct policy_snapshot *snap)
{
    return &snap->set;
}
