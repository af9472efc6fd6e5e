/*
 * A tiny in-process HTTP/1.1 server for the k8s client's unit tests
 * (tests/unit/test_k8s_client.c): plain HTTP on 127.0.0.1, one thread per
 * connection, keep-alive, Content-Length request bodies. A test supplies a
 * handler that answers each request with a code, headers and a body, or with
 * a chunked stream (chunks with delays, optionally held open until the
 * client goes away). Every request is logged for assertions.
 *
 * Test-only code: header-only so that each test binary gets its own copy.
 */
#ifndef MM_TESTS_K8S_FAKESERVER_H
#define MM_TESTS_K8S_FAKESERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/xalloc.h"

#define FS_MAX_LOG 512
#define FS_MAX_CHUNKS 64

struct fs_request {
    char method[16];
    char path[2048];
    char auth[512]; /* Authorization header */
    char content_type[128];
    char *body; /* NUL-terminated */
    size_t body_len;
    int seq; /* 0, 1, 2... over the server's life */
};

struct fs_response {
    int code;
    char headers[1024]; /* extra header lines, each ending in \r\n */
    const char *body;   /* borrowed until the answer is written; NULL: empty */
    size_t body_len;    /* 0 with a body: strlen(body) */
    bool stream;        /* chunked: chunks[] then end (or hold) */
    const char *chunks[FS_MAX_CHUNKS];
    size_t chunk_len[FS_MAX_CHUNKS];   /* 0: strlen */
    int chunk_delay_ms[FS_MAX_CHUNKS]; /* sleep before each chunk */
    int nchunks;
    bool hold;  /* keep the stream open (no final chunk) until the client leaves */
    bool close; /* close the connection after the answer */
    bool drop;  /* close without answering */
};

typedef void (*fs_handler_fn)(void *ctx, const struct fs_request *req, struct fs_response *resp);

struct fakeserver {
    int fd;
    int port;
    pthread_t thread;
    atomic_bool stopping;
    fs_handler_fn handler;
    void *ctx;
    pthread_mutex_t lock;
    struct fs_request log[FS_MAX_LOG]; /* bodies not kept */
    int nlog;
    int seq;
    atomic_int active;   /* connection threads alive */
    atomic_int accepted; /* connections accepted so far */
};

static void fs_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static bool fs_write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

struct fs_conn {
    struct fakeserver *s;
    int fd;
};

/* Read one request from fd into req (buffer carried across calls). false at EOF/error. */
static bool fs_read_request(int fd, char *buf, size_t cap, size_t *have, struct fs_request *req)
{
    char *end = NULL;
    for (;;) {
        buf[*have] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end)
            break;
        if (*have + 1 >= cap)
            return false;
        ssize_t r = recv(fd, buf + *have, cap - 1 - *have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        *have += (size_t)r;
    }
    size_t head_len = (size_t)(end - buf) + 4;
    memset(req, 0, sizeof *req);
    if (sscanf(buf, "%15s %2047s", req->method, req->path) != 2)
        return false;
    size_t clen = 0;
    for (char *line = strstr(buf, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        char *l = line + 2;
        if (!strncasecmp(l, "Content-Length:", 15))
            clen = (size_t)strtoul(l + 15, NULL, 10);
        else if (!strncasecmp(l, "Authorization:", 14))
            sscanf(l + 14, " %511[^\r\n]", req->auth);
        else if (!strncasecmp(l, "Content-Type:", 13))
            sscanf(l + 13, " %127[^\r\n]", req->content_type);
    }
    while (*have < head_len + clen) {
        if (head_len + clen >= cap)
            return false;
        ssize_t r = recv(fd, buf + *have, cap - 1 - *have, 0);
        if (r <= 0)
            return false;
        *have += (size_t)r;
    }
    req->body = xstrndup(buf + head_len, clen);
    req->body_len = clen;
    memmove(buf, buf + head_len + clen, *have - head_len - clen);
    *have -= head_len + clen;
    return true;
}

static const char *fs_reason(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* True while the peer has not closed the connection. */
static bool fs_peer_alive(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 0);
    if (r <= 0)
        return true;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0;
}

static void *fs_conn_main(void *arg)
{
    struct fs_conn *cn = arg;
    struct fakeserver *s = cn->s;
    size_t cap = 1 << 20, have = 0;
    char *buf = xmalloc(cap);
    struct fs_request req;
    while (!atomic_load(&s->stopping) && fs_read_request(cn->fd, buf, cap, &have, &req)) {
        pthread_mutex_lock(&s->lock);
        req.seq = s->seq++;
        if (s->nlog < FS_MAX_LOG) {
            s->log[s->nlog] = req;
            s->log[s->nlog].body = NULL;
            s->nlog++;
        }
        pthread_mutex_unlock(&s->lock);
        struct fs_response resp;
        memset(&resp, 0, sizeof resp);
        resp.code = 200;
        s->handler(s->ctx, &req, &resp);
        free(req.body);
        if (resp.drop)
            break;
        char head[2048];
        if (!resp.stream) {
            size_t blen = resp.body ? (resp.body_len ? resp.body_len : strlen(resp.body)) : 0;
            int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                             resp.code, fs_reason(resp.code), blen, resp.headers,
                             resp.close ? "Connection: close\r\n" : "");
            if (!fs_write_all(cn->fd, head, (size_t)n) ||
                (blen && !fs_write_all(cn->fd, resp.body, blen)))
                break;
            if (resp.close)
                break;
            continue;
        }
        int n =
            snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nTransfer-Encoding: chunked\r\n%sConnection: close\r\n\r\n",
                     resp.code, fs_reason(resp.code), resp.headers);
        bool ok = fs_write_all(cn->fd, head, (size_t)n);
        for (int i = 0; ok && i < resp.nchunks; i++) {
            if (resp.chunk_delay_ms[i])
                fs_sleep_ms(resp.chunk_delay_ms[i]);
            size_t clen = resp.chunk_len[i] ? resp.chunk_len[i] : strlen(resp.chunks[i]);
            char sz[32];
            int m = snprintf(sz, sizeof sz, "%zx\r\n", clen);
            ok = fs_write_all(cn->fd, sz, (size_t)m) &&
                 fs_write_all(cn->fd, resp.chunks[i], clen) && fs_write_all(cn->fd, "\r\n", 2);
        }
        while (ok && resp.hold && !atomic_load(&s->stopping) && fs_peer_alive(cn->fd))
            fs_sleep_ms(20);
        if (ok && !resp.hold)
            fs_write_all(cn->fd, "0\r\n\r\n", 5);
        break;
    }
    free(buf);
    close(cn->fd);
    free(cn);
    atomic_fetch_sub(&s->active, 1);
    return NULL;
}

static void *fs_accept_main(void *arg)
{
    struct fakeserver *s = arg;
    while (!atomic_load(&s->stopping)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&s->accepted, 1);
        struct fs_conn *cn = xmalloc(sizeof *cn);
        cn->s = s;
        cn->fd = fd;
        pthread_t t;
        atomic_fetch_add(&s->active, 1);
        if (pthread_create(&t, NULL, fs_conn_main, cn) != 0) {
            atomic_fetch_sub(&s->active, 1);
            close(fd);
            free(cn);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

/* Start a server on 127.0.0.1 with a free port. */
static struct fakeserver *fs_start(fs_handler_fn handler, void *ctx)
{
    struct fakeserver *s = xcalloc(1, sizeof *s);
    s->handler = handler;
    s->ctx = ctx;
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->stopping, false);
    atomic_init(&s->active, 0);
    atomic_init(&s->accepted, 0);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 64) != 0)
        abort();
    socklen_t len = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, fs_accept_main, s);
    return s;
}

static void fs_stop(struct fakeserver *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
    for (int i = 0; i < 500 && atomic_load(&s->active) > 0; i++)
        fs_sleep_ms(10);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int fs_count(struct fakeserver *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->nlog;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* A copy of log entry i (body NULL). */
static struct fs_request fs_entry(struct fakeserver *s, int i)
{
    pthread_mutex_lock(&s->lock);
    struct fs_request r = s->log[i];
    pthread_mutex_unlock(&s->lock);
    return r;
}

#endif
