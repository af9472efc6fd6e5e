/*
 * Errors from the Kubernetes API: `Status` bodies (kubernetes-api.md 3.5)
 * decoded into the project's enum mm_status plus the details a caller needs
 * to act on them (the HTTP code, the reason that tells AlreadyExists from
 * Conflict, the server's message verbatim, details.causes, Retry-After).
 *
 * Mapping (by reason when the reason is one apimachinery knows, else by code,
 * as apierrors.IsNotFound & co. do):
 *   404 NotFound                          -> MM_ERR_NOT_FOUND
 *   409 AlreadyExists, Conflict           -> MM_ERR_CONFLICT (reason kept)
 *   410 Expired, Gone                     -> MM_ERR_EXPIRED
 *   400 BadRequest, 405, 406, 415, 422    -> MM_ERR_INVALID
 *   413 RequestEntityTooLarge             -> MM_ERR_TOO_BIG
 *   401 Unauthorized, 403 Forbidden       -> MM_ERR_DENIED
 *   429, 500, 502, 503, 504 (any 5xx)     -> MM_ERR_RETRY
 * Connection failures are MM_ERR_RETRY too (set by the client), TLS failures
 * MM_ERR_TLS, a cancelled call MM_ERR_CANCELLED.
 */
#ifndef MM_K8S_STATUS_H
#define MM_K8S_STATUS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

/* One entry of Status.details.causes (the JSON key of `type` is "reason"). */
struct k8s_cause {
    char *reason;  /* e.g. "FieldValueInvalid"; never NULL ("" when absent) */
    char *field;   /* e.g. "spec.replicas"; never NULL */
    char *message; /* never NULL */
};

/*
 * The error record every API call fills. base.code is the returned status,
 * base.message a one-line summary ("GET /api/v1/...: <server message> (404
 * NotFound)"); the other fields keep the server's answer. Initialise with
 * K8S_ERROR_INIT or k8s_error_init() before the first use; every call resets
 * it on entry (freeing what a previous call left), so one record can be
 * reused across calls and is released once with k8s_error_cleanup().
 * Never contains a bearer token or a private key.
 */
struct k8s_error {
    struct mm_error base;
    int http_code;            /* HTTP status, or Status.code of a watch ERROR event; 0: no answer */
    char reason[64];          /* Status.reason, or the canonical reason for http_code; may be "" */
    char *message;            /* the server's message verbatim (or its text body); NULL if none */
    struct k8s_cause *causes; /* details.causes */
    size_t ncauses;
    long retry_after_s; /* Retry-After header, else details.retryAfterSeconds; -1 if none */
    bool rv_too_large;  /* a cause "ResourceVersionTooLarge" (504 for a list at a future RV) */
};

#define K8S_ERROR_INIT                                                                             \
    {                                                                                              \
        .base = {.code = MM_OK}, .retry_after_s = -1                                               \
    }

void k8s_error_init(struct k8s_error *e);
/* Free what e holds and reset it to K8S_ERROR_INIT. e may be NULL. */
void k8s_error_cleanup(struct k8s_error *e);
/* Set a local error (no server answer): code, summary message. e may be NULL. Returns code. */
enum mm_status k8s_error_set(struct k8s_error *e, enum mm_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* True when e carries the Status reason (e.g. "AlreadyExists"). */
bool k8s_error_has_reason(const struct k8s_error *e, const char *reason);

/* The mm_status for an HTTP code / a Status reason (NULL or unknown reason: by code). */
enum mm_status k8s_status_map(int code, const char *reason);
/* The canonical reason apimachinery uses for an HTTP code ("" when none), e.g. 429 ->
 * "TooManyRequests". */
const char *k8s_reason_for_code(int code);

/*
 * Decode a non-2xx answer. body/len is the response body (not necessarily
 * JSON, may be NULL), content_type and retry_after the header values (may be
 * NULL), what names the request for the summary ("GET /api/v1/pods", may be
 * NULL). A Status body gives reason, message, causes and retryAfterSeconds;
 * anything else (the flow-control 429 is text/plain "Too many requests, please
 * try again later.", a proxy's HTML page, garbage) still gives a sensible
 * error: the canonical reason for the code and the body's first line when it
 * is short printable text. Returns the mapped status (also in e->base.code).
 */
enum mm_status k8s_status_decode(int http_code, const char *content_type, const char *body,
                                 size_t len, const char *retry_after, const char *what,
                                 struct k8s_error *e) MM_WUR;

/*
 * Decode a Status object (the object of a watch ERROR event): http code from
 * Status.code (or the reason when the code is missing). what as above.
 * A value that is not a Status object is MM_ERR_PARSE.
 */
enum mm_status k8s_status_from_object(const json_t *status, const char *what,
                                      struct k8s_error *e) MM_WUR;

/* Parse a Retry-After header value: integer seconds (as client-go); -1 when absent or not a number.
 */
long k8s_parse_retry_after(const char *value);

#endif
