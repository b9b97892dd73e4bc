/*
 * toml.c - TOML 1.0.0 parser producing the configuration tree (tree.h).
 *
 * A hand-written recursive-descent parser that works on the bytes directly;
 * there is no separate tokenizer. Before parsing, the whole input is scanned
 * once for what TOML forbids everywhere: invalid UTF-8, NUL and the other
 * control characters, a CR that is not part of a CRLF. The parser then runs
 * over the bytes *before* the first such byte (`len` is cut there); when it
 * reaches that point without an earlier error, the error is that byte. So
 * the rest of this file may assume clean input: every byte below 0x20 is a
 * tab, a LF or the CR of a CRLF, and every multi-byte sequence is valid.
 *
 * TOML's "a table is defined only once" rules live in mg_cnode.flags:
 *   TF_DEFINED  a [header] table or a [[header]] element: neither another
 *               header nor a dotted key may define it again;
 *   TF_DOTTED   created (or extended) by a dotted key: a header may not
 *               define it, though it may define sub-tables of it;
 *   TF_FROZEN   an inline table or a static array: nothing may add to it;
 *   TF_AOT      an array created by [[header]]: [[header]] appends to it and
 *               a longer header descends into its last element.
 * A table with none of them was made implicitly by a header path ([a.b]
 * makes `a`); a later [a] may still define it, and dotted keys extend it.
 *
 * Nesting (tables by header path or dotted key, arrays, inline tables) is
 * limited to MG_CDOC_MAX_DEPTH, which also bounds the recursion of arrays
 * and inline tables. Errors: the first one only, located at the byte where
 * it was detected (line, byte column; a leading BOM is not counted), with a
 * message saying what was expected and what was found.
 *
 * Date-times keep their text in `str`, normalized the way toml-test writes
 * them: 'T' between date and time, upper-case 'Z', and a fraction of
 * seconds padded to at least three digits (".6" becomes ".600"; longer
 * fractions are kept as written). Newlines inside multi-line strings are
 * stored as LF even when the file uses CRLF.
 */
#include "config/toml.h"

#include "util/buf.h"
#include "util/str.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TF_DEFINED 0x1u
#define TF_DOTTED  0x2u
#define TF_FROZEN  0x4u
#define TF_AOT     0x8u

#define NO_BAD    SIZE_MAX
#define MAX_PARTS (2 * MG_CDOC_MAX_DEPTH + 2)

/* A place in the input. */
struct pos {
	size_t off;
	uint32_t line, col;
};

/* One part of a dotted key, decoded into parser.keys. */
struct keypart {
	size_t off, len;
	struct pos at;
};

/* Text for messages; returned by value so it can be used inline. */
struct desc {
	char s[64];
};

struct path {
	char s[160];
};

struct parser {
	const char *s;
	size_t len; /* bytes to parse: everything before the first forbidden byte */
	size_t pos;
	size_t bom; /* 3 when the input starts with a BOM */
	uint32_t line;
	size_t line_start;
	size_t bad; /* offset of the first forbidden byte, or NO_BAD */
	char bad_msg[128];
	const char *file;
	struct mg_cdoc *doc;
	struct mg_cnode *root;
	struct mg_cerror *err;
	bool failed;
	size_t nodes;
	locale_t c_locale;  /* for strtod_l, made on the first float */
	struct mg_buf str;  /* scratch: a decoded string value, a float's digits */
	struct mg_buf keys; /* decoded key parts of the keys being parsed */
	struct keypart parts[MAX_PARTS];
	size_t nparts;
	struct mg_cnode *table; /* table of the current [section] */
	unsigned table_depth;
};

static struct mg_cnode *parse_value(struct parser *p, unsigned depth);

/* ---- positions and errors ------------------------------------------------ */

static struct pos here(const struct parser *p)
{
	struct pos at = { p->pos, p->line, (uint32_t)(p->pos - p->line_start + 1) };
	return at;
}

/* The position of any offset; scans from the start, so only for errors. */
static struct pos pos_of(const struct parser *p, size_t off)
{
	struct pos at = { off, 1, 0 };
	size_t line_start = p->bom;
	for (size_t i = p->bom; i < off; i++) {
		if (p->s[i] == '\n') {
			at.line++;
			line_start = i + 1;
		}
	}
	at.col = (uint32_t)(off - line_start + 1);
	return at;
}

static void fail(struct parser *p, struct pos at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct parser *p, struct pos at, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	if (p->bad != NO_BAD && at.off >= p->bad) {
		/* The parser ran into the forbidden byte: that is the error. */
		at = pos_of(p, p->bad);
		snprintf(p->err->msg, sizeof p->err->msg, "%s", p->bad_msg);
	} else {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
		va_end(ap);
	}
	p->err->loc.file = p->file;
	p->err->loc.line = at.line;
	p->err->loc.col = at.col;
}

static void fail_oom(struct parser *p)
{
	fail(p, here(p), "out of memory");
}

/* ---- characters ------------------------------------------------------------ */

static int peek(const struct parser *p, size_t k)
{
	return p->pos + k < p->len ? (unsigned char)p->s[p->pos + k] : -1;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_bare(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' ||
	       c == '-';
}

/* Characters that make up a mistyped value or key, for messages. */
static bool is_word(int c)
{
	return is_bare(c) || c == '.' || c == '+' || c == ':';
}

/* What may follow a number, boolean or date-time. */
static bool is_delim(int c)
{
	return c < 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '#' || c == ',' ||
	       c == ']' || c == '}';
}

/* Decodes the (valid) UTF-8 sequence at `s`; returns its length. */
static size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
	size_t n = s[0] < 0x80 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
	if (n > avail)
		n = avail;
	uint32_t v = n == 1 ? s[0] : n == 2 ? s[0] & 0x1Fu : n == 3 ? s[0] & 0x0Fu : s[0] & 0x07u;
	for (size_t i = 1; i < n; i++)
		v = v << 6 | (s[i] & 0x3Fu);
	*cp = v;
	return n;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* "'x'", "'\n'", "'é' (U+00E9)" or "end of input" for the byte at `off`. */
static struct desc describe(const struct parser *p, size_t off)
{
	struct desc d;
	if (off >= p->len) {
		snprintf(d.s, sizeof d.s, "end of input");
		return d;
	}
	unsigned char c = (unsigned char)p->s[off];
	if (c == '\n' || c == '\r')
		snprintf(d.s, sizeof d.s, "'\\n'");
	else if (c == '\t')
		snprintf(d.s, sizeof d.s, "'\\t'");
	else if (c == '\'')
		snprintf(d.s, sizeof d.s, "\"'\"");
	else if (c < 0x80)
		snprintf(d.s, sizeof d.s, "'%c'", c);
	else {
		uint32_t cp;
		size_t n = utf8_decode((const unsigned char *)p->s + off, p->len - off, &cp);
		snprintf(d.s, sizeof d.s, "'%.*s' (U+%04X)", (int)n, p->s + off, (unsigned)cp);
	}
	return d;
}

/* Like describe(), but shows a whole mistyped word: "'truthy'". */
static struct desc describe_word(const struct parser *p, size_t off)
{
	if (off >= p->len || !is_word((unsigned char)p->s[off]))
		return describe(p, off);
	size_t end = off;
	while (end < p->len && end - off < 40 && is_word((unsigned char)p->s[end]))
		end++;
	struct desc d;
	snprintf(d.s, sizeof d.s, "'%.*s%s'", (int)(end - off), p->s + off,
	         end < p->len && is_word((unsigned char)p->s[end]) ? "..." : "");
	return d;
}

/* ---- key names for messages ------------------------------------------------ */

static void path_add(struct path *pa, size_t *used, const char *s, size_t n)
{
	size_t room = sizeof pa->s - 4 - *used; /* keep space for "..." */
	if (*used > sizeof pa->s - 4)
		return;
	if (n > room) {
		memcpy(pa->s + *used, s, room);
		*used += room;
		memcpy(pa->s + *used, "...", 4);
		*used = sizeof pa->s; /* full */
		return;
	}
	memcpy(pa->s + *used, s, n);
	*used += n;
	pa->s[*used] = '\0';
}

/* Appends one key part: bare when it can be, else in single quotes with
 * quotes, backslashes and control characters escaped. For messages only. */
static void path_add_key(struct path *pa, size_t *used, const char *key, size_t len)
{
	bool bare = len > 0;
	for (size_t i = 0; i < len && bare; i++)
		bare = is_bare((unsigned char)key[i]);
	if (*used)
		path_add(pa, used, ".", 1);
	if (bare) {
		path_add(pa, used, key, len);
		return;
	}
	path_add(pa, used, "'", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];
		char esc[8];
		if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof esc, "\\u%04X", c);
			path_add(pa, used, esc, strlen(esc));
		} else if (c == '\'' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			path_add(pa, used, esc, 2);
		} else {
			path_add(pa, used, key + i, 1);
		}
	}
	path_add(pa, used, "'", 1);
}

static const char *part_key(const struct parser *p, const struct keypart *k)
{
	return p->keys.data ? p->keys.data + k->off : "";
}

/* The full dotted name of a member: the keys from the root down to `t`,
 * then parts [first, first + count) of the key being parsed. */
static struct path key_path(const struct parser *p, const struct mg_cnode *t, size_t first,
                            size_t count)
{
	struct path pa;
	size_t used = 0;
	const struct mg_cnode *up[2 * MG_CDOC_MAX_DEPTH + 4];
	size_t n = 0;
	pa.s[0] = '\0';
	for (; t && n < sizeof up / sizeof up[0]; t = t->parent) {
		if (t->key)
			up[n++] = t;
	}
	while (n--)
		path_add_key(&pa, &used, up[n]->key, up[n]->key_len);
	for (size_t i = first; i < first + count; i++)
		path_add_key(&pa, &used, part_key(p, &p->parts[i]), p->parts[i].len);
	return pa;
}

/* ---- nodes ---------------------------------------------------------------- */

static struct mg_cnode *new_node(struct parser *p, enum mg_cnode_type type, struct pos at)
{
	if (p->nodes >= MG_CDOC_MAX_NODES) {
		fail(p, at, "too many values: the limit is %u", (unsigned)MG_CDOC_MAX_NODES);
		return NULL;
	}
	struct mg_cnode *n = mg_cnode_new(p->doc, type, at.line, at.col);
	if (!n) {
		fail_oom(p);
		return NULL;
	}
	p->nodes++;
	return n;
}

static bool enter(struct parser *p, unsigned depth, struct pos at)
{
	if (depth <= MG_CDOC_MAX_DEPTH)
		return true;
	fail(p, at, "tables and arrays are nested deeper than %d levels", MG_CDOC_MAX_DEPTH);
	return false;
}

static bool set_member(struct parser *p, struct mg_cnode *t, const struct keypart *k,
                       struct mg_cnode *child)
{
	child->key_loc.line = k->at.line;
	child->key_loc.col = k->at.col;
	if (mg_cnode_set(p->doc, t, part_key(p, k), k->len, child) == 0)
		return true;
	fail_oom(p); /* duplicates were checked by the caller */
	return false;
}

static bool put(struct parser *p, struct mg_buf *b, const char *s, size_t n)
{
	if (mg_buf_append(b, s, n) == 0)
		return true;
	fail_oom(p);
	return false;
}

/* ---- whitespace, newlines, comments -------------------------------------- */

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t'))
		p->pos++;
}

/* 1 for LF, 2 for CRLF, 0 otherwise. A CR is always followed by LF here. */
static size_t newline_len(const struct parser *p)
{
	int c = peek(p, 0);
	return c == '\n' ? 1 : c == '\r' ? 2 : 0;
}

static void take_newline(struct parser *p, size_t n)
{
	p->pos += n;
	p->line++;
	p->line_start = p->pos;
}

static void skip_comment(struct parser *p)
{
	if (peek(p, 0) != '#')
		return;
	const char *nl = memchr(p->s + p->pos, '\n', p->len - p->pos);
	if (!nl) {
		p->pos = p->len;
		return;
	}
	p->pos = (size_t)(nl - p->s);
	if (p->s[p->pos - 1] == '\r')
		p->pos--;
}

/* Whitespace, comments and newlines, as allowed between array elements. */
static void skip_ws_nl(struct parser *p)
{
	for (;;) {
		skip_ws(p);
		skip_comment(p);
		size_t n = newline_len(p);
		if (!n)
			return;
		take_newline(p, n);
	}
}

/* ---- strings ----------------------------------------------------------------- */

static bool parse_unicode_escape(struct parser *p, struct mg_buf *out, int ndig)
{
	struct pos at = here(p); /* the backslash */
	uint32_t cp = 0;
	for (int i = 0; i < ndig; i++) {
		int v = mg_hex_value(peek(p, 2 + (size_t)i));
		if (v < 0) {
			p->pos += 2 + (size_t)i;
			fail(p, here(p), "expected %d hex digits after '\\%c', found %s", ndig,
			     ndig == 4 ? 'u' : 'U', describe(p, p->pos).s);
			return false;
		}
		cp = cp << 4 | (uint32_t)v;
	}
	const char *text = p->s + p->pos + 1;
	if (cp >= 0xD800 && cp <= 0xDFFF) {
		fail(p, at, "escape '\\%.*s' is a surrogate, not a Unicode scalar value", ndig + 1,
		     text);
		return false;
	}
	if (cp > 0x10FFFF) {
		fail(p, at, "escape '\\%.*s' is beyond U+10FFFF", ndig + 1, text);
		return false;
	}
	char enc[4];
	p->pos += 2 + (size_t)ndig;
	return put(p, out, enc, utf8_encode(cp, enc));
}

/* At a backslash in a basic string: appends the escaped character. */
static bool parse_escape(struct parser *p, struct mg_buf *out)
{
	struct pos at = here(p);
	int c = peek(p, 1);
	char ch;
	switch (c) {
	case 'b':
		ch = '\b';
		break;
	case 't':
		ch = '\t';
		break;
	case 'n':
		ch = '\n';
		break;
	case 'f':
		ch = '\f';
		break;
	case 'r':
		ch = '\r';
		break;
	case '"':
		ch = '"';
		break;
	case '\\':
		ch = '\\';
		break;
	case 'u':
		return parse_unicode_escape(p, out, 4);
	case 'U':
		return parse_unicode_escape(p, out, 8);
	default:
		if (c < 0) {
			p->pos++;
			at = here(p);
		}
		if (c == 'x' || c == 'e')
			fail(p, at,
			     "escape '\\%c' is TOML 1.1; TOML 1.0 allows \\b \\t \\n \\f \\r \\\" "
			     "\\\\ \\uXXXX and \\UXXXXXXXX",
			     c);
		else
			fail(p, at,
			     "invalid escape: expected one of b t n f r \" \\ u U after '\\', "
			     "found %s",
			     describe(p, p->pos + (c < 0 ? 0 : 1)).s);
		return false;
	}
	p->pos += 2;
	return put(p, out, &ch, 1);
}

/* At a backslash in a multi-line basic string: when only whitespace follows
 * on its line, skips it and all whitespace and newlines after it. */
static bool line_ending_backslash(struct parser *p)
{
	size_t k = 1;
	while (peek(p, k) == ' ' || peek(p, k) == '\t')
		k++;
	int c = peek(p, k);
	if (c != '\n' && c != '\r') {
		if (k > 1)
			fail(p, c < 0 ? pos_of(p, p->pos + k) : here(p),
			     "a backslash followed by whitespace must end the line, found %s "
			     "after the whitespace",
			     describe(p, p->pos + k).s);
		return false;
	}
	p->pos += k;
	for (;;) {
		skip_ws(p);
		size_t n = newline_len(p);
		if (!n)
			return true;
		take_newline(p, n);
	}
}

/* After three quotes in a multi-line string: up to two more belong to the
 * string. Returns how many quotes to keep. */
static size_t closing_quotes(const struct parser *p, int q)
{
	size_t n = 3;
	while (n < 5 && peek(p, n) == q)
		n++;
	return n - 3;
}

static bool parse_basic(struct parser *p, struct mg_buf *out, bool multi)
{
	struct pos open = here(p);
	p->pos += multi ? 3 : 1;
	if (multi && newline_len(p))
		take_newline(p, newline_len(p));
	for (;;) {
		size_t start = p->pos;
		while (p->pos < p->len) {
			char c = p->s[p->pos];
			if (c == '"' || c == '\\' || c == '\n' || c == '\r')
				break;
			p->pos++;
		}
		if (p->pos > start && !put(p, out, p->s + start, p->pos - start))
			return false;
		int c = peek(p, 0);
		if (c < 0) {
			fail(p, here(p),
			     "expected '%s' to close the string started at line %u, column %u, "
			     "found end of input",
			     multi ? "\"\"\"" : "\"", open.line, open.col);
			return false;
		}
		if (c == '"') {
			if (!multi) {
				p->pos++;
				return true;
			}
			if (peek(p, 1) == '"' && peek(p, 2) == '"') {
				size_t keep = closing_quotes(p, '"');
				p->pos += keep + 3;
				return put(p, out, "\"\"", keep);
			}
			p->pos++;
			if (!put(p, out, "\"", 1))
				return false;
			continue;
		}
		if (c == '\n' || c == '\r') {
			if (!multi) {
				fail(p, here(p),
				     "expected '\"' to close the string started at line %u, "
				     "column %u, found '\\n' (use \"\"\" for a multi-line string)",
				     open.line, open.col);
				return false;
			}
			take_newline(p, newline_len(p));
			if (!put(p, out, "\n", 1))
				return false;
			continue;
		}
		if (multi) {
			if (line_ending_backslash(p))
				continue;
			if (p->failed)
				return false;
		}
		if (!parse_escape(p, out))
			return false;
	}
}

static bool parse_literal(struct parser *p, struct mg_buf *out, bool multi)
{
	struct pos open = here(p);
	p->pos += multi ? 3 : 1;
	if (multi && newline_len(p))
		take_newline(p, newline_len(p));
	for (;;) {
		size_t start = p->pos;
		while (p->pos < p->len) {
			char c = p->s[p->pos];
			if (c == '\'' || c == '\n' || c == '\r')
				break;
			p->pos++;
		}
		if (p->pos > start && !put(p, out, p->s + start, p->pos - start))
			return false;
		int c = peek(p, 0);
		if (c < 0) {
			fail(p, here(p),
			     "expected \"%s\" to close the string started at line %u, column %u, "
			     "found end of input",
			     multi ? "'''" : "'", open.line, open.col);
			return false;
		}
		if (c == '\'') {
			if (!multi) {
				p->pos++;
				return true;
			}
			if (peek(p, 1) == '\'' && peek(p, 2) == '\'') {
				size_t keep = closing_quotes(p, '\'');
				p->pos += keep + 3;
				return put(p, out, "''", keep);
			}
			p->pos++;
			if (!put(p, out, "'", 1))
				return false;
			continue;
		}
		if (!multi) {
			fail(p, here(p),
			     "expected \"'\" to close the string started at line %u, column %u, "
			     "found '\\n' (use ''' for a multi-line string)",
			     open.line, open.col);
			return false;
		}
		take_newline(p, newline_len(p));
		if (!put(p, out, "\n", 1))
			return false;
	}
}

/* Any kind of string at p->pos, decoded into `out`. Keys must be one-line. */
static bool parse_string(struct parser *p, struct mg_buf *out, bool key)
{
	int q = peek(p, 0);
	bool multi = peek(p, 1) == q && peek(p, 2) == q;
	if (multi && key) {
		fail(p, here(p),
		     "expected a key, found a multi-line string (keys must be one-line)");
		return false;
	}
	return q == '"' ? parse_basic(p, out, multi) : parse_literal(p, out, multi);
}

/* ---- keys -------------------------------------------------------------------- */

/* Parses a dotted key into parts [*first, p->nparts). `depth` is the nesting
 * of the table the key is relative to. */
static bool parse_key(struct parser *p, unsigned depth, size_t *first)
{
	*first = p->nparts;
	for (;;) {
		skip_ws(p);
		struct pos at = here(p);
		int c = peek(p, 0);
		size_t n = p->nparts - *first;
		if (p->nparts >= MAX_PARTS || depth + n > MG_CDOC_MAX_DEPTH) {
			enter(p, MG_CDOC_MAX_DEPTH + 1, at);
			return false;
		}
		size_t off = p->keys.len;
		if (is_bare(c)) {
			size_t start = p->pos;
			while (is_bare(peek(p, 0)))
				p->pos++;
			if (!put(p, &p->keys, p->s + start, p->pos - start))
				return false;
		} else if (c == '"' || c == '\'') {
			if (!parse_string(p, &p->keys, true))
				return false;
		} else {
			fail(p, at, "expected a key%s, found %s", n ? " after '.'" : "",
			     describe_word(p, p->pos).s);
			return false;
		}
		p->parts[p->nparts].off = off;
		p->parts[p->nparts].len = p->keys.len - off;
		p->parts[p->nparts].at = at;
		p->nparts++;
		skip_ws(p);
		if (peek(p, 0) != '.')
			return true;
		p->pos++;
	}
}

/* ---- numbers and date-times -------------------------------------------------- */

/* Digits of `radix`, with single underscores between digits. */
static bool scan_digits(struct parser *p, int radix, const char *kind, const char *ctx)
{
	int v = mg_hex_value(peek(p, 0));
	if (v < 0 || v >= radix) {
		fail(p, here(p), "expected %s digit%s, found %s", kind, ctx, describe(p, p->pos).s);
		return false;
	}
	for (;;) {
		while ((v = mg_hex_value(peek(p, 0))) >= 0 && v < radix)
			p->pos++;
		if (peek(p, 0) != '_')
			return true;
		p->pos++;
		v = mg_hex_value(peek(p, 0));
		if (v < 0 || v >= radix) {
			fail(p, here(p), "expected %s digit after '_', found %s", kind,
			     describe(p, p->pos).s);
			return false;
		}
	}
}

static bool check_end(struct parser *p, struct pos at, const char *what)
{
	if (is_delim(peek(p, 0)))
		return true;
	int shown = p->pos - at.off > 40 ? 40 : (int)(p->pos - at.off);
	fail(p, here(p), "unexpected %s after %s '%.*s%s'", describe(p, p->pos).s, what, shown,
	     p->s + at.off, p->pos - at.off > 40 ? "..." : "");
	return false;
}

/* Matches `word` (true, false, inf, nan) as a whole word. */
static bool match_word(struct parser *p, const char *word)
{
	size_t n = strlen(word);
	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0 || is_word(peek(p, n)))
		return false;
	p->pos += n;
	return true;
}

static struct mg_cnode *new_float(struct parser *p, struct pos at, double f)
{
	struct mg_cnode *n = new_node(p, MG_CNODE_FLOAT, at);
	if (n)
		n->f = f;
	return n;
}

static struct mg_cnode *parse_radix(struct parser *p, struct pos at, bool sign)
{
	int c = peek(p, 1);
	int radix = c == 'x' ? 16 : c == 'o' ? 8 : 2;
	const char *kind = c == 'x' ? "a hexadecimal" : c == 'o' ? "an octal" : "a binary";
	const char *ctx = c == 'x' ? " after '0x'" : c == 'o' ? " after '0o'" : " after '0b'";
	if (sign) {
		fail(p, at, "a sign is not allowed on %s integer", kind);
		return NULL;
	}
	p->pos += 2;
	size_t start = p->pos;
	if (!scan_digits(p, radix, kind, ctx))
		return NULL;
	if (mg_hex_value(peek(p, 0)) >= 0) {
		fail(p, here(p), "%s is not %s digit", describe(p, p->pos).s, kind);
		return NULL;
	}
	if (!check_end(p, at, "integer"))
		return NULL;
	uint64_t v = 0;
	for (size_t i = start; i < p->pos; i++) {
		int d = mg_hex_value((unsigned char)p->s[i]);
		if (d < 0)
			continue;
		if (v > ((uint64_t)INT64_MAX - (uint64_t)d) / (uint64_t)radix) {
			int shown = p->pos - at.off > 80 ? 80 : (int)(p->pos - at.off);
			fail(p, at, "integer %.*s does not fit in 64 bits", shown, p->s + at.off);
			return NULL;
		}
		v = v * (uint64_t)radix + (uint64_t)d;
	}
	struct mg_cnode *n = new_node(p, MG_CNODE_INTEGER, at);
	if (n)
		n->i = (int64_t)v;
	return n;
}

static struct mg_cnode *parse_float_text(struct parser *p, struct pos at)
{
	mg_buf_reset(&p->str);
	for (size_t i = at.off; i < p->pos; i++) {
		if (p->s[i] != '_' && !put(p, &p->str, p->s + i, 1))
			return NULL;
	}
	if (!p->c_locale)
		p->c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	char *end;
	double f =
	    p->c_locale ? strtod_l(p->str.data, &end, p->c_locale) : strtod(p->str.data, &end);
	int shown = p->pos - at.off > 80 ? 80 : (int)(p->pos - at.off);
	if (*end != '\0') {
		fail(p, at, "cannot convert float %.*s", shown, p->s + at.off);
		return NULL;
	}
	if (isinf(f)) {
		fail(p, at, "float %.*s is out of range", shown, p->s + at.off);
		return NULL;
	}
	return new_float(p, at, f);
}

/* Integers and floats (also inf and nan), with an optional sign. */
static struct mg_cnode *parse_number(struct parser *p)
{
	struct pos at = here(p);
	int c = peek(p, 0);
	bool sign = c == '+' || c == '-', neg = c == '-';
	if (sign)
		c = peek(p, 1);
	if (c == 'i' || c == 'n') {
		p->pos += sign;
		if (match_word(p, c == 'i' ? "inf" : "nan")) {
			double f = c == 'i' ? INFINITY : NAN;
			return new_float(p, at, neg ? -f : f);
		}
		fail(p, at, "expected a value, found %s", describe_word(p, at.off).s);
		return NULL;
	}
	if (c == '0' &&
	    (peek(p, 1 + sign) == 'x' || peek(p, 1 + sign) == 'o' || peek(p, 1 + sign) == 'b')) {
		p->pos += sign;
		return parse_radix(p, at, sign);
	}
	if (sign) {
		p->pos++;
		if (!is_digit(c)) {
			fail(p, here(p), "expected a digit, 'inf' or 'nan' after '%c', found %s",
			     neg ? '-' : '+', describe(p, p->pos).s);
			return NULL;
		}
	}
	size_t digits = p->pos, run = 0;
	while (is_digit(peek(p, run)))
		run++;
	if (!sign && (peek(p, run) == '-' || peek(p, run) == ':')) {
		fail(p, at, "invalid date or time %s: expected YYYY-MM-DD or HH:MM:SS",
		     describe_word(p, at.off).s);
		return NULL;
	}
	if (c == '0' && (peek(p, 1) == 'X' || peek(p, 1) == 'O' || peek(p, 1) == 'B')) {
		fail(p, at, "invalid number %s: the prefixes are 0x, 0o and 0b in lower case",
		     describe_word(p, at.off).s);
		return NULL;
	}
	if (c == '0' && (is_digit(peek(p, 1)) || peek(p, 1) == '_')) {
		fail(p, at, "leading zeros are not allowed in decimal numbers, found %s",
		     describe_word(p, at.off).s);
		return NULL;
	}
	if (!scan_digits(p, 10, "a", ""))
		return NULL;
	bool is_float = false;
	if (peek(p, 0) == '.') {
		p->pos++;
		is_float = true;
		if (!scan_digits(p, 10, "a", " after '.'"))
			return NULL;
	}
	if (peek(p, 0) == 'e' || peek(p, 0) == 'E') {
		p->pos++;
		is_float = true;
		if (peek(p, 0) == '+' || peek(p, 0) == '-')
			p->pos++;
		if (!scan_digits(p, 10, "a", " in the exponent"))
			return NULL;
	}
	if (!is_float && (peek(p, 0) == '-' || peek(p, 0) == ':')) {
		fail(p, at, "invalid date or time %s: expected YYYY-MM-DD or HH:MM:SS",
		     describe_word(p, at.off).s);
		return NULL;
	}
	if (!check_end(p, at, is_float ? "float" : "integer"))
		return NULL;
	if (is_float)
		return parse_float_text(p, at);
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
	for (size_t i = digits; i < p->pos; i++) {
		if (p->s[i] == '_')
			continue;
		uint64_t d = (uint64_t)(p->s[i] - '0');
		if (v > (limit - d) / 10) {
			int shown = p->pos - at.off > 80 ? 80 : (int)(p->pos - at.off);
			fail(p, at, "integer %.*s does not fit in 64 bits", shown, p->s + at.off);
			return NULL;
		}
		v = v * 10 + d;
	}
	struct mg_cnode *n = new_node(p, MG_CNODE_INTEGER, at);
	if (n)
		n->i = !neg ? (int64_t)v : v > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)v;
	return n;
}

/* Exactly `n` digits. */
static bool fixed_digits(struct parser *p, int n, const char *what, int *val)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		int c = peek(p, 0);
		if (!is_digit(c)) {
			fail(p, here(p), "expected %d-digit %s, found %s", n, what,
			     describe(p, p->pos).s);
			return false;
		}
		v = v * 10 + (c - '0');
		p->pos++;
	}
	*val = v;
	return true;
}

static bool expect_char(struct parser *p, char ch, const char *ctx)
{
	if (peek(p, 0) == ch) {
		p->pos++;
		return true;
	}
	fail(p, here(p), "expected '%c' %s, found %s", ch, ctx, describe(p, p->pos).s);
	return false;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

static bool parse_time(struct parser *p, struct mg_buf *b)
{
	int h, mi, s;
	struct pos ph = here(p);
	if (!fixed_digits(p, 2, "hour", &h) || !expect_char(p, ':', "after the hour"))
		return false;
	struct pos pm = here(p);
	if (!fixed_digits(p, 2, "minute", &mi) ||
	    !expect_char(p, ':', "and seconds after the minute (TOML 1.0 requires seconds)"))
		return false;
	struct pos ps = here(p);
	if (!fixed_digits(p, 2, "second", &s))
		return false;
	if (h > 23) {
		fail(p, ph, "hour %02d is out of range (00-23)", h);
		return false;
	}
	if (mi > 59) {
		fail(p, pm, "minute %02d is out of range (00-59)", mi);
		return false;
	}
	if (s > 60) {
		fail(p, ps, "second %02d is out of range (00-60)", s);
		return false;
	}
	if (!put(p, b, p->s + ph.off, 8)) /* HH:MM:SS as written */
		return false;
	if (peek(p, 0) != '.')
		return true;
	p->pos++;
	size_t start = p->pos;
	while (is_digit(peek(p, 0)))
		p->pos++;
	if (p->pos == start) {
		fail(p, here(p), "expected a digit after '.' in the seconds, found %s",
		     describe(p, p->pos).s);
		return false;
	}
	size_t n = p->pos - start;
	return put(p, b, ".", 1) && put(p, b, p->s + start, n) &&
	       put(p, b, "00", n < 3 ? 3 - n : 0);
}

/* A local date, local date-time, offset date-time or local time. */
static struct mg_cnode *parse_datetime(struct parser *p, bool has_date)
{
	struct pos at = here(p);
	struct mg_buf *b = &p->str;
	enum mg_cnode_type type = MG_CNODE_TIME_LOCAL;
	mg_buf_reset(b);
	if (has_date) {
		int y, m, d;
		if (!fixed_digits(p, 4, "year", &y) || !expect_char(p, '-', "after the year"))
			return NULL;
		struct pos pm = here(p);
		if (!fixed_digits(p, 2, "month", &m) || !expect_char(p, '-', "after the month"))
			return NULL;
		struct pos pd = here(p);
		if (!fixed_digits(p, 2, "day", &d))
			return NULL;
		if (m < 1 || m > 12) {
			fail(p, pm, "month %02d is out of range (01-12)", m);
			return NULL;
		}
		if (d < 1 || d > days_in_month(y, m)) {
			fail(p, pd, "day %02d is out of range for %04d-%02d (01-%02d)", d, y, m,
			     days_in_month(y, m));
			return NULL;
		}
		if (!put(p, b, p->s + at.off, 10)) /* YYYY-MM-DD as written */
			return NULL;
		type = MG_CNODE_DATE_LOCAL;
		int c = peek(p, 0);
		bool time =
		    c == 'T' || c == 't' ||
		    (c == ' ' && is_digit(peek(p, 1)) && is_digit(peek(p, 2)) && peek(p, 3) == ':');
		if (time) {
			p->pos++;
			type = MG_CNODE_DATETIME_LOCAL;
			if (!put(p, b, "T", 1))
				return NULL;
		}
	}
	if (type != MG_CNODE_DATE_LOCAL && !parse_time(p, b))
		return NULL;
	if (type == MG_CNODE_DATETIME_LOCAL) {
		int c = peek(p, 0);
		if (c == 'Z' || c == 'z') {
			p->pos++;
			type = MG_CNODE_DATETIME;
			if (!put(p, b, "Z", 1))
				return NULL;
		} else if (c == '+' || c == '-') {
			int h, m;
			p->pos++;
			struct pos ph = here(p);
			if (!fixed_digits(p, 2, "offset hour", &h) ||
			    !expect_char(p, ':', "after the offset hour"))
				return NULL;
			struct pos pm = here(p);
			if (!fixed_digits(p, 2, "offset minute", &m))
				return NULL;
			if (h > 23 || m > 59) {
				fail(p, h > 23 ? ph : pm, "offset %c%02d:%02d is out of range",
				     (char)c, h, m);
				return NULL;
			}
			if (!put(p, b, p->s + ph.off - 1, 6)) /* +HH:MM as written */
				return NULL;
			type = MG_CNODE_DATETIME;
		}
	}
	if (!check_end(p, at, mg_cnode_type_name(type)))
		return NULL;
	struct mg_cnode *n = new_node(p, type, at);
	if (!n)
		return NULL;
	n->str = mg_cdoc_strndup(p->doc, b->data, b->len);
	n->len = b->len;
	if (!n->str) {
		fail_oom(p);
		return NULL;
	}
	return n;
}

/* ---- arrays, inline tables, key/value pairs -------------------------------- */

static bool parse_kv(struct parser *p, struct mg_cnode *base, unsigned depth);

static struct mg_cnode *parse_array(struct parser *p, unsigned depth)
{
	struct pos at = here(p);
	if (!enter(p, depth, at))
		return NULL;
	struct mg_cnode *arr = new_node(p, MG_CNODE_ARRAY, at);
	if (!arr)
		return NULL;
	arr->flags = TF_FROZEN;
	p->pos++;
	for (;;) {
		skip_ws_nl(p);
		int c = peek(p, 0);
		if (c == ']')
			break;
		if (c < 0) {
			fail(p, here(p),
			     "expected ']' to close the array opened at line %u, column %u, found "
			     "end of input",
			     at.line, at.col);
			return NULL;
		}
		struct mg_cnode *v = parse_value(p, depth);
		if (!v)
			return NULL;
		mg_cnode_push(arr, v);
		skip_ws_nl(p);
		c = peek(p, 0);
		if (c == ']')
			break;
		if (c != ',') {
			fail(p, here(p), "expected ',' or ']' after an array element, found %s",
			     describe_word(p, p->pos).s);
			return NULL;
		}
		p->pos++;
	}
	p->pos++;
	return arr;
}

static struct mg_cnode *parse_inline_table(struct parser *p, unsigned depth)
{
	struct pos at = here(p);
	if (!enter(p, depth, at))
		return NULL;
	struct mg_cnode *t = new_node(p, MG_CNODE_TABLE, at);
	if (!t)
		return NULL;
	p->pos++;
	skip_ws(p);
	if (peek(p, 0) != '}') {
		for (;;) {
			int c = peek(p, 0);
			if (c == '\n' || c == '\r') {
				fail(p, here(p),
				     "expected a key, found '\\n' (an inline table must be on "
				     "one line in TOML 1.0)");
				return NULL;
			}
			if (c == '}') {
				fail(p, here(p),
				     "expected a key after ',', found '}' (TOML 1.0 does not "
				     "allow a trailing comma in an inline table)");
				return NULL;
			}
			if (!parse_kv(p, t, depth))
				return NULL;
			skip_ws(p);
			c = peek(p, 0);
			if (c == '}')
				break;
			if (c != ',') {
				fail(p, here(p),
				     "expected ',' or '}' after a key/value pair in an inline "
				     "table, found %s%s",
				     describe_word(p, p->pos).s,
				     c == '\n' || c == '\r'
				         ? " (an inline table must be on one line in TOML 1.0)"
				         : "");
				return NULL;
			}
			p->pos++;
			skip_ws(p);
		}
	}
	p->pos++;
	t->flags = TF_FROZEN;
	return t;
}

/* `depth` is the nesting of the table or array that will hold the value. */
static struct mg_cnode *parse_value(struct parser *p, unsigned depth)
{
	struct pos at = here(p);
	int c = peek(p, 0);
	if (c == '"' || c == '\'') {
		mg_buf_reset(&p->str);
		if (!parse_string(p, &p->str, false))
			return NULL;
		struct mg_cnode *n = new_node(p, MG_CNODE_STRING, at);
		if (!n)
			return NULL;
		n->str = mg_cdoc_strndup(p->doc, p->str.data ? p->str.data : "", p->str.len);
		n->len = p->str.len;
		if (!n->str) {
			fail_oom(p);
			return NULL;
		}
		return n;
	}
	if (c == 't' || c == 'f') {
		if (match_word(p, c == 't' ? "true" : "false")) {
			struct mg_cnode *n = new_node(p, MG_CNODE_BOOL, at);
			if (n)
				n->b = c == 't';
			return n;
		}
	} else if (c == '[') {
		return parse_array(p, depth + 1);
	} else if (c == '{') {
		return parse_inline_table(p, depth + 1);
	} else if (is_digit(c)) {
		if (is_digit(peek(p, 1)) && is_digit(peek(p, 2)) && is_digit(peek(p, 3)) &&
		    peek(p, 4) == '-')
			return parse_datetime(p, true);
		if (is_digit(peek(p, 1)) && peek(p, 2) == ':')
			return parse_datetime(p, false);
		return parse_number(p);
	} else if (c == '+' || c == '-' || c == 'i' || c == 'n') {
		return parse_number(p);
	}
	fail(p, at, "expected a value, found %s", describe_word(p, p->pos).s);
	return NULL;
}

/* "a" or "an" before mg_cnode_type_name(type). */
static const char *article(enum mg_cnode_type type)
{
	return strchr("aeiou", mg_cnode_type_name(type)[0]) ? "an" : "a";
}

/* The table a dotted key part names, relative to `t`, created if missing. */
static struct mg_cnode *dotted_table(struct parser *p, struct mg_cnode *t, size_t first, size_t i,
                                     unsigned depth)
{
	struct keypart *k = &p->parts[first + i];
	if (!enter(p, depth, k->at))
		return NULL;
	struct mg_cnode *c = mg_cnode_get(p->doc, t, part_key(p, k), k->len);
	if (!c) {
		c = new_node(p, MG_CNODE_TABLE, k->at);
		if (!c || !set_member(p, t, k, c))
			return NULL;
		c->flags = TF_DOTTED;
		return c;
	}
	if (c->type == MG_CNODE_TABLE && !(c->flags & (TF_FROZEN | TF_DEFINED))) {
		c->flags |= TF_DOTTED;
		return c;
	}
	struct path name = key_path(p, t, first + i, 1);
	if (c->type == MG_CNODE_TABLE && (c->flags & TF_FROZEN))
		fail(p, k->at,
		     "cannot add keys to inline table \"%s\" (defined at line %u, column %u)",
		     name.s, c->loc.line, c->loc.col);
	else if (c->type == MG_CNODE_TABLE && (c->flags & TF_DEFINED))
		fail(p, k->at,
		     "cannot add keys to table \"%s\" with dotted keys: it is defined by the "
		     "header at line %u, column %u",
		     name.s, c->key_loc.line, c->key_loc.col);
	else if (c->type == MG_CNODE_ARRAY && (c->flags & TF_AOT))
		fail(p, k->at,
		     "cannot add keys to array of tables \"%s\" (defined at line %u, column %u) "
		     "with dotted keys",
		     name.s, c->key_loc.line, c->key_loc.col);
	else
		fail(p, k->at,
		     "key \"%s\" is already defined as %s %s at line %u, column %u; it cannot "
		     "also be a table",
		     name.s, article(c->type), mg_cnode_type_name(c->type), c->key_loc.line,
		     c->key_loc.col);
	return NULL;
}

/* key = value, relative to `base` (the section's table or an inline table). */
static bool parse_kv(struct parser *p, struct mg_cnode *base, unsigned depth)
{
	size_t keys_mark = p->keys.len, first = p->nparts;
	bool ok = false;
	if (!parse_key(p, depth, &first))
		goto out;
	size_t n = p->nparts - first;
	if (peek(p, 0) != '=') {
		fail(p, here(p), "expected '=' after key \"%s\", found %s",
		     key_path(p, base, first, n).s, describe_word(p, p->pos).s);
		goto out;
	}
	p->pos++;
	skip_ws(p);
	struct mg_cnode *t = base;
	for (size_t i = 0; i + 1 < n; i++) {
		t = dotted_table(p, t, first, i, depth + (unsigned)i + 1);
		if (!t)
			goto out;
	}
	struct keypart *k = &p->parts[first + n - 1];
	struct mg_cnode *old = mg_cnode_get(p->doc, t, part_key(p, k), k->len);
	if (old) {
		fail(p, k->at, "duplicate key \"%s\" (first defined at line %u, column %u)",
		     key_path(p, t, first + n - 1, 1).s, old->key_loc.line, old->key_loc.col);
		goto out;
	}
	int c = peek(p, 0);
	if (c < 0 || c == '\n' || c == '\r' || c == '#') {
		fail(p, here(p), "expected a value for key \"%s\", found %s",
		     key_path(p, t, first + n - 1, 1).s, describe(p, p->pos).s);
		goto out;
	}
	struct mg_cnode *v = parse_value(p, depth + (unsigned)n - 1);
	if (!v)
		goto out;
	ok = set_member(p, t, k, v);
out:
	p->nparts = first;
	p->keys.len = keys_mark;
	return ok;
}

/* ---- table headers ---------------------------------------------------------- */

static bool header_conflict(struct parser *p, struct mg_cnode *t, size_t first, size_t i,
                            const struct mg_cnode *c, bool aot)
{
	struct keypart *k = &p->parts[first + i];
	struct path name = key_path(p, t, first + i, 1);
	uint32_t line = c->key_loc.line, col = c->key_loc.col;
	if (c->type == MG_CNODE_TABLE && aot)
		fail(p, k->at,
		     "cannot define array of tables \"%s\": it is already a table (defined at "
		     "line %u, column %u)",
		     name.s, line, col);
	else if (c->type == MG_CNODE_TABLE && (c->flags & TF_FROZEN))
		fail(p, k->at,
		     "table \"%s\" is already defined as an inline table at line %u, column %u",
		     name.s, c->loc.line, c->loc.col);
	else if (c->type == MG_CNODE_TABLE && (c->flags & TF_DOTTED))
		fail(p, k->at,
		     "table \"%s\" is already defined by dotted keys at line %u, column %u", name.s,
		     line, col);
	else if (c->type == MG_CNODE_TABLE)
		fail(p, k->at, "table \"%s\" is already defined at line %u, column %u", name.s,
		     line, col);
	else if (c->type == MG_CNODE_ARRAY && (c->flags & TF_AOT))
		fail(p, k->at,
		     "\"%s\" is an array of tables (defined at line %u, column %u); use [[%s]] to "
		     "add an element",
		     name.s, line, col, name.s);
	else if (c->type == MG_CNODE_ARRAY)
		fail(p, k->at,
		     "cannot %s \"%s\": it is a static array (defined at line %u, column %u)",
		     aot ? "append tables to" : "add a table to", name.s, line, col);
	else
		fail(p, k->at,
		     "key \"%s\" is already defined as %s %s at line %u, column %u; it cannot "
		     "also be a table",
		     name.s, article(c->type), mg_cnode_type_name(c->type), line, col);
	return false;
}

/* [a.b.c] or [[a.b.c]]: makes the named table the current section. */
static bool parse_header(struct parser *p)
{
	struct pos at = here(p);
	bool aot = peek(p, 1) == '[';
	size_t keys_mark = p->keys.len, first = p->nparts;
	bool ok = false;
	p->pos += aot ? 2 : 1;
	if (!parse_key(p, 1, &first)) /* 1: the last part is a table too */
		goto out;
	if (peek(p, 0) != ']' || (aot && peek(p, 1) != ']')) {
		if (peek(p, 0) == ']')
			p->pos++;
		fail(p, here(p), "expected '%s' to close the %s header, found %s", aot ? "]]" : "]",
		     aot ? "array of tables" : "table", describe_word(p, p->pos).s);
		goto out;
	}
	p->pos += aot ? 2 : 1;
	size_t n = p->nparts - first;
	struct mg_cnode *t = p->root;
	unsigned depth = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		struct keypart *k = &p->parts[first + i];
		struct mg_cnode *c = mg_cnode_get(p->doc, t, part_key(p, k), k->len);
		if (!c) {
			c = new_node(p, MG_CNODE_TABLE, k->at);
			if (!c || !set_member(p, t, k, c))
				goto out;
		} else if (c->type == MG_CNODE_ARRAY && (c->flags & TF_AOT)) {
			c = c->last;
			depth++;
		} else if (c->type != MG_CNODE_TABLE || (c->flags & TF_FROZEN)) {
			header_conflict(p, t, first, i, c, false);
			goto out;
		}
		if (!enter(p, ++depth, k->at))
			goto out;
		t = c;
	}
	struct keypart *k = &p->parts[first + n - 1];
	struct mg_cnode *c = mg_cnode_get(p->doc, t, part_key(p, k), k->len);
	if (!aot) {
		if (!enter(p, ++depth, k->at))
			goto out;
		if (!c) {
			c = new_node(p, MG_CNODE_TABLE, k->at);
			if (!c || !set_member(p, t, k, c))
				goto out;
		} else if (c->type == MG_CNODE_TABLE &&
		           !(c->flags & (TF_DEFINED | TF_DOTTED | TF_FROZEN))) {
			/* An implicit table gets defined: point at this header from now on. */
			c->loc.line = c->key_loc.line = k->at.line;
			c->loc.col = c->key_loc.col = k->at.col;
		} else {
			header_conflict(p, t, first, n - 1, c, false);
			goto out;
		}
		c->flags |= TF_DEFINED;
		t = c;
	} else {
		depth += 2;
		if (!enter(p, depth, k->at))
			goto out;
		if (!c) {
			c = new_node(p, MG_CNODE_ARRAY, k->at);
			if (!c || !set_member(p, t, k, c))
				goto out;
			c->flags = TF_AOT;
		} else if (c->type != MG_CNODE_ARRAY || !(c->flags & TF_AOT)) {
			header_conflict(p, t, first, n - 1, c, true);
			goto out;
		}
		struct mg_cnode *elem = new_node(p, MG_CNODE_TABLE, at);
		if (!elem)
			goto out;
		elem->key_loc = c->key_loc;
		elem->flags = TF_DEFINED;
		mg_cnode_push(c, elem);
		t = elem;
	}
	p->table = t;
	p->table_depth = depth;
	ok = true;
out:
	p->nparts = first;
	p->keys.len = keys_mark;
	return ok;
}

/* ---- document ------------------------------------------------------------------ */

static void parse_document(struct parser *p)
{
	while (!p->failed) {
		skip_ws(p);
		int c = peek(p, 0);
		if (c < 0)
			return;
		size_t nl = newline_len(p);
		if (nl) {
			take_newline(p, nl);
			continue;
		}
		if (c == '#') {
			skip_comment(p);
			continue;
		}
		const char *what = c == '[' ? "a table header" : "a key/value pair";
		if (!(c == '[' ? parse_header(p) : parse_kv(p, p->table, p->table_depth)))
			return;
		skip_ws(p);
		skip_comment(p);
		if (peek(p, 0) >= 0 && !newline_len(p))
			fail(p, here(p), "expected the end of the line after %s, found %s", what,
			     describe_word(p, p->pos).s);
	}
}

/* The first byte TOML forbids everywhere, with a message; NO_BAD if none. */
static size_t find_bad(const char *text, size_t len, size_t from, char *msg, size_t size)
{
	const unsigned char *s = (const unsigned char *)text;
	for (size_t i = from; i < len;) {
		unsigned c = s[i];
		if ((c >= 0x20 && c < 0x7f) || c == '\t' || c == '\n') {
			i++;
			continue;
		}
		if (c == '\r') {
			if (i + 1 < len && s[i + 1] == '\n') {
				i += 2;
				continue;
			}
			snprintf(msg, size,
			         "carriage return (U+000D) is only allowed before a line feed");
			return i;
		}
		if (c == 0) {
			snprintf(msg, size, "NUL byte (U+0000) is not allowed in TOML");
			return i;
		}
		if (c < 0x80) {
			snprintf(
			    msg, size,
			    "control character U+%04X is not allowed in TOML (only tab, LF and "
			    "CRLF are)",
			    c);
			return i;
		}
		size_t n;
		uint32_t cp, min;
		if (c >= 0xC2 && c <= 0xDF) {
			n = 2, cp = c & 0x1F, min = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 3, cp = c & 0x0F, min = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 4, cp = c & 0x07, min = 0x10000;
		} else {
			snprintf(msg, size, "invalid UTF-8: byte 0x%02X cannot start a character",
			         c);
			return i;
		}
		for (size_t k = 1; k < n; k++) {
			if (i + k >= len) {
				snprintf(
				    msg, size,
				    "invalid UTF-8: expected a continuation byte, found end of "
				    "input");
				return i;
			}
			if ((s[i + k] & 0xC0) != 0x80) {
				snprintf(
				    msg, size,
				    "invalid UTF-8: expected a continuation byte, found 0x%02X",
				    s[i + k]);
				return i;
			}
			cp = cp << 6 | (s[i + k] & 0x3Fu);
		}
		if (cp < min) {
			snprintf(msg, size, "invalid UTF-8: overlong encoding of U+%04X",
			         (unsigned)cp);
			return i;
		}
		if (cp >= 0xD800 && cp <= 0xDFFF) {
			snprintf(msg, size, "invalid UTF-8: encoded surrogate U+%04X",
			         (unsigned)cp);
			return i;
		}
		if (cp > 0x10FFFF) {
			snprintf(msg, size, "invalid UTF-8: code point beyond U+10FFFF");
			return i;
		}
		i += n;
	}
	return NO_BAD;
}

struct mg_cdoc *mg_toml_parse(const char *text, size_t len, const char *file, struct mg_cerror *err)
{
	struct mg_cerror scratch;
	struct parser p;
	memset(&p, 0, sizeof p);
	if (!err)
		err = &scratch;
	memset(err, 0, sizeof *err);
	p.err = err;
	p.file = file ? file : "<input>";
	p.s = text ? text : "";
	p.len = text ? len : 0;
	p.line = 1;
	p.bad = NO_BAD;
	mg_buf_init(&p.str, MG_CDOC_MAX_BYTES + 64);
	mg_buf_init(&p.keys, MG_CDOC_MAX_BYTES + 64);
	if (p.len >= 3 && memcmp(p.s, "\xEF\xBB\xBF", 3) == 0)
		p.pos = p.line_start = p.bom = 3;
	if (p.len > MG_CDOC_MAX_BYTES) {
		fail(&p, pos_of(&p, MG_CDOC_MAX_BYTES),
		     "input is %zu bytes, more than the limit of %u", p.len,
		     (unsigned)MG_CDOC_MAX_BYTES);
		goto out;
	}
	p.bad = find_bad(p.s, p.len, p.pos, p.bad_msg, sizeof p.bad_msg);
	if (p.bad != NO_BAD)
		p.len = p.bad;
	p.doc = mg_cdoc_new(p.file);
	if (!p.doc) {
		fail_oom(&p);
		goto out;
	}
	p.root = p.table = mg_cdoc_root(p.doc);
	p.nodes = 1;
	parse_document(&p);
	if (!p.failed && p.bad != NO_BAD)
		fail(&p, pos_of(&p, p.bad), "%s", p.bad_msg);
out:
	mg_buf_free(&p.str);
	mg_buf_free(&p.keys);
	if (p.c_locale)
		freelocale(p.c_locale);
	if (p.failed) {
		mg_cdoc_free(p.doc);
		return NULL;
	}
	return p.doc;
}
