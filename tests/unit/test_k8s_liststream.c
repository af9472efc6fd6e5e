/*
 * The streaming list decoder (k8s/liststream.h): items and metadata come out
 * the same however the body is split, strings with brackets and escapes do
 * not confuse it, and bad bodies fail cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "k8s/liststream.h"
#include "util/xalloc.h"

static const char BODY[] =
    "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"note\":\"a } { ] [ \\\" \\\\ string\","
    "\"extra\":{\"items\":[{\"not\":\"an item\"}]},\"metadata\":{\"resourceVersion\":\"42\","
    "\"continue\":\"tok\\\"en\"},\"items\":[{\"metadata\":{\"name\":\"a\"},\"spec\":{\"x\":"
    "[1,2,{\"y\":\"}]\"}]}},\n  {\"metadata\":{\"name\":\"b\\u00e9\"}} , {\"metadata\":"
    "{\"name\":\"c\",\"labels\":{\"items\":\"[\"}}}],\"tail\":[1,[2,[3]]]}\n";

struct got {
    char names[8][16];
    size_t n;
};

static enum mm_status collect(void *ctx, json_t *item)
{
    struct got *g = ctx;
    const char *name = json_string_value(json_object_get(json_object_get(item, "metadata"), "name"));
    if (g->n < 8)
        snprintf(g->names[g->n++], sizeof g->names[0], "%s", name ? name : "?");
    return MM_OK;
}

static void check_result(const struct k8s_list_decoder *d, const struct got *g, size_t split)
{
    if (g->n != 3 || strcmp(g->names[0], "a") || strcmp(g->names[1], "b\xc3\xa9") ||
        strcmp(g->names[2], "c"))
        fail_msg("split %zu: items %zu [%s %s %s]", split, g->n, g->names[0], g->names[1],
                 g->names[2]);
    const char *rv =
        json_string_value(json_object_get(d->metadata, "resourceVersion"));
    const char *cont = json_string_value(json_object_get(d->metadata, "continue"));
    if (!rv || strcmp(rv, "42") || !cont || strcmp(cont, "tok\"en"))
        fail_msg("split %zu: metadata %s %s", split, rv ? rv : "-", cont ? cont : "-");
}

/* Every split point in two pieces, and byte by byte. */
static void test_every_split(void **state)
{
    (void)state;
    size_t len = strlen(BODY);
    for (size_t split = 0; split <= len; split++) {
        struct got g = {0};
        struct k8s_list_decoder d;
        struct mm_error err;
        k8s_list_decoder_init(&d, 0, collect, &g);
        assert_int_equal(k8s_list_decoder_feed(&d, BODY, split, &err), MM_OK);
        assert_int_equal(k8s_list_decoder_feed(&d, BODY + split, len - split, &err), MM_OK);
        assert_int_equal(k8s_list_decoder_finish(&d, &err), MM_OK);
        check_result(&d, &g, split);
        k8s_list_decoder_cleanup(&d);
    }
    struct got g = {0};
    struct k8s_list_decoder d;
    struct mm_error err;
    k8s_list_decoder_init(&d, 0, collect, &g);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(k8s_list_decoder_feed(&d, BODY + i, 1, &err), MM_OK);
    assert_int_equal(k8s_list_decoder_finish(&d, &err), MM_OK);
    check_result(&d, &g, (size_t)-1);
    k8s_list_decoder_cleanup(&d);
}

static enum mm_status stop_at_two(void *ctx, json_t *item)
{
    (void)item;
    size_t *n = ctx;
    return ++*n == 2 ? MM_ERR_CANCELLED : MM_OK;
}

struct bad_case {
    const char *name, *body;
    enum mm_status feed, finish;
};

static const struct bad_case bad_cases[] = {
    {"not an object", "[1,2]", MM_ERR_PARSE, MM_ERR_PARSE},
    {"empty", "", MM_OK, MM_ERR_PARSE},
    {"cut short", "{\"items\":[{\"a\":1}", MM_OK, MM_ERR_PARSE},
    {"garbage after", "{\"items\":[]} x", MM_ERR_PARSE, MM_ERR_PARSE},
    {"unbalanced", "{\"items\":[]}}", MM_ERR_PARSE, MM_ERR_PARSE},
    {"item not JSON", "{\"items\":[{\"a\":tru}]}", MM_ERR_PARSE, MM_ERR_PARSE},
    {"items null", "{\"metadata\":{},\"items\":null}", MM_OK, MM_OK},
    {"no items", "{\"kind\":\"List\"}", MM_OK, MM_OK},
};

static void test_bad_bodies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        const struct bad_case *c = &bad_cases[i];
        struct got g = {0};
        struct k8s_list_decoder d;
        struct mm_error err;
        k8s_list_decoder_init(&d, 0, collect, &g);
        enum mm_status st = k8s_list_decoder_feed(&d, c->body, strlen(c->body), &err);
        if (st != c->feed)
            fail_msg("case \"%s\": feed %d, want %d", c->name, st, c->feed);
        if (st == MM_OK) {
            st = k8s_list_decoder_finish(&d, &err);
            if (st != c->finish)
                fail_msg("case \"%s\": finish %d, want %d", c->name, st, c->finish);
        }
        k8s_list_decoder_cleanup(&d);
    }
    /* An item over the cap. */
    struct k8s_list_decoder d;
    struct mm_error err;
    k8s_list_decoder_init(&d, 16, collect, NULL);
    const char *big = "{\"items\":[{\"metadata\":{\"name\":\"a-rather-long-name\"}}]}";
    assert_int_equal(k8s_list_decoder_feed(&d, big, strlen(big), &err), MM_ERR_TOO_BIG);
    k8s_list_decoder_cleanup(&d);
    /* The handler stops the list. */
    size_t n = 0;
    k8s_list_decoder_init(&d, 0, stop_at_two, &n);
    const char *three = "{\"items\":[{},{},{}]}";
    assert_int_equal(k8s_list_decoder_feed(&d, three, strlen(three), &err), MM_ERR_CANCELLED);
    assert_int_equal(n, 2);
    k8s_list_decoder_cleanup(&d);
}

/* 10,000 items fed in 4 KiB chunks: memory stays at one item (the capture buffer). */
static void test_many_items(void **state)
{
    (void)state;
    size_t n = 0;
    struct k8s_list_decoder d;
    struct mm_error err;
    k8s_list_decoder_init(&d, 0, stop_at_two, &n);
    n = 3; /* never stops */
    char chunk[4096];
    const char *head = "{\"metadata\":{\"resourceVersion\":\"9\"},\"items\":[";
    assert_int_equal(k8s_list_decoder_feed(&d, head, strlen(head), &err), MM_OK);
    for (int i = 0; i < 10000; i++) {
        int len = snprintf(chunk, sizeof chunk, "%s{\"metadata\":{\"name\":\"pod-%d\"}}",
                           i ? "," : "", i);
        assert_int_equal(k8s_list_decoder_feed(&d, chunk, (size_t)len, &err), MM_OK);
    }
    assert_int_equal(k8s_list_decoder_feed(&d, "]}", 2, &err), MM_OK);
    assert_int_equal(k8s_list_decoder_finish(&d, &err), MM_OK);
    assert_int_equal(d.items, 10000);
    assert_true(d.buf.cap < 4096);
    k8s_list_decoder_cleanup(&d);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_many_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
