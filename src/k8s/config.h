/*
 * Where the API server is and how to authenticate (kubernetes-api.md 6, 9):
 * in-cluster (service account) or a kubeconfig file, picked as client-go's
 * default loading rules pick them.
 *
 * Secrets (the bearer token, the client key) are kept only in struct
 * k8s_config and never appear in an error message; k8s_config_cleanup()
 * wipes them.
 */
#ifndef MM_K8S_CONFIG_H
#define MM_K8S_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

/* The service account mount of every pod. */
#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct k8s_config {
    char *server;          /* "https://host:port[/prefix]", no trailing '/' */
    char *namespace;       /* default namespace; never NULL after a successful load */
    char *tls_server_name; /* SNI and verification name instead of the server's host; may be NULL */
    bool insecure;         /* insecure-skip-tls-verify */
    bool disable_compression;
    char *ca_pem; /* trusted roots (PEM); NULL: the system roots */
    size_t ca_pem_len;
    char *client_cert_pem; /* client certificate chain (PEM); NULL: none */
    size_t client_cert_len;
    char *client_key_pem; /* its private key (PEM, secret); NULL: none */
    size_t client_key_len;
    char *token;      /* static bearer token (secret); NULL: none */
    char *token_file; /* bearer token file, re-read by the client; wins over token */
    char *source;     /* "in-cluster" or the kubeconfig path (for messages) */
    char *context;    /* the kubeconfig context used; NULL in cluster */
    char *warning; /* something the caller should log once (e.g. a KUBECONFIG list); may be NULL */
    bool in_cluster;
};

void k8s_config_init(struct k8s_config *c);
/* Free everything (secrets are overwritten first) and re-initialise. c may be NULL. */
void k8s_config_cleanup(struct k8s_config *c);

/*
 * In-cluster inputs. The paths default to K8S_SA_DIR/{token,ca.crt,namespace};
 * tests point them elsewhere.
 */
struct k8s_incluster_env {
    const char *host;          /* $KUBERNETES_SERVICE_HOST */
    const char *port;          /* $KUBERNETES_SERVICE_PORT */
    const char *pod_namespace; /* $POD_NAMESPACE */
    const char *token_file;
    const char *ca_file;
    const char *namespace_file;
};

/* Fill env from the process environment and the default paths (pointers borrowed from environ). */
void k8s_incluster_env_from_process(struct k8s_incluster_env *env);

/*
 * rest.InClusterConfig: server https://JoinHostPort(host, port) (IPv6
 * bracketed); the token file must hold a non-empty token (whitespace
 * trimmed), and the client re-reads it every minute and after a 401; CA from
 * ca_file; namespace from POD_NAMESPACE, else the namespace file (trimmed),
 * else "default". Errors: MM_ERR_NOT_FOUND when host or port is empty (not
 * in a cluster), MM_ERR_IO for unreadable files, MM_ERR_INVALID for an empty
 * token or a CA file that is not PEM. out is filled only on success.
 */
enum mm_status k8s_config_in_cluster(const struct k8s_incluster_env *env, struct k8s_config *out,
                                     struct mm_error *err) MM_WUR;

/*
 * Parse kubeconfig text (YAML or JSON). path names the file in messages and
 * is the base of relative file references (may be NULL: relative to the
 * working directory). context NULL or "" means current-context. Supported:
 * cluster server, certificate-authority[-data], insecure-skip-tls-verify,
 * tls-server-name, disable-compression; user client-certificate[-data],
 * client-key[-data], token, tokenFile; context namespace. Every missing or
 * contradictory setting is an error whose field names the kubeconfig key
 * (e.g. "users[name=admin].user.exec") and whose message names the value or
 * context: no current context, context/cluster/user not found, no server,
 * CA with insecure-skip-tls-verify, certificate without key (and the
 * reverse), bad base64, data that is not PEM, unreadable files, exec and
 * auth-provider users, username/password, impersonation, proxy-url.
 * An empty document (no contexts, clusters or users) is MM_ERR_NOT_FOUND
 * with field "" (the loader then tries in-cluster).
 */
enum mm_status k8s_kubeconfig_parse(const char *text, size_t len, const char *path,
                                    const char *context, struct k8s_config *out,
                                    struct mm_error *err) MM_WUR;

/* Read path (at most 4 MiB) and parse it as above. A missing file is MM_ERR_IO. */
enum mm_status k8s_kubeconfig_load(const char *path, const char *context, struct k8s_config *out,
                                   struct mm_error *err) MM_WUR;

/* The inputs of k8s_config_load: the operator's --kubeconfig/--context flags and the environment.
 */
struct k8s_load_options {
    const char *kubeconfig;     /* --kubeconfig; NULL or "" if not given */
    const char *context;        /* --context; NULL or "" for current-context */
    const char *kubeconfig_env; /* $KUBECONFIG */
    const char *home;           /* $HOME */
    struct k8s_incluster_env incluster;
};

/* Fill o from the flags given and the process environment (pointers borrowed). */
void k8s_load_options_from_process(struct k8s_load_options *o, const char *kubeconfig_flag,
                                   const char *context_flag);

/*
 * client-go's deferred loading rules (clientcmd.NewNonInteractiveDeferredLoadingClientConfig):
 *  1. --kubeconfig given: that file, which must exist;
 *  2. else $KUBECONFIG: the first file of the colon-separated list that
 *     exists (client-go merges all of them; we use only the first and say so
 *     in out->warning when the list has more than one entry);
 *  3. else ~/.kube/config when it exists;
 *  4. when 2/3 found nothing (or an empty file) and the in-cluster variables
 *     and token file are there: in-cluster;
 *  5. else MM_ERR_NOT_FOUND "no configuration has been provided".
 * --context selects a kubeconfig context; it is an error when the
 * configuration ends up in-cluster.
 */
enum mm_status k8s_config_load(const struct k8s_load_options *o, struct k8s_config *out,
                               struct mm_error *err) MM_WUR;

#endif
