/*
 * The webhook's layer without sockets: admission answers (src/server/admit.c)
 * for good and bad bodies, the Prometheus text of its metrics, and the
 * certificate store's reload rules (keep the old pair on any problem).
 * The real HTTPS paths are in tests/e2e/webhook_test.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/admission.h"
#include "server/admit.h"
#include "server/certstore.h"
#include "server/http.h"
#include "server/replay.h"
#include "server/webhook.h"
#include "server/webmetrics.h"
#include "tls/tls.h"
#include "util/base64.h"
#include "util/log.h"
#include "util/xalloc.h"

/* ---------------------------------------------------------------- a fixed policy source */

static struct policy_view *g_snap;

static struct policy_view *fixed_acquire(void *ctx)
{
    (void)ctx;
    return view_ref(g_snap);
}

static struct policy_view *fixed_wait(void *ctx, uint64_t generation, unsigned timeout_ms)
{
    (void)generation;
    (void)timeout_ms;
    return fixed_acquire(ctx);
}

static bool fixed_ready(void *ctx)
{
    (void)ctx;
    return true;
}

static const char POLICY[] =
    "{\"apiVersion\":\"kuma.io/v1alpha1\",\"kind\":\"MeshMetric\",\"metadata\":{\"name\":\"m\","
    "\"namespace\":\"kuma-system\"},\"spec\":{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":{"
    "\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":5670}}]}}}";

static const char POD[] = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"generateName\":"
                          "\"web-\",\"namespace\":\"shop\"},\"spec\":{\"containers\":[{\"name\":"
                          "\"kuma-sidecar\",\"image\":\"kuma-dp\"},{\"name\":\"app\",\"image\":"
                          "\"app\"}]}}";

static struct engine_config g_engine;
static struct webmetrics g_metrics;

static int setup(void **state)
{
    (void)state;
    struct view_builder *b = view_builder_create(NULL);
    struct mm_error err;
    json_t *policy = json_loads(POLICY, 0, NULL);
    enum mm_status st = view_builder_add(b, policy, NULL, &err);
    json_decref(policy);
    if (st)
        return -1;
    g_snap = view_builder_finish(b, 1);
    engine_config_init(&g_engine);
    webmetrics_init(&g_metrics);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    view_unref(g_snap);
    return 0;
}

static struct admit_env env(void)
{
    struct admit_env e = {.engine = &g_engine,
                          .system_namespace = "kuma-system",
                          .source = {fixed_acquire, fixed_ready, fixed_wait, NULL},
                          .metrics = &g_metrics,
                          .replay = NULL};
    return e;
}

/* An AdmissionReview around object (JSON text or NULL), as a new string. */
static char *review(const char *uid, const char *op, const char *kind, const char *object,
                    bool dry_run)
{
    return xasprintf("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                     "\"request\":{\"uid\":\"%s\",\"kind\":{\"group\":\"%s\",\"version\":\"v1\","
                     "\"kind\":\"%s\"},\"resource\":{\"resource\":\"%s\"},\"namespace\":\"shop\","
                     "\"operation\":\"%s\",\"object\":%s,\"dryRun\":%s}}",
                     uid, strcmp(kind, "Pod") ? "kuma.io" : "", kind,
                     strcmp(kind, "Pod") ? "meshmetrics" : "pods", op, object ? object : "null",
                     dry_run ? "true" : "false");
}

static json_t *reply_json(const struct admit_reply *r)
{
    json_error_t jerr;
    json_t *j = json_loads(r->body, 0, &jerr);
    if (!j)
        fail_msg("reply is not JSON: %s (%s)", jerr.text, r->body);
    return j;
}

static const char *resp_str(const json_t *j, const char *key)
{
    return json_string_value(json_object_get(json_object_get(j, "response"), key));
}

static void test_mutate_patch(void **state)
{
    (void)state;
    struct admit_env e = env();
    char *body = review("u-1", "CREATE", "Pod", POD, false);
    struct admit_reply r;
    admit_mutate(&e, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    assert_true(r.patched);
    assert_int_equal(r.outcome, WEBHOOK_PATCHED);
    assert_string_equal(r.uid, "u-1");
    assert_string_equal(r.object, "Pod shop/web-");
    json_t *j = reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "apiVersion")), "admission.k8s.io/v1");
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "AdmissionReview");
    assert_string_equal(resp_str(j, "uid"), "u-1");
    assert_string_equal(resp_str(j, "patchType"), "JSONPatch");
    const char *p = resp_str(j, "patch");
    size_t n = 0;
    unsigned char *raw = base64_decode(p, strlen(p), &n);
    assert_non_null(raw);
    json_t *patch = json_loadb((const char *)raw, n, 0, NULL);
    assert_true(json_is_array(patch) && json_array_size(patch) > 0);
    json_decref(patch);
    free(raw);
    json_decref(j);
    admit_reply_cleanup(&r);
    free(body);
}

/* A repeated pod is answered from the replay cache: same answer, its own uid. */
static void test_mutate_replay(void **state)
{
    (void)state;
    struct admit_env e = env();
    e.replay = replay_create(16, 1 << 16);
    struct admit_reply first, again, other;
    char *b1 = review("11111111-aaaa", "CREATE", "Pod", POD, false);
    char *b2 = review("22222222-bbbb", "CREATE", "Pod", POD, false);
    admit_mutate(&e, b1, strlen(b1), &first);
    admit_mutate(&e, b2, strlen(b2), &again);
    assert_int_equal(again.status, 200);
    assert_true(again.patched);
    assert_int_equal(again.outcome, WEBHOOK_PATCHED); /* replayed: the same outcome */
    assert_string_equal(again.uid, "22222222-bbbb");
    assert_string_equal(again.object, first.object);
    json_t *j1 = reply_json(&first), *j2 = reply_json(&again);
    assert_string_equal(resp_str(j2, "uid"), "22222222-bbbb");
    json_object_set_new(json_object_get(j2, "response"), "uid", json_string("11111111-aaaa"));
    assert_true(json_equal(j1, j2)); /* identical but for the uid */

    /* New policies (a new snapshot): the old answer is not replayed. */
    struct policy_view *old = g_snap;
    g_snap = view_empty(NULL); /* no policies: no patch */
    char *b3 = review("33333333-cccc", "CREATE", "Pod", POD, false);
    admit_mutate(&e, b3, strlen(b3), &other);
    assert_int_equal(other.status, 200);
    assert_false(other.patched);
    json_t *j3 = reply_json(&other);
    assert_int_equal(other.outcome,
                     json_array_size(json_object_get(json_object_get(j3, "response"), "warnings"))
                         ? WEBHOOK_WARNED
                         : WEBHOOK_UNCHANGED);
    assert_null(resp_str(j3, "patch"));
    assert_string_equal(resp_str(j3, "uid"), "33333333-cccc");
    view_unref(g_snap);
    g_snap = old;

    json_decref(j1);
    json_decref(j2);
    json_decref(j3);
    admit_reply_cleanup(&first);
    admit_reply_cleanup(&again);
    admit_reply_cleanup(&other);
    free(b1);
    free(b2);
    free(b3);
    replay_free(e.replay);
}

struct pass_case {
    const char *name;
    const char *op;
    const char *kind;
    bool dry_run;
    bool want_patch;
};

static const struct pass_case pass_cases[] = {
    {"UPDATE passes unchanged", "UPDATE", "Pod", false, false},
    {"DELETE passes unchanged", "DELETE", "Pod", false, false},
    {"CONNECT passes unchanged", "CONNECT", "Pod", false, false},
    {"dry run gets the patch", "CREATE", "Pod", true, true},
    {"other kinds pass", "CREATE", "MeshMetric", false, false},
};

static void test_mutate_passes(void **state)
{
    (void)state;
    struct admit_env e = env();
    for (size_t i = 0; i < sizeof pass_cases / sizeof *pass_cases; i++) {
        const struct pass_case *c = &pass_cases[i];
        char *body = review("u-2", c->op, c->kind, POD, c->dry_run);
        struct admit_reply r;
        admit_mutate(&e, body, strlen(body), &r);
        assert_int_equal(r.status, 200);
        if (r.patched != c->want_patch)
            fail_msg("%s: patched=%d", c->name, r.patched);
        assert_int_equal(r.outcome, c->want_patch ? WEBHOOK_PATCHED : WEBHOOK_UNCHANGED);
        assert_int_equal(r.dry_run, c->dry_run);
        json_t *j = reply_json(&r);
        assert_string_equal(resp_str(j, "uid"), "u-2");
        assert_true(json_is_true(json_object_get(json_object_get(j, "response"), "allowed")));
        json_decref(j);
        admit_reply_cleanup(&r);
        free(body);
    }
}

struct bad_case {
    const char *name;
    const char *body;
    unsigned status;   /* 400: not a review; 200: answered review */
    const char *field; /* 400: the "field" of the error body */
    const char *uid;   /* 200: the echoed uid */
};

#define ENVELOPE "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","

static const struct bad_case bad_cases[] = {
    {"empty body", "", 400, NULL, NULL},
    {"malformed JSON", "{\"apiVersion\":", 400, NULL, NULL},
    {"JSON array", "[]", 400, NULL, NULL},
    {"a Pod", "{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}", 400, "apiVersion", NULL},
    {"v1beta1 review",
     "{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\","
     "\"request\":{\"uid\":\"x\"}}",
     400, "apiVersion", NULL},
    {"no request", ENVELOPE "\"response\":{}}", 400, "request", NULL},
    {"no uid", ENVELOPE "\"request\":{\"operation\":\"CREATE\"}}", 400, "request.uid", NULL},
    {"object is a string",
     ENVELOPE "\"request\":{\"uid\":\"b-1\",\"operation\":\"CREATE\","
              "\"kind\":{\"kind\":\"Pod\"},\"object\":\"x\"}}",
     200, NULL, "b-1"},
    {"containers not an array",
     ENVELOPE "\"request\":{\"uid\":\"b-2\",\"operation\":\"CREATE\","
              "\"kind\":{\"kind\":\"Pod\"},\"object\":{\"spec\":{"
              "\"containers\":7}}}}",
     200, NULL, "b-2"},
    {"CREATE without object",
     ENVELOPE "\"request\":{\"uid\":\"b-3\",\"operation\":\"CREATE\","
              "\"kind\":{\"kind\":\"Pod\"}}}",
     200, NULL, "b-3"},
    {"dryRun not a boolean", ENVELOPE "\"request\":{\"uid\":\"b-4\",\"dryRun\":\"yes\"}}", 200,
     NULL, "b-4"},
};

static void test_mutate_bad_input(void **state)
{
    (void)state;
    struct admit_env e = env();
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        const struct bad_case *c = &bad_cases[i];
        struct admit_reply r;
        admit_mutate(&e, c->body, strlen(c->body), &r);
        if (r.status != c->status)
            fail_msg("%s: status %u", c->name, r.status);
        assert_int_not_equal(r.log, ADMIT_LOG_NONE);
        if (r.outcome != WEBHOOK_ERROR)
            fail_msg("%s: outcome %s, want error", c->name, webhook_outcome_name(r.outcome));
        json_t *j = reply_json(&r);
        if (c->status == 400) {
            assert_non_null(json_string_value(json_object_get(j, "error")));
            if (c->field)
                assert_string_equal(json_string_value(json_object_get(j, "field")), c->field);
        } else {
            /* Answered: uid echoed, allowed, one warning explaining why nothing changed. */
            assert_string_equal(resp_str(j, "uid"), c->uid);
            json_t *resp = json_object_get(j, "response");
            assert_true(json_is_true(json_object_get(resp, "allowed")));
            assert_null(json_object_get(resp, "patch"));
            assert_int_equal(json_array_size(json_object_get(resp, "warnings")), 1);
        }
        json_decref(j);
        admit_reply_cleanup(&r);
    }
}

static void test_validate(void **state)
{
    (void)state;
    struct admit_env e = env();
    const char *bad = "{\"apiVersion\":\"kuma.io/v1alpha1\",\"kind\":\"MeshMetric\",\"metadata\":"
                      "{\"name\":\"b\",\"namespace\":\"kuma-system\"},\"spec\":{\"targetRef\":{"
                      "\"kind\":\"Mesh\"},\"default\":{\"backends\":[{\"type\":\"Prometheus\","
                      "\"prometheus\":{\"port\":70000}}]}}}";
    char *body = review("v-1", "CREATE", "MeshMetric", bad, false);
    struct admit_reply r;
    unsigned long long before = atomic_load(&g_metrics.denials[0]);
    admit_validate(&e, body, strlen(body), &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.outcome, WEBHOOK_DENIED);
    json_t *j = reply_json(&r);
    json_t *resp = json_object_get(j, "response");
    assert_false(json_is_true(json_object_get(resp, "allowed")));
    json_t *st = json_object_get(resp, "status");
    assert_int_equal(json_integer_value(json_object_get(st, "code")), 422);
    assert_string_equal(json_string_value(json_object_get(st, "reason")), "Invalid");
    assert_string_equal(json_string_value(json_object_get(st, "message")),
                        "spec.default.backends.backend[0].port: port must be a valid (1-65535)");
    /* As Kuma's webhook (validation.go convertValidationErrorOf): details name the object, so
     * kubectl prints `The MeshMetric "<name>" is invalid: <field>: <message>`. */
    json_t *details = json_object_get(st, "details");
    assert_string_equal(json_string_value(json_object_get(details, "kind")), "MeshMetric");
    assert_string_equal(json_string_value(json_object_get(details, "name")), "b");
    json_t *cause = json_array_get(json_object_get(details, "causes"), 0);
    assert_string_equal(json_string_value(json_object_get(cause, "field")),
                        "spec.default.backends.backend[0].port");
    assert_int_equal(atomic_load(&g_metrics.denials[0]), before + 1);
    json_decref(j);
    admit_reply_cleanup(&r);
    free(body);

    /* DELETE and other kinds are allowed; the valid policy too. */
    const char *ops[][3] = {
        {"DELETE", "MeshMetric", bad}, {"CREATE", "Pod", POD}, {"UPDATE", "MeshMetric", POLICY}};
    for (size_t i = 0; i < 3; i++) {
        body = review("v-2", ops[i][0], ops[i][1], ops[i][2], false);
        admit_validate(&e, body, strlen(body), &r);
        assert_true(r.outcome == WEBHOOK_ALLOWED || r.outcome == WEBHOOK_WARNED);
        j = reply_json(&r);
        assert_true(json_is_true(json_object_get(json_object_get(j, "response"), "allowed")));
        json_decref(j);
        admit_reply_cleanup(&r);
        free(body);
    }

    /* CREATE without an object: denied 400, uid echoed. */
    body = review("v-3", "CREATE", "MeshMetric", NULL, false);
    admit_validate(&e, body, strlen(body), &r);
    assert_int_equal(r.outcome, WEBHOOK_ERROR);
    j = reply_json(&r);
    assert_string_equal(resp_str(j, "uid"), "v-3");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(j, "response"), "status"), "code")),
                     400);
    json_decref(j);
    admit_reply_cleanup(&r);
    free(body);

    /* An UPDATE that leaves an invalid spec as it was (a status write on Kuma's CRD, which has
     * no status subresource) is allowed: nothing new to judge. Changing the spec is judged. */
    const char *bad_with_status =
        "{\"apiVersion\":\"kuma.io/v1alpha1\",\"kind\":\"MeshMetric\",\"metadata\":"
        "{\"name\":\"b\",\"namespace\":\"kuma-system\"},\"spec\":{\"targetRef\":{"
        "\"kind\":\"Mesh\"},\"default\":{\"backends\":[{\"type\":\"Prometheus\","
        "\"prometheus\":{\"port\":70000}}]}},\"status\":{\"conditions\":[]}}";
    char *update = review("v-4", "UPDATE", "MeshMetric", bad_with_status, false);
    char *old_at = strstr(update, ",\"dryRun\"");
    assert_non_null(old_at);
    char *with_old = xasprintf("%.*s,\"oldObject\":%s%s", (int)(old_at - update), update, bad,
                               old_at);
    admit_validate(&e, with_old, strlen(with_old), &r);
    assert_int_equal(r.outcome, WEBHOOK_ALLOWED);
    admit_reply_cleanup(&r);
    free(with_old);
    with_old = xasprintf("%.*s,\"oldObject\":%s%s", (int)(old_at - update), update, POLICY,
                         old_at);
    admit_validate(&e, with_old, strlen(with_old), &r);
    assert_int_equal(r.outcome, WEBHOOK_DENIED);
    admit_reply_cleanup(&r);
    free(with_old);
    free(update);

    /* Not a review at all: a 400 with a JSON body. */
    admit_validate(&e, "nope", 4, &r);
    assert_int_equal(r.status, 400);
    assert_int_equal(r.outcome, WEBHOOK_ERROR);
    admit_reply_cleanup(&r);
}

static void test_error_body(void **state)
{
    (void)state;
    struct {
        const char *error, *field, *want;
    } cases[] = {
        {"bad", "x", "{\"error\":\"bad\",\"field\":\"x\"}"},
        {"bad", NULL, "{\"error\":\"bad\"}"},
        {"bad", "", "{\"error\":\"bad\"}"},
        {"quote \" and \\ ", "f", "{\"error\":\"quote \\\" and \\\\ \",\"field\":\"f\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *s = http_error_body(cases[i].error, cases[i].field);
        assert_string_equal(s, cases[i].want);
        free(s);
    }
    /* Invalid UTF-8 still gives valid JSON. */
    char *s = http_error_body("\xff\xfe", "\xc3");
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    json_decref(j);
    free(s);
}

static void test_metrics_text(void **state)
{
    (void)state;
    struct webmetrics m;
    webmetrics_init(&m);
    webmetrics_observe(&m, WEBHOOK_EP_MUTATE, 0.0004);
    webmetrics_observe(&m, WEBHOOK_EP_MUTATE, 0.003);
    webmetrics_observe(&m, WEBHOOK_EP_MUTATE, 0.00001);
    webmetrics_observe(&m, WEBHOOK_EP_VALIDATE, 100.0); /* past every bucket */
    webmetrics_observe(&m, WEBHOOK_EP_COUNT, 1.0);      /* not an admission endpoint: ignored */
    webmetrics_admission(&m, WEBHOOK_EP_MUTATE, WEBHOOK_PATCHED);
    webmetrics_admission(&m, WEBHOOK_EP_MUTATE, WEBHOOK_PATCHED);
    webmetrics_admission(&m, WEBHOOK_EP_MUTATE, WEBHOOK_ERROR);
    webmetrics_admission(&m, WEBHOOK_EP_VALIDATE, WEBHOOK_DENIED);
    webmetrics_admission(&m, WEBHOOK_EP_VALIDATE, WEBHOOK_OUTCOME_COUNT); /* ignored */
    webmetrics_patch(&m);
    webmetrics_denial(&m, "Mesh");
    webmetrics_denial(&m, "Other");
    struct webmetrics_gauges g = {.cert_not_after = 1893456000,
                                  .policies_meshmetric = 3,
                                  .policies_mesh = 1,
                                  .namespaces = 0,
                                  .services = 2,
                                  .have_policy_reloads = true,
                                  .policy_reloads_ok = 4,
                                  .policy_reloads_failed = 1,
                                  .policy_last_ok = 1700000000,
                                  .ready = true};
    struct strbuf out;
    strbuf_init(&out, 1 << 20);
    assert_true(webmetrics_render(&m, &g, &out));
    const char *t = strbuf_str(&out);
    const char *want[] = {
        "meshmetric_webhook_admission_duration_seconds_bucket{endpoint=\"mutate\",le=\"0.00025\"} "
        "1\n",
        "meshmetric_webhook_admission_duration_seconds_bucket{endpoint=\"mutate\",le=\"0.0005\"} "
        "2\n",
        "meshmetric_webhook_admission_duration_seconds_bucket{endpoint=\"mutate\",le=\"0.0025\"} "
        "2\n",
        "meshmetric_webhook_admission_duration_seconds_bucket{endpoint=\"mutate\",le=\"0.005\"} "
        "3\n",
        "meshmetric_webhook_admission_duration_seconds_bucket{endpoint=\"mutate\",le=\"+Inf\"} 3\n",
        "meshmetric_webhook_admission_duration_seconds_count{endpoint=\"mutate\"} 3\n",
        "meshmetric_webhook_admission_duration_seconds_bucket{endpoint=\"validate\",le=\"5\"} 0\n",
        "meshmetric_webhook_admission_duration_seconds_bucket{endpoint=\"validate\",le=\"+Inf\"} "
        "1\n",
        "# TYPE meshmetric_webhook_admissions_total counter\n",
        "meshmetric_webhook_admissions_total{endpoint=\"mutate\",outcome=\"patched\"} 2\n",
        "meshmetric_webhook_admissions_total{endpoint=\"mutate\",outcome=\"unchanged\"} 0\n",
        "meshmetric_webhook_admissions_total{endpoint=\"mutate\",outcome=\"warned\"} 0\n",
        "meshmetric_webhook_admissions_total{endpoint=\"mutate\",outcome=\"error\"} 1\n",
        "meshmetric_webhook_admissions_total{endpoint=\"validate\",outcome=\"allowed\"} 0\n",
        "meshmetric_webhook_admissions_total{endpoint=\"validate\",outcome=\"warned\"} 0\n",
        "meshmetric_webhook_admissions_total{endpoint=\"validate\",outcome=\"denied\"} 1\n",
        "meshmetric_webhook_admissions_total{endpoint=\"validate\",outcome=\"error\"} 0\n",
        "meshmetric_webhook_patches_total 1\n",
        "meshmetric_webhook_validation_denials_total{kind=\"Mesh\"} 1\n",
        "meshmetric_webhook_validation_denials_total{kind=\"other\"} 1\n",
        "meshmetric_webhook_certificate_expiry_timestamp_seconds 1893456000\n",
        "meshmetric_webhook_policy_objects{kind=\"Service\"} 2\n",
        "# TYPE meshmetric_policy_reloads_total counter\n",
        "meshmetric_policy_reloads_total{result=\"success\"} 4\n",
        "meshmetric_policy_reloads_total{result=\"failure\"} 1\n",
        "# TYPE meshmetric_policy_last_reload_success_timestamp_seconds gauge\n",
        "meshmetric_policy_last_reload_success_timestamp_seconds 1700000000\n",
        "meshmetric_webhook_ready 1\n",
        "meshmetric_build_info{version=\"" MM_VERSION "\",component=\"webhook\"} 1\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(t, want[i]))
            fail_msg("metrics text lacks: %s", want[i]);
    /* Outcomes an endpoint cannot have are not rendered. */
    assert_null(strstr(t, "endpoint=\"mutate\",outcome=\"denied\""));
    assert_null(strstr(t, "endpoint=\"validate\",outcome=\"patched\""));
    /* Every line is a comment or "name{labels} value". */
    assert_null(strstr(t, "\n\n"));
    strbuf_cleanup(&out);

    /* Without a reload-stats source the policy reload families are left out. */
    g.have_policy_reloads = false;
    strbuf_init(&out, 1 << 20);
    assert_true(webmetrics_render(&m, &g, &out));
    assert_null(strstr(strbuf_str(&out), "meshmetric_policy_reloads_total"));
    strbuf_cleanup(&out);
}

/* The webhook's /metrics text: its families, the policy source's reload figures and the
 * extension point for the operator's own families. */
static void reload_stats(void *ctx, uint64_t *ok, uint64_t *failed, int64_t *last_ok)
{
    (void)ctx;
    *ok = 7;
    *failed = 2;
    *last_ok = 1700000123;
}

static bool extra(void *ctx, struct strbuf *out)
{
    int *calls = ctx;
    (*calls)++;
    return strbuf_puts(out, "# HELP mm_extra_total An extra family.\n"
                            "# TYPE mm_extra_total counter\nmm_extra_total 42\n");
}

static bool extra_too_big(void *ctx, struct strbuf *out)
{
    (void)ctx;
    return strbuf_printf(out, "%*s", (int)(out->limit - out->len + 1), "");
}

static void test_server_metrics(void **state)
{
    (void)state;
    struct cert_store *certs = cert_store_create("/nonexistent/tls.crt", "/nonexistent/tls.key");
    int calls = 0;
    struct webhook_config wc = {
        .addr = "127.0.0.1:0",
        .engine = &g_engine,
        .source = {fixed_acquire, fixed_ready, fixed_wait, NULL},
        .certs = certs,
        .reload_stats = reload_stats,
        .render_extra = extra,
        .render_extra_ctx = &calls,
    };
    struct webhook_server *s = webhook_server_create(&wc);
    struct strbuf out;
    strbuf_init(&out, 4u << 20);
    assert_true(webhook_server_render_metrics(s, &out));
    const char *t = strbuf_str(&out);
    const char *want[] = {
        "meshmetric_webhook_requests_total{endpoint=\"mutate\",code=\"200\"} 0\n",
        "meshmetric_webhook_open_connections 0\n",
        "meshmetric_webhook_connections_closed_total{reason=\"refused\"} 0\n",
        "meshmetric_webhook_admissions_total{endpoint=\"validate\",outcome=\"denied\"} 0\n",
        "meshmetric_policy_reloads_total{result=\"success\"} 7\n",
        "meshmetric_policy_reloads_total{result=\"failure\"} 2\n",
        "meshmetric_policy_last_reload_success_timestamp_seconds 1700000123\n",
        "meshmetric_webhook_ready 0\n", /* no certificate */
        "# TYPE process_cpu_seconds_total counter\n",
        "# TYPE process_resident_memory_bytes gauge\n",
        "mm_extra_total 42\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(t, want[i]))
            fail_msg("/metrics lacks [%s]", want[i]);
    assert_null(strstr(t, "meshmetric_metrics_listener_")); /* no plain listener configured */
    assert_int_equal(calls, 1);
    /* Each family once: a "# TYPE" line per name. */
    assert_null(strstr(strstr(t, "# TYPE meshmetric_webhook_requests_total") + 1,
                       "# TYPE meshmetric_webhook_requests_total"));
    strbuf_cleanup(&out);
    webhook_server_free(s);

    /* An extension that overflows the cap fails the render (the handler answers 500). */
    wc.render_extra = extra_too_big;
    wc.reload_stats = NULL;
    wc.metrics_addr = "127.0.0.1:0";
    s = webhook_server_create(&wc);
    strbuf_init(&out, 1u << 20);
    assert_false(webhook_server_render_metrics(s, &out));
    assert_null(strstr(strbuf_str(&out), "meshmetric_policy_reloads_total"));
    assert_non_null(strstr(strbuf_str(&out), "meshmetric_metrics_listener_requests_total"));
    strbuf_cleanup(&out);
    webhook_server_free(s);
    cert_store_free(certs);
}

/* ---------------------------------------------------------------- certificate store */

static void put(const char *path, const char *data)
{
    struct mm_error err;
    assert_int_equal(tls_write_file(path, data, strlen(data), 0600, &err), MM_OK);
}

static void test_cert_store_reload(void **state)
{
    (void)state;
    char dir[] = "/tmp/mm-test-certstore-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *crt = xasprintf("%s/tls.crt", dir), *key = xasprintf("%s/tls.key", dir);
    struct tls_pem_pair ca, a, b;
    struct mm_error err;
    const char *names[] = {"svc.ns.svc"};
    struct tls_leaf_request req = {"svc.ns.svc", names, 1, 10, TLS_KEY_ECDSA_P256};
    assert_int_equal(tls_ca_generate("ca", 10, TLS_KEY_ECDSA_P256, &ca, &err), MM_OK);
    assert_int_equal(tls_leaf_generate(&ca, &req, &a, &err), MM_OK);
    assert_int_equal(tls_leaf_generate(&ca, &req, &b, &err), MM_OK);

    struct cert_store *s = cert_store_create(crt, key);
    assert_false(cert_store_ready(s));
    assert_int_equal(cert_store_reload(s, &err), MM_ERR_IO); /* nothing there yet */
    assert_false(cert_store_ready(s));

    put(key, a.key);
    put(crt, a.cert);
    assert_int_equal(cert_store_reload(s, &err), MM_OK);
    assert_true(cert_store_ready(s));
    char serial_a[80], serial[80];
    cert_store_serial(s, serial_a, sizeof serial_a);
    assert_true(strlen(serial_a) > 0);
    assert_true(cert_store_not_after(s) > 0);

    /* Unchanged: nothing reloaded. */
    uint64_t ok = 0, failed = 0;
    assert_int_equal(cert_store_reload(s, &err), MM_OK);
    cert_store_reload_counts(s, &ok, &failed);
    assert_int_equal(ok, 1);

    /* New certificate, old key: refused, the old pair stays. */
    put(crt, b.cert);
    assert_int_equal(cert_store_reload(s, &err), MM_ERR_TLS);
    assert_non_null(strstr(err.message, "does not match"));
    cert_store_serial(s, serial, sizeof serial);
    assert_string_equal(serial, serial_a);

    /* Garbage: refused, the old pair stays. */
    put(key, "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n");
    assert_int_equal(cert_store_reload(s, &err), MM_ERR_TLS);
    cert_store_serial(s, serial, sizeof serial);
    assert_string_equal(serial, serial_a);

    /* The matching key arrives: the new pair is served. */
    put(key, b.key);
    assert_int_equal(cert_store_reload(s, &err), MM_OK);
    cert_store_serial(s, serial, sizeof serial);
    assert_string_not_equal(serial, serial_a);
    cert_store_reload_counts(s, &ok, &failed);
    assert_int_equal(ok, 2);
    assert_int_equal(failed, 3); /* missing files, mismatch, garbage */

    /* A handshake's reference keeps the credentials alive after a swap and after the store. */
    struct cert_creds *held = cert_store_acquire(s);
    assert_non_null(held);
    put(key, a.key);
    put(crt, a.cert);
    assert_int_equal(cert_store_reload(s, &err), MM_OK);
    cert_store_serial(s, serial, sizeof serial);
    assert_string_equal(serial, serial_a);
    cert_store_free(s);
    gnutls_pcert_st *pc = NULL;
    unsigned int npc = 0;
    gnutls_privkey_t pk = NULL;
    cert_creds_get(held, &pc, &npc, &pk);
    assert_true(npc >= 1 && pc != NULL && pk != NULL);
    cert_creds_release(held); /* the last reference: freed here (LeakSanitizer checks) */

    unlink(crt);
    unlink(key);
    rmdir(dir);
    free(crt);
    free(key);
    tls_pem_pair_cleanup(&ca);
    tls_pem_pair_cleanup(&a);
    tls_pem_pair_cleanup(&b);
}

int main(void)
{
    xalloc_install_json();
    log_setup(LOG_ERROR, LOG_FORMAT_JSON);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutate_patch),
        cmocka_unit_test(test_mutate_replay),
        cmocka_unit_test(test_mutate_passes),
        cmocka_unit_test(test_mutate_bad_input),  cmocka_unit_test(test_validate),
        cmocka_unit_test(test_error_body),        cmocka_unit_test(test_metrics_text),
        cmocka_unit_test(test_server_metrics),
        cmocka_unit_test(test_cert_store_reload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
