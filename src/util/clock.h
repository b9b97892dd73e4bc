/*
 * clock.h - the gateway's monotonic clock, and wall-clock time from it.
 */
#ifndef MG_UTIL_CLOCK_H
#define MG_UTIL_CLOCK_H

#include <stdint.h>

/* Monotonic time in microseconds (one clock for every module). */
uint64_t mg_now_us(void);

/* The wall-clock time (Unix µs) of the monotonic instant `mono_us` (a
 * mg_now_us value): the offset between the two clocks is read again when
 * a second has passed since the last reading (per thread), so a reading
 * taken anyway becomes a timestamp without a second clock call, and a step
 * of the wall clock shows within a second. */
int64_t mg_unix_us_at(uint64_t mono_us);

#endif
