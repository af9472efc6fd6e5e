/*
 * YAML (and JSON) documents to jansson values, and back.
 *
 * Loading follows the YAML 1.2 core schema, which is what Kubernetes users
 * expect in practice: plain null/~/true/false/integers/floats are typed,
 * everything else (including yes/no/on/off) is a string; quoted scalars and
 * "!!str" are always strings. Mapping keys must be strings. Anchors and
 * aliases work; an alias counts its whole size against the node cap, so a
 * "billion laughs" document fails with MM_ERR_TOO_BIG instead of eating memory.
 */
#ifndef MM_UTIL_YAMLJSON_H
#define MM_UTIL_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

#include "util/error.h"

struct yamljson_limits {
    size_t max_bytes; /* input size */
    size_t max_depth; /* nesting of sequences and mappings */
    size_t max_nodes; /* scalars + collections, aliases expanded */
    size_t max_docs;  /* documents in one stream */
};

/* 16 MiB, depth 64, 1M nodes, 1000 documents. */
extern const struct yamljson_limits yamljson_default_limits;

/*
 * Parse every document of a YAML stream (JSON is YAML) into *docs_out, a new
 * JSON array with one element per non-empty document. On error *docs_out is
 * NULL and err says where ("line L column C: ...").
 */
enum mm_status yamljson_load(const char *data, size_t len, const struct yamljson_limits *lim,
                             json_t **docs_out, struct mm_error *err) MM_WUR;

/* Emit value as one YAML document (block style, keys in object order). Caller frees. */
char *yamljson_dump(const json_t *value);

#endif
