/*
 * trace.h - OpenTelemetry spans and their export (OTLP/HTTP, binary
 * protobuf or JSON).
 *
 * The event-loop thread builds finished spans (struct mg_span, plain
 * memory, bounded attributes) and hands them to the tracer with
 * mg_tracer_submit, which encodes the span and appends it under a lock to a
 * bounded queue (tracing.queue_size; full: the span is dropped and counted). A
 * worker thread takes what waits and POSTs it to `{otlp_endpoint}/v1/traces`
 * in requests of at most tracing.export_batch_size spans with mg_fetch_sync_on (the SSRF
 * rule of http/client.h, `tracing.allow_private_networks`); it retries only
 * 429, 502, 503 and 504, honouring Retry-After or backing off
 * exponentially with jitter, and never retries a 2xx (a partial success
 * is logged, not resent). mg_tracer_free flushes what is queued (one
 * attempt per batch) and joins the worker.
 */
#ifndef MG_TRACE_TRACE_H
#define MG_TRACE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "trace/context.h"

enum mg_span_kind { MG_SPAN_INTERNAL = 1, MG_SPAN_SERVER = 2, MG_SPAN_CLIENT = 3 };

#define MG_SPAN_MAX_ATTRS 16

struct mg_span_attr {
	const char *key; /* static */
	bool is_int;
	uint8_t len; /* of s */
	int64_t i;
	char s[128]; /* truncated to fit */
};

struct mg_span {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_id[8]; /* all zero: a root span */
	bool has_link;
	struct mg_trace_ctx link; /* e.g. the HTTP-level context when _meta gave the parent */
	enum mg_span_kind kind;
	char name[160];
	uint64_t start_ns, end_ns; /* Unix time */
	bool error;
	char status_msg[128];
	size_t n_attrs;
	/* Last: only the first n_attrs are cleared and copied (mg_span_clear,
	 * mg_tracer_submit); a span is ~2.7 KiB, most of it unused attributes. */
	struct mg_span_attr attrs[MG_SPAN_MAX_ATTRS];
};

/* Makes `s` an empty span (attributes not cleared: n_attrs = 0). */
void mg_span_clear(struct mg_span *s);

/* Adds an attribute (ignored beyond MG_SPAN_MAX_ATTRS). `key` must be
 * static and JSON-plain (a semantic-convention name: no quote, backslash,
 * control or non-ASCII byte): the encoder writes it without escaping. */
void mg_span_attr_str(struct mg_span *s, const char *key, const char *value);
void mg_span_attr_strn(struct mg_span *s, const char *key, const char *value, size_t len);
void mg_span_attr_int(struct mg_span *s, const char *key, int64_t value);

/* Random non-zero ids (getrandom, buffered). Event-loop thread only. */
void mg_trace_new_trace_id(uint8_t id[16]);
void mg_trace_new_span_id(uint8_t id[8]);

/* The sampling decision for a new root trace: a deterministic function of
 * the trace id (its last 8 bytes against rate * 2^64), so every service
 * using the same rule agrees. */
bool mg_trace_sampled(const uint8_t trace_id[16], double rate);

struct mg_tracer;

/* Loads libcurl (mg_fetch_load: call on the main thread) and starts the
 * export thread for `cfg` (borrowed; must outlive the tracer). NULL with
 * `err` when libcurl cannot be loaded or the thread cannot start. */
struct mg_tracer *mg_tracer_new(const struct mg_tracing_config *cfg, char *err, size_t err_size);

/* Queues a finished span (encoded at once; `s` is not kept). Never blocks
 * on the network. Loop thread only. */
void mg_tracer_submit(struct mg_tracer *t, const struct mg_span *s);

/* Counters for metrics: spans exported, dropped (queue full, or a batch
 * given up), export attempts that failed. */
struct mg_tracer_stats {
	uint64_t exported, dropped, failed_exports;
	size_t queued, capacity; /* spans waiting; tracing.queue_size */
};
void mg_tracer_stats(struct mg_tracer *t, struct mg_tracer_stats *out);

/* Exports what is queued (one attempt per batch), stops the thread, frees. */
void mg_tracer_free(struct mg_tracer *t);

/* The OTLP/HTTP JSON request body for `n` spans (exposed for tests):
 * ids as lowercase hex, kinds and status codes as integers, times and
 * 64-bit integers as decimal strings. Returns malloc'd text or NULL. */
char *mg_trace_otlp_json(const struct mg_span *spans, size_t n, const char *service_name,
                         size_t *len);

/* The OTLP/HTTP binary protobuf request body (ExportTraceServiceRequest)
 * for `n` spans (exposed for tests): the same content as the JSON. Returns
 * malloc'd bytes (`*len` of them) or NULL. */
char *mg_trace_otlp_proto(const struct mg_span *spans, size_t n, const char *service_name,
                          size_t *len);

/* Reads a collector's binary ExportTraceServiceResponse (untrusted: every
 * length is checked, unknown fields are skipped): the partial success's
 * rejected span count (0 when absent) and error message (not terminated;
 * NULL when absent, pointing into `body`). -1 when `body` is not such a
 * message. */
int mg_otlp_partial_success(const void *body, size_t len, int64_t *rejected, const char **msg,
                            size_t *msg_len);

#endif
