/*
 * webhookcerts_run: the --manage-webhook-certs manager (src/operator/webhookcerts.h)
 * as a process of its own, for tests/e2e/webhookcerts_test.sh until `serve`
 * wires it. It loads a kubeconfig, runs the manager until SIGTERM/SIGINT and
 * prints its counters as JSON on exit (and every second into --stats-file).
 *
 *   webhookcerts_run --kubeconfig FILE --namespace NS --cert-file FILE --key-file FILE
 *       [--secret NAME] [--service NAME] [--mutating NAME] [--validating NAME]
 *       [--ca-validity S] [--serving-validity S] [--propagation S] [--overlap S]
 *       [--resync-ms MS] [--leader always|never|file:PATH] [--stats-file FILE]
 *       [--log-level L] [--once]
 *
 * --leader file:PATH acts while PATH exists (the test moves leadership around);
 * --once runs one pass in the calling thread and exits 0 when it succeeded.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "k8s/client.h"
#include "k8s/config.h"
#include "operator/webhookcerts.h"
#include "util/log.h"
#include "util/xalloc.h"

static bool leader_file(void *ctx)
{
    return access((const char *)ctx, F_OK) == 0;
}

static bool never(void *ctx)
{
    (void)ctx;
    return false;
}

static void usage(void)
{
    fprintf(stderr, "usage: webhookcerts_run --kubeconfig FILE --namespace NS --cert-file FILE "
                    "--key-file FILE [options]; see the source\n");
    exit(2);
}

static int64_t num(const char *flag, const char *v)
{
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || !end || *end || n < 0) {
        fprintf(stderr, "webhookcerts_run: %s: not a number: %s\n", flag, v);
        exit(2);
    }
    return (int64_t)n;
}

static char *stats_json(const struct webhookcerts_stats *s)
{
    return xasprintf("{\"passes\":%llu,\"creations\":%llu,\"repairs\":%llu,\"rotations\":%llu,"
                     "\"ca_rotations\":%llu,\"previous_dropped\":%llu,\"bundle_updates\":%llu,"
                     "\"conflicts\":%llu,\"errors\":%llu,\"file_writes\":%llu,\"not_after\":%lld,"
                     "\"ca_not_after\":%lld,\"ready\":%s}\n",
                     (unsigned long long)s->passes, (unsigned long long)s->creations,
                     (unsigned long long)s->repairs, (unsigned long long)s->rotations,
                     (unsigned long long)s->ca_rotations, (unsigned long long)s->previous_dropped,
                     (unsigned long long)s->bundle_updates, (unsigned long long)s->conflicts,
                     (unsigned long long)s->errors, (unsigned long long)s->file_writes,
                     (long long)s->not_after, (long long)s->ca_not_after,
                     s->ready ? "true" : "false");
}

static void write_stats(const char *path, const struct webhookcerts_stats *s)
{
    char *json = stats_json(s);
    char *tmp = xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fputs(json, f);
        if (fclose(f) == 0)
            (void)rename(tmp, path);
    }
    free(tmp);
    free(json);
}

int main(int argc, char **argv)
{
    const char *kubeconfig = NULL, *leader = "always", *stats_file = NULL, *level = "info";
    bool once = false;
    struct webhookcerts_config cfg;
    webhookcerts_config_init(&cfg);
    xalloc_install_json();

    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--once")) {
            once = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(f, "--kubeconfig"))
            kubeconfig = v;
        else if (!strcmp(f, "--namespace"))
            cfg.namespace = v;
        else if (!strcmp(f, "--cert-file"))
            cfg.cert_path = v;
        else if (!strcmp(f, "--key-file"))
            cfg.key_path = v;
        else if (!strcmp(f, "--secret"))
            cfg.secret_name = v;
        else if (!strcmp(f, "--service"))
            cfg.service_name = v;
        else if (!strcmp(f, "--mutating"))
            cfg.mutating_name = v;
        else if (!strcmp(f, "--validating"))
            cfg.validating_name = v;
        else if (!strcmp(f, "--ca-validity"))
            cfg.ca_validity_s = num(f, v);
        else if (!strcmp(f, "--serving-validity"))
            cfg.serving_validity_s = num(f, v);
        else if (!strcmp(f, "--propagation"))
            cfg.propagation_s = num(f, v);
        else if (!strcmp(f, "--overlap"))
            cfg.ca_overlap_s = num(f, v);
        else if (!strcmp(f, "--resync-ms"))
            cfg.resync_ms = (uint64_t)num(f, v);
        else if (!strcmp(f, "--leader"))
            leader = v;
        else if (!strcmp(f, "--stats-file"))
            stats_file = v;
        else if (!strcmp(f, "--log-level"))
            level = v;
        else
            usage();
    }
    if (!kubeconfig || !cfg.namespace)
        usage();
    enum log_level lvl;
    if (!log_level_parse(level, &lvl))
        usage();
    log_setup(lvl, LOG_FORMAT_JSON);
    if (!strcmp(leader, "never")) {
        cfg.is_leader = never;
    } else if (!strncmp(leader, "file:", 5)) {
        cfg.is_leader = leader_file;
        cfg.leader_ctx = (void *)(uintptr_t)(leader + 5);
    } else if (strcmp(leader, "always")) {
        usage();
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    int rc = 0;
    struct mm_error err;
    struct k8s_error kerr = K8S_ERROR_INIT;
    struct k8s_config kc;
    struct k8s_client *client = NULL;
    struct webhookcerts *wc = NULL;
    struct k8s_load_options lo;
    char buf[1100];
    k8s_config_init(&kc);
    mm_error_clear(&err);
    k8s_load_options_from_process(&lo, kubeconfig, NULL);
    if (k8s_config_load(&lo, &kc, &err) != MM_OK) {
        fprintf(stderr, "webhookcerts_run: %s\n", mm_error_str(&err, buf, sizeof buf));
        rc = 1;
        goto out;
    }
    if (k8s_client_create(&kc, NULL, &client, &kerr) != MM_OK) {
        fprintf(stderr, "webhookcerts_run: %s\n", kerr.base.message);
        rc = 1;
        goto out;
    }
    if (webhookcerts_create(client, &cfg, &wc, &err) != MM_OK) {
        fprintf(stderr, "webhookcerts_run: %s\n", mm_error_str(&err, buf, sizeof buf));
        rc = 2;
        goto out;
    }
    if (once) {
        rc = webhookcerts_reconcile(wc, &err) == MM_OK ? 0 : 1;
        if (rc)
            fprintf(stderr, "webhookcerts_run: %s\n", mm_error_str(&err, buf, sizeof buf));
    } else {
        if (webhookcerts_start(wc, &err) != MM_OK) {
            fprintf(stderr, "webhookcerts_run: %s\n", mm_error_str(&err, buf, sizeof buf));
            rc = 1;
            goto out;
        }
        struct timespec second = {1, 0};
        for (;;) {
            if (stats_file) {
                struct webhookcerts_stats s;
                webhookcerts_stats(wc, &s);
                write_stats(stats_file, &s);
            }
            int sig = sigtimedwait(&sigs, NULL, &second);
            if (sig == SIGTERM || sig == SIGINT)
                break;
        }
        webhookcerts_stop(wc);
    }
    struct webhookcerts_stats s;
    webhookcerts_stats(wc, &s);
    if (stats_file)
        write_stats(stats_file, &s);
    char *json = stats_json(&s);
    fputs(json, stdout);
    free(json);
out:
    webhookcerts_free(wc);
    k8s_client_free(client);
    k8s_config_cleanup(&kc);
    k8s_error_cleanup(&kerr);
    return rc;
}
