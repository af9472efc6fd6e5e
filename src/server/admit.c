/* The admission decisions behind /mutate and /validate. */
#include "server/admit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/admission.h"
#include "core/mesh.h"
#include "core/meshmetric.h"
#include "server/http.h"
#include "server/replay.h"
#include "util/xalloc.h"

void admit_reply_init(struct admit_reply *r)
{
    memset(r, 0, sizeof *r);
    r->outcome = WEBHOOK_ERROR; /* until an answer says otherwise */
}

void admit_reply_cleanup(struct admit_reply *r)
{
    free(r->body);
    admit_reply_init(r);
}

/*
 * The envelope (apiVersion, kind, request, request.uid) was fine and only a
 * later field failed: the request is an AdmissionReview we can answer.
 */
static bool envelope_ok(const struct admission_request *req, const struct mm_error *err)
{
    if (!req->uid || !req->uid[0])
        return false;
    return !strncmp(err->field, "request.", 8) && strcmp(err->field, "request.uid") != 0;
}

static void describe(struct admit_reply *out, const struct admission_request *req)
{
    snprintf(out->uid, sizeof out->uid, "%s", req->uid ? req->uid : "");
    const json_t *meta = json_object_get(req->object ? req->object : req->old_object, "metadata");
    const char *name =
        req->name && req->name[0] ? req->name : json_string_value(json_object_get(meta, "name"));
    if (!name || !name[0])
        name = json_string_value(json_object_get(meta, "generateName"));
    if (req->kind && req->kind[0])
        snprintf(out->object, sizeof out->object, "%s %s/%s", req->kind,
                 req->namespace ? req->namespace : "", name ? name : "");
    out->dry_run = req->dry_run;
}

/* A 400 for a body that is not an AdmissionReview. */
static void bad_request(struct admit_reply *out, const struct mm_error *err)
{
    out->status = 400;
    out->body = http_error_body(err->message, err->field);
    out->log = ADMIT_LOG_WARN;
    out->outcome = WEBHOOK_ERROR;
    char buf[1100];
    snprintf(out->reason, sizeof out->reason, "not an AdmissionReview: %s",
             mm_error_str(err, buf, sizeof buf));
}

static void answer(struct admit_reply *out, const struct admission_response *resp)
{
    out->status = 200;
    out->body = admission_encode(resp);
    if (!out->body) { /* cannot happen: the encoder sanitises strings */
        out->status = 500;
        out->body = http_error_body("cannot encode the AdmissionReview response", NULL);
        out->log = ADMIT_LOG_ERROR;
        snprintf(out->reason, sizeof out->reason, "response encoding failed");
    }
}

/* Allow unchanged with one warning, for pods we could not process. */
static void allow_with_warning(const struct admit_env *env, struct admit_reply *out,
                               const char *uid, const char *warning)
{
    struct violations w;
    violations_init(&w);
    violations_add(&w, "", "%s", warning);
    struct admission_response resp = {.uid = uid, .allowed = true, .warnings = &w};
    answer(out, &resp);
    if (env->metrics)
        webmetrics_warnings(env->metrics, WEBHOOK_EP_MUTATE, 1);
    violations_cleanup(&w);
}

void admit_mutate(const struct admit_env *env, const char *body, size_t len,
                  struct admit_reply *out)
{
    struct admission_request req;
    struct mm_error err;
    struct engine_result res;
    struct policy_view *snap = NULL;
    char buf[1100];

    admit_reply_init(out);
    engine_result_init(&res);
    mm_error_clear(&err);
    /* A pod seen before under the same policies: replay the answer (server/replay.h). */
    size_t uid_off = 0, uid_len = 0;
    bool replayable = env->replay && admission_scan_uid(body, len, &uid_off, &uid_len);
    if (replayable) {
        size_t n_warnings = 0;
        snap = env->source.acquire(env->source.ctx);
        if (replay_get(env->replay, snap, body, len, uid_off, uid_len, out, &n_warnings)) {
            if (env->metrics && out->patched && !out->dry_run)
                webmetrics_patch(env->metrics);
            if (env->metrics && n_warnings)
                webmetrics_warnings(env->metrics, WEBHOOK_EP_MUTATE, n_warnings);
            out->outcome = out->patched ? WEBHOOK_PATCHED
                           : n_warnings ? WEBHOOK_WARNED
                                        : WEBHOOK_UNCHANGED;
            engine_result_cleanup(&res);
            view_unref(snap);
            return;
        }
    }
    enum mm_status st = admission_decode(body, len, &req, &err);
    describe(out, &req);
    if (st) {
        if (!envelope_ok(&req, &err)) {
            bad_request(out, &err);
            goto cleanup;
        }
        char *w = xasprintf("meshmetric: cannot read the admission request (%s); pod admitted "
                            "without the metrics patch",
                            mm_error_str(&err, buf, sizeof buf));
        allow_with_warning(env, out, req.uid, w);
        free(w);
        out->log = ADMIT_LOG_WARN;
        out->outcome = WEBHOOK_ERROR;
        snprintf(out->reason, sizeof out->reason, "malformed request admitted unchanged: %s", buf);
        goto cleanup;
    }
    struct admission_response resp = {.uid = req.uid, .allowed = true};
    bool is_pod = !strcmp(req.kind, "Pod") && (!req.group || !req.group[0]) &&
                  (!req.resource[0] || !strcmp(req.resource, "pods"));
    if (!is_pod || req.sub_resource[0] || strcmp(req.operation, "CREATE") != 0) {
        answer(out, &resp); /* UPDATE, DELETE, subresources, other kinds: unchanged */
        out->outcome = WEBHOOK_UNCHANGED;
        goto cleanup;
    }
    if (!req.object) {
        allow_with_warning(env, out, req.uid,
                           "meshmetric: the CREATE request carries no object; pod admitted "
                           "without the metrics patch");
        out->log = ADMIT_LOG_WARN;
        out->outcome = WEBHOOK_ERROR;
        snprintf(out->reason, sizeof out->reason, "CREATE without an object");
        goto cleanup;
    }
    if (!snap)
        snap = env->source.acquire(env->source.ctx);
    st = engine_evaluate(env->engine, snap, req.object, req.namespace, &res, &err);
    if (st) {
        char *w = xasprintf("meshmetric: %s; pod admitted without the metrics patch",
                            mm_error_str(&err, buf, sizeof buf));
        allow_with_warning(env, out, req.uid, w);
        free(w);
        if (env->metrics)
            webmetrics_engine_error(env->metrics);
        out->log = ADMIT_LOG_ERROR;
        out->outcome = WEBHOOK_ERROR;
        snprintf(out->reason, sizeof out->reason, "engine failed, pod admitted unchanged: %s", buf);
        goto cleanup;
    }
    resp.patch = res.patch;
    resp.warnings = &res.warnings;
    answer(out, &resp);
    out->patched = json_array_size(res.patch) > 0;
    out->outcome = out->patched       ? WEBHOOK_PATCHED
                   : res.warnings.len ? WEBHOOK_WARNED
                                      : WEBHOOK_UNCHANGED;
    if (env->metrics) {
        if (out->patched && !req.dry_run)
            webmetrics_patch(env->metrics);
        if (res.warnings.len)
            webmetrics_warnings(env->metrics, WEBHOOK_EP_MUTATE, res.warnings.len);
    }
    if (res.warnings.len) {
        char *joined = violations_join(&res.warnings);
        out->log = ADMIT_LOG_INFO;
        snprintf(out->reason, sizeof out->reason, "admitted with warnings: %s", joined);
        free(joined);
    }
    if (replayable)
        replay_put(env->replay, snap, body, len, uid_off, uid_len, out, res.warnings.len);
cleanup:
    if (out->status != 200)
        out->outcome = WEBHOOK_ERROR;
    engine_result_cleanup(&res); /* before the view: the result may borrow from it */
    view_unref(snap);
    admission_request_cleanup(&req);
}

void admit_validate(const struct admit_env *env, const char *body, size_t len,
                    struct admit_reply *out)
{
    struct admission_request req;
    struct mm_error err;
    struct violations errs, warns;
    json_t *copy = NULL;
    char buf[1100];

    admit_reply_init(out);
    violations_init(&errs);
    violations_init(&warns);
    mm_error_clear(&err);
    enum mm_status st = admission_decode(body, len, &req, &err);
    describe(out, &req);
    struct admission_response resp = {.uid = req.uid, .allowed = true};
    if (st) {
        if (!envelope_ok(&req, &err)) {
            bad_request(out, &err);
            goto cleanup;
        }
        resp.allowed = false;
        resp.code = 400;
        resp.reason = "BadRequest";
        resp.message = mm_error_str(&err, buf, sizeof buf);
        answer(out, &resp);
        out->log = ADMIT_LOG_WARN;
        out->outcome = WEBHOOK_ERROR;
        snprintf(out->reason, sizeof out->reason, "malformed request denied: %s", buf);
        goto cleanup;
    }
    bool is_mm = !strcmp(req.kind, "MeshMetric");
    bool is_mesh = !strcmp(req.kind, "Mesh");
    bool checks = !strcmp(req.operation, "CREATE") || !strcmp(req.operation, "UPDATE");
    if (!checks || (!is_mm && !is_mesh) || req.sub_resource[0]) {
        answer(out, &resp); /* DELETE, CONNECT, status updates, other kinds */
        out->outcome = WEBHOOK_ALLOWED;
        goto cleanup;
    }
    if (!req.object) {
        resp.allowed = false;
        resp.code = 400;
        resp.reason = "BadRequest";
        resp.message = "the request carries no object to validate";
        answer(out, &resp);
        out->log = ADMIT_LOG_WARN;
        out->outcome = WEBHOOK_ERROR;
        snprintf(out->reason, sizeof out->reason, "%s without an object", req.operation);
        goto cleanup;
    }
    if (!strcmp(req.operation, "UPDATE") && req.old_object &&
        json_equal(json_object_get(req.object, "spec"), json_object_get(req.old_object, "spec"))) {
        /* The spec is as it was (a status write, a label edit): nothing to judge again, and
         * denying it would block the status that reports an invalid policy (Kuma's CRD has no
         * status subresource, so a status write is an UPDATE of the object). */
        answer(out, &resp);
        out->outcome = WEBHOOK_ALLOWED;
        goto cleanup;
    }
    copy = json_deep_copy(req.object); /* validation may normalise fields in place */
    bool valid = is_mm ? meshmetric_validate(copy, env->system_namespace, &errs, &warns)
                       : mesh_validate(copy, &errs, &warns);
    resp.warnings = &warns;
    if (!valid || !violations_empty(&errs)) {
        char *message = violations_join(&errs);
        resp.allowed = false;
        resp.code = 422;
        resp.reason = "Invalid";
        resp.message = message;
        resp.causes = &errs;
        resp.details_kind = req.kind;
        resp.details_name = json_string_value(
            json_object_get(json_object_get(req.object, "metadata"), "name")); /* NULL if absent */
        answer(out, &resp);
        out->log = ADMIT_LOG_INFO;
        out->outcome = WEBHOOK_DENIED;
        snprintf(out->reason, sizeof out->reason, "denied: %s", message);
        free(message);
        if (env->metrics)
            webmetrics_denial(env->metrics, req.kind);
    } else {
        answer(out, &resp);
        out->outcome = warns.len ? WEBHOOK_WARNED : WEBHOOK_ALLOWED;
    }
    if (env->metrics && warns.len)
        webmetrics_warnings(env->metrics, WEBHOOK_EP_VALIDATE, warns.len);
cleanup:
    if (out->status != 200)
        out->outcome = WEBHOOK_ERROR;
    json_decref(copy);
    violations_cleanup(&errs);
    violations_cleanup(&warns);
    admission_request_cleanup(&req);
}
