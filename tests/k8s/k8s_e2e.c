/*
 * End-to-end checks of the k8s client, the reflector and the leader elector
 * against the local API server (tests/apiserver/), run by
 * tests/e2e/k8s_test.sh:
 *
 *   k8s_e2e client|tls|watch|reflector|leader [scenario...]
 *
 * Environment: MM_KUBECONFIG (the server's kubeconfig: CA data + token),
 * MM_BAD_CA_KUBECONFIG (the same with another CA), MM_SNI_OK_KUBECONFIG /
 * MM_SNI_BAD_KUBECONFIG (tls-server-name localhost / other.example).
 * Prints "ok   - ..." / "FAIL - ..." lines; exits 1 if anything failed.
 *
 * The consumer cache used for the reflector compares resourceVersions as
 * integers to detect duplicates: that is test-only knowledge of the local
 * server (RVs are opaque to the client itself).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s/cancel.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "k8s/microtime.h"
#include "k8s/reflector.h"
#include "k8s/status.h"
#include "k8s/watch.h"
#include "operator/leader.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

static int n_ok, n_fail;
static char current_group[64];
static char run_id[16]; /* suffix of every namespace and lease, so runs never collide */

/* "<base>-<run id>" in a static rotating buffer (enough for the few names alive at once). */
static const char *uniq(const char *base)
{
    static char bufs[8][96];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 96, "%s-%s", base, run_id);
    return b;
}

static void check(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool cond, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cond)
        n_ok++;
    else
        n_fail++;
    printf("%s - %s: %s\n", cond ? "ok  " : "FAIL", current_group, msg);
    fflush(stdout);
}

static void sleep_ms(uint64_t ms)
{
    k8s_cancel_sleep(NULL, ms);
}

static const struct k8s_resource cms = {"", "v1", "configmaps"};
static const struct k8s_resource nss = {"", "v1", "namespaces"};
static const struct k8s_resource crds = {"apiextensions.k8s.io", "v1", "customresourcedefinitions"};
static const struct k8s_resource widgets = {"example.com", "v1", "widgets"};
static const struct k8s_resource leases = {"coordination.k8s.io", "v1", "leases"};

static struct k8s_client *client_from(const char *env_name, struct k8s_error *kerr,
                                      enum mm_status *rc_out)
{
    const char *path = getenv(env_name);
    struct k8s_config cfg;
    struct mm_error err;
    struct k8s_client *c = NULL;
    k8s_config_init(&cfg);
    *rc_out = MM_ERR_NOT_FOUND;
    if (!path) {
        fprintf(stderr, "k8s_e2e: %s is not set\n", env_name);
        return NULL;
    }
    *rc_out = k8s_kubeconfig_load(path, NULL, &cfg, &err);
    if (*rc_out != MM_OK) {
        fprintf(stderr, "k8s_e2e: %s: %s\n", path, err.message);
        return NULL;
    }
    *rc_out = k8s_client_create(&cfg, NULL, &c, kerr);
    k8s_config_cleanup(&cfg);
    return c;
}

static struct k8s_client *client(void)
{
    struct k8s_error kerr = K8S_ERROR_INIT;
    enum mm_status rc;
    struct k8s_client *c = client_from("MM_KUBECONFIG", &kerr, &rc);
    if (!c) {
        fprintf(stderr, "k8s_e2e: no client: %s\n", kerr.base.message);
        exit(2);
    }
    k8s_error_cleanup(&kerr);
    return c;
}

static struct k8s_client *client(void);

/*
 * POST /_control/<what> with a JSON body (the local server's fault injection).
 * Uses its own client: the local server answers injected failures without
 * reading the request body, which corrupts that keep-alive connection for the
 * next request (reported); the control client never gets such an answer.
 */
static void ctl(struct k8s_client *unused, const char *what, const char *body)
{
    static struct k8s_client *c;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    (void)unused;
    pthread_mutex_lock(&lock);
    if (!c)
        c = client();
    pthread_mutex_unlock(&lock);
    char path[128];
    snprintf(path, sizeof path, "/_control/%s", what);
    struct k8s_response r;
    struct k8s_error err = K8S_ERROR_INIT;
    enum mm_status rc = k8s_request(c, "POST", path, body ? body : "{}", strlen(body ? body : "{}"),
                                    "application/json", NULL, &r, &err);
    if (rc != MM_OK)
        fprintf(stderr, "k8s_e2e: control %s: %s\n", what, err.base.message);
    k8s_response_cleanup(&r);
    k8s_error_cleanup(&err);
}

static void ns_create(struct k8s_client *c, const char *ns)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                          "metadata", "name", ns);
    struct k8s_error err = K8S_ERROR_INIT;
    enum mm_status rc = k8s_create(c, &nss, NULL, o, NULL, NULL, &err);
    if (rc != MM_OK && rc != MM_ERR_CONFLICT)
        fprintf(stderr, "k8s_e2e: namespace %s: %s\n", ns, err.base.message);
    json_decref(o);
    k8s_error_cleanup(&err);
}

static json_t *cm(const char *ns, const char *name, const char *value)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                     "metadata", "name", name, "namespace", ns, "data", "v", value);
}

static enum mm_status cm_create(struct k8s_client *c, const char *ns, const char *name,
                                const char *value, json_t **out, struct k8s_error *err)
{
    json_t *o = cm(ns, name, value);
    enum mm_status rc = k8s_create(c, &cms, ns, o, NULL, out, err);
    json_decref(o);
    return rc;
}

static const char *rv_of(const json_t *o)
{
    const char *rv =
        json_string_value(json_object_get(json_object_get(o, "metadata"), "resourceVersion"));
    return rv ? rv : "";
}

static const char *name_of(const json_t *o)
{
    const char *n = json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
    return n ? n : "";
}

/* ======================================================================= client */

static enum mm_status count_item(void *ctx, json_t *item)
{
    int *n = ctx;
    if (json_is_object(item))
        (*n)++;
    return MM_OK;
}

static void group_client(void)
{
    struct k8s_client *c = client();
    struct k8s_error err = K8S_ERROR_INIT;
    json_t *out = NULL;
    enum mm_status rc;
    const char *ns = uniq("e2e-client");

    /* raw request and discovery */
    struct k8s_response r;
    rc = k8s_request(c, "GET", "/version", NULL, 0, NULL, NULL, &r, &err);
    check(rc == MM_OK && r.http_code == 200 && strstr(r.body, "\"gitVersion\""),
          "GET /version over TLS with the kubeconfig's CA data and token (%s)",
          rc ? err.base.message : "200");
    k8s_response_cleanup(&r);
    bool exists = false;
    rc = k8s_resource_exists(c, &leases, NULL, &exists, &err);
    check(rc == MM_OK && exists, "discovery: coordination.k8s.io/v1 leases served");
    struct k8s_resource mm = {"kuma.io", "v1alpha1", "meshmetrics"};
    rc = k8s_resource_exists(c, &mm, NULL, &exists, &err);
    check(rc == MM_OK && !exists,
          "discovery: kuma.io/v1alpha1 meshmetrics not installed (404 -> false)");

    ns_create(c, ns);

    /* get 404 */
    rc = k8s_get(c, &cms, ns, "nope", NULL, NULL, &out, &err);
    check(rc == MM_ERR_NOT_FOUND && err.http_code == 404 && !strcmp(err.reason, "NotFound") &&
              err.message && strstr(err.message, "configmaps \"nope\" not found"),
          "get of a missing object: MM_ERR_NOT_FOUND, the server's message kept: %s",
          err.message ? err.message : "(none)");

    /* create, AlreadyExists */
    json_t *created = NULL;
    rc = cm_create(c, ns, "one", "1", &created, &err);
    check(rc == MM_OK && rv_of(created)[0], "create configmap one (rv %s)", rv_of(created));
    rc = cm_create(c, ns, "one", "1", NULL, &err);
    check(rc == MM_ERR_CONFLICT && k8s_error_has_reason(&err, "AlreadyExists"),
          "create again: MM_ERR_CONFLICT with reason AlreadyExists");

    /* update with the current RV, then with the stale one: 409 Conflict */
    json_t *upd = json_deep_copy(created);
    json_object_set_new(json_object_get(upd, "data"), "v", json_string("2"));
    json_t *updated = NULL;
    rc = k8s_update(c, &cms, ns, "one", NULL, upd, NULL, &updated, &err);
    check(rc == MM_OK && strcmp(rv_of(updated), rv_of(created)),
          "update with the current resourceVersion (new rv %s)", rv_of(updated));
    rc = k8s_update(c, &cms, ns, "one", NULL, upd, NULL, NULL, &err);
    check(rc == MM_ERR_CONFLICT && k8s_error_has_reason(&err, "Conflict") && err.http_code == 409,
          "update with a stale resourceVersion: 409 Conflict (%s)", err.base.message);
    json_decref(upd);

    /* patches */
    json_t *jp = json_pack("[{s:s, s:s, s:s}]", "op", "add", "path", "/data/j", "value", "json");
    rc = k8s_patch(c, &cms, ns, "one", NULL, K8S_PATCH_JSON, jp, NULL, &out, &err);
    check(
        rc == MM_OK &&
            !strcmp(json_string_value(json_object_get(json_object_get(out, "data"), "j")), "json"),
        "JSON patch");
    json_decref(out);
    json_decref(jp);
    json_t *mp = json_pack("{s:{s:s, s:n}}", "data", "m", "merge", "j");
    rc = k8s_patch(c, &cms, ns, "one", NULL, K8S_PATCH_MERGE, mp, NULL, &out, &err);
    const json_t *data = json_object_get(out, "data");
    check(rc == MM_OK && json_object_get(data, "m") && !json_object_get(data, "j"),
          "merge patch (null deletes a key)");
    json_decref(out);
    json_decref(mp);
    jp = json_pack("[{s:s, s:s, s:s}]", "op", "test", "path", "/metadata/resourceVersion", "value",
                   rv_of(created));
    rc = k8s_patch(c, &cms, ns, "one", NULL, K8S_PATCH_JSON, jp, NULL, NULL, &err);
    check(rc == MM_ERR_INVALID && err.http_code == 422,
          "JSON patch with a failing test op on a stale resourceVersion: 422 (%s)",
          err.base.message);
    json_decref(jp);

    /* paging: 23 more objects, pages of 7 carry one RV */
    for (int i = 0; i < 23; i++) {
        char name[32];
        snprintf(name, sizeof name, "page-%02d", i);
        rc = cm_create(c, ns, name, "p", NULL, &err);
    }
    struct k8s_list_opts lo = {.limit = 7};
    int pages = 0, items = 0;
    bool same_rv = true;
    char first_rv[64] = "";
    char *cont = NULL;
    do {
        lo.continue_token = cont;
        json_t *page = NULL;
        rc = k8s_list(c, &cms, ns, &lo, NULL, &page, &err);
        if (rc != MM_OK)
            break;
        pages++;
        items += (int)json_array_size(json_object_get(page, "items"));
        const json_t *meta = json_object_get(page, "metadata");
        const char *prv = json_string_value(json_object_get(meta, "resourceVersion"));
        if (!first_rv[0])
            snprintf(first_rv, sizeof first_rv, "%s", prv ? prv : "");
        else if (!prv || strcmp(prv, first_rv))
            same_rv = false;
        const char *next = json_string_value(json_object_get(meta, "continue"));
        free(cont);
        cont = next ? xstrdup(next) : NULL;
        json_decref(page);
    } while (cont);
    free(cont);
    check(rc == MM_OK && pages == 4 && items == 24 && same_rv,
          "list with limit=7: %d pages, %d items, one resourceVersion across pages", pages, items);

    /* list_each follows continue and hands items one by one */
    int counted = 0;
    char *lrv = NULL;
    struct k8s_list_opts lo2 = {.limit = 5};
    rc = k8s_list_each(c, &cms, ns, &lo2, NULL, count_item, &counted, &lrv, &err);
    check(rc == MM_OK && counted == 24 && lrv && lrv[0],
          "list_each with limit=5: %d items one by one, list rv %s", counted, lrv ? lrv : "");
    free(lrv);

    /* labelSelector/fieldSelector */
    struct k8s_list_opts lo3 = {.field_selector = "metadata.name=one"};
    json_t *page = NULL;
    rc = k8s_list(c, &cms, ns, &lo3, NULL, &page, &err);
    check(rc == MM_OK && json_array_size(json_object_get(page, "items")) == 1,
          "list with fieldSelector metadata.name=one");
    json_decref(page);

    /* the status subresource of a custom resource */
    const char *crd_yaml =
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: widgets.example.com}\n"
        "spec:\n  group: example.com\n  names: {kind: Widget, plural: widgets, singular: widget}\n"
        "  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n"
        "    subresources: {status: {}}\n"
        "    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: "
        "true}}\n";
    json_t *docs = NULL;
    struct mm_error yerr;
    if (yamljson_load(crd_yaml, strlen(crd_yaml), NULL, &docs, &yerr) == MM_OK) {
        rc = k8s_create(c, &crds, NULL, json_array_get(docs, 0), NULL, NULL, &err);
        check(rc == MM_OK || rc == MM_ERR_CONFLICT, "create the widgets CRD");
    }
    json_decref(docs);
    sleep_ms(200);
    rc = k8s_resource_exists(c, &widgets, NULL, &exists, &err);
    check(rc == MM_OK && exists, "discovery: example.com/v1 widgets served after the CRD");
    json_t *w = json_pack("{s:s, s:s, s:{s:s}, s:{s:i}, s:{s:s}}", "apiVersion", "example.com/v1",
                          "kind", "Widget", "metadata", "name", "w1", "spec", "size", 1, "status",
                          "phase", "ignored-on-create");
    json_t *wc = NULL;
    rc = k8s_create(c, &widgets, ns, w, NULL, &wc, &err);
    check(rc == MM_OK && !json_object_get(wc, "status"),
          "create a widget (status dropped by the server)");
    json_t *sp = json_pack("{s:{s:s, s:i}}", "status", "phase", "Ready", "observedGeneration", 1);
    struct k8s_call_opts fm = {.field_manager = "meshmetric-operator"};
    rc = k8s_patch(c, &widgets, ns, "w1", "status", K8S_PATCH_MERGE, sp, &fm, &out, &err);
    check(rc == MM_OK &&
              !strcmp(json_string_value(json_object_get(json_object_get(out, "status"), "phase")),
                      "Ready") &&
              json_integer_value(json_object_get(json_object_get(out, "metadata"), "generation")) ==
                  1,
          "merge patch of /status (generation unchanged)");
    /* update /status with the RV just returned, then a stale one */
    json_object_set_new(json_object_get(out, "status"), "phase", json_string("Done"));
    json_t *out2 = NULL;
    rc = k8s_update(c, &widgets, ns, "w1", "status", out, &fm, &out2, &err);
    check(rc == MM_OK, "PUT /status with the current resourceVersion");
    rc = k8s_update(c, &widgets, ns, "w1", "status", out, &fm, NULL, &err);
    check(rc == MM_ERR_CONFLICT && k8s_error_has_reason(&err, "Conflict"),
          "PUT /status with a stale resourceVersion: Conflict");
    json_t *noversion = json_deep_copy(out2);
    json_object_del(json_object_get(noversion, "metadata"), "resourceVersion");
    rc = k8s_update(c, &widgets, ns, "w1", NULL, noversion, NULL, NULL, &err);
    check(rc == MM_ERR_INVALID && err.http_code == 422,
          "PUT of a custom resource without resourceVersion: 422 Invalid (%s)",
          err.message ? err.message : "");
    json_decref(noversion);
    json_decref(out);
    json_decref(out2);
    json_decref(sp);
    json_decref(w);
    json_decref(wc);

    /* delete: a stale precondition is a conflict; then a real delete */
    struct k8s_delete_opts d;
    k8s_delete_opts_init(&d);
    d.precondition_rv = "1";
    rc = k8s_delete(c, &cms, ns, "one", &d, NULL, NULL, &err);
    check(rc == MM_ERR_CONFLICT, "delete with a stale resourceVersion precondition: conflict (%s)",
          err.base.message);
    k8s_delete_opts_init(&d);
    d.propagation = K8S_PROPAGATION_BACKGROUND;
    rc = k8s_delete(c, &cms, ns, "one", &d, NULL, &out, &err);
    check(rc == MM_OK, "delete with propagationPolicy Background");
    json_decref(out);
    rc = k8s_delete(c, &widgets, ns, "w1", NULL, NULL, &out, &err);
    check(rc == MM_OK && !strcmp(json_string_value(json_object_get(out, "kind")), "Status"),
          "delete a custom resource: a Success Status comes back");
    json_decref(out);
    rc = k8s_get(c, &cms, ns, "one", NULL, NULL, &out, &err);
    check(rc == MM_ERR_NOT_FOUND, "gone after delete");

    /* 429 with Retry-After: a list and a create are retried after the delay */
    ctl(c, "fail", "{\"verb\":\"list\",\"resource\":\"configmaps\",\"code\":429,\"count\":2}");
    uint64_t t0 = k8s_clock_ms();
    rc = k8s_list(c, &cms, ns, NULL, NULL, &page, &err);
    uint64_t took = k8s_clock_ms() - t0;
    check(rc == MM_OK && took >= 1900,
          "list answered 429 twice (Retry-After 1 s): retried, took %llu ms",
          (unsigned long long)took);
    json_decref(page);
    /* Writes: retried only for 429 with Retry-After. DELETE without a body is used because the
     * local server answers injected failures without reading a request body, which breaks the
     * keep-alive connection for the next request (a server bug, reported). */
    rc = cm_create(c, ns, "del-429", "x", NULL, &err);
    rc = cm_create(c, ns, "del-500", "x", NULL, &err);
    ctl(c, "fail", "{\"verb\":\"delete\",\"resource\":\"configmaps\",\"code\":429,\"count\":1}");
    t0 = k8s_clock_ms();
    rc = k8s_delete(c, &cms, ns, "del-429", NULL, NULL, NULL, &err);
    took = k8s_clock_ms() - t0;
    check(rc == MM_OK && took >= 900, "delete answered 429 with Retry-After: retried after %llu ms",
          (unsigned long long)took);
    ctl(c, "fail", "{\"verb\":\"delete\",\"resource\":\"configmaps\",\"code\":500,\"count\":1}");
    rc = k8s_delete(c, &cms, ns, "del-500", NULL, NULL, NULL, &err);
    check(rc == MM_ERR_RETRY && err.http_code == 500,
          "delete answered 500: not retried, MM_ERR_RETRY for the caller");
    ctl(c, "reset-faults", NULL);

    struct k8s_client_stats st;
    k8s_client_stats(c, &st);
    check(st.retries >= 3, "client counters: %llu requests, %llu retries, %llu failures",
          (unsigned long long)st.requests, (unsigned long long)st.retries,
          (unsigned long long)st.failures);

    json_decref(created);
    json_decref(updated);
    k8s_error_cleanup(&err);
    k8s_client_free(c);
}

/* ======================================================================= tls */

static void expect_tls_failure(const char *env_name, const char *what, const char *needle)
{
    struct k8s_error kerr = K8S_ERROR_INIT;
    enum mm_status rc;
    struct k8s_client *c = client_from(env_name, &kerr, &rc);
    if (!c) {
        check(false, "%s: cannot make the client (%s)", what, kerr.base.message);
        k8s_error_cleanup(&kerr);
        return;
    }
    json_t *out = NULL;
    rc = k8s_get(c, &nss, NULL, "default", NULL, NULL, &out, &kerr);
    check(rc == MM_ERR_TLS && kerr.http_code == 0 && strstr(kerr.base.message, needle),
          "%s: MM_ERR_TLS, %s", what, kerr.base.message);
    json_decref(out);
    k8s_error_cleanup(&kerr);
    k8s_client_free(c);
}

static void group_tls(void)
{
    expect_tls_failure("MM_BAD_CA_KUBECONFIG", "a CA that did not sign the server's certificate",
                       "certificate");
    expect_tls_failure("MM_SNI_BAD_KUBECONFIG",
                       "tls-server-name other.example (not in the certificate's SANs)",
                       "other.example");
    struct k8s_error kerr = K8S_ERROR_INIT;
    enum mm_status rc;
    struct k8s_client *c = client_from("MM_SNI_OK_KUBECONFIG", &kerr, &rc);
    json_t *out = NULL;
    rc = c ? k8s_get(c, &nss, NULL, "default", NULL, NULL, &out, &kerr) : rc;
    check(rc == MM_OK, "tls-server-name localhost (a SAN of the certificate): verified (%s)",
          rc ? kerr.base.message : "ok");
    json_decref(out);
    k8s_error_cleanup(&kerr);
    k8s_client_free(c);
    /* a client certificate and key from PEM in memory (the server does not ask for one, but
     * libcurl loads both into the TLS context: a key that does not match fails cleanly) */
    c = client_from("MM_CERT_KUBECONFIG", &kerr, &rc);
    rc = c ? k8s_get(c, &nss, NULL, "default", NULL, NULL, &out, &kerr) : rc;
    check(rc == MM_OK, "client-certificate-data + client-key-data: loaded, request verified (%s)",
          rc ? kerr.base.message : "ok");
    json_decref(out);
    out = NULL;
    k8s_client_free(c);
    c = client_from("MM_BAD_KEY_KUBECONFIG", &kerr, &rc);
    rc = c ? k8s_get(c, &nss, NULL, "default", NULL, NULL, &out, &kerr) : rc;
    check(rc == MM_ERR_TLS && strstr(kerr.base.message, "TLS") &&
              !strstr(kerr.base.message, "PRIVATE KEY"),
          "a client key that does not match the certificate: MM_ERR_TLS (%s)", kerr.base.message);
    json_decref(out);
    out = NULL;
    k8s_client_free(c);

    /* in-cluster: KUBERNETES_SERVICE_HOST/PORT and the service account files */
    struct k8s_incluster_env env = {.host = getenv("MM_INCLUSTER_HOST"),
                                    .port = getenv("MM_INCLUSTER_PORT"),
                                    .token_file = getenv("MM_INCLUSTER_TOKEN"),
                                    .ca_file = getenv("MM_INCLUSTER_CA"),
                                    .namespace_file = "/nonexistent/namespace"};
    struct k8s_load_options lo = {.home = "/nonexistent", .incluster = env};
    struct k8s_config cfg;
    struct mm_error merr;
    k8s_config_init(&cfg);
    rc = env.host ? k8s_config_load(&lo, &cfg, &merr) : MM_ERR_NOT_FOUND;
    check(rc == MM_OK && cfg.in_cluster && !strcmp(cfg.namespace, "default"),
          "loading rules without a kubeconfig: in-cluster (%s, namespace %s)",
          rc ? merr.message : cfg.server, cfg.namespace ? cfg.namespace : "");
    c = NULL;
    if (rc == MM_OK)
        rc = k8s_client_create(&cfg, NULL, &c, &kerr);
    rc = c ? k8s_get(c, &nss, NULL, "default", NULL, NULL, &out, &kerr) : rc;
    check(rc == MM_OK, "in-cluster client: token file and ca.crt work against the server (%s)",
          rc ? kerr.base.message : "ok");
    json_decref(out);
    out = NULL;
    k8s_client_free(c);
    k8s_config_cleanup(&cfg);

    /* a wrong token: 401 -> MM_ERR_DENIED */
    c = client_from("MM_BAD_TOKEN_KUBECONFIG", &kerr, &rc);
    rc = c ? k8s_get(c, &nss, NULL, "default", NULL, NULL, &out, &kerr) : rc;
    check(rc == MM_ERR_DENIED && kerr.http_code == 401, "a wrong token: 401 -> MM_ERR_DENIED");
    json_decref(out);
    k8s_error_cleanup(&kerr);
    k8s_client_free(c);
}

/* ======================================================================= watch */

struct wseen {
    int added, modified, deleted, bookmarks;
    char last_rv[64];
};

static enum mm_status wseen_fn(void *ctx, const struct k8s_watch_event *ev)
{
    struct wseen *s = ctx;
    switch (ev->type) {
    case K8S_EVENT_ADDED:
        s->added++;
        break;
    case K8S_EVENT_MODIFIED:
        s->modified++;
        break;
    case K8S_EVENT_DELETED:
        s->deleted++;
        break;
    case K8S_EVENT_BOOKMARK:
        s->bookmarks++;
        break;
    default:
        break;
    }
    if (ev->resource_version)
        snprintf(s->last_rv, sizeof s->last_rv, "%s", ev->resource_version);
    return MM_OK;
}

struct writes {
    struct k8s_client *c;
    const char *ns;
};

static void *three_writes(void *arg)
{
    struct writes *w = arg;
    struct k8s_error err = K8S_ERROR_INIT;
    sleep_ms(300);
    json_t *o = NULL;
    if (cm_create(w->c, w->ns, "watched", "1", &o, &err) == MM_OK) {
        json_t *mp = json_pack("{s:{s:s}}", "data", "v", "2");
        enum mm_status rc =
            k8s_patch(w->c, &cms, w->ns, "watched", NULL, K8S_PATCH_MERGE, mp, NULL, NULL, &err);
        (void)rc;
        json_decref(mp);
        rc = k8s_delete(w->c, &cms, w->ns, "watched", NULL, NULL, NULL, &err);
    }
    json_decref(o);
    k8s_error_cleanup(&err);
    return NULL;
}

static void *fire_later(void *arg)
{
    sleep_ms(500);
    k8s_cancel_fire(arg);
    return NULL;
}

static void group_watch(void)
{
    struct k8s_client *c = client();
    struct k8s_error err = K8S_ERROR_INIT;
    const char *ns = uniq("e2e-watch");
    ns_create(c, ns);
    json_t *page = NULL;
    enum mm_status rc = k8s_list(c, &cms, ns, NULL, NULL, &page, &err);
    char *rv = xstrdup(rv_of(page));
    json_decref(page);

    struct wseen seen = {0};
    struct writes w = {c, ns};
    pthread_t t;
    pthread_create(&t, NULL, three_writes, &w);
    struct k8s_watch_opts wo = {.resource_version = rv, .timeout_seconds = 2};
    uint64_t t0 = k8s_clock_ms();
    rc = k8s_watch(c, &cms, ns, &wo, wseen_fn, &seen, &err);
    uint64_t took = k8s_clock_ms() - t0;
    pthread_join(t, NULL);
    check(rc == MM_OK && seen.added == 1 && seen.modified == 1 && seen.deleted == 1,
          "watch from the list's RV: ADDED, MODIFIED, DELETED (%d/%d/%d)", seen.added,
          seen.modified, seen.deleted);
    check(seen.bookmarks >= 1,
          "allowWatchBookmarks: a BOOKMARK before timeoutSeconds ends the stream (rv %s)",
          seen.last_rv);
    check(took >= 1800 && took < 6000, "timeoutSeconds=2 ended the stream after %llu ms",
          (unsigned long long)took);

    /* a too old RV: the ERROR 410 event becomes MM_ERR_EXPIRED */
    ctl(c, "compact", NULL);
    struct k8s_watch_opts old = {.resource_version = rv, .timeout_seconds = 5};
    memset(&seen, 0, sizeof seen);
    rc = k8s_watch(c, &cms, ns, &old, wseen_fn, &seen, &err);
    check(rc == MM_ERR_EXPIRED && err.http_code == 410 && err.message &&
              strstr(err.message, "too old resource version"),
          "watch from a compacted RV: ERROR event 410 Expired -> MM_ERR_EXPIRED (%s)",
          err.message ? err.message : "");

    /* cancellation from another thread ends a quiet watch at once */
    struct k8s_cancel *cancel = k8s_cancel_create();
    struct k8s_watch_opts quiet = {.timeout_seconds = 60, .cancel = cancel};
    pthread_t ct;
    pthread_create(&ct, NULL, fire_later, cancel);
    t0 = k8s_clock_ms();
    memset(&seen, 0, sizeof seen);
    rc = k8s_watch(c, &cms, ns, &quiet, wseen_fn, &seen, &err);
    took = k8s_clock_ms() - t0;
    pthread_join(ct, NULL);
    check(rc == MM_ERR_CANCELLED && took < 1500,
          "a watch cancelled from another thread after 500 ms returned after %llu ms",
          (unsigned long long)took);
    k8s_cancel_free(cancel);
    free(rv);
    k8s_error_cleanup(&err);
    k8s_client_free(c);
}

/* ======================================================================= reflector */

#define ELSEWHERE "e2e-elsewhere" /* writes there move the server's RV but not our namespace's */

/* The consumer: a cache of name -> resourceVersion that checks every event. */
struct tcache {
    pthread_mutex_t lock;
    json_t *objs;    /* name -> rv */
    json_t *pending; /* the replace in progress */
    long adds, updates, deletes, replaces, aborts, synced;
    long deleted_by_replace;
    long dups;    /* an event whose RV the cache already had (or a newer one) */
    long unknown; /* update/delete of an object the cache did not have */
    char problem[512];
};

static long long rv_num(const char *rv)
{
    return rv && rv[0] ? strtoll(rv, NULL, 10) : -1;
}

static void tc_problem(struct tcache *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tc_problem(struct tcache *t, const char *fmt, ...)
{
    if (t->problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->problem, sizeof t->problem, fmt, ap);
    va_end(ap);
}

static void tc_event(struct tcache *t, json_t *obj, int kind /* 0 add, 1 update, 2 delete */)
{
    const char *name = name_of(obj), *rv = rv_of(obj);
    pthread_mutex_lock(&t->lock);
    const char *have = json_string_value(json_object_get(t->objs, name));
    if (have && rv_num(rv) <= rv_num(have)) {
        t->dups++;
        tc_problem(t, "%s %s rv %s delivered again (cache has rv %s)",
                   kind == 0   ? "ADDED"
                   : kind == 1 ? "MODIFIED"
                               : "DELETED",
                   name, rv, have);
    }
    if (!have && kind != 0) {
        t->unknown++;
        tc_problem(t, "%s of %s (rv %s) that the cache never had",
                   kind == 1 ? "MODIFIED" : "DELETED", name, rv);
    }
    if (kind == 2) {
        json_object_del(t->objs, name);
        t->deletes++;
    } else {
        json_object_set_new(t->objs, name, json_string(rv));
        if (kind == 0)
            t->adds++;
        else
            t->updates++;
    }
    pthread_mutex_unlock(&t->lock);
}

static void tc_add(void *ctx, json_t *o)
{
    tc_event(ctx, o, 0);
}
static void tc_update(void *ctx, json_t *o)
{
    tc_event(ctx, o, 1);
}
static void tc_delete(void *ctx, json_t *o)
{
    tc_event(ctx, o, 2);
}
static void tc_begin(void *ctx)
{
    struct tcache *t = ctx;
    pthread_mutex_lock(&t->lock);
    json_decref(t->pending);
    t->pending = json_object();
    pthread_mutex_unlock(&t->lock);
}
static void tc_item(void *ctx, json_t *o)
{
    struct tcache *t = ctx;
    pthread_mutex_lock(&t->lock);
    json_object_set_new(t->pending, name_of(o), json_string(rv_of(o)));
    pthread_mutex_unlock(&t->lock);
}
static void tc_end(void *ctx, const char *rv)
{
    (void)rv;
    struct tcache *t = ctx;
    pthread_mutex_lock(&t->lock);
    const char *k;
    json_t *v;
    json_object_foreach(t->objs, k, v)
    {
        if (!json_object_get(t->pending, k))
            t->deleted_by_replace++;
    }
    json_decref(t->objs);
    t->objs = t->pending;
    t->pending = NULL;
    t->replaces++;
    pthread_mutex_unlock(&t->lock);
}
static void tc_abort(void *ctx)
{
    struct tcache *t = ctx;
    pthread_mutex_lock(&t->lock);
    json_decref(t->pending);
    t->pending = NULL;
    t->aborts++;
    pthread_mutex_unlock(&t->lock);
}
static void tc_synced(void *ctx)
{
    struct tcache *t = ctx;
    pthread_mutex_lock(&t->lock);
    t->synced++;
    pthread_mutex_unlock(&t->lock);
}

/* The writer: creates, patches and deletes w-00..w-19 in the namespace until stopped. */
struct writer {
    struct k8s_client *c;
    char ns[64];
    atomic_bool stop;
    atomic_long ops;
    pthread_t thread;
    bool running;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct k8s_error err = K8S_ERROR_INIT;
    uint64_t x = (uint64_t)k8s_clock_ms() | 1;
    long i = 0;
    while (!atomic_load(&w->stop)) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        char name[32], val[32];
        snprintf(name, sizeof name, "w-%02d", (int)((x >> 33) % 20));
        snprintf(val, sizeof val, "%ld", i++);
        enum mm_status rc;
        switch ((x >> 40) % 4) {
        case 0:
            rc = cm_create(w->c, w->ns, name, val, NULL, &err);
            break;
        case 3:
            rc = k8s_delete(w->c, &cms, w->ns, name, NULL, NULL, NULL, &err);
            break;
        default: {
            json_t *mp = json_pack("{s:{s:s}}", "data", "v", val);
            rc = k8s_patch(w->c, &cms, w->ns, name, NULL, K8S_PATCH_MERGE, mp, NULL, NULL, &err);
            json_decref(mp);
        }
        }
        (void)rc; /* 404/409/503 are all part of the game */
        atomic_fetch_add(&w->ops, 1);
        sleep_ms(8);
    }
    k8s_error_cleanup(&err);
    return NULL;
}

static void writer_start(struct writer *w, struct k8s_client *c, const char *ns)
{
    w->c = c;
    snprintf(w->ns, sizeof w->ns, "%s", ns);
    atomic_init(&w->stop, false);
    atomic_init(&w->ops, 0);
    pthread_create(&w->thread, NULL, writer_main, w);
    w->running = true;
}

static void writer_stop(struct writer *w)
{
    if (!w->running)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    w->running = false;
}

struct rig {
    struct k8s_client *c; /* shared by the reflector, the writer and the checks */
    char ns[64];
    struct tcache cache;
    struct k8s_reflector *r;
    struct writer w;
};

static double zero_random(void *ctx)
{
    (void)ctx;
    return 0.0;
}

static void rig_start(struct rig *g, struct k8s_client *c, const char *ns, int seed,
                      const struct k8s_reflector_options *opts)
{
    memset(g, 0, sizeof *g);
    g->c = c;
    snprintf(g->ns, sizeof g->ns, "%s", ns);
    ns_create(c, ns);
    struct k8s_error err = K8S_ERROR_INIT;
    for (int i = 0; i < seed; i++) {
        char name[32];
        snprintf(name, sizeof name, "seed-%03d", i);
        enum mm_status rc = cm_create(c, ns, name, "s", NULL, &err);
        (void)rc;
    }
    k8s_error_cleanup(&err);
    pthread_mutex_init(&g->cache.lock, NULL);
    g->cache.objs = json_object();
    struct k8s_reflector_handler h = {.ctx = &g->cache,
                                      .replace_begin = tc_begin,
                                      .replace_item = tc_item,
                                      .replace_end = tc_end,
                                      .replace_abort = tc_abort,
                                      .add = tc_add,
                                      .update = tc_update,
                                      .delete = tc_delete,
                                      .synced = tc_synced};
    struct k8s_reflector_options o;
    if (opts)
        o = *opts;
    else
        k8s_reflector_options_init(&o);
    o.namespace = g->ns;
    o.name = g->ns;
    struct mm_error merr;
    if (k8s_reflector_create(c, &cms, &o, &h, &g->r, &merr) != MM_OK ||
        k8s_reflector_start(g->r, &merr) != MM_OK) {
        fprintf(stderr, "k8s_e2e: reflector: %s\n", merr.message);
        exit(2);
    }
}

static bool rig_wait_synced(struct rig *g, uint64_t ms)
{
    uint64_t until = k8s_clock_ms() + ms;
    struct k8s_reflector_state st;
    do {
        k8s_reflector_state(g->r, &st);
        if (st.synced)
            return true;
        sleep_ms(20);
    } while (k8s_clock_ms() < until);
    return false;
}

/* The server's objects in the namespace (consistent read): name -> rv. */
static json_t *server_objects(struct k8s_client *c, const char *ns)
{
    json_t *m = json_object();
    json_t *page = NULL;
    struct k8s_error err = K8S_ERROR_INIT;
    if (k8s_list(c, &cms, ns, NULL, NULL, &page, &err) != MM_OK) {
        json_decref(m);
        k8s_error_cleanup(&err);
        return NULL;
    }
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(page, "items"), i, it)
        json_object_set_new(m, name_of(it), json_string(rv_of(it)));
    json_decref(page);
    k8s_error_cleanup(&err);
    return m;
}

/* Wait until the cache equals the server's objects; true if it did within ms. */
static bool rig_converged(struct rig *g, uint64_t ms, char *why, size_t whylen)
{
    uint64_t until = k8s_clock_ms() + ms;
    why[0] = '\0';
    do {
        json_t *srv = server_objects(g->c, g->ns);
        pthread_mutex_lock(&g->cache.lock);
        bool eq = srv && json_equal(srv, g->cache.objs);
        size_t n_cache = json_object_size(g->cache.objs);
        pthread_mutex_unlock(&g->cache.lock);
        if (eq) {
            snprintf(why, whylen, "%zu objects", n_cache);
            json_decref(srv);
            return true;
        }
        snprintf(why, whylen, "cache has %zu objects, server %zu", n_cache,
                 srv ? json_object_size(srv) : 0);
        json_decref(srv);
        sleep_ms(100);
    } while (k8s_clock_ms() < until);
    return false;
}

/* Converged, no duplicate, no unknown object; then stop the reflector (timed). */
static void rig_finish(struct rig *g, const char *scenario)
{
    char why[256];
    writer_stop(&g->w);
    bool conv = rig_converged(g, 15000, why, sizeof why);
    check(conv, "%s: the cache ends equal to the server's objects (%s)", scenario, why);
    check(g->cache.dups == 0 && g->cache.unknown == 0,
          "%s: no event delivered twice, none for an unknown object (%ld adds, %ld updates, %ld "
          "deletes, %ld replaces)%s%s",
          scenario, g->cache.adds, g->cache.updates, g->cache.deletes, g->cache.replaces,
          g->cache.problem[0] ? ": " : "", g->cache.problem);
    uint64_t t0 = k8s_clock_ms();
    k8s_reflector_stop(g->r);
    uint64_t took = k8s_clock_ms() - t0;
    check(took < 1000, "%s: stop returned in %llu ms", scenario, (unsigned long long)took);
    k8s_reflector_free(g->r);
    json_decref(g->cache.objs);
    json_decref(g->cache.pending);
    pthread_mutex_destroy(&g->cache.lock);
}

static struct k8s_reflector_state rstate(struct rig *g)
{
    struct k8s_reflector_state st;
    k8s_reflector_state(g->r, &st);
    return st;
}

/* Poll the reflector's state until cond holds or ms pass; the last state seen. */
static struct k8s_reflector_state rwait(struct rig *g, uint64_t ms,
                                        bool (*cond)(const struct k8s_reflector_state *))
{
    uint64_t until = k8s_clock_ms() + ms;
    struct k8s_reflector_state st;
    for (;;) {
        st = rstate(g);
        if (cond(&st) || k8s_clock_ms() > until)
            return st;
        sleep_ms(50);
    }
}

static bool two_expired_relists(const struct k8s_reflector_state *st)
{
    return st->expired >= 2 && st->relists >= 2;
}

static bool one_expired_relist(const struct k8s_reflector_state *st)
{
    return st->expired >= 1 && st->relists >= 1;
}

static void sc_timeout_rewatch(struct k8s_client *c)
{
    struct rig g;
    struct k8s_reflector_options o;
    k8s_reflector_options_init(&o);
    o.min_watch_timeout_s = 1; /* timeoutSeconds in [1, 2): many re-watches */
    o.page_size = 7;           /* the initial list comes in pages */
    rig_start(&g, c, uniq("e2e-refl-timeout"), 20, &o);
    check(rig_wait_synced(&g, 5000), "timeout: synced (20 seeds)");
    writer_start(&g.w, c, g.ns);
    sleep_ms(5000);
    struct k8s_reflector_state st = rstate(&g);
    check(st.watches >= 3 && st.lists == 1 && st.bookmarks >= 1,
          "timeout: watches ended by timeoutSeconds are resumed from the last RV (%llu watches, "
          "%llu lists, %llu bookmarks, %ld writes)",
          (unsigned long long)st.watches, (unsigned long long)st.lists,
          (unsigned long long)st.bookmarks, (long)atomic_load(&g.w.ops));
    rig_finish(&g, "timeout");
}

static void sc_close_watches(struct k8s_client *c)
{
    struct rig g;
    rig_start(&g, c, uniq("e2e-refl-close"), 10, NULL);
    check(rig_wait_synced(&g, 5000), "close-watches: synced");
    writer_start(&g.w, c, g.ns);
    sleep_ms(700); /* the first watch then lives > 1 s before it is killed */
    for (int i = 0; i < 6; i++) {
        sleep_ms(500);
        ctl(c, "close-watches", NULL);
    }
    sleep_ms(500);
    struct k8s_reflector_state st = rstate(&g);
    check(st.watches >= 7 && st.lists == 1,
          "close-watches: every killed watch resumed without a relist (%llu watches, %llu lists, "
          "%llu events)",
          (unsigned long long)st.watches, (unsigned long long)st.lists,
          (unsigned long long)st.events);
    rig_finish(&g, "close-watches");
}

static void sc_expire(struct k8s_client *c)
{
    struct rig g;
    rig_start(&g, c, uniq("e2e-refl-expire"), 10, NULL);
    check(rig_wait_synced(&g, 5000), "expire: synced");
    writer_start(&g.w, c, g.ns);
    sleep_ms(1200); /* older than a "very short watch" */
    ctl(c, "expire-next-watch", "{\"count\":2}");
    ctl(c, "close-watches", NULL);
    struct k8s_reflector_state st = rwait(&g, 10000, two_expired_relists);
    check(st.expired >= 2 && st.relists >= 2,
          "expire: two forced 410 ERROR events, each followed by a relist (%llu expired, %llu "
          "relists)",
          (unsigned long long)st.expired, (unsigned long long)st.relists);
    rig_finish(&g, "expire");
}

static void sc_compact(struct k8s_client *c)
{
    struct rig g;
    struct k8s_error err = K8S_ERROR_INIT;
    rig_start(&g, c, uniq("e2e-refl-compact"), 10, NULL);
    ns_create(c, ELSEWHERE);
    check(rig_wait_synced(&g, 5000), "compact: synced");
    writer_start(&g.w, c, g.ns);
    sleep_ms(1000);
    writer_stop(&g.w);
    sleep_ms(300);
    enum mm_status rc = cm_create(c, ELSEWHERE, "bump-compact", "x", NULL, &err);
    (void)rc;
    ctl(c, "compact", NULL); /* our last RV is now older than the oldest the server keeps */
    ctl(c, "close-watches", NULL);
    writer_start(&g.w, c, g.ns);
    struct k8s_reflector_state st = rwait(&g, 10000, one_expired_relist);
    check(st.expired >= 1 && st.relists >= 1,
          "compact: the re-watch from a compacted RV got 410 and relisted (%llu expired, %llu "
          "relists)",
          (unsigned long long)st.expired, (unsigned long long)st.relists);
    k8s_error_cleanup(&err);
    rig_finish(&g, "compact");
}

struct sampler {
    struct rig *g;
    atomic_bool stop;
    uint64_t backoffs[16];
    int n;
    pthread_t thread;
};

static void *sampler_main(void *arg)
{
    struct sampler *s = arg;
    uint64_t last_errors = 0;
    while (!atomic_load(&s->stop)) {
        struct k8s_reflector_state st = rstate(s->g);
        if (st.errors != last_errors) {
            last_errors = st.errors;
            if (s->n < 16)
                s->backoffs[s->n++] = st.last_backoff_ms;
        }
        sleep_ms(5);
    }
    return NULL;
}

static void sc_fail500(struct k8s_client *c)
{
    struct rig g;
    struct k8s_reflector_options o;
    k8s_reflector_options_init(&o);
    o.backoff_initial_ms =
        200; /* 800 ms / 30 s in production; shorter here to keep the test short */
    o.backoff_max_ms = 2000;
    o.random = zero_random; /* no jitter: the exact sequence shows */
    rig_start(&g, c, uniq("e2e-refl-fail500"), 10, &o);
    check(rig_wait_synced(&g, 5000), "fail500: synced");
    writer_start(&g.w, c, g.ns);
    sleep_ms(1200); /* older than a "very short watch" (1 s), which would count as an error */
    struct sampler s = {.g = &g};
    atomic_init(&s.stop, false);
    pthread_create(&s.thread, NULL, sampler_main, &s);
    ctl(c, "fail", "{\"verb\":\"watch\",\"resource\":\"configmaps\",\"code\":500,\"count\":6}");
    ctl(c, "close-watches", NULL);
    sleep_ms(200 + 400 + 800 + 1600 + 2000 + 2000 + 1500);
    atomic_store(&s.stop, true);
    pthread_join(s.thread, NULL);
    char seq[256] = "";
    size_t off = 0;
    for (int i = 0; i < s.n && off < sizeof seq - 16; i++)
        off += (size_t)snprintf(seq + off, sizeof seq - off, "%s%llu", i ? " " : "",
                                (unsigned long long)s.backoffs[i]);
    const uint64_t want[] = {200, 400, 800, 1600, 2000, 2000};
    bool same = s.n == 6;
    for (int i = 0; same && i < 6; i++)
        same = s.backoffs[i] == want[i];
    check(same, "fail500: six watch 500s back off exponentially up to the cap: %s ms", seq);
    struct k8s_reflector_state st = rstate(&g);
    check(st.lists == 1 && st.errors == 6 && st.last_error_code == MM_ERR_RETRY,
          "fail500: retried from the same RV without relisting (%llu lists, %llu errors: %s)",
          (unsigned long long)st.lists, (unsigned long long)st.errors, st.last_error);
    rig_finish(&g, "fail500");
}

static void sc_retry_after(struct k8s_client *c)
{
    struct rig g;
    struct k8s_reflector_options o;
    k8s_reflector_options_init(&o);
    o.backoff_initial_ms = 200;
    o.random = zero_random;
    rig_start(&g, c, uniq("e2e-refl-429"), 5, &o);
    check(rig_wait_synced(&g, 5000), "429: synced");
    sleep_ms(1200); /* older than a "very short watch" */
    ctl(c, "fail", "{\"verb\":\"watch\",\"resource\":\"configmaps\",\"code\":429,\"count\":1}");
    ctl(c, "close-watches", NULL);
    uint64_t until = k8s_clock_ms() + 5000;
    struct k8s_reflector_state st;
    do {
        sleep_ms(20);
        st = rstate(&g);
    } while (st.errors < 1 && k8s_clock_ms() < until);
    check(st.errors == 1 && st.last_backoff_ms == 1000,
          "429: a watch answered 429 with retryAfterSeconds=1 waits 1000 ms, not the 200 ms "
          "backoff (waited %llu ms)",
          (unsigned long long)st.last_backoff_ms);
    writer_start(&g.w, c, g.ns);
    sleep_ms(1500);
    rig_finish(&g, "429");
}

static void sc_resync(struct k8s_client *c)
{
    struct rig g;
    struct k8s_reflector_options o;
    k8s_reflector_options_init(&o);
    o.resync_ms = 1500;
    rig_start(&g, c, uniq("e2e-refl-resync"), 8, &o);
    check(rig_wait_synced(&g, 5000), "resync: synced");
    /* the consumer's cache diverges (a bug, a lost update...) */
    pthread_mutex_lock(&g.cache.lock);
    json_object_set_new(g.cache.objs, "bogus", json_string("1"));
    json_object_del(g.cache.objs, "seed-000");
    long before = g.cache.deleted_by_replace;
    pthread_mutex_unlock(&g.cache.lock);
    sleep_ms(2500);
    struct k8s_reflector_state st = rstate(&g);
    pthread_mutex_lock(&g.cache.lock);
    long removed = g.cache.deleted_by_replace - before;
    bool bogus = json_object_get(g.cache.objs, "bogus") != NULL;
    bool seed0 = json_object_get(g.cache.objs, "seed-000") != NULL;
    pthread_mutex_unlock(&g.cache.lock);
    check(st.resyncs >= 1 && removed == 1 && !bogus && seed0,
          "resync: a periodic relist repaired the diverged cache through replace (%llu resyncs)",
          (unsigned long long)st.resyncs);
    rig_finish(&g, "resync");
}

static void sc_restart(struct k8s_client *c, bool keep)
{
    const char *name = keep ? "restart-keep" : "restart-lost";
    struct rig g;
    struct k8s_error err = K8S_ERROR_INIT;
    struct k8s_reflector_options o;
    k8s_reflector_options_init(&o);
    o.backoff_initial_ms = 200;
    o.backoff_max_ms = 1000;
    rig_start(&g, c, uniq(keep ? "e2e-refl-restart-keep" : "e2e-refl-restart-lost"), 12, &o);
    ns_create(c, ELSEWHERE);
    char msg[128];
    snprintf(msg, sizeof msg, "%s: synced", name);
    check(rig_wait_synced(&g, 5000), "%s", msg);
    writer_start(&g.w, c, g.ns);
    sleep_ms(1000);
    writer_stop(&g.w);
    char why[256];
    bool conv = rig_converged(&g, 5000, why, sizeof why);
    pthread_mutex_lock(&g.cache.lock);
    long had = (long)json_object_size(g.cache.objs);
    long before = g.cache.deleted_by_replace;
    pthread_mutex_unlock(&g.cache.lock);
    enum mm_status rc = cm_create(c, ELSEWHERE, keep ? "bump-keep" : "bump-lost", "x", NULL, &err);
    (void)rc;
    ctl(c, "restart",
        keep ? "{\"keepState\":true,\"downSeconds\":1}"
             : "{\"keepState\":false,\"downSeconds\":1}");
    /* While "restarting" the server answers 429 with Retry-After (a real apiserver shutting down
     * does the same with --shutdown-send-retry-after): wait for the reflector to come back. */
    struct k8s_reflector_state st;
    long removed = 0;
    uint64_t t0 = k8s_clock_ms(), until = t0 + 15000;
    for (;;) {
        sleep_ms(100);
        st = rstate(&g);
        pthread_mutex_lock(&g.cache.lock);
        removed = g.cache.deleted_by_replace - before;
        pthread_mutex_unlock(&g.cache.lock);
        bool back = st.errors >= 1 && (keep ? st.watches >= 3 : st.relists >= 1);
        if (back || k8s_clock_ms() > until)
            break;
    }
    uint64_t took = k8s_clock_ms() - t0;
    if (keep)
        check(conv && st.errors >= 1 && removed == 0,
              "%s: watches closed, errors while down, then resumed after %llu ms; nothing deleted "
              "(%llu errors: %s)",
              name, (unsigned long long)took, (unsigned long long)st.errors, st.last_error);
    else
        check(conv && st.relists >= 1 && removed == had && had > 0,
              "%s: the %ld objects wiped while down were delivered as deletes via replace (%ld) "
              "after %llu ms (%llu relists, %llu errors)",
              name, had, removed, (unsigned long long)took, (unsigned long long)st.relists,
              (unsigned long long)st.errors);
    writer_start(&g.w, c, g.ns);
    sleep_ms(1500);
    k8s_error_cleanup(&err);
    rig_finish(&g, name);
}

static void sc_big_list(struct k8s_client *c)
{
    char ns[96];
    snprintf(ns, sizeof ns, "%s", uniq("e2e-refl-big"));
    ns_create(c, ns);
    char bulk[512];
    snprintf(bulk, sizeof bulk,
             "{\"resource\":\"configmaps\",\"namespace\":\"%s\",\"count\":2000,"
             "\"prefix\":\"bulk-\",\"template\":{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
             "\"metadata\":{\"labels\":{\"app\":\"bulk\"}},\"data\":{\"k\":\"v\"}}}",
             ns);
    ctl(c, "bulk", bulk);
    struct rig g;
    struct k8s_reflector_options o;
    k8s_reflector_options_init(&o);
    o.resync_ms = 2000; /* the resync relist is a consistent read, which the server pages */
    uint64_t t0 = k8s_clock_ms();
    rig_start(&g, c, ns, 0, &o);
    bool synced = rig_wait_synced(&g, 30000);
    uint64_t took = k8s_clock_ms() - t0;
    pthread_mutex_lock(&g.cache.lock);
    size_t n = json_object_size(g.cache.objs);
    pthread_mutex_unlock(&g.cache.lock);
    check(synced && n == 2000,
          "big: 2000 objects listed in pages of 500 and streamed to the handler "
          "in %llu ms",
          (unsigned long long)took);
    sleep_ms(3000);
    /* The request log: client-go's first list (limit=500&resourceVersion=0, which a watch cache
     * answers whole), then the resync's consistent list in pages of 500 followed by continue. */
    json_t *log = NULL;
    struct k8s_error err = K8S_ERROR_INIT;
    int first = 0, consistent = 0, conts = 0;
    if (k8s_get_raw(c, "/_control/requests", NULL, &log, &err) == MM_OK) {
        size_t i;
        json_t *r;
        char want[160];
        snprintf(want, sizeof want, "/namespaces/%s/configmaps?", ns);
        json_array_foreach(json_object_get(log, "requests"), i, r)
        {
            const char *p = json_string_value(json_object_get(r, "path"));
            if (!p || !strstr(p, want) || strstr(p, "watch=true"))
                continue;
            const char *q = strchr(p, '?') + 1;
            if (!strcmp(q, "limit=500&resourceVersion=0"))
                first++;
            else if (!strcmp(q, "limit=500"))
                consistent++;
            else if (!strncmp(q, "limit=500&continue=", 19))
                conts++;
        }
    }
    json_decref(log);
    k8s_error_cleanup(&err);
    struct k8s_reflector_state st = rstate(&g);
    check(
        first == 1 && consistent >= 1 && conts >= 3 * consistent && st.resyncs >= 1,
        "big: first list limit=500&resourceVersion=0; %d resync list(s) at the latest RV in pages "
        "of 500 with %d continue requests",
        consistent, conts);
    rig_finish(&g, "big");
}

static void group_reflector(int argc, char **argv)
{
    struct k8s_client *c = client();
    struct {
        const char *name;
        void (*fn)(struct k8s_client *);
    } scenarios[] = {
        {"timeout", sc_timeout_rewatch}, {"close-watches", sc_close_watches},
        {"expire", sc_expire},           {"compact", sc_compact},
        {"fail500", sc_fail500},         {"429", sc_retry_after},
        {"resync", sc_resync},           {"big", sc_big_list},
        {"restart-keep", NULL},          {"restart-lost", NULL},
    };
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        bool want = argc == 0;
        for (int k = 0; k < argc; k++)
            want = want || !strcmp(argv[k], scenarios[i].name);
        if (!want)
            continue;
        printf("# reflector scenario %s\n", scenarios[i].name);
        fflush(stdout);
        ctl(c, "reset-faults", NULL);
        if (scenarios[i].fn)
            scenarios[i].fn(c);
        else
            sc_restart(c, !strcmp(scenarios[i].name, "restart-keep"));
    }
    ctl(c, "reset-faults", NULL);
    k8s_client_free(c);
}

/* ======================================================================= leader */

static char leader_ns[96];

struct cand {
    struct leader_elector *le;
    char id[64];
    atomic_int started, stopped;
    pthread_mutex_t lock;
    char new_leader[LEADER_IDENTITY_MAX];
    int new_leader_calls;
};

static void on_started(void *ctx)
{
    atomic_fetch_add(&((struct cand *)ctx)->started, 1);
}
static void on_stopped(void *ctx)
{
    atomic_fetch_add(&((struct cand *)ctx)->stopped, 1);
}
static void on_new(void *ctx, const char *id)
{
    struct cand *k = ctx;
    pthread_mutex_lock(&k->lock);
    snprintf(k->new_leader, sizeof k->new_leader, "%s", id);
    k->new_leader_calls++;
    pthread_mutex_unlock(&k->lock);
}

static void cand_make(struct cand *k, struct k8s_client *c, const char *lease, const char *id,
                      bool keep_on_stop)
{
    memset(k, 0, sizeof *k);
    snprintf(k->id, sizeof k->id, "%s", id);
    atomic_init(&k->started, 0);
    atomic_init(&k->stopped, 0);
    pthread_mutex_init(&k->lock, NULL);
    struct leader_config cfg;
    leader_config_init(&cfg);
    cfg.namespace = leader_ns;
    cfg.name = lease;
    cfg.identity = k->id;
    cfg.lease_duration_ms = 3000;
    cfg.renew_deadline_ms = 2000;
    cfg.retry_period_ms = 500;
    cfg.keep_on_stop = keep_on_stop;
    cfg.ctx = k;
    cfg.on_started_leading = on_started;
    cfg.on_stopped_leading = on_stopped;
    cfg.on_new_leader = on_new;
    struct mm_error err;
    if (leader_create(c, &cfg, &k->le, &err) != MM_OK) {
        fprintf(stderr, "k8s_e2e: leader: %s\n", err.message);
        exit(2);
    }
}

static void cand_start(struct cand *k)
{
    struct mm_error err;
    if (leader_start(k->le, &err) != MM_OK) {
        fprintf(stderr, "k8s_e2e: leader start: %s\n", err.message);
        exit(2);
    }
}

static void cand_free(struct cand *k)
{
    leader_free(k->le);
    pthread_mutex_destroy(&k->lock);
}

static int leaders(struct cand **ks, int n, int *which)
{
    int count = 0;
    for (int i = 0; i < n; i++)
        if (leader_is_leader(ks[i]->le)) {
            count++;
            if (which)
                *which = i;
        }
    return count;
}

/* Wait until exactly one leads; returns its index or -1. */
static int wait_one_leader(struct cand **ks, int n, uint64_t ms)
{
    uint64_t until = k8s_clock_ms() + ms;
    do {
        int w = -1;
        if (leaders(ks, n, &w) == 1)
            return w;
        sleep_ms(10);
    } while (k8s_clock_ms() < until);
    return -1;
}

static json_t *get_lease(struct k8s_client *c, const char *name)
{
    json_t *l = NULL;
    struct k8s_error err = K8S_ERROR_INIT;
    enum mm_status rc = k8s_get(c, &leases, leader_ns, name, NULL, NULL, &l, &err);
    (void)rc;
    k8s_error_cleanup(&err);
    return l;
}

static const char *spec_str(const json_t *lease, const char *key)
{
    const char *v = json_string_value(json_object_get(json_object_get(lease, "spec"), key));
    return v ? v : "";
}

static long spec_int(const json_t *lease, const char *key)
{
    return (long)json_integer_value(json_object_get(json_object_get(lease, "spec"), key));
}

static bool microtime_shape(const char *s)
{
    /* 2006-01-02T15:04:05.000000Z */
    if (strlen(s) != 27 || s[10] != 'T' || s[19] != '.' || s[26] != 'Z')
        return false;
    for (int i = 20; i < 26; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static void group_leader(void)
{
    struct k8s_client *c = client();
    snprintf(leader_ns, sizeof leader_ns, "%s", uniq("e2e-leader"));
    ns_create(c, leader_ns);

    /* A. two candidates: exactly one leader */
    struct cand a, b;
    cand_make(&a, c, "e2e-lease", "host-a_1111", false);
    cand_make(&b, c, "e2e-lease", "host-b_2222", false);
    struct cand *ab[2] = {&a, &b};
    cand_start(&a);
    cand_start(&b);
    int w = wait_one_leader(ab, 2, 5000);
    check(w >= 0, "two candidates: one becomes leader");
    int both = 0, none = 0;
    for (int i = 0; i < 150; i++) {
        int n = leaders(ab, 2, NULL);
        both += n > 1;
        none += n == 0;
        sleep_ms(20);
    }
    check(both == 0 && none == 0, "two candidates: exactly one leader for 3 s (both %d, none %d)",
          both, none);
    struct cand *ld = w >= 0 ? ab[w] : &a, *fl = w >= 0 ? ab[1 - w] : &b;
    json_t *l = get_lease(c, "e2e-lease");
    check(!strcmp(spec_str(l, "holderIdentity"), ld->id) &&
              spec_int(l, "leaseDurationSeconds") == 3,
          "the Lease names the leader (%s) with leaseDurationSeconds 3",
          spec_str(l, "holderIdentity"));
    check(microtime_shape(spec_str(l, "renewTime")) && microtime_shape(spec_str(l, "acquireTime")),
          "renewTime/acquireTime are MicroTime with six fractional digits (%s)",
          spec_str(l, "renewTime"));
    long transitions = spec_int(l, "leaseTransitions");
    json_decref(l);
    pthread_mutex_lock(&fl->lock);
    bool told = !strcmp(fl->new_leader, ld->id);
    pthread_mutex_unlock(&fl->lock);
    check(told && atomic_load(&ld->started) == 1 && atomic_load(&fl->started) == 0,
          "on_started_leading on the leader only; on_new_leader(%s) on the follower", ld->id);

    /* B. release on stop: the follower takes over at once */
    uint64_t t0 = k8s_clock_ms();
    leader_stop(ld->le);
    uint64_t stop_ms = k8s_clock_ms() - t0;
    uint64_t until = k8s_clock_ms() + 5000;
    while (!leader_is_leader(fl->le) && k8s_clock_ms() < until)
        sleep_ms(5);
    uint64_t takeover = k8s_clock_ms() - t0;
    check(leader_is_leader(fl->le) && !leader_is_leader(ld->le) && takeover < 2000,
          "release on stop: the other candidate leads %llu ms later (stop took %llu ms; lease 3 s)",
          (unsigned long long)takeover, (unsigned long long)stop_ms);
    check(atomic_load(&ld->stopped) == 1 && leader_done(ld->le),
          "on_stopped_leading once on the stopped leader");
    l = get_lease(c, "e2e-lease");
    check(!strcmp(spec_str(l, "holderIdentity"), fl->id) &&
              spec_int(l, "leaseTransitions") == transitions + 1,
          "the takeover incremented leaseTransitions (%ld -> %ld)", transitions,
          spec_int(l, "leaseTransitions"));
    json_decref(l);
    leader_stop(fl->le);
    l = get_lease(c, "e2e-lease");
    check(!strcmp(spec_str(l, "holderIdentity"), "") && spec_int(l, "leaseDurationSeconds") == 1 &&
              spec_int(l, "leaseTransitions") == transitions + 1,
          "release: holderIdentity \"\", leaseDurationSeconds 1, leaseTransitions unchanged");
    json_decref(l);
    cand_free(&a);
    cand_free(&b);

    /* C. a leader that stops renewing (no release): taken over after the lease duration */
    struct cand p, q;
    cand_make(&p, c, "e2e-lease-expire", "host-p_3333", true);
    cand_make(&q, c, "e2e-lease-expire", "host-q_4444", false);
    struct cand *pp[1] = {&p};
    cand_start(&p);
    check(wait_one_leader(pp, 1, 5000) == 0, "stop renewing: the first candidate leads");
    cand_start(&q);
    sleep_ms(1000);
    check(!leader_is_leader(q.le), "stop renewing: the second candidate follows while it renews");
    t0 = k8s_clock_ms();
    leader_stop(p.le); /* keep_on_stop: the lease stays held until it expires */
    until = k8s_clock_ms() + 10000;
    while (!leader_is_leader(q.le) && k8s_clock_ms() < until)
        sleep_ms(10);
    takeover = k8s_clock_ms() - t0;
    check(
        leader_is_leader(q.le) && takeover >= 2000 && takeover < 6500,
        "stop renewing: taken over %llu ms after the last renewal stopped (lease 3 s, retry 0.5 s)",
        (unsigned long long)takeover);
    leader_stop(q.le);
    cand_free(&p);
    cand_free(&q);

    /* D. a race on a fresh lease: exactly one of four wins (409s resolve it) */
    struct cand r[4];
    struct cand *rp[4];
    char id[32];
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof id, "host-r%d_%d", i, 5000 + i);
        cand_make(&r[i], c, "e2e-lease-race", id, false);
        rp[i] = &r[i];
    }
    for (int i = 0; i < 4; i++)
        cand_start(&r[i]);
    w = wait_one_leader(rp, 4, 5000);
    sleep_ms(1500);
    int n_lead = leaders(rp, 4, &w);
    uint64_t conflicts = 0;
    for (int i = 0; i < 4; i++) {
        struct leader_stats ls;
        leader_stats(r[i].le, &ls);
        conflicts += ls.conflicts;
    }
    check(n_lead == 1, "race of four on a new lease: exactly one leader (%llu conflicts seen)",
          (unsigned long long)conflicts);
    if (n_lead == 1) {
        struct leader_stats before, after;
        leader_stats(r[w].le, &before);
        ctl(c, "fail",
            "{\"verb\":\"update\",\"resource\":\"leases\",\"code\":409,\"count\":1,"
            "\"message\":\"Operation cannot be fulfilled on leases.coordination.k8s.io "
            "\\\"e2e-lease-race\\\": the object has been modified; please apply your "
            "changes to the latest version and try again\"}");
        sleep_ms(1500);
        leader_stats(r[w].le, &after);
        check(after.conflicts > before.conflicts && leader_is_leader(r[w].le) &&
                  atomic_load(&r[w].stopped) == 0 && leaders(rp, 4, NULL) == 1,
              "a 409 on the renewal: resolved through the slow path (GET, PUT), still the leader");

        /* E. renewals failing for longer than RenewDeadline: leadership is lost */
        ctl(c, "fail", "{\"verb\":\"*\",\"resource\":\"leases\",\"code\":500,\"count\":100000}");
        t0 = k8s_clock_ms();
        until = k8s_clock_ms() + 6000;
        while (leader_is_leader(r[w].le) && k8s_clock_ms() < until)
            sleep_ms(10);
        uint64_t lost = k8s_clock_ms() - t0;
        sleep_ms(200);
        check(!leader_is_leader(r[w].le) && atomic_load(&r[w].stopped) == 1 && lost <= 3000 &&
                  leaders(rp, 4, NULL) == 0,
              "renewals failing: leadership given up after %llu ms (RenewDeadline 2 s), "
              "on_stopped_leading called",
              (unsigned long long)lost);
        ctl(c, "reset-faults", NULL);
    }
    for (int i = 0; i < 4; i++) {
        leader_stop(r[i].le);
        cand_free(&r[i]);
    }
    k8s_client_free(c);
}

int main(int argc, char **argv)
{
    xalloc_install_json();
    log_setup(getenv("MM_E2E_DEBUG") ? LOG_DEBUG : LOG_WARN, LOG_FORMAT_LOGFMT);
    if (argc < 2) {
        fprintf(stderr, "usage: k8s_e2e client|tls|watch|reflector|leader [scenario...]\n");
        return 2;
    }
    snprintf(current_group, sizeof current_group, "%s", argv[1]);
    snprintf(run_id, sizeof run_id, "%x", (unsigned)(k8s_wall_us() / 1000) & 0xfffffu);
    if (!strcmp(argv[1], "client"))
        group_client();
    else if (!strcmp(argv[1], "tls"))
        group_tls();
    else if (!strcmp(argv[1], "watch"))
        group_watch();
    else if (!strcmp(argv[1], "reflector"))
        group_reflector(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "leader"))
        group_leader();
    else {
        fprintf(stderr, "k8s_e2e: unknown group %s\n", argv[1]);
        return 2;
    }
    printf("# %s: %d passed, %d failed\n", argv[1], n_ok, n_fail);
    return n_fail ? 1 : 0;
}
