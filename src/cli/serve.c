/*
 * meshmetric-operator serve: the HTTPS admission webhook with a directory
 * policy source. Wiring only: flags, logging, signals; the server lives in
 * src/server/.
 */
#include <signal.h>
#include <stddef.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/engine.h"
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
};
#define N_SERVE_OPTIONS (sizeof serve_options / sizeof *serve_options)

static const char serve_usage[] =
    "Usage: meshmetric-operator serve [options]\n\n"
    "Runs the HTTPS admission webhook: POST /mutate (pods), POST /validate (MeshMetric,\n"
    "Mesh), GET /healthz, /readyz and /metrics (also on --metrics-addr over plain HTTP).\n"
    "Certificates and policies are reloaded from disk when they change; SIGTERM drains\n"
    "in-flight requests and exits 0.";

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

    struct view_options vo = {.system_namespace = cfg.system_namespace, .zone = cfg.zone};
    pd = policydir_create(cfg.policies_dir, &vo);
    if (policydir_reload(pd, true, &err))
        log_kv(LOG_ERROR, "policies not loaded; not ready until they load", "dir", cfg.policies_dir,
               "error", mm_error_str(&err, buf, sizeof buf), NULL);
    policydir_watch_start(pd, interval);

    struct webhook_config wc = {
        .addr = cfg.webhook_addr,
        .metrics_addr = cfg.metrics_addr,
        .engine = &ec,
        .system_namespace = cfg.system_namespace,
        .source = policydir_source(pd),
        .certs = certs,
        .thread_pool = (unsigned)cfg.thread_pool,
        .connection_limit = (unsigned)cfg.connection_limit,
        .header_timeout_s = (unsigned)cfg.header_timeout,
        .idle_timeout_s = (unsigned)cfg.idle_timeout,
        .body_timeout_s = (unsigned)cfg.read_timeout,
        .reload_stats = policy_reload_stats,
        .reload_stats_ctx = pd,
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
    (void)webhook_server_shutdown(server, (unsigned)cfg.shutdown_timeout * 1000u);
cleanup:
    webhook_server_free(server);
    if (pd)
        policydir_free(pd);
    if (certs)
        cert_store_free(certs);
    config_cleanup(serve_options, N_SERVE_OPTIONS, &cfg);
    return rc;
}
