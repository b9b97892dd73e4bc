/*
 * yaml.c - YAML configuration loader: libyaml events -> configuration tree.
 *
 * The loader drives libyaml's event parser (yaml_parser_parse) and builds the
 * same tree (tree.h) the TOML parser builds, so config/schema.c never knows
 * which syntax a file used. It is iterative: open mappings and sequences sit
 * on an explicit stack of at most MG_CDOC_MAX_DEPTH + 1 entries (the root
 * mapping plus MG_CDOC_MAX_DEPTH nested levels), and the first error stops
 * the parse.
 *
 * What is accepted, and why:
 * - Exactly one document whose root is a mapping. Empty input, a file of
 *   comments, or a bare "---" give an empty root table; any other root, and
 *   a second document, are errors.
 * - Plain scalars are typed by the YAML 1.2 core schema: null (~, null, Null,
 *   NULL, empty), bool (true/True/TRUE/false/False/FALSE only: yes/no/on/off
 *   stay strings), int (decimal with optional sign, 0x hex, 0o octal; note
 *   that "0644" is decimal 644, not YAML 1.1 octal), float (.inf, -.inf,
 *   .nan, decimals with optional exponent). Integers that do not fit int64
 *   and floats that overflow a double are errors rather than silently
 *   becoming something else. Quoted and block scalars are strings.
 * - Tags: !!str, !!int, !!float, !!bool and !!null on scalars (any style)
 *   convert the value or fail if it does not fit; every other tag, including
 *   the non-specific "!" and tags on mappings or sequences, is rejected.
 * - Keys must be scalars and are stored as their text ("1: x" has key "1").
 *   A duplicate key is an error naming both places. A plain "<<" key (YAML
 *   1.1 merge) is an error; a quoted "<<" is an ordinary key.
 * - Aliases are rejected, which also rules out "billion laughs" expansion.
 *   Anchors are ignored: without aliases they have no effect, and ignoring
 *   them lets the alias itself be reported, which is the clearer error.
 * - Raw NUL bytes in the input are errors, but a double-quoted "\0" escape
 *   yields a string holding a NUL (tree.h strings carry a length); the
 *   schema decides whether such a string is acceptable.
 * - Limits: MG_CDOC_MAX_BYTES of input, MG_CDOC_MAX_DEPTH nested levels,
 *   MG_CDOC_MAX_NODES values; each is a located error, never a truncation.
 *
 * Locations: libyaml marks are 0-based and count columns in characters,
 * while tree.h wants 1-based byte columns. A forward-moving cursor over the
 * input (struct linemap) translates marks in amortised O(1), using libyaml's
 * own line breaks (LF, CR, CRLF, NEL, LS, PS) so that lines agree with the
 * marks. The input is validated up front (size, NUL bytes, UTF-8, characters
 * YAML forbids) so those errors carry our own located messages; libyaml's
 * remaining errors (problem, context, marks) are folded into one message.
 */
#include "config/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util/str.h"

#define TAG_PREFIX "tag:yaml.org,2002:"
#define QUOTE_MAX  48 /* bytes of a scalar quoted in a message */

/* Translates libyaml marks (line, character column) into 1-based byte
 * columns. The cursor only moves forward in the common case; a mark behind
 * it restarts the scan from the top (only error paths do that). */
struct linemap {
	const unsigned char *text;
	size_t len;
	size_t base;  /* where line 0 starts: after a UTF-8 BOM, as in libyaml */
	size_t line;  /* cursor: libyaml line number */
	size_t start; /* byte offset where `line` starts */
	size_t col;   /* cursor: characters from `start` */
	size_t pos;   /* byte offset of character `col` */
};

struct yparser {
	yaml_parser_t yp;
	struct mg_cdoc *doc;
	struct mg_cerror *err;
	const char *file; /* for err->loc: the caller's string, outlives the call */
	bool failed;
	struct linemap map;
	struct mg_cnode *stack[MG_CDOC_MAX_DEPTH + 1]; /* open tables and arrays */
	size_t depth;
	yaml_event_t key; /* pending mapping key, owned while have_key */
	bool have_key;
	struct mg_cloc key_loc;
	bool in_key;  /* a key's tag is being checked */
	size_t nodes; /* nodes in the document, the root included */
	bool seen_doc;
};

static void fail(struct yparser *p, struct mg_cloc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct yparser *p, struct mg_cloc loc, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	p->err->loc.file = p->file;
	p->err->loc.line = loc.line;
	p->err->loc.col = loc.col;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
	va_end(ap);
}

/* ---- locations ------------------------------------------------------------ */

/* Length of the line break at `i` (libyaml's set: LF, CR, CRLF, NEL, LS, PS),
 * or 0 when there is none. */
static size_t break_len(const unsigned char *s, size_t i, size_t n)
{
	if (s[i] == '\n')
		return 1;
	if (s[i] == '\r')
		return i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
	if (s[i] == 0xC2 && i + 1 < n && s[i + 1] == 0x85)
		return 2;
	if (s[i] == 0xE2 && i + 2 < n && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9))
		return 3;
	return 0;
}

/* Width of the UTF-8 sequence starting with `c` (the input is validated). */
static size_t utf8_width(unsigned char c)
{
	if (c < 0xC0)
		return 1;
	if (c < 0xE0)
		return 2;
	if (c < 0xF0)
		return 3;
	return 4;
}

static uint32_t clamp_u32(size_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void linemap_init(struct linemap *lm, const unsigned char *text, size_t len)
{
	lm->text = text;
	lm->len = len;
	lm->base = len >= 3 && text[0] == 0xEF && text[1] == 0xBB && text[2] == 0xBF ? 3 : 0;
	lm->line = 0;
	lm->start = lm->pos = lm->base;
	lm->col = 0;
}

static struct mg_cloc map_mark(struct yparser *p, yaml_mark_t m)
{
	struct linemap *lm = &p->map;
	struct mg_cloc loc = { .file = p->file, .line = clamp_u32(m.line + 1) };

	if (m.line < lm->line) {
		lm->line = 0;
		lm->start = lm->pos = lm->base;
		lm->col = 0;
	}
	while (lm->line < m.line) {
		size_t i = lm->pos, b = 0;
		while (i < lm->len && (b = break_len(lm->text, i, lm->len)) == 0)
			i++;
		if (i >= lm->len)
			break; /* past the last line (libyaml's end-of-stream mark) */
		lm->line++;
		lm->start = lm->pos = i + b;
		lm->col = 0;
	}
	if (lm->line != m.line) {
		loc.col = clamp_u32(m.column + 1);
		return loc;
	}
	if (m.column < lm->col) {
		lm->col = 0;
		lm->pos = lm->start;
	}
	while (lm->col < m.column && lm->pos < lm->len && !break_len(lm->text, lm->pos, lm->len)) {
		size_t w = utf8_width(lm->text[lm->pos]);
		lm->pos = w > lm->len - lm->pos ? lm->len : lm->pos + w;
		lm->col++;
	}
	loc.col = clamp_u32(lm->pos - lm->start + 1 + (m.column - lm->col));
	return loc;
}

/* Location of byte `off` (error paths only: a scan from the top). */
static struct mg_cloc locate_offset(struct yparser *p, size_t off)
{
	const struct linemap *lm = &p->map;
	size_t line = 1, start = lm->base;

	if (off > lm->len)
		off = lm->len;
	if (off < start)
		start = 0;
	for (size_t i = start; i < off;) {
		size_t b = break_len(lm->text, i, lm->len);
		if (b && i + b <= off) {
			line++;
			i += b;
			start = i;
		} else {
			i++;
		}
	}
	return (struct mg_cloc){ .file = p->file,
		                 .line = clamp_u32(line),
		                 .col = clamp_u32(off - start + 1) };
}

/* ---- input checks ---------------------------------------------------------- */

/* Rejects what libyaml's reader would reject, with our own located message:
 * NUL bytes, invalid UTF-8 and the characters YAML does not allow. */
static int check_text(struct yparser *p, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		if (c == 0) {
			fail(p, locate_offset(p, i), "NUL byte (0x00) is not allowed");
			return -1;
		}
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
				fail(p, locate_offset(p, i),
				     "control character U+%04X is not allowed", c);
				return -1;
			}
			i++;
			continue;
		}
		size_t w;
		uint32_t cp, min;
		if (c >= 0xC2 && c <= 0xDF) {
			w = 2, cp = c & 0x1F, min = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			w = 3, cp = c & 0x0F, min = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			w = 4, cp = c & 0x07, min = 0x10000;
		} else {
			fail(p, locate_offset(p, i),
			     "invalid UTF-8: byte 0x%02X cannot start a character", c);
			return -1;
		}
		for (size_t k = 1; k < w; k++) {
			if (i + k >= n || (s[i + k] & 0xC0) != 0x80) {
				fail(p, locate_offset(p, i),
				     "invalid UTF-8: byte 0x%02X starts a truncated sequence", c);
				return -1;
			}
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min) {
			fail(p, locate_offset(p, i), "invalid UTF-8: overlong encoding of U+%04X",
			     cp);
			return -1;
		}
		if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
			fail(p, locate_offset(p, i),
			     "invalid UTF-8: encodes U+%04X, which is not a character", cp);
			return -1;
		}
		if (cp >= 0x80 && cp <= 0x9F && cp != 0x85) {
			fail(p, locate_offset(p, i), "control character U+%04X is not allowed", cp);
			return -1;
		}
		if (cp == 0xFFFE || cp == 0xFFFF) {
			fail(p, locate_offset(p, i), "noncharacter U+%04X is not allowed", cp);
			return -1;
		}
		i += w;
	}
	return 0;
}

/* ---- message helpers ------------------------------------------------------- */

/* Writes `n` bytes of `s` escaped for a message (control bytes as \xNN),
 * shortened to about QUOTE_MAX bytes with "..." appended. */
static void escape(char *out, size_t cap, const char *s, size_t n)
{
	size_t o = 0, i = 0;
	bool cut = false;

	if (n > QUOTE_MAX) {
		n = QUOTE_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--; /* do not split a UTF-8 sequence */
		cut = true;
	}
	for (; i < n && o + 8 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7F) {
			o += (size_t)snprintf(out + o, cap - o, "\\x%02X", c);
		} else {
			out[o++] = (char)c;
		}
	}
	if (i < n)
		cut = true;
	if (cut) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* A tag as the user would write it: "!!int" for the core tags. */
static void tag_name(char *out, size_t cap, const char *tag)
{
	size_t plen = sizeof TAG_PREFIX - 1;

	if (strncmp(tag, TAG_PREFIX, plen) == 0) {
		memcpy(out, "!!", 2);
		escape(out + 2, cap - 2, tag + plen, strlen(tag + plen));
	} else {
		escape(out, cap, tag, strlen(tag));
	}
}

/* ---- scalar typing (YAML 1.2 core schema) ---------------------------------- */

enum kind { K_NULL, K_BOOL, K_INT, K_FLOAT, K_STR };

static bool is_null(const char *s, size_t n)
{
	return n == 0 || (n == 1 && s[0] == '~') ||
	       (n == 4 &&
	        (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

/* 1 true, 0 false, -1 not a core-schema bool. */
static int parse_bool(const char *s, size_t n)
{
	if (n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) || !memcmp(s, "TRUE", 4)))
		return 1;
	if (n == 5 && (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) || !memcmp(s, "FALSE", 5)))
		return 0;
	return -1;
}

/* true when `s` has the form of a core-schema integer; *range_err tells
 * whether it fits int64. */
static bool parse_int(const char *s, size_t n, int64_t *out, bool *range_err)
{
	size_t i = 0;
	unsigned base = 10;
	bool neg = false;

	*range_err = false;
	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
		base = s[1] == 'x' ? 16 : 8;
		i = 2;
	} else if (n > 0 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i >= n)
		return false;
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
	for (; i < n; i++) {
		int d = mg_hex_value((unsigned char)s[i]);
		if (d < 0 || d >= (int)base)
			return false;
		if (v > (limit - (uint64_t)d) / base)
			*range_err = true;
		else
			v = v * base + (uint64_t)d;
	}
	if (*range_err)
		return true;
	*out = neg && v > 0 ? -(int64_t)(v - 1) - 1 : (int64_t)v;
	return true;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* true when `s` has the form of a core-schema float; *range_err is set when
 * it overflows a double. `s` must be NUL-terminated at `n`. */
static bool parse_float(const char *s, size_t n, double *out, bool *range_err)
{
	size_t i = 0, digits = 0;
	bool neg = false;

	*range_err = false;
	if (n == 4 && (!memcmp(s, ".nan", 4) || !memcmp(s, ".NaN", 4) || !memcmp(s, ".NAN", 4))) {
		*out = NAN;
		return true;
	}
	if (n > 0 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (n - i == 4 &&
	    (!memcmp(s + i, ".inf", 4) || !memcmp(s + i, ".Inf", 4) || !memcmp(s + i, ".INF", 4))) {
		*out = neg ? -INFINITY : INFINITY;
		return true;
	}
	while (i < n && is_digit(s[i]))
		i++, digits++;
	if (i < n && s[i] == '.') {
		i++;
		while (i < n && is_digit(s[i]))
			i++, digits++;
	}
	if (digits == 0)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		if (i >= n || !is_digit(s[i]))
			return false;
		while (i < n && is_digit(s[i]))
			i++;
	}
	if (i != n || s[n] != '\0')
		return false;
	errno = 0;
	*out = strtod(s, NULL);
	if (errno == ERANGE && isinf(*out))
		*range_err = true;
	return true;
}

/* "value of \"port\": " when the value being read sits under a key (or
 * "mapping key: " for a key), so that messages name the key as well as the
 * place. */
static void key_context(const struct yparser *p, char *out, size_t cap)
{
	char k[QUOTE_MAX * 4 + 16];

	out[0] = '\0';
	if (p->in_key) {
		snprintf(out, cap, "mapping key: ");
		return;
	}
	if (!p->have_key)
		return;
	escape(k, sizeof k, (const char *)p->key.data.scalar.value, p->key.data.scalar.length);
	snprintf(out, cap, "value of \"%s\": ", k);
}

struct scalar {
	enum kind kind;
	int64_t i;
	double f;
	bool b;
};

/* Types a scalar event by its tag or, for untagged plain scalars, by the core
 * schema. Returns 0, or -1 after fail(). */
static int resolve(struct yparser *p, const yaml_event_t *ev, struct mg_cloc loc, struct scalar *v)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	char q[QUOTE_MAX * 4 + 16], t[QUOTE_MAX * 4 + 16], ctx[QUOTE_MAX * 4 + 32];
	bool range_err = false;
	int b;

	memset(v, 0, sizeof *v);
	if (!tag) {
		v->kind = K_STR;
		if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
			return 0;
		if (is_null(s, n))
			v->kind = K_NULL;
		else if ((b = parse_bool(s, n)) >= 0)
			v->kind = K_BOOL, v->b = b;
		else if (parse_int(s, n, &v->i, &range_err))
			v->kind = K_INT;
		else if (parse_float(s, n, &v->f, &range_err))
			v->kind = K_FLOAT;
	} else if (!strcmp(tag, TAG_PREFIX "str")) {
		v->kind = K_STR;
	} else if (!strcmp(tag, TAG_PREFIX "null")) {
		v->kind = K_NULL;
		if (!is_null(s, n))
			goto misfit;
	} else if (!strcmp(tag, TAG_PREFIX "bool")) {
		v->kind = K_BOOL;
		if ((b = parse_bool(s, n)) < 0)
			goto misfit;
		v->b = b;
	} else if (!strcmp(tag, TAG_PREFIX "int")) {
		v->kind = K_INT;
		if (!parse_int(s, n, &v->i, &range_err))
			goto misfit;
	} else if (!strcmp(tag, TAG_PREFIX "float")) {
		v->kind = K_FLOAT;
		/* Decimal integers have the float form; hex and octal do not. */
		if (parse_float(s, n, &v->f, &range_err))
			;
		else if (parse_int(s, n, &v->i, &range_err))
			v->f = (double)v->i;
		else
			goto misfit;
	} else {
		tag_name(t, sizeof t, tag);
		key_context(p, ctx, sizeof ctx);
		fail(p, loc,
		     "%stag %s is not supported (only !!str, !!int, !!float, !!bool and !!null)",
		     ctx, t);
		return -1;
	}
	if (range_err) {
		escape(q, sizeof q, s, n);
		key_context(p, ctx, sizeof ctx);
		if (v->kind == K_INT)
			fail(p, loc,
			     "%sinteger \"%s\" is out of range (expected -9223372036854775808 .. "
			     "9223372036854775807)",
			     ctx, q);
		else
			fail(p, loc, "%sfloat \"%s\" is out of range", ctx, q);
		return -1;
	}
	return 0;

misfit:
	escape(q, sizeof q, s, n);
	key_context(p, ctx, sizeof ctx);
	tag_name(t, sizeof t, tag);
	fail(p, loc, "%s\"%s\" is not a valid %s value", ctx, q, t);
	return -1;
}

static struct mg_cnode *new_node(struct yparser *p, enum mg_cnode_type type, struct mg_cloc loc)
{
	if (p->nodes >= MG_CDOC_MAX_NODES) {
		fail(p, loc, "too many values (the limit is %u)", (unsigned)MG_CDOC_MAX_NODES);
		return NULL;
	}
	struct mg_cnode *node = mg_cnode_new(p->doc, type, loc.line, loc.col);
	if (!node) {
		fail(p, loc, "out of memory");
		return NULL;
	}
	p->nodes++;
	return node;
}

/* Builds the node for a scalar value. NULL after fail(). */
static struct mg_cnode *scalar_node(struct yparser *p, const yaml_event_t *ev, struct mg_cloc loc)
{
	static const enum mg_cnode_type types[] = {
		[K_NULL] = MG_CNODE_NULL,   [K_BOOL] = MG_CNODE_BOOL,  [K_INT] = MG_CNODE_INTEGER,
		[K_FLOAT] = MG_CNODE_FLOAT, [K_STR] = MG_CNODE_STRING,
	};
	struct scalar v;

	if (resolve(p, ev, loc, &v) < 0)
		return NULL;
	struct mg_cnode *node = new_node(p, types[v.kind], loc);
	if (!node)
		return NULL;
	node->i = v.i;
	node->f = v.f;
	node->b = v.b;
	if (v.kind == K_STR) {
		node->len = ev->data.scalar.length;
		node->str = mg_cdoc_strndup(p->doc, (const char *)ev->data.scalar.value, node->len);
		if (!node->str) {
			fail(p, loc, "out of memory");
			return NULL;
		}
	}
	return node;
}

/* ---- tree building ----------------------------------------------------------- */

static void drop_key(struct yparser *p)
{
	if (p->have_key) {
		yaml_event_delete(&p->key);
		p->have_key = false;
	}
}

/* Adds `node` to the innermost open container (under the pending key when it
 * is a table). */
static int attach(struct yparser *p, struct mg_cnode *node)
{
	struct mg_cnode *parent = p->stack[p->depth - 1];

	if (parent->type == MG_CNODE_ARRAY) {
		mg_cnode_push(parent, node);
		return 0;
	}
	node->key_loc = p->key_loc;
	node->key_loc.file = node->loc.file;
	int r = mg_cnode_set(p->doc, parent, (const char *)p->key.data.scalar.value,
	                     p->key.data.scalar.length, node);
	drop_key(p);
	if (r < 0) {
		fail(p, node->loc, "out of memory");
		return -1;
	}
	/* Duplicates were rejected when the key was read. */
	return 0;
}

/* True when the next node event is a mapping key. */
static bool expecting_key(const struct yparser *p)
{
	return p->depth > 0 && p->stack[p->depth - 1]->type == MG_CNODE_TABLE && !p->have_key;
}

/* Takes ownership of `ev` as the pending key of the innermost table. */
static int on_key(struct yparser *p, yaml_event_t *ev, bool *kept)
{
	struct mg_cloc loc = map_mark(p, ev->start_mark);
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	char q[QUOTE_MAX * 4 + 16];

	if (ev->data.scalar.tag) {
		/* Validate the tag and value; the key itself stays text. */
		struct scalar v;
		p->in_key = true;
		int r = resolve(p, ev, loc, &v);
		p->in_key = false;
		if (r < 0)
			return -1;
	}
	if (!ev->data.scalar.tag && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && n == 2 &&
	    !memcmp(s, "<<", 2)) {
		fail(p, loc, "merge keys (<<) are not supported in configuration files");
		return -1;
	}
	const struct mg_cnode *first = mg_cnode_get(p->doc, p->stack[p->depth - 1], s, n);
	if (first) {
		escape(q, sizeof q, s, n);
		fail(p, loc, "duplicate key \"%s\" (first at line %u, column %u)", q,
		     (unsigned)first->key_loc.line, (unsigned)first->key_loc.col);
		return -1;
	}
	p->key = *ev;
	p->have_key = true;
	p->key_loc = loc;
	*kept = true;
	return 0;
}

static int on_scalar(struct yparser *p, yaml_event_t *ev, bool *kept)
{
	if (expecting_key(p))
		return on_key(p, ev, kept);

	struct mg_cloc loc = map_mark(p, ev->start_mark);
	if (p->depth == 0) {
		/* A bare "---" (or "--- # comment") is an empty document. */
		if (!ev->data.scalar.tag && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    ev->data.scalar.length == 0)
			return 0;
		char q[QUOTE_MAX * 4 + 16];
		escape(q, sizeof q, (const char *)ev->data.scalar.value, ev->data.scalar.length);
		fail(p, loc,
		     "the document must be a mapping (key: value lines), found the scalar \"%s\"",
		     q);
		return -1;
	}
	struct mg_cnode *node = scalar_node(p, ev, loc);
	if (!node)
		return -1;
	return attach(p, node);
}

static int on_start(struct yparser *p, const yaml_event_t *ev)
{
	bool map = ev->type == YAML_MAPPING_START_EVENT;
	const char *what = map ? "mapping" : "sequence";
	const char *tag =
	    (const char *)(map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
	struct mg_cloc loc = map_mark(p, ev->start_mark);

	if (p->depth == 0 && !map) {
		fail(p, loc, "the document must be a mapping (key: value lines), found a sequence");
		return -1;
	}
	if (expecting_key(p)) {
		fail(p, loc, "mapping keys must be scalars, found a %s", what);
		return -1;
	}
	if (tag) {
		char t[QUOTE_MAX * 4 + 16], ctx[QUOTE_MAX * 4 + 32];
		tag_name(t, sizeof t, tag);
		key_context(p, ctx, sizeof ctx);
		fail(p, loc,
		     "%stag %s is not supported (only !!str, !!int, !!float, !!bool and !!null, on "
		     "scalars)",
		     ctx, t);
		return -1;
	}
	if (p->depth > MG_CDOC_MAX_DEPTH) {
		fail(p, loc, "nesting is too deep (the limit is %d levels)", MG_CDOC_MAX_DEPTH);
		return -1;
	}
	struct mg_cnode *node;
	if (p->depth == 0) {
		node = mg_cdoc_root(p->doc);
		node->loc.line = node->key_loc.line = loc.line;
		node->loc.col = node->key_loc.col = loc.col;
	} else {
		node = new_node(p, map ? MG_CNODE_TABLE : MG_CNODE_ARRAY, loc);
		if (!node || attach(p, node) < 0)
			return -1;
	}
	p->stack[p->depth++] = node;
	return 0;
}

/* Folds libyaml's error (problem, context and their marks) into err. */
static void libyaml_error(struct yparser *p)
{
	const yaml_parser_t *yp = &p->yp;
	const char *problem = yp->problem ? yp->problem : "unknown error";

	switch (yp->error) {
	case YAML_MEMORY_ERROR:
		fail(p, (struct mg_cloc){ .file = p->file }, "out of memory");
		break;
	case YAML_READER_ERROR: {
		struct mg_cloc loc = locate_offset(p, yp->problem_offset);
		if (yp->problem_value != -1)
			fail(p, loc, "invalid input: %s (#%X)", problem,
			     (unsigned)yp->problem_value);
		else
			fail(p, loc, "invalid input: %s", problem);
		break;
	}
	case YAML_SCANNER_ERROR:
	case YAML_PARSER_ERROR: {
		/* The context mark comes first in the text: map it first. */
		struct mg_cloc cloc = map_mark(p, yp->context_mark);
		struct mg_cloc ploc = map_mark(p, yp->problem_mark);
		const struct linemap *lm = &p->map;
		if (lm->line == yp->problem_mark.line && lm->col == yp->problem_mark.column &&
		    lm->pos < lm->len && lm->text[lm->pos] == '\t') {
			/* The most common YAML mistake gets a plain answer. */
			fail(p, ploc, "syntax error: tab character; YAML indentation uses spaces");
			break;
		}
		if (yp->context) {
			if (cloc.line != ploc.line || cloc.col != ploc.col)
				fail(p, ploc, "syntax error: %s (%s at line %u, column %u)",
				     problem, yp->context, (unsigned)cloc.line, (unsigned)cloc.col);
			else
				fail(p, ploc, "syntax error: %s (%s)", problem, yp->context);
		} else {
			fail(p, ploc, "syntax error: %s", problem);
		}
		break;
	}
	default:
		fail(p, map_mark(p, yp->problem_mark), "syntax error: %s", problem);
		break;
	}
}

static int on_event(struct yparser *p, yaml_event_t *ev, bool *kept, bool *done)
{
	switch (ev->type) {
	case YAML_STREAM_START_EVENT:
	case YAML_DOCUMENT_END_EVENT:
		return 0;
	case YAML_NO_EVENT:
		/* Only after STREAM_END, which ends the loop; never spin on it. */
		fail(p, map_mark(p, ev->start_mark), "syntax error: unexpected end of input");
		return -1;
	case YAML_STREAM_END_EVENT:
		*done = true;
		return 0;
	case YAML_DOCUMENT_START_EVENT:
		if (p->seen_doc) {
			fail(p, map_mark(p, ev->start_mark),
			     "a second document is not allowed (the file must hold exactly one)");
			return -1;
		}
		p->seen_doc = true;
		return 0;
	case YAML_ALIAS_EVENT: {
		char q[QUOTE_MAX * 4 + 16];
		const char *a = (const char *)ev->data.alias.anchor;
		escape(q, sizeof q, a, strlen(a));
		fail(p, map_mark(p, ev->start_mark),
		     "aliases (*name) are not supported in configuration files (found *%s)", q);
		return -1;
	}
	case YAML_SCALAR_EVENT:
		return on_scalar(p, ev, kept);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		return on_start(p, ev);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		/* libyaml always pairs a key with a value; never let a stray key
		 * outlive its table. */
		drop_key(p);
		if (p->depth > 0)
			p->depth--;
		return 0;
	}
	return 0;
}

struct mg_cdoc *mg_yaml_parse(const char *text, size_t len, const char *file, struct mg_cerror *err)
{
	struct yparser p = { .err = err, .file = file ? file : "<input>", .nodes = 1 };
	const unsigned char *in = (const unsigned char *)(text ? text : "");
	bool inited = false;

	memset(err, 0, sizeof *err);
	if (!text)
		len = 0;
	linemap_init(&p.map, in, len);
	if (len > MG_CDOC_MAX_BYTES) {
		fail(&p, (struct mg_cloc){ .file = p.file, .line = 1, .col = 1 },
		     "input is too large (%zu bytes, the limit is %u)", len,
		     (unsigned)MG_CDOC_MAX_BYTES);
		goto out;
	}
	if (check_text(&p, in, len) < 0)
		goto out;
	p.doc = mg_cdoc_new(file);
	if (!p.doc || !yaml_parser_initialize(&p.yp)) {
		fail(&p, (struct mg_cloc){ .file = p.file }, "out of memory");
		goto out;
	}
	inited = true;
	yaml_parser_set_input_string(&p.yp, in, len);

	for (bool done = false; !done;) {
		yaml_event_t ev;
		bool kept = false;
		if (!yaml_parser_parse(&p.yp, &ev)) {
			libyaml_error(&p);
			goto out;
		}
		int r = on_event(&p, &ev, &kept, &done);
		if (!kept)
			yaml_event_delete(&ev);
		if (r < 0)
			goto out;
	}

out:
	drop_key(&p);
	if (inited)
		yaml_parser_delete(&p.yp);
	if (p.failed) {
		mg_cdoc_free(p.doc);
		return NULL;
	}
	return p.doc;
}
