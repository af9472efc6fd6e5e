/*
 * meshmetric-operator validate: Kuma's validation of MeshMetric and Mesh
 * files, offline, never silent: every document is either checked or named
 * with the reason it was not.
 *
 * Exit codes: 0 every document checked and valid; 1 some document invalid;
 * 2 some input not understood (a file that cannot be read or parsed, a file
 * with no documents, a document that is not an object, a kind or apiVersion
 * validate does not check, a Universal-format resource). 2 wins over 1:
 * a run that did not understand all of its input cannot vouch for it.
 * Namespace and Service objects (the context inject and explain read from
 * the same files) are noted as not checked and do not change the exit code.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/clidocs.h"
#include "core/mesh.h"
#include "core/meshmetric.h"
#include "util/config.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

#define KUMA_API_VERSION "kuma.io/v1alpha1"
#define MAX_LIST_DEPTH 4

static const char usage[] =
    "Usage: meshmetric-operator validate -f FILE [-f FILE ...] [--strict]\n"
    "\n"
    "Checks MeshMetric and Mesh objects (" KUMA_API_VERSION ", Kubernetes form) as a cluster\n"
    "would: the API server's checks against Kuma's CRD schema, then Kuma's webhook and\n"
    "validator, with their messages. Lists are expanded (kind List or <Kind>List, e.g.\n"
    "`kubectl get meshmetrics -A -o yaml | meshmetric-operator validate -f -`); status and\n"
    "server-set metadata are fine. Namespace and Service objects are noted and skipped.\n"
    "--strict makes fields Kuma's schema does not know errors (kubectl's default\n"
    "--validate=strict does the same), with a did-you-mean hint.\n"
    "\n"
    "Exit status: 0 every document valid; 1 some document invalid; 2 some input not\n"
    "understood (unreadable or unparsable file, no documents, a document that is not an\n"
    "object, a kind or apiVersion validate does not check, Universal format); 2 wins over 1.";

struct validate_opts {
    struct config_list files;
    char *system_namespace;
    bool strict;
};

#define OFF(f) offsetof(struct validate_opts, f)
static const struct config_option validate_options[] = {
    {"filename", 'f', NULL, CONFIG_LIST, NULL,
     "file to check (YAML or JSON, multi-document; - for stdin; repeatable)", OFF(files), 0, 0},
    {"system-namespace", 0, "MM_SYSTEM_NAMESPACE", CONFIG_STRING, "kuma-system",
     "namespace whose policies apply mesh-wide (decides the allowed targetRef kinds)",
     OFF(system_namespace), 0, 0},
    {"strict", 0, NULL, CONFIG_BOOL, "false",
     "fields Kuma's schema does not know are errors, not warnings", OFF(strict), 0, 0},
};
#define N_OPTS (sizeof validate_options / sizeof *validate_options)

struct tally {
    size_t valid, invalid, skipped, not_understood, bad_files, empty_files;
};

/* Where a message is: the file, the document, and inside a List the item ("items[3]: "). */
struct where {
    const char *file;
    size_t doc;
    char item[128];
};

static void say(FILE *f, const struct where *w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(FILE *f, const struct where *w, const char *fmt, ...)
{
    va_list ap;
    fprintf(f, "%s: document %zu: %s", w->file, w->doc, w->item);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    default:
        return "an object";
    }
}

static const char checks[] =
    "validate checks MeshMetric and Mesh (" KUMA_API_VERSION ") objects and Lists of them";

/* Print text indented by two spaces. */
static void print_indented(FILE *f, const char *text)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(f, "  %.*s\n", (int)n, p);
        p += n + (nl ? 1 : 0);
    }
}

/*
 * A Universal-format resource (kumactl's form: type/name/mesh at the top
 * level) and the Kubernetes object it corresponds to.
 */
static void universal(const json_t *doc, const char *type, const struct where *w,
                      const char *system_ns, struct tally *t)
{
    bool mm = strcmp(type, "MeshMetric") == 0;
    json_t *k8s =
        json_pack("{s:s,s:s,s:{}}", "apiVersion", KUMA_API_VERSION, "kind", type, "metadata");
    json_t *meta = json_object_get(k8s, "metadata");
    json_t *spec = json_object();
    const char *name = json_string_value(json_object_get(doc, "name"));
    const char *mesh = json_string_value(json_object_get(doc, "mesh"));
    json_object_set_new(meta, "name", json_string(name ? name : "<name>"));
    if (mm)
        json_object_set_new(meta, "namespace", json_string(system_ns));
    json_t *labels = json_deep_copy(json_object_get(doc, "labels"));
    if (!json_is_object(labels)) {
        json_decref(labels);
        labels = json_object();
    }
    if (mm)
        json_object_set_new(labels, "kuma.io/mesh", json_string(mesh && *mesh ? mesh : "default"));
    if (json_object_size(labels))
        json_object_set_new(meta, "labels", labels);
    else
        json_decref(labels);
    /* A new-style policy keeps its body under "spec" in both forms; a Mesh has its fields at
     * the top level in Universal. kumactl's creationTime/modificationTime are not spec. */
    const json_t *body =
        mm && json_is_object(json_object_get(doc, "spec")) ? json_object_get(doc, "spec") : doc;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        if (body != doc || (strcmp(key, "type") && strcmp(key, "name") && strcmp(key, "mesh") &&
                            strcmp(key, "labels") && strcmp(key, "creationTime") &&
                            strcmp(key, "modificationTime")))
            json_object_set(spec, key, v);
    }
    json_object_set_new(k8s, "spec", spec);
    char *yaml = yamljson_dump(k8s);
    say(stderr, w,
        "not checked: this is a Universal-format %s (\"type: %s\" with \"name\"/\"mesh\" at the "
        "top level, as kumactl applies it); validate checks the Kubernetes form: apiVersion %s, "
        "kind %s, metadata.name%s, spec. This one would be:",
        type, type, KUMA_API_VERSION, type,
        mm ? ", metadata.namespace (the system namespace for a mesh-wide policy), label "
             "kuma.io/mesh"
           : " (cluster-scoped: no namespace)");
    if (yaml)
        print_indented(stderr, yaml);
    free(yaml);
    json_decref(k8s);
    t->not_understood++;
}

/* Validate one MeshMetric or Mesh and print what was found. */
static void check_resource(json_t *obj, const char *kind, const struct where *w,
                           const struct validate_opts *o, struct tally *t)
{
    struct violations errs, warns;
    violations_init(&errs);
    violations_init(&warns);
    char name[256];
    const json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *n = json_string_value(json_object_get(md, "name"));
    snprintf(name, sizeof name, "%s %s%s%s", kind, ns ? ns : "", ns ? "/" : "",
             n && *n ? n : "<unnamed>");

    if (!json_object_get(obj, "apiVersion"))
        violations_add(&errs, "apiVersion",
                       "Required value: kubectl refuses an object without apiVersion (%s)",
                       KUMA_API_VERSION);
    if (!strcmp(kind, "MeshMetric"))
        (void)meshmetric_validate_ex(obj, o->system_namespace, o->strict, &errs, &warns);
    else
        (void)mesh_validate_ex(obj, o->strict, &errs, &warns);

    for (size_t i = 0; i < errs.len; i++) {
        const struct violation *v = &errs.items[i];
        if (v->field[0])
            say(stderr, w, "%s: %s: %s", v->field, name, v->message);
        else
            say(stderr, w, "%s: %s", name, v->message);
    }
    for (size_t i = 0; i < warns.len; i++) {
        const struct violation *v = &warns.items[i];
        say(stderr, w, "%s: warning: %s%s%s", name, v->field, v->field[0] ? ": " : "", v->message);
    }
    if (errs.len == 0) {
        say(stdout, w, "%s: valid", name);
        t->valid++;
    } else {
        t->invalid++;
    }
    violations_cleanup(&errs);
    violations_cleanup(&warns);
}

/*
 * One object: a MeshMetric or Mesh to check, a List to expand, or something
 * validate names and skips. kind_hint and api_hint come from an enclosing
 * <Kind>List, whose items may omit kind and apiVersion (API list responses).
 */
static void check_object(json_t *obj, struct where *w, const char *kind_hint, const char *api_hint,
                         int depth, const struct validate_opts *o, struct tally *t)
{
    if (!json_is_object(obj)) {
        say(stderr, w, "not checked: the %s is %s, not an object; %s",
            w->item[0] ? "item" : "document", type_name(obj), checks);
        t->not_understood++;
        return;
    }
    const json_t *kind_v = json_object_get(obj, "kind");
    const json_t *api_v = json_object_get(obj, "apiVersion");
    const char *kind = json_string_value(kind_v);
    const char *api = json_string_value(api_v);
    const char *type = json_string_value(json_object_get(obj, "type"));
    if (!kind_v && type && (!strcmp(type, "MeshMetric") || !strcmp(type, "Mesh")) &&
        (json_object_get(obj, "name") || json_object_get(obj, "mesh"))) {
        universal(obj, type, w, o->system_namespace, t);
        return;
    }
    if (!kind_v && kind_hint)
        kind = kind_hint;
    if (!api_v && api_hint && kind_hint) { /* as the API server's list response implies */
        api = api_hint;
        json_object_set_new(obj, "apiVersion", json_string(api_hint));
    }
    if (!kind_v && kind_hint)
        json_object_set_new(obj, "kind", json_string(kind_hint));
    if (kind_v && !kind) {
        say(stderr, w, "not checked: kind is %s, not a string; %s", type_name(kind_v), checks);
        t->not_understood++;
        return;
    }
    if (!kind) {
        say(stderr, w, "not checked: the object has no kind; %s", checks);
        t->not_understood++;
        return;
    }
    size_t klen = strlen(kind);
    if (klen >= 4 && !strcmp(kind + klen - 4, "List")) {
        const json_t *items = json_object_get(obj, "items");
        if (!json_is_array(items) || depth >= MAX_LIST_DEPTH) {
            say(stderr, w, "not checked: a %s %s", kind,
                json_is_array(items) ? "nested too deep" : "without an items list");
            t->not_understood++;
            return;
        }
        /* MeshMetricList's items are MeshMetrics; a plain List's items name their kind. */
        char *item_kind = klen > 4 ? xstrndup(kind, klen - 4) : NULL;
        size_t base = strlen(w->item);
        size_t i;
        json_t *item;
        json_array_foreach(items, i, item)
        {
            snprintf(w->item + base, sizeof w->item - base, "items[%zu]: ", i);
            check_object(item, w, item_kind, item_kind ? api : NULL, depth + 1, o, t);
        }
        w->item[base] = '\0';
        if (json_array_size(items) == 0) {
            say(stderr, w, "note: the %s is empty; nothing to check", kind);
            t->skipped++;
        }
        free(item_kind);
        return;
    }
    if (!strcmp(kind, "MeshMetric") || !strcmp(kind, "Mesh")) {
        if (api && strcmp(api, KUMA_API_VERSION) != 0) {
            say(stderr, w,
                "not checked: apiVersion \"%s\" is not served for %s: Kuma's CRD serves %s", api,
                kind, KUMA_API_VERSION);
            t->not_understood++;
            return;
        }
        check_resource(obj, kind, w, o, t);
        return;
    }
    if ((!strcmp(kind, "Namespace") || !strcmp(kind, "Service")) && (!api || !strcmp(api, "v1"))) {
        char name[256];
        say(stderr, w, "%s: not checked (context for inject and explain; %s)",
            cli_obj_name(obj, name, sizeof name), checks);
        t->skipped++;
        return;
    }
    say(stderr, w, "not checked: kind \"%s\"%s%s%s is not one validate knows; %s", kind,
        api ? " (" : "", api ? api : "", api ? ")" : "", checks);
    t->not_understood++;
}

static void summary(const struct tally *t)
{
    char buf[256] = "";
    size_t n = 0;
    const struct {
        size_t count;
        const char *what;
    } parts[] = {
        {t->valid, "valid"},
        {t->invalid, "invalid"},
        {t->not_understood, "not understood"},
        {t->skipped, "skipped"},
        {t->bad_files, t->bad_files == 1 ? "file not read" : "files not read"},
        {t->empty_files, t->empty_files == 1 ? "empty file" : "empty files"},
    };
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        if (!parts[i].count)
            continue;
        int k = snprintf(buf + n, sizeof buf - n, "%s%zu %s", n ? ", " : "", parts[i].count,
                         parts[i].what);
        if (k > 0 && (size_t)k < sizeof buf - n)
            n += (size_t)k;
    }
    size_t checked = t->valid + t->invalid;
    if (checked == 0)
        fprintf(stderr, "nothing checked%s%s\n", n ? ": " : "", buf);
    else
        fprintf(stderr, "%zu checked: %s\n", checked, buf);
}

int cli_validate(int argc, char **argv)
{
    struct validate_opts o;
    memset(&o, 0, sizeof o);
    struct mm_error err;
    mm_error_clear(&err);
    bool help = false;
    struct config_list positional = {0};
    struct tally t = {0};
    int rc = 0;
    if (config_parse(validate_options, N_OPTS, &o, argc, argv, &positional, &help, &err)) {
        fprintf(stderr, "%s: %s\n%s\n", err.field[0] ? err.field : "error", err.message, usage);
        rc = 2;
        goto out;
    }
    if (help) {
        config_print_help(stdout, usage, validate_options, N_OPTS);
        goto out;
    }
    for (size_t i = 0; i < positional.n; i++) { /* "validate a.yaml b.yaml" works too */
        o.files.items = xrealloc(o.files.items, (o.files.n + 1) * sizeof *o.files.items);
        o.files.items[o.files.n++] = xstrdup(positional.items[i]);
    }
    if (o.files.n == 0) {
        fprintf(stderr, "filename: -f is required\n%s\n", usage);
        rc = 2;
        goto out;
    }
    for (size_t f = 0; f < o.files.n; f++) {
        const char *file = o.files.items[f];
        json_t *docs = cli_load_docs(file);
        if (!docs) {
            t.bad_files++;
            continue;
        }
        if (json_array_size(docs) == 0) {
            fprintf(stderr, "%s: not checked: no documents (empty input); %s\n", file, checks);
            t.empty_files++;
        }
        size_t i;
        json_t *doc;
        json_array_foreach(docs, i, doc)
        {
            struct where w = {.file = file, .doc = i + 1};
            check_object(doc, &w, NULL, NULL, 0, &o, &t);
        }
        json_decref(docs);
    }
    summary(&t);
    rc = t.bad_files || t.empty_files || t.not_understood ? 2 : t.invalid ? 1 : 0;
out:
    config_list_cleanup(&positional);
    config_cleanup(validate_options, N_OPTS, &o);
    return rc;
}
