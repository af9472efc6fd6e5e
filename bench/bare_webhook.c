/*
 * Baseline for bench/webhook.sh: a bare libmicrohttpd HTTPS server in the
 * same threading mode as `meshmetric-operator serve`, which reads the POST
 * body, parses it with jansson, takes request.uid and answers a fixed
 * AdmissionReview. Everything the real webhook does on top of this (routing
 * and transport checks, the policy snapshot, the engine, the patch, base64,
 * metrics, logging) is what the benchmark ratio measures.
 *
 * Usage: bare_webhook PORT CERT KEY [POOL]
 *   POOL: 0 (default) a thread per connection, as `serve`; N: an epoll pool of N threads,
 *   as `serve --thread-pool N`.
 * Listens on 127.0.0.1 only. Stops on SIGTERM/SIGINT.
 */
#include <jansson.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/http.h"
#include "util/fileio.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define MAX_BODY (7u << 20)

struct req {
    struct strbuf body;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    struct req *r = *con_cls;
    if (!r) {
        r = xcalloc(1, sizeof *r);
        strbuf_init(&r->body, MAX_BODY);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!strbuf_append(&r->body, upload, *upload_size))
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    json_error_t jerr;
    json_t *root = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &jerr);
    const char *uid = json_string_value(json_object_get(json_object_get(root, "request"), "uid"));
    char *out = xasprintf("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
                          "\"response\":{\"uid\":\"%s\",\"allowed\":true}}",
                          uid ? uid : "");
    json_decref(root);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(out), out, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result rc = MHD_queue_response(conn, root ? 200 : 400, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct req *r = *con_cls;
    if (r) {
        strbuf_cleanup(&r->body);
        free(r);
    }
}

int main(int argc, char **argv)
{
    xalloc_install_json();
    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT CERT KEY [POOL]\n", argv[0]);
        return 2;
    }
    char *cert = NULL, *key = NULL;
    size_t len = 0;
    struct mm_error err;
    if (fileio_read(argv[2], 1 << 20, &cert, &len, &err) ||
        fileio_read(argv[3], 1 << 20, &key, &len, &err)) {
        fprintf(stderr, "%s: %s\n", err.field, err.message);
        return 1;
    }
    unsigned threads = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 0;
    bool tpc = threads == 0;
    unsigned flags = MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG |
                     (tpc ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL : MHD_USE_EPOLL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)strtoul(argv[1], NULL, 10));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &sa},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, key},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)(uintptr_t)HTTP_TLS_PRIORITIES},
        {MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 1000, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)(uintptr_t)&on_completed, NULL},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(flags, 0, NULL, NULL, &on_request, NULL,
                                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cannot start the daemon on port %s\n", argv[1]);
        return 1;
    }
    fprintf(stderr, "bare_webhook listening on 127.0.0.1:%s (%s, %u threads)\n", argv[1],
            tpc ? "thread-per-connection" : "thread pool", tpc ? 0 : threads);
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    free(cert);
    free(key);
    return 0;
}
