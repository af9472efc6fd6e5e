/* Kuma's computed labels (see labels.h). */
#include "core/labels.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

#define LABEL_ORIGIN "kuma.io/origin"
#define LABEL_ZONE "kuma.io/zone"

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

static const char *meta_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

static const char *label(const json_t *obj, const char *key)
{
    const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    return json_string_value(json_object_get(labels, key));
}

void labels_policy_compute(const json_t *policy, const char *system_namespace, const char *zone,
                           struct policy_labels *out)
{
    (void)zone;
    memset(out, 0, sizeof *out);
    const char *ns = meta_str(policy, "namespace");
    /* A MeshMetric has neither `to` nor `from`: outside the system namespace it is
     * a workload-owner policy (ComputePolicyRole). */
    out->role = !ns || !*ns || !strcmp(ns, system_namespace) ? POLICY_ROLE_SYSTEM
                                                             : POLICY_ROLE_WORKLOAD_OWNER;
    const char *name = meta_str(policy, "name");
    out->display_name = xstrdup(name ? name : "");
    const char *origin = label(policy, LABEL_ORIGIN);
    out->origin = origin && *origin ? xstrdup(origin) : NULL;
    const char *z = label(policy, LABEL_ZONE);
    out->zone = z && *z ? xstrdup(z) : NULL;
}

void labels_policy_cleanup(struct policy_labels *l)
{
    free(l->display_name);
    free(l->origin);
    free(l->zone);
    memset(l, 0, sizeof *l);
}
