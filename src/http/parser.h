/*
 * parser.h - strict, incremental HTTP/1.1 request parser (no I/O).
 *
 * The connection layer (server.c) feeds bytes as they arrive; the parser
 * says when the request head is complete, then decodes the body
 * (Content-Length or chunked) into a bounded buffer. It is deliberately
 * strict because the gateway sits in front of other HTTP software and
 * must never disagree with it about where a request ends (request
 * smuggling): anything ambiguous is an error with the status to answer.
 *
 * Rejected (status in parentheses): bytes that are not tokens where a token
 * is expected, bare CR, obs-fold, whitespace before ':' (400); a request
 * line over max_header_bytes (414) or a head over it (431); more than
 * MG_HTTP_MAX_HEADERS headers (431); HTTP versions other than 1.0/1.1
 * (505); Transfer-Encoding other than a single "chunked" (501); both
 * Content-Length and Transfer-Encoding, several differing Content-Length
 * values, non-digit or overflowing lengths, chunked on HTTP/1.0 (400);
 * a body over max_body_bytes (413); malformed chunk sizes or trailers (400);
 * trailers over max_header_bytes (431). Running out of memory gives 500.
 * The request target must be origin-form ("/path?query") or "*" (OPTIONS);
 * absolute-form and authority-form are rejected (400).
 *
 * Choices where RFC 9112 leaves room (see parser.c for the full list):
 * lines must end in CRLF (a bare LF is rejected, 400); up to 4 empty lines
 * before the request line are skipped; a Host header is required on
 * HTTP/1.1 and may appear once; repeated byte-identical Content-Length
 * fields count as one; Expect values other than 100-continue are ignored.
 */
#ifndef MG_HTTP_PARSER_H
#define MG_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define MG_HTTP_MAX_HEADERS 64

struct mg_http_header {
	const char *name; /* points into the parser's head buffer; NUL-terminated */
	size_t name_len;
	const char *value; /* leading/trailing spaces and tabs removed; NUL-terminated */
	size_t value_len;
};

enum mg_http_parse_status {
	MG_HTTP_PARSE_MORE,  /* need more bytes */
	MG_HTTP_PARSE_HEAD,  /* request head complete; body may follow */
	MG_HTTP_PARSE_DONE,  /* request (head and body) complete */
	MG_HTTP_PARSE_ERROR, /* see `error_status` and `error` */
};

struct mg_http_parser {
	/* limits (set before the first feed) */
	size_t max_header_bytes; /* request line + headers */
	size_t max_body_bytes;

	/* results, valid after MG_HTTP_PARSE_HEAD */
	const char *method; /* NUL-terminated */
	size_t method_len;
	const char *target; /* raw request target, NUL-terminated */
	size_t target_len;
	const char *path; /* target up to '?', NUL-terminated copy */
	size_t path_len;
	const char *query; /* after '?', NUL-terminated (empty when none) */
	size_t query_len;
	int version_minor;              /* 0 or 1 */
	struct mg_http_header *headers; /* n_headers of them; grown as headers arrive */
	size_t n_headers;
	size_t headers_cap; /* private: allocated slots, at most MG_HTTP_MAX_HEADERS */
	uint64_t name_lens; /* private: bit (length % 64) of every header name */
	struct {            /* private: recent lookups (see mg_http_header_find) */
		const char *name;
		int16_t index; /* -1: absent */
	} memo[16];
	unsigned n_memo;
	bool keep_alive;        /* from version and Connection header */
	bool chunked;           /* Transfer-Encoding: chunked */
	bool expect_continue;   /* Expect: 100-continue */
	int64_t content_length; /* -1 when absent */
	struct mg_buf body;     /* decoded body, valid after MG_HTTP_PARSE_DONE */

	/* after MG_HTTP_PARSE_ERROR */
	int error_status;  /* 400, 413, 414, 431, 500, 501 or 505 */
	const char *error; /* short static reason, e.g. "invalid header name" */

	/* private state */
	int state;
	struct mg_buf head;      /* request head, parsed in place; pointers above point here */
	struct mg_buf path_copy; /* `path` when a query follows it */
	uint64_t chunk_left;     /* bytes left in the Content-Length body or the current chunk */
	size_t trailer_bytes; /* chunk extensions + trailers so far (bounded by max_header_bytes) */
	size_t scan_pos;      /* offset in `head` where the current line starts */
	unsigned chunk_digits; /* hex digits read in the current chunk-size */
	unsigned empty_lines;  /* empty lines skipped before the request line */
};

/* Prepares a parser with these limits (the two fields may still be changed
 * before the first feed). Allocates nothing until bytes arrive. */
void mg_http_parser_init(struct mg_http_parser *p, size_t max_header_bytes, size_t max_body_bytes);

/* Releases buffers. */
void mg_http_parser_free(struct mg_http_parser *p);

/* Prepares for the next request on the same connection (keeps limits and
 * buffers' memory). Invalidates every pointer from the previous request. */
void mg_http_parser_reset(struct mg_http_parser *p);

/* Feeds `len` bytes. Sets `*consumed` to how many bytes were used: after
 * MG_HTTP_PARSE_HEAD and MG_HTTP_PARSE_DONE the rest belongs to the body or
 * to the next (pipelined) request. After MG_HTTP_PARSE_HEAD, call again (even
 * with len 0) to continue with the body; HEAD is returned once per request,
 * also for requests without a body (the next call then returns DONE with
 * nothing consumed). After DONE or ERROR every call returns the same status
 * with nothing consumed until mg_http_parser_reset. A 413 for a too-large
 * Content-Length is returned instead of HEAD, with the head fields filled. */
enum mg_http_parse_status mg_http_parse(struct mg_http_parser *p, const char *data, size_t len,
                                        size_t *consumed);

/* Finds a header by case-insensitive name; NULL when absent. When a header
 * appears several times the first is returned. */
const struct mg_http_header *mg_http_header_get(const struct mg_http_parser *p, const char *name);

/* mg_http_header_get for a complete head, remembering the answer by the
 * address of `name` (a request asks for the same literal names several
 * times: the session id six times); the memory (16 names; names absent by
 * their length alone are not kept, they cost nothing) is cleared with the
 * head. */
const struct mg_http_header *mg_http_header_find(struct mg_http_parser *p, const char *name);

/* Counts headers with this name (case-insensitive). */
/* true when no two header fields share a name (case-insensitive): the
 * common case, checked at once before asking about single names. false
 * also beyond 24 fields (the pairwise check would cost more than asking). */
bool mg_http_headers_distinct(const struct mg_http_parser *p);

size_t mg_http_header_count(const struct mg_http_parser *p, const char *name);

/* true when the comma-separated header value list contains `token`
 * (case-insensitive, e.g. Connection: keep-alive, Upgrade). */
bool mg_http_header_has_token(const struct mg_http_header *h, const char *token);

/* Shared with the response parser (h1response.c). */

/* Parses the field line "name: value CRLF" that starts at s[pos] in a head
 * of `end` bytes, in place: name and value are NUL-terminated inside `s`
 * (value without surrounding whitespace) and described in `*h`. The head
 * must end in CRLF CRLF (so every scan stops inside it). Returns the
 * offset of the next line, or 0 with a static reason in `*why` (obs-fold,
 * whitespace before the colon, a name that is not a token, a value byte
 * that is not allowed, bare CR). */
size_t mg_http_field_parse(char *s, size_t pos, size_t end, struct mg_http_header *h,
                           const char **why);

/* Content-Length syntax: 1*DIGIT, at most INT64_MAX. Returns 0 and the
 * value, or -1. */
int mg_http_parse_length(const char *s, size_t n, int64_t *out);

#endif
