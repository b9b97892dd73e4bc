/*
 * upstream.c - what every transport shares: the upstream's own channels
 * (primary, shared, modern), the era probe's outcome, readiness and health.
 *
 * A transport (stdio.c, http.c) only knows how to carry messages for one
 * channel; it creates the upstream's own channels through ops->own_open and
 * this file decides what they become: the primary channel is probed with
 * server/discover; a legacy answer makes it the shared channel, a modern
 * one the modern channel, and then a second channel is opened for legacy
 * sessions (a dual-era server pins a conversation to the era of its first
 * message). A shared channel that the server refuses to initialize while
 * its modern sibling works means a modern-only server: legacy clients are
 * then bridged.
 */
#include <stdio.h>
#include <string.h>

#include "build-info.h"
#include "mcp/jsonrpc.h"
#include "mcp/protocol.h"
#include "upstream/upstream.h"
#include "util/log.h"

json_t *mg_upstream_gateway_init_params(void)
{
	return json_pack("{s:s,s:{},s:{s:s,s:s}}", "protocolVersion", MG_MCP_LATEST_LEGACY,
	                 "capabilities", "clientInfo", "name", "mcp-guard", "version", MG_VERSION);
}

static void update_ready(struct mg_upstream *up)
{
	bool was = up->ready;
	up->ready = (up->shared && up->shared->state == MG_CH_READY) ||
	            (up->modern && up->modern->state == MG_CH_READY);
	if (up->ready) {
		up->ever_ready = true;
		up->last_error[0] = '\0';
	}
	if (was != up->ready && up->hooks.on_state)
		up->hooks.on_state(up, up->hooks.arg);
}

static void own_ready(struct mg_channel *ch, json_t *result, void *arg);
static void own_down(struct mg_channel *ch, const char *reason, void *arg);
static void own_notification(struct mg_channel *ch, json_t *msg, void *arg);
static void own_request(struct mg_channel *ch, json_t *msg, void *arg);

struct mg_channel *mg_upstream_own_channel(struct mg_upstream *up, bool probe)
{
	struct mg_channel_hooks h = { .on_ready = own_ready,
		                      .on_down = own_down,
		                      .on_notification = own_notification,
		                      .on_request = own_request,
		                      .arg = up };
	/* The channel copies the hooks (cppcheck thinks it keeps the pointer). */
	// cppcheck-suppress returnDanglingLifetime
	return up->ops->own_open(up, &h, probe);
}

static void own_ready(struct mg_channel *ch, json_t *result, void *arg)
{
	struct mg_upstream *up = arg;
	if (up->ops->own_ready)
		up->ops->own_ready(up, ch);
	if (ch->modern) {
		json_t *info =
		    json_object_get(json_object_get(result, "_meta"), MG_MCP_META_SERVERINFO);
		mg_log_info("upstream %s ready: %s %s, protocol %s", up->cfg->name,
		            json_string_value(json_object_get(info, "name")) ?: "?",
		            json_string_value(json_object_get(info, "version")) ?: "?",
		            MG_MCP_MODERN_VERSION);
		up->modern = ch;
		if (up->shared == ch)
			up->shared = NULL;
		if (!up->shared && !up->legacy_unsupported) {
			/* A dual-era server pins a process to the era of its first
			 * message: legacy sessions need a process of their own. */
			struct mg_channel *l = mg_upstream_own_channel(up, false);
			if (l)
				up->shared = l;
		}
	} else {
		json_t *info = json_object_get(result, "serverInfo");
		mg_log_info("upstream %s ready: %s %s, protocol %s", up->cfg->name,
		            json_string_value(json_object_get(info, "name")) ?: "?",
		            json_string_value(json_object_get(info, "version")) ?: "?",
		            json_string_value(json_object_get(result, "protocolVersion")));
		up->shared = ch;
	}
	update_ready(up);
}

static void own_down(struct mg_channel *ch, const char *reason, void *arg)
{
	struct mg_upstream *up = arg;
	if (reason && !up->last_error[0])
		snprintf(up->last_error, sizeof up->last_error, "%s", reason);
	if (ch == up->shared && !ch->modern && up->modern && up->ops->own_alive(up, ch)) {
		/* The process is alive but refused initialize while its sibling
		 * speaks 2026-07-28: a modern-only server. Legacy clients are
		 * then bridged through the modern channel. */
		mg_log_info("upstream %s speaks only %s; legacy clients are bridged", up->cfg->name,
		            MG_MCP_MODERN_VERSION);
		up->legacy_unsupported = true;
		up->shared = NULL;
		up->last_error[0] = '\0';
		up->ops->close(up, ch);
	}
	update_ready(up);
}

static void own_notification(struct mg_channel *ch, json_t *msg, void *arg)
{
	struct mg_upstream *up = arg;
	if (up->hooks.on_notification)
		up->hooks.on_notification(up, ch, msg, up->hooks.arg);
}

/* The upstream's own channels do not advertise client capabilities (and a
 * modern server does not send requests at all), so a server→client request
 * here cannot be delivered to anyone: answer it. */
static void own_request(struct mg_channel *ch, json_t *msg, void *arg)
{
	(void)arg;
	json_t *e =
	    mg_rpc_error_new(json_object_get(msg, "id"), MG_RPC_METHOD_NOT_FOUND,
	                     "the gateway shares this server between clients and does not "
	                     "forward server-to-client requests (use mode = \"per_session\")",
	                     NULL);
	mg_channel_send(ch, e);
	json_decref(e);
}

json_t *mg_upstream_health(struct mg_upstream *up)
{
	const char *status = up->ready ? "up" : up->ever_ready ? "down" : "starting";
	const char *eras = up->modern && up->shared ? "dual"
	                   : up->modern             ? "modern"
	                   : up->shared             ? "legacy"
	                                            : "unknown";
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "name", up->cfg->name, "transport",
	                      mg_transport_name(up->cfg->transport), "mode",
	                      mg_stdio_mode_name(up->cfg->mode), "status", status, "eras", eras,
	                      "restarts", (json_int_t)up->restarts);
	if (up->modern && up->modern->discover_result && !(up->shared && up->shared->init_result)) {
		json_t *info = json_object_get(
		    json_object_get(up->modern->discover_result, "_meta"), MG_MCP_META_SERVERINFO);
		if (info)
			json_object_set(o, "server", info);
		json_object_set_new(o, "protocol_version", json_string(MG_MCP_MODERN_VERSION));
	}
	if (up->shared && up->shared->init_result) {
		json_t *info = json_object_get(up->shared->init_result, "serverInfo");
		if (info)
			json_object_set(o, "server", info);
		json_object_set(o, "protocol_version",
		                json_object_get(up->shared->init_result, "protocolVersion"));
	}
	if (up->last_error[0])
		json_object_set_new(o, "error", json_string(up->last_error));
	up->ops->health(up, o);
	return o;
}

struct mg_upstream *mg_upstream_new(struct event_base *base, const struct mg_upstream_config *cfg,
                                    const struct mg_upstream_hooks *hooks, size_t max_depth,
                                    char *err, size_t err_size)
{
	if (cfg->transport == MG_TRANSPORT_STDIO) {
		struct mg_upstream *up = mg_upstream_stdio_new(base, cfg, hooks, max_depth);
		if (!up)
			snprintf(err, err_size, "out of memory");
		return up;
	}
	return mg_upstream_http_new(base, cfg, hooks, max_depth, err, err_size);
}

void mg_upstream_forget_channel(struct mg_upstream *up, struct mg_channel *ch, bool dedicated)
{
	if (dedicated)
		up->dedicated--;
	if (up->shared == ch)
		up->shared = NULL;
	if (up->modern == ch)
		up->modern = NULL;
	if (up->primary == ch)
		up->primary = NULL;
}
