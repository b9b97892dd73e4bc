/*
 * h1response.h - strict, incremental HTTP/1.1 response parser (no I/O), for
 * the native upstream client (h1client.c).
 *
 * The counterpart of parser.h, which parses requests: the same header
 * rules (token names, field-value bytes, CRLF line ends, bounded head,
 * at most MG_HTTP_MAX_HEADERS fields, struct mg_http_header results) and
 * the same framing strictness, applied to what an upstream answers. The
 * body is not buffered: it is handed back as slices of the caller's input
 * (zero-copy), so an endless SSE stream costs no memory here; its reader
 * bounds what it keeps.
 *
 * Framing (RFC 9112 6.3), in this order:
 * - 1xx heads other than 101 are skipped (the final head follows); 101 is
 *   an error (the client never asks to switch protocols);
 * - no body after a HEAD request, 204 and 304;
 * - Transfer-Encoding must be exactly "chunked" (anything else, or
 *   together with Content-Length, is an error);
 * - Content-Length: digits only; several fields must be byte-identical;
 * - otherwise the body ends when the connection closes
 *   (mg_h1_response_eof), and the connection is not reused.
 * Chunk sizes take 1 to 16 hex digits; chunk extensions and trailers share
 * the max_head_bytes budget and are discarded. A body over max_body_bytes
 * (when set) is an error before its bytes are handed back.
 */
#ifndef MG_HTTP_H1RESPONSE_H
#define MG_HTTP_H1RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/parser.h"
#include "util/buf.h"

enum mg_h1_status {
	MG_H1_MORE,  /* every byte given was used; more are needed */
	MG_H1_HEAD,  /* the final response head is complete */
	MG_H1_BODY,  /* body bytes: *body, *body_len (inside the input) */
	MG_H1_DONE,  /* the response is complete */
	MG_H1_ERROR, /* malformed or over a limit: see `error` */
};

struct mg_h1_response {
	/* limits and request facts (set before the first feed) */
	size_t max_head_bytes;   /* status line + headers; also chunk extensions + trailers */
	uint64_t max_body_bytes; /* 0: no limit here */
	bool head_request;       /* the request was HEAD: no body follows */

	/* results, valid after MG_H1_HEAD */
	int status;
	int version_minor; /* 0 or 1 */
	struct mg_http_header headers[MG_HTTP_MAX_HEADERS];
	size_t n_headers;
	bool keep_alive;        /* the connection may carry the next request */
	bool chunked;           /* Transfer-Encoding: chunked */
	int64_t content_length; /* -1 when absent */
	uint64_t body_bytes;    /* body bytes handed back so far */

	/* after MG_H1_ERROR: a short static reason ("invalid status line") */
	const char *error;
	bool too_big; /* the error is max_body_bytes */

	/* private */
	int state;
	struct mg_buf head;
	uint64_t left;      /* Content-Length bytes or current chunk bytes to go */
	size_t extra_bytes; /* chunk extensions and trailers so far */
	unsigned digits;
};

/* Prepares a parser; allocates nothing until bytes arrive. */
void mg_h1_response_init(struct mg_h1_response *r, size_t max_head_bytes, uint64_t max_body_bytes);

/* Prepares for the next response on the same connection (keeps limits and
 * the head buffer's memory; `head_request` is cleared). */
void mg_h1_response_reset(struct mg_h1_response *r);

/* Releases the head buffer. */
void mg_h1_response_free(struct mg_h1_response *r);

/* Feeds bytes. `*consumed` says how many were used; call again with the
 * rest. MG_H1_HEAD is returned once per response; MG_H1_BODY hands back a
 * slice of `data` (already counted in *consumed); after MG_H1_DONE the
 * remaining bytes (if any) do not belong to this response; after DONE or
 * ERROR every call returns the same with nothing consumed. */
enum mg_h1_status mg_h1_response_feed(struct mg_h1_response *r, const char *data, size_t len,
                                      size_t *consumed, const char **body, size_t *body_len);

/* The connection closed: MG_H1_DONE when that ends a close-delimited body,
 * else MG_H1_ERROR ("connection closed before the end of the answer",
 * "connection closed before an answer"). */
enum mg_h1_status mg_h1_response_eof(struct mg_h1_response *r);

/* true before any byte of a response was fed (a stale keep-alive
 * connection that closed then may be retried). */
bool mg_h1_response_untouched(const struct mg_h1_response *r);

/* The last header of that name (case-insensitive), or NULL. */
const struct mg_http_header *mg_h1_response_header(const struct mg_h1_response *r,
                                                   const char *name);

#endif
