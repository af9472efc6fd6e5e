/*
 * Which MeshMetrics select a pod, in which order they merge, and what the
 * merged result is (kuma-metrics.md §3, §4, §6.4, §6.6). The layers and the
 * places where we differ from Kuma are described in docs/merge-order.md.
 *
 * Origins: every value in `effective` can be traced back to where it came
 * from. result.origins maps JSON Pointers to origin strings at the grain of
 * leaves and whole array elements; an array replaced whole has one entry for
 * the array. To find the origin of any value, take the longest pointer in
 * origins that is the value's pointer or a prefix of it ending at a '/'.
 */
#include "core/match.h"

#include "core/memo.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/annotations.h"
#include "core/mesh.h"
#include "core/meshmetric.h"
#include "core/podpatch.h"
#include "util/xalloc.h"

#define LABEL_MESH "kuma.io/mesh"
#define LABEL_NAMESPACE "k8s.kuma.io/namespace"
#define LABEL_PROXY_TYPE "kuma.io/proxy-type"
#define LABEL_ORIGIN "kuma.io/origin"
#define LABEL_ROLE "kuma.io/policy-role"
#define LABEL_DISPLAY_NAME "kuma.io/display-name"
#define TAG_SERVICE "kuma.io/service"
#define TAG_PROTOCOL "kuma.io/protocol"
#define TAG_SERVICE_NAME "k8s.kuma.io/service-name"
#define TAG_SERVICE_PORT "k8s.kuma.io/service-port"

#define DEFAULT_PORT 5670
#define DEFAULT_PATH "/metrics"
#define ORIGIN_DEFAULT "default"

/* ---- small JSON helpers ------------------------------------------------- */

static const char *str_at(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static const json_t *meta_of(const json_t *obj)
{
    return json_object_get(obj, "metadata");
}

static const char *label_of(const json_t *obj, const char *key)
{
    return str_at(json_object_get(meta_of(obj), "labels"), key);
}

/* The namespace a policy lives in; none (a Universal-style file) counts as the system namespace. */
static const char *policy_namespace(const json_t *policy, const char *system_namespace)
{
    const char *ns = str_at(meta_of(policy), "namespace");
    return ns && *ns ? ns : system_namespace;
}

static const char *policy_name(const json_t *policy)
{
    const char *name = str_at(meta_of(policy), "name");
    return name ? name : "";
}

/* Deep copy without the nulls inside objects (Kuma prunes them, arrays included). */
static json_t *copy_pruned(const json_t *v)
{
    if (json_is_object(v)) {
        json_t *out = json_object();
        const char *key;
        json_t *item;
        json_object_foreach((json_t *)v, key, item)
        {
            if (!json_is_null(item))
                json_object_set_new(out, key, copy_pruned(item));
        }
        return out;
    }
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            json_array_append_new(out, copy_pruned(item));
        }
        return out;
    }
    return json_deep_copy(v);
}

/* ---- JSON Pointer origins ---------------------------------------------- */

/* ptr + "/" + key with ~ and / escaped. Caller frees. */
static char *ptr_join(const char *ptr, const char *key)
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

static char *ptr_index(const char *ptr, size_t i)
{
    return xasprintf("%s/%zu", ptr, i);
}

/* True when key is ptr or lies below it. */
static bool ptr_under(const char *key, const char *ptr)
{
    size_t n = strlen(ptr);
    return !strncmp(key, ptr, n) && (key[n] == '\0' || key[n] == '/');
}

/* Forget the origins of ptr and everything below it. */
static void origins_drop(json_t *origins, const char *ptr)
{
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(origins, tmp, key, v)
    {
        if (ptr_under(key, ptr))
            json_object_del(origins, key);
    }
}

static void origins_set(json_t *origins, const char *ptr, const char *origin)
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
 * result by copy_pruned() of it before changing anything in place (the
 * patches are policies of a shared, immutable snapshot). When origins is non-NULL,
 * every value the patch sets is recorded under its pointer (ptr is target's
 * pointer, "" for the root) with origin src.
 */
static void merge_objects(json_t *target, const json_t *patch, json_t *origins, const char *ptr,
                          const char *src, bool share)
{
    const char *key;
    json_t *pv;
    json_object_foreach((json_t *)patch, key, pv)
    {
        char *child = ptr_join(ptr, key);
        json_t *tv = json_object_get(target, key);
        if (json_is_null(pv)) {
            json_object_del(target, key);
            if (origins)
                origins_drop(origins, child);
        } else if (json_is_object(pv)) {
            bool created = !json_is_object(tv);
            if (created) {
                if (origins)
                    origins_drop(origins, child);
                tv = json_object();
                json_object_set_new(target, key, tv);
            }
            merge_objects(tv, pv, origins, child, src, share);
            if (origins && created && json_object_size(tv) == 0)
                origins_set(origins, child, src);
        } else if (is_append_key(key) && json_is_array(pv)) {
            /* Kuma's appendSlicesPrefix: concatenate, lowest priority first. */
            if (!json_is_array(tv)) {
                if (origins)
                    origins_drop(origins, child);
                tv = json_array();
                json_object_set_new(target, key, tv);
                if (origins && json_array_size(pv) == 0)
                    origins_set(origins, child, src);
            }
            size_t i;
            json_t *item;
            json_array_foreach(pv, i, item)
            {
                if (origins) {
                    char *ip = ptr_index(child, json_array_size(tv));
                    origins_set(origins, ip, src);
                    free(ip);
                }
                json_array_append_new(tv, share ? json_incref(item) : copy_pruned(item));
            }
        } else {
            if (origins) {
                if (tv) /* nothing is recorded below a key the target lacks */
                    origins_drop(origins, child);
                origins_set(origins, child, src);
            }
            json_object_set_new(target, key, share ? json_incref(pv) : copy_pruned(pv));
        }
        free(child);
    }
}

void match_merge_patch(json_t *target, const json_t *patch)
{
    if (json_is_object(target) && json_is_object(patch))
        merge_objects(target, patch, NULL, "", NULL, false);
}

/* ---- the dataplane view of a pod ---------------------------------------- */

/* Copy the string-valued entries of labels (may be NULL) into out. */
static void copy_string_labels(json_t *out, const json_t *labels)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)labels, key, v)
    {
        if (json_is_string(v))
            json_object_set(out, key, v);
    }
}

/* A Service selects the pod when it has a non-empty selector and every entry equals a pod label. */
static bool service_selects(const json_t *svc, const json_t *pod_labels)
{
    const json_t *selector = json_object_get(json_object_get(svc, "spec"), "selector");
    if (!json_is_object(selector) || json_object_size(selector) == 0)
        return false;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)selector, key, v)
    {
        const char *want = json_string_value(v);
        const char *have = str_at(pod_labels, key);
        if (!want || !have || strcmp(want, have))
            return false;
    }
    return true;
}

static void add_inbounds(const json_t *svc, const char *ns, const json_t *pod_labels,
                         json_t *inbounds)
{
    const char *svc_name = str_at(meta_of(svc), "name");
    const json_t *ports = json_object_get(json_object_get(svc, "spec"), "ports");
    if (!svc_name || !json_is_array(ports))
        return;
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p)
    {
        const json_t *port = json_object_get(p, "port");
        if (!json_is_integer(port) || json_integer_value(port) < 1 ||
            json_integer_value(port) > 65535)
            continue;
        long long number = json_integer_value(port);
        const char *proto = str_at(p, "appProtocol");
        json_t *tags = json_object();
        copy_string_labels(tags, pod_labels);
        json_object_set_new(tags, TAG_SERVICE,
                            json_sprintf("%s_%s_svc_%lld", svc_name, ns, number));
        json_object_set_new(tags, LABEL_NAMESPACE, json_string(ns));
        json_object_set_new(tags, TAG_PROTOCOL, json_string(proto && *proto ? proto : "tcp"));
        json_object_set_new(tags, TAG_SERVICE_NAME, json_string(svc_name));
        json_object_set_new(tags, TAG_SERVICE_PORT, json_sprintf("%lld", number));
        json_array_append_new(inbounds, tags);
    }
}

void dataplane_from_pod(const json_t *pod, const char *namespace, const struct policy_set *set,
                        struct dataplane *out)
{
    const json_t *md = meta_of(pod);
    const json_t *labels = json_object_get(md, "labels");
    const json_t *annotations = json_object_get(md, "annotations");
    const char *name = str_at(md, "name");
    const char *ns = namespace && *namespace ? namespace : str_at(md, "namespace");
    if (!ns || !*ns)
        ns = "default";
    if (!json_is_object(labels))
        labels = NULL;
    if (!json_is_object(annotations))
        annotations = NULL;

    const json_t *ns_md = set ? meta_of(policy_set_namespace(set, ns)) : NULL;
    const char *mesh = annotations_mesh(labels, annotations, json_object_get(ns_md, "labels"),
                                        json_object_get(ns_md, "annotations"));

    memset(out, 0, sizeof *out);
    out->name = xstrdup(name ? name : "");
    out->namespace = xstrdup(ns);
    out->mesh = xstrdup(mesh);
    out->labels = json_object();
    copy_string_labels(out->labels, labels);
    json_object_set_new(out->labels, LABEL_MESH, json_string(mesh));
    json_object_set_new(out->labels, LABEL_NAMESPACE, json_string(ns));
    json_object_set_new(out->labels, LABEL_PROXY_TYPE, json_string("sidecar"));

    out->inbounds = json_array();
    size_t i;
    json_t *svc;
    json_array_foreach(set ? set->services : NULL, i, svc)
    {
        const char *svc_ns = str_at(meta_of(svc), "namespace");
        if (strcmp(svc_ns && *svc_ns ? svc_ns : "default", ns) || !service_selects(svc, labels))
            continue;
        add_inbounds(svc, ns, labels, out->inbounds);
    }
}

void dataplane_cleanup(struct dataplane *dp)
{
    free(dp->name);
    free(dp->namespace);
    free(dp->mesh);
    json_decref(dp->labels);
    json_decref(dp->inbounds);
    memset(dp, 0, sizeof *dp);
}

/* ---- selection ----------------------------------------------------------- */

/* Kuma's TagSelector.Matches: every tag present and equal, "*" matching any value. */
static bool tags_match(const json_t *selector, const json_t *tags)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)selector, key, v)
    {
        const char *want = json_string_value(v);
        const char *have = str_at(tags, key);
        if (!want || !have || (strcmp(want, "*") && strcmp(want, have)))
            return false;
    }
    return true;
}

static bool some_inbound_matches(const json_t *selector, const struct dataplane *dp)
{
    size_t i;
    json_t *tags;
    json_array_foreach(dp->inbounds, i, tags)
    {
        if (tags_match(selector, tags))
            return true;
    }
    return false;
}

/* isSupportedProxyType for a sidecar: no list, an empty list, or one that names Sidecar. */
static bool sidecar_allowed(const json_t *tr)
{
    const json_t *types = json_object_get(tr, "proxyTypes");
    if (!json_is_array(types) || json_array_size(types) == 0)
        return true;
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
    {
        if (json_is_string(t) && !strcmp(json_string_value(t), "Sidecar"))
            return true;
    }
    return false;
}

/* isSelectedByLabels: a missing Dataplane label compares as "" (a Go map lookup). */
static bool dataplane_labels_match(const json_t *selector, const struct dataplane *dp)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)selector, key, v)
    {
        const char *want = json_string_value(v);
        const char *have = str_at(dp->labels, key);
        if (!want || strcmp(want, have ? have : ""))
            return false;
    }
    return true;
}

static bool dataplane_kind_selects(const json_t *tr, const json_t *policy,
                                   const struct dataplane *dp, const char *system_namespace)
{
    const char *name = str_at(tr, "name");
    const char *ns = str_at(tr, "namespace");
    const json_t *labels = json_object_get(tr, "labels");
    bool has_name = name && *name, has_ns = ns && *ns, has_labels = json_is_object(labels);
    if (!has_name && !has_ns && !has_labels)
        return true;
    if (has_name) {
        const char *want_ns = has_ns ? ns : policy_namespace(policy, system_namespace);
        if (!strcmp(name, dp->name ? dp->name : "") &&
            !strcmp(want_ns, dp->namespace ? dp->namespace : ""))
            return true;
    }
    return has_labels && dataplane_labels_match(labels, dp);
}

enum target_kind {
    TK_MESH,           /* also an absent targetRef */
    TK_MESH_SUBSET,
    TK_MESH_SERVICE,
    TK_MESH_SERVICE_SUBSET,
    TK_DATAPLANE,
    TK_NONE,           /* never selects a sidecar: MeshGateway, unknown or missing kind */
};

/* What selection needs of a targetRef, read once. */
struct target_info {
    enum target_kind kind;
    bool sidecar_ok;     /* proxyTypes allow a sidecar */
    const json_t *tr;    /* borrowed; NULL when absent */
    const json_t *tags;  /* borrowed; NULL when absent */
    const char *service; /* MeshService(Subset): the kuma.io/service value to find */
};

static void target_info_init(struct target_info *t, const json_t *tr)
{
    memset(t, 0, sizeof *t);
    if (!tr || json_is_null(tr)) {
        t->kind = TK_MESH; /* nil targetRef = {kind: Mesh} */
        t->sidecar_ok = true;
        return;
    }
    t->tr = tr;
    t->tags = json_is_object(json_object_get(tr, "tags")) ? json_object_get(tr, "tags") : NULL;
    t->sidecar_ok = sidecar_allowed(tr);
    const char *kind = str_at(tr, "kind");
    if (!kind)
        t->kind = TK_NONE;
    else if (!strcmp(kind, "Mesh"))
        t->kind = TK_MESH;
    else if (!strcmp(kind, "MeshSubset"))
        t->kind = TK_MESH_SUBSET;
    else if (!strcmp(kind, "MeshService"))
        t->kind = TK_MESH_SERVICE;
    else if (!strcmp(kind, "MeshServiceSubset"))
        t->kind = TK_MESH_SERVICE_SUBSET;
    else if (!strcmp(kind, "Dataplane"))
        t->kind = TK_DATAPLANE;
    else
        t->kind = TK_NONE; /* MeshGateway never selects a sidecar; others are not top-level */
    if (t->kind == TK_MESH_SERVICE || t->kind == TK_MESH_SERVICE_SUBSET) {
        t->service = str_at(tr, "name");
        /* Kuma lets a kuma.io/service tag of a subset override the name. */
        if (t->service && t->kind == TK_MESH_SERVICE_SUBSET && str_at(t->tags, TAG_SERVICE))
            t->service = str_at(t->tags, TAG_SERVICE);
        if (!t->service)
            t->kind = TK_NONE;
    }
}

/* Does the targetRef select dp (mesh and namespace already checked)? */
static bool target_selects(const struct target_info *t, const json_t *policy,
                           const struct dataplane *dp, const char *system_namespace)
{
    switch (t->kind) {
    case TK_MESH:
        return t->sidecar_ok;
    case TK_MESH_SUBSET:
        return t->sidecar_ok && some_inbound_matches(t->tags, dp);
    case TK_MESH_SERVICE:
    case TK_MESH_SERVICE_SUBSET: {
        bool subset = t->kind == TK_MESH_SERVICE_SUBSET;
        size_t i;
        json_t *inb;
        json_array_foreach(dp->inbounds, i, inb)
        {
            const char *have = str_at(inb, TAG_SERVICE);
            if (have && (!strcmp(t->service, "*") || !strcmp(t->service, have)) &&
                (!subset || !t->tags || tags_match(t->tags, inb)))
                return true;
        }
        return false;
    }
    case TK_DATAPLANE:
        return dataplane_kind_selects(t->tr, policy, dp, system_namespace);
    case TK_NONE:
        break;
    }
    return false;
}

/* Mesh and namespace scope: the cheap part of selection. */
static bool in_scope(const char *policy_mesh, const char *policy_ns, const struct dataplane *dp,
                     const char *system_namespace)
{
    if (strcmp(policy_mesh, dp->mesh ? dp->mesh : "default"))
        return false;
    /* System-namespace policies apply mesh-wide, the others only in their namespace. */
    const char *pns = policy_ns && *policy_ns ? policy_ns : system_namespace;
    return !strcmp(pns, system_namespace) || !strcmp(pns, dp->namespace ? dp->namespace : "");
}

bool match_selects(const json_t *policy, const struct dataplane *dp, const char *system_namespace)
{
    if (!json_is_object(policy) || !dp)
        return false;
    if (!system_namespace)
        system_namespace = "kuma-system";
    if (!in_scope(meshmetric_mesh(policy), str_at(meta_of(policy), "namespace"), dp,
                  system_namespace))
        return false;
    struct target_info t;
    target_info_init(&t, json_object_get(json_object_get(policy, "spec"), "targetRef"));
    return target_selects(&t, policy, dp, system_namespace);
}

/* ---- the per-snapshot selection index ------------------------------------ */

struct index_entry {
    const json_t *policy; /* borrowed from the set */
    const char *mesh;
    const char *namespace; /* NULL when absent */
    struct target_info target;
};

struct match_index {
    size_t n;
    struct index_entry *items;
};

struct match_index *match_index_create(const json_t *meshmetrics)
{
    struct match_index *ix = xcalloc(1, sizeof *ix);
    ix->n = json_array_size(meshmetrics);
    ix->items = xcalloc(ix->n ? ix->n : 1, sizeof *ix->items);
    for (size_t i = 0; i < ix->n; i++) {
        const json_t *p = json_array_get(meshmetrics, i);
        ix->items[i].policy = p;
        ix->items[i].mesh = meshmetric_mesh(p);
        ix->items[i].namespace = str_at(meta_of(p), "namespace");
        target_info_init(&ix->items[i].target,
                         json_object_get(json_object_get(p, "spec"), "targetRef"));
    }
    return ix;
}

void match_index_free(struct match_index *ix)
{
    if (!ix)
        return;
    free(ix->items);
    free(ix);
}

/* match_selects for policy number i of set, through the index when there is one. */
static bool set_selects(const struct policy_set *set, size_t i, const json_t *policy,
                        const struct dataplane *dp, const char *system_namespace)
{
    const struct match_index *ix = set->index;
    if (!ix || i >= ix->n || ix->items[i].policy != policy || !dp)
        return match_selects(policy, dp, system_namespace);
    const struct index_entry *e = &ix->items[i];
    return in_scope(e->mesh, e->namespace, dp, system_namespace) &&
           target_selects(&e->target, policy, dp, system_namespace);
}

/* ---- ordering (SortByTargetRef) ----------------------------------------- */

static int kind_rank(const char *kind)
{
    static const struct {
        const char *kind;
        int rank;
    } order[] = {
        {"Mesh", 1},
        {"Dataplane", 2},
        {"MeshSubset", 3},
        {"MeshGateway", 4},
        {"MeshService", 5},
        {"MeshExternalService", 6},
        {"MeshMultiZoneService", 7},
        {"MeshServiceSubset", 8},
        {"MeshHTTPRoute", 9},
    };
    for (size_t i = 0; kind && i < sizeof order / sizeof *order; i++)
        if (!strcmp(kind, order[i].kind))
            return order[i].rank;
    return 0; /* a Go map lookup of an unknown key */
}

static const json_t *target_ref(const json_t *policy)
{
    return json_object_get(json_object_get(policy, "spec"), "targetRef");
}

static const char *target_kind(const json_t *tr)
{
    if (!tr || json_is_null(tr))
        return "Mesh";
    const char *kind = str_at(tr, "kind");
    return kind ? kind : "";
}

/* CompareDataplaneKind: name beats labels, then sectionName beats none. */
static int dataplane_specificity_cmp(const json_t *a, const json_t *b)
{
    const char *an = str_at(a, "name"), *bn = str_at(b, "name");
    bool a_name = an && *an, b_name = bn && *bn;
    bool a_labels = json_is_object(json_object_get(a, "labels"));
    bool b_labels = json_is_object(json_object_get(b, "labels"));
    if (a_name && b_labels)
        return 1;
    if (a_labels && b_name)
        return -1;
    const char *as = str_at(a, "sectionName"), *bs = str_at(b, "sectionName");
    bool a_sec = as && *as, b_sec = bs && *bs;
    return (int)a_sec - (int)b_sec;
}

static int origin_rank(const json_t *policy)
{
    const char *o = label_of(policy, LABEL_ORIGIN);
    if (o && !strcmp(o, "global"))
        return 1;
    if (o && !strcmp(o, "zone"))
        return 3;
    return 2;
}

static int role_rank(const json_t *policy, const char *system_namespace)
{
    const char *role = label_of(policy, LABEL_ROLE);
    if (!role)
        return strcmp(policy_namespace(policy, system_namespace), system_namespace) ? 4 : 1;
    if (!strcmp(role, "system"))
        return 1;
    if (!strcmp(role, "producer"))
        return 2;
    if (!strcmp(role, "consumer"))
        return 3;
    if (!strcmp(role, "workload-owner"))
        return 4;
    return 0;
}

static const char *display_name(const json_t *policy)
{
    const char *dn = label_of(policy, LABEL_DISPLAY_NAME);
    return dn ? dn : policy_name(policy);
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

int match_compare(const json_t *a, const json_t *b, const char *system_namespace)
{
    if (!system_namespace)
        system_namespace = "kuma-system";
    const json_t *ta = target_ref(a), *tb = target_ref(b);
    const char *ka = target_kind(ta), *kb = target_kind(tb);
    int d = kind_rank(ka) - kind_rank(kb);
    if (d)
        return sign(d);
    if (!strcmp(ka, "Dataplane") && !strcmp(kb, "Dataplane")) {
        d = dataplane_specificity_cmp(ta, tb);
        if (d)
            return sign(d);
    }
    d = origin_rank(a) - origin_rank(b);
    if (d)
        return sign(d);
    if (!strcmp(ka, "MeshGateway")) {
        size_t na = json_object_size(json_object_get(ta, "tags"));
        size_t nb = json_object_size(json_object_get(tb, "tags"));
        if (na != nb)
            return na < nb ? -1 : 1;
    }
    d = role_rank(a, system_namespace) - role_rank(b, system_namespace);
    if (d)
        return sign(d);
    /* Inverted: the lexicographically smallest name has the highest priority. */
    return sign(strcmp(display_name(b), display_name(a)));
}

/* match_compare's keys, computed once per policy instead of per comparison. */
struct sort_key {
    const json_t *policy;
    const json_t *tr;
    const char *kind;
    int kind_rank;
    int origin_rank;
    int role_rank;
    const char *name;
};

static void sort_key_init(struct sort_key *k, const json_t *policy, const char *system_namespace)
{
    k->policy = policy;
    k->tr = target_ref(policy);
    k->kind = target_kind(k->tr);
    k->kind_rank = kind_rank(k->kind);
    k->origin_rank = origin_rank(policy);
    k->role_rank = role_rank(policy, system_namespace);
    k->name = display_name(policy);
}

/* Same order as match_compare, on precomputed keys. */
static int sort_key_cmp(const struct sort_key *a, const struct sort_key *b)
{
    int d = a->kind_rank - b->kind_rank;
    if (d)
        return sign(d);
    if (!strcmp(a->kind, "Dataplane") && !strcmp(b->kind, "Dataplane")) {
        d = dataplane_specificity_cmp(a->tr, b->tr);
        if (d)
            return sign(d);
    }
    d = a->origin_rank - b->origin_rank;
    if (d)
        return sign(d);
    if (!strcmp(a->kind, "MeshGateway")) {
        size_t na = json_object_size(json_object_get(a->tr, "tags"));
        size_t nb = json_object_size(json_object_get(b->tr, "tags"));
        if (na != nb)
            return na < nb ? -1 : 1;
    }
    d = a->role_rank - b->role_rank;
    if (d)
        return sign(d);
    return sign(strcmp(b->name, a->name));
}

/* Stable merge sort of policies by their keys. */
static void sort_policies(struct sort_key *items, struct sort_key *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t mid = n / 2;
    sort_policies(items, tmp, mid);
    sort_policies(items + mid, tmp, n - mid);
    size_t i = 0, j = mid, k = 0;
    while (i < mid && j < n) {
        if (sort_key_cmp(&items[j], &items[i]) < 0)
            tmp[k++] = items[j++];
        else
            tmp[k++] = items[i++];
    }
    while (i < mid)
        tmp[k++] = items[i++];
    while (j < n)
        tmp[k++] = items[j++];
    memcpy(items, tmp, n * sizeof *items);
}

/* ---- results -------------------------------------------------------------- */

void match_result_init(struct match_result *r)
{
    r->mode = MATCH_MODE_NONE;
    r->policies = json_array();
    r->effective = json_object();
    r->origins = json_object();
    r->effective_hash = NULL;
    violations_init(&r->warnings);
}

void match_result_cleanup(struct match_result *r)
{
    json_decref(r->policies);
    json_decref(r->effective);
    json_decref(r->origins);
    json_decref(r->effective_hash);
    r->effective_hash = NULL;
    violations_cleanup(&r->warnings);
    r->policies = r->effective = r->origins = NULL;
    r->mode = MATCH_MODE_NONE;
}

const char *match_mode_name(enum match_mode m)
{
    switch (m) {
    case MATCH_MODE_MESHMETRIC:
        return "MeshMetric";
    case MATCH_MODE_LEGACY:
        return "Legacy";
    case MATCH_MODE_ANNOTATIONS:
        return "Annotations";
    case MATCH_MODE_NONE:
    default:
        return "None";
    }
}

/* ---- applications as a list of elements with their own origins ---------- */

struct elem {
    json_t *value;   /* owned */
    json_t *origins; /* owned: pointer relative to the element ("" = the element) -> origin */
};

struct elems {
    struct elem *items;
    size_t len, cap;
};

static void elems_push(struct elems *l, json_t *value, json_t *origins)
{
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = xrealloc(l->items, l->cap * sizeof *l->items);
    }
    l->items[l->len].value = value;
    l->items[l->len].origins = origins;
    l->len++;
}

static void elems_remove(struct elems *l, size_t i)
{
    json_decref(l->items[i].value);
    json_decref(l->items[i].origins);
    memmove(&l->items[i], &l->items[i + 1], (l->len - i - 1) * sizeof *l->items);
    l->len--;
}

static void elems_cleanup(struct elems *l)
{
    while (l->len)
        elems_remove(l, l->len - 1);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/*
 * Take effective[key] apart into elements, each with the origins recorded
 * for it (a whole-array origin becomes each element's origin). The array and
 * all its origins are removed from effective/origins.
 */
static void explode(json_t *effective, json_t *origins, const char *key, struct elems *out)
{
    char *ptr = ptr_join("", key);
    const json_t *arr = json_object_get(effective, key);
    const char *whole = str_at(origins, ptr);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char *ip = ptr_index(ptr, i);
        json_t *eo = json_object();
        const char *okey;
        json_t *ov;
        json_object_foreach(origins, okey, ov)
        {
            if (ptr_under(okey, ip))
                json_object_set(eo, okey + strlen(ip), ov);
        }
        if (!json_object_get(eo, "") && whole)
            json_object_set_new(eo, "", json_string(whole));
        elems_push(out, json_incref(v), eo);
        free(ip);
    }
    origins_drop(origins, ptr);
    json_object_del(effective, key);
    free(ptr);
}

/* Put the elements back as effective[key] (left out when there are none). */
static void implode(json_t *effective, json_t *origins, const char *key, const struct elems *l)
{
    if (l->len == 0)
        return;
    char *ptr = ptr_join("", key);
    json_t *arr = json_array();
    for (size_t i = 0; i < l->len; i++) {
        char *ip = ptr_index(ptr, i);
        json_array_append(arr, l->items[i].value);
        const char *rel;
        json_t *ov;
        json_object_foreach(l->items[i].origins, rel, ov)
        {
            char *full = xasprintf("%s%s", ip, rel);
            json_object_set(origins, full, ov);
            free(full);
        }
        free(ip);
    }
    json_object_set_new(effective, key, arr);
    free(ptr);
}

/* ---- the annotation layer -------------------------------------------------- */

static char *annotation_origin(const char *key)
{
    return xasprintf("annotation:%s", key);
}

static bool valid_port(uint32_t port)
{
    return port >= 1 && port <= 65535;
}

/* An application element built from annotations, with its origins. */
static void app_from_annotation(const struct annot_app *a, const json_t *annotations,
                                struct elems *out_list, size_t at, bool replace)
{
    json_t *value = json_object();
    json_object_set_new(value, "name", json_string(a->name));
    json_object_set_new(value, "path", json_string(a->path));
    json_object_set_new(value, "port", json_integer(a->port));
    if (a->address)
        json_object_set_new(value, "address", json_string(a->address));

    json_t *eo = json_object();
    char *k_port = xasprintf(ANNOT_PREFIX "aggregate-%s-port", a->name);
    char *k_path = xasprintf(ANNOT_PREFIX "aggregate-%s-path", a->name);
    char *k_addr = xasprintf(ANNOT_PREFIX "aggregate-%s-address", a->name);
    char *o = annotation_origin(k_port);
    json_object_set_new(eo, "", json_string(o));
    free(o);
    if (json_object_get(annotations, k_path)) {
        o = annotation_origin(k_path);
        json_object_set_new(eo, "/path", json_string(o));
        free(o);
    } else {
        json_object_set_new(eo, "/path", json_string(ORIGIN_DEFAULT));
    }
    if (a->address) {
        o = annotation_origin(k_addr);
        json_object_set_new(eo, "/address", json_string(o));
        free(o);
    }
    free(k_port);
    free(k_path);
    free(k_addr);

    if (replace) {
        json_decref(out_list->items[at].value);
        json_decref(out_list->items[at].origins);
        out_list->items[at].value = value;
        out_list->items[at].origins = eo;
    } else {
        elems_push(out_list, value, eo);
    }
}

/*
 * Merge the aggregate-<name>-* applications into list by name: an entry
 * replaces the first element with that name whole (later duplicates go), a
 * disabled entry removes it, the others are appended (sorted by name).
 */
static void merge_annotation_apps(struct elems *list, const struct annot_metrics *am,
                                  const json_t *annotations, struct violations *warnings)
{
    for (size_t a = 0; a < am->n_apps; a++) {
        const struct annot_app *app = &am->apps[a];
        if (app->enabled && !valid_port(app->port)) {
            char *key = xasprintf(ANNOT_PREFIX "aggregate-%s-port", app->name);
            violations_add(warnings, key,
                           "port %u is not a valid TCP port (1-65535); the annotations of "
                           "application \"%s\" are ignored",
                           app->port, app->name);
            free(key);
            continue;
        }
        bool found = false;
        for (size_t i = 0; i < list->len;) {
            const char *name = str_at(list->items[i].value, "name");
            if (!name || strcmp(name, app->name)) {
                i++;
                continue;
            }
            if (found || !app->enabled) {
                elems_remove(list, i);
                found = true;
                continue;
            }
            app_from_annotation(app, annotations, list, i, true);
            found = true;
            i++;
        }
        if (!found && app->enabled)
            app_from_annotation(app, annotations, list, list->len, false);
    }
}

/* Index of the first Prometheus backend, or -1. */
static long first_prometheus(const json_t *backends)
{
    size_t i;
    json_t *b;
    json_array_foreach(backends, i, b)
    {
        const char *type = str_at(b, "type");
        if (type && !strcmp(type, "Prometheus"))
            return (long)i;
    }
    return -1;
}

static json_t *default_prometheus_backend(void)
{
    return json_pack("{s:s, s:{s:i, s:s, s:{s:s}}}", "type", "Prometheus", "prometheus", "port",
                     DEFAULT_PORT, "path", DEFAULT_PATH, "tls", "mode", "Disabled");
}

/*
 * Apply the pod's annotations on top of effective. port/path go to the
 * first Prometheus backend; one with the defaults is added when there is
 * none and port/path are set, or always when force_backend.
 */
static void apply_annotations(json_t *effective, json_t *origins, const struct annot_metrics *am,
                              const json_t *annotations, bool force_backend,
                              struct violations *warnings)
{
    bool set_port = false, set_path = am->path != NULL;
    if (am->has_port) {
        if (am->port == 0)
            violations_add(warnings, ANNOT_PORT,
                           "port 0 never overrides the configured port (Kuma skips zero "
                           "values); ignored");
        else if (am->port > 65535)
            violations_add(warnings, ANNOT_PORT,
                           "port %u is not a valid TCP port (1-65535); ignored", am->port);
        else
            set_port = true;
    }

    if (set_port || set_path || force_backend) {
        json_t *backends = json_object_get(effective, "backends");
        if (!json_is_array(backends)) {
            origins_drop(origins, "/backends");
            backends = json_array();
            json_object_set_new(effective, "backends", backends);
        }
        long idx = first_prometheus(backends);
        if (idx < 0) {
            idx = (long)json_array_size(backends);
            json_array_append_new(backends, default_prometheus_backend());
            char *bp = ptr_index("/backends", (size_t)idx);
            origins_set(origins, bp, ORIGIN_DEFAULT);
            free(bp);
        }
        json_t *backend = json_array_get(backends, (size_t)idx);
        json_t *prom = json_object_get(backend, "prometheus");
        if (!json_is_object(prom)) {
            prom = json_object();
            json_object_set_new(backend, "prometheus", prom);
        }
        if (set_port) {
            json_object_set_new(prom, "port", json_integer(am->port));
            char *p = xasprintf("/backends/%ld/prometheus/port", idx);
            char *o = annotation_origin(ANNOT_PORT);
            origins_drop(origins, p);
            origins_set(origins, p, o);
            free(o);
            free(p);
        }
        if (set_path) {
            json_object_set_new(prom, "path", json_string(am->path));
            char *p = xasprintf("/backends/%ld/prometheus/path", idx);
            char *o = annotation_origin(ANNOT_PATH);
            origins_drop(origins, p);
            origins_set(origins, p, o);
            free(o);
            free(p);
        }
    }

    if (am->n_apps > 0) {
        struct elems list = {0};
        explode(effective, origins, "applications", &list);
        merge_annotation_apps(&list, am, annotations, warnings);
        implode(effective, origins, "applications", &list);
        elems_cleanup(&list);
    }
}

/* ---- legacy Mesh.metrics ---------------------------------------------------- */

/* Legacy TLS mode (lower camel, or its enum number) in MeshMetric's spelling. */
static const char *legacy_tls_mode(const json_t *conf)
{
    static const char *const legacy[] = {"activeMTLSBackend", "providedTLS", "disabled"};
    static const char *const modern[] = {"ActiveMTLSBackend", "ProvidedTLS", "Disabled"};
    const json_t *mode = json_object_get(json_object_get(conf, "tls"), "mode");
    if (json_is_integer(mode) && json_integer_value(mode) >= 0 && json_integer_value(mode) <= 2)
        return modern[json_integer_value(mode)];
    if (json_is_string(mode)) {
        for (size_t i = 0; i < 3; i++)
            if (!strcmp(json_string_value(mode), legacy[i]))
                return modern[i];
        return json_string_value(mode); /* not a legacy name: the Mesh validator reports it */
    }
    /* No tls: the Mesh defaulter's skipMTLS rule. */
    return json_is_true(json_object_get(conf, "skipMTLS")) ? "Disabled" : "ActiveMTLSBackend";
}

/* The Mesh's aggregate entries as application elements; disabled ones keep "enabled": false. */
static void legacy_apps(const json_t *conf, const char *origin, struct elems *out)
{
    size_t i;
    json_t *agg;
    json_array_foreach(json_object_get(conf, "aggregate"), i, agg)
    {
        const char *name = str_at(agg, "name");
        const char *path = str_at(agg, "path");
        const char *address = str_at(agg, "address");
        const json_t *port = json_object_get(agg, "port");
        json_t *value = json_object();
        json_t *eo = json_object();
        json_object_set_new(value, "name", json_string(name ? name : ""));
        json_object_set_new(value, "path", json_string(path && *path ? path : DEFAULT_PATH));
        json_object_set_new(value, "port",
                            json_integer(json_is_integer(port) ? json_integer_value(port) : 0));
        if (address && *address)
            json_object_set_new(value, "address", json_string(address));
        if (json_is_false(json_object_get(agg, "enabled")))
            json_object_set_new(value, "enabled", json_false());
        json_object_set_new(eo, "", json_string(origin));
        if (!(path && *path))
            json_object_set_new(eo, "/path", json_string(ORIGIN_DEFAULT));
        elems_push(out, value, eo);
    }
}

/* Drop disabled entries (bootstrap skips them) and ones whose port cannot be scraped. */
static void legacy_apps_finish(struct elems *list, const char *mesh_name,
                               struct violations *warnings)
{
    for (size_t i = 0; i < list->len;) {
        json_t *v = list->items[i].value;
        if (json_is_false(json_object_get(v, "enabled"))) {
            elems_remove(list, i);
            continue;
        }
        json_int_t port = json_integer_value(json_object_get(v, "port"));
        if (port < 1 || port > 65535) {
            char *field = xasprintf("Mesh/%s", mesh_name);
            violations_add(warnings, field,
                           "aggregate \"%s\": port %lld is not a valid TCP port (1-65535); the "
                           "application is not scraped",
                           str_at(v, "name"), (long long)port);
            free(field);
            elems_remove(list, i);
            continue;
        }
        i++;
    }
}

static void evaluate_legacy(const char *mesh_name, const json_t *conf,
                            const struct annot_metrics *am, const json_t *annotations,
                            struct match_result *out)
{
    char *origin = xasprintf("mesh:%s", mesh_name);
    const json_t *port = json_object_get(conf, "port");
    const char *path = str_at(conf, "path");
    json_int_t port_value = json_is_integer(port) && json_integer_value(port) != 0
                                ? json_integer_value(port)
                                : DEFAULT_PORT;

    json_t *backend = json_pack("{s:s, s:{s:I, s:s, s:{s:s}}}", "type", "Prometheus", "prometheus",
                                "port", port_value, "path", path && *path ? path : DEFAULT_PATH,
                                "tls", "mode", legacy_tls_mode(conf));
    json_object_set_new(out->effective, "backends", json_pack("[o]", backend));
    origins_set(out->origins, "/backends/0", origin);

    /* envoy.usedOnly (nil = all metrics) -> includeUnused, inverted; filterRegex -> regex. */
    const json_t *envoy = json_object_get(conf, "envoy");
    json_t *sidecar = json_object();
    json_object_set_new(sidecar, "includeUnused",
                        json_boolean(!json_is_true(json_object_get(envoy, "usedOnly"))));
    origins_set(out->origins, "/sidecar/includeUnused", origin);
    const char *regex = str_at(envoy, "filterRegex");
    if (regex && *regex) {
        json_object_set_new(sidecar, "regex", json_string(regex));
        origins_set(out->origins, "/sidecar/regex", origin);
    }
    json_object_set_new(out->effective, "sidecar", sidecar);

    struct elems list = {0};
    legacy_apps(conf, origin, &list);
    merge_annotation_apps(&list, am, annotations, &out->warnings);
    legacy_apps_finish(&list, mesh_name, &out->warnings);
    implode(out->effective, out->origins, "applications", &list);
    elems_cleanup(&list);

    /* The aggregates are merged already; only port and path are left. */
    struct annot_metrics top = *am;
    top.n_apps = 0;
    apply_annotations(out->effective, out->origins, &top, annotations, false, &out->warnings);

    json_array_append_new(out->policies, json_sprintf("Mesh/%s", mesh_name));
    free(origin);
}

/* ---- evaluation ------------------------------------------------------------- */

void match_evaluate(const struct dataplane *dp, const struct policy_set *set,
                    const json_t *pod_annotations, const char *system_namespace,
                    struct match_result *out)
{
    struct sort_key *matched = NULL, *tmp = NULL;
    uint32_t *key = NULL;
    size_t n = 0;
    struct annot_metrics am;

    match_result_cleanup(out);
    match_result_init(out);
    annotations_init(&am);
    if (!system_namespace || !*system_namespace)
        system_namespace = "kuma-system";
    if (!json_is_object(pod_annotations))
        pod_annotations = NULL;
    (void)annotations_parse(pod_annotations, &am, &out->warnings);

    const json_t *all = set ? set->meshmetrics : NULL;
    size_t total = json_array_size(all);
    if (total) /* sort keys are only needed on a memo miss; allocated there */
        key = xmalloc((total + 1) * sizeof *key);
    /* The memo key: the system namespace (it changes order and roles), then the matches. */
    uint32_t ns_hash = 2166136261u;
    for (const char *c = system_namespace; *c; c++)
        ns_hash = (ns_hash ^ (uint8_t)*c) * 16777619u;
    if (key)
        key[0] = ns_hash;
    size_t i;
    const json_t *policy;
    json_array_foreach(all, i, policy)
    {
        if (set_selects(set, i, policy, dp, system_namespace))
            key[1 + n++] = (uint32_t)i;
    }

    if (n > 0) {
        out->mode = MATCH_MODE_MESHMETRIC;
        const struct memo_value *hit = set->memo ? memo_get(set->memo, key, n + 1) : NULL;
        if (hit) {
            json_decref(out->policies);
            json_decref(out->effective);
            json_decref(out->origins);
            out->policies = json_incref(hit->policies);
            out->effective = json_incref(hit->effective);
            out->origins = json_incref(hit->origins);
            out->effective_hash = json_incref(hit->hash);
        } else {
            size_t warnings_before = out->warnings.len;
            matched = xmalloc(n * sizeof *matched);
            tmp = xmalloc(n * sizeof *tmp);
            for (i = 0; i < n; i++)
                sort_key_init(&matched[i], json_array_get(all, key[1 + i]), system_namespace);
            sort_policies(matched, tmp, n);
            for (i = 0; i < n; i++) {
                const json_t *mp = matched[i].policy;
                char *id = xasprintf("%s/%s", policy_namespace(mp, system_namespace),
                                     policy_name(mp));
                json_array_append_new(out->policies, json_string(id));
                const json_t *def = json_object_get(json_object_get(mp, "spec"), "default");
                if (json_is_object(def))
                    merge_objects(out->effective, def, out->origins, "", id, true);
                else if (def && !json_is_null(def))
                    violations_add(&out->warnings, id, "spec.default is not an object; ignored");
                free(id);
            }
            /* One copy of the result instead of one per policy (see merge_objects). */
            json_t *owned = copy_pruned(out->effective);
            json_decref(out->effective);
            out->effective = owned;
            if (set->memo && out->warnings.len == warnings_before) { /* hits replay no warnings */
                char *h = podpatch_config_hash(out->effective);
                out->effective_hash = json_string(h);
                free(h);
                (void)memo_put(set->memo, key, n + 1,
                               (struct memo_value){json_incref(out->policies),
                                                   json_incref(out->effective),
                                                   json_incref(out->origins),
                                                   json_incref(out->effective_hash)});
            }
        }
        if (am.any) {
            if (set->memo) { /* shared with the memo: change a copy */
                json_t *e = json_deep_copy(out->effective), *o = json_deep_copy(out->origins);
                json_decref(out->effective);
                json_decref(out->origins);
                out->effective = e;
                out->origins = o;
            }
            apply_annotations(out->effective, out->origins, &am, pod_annotations, false,
                              &out->warnings);
            json_decref(out->effective_hash); /* no longer the hash of effective */
            out->effective_hash = NULL;
        }
        goto out;
    }

    const char *mesh_name = dp && dp->mesh ? dp->mesh : "default";
    const json_t *mesh = set ? policy_set_mesh(set, mesh_name) : NULL;
    const json_t *conf = mesh ? mesh_prometheus_conf(mesh) : NULL;
    if (conf) {
        out->mode = MATCH_MODE_LEGACY;
        evaluate_legacy(mesh_name, conf, &am, pod_annotations, out);
    } else if (am.any) {
        out->mode = MATCH_MODE_ANNOTATIONS;
        apply_annotations(out->effective, out->origins, &am, pod_annotations, true, &out->warnings);
    }
out:
    annotations_cleanup(&am);
    free(matched);
    free(tmp);
    free(key);
}
