/*
 * Monotonic time for timed waits: every condition variable of the project is
 * set to CLOCK_MONOTONIC, so its deadlines are taken from that clock too.
 */
#ifndef MM_UTIL_CLOCK_H
#define MM_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC now plus ms: the absolute deadline for pthread_cond_timedwait. */
struct timespec mono_deadline(uint64_t ms);

#endif
