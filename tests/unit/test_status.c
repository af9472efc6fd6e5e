/*
 * Pod sync states and MeshMetric conditions (core/status.h): the figures in
 * reason and message, the bound on the message, and the merge with the
 * conditions other writers keep (kuma-cp's BackendRefsResolved, as
 * pkg/core/resources/apis/meshopentelemetrybackend/status_updater.go writes it
 * at Kuma v2.14.3: type, status, reason, message).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

#include "core/status.h"
#include "util/xalloc.h"

struct sync_case {
    const char *name;
    const char *recorded, *want;
    bool want_empty;
    const char *drift;
    enum pod_sync expect;
};

static const struct sync_case sync_cases[] = {
    {"recorded equals wanted", "sha256:a", "sha256:a", false, NULL, POD_SYNC_IN_SYNC},
    {"never patched", NULL, "sha256:a", false, NULL, POD_SYNC_NOT_APPLIED},
    {"empty record counts as none", "", "sha256:a", false, NULL, POD_SYNC_NOT_APPLIED},
    {"another config", "sha256:b", "sha256:a", false, NULL, POD_SYNC_OUTDATED},
    {"no config, no record", NULL, NULL, true, NULL, POD_SYNC_IN_SYNC},
    {"no config any more, a record left", "sha256:b", "sha256:e", true, NULL, POD_SYNC_OUTDATED},
    {"no config, the empty config recorded", "sha256:e", "sha256:e", true, NULL,
     POD_SYNC_IN_SYNC},
    {"drift when otherwise in sync", "sha256:a", "sha256:a", false, "inbound 8080 tags differ",
     POD_SYNC_DATAPLANE_DRIFT},
    {"outdated wins over drift", "sha256:b", "sha256:a", false, "x", POD_SYNC_OUTDATED},
    {"empty drift text is no drift", "sha256:a", "sha256:a", false, "", POD_SYNC_IN_SYNC},
};

static void test_pod_sync(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof sync_cases / sizeof *sync_cases; i++) {
        const struct sync_case *c = &sync_cases[i];
        struct pod_sync_input in = {c->recorded, c->want, c->want_empty, c->drift};
        enum pod_sync got = status_pod_sync(&in);
        if (got != c->expect)
            fail_msg("case \"%s\": %s, want %s", c->name, status_pod_reason(got),
                     status_pod_reason(c->expect));
    }
    assert_string_equal(status_pod_reason(POD_SYNC_NOT_APPLIED), "MetricsConfigNotApplied");
    assert_string_equal(status_pod_phrase(POD_SYNC_NOT_APPLIED),
                        "created while the webhook was down");
}

/* The reason pattern of Kuma's CRD (metav1.Condition). */
static bool reason_ok(const char *r)
{
    size_t n = strlen(r);
    if (n < 1 || n > 1024)
        return false;
    if (!((r[0] >= 'A' && r[0] <= 'Z') || (r[0] >= 'a' && r[0] <= 'z')))
        return false;
    for (size_t i = 1; i < n; i++) {
        char ch = r[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  ch == '_' || ((ch == ',' || ch == ':') && i + 1 < n);
        if (!ok)
            return false;
    }
    return true;
}

static const json_t *cond(const json_t *conds, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c)
    {
        if (!strcmp(json_string_value(json_object_get(c, "type")), type))
            return c;
    }
    return NULL;
}

static const char *field(const json_t *c, const char *key)
{
    return json_string_value(json_object_get(c, key));
}

static void test_conditions(void **state)
{
    (void)state;
    struct status_member m[] = {
        {"shop/web-2", POD_SYNC_IN_SYNC},
        {"shop/web-1", POD_SYNC_NOT_APPLIED},
        {"shop/db-0", POD_SYNC_OUTDATED},
        {"shop/web-3", POD_SYNC_IN_SYNC},
    };
    struct status_figures f;
    json_t *c = status_conditions(NULL, m, 4, &f);
    assert_int_equal(f.total, 4);
    assert_int_equal(f.in_sync, 2);
    assert_int_equal(f.out_of_sync, 2);
    const json_t *sync = cond(c, STATUS_COND_IN_SYNC);
    assert_non_null(sync);
    assert_string_equal(field(sync, "status"), "False");
    assert_string_equal(field(sync, "reason"), "InSync:2,OutOfSync:2");
    assert_true(reason_ok(field(sync, "reason")));
    assert_string_equal(field(sync, "message"),
                        "2 of 4 dataplanes run this config; out of sync: shop/db-0 (config "
                        "changed), shop/web-1 (created while the webhook was down)");
    assert_string_equal(field(cond(c, STATUS_COND_VALID), "status"), "True");
    json_decref(c);

    c = status_conditions(NULL, NULL, 0, &f);
    sync = cond(c, STATUS_COND_IN_SYNC);
    assert_string_equal(field(sync, "status"), "True");
    assert_string_equal(field(sync, "reason"), "InSync:0,OutOfSync:0");
    assert_string_equal(field(sync, "message"), "no dataplane is selected by this policy");
    json_decref(c);

    struct status_member one = {"a/b", POD_SYNC_IN_SYNC};
    c = status_conditions(NULL, &one, 1, NULL);
    assert_string_equal(field(cond(c, STATUS_COND_IN_SYNC), "message"),
                        "1 of 1 dataplane runs this config");
    json_decref(c);

    c = status_conditions("spec.x: bad", NULL, 0, NULL);
    assert_string_equal(field(cond(c, STATUS_COND_VALID), "status"), "False");
    assert_string_equal(field(cond(c, STATUS_COND_VALID), "reason"), "Invalid");
    assert_non_null(strstr(field(cond(c, STATUS_COND_VALID), "message"), "spec.x: bad"));
    assert_string_equal(field(cond(c, STATUS_COND_IN_SYNC), "status"), "Unknown");
    json_decref(c);
}

/* 5,000 out-of-sync pods: the message stays within the bound and says how many were left out. */
static void test_message_bound(void **state)
{
    (void)state;
    size_t n = 5000;
    struct status_member *m = xcalloc(n, sizeof *m);
    char **names = xcalloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        names[i] = xasprintf("namespace-%04zu/a-rather-long-pod-name-%04zu", i % 97, i);
        m[i].name = names[i];
        m[i].sync = i % 5 ? POD_SYNC_OUTDATED : POD_SYNC_IN_SYNC;
    }
    json_t *c = status_conditions(NULL, m, n, NULL);
    const char *msg = field(cond(c, STATUS_COND_IN_SYNC), "message");
    assert_true(strlen(msg) <= STATUS_MESSAGE_MAX);
    assert_non_null(strstr(msg, "1000 of 5000 dataplanes run this config; out of sync: "));
    assert_non_null(strstr(msg, " more"));
    /* The listed count plus the "N more" equals the out-of-sync count. */
    size_t listed = 0;
    for (const char *p = msg; (p = strstr(p, " (config changed)")) != NULL; p++)
        listed++;
    const char *more = strstr(msg, "…and ");
    assert_non_null(more);
    assert_int_equal(listed + strtoul(more + strlen("…and "), NULL, 10), 4000);
    json_decref(c);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(m);
}

static void test_merge(void **state)
{
    (void)state;
    json_t *kuma = tu_yaml("- {type: BackendRefsResolved, status: \"True\", reason: Resolved, "
                           "message: All MeshOpenTelemetryBackend references are resolved}\n");
    struct status_member m = {"shop/web-1", POD_SYNC_IN_SYNC};
    json_t *wanted = status_conditions(NULL, &m, 1, NULL);
    bool changed = false;

    /* Kuma's own condition stays first and untouched; ours are appended. */
    json_t *merged = status_merge_conditions(kuma, wanted, false, NULL, -1, &changed);
    assert_true(changed);
    assert_int_equal(json_array_size(merged), 3);
    assert_true(json_equal(json_array_get(merged, 0), json_array_get(kuma, 0)));

    /* Merging the same again changes nothing: no write, no loop with kuma-cp. */
    json_t *again = status_merge_conditions(merged, wanted, false, NULL, -1, &changed);
    assert_false(changed);
    assert_true(json_equal(again, merged));
    json_decref(again);

    /* Our CRD: timestamps; lastTransitionTime only moves when the status moves. */
    json_t *t1 = status_merge_conditions(merged, wanted, true, "2026-01-01T00:00:00Z", 3, &changed);
    assert_true(changed); /* timestamps appear */
    json_t *t2 = status_merge_conditions(t1, wanted, true, "2026-01-02T00:00:00Z", 3, &changed);
    assert_false(changed);
    assert_string_equal(field(cond(t2, STATUS_COND_IN_SYNC), "lastTransitionTime"),
                        "2026-01-01T00:00:00Z");
    struct status_member bad = {"shop/web-1", POD_SYNC_OUTDATED};
    json_t *wanted2 = status_conditions(NULL, &bad, 1, NULL);
    json_t *t3 = status_merge_conditions(t2, wanted2, true, "2026-01-03T00:00:00Z", 4, &changed);
    assert_true(changed);
    assert_string_equal(field(cond(t3, STATUS_COND_IN_SYNC), "lastTransitionTime"),
                        "2026-01-03T00:00:00Z");
    assert_int_equal(json_integer_value(json_object_get(cond(t3, STATUS_COND_IN_SYNC),
                                                        "observedGeneration")),
                     4);
    /* Valid did not change status: its time stays. */
    assert_string_equal(field(cond(t3, STATUS_COND_VALID), "lastTransitionTime"),
                        "2026-01-01T00:00:00Z");

    /* Duplicates of our type collapse into one; no current conditions at all works too. */
    json_t *dup = json_array();
    json_array_append(dup, json_array_get(wanted, 1));
    json_array_append(dup, json_array_get(wanted, 1));
    json_t *d = status_merge_conditions(dup, wanted, false, NULL, -1, &changed);
    assert_true(changed);
    assert_int_equal(json_array_size(d), 2);
    json_t *fresh = status_merge_conditions(NULL, wanted, false, NULL, -1, &changed);
    assert_true(changed);
    assert_true(json_equal(fresh, wanted));

    json_decref(fresh);
    json_decref(d);
    json_decref(dup);
    json_decref(t1);
    json_decref(t2);
    json_decref(t3);
    json_decref(wanted2);
    json_decref(merged);
    json_decref(wanted);
    json_decref(kuma);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pod_sync),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_message_bound),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
