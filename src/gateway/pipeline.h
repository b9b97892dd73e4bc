/*
 * pipeline.h - what the MCP endpoint's files (mcp.c and the phase files:
 * access.c, limit.c, authorize.c, exchange.c, notify.c, legacy.c, modern.c,
 * pipeline.c) call in one another. Included only by those files; the rest
 * of the gateway sees the endpoint through internal.h (mg_mcp_*).
 */
#ifndef MG_GATEWAY_PIPELINE_H
#define MG_GATEWAY_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "audit/audit.h"
#include "gateway/internal.h"
#include "util/log.h"

struct mg_auth_wait;
struct mg_rl_wait;
struct mg_rl_decision;
struct mg_rate;

/* A request's header (the first of its name), or NULL. */
static inline const char *mg_hdr(struct mg_http_req *req, const char *name)
{
	return mg_http_req_header(req, name);
}

/* Accept that names text/event-stream explicitly (wildcards do not count:
 * a client must say it can read a stream). */
static inline bool mg_accepts_sse(const char *accept)
{
	/* strcasestr's set-up costs more than this on a short Accept. */
	for (const char *a = accept; a && *a; a++)
		if ((*a == 't' || *a == 'T') && strncasecmp(a, "text/event-stream", 17) == 0)
			return true;
	return false;
}

/* A request waiting for authentication (a JWKS fetch). Counted as in
 * flight: shutdown waits for it and, at the deadline, answers it. */
struct mg_access {
	struct mg_gateway *gw;
	struct mg_http_req *req;
	struct mg_auth *auth;
	struct mg_auth_wait *wait;
	struct mg_access *prev, *next;
};

/* A request waiting for a rate-limit decision from Redis. Counted as in
 * flight; cancelled when the client leaves. */
struct mg_hold {
	struct mg_gateway *gw;
	struct mg_http_req *req;
	struct mg_identity *id;
	struct mg_rpc_msg msg; /* the parsed body (tool limits), or root NULL */
	struct mg_rl_wait *wait;
	void (*decided)(struct mg_hold *h, const struct mg_rl_decision *d);
	struct mg_hold *prev, *next;
	bool linked;
};

/* ---- pipeline.c ---------------------------------------------------------- */

/* The index of a syslog level name (0 emergency .. 7 debug), or -1. */
int mg_pipeline_log_level_index(const char *s);
/* The request id of `req`: the same for every audit event and log line of
 * one HTTP request, stored nowhere; never 0. */
uint64_t mg_pipeline_request_id(const struct mg_http_req *req);
/* The audit request id of `req` (16 hex digits of mg_pipeline_request_id). */
void mg_pipeline_audit_request_id(const struct mg_http_req *req, char out[17]);
/* The log context of `req`: its request id, and its trace id once the
 * trace is known (tracing on, body parsed). */
struct mg_log_ctx mg_pipeline_log_ctx(const struct mg_http_req *req);
/* Makes `req`'s context the thread's log context; returns the previous one
 * (mg_log_ctx_restore it when the callback returns). */
struct mg_log_ctx mg_pipeline_log_enter(const struct mg_http_req *req);
/* The trace id of `c` as 32 hex digits, or "" when it has none. */
void mg_pipeline_trace_hex(const struct mg_log_ctx *c, char out[33]);
/* One audit event about `req` (callers test gw->audit first). */
void mg_pipeline_audit_req(struct mg_gateway *gw, const struct mg_http_req *req,
                           enum mg_audit_type type, const struct mg_identity *id,
                           const char *method, const char *tool, int success, const char *message);
/* Answers 202 Accepted (a notification or a response from the client). */
void mg_reply_accepted(struct mg_gateway *gw, struct mg_http_req *req);
/* Answers a JSON-RPC result (taking `result`; modern: resultType added). */
void mg_reply_result(struct mg_gateway *gw, struct mg_http_req *req, json_t *id, json_t *result,
                     bool modern);

/* ---- access.c ------------------------------------------------------------ */

/* An Origin the gateway accepts (server.allowed_origins, loopback origins
 * on a loopback listener, the public_url's host). */
bool mg_origin_allowed(struct mg_gateway *gw, const char *origin);
/* Origin and Host checks; returns false after answering 403. */
bool mg_check_origin_or_reply(struct mg_gateway *gw, struct mg_http_req *req);
/* Appends the CORS headers (up to 3) for an allowed Origin to h[*n]. */
void mg_cors_headers(struct mg_gateway *gw, struct mg_http_req *req, struct mg_http_hdr *h,
                     size_t *n);
/* true when a query string carries something named like a credential. */
bool mg_query_has_credentials(const char *q);
/* ACCESS: runs the provider chain; continues with the identity's rate limit
 * (mg_rate_limit_then_dispatch), now or once a waiting provider answers. */
void mg_authenticate_then_dispatch(struct mg_gateway *gw, struct mg_http_req *req);
/* Unlinks and frees a request waiting for authentication. */
void mg_access_free(struct mg_access *ac);

/* ---- limit.c ------------------------------------------------------------- */

/* Unlinks (when linked) and frees a hold with what it owns. */
void mg_hold_free(struct mg_hold *h);
/* Checks `key` and calls h->decided now or later; takes ownership of h. */
void mg_hold_check(struct mg_hold *h, const char *key, size_t len, const struct mg_rate *r);
/* The per-address limit, peeked; returns false after answering 429. */
bool mg_ip_limit_or_reply(struct mg_gateway *gw, struct mg_http_req *req);
/* The same peek check answering "<what>; retry in N s" (the OAuth facade). */
bool mg_ip_limit_or_reply_what(struct mg_gateway *gw, struct mg_http_req *req, const char *what);
/* Charges a failed authentication to the client's address. */
void mg_ip_charge_failure(struct mg_gateway *gw, struct mg_http_req *req);
/* LIMIT: the identity's rate limit, then mg_dispatch_method (now or after
 * Redis answers). */
void mg_rate_limit_then_dispatch(struct mg_gateway *gw, struct mg_http_req *req,
                                 struct mg_identity *id);
/* The per-tool limit that applies to a tools/call, if any. */
const struct mg_tool_limit_config *mg_tool_limit(struct mg_gateway *gw,
                                                 const struct mg_rpc_msg *msg);
/* A hold's decision for a per-tool limit: 429, or mg_continue_post. */
void mg_tool_decided(struct mg_hold *h, const struct mg_rl_decision *d);

/* ---- authorize.c --------------------------------------------------------- */

/* AUTHZ: true when `id` may call what `msg` names; else answers and false. */
bool mg_authorize_or_reply(struct mg_gateway *gw, struct mg_http_req *req, struct mg_identity *id,
                           struct mg_rpc_msg *msg);

/* ---- exchange.c ---------------------------------------------------------- */

/* Starts an exchange for request `msg` on `ch` (NULL: answered 503) of
 * `route`'s upstream. `s` is the legacy session, NULL for a modern request. Answers the client itself
 * on failure. */
void mg_exchange_start(struct mg_gateway *gw, struct mg_http_req *req, struct mg_session *s,
                       struct mg_route *route, struct mg_channel *ch, struct mg_rpc_msg *msg,
                       bool modern, enum mg_bridge bridge, struct mg_identity *id);
/* Unlinks and frees an exchange (its tools/call result audited if due). */
void mg_exchange_free(struct mg_exchange *x);
/* Sends an intermediate message on the exchange's stream (switching to SSE);
 * false when the client cannot read one. */
bool mg_exchange_push(struct mg_exchange *x, json_t *msg);
/* The exchange a request-related message should ride on, or NULL: the
 * session's only one, or (s NULL) the only one the shared channel `ch` is
 * working on. */
struct mg_exchange *mg_sole_exchange(struct mg_gateway *gw, struct mg_session *s,
                                     struct mg_channel *ch);

/* ---- notify.c ------------------------------------------------------------ */

/* Shared-mode subscription refcount of `uri` by `delta`: subscribes
 * upstream on the first, unsubscribes after the last. */
void mg_resource_ref(struct mg_route *r, const char *uri, int delta);
/* true when the session subscribed to `uri` (shared mode). */
bool mg_session_subscribed(struct mg_session *s, const char *uri);
/* Delivers a message to a session (its GET stream, else the replay ring). */
void mg_deliver_json(struct mg_session *s, json_t *msg);
/* A list_changed or resources/updated for the federated endpoint's sessions
 * and listeners. */
void mg_mcp_fed_notify(struct mg_route *fed, json_t *msg);

/* ---- legacy.c ------------------------------------------------------------ */

/* A POST in the legacy era: initialize, or a message of an existing session. */
void mg_handle_legacy(struct mg_gateway *gw, struct mg_http_req *req, struct mg_rpc_msg *msg,
                      struct mg_identity *id);
/* GET with Mcp-Session-Id: the session's stream. */
void mg_handle_get(struct mg_gateway *gw, struct mg_http_req *req, const char *identity);
/* DELETE with Mcp-Session-Id: ends the session. */
void mg_handle_delete(struct mg_gateway *gw, struct mg_http_req *req, const char *identity);
/* GET sse_path (2024-11-05 HTTP+SSE): opens a session and its stream. */
void mg_legacy_sse_open(struct mg_gateway *gw, struct mg_http_req *req, struct mg_identity *id);
/* POST messages_path (2024-11-05 HTTP+SSE): answered on the session's stream. */
void mg_legacy_sse_post(struct mg_gateway *gw, struct mg_http_req *req, struct mg_identity *id);

/* ---- modern.c ------------------------------------------------------------ */

/* A POST in the 2026-07-28 era. */
void mg_handle_modern(struct mg_gateway *gw, struct mg_http_req *req, struct mg_rpc_msg *msg,
                      struct mg_identity *id);

/* ---- federate.c ---------------------------------------------------------- */

/* server/discover on the federated endpoint. */
void mg_fed_discover(struct mg_gateway *gw, struct mg_http_req *req, struct mg_rpc_msg *msg,
                     struct mg_route *fed);
/* A request on the federated endpoint (both eras; `s` is the legacy
 * session or NULL): lists merged, calls routed to their server. */
void mg_fed_request(struct mg_gateway *gw, struct mg_http_req *req, struct mg_session *s,
                    struct mg_route *fed, struct mg_rpc_msg *msg, struct mg_identity *id,
                    bool modern);
/* The conversation of member `m` a client of era `modern` uses, and the
 * bridge; NULL when none is ready. */
struct mg_channel *mg_fed_channel(struct mg_route *m, bool modern, enum mg_bridge *bridge);

/* ---- mcp.c --------------------------------------------------------------- */

/* After authentication and the identity's limit: by HTTP method and path. */
void mg_dispatch_method(struct mg_gateway *gw, struct mg_http_req *req, struct mg_identity *id);
/* POST: content checks, parse, per-tool limit, then mg_continue_post. */
void mg_handle_post(struct mg_gateway *gw, struct mg_http_req *req, struct mg_identity *id);
/* The era of a parsed POST, then mg_handle_legacy or mg_handle_modern. */
void mg_continue_post(struct mg_gateway *gw, struct mg_http_req *req, struct mg_rpc_msg *msg,
                      struct mg_identity *id);

#endif
