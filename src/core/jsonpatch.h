/*
 * RFC 6902 JSON Patch application, strict (RFC semantics, as json-patch v5):
 * used by the offline CLI to show the mutated object, and by tests. The API
 * server applies webhook patches with json-patch v4, which accepts everything
 * this accepts (kubernetes-api.md §2.5), so a patch that applies here applies
 * there.
 */
#ifndef MM_CORE_JSONPATCH_H
#define MM_CORE_JSONPATCH_H

#include <jansson.h>

#include "util/error.h"

/*
 * Apply patch (an array of operations) to *doc in place. *doc may be
 * replaced (a root-level op). On error *doc is unchanged and err names the
 * operation index and path.
 */
enum mm_status jsonpatch_apply(json_t **doc, const json_t *patch, struct mm_error *err) MM_WUR;

#endif
