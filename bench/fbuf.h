/*
 * fbuf.h - the growable byte buffer both benchmark tools use (they stay
 * standalone: no libmg). Out of memory ends the program: a benchmark that
 * cannot allocate has nothing left to measure.
 */
#ifndef BENCH_FBUF_H
#define BENCH_FBUF_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

struct fbuf {
	char *p;
	size_t len, cap;
};

static inline void fb_reserve(struct fbuf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 1024;
	while (cap < b->len + more)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		fputs("bench: out of memory\n", stderr);
		exit(1);
	}
	b->p = p;
	b->cap = cap;
}

static inline void fb_add(struct fbuf *b, const void *s, size_t n)
{
	fb_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static inline void fb_str(struct fbuf *b, const char *s)
{
	fb_add(b, s, strlen(s));
}

static inline void fb_fmt(struct fbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void fb_fmt(struct fbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (!b->p || (size_t)n >= b->cap - b->len) {
		fb_reserve(b, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/* Writes b[*off, len) to the non-blocking `fd` until done or EAGAIN.
 * Returns 1 when bytes are left (wait for writability), 0 when all went
 * out (the buffer is emptied), -1 on a write error. */
static inline int fb_write(int fd, struct fbuf *b, size_t *off)
{
	while (*off < b->len) {
		ssize_t w = write(fd, b->p + *off, b->len - *off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 1;
			return -1;
		}
		*off += (size_t)w;
	}
	b->len = *off = 0;
	return 0;
}

#endif
