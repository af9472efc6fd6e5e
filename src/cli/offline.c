/*
 * inject and explain: the engine on files, offline (like `istioctl
 * kube-inject`), with the same policy loader and view the webhook uses.
 * Exit codes: 0 ok, 2 usage or input errors (including a policy Kuma would
 * reject: the cluster would not have it). Errors name the file, the document
 * index, the field path and the value.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/clidocs.h"
#include "core/engine.h"
#include "core/jsonpatch.h"
#include "core/policy.h"
#include "core/view.h"
#include "util/config.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

struct offline_opts {
    struct config_list files;
    struct config_list policies;
    char *output;
    char *namespace;
    char *system_namespace;
    char *zone;
    char *default_tls_secret;
    char *cert_dir;
    bool prometheus_annotations;
    bool all;
};

#define OFF(f) offsetof(struct offline_opts, f)
static const struct config_option offline_options[] = {
    {"filename", 'f', NULL, CONFIG_LIST, NULL,
     "input file (YAML or JSON, multi-document; - for stdin)", OFF(files), 0, 0},
    {"policies", 'p', NULL, CONFIG_LIST, NULL,
     "file with MeshMetric, Mesh, Namespace, Service, ReplicaSet and Job objects (repeatable)",
     OFF(policies), 0, 0},
    {"output", 'o', NULL, CONFIG_STRING, "", "output format", OFF(output), 0, 0},
    {"namespace", 'n', NULL, CONFIG_STRING, "", "namespace for objects without metadata.namespace",
     OFF(namespace), 0, 0},
    {"system-namespace", 0, "MM_SYSTEM_NAMESPACE", CONFIG_STRING, "kuma-system",
     "namespace whose policies apply mesh-wide", OFF(system_namespace), 0, 0},
    {"zone", 0, "MM_ZONE", CONFIG_STRING, "default",
     "the Kuma zone the pods run in (Kuma's default zone name is \"default\")", OFF(zone), 0, 0},
    {"default-tls-secret", 0, "MM_DEFAULT_TLS_SECRET", CONFIG_STRING, "meshmetric-tls",
     "Secret mounted for ProvidedTLS when the pod has no prometheus.metrics.kuma.io/tls-secret",
     OFF(default_tls_secret), 0, 0},
    {"metrics-cert-dir", 0, "MM_METRICS_CERT_DIR", CONFIG_STRING,
     "/var/run/secrets/meshmetric.kuma.io/tls", "where the metrics certificate Secret is mounted",
     OFF(cert_dir), 0, 0},
    {"prometheus-annotations", 0, "MM_PROMETHEUS_ANNOTATIONS", CONFIG_BOOL, "false",
     "also add prometheus.io/scrape|port|path|scheme annotations (never overwriting)",
     OFF(prometheus_annotations), 0, 0},
    {"all", 0, NULL, CONFIG_BOOL, "false",
     "explain: also list the mesh's policies that do not select the pod, with the reason",
     OFF(all), 0, 0},
};
#define N_OPTS (sizeof offline_options / sizeof *offline_options)

/* One policy-file document into b: policies through the one loader, printing Kuma's
 * verdict with the file and document; returns false when the document is rejected. */
static bool add_policy_doc(struct view_builder *b, const json_t *doc, const char *path,
                           size_t idx, const char *prefix, const struct policy_load_options *lo)
{
    char name[300], field[600];
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    size_t klen = kind ? strlen(kind) : 0;
    if (json_is_object(doc) && klen >= 4 && !strcmp(kind + klen - 4, "List") &&
        json_is_array(json_object_get(doc, "items"))) {
        bool ok = true;
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(doc, "items"), i, item)
        {
            json_t *it = json_incref(item);
            if (json_is_object(item) && !json_object_get(item, "kind") && klen > 4) {
                json_decref(it);
                it = json_copy(item);
                json_object_set_new(it, "kind", json_stringn(kind, klen - 4));
            }
            char *sub = xasprintf("%sitems[%zu].", prefix, i);
            ok = add_policy_doc(b, it, path, idx, sub, lo) && ok;
            free(sub);
            json_decref(it);
        }
        return ok;
    }
    if (!json_is_object(doc) || !policy_kind_supported(kind)) {
        struct mm_error err;
        mm_error_clear(&err);
        if (view_builder_add(b, doc, NULL, &err)) {
            snprintf(field, sizeof field, "%s%s", prefix, err.field);
            cli_problem(path, idx, field, err.message);
            return false;
        }
        return true;
    }
    struct violations errs, warns;
    struct mm_error err;
    struct policy *p = NULL;
    violations_init(&errs);
    violations_init(&warns);
    mm_error_clear(&err);
    enum mm_status st = policy_load(doc, lo, &p, &errs, &warns, &err);
    cli_obj_name(doc, name, sizeof name);
    for (size_t i = 0; i < errs.len; i++) {
        char *msg = xasprintf("%s: %s", name, errs.items[i].message);
        snprintf(field, sizeof field, "%s%s", prefix, errs.items[i].field);
        cli_problem(path, idx, field, msg);
        free(msg);
    }
    if (st && st != MM_ERR_INVALID) {
        snprintf(field, sizeof field, "%s%s", prefix, err.field);
        cli_problem(path, idx, field, err.message);
    }
    for (size_t i = 0; i < warns.len; i++) {
        char *msg = xasprintf("%s: warning: %s", name, warns.items[i].message);
        snprintf(field, sizeof field, "%s%s", prefix, warns.items[i].field);
        cli_problem(path, idx, field, msg);
        free(msg);
    }
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    if (st)
        return false;
    view_builder_add_policy(b, p);
    return true;
}

/* Load all policy files into a view. Returns 0, or 2 after printing problems. */
static int load_view(const struct offline_opts *o, struct policy_view **out)
{
    int rc = 0;
    struct view_options vo = {.system_namespace = o->system_namespace, .zone = o->zone};
    struct policy_load_options lo = {.system_namespace = o->system_namespace, .zone = o->zone};
    struct view_builder *b = view_builder_create(&vo);
    for (size_t f = 0; f < o->policies.n; f++) {
        const char *path = o->policies.items[f];
        json_t *docs = cli_load_docs(path);
        if (!docs) {
            rc = 2;
            continue;
        }
        size_t i;
        json_t *doc;
        json_array_foreach(docs, i, doc)
        {
            if (!add_policy_doc(b, doc, path, i + 1, "", &lo))
                rc = 2;
        }
        json_decref(docs);
    }
    *out = view_builder_finish(b, 1);
    return rc;
}

static void engine_config_from(const struct offline_opts *o, struct engine_config *cfg)
{
    engine_config_init(cfg);
    cfg->patch.default_tls_secret = o->default_tls_secret;
    cfg->patch.cert_dir = o->cert_dir;
    cfg->patch.prometheus_annotations = o->prometheus_annotations;
}

static void print_json(const json_t *v, bool pretty)
{
    char *s = json_dumps(v, pretty ? JSON_INDENT(2) | JSON_PRESERVE_ORDER
                                   : JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) {
        puts(s);
        free(s);
    }
}

static void print_yaml(const json_t *v, bool first)
{
    char *s = yamljson_dump(v);
    if (!s)
        return;
    /* the emitter writes "---" itself; keep one separator between docs */
    const char *body = s;
    if (!strncmp(body, "---\n", 4))
        body += 4;
    else if (!strncmp(body, "--- ", 4))
        body += 4;
    printf("%s%s", first ? "" : "---\n", body);
    free(s);
}

enum mode { MODE_INJECT, MODE_EXPLAIN };

static const char *sv(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

/* "key=value, key=value" of a string map, sorted by key. Caller frees. */
static char *kv_line(const json_t *map)
{
    size_t n = json_object_size(map), i = 0;
    const char **keys = xcalloc(n ? n : 1, sizeof *keys);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)map, k, v) keys[i++] = k;
    for (size_t x = 1; x < n; x++) /* insertion sort: maps are small */
        for (size_t y = x; y > 0 && strcmp(keys[y - 1], keys[y]) > 0; y--) {
            const char *t = keys[y];
            keys[y] = keys[y - 1];
            keys[y - 1] = t;
        }
    size_t len = 1;
    for (i = 0; i < n; i++)
        len += strlen(keys[i]) + strlen(sv(map, keys[i])) + 3;
    char *out = xmalloc(len), *o = out;
    *o = '\0';
    for (i = 0; i < n; i++)
        o += snprintf(o, len - (size_t)(o - out), "%s%s=%s", i ? ", " : "", keys[i],
                      sv(map, keys[i]));
    free(keys);
    return out;
}

static void explain_text(const json_t *ex)
{
    const json_t *dp = json_object_get(ex, "dataplane");
    const char *name = sv(ex, "name");
    size_t i;
    const json_t *v;
    if (json_is_true(json_object_get(ex, "generateName")))
        printf("Object:     %s %s/%s* (name generated at creation), workload %s %s\n",
               sv(ex, "kind"), sv(ex, "namespace"), name, sv(dp, "workloadKind"),
               sv(dp, "workload"));
    else
        printf("Object:     %s %s/%s\n", sv(ex, "kind"), sv(ex, "namespace"),
               *name ? name : "(no name)");
    printf("Mesh:       %s\n", sv(ex, "mesh"));
    printf("Mode:       %s\n", sv(ex, "mode"));
    printf("Proxy:      %s\n", sv(dp, "proxyType"));
    if (json_object_get(dp, "gatewayTags")) {
        char *gt = kv_line(json_object_get(dp, "gatewayTags"));
        printf("Gateway tags: %s\n", gt);
        free(gt);
    }
    char *labels = kv_line(json_object_get(dp, "labels"));
    printf("Dataplane labels: %s\n", *labels ? labels : "(none)");
    free(labels);
    const json_t *inb = json_object_get(dp, "inbounds");
    printf("Inbounds:   %zu\n", json_array_size(inb));
    json_array_foreach(inb, i, v)
    {
        char *tags = kv_line(json_object_get(v, "tags"));
        printf("  - port %lld%s: %s\n", (long long)json_integer_value(json_object_get(v, "port")),
               json_is_true(json_object_get(v, "serviceless")) ? " (serviceless)" : "", tags);
        free(tags);
    }
    printf("Policies (lowest priority first):\n");
    json_array_foreach(json_object_get(ex, "policies"), i, v) printf("  %zu. %s\n", i + 1,
                                                                    json_string_value(v));
    if (!json_array_size(json_object_get(ex, "policies")))
        printf("  (none)\n");
    const json_t *unsel = json_object_get(ex, "unselected");
    if (unsel) {
        printf("Policies of the mesh that do not select this pod:\n");
        json_array_foreach(unsel, i, v) printf("  - %s: %s\n", sv(v, "policy"), sv(v, "reason"));
        if (!json_array_size(unsel))
            printf("  (none)\n");
    }
    printf("Effective config:\n");
    char *y = yamljson_dump(json_object_get(ex, "effective"));
    if (y) {
        for (char *line = y, *nl; *line; line = nl + 1) {
            nl = strchr(line, '\n');
            if (!nl)
                break;
            if (strncmp(line, "---", 3) && strncmp(line, "...", 3))
                printf("  %.*s\n", (int)(nl - line), line);
        }
        free(y);
    }
    printf("Origins:\n");
    const char *k;
    json_object_foreach((json_t *)json_object_get(ex, "origins"), k, v)
    {
        printf("  %-48s %s\n", k, json_string_value(v));
    }
    if (json_is_string(json_object_get(ex, "secret")))
        printf("Secret:     %s (tls.crt and tls.key, in namespace %s) must exist for the "
               "ProvidedTLS backend\n",
               sv(ex, "secret"), sv(ex, "namespace"));
    const json_t *reasons = json_object_get(ex, "reasons");
    if (json_array_size(reasons)) {
        printf("Notes:\n");
        json_array_foreach(reasons, i, v) printf("  - %s\n", json_string_value(v));
    }
    const json_t *w = json_object_get(ex, "warnings");
    if (json_array_size(w)) {
        printf("Warnings:\n");
        json_array_foreach(w, i, v) printf("  - %s\n", json_string_value(v));
    }
    printf("Patch:\n");
    json_array_foreach(json_object_get(ex, "patch"), i, v)
    {
        char *str = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("  %s\n", str ? str : "");
        free(str);
    }
    if (!json_array_size(json_object_get(ex, "patch")))
        printf("  (no change)\n");
}

static int run(enum mode mode, int argc, char **argv)
{
    struct offline_opts o;
    memset(&o, 0, sizeof o);
    struct mm_error err;
    mm_error_clear(&err);
    bool help = false;
    const char *usage =
        mode == MODE_INJECT
            ? "Usage: meshmetric-operator inject -f pod.yaml [-p policies.yaml ...] "
              "[-o yaml|json|patch]"
            : "Usage: meshmetric-operator explain -f pod.yaml [-p policies.yaml ...] "
              "[-o text|json]";
    int rc = 0;
    json_t *out_docs = json_array();
    struct policy_view *view = NULL;
    if (config_parse(offline_options, N_OPTS, &o, argc, argv, NULL, &help, &err)) {
        fprintf(stderr, "%s: %s\n%s\n", err.field[0] ? err.field : "error", err.message, usage);
        rc = 2;
        goto out;
    }
    if (help) {
        config_print_help(stdout, usage, offline_options, N_OPTS);
        goto out;
    }
    const char *fmt = *o.output ? o.output : (mode == MODE_INJECT ? "yaml" : "text");
    bool fmt_ok = mode == MODE_INJECT
                      ? (!strcmp(fmt, "yaml") || !strcmp(fmt, "json") || !strcmp(fmt, "patch"))
                      : (!strcmp(fmt, "text") || !strcmp(fmt, "json"));
    if (!fmt_ok) {
        fprintf(stderr, "output: unsupported format \"%s\"\n%s\n", fmt, usage);
        rc = 2;
        goto out;
    }
    if (o.files.n == 0) {
        fprintf(stderr, "filename: -f is required\n%s\n", usage);
        rc = 2;
        goto out;
    }
    rc = load_view(&o, &view);
    if (rc)
        goto out;
    struct engine_config cfg;
    engine_config_from(&o, &cfg);
    for (size_t f = 0; f < o.files.n; f++) {
        const char *path = o.files.items[f];
        json_t *docs = cli_load_docs(path);
        if (!docs) {
            rc = 2;
            continue;
        }
        size_t i;
        json_t *doc;
        json_array_foreach(docs, i, doc) {
            if (!engine_kind_supported(json_string_value(json_object_get(doc, "kind")))) {
                if (mode == MODE_INJECT && strcmp(fmt, "patch"))
                    json_array_append(out_docs, doc); /* passed through unchanged */
                else if (mode == MODE_EXPLAIN) {
                    const char *kind = json_string_value(json_object_get(doc, "kind"));
                    char *m = xasprintf("kind \"%s\" has no pod template; skipped",
                                        kind ? kind : "(none)");
                    cli_problem(path, i + 1, "kind", m);
                    free(m);
                }
                continue;
            }
            struct engine_result res;
            engine_result_init(&res);
            mm_error_clear(&err);
            if (engine_evaluate(&cfg, view, doc, *o.namespace ? o.namespace : NULL, &res, &err)) {
                cli_problem(path, i + 1, err.field, err.message);
                rc = 2;
                engine_result_cleanup(&res);
                continue;
            }
            if (mode == MODE_EXPLAIN) {
                json_array_append_new(out_docs, engine_explain_json(&res, view, &cfg, o.all));
            } else if (!strcmp(fmt, "patch")) {
                json_array_append(out_docs, res.patch);
            } else {
                json_t *copy = json_deep_copy(doc);
                if (jsonpatch_apply(&copy, res.patch, &err)) {
                    cli_problem(path, i + 1, err.field, err.message);
                    rc = 2;
                } else {
                    json_array_append(out_docs, copy);
                }
                json_decref(copy);
                for (size_t w = 0; w < res.warnings.len; w++) {
                    char *m = xasprintf("warning: %s", res.warnings.items[w].message);
                    cli_problem(path, i + 1, res.warnings.items[w].field, m);
                    free(m);
                }
            }
            engine_result_cleanup(&res);
        }
        json_decref(docs);
    }
    size_t i;
    json_t *d;
    json_array_foreach(out_docs, i, d) {
        if (mode == MODE_EXPLAIN) {
            if (!strcmp(fmt, "json"))
                print_json(d, true);
            else {
                if (i)
                    printf("\n");
                explain_text(d);
            }
        } else if (!strcmp(fmt, "yaml")) {
            print_yaml(d, i == 0);
        } else {
            print_json(d, strcmp(fmt, "patch") != 0);
        }
    }
out:
    json_decref(out_docs);
    view_unref(view);
    config_cleanup(offline_options, N_OPTS, &o);
    return rc;
}

int cli_inject(int argc, char **argv)
{
    return run(MODE_INJECT, argc, argv);
}

int cli_explain(int argc, char **argv)
{
    return run(MODE_EXPLAIN, argc, argv);
}
