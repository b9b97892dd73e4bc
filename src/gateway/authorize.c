/*
 * authorize.c - the MCP endpoint's AUTHZ phase: the exact tool, prompt or
 * resource name the upstream would see, checked against the identity's
 * lists (authz/) for both eras. A refusal never reaches the upstream and
 * hides what the identity may not see ("Unknown tool"), except when a JWT
 * scope would grant the tool: then 403 insufficient_scope names it.
 */
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "authz/authz.h"
#include "gateway/internal.h"
#include "gateway/pipeline.h"
#include "util/log.h"

/* MCP phase, authorization: the exact name the upstream will see, against
 * the identity's lists. A refusal never reaches the upstream. Hidden things
 * stay hidden (the answer is "unknown tool"), except when a JWT scope
 * would grant the tool: then 403 insufficient_scope names that scope, so
 * the client can ask its authorization server for it. */
bool mg_authorize_or_reply(struct mg_gateway *gw, struct mg_http_req *req, struct mg_identity *id,
                           struct mg_rpc_msg *msg)
{
	struct mg_authz_target t;
	if (msg->kind != MG_RPC_REQUEST)
		return true;
	if (mg_authz_target(msg, &t) < 0) {
		mg_reply_rpc_error(
		    req, 200, msg->id, MG_RPC_INVALID_PARAMS,
		    "Invalid params: the tool, prompt or resource must be named by a "
		    "string",
		    NULL);
		return false;
	}
	/* With several upstreams, names are seen on a route: a server's own
	 * endpoint, or the federated one (the owner from the name's prefix or
	 * the resource's URI). */
	struct mg_route *r = mg_req_route(gw, req);
	struct mg_authz_scope sc = { .sep = gw->cfg->upstream.tool_separator };
	if (r && r->up)
		sc.server = r->name;
	else if (r && t.kind == MG_AUTHZ_RESOURCE) {
		struct mg_route *owner = mg_fed_owner(r, t.name);
		sc.server = owner ? owner->name : NULL;
		sc.federated = true;
	} else if (r && t.kind != MG_AUTHZ_NONE) {
		const char *at = sc.sep ? strstr(t.name, sc.sep) : NULL;
		for (size_t i = 0; at && i < gw->n_routes; i++) {
			const char *n = gw->routes[i]->name;
			if (gw->routes[i]->federated && strlen(n) == (size_t)(at - t.name) &&
			    memcmp(n, t.name, strlen(n)) == 0)
				sc.server = n;
		}
		sc.federated = true;
	}
	t.scope = &sc;
	if (mg_authz_permits(id, &t))
		return true;
	gw->denied_total++;
	mg_obs_outcome(req, MG_MS_DENIED);
	static const char *const kinds[] = { "", "tool", "resource", "prompt" };
	if (gw->audit) {
		char target[256], m[64];
		snprintf(target, sizeof target, "%.*s", (int)(t.len > 255 ? 255 : t.len), t.name);
		snprintf(m, sizeof m, "%s not allowed for this identity", kinds[t.kind]);
		mg_pipeline_audit_req(gw, req, MG_AUDIT_AUTHZ_DENIED, id, msg->method, target, 0,
		                      m);
	}
	mg_log_info("authz: %s %.*s denied to %s", kinds[t.kind], (int)(t.len > 200 ? 200 : t.len),
	            t.name, id->key);
	char scopes[512];
	const struct mg_config *acfg = mg_auth_config(gw->auth);
	if (t.kind == MG_AUTHZ_TOOL && strcmp(id->provider, "jwt") == 0 &&
	    mg_authz_scopes_granting(&acfg->auth.jwt.scope_tool_mapping, t.name, t.len, scopes,
	                             sizeof scopes)) {
		char challenge[1200], m[300];
		mg_auth_challenge_scope(gw->auth, "insufficient_scope", scopes, challenge,
		                        sizeof challenge);
		snprintf(m, sizeof m, "Forbidden: tool %.*s needs scope %.150s",
		         (int)(t.len > 100 ? 100 : t.len), t.name, scopes);
		struct mg_http_hdr h[] = { { "WWW-Authenticate", challenge } };
		json_t *e = mg_rpc_error_new(msg->id, MG_RPC_INVALID_PARAMS, m, NULL);
		mg_reply_json(req, 403, e, h, 1);
		json_decref(e);
		return false;
	}
	char m[300];
	snprintf(m, sizeof m, "%s: %.*s",
	         t.kind == MG_AUTHZ_TOOL     ? "Unknown tool"
	         : t.kind == MG_AUTHZ_PROMPT ? "Unknown prompt"
	                                     : "Resource not found",
	         (int)(t.len > 200 ? 200 : t.len), t.name);
	mg_reply_rpc_error(req, 200, msg->id, MG_RPC_INVALID_PARAMS, m, NULL);
	return false;
}
