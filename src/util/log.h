/*
 * Structured logging for the edges (servers, CLI, operator); core never logs.
 * One level-checked, printf-checked macro (redis serverLog). Output is one
 * JSON object per line on stderr: {"ts":"...","level":"info","msg":"...",...}
 * or logfmt with --log-format=logfmt.
 */
#ifndef MM_UTIL_LOG_H
#define MM_UTIL_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_JSON = 0, LOG_FORMAT_LOGFMT };

/* Process-wide settings (the one deliberate global outside core). */
void log_setup(enum log_level level, enum log_format format);
bool log_enabled(enum log_level level);
/* Parse "debug|info|warn|error"; false on bad input. */
bool log_level_parse(const char *s, enum log_level *out);
bool log_format_parse(const char *s, enum log_format *out);

/*
 * Emit one line. kv is a NULL-terminated list of key, value string pairs
 * added as fields after msg, e.g.
 *   log_kv(LOG_WARN, "request rejected", "path", "/mutate", "code", "415", NULL);
 */
void log_kv(enum log_level level, const char *msg, ...) __attribute__((sentinel));
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG(level, ...)                                                                            \
    do {                                                                                           \
        if (log_enabled(level))                                                                    \
            log_msg(level, __VA_ARGS__);                                                           \
    } while (0)

#endif
