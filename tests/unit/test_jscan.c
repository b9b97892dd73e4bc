/*
 * test_jscan.c - the tree-less JSON scan: what it accepts, where it puts the
 * spans, and that everything it accepts jansson's path accepts too.
 */
#include "support.h"

#include <string.h>

#include "mcp/jscan.h"
#include "mcp/jtext.h"
#include "mcp/jsonrpc.h"

static enum mg_jscan_status scan(const char *t, struct mg_jscan *js)
{
	return mg_jscan(t, strlen(t), 64, js);
}

static void expect_span(const char *text, struct mg_jspan sp, const char *want)
{
	assert_int_equal(sp.end - sp.start, strlen(want));
	assert_memory_equal(text + sp.start, want, strlen(want));
}

/* The subset property on one input: OK implies mg_rpc_parse agrees. */
static void agrees(const char *t)
{
	struct mg_jscan js;
	if (scan(t, &js) != MG_JSCAN_OK)
		return;
	struct mg_rpc_msg m;
	struct mg_rpc_fail f;
	assert_int_equal(mg_rpc_parse(t, strlen(t), 64, false, &m, &f), 0);
	switch (js.kind) {
	case MG_JSCAN_REQUEST:
		assert_int_equal(m.kind, MG_RPC_REQUEST);
		break;
	case MG_JSCAN_NOTIFICATION:
		assert_int_equal(m.kind, MG_RPC_NOTIFICATION);
		break;
	case MG_JSCAN_RESULT:
		assert_int_equal(m.kind, MG_RPC_RESPONSE);
		break;
	}
	if (js.id_is_int)
		assert_true(json_integer_value(m.id) == js.id_int);
	mg_rpc_msg_free(&m);
}

static void test_result(void **state)
{
	(void)state;
	const char *t =
	    "{\"jsonrpc\":\"2.0\",\"id\":42,\"result\":{\"content\":[{\"type\":\"text\","
	    "\"text\":\"Echo: h\\u00e9llo \xc3\xa9\"}],\"isError\":false}}";
	struct mg_jscan js;
	assert_int_equal(scan(t, &js), MG_JSCAN_OK);
	assert_int_equal(js.kind, MG_JSCAN_RESULT);
	assert_true(js.id_is_int);
	assert_true(js.id_int == 42);
	expect_span(t, js.id, "42");
	assert_int_equal(t[js.result.start], '{');
	assert_int_equal(t[js.result.end - 1], '}');
	assert_int_equal(js.result.end + 1, strlen(t));
	assert_false(js.has_cr_lf);
	agrees(t);

	/* Members in any order, whitespace anywhere, negative and string ids. */
	t = " {\r\n \"result\" : [1, 2.5e-3, -0, true, null] ,\t\"id\": -7, \"jsonrpc\":\"2.0\"}\n";
	assert_int_equal(scan(t, &js), MG_JSCAN_OK);
	assert_true(js.id_int == -7);
	assert_true(js.has_cr_lf);
	expect_span(t, js.result, "[1, 2.5e-3, -0, true, null]");
	agrees(t);
	t = "{\"jsonrpc\":\"2.0\",\"id\":\"a\\\"b\",\"result\":{}}";
	assert_int_equal(scan(t, &js), MG_JSCAN_OK);
	assert_false(js.id_is_int);
	expect_span(t, js.id, "\"a\\\"b\"");
	agrees(t);
}

static void test_request(void **state)
{
	(void)state;
	const char *t = "{\"jsonrpc\":\"2.0\",\"id\":\"x-1\",\"method\":\"tools/call\",\"params\":"
	                "{\"name\":\"echo\",\"arguments\":{\"message\":\"hi\"}}}";
	struct mg_jscan js;
	assert_int_equal(scan(t, &js), MG_JSCAN_OK);
	assert_int_equal(js.kind, MG_JSCAN_REQUEST);
	expect_span(t, js.method, "\"tools/call\"");
	expect_span(t, js.id, "\"x-1\"");
	assert_int_equal(t[js.params.start], '{');
	agrees(t);
	t = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
	assert_int_equal(scan(t, &js), MG_JSCAN_OK);
	assert_int_equal(js.kind, MG_JSCAN_NOTIFICATION);
	assert_int_equal(js.id.end, 0);
	agrees(t);
}

/* Everything here must go to the slow path: invalid, or outside the subset. */
static void test_slow(void **state)
{
	(void)state;
	static const char *const slow[] = {
		"",
		"   ",
		"[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}]", /* a batch */
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}} x",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":[1,]}",
		"{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":{}}",
		"{\"id\":1,\"result\":{}}",
		"{\"jsonrpc\":\"2\\u002e0\",\"id\":1,\"result\":{}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"result\":{}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"a\":1,\"a\":2}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"a\":1,\"\\u0061\":2}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"\\u0061\":1}}", /* escaped key */
		"{\"jsonrpc\":\"2.0\",\"id\":1.0,\"result\":{}}",
		"{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"m\"}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"result\":{}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\u0000b\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":[]}",
		"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"m\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1234567890123456789,\"result\":{}}", /* 19 digits */
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1e400}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1e100}", /* 3-digit exponent */
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":01}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1.}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":.5}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":+1}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":-}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":tru}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\\ud800\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\\udc00\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\\ud800\\u0041\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\\x\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\\u12G4\"}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"a\tb\"}",             /* raw control */
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\xc0\xaf\"}",         /* overlong */
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\xed\xa0\x80\"}",     /* surrogate */
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\xf4\x90\x80\x80\"}", /* > U+10FFFF */
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\xe2\x82\"}",         /* truncated */
		"\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}",       /* BOM */
	};
	struct mg_jscan js;
	for (size_t i = 0; i < sizeof slow / sizeof slow[0]; i++) {
		if (scan(slow[i], &js) != MG_JSCAN_SLOW)
			fail_msg("accepted: %s", slow[i]);
	}
	/* Embedded NUL outside a string. */
	static const char nul[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\0";
	assert_int_equal(mg_jscan(nul, sizeof nul - 1, 64, &js), MG_JSCAN_SLOW);
}

static void test_limits(void **state)
{
	(void)state;
	char buf[4096];
	struct mg_jscan js;
	/* Depth: 3 levels pass a limit of 3, 4 do not. */
	const char *d3 = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"a\":[1]}}";
	assert_int_equal(mg_jscan(d3, strlen(d3), 3, &js), MG_JSCAN_OK);
	assert_int_equal(mg_jscan(d3, strlen(d3), 2, &js), MG_JSCAN_SLOW);
	/* More than MG_JSCAN_MAX_KEYS members: slow path, not an error. */
	for (int n = MG_JSCAN_MAX_KEYS; n <= MG_JSCAN_MAX_KEYS + 1; n++) {
		size_t o =
		    (size_t)snprintf(buf, sizeof buf, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{");
		for (int i = 0; i < n; i++)
			o += (size_t)snprintf(buf + o, sizeof buf - o, "%s\"k%d\":%d", i ? "," : "",
			                      i, i);
		snprintf(buf + o, sizeof buf - o, "}}");
		assert_int_equal(scan(buf, &js),
		                 n <= MG_JSCAN_MAX_KEYS ? MG_JSCAN_OK : MG_JSCAN_SLOW);
		agrees(buf);
	}
	/* Numbers at the edge of what jansson holds. */
	agrees("{\"jsonrpc\":\"2.0\",\"id\":999999999999999999,\"result\":-999999999999999999}");
	agrees("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":[1e99,-1.5E+99,1e-99,0.0]}");
	agrees("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\\ud83d\\ude00 \xf0\x9f\x98\x80 "
	       "\\u0000\"}");
	assert_int_equal(scan("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\\ud83d\\ude00\"}", &js),
	                 MG_JSCAN_OK);
}

/* The walk over accepted text agrees with jansson: every item of a list
 * result, and one member of each. */
static void walk_agrees(const char *t, const char *items, const char *key)
{
	struct mg_jscan js;
	assert_int_equal(scan(t, &js), MG_JSCAN_OK);
	json_t *root = json_loads(t, 0, NULL);
	json_t *arr = json_object_get(json_object_get(root, "result"), items);
	struct mg_jspan a;
	assert_true(mg_jtext_member(t, js.result, items, &a));
	struct mg_jiter it;
	struct mg_jspan e;
	size_t n = 0;
	int r;
	mg_jtext_items(&it, t, a);
	while ((r = mg_jtext_next(&it, &e)) > 0) {
		json_t *want = json_array_get(arr, n++);
		json_t *got = json_loadb(t + e.start, e.end - e.start, JSON_DECODE_ANY, NULL);
		assert_true(json_equal(want, got));
		json_decref(got);
		struct mg_jspan v;
		json_t *wv = json_object_get(want, key);
		assert_int_equal(mg_jtext_member(t, e, key, &v), wv != NULL);
		if (wv) {
			got = json_loadb(t + v.start, v.end - v.start, JSON_DECODE_ANY, NULL);
			assert_true(json_equal(wv, got));
			json_decref(got);
		}
	}
	assert_int_equal(r, 0);
	assert_int_equal(n, json_array_size(arr));
	json_decref(root);
}

/* isError: the search's shortcut never answers otherwise than the walk. */
static void test_member_true(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		bool yes;
	} cases[] = {
		{ "{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}", false },
		{ "{\"content\":[],\"isError\":true}", true },
		{ "{\"isError\" : false}", false },
		{ "{\"isError\":\"true\"}", false },
		{ "{\"content\":[{\"text\":\"isError\"}]}", false },
		{ "{\"content\":[{\"isError\":true}]}", false }, /* not a member of the result */
		{ "{\"content\":[{\"text\":\"\\u00e9\"}]}", false },
		{ "{\"content\":[{\"text\":\"\\u00e9\"}],\"isError\":true}", true },
		{ "[true]", false },
		{ "", false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *t = cases[i].text;
		bool got = mg_jtext_member_true(t, (struct mg_jspan){ 0, strlen(t) }, "isError");
		if (got != cases[i].yes)
			fail_msg("case %zu (%s): %d", i, t, got);
	}
	/* a span inside a larger text */
	const char *msg = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"isError\":true}}";
	const char *r = strstr(msg, "{\"isError");
	size_t start = (size_t)(r - msg);
	assert_true(
	    mg_jtext_member_true(msg, (struct mg_jspan){ start, strlen(msg) - 1 }, "isError"));
	assert_false(mg_jtext_member_true(msg, (struct mg_jspan){ 0, start }, "isError"));
}

static void test_jtext(void **state)
{
	(void)state;
	walk_agrees("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[]}}", "tools", "name");
	walk_agrees("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"nextCursor\":\"x\", \"tools\" : "
	            "[ {\"description\":\"a \\\"name\\\": } ] {\",\"name\":\"n1\"} ,\n"
	            "{\"inputSchema\":{\"name\":{\"type\":[\"string\",\"null\"]}},"
	            "\"name\":\"n\\u00e92\"}, {\"x\":[[],{}]}, 5, \"s\", null ] }}",
	            "tools", "name");
	walk_agrees("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"d\":\"tail\\\\\\\\\","
	            "\"e\":\"\\\\\\\"q\\\\\",\"name\":\"x\"},{\"name\":\"\\\\\"}]}}",
	            "tools", "name");
	walk_agrees("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"resources\":[{\"uri\":"
	            "\"file:///a\",\"size\":-1.5e3,\"ok\":true}]}}",
	            "resources", "uri");
	/* Members and literals. */
	const char *t = "{\"isError\" :\ttrue,\"a\":false}";
	struct mg_jspan obj = { 0, strlen(t) }, v;
	assert_true(mg_jtext_member(t, obj, "isError", &v));
	assert_true(mg_jtext_is_true(t, v));
	assert_true(mg_jtext_member(t, obj, "a", &v));
	assert_false(mg_jtext_is_true(t, v));
	assert_false(mg_jtext_member(t, obj, "isErr", &v));
	const char *s = "[\"plain\",\"esc\\\"aped\"]";
	struct mg_jiter it;
	mg_jtext_items(&it, s, (struct mg_jspan){ 0, strlen(s) });
	assert_int_equal(mg_jtext_next(&it, &v), 1);
	assert_true(mg_jtext_plain_string(s, v));
	assert_int_equal(mg_jtext_next(&it, &v), 1);
	assert_false(mg_jtext_plain_string(s, v));
	assert_int_equal(mg_jtext_next(&it, &v), 0);
	/* Spans cut short or of the wrong kind: no answer, nothing read past
	 * the end. */
	const char *cut = "[{\"name\":\"abc\"},{\"name\":\"de";
	for (size_t end = 0; end <= strlen(cut); end++) {
		mg_jtext_items(&it, cut, (struct mg_jspan){ 0, end });
		while (mg_jtext_next(&it, &v) > 0)
			assert_true(v.end <= end);
		assert_int_equal(mg_jtext_next(&it, &v), -1);
		assert_false(mg_jtext_member(cut, (struct mg_jspan){ 1, end }, "zz", &v));
	}
	mg_jtext_items(&it, t, obj);
	assert_int_equal(mg_jtext_next(&it, &v), -1);
	/* Fields one by one, a value walked by the caller and resumed after. */
	const char *o = "{ \"a\" : [1, {\"x\":\"]\"}] , \"b\":\"c\\\"\",\"d\":{} }";
	struct mg_jfields fi;
	struct mg_jspan k;
	size_t at;
	mg_jtext_fields(&fi, o, (struct mg_jspan){ 0, strlen(o) });
	assert_int_equal(mg_jtext_field(&fi, &k, &at), 1);
	assert_true(mg_jtext_key_is(o, k, "a"));
	mg_jtext_items(&it, o, (struct mg_jspan){ at, strlen(o) });
	int n = 0;
	while (mg_jtext_next(&it, &v) > 0)
		n++;
	assert_int_equal(n, 2);
	assert_int_equal(mg_jtext_next(&it, &v), 0);
	assert_int_equal(o[it.pos - 1], ']');
	mg_jtext_field_resume(&fi, it.pos);
	assert_int_equal(mg_jtext_field(&fi, &k, &at), 1);
	assert_true(mg_jtext_key_is(o, k, "b"));
	assert_false(mg_jtext_key_is(o, k, "bb"));
	mg_jtext_field_skip(&fi);
	expect_span(o, (struct mg_jspan){ at, fi.pos }, "\"c\\\"\"");
	assert_int_equal(mg_jtext_field(&fi, &k, &at), 1);
	mg_jtext_field_skip(&fi);
	assert_int_equal(mg_jtext_field(&fi, &k, &at), 0);
	/* Cut short: an error, never past the end. */
	for (size_t end = 0; end < strlen(o); end++) {
		mg_jtext_fields(&fi, o, (struct mg_jspan){ 0, end });
		int r;
		while ((r = mg_jtext_field(&fi, &k, &at)) > 0) {
			assert_true(at < end);
			mg_jtext_field_skip(&fi);
		}
		assert_int_equal(r, -1);
	}
	assert_false(mg_jtext_member(s, (struct mg_jspan){ 0, strlen(s) }, "plain", &v));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_result), cmocka_unit_test(test_request),
		cmocka_unit_test(test_slow),   cmocka_unit_test(test_limits),
		cmocka_unit_test(test_jtext),  cmocka_unit_test(test_member_true),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
