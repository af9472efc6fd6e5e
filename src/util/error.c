#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void mm_error_clear(struct mm_error *err)
{
    if (!err)
        return;
    err->code = MM_OK;
    err->field[0] = '\0';
    err->message[0] = '\0';
}

enum mm_status mm_error_set(struct mm_error *err, enum mm_status code, const char *field,
                            const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

const char *mm_error_str(const struct mm_error *err, char *buf, size_t buflen)
{
    if (err->field[0])
        snprintf(buf, buflen, "%s: %s", err->field, err->message);
    else
        snprintf(buf, buflen, "%s", err->message);
    return buf;
}

const char *mm_status_name(enum mm_status s)
{
    switch (s) {
    case MM_OK: return "ok";
    case MM_ERR_PARSE: return "parse error";
    case MM_ERR_TYPE: return "type error";
    case MM_ERR_INVALID: return "invalid";
    case MM_ERR_TOO_BIG: return "too big";
    case MM_ERR_NOT_FOUND: return "not found";
    case MM_ERR_IO: return "I/O error";
    case MM_ERR_TLS: return "TLS error";
    case MM_ERR_INTERNAL: return "internal error";
    case MM_ERR_CONFLICT: return "conflict";
    case MM_ERR_EXPIRED: return "expired";
    case MM_ERR_RETRY: return "try again later";
    case MM_ERR_DENIED: return "denied";
    case MM_ERR_CANCELLED: return "cancelled";
    }
    return "unknown";
}
