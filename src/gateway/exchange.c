/*
 * exchange.c - one client request in flight to an upstream (struct
 * mg_exchange): started on a channel, answered, or ended by the client
 * leaving or by its deadline - exactly one of the three.
 *
 * An exchange answers with JSON unless something must be streamed before
 * the response (progress, a server→client request, a log message while it
 * is the only request in flight): then it switches to SSE. Closing the
 * response (or the connection) cancels the request upstream. Every request
 * has a deadline (upstream.request_timeout_secs or server.request_timeout_secs)
 * after which it is cancelled upstream and answered with an error.
 *
 * Also here: the fast path (a request sent as the client's bytes with the
 * minted id spliced in; a result relayed as text), bridging between the
 * eras (a modern client in front of a legacy upstream and the reverse),
 * learning x-mcp-header parameters from tools/list, list filtering per
 * identity, and the audit record of a tools/call's result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "authz/authz.h"
#include "gateway/internal.h"
#include "gateway/pipeline.h"
#include "mcp/jscan.h"
#include "mcp/jtext.h"
#include "mcp/params.h"
#include "trace/trace.h"
#include "util/clock.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/str.h"

/* The raw name of the tool an audited tools/call calls, or NULL. */
static const char *audit_tool(const struct mg_exchange *x)
{
	return x->audit_members ? x->audit_members + x->audit_members_len + 1 : NULL;
}

/* The tool_call_result of exchange `x`: `msg` is the answer (a tree), or
 * `result`/`rlen` its result member as text (fast path; `tool_error`: it
 * said isError), or neither (the client left). */
static void audit_result(struct mg_exchange *x, const json_t *msg, const char *result, size_t rlen,
                         bool tool_error, const char *why)
{
	struct mg_gateway *gw = x->gw;
	json_t *res = msg ? json_object_get(msg, "result") : NULL;
	json_t *err = msg ? json_object_get(msg, "error") : NULL;
	json_t *parsed = NULL;
	int ok = 0;
	if (result) {
		ok = !tool_error;
		if (mg_audit_wants_results(gw->audit))
			res = parsed = json_loadb(result, rlen, 0, NULL);
	} else if (msg) {
		ok = !err && !json_is_true(json_object_get(res, "isError"));
		if (err)
			why = json_string_value(json_object_get(err, "message"));
		else if (!ok)
			why = "the tool reported an error (isError)";
	}
	/* the members (request id … tool) as the tool_call record has them */
	uint64_t now = mg_now_us();
	struct mg_audit_event ev = {
		.type = MG_AUDIT_TOOL_CALL_RESULT,
		.at_us = now,
		.success = ok,
		.message = why,
		.duration_ms = (int64_t)((now - x->start_us) / 1000),
		.result = res,
		.members = x->audit_members,
		.members_len = x->audit_members_len,
	};
	mg_audit_emit(gw->audit, &ev);
	json_decref(parsed);
	if (x->audit_members != x->audit_inline)
		free(x->audit_members);
	x->audit_members = NULL;
}

/* The tools/call is recorded (tool_call); its members are written as JSON once,
 * for this record and the tool_call_result one, in one block with the raw
 * tool name after them (audit_tool, for other events of the call). */
static void audit_call(struct mg_exchange *x, const struct mg_rpc_msg *msg,
                       const struct mg_identity *id, const char *tool, size_t tool_len,
                       uint64_t now)
{
	char tid[33];
	mg_pipeline_trace_hex(&x->log, tid);
	struct mg_audit_event ev = {
		.type = MG_AUDIT_TOOL_CALL,
		.at_us = now,
		.request_id = x->audit_rid,
		.trace_id = tid,
		.identity = id ? id->id : NULL,
		.provider = id ? id->provider : NULL,
		.client = x->audit_client,
		.server = x->route->name,
		.method = msg->method,
		.tool = tool,
		.success = -1,
		.duration_ms = -1,
		.arguments = mg_audit_wants_arguments(x->gw->audit)
		                 ? json_object_get(msg->params, "arguments")
		                 : NULL,
	};
	/* (most calls fit the exchange's own buffer: no allocation) */
	char *buf = x->audit_inline;
	size_t room = MG_X_AUDIT_INLINE > tool_len + 1 ? MG_X_AUDIT_INLINE - tool_len - 1 : 0;
	size_t len = mg_audit_members_into(&ev, buf, room);
	if (len >= room) {
		buf = malloc(len + tool_len + 1);
		if (!buf) {
			mg_log_error("audit: out of memory: tools/call %.*s not recorded",
			             (int)(tool_len < 128 ? tool_len : 128), tool);
			return;
		}
		len = mg_audit_members_into(&ev, buf, len);
	}
	memcpy(buf + len + 1, tool, tool_len);
	buf[len + 1 + tool_len] = '\0';
	x->audit_members = buf;
	x->audit_members_len = len;
	ev.members = x->audit_members;
	ev.members_len = len;
	mg_audit_emit(x->gw->audit, &ev);
}

/* ---- exchanges --------------------------------------------------------------------- */

void mg_exchange_free(struct mg_exchange *x)
{
	struct mg_gateway *gw = x->gw;
	/* every audited tools/call gets its result record, however it ended */
	if (x->audit_members)
		audit_result(x, NULL, NULL, 0, false,
		             "the call ended without an answer (cancelled)");
	if (x->session) {
		if (x->prev)
			x->prev->next = x->next;
		else
			x->session->exchanges = x->next;
		if (x->next)
			x->next->prev = x->prev;
		x->session->n_exchanges--;
		mg_session_touch(x->session);
	} else {
		if (x->prev)
			x->prev->next = x->next;
		else
			gw->modern = x->next;
		if (x->next)
			x->next->prev = x->prev;
	}
	mg_obs_exchange_end(x);
	if (x->timeout)
		event_free(x->timeout);
	mg_stream_detach(&x->stream);
	json_decref(x->orig_id);
	json_decref(x->orig_token);
	mg_identity_unref(x->identity);
	free(x);
}

/* Sends `text` (a serialized message, id already restored; owned, NULL
 * when it could not be built) as the final answer and frees. `status`
 * applies when the answer is JSON (a stream has already sent its 200). */
static void exchange_finish_text(struct mg_exchange *x, char *text, size_t len, int status)
{
	struct mg_http_req *req = x->req;
	x->req = NULL;
	if (req) {
		mg_http_req_on_close(req, NULL, NULL);
		if (x->sse) {
			if (text && mg_stream_send(&x->stream, text, len) == 0)
				mg_stream_end(&x->stream);
		} else if (text) {
			mg_http_reply(req, status, "application/json", NULL, 0, text, len);
		} else {
			mg_reply_rpc_error(req, 500, x->orig_id, MG_RPC_INTERNAL_ERROR,
			                   "cannot encode the response", NULL);
		}
	}
	free(text);
	mg_exchange_free(x);
}

/* How the upstream's side of the call ended, from its answer `msg`,
 * unless the gateway already said (a timeout, an abort, a bridging
 * refusal of a good answer). Errors the channel made up for an upstream
 * that went away carry mcpGuard: "upstream_unavailable". */
static void upstream_outcome(struct mg_exchange *x, json_t *msg)
{
	if (!x->up_decided) {
		x->up_decided = true;
		x->up_error = mg_obs_answer_error(msg, strcmp(x->method, "tools/call") == 0);
	}
	mg_obs_upstream_done(x);
}

static void exchange_finish(struct mg_exchange *x, json_t *msg, int status)
{
	if (x->audit_members)
		audit_result(x, msg, NULL, 0, false, NULL);
	x->answer = json_object_get(msg, "error") ? MG_X_ERROR : MG_X_OK;
	upstream_outcome(x, msg);
	mg_obs_answer(x->req, msg);
	size_t len = 0;
	char *text = mg_json_dump(msg, &len);
	exchange_finish_text(x, text, len, status);
}

static void exchange_error(struct mg_exchange *x, int code, const char *message, json_t *data)
{
	json_t *e = mg_rpc_error_new(x->orig_id, code, message, data);
	exchange_finish(x, e, 200);
	json_decref(e);
}

void mg_exchange_abort(struct mg_exchange *x, int code, const char *why)
{
	if (!x->up_decided) {
		x->up_decided = true;
		x->up_error = MG_ET_CANCELLED;
	}
	mg_channel_cancel(&x->call, why);
	exchange_error(x, code, why, json_pack("{s:s}", "mcpGuard", "aborted"));
}

/* Switches the answer to an SSE stream. false when the client cannot read one. */
static bool exchange_sse(struct mg_exchange *x)
{
	if (x->sse)
		return true;
	if (!x->accept_sse || !x->req)
		return false;
	uint64_t number = x->session ? x->session->next_stream++ : 0;
	mg_stream_begin(&x->stream, x->gw, x->req, number, NULL, 0);
	x->sse = true;
	if (number)
		mg_stream_prime(&x->stream);
	return true;
}

/* Sends an intermediate message on the exchange's stream. */
bool mg_exchange_push(struct mg_exchange *x, json_t *msg)
{
	if (x->req && x->session && x->session->legacy_sse && mg_http_req_diverted(x->req)) {
		/* 2024-11-05: everything for the client travels on its one stream. */
		mg_deliver_json(x->session, msg);
		return true;
	}
	if (!exchange_sse(x))
		return false;
	size_t len;
	char *text = mg_json_dump(msg, &len);
	if (!text)
		return false;
	int rc = mg_stream_send(&x->stream, text, len);
	free(text);
	if (rc < 0) {
		/* The client stopped reading: treat as gone. */
		x->req = NULL;
		mg_channel_cancel(&x->call, "client stopped reading");
		mg_exchange_free(x);
		return true;
	}
	return true;
}

/* Results that 2026-07-28 defines as CacheableResult (ttlMs, cacheScope). */
static bool cacheable_method(const char *m)
{
	return strcmp(m, "tools/list") == 0 || strcmp(m, "prompts/list") == 0 ||
	       strcmp(m, "resources/list") == 0 || strcmp(m, "resources/templates/list") == 0 ||
	       strcmp(m, "resources/read") == 0;
}

/* A modern answer's HTTP status follows its error (Streamable HTTP 2026-07-28). */
static int modern_status(json_t *msg)
{
	json_t *err = json_object_get(msg, "error");
	if (!err)
		return 200;
	switch (json_integer_value(json_object_get(err, "code"))) {
	case MG_RPC_METHOD_NOT_FOUND:
		return 404;
	case MG_RPC_HEADER_MISMATCH:
	case MG_RPC_MISSING_CAPABILITY:
	case MG_RPC_UNSUPPORTED_VERSION:
		return 400;
	default:
		return 200;
	}
}

/* Makes a legacy result valid for a modern client. */
static void bridge_result_to_modern(struct mg_exchange *x, json_t *result)
{
	if (!json_object_get(result, "resultType"))
		json_object_set_new(result, "resultType", json_string("complete"));
	if (cacheable_method(x->method) && !json_object_get(result, "ttlMs")) {
		/* A legacy server says nothing about caching: do not cache, and
		 * never share between users. */
		json_object_set_new(result, "ttlMs", json_integer(0));
		json_object_set_new(result, "cacheScope", json_string("private"));
	}
}

/* Makes a modern result valid for a legacy client; false when it cannot be
 * (a multi-round-trip request for input). */
static bool bridge_result_to_legacy(json_t *result)
{
	const char *rt = json_string_value(json_object_get(result, "resultType"));
	if (rt && strcmp(rt, "complete") != 0)
		return false;
	json_object_del(result, "resultType");
	return true;
}

static void on_reply_in(struct mg_call *call, json_t *msg, void *arg)
{
	struct mg_exchange *x = arg;
	(void)call;
	json_object_set(msg, "id", x->orig_id);
	json_t *result = json_object_get(msg, "result");
	if (strcmp(x->method, "tools/list") == 0 && json_is_object(result)) {
		mg_route_pin_tools(x->route, json_object_get(result, "tools"));
		mg_mcp_params_learn(x->route->tool_params, json_object_get(result, "tools"));
	}
	/* Lists show only what this identity may use (after learning from the
	 * whole list). Unrestricted identities skip the walk entirely. */
	if (x->identity && json_is_object(result) && mg_authz_restricted(x->identity)) {
		struct mg_authz_scope sc = { .server = x->route->name,
			                     .sep = x->gw->cfg->upstream.tool_separator };
		mg_authz_filter_in(x->identity, x->method, result, &sc);
	}
	if (x->bridge == MG_BRIDGE_TO_LEGACY && json_is_object(result))
		bridge_result_to_modern(x, result);
	if (x->bridge == MG_BRIDGE_TO_MODERN && json_is_object(result) &&
	    !bridge_result_to_legacy(result)) {
		x->up_decided = true; /* the upstream answered; the client cannot take it */
		x->up_error = MG_ET_NONE;
		json_t *e = mg_rpc_error_new(x->orig_id, MG_RPC_INTERNAL_ERROR,
		                             "the upstream asked for more input (2026-07-28 multi "
		                             "round-trip), which a legacy client cannot answer",
		                             json_pack("{s:s}", "mcpGuard", "input_required"));
		exchange_finish(x, e, 200);
		json_decref(e);
		return;
	}
	exchange_finish(x, msg, x->modern ? modern_status(msg) : 200);
}

/* on_reply with the exchange's request as the log context. */
static void on_reply(struct mg_call *call, json_t *msg, void *arg)
{
	struct mg_log_ctx prev = mg_log_ctx_set(&((struct mg_exchange *)arg)->log);
	on_reply_in(call, msg, arg);
	mg_log_ctx_restore(prev);
}

/* The parsed path for a reply that arrived as text (mg_rpc_parse accepts
 * whatever mg_jscan accepted; a failure is only out of memory, and then
 * the client gets an error and false is returned). */
static bool reply_parsed(struct mg_call *call, const char *text, size_t len, struct mg_exchange *x)
{
	struct mg_rpc_msg msg;
	struct mg_rpc_fail fail;
	if (mg_rpc_parse(text, len, (size_t)x->gw->cfg->server.max_json_depth, false, &msg, &fail) <
	    0) {
		json_decref(fail.id);
		exchange_error(x, MG_RPC_INTERNAL_ERROR, "cannot relay the upstream's answer",
		               NULL);
		return false;
	}
	on_reply(call, msg.root, x);
	mg_rpc_msg_free(&msg);
	return true;
}

/* The fast path: the upstream's result relayed as it came, with the client's
 * id spliced in where the minted one was. Only offered (mg_exchange_start) when
 * nothing else in the answer changes: no bridging, no list filtering for
 * this identity; tools/list only when the gateway learned from the same
 * list already. */
static void on_raw_reply_in(struct mg_call *call, const char *text, size_t len,
                            const struct mg_jscan *js, void *arg)
{
	struct mg_exchange *x = arg;
	char num[MG_I64_CHARS];
	char *dumped = NULL;
	const char *id = num;
	size_t id_len;
	if (json_is_integer(x->orig_id)) {
		id_len = mg_fmt_i64(num, json_integer_value(x->orig_id));
	} else {
		dumped = mg_json_dump(x->orig_id, &id_len);
		id = dumped;
	}
	size_t tail = len - js->id.end;
	x->answer = MG_X_OK;
	/* Only a tools/call result can say isError (metrics and audit ask). */
	bool tool_error = (x->req || x->audit_members || x->gw->metrics) &&
	                  strcmp(x->method, "tools/call") == 0 &&
	                  mg_jtext_member_true(text, js->result, "isError");
	x->up_decided = true;
	x->up_error = tool_error ? MG_ET_TOOL_ERROR : MG_ET_NONE;
	mg_obs_upstream_done(x);
	mg_obs_raw_answer(x->req, tool_error);
	if (!id)
		goto parsed;
	if (strcmp(x->method, "tools/list") == 0) {
		/* The gateway learns tool parameters from this list; the same
		 * result as last time teaches nothing new (learning overwrites per
		 * tool name), so only a different one takes the parsed path. */
		uint8_t digest[MG_SHA256_LEN];
		mg_sha256(text + js->result.start, js->result.end - js->result.start, digest);
		struct mg_route *r = x->route;
		if (!mg_route_learned(r, digest)) {
			free(dumped);
			if (reply_parsed(call, text, len, x))
				mg_route_learned_add(r, digest);
			return;
		}
	}
	if (x->req && !x->sse) {
		/* A plain JSON answer: the three pieces go out as they are. */
		struct iovec parts[3] = {
			{ .iov_base = (void *)text, .iov_len = js->id.start },
			{ .iov_base = (void *)id, .iov_len = id_len },
			{ .iov_base = (void *)(text + js->id.end), .iov_len = tail },
		};
		struct mg_http_req *req = x->req;
		x->req = NULL;
		if (x->audit_members)
			audit_result(x, NULL, text + js->result.start,
			             js->result.end - js->result.start, tool_error, NULL);
		mg_http_req_on_close(req, NULL, NULL);
		mg_http_reply_parts(req, 200, "application/json", NULL, 0, parts, 3);
		free(dumped);
		mg_exchange_free(x);
		return;
	}
	char *out = malloc(js->id.start + id_len + tail);
	if (!out)
		goto parsed;
	memcpy(out, text, js->id.start);
	memcpy(out + js->id.start, id, id_len);
	memcpy(out + js->id.start + id_len, text + js->id.end, tail);
	free(dumped);
	if (x->audit_members)
		audit_result(x, NULL, text + js->result.start, js->result.end - js->result.start,
		             tool_error, NULL);
	exchange_finish_text(x, out, js->id.start + id_len + tail, 200);
	return;
parsed:
	/* Take the ordinary path; it reports what fails. */
	free(dumped);
	(void)reply_parsed(call, text, len, x);
}

/* on_raw_reply with the exchange's request as the log context. */
static void on_raw_reply(struct mg_call *call, const char *text, size_t len,
                         const struct mg_jscan *js, void *arg)
{
	struct mg_log_ctx prev = mg_log_ctx_set(&((struct mg_exchange *)arg)->log);
	on_raw_reply_in(call, text, len, js, arg);
	mg_log_ctx_restore(prev);
}

/* A notification for this exchange: progress for its token, or (modern
 * upstream) a subscription notification naming it. */
static void on_progress_in(struct mg_call *call, json_t *msg, void *arg)
{
	struct mg_exchange *x = arg;
	(void)call;
	json_t *params = json_object_get(msg, "params");
	if (!json_is_object(params))
		return;
	json_t *meta = json_object_get(params, "_meta");
	if (json_is_object(meta) && json_object_get(meta, MG_MCP_META_SUBSCRIPTION)) {
		json_object_set(meta, MG_MCP_META_SUBSCRIPTION, x->orig_id);
	} else {
		if (!x->orig_token)
			return;
		json_object_set(params, "progressToken", x->orig_token);
	}
	mg_exchange_push(x, msg);
}

/* on_progress with the exchange's request as the log context. */
static void on_progress(struct mg_call *call, json_t *msg, void *arg)
{
	struct mg_log_ctx prev = mg_log_ctx_set(&((struct mg_exchange *)arg)->log);
	on_progress_in(call, msg, arg);
	mg_log_ctx_restore(prev);
}

static long request_timeout(struct mg_gateway *gw, const struct mg_route *r)
{
	const struct mg_upstream_config *u = r->up->cfg;
	return u->request_timeout_secs ? (long)u->request_timeout_secs
	                               : (long)gw->cfg->server.request_timeout_secs;
}

static void on_exchange_timeout_in(evutil_socket_t fd, short what, void *arg)
{
	struct mg_exchange *x = arg;
	(void)fd;
	(void)what;
	char m[256];
	snprintf(m, sizeof m, "the upstream did not answer %s within %ld s; request cancelled",
	         x->method, request_timeout(x->gw, x->route));
	mg_log_warn("upstream %s: %s", x->route->name, m);
	if (x->gw->audit) {
		char tid[33];
		mg_pipeline_trace_hex(&x->log, tid);
		struct mg_audit_event ev = { .type = MG_AUDIT_UPSTREAM_ERROR,
			                     .request_id = x->audit_rid[0] ? x->audit_rid : NULL,
			                     .trace_id = tid,
			                     .server = x->route->name,
			                     .method = x->method,
			                     .tool = audit_tool(x),
			                     .success = 0,
			                     .message = m,
			                     .duration_ms = -1 };
		mg_audit_emit(x->gw->audit, &ev);
	}
	mg_channel_cancel(&x->call, "request timed out at the gateway");
	x->up_decided = true;
	x->up_error = MG_ET_TIMEOUT;
	exchange_error(x, MG_RPC_INTERNAL_ERROR, m, json_pack("{s:s}", "mcpGuard", "timeout"));
}

/* on_exchange_timeout with the exchange's request as the log context. */
static void on_exchange_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mg_log_ctx prev = mg_log_ctx_set(&((struct mg_exchange *)arg)->log);
	on_exchange_timeout_in(fd, what, arg);
	mg_log_ctx_restore(prev);
}

static void on_exchange_client_close_in(struct mg_http_req *req, void *arg)
{
	struct mg_exchange *x = arg;
	(void)req;
	x->req = NULL;
	mg_stream_detach(&x->stream);
	mg_channel_cancel(&x->call, "client disconnected");
	if (x->audit_members)
		audit_result(x, NULL, NULL, 0, false,
		             "the client left before the answer; call cancelled");
	mg_exchange_free(x);
}

/* on_exchange_client_close with the exchange's request as the log context. */
static void on_exchange_client_close(struct mg_http_req *req, void *arg)
{
	struct mg_log_ctx prev = mg_log_ctx_set(&((struct mg_exchange *)arg)->log);
	on_exchange_client_close_in(req, arg);
	mg_log_ctx_restore(prev);
}

/* Removes the io.modelcontextprotocol/ keys a legacy upstream does not know. */
static void strip_modern_meta(json_t *params)
{
	json_t *meta = json_object_get(params, "_meta");
	if (!json_is_object(meta))
		return;
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(meta, tmp, k, v)
	{
		(void)v;
		if (strncmp(k, "io.modelcontextprotocol/", 24) == 0)
			json_object_del(meta, k);
	}
	if (json_object_size(meta) == 0)
		json_object_del(params, "_meta");
}

/* Forwards a request. Answers the client itself on failure. */
/* 2026-07-28 _meta for a legacy session's request to a modern-only upstream. */
static void add_modern_meta(struct mg_session *s, json_t *root)
{
	json_t *params = json_object_get(root, "params");
	if (!json_is_object(params)) {
		params = json_object();
		json_object_set_new(root, "params", params);
	}
	json_t *meta = json_object_get(params, "_meta");
	if (!json_is_object(meta)) {
		meta = json_object();
		json_object_set_new(params, "_meta", meta);
	}
	json_object_set_new(meta, MG_MCP_META_VERSION, json_string(MG_MCP_MODERN_VERSION));
	json_object_set(meta, MG_MCP_META_CLIENTINFO,
	                s->client_info
	                    ? s->client_info
	                    : json_pack("{s:s,s:s}", "name", "mcp-guard", "version", "1"));
	json_object_set(meta, MG_MCP_META_CLIENTCAPS,
	                s->client_caps ? s->client_caps : json_object());
}

/* The log level a modern request opted into with _meta, or -1. */
static int meta_log_level(const struct mg_rpc_msg *msg)
{
	json_t *meta = msg->params ? json_object_get(msg->params, "_meta") : NULL;
	json_t *lv = json_is_object(meta) ? json_object_get(meta, MG_MCP_META_LOGLEVEL) : NULL;
	return json_is_string(lv) ? mg_pipeline_log_level_index(json_string_value(lv)) : -1;
}

/* The client's bytes with the first msg->name_cut bytes of params.name
 * removed (a federated name's server prefix), when the text says what the
 * tree says; false when it does not (the tree is sent instead). */
static bool send_cut(struct mg_channel *ch, struct mg_call *call, const char *body, size_t len,
                     const struct mg_jscan *js, const struct mg_rpc_msg *msg, int *rc)
{
	const char *name = json_string_value(json_object_get(msg->params, "name"));
	struct mg_jspan v;
	if (!name || !mg_jtext_member(body, js->params, "name", &v) ||
	    !mg_jtext_plain_string(body, v))
		return false;
	size_t nl = strlen(name), cut = msg->name_cut, at = v.start + 1;
	if (v.end - v.start - 2 != cut + nl || memcmp(body + at + cut, name, nl) != 0)
		return false;
	char *text = malloc(len - cut);
	if (!text)
		return false;
	memcpy(text, body, at);
	memcpy(text + at, body + at + cut, len - at - cut);
	size_t id_start = js->id.start, id_end = js->id.end;
	if (id_start > at) {
		id_start -= cut;
		id_end -= cut;
	}
	*rc = mg_channel_request_text(ch, call, text, len - cut, id_start, id_end);
	free(text);
	return true;
}

static size_t skip_ws(const char *t, size_t p, size_t end)
{
	while (p < end && (t[p] == ' ' || t[p] == '\t' || t[p] == '\n' || t[p] == '\r'))
		p++;
	return p;
}

/* true when the first non-blank byte at p closes the object (the text was
 * validated by mg_jscan, so an object always closes; bounded all the same). */
static bool closes_at(const char *t, size_t p, size_t end)
{
	p = skip_ws(t, p, end);
	return p < end && t[p] == '}';
}

/* The client's bytes with the trace context of the upstream call (`tp`,
 * `ts`: mg_obs_trace_inject) inserted as text into params._meta; false
 * when the text cannot take it simply - no params, a _meta that is not an
 * object or already holds a context, a tracestate that would need escaping
 * - and the tree is sent instead. */
static bool send_traced(struct mg_channel *ch, struct mg_call *call, const char *body, size_t len,
                        const struct mg_jscan *js, const char *tp, const char *ts, int *rc)
{
	if (!js->params.end || (ts && strpbrk(ts, "\"\\")))
		return false;
	/* "_meta":{"traceparent":"…","tracestate":"…"}, at most */
	char ins[MG_TRACESTATE_MAX + 128];
	size_t tsl = ts ? strlen(ts) : 0;
	if (tsl > MG_TRACESTATE_MAX)
		return false;
	struct mg_jspan m;
	size_t at, n = 0;
	bool wrap = !mg_jtext_member(body, js->params, "_meta", &m);
	if (wrap) {
		at = js->params.start + 1;
	} else {
		static const char *const keys[2] = { "traceparent", "tracestate" };
		struct mg_jspan had[2];
		if (body[m.start] != '{' || mg_jtext_members(body, m, keys, 2, had) > 0)
			return false;
		at = m.start + 1;
	}
#define PUT(s, l) (memcpy(ins + n, s, l), n += (l))
	if (wrap)
		PUT("\"_meta\":{", 9);
	PUT("\"traceparent\":\"", 15);
	PUT(tp, MG_TRACEPARENT_LEN);
	PUT("\"", 1);
	if (ts) {
		PUT(",\"tracestate\":\"", 15);
		PUT(ts, tsl);
		PUT("\"", 1);
	}
	if (wrap)
		PUT("}", 1);
	if (!closes_at(body, at, len))
		PUT(",", 1);
#undef PUT
	char *text = malloc(len + n);
	if (!text)
		return false;
	memcpy(text, body, at);
	memcpy(text + at, ins, n);
	memcpy(text + at + n, body + at, len - at);
	size_t id_start = js->id.start, id_end = js->id.end;
	if (id_start >= at) {
		id_start += n;
		id_end += n;
	}
	*rc = mg_channel_request_text(ch, call, text, len + n, id_start, id_end);
	free(text);
	return true;
}

/* Sends the request upstream. When the gateway changes nothing in it but
 * the id (no bridging, no progress token to replace), the client's own
 * bytes go with the minted id spliced in: no serialization; likewise when
 * it only removed a federated name's prefix or adds the trace context. */
static int forward(struct mg_gateway *gw, struct mg_http_req *req, struct mg_channel *ch,
                   struct mg_exchange *x, struct mg_rpc_msg *msg)
{
	json_t *meta = msg->params ? json_object_get(msg->params, "_meta") : NULL;
	bool token = json_is_object(meta) && json_object_get(meta, "progressToken");
	char tp[MG_TRACEPARENT_LEN + 1];
	const char *ts = NULL;
	bool traced = mg_obs_trace_inject(req, msg, x->route, tp, &ts); /* sampled: a CLIENT span */
	if (x->bridge == MG_BRIDGE_NONE && !token && (!msg->edited || (msg->name_cut && !traced))) {
		size_t len;
		const char *body = mg_http_req_body(req, &len);
		struct mg_jscan js;
		int rc;
		if (body &&
		    mg_jscan(body, len, (size_t)gw->cfg->server.max_json_depth, &js) ==
		        MG_JSCAN_OK &&
		    js.kind == MG_JSCAN_REQUEST && !js.has_cr_lf) {
			if (traced) {
				if (send_traced(ch, &x->call, body, len, &js, tp, ts, &rc))
					return rc;
			} else if (!msg->edited) {
				return mg_channel_request_text(ch, &x->call, body, len, js.id.start,
				                               js.id.end);
			} else if (send_cut(ch, &x->call, body, len, &js, msg, &rc)) {
				return rc;
			}
		}
	}
	if (traced)
		mg_obs_trace_put(msg, tp, ts);
	return mg_channel_request(ch, &x->call, msg->root);
}

/* What the client of this exchange has not read yet (the HTTP transport's
 * backpressure reads it). */
static size_t exchange_backlog(struct mg_call *call, void *arg)
{
	struct mg_exchange *x = arg;
	(void)call;
	return x->req ? mg_http_req_pending_output(x->req) : 0;
}

void mg_exchange_start(struct mg_gateway *gw, struct mg_http_req *req, struct mg_session *s,
                       struct mg_route *route, struct mg_channel *ch, struct mg_rpc_msg *msg,
                       bool modern, enum mg_bridge bridge, struct mg_identity *id)
{
	bool call = strcmp(msg->method, "tools/call") == 0;
	json_t *name = call && msg->params ? json_object_get(msg->params, "name") : NULL;
	if (call && mg_route_tool_blocked(route, json_string_value(name))) {
		/* tool_pinning = "block": a changed definition waits for approval. */
		mg_reply_rpc_error(req, 200, msg->id, MG_RPC_INVALID_PARAMS,
		                   "Tool blocked: its definition changed since it was approved; an "
		                   "operator must approve it (mcp-guard tools approve)",
		                   NULL);
		return;
	}
	struct mg_exchange *x = calloc(1, sizeof *x + (gw->audit ? MG_X_AUDIT_INLINE : 0));
	if (!x) {
		mg_reply_rpc_error(req, 503, msg->id, MG_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	x->gw = gw;
	x->req = req;
	x->session = s;
	x->route = route;
	x->ch = ch;
	x->modern = modern;
	x->bridge = bridge;
	x->identity = mg_identity_ref(id);
	x->log_level = modern ? meta_log_level(msg) : -1;
	x->listen = modern && strcmp(msg->method, "subscriptions/listen") == 0;
	x->orig_id = json_incref(msg->id);
	json_t *tok = mg_rpc_progress_token(msg);
	x->orig_token = tok ? json_incref(tok) : NULL;
	/* A diverted request (2024-11-05 transport) answers on the session's
	 * stream: never with an SSE response of its own. */
	x->accept_sse = !mg_http_req_diverted(req) && mg_accepts_sse(mg_hdr(req, "Accept"));
	x->start_us = mg_http_req_start_us(req);
	x->log = mg_pipeline_log_ctx(req);
	mg_str_copy(x->method, sizeof x->method, msg->method);
	if (gw->metrics) {
		/* the note has it (no string compares per request) */
		enum mg_mmethod mm = mg_obs_req_method(req);
		x->mmethod = (uint8_t)(mm == MG_MM_UNKNOWN || mm == MG_MM_RESPONSE
		                           ? mg_metrics_method(msg->method)
		                           : mm);
		if (x->mmethod == MG_MM_TOOLS_CALL && json_is_string(name))
			x->tool_slot = mg_obs_tool_slot(gw, route, name);
	}
	x->call.on_reply = on_reply;
	/* Pinning reads every tools/list of a server that pins. */
	bool pinned = mg_route_pins(route) && strcmp(msg->method, "tools/list") == 0;
	if (bridge == MG_BRIDGE_NONE && !pinned &&
	    !(id && mg_authz_restricted(id) && mg_authz_filters(msg->method)))
		x->call.on_raw_reply = on_raw_reply;
	x->call.on_progress = on_progress;
	x->call.arg = x;
	x->call.identity = id ? id->key : NULL;
	x->call.backlog = exchange_backlog;
	/* one reading for the tool_call record and the upstream's latency */
	uint64_t now = mg_now_us();
	if (gw->audit) {
		mg_pipeline_audit_request_id(req, x->audit_rid);
		mg_str_copy(x->audit_client, sizeof x->audit_client, mg_http_req_peer(req));
		if (json_is_string(name))
			audit_call(x, msg, id, json_string_value(name), json_string_length(name),
			           now);
	}
	if (s) {
		x->next = s->exchanges;
		if (s->exchanges)
			s->exchanges->prev = x;
		s->exchanges = x;
		s->n_exchanges++;
	} else {
		x->next = gw->modern;
		if (gw->modern)
			gw->modern->prev = x;
		gw->modern = x;
	}
	if (bridge == MG_BRIDGE_TO_LEGACY && msg->params)
		strip_modern_meta(msg->params);
	if (bridge == MG_BRIDGE_TO_MODERN)
		add_modern_meta(s, msg->root);
	x->sent_us = now;
	if (!ch || forward(gw, req, ch, x, msg) < 0) {
		if (x->audit_members)
			audit_result(x, NULL, NULL, 0, false, "the upstream is not available");
		if (gw->audit)
			mg_pipeline_audit_req(gw, req, MG_AUDIT_UPSTREAM_ERROR, id, msg->method,
			                      NULL, 0, "the upstream is not available");
		x->answer = MG_X_ERROR;
		x->up_decided = true;
		x->up_error = MG_ET_UNAVAILABLE;
		mg_obs_upstream_done(x);
		x->req = NULL;
		mg_reply_rpc_error(req, 503, x->orig_id, MG_RPC_INTERNAL_ERROR,
		                   "the upstream is not available", NULL);
		mg_exchange_free(x);
		return;
	}
	if (!x->listen) {
		/* A listen stream lasts until the client or the gateway ends it. */
		x->timeout = evtimer_new(gw->base, on_exchange_timeout, x);
		struct timeval tv = { .tv_sec = request_timeout(gw, x->route), .tv_usec = 0 };
		evtimer_add(x->timeout, &tv);
	}
	mg_http_req_on_close(req, on_exchange_client_close, x);
	gw->requests_total++;
}

/* The exchange a request-related message should ride on: the only request
 * in flight for this session (or, shared-mode, on the whole upstream). */
/* The exchange a request-related message should ride on: the only request
 * in flight for this session (per-session process), or - on the shared
 * process - the exchange holding the *only* call the process is working on
 * (a call the gateway made for another session counts: the message may be
 * that one's). Anything less certain is not delivered to a client. */
struct mg_exchange *mg_sole_exchange(struct mg_gateway *gw, struct mg_session *s,
                                     struct mg_channel *ch)
{
	if (s)
		return s->n_exchanges == 1 ? s->exchanges : NULL;
	if (!ch || ch->ncalls != 1)
		return NULL;
	for (size_t i = 0; i < gw->nbuckets; i++) {
		for (struct mg_session *t = gw->buckets[i]; t; t = t->next) {
			for (struct mg_exchange *x = t->exchanges; x; x = x->next) {
				if (x->ch == ch && x->call.registered)
					return x;
			}
		}
	}
	for (struct mg_exchange *x = gw->modern; x; x = x->next) {
		if (x->ch == ch && x->call.registered)
			return x;
	}
	return NULL;
}
