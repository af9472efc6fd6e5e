/*
 * Concurrency stress of the webhook, meant for ThreadSanitizer (it runs in
 * every build; the TSan build is where it earns its keep):
 *
 *  - HTTPS clients (libcurl, verified TLS) admit the same pod again and again
 *    through the real server, some on fresh connections (a handshake each),
 *    and scrape /metrics and /readyz?verbose on both listeners;
 *  - direct callers run admit_mutate with a shared replay cache;
 *  - a swapper publishes a new policy view hundreds of times (util/published.h),
 *    alternating two policies whose patches differ (port 5670 or 5680);
 *  - a rotator rewrites the serving certificate files while the certificate
 *    watcher reloads them.
 *
 * Every answer must be a 200 AdmissionReview echoing its uid whose patch is
 * exactly the patch of one of the two views (never a mix, never stale
 * garbage), every request must succeed, and the admission counters must add
 * up. MM_STRESS_SCALE (default 1) multiplies the amount of work.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

#include "core/admission.h"
#include "server/admit.h"
#include "server/certstore.h"
#include "server/replay.h"
#include "server/webhook.h"
#include "tls/tls.h"
#include "util/log.h"
#include "util/published.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define FIXTURE_UID "705ab4f5-6393-11e8-b7cc-42010a800002"

static const char POLICY_FMT[] =
    "{\"apiVersion\":\"kuma.io/v1alpha1\",\"kind\":\"MeshMetric\",\"metadata\":{\"name\":"
    "\"stress\",\"namespace\":\"kuma-system\",\"labels\":{\"kuma.io/mesh\":\"default\"}},"
    "\"spec\":{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":{\"backends\":[{\"type\":"
    "\"Prometheus\",\"prometheus\":{\"port\":%d,\"path\":\"/metrics\"}}]}}}";

/* ---------------------------------------------------------------- the shared world */

struct world {
    struct published views; /* struct policy_view */
    atomic_ullong generation;
    struct engine_config engine;
    struct cert_store *certs;
    struct webhook_server *server;
    uint16_t port, mport;
    char dir[64];
    char *ca_path, *crt_path, *key_path;
    struct tls_pem_pair leaf[2];
    char *review;             /* the fixture, uid FIXTURE_UID */
    char *patch[2];           /* the base64 patch each policy gives the fixture pod */
    atomic_bool clients_done; /* the swapper and rotator stop after this */
    atomic_uint failures;
    atomic_uint https_mutations, https_validations, direct, swaps, rotations, scrapes;
    atomic_uint seen[2]; /* answers matching each view's patch */
    unsigned scale;
};

static void *ref_view(void *v)
{
    return view_ref(v);
}

static void unref_view(void *v)
{
    view_unref(v);
}

static struct policy_view *build_view(int port, uint64_t generation)
{
    char *text = xasprintf(POLICY_FMT, port);
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(doc);
    struct view_options vo = {.system_namespace = "kuma-system", .zone = NULL};
    struct view_builder *b = view_builder_create(&vo);
    struct mm_error err;
    assert_int_equal(view_builder_add(b, doc, NULL, &err), MM_OK);
    json_decref(doc);
    return view_builder_finish(b, generation);
}

static struct policy_view *src_acquire(void *ctx)
{
    struct world *w = ctx;
    return published_get(&w->views, NULL);
}

static bool src_ready(void *ctx)
{
    (void)ctx;
    return true;
}

static struct policy_view *src_wait(void *ctx, uint64_t generation, unsigned timeout_ms)
{
    struct world *w = ctx;
    return published_wait(&w->views, generation, timeout_ms, NULL);
}

static struct policy_source source_of(struct world *w)
{
    return (struct policy_source){src_acquire, src_ready, src_wait, w};
}

/* A source that always hands out one view (for the expected answers). */
static struct policy_view *g_fixed;
static struct policy_view *fixed_acquire(void *ctx)
{
    (void)ctx;
    return view_ref(g_fixed);
}
static struct policy_view *fixed_wait(void *ctx, uint64_t g, unsigned t)
{
    (void)g;
    (void)t;
    return fixed_acquire(ctx);
}

/* The review with uid replaced (same length, UUID-like so the replay cache takes it). */
static char *review_with_uid(const struct world *w, unsigned thread, unsigned n,
                             char uid[sizeof FIXTURE_UID])
{
    char *r = xstrdup(w->review);
    char *at = strstr(r, FIXTURE_UID);
    assert_non_null(at);
    snprintf(uid, sizeof FIXTURE_UID, "705ab4f5-%04x-11e8-b7cc-%012x", thread & 0xffffu, n);
    memcpy(at, uid, sizeof FIXTURE_UID - 1);
    return r;
}

/* Check one answer; returns the view index it matches, or -1 (and counts a failure). */
static int check_answer(struct world *w, const char *body, size_t len, const char *want_uid)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *resp = json_object_get(j, "response");
    const char *uid = json_string_value(json_object_get(resp, "uid"));
    const char *patch = json_string_value(json_object_get(resp, "patch"));
    int which = -1;
    if (uid && !strcmp(uid, want_uid) && json_is_true(json_object_get(resp, "allowed")) && patch) {
        for (int v = 0; v < 2; v++)
            if (!strcmp(patch, w->patch[v]))
                which = v;
    }
    if (which < 0) {
        if (atomic_fetch_add(&w->failures, 1) < 3)
            print_error("bad answer: %.*s\n", (int)(len > 600 ? 600 : len), body);
    } else {
        atomic_fetch_add(&w->seen[which], 1);
    }
    json_decref(j);
    return which;
}

/* ---------------------------------------------------------------- workers */

static size_t sink(char *data, size_t size, size_t n, void *ud)
{
    struct strbuf *b = ud;
    return strbuf_append(b, data, size * n) ? size * n : 0;
}

struct client_arg {
    struct world *w;
    unsigned id;
};

/* GET url; returns the status (0 on transport failure). */
static long get(CURL *c, const char *url, struct strbuf *body)
{
    body->len = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

static void *https_client(void *arg)
{
    struct client_arg *a = arg;
    struct world *w = a->w;
    CURL *c = curl_easy_init();
    struct strbuf body;
    strbuf_init(&body, 8u << 20);
    char *mutate = xasprintf("https://localhost:%u/mutate?timeout=10s", w->port);
    char *validate = xasprintf("https://localhost:%u/validate", w->port);
    char *metrics = xasprintf("https://localhost:%u/metrics", w->port);
    char *readyz = xasprintf("http://127.0.0.1:%u/readyz?verbose", w->mport);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_CAINFO, w->ca_path);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    unsigned n = 100 * w->scale;
    for (unsigned i = 0; i < n; i++) {
        char uid[sizeof FIXTURE_UID];
        char *review = review_with_uid(w, a->id, i, uid);
        bool fresh = i % 4 == 0; /* a new connection, a new handshake */
        curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
        curl_easy_setopt(c, CURLOPT_FORBID_REUSE, fresh ? 1L : 0L);
        curl_easy_setopt(c, CURLOPT_URL, i % 10 == 9 ? validate : mutate);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, review);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        body.len = 0;
        CURLcode rc = curl_easy_perform(c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (rc != CURLE_OK || code != 200) {
            if (atomic_fetch_add(&w->failures, 1) < 3)
                print_error("request %u of client %u: %s, HTTP %ld\n", i, a->id,
                            curl_easy_strerror(rc), code);
        } else if (i % 10 == 9) {
            atomic_fetch_add(&w->https_validations, 1); /* a Pod on /validate: allowed */
            json_t *j = json_loadb(body.data, body.len, 0, NULL);
            if (!json_is_true(json_object_get(json_object_get(j, "response"), "allowed")))
                atomic_fetch_add(&w->failures, 1);
            json_decref(j);
        } else {
            atomic_fetch_add(&w->https_mutations, 1);
            (void)check_answer(w, body.data, body.len, uid);
        }
        free(review);
        if (i % 8 == 3) { /* the scrapes render while everything else moves */
            curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 0L);
            curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 0L);
            if (get(c, metrics, &body) != 200 || !strstr(strbuf_str(&body), "process_open_fds"))
                atomic_fetch_add(&w->failures, 1);
            if (get(c, readyz, &body) != 200 || !strstr(strbuf_str(&body), "readyz check passed"))
                atomic_fetch_add(&w->failures, 1);
            atomic_fetch_add(&w->scrapes, 2);
            curl_easy_setopt(c, CURLOPT_HTTPGET, 0L);
        }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    strbuf_cleanup(&body);
    free(mutate);
    free(validate);
    free(metrics);
    free(readyz);
    return NULL;
}

struct direct_arg {
    struct world *w;
    struct admit_env *env;
    unsigned id;
};

static void *direct_client(void *arg)
{
    struct direct_arg *a = arg;
    unsigned n = 1000 * a->w->scale;
    for (unsigned i = 0; i < n; i++) {
        char uid[sizeof FIXTURE_UID];
        char *review = review_with_uid(a->w, 100 + a->id, i, uid);
        struct admit_reply r;
        admit_mutate(a->env, review, strlen(review), &r);
        if (r.status != 200)
            atomic_fetch_add(&a->w->failures, 1);
        else
            (void)check_answer(a->w, r.body, strlen(r.body), uid);
        admit_reply_cleanup(&r);
        free(review);
        atomic_fetch_add(&a->w->direct, 1);
    }
    return NULL;
}

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

static void *swapper(void *arg)
{
    struct world *w = arg;
    unsigned min_swaps = 300;
    for (unsigned i = 0; i < min_swaps || !atomic_load(&w->clients_done); i++) {
        uint64_t gen = atomic_fetch_add(&w->generation, 1) + 1;
        struct policy_view *v = build_view(i % 2 ? 5670 : 5680, gen);
        published_set(&w->views, v, gen); /* the reference moves in */
        atomic_fetch_add(&w->swaps, 1);
        pause_us(2000);
    }
    return NULL;
}

static void *rotator(void *arg)
{
    struct world *w = arg;
    struct mm_error err;
    for (unsigned i = 0; i < 8 || !atomic_load(&w->clients_done); i++) {
        const struct tls_pem_pair *p = &w->leaf[(i + 1) % 2];
        /* Key first, then certificate, each renamed into place: the watcher may see a
         * mismatched pair for a moment, refuse it and keep the previous one. */
        if (tls_write_file(w->key_path, p->key, strlen(p->key), 0600, &err) ||
            tls_write_file(w->crt_path, p->cert, strlen(p->cert), 0644, &err))
            atomic_fetch_add(&w->failures, 1);
        atomic_fetch_add(&w->rotations, 1);
        pause_us(150000);
    }
    return NULL;
}

/* ---------------------------------------------------------------- the test */

static void test_stress(void **state)
{
    (void)state;
    struct world *w = xcalloc(1, sizeof *w);
    const char *scale = getenv("MM_STRESS_SCALE");
    w->scale = scale ? (unsigned)strtoul(scale, NULL, 10) : 1;
    if (w->scale == 0)
        w->scale = 1;
    atomic_init(&w->generation, 1);
    engine_config_init(&w->engine);

    /* Certificates: a CA and two serving certificates for localhost. */
    snprintf(w->dir, sizeof w->dir, "/tmp/mm-test-stress-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    w->ca_path = xasprintf("%s/ca.crt", w->dir);
    w->crt_path = xasprintf("%s/tls.crt", w->dir);
    w->key_path = xasprintf("%s/tls.key", w->dir);
    struct tls_pem_pair ca;
    struct mm_error err;
    const char *names[] = {"localhost", "127.0.0.1"};
    struct tls_leaf_request req = {"localhost", names, 2, 2, TLS_KEY_ECDSA_P256};
    assert_int_equal(tls_ca_generate("stress-ca", 2, TLS_KEY_ECDSA_P256, &ca, &err), MM_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(tls_leaf_generate(&ca, &req, &w->leaf[i], &err), MM_OK);
    assert_int_equal(tls_write_file(w->ca_path, ca.cert, strlen(ca.cert), 0644, &err), MM_OK);
    assert_int_equal(
        tls_write_file(w->crt_path, w->leaf[0].cert, strlen(w->leaf[0].cert), 0644, &err), MM_OK);
    assert_int_equal(
        tls_write_file(w->key_path, w->leaf[0].key, strlen(w->leaf[0].key), 0600, &err), MM_OK);
    tls_pem_pair_cleanup(&ca);
    w->certs = cert_store_create(w->crt_path, w->key_path);
    assert_int_equal(cert_store_reload(w->certs, &err), MM_OK);
    cert_store_watch_start(w->certs, 50);

    /* The review and the patch each view gives it. */
    char *data = tu_testdata();
    char *path = xasprintf("%s/admission/kuma-pod.json", data);
    size_t len = 0;
    assert_int_equal(fileio_read(path, 1 << 20, &w->review, &len, &err), MM_OK);
    free(path);
    free(data);
    for (int v = 0; v < 2; v++) {
        g_fixed = build_view(v ? 5680 : 5670, 1);
        struct admit_env env = {.engine = &w->engine,
                                .system_namespace = "kuma-system",
                                .source = {fixed_acquire, src_ready, fixed_wait, NULL}};
        struct admit_reply r;
        admit_mutate(&env, w->review, strlen(w->review), &r);
        assert_int_equal(r.status, 200);
        json_t *j = json_loads(r.body, 0, NULL);
        const char *p = json_string_value(json_object_get(json_object_get(j, "response"), "patch"));
        assert_non_null(p);
        w->patch[v] = xstrdup(p);
        json_decref(j);
        admit_reply_cleanup(&r);
        view_unref(g_fixed);
    }
    assert_string_not_equal(w->patch[0], w->patch[1]);

    /* The policy source and the server. */
    published_init(&w->views, build_view(5670, 1), 1, ref_view, unref_view);
    struct webhook_config wc = {
        .addr = "127.0.0.1:0",
        .metrics_addr = "127.0.0.1:0",
        .engine = &w->engine,
        .system_namespace = "kuma-system",
        .source = source_of(w),
        .certs = w->certs,
    };
    w->server = webhook_server_create(&wc);
    assert_int_equal(webhook_server_start(w->server, &err), MM_OK);
    w->port = webhook_server_port(w->server);
    w->mport = webhook_server_metrics_port(w->server);

    struct admit_env direct_env = {.engine = &w->engine,
                                   .system_namespace = "kuma-system",
                                   .source = source_of(w),
                                   .replay = replay_create(64, 64u << 10)};
    enum { N_HTTPS = 4, N_DIRECT = 2 };
    pthread_t th_https[N_HTTPS], th_direct[N_DIRECT], th_swap, th_rot;
    struct client_arg ca_args[N_HTTPS];
    struct direct_arg da_args[N_DIRECT];
    assert_int_equal(pthread_create(&th_swap, NULL, swapper, w), 0);
    assert_int_equal(pthread_create(&th_rot, NULL, rotator, w), 0);
    for (unsigned i = 0; i < N_HTTPS; i++) {
        ca_args[i] = (struct client_arg){w, i};
        assert_int_equal(pthread_create(&th_https[i], NULL, https_client, &ca_args[i]), 0);
    }
    for (unsigned i = 0; i < N_DIRECT; i++) {
        da_args[i] = (struct direct_arg){w, &direct_env, i};
        assert_int_equal(pthread_create(&th_direct[i], NULL, direct_client, &da_args[i]), 0);
    }
    for (unsigned i = 0; i < N_HTTPS; i++)
        pthread_join(th_https[i], NULL);
    for (unsigned i = 0; i < N_DIRECT; i++)
        pthread_join(th_direct[i], NULL);
    atomic_store(&w->clients_done, true);
    pthread_join(th_swap, NULL);
    pthread_join(th_rot, NULL);

    unsigned mutations = atomic_load(&w->https_mutations);
    print_message("stress: %u HTTPS admissions, %u validations, %u direct, %u scrapes, %u view "
                  "swaps, %u rotations; answers per view %u/%u; %u failures\n",
                  mutations, atomic_load(&w->https_validations), atomic_load(&w->direct),
                  atomic_load(&w->scrapes), atomic_load(&w->swaps), atomic_load(&w->rotations),
                  atomic_load(&w->seen[0]), atomic_load(&w->seen[1]), atomic_load(&w->failures));
    assert_int_equal(atomic_load(&w->failures), 0);
    assert_int_equal(mutations + atomic_load(&w->https_validations), N_HTTPS * 100 * w->scale);
    assert_true(atomic_load(&w->swaps) >= 300);
    assert_true(atomic_load(&w->seen[0]) > 0 && atomic_load(&w->seen[1]) > 0);
    uint64_t ok = 0, failed = 0;
    cert_store_reload_counts(w->certs, &ok, &failed);
    assert_true(ok >= 3); /* the first load and rotations */

    /* The counters add up: every HTTPS mutation was a patched admission. */
    struct strbuf text;
    strbuf_init(&text, 4u << 20);
    assert_true(webhook_server_render_metrics(w->server, &text));
    char *want = xasprintf(
        "meshmetric_webhook_admissions_total{endpoint=\"mutate\",outcome=\"patched\"} %u\n",
        mutations);
    if (!strstr(strbuf_str(&text), want))
        fail_msg("metrics lack [%s]", want);
    free(want);
    strbuf_cleanup(&text);

    webhook_server_free(w->server);
    cert_store_free(w->certs);
    replay_free(direct_env.replay);
    published_cleanup(&w->views);
    for (int i = 0; i < 2; i++) {
        tls_pem_pair_cleanup(&w->leaf[i]);
        free(w->patch[i]);
    }
    free(w->review);
    unlink(w->ca_path);
    unlink(w->crt_path);
    unlink(w->key_path);
    rmdir(w->dir);
    free(w->ca_path);
    free(w->crt_path);
    free(w->key_path);
    free(w);
}

int main(void)
{
    xalloc_install_json();
    log_setup(LOG_ERROR, LOG_FORMAT_JSON);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
