/*
 * The directory policy source (src/server/policydir.c): which files are
 * read, multi-document YAML and Lists, atomic snapshot swaps that leave held
 * snapshots intact, a broken file or document keeping the last good snapshot
 * with an error naming it, readiness, and the polling watcher.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/policydir.h"
#include "util/log.h"
#include "util/xalloc.h"

struct tmpdir {
    char path[64];
};

static void write_file(const char *dir, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    char *tmp = xasprintf("%s/.tmp-%s", dir, name);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0); /* atomic, as a real writer should */
    free(path);
    free(tmp);
}

static void remove_file(const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);
    unlink(path);
    free(path);
}

static int setup(void **state)
{
    struct tmpdir *t = xcalloc(1, sizeof *t);
    snprintf(t->path, sizeof t->path, "/tmp/mm-test-policydir-XXXXXX");
    if (!mkdtemp(t->path))
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct tmpdir *t = *state;
    char *cmd = xasprintf("rm -rf '%s'", t->path);
    int rc = system(cmd);
    (void)rc;
    free(cmd);
    free(t);
    return 0;
}

static const char MM_A[] = "apiVersion: kuma.io/v1alpha1\n"
                           "kind: MeshMetric\n"
                           "metadata: {name: a, namespace: kuma-system}\n"
                           "spec:\n"
                           "  targetRef: {kind: Mesh}\n"
                           "  default:\n"
                           "    backends: [{type: Prometheus, prometheus: {port: 5670}}]\n"
                           "---\n"
                           "apiVersion: v1\n"
                           "kind: Namespace\n"
                           "metadata: {name: shop, labels: {kuma.io/mesh: default}}\n"
                           "---\n"
                           "apiVersion: v1\n"
                           "kind: ConfigMap\n"
                           "metadata: {name: ignored}\n";

static const char LIST_B[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":["
    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\","
    "\"namespace\":\"shop\"},\"spec\":{\"selector\":{\"app\":\"x\"}}},"
    "{\"apiVersion\":\"kuma.io/v1alpha1\",\"kind\":\"Mesh\",\"metadata\":"
    "{\"name\":\"default\"},\"spec\":{}}]}";

struct counts {
    size_t mm, meshes, ns, svc;
};

static struct counts count(const struct policy_view *view)
{
    struct view_counts vc;
    view_counts(view, &vc);
    struct counts c = {vc.meshmetrics, vc.meshes, vc.namespaces, vc.services};
    return c;
}

static void assert_counts(struct policy_view *snap, size_t mm, size_t meshes, size_t ns,
                          size_t svc)
{
    struct counts c = count(snap);
    assert_int_equal(c.mm, mm);
    assert_int_equal(c.meshes, meshes);
    assert_int_equal(c.ns, ns);
    assert_int_equal(c.svc, svc);
}

static void test_load_and_filter(void **state)
{
    struct tmpdir *t = *state;
    write_file(t->path, "a.yaml", MM_A);
    write_file(t->path, "b.json", LIST_B);
    write_file(t->path, "README.md", "kind: MeshMetric\n"); /* not a policy file */
    write_file(t->path, "..hidden.yaml", MM_A);             /* ..data-style names are skipped */
    char *sub = xasprintf("%s/dir.yaml", t->path);
    assert_int_equal(mkdir(sub, 0755), 0); /* a directory with a policy-like name */
    free(sub);

    struct policydir *pd = policydir_create(t->path, NULL);
    struct policy_source src = policydir_source(pd);
    assert_false(src.ready(src.ctx));
    struct mm_error err;
    assert_int_equal(policydir_reload(pd, false, &err), MM_OK);
    assert_true(src.ready(src.ctx));
    struct policy_view *snap = src.acquire(src.ctx);
    assert_counts(snap, 1, 1, 1, 1);
    /* Defaults were applied by the policy loader. */
    const struct policy *const *all = NULL;
    assert_int_equal(view_policies(snap, &all), 1);
    const json_t *mm = all[0]->obj;
    const json_t *backend = json_array_get(
        json_object_get(json_object_get(json_object_get(mm, "spec"), "default"), "backends"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(backend, "prometheus"), "path")),
        "/metrics");
    view_unref(snap);

    /* Unchanged files: no reload. */
    uint64_t ok = 0, failed = 0;
    policydir_reload_counts(pd, &ok, &failed, NULL);
    assert_int_equal(ok, 1);
    assert_int_equal(policydir_reload(pd, false, &err), MM_OK);
    policydir_reload_counts(pd, &ok, &failed, NULL);
    assert_int_equal(ok, 1);
    assert_int_equal(failed, 0);
    policydir_free(pd);
}

static void test_swap_keeps_held_snapshot(void **state)
{
    struct tmpdir *t = *state;
    write_file(t->path, "a.yaml", MM_A);
    struct policydir *pd = policydir_create(t->path, NULL);
    struct policy_source src = policydir_source(pd);
    struct mm_error err;
    assert_int_equal(policydir_reload(pd, false, &err), MM_OK);
    struct policy_view *held = src.acquire(src.ctx);

    write_file(t->path, "b.json", LIST_B);
    assert_int_equal(policydir_reload(pd, false, &err), MM_OK);
    struct policy_view *fresh = src.acquire(src.ctx);
    assert_ptr_not_equal(held, fresh);
    assert_counts(held, 1, 0, 1, 0); /* what the in-flight request saw stays intact */
    assert_counts(fresh, 1, 1, 1, 1);
    view_unref(held);
    view_unref(fresh);

    /* Removing a file removes its objects. */
    remove_file(t->path, "a.yaml");
    assert_int_equal(policydir_reload(pd, false, &err), MM_OK);
    fresh = src.acquire(src.ctx);
    assert_counts(fresh, 0, 1, 0, 1);
    view_unref(fresh);
    policydir_free(pd);
}

struct broken_case {
    const char *name;
    const char *file;
    const char *text;
    const char *want_field;   /* err.field */
    const char *want_message; /* substring of err.message */
};

static const struct broken_case broken_cases[] = {
    {"YAML syntax", "c.yaml", "kind: MeshMetric\nmetadata: [oops\n", "c.yaml", "line"},
    {"second document without a name", "d.yml",
     "kind: MeshMetric\nmetadata: {name: ok}\n---\nkind: MeshMetric\nmetadata: {}\n", "d.yml",
     "document 2: metadata.name"},
    {"scalar document", "e.yaml", "just a string\n", "e.yaml", "document 1"},
    {"document without kind", "f.json", "{\"metadata\":{\"name\":\"x\"}}", "f.json",
     "document 1: kind"},
    {"List without items", "g.yaml", "kind: List\n", "g.yaml", "items"},
};

static void test_broken_keeps_last_good(void **state)
{
    struct tmpdir *t = *state;
    write_file(t->path, "a.yaml", MM_A);
    struct policydir *pd = policydir_create(t->path, NULL);
    struct policy_source src = policydir_source(pd);
    struct mm_error err;
    assert_int_equal(policydir_reload(pd, false, &err), MM_OK);
    struct policy_view *good = src.acquire(src.ctx);

    for (size_t i = 0; i < sizeof broken_cases / sizeof *broken_cases; i++) {
        const struct broken_case *c = &broken_cases[i];
        write_file(t->path, c->file, c->text);
        enum mm_status st = policydir_reload(pd, false, &err);
        if (st == MM_OK)
            fail_msg("%s: reload succeeded", c->name);
        assert_string_equal(err.field, c->want_field);
        if (!strstr(err.message, c->want_message))
            fail_msg("%s: message \"%s\" lacks \"%s\"", c->name, err.message, c->want_message);
        struct policy_view *now = src.acquire(src.ctx);
        assert_ptr_equal(now, good); /* the last good snapshot is still served */
        view_unref(now);
        assert_true(src.ready(src.ctx));
        remove_file(t->path, c->file);
    }
    assert_int_equal(policydir_reload(pd, false, &err), MM_OK);
    view_unref(good);
    policydir_free(pd);
}

static void test_not_ready_until_good(void **state)
{
    struct tmpdir *t = *state;
    write_file(t->path, "bad.yaml", "kind: [\n");
    struct policydir *pd = policydir_create(t->path, NULL);
    struct policy_source src = policydir_source(pd);
    struct mm_error err;
    assert_int_not_equal(policydir_reload(pd, false, &err), MM_OK);
    assert_false(src.ready(src.ctx));
    /* Unchanged and still broken: still an error, still not ready. */
    assert_int_not_equal(policydir_reload(pd, false, &err), MM_OK);
    assert_false(src.ready(src.ctx));
    struct policy_view *empty = src.acquire(src.ctx);
    assert_counts(empty, 0, 0, 0, 0);
    view_unref(empty);
    remove_file(t->path, "bad.yaml");
    assert_int_equal(policydir_reload(pd, false, &err), MM_OK);
    assert_true(src.ready(src.ctx));
    policydir_free(pd);

    /* A missing directory is an I/O error naming it. */
    char *missing = xasprintf("%s/nope", t->path);
    pd = policydir_create(missing, NULL);
    assert_int_equal(policydir_reload(pd, true, &err), MM_ERR_IO);
    assert_string_equal(err.field, missing);
    assert_false(policydir_source(pd).ready(pd));
    policydir_free(pd);
    free(missing);

    /* No directory: ready at once, empty. */
    pd = policydir_create(NULL, NULL);
    src = policydir_source(pd);
    assert_true(src.ready(src.ctx));
    assert_int_equal(policydir_reload(pd, true, &err), MM_OK);
    empty = src.acquire(src.ctx);
    assert_counts(empty, 0, 0, 0, 0);
    view_unref(empty);
    policydir_watch_start(pd, 10); /* a no-op without a directory */
    policydir_free(pd);
}

static void test_watcher(void **state)
{
    struct tmpdir *t = *state;
    write_file(t->path, "a.yaml", MM_A);
    struct policydir *pd = policydir_create(t->path, NULL);
    struct policy_source src = policydir_source(pd);
    struct mm_error err;
    assert_int_equal(policydir_reload(pd, false, &err), MM_OK);
    policydir_watch_start(pd, 20);
    write_file(t->path, "b.json", LIST_B);
    bool seen = false;
    for (int i = 0; i < 200 && !seen; i++) {
        struct policy_view *snap = src.acquire(src.ctx);
        seen = count(snap).svc == 1;
        view_unref(snap);
        if (!seen) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    assert_true(seen);
    policydir_watch_stop(pd);
    policydir_watch_stop(pd); /* idempotent */
    policydir_free(pd);
}

/* A policy Kuma would reject is left out of the view (the others apply) and listed. */
static void test_invalid_left_out(void **state)
{
    struct tmpdir *t = *state;
    write_file(t->path, "a.yaml", MM_A);
    write_file(t->path, "bad.yaml",
               "apiVersion: kuma.io/v1alpha1\nkind: MeshMetric\n"
               "metadata: {name: bad, namespace: kuma-system}\n"
               "spec:\n  default:\n    backends: [{type: Prometheus, prometheus: {port: 0}}]\n");
    struct policydir *pd = policydir_create(t->path, NULL);
    struct policy_source src = policydir_source(pd);
    struct mm_error err;
    assert_int_equal(policydir_reload(pd, false, &err), MM_OK);
    struct policy_view *v = src.acquire(src.ctx);
    assert_counts(v, 1, 0, 1, 0);
    const struct view_rejection *rej = NULL;
    assert_int_equal(view_rejections(v, &rej), 1);
    assert_string_equal(rej[0].kind, "MeshMetric");
    assert_string_equal(rej[0].id, "kuma-system/bad");
    assert_string_equal(rej[0].errors,
                        "spec.default.backends.backend[0].port: port must be a valid (1-65535)");
    view_unref(v);
    policydir_free(pd);
}

struct waiter {
    struct policy_source src;
    uint64_t after;
    uint64_t got;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;
    struct policy_view *v = w->src.wait_newer(w->src.ctx, w->after, 5000);
    w->got = view_generation(v);
    view_unref(v);
    return NULL;
}

/* Long poll: wait_newer returns when a newer generation is published, or at the timeout. */
static void test_wait_newer(void **state)
{
    struct tmpdir *t = *state;
    write_file(t->path, "a.yaml", MM_A);
    struct policydir *pd = policydir_create(t->path, NULL);
    struct policy_source src = policydir_source(pd);
    struct mm_error err;
    assert_int_equal(policydir_reload(pd, false, &err), MM_OK);
    struct policy_view *v = src.acquire(src.ctx);
    uint64_t gen = view_generation(v);
    view_unref(v);
    assert_true(gen >= 1);

    /* Nothing newer: the timeout returns the current view. */
    v = src.wait_newer(src.ctx, gen, 50);
    assert_int_equal(view_generation(v), gen);
    view_unref(v);

    struct waiter w = {src, gen, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    write_file(t->path, "b.json", LIST_B);
    assert_int_equal(policydir_reload(pd, false, &err), MM_OK);
    pthread_join(th, NULL);
    assert_int_equal(w.got, gen + 1);
    policydir_free(pd);
}

int main(void)
{
    xalloc_install_json();
    log_setup(LOG_ERROR, LOG_FORMAT_JSON);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_and_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swap_keeps_held_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_keeps_last_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_ready_until_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watcher, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_left_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_newer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
