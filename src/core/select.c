/* Policy selection (see select.h). */
#include "core/select.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/order.h"

#define TAG_SERVICE "kuma.io/service"

static const char *str_at(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static const char *nonnull(const char *s)
{
    return s ? s : "";
}

/* isSupportedProxyType: no list allows every type, otherwise the type must be named. */
static void proxy_types(const json_t *tr, bool *sidecar, bool *gateway)
{
    const json_t *types = json_object_get(tr, "proxyTypes");
    *sidecar = *gateway = true;
    if (!json_is_array(types) || json_array_size(types) == 0) /* len(proxyTypes) == 0: all */
        return;
    *sidecar = *gateway = false;
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
    {
        const char *name = json_string_value(t);
        if (name && !strcmp(name, "Sidecar"))
            *sidecar = true;
        if (name && !strcmp(name, "Gateway"))
            *gateway = true;
    }
}

void select_target_init(struct policy_target *t, const json_t *tr)
{
    memset(t, 0, sizeof *t);
    t->name = t->namespace = t->section_name = "";
    if (!tr || json_is_null(tr)) {
        t->kind = TARGET_MESH; /* nil targetRef = {kind: Mesh} */
        t->kind_name = "Mesh";
        t->kind_rank = order_kind_rank("Mesh");
        t->sidecar_ok = t->gateway_ok = true;
        return;
    }
    if (!json_is_object(tr)) { /* not a targetRef at all: selects nothing */
        t->kind = TARGET_OTHER;
        t->kind_name = "";
        return;
    }
    t->kind_name = nonnull(str_at(tr, "kind"));
    t->kind_rank = order_kind_rank(t->kind_name);
    t->name = nonnull(str_at(tr, "name"));
    t->namespace = nonnull(str_at(tr, "namespace"));
    t->section_name = nonnull(str_at(tr, "sectionName"));
    t->tags = json_is_object(json_object_get(tr, "tags")) ? json_object_get(tr, "tags") : NULL;
    t->labels =
        json_is_object(json_object_get(tr, "labels")) ? json_object_get(tr, "labels") : NULL;
    proxy_types(tr, &t->sidecar_ok, &t->gateway_ok);
    static const struct {
        const char *name;
        enum target_kind kind;
    } kinds[] = {
        {"Mesh", TARGET_MESH},
        {"MeshSubset", TARGET_MESH_SUBSET},
        {"MeshService", TARGET_MESH_SERVICE},
        {"MeshServiceSubset", TARGET_MESH_SERVICE_SUBSET},
        {"Dataplane", TARGET_DATAPLANE},
        {"MeshGateway", TARGET_MESH_GATEWAY},
    };
    t->kind = TARGET_OTHER;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(t->kind_name, kinds[i].name))
            t->kind = kinds[i].kind;
    if (t->kind == TARGET_MESH_SERVICE || t->kind == TARGET_MESH_SERVICE_SUBSET) {
        t->service = *t->name ? t->name : NULL;
        /* Kuma lets a kuma.io/service tag of a subset override the name. */
        if (t->kind == TARGET_MESH_SERVICE_SUBSET && str_at(t->tags, TAG_SERVICE))
            t->service = str_at(t->tags, TAG_SERVICE);
        if (!t->service)
            t->kind = TARGET_OTHER;
    }
}

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

static const json_t *inbound_tags(const json_t *inbound)
{
    return json_object_get(inbound, "tags");
}

static bool some_inbound_matches(const json_t *selector, const struct dataplane *dp)
{
    size_t i;
    json_t *inb;
    json_array_foreach(dp->inbounds, i, inb)
    {
        if (tags_match(selector, inbound_tags(inb)))
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

static bool dataplane_kind_selects(const struct policy *p, const struct dataplane *dp)
{
    const struct policy_target *t = &p->target;
    bool has_name = *t->name, has_ns = *t->namespace, has_labels = t->labels != NULL;
    if (!has_name && !has_ns && !has_labels)
        return true;
    if (has_name) {
        const char *want_ns = has_ns ? t->namespace : p->namespace;
        if (!strcmp(t->name, nonnull(dp->name)) && !strcmp(want_ns, nonnull(dp->namespace)))
            return true;
    }
    return has_labels && dataplane_labels_match(t->labels, dp);
}

static bool service_selects(const struct policy_target *t, const struct dataplane *dp)
{
    bool subset = t->kind == TARGET_MESH_SERVICE_SUBSET;
    size_t i;
    json_t *inb;
    json_array_foreach(dp->inbounds, i, inb)
    {
        const json_t *tags = inbound_tags(inb);
        const char *have = str_at(tags, TAG_SERVICE);
        if (have && (!strcmp(t->service, "*") || !strcmp(t->service, have)) &&
            (!subset || !t->tags || tags_match(t->tags, tags)))
            return true;
    }
    return false;
}

static bool fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool fail(char *why, size_t len, const char *fmt, ...)
{
    if (why && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return false;
}

bool select_policy(const struct policy *p, const struct dataplane *dp,
                   const struct select_context *ctx, char *why, size_t why_len)
{
    const char *system_ns = ctx && ctx->system_namespace ? ctx->system_namespace : "kuma-system";
    if (why && why_len)
        why[0] = '\0';
    if (p->kind != POLICY_MESHMETRIC)
        return fail(why, why_len, "it is not a MeshMetric");
    if (strcmp(p->mesh, nonnull(dp->mesh)))
        return fail(why, why_len, "it belongs to mesh \"%s\", the pod to mesh \"%s\"", p->mesh,
                    nonnull(dp->mesh));
    /* Policies of the system namespace apply mesh-wide, the others only in their namespace. */
    const char *pns = *p->namespace ? p->namespace : system_ns;
    if (strcmp(pns, system_ns) && strcmp(pns, nonnull(dp->namespace)))
        return fail(why, why_len,
                    "it lives in namespace \"%s\" and applies only to pods there (the pod is in "
                    "\"%s\")",
                    pns, nonnull(dp->namespace));
    const struct policy_target *t = &p->target;
    bool proxy_ok = dp->proxy_type == PROXY_GATEWAY ? t->gateway_ok : t->sidecar_ok;
    switch (t->kind) {
    case TARGET_MESH:
        if (!proxy_ok)
            return fail(why, why_len, "its proxyTypes leave out %s",
                        dataplane_proxy_type_name(dp->proxy_type));
        return true;
    case TARGET_MESH_SUBSET:
        if (!proxy_ok)
            return fail(why, why_len, "its proxyTypes leave out %s",
                        dataplane_proxy_type_name(dp->proxy_type));
        if (some_inbound_matches(t->tags, dp))
            return true;
        return fail(why, why_len, "no inbound of the pod has all the tags of its MeshSubset");
    case TARGET_MESH_SERVICE:
    case TARGET_MESH_SERVICE_SUBSET:
        if (service_selects(t, dp))
            return true;
        return fail(why, why_len, "no inbound of the pod is the service \"%s\"%s", t->service,
                    t->kind == TARGET_MESH_SERVICE_SUBSET ? " with the subset's tags" : "");
    case TARGET_DATAPLANE:
        if (dataplane_kind_selects(p, dp))
            return true;
        return fail(why, why_len, "its Dataplane targetRef names another proxy");
    case TARGET_MESH_GATEWAY:
        return fail(why, why_len, "a MeshGateway targetRef selects builtin gateways only");
    case TARGET_OTHER:
        break;
    }
    return fail(why, why_len, "targetRef kind \"%s\" selects no data plane proxy here",
                t->kind_name);
}
