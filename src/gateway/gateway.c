/*
 * gateway.c - process lifecycle, routing and health endpoints.
 *
 * One event_base runs everything. Startup: upstream first (its command is
 * checked before we listen), then the listener. SIGTERM/SIGINT begin a
 * graceful shutdown: stop accepting, end idle connections and GET/listen
 * streams, let in-flight requests finish for server.shutdown_grace_secs,
 * answer what is left with an error, stop the upstream processes (stdin
 * close, SIGTERM, SIGKILL) and leave the loop once they are reaped. A
 * second signal skips the grace period.
 */
#include "gateway/gateway.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "build-info.h"
#include "config/checks.h"
#include "gateway/internal.h"
#include "gateway/pipeline.h"
#include "gateway/oauth.h"
#include "gateway/pins.h"
#include "http/client.h"
#include "ratelimit/ratelimit.h"
#include "upstream/process.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/sdnotify.h"

#define STOP_WAIT_SECS 8

void mg_reply_json(struct mg_http_req *req, int status, json_t *body,
                   const struct mg_http_hdr *hdrs, size_t n)
{
	size_t len = 0;
	char *text = body ? mg_json_dump(body, &len) : NULL;
	mg_obs_answer(req, body);
	mg_http_reply(req, status, "application/json", hdrs, n, text ? text : "", len);
	free(text);
}

void mg_reply_rpc_error(struct mg_http_req *req, int status, json_t *id, int code,
                        const char *message, json_t *data)
{
	json_t *e = mg_rpc_error_new(id, code, message, data);
	mg_reply_json(req, status, e, NULL, 0);
	json_decref(e);
}

/* Bodies for errors the HTTP layer answers by itself. */
static void error_body(int status, const char *reason, struct mg_buf *out, const char **ctype)
{
	char msg[200];
	snprintf(msg, sizeof msg, "%s", reason);
	if (msg[0] >= 'a' && msg[0] <= 'z')
		msg[0] = (char)(msg[0] - 32);
	json_t *e =
	    mg_rpc_error_new(NULL, status >= 500 ? MG_RPC_INTERNAL_ERROR : MG_RPC_INVALID_REQUEST,
	                     msg, json_pack("{s:i}", "httpStatus", status));
	size_t len;
	char *text = mg_json_dump(e, &len);
	json_decref(e);
	if (text)
		mg_buf_append(out, text, len);
	free(text);
	*ctype = "application/json";
}

/* ---- health -------------------------------------------------------------------------- */

static json_t *upstreams_json(struct mg_gateway *gw)
{
	json_t *a = json_array();
	for (size_t i = 0; i < gw->n_routes; i++) {
		json_t *h = mg_upstream_health(gw->routes[i]->up);
		json_object_set_new(h, "required", json_boolean(gw->routes[i]->required));
		if (gw->routes[i]->federated) {
			json_t *f = json_pack("{s:I}", "list_failures",
			                      (json_int_t)gw->routes[i]->fed_failures);
			if (gw->routes[i]->fed_last_error[0])
				json_object_set_new(f, "last_error",
				                    json_string(gw->routes[i]->fed_last_error));
			json_object_set_new(h, "federation", f);
		}
		json_array_append_new(a, h);
	}
	return a;
}

/* The upstreams' state for /health: starting while a required one never
 * came up, ok when all are up, degraded otherwise. */
static const char *upstreams_status(struct mg_gateway *gw)
{
	bool all_up = true;
	for (size_t i = 0; i < gw->n_routes; i++) {
		struct mg_route *r = gw->routes[i];
		if (r->required && !r->up->ever_ready)
			return "starting";
		all_up = all_up && r->up->ready;
	}
	return all_up ? "ok" : "degraded";
}

/* The first required upstream that is not ready, or NULL. */
static struct mg_route *unready_route(struct mg_gateway *gw)
{
	for (size_t i = 0; i < gw->n_routes; i++) {
		if (gw->routes[i]->required && !gw->routes[i]->up->ready)
			return gw->routes[i];
	}
	return NULL;
}

static void handle_health(struct mg_gateway *gw, struct mg_http_req *req)
{
	const char *status = gw->draining ? "draining" : upstreams_status(gw);
	json_t *o =
	    json_pack("{s:s,s:s,s:I,s:o,s:I,s:I,s:I}", "status", status, "version", MG_VERSION,
	              "uptime_secs", (json_int_t)(time(NULL) - gw->started), "upstreams",
	              upstreams_json(gw), "sessions", (json_int_t)gw->nsessions, "connections",
	              (json_int_t)mg_http_server_connections(gw->http), "requests_in_flight",
	              (json_int_t)mg_mcp_inflight(gw));
	json_object_set_new(
	    o, "requests",
	    json_pack("{s:I,s:I,s:I,s:I}", "forwarded", (json_int_t)gw->requests_total, "malformed",
	              (json_int_t)gw->errors_total, "denied", (json_int_t)gw->denied_total,
	              "rate_limited", (json_int_t)gw->limited_total));
	if (gw->rl) {
		struct mg_ratelimiter_state st;
		mg_ratelimiter_state(gw->rl, &st);
		json_object_set_new(
		    o, "rate_limit",
		    json_pack("{s:s,s:b,s:I,s:I,s:I,s:I}", "store",
		              st.redis_configured ? (st.redis_up ? "redis" : "memory (redis down)")
		                                  : "memory",
		              "redis_up", st.redis_up, "allowed", (json_int_t)st.allowed, "refused",
		              (json_int_t)st.refused, "fallbacks", (json_int_t)st.fallbacks, "keys",
		              (json_int_t)st.memory_keys));
	}
	struct mg_http_hdr h[] = { { "Cache-Control", "no-store" } };
	mg_reply_json(req, 200, o, h, 1);
	json_decref(o);
}

static void handle_ready(struct mg_gateway *gw, struct mg_http_req *req)
{
	struct mg_route *down = gw->draining ? NULL : unready_route(gw);
	bool ready = !gw->draining && !down;
	json_t *o;
	char why[400];
	if (ready)
		o = json_pack("{s:s}", "status", "ready");
	else {
		if (gw->draining)
			snprintf(why, sizeof why, "shutting down");
		else if (gw->n_routes == 1)
			snprintf(why, sizeof why, "%s",
			         down->up->last_error[0] ? down->up->last_error
			                                 : "upstream not initialized yet");
		else
			snprintf(why, sizeof why, "upstream %s: %s", down->name,
			         down->up->last_error[0] ? down->up->last_error
			                                 : "not initialized yet");
		o = json_pack("{s:s,s:s}", "status", "not ready", "reason", why);
	}
	struct mg_http_hdr h[] = { { "Cache-Control", "no-store" } };
	mg_reply_json(req, ready ? 200 : 503, o, h, 1);
	json_decref(o);
}

/* RFC 9728 protected resource metadata (public: any origin may read it). */
static void handle_resource_metadata(struct mg_gateway *gw, struct mg_http_req *req)
{
	json_t *m = mg_auth_resource_metadata(gw->auth);
	if (!m) {
		mg_reply_rpc_error(req, 404, NULL, MG_RPC_INVALID_REQUEST,
		                   "Not Found: no OAuth-style authentication is configured", NULL);
		return;
	}
	struct mg_http_hdr h[] = { { "Access-Control-Allow-Origin", "*" },
		                   { "Cache-Control", "max-age=300" } };
	mg_reply_json(req, 200, m, h, 2);
	json_decref(m);
}

void mg_gateway_on_request(struct mg_http_req *req, void *arg)
{
	struct mg_gateway *gw = arg;
	const char *path = mg_http_req_path(req);
	const char *method = mg_http_req_method(req);
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	/* One upstream: its endpoint first, as it always was (the hot path). */
	if (gw->cfg->upstream.n_servers == 0 &&
	    (strcmp(path, gw->cfg->server.mcp_path) == 0 ||
	     (gw->cfg->server.legacy_sse && (strcmp(path, gw->cfg->server.sse_path) == 0 ||
	                                     strcmp(path, gw->cfg->server.messages_path) == 0)))) {
		struct mg_log_ctx prev = mg_pipeline_log_enter(req);
		mg_mcp_handle(gw, req);
		mg_log_ctx_restore(prev);
		return;
	}
	if (get && strncmp(path, "/.well-known/oauth-protected-resource", 37) == 0 &&
	    (path[37] == '\0' || mg_route_find(gw, path + 37, NULL))) {
		handle_resource_metadata(gw, req);
		return;
	}
	if (mg_oauth_route(gw, req, path))
		return;
	if (get && strcmp(path, "/health") == 0) {
		handle_health(gw, req);
		return;
	}
	if (get && strcmp(path, "/live") == 0) {
		json_t *o = json_pack("{s:s}", "status", "live");
		mg_reply_json(req, 200, o, NULL, 0);
		json_decref(o);
		return;
	}
	if (get && strcmp(path, "/ready") == 0) {
		handle_ready(gw, req);
		return;
	}
	if (strcmp(path, "/health") == 0 || strcmp(path, "/live") == 0 ||
	    strcmp(path, "/ready") == 0) {
		struct mg_http_hdr h[] = { { "Allow", "GET, HEAD" } };
		json_t *e =
		    mg_rpc_error_new(NULL, MG_RPC_INVALID_REQUEST, "Method Not Allowed", NULL);
		mg_reply_json(req, 405, e, h, 1);
		json_decref(e);
		return;
	}
	if (mg_obs_route(gw, req))
		return;
	/* /routes and the endpoints: the MCP pipeline (origin, credentials,
	 * limits) before anything is said about them. */
	bool routes = strcmp(path, "/routes") == 0;
	enum mg_ep_kind kind = MG_EP_MCP;
	struct mg_route *r = routes ? NULL : mg_route_find(gw, path, &kind);
	if (routes || r) {
		/* Resolved once: the pipeline reads the match from the request. */
		if (r)
			mg_req_keep_route(req, r, kind);
		struct mg_log_ctx prev = mg_pipeline_log_enter(req);
		mg_mcp_handle(gw, req);
		mg_log_ctx_restore(prev);
		return;
	}
	if (gw->cfg->upstream.n_servers == 0) {
		char m[200];
		snprintf(m, sizeof m, "Not Found: the MCP endpoint is %s",
		         gw->cfg->server.mcp_path);
		mg_reply_rpc_error(req, 404, NULL, MG_RPC_INVALID_REQUEST, m, NULL);
		return;
	}
	/* Several upstreams: say nothing about which paths exist. */
	mg_reply_rpc_error(req, 404, NULL, MG_RPC_INVALID_REQUEST, "Not Found", NULL);
}

/* ---- shutdown ------------------------------------------------------------------------- */

static void shutdown_step(evutil_socket_t fd, short what, void *arg);

static void schedule_step(struct mg_gateway *gw, long ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	evtimer_add(gw->shutdown_timer, &tv);
}

static long phase_elapsed_ms(struct mg_gateway *gw)
{
	return (long)((mg_now_us() - gw->phase_start_us) / 1000);
}

/* Phase 1: wait for in-flight requests (polling every 50 ms) until the
 * grace period ends; phase 2: stop upstreams and wait for them to exit. */
static void shutdown_step(evutil_socket_t fd, short what, void *arg)
{
	struct mg_gateway *gw = arg;
	static const long tick = 50;
	(void)fd;
	(void)what;
	if (gw->shutdown_phase == 1) {
		long grace_ms = (long)gw->cfg->server.shutdown_grace_secs * 1000;
		if (mg_mcp_inflight(gw) > 0 && phase_elapsed_ms(gw) < grace_ms) {
			schedule_step(gw, tick);
			return;
		}
		if (mg_mcp_inflight(gw) > 0) {
			mg_log_warn("shutdown: %zu request(s) still in flight after %lld s; "
			            "answering them with an error",
			            mg_mcp_inflight(gw),
			            (long long)gw->cfg->server.shutdown_grace_secs);
			mg_mcp_abort_all(gw, "the gateway is shutting down");
		}
		/* End remaining sessions (their dedicated processes stop too). */
		for (size_t i = 0; i < gw->nbuckets; i++) {
			while (gw->buckets[i])
				mg_session_end(gw->buckets[i], "gateway shutdown", MG_ET_NONE);
		}
		mg_routes_stop(gw);
		gw->shutdown_phase = 2;
		gw->phase_start_us = mg_now_us();
		schedule_step(gw, tick);
		return;
	}
	if (!mg_routes_idle(gw) && phase_elapsed_ms(gw) < STOP_WAIT_SECS * 1000) {
		schedule_step(gw, tick);
		return;
	}
	if (!mg_routes_idle(gw)) {
		mg_log_warn("shutdown: upstream processes did not exit; killing them");
		mg_process_kill_all();
	}
	/* Let queued responses flush, then leave the loop. */
	struct timeval tv = { 0, 100000 };
	event_base_loopexit(gw->base, &tv);
}

static void begin_shutdown(struct mg_gateway *gw, const char *why)
{
	if (gw->draining) {
		mg_log_warn("second %s: stopping now", why);
		mg_mcp_abort_all(gw, "the gateway is shutting down");
		mg_process_kill_all();
		/* A moment for the error answers just queued to reach the clients. */
		struct timeval flush = { 0, 200000 };
		event_base_loopexit(gw->base, &flush);
		return;
	}
	mg_log_info("%s: shutting down (grace %lld s, %zu request(s) in flight)", why,
	            (long long)gw->cfg->server.shutdown_grace_secs, mg_mcp_inflight(gw));
	gw->draining = true;
	mg_sd_notify("STOPPING=1");
	mg_http_server_drain(gw->http);
	mg_mcp_close_streams(gw);
	gw->shutdown_phase = 1;
	gw->phase_start_us = mg_now_us();
	schedule_step(gw, 0);
}

/* How a reload ended: counted for /metrics (an alert on a failed reload:
 * the file on disk is not what runs) and recorded as config_reload. */
static void reload_outcome(struct mg_gateway *gw, int success, const char *message)
{
	if (success) {
		gw->reloads_ok++;
		gw->config_loaded_unix_us = mg_unix_us_at(mg_now_us());
	} else {
		gw->reloads_failed++;
	}
	gw->last_reload_ok = success != 0;
	struct mg_audit_event ev = { .type = MG_AUDIT_CONFIG_RELOAD,
		                     .success = success,
		                     .message = message,
		                     .duration_ms = -1 };
	mg_audit_emit(gw->audit, &ev);
}

/* SIGHUP: re-read the file; swap in new authentication (keys, JWT settings)
 * and TLS certificates atomically. Requests in flight keep the context they
 * started with. A bad file changes nothing. Listener, upstream and limits
 * need a restart. */
static void reload(struct mg_gateway *gw)
{
	extern char **environ;
	struct mg_diag diag = { 0 };
	mg_log_info("SIGHUP: reloading %s", gw->cfg->source);
	struct mg_config *cfg = mg_config_load(gw->cfg->source, MG_CONFIG_AUTO, environ, &diag);
	for (size_t i = 0; i < diag.n; i++) {
		const struct mg_diag_entry *e = &diag.v[i];
		mg_log(e->warning ? MG_LOG_WARN : MG_LOG_ERROR, "reload: %s:%u:%u: %s%s%s", e->file,
		       e->line, e->col, e->path, e->path[0] ? ": " : "", e->msg);
	}
	mg_diag_free(&diag);
	if (!cfg) {
		mg_log_error("reload failed: keeping the current configuration");
		reload_outcome(gw, 0, "invalid configuration: keeping the current one");
		return;
	}
	/* The listener does not change on reload: the new context describes the
	 * one that is running (command-line overrides included). */
	char *keep[] = { cfg->server.host, cfg->server.mcp_path };
	cfg->server.host = strdup(gw->cfg->server.host);
	cfg->server.mcp_path = strdup(gw->cfg->server.mcp_path);
	free(keep[0]);
	free(keep[1]);
	cfg->server.port = gw->cfg->server.port;
	char err[400];
	struct mg_auth *na = mg_auth_renew(gw->auth, cfg, err, sizeof err);
	if (!na) {
		mg_log_error("reload failed: %s; keeping the current configuration", err);
		reload_outcome(gw, 0, "reload failed: keeping the current configuration");
		mg_config_free(cfg);
		return;
	}
	mg_auth_own_config(na, cfg);
	if (!mg_auth_enabled(na) && !gw->loopback) {
		mg_log_error("reload refused: no authentication on a non-loopback listener");
		reload_outcome(gw, 0, "refused: no authentication on a non-loopback listener");
		mg_auth_unref(na);
		return;
	}
	if (!mg_auth_enabled(na) && mg_auth_enabled(gw->auth))
		mg_log_warn(
		    "reload: no authentication is configured any more: anyone who can reach "
		    "%s:%lld can now use the upstream (allowed only on loopback)",
		    gw->cfg->server.host, (long long)gw->cfg->server.port);
	SSL_CTX *tls = NULL;
	if (cfg->server.tls.enabled != gw->cfg->server.tls.enabled) {
		mg_log_warn("reload: server.tls.enabled changed; that needs a restart");
	} else if (cfg->server.tls.enabled) {
		tls = mg_tls_server_ctx(&cfg->server.tls, err, sizeof err);
		if (!tls) {
			mg_log_error("reload failed: %s; keeping the current configuration", err);
			reload_outcome(gw, 0,
			               "reload failed: TLS; keeping the current configuration");
			mg_auth_unref(na);
			return;
		}
		mg_http_server_set_tls(gw->http, tls);
		SSL_CTX_free(tls);
	}
	mg_auth_unref(gw->auth);
	gw->auth = na;
	reload_outcome(
	    gw, 1, tls ? "authentication and TLS certificates updated" : "authentication updated");
	mg_log_info("reloaded: authentication%s updated; listener, upstream and limit changes "
	            "apply after a restart",
	            tls ? " and TLS certificates" : "");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct mg_gateway *gw = arg;
	(void)what;
	if (sig == SIGCHLD) {
		mg_process_reap();
		return;
	}
	if (sig == SIGHUP) {
		mg_sd_notify("RELOADING=1");
		/* Tool approvals (mcp-guard tools approve) first: they do not
		 * depend on the configuration file being valid. */
		char perr[400];
		if (gw->pins && mg_pins_reload(gw->pins, perr, sizeof perr) < 0)
			mg_log_error("reload: tool pinning: %s (keeping the pins in memory)", perr);
		else if (gw->pins)
			mg_log_info("reload: tool pins re-read from %s",
			            gw->cfg->upstream.pins_file);
		reload(gw);
		mg_sd_notify("READY=1");
		return;
	}
	if (sig == SIGUSR1) {
		/* logrotate moved the audit file: the writer reopens it */
		mg_audit_reopen(gw->audit);
		return;
	}
	begin_shutdown(gw, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- run ------------------------------------------------------------------------------ */

static int setup_signals(struct mg_gateway *gw)
{
	signal(SIGPIPE, SIG_IGN);
	gw->sig_term = evsignal_new(gw->base, SIGTERM, on_signal, gw);
	gw->sig_int = evsignal_new(gw->base, SIGINT, on_signal, gw);
	gw->sig_hup = evsignal_new(gw->base, SIGHUP, on_signal, gw);
	gw->sig_chld = evsignal_new(gw->base, SIGCHLD, on_signal, gw);
	gw->sig_usr1 = evsignal_new(gw->base, SIGUSR1, on_signal, gw);
	if (!gw->sig_term || !gw->sig_int || !gw->sig_hup || !gw->sig_chld || !gw->sig_usr1)
		return -1;
	evsignal_add(gw->sig_usr1, NULL);
	evsignal_add(gw->sig_term, NULL);
	evsignal_add(gw->sig_int, NULL);
	evsignal_add(gw->sig_hup, NULL);
	evsignal_add(gw->sig_chld, NULL);
	return 0;
}

static void teardown(struct mg_gateway *gw)
{
	for (size_t i = 0; i < gw->nbuckets; i++) {
		while (gw->buckets[i])
			mg_session_end(gw->buckets[i], "gateway exit", MG_ET_NONE);
	}
	while (gw->listeners)
		mg_listener_free(gw->listeners);
	if (gw->http)
		mg_http_server_free(gw->http);
	mg_obs_free(gw);
	/* Reap what exited during the last loop turn, then free. */
	mg_process_reap();
	mg_routes_free(gw);
	struct event *sigs[] = { gw->sig_term, gw->sig_int,        gw->sig_hup,
		                 gw->sig_chld, gw->shutdown_timer, gw->sig_usr1 };
	for (size_t i = 0; i < 6; i++) {
		if (sigs[i])
			event_free(sigs[i]);
	}
	/* After the sessions ended (their session_end events are queued):
	 * flushes the queue, the last batch and logs the chain head. */
	mg_audit_free(gw->audit);
	gw->audit = NULL;
	mg_auth_unref(gw->auth);
	mg_ratelimiter_free(gw->rl);
	mg_oauth_gw_free(gw);
	mg_fetcher_free(gw->fetcher);
	free(gw->buckets);
	if (gw->base)
		event_base_free(gw->base);
}

int mg_gateway_run(const struct mg_config *cfg)
{
	struct mg_gateway gw = { .cfg = cfg,
		                 .started = time(NULL),
		                 .last_reload_ok = true,
		                 .config_loaded_unix_us = mg_unix_us_at(mg_now_us()) };
	int rc = 3;
	enum mg_log_level lvl = (enum mg_log_level)cfg->server.log_level;
	if (mg_log_get_level() < lvl)
		mg_log_set_level(lvl);
	mg_log_set_format((enum mg_log_format)cfg->server.log_format);
	gw.loopback = mg_host_is_loopback(cfg->server.host);
	gw.base = event_base_new();
	if (!gw.base || setup_signals(&gw) < 0) {
		mg_log_error("cannot set up the event loop");
		goto out;
	}
	gw.shutdown_timer = evtimer_new(gw.base, shutdown_step, &gw);
	gw.fetcher = mg_fetcher_new(gw.base);
	char aerr[400];
	gw.auth = mg_auth_new(gw.base, cfg, gw.fetcher, aerr, sizeof aerr);
	if (!gw.auth) {
		mg_log_error("authentication: %s", aerr);
		goto out;
	}
	if (!mg_auth_enabled(gw.auth)) {
		if (!gw.loopback) {
			mg_log_error(
			    "no authentication is configured: refusing to listen on %s (only "
			    "loopback addresses may run without authentication; add "
			    "[[auth.api_keys]] or another provider)",
			    cfg->server.host);
			goto out;
		}
		mg_log_warn("no authentication is configured: anyone who can reach %s:%lld can use "
		            "the upstream; this is allowed only on loopback",
		            cfg->server.host, (long long)cfg->server.port);
	}
	gw.audit = mg_audit_new(&cfg->audit, aerr, sizeof aerr);
	if (!gw.audit && aerr[0]) {
		mg_log_error("audit: %s", aerr);
		goto out;
	}
	if (cfg->rate_limit.enabled) {
		struct mg_ratelimiter_opts ro = {
			.max_entries = (size_t)cfg->rate_limit.max_entries,
			.idle_secs = cfg->rate_limit.idle_eviction_secs,
			.redis_url = cfg->rate_limit.redis_url,
			.redis_timeout_ms = cfg->rate_limit.redis_timeout_ms,
			.expected_instances = cfg->rate_limit.expected_instances,
			.key_prefix = "mcp-guard:rl:",
		};
		gw.rl = mg_ratelimiter_new(gw.base, &ro, aerr, sizeof aerr);
		if (!gw.rl) {
			mg_log_error("rate limiting: %s", aerr);
			goto out;
		}
	}
	SSL_CTX *tls = NULL;
	if (cfg->server.tls.enabled) {
		tls = mg_tls_server_ctx(&cfg->server.tls, aerr, sizeof aerr);
		if (!tls) {
			mg_log_error("TLS: %s", aerr);
			goto out;
		}
	}
	char err[400];
	if (mg_routes_start(&gw) < 0)
		goto out;
	struct mg_http_server_opts o = {
		.host = cfg->server.host,
		.port = (int)cfg->server.port,
		.max_connections = (size_t)cfg->server.max_connections,
		.max_header_bytes = (size_t)cfg->server.max_header_bytes,
		.max_body_bytes = (size_t)cfg->server.max_body_bytes,
		.idle_timeout_secs = (int)cfg->server.idle_timeout_secs,
		.max_output_bytes = MG_MAX_CLIENT_OUTPUT,
		.tls = tls,
		.on_request = mg_gateway_on_request,
		.error_body = error_body,
		.on_done = mg_obs_on_done,
		.arg = &gw,
	};
	gw.http = mg_http_server_new(gw.base, &o, err, sizeof err);
	if (tls)
		SSL_CTX_free(tls); /* the server holds its own reference */
	if (!gw.http || mg_obs_start(&gw, &o, err, sizeof err) < 0) {
		mg_log_error("%s", err);
		goto out;
	}
	char host[300];
	snprintf(host, sizeof host, "%s://%s%s%s:%d", cfg->server.tls.enabled ? "https" : "http",
	         strchr(cfg->server.host, ':') ? "[" : "", cfg->server.host,
	         strchr(cfg->server.host, ':') ? "]" : "", mg_http_server_port(gw.http));
	if (cfg->upstream.n_servers == 0)
		mg_log_info("mcp-guard %s listening on %s%s (upstream %s: %s)", MG_VERSION, host,
		            cfg->server.mcp_path, gw.routes[0]->name,
		            mg_stdio_mode_name(gw.routes[0]->up->cfg->mode));
	else {
		mg_log_info("mcp-guard %s listening on %s/ with %zu upstreams", MG_VERSION, host,
		            gw.n_routes);
		for (size_t i = 0; i < gw.n_routes; i++)
			mg_log_info("  %s at %s and %s (%s)", gw.routes[i]->name,
			            gw.routes[i]->path, gw.routes[i]->alias,
			            mg_transport_name(gw.routes[i]->up->cfg->transport));
	}
	if (mg_sd_notify("READY=1") < 0)
		mg_log_warn("cannot notify systemd: NOTIFY_SOCKET is set but unreachable");
	event_base_dispatch(gw.base);
	mg_log_info("stopped");
	rc = 0;
out:
	if (rc != 0 && gw.n_routes && gw.base) {
		mg_routes_stop(&gw);
		mg_process_kill_all();
	}
	teardown(&gw);
	return rc;
}

/* ---- check-upstream ------------------------------------------------------------------- */

struct check {
	struct mg_gateway *gw;
	struct mg_upstream *up;
	struct mg_call call;
	int tools;
	bool done, ok;
	char detail[400];
};

static void on_check_tools(struct mg_call *call, json_t *msg, void *arg)
{
	struct check *c = arg;
	(void)call;
	json_t *tools = json_object_get(json_object_get(msg, "result"), "tools");
	c->tools = json_is_array(tools) ? (int)json_array_size(tools) : -1;
	c->done = true;
	c->ok = true;
	event_base_loopbreak(c->gw->base);
}

static void on_check_state(struct mg_upstream *up, void *arg)
{
	struct check *c = arg;
	if (!up->ready || !up->shared || !up->shared->init_result)
		return; /* a dual-era server: its legacy conversation follows */
	json_t *caps = json_object_get(up->shared->init_result, "capabilities");
	if (!json_object_get(caps, "tools")) {
		c->tools = -1;
		c->done = c->ok = true;
		event_base_loopbreak(c->gw->base);
		return;
	}
	json_t *msg = json_pack("{s:s,s:i,s:s,s:{}}", "jsonrpc", "2.0", "id", 0, "method",
	                        "tools/list", "params");
	c->call.on_reply = on_check_tools;
	c->call.arg = c;
	if (mg_channel_request(up->shared, &c->call, msg) < 0) {
		snprintf(c->detail, sizeof c->detail, "cannot send tools/list");
		c->done = true;
		event_base_loopbreak(c->gw->base);
	}
	json_decref(msg);
}

static void on_check_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct check *c = arg;
	(void)fd;
	(void)what;
	c->done = true;
	event_base_loopbreak(c->gw->base);
}

/* A server that exits before its handshake will not do better on the
 * restarts that follow: fail now rather than at the timeout. */
static void on_check_poll(evutil_socket_t fd, short what, void *arg)
{
	struct check *c = arg;
	(void)fd;
	(void)what;
	if (c->up && c->up->restarts > 0 && !c->up->ever_ready) {
		c->done = true;
		event_base_loopbreak(c->gw->base);
	}
}

static void on_check_sigchld(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	mg_process_reap();
}

int mg_gateway_check_upstreams(const struct mg_config *cfg, int timeout_secs, const char *only)
{
	const struct mg_upstream_config *ups;
	size_t n = mg_config_upstreams(cfg, &ups);
	int failures = 0;
	bool found = false;
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < n; i++) {
		const struct mg_upstream_config *u = &ups[i];
		if (only && strcmp(u->name, only) != 0)
			continue;
		found = true;
		struct mg_gateway gw = { .cfg = cfg };
		struct check c = { .gw = &gw };
		gw.base = event_base_new();
		struct event *chld = evsignal_new(gw.base, SIGCHLD, on_check_sigchld, NULL);
		evsignal_add(chld, NULL);
		struct event *timer = evtimer_new(gw.base, on_check_timeout, &c);
		struct timeval tv = { .tv_sec = timeout_secs, .tv_usec = 0 };
		evtimer_add(timer, &tv);
		struct event *poll = event_new(gw.base, -1, EV_PERSIST, on_check_poll, &c);
		struct timeval ptv = { 0, 100000 };
		event_add(poll, &ptv);
		struct mg_upstream_hooks hooks = { .on_state = on_check_state, .arg = &c };
		char err[400];
		c.up = mg_upstream_new(gw.base, u, &hooks, (size_t)cfg->server.max_json_depth, err,
		                       sizeof err);
		if (!c.up || c.up->ops->start(c.up, err, sizeof err) < 0) {
			printf("%s: FAILED: %s\n", u->name, err);
			failures++;
			goto next;
		}
		event_base_dispatch(gw.base);
		if (c.ok) {
			json_t *r = c.up->shared->init_result;
			json_t *info = json_object_get(r, "serverInfo");
			printf("%s: OK: %s %s, protocol %s, ", u->name,
			       json_string_value(json_object_get(info, "name")) ?: "?",
			       json_string_value(json_object_get(info, "version")) ?: "?",
			       json_string_value(json_object_get(r, "protocolVersion")) ?: "?");
			if (c.tools >= 0)
				printf("%d tool%s\n", c.tools, c.tools == 1 ? "" : "s");
			else
				printf("no tools capability\n");
		} else {
			printf("%s: FAILED: %s\n", u->name,
			       c.up->last_error[0] ? c.up->last_error
			       : c.detail[0]       ? c.detail
			                           : "no answer to initialize within the timeout");
			failures++;
		}
	next:
		mg_channel_cancel(&c.call, "check done");
		if (c.up) {
			c.up->ops->stop(c.up);
			struct timeval step = { 0, 50000 };
			for (int k = 0; k < 100 && !c.up->ops->idle(c.up); k++) {
				event_base_loopexit(gw.base, &step);
				event_base_dispatch(gw.base);
			}
			if (!c.up->ops->idle(c.up))
				mg_process_kill_all();
			mg_process_reap();
			c.up->ops->free(c.up);
		}
		event_free(timer);
		event_free(poll);
		event_free(chld);
		event_base_free(gw.base);
	}
	if (only && !found)
		return 2;
	return failures ? 1 : 0;
}
