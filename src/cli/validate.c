/*
 * meshmetric-operator validate: Kuma's validation of MeshMetric and Mesh
 * files, offline. Exit 0 all valid, 1 some invalid, 2 input not understood.
 */
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

struct validate_opts {
    struct config_list files;
    char *system_namespace;
};

#define OFF(f) offsetof(struct validate_opts, f)
static const struct config_option validate_options[] = {
    {"filename", 'f', NULL, CONFIG_LIST, NULL,
     "file to check (YAML or JSON, multi-document; - for stdin; repeatable)", OFF(files), 0, 0},
    {"system-namespace", 0, "MM_SYSTEM_NAMESPACE", CONFIG_STRING, "kuma-system",
     "namespace whose policies apply mesh-wide (decides the allowed targetRef kinds)",
     OFF(system_namespace), 0, 0},
};
#define N_OPTS (sizeof validate_options / sizeof *validate_options)

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

int cli_validate(int argc, char **argv)
{
    struct validate_opts o;
    memset(&o, 0, sizeof o);
    struct mm_error err;
    mm_error_clear(&err);
    bool help = false;
    const char *usage = "Usage: meshmetric-operator validate -f policies.yaml [-f more.yaml ...]";
    struct config_list positional = {0};
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
    size_t invalid = 0, total = 0;
    for (size_t f = 0; f < o.files.n; f++) {
        json_t *docs = cli_load_docs(o.files.items[f]);
        if (!docs) {
            rc = 2;
            continue;
        }
        size_t i;
        json_t *doc;
        json_array_foreach(docs, i, doc) {
            total++;
            if (!json_is_object(doc)) {
                cli_problem(o.files.items[f], i + 1, "", "document is not an object");
                invalid++;
                continue;
            }
            if (!validate_doc(doc, o.files.items[f], i + 1, o.system_namespace, true))
                invalid++;
        }
        json_decref(docs);
    }
    if (rc == 0 && invalid)
        rc = 1;
    fprintf(stderr, "%zu document(s), %zu invalid\n", total, invalid);
out:
    config_list_cleanup(&positional);
    config_cleanup(validate_options, N_OPTS, &o);
    return rc;
}
