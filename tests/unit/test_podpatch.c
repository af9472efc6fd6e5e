/*
 * Unit tests for src/core/podpatch.c.
 *
 * Fixture cases live in tests/data/podpatch/<case>/{pod.json,patch.json}
 * with shared effective configs in tests/data/podpatch/effective/. For every
 * case the test checks the exact patch, applies it with the strict RFC 6902
 * applier below (so a `replace` of a missing key, an append to a missing
 * array or an add under a missing map fails the test), checks invariants on
 * the mutated pod, and rebuilds on the mutated pod expecting [] (idempotency).
 *
 * With MM_PATCH_DUMP=<dir> it also writes <case>.pod.json, <case>.patch.json
 * and <case>.want.json (the mutated document according to this applier) for
 * tests/e2e/kubectl_patch_test.sh, which replays them through
 * `kubectl patch --local --type=json` (json-patch v4, as the API server).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/podpatch.h"
#include "util/xalloc.h"

/* ---- test helpers ---- */

/* tests/data: $MM_TESTDATA, else found from this file's path. Caller frees. */
static char *testdata(void)
{
    const char *d = getenv("MM_TESTDATA");
    if (d && d[0])
        return xstrdup(d);
    const char *f = __FILE__;
    const char *cut = strstr(f, "unit/test_podpatch.c");
    return cut ? xasprintf("%.*sdata", (int)(cut - f), f) : xstrdup("tests/data");
}

static json_t *load_file(const char *rel)
{
    char *dir = testdata();
    char *path = xasprintf("%s/podpatch/%s", dir, rel);
    free(dir);
    json_error_t jerr;
    json_t *v = json_load_file(path, JSON_DECODE_ANY, &jerr);
    if (!v)
        fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
    free(path);
    return v;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!v)
        fail_msg("bad JSON in test: %s: %s", text, jerr.text);
    return v;
}

static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* ---- a small strict RFC 6902 applier (add, remove, replace, test) ---- */

/* Unescape one reference token in place; false on a bad escape. */
static bool unescape(char *tok)
{
    char *o = tok;
    for (char *p = tok; *p; p++) {
        if (*p != '~') {
            *o++ = *p;
            continue;
        }
        if (p[1] == '0')
            *o++ = '~';
        else if (p[1] == '1')
            *o++ = '/';
        else
            return false;
        p++;
    }
    *o = '\0';
    return true;
}

/* RFC 6901 array index: "0" or digits without a leading zero. -1 when invalid. */
static long array_index(const char *tok)
{
    if (!tok[0] || (tok[0] == '0' && tok[1]) || strlen(tok) > 9)
        return -1;
    for (const char *p = tok; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    return strtol(tok, NULL, 10);
}

/* Resolve a pointer to a value (NULL when missing or malformed). */
static json_t *ptr_get(json_t *doc, const char *path)
{
    if (path[0] == '\0')
        return doc;
    if (path[0] != '/')
        return NULL;
    char *copy = xstrdup(path + 1);
    json_t *cur = doc;
    char *save = copy;
    for (;;) {
        char *slash = strchr(save, '/');
        if (slash)
            *slash = '\0';
        if (!unescape(save)) {
            cur = NULL;
            break;
        }
        if (json_is_object(cur)) {
            cur = json_object_get(cur, save);
        } else if (json_is_array(cur)) {
            long i = array_index(save);
            cur = i >= 0 ? json_array_get(cur, (size_t)i) : NULL;
        } else {
            cur = NULL;
        }
        if (!cur || !slash)
            break;
        save = slash + 1;
    }
    free(copy);
    return cur;
}

/* Apply one op strictly; returns NULL on success or a static error text. */
static const char *apply_op(json_t *doc, const json_t *op)
{
    const char *kind = json_string_value(json_object_get(op, "op"));
    const char *path = json_string_value(json_object_get(op, "path"));
    json_t *value = json_object_get(op, "value");
    if (!kind || !path)
        return "op or path missing";
    if (path[0] != '/')
        return "path must start with / (root ops are not used)";
    const char *slash = strrchr(path, '/');
    char *parent_path = xstrndup(path, (size_t)(slash - path));
    char *last = xstrdup(slash + 1);
    json_t *parent = ptr_get(doc, parent_path);
    const char *res = NULL;
    if (!unescape(last)) {
        res = "bad escape";
        goto out;
    }
    if (!parent || !(json_is_object(parent) || json_is_array(parent))) {
        res = "parent is missing or not a container";
        goto out;
    }
    if (strcmp(kind, "add") == 0) {
        if (!value) {
            res = "add without value";
        } else if (json_is_object(parent)) {
            json_object_set_new(parent, last, json_deep_copy(value));
        } else if (strcmp(last, "-") == 0) {
            json_array_append_new(parent, json_deep_copy(value));
        } else {
            long i = array_index(last);
            if (i < 0 || (size_t)i > json_array_size(parent))
                res = "bad array index for add";
            else
                json_array_insert_new(parent, (size_t)i, json_deep_copy(value));
        }
    } else if (strcmp(kind, "remove") == 0 || strcmp(kind, "replace") == 0 ||
               strcmp(kind, "test") == 0) {
        json_t *cur = ptr_get(doc, path);
        if (!cur) {
            res = "target does not exist";
        } else if (strcmp(kind, "test") == 0) {
            if (!json_equal(cur, value))
                res = "test failed";
        } else if (strcmp(kind, "remove") == 0) {
            if (json_is_object(parent))
                json_object_del(parent, last);
            else
                json_array_remove(parent, (size_t)array_index(last));
        } else if (!value) {
            res = "replace without value";
        } else if (json_is_object(parent)) {
            json_object_set_new(parent, last, json_deep_copy(value));
        } else {
            json_array_set_new(parent, (size_t)array_index(last), json_deep_copy(value));
        }
    } else {
        res = "unsupported op";
    }
out:
    free(parent_path);
    free(last);
    return res;
}

/* Apply patch to a deep copy of doc; fails the test on any error. New reference. */
static json_t *apply_patch(const char *name, const json_t *doc, const json_t *patch)
{
    json_t *out = json_deep_copy(doc);
    size_t i;
    json_t *op;
    assert_true(json_is_array(patch));
    json_array_foreach(patch, i, op) {
        const char *e = apply_op(out, op);
        if (e) {
            char *s = dump(op);
            fail_msg("%s: op %zu %s does not apply strictly: %s", name, i, s, e);
        }
    }
    return out;
}

static void test_applier_is_strict(void **state)
{
    (void)state;
    /* The oracle itself must reject what json-patch v5 rejects. */
    static const struct {
        const char *doc, *op;
        bool ok;
    } cases[] = {
        {"{\"m\":{}}", "{\"op\":\"add\",\"path\":\"/m/a~1b\",\"value\":1}", true},
        {"{\"m\":{}}", "{\"op\":\"add\",\"path\":\"/x/y\",\"value\":1}", false},
        {"{\"m\":null}", "{\"op\":\"add\",\"path\":\"/m/y\",\"value\":1}", false},
        {"{\"m\":{}}", "{\"op\":\"replace\",\"path\":\"/m/y\",\"value\":1}", false},
        {"{\"a\":[1]}", "{\"op\":\"add\",\"path\":\"/a/-\",\"value\":2}", true},
        {"{\"a\":[1]}", "{\"op\":\"add\",\"path\":\"/a/1\",\"value\":2}", true},
        {"{\"a\":[1]}", "{\"op\":\"add\",\"path\":\"/a/2\",\"value\":2}", false},
        {"{\"a\":[1]}", "{\"op\":\"add\",\"path\":\"/a/01\",\"value\":2}", false},
        {"{\"a\":[1]}", "{\"op\":\"add\",\"path\":\"/a/-1\",\"value\":2}", false},
        {"{}", "{\"op\":\"add\",\"path\":\"/a/-\",\"value\":2}", false},
        {"{}", "{\"op\":\"remove\",\"path\":\"/a\"}", false},
        {"{}", "{\"op\":\"add\",\"path\":\"/a~2\",\"value\":2}", false},
        {"{}", "{\"op\":\"add\",\"path\":\"a\",\"value\":2}", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *doc = parse(cases[i].doc);
        json_t *op = parse(cases[i].op);
        const char *e = apply_op(doc, op);
        if ((e == NULL) != cases[i].ok)
            fail_msg("applier case %zu: %s -> %s", i, cases[i].op, e ? e : "ok");
        json_decref(doc);
        json_decref(op);
    }
}

/* ---- invariants on a mutated pod ---- */

/* Kubernetes IANA_SVC_NAME: <=15 chars, [a-z0-9-], a letter, no edge or double '-'. */
static bool iana_svc_name(const char *s)
{
    size_t n = strlen(s);
    bool letter = false;
    if (n == 0 || n > 15 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z')
            letter = true;
        else if (!(c >= '0' && c <= '9') && c != '-')
            return false;
        if (c == '-' && i > 0 && s[i - 1] == '-')
            return false;
    }
    return letter;
}

static void check_port_names(const char *name, const json_t *pod)
{
    static const char *const lists[] = {"containers", "initContainers"};
    json_t *seen = json_object();
    for (size_t l = 0; l < 2; l++) {
        size_t i, j;
        json_t *c, *p;
        json_array_foreach(json_object_get(json_object_get(pod, "spec"), lists[l]), i, c) {
            json_array_foreach(json_object_get(c, "ports"), j, p) {
                const char *pn = json_string_value(json_object_get(p, "name"));
                if (!pn)
                    continue;
                if (!iana_svc_name(pn))
                    fail_msg("%s: port name \"%s\" is not an IANA_SVC_NAME", name, pn);
                if (json_object_get(seen, pn))
                    fail_msg("%s: port name \"%s\" used twice", name, pn);
                json_object_set_new(seen, pn, json_true());
            }
        }
    }
    json_decref(seen);
}

/* ---- fixture cases ---- */

#define PROM_ANNOT 1 /* opt.prometheus_annotations = true */
#define NO_SECRET 2  /* opt.default_tls_secret = NULL */

struct pp_case {
    const char *name;      /* directory under tests/data/podpatch */
    const char *effective; /* file under effective/ without .json; NULL = C NULL */
    const char *base;      /* JSON Pointer of the pod in the document */
    int flags;
    size_t n_warnings;
    const char *warning; /* substring expected in the joined warnings */
};

static const struct pp_case pp_cases[] = {
    {"kuma-sample", "prom-default", "", 0, 0, NULL},
    {"native-sidecar", "prom-tls", "", 0, 0, NULL},
    {"no-sidecar", "prom-tls", "", 0, 0, NULL},
    {"annotations-absent", "prom-default", "", 0, 0, NULL},
    {"annotations-null", "prom-default", "", 0, 0, NULL},
    {"metadata-absent", "prom-default", "", 0, 0, NULL},
    {"sidecar-second", "prom-default", "", 0, 0, NULL},
    {"ports-env-null", "prom-tls", "", 0, 0, NULL},
    {"tls-annotation", "prom-tls", "", 0, 0, NULL},
    {"tls-default-secret", "prom-tls", "", 0, 0, NULL},
    {"tls-no-secret", "prom-tls", "", NO_SECRET, 1, "no Secret is configured"},
    {"tls-bad-secret", "prom-tls", "", 0, 1, "\"Bad_Secret!\", which is not a valid Secret name"},
    {"tls-user-env", "prom-tls", "", 0, 0, NULL},
    {"tls-user-env-both", "prom-tls", "", 0, 0, NULL},
    {"tls-volume-conflict", "prom-tls", "", 0, 1,
     "spec.volumes[1]: volume \"meshmetric-tls\" already exists and does not use Secret "
     "\"wanted\""},
    {"tls-volume-same", "prom-tls", "", 0, 0, NULL},
    {"tls-subpath-mount", "prom-tls", "", 0, 1,
     "spec.containers[0].volumeMounts[0]: volume \"meshmetric-tls\" is mounted with subPath"},
    {"tls-existing-dir-mount", "prom-tls", "", 0, 0, NULL},
    {"tls-mountpath-taken", "prom-tls", "", 0, 1,
     "another volume is already mounted at /var/run/secrets/meshmetric.kuma.io/tls"},
    {"multi-backends", "multi", "", 0, 0, NULL},
    {"port-name-collision", "multi", "", 0, 0, NULL},
    {"port-on-sidecar", "prom-default", "", 0, 0, NULL},
    {"port-on-other", "prom-default", "", 0, 1,
     "spec.containers[1].ports: port 5670 is already declared by container \"app\""},
    {"port-udp-other", "prom-default", "", 0, 0, NULL},
    {"backend-defaults", "prom-bare", "", 0, 0, NULL},
    {"stale-annotations", "prom-default", "", 0, 0, NULL},
    {"empty-effective", "empty", "", 0, 0, NULL},
    {"null-effective-recorded", NULL, "", 0, 0, NULL},
    {"otel-only", "otel-only", "", 0, 0, NULL},
    {"prom-annotations-user", "prom-tls", "", PROM_ANNOT, 0, NULL},
    {"prom-annotations-absent", "prom-default", "", PROM_ANNOT, 0, NULL},
    {"prom-annotations-disabled", "prom-default", "", 0, 0, NULL},
    {"long-summary", "long-apps", "", 0, 0, NULL},
    {"deployment", "multi", "/spec/template", 0, 0, NULL},
    {"cronjob", "prom-tls", "/spec/jobTemplate/spec/template", PROM_ANNOT, 0, NULL},
    /* A path without "/" (e.g. from prometheus.metrics.kuma.io/path: metrics): kept, shown
     * quoted in the summary, and a warning for the sidecar's (Kuma's Envoy route prefix). */
    {"path-without-slash", "relative-paths", "", 0, 1,
     "metrics path \"metrics\" on port 5670 has no leading \"/\": Kuma's Envoy route never "
     "matches it, every scrape gets 404"},
};

static void case_options(const struct pp_case *c, struct podpatch_options *opt)
{
    *opt = podpatch_default_options;
    if (c->flags & PROM_ANNOT)
        opt->prometheus_annotations = true;
    if (c->flags & NO_SECRET)
        opt->default_tls_secret = NULL;
}

static void write_dump(const char *dir, const char *name, const char *what, const json_t *v)
{
    char *path = xasprintf("%s/%s.%s.json", dir, name, what);
    if (json_dump_file(v, path, JSON_INDENT(2) | JSON_ENCODE_ANY) != 0)
        fail_msg("cannot write %s", path);
    free(path);
}

static void run_case(const struct pp_case *c)
{
    char *rel = xasprintf("%s/pod.json", c->name);
    json_t *doc = load_file(rel);
    free(rel);
    rel = xasprintf("%s/patch.json", c->name);
    json_t *expected = load_file(rel);
    free(rel);
    json_t *effective = NULL;
    if (c->effective) {
        rel = xasprintf("effective/%s.json", c->effective);
        effective = load_file(rel);
        free(rel);
    }
    struct podpatch_options opt;
    case_options(c, &opt);

    json_t *pod = ptr_get(doc, c->base);
    assert_non_null(pod);

    struct violations warnings;
    violations_init(&warnings);
    struct mm_error err;
    json_t *patch = NULL;
    enum mm_status rc = podpatch_build(pod, c->base, effective, &opt, &patch, &warnings, &err);
    if (rc != MM_OK)
        fail_msg("%s: %s: %s: %s", c->name, mm_status_name(rc), err.field, err.message);
    assert_non_null(patch);

    if (!json_equal(patch, expected)) {
        char *got = json_dumps(patch, JSON_INDENT(2));
        fail_msg("%s: patch differs from %s/patch.json; got:\n%s", c->name, c->name, got);
    }

    /* Warnings. */
    char *joined = violations_join(&warnings);
    if (warnings.len != c->n_warnings)
        fail_msg("%s: %zu warnings, want %zu: %s", c->name, warnings.len, c->n_warnings, joined);
    if (c->warning && !strstr(joined, c->warning))
        fail_msg("%s: warnings \"%s\" lack \"%s\"", c->name, joined, c->warning);
    free(joined);

    /* Only strict-RFC adds under base. */
    size_t i;
    json_t *op;
    json_array_foreach(patch, i, op) {
        assert_string_equal(json_string_value(json_object_get(op, "op")), "add");
        const char *path = json_string_value(json_object_get(op, "path"));
        assert_non_null(path);
        assert_true(strncmp(path, c->base, strlen(c->base)) == 0);
        assert_int_equal(path[strlen(c->base)], '/');
    }

    /* Apply strictly, check invariants, and rebuild: must be []. */
    json_t *want = apply_patch(c->name, doc, patch);
    json_t *mutated = ptr_get(want, c->base);
    check_port_names(c->name, mutated);
    if (json_array_size(patch) > 0) {
        const json_t *annots = json_object_get(json_object_get(mutated, "metadata"), "annotations");
        char *hash = podpatch_config_hash(effective);
        assert_string_equal(json_string_value(json_object_get(annots, PODPATCH_ANNOT_HASH)), hash);
        free(hash);
        const char *summary = json_string_value(json_object_get(annots, PODPATCH_ANNOT_CONFIG));
        assert_non_null(summary);
        assert_true(strlen(summary) <= 256);
    }

    struct violations w2;
    violations_init(&w2);
    json_t *again = NULL;
    rc = podpatch_build(mutated, c->base, effective, &opt, &again, &w2, &err);
    assert_int_equal(rc, MM_OK);
    if (json_array_size(again) != 0) {
        char *s = dump(again);
        fail_msg("%s: not idempotent, second patch %s", c->name, s);
    }

    const char *dir = getenv("MM_PATCH_DUMP");
    if (dir && dir[0]) {
        write_dump(dir, c->name, "pod", doc);
        write_dump(dir, c->name, "patch", patch);
        write_dump(dir, c->name, "want", want);
    }

    json_decref(again);
    violations_cleanup(&w2);
    json_decref(want);
    json_decref(patch);
    violations_cleanup(&warnings);
    json_decref(effective);
    json_decref(expected);
    json_decref(doc);
}

static void test_fixture_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof pp_cases / sizeof pp_cases[0]; i++)
        run_case(&pp_cases[i]);
}


/*
 * meshmetric.kuma.io/config for various effective configs: a path is written
 * bare after the port only when it cannot be misread (podpatch.c decisions).
 */
static void test_summary(void **state)
{
    (void)state;
    static const struct {
        const char *effective; /* JSON */
        const char *summary;
    } cases[] = {
        {"{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":5670,\"path\":\"/metrics\"}}]}",
         "prometheus:5670/metrics"},
        {"{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":5670,\"path\":\"metrics\"}}]}",
         "prometheus:5670 path=\"metrics\""},
        /* without the quoting these two would both read "prometheus:56700/x" */
        {"{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":5670,\"path\":\"0/x\"}}]}",
         "prometheus:5670 path=\"0/x\""},
        {"{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":56700,\"path\":\"/x\"}}]}",
         "prometheus:56700/x"},
        {"{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":5670,\"path\":\"\"}}]}",
         "prometheus:5670 path=\"\""},
        {"{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":1,\"path\":\"/a b\","
         "\"clientId\":\"c\"}}]}",
         "prometheus:1 path=\"/a b\" client=c"},
        {"{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":1,\"path\":\"/a;b,c\\\"d\","
         "\"tls\":{\"mode\":\"ProvidedTLS\"}}}]}",
         "prometheus:1 path=\"/a;b,c\\\"d\" tls=ProvidedTLS"},
        {"{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":1,\"path\":\"/\\u00e9\"}}]}",
         "prometheus:1/\xc3\xa9"},
        {"{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":1,\"path\":\"/a\\tb\"}}]}",
         "prometheus:1 path=\"/a\\tb\""},
        {"{\"applications\":[{\"name\":\"app\",\"port\":8080,\"path\":\"stats\"},{\"port\":9090,"
         "\"path\":\"/m\"},{\"port\":1,\"path\":\"x\"}]}",
         "apps=app:8080 path=\"stats\",9090/m,1 path=\"x\""},
        {"{\"applications\":[{\"name\":\"a\",\"port\":1}]}", "apps=a:1/metrics"},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *doc = load_file("backend-defaults/pod.json");
        json_error_t jerr;
        json_t *eff = json_loads(cases[i].effective, 0, &jerr);
        if (!eff)
            fail_msg("bad test JSON %s: %s", cases[i].effective, jerr.text);
        json_t *patch = NULL;
        struct violations w;
        struct mm_error err;
        violations_init(&w);
        assert_int_equal(podpatch_build(doc, "", eff, NULL, &patch, &w, &err), MM_OK);
        const char *got = NULL;
        size_t k;
        json_t *op;
        json_array_foreach(patch, k, op)
        {
            if (!strcmp(json_string_value(json_object_get(op, "path")),
                        "/metadata/annotations/meshmetric.kuma.io~1config"))
                got = json_string_value(json_object_get(op, "value"));
        }
        if (!got || strcmp(got, cases[i].summary) != 0) {
            print_error("case %zu: got %s\n want %s\n", i, got ? got : "(none)", cases[i].summary);
            failures++;
        }
        violations_cleanup(&w);
        json_decref(patch);
        json_decref(eff);
        json_decref(doc);
    }
    assert_int_equal(failures, 0);
}

/* Specific facts about particular fixtures, beyond the golden patch. */
static void test_fixture_facts(void **state)
{
    (void)state;
    struct mm_error err;
    struct violations w;
    json_t *patch = NULL;

    /* The sample pod's app already has a port named "metrics": ours is "metrics-1". */
    json_t *doc = load_file("kuma-sample/pod.json");
    json_t *eff = load_file("effective/prom-default.json");
    violations_init(&w);
    assert_int_equal(podpatch_build(doc, "", eff, NULL, &patch, &w, &err), MM_OK);
    json_t *want = apply_patch("kuma-sample", doc, patch);
    json_t *port = ptr_get(want, "/spec/containers/0/ports/0");
    assert_string_equal(json_string_value(json_object_get(port, "name")), "metrics-1");
    assert_int_equal(json_integer_value(json_object_get(port, "containerPort")), 5670);
    assert_string_equal(json_string_value(json_object_get(port, "protocol")), "TCP");
    /* The user's prometheus.io annotations are untouched. */
    assert_string_equal(
        json_string_value(ptr_get(want, "/metadata/annotations/prometheus.io~1port")), "9102");
    json_decref(want);
    json_decref(patch);
    json_decref(eff);
    json_decref(doc);
    violations_cleanup(&w);

    /* Native sidecar with ProvidedTLS: a read-only directory mount, no subPath, both env vars. */
    doc = load_file("native-sidecar/pod.json");
    eff = load_file("effective/prom-tls.json");
    violations_init(&w);
    assert_int_equal(podpatch_build(doc, NULL, eff, &podpatch_default_options, &patch, &w, &err),
                     MM_OK);
    want = apply_patch("native-sidecar", doc, patch);
    json_t *sc = ptr_get(want, "/spec/initContainers/1");
    assert_string_equal(json_string_value(json_object_get(sc, "name")), PODPATCH_SIDECAR);
    json_t *mount = ptr_get(sc, "/volumeMounts/1");
    assert_string_equal(json_string_value(json_object_get(mount, "name")), "meshmetric-tls");
    assert_string_equal(json_string_value(json_object_get(mount, "mountPath")),
                        podpatch_default_options.cert_dir);
    assert_true(json_is_true(json_object_get(mount, "readOnly")));
    assert_null(json_object_get(mount, "subPath"));
    json_t *vol = ptr_get(want, "/spec/volumes/1");
    assert_string_equal(json_string_value(ptr_get(vol, "/secret/secretName")),
                        podpatch_default_options.default_tls_secret);
    char *crt = xasprintf("%s/tls.crt", podpatch_default_options.cert_dir);
    assert_string_equal(json_string_value(ptr_get(sc, "/env/2/value")), crt);
    assert_string_equal(json_string_value(ptr_get(sc, "/env/2/name")), PODPATCH_ENV_CERT);
    assert_string_equal(json_string_value(ptr_get(sc, "/env/3/name")), PODPATCH_ENV_KEY);
    free(crt);
    json_decref(want);
    json_decref(patch);
    json_decref(eff);
    json_decref(doc);
    violations_cleanup(&w);

    /* warnings and err may be NULL: a warning-producing case still builds its patch. */
    doc = load_file("port-on-other/pod.json");
    eff = load_file("effective/prom-default.json");
    assert_int_equal(podpatch_build(doc, "", eff, NULL, &patch, NULL, NULL), MM_OK);
    assert_int_equal(json_array_size(patch), 2);
    json_decref(patch);
    json_decref(eff);
    json_decref(doc);
    doc = parse("[]");
    patch = (json_t *)1;
    assert_int_equal(podpatch_build(doc, "", NULL, NULL, &patch, NULL, NULL), MM_ERR_TYPE);
    assert_null(patch);
    json_decref(doc);
}

/* ---- options ---- */

static void test_cert_dir_option(void **state)
{
    (void)state;
    json_t *doc = load_file("tls-annotation/pod.json");
    json_t *eff = load_file("effective/prom-tls.json");
    struct podpatch_options opt = podpatch_default_options;
    opt.cert_dir = "/etc/kuma/metrics-tls/"; /* trailing slash is not doubled */
    opt.default_tls_secret = "unused-default";
    struct violations w;
    violations_init(&w);
    struct mm_error err;
    json_t *patch = NULL;
    assert_int_equal(podpatch_build(doc, "", eff, &opt, &patch, &w, &err), MM_OK);
    json_t *want = apply_patch("cert-dir", doc, patch);
    assert_string_equal(json_string_value(ptr_get(want, "/spec/containers/0/env/0/value")),
                        "/etc/kuma/metrics-tls/tls.crt");
    assert_string_equal(json_string_value(ptr_get(want, "/spec/containers/0/env/1/value")),
                        "/etc/kuma/metrics-tls/tls.key");
    assert_string_equal(
        json_string_value(ptr_get(want, "/spec/containers/0/volumeMounts/0/mountPath")),
        "/etc/kuma/metrics-tls/");
    /* The annotation wins over the default Secret. */
    assert_string_equal(json_string_value(ptr_get(want, "/spec/volumes/0/secret/secretName")),
                        "checkout-metrics-tls");
    json_decref(want);
    json_decref(patch);
    json_decref(eff);
    json_decref(doc);
    violations_cleanup(&w);
}

/* ---- inline cases: errors and graceful skips ---- */

struct pp_inline {
    const char *name;
    const char *pod;
    const char *effective; /* NULL = C NULL */
    const char *base;
    enum mm_status status;
    const char *field; /* on error */
    const char *patch; /* on success */
};

#define SC "{\"name\":\"kuma-sidecar\"}"
#define PROM "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":5670}}]}"

static const struct pp_inline pp_inline_cases[] = {
    /* pods of the wrong shape */
    {"pod array", "[]", PROM, "", MM_ERR_TYPE, "", NULL},
    {"pod string", "\"pod\"", PROM, "", MM_ERR_TYPE, "", NULL},
    {"spec string", "{\"spec\":\"x\"}", PROM, "", MM_ERR_TYPE, "spec", NULL},
    {"containers object", "{\"spec\":{\"containers\":{}}}", PROM, "", MM_ERR_TYPE,
     "spec.containers", NULL},
    {"initContainers string", "{\"spec\":{\"containers\":[],\"initContainers\":\"x\"}}", PROM, "",
     MM_ERR_TYPE, "spec.initContainers", NULL},
    {"ports object",
     "{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"kuma-sidecar\","
     "\"ports\":{}}]}}",
     PROM, "", MM_ERR_TYPE, "spec.containers[1].ports", NULL},
    {"env string", "{\"spec\":{\"initContainers\":[{\"name\":\"kuma-sidecar\",\"env\":\"x\"}]}}",
     PROM, "", MM_ERR_TYPE, "spec.initContainers[0].env", NULL},
    {"volumeMounts number",
     "{\"spec\":{\"containers\":[{\"name\":\"kuma-sidecar\","
     "\"volumeMounts\":1}]}}",
     PROM, "", MM_ERR_TYPE, "spec.containers[0].volumeMounts", NULL},
    {"volumes object", "{\"spec\":{\"containers\":[" SC "],\"volumes\":{}}}", PROM, "", MM_ERR_TYPE,
     "spec.volumes", NULL},
    {"metadata string", "{\"metadata\":\"x\",\"spec\":{\"containers\":[" SC "]}}", PROM, "",
     MM_ERR_TYPE, "metadata", NULL},
    {"annotations array", "{\"metadata\":{\"annotations\":[]},\"spec\":{\"containers\":[" SC "]}}",
     PROM, "", MM_ERR_TYPE, "metadata.annotations", NULL},
    /* effective configs of the wrong shape (checked before the pod) */
    {"effective array", "{}", "[]", "", MM_ERR_TYPE, "default", NULL},
    {"effective string", "{}", "\"x\"", "", MM_ERR_TYPE, "default", NULL},
    {"backends object", "{}", "{\"backends\":{}}", "", MM_ERR_TYPE, "default.backends", NULL},
    {"backend string", "{}", "{\"backends\":[\"Prometheus\"]}", "", MM_ERR_TYPE,
     "default.backends[0]", NULL},
    {"prometheus string", "{}", "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":\"x\"}]}",
     "", MM_ERR_TYPE, "default.backends[0].prometheus", NULL},
    {"port string", "{}",
     "{\"backends\":[{\"type\":\"OpenTelemetry\"},{\"type\":\"Prometheus\",\"prometheus\":"
     "{\"port\":\"5670\"}}]}",
     "", MM_ERR_TYPE, "default.backends[1].prometheus.port", NULL},
    {"port real", "{}",
     "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":5670.0}}]}", "", MM_ERR_TYPE,
     "default.backends[0].prometheus.port", NULL},
    {"port 0", "{}", "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":0}}]}", "",
     MM_ERR_INVALID, "default.backends[0].prometheus.port", NULL},
    {"port 65536", "{}",
     "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":65536}}]}", "",
     MM_ERR_INVALID, "default.backends[0].prometheus.port", NULL},
    {"port huge", "{}",
     "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"port\":99999999999999}}]}", "",
     MM_ERR_INVALID, "default.backends[0].prometheus.port", NULL},
    {"path number", "{}", "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"path\":1}}]}",
     "", MM_ERR_TYPE, "default.backends[0].prometheus.path", NULL},
    {"tls string", "{}",
     "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"tls\":\"x\"}}]}", "", MM_ERR_TYPE,
     "default.backends[0].prometheus.tls", NULL},
    {"tls mode number", "{}",
     "{\"backends\":[{\"type\":\"Prometheus\",\"prometheus\":{\"tls\":{\"mode\":1}}}]}", "",
     MM_ERR_TYPE, "default.backends[0].prometheus.tls.mode", NULL},
    {"base without slash", "{}", PROM, "spec/template", MM_ERR_INVALID, "base", NULL},
    /* graceful: nothing to patch */
    {"no spec", "{\"metadata\":{}}", PROM, "", MM_OK, NULL, "[]"},
    {"spec null", "{\"spec\":null}", PROM, "", MM_OK, NULL, "[]"},
    {"no containers", "{\"spec\":{}}", PROM, "", MM_OK, NULL, "[]"},
    {"containers null", "{\"spec\":{\"containers\":null}}", PROM, "", MM_OK, NULL, "[]"},
    {"name not a string", "{\"spec\":{\"containers\":[{\"name\":1}]}}", PROM, "", MM_OK, NULL,
     "[]"},
    {"no sidecar, bad annotations",
     "{\"metadata\":{\"annotations\":7},\"spec\":{\"containers\":"
     "[{\"name\":\"app\"}]}}",
     PROM, "", MM_OK, NULL, "[]"},
    {"sidecar name case", "{\"spec\":{\"containers\":[{\"name\":\"Kuma-Sidecar\"}]}}", PROM, "",
     MM_OK, NULL, "[]"},
    {"empty effective, no annotations", "{\"spec\":{\"containers\":[" SC "]}}", "{}", "", MM_OK,
     NULL, "[]"},
    {"null effective, no annotations", "{\"spec\":{\"containers\":[" SC "]}}", NULL, "", MM_OK,
     NULL, "[]"},
    {"json null effective", "{\"spec\":{\"containers\":[" SC "]}}", "null", "", MM_OK, NULL, "[]"},
    /* graceful: odd entries are skipped, the sidecar is still patched */
    {"non-object entries",
     "{\"metadata\":{\"annotations\":{}},\"spec\":{\"containers\":[7,null,"
     "{\"name\":\"app\",\"ports\":[1,{\"containerPort\":\"5670\"},"
     "{\"name\":5}]}," SC "]}}",
     PROM, "", MM_OK, NULL,
     "[{\"op\":\"add\",\"path\":\"/spec/containers/3/ports\",\"value\":[{\"name\":\"metrics\","
     "\"containerPort\":5670,\"protocol\":\"TCP\"}]},"
     "{\"op\":\"add\",\"path\":\"/metadata/annotations/meshmetric.kuma.io~1config-hash\","
     "\"value\":\"sha256:1c9764fe18880fc1\"},"
     "{\"op\":\"add\",\"path\":\"/metadata/annotations/meshmetric.kuma.io~1config\","
     "\"value\":\"prometheus:5670/metrics\"}]"},
    {"unknown backend types ignored",
     "{\"metadata\":{\"annotations\":{}},\"spec\":{\"containers\":"
     "[" SC "]}}",
     "{\"backends\":[{\"type\":\"Zipkin\"},{\"type\":1}]}", "", MM_OK, NULL,
     "[{\"op\":\"add\",\"path\":\"/metadata/annotations/meshmetric.kuma.io~1config-hash\","
     "\"value\":\"sha256:7094b7ee447e79b4\"},"
     "{\"op\":\"add\",\"path\":\"/metadata/annotations/meshmetric.kuma.io~1config\","
     "\"value\":\"no backends\"}]"},
};

static void test_inline_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof pp_inline_cases / sizeof pp_inline_cases[0]; i++) {
        const struct pp_inline *c = &pp_inline_cases[i];
        json_t *pod = parse(c->pod);
        json_t *eff = c->effective ? parse(c->effective) : NULL;
        struct violations w;
        violations_init(&w);
        struct mm_error err;
        json_t *patch = (json_t *)1; /* must be overwritten */
        enum mm_status rc = podpatch_build(pod, c->base, eff, NULL, &patch, &w, &err);
        if (rc != c->status)
            fail_msg("%s: status %s, want %s (%s: %s)", c->name, mm_status_name(rc),
                     mm_status_name(c->status), err.field, err.message);
        if (rc != MM_OK) {
            assert_null(patch);
            if (strcmp(err.field, c->field) != 0)
                fail_msg("%s: field \"%s\", want \"%s\"", c->name, err.field, c->field);
            assert_int_equal(err.code, c->status);
            assert_true(err.message[0] != '\0');
        } else {
            json_t *want = parse(c->patch);
            if (!json_equal(patch, want)) {
                char *s = dump(patch);
                fail_msg("%s: got %s", c->name, s);
            }
            json_t *applied = apply_patch(c->name, pod, patch);
            json_t *again = NULL;
            assert_int_equal(podpatch_build(applied, c->base, eff, NULL, &again, &w, &err), MM_OK);
            assert_int_equal(json_array_size(again), 0);
            json_decref(again);
            json_decref(applied);
            json_decref(want);
            json_decref(patch);
        }
        violations_cleanup(&w);
        json_decref(eff);
        json_decref(pod);
    }
}

/* ---- mutation fuzzing: every node of a few fixtures removed or retyped ---- */

/* Append the JSON Pointer of every node under v (prefix = v's pointer) to out. */
static void collect_pointers(const json_t *v, const char *prefix, json_t *out)
{
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)v, key, child) {
            char *tok = podpatch_escape_token(key);
            char *p = xasprintf("%s/%s", prefix, tok);
            json_array_append_new(out, json_string(p));
            collect_pointers(child, p, out);
            free(p);
            free(tok);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) {
            char *p = xasprintf("%s/%zu", prefix, i);
            json_array_append_new(out, json_string(p));
            collect_pointers(child, p, out);
            free(p);
        }
    }
}

static void test_mutations(void **state)
{
    (void)state;
    static const struct {
        const char *name, *effective, *base;
    } seeds[] = {
        {"kuma-sample", "multi", ""},
        {"native-sidecar", "prom-tls", ""},
        {"tls-subpath-mount", "prom-tls", ""},
        {"tls-volume-same", "prom-tls", ""},
        {"deployment", "multi", "/spec/template"},
    };
    static const char *const variants[] = {NULL, "null", "\"x\"", "7", "{}", "[]"};
    struct podpatch_options opt = podpatch_default_options;
    opt.prometheus_annotations = true;
    size_t runs = 0, ok = 0;

    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++) {
        char *rel = xasprintf("%s/pod.json", seeds[s].name);
        json_t *doc = load_file(rel);
        free(rel);
        rel = xasprintf("effective/%s.json", seeds[s].effective);
        json_t *eff = load_file(rel);
        free(rel);
        json_t *ptrs = json_array();
        collect_pointers(ptr_get(doc, seeds[s].base), seeds[s].base, ptrs);
        size_t i;
        json_t *ptr;
        json_array_foreach(ptrs, i, ptr) {
            for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
                json_t *copy = json_deep_copy(doc);
                json_t *op = variants[v]
                                 ? json_pack("{s:s,s:O,s:o}", "op", "replace", "path", ptr,
                                             "value", parse(variants[v]))
                                 : json_pack("{s:s,s:O}", "op", "remove", "path", ptr);
                const char *e = apply_op(copy, op);
                if (e)
                    fail_msg("mutation %s: %s", json_string_value(ptr), e);
                json_decref(op);

                json_t *pod = ptr_get(copy, seeds[s].base);
                struct violations w;
                violations_init(&w);
                struct mm_error err;
                json_t *patch = NULL;
                enum mm_status rc =
                    podpatch_build(pod, seeds[s].base, eff, &opt, &patch, &w, &err);
                runs++;
                if (rc == MM_OK) {
                    ok++;
                    char *what = xasprintf("%s %s=%s", seeds[s].name, json_string_value(ptr),
                                           variants[v] ? variants[v] : "(removed)");
                    json_t *applied = apply_patch(what, copy, patch);
                    json_t *again = NULL;
                    assert_int_equal(podpatch_build(ptr_get(applied, seeds[s].base),
                                                    seeds[s].base, eff, &opt, &again, &w, &err),
                                     MM_OK);
                    if (json_array_size(again) != 0) {
                        char *d = dump(again);
                        fail_msg("%s: not idempotent: %s", what, d);
                    }
                    check_port_names(what, ptr_get(applied, seeds[s].base));
                    free(what);
                    json_decref(again);
                    json_decref(applied);
                    json_decref(patch);
                } else {
                    assert_null(patch);
                    assert_true(rc == MM_ERR_TYPE);
                    assert_true(err.message[0] != '\0');
                }
                violations_cleanup(&w);
                json_decref(copy);
            }
        }
        json_decref(ptrs);
        json_decref(eff);
        json_decref(doc);
    }
    /* Sanity: the fuzzer reached both outcomes many times. */
    assert_true(runs > 1000);
    assert_true(ok > runs / 2);
    assert_true(ok < runs);
}

/* ---- helpers exported by the header ---- */

static void test_escape_token(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"plain", "plain"},
        {"a/b", "a~1b"},
        {"a~b", "a~0b"},
        {"~1", "~01"},
        {"/~", "~1~0"},
        {"~~//", "~0~0~1~1"},
        {"prometheus.metrics.kuma.io/port", "prometheus.metrics.kuma.io~1port"},
        {"\xc3\xa9/\xc3\xa9", "\xc3\xa9~1\xc3\xa9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = podpatch_escape_token(cases[i].in);
        assert_string_equal(s, cases[i].out);
        /* and the applier's unescape inverts it */
        assert_true(unescape(s));
        assert_string_equal(s, cases[i].in);
        free(s);
    }
}

static void test_config_hash(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b; /* NULL = C NULL */
        bool same;
    } cases[] = {
        {NULL, "{}", true},
        {"null", "{}", true},
        {"{\"a\":1,\"b\":2}", "{\"b\":2,\"a\":1}", true},
        {"{\"x\":{\"b\":[1,{\"d\":1,\"c\":2}],\"a\":\"s\"}}",
         "{\"x\":{\"a\":\"s\",\"b\":[1,{\"c\":2,\"d\":1}]}}", true},
        {"{\"a\":1}", "{\"a\":2}", false},
        {"{\"a\":[1,2]}", "{\"a\":[2,1]}", false},
        {"{\"a\":\"1\"}", "{\"a\":1}", false},
        {"{}", "{\"backends\":[]}", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *a = cases[i].a ? parse(cases[i].a) : NULL;
        json_t *b = cases[i].b ? parse(cases[i].b) : NULL;
        char *ha = podpatch_config_hash(a);
        char *hb = podpatch_config_hash(b);
        if ((strcmp(ha, hb) == 0) != cases[i].same)
            fail_msg("hash case %zu: %s vs %s", i, ha, hb);
        free(ha);
        free(hb);
        json_decref(a);
        json_decref(b);
    }
    /* Format, and a known value: sha256("{}") = 44136fa355b3678a1146ad16... */
    char *h = podpatch_config_hash(NULL);
    assert_string_equal(h, "sha256:44136fa355b3678a");
    free(h);
    json_t *v = parse("{\"b\":1,\"a\":[true,null,\"\xc3\xa9\"]}");
    h = podpatch_config_hash(v);
    /* hashlib.sha256('{"a":[true,null,"é"],"b":1}'.encode()).hexdigest()[:16] */
    assert_string_equal(h, "sha256:17c8c6f7f948ee1c");
    assert_int_equal(strlen(h), 7 + 16);
    free(h);
    json_decref(v);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_applier_is_strict),
        cmocka_unit_test(test_fixture_cases),
        cmocka_unit_test(test_fixture_facts),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_cert_dir_option),
        cmocka_unit_test(test_inline_cases),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_escape_token),
        cmocka_unit_test(test_config_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
