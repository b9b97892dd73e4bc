/*
 * fuzz_sse.c - libFuzzer target for the SSE decoder (fed whole and in
 * pieces; both must produce the same events) and the encoder round trip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct acc {
	uint64_t hash;
	size_t events;
};

static int on_event(const struct mg_sse_event *ev, void *arg)
{
	struct acc *a = arg;
	a->events++;
	for (size_t i = 0; i < ev->data_len; i++)
		a->hash = a->hash * 31 + (unsigned char)ev->data[i];
	for (const char *p = ev->event; *p; p++)
		a->hash = a->hash * 37 + (unsigned char)*p;
	return 0;
}

static int run_max(const uint8_t *data, size_t size, size_t step, size_t max_event, struct acc *a)
{
	struct mg_sse_decoder d;
	mg_sse_decoder_init(&d, max_event, on_event, a);
	int rc = 0;
	for (size_t i = 0; i < size && rc == 0; i += step) {
		size_t n = size - i < step ? size - i : step;
		rc = mg_sse_feed(&d, (const char *)data + i, n);
	}
	mg_sse_decoder_free(&d);
	return rc;
}

static int run(const uint8_t *data, size_t size, size_t step, struct acc *a)
{
	return run_max(data, size, step, 4096, a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acc whole = { 0 }, pieces = { 0 };
	int r1 = run(data, size, size ? size : 1, &whole);
	int r2 = run(data, size, 3, &pieces);
	if (r1 == 0 && r2 == 0 && (whole.events != pieces.events || whole.hash != pieces.hash))
		abort();
	/* Encoding any data and decoding it gives the data back, its line
	 * breaks (CRLF, CR, LF) as LFs, with a decoder whose limit the data
	 * fits (the decoded data is never longer than the input). */
	struct mg_buf b;
	mg_buf_init(&b, 1 << 20);
	if (mg_sse_encode(&b, "1_1", NULL, (const char *)data, size) == 0) {
		/* the event expected: the data with its line breaks as LFs */
		char *norm = malloc(size + 1);
		size_t n = 0;
		for (size_t i = 0; i < size; i++) {
			if (data[i] == '\r' && i + 1 < size && data[i + 1] == '\n')
				continue; /* the LF that follows stands for both */
			norm[n++] = data[i] == '\r' ? '\n' : (char)data[i];
		}
		struct mg_sse_event ev = {
			.id = "1_1", .event = "message", .data = norm, .data_len = n
		};
		struct acc back = { 0 }, want = { 0 };
		on_event(&ev, &want);
		if (run_max((const uint8_t *)b.data, b.len, 7, size + 1, &back) != 0 ||
		    back.events != 1 || back.hash != want.hash)
			abort();
		free(norm);
	}
	mg_buf_free(&b);
	return 0;
}
