/*
 * test_http_parser.c - unit tests for the strict HTTP/1.1 request parser
 * (http/parser.c): results of good requests fed whole, split at every
 * position and byte by byte, pipelining, and each rejection with its status.
 */
#include "support.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "http/parser.h"

#define HEAD_MAX 1024
#define BODY_MAX 1024

/* Feeds `len` bytes in calls of at most `step` bytes (0: all at once),
 * continuing after HEAD, until DONE, ERROR or the bytes run out. Returns the
 * last status and sets *total to the bytes consumed. */
static enum mg_http_parse_status feed_steps(struct mg_http_parser *p, const char *data, size_t len,
                                            size_t step, size_t *total)
{
	size_t off = 0;
	enum mg_http_parse_status st = MG_HTTP_PARSE_MORE;
	size_t heads = 0;
	for (;;) {
		size_t n = len - off;
		if (step && n > step)
			n = step;
		size_t used = 99999;
		st = mg_http_parse(p, data + off, n, &used);
		assert_true(used <= n);
		off += used;
		if (st == MG_HTTP_PARSE_HEAD) {
			heads++;
			continue;
		}
		if (st != MG_HTTP_PARSE_MORE || off == len)
			break;
		assert_int_equal(used, n); /* MORE consumes everything it was given */
	}
	assert_true(heads <= 1);
	*total = off;
	return st;
}

static enum mg_http_parse_status feed_all(struct mg_http_parser *p, const char *data, size_t len,
                                          size_t *total)
{
	return feed_steps(p, data, len, 0, total);
}

/* Feeds the first `split` bytes, then the rest. */
static enum mg_http_parse_status feed_split(struct mg_http_parser *p, const char *data, size_t len,
                                            size_t split, size_t *total)
{
	size_t a = 0, b = 0;
	enum mg_http_parse_status st = feed_all(p, data, split, &a);
	if (st == MG_HTTP_PARSE_DONE || st == MG_HTTP_PARSE_ERROR) {
		*total = a;
		return st;
	}
	assert_int_equal(a, split);
	st = feed_all(p, data + split, len - split, &b);
	*total = a + b;
	return st;
}

static enum mg_http_parse_status parse_str(struct mg_http_parser *p, const char *req)
{
	size_t total;
	mg_http_parser_init(p, HEAD_MAX, BODY_MAX);
	return feed_all(p, req, strlen(req), &total);
}

/* The request must be rejected with `status`, whole and byte by byte. */
static int atoi_like(const char *s)
{
	int v = 0;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (*s++ - '0');
	return v;
}

static void expect_status_n(const char *req, size_t len, size_t head_max, size_t body_max,
                            int status)
{
	struct mg_http_parser p;
	size_t total;
	for (size_t step = 0; step < 2; step++) {
		mg_http_parser_init(&p, head_max, body_max);
		enum mg_http_parse_status st = feed_steps(&p, req, len, step, &total);
		if (st != MG_HTTP_PARSE_ERROR || p.error_status != status)
			fail_msg("step %zu: expected %d, got status %d/%d (%s) for: %.60s", step,
			         status, (int)st, p.error_status, p.error ? p.error : "-", req);
		assert_non_null(p.error);
		/* An error sticks until reset. */
		size_t used = 1;
		assert_int_equal(mg_http_parse(&p, "x", 1, &used), MG_HTTP_PARSE_ERROR);
		assert_int_equal(used, 0);
		mg_http_parser_free(&p);
	}
}

static void expect_status(const char *req, int status)
{
	expect_status_n(req, strlen(req), HEAD_MAX, BODY_MAX, status);
}

/* For literals with a NUL inside. */
#define EXPECT_STATUS_LIT(lit, status)                                                             \
	expect_status_n(lit, sizeof(lit) - 1, HEAD_MAX, BODY_MAX, status)

/* The request must parse completely, whole and byte by byte. */
static void expect_done(const char *req)
{
	struct mg_http_parser p;
	size_t total;
	for (size_t step = 0; step < 2; step++) {
		mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
		enum mg_http_parse_status st = feed_steps(&p, req, strlen(req), step, &total);
		if (st != MG_HTTP_PARSE_DONE)
			fail_msg("step %zu: expected DONE, got %d/%d (%s) for: %.60s", step,
			         (int)st, p.error_status, p.error ? p.error : "-", req);
		assert_int_equal(total, strlen(req));
		mg_http_parser_free(&p);
	}
}

#define H11 " HTTP/1.1\r\nHost: example.com\r\n"

/* ---- good requests ------------------------------------------------------ */

/* Lookups: case-insensitive, the first of repeated fields, absent names
 * (also of a length some field has), and the memory of mg_http_header_find
 * cleared with the head, so a keep-alive connection's next request is
 * answered from its own fields. */
static void test_header_lookups(void **state)
{
	(void)state;
	struct mg_http_parser p;
	const char *r1 = "POST /mcp HTTP/1.1\r\nHost: a\r\nAccept: x\r\n"
	                 "Mcp-Session-Id: s1\r\nmcp-session-id: s2\r\nContent-Length: 0\r\n\r\n";
	const char *r2 = "POST /mcp HTTP/1.1\r\nHost: a\r\nOrigin: o\r\nContent-Length: 0\r\n\r\n";
	static const char sid[] = "Mcp-Session-Id", origin[] = "Origin", accept[] = "ACCEPT";
	size_t used = 0;
	mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
	assert_int_equal(mg_http_parse(&p, r1, strlen(r1), &used), MG_HTTP_PARSE_HEAD);
	for (int round = 0; round < 2; round++) {
		assert_string_equal(mg_http_header_find(&p, sid)->value, "s1");
		assert_string_equal(mg_http_header_find(&p, accept)->value, "x");
		assert_null(mg_http_header_find(&p, origin)); /* the length of Accept's */
		assert_null(mg_http_header_find(&p, "Traceparent"));
	}
	assert_int_equal(mg_http_header_count(&p, sid), 2);
	mg_http_parser_reset(&p);
	assert_int_equal(mg_http_parse(&p, r2, strlen(r2), &used), MG_HTTP_PARSE_HEAD);
	assert_null(mg_http_header_find(&p, sid));
	assert_string_equal(mg_http_header_find(&p, origin)->value, "o");
	assert_null(mg_http_header_find(&p, accept));
	mg_http_parser_free(&p);
}

static void test_simple_get(void **state)
{
	(void)state;
	struct mg_http_parser p;
	const char *req = "GET /index.html?x=1&y=2 HTTP/1.1\r\n"
	                  "Host: example.com\r\n"
	                  "User-Agent:\tcurl/8 \t\r\n"
	                  "Accept: */*\r\n"
	                  "X-Empty:\r\n"
	                  "\r\n";
	size_t len = strlen(req), used = 0;
	mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
	assert_null(p.method);
	assert_int_equal(mg_http_parse(&p, req, len, &used), MG_HTTP_PARSE_HEAD);
	assert_int_equal(used, len);
	assert_string_equal(p.method, "GET");
	assert_int_equal(p.method_len, 3);
	assert_string_equal(p.target, "/index.html?x=1&y=2");
	assert_int_equal(p.target_len, 19);
	assert_string_equal(p.path, "/index.html");
	assert_int_equal(p.path_len, 11);
	assert_string_equal(p.query, "x=1&y=2");
	assert_int_equal(p.query_len, 7);
	assert_int_equal(p.version_minor, 1);
	assert_int_equal(p.n_headers, 4);
	assert_string_equal(p.headers[0].name, "Host");
	assert_string_equal(p.headers[0].value, "example.com");
	assert_int_equal(p.headers[0].value_len, 11);
	assert_string_equal(p.headers[1].value, "curl/8");
	assert_int_equal(p.headers[1].value_len, 6);
	assert_string_equal(p.headers[3].name, "X-Empty");
	assert_string_equal(p.headers[3].value, "");
	assert_int_equal(p.headers[3].value_len, 0);
	assert_true(p.keep_alive);
	assert_false(p.chunked);
	assert_false(p.expect_continue);
	assert_int_equal(p.content_length, -1);
	/* HEAD once, then DONE with nothing consumed, and DONE sticks. */
	assert_int_equal(mg_http_parse(&p, NULL, 0, &used), MG_HTTP_PARSE_DONE);
	assert_int_equal(used, 0);
	assert_int_equal(mg_http_parse(&p, "GET", 3, &used), MG_HTTP_PARSE_DONE);
	assert_int_equal(used, 0);
	assert_non_null(p.body.data);
	assert_int_equal(p.body.len, 0);
	assert_string_equal(p.body.data, "");
	mg_http_parser_free(&p);
}

static void test_no_query_and_asterisk(void **state)
{
	(void)state;
	struct mg_http_parser p;
	assert_int_equal(parse_str(&p, "GET /a/b" H11 "\r\n"), MG_HTTP_PARSE_DONE);
	assert_string_equal(p.path, "/a/b");
	assert_string_equal(p.query, "");
	assert_int_equal(p.query_len, 0);
	mg_http_parser_free(&p);

	assert_int_equal(parse_str(&p, "GET /?" H11 "\r\n"), MG_HTTP_PARSE_DONE);
	assert_string_equal(p.path, "/");
	assert_string_equal(p.query, "");
	assert_string_equal(p.target, "/?");
	mg_http_parser_free(&p);

	assert_int_equal(parse_str(&p, "OPTIONS *" H11 "\r\n"), MG_HTTP_PARSE_DONE);
	assert_string_equal(p.target, "*");
	assert_string_equal(p.path, "*");
	mg_http_parser_free(&p);

	/* HTTP/1.0 needs no Host; obs-text is allowed in values. */
	assert_int_equal(parse_str(&p, "GET / HTTP/1.0\r\nX-Name: caf\xc3\xa9\r\n\r\n"),
	                 MG_HTTP_PARSE_DONE);
	assert_int_equal(p.version_minor, 0);
	assert_string_equal(p.headers[0].value, "caf\xc3\xa9");
	mg_http_parser_free(&p);
}

static void test_post_content_length(void **state)
{
	(void)state;
	struct mg_http_parser p;
	const char *req = "POST /mcp HTTP/1.1\r\n"
	                  "Host: localhost:8080\r\n"
	                  "Content-Type: application/json\r\n"
	                  "Content-Length: 11\r\n"
	                  "\r\n"
	                  "hello world";
	size_t len = strlen(req), used;
	mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
	assert_int_equal(mg_http_parse(&p, req, len, &used), MG_HTTP_PARSE_HEAD);
	assert_int_equal(used, len - 11);
	assert_int_equal(p.content_length, 11);
	size_t off = used;
	assert_int_equal(mg_http_parse(&p, req + off, 5, &used), MG_HTTP_PARSE_MORE);
	assert_int_equal(used, 5);
	off += used;
	assert_int_equal(mg_http_parse(&p, req + off, len - off, &used), MG_HTTP_PARSE_DONE);
	assert_int_equal(used, 6);
	assert_int_equal(p.body.len, 11);
	assert_string_equal(p.body.data, "hello world");
	mg_http_parser_free(&p);

	/* Content-Length: 0 and repeated identical values. */
	assert_int_equal(parse_str(&p, "POST /" H11 "Content-Length: 0\r\n\r\n"),
	                 MG_HTTP_PARSE_DONE);
	assert_int_equal(p.content_length, 0);
	assert_int_equal(p.body.len, 0);
	mg_http_parser_free(&p);
	assert_int_equal(
	    parse_str(&p, "POST /" H11 "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
	    MG_HTTP_PARSE_DONE);
	assert_string_equal(p.body.data, "abc");
	mg_http_parser_free(&p);
	/* Leading zeros are digits. */
	assert_int_equal(parse_str(&p, "POST /" H11 "Content-Length: 003\r\n\r\nabc"),
	                 MG_HTTP_PARSE_DONE);
	assert_int_equal(p.content_length, 3);
	mg_http_parser_free(&p);
}

static const char chunked_req[] = "\r\n"
                                  "POST /mcp?session=1 HTTP/1.1\r\n"
                                  "Host: example.com\r\n"
                                  "Transfer-Encoding: Chunked\r\n"
                                  "\r\n"
                                  "5;name=value\r\n"
                                  "hello\r\n"
                                  "A \t; a=\"q;x\" ;b\r\n"
                                  " world! :)\r\n"
                                  "0000\r\n"
                                  "X-Trailer: yes\r\n"
                                  "Other:  v\t \r\n"
                                  "\r\n";

static void check_chunked_result(const struct mg_http_parser *p)
{
	assert_true(p->chunked);
	assert_int_equal(p->content_length, -1);
	assert_string_equal(p->method, "POST");
	assert_string_equal(p->path, "/mcp");
	assert_string_equal(p->query, "session=1");
	assert_int_equal(p->body.len, 15);
	assert_memory_equal(p->body.data, "hello world! :)", 15);
	assert_int_equal(p->n_headers, 2);
}

static void test_chunked(void **state)
{
	(void)state;
	struct mg_http_parser p;
	size_t total;
	mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
	assert_int_equal(feed_all(&p, chunked_req, sizeof chunked_req - 1, &total),
	                 MG_HTTP_PARSE_DONE);
	assert_int_equal(total, sizeof chunked_req - 1);
	check_chunked_result(&p);
	mg_http_parser_free(&p);

	/* Empty body, upper-case hex, no trailers. */
	assert_int_equal(parse_str(&p, "POST /" H11 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
	                 MG_HTTP_PARSE_DONE);
	assert_int_equal(p.body.len, 0);
	mg_http_parser_free(&p);
	assert_int_equal(parse_str(&p, "POST /" H11 "Transfer-Encoding: chunked\r\n\r\n"
	                               "1F\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n"),
	                 MG_HTTP_PARSE_DONE);
	assert_int_equal(p.body.len, 31);
	mg_http_parser_free(&p);
}

static void test_pipelined(void **state)
{
	(void)state;
	struct mg_http_parser p;
	const char *r1 = "GET /one" H11 "\r\n";
	const char *r2 = "POST /two" H11 "Content-Length: 4\r\n\r\nabcd";
	const char *r3 = "POST /three" H11 "Transfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n";
	const char *r4 = "GET /fo";
	char all[1024];
	int n = snprintf(all, sizeof all, "%s%s\r\n%s%s", r1, r2, r3, r4);
	assert_true(n > 0 && (size_t)n < sizeof all);
	size_t len = (size_t)n, off = 0, total;

	mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
	assert_int_equal(feed_all(&p, all, len, &total), MG_HTTP_PARSE_DONE);
	assert_int_equal(total, strlen(r1));
	assert_string_equal(p.path, "/one");
	off += total;
	mg_http_parser_reset(&p);
	assert_int_equal(feed_all(&p, all + off, len - off, &total), MG_HTTP_PARSE_DONE);
	assert_int_equal(total, strlen(r2));
	assert_string_equal(p.path, "/two");
	assert_string_equal(p.body.data, "abcd");
	off += total;
	mg_http_parser_reset(&p);
	/* An extra CRLF after a body is skipped as an empty line. */
	assert_int_equal(feed_all(&p, all + off, len - off, &total), MG_HTTP_PARSE_DONE);
	assert_int_equal(total, 2 + strlen(r3));
	assert_string_equal(p.path, "/three");
	assert_string_equal(p.body.data, "xy");
	off += total;
	mg_http_parser_reset(&p);
	assert_int_equal(feed_all(&p, all + off, len - off, &total), MG_HTTP_PARSE_MORE);
	assert_int_equal(total, strlen(r4));
	assert_null(p.method);
	mg_http_parser_free(&p);
}

/* Feeding a request split at every position, and byte by byte, gives the
 * same result as feeding it whole. */
static void test_every_split(void **state)
{
	(void)state;
	struct mg_http_parser p;
	size_t len = sizeof chunked_req - 1, total;
	mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
	for (size_t k = 0; k <= len; k++) {
		mg_http_parser_reset(&p);
		assert_int_equal(feed_split(&p, chunked_req, len, k, &total), MG_HTTP_PARSE_DONE);
		assert_int_equal(total, len);
		check_chunked_result(&p);
		assert_null(mg_http_header_get(&p, "other")); /* trailers are dropped */
	}
	mg_http_parser_reset(&p);
	assert_int_equal(feed_steps(&p, chunked_req, len, 1, &total), MG_HTTP_PARSE_DONE);
	check_chunked_result(&p);

	const char *post = "POST /a?b=c HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n12345";
	len = strlen(post);
	for (size_t k = 0; k <= len; k++) {
		for (size_t step = 0; step < 3; step++) {
			mg_http_parser_reset(&p);
			enum mg_http_parse_status st = step
			                                   ? feed_steps(&p, post, len, step, &total)
			                                   : feed_split(&p, post, len, k, &total);
			assert_int_equal(st, MG_HTTP_PARSE_DONE);
			assert_int_equal(total, len);
			assert_string_equal(p.path, "/a");
			assert_string_equal(p.query, "b=c");
			assert_string_equal(p.body.data, "12345");
		}
	}
	mg_http_parser_free(&p);
}

static void test_reset_reuses_memory(void **state)
{
	(void)state;
	struct mg_http_parser p;
	const char *req = "POST /x?y" H11 "Content-Length: 3\r\n\r\nabc";
	size_t total;
	mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
	assert_int_equal(feed_all(&p, req, strlen(req), &total), MG_HTTP_PARSE_DONE);
	const char *head = p.head.data, *body = p.body.data;
	size_t head_cap = p.head.cap, body_cap = p.body.cap;
	for (int i = 0; i < 3; i++) {
		mg_http_parser_reset(&p);
		assert_int_equal(p.max_header_bytes, HEAD_MAX);
		assert_int_equal(p.max_body_bytes, BODY_MAX);
		assert_null(p.method);
		assert_int_equal(p.n_headers, 0);
		assert_int_equal(feed_all(&p, req, strlen(req), &total), MG_HTTP_PARSE_DONE);
		assert_ptr_equal(p.head.data, head);
		assert_ptr_equal(p.body.data, body);
		assert_int_equal(p.head.cap, head_cap);
		assert_int_equal(p.body.cap, body_cap);
		assert_string_equal(p.body.data, "abc");
	}
	mg_http_parser_free(&p);
}

/* ---- connection semantics ---------------------------------------------- */

static bool keep_alive_of(const char *req)
{
	struct mg_http_parser p;
	assert_int_equal(parse_str(&p, req), MG_HTTP_PARSE_DONE);
	bool ka = p.keep_alive;
	mg_http_parser_free(&p);
	return ka;
}

static void test_keep_alive(void **state)
{
	(void)state;
	assert_true(keep_alive_of("GET /" H11 "\r\n"));
	assert_false(keep_alive_of("GET /" H11 "Connection: close\r\n\r\n"));
	assert_false(keep_alive_of("GET /" H11 "Connection: Upgrade, CLOSE\r\n\r\n"));
	assert_true(keep_alive_of("GET /" H11 "Connection: keep-alive\r\n\r\n"));
	assert_false(keep_alive_of("GET / HTTP/1.0\r\n\r\n"));
	assert_true(keep_alive_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
	assert_false(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
	assert_false(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n"
	                           "Connection: close\r\n\r\n"));
	assert_false(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n"));
}

static void test_expect(void **state)
{
	(void)state;
	struct mg_http_parser p;
	const char *req = "POST /" H11 "Expect: 100-Continue\r\nContent-Length: 2\r\n\r\nok";
	size_t used;
	mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
	assert_int_equal(mg_http_parse(&p, req, strlen(req) - 2, &used), MG_HTTP_PARSE_HEAD);
	assert_true(p.expect_continue);
	mg_http_parser_free(&p);
	/* Ignored on HTTP/1.0; other expectations are ignored, not 417. */
	assert_int_equal(parse_str(&p, "POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"),
	                 MG_HTTP_PARSE_DONE);
	assert_false(p.expect_continue);
	mg_http_parser_free(&p);
	assert_int_equal(parse_str(&p, "POST /" H11 "Expect: teapot\r\n\r\n"), MG_HTTP_PARSE_DONE);
	assert_false(p.expect_continue);
	mg_http_parser_free(&p);
}

static void test_header_lookup(void **state)
{
	(void)state;
	struct mg_http_parser p;
	assert_int_equal(parse_str(&p, "GET /" H11 "X-A: 1\r\nx-a: 2\r\nX-B: 3\r\n"
	                               "Connection: keep-alive, Upgrade\r\n\r\n"),
	                 MG_HTTP_PARSE_DONE);
	const struct mg_http_header *h = mg_http_header_get(&p, "x-A");
	assert_non_null(h);
	assert_string_equal(h->value, "1");
	assert_string_equal(mg_http_header_get(&p, "HOST")->value, "example.com");
	assert_null(mg_http_header_get(&p, "X"));
	assert_null(mg_http_header_get(&p, "X-AB"));
	assert_int_equal(mg_http_header_count(&p, "X-a"), 2);
	assert_int_equal(mg_http_header_count(&p, "x-b"), 1);
	assert_int_equal(mg_http_header_count(&p, "x-c"), 0);

	h = mg_http_header_get(&p, "connection");
	assert_true(mg_http_header_has_token(h, "keep-alive"));
	assert_true(mg_http_header_has_token(h, "upgrade"));
	assert_true(mg_http_header_has_token(h, "UPGRADE"));
	assert_false(mg_http_header_has_token(h, "keep"));
	assert_false(mg_http_header_has_token(h, "alive"));
	assert_false(mg_http_header_has_token(h, "keep-alive, Upgrade"));
	assert_false(mg_http_header_has_token(h, "close"));
	assert_false(mg_http_header_has_token(NULL, "close"));
	struct mg_http_header odd = {
		.name = "X", .name_len = 1, .value = " ,a ,, \tb\t,", .value_len = 11
	};
	assert_true(mg_http_header_has_token(&odd, "a"));
	assert_true(mg_http_header_has_token(&odd, "b"));
	assert_false(mg_http_header_has_token(&odd, "a ,"));
	mg_http_parser_free(&p);
}

static void test_leading_empty_lines(void **state)
{
	(void)state;
	expect_done("\r\nGET /" H11 "\r\n");
	expect_done("\r\n\r\n\r\n\r\nGET /" H11 "\r\n");
	expect_status("\r\n\r\n\r\n\r\n\r\nGET /" H11 "\r\n", 400);
	expect_status("\nGET /" H11 "\r\n", 400);
	expect_status("\r\rGET /" H11 "\r\n", 400);

	/* TLS on the plain port fails at the first byte, not at the head limit. */
	struct mg_http_parser p;
	size_t used;
	mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
	assert_int_equal(mg_http_parse(&p, "\x16\x03\x01\x02\x00", 5, &used), MG_HTTP_PARSE_ERROR);
	assert_int_equal(p.error_status, 400);
	mg_http_parser_free(&p);
}

/* ---- rejections --------------------------------------------------------- */

static void test_reject_framing(void **state)
{
	(void)state;
	/* CL + TE, whatever the order and the coding. */
	expect_status("POST /" H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
	expect_status("POST /" H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400);
	expect_status("POST /" H11 "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n", 400);
	/* Content-Length values. */
	expect_status("POST /" H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400);
	expect_status("POST /" H11 "Content-Length: 5\r\nContent-Length: 05\r\n\r\n", 400);
	expect_status("POST /" H11 "Content-Length: 5, 5\r\n\r\n", 400);
	expect_status("POST /" H11 "Content-Length: +5\r\n\r\n", 400);
	expect_status("POST /" H11 "Content-Length: -1\r\n\r\n", 400);
	expect_status("POST /" H11 "Content-Length: 0x10\r\n\r\n", 400);
	expect_status("POST /" H11 "Content-Length:\r\n\r\n", 400);
	expect_status("POST /" H11 "Content-Length: 1 2\r\n\r\n", 400);
	expect_status("POST /" H11 "Content-Length: 9223372036854775808\r\n\r\n", 400);
	expect_status("POST /" H11 "Content-Length: 99999999999999999999999\r\n\r\n", 400);
	expect_status("POST /" H11 "Content-Length: 9223372036854775807\r\n\r\n", 413);
	/* Transfer-Encoding. */
	expect_status("POST /" H11 "Transfer-Encoding: gzip\r\n\r\n", 501);
	expect_status("POST /" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", 501);
	expect_status("POST /" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n", 501);
	expect_status("POST /" H11 "Transfer-Encoding: chunked\r\n"
	              "Transfer-Encoding: chunked\r\n\r\n",
	              501);
	expect_status("POST /" H11 "Transfer-Encoding: chunked;q=1\r\n\r\n", 501);
	expect_status("POST /" H11 "Transfer-Encoding: \r\n\r\n", 501);
	expect_status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
	expect_status("POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
}

static void test_reject_syntax(void **state)
{
	(void)state;
	/* Header lines. */
	expect_status("GET /" H11 "X-A: 1\r\n folded\r\n\r\n", 400);
	expect_status("GET /" H11 "X-A: 1\r\n\tfolded\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400);
	expect_status("GET /" H11 "X-A : 1\r\n\r\n", 400);
	expect_status("GET /" H11 "X-A\t: 1\r\n\r\n", 400);
	expect_status("GET /" H11 ": 1\r\n\r\n", 400);
	expect_status("GET /" H11 "X(A): 1\r\n\r\n", 400);
	expect_status("GET /" H11 "X-A 1\r\n\r\n", 400);
	EXPECT_STATUS_LIT("GET /" H11 "X-A: a\0b\r\n\r\n", 400);
	EXPECT_STATUS_LIT("GET /" H11 "X-A\0: a\r\n\r\n", 400);
	EXPECT_STATUS_LIT("GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_status("GET /" H11 "X-A: a\rb\r\n\r\n", 400);
	expect_status("GET /" H11 "X-A: a\r\r\n\r\n", 400);
	expect_status("GET /" H11 "X-A: a\r\n\rX-B: b\r\n\r\n", 400);
	expect_status("GET /" H11 "X-A: a\x7f\r\n\r\n", 400);
	expect_status("GET /" H11 "X-A: a\x01\r\n\r\n", 400);
	expect_status("GET /" H11 "X-A: a\nX-B: b\r\n\r\n", 400);
	expect_status("GET /" H11 "\n", 400);
	/* Request line. */
	expect_status("GET / HTTP/1.1\nHost: h\r\n\r\n", 400);
	expect_status("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_status("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400);
	expect_status("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_status("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_status(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_status("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_status("GET /a\x80 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_status("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_status("GET / http/1.1\r\nHost: h\r\n\r\n", 400);
	expect_status("GET / HTTP/1\r\nHost: h\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1.1\r\nHost: h\r\n\r\n", 400);
	expect_status("GET /\r\nHost: h\r\n\r\n", 400);
	expect_status("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
	expect_status("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505);
	expect_status("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505);
	/* Targets. */
	expect_status("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 400);
	expect_status("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", 400);
	expect_status("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_status("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	/* Host. */
	expect_status("GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400);
	expect_status("GET /" H11 "Host: example.com\r\n\r\n", 400);
	expect_status("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400);
	expect_status("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
	expect_done("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
	expect_done("GET / HTTP/1.1\r\nHost:\r\n\r\n");
}

static void test_reject_limits(void **state)
{
	(void)state;
	char req[8192];
	char line[256];
	/* Request line over the limit: 414; head over it: 431. */
	int n = snprintf(req, sizeof req, "GET /%0900d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
	assert_true(n > 0);
	expect_status_n(req, (size_t)n, 512, BODY_MAX, 414);
	n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: %0900d\r\n\r\n", 0);
	expect_status_n(req, (size_t)n, 512, BODY_MAX, 431);
	/* Exactly at the limit is fine, one byte less is not. */
	n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	expect_status_n(req, (size_t)n, (size_t)n - 1, BODY_MAX, 431);
	struct mg_http_parser p;
	size_t total;
	mg_http_parser_init(&p, (size_t)n, BODY_MAX);
	assert_int_equal(feed_all(&p, req, (size_t)n, &total), MG_HTTP_PARSE_DONE);
	mg_http_parser_free(&p);

	/* 64 headers are fine, 65 are too many. */
	size_t len = (size_t)snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 1; i < MG_HTTP_MAX_HEADERS; i++) {
		int m = snprintf(line, sizeof line, "X-%d: %d\r\n", i, i);
		memcpy(req + len, line, (size_t)m);
		len += (size_t)m;
	}
	memcpy(req + len, "\r\n", 2);
	mg_http_parser_init(&p, sizeof req, BODY_MAX);
	assert_int_equal(feed_all(&p, req, len + 2, &total), MG_HTTP_PARSE_DONE);
	assert_int_equal(p.n_headers, MG_HTTP_MAX_HEADERS);
	mg_http_parser_free(&p);
	memcpy(req + len, "X-Last: 1\r\n\r\n", 13);
	expect_status_n(req, len + 13, sizeof req, BODY_MAX, 431);
}

static void test_body_too_big(void **state)
{
	(void)state;
	struct mg_http_parser p;
	/* Refused as soon as the head is complete, before the body arrives. */
	const char *req = "POST /" H11 "Content-Length: 1025\r\n\r\n";
	size_t used;
	mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
	assert_int_equal(mg_http_parse(&p, req, strlen(req), &used), MG_HTTP_PARSE_ERROR);
	assert_int_equal(p.error_status, 413);
	assert_string_equal(p.method, "POST");
	assert_int_equal(p.content_length, 1025);
	mg_http_parser_free(&p);
	/* At the limit is fine. */
	char big[2048];
	int n = snprintf(big, sizeof big, "POST /" H11 "Content-Length: 1024\r\n\r\n");
	memset(big + n, 'x', 1024);
	size_t total;
	mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
	assert_int_equal(feed_all(&p, big, (size_t)n + 1024, &total), MG_HTTP_PARSE_DONE);
	assert_int_equal(p.body.len, 1024);
	mg_http_parser_free(&p);
	expect_status_n(big, (size_t)n + 1024, HEAD_MAX, 1023, 413);
	/* A zero limit allows only empty bodies. */
	const char *one = "POST / HTTP/1.0\r\nContent-Length: 1\r\n\r\nx";
	expect_status_n(one, strlen(one), HEAD_MAX, 0, 413);

	/* Chunked: one chunk over the limit, and chunks adding up over it. */
	expect_status("POST /" H11 "Transfer-Encoding: chunked\r\n\r\n401\r\n", 413);
	n = snprintf(big, sizeof big, "POST /" H11 "Transfer-Encoding: chunked\r\n\r\n200\r\n");
	memset(big + n, 'x', 512);
	n += 512;
	n += snprintf(big + n, sizeof big - (size_t)n, "\r\n201\r\n");
	expect_status_n(big, (size_t)n, HEAD_MAX, BODY_MAX, 413);
	mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
	assert_int_equal(feed_all(&p, big, (size_t)n, &total), MG_HTTP_PARSE_ERROR);
	assert_int_equal(p.body.len, 512); /* the second chunk was never read */
	mg_http_parser_free(&p);
}

static void test_reject_chunked(void **state)
{
	(void)state;
#define TE "POST /" H11 "Transfer-Encoding: chunked\r\n\r\n"
	/* Sizes. */
	expect_status(TE "10000000000000000\r\n", 400);
	expect_status(TE "00000000000000001\r\n", 400);
	expect_status(TE "ffffffffffffffff\r\n", 413);
	expect_status(TE "\r\n", 400);
	expect_status(TE ";a\r\n", 400);
	expect_status(TE "-1\r\n", 400);
	expect_status(TE "0x1\r\n", 400);
	expect_status(TE "1 \r\nx\r\n0\r\n\r\n", 400);
	expect_status(TE "1\nx\r\n0\r\n\r\n", 400);
	expect_status(TE "1\rx\r\n0\r\n\r\n", 400);
	expect_status(TE "1;a\x01\r\nx\r\n0\r\n\r\n", 400);
	expect_status(TE "1;a\nx\r\n0\r\n\r\n", 400);
	expect_status(TE "1 x\r\nx\r\n0\r\n\r\n", 400);
	/* CRLF after chunk data. */
	expect_status(TE "3\r\nabcd\r\n0\r\n\r\n", 400);
	expect_status(TE "3\r\nabc\n0\r\n\r\n", 400);
	expect_status(TE "3\r\nabc\rX0\r\n\r\n", 400);
	expect_status(TE "3\r\nabc0\r\n\r\n", 400);
	/* Trailers. */
	expect_status(TE "0\r\nX: 1\r\n folded\r\n\r\n", 400);
	expect_status(TE "0\r\nX : 1\r\n\r\n", 400);
	expect_status(TE "0\r\n: 1\r\n\r\n", 400);
	expect_status(TE "0\r\nX 1\r\n\r\n", 400);
	EXPECT_STATUS_LIT(TE "0\r\nX: a\0\r\n\r\n", 400);
	EXPECT_STATUS_LIT(TE "1;\0\r\nx\r\n0\r\n\r\n", 400);
	expect_status(TE "0\r\nX: a\nY: b\r\n\r\n", 400);
	expect_status(TE "0\r\nX: a\r\n\n", 400);
	expect_status(TE "0\r\n\rX", 400);
	expect_done(TE "0\r\nX: a\r\nY:\r\n\r\n");
	expect_done(TE "1 ;a=b\r\nx\r\n0\r\n\r\n");
	/* Extensions and trailers are bounded by max_header_bytes. */
	char req[4096];
	int n = snprintf(req, sizeof req, TE "1;x=");
	memset(req + n, 'a', 1100);
	n += 1100;
	n += snprintf(req + n, sizeof req - (size_t)n, "\r\nx\r\n0\r\n\r\n");
	expect_status_n(req, (size_t)n, HEAD_MAX, BODY_MAX, 400);
	n = snprintf(req, sizeof req, TE "0\r\nX-T: ");
	memset(req + n, 'a', 1100);
	n += 1100;
	n += snprintf(req + n, sizeof req - (size_t)n, "\r\n\r\n");
	expect_status_n(req, (size_t)n, HEAD_MAX, BODY_MAX, 431);
#undef TE
}

/* Up to MG_HTTP_MAX_HEADERS headers are kept (the slots grow as they
 * arrive, pointers stay valid), one more is 431; the slots are reused by the
 * next request on the connection. */
static void test_header_count_limit(void **state)
{
	(void)state;
	char req[8192];
	for (int extra = 0; extra < 2; extra++) {
		int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: h\r\n");
		for (int i = 1; i < MG_HTTP_MAX_HEADERS + extra; i++)
			n += snprintf(req + n, sizeof req - (size_t)n, "X-H%d: v%d\r\n", i, i);
		n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
		if (extra) {
			expect_status_n(req, (size_t)n, sizeof req, BODY_MAX, 431);
			continue;
		}
		struct mg_http_parser p;
		size_t used = 0;
		mg_http_parser_init(&p, sizeof req, BODY_MAX);
		for (int round = 0; round < 2; round++) {
			assert_int_equal(mg_http_parse(&p, req, (size_t)n, &used),
			                 MG_HTTP_PARSE_HEAD);
			assert_int_equal(p.n_headers, MG_HTTP_MAX_HEADERS);
			assert_string_equal(p.headers[0].value, "h");
			char name[16];
			snprintf(name, sizeof name, "x-h%d", MG_HTTP_MAX_HEADERS - 1);
			const struct mg_http_header *h = mg_http_header_get(&p, name);
			assert_non_null(h);
			assert_int_equal(atoi_like(h->value + 1), MG_HTTP_MAX_HEADERS - 1);
			assert_int_equal(mg_http_parse(&p, NULL, 0, &used), MG_HTTP_PARSE_DONE);
			mg_http_parser_reset(&p);
		}
		mg_http_parser_free(&p);
	}
	/* Framing headers seen before the slots grow are still compared after
	 * (found by the fuzzer: a use after free of the first Content-Length). */
	int n = snprintf(req, sizeof req, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n");
	for (int i = 0; i < 20; i++)
		n += snprintf(req + n, sizeof req - (size_t)n, "X-H%d: v\r\n", i);
	int head = n;
	n += snprintf(req + n, sizeof req - (size_t)n, "Content-Length: 2\r\n\r\nok");
	expect_done(req);
	n = head + snprintf(req + head, sizeof req - (size_t)head, "Content-Length: 3\r\n\r\nok");
	expect_status_n(req, (size_t)n, sizeof req, BODY_MAX, 400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_get),
		cmocka_unit_test(test_header_lookups),
		cmocka_unit_test(test_header_count_limit),
		cmocka_unit_test(test_no_query_and_asterisk),
		cmocka_unit_test(test_post_content_length),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_reset_reuses_memory),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_expect),
		cmocka_unit_test(test_header_lookup),
		cmocka_unit_test(test_leading_empty_lines),
		cmocka_unit_test(test_reject_framing),
		cmocka_unit_test(test_reject_syntax),
		cmocka_unit_test(test_reject_limits),
		cmocka_unit_test(test_body_too_big),
		cmocka_unit_test(test_reject_chunked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
