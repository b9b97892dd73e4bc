/*
 * route.c - the gateway's endpoints: one route per upstream.
 *
 * A route owns its upstream and what the pipeline keeps per upstream
 * (learned tool parameters, shared-mode subscription refcounts). The
 * single [upstream] form makes one route at server.mcp_path (and the
 * 2024-11-05 paths server.sse_path / server.messages_path). Each
 * [[upstream.servers]] entry makes a route at its path_prefix (and every
 * path below it), at <mcp_path>/<name>, and at <path_prefix><sse_path> /
 * <path_prefix><messages_path> for 2024-11-05 clients. The path table is
 * pathmap.c: exact paths first, then the longest prefix. Conflicts were
 * refused when the configuration was checked (file:line:col); the table
 * refuses them again as a last line.
 *
 * A session is created on one route and used only there (a session id of
 * /files presented on /github is "not found"); an exchange and a
 * subscriptions/listen stream remember their route, and an upstream's
 * notifications reach only the sessions and listeners of its route.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "gateway/internal.h"
#include "gateway/pathmap.h"
#include "gateway/pins.h"
#include "util/log.h"

static void on_upstream_state(struct mg_upstream *up, void *arg)
{
	struct mg_route *r = arg;
	struct mg_gateway *gw = r->gw;
	if (up->ready) {
		mg_mcp_upstream_ready(r);
		mg_fed_member_ready(r);
	} else if (gw->audit && !gw->draining) {
		struct mg_audit_event ev = { .type = MG_AUDIT_UPSTREAM_ERROR,
			                     .server = up->cfg->name,
			                     .success = 0,
			                     .message = "the upstream is down; restarting it",
			                     .duration_ms = -1 };
		mg_audit_emit(gw->audit, &ev);
	}
}

static void on_upstream_notification(struct mg_upstream *up, struct mg_channel *ch, json_t *msg,
                                     void *arg)
{
	(void)up;
	mg_mcp_upstream_notification(arg, ch, msg);
}

static void on_upstream_session_end(struct mg_upstream *up, struct mg_channel *ch,
                                    uint64_t duration_us, bool error, void *arg)
{
	(void)up;
	mg_obs_upstream_session_end(arg, ch, duration_us, error);
}

static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	/* "/" + "/sse" is "/sse", not "//sse". */
	if (la == 1 && a[0] == '/')
		la = 0;
	char *s = malloc(la + lb + 1);
	if (s) {
		memcpy(s, a, la);
		memcpy(s + la, b, lb + 1);
	}
	return s;
}

static void route_free(struct mg_route *r)
{
	if (!r)
		return;
	if (r->up)
		r->up->ops->free(r->up);
	free(r->path);
	free(r->alias);
	free(r->messages_path);
	json_decref(r->resource_refs);
	json_decref(r->tool_params);
	free(r);
}

static int table_add(struct mg_gateway *gw, const char *path, bool prefix, struct mg_route *r,
                     enum mg_ep_kind kind)
{
	if (mg_pathmap_add(gw->table, path, prefix, r, (int)kind) == 0)
		return 0;
	mg_log_error("upstream %s: the path %s is already served by another route", r->name, path);
	return -1;
}

/* Adds a route for `u` (several == [[upstream.servers]]). */
static int route_add(struct mg_gateway *gw, const struct mg_upstream_config *u, bool several)
{
	const struct mg_server_config *sc = &gw->cfg->server;
	struct mg_route *r = calloc(1, sizeof *r);
	if (!r)
		return -1;
	r->gw = gw;
	r->name = u->name;
	r->required = several ? u->required : true;
	r->resource_refs = json_object();
	r->tool_params = json_object();
	r->path = strdup(several ? u->path_prefix : sc->mcp_path);
	r->messages_path =
	    several ? join(u->path_prefix, sc->messages_path) : strdup(sc->messages_path);
	if (several) {
		char alias[512];
		snprintf(alias, sizeof alias, "%s/%s",
		         strcmp(sc->mcp_path, "/") == 0 ? "" : sc->mcp_path, u->name);
		r->alias = strdup(alias);
	}
	r->index = gw->n_routes;
	gw->routes[gw->n_routes++] = r; /* owned from here on */
	if (!r->resource_refs || !r->tool_params || !r->path || !r->messages_path ||
	    (several && !r->alias)) {
		mg_log_error("out of memory");
		return -1;
	}
	if (table_add(gw, r->path, several, r, MG_EP_MCP) < 0 ||
	    (r->alias && table_add(gw, r->alias, false, r, MG_EP_MCP) < 0))
		return -1;
	if (sc->legacy_sse) {
		char *sse = several ? join(u->path_prefix, sc->sse_path) : strdup(sc->sse_path);
		int rc = sse ? table_add(gw, sse, false, r, MG_EP_SSE) : -1;
		free(sse);
		if (rc < 0 || table_add(gw, r->messages_path, false, r, MG_EP_MESSAGES) < 0)
			return -1;
	}
	struct mg_upstream_hooks hooks = { .on_state = on_upstream_state,
		                           .on_notification = on_upstream_notification,
		                           .on_session_end = on_upstream_session_end,
		                           .arg = r };
	char err[400];
	r->up = mg_upstream_new(gw->base, u, &hooks, (size_t)sc->max_json_depth, err, sizeof err);
	if (!r->up || r->up->ops->start(r->up, err, sizeof err) < 0) {
		mg_log_error("upstream %s: %s", u->name, err);
		return -1;
	}
	return 0;
}

int mg_routes_start(struct mg_gateway *gw)
{
	const struct mg_upstream_config *ups;
	size_t n = mg_config_upstreams(gw->cfg, &ups);
	gw->routes = calloc(n ? n : 1, sizeof *gw->routes);
	gw->table = mg_pathmap_new();
	if (!gw->routes || !gw->table) {
		mg_log_error("out of memory");
		return -1;
	}
	if (gw->cfg->upstream.pins_file) {
		char err[400];
		gw->pins = mg_pins_open(gw->cfg->upstream.pins_file, err, sizeof err);
		if (!gw->pins) {
			mg_log_error("tool pinning: %s", err);
			return -1;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (route_add(gw, &ups[i], gw->cfg->upstream.n_servers > 0) < 0)
			return -1;
	}
	return mg_fed_start(gw);
}

struct mg_route *mg_route_find(struct mg_gateway *gw, const char *path, enum mg_ep_kind *kind)
{
	struct mg_pathmap_hit hit;
	if (!gw->table || !mg_pathmap_match(gw->table, path, &hit))
		return NULL;
	if (kind)
		*kind = (enum mg_ep_kind)hit.kind;
	return hit.value;
}

void mg_req_keep_route(struct mg_http_req *req, struct mg_route *r, enum mg_ep_kind kind)
{
	mg_http_req_set_route(req, r, (int)kind);
}

struct mg_route *mg_req_route(struct mg_gateway *gw, struct mg_http_req *req)
{
	/* The single [upstream] form: no lookup on the request path (the hot
	 * path). */
	if (gw->cfg->upstream.n_servers == 0)
		return gw->routes[0];
	/* Several: the router's match, kept with the request; a lookup only
	 * for a request that did not come through it. */
	struct mg_route *r = mg_http_req_route(req, NULL);
	return r ? r : mg_route_find(gw, mg_http_req_path(req), NULL);
}

void mg_routes_stop(struct mg_gateway *gw)
{
	for (size_t i = 0; i < gw->n_routes; i++) {
		if (gw->routes[i]->up)
			gw->routes[i]->up->ops->stop(gw->routes[i]->up);
	}
}

bool mg_routes_idle(struct mg_gateway *gw)
{
	for (size_t i = 0; i < gw->n_routes; i++) {
		struct mg_upstream *up = gw->routes[i]->up;
		if (up && !up->ops->idle(up))
			return false;
	}
	return true;
}

void mg_routes_free(struct mg_gateway *gw)
{
	mg_fed_free(gw);
	mg_pins_free(gw->pins);
	gw->pins = NULL;
	for (size_t i = 0; i < gw->n_routes; i++)
		route_free(gw->routes[i]);
	free(gw->routes);
	gw->routes = NULL;
	gw->n_routes = 0;
	mg_pathmap_free(gw->table);
	gw->table = NULL;
}

json_t *mg_routes_json(struct mg_gateway *gw)
{
	json_t *a = json_array();
	for (size_t i = 0; i < gw->n_routes; i++) {
		struct mg_route *r = gw->routes[i];
		json_t *paths = json_array();
		json_array_append_new(paths, json_string(r->path));
		if (r->alias)
			json_array_append_new(paths, json_string(r->alias));
		struct mg_upstream *up = r->up;
		const char *state = !up              ? "stopped"
		                    : up->ready      ? "up"
		                    : up->ever_ready ? "down"
		                                     : "starting";
		json_t *o = json_pack("{s:s,s:o,s:s,s:s,s:b}", "name", r->name, "paths", paths,
		                      "transport", up ? mg_transport_name(up->cfg->transport) : "?",
		                      "state", state, "required", r->required);
		if (r->federated)
			json_object_set_new(o, "federated", json_true());
		json_array_append_new(a, o);
	}
	if (gw->fed) {
		/* The federated endpoint: up when every member is, degraded when
		 * some are, down when none is. */
		json_t *members = json_array();
		size_t up = 0, n = 0;
		for (size_t i = 0; i < gw->n_routes; i++) {
			if (!gw->routes[i]->federated)
				continue;
			n++;
			up += gw->routes[i]->up->ready;
			json_array_append_new(members, json_string(gw->routes[i]->name));
		}
		json_array_append_new(
		    a, json_pack("{s:s,s:[s],s:s,s:s,s:o,s:s}", "name", gw->fed->name, "paths",
		                 gw->fed->path, "transport", "federation", "state",
		                 up == n ? "up"
		                 : up    ? "degraded"
		                         : "down",
		                 "servers", members, "tool_separator",
		                 gw->cfg->upstream.tool_separator ? gw->cfg->upstream.tool_separator
		                                                  : "__"));
	}
	return a;
}

/* ---- tool pinning ------------------------------------------------------------------------ */

static void on_pin_change(void *arg, const char *server, const char *tool, const char *old_hash,
                          const char *new_hash)
{
	struct mg_gateway *gw = arg;
	if (gw->audit)
		mg_audit_tool_definition_changed(gw->audit, server, tool, old_hash, new_hash);
}

bool mg_route_pins(const struct mg_route *r)
{
	return r->gw->pins && r->up && r->up->cfg->tool_pinning != MG_PINNING_OFF;
}

bool mg_route_learned(const struct mg_route *r, const uint8_t digest[32])
{
	for (unsigned i = 0; i < r->n_learned; i++)
		if (memcmp(r->tools_learned[i], digest, 32) == 0)
			return true;
	return false;
}

void mg_route_learned_add(struct mg_route *r, const uint8_t digest[32])
{
	memcpy(r->tools_learned[r->next_learned], digest, 32);
	r->next_learned = (r->next_learned + 1) % MG_ROUTE_LEARNED;
	if (r->n_learned < MG_ROUTE_LEARNED)
		r->n_learned++;
}

void mg_route_pin_tools(struct mg_route *r, json_t *tools)
{
	struct mg_gateway *gw = r->gw;
	if (!mg_route_pins(r) || !json_is_array(tools))
		return;
	mg_pins_filter(gw->pins, r->name, (int)r->up->cfg->tool_pinning, tools, (int64_t)time(NULL),
	               on_pin_change, gw);
}

bool mg_route_tool_blocked(struct mg_route *r, const char *tool)
{
	struct mg_gateway *gw = r->gw;
	return gw->pins && r->up && tool && r->up->cfg->tool_pinning == MG_PINNING_BLOCK &&
	       mg_pins_pending(gw->pins, r->name, tool);
}
