/*
 * Whether Kuma would accept a user regular expression. Kuma compiles them
 * with Go's regexp.Compile (RE2 syntax with Go's Perl extensions), so
 * regex.c ports the error paths of Go's regexp/syntax parser: the same
 * scanning order, error codes and size/nesting limits, and Go's error text
 * with the offending expression ("error parsing regexp: missing closing ):
 * `(abc`"). It builds no syntax tree. As a structural cross-check it also
 * compiles an equivalent PCRE2-neutral rewrite of the pattern with PCRE2;
 * the user's pattern itself is never handed to PCRE2 (PCRE2 and RE2 disagree
 * both ways, so a PCRE2 compile plus a list of banned features is wrong).
 * The few documented approximations are in regex.c.
 */
#ifndef MM_CORE_REGEX_H
#define MM_CORE_REGEX_H

#include <stdbool.h>
#include <stddef.h>

/* True when pattern compiles as RE2 would. On false, why (may be NULL) gets a reason. */
bool regex_re2_valid(const char *pattern, char *why, size_t whylen);

#endif
