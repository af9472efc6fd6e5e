/*
 * AdmissionReview (admission.k8s.io/v1) decoding and encoding
 * (kubernetes-api.md §2.2-2.4). The encoder always produces a response the
 * API server accepts: apiVersion/kind set, uid echoed, padded base64 patch
 * with patchType JSONPatch only when the patch is non-empty.
 */
#ifndef MM_CORE_ADMISSION_H
#define MM_CORE_ADMISSION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/violations.h"
#include "util/error.h"

#define ADMISSION_MAX_BODY (7u << 20) /* 7 MiB, as controller-runtime */

struct admission_request {
    json_t *root;          /* the whole decoded review (owned) */
    const char *uid;       /* borrowed from root; "" when absent */
    const char *operation; /* CREATE/UPDATE/DELETE/CONNECT, or "" */
    const char *namespace; /* may be "" */
    const char *name;      /* may be "" (generateName) */
    const char *kind;      /* request.kind.kind, e.g. "Pod" */
    const char *group;     /* request.kind.group, "" for core */
    const char *resource;  /* request.resource.resource, e.g. "pods" */
    const char *sub_resource; /* "" when absent */
    bool dry_run;
    json_t *object;        /* borrowed; NULL when absent or JSON null */
    json_t *old_object;    /* borrowed; NULL when absent or JSON null */
    bool wide_numbers;     /* the body held integers beyond int64, decoded as reals */
};

/*
 * Decode a body. Returns MM_ERR_PARSE for malformed JSON, MM_ERR_TYPE when it
 * is JSON but not an admission.k8s.io/v1 AdmissionReview with a request and
 * a uid; err names the field. When the uid could be read it is kept in
 * req->uid even on error (so the caller can still echo it), with req->root
 * set; admission_request_cleanup must be called in every case.
 *
 * Integers beyond int64 (which jansson refuses) are decoded as reals, as the
 * API server's decoder does (sigs.k8s.io/json: int64 when it fits, else
 * float64), and req->wide_numbers is set; validation then reports them with
 * the API server's message. The API server keeps such a number only in a
 * custom resource: in an object of another group than kuma.io (a Pod) it is
 * an object that cannot be decoded (below). When only request.object cannot be decoded
 * (a number beyond any double, invalid UTF-8, a syntax error inside it)
 * while the envelope around it is sound, the result is MM_ERR_PARSE with
 * err->field "request.object" and req->uid set, so the caller answers with
 * a well-formed review rather than an HTTP 400.
 */
enum mm_status admission_decode(const char *body, size_t len, struct admission_request *req,
                                struct mm_error *err) MM_WUR;
void admission_request_cleanup(struct admission_request *req);

struct admission_response {
    const char *uid;
    bool allowed;
    const json_t *patch;        /* JSON Patch array; NULL or [] = no patch */
    const struct violations *warnings; /* may be NULL; each becomes one warning string */
    /* Denial (allowed == false): */
    int code;                   /* e.g. 422 */
    const char *reason;         /* e.g. "Invalid" */
    const char *message;
    const struct violations *causes; /* each -> {type: FieldValueInvalid, field, message} */
    /* details.kind / details.name next to the causes, as Kuma's validating webhook sends
     * them; kubectl then prints `The MeshMetric "x" is invalid: <field>: <message>`. */
    const char *details_kind;   /* may be NULL */
    const char *details_name;   /* may be NULL */
};

/*
 * Find request.uid in a body without building a tree: the byte span of its
 * JSON string token, quotes included. Only plain keys are matched; returns
 * false (callers then take the full path) when the top level or the request
 * object is not well formed, a key there contains an escape, "request" or
 * "uid" appears twice, or the uid is not made only of [A-Za-z0-9._:-]
 * (Kubernetes uids are UUIDs). A true answer must still be confirmed
 * against admission_decode's uid before relying on it.
 */
bool admission_scan_uid(const char *body, size_t len, size_t *off, size_t *tok_len);

/* Encode the response review as compact JSON. Caller frees. */
char *admission_encode(const struct admission_response *resp);

#endif
