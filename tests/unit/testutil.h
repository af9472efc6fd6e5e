/*
 * Helpers shared by the table-driven unit tests: loading YAML fixtures and
 * printing where two JSON values differ. Include after <cmocka.h>.
 */
#ifndef MM_TESTS_TESTUTIL_H
#define MM_TESTS_TESTUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/view.h"
#include "util/fileio.h"
#include "util/xalloc.h"
#include "util/yamljson.h"

/* tests/data: $MM_TESTDATA (set by ctest), else found next to this header. Caller frees. */
static inline char *tu_testdata(void)
{
    const char *d = getenv("MM_TESTDATA");
    if (d && d[0])
        return xstrdup(d);
    const char *f = __FILE__;
    const char *cut = strstr(f, "unit/testutil.h");
    return cut ? xasprintf("%.*sdata", (int)(cut - f), f) : xstrdup("tests/data");
}

static inline char *tu_dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* The first document of YAML text written in a test (JSON null when there is none). */
static inline json_t *tu_yaml(const char *text)
{
    json_t *docs = NULL;
    struct mm_error err;
    if (yamljson_load(text, strlen(text), NULL, &docs, &err) != MM_OK)
        fail_msg("bad YAML in test: %s\n%s", err.message, text);
    json_t *doc = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return doc ? doc : json_null();
}

/* The documents of a YAML file; an absent optional file is no documents. */
static inline json_t *tu_load_yaml(const char *path, bool required)
{
    char *data = NULL;
    size_t len = 0;
    struct mm_error err;
    json_t *docs = NULL;
    mm_error_clear(&err);
    if (fileio_read(path, 1 << 20, &data, &len, &err) != MM_OK) {
        if (required)
            fail_msg("%s: %s", path, err.message);
        return json_array();
    }
    if (yamljson_load(data, len, NULL, &docs, &err) != MM_OK)
        fail_msg("%s: %s", path, err.message);
    free(data);
    return docs;
}

/*
 * A view of the documents docs (an array; borrowed) built with the system
 * namespace sys, through the one loader. A document the builder refuses or a
 * policy Kuma would reject fails the test (what names where).
 */
static inline struct policy_view *tu_view(const json_t *docs, const char *sys, const char *what)
{
    struct view_options vo = {.system_namespace = sys, .zone = NULL};
    struct view_builder *b = view_builder_create(&vo);
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        struct mm_error err;
        mm_error_clear(&err);
        if (view_builder_add(b, doc, NULL, &err) != MM_OK)
            fail_msg("%s: document %zu: %s: %s", what, i, err.field, err.message);
    }
    struct policy_view *v = view_builder_finish(b, 1);
    const struct view_rejection *rej = NULL;
    if (view_rejections(v, &rej))
        fail_msg("%s: %s %s is invalid: %s", what, rej[0].kind, rej[0].id, rej[0].errors);
    return v;
}

/* One line per JSON Pointer where want and got differ. */
static inline void tu_print_diff(const char *ptr, const json_t *want, const json_t *got)
{
    if (json_equal(want, got))
        return;
    if (json_is_object(want) && json_is_object(got)) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)want, key, v)
        {
            char *child = xasprintf("%s/%s", ptr, key);
            json_t *g = json_object_get(got, key);
            if (g) {
                tu_print_diff(child, v, g);
            } else {
                char *w = tu_dump(v);
                print_message("    - %s: %s (missing)\n", child, w);
                free(w);
            }
            free(child);
        }
        json_object_foreach((json_t *)got, key, v)
        {
            if (!json_object_get(want, key)) {
                char *g = tu_dump(v);
                print_message("    + %s/%s: %s (unexpected)\n", ptr, key, g);
                free(g);
            }
        }
        return;
    }
    if (json_is_array(want) && json_is_array(got) &&
        json_array_size(want) == json_array_size(got)) {
        for (size_t i = 0; i < json_array_size(want); i++) {
            char *child = xasprintf("%s/%zu", ptr, i);
            tu_print_diff(child, json_array_get(want, i), json_array_get(got, i));
            free(child);
        }
        return;
    }
    char *w = tu_dump(want), *g = tu_dump(got);
    print_message("    ~ %s: want %s, got %s\n", ptr[0] ? ptr : "(root)", w, g);
    free(w);
    free(g);
}

#endif
