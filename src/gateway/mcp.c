/*
 * mcp.c - the MCP endpoint's entry point: one pipeline for both protocol eras.
 *
 *   request → single headers → Origin/Host (access.c) → OPTIONS → draining
 *   → credentials in the query (access.c) → per-address limit (limit.c)
 *   → authenticate (access.c, may wait for JWKS/introspection)
 *   → identity limit (limit.c, may wait for Redis) → dispatch by HTTP method
 *   → POST: Content-Type, Accept, parse JSON-RPC (duplicate keys rejected,
 *     depth limited) → per-tool limit (limit.c) → era
 *   → legacy (legacy.c: sessions, the 2024-11-05 HTTP+SSE transport) or
 *     modern (modern.c: discover, listen, header checks)
 *   → authorize (authorize.c) → exchange (exchange.c) → channel → upstream
 *   reply ← id and progress token restored (exchange.c) ← channel
 *   notifications ← fanned out to sessions and listeners (notify.c)
 *
 * This file keeps the entry point (mg_mcp_handle), the per-method dispatch,
 * the POST body checks and the era choice, and the lifecycle hooks the
 * gateway calls at shutdown (in-flight counts, closing streams, aborting).
 * Helpers every phase shares are in pipeline.c; pipeline.h declares what
 * the phases' files call in one another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "gateway/internal.h"
#include "gateway/pipeline.h"
#include "ratelimit/ratelimit.h"

/* true when a media-type list (Accept) contains `type` or a wildcard. */
static bool accepts(const char *accept, const char *type)
{
	if (!accept)
		return true;
	size_t tl = strlen(type);
	const char *p = accept;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		size_t len = strcspn(p, ",;");
		const char *e = p + len;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		size_t n = (size_t)(e - p);
		if ((n == tl && strncasecmp(p, type, tl) == 0) ||
		    (n == 3 && memcmp(p, "*/*", 3) == 0))
			return true;
		const char *slash = memchr(p, '/', n);
		if (slash && (size_t)(e - slash) == 2 && slash[1] == '*' &&
		    strncasecmp(p, type, (size_t)(slash - p) + 1) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

static bool is_json_ctype(const char *ct)
{
	if (!ct)
		return false;
	size_t n = strcspn(ct, "; \t");
	return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* ---- HTTP methods --------------------------------------------------------------------- */

void mg_handle_post(struct mg_gateway *gw, struct mg_http_req *req, struct mg_identity *id)
{
	if (!is_json_ctype(mg_hdr(req, "Content-Type"))) {
		mg_reply_rpc_error(req, 415, NULL, MG_RPC_INVALID_REQUEST,
		                   "Unsupported Media Type: Content-Type must be application/json",
		                   NULL);
		return;
	}
	const char *accept = mg_hdr(req, "Accept");
	if (accept && !accepts(accept, "application/json") && !mg_accepts_sse(accept)) {
		mg_reply_rpc_error(req, 406, NULL, MG_RPC_INVALID_REQUEST,
		                   "Not Acceptable: Accept must include application/json and "
		                   "text/event-stream",
		                   NULL);
		return;
	}
	size_t len;
	const char *body = mg_http_req_body(req, &len);
	struct mg_rpc_msg msg;
	struct mg_rpc_fail fail;
	if (mg_rpc_parse(body, len, (size_t)gw->cfg->server.max_json_depth, true, &msg, &fail) <
	    0) {
		gw->errors_total++;
		mg_reply_rpc_error(req, 400, fail.id, fail.code, fail.message, NULL);
		json_decref(fail.id);
		return;
	}
	mg_obs_method(req, &msg);
	const struct mg_tool_limit_config *tl = mg_tool_limit(gw, &msg);
	if (tl) {
		struct mg_hold *h = calloc(1, sizeof *h);
		if (!h) {
			mg_rpc_msg_free(&msg);
			mg_reply_rpc_error(req, 503, NULL, MG_RPC_INTERNAL_ERROR, "out of memory",
			                   NULL);
			return;
		}
		/* The hold owns the parsed message until the decision. */
		*h = (struct mg_hold){ .gw = gw,
			               .req = req,
			               .id = mg_identity_ref(id),
			               .msg = msg,
			               .decided = mg_tool_decided };
		char key[800];
		int n = snprintf(key, sizeof key, "tool:%s:%s", id->key, tl->name);
		struct mg_rate r = { .per_second = tl->requests_per_second,
			             .burst = tl->burst_size };
		mg_hold_check(h, key, (size_t)(n < (int)sizeof key ? n : (int)sizeof key - 1), &r);
		return;
	}
	mg_continue_post(gw, req, &msg, id);
	mg_rpc_msg_free(&msg);
}

void mg_continue_post(struct mg_gateway *gw, struct mg_http_req *req, struct mg_rpc_msg *msg,
                      struct mg_identity *id)
{
	/* A session request without _meta stays legacy even if its version
	 * header names a future version: it gets the legacy "unsupported". */
	bool session_req =
	    mg_hdr(req, "Mcp-Session-Id") && msg->kind != MG_RPC_BATCH && !mg_mcp_meta_version(msg);
	if (!session_req && mg_mcp_era(msg, mg_hdr(req, "MCP-Protocol-Version")) == MG_ERA_MODERN)
		mg_handle_modern(gw, req, msg, id);
	else
		mg_handle_legacy(gw, req, msg, id);
}

static void handle_options(struct mg_gateway *gw, struct mg_http_req *req)
{
	struct mg_http_hdr h[8];
	size_t n = 0;
	mg_cors_headers(gw, req, h, &n);
	h[n++] = (struct mg_http_hdr){ "Allow", "GET, POST, DELETE, OPTIONS" };
	if (mg_hdr(req, "Origin") && mg_origin_allowed(gw, mg_hdr(req, "Origin"))) {
		h[n++] = (struct mg_http_hdr){ "Access-Control-Allow-Methods",
			                       "GET, POST, DELETE, OPTIONS" };
		h[n++] = (struct mg_http_hdr){
			"Access-Control-Allow-Headers",
			"Content-Type, Accept, Authorization, X-API-Key, Mcp-Session-Id, "
			"MCP-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID"
		};
		h[n++] = (struct mg_http_hdr){ "Access-Control-Max-Age", "600" };
	}
	mg_http_reply(req, 204, NULL, h, n, NULL, 0);
}

/* Headers that must appear at most once: with two, components could each
 * read a different one (the first for the check, the last for the use). */
static bool unique_headers_or_reply(struct mg_http_req *req)
{
	static const char *const single[] = { "Origin",
		                              "Host",
		                              "Authorization",
		                              "X-API-Key",
		                              "Mcp-Session-Id",
		                              "MCP-Protocol-Version",
		                              "Mcp-Method",
		                              "Mcp-Name",
		                              "Content-Type",
		                              "Last-Event-ID",
		                              "X-Client-Cert-CN",
		                              "X-Client-Cert-SAN-DNS",
		                              "X-Client-Cert-SAN-Email",
		                              "X-Client-Cert-Verified",
		                              NULL };
	if (mg_http_headers_distinct(mg_http_req_parser(req)))
		return true; /* no name twice: 14 lookups spared */
	for (size_t i = 0; single[i]; i++) {
		if (mg_http_req_header_count(req, single[i]) > 1) {
			char m[128];
			snprintf(m, sizeof m, "Bad Request: more than one %s header", single[i]);
			mg_reply_rpc_error(req, 400, NULL, MG_RPC_INVALID_REQUEST, m, NULL);
			return false;
		}
	}
	return true;
}

void mg_mcp_handle(struct mg_gateway *gw, struct mg_http_req *req)
{
	if (!unique_headers_or_reply(req) || !mg_check_origin_or_reply(gw, req))
		return;
	const char *method = mg_http_req_method(req);
	if (strcmp(method, "OPTIONS") == 0) {
		handle_options(gw, req);
		return;
	}
	if (gw->draining) {
		struct mg_http_hdr h[] = { { "Retry-After", "1" }, { "Connection", "close" } };
		json_t *e = mg_rpc_error_new(NULL, MG_RPC_INTERNAL_ERROR,
		                             "the gateway is shutting down", NULL);
		mg_reply_json(req, 503, e, h, 1);
		json_decref(e);
		return;
	}
	if (mg_query_has_credentials(mg_http_req_query(req))) {
		char challenge[1024];
		mg_auth_challenge(gw->auth, "invalid_request", challenge, sizeof challenge);
		struct mg_http_hdr h[5] = { { "WWW-Authenticate", challenge } };
		size_t n = 1;
		mg_cors_headers(gw, req, h, &n);
		json_t *e =
		    mg_rpc_error_new(NULL, MG_RPC_INVALID_REQUEST,
		                     "Bad Request: credentials in the URL are refused; send "
		                     "them in the Authorization header",
		                     NULL);
		mg_reply_json(req, 400, e, h, n);
		json_decref(e);
		return;
	}
	if (!mg_ip_limit_or_reply(gw, req))
		return;
	mg_authenticate_then_dispatch(gw, req);
}

void mg_dispatch_method(struct mg_gateway *gw, struct mg_http_req *req, struct mg_identity *id)
{
	const char *method = mg_http_req_method(req);
	const char *identity = id->key;
	const char *path = mg_http_req_path(req);
	if (strcmp(path, "/routes") == 0) {
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
			struct mg_http_hdr h[] = { { "Allow", "GET, HEAD" } };
			json_t *e = mg_rpc_error_new(NULL, MG_RPC_INVALID_REQUEST,
			                             "Method Not Allowed", NULL);
			mg_reply_json(req, 405, e, h, 1);
			json_decref(e);
			return;
		}
		json_t *o = json_pack("{s:o}", "routes", mg_routes_json(gw));
		struct mg_http_hdr h[] = { { "Cache-Control", "no-store" } };
		mg_reply_json(req, 200, o, h, 1);
		json_decref(o);
		return;
	}
	/* The endpoint's kind: kept by the router, else (the single upstream's
	 * paths) looked up unless it is the MCP path. */
	int kept = MG_EP_MCP;
	enum mg_ep_kind kind = MG_EP_MCP;
	if (mg_http_req_route(req, &kept))
		kind = (enum mg_ep_kind)kept;
	else if (gw->cfg->upstream.n_servers || strcmp(path, gw->cfg->server.mcp_path) != 0)
		mg_route_find(gw, path, &kind);
	if (kind != MG_EP_MCP) {
		/* The 2024-11-05 HTTP+SSE transport's two paths. */
		bool stream = kind == MG_EP_SSE;
		if (stream && strcmp(method, "GET") == 0)
			mg_legacy_sse_open(gw, req, id);
		else if (!stream && strcmp(method, "POST") == 0)
			mg_legacy_sse_post(gw, req, id);
		else {
			struct mg_http_hdr h[] = { { "Allow",
				                     stream ? "GET, OPTIONS" : "POST, OPTIONS" } };
			json_t *e = mg_rpc_error_new(NULL, MG_RPC_INVALID_REQUEST,
			                             "Method Not Allowed", NULL);
			mg_reply_json(req, 405, e, h, 1);
			json_decref(e);
		}
		return;
	}
	if (strcmp(method, "POST") == 0)
		mg_handle_post(gw, req, id);
	else if (strcmp(method, "GET") == 0)
		mg_handle_get(gw, req, identity);
	else if (strcmp(method, "DELETE") == 0)
		mg_handle_delete(gw, req, identity);
	else {
		struct mg_http_hdr h[] = { { "Allow", "GET, POST, DELETE, OPTIONS" } };
		json_t *e =
		    mg_rpc_error_new(NULL, MG_RPC_INVALID_REQUEST, "Method Not Allowed", NULL);
		mg_reply_json(req, 405, e, h, 1);
		json_decref(e);
	}
}

/* ---- lifecycle ------------------------------------------------------------------------ */

void mg_mcp_session_ended(struct mg_session *s)
{
	size_t i;
	json_t *v;
	if (!s->ch) {
		json_array_foreach(s->subscriptions, i, v)
		{
			mg_resource_ref(s->route, json_string_value(v), -1);
		}
	}
}

size_t mg_mcp_inflight(struct mg_gateway *gw)
{
	size_t n = 0;
	for (struct mg_hold *h = gw->holds; h; h = h->next)
		n++;
	for (struct mg_access *ac = gw->accesses; ac; ac = ac->next)
		n++;
	for (struct mg_exchange *x = gw->modern; x; x = x->next)
		n++;
	n += mg_fed_inflight(gw);
	for (size_t i = 0; i < gw->nbuckets; i++) {
		for (struct mg_session *s = gw->buckets[i]; s; s = s->next)
			n += s->n_exchanges + (s->init_req ? 1 : 0);
	}
	return n;
}

void mg_mcp_close_streams(struct mg_gateway *gw)
{
	for (size_t i = 0; i < gw->nbuckets; i++) {
		for (struct mg_session *s = gw->buckets[i]; s; s = s->next) {
			if (s->get.req) {
				mg_http_req_on_close(s->get.req, NULL, NULL);
				mg_stream_end(&s->get);
			}
		}
	}
	while (gw->listeners) {
		struct mg_listener *l = gw->listeners;
		/* A graceful end of a subscription is its (empty) result. */
		json_t *done = json_pack("{s:s,s:O,s:{s:s}}", "jsonrpc", "2.0", "id", l->sub_id,
		                         "result", "resultType", "complete");
		size_t len;
		char *text = mg_json_dump(done, &len);
		json_decref(done);
		struct mg_http_req *req = l->stream.req;
		if (req) {
			mg_http_req_on_close(req, NULL, NULL);
			if (!text || mg_stream_send(&l->stream, text, len) == 0)
				mg_stream_end(&l->stream);
		}
		free(text);
		mg_listener_free(l);
	}
}

void mg_mcp_abort_all(struct mg_gateway *gw, const char *why)
{
	while (gw->holds) {
		struct mg_hold *h = gw->holds;
		mg_ratelimiter_cancel(h->wait);
		mg_http_req_on_close(h->req, NULL, NULL);
		mg_reply_rpc_error(h->req, 503, h->msg.root ? h->msg.id : NULL,
		                   MG_RPC_INTERNAL_ERROR, why, NULL);
		mg_hold_free(h);
	}
	while (gw->accesses) {
		struct mg_access *ac = gw->accesses;
		mg_auth_cancel(ac->wait);
		mg_http_req_on_close(ac->req, NULL, NULL);
		struct mg_http_hdr h[] = { { "Retry-After", "1" } };
		json_t *e = mg_rpc_error_new(NULL, MG_RPC_INTERNAL_ERROR, why, NULL);
		mg_reply_json(ac->req, 503, e, h, 1);
		json_decref(e);
		mg_access_free(ac);
	}
	while (gw->modern)
		mg_exchange_abort(gw->modern, MG_RPC_INTERNAL_ERROR, why);
	mg_fed_abort_all(gw, why);
	for (size_t i = 0; i < gw->nbuckets; i++) {
		for (struct mg_session *s = gw->buckets[i]; s; s = s->next) {
			while (s->exchanges)
				mg_exchange_abort(s->exchanges, MG_RPC_INTERNAL_ERROR, why);
		}
	}
	mg_mcp_close_streams(gw);
}
