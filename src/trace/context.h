/*
 * context.h - W3C Trace Context: the traceparent and tracestate values
 * (https://www.w3.org/TR/trace-context/), parsed strictly and pure (no
 * allocation, no clock), so the parser is fuzzed on its own
 * (tests/fuzz/fuzz_traceparent.c).
 */
#ifndef MG_TRACE_CONTEXT_H
#define MG_TRACE_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MG_TRACEPARENT_LEN   55  /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define MG_TRACESTATE_MAX    512 /* the specification's limit a receiver must accept */
#define MG_TRACE_FLAG_SAMPLE 0x01

struct mg_trace_ctx {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t flags;
};

/* Parses a traceparent value of `len` bytes. Version 00 must be exactly 55
 * characters; a higher version (not ff) may carry more after a '-', which is
 * ignored, as the specification asks. Lowercase hex only; an all-zero trace
 * id or parent id is invalid. Returns 0, or -1 (out is then untouched). */
int mg_traceparent_parse(const char *s, size_t len, struct mg_trace_ctx *out);

/* Writes "00-<trace>-<span>-<flags>" and a NUL into out (56 bytes). */
void mg_traceparent_format(const struct mg_trace_ctx *c, char out[MG_TRACEPARENT_LEN + 1]);

/* true when `len` bytes are a valid tracestate to pass on: at most 512
 * bytes, at most 32 list members, each `key=value` with the
 * specification's key and value grammar (empty members between commas
 * and surrounding spaces or tabs allowed), no duplicate keys. */
bool mg_tracestate_valid(const char *s, size_t len);

/* Lowercase hex of `n` bytes into out (2n + 1 bytes with the NUL). */
void mg_trace_hex(const uint8_t *b, size_t n, char *out);

/* true when all `n` bytes are zero. */
bool mg_trace_zero(const uint8_t *b, size_t n);

#endif
