/* The frozen policy view and its builder (see view.h). */
#include "core/view.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/memo.h"
#include "util/xalloc.h"

#define MEMO_SLOTS 4096

/* The MeshMetrics a pod of (mesh, namespace) can match: the system namespace's and its own. */
struct candidates {
    const char *mesh;      /* borrowed from a policy */
    const char *namespace; /* borrowed; NULL = "any other namespace" (system policies only) */
    const struct policy **items;
    uint32_t *index;
    size_t n;
};

/* The Services of one namespace, sorted by name. */
struct svc_group {
    const json_t **items; /* references owned by the view */
    size_t n;
};

struct policy_view {
    atomic_int refs;
    uint64_t generation;
    char *system_namespace;
    char *zone;
    struct policy **policies; /* MeshMetrics by (mesh, namespace, name) */
    size_t n_policies;
    struct policy **meshes; /* by name */
    size_t n_meshes;
    struct candidates *cands; /* by (mesh, namespace), NULL namespace first in its mesh */
    size_t n_cands;
    json_t *cand_index; /* "mesh\nnamespace" (or "mesh\n" for other namespaces) -> cands index */
    json_t *namespaces; /* name -> Namespace */
    json_t *services;   /* namespace -> index into svc_groups */
    struct svc_group *svc_groups;
    size_t n_svc_groups;
    json_t *owners; /* "Kind/namespace/name" -> object */
    size_t n_services;
    struct view_rejection *rejections;
    size_t n_rejections;
    struct view_note *notes;
    size_t n_notes;
    struct memo *memo;
    bool no_memo;
};

struct view_builder {
    struct policy_view *v; /* filled in as we go */
    json_t *policies;      /* "kind/namespace/name" -> index+1 into list (dedupe, later wins) */
    struct policy **list;
    size_t n, cap;
    json_t *services; /* "namespace/name" -> Service */
};

static const char *meta_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

static struct policy_view *view_alloc(const struct view_options *opt)
{
    struct policy_view *v = xcalloc(1, sizeof *v);
    atomic_init(&v->refs, 1);
    v->system_namespace =
        xstrdup(opt && opt->system_namespace ? opt->system_namespace : "kuma-system");
    v->zone = xstrdup(opt && opt->zone ? opt->zone : "default");
    v->no_memo = opt && opt->no_memo;
    v->cand_index = json_object();
    v->namespaces = json_object();
    v->services = json_object();
    v->owners = json_object();
    return v;
}

struct view_builder *view_builder_create(const struct view_options *opt)
{
    struct view_builder *b = xcalloc(1, sizeof *b);
    b->v = view_alloc(opt);
    b->policies = json_object();
    b->services = json_object();
    return b;
}

static void view_free(struct policy_view *v)
{
    for (size_t i = 0; i < v->n_policies; i++)
        policy_unref(v->policies[i]);
    free(v->policies);
    for (size_t i = 0; i < v->n_meshes; i++)
        policy_unref(v->meshes[i]);
    free(v->meshes);
    for (size_t i = 0; i < v->n_cands; i++) {
        free(v->cands[i].items);
        free(v->cands[i].index);
    }
    free(v->cands);
    json_decref(v->cand_index);
    json_decref(v->namespaces);
    json_decref(v->services);
    for (size_t i = 0; i < v->n_svc_groups; i++) {
        for (size_t k = 0; k < v->svc_groups[i].n; k++)
            json_decref((json_t *)v->svc_groups[i].items[k]);
        free(v->svc_groups[i].items);
    }
    free(v->svc_groups);
    json_decref(v->owners);
    for (size_t i = 0; i < v->n_rejections; i++) {
        free(v->rejections[i].kind);
        free(v->rejections[i].id);
        free(v->rejections[i].errors);
    }
    free(v->rejections);
    for (size_t i = 0; i < v->n_notes; i++) {
        free(v->notes[i].id);
        free(v->notes[i].text);
    }
    free(v->notes);
    memo_free(v->memo);
    free(v->system_namespace);
    free(v->zone);
    free(v);
}

void view_builder_free(struct view_builder *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        policy_unref(b->list[i]);
    free(b->list);
    json_decref(b->policies);
    json_decref(b->services);
    if (b->v)
        view_free(b->v);
    free(b);
}

void view_builder_add_policy(struct view_builder *b, struct policy *p)
{
    char *key = xasprintf("%s/%s/%s", p->kind == POLICY_MESH ? "Mesh" : "MeshMetric", p->namespace,
                          p->name);
    json_int_t at = json_integer_value(json_object_get(b->policies, key));
    if (at > 0) { /* the same object twice: the later one wins */
        policy_unref(b->list[at - 1]);
        b->list[at - 1] = p;
    } else {
        if (b->n == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 16;
            b->list = xrealloc(b->list, b->cap * sizeof *b->list);
        }
        b->list[b->n++] = p;
        json_object_set_new(b->policies, key, json_integer((json_int_t)b->n));
    }
    free(key);
}

void view_builder_reject(struct view_builder *b, const char *kind, const char *id,
                         const char *errors)
{
    struct policy_view *v = b->v;
    v->rejections = xrealloc(v->rejections, (v->n_rejections + 1) * sizeof *v->rejections);
    struct view_rejection *r = &v->rejections[v->n_rejections++];
    r->kind = xstrdup(kind ? kind : "");
    r->id = xstrdup(id ? id : "");
    r->errors = xstrdup(errors ? errors : "");
}

void view_builder_add_object(struct view_builder *b, const char *kind, json_t *obj)
{
    const char *name = meta_str(obj, "name");
    const char *ns = meta_str(obj, "namespace");
    if (!name)
        name = "";
    if (!ns || !*ns)
        ns = "default";
    if (!strcmp(kind, "Namespace")) {
        json_object_set(b->v->namespaces, name, obj);
    } else if (!strcmp(kind, "Service")) {
        char *key = xasprintf("%s/%s", ns, name);
        json_object_set(b->services, key, obj);
        free(key);
    } else if (!strcmp(kind, "ReplicaSet") || !strcmp(kind, "Job")) {
        char *key = xasprintf("%s/%s/%s", kind, ns, name);
        json_object_set(b->v->owners, key, obj);
        free(key);
    }
}

static bool kept_kind(const char *kind)
{
    return !strcmp(kind, "Namespace") || !strcmp(kind, "Service") || !strcmp(kind, "ReplicaSet") ||
           !strcmp(kind, "Job");
}

static enum mm_status add_one(struct view_builder *b, const json_t *obj, bool *ignored,
                              struct mm_error *err)
{
    if (!json_is_object(obj))
        return mm_error_set(err, MM_ERR_TYPE, "", "the document is a %s, not an object",
                            json_is_array(obj) ? "list" : "scalar");
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    if (!kind)
        return mm_error_set(err, MM_ERR_TYPE, "kind", "missing or not a string");
    size_t klen = strlen(kind);
    if (klen >= 4 && !strcmp(kind + klen - 4, "List")) {
        const json_t *items = json_object_get(obj, "items");
        if (!json_is_array(items))
            return mm_error_set(err, MM_ERR_TYPE, "items", "a %s needs an items array", kind);
        size_t i;
        json_t *item;
        json_array_foreach(items, i, item)
        {
            json_t *it = json_incref(item);
            /* Typed lists (MeshMetricList) may omit kind on items. */
            if (json_is_object(item) && !json_object_get(item, "kind") && klen > 4) {
                json_decref(it);
                it = json_copy(item);
                json_object_set_new(it, "kind", json_stringn(kind, klen - 4));
            }
            bool ign = false;
            enum mm_status st = add_one(b, it, &ign, err);
            json_decref(it);
            if (st) {
                if (err) { /* prefix the item's path, truncating long paths */
                    char *field =
                        xasprintf("items[%zu]%s%s", i, err->field[0] ? "." : "", err->field);
                    snprintf(err->field, sizeof err->field, "%s", field);
                    free(field);
                }
                return st;
            }
            if (ign && ignored)
                *ignored = true;
        }
        return MM_OK;
    }
    bool is_policy = policy_kind_supported(kind);
    if (!is_policy && !kept_kind(kind)) {
        if (ignored)
            *ignored = true;
        return MM_OK;
    }
    const char *name = meta_str(obj, "name");
    if (!name || !*name)
        return mm_error_set(err, MM_ERR_TYPE, "metadata.name", "a %s needs metadata.name", kind);
    if (!is_policy) {
        view_builder_add_object(b, kind, (json_t *)obj); /* takes its own reference */
        return MM_OK;
    }
    struct violations errs;
    violations_init(&errs);
    struct policy *p = NULL;
    struct policy_load_options lo = {.system_namespace = b->v->system_namespace,
                                     .zone = b->v->zone};
    enum mm_status st = policy_load(obj, &lo, &p, &errs, NULL, err);
    if (st == MM_OK) {
        view_builder_add_policy(b, p);
    } else if (st == MM_ERR_INVALID) {
        const char *ns = meta_str(obj, "namespace");
        char *id = !strcmp(kind, "Mesh")
                       ? xasprintf("Mesh/%s", name)
                       : xasprintf("%s/%s", ns && *ns ? ns : b->v->system_namespace, name);
        char *joined = violations_join(&errs);
        view_builder_reject(b, kind, id, joined);
        free(joined);
        free(id);
        st = MM_OK;
        mm_error_clear(err);
    }
    violations_cleanup(&errs);
    return st;
}

enum mm_status view_builder_add(struct view_builder *b, const json_t *obj, bool *ignored,
                                struct mm_error *err)
{
    if (ignored)
        *ignored = false;
    return add_one(b, obj, ignored, err);
}

static int cmp_policies(const void *a, const void *b)
{
    const struct policy *pa = *(struct policy *const *)a, *pb = *(struct policy *const *)b;
    int d = strcmp(pa->mesh, pb->mesh);
    if (!d)
        d = strcmp(pa->namespace, pb->namespace);
    return d ? d : strcmp(pa->name, pb->name);
}

static int cmp_meshes(const void *a, const void *b)
{
    return strcmp((*(struct policy *const *)a)->name, (*(struct policy *const *)b)->name);
}

static int cmp_service_names(const void *a, const void *b)
{
    const char *na = meta_str(*(json_t *const *)a, "name");
    const char *nb = meta_str(*(json_t *const *)b, "name");
    return strcmp(na ? na : "", nb ? nb : "");
}

static struct candidates *cands_push(struct policy_view *v, const char *mesh, const char *ns)
{
    v->cands = xrealloc(v->cands, (v->n_cands + 1) * sizeof *v->cands);
    struct candidates *c = &v->cands[v->n_cands++];
    memset(c, 0, sizeof *c);
    c->mesh = mesh;
    c->namespace = ns;
    char *key = xasprintf("%s\n%s", mesh, ns ? ns : "");
    json_object_set_new(v->cand_index, key, json_integer((json_int_t)(v->n_cands - 1)));
    free(key);
    return c;
}

static void cands_add(struct candidates *c, const struct policy *p, size_t index)
{
    c->items = xrealloc(c->items, (c->n + 1) * sizeof *c->items);
    c->index = xrealloc(c->index, (c->n + 1) * sizeof *c->index);
    c->items[c->n] = p;
    c->index[c->n] = (uint32_t)index;
    c->n++;
}

/* Group the sorted MeshMetrics into candidate lists per (mesh, namespace). */
static void build_candidates(struct policy_view *v)
{
    const char *sys = v->system_namespace;
    for (size_t start = 0; start < v->n_policies;) {
        const char *mesh = v->policies[start]->mesh;
        size_t end = start;
        while (end < v->n_policies && !strcmp(v->policies[end]->mesh, mesh))
            end++;
        (void)cands_push(v, mesh, NULL);
        size_t any_at = v->n_cands - 1;
        for (size_t i = start; i < end; i++) {
            const char *ns = v->policies[i]->namespace;
            if (!*ns || !strcmp(ns, sys))
                cands_add(&v->cands[any_at], v->policies[i], i);
        }
        for (size_t i = start; i < end;) {
            const char *ns = v->policies[i]->namespace;
            size_t j = i;
            while (j < end && !strcmp(v->policies[j]->namespace, ns))
                j++;
            if (*ns && strcmp(ns, sys)) {
                struct candidates *c = cands_push(v, mesh, ns);
                struct candidates *base = &v->cands[any_at];
                for (size_t k = 0; k < base->n; k++)
                    cands_add(c, base->items[k], base->index[k]);
                for (size_t k = i; k < j; k++)
                    cands_add(c, v->policies[k], k);
            }
            i = j;
        }
        start = end;
    }
}

struct policy_view *view_builder_finish(struct view_builder *b, uint64_t generation)
{
    struct policy_view *v = b->v;
    v->generation = generation;
    for (size_t i = 0; i < b->n; i++) {
        struct policy *p = b->list[i];
        if (p->kind == POLICY_MESH) {
            v->meshes = xrealloc(v->meshes, (v->n_meshes + 1) * sizeof *v->meshes);
            v->meshes[v->n_meshes++] = p;
        } else {
            v->policies = xrealloc(v->policies, (v->n_policies + 1) * sizeof *v->policies);
            v->policies[v->n_policies++] = p;
        }
    }
    b->n = 0;
    if (v->n_policies > 1)
        qsort(v->policies, v->n_policies, sizeof *v->policies, cmp_policies);
    /* A zone-origin policy stamped with another zone selects no proxy of this zone. */
    for (size_t i = 0; i < v->n_policies; i++) {
        const struct policy *p = v->policies[i];
        if (!p->labels.zone || !strcmp(p->labels.zone, v->zone) ||
            (p->labels.origin && strcmp(p->labels.origin, "zone")))
            continue;
        v->notes = xrealloc(v->notes, (v->n_notes + 1) * sizeof *v->notes);
        v->notes[v->n_notes].id = xstrdup(p->id);
        v->notes[v->n_notes].text =
            xasprintf("it carries kuma.io/zone: %s but this zone is \"%s\" (--zone), so it "
                      "selects no data plane proxy here; set --zone to the name of Kuma's zone",
                      p->labels.zone, v->zone);
        v->n_notes++;
    }
    if (v->n_meshes > 1)
        qsort(v->meshes, v->n_meshes, sizeof *v->meshes, cmp_meshes);
    build_candidates(v);

    const char *key;
    json_t *svc;
    json_object_foreach(b->services, key, svc)
    {
        const char *ns = meta_str(svc, "namespace");
        if (!ns || !*ns)
            ns = "default";
        json_t *at = json_object_get(v->services, ns);
        if (!at) {
            v->svc_groups = xrealloc(v->svc_groups, (v->n_svc_groups + 1) * sizeof *v->svc_groups);
            memset(&v->svc_groups[v->n_svc_groups], 0, sizeof *v->svc_groups);
            at = json_integer((json_int_t)v->n_svc_groups++);
            json_object_set_new(v->services, ns, at);
        }
        struct svc_group *g = &v->svc_groups[json_integer_value(at)];
        g->items = xrealloc(g->items, (g->n + 1) * sizeof *g->items);
        g->items[g->n++] = json_incref(svc);
        v->n_services++;
    }
    for (size_t i = 0; i < v->n_svc_groups; i++)
        if (v->svc_groups[i].n > 1)
            qsort(v->svc_groups[i].items, v->svc_groups[i].n, sizeof *v->svc_groups[i].items,
                  cmp_service_names);
    v->memo = v->no_memo ? NULL : memo_create(MEMO_SLOTS);
    b->v = NULL;
    view_builder_free(b);
    return v;
}

struct policy_view *view_empty(const struct view_options *opt)
{
    return view_builder_finish(view_builder_create(opt), 0);
}

struct policy_view *view_ref(struct policy_view *v)
{
    atomic_fetch_add(&v->refs, 1);
    return v;
}

void view_unref(struct policy_view *v)
{
    if (v && atomic_fetch_sub(&v->refs, 1) == 1)
        view_free(v);
}

uint64_t view_generation(const struct policy_view *v)
{
    return v->generation;
}

const char *view_system_namespace(const struct policy_view *v)
{
    return v->system_namespace;
}

const char *view_zone(const struct policy_view *v)
{
    return v->zone;
}

void view_counts(const struct policy_view *v, struct view_counts *out)
{
    out->meshmetrics = v->n_policies;
    out->meshes = v->n_meshes;
    out->namespaces = json_object_size(v->namespaces);
    out->services = v->n_services;
    out->owners = json_object_size(v->owners);
    out->rejected = v->n_rejections;
}

size_t view_candidates(const struct policy_view *v, const char *mesh, const char *ns,
                       const struct policy *const **out, const uint32_t **index)
{
    *out = NULL;
    if (index)
        *index = NULL;
    if (!mesh)
        return 0;
    char *key = xasprintf("%s\n%s", mesh, ns ? ns : "");
    const json_t *at = json_object_get(v->cand_index, key);
    if (!at) { /* no policies of the pod's own namespace: the system namespace's only */
        key[strlen(mesh) + 1] = '\0';
        at = json_object_get(v->cand_index, key);
    }
    free(key);
    if (!at)
        return 0;
    const struct candidates *c = &v->cands[json_integer_value(at)];
    *out = c->items;
    if (index)
        *index = c->index;
    return c->n;
}

size_t view_policies(const struct policy_view *v, const struct policy *const **out)
{
    *out = (const struct policy *const *)v->policies;
    return v->n_policies;
}

const struct policy *view_mesh(const struct policy_view *v, const char *name)
{
    size_t lo = 0, hi = v->n_meshes;
    while (name && lo < hi) {
        size_t mid = (lo + hi) / 2;
        int d = strcmp(v->meshes[mid]->name, name);
        if (!d)
            return v->meshes[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t view_meshes(const struct policy_view *v, const struct policy *const **out)
{
    *out = (const struct policy *const *)v->meshes;
    return v->n_meshes;
}

const json_t *view_namespace(const struct policy_view *v, const char *name)
{
    return name ? json_object_get(v->namespaces, name) : NULL;
}

size_t view_services(const struct policy_view *v, const char *ns, const json_t *const **out)
{
    const json_t *at = ns ? json_object_get(v->services, ns) : NULL;
    *out = NULL;
    if (!at)
        return 0;
    const struct svc_group *g = &v->svc_groups[json_integer_value(at)];
    *out = g->items;
    return g->n;
}

const json_t *view_owner(const struct policy_view *v, const char *kind, const char *ns,
                         const char *name)
{
    if (!kind || !name)
        return NULL;
    char *key = xasprintf("%s/%s/%s", kind, ns && *ns ? ns : "default", name);
    const json_t *o = json_object_get(v->owners, key);
    free(key);
    return o;
}

size_t view_notes(const struct policy_view *v, const struct view_note **out)
{
    *out = v->notes;
    return v->n_notes;
}

size_t view_new_rejections(const struct policy_view *old, const struct policy_view *fresh,
                           size_t **idx)
{
    size_t n = 0;
    *idx = NULL;
    for (size_t i = 0; i < fresh->n_rejections; i++) {
        const struct view_rejection *r = &fresh->rejections[i];
        bool seen = false;
        for (size_t k = 0; old && k < old->n_rejections && !seen; k++)
            seen = !strcmp(r->id, old->rejections[k].id) &&
                   !strcmp(r->kind, old->rejections[k].kind) &&
                   !strcmp(r->errors, old->rejections[k].errors);
        if (!seen) {
            *idx = xrealloc(*idx, (n + 1) * sizeof **idx);
            (*idx)[n++] = i;
        }
    }
    return n;
}

size_t view_new_notes(const struct policy_view *old, const struct policy_view *fresh, size_t **idx)
{
    size_t n = 0;
    *idx = NULL;
    for (size_t i = 0; i < fresh->n_notes; i++) {
        bool seen = false;
        for (size_t k = 0; old && k < old->n_notes && !seen; k++)
            seen = !strcmp(fresh->notes[i].id, old->notes[k].id) &&
                   !strcmp(fresh->notes[i].text, old->notes[k].text);
        if (!seen) {
            *idx = xrealloc(*idx, (n + 1) * sizeof **idx);
            (*idx)[n++] = i;
        }
    }
    return n;
}

size_t view_rejections(const struct policy_view *v, const struct view_rejection **out)
{
    *out = v->rejections;
    return v->n_rejections;
}

struct memo *view_memo(const struct policy_view *v)
{
    return v->memo;
}
