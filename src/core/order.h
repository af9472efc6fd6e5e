/*
 * The order in which matched MeshMetrics merge: Kuma's SortByTargetRef
 * (api/common/v1alpha1/targetref.go and pkg/plugins/policies/core/rules/
 * sort.go, v2.14.3). A later policy has higher priority and wins the merge.
 */
#ifndef MM_CORE_ORDER_H
#define MM_CORE_ORDER_H

#include <stddef.h>

#include "core/policy.h"

/* The targetRef kind's place in Kuma's order map; 0 for kinds it does not list. */
int order_kind_rank(const char *kind);

/* <0 when a has lower priority than b, >0 when higher, 0 for a tie. */
int order_compare(const struct policy *a, const struct policy *b);

/*
 * Stable sort of items (borrowed policies) by ascending priority. Kuma's
 * comparison ends at the display name and its sort is not stable: policies
 * that tie on every key keep their input order here.
 */
void order_sort(const struct policy **items, size_t n);

#endif
