/*
 * meshmetric-operator serve: the HTTPS admission webhook, with policies from
 * the cluster (the operator: informer caches, reconcilers, leader election,
 * managed certificates; src/operator/) or, with --policies-dir, from a
 * directory without any cluster. Wiring only: flags, logging, signals; the
 * servers live in src/server/, the operator in src/operator/.
 */
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stddef.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/engine.h"
#include "operator/operator.h"
#include "server/certstore.h"
#include "server/policydir.h"
#include "server/webhook.h"
#include "util/config.h"
#include "util/log.h"

struct serve_config {
    char *webhook_addr;
    char *metrics_addr;
    char *tls_cert_file;
    char *tls_key_file;
    char *policies_dir;
    char *system_namespace;
    char *zone;
    char *default_tls_secret;
    char *metrics_cert_dir;
    bool prometheus_annotations;
    char *log_level;
    char *log_format;
    long thread_pool;
    long connection_limit;
    long header_timeout;
    long idle_timeout;
    long read_timeout;
    long shutdown_timeout;
    long reload_interval_ms;
    /* cluster mode (no --policies-dir) */
    char *kubeconfig;
    char *context;
    char *namespace;
    long resync_period;
    bool leader_elect;
    char *leader_election_id;
    char *leader_election_namespace;
    long lease_duration;
    long renew_deadline;
    long retry_period;
    bool manage_webhook_certs;
    char *webhook_secret;
    char *webhook_service;
    char *mutating_webhook_configuration;
    char *validating_webhook_configuration;
    bool restart_out_of_sync;
    long restart_rate;
    long restart_max_unavailable;
};

#define CERT_DIR "/tmp/k8s-webhook-server/serving-certs"

static const struct config_option serve_options[] = {
    {"webhook-addr", 0, "MM_WEBHOOK_ADDR", CONFIG_STRING, ":9443",
     "address to serve HTTPS on: :PORT (all interfaces), HOST:PORT or [IPv6]:PORT",
     offsetof(struct serve_config, webhook_addr), 0, 0},
    {"metrics-addr", 0, "MM_METRICS_ADDR", CONFIG_STRING, ":8080",
     "address of the plain-HTTP listener for /metrics, /healthz and /readyz (probes, "
     "Prometheus); \"\" disables it (the HTTPS port serves them too)",
     offsetof(struct serve_config, metrics_addr), 0, 0},
    {"tls-cert-file", 0, "MM_TLS_CERT_FILE", CONFIG_STRING, CERT_DIR "/tls.crt",
     "serving certificate (PEM, chain allowed); reloaded when it changes",
     offsetof(struct serve_config, tls_cert_file), 0, 0},
    {"tls-key-file", 0, "MM_TLS_KEY_FILE", CONFIG_STRING, CERT_DIR "/tls.key",
     "private key of --tls-cert-file (PEM); reloaded when it changes",
     offsetof(struct serve_config, tls_key_file), 0, 0},
    {"policies-dir", 0, "MM_POLICIES_DIR", CONFIG_STRING, NULL,
     "directory of *.yaml/*.yml/*.json files with MeshMetric, Mesh, Namespace and Service "
     "objects, reloaded on change (empty: no policies)",
     offsetof(struct serve_config, policies_dir), 0, 0},
    {"system-namespace", 0, "MM_SYSTEM_NAMESPACE", CONFIG_STRING, "kuma-system",
     "Kuma's system namespace (mesh-wide policies live there)",
     offsetof(struct serve_config, system_namespace), 0, 0},
    {"zone", 0, "MM_ZONE", CONFIG_STRING, "default",
     "the Kuma zone this cluster is (Kuma's default zone name is \"default\"); inbounds and "
     "Dataplane labels carry it as a zone control plane adds them",
     offsetof(struct serve_config, zone), 0, 0},
    {"default-tls-secret", 0, "MM_DEFAULT_TLS_SECRET", CONFIG_STRING, "meshmetric-tls",
     "Secret with tls.crt/tls.key mounted for ProvidedTLS when a pod names none",
     offsetof(struct serve_config, default_tls_secret), 0, 0},
    {"metrics-cert-dir", 0, "MM_METRICS_CERT_DIR", CONFIG_STRING,
     "/var/run/secrets/meshmetric.kuma.io/tls",
     "mount path of the metrics TLS Secret in the sidecar",
     offsetof(struct serve_config, metrics_cert_dir), 0, 0},
    {"prometheus-annotations", 0, "MM_PROMETHEUS_ANNOTATIONS", CONFIG_BOOL, "false",
     "also add prometheus.io/scrape|port|path|scheme pod annotations (never overwritten)",
     offsetof(struct serve_config, prometheus_annotations), 0, 0},
    {"log-level", 0, "MM_LOG_LEVEL", CONFIG_STRING, "info", "debug, info, warn or error",
     offsetof(struct serve_config, log_level), 0, 0},
    {"log-format", 0, "MM_LOG_FORMAT", CONFIG_STRING, "json", "json or logfmt",
     offsetof(struct serve_config, log_format), 0, 0},
    {"thread-pool", 0, "MM_WEBHOOK_THREAD_POOL", CONFIG_INT, "0",
     "0: one thread per connection (measured faster); N: an epoll pool of N threads",
     offsetof(struct serve_config, thread_pool), 0, 1024},
    {"connection-limit", 0, "MM_WEBHOOK_CONNECTION_LIMIT", CONFIG_INT, "1000",
     "most concurrent client connections; past it, stalled and idle ones are closed to make room",
     offsetof(struct serve_config, connection_limit), 1, 100000},
    {"header-timeout", 0, "MM_WEBHOOK_HEADER_TIMEOUT", CONFIG_INT, "10",
     "seconds a new connection has for its TLS handshake and request headers",
     offsetof(struct serve_config, header_timeout), 1, 3600},
    {"idle-timeout", 0, "MM_WEBHOOK_IDLE_TIMEOUT", CONFIG_INT, "120",
     "seconds an idle keep-alive connection stays open (keep it above the API server's 90 s)",
     offsetof(struct serve_config, idle_timeout), 1, 86400},
    {"read-timeout", 0, "MM_WEBHOOK_READ_TIMEOUT", CONFIG_INT, "30",
     "seconds a client may take to send one request body",
     offsetof(struct serve_config, read_timeout), 1, 3600},
    {"shutdown-timeout", 0, "MM_WEBHOOK_SHUTDOWN_TIMEOUT", CONFIG_INT, "25",
     "seconds to let in-flight requests finish after SIGTERM",
     offsetof(struct serve_config, shutdown_timeout), 0, 3600},
    {"reload-interval-ms", 0, "MM_RELOAD_INTERVAL_MS", CONFIG_INT, "1000",
     "how often the certificate files and the policies directory are checked for changes",
     offsetof(struct serve_config, reload_interval_ms), 50, 600000},
    /* ---- cluster mode: the operator (without --policies-dir) ---- */
    {"kubeconfig", 0, "MM_KUBECONFIG", CONFIG_STRING, NULL,
     "kubeconfig to reach the cluster; else $KUBECONFIG, the in-cluster service account, "
     "~/.kube/config",
     offsetof(struct serve_config, kubeconfig), 0, 0},
    {"context", 0, "MM_KUBE_CONTEXT", CONFIG_STRING, NULL,
     "kubeconfig context (default: its current-context)", offsetof(struct serve_config, context),
     0, 0},
    {"namespace", 0, "MM_NAMESPACE", CONFIG_STRING, NULL,
     "the operator's own namespace (Lease, certificate Secret); default: $POD_NAMESPACE, then "
     "the service account's namespace",
     offsetof(struct serve_config, namespace), 0, 0},
    {"resync-period", 0, "MM_RESYNC_PERIOD", CONFIG_INT, "600",
     "seconds between full relists of every cache, which repair any drift (0: never)",
     offsetof(struct serve_config, resync_period), 0, 86400},
    {"leader-elect", 0, "MM_LEADER_ELECT", CONFIG_BOOL, "false",
     "elect a leader on a Lease: only the leader writes status, Events and restarts (every "
     "replica serves the webhook)",
     offsetof(struct serve_config, leader_elect), 0, 0},
    {"leader-election-id", 0, "MM_LEADER_ELECTION_ID", CONFIG_STRING, "meshmetric-operator",
     "name of the Lease", offsetof(struct serve_config, leader_election_id), 0, 0},
    {"leader-election-namespace", 0, "MM_LEADER_ELECTION_NAMESPACE", CONFIG_STRING, NULL,
     "namespace of the Lease (default: --namespace)",
     offsetof(struct serve_config, leader_election_namespace), 0, 0},
    {"lease-duration", 0, "MM_LEASE_DURATION", CONFIG_INT, "15",
     "seconds a non-leader waits before taking over an unrenewed Lease",
     offsetof(struct serve_config, lease_duration), 1, 3600},
    {"renew-deadline", 0, "MM_RENEW_DEADLINE", CONFIG_INT, "10",
     "seconds the leader keeps retrying to renew before it gives up (and exits)",
     offsetof(struct serve_config, renew_deadline), 1, 3600},
    {"retry-period", 0, "MM_RETRY_PERIOD", CONFIG_INT, "2",
     "seconds between tries to acquire or renew the Lease",
     offsetof(struct serve_config, retry_period), 1, 3600},
    {"manage-webhook-certs", 0, "MM_MANAGE_WEBHOOK_CERTS", CONFIG_BOOL, "false",
     "keep the webhook's CA and serving certificate in --webhook-secret (created if absent, "
     "rotated before expiry), the caBundle of both webhook configurations in sync, and "
     "--tls-cert-file/--tls-key-file written from the Secret",
     offsetof(struct serve_config, manage_webhook_certs), 0, 0},
    {"webhook-secret", 0, "MM_WEBHOOK_SECRET", CONFIG_STRING, "meshmetric-operator-webhook-tls",
     "Secret (in --namespace) holding the managed webhook certificate",
     offsetof(struct serve_config, webhook_secret), 0, 0},
    {"webhook-service", 0, "MM_WEBHOOK_SERVICE", CONFIG_STRING, "meshmetric-operator",
     "Service the API server calls: the certificate names <service>.<namespace>.svc",
     offsetof(struct serve_config, webhook_service), 0, 0},
    {"mutating-webhook-configuration", 0, "MM_MUTATING_WEBHOOK_CONFIGURATION", CONFIG_STRING,
     "meshmetric-operator", "MutatingWebhookConfiguration whose caBundle is kept in sync",
     offsetof(struct serve_config, mutating_webhook_configuration), 0, 0},
    {"validating-webhook-configuration", 0, "MM_VALIDATING_WEBHOOK_CONFIGURATION", CONFIG_STRING,
     "meshmetric-operator", "ValidatingWebhookConfiguration whose caBundle is kept in sync",
     offsetof(struct serve_config, validating_webhook_configuration), 0, 0},
    {"restart-out-of-sync", 0, "MM_RESTART_OUT_OF_SYNC", CONFIG_BOOL, "false",
     "restart the Deployment, StatefulSet or DaemonSet of pods that do not run the config their "
     "policies ask for (the kubectl rollout restart annotation); never bare pods",
     offsetof(struct serve_config, restart_out_of_sync), 0, 0},
    {"restart-rate", 0, "MM_RESTART_RATE", CONFIG_INT, "1",
     "most workload restarts a minute", offsetof(struct serve_config, restart_rate), 1, 600},
    {"restart-max-unavailable", 0, "MM_RESTART_MAX_UNAVAILABLE", CONFIG_INT, "25",
     "a workload is not restarted while more than this percent of its pods are not ready",
     offsetof(struct serve_config, restart_max_unavailable), 1, 100},
};
#define N_SERVE_OPTIONS (sizeof serve_options / sizeof *serve_options)

static const char serve_usage[] =
    "Usage: meshmetric-operator serve [options]\n\n"
    "Runs the HTTPS admission webhook: POST /mutate (pods), POST /validate (MeshMetric,\n"
    "Mesh), GET /healthz, /readyz and /metrics (also on --metrics-addr over plain HTTP).\n"
    "Without --policies-dir it is the operator: it watches the cluster (in-cluster, or\n"
    "--kubeconfig), admits from its caches once they are synced, keeps MeshMetric status\n"
    "and Events true, and (with --leader-elect) lets one replica write. With --policies-dir\n"
    "it needs no cluster. Certificates are reloaded from disk when they change; SIGTERM\n"
    "drains in-flight requests, releases the Lease and exits 0.";

/* Leadership was lost: stop like a SIGTERM, then exit non-zero (client-go programs exit). */
static atomic_bool fatal_stop;

static void on_fatal(void *ctx, const char *why)
{
    (void)ctx;
    log_kv(LOG_ERROR, "stopping", "reason", why, NULL);
    atomic_store(&fatal_stop, true);
    kill(getpid(), SIGTERM);
}

static void operator_reload_stats(void *ctx, uint64_t *ok, uint64_t *failed, int64_t *last_ok)
{
    operator_reload_counts(ctx, ok, failed, last_ok);
}

static bool operator_metrics(void *ctx, struct strbuf *out)
{
    return operator_render_metrics(ctx, out);
}

/* The policy directory's reload counters, in the shape the webhook takes. */
static void policy_reload_stats(void *ctx, uint64_t *ok, uint64_t *failed, int64_t *last_ok)
{
    policydir_reload_counts(ctx, ok, failed, last_ok);
}

/* Raise the soft open-file limit to the hard one, as Go programs do at start. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int cli_serve(int argc, char **argv)
{
    struct serve_config cfg;
    struct mm_error err;
    struct cert_store *certs = NULL;
    struct policydir *pd = NULL;
    struct operator_main *op = NULL;
    struct webhook_server *server = NULL;
    bool help = false;
    int rc = 0;
    char buf[1100];

    memset(&cfg, 0, sizeof cfg);
    mm_error_clear(&err);
    if (config_parse(serve_options, N_SERVE_OPTIONS, &cfg, argc, argv, NULL, &help, &err)) {
        fprintf(stderr, "meshmetric-operator serve: %s\n", mm_error_str(&err, buf, sizeof buf));
        rc = 2;
        goto cleanup;
    }
    if (help) {
        config_print_help(stdout, serve_usage, serve_options, N_SERVE_OPTIONS);
        goto cleanup;
    }
    enum log_level level;
    enum log_format format;
    if (!log_level_parse(cfg.log_level, &level) || !log_format_parse(cfg.log_format, &format)) {
        fprintf(stderr,
                "meshmetric-operator serve: bad --log-level \"%s\" or --log-format \"%s\"\n",
                cfg.log_level, cfg.log_format);
        rc = 2;
        goto cleanup;
    }
    log_setup(level, format);

    /* Signals are taken synchronously by this thread; every thread started below inherits the mask.
     */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    struct engine_config ec;
    engine_config_init(&ec);
    if (cfg.default_tls_secret && *cfg.default_tls_secret)
        ec.patch.default_tls_secret = cfg.default_tls_secret;
    if (cfg.metrics_cert_dir && *cfg.metrics_cert_dir)
        ec.patch.cert_dir = cfg.metrics_cert_dir;
    ec.patch.prometheus_annotations = cfg.prometheus_annotations;

    unsigned interval = (unsigned)cfg.reload_interval_ms;
    certs = cert_store_create(cfg.tls_cert_file, cfg.tls_key_file);
    if (cert_store_reload(certs, &err))
        log_kv(LOG_ERROR, "no usable serving certificate yet; not ready until one loads", "error",
               mm_error_str(&err, buf, sizeof buf), NULL);
    cert_store_watch_start(certs, interval);

    struct policy_source source;
    webhook_reload_stats_fn reload_stats = NULL;
    void *reload_ctx = NULL;
    if (cfg.policies_dir && *cfg.policies_dir) {
        struct view_options vo = {.system_namespace = cfg.system_namespace, .zone = cfg.zone};
        pd = policydir_create(cfg.policies_dir, &vo);
        if (policydir_reload(pd, true, &err))
            log_kv(LOG_ERROR, "policies not loaded; not ready until they load", "dir",
                   cfg.policies_dir, "error", mm_error_str(&err, buf, sizeof buf), NULL);
        policydir_watch_start(pd, interval);
        source = policydir_source(pd);
        reload_stats = policy_reload_stats;
        reload_ctx = pd;
    } else {
        struct operator_config oc = {
            .kubeconfig = cfg.kubeconfig,
            .context = cfg.context,
            .namespace = cfg.namespace,
            .system_namespace = cfg.system_namespace,
            .zone = cfg.zone,
            .resync_period_s = (unsigned)cfg.resync_period,
            .leader_elect = cfg.leader_elect,
            .leader_election_id = cfg.leader_election_id,
            .leader_election_namespace = cfg.leader_election_namespace,
            .lease_duration_s = (unsigned)cfg.lease_duration,
            .renew_deadline_s = (unsigned)cfg.renew_deadline,
            .retry_period_s = (unsigned)cfg.retry_period,
            .manage_webhook_certs = cfg.manage_webhook_certs,
            .webhook_secret = cfg.webhook_secret,
            .webhook_service = cfg.webhook_service,
            .mutating_webhook_configuration = cfg.mutating_webhook_configuration,
            .validating_webhook_configuration = cfg.validating_webhook_configuration,
            .cert_path = cfg.tls_cert_file,
            .key_path = cfg.tls_key_file,
            .restart_out_of_sync = cfg.restart_out_of_sync,
            .restart_rate = (double)cfg.restart_rate,
            .restart_max_unavailable = (unsigned)cfg.restart_max_unavailable,
            .on_fatal = on_fatal,
        };
        if (operator_create(&oc, &op, &err) || operator_start(op, &err)) {
            log_kv(LOG_ERROR, "cannot start the operator", "error",
                   mm_error_str(&err, buf, sizeof buf), NULL);
            fprintf(stderr, "meshmetric-operator serve: %s\n", buf);
            rc = 1;
            goto cleanup;
        }
        source = operator_source(op);
        reload_stats = operator_reload_stats;
        reload_ctx = op;
    }

    struct webhook_config wc = {
        .addr = cfg.webhook_addr,
        .metrics_addr = cfg.metrics_addr,
        .engine = &ec,
        .system_namespace = cfg.system_namespace,
        .source = source,
        .certs = certs,
        .thread_pool = (unsigned)cfg.thread_pool,
        .connection_limit = (unsigned)cfg.connection_limit,
        .header_timeout_s = (unsigned)cfg.header_timeout,
        .idle_timeout_s = (unsigned)cfg.idle_timeout,
        .body_timeout_s = (unsigned)cfg.read_timeout,
        .reload_stats = reload_stats,
        .reload_stats_ctx = reload_ctx,
        .render_extra = op ? operator_metrics : NULL,
        .render_extra_ctx = op,
    };
    server = webhook_server_create(&wc);
    if (webhook_server_start(server, &err)) {
        log_kv(LOG_ERROR, "cannot start the webhook", "error", mm_error_str(&err, buf, sizeof buf),
               NULL);
        rc = 1;
        goto cleanup;
    }

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    log_kv(LOG_INFO, "shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    /* Stop writing and hand the Lease over first, then drain admissions (the webhook keeps
     * answering from the last view meanwhile). */
    operator_stop(op);
    (void)webhook_server_shutdown(server, (unsigned)cfg.shutdown_timeout * 1000u);
    if (atomic_load(&fatal_stop))
        rc = 1;
cleanup:
    webhook_server_free(server);
    operator_free(op);
    if (pd)
        policydir_free(pd);
    if (certs)
        cert_store_free(certs);
    config_cleanup(serve_options, N_SERVE_OPTIONS, &cfg);
    return rc;
}
