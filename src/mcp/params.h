/*
 * params.h - the 2026-07-28 `x-mcp-header` tool parameters: which tool
 * arguments are mirrored into `Mcp-Param-{Name}` HTTP headers, and the
 * check that those headers match the body before a tools/call is forwarded
 * (Streamable HTTP, "Server Behavior for Custom Headers"). Pure logic.
 *
 * The gateway learns the annotations from tools/list results that pass
 * through it (mg_mcp_params_learn) and checks modern tools/call requests
 * against them (mg_mcp_params_check).
 */
#ifndef MG_MCP_PARAMS_H
#define MG_MCP_PARAMS_H

#include <jansson.h>

#include "mcp/protocol.h"

/* Upper bounds on what is learned (hostile upstreams). */
#define MG_PARAMS_MAX_TOOLS   10000
#define MG_PARAMS_MAX_HEADERS 64
#define MG_PARAMS_MAX_DEPTH   16

/* Adds or replaces, in `registry` (an object: tool name → array of
 * {"header": name, "path": [keys...]}), the annotations of every tool in
 * a tools/list result's `tools` array. A tool whose annotations break the
 * spec's constraints (empty or non-token name, duplicate names ignoring
 * case, on a non-primitive or `number` property, or reachable only through
 * items/anyOf/$ref/...) is registered with no headers and flagged
 * "invalid": true. Returns the number of tools learned. */
size_t mg_mcp_params_learn(json_t *registry, json_t *tools);

/* Looks up a request header by case-insensitive name; NULL when absent. */
typedef const char *(*mg_header_fn)(void *ctx, const char *name);

/* Checks a tools/call's arguments against `spec` (the registry entry of
 * the tool, may be NULL: nothing to check). For every annotated parameter
 * with a non-null value the header must be present and, once decoded
 * (=?base64?...?= sentinel), equal to the value (integers compared
 * numerically, booleans as true/false). A header with characters not
 * allowed in a plain header value or invalid base64 is rejected too.
 * Returns 0, or -1 with `out` filled (400, -32020). */
int mg_mcp_params_check(json_t *spec, json_t *arguments, mg_header_fn get, void *ctx,
                        struct mg_mcp_reject *out);

#endif
