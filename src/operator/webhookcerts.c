/* --manage-webhook-certs: decisions, certificates, the Secret, caBundles and files. */
#include "operator/webhookcerts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "k8s/cancel.h"
#include "k8s/microtime.h"
#include "k8s/reflector.h"
#include "k8s/status.h"
#include "util/clock.h"
#include "util/base64.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define MAX_VALUE (1u << 20)  /* one Secret value, decoded */
#define MAX_BUNDLE (4u << 20) /* a caBundle, decoded */
#define MAX_WRITE_ATTEMPTS 5  /* conditional writes per pass before giving up until the next */
#define BACKDATE_MAX_S 300    /* notBefore = now - min(5 min, validity/10): clock skew */
#define NAME_MAX_LEN 256
#define N_NAMES 4

static const struct k8s_resource secrets_res = {"", "v1", "secrets"};
static const struct k8s_resource mutating_res = {"admissionregistration.k8s.io", "v1",
                                                 "mutatingwebhookconfigurations"};
static const struct k8s_resource validating_res = {"admissionregistration.k8s.io", "v1",
                                                   "validatingwebhookconfigurations"};

/* ---- configuration ---- */

void webhookcerts_config_init(struct webhookcerts_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->secret_name = WEBHOOKCERTS_DEFAULT_SECRET;
    cfg->service_name = WEBHOOKCERTS_DEFAULT_SERVICE;
    cfg->mutating_name = WEBHOOKCERTS_DEFAULT_WEBHOOK;
    cfg->validating_name = WEBHOOKCERTS_DEFAULT_WEBHOOK;
    cfg->cert_path = WEBHOOKCERTS_DEFAULT_CERT_DIR "/tls.crt";
    cfg->key_path = WEBHOOKCERTS_DEFAULT_CERT_DIR "/tls.key";
    cfg->ca_validity_s = 3650LL * 86400;
    cfg->serving_validity_s = 365LL * 86400;
    cfg->rotate_divisor = 3;
    cfg->propagation_s = 60;
    cfg->ca_overlap_s = 86400;
    cfg->resync_ms = 60000;
}

/* DNS-1123: a label (subdomain false) or a subdomain of labels. */
static bool dns1123(const char *s, bool subdomain)
{
    size_t len = s ? strlen(s) : 0, label = 0;
    if (len == 0 || len > (subdomain ? 253u : 63u))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.' && subdomain) {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            if (label == 0 && c == '-')
                return false;
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && s[len - 1] != '-';
}

enum mm_status webhookcerts_config_validate(const struct webhookcerts_config *cfg,
                                            struct mm_error *err)
{
    if (!dns1123(cfg->namespace, false))
        return mm_error_set(err, MM_ERR_INVALID, "namespace",
                            "namespace \"%s\" must be a DNS-1123 label",
                            cfg->namespace ? cfg->namespace : "");
    if (!dns1123(cfg->service_name, false))
        return mm_error_set(err, MM_ERR_INVALID, "service",
                            "service name \"%s\" must be a DNS-1123 label",
                            cfg->service_name ? cfg->service_name : "");
    if (!dns1123(cfg->secret_name, true))
        return mm_error_set(err, MM_ERR_INVALID, "secret",
                            "Secret name \"%s\" must be a DNS-1123 subdomain",
                            cfg->secret_name ? cfg->secret_name : "");
    if (cfg->mutating_name && cfg->mutating_name[0] && !dns1123(cfg->mutating_name, true))
        return mm_error_set(err, MM_ERR_INVALID, "mutating-webhook-configuration",
                            "\"%s\" must be a DNS-1123 subdomain", cfg->mutating_name);
    if (cfg->validating_name && cfg->validating_name[0] && !dns1123(cfg->validating_name, true))
        return mm_error_set(err, MM_ERR_INVALID, "validating-webhook-configuration",
                            "\"%s\" must be a DNS-1123 subdomain", cfg->validating_name);
    if (!cfg->cert_path || !cfg->cert_path[0] || !cfg->key_path || !cfg->key_path[0])
        return mm_error_set(err, MM_ERR_INVALID, "cert-path",
                            "the certificate and key file paths must be set");
    if (!strcmp(cfg->cert_path, cfg->key_path))
        return mm_error_set(err, MM_ERR_INVALID, "key-path",
                            "the certificate and the key need two different files");
    if (cfg->ca_validity_s < 60 || cfg->ca_validity_s > 36500LL * 86400)
        return mm_error_set(err, MM_ERR_INVALID, "ca-validity",
                            "CA validity of %lld s is out of range [60 s, 100 years]",
                            (long long)cfg->ca_validity_s);
    if (cfg->serving_validity_s < 30 || cfg->serving_validity_s > cfg->ca_validity_s)
        return mm_error_set(err, MM_ERR_INVALID, "serving-validity",
                            "serving validity of %lld s must be at least 30 s and at most the "
                            "CA's %lld s",
                            (long long)cfg->serving_validity_s, (long long)cfg->ca_validity_s);
    if (cfg->rotate_divisor < 2 || cfg->rotate_divisor > 100)
        return mm_error_set(err, MM_ERR_INVALID, "rotate-divisor",
                            "rotate divisor %lld is out of range [2, 100]",
                            (long long)cfg->rotate_divisor);
    if (cfg->propagation_s < 0 || cfg->ca_overlap_s < 0)
        return mm_error_set(err, MM_ERR_INVALID, "ca-overlap",
                            "propagation and overlap periods cannot be negative");
    if (cfg->resync_ms < 100)
        return mm_error_set(err, MM_ERR_INVALID, "resync", "resync period below 100 ms");
    return MM_OK;
}

static int64_t cfg_now(const struct webhookcerts_config *cfg)
{
    return cfg->now ? cfg->now(cfg->now_ctx) : (int64_t)time(NULL);
}

/* The four DNS names of the service. */
static void service_names(const struct webhookcerts_config *cfg, char names[N_NAMES][NAME_MAX_LEN])
{
    snprintf(names[0], NAME_MAX_LEN, "%s", cfg->service_name);
    snprintf(names[1], NAME_MAX_LEN, "%s.%s", cfg->service_name, cfg->namespace);
    snprintf(names[2], NAME_MAX_LEN, "%s.%s.svc", cfg->service_name, cfg->namespace);
    snprintf(names[3], NAME_MAX_LEN, "%s.%s.svc.cluster.local", cfg->service_name, cfg->namespace);
}

static void fmt_time(int64_t unix_s, char out[K8S_MICROTIME_LEN])
{
    k8s_time_format(unix_s * 1000000, out);
}

const char *webhookcerts_action_name(enum webhookcerts_action a)
{
    switch (a) {
    case WEBHOOKCERTS_KEEP:
        return "keep";
    case WEBHOOKCERTS_CREATE:
        return "create";
    case WEBHOOKCERTS_REPAIR:
        return "repair";
    case WEBHOOKCERTS_REPAIR_SERVING:
        return "repair-serving";
    case WEBHOOKCERTS_ROTATE_SERVING:
        return "rotate-serving";
    case WEBHOOKCERTS_ROTATE_CA:
        return "rotate-ca";
    case WEBHOOKCERTS_DROP_PREVIOUS_CA:
        return "drop-previous-ca";
    }
    return "unknown";
}

/* ---- Secret values ---- */

/* One data value of the Secret, decoded. */
struct value {
    char *data; /* NUL-terminated; NULL when absent, empty or not base64 */
    size_t len;
    bool present; /* the key is there with a non-empty value (maybe not base64) */
};

static void value_get(const json_t *secret, const char *key, struct value *v)
{
    memset(v, 0, sizeof *v);
    const json_t *s = json_object_get(json_object_get(secret, "data"), key);
    if (!json_is_string(s) || json_string_length(s) == 0)
        return;
    v->present = true;
    if (json_string_length(s) > (size_t)MAX_VALUE / 3 * 4 + 4)
        return;
    size_t n = 0;
    unsigned char *d = base64_decode(json_string_value(s), json_string_length(s), &n);
    if (!d)
        return;
    v->data = (char *)d; /* base64_decode NUL-terminates */
    v->len = n;
}

static void value_cleanup(struct value *v)
{
    if (v->data) {
        OPENSSL_cleanse(v->data, v->len);
        free(v->data);
    }
    memset(v, 0, sizeof *v);
}

static const char *value_problem(const struct value *v)
{
    return v->present ? "is not valid base64" : "is missing";
}

/* ---- OpenSSL helpers (what tls.h does not offer yet; see docs/webhook-certs.md) ---- */

static X509 *pem_x509(const char *pem, size_t len)
{
    if (len > INT_MAX)
        return NULL;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    return x;
}

/* Whether the first certificate of cert was issued and signed by the first of ca (no time check).
 */
static bool signed_by(const char *cert, size_t cert_len, const char *ca, size_t ca_len)
{
    X509 *x = pem_x509(cert, cert_len), *c = pem_x509(ca, ca_len);
    EVP_PKEY *pub = c ? X509_get0_pubkey(c) : NULL;
    bool ok = x && c && pub && X509_check_issued(c, x) == X509_V_OK && X509_verify(x, pub) == 1;
    X509_free(x);
    X509_free(c);
    ERR_clear_error();
    return ok;
}

/*
 * Set the validity of the certificate in *cert_pem and sign it again with
 * signer_key_pem. tls.h takes whole days; operators and tests need seconds.
 */
static enum mm_status set_validity(char **cert_pem, const char *signer_key_pem, int64_t not_before,
                                   int64_t not_after, struct mm_error *err)
{
    enum mm_status st = MM_OK;
    X509 *x = pem_x509(*cert_pem, strlen(*cert_pem));
    BIO *kb = BIO_new_mem_buf(signer_key_pem, -1), *out = NULL;
    EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    char *data = NULL;
    long n;

    if (!x || !key || !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) ||
        !X509_sign(x, key, EVP_sha256()) || !(out = BIO_new(BIO_s_mem())) ||
        !PEM_write_bio_X509(out, x) || (n = BIO_get_mem_data(out, &data)) <= 0) {
        st = mm_error_set(err, MM_ERR_TLS, NULL, "setting the certificate's validity failed");
        goto cleanup;
    }
    free(*cert_pem);
    *cert_pem = xstrndup(data, (size_t)n);
cleanup:
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(key);
    BIO_free(kb);
    BIO_free(out);
    return st;
}

static int64_t backdate(int64_t validity_s)
{
    return validity_s / 10 < BACKDATE_MAX_S ? validity_s / 10 : BACKDATE_MAX_S;
}

static long whole_days(int64_t s)
{
    int64_t d = (s + 86399) / 86400;
    return (long)(d < 1 ? 1 : d > 36500 ? 36500 : d);
}

enum mm_status webhookcerts_issue_ca(const struct webhookcerts_config *cfg, int64_t now,
                                     struct tls_pem_pair *out, struct mm_error *err)
{
    char cn[NAME_MAX_LEN];
    snprintf(cn, sizeof cn, "%.100s-webhook-ca@%lld", cfg->service_name, (long long)now);
    enum mm_status st =
        tls_ca_generate(cn, whole_days(cfg->ca_validity_s), TLS_KEY_ECDSA_P256, out, err);
    if (st == MM_OK)
        st = set_validity(&out->cert, out->key, now - backdate(cfg->ca_validity_s),
                          now + cfg->ca_validity_s, err);
    if (st != MM_OK)
        tls_pem_pair_cleanup(out);
    return st;
}

enum mm_status webhookcerts_issue_serving(const struct webhookcerts_config *cfg,
                                          const struct tls_pem_pair *ca, int64_t now,
                                          struct tls_pem_pair *out, struct mm_error *err)
{
    char names[N_NAMES][NAME_MAX_LEN];
    const char *sans[N_NAMES];
    struct tls_cert_info ca_info;
    enum mm_status st;

    tls_pem_pair_init(out);
    service_names(cfg, names);
    for (size_t i = 0; i < N_NAMES; i++)
        sans[i] = names[i];
    if ((st = tls_cert_info_read(ca->cert, strlen(ca->cert), &ca_info, err)))
        return st;
    int64_t not_after = now + cfg->serving_validity_s;
    if (not_after > ca_info.not_after)
        not_after = ca_info.not_after;
    tls_cert_info_cleanup(&ca_info);
    if (not_after <= now)
        return mm_error_set(err, MM_ERR_TLS, WEBHOOKCERTS_CA_CRT,
                            "the CA has expired: it cannot sign a serving certificate");
    struct tls_leaf_request req = {.common_name = names[2],
                                   .dns_names = sans,
                                   .n_dns_names = N_NAMES,
                                   .days = whole_days(cfg->serving_validity_s),
                                   .type = TLS_KEY_ECDSA_P256};
    if ((st = tls_leaf_generate(ca, &req, out, err)))
        return st;
    st = set_validity(&out->cert, ca->key, now - backdate(cfg->serving_validity_s), not_after, err);
    if (st != MM_OK)
        tls_pem_pair_cleanup(out);
    return st;
}

/* ---- the decision ---- */

static void decide_set(struct webhookcerts_decision *d, enum webhookcerts_action a, const char *fmt,
                       ...) __attribute__((format(printf, 3, 4)));

static void decide_set(struct webhookcerts_decision *d, enum webhookcerts_action a, const char *fmt,
                       ...)
{
    va_list ap;
    d->action = a;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof d->reason, fmt, ap);
    va_end(ap);
}

/* Exactly the service's four DNS names (any order); got receives the certificate's list. */
static bool sans_match(const struct webhookcerts_config *cfg, const struct tls_cert_info *info,
                       char *got, size_t gotlen)
{
    char names[N_NAMES][NAME_MAX_LEN];
    bool found[N_NAMES] = {false};
    bool ok = true;
    size_t off = 0;

    service_names(cfg, names);
    got[0] = '\0';
    for (size_t i = 0; i < info->n_sans; i++) {
        const char *san = info->sans[i];
        if (off < gotlen)
            off += (size_t)snprintf(got + off, gotlen - off, "%s%s", i ? " " : "", san);
        bool known = false;
        for (size_t k = 0; k < N_NAMES; k++)
            if (!strncmp(san, "DNS:", 4) && !strcmp(san + 4, names[k]))
                known = found[k] = true;
        ok = ok && known;
    }
    for (size_t k = 0; k < N_NAMES; k++)
        ok = ok && found[k];
    return ok;
}

/* When less than lifetime/divisor is left. */
static int64_t rotation_due(const struct tls_cert_info *info, int64_t divisor)
{
    int64_t life = info->not_after - info->not_before;
    return life > 0 ? info->not_after - life / divisor : info->not_after;
}

static int64_t earliest(int64_t a, int64_t b)
{
    return a && (!b || a < b) ? a : b;
}

void webhookcerts_decide(const struct webhookcerts_config *cfg, const json_t *secret, int64_t now,
                         int64_t trusted_since, struct webhookcerts_decision *d)
{
    struct value ca, ca_key, crt, key, prev;
    struct tls_cert_info ca_info, leaf, prev_info;
    struct mm_error e;
    char when[K8S_MICROTIME_LEN], got[512], want[4 * NAME_MAX_LEN + 32];

    memset(d, 0, sizeof *d);
    memset(&ca, 0, sizeof ca);
    memset(&ca_key, 0, sizeof ca_key);
    memset(&crt, 0, sizeof crt);
    memset(&key, 0, sizeof key);
    memset(&prev, 0, sizeof prev);
    tls_cert_info_init(&ca_info);
    tls_cert_info_init(&leaf);
    tls_cert_info_init(&prev_info);
    mm_error_clear(&e);

    if (!secret || json_is_null(secret)) {
        decide_set(d, WEBHOOKCERTS_CREATE, "the Secret %s/%s does not exist", cfg->namespace,
                   cfg->secret_name);
        return;
    }
    value_get(secret, WEBHOOKCERTS_CA_CRT, &ca);
    value_get(secret, WEBHOOKCERTS_CA_KEY, &ca_key);
    value_get(secret, WEBHOOKCERTS_TLS_CRT, &crt);
    value_get(secret, WEBHOOKCERTS_TLS_KEY, &key);
    value_get(secret, WEBHOOKCERTS_CA_PREVIOUS, &prev);

    /* 2. the CA */
    if (!ca.data || !ca_key.data) {
        decide_set(d, WEBHOOKCERTS_REPAIR, "%s %s",
                   !ca.data ? WEBHOOKCERTS_CA_CRT : WEBHOOKCERTS_CA_KEY,
                   value_problem(!ca.data ? &ca : &ca_key));
        goto out;
    }
    if (tls_pair_check(ca.data, ca.len, ca_key.data, ca_key.len, now, &ca_info, &e)) {
        decide_set(d, WEBHOOKCERTS_REPAIR, "the CA in %s/%s is unusable: %s", WEBHOOKCERTS_CA_CRT,
                   WEBHOOKCERTS_CA_KEY, e.message);
        goto out;
    }
    if (!ca_info.is_ca) {
        decide_set(d, WEBHOOKCERTS_REPAIR, "%s is not a CA certificate", WEBHOOKCERTS_CA_CRT);
        goto out;
    }

    /* 3. the serving certificate */
    if (!crt.data || !key.data) {
        decide_set(d, WEBHOOKCERTS_REPAIR_SERVING, "%s %s",
                   !crt.data ? WEBHOOKCERTS_TLS_CRT : WEBHOOKCERTS_TLS_KEY,
                   value_problem(!crt.data ? &crt : &key));
        goto out;
    }
    if (tls_pair_check(crt.data, crt.len, key.data, key.len, now, &leaf, &e)) {
        decide_set(d, WEBHOOKCERTS_REPAIR_SERVING,
                   "the serving certificate in %s/%s is unusable: %s", WEBHOOKCERTS_TLS_CRT,
                   WEBHOOKCERTS_TLS_KEY, e.message);
        goto out;
    }
    if (!sans_match(cfg, &leaf, got, sizeof got)) {
        char names[N_NAMES][NAME_MAX_LEN];
        service_names(cfg, names);
        snprintf(want, sizeof want, "DNS:%s DNS:%s DNS:%s DNS:%s", names[0], names[1], names[2],
                 names[3]);
        decide_set(d, WEBHOOKCERTS_REPAIR_SERVING, "%s is for [%s], not for the service's [%s]",
                   WEBHOOKCERTS_TLS_CRT, got, want);
        goto out;
    }
    bool by_current = signed_by(crt.data, crt.len, ca.data, ca.len);
    bool prev_ok = prev.data && tls_cert_info_read(prev.data, prev.len, &prev_info, &e) == MM_OK;
    bool by_prev = !by_current && prev_ok && signed_by(crt.data, crt.len, prev.data, prev.len);
    if (!by_current && !by_prev) {
        decide_set(d, WEBHOOKCERTS_REPAIR_SERVING, "%s is not signed by the CA in %s",
                   WEBHOOKCERTS_TLS_CRT, WEBHOOKCERTS_CA_CRT);
        goto out;
    }

    /* 4. a CA rotation in progress: move the serving certificate once the new CA is trusted */
    if (by_prev) {
        if (trusted_since > 0 && now >= trusted_since + cfg->propagation_s) {
            fmt_time(trusted_since, when);
            decide_set(d, WEBHOOKCERTS_ROTATE_SERVING,
                       "CA rotation: every webhook configuration has trusted the new CA since %s; "
                       "moving the serving certificate to it",
                       when);
        } else {
            decide_set(d, WEBHOOKCERTS_KEEP,
                       "CA rotation: waiting until every webhook configuration has trusted the "
                       "new CA for %llds",
                       (long long)cfg->propagation_s);
            d->next_check = trusted_since > 0 ? trusted_since + cfg->propagation_s : 0;
        }
        goto out;
    }

    /* 5, 6. rotations */
    int64_t ca_due = rotation_due(&ca_info, cfg->rotate_divisor);
    int64_t leaf_due = rotation_due(&leaf, cfg->rotate_divisor);
    if (now >= ca_due) {
        fmt_time(ca_info.not_after, when);
        decide_set(d, WEBHOOKCERTS_ROTATE_CA,
                   "less than 1/%lld of the CA's lifetime is left (notAfter %s)",
                   (long long)cfg->rotate_divisor, when);
        goto out;
    }
    if (now >= leaf_due) {
        fmt_time(leaf.not_after, when);
        decide_set(d, WEBHOOKCERTS_ROTATE_SERVING,
                   "less than 1/%lld of the serving certificate's lifetime is left (notAfter %s)",
                   (long long)cfg->rotate_divisor, when);
        goto out;
    }
    int64_t next = earliest(ca_due, leaf_due);

    /* 7. the retired CA */
    if (prev.present) {
        if (!prev_ok) {
            decide_set(d, WEBHOOKCERTS_DROP_PREVIOUS_CA, "%s is not a usable certificate",
                       WEBHOOKCERTS_CA_PREVIOUS);
            goto out;
        }
        if (prev_info.not_after <= now) {
            fmt_time(prev_info.not_after, when);
            decide_set(d, WEBHOOKCERTS_DROP_PREVIOUS_CA, "the previous CA expired at %s", when);
            goto out;
        }
        int64_t drop_at = leaf.not_before + cfg->ca_overlap_s;
        if (now >= drop_at) {
            decide_set(d, WEBHOOKCERTS_DROP_PREVIOUS_CA,
                       "the serving certificate has been signed by the new CA for more than the "
                       "%llds overlap",
                       (long long)cfg->ca_overlap_s);
            goto out;
        }
        next = earliest(next, earliest(drop_at, prev_info.not_after));
    }
    fmt_time(leaf.not_after, when);
    decide_set(d, WEBHOOKCERTS_KEEP, "the certificates are valid (serving notAfter %s)", when);
    d->next_check = next;
out:
    value_cleanup(&ca);
    value_cleanup(&ca_key);
    value_cleanup(&crt);
    value_cleanup(&key);
    value_cleanup(&prev);
    tls_cert_info_cleanup(&ca_info);
    tls_cert_info_cleanup(&leaf);
    tls_cert_info_cleanup(&prev_info);
}

/* ---- caBundles ---- */

static void append_pem(struct strbuf *b, const char *pem, size_t len)
{
    if (!strbuf_append(b, pem, len) || (len && pem[len - 1] != '\n' && !strbuf_puts(b, "\n")))
        abort(); /* the buffer has no limit that PEM from a capped Secret can reach */
}

char *webhookcerts_wanted_bundle(const json_t *secret, int64_t now)
{
    struct value ca, prev;
    struct tls_cert_info info;
    struct strbuf b;
    char *out = NULL;

    value_get(secret, WEBHOOKCERTS_CA_CRT, &ca);
    value_get(secret, WEBHOOKCERTS_CA_PREVIOUS, &prev);
    strbuf_init(&b, 4 * (size_t)MAX_VALUE);
    if (!ca.data || tls_cert_info_read(ca.data, ca.len, &info, NULL) != MM_OK)
        goto cleanup;
    tls_cert_info_cleanup(&info);
    append_pem(&b, ca.data, ca.len);
    if (prev.data && tls_cert_info_read(prev.data, prev.len, &info, NULL) == MM_OK) {
        if (info.not_after > now)
            append_pem(&b, prev.data, prev.len);
        tls_cert_info_cleanup(&info);
    }
    out = strbuf_steal(&b);
cleanup:
    strbuf_cleanup(&b);
    value_cleanup(&ca);
    value_cleanup(&prev);
    return out;
}

static const char *find(const char *hay, const char *end, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; p && (size_t)(end - p) >= n; p++)
        if (*p == *needle && !memcmp(p, needle, n))
            return p;
    return NULL;
}

struct der_set {
    unsigned char **der;
    size_t *len;
    size_t n;
    bool bad;
};

static void der_set_cleanup(struct der_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->der[i]);
    free(s->der);
    free(s->len);
    memset(s, 0, sizeof *s);
}

/* The DER of every PEM block of text; s->bad for a block that is not a decodable CERTIFICATE. */
static void der_set_parse(const char *text, size_t len, struct der_set *s)
{
    static const char begin[] = "-----BEGIN ", dashes[] = "-----";
    const char *p = text, *end = text + len;
    memset(s, 0, sizeof *s);
    while (p && (p = find(p, end, begin))) {
        const char *label = p + strlen(begin);
        const char *label_end = find(label, end, dashes);
        if (!label_end || (size_t)(label_end - label) > 64) {
            s->bad = true;
            return;
        }
        char end_marker[96];
        snprintf(end_marker, sizeof end_marker, "-----END %.*s-----", (int)(label_end - label),
                 label);
        const char *body = label_end + strlen(dashes);
        const char *stop = find(body, end, end_marker);
        if (!stop || strncmp(label, "CERTIFICATE-----", 16)) {
            s->bad = true;
            return;
        }
        char *compact = xmalloc((size_t)(stop - body) + 1);
        size_t n = 0;
        for (const char *q = body; q < stop; q++)
            if (*q != '\n' && *q != '\r' && *q != ' ' && *q != '\t')
                compact[n++] = *q;
        size_t dlen = 0;
        unsigned char *der = base64_decode(compact, n, &dlen);
        free(compact);
        if (!der || dlen == 0) {
            free(der);
            s->bad = true;
            return;
        }
        s->der = xrealloc(s->der, (s->n + 1) * sizeof *s->der);
        s->len = xrealloc(s->len, (s->n + 1) * sizeof *s->len);
        s->der[s->n] = der;
        s->len[s->n] = dlen;
        s->n++;
        p = stop + strlen(end_marker);
    }
}

/* Every certificate of a is in b. */
static bool der_subset(const struct der_set *a, const struct der_set *b)
{
    for (size_t i = 0; i < a->n; i++) {
        bool hit = false;
        for (size_t k = 0; k < b->n && !hit; k++)
            hit = a->len[i] == b->len[k] && !memcmp(a->der[i], b->der[k], a->len[i]);
        if (!hit)
            return false;
    }
    return true;
}

bool webhookcerts_pem_set_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    struct der_set sa, sb;
    der_set_parse(a, alen, &sa);
    der_set_parse(b, blen, &sb);
    bool eq = !sa.bad && !sb.bad && der_subset(&sa, &sb) && der_subset(&sb, &sa);
    der_set_cleanup(&sa);
    der_set_cleanup(&sb);
    return eq;
}

/* A caBundle value (base64, Go tolerates line breaks) holds exactly the certificates of wanted. */
static bool bundle_holds(const json_t *value, const char *wanted)
{
    if (!json_is_string(value) || json_string_length(value) == 0 ||
        json_string_length(value) > (size_t)MAX_BUNDLE / 3 * 4 + 4)
        return false;
    const char *s = json_string_value(value);
    size_t slen = json_string_length(value), n = 0, dlen = 0;
    char *compact = xmalloc(slen + 1);
    for (size_t i = 0; i < slen; i++)
        if (s[i] != '\n' && s[i] != '\r')
            compact[n++] = s[i];
    unsigned char *pem = base64_decode(compact, n, &dlen);
    free(compact);
    bool eq = pem && webhookcerts_pem_set_equal((const char *)pem, dlen, wanted, strlen(wanted));
    free(pem);
    return eq;
}

json_t *webhookcerts_bundle_patch(const json_t *whc, const char *ns, const char *svc,
                                  const char *wanted_pem, size_t *matched)
{
    json_t *ops = json_array(), *hook;
    char *b64 = NULL;
    size_t i, m = 0;

    json_array_foreach(json_object_get(whc, "webhooks"), i, hook)
    {
        json_t *cc = json_object_get(hook, "clientConfig");
        json_t *service = json_object_get(cc, "service");
        const char *name = json_string_value(json_object_get(service, "name"));
        const char *namespace = json_string_value(json_object_get(service, "namespace"));
        if (!name || !namespace || strcmp(name, svc) || strcmp(namespace, ns))
            continue;
        m++;
        if (bundle_holds(json_object_get(cc, "caBundle"), wanted_pem))
            continue;
        if (!b64)
            b64 = base64_encode(wanted_pem, strlen(wanted_pem));
        char path[64];
        snprintf(path, sizeof path, "/webhooks/%zu/clientConfig/caBundle", i);
        json_array_append_new(
            ops, json_pack("{s:s, s:s, s:s}", "op", "add", "path", path, "value", b64));
    }
    free(b64);
    if (matched)
        *matched = m;
    if (json_array_size(ops) == 0) {
        json_decref(ops);
        return NULL;
    }
    const char *rv =
        json_string_value(json_object_get(json_object_get(whc, "metadata"), "resourceVersion"));
    if (rv && rv[0])
        json_array_insert_new(ops, 0,
                              json_pack("{s:s, s:s, s:s}", "op", "test", "path",
                                        "/metadata/resourceVersion", "value", rv));
    return ops;
}

/* ---- building the Secret ---- */

static void data_set_pem(json_t *data, const char *key, const char *pem)
{
    char *b64 = base64_encode(pem, strlen(pem));
    json_object_set_new(data, key, json_string(b64));
    free(b64);
}

static void data_copy(json_t *data, const json_t *secret, const char *key)
{
    json_t *v = json_object_get(json_object_get(secret, "data"), key);
    if (json_is_string(v) && json_string_length(v))
        json_object_set_new(data, key, json_string(json_string_value(v)));
}

enum mm_status webhookcerts_secret_build(const struct webhookcerts_config *cfg,
                                         const json_t *secret, enum webhookcerts_action action,
                                         int64_t now, json_t **out, struct mm_error *err)
{
    enum mm_status st = MM_OK;
    struct tls_pem_pair ca, leaf;
    struct value ca_crt, ca_key;
    json_t *data = json_object(), *obj = NULL;

    *out = NULL;
    tls_pem_pair_init(&ca);
    tls_pem_pair_init(&leaf);
    value_get(secret, WEBHOOKCERTS_CA_CRT, &ca_crt);
    value_get(secret, WEBHOOKCERTS_CA_KEY, &ca_key);

    switch (action) {
    case WEBHOOKCERTS_CREATE:
    case WEBHOOKCERTS_REPAIR:
        if ((st = webhookcerts_issue_ca(cfg, now, &ca, err)) ||
            (st = webhookcerts_issue_serving(cfg, &ca, now, &leaf, err)))
            goto cleanup;
        data_set_pem(data, WEBHOOKCERTS_TLS_CRT, leaf.cert);
        data_set_pem(data, WEBHOOKCERTS_TLS_KEY, leaf.key);
        data_set_pem(data, WEBHOOKCERTS_CA_CRT, ca.cert);
        data_set_pem(data, WEBHOOKCERTS_CA_KEY, ca.key);
        break;
    case WEBHOOKCERTS_REPAIR_SERVING:
    case WEBHOOKCERTS_ROTATE_SERVING: {
        if (!ca_crt.data || !ca_key.data) {
            st = mm_error_set(err, MM_ERR_INVALID, WEBHOOKCERTS_CA_CRT,
                              "the Secret has no CA to sign a serving certificate with");
            goto cleanup;
        }
        struct tls_pem_pair cur = {ca_crt.data, ca_key.data};
        if ((st = webhookcerts_issue_serving(cfg, &cur, now, &leaf, err)))
            goto cleanup;
        data_set_pem(data, WEBHOOKCERTS_TLS_CRT, leaf.cert);
        data_set_pem(data, WEBHOOKCERTS_TLS_KEY, leaf.key);
        data_copy(data, secret, WEBHOOKCERTS_CA_CRT);
        data_copy(data, secret, WEBHOOKCERTS_CA_KEY);
        data_copy(data, secret, WEBHOOKCERTS_CA_PREVIOUS);
        break;
    }
    case WEBHOOKCERTS_ROTATE_CA:
        if (!ca_crt.data) {
            st = mm_error_set(err, MM_ERR_INVALID, WEBHOOKCERTS_CA_CRT,
                              "the Secret has no CA to rotate");
            goto cleanup;
        }
        if ((st = webhookcerts_issue_ca(cfg, now, &ca, err)))
            goto cleanup;
        data_copy(data, secret, WEBHOOKCERTS_TLS_CRT);
        data_copy(data, secret, WEBHOOKCERTS_TLS_KEY);
        data_set_pem(data, WEBHOOKCERTS_CA_CRT, ca.cert);
        data_set_pem(data, WEBHOOKCERTS_CA_KEY, ca.key);
        /* the retired CA: its certificate only, trusted until the overlap ends */
        data_set_pem(data, WEBHOOKCERTS_CA_PREVIOUS, ca_crt.data);
        break;
    case WEBHOOKCERTS_DROP_PREVIOUS_CA:
        data_copy(data, secret, WEBHOOKCERTS_TLS_CRT);
        data_copy(data, secret, WEBHOOKCERTS_TLS_KEY);
        data_copy(data, secret, WEBHOOKCERTS_CA_CRT);
        data_copy(data, secret, WEBHOOKCERTS_CA_KEY);
        break;
    case WEBHOOKCERTS_KEEP:
    default:
        st = mm_error_set(err, MM_ERR_INVALID, "action", "nothing to write for \"%s\"",
                          webhookcerts_action_name(action));
        goto cleanup;
    }

    if (secret && json_is_object(secret)) {
        obj = json_deep_copy(secret);
        json_object_del(obj, "stringData");
    } else {
        obj = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:s}", "apiVersion", "v1", "kind",
                        "Secret", "metadata", "name", cfg->secret_name, "namespace", cfg->namespace,
                        "labels", "app.kubernetes.io/name", "meshmetric-operator",
                        "app.kubernetes.io/managed-by", "meshmetric-operator", "type",
                        "kubernetes.io/tls");
    }
    json_object_set(obj, "data", data);
    *out = obj;
cleanup:
    json_decref(data);
    tls_pem_pair_cleanup(&ca);
    tls_pem_pair_cleanup(&leaf);
    value_cleanup(&ca_crt);
    value_cleanup(&ca_key);
    return st;
}

/* ---- files ---- */

static enum mm_status mkdir_parents(const char *path, struct mm_error *err)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    enum mm_status st = MM_OK;
    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; *p; p++) {
            if (*p != '/')
                continue;
            *p = '\0';
            if (mkdir(dir, 0755) != 0 && errno != EEXIST)
                st = mm_error_set(err, MM_ERR_IO, dir, "cannot create the directory: %s",
                                  strerror(errno));
            *p = '/';
            if (st)
                goto out;
        }
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            st = mm_error_set(err, MM_ERR_IO, dir, "cannot create the directory: %s",
                              strerror(errno));
    }
out:
    free(dir);
    return st;
}

/* Write data to tmp (mode exact), fsync. */
static enum mm_status write_temp(const char *tmp, const char *path, const char *data, size_t len,
                                 mode_t mode, struct mm_error *err)
{
    enum mm_status st = MM_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return mm_error_set(err, MM_ERR_IO, path, "cannot create %s: %s", tmp, strerror(errno));
    if (fchmod(fd, mode) != 0) {
        st = mm_error_set(err, MM_ERR_IO, path, "cannot chmod %s: %s", tmp, strerror(errno));
        goto out;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            st = mm_error_set(err, MM_ERR_IO, path, "cannot write %s: %s", tmp, strerror(errno));
            goto out;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0)
        st = mm_error_set(err, MM_ERR_IO, path, "cannot sync %s: %s", tmp, strerror(errno));
out:
    if (close(fd) != 0 && st == MM_OK)
        st = mm_error_set(err, MM_ERR_IO, path, "cannot close %s: %s", tmp, strerror(errno));
    return st;
}

static void sync_dir_of(const char *path)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

enum mm_status webhookcerts_write_pair(const char *cert_path, const char *cert, size_t cert_len,
                                       const char *key_path, const char *key, size_t key_len,
                                       struct mm_error *err)
{
    enum mm_status st;
    char *cert_tmp = xasprintf("%s.tmp.%ld", cert_path, (long)getpid());
    char *key_tmp = xasprintf("%s.tmp.%ld", key_path, (long)getpid());

    if ((st = mkdir_parents(cert_path, err)) || (st = mkdir_parents(key_path, err)) ||
        (st = write_temp(cert_tmp, cert_path, cert, cert_len, 0644, err)) ||
        (st = write_temp(key_tmp, key_path, key, key_len, 0600, err)))
        goto cleanup;
    /* Back to back, certificate first: see the header. */
    if (rename(cert_tmp, cert_path) != 0) {
        st = mm_error_set(err, MM_ERR_IO, cert_path, "cannot rename into place: %s",
                          strerror(errno));
        goto cleanup;
    }
    if (rename(key_tmp, key_path) != 0) {
        st =
            mm_error_set(err, MM_ERR_IO, key_path, "cannot rename into place: %s", strerror(errno));
        goto cleanup;
    }
    sync_dir_of(cert_path);
    if (strcmp(cert_path, key_path))
        sync_dir_of(key_path);
cleanup:
    if (st) {
        unlink(cert_tmp);
        unlink(key_tmp);
    }
    free(cert_tmp);
    free(key_tmp);
    return st;
}

/* ---- the manager ---- */

struct webhookcerts {
    struct k8s_client *client;
    struct webhookcerts_config cfg; /* strings point to the copies below */
    char *ns, *secret_name, *service, *mutating, *validating, *cert_path, *key_path;
    struct k8s_cancel *cancel;
    struct k8s_reflector *reflector;

    pthread_mutex_t lock; /* everything below up to the loop-thread-only part */
    pthread_cond_t wake;  /* kicks and stop, for the manager thread */
    pthread_cond_t ready_cond;
    bool kicked, stopping, started, running; /* running: the thread is to be joined */
    json_t *observed;    /* the Secret as the reflector last saw it (our own deep copy) */
    bool observed_known; /* the reflector listed at least once */
    struct webhookcerts_stats stats;
    pthread_t thread;
    atomic_bool ready;

    /* reflector thread only */
    json_t *pending; /* the Secret of a list in progress */

    /* manager thread only (or the caller of webhookcerts_reconcile) */
    uint8_t files_hash[32];
    bool files_done;
    uint8_t trust_hash[32];   /* sha256 of the ca.crt that trusted_since refers to */
    int64_t trusted_since;    /* 0: not known */
    bool missing_logged[2];   /* a webhook configuration was not found */
    bool unmatched_logged[2]; /* a webhook configuration has no webhook for our service */
    char unusable_logged[400];
    uint64_t backoff_ms;
};

enum mm_status webhookcerts_create(struct k8s_client *client, const struct webhookcerts_config *cfg,
                                   struct webhookcerts **out, struct mm_error *err)
{
    *out = NULL;
    enum mm_status st = webhookcerts_config_validate(cfg, err);
    if (st)
        return st;
    struct webhookcerts *wc = xcalloc(1, sizeof *wc);
    wc->client = client;
    wc->cfg = *cfg;
    wc->cfg.namespace = wc->ns = xstrdup(cfg->namespace);
    wc->cfg.secret_name = wc->secret_name = xstrdup(cfg->secret_name);
    wc->cfg.service_name = wc->service = xstrdup(cfg->service_name);
    wc->cfg.mutating_name = wc->mutating = xstrdup(cfg->mutating_name ? cfg->mutating_name : "");
    wc->cfg.validating_name = wc->validating =
        xstrdup(cfg->validating_name ? cfg->validating_name : "");
    wc->cfg.cert_path = wc->cert_path = xstrdup(cfg->cert_path);
    wc->cfg.key_path = wc->key_path = xstrdup(cfg->key_path);
    wc->cancel = k8s_cancel_create();
    pthread_mutex_init(&wc->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wc->wake, &ca);
    pthread_cond_init(&wc->ready_cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&wc->ready, false);
    *out = wc;
    return MM_OK;
}

static void count(struct webhookcerts *wc, uint64_t *counter)
{
    pthread_mutex_lock(&wc->lock);
    (*counter)++;
    pthread_mutex_unlock(&wc->lock);
}

static bool acting(const struct webhookcerts *wc)
{
    return !wc->cfg.is_leader || wc->cfg.is_leader(wc->cfg.leader_ctx);
}

static struct k8s_call_opts call_opts(struct webhookcerts *wc)
{
    struct k8s_call_opts o = {.cancel = wc->cancel, .field_manager = "meshmetric-operator"};
    return o;
}

/* GET the Secret: *out NULL when it does not exist. */
static enum mm_status read_secret(struct webhookcerts *wc, json_t **out, struct k8s_error *kerr)
{
    struct k8s_call_opts o = call_opts(wc);
    *out = NULL;
    enum mm_status st =
        k8s_get(wc->client, &secrets_res, wc->ns, wc->secret_name, NULL, &o, out, kerr);
    if (st == MM_ERR_NOT_FOUND) {
        *out = NULL;
        return MM_OK;
    }
    return st;
}

static void ca_hash(const json_t *secret, uint8_t out[32])
{
    struct value ca;
    value_get(secret, WEBHOOKCERTS_CA_CRT, &ca);
    sha256(ca.data ? ca.data : "", ca.len, out);
    value_cleanup(&ca);
}

/* trusted_since for this Secret's ca.crt (0 when what we checked was another CA). */
static int64_t trust_for(const struct webhookcerts *wc, const json_t *secret)
{
    uint8_t h[32];
    if (!wc->trusted_since)
        return 0;
    ca_hash(secret, h);
    return memcmp(h, wc->trust_hash, sizeof h) ? 0 : wc->trusted_since;
}

static void log_error(const char *msg, const char *name, const struct k8s_error *kerr)
{
    log_kv(LOG_WARN, msg, "name", name, "error", kerr->base.message, NULL);
}

/*
 * Bring one webhook configuration's caBundles to wanted. *trusted is false
 * when it could not be checked or written (a missing configuration trusts,
 * since nothing calls us through it).
 */
static enum mm_status sync_one(struct webhookcerts *wc, int which, const char *wanted,
                               bool *trusted, struct mm_error *err)
{
    const struct k8s_resource *res = which == 0 ? &mutating_res : &validating_res;
    const char *name = which == 0 ? wc->mutating : wc->validating;
    const char *kind =
        which == 0 ? "MutatingWebhookConfiguration" : "ValidatingWebhookConfiguration";
    struct k8s_error kerr = K8S_ERROR_INIT;
    struct k8s_call_opts o = call_opts(wc);
    enum mm_status st = MM_OK;
    json_t *whc = NULL, *patch = NULL;

    *trusted = false;
    if (!name[0]) {
        *trusted = true;
        return MM_OK;
    }
    for (int attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
        json_decref(whc);
        json_decref(patch);
        whc = patch = NULL;
        st = k8s_get(wc->client, res, NULL, name, NULL, &o, &whc, &kerr);
        if (st == MM_ERR_NOT_FOUND) {
            if (!wc->missing_logged[which])
                log_kv(LOG_WARN,
                       "webhook configuration not found; its caBundle will be set "
                       "once it exists",
                       "kind", kind, "name", name, NULL);
            wc->missing_logged[which] = true;
            *trusted = true;
            st = MM_OK;
            goto out;
        }
        if (st) {
            log_error("cannot read the webhook configuration", name, &kerr);
            goto failed;
        }
        wc->missing_logged[which] = false;
        size_t matched = 0;
        patch = webhookcerts_bundle_patch(whc, wc->ns, wc->service, wanted, &matched);
        if (matched == 0) {
            if (!wc->unmatched_logged[which]) {
                char svc[2 * NAME_MAX_LEN];
                snprintf(svc, sizeof svc, "%s/%s", wc->ns, wc->service);
                log_kv(LOG_WARN, "webhook configuration has no webhook for our service; left alone",
                       "kind", kind, "name", name, "service", svc, NULL);
            }
            wc->unmatched_logged[which] = true;
            *trusted = true;
            goto out;
        }
        wc->unmatched_logged[which] = false;
        if (!patch) { /* already right: no write */
            *trusted = true;
            goto out;
        }
        st = k8s_patch(wc->client, res, NULL, name, NULL, K8S_PATCH_JSON, patch, &o, NULL, &kerr);
        if (st == MM_OK) {
            char n[32];
            snprintf(n, sizeof n, "%zu", json_array_size(patch) - 1);
            log_kv(LOG_INFO, "caBundle updated", "kind", kind, "name", name, "webhooks", n, NULL);
            count(wc, &wc->stats.bundle_updates);
            *trusted = true;
            goto out;
        }
        /* 409, or 422 from the failed resourceVersion test: someone else wrote it; read again */
        if (st == MM_ERR_CONFLICT || st == MM_ERR_INVALID) {
            count(wc, &wc->stats.conflicts);
            LOG(LOG_DEBUG, "%s %s changed while we patched it (%s); reading it again", kind, name,
                kerr.base.message);
            continue;
        }
        log_error("cannot patch the webhook configuration's caBundle", name, &kerr);
        goto failed;
    }
    log_error("giving up on the caBundle until the next pass", name, &kerr);
failed:
    if (st == MM_OK)
        st = MM_ERR_CONFLICT;
    mm_error_set(err, st, name, "%s %s: %s", kind, name, kerr.base.message);
    if (st != MM_ERR_CANCELLED)
        count(wc, &wc->stats.errors);
out:
    json_decref(whc);
    json_decref(patch);
    k8s_error_cleanup(&kerr);
    return st;
}

/* Both caBundles to the Secret's CA set; updates trusted_since. */
static enum mm_status sync_bundles(struct webhookcerts *wc, const json_t *secret,
                                   struct mm_error *err)
{
    int64_t now = cfg_now(&wc->cfg);
    char *wanted = webhookcerts_wanted_bundle(secret, now);
    enum mm_status st = MM_OK, st1;
    bool all = true, t;
    if (!wanted)
        return MM_OK; /* no usable CA yet: the Secret is repaired first */
    for (int which = 0; which < 2; which++) {
        st1 = sync_one(wc, which, wanted, &t, err);
        all = all && t;
        if (st1 && !st)
            st = st1;
    }
    free(wanted);
    uint8_t h[32];
    ca_hash(secret, h);
    if (!all) {
        wc->trusted_since = 0;
    } else if (!wc->trusted_since || memcmp(h, wc->trust_hash, sizeof h)) {
        wc->trusted_since = now;
        memcpy(wc->trust_hash, h, sizeof h);
    }
    return st;
}

static void log_decision(const struct webhookcerts_decision *d)
{
    enum log_level lvl =
        d->action == WEBHOOKCERTS_REPAIR || d->action == WEBHOOKCERTS_REPAIR_SERVING ? LOG_WARN
                                                                                     : LOG_INFO;
    log_kv(lvl, "webhook certificate Secret needs a change", "action",
           webhookcerts_action_name(d->action), "reason", d->reason, NULL);
}

static void count_action(struct webhookcerts *wc, enum webhookcerts_action a)
{
    pthread_mutex_lock(&wc->lock);
    switch (a) {
    case WEBHOOKCERTS_CREATE:
        wc->stats.creations++;
        break;
    case WEBHOOKCERTS_REPAIR:
    case WEBHOOKCERTS_REPAIR_SERVING:
        wc->stats.repairs++;
        break;
    case WEBHOOKCERTS_ROTATE_SERVING:
        wc->stats.rotations++;
        break;
    case WEBHOOKCERTS_ROTATE_CA:
        wc->stats.ca_rotations++;
        break;
    case WEBHOOKCERTS_DROP_PREVIOUS_CA:
        wc->stats.previous_dropped++;
        break;
    case WEBHOOKCERTS_KEEP:
        break;
    }
    pthread_mutex_unlock(&wc->lock);
}

static void log_written(const json_t *stored, enum webhookcerts_action a)
{
    struct value crt, ca;
    struct tls_cert_info li, ci;
    char na[K8S_MICROTIME_LEN] = "", cna[K8S_MICROTIME_LEN] = "";
    value_get(stored, WEBHOOKCERTS_TLS_CRT, &crt);
    value_get(stored, WEBHOOKCERTS_CA_CRT, &ca);
    tls_cert_info_init(&li);
    tls_cert_info_init(&ci);
    if (crt.data && tls_cert_info_read(crt.data, crt.len, &li, NULL) == MM_OK)
        fmt_time(li.not_after, na);
    if (ca.data && tls_cert_info_read(ca.data, ca.len, &ci, NULL) == MM_OK)
        fmt_time(ci.not_after, cna);
    const char *rv =
        json_string_value(json_object_get(json_object_get(stored, "metadata"), "resourceVersion"));
    log_kv(LOG_INFO, "webhook certificate Secret written", "action", webhookcerts_action_name(a),
           "serial", li.serial, "not_after", na, "ca_serial", ci.serial, "ca_not_after", cna,
           "resource_version", rv ? rv : "", NULL);
    tls_cert_info_cleanup(&li);
    tls_cert_info_cleanup(&ci);
    value_cleanup(&crt);
    value_cleanup(&ca);
}

/*
 * The acting replica's half of a pass: read the Secret, bring the caBundles to
 * it (so the trust used for a staged switch is fresh), decide and write
 * (conditionally, re-reading after a 409), then the caBundles again when the
 * Secret changed. *stored gets the Secret as stored (NULL: none);
 * *next_check when the decision changes by itself.
 */
static enum mm_status act(struct webhookcerts *wc, json_t **stored, int64_t *next_check,
                          struct mm_error *err)
{
    struct k8s_error kerr = K8S_ERROR_INIT;
    struct k8s_call_opts o = call_opts(wc);
    struct webhookcerts_decision d;
    json_t *secret = NULL, *body = NULL, *written = NULL;
    enum mm_status st, first = MM_OK;
    bool wrote = false; /* the Secret changed since the first caBundle sync */

    *stored = NULL;
    *next_check = 0;
    if ((st = read_secret(wc, &secret, &kerr))) {
        log_kv(LOG_WARN, "cannot read the webhook certificate Secret", "name", wc->secret_name,
               "error", kerr.base.message, NULL);
        mm_error_set(err, st, wc->secret_name, "%s", kerr.base.message);
        if (st != MM_ERR_CANCELLED)
            count(wc, &wc->stats.errors);
        goto out;
    }
    if (secret && (st = sync_bundles(wc, secret, err)) && !first)
        first = st;
    for (int attempt = 0;; attempt++) {
        int64_t now = cfg_now(&wc->cfg);
        webhookcerts_decide(&wc->cfg, secret, now, trust_for(wc, secret), &d);
        if (d.action == WEBHOOKCERTS_KEEP)
            break;
        if (attempt >= MAX_WRITE_ATTEMPTS) {
            st = mm_error_set(err, MM_ERR_CONFLICT, wc->secret_name,
                              "the Secret kept changing; %s postponed to the next pass",
                              webhookcerts_action_name(d.action));
            log_kv(LOG_WARN, "webhook certificate Secret kept changing; trying again later",
                   "action", webhookcerts_action_name(d.action), NULL);
            count(wc, &wc->stats.errors);
            goto out;
        }
        log_decision(&d);
        json_decref(body);
        body = NULL;
        if ((st = webhookcerts_secret_build(&wc->cfg, secret, d.action, now, &body, err))) {
            log_kv(LOG_ERROR, "cannot build the webhook certificate Secret", "error", err->message,
                   NULL);
            count(wc, &wc->stats.errors);
            goto out;
        }
        if (secret)
            st = k8s_update(wc->client, &secrets_res, wc->ns, wc->secret_name, NULL, body, &o,
                            &written, &kerr);
        else
            st = k8s_create(wc->client, &secrets_res, wc->ns, body, &o, &written, &kerr);
        if (st == MM_OK) {
            count_action(wc, d.action);
            log_written(written, d.action);
            json_decref(secret);
            secret = written;
            written = NULL;
            wrote = true;
            continue;
        }
        json_decref(written);
        written = NULL;
        if (st == MM_ERR_CONFLICT) {
            /* Another replica wrote first: use what it wrote, decide again. */
            count(wc, &wc->stats.conflicts);
            log_kv(LOG_INFO,
                   secret ? "the Secret changed since it was read (another replica?); reading it "
                            "again"
                          : "another replica created the Secret first; using theirs",
                   "name", wc->secret_name, NULL);
            json_decref(secret);
            secret = NULL;
            wrote = true; /* not by us, but the bundles must follow what is there now */
            if ((st = read_secret(wc, &secret, &kerr))) {
                mm_error_set(err, st, wc->secret_name, "%s", kerr.base.message);
                count(wc, &wc->stats.errors);
                goto out;
            }
            continue;
        }
        log_kv(LOG_WARN, "cannot write the webhook certificate Secret", "name", wc->secret_name,
               "action", webhookcerts_action_name(d.action), "error", kerr.base.message, NULL);
        mm_error_set(err, st, wc->secret_name, "%s", kerr.base.message);
        if (st != MM_ERR_CANCELLED)
            count(wc, &wc->stats.errors);
        goto out;
    }
    if (wrote && secret && (st = sync_bundles(wc, secret, err)) && !first)
        first = st;
    /* when the decision changes by itself, with the trust just established */
    webhookcerts_decide(&wc->cfg, secret, cfg_now(&wc->cfg), trust_for(wc, secret), &d);
    *next_check = d.action == WEBHOOKCERTS_KEEP ? d.next_check : cfg_now(&wc->cfg);
    st = first;
out:
    *stored = secret;
    if (st == MM_OK)
        st = first;
    json_decref(body);
    k8s_error_cleanup(&kerr);
    return st;
}

/* Two files hold exactly cert and key. */
static bool files_hold(const struct webhookcerts *wc, const struct value *crt,
                       const struct value *key)
{
    const char *paths[2] = {wc->cert_path, wc->key_path};
    const struct value *want[2] = {crt, key};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f)
            return false;
        char *buf = xmalloc(want[i]->len + 1);
        size_t n = fread(buf, 1, want[i]->len + 1, f);
        fclose(f);
        bool same = n == want[i]->len && !memcmp(buf, want[i]->data, n);
        OPENSSL_cleanse(buf, want[i]->len + 1);
        free(buf);
        if (!same)
            return false;
    }
    return true;
}

static void note_unusable(struct webhookcerts *wc, const char *reason)
{
    if (!strcmp(wc->unusable_logged, reason))
        return;
    snprintf(wc->unusable_logged, sizeof wc->unusable_logged, "%s", reason);
    log_kv(LOG_WARN, "the Secret's serving certificate is unusable; keeping the current files",
           "reason", reason, NULL);
    count(wc, &wc->stats.errors);
}

/* Every replica: the files follow the Secret's serving pair when it is usable. */
static enum mm_status sync_files(struct webhookcerts *wc, const json_t *secret,
                                 struct mm_error *err)
{
    struct value crt, key, ca;
    struct tls_cert_info info, ca_info;
    struct mm_error e;
    enum mm_status st = MM_OK;
    uint8_t hash[32];

    if (!secret)
        return MM_OK; /* keep what the files hold; the acting replica recreates it */
    value_get(secret, WEBHOOKCERTS_TLS_CRT, &crt);
    value_get(secret, WEBHOOKCERTS_TLS_KEY, &key);
    value_get(secret, WEBHOOKCERTS_CA_CRT, &ca);
    tls_cert_info_init(&info);
    tls_cert_info_init(&ca_info);
    mm_error_clear(&e);
    if (!crt.data || !key.data) {
        char why[128];
        snprintf(why, sizeof why, "%s %s", !crt.data ? WEBHOOKCERTS_TLS_CRT : WEBHOOKCERTS_TLS_KEY,
                 value_problem(!crt.data ? &crt : &key));
        note_unusable(wc, why);
        goto out;
    }
    /* Only a pair the acting replica would keep: never one it is about to repair (wrong SANs,
       another CA, a broken CA), which the API server would not trust. */
    struct webhookcerts_decision d;
    webhookcerts_decide(&wc->cfg, secret, cfg_now(&wc->cfg), 0, &d);
    if (d.action == WEBHOOKCERTS_REPAIR || d.action == WEBHOOKCERTS_REPAIR_SERVING) {
        note_unusable(wc, d.reason);
        goto out;
    }
    if (tls_pair_check(crt.data, crt.len, key.data, key.len, cfg_now(&wc->cfg), &info, &e)) {
        note_unusable(wc, e.message);
        goto out;
    }
    wc->unusable_logged[0] = '\0';
    {
        char *both = xmalloc(crt.len + key.len + 1);
        memcpy(both, crt.data, crt.len);
        both[crt.len] = '\0';
        memcpy(both + crt.len + 1, key.data, key.len);
        sha256(both, crt.len + key.len + 1, hash);
        OPENSSL_cleanse(both, crt.len + key.len + 1);
        free(both);
    }
    if (wc->files_done && !memcmp(hash, wc->files_hash, sizeof hash))
        goto out;
    bool wrote = false;
    if (!files_hold(wc, &crt, &key)) {
        if ((st = webhookcerts_write_pair(wc->cert_path, crt.data, crt.len, wc->key_path, key.data,
                                          key.len, err))) {
            log_kv(LOG_ERROR, "cannot write the serving certificate files", "error", err->message,
                   NULL);
            count(wc, &wc->stats.errors);
            goto out;
        }
        wrote = true;
    }
    memcpy(wc->files_hash, hash, sizeof hash);
    wc->files_done = true;
    if (ca.data && tls_cert_info_read(ca.data, ca.len, &ca_info, NULL) != MM_OK)
        tls_cert_info_init(&ca_info);
    char na[K8S_MICROTIME_LEN];
    fmt_time(info.not_after, na);
    log_kv(LOG_INFO,
           wrote ? "serving certificate files written" : "serving certificate files up to date",
           "file", wc->cert_path, "serial", info.serial, "not_after", na, NULL);
    pthread_mutex_lock(&wc->lock);
    if (wrote)
        wc->stats.file_writes++;
    wc->stats.not_after = info.not_after;
    wc->stats.ca_not_after = ca_info.not_after;
    wc->stats.ready = true;
    atomic_store(&wc->ready, true);
    pthread_cond_broadcast(&wc->ready_cond);
    pthread_mutex_unlock(&wc->lock);
out:
    tls_cert_info_cleanup(&info);
    tls_cert_info_cleanup(&ca_info);
    value_cleanup(&crt);
    value_cleanup(&key);
    value_cleanup(&ca);
    return st;
}

/* One pass; returns when the next one is due (ms from now). */
static uint64_t pass(struct webhookcerts *wc, enum mm_status *status, struct mm_error *err)
{
    struct k8s_error kerr = K8S_ERROR_INIT;
    json_t *stored = NULL, *src = NULL;
    int64_t next_check = 0;
    enum mm_status st = MM_OK, st1;
    bool act_now = acting(wc);

    count(wc, &wc->stats.passes);
    if (act_now)
        st = act(wc, &stored, &next_check, err);
    if (wc->reflector) {
        pthread_mutex_lock(&wc->lock);
        src = wc->observed ? json_deep_copy(wc->observed) : NULL;
        pthread_mutex_unlock(&wc->lock);
    } else if (act_now) {
        src = json_incref(stored);
    } else if ((st1 = read_secret(wc, &src, &kerr))) {
        mm_error_set(err, st1, wc->secret_name, "%s", kerr.base.message);
        if (!st)
            st = st1;
    }
    struct mm_error ferr;
    mm_error_clear(&ferr);
    if ((st1 = sync_files(wc, src, &ferr)) && !st) {
        st = st1;
        if (err)
            *err = ferr;
    }
    json_decref(stored);
    json_decref(src);
    k8s_error_cleanup(&kerr);
    *status = st;

    uint64_t wait = wc->cfg.resync_ms;
    if (st != MM_OK && st != MM_ERR_CANCELLED) {
        wc->backoff_ms = wc->backoff_ms ? wc->backoff_ms * 2 : 1000;
        if (wc->backoff_ms > 30000)
            wc->backoff_ms = 30000;
        if (wc->backoff_ms < wait)
            wait = wc->backoff_ms;
    } else {
        wc->backoff_ms = 0;
    }
    if (next_check > 0) {
        int64_t now = cfg_now(&wc->cfg);
        uint64_t due = next_check > now ? (uint64_t)(next_check - now) * 1000 + 100 : 100;
        if (due < wait)
            wait = due;
    }
    return wait;
}

enum mm_status webhookcerts_reconcile(struct webhookcerts *wc, struct mm_error *err)
{
    enum mm_status st;
    mm_error_clear(err);
    (void)pass(wc, &st, err);
    return st;
}

static void *loop_main(void *arg)
{
    struct webhookcerts *wc = arg;
    for (;;) {
        pthread_mutex_lock(&wc->lock);
        bool stop = wc->stopping;
        wc->kicked = false;
        pthread_mutex_unlock(&wc->lock);
        if (stop)
            break;
        struct mm_error err;
        enum mm_status st;
        mm_error_clear(&err);
        uint64_t wait = pass(wc, &st, &err);

        struct timespec deadline = mono_deadline(wait);
        pthread_mutex_lock(&wc->lock);
        while (!wc->kicked && !wc->stopping) {
            if (pthread_cond_timedwait(&wc->wake, &wc->lock, &deadline) == ETIMEDOUT)
                break;
        }
        pthread_mutex_unlock(&wc->lock);
    }
    return NULL;
}

void webhookcerts_kick(struct webhookcerts *wc)
{
    if (!wc)
        return;
    pthread_mutex_lock(&wc->lock);
    wc->kicked = true;
    pthread_cond_signal(&wc->wake);
    pthread_mutex_unlock(&wc->lock);
}

/* ---- the reflector's handler (its thread) ---- */

static bool is_ours(const struct webhookcerts *wc, const json_t *obj)
{
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    return name && !strcmp(name, wc->secret_name);
}

/* Replace the observed Secret with a private copy of obj (NULL: absent) and kick. */
static void observe(struct webhookcerts *wc, json_t *copy)
{
    pthread_mutex_lock(&wc->lock);
    json_decref(wc->observed);
    wc->observed = copy;
    wc->observed_known = true;
    wc->kicked = true;
    pthread_cond_signal(&wc->wake);
    pthread_mutex_unlock(&wc->lock);
}

static void on_replace_begin(void *ctx)
{
    struct webhookcerts *wc = ctx;
    json_decref(wc->pending);
    wc->pending = NULL;
}

static void on_replace_item(void *ctx, json_t *obj)
{
    struct webhookcerts *wc = ctx;
    if (!is_ours(wc, obj))
        return;
    json_decref(wc->pending);
    wc->pending = json_deep_copy(obj);
}

static void on_replace_end(void *ctx, const char *rv)
{
    struct webhookcerts *wc = ctx;
    (void)rv;
    json_t *copy = wc->pending;
    wc->pending = NULL;
    observe(wc, copy);
}

static void on_replace_abort(void *ctx)
{
    on_replace_begin(ctx);
}

static void on_upsert(void *ctx, json_t *obj)
{
    struct webhookcerts *wc = ctx;
    if (is_ours(wc, obj))
        observe(wc, json_deep_copy(obj));
}

static void on_delete(void *ctx, json_t *obj)
{
    struct webhookcerts *wc = ctx;
    if (is_ours(wc, obj)) {
        log_kv(LOG_WARN, "the webhook certificate Secret was deleted", "name", wc->secret_name,
               NULL);
        observe(wc, NULL);
    }
}

enum mm_status webhookcerts_start(struct webhookcerts *wc, struct mm_error *err)
{
    pthread_mutex_lock(&wc->lock);
    bool busy = wc->started || wc->stopping;
    wc->started = true;
    pthread_mutex_unlock(&wc->lock);
    if (busy)
        return mm_error_set(err, MM_ERR_INVALID, "",
                            "the webhook certificate manager was already started (or stopped)");

    char selector[NAME_MAX_LEN + 16];
    snprintf(selector, sizeof selector, "metadata.name=%s", wc->secret_name);
    struct k8s_reflector_options ro;
    k8s_reflector_options_init(&ro);
    ro.name = "webhook-certificate-secret";
    ro.namespace = wc->ns;
    ro.field_selector = selector;
    struct k8s_reflector_handler h = {
        .ctx = wc,
        .replace_begin = on_replace_begin,
        .replace_item = on_replace_item,
        .replace_end = on_replace_end,
        .replace_abort = on_replace_abort,
        .add = on_upsert,
        .update = on_upsert,
        .delete = on_delete,
    };
    enum mm_status st =
        k8s_reflector_create(wc->client, &secrets_res, &ro, &h, &wc->reflector, err);
    if (st == MM_OK && (st = k8s_reflector_start(wc->reflector, err)) == MM_OK &&
        pthread_create(&wc->thread, NULL, loop_main, wc) != 0)
        st = mm_error_set(err, MM_ERR_INTERNAL, "",
                          "cannot start the webhook certificate manager's thread");
    pthread_mutex_lock(&wc->lock);
    wc->running = st == MM_OK;
    wc->started = st == MM_OK;
    pthread_mutex_unlock(&wc->lock);
    if (st) {
        k8s_reflector_free(wc->reflector);
        wc->reflector = NULL;
    }
    return st;
}

void webhookcerts_stop(struct webhookcerts *wc)
{
    if (!wc)
        return;
    pthread_mutex_lock(&wc->lock);
    bool join = wc->running;
    wc->running = false;
    wc->stopping = true;
    pthread_cond_signal(&wc->wake);
    pthread_cond_broadcast(&wc->ready_cond);
    pthread_mutex_unlock(&wc->lock);
    k8s_cancel_fire(wc->cancel);
    if (join)
        pthread_join(wc->thread, NULL);
    if (wc->reflector)
        k8s_reflector_stop(wc->reflector);
}

void webhookcerts_free(struct webhookcerts *wc)
{
    if (!wc)
        return;
    webhookcerts_stop(wc);
    k8s_reflector_free(wc->reflector);
    json_decref(wc->observed);
    json_decref(wc->pending);
    k8s_cancel_free(wc->cancel);
    pthread_cond_destroy(&wc->wake);
    pthread_cond_destroy(&wc->ready_cond);
    pthread_mutex_destroy(&wc->lock);
    free(wc->ns);
    free(wc->secret_name);
    free(wc->service);
    free(wc->mutating);
    free(wc->validating);
    free(wc->cert_path);
    free(wc->key_path);
    free(wc);
}

bool webhookcerts_ready(const struct webhookcerts *wc)
{
    return wc && atomic_load(&((struct webhookcerts *)(uintptr_t)wc)->ready);
}

bool webhookcerts_wait_ready(struct webhookcerts *wc, uint64_t timeout_ms)
{
    struct timespec deadline = mono_deadline(timeout_ms);
    pthread_mutex_lock(&wc->lock);
    while (!atomic_load(&wc->ready) && !wc->stopping)
        if (pthread_cond_timedwait(&wc->ready_cond, &wc->lock, &deadline) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&wc->lock);
    return webhookcerts_ready(wc);
}

void webhookcerts_stats(const struct webhookcerts *cwc, struct webhookcerts_stats *out)
{
    struct webhookcerts *wc = (struct webhookcerts *)(uintptr_t)cwc;
    pthread_mutex_lock(&wc->lock);
    *out = wc->stats;
    pthread_mutex_unlock(&wc->lock);
}
