/*
 * RE2 compatibility of user regexes: what Go's regexp.Compile accepts, and
 * its exact error text for what it rejects (the legacy Mesh validator quotes
 * it). Expected messages are Go 1.25 regexp/syntax output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/regex.h"
#include "util/xalloc.h"

struct re_case {
    const char *pattern;
    const char *error; /* NULL: valid; else the whole Go error string */
};

#define E(code, expr) "error parsing regexp: " code ": `" expr "`"

static const struct re_case cases[] = {
    /* Valid RE2, including what PCRE2 alone would reject. */
    {"", NULL},
    {"http2_act.*", NULL},
    {"envoy_cluster_.*", NULL},
    {"^envoy_(http|tcp)_.*$", NULL},
    {"my_match.*", NULL},
    {"^*", NULL},
    {"$?", NULL},
    {"\\b+", NULL},
    {"a(?i)*", NULL},
    {"[\\d-z]", NULL},
    {"[[:alpha:]-z]", NULL},
    {"[[.a.]]", NULL},
    {"(?P<1a>x)", NULL},
    {"(?P<name>x)(?P<name>y)", NULL},
    {"(?<name>x)", NULL},
    {"\\p{Kawi}", NULL},
    {"\\x{D800}", NULL},
    {"[(?=]", NULL},
    {"[(?!x)]", NULL},
    {"[\\\\1]", NULL},
    {"[a*+]", NULL},
    {"\\(?=x\\)", NULL},
    {"a{1000}", NULL},
    {"(a{10}){100}", NULL},
    {"a{0}{0}b", E("invalid nested repetition operator", "{0}{0}")},
    {"x{,5}", NULL},
    {"a{01}", NULL},
    {"a{1,01}", NULL},
    {"a{", NULL},
    {"{", NULL},
    {"\\Qa.b", NULL},
    {"\\Qa*\\E+", NULL},
    {"\\Q", NULL},
    {"[]a]", NULL},
    {"[^]a]", NULL},
    {"[a-]", NULL},
    {"[-a]", NULL},
    {"[a-b-c]", NULL},
    {"[[:word:][:^alpha:]]", NULL},
    {"\\pL\\PN\\p{Greek}\\p{^Greek}\\P{^L}\\p{greek}\\p{Letter}", NULL},
    {"\\x41\\x{10FFFF}\\101\\0\\12\\a\\f\\n\\r\\t\\v\\.\\-\\_\\ ", NULL},
    {"\\A\\z\\b\\B\\d\\D\\s\\S\\w\\W.", NULL},
    {"(?i)abc(?-i:def)(?s).(?U)a*(?m)^$", NULL},
    {"(?i-s:a)", NULL},
    {"(?)", NULL},
    {"()|(|)", NULL},
    {"a*?b+?c??d{2}?", NULL},
    {"\xc3\xa9t\xc3\xa9", NULL}, /* UTF-8 literals */
    /* Backreferences. */
    {"\\1", E("invalid escape sequence", "\\1")},
    {"(a)\\1", E("invalid escape sequence", "\\1")},
    {"\\9", E("invalid escape sequence", "\\9")},
    {"\\18", E("invalid escape sequence", "\\1")},
    {"\\k<n>", E("invalid escape sequence", "\\k")},
    {"\\g1", E("invalid escape sequence", "\\g")},
    {"(?P=name)", E("invalid or unsupported Perl syntax", "(?P")},
    /* Lookaround, atomic groups, recursion, conditionals, callouts, comments. */
    {"(?=x)", E("invalid or unsupported Perl syntax", "(?=")},
    {"(?!x)", E("invalid or unsupported Perl syntax", "(?!")},
    {"(?<=a)b", E("invalid named capture", "(?<=a)b")},
    {"(?<!a)b", E("invalid named capture", "(?<!a)b")},
    {"(?<=a)>", E("invalid named capture", "(?<=a)>")},
    {"(?>x)", E("invalid or unsupported Perl syntax", "(?>")},
    {"(?R)", E("invalid or unsupported Perl syntax", "(?R")},
    {"(?1)", E("invalid or unsupported Perl syntax", "(?1")},
    {"(?(1)a|b)", E("invalid or unsupported Perl syntax", "(?(")},
    {"(?C1)", E("invalid or unsupported Perl syntax", "(?C")},
    {"(?#c)", E("invalid or unsupported Perl syntax", "(?#")},
    {"(?'n'x)", E("invalid or unsupported Perl syntax", "(?'")},
    {"(?x)a", E("invalid or unsupported Perl syntax", "(?x")},
    {"(?i", E("invalid or unsupported Perl syntax", "(?i")},
    {"(?-)", E("invalid or unsupported Perl syntax", "(?-)")},
    {"(?i-)", E("invalid or unsupported Perl syntax", "(?i-)")},
    {"(?--i)", E("invalid or unsupported Perl syntax", "(?--")},
    {"(?P<>x)", E("invalid named capture", "(?P<>")},
    {"(?P<a-b>x)", E("invalid named capture", "(?P<a-b>")},
    {"(?P<name", E("invalid named capture", "(?P<name")},
    {"(*FAIL)", E("missing argument to repetition operator", "*")},
    {"\\C", E("invalid escape sequence", "\\C")},
    /* Possessive and nested quantifiers. */
    {"a*+", E("invalid nested repetition operator", "*+")},
    {"a++", E("invalid nested repetition operator", "++")},
    {"a?+", E("invalid nested repetition operator", "?+")},
    {"a{2}+", E("invalid nested repetition operator", "{2}+")},
    {"a**", E("invalid nested repetition operator", "**")},
    {"a*?+", E("invalid nested repetition operator", "*?+")},
    {"a{2}{3}", E("invalid nested repetition operator", "{2}{3}")},
    /* Repeat counts. */
    {"a{1001}", E("invalid repeat count", "{1001}")},
    {"a{2,1}", E("invalid repeat count", "{2,1}")},
    {"a{100000000}", E("invalid repeat count", "{100000000}")},
    {"(a{100}){100}", E("invalid repeat count", "{100}")},
    {"((a{10}){10}){11}", E("invalid repeat count", "{11}")},
    {"a*{1001}", E("invalid repeat count", "{1001}")},
    /* Missing operands, parentheses, brackets. */
    {"*", E("missing argument to repetition operator", "*")},
    {"*?", E("missing argument to repetition operator", "*?")},
    {"{1}", E("missing argument to repetition operator", "{1}")},
    {"a|*", E("missing argument to repetition operator", "*")},
    {"((?i)*)", E("missing argument to repetition operator", "*")},
    {"(abc", E("missing closing )", "(abc")},
    {"abc)", E("unexpected )", "abc)")},
    {"())(!(", E("unexpected )", "())(!(")},
    {"[abc", E("missing closing ]", "[abc")},
    {"[]", E("missing closing ]", "[]")},
    {"x[a-", E("missing closing ]", "[a-")},
    /* Escapes. */
    {"\\", E("trailing backslash at end of expression", "")},
    {"x\\", E("trailing backslash at end of expression", "")},
    {"\\Z", E("invalid escape sequence", "\\Z")},
    {"\\e", E("invalid escape sequence", "\\e")},
    {"\\cA", E("invalid escape sequence", "\\c")},
    {"\\h", E("invalid escape sequence", "\\h")},
    {"\\R", E("invalid escape sequence", "\\R")},
    {"\\X", E("invalid escape sequence", "\\X")},
    {"\\u0041", E("invalid escape sequence", "\\u")},
    {"\\E", E("invalid escape sequence", "\\E")},
    {"\\8", E("invalid escape sequence", "\\8")},
    {"\\x4", E("invalid escape sequence", "\\x4")},
    {"\\x{}", E("invalid escape sequence", "\\x{}")},
    {"\\x{zz}", E("invalid escape sequence", "\\x{z")},
    {"\\x{110000}", E("invalid escape sequence", "\\x{110000")},
    {"\\x{41", E("invalid escape sequence", "\\x{41")},
    {"\\\xc3\xa9", E("invalid escape sequence", "\\\xc3\xa9")},
    /* Character classes. */
    {"[z-a]", E("invalid character class range", "z-a")},
    {"[\\b]", E("invalid escape sequence", "\\b")},
    {"[a-\\d]", E("invalid escape sequence", "\\d")},
    {"[\\Q]\\E]", E("invalid escape sequence", "\\Q")},
    {"[[:foo:]]", E("invalid character class range", "[:foo:]")},
    {"\\p{Foo}", E("invalid character class range", "\\p{Foo}")},
    {"\\p{L&}", E("invalid character class range", "\\p{L&}")},
    {"\\pX", E("invalid character class range", "\\pX")},
    {"\\p", E("invalid character class range", "\\p")},
    {"\\p{Greek", E("invalid character class range", "\\p{Greek")},
    {"[\\p{Foo}]", E("invalid character class range", "\\p{Foo}")},
    /* UTF-8. */
    {"a\xff", E("invalid UTF-8", "\xef\xbf\xbd")},
    {"\xc3(", E("invalid UTF-8", "\xef\xbf\xbd(")},
    {"[\xed\xa0\x80]", E("invalid UTF-8", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd]")},
};

static void test_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char why[512];
        bool ok = regex_re2_valid(cases[i].pattern, why, sizeof why);
        const char *want = cases[i].error;
        if (ok != (want == NULL) || (want && strcmp(why, want) != 0)) {
            print_error("case %zu /%s/: got %s \"%s\", want %s \"%s\"\n", i, cases[i].pattern,
                        ok ? "valid" : "invalid", ok ? "" : why, want ? "invalid" : "valid",
                        want ? want : "");
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static char *repeat_str(const char *unit, size_t n, const char *prefix, const char *suffix)
{
    size_t ul = strlen(unit), pl = strlen(prefix), sl = strlen(suffix);
    char *s = xmalloc(pl + ul * n + sl + 1);
    memcpy(s, prefix, pl);
    for (size_t i = 0; i < n; i++)
        memcpy(s + pl + i * ul, unit, ul);
    memcpy(s + pl + ul * n, suffix, sl + 1);
    return s;
}

/* Go's limits: tree height 1000, program size 128 MiB / 40 bytes. */
static void test_limits(void **state)
{
    (void)state;
    char why[256];
    char *open = repeat_str("(", 999, "", "");
    char *close = repeat_str(")", 999, "", "");
    char *deep = xasprintf("%s%s", open, close);
    assert_true(regex_re2_valid(deep, why, sizeof why));
    free(deep);
    free(open);
    free(close);

    open = repeat_str("(", 1001, "", "");
    close = repeat_str(")", 1001, "", "");
    deep = xasprintf("%s%s", open, close);
    assert_false(regex_re2_valid(deep, why, sizeof why));
    assert_non_null(strstr(why, "error parsing regexp: expression nests too deeply: `((("));
    free(deep);
    free(open);
    free(close);

    /* Non-capturing groups add no tree height in Go: 5000 of them are fine. */
    open = repeat_str("(?:", 5000, "", "");
    close = repeat_str(")", 5000, "", "");
    deep = xasprintf("%sa%s", open, close);
    assert_true(regex_re2_valid(deep, why, sizeof why));
    free(deep);
    free(open);
    free(close);

    char *big = repeat_str("a", 4000, "(", "){1000}");
    assert_false(regex_re2_valid(big, why, sizeof why));
    assert_non_null(strstr(why, "error parsing regexp: expression too large: `(aaa"));
    free(big);

    /* A long but simple pattern stays valid, and is checked quickly. */
    big = repeat_str("[a-z]{3}|", 100000, "", "x");
    assert_true(regex_re2_valid(big, why, sizeof why));
    free(big);
}

/* why may be NULL or short; a short buffer is cut on a UTF-8 boundary. */
static void test_why_buffer(void **state)
{
    (void)state;
    assert_false(regex_re2_valid("(", NULL, 0));
    assert_true(regex_re2_valid("a", NULL, 0));
    assert_true(regex_re2_valid(NULL, NULL, 0)); /* NULL is the empty pattern */
    char tiny[8];
    assert_false(regex_re2_valid("(", tiny, sizeof tiny));
    assert_string_equal(tiny, "error p");
    char cut[40];
    /* "error parsing regexp: invalid UTF-8: `" is 38 bytes; U+FFFD is 3 more. */
    assert_false(regex_re2_valid("\xff", cut, sizeof cut));
    assert_string_equal(cut, "error parsing regexp: invalid UTF-8: `");
}

int main(void)
{
    xalloc_install_json();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_why_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
