/*
 * parser.c - strict, incremental HTTP/1.1 request parser. See parser.h.
 *
 * This is the gateway's anti-smuggling boundary: the connection layer feeds
 * socket bytes, split anywhere, and the parser decides where a request ends.
 * Anything a lenient server might read differently is an error.
 *
 * Head: bytes are copied into `head` (bounded by max_header_bytes, enforced
 * here rather than by the mg_buf maximum, to tell 414 from 431) while
 * memchr finds line ends; each LF must follow a CR. Only when the empty
 * line arrives is the head parsed in place in one pass: separators
 * are overwritten with NULs and the pointers in the struct are built, so
 * they never move afterwards. The body is then decoded into `body` by a
 * small state machine (Content-Length copy, or chunked with per-byte states
 * for sizes, extensions and trailers and a bulk copy for chunk data).
 *
 * Choices where RFC 9112 leaves room:
 * - Bare LF is rejected like bare CR (400); every line ends in CRLF.
 * - Up to MAX_EMPTY_LINES empty lines (CRLF) before the request line are
 *   skipped (RFC 9112 2.2), more are 400.
 * - The target is origin-form ("/..." of visible ASCII, no '#') or "*" with
 *   OPTIONS only; absolute-form and authority-form are 400.
 * - Content-Length: digits only, at most INT64_MAX; several fields with
 *   byte-identical values count as one, different values or a list
 *   ("5, 5") are 400. A length over max_body_bytes is 413 as soon as the
 *   head is complete, before any body byte is read.
 * - Transfer-Encoding: exactly one field whose value is "chunked" (any case)
 *   or 501; on HTTP/1.0, or together with Content-Length, 400 (checked
 *   first, so "gzip" + Content-Length is 400).
 * - Host: exactly one on HTTP/1.1, at most one on HTTP/1.0 (RFC 9112 3.2),
 *   and its value must be uri-host[:port] characters, else 400.
 * - Expect: "100-continue" sets expect_continue on HTTP/1.1 (ignored on
 *   1.0, RFC 9110 10.1.1); other expectations are ignored, not 417.
 * - Chunk extensions: after optional BWS and ';', any field-value bytes up
 *   to CRLF; they and the trailers together may take max_header_bytes per
 *   request (extensions over it: 400, trailers over it: 431). Trailer
 *   fields follow the header rules and are discarded.
 * - Chunk sizes: 1 to 16 hex digits; a chunk that would take the body over
 *   max_body_bytes is 413 before its data is read.
 */
#include "http/parser.h"

#include <stdlib.h>
#include <string.h>

#include "util/str.h"

enum {
	ST_START,    /* before the request line: skipping empty lines */
	ST_START_LF, /* saw the CR of an empty line */
	ST_HEAD,     /* collecting the head */
	ST_BODY,     /* Content-Length body, chunk_left bytes to go */
	ST_CHUNK_SIZE,
	ST_CHUNK_BWS, /* whitespace after the size: ';' must follow */
	ST_CHUNK_EXT,
	ST_CHUNK_SIZE_LF,
	ST_CHUNK_DATA,
	ST_CHUNK_DATA_CR,
	ST_CHUNK_DATA_LF,
	ST_TRAILER, /* at the start of a trailer line */
	ST_TRAILER_NAME,
	ST_TRAILER_VALUE,
	ST_TRAILER_LF,
	ST_TRAILER_END_LF,
	ST_DONE,
	ST_ERROR,
};

#define MAX_EMPTY_LINES  4
#define MAX_CHUNK_DIGITS 16
/* A body buffer that grew past this is released on reset, so idle
 * keep-alive connections do not pin large buffers. */
#define KEEP_BODY_CAP (256 * 1024)

/* Character classes (RFC 9110 5.6.2 tchar, 5.5 field-value bytes, visible
 * ASCII for targets, uri-host/port bytes for Host, whitespace). */
#define C_TCHAR  0x01
#define C_VALUE  0x02 /* VCHAR, obs-text, SP, HTAB */
#define C_TARGET 0x04 /* VCHAR except '#' */
#define C_HOST   0x08 /* unreserved, sub-delims, '%', ':', '[', ']' */
#define C_WS     0x10 /* SP, HTAB */

// clang-format off
static const unsigned char cls[256] = {
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 00 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 10 */
	0x12, 0x0f, 0x06, 0x03, 0x0f, 0x0f, 0x0f, 0x0f, 0x0e, 0x0e, 0x0f, 0x0f, 0x0e, 0x0f, 0x0f, 0x06, /* 20 */
	0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0e, 0x0e, 0x06, 0x0e, 0x06, 0x06, /* 30 */
	0x06, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, /* 40 */
	0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0e, 0x06, 0x0e, 0x07, 0x0f, /* 50 */
	0x07, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, /* 60 */
	0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x06, 0x07, 0x06, 0x0f, 0x00, /* 70 */
	0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 80 */
	0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 90 */
	0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* a0 */
	0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* b0 */
	0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* c0 */
	0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* d0 */
	0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* e0 */
	0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* f0 */
};
// clang-format on

#define IS(c, k) (cls[(unsigned char)(c)] & (k))

static inline unsigned char lower(unsigned char c)
{
	return (unsigned char)((unsigned)(c - 'A') < 26u ? c + 32 : c);
}

/* Case-insensitive ASCII comparison of `n` bytes. */
static bool ci_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

static bool name_is(const struct mg_http_header *h, const char *name, size_t len)
{
	return h->name_len == len && ci_eq(h->name, name, len);
}

static enum mg_http_parse_status fail(struct mg_http_parser *p, int status, const char *why)
{
	p->state = ST_ERROR;
	p->error_status = status;
	p->error = why;
	return MG_HTTP_PARSE_ERROR;
}

/* Header slots are allocated as headers arrive (16, then doubling up to
 * MG_HTTP_MAX_HEADERS) and kept across requests on the connection: most
 * requests have a dozen headers, and a connection holding an SSE stream
 * should not carry room for 64. */
static int grow_headers(struct mg_http_parser *p)
{
	size_t n = p->headers_cap ? p->headers_cap * 2 : 16;
	if (n > MG_HTTP_MAX_HEADERS)
		n = MG_HTTP_MAX_HEADERS;
	struct mg_http_header *h = realloc(p->headers, n * sizeof *h);
	if (!h)
		return -1;
	p->headers = h;
	p->headers_cap = n;
	return 0;
}

static void clear_results(struct mg_http_parser *p)
{
	p->method = NULL;
	p->method_len = 0;
	p->target = NULL;
	p->target_len = 0;
	p->path = NULL;
	p->path_len = 0;
	p->query = NULL;
	p->query_len = 0;
	p->version_minor = 1; /* until the request line says otherwise */
	p->n_headers = 0;
	p->name_lens = 0;
	p->n_memo = 0;
	p->keep_alive = false;
	p->chunked = false;
	p->expect_continue = false;
	p->content_length = -1;
	p->error_status = 0;
	p->error = NULL;
	p->state = ST_START;
	p->chunk_left = 0;
	p->trailer_bytes = 0;
	p->scan_pos = 0;
	p->chunk_digits = 0;
	p->empty_lines = 0;
}

void mg_http_parser_init(struct mg_http_parser *p, size_t max_header_bytes, size_t max_body_bytes)
{
	memset(p, 0, sizeof *p);
	p->max_header_bytes = max_header_bytes;
	p->max_body_bytes = max_body_bytes;
	/* The head limit is enforced by feed_head, which knows whether the
	 * request line was complete (414) or not (431). */
	mg_buf_init(&p->head, 0);
	mg_buf_init(&p->body, max_body_bytes);
	mg_buf_init(&p->path_copy, 0);
	clear_results(p);
}

void mg_http_parser_free(struct mg_http_parser *p)
{
	mg_buf_free(&p->head);
	mg_buf_free(&p->body);
	mg_buf_free(&p->path_copy);
	free(p->headers);
	p->headers = NULL;
	p->headers_cap = 0;
	clear_results(p);
}

void mg_http_parser_reset(struct mg_http_parser *p)
{
	mg_buf_reset(&p->head);
	if (p->body.cap > KEEP_BODY_CAP)
		mg_buf_free(&p->body);
	else
		mg_buf_reset(&p->body);
	clear_results(p);
}

/* ---- head ------------------------------------------------------------- */

/* The head is mostly header values and the target: these two skip the
 * valid bytes 8 at a time (SWAR; reads stay below `end`, the head length)
 * and leave the last word, with the byte that stops them, to the table. */
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Some byte of w is below n (n <= 128). Only ends the fast path early, the
 * table loop decides. */
static inline uint64_t has_less(uint64_t w, uint64_t n)
{
	return (w - ONES * n) & ~w & HIGHS;
}

/* Some byte of w equals c. */
static inline uint64_t has_byte(uint64_t w, uint64_t c)
{
	return has_less(w ^ (ONES * c), 1);
}

static size_t skip_value(const char *s, size_t i, size_t end)
{
	for (; i + 8 <= end; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		/* HTAB, CR and every CTL are below 0x20; DEL is 0x7f. */
		if (has_less(w, 0x20) | has_byte(w, 0x7f))
			break;
	}
	while (IS(s[i], C_VALUE))
		i++;
	return i;
}

static size_t skip_target(const char *s, size_t i, size_t end)
{
	for (; i + 8 <= end; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		if ((w & HIGHS) | has_less(w, 0x21) | has_byte(w, 0x7f) | has_byte(w, '#'))
			break;
	}
	while (IS(s[i], C_TARGET))
		i++;
	return i;
}

/* Content-Length: 1*DIGIT, at most INT64_MAX. */
static int parse_length(const char *s, size_t n, int64_t *out)
{
	if (n == 0)
		return -1;
	int64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)((unsigned char)s[i] - '0');
		if (d > 9 || v > (INT64_MAX - (int64_t)d) / 10)
			return -1;
		v = v * 10 + (int64_t)d;
	}
	*out = v;
	return 0;
}

/* What the framing headers said, gathered while the head is parsed. */
struct framing {
	/* Copies, not pointers into p->headers, which grows while the head is
	 * parsed; the values themselves live in the head buffer, which does not. */
	struct mg_http_header cl; /* first Content-Length (name NULL: none) */
	struct mg_http_header te; /* first Transfer-Encoding (name NULL: none) */
	unsigned n_te;
	unsigned n_host;
	bool conn_close;
	bool conn_keep_alive;
	bool expect_continue;
};

/* Notes one header's effect on framing and connection handling. Returns 0,
 * or an HTTP status for a header that must be refused. */
static int note_header(struct mg_http_parser *p, const struct mg_http_header *h, struct framing *f,
                       const char **why)
{
	switch (lower((unsigned char)h->name[0])) {
	case 'c':
		if (name_is(h, "content-length", 14)) {
			int64_t v;
			if (parse_length(h->value, h->value_len, &v) < 0) {
				*why = "invalid Content-Length";
				return 400;
			}
			if (f->cl.name) {
				if (f->cl.value_len != h->value_len ||
				    memcmp(f->cl.value, h->value, h->value_len) != 0) {
					*why = "conflicting Content-Length values";
					return 400;
				}
			} else {
				f->cl = *h;
				p->content_length = v;
			}
		} else if (name_is(h, "connection", 10)) {
			if (mg_http_header_has_token(h, "close"))
				f->conn_close = true;
			if (mg_http_header_has_token(h, "keep-alive"))
				f->conn_keep_alive = true;
		}
		break;
	case 't':
		if (name_is(h, "transfer-encoding", 17)) {
			if (!f->te.name)
				f->te = *h;
			f->n_te++;
		}
		break;
	case 'h':
		if (name_is(h, "host", 4)) {
			f->n_host++;
			for (size_t i = 0; i < h->value_len; i++) {
				if (!IS(h->value[i], C_HOST)) {
					*why = "invalid Host";
					return 400;
				}
			}
		}
		break;
	case 'e':
		if (name_is(h, "expect", 6) && mg_http_header_has_token(h, "100-continue"))
			f->expect_continue = true;
		break;
	default:
		break;
	}
	return 0;
}

/* Checks the framing headers and decides what follows the head. */
static enum mg_http_parse_status finish_framing(struct mg_http_parser *p, const struct framing *f)
{
	bool v11 = p->version_minor == 1;
	if (f->n_host > 1)
		return fail(p, 400, "several Host headers");
	if (v11 && f->n_host == 0)
		return fail(p, 400, "missing Host header");
	if (f->n_te) {
		if (!v11)
			return fail(p, 400, "Transfer-Encoding on HTTP/1.0");
		if (f->cl.name)
			return fail(p, 400, "both Content-Length and Transfer-Encoding");
		if (f->n_te > 1 || f->te.value_len != 7 || !ci_eq(f->te.value, "chunked", 7))
			return fail(p, 501, "unsupported Transfer-Encoding");
		p->chunked = true;
	}
	p->keep_alive = !f->conn_close && (v11 || f->conn_keep_alive);
	p->expect_continue = v11 && f->expect_continue;

	/* body.data is never NULL once the head is complete. */
	p->body.max = p->max_body_bytes;
	if (mg_buf_append(&p->body, "", 0) < 0)
		return fail(p, 500, "out of memory");
	if (p->chunked) {
		p->state = ST_CHUNK_SIZE;
	} else if (p->content_length > 0) {
		if ((uint64_t)p->content_length > p->max_body_bytes)
			return fail(p, 413, "body too large");
		p->chunk_left = (uint64_t)p->content_length;
		p->state = ST_BODY;
	} else {
		p->state = ST_DONE;
	}
	return MG_HTTP_PARSE_HEAD;
}

/* Parses the complete head in `head` (every line ends in CRLF, the last
 * line is empty) in place, and builds the pointers. */
size_t mg_http_field_parse(char *s, size_t pos, size_t end, struct mg_http_header *h,
                           const char **why)
{
	if (IS(s[pos], C_WS)) {
		*why = "obs-fold or whitespace before header";
		return 0;
	}
	size_t k = pos;
	while (IS(s[k], C_TCHAR))
		k++;
	if (s[k] != ':') {
		*why =
		    k > pos && IS(s[k], C_WS) ? "whitespace before colon" : "invalid header name";
		return 0;
	}
	size_t name_len = k - pos;
	if (name_len == 0) {
		*why = "invalid header name";
		return 0;
	}
	size_t vs = k + 1;
	while (IS(s[vs], C_WS))
		vs++;
	size_t ve = skip_value(s, vs, end);
	if (s[ve] != '\r' || s[ve + 1] != '\n') {
		*why = s[ve] == '\r' ? "bare CR in header" : "invalid header value";
		return 0;
	}
	size_t next = ve + 2;
	while (ve > vs && IS(s[ve - 1], C_WS))
		ve--;
	s[k] = '\0';
	s[ve] = '\0';
	h->name = s + pos;
	h->name_len = name_len;
	h->value = s + vs;
	h->value_len = ve - vs;
	return next;
}

int mg_http_parse_length(const char *s, size_t n, int64_t *out)
{
	return parse_length(s, n, out);
}

static enum mg_http_parse_status finish_head(struct mg_http_parser *p)
{
	char *s = p->head.data;
	size_t head_len = p->head.len;
	const char *nl = memchr(s, '\n', head_len);
	size_t eol = (size_t)(nl - s) - 1; /* the request line's CR */

	/* method SP request-target SP HTTP-version CRLF */
	size_t i = 0;
	while (IS(s[i], C_TCHAR))
		i++;
	if (i == 0 || s[i] != ' ')
		return fail(p, 400, "invalid method");
	size_t method_len = i;
	size_t t = i + 1, j = skip_target(s, t, head_len);
	if (j == t || s[j] != ' ')
		return fail(p, 400, "invalid request target");
	size_t target_len = j - t;
	size_t v = j + 1;
	const char *ver = s + v;
	if (eol - v != 8 || memcmp(ver, "HTTP/", 5) != 0 || (unsigned)(ver[5] - '0') > 9u ||
	    ver[6] != '.' || (unsigned)(ver[7] - '0') > 9u)
		return fail(p, 400, "invalid HTTP version");
	if (ver[5] != '1' || (ver[7] != '0' && ver[7] != '1'))
		return fail(p, 505, "unsupported HTTP version");
	p->version_minor = ver[7] - '0';

	if (s[t] == '*' && target_len == 1) {
		if (method_len != 7 || memcmp(s, "OPTIONS", 7) != 0)
			return fail(p, 400, "asterisk target without OPTIONS");
	} else if (s[t] != '/') {
		return fail(p, 400, "request target not in origin-form");
	}
	s[i] = '\0';
	s[j] = '\0';

	/* The path needs its own terminator when a query follows. */
	const char *q = memchr(s + t, '?', target_len);
	size_t path_len = q ? (size_t)(q - (s + t)) : target_len;
	p->path = s + t;
	if (q) {
		mg_buf_reset(&p->path_copy);
		if (mg_buf_append(&p->path_copy, s + t, path_len) < 0)
			return fail(p, 500, "out of memory");
		p->path = p->path_copy.data;
	}
	p->method = s;
	p->method_len = method_len;
	p->target = s + t;
	p->target_len = target_len;
	p->path_len = path_len;
	if (q) {
		p->query = s + t + path_len + 1;
		p->query_len = target_len - path_len - 1;
	} else {
		p->query = s + j; /* the target's terminator: "" */
		p->query_len = 0;
	}

	/* field-name ":" OWS field-value OWS CRLF, until the empty line */
	struct framing f = { 0 };
	size_t pos = eol + 2;
	for (;;) {
		if (s[pos] == '\r') {
			/* feed_head stopped at the first empty line; a CR that
			 * starts a line anywhere else is a bare CR. */
			if (pos + 2 != head_len)
				return fail(p, 400, "bare CR in header");
			break;
		}
		if (p->n_headers == MG_HTTP_MAX_HEADERS)
			return fail(p, 431, "too many headers");
		if (p->n_headers == p->headers_cap && grow_headers(p) < 0)
			return fail(p, 500, "out of memory");
		struct mg_http_header *h = &p->headers[p->n_headers];
		const char *why = NULL;
		size_t next = mg_http_field_parse(s, pos, head_len, h, &why);
		if (!next)
			return fail(p, 400, why);
		p->n_headers++;
		p->name_lens |= 1ull << (h->name_len & 63);
		int status = note_header(p, h, &f, &why);
		if (status)
			return fail(p, status, why);
		pos = next;
	}
	return finish_framing(p, &f);
}

/* Collects head bytes; on the empty line parses the head. */
static enum mg_http_parse_status feed_head(struct mg_http_parser *p, const char *data, size_t len,
                                           size_t *used)
{
	size_t pos = 0;
	while (p->state != ST_HEAD) {
		if (pos == len) {
			*used = pos;
			return MG_HTTP_PARSE_MORE;
		}
		char c = data[pos];
		if (p->state == ST_START_LF) {
			if (c != '\n')
				return fail(p, 400, "bare CR");
			if (++p->empty_lines > MAX_EMPTY_LINES)
				return fail(p, 400, "too many empty lines before request");
			p->state = ST_START;
			pos++;
		} else if (c == '\r') {
			p->state = ST_START_LF;
			pos++;
		} else if (c == '\n') {
			return fail(p, 400, "bare LF");
		} else if (!IS(c, C_TCHAR)) {
			/* Fail fast on TLS or binary sent to a plain port. */
			return fail(p, 400, "invalid method");
		} else {
			p->state = ST_HEAD;
		}
	}

	const char *d = data + pos;
	size_t n = len - pos;
	size_t have = p->head.len;
	size_t room = p->max_header_bytes > have ? p->max_header_bytes - have : 0;
	size_t avail = n < room ? n : room;
	size_t off = 0;
	const char *nl;
	while (off < avail && (nl = memchr(d + off, '\n', avail - off)) != NULL) {
		size_t i = (size_t)(nl - d);
		char prev = i ? d[i - 1] : (have ? p->head.data[have - 1] : '\0');
		if (prev != '\r')
			return fail(p, 400, "bare LF");
		size_t at = have + i; /* the LF's offset in the head */
		if (at - p->scan_pos == 1 && p->scan_pos > 0) {
			if (mg_buf_append(&p->head, d, i + 1) < 0)
				return fail(p, 500, "out of memory");
			*used = pos + i + 1;
			return finish_head(p);
		}
		p->scan_pos = at + 1;
		off = i + 1;
	}
	if (avail && mg_buf_append(&p->head, d, avail) < 0)
		return fail(p, 500, "out of memory");
	*used = pos + avail;
	if (p->head.len >= p->max_header_bytes) {
		if (p->scan_pos == 0)
			return fail(p, 414, "request line too long");
		return fail(p, 431, "request head too large");
	}
	return MG_HTTP_PARSE_MORE;
}

/* ---- body ------------------------------------------------------------- */

static enum mg_http_parse_status append_body(struct mg_http_parser *p, const char *d, size_t n)
{
	if (mg_buf_append(&p->body, d, n) < 0)
		return fail(p, 500, "out of memory");
	return MG_HTTP_PARSE_MORE;
}

/* Counts one byte of chunk extension or trailer against the head limit. */
static bool over_trailer_limit(struct mg_http_parser *p)
{
	return ++p->trailer_bytes > p->max_header_bytes;
}

static enum mg_http_parse_status feed_body(struct mg_http_parser *p, const char *data, size_t len,
                                           size_t *used)
{
	size_t pos = 0;
	enum mg_http_parse_status rc = MG_HTTP_PARSE_MORE;
	while (pos < len && rc == MG_HTTP_PARSE_MORE) {
		unsigned char c = (unsigned char)data[pos];
		switch (p->state) {
		case ST_BODY:
		case ST_CHUNK_DATA: {
			size_t n = len - pos;
			if (n > p->chunk_left)
				n = (size_t)p->chunk_left;
			if (append_body(p, data + pos, n) != MG_HTTP_PARSE_MORE)
				return MG_HTTP_PARSE_ERROR;
			pos += n;
			p->chunk_left -= n;
			if (p->chunk_left == 0) {
				if (p->state == ST_BODY) {
					p->state = ST_DONE;
					rc = MG_HTTP_PARSE_DONE;
				} else {
					p->state = ST_CHUNK_DATA_CR;
				}
			}
			continue;
		}
		case ST_CHUNK_SIZE: {
			int x = mg_hex_value(c);
			if (x >= 0) {
				if (++p->chunk_digits > MAX_CHUNK_DIGITS)
					return fail(p, 400, "chunk size too long");
				p->chunk_left = p->chunk_left << 4 | (uint64_t)x;
				break;
			}
			if (p->chunk_digits == 0)
				return fail(p, 400, "invalid chunk size");
			if (c == '\r')
				p->state = ST_CHUNK_SIZE_LF;
			else if (c == ';')
				p->state = ST_CHUNK_EXT;
			else if (IS(c, C_WS))
				p->state = ST_CHUNK_BWS;
			else
				return fail(p, 400, "invalid chunk size");
			if (c != '\r' && over_trailer_limit(p))
				return fail(p, 400, "chunk extensions too long");
			break;
		}
		case ST_CHUNK_BWS:
			if (c == ';')
				p->state = ST_CHUNK_EXT;
			else if (!IS(c, C_WS))
				return fail(p, 400, "invalid chunk extension");
			if (over_trailer_limit(p))
				return fail(p, 400, "chunk extensions too long");
			break;
		case ST_CHUNK_EXT: {
			size_t k = pos;
			while (k < len && IS(data[k], C_VALUE))
				k++;
			size_t n = k - pos;
			p->trailer_bytes += n;
			if (p->trailer_bytes > p->max_header_bytes)
				return fail(p, 400, "chunk extensions too long");
			pos = k;
			if (pos == len)
				continue;
			if (data[pos] != '\r')
				return fail(p, 400, "invalid chunk extension");
			p->state = ST_CHUNK_SIZE_LF;
			break;
		}
		case ST_CHUNK_SIZE_LF:
			if (c != '\n')
				return fail(p, 400, "bare CR in chunk size");
			if (p->chunk_left == 0) {
				p->state = ST_TRAILER;
			} else if (p->body.len > p->max_body_bytes ||
			           p->chunk_left > p->max_body_bytes - p->body.len) {
				return fail(p, 413, "body too large");
			} else {
				p->state = ST_CHUNK_DATA;
			}
			break;
		case ST_CHUNK_DATA_CR:
			if (c != '\r')
				return fail(p, 400, "missing CRLF after chunk data");
			p->state = ST_CHUNK_DATA_LF;
			break;
		case ST_CHUNK_DATA_LF:
			if (c != '\n')
				return fail(p, 400, "missing CRLF after chunk data");
			p->state = ST_CHUNK_SIZE;
			p->chunk_digits = 0;
			p->chunk_left = 0;
			break;
		case ST_TRAILER:
			if (c == '\r')
				p->state = ST_TRAILER_END_LF;
			else if (IS(c, C_TCHAR))
				p->state = ST_TRAILER_NAME;
			else if (IS(c, C_WS))
				return fail(p, 400, "obs-fold in trailer");
			else
				return fail(p, 400, "invalid trailer name");
			if (over_trailer_limit(p))
				return fail(p, 431, "trailers too large");
			break;
		case ST_TRAILER_NAME:
			if (c == ':')
				p->state = ST_TRAILER_VALUE;
			else if (IS(c, C_WS))
				return fail(p, 400, "whitespace before colon in trailer");
			else if (!IS(c, C_TCHAR))
				return fail(p, 400, "invalid trailer name");
			if (over_trailer_limit(p))
				return fail(p, 431, "trailers too large");
			break;
		case ST_TRAILER_VALUE: {
			size_t k = pos;
			while (k < len && IS(data[k], C_VALUE))
				k++;
			p->trailer_bytes += k - pos;
			if (p->trailer_bytes > p->max_header_bytes)
				return fail(p, 431, "trailers too large");
			pos = k;
			if (pos == len)
				continue;
			if (data[pos] != '\r')
				return fail(p, 400, "invalid trailer value");
			p->state = ST_TRAILER_LF;
			break;
		}
		case ST_TRAILER_LF:
			if (c != '\n')
				return fail(p, 400, "bare CR in trailer");
			p->state = ST_TRAILER;
			break;
		case ST_TRAILER_END_LF:
			if (c != '\n')
				return fail(p, 400, "bare CR after trailers");
			p->state = ST_DONE;
			rc = MG_HTTP_PARSE_DONE;
			break;
		default:
			return fail(p, 500, "parser in an impossible state");
		}
		pos++;
	}
	*used = pos;
	return rc;
}

enum mg_http_parse_status mg_http_parse(struct mg_http_parser *p, const char *data, size_t len,
                                        size_t *consumed)
{
	size_t used = 0;
	enum mg_http_parse_status rc;
	if (!data)
		data = "";
	if (p->state == ST_ERROR)
		rc = MG_HTTP_PARSE_ERROR;
	else if (p->state == ST_DONE)
		rc = MG_HTTP_PARSE_DONE;
	else if (p->state <= ST_HEAD)
		rc = feed_head(p, data, len, &used);
	else
		rc = feed_body(p, data, len, &used);
	*consumed = used;
	return rc;
}

/* ---- lookups ---------------------------------------------------------- */

/* Most lookups are for headers a request does not carry (the proxy and
 * tracing headers): no name of that length, no walk through the fields. */
static bool may_have(const struct mg_http_parser *p, size_t n)
{
	return (p->name_lens >> (n & 63)) & 1;
}

/* The first field named `name` (n bytes), by a walk. */
static const struct mg_http_header *walk(const struct mg_http_parser *p, const char *name, size_t n)
{
	for (size_t i = 0; i < p->n_headers; i++)
		if (name_is(&p->headers[i], name, n))
			return &p->headers[i];
	return NULL;
}

const struct mg_http_header *mg_http_header_get(const struct mg_http_parser *p, const char *name)
{
	size_t n = strlen(name);
	return may_have(p, n) ? walk(p, name, n) : NULL;
}

const struct mg_http_header *mg_http_header_find(struct mg_http_parser *p, const char *name)
{
	size_t n = strlen(name);
	if (!may_have(p, n))
		return NULL; /* absent by its length alone: not worth a slot */
	size_t slots = sizeof p->memo / sizeof p->memo[0];
	for (unsigned i = 0; i < p->n_memo && i < slots; i++)
		if (p->memo[i].name == name)
			return p->memo[i].index < 0 ? NULL : &p->headers[p->memo[i].index];
	const struct mg_http_header *h = walk(p, name, n);
	if (p->n_memo < slots) {
		p->memo[p->n_memo].name = name;
		p->memo[p->n_memo].index = h ? (int16_t)(h - p->headers) : -1;
		p->n_memo++;
	}
	return h;
}

bool mg_http_headers_distinct(const struct mg_http_parser *p)
{
	if (p->n_headers > 24)
		return false; /* quadratic: the caller asks per name instead */
	for (size_t i = 1; i < p->n_headers; i++)
		for (size_t j = 0; j < i; j++)
			if (name_is(&p->headers[j], p->headers[i].name, p->headers[i].name_len))
				return false;
	return true;
}

size_t mg_http_header_count(const struct mg_http_parser *p, const char *name)
{
	size_t n = strlen(name), count = 0;
	if (!may_have(p, n))
		return 0;
	for (size_t i = 0; i < p->n_headers; i++)
		if (name_is(&p->headers[i], name, n))
			count++;
	return count;
}

bool mg_http_header_has_token(const struct mg_http_header *h, const char *token)
{
	if (!h)
		return false;
	size_t tlen = strlen(token);
	const char *s = h->value, *end = h->value + h->value_len;
	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *e = comma ? comma : end;
		const char *a = s, *b = e;
		while (a < b && IS(*a, C_WS))
			a++;
		while (b > a && IS(b[-1], C_WS))
			b--;
		if ((size_t)(b - a) == tlen && ci_eq(a, token, tlen))
			return true;
		s = comma ? comma + 1 : end;
	}
	return false;
}
