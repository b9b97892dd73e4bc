/*
 * mcp.c - the MCP endpoint: one pipeline for both protocol eras.
 *
 *   request → Origin/Host checks → authenticate (ACCESS) → parse JSON-RPC
 *   (duplicate keys rejected, depth limited) → era → modern header checks
 *   → session (legacy) → exchange → channel → upstream
 *   reply ← id and progress token restored ← channel
 *
 * An exchange answers with JSON unless something must be streamed before
 * the response (progress, a server→client request, a log message while it
 * is the only request in flight): then it switches to SSE. Closing the
 * response (or the connection) cancels the request upstream. Every request
 * has a deadline (upstream.request_timeout_secs or server.request_timeout_secs)
 * after which it is cancelled upstream and answered with an error.
 *
 * In shared mode the gateway answers initialize itself from the upstream's
 * own initialize result, handles logging/setLevel per session and
 * refcounts resource subscriptions; in per_session mode the client talks to
 * its own process and everything is forwarded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "gateway/internal.h"
#include "gateway/pipeline.h"
#include "mcp/params.h"
#include "ratelimit/ratelimit.h"

static const char *req_header(void *ctx, const char *name)
{
	return mg_http_req_header(ctx, name);
}

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

/* ---- modern era ----------------------------------------------------------------------- */

static void modern_discover(struct mg_gateway *gw, struct mg_http_req *req, struct mg_rpc_msg *msg)
{
	struct mg_upstream *up = gw->up;
	if (up->modern && up->modern->state == MG_CH_READY && up->modern->discover_result) {
		/* The server's own answer; the versions are the gateway's, which
		 * bridges legacy clients too. */
		json_t *result = json_deep_copy(up->modern->discover_result);
		json_object_set_new(result, "supportedVersions", mg_mcp_versions_json());
		mg_reply_result(gw, req, msg->id, result, true);
		return;
	}
	if (!up->ready || !up->shared || !up->shared->init_result) {
		struct mg_http_hdr h[] = { { "Retry-After", "1" } };
		json_t *e = mg_rpc_error_new(msg->id, MG_RPC_INTERNAL_ERROR,
		                             "the upstream is not ready yet; retry shortly", NULL);
		mg_reply_json(req, 503, e, h, 1);
		json_decref(e);
		return;
	}
	json_t *ur = up->shared->init_result;
	json_t *caps = json_deep_copy(json_object_get(ur, "capabilities"));
	if (!json_is_object(caps)) {
		json_decref(caps);
		caps = json_object();
	}
	json_t *result =
	    json_pack("{s:s,s:o,s:o,s:{s:O}}", "resultType", "complete", "supportedVersions",
	              mg_mcp_versions_json(), "capabilities", caps, "_meta", MG_MCP_META_SERVERINFO,
	              json_object_get(ur, "serverInfo") ?: json_object());
	json_t *instr = json_object_get(ur, "instructions");
	if (json_is_string(instr))
		json_object_set(result, "instructions", instr);
	json_object_set_new(result, "ttlMs", json_integer(0));
	json_object_set_new(result, "cacheScope", json_string("private"));
	mg_reply_result(gw, req, msg->id, result, true);
}

void mg_listener_free(struct mg_listener *l)
{
	struct mg_gateway *gw = l->gw;
	if (l->prev)
		l->prev->next = l->next;
	else
		gw->listeners = l->next;
	if (l->next)
		l->next->prev = l->prev;
	size_t i;
	json_t *v;
	json_array_foreach(l->uris, i, v)
	{
		mg_resource_ref(gw, json_string_value(v), -1);
	}
	mg_stream_detach(&l->stream);
	json_decref(l->uris);
	json_decref(l->sub_id);
	free(l);
}

static void on_listener_close(struct mg_http_req *req, void *arg)
{
	struct mg_listener *l = arg;
	(void)req;
	mg_listener_free(l);
}

static void modern_listen(struct mg_gateway *gw, struct mg_http_req *req, struct mg_rpc_msg *msg)
{
	struct mg_upstream *up = gw->up;
	if (!mg_accepts_sse(mg_hdr(req, "Accept"))) {
		mg_reply_rpc_error(req, 406, msg->id, MG_RPC_INVALID_REQUEST,
		                   "subscriptions/listen answers with a stream: Accept must "
		                   "include text/event-stream",
		                   NULL);
		return;
	}
	json_t *want = msg->params ? json_object_get(msg->params, "notifications") : NULL;
	json_t *caps = up->shared && up->shared->init_result
	                   ? json_object_get(up->shared->init_result, "capabilities")
	                   : NULL;
	struct mg_listener *l = calloc(1, sizeof *l);
	if (!l) {
		mg_reply_rpc_error(req, 503, msg->id, MG_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	l->gw = gw;
	l->sub_id = json_incref(msg->id);
	json_t *ack = json_object();
	/* Acknowledge only what the upstream can actually produce. */
	struct {
		const char *field, *cap;
		bool *flag;
	} kinds[] = { { "toolsListChanged", "tools", &l->tools },
		      { "promptsListChanged", "prompts", &l->prompts },
		      { "resourcesListChanged", "resources", &l->resources } };
	for (size_t i = 0; i < 3; i++) {
		bool asked = json_is_true(json_object_get(want, kinds[i].field));
		bool can = json_is_true(
		    json_object_get(json_object_get(caps, kinds[i].cap), "listChanged"));
		if (asked && can) {
			*kinds[i].flag = true;
			json_object_set_new(ack, kinds[i].field, json_true());
		}
	}
	json_t *uris = json_object_get(want, "resourceSubscriptions");
	bool can_sub =
	    json_is_true(json_object_get(json_object_get(caps, "resources"), "subscribe"));
	if (json_is_array(uris) && can_sub) {
		l->uris = json_array();
		size_t i;
		json_t *v;
		json_array_foreach(uris, i, v)
		{
			if (!json_is_string(v))
				continue;
			json_array_append(l->uris, v);
			mg_resource_ref(gw, json_string_value(v), +1);
		}
		json_object_set(ack, "resourceSubscriptions", l->uris);
	}
	l->next = gw->listeners;
	if (gw->listeners)
		gw->listeners->prev = l;
	gw->listeners = l;
	mg_stream_begin(&l->stream, gw, req, 0, NULL, 0);
	mg_http_req_on_close(req, on_listener_close, l);
	json_t *n = json_pack("{s:s,s:s,s:{s:{s:O},s:o}}", "jsonrpc", "2.0", "method",
	                      "notifications/subscriptions/acknowledged", "params", "_meta",
	                      MG_MCP_META_SUBSCRIPTION, l->sub_id, "notifications", ack);
	size_t len;
	char *text = mg_json_dump(n, &len);
	json_decref(n);
	if (text && mg_stream_send(&l->stream, text, len) < 0)
		mg_listener_free(l);
	free(text);
}

void mg_handle_modern(struct mg_gateway *gw, struct mg_http_req *req, struct mg_rpc_msg *msg,
                      struct mg_identity *id)
{
	struct mg_mcp_headers h = {
		.protocol_version = mg_hdr(req, "MCP-Protocol-Version"),
		.method = mg_hdr(req, "Mcp-Method"),
		.name = mg_hdr(req, "Mcp-Name"),
		.session_id = mg_hdr(req, "Mcp-Session-Id") != NULL,
	};
	if (msg->kind == MG_RPC_BATCH) {
		mg_reply_rpc_error(
		    req, 400, NULL, MG_RPC_INVALID_REQUEST,
		    "batches are not part of protocol version " MG_MCP_MODERN_VERSION, NULL);
		return;
	}
	if (msg->kind == MG_RPC_RESPONSE || msg->kind == MG_RPC_ERROR) {
		mg_reply_rpc_error(
		    req, 400, NULL, MG_RPC_INVALID_REQUEST,
		    "clients do not send responses in protocol version " MG_MCP_MODERN_VERSION,
		    NULL);
		return;
	}
	struct mg_mcp_reject rej;
	if (mg_mcp_check_modern(msg, &h, &rej) < 0) {
		mg_reply_rpc_error(req, rej.http_status, msg->id, rej.code, rej.message, rej.data);
		return;
	}
	if (msg->kind == MG_RPC_NOTIFICATION) {
		mg_reply_accepted(gw, req);
		return;
	}
	if (!mg_authorize_or_reply(gw, req, id, msg))
		return;
	if (strcmp(msg->method, "tools/call") == 0) {
		/* Mcp-Param-* headers against the body, from the tool's x-mcp-header
		 * annotations (learned from tools/list answers). */
		json_t *name = json_object_get(msg->params, "name");
		json_t *spec = json_is_string(name)
		                   ? json_object_get(gw->tool_params, json_string_value(name))
		                   : NULL;
		if (spec && mg_mcp_params_check(spec, json_object_get(msg->params, "arguments"),
		                                req_header, req, &rej) < 0) {
			mg_reply_rpc_error(req, rej.http_status, msg->id, rej.code, rej.message,
			                   NULL);
			return;
		}
	}
	if (strcmp(msg->method, "server/discover") == 0) {
		modern_discover(gw, req, msg);
		return;
	}
	struct mg_upstream *up = gw->up;
	if (strcmp(msg->method, "subscriptions/listen") == 0 && !up->modern) {
		/* The gateway holds the subscription for a legacy upstream. */
		modern_listen(gw, req, msg);
		return;
	}
	if (up->modern)
		mg_exchange_start(gw, req, NULL, up->modern, msg, true, MG_BRIDGE_NONE, id);
	else
		mg_exchange_start(gw, req, NULL, up->shared, msg, true, MG_BRIDGE_TO_LEGACY, id);
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
	if (strcmp(path, gw->cfg->server.mcp_path) != 0) {
		/* The 2024-11-05 HTTP+SSE transport's two paths. */
		bool stream = strcmp(path, gw->cfg->server.sse_path) == 0;
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
			mg_resource_ref(s->gw, json_string_value(v), -1);
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
	for (size_t i = 0; i < gw->nbuckets; i++) {
		for (struct mg_session *s = gw->buckets[i]; s; s = s->next) {
			while (s->exchanges)
				mg_exchange_abort(s->exchanges, MG_RPC_INTERNAL_ERROR, why);
		}
	}
	mg_mcp_close_streams(gw);
}
