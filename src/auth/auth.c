/*
 * auth.c - the provider chain, failure aggregation, RFC 6750 challenges and
 * RFC 9728 protected resource metadata (see auth.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/internal.h"
#include "auth/oauth_issuer.h"
#include "util/log.h"
#include "util/str.h"

static struct mg_auth *build(struct event_base *base, const struct mg_config *cfg,
                             struct mg_fetcher *fetcher, const struct mg_auth *previous, char *err,
                             size_t err_size)
{
	struct mg_auth *a = calloc(1, sizeof *a);
	if (!a) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	a->refs = 1;
	a->base = base;
	a->cfg = cfg;
	a->fetcher = fetcher;
	a->previous = previous; /* consulted by providers while they are built */
	const struct mg_server_config *s = &cfg->server;
	if (s->public_url)
		snprintf(a->resource, sizeof a->resource, "%s%s", s->public_url, s->mcp_path);
	else
		snprintf(a->resource, sizeof a->resource, "%s://%s%s%s:%lld%s",
		         s->tls.enabled ? "https" : "http", strchr(s->host, ':') ? "[" : "",
		         s->host, strchr(s->host, ':') ? "]" : "", (long long)s->port, s->mcp_path);
	/* The documented order: mTLS, API keys, JWT, OAuth. Providers that may
	 * wait (JWT with JWKS, OAuth introspection) come last: when one of them
	 * refuses after waiting, the chain resumes with the providers after it. */
	struct mg_auth_provider *p;
	if (cfg->auth.mtls.enabled) {
		if (!(p = mg_auth_mtls_new(a, err, err_size)))
			goto fail;
		a->providers[a->n_providers++] = p;
	}
	if (cfg->auth.n_api_keys) {
		if (!(p = mg_auth_api_key_new(a, err, err_size)))
			goto fail;
		a->providers[a->n_providers++] = p;
	}
	if (cfg->auth.jwt.present) {
		if (!(p = mg_auth_jwt_new(a, err, err_size)))
			goto fail;
		a->providers[a->n_providers++] = p;
	}
	if (cfg->auth.oauth.present) {
		if (!(p = mg_auth_oauth_new(a, err, err_size)))
			goto fail;
		a->providers[a->n_providers++] = p;
	}
	a->previous = NULL;
	return a;
fail:
	mg_auth_unref(a);
	return NULL;
}

struct mg_auth *mg_auth_new(struct event_base *base, const struct mg_config *cfg,
                            struct mg_fetcher *fetcher, char *err, size_t err_size)
{
	return build(base, cfg, fetcher, NULL, err, err_size);
}

struct mg_auth *mg_auth_renew(const struct mg_auth *previous, const struct mg_config *cfg,
                              char *err, size_t err_size)
{
	return build(previous->base, cfg, previous->fetcher, previous, err, err_size);
}

void mg_auth_own_config(struct mg_auth *a, struct mg_config *cfg)
{
	a->owned_cfg = cfg;
}

struct mg_auth *mg_auth_ref(struct mg_auth *a)
{
	if (a)
		a->refs++;
	return a;
}

void mg_auth_unref(struct mg_auth *a)
{
	if (!a || --a->refs > 0)
		return;
	for (size_t i = 0; i < a->n_providers; i++)
		a->providers[i]->ops->free(a->providers[i]);
	mg_config_free(a->owned_cfg);
	free(a);
}

bool mg_auth_enabled(const struct mg_auth *a)
{
	return a && a->n_providers > 0;
}

const char *mg_auth_resource_url(const struct mg_auth *a)
{
	return a->resource;
}

static void finish(struct mg_auth *a, struct mg_auth_outcome *out, bool any_invalid,
                   bool insufficient, bool unavailable)
{
	if (out->status == MG_AUTH_OK) {
		a->stats.ok++;
		return;
	}
	out->insufficient_scope = insufficient;
	if (any_invalid || insufficient) {
		out->status = MG_AUTH_INVALID;
		a->stats.invalid++;
	} else if (unavailable) {
		out->status = MG_AUTH_UNAVAILABLE;
		a->stats.unavailable++;
	} else {
		out->status = MG_AUTH_DECLINED;
		a->stats.missing++;
	}
}

/* Runs the providers from w->index on. Returns true with `out` final, or
 * false when a provider took `w` (AGAIN). `w` carries what earlier
 * providers answered; it is left for the caller to free when true. */
static bool run_chain(struct mg_auth *a, const struct mg_auth_request *r, struct mg_auth_wait *w,
                      struct mg_auth_outcome *out)
{
	for (size_t i = w->index; i < a->n_providers; i++) {
		struct mg_auth_provider *p = a->providers[i];
		struct mg_auth_outcome po = { 0 };
		w->index = i;
		enum mg_auth_status st = p->ops->authenticate(p, r, &po, p->ops->cancel ? w : NULL);
		if (st == MG_AUTH_AGAIN) {
			w->req.now = r->now;
			return false;
		}
		switch (st) {
		case MG_AUTH_OK:
			out->status = MG_AUTH_OK;
			out->identity = po.identity;
			finish(a, out, false, false, false);
			return true;
		case MG_AUTH_INVALID:
			if (po.insufficient_scope)
				w->insufficient = true;
			else
				w->any_invalid = true;
			if (!w->reason[0])
				snprintf(w->reason, sizeof w->reason, "%s", po.reason);
			break;
		case MG_AUTH_UNAVAILABLE:
			w->unavailable = true;
			if (!w->reason[0])
				snprintf(w->reason, sizeof w->reason, "%s", po.reason);
			break;
		default:
			break;
		}
	}
	/* Credentials were presented but no provider recognised them: that is
	 * an invalid token (RFC 6750 §3.1), not "no credentials". */
	size_t blen;
	if (!w->any_invalid && !w->insufficient && !w->unavailable &&
	    (mg_auth_bearer(r->authorization, &blen) || (r->api_key && r->api_key[0]))) {
		w->any_invalid = true;
		if (!w->reason[0])
			snprintf(w->reason, sizeof w->reason,
			         "credentials not recognised by any configured provider");
	}
	snprintf(out->reason, sizeof out->reason, "%s", w->reason);
	out->status = MG_AUTH_DECLINED;
	finish(a, out, w->any_invalid, w->insufficient, w->unavailable);
	return true;
}

bool mg_auth_authenticate(struct mg_auth *a, const struct mg_auth_request *r,
                          struct mg_auth_outcome *out, mg_auth_done_fn done, void *arg,
                          struct mg_auth_wait **wait)
{
	memset(out, 0, sizeof *out);
	*wait = NULL;
	if (!a->n_providers) {
		out->status = MG_AUTH_OK;
		out->identity = mg_identity_anonymous();
		return true;
	}
	struct mg_auth_wait *w = calloc(1, sizeof *w);
	if (!w) {
		out->status = MG_AUTH_UNAVAILABLE;
		a->stats.unavailable++;
		snprintf(out->reason, sizeof out->reason, "out of memory");
		return true;
	}
	if (run_chain(a, r, w, out)) {
		free(w->token);
		free(w);
		return true;
	}
	w->auth = mg_auth_ref(a);
	w->done = done;
	w->arg = arg;
	*wait = w;
	return false;
}

void mg_auth_resume(struct mg_auth_wait *w, const struct mg_auth_outcome *o)
{
	struct mg_auth *a = w->auth;
	struct mg_auth_outcome out = *o;
	w->provider = NULL;
	w->lookup = NULL;
	if (o->status != MG_AUTH_OK && w->index + 1 < a->n_providers && w->token) {
		/* The next providers see the same bearer token (only a bearer
		 * token can make a provider wait). */
		if (o->status == MG_AUTH_INVALID && o->insufficient_scope)
			w->insufficient = true;
		else if (o->status == MG_AUTH_INVALID)
			w->any_invalid = true;
		else if (o->status == MG_AUTH_UNAVAILABLE)
			w->unavailable = true;
		if (!w->reason[0])
			snprintf(w->reason, sizeof w->reason, "%s", o->reason);
		size_t n = w->token_len + 8;
		char *authz = malloc(n);
		if (authz) {
			snprintf(authz, n, "Bearer %s", w->token);
			free(w->token);
			w->token = NULL;
			struct mg_auth_request r = { .authorization = authz, .now = w->req.now };
			w->index++;
			memset(&out, 0, sizeof out);
			bool done_now = run_chain(a, &r, w, &out);
			explicit_bzero(authz, n);
			free(authz);
			if (!done_now)
				return;
			goto complete;
		}
	}
	bool invalid = w->any_invalid || (o->status == MG_AUTH_INVALID && !o->insufficient_scope);
	if (out.status != MG_AUTH_OK)
		out.status = MG_AUTH_DECLINED;
	if (!out.reason[0])
		snprintf(out.reason, sizeof out.reason, "%s", w->reason);
	finish(a, &out, invalid,
	       w->insufficient || (o->status == MG_AUTH_INVALID && o->insufficient_scope),
	       w->unavailable || o->status == MG_AUTH_UNAVAILABLE);
complete:;
	mg_auth_done_fn done = w->done;
	void *arg = w->arg;
	free(w->token);
	free(w);
	done(&out, arg);
	mg_auth_unref(a);
}

void mg_auth_cancel(struct mg_auth_wait *w)
{
	if (!w)
		return;
	if (w->provider && w->provider->ops->cancel)
		w->provider->ops->cancel(w->provider, w);
	struct mg_auth *a = w->auth;
	free(w->token);
	free(w);
	mg_auth_unref(a);
}

static void append_unique(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		if (strcmp(json_string_value(v), s) == 0)
			return;
	}
	json_array_append_new(arr, json_string(s));
}

/* The scopes a client may ask for: required ones and the mapped ones. */
static json_t *scopes_supported(const struct mg_auth *a)
{
	const struct mg_jwt_config *j = &a->cfg->auth.jwt;
	const struct mg_oauth_config *o = &a->cfg->auth.oauth;
	json_t *arr = json_array();
	for (size_t i = 0; j->present && i < j->required_scopes.n; i++)
		append_unique(arr, j->required_scopes.v[i]);
	for (size_t i = 0; j->present && i < j->scope_tool_mapping.n; i++)
		append_unique(arr, j->scope_tool_mapping.v[i].key);
	for (size_t i = 0; o->present && i < o->scope_tool_mapping.n; i++)
		append_unique(arr, o->scope_tool_mapping.v[i].key);
	return arr;
}

/* RFC 9728 §3.1: the metadata of https://host/path is served at
 * https://host/.well-known/oauth-protected-resource/path. */
static void metadata_url(const struct mg_auth *a, char *out, size_t size)
{
	const char *r = a->resource;
	const char *host = strstr(r, "://");
	host = host ? host + 3 : r;
	size_t origin = (size_t)(host - r) + strcspn(host, "/");
	snprintf(out, size, "%.*s/.well-known/oauth-protected-resource%s", (int)origin, r,
	         r + origin);
}

void mg_auth_challenge(const struct mg_auth *a, const char *error, char *out, size_t size)
{
	char meta[640];
	metadata_url(a, meta, sizeof meta);
	int n = snprintf(out, size, "Bearer resource_metadata=\"%s\"", meta);
	json_t *sc = a->cfg->auth.jwt.present ? scopes_supported(a) : NULL;
	if (n > 0 && (size_t)n < size && sc && json_array_size(sc) &&
	    a->cfg->auth.jwt.required_scopes.n) {
		n += snprintf(out + n, size - (size_t)n, ", scope=\"");
		for (size_t i = 0; i < a->cfg->auth.jwt.required_scopes.n && (size_t)n < size; i++)
			n += snprintf(out + n, size - (size_t)n, "%s%s", i ? " " : "",
			              a->cfg->auth.jwt.required_scopes.v[i]);
		if ((size_t)n < size)
			n += snprintf(out + n, size - (size_t)n, "\"");
	}
	json_decref(sc);
	if (error && n > 0 && (size_t)n < size)
		snprintf(out + n, size - (size_t)n, ", error=\"%s\"", error);
}

void mg_auth_challenge_scope(const struct mg_auth *a, const char *error, const char *scope,
                             char *out, size_t size)
{
	char meta[640];
	metadata_url(a, meta, sizeof meta);
	snprintf(out, size, "Bearer resource_metadata=\"%s\", scope=\"%s\", error=\"%s\"", meta,
	         scope, error);
}

const struct mg_config *mg_auth_config(const struct mg_auth *a)
{
	return a->cfg;
}

json_t *mg_auth_resource_metadata(const struct mg_auth *a)
{
	const struct mg_auth_config *ac = &a->cfg->auth;
	if (!ac->jwt.present && !ac->oauth.present)
		return NULL;
	json_t *servers = json_array();
	if (ac->oauth.present && ac->oauth.authorization_server) {
		/* The gateway fronts the provider: MCP clients talk to it only
		 * (tokens from [auth.jwt]'s issuer are still accepted). */
		char iss[512];
		mg_oauth_issuer_url(a->resource, iss, sizeof iss);
		append_unique(servers, iss);
	} else {
		if (ac->jwt.present && ac->jwt.issuer)
			json_array_append_new(servers, json_string(ac->jwt.issuer));
		if (ac->oauth.present && ac->oauth.issuer)
			append_unique(servers, ac->oauth.issuer);
	}
	return json_pack("{s:s,s:o,s:o,s:[s],s:s}", "resource", a->resource,
	                 "authorization_servers", servers, "scopes_supported", scopes_supported(a),
	                 "bearer_methods_supported", "header", "resource_name", "mcp-guard");
}

void mg_auth_stats(const struct mg_auth *a, struct mg_auth_stats *out)
{
	*out = a->stats;
	for (size_t i = 0; i < a->n_providers; i++) {
		out->jwt_cache_hits += mg_auth_jwt_cache_hits(a->providers[i]);
		const struct mg_jwks *j = mg_auth_jwt_jwks(a->providers[i]);
		if (j) {
			out->jwks_fetches += mg_jwks_fetches(j);
			out->jwks_errors += mg_jwks_errors(j);
		}
	}
}
