/*
 * Policy selection (see select.h): DppSelectedByPolicy and its helpers in
 * pkg/plugins/policies/core/matchers/dataplane.go (v2.14.3). Nothing here
 * allocates: the webhook calls select_policy for every candidate of every pod.
 */
#include "core/select.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/labels.h"
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

static bool streq(const char *a, const char *b)
{
    return !strcmp(nonnull(a), nonnull(b));
}

/* isSupportedProxyType: no list allows every type, otherwise the type must be named. */
static void proxy_types(const json_t *tr, bool *sidecar, bool *gateway)
{
    const json_t *types = json_object_get(tr, "proxyTypes");
    *sidecar = *gateway = true;
    if (json_array_size(types) == 0)
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
    if (tr && !json_is_null(tr) && !json_is_object(tr)) {
        t->kind = TARGET_OTHER; /* no such policy passes Kuma's schema */
        t->kind_name = "";
        return;
    }
    if (!tr || json_is_null(tr)) {
        t->kind = TARGET_MESH; /* nil targetRef = {kind: Mesh} */
        t->kind_name = "Mesh";
        t->kind_rank = order_kind_rank("Mesh");
        t->sidecar_ok = t->gateway_ok = true;
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
        /* The selector is {kuma.io/service: name} (a MeshService by labels has no name and
         * so selects the empty service); a subset's tags are copied over it, so its own
         * kuma.io/service tag wins. */
        t->service = t->name;
        if (t->kind == TARGET_MESH_SERVICE_SUBSET && str_at(t->tags, TAG_SERVICE))
            t->service = str_at(t->tags, TAG_SERVICE);
    }
}

/* TagSelector.Matches: every tag present and equal, "*" matching any value. */
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

/*
 * The tag sets a selector is matched against: the inbounds' tags for a
 * sidecar, the gateway's tags for a gateway (inboundsSelectedByTags; a
 * gateway's Dataplane has no inbounds). For a MeshService selector, service
 * is the kuma.io/service value wanted (NULL: none) and extra the subset tags.
 */
static bool some_tag_set_matches(const struct dataplane *dp, const char *service,
                                 const json_t *extra)
{
    if (dp->gateway != GATEWAY_NONE) {
        const char *have = str_at(dp->gateway_tags, TAG_SERVICE);
        if (service && (!have || (strcmp(service, "*") && strcmp(service, have))))
            return false;
        return tags_match(extra, dp->gateway_tags);
    }
    size_t i;
    json_t *inb;
    json_array_foreach(dp->inbounds, i, inb)
    {
        const json_t *tags = json_object_get(inb, "tags");
        if (service) {
            const char *have = str_at(tags, TAG_SERVICE);
            if (!have || (strcmp(service, "*") && strcmp(service, have)))
                continue;
        }
        if (tags_match(extra, tags))
            return true;
    }
    return false;
}

/* A Dataplane label, "" when absent (a Go map lookup). */
static const char *dp_label(const struct dataplane *dp, const char *key)
{
    return nonnull(str_at(dp->labels, key));
}

/* isSelectedByLabels: every label equals the Dataplane's, a missing one counting as "". */
static bool dataplane_labels_match(const json_t *selector, const struct dataplane *dp)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)selector, key, v)
    {
        const char *want = json_string_value(v);
        if (!want || strcmp(want, dp_label(dp, key)))
            return false;
    }
    return true;
}

/*
 * isSelectedByResourceIdentifier: kri.From(dataplane) equals
 * TargetRefToKRI(kri.FromResourceMeta(policy, Dataplane), targetRef). Both
 * name the mesh, the zone (label kuma.io/zone), the namespace (label
 * k8s.kuma.io/namespace; the targetRef's namespace, else the policy's) and
 * the name (the Dataplane's display name, the targetRef's name).
 */
static bool selected_by_identifier(const struct policy *p, const struct dataplane *dp)
{
    const struct policy_target *t = &p->target;
    if (!*t->name)
        return false;
    const char *ns = *t->namespace ? t->namespace : nonnull(p->labels.namespace);
    const char *display = dp_label(dp, LABEL_DISPLAY_NAME);
    char fallback[512];
    if (!*display) { /* GetDisplayName: GetName() of a namespaced Kubernetes object */
        snprintf(fallback, sizeof fallback, "%s.%s", nonnull(dp->name), nonnull(dp->namespace));
        display = fallback;
    }
    return streq(p->mesh, dp->mesh) && streq(p->labels.zone, dp_label(dp, LABEL_ZONE)) &&
           !strcmp(ns, dp_label(dp, LABEL_NAMESPACE)) && !strcmp(t->name, display);
}

/* dppSelectedByZone (a MeshMetric is never a producer policy). */
static bool selected_by_zone(const struct policy *p, const struct dataplane *dp)
{
    if (p->labels.role == POLICY_ROLE_PRODUCER)
        return true;
    const json_t *origin = json_object_get(dp->labels, LABEL_ORIGIN);
    if (!origin || streq(json_string_value(origin), "global"))
        return true;
    if (!streq(p->labels.origin, "zone") || !p->labels.zone)
        return true;
    /* IsLocalZoneResource(dataplane labels, policy zone) */
    if (!streq(json_string_value(origin), "zone"))
        return false;
    const char *zone = str_at(dp->labels, LABEL_ZONE);
    return !zone || !strcmp(zone, p->labels.zone);
}

/* dppSelectedByNamespace: consumer and workload-owner policies stay in their namespace. */
static bool selected_by_namespace(const struct policy *p, const struct dataplane *dp)
{
    if (p->labels.role != POLICY_ROLE_CONSUMER && p->labels.role != POLICY_ROLE_WORKLOAD_OWNER)
        return true;
    return p->labels.namespace && !strcmp(p->labels.namespace, dp_label(dp, LABEL_NAMESPACE));
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

static bool dataplane_kind(const struct policy *p, const struct dataplane *dp, char *why,
                           size_t why_len)
{
    const struct policy_target *t = &p->target;
    if (dp->gateway == GATEWAY_BUILTIN)
        return fail(why, why_len,
                    "a Dataplane targetRef does not select a builtin gateway (Kuma selects its "
                    "MeshGateway's listeners instead)");
    if (!*t->name && !*t->namespace && !t->labels) /* allDataplanesSelected */
        return true;
    if (selected_by_identifier(p, dp))
        return true;
    if (t->labels && dataplane_labels_match(t->labels, dp))
        return true;
    if (t->labels)
        return fail(why, why_len, "the pod's Dataplane labels do not have all its labels");
    if (!*t->name)
        return fail(why, why_len,
                    "a Dataplane targetRef with a namespace but no name or labels "
                    "selects nothing");
    const char *ns = *t->namespace ? t->namespace : nonnull(p->labels.namespace);
    return fail(why, why_len,
                "its Dataplane targetRef names %s/%s in zone \"%s\", the pod's Dataplane is "
                "%s/%s in zone \"%s\"",
                ns, t->name, nonnull(p->labels.zone), dp_label(dp, LABEL_NAMESPACE),
                dp_label(dp, LABEL_DISPLAY_NAME), dp_label(dp, LABEL_ZONE));
}

bool select_policy(const struct policy *p, const struct dataplane *dp,
                   const struct select_context *ctx, char *why, size_t why_len)
{
    (void)ctx; /* the policy's computed labels carry the system namespace and zone */
    if (why && why_len)
        why[0] = '\0';
    if (p->kind != POLICY_MESHMETRIC)
        return fail(why, why_len, "it is not a MeshMetric");
    if (strcmp(p->mesh, nonnull(dp->mesh)))
        return fail(why, why_len, "it belongs to mesh \"%s\", the pod to mesh \"%s\"", p->mesh,
                    nonnull(dp->mesh));
    if (!selected_by_zone(p, dp))
        return fail(why, why_len,
                    "it comes from zone \"%s\" and applies only to Dataplanes of that zone (the "
                    "pod's is \"%s\")",
                    nonnull(p->labels.zone), dp_label(dp, LABEL_ZONE));
    if (!selected_by_namespace(p, dp))
        return fail(why, why_len,
                    "it is a %s policy of namespace \"%s\" and applies only to pods there (the "
                    "pod is in \"%s\")",
                    labels_role_name(p->labels.role), nonnull(p->labels.namespace),
                    dp_label(dp, LABEL_NAMESPACE));
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
        if (some_tag_set_matches(dp, NULL, t->tags))
            return true;
        return fail(why, why_len, "no %s of the pod has all the tags of its MeshSubset",
                    dp->gateway != GATEWAY_NONE ? "gateway tag set" : "inbound");
    case TARGET_MESH_SERVICE:
    case TARGET_MESH_SERVICE_SUBSET:
        if (some_tag_set_matches(dp, t->service,
                                 t->kind == TARGET_MESH_SERVICE_SUBSET ? t->tags : NULL))
            return true;
        return fail(why, why_len, "no %s of the pod is the service \"%s\"%s",
                    dp->gateway != GATEWAY_NONE ? "gateway tag set" : "inbound", t->service,
                    t->kind == TARGET_MESH_SERVICE_SUBSET ? " with the subset's tags" : "");
    case TARGET_DATAPLANE:
        return dataplane_kind(p, dp, why, why_len);
    case TARGET_MESH_GATEWAY:
        return fail(why, why_len, "a MeshGateway targetRef selects builtin gateways only");
    case TARGET_OTHER:
        break;
    }
    return fail(why, why_len, "targetRef kind \"%s\" selects no data plane proxy here",
                t->kind_name);
}
