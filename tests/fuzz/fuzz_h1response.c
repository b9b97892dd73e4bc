/*
 * fuzz_h1response.c - libFuzzer target for the HTTP/1.1 response parser of
 * the native upstream client (http/h1response.c). The first byte chooses
 * the request facts (HEAD or not, a body limit) and a split step; the rest
 * is fed whole and in pieces of that step, then the end of the connection.
 * Both runs must agree on the outcome, the status and the body bytes
 * (unless an error cut the body at a split-dependent point), and the
 * parser must never hand back more than it was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	enum mg_h1_status st;
	int status;
	uint64_t hash;
	size_t body;
};

static void run(const char *d, size_t n, size_t step, bool head, uint64_t max_body,
                struct outcome *o)
{
	struct mg_h1_response r;
	mg_h1_response_init(&r, 1024, max_body);
	r.head_request = head;
	memset(o, 0, sizeof *o);
	size_t off = 0, avail = 0;
	enum mg_h1_status st = MG_H1_MORE;
	int heads = 0;
	for (;;) {
		if (avail == off) {
			if (avail == n)
				break;
			avail += step && n - avail > step ? step : n - avail;
		}
		size_t used = 0, blen = 0;
		const char *body = NULL;
		st = mg_h1_response_feed(&r, d + off, avail - off, &used, &body, &blen);
		if (used > avail - off)
			abort();
		off += used;
		if (st == MG_H1_HEAD && ++heads > 1)
			abort();
		if (st == MG_H1_BODY) {
			if (!body || body < d || body + blen > d + n || blen == 0)
				abort();
			for (size_t i = 0; i < blen; i++)
				o->hash = o->hash * 31 + (unsigned char)body[i];
			o->body += blen;
			if (max_body && o->body > max_body)
				abort();
		}
		if (st == MG_H1_DONE || st == MG_H1_ERROR)
			break;
		if (st == MG_H1_MORE && off != avail)
			abort();
	}
	if (st != MG_H1_DONE && st != MG_H1_ERROR) {
		size_t used, blen;
		const char *body;
		st = mg_h1_response_feed(&r, "", 0, &used, &body, &blen);
		if (st == MG_H1_MORE)
			st = mg_h1_response_eof(&r);
	}
	if (st == MG_H1_ERROR && !r.error)
		abort();
	if (st == MG_H1_DONE && r.status < 200)
		abort();
	o->st = st;
	o->status = r.status;
	mg_h1_response_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool head = data[0] & 1;
	uint64_t max_body = data[0] & 2 ? 64 : 0;
	size_t step = (size_t)(data[0] >> 2) + 1;
	const char *d = (const char *)data + 1;
	size_t n = size - 1;
	struct outcome whole, split;
	run(d, n, 0, head, max_body, &whole);
	run(d, n, step, head, max_body, &split);
	if (whole.st != split.st)
		abort();
	if (whole.st == MG_H1_DONE &&
	    (whole.status != split.status || whole.hash != split.hash || whole.body != split.body))
		abort();
	return 0;
}
