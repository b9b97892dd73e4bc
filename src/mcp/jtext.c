/*
 * jtext.c - walking JSON text that mg_jscan accepted (see jtext.h).
 *
 * No validation here: the text was validated by the scan that produced the
 * spans. A value is skipped by its first byte: a string to its closing
 * quote (a backslash takes the next byte with it), an object or array to
 * the bracket that closes it (strings inside skipped as strings), anything
 * else to the next delimiter. Every loop is bounded by the span's end.
 */
#include "mcp/jtext.h"

#include <stdint.h>
#include <string.h>

static size_t ws(const char *t, size_t p, size_t end)
{
	while (p < end && (t[p] == ' ' || t[p] == '\t' || t[p] == '\n' || t[p] == '\r'))
		p++;
	return p;
}

/* The offset of the first special byte a special8 mask flags: its lowest
 * set bit on a little-endian machine; elsewhere 0, and the byte loop
 * finds it. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FIRST_SPECIAL(m) ((size_t)__builtin_ctzll(m) >> 3)
#else
#define FIRST_SPECIAL(m) ((size_t)0)
#endif

/* The quotes and backslashes among the 8 bytes at p, as the high bit of
 * each such byte (the "has a zero byte" test on both). Bits above the
 * lowest may be false alarms; the lowest set bit is exact. */
static uint64_t special8(const char *p)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t w;
	memcpy(&w, p, 8);
	uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
	return (((q - ones) & ~q) | ((b - ones) & ~b)) & high;
}

/* The end of the string whose opening quote is at p (after its closing
 * quote), or 0 when it does not close before `end`. Eight bytes at a time
 * (little-endian: the first special byte is the lowest set bit), byte by
 * byte for the last few. */
static size_t string_end(const char *t, size_t p, size_t end)
{
	p++;
	while (p < end) {
		if (end - p >= 8) {
			uint64_t m = special8(t + p);
			if (!m) {
				p += 8;
				continue;
			}
			p += FIRST_SPECIAL(m);
		}
		if (t[p] == '"')
			return p + 1;
		p += t[p] == '\\' ? 2 : 1;
	}
	return 0;
}

/* The end of the value starting at p (no leading whitespace), or 0. */
static size_t value_end(const char *t, size_t p, size_t end)
{
	if (p >= end)
		return 0;
	char c = t[p];
	if (c == '"')
		return string_end(t, p, end);
	if (c == '{' || c == '[') {
		size_t depth = 0;
		for (; p < end; p++) {
			char d = t[p];
			if (d == '"') {
				size_t e = string_end(t, p, end);
				if (!e)
					return 0;
				p = e - 1;
			} else if (d == '{' || d == '[') {
				depth++;
			} else if (d == '}' || d == ']') {
				if (--depth == 0)
					return p + 1;
			}
		}
		return 0;
	}
	while (p < end && t[p] != ',' && t[p] != '}' && t[p] != ']' && t[p] != ' ' &&
	       t[p] != '\t' && t[p] != '\n' && t[p] != '\r')
		p++;
	return p;
}

size_t mg_jtext_members(const char *text, struct mg_jspan obj, const char *const *keys, size_t n,
                        struct mg_jspan *out)
{
	size_t found = 0, end = obj.end;
	for (size_t i = 0; i < n; i++)
		out[i] = (struct mg_jspan){ 0, 0 };
	if (obj.end <= obj.start || text[obj.start] != '{')
		return 0;
	size_t p = obj.start + 1;
	while (found < n) {
		p = ws(text, p, end);
		if (p >= end || text[p] != '"')
			break; /* '}' (empty object or the end) or not walkable */
		size_t kend = string_end(text, p, end);
		if (!kend)
			break;
		size_t which = n;
		for (size_t i = 0; i < n && which == n; i++)
			if (!out[i].end && kend - p - 2 == strlen(keys[i]) &&
			    memcmp(text + p + 1, keys[i], kend - p - 2) == 0)
				which = i;
		p = ws(text, kend, end);
		if (p >= end || text[p] != ':')
			break;
		p = ws(text, p + 1, end);
		size_t vend = value_end(text, p, end);
		if (!vend)
			break;
		if (which < n) {
			out[which] = (struct mg_jspan){ p, vend };
			found++;
		}
		p = ws(text, vend, end);
		if (p >= end || text[p] != ',')
			break;
		p++;
	}
	return found;
}

bool mg_jtext_member(const char *text, struct mg_jspan obj, const char *key, struct mg_jspan *out)
{
	return mg_jtext_members(text, obj, &key, 1, out) == 1;
}

void mg_jtext_items(struct mg_jiter *it, const char *text, struct mg_jspan arr)
{
	it->text = text;
	it->end = arr.end;
	it->pos = arr.start;
	it->started = false;
	it->done = false;
	it->bad = arr.end <= arr.start || text[arr.start] != '[';
}

int mg_jtext_next(struct mg_jiter *it, struct mg_jspan *out)
{
	if (it->bad)
		return -1;
	if (it->done)
		return 0;
	const char *t = it->text;
	size_t p = ws(t, it->started ? it->pos : it->pos + 1, it->end);
	if (p >= it->end)
		goto bad;
	if (t[p] == ']') {
		it->pos = p + 1; /* just past the array: where a walk of the
		                  * enclosing object resumes */
		it->started = true;
		it->done = true;
		return 0;
	}
	if (it->started) {
		if (t[p] != ',')
			goto bad;
		p = ws(t, p + 1, it->end);
	}
	size_t e = value_end(t, p, it->end);
	if (!e || e == p)
		goto bad;
	out->start = p;
	out->end = e;
	it->pos = e;
	it->started = true;
	return 1;
bad:
	it->bad = true;
	return -1;
}

void mg_jtext_fields(struct mg_jfields *f, const char *text, struct mg_jspan obj)
{
	f->text = text;
	f->end = obj.end;
	f->pos = obj.start + 1;
	f->started = false;
	f->bad = obj.end <= obj.start || text[obj.start] != '{';
}

int mg_jtext_field(struct mg_jfields *f, struct mg_jspan *key, size_t *value)
{
	if (f->bad)
		return -1;
	const char *t = f->text;
	size_t p = ws(t, f->pos, f->end);
	if (p < f->end && t[p] == '}')
		return 0;
	if (f->started) {
		if (p >= f->end || t[p] != ',')
			goto bad;
		p = ws(t, p + 1, f->end);
	}
	if (p >= f->end || t[p] != '"')
		goto bad;
	size_t kend = string_end(t, p, f->end);
	if (!kend)
		goto bad;
	key->start = p + 1;
	key->end = kend - 1;
	p = ws(t, kend, f->end);
	if (p >= f->end || t[p] != ':')
		goto bad;
	p = ws(t, p + 1, f->end);
	if (p >= f->end)
		goto bad;
	*value = p;
	f->pos = p;
	f->started = true;
	return 1;
bad:
	f->bad = true;
	return -1;
}

void mg_jtext_field_skip(struct mg_jfields *f)
{
	size_t e = f->bad ? 0 : value_end(f->text, f->pos, f->end);
	if (e)
		f->pos = e;
	else
		f->bad = true;
}

void mg_jtext_field_resume(struct mg_jfields *f, size_t pos)
{
	if (pos <= f->pos || pos > f->end)
		f->bad = true;
	else
		f->pos = pos;
}

bool mg_jtext_key_is(const char *text, struct mg_jspan key, const char *name)
{
	size_t n = strlen(name);
	return key.end - key.start == n && memcmp(text + key.start, name, n) == 0;
}

bool mg_jtext_is_true(const char *text, struct mg_jspan v)
{
	return v.end - v.start == 4 && memcmp(text + v.start, "true", 4) == 0;
}

bool mg_jtext_plain_string(const char *text, struct mg_jspan v)
{
	return v.end - v.start >= 2 && text[v.start] == '"' && text[v.end - 1] == '"' &&
	       !memchr(text + v.start + 1, '\\', v.end - v.start - 2);
}

bool mg_jtext_member_true(const char *text, struct mg_jspan obj, const char *key)
{
	struct mg_jspan v;
	return obj.end > obj.start &&
	       memmem(text + obj.start, obj.end - obj.start, key, strlen(key)) &&
	       mg_jtext_member(text, obj, key, &v) && mg_jtext_is_true(text, v);
}
