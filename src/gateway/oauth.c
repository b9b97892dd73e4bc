/*
 * oauth.c - the OAuth 2.1 login flow's HTTP endpoints (GET /oauth/authorize,
 * GET /oauth/callback) for [auth.oauth] with a redirect_uri.
 *
 *   /oauth/authorize  → 302 to the provider's authorization endpoint with a
 *                       fresh PKCE S256 pair and a sealed, expiring state
 *                       that carries the verifier (auth/oauth_state.c)
 *   /oauth/callback   ← the provider's redirect: the state is opened
 *                       (forged, altered, expired: 400), checked against
 *                       the provider's `iss` when it sends one (RFC 9207,
 *                       mix-up), used once (a replay: 400), then the code is
 *                       exchanged at token_url with the verifier (on the
 *                       loop, mg_fetch_start, SSRF rule) and the provider's
 *                       token answer is returned as JSON (Cache-Control:
 *                       no-store). That token then works as a bearer token
 *                       here: the OAuth provider checks it by introspection
 *                       or userinfo.
 *
 * Pure logic lives in src/auth (oauth_state.c, oauth_form.c); this file is
 * the glue: parsing the query, building URLs and bodies, holding the client
 * request while the token exchange runs, answering. Nothing here logs a
 * code, a verifier, a state or a token.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/oauth.h"
#include "auth/oauth_client.h"
#include "auth/oauth_issuer.h"
#include "auth/oauth_state.h"
#include "gateway/internal.h"
#include "gateway/oauth.h"
#include "gateway/pipeline.h"
#include "http/client.h"
#include "util/log.h"
#include "util/str.h"

#define REPLAY_SLOTS     65536 /* used states remembered (power of two) */
#define TOKEN_TIMEOUT_MS 10000
#define TOKEN_MAX_BYTES  (64 * 1024)

struct login;

struct mg_oauth_gw {
	uint8_t random_key[MG_OAUTH_KEY_LEN]; /* when no state_secret is configured */
	struct mg_oauth_replay *used;
	struct login *logins; /* token exchanges in flight */
};

/* A callback waiting for the provider's token endpoint. */
struct login {
	struct login *prev, *next;
	struct mg_gateway *gw;
	struct mg_http_req *req;
	struct mg_fetch *fetch;
	char pending[MG_OAUTH_TOKEN_LEN + 1]; /* facade: the authorization it finishes */
	struct mg_oauth_form *form;           /* facade: a GET /authorize waiting for a CIMD */
};

static void facade_on_token(struct login *l, const struct mg_fetch_result *res, json_t *t);
static struct mg_oauth_issuer *issuer_of(struct mg_gateway *gw);
static void redirect_to_client(struct mg_gateway *gw, struct mg_http_req *req,
                               const char *redirect_uri, const char *client_state, const char *code,
                               const char *error, const char *description,
                               const struct mg_http_hdr *extra, size_t n_extra);

static const struct mg_oauth_config *oauth_cfg(struct mg_gateway *gw)
{
	return &mg_auth_config(gw->auth)->auth.oauth;
}

static struct mg_oauth_gw *state_of(struct mg_gateway *gw)
{
	if (gw->oauth)
		return gw->oauth;
	struct mg_oauth_gw *o = calloc(1, sizeof *o);
	if (!o || !(o->used = mg_oauth_replay_new(REPLAY_SLOTS)) ||
	    mg_random_bytes(o->random_key, sizeof o->random_key) < 0) {
		if (o)
			mg_oauth_replay_free(o->used);
		free(o);
		return NULL;
	}
	gw->oauth = o;
	return o;
}

static void state_key(struct mg_gateway *gw, uint8_t key[MG_OAUTH_KEY_LEN])
{
	const char *secret = oauth_cfg(gw)->state_secret;
	if (secret)
		mg_oauth_state_key(secret, strlen(secret), key);
	else
		memcpy(key, gw->oauth->random_key, MG_OAUTH_KEY_LEN);
}

static const struct mg_http_hdr no_store[] = { { "Cache-Control", "no-store" },
	                                       { "Pragma", "no-cache" } };

/* An OAuth error answer (RFC 6749 §5.2 shape). */
static void reply_error(struct mg_http_req *req, int status, const char *error,
                        const char *description)
{
	json_t *e = json_pack("{s:s,s:s}", "error", error, "error_description", description);
	mg_reply_json(req, status, e, no_store, 2);
	json_decref(e);
}

/* ---- GET /oauth/authorize --------------------------------------------------------------- */

/* 302 to the provider's authorization endpoint with a fresh PKCE pair and a
 * sealed state carrying the verifier and `ctx` ("" for the plain login,
 * "f:<pending id>" for the facade); `extra` is a header to add or NULL. */
static void redirect_to_provider(struct mg_gateway *gw, struct mg_http_req *req, const char *ctx,
                                 const struct mg_http_hdr *extra)
{
	const struct mg_oauth_config *c = oauth_cfg(gw);
	struct mg_oauth_state st = { 0 };
	char challenge[MG_OAUTH_CHALLENGE_LEN + 1], state[MG_OAUTH_STATE_MAX + 1];
	uint8_t key[MG_OAUTH_KEY_LEN];
	struct mg_buf url, q;
	mg_buf_init(&url, 8192);
	mg_buf_init(&q, 8192);
	snprintf(st.ctx, sizeof st.ctx, "%s", ctx);
	if (mg_oauth_pkce_new(st.verifier, challenge) < 0 ||
	    mg_random_bytes(st.id, sizeof st.id) < 0) {
		reply_error(req, 503, "temporarily_unavailable", "cannot start a login now");
		goto out;
	}
	st.exp = (int64_t)time(NULL) + MG_OAUTH_STATE_TTL;
	state_key(gw, key);
	int n = mg_oauth_state_seal(key, &st, state, sizeof state);
	explicit_bzero(key, sizeof key);
	char scope[1024] = "";
	size_t sl = 0;
	for (size_t i = 0; i < c->scopes.n && sl < sizeof scope; i++)
		sl += (size_t)snprintf(scope + sl, sizeof scope - sl, "%s%s", i ? " " : "",
		                       c->scopes.v[i]);
	int bad = n < 0;
	bad |= mg_oauth_form_add(&q, "response_type", "code") |
	       mg_oauth_form_add(&q, "client_id", c->client_id) |
	       mg_oauth_form_add(&q, "redirect_uri", c->redirect_uri) |
	       (scope[0] ? mg_oauth_form_add(&q, "scope", scope) : 0) |
	       mg_oauth_form_add(&q, "state", state) |
	       mg_oauth_form_add(&q, "code_challenge", challenge) |
	       mg_oauth_form_add(&q, "code_challenge_method", "S256");
	bad |= mg_buf_puts(&url, c->authorization_url) |
	       mg_buf_putc(&url, strchr(c->authorization_url, '?') ? '&' : '?') |
	       mg_buf_append(&url, q.data, q.len);
	if (bad) {
		reply_error(req, 500, "server_error", "cannot build the authorization URL");
		goto out;
	}
	struct mg_http_hdr h[4] = { { "Location", url.data },
		                    { "Cache-Control", "no-store" },
		                    { "Referrer-Policy", "no-referrer" } };
	size_t nh = 3;
	if (extra)
		h[nh++] = *extra;
	mg_http_reply(req, 302, "text/plain", h, nh, "", 0);
out:
	explicit_bzero(&st, sizeof st);
	mg_buf_free(&url);
	mg_buf_free(&q);
}

static void handle_authorize(struct mg_gateway *gw, struct mg_http_req *req)
{
	if (!state_of(gw)) {
		reply_error(req, 503, "temporarily_unavailable", "cannot start a login now");
		return;
	}
	redirect_to_provider(gw, req, "", NULL);
}

/* ---- GET /oauth/callback ---------------------------------------------------------------- */

static void login_free(struct login *l)
{
	struct mg_oauth_gw *o = l->gw->oauth;
	if (l->prev)
		l->prev->next = l->next;
	else
		o->logins = l->next;
	if (l->next)
		l->next->prev = l->prev;
	if (l->form) {
		mg_oauth_form_free(l->form);
		free(l->form);
	}
	free(l);
}

static void on_client_gone(struct mg_http_req *req, void *arg)
{
	(void)req;
	struct login *l = arg;
	mg_fetch_cancel(l->fetch);
	login_free(l);
}

/* The provider's error code, if it is a plain RFC 6749 one (never echo
 * arbitrary text from the network into our answer). */
static const char *safe_error(const char *e)
{
	if (!e || !*e || strlen(e) > 64)
		return "invalid_grant";
	for (const char *p = e; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
			return "invalid_grant";
	}
	return e;
}

static void on_token(const struct mg_fetch_result *res, void *arg)
{
	struct login *l = arg;
	struct mg_http_req *req = l->req;
	mg_http_req_on_close(req, NULL, NULL);
	json_error_t je;
	json_t *t = res->error || !res->body
	                ? NULL
	                : json_loadb(res->body, res->len, JSON_REJECT_DUPLICATES, &je);
	json_t *at = json_object_get(t, "access_token");
	if (l->pending[0]) {
		facade_on_token(l, res, t);
		json_decref(t);
		return;
	}
	if (res->error) {
		mg_log_warn("oauth: token endpoint unreachable: %s", res->error);
		reply_error(req, 502, "temporarily_unavailable",
		            "the authorization server's token endpoint is unreachable");
	} else if (res->status != 200 || !json_is_object(t) || !json_is_string(at) ||
	           json_object_get(t, "error")) {
		const char *e = json_string_value(json_object_get(t, "error"));
		mg_log_info("oauth: code exchange refused (HTTP %ld, %s)", res->status,
		            safe_error(e));
		reply_error(req, 400, safe_error(e),
		            "the authorization server refused the code exchange");
	} else {
		/* Only the members a client needs, from a JSON object we parsed:
		 * nothing else of the provider's answer is relayed. */
		json_t *out = json_object();
		static const char *const keep[] = { "access_token", "token_type",    "expires_in",
			                            "scope",        "refresh_token", "id_token" };
		for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
			json_t *v = json_object_get(t, keep[i]);
			if (json_is_string(v) || json_is_integer(v))
				json_object_set(out, keep[i], v);
		}
		mg_reply_json(req, 200, out, no_store, 2);
		json_decref(out);
	}
	json_decref(t);
	login_free(l);
}

/* Starts the code exchange; answers the client itself on failure. */
static void exchange_or_reply(struct mg_gateway *gw, struct mg_http_req *req, const char *code,
                              const char *verifier, const char *pending)
{
	const struct mg_oauth_config *c = oauth_cfg(gw);
	struct mg_buf body, auth;
	mg_buf_init(&body, 16384);
	mg_buf_init(&auth, 4096);
	struct login *l = calloc(1, sizeof *l);
	int bad = !l;
	bad |= mg_oauth_form_add(&body, "grant_type", "authorization_code") |
	       mg_oauth_form_add(&body, "code", code) |
	       mg_oauth_form_add(&body, "redirect_uri", c->redirect_uri) |
	       mg_oauth_form_add(&body, "code_verifier", verifier);
	const char *headers[3] = { "Content-Type: application/x-www-form-urlencoded",
		                   "Accept: application/json", NULL };
	size_t nh = 2;
	if (c->provider == MG_OAUTH_GITHUB || !c->client_secret) {
		/* GitHub takes the client credentials in the body; a public
		 * client sends only its id (RFC 6749 §3.2.1). */
		bad |= mg_oauth_form_add(&body, "client_id", c->client_id);
		if (c->client_secret)
			bad |= mg_oauth_form_add(&body, "client_secret", c->client_secret);
	} else {
		/* client_secret_basic: form-encoded id and secret (RFC 6749 §2.3.1). */
		bad |= mg_oauth_basic_auth(&auth, c->client_id, c->client_secret);
		headers[nh++] = auth.data;
	}
	if (bad) {
		free(l);
		reply_error(req, 500, "server_error", "cannot build the token request");
		goto out;
	}
	struct mg_oauth_gw *o = gw->oauth;
	l->gw = gw;
	l->req = req;
	if (pending && strlen(pending) < sizeof l->pending)
		memcpy(l->pending, pending, strlen(pending) + 1);
	struct mg_fetch_opts fo = {
		.url = c->token_url,
		.method = "POST",
		.headers = headers,
		.n_headers = nh,
		.body = body.data,
		.body_len = body.len,
		.timeout_ms = TOKEN_TIMEOUT_MS,
		.max_bytes = TOKEN_MAX_BYTES,
		.allow_private = c->allow_private_networks,
		.ca_file = c->ca_file,
	};
	char err[256];
	if (!(l->fetch = mg_fetch_start(gw->fetcher, &fo, on_token, l, err, sizeof err))) {
		free(l);
		mg_log_warn("oauth: cannot reach the token endpoint: %s", err);
		reply_error(req, 502, "temporarily_unavailable",
		            "the authorization server's token endpoint cannot be reached");
		goto out;
	}
	l->next = o->logins;
	if (o->logins)
		o->logins->prev = l;
	o->logins = l;
	mg_http_req_on_close(req, on_client_gone, l);
out:
	if (body.data)
		explicit_bzero(body.data, body.len);
	if (auth.data)
		explicit_bzero(auth.data, auth.len);
	mg_buf_free(&body);
	mg_buf_free(&auth);
}

static void handle_callback(struct mg_gateway *gw, struct mg_http_req *req)
{
	const struct mg_oauth_config *c = oauth_cfg(gw);
	struct mg_oauth_gw *o = state_of(gw);
	struct mg_oauth_form f;
	struct mg_oauth_state st;
	char err[160];
	const char *q = mg_http_req_query(req);
	if (!o) {
		reply_error(req, 503, "temporarily_unavailable", "cannot finish a login now");
		return;
	}
	if (mg_oauth_form_parse(q ? q : "", q ? strlen(q) : 0, &f, err, sizeof err) < 0) {
		reply_error(req, 400, "invalid_request", err);
		goto out;
	}
	if (f.duplicate) {
		reply_error(req, 400, "invalid_request", "a parameter appears more than once");
		goto out;
	}
	const char *state = mg_oauth_form_get(&f, "state");
	const char *code = mg_oauth_form_get(&f, "code");
	const char *iss = mg_oauth_form_get(&f, "iss");
	if (!state) {
		reply_error(req, 400, "invalid_request", "the state parameter is missing");
		goto out;
	}
	uint8_t key[MG_OAUTH_KEY_LEN];
	state_key(gw, key);
	int64_t now = (int64_t)time(NULL);
	int rc = mg_oauth_state_open(key, state, strlen(state), now, &st, err, sizeof err);
	explicit_bzero(key, sizeof key);
	if (rc < 0) {
		reply_error(req, 400, "invalid_request", err);
		goto out;
	}
	/* RFC 9207: a response that names another issuer is a mix-up attack. */
	if (iss && c->issuer && strcmp(iss, c->issuer) != 0) {
		reply_error(req, 400, "invalid_request",
		            "the authorization response comes from another issuer (iss)");
		goto out;
	}
	switch (mg_oauth_replay_use(o->used, st.id, st.exp, now)) {
	case -1:
		reply_error(req, 400, "invalid_request", "this state was already used");
		goto out;
	case -2:
		reply_error(req, 503, "temporarily_unavailable", "too many logins in progress");
		goto out;
	default:
		break;
	}
	const char *error = mg_oauth_form_get(&f, "error");
	if (error && strncmp(st.ctx, "f:", 2) == 0 && issuer_of(gw)) {
		/* The user refused at the provider: the MCP client hears it. */
		struct mg_oauth_pending *p =
		    mg_oauth_issuer_pending(issuer_of(gw), st.ctx + 2, now);
		if (p) {
			char redirect[513], cstate[513];
			snprintf(redirect, sizeof redirect, "%s", p->grant.redirect_uri);
			snprintf(cstate, sizeof cstate, "%s", p->client_state);
			mg_oauth_issuer_forget(issuer_of(gw), p);
			redirect_to_client(gw, req, redirect, cstate, NULL, safe_error(error),
			                   "the login at the authorization server did not succeed",
			                   NULL, 0);
			goto out;
		}
	}
	if (error) {
		reply_error(req, 400, safe_error(error),
		            "the authorization server refused the login");
		goto out;
	}
	if (!code || !*code) {
		reply_error(req, 400, "invalid_request", "the code parameter is missing");
		goto out;
	}
	const char *pending = strncmp(st.ctx, "f:", 2) == 0 ? st.ctx + 2 : NULL;
	if (pending && !issuer_of(gw)) {
		reply_error(req, 400, "invalid_request", "the authorization server was turned off");
		goto out;
	}
	exchange_or_reply(gw, req, code, st.verifier, pending);
out:
	explicit_bzero(&st, sizeof st);
	mg_oauth_form_free(&f);
}

/* ---- the authorization-server facade ([auth.oauth] authorization_server) ------------------ */

#define CONSENT_COOKIE  "__Host-mcp-guard-consent"
#define CSRF_COOKIE     "__Host-mcp-guard-csrf"
#define CONSENT_MAX_IDS 16
#define MAC_B64         43

static struct mg_oauth_issuer *issuer_of(struct mg_gateway *gw)
{
	return mg_auth_oauth_issuer(gw->auth);
}

static void issuer_url(struct mg_gateway *gw, char *out, size_t size)
{
	mg_oauth_issuer_url(mg_auth_resource_url(gw->auth), out, size);
}

/* base64url HMAC-SHA256 of "label|a|b" under the state key. */
static void mac(struct mg_gateway *gw, const char *label, const char *a, const char *b,
                char out[MAC_B64 + 1])
{
	uint8_t key[MG_OAUTH_KEY_LEN], h[32];
	unsigned int n = sizeof h;
	state_key(gw, key);
	struct mg_buf m;
	mg_buf_init(&m, 0);
	mg_buf_printf(&m, "%s|%s|%s", label, a, b ? b : "");
	HMAC(EVP_sha256(), key, sizeof key, (const uint8_t *)(m.data ? m.data : ""), m.len, h, &n);
	mg_base64_encode(h, sizeof h, out, MAC_B64 + 1, true);
	explicit_bzero(key, sizeof key);
	mg_buf_free(&m);
}

/* The value of cookie `name` in the request, copied into `out` (NULL when absent). */
static const char *cookie(struct mg_http_req *req, const char *name, char *out, size_t size)
{
	const char *h = mg_http_req_header(req, "Cookie");
	size_t nl = strlen(name);
	while (h && *h) {
		while (*h == ' ' || *h == ';')
			h++;
		size_t len = strcspn(h, ";");
		if (len > nl && strncmp(h, name, nl) == 0 && h[nl] == '=') {
			size_t vl = len - nl - 1;
			if (vl >= size)
				return NULL;
			memcpy(out, h + nl + 1, vl);
			out[vl] = '\0';
			return out;
		}
		h += len;
	}
	return NULL;
}

static void json_reply_cors(struct mg_http_req *req, int status, json_t *o, const char *cache)
{
	struct mg_http_hdr h[] = { { "Access-Control-Allow-Origin", "*" },
		                   { "Cache-Control", cache } };
	mg_reply_json(req, status, o, h, 2);
}

static void handle_as_metadata(struct mg_gateway *gw, struct mg_http_req *req)
{
	char iss[512], u[5][600];
	issuer_url(gw, iss, sizeof iss);
	static const char *const path[] = { "/authorize", "/token", "/register",
		                            "/.well-known/jwks.json", "/oauth/callback" };
	for (size_t i = 0; i < 5; i++)
		snprintf(u[i], sizeof u[i], "%s%s", iss, path[i]);
	json_t *meta = mg_auth_resource_metadata(gw->auth);
	json_t *o = json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:[s],s:[s,s],s:[s],s:[s],s:b,s:b,s:O}", "issuer", iss,
	    "authorization_endpoint", u[0], "token_endpoint", u[1], "registration_endpoint", u[2],
	    "jwks_uri", u[3], "response_types_supported", "code", "grant_types_supported",
	    "authorization_code", "refresh_token", "code_challenge_methods_supported", "S256",
	    "token_endpoint_auth_methods_supported", "none",
	    "client_id_metadata_document_supported", 1,
	    "authorization_response_iss_parameter_supported", 1, "scopes_supported",
	    json_object_get(meta, "scopes_supported"));
	json_reply_cors(req, 200, o, "max-age=300");
	json_decref(o);
	json_decref(meta);
}

static void handle_jwks(struct mg_gateway *gw, struct mg_http_req *req)
{
	json_t *o = mg_oauth_issuer_jwks(issuer_of(gw), (int64_t)time(NULL));
	json_reply_cors(req, 200, o, "max-age=300");
	json_decref(o);
}

/* POST /register (RFC 7591): public clients with loopback or https redirect URIs. */
static void handle_register(struct mg_gateway *gw, struct mg_http_req *req)
{
	size_t len;
	const char *body = mg_http_req_body(req, &len);
	char id[MG_OAUTH_TOKEN_LEN + 1], err[200];
	const char *code;
	uint8_t raw[32];
	int64_t now = (int64_t)time(NULL);
	if (mg_random_bytes(raw, sizeof raw) < 0) {
		reply_error(req, 503, "temporarily_unavailable", "no randomness");
		return;
	}
	mg_base64_encode(raw, sizeof raw, id, sizeof id, true);
	struct mg_oauth_client *c =
	    mg_oauth_client_register(body, len, id, now, &code, err, sizeof err);
	if (!c) {
		reply_error(req, 400, code, err);
		return;
	}
	json_t *o = mg_oauth_client_registration_json(c, now);
	if (mg_oauth_issuer_add_client(issuer_of(gw), c, now) < 0) {
		json_decref(o);
		reply_error(req, 503, "temporarily_unavailable", "too many registered clients");
		return;
	}
	mg_reply_json(req, 201, o, no_store, 2);
	json_decref(o);
}

/* 302 to the client's redirect URI with the answer (RFC 6749 §4.1.2, RFC 9207 iss). */
static void redirect_to_client(struct mg_gateway *gw, struct mg_http_req *req,
                               const char *redirect_uri, const char *client_state, const char *code,
                               const char *error, const char *description,
                               const struct mg_http_hdr *extra, size_t n_extra)
{
	char iss[512];
	issuer_url(gw, iss, sizeof iss);
	struct mg_buf u, q;
	mg_buf_init(&u, 16384);
	mg_buf_init(&q, 16384);
	int bad = code ? mg_oauth_form_add(&q, "code", code)
	               : mg_oauth_form_add(&q, "error", error) |
	                     mg_oauth_form_add(&q, "error_description", description);
	if (client_state && client_state[0])
		bad |= mg_oauth_form_add(&q, "state", client_state);
	bad |= mg_oauth_form_add(&q, "iss", iss);
	bad |=
	    mg_buf_puts(&u, redirect_uri) | mg_buf_putc(&u, strchr(redirect_uri, '?') ? '&' : '?');
	bad |= mg_buf_append(&u, q.data, q.len);
	if (bad) {
		reply_error(req, 500, "server_error", "cannot build the redirect");
	} else {
		struct mg_http_hdr h[4] = { { "Location", u.data },
			                    { "Cache-Control", "no-store" },
			                    { "Referrer-Policy", "no-referrer" } };
		size_t n = 3;
		if (n_extra)
			h[n++] = extra[0];
		mg_http_reply(req, 302, "text/plain", h, n, "", 0);
	}
	mg_buf_free(&u);
	mg_buf_free(&q);
}

/* 302 to the provider's login for pending authorization `p`; `extra` is a
 * Set-Cookie header or NULL. */
static void start_provider_login(struct mg_gateway *gw, struct mg_http_req *req,
                                 const struct mg_oauth_pending *p, const struct mg_http_hdr *extra)
{
	char ctx[MG_OAUTH_TOKEN_LEN + 3];
	snprintf(ctx, sizeof ctx, "f:%s", p->id);
	redirect_to_provider(gw, req, ctx, extra);
}

/* The client ids this browser approved (the MAC'ed consent cookie), as a
 * JSON array (new reference, empty when none or forged). */
static json_t *approved_clients(struct mg_gateway *gw, struct mg_http_req *req)
{
	char v[4096], want[MAC_B64 + 1], raw[3072];
	json_t *arr = NULL;
	if (cookie(req, CONSENT_COOKIE, v, sizeof v)) {
		char *dot = strchr(v, '.');
		if (dot) {
			*dot = '\0';
			mac(gw, "consent", v, NULL, want);
			long n = strlen(dot + 1) == MAC_B64 && mg_ct_equal(dot + 1, want, MAC_B64)
			             ? mg_base64_decode(v, strlen(v), raw, sizeof raw - 1)
			             : -1;
			json_error_t je;
			if (n > 0)
				arr = json_loadb(raw, (size_t)n, 0, &je);
		}
	}
	if (!json_is_array(arr)) {
		json_decref(arr);
		arr = json_array();
	}
	return arr;
}

static bool approved(json_t *arr, const char *client_id)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), client_id) == 0)
			return true;
	}
	return false;
}

static void html_escape(struct mg_buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<':
			mg_buf_puts(b, "&lt;");
			break;
		case '>':
			mg_buf_puts(b, "&gt;");
			break;
		case '&':
			mg_buf_puts(b, "&amp;");
			break;
		case '"':
			mg_buf_puts(b, "&quot;");
			break;
		case '\'':
			mg_buf_puts(b, "&#39;");
			break;
		default:
			mg_buf_putc(b, *s);
		}
	}
}

/* The consent page: who asks, where the answer goes, a CSRF-protected form. */
static void consent_page(struct mg_gateway *gw, struct mg_http_req *req,
                         const struct mg_oauth_pending *p, const struct mg_oauth_client *c)
{
	char csrf_cookie[MAC_B64 + 1], csrf[MAC_B64 + 1], setc[200];
	if (!cookie(req, CSRF_COOKIE, csrf_cookie, sizeof csrf_cookie) ||
	    strlen(csrf_cookie) != MAC_B64) {
		uint8_t raw[32];
		mg_random_bytes(raw, sizeof raw);
		mg_base64_encode(raw, sizeof raw, csrf_cookie, sizeof csrf_cookie, true);
	}
	mac(gw, "csrf", csrf_cookie, p->id, csrf);
	snprintf(setc, sizeof setc, "%s=%s; Path=/; Secure; HttpOnly; SameSite=Strict", CSRF_COOKIE,
	         csrf_cookie);
	struct mg_buf b;
	mg_buf_init(&b, 64 * 1024);
	mg_buf_puts(&b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>Allow access?"
	                "</title></head><body><h1>Allow access to this MCP gateway?</h1><p>"
	                "Application <strong>");
	html_escape(&b, c->name && c->name[0] ? c->name : "(unnamed)");
	mg_buf_puts(&b, "</strong> (<code>");
	html_escape(&b, c->client_id);
	mg_buf_puts(&b, "</code>) asks to use this gateway on your behalf. After you log in, "
	                "the answer goes to <code>");
	html_escape(&b, p->grant.redirect_uri);
	mg_buf_puts(&b, "</code>.</p><form method=\"post\" action=\"/authorize\">"
	                "<input type=\"hidden\" name=\"pending\" value=\"");
	html_escape(&b, p->id);
	mg_buf_puts(&b, "\"><input type=\"hidden\" name=\"csrf\" value=\"");
	html_escape(&b, csrf);
	mg_buf_puts(&b, "\"><button name=\"decision\" value=\"approve\">Allow</button> "
	                "<button name=\"decision\" value=\"deny\">Deny</button></form>"
	                "</body></html>\n");
	struct mg_http_hdr h[] = {
		{ "Cache-Control", "no-store" },
		{ "Content-Security-Policy",
		  "default-src 'none'; form-action 'self'; frame-ancestors 'none'" },
		{ "X-Frame-Options", "DENY" },
		{ "Referrer-Policy", "no-referrer" },
		{ "Set-Cookie", setc },
	};
	mg_http_reply(req, 200, "text/html; charset=utf-8", h, 5, b.data ? b.data : "", b.len);
	mg_buf_free(&b);
}

/* GET /authorize once the client is known (NULL: unknown). */
static void authorize_with_client(struct mg_gateway *gw, struct mg_http_req *req,
                                  const struct mg_oauth_form *f, const struct mg_oauth_client *c)
{
	struct mg_oauth_authz_request r;
	bool redirectable;
	const char *code;
	char err[200];
	if (mg_oauth_authorize_check(f, c, mg_auth_resource_url(gw->auth), &r, &redirectable, &code,
	                             err, sizeof err) < 0) {
		if (redirectable)
			redirect_to_client(gw, req, r.redirect_uri, r.state, NULL, code, err, NULL,
			                   0);
		else
			reply_error(req, 400, code, err);
		return;
	}
	struct mg_oauth_pending p = { 0 };
	struct mg_oauth_grant *g = &p.grant;
	if ((size_t)snprintf(g->client_id, sizeof g->client_id, "%s", r.client_id) >=
	        sizeof g->client_id ||
	    (size_t)snprintf(g->redirect_uri, sizeof g->redirect_uri, "%s", r.redirect_uri) >=
	        sizeof g->redirect_uri ||
	    (size_t)snprintf(g->resource, sizeof g->resource, "%s", r.resource) >=
	        sizeof g->resource ||
	    (size_t)snprintf(p.client_state, sizeof p.client_state, "%s", r.state ? r.state : "") >=
	        sizeof p.client_state ||
	    (size_t)snprintf(g->scope, sizeof g->scope, "%s", r.scope ? r.scope : "") >=
	        sizeof g->scope) {
		redirect_to_client(gw, req, r.redirect_uri, r.state, NULL, "invalid_request",
		                   "a parameter is too long", NULL, 0);
		return;
	}
	snprintf(g->code_challenge, sizeof g->code_challenge, "%s", r.code_challenge);
	int64_t now = (int64_t)time(NULL);
	struct mg_oauth_pending *pp = mg_oauth_issuer_pend(issuer_of(gw), &p, now);
	if (!pp) {
		redirect_to_client(gw, req, r.redirect_uri, r.state, NULL,
		                   "temporarily_unavailable", "too many authorizations in progress",
		                   NULL, 0);
		return;
	}
	json_t *ok = approved_clients(gw, req);
	bool known = approved(ok, c->client_id);
	json_decref(ok);
	if (known) {
		/* This browser approved this client before: straight to the login. */
		pp->approved = true;
		start_provider_login(gw, req, pp, NULL);
	} else {
		consent_page(gw, req, pp, c);
	}
}

static bool is_url_client_id(const char *id)
{
	return id && strncmp(id, "https://", 8) == 0;
}

static void on_cimd(const struct mg_fetch_result *res, void *arg)
{
	struct login *l = arg;
	struct mg_gateway *gw = l->gw;
	struct mg_http_req *req = l->req;
	mg_http_req_on_close(req, NULL, NULL);
	const char *id = mg_oauth_form_get(l->form, "client_id");
	int64_t now = (int64_t)time(NULL);
	char err[200] = "";
	struct mg_oauth_client *c = NULL;
	if (!issuer_of(gw))
		snprintf(err, sizeof err, "the authorization server was turned off");
	else if (res->error)
		snprintf(err, sizeof err, "cannot fetch the client metadata document: %.120s",
		         res->error);
	else if (res->status != 200)
		snprintf(err, sizeof err, "the client metadata document answered HTTP %ld",
		         res->status);
	else
		c = mg_oauth_client_from_document(id, res->body, res->len, now, MG_OAUTH_CIMD_SECS,
		                                  err, sizeof err);
	if (!c) {
		mg_log_info("oauth: client %.200s refused: %s", id, err);
		reply_error(req, 400, "invalid_client", err);
	} else if (mg_oauth_issuer_add_client(issuer_of(gw), c, now) < 0) {
		reply_error(req, 503, "temporarily_unavailable", "too many clients");
	} else {
		authorize_with_client(gw, req, l->form,
		                      mg_oauth_issuer_client(issuer_of(gw), id, now));
	}
	login_free(l);
}

static void handle_authorize_get(struct mg_gateway *gw, struct mg_http_req *req)
{
	struct mg_oauth_form *f = calloc(1, sizeof *f);
	char err[200];
	const char *q = mg_http_req_query(req);
	if (!f || mg_oauth_form_parse(q ? q : "", q ? strlen(q) : 0, f, err, sizeof err) < 0) {
		reply_error(req, 400, "invalid_request", f ? err : "out of memory");
		goto fail;
	}
	const char *id = mg_oauth_form_get(f, "client_id");
	int64_t now = (int64_t)time(NULL);
	const struct mg_oauth_client *c = mg_oauth_issuer_client(issuer_of(gw), id, now);
	if (c || !is_url_client_id(id)) {
		authorize_with_client(gw, req, f, c);
		goto fail; /* done with the form */
	}
	/* A Client ID Metadata Document: fetched under the SSRF rule, no
	 * redirects, 16 KiB, then cached. */
	if (mg_oauth_cimd_url_check(id, err, sizeof err) < 0) {
		reply_error(req, 400, "invalid_client", err);
		goto fail;
	}
	struct mg_oauth_gw *o = state_of(gw);
	struct login *l = o ? calloc(1, sizeof *l) : NULL;
	if (!l) {
		reply_error(req, 503, "temporarily_unavailable", "out of memory");
		goto fail;
	}
	l->gw = gw;
	l->req = req;
	l->form = f;
	const char *h[] = { "Accept: application/json" };
	struct mg_fetch_opts fo = {
		.url = id,
		.headers = h,
		.n_headers = 1,
		.timeout_ms = 5000,
		.max_bytes = MG_OAUTH_CLIENT_DOC_MAX,
		.allow_private = oauth_cfg(gw)->allow_private_networks,
		.ca_file = oauth_cfg(gw)->ca_file,
	};
	if (!(l->fetch = mg_fetch_start(gw->fetcher, &fo, on_cimd, l, err, sizeof err))) {
		free(l);
		reply_error(req, 400, "invalid_client", err);
		goto fail;
	}
	l->next = o->logins;
	if (o->logins)
		o->logins->prev = l;
	o->logins = l;
	mg_http_req_on_close(req, on_client_gone, l);
	return;
fail:
	if (f)
		mg_oauth_form_free(f);
	free(f);
}

/* POST /authorize: the consent form. */
static void handle_authorize_post(struct mg_gateway *gw, struct mg_http_req *req)
{
	struct mg_oauth_form f;
	char err[200], iss[512], csrf_cookie[MAC_B64 + 1], want[MAC_B64 + 1];
	size_t len;
	const char *body = mg_http_req_body(req, &len);
	const char *origin = mg_http_req_header(req, "Origin");
	issuer_url(gw, iss, sizeof iss);
	if (mg_oauth_form_parse(body ? body : "", body ? len : 0, &f, err, sizeof err) < 0) {
		reply_error(req, 400, "invalid_request", err);
		goto out;
	}
	/* A cross-site form post: the browser names the attacker's origin. */
	if (origin && strcmp(origin, iss) != 0) {
		reply_error(req, 403, "access_denied",
		            "the consent form was posted from another site");
		goto out;
	}
	const char *pid = mg_oauth_form_get(&f, "pending");
	const char *csrf = mg_oauth_form_get(&f, "csrf");
	const char *decision = mg_oauth_form_get(&f, "decision");
	int64_t now = (int64_t)time(NULL);
	struct mg_oauth_pending *p = mg_oauth_issuer_pending(issuer_of(gw), pid, now);
	if (f.duplicate || !p || !csrf || strlen(csrf) != MAC_B64 ||
	    !cookie(req, CSRF_COOKIE, csrf_cookie, sizeof csrf_cookie)) {
		reply_error(req, 400, "invalid_request",
		            "this consent form is not valid (expired?)");
		goto out;
	}
	mac(gw, "csrf", csrf_cookie, p->id, want);
	if (!mg_ct_equal(csrf, want, MAC_B64)) {
		reply_error(req, 400, "invalid_request", "this consent form is not valid (CSRF)");
		goto out;
	}
	if (!decision || strcmp(decision, "approve") != 0) {
		char redirect[513], state[513];
		snprintf(redirect, sizeof redirect, "%s", p->grant.redirect_uri);
		snprintf(state, sizeof state, "%s", p->client_state);
		mg_oauth_issuer_forget(issuer_of(gw), p);
		redirect_to_client(gw, req, redirect, state, NULL, "access_denied",
		                   "the user denied access", NULL, 0);
		goto out;
	}
	p->approved = true;
	/* Remember the approval in this browser (MAC'ed list of client ids). */
	json_t *ids = approved_clients(gw, req);
	if (!approved(ids, p->grant.client_id)) {
		while (json_array_size(ids) >= CONSENT_MAX_IDS)
			json_array_remove(ids, 0);
		json_array_append_new(ids, json_string(p->grant.client_id));
	}
	char *text = json_dumps(ids, JSON_COMPACT);
	json_decref(ids);
	char enc[3100], m[MAC_B64 + 1], setc[3300];
	struct mg_http_hdr sc = { "Set-Cookie", setc };
	size_t tl = text ? strlen(text) : 0;
	if (text && mg_base64_encoded_len(tl, true) < sizeof enc) {
		mg_base64_encode(text, tl, enc, sizeof enc, true);
		mac(gw, "consent", enc, NULL, m);
		snprintf(setc, sizeof setc,
		         "%s=%s.%s; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=31536000",
		         CONSENT_COOKIE, enc, m);
		start_provider_login(gw, req, p, &sc);
	} else {
		start_provider_login(gw, req, p, NULL);
	}
	free(text);
out:
	mg_oauth_form_free(&f);
}

/* The provider's token answer for a facade login: find out who logged in
 * (introspection or userinfo with the provider's token, which then is
 * dropped), issue the gateway's code, send the browser back to the client. */
static void on_identity(const struct mg_fetch_result *res, void *arg)
{
	struct login *l = arg;
	struct mg_gateway *gw = l->gw;
	struct mg_http_req *req = l->req;
	const struct mg_oauth_config *c = oauth_cfg(gw);
	int64_t now = (int64_t)time(NULL);
	mg_http_req_on_close(req, NULL, NULL);
	/* A reload may have turned the facade off while the provider answered. */
	struct mg_oauth_pending *p =
	    issuer_of(gw) ? mg_oauth_issuer_pending(issuer_of(gw), l->pending, now) : NULL;
	struct mg_oauth_verdict v = { 0 };
	if (res->error)
		v.status = MG_AUTH_UNAVAILABLE;
	else if (c->introspection_url)
		mg_oauth_introspection_verdict(c, res->status, res->body, res->len, now, &v);
	else
		mg_oauth_userinfo_verdict(c, res->status, res->body, res->len, now, &v);
	if (!p) {
		reply_error(req, 400, "invalid_request", "the authorization expired");
	} else if (v.status != MG_AUTH_OK) {
		mg_log_info("oauth: facade login refused: %s",
		            v.reason[0] ? v.reason : "unavailable");
		char redirect[513], state[513];
		snprintf(redirect, sizeof redirect, "%s", p->grant.redirect_uri);
		snprintf(state, sizeof state, "%s", p->client_state);
		mg_oauth_issuer_forget(issuer_of(gw), p);
		redirect_to_client(gw, req, redirect, state, NULL, "access_denied",
		                   "the login could not be verified", NULL, 0);
	} else {
		struct mg_oauth_grant g = p->grant;
		snprintf(g.subject, sizeof g.subject, "%s", v.identity->id);
		/* The gateway's token carries the scopes the provider granted. */
		size_t sl = 0;
		g.scope[0] = '\0';
		for (size_t i = 0; i < v.identity->scopes.n && sl < sizeof g.scope; i++)
			sl += (size_t)snprintf(g.scope + sl, sizeof g.scope - sl, "%s%s",
			                       i ? " " : "", v.identity->scopes.v[i]);
		char code[MG_OAUTH_TOKEN_LEN + 1], redirect[513], state[513];
		snprintf(redirect, sizeof redirect, "%s", p->grant.redirect_uri);
		snprintf(state, sizeof state, "%s", p->client_state);
		mg_oauth_issuer_forget(issuer_of(gw), p);
		if (mg_oauth_code_issue(mg_oauth_issuer_grants(issuer_of(gw)), &g, now, code) < 0)
			redirect_to_client(gw, req, redirect, state, NULL,
			                   "temporarily_unavailable", "too many logins in progress",
			                   NULL, 0);
		else
			redirect_to_client(gw, req, redirect, state, code, NULL, NULL, NULL, 0);
		explicit_bzero(code, sizeof code);
	}
	mg_identity_unref(v.identity);
	login_free(l);
}

static void facade_on_token(struct login *l, const struct mg_fetch_result *res, json_t *t)
{
	struct mg_gateway *gw = l->gw;
	struct mg_http_req *req = l->req;
	const struct mg_oauth_config *c = oauth_cfg(gw);
	json_t *at = json_object_get(t, "access_token");
	char err[200];
	if (res->error || res->status != 200 || !json_is_string(at) ||
	    json_object_get(t, "error")) {
		mg_log_info("oauth: facade code exchange failed (HTTP %ld)", res->status);
		reply_error(req, 502, "temporarily_unavailable",
		            "the authorization server refused the code exchange");
		login_free(l);
		return;
	}
	/* Same lookup as the resource-server check, once, with the provider's token. */
	struct mg_oauth_check_request rq;
	int bad =
	    mg_oauth_check_request_init(&rq, c, json_string_value(at), json_string_length(at));
	struct mg_fetch_opts fo;
	mg_oauth_check_request_opts(&rq, c, &fo);
	if (bad ||
	    !(l->fetch = mg_fetch_start(gw->fetcher, &fo, on_identity, l, err, sizeof err))) {
		reply_error(req, 502, "temporarily_unavailable", "cannot verify the login");
		login_free(l);
	} else {
		mg_http_req_on_close(req, on_client_gone, l);
	}
	mg_oauth_check_request_free(&rq);
}

/* A refused token request: a 400 is charged to the client's address (the
 * per-address limit of unauthenticated traffic), then answered. */
static void token_refused(struct mg_gateway *gw, struct mg_http_req *req, int status,
                          const char *error, const char *description)
{
	if (status == 400)
		mg_ip_charge_failure(gw, req);
	reply_error(req, status, error, description);
}

/* POST /token: authorization_code and refresh_token grants (public clients, PKCE). */
static void handle_token(struct mg_gateway *gw, struct mg_http_req *req)
{
	struct mg_oauth_form f;
	char err[200], iss[512];
	size_t len;
	const char *body = mg_http_req_body(req, &len);
	struct mg_oauth_issuer *is = issuer_of(gw);
	struct mg_oauth_grants *grants = mg_oauth_issuer_grants(is);
	int64_t now = (int64_t)time(NULL);
	char *access = NULL;
	issuer_url(gw, iss, sizeof iss);
	if (mg_oauth_form_parse(body ? body : "", body ? len : 0, &f, err, sizeof err) < 0) {
		token_refused(gw, req, 400, "invalid_request", err);
		goto out;
	}
	if (f.duplicate) {
		token_refused(gw, req, 400, "invalid_request",
		              "a parameter appears more than once");
		goto out;
	}
	const char *type = mg_oauth_form_get(&f, "grant_type");
	const char *client = mg_oauth_form_get(&f, "client_id");
	const char *resource = mg_oauth_form_get(&f, "resource");
	struct mg_oauth_grant g;
	uint64_t family = 0;
	enum mg_oauth_redeem r;
	if (type && strcmp(type, "authorization_code") == 0) {
		r = mg_oauth_code_redeem(grants, mg_oauth_form_get(&f, "code"), client,
		                         mg_oauth_form_get(&f, "redirect_uri"),
		                         mg_oauth_form_get(&f, "code_verifier"), now, &g, &family);
	} else if (type && strcmp(type, "refresh_token") == 0) {
		r = mg_oauth_refresh_redeem(grants, mg_oauth_form_get(&f, "refresh_token"), client,
		                            now, &g, &family);
	} else {
		token_refused(gw, req, 400, "unsupported_grant_type",
		              "grant_type must be authorization_code or refresh_token");
		goto out;
	}
	if (r == MG_OAUTH_REDEEM_REPLAY)
		mg_log_warn("oauth: a %s was used twice (client %.200s): its grant is revoked",
		            type[0] == 'a' ? "code" : "rotated refresh token",
		            client ? client : "?");
	if (r != MG_OAUTH_REDEEM_OK) {
		token_refused(
		    gw, req, r == MG_OAUTH_REDEEM_FULL ? 503 : 400,
		    r == MG_OAUTH_REDEEM_FULL ? "temporarily_unavailable" : "invalid_grant",
		    r == MG_OAUTH_REDEEM_MISMATCH ? "client, redirect_uri or code_verifier "
		                                    "does not match"
		                                  : "the grant is not valid");
		goto out;
	}
	if (resource && strcmp(resource, g.resource) != 0) {
		token_refused(gw, req, 400, "invalid_target", "resource is not the one authorized");
		goto out;
	}
	char refresh[MG_OAUTH_TOKEN_LEN + 1];
	access = mg_oauth_issuer_access_token(is, iss, &g, family, now);
	if (!access || mg_oauth_refresh_issue(grants, family, now, refresh) < 0) {
		reply_error(req, 500, "server_error", "cannot issue tokens");
		goto out;
	}
	json_t *o =
	    json_pack("{s:s,s:s,s:I,s:s}", "access_token", access, "token_type", "Bearer",
	              "expires_in", (json_int_t)MG_OAUTH_ACCESS_SECS, "refresh_token", refresh);
	if (g.scope[0])
		json_object_set_new(o, "scope", json_string(g.scope));
	mg_reply_json(req, 200, o, no_store, 2);
	json_decref(o);
	explicit_bzero(refresh, sizeof refresh);
out:
	if (access) {
		explicit_bzero(access, strlen(access));
		free(access);
	}
	mg_oauth_form_free(&f);
}

/* ---- browser clients (CORS) and floods ---------------------------------------------------- */

/* An OPTIONS preflight: the allowed-origin rule of the MCP endpoint
 * (server.allowed_origins, loopback origins on a loopback gateway, the
 * public_url's); another origin gets no Access-Control-Allow-* header, so
 * the browser refuses the real request. */
static void reply_preflight(struct mg_gateway *gw, struct mg_http_req *req, const char *methods)
{
	struct mg_http_hdr h[8];
	size_t n = 0;
	mg_cors_headers(gw, req, h, &n);
	h[n++] = (struct mg_http_hdr){ "Allow", methods };
	if (n > 1) {
		h[n++] = (struct mg_http_hdr){ "Access-Control-Allow-Methods", methods };
		h[n++] = (struct mg_http_hdr){ "Access-Control-Allow-Headers",
			                       "Content-Type, Accept, Authorization, "
			                       "MCP-Protocol-Version" };
		h[n++] = (struct mg_http_hdr){ "Access-Control-Max-Age", "600" };
	}
	mg_http_reply(req, 204, NULL, h, n, NULL, 0);
}

/* Whatever this request is answered, an allowed origin may read it. */
static void allow_origin(struct mg_gateway *gw, struct mg_http_req *req)
{
	struct mg_http_hdr h[4];
	size_t n = 0;
	mg_cors_headers(gw, req, h, &n);
	for (size_t i = 0; i < n; i++)
		mg_http_req_add_header(req, h[i].name, h[i].value);
}

/* Routes of the facade; false when `path` is not one of them. */
static bool facade_route(struct mg_gateway *gw, struct mg_http_req *req, const char *path)
{
	const char *m = mg_http_req_method(req);
	bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
	bool post = strcmp(m, "POST") == 0;
	int which = strcmp(path, "/.well-known/oauth-authorization-server") == 0 ? 1
	            : strcmp(path, "/.well-known/jwks.json") == 0                ? 2
	            : strcmp(path, "/register") == 0                             ? 3
	            : strcmp(path, "/authorize") == 0                            ? 4
	            : strcmp(path, "/token") == 0                                ? 5
	                                                                         : 0;
	if (!which)
		return false;
	if (!issuer_of(gw) || !state_of(gw)) {
		reply_error(req, 404, "invalid_request",
		            "this gateway is not an authorization server (auth.oauth."
		            "authorization_server)");
		return true;
	}
	if (strcmp(m, "OPTIONS") == 0) {
		reply_preflight(gw, req,
		                which <= 2   ? "GET, HEAD, OPTIONS"
		                : which == 4 ? "GET, POST, OPTIONS"
		                             : "POST, OPTIONS");
		return true;
	}
	/* Unauthenticated: the per-address limit of the MCP endpoint, checked
	 * first; a registration or an authorization request (state kept, maybe
	 * a document fetched) always costs, a refused token request too. The
	 * public documents carry "*" themselves. */
	if (!mg_ip_limit_or_reply_what(gw, req,
	                               "too many requests to the authorization server "
	                               "from this address"))
		return true;
	if (which >= 3)
		allow_origin(gw, req);
	if (which == 3 || which == 4)
		mg_ip_charge_failure(gw, req);
	if ((which <= 2 && get) || (which == 3 && post) || (which == 4 && get) ||
	    (which == 5 && post)) {
		if (which == 1)
			handle_as_metadata(gw, req);
		else if (which == 2)
			handle_jwks(gw, req);
		else if (which == 3)
			handle_register(gw, req);
		else if (which == 4)
			handle_authorize_get(gw, req);
		else
			handle_token(gw, req);
	} else if (which == 4 && post) {
		handle_authorize_post(gw, req);
	} else {
		struct mg_http_hdr h[] = { { "Allow", which <= 2 || which == 4 ? "GET" : "POST" } };
		json_t *e = json_pack("{s:s,s:s}", "error", "invalid_request", "error_description",
		                      "Method Not Allowed");
		mg_reply_json(req, 405, e, h, 1);
		json_decref(e);
	}
	return true;
}

/* ---- routing ---------------------------------------------------------------------------- */

bool mg_oauth_route(struct mg_gateway *gw, struct mg_http_req *req, const char *path)
{
	if (facade_route(gw, req, path))
		return true;
	/* The protected-resource metadata (gateway.c answers its GET). */
	if (strncmp(path, "/.well-known/oauth-protected-resource", 37) == 0 &&
	    (path[37] == '\0' || strcmp(path + 37, gw->cfg->server.mcp_path) == 0) &&
	    strcmp(mg_http_req_method(req), "OPTIONS") == 0) {
		reply_preflight(gw, req, "GET, HEAD, OPTIONS");
		return true;
	}
	if (strcmp(path, "/oauth/authorize") != 0 && strcmp(path, "/oauth/callback") != 0)
		return false;
	const struct mg_oauth_config *c = oauth_cfg(gw);
	if (!c->present || !c->redirect_uri) {
		reply_error(req, 404, "invalid_request",
		            "the login flow is not configured (set auth.oauth.redirect_uri)");
		return true;
	}
	const char *m = mg_http_req_method(req);
	if (strcmp(m, "GET") != 0) {
		struct mg_http_hdr h[] = { { "Allow", "GET" } };
		json_t *e = json_pack("{s:s,s:s}", "error", "invalid_request", "error_description",
		                      "Method Not Allowed");
		mg_reply_json(req, 405, e, h, 1);
		json_decref(e);
		return true;
	}
	if (path[7] == 'a')
		handle_authorize(gw, req);
	else
		handle_callback(gw, req);
	return true;
}

void mg_oauth_gw_free(struct mg_gateway *gw)
{
	struct mg_oauth_gw *o = gw->oauth;
	if (!o)
		return;
	while (o->logins) {
		struct login *l = o->logins;
		mg_fetch_cancel(l->fetch);
		mg_http_req_on_close(l->req, NULL, NULL);
		login_free(l);
	}
	mg_oauth_replay_free(o->used);
	explicit_bzero(o->random_key, sizeof o->random_key);
	free(o);
	gw->oauth = NULL;
}
