/*
 * pipeline.c - what the MCP endpoint's phases share: syslog level names,
 * the audit record of a request (the LOG phase: a request id derived from
 * the request itself, and one event about it), and the two plain answers
 * the gateway gives itself (202 Accepted, a JSON-RPC result) with CORS
 * headers. Declared in pipeline.h; nothing here decides anything.
 */
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "gateway/internal.h"
#include "gateway/pipeline.h"
#include "util/crypto.h"
#include "util/str.h"

static const char *const log_levels[] = { "emergency", "alert",  "critical", "error",
	                                  "warning",   "notice", "info",     "debug" };

int mg_pipeline_log_level_index(const char *s)
{
	for (int i = 0; s && i < 8; i++) {
		if (strcmp(s, log_levels[i]) == 0)
			return i;
	}
	return -1;
}

/* ---- audit (LOG phase) ------------------------------------------------------------- */

/* A request id for audit records and log lines: a mix of the request's
 * address and start time with a per-process random salt, so every event of
 * one HTTP request carries the same id without storing it anywhere. Never
 * 0 (0 means "no request" to the log context). */
uint64_t mg_pipeline_request_id(const struct mg_http_req *req)
{
	static uint64_t salt;
	if (!salt && (mg_random_bytes(&salt, sizeof salt) < 0 || !salt))
		salt = 0x9e3779b97f4a7c15ull;
	uint64_t x =
	    mg_http_req_start_us(req) ^ salt ^ ((uint64_t)(uintptr_t)req * 0x9e3779b97f4a7c15ull);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x ? x : 1;
}

void mg_pipeline_audit_request_id(const struct mg_http_req *req, char out[17])
{
	mg_hex_u64(mg_pipeline_request_id(req), out);
	out[16] = '\0';
}

struct mg_log_ctx mg_pipeline_log_ctx(const struct mg_http_req *req)
{
	struct mg_log_ctx c = { .request_id = mg_pipeline_request_id(req) };
	c.has_trace = mg_obs_trace_id(req, c.trace_id);
	return c;
}

struct mg_log_ctx mg_pipeline_log_enter(const struct mg_http_req *req)
{
	struct mg_log_ctx c = mg_pipeline_log_ctx(req);
	return mg_log_ctx_set(&c);
}

void mg_pipeline_trace_hex(const struct mg_log_ctx *c, char out[33])
{
	if (!c->has_trace) {
		out[0] = '\0';
		return;
	}
	mg_hex(c->trace_id, 16, out);
	out[32] = '\0';
}

/* One event about `req` (callers test gw->audit first: one branch when off). */
void mg_pipeline_audit_req(struct mg_gateway *gw, const struct mg_http_req *req,
                           enum mg_audit_type type, const struct mg_identity *id,
                           const char *method, const char *tool, int success, const char *message)
{
	char rid[17], tid[33];
	mg_pipeline_audit_request_id(req, rid);
	struct mg_route *r = mg_req_route(gw, (struct mg_http_req *)req);
	struct mg_log_ctx c = mg_pipeline_log_ctx(req);
	mg_pipeline_trace_hex(&c, tid);
	struct mg_audit_event ev = {
		.type = type,
		.request_id = rid,
		.trace_id = tid,
		.identity = id ? id->id : NULL,
		.provider = id ? id->provider : NULL,
		.client = mg_http_req_peer(req),
		.server = r ? r->name : NULL,
		.method = method,
		.tool = tool,
		.success = success,
		.message = message,
		.duration_ms = -1,
	};
	mg_audit_emit(gw->audit, &ev);
}

void mg_reply_accepted(struct mg_gateway *gw, struct mg_http_req *req)
{
	struct mg_http_hdr h[4];
	size_t n = 0;
	mg_cors_headers(gw, req, h, &n);
	mg_http_reply(req, 202, NULL, h, n, NULL, 0);
}

void mg_reply_result(struct mg_gateway *gw, struct mg_http_req *req, json_t *id, json_t *result,
                     bool modern)
{
	if (modern && !json_object_get(result, "resultType"))
		json_object_set_new(result, "resultType", json_string("complete"));
	json_t *resp = json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result", result);
	struct mg_http_hdr h[4];
	size_t n = 0;
	mg_cors_headers(gw, req, h, &n);
	mg_reply_json(req, 200, resp, h, n);
	json_decref(resp);
}
