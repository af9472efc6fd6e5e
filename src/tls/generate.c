/* CA and serving certificate generation with OpenSSL 3's EVP APIs. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"
#include "util/xalloc.h"

void tls_pem_pair_init(struct tls_pem_pair *p)
{
    p->cert = NULL;
    p->key = NULL;
}

void tls_pem_pair_cleanup(struct tls_pem_pair *p)
{
    free(p->cert);
    if (p->key) {
        OPENSSL_cleanse(p->key, strlen(p->key));
        free(p->key);
    }
    tls_pem_pair_init(p);
}

/* Fill err with what failed and the newest OpenSSL error, then clear the queue. */
static enum mm_status ossl_fail(struct mm_error *err, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return mm_error_set(err, MM_ERR_TLS, NULL, "%s failed%s%s", what, e ? ": " : "", buf);
}

static EVP_PKEY *new_key(enum tls_key_type type)
{
    if (type == TLS_KEY_RSA_2048)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* A random positive 127-bit serial (RFC 5280: at most 20 octets, positive). */
static bool set_serial(X509 *x)
{
    BIGNUM *bn = BN_new();
    bool ok = false;
    if (bn && BN_rand(bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY)) {
        ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
        ok = ai && X509_set_serialNumber(x, ai);
        ASN1_INTEGER_free(ai);
    }
    BN_free(bn);
    return ok;
}

static bool set_validity(X509 *x, long days)
{
    return X509_gmtime_adj(X509_getm_notBefore(x), -300) &&
           X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL);
}

static bool set_cn(X509_NAME *name, const char *cn)
{
    return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                      0) == 1;
}

static bool add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return false;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1;
}

static char *bio_string(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    return n > 0 ? xstrndup(data, (size_t)n) : NULL;
}

/* PEM of cert and key into out. */
static bool to_pem(X509 *x, EVP_PKEY *key, struct tls_pem_pair *out)
{
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    bool ok = cb && kb && PEM_write_bio_X509(cb, x) &&
              PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL);
    if (ok) {
        out->cert = bio_string(cb);
        out->key = bio_string(kb);
        ok = out->cert && out->key;
    }
    BIO_free(cb);
    BIO_free(kb);
    return ok;
}

enum mm_status tls_ca_generate(const char *common_name, long days, enum tls_key_type type,
                               struct tls_pem_pair *out, struct mm_error *err)
{
    enum mm_status st = MM_OK;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;

    tls_pem_pair_init(out);
    if (days < 1 || days > 36500) {
        st = mm_error_set(err, MM_ERR_INVALID, "days",
                          "validity of %ld days is out of range [1, 36500]", days);
        goto cleanup;
    }
    if (!(key = new_key(type))) {
        st = ossl_fail(err, "CA key generation");
        goto cleanup;
    }
    x = X509_new();
    if (!x || !X509_set_version(x, 2) || !set_serial(x) || !set_validity(x, days) ||
        !set_cn(X509_get_subject_name(x), common_name) ||
        !X509_set_issuer_name(x, X509_get_subject_name(x)) || !X509_set_pubkey(x, key) ||
        !add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") ||
        !add_ext(x, x, NID_subject_key_identifier, "hash") ||
        !add_ext(x, x, NID_authority_key_identifier, "keyid:always")) {
        st = ossl_fail(err, "CA certificate construction");
        goto cleanup;
    }
    if (!X509_sign(x, key, EVP_sha256())) {
        st = ossl_fail(err, "CA certificate signing");
        goto cleanup;
    }
    if (!to_pem(x, key, out)) {
        st = ossl_fail(err, "CA PEM encoding");
        goto cleanup;
    }
cleanup:
    if (st)
        tls_pem_pair_cleanup(out);
    X509_free(x);
    EVP_PKEY_free(key);
    return st;
}

/* A DNS SAN we accept: labels of [A-Za-z0-9-] (a leading "*." wildcard allowed). */
static bool dns_name_ok(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > 253)
        return false;
    if (!strncmp(s, "*.", 2))
        s += 2;
    for (; *s; s++) {
        if (*s == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (isalnum((unsigned char)*s) || *s == '-') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* Build the subjectAltName extension from req's names. */
static enum mm_status add_sans(X509 *x, const struct tls_leaf_request *req, struct mm_error *err)
{
    enum mm_status st = MM_OK;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return ossl_fail(err, "SAN allocation");
    for (size_t i = 0; i < req->n_dns_names; i++) {
        const char *name = req->dns_names[i];
        GENERAL_NAME *gn = NULL;
        unsigned char ip[16];
        if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1) {
            ASN1_OCTET_STRING *os = a2i_IPADDRESS(name);
            gn = GENERAL_NAME_new();
            if (!os || !gn) {
                ASN1_OCTET_STRING_free(os);
                GENERAL_NAME_free(gn);
                st = ossl_fail(err, "IP SAN");
                goto cleanup;
            }
            GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
        } else if (dns_name_ok(name)) {
            ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
            gn = GENERAL_NAME_new();
            if (!ia5 || !gn || !ASN1_STRING_set(ia5, name, (int)strlen(name))) {
                ASN1_IA5STRING_free(ia5);
                GENERAL_NAME_free(gn);
                st = ossl_fail(err, "DNS SAN");
                goto cleanup;
            }
            GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
        } else {
            st = mm_error_set(err, MM_ERR_INVALID, "san",
                              "\"%s\" is neither a DNS name nor an IP address", name);
            goto cleanup;
        }
        if (!sk_GENERAL_NAME_push(gens, gn)) {
            GENERAL_NAME_free(gn);
            st = ossl_fail(err, "SAN list");
            goto cleanup;
        }
    }
    if (sk_GENERAL_NAME_num(gens) == 0) {
        st = mm_error_set(err, MM_ERR_INVALID, "san",
                          "a serving certificate needs at least one SAN");
        goto cleanup;
    }
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        st = ossl_fail(err, "subjectAltName extension");
cleanup:
    GENERAL_NAMES_free(gens);
    return st;
}

enum mm_status tls_leaf_generate(const struct tls_pem_pair *ca, const struct tls_leaf_request *req,
                                 struct tls_pem_pair *out, struct mm_error *err)
{
    enum mm_status st = MM_OK;
    BIO *cb = NULL, *kb = NULL;
    X509 *ca_cert = NULL, *x = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;

    tls_pem_pair_init(out);
    if (req->days < 1 || req->days > 36500) {
        st = mm_error_set(err, MM_ERR_INVALID, "days",
                          "validity of %ld days is out of range [1, 36500]", req->days);
        goto cleanup;
    }
    cb = BIO_new_mem_buf(ca->cert, -1);
    kb = BIO_new_mem_buf(ca->key, -1);
    if (!cb || !kb || !(ca_cert = PEM_read_bio_X509(cb, NULL, NULL, NULL))) {
        st = ossl_fail(err, "reading the CA certificate");
        goto cleanup;
    }
    if (!(ca_key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL))) {
        st = ossl_fail(err, "reading the CA key");
        goto cleanup;
    }
    if (X509_check_private_key(ca_cert, ca_key) != 1) {
        ERR_clear_error();
        st = mm_error_set(err, MM_ERR_TLS, "ca", "the CA key does not match the CA certificate");
        goto cleanup;
    }
    if (!(key = new_key(req->type))) {
        st = ossl_fail(err, "key generation");
        goto cleanup;
    }
    x = X509_new();
    const char *ku = req->type == TLS_KEY_RSA_2048 ? "critical,digitalSignature,keyEncipherment"
                                                   : "critical,digitalSignature";
    if (!x || !X509_set_version(x, 2) || !set_serial(x) || !set_validity(x, req->days) ||
        !set_cn(X509_get_subject_name(x), req->common_name) ||
        !X509_set_issuer_name(x, X509_get_subject_name(ca_cert)) || !X509_set_pubkey(x, key) ||
        !add_ext(x, ca_cert, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, ca_cert, NID_key_usage, ku) ||
        !add_ext(x, ca_cert, NID_ext_key_usage, "serverAuth") ||
        !add_ext(x, ca_cert, NID_subject_key_identifier, "hash") ||
        !add_ext(x, ca_cert, NID_authority_key_identifier, "keyid:always")) {
        st = ossl_fail(err, "certificate construction");
        goto cleanup;
    }
    if ((st = add_sans(x, req, err)))
        goto cleanup;
    if (!X509_sign(x, ca_key, EVP_sha256())) {
        st = ossl_fail(err, "certificate signing");
        goto cleanup;
    }
    if (!to_pem(x, key, out))
        st = ossl_fail(err, "PEM encoding");
cleanup:
    if (st)
        tls_pem_pair_cleanup(out);
    BIO_free(cb);
    BIO_free(kb);
    X509_free(ca_cert);
    X509_free(x);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    return st;
}
