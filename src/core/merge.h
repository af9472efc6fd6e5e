/*
 * Kuma's merge of MeshMetric `default`s (pkg/plugins/policies/core/rules/merge/
 * merge.go): RFC 7396 JSON merge patches folded lowest priority first, except
 * that keys whose name starts with "append" (appendProfiles) concatenate
 * arrays. Every value set can be recorded with its origin under its JSON
 * Pointer, so `explain` can say where each value came from.
 *
 * Origins: a JSON object mapping pointers into the merged value to an origin
 * string, at the grain of leaves and whole array elements; an array replaced
 * whole has one entry for the array. The origin of any value is that of the
 * longest pointer in origins that is the value's pointer or a prefix of it
 * ending at a '/'.
 */
#ifndef MM_CORE_MERGE_H
#define MM_CORE_MERGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* RFC 7396 merge of patch into target in place, with the "append" exception. */
void merge_patch(json_t *target, const json_t *patch);

/*
 * Merge patch (an object) into target (an object). With share, arrays and
 * scalars of patch are referenced, not copied: the caller must replace the
 * result by merge_copy_pruned() of it before changing anything in place.
 * When origins is non-NULL, every value the patch sets is recorded under
 * its pointer (ptr is target's own pointer, "" for the root) with origin src.
 */
void merge_objects(json_t *target, const json_t *patch, json_t *origins, const char *ptr,
                   const char *src, bool share);

/* Deep copy without the nulls inside objects (Kuma prunes them, arrays included). New reference. */
json_t *merge_copy_pruned(const json_t *v);

/* ptr + "/" + key with ~ and / escaped (RFC 6901). Caller frees. */
char *merge_ptr_join(const char *ptr, const char *key);
/* ptr + "/" + i. Caller frees. */
char *merge_ptr_index(const char *ptr, size_t i);
/* True when key is ptr or lies below it. */
bool merge_ptr_under(const char *key, const char *ptr);

/* Forget the origins of ptr and everything below it. */
void merge_origins_drop(json_t *origins, const char *ptr);
/* Record origin for ptr (replacing an earlier one). */
void merge_origins_set(json_t *origins, const char *ptr, const char *origin);

#endif
