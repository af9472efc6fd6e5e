/*
 * The HTTP layer (src/server/http.c) over real sockets, and the connection
 * table behind it (src/server/conntable.c):
 *  - routing and transport rules as a table of raw requests and the answers
 *    they must get (404/405 with Allow/415/413 with JSON bodies, HEAD, the
 *    query string ignored, a body read for the handler), and junk that must
 *    never crash the server;
 *  - request accounting (the Prometheus families, the observe callback);
 *  - the listener: address parsing and dual stack;
 *  - slow and hostile clients: header, read and idle deadlines, eviction at
 *    the connection limit (stalled first, then idle, never a request in
 *    progress, the new connection refused when nothing else can go);
 *  - TLS through a cert_store, and a connection that never starts TLS;
 *  - graceful shutdown: the request in flight is answered with
 *    Connection: close, new connections are refused;
 *  - the process metrics parser.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/certstore.h"
#include "server/conntable.h"
#include "server/http.h"
#include "server/procmetrics.h"
#include "tls/tls.h"
#include "util/log.h"
#include "util/xalloc.h"

/* ---------------------------------------------------------------- helpers */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A blocking TCP connection to 127.0.0.1:port (or ::1 when v6), -1 on failure. */
static int tcp_connect(uint16_t port, bool v6)
{
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc;
    if (v6) {
        struct sockaddr_in6 a;
        memset(&a, 0, sizeof a);
        a.sin6_family = AF_INET6;
        a.sin6_addr = in6addr_loopback;
        a.sin6_port = htons(port);
        rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (rc != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the server may have closed already: the answer tells */
        data += n;
        len -= (size_t)n;
    }
}

/* True when buf holds a whole response (headers and Content-Length bytes of body). */
static bool response_complete(const char *buf, size_t len, bool head)
{
    const char *end = strstr(buf, "\r\n\r\n");
    if (!end)
        return false;
    if (head)
        return true;
    size_t body = len - (size_t)(end + 4 - buf);
    for (const char *p = buf; p < end; p++)
        if ((p == buf || p[-1] == '\n') && !strncasecmp(p, "Content-Length:", 15))
            return body >= (size_t)strtoul(p + 15, NULL, 10);
    return false;
}

/*
 * Read until the peer closes or timeout_ms passes (or, with stop_at_response,
 * a whole response arrived); returns the bytes (caller frees).
 */
static char *recv_response(int fd, unsigned timeout_ms, bool *closed, int stop_at_response)
{
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    double deadline = now_s() + timeout_ms / 1000.0;
    *closed = false;
    buf[0] = '\0';
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0)
            break;
        if (stop_at_response && response_complete(buf, len, stop_at_response == 2))
            break;
        struct pollfd p = {fd, POLLIN, 0};
        int rc = poll(&p, 1, (int)(left * 1000) + 1);
        if (rc <= 0)
            continue;
        if (len + 2048 > cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0) {
            *closed = true;
            break;
        }
        len += (size_t)n;
        buf[len] = '\0';
    }
    buf[len] = '\0';
    return buf;
}

static char *recv_until_close(int fd, unsigned timeout_ms, bool *closed)
{
    return recv_response(fd, timeout_ms, closed, 0);
}

/* Seconds until the peer closes fd (reading and dropping whatever comes), or -1 past timeout_ms. */
static double wait_closed(int fd, unsigned timeout_ms)
{
    double t0 = now_s();
    bool closed = false;
    free(recv_until_close(fd, timeout_ms, &closed));
    return closed ? now_s() - t0 : -1;
}

/* True when the peer has closed fd (end-of-stream readable now or within ms). */
static bool is_closed(int fd, unsigned ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, (int)ms) <= 0)
        return false;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Case-insensitive strstr (strcasestr is a GNU extension). */
static const char *find_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (!strncasecmp(hay, needle, n))
            return hay;
    return NULL;
}

struct answer {
    unsigned status;
    char *text; /* whole response */
    const char *body;
};

/* Send request (which should say Connection: close) and read the whole answer. */
static void exchange(uint16_t port, const char *request, size_t len, struct answer *a)
{
    memset(a, 0, sizeof *a);
    int fd = tcp_connect(port, false);
    assert_true(fd >= 0);
    send_all(fd, request, len);
    bool closed = false;
    a->text = recv_response(fd, 5000, &closed, strncmp(request, "HEAD ", 5) ? 1 : 2);
    close(fd);
    if (!strncmp(a->text, "HTTP/1.", 7) && strlen(a->text) > 12)
        a->status = (unsigned)strtoul(a->text + 9, NULL, 10);
    const char *b = strstr(a->text, "\r\n\r\n");
    a->body = b ? b + 4 : "";
}

static bool has_header(const struct answer *a, const char *line)
{
    const char *end = strstr(a->text, "\r\n\r\n");
    const char *p = find_ci(a->text, line);
    return p && (!end || p < end);
}

/* ---------------------------------------------------------------- a test server */

struct fixture {
    struct http_server *server;
    uint16_t port;
    atomic_uint observed[8]; /* by route + 1 (0: unknown path) */
    atomic_uint slow_ms;     /* the /slow handler sleeps this long */
};

static void h_hello(void *ctx, const struct http_request *req, struct http_reply *out)
{
    (void)ctx;
    (void)req;
    http_reply_set(out, 200, NULL, xstrdup("hello\n"));
}

/* Echo what the handler saw: method, body length, a query argument, a header. */
static void h_echo(void *ctx, const struct http_request *req, struct http_reply *out)
{
    (void)ctx;
    size_t len = 0;
    const char *body = http_request_body(req, &len);
    const char *q = http_request_query(req, "verbose");
    const char *h = http_request_header(req, "x-test");
    http_reply_set(out, 200, "application/json",
                   xasprintf("{\"method\":\"%s\",\"path\":\"%s\",\"len\":%zu,\"body0\":\"%c\","
                             "\"verbose\":\"%s\",\"x-test\":\"%s\"}",
                             http_request_method(req), http_request_path(req), len,
                             len ? body[0] : '-', q ? (*q ? q : "(empty)") : "(absent)",
                             h ? h : "(absent)"));
}

static void h_slow(void *ctx, const struct http_request *req, struct http_reply *out)
{
    struct fixture *f = ctx;
    (void)req;
    sleep_ms(atomic_load(&f->slow_ms));
    http_reply_set(out, 201, NULL, xstrdup("slow\n"));
}

static void h_fail(void *ctx, const struct http_request *req, struct http_reply *out)
{
    (void)ctx;
    (void)req;
    http_reply_error(out, 503, "not now", "x");
}

static void on_observe(void *ctx, int route, unsigned status, double seconds)
{
    struct fixture *f = ctx;
    (void)status;
    assert_true(seconds >= 0);
    atomic_fetch_add(&f->observed[route + 1], 1);
}

#define ROUTES_N 5
static struct http_route routes[ROUTES_N] = {
    {"/hello", "hello", HTTP_GET, h_hello, NULL, 0, false},
    {"/echo", "echo", HTTP_POST, h_echo, NULL, 1024, true},
    {"/both", "both", HTTP_GET | HTTP_POST, h_echo, NULL, 64, false},
    {"/slow", "slow", HTTP_GET, h_slow, NULL, 0, false},
    {"/fail", "fail", HTTP_GET, h_fail, NULL, 0, false},
};

struct limits {
    unsigned connection_limit, header_s, idle_s, read_s, pool;
};

static struct fixture *start_server(const struct limits *lim, struct cert_store *certs)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    for (size_t i = 0; i < 8; i++)
        atomic_init(&f->observed[i], 0);
    atomic_init(&f->slow_ms, 0);
    struct http_route r[ROUTES_N];
    memcpy(r, routes, sizeof r);
    for (size_t i = 0; i < ROUTES_N; i++)
        r[i].ctx = f;
    struct http_config cfg = {
        .name = "test",
        .addr = "127.0.0.1:0",
        .addr_flag = "test-addr",
        .certs = certs,
        .routes = r,
        .n_routes = ROUTES_N,
        .not_found = "no such path; try /hello",
        .thread_pool = lim ? lim->pool : 0,
        .connection_limit = lim ? lim->connection_limit : 0,
        .header_timeout_s = lim ? lim->header_s : 0,
        .idle_timeout_s = lim ? lim->idle_s : 0,
        .read_timeout_s = lim ? lim->read_s : 0,
        .observe = on_observe,
        .observe_ctx = f,
    };
    f->server = http_server_create(&cfg);
    struct mm_error err;
    mm_error_clear(&err);
    if (http_server_start(f->server, &err) != MM_OK)
        fail_msg("cannot start: %s", err.message);
    f->port = http_server_port(f->server);
    assert_true(f->port > 0);
    return f;
}

static void stop_server(struct fixture *f)
{
    http_server_free(f->server);
    free(f);
}

/* Wait (up to 5 s) until the server has let go of the connections the test closed. */
static void wait_connections(struct fixture *f, unsigned n)
{
    for (int i = 0; i < 500 && http_server_connections(f->server) > n; i++)
        sleep_ms(10);
    assert_int_equal(http_server_connections(f->server), n);
}

static void wait_idle_server(struct fixture *f)
{
    wait_connections(f, 0);
}

static uint64_t closed_count(struct fixture *f, enum conn_close_reason r)
{
    struct http_counts c;
    http_server_counts(f->server, &c);
    return c.closed[r];
}

/* ---------------------------------------------------------------- routing table */

struct route_case {
    const char *name;
    const char *request;
    unsigned status;
    const char *want[3]; /* substrings of the whole answer */
};

#define CLOSE "Connection: close\r\n"
#define JSON "Content-Type: application/json\r\n"

static const struct route_case route_cases[] = {
    {"GET a route", "GET /hello HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n", 200, {"\r\n\r\nhello\n"}},
    {"query string ignored",
     "GET /hello?timeout=10s&x HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n",
     200,
     {"hello"}},
    {"HEAD of a GET route",
     "HEAD /hello HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n",
     200,
     {"Content-Length: 6"}},
    {"unknown path",
     "GET /nope HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n",
     404,
     {"{\"error\":\"no such path; try /hello\",\"field\":\"path\"}", "application/json"}},
    {"a path prefix is no match", "GET /hello/x HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n", 404, {NULL}},
    {"POST to a GET route",
     "POST /hello HTTP/1.1\r\nHost: x\r\n" CLOSE "Content-Length: 1\r\n\r\nx",
     405,
     {"Allow: GET, HEAD", "\"field\":\"method\"", "use GET"}},
    {"GET of a POST route",
     "GET /echo HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n",
     405,
     {"Allow: POST", "\"error\":\"method not allowed; use POST\""}},
    {"PUT of a GET+POST route",
     "PUT /both HTTP/1.1\r\nHost: x\r\n" CLOSE "Content-Length: 0\r\n\r\n",
     405,
     {"Allow: GET, HEAD, POST"}},
    {"DELETE", "DELETE /echo HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n", 405, {"Allow: POST"}},
    {"text/plain",
     "POST /echo HTTP/1.1\r\nHost: x\r\n" CLOSE "Content-Type: text/plain\r\n"
     "Content-Length: 2\r\n\r\n{}",
     415,
     {"\"field\":\"Content-Type\"", "text/plain"}},
    {"no Content-Type",
     "POST /echo HTTP/1.1\r\nHost: x\r\n" CLOSE "Content-Length: 2\r\n\r\n{}",
     415,
     {"want application/json"}},
    {"application/jsonx",
     "POST /echo HTTP/1.1\r\nHost: x\r\n" CLOSE
     "Content-Type: application/jsonx\r\nContent-Length: 2\r\n\r\n{}",
     415,
     {NULL}},
    {"JSON with parameters",
     "POST /echo HTTP/1.1\r\nHost: x\r\n" CLOSE "Content-Type: Application/JSON ; charset=utf-8\r\n"
     "Content-Length: 2\r\n\r\n{}",
     200,
     {"\"len\":2", "\"method\":\"POST\""}},
    {"body read for the handler",
     "POST /echo?verbose HTTP/1.1\r\nHost: x\r\n" CLOSE JSON
     "X-Test: yes\r\nContent-Length: 5\r\n\r\nabcde",
     200,
     {"\"len\":5,\"body0\":\"a\"", "\"verbose\":\"(empty)\"", "\"x-test\":\"yes\""}},
    {"query value",
     "POST /echo?verbose=2 HTTP/1.1\r\nHost: x\r\n" CLOSE JSON "Content-Length: 0\r\n\r\n",
     200,
     {"\"len\":0", "\"verbose\":\"2\""}},
    {"Content-Length over the cap",
     "POST /echo HTTP/1.1\r\nHost: x\r\n" CLOSE JSON "Content-Length: 1025\r\n\r\n",
     413,
     {"\"field\":\"Content-Length\"", "over the 1024-byte limit"}},
    {"Content-Length at the cap",
     "POST /both HTTP/1.1\r\nHost: x\r\n" CLOSE "Content-Length: 64\r\n\r\n"
     "0123456789012345678901234567890123456789012345678901234567890123",
     200,
     {"\"len\":64"}},
    {"chunked body over the cap",
     "POST /both HTTP/1.1\r\nHost: x\r\n" CLOSE "Transfer-Encoding: chunked\r\n\r\n"
     "28\r\n0123456789012345678901234567890123456789\r\n"
     "28\r\n0123456789012345678901234567890123456789\r\n0\r\n\r\n",
     413,
     {"\"field\":\"body\"", "over the 64-byte limit"}},
    {"chunked body under the cap",
     "POST /both HTTP/1.1\r\nHost: x\r\n" CLOSE
     "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
     200,
     {"\"len\":5"}},
    {"GET of a GET+POST route",
     "GET /both HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n",
     200,
     {"\"method\":\"GET\",\"path\":\"/both\",\"len\":0"}},
    {"handler error reply",
     "GET /fail HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n",
     503,
     {"{\"error\":\"not now\",\"field\":\"x\"}", "application/json"}},
    {"HTTP/1.0", "GET /hello HTTP/1.0\r\n\r\n", 200, {"hello"}},
};

static void test_routing(void **state)
{
    (void)state;
    struct fixture *f = start_server(NULL, NULL);
    for (size_t i = 0; i < sizeof route_cases / sizeof *route_cases; i++) {
        const struct route_case *c = &route_cases[i];
        struct answer a;
        exchange(f->port, c->request, strlen(c->request), &a);
        if (a.status != c->status)
            fail_msg("%s: status %u, want %u\n%s", c->name, a.status, c->status, a.text);
        for (size_t k = 0; k < 3 && c->want[k]; k++)
            if (!strstr(a.text, c->want[k]))
                fail_msg("%s: answer lacks [%s]\n%s", c->name, c->want[k], a.text);
        if (a.status >= 400 && !has_header(&a, "Content-Type: application/json"))
            fail_msg("%s: an error without a JSON body\n%s", c->name, a.text);
        free(a.text);
    }
    /* HEAD: headers only. */
    struct answer a;
    exchange(f->port, route_cases[2].request, strlen(route_cases[2].request), &a);
    assert_string_equal(a.body, "");
    free(a.text);

    /* Accounting: the observe callback and the Prometheus families (once the last
     * request has completed on the server's side too). */
    for (int i = 0; i < 200 && http_server_in_flight(f->server) > 0; i++)
        sleep_ms(10);
    assert_true(atomic_load(&f->observed[0]) >= 2); /* unknown paths */
    assert_true(atomic_load(&f->observed[1 + 1]) >= 8);
    struct strbuf out;
    strbuf_init(&out, 1 << 20);
    assert_true(http_server_render(f->server, "mm_test", &out));
    const char *t = strbuf_str(&out);
    const char *want[] = {
        "# TYPE mm_test_requests_total counter\n",
        "mm_test_requests_total{endpoint=\"hello\",code=\"200\"} 5\n",
        "mm_test_requests_total{endpoint=\"other\",code=\"404\"} 2\n",
        "mm_test_requests_total{endpoint=\"echo\",code=\"415\"} 3\n",
        "mm_test_requests_total{endpoint=\"echo\",code=\"413\"} 1\n",
        "mm_test_requests_total{endpoint=\"both\",code=\"413\"} 1\n",
        "mm_test_requests_total{endpoint=\"slow\",code=\"200\"} 0\n", /* every route's 200 */
        "mm_test_requests_total{endpoint=\"fail\",code=\"503\"} 1\n",
        "# TYPE mm_test_open_connections gauge\n",
        "# TYPE mm_test_in_flight_requests gauge\nmm_test_in_flight_requests 0\n",
        "# TYPE mm_test_connections_closed_total counter\n",
        "mm_test_connections_closed_total{reason=\"evicted\"} 0\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(t, want[i]))
            fail_msg("metrics lack [%s]\n%s", want[i], t);
    strbuf_cleanup(&out);
    stop_server(f);
}

/* Junk must get an error or a closed connection, and the server must go on. */
static void test_bad_input(void **state)
{
    (void)state;
    /* Short deadlines: junk that leaves the server waiting is cut within a second. */
    struct limits lim = {.header_s = 1, .idle_s = 1, .read_s = 1};
    struct fixture *f = start_server(&lim, NULL);
    static const struct {
        const char *text;
        size_t len;     /* 0: strlen */
        bool must_fail; /* false: any answer, as long as the server lives on */
    } junk[] = {
        {"\r\n\r\n", 0, true},
        {"GARBAGE\r\n\r\n", 0, true},
        {"GET\r\n\r\n", 0, true},
        {"GET /hello HTTP/9.9\r\n\r\n", 0, true},
        {"GET /hello HTTP/1.1\r\nNo-Colon-Header\r\n\r\n", 0, false},
        {"POST /echo HTTP/1.1\r\nHost: x\r\n" JSON "Content-Length: -5\r\n\r\n", 0, true},
        {"POST /echo HTTP/1.1\r\nHost: x\r\n" JSON
         "Content-Length: 99999999999999999999999\r\n\r\n",
         0, true},
        {"POST /echo HTTP/1.1\r\nHost: x\r\n" JSON
         "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
         0, false},
        {"POST /echo HTTP/1.1\r\nHost: x\r\n" JSON "Transfer-Encoding: chunked\r\n\r\nzz\r\n", 0,
         true},
        {"POST /echo HTTP/1.1\r\nHost: x\r\n" JSON "Transfer-Encoding: chunked\r\n\r\n"
         "ffffffffffffffffff\r\n",
         0, true},
        {"GET /hello\0with-nul HTTP/1.1\r\n\r\n",
         sizeof "GET /hello\0with-nul HTTP/1.1\r\n\r\n" - 1, false},
        {"GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n", 0, false},
        {"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 0, true},
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11,
         true}, /* a ClientHello on plain HTTP */
    };
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        struct answer a;
        size_t len = junk[i].len ? junk[i].len : strlen(junk[i].text);
        exchange(f->port, junk[i].text, len, &a);
        if (junk[i].must_fail && a.status == 200)
            fail_msg("junk %zu was answered 200:\n%s", i, a.text);
        free(a.text);
    }
    /* Headers over libmicrohttpd's 64 KiB connection memory: refused, not a crash. */
    struct strbuf big;
    strbuf_init(&big, 1 << 20);
    assert_true(strbuf_puts(&big, "GET /hello HTTP/1.1\r\nHost: x\r\n"));
    for (int i = 0; i < 2000; i++)
        assert_true(strbuf_printf(&big, "X-Filler-%d: %060d\r\n", i, i));
    assert_true(strbuf_puts(&big, "\r\n"));
    struct answer a;
    exchange(f->port, big.data, big.len, &a);
    assert_true(a.status == 0 || a.status >= 400);
    free(a.text);
    strbuf_cleanup(&big);
    /* A body over the discard cap for a route that reads none: closed, server fine. */
    int fd = tcp_connect(f->port, false);
    const char head[] = "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\n\r\n";
    send_all(fd, head, sizeof head - 1);
    char *chunk = xcalloc(1, 1 << 16);
    memset(chunk, 'x', 1 << 16);
    for (int i = 0; i < 40 && !is_closed(fd, 0); i++)
        send_all(fd, chunk, 1 << 16);
    free(chunk);
    close(fd);

    const char ok[] = "GET /hello HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n";
    exchange(f->port, ok, sizeof ok - 1, &a);
    assert_int_equal(a.status, 200);
    free(a.text);
    stop_server(f);
}

static void test_keep_alive(void **state)
{
    (void)state;
    struct fixture *f = start_server(NULL, NULL);
    int fd = tcp_connect(f->port, false);
    const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 3; i++) {
        send_all(fd, req, sizeof req - 1);
        char buf[1024];
        size_t len = 0;
        buf[0] = '\0';
        while (len < sizeof buf - 1 && !strstr(buf, "hello\n")) {
            ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
            assert_true(n > 0);
            len += (size_t)n;
            buf[len] = '\0';
        }
        assert_non_null(strstr(buf, "HTTP/1.1 200"));
    }
    assert_int_equal(http_server_connections(f->server), 1);
    close(fd);
    stop_server(f);
}

/* ---------------------------------------------------------------- the listener */

static void test_addresses(void **state)
{
    (void)state;
    struct {
        const char *addr;
        enum mm_status want;
    } cases[] = {
        {"127.0.0.1:0", MM_OK},
        {":0", MM_OK},
        {"localhost:0", MM_OK},
        {"[::1]:0", MM_OK}, /* skipped below when the host has no IPv6 */
        {"nope", MM_ERR_INVALID},
        {"127.0.0.1", MM_ERR_INVALID},
        {"[::1]", MM_ERR_INVALID},
        {"[::1:0", MM_ERR_INVALID},
        {"127.0.0.1:99999", MM_ERR_INVALID},
        {"127.0.0.1:-1", MM_ERR_INVALID},
        {"127.0.0.1:x", MM_ERR_INVALID},
        {"127.0.0.1:", MM_ERR_INVALID},
        {"no-such-host.invalid:0", MM_ERR_INVALID},
        {"192.0.2.1:0", MM_ERR_IO}, /* TEST-NET: not an address of this host */
    };
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    bool v6 = probe >= 0;
    if (probe >= 0) {
        struct sockaddr_in6 a;
        memset(&a, 0, sizeof a);
        a.sin6_family = AF_INET6;
        a.sin6_addr = in6addr_loopback;
        v6 = bind(probe, (struct sockaddr *)&a, sizeof a) == 0;
        close(probe);
    }
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (!v6 && strchr(cases[i].addr, '[') && cases[i].want == MM_OK)
            continue;
        struct http_config cfg = {.name = "t",
                                  .addr = cases[i].addr,
                                  .addr_flag = "some-addr",
                                  .routes = routes,
                                  .n_routes = 1};
        struct http_server *s = http_server_create(&cfg);
        struct mm_error err;
        mm_error_clear(&err);
        enum mm_status st = http_server_start(s, &err);
        if (st != cases[i].want)
            fail_msg("%s: %s (%s), want %s", cases[i].addr, mm_status_name(st), err.message,
                     mm_status_name(cases[i].want));
        if (st)
            assert_string_equal(err.field, "some-addr");
        else
            assert_true(http_server_port(s) > 0);
        http_server_free(s);
    }

    /* ":PORT" is dual stack: IPv4 and IPv6 clients both get through. */
    struct http_config cfg = {.name = "t", .addr = ":0", .routes = routes, .n_routes = 1};
    struct http_server *s = http_server_create(&cfg);
    struct mm_error err;
    assert_int_equal(http_server_start(s, &err), MM_OK);
    const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n";
    for (int fam = 0; fam < (v6 ? 2 : 1); fam++) {
        int fd = tcp_connect(http_server_port(s), fam == 1);
        assert_true(fd >= 0);
        send_all(fd, req, sizeof req - 1);
        bool closed;
        char *text = recv_until_close(fd, 5000, &closed);
        assert_non_null(strstr(text, "hello"));
        free(text);
        close(fd);
    }
    /* The port is taken: a second server cannot bind it. */
    char *taken = xasprintf("127.0.0.1:%u", http_server_port(s));
    struct http_config cfg2 = {.name = "t", .addr = taken, .routes = routes, .n_routes = 1};
    struct http_server *s2 = http_server_create(&cfg2);
    assert_int_equal(http_server_start(s2, &err), MM_ERR_IO);
    http_server_free(s2);
    free(taken);
    http_server_free(s);
}

/* ---------------------------------------------------------------- deadlines */

static void test_header_timeout(void **state)
{
    (void)state;
    struct limits lim = {.header_s = 1, .idle_s = 30, .read_s = 30};
    struct fixture *f = start_server(&lim, NULL);

    /* Silent: closed about 1 s after the accept. */
    int fd = tcp_connect(f->port, false);
    double t = wait_closed(fd, 5000);
    close(fd);
    if (t < 0.8 || t > 2.5)
        fail_msg("a silent connection was closed after %.2f s", t);

    /* Slowloris: a byte of the request line every 150 ms; the deadline does not move. */
    fd = tcp_connect(f->port, false);
    const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    double t0 = now_s();
    size_t sent = 0;
    while (sent < sizeof req - 1 && !is_closed(fd, 150)) {
        send_all(fd, req + sent, 1);
        sent++;
    }
    double cut = now_s() - t0;
    close(fd);
    if (cut < 0.8 || cut > 2.5 || sent >= sizeof req - 1)
        fail_msg("trickled headers cut after %.2f s, %zu bytes sent", cut, sent);

    /* The second request of a keep-alive connection gets its own header deadline. */
    fd = tcp_connect(f->port, false);
    const char first[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, first, sizeof first - 1);
    sleep_ms(1500); /* idle, under the idle timeout: still open */
    assert_false(is_closed(fd, 0));
    const char line[] = "GET /hello HTTP/1.1\r\nHost: x\r\n"; /* no end of headers */
    send_all(fd, line, sizeof line - 1);
    t = wait_closed(fd, 5000);
    close(fd);
    if (t < 0.7 || t > 2.5)
        fail_msg("unfinished headers of a second request cut after %.2f s", t);
    assert_true(closed_count(f, CONN_CLOSE_HEADER_TIMEOUT) >= 3);
    stop_server(f);
}

static void test_read_and_idle_timeouts(void **state)
{
    (void)state;
    struct limits lim = {.header_s = 5, .idle_s = 1, .read_s = 1};
    struct fixture *f = start_server(&lim, NULL);

    /* A body that stops coming: closed at the read timeout. */
    int fd = tcp_connect(f->port, false);
    const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\n" JSON "Content-Length: 10\r\n\r\nabc";
    send_all(fd, head, sizeof head - 1);
    double t = wait_closed(fd, 5000);
    close(fd);
    if (t < 0.8 || t > 2.5)
        fail_msg("a stalled body was cut after %.2f s", t);
    assert_int_equal(closed_count(f, CONN_CLOSE_READ_TIMEOUT), 1);

    /* Idle keep-alive: closed about 1 s after the answer. */
    fd = tcp_connect(f->port, false);
    const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, req, sizeof req - 1);
    t = wait_closed(fd, 5000);
    close(fd);
    if (t < 0.8 || t > 3.5)
        fail_msg("an idle connection was closed after %.2f s", t);

    /* A handler that takes longer than every timeout is not cut. */
    atomic_store(&f->slow_ms, 1600);
    struct answer a;
    const char slow[] = "GET /slow HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n";
    exchange(f->port, slow, sizeof slow - 1, &a);
    assert_int_equal(a.status, 201);
    free(a.text);
    stop_server(f);
}

/* ---------------------------------------------------------------- the connection limit */

static void test_eviction_at_limit(void **state)
{
    (void)state;
    struct limits lim = {.connection_limit = 4, .header_s = 8, .idle_s = 60, .read_s = 60};
    struct fixture *f = start_server(&lim, NULL); /* grace: 1 s */
    const char hello[] = "GET /hello HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n";

    /* Four silent connections fill the table; after the grace period they are stalled. */
    int silent[4];
    for (int i = 0; i < 4; i++) {
        silent[i] = tcp_connect(f->port, false);
        assert_true(silent[i] >= 0);
        sleep_ms(20);
    }
    sleep_ms(1200);
    /* A real client gets through; the oldest silent connection made room. */
    struct answer a;
    exchange(f->port, hello, sizeof hello - 1, &a);
    assert_int_equal(a.status, 200);
    free(a.text);
    assert_true(is_closed(silent[0], 1000));
    for (int i = 1; i < 4; i++)
        assert_false(is_closed(silent[i], 0));
    assert_int_equal(closed_count(f, CONN_CLOSE_EVICTED), 1);
    for (int i = 0; i < 4; i++)
        close(silent[i]);
    wait_idle_server(f);

    /* Stalled before idle: an idle keep-alive connection outlives stalled silent ones. */
    int idle = tcp_connect(f->port, false);
    const char ka[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(idle, ka, sizeof ka - 1);
    sleep_ms(100);
    int quiet[3];
    for (int i = 0; i < 3; i++)
        quiet[i] = tcp_connect(f->port, false);
    sleep_ms(1200);
    exchange(f->port, hello, sizeof hello - 1, &a);
    assert_int_equal(a.status, 200);
    free(a.text);
    assert_true(is_closed(quiet[0], 1000));
    char buf[512];
    ssize_t n = recv(idle, buf, sizeof buf, MSG_DONTWAIT); /* its answer, not end-of-stream */
    assert_true(n > 0);
    for (int i = 0; i < 3; i++)
        close(quiet[i]);
    wait_connections(f, 1); /* the idle one */

    /* Idle before young: with nothing stalled, the idle connection makes room. */
    int young[3];
    for (int i = 0; i < 3; i++) /* table: idle + 3 young = 4 */
        young[i] = tcp_connect(f->port, false);
    sleep_ms(50);
    exchange(f->port, hello, sizeof hello - 1, &a);
    assert_int_equal(a.status, 200);
    free(a.text);
    assert_true(is_closed(idle, 1000));
    close(idle);
    for (int i = 0; i < 3; i++)
        close(young[i]);
    wait_idle_server(f);

    /* Never a request in progress: four requests waiting for their bodies
     * hold every slot, so the new connection itself is refused. */
    int busy[4];
    const char part[] = "POST /echo HTTP/1.1\r\nHost: x\r\n" JSON "Content-Length: 2\r\n\r\n";
    for (int i = 0; i < 4; i++) {
        busy[i] = tcp_connect(f->port, false);
        send_all(busy[i], part, sizeof part - 1);
    }
    for (int i = 0; i < 500 && http_server_in_flight(f->server) < 4; i++)
        sleep_ms(10); /* all four are reading their bodies */
    assert_int_equal(http_server_in_flight(f->server), 4);
    int late = tcp_connect(f->port, false);
    assert_true(late >= 0);
    assert_true(is_closed(late, 2000));
    close(late);
    assert_int_equal(closed_count(f, CONN_CLOSE_REFUSED), 1);
    for (int i = 0; i < 4; i++) { /* they all complete */
        send_all(busy[i], "{}", 2);
        bool closed;
        char *text = recv_until_close(busy[i], 300, &closed);
        assert_non_null(strstr(text, "HTTP/1.1 200"));
        free(text);
        close(busy[i]);
    }
    stop_server(f);
}

/* The epoll pool (--thread-pool) gets the same routing, deadlines and limit. */
static void test_thread_pool(void **state)
{
    (void)state;
    struct limits lim = {
        .connection_limit = 2, .header_s = 1, .idle_s = 30, .read_s = 30, .pool = 2};
    struct fixture *f = start_server(&lim, NULL);
    struct answer a;
    const char hello[] = "GET /hello HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n";
    exchange(f->port, hello, sizeof hello - 1, &a);
    assert_int_equal(a.status, 200);
    free(a.text);
    const char nope[] = "GET /nope HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n";
    exchange(f->port, nope, sizeof nope - 1, &a);
    assert_int_equal(a.status, 404);
    free(a.text);
    int fd = tcp_connect(f->port, false);
    double t = wait_closed(fd, 5000);
    close(fd);
    if (t < 0.8 || t > 2.5)
        fail_msg("pool: a silent connection was closed after %.2f s", t);
    wait_idle_server(f);
    int s1 = tcp_connect(f->port, false), s2 = tcp_connect(f->port, false);
    sleep_ms(400); /* past the grace period (header/4) */
    exchange(f->port, hello, sizeof hello - 1, &a);
    assert_int_equal(a.status, 200);
    free(a.text);
    assert_true(is_closed(s1, 1000));
    close(s1);
    close(s2);
    assert_int_equal(closed_count(f, CONN_CLOSE_EVICTED), 1);
    stop_server(f);
}

/* ---------------------------------------------------------------- TLS */

struct pki {
    char dir[64];
    char *ca, *crt, *key;
};

static void make_pki(struct pki *p)
{
    snprintf(p->dir, sizeof p->dir, "/tmp/mm-test-http-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    p->ca = xasprintf("%s/ca.crt", p->dir);
    p->crt = xasprintf("%s/tls.crt", p->dir);
    p->key = xasprintf("%s/tls.key", p->dir);
    struct tls_pem_pair ca, leaf;
    struct mm_error err;
    const char *names[] = {"localhost", "127.0.0.1"};
    struct tls_leaf_request req = {"localhost", names, 2, 2, TLS_KEY_ECDSA_P256};
    assert_int_equal(tls_ca_generate("test-ca", 2, TLS_KEY_ECDSA_P256, &ca, &err), MM_OK);
    assert_int_equal(tls_leaf_generate(&ca, &req, &leaf, &err), MM_OK);
    assert_int_equal(tls_write_file(p->ca, ca.cert, strlen(ca.cert), 0644, &err), MM_OK);
    assert_int_equal(tls_write_file(p->crt, leaf.cert, strlen(leaf.cert), 0644, &err), MM_OK);
    assert_int_equal(tls_write_file(p->key, leaf.key, strlen(leaf.key), 0600, &err), MM_OK);
    tls_pem_pair_cleanup(&ca);
    tls_pem_pair_cleanup(&leaf);
}

static void drop_pki(struct pki *p)
{
    unlink(p->ca);
    unlink(p->crt);
    unlink(p->key);
    rmdir(p->dir);
    free(p->ca);
    free(p->crt);
    free(p->key);
}

static size_t sink(char *data, size_t size, size_t n, void *ud)
{
    struct strbuf *b = ud;
    return strbuf_append(b, data, size * n) ? size * n : 0;
}

static void test_tls(void **state)
{
    (void)state;
    struct pki p;
    make_pki(&p);
    struct cert_store *certs = cert_store_create(p.crt, p.key);
    struct mm_error err;

    /* No certificate yet: handshakes fail, the server stays up. */
    struct limits lim = {.connection_limit = 8, .header_s = 1, .idle_s = 30, .read_s = 30};
    struct fixture *f = start_server(&lim, certs);
    char *url = xasprintf("https://localhost:%u/echo?verbose", f->port);
    CURL *c = curl_easy_init();
    struct strbuf body;
    strbuf_init(&body, 1 << 16);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, p.ca);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"a\":1}");
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    assert_int_not_equal(curl_easy_perform(c), CURLE_OK);

    /* Loaded: verified TLS, the body reaches the handler. */
    assert_int_equal(cert_store_reload(certs, &err), MM_OK);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(code, 200);
    assert_non_null(strstr(strbuf_str(&body), "\"len\":7"));

    /* A connection that never starts TLS is closed at the header deadline. */
    int fd = tcp_connect(f->port, false);
    double t = wait_closed(fd, 5000);
    close(fd);
    if (t < 0.8 || t > 2.5)
        fail_msg("a connection without a ClientHello was closed after %.2f s", t);

    /* Plain HTTP on the TLS port is no request. */
    struct answer a;
    const char plain[] = "GET /hello HTTP/1.1\r\nHost: x\r\n" CLOSE "\r\n";
    exchange(f->port, plain, sizeof plain - 1, &a);
    assert_int_not_equal(a.status, 200);
    free(a.text);

    strbuf_cleanup(&body);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    free(url);
    stop_server(f);
    cert_store_free(certs);
    drop_pki(&p);
}

/* ---------------------------------------------------------------- shutdown */

struct shutdown_arg {
    struct fixture *f;
    unsigned left;
};

static void *do_shutdown(void *arg)
{
    struct shutdown_arg *a = arg;
    a->left = http_server_shutdown(a->f->server, 5000);
    return NULL;
}

static void test_graceful_shutdown(void **state)
{
    (void)state;
    struct fixture *f = start_server(NULL, NULL);
    atomic_store(&f->slow_ms, 800);
    int fd = tcp_connect(f->port, false);
    const char req[] = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"; /* keep-alive asked */
    send_all(fd, req, sizeof req - 1);
    sleep_ms(200);
    assert_int_equal(http_server_in_flight(f->server), 1);
    struct shutdown_arg arg = {f, 99};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, do_shutdown, &arg), 0);
    sleep_ms(200);
    assert_true(http_server_stopping(f->server));
    /* New connections are refused at once. */
    int late = tcp_connect(f->port, false);
    assert_true(late < 0);
    /* The request in flight is answered, with Connection: close. */
    bool closed = false;
    char *text = recv_until_close(fd, 5000, &closed);
    assert_non_null(strstr(text, "HTTP/1.1 201"));
    assert_non_null(find_ci(text, "Connection: close"));
    assert_true(closed);
    free(text);
    close(fd);
    pthread_join(th, NULL);
    assert_int_equal(arg.left, 0);
    assert_int_equal(http_server_shutdown(f->server, 100), 0); /* idempotent */
    stop_server(f);
}

/* ---------------------------------------------------------------- the table alone */

struct pair {
    int server, client;
};

static struct pair mkpair(void)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct pair p = {sv[0], sv[1]};
    return p;
}

/* A connection in state st since `age` ms before now. */
struct victim_case {
    const char *name;
    enum conn_state st[3];
    uint64_t age[3];
    int victim; /* index of the one shut down; 3 = the new connection (refused) */
};

static const struct victim_case victim_cases[] = {
    {"oldest stalled first", {CONN_NEW, CONN_NEW, CONN_NEW}, {5000, 9000, 3000}, 1},
    {"stalled handshake or headers count too",
     {CONN_HELLO, CONN_NEW, CONN_HEADERS},
     {4000, 3000, 6000},
     2},
    {"stalled before idle", {CONN_IDLE, CONN_NEW, CONN_IDLE}, {90000, 2000, 80000}, 1},
    {"idle before young", {CONN_IDLE, CONN_NEW, CONN_IDLE}, {1000, 300, 5000}, 2},
    {"young: no byte seen before progressing",
     {CONN_NEW, CONN_HELLO, CONN_ANSWERING},
     {100, 400, 9000},
     0},
    {"young and progressing: the oldest",
     {CONN_HELLO, CONN_HEADERS, CONN_BODY},
     {100, 300, 9000},
     1},
    {"the new connection goes last", {CONN_HELLO, CONN_HELLO, CONN_ANSWERING}, {10, 20, 5000}, 1},
    {"never a request in progress", {CONN_BODY, CONN_ANSWERING, CONN_BODY}, {9000, 9000, 9000}, 3},
    {"a request in progress is skipped",
     {CONN_BODY, CONN_IDLE, CONN_ANSWERING},
     {9000, 10, 9000},
     1},
};

static void test_conntable_victims(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof victim_cases / sizeof *victim_cases; c++) {
        const struct victim_case *vc = &victim_cases[c];
        struct conn_limits lim = {.soft_limit = 3,
                                  .header_timeout_ms = 10000,
                                  .read_timeout_ms = 10000,
                                  .idle_timeout_ms = 100000};
        struct conn_table *t = conn_table_create(&lim); /* grace 1 s */
        uint64_t now = 1000000;
        struct conn_entry e[4];
        struct pair p[4];
        for (int i = 0; i < 3; i++) {
            p[i] = mkpair();
            assert_true(conn_table_add(t, &e[i], p[i].server, now - vc->age[i]));
            if (vc->st[i] != CONN_NEW)
                conn_entry_advance(&e[i], vc->st[i], now - vc->age[i]);
            assert_int_equal(conn_entry_state(&e[i]), vc->st[i]);
        }
        p[3] = mkpair();
        bool kept = conn_table_add(t, &e[3], p[3].server, now);
        if (kept != (vc->victim != 3))
            fail_msg("%s: the new connection was %s", vc->name, kept ? "kept" : "refused");
        for (int i = 0; i < 4; i++)
            if (is_closed(p[i].client, 0) != (i == vc->victim))
                fail_msg("%s: connection %d %s", vc->name, i,
                         i == vc->victim ? "was not shut down" : "was shut down");
        uint64_t closed[CONN_CLOSE_COUNT];
        conn_table_closed(t, closed);
        assert_int_equal(closed[vc->victim == 3 ? CONN_CLOSE_REFUSED : CONN_CLOSE_EVICTED], 1);
        /* Another one arriving while the victim winds down evicts nobody else. */
        assert_int_equal(conn_table_count(t), 4);
        for (int i = 0; i < 4; i++) {
            conn_table_remove(t, &e[i]);
            close(p[i].server);
            close(p[i].client);
        }
        assert_int_equal(conn_table_count(t), 0);
        conn_table_free(t);
    }
}

static void test_conntable_deadlines(void **state)
{
    (void)state;
    struct conn_limits lim = {.soft_limit = 100,
                              .header_timeout_ms = 1000,
                              .read_timeout_ms = 2000,
                              .idle_timeout_ms = 3000};
    struct conn_table *t = conn_table_create(&lim);
    struct conn_entry e[6];
    struct pair p[6];
    uint64_t t0 = 50000;
    for (int i = 0; i < 6; i++) {
        p[i] = mkpair();
        assert_true(conn_table_add(t, &e[i], p[i].server, t0));
    }
    /* 0: silent. 1: handshake, then headers: the deadline stays the accept time's. */
    conn_entry_advance(&e[1], CONN_HELLO, t0 + 500);
    conn_entry_advance(&e[1], CONN_HEADERS, t0 + 900);
    /* 2: body since t0+500. 3: answering. 4: idle since t0+500. */
    conn_entry_advance(&e[2], CONN_BODY, t0 + 500);
    conn_entry_advance(&e[3], CONN_ANSWERING, t0);
    conn_entry_advance(&e[4], CONN_IDLE, t0 + 500);
    /* 5: idle, then a new request line: its header deadline counts from then. */
    conn_entry_advance(&e[5], CONN_IDLE, t0);
    conn_entry_advance(&e[5], CONN_HEADERS, t0 + 2000);
    conn_entry_advance(&e[5], CONN_HELLO, t0 + 2100); /* ignored: not NEW */
    assert_int_equal(conn_entry_state(&e[5]), CONN_HEADERS);

    assert_int_equal(conn_table_sweep(t, t0 + 999), 0);
    assert_int_equal(conn_table_sweep(t, t0 + 1000), 2); /* 0 and 1 */
    assert_true(is_closed(p[0].client, 0) && is_closed(p[1].client, 0));
    assert_int_equal(conn_table_sweep(t, t0 + 2499), 0);
    assert_int_equal(conn_table_sweep(t, t0 + 2500), 1); /* 2: the body */
    assert_int_equal(conn_table_sweep(t, t0 + 2999), 0);
    assert_int_equal(conn_table_sweep(t, t0 + 3000), 1);   /* 5: second request's headers */
    assert_int_equal(conn_table_sweep(t, t0 + 3500), 1);   /* 4: idle */
    assert_int_equal(conn_table_sweep(t, t0 + 999999), 0); /* 3: answering, never */
    assert_false(is_closed(p[3].client, 0));
    uint64_t closed[CONN_CLOSE_COUNT];
    conn_table_closed(t, closed);
    assert_int_equal(closed[CONN_CLOSE_HEADER_TIMEOUT], 3);
    assert_int_equal(closed[CONN_CLOSE_READ_TIMEOUT], 1);
    assert_int_equal(closed[CONN_CLOSE_IDLE_TIMEOUT], 1);
    conn_table_record_close(t, CONN_CLOSE_READ_TIMEOUT);
    conn_table_record_close(t, CONN_CLOSE_COUNT); /* ignored */
    conn_table_closed(t, closed);
    assert_int_equal(closed[CONN_CLOSE_READ_TIMEOUT], 2);
    for (int i = 5; i >= 0; i--) { /* removal in any order keeps the table consistent */
        conn_table_remove(t, &e[i]);
        conn_table_remove(t, &e[i]); /* twice is harmless */
        close(p[i].server);
        close(p[i].client);
    }
    assert_int_equal(conn_table_count(t), 0);
    conn_table_free(t);
    assert_string_equal(conn_close_reason_name(CONN_CLOSE_EVICTED), "evicted");
    assert_string_equal(conn_close_reason_name(CONN_CLOSE_COUNT), "unknown");
}

/* ---------------------------------------------------------------- process metrics */

static void test_procmetrics(void **state)
{
    (void)state;
    /* proc(5): a comm with spaces and parentheses; utime 250 + stime 150 ticks. */
    const char stat[] = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 "
                        "20 0 12 0 360000 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 "
                        "4096 0 0 0 0 17 1 0 0 0 0 0\n";
    struct procmetrics m;
    memset(&m, 0, sizeof m);
    assert_true(procmetrics_parse_stat(stat, 100, 4096, 1700000000.0, &m));
    assert_true(m.have_stat);
    assert_true(m.cpu_seconds > 3.999 && m.cpu_seconds < 4.001);
    assert_true(m.start_time > 1700003599.99 && m.start_time < 1700003600.01);
    assert_true(m.virtual_bytes == 104857600.0);
    assert_true(m.resident_bytes == 2560.0 * 4096);
    struct procmetrics bad;
    memset(&bad, 0, sizeof bad);
    assert_false(procmetrics_parse_stat("4242 (x) S 1 2 3", 100, 4096, 0, &bad));
    assert_false(procmetrics_parse_stat("no parenthesis", 100, 4096, 0, &bad));
    assert_false(bad.have_stat);

    const char limits[] =
        "Limit                     Soft Limit           Hard Limit           Units\n"
        "Max cpu time              unlimited            unlimited            seconds\n"
        "Max open files            1024                 1048576              files\n"
        "Max address space         unlimited            unlimited            bytes\n";
    assert_true(procmetrics_parse_limits(limits, &m));
    assert_true(m.max_fds == 1024.0);
    assert_true(m.max_virtual_bytes > 1.8e19);
    assert_false(procmetrics_parse_limits("Max open files  lots\n", &bad));

    m.have_fds = true;
    m.open_fds = 17;
    struct strbuf out;
    strbuf_init(&out, 1 << 16);
    assert_true(procmetrics_render(&m, &out));
    const char *want[] = {
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 4\n",
        "# HELP process_open_fds Number of open file descriptors.\n"
        "# TYPE process_open_fds gauge\nprocess_open_fds 17\n",
        "# HELP process_max_fds Maximum number of open file descriptors.\n"
        "# TYPE process_max_fds gauge\nprocess_max_fds 1024\n",
        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
        "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes 104857600\n",
        "# HELP process_virtual_memory_max_bytes Maximum amount of virtual memory available in "
        "bytes.\n# TYPE process_virtual_memory_max_bytes gauge\n"
        "process_virtual_memory_max_bytes 1.8446744073709552e+19\n",
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 10485760\n",
        "# HELP process_start_time_seconds Start time of the process since unix epoch in "
        "seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds "
        "1700003600\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(strbuf_str(&out), want[i]))
            fail_msg("process metrics lack [%s]\n%s", want[i], strbuf_str(&out));
    strbuf_cleanup(&out);

    /* This process: values that make sense. */
    struct procmetrics live;
    procmetrics_read(&live);
    assert_true(live.have_stat && live.have_fds && live.have_limits);
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_true(live.max_fds == (double)rl.rlim_cur);
    assert_true(live.open_fds >= 3 && live.resident_bytes > 0 && live.virtual_bytes > 0);
    assert_true(live.start_time > 1.5e9 && live.start_time <= (double)time(NULL) + 1);
    assert_true(live.cpu_seconds >= 0);
}

int main(void)
{
    xalloc_install_json();
    log_setup(LOG_ERROR, LOG_FORMAT_JSON);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conntable_victims),
        cmocka_unit_test(test_conntable_deadlines),
        cmocka_unit_test(test_procmetrics),
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_header_timeout),
        cmocka_unit_test(test_read_and_idle_timeouts),
        cmocka_unit_test(test_eviction_at_limit),
        cmocka_unit_test(test_thread_pool),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_graceful_shutdown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
