/*
 * Which policies select a data plane proxy: Kuma's DppSelectedByPolicy
 * (pkg/plugins/policies/core/matchers/dataplane.go, v2.14.3) for the kinds a
 * MeshMetric can target, with the mesh and namespace scope of the policy's
 * role.
 */
#ifndef MM_CORE_SELECT_H
#define MM_CORE_SELECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/dataplane.h"
#include "core/policy.h"

/* What selection needs to know besides the policy and the proxy. */
struct select_context {
    const char *system_namespace; /* "kuma-system" */
    const char *zone;             /* this zone's name ("default") */
};

/* Read targetRef (borrowed, may be NULL = {kind: Mesh}) into t; t borrows from it. */
void select_target_init(struct policy_target *t, const json_t *target_ref);

/*
 * True when policy p (a MeshMetric) selects dp. When it does not and why is
 * non-NULL, why gets one sentence saying what did not match (for explain).
 */
bool select_policy(const struct policy *p, const struct dataplane *dp,
                   const struct select_context *ctx, char *why, size_t why_len);

#endif
