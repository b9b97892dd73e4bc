/*
 * h1response.c - strict, incremental HTTP/1.1 response parser. See
 * h1response.h.
 *
 * Head: bytes are appended to `head` (at most max_head_bytes) until the
 * first CRLF CRLF; then the status line is checked and the field lines are
 * parsed in place by mg_http_field_parse, the same code the request parser
 * uses, so both directions agree on what a header is. The framing headers
 * are noted as they are met. Interim (1xx) heads are dropped and the
 * search starts again with the bytes after them.
 *
 * Body: Content-Length and close-delimited bodies are handed back as
 * slices of the input. Chunked bodies go through a small per-byte state
 * machine for sizes, extensions, CRLFs and trailers, and chunk data is
 * handed back in bulk. Nothing of the body is copied.
 *
 * Choices where RFC 9112 leaves room: every line ends in CRLF (a bare LF
 * or CR is an error); the reason phrase may be absent ("HTTP/1.1 200");
 * an HTTP/1.0 answer is reused only with "Connection: keep-alive" and a
 * length; at most MAX_INTERIM interim heads per response.
 */
#include "http/h1response.h"

#include <string.h>
#include <strings.h>

enum {
	ST_HEAD,
	ST_HEAD_DONE, /* HEAD was returned; the body (or DONE) is next */
	ST_BODY_LEN,  /* Content-Length: `left` bytes to go */
	ST_BODY_CLOSE,
	ST_CHUNK_SIZE,
	ST_CHUNK_BWS,
	ST_CHUNK_EXT,
	ST_CHUNK_SIZE_LF,
	ST_CHUNK_DATA,
	ST_CHUNK_DATA_CR,
	ST_CHUNK_DATA_LF,
	ST_TRAILER,
	ST_TRAILER_LINE,
	ST_TRAILER_LF,
	ST_TRAILER_END_LF,
	ST_DONE,
	ST_ERROR,
};

#define MAX_INTERIM      16
#define MAX_CHUNK_DIGITS 16
/* A head buffer that grew past this is released on reset. */
#define KEEP_HEAD_CAP 8192

static enum mg_h1_status fail(struct mg_h1_response *r, const char *why)
{
	r->state = ST_ERROR;
	r->error = why;
	return MG_H1_ERROR;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A byte allowed in a chunk extension or trailer line (field-value). */
static bool value_byte(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

void mg_h1_response_init(struct mg_h1_response *r, size_t max_head_bytes, uint64_t max_body_bytes)
{
	memset(r, 0, sizeof *r);
	r->max_head_bytes = max_head_bytes;
	r->max_body_bytes = max_body_bytes;
	r->content_length = -1;
	mg_buf_init(&r->head, 0);
}

void mg_h1_response_reset(struct mg_h1_response *r)
{
	struct mg_buf head = r->head;
	size_t mh = r->max_head_bytes;
	uint64_t mb = r->max_body_bytes;
	if (head.cap > KEEP_HEAD_CAP)
		mg_buf_free(&head);
	mg_buf_reset(&head);
	memset(r, 0, sizeof *r);
	r->head = head;
	r->max_head_bytes = mh;
	r->max_body_bytes = mb;
	r->content_length = -1;
}

void mg_h1_response_free(struct mg_h1_response *r)
{
	mg_buf_free(&r->head);
}

bool mg_h1_response_untouched(const struct mg_h1_response *r)
{
	return r->state == ST_HEAD && r->head.len == 0 && r->status == 0;
}

const struct mg_http_header *mg_h1_response_header(const struct mg_h1_response *r, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = r->n_headers; i-- > 0;)
		if (r->headers[i].name_len == nl && strcasecmp(r->headers[i].name, name) == 0)
			return &r->headers[i];
	return NULL;
}

/* The status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF. Returns the offset
 * of the first field line, or 0. */
static size_t parse_status_line(struct mg_h1_response *r, const char *s, size_t len)
{
	const char *nl = memchr(s, '\n', len);
	if (!nl || nl == s || nl[-1] != '\r')
		return 0;
	size_t eol = (size_t)(nl - s) - 1;
	if (eol < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
		return 0;
	int code = 0;
	for (size_t i = 9; i < 12; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		code = code * 10 + (s[i] - '0');
	}
	if (code < 100)
		return 0;
	if (eol > 12) {
		if (s[12] != ' ')
			return 0;
		for (size_t i = 13; i < eol; i++)
			if (!value_byte((unsigned char)s[i]))
				return 0;
	}
	r->version_minor = s[7] - '0';
	r->status = code;
	return eol + 2;
}

/* The head (status line, fields, empty line) is in r->head: parse it and
 * choose the framing. */
static enum mg_h1_status finish_head(struct mg_h1_response *r)
{
	char *s = r->head.data;
	size_t len = r->head.len;
	size_t pos = parse_status_line(r, s, len);
	if (!pos)
		return fail(r, "invalid status line");
	r->n_headers = 0;
	const struct mg_http_header *cl = NULL;
	unsigned n_te = 0;
	bool te_chunked = false, conn_close = false, conn_keep = false;
	while (s[pos] != '\r') {
		if (r->n_headers == MG_HTTP_MAX_HEADERS)
			return fail(r, "too many headers");
		struct mg_http_header *h = &r->headers[r->n_headers];
		const char *why = NULL;
		size_t next = mg_http_field_parse(s, pos, len, h, &why);
		if (!next)
			return fail(r, why);
		r->n_headers++;
		pos = next;
		if (h->name_len == 14 && strcasecmp(h->name, "content-length") == 0) {
			int64_t v;
			if (mg_http_parse_length(h->value, h->value_len, &v) < 0)
				return fail(r, "invalid Content-Length");
			if (cl && (cl->value_len != h->value_len ||
			           memcmp(cl->value, h->value, h->value_len) != 0))
				return fail(r, "conflicting Content-Length");
			cl = h;
			r->content_length = v;
		} else if (h->name_len == 17 && strcasecmp(h->name, "transfer-encoding") == 0) {
			n_te++;
			te_chunked = strcasecmp(h->value, "chunked") == 0;
		} else if (h->name_len == 10 && strcasecmp(h->name, "connection") == 0) {
			conn_close |= mg_http_header_has_token(h, "close");
			conn_keep |= mg_http_header_has_token(h, "keep-alive");
		}
	}
	if (pos + 2 != len)
		return fail(r, "bare CR in header");
	if (r->status < 200) {
		if (r->status == 101)
			return fail(r, "unexpected protocol switch (101)");
		return MG_H1_MORE; /* interim: the caller drops it */
	}
	if (n_te && cl)
		return fail(r, "both Content-Length and Transfer-Encoding");
	if (n_te > 1 || (n_te && !te_chunked))
		return fail(r, "unsupported Transfer-Encoding");
	r->keep_alive = r->version_minor == 1 ? !conn_close : conn_keep && !conn_close;
	bool no_body = r->head_request || r->status == 204 || r->status == 304;
	r->chunked = n_te && !no_body;
	if (no_body) {
		r->left = 0;
		r->state = ST_HEAD_DONE;
	} else if (r->chunked) {
		r->state = ST_HEAD_DONE;
	} else if (cl) {
		if (r->max_body_bytes && (uint64_t)r->content_length > r->max_body_bytes) {
			r->too_big = true;
			return fail(r, "answer too large");
		}
		r->left = (uint64_t)r->content_length;
		r->state = ST_HEAD_DONE;
	} else {
		r->keep_alive = false; /* the body ends with the connection */
		r->state = ST_HEAD_DONE;
	}
	return MG_H1_HEAD;
}

/* The first "\r\n\r\n" in s[0..n), or NULL (memchr for each LF: cheaper
 * than memmem's set-up on a head of a few lines). */
static const char *blank_line(const char *s, size_t n)
{
	const char *end = s + n;
	for (const char *q = s; q < end && (q = memchr(q, '\n', (size_t)(end - q))); q++)
		if (q - s >= 3 && q[-1] == '\r' && q[-2] == '\n' && q[-3] == '\r')
			return q - 3;
	return NULL;
}

static enum mg_h1_status feed_head(struct mg_h1_response *r, const char *data, size_t len,
                                   size_t *used)
{
	size_t old = r->head.len;
	size_t room = r->max_head_bytes > old ? r->max_head_bytes - old : 0;
	size_t n = len < room ? len : room;
	const char *end;
	if (old == 0) {
		/* The usual case, a whole head in one read: found in place, and
		 * only the head is copied (not the body read with it). */
		end = blank_line(data, n);
		size_t take = end ? (size_t)(end - data) + 4 : n;
		if (take && mg_buf_append(&r->head, data, take) < 0)
			return fail(r, "out of memory");
		if (end)
			end = r->head.data + (take - 4);
	} else {
		if (n && mg_buf_append(&r->head, data, n) < 0)
			return fail(r, "out of memory");
		size_t from = old > 3 ? old - 3 : 0;
		end =
		    r->head.len > from ? blank_line(r->head.data + from, r->head.len - from) : NULL;
	}
	if (!end) {
		*used = n;
		if (r->head.len >= r->max_head_bytes)
			return fail(r, "response head too large");
		return MG_H1_MORE;
	}
	size_t head_len = (size_t)(end - r->head.data) + 4;
	*used = head_len - old;
	r->head.len = head_len;
	r->head.data[head_len] = '\0';
	enum mg_h1_status st = finish_head(r);
	if (st == MG_H1_MORE) { /* an interim head: start again */
		if (++r->digits > MAX_INTERIM)
			return fail(r, "too many interim responses");
		mg_buf_reset(&r->head);
	}
	return st;
}

/* After the head: the framing's first state. */
static void start_body(struct mg_h1_response *r)
{
	if (r->chunked)
		r->state = ST_CHUNK_SIZE;
	else if (r->content_length >= 0 || r->head_request || r->status == 204 || r->status == 304)
		r->state = r->left ? ST_BODY_LEN : ST_DONE;
	else
		r->state = ST_BODY_CLOSE;
	r->digits = 0;
}

static enum mg_h1_status give(struct mg_h1_response *r, const char *p, size_t n, size_t *used,
                              const char **body, size_t *body_len)
{
	*used += n;
	*body = p;
	*body_len = n;
	r->body_bytes += n;
	return MG_H1_BODY;
}

static bool over_extra(struct mg_h1_response *r)
{
	return ++r->extra_bytes > r->max_head_bytes;
}

enum mg_h1_status mg_h1_response_feed(struct mg_h1_response *r, const char *data, size_t len,
                                      size_t *consumed, const char **body, size_t *body_len)
{
	*consumed = 0;
	*body = NULL;
	*body_len = 0;
	if (r->state == ST_HEAD) {
		for (;;) {
			size_t used = 0;
			enum mg_h1_status st =
			    feed_head(r, data + *consumed, len - *consumed, &used);
			*consumed += used;
			if (st != MG_H1_MORE || r->state != ST_HEAD || *consumed == len)
				return st;
		}
	}
	if (r->state == ST_HEAD_DONE)
		start_body(r);
	size_t i = 0;
	while (r->state != ST_DONE && r->state != ST_ERROR) {
		if (r->state == ST_BODY_CLOSE || r->state == ST_BODY_LEN ||
		    r->state == ST_CHUNK_DATA) {
			if (i == len)
				break;
			size_t n = len - i;
			if (r->state != ST_BODY_CLOSE && n > r->left)
				n = (size_t)r->left;
			if (r->state == ST_BODY_CLOSE && r->max_body_bytes &&
			    r->body_bytes + n > r->max_body_bytes) {
				r->too_big = true;
				*consumed = i;
				return fail(r, "answer too large");
			}
			if (r->state != ST_BODY_CLOSE) {
				r->left -= n;
				if (!r->left)
					r->state =
					    r->state == ST_BODY_LEN ? ST_DONE : ST_CHUNK_DATA_CR;
			}
			*consumed = i;
			return give(r, data + i, n, consumed, body, body_len);
		}
		if (i == len)
			break;
		unsigned char c = (unsigned char)data[i++];
		switch (r->state) {
		case ST_CHUNK_SIZE: {
			int v = hexval(c);
			if (v >= 0) {
				if (++r->digits > MAX_CHUNK_DIGITS)
					goto bad_size;
				r->left = r->left << 4 | (uint64_t)v;
			} else if (r->digits == 0) {
				goto bad_size;
			} else if (c == '\r') {
				r->state = ST_CHUNK_SIZE_LF;
			} else if (c == ';') {
				r->state = ST_CHUNK_EXT;
			} else if (c == ' ' || c == '\t') {
				r->state = ST_CHUNK_BWS;
			} else {
				goto bad_size;
			}
			break;
		}
		case ST_CHUNK_BWS:
			if (c == ';')
				r->state = ST_CHUNK_EXT;
			else if (c != ' ' && c != '\t')
				goto bad_size;
			else if (over_extra(r))
				goto too_long;
			break;
		case ST_CHUNK_EXT:
			if (c == '\r')
				r->state = ST_CHUNK_SIZE_LF;
			else if (!value_byte(c))
				goto bad_size;
			else if (over_extra(r))
				goto too_long;
			break;
		case ST_CHUNK_SIZE_LF:
			if (c != '\n')
				goto bad_size;
			r->digits = 0;
			if (r->left == 0) {
				r->state = ST_TRAILER;
			} else if (r->max_body_bytes &&
			           r->left > r->max_body_bytes - r->body_bytes) {
				r->too_big = true;
				*consumed = i;
				return fail(r, "answer too large");
			} else {
				r->state = ST_CHUNK_DATA;
			}
			break;
		case ST_CHUNK_DATA_CR:
			if (c != '\r')
				goto bad_chunk;
			r->state = ST_CHUNK_DATA_LF;
			break;
		case ST_CHUNK_DATA_LF:
			if (c != '\n')
				goto bad_chunk;
			r->state = ST_CHUNK_SIZE;
			break;
		case ST_TRAILER:
			if (c == '\r')
				r->state = ST_TRAILER_END_LF;
			else if (c == ' ' || c == '\t' || !value_byte(c) || c == ':')
				goto bad_trailer;
			else if (over_extra(r))
				goto too_long;
			else
				r->state = ST_TRAILER_LINE;
			break;
		case ST_TRAILER_LINE:
			if (c == '\r')
				r->state = ST_TRAILER_LF;
			else if (!value_byte(c))
				goto bad_trailer;
			else if (over_extra(r))
				goto too_long;
			break;
		case ST_TRAILER_LF:
			if (c != '\n')
				goto bad_trailer;
			r->state = ST_TRAILER;
			break;
		case ST_TRAILER_END_LF:
			if (c != '\n')
				goto bad_trailer;
			r->state = ST_DONE;
			break;
		default:
			break;
		}
	}
	*consumed = i;
	if (r->state == ST_DONE)
		return MG_H1_DONE;
	if (r->state == ST_ERROR)
		return MG_H1_ERROR;
	return MG_H1_MORE;
bad_size:
	*consumed = i;
	return fail(r, "invalid chunk size");
bad_chunk:
	*consumed = i;
	return fail(r, "chunk data longer than its size");
bad_trailer:
	*consumed = i;
	return fail(r, "invalid trailer");
too_long:
	*consumed = i;
	return fail(r, "chunk extensions or trailers too long");
}

enum mg_h1_status mg_h1_response_eof(struct mg_h1_response *r)
{
	if (r->state == ST_HEAD_DONE)
		start_body(r);
	switch (r->state) {
	case ST_DONE:
	case ST_BODY_CLOSE:
		r->state = ST_DONE;
		return MG_H1_DONE;
	case ST_ERROR:
		return MG_H1_ERROR;
	case ST_HEAD:
		if (mg_h1_response_untouched(r))
			return fail(r, "connection closed before an answer");
		return fail(r, "connection closed in the middle of the answer's head");
	default:
		return fail(r, "connection closed before the end of the answer");
	}
}
