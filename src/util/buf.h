/*
 * buf.h - a growable byte buffer with a hard maximum (curl's dynbuf habit),
 * and the growth step of arrays of fixed-size elements (mg_grow).
 *
 * Every buffer that grows from input has a ceiling: appending past `max`
 * fails with -1 and leaves the contents unchanged, so a caller can answer
 * "too big" instead of eating memory. The data is always NUL-terminated
 * (the terminator is not counted in `len`) so text can be used directly.
 */
#ifndef MG_UTIL_BUF_H
#define MG_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct mg_buf {
	char *data; /* NULL until the first append; NUL-terminated after */
	size_t len; /* bytes used, excluding the terminator */
	size_t cap; /* bytes allocated */
	size_t max; /* maximum len; 0 means SIZE_MAX / 2 */
};

/* Prepares an empty buffer that may grow to `max` bytes (0: no practical limit). */
void mg_buf_init(struct mg_buf *b, size_t max);

/* Releases the memory and leaves an empty buffer with the same maximum. */
void mg_buf_free(struct mg_buf *b);

/* Empties the buffer but keeps its memory. */
void mg_buf_reset(struct mg_buf *b);

/* Makes room for `n` more bytes (so the appends that follow do not
 * reallocate). Returns 0, or -1 as mg_buf_append would. */
int mg_buf_reserve(struct mg_buf *b, size_t n);

/* Appends `n` bytes. Returns 0, or -1 when the maximum would be exceeded or
 * memory is exhausted (the buffer is then unchanged). */
int mg_buf_append(struct mg_buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string. Same return as mg_buf_append. */
int mg_buf_puts(struct mg_buf *b, const char *s);

/* Appends one byte. */
int mg_buf_putc(struct mg_buf *b, char c);

/* Appends printf-formatted text. Same return as mg_buf_append. */
int mg_buf_printf(struct mg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mg_buf_vprintf(struct mg_buf *b, const char *fmt, va_list ap);

/* Removes the first `n` bytes (n <= len). */
void mg_buf_consume(struct mg_buf *b, size_t n);

/* Gives the caller the data (malloc'd, NUL-terminated, never NULL unless out of
 * memory) and leaves the buffer empty. */
char *mg_buf_steal(struct mg_buf *b);

/* Growth of an array of `elem`-byte elements that holds `*cap` now: when
 * `need` (>= 1) elements do not fit, reallocates `arr` to at least `need`
 * (doubling, at least 8) and stores the new capacity in *cap. Returns the
 * array (`arr` when it had room), or NULL when out of memory or when the
 * size would overflow: then `arr` and *cap are unchanged and still valid.
 * The caller keeps its own maximum on how many elements it stores. */
void *mg_grow(void *arr, size_t *cap, size_t need, size_t elem);

#endif
