/*
 * notify.c - upstream → clients: notifications from the shared and modern
 * channels fanned out to legacy sessions (GET streams) and modern
 * subscriptions/listen streams, log messages delivered only when they can
 * be attributed to one client's request, and, in shared mode, resource
 * subscriptions refcounted across sessions and listeners (subscribe on the
 * first, unsubscribe after the last, renewed when the process restarts).
 */
#include <stdlib.h>
#include <string.h>

#include "gateway/internal.h"
#include "gateway/pipeline.h"
#include "util/log.h"

/* ---- shared-mode resource subscriptions ------------------------------------------------ */

struct fire_call {
	struct mg_call call;
};

static void on_fire_reply(struct mg_call *call, json_t *msg, void *arg)
{
	(void)msg;
	(void)arg;
	free(call);
}

/* Sends a request on behalf of the gateway itself; the answer is ignored. */
static void fire_and_forget(struct mg_channel *ch, const char *method, json_t *params)
{
	struct fire_call *f = calloc(1, sizeof *f);
	json_t *msg = json_pack("{s:s,s:i,s:s,s:o}", "jsonrpc", "2.0", "id", 0, "method", method,
	                        "params", params);
	if (!f || !msg || !ch || mg_channel_request(ch, &f->call, msg) < 0) {
		free(f);
		json_decref(msg);
		return;
	}
	f->call.on_reply = on_fire_reply;
	json_decref(msg);
}

void mg_resource_ref(struct mg_route *r, const char *uri, int delta)
{
	/* Federated: counted on the server that owns the URI. */
	if (!r->up && !(r = mg_fed_owner(r, uri)))
		return;
	json_t *n = json_object_get(r->resource_refs, uri);
	json_int_t count = (n ? json_integer_value(n) : 0) + delta;
	if (count < 0)
		count = 0;
	if (count == 0)
		json_object_del(r->resource_refs, uri);
	else
		json_object_set_new(r->resource_refs, uri, json_integer(count));
	if ((delta > 0 && count == 1) || (delta < 0 && count == 0))
		fire_and_forget(r->up->shared,
		                delta > 0 ? "resources/subscribe" : "resources/unsubscribe",
		                json_pack("{s:s}", "uri", uri));
}

void mg_mcp_upstream_ready(struct mg_route *r)
{
	/* A restarted process lost its subscriptions: renew them. */
	const char *uri;
	json_t *v;
	json_object_foreach(r->resource_refs, uri, v)
	{
		(void)v;
		fire_and_forget(r->up->shared, "resources/subscribe",
		                json_pack("{s:s}", "uri", uri));
	}
}

bool mg_session_subscribed(struct mg_session *s, const char *uri)
{
	size_t i;
	json_t *v;
	json_array_foreach(s->subscriptions, i, v)
	{
		if (strcmp(json_string_value(v), uri) == 0)
			return true;
	}
	return false;
}

/* ---- upstream → clients ------------------------------------------------------------- */

void mg_deliver_json(struct mg_session *s, json_t *msg)
{
	size_t len;
	char *text = mg_json_dump(msg, &len);
	if (text)
		mg_session_deliver(s, text, len);
	free(text);
}

static void listeners_notify(struct mg_route *r, const char *method, json_t *msg)
{
	const char *uri = json_string_value(json_object_get(json_object_get(msg, "params"), "uri"));
	for (struct mg_listener *l = r->gw->listeners, *next; l; l = next) {
		next = l->next;
		if (l->route != r && !(r->federated && l->route == r->gw->fed))
			continue;
		bool want =
		    (l->tools && strcmp(method, "notifications/tools/list_changed") == 0) ||
		    (l->prompts && strcmp(method, "notifications/prompts/list_changed") == 0) ||
		    (l->resources && strcmp(method, "notifications/resources/list_changed") == 0);
		if (!want && uri && l->uris &&
		    strcmp(method, "notifications/resources/updated") == 0) {
			size_t i;
			json_t *v;
			json_array_foreach(l->uris, i, v)
			{
				if (strcmp(json_string_value(v), uri) == 0)
					want = true;
			}
		}
		if (!want)
			continue;
		json_t *copy = json_deep_copy(msg);
		json_t *params = json_object_get(copy, "params");
		if (!json_is_object(params)) {
			params = json_object();
			json_object_set_new(copy, "params", params);
		}
		json_t *meta = json_object_get(params, "_meta");
		if (!json_is_object(meta)) {
			meta = json_object();
			json_object_set_new(params, "_meta", meta);
		}
		json_object_set(meta, MG_MCP_META_SUBSCRIPTION, l->sub_id);
		size_t len;
		char *text = mg_json_dump(copy, &len);
		json_decref(copy);
		if (text && mg_stream_send(&l->stream, text, len) < 0) {
			/* The client stopped reading; on_listener_close will not run. */
			mg_listener_free(l);
		}
		free(text);
	}
}

/* A log message may ride on a modern request only if that request asked for
 * this level (2026-07-28: never without _meta logLevel). */
static bool log_allowed(const struct mg_exchange *x, int lvl)
{
	if (x->modern)
		return x->log_level >= 0 && lvl >= 0 && lvl <= x->log_level;
	/* Legacy: the session's logging/setLevel, when it set one (shared mode
	 * keeps it in the gateway). */
	return !x->session || x->session->log_level < 0 ||
	       (lvl >= 0 && lvl <= x->session->log_level);
}

/* The only modern exchange in flight on `ch`, or NULL. */
static struct mg_exchange *sole_on_channel(struct mg_gateway *gw, struct mg_channel *ch)
{
	struct mg_exchange *only = NULL;
	for (struct mg_exchange *x = gw->modern; x; x = x->next) {
		if (x->ch != ch || x->listen)
			continue;
		if (only)
			return NULL;
		only = x;
	}
	return only;
}

static void fan_out(struct mg_route *r, const char *method, json_t *msg);

void mg_mcp_upstream_notification(struct mg_route *r, struct mg_channel *ch, json_t *msg)
{
	struct mg_gateway *gw = r->gw;
	const char *method = json_string_value(json_object_get(msg, "method"));
	if (!method)
		return;
	json_t *params = json_object_get(msg, "params");
	int lvl = mg_pipeline_log_level_index(json_string_value(json_object_get(params, "level")));
	if (ch && ch == r->up->modern) {
		/* A modern server relates log messages to a request only by
		 * timing on stdio; subscription notifications were routed by
		 * their subscriptionId already. */
		struct mg_exchange *x = sole_on_channel(gw, ch);
		if (strcmp(method, "notifications/message") == 0 && x && log_allowed(x, lvl))
			mg_exchange_push(x, msg);
		else
			mg_log_debug("modern upstream notification %s not forwarded", method);
		return;
	}
	if (strcmp(method, "notifications/message") == 0) {
		/* A shared process serves many tenants: a log message reaches a
		 * client only when it can be attributed to that client's request.
		 * Otherwise it goes to the gateway's own log, never to others. */
		struct mg_exchange *x = mg_sole_exchange(gw, NULL, r->up->shared);
		if (x && log_allowed(x, lvl) && mg_exchange_push(x, msg))
			return;
		json_t *data = json_object_get(params, "data");
		char *text = data ? mg_json_dump(data, NULL) : NULL;
		mg_log_debug("upstream %s log (%s, not attributable to one client): %.300s",
		             r->name, json_string_value(json_object_get(params, "level")),
		             text ? text : "");
		free(text);
		return;
	}
	bool list = strstr(method, "/list_changed") != NULL;
	bool updated = strcmp(method, "notifications/resources/updated") == 0;
	if (!list && !updated) {
		mg_log_debug("upstream notification %s not forwarded in shared mode", method);
		return;
	}
	fan_out(r, method, msg);
}

/* list_changed to every session of the route (and of the federated
 * endpoint when the route is a member), resources/updated to those that
 * subscribed the URI; then the listen streams. */
static void fan_out(struct mg_route *r, const char *method, json_t *msg)
{
	struct mg_gateway *gw = r->gw;
	bool list = strstr(method, "/list_changed") != NULL;
	const char *uri = json_string_value(json_object_get(json_object_get(msg, "params"), "uri"));
	for (size_t i = 0; i < gw->nbuckets; i++) {
		for (struct mg_session *s = gw->buckets[i]; s; s = s->next) {
			if (!s->initialized ||
			    (s->route != r && !(r->federated && s->route == gw->fed)))
				continue;
			if (list || (uri && mg_session_subscribed(s, uri)))
				mg_deliver_json(s, msg);
		}
	}
	listeners_notify(r, method, msg);
}

void mg_mcp_fed_notify(struct mg_route *fed, json_t *msg)
{
	const char *method = json_string_value(json_object_get(msg, "method"));
	if (method)
		fan_out(fed, method, msg);
}
