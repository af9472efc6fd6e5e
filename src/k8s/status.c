#include "k8s/status.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* Longest text body kept as the message of a non-Status error. */
#define TEXT_MESSAGE_MAX 1024
/* Larger Retry-After values are clamped: callers back off at most this long per answer. */
#define RETRY_AFTER_MAX_S 3600

void k8s_error_init(struct k8s_error *e)
{
    if (!e)
        return;
    memset(e, 0, sizeof *e);
    e->base.code = MM_OK;
    e->retry_after_s = -1;
}

void k8s_error_cleanup(struct k8s_error *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->ncauses; i++) {
        free(e->causes[i].reason);
        free(e->causes[i].field);
        free(e->causes[i].message);
    }
    free(e->causes);
    free(e->message);
    k8s_error_init(e);
}

enum mm_status k8s_error_set(struct k8s_error *e, enum mm_status code, const char *fmt, ...)
{
    if (!e)
        return code;
    e->base.code = code;
    e->base.field[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->base.message, sizeof e->base.message, fmt, ap);
    va_end(ap);
    return code;
}

bool k8s_error_has_reason(const struct k8s_error *e, const char *reason)
{
    return e && reason && !strcmp(e->reason, reason);
}

struct reason_entry {
    const char *reason;
    int code;
    enum mm_status status;
};

/* apimachinery pkg/apis/meta/v1/types.go StatusReason*, with their codes (apierrors). */
/* clang-format off */
static const struct reason_entry reasons[] = {
    {"Unauthorized", 401, MM_ERR_DENIED},
    {"Forbidden", 403, MM_ERR_DENIED},
    {"NotFound", 404, MM_ERR_NOT_FOUND},
    {"AlreadyExists", 409, MM_ERR_CONFLICT},
    {"Conflict", 409, MM_ERR_CONFLICT},
    {"Gone", 410, MM_ERR_EXPIRED},
    {"Expired", 410, MM_ERR_EXPIRED},
    {"Invalid", 422, MM_ERR_INVALID},
    {"BadRequest", 400, MM_ERR_INVALID},
    {"MethodNotAllowed", 405, MM_ERR_INVALID},
    {"NotAcceptable", 406, MM_ERR_INVALID},
    {"RequestEntityTooLarge", 413, MM_ERR_TOO_BIG},
    {"UnsupportedMediaType", 415, MM_ERR_INVALID},
    {"TooManyRequests", 429, MM_ERR_RETRY},
    {"InternalError", 500, MM_ERR_RETRY},
    {"ServerTimeout", 500, MM_ERR_RETRY},
    {"StoreReadError", 500, MM_ERR_RETRY},
    {"ServiceUnavailable", 503, MM_ERR_RETRY},
    {"Timeout", 504, MM_ERR_RETRY},
};
/* clang-format on */

static const struct reason_entry *find_reason(const char *reason)
{
    if (!reason || !reason[0])
        return NULL;
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (!strcmp(reasons[i].reason, reason))
            return &reasons[i];
    return NULL;
}

static enum mm_status map_code(int code)
{
    if (code >= 200 && code < 300)
        return MM_OK;
    switch (code) {
    case 401:
    case 403:
        return MM_ERR_DENIED;
    case 404:
        return MM_ERR_NOT_FOUND;
    case 409:
        return MM_ERR_CONFLICT;
    case 410:
        return MM_ERR_EXPIRED;
    case 413:
        return MM_ERR_TOO_BIG;
    case 429:
        return MM_ERR_RETRY;
    default:
        break;
    }
    if (code >= 400 && code < 500)
        return MM_ERR_INVALID;
    if (code >= 500 && code < 600)
        return MM_ERR_RETRY;
    return MM_ERR_INTERNAL;
}

enum mm_status k8s_status_map(int code, const char *reason)
{
    const struct reason_entry *r = find_reason(reason);
    return r ? r->status : map_code(code);
}

const char *k8s_reason_for_code(int code)
{
    /* clang-format off */
    switch (code) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 406: return "NotAcceptable";
    case 409: return "Conflict";
    case 410: return "Expired";
    case 413: return "RequestEntityTooLarge";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default: return "";
    }
    /* clang-format on */
}

/* client-go's generic texts for bodies that are not a Status (rest/request.go
 * newUnstructuredResponseError). */
static const char *generic_message(int code)
{
    /* clang-format off */
    switch (code) {
    case 400: return "the server rejected our request for an unknown reason";
    case 401: return "the server has asked for the client to provide credentials";
    case 403: return "the server does not allow access to the requested resource";
    case 404: return "the server could not find the requested resource";
    case 405: return "the server does not allow this method on the requested resource";
    case 406: return "the server was unable to respond with a content type that the client supports";
    case 409: return "the server reported a conflict";
    case 410: return "the server has asked for the client to provide credentials";
    case 413: return "the server has rejected the request because it is too large";
    case 415: return "the server was unable to handle the media type requested";
    case 422: return "the server rejected our request due to an error in our request";
    case 429: return "the server has received too many requests and has asked us to try again later";
    case 500: return "an error on the server has prevented the request from succeeding";
    case 503: return "the server is currently unable to handle the request";
    case 504:
        return "the server was unable to return a response in the time allotted, but may still be "
               "processing the request";
    default: return "an error on the server has prevented the request from succeeding";
    }
    /* clang-format on */
}

long k8s_parse_retry_after(const char *value)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (!isdigit((unsigned char)*value))
        return -1;
    errno = 0;
    char *end = NULL;
    long v = strtol(value, &end, 10);
    while (end && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (errno == ERANGE)
        return RETRY_AFTER_MAX_S;
    if (!end || *end)
        return -1; /* an HTTP-date: client-go ignores it too */
    return v > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : v;
}

static char *dup_str(const json_t *v)
{
    return xstrdup(json_is_string(v) ? json_string_value(v) : "");
}

static void summarize(struct k8s_error *e, const char *what)
{
    const char *msg = e->message && e->message[0] ? e->message : generic_message(e->http_code);
    /* A generic message ("the server rejected our request ...") with the detail in a cause:
     * show the first cause too. */
    char cause[400] = "";
    if (e->ncauses && e->causes[0].message[0] && !strstr(msg, e->causes[0].message))
        snprintf(cause, sizeof cause, " (%s%s%.300s)", e->causes[0].field,
                 e->causes[0].field[0] ? ": " : "", e->causes[0].message);
    if (what && what[0])
        snprintf(e->base.message, sizeof e->base.message, "%s: %s%s (%d%s%s)", what, msg, cause,
                 e->http_code, e->reason[0] ? " " : "", e->reason);
    else
        snprintf(e->base.message, sizeof e->base.message, "%s%s (%d%s%s)", msg, cause, e->http_code,
                 e->reason[0] ? " " : "", e->reason);
}

/* Fill e from a JSON Status object; http_code 0 means "take Status.code". */
static enum mm_status from_status(int http_code, const json_t *st, const char *what,
                                  struct k8s_error *e)
{
    const char *reason = json_string_value(json_object_get(st, "reason"));
    json_int_t scode = json_integer_value(json_object_get(st, "code"));
    int code = http_code;
    if (!code) {
        if (scode > 0 && scode < 1000)
            code = (int)scode;
        else if (find_reason(reason))
            code = find_reason(reason)->code;
        else
            code = 500;
    }
    e->http_code = code;
    snprintf(e->reason, sizeof e->reason, "%s",
             reason && reason[0] ? reason : k8s_reason_for_code(code));
    const char *msg = json_string_value(json_object_get(st, "message"));
    if (msg)
        e->message = xstrdup(msg);

    const json_t *details = json_object_get(st, "details");
    const json_t *causes = json_object_get(details, "causes");
    if (json_is_array(causes) && json_array_size(causes) > 0) {
        size_t n = json_array_size(causes);
        e->causes = xcalloc(n, sizeof *e->causes);
        for (size_t i = 0; i < n; i++) {
            const json_t *c = json_array_get(causes, i);
            struct k8s_cause *kc = &e->causes[e->ncauses++];
            kc->reason = dup_str(json_object_get(c, "reason"));
            kc->field = dup_str(json_object_get(c, "field"));
            kc->message = dup_str(json_object_get(c, "message"));
            if (!strcmp(kc->reason, "ResourceVersionTooLarge"))
                e->rv_too_large = true;
        }
    }
    /* Older servers said "Too large resource version" only in the message. */
    if (msg && code == 504 && strstr(msg, "Too large resource version"))
        e->rv_too_large = true;
    json_int_t ra = json_integer_value(json_object_get(details, "retryAfterSeconds"));
    if (e->retry_after_s < 0 && json_is_integer(json_object_get(details, "retryAfterSeconds")) &&
        ra >= 0)
        e->retry_after_s = ra > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : (long)ra;

    e->base.code = k8s_status_map(code, e->reason);
    if (e->ncauses == 1 && e->causes[0].field[0])
        snprintf(e->base.field, sizeof e->base.field, "%s", e->causes[0].field);
    summarize(e, what);
    return e->base.code;
}

static bool is_status_object(const json_t *v)
{
    if (!json_is_object(v))
        return false;
    const char *kind = json_string_value(json_object_get(v, "kind"));
    if (kind)
        return !strcmp(kind, "Status");
    /* No kind: accept an object that looks like a Status (status or reason + message). */
    return json_is_string(json_object_get(v, "status")) ||
           (json_is_string(json_object_get(v, "reason")) &&
            json_is_string(json_object_get(v, "message")));
}

/* The first line of a short, printable, valid text body; NULL otherwise. Caller frees. */
static char *text_message(const char *body, size_t len)
{
    if (!body)
        return NULL;
    while (len && isspace((unsigned char)*body)) {
        body++;
        len--;
    }
    size_t n = 0;
    while (n < len && body[n] != '\n' && body[n] != '\r')
        n++;
    while (n && isspace((unsigned char)body[n - 1]))
        n--;
    if (!n || n > TEXT_MESSAGE_MAX || body[0] == '{' || body[0] == '[')
        return NULL; /* nothing, too long, or broken JSON: the generic text says more */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)body[i];
        if (ch < 0x20 && ch != '\t')
            return NULL;
        if (ch == 0x7f || ch == '<') /* control character or markup (an HTML error page) */
            return NULL;
        if (ch >= 0x80)
            return NULL; /* keep the message plain ASCII: it goes into logs and JSON */
    }
    return xstrndup(body, n);
}

enum mm_status k8s_status_decode(int http_code, const char *content_type, const char *body,
                                 size_t len, const char *retry_after, const char *what,
                                 struct k8s_error *e)
{
    (void)content_type; /* the body decides: servers label Status bodies inconsistently */
    struct k8s_error scratch = K8S_ERROR_INIT;
    if (!e)
        e = &scratch;
    k8s_error_cleanup(e);
    e->retry_after_s = k8s_parse_retry_after(retry_after);

    json_t *doc = NULL;
    if (body && len) {
        json_error_t jerr;
        doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    }
    enum mm_status rc;
    if (doc && is_status_object(doc)) {
        rc = from_status(http_code, doc, what, e);
    } else {
        e->http_code = http_code;
        snprintf(e->reason, sizeof e->reason, "%s", k8s_reason_for_code(http_code));
        e->message = doc ? NULL : text_message(body, len);
        e->base.code = map_code(http_code);
        summarize(e, what);
        rc = e->base.code;
    }
    json_decref(doc);
    if (rc == MM_OK) /* a 2xx passed in by mistake is still not a success here */
        rc = e->base.code = MM_ERR_INTERNAL;
    k8s_error_cleanup(&scratch);
    return rc;
}

enum mm_status k8s_status_from_object(const json_t *status, const char *what, struct k8s_error *e)
{
    struct k8s_error scratch = K8S_ERROR_INIT;
    if (!e)
        e = &scratch;
    k8s_error_cleanup(e);
    enum mm_status rc;
    if (!is_status_object(status)) {
        rc = k8s_error_set(e, MM_ERR_PARSE, "%s%sERROR event without a Status object",
                           what ? what : "", what ? ": " : "");
    } else {
        rc = from_status(0, status, what, e);
        if (rc == MM_OK)
            rc = e->base.code = MM_ERR_INTERNAL;
    }
    k8s_error_cleanup(&scratch);
    return rc;
}
