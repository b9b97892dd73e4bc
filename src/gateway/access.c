/*
 * access.c - the MCP endpoint's checks before and during authentication:
 * Origin and Host (DNS rebinding protection; CORS headers for allowed
 * origins), credentials in the query string (refused, never looked at), and
 * the ACCESS phase: the provider chain of auth/, which may have to wait (a
 * JWKS fetch, a token introspection). A waiting request is a struct
 * mg_access on gw->accesses, counted as in flight; the client leaving
 * cancels the wait. A failure charges the per-address limit (limit.c) and
 * is answered 401/403/503 with a challenge; a success continues with the
 * identity's rate limit.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "gateway/internal.h"
#include "gateway/pipeline.h"
#include "util/clock.h"
#include "util/log.h"

/* ---- Origin and Host (DNS rebinding) -------------------------------------------------- */

static bool loopback_name(const char *host, size_t n)
{
	static const char *const names[] = { "localhost", "127.0.0.1", "[::1]", "::1" };
	for (size_t i = 0; i < 4; i++) {
		if (strlen(names[i]) == n && strncasecmp(host, names[i], n) == 0)
			return true;
	}
	return false;
}

/* Length of the host part of "host[:port]" / "[v6]:port". */
static size_t host_part(const char *s)
{
	if (s[0] == '[') {
		const char *e = strchr(s, ']');
		return e ? (size_t)(e - s) + 1 : strlen(s);
	}
	return strcspn(s, ":/");
}

static bool public_host(struct mg_gateway *gw, const char *host, size_t n)
{
	const char *pu = gw->cfg->server.public_url;
	if (!pu)
		return false;
	const char *h = strstr(pu, "://");
	if (!h)
		return false;
	h += 3;
	size_t hl = host_part(h);
	return hl == n && strncasecmp(h, host, n) == 0;
}

bool mg_origin_allowed(struct mg_gateway *gw, const char *origin)
{
	const struct mg_strv *allow = &gw->cfg->server.allowed_origins;
	for (size_t i = 0; i < allow->n; i++) {
		if (strcasecmp(allow->v[i], origin) == 0)
			return true;
	}
	const char *h = strstr(origin, "://");
	if (!h)
		return false;
	if (!(strncasecmp(origin, "http://", 7) == 0 || strncasecmp(origin, "https://", 8) == 0))
		return false;
	h += 3;
	size_t n = host_part(h);
	if (gw->loopback && loopback_name(h, n))
		return true;
	return public_host(gw, h, n);
}

static bool host_allowed(struct mg_gateway *gw, const char *host)
{
	if (!host)
		return false;
	size_t n = host_part(host);
	if (public_host(gw, host, n))
		return true;
	if (gw->loopback)
		return loopback_name(host, n);
	return true;
}

/* Returns false after answering 403. */
bool mg_check_origin_or_reply(struct mg_gateway *gw, struct mg_http_req *req)
{
	const char *origin = mg_hdr(req, "Origin");
	if (origin && !mg_origin_allowed(gw, origin)) {
		mg_log_warn("refused a request from origin \"%.100s\" (%s)", origin,
		            mg_http_req_peer(req));
		mg_reply_rpc_error(req, 403, NULL, MG_RPC_INVALID_REQUEST,
		                   "Forbidden: origin not allowed (server.allowed_origins)", NULL);
		return false;
	}
	const char *host = mg_hdr(req, "Host");
	if (host && !host_allowed(gw, host)) {
		mg_log_warn("refused a request for host \"%.100s\" (%s): possible DNS rebinding",
		            host, mg_http_req_peer(req));
		mg_reply_rpc_error(req, 403, NULL, MG_RPC_INVALID_REQUEST,
		                   "Forbidden: unexpected Host header", NULL);
		return false;
	}
	return true;
}

void mg_cors_headers(struct mg_gateway *gw, struct mg_http_req *req, struct mg_http_hdr *h,
                     size_t *n)
{
	const char *origin = mg_hdr(req, "Origin");
	if (!origin || !mg_origin_allowed(gw, origin))
		return;
	h[(*n)++] = (struct mg_http_hdr){ "Access-Control-Allow-Origin", origin };
	h[(*n)++] = (struct mg_http_hdr){ "Vary", "Origin" };
	h[(*n)++] = (struct mg_http_hdr){ "Access-Control-Expose-Headers",
		                          "Mcp-Session-Id, WWW-Authenticate, Retry-After" };
}

/* ---- ACCESS: authentication ------------------------------------------------------ */

/* Tokens in URLs end up in logs, proxies and browser history: refuse them
 * (RFC 6750 §2.3 is not supported, on purpose). */
bool mg_query_has_credentials(const char *q)
{
	static const char *const names[] = { "access_token", "token", "api_key", "apikey",
		                             "key",          "jwt",   NULL };
	while (q && *q) {
		size_t n = strcspn(q, "=&");
		for (size_t i = 0; names[i]; i++) {
			if (strlen(names[i]) == n && strncasecmp(q, names[i], n) == 0)
				return true;
		}
		q += strcspn(q, "&");
		if (*q == '&')
			q++;
	}
	return false;
}

static void reply_auth_failure(struct mg_gateway *gw, struct mg_http_req *req, struct mg_auth *auth,
                               const struct mg_auth_outcome *o)
{
	char challenge[1024];
	struct mg_http_hdr h[6];
	size_t n = 0;
	int status;
	const char *msg;
	if (o->status == MG_AUTH_UNAVAILABLE) {
		status = 503;
		msg = "Service Unavailable: cannot check credentials right now; retry shortly";
		h[n++] = (struct mg_http_hdr){ "Retry-After", "5" };
	} else if (o->insufficient_scope) {
		status = 403;
		msg = "Forbidden: the token lacks a required scope";
		mg_auth_challenge(auth, "insufficient_scope", challenge, sizeof challenge);
		h[n++] = (struct mg_http_hdr){ "WWW-Authenticate", challenge };
	} else if (o->status == MG_AUTH_INVALID) {
		status = 401;
		msg = "Unauthorized: invalid or expired credentials";
		mg_auth_challenge(auth, "invalid_token", challenge, sizeof challenge);
		h[n++] = (struct mg_http_hdr){ "WWW-Authenticate", challenge };
	} else {
		status = 401;
		msg = "Unauthorized: credentials required";
		mg_auth_challenge(auth, NULL, challenge, sizeof challenge);
		h[n++] = (struct mg_http_hdr){ "WWW-Authenticate", challenge };
	}
	/* The reason goes to the log only: it may say which provider refused. */
	/* (the request id is on the line: the log context, see util/log.h) */
	mg_log_info("auth: %d for %s %s from %s: %s", status, mg_http_req_method(req),
	            mg_http_req_path(req), mg_http_req_peer(req),
	            o->reason[0] ? o->reason : "no credentials");
	mg_cors_headers(gw, req, h, &n);
	json_t *e = mg_rpc_error_new(NULL, MG_RPC_INVALID_REQUEST, msg, NULL);
	mg_reply_json(req, status, e, h, n);
	json_decref(e);
}

static void access_link(struct mg_access *ac)
{
	struct mg_gateway *gw = ac->gw;
	ac->next = gw->accesses;
	if (gw->accesses)
		gw->accesses->prev = ac;
	gw->accesses = ac;
}

void mg_access_free(struct mg_access *ac)
{
	struct mg_gateway *gw = ac->gw;
	if (ac->prev)
		ac->prev->next = ac->next;
	else if (gw->accesses == ac)
		gw->accesses = ac->next;
	if (ac->next)
		ac->next->prev = ac->prev;
	mg_auth_unref(ac->auth);
	free(ac);
}

static void after_auth(struct mg_gateway *gw, struct mg_http_req *req, struct mg_auth *auth,
                       const struct mg_auth_outcome *o)
{
	mg_obs_auth(gw, req, o);
	if (o->status != MG_AUTH_OK) {
		if (o->status != MG_AUTH_UNAVAILABLE)
			mg_ip_charge_failure(gw, req);
		if (gw->audit)
			mg_pipeline_audit_req(gw, req, MG_AUDIT_AUTH_FAILURE, NULL, NULL, NULL, 0,
			                      o->status == MG_AUTH_UNAVAILABLE
			                          ? "credentials cannot be checked now"
			                      : o->reason[0] ? o->reason
			                                     : "no credentials");
		reply_auth_failure(gw, req, auth, o);
		return;
	}
	if (gw->audit && strcmp(o->identity->provider, "anonymous") != 0 &&
	    mg_audit_auth_success_due(gw->audit, o->identity->id, o->identity->provider,
	                              mg_http_req_peer(req), mg_http_req_start_us(req)))
		mg_pipeline_audit_req(gw, req, MG_AUDIT_AUTH_SUCCESS, o->identity, NULL, NULL, 1,
		                      NULL);
	mg_rate_limit_then_dispatch(gw, req, o->identity);
	mg_identity_unref(o->identity);
}

static void on_auth_done(const struct mg_auth_outcome *o, void *arg)
{
	struct mg_access *ac = arg;
	struct mg_log_ctx prev = mg_pipeline_log_enter(ac->req);
	mg_http_req_on_close(ac->req, NULL, NULL);
	after_auth(ac->gw, ac->req, ac->auth, o);
	mg_access_free(ac);
	mg_log_ctx_restore(prev);
}

static void on_auth_client_close(struct mg_http_req *req, void *arg)
{
	struct mg_access *ac = arg;
	(void)req;
	mg_auth_cancel(ac->wait);
	mg_access_free(ac);
}

/* ACCESS: runs the provider chain; continues with mg_dispatch_method, now or
 * once a provider that had to wait (JWKS) answers. */
void mg_authenticate_then_dispatch(struct mg_gateway *gw, struct mg_http_req *req)
{
	SSL *ssl = mg_http_req_ssl(req);
	struct mg_auth_request ar = {
		.authorization = mg_hdr(req, "Authorization"),
		.api_key = mg_hdr(req, "X-API-Key"),
		.peer = mg_http_req_peer_addr(req),
		.ssl = ssl,
		.fwd_cn = mg_hdr(req, "X-Client-Cert-CN"),
		.fwd_san_dns = mg_hdr(req, "X-Client-Cert-SAN-DNS"),
		.fwd_san_email = mg_hdr(req, "X-Client-Cert-SAN-Email"),
		.fwd_verified = mg_hdr(req, "X-Client-Cert-Verified"),
		.now = (int64_t)time(NULL),
	};
	struct mg_auth *auth = mg_auth_ref(gw->auth);
	struct mg_access *ac = calloc(1, sizeof *ac);
	if (!ac) {
		mg_auth_unref(auth);
		mg_reply_rpc_error(req, 503, NULL, MG_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	*ac = (struct mg_access){ .gw = gw, .req = req, .auth = auth };
	struct mg_auth_outcome o;
	if (mg_auth_authenticate(auth, &ar, &o, on_auth_done, ac, &ac->wait)) {
		after_auth(gw, req, auth, &o);
		mg_auth_unref(auth);
		free(ac);
		return;
	}
	access_link(ac);
	mg_http_req_on_close(req, on_auth_client_close, ac);
}

void mg_mcp_reply_auth_failure(struct mg_gateway *gw, struct mg_http_req *req, struct mg_auth *auth,
                               const struct mg_auth_outcome *o)
{
	reply_auth_failure(gw, req, auth, o);
}
