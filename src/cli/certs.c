/*
 * meshmetric-operator certs: a CA and a webhook serving certificate for
 * <service>.<namespace>.svc, written in the layout of a kubernetes.io/tls
 * Secret (tls.crt, tls.key) plus ca.crt; prints the base64 caBundle.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "tls/tls.h"
#include "util/base64.h"
#include "util/config.h"
#include "util/fileio.h"
#include "util/xalloc.h"

struct certs_config {
    char *service;
    char *namespace;
    char *out;
    long days;
    long ca_days;
    bool rsa;
    struct config_list extra_san;
    char *ca_cert;
    char *ca_key;
    char *cluster_domain;
};

static const struct config_option certs_options[] = {
    {"service", 's', "MM_WEBHOOK_SERVICE", CONFIG_STRING, NULL,
     "name of the webhook Service (required)", offsetof(struct certs_config, service), 0, 0},
    {"namespace", 'n', "MM_NAMESPACE", CONFIG_STRING, NULL,
     "namespace of the webhook Service (required)", offsetof(struct certs_config, namespace), 0, 0},
    {"out", 'o', NULL, CONFIG_STRING, NULL,
     "directory to write ca.crt, tls.crt and tls.key to (created if missing; required)",
     offsetof(struct certs_config, out), 0, 0},
    {"days", 0, NULL, CONFIG_INT, "365", "validity of the serving certificate in days",
     offsetof(struct certs_config, days), 1, 36500},
    {"ca-days", 0, NULL, CONFIG_INT, "3650", "validity of a generated CA in days",
     offsetof(struct certs_config, ca_days), 1, 36500},
    {"rsa", 0, NULL, CONFIG_BOOL, "false",
     "RSA-2048 keys instead of ECDSA P-256 (P-256 handshakes are much cheaper under GnuTLS)",
     offsetof(struct certs_config, rsa), 0, 0},
    {"extra-san", 0, NULL, CONFIG_LIST, NULL,
     "another DNS name or IP address for the serving certificate (repeatable)",
     offsetof(struct certs_config, extra_san), 0, 0},
    {"ca-cert", 0, NULL, CONFIG_STRING, NULL,
     "sign with this existing CA certificate (PEM) instead of generating a CA",
     offsetof(struct certs_config, ca_cert), 0, 0},
    {"ca-key", 0, NULL, CONFIG_STRING, NULL, "the key of --ca-cert (PEM)",
     offsetof(struct certs_config, ca_key), 0, 0},
    {"cluster-domain", 0, "MM_CLUSTER_DOMAIN", CONFIG_STRING, "cluster.local",
     "cluster DNS domain for the <svc>.<ns>.svc.<domain> SAN",
     offsetof(struct certs_config, cluster_domain), 0, 0},
};
#define N_CERTS_OPTIONS (sizeof certs_options / sizeof *certs_options)

static const char certs_usage[] =
    "Usage: meshmetric-operator certs --service NAME --namespace NS --out DIR [options]\n\n"
    "Writes ca.crt, tls.crt and tls.key (mode 0600; and ca.key when a CA is generated)\n"
    "with SANs NAME, NAME.NS, NAME.NS.svc and NAME.NS.svc.<cluster-domain>, and prints\n"
    "the base64 caBundle for the webhook configuration on stdout.";

static int fail(const struct mm_error *err)
{
    char buf[1100];
    fprintf(stderr, "meshmetric-operator certs: %s\n", mm_error_str(err, buf, sizeof buf));
    return err->code == MM_ERR_INVALID ? 2 : 1;
}

static enum mm_status write_in(const char *dir, const char *name, const char *data, unsigned mode,
                               struct mm_error *err)
{
    char *path = xasprintf("%s/%s", dir, name);
    enum mm_status st = tls_write_file(path, data, strlen(data), mode, err);
    free(path);
    return st;
}

int cli_certs(int argc, char **argv)
{
    struct certs_config cfg;
    struct mm_error err;
    struct tls_pem_pair ca, leaf;
    char **names = NULL;
    size_t n_names = 0;
    char *bundle = NULL;
    bool help = false;
    int rc = 0;

    memset(&cfg, 0, sizeof cfg);
    mm_error_clear(&err);
    tls_pem_pair_init(&ca);
    tls_pem_pair_init(&leaf);
    if (config_parse(certs_options, N_CERTS_OPTIONS, &cfg, argc, argv, NULL, &help, &err)) {
        rc = fail(&err);
        goto cleanup;
    }
    if (help) {
        config_print_help(stdout, certs_usage, certs_options, N_CERTS_OPTIONS);
        goto cleanup;
    }
    const char *missing = !cfg.service || !*cfg.service       ? "service"
                          : !cfg.namespace || !*cfg.namespace ? "namespace"
                          : !cfg.out || !*cfg.out             ? "out"
                                                              : NULL;
    if (missing) {
        mm_error_set(&err, MM_ERR_INVALID, missing, "--%s is required (see --help)", missing);
        rc = fail(&err);
        goto cleanup;
    }
    if (!cfg.ca_cert != !cfg.ca_key) {
        mm_error_set(&err, MM_ERR_INVALID, "ca-cert", "--ca-cert and --ca-key go together");
        rc = fail(&err);
        goto cleanup;
    }
    if (mkdir(cfg.out, 0755) != 0 && errno != EEXIST) {
        mm_error_set(&err, MM_ERR_IO, cfg.out, "cannot create directory: %s", strerror(errno));
        rc = fail(&err);
        goto cleanup;
    }

    enum tls_key_type type = cfg.rsa ? TLS_KEY_RSA_2048 : TLS_KEY_ECDSA_P256;
    bool generated_ca = false;
    if (cfg.ca_cert) {
        size_t len = 0;
        if (fileio_read(cfg.ca_cert, 1 << 20, &ca.cert, &len, &err) ||
            fileio_read(cfg.ca_key, 1 << 20, &ca.key, &len, &err)) {
            rc = fail(&err);
            goto cleanup;
        }
    } else {
        char *cn = xasprintf("%s.%s CA", cfg.service, cfg.namespace);
        enum mm_status st = tls_ca_generate(cn, cfg.ca_days, type, &ca, &err);
        free(cn);
        if (st) {
            rc = fail(&err);
            goto cleanup;
        }
        generated_ca = true;
    }

    names = xcalloc(4 + cfg.extra_san.n, sizeof *names);
    names[n_names++] = xstrdup(cfg.service);
    names[n_names++] = xasprintf("%s.%s", cfg.service, cfg.namespace);
    names[n_names++] = xasprintf("%s.%s.svc", cfg.service, cfg.namespace);
    names[n_names++] = xasprintf("%s.%s.svc.%s", cfg.service, cfg.namespace, cfg.cluster_domain);
    for (size_t i = 0; i < cfg.extra_san.n; i++)
        names[n_names++] = xstrdup(cfg.extra_san.items[i]);
    struct tls_leaf_request req = {
        .common_name = names[2],
        .dns_names = (const char *const *)names,
        .n_dns_names = n_names,
        .days = cfg.days,
        .type = type,
    };
    if (tls_leaf_generate(&ca, &req, &leaf, &err) ||
        tls_verify(ca.cert, leaf.cert, names[2], &err)) {
        rc = fail(&err);
        goto cleanup;
    }
    /* Key first, certificate last: a watcher that sees the new tls.crt finds its key. */
    if ((generated_ca && write_in(cfg.out, "ca.key", ca.key, 0600, &err)) ||
        write_in(cfg.out, "ca.crt", ca.cert, 0644, &err) ||
        write_in(cfg.out, "tls.key", leaf.key, 0600, &err) ||
        write_in(cfg.out, "tls.crt", leaf.cert, 0644, &err)) {
        rc = fail(&err);
        goto cleanup;
    }
    bundle = base64_encode(ca.cert, strlen(ca.cert));
    printf("%s\n", bundle);
    fprintf(stderr, "wrote %s/{%sca.crt,tls.crt,tls.key} for %s (%s, %ld days)\n", cfg.out,
            generated_ca ? "ca.key," : "", names[2], cfg.rsa ? "RSA-2048" : "ECDSA P-256",
            cfg.days);
cleanup:
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    free(bundle);
    tls_pem_pair_cleanup(&ca);
    tls_pem_pair_cleanup(&leaf);
    config_cleanup(certs_options, N_CERTS_OPTIONS, &cfg);
    return rc;
}
