/*
 * jsonrpc.h - JSON-RPC 2.0 framing for MCP: strict parsing, classification
 * and error construction. Pure logic: no sockets, no clocks.
 *
 * Parsing always rejects duplicate object keys (a smuggling vector: two
 * "name" keys read differently by the gateway and the upstream) and nesting
 * deeper than the configured limit, and accepts exactly one JSON value.
 * Ids are strings or integers (MCP forbids null and fractions); the exact
 * original value is kept so it can be restored byte for byte.
 */
#ifndef MG_MCP_JSONRPC_H
#define MG_MCP_JSONRPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Standard JSON-RPC and MCP error codes. */
#define MG_RPC_PARSE_ERROR         -32700
#define MG_RPC_INVALID_REQUEST     -32600
#define MG_RPC_METHOD_NOT_FOUND    -32601
#define MG_RPC_INVALID_PARAMS      -32602
#define MG_RPC_INTERNAL_ERROR      -32603
#define MG_RPC_HEADER_MISMATCH     -32020 /* 2026-07-28 */
#define MG_RPC_MISSING_CAPABILITY  -32021
#define MG_RPC_UNSUPPORTED_VERSION -32022
/* The gateway's own code for "rate limited" (HTTP 429): outside the ranges
 * JSON-RPC and MCP reserve. */
#define MG_RPC_RATE_LIMITED -31429

enum mg_rpc_kind {
	MG_RPC_REQUEST,      /* method + id */
	MG_RPC_NOTIFICATION, /* method, no id */
	MG_RPC_RESPONSE,     /* id + result */
	MG_RPC_ERROR,        /* id (may be null) + error */
	MG_RPC_BATCH,        /* array (2025-03-26 only) */
};

/* One parsed message. `root` owns everything; the other pointers borrow. */
struct mg_rpc_msg {
	json_t *root;
	enum mg_rpc_kind kind;
	json_t *id;         /* string or integer; NULL for notifications */
	const char *method; /* requests and notifications */
	json_t *params;     /* object, or NULL when absent */
	bool edited;        /* the gateway changed the tree: the body text is not it */
	size_t name_cut;    /* (edited) ... only by removing this many bytes from the start
	                     * of params.name (a federated name's server prefix) */
};

/* Result of mg_rpc_parse when it fails: the code to answer with, a message
 * for people, and the request id when it could be read (else NULL). The id
 * is a new reference the caller must release. */
struct mg_rpc_fail {
	int code;
	char message[160];
	json_t *id;
};

/* Maximum nesting (arrays + objects) of `len` bytes of JSON text, stopping
 * early once `limit` is exceeded (returns limit + 1 then). Strings are
 * skipped correctly; the text need not be valid JSON. */
size_t mg_json_depth(const char *text, size_t len, size_t limit);

/* The tree json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL |
 * JSON_DECODE_ANY) gives, built without jansson's lexer (which reads a
 * character at a time through callbacks: ~3 us for a 150-byte request) for
 * the common subset of JSON: strings of ASCII without escapes or control bytes,
 * integers of at most 18 digits, true/false/null, nesting up to
 * `max_depth`. NULL for anything else (an escape, a non-ASCII byte, a
 * fraction or exponent, a duplicate key, any syntax error...): the caller
 * then asks jansson, which gives the tree or the precise error. */
json_t *mg_json_load_fast(const char *text, size_t len, size_t max_depth);

/* Parses and validates one message (or a batch when `allow_batch`).
 * Returns 0 with `msg` filled, or -1 with `fail` filled. */
int mg_rpc_parse(const char *text, size_t len, size_t max_depth, bool allow_batch,
                 struct mg_rpc_msg *msg, struct mg_rpc_fail *fail);

/* Classifies an already-parsed JSON value (an element of a batch, or a
 * message built in memory). Borrows `root`; sets msg->root to it. */
int mg_rpc_classify(json_t *root, struct mg_rpc_msg *msg, struct mg_rpc_fail *fail);

/* Releases msg->root and clears the struct. */
void mg_rpc_msg_free(struct mg_rpc_msg *msg);

/* Builds {"jsonrpc":"2.0","id":id,"error":{"code":..,"message":..[,"data":data]}}.
 * `id` may be NULL (serialized as null); `data` is stolen (may be NULL).
 * The id is copied (not stolen). */
json_t *mg_rpc_error_new(json_t *id, int code, const char *message, json_t *data);

/* Serializes `v` compactly (no spaces, keys in insertion order) into a
 * malloc'd string with its length. NULL on failure. */
char *mg_json_dump(const json_t *v, size_t *len);

/* true when the ids are equal and of the same type (string vs integer). */
bool mg_rpc_id_equal(const json_t *a, const json_t *b);

/* params._meta.progressToken (string or integer), or NULL. Borrowed. */
json_t *mg_rpc_progress_token(const struct mg_rpc_msg *msg);

#endif
