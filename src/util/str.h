/*
 * str.h - small string helpers with explicit lengths and bounds.
 */
#ifndef MG_UTIL_STR_H
#define MG_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* malloc'd copy of `n` bytes plus a terminator; NULL on allocation failure. */
char *mg_strndup(const char *s, size_t n);

/* malloc'd copy of a NUL-terminated string (NULL in, NULL out). */
char *mg_strdup(const char *s);

/* Parses a whole decimal integer (optional sign, no spaces, no trailing bytes)
 * within [min, max]. Returns 0, or -1 when malformed or out of range. */
int mg_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Parses a whole finite decimal number. Returns 0 or -1. */
int mg_parse_double(const char *s, double *out);

/* true when `s` starts with `prefix`. */
bool mg_str_starts_with(const char *s, const char *prefix);

/* Case-insensitive ASCII equality. */
bool mg_str_eq_ci(const char *a, const char *b);

/* Levenshtein distance, capped at `cap` (cheap for "did you mean"). */
size_t mg_str_distance(const char *a, const char *b, size_t cap);

/* The value of a hexadecimal digit (either case), or -1 for any other value
 * (negative ones, such as an end-of-input marker, included). */
int mg_hex_value(int c);

/* Writes the `n` bytes of `d` as 2n lowercase hexadecimal digits, most
 * significant nibble first, into `out` (no terminating NUL). Eight bytes
 * at a time by arithmetic on words: ids are hexed on every request (trace
 * ids, request ids, hashes), and a digit table lookup per nibble cost
 * several times more. */
void mg_hex(const uint8_t *d, size_t n, char *out);

/* `v` as 16 lowercase hexadecimal digits, most significant first (no NUL). */
void mg_hex_u64(uint64_t v, char out[16]);

/* Writes `v` in decimal into `out` (at least MG_I64_CHARS bytes), without a
 * terminating NUL; returns the length. printf costs ten times more on the
 * request path. */
#define MG_I64_CHARS 20
size_t mg_fmt_i64(char *out, int64_t v);

/* "00" "01" … "99": the two digits of n at mg_digit_pairs + 2 * n. */
extern const char mg_digit_pairs[201];

/* Folds `n` bytes of `s` into the hash `h`, a word at a time, reading only
 * those bytes; the length goes in last, so chained calls over several
 * strings tell ("ab", "c") from ("a", "bc"). Not keyed: for the gateway's
 * own tables, where a collision only costs a little (a probe, a record
 * sooner, an identity counted once). */
uint64_t mg_hash_bytes(uint64_t h, const void *s, size_t n);

/* true when the `n` bytes are valid UTF-8 (no overlongs, no surrogates). */
bool mg_utf8_valid(const char *s, size_t n);

/* true when the `n` bytes of `s` go into a JSON string as they are: all
 * printable ASCII (0x20..0x7e) other than '"' and '\\'. Serializers check
 * this first and copy the whole string at once (most strings are plain). */
bool mg_json_plain(const char *s, size_t n);

/* true when one of the 8 bytes of `w` (as loaded from memory) would not
 * go into a JSON string as it is (see mg_json_plain). */
static inline __attribute__((always_inline)) bool mg_word_special(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t ctl = (w - ones * 0x20) & ~w;   /* < 0x20 */
	uint64_t del = (w + ones * 0x01) & high; /* >= 0x7f (with w's high bits) */
	uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
	uint64_t zq = (q - ones) & ~q, zb = (bs - ones) & ~bs; /* == '"', == '\\' */
	return ((ctl | del | zq | zb | w) & high) != 0;
}

/* Copies at most size - 1 bytes of `src` (NULL: "") and a NUL into `dst`
 * (size > 0): snprintf(dst, size, "%s", src) without printf's cost.
 * Returns the bytes copied. */
size_t mg_str_copy(char *dst, size_t size, const char *src);

#endif
