/*
 * Certificates with OpenSSL 3 (EVP APIs): generate a CA and a webhook
 * serving certificate, read certificate facts (expiry, serial, SANs), check
 * that a key matches its certificate, and write key files safely. tls knows
 * no cluster: callers decide where the PEM goes (files, a Secret).
 */
#ifndef MM_TLS_TLS_H
#define MM_TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

enum tls_key_type {
    TLS_KEY_ECDSA_P256 = 0, /* the default: cheap handshakes under GnuTLS */
    TLS_KEY_RSA_2048,
};

/* A certificate and its private key, both PEM. Owned strings. */
struct tls_pem_pair {
    char *cert; /* "-----BEGIN CERTIFICATE-----..." */
    char *key;  /* PKCS#8 "-----BEGIN PRIVATE KEY-----..." */
};

void tls_pem_pair_init(struct tls_pem_pair *p);
void tls_pem_pair_cleanup(struct tls_pem_pair *p);

/*
 * Generate a self-signed CA valid for days days (backdated 5 minutes for
 * clock skew). common_name is borrowed. Fills out (owned by the caller; call
 * tls_pem_pair_cleanup). Returns MM_ERR_TLS with err set on failure.
 */
enum mm_status tls_ca_generate(const char *common_name, long days, enum tls_key_type type,
                               struct tls_pem_pair *out, struct mm_error *err) MM_WUR;

struct tls_leaf_request {
    const char *common_name;      /* subject CN */
    const char *const *dns_names; /* DNS SANs (an entry that parses as an IP becomes an IP SAN) */
    size_t n_dns_names;
    long days;
    enum tls_key_type type;
};

/*
 * Generate a serving certificate (CA:FALSE, digitalSignature, serverAuth,
 * the SANs of req) signed by ca (PEM, borrowed). Every SAN must be a DNS
 * name ([A-Za-z0-9.*-], labels 1-63) or an IP address: anything else is
 * MM_ERR_INVALID naming the SAN. Fills out; MM_ERR_TLS on OpenSSL failure.
 */
enum mm_status tls_leaf_generate(const struct tls_pem_pair *ca, const struct tls_leaf_request *req,
                                 struct tls_pem_pair *out, struct mm_error *err) MM_WUR;

/* Facts about a certificate. */
struct tls_cert_info {
    int64_t not_before; /* unix seconds */
    int64_t not_after;  /* unix seconds */
    char serial[80];    /* upper-case hex, as openssl prints it */
    char key_type[24];  /* "EC P-256", "RSA 2048", ... */
    char **sans;        /* "DNS:x" / "IP:1.2.3.4", owned */
    size_t n_sans;
    bool is_ca;
};

void tls_cert_info_init(struct tls_cert_info *info);
void tls_cert_info_cleanup(struct tls_cert_info *info);

/*
 * Read the first certificate of a PEM buffer (borrowed) into info. Returns
 * MM_ERR_TLS when there is no parsable certificate.
 */
enum mm_status tls_cert_info_read(const char *pem, size_t len, struct tls_cert_info *info,
                                  struct mm_error *err) MM_WUR;

/*
 * Check a certificate chain and key (PEM buffers, borrowed) as a serving
 * pair: both parse, the key matches the first certificate and it is not
 * expired at now (unix seconds). info (may be NULL) receives the first
 * certificate's facts. MM_ERR_TLS with a sentence naming the problem.
 */
enum mm_status tls_pair_check(const char *cert_pem, size_t cert_len, const char *key_pem,
                              size_t key_len, int64_t now, struct tls_cert_info *info,
                              struct mm_error *err) MM_WUR;

/*
 * Verify cert_pem against ca_pem for the host name (NULL: skip the name
 * check). MM_ERR_TLS with OpenSSL's reason when it does not verify.
 */
enum mm_status tls_verify(const char *ca_pem, const char *cert_pem, const char *host,
                          struct mm_error *err) MM_WUR;

/*
 * Write data to path atomically (a temporary file in the same directory,
 * fsync, rename) with the given mode (0600 for keys). MM_ERR_IO on failure.
 */
enum mm_status tls_write_file(const char *path, const char *data, size_t len, unsigned mode,
                              struct mm_error *err) MM_WUR;

#endif
