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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/oauth.h"
#include "auth/oauth_state.h"
#include "gateway/internal.h"
#include "gateway/oauth.h"
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
};

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

static void handle_authorize(struct mg_gateway *gw, struct mg_http_req *req)
{
	const struct mg_oauth_config *c = oauth_cfg(gw);
	struct mg_oauth_gw *o = state_of(gw);
	struct mg_oauth_state st = { 0 };
	char challenge[MG_OAUTH_CHALLENGE_LEN + 1], state[MG_OAUTH_STATE_MAX + 1];
	uint8_t key[MG_OAUTH_KEY_LEN];
	struct mg_buf url;
	mg_buf_init(&url, 8192);
	if (!o || mg_oauth_pkce_new(st.verifier, challenge) < 0 ||
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
	if (n < 0 || mg_buf_puts(&url, c->authorization_url) < 0 ||
	    mg_buf_putc(&url, strchr(c->authorization_url, '?') ? '&' : '?') < 0) {
		reply_error(req, 500, "server_error", "cannot build the authorization URL");
		goto out;
	}
	/* mg_oauth_form_add puts '&' before every pair but the first of the
	 * buffer: start a separate buffer for the query. */
	struct mg_buf q;
	mg_buf_init(&q, 8192);
	int bad = mg_oauth_form_add(&q, "response_type", "code") |
	          mg_oauth_form_add(&q, "client_id", c->client_id) |
	          mg_oauth_form_add(&q, "redirect_uri", c->redirect_uri) |
	          (scope[0] ? mg_oauth_form_add(&q, "scope", scope) : 0) |
	          mg_oauth_form_add(&q, "state", state) |
	          mg_oauth_form_add(&q, "code_challenge", challenge) |
	          mg_oauth_form_add(&q, "code_challenge_method", "S256");
	if (bad || mg_buf_append(&url, q.data, q.len) < 0) {
		mg_buf_free(&q);
		reply_error(req, 500, "server_error", "cannot build the authorization URL");
		goto out;
	}
	mg_buf_free(&q);
	struct mg_http_hdr h[] = { { "Location", url.data },
		                   { "Cache-Control", "no-store" },
		                   { "Referrer-Policy", "no-referrer" } };
	mg_http_reply(req, 302, "text/plain", h, 3, "", 0);
out:
	explicit_bzero(&st, sizeof st);
	mg_buf_free(&url);
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
                              const char *verifier)
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
		struct mg_buf cred;
		mg_buf_init(&cred, 4096);
		bad |= mg_oauth_urlencode(&cred, c->client_id, strlen(c->client_id)) |
		       mg_buf_putc(&cred, ':') |
		       mg_oauth_urlencode(&cred, c->client_secret, strlen(c->client_secret));
		char b64[6000];
		if (!bad && mg_base64_encoded_len(cred.len, false) < sizeof b64) {
			mg_base64_encode(cred.data, cred.len, b64, sizeof b64, false);
			bad |= mg_buf_printf(&auth, "Authorization: Basic %s", b64) < 0;
			headers[nh++] = auth.data;
		} else {
			bad = 1;
		}
		explicit_bzero(b64, sizeof b64);
		if (cred.data)
			explicit_bzero(cred.data, cred.len);
		mg_buf_free(&cred);
	}
	if (bad) {
		free(l);
		reply_error(req, 500, "server_error", "cannot build the token request");
		goto out;
	}
	struct mg_oauth_gw *o = gw->oauth;
	l->gw = gw;
	l->req = req;
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
	if (error) {
		reply_error(req, 400, safe_error(error),
		            "the authorization server refused the login");
		goto out;
	}
	if (!code || !*code) {
		reply_error(req, 400, "invalid_request", "the code parameter is missing");
		goto out;
	}
	exchange_or_reply(gw, req, code, st.verifier);
out:
	explicit_bzero(&st, sizeof st);
	mg_oauth_form_free(&f);
}

/* ---- routing ---------------------------------------------------------------------------- */

bool mg_oauth_route(struct mg_gateway *gw, struct mg_http_req *req, const char *path)
{
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
