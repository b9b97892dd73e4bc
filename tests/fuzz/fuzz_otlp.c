/*
 * fuzz_otlp.c - libFuzzer target for the OTLP code that meets bytes it does
 * not control (trace/trace.h): the reader of a collector's protobuf answer
 * (mg_otlp_partial_success) never reads out of bounds and points only into
 * the input; and spans built from the input (name, status message, string
 * attributes of any bytes) encode, as protobuf and as JSON, within the
 * room the encoders reserve: the protobuf request's outer length covers
 * exactly the rest of the body and the JSON document parses.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next piece of the input, up to a 0 byte. */
static size_t piece(const uint8_t **p, const uint8_t *end, const char **s)
{
	*s = (const char *)*p;
	const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
	size_t n = (size_t)((z ? z : end) - *p);
	*p = z ? z + 1 : end;
	return n;
}

static void encode_spans(const uint8_t *data, size_t size)
{
	struct mg_span sp;
	memset(&sp, 0, sizeof sp);
	memset(sp.trace_id, 0x11, 16);
	memset(sp.span_id, 0x22, 8);
	sp.kind = size ? (enum mg_span_kind)(data[0] % 4) : MG_SPAN_SERVER;
	sp.error = size > 1 && (data[1] & 1);
	sp.has_link = size > 1 && (data[1] & 2);
	const uint8_t *p = data, *end = data + size;
	const char *s;
	size_t n = piece(&p, end, &s);
	snprintf(sp.name, sizeof sp.name, "%.*s",
	         (int)(n < sizeof sp.name ? n : sizeof sp.name - 1), s);
	n = piece(&p, end, &s);
	snprintf(sp.status_msg, sizeof sp.status_msg, "%.*s",
	         (int)(n < sizeof sp.status_msg ? n : sizeof sp.status_msg - 1), s);
	while (p < end && sp.n_attrs < MG_SPAN_MAX_ATTRS) {
		n = piece(&p, end, &s);
		if (n && s[0] == '#')
			mg_span_attr_int(&sp, "gen_ai.tool.call.count", (int64_t)n * -7919);
		else
			mg_span_attr_strn(&sp, "gen_ai.tool.name", s, n);
	}
	size_t len;
	char *b = mg_trace_otlp_proto(&sp, 1, sp.name, &len);
	if (b) {
		/* tag 1 (len), then a varint: the rest of the body */
		const uint8_t *q = (const uint8_t *)b + 1;
		uint64_t v = 0;
		int shift = 0;
		do
			v |= (uint64_t)(*q & 0x7f) << shift, shift += 7;
		while (*q++ & 0x80);
		if (b[0] != 0x0a || v != len - (size_t)(q - (const uint8_t *)b))
			abort();
		free(b);
	}
	char *j = mg_trace_otlp_json(&sp, 1, sp.name, &len);
	if (j) {
		json_t *doc = json_loadb(j, len, 0, NULL);
		if (!doc)
			abort();
		json_decref(doc);
		free(j);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so reading one byte past `size` is caught. */
	uint8_t *s = malloc(size ? size : 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	int64_t rejected;
	const char *msg;
	size_t msg_len;
	if (mg_otlp_partial_success(s, size, &rejected, &msg, &msg_len) == 0 && msg &&
	    ((const uint8_t *)msg < s || (const uint8_t *)msg + msg_len > s + size))
		abort();
	encode_spans(s, size);
	free(s);
	return 0;
}
