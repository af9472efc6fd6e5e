/*
 * Unit tests for src/core/admission.c: AdmissionReview decoding (fixtures in
 * tests/data/admission/ and inline edge cases) and response encoding (exact
 * shape, base64 round trip, denial status, warning truncation).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/admission.h"
#include "util/fileio.h"
#include "core/podpatch.h"
#include "util/base64.h"
#include "util/xalloc.h"

/* ---- helpers ---- */

static char *testdata(void)
{
    const char *d = getenv("MM_TESTDATA");
    if (d && d[0])
        return xstrdup(d);
    const char *f = __FILE__;
    const char *cut = strstr(f, "unit/test_admission.c");
    return cut ? xasprintf("%.*sdata", (int)(cut - f), f) : xstrdup("tests/data");
}

/* Read tests/data/admission/<name>; caller frees. */
static char *read_fixture(const char *name, size_t *len)
{
    char *dir = testdata();
    char *path = xasprintf("%s/admission/%s", dir, name);
    free(dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    free(path);
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            buf = xrealloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (!v)
        fail_msg("bad JSON: %s: %s", jerr.text, text);
    return v;
}

/* ---- decode: fixtures ---- */

static void test_decode_kuma_pod(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("kuma-pod.json", &len);
    struct admission_request req;
    struct mm_error err;
    assert_int_equal(admission_decode(body, len, &req, &err), MM_OK);
    assert_int_equal(err.code, MM_OK);
    assert_string_equal(req.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_string_equal(req.operation, "CREATE");
    assert_string_equal(req.namespace, "shop-prod");
    assert_string_equal(req.name, ""); /* generateName */
    assert_string_equal(req.kind, "Pod");
    assert_string_equal(req.group, "");
    assert_string_equal(req.resource, "pods");
    assert_string_equal(req.sub_resource, "");
    assert_false(req.dry_run);
    assert_non_null(req.object);
    assert_string_equal(json_string_value(json_object_get(req.object, "kind")), "Pod");
    assert_null(req.old_object); /* JSON null on CREATE */
    admission_request_cleanup(&req);
    assert_null(req.root);
    admission_request_cleanup(&req); /* twice is harmless */
    free(body);
}

struct decode_fixture {
    const char *file;
    enum mm_status status;
    const char *field;
    const char *uid;
    const char *operation, *kind, *group, *resource, *sub_resource, *name;
    bool dry_run, has_object, has_old;
};

static const struct decode_fixture decode_fixtures[] = {
    {"deployment-dryrun.json", MM_OK, "", "0f3c7a52-1d2e-4b8f-9a61-7c5e4d3b2a10", "UPDATE",
     "Deployment", "apps", "deployments", "", "checkout-api", true, true, true},
    {"delete.json", MM_OK, "", "b1c2d3e4-0000-4000-8000-000000000001", "DELETE", "Pod", "", "pods",
     "", "checkout-api-7d9f8c6b5d-x2x9z", false, false, true},
    {"subresource.json", MM_OK, "", "c0ffee00-0000-4000-8000-000000000002", "UPDATE", "Pod", "",
     "pods", "ephemeralcontainers", "demo", false, true, true},
    /* v1beta1 is refused, but the uid is kept so the answer can echo it */
    {"v1beta1.json", MM_ERR_TYPE, "apiVersion", "705ab4f5-6393-11e8-b7cc-42010a800002", NULL, NULL,
     NULL, NULL, NULL, NULL, false, false, false},
};

static void test_decode_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof decode_fixtures / sizeof decode_fixtures[0]; i++) {
        const struct decode_fixture *c = &decode_fixtures[i];
        size_t len;
        char *body = read_fixture(c->file, &len);
        struct admission_request req;
        struct mm_error err;
        enum mm_status rc = admission_decode(body, len, &req, &err);
        if (rc != c->status)
            fail_msg("%s: %s (%s: %s)", c->file, mm_status_name(rc), err.field, err.message);
        assert_string_equal(err.field, c->field);
        assert_string_equal(req.uid, c->uid);
        if (rc == MM_OK) {
            assert_string_equal(req.operation, c->operation);
            assert_string_equal(req.kind, c->kind);
            assert_string_equal(req.group, c->group);
            assert_string_equal(req.resource, c->resource);
            assert_string_equal(req.sub_resource, c->sub_resource);
            assert_string_equal(req.name, c->name);
            assert_int_equal(req.dry_run, c->dry_run);
            assert_int_equal(req.object != NULL, c->has_object);
            assert_int_equal(req.old_object != NULL, c->has_old);
        } else {
            assert_non_null(strstr(err.message, "admission.k8s.io/v1beta1"));
        }
        admission_request_cleanup(&req);
        free(body);
    }
}

/* ---- decode: inline edge cases ---- */

#define HDR "\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\""

struct decode_case {
    const char *name;
    const char *body;
    enum mm_status status;
    const char *field;
    const char *uid; /* req.uid afterwards */
};

static const struct decode_case decode_cases[] = {
    {"minimal", "{" HDR ",\"request\":{\"uid\":\"u1\"}}", MM_OK, "", "u1"},
    {"empty body", "", MM_ERR_PARSE, "", ""},
    {"not JSON", "hello", MM_ERR_PARSE, "", ""},
    {"truncated", "{" HDR ",\"request\":{\"uid\":\"u1\"", MM_ERR_PARSE, "", ""},
    {"trailing garbage", "{" HDR ",\"request\":{\"uid\":\"u1\"}} x", MM_ERR_PARSE, "", ""},
    {"two documents", "{" HDR ",\"request\":{\"uid\":\"u1\"}}{}", MM_ERR_PARSE, "", ""},
    {"top-level array", "[]", MM_ERR_TYPE, "", ""},
    {"top-level string", "\"x\"", MM_ERR_TYPE, "", ""},
    {"top-level null", "null", MM_ERR_TYPE, "", ""},
    {"missing apiVersion", "{\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u1\"}}",
     MM_ERR_TYPE, "apiVersion", "u1"},
    {"apiVersion number",
     "{\"apiVersion\":1,\"kind\":\"AdmissionReview\",\"request\":{\"uid\":"
     "\"u1\"}}",
     MM_ERR_TYPE, "apiVersion", "u1"},
    {"v1beta1",
     "{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\","
     "\"request\":{\"uid\":\"u1\"}}",
     MM_ERR_TYPE, "apiVersion", "u1"},
    {"apiVersion prefix only",
     "{\"apiVersion\":\"admission.k8s.io\",\"kind\":\"AdmissionReview\","
     "\"request\":{\"uid\":\"u1\"}}",
     MM_ERR_TYPE, "apiVersion", "u1"},
    {"missing kind", "{\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":\"u1\"}}",
     MM_ERR_TYPE, "kind", "u1"},
    {"wrong kind",
     "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Pod\",\"request\":{\"uid\":"
     "\"u1\"}}",
     MM_ERR_TYPE, "kind", "u1"},
    {"missing request", "{" HDR "}", MM_ERR_TYPE, "request", ""},
    {"request null", "{" HDR ",\"request\":null}", MM_ERR_TYPE, "request", ""},
    {"request array", "{" HDR ",\"request\":[]}", MM_ERR_TYPE, "request", ""},
    {"response only", "{" HDR ",\"response\":{\"uid\":\"u1\",\"allowed\":true}}", MM_ERR_TYPE,
     "request", ""},
    {"missing uid", "{" HDR ",\"request\":{}}", MM_ERR_TYPE, "request.uid", ""},
    {"uid null", "{" HDR ",\"request\":{\"uid\":null}}", MM_ERR_TYPE, "request.uid", ""},
    {"uid number", "{" HDR ",\"request\":{\"uid\":42}}", MM_ERR_TYPE, "request.uid", ""},
    {"uid object", "{" HDR ",\"request\":{\"uid\":{}}}", MM_ERR_TYPE, "request.uid", ""},
    {"uid empty", "{" HDR ",\"request\":{\"uid\":\"\"}}", MM_ERR_TYPE, "request.uid", ""},
    {"operation number", "{" HDR ",\"request\":{\"uid\":\"u1\",\"operation\":1}}", MM_ERR_TYPE,
     "request.operation", "u1"},
    {"namespace bool", "{" HDR ",\"request\":{\"uid\":\"u1\",\"namespace\":true}}", MM_ERR_TYPE,
     "request.namespace", "u1"},
    {"name array", "{" HDR ",\"request\":{\"uid\":\"u1\",\"name\":[]}}", MM_ERR_TYPE,
     "request.name", "u1"},
    {"subResource number", "{" HDR ",\"request\":{\"uid\":\"u1\",\"subResource\":0}}", MM_ERR_TYPE,
     "request.subResource", "u1"},
    {"kind string", "{" HDR ",\"request\":{\"uid\":\"u1\",\"kind\":\"Pod\"}}", MM_ERR_TYPE,
     "request.kind", "u1"},
    {"kind.kind number", "{" HDR ",\"request\":{\"uid\":\"u1\",\"kind\":{\"kind\":1}}}",
     MM_ERR_TYPE, "request.kind.kind", "u1"},
    {"kind.group number", "{" HDR ",\"request\":{\"uid\":\"u1\",\"kind\":{\"group\":1}}}",
     MM_ERR_TYPE, "request.kind.group", "u1"},
    {"resource array", "{" HDR ",\"request\":{\"uid\":\"u1\",\"resource\":[]}}", MM_ERR_TYPE,
     "request.resource", "u1"},
    {"resource.resource bool",
     "{" HDR ",\"request\":{\"uid\":\"u1\",\"resource\":{\"resource\":false}}}", MM_ERR_TYPE,
     "request.resource.resource", "u1"},
    {"dryRun string", "{" HDR ",\"request\":{\"uid\":\"u1\",\"dryRun\":\"true\"}}", MM_ERR_TYPE,
     "request.dryRun", "u1"},
    {"dryRun number", "{" HDR ",\"request\":{\"uid\":\"u1\",\"dryRun\":1}}", MM_ERR_TYPE,
     "request.dryRun", "u1"},
    {"dryRun null", "{" HDR ",\"request\":{\"uid\":\"u1\",\"dryRun\":null}}", MM_OK, "", "u1"},
    {"object null", "{" HDR ",\"request\":{\"uid\":\"u1\",\"object\":null}}", MM_OK, "", "u1"},
    {"object array", "{" HDR ",\"request\":{\"uid\":\"u1\",\"object\":[]}}", MM_ERR_TYPE,
     "request.object", "u1"},
    {"object string", "{" HDR ",\"request\":{\"uid\":\"u1\",\"object\":\"{}\"}}", MM_ERR_TYPE,
     "request.object", "u1"},
    {"oldObject number", "{" HDR ",\"request\":{\"uid\":\"u1\",\"oldObject\":3}}", MM_ERR_TYPE,
     "request.oldObject", "u1"},
    {"unknown fields ignored",
     "{" HDR ",\"extra\":1,\"request\":{\"uid\":\"u1\",\"future\":{\"x\":[1]}}}", MM_OK, "", "u1"},
    {"unicode uid", "{" HDR ",\"request\":{\"uid\":\"\\u00e9\\\"x\"}}", MM_OK, "", "\xc3\xa9\"x"},
};

static void test_decode_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof decode_cases / sizeof decode_cases[0]; i++) {
        const struct decode_case *c = &decode_cases[i];
        struct admission_request req;
        struct mm_error err;
        enum mm_status rc = admission_decode(c->body, strlen(c->body), &req, &err);
        if (rc != c->status)
            fail_msg("%s: got %s (%s: %s), want %s", c->name, mm_status_name(rc), err.field,
                     err.message, mm_status_name(c->status));
        assert_int_equal(err.code, c->status);
        if (strcmp(err.field, c->field) != 0)
            fail_msg("%s: field \"%s\", want \"%s\"", c->name, err.field, c->field);
        if (rc != MM_OK)
            assert_true(err.message[0] != '\0');
        if (strcmp(req.uid, c->uid) != 0)
            fail_msg("%s: uid \"%s\", want \"%s\"", c->name, req.uid, c->uid);
        admission_request_cleanup(&req);
    }
}

static void test_decode_dry_run(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        bool dry;
    } cases[] = {
        {"{" HDR ",\"request\":{\"uid\":\"u\",\"dryRun\":true}}", true},
        {"{" HDR ",\"request\":{\"uid\":\"u\",\"dryRun\":false}}", false},
        {"{" HDR ",\"request\":{\"uid\":\"u\"}}", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct admission_request req;
        struct mm_error err;
        assert_int_equal(admission_decode(cases[i].body, strlen(cases[i].body), &req, &err), MM_OK);
        assert_int_equal(req.dry_run, cases[i].dry);
        admission_request_cleanup(&req);
    }
}

/* Every proper prefix of a real review is malformed JSON: PARSE, never a crash. */
static void test_decode_every_truncation(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("kuma-pod.json", &len);
    /* Trailing whitespace would make the last few prefixes complete. */
    while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == ' '))
        len--;
    for (size_t n = 0; n < len; n++) {
        struct admission_request req;
        struct mm_error err;
        char *copy = xstrndup(body, n); /* exact-size buffer so ASan sees overreads */
        enum mm_status rc = admission_decode(copy, n, &req, &err);
        if (rc != MM_ERR_PARSE || err.field[0] || req.uid[0])
            fail_msg("prefix of %zu bytes: %s (%s)", n, mm_status_name(rc), err.field);
        admission_request_cleanup(&req);
        free(copy);
    }
    free(body);
}

static void test_decode_size_cap(void **state)
{
    (void)state;
    size_t len;
    char *sample = read_fixture("kuma-pod.json", &len);

    /* Exactly ADMISSION_MAX_BODY bytes (the sample padded with spaces) is accepted. */
    size_t cap = ADMISSION_MAX_BODY;
    char *big = xmalloc(cap + 1);
    memcpy(big, sample, len);
    memset(big + len, ' ', cap + 1 - len);
    struct admission_request req;
    struct mm_error err;
    assert_int_equal(admission_decode(big, cap, &req, &err), MM_OK);
    assert_string_equal(req.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
    admission_request_cleanup(&req);

    /* One byte more (7 MiB + 1) is refused before parsing. */
    assert_int_equal(admission_decode(big, cap + 1, &req, &err), MM_ERR_TOO_BIG);
    assert_int_equal(err.code, MM_ERR_TOO_BIG);
    assert_null(req.root);
    assert_string_equal(req.uid, "");
    assert_non_null(strstr(err.message, "7340033"));
    admission_request_cleanup(&req);

    /* SIZE_MAX must not overflow anything either. */
    assert_int_equal(admission_decode(big, (size_t)-1, &req, &err), MM_ERR_TOO_BIG);
    admission_request_cleanup(&req);
    free(big);
    free(sample);

    /* NULL body */
    assert_int_equal(admission_decode(NULL, 0, &req, &err), MM_ERR_PARSE);
    admission_request_cleanup(&req);
}

static void test_decode_nul_and_depth(void **state)
{
    (void)state;
    struct admission_request req;
    struct mm_error err;
    /* An embedded NUL byte inside the declared length is malformed JSON. */
    static const char nul[] = "{" HDR ",\"request\":{\"uid\":\"u\0\"}}";
    assert_int_equal(admission_decode(nul, sizeof nul - 1, &req, &err), MM_ERR_PARSE);
    admission_request_cleanup(&req);
    /* Deep nesting inside object: jansson's depth limit turns it into PARSE, not a crash. */
    size_t depth = 100000;
    char *deep = xmalloc(depth * 2 + 128);
    int n = snprintf(deep, 128, "{" HDR ",\"request\":{\"uid\":\"u\",\"object\":");
    size_t off = (size_t)n;
    for (size_t i = 0; i < depth; i++)
        deep[off++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[off++] = ']';
    deep[off++] = '}';
    deep[off++] = '}';
    /* Only the object fails to decode: the uid is kept so the caller can still answer. */
    assert_int_equal(admission_decode(deep, off, &req, &err), MM_ERR_PARSE);
    assert_string_equal(err.field, "request.object");
    assert_string_equal(req.uid, "u");
    admission_request_cleanup(&req);
    free(deep);
}

/* ---- decode: numbers jansson refuses, and other objects that do not decode ---- */

struct wide_case {
    const char *name;
    const char *body;
    enum mm_status status;
    const char *field;   /* err.field */
    const char *uid;     /* req.uid afterwards */
    bool wide;           /* req.wide_numbers */
    const char *pointer; /* in request.object, with... */
    const char *value;   /* ...this JSON value (compact) */
};

/* A MeshMetric review (a custom resource: the API server keeps numbers beyond int64 in it). */
#define REQ(obj)                                                                                   \
    "{" HDR ",\"request\":{\"uid\":\"u-9\",\"kind\":{\"group\":\"kuma.io\",\"version\":"        \
    "\"v1alpha1\",\"kind\":\"MeshMetric\"},\"object\":" obj "}}"

static const struct wide_case wide_cases[] = {
    /* The API server decodes an integer beyond int64 as a float64 (sigs.k8s.io/json). */
    {"integer beyond int64 is a real", REQ("{\"port\":99999999999999999999}"), MM_OK, "", "u-9",
     true, "port", "1e20"},
    {"negative integer beyond int64", REQ("{\"port\":-9223372036854775809}"), MM_OK, "", "u-9",
     true, "port", "-9.2233720368547758e18"},
    {"int64 limits stay integers", REQ("{\"a\":9223372036854775807,\"b\":99999999999999999999}"),
     MM_OK, "", "u-9", true, "a", "9223372036854775807"},
    {"other numbers stay exact", REQ("{\"a\":9007199254740993,\"b\":-18446744073709551616}"),
     MM_OK, "", "u-9", true, "a", "9007199254740993"},
    {"reals are untouched", REQ("{\"a\":1.5e10,\"b\":[-0,0.0,99999999999999999999]}"), MM_OK, "",
     "u-9", true, "b", "[0,0.0,1e20]"},
    {"digits inside strings are text", REQ("{\"s\":\"99999999999999999999\",\"n\":1e30}"),
     MM_OK, "", "u-9", false, "s", "\"99999999999999999999\""},
    {"escaped quotes in strings", REQ("{\"s\":\"a\\\"99999999999999999999\",\"n\":"
                                      "99999999999999999999}"),
     MM_OK, "", "u-9", true, "s", "\"a\\\"99999999999999999999\""},
    {"beyond int64 outside the object", "{" HDR ",\"request\":{\"uid\":\"u-9\",\"options\":"
                                        "{\"x\":123456789012345678901234567890}}}",
     MM_OK, "", "u-9", true, NULL, NULL},
    /* Beyond any double: the object cannot be decoded, the envelope can. */
    {"real overflow in the object", REQ("{\"port\":1e400}"), MM_ERR_PARSE, "request.object", "u-9",
     false, NULL, NULL},
    {"integer beyond double in the object",
     REQ("{\"a\":1"
         "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
         "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
         "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
         "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
         "}"),
     MM_ERR_PARSE, "request.object", "u-9", false, NULL, NULL},
    {"invalid UTF-8 in the object", REQ("{\"a\":\"\xff\"}"), MM_ERR_PARSE, "request.object", "u-9",
     false, NULL, NULL},
    {"syntax error in the object", REQ("{\"a\":}"), MM_ERR_PARSE, "request.object", "u-9", false,
     NULL, NULL},
    {"\\u0000 in the object", REQ("{\"a\":\"x\\u0000\"}"), MM_ERR_PARSE, "request.object",
     "u-9", false, NULL, NULL},
    {"object before the uid", "{" HDR ",\"request\":{\"object\":{\"a\":1e999},\"uid\":\"u-9\"}}",
     MM_ERR_PARSE, "request.object", "u-9", false, NULL, NULL},
    /* Not the object: malformed JSON, answered with HTTP 400 by the caller. */
    {"real overflow outside the object",
     "{" HDR ",\"request\":{\"uid\":\"u-9\",\"options\":1e400,\"object\":{}}}", MM_ERR_PARSE,
     "", "", false, NULL, NULL},
    {"bad object, wrong apiVersion",
     "{\"apiVersion\":\"v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u-9\","
     "\"object\":{\"a\":1e400}}}",
     MM_ERR_PARSE, "", "", false, NULL, NULL},
    {"bad object, no uid", "{" HDR ",\"request\":{\"object\":{\"a\":1e400}}}", MM_ERR_PARSE, "",
     "", false, NULL, NULL},
    {"bad object, odd uid", "{" HDR ",\"request\":{\"uid\":\"a b\",\"object\":{\"a\":1e400}}}",
     MM_ERR_PARSE, "", "", false, NULL, NULL},
    {"bad object, two requests",
     "{" HDR ",\"request\":{\"uid\":\"u\",\"object\":{\"a\":1e400}},\"request\":{}}",
     MM_ERR_PARSE, "", "", false, NULL, NULL},
    {"bad object, trailing garbage", REQ("{\"a\":1e400}") " x", MM_ERR_PARSE, "", "", false, NULL,
     NULL},
    {"bad object, truncated", "{" HDR ",\"request\":{\"uid\":\"u-9\",\"object\":{\"a\":1e400}",
     MM_ERR_PARSE, "", "", false, NULL, NULL},
    /* Only a custom resource keeps them (as the API server does); a Pod cannot hold one. */
    {"beyond int64 in a Pod", "{" HDR ",\"request\":{\"uid\":\"p-1\",\"kind\":{\"group\":\"\","
                              "\"version\":\"v1\",\"kind\":\"Pod\"},\"object\":{\"spec\":"
                              "{\"containers\":[{\"ports\":[{\"containerPort\":"
                              "99999999999999999999}]}]}}}}",
     MM_ERR_PARSE, "request.object", "p-1", true, NULL, NULL},
    {"beyond int64 in a Pod's envelope only", "{" HDR ",\"request\":{\"uid\":\"p-2\",\"kind\":"
                                              "{\"kind\":\"Pod\"},\"options\":{\"x\":"
                                              "-99999999999999999999},\"object\":{\"a\":1.5}}}",
     MM_OK, "", "p-2", true, NULL, NULL},
    {"beyond int64 in a Pod, written as an integer elsewhere too",
     "{" HDR ",\"request\":{\"uid\":\"p-3\",\"object\":{\"a\":[1,{\"b\":-99999999999999999999}]}}}",
     MM_ERR_PARSE, "request.object", "p-3", true, NULL, NULL},
    {"beyond int64 in a MeshMetric", "{" HDR ",\"request\":{\"uid\":\"m-1\",\"kind\":{\"group\":"
                                     "\"kuma.io\",\"kind\":\"MeshMetric\"},\"object\":{\"port\":"
                                     "99999999999999999999}}}",
     MM_OK, "", "m-1", true, "port", "1e20"},
    /* A body that is wrong where jansson does not look first still gets its usual answer. */
    {"beyond int64 and a wrong kind", "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Pod\","
                                      "\"request\":{\"uid\":\"u-9\",\"object\":{\"a\":"
                                      "99999999999999999999}}}",
     MM_ERR_TYPE, "kind", "u-9", true, NULL, NULL},
};

static void test_decode_wide_numbers(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof wide_cases / sizeof *wide_cases; i++) {
        const struct wide_case *c = &wide_cases[i];
        struct admission_request req;
        struct mm_error err;
        enum mm_status rc = admission_decode(c->body, strlen(c->body), &req, &err);
        bool bad = rc != c->status || strcmp(err.field, c->field) != 0 ||
                   strcmp(req.uid, c->uid) != 0 || req.wide_numbers != c->wide;
        char *got = NULL;
        if (!bad && c->pointer) {
            got = json_dumps(json_object_get(req.object, c->pointer),
                             JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(17));
            bad = !got || strcmp(got, c->value) != 0;
        }
        if (bad) {
            print_error("case \"%s\": %s field \"%s\" uid \"%s\" wide %d value %s (%s)\n",
                        c->name, mm_status_name(rc), err.field, req.uid, req.wide_numbers,
                        got ? got : "-", err.message);
            failures++;
        }
        if (rc != MM_OK)
            assert_true(err.message[0] != '\0');
        free(got);
        admission_request_cleanup(&req);
        assert_false(req.wide_numbers);
    }
    assert_int_equal(failures, 0);
}

/* ---- encode ---- */

static void test_encode_exact_shape(void **state)
{
    (void)state;
    json_t *patch = parse("[{\"op\":\"add\",\"path\":\"/metadata/labels/tier\",\"value\":\"db\"}]");
    struct admission_response resp = {.uid = "u-1", .allowed = true, .patch = patch};
    char *out = admission_encode(&resp);
    /* kubernetes-api.md §2.3's minimal valid answer, byte for byte. */
    assert_string_equal(
        out, "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"response\":"
             "{\"uid\":\"u-1\",\"allowed\":true,\"patchType\":\"JSONPatch\",\"patch\":"
             "\"W3sib3AiOiJhZGQiLCJwYXRoIjoiL21ldGFkYXRhL2xhYmVscy90aWVyIiwidmFsdWUiOiJkYiJ9XQ"
             "==\"}}");
    free(out);
    json_decref(patch);

    /* No patch: neither patch nor patchType (the apiserver rejects one without the other). */
    json_t *empty = json_array();
    const json_t *no_patches[] = {NULL, empty};
    for (size_t i = 0; i < 2; i++) {
        struct admission_response r = {.uid = "u-2", .allowed = true, .patch = no_patches[i]};
        out = admission_encode(&r);
        assert_string_equal(out, "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
                                 "\"AdmissionReview\",\"response\":{\"uid\":\"u-2\","
                                 "\"allowed\":true}}");
        free(out);
    }
    json_decref(empty);

    /* NULL uid encodes as "" rather than crashing. */
    struct admission_response r0 = {.uid = NULL, .allowed = true};
    out = admission_encode(&r0);
    assert_non_null(strstr(out, "\"uid\":\"\""));
    free(out);
}

/* Decode our own response, check the envelope, return the response object (borrowed from *root). */
static json_t *open_response(const char *out, json_t **root)
{
    *root = parse(out);
    assert_string_equal(json_string_value(json_object_get(*root, "apiVersion")),
                        "admission.k8s.io/v1");
    assert_string_equal(json_string_value(json_object_get(*root, "kind")), "AdmissionReview");
    json_t *r = json_object_get(*root, "response");
    assert_true(json_is_object(r));
    return r;
}

/* Real pipeline: decode the sample review, build the patch, encode, decode the base64, compare. */
static void test_encode_round_trip(void **state)
{
    (void)state;
    xalloc_install_json();
    size_t len;
    char *body = read_fixture("kuma-pod.json", &len);
    struct admission_request req;
    struct mm_error err;
    assert_int_equal(admission_decode(body, len, &req, &err), MM_OK);

    json_t *eff = parse("{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":5670,"
                        "\"path\":\"/metrics\",\"tls\":{\"mode\":\"ProvidedTLS\"}}}]}");
    struct violations w;
    violations_init(&w);
    json_t *patch = NULL;
    assert_int_equal(podpatch_build(req.object, "", eff, NULL, &patch, &w, &err), MM_OK);
    assert_true(json_array_size(patch) > 0);
    violations_add(&w, "metadata.annotations", "a warning with a \"quote\"");

    struct admission_response resp = {
        .uid = req.uid, .allowed = true, .patch = patch, .warnings = &w};
    char *out = admission_encode(&resp);
    json_t *root;
    json_t *r = open_response(out, &root);
    assert_string_equal(json_string_value(json_object_get(r, "uid")), req.uid);
    assert_true(json_is_true(json_object_get(r, "allowed")));
    assert_string_equal(json_string_value(json_object_get(r, "patchType")), "JSONPatch");
    assert_null(json_object_get(r, "status"));
    const char *b64 = json_string_value(json_object_get(r, "patch"));
    assert_non_null(b64);
    assert_int_equal(strlen(b64) % 4, 0); /* padded */
    size_t n;
    unsigned char *raw = base64_decode(b64, strlen(b64), &n);
    assert_non_null(raw);
    json_error_t jerr;
    json_t *back = json_loadb((const char *)raw, n, 0, &jerr);
    assert_non_null(back);
    assert_true(json_equal(back, patch));
    json_t *warnings = json_object_get(r, "warnings");
    assert_int_equal(json_array_size(warnings), 1);
    assert_string_equal(json_string_value(json_array_get(warnings, 0)),
                        "metadata.annotations: a warning with a \"quote\"");

    json_decref(back);
    free(raw);
    json_decref(root);
    free(out);
    json_decref(patch);
    violations_cleanup(&w);
    json_decref(eff);
    admission_request_cleanup(&req);
    free(body);
}

static void test_encode_denied(void **state)
{
    (void)state;
    struct violations causes;
    violations_init(&causes);
    violations_add(&causes, "spec.default.backends.backend[0].port",
                   "port must be a valid (1-65535)");
    violations_add(&causes, "", "a cause without a field");
    json_t *patch = parse("[{\"op\":\"add\",\"path\":\"/x\",\"value\":1}]");

    static const struct {
        int code, want_code;
    } codes[] = {{422, 422}, {403, 403}, {200, 400}, {0, 400}, {-5, 400}, {500, 500}};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        struct admission_response resp = {
            .uid = "d-1",
            .allowed = false,
            .patch = patch, /* ignored when denying */
            .code = codes[i].code,
            .reason = "Invalid",
            .message = "spec.default.backends.backend[0].port: port must be a valid (1-65535)",
            .causes = &causes,
            .details_kind = "MeshMetric",
            .details_name = "bad-port",
        };
        char *out = admission_encode(&resp);
        json_t *root;
        json_t *r = open_response(out, &root);
        assert_false(json_is_true(json_object_get(r, "allowed")));
        assert_true(json_is_false(json_object_get(r, "allowed")));
        assert_null(json_object_get(r, "patch"));
        assert_null(json_object_get(r, "patchType"));
        assert_null(json_object_get(r, "warnings"));
        json_t *want = parse(
            "{\"code\":0,\"reason\":\"Invalid\",\"message\":\"spec.default.backends.backend[0]."
            "port: port must be a valid (1-65535)\",\"status\":\"Failure\",\"details\":{\"causes"
            "\":[{\"type\":\"FieldValueInvalid\",\"field\":\"spec.default.backends.backend[0]."
            "port\",\"message\":\"port must be a valid (1-65535)\"},{\"type\":\"FieldValueInvali"
            "d\",\"message\":\"a cause without a field\"}],\"name\":\"bad-port\",\"kind\":"
            "\"MeshMetric\"}}");
        json_object_set_new(want, "code", json_integer(codes[i].want_code));
        if (!json_equal(json_object_get(r, "status"), want)) {
            char *s = json_dumps(json_object_get(r, "status"), JSON_COMPACT);
            fail_msg("code %d: status %s", codes[i].code, s);
        }
        json_decref(want);
        json_decref(root);
        free(out);
    }

    /* Minimal denial: no reason, message or causes. */
    struct admission_response bare = {.uid = "d-2", .allowed = false, .code = 403};
    char *out = admission_encode(&bare);
    assert_string_equal(out, "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                             "\"response\":{\"uid\":\"d-2\",\"allowed\":false,\"status\":{\"code\":"
                             "403,\"status\":\"Failure\"}}}");
    free(out);
    json_decref(patch);
    violations_cleanup(&causes);
}

/* ---- warnings ---- */

static bool valid_utf8(const char *s)
{
    json_t *v = json_string(s); /* jansson validates UTF-8 */
    bool ok = v != NULL;
    json_decref(v);
    return ok;
}

static char *repeat(const char *unit, size_t times)
{
    size_t u = strlen(unit);
    char *s = xmalloc(u * times + 1);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * u, unit, u);
    s[u * times] = '\0';
    return s;
}

struct warn_case {
    const char *name;
    const char *field;
    const char *unit; /* message = unit repeated times */
    size_t times;
    size_t want_len;    /* bytes of the encoded warning */
    const char *prefix; /* the warning starts with this */
};

static const struct warn_case warn_cases[] = {
    {"short with field", "spec.x", "m", 10, 18, "spec.x: mmmmmmmmmm"},
    {"short without field", "", "hello", 1, 5, "hello"},
    {"exactly 256 ascii", "", "a", 256, 256, "aaaa"},
    {"257 ascii cut", "", "a", 257, 256, "aaaa"},
    {"2-byte chars cut on boundary", "", "\xc3\xa9", 200, 256, "\xc3\xa9"},
    {"3-byte chars cut on boundary", "", "\xe2\x82\xac", 100, 255, "\xe2\x82\xac"},
    {"4-byte chars cut on boundary", "", "\xf0\x9f\x98\x80", 70, 256, "\xf0\x9f\x98\x80"},
    {"field counts toward the cap", "f", "\xe2\x82\xac", 100, 255, "f: \xe2\x82\xac"},
    {"invalid UTF-8 replaced", "", "\xff", 3, 3, "???"},
    {"lone continuation bytes", "", "a\x80", 2, 4, "a?a?"},
    {"overlong encoding replaced", "", "\xc0\xaf", 1, 2, "??"},
    {"surrogate replaced", "", "\xed\xa0\x80", 1, 3, "???"},
    {"truncated sequence at end", "", "ab\xe2\x82", 1, 4, "ab??"},
};

static void test_encode_warnings(void **state)
{
    (void)state;
    struct violations w;
    violations_init(&w);
    for (size_t i = 0; i < sizeof warn_cases / sizeof warn_cases[0]; i++) {
        char *msg = repeat(warn_cases[i].unit, warn_cases[i].times);
        violations_add(&w, warn_cases[i].field, "%s", msg);
        free(msg);
    }
    struct admission_response resp = {.uid = "w", .allowed = true, .warnings = &w};
    char *out = admission_encode(&resp);
    json_t *root;
    json_t *r = open_response(out, &root); /* parses, so every string was valid UTF-8 */
    json_t *arr = json_object_get(r, "warnings");
    assert_int_equal(json_array_size(arr), sizeof warn_cases / sizeof warn_cases[0]);
    for (size_t i = 0; i < sizeof warn_cases / sizeof warn_cases[0]; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        assert_non_null(s);
        if (strlen(s) != warn_cases[i].want_len)
            fail_msg("%s: %zu bytes, want %zu", warn_cases[i].name, strlen(s),
                     warn_cases[i].want_len);
        if (strncmp(s, warn_cases[i].prefix, strlen(warn_cases[i].prefix)) != 0)
            fail_msg("%s: \"%s\" does not start with the expected text", warn_cases[i].name, s);
        assert_true(valid_utf8(s));
    }
    json_decref(root);
    free(out);

    /* An empty list sends no warnings key at all. */
    struct violations none;
    violations_init(&none);
    struct admission_response r2 = {.uid = "w", .allowed = true, .warnings = &none};
    out = admission_encode(&r2);
    assert_null(strstr(out, "warnings"));
    free(out);
    violations_cleanup(&w);
}

static void test_encode_hostile_strings(void **state)
{
    (void)state;
    /* Invalid UTF-8 in uid/reason/message must still yield a parseable response. */
    struct admission_response resp = {.uid = "u\xff",
                                      .allowed = false,
                                      .code = 400,
                                      .reason = "Bad\xc3",
                                      .message = "quote \" backslash \\ newline \n tab \t"};
    char *out = admission_encode(&resp);
    json_t *root;
    json_t *r = open_response(out, &root);
    assert_string_equal(json_string_value(json_object_get(r, "uid")), "u?");
    json_t *st = json_object_get(r, "status");
    assert_string_equal(json_string_value(json_object_get(st, "reason")), "Bad?");
    assert_string_equal(json_string_value(json_object_get(st, "message")),
                        "quote \" backslash \\ newline \n tab \t");
    json_decref(root);
    free(out);
}


/* ---- admission_scan_uid: must find exactly what admission_decode finds, or nothing ---- */

struct scan_case {
    const char *name;
    const char *body;
    const char *uid; /* the token found, without quotes; NULL = not found */
};

static const struct scan_case scan_cases[] = {
    {"plain", "{\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{\"uid\":\"a-1\"}}", "a-1"},
    {"nested uids are not request.uid",
     "{\"request\":{\"object\":{\"metadata\":{\"uid\":\"x\"}},\"uid\":\"real\","
     "\"userInfo\":{\"uid\":\"y\"}}}",
     "real"},
    {"whitespace", " { \"request\" : { \"uid\" : \"u\" } } \n", "u"},
    {"uid before other members", "{\"request\":{\"uid\":\"u\",\"a\":[1,{\"b\":\"}\"}]}}", "u"},
    {"no request", "{\"uid\":\"u\"}", NULL},
    {"no uid", "{\"request\":{\"name\":\"u\"}}", NULL},
    {"empty uid", "{\"request\":{\"uid\":\"\"}}", NULL},
    {"uid not a string", "{\"request\":{\"uid\":5}}", NULL},
    {"escaped uid", "{\"request\":{\"uid\":\"a\\u0041\"}}", NULL},
    {"odd characters in uid", "{\"request\":{\"uid\":\"a b\"}}", NULL},
    {"duplicate uid", "{\"request\":{\"uid\":\"a\",\"uid\":\"b\"}}", NULL},
    {"duplicate request", "{\"request\":{\"uid\":\"a\"},\"request\":{\"uid\":\"b\"}}", NULL},
    {"escaped key could alias uid", "{\"request\":{\"uid\":\"a\",\"\\u0075id\":\"b\"}}", NULL},
    {"escaped key could alias request", "{\"\\u0072equest\":{\"uid\":\"a\"}}", NULL},
    {"trailing garbage", "{\"request\":{\"uid\":\"a\"}} x", NULL},
    {"truncated", "{\"request\":{\"uid\":\"a\"}", NULL},
    {"unterminated string", "{\"request\":{\"uid\":\"a}}", NULL},
    {"not an object", "[\"request\"]", NULL},
    {"empty", "", NULL},
    {"control character in a string", "{\"request\":{\"uid\":\"a\",\"n\":\"\x01\"}}", NULL},
};

static void test_scan_uid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof scan_cases / sizeof *scan_cases; i++) {
        const struct scan_case *c = &scan_cases[i];
        size_t off = 0, len = 0;
        bool found = admission_scan_uid(c->body, strlen(c->body), &off, &len);
        if (found != (c->uid != NULL))
            fail_msg("case \"%s\": found=%d", c->name, found);
        if (found) {
            char *tok = xstrndup(c->body + off + 1, len - 2);
            if (strcmp(tok, c->uid))
                fail_msg("case \"%s\": uid \"%s\", want \"%s\"", c->name, tok, c->uid);
            free(tok);
        }
    }
}

static void test_scan_uid_real_review(void **state)
{
    (void)state;
    /* The AdmissionReview every benchmark uses (a Kuma-injected pod). */
    char *dir = testdata();
    char *path = xasprintf("%s/admission/kuma-pod.json", dir);
    free(dir);
    char *data = NULL;
    size_t len = 0;
    struct mm_error err;
    assert_int_equal(fileio_read(path, ADMISSION_MAX_BODY, &data, &len, &err), MM_OK);
    size_t off = 0, tok = 0;
    assert_true(admission_scan_uid(data, len, &off, &tok));
    struct admission_request req;
    assert_int_equal(admission_decode(data, len, &req, &err), MM_OK);
    assert_int_equal(tok, strlen(req.uid) + 2);
    assert_memory_equal(data + off + 1, req.uid, tok - 2);
    admission_request_cleanup(&req);
    free(data);
    free(path);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_kuma_pod),
        cmocka_unit_test(test_decode_fixtures),
        cmocka_unit_test(test_decode_cases),
        cmocka_unit_test(test_decode_dry_run),
        cmocka_unit_test(test_decode_every_truncation),
        cmocka_unit_test(test_decode_size_cap),
        cmocka_unit_test(test_decode_nul_and_depth),
        cmocka_unit_test(test_decode_wide_numbers),
        cmocka_unit_test(test_encode_exact_shape),
        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_encode_denied),
        cmocka_unit_test(test_encode_warnings),
        cmocka_unit_test(test_encode_hostile_strings),
        cmocka_unit_test(test_scan_uid),
        cmocka_unit_test(test_scan_uid_real_review),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
