#include "cli/clidocs.h"

#include <stdio.h>
#include <stdlib.h>

#include "util/error.h"
#include "util/fileio.h"
#include "util/yamljson.h"

void cli_problem(const char *file, size_t doc, const char *field, const char *msg)
{
    if (doc)
        fprintf(stderr, "%s: document %zu: %s%s%s\n", file, doc, field && *field ? field : "",
                field && *field ? ": " : "", msg);
    else
        fprintf(stderr, "%s: %s%s%s\n", file, field && *field ? field : "",
                field && *field ? ": " : "", msg);
}

/* Load every document of a file; on error print it and return NULL. */
json_t *cli_load_docs(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    struct mm_error err;
    mm_error_clear(&err);
    if (fileio_read(path, CLI_MAX_INPUT_BYTES, &data, &len, &err)) {
        cli_problem(path, 0, NULL, err.message);
        return NULL;
    }
    json_t *docs = NULL;
    struct yamljson_limits lim = yamljson_default_limits;
    lim.max_bytes = CLI_MAX_INPUT_BYTES;
    if (yamljson_load(data, len, &lim, &docs, &err)) {
        cli_problem(path, 0, NULL, err.message);
        docs = NULL;
    }
    free(data);
    return docs;
}

const char *cli_obj_name(const json_t *o, char *buf, size_t n)
{
    const json_t *md = json_object_get(o, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *kind = json_string_value(json_object_get(o, "kind"));
    snprintf(buf, n, "%s %s%s%s", kind ? kind : "object", ns ? ns : "", ns ? "/" : "",
             name ? name : "<unnamed>");
    return buf;
}
