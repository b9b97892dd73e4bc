/*
 * trace.c - spans, sampling and the OTLP/HTTP exporter, binary protobuf or
 * JSON (see trace.h).
 *
 * Threads: the loop thread only calls mg_tracer_submit, which encodes the
 * span (OTLP protobuf or JSON, `otlp_protocol`) into a scratch buffer,
 * then takes the mutex to append it to the spans waiting (back to back,
 * with each one's end in `ends`; at most `tracing.queue_size` spans, beyond
 * that dropped and counted) and signals the worker when a batch's worth
 * (`export_batch_size`) waits. The worker waits for that or for
 * `export_interval_ms`, swaps the waiting spans for an empty buffer and
 * sends them in requests of at most export_batch_size spans (each built in
 * the worker's own buffer: the document's head, the spans, its tail) with
 * mg_fetch_sync_on, over one kept-alive connection, with the configured
 * otlp_headers. While it sends, the loop fills the other buffer.
 * Retry rules (OTLP/HTTP): 429, 502, 503, 504 are retried up to
 * MG_TRACE_RETRIES times after Retry-After (capped) or 1, 2, 4 s with
 * jitter; anything else is final: 2xx is success (a partialSuccess with
 * rejected spans is logged, never resent), other statuses and transport
 * errors drop the batch with a log line. During shutdown there is one
 * attempt per batch and no waiting.
 */
#include "trace/trace.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/client.h"
#include "util/crypto.h"
#include "util/gzip.h"
#include "util/log.h"
#include "util/buf.h"
#include "util/str.h"

#define MG_TRACE_SPAN_BYTES    2048 /* the waiting spans' bytes: queue_size times this */
#define MG_TRACE_QUEUE_DEFAULT 16384
#define MG_TRACE_QUEUE_MAX     1000000 /* tracing.queue_size's ceiling */
_Static_assert((uint64_t)MG_TRACE_QUEUE_MAX *MG_TRACE_SPAN_BYTES < UINT32_MAX,
               "a span's end in the waiting buffer fits its uint32_t");
#define MG_TRACE_BATCH_DEFAULT 512
#define MG_TRACE_RETRIES       3
#define MG_TRACE_MAX_WAIT_S    30

/* ---- spans -------------------------------------------------------------------------- */

static struct mg_span_attr *attr_add(struct mg_span *s, const char *key)
{
	if (s->n_attrs >= MG_SPAN_MAX_ATTRS)
		return NULL;
	struct mg_span_attr *a = &s->attrs[s->n_attrs++];
	a->key = key;
	a->is_int = false;
	a->len = 0;
	a->i = 0;
	a->s[0] = '\0';
	return a;
}

void mg_span_attr_strn(struct mg_span *s, const char *key, const char *value, size_t len)
{
	struct mg_span_attr *a = attr_add(s, key);
	if (!a)
		return;
	if (len >= sizeof a->s) {
		len = sizeof a->s - 1;
		/* Cut before a continuation byte, not inside a character. */
		while (len > 0 && ((unsigned char)value[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(a->s, value, len);
	a->s[len] = '\0';
	a->len = (uint8_t)len;
}

void mg_span_attr_str(struct mg_span *s, const char *key, const char *value)
{
	mg_span_attr_strn(s, key, value, strlen(value));
}

void mg_span_attr_int(struct mg_span *s, const char *key, int64_t value)
{
	struct mg_span_attr *a = attr_add(s, key);
	if (a) {
		a->is_int = true;
		a->i = value;
	}
}

/* Ids come from OpenSSL's DRBG (AES-CTR, seeded from the kernel), taken
 * 4 KiB at a time: a third of what getrandom's ChaCha cost in the kernel
 * per id, and no system call; getrandom when the DRBG fails. Loop thread
 * only. */
static void random_id(uint8_t *id, size_t n)
{
	static uint8_t pool[4096];
	static size_t left;
	static uint64_t fallback;
	for (int tries = 0; tries < 4; tries++) {
		if (left < n) {
			if (RAND_bytes(pool, sizeof pool) != 1 &&
			    mg_random_bytes(pool, sizeof pool) < 0)
				continue;
			left = sizeof pool;
		}
		left -= n;
		memcpy(id, pool + left, n);
		memset(pool + left, 0, n); /* an id is never handed out twice */
		if (!mg_trace_zero(id, n))
			return;
	}
	/* getrandom keeps failing: still unique and non-zero within this process. */
	memset(id, 0, n);
	uint64_t v = ++fallback ^ (uint64_t)time(NULL) << 20;
	memcpy(id + n - 8, &v, 8);
	id[0] = 1;
}

void mg_trace_new_trace_id(uint8_t id[16])
{
	random_id(id, 16);
}

void mg_trace_new_span_id(uint8_t id[8])
{
	random_id(id, 8);
}

bool mg_trace_sampled(const uint8_t trace_id[16], double rate)
{
	if (rate >= 1.0)
		return true;
	if (rate <= 0.0)
		return false;
	uint64_t v = 0;
	for (int i = 8; i < 16; i++)
		v = v << 8 | trace_id[i];
	return (double)v < rate * 18446744073709551616.0;
}

/* ---- OTLP JSON ---------------------------------------------------------------------- */

/* Written straight into a buffer whose room for the whole span is reserved
 * first (span_bound), by pointer: no tree (a jansson tree per span cost
 * ~80,000 instructions), no printf, no strlen of what the span already
 * measured, no bounds check per piece (~6,300 instructions a span with
 * mg_buf calls and snprintf; this is a fraction of that). Strings are
 * escaped for JSON; bytes of an invalid UTF-8 string are replaced by '?',
 * so the document is always valid. */

#define LIT(p, s) put_mem(p, s, sizeof s - 1)

static char *put_mem(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* `s` as a JSON string: at most 2 + 6 * n bytes. */
static char *put_str(char *p, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	*p++ = '"';
	if (mg_json_plain(s, n)) {
		p = put_mem(p, s, n);
		*p++ = '"';
		return p;
	}
	bool utf8 = mg_utf8_valid(s, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c < 0x20) {
			p = LIT(p, "\\u00");
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		} else if (c >= 0x80 && !utf8) {
			*p++ = '?';
		} else {
			*p++ = (char)c;
		}
	}
	*p++ = '"';
	return p;
}

static char *put_hex(char *p, const uint8_t *id, size_t n)
{
	*p++ = '"';
	mg_hex(id, n, p);
	p += 2 * n;
	*p++ = '"';
	return p;
}

/* A decimal in quotes (OTLP JSON writes 64-bit integers as strings). */
static char *put_int_str(char *p, int64_t v)
{
	*p++ = '"';
	p += mg_fmt_i64(p, v);
	*p++ = '"';
	return p;
}

/* A time in ns since the epoch, in quotes, as put_int_str writes it. The
 * seconds (10 digits until 2286) change once a second: they are formatted
 * then and kept, the nanoseconds always take 9 digits. Two per span, on the
 * loop thread: the general formatter's divisions were a fifth of a span. */
static char *put_time_str(char *p, uint64_t ns)
{
	static _Thread_local uint64_t cached_secs = UINT64_MAX;
	static _Thread_local char secs_text[MG_I64_CHARS];
	static _Thread_local size_t secs_len;
	uint64_t secs = ns / 1000000000u;
	uint32_t frac = (uint32_t)(ns % 1000000000u);
	if (secs == 0)
		return put_int_str(p, (int64_t)frac);
	if (secs > INT64_MAX / 1000000000)
		return put_int_str(p, (int64_t)ns); /* (cannot happen: out of int64's range) */
	if (secs != cached_secs) {
		secs_len = mg_fmt_i64(secs_text, (int64_t)secs);
		cached_secs = secs;
	}
	*p++ = '"';
	p = put_mem(p, secs_text, secs_len);
	for (int i = 8; i >= 0; i--) {
		p[i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	p += 9;
	*p++ = '"';
	return p;
}

/* A key: a static, JSON-plain name (see mg_span_attr_str), no escaping. */
static char *put_key(char *p, const char *key)
{
	*p++ = '"';
	p = put_mem(p, key, strlen(key));
	*p++ = '"';
	return p;
}

/* What put_span may write at most for `s`. */
static size_t span_bound(const struct mg_span *s)
{
	size_t n = 512 + 6 * strnlen(s->name, sizeof s->name) +
	           6 * strnlen(s->status_msg, sizeof s->status_msg);
	for (size_t i = 0; i < s->n_attrs && i < MG_SPAN_MAX_ATTRS; i++)
		n += 64 + 6 * strlen(s->attrs[i].key) + 6 * (size_t)s->attrs[i].len;
	return n;
}

static char *put_span(char *p, const struct mg_span *s)
{
	static const char kinds[] = "0123";
	p = LIT(p, "{\"traceId\":");
	p = put_hex(p, s->trace_id, 16);
	p = LIT(p, ",\"spanId\":");
	p = put_hex(p, s->span_id, 8);
	if (!mg_trace_zero(s->parent_id, 8)) {
		p = LIT(p, ",\"parentSpanId\":");
		p = put_hex(p, s->parent_id, 8);
	}
	p = LIT(p, ",\"name\":");
	p = put_str(p, s->name, strnlen(s->name, sizeof s->name));
	p = LIT(p, ",\"kind\":");
	*p++ = (unsigned)s->kind < 4 ? kinds[s->kind] : '0';
	p = LIT(p, ",\"startTimeUnixNano\":");
	p = put_time_str(p, s->start_ns);
	p = LIT(p, ",\"endTimeUnixNano\":");
	p = put_time_str(p, s->end_ns);
	p = LIT(p, ",\"attributes\":[");
	for (size_t i = 0; i < s->n_attrs && i < MG_SPAN_MAX_ATTRS; i++) {
		const struct mg_span_attr *x = &s->attrs[i];
		if (i)
			*p++ = ',';
		p = LIT(p, "{\"key\":");
		p = put_key(p, x->key);
		if (x->is_int) {
			p = LIT(p, ",\"value\":{\"intValue\":");
			p = put_int_str(p, x->i);
		} else {
			p = LIT(p, ",\"value\":{\"stringValue\":");
			p = put_str(p, x->s, x->len);
		}
		p = LIT(p, "}}");
	}
	*p++ = ']';
	if (s->has_link) {
		p = LIT(p, ",\"links\":[{\"traceId\":");
		p = put_hex(p, s->link.trace_id, 16);
		p = LIT(p, ",\"spanId\":");
		p = put_hex(p, s->link.span_id, 8);
		p = LIT(p, "}]");
	}
	if (s->error) {
		p = LIT(p, ",\"status\":{\"code\":2,\"message\":");
		p = put_str(p, s->status_msg, strnlen(s->status_msg, sizeof s->status_msg));
		p = LIT(p, "}}");
	} else {
		p = LIT(p, ",\"status\":{\"code\":0}}");
	}
	return p;
}

/* The document around the spans: head (with the service name) and tail. */
static const char otlp_head1[] = "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":"
                                 "\"service.name\",\"value\":{\"stringValue\":";
static const char otlp_head2[] = "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"mcp-guard\"},"
                                 "\"spans\":[";
static const char otlp_tail[] = "]}]}]}";

/* Appends the document's head to `b` (empty); -1 when out of memory. */
static int put_head(struct mg_buf *b, const char *service_name)
{
	const char *svc = service_name ? service_name : "mcp-guard";
	size_t svc_len = strlen(svc);
	if (mg_buf_reserve(b, sizeof otlp_head1 + 6 * svc_len + sizeof otlp_head2) < 0)
		return -1;
	char *p = b->data + b->len;
	p = LIT(p, otlp_head1);
	p = put_str(p, svc, svc_len);
	p = LIT(p, otlp_head2);
	b->len = (size_t)(p - b->data);
	b->data[b->len] = '\0';
	return 0;
}

/* Appends one span (with a comma before it unless `first`). */
static int put_span_buf(struct mg_buf *b, const struct mg_span *s, bool first)
{
	if (mg_buf_reserve(b, 1 + span_bound(s)) < 0)
		return -1;
	char *p = b->data + b->len;
	if (!first)
		*p++ = ',';
	p = put_span(p, s);
	b->len = (size_t)(p - b->data);
	b->data[b->len] = '\0';
	return 0;
}

char *mg_trace_otlp_json(const struct mg_span *spans, size_t n, const char *service_name,
                         size_t *len)
{
	struct mg_buf b;
	mg_buf_init(&b, 0);
	int rc = put_head(&b, service_name);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = put_span_buf(&b, &spans[i], i == 0);
	if (rc == 0)
		rc = mg_buf_append(&b, otlp_tail, sizeof otlp_tail - 1);
	if (rc < 0) {
		mg_buf_free(&b);
		return NULL;
	}
	*len = b.len;
	return mg_buf_steal(&b);
}

/* ---- OTLP protobuf ------------------------------------------------------------------ */

/* The binary encoding of opentelemetry/proto/collector/trace/v1
 * ExportTraceServiceRequest, written by hand: a few fixed messages need no
 * protobuf library. Every span is encoded on its own as a ScopeSpans.spans
 * member (tag, length, Span), sizes computed first so the bytes are written
 * once, in field order, proto3 defaults left out. The messages around the
 * spans need the spans' total length: the batch buffer starts with a gap
 * (pb_gap) and the worker writes them, right-aligned, into it when it sends.
 * Strings must be UTF-8 in proto3 (receivers reject the message
 * otherwise): bytes of an invalid string become '?', as in the JSON. */

enum {
	PB_VARINT = 0,
	PB_I64 = 1,
	PB_LEN = 2,
	PB_I32 = 5,
};

#define PB_TAG(field, wire) ((uint8_t)((field) << 3 | (wire)))

static size_t pb_vsize(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *pb_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* A length-delimited field of `n` bytes: its tag, length and content. */
static size_t pb_lsize(size_t n)
{
	return 1 + pb_vsize(n) + n;
}

static uint8_t *pb_bytes(uint8_t *p, unsigned field, const void *d, size_t n)
{
	*p++ = PB_TAG(field, PB_LEN);
	p = pb_varint(p, n);
	memcpy(p, d, n);
	return p + n;
}

static uint8_t *pb_str(uint8_t *p, unsigned field, const char *s, size_t n)
{
	if (mg_utf8_valid(s, n))
		return pb_bytes(p, field, s, n);
	*p++ = PB_TAG(field, PB_LEN);
	p = pb_varint(p, n);
	for (size_t i = 0; i < n; i++)
		*p++ = (unsigned char)s[i] >= 0x80 ? '?' : (uint8_t)s[i];
	return p;
}

static uint8_t *pb_fixed64(uint8_t *p, unsigned field, uint64_t v)
{
	*p++ = PB_TAG(field, PB_I64);
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

/* AnyValue of attribute `a`: string_value (1) or int_value (3). */
static size_t pb_value_size(const struct mg_span_attr *a)
{
	return a->is_int ? 1 + pb_vsize((uint64_t)a->i) : pb_lsize(a->len);
}

/* KeyValue of attribute `a`: key (1), value (2). */
static size_t pb_attr_size(const struct mg_span_attr *a, size_t key_len)
{
	return pb_lsize(key_len) + pb_lsize(pb_value_size(a));
}

/* The Span message of `s` (without the tag and length around it). */
static size_t pb_span_size(const struct mg_span *s, size_t name_len, size_t msg_len,
                           const size_t *key_lens)
{
	size_t n = pb_lsize(16) + pb_lsize(8) + pb_lsize(name_len) + 2 * 9;
	if (!mg_trace_zero(s->parent_id, 8))
		n += pb_lsize(8);
	if (s->kind)
		n += 2;
	for (size_t i = 0; i < s->n_attrs && i < MG_SPAN_MAX_ATTRS; i++)
		n += pb_lsize(pb_attr_size(&s->attrs[i], key_lens[i]));
	if (s->has_link)
		n += pb_lsize(pb_lsize(16) + pb_lsize(8));
	if (s->error)
		n += pb_lsize((msg_len ? pb_lsize(msg_len) : 0) + 2);
	return n;
}

/* What put_span_pb writes for `s`, at most. */
static size_t span_pb_bound(const struct mg_span *s)
{
	size_t n = 160 + sizeof s->name + sizeof s->status_msg;
	for (size_t i = 0; i < s->n_attrs && i < MG_SPAN_MAX_ATTRS; i++)
		n += 32 + strlen(s->attrs[i].key) + sizeof s->attrs[i].s;
	return n;
}

/* `s` as a ScopeSpans.spans member (field 2): tag, length, Span. */
static uint8_t *put_span_pb(uint8_t *p, const struct mg_span *s)
{
	size_t name_len = strnlen(s->name, sizeof s->name);
	size_t msg_len = s->error ? strnlen(s->status_msg, sizeof s->status_msg) : 0;
	size_t key_lens[MG_SPAN_MAX_ATTRS];
	for (size_t i = 0; i < s->n_attrs && i < MG_SPAN_MAX_ATTRS; i++)
		key_lens[i] = strlen(s->attrs[i].key);
	*p++ = PB_TAG(2, PB_LEN);
	p = pb_varint(p, pb_span_size(s, name_len, msg_len, key_lens));
	p = pb_bytes(p, 1, s->trace_id, 16);
	p = pb_bytes(p, 2, s->span_id, 8);
	if (!mg_trace_zero(s->parent_id, 8))
		p = pb_bytes(p, 4, s->parent_id, 8);
	p = pb_str(p, 5, s->name, name_len);
	if (s->kind) {
		*p++ = PB_TAG(6, PB_VARINT);
		*p++ = (uint8_t)s->kind;
	}
	p = pb_fixed64(p, 7, s->start_ns);
	p = pb_fixed64(p, 8, s->end_ns);
	for (size_t i = 0; i < s->n_attrs && i < MG_SPAN_MAX_ATTRS; i++) {
		const struct mg_span_attr *a = &s->attrs[i];
		*p++ = PB_TAG(9, PB_LEN);
		p = pb_varint(p, pb_attr_size(a, key_lens[i]));
		p = pb_bytes(p, 1, a->key, key_lens[i]);
		*p++ = PB_TAG(2, PB_LEN);
		p = pb_varint(p, pb_value_size(a));
		if (a->is_int) {
			*p++ = PB_TAG(3, PB_VARINT);
			p = pb_varint(p, (uint64_t)a->i);
		} else {
			p = pb_str(p, 1, a->s, a->len);
		}
	}
	if (s->has_link) {
		*p++ = PB_TAG(13, PB_LEN);
		p = pb_varint(p, pb_lsize(16) + pb_lsize(8));
		p = pb_bytes(p, 1, s->link.trace_id, 16);
		p = pb_bytes(p, 2, s->link.span_id, 8);
	}
	if (s->error) { /* Status: message (2), code (3) = STATUS_CODE_ERROR */
		*p++ = PB_TAG(15, PB_LEN);
		p = pb_varint(p, (msg_len ? pb_lsize(msg_len) : 0) + 2);
		if (msg_len)
			p = pb_str(p, 2, s->status_msg, msg_len);
		*p++ = PB_TAG(3, PB_VARINT);
		*p++ = 2;
	}
	return p;
}

static int put_span_pb_buf(struct mg_buf *b, const struct mg_span *s)
{
	if (mg_buf_reserve(b, span_pb_bound(s)) < 0)
		return -1;
	uint8_t *p = put_span_pb((uint8_t *)b->data + b->len, s);
	b->len = (size_t)((char *)p - b->data);
	b->data[b->len] = '\0';
	return 0;
}

/* Room the messages around the spans may take (pb_head). */
static size_t pb_gap(const char *service_name)
{
	return 64 + strlen(service_name);
}

/* Writes the ExportTraceServiceRequest's bytes before `spans_len` bytes of
 * spans so that they end at `end`; returns where they start. */
static uint8_t *pb_head(uint8_t *end, const char *svc, size_t spans_len)
{
	static const char key[] = "service.name", scope[] = "mcp-guard";
	size_t svc_len = strlen(svc);
	size_t any = pb_lsize(svc_len);                         /* AnyValue */
	size_t kv = pb_lsize(sizeof key - 1) + pb_lsize(any);   /* KeyValue */
	size_t resource = pb_lsize(kv);                         /* Resource */
	size_t scope_msg = pb_lsize(sizeof scope - 1);          /* InstrumentationScope */
	size_t scope_spans = pb_lsize(scope_msg) + spans_len;   /* ScopeSpans */
	size_t rs = pb_lsize(resource) + pb_lsize(scope_spans); /* ResourceSpans */
	size_t head = pb_lsize(rs) - rs + pb_lsize(resource) + pb_lsize(scope_spans) - scope_spans +
	              pb_lsize(scope_msg);
	uint8_t *p = end - head, *start = p;
	*p++ = PB_TAG(1, PB_LEN); /* ExportTraceServiceRequest.resource_spans */
	p = pb_varint(p, rs);
	*p++ = PB_TAG(1, PB_LEN); /* ResourceSpans.resource */
	p = pb_varint(p, resource);
	*p++ = PB_TAG(1, PB_LEN); /* Resource.attributes */
	p = pb_varint(p, kv);
	p = pb_bytes(p, 1, key, sizeof key - 1);
	*p++ = PB_TAG(2, PB_LEN);
	p = pb_varint(p, any);
	p = pb_str(p, 1, svc, svc_len);
	*p++ = PB_TAG(2, PB_LEN); /* ResourceSpans.scope_spans */
	p = pb_varint(p, scope_spans);
	*p++ = PB_TAG(1, PB_LEN); /* ScopeSpans.scope */
	p = pb_varint(p, scope_msg);
	p = pb_bytes(p, 1, scope, sizeof scope - 1);
	(void)p; /* == end */
	return start;
}

char *mg_trace_otlp_proto(const struct mg_span *spans, size_t n, const char *service_name,
                          size_t *len)
{
	const char *svc = service_name ? service_name : "mcp-guard";
	size_t gap = pb_gap(svc);
	struct mg_buf b;
	mg_buf_init(&b, 0);
	int rc = mg_buf_reserve(&b, gap);
	if (rc == 0)
		b.len = gap;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = put_span_pb_buf(&b, &spans[i]);
	if (rc < 0) {
		mg_buf_free(&b);
		return NULL;
	}
	uint8_t *start = pb_head((uint8_t *)b.data + gap, svc, b.len - gap);
	size_t off = (size_t)((char *)start - b.data);
	*len = b.len - off;
	memmove(b.data, b.data + off, *len);
	b.data[*len] = '\0';
	return mg_buf_steal(&b);
}

/* Reads a varint at *p (< end); -1 when truncated or longer than 10 bytes. */
static int pb_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 70; shift += 7) {
		if (*p >= end)
			return -1;
		uint8_t c = *(*p)++;
		*v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return 0;
	}
	return -1;
}

/* Skips one field of wire type `wire`; for PB_LEN, *content and
 * *content_len say where its content is. */
static int pb_skip(const uint8_t **p, const uint8_t *end, unsigned wire, const uint8_t **content,
                   size_t *content_len)
{
	uint64_t v;
	switch (wire) {
	case PB_VARINT:
		return pb_read_varint(p, end, &v);
	case PB_I64:
		if (end - *p < 8)
			return -1;
		*p += 8;
		return 0;
	case PB_I32:
		if (end - *p < 4)
			return -1;
		*p += 4;
		return 0;
	case PB_LEN:
		if (pb_read_varint(p, end, &v) < 0 || v > (uint64_t)(end - *p))
			return -1;
		*content = *p;
		*content_len = (size_t)v;
		*p += v;
		return 0;
	default: /* groups: not in OTLP */
		return -1;
	}
}

int mg_otlp_partial_success(const void *body, size_t len, int64_t *rejected, const char **msg,
                            size_t *msg_len)
{
	*rejected = 0;
	*msg = NULL;
	*msg_len = 0;
	const uint8_t *p = body, *end = p + len;
	while (p < end) { /* ExportTraceServiceResponse */
		uint64_t tag, v;
		const uint8_t *c = NULL;
		size_t cl = 0;
		if (pb_read_varint(&p, end, &tag) < 0 || tag >> 3 == 0)
			return -1;
		if (pb_skip(&p, end, (unsigned)(tag & 7), &c, &cl) < 0)
			return -1;
		if (tag != PB_TAG(1, PB_LEN))
			continue; /* unknown fields are skipped, as protobuf says */
		const uint8_t *q = c, *qend = c + cl;
		while (q < qend) { /* ExportTracePartialSuccess */
			const uint8_t *m = NULL;
			size_t ml = 0;
			if (pb_read_varint(&q, qend, &tag) < 0 || tag >> 3 == 0)
				return -1;
			if (tag == PB_TAG(1, PB_VARINT)) {
				if (pb_read_varint(&q, qend, &v) < 0)
					return -1;
				*rejected = (int64_t)v;
			} else if (pb_skip(&q, qend, (unsigned)(tag & 7), &m, &ml) < 0) {
				return -1;
			} else if (tag == PB_TAG(2, PB_LEN)) {
				*msg = (const char *)m;
				*msg_len = ml;
			}
		}
	}
	return 0;
}

/* ---- the exporter ------------------------------------------------------------------- */

/* Spans are encoded when they are submitted, into `cur` (JSON: the
 * document's head, then the spans joined by commas; protobuf: a gap, then
 * the spans): a span is copied once, a few hundred bytes written in
 * sequence, where a ring of 2,048 fixed 2.7 KiB span structs (5.5 MiB) had
 * each span written and read again through cold cache lines. The worker
 * swaps `cur` for `spare` and sends it, completed with the JSON tail or the
 * protobuf messages written into the gap. */
struct mg_tracer {
	const struct mg_tracing_config *cfg;
	char url[1024];
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct mg_buf cur, spare;        /* under mu: the spans waiting, the buffer free */
	uint32_t *cur_ends, *spare_ends; /* each span's end in cur (spare) */
	size_t cur_n;                    /* spans in cur */
	size_t sending;                  /* spans taken by the worker, not yet sent */
	size_t queue_max, batch_max;     /* tracing.queue_size, export_batch_size */
	long interval_ms;                /* tracing.export_interval_ms */
	struct mg_buf scratch;           /* loop thread only: a span being encoded */
	struct mg_buf out;               /* the worker's: one export request */
	struct mg_fetch_session *http;   /* the worker's: its connection to the collector */
	bool proto;                      /* otlp_protocol = "http/protobuf" (else JSON) */
	bool gzip;                       /* otlp_compression = "gzip" */
	struct mg_buf zout;              /* the worker's: the request compressed */
	char **headers; /* otlp_headers as lines, then Content-Type and Content-Encoding */
	size_t gap;     /* proto: room before the spans (pb_gap) */
	bool stopping;
	uint64_t exported, dropped, failed;
};

/* The export request for spans [i, j) of `b` (ends: each span's end) in
 * t->out; returns its start (after the protobuf gap) or NULL when out of
 * memory. */
static const char *build_request(struct mg_tracer *t, const struct mg_buf *b, const uint32_t *ends,
                                 size_t i, size_t j, size_t *len)
{
	size_t from = i ? ends[i - 1] : 0, bytes = ends[j - 1] - from;
	struct mg_buf *o = &t->out;
	mg_buf_reset(o);
	if (t->proto) {
		if (mg_buf_reserve(o, t->gap + bytes) < 0)
			return NULL;
		memcpy(o->data + t->gap, b->data + from, bytes);
		o->len = t->gap + bytes;
		const char *start =
		    (const char *)pb_head((uint8_t *)o->data + t->gap, t->cfg->service_name, bytes);
		*len = o->len - (size_t)(start - o->data);
		return start;
	}
	if (put_head(o, t->cfg->service_name) < 0 ||
	    mg_buf_reserve(o, bytes + (j - i) + sizeof otlp_tail) < 0)
		return NULL;
	for (size_t k = i; k < j; k++) {
		size_t a = k ? ends[k - 1] : 0;
		if (k > i)
			o->data[o->len++] = ',';
		memcpy(o->data + o->len, b->data + a, ends[k] - a);
		o->len += ends[k] - a;
	}
	memcpy(o->data + o->len, otlp_tail, sizeof otlp_tail); /* with its NUL */
	o->len += sizeof otlp_tail - 1;
	*len = o->len;
	return o->data;
}

void mg_span_clear(struct mg_span *s)
{
	memset(s, 0, offsetof(struct mg_span, attrs));
}

void mg_tracer_submit(struct mg_tracer *t, const struct mg_span *s)
{
	mg_buf_reset(&t->scratch);
	bool encoded =
	    (t->proto ? put_span_pb_buf(&t->scratch, s) : put_span_buf(&t->scratch, s, true)) == 0;
	pthread_mutex_lock(&t->mu);
	/* the whole span or nothing: never half a span in the queue */
	if (!encoded || t->cur_n >= t->queue_max || mg_buf_reserve(&t->cur, t->scratch.len) < 0) {
		t->dropped++; /* the queue is full (or out of memory) */
	} else {
		memcpy(t->cur.data + t->cur.len, t->scratch.data, t->scratch.len);
		t->cur.len += t->scratch.len;
		t->cur_ends[t->cur_n] = (uint32_t)t->cur.len;
		if (++t->cur_n >= t->batch_max)
			pthread_cond_signal(&t->cv);
	}
	pthread_mutex_unlock(&t->mu);
}

void mg_tracer_stats(struct mg_tracer *t, struct mg_tracer_stats *out)
{
	pthread_mutex_lock(&t->mu);
	*out = (struct mg_tracer_stats){ .exported = t->exported,
		                         .dropped = t->dropped,
		                         .failed_exports = t->failed,
		                         .queued = t->cur_n + t->sending,
		                         .capacity = t->queue_max };
	pthread_mutex_unlock(&t->mu);
}

static bool retryable(long status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

/* Sleeps `secs` unless the tracer is stopping (then returns at once). */
static void pause_unless_stopping(struct mg_tracer *t, long secs)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += secs;
	pthread_mutex_lock(&t->mu);
	while (!t->stopping) {
		if (pthread_cond_timedwait(&t->cv, &t->mu, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&t->mu);
}

/* A 2xx answer may hold a partial success (rejected spans, a message),
 * in the request's encoding: logged, never resent. */
static void log_partial_success(const struct mg_tracer *t, const char *body, size_t len, size_t n)
{
	if (t->proto) {
		int64_t rejected;
		const char *msg;
		size_t msg_len;
		if (mg_otlp_partial_success(body, len, &rejected, &msg, &msg_len) == 0 &&
		    rejected > 0)
			mg_log_warn("tracing: the collector rejected %lld span(s) of %zu: %.*s",
			            (long long)rejected, n, (int)(msg_len < 200 ? msg_len : 200),
			            msg ? msg : "");
		return;
	}
	json_t *resp = json_loadb(body ? body : "", len, 0, NULL);
	json_t *ps = json_object_get(resp, "partialSuccess");
	const char *rej = json_string_value(json_object_get(ps, "rejectedSpans"));
	json_int_t rejn = json_integer_value(json_object_get(ps, "rejectedSpans"));
	if ((rej && strcmp(rej, "0") != 0) || rejn > 0)
		mg_log_warn("tracing: the collector rejected %s span(s) of %zu: %.200s",
		            rej ? rej : "some", n,
		            json_string_value(json_object_get(ps, "errorMessage")) ?: "");
	json_decref(resp);
}

/* Sends one batch (`body`: the whole document, `n` spans); returns true
 * when the collector took it. */
static bool send_batch(struct mg_tracer *t, const char *body, size_t len, size_t n)
{
	size_t nh = t->cfg->otlp_headers.n;
	t->headers[nh++] =
	    t->proto ? "Content-Type: application/x-protobuf" : "Content-Type: application/json";
	if (t->gzip) {
		mg_buf_reset(&t->zout);
		if (mg_gzip(body, len, MG_GZIP_LEVEL, &t->zout) == 0) {
			t->headers[nh++] = "Content-Encoding: gzip";
			body = t->zout.data;
			len = t->zout.len;
		} else {
			/* (out of memory: the spans go as they are rather than not at all) */
			mg_log_warn("tracing: cannot compress a batch; sent uncompressed");
		}
	}
	struct mg_fetch_opts o = {
		.url = t->url,
		.method = "POST",
		.headers = (const char *const *)t->headers,
		.n_headers = nh,
		.body = body,
		.body_len = len,
		.timeout_ms = 5000,
		.max_bytes = 64 * 1024,
		.allow_private = t->cfg->allow_private_networks,
	};
	bool ok = false;
	for (int attempt = 0;; attempt++) {
		struct mg_fetch_sync_result r;
		int rc = mg_fetch_sync_on(t->http, &o, &r);
		if (rc == 0 && r.status >= 200 && r.status < 300) {
			log_partial_success(t, r.body.data, r.body.len, n);
			mg_fetch_sync_result_free(&r);
			ok = true;
			break;
		}
		long status = rc == 0 ? r.status : 0;
		long ra = rc == 0 ? r.retry_after_secs : -1;
		char why[300];
		snprintf(why, sizeof why, "%s", rc == 0 ? "" : r.error);
		mg_fetch_sync_result_free(&r);
		bool stopping;
		pthread_mutex_lock(&t->mu);
		stopping = t->stopping;
		t->failed++;
		pthread_mutex_unlock(&t->mu);
		if (!retryable(status) || attempt >= MG_TRACE_RETRIES || stopping) {
			if (status)
				mg_log_warn("tracing: %s answered %ld; %zu span(s) dropped", t->url,
				            status, n);
			else
				mg_log_warn("tracing: cannot reach %s: %s; %zu span(s) dropped",
				            t->url, why, n);
			break;
		}
		uint8_t j = 0;
		mg_random_bytes(&j, 1);
		long wait = ra >= 0 ? ra : (1L << attempt) + (j % 2);
		if (wait > MG_TRACE_MAX_WAIT_S)
			wait = MG_TRACE_MAX_WAIT_S;
		pause_unless_stopping(t, wait);
	}
	return ok;
}

static void *export_main(void *arg)
{
	struct mg_tracer *t = arg;
	pthread_setname_np(pthread_self(), "mg-otlp");
	for (;;) {
		pthread_mutex_lock(&t->mu);
		if (t->cur_n < t->batch_max && !t->stopping) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += t->interval_ms / 1000;
			until.tv_nsec += t->interval_ms % 1000 * 1000000;
			until.tv_sec += until.tv_nsec / 1000000000;
			until.tv_nsec %= 1000000000;
			pthread_cond_timedwait(&t->cv, &t->mu, &until);
		}
		/* Take the waiting spans; the loop goes on filling the spare buffer. */
		size_t n = t->cur_n;
		struct mg_buf batch = t->cur;
		uint32_t *ends = t->cur_ends;
		if (n) {
			t->cur = t->spare;
			t->cur_ends = t->spare_ends;
			mg_buf_reset(&t->cur);
			t->cur_n = 0;
			t->sending = n;
		}
		bool stopping = t->stopping;
		pthread_mutex_unlock(&t->mu);
		for (size_t i = 0; i < n;) {
			size_t j = n - i > t->batch_max ? i + t->batch_max : n, len = 0;
			const char *body = build_request(t, &batch, ends, i, j, &len);
			bool ok = body && send_batch(t, body, len, j - i);
			if (!body)
				mg_log_warn("tracing: out of memory; %zu span(s) dropped", j - i);
			if (!ok && j < n) {
				/* The rest would meet the same collector: retrying each
				 * request in turn would hold the exporter (and a shutdown)
				 * for minutes while the queue overflows anyway. */
				mg_log_warn("tracing: %zu more queued span(s) dropped with them",
				            n - j);
				j = n;
			}
			pthread_mutex_lock(&t->mu);
			t->sending -= j - i;
			if (ok)
				t->exported += j - i;
			else
				t->dropped += j - i;
			pthread_mutex_unlock(&t->mu);
			i = j;
		}
		pthread_mutex_lock(&t->mu);
		if (n) {
			mg_buf_reset(&batch);
			t->spare = batch; /* kept for the next swap */
			t->spare_ends = ends;
		}
		bool stop = stopping && t->cur_n == 0;
		pthread_mutex_unlock(&t->mu);
		if (stop)
			break;
	}
	return NULL;
}

struct mg_tracer *mg_tracer_new(const struct mg_tracing_config *cfg, char *err, size_t err_size)
{
	if (mg_fetch_load(err, err_size) < 0)
		return NULL;
	if (cfg->otlp_compression == MG_COMPRESS_GZIP) {
		char why[200];
		if (mg_gzip_load(why, sizeof why) < 0) {
			snprintf(err, err_size, "tracing.otlp_compression = \"gzip\": %s", why);
			return NULL;
		}
	}
	struct mg_tracer *t = calloc(1, sizeof *t);
	if (!t) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	t->cfg = cfg;
	t->proto = cfg->otlp_protocol == MG_OTLP_PROTOBUF;
	t->gap = pb_gap(cfg->service_name ? cfg->service_name : "mcp-guard");
	t->http = mg_fetch_session_new(); /* NULL (out of memory): a connection per batch */
	t->gzip = cfg->otlp_compression == MG_COMPRESS_GZIP;
	t->headers = mg_fetch_header_lines(&cfg->otlp_headers, 2);
	/* (zero: a configuration built in code, not loaded: the defaults) */
	t->queue_max = cfg->queue_size > 0 ? (size_t)cfg->queue_size : MG_TRACE_QUEUE_DEFAULT;
	if (t->queue_max > MG_TRACE_QUEUE_MAX)
		t->queue_max = MG_TRACE_QUEUE_MAX;
	t->batch_max =
	    cfg->export_batch_size > 0 ? (size_t)cfg->export_batch_size : MG_TRACE_BATCH_DEFAULT;
	t->interval_ms = cfg->export_interval_ms > 0 ? (long)cfg->export_interval_ms : 1000;
	if (t->batch_max > t->queue_max)
		t->batch_max = t->queue_max;
	/* (pages of the ends and the buffers are touched only as spans come;
	 * the buffers' ceiling keeps every end within a uint32_t) */
	size_t max_bytes = t->queue_max * MG_TRACE_SPAN_BYTES;
	mg_buf_init(&t->cur, max_bytes);
	mg_buf_init(&t->spare, max_bytes);
	mg_buf_init(&t->scratch, max_bytes);
	mg_buf_init(&t->out, 0);
	mg_buf_init(&t->zout, 0);
	t->cur_ends = calloc(t->queue_max, sizeof *t->cur_ends);
	t->spare_ends = calloc(t->queue_max, sizeof *t->spare_ends);
	if (!t->headers || !t->cur_ends || !t->spare_ends) {
		snprintf(err, err_size, "out of memory");
		goto fail;
	}
	const char *ep = cfg->otlp_endpoint;
	size_t n = strlen(ep);
	while (n && ep[n - 1] == '/')
		n--;
	snprintf(t->url, sizeof t->url, "%.*s/v1/traces", (int)n, ep);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	if (pthread_create(&t->thread, NULL, export_main, t) != 0) {
		snprintf(err, err_size, "cannot start the export thread");
		pthread_mutex_destroy(&t->mu);
		pthread_cond_destroy(&t->cv);
		goto fail;
	}
	return t;
fail:
	mg_buf_free(&t->cur);
	mg_buf_free(&t->spare);
	mg_buf_free(&t->scratch);
	free(t->cur_ends);
	free(t->spare_ends);
	mg_fetch_session_free(t->http);
	mg_fetch_header_lines_free(t->headers, cfg->otlp_headers.n);
	free(t);
	return NULL;
}

void mg_tracer_free(struct mg_tracer *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	t->stopping = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thread, NULL);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	mg_buf_free(&t->cur);
	mg_buf_free(&t->spare);
	mg_buf_free(&t->scratch);
	mg_buf_free(&t->out);
	mg_buf_free(&t->zout);
	free(t->cur_ends);
	free(t->spare_ends);
	mg_fetch_session_free(t->http);
	mg_fetch_header_lines_free(t->headers, t->cfg->otlp_headers.n);
	free(t);
}
