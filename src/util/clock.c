/*
 * clock.c - see clock.h.
 */
#include "util/clock.h"

#include <time.h>

uint64_t mg_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t mg_unix_us_at(uint64_t mono_us)
{
	static _Thread_local uint64_t read_at; /* mono µs of the last reading; 0: none */
	static _Thread_local int64_t offset;   /* wall µs minus mono µs */
	if (read_at == 0 || (mono_us > read_at && mono_us - read_at >= 1000000u)) {
		struct timespec wall;
		clock_gettime(CLOCK_REALTIME, &wall);
		uint64_t mono = mg_now_us();
		offset = ((int64_t)wall.tv_sec * 1000000 + wall.tv_nsec / 1000) - (int64_t)mono;
		read_at = mono;
	}
	return (int64_t)mono_us + offset;
}
