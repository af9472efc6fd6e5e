/*
 * The standard process metrics, as the Prometheus client libraries export
 * them (client_golang's process collector: the same names, types and help
 * texts), so that dashboards and alerts written for Go operators work as is:
 *
 *   process_cpu_seconds_total          counter  utime + stime of /proc/self/stat
 *   process_open_fds                   gauge    entries of /proc/self/fd
 *   process_max_fds                    gauge    soft "Max open files" of /proc/self/limits
 *   process_virtual_memory_bytes       gauge    vsize of /proc/self/stat
 *   process_virtual_memory_max_bytes   gauge    soft "Max address space" (unlimited: 2^64-1)
 *   process_resident_memory_bytes      gauge    rss pages of /proc/self/stat x page size
 *   process_start_time_seconds         gauge    btime of /proc/stat + starttime / clock ticks
 *
 * A source that cannot be read leaves its metrics out (client_golang does the same).
 */
#ifndef MM_SERVER_PROCMETRICS_H
#define MM_SERVER_PROCMETRICS_H

#include <stdbool.h>

#include "util/strbuf.h"

struct procmetrics {
    bool have_stat; /* cpu, vsize, rss, start time */
    double cpu_seconds;
    double virtual_bytes;
    double resident_bytes;
    double start_time;
    bool have_fds;
    double open_fds;
    bool have_limits;
    double max_fds;
    double max_virtual_bytes;
};

/* Read the current values of this process. */
void procmetrics_read(struct procmetrics *out);

/* Parse the text of /proc/<pid>/stat into out (the stat fields); false when malformed. */
bool procmetrics_parse_stat(const char *text, long ticks_per_s, long page_size, double boot_time,
                            struct procmetrics *out);

/* Parse the text of /proc/<pid>/limits into out (the limits fields); false when malformed. */
bool procmetrics_parse_limits(const char *text, struct procmetrics *out);

/* Append the families of m as Prometheus text; false when out is over its cap. */
bool procmetrics_render(const struct procmetrics *m, struct strbuf *out)
    __attribute__((warn_unused_result));

#endif
