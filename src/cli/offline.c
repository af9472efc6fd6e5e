/*
 * inject, explain, validate: the engine on files, offline (like
 * `istioctl kube-inject`). Exit codes: 0 ok, 1 invalid policies (validate),
 * 2 usage or input errors. Errors name the file, the document index, the
 * field path and the value.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/clidocs.h"
#include "core/engine.h"
#include "core/jsonpatch.h"
#include "core/mesh.h"
#include "core/meshmetric.h"
#include "util/config.h"
#include "util/fileio.h"
#include "util/xalloc.h"
#include "util/yamljson.h"


struct offline_opts {
    struct config_list files;
    struct config_list policies;
    char *output;
    char *namespace;
    char *system_namespace;
    char *default_tls_secret;
    char *cert_dir;
    bool prometheus_annotations;
};

#define OFF(f) offsetof(struct offline_opts, f)
static const struct config_option offline_options[] = {
    {"filename", 'f', NULL, CONFIG_LIST, NULL, "input file (YAML or JSON, multi-document; - for stdin)",
     OFF(files), 0, 0},
    {"policies", 'p', NULL, CONFIG_LIST, NULL,
     "file with MeshMetric, Mesh, Namespace and Service objects (repeatable)", OFF(policies), 0, 0},
    {"output", 'o', NULL, CONFIG_STRING, "", "output format", OFF(output), 0, 0},
    {"namespace", 'n', NULL, CONFIG_STRING, "", "namespace for objects without metadata.namespace",
     OFF(namespace), 0, 0},
    {"system-namespace", 0, "MM_SYSTEM_NAMESPACE", CONFIG_STRING, "kuma-system",
     "namespace whose policies apply mesh-wide", OFF(system_namespace), 0, 0},
    {"default-tls-secret", 0, "MM_DEFAULT_TLS_SECRET", CONFIG_STRING, "meshmetric-tls",
     "Secret mounted for ProvidedTLS when the pod has no prometheus.metrics.kuma.io/tls-secret",
     OFF(default_tls_secret), 0, 0},
    {"metrics-cert-dir", 0, "MM_METRICS_CERT_DIR", CONFIG_STRING,
     "/var/run/secrets/meshmetric.kuma.io/tls", "where the metrics certificate Secret is mounted",
     OFF(cert_dir), 0, 0},
    {"prometheus-annotations", 0, "MM_PROMETHEUS_ANNOTATIONS", CONFIG_BOOL, "false",
     "also add prometheus.io/scrape|port|path|scheme annotations (never overwriting)",
     OFF(prometheus_annotations), 0, 0},
};
#define N_OPTS (sizeof offline_options / sizeof *offline_options)



/* Validate a MeshMetric or Mesh; print problems; true when valid. */
static bool validate_doc(json_t *doc, const char *file, size_t idx, const char *system_ns,
                         bool print_valid)
{
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    struct violations errs, warns;
    violations_init(&errs);
    violations_init(&warns);
    bool checked = true;
    if (kind && !strcmp(kind, "MeshMetric"))
        meshmetric_validate(doc, system_ns, &errs, &warns);
    else if (kind && !strcmp(kind, "Mesh"))
        mesh_validate(doc, &errs, &warns);
    else
        checked = false;
    char name[256];
    cli_obj_name(doc, name, sizeof name);
    for (size_t i = 0; i < errs.len; i++) {
        char *msg = xasprintf("%s: %s", name, errs.items[i].message);
        cli_problem(file, idx, errs.items[i].field, msg);
        free(msg);
    }
    for (size_t i = 0; i < warns.len; i++)
        fprintf(stderr, "%s: document %zu: %s: warning: %s%s%s\n", file, idx, name,
                warns.items[i].field, *warns.items[i].field ? ": " : "", warns.items[i].message);
    if (print_valid && checked && errs.len == 0)
        printf("%s: document %zu: %s: valid\n", file, idx, name);
    bool ok = errs.len == 0;
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    return ok;
}

/* Load all policy files into set. Returns 0, or 2 after printing problems. */
static int load_policies(const struct offline_opts *o, struct policy_set *set)
{
    int rc = 0;
    for (size_t f = 0; f < o->policies.n; f++) {
        const char *path = o->policies.items[f];
        json_t *docs = cli_load_docs(path);
        if (!docs) {
            rc = 2;
            continue;
        }
        size_t i;
        json_t *doc;
        json_array_foreach(docs, i, doc) {
            if (!validate_doc(doc, path, i + 1, o->system_namespace, false)) {
                rc = 2;
                continue;
            }
            struct mm_error err;
            mm_error_clear(&err);
            if (policy_set_add(set, json_incref(doc), NULL, &err)) {
                cli_problem(path, i + 1, err.field, err.message);
                rc = 2;
            }
        }
        json_decref(docs);
    }
    return rc;
}

static void engine_config_from(const struct offline_opts *o, struct engine_config *cfg)
{
    engine_config_init(cfg);
    cfg->system_namespace = o->system_namespace;
    cfg->patch.default_tls_secret = o->default_tls_secret;
    cfg->patch.cert_dir = o->cert_dir;
    cfg->patch.prometheus_annotations = o->prometheus_annotations;
}

static bool has_pod_template(const json_t *doc)
{
    static const char *const kinds[] = {"Pod",        "Deployment", "StatefulSet",
                                        "DaemonSet",  "ReplicaSet", "ReplicationController",
                                        "Job",        "CronJob"};
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    for (size_t i = 0; kind && i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(kind, kinds[i]))
            return true;
    return false;
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

static void explain_text(const json_t *ex)
{
    const json_t *dp = json_object_get(ex, "dataplane");
    printf("Object:     %s %s/%s\n", json_string_value(json_object_get(ex, "kind")),
           json_string_value(json_object_get(dp, "namespace")),
           *json_string_value(json_object_get(dp, "name"))
               ? json_string_value(json_object_get(dp, "name"))
               : "<generated name>");
    printf("Mesh:       %s\n", json_string_value(json_object_get(ex, "mesh")));
    printf("Mode:       %s\n", json_string_value(json_object_get(ex, "mode")));
    const json_t *inb = json_object_get(dp, "inbounds");
    printf("Inbounds:   %zu\n", json_array_size(inb));
    size_t i;
    const json_t *v;
    json_array_foreach(inb, i, v) {
        printf("  - %s\n", json_string_value(json_object_get(v, "kuma.io/service")));
    }
    printf("Policies (lowest priority first):\n");
    json_array_foreach(json_object_get(ex, "policies"), i, v) printf("  %zu. %s\n", i + 1,
                                                                    json_string_value(v));
    if (!json_array_size(json_object_get(ex, "policies")))
        printf("  (none)\n");
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
    json_object_foreach((json_t *)json_object_get(ex, "origins"), k, v) {
        printf("  %-48s %s\n", k, json_string_value(v));
    }
    const json_t *w = json_object_get(ex, "warnings");
    if (json_array_size(w)) {
        printf("Warnings:\n");
        json_array_foreach(w, i, v) printf("  - %s\n", json_string_value(v));
    }
    printf("Patch:\n");
    json_array_foreach(json_object_get(ex, "patch"), i, v) {
        char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("  %s\n", s ? s : "");
        free(s);
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
    struct policy_set set;
    policy_set_init(&set);
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
    rc = load_policies(&o, &set);
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
            if (!has_pod_template(doc)) {
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
            if (engine_evaluate(&cfg, &set, doc, *o.namespace ? o.namespace : NULL, &res, &err)) {
                cli_problem(path, i + 1, err.field, err.message);
                rc = 2;
                engine_result_cleanup(&res);
                continue;
            }
            if (mode == MODE_EXPLAIN) {
                json_array_append_new(out_docs, engine_explain_json(&res));
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
    policy_set_cleanup(&set);
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
