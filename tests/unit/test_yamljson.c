/* YAML/JSON loading: typing rules, caps, errors with positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/strbuf.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

struct load_case {
    const char *name;
    const char *yaml;
    const char *json; /* expected array of documents, or NULL on error */
    enum mm_status status;
    const char *error_part; /* substring of the error message */
};

static const struct load_case load_cases[] = {
    {"scalars", "a: 1\nb: -2\nc: 1.5\nd: true\ne: false\nf: null\ng: ~\nh: hello\ni:\n",
     "[{\"a\":1,\"b\":-2,\"c\":1.5,\"d\":true,\"e\":false,\"f\":null,\"g\":null,\"h\":\"hello\","
     "\"i\":null}]",
     MM_OK, NULL},
    {"yaml 1.1 booleans stay strings", "a: yes\nb: no\nc: on\nd: off\ne: y\n",
     "[{\"a\":\"yes\",\"b\":\"no\",\"c\":\"on\",\"d\":\"off\",\"e\":\"y\"}]", MM_OK, NULL},
    {"quoted numbers stay strings", "port: \"5670\"\nenabled: 'true'\n",
     "[{\"port\":\"5670\",\"enabled\":\"true\"}]", MM_OK, NULL},
    {"str tag", "a: !!str 12\n", "[{\"a\":\"12\"}]", MM_OK, NULL},
    {"hex and octal", "a: 0x1F\nb: 0o17\n", "[{\"a\":31,\"b\":15}]", MM_OK, NULL},
    {"not numbers", "a: 1.2.3\nb: 12abc\nc: .inf\nd: 1e\n",
     "[{\"a\":\"1.2.3\",\"b\":\"12abc\",\"c\":\".inf\",\"d\":\"1e\"}]", MM_OK, NULL},
    {"multi document skips empty ones", "---\na: 1\n---\n---\nb: 2\n...\n",
     "[{\"a\":1},{\"b\":2}]", MM_OK, NULL},
    {"sequences and nesting", "l:\n- 1\n- x: [1, 2]\n  y: {z: w}\n",
     "[{\"l\":[1,{\"x\":[1,2],\"y\":{\"z\":\"w\"}}]}]", MM_OK, NULL},
    {"anchors and aliases", "base: &b {port: 1}\nother: *b\n",
     "[{\"base\":{\"port\":1},\"other\":{\"port\":1}}]", MM_OK, NULL},
    {"json document", "{\"a\": [1, {\"b\": null}]}", "[{\"a\":[1,{\"b\":null}]}]", MM_OK, NULL},
    {"block literal", "s: |\n  line1\n  line2\n", "[{\"s\":\"line1\\nline2\\n\"}]", MM_OK,
     NULL},
    {"empty stream", "", "[]", MM_OK, NULL},
    {"only comments", "# nothing\n", "[]", MM_OK, NULL},
    {"bad indentation", "a: 1\n b: 2\n", NULL, MM_ERR_PARSE, "line 2"},
    {"unclosed flow", "a: [1, 2\n", NULL, MM_ERR_PARSE, "line"},
    {"duplicate key", "a: 1\na: 2\n", NULL, MM_ERR_PARSE, "duplicate mapping key \"a\""},
    {"non-string key", "? [1]\n: x\n", NULL, MM_ERR_TYPE, "mapping keys must be strings"},
    {"unknown alias", "a: *nope\n", NULL, MM_ERR_PARSE, "line 1"},
    {"malformed json", "{\"a\": [1, 2}", NULL, MM_ERR_PARSE, "line 1"},
    {"tab indentation", "a:\n\t- 1\n", NULL, MM_ERR_PARSE, "line 2"},
};

static void test_load_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof load_cases / sizeof *load_cases; i++) {
        const struct load_case *c = &load_cases[i];
        json_t *docs = NULL;
        struct mm_error err;
        mm_error_clear(&err);
        enum mm_status st = yamljson_load(c->yaml, strlen(c->yaml), NULL, &docs, &err);
        if (st != c->status)
            fail_msg("case \"%s\": status %d, want %d (%s)", c->name, st, c->status, err.message);
        if (c->json) {
            json_t *want = json_loads(c->json, 0, NULL);
            assert_non_null(want);
            if (!json_equal(docs, want)) {
                char *got = json_dumps(docs, JSON_COMPACT);
                fail_msg("case \"%s\": got %s want %s", c->name, got, c->json);
            }
            json_decref(want);
        } else {
            assert_null(docs);
            if (!strstr(err.message, c->error_part))
                fail_msg("case \"%s\": error \"%s\" lacks \"%s\"", c->name, err.message,
                         c->error_part);
        }
        json_decref(docs);
    }
}

static void test_caps(void **state)
{
    (void)state;
    struct mm_error err;
    json_t *docs = NULL;
    /* size cap */
    struct yamljson_limits lim = yamljson_default_limits;
    lim.max_bytes = 8;
    assert_int_equal(yamljson_load("a: 123456789", 12, &lim, &docs, &err), MM_ERR_TOO_BIG);
    assert_null(docs);
    /* depth cap, YAML flow and JSON */
    struct strbuf b;
    strbuf_init(&b, 1 << 20);
    for (int i = 0; i < 5000; i++)
        assert_true(strbuf_puts(&b, "["));
    assert_int_not_equal(yamljson_load(b.data, b.len, NULL, &docs, &err), MM_OK);
    assert_null(docs);
    strbuf_cleanup(&b);
    for (int i = 0; i < 100; i++)
        assert_true(strbuf_puts(&b, "{\"a\":"));
    assert_true(strbuf_puts(&b, "1"));
    for (int i = 0; i < 100; i++)
        assert_true(strbuf_puts(&b, "}"));
    /* valid JSON deeper than the YAML cap is still accepted by the JSON path (jansson caps it) */
    assert_int_equal(yamljson_load(b.data, b.len, NULL, &docs, &err), MM_OK);
    json_decref(docs);
    strbuf_cleanup(&b);
    /* billion laughs */
    const char *laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                         "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                         "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                         "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                         "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    assert_int_equal(yamljson_load(laughs, strlen(laughs), NULL, &docs, &err), MM_ERR_TOO_BIG);
    assert_null(docs);
    /* document count cap */
    lim = yamljson_default_limits;
    lim.max_docs = 2;
    const char *three = "a: 1\n---\nb: 2\n---\nc: 3\n";
    assert_int_equal(yamljson_load(three, strlen(three), &lim, &docs, &err), MM_ERR_TOO_BIG);
}

static void test_big_document(void **state)
{
    (void)state;
    /* 10 MB of annotations loads within the default cap */
    struct strbuf b;
    strbuf_init(&b, 32u << 20);
    assert_true(strbuf_puts(&b, "metadata:\n  annotations:\n"));
    for (int i = 0; b.len < (10u << 20); i++)
        assert_true(strbuf_printf(&b, "    k%d: \"%0200d\"\n", i, i));
    json_t *docs = NULL;
    struct mm_error err;
    assert_int_equal(yamljson_load(b.data, b.len, NULL, &docs, &err), MM_OK);
    assert_int_equal(json_array_size(docs), 1);
    json_decref(docs);
    strbuf_cleanup(&b);
}

static void test_dump_roundtrip(void **state)
{
    (void)state;
    const char *in = "{\"a\":\"yes\",\"b\":\"5670\",\"c\":5670,\"d\":[true,null,1.5],"
                     "\"e\":{\"x/y\":\"\"},\"f\":\"multi\\nline\",\"g\":[],\"h\":{}}";
    json_t *v = json_loads(in, 0, NULL);
    char *y = yamljson_dump(v);
    assert_non_null(y);
    json_t *docs = NULL;
    struct mm_error err;
    assert_int_equal(yamljson_load(y, strlen(y), NULL, &docs, &err), MM_OK);
    if (!json_equal(json_array_get(docs, 0), v))
        fail_msg("round trip changed the value:\n%s", y);
    free(y);
    json_decref(docs);
    json_decref(v);
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_table),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_big_document),
        cmocka_unit_test(test_dump_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
