/*
 * modern.c - the 2026-07-28 protocol era: no sessions. Every request is
 * checked against its headers (Mcp-Method, Mcp-Name, MCP-Protocol-Version,
 * Mcp-Param-* from learned x-mcp-header annotations), authorized, then
 * answered by the gateway (server/discover; subscriptions/listen in front
 * of a legacy upstream, a struct mg_listener) or forwarded as an exchange,
 * bridged when the upstream is legacy.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "gateway/internal.h"
#include "gateway/pipeline.h"
#include "mcp/params.h"

static const char *req_header(void *ctx, const char *name)
{
	return mg_http_req_header(ctx, name);
}

/* ---- modern era ----------------------------------------------------------------------- */

static void modern_discover(struct mg_gateway *gw, struct mg_http_req *req, struct mg_rpc_msg *msg)
{
	struct mg_upstream *up = mg_req_route(gw, req)->up;
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
		mg_resource_ref(l->route, json_string_value(v), -1);
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
	struct mg_route *route = mg_req_route(gw, req);
	struct mg_upstream *up = route->up;
	if (!mg_accepts_sse(mg_hdr(req, "Accept"))) {
		mg_reply_rpc_error(req, 406, msg->id, MG_RPC_INVALID_REQUEST,
		                   "subscriptions/listen answers with a stream: Accept must "
		                   "include text/event-stream",
		                   NULL);
		return;
	}
	json_t *want = msg->params ? json_object_get(msg->params, "notifications") : NULL;
	/* Federated: what any server can produce. */
	json_t *fed = up ? NULL : mg_fed_handshake(route);
	json_t *caps = fed ? json_object_get(fed, "capabilities")
	               : up && up->shared && up->shared->init_result
	                   ? json_object_get(up->shared->init_result, "capabilities")
	                   : NULL;
	struct mg_listener *l = calloc(1, sizeof *l);
	if (!l) {
		json_decref(fed);
		mg_reply_rpc_error(req, 503, msg->id, MG_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	l->gw = gw;
	l->route = route;
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
			mg_resource_ref(route, json_string_value(v), +1);
		}
		json_object_set(ack, "resourceSubscriptions", l->uris);
	}
	json_decref(fed);
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
	struct mg_route *route = mg_req_route(gw, req);
	if (strcmp(msg->method, "tools/call") == 0) {
		/* Mcp-Param-* headers against the body, from the tool's x-mcp-header
		 * annotations (learned from tools/list answers). */
		json_t *name = json_object_get(msg->params, "name");
		json_t *spec = json_is_string(name)
		                   ? json_object_get(route->tool_params, json_string_value(name))
		                   : NULL;
		if (spec && mg_mcp_params_check(spec, json_object_get(msg->params, "arguments"),
		                                req_header, req, &rej) < 0) {
			mg_reply_rpc_error(req, rej.http_status, msg->id, rej.code, rej.message,
			                   NULL);
			return;
		}
	}
	if (strcmp(msg->method, "server/discover") == 0) {
		if (route->up)
			modern_discover(gw, req, msg);
		else
			mg_fed_discover(gw, req, msg, route);
		return;
	}
	struct mg_upstream *up = route->up;
	if (!up) {
		if (strcmp(msg->method, "subscriptions/listen") == 0)
			modern_listen(gw, req, msg);
		else
			mg_fed_request(gw, req, NULL, route, msg, id, true);
		return;
	}
	if (strcmp(msg->method, "subscriptions/listen") == 0 && !up->modern) {
		/* The gateway holds the subscription for a legacy upstream. */
		modern_listen(gw, req, msg);
		return;
	}
	if (up->modern)
		mg_exchange_start(gw, req, NULL, route, up->modern, msg, true, MG_BRIDGE_NONE, id);
	else
		mg_exchange_start(gw, req, NULL, route, up->shared, msg, true, MG_BRIDGE_TO_LEGACY,
		                  id);
}
