/*
 * Unit tests for src/k8s/status.c: every Status reason of kubernetes-api.md
 * 3.5, the flow-control 429 text body, non-JSON and garbage bodies,
 * Retry-After (header and details.retryAfterSeconds), and the watch ERROR
 * event form. Cases are the table tests/data/k8s/status/cases.json.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "k8s/status.h"
#include "testutil.h"
#include "util/fileio.h"
#include "util/xalloc.h"

static enum mm_status status_by_name(const char *n)
{
    static const struct {
        const char *name;
        enum mm_status st;
    } t[] = {{"NOT_FOUND", MM_ERR_NOT_FOUND}, {"CONFLICT", MM_ERR_CONFLICT},
             {"EXPIRED", MM_ERR_EXPIRED},     {"INVALID", MM_ERR_INVALID},
             {"DENIED", MM_ERR_DENIED},       {"RETRY", MM_ERR_RETRY},
             {"TOO_BIG", MM_ERR_TOO_BIG},     {"PARSE", MM_ERR_PARSE}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(t[i].name, n))
            return t[i].st;
    fail_msg("unknown status name %s", n);
    return MM_OK;
}

static json_t *load_cases(void)
{
    char *dir = tu_testdata();
    char *path = xasprintf("%s/k8s/status/cases.json", dir);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc)
        fail_msg("%s: %s", path, jerr.text);
    free(dir);
    free(path);
    return doc;
}

static void test_status_table(void **state)
{
    (void)state;
    json_t *doc = load_cases();
    size_t i;
    json_t *c;
    struct k8s_error e = K8S_ERROR_INIT; /* reused across cases: each decode resets it */
    json_array_foreach(json_object_get(doc, "cases"), i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        int http = (int)json_integer_value(json_object_get(c, "http"));
        const char *ct = json_string_value(json_object_get(c, "content_type"));
        const char *ra = json_string_value(json_object_get(c, "retry_after"));
        char *body = NULL;
        size_t len = 0;
        if (json_object_get(c, "body")) {
            body = json_dumps(json_object_get(c, "body"), JSON_COMPACT);
            len = strlen(body);
        } else {
            body = xstrdup(json_string_value(json_object_get(c, "text")));
            len = strlen(body);
        }
        const json_t *want = json_object_get(c, "want");
        print_message("case: %s\n", name);
        enum mm_status rc = k8s_status_decode(http, ct, body, len, ra, "GET /api/v1/pods/x", &e);
        enum mm_status ws = status_by_name(json_string_value(json_object_get(want, "status")));
        assert_int_equal(rc, ws);
        assert_int_equal(e.base.code, ws);
        assert_int_equal(e.http_code, json_integer_value(json_object_get(want, "code")));
        if (json_object_get(want, "reason"))
            assert_string_equal(e.reason, json_string_value(json_object_get(want, "reason")));
        const json_t *wm = json_object_get(want, "message");
        if (json_is_string(wm)) {
            assert_non_null(e.message);
            assert_string_equal(e.message, json_string_value(wm));
            /* the summary carries the request and the server's words */
            assert_non_null(strstr(e.base.message, "GET /api/v1/pods/x: "));
        } else if (json_is_null(wm)) {
            assert_null(e.message);
            assert_true(strlen(e.base.message) > 20); /* still a sensible sentence */
        }
        const json_t *wra = json_object_get(want, "retry_after");
        assert_int_equal(e.retry_after_s, wra ? json_integer_value(wra) : -1);
        assert_int_equal(e.rv_too_large, json_is_true(json_object_get(want, "rv_too_large")));
        const json_t *causes = json_object_get(want, "causes");
        assert_int_equal(e.ncauses, json_array_size(causes));
        for (size_t k = 0; k < e.ncauses; k++) {
            const json_t *wc = json_array_get(causes, k);
            assert_string_equal(e.causes[k].reason, json_string_value(json_array_get(wc, 0)));
            assert_string_equal(e.causes[k].field, json_string_value(json_array_get(wc, 1)));
            assert_string_equal(e.causes[k].message, json_string_value(json_array_get(wc, 2)));
        }
        free(body);
    }
    k8s_error_cleanup(&e);
    json_decref(doc);
}

/* AlreadyExists and Conflict share 409 and MM_ERR_CONFLICT; the reason tells them apart. */
static void test_already_exists_vs_conflict(void **state)
{
    (void)state;
    struct k8s_error e = K8S_ERROR_INIT;
    const char *ae = "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"AlreadyExists\","
                     "\"code\":409,\"message\":\"x\"}";
    assert_int_equal(k8s_status_decode(409, NULL, ae, strlen(ae), NULL, NULL, &e), MM_ERR_CONFLICT);
    assert_true(k8s_error_has_reason(&e, "AlreadyExists"));
    assert_false(k8s_error_has_reason(&e, "Conflict"));
    const char *cf = "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Conflict\",\"code\":"
                     "409,\"message\":\"y\"}";
    assert_int_equal(k8s_status_decode(409, NULL, cf, strlen(cf), NULL, NULL, &e), MM_ERR_CONFLICT);
    assert_true(k8s_error_has_reason(&e, "Conflict"));
    assert_false(k8s_error_has_reason(NULL, "Conflict"));
    k8s_error_cleanup(&e);
}

struct code_case {
    int code;
    enum mm_status want;
};

/* Bare codes without a body (also the mapping for unknown reasons). */
/* clang-format off */
static const struct code_case code_cases[] = {
    {400, MM_ERR_INVALID}, {401, MM_ERR_DENIED},  {403, MM_ERR_DENIED},
    {404, MM_ERR_NOT_FOUND}, {405, MM_ERR_INVALID}, {406, MM_ERR_INVALID},
    {409, MM_ERR_CONFLICT}, {410, MM_ERR_EXPIRED}, {413, MM_ERR_TOO_BIG},
    {415, MM_ERR_INVALID}, {418, MM_ERR_INVALID}, {422, MM_ERR_INVALID},
    {429, MM_ERR_RETRY},   {500, MM_ERR_RETRY},   {502, MM_ERR_RETRY},
    {503, MM_ERR_RETRY},   {504, MM_ERR_RETRY},   {302, MM_ERR_INTERNAL},
    {200, MM_ERR_INTERNAL}, /* a 2xx handed to the error decoder is a caller bug, not success */
};
/* clang-format on */

static void test_bare_codes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof code_cases / sizeof code_cases[0]; i++) {
        struct k8s_error e = K8S_ERROR_INIT;
        enum mm_status rc = k8s_status_decode(code_cases[i].code, NULL, NULL, 0, NULL, NULL, &e);
        print_message("code %d -> %s\n", code_cases[i].code, mm_status_name(rc));
        assert_int_equal(rc, code_cases[i].want);
        assert_null(e.message);
        k8s_error_cleanup(&e);
        /* NULL err is allowed */
        assert_int_equal(k8s_status_decode(code_cases[i].code, NULL, "", 0, NULL, NULL, NULL),
                         code_cases[i].want);
    }
}

/* The watch ERROR event form: Status.code (no HTTP code), or the reason alone. */
static void test_status_from_object(void **state)
{
    (void)state;
    struct k8s_error e = K8S_ERROR_INIT;
    json_t *st =
        tu_yaml("{kind: Status, apiVersion: v1, metadata: {}, status: Failure, "
                "message: 'too old resource version: 1 (200)', reason: Expired, code: 410}");
    assert_int_equal(k8s_status_from_object(st, "watch pods", &e), MM_ERR_EXPIRED);
    assert_int_equal(e.http_code, 410);
    assert_string_equal(e.message, "too old resource version: 1 (200)");
    json_decref(st);

    st = tu_yaml("{kind: Status, status: Failure, message: gone, reason: Gone}"); /* no code */
    assert_int_equal(k8s_status_from_object(st, NULL, &e), MM_ERR_EXPIRED);
    assert_int_equal(e.http_code, 410);
    json_decref(st);

    st =
        tu_yaml("{kind: Status, status: Failure, message: boom, code: 500, reason: InternalError}");
    assert_int_equal(k8s_status_from_object(st, NULL, &e), MM_ERR_RETRY);
    json_decref(st);

    st = tu_yaml("{kind: Pod, metadata: {name: x}}");
    assert_int_equal(k8s_status_from_object(st, NULL, &e), MM_ERR_PARSE);
    json_decref(st);
    assert_int_equal(k8s_status_from_object(NULL, NULL, &e), MM_ERR_PARSE);
    /* a "Success" Status inside an ERROR event is still not success */
    st = tu_yaml("{kind: Status, status: Success, code: 200}");
    assert_int_not_equal(k8s_status_from_object(st, NULL, &e), MM_OK);
    json_decref(st);
    k8s_error_cleanup(&e);
}

struct ra_case {
    const char *in;
    long want;
};

/* clang-format off */
static const struct ra_case ra_cases[] = {
    {NULL, -1}, {"", -1}, {"0", 0}, {"1", 1}, {" 5 ", 5}, {"120\r\n", 120},
    {"-1", -1}, {"1.5", -1}, {"abc", -1}, {"Wed, 21 Oct 2015 07:28:00 GMT", -1},
    {"3600", 3600}, {"3601", 3600}, {"99999999999999999999999", 3600},
};
/* clang-format on */

static void test_retry_after_header(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ra_cases / sizeof ra_cases[0]; i++)
        assert_int_equal(k8s_parse_retry_after(ra_cases[i].in), ra_cases[i].want);
}

/* A very long message is kept verbatim in e.message; the summary is truncated safely. */
static void test_long_message(void **state)
{
    (void)state;
    size_t n = 5000;
    char *msg = xmalloc(n + 1);
    memset(msg, 'm', n);
    msg[n] = '\0';
    json_t *st = json_pack("{s:s, s:s, s:s, s:i}", "kind", "Status", "message", msg, "reason",
                           "Invalid", "code", 422);
    char *body = json_dumps(st, 0);
    struct k8s_error e = K8S_ERROR_INIT;
    assert_int_equal(
        k8s_status_decode(422, "application/json", body, strlen(body), NULL, "PUT /x", &e),
        MM_ERR_INVALID);
    assert_int_equal(strlen(e.message), n);
    assert_true(strlen(e.base.message) < sizeof e.base.message);
    k8s_error_cleanup(&e);
    free(body);
    json_decref(st);
    free(msg);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_already_exists_vs_conflict),
        cmocka_unit_test(test_bare_codes),
        cmocka_unit_test(test_status_from_object),
        cmocka_unit_test(test_retry_after_header),
        cmocka_unit_test(test_long_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
