/*
 * metav1.MicroTime and metav1.Time on the wire (kubernetes-api.md 5, 4.4):
 * MicroTime is RFC 3339 in UTC with exactly six fractional digits,
 * "2006-01-02T15:04:05.000000Z"; Time has seconds precision,
 * "2006-01-02T15:04:05Z". Times are int64 microseconds since the Unix epoch.
 */
#ifndef MM_K8S_MICROTIME_H
#define MM_K8S_MICROTIME_H

#include <stdint.h>

#include "util/error.h"

#define K8S_MICROTIME_LEN 28 /* "2006-01-02T15:04:05.000000Z" plus the NUL */

/* Format unix_us as a MicroTime into out (NUL-terminated, always 27 characters for years 0-9999).
 */
void k8s_microtime_format(int64_t unix_us, char out[K8S_MICROTIME_LEN]);
/* Format unix_us as a metav1.Time (seconds precision, fraction truncated). */
void k8s_time_format(int64_t unix_us, char out[K8S_MICROTIME_LEN]);

/*
 * Parse an RFC 3339 time as Go's time.Parse(RFC3339Micro) accepts it: a
 * fraction of 1-9 digits or none, "Z" or a numeric offset (+hh:mm), upper- or
 * lower-case T and Z. Sub-microsecond digits are truncated. Returns
 * MM_ERR_PARSE (err names the text) on anything else.
 */
enum mm_status k8s_microtime_parse(const char *text, int64_t *unix_us, struct mm_error *err) MM_WUR;

/* The wall clock now, microseconds since the epoch (CLOCK_REALTIME). */
int64_t k8s_wall_us(void);

#endif
