/*
 * Unit tests for src/k8s/config.c: kubeconfig parsing and every error
 * (fixtures in tests/data/k8s/kubeconfig/), the in-cluster settings
 * (environment, token/CA/namespace files, IPv6), client-go's loading rules
 * (--kubeconfig, KUBECONFIG lists, ~/.kube/config, in-cluster fallback), and
 * that no token or key ever appears in an error message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "k8s/config.h"
#include "testutil.h"
#include "util/xalloc.h"

static char *fixture(const char *name)
{
    char *dir = tu_testdata();
    char *p = xasprintf("%s/k8s/kubeconfig/%s", dir, name);
    free(dir);
    return p;
}

/* Secrets planted in the fixtures: none may reach an error message. */
static void assert_no_secret(const struct mm_error *err)
{
    static const char *const secrets[] = {"SECRET-TOKEN", "SECRET-PASSWORD", "file-token-SECRET",
                                          "KEYSECRETMATERIAL", "DoNotLeakThis"};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        if (strstr(err->message, secrets[i]) || strstr(err->field, secrets[i]))
            fail_msg("secret %s leaked into the error: %s: %s", secrets[i], err->field,
                     err->message);
    }
}

struct kc_case {
    const char *file;
    const char *context; /* NULL: current-context */
    enum mm_status want;
    const char *field; /* expected field (errors) */
    const char *msg;   /* expected substring of the message (errors) */
    /* success */
    const char *server;
    const char *ns;
    const char *sni;
    bool insecure;
    bool ca, cert, key;
    const char *token;
    const char *token_file_end; /* suffix of token_file */
    bool no_compression;
};

#define KC_ERR(file, ctx, st, field, msg)                                                          \
    {                                                                                              \
        file, ctx, st, field, msg, NULL, NULL, NULL, false, false, false, false, NULL, NULL, false \
    }

/* clang-format off */
static const struct kc_case kc_cases[] = {
    {"ok-token.yaml", NULL, MM_OK, NULL, NULL, "https://127.0.0.1:6443", "myns", NULL, false, true,
     false, false, "SECRET-TOKEN-abc123", NULL, false},
    {"ok-json.json", NULL, MM_OK, NULL, NULL, "https://127.0.0.1:6443", "default", NULL, false,
     true, false, false, "SECRET-TOKEN-abc123", NULL, false},
    {"ok-certs.yaml", NULL, MM_OK, NULL, NULL, "https://k8s.example.com:443", "default", NULL,
     false, true, true, true, NULL, NULL, false},
    {"ok-files.yaml", NULL, MM_OK, NULL, NULL, "https://127.0.0.1:6443", "files-ns", NULL, false,
     true, true, true, NULL, "k8s/kubeconfig/token.txt", false},
    {"ok-wrapped-base64.yaml", NULL, MM_OK, NULL, NULL, "https://127.0.0.1:6443", "default", NULL,
     false, true, false, false, "SECRET-TOKEN-abc123", NULL, false},
    {"multi-context.yaml", NULL, MM_OK, NULL, NULL, "https://a.example:6443", "ns-a", NULL, true,
     false, false, false, "SECRET-TOKEN-a", NULL, false},
    {"multi-context.yaml", "b", MM_OK, NULL, NULL, "https://b.example:6443", "ns-b",
     "kubernetes.default.svc", false, true, false, false, "SECRET-TOKEN-b", NULL, false},
    {"anonymous.yaml", NULL, MM_OK, NULL, NULL, "http://127.0.0.1:8080", "default", NULL, false,
     false, false, false, NULL, NULL, false},
    {"ipv6.yaml", NULL, MM_OK, NULL, NULL, "https://[::1]:6443", "default", NULL, true, false,
     false, false, "SECRET-TOKEN-abc123", NULL, true},
    {"token-and-file.yaml", NULL, MM_OK, NULL, NULL, "https://127.0.0.1:6443", "default", NULL,
     true, false, false, false, "SECRET-TOKEN-abc123", "token.txt", false},

    KC_ERR("no-current-context.yaml", NULL, MM_ERR_INVALID, "current-context",
     "current-context is not set"),
    KC_ERR("context-not-found.yaml", NULL, MM_ERR_NOT_FOUND, "current-context",
     "context \"gone\" not found"),
    KC_ERR("multi-context.yaml", "zzz", MM_ERR_NOT_FOUND, "--context", "context \"zzz\" not found"),
    KC_ERR("cluster-not-found.yaml", NULL, MM_ERR_NOT_FOUND, "contexts[name=main].context.cluster",
     "cluster \"c9\" was not found"),
    KC_ERR("user-not-found.yaml", NULL, MM_ERR_NOT_FOUND, "contexts[name=main].context.user",
     "user \"u9\" was not found"),
    KC_ERR("no-server.yaml", NULL, MM_ERR_INVALID, "clusters[name=c1].cluster.server",
     "no server found for cluster \"c1\""),
    KC_ERR("bad-scheme.yaml", NULL, MM_ERR_INVALID, "clusters[name=c1].cluster.server",
     "must be an http:// or https:// URL"),
    KC_ERR("ca-and-insecure.yaml", NULL, MM_ERR_INVALID,
     "clusters[name=c1].cluster.insecure-skip-tls-verify",
     "specifying a root certificates file with the insecure flag is not allowed"),
    KC_ERR("ca-file-and-insecure.yaml", NULL, MM_ERR_INVALID,
     "clusters[name=c1].cluster.insecure-skip-tls-verify",
     "specifying a root certificates file with the insecure flag is not allowed"),
    KC_ERR("cert-without-key.yaml", NULL, MM_ERR_INVALID, "users[name=u1].user.client-key-data",
     "client-key-data or client-key must be specified for u1 to use the clientCert "
     "authentication method"),
    KC_ERR("key-without-cert.yaml", NULL, MM_ERR_INVALID, "users[name=u1].user.client-certificate-data",
     "client-certificate-data or client-certificate must be specified for u1"),
    KC_ERR("bad-base64-ca.yaml", NULL, MM_ERR_INVALID,
     "clusters[name=c1].cluster.certificate-authority-data", "illegal base64 data"),
    KC_ERR("bad-base64-key.yaml", NULL, MM_ERR_INVALID, "users[name=u1].user.client-key-data",
     "illegal base64 data"),
    KC_ERR("key-not-pem.yaml", NULL, MM_ERR_INVALID, "users[name=u1].user.client-key-data",
     "not PEM"),
    KC_ERR("ca-not-pem.yaml", NULL, MM_ERR_INVALID,
     "clusters[name=c1].cluster.certificate-authority-data", "not PEM"),
    KC_ERR("ca-file-not-pem.yaml", NULL, MM_ERR_INVALID,
     "clusters[name=c1].cluster.certificate-authority", "not-pem.txt is not PEM"),
    KC_ERR("unreadable-file.yaml", NULL, MM_ERR_IO, "clusters[name=c1].cluster.certificate-authority",
     "/nonexistent/mm-test/ca.pem"),
    KC_ERR("unreadable-token-file.yaml", NULL, MM_ERR_IO, "users[name=u1].user.tokenFile",
     "missing-token.txt"),
    KC_ERR("exec-user.yaml", NULL, MM_ERR_INVALID, "users[name=u1].user.exec",
     "exec credential plugins are not supported"),
    KC_ERR("auth-provider-user.yaml", NULL, MM_ERR_INVALID, "users[name=u1].user.auth-provider",
     "auth-provider plugins are not supported"),
    KC_ERR("basic-auth.yaml", NULL, MM_ERR_INVALID, "users[name=u1].user.username",
     "basic authentication (username/password) is not supported"),
    KC_ERR("impersonation.yaml", NULL, MM_ERR_INVALID, "users[name=u1].user.as",
     "impersonation (as) is not supported"),
    KC_ERR("proxy-url.yaml", NULL, MM_ERR_INVALID, "clusters[name=c1].cluster.proxy-url",
     "proxy-url is not supported"),
    KC_ERR("wrong-types.yaml", NULL, MM_ERR_TYPE, "clusters", "must be a list"),
    KC_ERR("wrong-insecure-type.yaml", NULL, MM_ERR_TYPE,
     "clusters[name=c1].cluster.insecure-skip-tls-verify", "must be true or false"),
    KC_ERR("bad-yaml.yaml", NULL, MM_ERR_PARSE, "", "line"),
    KC_ERR("empty.yaml", NULL, MM_ERR_NOT_FOUND, "", "empty"),
    KC_ERR("empty-config.yaml", NULL, MM_ERR_NOT_FOUND, "", "empty"),
    KC_ERR("wrong-kind.yaml", NULL, MM_ERR_INVALID, "kind", "want Config"),
    KC_ERR("does-not-exist.yaml", NULL, MM_ERR_IO, "kubeconfig", "does-not-exist.yaml"),
};
/* clang-format on */

static void test_kubeconfig_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof kc_cases / sizeof kc_cases[0]; i++) {
        const struct kc_case *c = &kc_cases[i];
        char *path = fixture(c->file);
        struct k8s_config cfg;
        struct mm_error err;
        k8s_config_init(&cfg);
        mm_error_clear(&err);
        print_message("case %s%s%s\n", c->file, c->context ? " --context " : "",
                      c->context ? c->context : "");
        enum mm_status rc = k8s_kubeconfig_load(path, c->context, &cfg, &err);
        if (rc != c->want)
            fail_msg("%s: got %s (%s: %s), want %s", c->file, mm_status_name(rc), err.field,
                     err.message, mm_status_name(c->want));
        if (rc != MM_OK) {
            print_message("    -> %s: %s\n", err.field, err.message);
            assert_no_secret(&err);
            if (c->field && strcmp(err.field, c->field))
                fail_msg("%s: field [%s], want [%s]", c->file, err.field, c->field);
            if (c->msg && !strstr(err.message, c->msg))
                fail_msg("%s: message [%s] lacks [%s]", c->file, err.message, c->msg);
            /* every kubeconfig error names the file (and the context once known) */
            if (strcmp(c->file, "does-not-exist.yaml") && !strstr(err.message, c->file))
                fail_msg("%s: message [%s] does not name the file", c->file, err.message);
            assert_null(cfg.server); /* out untouched on failure */
        } else {
            assert_string_equal(cfg.server, c->server);
            assert_string_equal(cfg.namespace, c->ns);
            if (c->sni)
                assert_string_equal(cfg.tls_server_name, c->sni);
            else
                assert_null(cfg.tls_server_name);
            assert_int_equal(cfg.insecure, c->insecure);
            assert_int_equal(cfg.ca_pem != NULL, c->ca);
            assert_int_equal(cfg.client_cert_pem != NULL, c->cert);
            assert_int_equal(cfg.client_key_pem != NULL, c->key);
            if (c->ca)
                assert_non_null(strstr(cfg.ca_pem, "-----BEGIN CERTIFICATE-----"));
            if (c->key)
                assert_non_null(strstr(cfg.client_key_pem, "KEYSECRETMATERIAL"));
            if (c->token)
                assert_string_equal(cfg.token, c->token);
            else
                assert_null(cfg.token);
            if (c->token_file_end) {
                assert_non_null(cfg.token_file);
                size_t a = strlen(cfg.token_file), b = strlen(c->token_file_end);
                assert_true(a >= b && !strcmp(cfg.token_file + a - b, c->token_file_end));
                assert_true(cfg.token_file[0] == '/'); /* resolved against the kubeconfig's dir */
            } else {
                assert_null(cfg.token_file);
            }
            assert_int_equal(cfg.disable_compression, c->no_compression);
            assert_string_equal(cfg.source, path);
            assert_false(cfg.in_cluster);
        }
        k8s_config_cleanup(&cfg);
        free(path);
    }
}

/* ---- in-cluster ---- */

static char *tmpdir_make(void)
{
    char tmpl[] = "/tmp/mm-k8s-config-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return xstrdup(d);
}

static void write_file(const char *dir, const char *name, const char *content)
{
    char *p = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    free(p);
}

static void rm_rf(const char *dir)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);
    int rc = system(cmd);
    (void)rc;
    free(cmd);
}

static const char CA_PEM[] = "-----BEGIN CERTIFICATE-----\nMIIBx\n-----END CERTIFICATE-----\n";

struct ic_case {
    const char *name;
    const char *host, *port, *pod_ns;
    const char *token;   /* file content; NULL: no file */
    const char *ca;      /* NULL: no file */
    const char *ns_file; /* NULL: no file */
    enum mm_status want;
    const char *server; /* or the expected field for errors */
    const char *ns;     /* or a message substring for errors */
};

/* clang-format off */
static const struct ic_case ic_cases[] = {
    {"IPv4", "10.96.0.1", "443", NULL, "tok\n", CA_PEM, "kuma-system\n", MM_OK,
     "https://10.96.0.1:443", "kuma-system"},
    {"IPv6 bracketed", "fd00:10:96::1", "443", NULL, "tok", CA_PEM, NULL, MM_OK,
     "https://[fd00:10:96::1]:443", "default"},
    {"POD_NAMESPACE wins over the file", "10.0.0.1", "6443", "from-env", "tok", CA_PEM, "from-file",
     MM_OK, "https://10.0.0.1:6443", "from-env"},
    {"empty namespace file: default", "10.0.0.1", "6443", "", "  tok  ", CA_PEM, " \n", MM_OK,
     "https://10.0.0.1:6443", "default"},
    {"no host: not in a cluster", NULL, "443", NULL, "tok", CA_PEM, NULL, MM_ERR_NOT_FOUND,
     "KUBERNETES_SERVICE_HOST", "must be defined"},
    {"empty port: not in a cluster", "10.0.0.1", "", NULL, "tok", CA_PEM, NULL, MM_ERR_NOT_FOUND,
     "KUBERNETES_SERVICE_HOST", "must be defined"},
    {"bad port", "10.0.0.1", "https", NULL, "tok", CA_PEM, NULL, MM_ERR_INVALID,
     "KUBERNETES_SERVICE_PORT", "not a port"},
    {"empty token", "10.0.0.1", "443", NULL, " \n\t", CA_PEM, NULL, MM_ERR_INVALID, "token",
     "is empty"},
    {"no token file", "10.0.0.1", "443", NULL, NULL, CA_PEM, NULL, MM_ERR_IO, "token",
     "cannot open"},
    {"no CA file", "10.0.0.1", "443", NULL, "tok", NULL, NULL, MM_ERR_IO, "ca.crt", "cannot read"},
    {"CA not PEM", "10.0.0.1", "443", NULL, "tok", "garbage", NULL, MM_ERR_INVALID, "ca.crt",
     "is not PEM"},
};
/* clang-format on */

static void test_in_cluster_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ic_cases / sizeof ic_cases[0]; i++) {
        const struct ic_case *c = &ic_cases[i];
        print_message("in-cluster: %s\n", c->name);
        char *dir = tmpdir_make();
        if (c->token)
            write_file(dir, "token", c->token);
        if (c->ca)
            write_file(dir, "ca.crt", c->ca);
        if (c->ns_file)
            write_file(dir, "namespace", c->ns_file);
        char *tf = xasprintf("%s/token", dir), *cf = xasprintf("%s/ca.crt", dir),
             *nf = xasprintf("%s/namespace", dir);
        struct k8s_incluster_env env = {c->host, c->port, c->pod_ns, tf, cf, nf};
        struct k8s_config cfg;
        struct mm_error err;
        k8s_config_init(&cfg);
        mm_error_clear(&err);
        enum mm_status rc = k8s_config_in_cluster(&env, &cfg, &err);
        if (rc != c->want)
            fail_msg("%s: got %s (%s), want %s", c->name, mm_status_name(rc), err.message,
                     mm_status_name(c->want));
        if (rc == MM_OK) {
            assert_string_equal(cfg.server, c->server);
            assert_string_equal(cfg.namespace, c->ns);
            assert_string_equal(cfg.token_file, tf);
            assert_null(cfg.token); /* read by the client, every minute and after a 401 */
            assert_non_null(cfg.ca_pem);
            assert_true(cfg.in_cluster);
            assert_string_equal(cfg.source, "in-cluster");
        } else {
            assert_string_equal(err.field, c->server);
            if (!strstr(err.message, c->ns))
                fail_msg("%s: [%s] lacks [%s]", c->name, err.message, c->ns);
            assert_null(strstr(err.message, "tok\n"));
        }
        k8s_config_cleanup(&cfg);
        free(tf);
        free(cf);
        free(nf);
        rm_rf(dir);
        free(dir);
    }
}

/* ---- loading rules ---- */

struct lr_env {
    char *dir;  /* temporary tree */
    char *sa;   /* service account dir */
    char *home; /* $HOME with .kube/config */
    char *kc_a, *kc_b, *kc_empty;
};

static void lr_setup(struct lr_env *e)
{
    e->dir = tmpdir_make();
    e->sa = xasprintf("%s/sa", e->dir);
    e->home = xasprintf("%s/home", e->dir);
    char *kube = xasprintf("%s/.kube", e->home);
    mkdir(e->sa, 0700);
    mkdir(e->home, 0700);
    mkdir(kube, 0700);
    write_file(e->sa, "token", "sa-token\n");
    write_file(e->sa, "ca.crt", CA_PEM);
    write_file(e->sa, "namespace", "sa-ns");
    const char *a = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "
                    "'https://a:1', insecure-skip-tls-verify: true}}]\ncontexts: [{name: a, "
                    "context: {cluster: c, namespace: ns-a}}, {name: other, context: {cluster: c, "
                    "namespace: ns-other}}]\ncurrent-context: a\n";
    const char *b = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "
                    "'https://b:2', insecure-skip-tls-verify: true}}]\ncontexts: [{name: b, "
                    "context: {cluster: c}}]\ncurrent-context: b\n";
    write_file(e->dir, "a.yaml", a);
    write_file(e->dir, "b.yaml", b);
    write_file(e->dir, "empty.yaml", "");
    write_file(kube, "config",
               "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "
               "'https://home:3', insecure-skip-tls-verify: true}}]\ncontexts: [{name: h, "
               "context: {cluster: c}}]\ncurrent-context: h\n");
    free(kube);
    e->kc_a = xasprintf("%s/a.yaml", e->dir);
    e->kc_b = xasprintf("%s/b.yaml", e->dir);
    e->kc_empty = xasprintf("%s/empty.yaml", e->dir);
}

static void lr_teardown(struct lr_env *e)
{
    rm_rf(e->dir);
    free(e->dir);
    free(e->sa);
    free(e->home);
    free(e->kc_a);
    free(e->kc_b);
    free(e->kc_empty);
}

static void lr_opts(const struct lr_env *e, struct k8s_load_options *o, bool in_cluster,
                    char *paths[3])
{
    memset(o, 0, sizeof *o);
    paths[0] = xasprintf("%s/token", e->sa);
    paths[1] = xasprintf("%s/ca.crt", e->sa);
    paths[2] = xasprintf("%s/namespace", e->sa);
    o->incluster.host = in_cluster ? "10.0.0.1" : NULL;
    o->incluster.port = in_cluster ? "443" : NULL;
    o->incluster.token_file = paths[0];
    o->incluster.ca_file = paths[1];
    o->incluster.namespace_file = paths[2];
}

static void test_loading_rules(void **state)
{
    (void)state;
    struct lr_env e;
    lr_setup(&e);
    char *missing = xasprintf("%s/missing.yaml", e.dir);
    char *list_ab = xasprintf("%s:%s:%s", missing, e.kc_a, e.kc_b);
    char *list_missing = xasprintf("%s:%s", missing, missing);
    char *nohome = xasprintf("%s/nohome", e.dir);
    struct {
        const char *name;
        const char *flag, *context, *env, *home;
        bool in_cluster;
        enum mm_status want;
        const char *server; /* or a message substring */
        const char *ns;
        bool warning;
    } cases[] = {
        {"--kubeconfig wins over everything", e.kc_b, NULL, e.kc_a, e.home, true, MM_OK,
         "https://b:2", "default", false},
        {"--kubeconfig with --context", e.kc_a, "other", NULL, NULL, false, MM_OK, "https://a:1",
         "ns-other", false},
        {"--kubeconfig missing is an error", missing, NULL, NULL, e.home, true, MM_ERR_IO,
         "missing.yaml", NULL, false},
        {"--kubeconfig empty is an error", e.kc_empty, NULL, NULL, NULL, true, MM_ERR_INVALID,
         "is empty", NULL, false},
        {"KUBECONFIG list: the first existing file, with a warning", NULL, NULL, list_ab, e.home,
         true, MM_OK, "https://a:1", "ns-a", true},
        {"KUBECONFIG single file: no warning", NULL, NULL, e.kc_b, e.home, false, MM_OK,
         "https://b:2", "default", false},
        {"KUBECONFIG wins over ~/.kube/config", NULL, NULL, e.kc_a, e.home, false, MM_OK,
         "https://a:1", "ns-a", false},
        {"~/.kube/config", NULL, NULL, NULL, e.home, true, MM_OK, "https://home:3", "default",
         false},
        {"nothing found: in-cluster", NULL, NULL, NULL, nohome, true, MM_OK, "https://10.0.0.1:443",
         "sa-ns", false},
        {"KUBECONFIG files all missing: in-cluster", NULL, NULL, list_missing, e.home, true, MM_OK,
         "https://10.0.0.1:443", "sa-ns", false},
        {"empty kubeconfig: in-cluster", NULL, NULL, e.kc_empty, e.home, true, MM_OK,
         "https://10.0.0.1:443", "sa-ns", false},
        {"nothing at all", NULL, NULL, NULL, nohome, false, MM_ERR_NOT_FOUND,
         "no configuration has been provided", NULL, false},
        {"--context but in-cluster", NULL, "x", NULL, nohome, true, MM_ERR_INVALID,
         "no kubeconfig was found", NULL, false},
        {"--context not in the file", NULL, "nope", e.kc_a, NULL, true, MM_ERR_NOT_FOUND,
         "context \"nope\" not found", NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("loading: %s\n", cases[i].name);
        struct k8s_load_options o;
        char *paths[3];
        lr_opts(&e, &o, cases[i].in_cluster, paths);
        o.kubeconfig = cases[i].flag;
        o.context = cases[i].context;
        o.kubeconfig_env = cases[i].env;
        o.home = cases[i].home;
        struct k8s_config cfg;
        struct mm_error err;
        k8s_config_init(&cfg);
        mm_error_clear(&err);
        enum mm_status rc = k8s_config_load(&o, &cfg, &err);
        if (rc != cases[i].want)
            fail_msg("%s: got %s (%s), want %s", cases[i].name, mm_status_name(rc), err.message,
                     mm_status_name(cases[i].want));
        if (rc == MM_OK) {
            assert_string_equal(cfg.server, cases[i].server);
            assert_string_equal(cfg.namespace, cases[i].ns);
            assert_int_equal(cfg.warning != NULL, cases[i].warning);
            if (cfg.warning)
                assert_non_null(strstr(cfg.warning, "only the first existing one"));
        } else if (!strstr(err.message, cases[i].server)) {
            fail_msg("%s: [%s] lacks [%s]", cases[i].name, err.message, cases[i].server);
        }
        k8s_config_cleanup(&cfg);
        for (int k = 0; k < 3; k++)
            free(paths[k]);
    }
    free(missing);
    free(list_ab);
    free(list_missing);
    free(nohome);
    lr_teardown(&e);
}

/* The process-environment helpers read the documented variables and paths. */
static void test_from_process(void **state)
{
    (void)state;
    setenv("KUBERNETES_SERVICE_HOST", "10.1.2.3", 1);
    setenv("KUBERNETES_SERVICE_PORT", "8443", 1);
    setenv("POD_NAMESPACE", "pod-ns", 1);
    setenv("KUBECONFIG", "/x/y", 1);
    struct k8s_load_options o;
    k8s_load_options_from_process(&o, "/flag", "ctx");
    assert_string_equal(o.kubeconfig, "/flag");
    assert_string_equal(o.context, "ctx");
    assert_string_equal(o.kubeconfig_env, "/x/y");
    assert_string_equal(o.incluster.host, "10.1.2.3");
    assert_string_equal(o.incluster.port, "8443");
    assert_string_equal(o.incluster.pod_namespace, "pod-ns");
    assert_string_equal(o.incluster.token_file,
                        "/var/run/secrets/kubernetes.io/serviceaccount/token");
    assert_string_equal(o.incluster.ca_file,
                        "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
    assert_string_equal(o.incluster.namespace_file,
                        "/var/run/secrets/kubernetes.io/serviceaccount/namespace");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    unsetenv("POD_NAMESPACE");
    unsetenv("KUBECONFIG");
}

/* cleanup is idempotent and NULL-safe */
static void test_cleanup(void **state)
{
    (void)state;
    k8s_config_cleanup(NULL);
    struct k8s_config c;
    k8s_config_init(&c);
    k8s_config_cleanup(&c);
    k8s_config_cleanup(&c);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubeconfig_table), cmocka_unit_test(test_in_cluster_table),
        cmocka_unit_test(test_loading_rules),    cmocka_unit_test(test_from_process),
        cmocka_unit_test(test_cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
