/* Reading certificates: facts, key match, chain verification; and key-safe file I/O. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"
#include "util/xalloc.h"

void tls_cert_info_init(struct tls_cert_info *info)
{
    memset(info, 0, sizeof *info);
}

void tls_cert_info_cleanup(struct tls_cert_info *info)
{
    for (size_t i = 0; i < info->n_sans; i++)
        free(info->sans[i]);
    free(info->sans);
    tls_cert_info_init(info);
}

static int64_t asn1_time_unix(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static void read_sans(X509 *x, struct tls_cert_info *info)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int n = gens ? sk_GENERAL_NAME_num(gens) : 0;
    if (n > 0)
        info->sans = xcalloc((size_t)n, sizeof *info->sans);
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        if (gn->type == GEN_DNS) {
            const ASN1_IA5STRING *s = gn->d.dNSName;
            info->sans[info->n_sans++] = xasprintf("DNS:%.*s", ASN1_STRING_length(s),
                                                   (const char *)ASN1_STRING_get0_data(s));
        } else if (gn->type == GEN_IPADD) {
            const unsigned char *p = ASN1_STRING_get0_data(gn->d.iPAddress);
            int len = ASN1_STRING_length(gn->d.iPAddress);
            if (len == 4) {
                info->sans[info->n_sans++] = xasprintf("IP:%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
            } else {
                char buf[64] = "IP:";
                size_t off = 3;
                for (int k = 0; k + 1 < len && off + 6 < sizeof buf; k += 2)
                    off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%x", k ? ":" : "",
                                            (unsigned)(p[k] << 8 | p[k + 1]));
                info->sans[info->n_sans++] = xstrdup(buf);
            }
        }
    }
    GENERAL_NAMES_free(gens);
}

static void fill_info(X509 *x, struct tls_cert_info *info)
{
    info->not_before = asn1_time_unix(X509_get0_notBefore(x));
    info->not_after = asn1_time_unix(X509_get0_notAfter(x));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(info->serial, sizeof info->serial, "%s", hex ? hex : "");
    OPENSSL_free(hex);
    BN_free(bn);
    EVP_PKEY *pk = X509_get0_pubkey(x);
    if (pk && EVP_PKEY_is_a(pk, "EC")) {
        char group[64] = "";
        size_t glen = 0;
        if (EVP_PKEY_get_group_name(pk, group, sizeof group, &glen) != 1)
            group[0] = '\0';
        const char *nice = !strcmp(group, "prime256v1")  ? "P-256"
                           : !strcmp(group, "secp384r1") ? "P-384"
                                                         : group;
        snprintf(info->key_type, sizeof info->key_type, "EC %.20s", nice);
    } else if (pk && EVP_PKEY_is_a(pk, "RSA")) {
        snprintf(info->key_type, sizeof info->key_type, "RSA %d", EVP_PKEY_get_bits(pk));
    } else if (pk) {
        snprintf(info->key_type, sizeof info->key_type, "%.23s", EVP_PKEY_get0_type_name(pk));
    }
    info->is_ca = X509_check_ca(x) > 0;
    read_sans(x, info);
    ERR_clear_error();
}

enum mm_status tls_cert_info_read(const char *pem, size_t len, struct tls_cert_info *info,
                                  struct mm_error *err)
{
    tls_cert_info_init(info);
    if (len > INT_MAX)
        return mm_error_set(err, MM_ERR_TOO_BIG, NULL, "certificate file too large");
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!x) {
        ERR_clear_error();
        return mm_error_set(err, MM_ERR_TLS, NULL, "no PEM certificate found");
    }
    fill_info(x, info);
    X509_free(x);
    return MM_OK;
}

enum mm_status tls_pair_check(const char *cert_pem, size_t cert_len, const char *key_pem,
                              size_t key_len, int64_t now, struct tls_cert_info *info,
                              struct mm_error *err)
{
    enum mm_status st = MM_OK;
    BIO *cb = NULL, *kb = NULL;
    X509 *x = NULL;
    EVP_PKEY *key = NULL;

    if (info)
        tls_cert_info_init(info);
    if (cert_len > INT_MAX || key_len > INT_MAX) {
        st = mm_error_set(err, MM_ERR_TOO_BIG, NULL, "certificate or key file too large");
        goto cleanup;
    }
    cb = BIO_new_mem_buf(cert_pem, (int)cert_len);
    kb = BIO_new_mem_buf(key_pem, (int)key_len);
    if (!cb || !kb || !(x = PEM_read_bio_X509(cb, NULL, NULL, NULL))) {
        st = mm_error_set(err, MM_ERR_TLS, "tls.crt", "no PEM certificate found");
        goto cleanup;
    }
    if (!(key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL))) {
        st = mm_error_set(err, MM_ERR_TLS, "tls.key", "no usable PEM private key found");
        goto cleanup;
    }
    if (X509_check_private_key(x, key) != 1) {
        st = mm_error_set(err, MM_ERR_TLS, "tls.key",
                          "the private key does not match the certificate");
        goto cleanup;
    }
    int64_t not_after = asn1_time_unix(X509_get0_notAfter(x));
    if (not_after && not_after < now) {
        st = mm_error_set(err, MM_ERR_TLS, "tls.crt", "the certificate expired at %lld (unix)",
                          (long long)not_after);
        goto cleanup;
    }
    if (info)
        fill_info(x, info);
cleanup:
    ERR_clear_error();
    BIO_free(cb);
    BIO_free(kb);
    X509_free(x);
    EVP_PKEY_free(key);
    return st;
}

enum mm_status tls_verify(const char *ca_pem, const char *cert_pem, const char *host,
                          struct mm_error *err)
{
    enum mm_status st = MM_OK;
    BIO *cab = BIO_new_mem_buf(ca_pem, -1), *cb = BIO_new_mem_buf(cert_pem, -1);
    X509 *ca = NULL, *x = NULL;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();

    if (!cab || !cb || !store || !ctx || !(ca = PEM_read_bio_X509(cab, NULL, NULL, NULL)) ||
        !(x = PEM_read_bio_X509(cb, NULL, NULL, NULL))) {
        st = mm_error_set(err, MM_ERR_TLS, NULL, "cannot read the CA or the certificate");
        goto cleanup;
    }
    if (!X509_STORE_add_cert(store, ca) || !X509_STORE_CTX_init(ctx, store, x, NULL)) {
        st = mm_error_set(err, MM_ERR_TLS, NULL, "cannot set up verification");
        goto cleanup;
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    if (host)
        X509_VERIFY_PARAM_set1_host(param, host, 0);
    if (X509_verify_cert(ctx) != 1)
        st = mm_error_set(err, MM_ERR_TLS, host ? host : "", "certificate verification failed: %s",
                          X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
cleanup:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(ca);
    X509_free(x);
    BIO_free(cab);
    BIO_free(cb);
    return st;
}

enum mm_status tls_write_file(const char *path, const char *data, size_t len, unsigned mode,
                              struct mm_error *err)
{
    enum mm_status st = MM_OK;
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    if (fd < 0) {
        st = mm_error_set(err, MM_ERR_IO, path, "cannot create: %s", strerror(errno));
        goto cleanup;
    }
    /* open() honours the umask; make the mode exact (0600 keys stay 0600). */
    if (fchmod(fd, (mode_t)mode) != 0) {
        st = mm_error_set(err, MM_ERR_IO, path, "cannot chmod: %s", strerror(errno));
        goto cleanup;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            st = mm_error_set(err, MM_ERR_IO, path, "cannot write: %s", strerror(errno));
            goto cleanup;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0) {
        st = mm_error_set(err, MM_ERR_IO, path, "cannot sync: %s", strerror(errno));
        goto cleanup;
    }
    if (close(fd) != 0) {
        fd = -1;
        st = mm_error_set(err, MM_ERR_IO, path, "cannot close: %s", strerror(errno));
        goto cleanup;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        st = mm_error_set(err, MM_ERR_IO, path, "cannot rename into place: %s", strerror(errno));
cleanup:
    if (fd >= 0)
        close(fd);
    if (st)
        unlink(tmp);
    free(tmp);
    return st;
}
