/*
 * RE2 compatibility check for user regular expressions (Kuma compiles them
 * with Go's regexp, i.e. RE2 syntax). Uses PCRE2 to compile and rejects the
 * PCRE features RE2 lacks (backreferences, lookaround, atomic groups,
 * possessive quantifiers, recursion, conditionals).
 */
#ifndef MM_CORE_REGEX_H
#define MM_CORE_REGEX_H

#include <stdbool.h>
#include <stddef.h>

/* True when pattern compiles as RE2 would. On false, why (may be NULL) gets a reason. */
bool regex_re2_valid(const char *pattern, char *why, size_t whylen);

#endif
