/*
 * Every example of the seed pages (MeshMetric, Traffic Metrics) and Kuma's
 * documented merge/ordering examples, end to end through the public API:
 * tests/data/seeds/<case>/policies.yaml (any kinds, several documents;
 * optional) and pod.yaml go through the policy view, dataplane_from_pod and
 * match_evaluate; expected.json holds {mode, policies, effective} and
 * optionally origins and warnings ([[field, message], ...]), compared exactly.
 * The expected files were written from the fact sheet, not from our output.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "core/match.h"
#include "util/fileio.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

#define SYSTEM_NAMESPACE "kuma-system"




static json_t *warnings_json(const struct violations *v)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < v->len; i++)
        json_array_append_new(arr, json_pack("[s,s]", v->items[i].field, v->items[i].message));
    return arr;
}

/* Run one case directory; true when it matches. */
static bool run_case(const char *dir, const char *name)
{
    char *exp_path = xasprintf("%s/expected.json", dir);
    char *pol_path = xasprintf("%s/policies.yaml", dir);
    char *pod_path = xasprintf("%s/pod.yaml", dir);
    json_error_t jerr;
    json_t *want = json_load_file(exp_path, 0, &jerr);
    if (!want)
        fail_msg("%s: %s", exp_path, jerr.text);
    for (const char *const *k = (const char *const[]){"mode", "policies", "effective", NULL}; *k;
         k++)
        if (!json_object_get(want, *k))
            fail_msg("%s: \"%s\" is required", exp_path, *k);

    json_t *docs = tu_load_yaml(pol_path, false);
    json_t *pods = tu_load_yaml(pod_path, true);
    struct policy_view *view = tu_view(docs, SYSTEM_NAMESPACE, pol_path);
    const json_t *pod = json_array_get(pods, 0);
    if (!json_is_object(pod))
        fail_msg("%s: no pod", pod_path);

    struct dataplane dp;
    struct match_result r;
    dataplane_from_pod(pod, NULL, view, NULL, &dp);
    match_result_init(&r);
    match_evaluate(&dp, view, json_object_get(json_object_get(pod, "metadata"), "annotations"),
                   &r);

    json_t *got = json_pack("{s:s, s:O, s:O}", "mode", match_mode_name(r.mode), "policies",
                            r.policies, "effective", r.effective);
    if (json_object_get(want, "origins"))
        json_object_set(got, "origins", r.origins);
    if (json_object_get(want, "warnings"))
        json_object_set_new(got, "warnings", warnings_json(&r.warnings));
    bool ok = json_equal(want, got);
    if (!ok) {
        print_message("seed case %s differs (want -, got +):\n", name);
        tu_print_diff("", want, got);
    }

    json_decref(got);
    match_result_cleanup(&r);
    dataplane_cleanup(&dp);
    view_unref(view);
    json_decref(docs);
    json_decref(pods);
    json_decref(want);
    free(exp_path);
    free(pol_path);
    free(pod_path);
    return ok;
}

static void test_seed_cases(void **state)
{
    (void)state;
    const char *root = getenv("MM_TESTDATA");
    if (!root)
        fail_msg("MM_TESTDATA is not set");
    char *dir = xasprintf("%s/seeds", root);
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        fail_msg("cannot list %s", dir);
    int cases = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char *sub = xasprintf("%s/%s", dir, names[i]->d_name);
            cases++;
            if (!run_case(sub, names[i]->d_name))
                failed++;
            free(sub);
        }
        free(names[i]);
    }
    free(names);
    free(dir);
    print_message("%d seed cases, %d differ\n", cases, failed);
    assert_true(cases >= 40);
    assert_int_equal(failed, 0);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
