#include "util/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"

enum mm_status fileio_read(const char *path, size_t max, char **data, size_t *len,
                           struct mm_error *err)
{
    *data = NULL;
    *len = 0;
    bool is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return mm_error_set(err, MM_ERR_IO, path, "cannot open: %s", strerror(errno));
    struct strbuf b;
    strbuf_init(&b, max);
    char chunk[65536];
    enum mm_status st = MM_OK;
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (!strbuf_append(&b, chunk, n)) {
            st = mm_error_set(err, MM_ERR_TOO_BIG, path, "file is larger than the limit of %zu bytes",
                              max);
            break;
        }
    }
    if (st == MM_OK && ferror(f))
        st = mm_error_set(err, MM_ERR_IO, path, "read error: %s", strerror(errno));
    if (!is_stdin)
        fclose(f);
    if (st) {
        strbuf_cleanup(&b);
        return st;
    }
    *len = b.len;
    *data = strbuf_steal(&b);
    return MM_OK;
}
