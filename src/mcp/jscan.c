/*
 * jscan.c - a validating JSON scan that builds no tree (see jscan.h).
 *
 * Recursive descent over the bytes. Every "no" is MG_JSCAN_SLOW: the caller
 * then runs jansson, which either gives the precise error or handles the
 * case this scan leaves out. What the scan accepts must therefore be a
 * subset of what jansson accepts with JSON_REJECT_DUPLICATES:
 *   - strings: no raw control characters, strict UTF-8 (no overlong forms,
 *     no encoded surrogates, nothing above U+10FFFF), escapes from the JSON
 *     set, \u surrogates only in valid pairs;
 *   - numbers: RFC 8259 grammar; integers of at most 18 digits (jansson
 *     refuses what does not fit in 64 bits), other numbers with at most 64
 *     digits and a two-digit exponent (so strtod cannot overflow);
 *   - duplicate keys: compared byte for byte, which is exact because a key
 *     with an escape sends the message to the slow path.
 */
#include "mcp/jscan.h"

#include <string.h>

#define KEY_STACK   256 /* keys of all open objects together */
#define DEPTH_LIMIT 512 /* recursion bound whatever the configuration says */

enum vtype { V_OBJECT, V_ARRAY, V_STRING, V_INT, V_REAL, V_LITERAL };

struct key {
	const unsigned char *p;
	size_t len;
};

struct scan {
	const unsigned char *base, *p, *end;
	size_t depth, max_depth;
	bool crlf;
	size_t nkeys;
	struct key keys[KEY_STACK];
};

static void skip_ws(struct scan *s)
{
	while (s->p < s->end) {
		unsigned char c = *s->p;
		if (c == ' ' || c == '\t') {
			s->p++;
		} else if (c == '\n' || c == '\r') {
			s->crlf = true;
			s->p++;
		} else {
			break;
		}
	}
}

static int hex4(const unsigned char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned char c = p[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

/* One UTF-8 sequence starting with a byte >= 0x80; advances past it. */
static int utf8_seq(struct scan *s)
{
	const unsigned char *p = s->p;
	size_t left = (size_t)(s->end - p);
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else {
		return -1;
	}
	if (left < n || p[1] < lo || p[1] > hi)
		return -1;
	for (size_t i = 2; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return -1;
	}
	s->p += n;
	return 0;
}

/* The offset of the first special byte a special8 mask flags: its lowest
 * set bit on a little-endian machine; elsewhere 0, and the byte loop
 * finds it. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FIRST_SPECIAL(m) ((size_t)__builtin_ctzll(m) >> 3)
#else
#define FIRST_SPECIAL(m) ((size_t)0)
#endif

/* The bytes among the 8 at `p` that are a quote, a backslash, a control
 * character or part of a multi-byte sequence, as the high bit of each (the
 * classic "has a zero byte" trick, applied to each condition). It never
 * misses one; bits above the lowest may be false alarms, the lowest set
 * bit is exact (little-endian: the first such byte). */
static uint64_t special8(const unsigned char *p)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t w;
	memcpy(&w, p, 8);
	uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
	uint64_t t = ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w;
	return t & high;
}

/* A string starting at the opening quote; *escaped tells whether it had a
 * backslash escape. */
static int scan_string(struct scan *s, bool *escaped)
{
	*escaped = false;
	s->p++;
	for (;;) {
		/* Plain ASCII runs are the common case: eight bytes at a time
		 * up to the first special byte, byte by byte near the end. */
		while (s->end - s->p >= 8) {
			uint64_t m = special8(s->p);
			if (m) {
				s->p += FIRST_SPECIAL(m);
				break;
			}
			s->p += 8;
		}
		while (s->p < s->end && *s->p >= 0x20 && *s->p < 0x80 && *s->p != '"' &&
		       *s->p != '\\')
			s->p++;
		if (s->p >= s->end)
			return -1;
		unsigned char c = *s->p;
		if (c == '"') {
			s->p++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c >= 0x80) {
			if (utf8_seq(s) < 0)
				return -1;
			continue;
		}
		/* A backslash. */
		*escaped = true;
		if (s->end - s->p < 2)
			return -1;
		c = s->p[1];
		if (c != 'u') {
			if (!strchr("\"\\/bfnrt", c) || c == '\0')
				return -1;
			s->p += 2;
			continue;
		}
		unsigned cp;
		if (s->end - s->p < 6 || hex4(s->p + 2, &cp) < 0)
			return -1;
		s->p += 6;
		if (cp >= 0xDC00 && cp <= 0xDFFF)
			return -1; /* a low surrogate alone */
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			unsigned lo;
			if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
			    hex4(s->p + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
				return -1;
			s->p += 6;
		}
	}
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int scan_number(struct scan *s, enum vtype *type, int64_t *ival)
{
	bool neg = false;
	size_t digits = 0;
	uint64_t v = 0;
	if (*s->p == '-') {
		neg = true;
		s->p++;
	}
	if (s->p >= s->end || !is_digit(*s->p))
		return -1;
	if (*s->p == '0') {
		s->p++;
		digits = 1;
		if (s->p < s->end && is_digit(*s->p))
			return -1; /* leading zero */
	} else {
		while (s->p < s->end && is_digit(*s->p)) {
			if (digits < 19)
				v = v * 10 + (uint64_t)(*s->p - '0');
			digits++;
			s->p++;
		}
	}
	bool real = false;
	if (s->p < s->end && *s->p == '.') {
		real = true;
		s->p++;
		if (s->p >= s->end || !is_digit(*s->p))
			return -1;
		while (s->p < s->end && is_digit(*s->p)) {
			digits++;
			s->p++;
		}
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		real = true;
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		size_t exp_digits = 0;
		while (s->p < s->end && is_digit(*s->p)) {
			exp_digits++;
			s->p++;
		}
		if (exp_digits == 0 || exp_digits > 2)
			return -1;
	}
	if (real) {
		if (digits > 64)
			return -1;
		*type = V_REAL;
		return 0;
	}
	if (digits > 18)
		return -1;
	*type = V_INT;
	*ival = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

static int scan_literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

/* One scanned value: its type, an integer's value, whether a string had an
 * escape. */
struct value {
	enum vtype type;
	int64_t ival;
	bool escaped;
};

static int scan_value(struct scan *s, struct value *v);

/* The members of the envelope the caller cares about. */
enum member { M_JSONRPC, M_ID, M_METHOD, M_PARAMS, M_RESULT, M_ERROR, M_OTHER };

/* What the top-level object holds, member by member. */
struct envelope {
	bool seen[M_OTHER];
	struct mg_jspan span[M_OTHER];
	struct value val[M_OTHER];
};

static enum member member_of(const struct key *k)
{
	static const char *const names[] = {
		"jsonrpc", "id", "method", "params", "result", "error"
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strlen(names[i]) == k->len && memcmp(names[i], k->p, k->len) == 0)
			return (enum member)i;
	}
	return M_OTHER;
}

/* An object's key, checked against the other keys of the same object
 * (keys[first, nkeys)). */
static int scan_key(struct scan *s, size_t first)
{
	if (s->p >= s->end || *s->p != '"')
		return -1;
	const unsigned char *start = s->p + 1;
	bool escaped;
	if (scan_string(s, &escaped) < 0 || escaped)
		return -1;
	size_t len = (size_t)(s->p - 1 - start);
	for (size_t i = first; i < s->nkeys; i++) {
		if (s->keys[i].len == len && memcmp(s->keys[i].p, start, len) == 0)
			return -1; /* duplicate */
	}
	if (s->nkeys - first >= MG_JSCAN_MAX_KEYS || s->nkeys >= KEY_STACK)
		return -1;
	s->keys[s->nkeys++] = (struct key){ start, len };
	return 0;
}

static int enter(struct scan *s)
{
	if (++s->depth > s->max_depth || s->depth > DEPTH_LIMIT)
		return -1;
	s->p++;
	skip_ws(s);
	return s->p < s->end ? 0 : -1;
}

/* An object; `env` (the top level only) records the envelope's members. */
static int scan_object(struct scan *s, struct envelope *env)
{
	if (enter(s) < 0)
		return -1;
	size_t first = s->nkeys;
	if (*s->p == '}') {
		s->p++;
		s->depth--;
		return 0;
	}
	for (;;) {
		struct value v;
		if (scan_key(s, first) < 0)
			return -1;
		enum member m = env ? member_of(&s->keys[s->nkeys - 1]) : M_OTHER;
		skip_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return -1;
		s->p++;
		skip_ws(s);
		size_t start = (size_t)(s->p - s->base);
		if (scan_value(s, &v) < 0)
			return -1;
		if (m != M_OTHER) {
			env->seen[m] = true;
			env->span[m] = (struct mg_jspan){ start, (size_t)(s->p - s->base) };
			env->val[m] = v;
		}
		skip_ws(s);
		if (s->p >= s->end)
			return -1;
		if (*s->p == '}')
			break;
		if (*s->p != ',')
			return -1;
		s->p++;
		skip_ws(s);
	}
	s->p++;
	s->nkeys = first;
	s->depth--;
	return 0;
}

static int scan_array(struct scan *s)
{
	if (enter(s) < 0)
		return -1;
	if (*s->p == ']') {
		s->p++;
		s->depth--;
		return 0;
	}
	for (;;) {
		struct value v;
		if (scan_value(s, &v) < 0)
			return -1;
		skip_ws(s);
		if (s->p >= s->end)
			return -1;
		if (*s->p == ']')
			break;
		if (*s->p != ',')
			return -1;
		s->p++;
	}
	s->p++;
	s->depth--;
	return 0;
}

static int scan_value(struct scan *s, struct value *v)
{
	v->ival = 0;
	v->escaped = false;
	skip_ws(s);
	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '{':
		v->type = V_OBJECT;
		return scan_object(s, NULL);
	case '[':
		v->type = V_ARRAY;
		return scan_array(s);
	case '"':
		v->type = V_STRING;
		return scan_string(s, &v->escaped);
	case 't':
		v->type = V_LITERAL;
		return scan_literal(s, "true");
	case 'f':
		v->type = V_LITERAL;
		return scan_literal(s, "false");
	case 'n':
		v->type = V_LITERAL;
		return scan_literal(s, "null");
	default:
		if (*s->p == '-' || is_digit(*s->p))
			return scan_number(s, &v->type, &v->ival);
		return -1;
	}
}

enum mg_jscan_status mg_jscan(const char *text, size_t len, size_t max_depth, struct mg_jscan *out)
{
	struct scan s;
	s.base = s.p = (const unsigned char *)text;
	s.end = s.p + len;
	s.depth = 0;
	s.max_depth = max_depth;
	s.crlf = false;
	s.nkeys = 0;
	memset(out, 0, sizeof *out);

	struct envelope env;
	memset(&env, 0, sizeof env);
	skip_ws(&s);
	if (s.p >= s.end || *s.p != '{' || scan_object(&s, &env) < 0)
		return MG_JSCAN_SLOW;
	skip_ws(&s);
	if (s.p != s.end)
		return MG_JSCAN_SLOW;
	const bool *seen = env.seen;
	const struct mg_jspan *span = env.span;
	const struct value *val = env.val;

	/* The envelope, as mg_rpc_classify sees it. */
	if (!seen[M_JSONRPC] || span[M_JSONRPC].end - span[M_JSONRPC].start != 5 ||
	    memcmp(text + span[M_JSONRPC].start, "\"2.0\"", 5) != 0)
		return MG_JSCAN_SLOW;
	bool id_ok = seen[M_ID] && (val[M_ID].type == V_STRING || val[M_ID].type == V_INT);
	if (seen[M_ID] && !id_ok)
		return MG_JSCAN_SLOW;
	if (seen[M_METHOD]) {
		/* Escapes could hide a NUL; the slow path judges those. */
		if (val[M_METHOD].type != V_STRING || val[M_METHOD].escaped ||
		    span[M_METHOD].end - span[M_METHOD].start < 3 || seen[M_RESULT] ||
		    seen[M_ERROR] || (seen[M_PARAMS] && val[M_PARAMS].type != V_OBJECT))
			return MG_JSCAN_SLOW;
		out->kind = seen[M_ID] ? MG_JSCAN_REQUEST : MG_JSCAN_NOTIFICATION;
	} else {
		/* Errors are rare and their code matters to the caller: slow path. */
		if (!seen[M_RESULT] || seen[M_ERROR] || !id_ok)
			return MG_JSCAN_SLOW;
		out->kind = MG_JSCAN_RESULT;
	}
	out->id = span[M_ID];
	out->id_is_int = seen[M_ID] && val[M_ID].type == V_INT;
	out->id_int = out->id_is_int ? val[M_ID].ival : 0;
	out->method = span[M_METHOD];
	out->params = span[M_PARAMS];
	out->result = span[M_RESULT];
	out->has_cr_lf = s.crlf;
	return MG_JSCAN_OK;
}
