/* Reading whole files (or stdin for "-") with a size cap. */
#ifndef MM_UTIL_FILEIO_H
#define MM_UTIL_FILEIO_H

#include <stddef.h>

#include "util/error.h"

/*
 * Read path ("-" = stdin) into a new NUL-terminated buffer (*data, caller
 * frees) of *len bytes. More than max bytes is MM_ERR_TOO_BIG; errors name
 * the path.
 */
enum mm_status fileio_read(const char *path, size_t max, char **data, size_t *len,
                           struct mm_error *err) MM_WUR;

#endif
