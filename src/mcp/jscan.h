/*
 * jscan.h - a validating JSON scan that builds no tree, for the fast path.
 *
 * Most messages the gateway relays need two changes at most: the id (the
 * upstream's minted id back to the client's, or the other way round). For
 * those, parsing into a jansson tree and serializing it again is two thirds
 * of the gateway's work, and all of it for a 1 MiB answer. mg_jscan walks the
 * text once, checks it as strictly as mg_rpc_parse does and records where the
 * top-level members are, so the caller can splice the id in place.
 *
 * The scan accepts a strict subset of what mg_rpc_parse accepts: whenever it
 * says MG_JSCAN_OK, jansson (with duplicate keys rejected and the same depth
 * limit) would have accepted the same text as the same JSON-RPC message.
 * Anything unusual — an invalid text, but also a key with escapes, an object
 * with more than MG_JSCAN_MAX_KEYS members, a number jansson might not hold,
 * a lone surrogate — answers MG_JSCAN_SLOW, and the caller takes the jansson
 * path, which gives the precise error or the exact semantics. The fuzz target
 * fuzz_jsonrpc checks the subset property on every input.
 */
#ifndef MG_MCP_JSCAN_H
#define MG_MCP_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MG_JSCAN_MAX_KEYS 32 /* members per object the duplicate check handles */

enum mg_jscan_status {
	MG_JSCAN_OK,   /* valid, and every fact below is exact */
	MG_JSCAN_SLOW, /* use mg_rpc_parse (invalid, or outside the fast subset) */
};

/* A value's bytes: text[start, end). start == end == 0 when absent. */
struct mg_jspan {
	size_t start, end;
};

enum mg_jscan_kind {
	MG_JSCAN_REQUEST,      /* method and id */
	MG_JSCAN_NOTIFICATION, /* method, no id */
	MG_JSCAN_RESULT,       /* id and result (errors take the slow path) */
};

struct mg_jscan {
	enum mg_jscan_kind kind;
	struct mg_jspan id; /* the id value (string or integer) */
	bool id_is_int;     /* the id is an integer; its value in id_int */
	int64_t id_int;
	struct mg_jspan method; /* the method string, quotes included */
	struct mg_jspan params; /* an object */
	struct mg_jspan result;
	bool has_cr_lf; /* a CR or LF byte occurs (whitespace: not allowed on a stdio
	                 * line, and a line break inside an SSE data field) */
};

/* Scans `len` bytes as one JSON-RPC message (object at the top, "jsonrpc"
 * "2.0", the member rules of mg_rpc_classify) nested at most `max_depth`
 * levels deep. Never allocates. */
enum mg_jscan_status mg_jscan(const char *text, size_t len, size_t max_depth, struct mg_jscan *out);

#endif
