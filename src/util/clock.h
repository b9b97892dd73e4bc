/*
 * clock.h - the gateway's monotonic clock.
 */
#ifndef MG_UTIL_CLOCK_H
#define MG_UTIL_CLOCK_H

#include <stdint.h>

/* Monotonic time in microseconds (one clock for every module). */
uint64_t mg_now_us(void);

#endif
