/*
 * Certificate generation and inspection (src/tls): the SANs a webhook
 * Service needs, key/certificate match, ECDSA P-256 by default, expiry,
 * verification by name against the CA, and the unhappy paths (bad SANs,
 * mismatched keys, garbage PEM, expired certificates, 0600 key files).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tls/tls.h"
#include "util/fileio.h"
#include "util/xalloc.h"

static const char *const webhook_names[] = {
    "mm-webhook",
    "mm-webhook.kuma-system",
    "mm-webhook.kuma-system.svc",
    "mm-webhook.kuma-system.svc.cluster.local",
    "127.0.0.1",
};

struct fixture {
    struct tls_pem_pair ca;
    struct tls_pem_pair leaf;
};

static int setup_ecdsa(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    struct mm_error err;
    if (tls_ca_generate("test CA", 3650, TLS_KEY_ECDSA_P256, &f->ca, &err))
        return -1;
    struct tls_leaf_request req = {"mm-webhook.kuma-system.svc", webhook_names, 5, 30,
                                   TLS_KEY_ECDSA_P256};
    if (tls_leaf_generate(&f->ca, &req, &f->leaf, &err))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tls_pem_pair_cleanup(&f->ca);
    tls_pem_pair_cleanup(&f->leaf);
    free(f);
    return 0;
}

static bool has_san(const struct tls_cert_info *info, const char *san)
{
    for (size_t i = 0; i < info->n_sans; i++)
        if (!strcmp(info->sans[i], san))
            return true;
    return false;
}

static void test_leaf_sans_and_key_type(void **state)
{
    struct fixture *f = *state;
    struct tls_cert_info info;
    struct mm_error err;
    assert_int_equal(tls_cert_info_read(f->leaf.cert, strlen(f->leaf.cert), &info, &err), MM_OK);
    assert_int_equal(info.n_sans, 5);
    assert_true(has_san(&info, "DNS:mm-webhook"));
    assert_true(has_san(&info, "DNS:mm-webhook.kuma-system"));
    assert_true(has_san(&info, "DNS:mm-webhook.kuma-system.svc"));
    assert_true(has_san(&info, "DNS:mm-webhook.kuma-system.svc.cluster.local"));
    assert_true(has_san(&info, "IP:127.0.0.1"));
    assert_string_equal(info.key_type, "EC P-256");
    assert_false(info.is_ca);
    assert_true(strlen(info.serial) > 16);
    tls_cert_info_cleanup(&info);

    assert_int_equal(tls_cert_info_read(f->ca.cert, strlen(f->ca.cert), &info, &err), MM_OK);
    assert_true(info.is_ca);
    assert_string_equal(info.key_type, "EC P-256");
    tls_cert_info_cleanup(&info);
}

static void test_leaf_expiry(void **state)
{
    struct fixture *f = *state;
    struct tls_cert_info info;
    struct mm_error err;
    time_t now = time(NULL);
    assert_int_equal(tls_pair_check(f->leaf.cert, strlen(f->leaf.cert), f->leaf.key,
                                    strlen(f->leaf.key), (int64_t)now, &info, &err),
                     MM_OK);
    /* 30 days, backdated 5 minutes */
    assert_true(info.not_after >= now + 30 * 86400 - 60);
    assert_true(info.not_after <= now + 30 * 86400 + 60);
    assert_true(info.not_before <= now - 290 && info.not_before >= now - 400);
    tls_cert_info_cleanup(&info);

    /* In 31 days it is expired. */
    assert_int_equal(tls_pair_check(f->leaf.cert, strlen(f->leaf.cert), f->leaf.key,
                                    strlen(f->leaf.key), (int64_t)now + 31 * 86400, NULL, &err),
                     MM_ERR_TLS);
    assert_non_null(strstr(err.message, "expired"));
}

static void test_key_mismatch(void **state)
{
    struct fixture *f = *state;
    struct mm_error err;
    /* The CA key does not belong to the leaf. */
    assert_int_equal(tls_pair_check(f->leaf.cert, strlen(f->leaf.cert), f->ca.key,
                                    strlen(f->ca.key), (int64_t)time(NULL), NULL, &err),
                     MM_ERR_TLS);
    assert_string_equal(err.field, "tls.key");
    assert_non_null(strstr(err.message, "does not match"));
}

static void test_verify_by_name(void **state)
{
    struct fixture *f = *state;
    struct mm_error err;
    assert_int_equal(tls_verify(f->ca.cert, f->leaf.cert, "mm-webhook.kuma-system.svc", &err),
                     MM_OK);
    assert_int_equal(tls_verify(f->ca.cert, f->leaf.cert, NULL, &err), MM_OK);
    assert_int_equal(tls_verify(f->ca.cert, f->leaf.cert, "other.kuma-system.svc", &err),
                     MM_ERR_TLS);
    assert_non_null(strstr(err.message, "hostname mismatch"));

    /* A different CA does not verify it. */
    struct tls_pem_pair other;
    assert_int_equal(tls_ca_generate("other CA", 10, TLS_KEY_ECDSA_P256, &other, &err), MM_OK);
    assert_int_equal(tls_verify(other.cert, f->leaf.cert, "mm-webhook.kuma-system.svc", &err),
                     MM_ERR_TLS);
    tls_pem_pair_cleanup(&other);
}

static void test_rsa(void **state)
{
    (void)state;
    struct tls_pem_pair ca, leaf;
    struct tls_cert_info info;
    struct mm_error err;
    const char *names[] = {"svc.ns.svc"};
    assert_int_equal(tls_ca_generate("rsa CA", 100, TLS_KEY_RSA_2048, &ca, &err), MM_OK);
    struct tls_leaf_request req = {"svc.ns.svc", names, 1, 10, TLS_KEY_RSA_2048};
    assert_int_equal(tls_leaf_generate(&ca, &req, &leaf, &err), MM_OK);
    assert_int_equal(tls_pair_check(leaf.cert, strlen(leaf.cert), leaf.key, strlen(leaf.key),
                                    (int64_t)time(NULL), &info, &err),
                     MM_OK);
    assert_string_equal(info.key_type, "RSA 2048");
    assert_int_equal(tls_verify(ca.cert, leaf.cert, "svc.ns.svc", &err), MM_OK);
    tls_cert_info_cleanup(&info);
    tls_pem_pair_cleanup(&ca);
    tls_pem_pair_cleanup(&leaf);
}

struct bad_san_case {
    const char *san;
};

static const struct bad_san_case bad_sans[] = {
    {""},     {"has space.svc"}, {"comma,DNS:evil"},
    {"a..b"}, {"trailing.dot."}, {"under_score.svc"},
    {"x\ny"}, {"a/b.svc"},       {"x:y"},
};

static void test_bad_sans(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < sizeof bad_sans / sizeof *bad_sans; i++) {
        const char *names[] = {"ok.svc", bad_sans[i].san};
        struct tls_leaf_request req = {"ok.svc", names, 2, 10, TLS_KEY_ECDSA_P256};
        struct tls_pem_pair leaf;
        struct mm_error err;
        enum mm_status st = tls_leaf_generate(&f->ca, &req, &leaf, &err);
        if (st != MM_ERR_INVALID)
            fail_msg("SAN %s: got status %d", bad_sans[i].san, st);
        assert_string_equal(err.field, "san");
        assert_null(leaf.cert);
    }
    /* No SAN at all is refused: Go ignores the Common Name. */
    struct tls_leaf_request none = {"ok.svc", NULL, 0, 10, TLS_KEY_ECDSA_P256};
    struct tls_pem_pair leaf;
    struct mm_error err;
    assert_int_equal(tls_leaf_generate(&f->ca, &none, &leaf, &err), MM_ERR_INVALID);
}

static void test_wildcard_and_ipv6(void **state)
{
    struct fixture *f = *state;
    const char *names[] = {"*.ns.svc", "::1"};
    struct tls_leaf_request req = {"x", names, 2, 10, TLS_KEY_ECDSA_P256};
    struct tls_pem_pair leaf;
    struct tls_cert_info info;
    struct mm_error err;
    assert_int_equal(tls_leaf_generate(&f->ca, &req, &leaf, &err), MM_OK);
    assert_int_equal(tls_cert_info_read(leaf.cert, strlen(leaf.cert), &info, &err), MM_OK);
    assert_true(has_san(&info, "DNS:*.ns.svc"));
    assert_true(has_san(&info, "IP:0:0:0:0:0:0:0:1"));
    tls_cert_info_cleanup(&info);
    tls_pem_pair_cleanup(&leaf);
}

static void test_garbage(void **state)
{
    struct fixture *f = *state;
    struct tls_cert_info info;
    struct mm_error err;
    const char *junk =
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
    assert_int_equal(tls_cert_info_read(junk, strlen(junk), &info, &err), MM_ERR_TLS);
    assert_int_equal(tls_cert_info_read("", 0, &info, &err), MM_ERR_TLS);
    assert_int_equal(
        tls_pair_check(junk, strlen(junk), f->leaf.key, strlen(f->leaf.key), 0, NULL, &err),
        MM_ERR_TLS);
    assert_string_equal(err.field, "tls.crt");
    assert_int_equal(tls_pair_check(f->leaf.cert, strlen(f->leaf.cert), "nope", 4, 0, NULL, &err),
                     MM_ERR_TLS);
    assert_string_equal(err.field, "tls.key");

    /* A CA whose key does not match refuses to sign. */
    struct tls_pem_pair wrong = {f->ca.cert, f->leaf.key};
    const char *names[] = {"a.svc"};
    struct tls_leaf_request req = {"a.svc", names, 1, 10, TLS_KEY_ECDSA_P256};
    struct tls_pem_pair leaf;
    assert_int_equal(tls_leaf_generate(&wrong, &req, &leaf, &err), MM_ERR_TLS);
    /* Out-of-range validity. */
    req.days = 0;
    assert_int_equal(tls_leaf_generate(&f->ca, &req, &leaf, &err), MM_ERR_INVALID);
}

static void test_write_file_mode(void **state)
{
    struct fixture *f = *state;
    char dir[] = "/tmp/mm-test-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/tls.key", dir);
    struct mm_error err;
    mode_t old = umask(0);
    assert_int_equal(tls_write_file(path, f->leaf.key, strlen(f->leaf.key), 0600, &err), MM_OK);
    umask(old);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *back = NULL;
    size_t len = 0;
    assert_int_equal(fileio_read(path, 1 << 20, &back, &len, &err), MM_OK);
    assert_string_equal(back, f->leaf.key);
    free(back);
    /* Overwrite in place keeps the mode; a missing directory is an I/O error. */
    assert_int_equal(tls_write_file(path, "x", 1, 0600, &err), MM_OK);
    char *bad = xasprintf("%s/missing/tls.key", dir);
    assert_int_equal(tls_write_file(bad, "x", 1, 0600, &err), MM_ERR_IO);
    unlink(path);
    rmdir(dir);
    free(bad);
    free(path);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_leaf_sans_and_key_type, setup_ecdsa, teardown),
        cmocka_unit_test_setup_teardown(test_leaf_expiry, setup_ecdsa, teardown),
        cmocka_unit_test_setup_teardown(test_key_mismatch, setup_ecdsa, teardown),
        cmocka_unit_test_setup_teardown(test_verify_by_name, setup_ecdsa, teardown),
        cmocka_unit_test(test_rsa),
        cmocka_unit_test_setup_teardown(test_bad_sans, setup_ecdsa, teardown),
        cmocka_unit_test_setup_teardown(test_wildcard_and_ipv6, setup_ecdsa, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup_ecdsa, teardown),
        cmocka_unit_test_setup_teardown(test_write_file_mode, setup_ecdsa, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
