/*
 * jwt_provider.c - bearer JWTs: `mode = "simple"` (an HMAC secret) or
 * `mode = "jwks"` (public keys from the IdP's JWKS, cached in jwks.c).
 *
 * Verification itself is jwt.c (algorithms from the configuration, never
 * the token). Here: choosing keys, waiting for a JWKS fetch when the keys
 * are missing or a token names an unknown kid (rate-limited), mapping
 * claims to an identity (user id, scopes, scope → tool globs), required
 * scopes (403 insufficient_scope), and a cache of verified tokens keyed by
 * their SHA-256 so a busy client does not pay a signature check per
 * request. Cached entries die with the token's exp or a key-set change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/internal.h"
#include "auth/oauth_issuer.h"
#include "http/client.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/str.h"

#define MAX_TOKEN_BYTES (16 * 1024)
#define CACHE_SLOTS     4096 /* power of two */
#define CACHE_PROBE     8

struct cache_entry {
	uint8_t hash[MG_SHA256_LEN];
	struct mg_identity *id;
	int64_t exp;
	uint64_t gen;
};

struct jwt_provider {
	struct mg_auth_provider base;
	const struct mg_jwt_config *cfg;
	struct mg_jwk_set *static_keys;
	struct mg_jwks *jwks;
	struct mg_jwt_policy policy;
	const char **aud;
	struct cache_entry *cache;
	uint64_t hits;
};

static struct jwt_provider *jp_of(struct mg_auth_provider *p)
{
	return (struct jwt_provider *)p;
}

static uint64_t generation(struct jwt_provider *jp)
{
	return jp->jwks ? mg_jwks_generation(jp->jwks) : 0;
}

static struct mg_jwk_set *current_keys(struct jwt_provider *jp)
{
	return jp->jwks ? mg_jwks_keys(jp->jwks) : jp->static_keys;
}

/* ---- verified-token cache ----------------------------------------------------------- */

static size_t slot_of(const uint8_t *hash)
{
	size_t k;
	memcpy(&k, hash, sizeof k);
	return k & (CACHE_SLOTS - 1);
}

static struct mg_identity *cache_get(struct jwt_provider *jp, const uint8_t *hash, int64_t now)
{
	size_t s = slot_of(hash);
	for (size_t i = 0; i < CACHE_PROBE; i++) {
		struct cache_entry *e = &jp->cache[(s + i) & (CACHE_SLOTS - 1)];
		if (!e->id || memcmp(e->hash, hash, MG_SHA256_LEN) != 0)
			continue;
		if (now > e->exp + jp->cfg->leeway_secs || e->gen != generation(jp)) {
			mg_identity_unref(e->id);
			e->id = NULL;
			return NULL;
		}
		return mg_identity_ref(e->id);
	}
	return NULL;
}

static void cache_put(struct jwt_provider *jp, const uint8_t *hash, struct mg_identity *id,
                      int64_t exp, int64_t now)
{
	size_t s = slot_of(hash);
	struct cache_entry *victim = &jp->cache[s];
	for (size_t i = 0; i < CACHE_PROBE; i++) {
		struct cache_entry *e = &jp->cache[(s + i) & (CACHE_SLOTS - 1)];
		if (!e->id || now > e->exp + jp->cfg->leeway_secs || e->gen != generation(jp)) {
			victim = e;
			break;
		}
	}
	mg_identity_unref(victim->id);
	memcpy(victim->hash, hash, MG_SHA256_LEN);
	victim->id = mg_identity_ref(id);
	victim->exp = exp;
	victim->gen = generation(jp);
}

/* ---- claims → identity --------------------------------------------------------------- */

static struct mg_identity *identity_of(struct jwt_provider *jp, struct mg_jwt *t,
                                       struct mg_auth_outcome *out)
{
	const struct mg_jwt_config *c = jp->cfg;
	char idbuf[256];
	if (mg_claim_id(json_object_get(t->claims, c->user_id_claim), idbuf, sizeof idbuf) < 0) {
		snprintf(out->reason, sizeof out->reason, "token has no usable \"%s\" claim",
		         c->user_id_claim);
		return NULL;
	}
	struct mg_identity *id = mg_identity_new("jwt", idbuf);
	if (!id)
		return NULL;
	mg_identity_grant_scopes(id, json_object_get(t->claims, c->scopes_claim),
	                         &c->scope_tool_mapping);
	if (c->rate_limit_claim) {
		/* Signed by the IdP like every other claim; a string, zero or a
		 * negative number is ignored rather than trusted. */
		json_t *rl = json_object_get(t->claims, c->rate_limit_claim);
		if (json_is_number(rl) && json_number_value(rl) > 0 && json_number_value(rl) <= 1e9)
			id->rate_limit = json_number_value(rl);
	}
	json_t *name = json_object_get(t->claims, "name");
	if (!json_is_string(name))
		name = json_object_get(t->claims, "email");
	if (json_is_string(name))
		id->display = mg_strdup(json_string_value(name));
	id->claims = json_incref(t->claims);
	id->expires = t->exp;
	return id;
}

/* ---- verification -------------------------------------------------------------------- */

/* Verifies with the keys at hand; never waits. */
static enum mg_auth_status verify(struct jwt_provider *jp, const char *tok, size_t len,
                                  const uint8_t *hash, int64_t now, struct mg_auth_outcome *out)
{
	struct mg_jwk_set *keys = current_keys(jp);
	if (!keys) {
		snprintf(out->reason, sizeof out->reason,
		         "no JWKS keys available (IdP unreachable)");
		return MG_AUTH_UNAVAILABLE;
	}
	struct mg_jwt t;
	char why[160] = "";
	jp->policy.now = now;
	enum mg_jwt_status st = mg_jwt_verify(tok, len, keys, &jp->policy, &t, why, sizeof why);
	if (st != MG_JWT_OK) {
		snprintf(out->reason, sizeof out->reason, "jwt: %s%s%.100s", mg_jwt_status_name(st),
		         why[0] ? ": " : "", why);
		return MG_AUTH_INVALID;
	}
	struct mg_identity *id = identity_of(jp, &t, out);
	int64_t exp = t.exp;
	mg_jwt_free(&t);
	if (!id)
		return out->reason[0] ? MG_AUTH_INVALID : MG_AUTH_UNAVAILABLE;
	for (size_t i = 0; i < jp->cfg->required_scopes.n; i++) {
		if (!mg_strv_has(&id->scopes, jp->cfg->required_scopes.v[i])) {
			snprintf(out->reason, sizeof out->reason, "token of %s lacks scope %s",
			         id->id, jp->cfg->required_scopes.v[i]);
			out->insufficient_scope = true;
			mg_identity_unref(id);
			return MG_AUTH_INVALID;
		}
	}
	cache_put(jp, hash, id, exp, now);
	out->identity = id;
	return MG_AUTH_OK;
}

static void on_keys_ready(struct mg_jwks_waiter *jw)
{
	struct mg_auth_wait *w =
	    (struct mg_auth_wait *)((char *)jw - offsetof(struct mg_auth_wait, jw));
	struct jwt_provider *jp = jp_of(w->provider);
	struct mg_auth_outcome o = { 0 };
	uint8_t hash[MG_SHA256_LEN];
	mg_sha256(w->token, w->token_len, hash);
	o.status = verify(jp, w->token, w->token_len, hash, w->req.now, &o);
	mg_auth_resume(w, &o);
}

static bool looks_like_jwt(const char *t, size_t n)
{
	size_t dots = 0;
	for (size_t i = 0; i < n; i++)
		dots += t[i] == '.';
	return dots == 2;
}

static enum mg_auth_status jwt_authenticate(struct mg_auth_provider *p,
                                            const struct mg_auth_request *r,
                                            struct mg_auth_outcome *out, struct mg_auth_wait *w)
{
	struct jwt_provider *jp = jp_of(p);
	size_t len = 0;
	const char *tok = mg_auth_bearer(r->authorization, &len);
	if (!tok || !looks_like_jwt(tok, len))
		return MG_AUTH_DECLINED;
	char own[256];
	struct mg_oauth_issuer *is = mg_auth_oauth_issuer(p->auth);
	if (is && mg_jwt_peek_kid(tok, len, own, sizeof own) == 0 &&
	    mg_oauth_issuer_has_kid(is, own, r->now))
		return MG_AUTH_DECLINED; /* the gateway's own token: no JWKS refetch for it */
	if (len > MAX_TOKEN_BYTES) {
		snprintf(out->reason, sizeof out->reason, "jwt: token larger than %d bytes",
		         MAX_TOKEN_BYTES);
		return MG_AUTH_INVALID;
	}
	uint8_t hash[MG_SHA256_LEN];
	mg_sha256(tok, len, hash);
	struct mg_identity *hit = cache_get(jp, hash, r->now);
	if (hit) {
		jp->hits++;
		out->identity = hit;
		return MG_AUTH_OK;
	}
	bool wait = false;
	if (jp->jwks) {
		struct mg_jwk_set *keys = mg_jwks_keys(jp->jwks);
		char kid[256];
		if (!keys)
			wait =
			    mg_jwks_fetching(jp->jwks) || mg_jwks_refresh_for_kid(jp->jwks, r->now);
		else if (mg_jwt_peek_kid(tok, len, kid, sizeof kid) == 0 &&
		         !mg_jwk_set_has_kid(keys, kid))
			/* Maybe the IdP rotated: refetch, at most once per interval. */
			wait = mg_jwks_refresh_for_kid(jp->jwks, r->now);
	}
	if (wait && w) {
		w->provider = p;
		w->token = mg_strndup(tok, len);
		w->token_len = len;
		w->jw.ready = on_keys_ready;
		if (w->token) {
			mg_jwks_wait(jp->jwks, &w->jw);
			return MG_AUTH_AGAIN;
		}
	}
	return verify(jp, tok, len, hash, r->now, out);
}

static void jwt_cancel(struct mg_auth_provider *p, struct mg_auth_wait *w)
{
	struct jwt_provider *jp = jp_of(p);
	if (jp->jwks)
		mg_jwks_unwait(jp->jwks, &w->jw);
}

static void jwt_free(struct mg_auth_provider *p)
{
	struct jwt_provider *jp = jp_of(p);
	for (size_t i = 0; jp->cache && i < CACHE_SLOTS; i++)
		mg_identity_unref(jp->cache[i].id);
	free(jp->cache);
	mg_jwk_set_unref(jp->static_keys);
	mg_jwks_free(jp->jwks);
	free(jp->aud);
	free(jp);
}

static const struct mg_auth_provider_ops jwt_ops;

struct mg_jwks *mg_auth_jwt_jwks(const struct mg_auth_provider *p)
{
	return p->ops == &jwt_ops ? ((const struct jwt_provider *)p)->jwks : NULL;
}

uint64_t mg_auth_jwt_cache_hits(const struct mg_auth_provider *p)
{
	return p->ops == &jwt_ops ? ((const struct jwt_provider *)p)->hits : 0;
}

static const struct mg_auth_provider_ops jwt_ops = {
	.name = "jwt",
	.authenticate = jwt_authenticate,
	.cancel = jwt_cancel,
	.free = jwt_free,
};

struct mg_auth_provider *mg_auth_jwt_new(struct mg_auth *a, char *err, size_t err_size)
{
	const struct mg_jwt_config *c = &a->cfg->auth.jwt;
	struct jwt_provider *jp = calloc(1, sizeof *jp);
	if (!jp || !(jp->cache = calloc(CACHE_SLOTS, sizeof *jp->cache))) {
		free(jp);
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	jp->base.ops = &jwt_ops;
	jp->base.auth = a;
	jp->cfg = c;
	for (size_t i = 0; i < c->algorithms.n; i++) {
		int alg = mg_jwt_alg_parse(c->algorithms.v[i]);
		if (alg >= 0)
			jp->policy.algs |= 1u << alg;
	}
	jp->policy.issuer = c->issuer;
	if (c->audience.n) {
		jp->aud = calloc(c->audience.n, sizeof *jp->aud);
		for (size_t i = 0; jp->aud && i < c->audience.n; i++)
			jp->aud[i] = c->audience.v[i];
		jp->policy.audience = jp->aud;
		jp->policy.n_audience = jp->aud ? c->audience.n : 0;
	}
	jp->policy.leeway_secs = c->leeway_secs;
	jp->policy.max_token_bytes = MAX_TOKEN_BYTES;
	if (c->mode == MG_JWT_SIMPLE) {
		jp->static_keys = mg_jwk_set_hmac(c->secret, strlen(c->secret));
	} else {
		/* Loads libcurl now, so a gateway that cannot fetch the keys
		 * refuses to start (or to reload) instead of failing every token. */
		char cerr[300] = "no HTTP client";
		if (!a->fetcher || mg_fetcher_prepare(a->fetcher, cerr, sizeof cerr) < 0) {
			jwt_free(&jp->base);
			snprintf(err, err_size, "jwks_url %s: %s", c->jwks_url, cerr);
			return NULL;
		}
		/* A reload keeps the keys it already has (the IdP may be down). */
		const struct mg_auth *prev = a->previous;
		for (size_t i = 0; prev && i < prev->n_providers && !jp->jwks; i++) {
			struct mg_jwks *old = mg_auth_jwt_jwks(prev->providers[i]);
			if (old && strcmp(mg_jwks_url(old), c->jwks_url) == 0 &&
			    mg_jwks_allow_private(old) == c->allow_private_networks)
				jp->jwks = mg_jwks_ref(old);
		}
		if (!jp->jwks)
			jp->jwks = mg_jwks_new(a->base, a->fetcher, c->jwks_url,
			                       c->cache_duration_secs, c->allow_private_networks);
	}
	if (!jp->static_keys && !jp->jwks) {
		jwt_free(&jp->base);
		snprintf(err, err_size, "cannot set up JWT keys");
		return NULL;
	}
	return &jp->base;
}
