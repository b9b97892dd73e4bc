/*
 * fuzz_traceparent.c - libFuzzer target for the W3C trace context parsers
 * (trace/context.h): traceparent and tracestate never read out of bounds;
 * a traceparent that parses formats to a version-00 value that parses to
 * the same context, and its trace and parent ids are not zero.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace/context.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so reading one byte past `size` is caught. */
	char *s = malloc(size ? size : 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	struct mg_trace_ctx c, again;
	if (mg_traceparent_parse(s, size, &c) == 0) {
		if (mg_trace_zero(c.trace_id, 16) || mg_trace_zero(c.span_id, 8))
			abort();
		char out[MG_TRACEPARENT_LEN + 1];
		mg_traceparent_format(&c, out);
		if (strlen(out) != MG_TRACEPARENT_LEN ||
		    mg_traceparent_parse(out, MG_TRACEPARENT_LEN, &again) != 0 ||
		    memcmp(&c, &again, sizeof c) != 0)
			abort();
	}
	bool valid = mg_tracestate_valid(s, size);
	if (valid && size > MG_TRACESTATE_MAX)
		abort();
	free(s);
	return 0;
}
