/*
 * The connection table of an HTTP server (server/http.c): every open client
 * connection, what it is doing and since when, so that stalled clients can
 * neither hold a connection forever nor crowd out the API server.
 *
 * Two rules, both enforced by shutting a socket down (shutdown(SHUT_RDWR),
 * never close(): the socket belongs to libmicrohttpd, whose thread then sees
 * end-of-stream and closes the connection itself):
 *
 *  - deadlines (conn_table_sweep, called every 250 ms): a connection must
 *    finish its TLS handshake and the headers of its first request within
 *    header_timeout of being accepted (the headers of a later request within
 *    header_timeout of its request line), a request body must arrive within
 *    read_timeout of the headers, and a keep-alive connection may stay idle
 *    idle_timeout after its last answer;
 *  - the soft limit (conn_table_add): a connection that takes the table over
 *    soft_limit makes room by shutting one other down, chosen as
 *      1. the connection stalled longest before its first byte, handshake or
 *         headers, if it has been stalled for at least the grace period;
 *      2. else the idle keep-alive connection unused for longest;
 *      3. else the oldest young connection that has not sent a byte the
 *         server can see (no ClientHello, no request line);
 *      4. else the oldest young connection with its handshake or headers under
 *         way.
 *    Only when none of those exists is the new connection itself refused.
 *    A connection whose request is being read or answered is never chosen.
 *    The server's hard limit (libmicrohttpd's) sits above soft_limit, so new
 *    connections keep being accepted while evicted ones wind down.
 *
 * Thread safety: add, remove, sweep and the readers lock the table. An entry's
 * state is one atomic word written only by its connection's own thread
 * (conn_entry_advance) and read by the others. An entry is in the table from
 * the connection-started notification until the connection-closed one, and
 * libmicrohttpd closes the socket only after the latter returns, so a socket
 * shut down under the table's lock is always the connection's own, never a
 * reused descriptor.
 */
#ifndef MM_SERVER_CONNTABLE_H
#define MM_SERVER_CONNTABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a connection is doing; see conn_entry_advance for the transitions. */
enum conn_state {
    CONN_NEW = 0,   /* accepted; nothing received that the server can see */
    CONN_HELLO,     /* TLS: the ClientHello was processed, the handshake goes on */
    CONN_HEADERS,   /* the request line arrived; headers not complete */
    CONN_BODY,      /* headers complete; the body is being read */
    CONN_ANSWERING, /* the request is complete: handled and answered */
    CONN_IDLE,      /* keep-alive, between requests */
    CONN_STATE_COUNT
};

/* Why the table shut a connection down. */
enum conn_close_reason {
    CONN_CLOSE_HEADER_TIMEOUT = 0, /* handshake or headers past header_timeout */
    CONN_CLOSE_READ_TIMEOUT,       /* body past read_timeout */
    CONN_CLOSE_IDLE_TIMEOUT,       /* idle keep-alive past idle_timeout */
    CONN_CLOSE_EVICTED,            /* made room for a newer connection at the soft limit */
    CONN_CLOSE_REFUSED,            /* the new connection itself, nothing else could go */
    CONN_CLOSE_COUNT
};

/* "header_timeout", "read_timeout", "idle_timeout", "evicted", "refused". */
const char *conn_close_reason_name(enum conn_close_reason r);

struct conn_limits {
    unsigned soft_limit;        /* connections before eviction starts; >= 1 */
    uint64_t header_timeout_ms; /* accept to end of the first request's headers */
    uint64_t read_timeout_ms;   /* headers to end of body */
    uint64_t idle_timeout_ms;   /* last answer to the next request line */
    uint64_t grace_ms;          /* stalled this long before rule 1 applies; 0: header/4, <= 1 s */
};

/*
 * One connection's entry, embedded in the caller's per-connection object.
 * Fields are the table's; callers only pass the entry around.
 */
struct conn_entry {
    atomic_ullong word; /* (since_ms << 4) | state */
    int fd;             /* under the table lock */
    size_t index;       /* position in the table, under the lock */
    bool evicted;       /* shut down by the table, under the lock */
    bool in_table;      /* under the lock */
};

struct conn_table;

/* A table with these limits (copied). Never NULL. */
struct conn_table *conn_table_create(const struct conn_limits *limits);

/* Free; the table must be empty (every connection removed). NULL is a no-op. */
void conn_table_free(struct conn_table *t);

/*
 * Track e for the connected socket fd (owned by the caller's library),
 * state CONN_NEW since now_ms. When the table is then over its soft limit,
 * shut one connection down as described above. Returns false when that one
 * was e itself (the new connection is refused), true otherwise.
 */
bool conn_table_add(struct conn_table *t, struct conn_entry *e, int fd, uint64_t now_ms);

/* Stop tracking e (from the connection-closed notification, before the socket is closed). */
void conn_table_remove(struct conn_table *t, struct conn_entry *e);

/*
 * Move e to state to at now_ms. Called only from e's connection thread.
 *   CONN_HELLO:   only from CONN_NEW; the deadline stays the accept time's.
 *   CONN_HEADERS: from NEW or HELLO (first request: the deadline stays the accept
 *                 time's) or from IDLE (a later request: counted from now).
 *   CONN_BODY, CONN_ANSWERING, CONN_IDLE: always, counted from now.
 */
void conn_entry_advance(struct conn_entry *e, enum conn_state to, uint64_t now_ms);

/* e's state (any thread). */
enum conn_state conn_entry_state(const struct conn_entry *e);

/* Shut down every connection past its deadline at now_ms; returns how many. */
unsigned conn_table_sweep(struct conn_table *t, uint64_t now_ms);

/* Count a connection the caller closed itself for reason (e.g. a late body seen on arrival). */
void conn_table_record_close(struct conn_table *t, enum conn_close_reason reason);

/* Connections tracked (evicted ones still winding down included). */
unsigned conn_table_count(struct conn_table *t);

/* Connections shut down so far, by reason (out has CONN_CLOSE_COUNT slots). */
void conn_table_closed(struct conn_table *t, uint64_t out[CONN_CLOSE_COUNT]);

/* Milliseconds of CLOCK_MONOTONIC, the clock the table's times use. */
uint64_t conn_now_ms(void);

#endif
