/*
 * Allocation helpers.
 *
 * Out-of-memory policy (project-wide, decided once): like redis, an
 * allocation failure aborts the process with a message. The operator runs
 * under Kubernetes, which restarts it; partial-failure paths for OOM would be
 * untested code. jansson is routed through the same allocator by
 * xalloc_install_json(), so a NULL from a json_*() constructor never means
 * "out of memory" in this code base: it means bad input or a type error.
 */
#ifndef MM_UTIL_XALLOC_H
#define MM_UTIL_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

/* Never return NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new heap string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Route jansson's allocations through xmalloc/free. Idempotent. */
void xalloc_install_json(void);

#endif
