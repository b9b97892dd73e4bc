/*
 * str.c - string helpers. See str.h.
 */
#include "util/str.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

char *mg_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *mg_strdup(const char *s)
{
	return s ? mg_strndup(s, strlen(s)) : NULL;
}

int mg_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s || !*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || end == s)
		return -1;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int mg_parse_double(const char *s, double *out)
{
	if (!s || !*s)
		return -1;
	errno = 0;
	char *end;
	double v = strtod(s, &end);
	if (errno || *end || end == s || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

bool mg_str_starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool mg_str_eq_ci(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + 32);
		if (x != y)
			return false;
		if (!x)
			return true;
	}
}

size_t mg_str_distance(const char *a, const char *b, size_t cap)
{
	/* Optimal string alignment: Levenshtein plus adjacent transpositions,
	 * so "hots" is one edit from "host". */
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return cap;
	size_t d[65][65];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = d[i - 1][j - 1] + cost;
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb] < cap ? d[la][lb] : cap;
}

bool mg_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		for (; n - i >= 8; i += 8) { /* eight ASCII bytes at once */
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (w & 0x8080808080808080ull)
				break;
		}
		if (i == n)
			break;
		unsigned c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		unsigned cp;
		if (c >= 0xC2 && c <= 0xDF) {
			len = 2;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			len = 3;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += len;
	}
	return true;
}

int mg_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four bytes (loaded little-endian: d[0] lowest) as eight digits, d[0]'s
 * high nibble in the lowest byte, ready to be stored little-endian. */
static uint64_t hex_word(uint32_t v)
{
	uint64_t x = v;
	x = (x | x << 16) & 0x0000ffff0000ffffull; /* d0 d1 . . d2 d3 . . */
	x = (x | x << 8) & 0x00ff00ff00ff00ffull;  /* d0 . d1 . d2 . d3 . */
	uint64_t nib = (x >> 4 & 0x000f000f000f000full) | (x & 0x000f000f000f000full) << 8;
	/* '0' + nibble, and 'a' - '0' - 10 more where the nibble is 10..15 */
	uint64_t letter = ((nib + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;
	return nib + 0x3030303030303030ull + letter * ('a' - '0' - 10);
}

void mg_hex(const uint8_t *d, size_t n, char *out)
{
	size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	for (; i + 4 <= n; i += 4) {
		uint32_t v;
		memcpy(&v, d + i, 4);
		uint64_t w = hex_word(v);
		memcpy(out + 2 * i, &w, 8);
	}
#endif
	static const char digits[] = "0123456789abcdef";
	for (; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
}

void mg_hex_u64(uint64_t v, char out[16])
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	mg_hex(b, 8, out);
}

uint64_t mg_hash_bytes(uint64_t h, const void *s, size_t n)
{
	const unsigned char *b = s;
	const uint64_t k = 0x9e3779b97f4a7c15ull;
	uint64_t w;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, b + i, 8);
		h = (h ^ w) * k;
		h ^= h >> 29;
	}
	if (i < n) {
		if (n >= 8) {
			memcpy(&w, b + n - 8, 8); /* the last word, overlapping */
		} else {
			w = 0;
			memcpy(&w, b, n);
		}
		h = (h ^ w) * k;
		h ^= h >> 29;
	}
	h = (h ^ n) * k;
	return h ^ h >> 32;
}

const char mg_digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                 "25262728293031323334353637383940414243444546474849"
                                 "50515253545556575859606162636465666768697071727374"
                                 "75767778798081828384858687888990919293949596979899";

size_t mg_fmt_i64(char *out, int64_t v)
{
	/* two digits per division (the divisions are most of the cost) */
	const char *pairs = mg_digit_pairs;
	char tmp[MG_I64_CHARS];
	size_t n = sizeof tmp, len = 0;
	/* Work in unsigned so INT64_MIN does not overflow. */
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	while (u >= 100) {
		unsigned d = (unsigned)(u % 100) * 2;
		u /= 100;
		tmp[--n] = pairs[d + 1];
		tmp[--n] = pairs[d];
	}
	if (u >= 10) {
		tmp[--n] = pairs[u * 2 + 1];
		tmp[--n] = pairs[u * 2];
	} else {
		tmp[--n] = (char)('0' + u);
	}
	if (v < 0)
		out[len++] = '-';
	memcpy(out + len, tmp + n, sizeof tmp - n);
	return len + sizeof tmp - n;
}

/* Any byte < 0x20, >= 0x7f, '"' or '\\' in the 8 bytes at p. */
static inline __attribute__((always_inline)) bool word_special(const unsigned char *p)
{
	uint64_t w;
	memcpy(&w, p, 8);
	return mg_word_special(w);
}

/* word_special for the 4 bytes at p. */
static inline __attribute__((always_inline)) bool word4_special(const unsigned char *p)
{
	uint32_t w;
	memcpy(&w, p, 4);
	const uint32_t ones = 0x01010101u, high = 0x80808080u;
	uint32_t ctl = (w - ones * 0x20) & ~w;
	uint32_t del = (w + ones * 0x01) & high;
	uint32_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
	uint32_t zq = (q - ones) & ~q, zb = (bs - ones) & ~bs;
	return ((ctl | del | zq | zb | w) & high) != 0;
}

bool mg_json_plain(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	if (n < 8) {
		if (n >= 4) /* two 4-byte words, overlapping when n < 8 */
			return !word4_special(p) && !word4_special(p + n - 4);
		for (size_t i = 0; i < n; i++) {
			unsigned char c = p[i];
			if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
				return false;
		}
		return true;
	}
	/* 8 bytes at a time; the last word overlaps the one before it */
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		if (word_special(p + i))
			return false;
	}
	return i == n || !word_special(p + n - 8);
}

size_t mg_str_copy(char *dst, size_t size, const char *src)
{
	size_t n = src ? strnlen(src, size - 1) : 0;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return n;
}
