/*
 * protocol.h - MCP protocol versions and the per-request rules of the two
 * eras (see DESIGN.md §2): which era a POST belongs to, and the header
 * checks a modern (2026-07-28) request must pass before any upstream work.
 * Pure logic over a parsed message and header values.
 */
#ifndef MG_MCP_PROTOCOL_H
#define MG_MCP_PROTOCOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "mcp/jsonrpc.h"

#define MG_MCP_MODERN_VERSION    "2026-07-28"
#define MG_MCP_LATEST_LEGACY     "2025-11-25"
#define MG_MCP_DEFAULT_LEGACY    "2025-03-26" /* assumed when the header is absent */
#define MG_MCP_META_VERSION      "io.modelcontextprotocol/protocolVersion"
#define MG_MCP_META_CLIENTINFO   "io.modelcontextprotocol/clientInfo"
#define MG_MCP_META_CLIENTCAPS   "io.modelcontextprotocol/clientCapabilities"
#define MG_MCP_META_SERVERINFO   "io.modelcontextprotocol/serverInfo"
#define MG_MCP_META_SUBSCRIPTION "io.modelcontextprotocol/subscriptionId"
#define MG_MCP_META_LOGLEVEL     "io.modelcontextprotocol/logLevel"

/* Legacy versions served on the Streamable HTTP endpoint, newest first,
 * NULL-terminated. */
extern const char *const mg_mcp_legacy_versions[];

/* All versions the gateway speaks, newest first, NULL-terminated. */
extern const char *const mg_mcp_all_versions[];

/* true for a legacy version the gateway serves on Streamable HTTP. */
bool mg_mcp_legacy_supported(const char *v);

/* The `_meta` protocol version of a request, or NULL (borrowed). */
const char *mg_mcp_meta_version(const struct mg_rpc_msg *msg);

/* A JSON array of mg_mcp_all_versions (new reference). */
json_t *mg_mcp_versions_json(void);

enum mg_era { MG_ERA_LEGACY, MG_ERA_MODERN };

/* Chooses the era of a POSTed message: modern when it carries a `_meta`
 * protocol version or the MCP-Protocol-Version header names a version that
 * is not legacy (e.g. 2026-07-28, or an unknown future one). */
enum mg_era mg_mcp_era(const struct mg_rpc_msg *msg, const char *hdr_version);

/* A rejection to send: HTTP status, JSON-RPC code, message, optional data. */
struct mg_mcp_reject {
	int http_status;
	int code;
	char message[256];
	json_t *data; /* owned; NULL when none */
};

/* The request headers the modern checks look at (NULL when absent). */
struct mg_mcp_headers {
	const char *protocol_version;
	const char *method;
	const char *name; /* raw Mcp-Name, possibly =?base64?…?= */
	bool session_id;  /* Mcp-Session-Id present */
};

/* Applies every modern-era rule to a request: session header, `_meta`
 * version present and supported, MCP-Protocol-Version / Mcp-Method /
 * Mcp-Name equal to the body (Mcp-Name decoded from its base64 sentinel
 * form first), and methods removed in 2026-07-28. Returns 0 when the
 * request may proceed, else -1 with `out` filled (caller frees out->data). */
int mg_mcp_check_modern(const struct mg_rpc_msg *msg, const struct mg_mcp_headers *h,
                        struct mg_mcp_reject *out);

/* Decodes a header value that may use the "=?base64?…?=" sentinel form into
 * `out` (capacity `size`, NUL-terminated). Returns the length, or -1 when
 * the value is malformed, holds bytes not allowed in a plain header, or is
 * too long. */
long mg_mcp_header_decode(const char *value, char *out, size_t size);

/* The body value a method's Mcp-Name must equal: params.name for
 * tools/call and prompts/get, params.uri for resources/read; NULL for
 * other methods (borrowed). `required` is set when the method needs it. */
json_t *mg_mcp_name_source(const struct mg_rpc_msg *msg, bool *required);

#endif
