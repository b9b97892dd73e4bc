/*
 * test_mcp.c - JSON-RPC framing, SSE encoding/decoding and the modern-era
 * header rules.
 */
#include "support.h"

#include <stdlib.h>
#include <string.h>

#include "mcp/jsonrpc.h"
#include "mcp/protocol.h"
#include "mcp/sse.h"

static int parse(const char *text, struct mg_rpc_msg *m, struct mg_rpc_fail *f)
{
	return mg_rpc_parse(text, strlen(text), 64, false, m, f);
}

static void test_classify(void **state)
{
	(void)state;
	struct mg_rpc_msg m;
	struct mg_rpc_fail f;
	assert_int_equal(
	    parse("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"x\",\"params\":{}}", &m, &f), 0);
	assert_int_equal(m.kind, MG_RPC_REQUEST);
	assert_string_equal(json_string_value(m.id), "a");
	mg_rpc_msg_free(&m);
	assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"method\":\"n\"}", &m, &f), 0);
	assert_int_equal(m.kind, MG_RPC_NOTIFICATION);
	mg_rpc_msg_free(&m);
	assert_int_equal(
	    parse("{\"jsonrpc\":\"2.0\",\"id\":9007199254740993,\"result\":{}}", &m, &f), 0);
	assert_int_equal(m.kind, MG_RPC_RESPONSE);
	/* 64-bit ids survive exactly (no double rounding). */
	assert_true(json_integer_value(m.id) == 9007199254740993LL);
	mg_rpc_msg_free(&m);
	assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-1,"
	                       "\"message\":\"m\"}}",
	                       &m, &f),
	                 0);
	assert_int_equal(m.kind, MG_RPC_ERROR);
	mg_rpc_msg_free(&m);
}

static void test_rejections(void **state)
{
	(void)state;
	struct {
		const char *text;
		int code;
		bool has_id;
	} cases[] = {
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"x\"}", MG_RPC_PARSE_ERROR,
		  false },
		{ "{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":{\"name\":\"a\",\"name\":\"b\"}"
		  "}",
		  MG_RPC_PARSE_ERROR, false },
		{ "[1", MG_RPC_PARSE_ERROR, false },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1}", MG_RPC_INVALID_REQUEST, true },
		{ "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"x\"}", MG_RPC_INVALID_REQUEST, true },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"x\"}", MG_RPC_INVALID_REQUEST,
		  false },
		{ "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"x\"}", MG_RPC_INVALID_REQUEST,
		  false },
		{ "{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"method\":\"x\",\"params\":[1]}",
		  MG_RPC_INVALID_REQUEST, true },
		{ "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"\"}", MG_RPC_INVALID_REQUEST, true },
		{ "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"a\\u0000b\"}", MG_RPC_INVALID_REQUEST,
		  true },
		{ "[{\"jsonrpc\":\"2.0\",\"method\":\"x\"}]", MG_RPC_INVALID_REQUEST, false },
		{ "\"just a string\"", MG_RPC_INVALID_REQUEST, false },
		{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"} {}", MG_RPC_PARSE_ERROR, false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct mg_rpc_msg m;
		struct mg_rpc_fail f;
		if (parse(cases[i].text, &m, &f) == 0)
			fail_msg("accepted: %s", cases[i].text);
		if (f.code != cases[i].code)
			fail_msg("%s: code %d, expected %d", cases[i].text, f.code, cases[i].code);
		assert_int_equal(f.id != NULL, cases[i].has_id);
		json_decref(f.id);
	}
}

static void test_depth(void **state)
{
	(void)state;
	char deep[300];
	size_t n = 0;
	for (int i = 0; i < 100; i++)
		deep[n++] = '[';
	for (int i = 0; i < 100; i++)
		deep[n++] = ']';
	deep[n] = '\0';
	assert_int_equal(mg_json_depth(deep, n, 64), 65);
	assert_int_equal(mg_json_depth("{\"a\":\"[[[[[[\"}", 13, 64), 1);
	assert_int_equal(mg_json_depth("{\"a\\\"[[\":[]}", 12, 64), 2);
	struct mg_rpc_msg m;
	struct mg_rpc_fail f;
	assert_int_equal(mg_rpc_parse(deep, n, 64, true, &m, &f), -1);
	assert_int_equal(f.code, MG_RPC_PARSE_ERROR);
	assert_non_null(strstr(f.message, "deeper than 64"));
}

static void test_error_object(void **state)
{
	(void)state;
	json_t *id = json_string("x");
	json_t *e = mg_rpc_error_new(id, -32600, "bad", json_pack("{s:i}", "k", 1));
	size_t len;
	char *s = mg_json_dump(e, &len);
	assert_string_equal(s, "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{\"code\":-32600,"
	                       "\"message\":\"bad\",\"data\":{\"k\":1}}}");
	free(s);
	json_decref(e);
	json_decref(id);
	json_t *one = json_integer(1), *sone = json_string("1");
	assert_false(mg_rpc_id_equal(one, sone));
	assert_true(mg_rpc_id_equal(one, one));
	json_decref(one);
	json_decref(sone);
}

struct collected {
	char data[8][256];
	char id[8][64];
	char event[8][32];
	int n;
};

static int collect(const struct mg_sse_event *ev, void *arg)
{
	struct collected *c = arg;
	if (c->n < 8) {
		snprintf(c->data[c->n], sizeof c->data[0], "%.*s", (int)ev->data_len, ev->data);
		snprintf(c->id[c->n], sizeof c->id[0], "%s", ev->id);
		snprintf(c->event[c->n], sizeof c->event[0], "%s", ev->event);
	}
	c->n++;
	return 0;
}

static void test_sse_roundtrip(void **state)
{
	(void)state;
	struct mg_buf b;
	mg_buf_init(&b, 0);
	assert_int_equal(mg_sse_encode(&b, "1_1", NULL, "{\"a\":1}", 7), 0);
	assert_int_equal(mg_sse_encode(&b, NULL, "message", "two\nlines\r\nand\rmore\n", 20), 0);
	assert_int_equal(mg_sse_comment(&b, "keep-alive"), 0);
	assert_string_equal(b.data,
	                    "id: 1_1\ndata: {\"a\":1}\n\n"
	                    "event: message\ndata: two\ndata: lines\ndata: and\ndata: more\n"
	                    "data: \n\n"
	                    ": keep-alive\n\n");
	/* Decode it back, fed one byte at a time. */
	struct mg_sse_decoder d;
	struct collected c = { 0 };
	mg_sse_decoder_init(&d, 1024, collect, &c);
	for (size_t i = 0; i < b.len; i++)
		assert_int_equal(mg_sse_feed(&d, b.data + i, 1), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.data[0], "{\"a\":1}");
	assert_string_equal(c.id[0], "1_1");
	assert_string_equal(c.data[1], "two\nlines\nand\nmore\n");
	assert_string_equal(c.id[1], "1_1"); /* the last id persists */
	mg_sse_decoder_free(&d);
	mg_buf_free(&b);
}

static void test_sse_decoder_rules(void **state)
{
	(void)state;
	struct mg_sse_decoder d;
	struct collected c = { 0 };
	mg_sse_decoder_init(&d, 64, collect, &c);
	const char *s = "\xEF\xBB\xBF"
	                "data:no-space\r\n\r\n"
	                ": comment\n"
	                "event: custom\nid: 7\nretry: 100\ndata\n\n"
	                "id: x\n\n"   /* no data: nothing dispatched */
	                "data: tail"; /* incomplete: not dispatched */
	assert_int_equal(mg_sse_feed(&d, s, strlen(s)), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.data[0], "no-space");
	assert_string_equal(c.event[0], "message");
	assert_string_equal(c.event[1], "custom");
	assert_string_equal(c.data[1], "");
	assert_string_equal(c.id[1], "7");
	/* An event larger than the limit fails the stream. */
	char big[200];
	memset(big, 'x', sizeof big);
	assert_int_equal(mg_sse_feed(&d, "\n\ndata: ", 8), 0);
	assert_int_equal(mg_sse_feed(&d, big, sizeof big), -1);
	mg_sse_decoder_free(&d);
}

static json_t *modern_msg(const char *method, const char *name_key, const char *name,
                          struct mg_rpc_msg *m)
{
	json_t *root =
	    json_pack("{s:s,s:i,s:s,s:{s:{s:s,s:{}}}}", "jsonrpc", "2.0", "id", 1, "method", method,
	              "params", "_meta", MG_MCP_META_VERSION, "2026-07-28", MG_MCP_META_CLIENTCAPS);
	if (name_key)
		json_object_set_new(json_object_get(root, "params"), name_key, json_string(name));
	struct mg_rpc_fail f;
	assert_int_equal(mg_rpc_classify(root, m, &f), 0);
	return root;
}

static void test_modern_checks(void **state)
{
	(void)state;
	struct mg_rpc_msg m;
	struct mg_mcp_reject r;
	json_t *root = modern_msg("tools/call", "name", "get_weather", &m);
	assert_int_equal(mg_mcp_era(&m, NULL), MG_ERA_MODERN);
	struct mg_mcp_headers h = { .protocol_version = "2026-07-28",
		                    .method = "tools/call",
		                    .name = "get_weather" };
	assert_int_equal(mg_mcp_check_modern(&m, &h, &r), 0);
	h.name = "=?base64?Z2V0X3dlYXRoZXI=?=";
	assert_int_equal(mg_mcp_check_modern(&m, &h, &r), 0);
	h.name = "other";
	assert_int_equal(mg_mcp_check_modern(&m, &h, &r), -1);
	assert_int_equal(r.http_status, 400);
	assert_int_equal(r.code, MG_RPC_HEADER_MISMATCH);
	h.name = NULL;
	assert_int_equal(mg_mcp_check_modern(&m, &h, &r), -1);
	assert_int_equal(r.code, MG_RPC_HEADER_MISMATCH);
	h.name = "get_weather";
	h.method = "tools/list";
	assert_int_equal(mg_mcp_check_modern(&m, &h, &r), -1);
	assert_int_equal(r.code, MG_RPC_HEADER_MISMATCH);
	h.method = "tools/call";
	h.protocol_version = "2025-11-25";
	assert_int_equal(mg_mcp_check_modern(&m, &h, &r), -1);
	assert_int_equal(r.code, MG_RPC_HEADER_MISMATCH);
	h.protocol_version = "2026-07-28";
	h.session_id = true;
	assert_int_equal(mg_mcp_check_modern(&m, &h, &r), -1);
	assert_int_equal(r.http_status, 400);
	json_decref(root);

	/* Unsupported version, with the supported list. */
	root = json_pack("{s:s,s:i,s:s,s:{s:{s:s}}}", "jsonrpc", "2.0", "id", 2, "method",
	                 "tools/list", "params", "_meta", MG_MCP_META_VERSION, "1900-01-01");
	struct mg_rpc_fail f;
	mg_rpc_classify(root, &m, &f);
	struct mg_mcp_headers h2 = { .protocol_version = "1900-01-01", .method = "tools/list" };
	assert_int_equal(mg_mcp_check_modern(&m, &h2, &r), -1);
	assert_int_equal(r.code, MG_RPC_UNSUPPORTED_VERSION);
	assert_string_equal(json_string_value(json_object_get(r.data, "requested")), "1900-01-01");
	assert_true(json_array_size(json_object_get(r.data, "supported")) >= 4);
	json_decref(r.data);
	json_decref(root);

	/* Removed methods. */
	root = modern_msg("ping", NULL, NULL, &m);
	struct mg_mcp_headers h3 = { .protocol_version = "2026-07-28", .method = "ping" };
	assert_int_equal(mg_mcp_check_modern(&m, &h3, &r), -1);
	assert_int_equal(r.http_status, 404);
	assert_int_equal(r.code, MG_RPC_METHOD_NOT_FOUND);
	json_decref(root);

	/* A 2026 header without _meta is modern, and missing _meta is -32602. */
	root = json_pack("{s:s,s:i,s:s}", "jsonrpc", "2.0", "id", 3, "method", "tools/list");
	mg_rpc_classify(root, &m, &f);
	assert_int_equal(mg_mcp_era(&m, "2026-07-28"), MG_ERA_MODERN);
	assert_int_equal(mg_mcp_era(&m, "2025-06-18"), MG_ERA_LEGACY);
	assert_int_equal(mg_mcp_era(&m, NULL), MG_ERA_LEGACY);
	struct mg_mcp_headers h4 = { .protocol_version = "2026-07-28", .method = "tools/list" };
	assert_int_equal(mg_mcp_check_modern(&m, &h4, &r), -1);
	assert_int_equal(r.code, MG_RPC_INVALID_PARAMS);
	json_decref(root);
}

static void test_header_decode(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(mg_mcp_header_decode("plain", out, sizeof out), 5);
	assert_int_equal(mg_mcp_header_decode("=?base64?SGVsbG8sIOS4lueVjA==?=", out, sizeof out),
	                 13);
	assert_string_equal(out, "Hello, 世界");
	assert_int_equal(mg_mcp_header_decode("=?base64?!!?=", out, sizeof out), -1);
	assert_int_equal(mg_mcp_header_decode("bad\x01", out, sizeof out), -1);
}

#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY)

/* The fast loader's answer for `t`: NULL, or exactly jansson's tree. */
static json_t *fast_checked(const char *t, size_t n)
{
	json_t *fast = mg_json_load_fast(t, n, 64);
	if (fast) {
		json_t *slow = json_loadb(t, n, LOAD_FLAGS, NULL);
		if (!slow || !json_equal(fast, slow))
			fail_msg("fast loader differs from jansson on: %.*s", (int)n, t);
		json_decref(slow);
	}
	return fast;
}

static void test_fast_loader(void **state)
{
	(void)state;
	/* Taken: the common shapes (a request as mcpload and SDKs send it). */
	static const char *const yes[] = {
		"{\"jsonrpc\":\"2.0\",\"id\":12,\"method\":\"tools/call\",\"params\":{\"name\":"
		"\"echo\",\"arguments\":{\"message\":\"hi there\"}}}",
		" { \"a\" : [ 1 , -2 , 0 , true , false , null , [ ] , { } ] , \"b\" : \"\" }\r\n",
		"[]",
		"{}",
		"0",
		"-0",
		"\"x\"",
		"true",
		"null",
		"999999999999999999",
		"-999999999999999999",
		"{\"id\":9007199254740993}",
		"[[[[1]]]]",
		"\"~\x7f\"",
	};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		json_t *v = fast_checked(yes[i], strlen(yes[i]));
		if (!v)
			fail_msg("fast loader declined: %s", yes[i]);
		json_decref(v);
	}
	/* Left to jansson: escapes, non-ASCII, fractions, exponents, long
	 * integers, duplicates, bad syntax, trailing bytes, too deep. */
	static const char *const no[] = {
		"\"a\\nb\"",
		"\"\\u0000\"",
		"\"caf\xc3\xa9\"",
		"1.5",
		"1e3",
		"-1E3",
		"1234567890123456789",
		"01",
		"-01",
		"-",
		"{\"a\":1,\"a\":2}",
		"{\"a\" 1}",
		"{\"a\":1,}",
		"[1,]",
		"[1 2]",
		"{a:1}",
		"tru",
		"truex",
		"nul",
		"[1]x",
		"",
		"   ",
		"\xef\xbb\xbf{}",
		"\"tab\there\"",
		"{\"a\":1",
		"[",
		"\"open",
	};
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		json_t *v = mg_json_load_fast(no[i], strlen(no[i]), 64);
		if (v)
			fail_msg("fast loader took: %s", no[i]);
	}
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	assert_null(mg_json_load_fast(deep, 200, 64));
	json_t *d = mg_json_load_fast(deep, 200, 100);
	assert_non_null(d);
	json_decref(d);
	/* A NUL byte inside the length is not JSON. */
	assert_null(mg_json_load_fast("[1,\0]", 5, 64));
	/* Differential: random edits of valid messages are either declined or
	 * loaded exactly as jansson loads them. */
	static const char *const seeds[] = {
		"{\"jsonrpc\":\"2.0\",\"id\":\"r-1\",\"method\":\"tools/"
		"list\",\"params\":{\"cursor\":"
		"\"c2\"}}",
		"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\","
		"\"text\":"
		"\"ok\"}],\"isError\":false}}",
		"[{\"a\":[1,2,{\"b\":null}]},-3,\"s\",true]",
	};
	static const char alphabet[] = "{}[]\",:0123456789-+.eEtrufalsn \t\r\n\\/xu\x7f\x80";
	unsigned long long rnd = 0x9E3779B97F4A7C15ULL;
	char buf[256];
	for (int iter = 0; iter < 30000; iter++) {
		const char *seed = seeds[iter % 3];
		size_t n = strlen(seed);
		memcpy(buf, seed, n);
		int edits = 1 + iter % 3;
		for (int e = 0; e < edits && n > 1 && n < sizeof buf - 1; e++) {
			rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
			size_t at = (size_t)(rnd >> 33) % n;
			char c = alphabet[(rnd >> 17) % (sizeof alphabet - 1)];
			switch ((rnd >> 8) % 3) {
			case 0:
				buf[at] = c;
				break;
			case 1:
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
				break;
			default:
				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = c;
				n++;
				break;
			}
		}
		json_decref(fast_checked(buf, n));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),      cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_depth),         cmocka_unit_test(test_error_object),
		cmocka_unit_test(test_sse_roundtrip), cmocka_unit_test(test_sse_decoder_rules),
		cmocka_unit_test(test_modern_checks), cmocka_unit_test(test_header_decode),
		cmocka_unit_test(test_fast_loader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
