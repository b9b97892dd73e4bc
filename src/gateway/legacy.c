/*
 * legacy.c - the legacy (2025-xx) protocol era: sessions. initialize
 * creates a session bound to the caller's identity; in shared mode (or
 * through a modern-only upstream, bridged) the gateway answers it from the
 * upstream's own handshake, handles logging/setLevel per session and
 * refcounts resource subscriptions; in per_session mode the client talks
 * to its own process (hooks on its dedicated channel) and everything is
 * forwarded. Also: notifications and responses from the client, a session's
 * GET stream and DELETE, and the 2024-11-05 HTTP+SSE client transport (GET
 * sse_path opens a session and its stream; POSTs to messages_path are
 * answered on that stream).
 */
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "gateway/internal.h"
#include "gateway/pipeline.h"
#include "mcp/sse.h"
#include "util/log.h"

/* Per-session (dedicated channel) hooks. */
/* The session `sid` when it exists and was created on the request's
 * route; a session of another endpoint does not exist here. */
static struct mg_session *route_session(struct mg_gateway *gw, struct mg_http_req *req,
                                        const char *sid)
{
	struct mg_session *s = mg_session_find(gw, sid);
	return s && s->route == mg_req_route(gw, req) ? s : NULL;
}

static void session_ready(struct mg_channel *ch, json_t *result, void *arg)
{
	struct mg_session *s = arg;
	(void)ch;
	if (!s->init_req)
		return; /* a restart replayed the handshake */
	struct mg_http_req *req = s->init_req;
	s->init_req = NULL;
	mg_http_req_on_close(req, NULL, NULL);
	const char *pv = json_string_value(json_object_get(result, "protocolVersion"));
	snprintf(s->protocol_version, sizeof s->protocol_version, "%s", pv ? pv : "");
	json_t *resp =
	    json_pack("{s:s,s:O,s:O}", "jsonrpc", "2.0", "id", s->init_id, "result", result);
	struct mg_http_hdr h[4];
	size_t n = 0;
	h[n++] = (struct mg_http_hdr){ "Mcp-Session-Id", s->id };
	mg_cors_headers(s->gw, req, h, &n);
	mg_reply_json(req, 200, resp, h, n);
	json_decref(resp);
	mg_session_touch(s);
}

static void session_down(struct mg_channel *ch, const char *reason, void *arg)
{
	struct mg_session *s = arg;
	if (!s->init_req) {
		/* Pending calls already failed. A process restarts; a remote
		 * session that the server forgot (CLOSED) does not come back: end
		 * ours too, so the client is answered 404 and initializes again.
		 * Not from inside the channel's callback: on the next loop turn. */
		if (ch->state == MG_CH_CLOSED && !s->ended) {
			mg_log_info("session %.8s…: %s; the session ends", s->id, reason);
			struct timeval now = { 0, 0 };
			evtimer_add(s->idle, &now);
		}
		return;
	}
	struct mg_http_req *req = s->init_req;
	s->init_req = NULL;
	mg_http_req_on_close(req, NULL, NULL);
	char m[400];
	snprintf(m, sizeof m, "the upstream could not be started: %.300s", reason);
	mg_reply_rpc_error(req, 502, s->init_id, MG_RPC_INTERNAL_ERROR, m, NULL);
	/* Do not end the session from inside the channel's callback: let the
	 * idle timer do it on the next loop turn. */
	s->initialized = false;
	struct timeval now = { 0, 0 };
	evtimer_add(s->idle, &now);
}

static void session_notification(struct mg_channel *ch, json_t *msg, void *arg)
{
	struct mg_session *s = arg;
	(void)ch;
	const char *method = json_string_value(json_object_get(msg, "method"));
	if (method && strcmp(method, "notifications/message") == 0) {
		struct mg_exchange *x = mg_sole_exchange(s->gw, s, NULL);
		if (x && mg_exchange_push(x, msg))
			return;
	}
	mg_deliver_json(s, msg);
}

static void session_request(struct mg_channel *ch, json_t *msg, void *arg)
{
	struct mg_session *s = arg;
	(void)ch;
	struct mg_exchange *x = mg_sole_exchange(s->gw, s, NULL);
	if (x && mg_exchange_push(x, msg))
		return;
	mg_deliver_json(s, msg);
}

/* ---- legacy era ---------------------------------------------------------------------- */

static void legacy_initialize(struct mg_gateway *gw, struct mg_http_req *req,
                              struct mg_rpc_msg *msg, const char *identity,
                              struct mg_session *existing)
{
	if (existing && (existing->initialized || existing->init_req || existing->ch ||
	                 existing->protocol_version[0])) {
		mg_reply_rpc_error(req, 400, msg->id, MG_RPC_INVALID_REQUEST,
		                   "this session is already initialized", NULL);
		return;
	}
	if (mg_hdr(req, "Mcp-Session-Id")) {
		mg_reply_rpc_error(req, 400, msg->id, MG_RPC_INVALID_REQUEST,
		                   "initialize must not carry an Mcp-Session-Id header", NULL);
		return;
	}
	json_t *pv = msg->params ? json_object_get(msg->params, "protocolVersion") : NULL;
	if (!json_is_string(pv)) {
		mg_reply_rpc_error(req, 400, msg->id, MG_RPC_INVALID_PARAMS,
		                   "initialize needs params.protocolVersion (a string)", NULL);
		return;
	}
	const char *version = mg_mcp_legacy_supported(json_string_value(pv)) ? json_string_value(pv)
	                                                                     : MG_MCP_LATEST_LEGACY;
	/* 2024-11-05 is the HTTP+SSE transport's own revision: spoken there
	 * only (Streamable HTTP began with 2025-03-26). */
	if (existing && strcmp(json_string_value(pv), "2024-11-05") == 0)
		version = "2024-11-05";
	struct mg_route *route = mg_req_route(gw, req);
	struct mg_upstream *up = route->up;
	/* Shared mode, or a modern-only upstream (bridged): the gateway answers
	 * from the upstream's own handshake (initialize or server/discover).
	 * Federated: from the union of the servers' (federate.c). */
	json_t *fed = up ? NULL : mg_fed_handshake(route);
	bool bridge = up && up->legacy_unsupported;
	bool answer_here = !up || up->cfg->mode == MG_STDIO_SHARED || bridge;
	json_t *ur = fed, *dr = NULL;
	if (!up)
		;
	else if (bridge && up->modern && up->modern->state == MG_CH_READY)
		dr = up->modern->discover_result;
	else if (!bridge && up->shared && up->shared->state == MG_CH_READY)
		ur = up->shared->init_result;
	if (answer_here && !ur && !dr) {
		struct mg_http_hdr h[] = { { "Retry-After", "1" } };
		json_t *e = mg_rpc_error_new(msg->id, MG_RPC_INTERNAL_ERROR,
		                             "the upstream is not ready yet; retry shortly",
		                             json_pack("{s:s}", "mcpGuard", "upstream_not_ready"));
		mg_reply_json(req, 503, e, h, 1);
		json_decref(e);
		return;
	}
	struct mg_session *s = existing ? existing : mg_session_new(gw, route, identity);
	if (!s) {
		struct mg_http_hdr h[] = { { "Retry-After", "5" } };
		json_t *e = mg_rpc_error_new(msg->id, MG_RPC_INTERNAL_ERROR,
		                             "too many sessions (server.max_sessions)", NULL);
		mg_reply_json(req, 503, e, h, 1);
		json_decref(e);
		json_decref(fed);
		return;
	}
	snprintf(s->protocol_version, sizeof s->protocol_version, "%s", version);
	if (answer_here) {
		json_t *src = ur ? ur : dr;
		json_t *info =
		    ur ? json_object_get(ur, "serverInfo")
		       : json_object_get(json_object_get(dr, "_meta"), MG_MCP_META_SERVERINFO);
		json_t *caps = json_object_get(src, "capabilities");
		json_t *result = json_pack("{s:s,s:o,s:o}", "protocolVersion", version,
		                           "capabilities", caps ? json_incref(caps) : json_object(),
		                           "serverInfo", info ? json_incref(info) : json_object());
		json_t *instr = json_object_get(src, "instructions");
		if (json_is_string(instr))
			json_object_set(result, "instructions", instr);
		if (bridge || fed) {
			/* Bridged calls (every call of a federated session may be)
			 * carry the client's info and capabilities. */
			s->bridged = bridge;
			json_t *ci = json_object_get(msg->params, "clientInfo");
			json_t *cc = json_object_get(msg->params, "capabilities");
			s->client_info = json_is_object(ci) ? json_incref(ci) : NULL;
			s->client_caps = json_is_object(cc) ? json_incref(cc) : NULL;
		}
		json_t *resp =
		    json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", msg->id, "result", result);
		struct mg_http_hdr h[4];
		size_t n = 0;
		h[n++] = (struct mg_http_hdr){ "Mcp-Session-Id", s->id };
		mg_cors_headers(gw, req, h, &n);
		mg_reply_json(req, 200, resp, h, n);
		json_decref(resp);
		json_decref(fed);
		return;
	}
	/* per_session: the client's own initialize goes to its own process. */
	json_t *params = json_deep_copy(msg->params);
	json_object_set_new(params, "protocolVersion", json_string(version));
	struct mg_channel_hooks hooks = { .on_ready = session_ready,
		                          .on_down = session_down,
		                          .on_notification = session_notification,
		                          .on_request = session_request,
		                          .arg = s };
	char err[400];
	s->ch = up->ops->open(up, params, &hooks, s->identity, err, sizeof err);
	if (!s->ch) {
		mg_session_end(s, err, MG_ET_UNAVAILABLE);
		struct mg_http_hdr h[] = { { "Retry-After", "5" } };
		json_t *e = mg_rpc_error_new(msg->id, MG_RPC_INTERNAL_ERROR, err, NULL);
		mg_reply_json(req, 503, e, h, 1);
		json_decref(e);
		return;
	}
	s->init_req = req;
	s->init_id = json_incref(msg->id);
	mg_session_init_wait(s, req);
}

static void legacy_notification(struct mg_gateway *gw, struct mg_http_req *req,
                                struct mg_session *s, struct mg_rpc_msg *msg)
{
	if (strcmp(msg->method, "notifications/initialized") == 0) {
		/* The gateway already completed the upstream's handshake. */
		s->initialized = true;
	} else if (strcmp(msg->method, "notifications/cancelled") == 0) {
		json_t *rid = msg->params ? json_object_get(msg->params, "requestId") : NULL;
		for (struct mg_exchange *x = s->exchanges; x; x = x->next) {
			if (!mg_rpc_id_equal(x->orig_id, rid))
				continue;
			json_t *reason = json_object_get(msg->params, "reason");
			mg_channel_cancel(&x->call, json_is_string(reason)
			                                ? json_string_value(reason)
			                                : "cancelled by the client");
			/* The client will not read an answer; end the HTTP exchange. */
			struct mg_http_req *xr = x->req;
			x->req = NULL;
			if (xr) {
				mg_http_req_on_close(xr, NULL, NULL);
				if (x->sse)
					mg_stream_end(&x->stream);
				else
					mg_reply_rpc_error(xr, 200, x->orig_id,
					                   MG_RPC_INTERNAL_ERROR,
					                   "request cancelled by the client", NULL);
			}
			mg_exchange_free(x);
			break;
		}
	} else if (s->ch) {
		mg_channel_send(s->ch, msg->root);
	}
	s->initialized = true;
	mg_reply_accepted(gw, req);
}

static void legacy_request(struct mg_gateway *gw, struct mg_http_req *req, struct mg_session *s,
                           struct mg_rpc_msg *msg, struct mg_identity *id)
{
	const char *m = msg->method;
	if (strcmp(m, "initialize") == 0) {
		mg_reply_rpc_error(req, 400, msg->id, MG_RPC_INVALID_REQUEST,
		                   "the session is already initialized", NULL);
		return;
	}
	if (strcmp(m, "ping") == 0) {
		mg_reply_result(gw, req, msg->id, json_object(), false);
		return;
	}
	if (!s->ch) {
		/* Shared mode: per-session state the shared process cannot keep. */
		if (strcmp(m, "logging/setLevel") == 0) {
			json_t *lv = msg->params ? json_object_get(msg->params, "level") : NULL;
			int idx = mg_pipeline_log_level_index(json_string_value(lv));
			if (idx < 0) {
				mg_reply_rpc_error(req, 200, msg->id, MG_RPC_INVALID_PARAMS,
				                   "params.level must be a syslog level name",
				                   NULL);
				return;
			}
			s->log_level = idx;
			mg_reply_result(gw, req, msg->id, json_object(), false);
			return;
		}
		bool sub = strcmp(m, "resources/subscribe") == 0;
		if (sub || strcmp(m, "resources/unsubscribe") == 0) {
			json_t *uri = msg->params ? json_object_get(msg->params, "uri") : NULL;
			if (!json_is_string(uri)) {
				mg_reply_rpc_error(req, 200, msg->id, MG_RPC_INVALID_PARAMS,
				                   "params.uri must be a string", NULL);
				return;
			}
			const char *u = json_string_value(uri);
			bool had = s->subscriptions && mg_session_subscribed(s, u);
			if (sub && !had) {
				if (!s->subscriptions)
					s->subscriptions = json_array();
				json_array_append(s->subscriptions, uri);
				mg_resource_ref(s->route, u, +1);
			} else if (!sub && had) {
				size_t i;
				json_t *v;
				json_array_foreach(s->subscriptions, i, v)
				{
					if (strcmp(json_string_value(v), u) == 0) {
						json_array_remove(s->subscriptions, i);
						break;
					}
				}
				mg_resource_ref(s->route, u, -1);
			}
			mg_reply_result(gw, req, msg->id, json_object(), false);
			return;
		}
	}
	if (!s->up)
		mg_fed_request(gw, req, s, s->route, msg, id, false);
	else if (s->bridged)
		mg_exchange_start(gw, req, s, s->route, s->up->modern, msg, false,
		                  MG_BRIDGE_TO_MODERN, id);
	else
		mg_exchange_start(gw, req, s, s->route, s->ch ? s->ch : s->up->shared, msg, false,
		                  MG_BRIDGE_NONE, id);
}

/* ---- the 2024-11-05 HTTP+SSE transport (clients) ------------------------------------- */

/* The value of `name` in a query string, copied into `out`; false when
 * absent or too long. */
static bool query_param(const char *q, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name);
	while (q && *q) {
		size_t n = strcspn(q, "&");
		if (n > nl && q[nl] == '=' && strncmp(q, name, nl) == 0) {
			size_t vl = n - nl - 1;
			if (vl >= size)
				return false;
			memcpy(out, q + nl + 1, vl);
			out[vl] = '\0';
			return true;
		}
		q += n;
		if (*q == '&')
			q++;
	}
	return false;
}

static bool is_messages_path(struct mg_gateway *gw, struct mg_http_req *req)
{
	struct mg_route *r = mg_req_route(gw, req);
	return gw->cfg->server.legacy_sse && r &&
	       strcmp(mg_http_req_path(req), r->messages_path) == 0;
}

/* The HTTP+SSE session a POST to messages_path names, when it exists,
 * speaks that transport and belongs to `identity`; else NULL. */
static struct mg_session *sse_session(struct mg_gateway *gw, struct mg_http_req *req,
                                      const char *identity)
{
	char sid[MG_SESSION_ID_LEN + 2];
	if (!is_messages_path(gw, req) ||
	    !query_param(mg_http_req_query(req), "sessionId", sid, sizeof sid))
		return NULL;
	struct mg_session *s = route_session(gw, req, sid);
	if (!s || !s->legacy_sse || strcmp(s->identity, identity) != 0)
		return NULL;
	return s;
}

/* GET sse_path: a session bound to the caller, its stream, and the
 * endpoint event naming where to POST. */
void mg_legacy_sse_open(struct mg_gateway *gw, struct mg_http_req *req, struct mg_identity *id)
{
	if (!mg_accepts_sse(mg_hdr(req, "Accept"))) {
		mg_reply_rpc_error(req, 406, NULL, MG_RPC_INVALID_REQUEST,
		                   "Not Acceptable: Accept must include text/event-stream", NULL);
		return;
	}
	struct mg_session *s = mg_session_new(gw, mg_req_route(gw, req), id->key);
	if (!s) {
		struct mg_http_hdr h[] = { { "Retry-After", "5" } };
		json_t *e = mg_rpc_error_new(NULL, MG_RPC_INTERNAL_ERROR,
		                             "too many sessions (server.max_sessions)", NULL);
		mg_reply_json(req, 503, e, h, 1);
		json_decref(e);
		return;
	}
	s->legacy_sse = true;
	mg_session_open_get(s, req, NULL);
	if (!s->get.req)
		return;
	char url[MG_SESSION_ID_LEN + 512];
	snprintf(url, sizeof url, "%s?sessionId=%s", s->route->messages_path, s->id);
	struct mg_buf b;
	mg_buf_init(&b, 0);
	mg_sse_encode(&b, NULL, "endpoint", url, strlen(url));
	if (mg_http_stream_send(s->get.req, b.data, b.len) < 0)
		mg_stream_detach(&s->get);
	mg_buf_free(&b);
}

/* The answer to a POST on messages_path travels on the session's stream;
 * the POST itself gets 202. An HTTP-level refusal without a request id
 * (unparseable body, wrong content type) stays on the POST. */
static bool on_sse_divert(struct mg_http_req *req, int status, const char *body, size_t len,
                          void *arg)
{
	struct mg_gateway *gw = arg;
	if (len == 0)
		return true;
	char sid[MG_SESSION_ID_LEN + 2];
	struct mg_session *s = NULL;
	if (query_param(mg_http_req_query(req), "sessionId", sid, sizeof sid))
		s = mg_session_find(gw, sid);
	if (!s || !s->get.req)
		return false;
	if (status >= 400) {
		json_t *m = json_loadb(body, len, 0, NULL);
		bool has_id =
		    m && json_object_get(m, "id") && !json_is_null(json_object_get(m, "id"));
		json_decref(m);
		if (!has_id)
			return false;
	}
	mg_session_deliver(s, body, len);
	return true;
}

void mg_legacy_sse_post(struct mg_gateway *gw, struct mg_http_req *req, struct mg_identity *id)
{
	if (!sse_session(gw, req, id->key)) {
		/* Unknown, ended, or someone else's: the same answer. */
		mg_reply_rpc_error(req, 404, NULL, MG_RPC_INVALID_REQUEST,
		                   "Session not found (it ended or never existed); open "
		                   "the SSE stream again",
		                   NULL);
		return;
	}
	mg_http_req_divert(req, on_sse_divert, gw);
	mg_handle_post(gw, req, id);
}

void mg_handle_legacy(struct mg_gateway *gw, struct mg_http_req *req, struct mg_rpc_msg *msg,
                      struct mg_identity *id)
{
	const char *identity = id->key;
	if (msg->kind == MG_RPC_BATCH) {
		mg_reply_rpc_error(req, 400, NULL, MG_RPC_INVALID_REQUEST,
		                   "JSON-RPC batches are not supported by this gateway", NULL);
		return;
	}
	/* A 2024-11-05 HTTP+SSE client names its session in the query. */
	struct mg_session *sse = sse_session(gw, req, identity);
	if (msg->kind == MG_RPC_REQUEST && strcmp(msg->method, "initialize") == 0) {
		legacy_initialize(gw, req, msg, identity, sse);
		return;
	}
	const char *sid = sse ? sse->id : mg_hdr(req, "Mcp-Session-Id");
	if (!sid) {
		mg_reply_rpc_error(
		    req, 400, msg->id, MG_RPC_INVALID_REQUEST,
		    "Bad Request: Mcp-Session-Id header is required (send initialize "
		    "first)",
		    NULL);
		return;
	}
	struct mg_session *s = route_session(gw, req, sid);
	/* A session belongs to the identity that created it; to anyone else it
	 * does not exist. */
	if (!s || strcmp(s->identity, identity) != 0) {
		mg_reply_rpc_error(
		    req, 404, msg->id, MG_RPC_INVALID_REQUEST,
		    "Session not found (it ended or never existed); initialize again", NULL);
		return;
	}
	const char *pv = mg_hdr(req, "MCP-Protocol-Version");
	if (pv && !mg_mcp_legacy_supported(pv)) {
		char m[160];
		snprintf(m, sizeof m, "Bad Request: unsupported MCP-Protocol-Version \"%.40s\"",
		         pv);
		mg_reply_rpc_error(req, 400, msg->id, MG_RPC_INVALID_REQUEST, m,
		                   json_pack("{s:o}", "supported", mg_mcp_versions_json()));
		return;
	}
	if (s->init_req) {
		mg_reply_rpc_error(req, 409, msg->id, MG_RPC_INVALID_REQUEST,
		                   "the session is still initializing", NULL);
		return;
	}
	mg_session_touch(s);
	switch (msg->kind) {
	case MG_RPC_NOTIFICATION:
		legacy_notification(gw, req, s, msg);
		break;
	case MG_RPC_RESPONSE:
	case MG_RPC_ERROR:
		/* An answer to a server→client request (per_session only). */
		if (s->ch)
			mg_channel_send(s->ch, msg->root);
		mg_reply_accepted(gw, req);
		break;
	case MG_RPC_REQUEST:
		if (mg_authorize_or_reply(gw, req, id, msg))
			legacy_request(gw, req, s, msg, id);
		break;
	case MG_RPC_BATCH:
		break;
	}
}

void mg_handle_get(struct mg_gateway *gw, struct mg_http_req *req, const char *identity)
{
	const char *sid = mg_hdr(req, "Mcp-Session-Id");
	if (!sid) {
		struct mg_http_hdr h[] = { { "Allow", "POST, DELETE" } };
		json_t *e = mg_rpc_error_new(NULL, MG_RPC_INVALID_REQUEST,
		                             "Method Not Allowed: GET needs an Mcp-Session-Id "
		                             "(legacy sessions); protocol " MG_MCP_MODERN_VERSION
		                             " uses subscriptions/listen",
		                             NULL);
		mg_reply_json(req, 405, e, h, 1);
		json_decref(e);
		return;
	}
	if (!mg_accepts_sse(mg_hdr(req, "Accept"))) {
		mg_reply_rpc_error(req, 406, NULL, MG_RPC_INVALID_REQUEST,
		                   "Not Acceptable: Accept must include text/event-stream", NULL);
		return;
	}
	struct mg_session *s = route_session(gw, req, sid);
	if (!s || strcmp(s->identity, identity) != 0) {
		mg_reply_rpc_error(req, 404, NULL, MG_RPC_INVALID_REQUEST, "Session not found",
		                   NULL);
		return;
	}
	const char *pv = mg_hdr(req, "MCP-Protocol-Version");
	if (pv && !mg_mcp_legacy_supported(pv)) {
		mg_reply_rpc_error(req, 400, NULL, MG_RPC_INVALID_REQUEST,
		                   "Bad Request: unsupported MCP-Protocol-Version", NULL);
		return;
	}
	mg_session_touch(s);
	mg_session_open_get(s, req, mg_hdr(req, "Last-Event-ID"));
}

void mg_handle_delete(struct mg_gateway *gw, struct mg_http_req *req, const char *identity)
{
	const char *sid = mg_hdr(req, "Mcp-Session-Id");
	if (!sid) {
		struct mg_http_hdr h[] = { { "Allow", "POST" } };
		json_t *e =
		    mg_rpc_error_new(NULL, MG_RPC_INVALID_REQUEST,
		                     "Method Not Allowed: DELETE needs an Mcp-Session-Id", NULL);
		mg_reply_json(req, 405, e, h, 1);
		json_decref(e);
		return;
	}
	struct mg_session *s = route_session(gw, req, sid);
	if (!s || strcmp(s->identity, identity) != 0) {
		mg_reply_rpc_error(req, 404, NULL, MG_RPC_INVALID_REQUEST, "Session not found",
		                   NULL);
		return;
	}
	mg_session_end(s, "deleted by the client", MG_ET_NONE);
	struct mg_http_hdr h[4];
	size_t n = 0;
	mg_cors_headers(gw, req, h, &n);
	mg_http_reply(req, 204, NULL, h, n, NULL, 0);
}
