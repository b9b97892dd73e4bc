/*
 * test_h1client.c - unit tests for the HTTP/1.1 response parser of the
 * native upstream client (http/h1response.c): framing (Content-Length,
 * chunked with extensions and trailers, close-delimited, no-body statuses
 * and HEAD), interim answers, connection reuse decisions, every rejection,
 * and the same results whatever way the bytes are split.
 */
#include "support.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "http/h1response.h"

#define HEAD_MAX 512

struct run {
	enum mg_h1_status st;
	unsigned heads;
	char body[4096];
	size_t body_len;
	size_t consumed;
};

/* Feeds `len` bytes in pieces of at most `step` (0: whole), then the end of
 * the connection when `eof`. */
static void feed(struct mg_h1_response *r, const char *data, size_t len, size_t step, bool eof,
                 struct run *out)
{
	memset(out, 0, sizeof *out);
	size_t off = 0, avail = 0;
	enum mg_h1_status st = MG_H1_MORE;
	while (st != MG_H1_DONE && st != MG_H1_ERROR) {
		if (avail == off) {
			if (avail == len)
				break;
			avail += step && len - avail > step ? step : len - avail;
		}
		size_t used = 0, blen = 0;
		const char *body = NULL;
		st = mg_h1_response_feed(r, data + off, avail - off, &used, &body, &blen);
		assert_true(used <= avail - off);
		off += used;
		if (st == MG_H1_HEAD)
			out->heads++;
		if (st == MG_H1_BODY) {
			assert_true(blen > 0);
			assert_true(out->body_len + blen < sizeof out->body);
			memcpy(out->body + out->body_len, body, blen);
			out->body_len += blen;
		}
		if (st == MG_H1_MORE)
			assert_int_equal(off, avail);
	}
	if (st == MG_H1_HEAD || st == MG_H1_BODY) {
		/* Everything was fed: the end, if any, is decided by what follows. */
		size_t used, blen;
		const char *body;
		st = mg_h1_response_feed(r, "", 0, &used, &body, &blen);
	}
	if (eof && st == MG_H1_MORE)
		st = mg_h1_response_eof(r);
	assert_true(out->heads <= 1);
	out->st = st;
	out->consumed = off;
}

/* Parses `text` whole, split at every position, and byte by byte: every way
 * must give the same status and body. Returns the whole run in `out` and
 * leaves `r` as after the whole run. */
static void parse_all_ways(struct mg_h1_response *r, const char *text, bool eof, bool head_req,
                           uint64_t max_body, struct run *out)
{
	size_t len = strlen(text);
	struct run whole;
	mg_h1_response_init(r, HEAD_MAX, max_body);
	r->head_request = head_req;
	feed(r, text, len, 0, eof, &whole);
	for (size_t step = 1; step < len; step++) {
		struct mg_h1_response s;
		struct run run;
		mg_h1_response_init(&s, HEAD_MAX, max_body);
		s.head_request = head_req;
		feed(&s, text, len, step, eof, &run);
		assert_int_equal(run.st, whole.st);
		if (whole.st == MG_H1_ERROR) {
			/* What was handed back before the error depends on the
			 * split (a stream delivers what fits); the error does not. */
			assert_string_equal(s.error, r->error);
		} else {
			assert_int_equal(run.body_len, whole.body_len);
			assert_memory_equal(run.body, whole.body, whole.body_len);
		}
		mg_h1_response_free(&s);
	}
	*out = whole;
}

static void test_content_length(void **state)
{
	(void)state;
	struct mg_h1_response r;
	struct run run;
	const char *t = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                "Content-Length: 11\r\nMcp-Session-Id: a\r\nMcp-Session-Id: b\r\n\r\n"
	                "{\"ok\":true}";
	parse_all_ways(&r, t, false, false, 0, &run);
	assert_int_equal(run.st, MG_H1_DONE);
	assert_int_equal(r.status, 200);
	assert_true(r.keep_alive);
	assert_int_equal(r.content_length, 11);
	assert_int_equal(run.body_len, 11);
	assert_memory_equal(run.body, "{\"ok\":true}", 11);
	assert_string_equal(mg_h1_response_header(&r, "content-type")->value, "application/json");
	assert_string_equal(mg_h1_response_header(&r, "MCP-SESSION-ID")->value, "b"); /* last */
	assert_null(mg_h1_response_header(&r, "Content-Encoding"));
	mg_h1_response_free(&r);
}

static void test_chunked_extensions_trailers(void **state)
{
	(void)state;
	struct mg_h1_response r;
	struct run run;
	const char *t = "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n"
	                "Content-Type: text/event-stream\r\n\r\n"
	                "5;name=value\r\nevent\r\n"
	                "a ; ext\r\n: message\n\r\n"
	                "000000000000001\r\nX\r\n"
	                "0\r\nTrailer-One: 1\r\nTrailer-Two: 2\r\n\r\n";
	parse_all_ways(&r, t, false, false, 0, &run);
	assert_int_equal(run.st, MG_H1_DONE);
	assert_true(r.chunked);
	assert_true(r.keep_alive);
	assert_int_equal(run.body_len, 16);
	assert_memory_equal(run.body, "event: message\nX", 16);
	mg_h1_response_free(&r);
}

static void test_chunked_sse_odd_splits(void **state)
{
	(void)state;
	/* An SSE answer whose chunks cut events, lines and even the CRLF
	 * after the size. */
	struct mg_h1_response r;
	struct run run;
	const char *t = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
	                "3\r\nid:\r\n"
	                "1C\r\n 1\ndata: {\"jsonrpc\":\"2.0\"}\n\n\r\n"
	                "0\r\n\r\n";
	parse_all_ways(&r, t, false, false, 0, &run);
	assert_int_equal(run.st, MG_H1_DONE);
	assert_int_equal(run.body_len, 3 + 28);
	assert_memory_equal(run.body, "id: 1\ndata: {\"jsonrpc\":\"2.0\"}\n\n", 31);
	mg_h1_response_free(&r);
}

static void test_close_delimited(void **state)
{
	(void)state;
	struct mg_h1_response r;
	struct run run;
	const char *t = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
	                "data: 1\n\ndata: 2\n\n";
	parse_all_ways(&r, t, false, false, 0, &run);
	assert_int_equal(run.st, MG_H1_MORE); /* only the close ends it */
	assert_false(r.keep_alive);
	mg_h1_response_free(&r);
	parse_all_ways(&r, t, true, false, 0, &run);
	assert_int_equal(run.st, MG_H1_DONE);
	assert_int_equal(run.body_len, 18);
	mg_h1_response_free(&r);
}

static void test_no_body(void **state)
{
	(void)state;
	struct mg_h1_response r;
	struct run run;
	/* 202 with no length, 204 and 304 with one, a HEAD answer. */
	parse_all_ways(&r, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", false, false, 0,
	               &run);
	assert_int_equal(run.st, MG_H1_DONE);
	assert_true(r.keep_alive);
	mg_h1_response_free(&r);
	parse_all_ways(&r, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, false, 0,
	               &run);
	assert_int_equal(run.st, MG_H1_DONE);
	assert_int_equal(run.body_len, 0);
	mg_h1_response_free(&r);
	parse_all_ways(&r, "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false,
	               false, 0, &run);
	assert_int_equal(run.st, MG_H1_DONE);
	mg_h1_response_free(&r);
	parse_all_ways(&r, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", false, true, 0, &run);
	assert_int_equal(run.st, MG_H1_DONE);
	assert_int_equal(run.body_len, 0);
	assert_true(r.keep_alive);
	mg_h1_response_free(&r);
}

static void test_interim(void **state)
{
	(void)state;
	struct mg_h1_response r;
	struct run run;
	const char *t = "HTTP/1.1 100 Continue\r\n\r\n"
	                "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
	                "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno";
	parse_all_ways(&r, t, false, false, 0, &run);
	assert_int_equal(run.st, MG_H1_DONE);
	assert_int_equal(run.heads, 1);
	assert_int_equal(r.status, 404);
	assert_null(mg_h1_response_header(&r, "Link"));
	assert_memory_equal(run.body, "no", 2);
	mg_h1_response_free(&r);
	parse_all_ways(&r, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", false, false,
	               0, &run);
	assert_int_equal(run.st, MG_H1_ERROR);
	mg_h1_response_free(&r);
}

static void test_reuse_decisions(void **state)
{
	(void)state;
	struct mg_h1_response r;
	struct run run;
	parse_all_ways(&r, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
	               false, false, 0, &run);
	assert_int_equal(run.st, MG_H1_DONE);
	assert_false(r.keep_alive);
	mg_h1_response_free(&r);
	parse_all_ways(&r, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, false, 0, &run);
	assert_false(r.keep_alive);
	mg_h1_response_free(&r);
	parse_all_ways(&r, "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
	               false, false, 0, &run);
	assert_true(r.keep_alive);
	mg_h1_response_free(&r);
	/* Identical repeated lengths count as one; the status has no reason. */
	parse_all_ways(&r, "HTTP/1.1 200\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
	               false, false, 0, &run);
	assert_int_equal(run.st, MG_H1_DONE);
	assert_int_equal(r.status, 200);
	mg_h1_response_free(&r);
}

static void test_next_response_not_consumed(void **state)
{
	(void)state;
	struct mg_h1_response r;
	struct run run;
	const char *t = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
	mg_h1_response_init(&r, HEAD_MAX, 0);
	feed(&r, t, strlen(t), 0, false, &run);
	assert_int_equal(run.st, MG_H1_DONE);
	assert_int_equal(run.consumed, strlen(t) - strlen("HTTP/1.1 200 OK\r\n"));
	/* The next response on the connection, after a reset. */
	mg_h1_response_reset(&r);
	assert_true(mg_h1_response_untouched(&r));
	const char *u = "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n";
	feed(&r, u, strlen(u), 0, false, &run);
	assert_int_equal(run.st, MG_H1_DONE);
	assert_int_equal(r.status, 500);
	mg_h1_response_free(&r);
}

static void expect_error(const char *text, bool eof, uint64_t max_body, const char *why)
{
	struct mg_h1_response r;
	struct run run;
	parse_all_ways(&r, text, eof, false, max_body, &run);
	if (run.st != MG_H1_ERROR || strcmp(r.error, why) != 0)
		fail_msg("%s: got status %d, error \"%s\", wanted \"%s\"", text, run.st,
		         r.error ? r.error : "", why);
	mg_h1_response_free(&r);
}

static void test_rejections(void **state)
{
	(void)state;
	expect_error("garbage\r\n\r\n", false, 0, "invalid status line");
	expect_error("HTTP/2 200 OK\r\n\r\n", false, 0, "invalid status line");
	expect_error("HTTP/1.1 20 OK\r\n\r\n", false, 0, "invalid status line");
	expect_error("HTTP/1.1 099 Low\r\n\r\n", false, 0, "invalid status line");
	expect_error("HTTP/1.1 200OK\r\n\r\n", false, 0, "invalid status line");
	expect_error("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", false, 0, "invalid status line");
	expect_error("HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n", false, 0, "invalid header value");
	expect_error("HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", false, 0,
	             "obs-fold or whitespace before header");
	expect_error("HTTP/1.1 200 OK\r\nBad Name: b\r\n\r\n", false, 0, "whitespace before colon");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	             false, 0, "both Content-Length and Transfer-Encoding");
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, 0,
	             "unsupported Transfer-Encoding");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, 0,
	             "conflicting Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, 0,
	             "invalid Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", false, 0,
	             "invalid Content-Length");
	const char *te = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	char buf[1024];
	snprintf(buf, sizeof buf, "%sz\r\n", te);
	expect_error(buf, false, 0, "invalid chunk size");
	snprintf(buf, sizeof buf, "%s\r\n", te);
	expect_error(buf, false, 0, "invalid chunk size");
	snprintf(buf, sizeof buf, "%s10000000000000000\r\n", te);
	expect_error(buf, false, 0, "invalid chunk size");
	snprintf(buf, sizeof buf, "%s1 x\r\n", te);
	expect_error(buf, false, 0, "invalid chunk size");
	snprintf(buf, sizeof buf, "%s1\n", te);
	expect_error(buf, false, 0, "invalid chunk size");
	snprintf(buf, sizeof buf, "%s1\r\nab\r\n", te);
	expect_error(buf, false, 0, "chunk data longer than its size");
	snprintf(buf, sizeof buf, "%s0\r\n: no name\r\n\r\n", te);
	expect_error(buf, false, 0, "invalid trailer");
	snprintf(buf, sizeof buf, "%s0\r\nA: b\n\r\n", te);
	expect_error(buf, false, 0, "invalid trailer");
	/* Extensions and trailers share the head budget. */
	char big[HEAD_MAX + 64];
	memset(big, 'e', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	snprintf(buf, sizeof buf, "%s1;%s\r\nx\r\n0\r\n\r\n", te, big);
	expect_error(buf, false, 0, "chunk extensions or trailers too long");
	snprintf(buf, sizeof buf, "%s0\r\nT: %s\r\n\r\n", te, big);
	expect_error(buf, false, 0, "chunk extensions or trailers too long");
	/* The head itself. */
	snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\nX: %s\r\n\r\n", big);
	expect_error(buf, false, 0, "response head too large");
	char many[4096];
	size_t ml = (size_t)snprintf(many, sizeof many, "HTTP/1.1 200 OK\r\n");
	for (int i = 0; i <= MG_HTTP_MAX_HEADERS; i++)
		ml += (size_t)snprintf(many + ml, sizeof many - ml, "A: b\r\n");
	snprintf(many + ml, sizeof many - ml, "\r\n");
	struct mg_h1_response r;
	struct run run;
	mg_h1_response_init(&r, sizeof many, 0);
	feed(&r, many, strlen(many), 0, false, &run);
	assert_int_equal(run.st, MG_H1_ERROR);
	assert_string_equal(r.error, "too many headers");
	mg_h1_response_free(&r);
	/* Too many interim answers. */
	char interim[2048];
	size_t il = 0;
	for (int i = 0; i < 17; i++)
		il += (size_t)snprintf(interim + il, sizeof interim - il,
		                       "HTTP/1.1 100 Continue\r\n\r\n");
	expect_error(interim, false, 0, "too many interim responses");
}

static void test_body_limit(void **state)
{
	(void)state;
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", false, 10,
	             "answer too large");
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n"
	             "5\r\nabcde\r\n0\r\n\r\n",
	             false, 10, "answer too large");
	expect_error("HTTP/1.1 200 OK\r\n\r\n0123456789A", true, 10, "answer too large");
	struct mg_h1_response r;
	struct run run;
	parse_all_ways(&r, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", false, false,
	               10, &run);
	assert_int_equal(run.st, MG_H1_DONE);
	assert_false(r.too_big);
	mg_h1_response_free(&r);
}

static void test_eof(void **state)
{
	(void)state;
	struct mg_h1_response r;
	mg_h1_response_init(&r, HEAD_MAX, 0);
	assert_true(mg_h1_response_untouched(&r));
	assert_int_equal(mg_h1_response_eof(&r), MG_H1_ERROR);
	assert_string_equal(r.error, "connection closed before an answer");
	mg_h1_response_free(&r);
	expect_error("HTTP/1.1 200 OK\r\nContent-", true, 0,
	             "connection closed in the middle of the answer's head");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", true, 0,
	             "connection closed before the end of the answer");
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", true, 0,
	             "connection closed before the end of the answer");
	/* After an interim answer the connection is no longer untouched. */
	mg_h1_response_init(&r, HEAD_MAX, 0);
	struct run run;
	const char *t = "HTTP/1.1 100 Continue\r\n\r\n";
	feed(&r, t, strlen(t), 0, false, &run);
	assert_false(mg_h1_response_untouched(&r));
	mg_h1_response_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_chunked_extensions_trailers),
		cmocka_unit_test(test_chunked_sse_odd_splits),
		cmocka_unit_test(test_close_delimited),
		cmocka_unit_test(test_no_body),
		cmocka_unit_test(test_interim),
		cmocka_unit_test(test_reuse_decisions),
		cmocka_unit_test(test_next_response_not_consumed),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_eof),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
