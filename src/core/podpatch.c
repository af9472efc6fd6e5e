/*
 * Effective MeshMetric config + pod -> RFC 6902 JSON Patch.
 *
 * The build runs in three phases so that a malformed pod never produces a
 * half-built patch: (1) read the effective config, (2) find the kuma-sidecar
 * container and type-check every part of the pod the patch touches,
 * (3) emit operations and warnings (this phase cannot fail).
 *
 * Decisions (documented here because the issue left them open):
 * - The sidecar is looked for in `containers` first, then `initContainers`
 *   (Kubernetes forbids the same name in both).
 * - Only ports/env/volumes/annotations are ever added; nothing the user set is
 *   removed or replaced, except our own PODPATCH_ANNOT_* values.
 * - A port counts as "declared" when containerPort and protocol (absent =
 *   TCP) match. A port declared by another container is skipped with a
 *   warning; one declared on the sidecar under any name is skipped silently.
 * - Effective NULL or {} means "no metrics config". The pod then gets no
 *   patch, unless it already carries one of our annotations: those are
 *   updated to the hash of {} and the summary "none", so the operator sees the
 *   pod as in sync with "nothing". Ports, mounts and env vars added earlier
 *   are never removed (containers are immutable on UPDATE anyway).
 * - ProvidedTLS without any Secret name (no annotation, no default) or with a
 *   name that is not a valid DNS subdomain: no volume, mount or env vars, and
 *   a warning (a pod referencing a bad Secret would fail validation or hang).
 * - An existing directory mount of `meshmetric-tls` on the sidecar is kept and
 *   the env vars point into its mountPath. A subPath mount of it gets a
 *   warning and our directory mount is added beside it. A different volume
 *   already mounted at cert_dir makes us skip our mount (Kubernetes rejects
 *   duplicate mount paths) with a warning.
 * - podpatch_default_options.default_tls_secret is "meshmetric-tls" (the
 *   same name as the volume), so a Secret of that name in the pod's namespace
 *   works without any annotation.
 * - PODPATCH_ANNOT_CONFIG is a summary for humans, at most 256 bytes (cut on a
 *   UTF-8 boundary, ending in "..."): backends in order joined by "; "
 *   ("prometheus:<port><path>[ tls=<mode unless Disabled>][ client=<id>]",
 *   "opentelemetry[:<endpoint>]"), then "apps=<name>:<port><path>,...";
 *   "none" for an empty config, "no backends" when only sidecar settings or
 *   unknown backend types are present. The hash is the machine-readable part.
 *   A path is written right after the port only when that cannot be misread:
 *   it starts with "/" and holds no space, control character, '"', ',' or
 *   ';'. Any other path (e.g. "metrics", which an annotation or a policy may
 *   give) is written as ` path="<JSON-quoted>"`, so "prometheus:5670 path="0/x""
 *   is never confused with port 56700.
 * - A Prometheus path without a leading "/" is kept (Kuma keeps it:
 *   pod_converter.go MetricsFor takes the annotation as written, and the
 *   MeshMetric validator does not check paths) with a warning: Kuma makes it
 *   the prefix of the metrics listener's Envoy route
 *   (prometheus_endpoint_generator.go / meshmetric prometheus_configurer.go,
 *   static_endpoints_configurer.go RouteMatch_Prefix), and no request path,
 *   which always starts with "/", matches it, so every scrape gets 404.
 *   Application paths need no warning: kuma-dp builds their URL with Go's
 *   url.URL{Host, Path}.String(), which inserts the "/".
 */
#include "core/podpatch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/annotations.h"
#include "util/sha256.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define DEFAULT_CERT_DIR "/var/run/secrets/meshmetric.kuma.io/tls"
#define TLS_VOLUME "meshmetric-tls"
#define SUMMARY_MAX 256
#define PORT_NAME_MAX 15

const struct podpatch_options podpatch_default_options = {
    .default_tls_secret = "meshmetric-tls",
    .cert_dir = DEFAULT_CERT_DIR,
    .prometheus_annotations = false,
};

static const char *const prom_annot_keys[] = {
    "prometheus.io/scrape",
    "prometheus.io/port",
    "prometheus.io/path",
    "prometheus.io/scheme",
};

/* One Prometheus backend of the effective config. Strings are borrowed. */
struct prom_backend {
    int port;
    const char *path;
    const char *mode;
};

struct conf {
    bool empty;                /* NULL or {} */
    struct prom_backend *prom; /* deduplicated by port, in order */
    size_t n_prom;
    bool tls; /* some Prometheus backend uses ProvidedTLS */
};

/* Where the sidecar is, and the parts of the pod the patch touches (borrowed). */
struct target {
    const json_t *spec;
    const json_t *containers;      /* array or NULL */
    const json_t *init_containers; /* array or NULL */
    const json_t *sidecar;
    const char *list; /* "containers" or "initContainers" */
    size_t index;
    const json_t *ports; /* sidecar fields: array, JSON null or NULL (absent) */
    const json_t *env;
    const json_t *mounts;
    const json_t *volumes;     /* spec.volumes: array, null or NULL */
    const json_t *metadata;    /* object, null or NULL */
    const json_t *annotations; /* object, null or NULL */
};

static bool str_eq(const json_t *v, const char *s)
{
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

static bool absent(const json_t *v)
{
    return v == NULL || json_is_null(v);
}

char *podpatch_escape_token(const char *token)
{
    size_t extra = 0;
    for (const char *p = token; *p; p++)
        if (*p == '~' || *p == '/')
            extra++;
    char *out = xmalloc(strlen(token) + extra + 1);
    char *o = out;
    for (const char *p = token; *p; p++) {
        if (*p == '~') {
            *o++ = '~';
            *o++ = '0';
        } else if (*p == '/') {
            *o++ = '~';
            *o++ = '1';
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

char *podpatch_config_hash(const json_t *effective)
{
    char *canon = NULL;
    if (effective && !json_is_null(effective))
        canon = json_dumps(effective, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!canon)
        canon = xstrdup("{}");
    char hex[65];
    sha256_hex(canon, strlen(canon), hex);
    free(canon);
    return xasprintf("sha256:%.16s", hex);
}

/* ---- phase 1: the effective config ---- */

static void conf_cleanup(struct conf *c)
{
    free(c->prom);
    c->prom = NULL;
    c->n_prom = 0;
}

static enum mm_status conf_read(const json_t *effective, struct conf *c,
                                struct mm_error *err) MM_WUR;
static enum mm_status conf_read(const json_t *effective, struct conf *c, struct mm_error *err)
{
    memset(c, 0, sizeof *c);
    if (absent(effective) || (json_is_object(effective) && json_object_size(effective) == 0)) {
        c->empty = true;
        return MM_OK;
    }
    if (!json_is_object(effective))
        return mm_error_set(err, MM_ERR_TYPE, "default", "must be an object");

    const json_t *backends = json_object_get(effective, "backends");
    if (absent(backends))
        return MM_OK;
    if (!json_is_array(backends))
        return mm_error_set(err, MM_ERR_TYPE, "default.backends", "must be an array");

    c->prom = xcalloc(json_array_size(backends) + 1, sizeof *c->prom);
    size_t i;
    const json_t *b;
    json_array_foreach(backends, i, b) {
        char field[96];
        if (!json_is_object(b)) {
            snprintf(field, sizeof field, "default.backends[%zu]", i);
            return mm_error_set(err, MM_ERR_TYPE, field, "must be an object");
        }
        if (!str_eq(json_object_get(b, "type"), "Prometheus"))
            continue; /* OpenTelemetry needs nothing in the pod */
        const json_t *p = json_object_get(b, "prometheus");
        if (!absent(p) && !json_is_object(p)) {
            snprintf(field, sizeof field, "default.backends[%zu].prometheus", i);
            return mm_error_set(err, MM_ERR_TYPE, field, "must be an object");
        }
        const json_t *port = json_object_get(p, "port");
        const json_t *path = json_object_get(p, "path");
        const json_t *tls = json_object_get(p, "tls");
        const json_t *mode = json_object_get(tls, "mode");
        json_int_t port_v = 5670;
        if (!absent(port)) {
            snprintf(field, sizeof field, "default.backends[%zu].prometheus.port", i);
            if (!json_is_integer(port))
                return mm_error_set(err, MM_ERR_TYPE, field, "must be an integer");
            port_v = json_integer_value(port);
            if (port_v < 1 || port_v > 65535)
                return mm_error_set(err, MM_ERR_INVALID, field,
                                    "port must be a valid (1-65535), got %" JSON_INTEGER_FORMAT,
                                    port_v);
        }
        if (!absent(path) && !json_is_string(path)) {
            snprintf(field, sizeof field, "default.backends[%zu].prometheus.path", i);
            return mm_error_set(err, MM_ERR_TYPE, field, "must be a string");
        }
        if (!absent(tls) && !json_is_object(tls)) {
            snprintf(field, sizeof field, "default.backends[%zu].prometheus.tls", i);
            return mm_error_set(err, MM_ERR_TYPE, field, "must be an object");
        }
        if (!absent(mode) && !json_is_string(mode)) {
            snprintf(field, sizeof field, "default.backends[%zu].prometheus.tls.mode", i);
            return mm_error_set(err, MM_ERR_TYPE, field, "must be a string");
        }
        const char *mode_s = json_is_string(mode) ? json_string_value(mode) : "Disabled";
        if (strcmp(mode_s, "ProvidedTLS") == 0)
            c->tls = true;

        bool dup = false;
        for (size_t j = 0; j < c->n_prom; j++)
            if (c->prom[j].port == (int)port_v)
                dup = true;
        if (dup)
            continue;
        struct prom_backend *pb = &c->prom[c->n_prom++];
        pb->port = (int)port_v;
        pb->path = json_is_string(path) ? json_string_value(path) : "/metrics";
        pb->mode = mode_s;
    }
    return MM_OK;
}

/* ---- phase 2: the pod ---- */

static const json_t *find_named(const json_t *arr, const char *name, size_t *index)
{
    size_t i;
    const json_t *c;
    json_array_foreach(arr, i, c) {
        if (json_is_object(c) && str_eq(json_object_get(c, "name"), name)) {
            *index = i;
            return c;
        }
    }
    return NULL;
}

/* An optional array member: absent, null or an array; anything else is a type error. */
static enum mm_status opt_array(const json_t *obj, const char *key, const char *field,
                                const json_t **out, struct mm_error *err) MM_WUR;
static enum mm_status opt_array(const json_t *obj, const char *key, const char *field,
                                const json_t **out, struct mm_error *err)
{
    const json_t *v = json_object_get(obj, key);
    *out = v;
    if (absent(v) || json_is_array(v))
        return MM_OK;
    return mm_error_set(err, MM_ERR_TYPE, field, "must be an array");
}

/* Returns MM_OK with t->sidecar NULL when there is no kuma-sidecar container. */
static enum mm_status target_find(const json_t *pod, struct target *t, struct mm_error *err) MM_WUR;
static enum mm_status target_find(const json_t *pod, struct target *t, struct mm_error *err)
{
    enum mm_status rc;
    char field[96];

    memset(t, 0, sizeof *t);
    if (!json_is_object(pod))
        return mm_error_set(err, MM_ERR_TYPE, "", "the pod must be a JSON object");
    t->spec = json_object_get(pod, "spec");
    if (absent(t->spec))
        return MM_OK;
    if (!json_is_object(t->spec))
        return mm_error_set(err, MM_ERR_TYPE, "spec", "must be an object");
    if ((rc = opt_array(t->spec, "containers", "spec.containers", &t->containers, err)) != MM_OK)
        return rc;
    if ((rc = opt_array(t->spec, "initContainers", "spec.initContainers", &t->init_containers,
                        err)) != MM_OK)
        return rc;

    if ((t->sidecar = find_named(t->containers, PODPATCH_SIDECAR, &t->index)) != NULL)
        t->list = "containers";
    else if ((t->sidecar = find_named(t->init_containers, PODPATCH_SIDECAR, &t->index)) != NULL)
        t->list = "initContainers";
    else
        return MM_OK;

    snprintf(field, sizeof field, "spec.%s[%zu].ports", t->list, t->index);
    if ((rc = opt_array(t->sidecar, "ports", field, &t->ports, err)) != MM_OK)
        return rc;
    snprintf(field, sizeof field, "spec.%s[%zu].env", t->list, t->index);
    if ((rc = opt_array(t->sidecar, "env", field, &t->env, err)) != MM_OK)
        return rc;
    snprintf(field, sizeof field, "spec.%s[%zu].volumeMounts", t->list, t->index);
    if ((rc = opt_array(t->sidecar, "volumeMounts", field, &t->mounts, err)) != MM_OK)
        return rc;
    if ((rc = opt_array(t->spec, "volumes", "spec.volumes", &t->volumes, err)) != MM_OK)
        return rc;

    t->metadata = json_object_get(pod, "metadata");
    if (!absent(t->metadata) && !json_is_object(t->metadata))
        return mm_error_set(err, MM_ERR_TYPE, "metadata", "must be an object");
    t->annotations = json_object_get(t->metadata, "annotations");
    if (!absent(t->annotations) && !json_is_object(t->annotations))
        return mm_error_set(err, MM_ERR_TYPE, "metadata.annotations", "must be an object");
    return MM_OK;
}

/* ---- phase 3: operations ---- */

static void emit_add(json_t *patch, char *path_owned, json_t *value_new)
{
    json_t *op = json_object();
    json_object_set_new(op, "op", json_string("add"));
    json_object_set_new(op, "path", json_string(path_owned));
    json_object_set_new(op, "value", value_new);
    json_array_append_new(patch, op);
    free(path_owned);
}

/*
 * Add items (an array, stolen) to the array at path: the whole array when the
 * pod has none (absent or null), else one append per item.
 */
static void emit_items(json_t *patch, const char *path, const json_t *existing, json_t *items)
{
    if (json_array_size(items) == 0) {
        json_decref(items);
        return;
    }
    if (absent(existing)) {
        emit_add(patch, xstrdup(path), items);
        return;
    }
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
        emit_add(patch, xasprintf("%s/-", path), json_incref(item));
    json_decref(items);
}

static bool port_proto_tcp(const json_t *p)
{
    const json_t *proto = json_object_get(p, "protocol");
    return absent(proto) || str_eq(proto, "TCP");
}

/* Does this container's ports list declare TCP port? */
static bool declares_port(const json_t *container, int port)
{
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(container, "ports"), i, p) {
        const json_t *cp = json_object_get(p, "containerPort");
        if (json_is_integer(cp) && json_integer_value(cp) == port && port_proto_tcp(p))
            return true;
    }
    return false;
}

/* Every port name in the pod, as a set (object of name -> true). New reference. */
static json_t *port_names(const struct target *t)
{
    json_t *names = json_object();
    const json_t *lists[2] = {t->containers, t->init_containers};
    for (size_t l = 0; l < 2; l++) {
        size_t i, j;
        const json_t *c, *p;
        json_array_foreach(lists[l], i, c) {
            json_array_foreach(json_object_get(c, "ports"), j, p) {
                const json_t *name = json_object_get(p, "name");
                if (json_is_string(name))
                    json_object_set_new(names, json_string_value(name), json_true());
            }
        }
    }
    return names;
}

/* The first container other than the sidecar declaring port, or NULL. */
static const json_t *other_declaring(const struct target *t, int port, const char **list,
                                     size_t *index)
{
    const json_t *lists[2] = {t->containers, t->init_containers};
    const char *names[2] = {"containers", "initContainers"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        const json_t *c;
        json_array_foreach(lists[l], i, c) {
            if (c == t->sidecar || !json_is_object(c))
                continue;
            if (declares_port(c, port)) {
                *list = names[l];
                *index = i;
                return c;
            }
        }
    }
    return NULL;
}

/* A free name "metrics", "metrics-1", ... (a valid IANA_SVC_NAME); records it in names. */
static char *alloc_port_name(json_t *names)
{
    char buf[PORT_NAME_MAX + 1] = "metrics";
    for (unsigned n = 1; json_object_get(names, buf); n++)
        snprintf(buf, sizeof buf, "metrics-%u", n);
    json_object_set_new(names, buf, json_true());
    return xstrdup(buf);
}

static void build_ports(json_t *patch, const char *cpath, const struct target *t,
                        const struct conf *c, struct violations *warnings)
{
    json_t *names = port_names(t);
    json_t *items = json_array();
    for (size_t i = 0; i < c->n_prom; i++) {
        int port = c->prom[i].port;
        if (declares_port(t->sidecar, port))
            continue;
        const char *list = NULL;
        size_t idx = 0;
        const json_t *other = other_declaring(t, port, &list, &idx);
        if (other) {
            const json_t *oname = json_object_get(other, "name");
            char field[96];
            snprintf(field, sizeof field, "spec.%s[%zu].ports", list, idx);
            violations_add(warnings, field,
                           "port %d is already declared by container \"%s\"; not declaring it "
                           "on %s",
                           port, json_is_string(oname) ? json_string_value(oname) : "",
                           PODPATCH_SIDECAR);
            continue;
        }
        char *name = alloc_port_name(names);
        json_array_append_new(items, json_pack("{s:s,s:i,s:s}", "name", name, "containerPort", port,
                                               "protocol", "TCP"));
        free(name);
    }
    json_decref(names);
    char *path = xasprintf("%s/ports", cpath);
    emit_items(patch, path, t->ports, items);
    free(path);
}

/* Kubernetes DNS-1123 subdomain, as required for a Secret name. */
static bool dns_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && ch != '-' && ch != '.')
            return false;
        if (!alnum && (i == 0 || i == n - 1))
            return false;
        if (ch == '.' && (s[i - 1] == '.' || s[i - 1] == '-' || s[i + 1] == '-'))
            return false;
    }
    return true;
}

static char *dir_join(const char *dir, const char *file)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return xasprintf("%.*s/%s", (int)n, dir, file);
}

static void build_tls(json_t *patch, const char *base, const char *cpath, const struct target *t,
                      const struct podpatch_options *opt, struct violations *warnings)
{
    const char *cert_dir = opt->cert_dir && opt->cert_dir[0] ? opt->cert_dir : DEFAULT_CERT_DIR;
    const json_t *annot = json_object_get(t->annotations, ANNOT_TLS_SECRET);
    const char *secret = opt->default_tls_secret;
    const char *secret_from = "the operator's default TLS Secret";
    if (json_is_string(annot) && json_string_length(annot) > 0) {
        secret = json_string_value(annot);
        secret_from = "annotation " ANNOT_TLS_SECRET;
    }
    if (!secret || !secret[0]) {
        violations_add(warnings, "",
                       "backend uses ProvidedTLS but no Secret is configured (set the pod "
                       "annotation %s); the metrics endpoint stays plain HTTP",
                       ANNOT_TLS_SECRET);
        return;
    }
    if (!dns_subdomain(secret)) {
        violations_add(warnings, "",
                       "%s names \"%s\", which is not a valid Secret name; no TLS material "
                       "mounted, the metrics endpoint stays plain HTTP",
                       secret_from, secret);
        return;
    }

    /* The pod volume. */
    size_t vi = 0;
    const json_t *vol = find_named(t->volumes, TLS_VOLUME, &vi);
    if (vol) {
        const json_t *sec = json_object_get(vol, "secret");
        const json_t *sname = json_object_get(sec, "secretName");
        if (!str_eq(sname, secret)) {
            char field[64];
            snprintf(field, sizeof field, "spec.volumes[%zu]", vi);
            violations_add(warnings, field,
                           "volume \"%s\" already exists and does not use Secret \"%s\"; left "
                           "unchanged",
                           TLS_VOLUME, secret);
        }
    } else {
        json_t *items = json_array();
        json_array_append_new(
            items, json_pack("{s:s,s:{s:s}}", "name", TLS_VOLUME, "secret", "secretName", secret));
        char *path = xasprintf("%s/spec/volumes", base);
        emit_items(patch, path, t->volumes, items);
        free(path);
    }

    /*
     * The sidecar's mount: the whole Secret as a read-only directory, never
     * subPath (subPath mounts never see a rotated Secret). A directory mount
     * of our volume that is already there is reused. A subPath mount of it
     * only earns a warning: a second, proper mount is added next to it.
     */
    const char *dir = NULL;
    size_t i;
    const json_t *m;
    char field[96];
    json_array_foreach(t->mounts, i, m) {
        if (!json_is_object(m) || !str_eq(json_object_get(m, "name"), TLS_VOLUME))
            continue;
        const json_t *mp = json_object_get(m, "mountPath");
        const json_t *sub = json_object_get(m, "subPath");
        const json_t *subx = json_object_get(m, "subPathExpr");
        if ((json_is_string(sub) && json_string_length(sub) > 0) ||
            (json_is_string(subx) && json_string_length(subx) > 0)) {
            snprintf(field, sizeof field, "spec.%s[%zu].volumeMounts[%zu]", t->list, t->index, i);
            violations_add(warnings, field,
                           "volume \"%s\" is mounted with subPath: rotated certificates do not "
                           "reach that mount; the metrics env vars use a directory mount",
                           TLS_VOLUME);
        } else if (!dir && json_is_string(mp) && json_string_length(mp) > 0) {
            dir = json_string_value(mp);
        }
    }
    if (!dir) {
        dir = cert_dir;
        bool taken = false;
        json_array_foreach(t->mounts, i, m) {
            if (str_eq(json_object_get(m, "mountPath"), cert_dir)) {
                snprintf(field, sizeof field, "spec.%s[%zu].volumeMounts[%zu]", t->list, t->index,
                         i);
                violations_add(warnings, field,
                               "another volume is already mounted at %s; not mounting \"%s\"",
                               cert_dir, TLS_VOLUME);
                taken = true;
                break;
            }
        }
        if (!taken) {
            json_t *items = json_array();
            json_array_append_new(items, json_pack("{s:s,s:s,s:b}", "name", TLS_VOLUME, "mountPath",
                                                   cert_dir, "readOnly", 1));
            char *path = xasprintf("%s/volumeMounts", cpath);
            emit_items(patch, path, t->mounts, items);
            free(path);
        }
    }

    /* The env vars; the user's own values win. */
    static const char *const env_names[2] = {PODPATCH_ENV_CERT, PODPATCH_ENV_KEY};
    static const char *const env_files[2] = {"tls.crt", "tls.key"};
    json_t *items = json_array();
    for (size_t e = 0; e < 2; e++) {
        size_t unused;
        if (find_named(t->env, env_names[e], &unused))
            continue;
        char *value = dir_join(dir, env_files[e]);
        json_array_append_new(items, json_pack("{s:s,s:s}", "name", env_names[e], "value", value));
        free(value);
    }
    char *path = xasprintf("%s/env", cpath);
    emit_items(patch, path, t->env, items);
    free(path);
}

/* Steal b's text, cut to at most SUMMARY_MAX bytes on a UTF-8 boundary ("..." marks a cut). */
static char *summary_finish(struct strbuf *b)
{
    char *s = strbuf_steal(b);
    size_t n = strlen(s);
    if (n <= SUMMARY_MAX)
        return s;
    size_t cut = SUMMARY_MAX - 3;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    char *out = xasprintf("%.*s...", (int)cut, s);
    free(s);
    return out;
}

/* Append the path after a port: bare when unambiguous, else ` path="<JSON-quoted>"`. */
static bool summary_path(struct strbuf *b, const char *path)
{
    bool plain = path[0] == '/';
    for (const unsigned char *c = (const unsigned char *)path; plain && *c; c++)
        plain = *c > 0x20 && *c != 0x7f && *c != '"' && *c != ',' && *c != ';';
    if (plain)
        return strbuf_puts(b, path);
    json_t *s = json_string(path);
    char *q = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    bool ok = strbuf_puts(b, " path=") && strbuf_puts(b, q ? q : "\"?\"");
    free(q);
    json_decref(s);
    return ok;
}

/*
 * The human-readable summary of effective, e.g.
 * "prometheus:5670/metrics tls=ProvidedTLS; opentelemetry:otel:4317; apps=app:8080/metrics".
 * At most SUMMARY_MAX bytes. Caller frees.
 */
static char *config_summary(const json_t *effective)
{
    struct strbuf b;
    /* Bounded by the effective config, which is bounded by its source; cut at the end. */
    strbuf_init(&b, (size_t)-1 / 2);
    bool ok = true;
    bool first = true;
    size_t i;
    const json_t *v;

    json_array_foreach(json_object_get(effective, "backends"), i, v) {
        const json_t *type = json_object_get(v, "type");
        char *part = NULL;
        if (str_eq(type, "Prometheus")) {
            const json_t *p = json_object_get(v, "prometheus");
            const json_t *port = json_object_get(p, "port");
            const json_t *path = json_object_get(p, "path");
            const json_t *mode = json_object_get(json_object_get(p, "tls"), "mode");
            const json_t *client = json_object_get(p, "clientId");
            char tls[64] = "";
            if (json_is_string(mode) && strcmp(json_string_value(mode), "Disabled") != 0)
                snprintf(tls, sizeof tls, " tls=%.50s", json_string_value(mode));
            struct strbuf pb;
            strbuf_init(&pb, (size_t)-1 / 2);
            bool pok = strbuf_printf(&pb, "prometheus:%" JSON_INTEGER_FORMAT,
                                     json_is_integer(port) ? json_integer_value(port) : 5670) &&
                       summary_path(&pb, json_is_string(path) ? json_string_value(path)
                                                              : "/metrics") &&
                       strbuf_printf(&pb, "%s%s%s", tls, json_is_string(client) ? " client=" : "",
                                     json_is_string(client) ? json_string_value(client) : "");
            (void)pok; /* unbounded; the summary is cut at the end */
            part = strbuf_steal(&pb);
        } else if (str_eq(type, "OpenTelemetry")) {
            const json_t *ep = json_object_get(json_object_get(v, "openTelemetry"), "endpoint");
            part = xasprintf("opentelemetry%s%s", json_is_string(ep) ? ":" : "",
                             json_is_string(ep) ? json_string_value(ep) : "");
        } else {
            continue;
        }
        ok = ok && strbuf_puts(&b, first ? "" : "; ") && strbuf_puts(&b, part);
        first = false;
        free(part);
    }

    const json_t *apps = json_object_get(effective, "applications");
    if (json_array_size(apps) > 0) {
        ok = ok && strbuf_puts(&b, first ? "apps=" : "; apps=");
        first = false;
        json_array_foreach(apps, i, v) {
            const json_t *name = json_object_get(v, "name");
            const json_t *port = json_object_get(v, "port");
            const json_t *path = json_object_get(v, "path");
            ok = ok && strbuf_printf(&b, "%s%s%s%" JSON_INTEGER_FORMAT, i ? "," : "",
                                     json_is_string(name) ? json_string_value(name) : "",
                                     json_is_string(name) ? ":" : "",
                                     json_is_integer(port) ? json_integer_value(port) : 0) &&
                 summary_path(&b, json_is_string(path) ? json_string_value(path) : "/metrics");
        }
    }
    if (first)
        ok = ok && strbuf_puts(&b, json_object_size(effective) ? "no backends" : "none");
    (void)ok; /* the limit is effectively unbounded */
    return summary_finish(&b);
}

/* Set want[key] = value (stolen) unless the pod already has exactly that string. */
static void want_annotation(json_t *want, const json_t *annotations, const char *key, json_t *value,
                            bool keep_user)
{
    const json_t *cur = json_object_get(annotations, key);
    if ((keep_user && cur) || json_equal(cur, value)) {
        json_decref(value);
        return;
    }
    json_object_set_new(want, key, value);
}

static void build_annotations(json_t *patch, const char *base, const struct target *t,
                              const json_t *effective, const char *known_hash,
                              const struct conf *c, const struct podpatch_options *opt)
{
    json_t *want = json_object();
    const json_t *eff = c->empty ? NULL : effective;

    char *hash = known_hash && !c->empty ? xstrdup(known_hash) : podpatch_config_hash(eff);
    want_annotation(want, t->annotations, PODPATCH_ANNOT_HASH, json_string(hash), false);
    free(hash);
    char *summary = config_summary(eff);
    want_annotation(want, t->annotations, PODPATCH_ANNOT_CONFIG, json_string(summary), false);
    free(summary);

    if (opt->prometheus_annotations && c->n_prom > 0) {
        const struct prom_backend *pb = &c->prom[0];
        char port[16];
        snprintf(port, sizeof port, "%d", pb->port);
        const char *values[4] = {"true", port, pb->path,
                                 strcmp(pb->mode, "ProvidedTLS") == 0 ? "https" : "http"};
        for (size_t i = 0; i < 4; i++)
            want_annotation(want, t->annotations, prom_annot_keys[i], json_string(values[i]), true);
    }

    if (json_object_size(want) == 0) {
        json_decref(want);
        return;
    }
    if (absent(t->metadata)) {
        emit_add(patch, xasprintf("%s/metadata", base), json_pack("{s:o}", "annotations", want));
        return;
    }
    if (absent(t->annotations)) {
        emit_add(patch, xasprintf("%s/metadata/annotations", base), want);
        return;
    }
    const char *key;
    json_t *value;
    json_object_foreach(want, key, value) {
        char *tok = podpatch_escape_token(key);
        emit_add(patch, xasprintf("%s/metadata/annotations/%s", base, tok), json_incref(value));
        free(tok);
    }
    json_decref(want);
}

/* Prometheus paths Kuma's Envoy route never matches (see the decisions above). */
static void warn_relative_paths(const struct conf *c, struct violations *warnings)
{
    for (size_t i = 0; i < c->n_prom; i++) {
        const char *p = c->prom[i].path;
        if (!p[0] || p[0] == '/')
            continue;
        json_t *s = json_string(p);
        char *q = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        violations_add(warnings, "",
                       "metrics path %.60s%s on port %d has no leading \"/\": Kuma's Envoy route "
                       "never matches it, every scrape gets 404",
                       q ? q : "\"?\"", q && strlen(q) > 60 ? "..." : "", c->prom[i].port);
        free(q);
        json_decref(s);
    }
}

enum mm_status podpatch_build(const json_t *pod, const char *base, const json_t *effective,
                              const struct podpatch_options *opt, json_t **patch_out,
                              struct violations *warnings, struct mm_error *err)
{
    return podpatch_build_hashed(pod, base, effective, NULL, opt, patch_out, warnings, err);
}

enum mm_status podpatch_build_hashed(const json_t *pod, const char *base, const json_t *effective,
                                     const char *config_hash, const struct podpatch_options *opt,
                                     json_t **patch_out, struct violations *warnings,
                                     struct mm_error *err)
{
    enum mm_status rc;
    struct conf c;
    struct target t;
    json_t *patch = NULL;
    char *cpath = NULL;
    struct violations scratch; /* when the caller passes no warnings list */

    violations_init(&scratch);
    if (!warnings)
        warnings = &scratch;
    memset(&c, 0, sizeof c);
    mm_error_clear(err);
    *patch_out = NULL;
    if (!opt)
        opt = &podpatch_default_options;
    if (!base)
        base = "";
    if (base[0] && base[0] != '/') {
        rc = mm_error_set(err, MM_ERR_INVALID, "base", "\"%s\" is not a JSON Pointer", base);
        goto cleanup;
    }
    if ((rc = conf_read(effective, &c, err)) != MM_OK)
        goto cleanup;
    if ((rc = target_find(pod, &t, err)) != MM_OK)
        goto cleanup;

    patch = json_array();
    if (!t.sidecar)
        goto cleanup;
    if (c.empty && !json_object_get(t.annotations, PODPATCH_ANNOT_HASH) &&
        !json_object_get(t.annotations, PODPATCH_ANNOT_CONFIG))
        goto cleanup;

    cpath = xasprintf("%s/spec/%s/%zu", base, t.list, t.index);
    warn_relative_paths(&c, warnings);
    build_ports(patch, cpath, &t, &c, warnings);
    if (c.tls)
        build_tls(patch, base, cpath, &t, opt, warnings);
    build_annotations(patch, base, &t, effective, config_hash, &c, opt);

cleanup:
    free(cpath);
    conf_cleanup(&c);
    violations_cleanup(&scratch);
    if (rc != MM_OK) {
        json_decref(patch);
        patch = NULL;
    }
    *patch_out = patch;
    return rc;
}
