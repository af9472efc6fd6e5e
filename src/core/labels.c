/* Kuma's computed labels (see labels.h). */
#include "core/labels.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

const char *labels_role_name(enum policy_role role)
{
    switch (role) {
    case POLICY_ROLE_SYSTEM:
        return "system";
    case POLICY_ROLE_PRODUCER:
        return "producer";
    case POLICY_ROLE_CONSUMER:
        return "consumer";
    case POLICY_ROLE_WORKLOAD_OWNER:
        return "workload-owner";
    case POLICY_ROLE_UNKNOWN:
        break;
    }
    return "";
}

static const json_t *meta(const json_t *obj)
{
    return json_object_get(obj, "metadata");
}

static const char *meta_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(meta(obj), key));
}

/* A string label, or NULL when the key is absent (or not a string). */
static const char *label(const json_t *labels, const char *key)
{
    return json_string_value(json_object_get(labels, key));
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* core_model.PolicyRole: an empty or absent label is "system". */
static enum policy_role role_of(const char *value)
{
    static const struct {
        const char *name;
        enum policy_role role;
    } roles[] = {
        {"system", POLICY_ROLE_SYSTEM},
        {"producer", POLICY_ROLE_PRODUCER},
        {"consumer", POLICY_ROLE_CONSUMER},
        {"workload-owner", POLICY_ROLE_WORKLOAD_OWNER},
    };
    if (!value || !*value)
        return POLICY_ROLE_SYSTEM;
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
        if (!strcmp(value, roles[i].name))
            return roles[i].role;
    return POLICY_ROLE_UNKNOWN;
}

/* core_model.IsLocallyOriginated for mode "zone": no (or an empty) origin, or "zone". */
static bool locally_originated(const char *origin)
{
    return !origin || !*origin || !strcmp(origin, "zone");
}

void labels_policy_compute(const json_t *policy, const char *system_namespace, const char *zone,
                           struct policy_labels *out)
{
    memset(out, 0, sizeof *out);
    if (!system_namespace)
        system_namespace = "kuma-system";
    if (!zone)
        zone = "default";
    const json_t *labels = json_object_get(meta(policy), "labels");
    if (!json_is_object(labels))
        labels = NULL;
    const char *ns = meta_str(policy, "namespace");
    if (!ns || !*ns)
        ns = system_namespace;

    /* Compute, mode zone, for a type with ProvidedByZoneFlag (MeshMetric's KDS flags
     * include it): setIfNotExist origin "zone"; unless the origin is "global",
     * setIfNotExist kuma.io/zone. */
    const char *origin = label(labels, LABEL_ORIGIN);
    out->origin = xstrdup(origin ? origin : "zone");
    const char *z = label(labels, LABEL_ZONE);
    if (z)
        out->zone = xstrdup(z);
    else if (strcmp(out->origin, "global"))
        out->zone = xstrdup(zone);

    /* Locally originated (IsLocallyOriginated after the origin was set): setIfNotExist
     * k8s.kuma.io/namespace, and set the role ComputePolicyRole gives. A MeshMetric
     * has neither `to` nor `from`: system in the system namespace, else workload-owner. */
    const char *nsl = label(labels, LABEL_NAMESPACE);
    if (locally_originated(out->origin)) {
        out->namespace = xstrdup(nsl ? nsl : ns);
        out->role = !strcmp(ns, system_namespace) ? POLICY_ROLE_SYSTEM : POLICY_ROLE_WORKLOAD_OWNER;
    } else { /* synced from elsewhere: the labels it came with */
        out->namespace = dup_or_null(nsl);
        out->role = role_of(label(labels, LABEL_POLICY_ROLE));
    }

    /* GetDisplayName over KubernetesMetaAdapter.GetLabels: the annotation, else the
     * object's name; an empty value falls back to GetName() ("name.namespace"). */
    const json_t *annotations = json_object_get(meta(policy), "annotations");
    const char *dn = label(json_is_object(annotations) ? annotations : NULL, LABEL_DISPLAY_NAME);
    const char *name = meta_str(policy, "name");
    if (!dn)
        dn = name ? name : "";
    if (*dn) {
        out->display_name = xstrdup(dn);
    } else {
        const char *real_ns = meta_str(policy, "namespace");
        out->display_name = real_ns && *real_ns ? xasprintf("%s.%s", name ? name : "", real_ns)
                                                : xstrdup(name ? name : "");
    }
}

void labels_policy_cleanup(struct policy_labels *l)
{
    free(l->display_name);
    free(l->origin);
    free(l->zone);
    free(l->namespace);
    memset(l, 0, sizeof *l);
}

static void set_if_not_exist(json_t *labels, const char *key, const char *value)
{
    if (!json_object_get(labels, key))
        json_object_set_new(labels, key, json_string(value ? value : ""));
}

json_t *labels_dataplane_compute(const struct labels_dataplane_input *in)
{
    json_t *labels = json_object();
    const char *key;
    json_t *v;
    /* mergeLabels(dataplane.GetLabels(), pod.Labels): a new Dataplane has none of its own. */
    json_object_foreach((json_t *)in->pod_labels, key, v)
    {
        if (json_is_string(v))
            json_object_set(labels, key, v);
    }
    /* Compute with the Dataplane descriptor: ScopeMesh, KDSFlags ZoneToGlobalFlag
     * (includes ProvidedByZoneFlag), IsProxy. */
    set_if_not_exist(labels, LABEL_MESH, in->mesh && *in->mesh ? in->mesh : "default");
    if (!in->no_cp_mode) {
        set_if_not_exist(labels, LABEL_ORIGIN, "zone");
        const char *origin = label(labels, LABEL_ORIGIN);
        if (!origin || strcmp(origin, "global")) {
            set_if_not_exist(labels, LABEL_ZONE, in->zone);
            set_if_not_exist(labels, LABEL_ENV, "kubernetes");
        }
    }
    bool local = in->no_cp_mode || locally_originated(label(labels, LABEL_ORIGIN));
    if (in->namespace && *in->namespace && local)
        set_if_not_exist(labels, LABEL_NAMESPACE, in->namespace);
    /* GetProxyType: "gateway" for a builtin gateway only; a delegated gateway is a sidecar. */
    json_object_set_new(labels, LABEL_PROXY_TYPE,
                        json_string(in->builtin_gateway ? "gateway" : "sidecar"));
    /* No embedded zone-proxy listeners are modelled: both listener labels go. */
    json_object_del(labels, LABEL_LISTENER_ZONE_INGRESS);
    json_object_del(labels, LABEL_LISTENER_ZONE_EGRESS);
    if (in->service_account && *in->service_account)
        json_object_set_new(labels, LABEL_SERVICE_ACCOUNT, json_string(in->service_account));
    if (in->workload && *in->workload)
        json_object_set_new(labels, LABEL_WORKLOAD, json_string(in->workload));
    /* KubernetesMetaAdapter.GetLabels: the Dataplane has no display-name annotation, so
     * its object name (the pod's name) is the display name. */
    json_object_set_new(labels, LABEL_DISPLAY_NAME,
                        json_string(in->display_name ? in->display_name : ""));
    return labels;
}
