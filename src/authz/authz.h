/*
 * authz.h - what an identity may use: tools, resources and prompts, by name
 * or URI with `*` globs; the check before a request is forwarded and the
 * filtering of list results on the way back. Pure logic.
 *
 * Names are compared as the exact bytes the upstream will see (after JSON
 * decoding, which gateway and upstream do alike): no case folding, no
 * Unicode normalisation, so a look-alike name is simply a different name.
 * An absent list allows everything; an empty list allows nothing.
 */
#ifndef MG_AUTHZ_AUTHZ_H
#define MG_AUTHZ_AUTHZ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth/auth.h"
#include "mcp/jsonrpc.h"

/* `*` matches any run of bytes (including none); every other byte matches
 * itself. `len` is the length of `s` (it may contain NUL bytes). */
bool mg_glob_match(const char *pattern, const char *s, size_t len);

/* true when `allow` (unset: everything) has a pattern matching the name. */
bool mg_authz_list_allows(const struct mg_strv *allow, const char *name, size_t len);

/* What a name names: a tool or prompt name, or a resource URI (or URI
 * template). */
enum mg_authz_kind { MG_AUTHZ_NONE, MG_AUTHZ_TOOL, MG_AUTHZ_RESOURCE, MG_AUTHZ_PROMPT };

/* Where a name is seen, with several upstreams: `server` owns it (NULL:
 * unknown) and `sep` is the tool separator. On a federated endpoint
 * (`federated`) tools and prompts are seen as <server><sep><name>; on a
 * server's own endpoint as <name>. A pattern then matches when it matches
 * the name as seen, or is "<server>/<glob>" with the glob matching the
 * server's own name, or (on a server's endpoint) matches
 * <server><sep><name>. So "files/<glob>" and "files__<glob>" mean the same on
 * both endpoints, and a plain "read_*" matches only on the server's own. */
struct mg_authz_scope {
	const char *server;
	const char *sep;
	bool federated;
};

/* mg_authz_list_allows for a name of `kind` seen in `scope` (NULL: plain
 * names). Only tool and prompt names carry the "<server><sep>" prefix;
 * a resource URI (MG_AUTHZ_RESOURCE) is the same on every endpoint and is
 * never read as one, whatever bytes either contains (a tool may be named
 * "ns:read"). */
bool mg_authz_allows_in(const struct mg_strv *allow, const struct mg_authz_scope *scope,
                        enum mg_authz_kind kind, const char *name, size_t len);

struct mg_authz_target {
	enum mg_authz_kind kind;
	const char *name; /* tool or prompt name, resource URI (borrowed) */
	size_t len;
	const struct mg_authz_scope *scope; /* NULL: plain names */
};

/* What a request asks to use: tools/call → its tool, resources/read,
 * /subscribe and /unsubscribe → the URI, prompts/get → the prompt,
 * completion/complete → its ref (prompt or resource). Other methods target
 * nothing (kind NONE). Returns -1 when the method needs a name and the
 * request has none that is a string (then it must be refused). */
int mg_authz_target(const struct mg_rpc_msg *msg, struct mg_authz_target *t);

/* true when `id` may use `t`. */
bool mg_authz_permits(const struct mg_identity *id, const struct mg_authz_target *t);

/* For a denied tool: the scopes (space-separated, into `out`) that would
 * grant it through the JWT scope_tool_mapping, so the answer can be a 403
 * insufficient_scope asking for them. Returns false when no scope would. */
bool mg_authz_scopes_granting(const struct mg_kstrvv *mapping, const char *tool, size_t len,
                              char *out, size_t size);

/* Removes from a list result (tools/list, prompts/list, resources/list,
 * resources/templates/list) the entries `id` may not use; pagination
 * (nextCursor) is kept. Returns how many entries were removed; results of
 * other methods are untouched. */
size_t mg_authz_filter(const struct mg_identity *id, const char *method, json_t *result);
/* The same with names seen in `scope`. */
size_t mg_authz_filter_in(const struct mg_identity *id, const char *method, json_t *result,
                          const struct mg_authz_scope *scope);

/* true when mg_authz_filter may change results of `method` (the list
 * methods): answers to other methods can be relayed without a look. */
bool mg_authz_filters(const char *method);

/* true when `id` is restricted at all (some list is set); callers skip
 * filtering otherwise. */
bool mg_authz_restricted(const struct mg_identity *id);

#endif
