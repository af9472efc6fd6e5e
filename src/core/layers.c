/* The annotation layer and the legacy Mesh.metrics mode (see layers.h). */
#include "core/layers.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/merge.h"
#include "util/xalloc.h"

#define DEFAULT_PORT 5670
#define DEFAULT_PATH "/metrics"
#define ORIGIN_DEFAULT "default"

static const char *str_at(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
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
    char *ptr = merge_ptr_join("", key);
    const json_t *arr = json_object_get(effective, key);
    const char *whole = str_at(origins, ptr);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char *ip = merge_ptr_index(ptr, i);
        json_t *eo = json_object();
        const char *okey;
        json_t *ov;
        json_object_foreach(origins, okey, ov)
        {
            if (merge_ptr_under(okey, ip))
                json_object_set(eo, okey + strlen(ip), ov);
        }
        if (!json_object_get(eo, "") && whole)
            json_object_set_new(eo, "", json_string(whole));
        elems_push(out, json_incref(v), eo);
        free(ip);
    }
    merge_origins_drop(origins, ptr);
    json_object_del(effective, key);
    free(ptr);
}

/* Put the elements back as effective[key] (left out when there are none). */
static void implode(json_t *effective, json_t *origins, const char *key, const struct elems *l)
{
    if (l->len == 0)
        return;
    char *ptr = merge_ptr_join("", key);
    json_t *arr = json_array();
    for (size_t i = 0; i < l->len; i++) {
        char *ip = merge_ptr_index(ptr, i);
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
void layers_annotations(json_t *effective, json_t *origins, const struct annot_metrics *am,
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
            merge_origins_drop(origins, "/backends");
            backends = json_array();
            json_object_set_new(effective, "backends", backends);
        }
        long idx = first_prometheus(backends);
        if (idx < 0) {
            idx = (long)json_array_size(backends);
            json_array_append_new(backends, default_prometheus_backend());
            char *bp = merge_ptr_index("/backends", (size_t)idx);
            merge_origins_set(origins, bp, ORIGIN_DEFAULT);
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
            merge_origins_drop(origins, p);
            merge_origins_set(origins, p, o);
            free(o);
            free(p);
        }
        if (set_path) {
            json_object_set_new(prom, "path", json_string(am->path));
            char *p = xasprintf("/backends/%ld/prometheus/path", idx);
            char *o = annotation_origin(ANNOT_PATH);
            merge_origins_drop(origins, p);
            merge_origins_set(origins, p, o);
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

void layers_legacy(const char *mesh_name, const json_t *conf, const struct annot_metrics *am,
                   const json_t *annotations, struct match_result *out)
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
    merge_origins_set(out->origins, "/backends/0", origin);

    /* envoy.usedOnly (nil = all metrics) -> includeUnused, inverted; filterRegex -> regex. */
    const json_t *envoy = json_object_get(conf, "envoy");
    json_t *sidecar = json_object();
    json_object_set_new(sidecar, "includeUnused",
                        json_boolean(!json_is_true(json_object_get(envoy, "usedOnly"))));
    merge_origins_set(out->origins, "/sidecar/includeUnused", origin);
    const char *regex = str_at(envoy, "filterRegex");
    if (regex && *regex) {
        json_object_set_new(sidecar, "regex", json_string(regex));
        merge_origins_set(out->origins, "/sidecar/regex", origin);
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
    layers_annotations(out->effective, out->origins, &top, annotations, false, &out->warnings);

    json_array_append_new(out->policies, json_sprintf("Mesh/%s", mesh_name));
    free(origin);
}
