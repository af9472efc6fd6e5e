/*
 * Project-wide result codes (0 is success, like curl's CURLcode) and the
 * small error record parsers fill in (like jansson's json_error_t): a message
 * plus the field path and the offending value, so every error a user sees can
 * name both.
 */
#ifndef MM_UTIL_ERROR_H
#define MM_UTIL_ERROR_H

#include <stddef.h>

enum mm_status {
    MM_OK = 0,
    MM_ERR_PARSE,     /* malformed input (JSON/YAML syntax) */
    MM_ERR_TYPE,      /* well-formed input of the wrong shape */
    MM_ERR_INVALID,   /* well-formed, right shape, fails validation */
    MM_ERR_TOO_BIG,   /* over a size or depth cap */
    MM_ERR_NOT_FOUND, /* a referenced thing does not exist */
    MM_ERR_IO,        /* file or network error */
    MM_ERR_TLS,       /* certificate/key problem */
    MM_ERR_INTERNAL,  /* a bug: should never happen */
    MM_ERR_CONFLICT,  /* the object changed or already exists (HTTP 409) */
    MM_ERR_EXPIRED,   /* a resourceVersion or continue token is too old (HTTP 410) */
    MM_ERR_RETRY,     /* transient: try again later (429, 5xx, connection failure) */
    MM_ERR_DENIED,    /* not authenticated or not allowed (401, 403) */
    MM_ERR_CANCELLED, /* stopped on request (shutdown) */
};

#define MM_WUR __attribute__((warn_unused_result))

struct mm_error {
    enum mm_status code;
    char field[256];   /* e.g. "spec.default.backends[0].port", may be empty */
    char message[768]; /* full sentence, includes the value where relevant */
};

/* Reset to MM_OK with empty strings. err may be NULL. */
void mm_error_clear(struct mm_error *err);
/* Fill err (may be NULL) and return code, for "return mm_error_set(...)". */
enum mm_status mm_error_set(struct mm_error *err, enum mm_status code, const char *field,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "field: message", or just the message when field is empty. Borrowed from err. */
const char *mm_error_str(const struct mm_error *err, char *buf, size_t buflen);
const char *mm_status_name(enum mm_status s);

#endif
