/*
 * Unit tests for src/k8s/client.c, watch.c and reflector.c against an
 * in-process HTTP server (tests/k8s/fakeserver.h): the exact requests every
 * verb sends, the bearer token (trimmed, re-read periodically and after a
 * 401), Retry-After/429 handling for reads and writes, body caps, non-JSON
 * answers, connection failures, watch streams (events, HTTP 410, ERROR 410,
 * cancellation from another thread, deadline), one client shared by many
 * threads, and the reflector's relist rules, backoff and stop.
 * Real TLS and the local API server are exercised by tests/e2e/k8s_test.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../k8s/fakeserver.h"
#include "k8s/cancel.h"
#include "k8s/client.h"
#include "k8s/reflector.h"
#include "k8s/watch.h"
#include "util/log.h"
#include "util/xalloc.h"

static const struct k8s_resource pods = {"", "v1", "pods"};
static const struct k8s_resource widgets = {"example.com", "v1", "widgets"};

static struct k8s_client *make_client(int port, const char *token, const char *token_file,
                                      const struct k8s_client_options *o)
{
    struct k8s_config cfg;
    k8s_config_init(&cfg);
    cfg.server = xasprintf("http://127.0.0.1:%d", port);
    cfg.namespace = xstrdup("default");
    cfg.token = token ? xstrdup(token) : NULL;
    cfg.token_file = token_file ? xstrdup(token_file) : NULL;
    struct k8s_client *c = NULL;
    struct k8s_error err = K8S_ERROR_INIT;
    if (k8s_client_create(&cfg, o, &c, &err) != MM_OK)
        fail_msg("client: %s", err.base.message);
    k8s_config_cleanup(&cfg);
    k8s_error_cleanup(&err);
    return c;
}

/* ---- paths ---- */

static void test_paths(void **state)
{
    (void)state;
    struct {
        const struct k8s_resource *res;
        const char *ns, *name, *sub, *want;
    } cases[] = {
        {&pods, NULL, NULL, NULL, "/api/v1/pods"},
        {&pods, "", NULL, NULL, "/api/v1/pods"},
        {&pods, "default", NULL, NULL, "/api/v1/namespaces/default/pods"},
        {&pods, "default", "p1", NULL, "/api/v1/namespaces/default/pods/p1"},
        {&pods, "default", "p1", "status", "/api/v1/namespaces/default/pods/p1/status"},
        {&widgets, "ns", "w1", "status", "/apis/example.com/v1/namespaces/ns/widgets/w1/status"},
        {&widgets, NULL, "w1", NULL, "/apis/example.com/v1/widgets/w1"},
        {&pods, "a b", "x/y?z", NULL, "/api/v1/namespaces/a%20b/pods/x%2Fy%3Fz"},
        {&pods, NULL, NULL, "status", "/api/v1/pods"}, /* a subresource needs a name */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = k8s_path(cases[i].res, cases[i].ns, cases[i].name, cases[i].sub);
        assert_string_equal(p, cases[i].want);
        free(p);
    }
    char *e = k8s_escape("app=demo,tier in (a,b)~-._é");
    assert_string_equal(e, "app%3Ddemo%2Ctier%20in%20%28a%2Cb%29~-._%C3%A9");
    free(e);
    struct strbuf q;
    strbuf_init(&q, 100);
    assert_true(strbuf_puts(&q, "/api/v1/pods"));
    assert_true(k8s_query_add(&q, "labelSelector", "a=b"));
    assert_true(k8s_query_add(&q, "limit", "500"));
    assert_string_equal(q.data, "/api/v1/pods?labelSelector=a%3Db&limit=500");
    assert_false(k8s_query_add(&q, "fieldSelector",
                               "metadata.name=a-very-long-value-that-overflows-the-cap"));
    strbuf_cleanup(&q);
    assert_string_equal(k8s_patch_content_type(K8S_PATCH_JSON), "application/json-patch+json");
    assert_string_equal(k8s_patch_content_type(K8S_PATCH_MERGE), "application/merge-patch+json");
    assert_string_equal(k8s_patch_content_type(K8S_PATCH_STRATEGIC),
                        "application/strategic-merge-patch+json");
    assert_string_equal(k8s_patch_content_type(K8S_PATCH_APPLY), "application/apply-patch+yaml");
}

static void test_create_errors(void **state)
{
    (void)state;
    struct k8s_config cfg;
    struct k8s_client *c = NULL;
    struct k8s_error err = K8S_ERROR_INIT;
    k8s_config_init(&cfg);
    assert_int_equal(k8s_client_create(&cfg, NULL, &c, &err), MM_ERR_INVALID);
    cfg.server = xstrdup("ftp://example.com");
    assert_int_equal(k8s_client_create(&cfg, NULL, &c, &err), MM_ERR_INVALID);
    assert_non_null(strstr(err.base.message, "ftp://example.com"));
    assert_null(c);
    k8s_config_cleanup(&cfg);
    k8s_error_cleanup(&err);
    k8s_client_free(NULL);
}

/* ---- the wire format of each verb ---- */

struct echo {
    pthread_mutex_t lock;
    char last_body[4096];
};

static const char *echo_body(struct echo *e)
{
    static char copy[4096];
    pthread_mutex_lock(&e->lock);
    snprintf(copy, sizeof copy, "%s", e->last_body);
    pthread_mutex_unlock(&e->lock);
    return copy;
}

static void echo_handler(void *ctx, const struct fs_request *req, struct fs_response *resp)
{
    struct echo *e = ctx;
    pthread_mutex_lock(&e->lock);
    snprintf(e->last_body, sizeof e->last_body, "%s", req->body ? req->body : "");
    pthread_mutex_unlock(&e->lock);
    resp->code = !strcmp(req->method, "POST") ? 201 : 200;
    snprintf(resp->headers, sizeof resp->headers, "Content-Type: application/json\r\n");
    if (!strncmp(req->path, "/api/v1/namespaces/default/pods?", 32))
        resp->body = "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"5\"},\"items\":[]}";
    else if (!strcmp(req->path, "/apis/example.com/v1"))
        resp->body = "{\"kind\":\"APIResourceList\",\"resources\":[{\"name\":\"widgets\"},"
                     "{\"name\":\"widgets/status\"}]}";
    else if (!strcmp(req->path, "/apis/kuma.io/v1alpha1")) {
        resp->code = 404;
        resp->body =
            "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"NotFound\",\"code\":404,"
            "\"message\":\"the server could not find the requested resource\"}";
    } else
        resp->body = "{\"kind\":\"Thing\",\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"7\"}}";
}

static void expect_req(struct fakeserver *s, int i, const char *method, const char *path,
                       const char *ctype)
{
    struct fs_request r = fs_entry(s, i);
    if (strcmp(r.method, method) || strcmp(r.path, path))
        fail_msg("request %d: %s %s, want %s %s", i, r.method, r.path, method, path);
    if (ctype)
        assert_string_equal(r.content_type, ctype);
    assert_string_equal(r.auth, "Bearer tok-123");
}

static void test_verbs_on_the_wire(void **state)
{
    (void)state;
    struct echo e = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct fakeserver *s = fs_start(echo_handler, &e);
    struct k8s_client *c = make_client(s->port, "tok-123", NULL, NULL);
    struct k8s_error err = K8S_ERROR_INIT;
    json_t *out = NULL;
    assert_string_equal(k8s_client_namespace(c), "default");

    assert_int_equal(k8s_get(c, &pods, "default", "p1", NULL, NULL, &out, &err), MM_OK);
    assert_string_equal(json_string_value(json_object_get(out, "kind")), "Thing");
    json_decref(out);
    expect_req(s, 0, "GET", "/api/v1/namespaces/default/pods/p1", NULL);

    assert_int_equal(k8s_get(c, &widgets, "ns", "w1", "status", NULL, &out, &err), MM_OK);
    json_decref(out);
    expect_req(s, 1, "GET", "/apis/example.com/v1/namespaces/ns/widgets/w1/status", NULL);

    struct k8s_list_opts lo = {.label_selector = "app=demo",
                               .field_selector = "metadata.name=demo3",
                               .limit = 500,
                               .continue_token = "abc==",
                               .resource_version = "0",
                               .resource_version_match = "NotOlderThan",
                               .timeout_seconds = 9};
    assert_int_equal(k8s_list(c, &pods, "default", &lo, NULL, &out, &err), MM_OK);
    assert_true(json_is_array(json_object_get(out, "items")));
    json_decref(out);
    expect_req(s, 2, "GET",
               "/api/v1/namespaces/default/pods?labelSelector=app%3Ddemo&fieldSelector=metadata."
               "name%3Ddemo3&limit=500&continue=abc%3D%3D&resourceVersion=0&"
               "resourceVersionMatch=NotOlderThan&timeoutSeconds=9",
               NULL);

    json_t *obj = json_pack("{s:s, s:{s:s}}", "kind", "Widget", "metadata", "name", "w1");
    struct k8s_call_opts wo = {.field_manager = "meshmetric-operator", .dry_run = true};
    assert_int_equal(k8s_create(c, &widgets, "ns", obj, &wo, &out, &err), MM_OK);
    json_decref(out);
    expect_req(s, 3, "POST",
               "/apis/example.com/v1/namespaces/ns/widgets?fieldManager=meshmetric-operator&"
               "dryRun=All",
               "application/json");
    assert_string_equal(echo_body(&e), "{\"kind\":\"Widget\",\"metadata\":{\"name\":\"w1\"}}");

    assert_int_equal(k8s_update(c, &widgets, "ns", "w1", NULL, obj, NULL, NULL, &err), MM_OK);
    expect_req(s, 4, "PUT", "/apis/example.com/v1/namespaces/ns/widgets/w1", "application/json");
    assert_int_equal(k8s_update(c, &widgets, "ns", "w1", "status", obj, NULL, NULL, &err), MM_OK);
    expect_req(s, 5, "PUT", "/apis/example.com/v1/namespaces/ns/widgets/w1/status",
               "application/json");

    json_t *jp =
        json_pack("[{s:s, s:s, s:s}]", "op", "add", "path", "/metadata/labels/x", "value", "y");
    json_t *mp = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "x", "y");
    assert_int_equal(k8s_patch(c, &widgets, "ns", "w1", NULL, K8S_PATCH_JSON, jp, NULL, NULL, &err),
                     MM_OK);
    expect_req(s, 6, "PATCH", "/apis/example.com/v1/namespaces/ns/widgets/w1",
               "application/json-patch+json");
    assert_int_equal(
        k8s_patch(c, &widgets, "ns", "w1", "status", K8S_PATCH_MERGE, mp, NULL, NULL, &err), MM_OK);
    expect_req(s, 7, "PATCH", "/apis/example.com/v1/namespaces/ns/widgets/w1/status",
               "application/merge-patch+json");
    struct k8s_call_opts ao = {.field_manager = "mm", .force = true};
    assert_int_equal(
        k8s_patch(c, &pods, "default", "p1", NULL, K8S_PATCH_APPLY, mp, &ao, NULL, &err), MM_OK);
    expect_req(s, 8, "PATCH", "/api/v1/namespaces/default/pods/p1?fieldManager=mm&force=true",
               "application/apply-patch+yaml");
    assert_int_equal(
        k8s_patch(c, &pods, "default", "p1", NULL, K8S_PATCH_STRATEGIC, mp, NULL, NULL, &err),
        MM_OK);
    expect_req(s, 9, "PATCH", "/api/v1/namespaces/default/pods/p1",
               "application/strategic-merge-patch+json");
    /* refused before sending: apply without a field manager, wrong patch shapes, empty names */
    assert_int_equal(
        k8s_patch(c, &pods, "default", "p1", NULL, K8S_PATCH_APPLY, mp, NULL, NULL, &err),
        MM_ERR_INVALID);
    assert_int_equal(
        k8s_patch(c, &pods, "default", "p1", NULL, K8S_PATCH_JSON, mp, NULL, NULL, &err),
        MM_ERR_INVALID);
    assert_int_equal(
        k8s_patch(c, &pods, "default", "p1", NULL, K8S_PATCH_MERGE, jp, NULL, NULL, &err),
        MM_ERR_INVALID);
    assert_int_equal(k8s_get(c, &pods, "default", "", NULL, NULL, &out, &err), MM_ERR_INVALID);
    assert_int_equal(k8s_update(c, &pods, "default", NULL, NULL, obj, NULL, NULL, &err),
                     MM_ERR_INVALID);
    assert_int_equal(k8s_delete(c, &pods, "default", "", NULL, NULL, NULL, &err), MM_ERR_INVALID);
    assert_int_equal(fs_count(s), 10);

    assert_int_equal(k8s_delete(c, &pods, "default", "p1", NULL, NULL, NULL, &err), MM_OK);
    expect_req(s, 10, "DELETE", "/api/v1/namespaces/default/pods/p1", NULL);
    assert_string_equal(echo_body(&e), "");
    struct k8s_delete_opts d;
    k8s_delete_opts_init(&d);
    assert_int_equal(k8s_delete(c, &pods, "default", "p1", &d, NULL, NULL, &err), MM_OK);
    assert_string_equal(echo_body(&e), ""); /* nothing set: no body */
    d.propagation = K8S_PROPAGATION_BACKGROUND;
    d.precondition_uid = "u-1";
    d.precondition_rv = "7";
    d.grace_period_seconds = 0;
    assert_int_equal(k8s_delete(c, &pods, "default", "p1", &d, NULL, &out, &err), MM_OK);
    json_decref(out);
    expect_req(s, 12, "DELETE", "/api/v1/namespaces/default/pods/p1", "application/json");
    json_t *body = json_loads(echo_body(&e), 0, NULL);
    json_t *want =
        json_pack("{s:s, s:s, s:s, s:i, s:{s:s, s:s}}", "kind", "DeleteOptions", "apiVersion", "v1",
                  "propagationPolicy", "Background", "gracePeriodSeconds", 0, "preconditions",
                  "uid", "u-1", "resourceVersion", "7");
    assert_true(json_equal(body, want));
    json_decref(body);
    json_decref(want);

    /* discovery */
    bool exists = false;
    assert_int_equal(k8s_resource_exists(c, &widgets, NULL, &exists, &err), MM_OK);
    assert_true(exists);
    struct k8s_resource mm = {"kuma.io", "v1alpha1", "meshmetrics"};
    assert_int_equal(k8s_resource_exists(c, &mm, NULL, &exists, &err), MM_OK);
    assert_false(exists);
    struct k8s_resource gadgets = {"example.com", "v1", "gadgets"};
    assert_int_equal(k8s_resource_exists(c, &gadgets, NULL, &exists, &err), MM_OK);
    assert_false(exists);
    struct k8s_response raw;
    assert_int_equal(k8s_request(c, "GET", "/version", NULL, 0, NULL, NULL, &raw, &err), MM_OK);
    assert_int_equal(raw.http_code, 200);
    assert_string_equal(raw.content_type, "application/json");
    assert_non_null(strstr(raw.body, "Thing"));
    k8s_response_cleanup(&raw);
    assert_int_equal(k8s_get_raw(c, "/apis/kuma.io/v1alpha1", NULL, &out, &err), MM_ERR_NOT_FOUND);
    assert_null(out);
    assert_int_equal(k8s_request(c, "GET", "version", NULL, 0, NULL, NULL, &raw, &err),
                     MM_ERR_INVALID);
    assert_int_equal(k8s_request(c, "HEAD", "/version", NULL, 0, NULL, NULL, &raw, &err),
                     MM_ERR_INVALID);
    /* a POST without a body sends an empty one (never reads stdin) */
    int before = fs_count(s);
    assert_int_equal(
        k8s_request(c, "POST", "/api/v1/namespaces/default/pods", NULL, 0, NULL, NULL, &raw, &err),
        MM_OK);
    k8s_response_cleanup(&raw);
    assert_int_equal(fs_count(s), before + 1);
    assert_string_equal(echo_body(&e), "");

    struct k8s_client_stats st;
    k8s_client_stats(c, &st);
    assert_true(st.requests >= 17);

    json_decref(obj);
    json_decref(jp);
    json_decref(mp);
    k8s_error_cleanup(&err);
    k8s_client_free(c);
    fs_stop(s);
}

/* ---- errors, retries, caps ---- */

struct scripted {
    int n;          /* answers given */
    int fail_first; /* how many to fail */
    int code;
    const char *retry_after; /* header, or NULL */
    const char *body;
    const char *ctype;
    pthread_mutex_t lock;
};

static void scripted_handler(void *ctx, const struct fs_request *req, struct fs_response *resp)
{
    (void)req;
    struct scripted *s = ctx;
    pthread_mutex_lock(&s->lock);
    int n = s->n++;
    pthread_mutex_unlock(&s->lock);
    if (n < s->fail_first) {
        resp->code = s->code;
        int k = snprintf(resp->headers, sizeof resp->headers, "Content-Type: %s\r\n",
                         s->ctype ? s->ctype : "application/json");
        if (s->retry_after)
            snprintf(resp->headers + k, sizeof resp->headers - (size_t)k, "Retry-After: %s\r\n",
                     s->retry_after);
        resp->body = s->body;
        return;
    }
    resp->code = !strcmp(req->method, "POST") ? 201 : 200;
    snprintf(resp->headers, sizeof resp->headers, "Content-Type: application/json\r\n");
    resp->body = "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}";
}

struct retry_case {
    const char *name;
    const char *method;
    int fail_first;
    int code;
    const char *retry_after;
    const char *body;
    const char *ctype;
    enum mm_status want;
    int requests; /* sent in total */
    long want_retry_after;
    uint64_t min_ms; /* the client waited at least this long */
};

#define ST429                                                                                      \
    "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"TooManyRequests\",\"code\":429,"     \
    "\"message\":\"slow down\",\"details\":{\"retryAfterSeconds\":1}}"
#define ST429_NODETAIL                                                                             \
    "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"TooManyRequests\",\"code\":429,"     \
    "\"message\":\"slow down\"}"
#define ST500                                                                                      \
    "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"InternalError\",\"code\":500,"       \
    "\"message\":\"boom\"}"
#define ST503                                                                                      \
    "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"ServiceUnavailable\",\"code\":503,"  \
    "\"message\":\"down\"}"

/* clang-format off */
static const struct retry_case retry_cases[] = {
    {"GET 429 + Retry-After header: retried after the delay", "GET", 2, 429, "1", ST429_NODETAIL,
     NULL, MM_OK, 3, -1, 1900},
    {"GET 429 + details.retryAfterSeconds only: retried", "GET", 1, 429, NULL, ST429, NULL, MM_OK,
     2, -1, 900},
    {"GET 429 without any Retry-After: returned to the caller", "GET", 1, 429, NULL,
     ST429_NODETAIL, NULL, MM_ERR_RETRY, 1, -1, 0},
    {"GET flow-control 429 (text body, header): retried", "GET", 1, 429, "0",
     "Too many requests, please try again later.\n", "text/plain; charset=utf-8", MM_OK, 2, -1, 0},
    {"GET 503 + Retry-After: retried", "GET", 1, 503, "0", ST503, NULL, MM_OK, 2, -1, 0},
    {"GET 500 without Retry-After: not retried", "GET", 3, 500, NULL, ST500, NULL, MM_ERR_RETRY, 1,
     -1, 0},
    {"GET 429 forever: 10 retries, then the caller backs off", "GET", 100, 429, "0",
     ST429_NODETAIL, NULL, MM_ERR_RETRY, 11, 0, 0},
    {"GET 429 with a long Retry-After: not waited here", "GET", 1, 429, "120", ST429_NODETAIL,
     NULL, MM_ERR_RETRY, 1, 120, 0},
    {"POST 429 + Retry-After: retried", "POST", 1, 429, "1", ST429_NODETAIL, NULL, MM_OK, 2, -1,
     900},
    {"POST 429 without Retry-After: not retried", "POST", 1, 429, NULL, ST429_NODETAIL, NULL,
     MM_ERR_RETRY, 1, -1, 0},
    {"POST 503 + Retry-After: not retried (writes only for 429)", "POST", 1, 503, "0", ST503, NULL,
     MM_ERR_RETRY, 1, 0, 0},
    {"PUT 500: not retried", "PUT", 1, 500, "0", ST500, NULL, MM_ERR_RETRY, 1, 0, 0},
    {"GET 404: not retried", "GET", 1, 404,
     NULL, "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"NotFound\",\"code\":404,\"message\":\"configmaps \\\"x\\\" not found\"}",
     NULL, MM_ERR_NOT_FOUND, 1, -1, 0},
    {"GET 429 text body without Retry-After", "GET", 1, 429, NULL,
     "Too many requests, please try again later.\n", "text/plain", MM_ERR_RETRY, 1, -1, 0},
};
/* clang-format on */

static void test_retry_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof retry_cases / sizeof retry_cases[0]; i++) {
        const struct retry_case *rc = &retry_cases[i];
        print_message("retry: %s\n", rc->name);
        struct scripted sc = {
            0,         rc->fail_first,           rc->code, rc->retry_after, rc->body,
            rc->ctype, PTHREAD_MUTEX_INITIALIZER};
        struct fakeserver *s = fs_start(scripted_handler, &sc);
        struct k8s_client *c = make_client(s->port, NULL, NULL, NULL);
        struct k8s_error err = K8S_ERROR_INIT;
        const struct k8s_resource cms = {"", "v1", "configmaps"};
        json_t *obj = json_pack("{s:{s:s}}", "metadata", "name", "x");
        uint64_t t0 = k8s_clock_ms();
        enum mm_status st;
        json_t *got = NULL;
        if (!strcmp(rc->method, "GET"))
            st = k8s_get(c, &cms, "default", "x", NULL, NULL, &got, &err);
        else if (!strcmp(rc->method, "POST"))
            st = k8s_create(c, &cms, "default", obj, NULL, NULL, &err);
        else
            st = k8s_update(c, &cms, "default", "x", NULL, obj, NULL, NULL, &err);
        uint64_t took = k8s_clock_ms() - t0;
        if (st != rc->want)
            fail_msg("%s: got %s (%s)", rc->name, mm_status_name(st), err.base.message);
        assert_int_equal(fs_count(s), rc->requests);
        assert_true(took >= rc->min_ms);
        if (st != MM_OK) {
            assert_int_equal(err.http_code, rc->code);
            if (rc->want_retry_after != -1 || !rc->retry_after)
                assert_int_equal(err.retry_after_s, rc->want_retry_after);
            if (rc->ctype && !strncmp(rc->ctype, "text/plain", 10))
                assert_string_equal(err.message, "Too many requests, please try again later.");
        }
        if (st == MM_OK && !strcmp(rc->method, "GET"))
            assert_true(json_is_object(got)); /* the retried GET's object was returned */
        json_decref(got);
        json_decref(obj);
        k8s_error_cleanup(&err);
        k8s_client_free(c);
        fs_stop(s);
    }
}

static void big_handler(void *ctx, const struct fs_request *req, struct fs_response *resp)
{
    (void)ctx;
    static char big[300000];
    if (!big[0]) {
        memset(big, ' ', sizeof big - 3);
        big[0] = '{';
        big[sizeof big - 3] = '}';
        big[sizeof big - 2] = '\0';
    }
    if (strstr(req->path, "notjson")) {
        resp->body = "this is not json";
        return;
    }
    if (strstr(req->path, "notalist")) {
        resp->body = "{\"kind\":\"PodList\",\"items\":{}}";
        return;
    }
    if (strstr(req->path, "nullitems")) {
        resp->body = "{\"kind\":\"PodList\",\"metadata\":{},\"items\":null}";
        return;
    }
    resp->body = big;
}

static void test_body_cap_and_bad_answers(void **state)
{
    (void)state;
    struct fakeserver *s = fs_start(big_handler, NULL);
    struct k8s_client *c = make_client(s->port, NULL, NULL, NULL);
    struct k8s_error err = K8S_ERROR_INIT;
    json_t *out = NULL;
    struct k8s_call_opts small = {.max_body = 100000};
    assert_int_equal(k8s_get(c, &pods, "default", "big", NULL, &small, &out, &err), MM_ERR_TOO_BIG);
    assert_non_null(strstr(err.base.message, "larger than the limit of 100000 bytes"));
    assert_null(out);
    assert_int_equal(k8s_get(c, &pods, "default", "big", NULL, NULL, &out, &err), MM_OK);
    json_decref(out);
    assert_int_equal(k8s_get(c, &pods, "default", "notjson", NULL, NULL, &out, &err), MM_ERR_PARSE);
    assert_non_null(strstr(err.base.message, "not JSON"));
    assert_int_equal(
        k8s_list(c, &(struct k8s_resource){"", "v1", "notalist"}, NULL, NULL, NULL, &out, &err),
        MM_ERR_PARSE);
    assert_int_equal(
        k8s_list(c, &(struct k8s_resource){"", "v1", "nullitems"}, NULL, NULL, NULL, &out, &err),
        MM_OK);
    assert_int_equal(json_array_size(json_object_get(out, "items")), 0);
    json_decref(out);
    k8s_error_cleanup(&err);
    k8s_client_free(c);
    fs_stop(s);
}

static void test_connection_refused(void **state)
{
    (void)state;
    struct fakeserver *s = fs_start(big_handler, NULL);
    int port = s->port;
    fs_stop(s); /* nothing listens there now */
    struct k8s_client *c = make_client(port, NULL, NULL, NULL);
    struct k8s_error err = K8S_ERROR_INIT;
    json_t *out = NULL;
    assert_int_equal(k8s_get(c, &pods, "default", "x", NULL, NULL, &out, &err), MM_ERR_RETRY);
    assert_int_equal(err.http_code, 0);
    assert_non_null(strstr(err.base.message, "GET /api/v1/namespaces/default/pods/x"));
    struct k8s_client_stats st;
    k8s_client_stats(c, &st);
    assert_int_equal(st.failures, 1);
    k8s_error_cleanup(&err);
    k8s_client_free(c);
}

/* ---- the bearer token ---- */

struct tokctx {
    const char *accept; /* the token the server accepts */
    pthread_mutex_t lock;
};

static void token_handler(void *ctx, const struct fs_request *req, struct fs_response *resp)
{
    struct tokctx *t = ctx;
    char want[128];
    pthread_mutex_lock(&t->lock);
    snprintf(want, sizeof want, "Bearer %s", t->accept);
    pthread_mutex_unlock(&t->lock);
    if (strcmp(req->auth, want)) {
        resp->code = 401;
        resp->body = "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Unauthorized\","
                     "\"code\":401,\"message\":\"Unauthorized\"}";
        return;
    }
    resp->body = "{}";
}

static void write_text(const char *path, const char *text)
{
    char *tmp = xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
    free(tmp);
}

static void test_token_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/mm-k8s-token-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *tf = xasprintf("%s/token", dir);
    write_text(tf, "  \ttoken-one\n\n"); /* whitespace trimmed */
    struct tokctx t = {"token-one", PTHREAD_MUTEX_INITIALIZER};
    struct fakeserver *s = fs_start(token_handler, &t);
    struct k8s_client_options o;
    k8s_client_options_init(&o);
    o.token_refresh_ms = 300;
    struct k8s_client *c = make_client(s->port, "static-token-loses", tf, &o);
    struct k8s_error err = K8S_ERROR_INIT;
    json_t *out = NULL;
    assert_int_equal(k8s_get(c, &pods, "default", "x", NULL, NULL, &out, &err), MM_OK);
    json_decref(out);
    assert_string_equal(fs_entry(s, 0).auth, "Bearer token-one");

    /* rotated file: used after the refresh period */
    write_text(tf, "token-two");
    pthread_mutex_lock(&t.lock);
    t.accept = "token-two";
    pthread_mutex_unlock(&t.lock);
    fs_sleep_ms(400);
    assert_int_equal(k8s_get(c, &pods, "default", "x", NULL, NULL, &out, &err), MM_OK);
    json_decref(out);
    assert_int_equal(fs_count(s), 2);
    assert_string_equal(fs_entry(s, 1).auth, "Bearer token-two");

    /* rotated again: the server says 401 before the period ends; the client re-reads and retries */
    write_text(tf, "token-three\n");
    pthread_mutex_lock(&t.lock);
    t.accept = "token-three";
    pthread_mutex_unlock(&t.lock);
    assert_int_equal(k8s_get(c, &pods, "default", "x", NULL, NULL, &out, &err), MM_OK);
    json_decref(out);
    assert_int_equal(fs_count(s), 4);
    assert_string_equal(fs_entry(s, 2).auth, "Bearer token-two");
    assert_string_equal(fs_entry(s, 3).auth, "Bearer token-three");

    /* a token the server never accepts: one retry, then MM_ERR_DENIED (no token in the message) */
    pthread_mutex_lock(&t.lock);
    t.accept = "something-else";
    pthread_mutex_unlock(&t.lock);
    assert_int_equal(k8s_get(c, &pods, "default", "x", NULL, NULL, &out, &err), MM_ERR_DENIED);
    assert_int_equal(fs_count(s), 6);
    assert_null(strstr(err.base.message, "token-three"));

    /* the file becomes unreadable: the last good token is kept */
    unlink(tf);
    fs_sleep_ms(400);
    pthread_mutex_lock(&t.lock);
    t.accept = "token-three";
    pthread_mutex_unlock(&t.lock);
    assert_int_equal(k8s_get(c, &pods, "default", "x", NULL, NULL, &out, &err), MM_OK);
    json_decref(out);
    k8s_client_free(c);

    /* a client whose token file never existed: the static token is used (client-go: file wins
     * only once read successfully) -- here there is no static token either: denied locally */
    struct k8s_client *c2 = make_client(s->port, NULL, tf, &o);
    int before = fs_count(s);
    assert_int_not_equal(k8s_get(c2, &pods, "default", "x", NULL, NULL, &out, &err), MM_OK);
    assert_int_equal(fs_count(s), before); /* nothing sent without a token */
    assert_non_null(strstr(err.base.message, "token file"));
    k8s_client_free(c2);

    k8s_error_cleanup(&err);
    fs_stop(s);
    free(tf);
    rmdir(dir);
}

/* ---- watch ---- */

struct watchsrv {
    atomic_int
        mode; /* 0: events then end; 1: HTTP 410; 2: ERROR 410 event; 3: hold open; 4: garbage */
};

static const char *EV1 =
    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"11\"}}}\n";
static const char *EV2 = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\","
                         "\"resourceVersion\":\"12\"}}}\n{\"type\":\"BOOK";
static const char *EV3 = "MARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":"
                         "\"13\"},\"spec\":{\"containers\":null}}}\n";
static const char *ERR410 = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":"
                            "\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old "
                            "resource version: 5 (10)\",\"reason\":\"Expired\",\"code\":410}}\n";

static void watch_handler(void *ctx, const struct fs_request *req, struct fs_response *resp)
{
    struct watchsrv *w = ctx;
    (void)req;
    snprintf(resp->headers, sizeof resp->headers, "Content-Type: application/json\r\n");
    switch (atomic_load(&w->mode)) {
    case 1:
        resp->code = 410;
        resp->body = "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Expired\",\"code\":"
                     "410,\"message\":\"too old resource version: 5 (10)\"}";
        return;
    case 2:
        resp->stream = true;
        resp->chunks[0] = EV1;
        resp->chunks[1] = ERR410;
        resp->chunks[2] = EV1; /* after the ERROR: never delivered */
        resp->nchunks = 3;
        return;
    case 3:
        resp->stream = true;
        resp->chunks[0] = EV1;
        resp->nchunks = 1;
        resp->hold = true;
        return;
    case 4:
        resp->stream = true;
        resp->chunks[0] = EV1;
        resp->chunks[1] = "<html>oops</html>\n";
        resp->nchunks = 2;
        return;
    default:
        resp->stream = true;
        resp->chunks[0] = EV1;
        resp->chunks[1] = EV2;
        resp->chunk_delay_ms[1] = 50;
        resp->chunks[2] = EV3;
        resp->chunk_delay_ms[2] = 50;
        resp->nchunks = 3;
        return;
    }
}

struct seen {
    int n;
    enum k8s_event_type type[8];
    char rv[8][16];
};

static enum mm_status on_ev(void *ctx, const struct k8s_watch_event *ev)
{
    struct seen *s = ctx;
    if (s->n < 8) {
        s->type[s->n] = ev->type;
        snprintf(s->rv[s->n], sizeof s->rv[s->n], "%s",
                 ev->resource_version ? ev->resource_version : "");
    }
    s->n++;
    return MM_OK;
}

struct canceller {
    struct k8s_cancel *cancel;
    int after_ms;
};

static void *cancel_later(void *arg)
{
    struct canceller *c = arg;
    fs_sleep_ms(c->after_ms);
    k8s_cancel_fire(c->cancel);
    return NULL;
}

static void test_watch(void **state)
{
    (void)state;
    struct watchsrv w;
    atomic_init(&w.mode, 0);
    struct fakeserver *s = fs_start(watch_handler, &w);
    struct k8s_client *c = make_client(s->port, "t", NULL, NULL);
    struct k8s_error err = K8S_ERROR_INIT;
    struct k8s_watch_opts wo = {
        .resource_version = "10", .label_selector = "app=x", .timeout_seconds = 30};
    struct seen seen = {0};

    assert_int_equal(k8s_watch(c, &pods, "default", &wo, on_ev, &seen, &err), MM_OK);
    assert_string_equal(fs_entry(s, 0).path,
                        "/api/v1/namespaces/default/pods?watch=true&allowWatchBookmarks=true&"
                        "resourceVersion=10&labelSelector=app%3Dx&timeoutSeconds=30");
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen.type[0], K8S_EVENT_ADDED);
    assert_int_equal(seen.type[1], K8S_EVENT_MODIFIED);
    assert_int_equal(seen.type[2], K8S_EVENT_BOOKMARK);
    assert_string_equal(seen.rv[2], "13");

    /* HTTP 410 and the ERROR 410 event are the same thing to the caller */
    atomic_store(&w.mode, 1);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(k8s_watch(c, &pods, "default", &wo, on_ev, &seen, &err), MM_ERR_EXPIRED);
    assert_int_equal(err.http_code, 410);
    assert_string_equal(err.reason, "Expired");
    atomic_store(&w.mode, 2);
    assert_int_equal(k8s_watch(c, &pods, "default", &wo, on_ev, &seen, &err), MM_ERR_EXPIRED);
    assert_int_equal(err.http_code, 410);
    assert_string_equal(err.message, "too old resource version: 5 (10)");
    assert_int_equal(seen.n, 1); /* the event after the ERROR was not delivered */

    /* garbage in the stream ends the watch with a parse error */
    atomic_store(&w.mode, 4);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(k8s_watch(c, &pods, NULL, NULL, on_ev, &seen, &err), MM_ERR_PARSE);
    assert_int_equal(seen.n, 1);
    assert_string_equal(fs_entry(s, 3).path, "/api/v1/pods?watch=true&allowWatchBookmarks=true");

    /* cancellation from another thread ends a quiet watch within about a second */
    atomic_store(&w.mode, 3);
    struct k8s_cancel *cancel = k8s_cancel_create();
    struct canceller cl = {cancel, 300};
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, &cl);
    wo.cancel = cancel;
    memset(&seen, 0, sizeof seen);
    uint64_t t0 = k8s_clock_ms();
    assert_int_equal(k8s_watch(c, &pods, "default", &wo, on_ev, &seen, &err), MM_ERR_CANCELLED);
    uint64_t took = k8s_clock_ms() - t0;
    pthread_join(t, NULL);
    print_message("cancelled after %llu ms\n", (unsigned long long)took);
    assert_true(took < 300 + 700); /* the cancel wakes the transfer at once */
    assert_int_equal(seen.n, 1);

    /* a deadline ends a quiet watch normally */
    k8s_cancel_reset(cancel);
    wo.deadline_ms = k8s_clock_ms() + 400;
    t0 = k8s_clock_ms();
    assert_int_equal(k8s_watch(c, &pods, "default", &wo, on_ev, &seen, &err), MM_OK);
    assert_true(k8s_clock_ms() - t0 < 2000);
    k8s_cancel_free(cancel);

    k8s_error_cleanup(&err);
    k8s_client_free(c);
    fs_stop(s);
}

/* ---- one client, many threads ---- */

struct hammer {
    struct k8s_client *c;
    int ok;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    struct k8s_error err = K8S_ERROR_INIT;
    for (int i = 0; i < 40; i++) {
        json_t *out = NULL;
        if (k8s_get(h->c, &pods, "default", "x", NULL, NULL, &out, &err) == MM_OK &&
            json_is_object(out))
            h->ok++;
        json_decref(out);
    }
    k8s_error_cleanup(&err);
    return NULL;
}

static void test_shared_by_threads(void **state)
{
    (void)state;
    struct echo e = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct fakeserver *s = fs_start(echo_handler, &e);
    struct k8s_client *c = make_client(s->port, "tok-123", NULL, NULL);
    enum { N = 8 };
    pthread_t t[N];
    struct hammer h[N];
    for (int i = 0; i < N; i++) {
        h[i] = (struct hammer){c, 0};
        pthread_create(&t[i], NULL, hammer_main, &h[i]);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ok += h[i].ok;
    }
    assert_int_equal(ok, N * 40);
    /* keep-alive connections are shared through the pool: far fewer than one per request */
    int conns = atomic_load(&s->accepted);
    print_message("%d requests over %d connections\n", N * 40, conns);
    assert_true(conns <= 2 * N);
    struct k8s_client_stats st;
    k8s_client_stats(c, &st);
    assert_int_equal(st.requests, N * 40);
    assert_int_equal(st.failures, 0);
    k8s_client_free(c);
    fs_stop(s);
}

/* ---- the reflector's list/relist rules (client-go reflector.go) ---- */

struct refsrv {
    int step; /* which scripted scenario */
    pthread_mutex_t lock;
    int lists, watches;
    bool paged;          /* answer the first list in two pages */
    int watch_fail_code; /* > 0: every watch answers this */
    const char *watch_retry_after;
};

static const char *LIST_P1 =
    "{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":\"10\",\"continue\":\"tok1\"},"
    "\"items\":[{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"3\"}}]}";
static const char *LIST_P2 =
    "{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":\"10\"},\"items\":[{"
    "\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"4\"}}]}";
static const char *LIST_ALL10 =
    "{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":\"10\"},\"items\":[{"
    "\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"3\"}},{\"metadata\":{\"name\":\"b\","
    "\"resourceVersion\":\"4\"}}]}";
static const char *LIST_ALL20 =
    "{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":\"20\"},\"items\":[{"
    "\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"4\"}}]}";
static const char *GONE = "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Expired\","
                          "\"code\":410,\"message\":\"too old resource version: 12 (15)\"}";

static void ref_handler(void *ctx, const struct fs_request *req, struct fs_response *resp)
{
    struct refsrv *r = ctx;
    bool watch = strstr(req->path, "watch=true") != NULL;
    pthread_mutex_lock(&r->lock);
    int n = watch ? r->watches++ : r->lists++;
    bool paged = r->paged;
    int fail_code = r->watch_fail_code;
    const char *retry_after = r->watch_retry_after;
    pthread_mutex_unlock(&r->lock);
    snprintf(resp->headers, sizeof resp->headers, "Content-Type: application/json\r\n");
    if (!watch) {
        if (strstr(req->path, "continue=tok1")) {
            resp->body = LIST_P2;
        } else if (n == 0) {
            resp->body = paged ? LIST_P1 : LIST_ALL10;
        } else if (strstr(req->path, "resourceVersion=12")) {
            resp->code = 410; /* the relist at the last RV: compacted away */
            resp->body = GONE;
        } else {
            resp->body = LIST_ALL20;
        }
        return;
    }
    if (fail_code) {
        resp->code = fail_code;
        if (retry_after)
            snprintf(resp->headers, sizeof resp->headers,
                     "Content-Type: application/json\r\nRetry-After: %s\r\n", retry_after);
        resp->body =
            "{\"kind\":\"Status\",\"status\":\"Failure\",\"code\":500,\"message\":\"injected\"}";
        return;
    }
    resp->stream = true;
    if (n == 0) { /* first watch: two events, then an ERROR 410 */
        resp->chunks[0] = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\","
                          "\"resourceVersion\":\"11\"}}}\n";
        resp->chunks[1] =
            "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"12\"}}}\n";
        resp->chunks[2] = ERR410;
        resp->nchunks = 3;
        return;
    }
    resp->hold = true; /* later watches: quiet */
}

struct cache {
    pthread_mutex_t lock;
    int begins, items, ends, aborts, adds, updates, deletes, synced;
    char end_rv[32];
};

static void h_begin(void *ctx)
{
    struct cache *c = ctx;
    pthread_mutex_lock(&c->lock);
    c->begins++;
    pthread_mutex_unlock(&c->lock);
}
static void h_item(void *ctx, json_t *obj)
{
    struct cache *c = ctx;
    assert_true(json_is_object(obj));
    pthread_mutex_lock(&c->lock);
    c->items++;
    pthread_mutex_unlock(&c->lock);
}
static void h_end(void *ctx, const char *rv)
{
    struct cache *c = ctx;
    pthread_mutex_lock(&c->lock);
    c->ends++;
    snprintf(c->end_rv, sizeof c->end_rv, "%s", rv);
    pthread_mutex_unlock(&c->lock);
}
static void h_abort(void *ctx)
{
    struct cache *c = ctx;
    pthread_mutex_lock(&c->lock);
    c->aborts++;
    pthread_mutex_unlock(&c->lock);
}
static void h_update(void *ctx, json_t *obj)
{
    (void)obj;
    struct cache *c = ctx;
    pthread_mutex_lock(&c->lock);
    c->updates++;
    pthread_mutex_unlock(&c->lock);
}
static void h_synced(void *ctx)
{
    struct cache *c = ctx;
    pthread_mutex_lock(&c->lock);
    c->synced++;
    pthread_mutex_unlock(&c->lock);
}

static double zero_random(void *ctx)
{
    (void)ctx;
    return 0.0;
}

static struct k8s_reflector *make_reflector(struct k8s_client *c, struct cache *cache)
{
    struct k8s_reflector_handler h = {.ctx = cache,
                                      .replace_begin = h_begin,
                                      .replace_item = h_item,
                                      .replace_end = h_end,
                                      .replace_abort = h_abort,
                                      .update = h_update,
                                      .synced = h_synced};
    struct k8s_reflector_options o;
    k8s_reflector_options_init(&o);
    o.namespace = "ns";
    o.min_watch_timeout_s = 100;
    o.random = zero_random;
    struct k8s_reflector *r = NULL;
    struct mm_error err;
    const struct k8s_resource cms = {"", "v1", "configmaps"};
    assert_int_equal(k8s_reflector_create(c, &cms, &o, &h, &r, &err), MM_OK);
    return r;
}

static bool wait_for(struct k8s_reflector *r, uint64_t ms,
                     bool (*cond)(const struct k8s_reflector_state *))
{
    uint64_t until = k8s_clock_ms() + ms;
    struct k8s_reflector_state st;
    do {
        k8s_reflector_state(r, &st);
        if (cond(&st))
            return true;
        fs_sleep_ms(20);
    } while (k8s_clock_ms() < until);
    return false;
}

static bool three_lists(const struct k8s_reflector_state *st)
{
    return st->lists >= 2 && st->watches >= 2;
}

static void test_reflector_relist_rules(void **state)
{
    (void)state;
    for (int paged = 0; paged < 2; paged++) {
        struct refsrv rs = {.lock = PTHREAD_MUTEX_INITIALIZER, .paged = paged};
        struct fakeserver *s = fs_start(ref_handler, &rs);
        struct k8s_client *c = make_client(s->port, NULL, NULL, NULL);
        struct cache cache = {.lock = PTHREAD_MUTEX_INITIALIZER};
        struct k8s_reflector *r = make_reflector(c, &cache);
        struct mm_error err;
        assert_int_equal(k8s_reflector_start(r, &err), MM_OK);
        assert_int_equal(k8s_reflector_start(r, &err), MM_ERR_INVALID);
        assert_true(wait_for(r, 5000, three_lists));
        uint64_t t0 = k8s_clock_ms();
        k8s_reflector_stop(r);
        assert_true(k8s_clock_ms() - t0 < 1000); /* stops a quiet watch at once */
        struct k8s_reflector_state st;
        k8s_reflector_state(r, &st);
        assert_true(st.synced);
        assert_string_equal(st.resource_version, "20");
        assert_int_equal(st.lists, 2);
        assert_int_equal(st.relists, 1);
        assert_int_equal(st.expired, 2); /* the ERROR event and the relist's 410 */
        assert_int_equal(st.events, 1);
        assert_int_equal(st.bookmarks, 1);

        /* the exact request sequence */
        int i = 0;
        const char *base = "/api/v1/namespaces/ns/configmaps";
        char want[512];
        snprintf(want, sizeof want, "%s?limit=500&resourceVersion=0", base);
        assert_string_equal(fs_entry(s, i++).path, want);
        if (paged) {
            snprintf(want, sizeof want, "%s?limit=500&continue=tok1", base);
            assert_string_equal(fs_entry(s, i++).path, want);
        }
        snprintf(want, sizeof want,
                 "%s?watch=true&allowWatchBookmarks=true&resourceVersion=10&timeoutSeconds=100",
                 base);
        assert_string_equal(fs_entry(s, i++).path, want);
        /* relist at the last RV seen (the bookmark's 12); unpaged unless the server paged RV=0 */
        if (paged)
            snprintf(want, sizeof want, "%s?limit=500&resourceVersion=12", base);
        else
            snprintf(want, sizeof want, "%s?resourceVersion=12", base);
        assert_string_equal(fs_entry(s, i++).path, want);
        /* that is 410 too: consistent read */
        snprintf(want, sizeof want, "%s?limit=500", base);
        assert_string_equal(fs_entry(s, i++).path, want);
        snprintf(want, sizeof want,
                 "%s?watch=true&allowWatchBookmarks=true&resourceVersion=20&timeoutSeconds=100",
                 base);
        assert_string_equal(fs_entry(s, i++).path, want);

        /* handler calls: begin/items/end per list, the failed relist aborted nothing (no page came)
         */
        assert_int_equal(cache.begins, 2);
        assert_int_equal(cache.ends, 2);
        assert_int_equal(cache.aborts, 0);
        assert_int_equal(cache.items, 3);
        assert_string_equal(cache.end_rv, "20");
        assert_int_equal(cache.synced, 1);
        assert_int_equal(cache.updates, 1);
        k8s_reflector_free(r);
        k8s_client_free(c);
        fs_stop(s);
    }
}

static bool two_errors(const struct k8s_reflector_state *st)
{
    return st->errors >= 2;
}

static void test_reflector_backoff(void **state)
{
    (void)state;
    struct refsrv rs = {.lock = PTHREAD_MUTEX_INITIALIZER, .watch_fail_code = 500};
    struct fakeserver *s = fs_start(ref_handler, &rs);
    struct k8s_client *c = make_client(s->port, NULL, NULL, NULL);
    struct cache cache = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct k8s_reflector *r = make_reflector(c, &cache);
    struct mm_error err;
    assert_int_equal(k8s_reflector_start(r, &err), MM_OK);
    assert_true(wait_for(r, 5000, two_errors));
    struct k8s_reflector_state st;
    k8s_reflector_state(r, &st);
    assert_int_equal(st.last_backoff_ms, st.errors == 2 ? 1600 : 3200);
    assert_int_equal(st.last_error_code, MM_ERR_RETRY);
    assert_non_null(strstr(st.last_error, "injected"));
    assert_int_equal(st.lists, 1); /* a failing watch is retried from the same RV, not relisted */
    k8s_reflector_stop(r);         /* interrupts the backoff sleep */
    k8s_reflector_free(r);

    /* Retry-After longer than the backoff wins */
    pthread_mutex_lock(&rs.lock);
    rs.watch_fail_code = 429;
    rs.watch_retry_after = "2";
    rs.lists = rs.watches = 0;
    pthread_mutex_unlock(&rs.lock);
    memset(&cache, 0, sizeof cache);
    pthread_mutex_init(&cache.lock, NULL);
    r = make_reflector(c, &cache);
    assert_int_equal(k8s_reflector_start(r, &err), MM_OK);
    struct k8s_reflector_state st2;
    uint64_t until = k8s_clock_ms() + 5000;
    do {
        fs_sleep_ms(20);
        k8s_reflector_state(r, &st2);
    } while (st2.errors < 1 && k8s_clock_ms() < until);
    assert_int_equal(st2.last_backoff_ms, 2000);
    k8s_reflector_free(r); /* free stops it */
    k8s_client_free(c);
    fs_stop(s);
}

static bool is_current(const struct k8s_reflector_state *st)
{
    return st->current;
}

/*
 * `current` says whether the consumer's cache follows the server: false from a failed watch
 * until a watch is accepted again (no relist needed: same RV), even when that watch stays quiet.
 */
static void test_reflector_current(void **state)
{
    (void)state;
    struct refsrv rs = {.lock = PTHREAD_MUTEX_INITIALIZER, .watch_fail_code = 500};
    struct fakeserver *s = fs_start(ref_handler, &rs);
    struct k8s_client *c = make_client(s->port, NULL, NULL, NULL);
    struct cache cache = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct k8s_reflector *r = make_reflector(c, &cache);
    struct mm_error err;
    struct k8s_reflector_state st;
    k8s_reflector_state(r, &st);
    assert_false(st.current); /* nothing listed yet */
    assert_int_equal(k8s_reflector_start(r, &err), MM_OK);
    assert_true(wait_for(r, 5000, two_errors));
    k8s_reflector_state(r, &st);
    assert_true(st.synced);   /* the list worked... */
    assert_false(st.current); /* ...but the watch does not: events may be missed */
    pthread_mutex_lock(&rs.lock);
    rs.watch_fail_code = 0; /* the next watch is accepted and stays quiet */
    pthread_mutex_unlock(&rs.lock);
    assert_true(wait_for(r, 10000, is_current));
    k8s_reflector_state(r, &st);
    assert_int_equal(st.lists, 1); /* resumed from the same RV */
    k8s_reflector_free(r);
    k8s_client_free(c);
    fs_stop(s);
}

static int setup(void **state)
{
    (void)state;
    log_setup(LOG_WARN, LOG_FORMAT_LOGFMT);
    return 0;
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_verbs_on_the_wire),
        cmocka_unit_test(test_retry_rules),
        cmocka_unit_test(test_body_cap_and_bad_answers),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_token_file),
        cmocka_unit_test(test_watch),
        cmocka_unit_test(test_shared_by_threads),
        cmocka_unit_test(test_reflector_relist_rules),
        cmocka_unit_test(test_reflector_backoff),
        cmocka_unit_test(test_reflector_current),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
