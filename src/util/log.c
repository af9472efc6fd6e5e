#include "util/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/strbuf.h"
#include "util/xalloc.h"

static enum log_level g_level = LOG_INFO;
static enum log_format g_format = LOG_FORMAT_JSON;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_setup(enum log_level level, enum log_format format)
{
    g_level = level;
    g_format = format;
}

bool log_enabled(enum log_level level)
{
    return level >= g_level;
}

bool log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, level_names[i])) {
            *out = (enum log_level)i;
            return true;
        }
    return false;
}

bool log_format_parse(const char *s, enum log_format *out)
{
    if (!strcmp(s, "json"))
        *out = LOG_FORMAT_JSON;
    else if (!strcmp(s, "logfmt"))
        *out = LOG_FORMAT_LOGFMT;
    else
        return false;
    return true;
}

static void logfmt_value(struct strbuf *b, const char *v)
{
    bool quote = !*v || strpbrk(v, " =\"\t\n") != NULL;
    bool ok = true;
    if (!quote) {
        ok = strbuf_puts(b, v);
    } else {
        ok = strbuf_puts(b, "\"");
        for (const char *p = v; *p && ok; p++) {
            if (*p == '"' || *p == '\\')
                ok = strbuf_printf(b, "\\%c", *p);
            else if (*p == '\n')
                ok = strbuf_puts(b, "\\n");
            else
                ok = strbuf_append(b, p, 1);
        }
        ok = ok && strbuf_puts(b, "\"");
    }
    (void)ok;
}

static void emit(enum log_level level, const char *msg, va_list kv)
{
    char ts[40];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);

    char *line = NULL;
    if (g_format == LOG_FORMAT_JSON) {
        json_t *o = json_object();
        json_object_set_new(o, "ts", json_string(ts));
        json_object_set_new(o, "level", json_string(level_names[level]));
        json_object_set_new(o, "msg", json_string(msg));
        const char *k;
        while ((k = va_arg(kv, const char *)) != NULL) {
            const char *v = va_arg(kv, const char *);
            json_object_set_new(o, k, v ? json_string(v) : json_null());
        }
        line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
    } else {
        struct strbuf b;
        strbuf_init(&b, 1 << 20);
        bool ok = strbuf_printf(&b, "ts=%s level=%s msg=", ts, level_names[level]);
        (void)ok;
        logfmt_value(&b, msg);
        const char *k;
        while ((k = va_arg(kv, const char *)) != NULL) {
            const char *v = va_arg(kv, const char *);
            ok = strbuf_printf(&b, " %s=", k);
            logfmt_value(&b, v ? v : "");
        }
        line = strbuf_steal(&b);
    }
    if (!line)
        return; /* invalid UTF-8 in a field: drop rather than crash */
    pthread_mutex_lock(&g_lock);
    fputs(line, stderr);
    fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&g_lock);
    free(line);
}

static void emit_kv(enum log_level level, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    emit(level, msg, ap);
    va_end(ap);
}

void log_kv(enum log_level level, const char *msg, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, msg);
    emit(level, msg, ap);
    va_end(ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    emit_kv(level, m, NULL);
    free(m);
}
