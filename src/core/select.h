/*
 * Which policies select a data plane proxy: Kuma's DppSelectedByPolicy
 * (pkg/plugins/policies/core/matchers/dataplane.go, v2.14.3) for the kinds a
 * MeshMetric can target: the mesh, the zone check (dppSelectedByZone) and the
 * namespace check (dppSelectedByNamespace) on the policy's computed labels
 * (labels.h) and the Dataplane's labels, then the targetRef, with Dataplane
 * targetRefs by name resolved through Kuma's resource identifiers (KRI).
 * docs/merge-order.md ("The Dataplane view") lists the rules.
 */
#ifndef MM_CORE_SELECT_H
#define MM_CORE_SELECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/dataplane.h"
#include "core/policy.h"

/*
 * What selection needs to know besides the policy and the proxy. Today the
 * policy's computed labels carry both (policy_load computes them with the
 * view's system namespace and zone); kept so callers need not change when a
 * rule needs more.
 */
struct select_context {
    const char *system_namespace; /* "kuma-system" */
    const char *zone;             /* this zone's name ("default") */
};

/*
 * Read targetRef (borrowed; NULL or JSON null = {kind: Mesh}; another
 * non-object selects nothing) into t; t borrows from it.
 */
void select_target_init(struct policy_target *t, const json_t *target_ref);

/*
 * True when policy p (a MeshMetric) selects dp. When it does not and why is
 * non-NULL, why gets one sentence saying what did not match (for explain).
 * ctx may be NULL. Allocates nothing (the webhook calls it for every
 * candidate of every pod).
 */
bool select_policy(const struct policy *p, const struct dataplane *dp,
                   const struct select_context *ctx, char *why, size_t why_len);

#endif
