/*
 * test_trace.c - W3C traceparent/tracestate (the specification's valid and
 * invalid examples), id generation, the trace-id ratio sampler, the
 * OTLP/HTTP JSON and binary protobuf encodings, and the reader of a
 * collector's protobuf answer.
 */
#include "support.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "trace/context.h"
#include "trace/trace.h"

static int parse(const char *s, struct mg_trace_ctx *c)
{
	return mg_traceparent_parse(s, strlen(s), c);
}

static void test_traceparent(void **state)
{
	(void)state;
	struct mg_trace_ctx c;
	const char *ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	assert_int_equal(parse(ok, &c), 0);
	assert_int_equal(c.trace_id[0], 0x4b);
	assert_int_equal(c.span_id[7], 0xb7);
	assert_int_equal(c.flags, 1);
	char out[MG_TRACEPARENT_LEN + 1];
	mg_traceparent_format(&c, out);
	assert_string_equal(out, ok);
	/* A future version may carry more after a dash. */
	assert_int_equal(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what", &c),
	                 0);
	assert_int_equal(c.flags, 9);
	const char *bad[] = {
		"",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* v00 with more */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",   /* short */
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* uppercase */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace id */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero parent id */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* separator */
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* no dash after */
		"0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		NULL,
	};
	for (size_t i = 0; bad[i]; i++) {
		memset(&c, 0x5a, sizeof c);
		assert_int_equal(parse(bad[i], &c), -1);
		assert_int_equal(c.flags, 0x5a); /* untouched */
	}
}

static void test_tracestate(void **state)
{
	(void)state;
	const char *ok[] = { "",
		             "rojo=00f067aa0ba902b7",
		             "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
		             " a=1 ,\tb=2\t, , c=x y",
		             "tenant1@sys=v",
		             "k*/_-=!\"#$%&'()*+-./:;<>?@[]^_`{|}~",
		             NULL };
	for (size_t i = 0; ok[i]; i++)
		assert_true(mg_tracestate_valid(ok[i], strlen(ok[i])));
	const char *bad[] = { "Rojo=1", "a=1,a=2", "a",    "=1",      "a=",     "a=b=c",
		              "a=1\n",  "@s=1",    "t@=1", "t@Sys=1", "a=\x7f", NULL };
	for (size_t i = 0; bad[i]; i++)
		assert_false(mg_tracestate_valid(bad[i], strlen(bad[i])));
	/* 33 members, and more than 512 bytes. */
	char many[400];
	size_t used = 0;
	for (int i = 0; i < 33; i++)
		used +=
		    (size_t)snprintf(many + used, sizeof many - used, "%sk%d=v", i ? "," : "", i);
	assert_false(mg_tracestate_valid(many, strlen(many)));
	char big[600];
	memset(big, 'v', sizeof big);
	memcpy(big, "k=", 2);
	assert_false(mg_tracestate_valid(big, sizeof big));
}

static void test_ids_and_sampling(void **state)
{
	(void)state;
	uint8_t a[16], b[16], s[8];
	mg_trace_new_trace_id(a);
	mg_trace_new_trace_id(b);
	mg_trace_new_span_id(s);
	assert_false(mg_trace_zero(a, 16));
	assert_false(mg_trace_zero(s, 8));
	assert_memory_not_equal(a, b, 16);
	uint8_t low[16] = { 0 }, high[16];
	memset(high, 0xff, sizeof high);
	low[15] = 1;
	assert_true(mg_trace_sampled(low, 0.1));
	assert_false(mg_trace_sampled(high, 0.1));
	assert_true(mg_trace_sampled(high, 1.0));
	assert_false(mg_trace_sampled(low, 0.0));
	/* Roughly the rate over many random ids. */
	int n = 0;
	for (int i = 0; i < 10000; i++) {
		mg_trace_new_trace_id(a);
		n += mg_trace_sampled(a, 0.25);
	}
	assert_in_range(n, 2000, 3000);
}

/* The times as the encoder writes them (the seconds are cached between
 * spans): leading zeros of the nanoseconds kept, a new second, time zero. */
static void test_otlp_times(void **state)
{
	(void)state;
	static const struct {
		uint64_t ns;
		const char *text;
	} cases[] = {
		{ 1700000000000000001ULL, "1700000000000000001" },
		{ 1700000000000000000ULL, "1700000000000000000" },
		{ 1700000001099999999ULL, "1700000001099999999" },
		{ 1700000000000000012ULL, "1700000000000000012" },
		{ 999999999ULL, "999999999" },
		{ 0, "0" },
		{ 1000000000ULL, "1000000000" },
		{ (uint64_t)INT64_MAX, "9223372036854775807" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct mg_span sp;
		memset(&sp, 0, sizeof sp);
		sp.trace_id[0] = sp.span_id[0] = 1;
		sp.start_ns = cases[i].ns;
		sp.end_ns = cases[i].ns;
		size_t len;
		char *text = mg_trace_otlp_json(&sp, 1, "svc", &len);
		assert_non_null(text);
		char want[128];
		snprintf(want, sizeof want,
		         "\"startTimeUnixNano\":\"%s\",\"endTimeUnixNano\":\"%s\"", cases[i].text,
		         cases[i].text);
		assert_non_null(strstr(text, want));
		free(text);
	}
}

static void test_otlp_json(void **state)
{
	(void)state;
	struct mg_span sp[2];
	memset(sp, 0, sizeof sp);
	memset(sp[0].trace_id, 0xab, 16);
	memset(sp[0].span_id, 0x01, 8);
	sp[0].kind = MG_SPAN_SERVER;
	snprintf(sp[0].name, sizeof sp[0].name, "tools/call echo");
	sp[0].start_ns = 1700000000123456789ULL;
	sp[0].end_ns = 1700000000223456789ULL;
	mg_span_attr_str(&sp[0], "mcp.method.name", "tools/call");
	mg_span_attr_int(&sp[0], "answer", -42);
	sp[0].error = true;
	snprintf(sp[0].status_msg, sizeof sp[0].status_msg, "-32602");
	sp[1] = sp[0];
	sp[1].kind = MG_SPAN_CLIENT;
	memcpy(sp[1].parent_id, sp[0].span_id, 8);
	sp[1].has_link = true;
	memset(sp[1].link.trace_id, 0xcd, 16);
	memset(sp[1].link.span_id, 0x02, 8);
	sp[1].error = false;
	size_t len;
	char *text = mg_trace_otlp_json(sp, 2, "svc", &len);
	assert_non_null(text);
	json_t *doc = json_loadb(text, len, 0, NULL);
	assert_non_null(doc);
	json_t *rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
	json_t *svc =
	    json_array_get(json_object_get(json_object_get(rs, "resource"), "attributes"), 0);
	assert_string_equal(json_string_value(json_object_get(svc, "key")), "service.name");
	json_t *spans =
	    json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0), "spans");
	json_t *s0 = json_array_get(spans, 0), *s1 = json_array_get(spans, 1);
	assert_string_equal(json_string_value(json_object_get(s0, "traceId")),
	                    "abababababababababababababababab");
	assert_string_equal(json_string_value(json_object_get(s0, "spanId")), "0101010101010101");
	assert_int_equal(json_integer_value(json_object_get(s0, "kind")), 2);
	assert_string_equal(json_string_value(json_object_get(s0, "startTimeUnixNano")),
	                    "1700000000123456789");
	assert_string_equal(json_string_value(json_object_get(s0, "endTimeUnixNano")),
	                    "1700000000223456789");
	assert_null(json_object_get(s0, "parentSpanId"));
	json_t *st = json_object_get(s0, "status");
	assert_int_equal(json_integer_value(json_object_get(st, "code")), 2);
	json_t *a1 = json_array_get(json_object_get(s0, "attributes"), 1);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(a1, "value"), "intValue")), "-42");
	assert_string_equal(json_string_value(json_object_get(s1, "parentSpanId")),
	                    "0101010101010101");
	assert_int_equal(json_integer_value(json_object_get(s1, "kind")), 3);
	json_t *l = json_array_get(json_object_get(s1, "links"), 0);
	assert_string_equal(json_string_value(json_object_get(l, "spanId")), "0202020202020202");
	json_decref(doc);
	free(text);
	/* Escaping: quotes, backslashes, control characters; UTF-8 kept, invalid
	 * UTF-8 replaced: the document always parses. */
	snprintf(sp[0].name, sizeof sp[0].name, "a\"b\\c\x01\xc3\xa9");
	sp[0].n_attrs = 0;
	mg_span_attr_str(&sp[0], "bad", "x\xff\xfey");
	text = mg_trace_otlp_json(sp, 1, "s\"vc", &len);
	doc = json_loadb(text, len, 0, NULL);
	assert_non_null(doc);
	json_t *s2 = json_array_get(
	    json_object_get(
	        json_array_get(
	            json_object_get(json_array_get(json_object_get(doc, "resourceSpans"), 0),
	                            "scopeSpans"),
	            0),
	        "spans"),
	    0);
	assert_string_equal(json_string_value(json_object_get(s2, "name")), "a\"b\\c\x01\xc3\xa9");
	json_t *bad = json_array_get(json_object_get(s2, "attributes"), 0);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(bad, "value"), "stringValue")),
	    "x??y");
	json_decref(doc);
	free(text);
	/* Attributes beyond the bound are ignored, long values truncated. */
	struct mg_span big;
	memset(&big, 0, sizeof big);
	char longv[400];
	memset(longv, 'x', sizeof longv - 1);
	longv[sizeof longv - 1] = '\0';
	for (int i = 0; i < MG_SPAN_MAX_ATTRS + 5; i++)
		mg_span_attr_str(&big, "k", longv);
	assert_int_equal(big.n_attrs, MG_SPAN_MAX_ATTRS);
	assert_int_equal(strlen(big.attrs[0].s), sizeof big.attrs[0].s - 1);
	/* ... at a character boundary. */
	char utf[300];
	for (int i = 0; i < 100; i++)
		memcpy(utf + 2 * i, "\xc3\xa9", 2);
	utf[200] = '\0';
	memset(&big, 0, sizeof big);
	mg_span_attr_str(&big, "k", utf);
	assert_int_equal(strlen(big.attrs[0].s), 126);
}

/* Three spans with every slot full: ids, a parent, a link, names of
 * `name_byte`, status messages of `msg_byte`, both times `t`, and
 * MG_SPAN_MAX_ATTRS attributes: every fourth INT64_MIN, the others `value`. */
static void worst_spans(struct mg_span sp[3], char name_byte, char msg_byte, uint64_t t,
                        const char *value)
{
	memset(sp, 0, 3 * sizeof *sp);
	for (int k = 0; k < 3; k++) {
		memset(sp[k].trace_id, 0xff, 16);
		memset(sp[k].span_id, 0xee, 8);
		memset(sp[k].parent_id, 0xdd, 8);
		sp[k].has_link = true;
		sp[k].kind = MG_SPAN_CLIENT;
		memset(sp[k].name, name_byte, sizeof sp[k].name - 1);
		sp[k].error = true;
		memset(sp[k].status_msg, msg_byte, sizeof sp[k].status_msg - 1);
		sp[k].start_ns = t;
		sp[k].end_ns = t;
		for (int i = 0; i < MG_SPAN_MAX_ATTRS; i++) {
			if (i % 4 == 3)
				mg_span_attr_int(&sp[k], "int.key", INT64_MIN);
			else
				mg_span_attr_str(&sp[k], "mcp.method.name", value);
		}
	}
}

/* The encoder writes into room it reserves from a bound (span_bound): a span
 * with every slot full of the worst bytes (each escaped to \u00XX) must fit,
 * parse, and give the values back. */
static void test_otlp_worst_case(void **state)
{
	(void)state;
	struct mg_span sp[3];
	char ctl[200];
	memset(ctl, 0x01, sizeof ctl - 1);
	ctl[sizeof ctl - 1] = '\0';
	worst_spans(sp, '"', 0x1f, UINT64_MAX / 2, ctl);
	size_t len;
	char *text = mg_trace_otlp_json(sp, 3, ctl, &len);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	json_t *doc = json_loadb(text, len, 0, NULL);
	assert_non_null(doc);
	json_t *spans = json_object_get(
	    json_array_get(json_object_get(json_array_get(json_object_get(doc, "resourceSpans"), 0),
	                                   "scopeSpans"),
	                   0),
	    "spans");
	assert_int_equal(json_array_size(spans), 3);
	json_t *s2 = json_array_get(spans, 2);
	assert_int_equal(strlen(json_string_value(json_object_get(s2, "name"))),
	                 sizeof sp[2].name - 1);
	json_t *a0 = json_array_get(json_object_get(s2, "attributes"), 0);
	assert_int_equal(
	    strlen(json_string_value(json_object_get(json_object_get(a0, "value"), "stringValue"))),
	    sizeof sp[2].attrs[0].s - 1);
	json_t *a3 = json_array_get(json_object_get(s2, "attributes"), 3);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(a3, "value"), "intValue")),
	    "-9223372036854775808");
	json_decref(doc);
	free(text);
}

/* The protobuf encoder against protobufjs: these bytes are what protobufjs
 * 8.8.1 encodes for the same ExportTraceServiceRequest (built there from a
 * plain object, not from our output), every kind of field once. */
static void test_otlp_proto_golden(void **state)
{
	(void)state;
	static const char want[] =
	    "\x0a\xa7\x01\x0a\x15\x0a\x13\x0a\x0c\x73\x65\x72\x76\x69\x63\x65"
	    "\x2e\x6e\x61\x6d\x65\x12\x03\x0a\x01\x73\x12\x8d\x01\x0a\x0b\x0a"
	    "\x09\x6d\x63\x70\x2d\x67\x75\x61\x72\x64\x12\x7e\x0a\x10\xab\xab"
	    "\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\x12\x08"
	    "\x01\x01\x01\x01\x01\x01\x01\x01\x22\x08\x02\x02\x02\x02\x02\x02"
	    "\x02\x02\x2a\x01\x6e\x30\x03\x39\x01\x00\x00\x00\x00\x00\x00\x00"
	    "\x41\x02\x00\x00\x00\x00\x00\x00\x00\x4a\x08\x0a\x01\x6b\x12\x03"
	    "\x0a\x01\x76\x4a\x10\x0a\x01\x69\x12\x0b\x18\xff\xff\xff\xff\xff"
	    "\xff\xff\xff\xff\x01\x6a\x1c\x0a\x10\xcd\xcd\xcd\xcd\xcd\xcd\xcd"
	    "\xcd\xcd\xcd\xcd\xcd\xcd\xcd\xcd\xcd\x12\x08\x03\x03\x03\x03\x03"
	    "\x03\x03\x03\x7a\x05\x12\x01\x6d\x18\x02";
	struct mg_span sp;
	memset(&sp, 0, sizeof sp);
	memset(sp.trace_id, 0xab, 16);
	memset(sp.span_id, 0x01, 8);
	memset(sp.parent_id, 0x02, 8);
	sp.kind = MG_SPAN_CLIENT;
	snprintf(sp.name, sizeof sp.name, "n");
	sp.start_ns = 1;
	sp.end_ns = 2;
	mg_span_attr_str(&sp, "k", "v");
	mg_span_attr_int(&sp, "i", -1);
	sp.has_link = true;
	memset(sp.link.trace_id, 0xcd, 16);
	memset(sp.link.span_id, 0x03, 8);
	sp.error = true;
	snprintf(sp.status_msg, sizeof sp.status_msg, "m");
	size_t len;
	char *b = mg_trace_otlp_proto(&sp, 1, "s", &len);
	assert_non_null(b);
	assert_int_equal(len, sizeof want - 1);
	assert_memory_equal(b, want, len);
	free(b);
	/* No status when it is unset, no kind when unspecified: proto3 defaults. */
	sp.error = false;
	sp.kind = 0;
	b = mg_trace_otlp_proto(&sp, 1, "s", &len);
	assert_non_null(b);
	assert_int_equal(len, sizeof want - 1 - 7 - 2);
	free(b);
}

/* A protobuf message whose every field is well formed and which ends
 * exactly where its length says; the fields `sub` lists are messages too,
 * checked with `subs` (the same index). Returns how many fields it holds. */
struct pb_shape {
	unsigned sub[4];
	const struct pb_shape *subs[4];
};

static size_t pb_check(const uint8_t *p, size_t n, const struct pb_shape *shape)
{
	const uint8_t *end = p + n;
	size_t fields = 0;
	while (p < end) {
		uint64_t tag = 0, v = 0;
		int shift = 0;
		do {
			assert_true(p < end && shift < 70);
			tag |= (uint64_t)(*p & 0x7f) << shift;
			shift += 7;
		} while (*p++ & 0x80);
		fields++;
		switch (tag & 7) {
		case 0:
			do
				assert_true(p < end);
			while (*p++ & 0x80);
			break;
		case 1:
			assert_true(end - p >= 8);
			p += 8;
			break;
		case 2:
			shift = 0;
			do {
				assert_true(p < end && shift < 70);
				v |= (uint64_t)(*p & 0x7f) << shift;
				shift += 7;
			} while (*p++ & 0x80);
			assert_true(v <= (uint64_t)(end - p));
			for (int i = 0; shape && i < 4; i++) {
				if (shape->sub[i] == tag >> 3 && shape->subs[i])
					pb_check(p, (size_t)v, shape->subs[i]);
			}
			p += v;
			break;
		case 5:
			assert_true(end - p >= 4);
			p += 4;
			break;
		default:
			fail_msg("wire type %u", (unsigned)(tag & 7));
		}
	}
	assert_true(p == end);
	return fields;
}

/* The worst spans test_otlp_worst_case writes as JSON, as protobuf: the
 * lengths computed before writing must agree with what was written at
 * every level, and invalid UTF-8 is replaced (proto3 strings are UTF-8). */
static void test_otlp_proto_worst_case(void **state)
{
	(void)state;
	struct mg_span sp[3];
	char bad[200];
	memset(bad, 0xff, sizeof bad - 1);
	bad[sizeof bad - 1] = '\0';
	worst_spans(sp, (char)0xc3, (char)0x80, UINT64_MAX, bad);
	static const struct pb_shape any = { { 0 }, { NULL } };
	static const struct pb_shape kv = { { 2 }, { &any } };
	static const struct pb_shape status = { { 0 }, { NULL } };
	static const struct pb_shape span = { { 9, 13, 15 }, { &kv, &status, &status } };
	static const struct pb_shape scope_spans = { { 1, 2 }, { &status, &span } };
	static const struct pb_shape resource = { { 1 }, { &kv } };
	static const struct pb_shape rs = { { 1, 2 }, { &resource, &scope_spans } };
	static const struct pb_shape req = { { 1 }, { &rs } };
	size_t len;
	char *b = mg_trace_otlp_proto(sp, 3, bad, &len);
	assert_non_null(b);
	assert_int_equal(pb_check((const uint8_t *)b, len, &req), 1);
	/* every byte of the invalid strings became '?': none above 0x7f is
	 * left but in ids, times, lengths and the int values */
	size_t q = 0;
	for (size_t i = 0; i < len; i++)
		q += b[i] == '?';
	assert_int_equal(q, (sizeof bad - 1) +
	                        3 * ((sizeof sp[0].name - 1) + (sizeof sp[0].status_msg - 1) +
	                             12 * (sizeof sp[0].attrs[0].s - 1)));
	free(b);
}

/* A collector's ExportTraceServiceResponse, and garbage in its place. */
static void test_otlp_partial_success(void **state)
{
	(void)state;
	int64_t rej;
	const char *msg;
	size_t ml;
	/* protobufjs: { partialSuccess: { rejectedSpans: 3, errorMessage: "bad span" } } */
	static const char ps[] = "\x0a\x0c\x08\x03\x12\x08\x62\x61\x64\x20\x73\x70\x61\x6e";
	assert_int_equal(mg_otlp_partial_success(ps, sizeof ps - 1, &rej, &msg, &ml), 0);
	assert_int_equal(rej, 3);
	assert_int_equal(ml, 8);
	assert_memory_equal(msg, "bad span", 8);
	/* empty (full success), and unknown fields around it, skipped */
	assert_int_equal(mg_otlp_partial_success("", 0, &rej, &msg, &ml), 0);
	assert_int_equal(rej, 0);
	assert_null(msg);
	static const char unknown[] = "\x10\x05\x19\x01\x02\x03\x04\x05\x06\x07\x08\x25\x01\x02\x03"
	                              "\x04\x0a\x02\x08\x07\x7a\x01\x00";
	assert_int_equal(mg_otlp_partial_success(unknown, sizeof unknown - 1, &rej, &msg, &ml), 0);
	assert_int_equal(rej, 7);
	/* truncated, over-long, group wire types, field 0, JSON */
	static const char *const bad[] = {
		"\x0a\x0c\x08\x03",                             /* length past the end */
		"\x0a",                                         /* no length */
		"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", /* varint of 11 bytes */
		"\x0b\x0c",                                     /* start group */
		"\x00\x01",                                     /* field 0 */
		"\x0a\x02\x08",                                 /* inner truncated */
		"{}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(
		    mg_otlp_partial_success(bad[i], strlen(bad[i]) + (i == 4), &rej, &msg, &ml),
		    -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_traceparent),
		cmocka_unit_test(test_tracestate),
		cmocka_unit_test(test_ids_and_sampling),
		cmocka_unit_test(test_otlp_json),
		cmocka_unit_test(test_otlp_times),
		cmocka_unit_test(test_otlp_worst_case),
		cmocka_unit_test(test_otlp_proto_golden),
		cmocka_unit_test(test_otlp_proto_worst_case),
		cmocka_unit_test(test_otlp_partial_success),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
