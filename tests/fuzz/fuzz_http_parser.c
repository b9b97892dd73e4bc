/*
 * fuzz_http_parser.c - libFuzzer target for the HTTP/1.1 request parser.
 *
 * The input is a byte stream from a client (possibly several pipelined
 * requests). It is parsed four ways with small limits (4 KiB head, 64 KiB
 * body): whole, whole again on the same parser after reset, split at a
 * position taken from the first byte, and one byte per call. All four must
 * give the same result (a hash of every field, body and error), and each run
 * checks the invariants: consumed <= len, MORE consumes all it is given, HEAD
 * once per request, NUL-terminated pointers matching their lengths, a body
 * within max after DONE, and a documented status after ERROR. Seeds live in
 * tests/fuzz/corpus/http_parser/.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEAD_MAX 4096
#define BODY_MAX 65536
#define MAX_REQS 32

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t mix_u(uint64_t h, uint64_t v)
{
	return mix(h, &v, sizeof v);
}

static uint64_t mix_s(uint64_t h, const char *s, size_t len)
{
	CHECK(s != NULL);
	CHECK(strlen(s) == len);
	return mix(mix_u(h, len), s, len);
}

/* Checks and hashes what HEAD promises. */
static uint64_t check_head(const struct mg_http_parser *p, uint64_t h)
{
	h = mix_s(h, p->method, p->method_len);
	h = mix_s(h, p->target, p->target_len);
	h = mix_s(h, p->path, p->path_len);
	h = mix_s(h, p->query, p->query_len);
	CHECK(p->path_len <= p->target_len);
	CHECK(memcmp(p->path, p->target, p->path_len) == 0);
	if (p->path_len < p->target_len)
		CHECK(p->target[p->path_len] == '?' &&
		      p->path_len + 1 + p->query_len == p->target_len);
	else
		CHECK(p->query_len == 0);
	CHECK(p->version_minor == 0 || p->version_minor == 1);
	CHECK(p->n_headers <= MG_HTTP_MAX_HEADERS);
	for (size_t i = 0; i < p->n_headers; i++) {
		const struct mg_http_header *hd = &p->headers[i];
		h = mix_s(h, hd->name, hd->name_len);
		h = mix_s(h, hd->value, hd->value_len);
		CHECK(hd->name_len > 0);
		if (hd->value_len) {
			CHECK(hd->value[0] != ' ' && hd->value[0] != '\t');
			CHECK(hd->value[hd->value_len - 1] != ' ' &&
			      hd->value[hd->value_len - 1] != '\t');
		}
		const struct mg_http_header *first = mg_http_header_get(p, hd->name);
		CHECK(first != NULL && first <= hd);
		CHECK(mg_http_header_count(p, hd->name) >= 1);
		h = mix_u(h, mg_http_header_has_token(hd, "close"));
	}
	/* The remembered lookups answer as the walk does, asked twice (the
	 * second time from memory), including for absent names. */
	static const char *const names[] = { "Host",   "Accept",         "Content-Type",
		                             "Origin", "Mcp-Session-Id", "X-API-Key",
		                             "Cookie", "Authorization",  "traceparent" };
	struct mg_http_parser *mp = (struct mg_http_parser *)p; /* the memory only */
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
			CHECK(mg_http_header_find(mp, names[i]) == mg_http_header_get(p, names[i]));
	CHECK(!(p->chunked && p->content_length >= 0));
	h = mix_u(h, (uint64_t)p->version_minor);
	h = mix_u(h, p->keep_alive);
	h = mix_u(h, p->chunked);
	h = mix_u(h, p->expect_continue);
	h = mix_u(h, (uint64_t)p->content_length);
	return h;
}

/* Parses every request in the input. The first call gets at most `split`
 * bytes (0: no split); with `step`, no call gets more than `step` bytes. */
static uint64_t run(struct mg_http_parser *p, const uint8_t *data, size_t size, size_t split,
                    size_t step)
{
	const char *d = (const char *)data;
	uint64_t h = 0xcbf29ce484222325ull;
	size_t off = 0;
	for (int r = 0; r < MAX_REQS; r++) {
		mg_http_parser_reset(p);
		bool head = false;
		enum mg_http_parse_status st;
		for (;;) {
			size_t n = size - off;
			if (off < split && n > split - off)
				n = split - off;
			if (step && n > step)
				n = step;
			size_t used = (size_t)-1;
			st = mg_http_parse(p, d + off, n, &used);
			CHECK(used <= n);
			off += used;
			if (st == MG_HTTP_PARSE_HEAD) {
				CHECK(!head);
				head = true;
				h = check_head(p, h);
				continue;
			}
			if (st == MG_HTTP_PARSE_MORE) {
				CHECK(used == n);
				if (off == size)
					break;
				continue;
			}
			break;
		}
		h = mix_u(h, (uint64_t)st);
		if (st != MG_HTTP_PARSE_ERROR) /* an error's offset depends on the split */
			h = mix_u(h, off);
		if (st == MG_HTTP_PARSE_DONE) {
			CHECK(head);
			CHECK(p->body.data != NULL);
			CHECK(p->body.len <= BODY_MAX);
			CHECK(p->body.data[p->body.len] == '\0');
			if (!p->chunked)
				CHECK(p->body.len ==
				      (size_t)(p->content_length < 0 ? 0 : p->content_length));
			h = mix(mix_u(h, p->body.len), p->body.data, p->body.len);
			size_t used = 1;
			CHECK(mg_http_parse(p, "x", 1, &used) == MG_HTTP_PARSE_DONE && used == 0);
		} else if (st == MG_HTTP_PARSE_ERROR) {
			int s = p->error_status;
			CHECK(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
			CHECK(p->error != NULL);
			h = mix_u(h, (uint64_t)s);
			h = mix_s(h, p->error, strlen(p->error));
			size_t used = 1;
			CHECK(mg_http_parse(p, "x", 1, &used) == MG_HTTP_PARSE_ERROR && used == 0);
		}
		if (st != MG_HTTP_PARSE_DONE || off == size)
			break;
	}
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mg_http_parser p;
	mg_http_parser_init(&p, HEAD_MAX, BODY_MAX);
	uint64_t whole = run(&p, data, size, 0, 0);
	CHECK(run(&p, data, size, 0, 0) == whole);
	size_t split = size ? data[0] % (size + 1) : 0;
	CHECK(run(&p, data, size, split, 0) == whole);
	CHECK(run(&p, data, size, 0, 1) == whole);
	mg_http_parser_free(&p);
	return 0;
}
