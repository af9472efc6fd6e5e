/* The dataplane view of a pod (see dataplane.h). */
#include "core/dataplane.h"

#include <stdlib.h>
#include <string.h>

#include "core/annotations.h"
#include "core/view.h"
#include "util/xalloc.h"

#define LABEL_MESH "kuma.io/mesh"
#define LABEL_NAMESPACE "k8s.kuma.io/namespace"
#define LABEL_PROXY_TYPE "kuma.io/proxy-type"
#define TAG_SERVICE "kuma.io/service"
#define TAG_PROTOCOL "kuma.io/protocol"
#define TAG_SERVICE_NAME "k8s.kuma.io/service-name"
#define TAG_SERVICE_PORT "k8s.kuma.io/service-port"

static const char *str_at(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static const json_t *meta_of(const json_t *obj)
{
    return json_object_get(obj, "metadata");
}

const char *dataplane_proxy_type_name(enum proxy_type t)
{
    return t == PROXY_GATEWAY ? "Gateway" : "Sidecar";
}

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
        json_array_append_new(inbounds,
                              json_pack("{s:I, s:o}", "port", (json_int_t)number, "tags", tags));
    }
}

void dataplane_from_pod(const json_t *pod, const char *namespace, const struct policy_view *view,
                        const struct dataplane_options *opt, struct dataplane *out)
{
    (void)opt;
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

    const json_t *ns_md = view ? meta_of(view_namespace(view, ns)) : NULL;
    const char *mesh = annotations_mesh(labels, annotations, json_object_get(ns_md, "labels"),
                                        json_object_get(ns_md, "annotations"));

    memset(out, 0, sizeof *out);
    violations_init(&out->warnings);
    out->name = xstrdup(name ? name : "");
    out->namespace = xstrdup(ns);
    out->mesh = xstrdup(mesh);
    out->workload = xstrdup(name ? name : "");
    out->proxy_type = PROXY_SIDECAR;
    out->labels = json_object();
    copy_string_labels(out->labels, labels);
    json_object_set_new(out->labels, LABEL_MESH, json_string(mesh));
    json_object_set_new(out->labels, LABEL_NAMESPACE, json_string(ns));
    json_object_set_new(out->labels, LABEL_PROXY_TYPE, json_string("sidecar"));

    out->inbounds = json_array();
    const json_t *const *svcs = NULL;
    size_t n = view ? view_services(view, ns, &svcs) : 0;
    for (size_t i = 0; i < n; i++)
        if (service_selects(svcs[i], labels))
            add_inbounds(svcs[i], ns, labels, out->inbounds);
}

void dataplane_cleanup(struct dataplane *dp)
{
    free(dp->name);
    free(dp->namespace);
    free(dp->mesh);
    free(dp->workload);
    json_decref(dp->labels);
    json_decref(dp->inbounds);
    violations_cleanup(&dp->warnings);
    memset(dp, 0, sizeof *dp);
}
