/* Process metrics from /proc, named and described as client_golang's process collector. */
#include "server/procmetrics.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fileio.h"

#define MAX_PROC_FILE (64u << 10)

/* 2^64 - 1, which procfs (and so client_golang) reports for "unlimited". */
static const double UNLIMITED = 18446744073709551615.0;

bool procmetrics_parse_stat(const char *text, long ticks_per_s, long page_size, double boot_time,
                            struct procmetrics *out)
{
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
     * the fields start after the last ')'. Field 3 (state) is index 0 below. */
    const char *p = strrchr(text, ')');
    if (!p || ticks_per_s <= 0 || page_size <= 0)
        return false;
    p++;
    unsigned long long f[22];
    size_t n = 0;
    while (n < sizeof f / sizeof *f) {
        while (*p == ' ')
            p++;
        if (!*p || *p == '\n')
            break;
        if (n == 0) { /* state: a letter */
            f[n++] = 0;
            while (*p && *p != ' ')
                p++;
            continue;
        }
        char *end = NULL;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno)
            return false;
        f[n++] = v < 0 ? 0 : (unsigned long long)v;
        p = end;
    }
    if (n < 22) /* through field 24 (rss) */
        return false;
    /* Fields (1-based, proc(5)): 14 utime, 15 stime, 22 starttime, 23 vsize, 24 rss. */
    out->cpu_seconds = (double)(f[14 - 3] + f[15 - 3]) / (double)ticks_per_s;
    out->start_time = boot_time + (double)f[22 - 3] / (double)ticks_per_s;
    out->virtual_bytes = (double)f[23 - 3];
    out->resident_bytes = (double)f[24 - 3] * (double)page_size;
    out->have_stat = true;
    return true;
}

/* The soft limit of the line starting with name: a number, or "unlimited". */
static bool limit_of(const char *text, const char *name, double *out)
{
    size_t len = strlen(name);
    for (const char *line = text; line && *line;) {
        if (!strncmp(line, name, len) && line[len] == ' ') {
            const char *v = line + len;
            while (*v == ' ')
                v++;
            if (!strncmp(v, "unlimited", 9)) {
                *out = UNLIMITED;
                return true;
            }
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (end == v || errno)
                return false;
            *out = (double)n;
            return true;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return false;
}

bool procmetrics_parse_limits(const char *text, struct procmetrics *out)
{
    if (!limit_of(text, "Max open files", &out->max_fds) ||
        !limit_of(text, "Max address space", &out->max_virtual_bytes))
        return false;
    out->have_limits = true;
    return true;
}

static bool read_text(const char *path, char **out)
{
    size_t len = 0;
    struct mm_error err;
    return fileio_read(path, MAX_PROC_FILE, out, &len, &err) == MM_OK;
}

/* btime of /proc/stat (line by line: its "intr" line can be very long). */
static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    double bt = 0;
    while (getline(&line, &cap, f) > 0)
        if (!strncmp(line, "btime ", 6)) {
            bt = strtod(line + 6, NULL);
            break;
        }
    free(line);
    fclose(f);
    return bt;
}

void procmetrics_read(struct procmetrics *out)
{
    memset(out, 0, sizeof *out);
    char *text = NULL;
    if (read_text("/proc/self/stat", &text))
        (void)procmetrics_parse_stat(text, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), boot_time(),
                                     out);
    free(text);
    text = NULL;
    if (read_text("/proc/self/limits", &text))
        (void)procmetrics_parse_limits(text, out);
    free(text);
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        unsigned long n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        out->open_fds = (double)n;
        out->have_fds = true;
    }
}

static bool family(struct strbuf *out, const char *name, const char *type, const char *help,
                   double value)
{
    char num[40];
    snprintf(num, sizeof num, "%.15g", value);
    if (strtod(num, NULL) != value) /* the shortest text that reads back exactly */
        snprintf(num, sizeof num, "%.17g", value);
    return strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, type, name,
                         num);
}

bool procmetrics_render(const struct procmetrics *m, struct strbuf *out)
{
    bool ok = true;
    if (m->have_stat)
        ok = ok && family(out, "process_cpu_seconds_total", "counter",
                          "Total user and system CPU time spent in seconds.", m->cpu_seconds);
    if (m->have_fds)
        ok = ok && family(out, "process_open_fds", "gauge", "Number of open file descriptors.",
                          m->open_fds);
    if (m->have_limits)
        ok = ok && family(out, "process_max_fds", "gauge",
                          "Maximum number of open file descriptors.", m->max_fds);
    if (m->have_stat)
        ok = ok && family(out, "process_virtual_memory_bytes", "gauge",
                          "Virtual memory size in bytes.", m->virtual_bytes);
    if (m->have_limits)
        ok = ok &&
             family(out, "process_virtual_memory_max_bytes", "gauge",
                    "Maximum amount of virtual memory available in bytes.", m->max_virtual_bytes);
    if (m->have_stat)
        ok = ok &&
             family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                    m->resident_bytes) &&
             family(out, "process_start_time_seconds", "gauge",
                    "Start time of the process since unix epoch in seconds.", m->start_time);
    return ok;
}
