/*
 * The dataplane view of a pod (see dataplane.h). Each function names the
 * Kuma v2.14.3 function it follows; docs/merge-order.md ("The Dataplane
 * view") lists the rules.
 */
#include "core/dataplane.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/annotations.h"
#include "core/labels.h"
#include "core/view.h"
#include "util/xalloc.h"

#define TAG_SERVICE "kuma.io/service"
#define TAG_PROTOCOL "kuma.io/protocol"
#define TAG_INSTANCE "kuma.io/instance"
#define TAG_ZONE "kuma.io/zone"
#define TAG_NAMESPACE "k8s.kuma.io/namespace"
#define TAG_SERVICE_NAME "k8s.kuma.io/service-name"
#define TAG_SERVICE_PORT "k8s.kuma.io/service-port"
#define ANN_GATEWAY "kuma.io/gateway"
#define ANN_INGRESS "kuma.io/ingress"
#define ANN_EGRESS "kuma.io/egress"
#define ANN_TAGS "kuma.io/tags"
#define ANN_IGNORE "kuma.io/ignore"
#define LABEL_ZONE_PROXY_TYPE "k8s.kuma.io/zone-proxy-type"
#define LABEL_POD_TEMPLATE_HASH "pod-template-hash"

static const char *str_at(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static const char *nonnull(const char *s)
{
    return s ? s : "";
}

static const json_t *meta_of(const json_t *obj)
{
    return json_object_get(obj, "metadata");
}

static const json_t *object_or_null(const json_t *v)
{
    return json_is_object(v) ? v : NULL;
}

const char *dataplane_proxy_type_name(enum proxy_type t)
{
    return t == PROXY_GATEWAY ? "Gateway" : "Sidecar";
}

const char *const *dataplane_node_labels_default(void)
{
    /* runtime.kubernetes.injector.nodeLabelsToCopy in kuma-cp.defaults.yaml */
    static const char *const keys[] = {"topology.kubernetes.io/zone",
                                       "topology.kubernetes.io/region", "kubernetes.io/hostname",
                                       NULL};
    return keys;
}

static void dataplane_init(struct dataplane *out)
{
    memset(out, 0, sizeof *out);
    violations_init(&out->warnings);
    out->labels = json_object();
    out->inbounds = json_array();
}

void dataplane_cleanup(struct dataplane *dp)
{
    free(dp->name);
    free(dp->namespace);
    free(dp->mesh);
    free(dp->workload);
    free(dp->workload_kind);
    json_decref(dp->labels);
    json_decref(dp->inbounds);
    json_decref(dp->gateway_tags);
    violations_cleanup(&dp->warnings);
    memset(dp, 0, sizeof *dp);
}

/* ---- annotations ----------------------------------------------------------------- */

enum enabled { ENABLED_ABSENT = 0, ENABLED_TRUE, ENABLED_FALSE, ENABLED_WRONG };

/* metadata.Annotations.GetEnabled: true|yes|enabled, false|no|disabled, else an error. */
static enum enabled get_enabled(const json_t *annotations, const char *key)
{
    const json_t *v = json_object_get(annotations, key);
    if (!v)
        return ENABLED_ABSENT;
    const char *s = json_string_value(v);
    if (!s)
        return ENABLED_WRONG;
    if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "enabled"))
        return ENABLED_TRUE;
    if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "disabled"))
        return ENABLED_FALSE;
    return ENABLED_WRONG;
}

/* ---- the name extractor ---------------------------------------------------------- */

struct workload {
    char *name;
    char *kind;
    struct violations notes; /* assumptions, reported only when the name is used */
};

static void workload_set(struct workload *w, const char *name, const char *kind)
{
    w->name = xstrdup(nonnull(name));
    w->kind = xstrdup(nonnull(kind));
}

/* The first ownerReference of owners (an array, may be NULL) of kind `kind`, or NULL. */
static const json_t *owner_of_kind(const json_t *owners, const char *kind)
{
    size_t i;
    json_t *o;
    json_array_foreach(owners, i, o)
    {
        const char *k = str_at(o, "kind");
        if (k && !strcmp(k, kind))
            return o;
    }
    return NULL;
}

/*
 * A missing ReplicaSet: Kuma's Get fails and the pod gets no Dataplane until
 * the ReplicaSet can be read. A ReplicaSet a Deployment made is named
 * <deployment>-<pod-template-hash>; assume that when the pod's hash label fits.
 */
static void assume_replicaset(struct workload *w, const char *ns, const char *rs,
                              const json_t *pod_labels, const char *field)
{
    const char *hash = str_at(pod_labels, LABEL_POD_TEMPLATE_HASH);
    size_t nl = strlen(rs), hl = hash ? strlen(hash) : 0;
    if (hl && nl > hl + 1 && rs[nl - hl - 1] == '-' && !strcmp(rs + nl - hl, hash)) {
        w->name = xstrndup(rs, nl - hl - 1);
        w->kind = xstrdup("Deployment");
        violations_add(&w->notes, field,
                       "ReplicaSet %s/%s is not known; Kuma cannot convert this pod into a "
                       "Dataplane until it can read it; assumed its Deployment is named %s (the "
                       "ReplicaSet's name without the pod-template-hash suffix)",
                       ns, rs, w->name);
        return;
    }
    workload_set(w, rs, "ReplicaSet");
    violations_add(&w->notes, field,
                   "ReplicaSet %s/%s is not known; Kuma cannot convert this pod into a "
                   "Dataplane until it can read it; assumed it has no owner, so the workload is "
                   "named %s (its name does not end in the pod's pod-template-hash)",
                   ns, rs, rs);
}

/* The name a pod of workload `owner` (a pod template's object) will get. */
static bool template_name(struct workload *w, const json_t *owner)
{
    const char *kind = nonnull(str_at(owner, "kind"));
    const char *name = nonnull(str_at(meta_of(owner), "name"));
    const json_t *owners = json_object_get(meta_of(owner), "ownerReferences");
    const char *parent = !strcmp(kind, "ReplicaSet") ? "Deployment"
                         : !strcmp(kind, "Job")      ? "CronJob"
                                                     : NULL;
    if (!parent) { /* Deployment, CronJob: through their ReplicaSet or Job; others directly */
        workload_set(w, name, kind);
        return true;
    }
    if (json_array_size(owners) == 0) {
        workload_set(w, name, kind);
        return true;
    }
    const json_t *o = owner_of_kind(owners, parent);
    if (o) {
        workload_set(w, str_at(o, "name"), parent);
        return true;
    }
    return false; /* owned, but not by a Deployment/CronJob: the pod's own name */
}

/*
 * NameExtractor.Name: the first owner decides. A ReplicaSet gives its
 * Deployment (or its own name when it has no owner), a Job its CronJob (or its
 * own name), any other owner its name; a ReplicaSet or Job owned by something
 * else passes on to the pod's next owner; without a decision, the pod's name.
 */
static void extract_name(const json_t *pod, const char *ns, const struct policy_view *view,
                         const json_t *template_owner, struct workload *w)
{
    const json_t *md = meta_of(pod);
    const json_t *pod_labels = object_or_null(json_object_get(md, "labels"));
    const json_t *owners = json_object_get(md, "ownerReferences");
    violations_init(&w->notes);
    size_t i;
    json_t *o;
    json_array_foreach(owners, i, o)
    {
        const char *kind = nonnull(str_at(o, "kind"));
        const char *oname = nonnull(str_at(o, "name"));
        char field[64];
        snprintf(field, sizeof field, "metadata.ownerReferences[%zu]", i);
        bool rs = !strcmp(kind, "ReplicaSet"), job = !strcmp(kind, "Job");
        if (!rs && !job) {
            workload_set(w, oname, kind);
            return;
        }
        const json_t *obj = view ? view_owner(view, kind, ns, oname) : NULL;
        if (!obj) {
            if (rs) {
                assume_replicaset(w, ns, oname, pod_labels, field);
            } else {
                workload_set(w, oname, "Job");
                violations_add(&w->notes, field,
                               "Job %s/%s is not known; Kuma cannot convert this pod into a "
                               "Dataplane until it can read it; assumed no CronJob owns it, so "
                               "the workload is named %s",
                               ns, oname, oname);
            }
            return;
        }
        const json_t *obj_owners = json_object_get(meta_of(obj), "ownerReferences");
        if (json_array_size(obj_owners) == 0) {
            workload_set(w, str_at(meta_of(obj), "name"), kind);
            return;
        }
        const json_t *parent = owner_of_kind(obj_owners, rs ? "Deployment" : "CronJob");
        if (parent) {
            workload_set(w, str_at(parent, "name"), rs ? "Deployment" : "CronJob");
            return;
        }
    }
    if (json_array_size(owners) == 0 && template_owner) {
        if (template_name(w, template_owner))
            return;
        violations_add(&w->notes, "",
                       "%s %s is owned by neither a Deployment nor a CronJob, so Kuma names the "
                       "workload after each pod, whose name is not known yet",
                       nonnull(str_at(template_owner, "kind")),
                       nonnull(str_at(meta_of(template_owner), "name")));
    }
    const char *name = nonnull(str_at(md, "name"));
    if (!*name)
        violations_add(&w->notes, "metadata.name",
                       "the pod has no name yet (generateName at admission, or a pod "
                       "template); Kuma names the workload of a pod without owners after the pod");
    workload_set(w, name, str_at(pod, "kind"));
}

static void workload_cleanup(struct workload *w)
{
    free(w->name);
    free(w->kind);
    violations_cleanup(&w->notes);
}

/* ---- inbounds --------------------------------------------------------------------- */

struct conv {
    const json_t *pod;
    const json_t *pod_labels;  /* object or NULL */
    const json_t *annotations; /* object or NULL */
    const char *name;          /* pod name */
    const char *ns;            /* pod namespace */
    const char *zone;          /* "" = none */
    const json_t *node_labels; /* object or NULL */
    bool gateway_enabled;      /* GetEnabled(kuma.io/gateway) */
    struct workload *workload;
    bool workload_used;
    struct dataplane *out;
};

static long long int_at(const json_t *obj, const char *key, long long def)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

/* An empty protocol means TCP (FindPort's givenOrDefault). */
static const char *protocol_or_tcp(const json_t *port)
{
    const char *p = str_at(port, "protocol");
    return p && *p ? p : "TCP";
}

/*
 * util.FindPort: a named targetPort must name a container port of the same
 * protocol; a numeric one takes the container port of that number (and its
 * name) when one is declared, else the number itself. targetPort 0, "" or
 * absent is the Service port (the API server's default for targetPort).
 */
static bool find_port(const json_t *pod, const json_t *svc_port, long long *port,
                      const char **port_name)
{
    const json_t *target = json_object_get(svc_port, "targetPort");
    const char *proto = protocol_or_tcp(svc_port);
    const json_t *containers = json_object_get(json_object_get(pod, "spec"), "containers");
    bool named = json_is_string(target) && json_string_length(target) > 0;
    long long number = json_is_integer(target) ? (long long)json_integer_value(target) : 0;
    if (!named && number == 0)
        number = int_at(svc_port, "port", 0);
    size_t i, j;
    json_t *c, *cp;
    json_array_foreach(containers, i, c)
    {
        json_array_foreach(json_object_get(c, "ports"), j, cp)
        {
            if (strcmp(protocol_or_tcp(cp), proto))
                continue;
            bool hit = named ? !strcmp(nonnull(str_at(cp, "name")), json_string_value(target))
                             : int_at(cp, "containerPort", -1) == number;
            if (hit) {
                *port = int_at(cp, "containerPort", 0);
                *port_name = str_at(cp, "name");
                return true;
            }
        }
    }
    if (named)
        return false;
    *port = number;
    *port_name = NULL;
    return true;
}

/* core_meta.ParseProtocol knows these (case-insensitively). */
static bool known_protocol(const char *p)
{
    static const char *const known[] = {"http", "http2", "tcp", "tls", "grpc", "kafka", "mysql"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcasecmp(p, known[i]))
            return true;
    return false;
}

/*
 * ProtocolTagFor: appProtocol when Kuma knows it, else the
 * <port>.service.kuma.io/protocol annotation (any value), else tcp; lowercased.
 * (Go's ToLower also folds non-ASCII letters; this folds ASCII only.)
 */
static char *protocol_tag(const json_t *svc, long long svc_port, const json_t *port)
{
    const char *value = "";
    const char *app = str_at(port, "appProtocol");
    if (app && known_protocol(app))
        value = app;
    if (!*value) {
        char key[64];
        snprintf(key, sizeof key, "%lld.service.kuma.io/protocol", svc_port);
        const char *ann = str_at(json_object_get(meta_of(svc), "annotations"), key);
        if (ann)
            value = ann;
    }
    if (!*value)
        value = "tcp";
    char *out = xstrdup(value);
    for (char *c = out; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return out;
}

static void copy_node_labels(json_t *tags, const json_t *node_labels)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)node_labels, key, v)
    {
        if (json_is_string(v))
            json_object_set(tags, key, v);
    }
}

/* InboundTagsForService. */
static json_t *service_tags(const struct conv *c, const json_t *svc, long long svc_port,
                            const json_t *port)
{
    json_t *tags = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c->pod_labels, key, v)
    {
        const char *s = json_string_value(v);
        if (!s || !*s || strstr(key, "kuma.io/"))
            continue;
        json_object_set(tags, key, v);
    }
    const char *svc_name = nonnull(str_at(meta_of(svc), "name"));
    const char *svc_ns = str_at(meta_of(svc), "namespace");
    if (!svc_ns || !*svc_ns)
        svc_ns = c->ns; /* the view keeps a Service without a namespace under the pod's */
    json_object_set_new(tags, TAG_NAMESPACE, json_string(c->ns));
    json_object_set_new(tags, TAG_SERVICE_NAME, json_string(svc_name));
    json_object_set_new(tags, TAG_SERVICE_PORT, json_sprintf("%lld", svc_port));
    json_object_set_new(tags, TAG_SERVICE,
                        json_sprintf("%s_%s_svc_%lld", svc_name, svc_ns, svc_port));
    if (*c->zone)
        json_object_set_new(tags, TAG_ZONE, json_string(c->zone));
    copy_node_labels(tags, c->node_labels);
    char *protocol = protocol_tag(svc, svc_port, port);
    /* A gateway (kuma.io/gateway enabled) only takes tcp: another protocol tag is left out. */
    if (!c->gateway_enabled || !strcmp(protocol, "tcp"))
        json_object_set_new(tags, TAG_PROTOCOL, json_string(protocol));
    free(protocol);
    if (!strcmp(nonnull(str_at(json_object_get(svc, "spec"), "clusterIP")), "None"))
        json_object_set_new(tags, TAG_INSTANCE, json_string(c->name)); /* headless */
    return tags;
}

static void add_inbound(json_t *inbounds, long long port, const char *name, json_t *tags,
                        bool serviceless)
{
    json_t *inb = json_pack("{s:I, s:o}", "port", (json_int_t)port, "tags", tags);
    if (name && *name)
        json_object_set_new(inb, "name", json_string(name));
    if (serviceless)
        json_object_set_new(inb, "serviceless", json_true());
    json_array_append_new(inbounds, inb);
}

/* inboundForService: one inbound per TCP port that FindPort resolves. */
static void service_inbounds(struct conv *c, const json_t *svc, json_t *inbounds)
{
    const json_t *ports = json_object_get(json_object_get(svc, "spec"), "ports");
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p)
    {
        const char *proto = str_at(p, "protocol");
        if (proto && *proto && strcmp(proto, "TCP"))
            continue; /* non-TCP ports are ignored */
        long long svc_port = int_at(p, "port", 0);
        const json_t *target = json_object_get(p, "targetPort");
        if (svc_port < 1 || svc_port > 65535 ||
            (json_is_integer(target) &&
             (json_integer_value(target) < 0 || json_integer_value(target) > 65535)))
            continue; /* the API server refuses such a Service: Kuma never sees it */
        long long port = 0;
        const char *port_name = NULL;
        if (!find_port(c->pod, p, &port, &port_name)) {
            violations_add(&c->out->warnings, "",
                           "Service %s port %lld: targetPort \"%s\" names no container port of "
                           "the pod, so Kuma gives it no inbound",
                           nonnull(str_at(meta_of(svc), "name")), svc_port,
                           nonnull(str_at(p, "targetPort")));
            continue;
        }
        add_inbound(inbounds, port, port_name, service_tags(c, svc, svc_port, p), false);
    }
}

/* InboundTagsForPod and inboundForServiceless: the pod's own inbound on port 49151. */
static void serviceless_inbound(struct conv *c, json_t *inbounds)
{
    json_t *tags = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)c->pod_labels, key, v)
    {
        const char *s = json_string_value(v);
        if (s && *s)
            json_object_set(tags, key, v);
    }
    c->workload_used = true;
    json_object_set_new(tags, TAG_NAMESPACE, json_string(c->ns));
    json_object_set_new(tags, TAG_SERVICE, json_sprintf("%s_%s_svc", c->workload->name, c->ns));
    if (*c->zone)
        json_object_set_new(tags, TAG_ZONE, json_string(c->zone));
    json_object_set_new(tags, TAG_PROTOCOL, json_string("tcp"));
    json_object_set_new(tags, TAG_INSTANCE, json_string(c->name));
    copy_node_labels(tags, c->node_labels);
    add_inbound(inbounds, DATAPLANE_SERVICELESS_PORT, NULL, tags, true);
}

/* inboundInterfacesFor (the legacy, tag-carrying path): ExternalName Services give none. */
static json_t *inbounds_for(struct conv *c, const json_t *const *services, size_t n)
{
    json_t *inbounds = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *type = str_at(json_object_get(services[i], "spec"), "type");
        if (type && !strcmp(type, "ExternalName"))
            continue;
        service_inbounds(c, services[i], inbounds);
    }
    if (json_array_size(inbounds) == 0)
        serviceless_inbound(c, inbounds);
    return inbounds;
}

/* ---- the converter ---------------------------------------------------------------- */

/* A builtin gateway's tags: the kuma.io/tags annotation (a JSON object of strings). */
static json_t *builtin_tags(struct conv *c)
{
    const char *text = str_at(c->annotations, ANN_TAGS);
    json_t *tags = text ? json_loads(text, 0, NULL) : NULL;
    bool ok = json_is_object(tags);
    const char *key;
    json_t *v;
    json_object_foreach(ok ? tags : NULL, key, v)
    {
        if (!json_is_string(v))
            ok = false;
    }
    if (!ok) {
        json_decref(tags);
        tags = json_object();
        violations_add(&c->out->warnings, "metadata.annotations[" ANN_TAGS "]",
                       "%s annotation on Pod serving a builtin Gateway: Kuma makes no Dataplane "
                       "for it",
                       text ? "Invalid " ANN_TAGS : "Missing " ANN_TAGS);
    }
    if (*c->zone)
        json_object_set_new(tags, TAG_ZONE, json_string(c->zone));
    return tags;
}

static bool has_label(const json_t *obj, const char *key)
{
    return json_object_get(json_object_get(meta_of(obj), "labels"), key) != NULL;
}

/* dataplaneFor's choice of inbounds or gateway. */
static void networking(struct conv *c, const json_t *const *services, size_t n)
{
    struct dataplane *out = c->out;
    const char *gw = str_at(c->annotations, ANN_GATEWAY);
    bool gw_present = json_object_get(c->annotations, ANN_GATEWAY) != NULL;
    if (gw && !strcmp(gw, "builtin")) { /* PodReconciler: reconcileBuiltinGatewayDataplane */
        out->gateway = GATEWAY_BUILTIN;
        out->proxy_type = PROXY_GATEWAY;
        out->gateway_tags = builtin_tags(c);
        return;
    }
    if (gw_present && gw && (!strcmp(gw, "enabled") || !strcmp(gw, "provided"))) {
        out->gateway = GATEWAY_DELEGATED;
        out->proxy_type = PROXY_GATEWAY;
        if (!strcmp(gw, "provided"))
            c->workload_used = true; /* GatewayByDeploymentFor always asks for the name */
        if (!strcmp(gw, "provided") && !strcmp(c->workload->kind, "Deployment")) {
            out->gateway_tags = json_object();
            json_object_set_new(out->gateway_tags, "kuma.io/service-name",
                                json_sprintf("%s_%s_svc", c->workload->name, c->ns));
            return;
        }
        /* GatewayByServiceFor: the first inbound's tags, over every Service */
        json_t *ifaces = inbounds_for(c, services, n);
        out->gateway_tags = json_deep_copy(json_object_get(json_array_get(ifaces, 0), "tags"));
        json_decref(ifaces);
        return;
    }
    if (gw_present)
        violations_add(&out->warnings, "metadata.annotations[" ANN_GATEWAY "]",
                       "invalid delegated gateway type '%s': Kuma makes no Dataplane for this "
                       "pod; it is viewed as a sidecar",
                       nonnull(gw));
    /* Zone-proxy Services give listeners, not inbounds; a pod with only those gets none. */
    const json_t **regular = xmalloc((n ? n : 1) * sizeof *regular);
    size_t n_regular = 0, n_zone_proxy = 0;
    for (size_t i = 0; i < n; i++) {
        if (has_label(services[i], LABEL_ZONE_PROXY_TYPE))
            n_zone_proxy++;
        else
            regular[n_regular++] = services[i];
    }
    if (n_regular > 0 || n_zone_proxy == 0) {
        json_decref(out->inbounds);
        out->inbounds = inbounds_for(c, regular, n_regular);
    }
    free(regular);
}

/* computeWorkloadName: the first configured pod label with a value, else the service account. */
static const char *workload_label(const json_t *pod_labels, const char *const *keys,
                                  const char *service_account)
{
    for (size_t i = 0; keys && keys[i]; i++) {
        const char *v = str_at(pod_labels, keys[i]);
        if (v && *v)
            return v;
    }
    return service_account;
}

static void convert(const json_t *pod, const char *namespace, const char *mesh,
                    const char *service_account, const json_t *const *services, size_t n,
                    const struct policy_view *view, const struct dataplane_options *opt,
                    struct dataplane *out)
{
    static const struct dataplane_options defaults = {0};
    if (!opt)
        opt = &defaults;
    const json_t *md = meta_of(pod);
    const char *ns = namespace && *namespace ? namespace : str_at(md, "namespace");
    if (!ns || !*ns)
        ns = "default";
    struct workload w;
    memset(&w, 0, sizeof w);
    struct conv c = {
        .pod = pod,
        .pod_labels = object_or_null(json_object_get(md, "labels")),
        .annotations = object_or_null(json_object_get(md, "annotations")),
        .name = nonnull(str_at(md, "name")),
        .ns = ns,
        .zone = opt->zone ? opt->zone : "default",
        .node_labels = object_or_null(opt->node_labels),
        .workload = &w,
        .out = out,
    };
    c.gateway_enabled = get_enabled(c.annotations, ANN_GATEWAY) == ENABLED_TRUE;

    dataplane_init(out);
    out->name = xstrdup(c.name);
    out->namespace = xstrdup(ns);
    out->mesh = xstrdup(mesh && *mesh ? mesh : "default");

    enum enabled ingress = get_enabled(c.annotations, ANN_INGRESS);
    enum enabled egress = get_enabled(c.annotations, ANN_EGRESS);
    if (ingress == ENABLED_TRUE || egress == ENABLED_TRUE)
        violations_add(&out->warnings, "",
                       "Kuma makes a %s, not a Dataplane, for this pod (%s: enabled): no "
                       "Dataplane policy applies to it; it is viewed as a sidecar",
                       ingress == ENABLED_TRUE ? "ZoneIngress" : "ZoneEgress",
                       ingress == ENABLED_TRUE ? ANN_INGRESS : ANN_EGRESS);

    extract_name(pod, ns, view, object_or_null(opt->template_owner), &w);
    networking(&c, services, n);
    out->workload = w.name;
    out->workload_kind = w.kind;
    w.name = w.kind = NULL;
    if (c.workload_used)
        violations_extend(&out->warnings, &w.notes);
    workload_cleanup(&w);

    bool builtin = out->gateway == GATEWAY_BUILTIN;
    struct labels_dataplane_input li = {
        .pod_labels = c.pod_labels,
        .mesh = out->mesh,
        .namespace = ns,
        .zone = c.zone,
        .no_cp_mode = opt->no_cp_mode,
        .builtin_gateway = builtin,
        .service_account = service_account,
        .workload =
            builtin ? NULL : workload_label(c.pod_labels, opt->workload_labels, service_account),
        .display_name = c.name,
    };
    json_decref(out->labels);
    out->labels = labels_dataplane_compute(&li);
}

void dataplane_convert(const json_t *pod, const char *namespace, const char *mesh,
                       const json_t *const *services, size_t n, const struct policy_view *view,
                       const struct dataplane_options *opt, struct dataplane *out)
{
    const char *sa = str_at(json_object_get(pod, "spec"), "serviceAccountName");
    convert(pod, namespace, mesh, sa, services, n, view, opt, out);
}

/* ---- the reconciler ---------------------------------------------------------------- */

/* Kubernetes' label selector from a set: every entry present and equal. */
static bool selector_matches(const json_t *selector, const json_t *pod_labels)
{
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

/*
 * findMatchingServices: every Service of the pod's namespace except those
 * annotated kuma.io/ignore (GetEnabled) whose selector selects the pod. A
 * Service without a selector counts when an EndpointSlice names the pod; the
 * view has no EndpointSlices, so such a Service never counts here.
 */
static bool service_counts(const json_t *svc, const json_t *pod_labels)
{
    const json_t *annotations = json_object_get(meta_of(svc), "annotations");
    if (json_is_object(annotations) && get_enabled(annotations, ANN_IGNORE) == ENABLED_TRUE)
        return false;
    const json_t *selector = json_object_get(json_object_get(svc, "spec"), "selector");
    if (!json_is_object(selector) || json_object_size(selector) == 0)
        return false;
    return selector_matches(selector, pod_labels);
}

void dataplane_from_pod(const json_t *pod, const char *namespace, const struct policy_view *view,
                        const struct dataplane_options *opt, struct dataplane *out)
{
    const json_t *md = meta_of(pod);
    const json_t *labels = object_or_null(json_object_get(md, "labels"));
    const json_t *annotations = object_or_null(json_object_get(md, "annotations"));
    const char *ns = namespace && *namespace ? namespace : str_at(md, "namespace");
    if (!ns || !*ns)
        ns = "default";
    const json_t *ns_md = view ? meta_of(view_namespace(view, ns)) : NULL;
    const char *mesh = annotations_mesh(labels, annotations, json_object_get(ns_md, "labels"),
                                        json_object_get(ns_md, "annotations"));

    /* The ServiceAccount admission plugin runs before any webhook: serviceAccountName,
     * else the deprecated serviceAccount, else "default". */
    const json_t *spec = json_object_get(pod, "spec");
    const char *sa = str_at(spec, "serviceAccountName");
    if (!sa || !*sa)
        sa = str_at(spec, "serviceAccount");
    if (!sa || !*sa)
        sa = "default";

    const json_t *const *all = NULL;
    size_t n_all = view ? view_services(view, ns, &all) : 0;
    const json_t **services = xmalloc((n_all ? n_all : 1) * sizeof *services);
    size_t n = 0;
    for (size_t i = 0; i < n_all; i++) /* view_services is sorted by name, as Kuma sorts */
        if (service_counts(all[i], labels))
            services[n++] = all[i];
    convert(pod, ns, mesh, sa, services, n, view, opt, out);
    free(services);
}

/* ---- Kuma's Dataplane object ------------------------------------------------------- */

static void copy_string_members(json_t *out, const json_t *obj)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (json_is_string(v))
            json_object_set(out, key, v);
    }
}

enum mm_status dataplane_from_kuma(const json_t *obj, struct dataplane *out)
{
    dataplane_init(out);
    out->name = xstrdup("");
    out->namespace = xstrdup("");
    out->mesh = xstrdup("default");
    out->workload = xstrdup("");
    out->workload_kind = xstrdup("");
    if (!json_is_object(obj))
        return MM_ERR_TYPE;
    const char *kind = str_at(obj, "kind");
    if (kind && strcmp(kind, "Dataplane"))
        return MM_ERR_TYPE;
    const json_t *md = meta_of(obj);
    const json_t *labels = object_or_null(json_object_get(md, "labels"));
    const json_t *annotations = object_or_null(json_object_get(md, "annotations"));
    const char *name = nonnull(str_at(md, "name"));
    free(out->name);
    out->name = xstrdup(name);
    free(out->namespace);
    out->namespace = xstrdup(nonnull(str_at(md, "namespace")));
    /* The resource's mesh is the top-level field (KubernetesMetaAdapter.GetMesh). */
    const char *mesh = str_at(obj, "mesh");
    if (!mesh || !*mesh)
        mesh = str_at(labels, LABEL_MESH);
    if (mesh && *mesh) {
        free(out->mesh);
        out->mesh = xstrdup(mesh);
    }
    /* KubernetesMetaAdapter.GetLabels */
    copy_string_members(out->labels, labels);
    const char *dn = str_at(annotations, LABEL_DISPLAY_NAME);
    json_object_set_new(out->labels, LABEL_DISPLAY_NAME, json_string(dn ? dn : name));
    const char *from_annotations[] = {LABEL_SERVICE_ACCOUNT, LABEL_WORKLOAD};
    for (size_t i = 0; i < 2; i++) {
        const char *v = str_at(annotations, from_annotations[i]);
        if (v)
            json_object_set_new(out->labels, from_annotations[i], json_string(v));
    }

    const json_t *net = json_object_get(json_object_get(obj, "spec"), "networking");
    size_t i;
    json_t *inb;
    json_array_foreach(json_object_get(net, "inbound"), i, inb)
    {
        json_t *tags = json_object();
        copy_string_members(tags, object_or_null(json_object_get(inb, "tags")));
        long long port = int_at(inb, "port", 0);
        add_inbound(out->inbounds, port, str_at(inb, "name"), tags,
                    port == DATAPLANE_SERVICELESS_PORT);
    }
    const json_t *gw = json_object_get(net, "gateway");
    if (json_is_object(gw)) {
        const char *type = str_at(gw, "type"); /* protojson: absent = DELEGATED (0) */
        out->gateway = type && !strcmp(type, "BUILTIN") ? GATEWAY_BUILTIN : GATEWAY_DELEGATED;
        out->proxy_type = PROXY_GATEWAY;
        out->gateway_tags = json_object();
        copy_string_members(out->gateway_tags, object_or_null(json_object_get(gw, "tags")));
    }
    return MM_OK;
}

/* ---- comparing ---------------------------------------------------------------------- */

struct buf {
    char *s;
    size_t len;
};

static void buf_add(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_add(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *piece = xvasprintf(fmt, ap);
    va_end(ap);
    size_t pl = strlen(piece);
    b->s = xrealloc(b->s, b->len + pl + 3);
    if (b->len) {
        memcpy(b->s + b->len, "; ", 2);
        b->len += 2;
    }
    memcpy(b->s + b->len, piece, pl + 1);
    b->len += pl;
    free(piece);
}

static bool ignored(const char *key, const char *const *ignore)
{
    for (size_t i = 0; ignore && ignore[i]; i++)
        if (!strcmp(key, ignore[i]))
            return true;
    return false;
}

/* A copy of tags without the ignored keys, or NULL for NULL. */
static json_t *without(const json_t *tags, const char *const *ignore)
{
    if (!tags)
        return NULL;
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)tags, key, v)
    {
        if (!ignored(key, ignore))
            json_object_set(out, key, v);
    }
    return out;
}

static char *dump_sorted(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static int cmp_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The keys of a and b (objects, may be NULL), sorted and unique. *n gets the count. */
static char **union_keys(const json_t *a, const json_t *b, size_t *n)
{
    size_t cap = json_object_size(a) + json_object_size(b), k = 0;
    char **keys = xmalloc((cap ? cap : 1) * sizeof *keys);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)a, key, v)
    {
        keys[k++] = (char *)key;
    }
    json_object_foreach((json_t *)b, key, v)
    {
        if (!json_object_get(a, key))
            keys[k++] = (char *)key;
    }
    qsort(keys, k, sizeof *keys, cmp_strings);
    *n = k;
    return keys;
}

static void diff_map(struct buf *b, const char *what, const json_t *x, const json_t *y,
                     const char *x_name, const char *y_name, const char *const *ignore)
{
    size_t n = 0;
    char **keys = union_keys(x, y, &n);
    for (size_t i = 0; i < n; i++) {
        if (ignored(keys[i], ignore))
            continue;
        const char *xv = str_at(x, keys[i]), *yv = str_at(y, keys[i]);
        if (xv && yv && !strcmp(xv, yv))
            continue;
        if (xv && yv)
            buf_add(b, "%s %s: \"%s\" in %s, \"%s\" in %s", what, keys[i], xv, x_name, yv, y_name);
        else
            buf_add(b, "%s %s: \"%s\" only in %s", what, keys[i], xv ? xv : yv,
                    xv ? x_name : y_name);
    }
    free(keys);
}

/* The inbounds' tag sets (ignored keys removed), serialised and sorted. */
static char **tag_sets(const struct dataplane *dp, const char *const *ignore, size_t *n)
{
    size_t len = json_array_size(dp->inbounds);
    char **out = xmalloc((len ? len : 1) * sizeof *out);
    for (size_t i = 0; i < len; i++) {
        json_t *t = without(json_object_get(json_array_get(dp->inbounds, i), "tags"), ignore);
        if (!t)
            t = json_object();
        out[i] = dump_sorted(t);
        json_decref(t);
    }
    qsort(out, len, sizeof *out, cmp_strings);
    *n = len;
    return out;
}

static void free_strings(char **s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i]);
    free(s);
}

char *dataplane_diff(const struct dataplane *a, const struct dataplane *b, const char *a_name,
                     const char *b_name, const char *const *ignore)
{
    struct buf out = {NULL, 0};
    a_name = a_name ? a_name : "the first";
    b_name = b_name ? b_name : "the second";
    if (strcmp(nonnull(a->mesh), nonnull(b->mesh)))
        buf_add(&out, "mesh: \"%s\" in %s, \"%s\" in %s", nonnull(a->mesh), a_name,
                nonnull(b->mesh), b_name);
    if (a->proxy_type != b->proxy_type)
        buf_add(&out, "proxy type: %s in %s, %s in %s", dataplane_proxy_type_name(a->proxy_type),
                a_name, dataplane_proxy_type_name(b->proxy_type), b_name);
    diff_map(&out, "label", a->labels, b->labels, a_name, b_name, ignore);

    /* Inbound tag sets as multisets: merge the two sorted lists. */
    size_t na = 0, nb = 0;
    char **ta = tag_sets(a, ignore, &na), **tb = tag_sets(b, ignore, &nb);
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        int d = i == na ? 1 : j == nb ? -1 : strcmp(ta[i], tb[j]);
        if (d == 0) {
            i++;
            j++;
        } else if (d < 0) {
            buf_add(&out, "inbound with tags %s only in %s", ta[i++], a_name);
        } else {
            buf_add(&out, "inbound with tags %s only in %s", tb[j++], b_name);
        }
    }
    free_strings(ta, na);
    free_strings(tb, nb);

    if (!a->gateway_tags != !b->gateway_tags)
        buf_add(&out, "gateway tags only in %s", a->gateway_tags ? a_name : b_name);
    else if (a->gateway_tags)
        diff_map(&out, "gateway tag", a->gateway_tags, b->gateway_tags, a_name, b_name, ignore);
    return out.s;
}
