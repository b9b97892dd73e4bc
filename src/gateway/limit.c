/*
 * limit.c - the MCP endpoint's rate limits: per client address (failed
 * authentications, peeked before any auth work and charged by a failure),
 * per identity (after authentication, before anything reads the body) and
 * per tool ([[rate_limit.tools]], after parsing). A decision that must
 * wait for Redis keeps the request in a struct mg_hold on gw->holds,
 * cancelled when the client leaves. Every answer of a limited identity
 * carries X-RateLimit-* headers; a refusal is 429 with Retry-After.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "authz/authz.h"
#include "gateway/internal.h"
#include "gateway/pipeline.h"
#include "ratelimit/ratelimit.h"
#include "util/clock.h"
#include "util/str.h"

/* ---- PREACCESS: rate limiting ------------------------------------------------------ */

void mg_hold_free(struct mg_hold *h)
{
	struct mg_gateway *gw = h->gw;
	if (h->linked) {
		if (h->prev)
			h->prev->next = h->next;
		else
			gw->holds = h->next;
		if (h->next)
			h->next->prev = h->prev;
	}
	mg_identity_unref(h->id);
	if (h->msg.root)
		mg_rpc_msg_free(&h->msg);
	free(h);
}

static void on_hold_client_close(struct mg_http_req *req, void *arg)
{
	struct mg_hold *h = arg;
	(void)req;
	mg_ratelimiter_cancel(h->wait);
	mg_hold_free(h);
}

static void on_hold_decided(const struct mg_rl_decision *d, void *arg)
{
	struct mg_hold *h = arg;
	struct mg_log_ctx prev = mg_pipeline_log_enter(h->req);
	h->wait = NULL;
	mg_http_req_on_close(h->req, NULL, NULL);
	h->decided(h, d);
	mg_hold_free(h);
	mg_log_ctx_restore(prev);
}

/* Checks `key` and calls h->decided now or later; takes ownership of h. */
void mg_hold_check(struct mg_hold *h, const char *key, size_t len, const struct mg_rate *r)
{
	struct mg_rl_decision d;
	if (mg_ratelimiter_check(h->gw->rl, key, len, r, (int64_t)mg_now_us(), &d, on_hold_decided,
	                         h, &h->wait)) {
		h->decided(h, &d);
		mg_hold_free(h);
		return;
	}
	h->linked = true;
	h->next = h->gw->holds;
	if (h->gw->holds)
		h->gw->holds->prev = h;
	h->gw->holds = h;
	mg_http_req_on_close(h->req, on_hold_client_close, h);
}

static int64_t ceil_secs(int64_t us)
{
	return us <= 0 ? 0 : (us + 999999) / 1000000;
}

/* X-RateLimit-* on whatever answer the request gets. */
static void rate_headers(struct mg_http_req *req, const struct mg_rl_decision *d)
{
	char v[MG_I64_CHARS + 1];
	v[mg_fmt_i64(v, d->limit)] = '\0';
	mg_http_req_add_header(req, "X-RateLimit-Limit", v);
	v[mg_fmt_i64(v, d->remaining)] = '\0';
	mg_http_req_add_header(req, "X-RateLimit-Remaining", v);
	v[mg_fmt_i64(v, ceil_secs(d->reset_us))] = '\0';
	mg_http_req_add_header(req, "X-RateLimit-Reset", v);
}

static void reply_limited(struct mg_gateway *gw, struct mg_http_req *req, json_t *id,
                          const struct mg_rl_decision *d, const char *what,
                          const struct mg_identity *who)
{
	gw->limited_total++;
	if (gw->audit)
		mg_pipeline_audit_req(gw, req, MG_AUDIT_RATE_LIMITED, who, NULL, NULL, 0, what);
	int64_t secs = ceil_secs(d->retry_after_us);
	if (secs < 1)
		secs = 1;
	char ra[32], m[240];
	snprintf(ra, sizeof ra, "%lld", (long long)secs);
	snprintf(m, sizeof m, "Too Many Requests: %s; retry in %lld s", what, (long long)secs);
	struct mg_http_hdr h[5] = { { "Retry-After", ra } };
	size_t n = 1;
	mg_cors_headers(gw, req, h, &n);
	json_t *e = mg_rpc_error_new(id, MG_RPC_RATE_LIMITED, m,
	                             json_pack("{s:I}", "retryAfterSecs", (json_int_t)secs));
	mg_reply_json(req, 429, e, h, n);
	json_decref(e);
}

/* Unauthenticated floods, per client address, in memory: every failed
 * authentication is charged; before any authentication work, an address
 * over its limit is refused. Authenticated traffic never uses this budget,
 * so clients behind one proxy address are not throttled together unless
 * that address also floods bad credentials. */
/* "<3-char prefix><s>" into key[size], truncated like snprintf; returns
 * the length written (limiter keys are built per request: no printf). */
static int limiter_key(char *key, size_t size, const char prefix[4], const char *s)
{
	size_t n = strlen(s);
	if (n + 4 > size)
		n = size - 4;
	memcpy(key, prefix, 3);
	memcpy(key + 3, s, n);
	key[3 + n] = '\0';
	return (int)(3 + n);
}

static int ip_key(struct mg_http_req *req, char *key, size_t size)
{
	return limiter_key(key, size, "ip:", mg_http_req_peer(req));
}

bool mg_ip_limit_or_reply(struct mg_gateway *gw, struct mg_http_req *req)
{
	return mg_ip_limit_or_reply_what(gw, req,
	                                 "too many failed authentications from this address");
}

bool mg_ip_limit_or_reply_what(struct mg_gateway *gw, struct mg_http_req *req, const char *what)
{
	const struct mg_rate_limit_config *rc = &gw->cfg->rate_limit;
	if (!gw->rl || rc->ip_requests_per_second <= 0)
		return true;
	char key[80];
	int n = ip_key(req, key, sizeof key);
	struct mg_rate r = { .per_second = rc->ip_requests_per_second, .burst = rc->ip_burst_size };
	struct mg_rl_decision d;
	mg_ratelimiter_peek(gw->rl, key, (size_t)n, &r, (int64_t)mg_now_us(), &d);
	if (d.allowed)
		return true;
	mg_obs_limit(gw, req, MG_MSC_ADDRESS, false);
	reply_limited(gw, req, NULL, &d, what, NULL);
	return false;
}

void mg_ip_charge_failure(struct mg_gateway *gw, struct mg_http_req *req)
{
	const struct mg_rate_limit_config *rc = &gw->cfg->rate_limit;
	if (!gw->rl || rc->ip_requests_per_second <= 0)
		return;
	char key[80];
	int n = ip_key(req, key, sizeof key);
	struct mg_rate r = { .per_second = rc->ip_requests_per_second, .burst = rc->ip_burst_size };
	struct mg_rl_decision d;
	mg_ratelimiter_check(gw->rl, key, (size_t)n, &r, (int64_t)mg_now_us(), &d, NULL, NULL,
	                     NULL);
}

static void identity_decided(struct mg_hold *h, const struct mg_rl_decision *d)
{
	rate_headers(h->req, d);
	mg_obs_limit(h->gw, h->req, MG_MSC_IDENTITY, d->allowed);
	if (!d->allowed) {
		reply_limited(h->gw, h->req, NULL, d, "rate limit of this identity", h->id);
		return;
	}
	mg_dispatch_method(h->gw, h->req, h->id);
}

void mg_rate_limit_then_dispatch(struct mg_gateway *gw, struct mg_http_req *req,
                                 struct mg_identity *id)
{
	/* Without authentication every caller is the same "anonymous" (loopback
	 * only): one shared budget would throttle unrelated local clients. */
	if (!gw->rl || strcmp(id->provider, "anonymous") == 0) {
		mg_dispatch_method(gw, req, id);
		return;
	}
	const struct mg_rate_limit_config *rc = &gw->cfg->rate_limit;
	struct mg_hold *h = calloc(1, sizeof *h);
	if (!h) {
		mg_reply_rpc_error(req, 503, NULL, MG_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	*h = (struct mg_hold){
		.gw = gw, .req = req, .id = mg_identity_ref(id), .decided = identity_decided
	};
	char key[600];
	int n = limiter_key(key, sizeof key, "id:", id->key);
	struct mg_rate r = { .per_second =
		                 id->rate_limit > 0 ? id->rate_limit : rc->requests_per_second,
		             .burst = rc->burst_size };
	mg_hold_check(h, key, (size_t)(n < (int)sizeof key ? n : (int)sizeof key - 1), &r);
}

/* The per-tool limit that applies to a tools/call, if any. */
const struct mg_tool_limit_config *mg_tool_limit(struct mg_gateway *gw,
                                                 const struct mg_rpc_msg *msg)
{
	const struct mg_rate_limit_config *rc = &gw->cfg->rate_limit;
	if (!gw->rl || !rc->n_tools || msg->kind != MG_RPC_REQUEST ||
	    strcmp(msg->method, "tools/call") != 0)
		return NULL;
	json_t *name = json_object_get(msg->params, "name");
	if (!json_is_string(name))
		return NULL;
	for (size_t i = 0; i < rc->n_tools; i++) {
		if (mg_glob_match(rc->tools[i].name, json_string_value(name),
		                  json_string_length(name)))
			return &rc->tools[i];
	}
	return NULL;
}

void mg_tool_decided(struct mg_hold *h, const struct mg_rl_decision *d)
{
	mg_obs_limit(h->gw, h->req, MG_MSC_TOOL, d->allowed);
	if (!d->allowed) {
		json_t *name = json_object_get(h->msg.params, "name");
		char what[200];
		snprintf(what, sizeof what, "rate limit of tool %.100s", json_string_value(name));
		reply_limited(h->gw, h->req, h->msg.id, d, what, h->id);
		return;
	}
	mg_continue_post(h->gw, h->req, &h->msg, h->id);
}

/* ---- for /metrics (observe.c) ----------------------------------------------------- */

bool mg_mcp_ip_allowed_or_reply(struct mg_gateway *gw, struct mg_http_req *req)
{
	return mg_ip_limit_or_reply(gw, req);
}

void mg_mcp_ip_charge(struct mg_gateway *gw, struct mg_http_req *req)
{
	mg_ip_charge_failure(gw, req);
}
