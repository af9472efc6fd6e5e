/*
 * What the offline commands share: reading input files (YAML or JSON,
 * multi-document, capped) and printing problems as
 * "<file>: document <n>: <field>: <message>" on stderr.
 */
#ifndef MM_CLI_CLIDOCS_H
#define MM_CLI_CLIDOCS_H

#include <jansson.h>
#include <stddef.h>

#define CLI_MAX_INPUT_BYTES (16u << 20)

/* One problem line on stderr; doc 0 = the whole file; field may be NULL or "". */
void cli_problem(const char *file, size_t doc, const char *field, const char *msg);

/* Every document of a file ("-" = stdin) as a new array; on error prints it and returns NULL. */
json_t *cli_load_docs(const char *path);

/* "<Kind> <namespace>/<name>" of an object into buf (borrowed). */
const char *cli_obj_name(const json_t *o, char *buf, size_t n);

#endif
