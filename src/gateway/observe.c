/*
 * observe.c - the gateway's metrics and traces: what each request to the MCP
 * endpoint ended as, the /metrics endpoint, the optional admin listener, and
 * the spans of a request.
 *
 * Counting happens in one place: the HTTP server's on_done hook, called
 * exactly once per request whatever path answered it (or the client
 * leaving). The pipeline leaves small marks in the request's note as it
 * goes - the MCP method once the body is parsed, an explicit outcome where
 * the HTTP status alone is ambiguous (authentication failed, authorization
 * denied), the JSON-RPC error code or tool_error of the answer - and
 * on_done turns note + status + duration into counters. So a new reply
 * path in mcp.c is counted without anyone remembering to count it.
 *
 * Other families (sessions, streams, connections, upstream state, JWKS,
 * Redis, the span exporter) are read from where they live when scraped, by
 * collectors.
 *
 * Tracing rides on the same hooks: an authenticated POST gets a `struct
 * rtrace` in the request's data slot (from a free list); the phases record
 * their times in it, the parsed body decides the parent and the sampling,
 * a sampled forward adds params._meta.traceparent (mg_obs_trace_inject),
 * and on_done turns it into spans for the exporter (trace/trace.h).
 *
 * /metrics needs the MCP endpoint's credentials when metrics.require_auth
 * and authentication is configured (the default), on both listeners;
 * failures are charged to the per-address limit like the MCP endpoint's.
 */
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "build-info.h"
#include "config/checks.h"
#include "gateway/internal.h"
#include "metrics/metrics.h"
#include "ratelimit/ratelimit.h"
#include "trace/trace.h"
#include "upstream/upstream.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"

/* ---- tracing: one SERVER span per MCP request --------------------------------------- */

/* What a sampled (or not yet decided) request remembers for its spans; in
 * the request's data slot from authentication to on_done. */
struct rtrace {
	const struct mg_tracing_config *tc; /* (the free list's link while unused) */
	bool decided, sampled;
	bool has_parent, parent_from_meta, has_http;
	struct mg_trace_ctx parent, http;
	uint8_t trace_id[16], server_id[8], client_id[8];
	uint64_t auth_end_us, limit_start_us, limit_end_us, up_start_us, up_end_us;
	int32_t up_error;                /* MG_ET_*: how the upstream call ended */
	const struct mg_route *up_route; /* the upstream called (a federation's member) */
	const char *target_attr;         /* gen_ai.tool.name or gen_ai.prompt.name, or NULL */
	char up_protocol[16];            /* the upstream session's protocol version, or "" */
	/* From here on, strings: a reused one is cleared by its first byte. */
	char method[64];
	char target[128];
	char uri[128]; /* mcp.resource.uri (resources/read, subscribe, unsubscribe) */
	char request_id[64];
	char protocol[32];
	char session[64];
	char tracestate[MG_TRACESTATE_MAX + 1];
};

/* Per-request state is reused (a free list of at most 256) rather than
 * allocated for every request: calloc and free of ~900 bytes per request
 * cost more than everything else tracing does for an unsampled one. */
static struct rtrace *rtrace_get(struct mg_gateway *gw)
{
	struct rtrace *t = gw->trace_free;
	if (!t)
		return calloc(1, sizeof *t);
	gw->trace_free = *(void **)t;
	gw->n_trace_free--;
	/* Only what a request reads before it writes needs clearing. */
	memset(t, 0, offsetof(struct rtrace, method));
	t->method[0] = t->target[0] = t->uri[0] = t->request_id[0] = t->protocol[0] =
	    t->session[0] = '\0';
	t->tracestate[0] = '\0';
	return t;
}

static void rtrace_put(struct mg_gateway *gw, struct rtrace *t)
{
	if (!t)
		return;
	if (gw->n_trace_free >= 256) {
		free(t);
		return;
	}
	*(void **)t = gw->trace_free;
	gw->trace_free = t;
	gw->n_trace_free++;
}

static struct rtrace *rtrace_of(struct mg_http_req *req)
{
	return mg_http_req_data(req);
}

static bool is_mcp_post(struct mg_gateway *gw, struct mg_http_req *req)
{
	return strcmp(mg_http_req_method(req), "POST") == 0 &&
	       strcmp(mg_http_req_path(req), gw->cfg->server.mcp_path) == 0;
}

/* A context from a string value, when it is a valid traceparent. */
static bool ctx_from(const char *v, size_t len, struct mg_trace_ctx *out)
{
	return v && mg_traceparent_parse(v, len, out) == 0;
}

/* Copies at most size - 1 bytes of s and a NUL (no printf on the hot path). */
static void copy(char *dst, size_t size, const char *s, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

static void copyz(char *dst, size_t size, const char *s)
{
	copy(dst, size, s ? s : "", s ? strlen(s) : 0);
}

/* The body is parsed: the parent context and the sampling decision; the
 * details for the spans only when sampled. */
static void trace_method(struct rtrace *t, struct mg_http_req *req, const struct mg_rpc_msg *msg,
                         const struct mg_tracing_config *tc)
{
	json_t *meta = msg->params ? json_object_get(msg->params, "_meta") : NULL;
	/* The parent: params._meta's context (the MCP conventions), else the
	 * HTTP request's; with both, the HTTP one becomes a link. */
	const char *ts = NULL;
	if (tc->propagate_context) {
		/* Two traceparent headers make the context invalid (W3C). */
		const char *h = mg_http_req_header_count(req, "traceparent") == 1
		                    ? mg_http_req_header(req, "traceparent")
		                    : NULL;
		t->has_http = h && ctx_from(h, strlen(h), &t->http);
		json_t *tp = json_object_get(meta, "traceparent");
		if (json_is_string(tp) &&
		    ctx_from(json_string_value(tp), json_string_length(tp), &t->parent)) {
			t->has_parent = t->parent_from_meta = true;
			ts = json_string_value(json_object_get(meta, "tracestate"));
		} else if (t->has_http) {
			t->has_parent = true;
			t->parent = t->http;
			ts = mg_http_req_header(req, "tracestate");
		}
	}
	if (t->has_parent) {
		memcpy(t->trace_id, t->parent.trace_id, 16);
		t->sampled = t->parent.flags & MG_TRACE_FLAG_SAMPLE;
	} else {
		mg_trace_new_trace_id(t->trace_id);
		t->sampled = mg_trace_sampled(t->trace_id, tc->sample_rate);
	}
	t->decided = true;
	mg_log_ctx_set_trace(t->trace_id);
	if (!t->sampled)
		return;
	if (ts && mg_tracestate_valid(ts, strlen(ts)))
		copyz(t->tracestate, sizeof t->tracestate, ts);
	mg_trace_new_span_id(t->server_id);
	copyz(t->method, sizeof t->method, msg->method);
	json_t *name = msg->params ? json_object_get(msg->params, "name") : NULL;
	if (json_is_string(name) && msg->method &&
	    (strcmp(msg->method, "tools/call") == 0 || strcmp(msg->method, "prompts/get") == 0)) {
		t->target_attr = msg->method[0] == 't' ? "gen_ai.tool.name" : "gen_ai.prompt.name";
		copy(t->target, sizeof t->target, json_string_value(name),
		     json_string_length(name));
	}
	json_t *uri = msg->params ? json_object_get(msg->params, "uri") : NULL;
	if (json_is_string(uri) && msg->method && strncmp(msg->method, "resources/", 10) == 0 &&
	    (strcmp(msg->method + 10, "read") == 0 || strcmp(msg->method + 10, "subscribe") == 0 ||
	     strcmp(msg->method + 10, "unsubscribe") == 0))
		copy(t->uri, sizeof t->uri, json_string_value(uri), json_string_length(uri));
	if (json_is_integer(msg->id)) {
		t->request_id[mg_fmt_i64(t->request_id, json_integer_value(msg->id))] = '\0';
	} else if (json_is_string(msg->id)) {
		copy(t->request_id, sizeof t->request_id, json_string_value(msg->id),
		     json_string_length(msg->id));
	}
	json_t *mv = json_object_get(meta, "io.modelcontextprotocol/protocolVersion");
	copyz(t->protocol, sizeof t->protocol,
	      json_is_string(mv) ? json_string_value(mv)
	                         : mg_http_req_header(req, "MCP-Protocol-Version"));
	copyz(t->session, sizeof t->session, mg_http_req_header(req, "Mcp-Session-Id"));
}

static void trace_parsed(struct mg_http_req *req, const struct mg_rpc_msg *msg)
{
	struct rtrace *t = rtrace_of(req);
	if (t && !t->decided && (msg->kind == MG_RPC_REQUEST || msg->kind == MG_RPC_NOTIFICATION))
		trace_method(t, req, msg, t->tc);
}

bool mg_obs_trace_id(const struct mg_http_req *req, uint8_t out[16])
{
	const struct rtrace *t = mg_http_req_data(req);
	if (!t || !t->decided)
		return false;
	memcpy(out, t->trace_id, 16);
	return true;
}

bool mg_obs_trace_inject(struct mg_http_req *req, const struct mg_rpc_msg *msg,
                         const struct mg_route *upstream, char tp[56], const char **ts)
{
	_Static_assert(MG_TRACEPARENT_LEN + 1 == 56, "the caller's room for a traceparent");
	struct rtrace *t = req ? rtrace_of(req) : NULL;
	if (!t || !t->sampled || msg->kind != MG_RPC_REQUEST)
		return false;
	struct mg_trace_ctx c = { .flags = MG_TRACE_FLAG_SAMPLE };
	memcpy(c.trace_id, t->trace_id, 16);
	mg_trace_new_span_id(t->client_id);
	memcpy(c.span_id, t->client_id, 8);
	mg_traceparent_format(&c, tp);
	*ts = t->tracestate[0] ? t->tracestate : NULL;
	t->up_route = upstream;
	t->up_start_us = mg_now_us();
	return true;
}

void mg_obs_trace_put(struct mg_rpc_msg *msg, const char *tp, const char *ts)
{
	json_t *params = json_object_get(msg->root, "params");
	if (!json_is_object(params)) {
		params = json_object();
		json_object_set_new(msg->root, "params", params);
		msg->params = params;
	}
	json_t *meta = json_object_get(params, "_meta");
	if (!json_is_object(meta)) {
		meta = json_object();
		json_object_set_new(params, "_meta", meta);
	}
	json_object_set_new(meta, "traceparent", json_string(tp));
	if (ts)
		json_object_set_new(meta, "tracestate", json_string(ts));
	else
		json_object_del(meta, "tracestate");
	msg->edited = true;
}

void mg_obs_upstream_done(struct mg_exchange *x)
{
	struct rtrace *t = x->req && x->gw->tracer ? rtrace_of(x->req) : NULL;
	if (t && t->up_start_us && !t->up_end_us) {
		t->up_end_us = mg_now_us();
		t->up_error = x->up_error;
		/* mcp.protocol.version of the CLIENT span: what the gateway and the
		 * upstream speak (not the client's version) */
		const struct mg_channel *ch = x->ch;
		const char *v = NULL;
		if (ch && ch->modern)
			v = MG_MCP_MODERN_VERSION;
		else if (ch)
			v = json_string_value(json_object_get(ch->init_result, "protocolVersion"));
		size_t n = v ? strlen(v) : sizeof t->up_protocol;
		if (n < sizeof t->up_protocol)
			memcpy(t->up_protocol, v, n + 1);
	}
}

/* The host and port of an HTTP upstream's URL (server.address and
 * server.port of its CLIENT spans); false for a stdio upstream. */
static bool upstream_address(const struct mg_upstream_config *u, char *host, size_t size, int *port)
{
	return u && u->transport != MG_TRANSPORT_STDIO && u->url &&
	       mg_url_host_port(u->url, host, size, port) == 0;
}

static uint64_t unix_ns(uint64_t mono_us, uint64_t now_mono_us, uint64_t now_unix_ns)
{
	uint64_t ago = now_mono_us > mono_us ? now_mono_us - mono_us : 0;
	return now_unix_ns - ago * 1000;
}

static void child_span(struct mg_tracer *tr, const struct rtrace *t, struct mg_span *sp,
                       const char *name, uint64_t start, uint64_t end, uint64_t now,
                       uint64_t now_ns)
{
	mg_span_clear(sp);
	memcpy(sp->trace_id, t->trace_id, 16);
	memcpy(sp->parent_id, t->server_id, 8);
	mg_trace_new_span_id(sp->span_id);
	sp->kind = MG_SPAN_INTERNAL;
	copyz(sp->name, sizeof sp->name, name);
	sp->start_ns = unix_ns(start, now, now_ns);
	sp->end_ns = unix_ns(end ? end : now, now, now_ns);
	if (tr)
		mg_tracer_submit(tr, sp);
}

/* The request ended: its spans go to the exporter when sampled. */
static void trace_done(struct mg_gateway *gw, struct mg_http_req *req, const char *error_type)
{
	struct rtrace *t = rtrace_of(req);
	mg_http_req_set_data(req, NULL);
	if (!t || !t->decided || !t->sampled || !t->method[0]) {
		rtrace_put(gw, t);
		return;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = mg_now_us();
	uint64_t now_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	struct mg_span span, *sp = &span; /* copied into the export queue */
	/* The SERVER span: "{mcp.method.name} {target}". */
	mg_span_clear(sp);
	memcpy(sp->trace_id, t->trace_id, 16);
	memcpy(sp->span_id, t->server_id, 8);
	if (t->has_parent)
		memcpy(sp->parent_id, t->parent.span_id, 8);
	if (t->parent_from_meta && t->has_http) {
		sp->has_link = true;
		sp->link = t->http;
	}
	sp->kind = MG_SPAN_SERVER;
	size_t ml = strnlen(t->method, 63), tl = strnlen(t->target, 95);
	memcpy(sp->name, t->method, ml);
	if (tl) {
		sp->name[ml++] = ' ';
		memcpy(sp->name + ml, t->target, tl);
	}
	sp->name[ml + tl] = '\0';
	sp->start_ns = unix_ns(mg_http_req_start_us(req), now, now_ns);
	sp->end_ns = now_ns;
	mg_span_attr_str(sp, "mcp.method.name", t->method);
	if (t->target_attr)
		mg_span_attr_str(sp, t->target_attr, t->target);
	if (t->target_attr && t->method[0] == 't')
		mg_span_attr_str(sp, "gen_ai.operation.name", "execute_tool");
	if (t->request_id[0])
		mg_span_attr_str(sp, "jsonrpc.request.id", t->request_id);
	if (t->session[0])
		mg_span_attr_str(sp, "mcp.session.id", t->session);
	if (t->protocol[0])
		mg_span_attr_str(sp, "mcp.protocol.version", t->protocol);
	if (t->uri[0])
		mg_span_attr_str(sp, "mcp.resource.uri", t->uri);
	mg_span_attr_str(sp, "network.transport", "tcp");
	mg_span_attr_str(sp, "network.protocol.name", "http");
	mg_span_attr_str(sp, "network.protocol.version", mg_http_req_version(req));
	mg_span_attr_str(sp, "client.address", mg_http_req_peer(req));
	const struct sockaddr *pa = mg_http_req_peer_addr(req);
	if (pa->sa_family == AF_INET || pa->sa_family == AF_INET6)
		mg_span_attr_int(
		    sp, "client.port",
		    ntohs(pa->sa_family == AF_INET
		              ? ((const struct sockaddr_in *)(const void *)pa)->sin_port
		              : ((const struct sockaddr_in6 *)(const void *)pa)->sin6_port));
	if (error_type) {
		mg_span_attr_str(sp, "error.type", error_type);
		if (error_type[0] == '-')
			mg_span_attr_str(sp, "rpc.response.status_code", error_type);
		sp->error = true;
		snprintf(sp->status_msg, sizeof sp->status_msg, "%s", error_type);
	}
	mg_tracer_submit(gw->tracer, sp);
	char server_name[sizeof sp->name];
	memcpy(server_name, sp->name, sizeof server_name);
	/* Children: authentication, rate limiting, the upstream call. */
	if (t->auth_end_us)
		child_span(gw->tracer, t, sp, "authenticate", mg_http_req_start_us(req),
		           t->auth_end_us, now, now_ns);
	if (t->limit_end_us)
		child_span(gw->tracer, t, sp, "rate_limit", t->limit_start_us, t->limit_end_us, now,
		           now_ns);
	if (t->up_start_us) {
		child_span(NULL, t, sp, server_name, t->up_start_us, t->up_end_us, now, now_ns);
		memcpy(sp->span_id, t->client_id, 8);
		sp->kind = MG_SPAN_CLIENT;
		mg_span_attr_str(sp, "mcp.method.name", t->method);
		if (t->target_attr)
			mg_span_attr_str(sp, t->target_attr, t->target);
		if (t->target_attr && t->method[0] == 't')
			mg_span_attr_str(sp, "gen_ai.operation.name", "execute_tool");
		if (t->uri[0])
			mg_span_attr_str(sp, "mcp.resource.uri", t->uri);
		const struct mg_route *r = t->up_route;
		const struct mg_upstream_config *uc = r && r->up ? r->up->cfg : NULL;
		bool stdio = !uc || uc->transport == MG_TRANSPORT_STDIO;
		mg_span_attr_str(sp, "network.transport", stdio ? "pipe" : "tcp");
		if (!stdio)
			mg_span_attr_str(sp, "network.protocol.name", "http");
		char host[128];
		int port;
		if (upstream_address(uc, host, sizeof host, &port)) {
			mg_span_attr_str(sp, "server.address", host);
			mg_span_attr_int(sp, "server.port", port);
		}
		if (t->up_protocol[0])
			mg_span_attr_str(sp, "mcp.protocol.version", t->up_protocol);
		if (r)
			mg_span_attr_str(sp, "mcp_guard.upstream", r->name);
		/* error.type per the conventions: the upstream's JSON-RPC code,
		 * tool_error, or how the gateway ended the call */
		int32_t et = t->up_end_us ? t->up_error : MG_ET_CANCELLED;
		if (et != MG_ET_NONE) {
			char buf[16];
			const char *name = mg_metrics_error_type(et, buf);
			sp->error = true;
			mg_str_copy(sp->status_msg, sizeof sp->status_msg, name);
			mg_span_attr_str(sp, "error.type", name);
			if (name[0] == '-')
				mg_span_attr_str(sp, "rpc.response.status_code", name);
		}
		mg_tracer_submit(gw->tracer, sp);
	}
	rtrace_put(gw, t);
}

/* The note left in each request (8 bytes, see mg_http_req_note). */
struct note {
	uint8_t method;  /* enum mg_mmethod */
	uint8_t outcome; /* enum mg_mstatus + 1; 0: derive from the HTTP status */
	uint8_t err;     /* 0 none, 1 JSON-RPC code in `code`, 2 tool_error */
	uint8_t pad;
	int32_t code;
};
_Static_assert(sizeof(struct note) == sizeof(uint64_t), "a note fits the request's slot");

static struct note note_get(struct mg_http_req *req)
{
	struct note n;
	memcpy(&n, mg_http_req_note(req), sizeof n);
	return n;
}

static void note_set(struct mg_http_req *req, const struct note *n)
{
	memcpy(mg_http_req_note(req), n, sizeof *n);
}

static void trace_parsed(struct mg_http_req *req, const struct mg_rpc_msg *msg);

void mg_obs_method(struct mg_http_req *req, const struct mg_rpc_msg *msg)
{
	trace_parsed(req, msg);
	struct note n = note_get(req);
	if (msg->kind == MG_RPC_RESPONSE || msg->kind == MG_RPC_ERROR)
		n.method = MG_MM_RESPONSE;
	else if (msg->kind == MG_RPC_BATCH)
		n.method = MG_MM_OTHER;
	else
		n.method = (uint8_t)mg_metrics_method(msg->method);
	note_set(req, &n);
}

enum mg_mmethod mg_obs_req_method(struct mg_http_req *req)
{
	return (enum mg_mmethod)note_get(req).method;
}

void mg_obs_outcome(struct mg_http_req *req, enum mg_mstatus st)
{
	struct note n = note_get(req);
	n.outcome = (uint8_t)(st + 1);
	note_set(req, &n);
}

void mg_obs_rpc_error(struct mg_http_req *req, int code)
{
	struct note n = note_get(req);
	n.err = 1;
	n.code = code;
	note_set(req, &n);
}

void mg_obs_answer(struct mg_http_req *req, json_t *msg)
{
	if (!req || !json_is_object(msg))
		return;
	json_t *e = json_object_get(msg, "error");
	if (e) {
		mg_obs_rpc_error(req,
		                 mg_metrics_code(json_integer_value(json_object_get(e, "code"))));
		return;
	}
	json_t *r = json_object_get(msg, "result");
	if (json_is_object(r) && json_is_true(json_object_get(r, "isError"))) {
		struct note n = note_get(req);
		n.err = 2;
		note_set(req, &n);
	}
}

void mg_obs_raw_answer(struct mg_http_req *req, bool tool_error)
{
	if (!req)
		return;
	if (tool_error) {
		struct note n = note_get(req);
		n.err = 2;
		note_set(req, &n);
	}
}

void mg_obs_auth(struct mg_gateway *gw, struct mg_http_req *req, const struct mg_auth_outcome *o)
{
	uint64_t now = gw->tracer || gw->metrics ? mg_now_us() : 0; /* read once */
	if (o->status != MG_AUTH_OK)
		mg_obs_outcome(req, MG_MS_UNAUTHORIZED);
	else if (gw->tracer && !mg_http_req_data(req) && is_mcp_post(gw, req)) {
		struct rtrace *t = rtrace_get(gw);
		if (t) {
			t->tc = &gw->cfg->tracing;
			t->auth_end_us = now;
			mg_http_req_set_data(req, t);
		}
	}
	if (!gw->metrics)
		return;
	switch (o->status) {
	case MG_AUTH_OK:
		mg_metrics_auth(gw->metrics, mg_metrics_provider(o->identity->provider),
		                MG_MA_SUCCESS);
		mg_metrics_identity_seen(gw->metrics, o->identity->key, now);
		break;
	case MG_AUTH_INVALID:
		mg_metrics_auth(gw->metrics, MG_MP_NONE, MG_MA_INVALID);
		break;
	case MG_AUTH_UNAVAILABLE:
		mg_metrics_auth(gw->metrics, MG_MP_NONE, MG_MA_UNAVAILABLE);
		break;
	default:
		mg_metrics_auth(gw->metrics, MG_MP_NONE, MG_MA_MISSING);
		break;
	}
}

void mg_obs_limit(struct mg_gateway *gw, struct mg_http_req *req, enum mg_mscope scope,
                  bool allowed)
{
	struct rtrace *t = gw->tracer ? rtrace_of(req) : NULL;
	if (t) {
		if (!t->limit_start_us)
			t->limit_start_us = t->auth_end_us ? t->auth_end_us : mg_now_us();
		t->limit_end_us = mg_now_us();
	}
	if (gw->metrics)
		mg_metrics_rate_limit(gw->metrics, scope, allowed);
}

static bool tool_listed(const char *name, void *arg)
{
	const struct mg_route *r = arg;
	/* (nothing listed yet: no hash lookup) */
	return json_object_size(r->tool_params) && json_object_get(r->tool_params, name);
}

uint16_t mg_obs_tool_slot(struct mg_gateway *gw, struct mg_route *r, json_t *name)
{
	return mg_metrics_tool_slot(gw->metrics, r->index, json_string_value(name),
	                            json_string_length(name), tool_listed, r);
}

void mg_obs_exchange_end(struct mg_exchange *x)
{
	struct mg_gateway *gw = x->gw;
	if (!gw->metrics || !x->sent_us)
		return;
	uint64_t now = mg_now_us(), took = now > x->sent_us ? now - x->sent_us : 0;
	/* the client left before an answer: the gateway cancelled the call */
	int32_t error = x->up_decided ? x->up_error : MG_ET_CANCELLED;
	mg_metrics_client_op(gw->metrics, x->route->index, (enum mg_mmethod)x->mmethod, error,
	                     took);
	if (x->tool_slot)
		mg_metrics_tool_call(gw->metrics, x->route->index, x->tool_slot, error, took);
	struct mg_metrics_upstream *u = &gw->metrics->upstreams[x->route->index];
	if (x->answer == MG_X_NONE) {
		u->requests++; /* the client left first: neither an error nor a latency */
		return;
	}
	mg_metrics_upstream(gw->metrics, x->route->index, x->answer == MG_X_ERROR, took);
}

int32_t mg_obs_answer_error(json_t *msg, bool tool_call)
{
	json_t *e = json_object_get(msg, "error");
	if (e) {
		const char *g =
		    json_string_value(json_object_get(json_object_get(e, "data"), "mcpGuard"));
		return g && strcmp(g, "upstream_unavailable") == 0
		           ? MG_ET_UNAVAILABLE
		           : mg_metrics_code(json_integer_value(json_object_get(e, "code")));
	}
	json_t *r = json_object_get(msg, "result");
	return tool_call && json_is_object(r) && json_is_true(json_object_get(r, "isError"))
	           ? MG_ET_TOOL_ERROR
	           : MG_ET_NONE;
}

void mg_obs_client_op(struct mg_gateway *gw, const struct mg_route *r, const char *method,
                      int32_t error, uint64_t sent_us)
{
	if (!gw->metrics || !sent_us)
		return;
	uint64_t now = mg_now_us();
	mg_metrics_client_op(gw->metrics, r->index, mg_metrics_method(method), error,
	                     now > sent_us ? now - sent_us : 0);
}

void mg_obs_upstream_session_end(struct mg_route *r, struct mg_channel *ch, uint64_t duration_us,
                                 bool error)
{
	struct mg_metrics *m = r->gw->metrics; /* NULL once the gateway is stopping */
	if (!m)
		return;
	const char *v = json_string_value(json_object_get(ch->init_result, "protocolVersion"));
	mg_metrics_client_session(m, r->index, v, error ? MG_ET_UPSTREAM_CLOSED : MG_ET_NONE,
	                          duration_us);
}

void mg_obs_session_end(struct mg_session *s, int32_t error)
{
	struct mg_metrics *m = s->gw->metrics;
	if (!m)
		return;
	uint64_t now = mg_now_us();
	mg_metrics_session(m, s->protocol_version, error,
	                   now > s->created_us ? now - s->created_us : 0);
}

/* How the request ended, from the note and the status sent. */
static enum mg_mstatus outcome(const struct note *n, int status)
{
	if (n->outcome)
		return (enum mg_mstatus)(n->outcome - 1);
	if (status == 0)
		return MG_MS_CANCELLED;
	if (status == 401)
		return MG_MS_UNAUTHORIZED;
	if (status == 429)
		return MG_MS_RATE_LIMITED;
	if (status >= 400 && status < 500)
		return MG_MS_INVALID;
	if (status >= 500 || n->err == 1)
		return MG_MS_ERROR;
	return n->err == 2 ? MG_MS_TOOL_ERROR : MG_MS_OK;
}

void mg_obs_on_done(struct mg_http_req *req, int status, void *arg)
{
	struct mg_gateway *gw = arg;
	if ((!gw->metrics && !gw->tracer) || !is_mcp_post(gw, req))
		return;
	struct note n = note_get(req);
	int32_t et = MG_ET_NONE;
	if (n.err == 2)
		et = MG_ET_TOOL_ERROR;
	else if (n.err == 1)
		et = mg_metrics_code(n.code);
	else if (status == 0)
		et = MG_ET_CANCELLED;
	else if (status >= 400)
		et = MG_ET_OTHER;
	uint64_t now = mg_now_us(), start = mg_http_req_start_us(req);
	if (gw->metrics)
		mg_metrics_request(gw->metrics, (enum mg_mmethod)n.method, outcome(&n, status), et,
		                   now > start ? now - start : 0);
	if (mg_http_req_data(req)) {
		char buf[16];
		trace_done(gw, req, et == MG_ET_NONE ? NULL : mg_metrics_error_type(et, buf));
	}
}

/* ---- collector: state that lives elsewhere ------------------------------------------ */

static void collect_gateway(struct mg_prom *p, void *arg)
{
	struct mg_gateway *gw = arg;
	size_t streams = 0;
	for (size_t i = 0; i < gw->nbuckets; i++) {
		for (struct mg_session *s = gw->buckets[i]; s; s = s->next) {
			streams += s->get.req != NULL;
			for (struct mg_exchange *x = s->exchanges; x; x = x->next)
				streams += x->sse && x->req;
		}
	}
	for (struct mg_exchange *x = gw->modern; x; x = x->next)
		streams += x->sse && x->req;
	for (struct mg_listener *l = gw->listeners; l; l = l->next)
		streams += l->stream.req != NULL;
	mg_prom_gauge1(p, "mcp_guard_sessions_open", "Legacy MCP sessions open.",
	               (double)gw->nsessions);
	mg_prom_gauge1(p, "mcp_guard_sse_streams_open",
	               "SSE response streams open (GET streams, request streams, "
	               "subscriptions/listen).",
	               (double)streams);
	mg_prom_gauge1(p, "mcp_guard_connections_open",
	               "Client connections open on the main listener.",
	               (double)(gw->http ? mg_http_server_connections(gw->http) : 0));
	mg_prom_gauge1(p, "mcp_guard_requests_in_flight",
	               "Requests waiting for authentication, a rate-limit decision or the "
	               "upstream.",
	               (double)mg_mcp_inflight(gw));

	mg_prom_family(p, "mcp_guard_upstream_up", "gauge",
	               "1 when the upstream completed its handshake and is up.");
	for (size_t i = 0; i < gw->n_routes; i++) {
		struct mg_prom_label ul[] = { { "upstream", gw->routes[i]->name } };
		mg_prom_sample(p, "", ul, 1, gw->routes[i]->up->ready ? 1 : 0);
	}
	mg_prom_family(p, "mcp_guard_upstream_restarts_total", "counter",
	               "Restarts of the upstream's shared process after it exited.");
	for (size_t i = 0; i < gw->n_routes; i++) {
		struct mg_prom_label ul[] = { { "upstream", gw->routes[i]->name } };
		mg_prom_sample_u64(p, "", ul, 1, gw->routes[i]->up->restarts);
	}
	if (gw->fed) {
		mg_prom_family(p, "mcp_guard_federation_list_failures_total", "counter",
		               "Federated list calls a server failed (down, an error, no answer "
		               "in time, a repeated cursor): its items were left out of that "
		               "page.");
		for (size_t i = 0; i < gw->n_routes; i++) {
			if (!gw->routes[i]->federated)
				continue;
			struct mg_prom_label ul[] = { { "upstream", gw->routes[i]->name } };
			mg_prom_sample_u64(p, "", ul, 1, gw->routes[i]->fed_failures);
		}
	}
	mg_prom_family(p, "mcp_guard_upstream_dedicated_processes", "gauge",
	               "Per-session processes running (mode = \"per_session\").");
	for (size_t i = 0; i < gw->n_routes; i++) {
		struct mg_prom_label ul[] = { { "upstream", gw->routes[i]->name } };
		mg_prom_sample(p, "", ul, 1, (double)gw->routes[i]->up->dedicated);
	}

	struct mg_auth_stats as;
	mg_auth_stats(gw->auth, &as);
	mg_prom_counter1(p, "mcp_guard_jwks_fetches_total", "JWKS documents fetched.",
	                 as.jwks_fetches);
	mg_prom_counter1(p, "mcp_guard_jwks_errors_total",
	                 "JWKS fetches that failed or returned an unusable key set.",
	                 as.jwks_errors);

	if (gw->rl) {
		struct mg_ratelimiter_state st;
		mg_ratelimiter_state(gw->rl, &st);
		mg_prom_gauge1(p, "mcp_guard_rate_limit_keys", "Rate-limit keys held in memory.",
		               (double)st.memory_keys);
		if (st.redis_configured) {
			mg_prom_gauge1(p, "mcp_guard_redis_up",
			               "1 when Redis is connected, set up and answering.",
			               st.redis_up ? 1 : 0);
			mg_prom_counter1(p, "mcp_guard_rate_limit_fallbacks_total",
			                 "Decisions made in memory while Redis was configured.",
			                 st.fallbacks);
			mg_prom_counter1(p, "mcp_guard_redis_errors_total",
			                 "Redis error or malformed replies.", st.redis_errors);
			mg_prom_counter1(p, "mcp_guard_redis_timeouts_total",
			                 "Redis checks answered by the timeout.",
			                 st.redis_timeouts);
		}
	}
	mg_prom_family(p, "mcp_guard_config_reloads_total", "counter",
	               "Configuration reloads (SIGHUP) by result.");
	struct mg_prom_label rl[] = { { "result", "success" } };
	mg_prom_sample_u64(p, "", rl, 1, gw->reloads_ok);
	rl[0].value = "failure";
	mg_prom_sample_u64(p, "", rl, 1, gw->reloads_failed);
	mg_prom_gauge1(p, "mcp_guard_config_last_reload_successful",
	               "0 when the last reload failed (the running configuration is not the "
	               "file's), else 1.",
	               gw->last_reload_ok ? 1 : 0);
	mg_prom_gauge1(p, "mcp_guard_config_last_reload_success_timestamp_seconds",
	               "When the configuration in force was loaded (start or last good reload).",
	               (double)gw->config_loaded_unix_us / 1e6);
	struct mg_prom_label bl[] = { { "version", MG_VERSION }, { "revision", MG_GIT_COMMIT } };
	mg_prom_family(p, "mcp_guard_build_info", "gauge",
	               "Always 1; the version and the commit built as labels.");
	mg_prom_sample(p, "", bl, 2, 1);
}

static void collect_tracer(struct mg_prom *p, void *arg)
{
	struct mg_tracer_stats st;
	mg_tracer_stats(arg, &st);
	mg_prom_counter1(p, "mcp_guard_trace_spans_exported_total",
	                 "Spans the OTLP collector accepted.", st.exported);
	mg_prom_counter1(p, "mcp_guard_trace_spans_dropped_total",
	                 "Spans dropped: the export queue was full, or a batch was given up.",
	                 st.dropped);
	mg_prom_counter1(p, "mcp_guard_trace_export_failures_total",
	                 "Export attempts that failed (each retry counts).", st.failed_exports);
	mg_prom_gauge1(p, "mcp_guard_trace_queue_spans", "Spans waiting for export.",
	               (double)st.queued);
	mg_prom_gauge1(p, "mcp_guard_trace_queue_size", "Spans the export queue holds at most.",
	               (double)st.capacity);
}

static void collect_audit(struct mg_prom *p, void *arg)
{
	struct mg_audit_stats st;
	mg_audit_stats(arg, &st);
	mg_prom_gauge1(p, "mcp_guard_audit_queue_depth", "Audit events waiting for the writer.",
	               (double)st.queue_depth);
	mg_prom_gauge1(p, "mcp_guard_audit_queue_size", "Capacity of the audit queue.",
	               (double)st.queue_size);
	mg_prom_counter1(p, "mcp_guard_audit_events_total", "Audit events recorded.", st.emitted);
	mg_prom_counter1(p, "mcp_guard_audit_written_total",
	                 "Audit events written to stdout or the file.", st.written);
	mg_prom_counter1(p, "mcp_guard_audit_exported_total",
	                 "Audit events the export sink accepted (2xx).", st.exported);
	mg_prom_counter1(p, "mcp_guard_audit_spooled_total",
	                 "Audit events written to the spool because the sink could not take them.",
	                 st.spooled);
	mg_prom_gauge1(p, "mcp_guard_audit_spool_events", "Audit events waiting in the spool.",
	               (double)st.spool_pending);
	mg_prom_counter1(p, "mcp_guard_audit_dropped_total",
	                 "Audit events lost (queue full, spool full, sink failure).", st.dropped);
	mg_prom_counter1(p, "mcp_guard_audit_export_errors_total",
	                 "Audit export attempts that failed (each retry counts).",
	                 st.export_errors);
	mg_prom_counter1(p, "mcp_guard_audit_write_errors_total",
	                 "Audit writes to stdout or the file that failed.", st.write_errors);
}

/* ---- the endpoint ------------------------------------------------------------------- */

static void reply_metrics(struct mg_gateway *gw, struct mg_http_req *req)
{
	uint64_t now = mg_now_us();
	/* An open session keeps its identity active whether or not it spoke. */
	for (size_t i = 0; i < gw->nbuckets; i++) {
		for (struct mg_session *s = gw->buckets[i]; s; s = s->next)
			mg_metrics_identity_seen(gw->metrics, s->identity, now);
	}
	struct mg_buf out;
	mg_buf_init(&out, 0);
	mg_metrics_render(gw->metrics, &out, now);
	struct mg_http_hdr h[] = { { "Cache-Control", "no-store" } };
	mg_http_reply(req, 200, MG_PROM_CONTENT_TYPE, h, 1, out.data ? out.data : "", out.len);
	mg_buf_free(&out);
}

/* A scrape waiting for authentication (a JWKS fetch). */
struct scrape {
	struct mg_gateway *gw;
	struct mg_http_req *req;
	struct mg_auth *auth;
	struct mg_auth_wait *wait;
};

static void scrape_decided(struct mg_gateway *gw, struct mg_http_req *req, struct mg_auth *auth,
                           const struct mg_auth_outcome *o)
{
	mg_obs_auth(gw, req, o);
	if (o->status == MG_AUTH_OK) {
		mg_identity_unref(o->identity);
		reply_metrics(gw, req);
		return;
	}
	if (o->status != MG_AUTH_UNAVAILABLE)
		mg_mcp_ip_charge(gw, req);
	mg_mcp_reply_auth_failure(gw, req, auth, o);
}

static void on_scrape_auth(const struct mg_auth_outcome *o, void *arg)
{
	struct scrape *sc = arg;
	mg_http_req_on_close(sc->req, NULL, NULL);
	scrape_decided(sc->gw, sc->req, sc->auth, o);
	mg_auth_unref(sc->auth);
	free(sc);
}

static void on_scrape_close(struct mg_http_req *req, void *arg)
{
	struct scrape *sc = arg;
	(void)req;
	mg_auth_cancel(sc->wait);
	mg_auth_unref(sc->auth);
	free(sc);
}

static void handle_metrics(struct mg_gateway *gw, struct mg_http_req *req)
{
	const char *method = mg_http_req_method(req);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		struct mg_http_hdr h[] = { { "Allow", "GET, HEAD" } };
		json_t *e =
		    mg_rpc_error_new(NULL, MG_RPC_INVALID_REQUEST, "Method Not Allowed", NULL);
		mg_reply_json(req, 405, e, h, 1);
		json_decref(e);
		return;
	}
	if (!gw->cfg->metrics.require_auth || !mg_auth_enabled(gw->auth)) {
		reply_metrics(gw, req);
		return;
	}
	if (!mg_mcp_ip_allowed_or_reply(gw, req))
		return;
	struct scrape *sc = calloc(1, sizeof *sc);
	if (!sc) {
		mg_reply_rpc_error(req, 503, NULL, MG_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	*sc = (struct scrape){ .gw = gw, .req = req, .auth = mg_auth_ref(gw->auth) };
	struct mg_auth_request ar = {
		.authorization = mg_http_req_header(req, "Authorization"),
		.api_key = mg_http_req_header(req, "X-API-Key"),
		.peer = mg_http_req_peer_addr(req),
		.ssl = mg_http_req_ssl(req),
		.fwd_cn = mg_http_req_header(req, "X-Client-Cert-CN"),
		.fwd_san_dns = mg_http_req_header(req, "X-Client-Cert-SAN-DNS"),
		.fwd_san_email = mg_http_req_header(req, "X-Client-Cert-SAN-Email"),
		.fwd_verified = mg_http_req_header(req, "X-Client-Cert-Verified"),
		.now = (int64_t)time(NULL),
	};
	struct mg_auth_outcome o;
	if (mg_auth_authenticate(sc->auth, &ar, &o, on_scrape_auth, sc, &sc->wait)) {
		scrape_decided(gw, req, sc->auth, &o);
		mg_auth_unref(sc->auth);
		free(sc);
		return;
	}
	mg_http_req_on_close(req, on_scrape_close, sc);
}

bool mg_obs_route(struct mg_gateway *gw, struct mg_http_req *req)
{
	if (!gw->metrics || strcmp(mg_http_req_path(req), gw->cfg->metrics.path) != 0)
		return false;
	handle_metrics(gw, req);
	return true;
}

/* The admin listener: the metrics path and the health endpoints only. */
static void on_admin_request(struct mg_http_req *req, void *arg)
{
	struct mg_gateway *gw = arg;
	const char *path = mg_http_req_path(req);
	if (mg_obs_route(gw, req))
		return;
	if (strcmp(path, "/health") == 0 || strcmp(path, "/live") == 0 ||
	    strcmp(path, "/ready") == 0) {
		mg_gateway_on_request(req, gw);
		return;
	}
	char m[200];
	snprintf(m, sizeof m, "Not Found: this address serves %s, /health, /live and /ready",
	         gw->cfg->metrics.path);
	mg_reply_rpc_error(req, 404, NULL, MG_RPC_INVALID_REQUEST, m, NULL);
}

int mg_obs_start(struct mg_gateway *gw, const struct mg_http_server_opts *main_opts, char *err,
                 size_t err_size)
{
	const struct mg_metrics_config *mc = &gw->cfg->metrics;
	if (gw->cfg->tracing.enabled) {
		char e[300];
		gw->tracer = mg_tracer_new(&gw->cfg->tracing, e, sizeof e);
		if (!gw->tracer) {
			snprintf(err, err_size, "tracing: %s", e);
			return -1;
		}
		mg_log_info("tracing: spans of %.0f%% of new traces go to %s/v1/traces",
		            gw->cfg->tracing.sample_rate * 100, gw->cfg->tracing.otlp_endpoint);
	}
	if (!mc->enabled)
		return 0;
	const char *names[gw->n_routes ? gw->n_routes : 1];
	for (size_t i = 0; i < gw->n_routes; i++)
		names[i] = gw->routes[i]->name;
	gw->metrics = mg_metrics_new(names, gw->n_routes);
	for (size_t i = 0; gw->metrics && i < gw->n_routes; i++) {
		const struct mg_upstream *up = gw->routes[i]->up;
		bool stdio = !up || up->cfg->transport == MG_TRANSPORT_STDIO;
		mg_metrics_upstream_transport(gw->metrics, i, stdio ? "pipe" : "tcp");
	}
	if (!gw->metrics || mg_metrics_add_collector(gw->metrics, collect_gateway, gw) < 0 ||
	    (gw->tracer && mg_metrics_add_collector(gw->metrics, collect_tracer, gw->tracer) < 0) ||
	    (gw->audit && mg_metrics_add_collector(gw->metrics, collect_audit, gw->audit) < 0)) {
		snprintf(err, err_size, "metrics: out of memory");
		return -1;
	}
	if (!mc->listen)
		return 0;
	char host[256];
	int port;
	if (mg_hostport_split(mc->listen, host, sizeof host, &port) < 0) {
		snprintf(err, err_size, "metrics.listen: expected host:port");
		return -1;
	}
	struct mg_http_server_opts o = *main_opts;
	o.host = host;
	o.port = port;
	o.max_connections = 64;
	o.max_body_bytes = 4096;
	o.tls = NULL;
	o.on_request = on_admin_request;
	o.on_done = NULL;
	o.arg = gw;
	char e[300];
	gw->admin = mg_http_server_new(gw->base, &o, e, sizeof e);
	if (!gw->admin) {
		snprintf(err, err_size, "metrics.listen: %s", e);
		return -1;
	}
	mg_log_info("metrics on http://%s%s%s:%d%s (%s)", strchr(host, ':') ? "[" : "", host,
	            strchr(host, ':') ? "]" : "", mg_http_server_port(gw->admin), mc->path,
	            mc->require_auth && mg_auth_enabled(gw->auth) ? "credentials required"
	                                                          : "no credentials required");
	if (!mc->require_auth && !mg_host_is_loopback(host))
		mg_log_warn("metrics.listen %s is not a loopback address and require_auth = false: "
		            "anyone who can reach it can read the metrics",
		            mc->listen);
	return 0;
}

void mg_obs_free(struct mg_gateway *gw)
{
	if (gw->admin)
		mg_http_server_free(gw->admin);
	gw->admin = NULL;
	mg_metrics_free(gw->metrics);
	gw->metrics = NULL;
	mg_tracer_free(gw->tracer); /* exports what is queued */
	gw->tracer = NULL;
	while (gw->trace_free) {
		void *next = *(void **)gw->trace_free;
		free(gw->trace_free);
		gw->trace_free = next;
	}
	gw->n_trace_free = 0;
}
