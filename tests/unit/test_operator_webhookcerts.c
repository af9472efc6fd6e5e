/*
 * Unit tests for src/operator/webhookcerts.c (--manage-webhook-certs):
 *  - the pure decisions: Secret data + now + trust -> keep / create / repair /
 *    repair-serving / rotate-serving / rotate-ca / drop-previous-ca, as a table;
 *  - the caBundle: wanted set, PEM set equality, the JSON patch (applied with
 *    core/jsonpatch.c and checked to be idempotent);
 *  - issuing (exact validity, SANs, clamping to the CA) and the Secret builder
 *    (every action ends in "keep");
 *  - the two-file write;
 *  - the manager against an in-process fake API server (tests/k8s/fakeserver.h):
 *    creation, a lost create race (409 AlreadyExists: theirs is kept), a lost
 *    update race (409 Conflict), a webhook configuration changed under our
 *    patch (failed resourceVersion test), repair, a follower, and a whole
 *    staged CA rotation on a fake clock.
 * Certificates are made once per run at fixed fake times (the decisions use
 * the injected time, never the wall clock).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../k8s/fakeserver.h"
#include "core/jsonpatch.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "operator/webhookcerts.h"
#include "tls/tls.h"
#include "util/base64.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/xalloc.h"

#define T0 1700000000LL
#define NS "meshmetric-system"
#define SVC "meshmetric-operator"

/* ---- fixtures ---- */

static struct webhookcerts_config base_cfg(void)
{
    struct webhookcerts_config c;
    webhookcerts_config_init(&c);
    c.namespace = NS;
    c.ca_validity_s = 3000;     /* notBefore T-300, lifetime 3300: rotate-ca due at T+1900 */
    c.serving_validity_s = 900; /* notBefore T-90, lifetime 990: rotate due at T+570 */
    c.propagation_s = 60;
    c.ca_overlap_s = 600;
    return c;
}

struct fixtures {
    struct tls_pem_pair ca_a, ca_b, ca_late, leaf_a, leaf_b, leaf_other_svc, leaf_a_late, leaf_late;
};
static struct fixtures fx;

static void issue_ca(const struct webhookcerts_config *c, int64_t at, struct tls_pem_pair *out)
{
    struct mm_error err;
    if (webhookcerts_issue_ca(c, at, out, &err) != MM_OK)
        fail_msg("issue CA: %s", err.message);
}

static void issue_leaf(const struct webhookcerts_config *c, const struct tls_pem_pair *ca,
                       int64_t at, struct tls_pem_pair *out)
{
    struct mm_error err;
    if (webhookcerts_issue_serving(c, ca, at, out, &err) != MM_OK)
        fail_msg("issue leaf: %s", err.message);
}

static int setup_fixtures(void **state)
{
    (void)state;
    log_setup(LOG_ERROR, LOG_FORMAT_LOGFMT);
    struct webhookcerts_config c = base_cfg(), other = base_cfg();
    other.service_name = "other";
    issue_ca(&c, T0, &fx.ca_a);
    issue_ca(&c, T0, &fx.ca_b);
    issue_ca(&c, T0 + 2000, &fx.ca_late);
    issue_leaf(&c, &fx.ca_a, T0, &fx.leaf_a);
    issue_leaf(&c, &fx.ca_b, T0, &fx.leaf_b);
    issue_leaf(&other, &fx.ca_a, T0, &fx.leaf_other_svc);
    issue_leaf(&c, &fx.ca_a, T0 + 1500, &fx.leaf_a_late);
    issue_leaf(&c, &fx.ca_late, T0 + 2500, &fx.leaf_late);
    return 0;
}

static int teardown_fixtures(void **state)
{
    (void)state;
    struct tls_pem_pair *all[] = {&fx.ca_a,   &fx.ca_b,           &fx.ca_late,     &fx.leaf_a,
                                  &fx.leaf_b, &fx.leaf_other_svc, &fx.leaf_a_late, &fx.leaf_late};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tls_pem_pair_cleanup(all[i]);
    return 0;
}

/* A fixture's PEM by name ("ca_a.crt", "leaf_b.key", "garbage", "not-base64", ...). */
static const char *pem_named(const char *name)
{
    static const struct {
        const char *prefix;
        struct tls_pem_pair *pair;
    } t[] = {{"ca_a.", &fx.ca_a},
             {"ca_b.", &fx.ca_b},
             {"ca_late.", &fx.ca_late},
             {"leaf_a.", &fx.leaf_a},
             {"leaf_b.", &fx.leaf_b},
             {"leaf_other_svc.", &fx.leaf_other_svc},
             {"leaf_a_late.", &fx.leaf_a_late},
             {"leaf_late.", &fx.leaf_late}};
    if (!strcmp(name, "garbage"))
        return "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        size_t n = strlen(t[i].prefix);
        if (!strncmp(name, t[i].prefix, n))
            return !strcmp(name + n, "crt") ? t[i].pair->cert : t[i].pair->key;
    }
    fail_msg("no fixture %s", name);
    return NULL;
}

/*
 * A Secret from "key=fixture" pairs separated by spaces, e.g.
 * "ca.crt=ca_a.crt ca.key=ca_a.key tls.crt=leaf_a.crt tls.key=leaf_a.key".
 * The value "!b64" is a value that is not base64. NULL spec: no Secret.
 */
static json_t *secret_from(const char *spec)
{
    if (!spec)
        return NULL;
    json_t *data = json_object();
    char *copy = xstrdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        assert_non_null(eq);
        *eq = '\0';
        if (!strcmp(eq + 1, "!b64")) {
            json_object_set_new(data, tok, json_string("not base64!"));
            continue;
        }
        const char *pem = pem_named(eq + 1);
        char *b64 = base64_encode(pem, strlen(pem));
        json_object_set_new(data, tok, json_string(b64));
        free(b64);
    }
    free(copy);
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:o}", "apiVersion", "v1", "kind",
                     "Secret", "metadata", "name", WEBHOOKCERTS_DEFAULT_SECRET, "namespace", NS,
                     "resourceVersion", "42", "type", "kubernetes.io/tls", "data", data);
}

#define GOOD_A "ca.crt=ca_a.crt ca.key=ca_a.key tls.crt=leaf_a.crt tls.key=leaf_a.key"

/* ---- the decision table ---- */

struct decide_case {
    const char *name;
    const char *secret;
    int64_t now;
    int64_t trusted_since;
    enum webhookcerts_action want;
    const char *reason; /* substring */
    int64_t next_check; /* -1: not checked */
};

static const struct decide_case decide_cases[] = {
    {"absent", NULL, T0, 0, WEBHOOKCERTS_CREATE, "does not exist", -1},
    {"no data", "", T0, 0, WEBHOOKCERTS_REPAIR, "ca.crt is missing", -1},
    {"ca.crt not base64", "ca.crt=!b64 ca.key=ca_a.key tls.crt=leaf_a.crt tls.key=leaf_a.key", T0,
     0, WEBHOOKCERTS_REPAIR, "ca.crt is not valid base64", -1},
    {"ca.key missing", "ca.crt=ca_a.crt tls.crt=leaf_a.crt tls.key=leaf_a.key", T0, 0,
     WEBHOOKCERTS_REPAIR, "ca.key is missing", -1},
    {"ca.crt garbage", "ca.crt=garbage ca.key=ca_a.key tls.crt=leaf_a.crt tls.key=leaf_a.key", T0,
     0, WEBHOOKCERTS_REPAIR, "no PEM certificate", -1},
    {"ca.key of another CA",
     "ca.crt=ca_a.crt ca.key=ca_b.key tls.crt=leaf_a.crt tls.key=leaf_a.key", T0, 0,
     WEBHOOKCERTS_REPAIR, "does not match", -1},
    {"ca.crt is a leaf",
     "ca.crt=leaf_a.crt ca.key=leaf_a.key tls.crt=leaf_a.crt tls.key=leaf_a.key", T0, 0,
     WEBHOOKCERTS_REPAIR, "not a CA certificate", -1},
    {"CA expired", GOOD_A, T0 + 3001, 0, WEBHOOKCERTS_REPAIR, "expired", -1},
    {"tls.crt missing", "ca.crt=ca_a.crt ca.key=ca_a.key tls.key=leaf_a.key", T0, 0,
     WEBHOOKCERTS_REPAIR_SERVING, "tls.crt is missing", -1},
    {"tls.key missing", "ca.crt=ca_a.crt ca.key=ca_a.key tls.crt=leaf_a.crt", T0, 0,
     WEBHOOKCERTS_REPAIR_SERVING, "tls.key is missing", -1},
    {"tls.key not base64", "ca.crt=ca_a.crt ca.key=ca_a.key tls.crt=leaf_a.crt tls.key=!b64", T0, 0,
     WEBHOOKCERTS_REPAIR_SERVING, "tls.key is not valid base64", -1},
    {"tls.crt garbage", "ca.crt=ca_a.crt ca.key=ca_a.key tls.crt=garbage tls.key=leaf_a.key", T0, 0,
     WEBHOOKCERTS_REPAIR_SERVING, "no PEM certificate", -1},
    {"tls.key mismatch", "ca.crt=ca_a.crt ca.key=ca_a.key tls.crt=leaf_a.crt tls.key=leaf_b.key",
     T0, 0, WEBHOOKCERTS_REPAIR_SERVING, "does not match", -1},
    {"wrong SANs",
     "ca.crt=ca_a.crt ca.key=ca_a.key tls.crt=leaf_other_svc.crt tls.key=leaf_other_svc.key", T0, 0,
     WEBHOOKCERTS_REPAIR_SERVING, "is for [DNS:other DNS:other.meshmetric-system", -1},
    {"signed by another CA",
     "ca.crt=ca_a.crt ca.key=ca_a.key tls.crt=leaf_b.crt tls.key=leaf_b.key", T0, 0,
     WEBHOOKCERTS_REPAIR_SERVING, "not signed by the CA in ca.crt", -1},
    {"serving expired", GOOD_A, T0 + 901, 0, WEBHOOKCERTS_REPAIR_SERVING, "expired", -1},
    {"healthy", GOOD_A, T0, 0, WEBHOOKCERTS_KEEP, "valid", T0 + 570},
    {"healthy, just before the serving rotation", GOOD_A, T0 + 569, 0, WEBHOOKCERTS_KEEP, "valid",
     T0 + 570},
    {"serving rotation due", GOOD_A, T0 + 570, 0, WEBHOOKCERTS_ROTATE_SERVING,
     "less than 1/3 of the serving", -1},
    {"healthy, just before the CA rotation",
     "ca.crt=ca_a.crt ca.key=ca_a.key tls.crt=leaf_a_late.crt tls.key=leaf_a_late.key", T0 + 1899,
     0, WEBHOOKCERTS_KEEP, "valid", T0 + 1900},
    {"CA rotation due",
     "ca.crt=ca_a.crt ca.key=ca_a.key tls.crt=leaf_a_late.crt tls.key=leaf_a_late.key", T0 + 1900,
     0, WEBHOOKCERTS_ROTATE_CA, "less than 1/3 of the CA", -1},
    {"CA rotation: trust unknown",
     "ca.crt=ca_b.crt ca.key=ca_b.key ca-previous.crt=ca_a.crt tls.crt=leaf_a.crt "
     "tls.key=leaf_a.key",
     T0 + 100, 0, WEBHOOKCERTS_KEEP, "waiting", 0},
    {"CA rotation: trusted, not long enough",
     "ca.crt=ca_b.crt ca.key=ca_b.key ca-previous.crt=ca_a.crt tls.crt=leaf_a.crt "
     "tls.key=leaf_a.key",
     T0 + 69, T0 + 10, WEBHOOKCERTS_KEEP, "waiting", T0 + 70},
    {"CA rotation: switch",
     "ca.crt=ca_b.crt ca.key=ca_b.key ca-previous.crt=ca_a.crt tls.crt=leaf_a.crt "
     "tls.key=leaf_a.key",
     T0 + 70, T0 + 10, WEBHOOKCERTS_ROTATE_SERVING, "moving the serving certificate", -1},
    {"CA rotation: leaf signed by neither",
     "ca.crt=ca_b.crt ca.key=ca_b.key tls.crt=leaf_a.crt tls.key=leaf_a.key", T0 + 70, T0 + 10,
     WEBHOOKCERTS_REPAIR_SERVING, "not signed", -1},
    {"overlap running",
     "ca.crt=ca_b.crt ca.key=ca_b.key ca-previous.crt=ca_a.crt tls.crt=leaf_b.crt "
     "tls.key=leaf_b.key",
     T0 + 100, 0, WEBHOOKCERTS_KEEP, "valid", T0 - 90 + 600},
    {"overlap over",
     "ca.crt=ca_b.crt ca.key=ca_b.key ca-previous.crt=ca_a.crt tls.crt=leaf_b.crt "
     "tls.key=leaf_b.key",
     T0 - 90 + 600, 0, WEBHOOKCERTS_DROP_PREVIOUS_CA, "overlap", -1},
    {"previous CA garbage",
     "ca.crt=ca_b.crt ca.key=ca_b.key ca-previous.crt=garbage tls.crt=leaf_b.crt "
     "tls.key=leaf_b.key",
     T0, 0, WEBHOOKCERTS_DROP_PREVIOUS_CA, "ca-previous.crt is not a usable", -1},
    {"previous CA not base64",
     "ca.crt=ca_b.crt ca.key=ca_b.key ca-previous.crt=!b64 tls.crt=leaf_b.crt tls.key=leaf_b.key",
     T0, 0, WEBHOOKCERTS_DROP_PREVIOUS_CA, "ca-previous.crt", -1},
    {"previous CA expired",
     "ca.crt=ca_late.crt ca.key=ca_late.key ca-previous.crt=ca_a.crt tls.crt=leaf_late.crt "
     "tls.key=leaf_late.key",
     T0 + 3000, 0, WEBHOOKCERTS_DROP_PREVIOUS_CA, "previous CA expired", -1},
};

static void test_decide_table(void **state)
{
    (void)state;
    struct webhookcerts_config cfg = base_cfg();
    for (size_t i = 0; i < sizeof decide_cases / sizeof *decide_cases; i++) {
        const struct decide_case *c = &decide_cases[i];
        json_t *secret = c->secret ? secret_from(c->secret) : NULL;
        struct webhookcerts_decision d;
        webhookcerts_decide(&cfg, secret, c->now, c->trusted_since, &d);
        if (d.action != c->want || !strstr(d.reason, c->reason) ||
            (c->next_check >= 0 && d.next_check != c->next_check))
            fail_msg("case \"%s\": got %s (%s) next %lld; want %s (\"%s\") next %lld", c->name,
                     webhookcerts_action_name(d.action), d.reason, (long long)d.next_check,
                     webhookcerts_action_name(c->want), c->reason, (long long)c->next_check);
        json_decref(secret);
    }
}

/* ---- issuing and building ---- */

static void test_issue_validity_and_names(void **state)
{
    (void)state;
    struct webhookcerts_config cfg = base_cfg();
    struct tls_cert_info info;
    struct mm_error err;
    assert_int_equal(tls_cert_info_read(fx.ca_a.cert, strlen(fx.ca_a.cert), &info, &err), MM_OK);
    assert_true(info.is_ca);
    assert_int_equal(info.not_before, T0 - 300);
    assert_int_equal(info.not_after, T0 + 3000);
    assert_string_equal(info.key_type, "EC P-256");
    tls_cert_info_cleanup(&info);

    assert_int_equal(tls_cert_info_read(fx.leaf_a.cert, strlen(fx.leaf_a.cert), &info, &err),
                     MM_OK);
    assert_false(info.is_ca);
    assert_int_equal(info.not_before, T0 - 90);
    assert_int_equal(info.not_after, T0 + 900);
    assert_string_equal(info.key_type, "EC P-256");
    assert_int_equal(info.n_sans, 4);
    assert_string_equal(info.sans[0], "DNS:" SVC);
    assert_string_equal(info.sans[1], "DNS:" SVC "." NS);
    assert_string_equal(info.sans[2], "DNS:" SVC "." NS ".svc");
    assert_string_equal(info.sans[3], "DNS:" SVC "." NS ".svc.cluster.local");
    tls_cert_info_cleanup(&info);
    /* the API server's check: the CA verifies the leaf for <svc>.<ns>.svc (wall clock: skip
       unless the fake times are valid now, which they are not; the signature is checked below) */

    /* clamped to the CA's notAfter */
    struct tls_pem_pair leaf;
    issue_leaf(&cfg, &fx.ca_a, T0 + 2500, &leaf);
    assert_int_equal(tls_cert_info_read(leaf.cert, strlen(leaf.cert), &info, &err), MM_OK);
    assert_int_equal(info.not_after, T0 + 3000);
    tls_cert_info_cleanup(&info);
    tls_pem_pair_cleanup(&leaf);

    /* a CA past its notAfter signs nothing */
    assert_int_not_equal(webhookcerts_issue_serving(&cfg, &fx.ca_a, T0 + 3000, &leaf, &err), MM_OK);
    assert_non_null(strstr(err.message, "expired"));

    /* every CA gets its own name */
    assert_int_equal(tls_cert_info_read(fx.ca_late.cert, strlen(fx.ca_late.cert), &info, &err),
                     MM_OK);
    tls_cert_info_cleanup(&info);

    /* real time: a freshly issued pair verifies for the Service name with OpenSSL's verifier */
    struct tls_pem_pair ca, l;
    int64_t now = (int64_t)time(NULL);
    issue_ca(&cfg, now, &ca);
    issue_leaf(&cfg, &ca, now, &l);
    assert_int_equal(tls_verify(ca.cert, l.cert, SVC "." NS ".svc", &err), MM_OK);
    assert_int_not_equal(tls_verify(fx.ca_b.cert, l.cert, NULL, &err), MM_OK);
    tls_pem_pair_cleanup(&ca);
    tls_pem_pair_cleanup(&l);
}

static char *secret_value(const json_t *secret, const char *key)
{
    const json_t *v = json_object_get(json_object_get(secret, "data"), key);
    if (!json_is_string(v))
        return NULL;
    size_t n;
    return (char *)base64_decode(json_string_value(v), json_string_length(v), &n);
}

static json_t *build(const struct webhookcerts_config *cfg, const json_t *secret,
                     enum webhookcerts_action a, int64_t now)
{
    json_t *out = NULL;
    struct mm_error err;
    if (webhookcerts_secret_build(cfg, secret, a, now, &out, &err) != MM_OK)
        fail_msg("build %s: %s", webhookcerts_action_name(a), err.message);
    return out;
}

static enum webhookcerts_action decide(const struct webhookcerts_config *cfg, const json_t *secret,
                                       int64_t now, int64_t trusted)
{
    struct webhookcerts_decision d;
    webhookcerts_decide(cfg, secret, now, trusted, &d);
    return d.action;
}

static void test_build_every_action(void **state)
{
    (void)state;
    struct webhookcerts_config cfg = base_cfg();
    struct mm_error err;
    json_t *out = NULL;

    /* create: a complete kubernetes.io/tls Secret that needs nothing */
    json_t *created = build(&cfg, NULL, WEBHOOKCERTS_CREATE, T0);
    assert_string_equal(json_string_value(json_object_get(created, "type")), "kubernetes.io/tls");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(created, "metadata"), "name")),
        WEBHOOKCERTS_DEFAULT_SECRET);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(created, "metadata"), "namespace")), NS);
    assert_int_equal(json_object_size(json_object_get(created, "data")), 4);
    assert_int_equal(decide(&cfg, created, T0, 0), WEBHOOKCERTS_KEEP);

    /* repair: keeps the metadata (resourceVersion: a conditional update) */
    json_t *broken = secret_from("ca.crt=garbage ca.key=ca_a.key tls.crt=leaf_a.crt");
    json_object_set_new(json_object_get(broken, "data"), "junk", json_string("eA=="));
    json_t *repaired = build(&cfg, broken, WEBHOOKCERTS_REPAIR, T0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(repaired, "metadata"),
                                                          "resourceVersion")),
                        "42");
    assert_null(json_object_get(json_object_get(repaired, "data"), "junk"));
    assert_int_equal(decide(&cfg, repaired, T0, 0), WEBHOOKCERTS_KEEP);

    /* repair-serving and rotate-serving: new leaf, same CA */
    json_t *good = secret_from(GOOD_A);
    json_t *rot = build(&cfg, good, WEBHOOKCERTS_ROTATE_SERVING, T0 + 570);
    char *ca1 = secret_value(good, "ca.crt"), *ca2 = secret_value(rot, "ca.crt");
    char *l1 = secret_value(good, "tls.crt"), *l2 = secret_value(rot, "tls.crt");
    assert_string_equal(ca1, ca2);
    assert_string_not_equal(l1, l2);
    assert_int_equal(decide(&cfg, rot, T0 + 570, 0), WEBHOOKCERTS_KEEP);
    free(ca1);
    free(ca2);
    free(l1);
    free(l2);

    /* rotate-ca: new CA, old one kept as ca-previous.crt, leaf unchanged; then the staged switch */
    json_t *late = secret_from("ca.crt=ca_a.crt ca.key=ca_a.key tls.crt=leaf_a_late.crt "
                               "tls.key=leaf_a_late.key");
    int64_t t = T0 + 1900;
    json_t *staged = build(&cfg, late, WEBHOOKCERTS_ROTATE_CA, t);
    char *prev = secret_value(staged, "ca-previous.crt"), *newca = secret_value(staged, "ca.crt");
    char *leaf_before = secret_value(late, "tls.crt"),
         *leaf_after = secret_value(staged, "tls.crt");
    assert_string_equal(prev, fx.ca_a.cert);
    assert_string_not_equal(newca, fx.ca_a.cert);
    assert_string_equal(leaf_before, leaf_after);
    assert_int_equal(decide(&cfg, staged, t, 0), WEBHOOKCERTS_KEEP);
    assert_int_equal(decide(&cfg, staged, t + 5, t), WEBHOOKCERTS_KEEP);
    assert_int_equal(decide(&cfg, staged, t + 60, t), WEBHOOKCERTS_ROTATE_SERVING);

    /* the wanted bundle during the rotation: both CAs */
    char *bundle = webhookcerts_wanted_bundle(staged, t);
    char *both = xasprintf("%s%s", fx.ca_a.cert, newca);
    assert_true(webhookcerts_pem_set_equal(bundle, strlen(bundle), both, strlen(both)));
    free(bundle);

    json_t *switched = build(&cfg, staged, WEBHOOKCERTS_ROTATE_SERVING, t + 60);
    char *prev2 = secret_value(switched, "ca-previous.crt");
    assert_string_equal(prev2, fx.ca_a.cert);
    assert_int_equal(decide(&cfg, switched, t + 60, t), WEBHOOKCERTS_KEEP);
    /* the overlap (600 s) counts from the new leaf's notBefore (t + 60 - 90) */
    assert_int_equal(decide(&cfg, switched, t + 60 - 90 + 599, 0), WEBHOOKCERTS_KEEP);
    assert_int_equal(decide(&cfg, switched, t + 60 - 90 + 600, 0), WEBHOOKCERTS_DROP_PREVIOUS_CA);

    json_t *dropped = build(&cfg, switched, WEBHOOKCERTS_DROP_PREVIOUS_CA, t + 600);
    assert_null(json_object_get(json_object_get(dropped, "data"), "ca-previous.crt"));
    assert_int_equal(decide(&cfg, dropped, t + 600, 0), WEBHOOKCERTS_KEEP);
    bundle = webhookcerts_wanted_bundle(dropped, t + 600);
    assert_true(webhookcerts_pem_set_equal(bundle, strlen(bundle), newca, strlen(newca)));
    free(bundle);

    /* keep is not an action; a serving rotation needs a CA */
    assert_int_equal(webhookcerts_secret_build(&cfg, good, WEBHOOKCERTS_KEEP, T0, &out, &err),
                     MM_ERR_INVALID);
    assert_null(out);
    json_t *noca = secret_from("tls.crt=leaf_a.crt tls.key=leaf_a.key");
    assert_int_equal(
        webhookcerts_secret_build(&cfg, noca, WEBHOOKCERTS_ROTATE_SERVING, T0, &out, &err),
        MM_ERR_INVALID);

    free(prev);
    free(prev2);
    free(newca);
    free(both);
    free(leaf_before);
    free(leaf_after);
    json_decref(created);
    json_decref(broken);
    json_decref(repaired);
    json_decref(good);
    json_decref(rot);
    json_decref(late);
    json_decref(staged);
    json_decref(switched);
    json_decref(dropped);
    json_decref(noca);
}

static void test_config_validate(void **state)
{
    (void)state;
    static const struct {
        const char *field;
        const char *value;
        int64_t serving;
        const char *want; /* NULL: valid */
    } cases[] = {
        {NULL, NULL, 0, NULL},
        {"namespace", "", 0, "namespace"},
        {"namespace", "Bad_NS", 0, "namespace"},
        {"service", "-svc", 0, "service"},
        {"service", "a.b", 0, "service"},
        {"secret", "my.secret-1", 0, NULL},
        {"secret", "", 0, "secret"},
        {"mutating", "", 0, NULL},
        {"mutating", "UPPER", 0, "mutating"},
        {"key", "/tmp/x/tls.crt", 0, "key-path"},
        {NULL, NULL, 10, "serving-validity"},
        {NULL, NULL, 4000, "serving-validity"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct webhookcerts_config c = base_cfg();
        c.cert_path = "/tmp/x/tls.crt";
        c.key_path = "/tmp/x/tls.key";
        const char *f = cases[i].field;
        if (f && !strcmp(f, "namespace"))
            c.namespace = cases[i].value;
        if (f && !strcmp(f, "service"))
            c.service_name = cases[i].value;
        if (f && !strcmp(f, "secret"))
            c.secret_name = cases[i].value;
        if (f && !strcmp(f, "mutating"))
            c.mutating_name = cases[i].value;
        if (f && !strcmp(f, "key"))
            c.key_path = cases[i].value;
        if (cases[i].serving)
            c.serving_validity_s = cases[i].serving;
        struct mm_error err;
        mm_error_clear(&err);
        enum mm_status st = webhookcerts_config_validate(&c, &err);
        if (!cases[i].want)
            assert_int_equal(st, MM_OK);
        else if (st != MM_ERR_INVALID || !strstr(err.field, cases[i].want))
            fail_msg("case %zu: got %d field %s (%s), want field %s", i, st, err.field, err.message,
                     cases[i].want);
    }
}

/* ---- caBundles ---- */

/* pem with its base64 body re-wrapped at width columns and line ends eol. */
static char *rewrap(const char *pem, int width, const char *eol)
{
    const char *b = strstr(pem, "-----\n") + 6, *e = strstr(pem, "-----END");
    char *body = xmalloc((size_t)(e - b) + 1);
    size_t n = 0;
    for (const char *p = b; p < e; p++)
        if (*p != '\n')
            body[n++] = *p;
    body[n] = '\0';
    struct strbuf out;
    strbuf_init(&out, 1 << 20);
    assert_true(strbuf_printf(&out, "-----BEGIN CERTIFICATE-----%s", eol));
    for (size_t i = 0; i < n; i += (size_t)width)
        assert_true(strbuf_printf(&out, "%.*s%s", width, body + i, eol));
    assert_true(strbuf_printf(&out, "-----END CERTIFICATE-----%s", eol));
    free(body);
    return strbuf_steal(&out);
}

static void test_pem_set_equal(void **state)
{
    (void)state;
    char *a = fx.ca_a.cert, *b = fx.ca_b.cert;
    char *ab = xasprintf("%s%s", a, b), *ba = xasprintf("%s%s", b, a);
    char *aab = xasprintf("%s%s%s", a, a, b);
    char *a_wrapped = rewrap(a, 76, "\r\n"), *a_long = rewrap(a, 1000, "\n");
    char *a_text = xasprintf("subject=CN=x\n%s\ntrailing words\n", a);
    char *a_key = xasprintf("%s%s", a, fx.ca_a.key);
    char *a_bad =
        xasprintf("%s%s", a, "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
    char *a_open = xasprintf("%s%s", a, "-----BEGIN CERTIFICATE-----\nAAAA\n");
    static const struct {
        int x, y;
        bool eq;
    } cases[] = {
        {0, 0, true},   /* a = a */
        {0, 1, false},  /* a != b */
        {2, 3, true},   /* ab = ba */
        {2, 4, true},   /* duplicates do not count */
        {0, 2, false},  /* a subset is not the set */
        {0, 5, true},   /* CRLF and 76 columns */
        {0, 6, true},   /* one long line */
        {0, 7, true},   /* text around the blocks */
        {0, 8, false},  /* a key block */
        {0, 9, false},  /* a block that is not base64 */
        {0, 10, false}, /* an unterminated block */
        {11, 11, true}, /* nothing = nothing */
        {0, 11, false},
    };
    const char *v[] = {a, b, ab, ba, aab, a_wrapped, a_long, a_text, a_key, a_bad, a_open, ""};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *x = v[cases[i].x], *y = v[cases[i].y];
        if (webhookcerts_pem_set_equal(x, strlen(x), y, strlen(y)) != cases[i].eq ||
            webhookcerts_pem_set_equal(y, strlen(y), x, strlen(x)) != cases[i].eq)
            fail_msg("case %zu (%d vs %d): want %s", i, cases[i].x, cases[i].y,
                     cases[i].eq ? "equal" : "different");
    }
    free(ab);
    free(ba);
    free(aab);
    free(a_wrapped);
    free(a_long);
    free(a_text);
    free(a_key);
    free(a_bad);
    free(a_open);
}

static void test_wanted_bundle(void **state)
{
    (void)state;
    json_t *s = secret_from(GOOD_A);
    char *w = webhookcerts_wanted_bundle(s, T0);
    assert_string_equal(w, fx.ca_a.cert);
    free(w);
    json_decref(s);

    s = secret_from("ca.crt=ca_b.crt ca.key=ca_b.key ca-previous.crt=ca_a.crt");
    w = webhookcerts_wanted_bundle(s, T0);
    char *both = xasprintf("%s%s", fx.ca_b.cert, fx.ca_a.cert);
    assert_string_equal(w, both);
    free(w);
    free(both);
    /* an expired previous CA is not trusted any more */
    w = webhookcerts_wanted_bundle(s, T0 + 3000);
    assert_string_equal(w, fx.ca_b.cert);
    free(w);
    json_decref(s);

    s = secret_from("ca.crt=garbage");
    assert_null(webhookcerts_wanted_bundle(s, T0));
    json_decref(s);
    assert_null(webhookcerts_wanted_bundle(NULL, T0));
}

static json_t *hook(const char *svc_ns, const char *svc, const char *url, const char *bundle_pem,
                    const char *raw_bundle)
{
    json_t *cc = json_object();
    if (svc)
        json_object_set_new(cc, "service",
                            json_pack("{s:s, s:s, s:s, s:i}", "namespace", svc_ns, "name", svc,
                                      "path", "/mutate", "port", 443));
    if (url)
        json_object_set_new(cc, "url", json_string(url));
    if (bundle_pem) {
        char *b = base64_encode(bundle_pem, strlen(bundle_pem));
        json_object_set_new(cc, "caBundle", json_string(b));
        free(b);
    }
    if (raw_bundle)
        json_object_set_new(cc, "caBundle", json_string(raw_bundle));
    return json_pack("{s:s, s:o, s:[s]}", "name", "x.meshmetric.kuma.io", "clientConfig", cc,
                     "admissionReviewVersions", "v1");
}

static json_t *whc(json_t *hooks)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion",
                     "admissionregistration.k8s.io/v1", "kind", "MutatingWebhookConfiguration",
                     "metadata", "name", "meshmetric-operator", "resourceVersion", "7", "webhooks",
                     hooks);
}

static void test_bundle_patch(void **state)
{
    (void)state;
    char *ab = xasprintf("%s%s", fx.ca_a.cert, fx.ca_b.cert);
    char *ba = xasprintf("%s%s", fx.ca_b.cert, fx.ca_a.cert);
    char *a76 = rewrap(fx.ca_a.cert, 76, "\n");
    char *a_b64 = base64_encode(fx.ca_a.cert, strlen(fx.ca_a.cert));
    /* Go tolerates line breaks in a []byte field: the same bundle wrapped */
    struct strbuf wrapped;
    strbuf_init(&wrapped, 1 << 20);
    for (size_t i = 0; i < strlen(a_b64); i += 60)
        assert_true(strbuf_printf(&wrapped, "%.60s\n", a_b64 + i));
    char *a_b64_wrapped = strbuf_steal(&wrapped);

    struct {
        const char *name;
        json_t *doc;
        const char *wanted;
        size_t matched;
        const char *paths; /* the patched paths, comma-separated; NULL: no patch */
    } cases[] = {
        {"stale non-empty bundle", whc(json_pack("[o]", hook(NS, SVC, NULL, fx.ca_b.cert, NULL))),
         fx.ca_a.cert, 1, "/webhooks/0/clientConfig/caBundle"},
        {"no bundle", whc(json_pack("[o]", hook(NS, SVC, NULL, NULL, NULL))), fx.ca_a.cert, 1,
         "/webhooks/0/clientConfig/caBundle"},
        {"empty bundle", whc(json_pack("[o]", hook(NS, SVC, NULL, NULL, ""))), fx.ca_a.cert, 1,
         "/webhooks/0/clientConfig/caBundle"},
        {"CA_BUNDLE placeholder", whc(json_pack("[o]", hook(NS, SVC, NULL, NULL, "CA_BUNDLE"))),
         fx.ca_a.cert, 1, "/webhooks/0/clientConfig/caBundle"},
        {"not base64", whc(json_pack("[o]", hook(NS, SVC, NULL, NULL, "%%%"))), fx.ca_a.cert, 1,
         "/webhooks/0/clientConfig/caBundle"},
        {"already right", whc(json_pack("[o]", hook(NS, SVC, NULL, fx.ca_a.cert, NULL))),
         fx.ca_a.cert, 1, NULL},
        {"right, other wrapping", whc(json_pack("[o]", hook(NS, SVC, NULL, a76, NULL))),
         fx.ca_a.cert, 1, NULL},
        {"right, base64 with line breaks",
         whc(json_pack("[o]", hook(NS, SVC, NULL, NULL, a_b64_wrapped))), fx.ca_a.cert, 1, NULL},
        {"right, other order", whc(json_pack("[o]", hook(NS, SVC, NULL, ba, NULL))), ab, 1, NULL},
        {"one CA missing of two", whc(json_pack("[o]", hook(NS, SVC, NULL, fx.ca_a.cert, NULL))),
         ab, 1, "/webhooks/0/clientConfig/caBundle"},
        {"one CA too many", whc(json_pack("[o]", hook(NS, SVC, NULL, ab, NULL))), fx.ca_a.cert, 1,
         "/webhooks/0/clientConfig/caBundle"},
        {"only our webhooks",
         whc(json_pack("[o,o,o,o]", hook(NS, "someone-else", NULL, fx.ca_b.cert, NULL),
                       hook(NS, SVC, NULL, fx.ca_b.cert, NULL),
                       hook("other-ns", SVC, NULL, fx.ca_b.cert, NULL),
                       hook(NULL, NULL, "https://x.example.com/mutate", fx.ca_b.cert, NULL))),
         fx.ca_a.cert, 1, "/webhooks/1/clientConfig/caBundle"},
        {"two of ours, one stale",
         whc(json_pack("[o,o]", hook(NS, SVC, NULL, fx.ca_a.cert, NULL),
                       hook(NS, SVC, NULL, fx.ca_b.cert, NULL))),
         fx.ca_a.cert, 2, "/webhooks/1/clientConfig/caBundle"},
        {"two of ours, both stale",
         whc(json_pack("[o,o]", hook(NS, SVC, NULL, NULL, NULL),
                       hook(NS, SVC, NULL, fx.ca_b.cert, NULL))),
         fx.ca_a.cert, 2, "/webhooks/0/clientConfig/caBundle,/webhooks/1/clientConfig/caBundle"},
        {"no webhooks", whc(json_array()), fx.ca_a.cert, 0, NULL},
        {"url webhook only",
         whc(json_pack("[o]", hook(NULL, NULL, "https://x.example.com/m", NULL, NULL))),
         fx.ca_a.cert, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t matched = 99;
        json_t *patch = webhookcerts_bundle_patch(cases[i].doc, NS, SVC, cases[i].wanted, &matched);
        if (matched != cases[i].matched)
            fail_msg("%s: matched %zu, want %zu", cases[i].name, matched, cases[i].matched);
        if (!cases[i].paths) {
            if (patch)
                fail_msg("%s: unexpected patch %s", cases[i].name, json_dumps(patch, 0));
            json_decref(cases[i].doc);
            continue;
        }
        if (!patch)
            fail_msg("%s: no patch", cases[i].name);
        /* the first op guards the resourceVersion read */
        json_t *t = json_array_get(patch, 0);
        assert_string_equal(json_string_value(json_object_get(t, "op")), "test");
        assert_string_equal(json_string_value(json_object_get(t, "path")),
                            "/metadata/resourceVersion");
        assert_string_equal(json_string_value(json_object_get(t, "value")), "7");
        char got[512] = "";
        size_t off = 0;
        for (size_t k = 1; k < json_array_size(patch); k++) {
            json_t *op = json_array_get(patch, k);
            assert_string_equal(json_string_value(json_object_get(op, "op")), "add");
            off += (size_t)snprintf(got + off, sizeof got - off, "%s%s", k > 1 ? "," : "",
                                    json_string_value(json_object_get(op, "path")));
        }
        if (strcmp(got, cases[i].paths))
            fail_msg("%s: patched [%s], want [%s]", cases[i].name, got, cases[i].paths);
        /* applied (RFC 6902, as strict as the API server), it converges: no second patch */
        json_t *doc = json_deep_copy(cases[i].doc);
        struct mm_error err;
        if (jsonpatch_apply(&doc, patch, &err) != MM_OK)
            fail_msg("%s: the patch does not apply: %s", cases[i].name, err.message);
        json_t *again = webhookcerts_bundle_patch(doc, NS, SVC, cases[i].wanted, NULL);
        if (again)
            fail_msg("%s: not idempotent", cases[i].name);
        /* other webhooks untouched */
        json_t *h;
        size_t k;
        json_array_foreach(json_object_get(doc, "webhooks"), k, h)
        {
            const char *svc = json_string_value(json_object_get(
                json_object_get(json_object_get(h, "clientConfig"), "service"), "name"));
            const char *sns = json_string_value(json_object_get(
                json_object_get(json_object_get(h, "clientConfig"), "service"), "namespace"));
            if (!svc || strcmp(svc, SVC) || strcmp(sns, NS))
                assert_true(
                    json_equal(h, json_array_get(json_object_get(cases[i].doc, "webhooks"), k)));
        }
        json_decref(doc);
        json_decref(patch);
        json_decref(cases[i].doc);
    }
    free(ab);
    free(ba);
    free(a76);
    free(a_b64);
    free(a_b64_wrapped);
}

/* ---- files ---- */

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/mm-webhookcerts-unit.XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return xstrdup(d);
}

static void rmtree(const char *dir)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        print_error("could not remove %s\n", dir);
    free(cmd);
}

static char *slurp(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    struct mm_error err;
    if (fileio_read(path, 1 << 20, &data, &len, &err) != MM_OK)
        return NULL;
    return data;
}

static void test_write_pair(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char *crt = xasprintf("%s/a/b/tls.crt", dir), *key = xasprintf("%s/a/b/tls.key", dir);
    struct mm_error err;
    assert_int_equal(webhookcerts_write_pair(crt, "CERT1", 5, key, "KEY1", 4, &err), MM_OK);
    char *c = slurp(crt), *k = slurp(key);
    assert_string_equal(c, "CERT1");
    assert_string_equal(k, "KEY1");
    free(c);
    free(k);
    struct stat st;
    assert_int_equal(stat(crt, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    ino_t ino = st.st_ino;
    /* replaced by rename (a new inode), no temporary file left behind */
    assert_int_equal(webhookcerts_write_pair(crt, "CERT2", 5, key, "KEY2", 4, &err), MM_OK);
    assert_int_equal(stat(key, &st), 0);
    assert_true(st.st_ino != ino);
    c = slurp(crt);
    assert_string_equal(c, "CERT2");
    free(c);
    char *cmd = xasprintf("test $(ls -A '%s/a/b' | wc -l) -eq 2", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    /* a parent that is a file */
    char *bad = xasprintf("%s/a/b/tls.crt/x.crt", dir);
    assert_int_equal(webhookcerts_write_pair(bad, "C", 1, key, "K", 1, &err), MM_ERR_IO);
    free(bad);
    rmtree(dir);
    free(dir);
    free(crt);
    free(key);
}

/* ---- the manager against a fake API server ---- */

struct fake_api {
    pthread_mutex_t lock;
    json_t *secret; /* NULL: absent */
    json_t *whc[2]; /* mutating, validating; NULL: absent */
    long rv;
    char *bodies[1024];
    int nbodies;
    /* injections, each fires once */
    json_t *race_create; /* POST secrets: store this first, answer 409 AlreadyExists */
    json_t *race_update; /* PUT secrets: store this first, answer 409 Conflict */
    bool race_patch[2];  /* PATCH: bump the configuration's resourceVersion first */
    int writes;          /* POST/PUT/PATCH answered 2xx */
};

static const char *keep_body(struct fake_api *f, char *s)
{
    assert_true(f->nbodies < 1024);
    f->bodies[f->nbodies++] = s;
    return s;
}

static void bump(struct fake_api *f, json_t *obj)
{
    char rv[32];
    snprintf(rv, sizeof rv, "%ld", ++f->rv);
    json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string(rv));
}

static void answer(struct fake_api *f, struct fs_response *r, int code, const json_t *obj)
{
    r->code = code;
    snprintf(r->headers, sizeof r->headers, "Content-Type: application/json\r\n");
    r->body = keep_body(f, json_dumps(obj, JSON_COMPACT));
}

static void status(struct fake_api *f, struct fs_response *r, int code, const char *reason,
                   const char *msg)
{
    json_t *s =
        json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status", "apiVersion", "v1",
                  "metadata", "status", "Failure", "message", msg, "reason", reason, "code", code);
    answer(f, r, code, s);
    json_decref(s);
}

#define SECRETS_PATH "/api/v1/namespaces/" NS "/secrets"
#define SECRET_PATH SECRETS_PATH "/" WEBHOOKCERTS_DEFAULT_SECRET
#define WHC_PATH(kind) "/apis/admissionregistration.k8s.io/v1/" kind "/meshmetric-operator"

static void fake_handler(void *ctx, const struct fs_request *req, struct fs_response *r)
{
    struct fake_api *f = ctx;
    json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    pthread_mutex_lock(&f->lock);
    char path[2048];
    snprintf(path, sizeof path, "%s", req->path);
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    int which = !strcmp(path, WHC_PATH("mutatingwebhookconfigurations"))     ? 0
                : !strcmp(path, WHC_PATH("validatingwebhookconfigurations")) ? 1
                                                                             : -1;
    if (!strcmp(req->method, "GET") && !strcmp(path, SECRET_PATH)) {
        if (f->secret)
            answer(f, r, 200, f->secret);
        else
            status(f, r, 404, "NotFound", "secrets \"x\" not found");
    } else if (!strcmp(req->method, "GET") && !strcmp(path, SECRETS_PATH)) {
        /* a list (the reflector): not used by reconcile */
        json_t *l = json_pack("{s:s, s:{s:s}, s:[]}", "kind", "SecretList", "metadata",
                              "resourceVersion", "1", "items");
        answer(f, r, 200, l);
        json_decref(l);
    } else if (!strcmp(req->method, "POST") && !strcmp(path, SECRETS_PATH)) {
        if (f->race_create) {
            f->secret = f->race_create;
            f->race_create = NULL;
            bump(f, f->secret);
        }
        if (f->secret) {
            status(f, r, 409, "AlreadyExists", "secrets \"x\" already exists");
        } else {
            f->secret = json_deep_copy(body);
            bump(f, f->secret);
            f->writes++;
            answer(f, r, 201, f->secret);
        }
    } else if (!strcmp(req->method, "PUT") && !strcmp(path, SECRET_PATH)) {
        if (f->race_update) {
            json_decref(f->secret);
            f->secret = f->race_update;
            f->race_update = NULL;
            bump(f, f->secret);
        }
        const char *sent = json_string_value(
            json_object_get(json_object_get(body, "metadata"), "resourceVersion"));
        const char *have =
            f->secret ? json_string_value(json_object_get(json_object_get(f->secret, "metadata"),
                                                          "resourceVersion"))
                      : NULL;
        if (!f->secret) {
            status(f, r, 404, "NotFound", "not found");
        } else if (!sent || strcmp(sent, have)) {
            status(f, r, 409, "Conflict", "the object has been modified");
        } else {
            json_decref(f->secret);
            f->secret = json_deep_copy(body);
            bump(f, f->secret);
            f->writes++;
            answer(f, r, 200, f->secret);
        }
    } else if (which >= 0 && !strcmp(req->method, "GET")) {
        if (f->whc[which])
            answer(f, r, 200, f->whc[which]);
        else
            status(f, r, 404, "NotFound", "not found");
    } else if (which >= 0 && !strcmp(req->method, "PATCH")) {
        assert_string_equal(req->content_type, "application/json-patch+json");
        if (f->race_patch[which]) {
            f->race_patch[which] = false;
            bump(f, f->whc[which]);
        }
        json_t *doc = json_deep_copy(f->whc[which]);
        struct mm_error err;
        if (!doc) {
            status(f, r, 404, "NotFound", "not found");
        } else if (jsonpatch_apply(&doc, body, &err) != MM_OK) {
            json_decref(doc);
            status(f, r, 422, "Invalid",
                   "the server rejected our request due to an error in our "
                   "request");
        } else {
            json_decref(f->whc[which]);
            f->whc[which] = doc;
            bump(f, doc);
            f->writes++;
            answer(f, r, 200, doc);
        }
    } else {
        status(f, r, 404, "NotFound", "the server could not find the requested resource");
    }
    pthread_mutex_unlock(&f->lock);
    json_decref(body);
}

struct harness {
    struct fake_api api;
    struct fakeserver *srv;
    struct k8s_client *client;
    char *dir, *crt, *key;
    int64_t now;
    bool leader;
};

static int64_t fake_now(void *ctx)
{
    return ((struct harness *)ctx)->now;
}

static bool fake_leader(void *ctx)
{
    return ((struct harness *)ctx)->leader;
}

static json_t *stale_whc(const char *kind)
{
    json_t *w = whc(json_pack("[o]", hook(NS, SVC, NULL, fx.ca_b.cert, NULL)));
    json_object_set_new(w, "kind", json_string(kind));
    return w;
}

static struct harness *harness_start(void)
{
    struct harness *h = xcalloc(1, sizeof *h);
    pthread_mutex_init(&h->api.lock, NULL);
    h->api.rv = 100;
    h->api.whc[0] = stale_whc("MutatingWebhookConfiguration");
    h->api.whc[1] = stale_whc("ValidatingWebhookConfiguration");
    h->srv = fs_start(fake_handler, &h->api);
    struct k8s_config kc;
    k8s_config_init(&kc);
    kc.server = xasprintf("http://127.0.0.1:%d", h->srv->port);
    kc.namespace = xstrdup(NS);
    kc.token = xstrdup("t");
    kc.source = xstrdup("test");
    struct k8s_error kerr = K8S_ERROR_INIT;
    if (k8s_client_create(&kc, NULL, &h->client, &kerr) != MM_OK)
        fail_msg("client: %s", kerr.base.message);
    k8s_config_cleanup(&kc);
    k8s_error_cleanup(&kerr);
    h->dir = tmpdir();
    h->crt = xasprintf("%s/certs/tls.crt", h->dir);
    h->key = xasprintf("%s/certs/tls.key", h->dir);
    h->now = T0;
    h->leader = true;
    return h;
}

static void harness_stop(struct harness *h)
{
    k8s_client_free(h->client); /* closes its keep-alive connections first */
    fs_stop(h->srv);
    json_decref(h->api.secret);
    json_decref(h->api.whc[0]);
    json_decref(h->api.whc[1]);
    json_decref(h->api.race_create);
    json_decref(h->api.race_update);
    for (int i = 0; i < h->api.nbodies; i++)
        free(h->api.bodies[i]);
    pthread_mutex_destroy(&h->api.lock);
    rmtree(h->dir);
    free(h->dir);
    free(h->crt);
    free(h->key);
    free(h);
}

/* Successful writes the fake API server answered (its threads count them under its lock). */
static int writes(struct harness *h)
{
    pthread_mutex_lock(&h->api.lock);
    int n = h->api.writes;
    pthread_mutex_unlock(&h->api.lock);
    return n;
}

static struct webhookcerts *manager(struct harness *h)
{
    struct webhookcerts_config c = base_cfg();
    c.cert_path = h->crt;
    c.key_path = h->key;
    c.now = fake_now;
    c.now_ctx = h;
    c.is_leader = fake_leader;
    c.leader_ctx = h;
    struct webhookcerts *wc = NULL;
    struct mm_error err;
    if (webhookcerts_create(h->client, &c, &wc, &err) != MM_OK)
        fail_msg("create: %s", err.message);
    return wc;
}

static void reconcile_ok(struct webhookcerts *wc)
{
    struct mm_error err;
    if (webhookcerts_reconcile(wc, &err) != MM_OK)
        fail_msg("reconcile: %s", err.message);
}

/* The decoded caBundle of webhook 0 of configuration which. */
static char *bundle_of(struct harness *h, int which)
{
    pthread_mutex_lock(&h->api.lock);
    const char *b = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(h->api.whc[which], "webhooks"), 0),
                        "clientConfig"),
        "caBundle"));
    size_t n;
    char *pem = b ? (char *)base64_decode(b, strlen(b), &n) : NULL;
    pthread_mutex_unlock(&h->api.lock);
    return pem;
}

static char *stored(struct harness *h, const char *key)
{
    pthread_mutex_lock(&h->api.lock);
    char *v = h->api.secret ? secret_value(h->api.secret, key) : NULL;
    pthread_mutex_unlock(&h->api.lock);
    return v;
}

static bool same_set(const char *a, const char *b)
{
    return a && b && webhookcerts_pem_set_equal(a, strlen(a), b, strlen(b));
}

static void test_manager_fresh_install(void **state)
{
    (void)state;
    struct harness *h = harness_start();
    struct webhookcerts *wc = manager(h);
    assert_false(webhookcerts_ready(wc));
    reconcile_ok(wc);

    char *ca = stored(h, "ca.crt"), *crt = stored(h, "tls.crt"), *key = stored(h, "tls.key");
    assert_non_null(ca);
    char *b0 = bundle_of(h, 0), *b1 = bundle_of(h, 1);
    assert_true(same_set(b0, ca)); /* the stale bundle was replaced */
    assert_true(same_set(b1, ca));
    char *fc = slurp(h->crt), *fk = slurp(h->key);
    assert_string_equal(fc, crt);
    assert_string_equal(fk, key);
    assert_true(webhookcerts_ready(wc));
    assert_true(webhookcerts_wait_ready(wc, 0));
    struct webhookcerts_stats s;
    webhookcerts_stats(wc, &s);
    assert_int_equal(s.creations, 1);
    assert_int_equal(s.bundle_updates, 2);
    assert_int_equal(s.file_writes, 1);
    assert_int_equal(s.errors, 0);
    assert_int_equal(s.not_after, T0 + 900);
    assert_int_equal(s.ca_not_after, T0 + 3000);
    assert_int_equal(writes(h), 3);

    /* a second pass writes nothing (no write loop): GETs only */
    int before = fs_count(h->srv);
    reconcile_ok(wc);
    assert_int_equal(writes(h), 3);
    for (int i = before; i < fs_count(h->srv); i++)
        assert_string_equal(fs_entry(h->srv, i).method, "GET");
    webhookcerts_stats(wc, &s);
    assert_int_equal(s.file_writes, 1);

    /* a fresh manager (a restarted container) finds the files up to date */
    struct webhookcerts *wc2 = manager(h);
    reconcile_ok(wc2);
    webhookcerts_stats(wc2, &s);
    assert_int_equal(s.file_writes, 0);
    assert_true(s.ready);
    webhookcerts_free(wc2);

    free(ca);
    free(crt);
    free(key);
    free(b0);
    free(b1);
    free(fc);
    free(fk);
    webhookcerts_free(wc);
    harness_stop(h);
}

static void test_manager_lost_create_race(void **state)
{
    (void)state;
    struct harness *h = harness_start();
    struct webhookcerts_config c = base_cfg();
    h->api.race_create = build(&c, NULL, WEBHOOKCERTS_CREATE, T0);
    char *theirs = secret_value(h->api.race_create, "tls.crt");
    struct webhookcerts *wc = manager(h);
    reconcile_ok(wc);
    char *now_stored = stored(h, "tls.crt"), *files = slurp(h->crt);
    assert_string_equal(now_stored, theirs); /* theirs was kept, not overwritten */
    assert_string_equal(files, theirs);
    struct webhookcerts_stats s;
    webhookcerts_stats(wc, &s);
    assert_int_equal(s.creations, 0);
    assert_int_equal(s.conflicts, 1);
    assert_int_equal(s.errors, 0);
    char *ca = stored(h, "ca.crt"), *b0 = bundle_of(h, 0);
    assert_true(same_set(b0, ca));
    free(ca);
    free(b0);
    free(theirs);
    free(now_stored);
    free(files);
    webhookcerts_free(wc);
    harness_stop(h);
}

static void test_manager_lost_update_race(void **state)
{
    (void)state;
    struct harness *h = harness_start();
    struct webhookcerts_config c = base_cfg();
    h->api.secret = secret_from(GOOD_A);
    /* another replica rotated first: its Secret is fresh */
    h->api.race_update = build(&c, h->api.secret, WEBHOOKCERTS_ROTATE_SERVING, T0 + 570);
    char *theirs = secret_value(h->api.race_update, "tls.crt");
    h->now = T0 + 570; /* our rotation is due too */
    struct webhookcerts *wc = manager(h);
    reconcile_ok(wc);
    char *now_stored = stored(h, "tls.crt"), *files = slurp(h->crt);
    assert_string_equal(now_stored, theirs);
    assert_string_equal(files, theirs);
    struct webhookcerts_stats s;
    webhookcerts_stats(wc, &s);
    assert_int_equal(s.rotations, 0);
    assert_int_equal(s.conflicts, 1);
    free(theirs);
    free(now_stored);
    free(files);
    webhookcerts_free(wc);
    harness_stop(h);
}

static void test_manager_patch_race_and_missing(void **state)
{
    (void)state;
    struct harness *h = harness_start();
    h->api.secret = secret_from(GOOD_A);
    h->api.race_patch[0] = true; /* the mutating configuration changes under our first patch */
    json_decref(h->api.whc[1]);
    h->api.whc[1] = NULL; /* the validating one is not there yet */
    struct webhookcerts *wc = manager(h);
    reconcile_ok(wc);
    char *b0 = bundle_of(h, 0);
    assert_true(same_set(b0, fx.ca_a.cert));
    struct webhookcerts_stats s;
    webhookcerts_stats(wc, &s);
    assert_int_equal(s.bundle_updates, 1);
    assert_int_equal(s.conflicts, 1);
    assert_int_equal(s.errors, 0);
    assert_true(s.ready);
    free(b0);
    /* the chart creates it later: the next pass sets it */
    h->api.whc[1] = stale_whc("ValidatingWebhookConfiguration");
    reconcile_ok(wc);
    char *b1 = bundle_of(h, 1);
    assert_true(same_set(b1, fx.ca_a.cert));
    free(b1);
    webhookcerts_free(wc);
    harness_stop(h);
}

static void test_manager_repair_and_follower(void **state)
{
    (void)state;
    struct harness *h = harness_start();
    h->api.secret =
        secret_from("ca.crt=ca_a.crt ca.key=ca_a.key tls.crt=leaf_a.crt tls.key=leaf_b.key");
    /* a follower writes no Secret and no bundle, and keeps no files from an unusable pair */
    h->leader = false;
    struct webhookcerts *wc = manager(h);
    reconcile_ok(wc);
    assert_int_equal(writes(h), 0);
    assert_false(webhookcerts_ready(wc));
    /* the leader repairs the serving pair with the same CA */
    h->leader = true;
    reconcile_ok(wc);
    char *ca = stored(h, "ca.crt"), *crt = stored(h, "tls.crt"), *files = slurp(h->crt);
    assert_string_equal(ca, fx.ca_a.cert);
    assert_string_not_equal(crt, fx.leaf_a.cert);
    assert_string_equal(files, crt);
    struct webhookcerts_stats s;
    webhookcerts_stats(wc, &s);
    assert_int_equal(s.repairs, 1);
    /* a follower picks up what the leader wrote */
    struct harness *h2 = h;
    h2->leader = false;
    struct webhookcerts *follower = NULL;
    struct webhookcerts_config c = base_cfg();
    char *fcrt = xasprintf("%s/follower/tls.crt", h->dir),
         *fkey = xasprintf("%s/follower/tls.key", h->dir);
    c.cert_path = fcrt;
    c.key_path = fkey;
    c.now = fake_now;
    c.now_ctx = h;
    c.is_leader = fake_leader;
    c.leader_ctx = h;
    struct mm_error err;
    assert_int_equal(webhookcerts_create(h->client, &c, &follower, &err), MM_OK);
    int before = writes(h);
    reconcile_ok(follower);
    assert_int_equal(writes(h), before);
    char *ff = slurp(fcrt);
    assert_string_equal(ff, crt);
    webhookcerts_free(follower);
    free(ff);
    free(fcrt);
    free(fkey);
    free(ca);
    free(crt);
    free(files);
    webhookcerts_free(wc);
    harness_stop(h);
}

static void test_manager_staged_ca_rotation(void **state)
{
    (void)state;
    struct harness *h = harness_start();
    h->api.secret = secret_from("ca.crt=ca_a.crt ca.key=ca_a.key tls.crt=leaf_a_late.crt "
                                "tls.key=leaf_a_late.key");
    struct webhookcerts *wc = manager(h);
    int64_t t = T0 + 1900;
    h->now = t;
    /* 1. the CA rotation starts: new CA, both trusted, the serving certificate stays */
    reconcile_ok(wc);
    char *ca2 = stored(h, "ca.crt"), *prev = stored(h, "ca-previous.crt"),
         *leaf = stored(h, "tls.crt");
    assert_string_equal(prev, fx.ca_a.cert);
    assert_string_equal(leaf, fx.leaf_a_late.cert);
    char *both = xasprintf("%s%s", ca2, fx.ca_a.cert);
    char *b0 = bundle_of(h, 0), *b1 = bundle_of(h, 1);
    assert_true(same_set(b0, both));
    assert_true(same_set(b1, both));
    free(b0);
    free(b1);
    free(leaf);
    /* 2. not yet: the bundles have trusted the new CA for less than propagation_s */
    h->now = t + 59;
    reconcile_ok(wc);
    leaf = stored(h, "tls.crt");
    assert_string_equal(leaf, fx.leaf_a_late.cert);
    free(leaf);
    /* 3. the switch */
    h->now = t + 60;
    reconcile_ok(wc);
    leaf = stored(h, "tls.crt");
    char *files = slurp(h->crt);
    assert_string_not_equal(leaf, fx.leaf_a_late.cert);
    assert_string_equal(files, leaf);
    /* signed by the new CA: the decision sees a healthy pair, not a pending switch */
    struct webhookcerts_config c = base_cfg();
    struct webhookcerts_decision d;
    pthread_mutex_lock(&h->api.lock);
    webhookcerts_decide(&c, h->api.secret, h->now, 0, &d);
    pthread_mutex_unlock(&h->api.lock);
    assert_int_equal(d.action, WEBHOOKCERTS_KEEP);
    assert_non_null(strstr(d.reason, "certificates are valid"));
    b0 = bundle_of(h, 0);
    assert_true(same_set(b0, both)); /* the overlap: both still trusted */
    free(b0);
    /* 4. the overlap (600 s after the new leaf's notBefore, t + 60 - 90) ends */
    h->now = t + 60 - 90 + 600;
    reconcile_ok(wc);
    char *gone = stored(h, "ca-previous.crt");
    assert_null(gone);
    b0 = bundle_of(h, 0);
    b1 = bundle_of(h, 1);
    assert_true(same_set(b0, ca2));
    assert_true(same_set(b1, ca2));
    struct webhookcerts_stats s;
    webhookcerts_stats(wc, &s);
    assert_int_equal(s.ca_rotations, 1);
    assert_int_equal(s.rotations, 1);
    assert_int_equal(s.previous_dropped, 1);
    assert_int_equal(s.bundle_updates, 6); /* stale -> A, A -> {A, new}, {A, new} -> new */
    assert_int_equal(s.errors, 0);
    free(b0);
    free(b1);
    free(files);
    free(leaf);
    free(both);
    free(ca2);
    free(prev);
    webhookcerts_free(wc);
    harness_stop(h);
}

/* The threaded manager: start, ready from its first pass, stop promptly. */
static void test_manager_thread(void **state)
{
    (void)state;
    struct harness *h = harness_start();
    struct webhookcerts *wc = manager(h);
    struct mm_error err;
    assert_int_equal(webhookcerts_start(wc, &err), MM_OK);
    assert_int_equal(webhookcerts_start(wc, &err), MM_ERR_INVALID);
    /* the files come from the reflector's view; the fake's list is empty and it does not
       watch, so wait for the Secret the pass created and check the writes only */
    for (int i = 0; i < 200 && writes(h) < 3; i++)
        fs_sleep_ms(20);
    assert_int_equal(writes(h), 3);
    webhookcerts_kick(wc);
    webhookcerts_stop(wc);
    webhookcerts_stop(wc);
    webhookcerts_free(wc);
    harness_stop(h);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_table),
        cmocka_unit_test(test_issue_validity_and_names),
        cmocka_unit_test(test_build_every_action),
        cmocka_unit_test(test_config_validate),
        cmocka_unit_test(test_pem_set_equal),
        cmocka_unit_test(test_wanted_bundle),
        cmocka_unit_test(test_bundle_patch),
        cmocka_unit_test(test_write_pair),
        cmocka_unit_test(test_manager_fresh_install),
        cmocka_unit_test(test_manager_lost_create_race),
        cmocka_unit_test(test_manager_lost_update_race),
        cmocka_unit_test(test_manager_patch_race_and_missing),
        cmocka_unit_test(test_manager_repair_and_follower),
        cmocka_unit_test(test_manager_staged_ca_rotation),
        cmocka_unit_test(test_manager_thread),
    };
    return cmocka_run_group_tests(tests, setup_fixtures, teardown_fixtures);
}
