/*
 * test_params.c - x-mcp-header learning and Mcp-Param-* checks, and the
 * order of the modern header checks.
 */
#include "support.h"

#include <string.h>
#include <strings.h>

#include "mcp/params.h"

struct hdrs {
	const char *names[4];
	const char *values[4];
};

static const char *get(void *ctx, const char *name)
{
	struct hdrs *h = ctx;
	for (int i = 0; i < 4 && h->names[i]; i++) {
		if (strcasecmp(h->names[i], name) == 0)
			return h->values[i];
	}
	return NULL;
}

static json_t *tools(void)
{
	json_error_t e;
	return json_loads(
	    "[{\"name\":\"sql\",\"inputSchema\":{\"type\":\"object\",\"properties\":{"
	    "\"region\":{\"type\":\"string\",\"x-mcp-header\":\"Region\"},"
	    "\"opts\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\","
	    "\"x-mcp-header\":\"N\"},\"on\":{\"type\":\"boolean\",\"x-mcp-header\":\"On\"}}},"
	    "\"query\":{\"type\":\"string\"}}}},"
	    "{\"name\":\"bad-number\",\"inputSchema\":{\"properties\":{\"x\":{\"type\":\"number\","
	    "\"x-mcp-header\":\"X\"}}}},"
	    "{\"name\":\"bad-items\",\"inputSchema\":{\"properties\":{\"a\":{\"type\":\"array\","
	    "\"items\":{\"type\":\"string\",\"x-mcp-header\":\"A\"}}}}},"
	    "{\"name\":\"bad-dup\",\"inputSchema\":{\"properties\":{\"a\":{\"type\":\"string\","
	    "\"x-mcp-header\":\"Same\"},\"b\":{\"type\":\"string\",\"x-mcp-header\":\"same\"}}}},"
	    "{\"name\":\"bad-name\",\"inputSchema\":{\"properties\":{\"a\":{\"type\":\"string\","
	    "\"x-mcp-header\":\"Has Space\"}}}},"
	    "{\"name\":\"plain\",\"inputSchema\":{\"type\":\"object\"}}]",
	    0, &e);
}

static void test_learn(void **state)
{
	(void)state;
	json_t *reg = json_object(), *t = tools();
	assert_int_equal(mg_mcp_params_learn(reg, t), 6);
	json_t *sql = json_object_get(json_object_get(reg, "sql"), "headers");
	assert_int_equal(json_array_size(sql), 3);
	for (const char *const *n =
	         (const char *const[]){ "bad-number", "bad-items", "bad-dup", "bad-name", NULL };
	     *n; n++)
		assert_true(json_is_true(json_object_get(json_object_get(reg, *n), "invalid")));
	assert_int_equal(json_array_size(json_object_get(json_object_get(reg, "plain"), "headers")),
	                 0);
	json_decref(t);
	json_decref(reg);
}

static int check(json_t *reg, const char *args, struct hdrs *h)
{
	json_error_t e;
	json_t *a = json_loads(args, 0, &e);
	struct mg_mcp_reject r;
	int rc = mg_mcp_params_check(json_object_get(reg, "sql"), a, get, h, &r);
	if (rc < 0) {
		assert_int_equal(r.http_status, 400);
		assert_int_equal(r.code, MG_RPC_HEADER_MISMATCH);
	}
	json_decref(a);
	return rc;
}

static void test_check(void **state)
{
	(void)state;
	json_t *reg = json_object(), *t = tools();
	mg_mcp_params_learn(reg, t);
	struct hdrs ok = { { "mcp-param-region", "Mcp-Param-N", "Mcp-Param-On" },
		           { "us-west1", "42", "true" } };
	assert_int_equal(
	    check(reg, "{\"region\":\"us-west1\",\"opts\":{\"n\":42,\"on\":true}}", &ok), 0);
	/* Base64 sentinel, numeric comparison, omitted values. */
	struct hdrs b64 = { { "Mcp-Param-Region", "Mcp-Param-N" },
		            { "=?base64?SGVsbG8=?=", "42.0" } };
	assert_int_equal(check(reg, "{\"region\":\"Hello\",\"opts\":{\"n\":42}}", &b64), 0);
	struct hdrs none = { { NULL }, { NULL } };
	assert_int_equal(check(reg, "{\"query\":\"x\",\"region\":null}", &none), 0);
	/* Missing header, mismatch, bad padding, bad characters, boolean text. */
	assert_int_equal(check(reg, "{\"region\":\"eu\"}", &none), -1);
	struct hdrs wrong = { { "Mcp-Param-Region" }, { "us-east1" } };
	assert_int_equal(check(reg, "{\"region\":\"eu\"}", &wrong), -1);
	struct hdrs pad = { { "Mcp-Param-Region" }, { "=?base64?SGVsbG8?=" } };
	assert_int_equal(check(reg, "{\"region\":\"Hello\"}", &pad), -1);
	struct hdrs chars = { { "Mcp-Param-Region" }, { "=?base64?SGVs!!!bG8=?=" } };
	assert_int_equal(check(reg, "{\"region\":\"Hello\"}", &chars), -1);
	struct hdrs yes = { { "Mcp-Param-On" }, { "True" } };
	assert_int_equal(check(reg, "{\"opts\":{\"on\":true}}", &yes), -1);
	/* A value that merely looks like the sentinel is compared literally. */
	struct hdrs lit = { { "Mcp-Param-Region" }, { "=?base64?abc" } };
	assert_int_equal(check(reg, "{\"region\":\"=?base64?abc\"}", &lit), 0);
	json_decref(t);
	json_decref(reg);
}

static void test_check_order(void **state)
{
	(void)state;
	/* Header 2026-07-28 but _meta names an unknown version: -32020, not -32022. */
	json_t *root = json_pack("{s:s,s:i,s:s,s:{s:{s:s,s:{}}}}", "jsonrpc", "2.0", "id", 1,
	                         "method", "tools/list", "params", "_meta", MG_MCP_META_VERSION,
	                         "v999.0.0", MG_MCP_META_CLIENTCAPS);
	struct mg_rpc_msg m;
	struct mg_rpc_fail f;
	assert_int_equal(mg_rpc_classify(root, &m, &f), 0);
	struct mg_mcp_headers h = { .protocol_version = "2026-07-28", .method = "tools/list" };
	struct mg_mcp_reject r;
	assert_int_equal(mg_mcp_check_modern(&m, &h, &r), -1);
	assert_int_equal(r.code, MG_RPC_HEADER_MISMATCH);
	json_decref(root);
	/* No clientCapabilities: -32602. */
	root = json_pack("{s:s,s:i,s:s,s:{s:{s:s}}}", "jsonrpc", "2.0", "id", 2, "method",
	                 "server/discover", "params", "_meta", MG_MCP_META_VERSION, "2026-07-28");
	assert_int_equal(mg_rpc_classify(root, &m, &f), 0);
	struct mg_mcp_headers h2 = { .protocol_version = "2026-07-28",
		                     .method = "server/discover" };
	assert_int_equal(mg_mcp_check_modern(&m, &h2, &r), -1);
	assert_int_equal(r.code, MG_RPC_INVALID_PARAMS);
	json_decref(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_learn),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_check_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
