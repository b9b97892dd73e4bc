/*
 * minijson.h - a validating JSON skipper for the benchmark tools.
 *
 * The fast upstream and the load generator must cost next to nothing per
 * message, so they do not build a tree: they check that a value is
 * well-formed JSON while skipping over it, and look members up by raw key.
 * String contents are not unescaped (the benchmark's own keys and values
 * never need it); a string is found by searching for its closing quote with
 * memchr and counting the backslashes before it. Header-only: every function
 * is static.
 */
#ifndef MG_BENCH_MINIJSON_H
#define MG_BENCH_MINIJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define MJ_MAX_DEPTH 64

/* A slice of the input: [p, e). */
struct mj_span {
	const char *p;
	const char *e;
};

static inline const char *mj_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* p points at the opening quote. Returns the position after the closing
 * quote, or NULL if the string is not terminated. */
static inline const char *mj_skip_string(const char *p, const char *e)
{
	const char *q = p + 1, *lim = e - q > 48 ? q + 48 : e;
	/* Most strings are short: a plain loop beats a memchr call for them.
	 * It steps over escapes, so q never stops inside one. */
	while (q < lim) {
		if (*q == '"')
			return q + 1;
		q += *q == '\\' ? 2 : 1;
	}
	if (q >= e)
		return NULL;
	for (;;) {
		const char *c = memchr(q, '"', (size_t)(e - q));
		if (!c)
			return NULL;
		const char *b = c;
		while (b > q && b[-1] == '\\')
			b--;
		if (((c - b) & 1) == 0)
			return c + 1;
		q = c + 1;
	}
}

static const char *mj_skip_depth(const char *p, const char *e, int depth);

static inline const char *mj_skip_container(const char *p, const char *e, int depth, bool obj)
{
	char close = obj ? '}' : ']';
	p = mj_ws(p + 1, e);
	if (p < e && *p == close)
		return p + 1;
	for (;;) {
		if (obj) {
			if (p >= e || *p != '"')
				return NULL;
			p = mj_skip_string(p, e);
			if (!p)
				return NULL;
			p = mj_ws(p, e);
			if (p >= e || *p != ':')
				return NULL;
			p = mj_ws(p + 1, e);
		}
		p = mj_skip_depth(p, e, depth + 1);
		if (!p)
			return NULL;
		p = mj_ws(p, e);
		if (p >= e)
			return NULL;
		if (*p == close)
			return p + 1;
		if (*p != ',')
			return NULL;
		p = mj_ws(p + 1, e);
	}
}

static const char *mj_skip_depth(const char *p, const char *e, int depth)
{
	if (p >= e || depth > MJ_MAX_DEPTH)
		return NULL;
	switch (*p) {
	case '"':
		return mj_skip_string(p, e);
	case '{':
		return mj_skip_container(p, e, depth, true);
	case '[':
		return mj_skip_container(p, e, depth, false);
	case 't':
		return (e - p >= 4 && memcmp(p, "true", 4) == 0) ? p + 4 : NULL;
	case 'f':
		return (e - p >= 5 && memcmp(p, "false", 5) == 0) ? p + 5 : NULL;
	case 'n':
		return (e - p >= 4 && memcmp(p, "null", 4) == 0) ? p + 4 : NULL;
	default: {
		const char *s = p;
		if (p < e && *p == '-')
			p++;
		while (p < e && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' ||
		                 *p == '+' || *p == '-'))
			p++;
		return p > s && (p[-1] >= '0' && p[-1] <= '9') ? p : NULL;
	}
	}
}

/* Skips one value at p (leading whitespace allowed). Returns the position
 * after it, or NULL when it is not well-formed. */
static inline const char *mj_skip(const char *p, const char *e)
{
	return mj_skip_depth(mj_ws(p, e), e, 0);
}

/* Checks that [p, e) is exactly one JSON value (whitespace around allowed). */
static inline bool mj_valid(const char *p, const char *e)
{
	const char *q = mj_skip(p, e);
	return q && mj_ws(q, e) == e;
}

/* Finds member `key` of the object span v (v.p at '{'); the key is compared
 * raw (no unescaping). Sets *out to the value's span. Returns true if found. */
static inline bool mj_get(struct mj_span v, const char *key, struct mj_span *out)
{
	const char *p = mj_ws(v.p, v.e), *e = v.e;
	size_t klen = strlen(key);
	if (p >= e || *p != '{')
		return false;
	p = mj_ws(p + 1, e);
	while (p < e && *p == '"') {
		const char *ks = p + 1;
		const char *ke = mj_skip_string(p, e);
		if (!ke)
			return false;
		p = mj_ws(ke, e);
		if (p >= e || *p != ':')
			return false;
		p = mj_ws(p + 1, e);
		const char *ve = mj_skip_depth(p, e, 1);
		if (!ve)
			return false;
		if ((size_t)(ke - 1 - ks) == klen && memcmp(ks, key, klen) == 0) {
			out->p = p;
			out->e = ve;
			return true;
		}
		p = mj_ws(ve, e);
		if (p < e && *p == ',')
			p = mj_ws(p + 1, e);
	}
	return false;
}

/* One pass over the members of the object at the start of [p, e): for each
 * keys[i] found, spans[i] is set to its value (spans[i].p stays NULL when
 * absent). Every value is validated while it is skipped, and nothing but
 * whitespace may follow the object. Returns false when not well-formed. */
static inline bool mj_members(const char *p, const char *e, const char *const *keys,
                              struct mj_span *spans, size_t n)
{
	for (size_t i = 0; i < n; i++)
		spans[i].p = spans[i].e = NULL;
	p = mj_ws(p, e);
	if (p >= e || *p != '{')
		return false;
	p = mj_ws(p + 1, e);
	if (p < e && *p == '}')
		return mj_ws(p + 1, e) == e;
	for (;;) {
		if (p >= e || *p != '"')
			return false;
		const char *ks = p + 1;
		const char *ke = mj_skip_string(p, e);
		if (!ke)
			return false;
		p = mj_ws(ke, e);
		if (p >= e || *p != ':')
			return false;
		p = mj_ws(p + 1, e);
		const char *ve = mj_skip_depth(p, e, 1);
		if (!ve)
			return false;
		size_t klen = (size_t)(ke - 1 - ks);
		for (size_t i = 0; i < n; i++)
			if (strlen(keys[i]) == klen && memcmp(ks, keys[i], klen) == 0) {
				spans[i].p = p;
				spans[i].e = ve;
			}
		p = mj_ws(ve, e);
		if (p < e && *p == '}')
			return mj_ws(p + 1, e) == e;
		if (p >= e || *p != ',')
			return false;
		p = mj_ws(p + 1, e);
	}
}

/* Follows a path of keys through nested objects. */
static inline bool mj_path(struct mj_span v, const char *const *keys, size_t n, struct mj_span *out)
{
	for (size_t i = 0; i < n; i++)
		if (!mj_get(v, keys[i], &v))
			return false;
	*out = v;
	return true;
}

/* Element i of the array span v. */
static inline bool mj_index(struct mj_span v, size_t idx, struct mj_span *out)
{
	const char *p = mj_ws(v.p, v.e), *e = v.e;
	if (p >= e || *p != '[')
		return false;
	p = mj_ws(p + 1, e);
	for (size_t i = 0; p < e && *p != ']'; i++) {
		const char *ve = mj_skip_depth(p, e, 1);
		if (!ve)
			return false;
		if (i == idx) {
			out->p = p;
			out->e = ve;
			return true;
		}
		p = mj_ws(ve, e);
		if (p < e && *p == ',')
			p = mj_ws(p + 1, e);
	}
	return false;
}

/* Number of elements of the array span v, or -1 if it is not an array. */
static inline long mj_count(struct mj_span v)
{
	const char *p = mj_ws(v.p, v.e), *e = v.e;
	long n = 0;
	if (p >= e || *p != '[')
		return -1;
	p = mj_ws(p + 1, e);
	while (p < e && *p != ']') {
		const char *ve = mj_skip_depth(p, e, 1);
		if (!ve)
			return -1;
		n++;
		p = mj_ws(ve, e);
		if (p < e && *p == ',')
			p = mj_ws(p + 1, e);
	}
	return n;
}

/* Number of elements of an array span that was already validated: counts
 * the commas at its top level, skipping strings with memchr. */
static inline long mj_count_valid(struct mj_span v)
{
	const char *p = mj_ws(v.p, v.e), *e = v.e;
	long depth = 0, n = 0;
	bool any = false;
	if (p >= e || *p != '[')
		return -1;
	for (p++; p < e; p++) {
		char c = *p;
		if (c == '"') {
			p = mj_skip_string(p, e);
			if (!p)
				return -1;
			p--;
			any = true;
		} else if (c == '[' || c == '{') {
			depth++;
			any = true;
		} else if (c == ']' || c == '}') {
			if (depth-- == 0)
				return any ? n + 1 : 0;
		} else if (c == ',' && depth == 0) {
			n++;
		} else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			any = true;
		}
	}
	return -1;
}

/* True if the span is the string literal "s" (raw comparison). */
static inline bool mj_str_eq(struct mj_span v, const char *s, size_t n)
{
	return v.e - v.p == (ptrdiff_t)n + 2 && v.p[0] == '"' && memcmp(v.p + 1, s, n) == 0;
}

/* True if the span is the raw token t (a number, literal or quoted string). */
static inline bool mj_raw_eq(struct mj_span v, const char *t, size_t n)
{
	return v.e - v.p == (ptrdiff_t)n && memcmp(v.p, t, n) == 0;
}

#endif
