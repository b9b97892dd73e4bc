/*
 * fuzz_jsonrpc.c - libFuzzer target for JSON-RPC parsing, classification,
 * the modern-era header checks and error serialization.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/jsonrpc.h"
#include "mcp/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
