/*
 * One loaded policy: a MeshMetric or a (legacy metrics) Mesh, turned from a
 * document into what the engine uses by the one loader every path shares —
 * the CLI's -p files, the webhook's policy directory and the operator's
 * caches — so they cannot disagree: copy, Kuma's validation and
 * normalisation, schema defaults, then the facts selection and ordering read
 * (mesh, role, display name, targetRef), computed once.
 *
 * A policy is immutable after policy_load and reference-counted, so views of
 * successive generations share it and threads read it without locks.
 */
#ifndef MM_CORE_POLICY_H
#define MM_CORE_POLICY_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "core/labels.h"
#include "core/violations.h"
#include "util/error.h"

enum policy_kind {
    POLICY_MESHMETRIC = 0,
    POLICY_MESH,
};

/* What a targetRef selects, by kind (select.c gives the meaning). */
enum target_kind {
    TARGET_MESH = 0,            /* also an absent targetRef */
    TARGET_MESH_SUBSET,
    TARGET_MESH_SERVICE,
    TARGET_MESH_SERVICE_SUBSET,
    TARGET_DATAPLANE,
    TARGET_MESH_GATEWAY,        /* selects gateways only */
    TARGET_OTHER,               /* a kind that never selects a data plane proxy here */
};

/* spec.targetRef, read once. Strings and objects are borrowed from policy.obj. */
struct policy_target {
    enum target_kind kind;
    const char *kind_name; /* as written; "Mesh" when targetRef is absent */
    int kind_rank;         /* SortByTargetRef's order map (0 for unknown kinds) */
    bool sidecar_ok;       /* proxyTypes allows Sidecar (absent = all) */
    bool gateway_ok;       /* proxyTypes allows Gateway (absent = all) */
    const char *name;      /* "" when absent */
    const char *namespace; /* "" when absent */
    const char *section_name; /* "" when absent */
    const json_t *tags;    /* NULL when absent */
    const json_t *labels;  /* NULL when absent */
    const char *service;   /* MeshService(Subset): the kuma.io/service value it names */
};

struct policy {
    enum policy_kind kind;
    json_t *obj;           /* the normalised object, schema defaults applied (owned) */
    const char *name;      /* metadata.name (borrowed from obj) */
    const char *namespace; /* metadata.namespace; "" for a Mesh or an object without one */
    const char *mesh;      /* MeshMetric: label kuma.io/mesh or "default"; Mesh: its name */
    char *id;              /* "namespace/name" (MeshMetric) or "Mesh/name" (owned) */
    struct policy_labels labels; /* role, display name, origin (labels.h) */
    struct policy_target target; /* MeshMetric only */
    struct violations warnings;  /* normalisation and deprecation notes from loading */
    atomic_int refs;
};

struct policy_load_options {
    const char *system_namespace; /* "kuma-system" when NULL */
    const char *zone;             /* "default" when NULL */
};

/*
 * Load doc (borrowed; never changed): a MeshMetric or a Mesh object. On
 * success *out is a new policy (refcount 1) whose warnings hold what loading
 * noted. When Kuma would reject the object, returns MM_ERR_INVALID with every
 * violation in errs (Kuma's order, paths and messages), warnings in
 * warnings (may be NULL) and *out NULL. MM_ERR_TYPE when doc is not an
 * object of one of the two kinds (err names the field).
 */
enum mm_status policy_load(const json_t *doc, const struct policy_load_options *opt,
                           struct policy **out, struct violations *errs,
                           struct violations *warnings, struct mm_error *err) MM_WUR;

/*
 * Wrap obj (the reference is taken) as a policy without validating or
 * defaulting it: for objects that were validated already, and for tests of
 * selection and ordering on policies Kuma would reject. NULL when obj is not
 * a MeshMetric or Mesh object with a name.
 */
struct policy *policy_wrap(json_t *obj, const struct policy_load_options *opt);

/* True for the kinds policy_load takes ("MeshMetric", "Mesh"). */
bool policy_kind_supported(const char *kind);

struct policy *policy_ref(struct policy *p);
void policy_unref(struct policy *p); /* NULL is a no-op */

/* spec.default of a MeshMetric (borrowed; NULL when absent), the conf merged for it. */
const json_t *policy_default(const struct policy *p);

#endif
