/* Compact pods: one allocation per pod (see podstore.h). */
#include "operator/podstore.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/*
 * The annotations a packed pod keeps, and who reads them. This is the one
 * list: podstore_pack() and the documentation (docs/operator-caches.md)
 * follow it. Kuma names are from pkg/plugins/runtime/k8s/metadata and
 * controllers/pod_converter.go (v2.x).
 */
static const struct kept_annotation {
    const char *key;
    bool prefix;
} kept_annotations[] = {
    /* core/annotations.c, core/layers.c, core/engine.c (tls-secret); Kuma MetricsFor */
    {"prometheus.metrics.kuma.io/", true},
    /* core/annotations.c annotations_mesh: label, then this annotation */
    {"kuma.io/mesh", false},
    /* core/dataplane.c networking(); Kuma dataplaneFor: delegated or builtin gateway */
    {"kuma.io/gateway", false},
    /* core/dataplane.c: Kuma makes a ZoneIngress / ZoneEgress instead */
    {"kuma.io/ingress", false},
    {"kuma.io/egress", false},
    /* core/dataplane.c builtin_tags(): a builtin gateway's tags */
    {"kuma.io/tags", false},
    /* injection state (Kuma's injector) */
    {"kuma.io/sidecar-injection", false},
    {"kuma.io/sidecar-injected", false},
    /* Kuma dataplaneFor: Networking.Admin, TransparentProxying */
    {"kuma.io/envoy-admin-port", false},
    {"kuma.io/transparent-proxying", false},
    {"kuma.io/transparent-proxying-inbound-port", false},
    {"kuma.io/transparent-proxying-outbound-port", false},
    {"kuma.io/transparent-proxying-ip-family-mode", false},
    {"kuma.io/direct-access-services", false},
    {"kuma.io/transparent-proxying-reachable-services", false},
    {"kuma.io/reachable-backends", false},
    /* Kuma ProbesFor (the probes themselves are not kept) */
    {"kuma.io/virtual-probes", false},
    {"kuma.io/virtual-probes-port", false},
    {"kuma.io/application-probe-proxy-port", false},
    /* ours (core/podpatch.h): what the webhook applied */
    {"meshmetric.kuma.io/config-hash", false},
    {"meshmetric.kuma.io/config", false},
};

bool podstore_annotation_kept(const char *key)
{
    if (!key)
        return false;
    for (size_t i = 0; i < sizeof kept_annotations / sizeof *kept_annotations; i++) {
        const struct kept_annotation *k = &kept_annotations[i];
        if (k->prefix ? !strncmp(key, k->key, strlen(k->key)) : !strcmp(key, k->key))
            return true;
    }
    return false;
}

/* ---- layout ------------------------------------------------------------------------ */

#define NO_PORT INT64_MIN

enum ready_state { READY_ABSENT = 0, READY_TRUE, READY_FALSE };

struct kv {
    uint32_t key, value; /* offsets of NUL-terminated strings from the pod's start */
};

struct owner {
    uint32_t kind, name;
    uint32_t controller;
};

struct cont {
    uint32_t name;
    uint32_t first_port, n_ports;
    uint32_t init;
};

struct port {
    int64_t container_port; /* NO_PORT when absent */
    uint32_t name, protocol;
};

/* Every string offset points into the table at the end; offset of "" is the table's first byte. */
struct podstore_pod {
    uint32_t size;
    uint32_t name, ns, uid, rv, created, deleted, sa, ip, phase;
    uint32_t n_labels, n_annotations, n_owners, n_containers, n_ports;
    int32_t sidecar;
    uint32_t ready; /* enum ready_state */
    uint32_t labels_at, annotations_at, owners_at, containers_at, strings_at;
    /* struct port ports[n_ports] follows at offsetof(ports) (8-aligned), then the rest */
    int64_t ports[];
};

/*
 * Strings every pod repeats are not copied: an offset with STATIC_BIT set
 * is an index into statics[] (the kept annotation keys, then these).
 */
#define STATIC_BIT 0x80000000u
#define N_KEPT (sizeof kept_annotations / sizeof *kept_annotations)
static const char *const common[] = {"TCP",       "UDP",    "SCTP",    "Running",       "Pending",
                                     "Succeeded", "Failed", "Unknown", PODSTORE_SIDECAR};
#define N_COMMON (sizeof common / sizeof *common)

static const char *static_str(uint32_t i)
{
    return i < N_KEPT ? kept_annotations[i].key : common[i - N_KEPT];
}

/* The static index of s, or -1. Prefix entries of the kept list are not whole keys. */
static long find_static(const char *s)
{
    for (size_t i = 0; i < N_KEPT; i++)
        if (!kept_annotations[i].prefix && !strcmp(s, kept_annotations[i].key))
            return (long)i;
    for (size_t i = 0; i < N_COMMON; i++)
        if (!strcmp(s, common[i]))
            return (long)(N_KEPT + i);
    return -1;
}

static const char *str(const struct podstore_pod *p, uint32_t off)
{
    return off & STATIC_BIT ? static_str(off & ~STATIC_BIT) : (const char *)p + off;
}

static const struct port *ports_of(const struct podstore_pod *p)
{
    return (const struct port *)(const void *)p->ports;
}

static const struct kv *kv_of(const struct podstore_pod *p, uint32_t at)
{
    return (const struct kv *)(const void *)((const char *)p + at);
}

/* ---- packing: two passes over the pod, the first one measures ---------------------- */

struct packer {
    struct podstore_pod *p; /* NULL while measuring */
    size_t strings;         /* bytes of strings (measure) / next free offset (write) */
    size_t n_labels, n_annotations, n_owners, n_containers, n_ports;
};

static const char *str_at(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Add s (NULL = "") to the string table; its offset (0 while measuring). */
static uint32_t add_str(struct packer *pk, const char *s)
{
    if (!s || !*s)
        return pk->p ? pk->p->strings_at : 0;
    long st = find_static(s);
    if (st >= 0)
        return STATIC_BIT | (uint32_t)st;
    size_t n = strlen(s) + 1;
    if (!pk->p) {
        pk->strings += n;
        return 0;
    }
    uint32_t off = (uint32_t)pk->strings;
    memcpy((char *)pk->p + off, s, n);
    pk->strings += n;
    return off;
}

static void add_kv(struct packer *pk, uint32_t at, size_t *count, const char *key,
                   const char *value)
{
    if (pk->p) {
        struct kv *kv = (struct kv *)(void *)((char *)pk->p + at) + *count;
        kv->key = add_str(pk, key);
        kv->value = add_str(pk, value);
    } else {
        (void)add_str(pk, key);
        (void)add_str(pk, value);
    }
    (*count)++;
}

static void walk_containers(struct packer *pk, const json_t *list, bool init)
{
    size_t i, j;
    json_t *c, *port;
    json_array_foreach(list, i, c)
    {
        if (!json_is_object(c))
            continue;
        const json_t *ports = json_object_get(c, "ports");
        size_t first = pk->n_ports;
        json_array_foreach(ports, j, port)
        {
            if (!json_is_object(port))
                continue;
            if (pk->p) {
                struct port *pt = (struct port *)(void *)pk->p->ports + pk->n_ports;
                const json_t *cp = json_object_get(port, "containerPort");
                pt->container_port =
                    json_is_integer(cp) ? (int64_t)json_integer_value(cp) : NO_PORT;
                pt->name = add_str(pk, str_at(port, "name"));
                pt->protocol = add_str(pk, str_at(port, "protocol"));
            } else {
                (void)add_str(pk, str_at(port, "name"));
                (void)add_str(pk, str_at(port, "protocol"));
            }
            pk->n_ports++;
        }
        const char *name = str_at(c, "name");
        if (pk->p) {
            struct cont *ct =
                (struct cont *)(void *)((char *)pk->p + pk->p->containers_at) + pk->n_containers;
            ct->name = add_str(pk, name);
            ct->first_port = (uint32_t)first;
            ct->n_ports = (uint32_t)(pk->n_ports - first);
            ct->init = init;
            if (pk->p->sidecar < 0 && name && !strcmp(name, PODSTORE_SIDECAR))
                pk->p->sidecar = (int32_t)pk->n_containers;
        } else {
            (void)add_str(pk, name);
        }
        pk->n_containers++;
    }
}

static void walk(struct packer *pk, const json_t *pod)
{
    const json_t *md = json_object_get(pod, "metadata");
    const json_t *spec = json_object_get(pod, "spec");
    const json_t *status = json_object_get(pod, "status");
    const char *sa = str_at(spec, "serviceAccountName");
    if (!sa || !*sa)
        sa = str_at(spec, "serviceAccount"); /* what dataplane_from_pod falls back to */
    uint32_t offs[9];
    const char *scalars[9] = {str_at(md, "name"),
                              str_at(md, "namespace"),
                              str_at(md, "uid"),
                              str_at(md, "resourceVersion"),
                              str_at(md, "creationTimestamp"),
                              str_at(md, "deletionTimestamp"),
                              sa,
                              str_at(status, "podIP"),
                              str_at(status, "phase")};
    for (size_t i = 0; i < 9; i++)
        offs[i] = add_str(pk, scalars[i]);
    if (pk->p) {
        struct podstore_pod *p = pk->p;
        p->name = offs[0];
        p->ns = offs[1];
        p->uid = offs[2];
        p->rv = offs[3];
        p->created = offs[4];
        p->deleted = offs[5];
        p->sa = offs[6];
        p->ip = offs[7];
        p->phase = offs[8];
    }

    const char *key;
    json_t *v;
    const json_t *labels = json_object_get(md, "labels");
    json_object_foreach((json_t *)labels, key, v)
    {
        if (json_is_string(v))
            add_kv(pk, pk->p ? pk->p->labels_at : 0, &pk->n_labels, key, json_string_value(v));
    }
    const json_t *annotations = json_object_get(md, "annotations");
    json_object_foreach((json_t *)annotations, key, v)
    {
        if (json_is_string(v) && podstore_annotation_kept(key))
            add_kv(pk, pk->p ? pk->p->annotations_at : 0, &pk->n_annotations, key,
                   json_string_value(v));
    }
    size_t i;
    json_array_foreach(json_object_get(md, "ownerReferences"), i, v)
    {
        if (!json_is_object(v))
            continue;
        if (pk->p) {
            struct owner *o =
                (struct owner *)(void *)((char *)pk->p + pk->p->owners_at) + pk->n_owners;
            o->kind = add_str(pk, str_at(v, "kind"));
            o->name = add_str(pk, str_at(v, "name"));
            o->controller = json_is_true(json_object_get(v, "controller"));
        } else {
            (void)add_str(pk, str_at(v, "kind"));
            (void)add_str(pk, str_at(v, "name"));
        }
        pk->n_owners++;
    }
    walk_containers(pk, json_object_get(spec, "containers"), false);
    walk_containers(pk, json_object_get(spec, "initContainers"), true);

    if (pk->p) {
        json_array_foreach(json_object_get(status, "conditions"), i, v)
        {
            const char *type = str_at(v, "type");
            if (type && !strcmp(type, "Ready")) {
                const char *s = str_at(v, "status");
                pk->p->ready = s && !strcmp(s, "True") ? READY_TRUE : READY_FALSE;
            }
        }
    }
}

static size_t align8(size_t n)
{
    return (n + 7u) & ~(size_t)7u;
}

enum mm_status podstore_pack(const json_t *pod, struct podstore_pod **out, struct mm_error *err)
{
    *out = NULL;
    if (!json_is_object(pod))
        return mm_error_set(err, MM_ERR_TYPE, "", "a pod must be a JSON object");
    const char *name = str_at(json_object_get(pod, "metadata"), "name");
    if (!name || !*name)
        return mm_error_set(err, MM_ERR_TYPE, "metadata.name", "a cached pod needs a name");

    struct packer m = {0};
    walk(&m, pod);
    size_t size = offsetof(struct podstore_pod, ports);
    size += m.n_ports * sizeof(struct port);
    size_t labels_at = size;
    size += m.n_labels * sizeof(struct kv);
    size_t annotations_at = size;
    size += m.n_annotations * sizeof(struct kv);
    size_t owners_at = size;
    size += m.n_owners * sizeof(struct owner);
    size_t containers_at = size;
    size += m.n_containers * sizeof(struct cont);
    size_t strings_at = size;
    size += 1 + m.strings; /* the leading "" */
    size = align8(size);
    if (size > UINT32_MAX)
        return mm_error_set(err, MM_ERR_TOO_BIG, "", "pod %s is too large to cache (%zu bytes)",
                            name, size);

    struct podstore_pod *p = xmalloc(size);
    memset(p, 0, size);
    p->size = (uint32_t)size;
    p->sidecar = -1;
    p->labels_at = (uint32_t)labels_at;
    p->annotations_at = (uint32_t)annotations_at;
    p->owners_at = (uint32_t)owners_at;
    p->containers_at = (uint32_t)containers_at;
    p->strings_at = (uint32_t)strings_at;
    struct packer w = {.p = p, .strings = strings_at + 1};
    walk(&w, pod);
    p->n_labels = (uint32_t)w.n_labels;
    p->n_annotations = (uint32_t)w.n_annotations;
    p->n_owners = (uint32_t)w.n_owners;
    p->n_containers = (uint32_t)w.n_containers;
    p->n_ports = (uint32_t)w.n_ports;
    *out = p;
    return MM_OK;
}

void podstore_free(struct podstore_pod *p)
{
    free(p);
}

size_t podstore_size(const struct podstore_pod *p)
{
    return p->size;
}

bool podstore_is_meshed(const json_t *pod)
{
    const json_t *spec = json_object_get(pod, "spec");
    const char *lists[] = {"containers", "initContainers"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(spec, lists[l]), i, c)
        {
            const char *name = str_at(c, "name");
            if (name && !strcmp(name, PODSTORE_SIDECAR))
                return true;
        }
    }
    return false;
}

/* ---- reading ------------------------------------------------------------------------- */

const char *podstore_name(const struct podstore_pod *p)
{
    return str(p, p->name);
}

const char *podstore_namespace(const struct podstore_pod *p)
{
    return str(p, p->ns);
}

const char *podstore_uid(const struct podstore_pod *p)
{
    return str(p, p->uid);
}

const char *podstore_resource_version(const struct podstore_pod *p)
{
    return str(p, p->rv);
}

const char *podstore_creation_timestamp(const struct podstore_pod *p)
{
    return str(p, p->created);
}

const char *podstore_deletion_timestamp(const struct podstore_pod *p)
{
    return str(p, p->deleted);
}

const char *podstore_service_account(const struct podstore_pod *p)
{
    return str(p, p->sa);
}

const char *podstore_pod_ip(const struct podstore_pod *p)
{
    return str(p, p->ip);
}

const char *podstore_phase(const struct podstore_pod *p)
{
    return str(p, p->phase);
}

bool podstore_deleting(const struct podstore_pod *p)
{
    return *str(p, p->deleted) != '\0';
}

bool podstore_ready(const struct podstore_pod *p)
{
    return p->ready == READY_TRUE;
}

size_t podstore_label_count(const struct podstore_pod *p)
{
    return p->n_labels;
}

void podstore_label_at(const struct podstore_pod *p, size_t i, const char **key, const char **value)
{
    const struct kv *kv = kv_of(p, p->labels_at) + i;
    *key = str(p, kv->key);
    *value = str(p, kv->value);
}

static const char *kv_find(const struct podstore_pod *p, uint32_t at, size_t n, const char *key)
{
    const struct kv *kv = kv_of(p, at);
    for (size_t i = 0; key && i < n; i++)
        if (!strcmp(str(p, kv[i].key), key))
            return str(p, kv[i].value);
    return NULL;
}

const char *podstore_label(const struct podstore_pod *p, const char *key)
{
    return kv_find(p, p->labels_at, p->n_labels, key);
}

size_t podstore_annotation_count(const struct podstore_pod *p)
{
    return p->n_annotations;
}

void podstore_annotation_at(const struct podstore_pod *p, size_t i, const char **key,
                            const char **value)
{
    const struct kv *kv = kv_of(p, p->annotations_at) + i;
    *key = str(p, kv->key);
    *value = str(p, kv->value);
}

const char *podstore_annotation(const struct podstore_pod *p, const char *key)
{
    return kv_find(p, p->annotations_at, p->n_annotations, key);
}

size_t podstore_owner_count(const struct podstore_pod *p)
{
    return p->n_owners;
}

void podstore_owner_at(const struct podstore_pod *p, size_t i, struct podstore_owner *out)
{
    const struct owner *o =
        (const struct owner *)(const void *)((const char *)p + p->owners_at) + i;
    out->kind = str(p, o->kind);
    out->name = str(p, o->name);
    out->controller = o->controller != 0;
}

size_t podstore_container_count(const struct podstore_pod *p)
{
    return p->n_containers;
}

void podstore_container_at(const struct podstore_pod *p, size_t i, struct podstore_container *out)
{
    const struct cont *c =
        (const struct cont *)(const void *)((const char *)p + p->containers_at) + i;
    out->name = str(p, c->name);
    out->init = c->init != 0;
    out->first_port = c->first_port;
    out->n_ports = c->n_ports;
}

long podstore_sidecar(const struct podstore_pod *p)
{
    return p->sidecar;
}

size_t podstore_port_count(const struct podstore_pod *p)
{
    return p->n_ports;
}

void podstore_port_at(const struct podstore_pod *p, size_t i, struct podstore_port *out)
{
    const struct port *pt = ports_of(p) + i;
    out->name = str(p, pt->name);
    out->protocol = str(p, pt->protocol);
    out->has_container_port = pt->container_port != NO_PORT;
    out->container_port = out->has_container_port ? (long long)pt->container_port : 0;
}

/* ---- rebuilding -------------------------------------------------------------------- */

static void set_str(json_t *obj, const char *key, const char *value)
{
    if (value && *value)
        json_object_set_new(obj, key, json_string(value));
}

static json_t *kv_object(const struct podstore_pod *p, uint32_t at, size_t n)
{
    const struct kv *kv = kv_of(p, at);
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, str(p, kv[i].key), json_string(str(p, kv[i].value)));
    return o;
}

json_t *podstore_to_json(const struct podstore_pod *p)
{
    json_t *md = json_object();
    set_str(md, "name", podstore_name(p));
    set_str(md, "namespace", podstore_namespace(p));
    set_str(md, "uid", podstore_uid(p));
    set_str(md, "resourceVersion", podstore_resource_version(p));
    set_str(md, "creationTimestamp", podstore_creation_timestamp(p));
    set_str(md, "deletionTimestamp", podstore_deletion_timestamp(p));
    if (p->n_labels)
        json_object_set_new(md, "labels", kv_object(p, p->labels_at, p->n_labels));
    if (p->n_annotations)
        json_object_set_new(md, "annotations", kv_object(p, p->annotations_at, p->n_annotations));
    if (p->n_owners) {
        json_t *owners = json_array();
        for (size_t i = 0; i < p->n_owners; i++) {
            struct podstore_owner o;
            podstore_owner_at(p, i, &o);
            json_t *ref = json_object();
            set_str(ref, "kind", o.kind);
            set_str(ref, "name", o.name);
            if (o.controller)
                json_object_set_new(ref, "controller", json_true());
            json_array_append_new(owners, ref);
        }
        json_object_set_new(md, "ownerReferences", owners);
    }

    json_t *spec = json_object();
    set_str(spec, "serviceAccountName", podstore_service_account(p));
    json_t *lists[2] = {json_array(), json_array()};
    for (size_t i = 0; i < p->n_containers; i++) {
        struct podstore_container c;
        podstore_container_at(p, i, &c);
        json_t *cj = json_object();
        set_str(cj, "name", c.name);
        if (c.n_ports) {
            json_t *ports = json_array();
            for (size_t k = 0; k < c.n_ports; k++) {
                struct podstore_port pt;
                podstore_port_at(p, c.first_port + k, &pt);
                json_t *pj = json_object();
                set_str(pj, "name", pt.name);
                if (pt.has_container_port)
                    json_object_set_new(pj, "containerPort",
                                        json_integer((json_int_t)pt.container_port));
                set_str(pj, "protocol", pt.protocol);
                json_array_append_new(ports, pj);
            }
            json_object_set_new(cj, "ports", ports);
        }
        json_array_append_new(lists[c.init ? 1 : 0], cj);
    }
    json_object_set_new(spec, "containers", lists[0]);
    if (json_array_size(lists[1]))
        json_object_set_new(spec, "initContainers", lists[1]);
    else
        json_decref(lists[1]);

    json_t *status = json_object();
    set_str(status, "podIP", podstore_pod_ip(p));
    set_str(status, "phase", podstore_phase(p));
    if (p->ready != READY_ABSENT)
        json_object_set_new(status, "conditions",
                            json_pack("[{s:s, s:s}]", "type", "Ready", "status",
                                      p->ready == READY_TRUE ? "True" : "False"));

    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "kind", "Pod", "apiVersion", "v1", "metadata", md,
                     "spec", spec, "status", status);
}
