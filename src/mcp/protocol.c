/*
 * protocol.c - versions, era selection and modern header checks (see
 * protocol.h and the 2026-07-28 Streamable HTTP "Server Validation").
 */
#include "mcp/protocol.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/crypto.h"

const char *const mg_mcp_legacy_versions[] = { "2025-11-25", "2025-06-18", "2025-03-26", NULL };
const char *const mg_mcp_all_versions[] = { MG_MCP_MODERN_VERSION, "2025-11-25", "2025-06-18",
	                                    "2025-03-26", NULL };

/* Methods a 2026-07-28 request may no longer use. */
static const char *const removed_methods[] = {
	"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe",
	NULL
};

bool mg_mcp_legacy_supported(const char *v)
{
	for (size_t i = 0; v && mg_mcp_legacy_versions[i]; i++) {
		if (strcmp(v, mg_mcp_legacy_versions[i]) == 0)
			return true;
	}
	return false;
}

static bool modern_supported(const char *v)
{
	return v && strcmp(v, MG_MCP_MODERN_VERSION) == 0;
}

json_t *mg_mcp_versions_json(void)
{
	json_t *a = json_array();
	for (size_t i = 0; mg_mcp_all_versions[i]; i++)
		json_array_append_new(a, json_string(mg_mcp_all_versions[i]));
	return a;
}

const char *mg_mcp_meta_version(const struct mg_rpc_msg *msg)
{
	json_t *meta = msg->params ? json_object_get(msg->params, "_meta") : NULL;
	json_t *v = json_is_object(meta) ? json_object_get(meta, MG_MCP_META_VERSION) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool meta_has_version_key(const struct mg_rpc_msg *msg)
{
	json_t *meta = msg->params ? json_object_get(msg->params, "_meta") : NULL;
	return json_is_object(meta) && json_object_get(meta, MG_MCP_META_VERSION) != NULL;
}

enum mg_era mg_mcp_era(const struct mg_rpc_msg *msg, const char *hdr_version)
{
	if (msg->kind != MG_RPC_BATCH && meta_has_version_key(msg))
		return MG_ERA_MODERN;
	if (msg->kind == MG_RPC_REQUEST && msg->method && strcmp(msg->method, "initialize") == 0)
		return MG_ERA_LEGACY;
	if (hdr_version && !mg_mcp_legacy_supported(hdr_version) &&
	    strcmp(hdr_version, "2024-11-05") != 0 && hdr_version[0] >= '2' &&
	    strcmp(hdr_version, MG_MCP_LATEST_LEGACY) > 0)
		return MG_ERA_MODERN;
	return MG_ERA_LEGACY;
}

static bool header_char_ok(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c <= 0x7e);
}

long mg_mcp_header_decode(const char *value, char *out, size_t size)
{
	size_t n = strlen(value);
	static const char pre[] = "=?base64?", suf[] = "?=";
	if (n >= sizeof pre - 1 + sizeof suf - 1 && memcmp(value, pre, sizeof pre - 1) == 0 &&
	    memcmp(value + n - 2, suf, 2) == 0) {
		const char *b = value + sizeof pre - 1;
		size_t blen = n - (sizeof pre - 1) - 2;
		/* Standard base64 with its padding, as the transport page shows. */
		if (blen % 4 != 0)
			return -1;
		long k = mg_base64_decode(b, blen, out, size ? size - 1 : 0);
		if (k < 0)
			return -1;
		out[k] = '\0';
		return k;
	}
	if (n + 1 > size)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!header_char_ok((unsigned char)value[i]))
			return -1;
	}
	memcpy(out, value, n + 1);
	return (long)n;
}

json_t *mg_mcp_name_source(const struct mg_rpc_msg *msg, bool *required)
{
	*required = false;
	if (!msg->method || !msg->params)
		return NULL;
	const char *key = NULL;
	if (strcmp(msg->method, "tools/call") == 0 || strcmp(msg->method, "prompts/get") == 0)
		key = "name";
	else if (strcmp(msg->method, "resources/read") == 0)
		key = "uri";
	if (!key)
		return NULL;
	*required = true;
	return json_object_get(msg->params, key);
}

static int reject(struct mg_mcp_reject *out, int status, int code, json_t *data, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));
static int reject(struct mg_mcp_reject *out, int status, int code, json_t *data, const char *fmt,
                  ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof out->message, fmt, ap);
	va_end(ap);
	out->http_status = status;
	out->code = code;
	out->data = data;
	return -1;
}

int mg_mcp_check_modern(const struct mg_rpc_msg *msg, const struct mg_mcp_headers *h,
                        struct mg_mcp_reject *out)
{
	memset(out, 0, sizeof *out);
	const char *ver = mg_mcp_meta_version(msg);
	if (h->session_id)
		return reject(out, 400, MG_RPC_INVALID_REQUEST, NULL,
		              "Mcp-Session-Id is not used with protocol version %s",
		              ver ? ver : MG_MCP_MODERN_VERSION);
	if (!ver)
		return reject(out, 400, MG_RPC_INVALID_PARAMS, NULL,
		              "params._meta[\"%s\"] is required (a string)", MG_MCP_META_VERSION);
	/* Header against body first: a mismatch is -32020 even when the body's
	 * version is one we do not support. */
	if (!h->protocol_version)
		return reject(out, 400, MG_RPC_HEADER_MISMATCH, NULL,
		              "Header mismatch: MCP-Protocol-Version header is required");
	if (strcmp(h->protocol_version, ver) != 0)
		return reject(out, 400, MG_RPC_HEADER_MISMATCH, NULL,
		              "Header mismatch: MCP-Protocol-Version header value '%.40s' does "
		              "not match body value '%.40s'",
		              h->protocol_version, ver);
	if (!modern_supported(ver)) {
		/* Unknown, or a legacy version: that era has no per-request metadata. */
		json_t *data = json_object();
		json_object_set_new(data, "supported", mg_mcp_versions_json());
		json_object_set_new(data, "requested", json_string(ver));
		return reject(out, 400, MG_RPC_UNSUPPORTED_VERSION, data,
		              mg_mcp_legacy_supported(ver)
		                  ? "Unsupported protocol version for per-request metadata (%s "
		                    "needs initialize)"
		                  : "Unsupported protocol version %s",
		              ver);
	}
	json_t *meta = json_object_get(msg->params, "_meta");
	if (!json_is_object(json_object_get(meta, MG_MCP_META_CLIENTCAPS)))
		return reject(out, 400, MG_RPC_INVALID_PARAMS, NULL,
		              "params._meta[\"%s\"] is required (an object)",
		              MG_MCP_META_CLIENTCAPS);
	if (msg->kind != MG_RPC_REQUEST)
		return 0;
	if (!h->method)
		return reject(out, 400, MG_RPC_HEADER_MISMATCH, NULL,
		              "Header mismatch: Mcp-Method header is required");
	if (strcmp(h->method, msg->method) != 0)
		return reject(out, 400, MG_RPC_HEADER_MISMATCH, NULL,
		              "Header mismatch: Mcp-Method header value '%.60s' does not match "
		              "body value '%.60s'",
		              h->method, msg->method);
	bool required;
	json_t *src = mg_mcp_name_source(msg, &required);
	if (required) {
		char name[4096];
		if (!h->name)
			return reject(out, 400, MG_RPC_HEADER_MISMATCH, NULL,
			              "Header mismatch: Mcp-Name header is required for %s",
			              msg->method);
		long k = mg_mcp_header_decode(h->name, name, sizeof name);
		if (k < 0)
			return reject(out, 400, MG_RPC_HEADER_MISMATCH, NULL,
			              "Header mismatch: Mcp-Name header value is malformed");
		if (!json_is_string(src) || json_string_length(src) != (size_t)k ||
		    memcmp(json_string_value(src), name, (size_t)k) != 0)
			return reject(out, 400, MG_RPC_HEADER_MISMATCH, NULL,
			              "Header mismatch: Mcp-Name header value '%.60s' does not "
			              "match body value '%.60s'",
			              name, json_is_string(src) ? json_string_value(src) : "");
	}
	for (size_t i = 0; removed_methods[i]; i++) {
		if (strcmp(msg->method, removed_methods[i]) == 0)
			return reject(out, 404, MG_RPC_METHOD_NOT_FOUND, NULL,
			              "Method not found: %s is not part of protocol version %s",
			              msg->method, ver);
	}
	return 0;
}
