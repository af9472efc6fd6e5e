/*
 * Unit tests for the watch stream decoder (src/k8s/watch.c): every split
 * point of a multi-event stream (and byte-at-a-time, and three-way splits),
 * irregular framing (pretty-printed, glued, CRLF), BOOKMARKs full of zero
 * values, the per-event size cap, garbage, unknown types, a stream that ends
 * inside an event, and a callback that stops the stream. Fixtures:
 * tests/data/k8s/watch/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "k8s/watch.h"
#include "testutil.h"
#include "util/fileio.h"
#include "util/xalloc.h"

struct collected {
    int n;
    enum k8s_event_type type[16];
    char *rv[16];
    char *obj[16];  /* canonical JSON of the object */
    int stop_after; /* return MM_ERR_CANCELLED after this many events; 0: never */
};

static enum mm_status collect(void *ctx, const struct k8s_watch_event *ev)
{
    struct collected *c = ctx;
    assert_true(c->n < 16);
    c->type[c->n] = ev->type;
    c->rv[c->n] = ev->resource_version ? xstrdup(ev->resource_version) : NULL;
    c->obj[c->n] = json_dumps(ev->object, JSON_COMPACT | JSON_SORT_KEYS);
    c->n++;
    if (c->stop_after && c->n >= c->stop_after)
        return MM_ERR_CANCELLED;
    return MM_OK;
}

static void collected_free(struct collected *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->rv[i]);
        free(c->obj[i]);
    }
    memset(c, 0, sizeof *c);
}

static char *read_data(const char *name, size_t *len)
{
    char *dir = tu_testdata();
    char *p = xasprintf("%s/k8s/watch/%s", dir, name);
    char *data = NULL;
    struct mm_error err;
    if (fileio_read(p, 1 << 20, &data, len, &err) != MM_OK)
        fail_msg("%s: %s", p, err.message);
    free(p);
    free(dir);
    return data;
}

/* The expected events: one per line of stream.ndjson, decoded independently. */
struct expected {
    int n;
    enum k8s_event_type type[16];
    const char *rv[16];
    char *obj[16];
    json_t *doc;
};

static enum k8s_event_type type_of(const char *s)
{
    if (!strcmp(s, "ADDED"))
        return K8S_EVENT_ADDED;
    if (!strcmp(s, "MODIFIED"))
        return K8S_EVENT_MODIFIED;
    if (!strcmp(s, "DELETED"))
        return K8S_EVENT_DELETED;
    if (!strcmp(s, "BOOKMARK"))
        return K8S_EVENT_BOOKMARK;
    return K8S_EVENT_ERROR;
}

static void expected_load(struct expected *e)
{
    size_t len;
    char *data = read_data("expected.json", &len);
    json_error_t jerr;
    e->doc = json_loads(data, 0, &jerr);
    free(data);
    assert_non_null(e->doc);
    size_t i;
    json_t *v;
    e->n = 0;
    json_array_foreach(json_object_get(e->doc, "types"), i, v) e->type[e->n++] =
        type_of(json_string_value(v));
    json_array_foreach(json_object_get(e->doc, "rvs"), i, v) e->rv[i] = json_string_value(v);
    char *stream = read_data("stream.ndjson", &len);
    char *save = NULL;
    int k = 0;
    for (char *line = strtok_r(stream, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *ev = json_loads(line, 0, &jerr);
        assert_non_null(ev);
        e->obj[k++] = json_dumps(json_object_get(ev, "object"), JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(ev);
    }
    assert_int_equal(k, e->n);
    free(stream);
}

static void expected_free(struct expected *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->obj[i]);
    json_decref(e->doc);
}

static void check(const struct expected *e, const struct collected *c, const char *what)
{
    if (c->n != e->n)
        fail_msg("%s: %d events, want %d", what, c->n, e->n);
    for (int i = 0; i < e->n; i++) {
        assert_int_equal(c->type[i], e->type[i]);
        if (e->rv[i])
            assert_string_equal(c->rv[i], e->rv[i]);
        else
            assert_null(c->rv[i]);
        assert_string_equal(c->obj[i], e->obj[i]);
    }
}

/* Feed data in the pieces given by cut points (sorted, within len). */
static enum mm_status feed_pieces(const char *data, size_t len, const size_t *cuts, int ncuts,
                                  size_t max_event, struct collected *c, struct k8s_error *err)
{
    struct k8s_watch_decoder d;
    k8s_watch_decoder_init(&d, max_event);
    size_t at = 0;
    enum mm_status rc = MM_OK;
    for (int i = 0; i <= ncuts && rc == MM_OK; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        rc = k8s_watch_decoder_feed(&d, data + at, end - at, collect, c, err);
        at = end;
    }
    if (rc == MM_OK)
        rc = k8s_watch_decoder_finish(&d, err);
    k8s_watch_decoder_cleanup(&d);
    return rc;
}

static void test_every_split_point(void **state)
{
    (void)state;
    struct expected e;
    expected_load(&e);
    size_t len;
    char *data = read_data("stream.ndjson", &len);
    struct k8s_error err = K8S_ERROR_INIT;
    for (size_t i = 0; i <= len; i++) {
        struct collected c = {0};
        assert_int_equal(feed_pieces(data, len, &i, 1, 0, &c, &err), MM_OK);
        check(&e, &c, "two pieces");
        collected_free(&c);
    }
    /* three pieces: every pair of cuts, in steps */
    for (size_t i = 0; i <= len; i += 5)
        for (size_t j = i; j <= len; j += 11) {
            struct collected c = {0};
            size_t cuts[2] = {i, j};
            assert_int_equal(feed_pieces(data, len, cuts, 2, 0, &c, &err), MM_OK);
            check(&e, &c, "three pieces");
            collected_free(&c);
        }
    /* one byte at a time */
    struct k8s_watch_decoder d;
    struct collected c = {0};
    k8s_watch_decoder_init(&d, 0);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(k8s_watch_decoder_feed(&d, data + i, 1, collect, &c, &err), MM_OK);
    assert_int_equal(k8s_watch_decoder_finish(&d, &err), MM_OK);
    assert_int_equal(d.events, (size_t)e.n);
    check(&e, &c, "bytewise");
    k8s_watch_decoder_cleanup(&d);
    collected_free(&c);
    /* the whole stream at once */
    assert_int_equal(feed_pieces(data, len, NULL, 0, 0, &c, &err), MM_OK);
    check(&e, &c, "whole");
    collected_free(&c);
    k8s_error_cleanup(&err);
    free(data);
    expected_free(&e);
}

/* Pretty-printed, glued ("}{"), CRLF-separated and unterminated events decode the same. */
static void test_irregular_framing(void **state)
{
    (void)state;
    struct expected e;
    expected_load(&e);
    size_t len;
    char *data = read_data("stream-irregular.txt", &len);
    struct k8s_error err = K8S_ERROR_INIT;
    for (size_t i = 0; i <= len; i++) {
        struct collected c = {0};
        assert_int_equal(feed_pieces(data, len, &i, 1, 0, &c, &err), MM_OK);
        check(&e, &c, "irregular");
        collected_free(&c);
    }
    k8s_error_cleanup(&err);
    free(data);
    expected_free(&e);
}

/* An event over the cap is MM_ERR_TOO_BIG wherever the stream is split; smaller ones pass. */
static void test_event_size_cap(void **state)
{
    (void)state;
    char big[400];
    int n = snprintf(big, sizeof big,
                     "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}\n"
                     "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"2\"},"
                     "\"data\":{\"k\":\"%0200d\"}}}\n",
                     0);
    size_t len = (size_t)n;
    struct k8s_error err = K8S_ERROR_INIT;
    for (size_t i = 0; i <= len; i++) {
        struct collected c = {0};
        assert_int_equal(feed_pieces(big, len, &i, 1, 120, &c, &err), MM_ERR_TOO_BIG);
        assert_int_equal(c.n, 1); /* the small first event got through */
        assert_non_null(strstr(err.base.message, "larger than the limit of 120 bytes"));
        collected_free(&c);
    }
    /* exactly at the cap is fine */
    const char *ev = "{\"type\":\"ADDED\",\"object\":{}}";
    struct collected c = {0};
    assert_int_equal(feed_pieces(ev, strlen(ev), NULL, 0, strlen(ev), &c, &err), MM_OK);
    assert_int_equal(c.n, 1);
    collected_free(&c);
    assert_int_equal(feed_pieces(ev, strlen(ev), NULL, 0, strlen(ev) - 1, &c, &err),
                     MM_ERR_TOO_BIG);
    collected_free(&c);
    k8s_error_cleanup(&err);
}

struct bad_case {
    const char *name;
    const char *stream;
    enum mm_status want;
    int events_before; /* events delivered before the error */
    const char *msg;
};

/* clang-format off */
static const struct bad_case bad_cases[] = {
    {"garbage line", "hello world\n", MM_ERR_PARSE, 0, "expected a JSON object"},
    {"garbage after a good event",
     "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}\nnot json\n",
     MM_ERR_PARSE, 1, "expected a JSON object after event 1"},
    {"an array", "[1,2,3]\n", MM_ERR_PARSE, 0, "expected a JSON object"},
    {"braces balance but not JSON", "{bad json}\n", MM_ERR_PARSE, 0, "is not JSON"},
    {"no type", "{\"object\":{}}\n", MM_ERR_PARSE, 0, "has no type"},
    {"unknown type", "{\"type\":\"RENAMED\",\"object\":{}}\n", MM_ERR_PARSE, 0,
     "unknown type \"RENAMED\""},
    {"no object", "{\"type\":\"ADDED\"}\n", MM_ERR_PARSE, 0, "has no object"},
    {"object not an object", "{\"type\":\"ADDED\",\"object\":\"x\"}\n", MM_ERR_PARSE, 0,
     "has no object"},
    {"ends inside an event", "{\"type\":\"ADDED\",\"object\":{\"a\":\"}", MM_ERR_PARSE, 0,
     "ended inside event 1"},
    {"NUL byte", "\0{}", MM_ERR_PARSE, 0, "\\x00"},
};
/* clang-format on */

static void test_bad_streams(void **state)
{
    (void)state;
    struct k8s_error err = K8S_ERROR_INIT;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *b = &bad_cases[i];
        size_t len = strlen(b->stream) ? strlen(b->stream) : 3;
        print_message("bad stream: %s\n", b->name);
        struct collected c = {0};
        enum mm_status rc = feed_pieces(b->stream, len, NULL, 0, 0, &c, &err);
        assert_int_equal(rc, b->want);
        assert_int_equal(c.n, b->events_before);
        if (!strstr(err.base.message, b->msg))
            fail_msg("%s: [%s] lacks [%s]", b->name, err.base.message, b->msg);
        collected_free(&c);
    }
    k8s_error_cleanup(&err);
}

/* The callback's error stops the stream at once: later events are not delivered. */
static void test_callback_stops(void **state)
{
    (void)state;
    size_t len;
    char *data = read_data("stream.ndjson", &len);
    struct k8s_error err = K8S_ERROR_INIT;
    struct collected c = {.stop_after = 2};
    assert_int_equal(feed_pieces(data, len, NULL, 0, 0, &c, &err), MM_ERR_CANCELLED);
    assert_int_equal(c.n, 2);
    collected_free(&c);
    k8s_error_cleanup(&err);
    free(data);
}

/* A BOOKMARK full of zero values (nulls, empty objects): only the RV matters, nothing fails. */
static void test_bookmark_zero_values(void **state)
{
    (void)state;
    const char *bm = "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\","
                     "\"metadata\":{\"name\":\"\",\"namespace\":\"\",\"resourceVersion\":\"12746\","
                     "\"creationTimestamp\":null,\"annotations\":{\"k8s.io/initial-events-end\":"
                     "\"true\"}},\"spec\":{\"containers\":null,\"restartPolicy\":\"\"},"
                     "\"status\":{\"phase\":\"\",\"conditions\":null}}}\n"
                     "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{}}}\n";
    struct k8s_error err = K8S_ERROR_INIT;
    struct collected c = {0};
    assert_int_equal(feed_pieces(bm, strlen(bm), NULL, 0, 0, &c, &err), MM_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.type[0], K8S_EVENT_BOOKMARK);
    assert_string_equal(c.rv[0], "12746");
    assert_null(c.rv[1]); /* tolerated: no RV at all */
    collected_free(&c);
    k8s_error_cleanup(&err);
    assert_string_equal(k8s_event_type_name(K8S_EVENT_BOOKMARK), "BOOKMARK");
    assert_string_equal(k8s_event_type_name(K8S_EVENT_ERROR), "ERROR");
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_split_point), cmocka_unit_test(test_irregular_framing),
        cmocka_unit_test(test_event_size_cap),    cmocka_unit_test(test_bad_streams),
        cmocka_unit_test(test_callback_stops),    cmocka_unit_test(test_bookmark_zero_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
