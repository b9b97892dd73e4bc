/*
 * fuzz_jsonrpc.c - libFuzzer target for JSON-RPC parsing, classification,
 * the modern-era header checks and error serialization; and the subset
 * property of the tree-less scan (mcp/jscan.h): whatever it accepts,
 * mg_rpc_parse accepts as the same message with the same id; and the walk
 * over accepted text (mcp/jtext.h) finds the members and elements jansson
 * finds, with the same values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/jscan.h"
#include "mcp/jtext.h"
#include "mcp/jsonrpc.h"
#include "mcp/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_value(const char *text, struct mg_jspan v, json_t *want)
{
	json_t *got =
	    json_loadb(text + v.start, v.end - v.start, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	bool same = got && json_equal(got, want);
	json_decref(got);
	return same;
}

/* The elements of an array, as jansson has them. */
static void check_items(const char *text, struct mg_jspan arr, json_t *want)
{
	struct mg_jiter it;
	struct mg_jspan e;
	size_t n = 0;
	int r;
	mg_jtext_items(&it, text, arr);
	while ((r = mg_jtext_next(&it, &e)) > 0)
		if (!same_value(text, e, json_array_get(want, n++)))
			abort();
	if (r != 0 || n != json_array_size(want) || it.pos != arr.end)
		abort();
}

/* The members of an object (and one level of arrays in it), as jansson has
 * them; by field walk and by lookup. */
static void check_object(const char *text, struct mg_jspan obj, json_t *want)
{
	struct mg_jfields f;
	struct mg_jspan key, v;
	size_t at, n = 0;
	int r;
	mg_jtext_fields(&f, text, obj);
	while ((r = mg_jtext_field(&f, &key, &at)) > 0) {
		/* Keys carry no escape and no NUL (the scan sends those to the
		 * slow path), so their bytes are the key. */
		char *k = strndup(text + key.start, key.end - key.start);
		if (!k)
			abort();
		json_t *w = json_object_get(want, k);
		mg_jtext_field_skip(&f);
		v = (struct mg_jspan){ at, f.pos };
		if (!w || !same_value(text, v, w))
			abort();
		struct mg_jspan v2;
		if (!mg_jtext_member(text, obj, k, &v2) || v2.start != v.start || v2.end != v.end)
			abort();
		if (json_is_array(w))
			check_items(text, v, w);
		free(k);
		n++;
	}
	if (r != 0 || n != json_object_size(want))
		abort();
}

static void check_scan(const char *text, size_t size)
{
	struct mg_jscan js;
	if (mg_jscan(text, size, 64, &js) != MG_JSCAN_OK)
		return;
	struct mg_rpc_msg m;
	struct mg_rpc_fail f;
	if (mg_rpc_parse(text, size, 64, false, &m, &f) < 0)
		abort(); /* the scan accepted what jansson's path refuses */
	enum mg_rpc_kind want = js.kind == MG_JSCAN_REQUEST        ? MG_RPC_REQUEST
	                        : js.kind == MG_JSCAN_NOTIFICATION ? MG_RPC_NOTIFICATION
	                                                           : MG_RPC_RESPONSE;
	if (m.kind != want ||
	    !js.has_cr_lf != !(memchr(text, '\n', size) || memchr(text, '\r', size)))
		abort();
	if (m.id) {
		/* The id span holds exactly the id jansson read. */
		json_t *id = json_loadb(text + js.id.start, js.id.end - js.id.start,
		                        JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		if (!id || !mg_rpc_id_equal(id, m.id) ||
		    (js.id_is_int && json_integer_value(m.id) != js.id_int))
			abort();
		json_decref(id);
	} else if (js.id.end) {
		abort();
	}
	if (m.method && (js.method.end - js.method.start != strlen(m.method) + 2 ||
	                 memcmp(text + js.method.start + 1, m.method, strlen(m.method)) != 0))
		abort();
	json_t *result = json_object_get(m.root, "result");
	if (js.params.end && m.params)
		check_object(text, js.params, m.params);
	if (js.result.end && json_is_object(result)) {
		check_object(text, js.result, result);
		/* isError by search and walk, as jansson reads it */
		if (mg_jtext_member_true(text, js.result, "isError") !=
		    json_is_true(json_object_get(result, "isError")))
			abort();
	} else if (js.result.end && json_is_array(result))
		check_items(text, js.result, result);
	mg_rpc_msg_free(&m);
}

/* The fast loader builds a tree only when jansson (with the flags the
 * request parser uses) builds the same one: it must never accept what jansson
 * refuses (a duplicate key above all) nor read a value differently. */
static void check_fast_load(const char *text, size_t size)
{
	json_t *fast = mg_json_load_fast(text, size, 64);
	if (!fast)
		return;
	json_t *slow =
	    json_loadb(text, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
	if (!slow || !json_equal(fast, slow))
		abort();
	json_decref(slow);
	json_decref(fast);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_scan((const char *)data, size);
	check_fast_load((const char *)data, size);
	struct mg_rpc_msg m;
	struct mg_rpc_fail f;
	if (mg_rpc_parse((const char *)data, size, 64, true, &m, &f) < 0) {
		json_t *e = mg_rpc_error_new(f.id, f.code, f.message, NULL);
		char *s = mg_json_dump(e, NULL);
		free(s);
		json_decref(e);
		json_decref(f.id);
		return 0;
	}
	if (m.kind != MG_RPC_BATCH) {
		struct mg_mcp_headers h = { .protocol_version = "2026-07-28",
			                    .method = m.method,
			                    .name = "=?base64?ZWNobw==?=" };
		struct mg_mcp_reject r;
		(void)mg_mcp_era(&m, "2026-07-28");
		if (mg_mcp_check_modern(&m, &h, &r) < 0)
			json_decref(r.data);
		(void)mg_rpc_progress_token(&m);
	} else {
		size_t i;
		json_t *v;
		json_array_foreach(m.root, i, v)
		{
			struct mg_rpc_msg e;
			struct mg_rpc_fail ef;
			if (mg_rpc_classify(v, &e, &ef) < 0)
				json_decref(ef.id);
		}
	}
	char *s = mg_json_dump(m.root, NULL);
	free(s);
	mg_rpc_msg_free(&m);
	return 0;
}
